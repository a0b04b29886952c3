//! Country codes, roles and the names derived from them.
//!
//! The gateway matches peers by these exact strings (DNS names, URI SANs),
//! so they are defined once here and used by both the generator and the gateway.

use crate::CertsError;

/// The agency roles a country has, in the order of the agency table.
///
/// Each role gets one client certificate per country; the gateway authorises
/// calls by the role found in the certificate's URI SAN.
/// `operator` is the national operations team: it runs the gateway and sees
/// message metadata only, never a payload.
pub const ROLES: [&str; 4] = [
    "destination-authority",
    "child-protection",
    "consulate",
    "operator",
];

/// Short agency names per country, in the order of [`ROLES`], so development
/// certificates look like the real institutions that will hold them.
const AGENCIES: [(&str, [&str; 4]); 5] = [
    ("MX", ["INM", "DIF", "SRE", "OPS"]),
    ("GT", ["IGM", "SBS", "MINEX", "OPS"]),
    ("HN", ["INM", "DINAF", "SRECI", "OPS"]),
    ("US", ["DHS", "ORR", "DOS", "OPS"]),
    ("SV", ["DGME", "CONNA", "RREE", "OPS"]),
];

/// Agency names for countries missing from [`AGENCIES`], so any country works.
const DEFAULT_AGENCIES: [&str; 4] = ["DA", "CP", "CONS", "OPS"];

/// Name returned for a role outside [`ROLES`], rather than panicking.
const UNKNOWN_AGENCY: &str = "AGENCY";

/// The short agency name holding `role` in country `cc` (case-insensitive),
/// e.g. `agency_name("GT", "child-protection") == "SBS"`.
///
/// Countries outside the table get `DA`, `CP`, `CONS` and `OPS`; a role outside
/// [`ROLES`] gets `AGENCY`.
pub fn agency_name(cc: &str, role: &str) -> &'static str {
    let names = AGENCIES
        .iter()
        .find(|(country, _)| country.eq_ignore_ascii_case(cc))
        .map_or(&DEFAULT_AGENCIES, |(_, names)| names);
    ROLES
        .iter()
        .zip(names)
        .find(|(known, _)| **known == role)
        .map_or(UNKNOWN_AGENCY, |(_, name)| name)
}

/// The DNS name of a country's gateway, `gateway.cc.retorno.test`, which
/// peers dial and which its server certificate carries.
pub fn gateway_dns_name(cc: &str) -> String {
    format!("gateway.{}.retorno.test", cc.to_ascii_lowercase())
}

/// The URI SAN identifying a country's gateway, `urn:retorno:gateway:CC`,
/// which peers check to know which country is calling.
pub fn gateway_uri(cc: &str) -> String {
    format!("urn:retorno:gateway:{}", cc.to_ascii_uppercase())
}

/// The URI SAN identifying an agency, `urn:retorno:agency:CC:ROLE:NAME`,
/// which the gateway reads to authorise the agency's calls.
pub fn agency_uri(cc: &str, role: &str) -> String {
    let cc = cc.to_ascii_uppercase();
    let name = agency_name(&cc, role);
    format!("urn:retorno:agency:{cc}:{role}:{name}")
}

/// Validates and normalises country codes: trimmed, upper case, duplicates
/// dropped (first occurrence wins), at least one.
///
/// Done before anything is written so a typo never leaves a half-made PKI.
pub(crate) fn normalize_countries(countries: &[String]) -> Result<Vec<String>, CertsError> {
    let mut normalized: Vec<String> = Vec::with_capacity(countries.len());
    for raw in countries {
        let cc = normalize_country(raw)?;
        if !normalized.contains(&cc) {
            normalized.push(cc);
        }
    }
    if normalized.is_empty() {
        return Err(CertsError::NoCountries);
    }
    Ok(normalized)
}

/// One country code: exactly two ASCII letters once trimmed, returned in upper case.
pub(crate) fn normalize_country(raw: &str) -> Result<String, CertsError> {
    let trimmed = raw.trim();
    if trimmed.len() == 2 && trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(trimmed.to_ascii_uppercase())
    } else {
        Err(CertsError::InvalidCountry(raw.to_owned()))
    }
}
