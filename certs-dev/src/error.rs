//! The one error type of the crate, so the gateway's `dev` command and the
//! binary can report every failure with the file or value that caused it.

use std::io;
use std::path::PathBuf;

/// Everything that can stop [`crate::generate`] from producing a usable PKI.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// No country was given, and a PKI without gateways is useless.
    #[error("no country given: pass at least one ISO 3166-1 alpha-2 code, e.g. MX,GT")]
    NoCountries,

    /// A country code is not two ASCII letters; it would become a folder name
    /// and part of DNS names and URIs, so it is rejected before anything is written.
    #[error("invalid country code {0:?}: expected exactly two ASCII letters (ISO 3166-1 alpha-2)")]
    InvalidCountry(String),

    /// Only half of a CA is on disk; reusing it is impossible and silently
    /// replacing it would orphan whatever it already signed.
    #[error(
        "incomplete CA: {present} exists but {missing} does not; restore it or rerun with --force"
    )]
    IncompleteCa {
        /// The file that is there.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },

    /// A role that is not one of [`crate::ROLES`].
    #[error(
        "unknown role {0:?}: expected one of destination-authority, child-protection, consulate, operator"
    )]
    InvalidRole(String),

    /// Renewing or revoking needs the issuing CA, and it is not there.
    #[error(
        "{0} does not exist: generate the PKI first (retorno-certs-dev --out DIR --countries ...)"
    )]
    MissingCa(PathBuf),

    /// A certificate or CRL on disk could not be parsed.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },

    /// Reading, writing or creating a file or folder failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "cannot write".
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// rcgen could not build, sign or parse a key or certificate.
    #[error("cannot {action}: {source}")]
    Crypto {
        /// What was being done, e.g. "sign certificate for gateway MX".
        action: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
}

impl CertsError {
    /// Wraps an I/O error with the path it concerns, since a bare
    /// "permission denied" is useless in a tool that writes dozens of files.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A file that exists but does not hold what it should.
    pub(crate) fn unreadable(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Self::Unreadable {
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// Wraps an rcgen error with what was being built, for the same reason.
    pub(crate) fn crypto(action: impl Into<String>, source: rcgen::Error) -> Self {
        Self::Crypto {
            action: action.into(),
            source,
        }
    }
}
