//! Who is on the other end of a TLS connection, read from its certificate once.
//!
//! A peer is who its certificate says, never what a message claims. The
//! certificate's chain is checked by rustls against the listener's CA; this
//! module then reads the one `urn:retorno:…` URI SAN into an [`Identity`].

use std::{fmt, str::FromStr};

use retorno_proto::v1;
use x509_parser::{extensions::GeneralName, prelude::FromDer};

use crate::country::Country;

/// The role an agency plays, from its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends notices about children in its country to their origin.
    DestinationAuthority,
    /// Receives its own country's children and decides on their reception.
    ChildProtection,
    /// Its country's consulate abroad: interviews children and acknowledges handoffs.
    Consulate,
    /// The national operations team running the gateway: uses the Operator
    /// API, sees message metadata only (never a payload) and sends nothing.
    Operator,
}

impl Role {
    /// The role's name as written in certificates and profiles.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::DestinationAuthority => "destination-authority",
            Role::ChildProtection => "child-protection",
            Role::Consulate => "consulate",
            Role::Operator => "operator",
        }
    }

    /// The role a wire enum names, if any.
    pub fn from_proto(role: v1::Role) -> Option<Role> {
        match role {
            v1::Role::DestinationAuthority => Some(Role::DestinationAuthority),
            v1::Role::ChildProtection => Some(Role::ChildProtection),
            v1::Role::Consulate => Some(Role::Consulate),
            v1::Role::Operator => Some(Role::Operator),
            v1::Role::Unspecified => None,
        }
    }

    /// The wire enum for this role.
    pub fn to_proto(self) -> v1::Role {
        match self {
            Role::DestinationAuthority => v1::Role::DestinationAuthority,
            Role::ChildProtection => v1::Role::ChildProtection,
            Role::Consulate => v1::Role::Consulate,
            Role::Operator => v1::Role::Operator,
        }
    }
}

impl FromStr for Role {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "destination-authority" => Ok(Role::DestinationAuthority),
            "child-protection" => Ok(Role::ChildProtection),
            "consulate" => Ok(Role::Consulate),
            "operator" => Ok(Role::Operator),
            other => Err(IdentityError::BadUri(format!("unknown role {other:?}"))),
        }
    }
}

/// An authenticated party.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A country's gateway (`urn:retorno:gateway:CC`), certified by the regional root.
    Gateway {
        /// The gateway's country.
        country: Country,
    },
    /// An agency (`urn:retorno:agency:CC:ROLE:NAME`), certified by its country's agency CA.
    Agency {
        /// The agency's country.
        country: Country,
        /// What the agency may do.
        role: Role,
        /// The agency's short name, e.g. `SBS`.
        name: String,
    },
}

/// Why a certificate does not name a retorno party.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The TLS session has no client certificate.
    #[error("no client certificate was presented")]
    NoCertificate,
    /// The certificate could not be parsed.
    #[error("the certificate could not be read: {0}")]
    Unreadable(String),
    /// The certificate has no `urn:retorno:` URI, or more than one.
    #[error("the certificate must carry exactly one urn:retorno: URI SAN, found {0}")]
    UriCount(usize),
    /// The URI is not of a known form.
    #[error("the certificate's identity URI is not valid: {0}")]
    BadUri(String),
}

const URN_PREFIX: &str = "urn:retorno:";

impl Identity {
    /// Reads the identity from a DER certificate (the leaf of the peer's chain).
    pub fn from_certificate(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| IdentityError::Unreadable(e.to_string()))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::Unreadable(e.to_string()))?;
        let uris: Vec<&str> = san
            .iter()
            .flat_map(|ext| ext.value.general_names.iter())
            .filter_map(|name| match name {
                GeneralName::URI(uri) if uri.starts_with(URN_PREFIX) => Some(*uri),
                _ => None,
            })
            .collect();
        match uris.as_slice() {
            [uri] => uri.parse(),
            _ => Err(IdentityError::UriCount(uris.len())),
        }
    }

    /// The country the party belongs to.
    pub fn country(&self) -> Country {
        match self {
            Identity::Gateway { country } | Identity::Agency { country, .. } => *country,
        }
    }

    /// The identity as its URN, the form used as a storage key for acknowledgements.
    pub fn urn(&self) -> String {
        self.to_string()
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(uri: &str) -> Result<Self, Self::Err> {
        let bad = || IdentityError::BadUri(uri.to_owned());
        let rest = uri.strip_prefix(URN_PREFIX).ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let country = |code: &str| code.parse::<Country>().map_err(|_| bad());
        match parts.as_slice() {
            ["gateway", cc] => Ok(Identity::Gateway {
                country: country(cc)?,
            }),
            ["agency", cc, role, name] if !name.is_empty() => Ok(Identity::Agency {
                country: country(cc)?,
                role: role.parse()?,
                name: (*name).to_owned(),
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Gateway { country } => write!(f, "{URN_PREFIX}gateway:{country}"),
            Identity::Agency {
                country,
                role,
                name,
            } => write!(f, "{URN_PREFIX}agency:{country}:{}:{name}", role.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_and_writes_them_back() {
        for urn in [
            "urn:retorno:gateway:GT",
            "urn:retorno:agency:GT:child-protection:SBS",
            "urn:retorno:agency:GT:operator:OPS",
        ] {
            assert_eq!(urn.parse::<Identity>().unwrap().to_string(), urn);
        }
    }

    #[test]
    fn refuses_unknown_forms() {
        for bad in [
            "urn:retorno:gateway:GTM",
            "urn:retorno:agency:GT:judge:X",
            "urn:retorno:agency:GT:consulate:",
            "urn:other:gateway:GT",
        ] {
            assert!(bad.parse::<Identity>().is_err(), "{bad} accepted");
        }
    }
}
