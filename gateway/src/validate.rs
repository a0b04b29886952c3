//! Checks on what agencies submit and what peers deliver, in one place.
//!
//! The same checks run at submit (so that an agency hears about a mistake at
//! once) and on receipt from a peer (so that nothing unchecked is stored, even
//! from a gateway with a bug). Every refusal names the field, with the proto
//! field path, and the rule it breaks.
//!
//! What each payload's fields must hold is [`retorno_proto::rules`], shared
//! with the `retorno` program so that it checks a file with the very rules
//! the gateway applies; this module adds what only a gateway parses (message
//! ids, [`Country`] values, the routing of an envelope body).

pub use retorno_proto::rules::{
    Fault, Invalid, advance_notice, case_id, official, payload_content, submitted_payload,
};
use retorno_proto::rules::{required_timestamp, unknown_payload};
use retorno_proto::v1::{self, EnvelopeBody};
use uuid::Uuid;

use crate::country::Country;

fn invalid(field: impl Into<String>, fault: Fault, rule: impl Into<String>) -> Invalid {
    Invalid::new(field, fault, rule)
}

/// Parses a message id: a hyphenated UUID of version 7.
pub fn message_id(field: &str, text: &str) -> Result<Uuid, Invalid> {
    let id = Uuid::try_parse(text)
        .map_err(|_| invalid(field, Fault::NotUuid, format!("{text:?} is not a UUID")))?;
    if id.get_version_num() != 7 {
        return Err(invalid(
            field,
            Fault::NotUuidV7,
            format!("{text:?} is not a UUIDv7 (time-ordered)"),
        ));
    }
    Ok(id)
}

/// Parses a country code field.
pub fn country(field: &str, text: &str) -> Result<Country, Invalid> {
    text.parse().map_err(|e: crate::country::BadCountry| {
        invalid(
            field,
            Fault::NotCountry {
                value: text.to_owned(),
            },
            e.to_string(),
        )
    })
}

/// The routing facts of a checked envelope body.
#[derive(Clone, Copy, Debug)]
pub struct Routing {
    /// The message id.
    pub id: Uuid,
    /// The sending gateway's country as the body states it.
    pub sender: Country,
    /// The country it is addressed to.
    pub recipient: Country,
}

/// Checks a whole envelope body as a receiving gateway sees it.
pub fn envelope_body(body: &EnvelopeBody) -> Result<Routing, Invalid> {
    let id = message_id("message_id", &body.message_id)?;
    case_id(&body.case_id)?;
    let sender = body
        .sender
        .as_ref()
        .ok_or_else(|| invalid("sender", Fault::Required, "is required"))?;
    let sender_country = country("sender.country", &sender.country)?;
    if sender.agency.is_empty() {
        return Err(invalid("sender.agency", Fault::Required, "is required"));
    }
    if sender.role == v1::Role::Unspecified as i32 || v1::Role::try_from(sender.role).is_err() {
        return Err(invalid(
            "sender.role",
            Fault::UnknownValue { value: sender.role },
            "must be a known role",
        ));
    }
    if !sender.delegated_consulate_country.is_empty() {
        country(
            "sender.delegated_consulate_country",
            &sender.delegated_consulate_country,
        )?;
    }
    let recipient = country("recipient_country", &body.recipient_country)?;
    required_timestamp("created_at", body.created_at.as_ref())?;
    payload_content(body.payload.as_ref().ok_or_else(unknown_payload)?)?;
    official("sender.official", &sender.official)?;
    Ok(Routing {
        id,
        sender: sender_country,
        recipient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_must_be_uuid_v7() {
        assert!(message_id("message_id", &Uuid::now_v7().to_string()).is_ok());
        assert!(message_id("message_id", "00000000-0000-4000-8000-000000000000").is_err());
        assert!(message_id("message_id", "not-a-uuid").is_err());
    }
}
