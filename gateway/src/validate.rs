//! Checks on what agencies submit and what peers deliver, in one place.
//!
//! The same checks run at submit (so that an agency hears about a mistake at
//! once) and on receipt from a peer (so that nothing unchecked is stored, even
//! from a gateway with a bug). Every refusal names the field, with the proto
//! field path, and the rule it breaks.

use std::fmt;

use retorno_proto::v1::{
    self, AdvanceNotice, EnvelopeBody, envelope_body::Payload, submit_request,
};
use uuid::Uuid;

use crate::country::Country;

/// A refusal: which field and which rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// The proto field path, e.g. `advance_notice.child.given_names`.
    pub field: String,
    /// What the value must be.
    pub rule: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

type Checked = Result<(), Invalid>;

/// Parses a message id: a hyphenated UUID of version 7.
pub fn message_id(field: &str, text: &str) -> Result<Uuid, Invalid> {
    let id =
        Uuid::try_parse(text).map_err(|_| invalid(field, format!("{text:?} is not a UUID")))?;
    if id.get_version_num() != 7 {
        return Err(invalid(
            field,
            format!("{text:?} is not a UUIDv7 (time-ordered)"),
        ));
    }
    Ok(id)
}

/// Parses a country code field.
pub fn country(field: &str, text: &str) -> Result<Country, Invalid> {
    text.parse()
        .map_err(|e: crate::country::BadCountry| invalid(field, e.to_string()))
}

/// Checks a case id: 1 to 128 characters of letters, digits and `-_.:/`.
pub fn case_id(text: &str) -> Checked {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:/".contains(c);
    if text.is_empty() || text.len() > 128 || !text.chars().all(allowed) {
        return Err(invalid(
            "case_id",
            "must be 1 to 128 characters of letters, digits and - _ . : /",
        ));
    }
    Ok(())
}

/// Turns a submitted payload into the envelope's payload, checking it.
pub fn submitted_payload(payload: Option<&submit_request::Payload>) -> Result<Payload, Invalid> {
    use submit_request::Payload as Submitted;
    let payload = match payload.cloned() {
        Some(Submitted::AdvanceNotice(p)) => Payload::AdvanceNotice(p),
        Some(Submitted::CaseSummary(p)) => Payload::CaseSummary(p),
        Some(Submitted::ArrivalProposal(p)) => Payload::ArrivalProposal(p),
        Some(Submitted::ArrivalResponse(p)) => Payload::ArrivalResponse(p),
        Some(Submitted::HandoffAck(p)) => Payload::HandoffAck(p),
        Some(Submitted::ReceptionConfirmation(p)) => Payload::ReceptionConfirmation(p),
        Some(Submitted::FollowUpReport(p)) => Payload::FollowUpReport(p),
        Some(Submitted::CaseWithdrawal(p)) => Payload::CaseWithdrawal(p),
        None => return Err(unknown_payload()),
    };
    payload_content(&payload)?;
    Ok(payload)
}

fn unknown_payload() -> Invalid {
    invalid(
        "payload",
        "missing, or of a kind this gateway does not know (retorno.v1 here knows: advance_notice, case_summary, arrival_proposal, arrival_response, handoff_ack, reception_confirmation, follow_up_report, case_withdrawal)",
    )
}

/// Checks any payload kind's fields.
pub fn payload_content(payload: &Payload) -> Checked {
    match payload {
        Payload::AdvanceNotice(p) => advance_notice("advance_notice", p),
        Payload::CaseSummary(p) => case_summary("case_summary", p),
        Payload::ArrivalProposal(p) => arrival_proposal("arrival_proposal", p),
        Payload::ArrivalResponse(p) => arrival_response("arrival_response", p),
        Payload::HandoffAck(p) => handoff_ack("handoff_ack", p),
        Payload::ReceptionConfirmation(p) => {
            required("reception_confirmation.received_at", p.received_at.as_ref())?;
            known::<v1::Placement>("reception_confirmation.placement", p.placement)
        }
        Payload::FollowUpReport(p) => {
            known::<v1::FollowUpStatus>("follow_up_report.status", p.status)
        }
        Payload::CaseWithdrawal(p) => {
            known::<v1::WithdrawalReason>("case_withdrawal.reason", p.reason)?;
            if p.reason == v1::WithdrawalReason::Other as i32 {
                text("case_withdrawal.text", &p.text, 1000)?;
            }
            Ok(())
        }
    }
}

fn readers(at: &str, readers: Option<&v1::Readers>) -> Checked {
    let field = format!("{at}.readers");
    let readers = required(&field, readers)?;
    if readers.roles.is_empty() {
        return Err(invalid(
            format!("{field}.roles"),
            "name at least one role that may read this section",
        ));
    }
    for (i, role) in readers.roles.iter().enumerate() {
        known::<v1::Role>(&format!("{field}.roles[{i}]"), *role)?;
    }
    Ok(())
}

