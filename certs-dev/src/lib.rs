//! Development PKI for a retorno region.
//!
//! Country gateways exchange repatriation messages over gRPC with mutual TLS,
//! so running a region locally or in tests needs a full set of certificates
//! with exactly the names and purposes the gateway checks. This crate writes
//! them with [rcgen] into a fixed folder layout ([`Layout`]):
//!
//! ```text
//! DIR/.gitignore                                        "*": never committed
//! DIR/root/ca.pem, ca.key.pem                           regional root CA
//! DIR/CC/gateway.pem, gateway.key.pem                   gateway leaf, signed by the root
//! DIR/CC/agency-ca.pem, agency-ca.key.pem               the country's own agency CA
//! DIR/CC/agencies/ROLE.pem, ROLE.key.pem                agency client certs, signed by it
//! DIR/root/crl.pem, DIR/CC/agency-crl.pem               revocation lists, once [`revoke`] wrote them
//! ```
//!
//! Trust model: every gateway trusts the regional root for peer gateways and
//! only its own country's agency CA for agencies. Gateways are identified by
//! the URI SAN `urn:retorno:gateway:CC`, agencies by
//! `urn:retorno:agency:CC:ROLE:NAME`.
//!
//! Re-running [`generate`] keeps existing files and reuses existing CAs to
//! issue whatever is missing (e.g. a country added later); with
//! [`Options::force`] everything is regenerated. [`renew()`] replaces one leaf
//! (new key, optionally a chosen [`Lifetime`]) and [`revoke()`] adds one to its
//! CA's revocation list, for rotation and revocation drills and their tests.
//!
//! # Layout
//!
//! - `names`: country codes, [`ROLES`], the agency table, DNS names and URIs.
//! - `layout`: [`Layout`], the path of every file in a PKI folder.
//! - `profile`: what each kind of certificate contains.
//! - `issue`: creating or reusing CAs and leaves, recording what was written.
//! - `holder`: [`Holder`], whose certificate to renew or revoke.
//! - `renew`: [`renew()`], a new key and certificate under the existing CA.
//! - `revoke`: [`revoke()`], the CA's revocation list.
//! - `files`: reading and writing files with safe permissions.
//! - `error`: [`CertsError`].
//! - this file: [`Options`], [`generate`] and [`generate_with_report`].

mod error;
mod files;
mod holder;
mod issue;
mod layout;
mod names;
mod profile;
mod renew;
mod revoke;

use std::path::PathBuf;

pub use error::CertsError;
pub use holder::Holder;
pub use layout::Layout;
pub use names::{ROLES, agency_name, agency_uri, gateway_dns_name, gateway_uri};
pub use profile::Lifetime;
pub use renew::renew;
pub use revoke::revoke;

use issue::Run;
use profile::Validity;

/// What to generate; built by the binary's arguments or by the gateway's
/// `dev` command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The PKI folder to write into.
    pub out: PathBuf,
    /// ISO 3166-1 alpha-2 codes, any case; duplicates are ignored.
    pub countries: Vec<String>,
    /// Regenerate (overwrite) everything instead of keeping existing files.
    pub force: bool,
}

/// The outcome of a run, so callers can tell the user what changed.
#[derive(Clone, Debug)]
pub struct Report {
    /// Where everything is.
    pub layout: Layout,
    /// Files written by this run, in the order they were written.
    pub written: Vec<PathBuf>,
    /// Existing files left untouched.
    pub kept: Vec<PathBuf>,
}

/// Writes what is missing (or everything with force) and returns where everything is.
pub fn generate(options: &Options) -> Result<Layout, CertsError> {
    generate_with_report(options).map(|report| report.layout)
}

