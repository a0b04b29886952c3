//! A connection profile: which gateway an agency talks to and with which certificate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ClientError, ProfileProblem};

/// Everything needed to reach one's own gateway over mutual TLS. Relative
/// paths in a profile file are taken relative to the file's folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `host:port` of the gateway's Agency API.
    pub gateway: String,
    /// The DNS name the gateway's certificate must carry; defaults to the host of `gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
    /// The regional root CA that certifies gateways.
    pub ca: PathBuf,
    /// The agency's certificate.
    pub cert: PathBuf,
    /// The agency's private key.
    pub key: PathBuf,
}

impl Profile {
    /// Reads a profile file.
    pub fn load(file: &Path) -> Result<Profile, ClientError> {
        let text = std::fs::read_to_string(file).map_err(|e| ClientError::Profile {
            file: file.to_owned(),
            problem: ProfileProblem::Unreadable(e),
        })?;
        let mut profile: Profile = toml::from_str(&text).map_err(|e| ClientError::Profile {
            file: file.to_owned(),
            problem: ProfileProblem::NotAProfile(e.to_string()),
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        for path in [&mut profile.ca, &mut profile.cert, &mut profile.key] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        Ok(profile)
    }

    /// The profile as TOML, for writing to a file.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// The name the gateway's certificate must carry.
    pub fn server_name(&self) -> &str {
        match &self.tls_name {
            Some(name) => name,
            None => self
                .gateway
                .rsplit_once(':')
                .map_or(self.gateway.as_str(), |(host, _)| host),
        }
    }
}
