//! What an operator needs to know about the certificates and revocation lists
//! in use: whose they are, when they expire, and a warning before they do.
//!
//! webpki already refuses an expired certificate at every handshake; this
//! module exists so that nobody learns of an expiry from a refused handshake.

use std::path::{Path, PathBuf};

use x509_parser::{
    prelude::{FromDer, X509Certificate},
    revocation_list::CertificateRevocationList,
};

const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

/// Which part of the trust set a certificate plays; named in logs and in `check-config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateRole {
    /// The gateway's own certificate (server and client).
    Gateway,
    /// An intermediate CA in the gateway certificate's file.
    Intermediate,
    /// A regional root CA (peers are certified under it).
    RegionalRoot,
    /// This country's agency CA (agencies are certified under it).
    AgencyCa,
}

impl CertificateRole {
    /// The role as an operator reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateRole::Gateway => "gateway certificate",
            CertificateRole::Intermediate => "intermediate CA",
            CertificateRole::RegionalRoot => "regional root",
            CertificateRole::AgencyCa => "agency CA",
        }
    }
}

/// One certificate in use and its expiry.
#[derive(Clone, Debug)]
pub struct CertificateInfo {
    /// The file it was read from.
    pub file: PathBuf,
    /// What it is for.
    pub role: CertificateRole,
    /// Its subject, e.g. `CN=retorno gateway MX`.
    pub subject: String,
    /// The end of its validity, as written in the certificate.
    pub not_after: String,
    /// The end of its validity, in seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// Who issued it, to match it with that issuer's revocation list.
    pub issuer: String,
    /// Its serial number as encoded, as a revocation list names it.
    pub serial: Vec<u8>,
}

impl CertificateInfo {
    /// Reads the subject and expiry of a DER certificate; `None` if it does not
    /// parse (webpki has refused such a certificate before this is asked).
    pub(crate) fn read(file: &Path, role: CertificateRole, der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let not_after = cert.validity().not_after;
        Some(CertificateInfo {
            file: file.to_owned(),
            role,
            subject: cert.subject().to_string(),
            not_after: not_after.to_string(),
            not_after_unix: not_after.timestamp(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial().to_vec(),
        })
    }

    /// Whole days until expiry from `now` (seconds since the epoch); negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after_unix - now).div_euclid(SECONDS_PER_DAY)
    }

    /// Whole days until expiry from the current time.
    pub fn days_left_now(&self) -> i64 {
        self.days_left(crate::clock::system_seconds())
    }

    /// Whether the certificate's validity has ended.
    pub fn expired(&self) -> bool {
        self.not_after_unix <= crate::clock::system_seconds()
    }
}

/// One revocation list in use.
#[derive(Clone, Debug)]
pub struct CrlInfo {
    /// The file it was read from.
    pub file: PathBuf,
    /// The CA that signed it.
    pub issuer: String,
    /// How many certificates it revokes.
    pub revoked: usize,
    /// When its issuer promised a newer list, if it says.
    pub next_update: Option<String>,
    /// Whether that date has passed. A stale list still revokes what it lists,
    /// but certificates revoked since are not in it.
    pub stale: bool,
    /// When its issuer made it, in seconds since the Unix epoch (its age
    /// is a metric: a list that stops being refreshed grows old).
    pub this_update_unix: i64,
    /// The serial numbers it revokes, as encoded.
    pub revoked_serials: Vec<Vec<u8>>,
}

impl CrlInfo {
    /// Reads the issuer, size and freshness of a DER CRL; `None` if it does not parse.
    pub(crate) fn read(file: &Path, der: &[u8]) -> Option<Self> {
        let (_, crl) = CertificateRevocationList::from_der(der).ok()?;
        let next_update = crl.next_update();
        Some(CrlInfo {
            file: file.to_owned(),
            issuer: crl.issuer().to_string(),
            revoked: crl.iter_revoked_certificates().count(),
            next_update: next_update.map(|time| time.to_string()),
            stale: next_update
                .is_some_and(|time| time.timestamp() < crate::clock::system_seconds()),
            this_update_unix: crl.last_update().timestamp(),
            revoked_serials: crl
                .iter_revoked_certificates()
                .map(|revoked| revoked.raw_serial().to_vec())
                .collect(),
        })
    }

    /// Whether this list revokes `certificate` (same issuer, listed serial).
    pub fn revokes(&self, certificate: &CertificateInfo) -> bool {
        self.issuer == certificate.issuer && self.revoked_serials.contains(&certificate.serial)
    }
}

/// Logs each certificate that has expired (error) or has fewer than
/// `warning_days` left (warning), naming the file, the subject and the days
/// left; and each revocation list past its next update.
pub(crate) fn warn(certificates: &[CertificateInfo], crls: &[CrlInfo], warning_days: u32) {
    let now = crate::clock::system_seconds();
    for cert in certificates {
        let days_left = cert.days_left(now);
        let (file, subject, role) = (cert.file.display(), &cert.subject, cert.role.as_str());
        if cert.not_after_unix <= now {
            tracing::error!(%file, %subject, role, expired = %cert.not_after, "certificate has expired: renew it; handshakes that rely on it are refused");
        } else if days_left < i64::from(warning_days) {
            tracing::warn!(%file, %subject, role, days_left, expires = %cert.not_after, "certificate expires soon: renew it");
        }
    }
    for crl in crls.iter().filter(|crl| crl.stale) {
        tracing::warn!(file = %crl.file.display(), issuer = %crl.issuer, next_update = crl.next_update.as_deref().unwrap_or("-"), "revocation list is past its next update: fetch a newer one");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_counts_whole_days_and_goes_negative_after_expiry() {
        let info = |not_after_unix| CertificateInfo {
            file: PathBuf::from("gateway.pem"),
            role: CertificateRole::Gateway,
            subject: "CN=x".into(),
            not_after: String::new(),
            not_after_unix,
            issuer: "CN=ca".into(),
            serial: vec![1],
        };
        let now = 1_800_000_000;
        assert_eq!(info(now + 30 * SECONDS_PER_DAY).days_left(now), 30);
        assert_eq!(info(now + 30 * SECONDS_PER_DAY - 1).days_left(now), 29);
        assert_eq!(info(now - 1).days_left(now), -1);
    }
}
