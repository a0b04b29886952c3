//! Reading messages from JSON files that mirror the proto field names.

use std::path::Path;

use retorno_proto::v1::AdvanceNotice;

use crate::error::ClientError;

/// Reads an advance notice from a JSON file (proto3 JSON mapping: field names
/// as in the .proto or in lowerCamelCase, enums by name, dates as objects).
/// An error names the field path where reading stopped.
pub fn read_notice(file: &Path) -> Result<AdvanceNotice, ClientError> {
    read_message(file)
}

/// Reads any retorno.v1 message from a JSON file, as [`read_notice`] does.
pub fn read_message<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, ClientError> {
    let text = std::fs::read_to_string(file).map_err(|e| ClientError::Input {
        file: file.to_owned(),
        problem: format!("cannot read it: {e}"),
    })?;
    parse_message(&text).map_err(|problem| ClientError::Input {
        file: file.to_owned(),
        problem,
    })
}

/// Parses an advance notice from JSON text; the error names the field.
pub fn parse_notice(text: &str) -> Result<AdvanceNotice, String> {
    parse_message(text)
}

/// Parses any retorno.v1 message from JSON text; the error names the field.
pub fn parse_message<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("field {path}: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_example_notice() {
        let text = include_str!("../examples/notice-mx-gt.json");
        let notice = parse_notice(text).unwrap();
        assert_eq!(notice.child.unwrap().given_names, "Ana Lucía");
    }

    #[test]
    fn errors_name_the_field() {
        let error = parse_notice(r#"{"child": {"sex": "SEX_TALL"}}"#).unwrap_err();
        assert!(error.starts_with("field child.sex:"), "{error}");
        let error = parse_notice(r#"{"bestInterest": {"date": {"year": "soon"}}}"#).unwrap_err();
        assert!(error.contains("bestInterest.date.year"), "{error}");
    }
}