/// Like [`generate`], but also says which files were written and which kept,
/// for the binary's output.
///
/// Country codes are validated before anything is written.
pub fn generate_with_report(options: &Options) -> Result<Report, CertsError> {
    let countries = names::normalize_countries(&options.countries)?;
    let layout = Layout::new(&options.out);
    let validity = Validity::starting_now();
    let mut run = Run::new(options.force);

    run.ensure_file(&layout.gitignore(), "*\n")?;
    let root = run.ensure_ca(
        &layout.root_ca(),
        &layout.root_ca_key(),
        profile::root_ca(validity),
    )?;
    for cc in &countries {
        run.ensure_leaf(
            &layout.gateway_cert(cc),
            &layout.gateway_key(cc),
            profile::gateway(cc, validity)?,
            &root,
        )?;
        generate_agencies(&mut run, &layout, cc, validity)?;
    }

    Ok(Report {
        layout,
        written: run.written,
        kept: run.kept,
    })
}

/// One country's agency CA and its agency certificates, one per role.
fn generate_agencies(
    run: &mut Run,
    layout: &Layout,
    cc: &str,
    validity: Validity,
) -> Result<(), CertsError> {
    let agency_ca = run.ensure_ca(
        &layout.agency_ca(cc),
        &layout.agency_ca_key(cc),
        profile::agency_ca(cc, validity),
    )?;
    for role in ROLES {
        run.ensure_leaf(
            &layout.agency_cert(cc, role),
            &layout.agency_key(cc, role),
            profile::agency(cc, role, validity)?,
            &agency_ca,
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::net::Ipv4Addr;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::pem::{Pem, parse_x509_pem};

    fn options(dir: &Path, countries: &[&str], force: bool) -> Options {
        Options {
            out: dir.to_owned(),
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            force,
        }
    }

    fn run(dir: &Path, countries: &[&str], force: bool) -> Report {
        generate_with_report(&options(dir, countries, force)).expect("generate")
    }

    /// Every file of the layout for `countries`, keys flagged.
    fn all_files(layout: &Layout, countries: &[&str]) -> Vec<(PathBuf, bool)> {
        let mut files = vec![
            (layout.gitignore(), false),
            (layout.root_ca(), false),
            (layout.root_ca_key(), true),
        ];
        for cc in countries {
            files.push((layout.gateway_cert(cc), false));
            files.push((layout.gateway_key(cc), true));
            files.push((layout.agency_ca(cc), false));
            files.push((layout.agency_ca_key(cc), true));
            for role in ROLES {
                files.push((layout.agency_cert(cc, role), false));
                files.push((layout.agency_key(cc, role), true));
            }
        }
        files
    }

    /// Contents of every file under `dir`, to compare runs.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut found = BTreeMap::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    found.insert(path.clone(), fs::read(&path).expect("read"));
                }
            }
        }
        found
    }

    fn pem(path: &Path) -> Pem {
        let bytes = fs::read(path).expect("read cert");
        let (_, pem) = parse_x509_pem(&bytes).expect("parse pem");
        pem
    }

    fn sans(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
        let ext = cert
            .subject_alternative_name()
            .expect("san")
            .expect("has san");
        ext.value
            .general_names
            .iter()
            .map(|name| match name {
                GeneralName::DNSName(d) => format!("DNS:{d}"),
                GeneralName::URI(u) => format!("URI:{u}"),
                GeneralName::IPAddress(ip) => {
                    let octets: [u8; 4] = (*ip).try_into().expect("ipv4");
                    format!("IP:{}", Ipv4Addr::from(octets))
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn authority_key_id(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<u8> {
        cert.extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .expect("authority key id")
    }

    fn subject_key_id(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<u8> {
        cert.extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
                _ => None,
            })
            .expect("subject key id")
    }

    /// Asserts `leaf` was issued and signed by `ca`.
    fn assert_issued_by(leaf: &Path, ca: &Path) {
        let (leaf_pem, ca_pem) = (pem(leaf), pem(ca));
        let leaf = leaf_pem.parse_x509().expect("leaf");
        let ca = ca_pem.parse_x509().expect("ca");
        assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
        assert_eq!(authority_key_id(&leaf), subject_key_id(&ca));
        leaf.verify_signature(Some(ca.public_key()))
            .expect("signature verifies");
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn writes_every_file_with_safe_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run(dir.path(), &["MX", "GT"], false);
        let expected = all_files(&report.layout, &["MX", "GT"]);
        assert_eq!(report.written.len(), expected.len());
        assert_eq!(report.written.len(), 27);
        assert!(report.kept.is_empty());
        for (path, is_key) in expected {
            assert!(path.is_file(), "{} missing", path.display());
            let want = if is_key { 0o600 } else { 0o644 };
            assert_eq!(mode(&path), want, "mode of {}", path.display());
        }
        assert_eq!(
            fs::read_to_string(report.layout.gitignore()).unwrap(),
            "*\n"
        );
    }

    #[test]
    fn gateway_cert_names_its_country_and_chains_to_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = generate(&options(dir.path(), &["MX", "GT"], false)).expect("generate");
        let gateway_pem = pem(&layout.gateway_cert("GT"));
        let gateway = gateway_pem.parse_x509().expect("gateway");
        let sans = sans(&gateway);
        for want in [
            "URI:urn:retorno:gateway:GT",
            "DNS:gateway.gt.retorno.test",
            "DNS:localhost",
            "IP:127.0.0.1",
        ] {
            assert!(sans.iter().any(|s| s == want), "{want} not in {sans:?}");
        }
        let eku = gateway.extended_key_usage().unwrap().expect("eku").value;
        assert!(eku.server_auth && eku.client_auth);
        assert_eq!(gateway.subject().to_string(), "CN=retorno gateway GT");
        assert!(!gateway.is_ca());
        assert_issued_by(&layout.gateway_cert("GT"), &layout.root_ca());

        let root_pem = pem(&layout.root_ca());
        let root = root_pem.parse_x509().expect("root");
        assert!(root.is_ca());
        assert_eq!(root.subject().to_string(), "CN=retorno dev regional root");
        let usage = root.key_usage().unwrap().expect("key usage").value;
        assert!(usage.key_cert_sign() && usage.crl_sign());
    }

    #[test]
    fn agency_cert_names_its_agency_and_chains_to_its_agency_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = generate(&options(dir.path(), &["MX", "GT"], false)).expect("generate");
        let cert_path = layout.agency_cert("GT", "child-protection");
        assert!(cert_path.ends_with("GT/agencies/child-protection.pem"));
        let agency_pem = pem(&cert_path);
        let agency = agency_pem.parse_x509().expect("agency");
        assert_eq!(
            sans(&agency),
            ["URI:urn:retorno:agency:GT:child-protection:SBS"]
        );
        assert_eq!(agency.subject().to_string(), "CN=SBS (GT child-protection)");
        let eku = agency.extended_key_usage().unwrap().expect("eku").value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_issued_by(&cert_path, &layout.agency_ca("GT"));

        let ca_pem = pem(&layout.agency_ca("GT"));
        let ca = ca_pem.parse_x509().expect("agency ca");
        assert!(ca.is_ca());
        assert_eq!(ca.subject().to_string(), "CN=retorno dev agency CA GT");
        assert_eq!(ca.issuer().as_raw(), ca.subject().as_raw(), "self-signed");
    }

    #[test]
    fn rerun_keeps_files_byte_identical() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(dir.path(), &["MX", "GT"], false);
        let before = snapshot(dir.path());
        let report = run(dir.path(), &["gt", "MX"], false);
        assert!(report.written.is_empty(), "{:?}", report.written);
        assert_eq!(report.kept.len(), 27);
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn new_country_is_issued_under_the_same_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(dir.path(), &["MX", "GT"], false);
        let before = snapshot(dir.path());
        let report = run(dir.path(), &["MX", "GT", "HN"], false);
        assert_eq!(report.written.len(), 12);
        let after = snapshot(dir.path());
        for (path, bytes) in &before {
            assert_eq!(after.get(path), Some(bytes), "{} changed", path.display());
        }
        let layout = report.layout;
        assert_issued_by(&layout.gateway_cert("HN"), &layout.root_ca());
        assert_issued_by(&layout.gateway_cert("MX"), &layout.root_ca());
        assert_issued_by(
            &layout.agency_cert("HN", "consulate"),
            &layout.agency_ca("HN"),
        );
    }

    #[test]
    fn force_regenerates_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        run(dir.path(), &["MX"], false);
        let before = snapshot(dir.path());
        let report = run(dir.path(), &["MX"], true);
        assert_eq!(report.written.len(), 15);
        let after = snapshot(dir.path());
        for (path, bytes) in &before {
            if path.ends_with(".gitignore") {
                continue;
            }
            assert_ne!(after.get(path), Some(bytes), "{} kept", path.display());
        }
        assert_eq!(mode(&report.layout.root_ca_key()), 0o600);
        assert_issued_by(&report.layout.gateway_cert("MX"), &report.layout.root_ca());
    }

    #[test]
    fn replaced_agency_ca_reissues_its_agencies_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = run(dir.path(), &["MX", "GT"], false).layout;
        fs::remove_file(layout.agency_ca("GT")).unwrap();
        fs::remove_file(layout.agency_ca_key("GT")).unwrap();
        let report = run(dir.path(), &["MX", "GT"], false);
        assert_eq!(report.written.len(), 2 + 2 * ROLES.len());
        for role in ROLES {
            assert_issued_by(&layout.agency_cert("GT", role), &layout.agency_ca("GT"));
        }
    }

    #[test]
    fn half_a_ca_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = run(dir.path(), &["MX"], false).layout;
        fs::remove_file(layout.root_ca_key()).unwrap();
        let err = generate(&options(dir.path(), &["MX"], false)).unwrap_err();
        assert!(matches!(err, CertsError::IncompleteCa { .. }), "{err}");
        assert!(generate(&options(dir.path(), &["MX"], true)).is_ok());
    }

    #[test]
    fn bad_country_is_rejected_by_name_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("pki");
        let err = generate(&options(&out, &["MX", "GTM"], false)).unwrap_err();
        assert!(matches!(&err, CertsError::InvalidCountry(cc) if cc == "GTM"));
        assert!(err.to_string().contains("\"GTM\""), "{err}");
        assert!(!out.exists());
        for bad in ["", "M", "M1", "ÑA"] {
            assert!(generate(&options(&out, &[bad], false)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn countries_are_normalised_and_deduplicated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run(dir.path(), &["mx", "MX", " gt"], false);
        assert_eq!(report.written.len(), 27);
        assert!(report.layout.gateway_cert("MX").ends_with("MX/gateway.pem"));
        assert!(report.layout.gateway_cert("gt").is_file());
        assert!(!dir.path().join("mx").exists());
    }

    #[test]
    fn no_country_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = generate(&options(dir.path(), &[], false)).unwrap_err();
        assert!(matches!(err, CertsError::NoCountries));
    }

    #[test]
    fn agency_table_and_names() {
        assert_eq!(agency_name("GT", "child-protection"), "SBS");
        assert_eq!(agency_name("mx", "destination-authority"), "INM");
        assert_eq!(agency_name("US", "consulate"), "DOS");
        assert_eq!(agency_name("SV", "child-protection"), "CONNA");
        assert_eq!(agency_name("BR", "consulate"), "CONS");
        assert_eq!(agency_name("HN", "unknown"), "AGENCY");
        assert_eq!(gateway_dns_name("GT"), "gateway.gt.retorno.test");
        assert_eq!(gateway_uri("gt"), "urn:retorno:gateway:GT");
        assert_eq!(
            agency_uri("hn", "child-protection"),
            "urn:retorno:agency:HN:child-protection:DINAF"
        );
    }
}
