//! Country codes: the identity of a gateway and the address of a message.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 3166-1 alpha-2 country code in upper case, e.g. `GT`.
///
/// Parsed once where it enters (a certificate, a config file, a message) so
/// that the rest of the code never compares free-form strings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

/// A string that is not a two-letter country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a country code: expected two letters of ISO 3166-1 alpha-2, such as GT or MX"
)]
pub struct BadCountry(pub String);

impl Country {
    /// The code as text, e.g. `"GT"`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII upper-case letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The two bytes of the code, used as a storage key prefix.
    pub fn as_bytes(&self) -> [u8; 2] {
        self.0
    }

    /// Reads a code from the two bytes of a storage key prefix.
    pub fn from_bytes(bytes: [u8; 2]) -> Result<Self, BadCountry> {
        Self::from_str(&String::from_utf8_lossy(&bytes))
    }
}

impl FromStr for Country {
    type Err = BadCountry;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(BadCountry(s.to_owned())),
        }
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_letters_in_any_case() {
        assert_eq!("gt".parse::<Country>().unwrap().as_str(), "GT");
        assert_eq!("MX".parse::<Country>().unwrap().to_string(), "MX");
    }

    #[test]
    fn refuses_anything_else() {
        for bad in ["", "G", "GTM", "G1", "Ñ1", "12"] {
            assert!(bad.parse::<Country>().is_err(), "{bad:?} accepted");
        }
    }
}
