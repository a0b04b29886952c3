//! Creating or reusing CAs and leaves, and recording which files were written.
//!
//! Re-running must never change a working PKI, yet adding a country later must
//! issue its files under the same CAs; this module holds those rules.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, Issuer, KeyPair};

use crate::CertsError;
use crate::files::{self, KEY_MODE, PUBLIC_MODE};

/// A CA ready to sign, and whether it was just created.
pub(crate) struct Authority {
    /// The CA's name, key identifier and key.
    issuer: Issuer<'static, KeyPair>,
    /// True when the CA was made in this run: leaves signed by an older CA
    /// would no longer chain to it, so they are all reissued.
    fresh: bool,
}

/// One generation run: its policy and what it has written or kept so far.
pub(crate) struct Run {
    /// Regenerate everything instead of reusing files.
    force: bool,
    /// Files written by this run, in order.
    pub(crate) written: Vec<PathBuf>,
    /// Files left as they were.
    pub(crate) kept: Vec<PathBuf>,
}

impl Run {
    /// A run that reuses existing files unless `force` is set.
    pub(crate) fn new(force: bool) -> Self {
        Self {
            force,
            written: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// Writes a small public file unless it exists (or `force`).
    pub(crate) fn ensure_file(&mut self, path: &Path, contents: &str) -> Result<(), CertsError> {
        if !self.force && files::exists(path)? {
            self.kept.push(path.to_owned());
            return Ok(());
        }
        self.write(path, contents, PUBLIC_MODE)
    }

    /// Loads the CA at `cert`/`key`, or creates it from `params` when both are
    /// missing (or `force`). Half a CA is an error rather than silently replaced.
    pub(crate) fn ensure_ca(
        &mut self,
        cert: &Path,
        key: &Path,
        params: CertificateParams,
    ) -> Result<Authority, CertsError> {
        if !self.force {
            match (files::exists(cert)?, files::exists(key)?) {
                (true, true) => return self.load_ca(cert, key),
                (true, false) => return Err(incomplete(cert, key)),
                (false, true) => return Err(incomplete(key, cert)),
                (false, false) => {}
            }
        }
        self.create_ca(cert, key, params)
    }

    /// Loads the CA at `cert`/`key`, which must both exist: renewing a leaf
    /// must never create a CA that nothing else trusts.
    pub(crate) fn existing_ca(&mut self, cert: &Path, key: &Path) -> Result<Authority, CertsError> {
        for path in [cert, key] {
            if !files::exists(path)? {
                return Err(CertsError::MissingCa(path.to_owned()));
            }
        }
        self.load_ca(cert, key)
    }

    /// Issues a leaf signed by `authority` unless both files exist and are
    /// still valid under it (i.e. the CA is not fresh and there is no `force`).
    pub(crate) fn ensure_leaf(
        &mut self,
        cert: &Path,
        key: &Path,
        params: CertificateParams,
        authority: &Authority,
    ) -> Result<(), CertsError> {
        let reusable = !self.force && !authority.fresh;
        if reusable && files::exists(cert)? && files::exists(key)? {
            self.kept.extend([cert.to_owned(), key.to_owned()]);
            return Ok(());
        }
        let key_pair = generate_key(cert)?;
        let certificate = params
            .signed_by(&key_pair, &authority.issuer)
            .map_err(|e| CertsError::crypto(format!("sign {}", cert.display()), e))?;
        self.write(key, &key_pair.serialize_pem(), KEY_MODE)?;
        self.write(cert, &certificate.pem(), PUBLIC_MODE)
    }

    /// Reuses an existing CA: its subject and key identifier are read from the
    /// certificate, so new leaves chain to it exactly.
    fn load_ca(&mut self, cert: &Path, key: &Path) -> Result<Authority, CertsError> {
        let key_pair = KeyPair::from_pem(&files::read(key)?)
            .map_err(|e| CertsError::crypto(format!("load key {}", key.display()), e))?;
        let issuer = Issuer::from_ca_cert_pem(&files::read(cert)?, key_pair)
            .map_err(|e| CertsError::crypto(format!("load CA {}", cert.display()), e))?;
        self.kept.extend([cert.to_owned(), key.to_owned()]);
        Ok(Authority {
            issuer,
            fresh: false,
        })
    }

    /// Creates a self-signed CA and writes it, key first.
    fn create_ca(
        &mut self,
        cert: &Path,
        key: &Path,
        params: CertificateParams,
    ) -> Result<Authority, CertsError> {
        let key_pair = generate_key(cert)?;
        let certificate = params
            .self_signed(&key_pair)
            .map_err(|e| CertsError::crypto(format!("self-sign {}", cert.display()), e))?;
        self.write(key, &key_pair.serialize_pem(), KEY_MODE)?;
        self.write(cert, &certificate.pem(), PUBLIC_MODE)?;
        Ok(Authority {
            issuer: Issuer::new(params, key_pair),
            fresh: true,
        })
    }

    /// Writes one file and records it.
    fn write(&mut self, path: &Path, contents: &str, mode: u32) -> Result<(), CertsError> {
        files::write(path, contents, mode)?;
        self.written.push(path.to_owned());
        Ok(())
    }
}

/// A new ECDSA P-256 key (rcgen's default) for the certificate at `cert`.
fn generate_key(cert: &Path) -> Result<KeyPair, CertsError> {
    KeyPair::generate()
        .map_err(|e| CertsError::crypto(format!("generate key for {}", cert.display()), e))
}

/// The error for a CA with only one of its two files.
fn incomplete(present: &Path, missing: &Path) -> CertsError {
    CertsError::IncompleteCa {
        present: present.to_owned(),
        missing: missing.to_owned(),
    }
}
