//! Which certificate an operator means when renewing or revoking one.
//!
//! A certificate is named by whom it belongs to (a gateway, an agency role),
//! not by its file, so that the issuing CA and the revocation list that
//! covers it follow from the [`Layout`] and cannot be mixed up.

use std::path::PathBuf;

use rcgen::CertificateParams;

use crate::names::{ROLES, normalize_country};
use crate::profile::{self, Validity};
use crate::{CertsError, Layout};

/// The holder of one leaf certificate of a development PKI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A country's gateway certificate, issued by the regional root.
    Gateway {
        /// ISO 3166-1 alpha-2 code, any case.
        country: String,
    },
    /// An agency's client certificate, issued by its country's agency CA.
    Agency {
        /// ISO 3166-1 alpha-2 code, any case.
        country: String,
        /// One of [`ROLES`].
        role: String,
    },
}

/// The files of one holder: its certificate and key, its CA and the CRL of that CA.
pub(crate) struct HolderFiles {
    /// The leaf certificate.
    pub(crate) cert: PathBuf,
    /// The leaf's private key.
    pub(crate) key: PathBuf,
    /// The issuing CA's certificate.
    pub(crate) ca_cert: PathBuf,
    /// The issuing CA's private key.
    pub(crate) ca_key: PathBuf,
    /// The revocation list the issuing CA publishes.
    pub(crate) crl: PathBuf,
}

impl Holder {
    /// Checks the country code and role before anything is read or written.
    pub(crate) fn checked(&self) -> Result<Holder, CertsError> {
        match self {
            Holder::Gateway { country } => Ok(Holder::Gateway {
                country: normalize_country(country)?,
            }),
            Holder::Agency { country, role } => {
                if !ROLES.contains(&role.as_str()) {
                    return Err(CertsError::InvalidRole(role.clone()));
                }
                Ok(Holder::Agency {
                    country: normalize_country(country)?,
                    role: role.clone(),
                })
            }
        }
    }

    /// Where this holder's files and its CA's files are.
    pub(crate) fn files(&self, layout: &Layout) -> HolderFiles {
        match self {
            Holder::Gateway { country } => HolderFiles {
                cert: layout.gateway_cert(country),
                key: layout.gateway_key(country),
                ca_cert: layout.root_ca(),
                ca_key: layout.root_ca_key(),
                crl: layout.root_crl(),
            },
            Holder::Agency { country, role } => HolderFiles {
                cert: layout.agency_cert(country, role),
                key: layout.agency_key(country, role),
                ca_cert: layout.agency_ca(country),
                ca_key: layout.agency_ca_key(country),
                crl: layout.agency_crl(country),
            },
        }
    }

    /// What a fresh certificate for this holder contains.
    pub(crate) fn params(&self, validity: Validity) -> Result<CertificateParams, CertsError> {
        match self {
            Holder::Gateway { country } => profile::gateway(country, validity),
            Holder::Agency { country, role } => profile::agency(country, role, validity),
        }
    }
}