fn case_summary(at: &str, summary: &v1::CaseSummary) -> Checked {
    let sections: [(&str, Option<&v1::Readers>, bool); 8] = [
        (
            "identity",
            summary.identity.as_ref().and_then(|s| s.readers.as_ref()),
            summary.identity.is_some(),
        ),
        (
            "best_interest_plan",
            summary
                .best_interest_plan
                .as_ref()
                .and_then(|s| s.readers.as_ref()),
            summary.best_interest_plan.is_some(),
        ),
        (
            "health",
            summary.health.as_ref().and_then(|s| s.readers.as_ref()),
            summary.health.is_some(),
        ),
        (
            "psychosocial",
            summary
                .psychosocial
                .as_ref()
                .and_then(|s| s.readers.as_ref()),
            summary.psychosocial.is_some(),
        ),
        (
            "legal",
            summary.legal.as_ref().and_then(|s| s.readers.as_ref()),
            summary.legal.is_some(),
        ),
        (
            "education",
            summary.education.as_ref().and_then(|s| s.readers.as_ref()),
            summary.education.is_some(),
        ),
        (
            "risks_on_return",
            summary
                .risks_on_return
                .as_ref()
                .and_then(|s| s.readers.as_ref()),
            summary.risks_on_return.is_some(),
        ),
        (
            "recommendations",
            summary
                .recommendations
                .as_ref()
                .and_then(|s| s.readers.as_ref()),
            summary.recommendations.is_some(),
        ),
    ];
    if !sections.iter().any(|(_, _, present)| *present) {
        return Err(invalid(at, "has no section: give at least one"));
    }
    for (name, section_readers, present) in sections {
        if present {
            readers(&format!("{at}.{name}"), section_readers)?;
        }
    }
    Ok(())
}

fn case_ids(field: &str, ids: &[String]) -> Checked {
    for (i, id) in ids.iter().enumerate() {
        case_id(id).map_err(|e| invalid(format!("{field}[{i}]"), e.rule))?;
    }
    Ok(())
}

fn officer(at: &str, officer: &v1::Officer) -> Checked {
    text(&format!("{at}.name"), &officer.name, 200)?;
    text(&format!("{at}.institution"), &officer.institution, 200)
}

fn arrival_proposal(at: &str, proposal: &v1::ArrivalProposal) -> Checked {
    text(&format!("{at}.proposal_id"), &proposal.proposal_id, 64)?;
    case_ids(&format!("{at}.case_ids"), &proposal.case_ids)?;
    text(
        &format!("{at}.point_of_entry"),
        &proposal.point_of_entry,
        64,
    )?;
    required(&format!("{at}.arrival"), proposal.arrival.as_ref())?;
    text(&format!("{at}.time_zone"), &proposal.time_zone, 64)?;
    known::<v1::TransportMode>(&format!("{at}.transport_mode"), proposal.transport_mode)?;
    for (i, escort) in proposal.escort_officers.iter().enumerate() {
        officer(&format!("{at}.escort_officers[{i}]"), escort)?;
    }
    Ok(())
}

fn arrival_response(at: &str, response: &v1::ArrivalResponse) -> Checked {
    use v1::arrival_response::Decision;
    text(&format!("{at}.proposal_id"), &response.proposal_id, 64)?;
    match required(&format!("{at}.decision"), response.decision.as_ref())? {
        Decision::Accept(_) => Ok(()),
        Decision::Counter(counter) => {
            required(&format!("{at}.counter.arrival"), counter.arrival.as_ref())?;
            text(&format!("{at}.counter.time_zone"), &counter.time_zone, 64)
        }
        Decision::Decline(decline) => {
            known::<v1::DeclineReason>(&format!("{at}.decline.reason"), decline.reason)?;
            if decline.reason == v1::DeclineReason::Other as i32 {
                text(&format!("{at}.decline.text"), &decline.text, 1000)?;
            }
            Ok(())
        }
    }
}

