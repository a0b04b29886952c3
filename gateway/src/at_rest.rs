//! Encryption of personal data at rest: the envelopes kept in the outbox and
//! the inbox are sealed with AES-256-GCM under a key the operator provides.
//!
//! Keys are files listed in `[storage] keys`, each holding 32 random bytes as
//! 64 hex digits. The *last* listed key seals new records; every listed key
//! opens old ones, so a key is rotated by appending a new file and retired,
//! once nothing sealed under it is left, by removing it from the list.
//!
//! A sealed value is self-describing, so that a record always says which key
//! it needs:
//!
//! ```text
//! offset  size  field
//! 0       1     format version: 1 = AES-256-GCM
//! 1       8     key id: the first 8 bytes of SHA-256("retorno at-rest key id\0" || key)
//! 9       12    nonce: random, from the operating system
//! 21      n+16  ciphertext and GCM tag
//! ```
//!
//! The caller's associated data (the record's tree and sled key) is
//! authenticated but not stored: a sealed value copied into another record,
//! or whose key id is changed to that of another configured key, does not open.
//!
//! Random 96-bit nonces are safe for about 2^32 values per key; a gateway
//! seals one value per message, orders of magnitude fewer, and rotation
//! starts a new count.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use sha2::{Digest, Sha256};

/// The format version written in the first byte of a sealed value.
const FORMAT_V1: u8 = 1;
/// Length of a key id.
const KEY_ID_LEN: usize = 8;
/// Header length: version, key id, nonce.
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// The GCM tag appended to the ciphertext.
const TAG_LEN: usize = 16;
/// A key is 32 bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// Names a key without revealing it: it is stored in every sealed value and
/// logged at start next to the key's file, so that an operator can tell
/// which file a record needs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    fn of(key: &[u8; KEY_LEN]) -> KeyId {
        let digest = Sha256::new()
            .chain_update(b"retorno at-rest key id\0")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }

    /// The id's bytes, as they appear in a sealed value's header.
    pub fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a key could not be loaded or a value could not be sealed or opened.
/// Messages never include key material or plaintext.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AtRestError {
    /// A key file cannot be used; `problem` says why and how to fix it.
    #[error("key file {}: {problem}", file.display())]
    KeyFile {
        /// The key file.
        file: PathBuf,
        /// What is wrong and the fix.
        problem: String,
    },
    /// Two listed files hold the same key.
    #[error("key files {} and {} hold the same key (id {id}): list each key once", first.display(), second.display())]
    DuplicateKey {
        /// The file listed first.
        first: PathBuf,
        /// The file listed later.
        second: PathBuf,
        /// The key's id.
        id: KeyId,
    },
    /// A value is sealed under a key that is not configured.
    #[error(
        "sealed under key {key_id}, which is not in storage.keys: add the key file with this id back to storage.keys (the gateway logs each key's id at start)"
    )]
    UnknownKey {
        /// The key id in the value's header.
        key_id: KeyId,
    },
    /// Authentication failed: the value was altered, moved from another
    /// record, or its header names the wrong key.
    #[error(
        "sealed under key {key_id} but does not open: it was altered or moved from another record"
    )]
    Refused {
        /// The key id in the value's header.
        key_id: KeyId,
    },
    /// Not a sealed value of a format this gateway knows.
    #[error("not a sealed value: {0}")]
    Malformed(&'static str),
    /// The operating system's random generator failed; nothing was sealed.
    #[error("the system random number generator failed; nothing was sealed")]
    Random,
    /// Sealing was asked of a vault without keys (a bug: callers check [`Vault::seals`]).
    #[error("storage.keys is empty: nothing can be sealed")]
    NoKey,
}

/// One loaded key.
struct VaultKey {
    id: KeyId,
    file: PathBuf,
    key: LessSafeKey,
}

/// The at-rest keys of a gateway: seals with the newest, opens with any.
///
/// A vault without keys seals nothing ([`Vault::seals`] is false) and the
/// store keeps envelopes in the clear, as before encryption existed.
pub struct Vault {
    /// In configuration order: the last one seals.
    keys: Vec<VaultKey>,
    random: SystemRandom,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<KeyId> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("Vault").field("keys", &ids).finish()
    }
}

impl Vault {
    /// A vault without keys: records are stored in the clear.
    pub fn clear() -> Vault {
        Vault {
            keys: Vec::new(),
            random: SystemRandom::new(),
        }
    }

