//! Reading messages from JSON files that mirror the proto field names, and
//! checking them before anything is sent.
//!
//! A file is checked with [`retorno_proto::rules`], the very rules the
//! gateway applies, so that a missing field is reported by the program,
//! before it connects, with the name the person wrote in the file
//! (`bestInterest`, not `advance_notice.best_interest`).

use std::path::Path;

use retorno_proto::{
    rules::{self, DATE_SHAPE, Invalid, TIMESTAMP_SHAPE},
    v1::{AdvanceNotice, CaseSummary},
};

use crate::error::ClientError;

/// Reads an advance notice from a JSON file (proto3 JSON mapping: field names
/// as in the .proto or in lowerCamelCase, enums by name, dates as objects)
/// and checks it with the gateway's rules. An error names the field.
pub fn read_notice(file: &Path) -> Result<AdvanceNotice, ClientError> {
    let notice = read_message(file)?;
    rules::advance_notice("advance_notice", &notice)
        .map_err(|invalid| input(file, in_json(&invalid, "advance_notice")))?;
    Ok(notice)
}

/// Reads a case summary from a JSON file and checks it with the gateway's rules.
pub fn read_summary(file: &Path) -> Result<CaseSummary, ClientError> {
    let summary = read_message(file)?;
    rules::case_summary("case_summary", &summary)
        .map_err(|invalid| input(file, in_json(&invalid, "case_summary")))?;
    Ok(summary)
}

/// Reads any retorno.v1 message from a JSON file, without checking its content.
pub fn read_message<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, ClientError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| input(file, format!("cannot read it: {e}")))?;
    parse_message(&text).map_err(|problem| input(file, problem))
}

fn input(file: &Path, problem: String) -> ClientError {
    ClientError::Input {
        file: file.to_owned(),
        problem,
    }
}

/// A refusal by the rules, worded like a reading error: `field bestInterest: is required`.
fn in_json(invalid: &Invalid, root: &str) -> String {
    match invalid.json_field(root) {
        field if field.is_empty() => invalid.rule.clone(),
        field => format!("field {field}: {}", invalid.rule),
    }
}

/// Parses an advance notice from JSON text; the error names the field.
pub fn parse_notice(text: &str) -> Result<AdvanceNotice, String> {
    parse_message(text)
}

/// Parses any retorno.v1 message from JSON text; the error names the field
/// and, for a value of the wrong shape, shows the shape expected.
pub fn parse_message<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        let inner = match expected_shape(&inner) {
            Some(shape) => format!("{inner}; write it as {shape}"),
            None => inner,
        };
        if path == "." || path.is_empty() {
            inner
        } else {
            format!("field {path}: {inner}")
        }
    })
}

/// The JSON shape of a value whose type serde names in `error`, for the
/// message types a person most often writes wrongly.
fn expected_shape(error: &str) -> Option<&'static str> {
    const SHAPES: [(&str, &str); 2] = [
        ("retorno.v1.Date", DATE_SHAPE),
        // pbjson's Timestamp expects "a date string".
        ("a date string", TIMESTAMP_SHAPE),
    ];
    SHAPES
        .iter()
        .find(|(type_name, _)| error.contains(type_name))
        .map(|(_, shape)| *shape)
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

    #[test]
    fn a_date_written_as_text_shows_the_shape_of_a_date() {
        let error = parse_notice(r#"{"bestInterest": {"date": "2026-11-20"}}"#).unwrap_err();
        assert!(error.starts_with("field bestInterest.date:"), "{error}");
        assert!(
            error.ends_with(r#"write it as {"year": 2026, "month": 12, "day": 4}"#),
            "{error}"
        );
    }

    #[test]
    fn a_time_written_as_a_number_shows_the_shape_of_a_time() {
        let error =
            parse_message::<retorno_proto::v1::ArrivalProposal>(r#"{"arrival": 5}"#).unwrap_err();
        assert!(error.starts_with("field arrival:"), "{error}");
        assert!(
            error.ends_with(r#"write it as "2026-12-04T16:00:00Z""#),
            "{error}"
        );
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn a_missing_field_is_named_as_written_in_the_file() {
        let mut notice: serde_json::Value =
            serde_json::from_str(include_str!("../examples/notice-mx-gt.json")).unwrap();
        notice.as_object_mut().unwrap().remove("bestInterest");
        let file = write(&notice.to_string());
        let error = read_notice(file.path()).unwrap_err().to_string();
        assert!(
            error.ends_with("field bestInterest: is required"),
            "{error}"
        );

        let examples = [
            include_str!("../examples/notice-mx-gt.json"),
            include_str!("../examples/notice-mx-hn.json"),
        ];
        for example in examples {
            read_notice(write(example).path()).unwrap();
        }
    }

    #[test]
    fn a_summary_is_checked_with_the_gateways_rules() {
        let file = write(r#"{"health": {"conditions": "asthma"}}"#);
        let error = read_summary(file.path()).unwrap_err().to_string();
        assert!(
            error.ends_with("field health.readers: is required"),
            "{error}"
        );
        let example = write(include_str!("../examples/summary-mx-gt.json"));
        read_summary(example.path()).unwrap();
    }
}