fn handoff_ack(at: &str, handoff: &v1::HandoffAck) -> Checked {
    required(
        &format!("{at}.handed_over_at"),
        handoff.handed_over_at.as_ref(),
    )?;
    text(&format!("{at}.point_of_entry"), &handoff.point_of_entry, 64)?;
    let field = format!("{at}.received_by");
    officer(&field, required(&field, handoff.received_by.as_ref())?)?;
    case_ids(&format!("{at}.case_ids"), &handoff.case_ids)
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
        .ok_or_else(|| invalid("sender", "is required"))?;
    let sender_country = country("sender.country", &sender.country)?;
    if sender.agency.is_empty() {
        return Err(invalid("sender.agency", "is required"));
    }
    if sender.role == v1::Role::Unspecified as i32 || v1::Role::try_from(sender.role).is_err() {
        return Err(invalid("sender.role", "must be a known role"));
    }
    if !sender.delegated_consulate_country.is_empty() {
        country(
            "sender.delegated_consulate_country",
            &sender.delegated_consulate_country,
        )?;
    }
    let recipient = country("recipient_country", &body.recipient_country)?;
    if body.created_at.is_none() {
        return Err(invalid("created_at", "is required"));
    }
    payload_content(body.payload.as_ref().ok_or_else(unknown_payload)?)?;
    Ok(Routing {
        id,
        sender: sender_country,
        recipient,
    })
}

fn required<'a, T>(field: &str, value: Option<&'a T>) -> Result<&'a T, Invalid> {
    value.ok_or_else(|| invalid(field, "is required"))
}

fn text(field: &str, value: &str, max: usize) -> Checked {
    if value.trim().is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    Ok(())
}

/// Checks an enum field: set, and a value this version knows.
fn known<E: TryFrom<i32>>(field: &str, value: i32) -> Checked {
    if value == 0 {
        return Err(invalid(field, "is required (it is unspecified)"));
    }
    E::try_from(value)
        .map(|_| ())
        .map_err(|_| invalid(field, format!("{value} is not a known value")))
}

fn date(field: &str, value: &v1::Date) -> Checked {
    let days_in_month = match value.month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if value.year % 4 == 0 && (value.year % 100 != 0 || value.year % 400 == 0) => 29,
        2 => 28,
        _ => {
            return Err(invalid(
                field,
                format!("month {} is not 1 to 12", value.month),
            ));
        }
    };
    if !(1900..=2200).contains(&value.year) || !(1..=days_in_month).contains(&value.day) {
        return Err(invalid(
            field,
            format!(
                "{}-{:02}-{:02} is not a valid date",
                value.year, value.month, value.day
            ),
        ));
    }
    Ok(())
}

/// Checks an advance notice; `at` is the field path of the notice itself.
pub fn advance_notice(at: &str, notice: &AdvanceNotice) -> Checked {
    child(
        &format!("{at}.child"),
        required(&format!("{at}.child"), notice.child.as_ref())?,
    )?;
    known::<v1::Companionship>(&format!("{at}.companionship"), notice.companionship)?;
    for (i, concern) in notice.protection_concerns.iter().enumerate() {
        known::<v1::ProtectionConcern>(&format!("{at}.protection_concerns[{i}]"), *concern)?;
    }
    known::<v1::RiskLevel>(&format!("{at}.risk_level"), notice.risk_level)?;
    if notice.family_group_id.len() > 128 {
        return Err(invalid(
            format!("{at}.family_group_id"),
            "is longer than 128 characters",
        ));
    }
    let field = format!("{at}.best_interest");
    best_interest(&field, required(&field, notice.best_interest.as_ref())?)?;
    if let Some(interview) = &notice.consular_interview {
        text(
            &format!("{at}.consular_interview.consulate"),
            &interview.consulate,
            200,
        )?;
        let field = format!("{at}.consular_interview.date");
        date(&field, required(&field, interview.date.as_ref())?)?;
    }
    let field = format!("{at}.transport");
    transport(&field, required(&field, notice.transport.as_ref())?)?;
    let field = format!("{at}.origin_contact");
    origin_contact(&field, required(&field, notice.origin_contact.as_ref())?)
}

fn child(at: &str, child: &v1::Child) -> Checked {
    text(&format!("{at}.given_names"), &child.given_names, 200)?;
    text(&format!("{at}.family_names"), &child.family_names, 200)?;
    match &child.age {
        Some(v1::child::Age::BirthDate(birth)) => date(&format!("{at}.birth_date"), birth)?,
        Some(v1::child::Age::EstimatedAgeYears(years)) if *years < 18 => {}
        Some(v1::child::Age::EstimatedAgeYears(years)) => {
            return Err(invalid(
                format!("{at}.estimated_age_years"),
                format!("{years} is not the age of a child (under 18)"),
            ));
        }
        None => {
            return Err(invalid(
                format!("{at}.age"),
                "give birth_date or estimated_age_years",
            ));
        }
    }
    known::<v1::Sex>(&format!("{at}.sex"), child.sex)?;
    if child.nationalities.is_empty() {
        return Err(invalid(
            format!("{at}.nationalities"),
            "needs at least one country code",
        ));
    }
    for (i, code) in child.nationalities.iter().enumerate() {
        country(&format!("{at}.nationalities[{i}]"), code)?;
    }
    for (i, document) in child.documents.iter().enumerate() {
        let at = format!("{at}.documents[{i}]");
        known::<v1::DocumentKind>(&format!("{at}.kind"), document.kind)?;
        text(&format!("{at}.number"), &document.number, 64)?;
        country(&format!("{at}.issuing_country"), &document.issuing_country)?;
    }
    for (i, language) in child.languages.iter().enumerate() {
        text(&format!("{at}.languages[{i}]"), language, 35)?;
    }
    Ok(())
}

