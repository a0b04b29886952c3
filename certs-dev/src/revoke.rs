//! Revoking one leaf: adding its serial number to its CA's revocation list.
//!
//! Each CA publishes one CRL (`root/crl.pem` for gateways, `CC/agency-crl.pem`
//! for a country's agencies). Revoking rewrites that file with every serial it
//! already listed plus the new one, so revocations accumulate; gateways that
//! list the file in `tls.crls` re-read it and refuse the certificate on every
//! new connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
    date_time_ymd,
};
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::files::{self, PUBLIC_MODE};
use crate::holder::Holder;
use crate::profile;
use crate::{CertsError, Layout};

/// How long a CRL says it stays current. Gateways do not enforce it (a stale
/// list still revokes), so it only tells readers when to expect a new one.
const CRL_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How far `thisUpdate` is backdated, against clock skew (as for certificates).
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Adds `holder`'s current certificate to its CA's CRL, signed by that CA,
/// and returns the CRL file. Revoking the same certificate twice is harmless.
pub fn revoke(layout: &Layout, holder: &Holder) -> Result<PathBuf, CertsError> {
    let holder = holder.checked()?;
    let files = holder.files(layout);
    let serial = serial_of(&files.cert)?;
    let issuer = load_issuer(&files.ca_cert, &files.ca_key)?;
    let now = profile::now();
    let epoch = date_time_ymd(1970, 1, 1);
    let mut revoked = listed(&files.crl)?;
    if !revoked.iter().any(|entry| entry.serial_number == serial) {
        revoked.push(RevokedCertParams {
            serial_number: serial,
            revocation_time: epoch + now,
            reason_code: None,
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update: epoch + now.saturating_sub(BACKDATE),
        next_update: epoch + now.saturating_add(CRL_LIFETIME),
        // Seconds since the epoch: increases with every revocation, as RFC 5280 asks.
        crl_number: SerialNumber::from(now.as_secs()),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params
        .signed_by(&issuer)
        .and_then(|crl| crl.pem())
        .map_err(|e| CertsError::crypto(format!("sign {}", files.crl.display()), e))?;
    files::write(&files.crl, &crl, PUBLIC_MODE)?;
    Ok(files.crl)
}

/// The serial number of the certificate in a PEM file.
fn serial_of(cert: &Path) -> Result<SerialNumber, CertsError> {
    let bytes = files::read_bytes(cert)?;
    let (_, pem) = parse_x509_pem(&bytes).map_err(|e| CertsError::unreadable(cert, e))?;
    let parsed = pem
        .parse_x509()
        .map_err(|e| CertsError::unreadable(cert, e))?;
    Ok(SerialNumber::from_slice(parsed.raw_serial()))
}

/// A CA able to sign a CRL; both files must exist.
fn load_issuer(cert: &Path, key: &Path) -> Result<Issuer<'static, KeyPair>, CertsError> {
    for path in [cert, key] {
        if !files::exists(path)? {
            return Err(CertsError::MissingCa(path.to_owned()));
        }
    }
    let key_pair = KeyPair::from_pem(&files::read(key)?)
        .map_err(|e| CertsError::crypto(format!("load key {}", key.display()), e))?;
    Issuer::from_ca_cert_pem(&files::read(cert)?, key_pair)
        .map_err(|e| CertsError::crypto(format!("load CA {}", cert.display()), e))
}

/// The entries of an existing CRL, so that a new revocation keeps the old ones.
fn listed(crl: &Path) -> Result<Vec<RevokedCertParams>, CertsError> {
    if !files::exists(crl)? {
        return Ok(Vec::new());
    }
    let bytes = files::read_bytes(crl)?;
    let (_, pem) = parse_x509_pem(&bytes).map_err(|e| CertsError::unreadable(crl, e))?;
    let (_, list) = CertificateRevocationList::from_der(&pem.contents)
        .map_err(|e| CertsError::unreadable(crl, e))?;
    let epoch = date_time_ymd(1970, 1, 1);
    Ok(list
        .iter_revoked_certificates()
        .map(|entry| RevokedCertParams {
            serial_number: SerialNumber::from_slice(entry.raw_serial()),
            revocation_time: epoch
                + Duration::from_secs(entry.revocation_date.timestamp().max(0) as u64),
            reason_code: None,
            invalidity_date: None,
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Options, generate};

    fn revoked_serials(crl: &Path) -> Vec<Vec<u8>> {
        let bytes = std::fs::read(crl).unwrap();
        let (_, pem) = parse_x509_pem(&bytes).unwrap();
        let (_, list) = CertificateRevocationList::from_der(&pem.contents).unwrap();
        list.iter_revoked_certificates()
            .map(|entry| entry.raw_serial().to_vec())
            .collect()
    }

    fn serial(cert: &Path) -> Vec<u8> {
        serial_of(cert).unwrap().to_bytes()
    }

    #[test]
    fn revocations_accumulate_in_the_issuing_cas_list() {
        let dir = tempfile::tempdir().unwrap();
        let layout = generate(&Options {
            out: dir.path().to_owned(),
            countries: vec!["MX".into(), "GT".into()],
            force: false,
        })
        .unwrap();
        let consulate = Holder::Agency {
            country: "mx".into(),
            role: "consulate".into(),
        };
        let inm = Holder::Agency {
            country: "MX".into(),
            role: "destination-authority".into(),
        };
        assert_eq!(
            revoke(&layout, &consulate).unwrap(),
            layout.agency_crl("MX")
        );
        revoke(&layout, &inm).unwrap();
        revoke(&layout, &consulate).unwrap();
        let listed = revoked_serials(&layout.agency_crl("MX"));
        assert_eq!(
            listed,
            vec![
                serial(&layout.agency_cert("MX", "consulate")),
                serial(&layout.agency_cert("MX", "destination-authority")),
            ]
        );

        let crl = revoke(
            &layout,
            &Holder::Gateway {
                country: "GT".into(),
            },
        )
        .unwrap();
        assert_eq!(crl, layout.root_crl());
        assert_eq!(
            revoked_serials(&crl),
            vec![serial(&layout.gateway_cert("GT"))]
        );
        assert!(!layout.agency_crl("GT").exists());
    }

    #[test]
    fn revoking_without_a_pki_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = revoke(
            &Layout::new(dir.path()),
            &Holder::Gateway {
                country: "MX".into(),
            },
        )
        .unwrap_err();
        assert!(error.to_string().contains("gateway.pem"), "{error}");
    }
}
