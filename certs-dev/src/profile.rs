//! What each kind of certificate contains.
//!
//! The gateway relies on these exact contents (EKUs, SANs, CA flags), so each
//! profile is one small function that is easy to compare with the spec.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType, date_time_ymd,
};

use crate::CertsError;
use crate::names::{agency_name, agency_uri, gateway_dns_name, gateway_uri};

/// How far certificates are backdated, so small clock skew between
/// machines does not make fresh certificates "not yet valid".
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// How long certificates stay valid: long enough that a dev setup does not
/// expire mid-project, short enough that stray copies die.
const LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// One day, the unit operators think of certificate lifetimes in.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a renewed certificate is valid, in days counted from now.
///
/// The default is what [`crate::generate`] issues: from an hour ago to a year
/// from now. Tests of expiry want a certificate whose validity has already
/// ended, e.g. `Lifetime { not_before_days_ago: 10, valid_days: 9 }` (expired
/// yesterday), and operators may want short-lived ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// How many days ago the validity starts (besides the hour of backdating).
    pub not_before_days_ago: u32,
    /// How many days the certificate is valid from that start.
    pub valid_days: u32,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime {
            not_before_days_ago: 0,
            valid_days: (LIFETIME.as_secs() / DAY.as_secs()) as u32,
        }
    }
}

/// The validity window of one run, captured once so every certificate of a
/// run gets the same dates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Validity {
    /// Start of validity as a duration since the Unix epoch.
    not_before: Duration,
    /// End of validity as a duration since the Unix epoch.
    not_after: Duration,
}

impl Validity {
    /// A window from an hour ago to a year from now.
    pub(crate) fn starting_now() -> Self {
        Self::from_lifetime(Lifetime::default())
    }

    /// The window `lifetime` describes, from the current time.
    pub(crate) fn from_lifetime(lifetime: Lifetime) -> Self {
        let start = now().saturating_sub(DAY * lifetime.not_before_days_ago);
        Self {
            not_before: start.saturating_sub(BACKDATE),
            not_after: start.saturating_add(DAY * lifetime.valid_days),
        }
    }

    /// Sets `not_before` and `not_after`, computed from rcgen's own date helper
    /// so the crate needs no direct dependency on `time`.
    fn apply(self, params: &mut CertificateParams) {
        let epoch = date_time_ymd(1970, 1, 1);
        params.not_before = epoch + self.not_before;
        params.not_after = epoch + self.not_after;
    }
}

/// The current time as a duration since the Unix epoch.
pub(crate) fn now() -> Duration {
    // A clock before 1970 is not worth failing over; the epoch is as good a start.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The regional root: trusted by every gateway to authenticate peer gateways.
pub(crate) fn root_ca(validity: Validity) -> CertificateParams {
    ca("retorno dev regional root", validity)
}

/// A country's agency CA: separate from the root so a country's agencies can
/// reach only their own gateway, never another country's.
pub(crate) fn agency_ca(cc: &str, validity: Validity) -> CertificateParams {
    ca(&format!("retorno dev agency CA {cc}"), validity)
}

/// A gateway leaf: server towards everyone and client towards peer gateways,
/// reachable by its test DNS name or locally.
pub(crate) fn gateway(cc: &str, validity: Validity) -> Result<CertificateParams, CertsError> {
    let sans = vec![
        dns(gateway_dns_name(cc))?,
        dns("localhost".to_owned())?,
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        uri(gateway_uri(cc))?,
    ];
    let purposes = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(leaf(
        &format!("retorno gateway {cc}"),
        sans,
        purposes,
        validity,
    ))
}

/// An agency's client certificate: its URI SAN tells the gateway which
/// country, role and agency is calling.
pub(crate) fn agency(
    cc: &str,
    role: &str,
    validity: Validity,
) -> Result<CertificateParams, CertsError> {
    let common_name = format!("{} ({cc} {role})", agency_name(cc, role));
    let sans = vec![uri(agency_uri(cc, role))?];
    let purposes = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(leaf(&common_name, sans, purposes, validity))
}

/// Common shape of both CAs: self-signed, allowed to sign leaves (and CRLs) only.
fn ca(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity.apply(&mut params);
    params
}

/// Common shape of all leaves: not a CA, signs TLS handshakes, and names its
/// issuer's key so verifiers can pick the right CA.
fn leaf(
    common_name: &str,
    subject_alt_names: Vec<SanType>,
    extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    validity: Validity,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = extended_key_usages;
    params.subject_alt_names = subject_alt_names;
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params);
    params
}

/// A DNS SAN; fails only for non-ASCII names, which validated codes never produce.
fn dns(name: String) -> Result<SanType, CertsError> {
    let value = name
        .clone()
        .try_into()
        .map_err(|e| CertsError::crypto(format!("use DNS name {name:?}"), e))?;
    Ok(SanType::DnsName(value))
}

/// A URI SAN; fails only for non-ASCII URIs, which validated codes never produce.
fn uri(name: String) -> Result<SanType, CertsError> {
    let value = name
        .clone()
        .try_into()
        .map_err(|e| CertsError::crypto(format!("use URI {name:?}"), e))?;
    Ok(SanType::URI(value))
}
