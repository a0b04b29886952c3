//! Renewing one leaf: a new key and a new certificate under the existing CA.
//!
//! This is what an operator does before a certificate expires or after its
//! key may have leaked: the gateways that trust the CA accept the new
//! certificate at once, and a running gateway picks up its own new
//! certificate from disk without a restart.

use std::path::PathBuf;

use crate::holder::Holder;
use crate::issue::Run;
use crate::profile::{Lifetime, Validity};
use crate::{CertsError, Layout};

/// Issues a new key and certificate for `holder` under its existing CA,
/// replacing the old files (key first, then certificate), and returns the
/// files written. The CA must exist: renewing never creates one, since a new
/// CA would silently orphan everything the old one signed.
pub fn renew(
    layout: &Layout,
    holder: &Holder,
    lifetime: Lifetime,
) -> Result<Vec<PathBuf>, CertsError> {
    let holder = holder.checked()?;
    let files = holder.files(layout);
    let params = holder.params(Validity::from_lifetime(lifetime))?;
    let mut run = Run::new(true);
    let authority = run.existing_ca(&files.ca_cert, &files.ca_key)?;
    run.ensure_leaf(&files.cert, &files.key, params, &authority)?;
    Ok(run.written)
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Options, generate};
    use x509_parser::pem::parse_x509_pem;

    fn not_after(cert: &std::path::Path) -> i64 {
        let bytes = std::fs::read(cert).unwrap();
        let (_, pem) = parse_x509_pem(&bytes).unwrap();
        pem.parse_x509().unwrap().validity().not_after.timestamp()
    }

    #[test]
    fn renewing_replaces_key_and_certificate_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let layout = generate(&Options {
            out: dir.path().to_owned(),
            countries: vec!["GT".into()],
            force: false,
        })
        .unwrap();
        let before = std::fs::read(layout.gateway_key("GT")).unwrap();
        let ca = std::fs::read(layout.root_ca()).unwrap();
        let gt = Holder::Gateway {
            country: "gt".into(),
        };
        let written = renew(&layout, &gt, Lifetime::default()).unwrap();
        assert_eq!(
            written,
            vec![layout.gateway_key("GT"), layout.gateway_cert("GT")]
        );
        assert_ne!(std::fs::read(layout.gateway_key("GT")).unwrap(), before);
        assert_eq!(
            std::fs::read(layout.root_ca()).unwrap(),
            ca,
            "the CA is kept"
        );

        let expired = Lifetime {
            not_before_days_ago: 10,
            valid_days: 9,
        };
        renew(&layout, &gt, expired).unwrap();
        let now = crate::profile::now().as_secs() as i64;
        assert!(not_after(&layout.gateway_cert("GT")) < now - 23 * 3600);
    }

    #[test]
    fn renewing_never_creates_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let error = renew(
            &layout,
            &Holder::Gateway {
                country: "MX".into(),
            },
            Lifetime::default(),
        )
        .unwrap_err();
        assert!(matches!(error, CertsError::MissingCa(_)), "{error}");
        assert!(!layout.root_ca().exists());
        let error = renew(
            &layout,
            &Holder::Agency {
                country: "MX".into(),
                role: "judge".into(),
            },
            Lifetime::default(),
        )
        .unwrap_err();
        assert!(matches!(error, CertsError::InvalidRole(_)), "{error}");
    }
}
