//! Reading and writing PKI files with the right permissions.
//!
//! Private keys must never be readable by others, not even for the instant
//! between creating and `chmod`-ing a file, so they are created with their
//! final mode.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::CertsError;

/// Mode of private keys: owner read/write only.
pub(crate) const KEY_MODE: u32 = 0o600;

/// Mode of certificates and other public files: readable by everyone.
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// Whether `path` exists, failing on errors (e.g. permissions) instead of
/// guessing, since a wrong guess would overwrite or orphan a CA.
pub(crate) fn exists(path: &Path) -> Result<bool, CertsError> {
    path.try_exists()
        .map_err(|e| CertsError::io("cannot check", path, e))
}

/// Reads a PEM file.
pub(crate) fn read(path: &Path) -> Result<String, CertsError> {
    fs::read_to_string(path).map_err(|e| CertsError::io("cannot read", path, e))
}

/// Reads a file that may not be text (a DER certificate, a PEM whose parser wants bytes).
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, CertsError> {
    fs::read(path).map_err(|e| CertsError::io("cannot read", path, e))
}

/// Writes `contents` to `path` with exactly `mode`, creating parent folders
/// and replacing any existing file.
///
/// The old file is removed first so the new one is created with `mode` from
/// the start (`mode` on open only applies to new files), and the mode is set
/// again afterwards so the umask cannot change it.
pub(crate) fn write(path: &Path, contents: &str, mode: u32) -> Result<(), CertsError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| CertsError::io("cannot create", parent, e))?;
    }
    remove_if_present(path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CertsError::io("cannot create", path, e))?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| CertsError::io("cannot set permissions of", path, e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| CertsError::io("cannot write", path, e))
}

/// Removes `path` if it exists, so it can be recreated with a fresh mode.
fn remove_if_present(path: &Path) -> Result<(), CertsError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(CertsError::io("cannot replace", path, e))
        }
        _ => Ok(()),
    }
}
