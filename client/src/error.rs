//! The client library's errors.

use std::path::PathBuf;

/// What went wrong talking to a gateway, in words an agency's staff can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The profile file is missing or wrong.
    #[error("profile {file}: {problem}")]
    Profile {
        /// The profile file.
        file: PathBuf,
        /// What is wrong.
        problem: ProfileProblem,
    },
    /// Certificates or the connection failed.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The gateway refused or failed the call. Not a `source`: the message
    /// already says everything, and printing the chain would repeat it.
    #[error("the gateway refused the request ({:?}): {}", .0.code(), .0.message())]
    Status(tonic::Status),
    /// A message file could not be read.
    #[error("{file}: {problem}")]
    Input {
        /// The file.
        file: PathBuf,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// A command-line value cannot be used.
    #[error(transparent)]
    BadInput(#[from] crate::compose::BadInput),
}

/// Why a profile file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileProblem {
    /// It cannot be read (the system's reason).
    #[error("cannot read it: {0}")]
    Unreadable(std::io::Error),
    /// It is not a profile (the TOML parser's reason).
    #[error("{0}")]
    NotAProfile(String),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Status(status)
    }
}

impl ClientError {
    /// What failed, in `lang`: a refusal from its reason code, a connection
    /// that failed with what to check; a file or a TLS setting as it is (it
    /// names the file or the setting).
    pub fn render(&self, lang: crate::i18n::Lang) -> String {
        match self {
            ClientError::Status(status) => crate::refusal::render_status(status, lang),
            ClientError::Tls(crate::tls::TlsError::Transport { address, cause }) => {
                cause.describe_in(address, lang)
            }
            ClientError::Tls(file @ crate::tls::TlsError::File { .. }) => {
                file.render_file(lang).unwrap_or_else(|| file.to_string())
            }
            ClientError::Profile { file, problem } if lang != crate::i18n::Lang::En => {
                let file = file.display().to_string();
                let (id, why) = match problem {
                    ProfileProblem::Unreadable(error) => match error.kind() {
                        std::io::ErrorKind::NotFound => ("profile-not-found", String::new()),
                        std::io::ErrorKind::PermissionDenied => {
                            ("profile-no-permission", String::new())
                        }
                        _ => ("profile-unreadable", error.to_string()),
                    },
                    ProfileProblem::NotAProfile(why) => ("profile-invalid", why.clone()),
                };
                lang.text(
                    id,
                    &[
                        ("file", crate::i18n::FluentValue::from(file)),
                        ("why", crate::i18n::FluentValue::from(why)),
                    ],
                )
            }
            other => other.to_string(),
        }
    }

    /// A failed call to the gateway at `address`: a refusal by the gateway
    /// stays a [`ClientError::Status`]; a failure of the connection under the
    /// call (a certificate refused at the handshake, a gateway gone) names its cause.
    pub fn of_call(address: &str, status: tonic::Status) -> ClientError {
        // hyper reports a connection closed under a waiting call as cancelled.
        let closed = (status.code() == tonic::Code::Cancelled
            && std::error::Error::source(&status).is_some())
        .then_some(crate::tls::TransportCause::Closed);
        match crate::tls::TransportCause::of(&status).or(closed) {
            Some(cause) => ClientError::Tls(crate::tls::TlsError::Transport {
                address: address.to_owned(),
                cause,
            }),
            None => ClientError::Status(status),
        }
    }
}