fn best_interest(at: &str, determination: &v1::BestInterestDetermination) -> Checked {
    known::<v1::DeterminingAuthority>(
        &format!("{at}.authority_kind"),
        determination.authority_kind,
    )?;
    text(
        &format!("{at}.authority_name"),
        &determination.authority_name,
        200,
    )?;
    let field = format!("{at}.date");
    date(&field, required(&field, determination.date.as_ref())?)?;
    known::<v1::BestInterestOutcome>(&format!("{at}.outcome"), determination.outcome)
}

fn transport(at: &str, transport: &v1::PlannedTransport) -> Checked {
    known::<v1::TransportMode>(&format!("{at}.mode"), transport.mode)?;
    text(
        &format!("{at}.point_of_entry"),
        &transport.point_of_entry,
        64,
    )?;
    let field = format!("{at}.earliest_date");
    date(&field, required(&field, transport.earliest_date.as_ref())?)
}

fn origin_contact(at: &str, contact: &v1::OriginContact) -> Checked {
    if contact.family_located {
        text(&format!("{at}.contact_name"), &contact.contact_name, 200)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete notice, as the README's example file has it.
    pub(crate) fn notice() -> AdvanceNotice {
        let day = |year, month, day| Some(v1::Date { year, month, day });
        AdvanceNotice {
            child: Some(v1::Child {
                given_names: "Ana Lucía".into(),
                family_names: "Pérez Xol".into(),
                age: Some(v1::child::Age::BirthDate(v1::Date {
                    year: 2012,
                    month: 2,
                    day: 29,
                })),
                sex: v1::Sex::Female as i32,
                nationalities: vec!["GT".into()],
                documents: vec![],
                languages: vec!["es".into()],
            }),
            companionship: v1::Companionship::Unaccompanied as i32,
            protection_concerns: vec![v1::ProtectionConcern::IndigenousLanguage as i32],
            risk_level: v1::RiskLevel::Medium as i32,
            family_group_id: String::new(),
            best_interest: Some(v1::BestInterestDetermination {
                authority_kind: v1::DeterminingAuthority::ChildProtection as i32,
                authority_name: "PFPNNA".into(),
                date: day(2026, 11, 20),
                outcome: v1::BestInterestOutcome::Return as i32,
            }),
            consular_interview: None,
            transport: Some(v1::PlannedTransport {
                mode: v1::TransportMode::Land as i32,
                point_of_entry: "GT-TECUN-UMAN".into(),
                earliest_date: day(2026, 12, 3),
            }),
            origin_contact: Some(v1::OriginContact::default()),
        }
    }

    #[test]
    fn a_complete_notice_passes() {
        advance_notice("advance_notice", &notice()).unwrap();
    }

    #[test]
    fn refusals_name_the_field() {
        let mut missing_name = notice();
        missing_name.child.as_mut().unwrap().given_names = " ".into();
        let error = advance_notice("advance_notice", &missing_name).unwrap_err();
        assert_eq!(error.field, "advance_notice.child.given_names");

        let mut bad_date = notice();
        bad_date.best_interest.as_mut().unwrap().date = Some(v1::Date {
            year: 2026,
            month: 2,
            day: 30,
        });
        let error = advance_notice("advance_notice", &bad_date).unwrap_err();
        assert_eq!(error.field, "advance_notice.best_interest.date");

        let mut adult = notice();
        adult.child.as_mut().unwrap().age = Some(v1::child::Age::EstimatedAgeYears(19));
        let error = advance_notice("advance_notice", &adult).unwrap_err();
        assert_eq!(error.field, "advance_notice.child.estimated_age_years");

        let mut unknown_enum = notice();
        unknown_enum.companionship = 42;
        let error = advance_notice("advance_notice", &unknown_enum).unwrap_err();
        assert_eq!(
            error.to_string(),
            "advance_notice.companionship: 42 is not a known value"
        );
    }

    #[test]
    fn message_ids_must_be_uuid_v7() {
        assert!(message_id("message_id", &Uuid::now_v7().to_string()).is_ok());
        assert!(message_id("message_id", "00000000-0000-4000-8000-000000000000").is_err());
        assert!(message_id("message_id", "not-a-uuid").is_err());
    }
}