    /// Loads the key files of `[storage] keys`, in order. Each must exist,
    /// be readable by this process and by no other user, and hold 64 hex
    /// digits; the same key may not be listed twice.
    pub fn load(files: &[PathBuf]) -> Result<Vault, AtRestError> {
        let mut vault = Vault::clear();
        for file in files {
            let key = read_key_file(file)?;
            let id = KeyId::of(&key);
            if let Some(first) = vault.keys.iter().find(|k| k.id == id) {
                return Err(AtRestError::DuplicateKey {
                    first: first.file.clone(),
                    second: file.clone(),
                    id,
                });
            }
            vault.keys.push(VaultKey {
                id,
                file: file.clone(),
                key: aes_key(file, &key)?,
            });
        }
        Ok(vault)
    }

    /// Whether new values are sealed (at least one key is configured).
    pub fn seals(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The id of the key that seals new values.
    pub fn sealing_key(&self) -> Option<KeyId> {
        self.keys.last().map(|k| k.id)
    }

    /// Every configured key's id and file, in configuration order.
    pub fn keys(&self) -> impl Iterator<Item = (KeyId, &Path)> {
        self.keys.iter().map(|k| (k.id, k.file.as_path()))
    }

    /// Says at start whether personal data is protected at rest, and which
    /// key id is which file, so that an [`AtRestError::UnknownKey`] can be
    /// traced to a file.
    pub fn log_status(&self) {
        let Some(sealing) = self.keys.last() else {
            tracing::warn!(
                "storage.keys is empty: personal data (envelopes in the outbox and inbox) is NOT encrypted at rest; list a key file in [storage] keys to encrypt it"
            );
            return;
        };
        for key in &self.keys {
            tracing::info!(key_id = %key.id, file = %key.file.display(), "at-rest key loaded");
        }
        tracing::info!(key_id = %sealing.id, "personal data is encrypted at rest; new records use this key");
    }

    /// Seals `plaintext` under the newest key, binding `associated_data`
    /// (which is not stored and must be given again to open).
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, AtRestError> {
        let key = self.keys.last().ok_or(AtRestError::NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| AtRestError::Random)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(key.id.as_bytes());
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data),
                &mut body,
            )
            // ring fails only for inputs beyond GCM's ~64 GiB limit.
            .map_err(|_| AtRestError::Malformed("too large to seal"))?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens a value sealed by [`Vault::seal`] under any configured key,
    /// with the same associated data.
    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, AtRestError> {
        let key_id = key_id_of(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(AtRestError::UnknownKey { key_id })?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        let mut body = sealed[HEADER_LEN..].to_vec();
        let plaintext = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data),
                &mut body,
            )
            .map_err(|_| AtRestError::Refused { key_id })?;
        let len = plaintext.len();
        body.truncate(len);
        Ok(body)
    }
}

/// The key id in a sealed value's header.
pub fn key_id_of(sealed: &[u8]) -> Result<KeyId, AtRestError> {
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(AtRestError::Malformed("shorter than a header and a tag"));
    }
    if sealed[0] != FORMAT_V1 {
        return Err(AtRestError::Malformed("unknown format version"));
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
    Ok(KeyId(id))
}

/// ring refuses only a key of the wrong length, which a `KEY_LEN` array is not.
fn aes_key(file: &Path, key: &[u8; KEY_LEN]) -> Result<LessSafeKey, AtRestError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| key_problem(file, "is not an AES-256 key".into()))
}

fn key_problem(file: &Path, problem: String) -> AtRestError {
    AtRestError::KeyFile {
        file: file.to_owned(),
        problem,
    }
}

/// How to make a key file, for error messages.
fn how_to_make(file: &Path) -> String {
    format!(
        "create one with `openssl rand -hex 32 > {0} && chmod 600 {0}` (or `retorno-gateway dev` for a development region)",
        file.display()
    )
}

fn read_key_file(file: &Path) -> Result<[u8; KEY_LEN], AtRestError> {
    let metadata = std::fs::metadata(file).map_err(|error| {
        let problem = match error.kind() {
            std::io::ErrorKind::NotFound => {
                format!("does not exist: fix the path, or {}", how_to_make(file))
            }
            _ => format!("cannot be read ({error}): make it readable by the gateway's user"),
        };
        key_problem(file, problem)
    })?;
    check_private(file, &metadata)?;
    let text = std::fs::read_to_string(file).map_err(|error| {
        key_problem(
            file,
            format!("cannot be read ({error}): make it readable by the gateway's user"),
        )
    })?;
    parse_hex_key(text.trim()).ok_or_else(|| {
        key_problem(
            file,
            format!(
                "must hold exactly {} hex digits (32 random bytes) and nothing else: {}",
                2 * KEY_LEN,
                how_to_make(file)
            ),
        )
    })
}

