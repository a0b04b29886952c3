//! Where each file of a development PKI lives.
//!
//! The gateway's `dev` command and its config point at these paths, so the
//! layout is fixed and computed in one place.

use std::path::{Path, PathBuf};

/// Paths of a PKI folder, whether or not [`crate::generate`] made it.
///
/// Country codes are upper-cased, so `gateway_cert("mx")` and
/// `gateway_cert("MX")` are the same file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The PKI folder (`--out`).
    dir: PathBuf,
}

impl Layout {
    /// A layout rooted at `dir`; nothing is read or written.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The PKI folder itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `root/ca.pem`: the regional root every gateway trusts for peer gateways.
    pub fn root_ca(&self) -> PathBuf {
        self.dir.join("root").join("ca.pem")
    }

    /// `root/ca.key.pem`: the regional root's key, needed to add countries later.
    pub fn root_ca_key(&self) -> PathBuf {
        self.dir.join("root").join("ca.key.pem")
    }

    /// `root/crl.pem`: the regional root's revocation list (revoked gateway certificates).
    pub fn root_crl(&self) -> PathBuf {
        self.dir.join("root").join("crl.pem")
    }

    /// `CC/`: everything belonging to one country.
    pub fn country_dir(&self, cc: &str) -> PathBuf {
        self.dir.join(cc.to_ascii_uppercase())
    }

    /// `CC/gateway.pem`: the gateway's leaf certificate (server and client).
    pub fn gateway_cert(&self, cc: &str) -> PathBuf {
        self.country_dir(cc).join("gateway.pem")
    }

    /// `CC/gateway.key.pem`: the gateway's private key.
    pub fn gateway_key(&self, cc: &str) -> PathBuf {
        self.country_dir(cc).join("gateway.key.pem")
    }

    /// `CC/agency-ca.pem`: the only CA a country's gateway trusts for its agencies.
    pub fn agency_ca(&self, cc: &str) -> PathBuf {
        self.country_dir(cc).join("agency-ca.pem")
    }

    /// `CC/agency-ca.key.pem`: the agency CA's key, needed to issue more agency certificates.
    pub fn agency_ca_key(&self, cc: &str) -> PathBuf {
        self.country_dir(cc).join("agency-ca.key.pem")
    }

    /// `CC/agency-crl.pem`: the agency CA's revocation list (revoked agency certificates).
    pub fn agency_crl(&self, cc: &str) -> PathBuf {
        self.country_dir(cc).join("agency-crl.pem")
    }

    /// `CC/agencies/ROLE.pem`: the client certificate of the agency holding `role`.
    pub fn agency_cert(&self, cc: &str, role: &str) -> PathBuf {
        self.agencies_dir(cc).join(format!("{role}.pem"))
    }

    /// `CC/agencies/ROLE.key.pem`: that agency's private key.
    pub fn agency_key(&self, cc: &str, role: &str) -> PathBuf {
        self.agencies_dir(cc).join(format!("{role}.key.pem"))
    }

    /// `.gitignore` containing `*`, so the keys are never committed wherever the folder is.
    pub fn gitignore(&self) -> PathBuf {
        self.dir.join(".gitignore")
    }

    /// `CC/agencies/`: one country's agency certificates.
    fn agencies_dir(&self, cc: &str) -> PathBuf {
        self.country_dir(cc).join("agencies")
    }
}