/// A key file that other users can read (or replace) protects nothing.
#[cfg(unix)]
fn check_private(file: &Path, metadata: &std::fs::Metadata) -> Result<(), AtRestError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(key_problem(
            file,
            format!(
                "is open to other users (mode {mode:03o}): run `chmod 600 {}`",
                file.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &Path, _metadata: &std::fs::Metadata) -> Result<(), AtRestError> {
    Ok(())
}

fn parse_hex_key(text: &str) -> Option<[u8; KEY_LEN]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * KEY_LEN {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(key)
}

/// Writes a new random key to `file` (which must not exist), readable by
/// its owner only, and returns its id. `retorno-gateway dev` uses it.
pub fn write_new_key(file: &Path) -> Result<KeyId, AtRestError> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| AtRestError::Random)?;
    let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let cannot = |error: std::io::Error| key_problem(file, format!("cannot be written: {error}"));
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder).map_err(cannot)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file).map_err(cannot)?;
    std::io::Write::write_all(&mut out, format!("{text}\n").as_bytes()).map_err(cannot)?;
    out.sync_all().map_err(cannot)?;
    Ok(KeyId::of(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(dir: &Path, names: &[&str]) -> Vault {
        let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
        for file in &files {
            if !file.exists() {
                write_new_key(file).unwrap();
            }
        }
        Vault::load(&files).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_associated_data() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path(), &["a.key"]);
        let sealed = vault.seal(b"Ana Lucia", b"inbox/1").unwrap();
        assert_eq!(sealed.len(), HEADER_LEN + 9 + TAG_LEN);
        assert_eq!(key_id_of(&sealed).unwrap(), vault.sealing_key().unwrap());
        assert_eq!(vault.open(&sealed, b"inbox/1").unwrap(), b"Ana Lucia");
        let moved = vault.open(&sealed, b"inbox/2").unwrap_err();
        assert!(matches!(moved, AtRestError::Refused { .. }), "{moved}");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            vault.open(&altered, b"inbox/1"),
            Err(AtRestError::Refused { .. })
        ));
        assert_ne!(
            vault.seal(b"Ana Lucia", b"inbox/1").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn a_new_key_seals_new_values_and_old_ones_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let first = vault(dir.path(), &["2026-11.key"]);
        let old = first.seal(b"old", b"k").unwrap();
        let rotated = vault(dir.path(), &["2026-11.key", "2026-12.key"]);
        let new = rotated.seal(b"new", b"k").unwrap();
        assert_eq!(key_id_of(&old).unwrap(), first.sealing_key().unwrap());
        assert_eq!(key_id_of(&new).unwrap(), rotated.sealing_key().unwrap());
        assert_ne!(first.sealing_key(), rotated.sealing_key());
        assert_eq!(rotated.open(&old, b"k").unwrap(), b"old");
        assert_eq!(rotated.open(&new, b"k").unwrap(), b"new");

        let retired = vault(dir.path(), &["2026-12.key"]);
        let error = retired.open(&old, b"k").unwrap_err();
        assert_eq!(
            error,
            AtRestError::UnknownKey {
                key_id: first.sealing_key().unwrap()
            }
        );
        assert!(
            error
                .to_string()
                .contains(&first.sealing_key().unwrap().to_string()),
            "{error}"
        );
    }

    #[test]
    fn a_value_relabelled_with_another_configured_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let both = vault(dir.path(), &["one.key", "two.key"]);
        let ids: Vec<KeyId> = both.keys().map(|(id, _)| id).collect();
        let mut sealed = both.seal(b"Perez Xol", b"k").unwrap();
        assert_eq!(key_id_of(&sealed).unwrap(), ids[1]);
        sealed[1..1 + KEY_ID_LEN].copy_from_slice(ids[0].as_bytes());
        assert_eq!(
            both.open(&sealed, b"k").unwrap_err(),
            AtRestError::Refused { key_id: ids[0] }
        );
    }

    #[test]
    fn key_files_that_cannot_protect_anything_are_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.key");
        let error = Vault::load(std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("missing.key") && error.contains("does not exist"),
            "{error}"
        );

        let short = dir.path().join("short.key");
        std::fs::write(&short, "abcd\n").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = Vault::load(std::slice::from_ref(&short))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("short.key") && error.contains("64 hex digits"),
            "{error}"
        );

        let open = dir.path().join("open.key");
        write_new_key(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Vault::load(std::slice::from_ref(&open))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("open.key") && error.contains("chmod 600"),
            "{error}"
        );

        let good = dir.path().join("good.key");
        write_new_key(&good).unwrap();
        let mode = std::fs::metadata(&good).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let copy = dir.path().join("copy.key");
        std::fs::copy(&good, &copy).unwrap();
        let error = Vault::load(&[good, copy]).unwrap_err();
        assert!(matches!(error, AtRestError::DuplicateKey { .. }), "{error}");
    }

    #[test]
    fn a_vault_without_keys_seals_nothing() {
        let vault = Vault::load(&[]).unwrap();
        assert!(!vault.seals());
        assert_eq!(vault.seal(b"x", b"k").unwrap_err(), AtRestError::NoKey);
    }
}
