//! What every field of every payload kind must hold: the one set of rules
//! that the sending gateway (at submit), the receiving gateway (on
//! delivery) and the `retorno` program (before it connects) all apply.
//!
//! The rules live here, with the wire contract, because the client cannot
//! depend on the gateway; a second copy in the client would drift. A
//! refusal names the field by its proto path (`advance_notice.best_interest`),
//! and [`Invalid::json_field`] renders the same path as a person wrote it in
//! a JSON file (`bestInterest`).

use std::fmt;

use pbjson_types::Timestamp;

use crate::{
    refusal::{Code, Reason},
    v1::{self, AdvanceNotice, envelope_body::Payload, submit_request},
};

/// How a [`v1::Date`] is written in a JSON file, shown when one is missing or wrong.
pub const DATE_SHAPE: &str = r#"{"year": 2026, "month": 12, "day": 4}"#;

/// How a `google.protobuf.Timestamp` is written in a JSON file (RFC 3339, UTC or with an offset).
pub const TIMESTAMP_SHAPE: &str = r#""2026-12-04T16:00:00Z""#;

/// The earliest second a `google.protobuf.Timestamp` may hold: 0001-01-01T00:00:00Z.
pub const TIMESTAMP_MIN_SECONDS: i64 = -62_135_596_800;

/// The latest second a `google.protobuf.Timestamp` may hold: 9999-12-31T23:59:59Z.
pub const TIMESTAMP_MAX_SECONDS: i64 = 253_402_300_799;

/// A refusal: which field and which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The proto field path, e.g. `advance_notice.child.given_names`.
    pub field: String,
    /// Which kind of rule the value breaks, as data (its reason code).
    pub fault: Fault,
    /// What the value must be, in English.
    pub rule: String,
}

/// The kinds of field rule, each with what a reader needs to fix the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Missing, blank or unspecified.
    Required,
    /// Longer than `max` characters.
    TooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// An enum number this version does not know.
    UnknownValue {
        /// The number given.
        value: i32,
    },
    /// Not a UUID.
    NotUuid,
    /// A UUID, but not a time-ordered UUIDv7.
    NotUuidV7,
    /// Not a two-letter country code.
    NotCountry {
        /// The text given.
        value: String,
    },
    /// A timestamp that `google.protobuf.Timestamp` cannot hold.
    TimestampOutOfRange,
    /// Not a real calendar date from 1900 to 2200.
    BadDate,
    /// An estimated age of 18 or more.
    NotAChild {
        /// The age given.
        years: u32,
    },
    /// Not a case id of 1 to 128 allowed characters.
    BadCaseId,
    /// A case summary without a section.
    NoSection,
    /// A summary section that names no role as its readers.
    NoReaders,
    /// Control characters (a line break, a tab) in a one-line text.
    ControlCharacters,
    /// A payload missing or of an unknown kind.
    UnknownPayload,
    /// A notice without a best-interest determination.
    BestInterestMissing,
}

impl Fault {
    /// The reason code of this kind of rule.
    pub fn code(&self) -> Code {
        match self {
            Fault::Required => Code::FieldRequired,
            Fault::TooLong { .. } => Code::FieldTooLong,
            Fault::UnknownValue { .. } => Code::FieldUnknownValue,
            Fault::NotUuid => Code::FieldNotUuid,
            Fault::NotUuidV7 => Code::FieldNotUuidV7,
            Fault::NotCountry { .. } => Code::FieldNotCountry,
            Fault::TimestampOutOfRange => Code::FieldTimestampOutOfRange,
            Fault::BadDate => Code::FieldBadDate,
            Fault::NotAChild { .. } => Code::FieldNotAChild,
            Fault::BadCaseId => Code::FieldBadCaseId,
            Fault::NoSection => Code::FieldNoSection,
            Fault::NoReaders => Code::FieldNoReaders,
            Fault::ControlCharacters => Code::FieldControlCharacters,
            Fault::UnknownPayload => Code::FieldUnknownPayload,
            Fault::BestInterestMissing => Code::BestInterestMissing,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    /// A refusal of `field` for breaking `rule`, a rule of kind `fault`.
    pub fn new(field: impl Into<String>, fault: Fault, rule: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            fault,
            rule: rule.into(),
        }
    }

    /// The refusal as data: its code, with `field` and the fault's values.
    pub fn reason(&self) -> Reason {
        let reason = Reason::new(self.fault.code()).with("field", &self.field);
        match &self.fault {
            Fault::TooLong { max } => reason.with("max", max),
            Fault::UnknownValue { value } => reason.with("value", value),
            Fault::NotCountry { value } => reason.with("value", value),
            Fault::NotAChild { years } => reason.with("years", years),
            _ => reason,
        }
    }

    /// The field as the proto3 JSON mapping names it, inside a JSON document
    /// that holds the message at `root` (e.g. `advance_notice` for a notice
    /// file): `advance_notice.best_interest.date` becomes `bestInterest.date`.
    /// Empty when the refusal is about the whole document.
    pub fn json_field(&self, root: &str) -> String {
        let inside = if self.field == root {
            ""
        } else {
            self.field
                .strip_prefix(root)
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(&self.field)
        };
        inside
            .split('.')
            .filter(|segment| !segment.is_empty())
            .map(lower_camel_case)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// `best_interest` -> `bestInterest`, as protobuf's JSON mapping names fields
/// (an index such as `[2]` passes through).
fn lower_camel_case(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn invalid(field: impl Into<String>, fault: Fault, rule: impl Into<String>) -> Invalid {
    Invalid::new(field, fault, rule)
}

/// The result of a check.
pub type Checked = Result<(), Invalid>;

/// Checks a case id: 1 to 128 characters of letters, digits and `-_.:/`.
pub fn case_id(text: &str) -> Checked {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:/".contains(c);
    if text.is_empty() || text.len() > 128 || !text.chars().all(allowed) {
        return Err(invalid(
            "case_id",
            Fault::BadCaseId,
            "must be 1 to 128 characters of letters, digits and - _ . : /",
        ));
    }
    Ok(())
}

/// Checks a two-letter country code field (ISO 3166-1 alpha-2, either case).
pub fn country_code(field: &str, text: &str) -> Checked {
    match text.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Ok(()),
        _ => Err(invalid(
            field,
            Fault::NotCountry {
                value: text.to_owned(),
            },
            format!(
                "{text:?} is not a country code: expected two letters of ISO 3166-1 alpha-2, such as GT or MX"
            ),
        )),
    }
}

/// Checks a timestamp as `google.protobuf.Timestamp` defines it: `nanos` in
/// 0..=999,999,999 and `seconds` from 0001-01-01 to 9999-12-31 (UTC).
pub fn timestamp(field: &str, value: &Timestamp) -> Checked {
    if !(0..=999_999_999).contains(&value.nanos) {
        return Err(invalid(
            format!("{field}.nanos"),
            Fault::TimestampOutOfRange,
            format!(
                "{} is not 0 to 999999999 (google.protobuf.Timestamp)",
                value.nanos
            ),
        ));
    }
    if !(TIMESTAMP_MIN_SECONDS..=TIMESTAMP_MAX_SECONDS).contains(&value.seconds) {
        return Err(invalid(
            format!("{field}.seconds"),
            Fault::TimestampOutOfRange,
            format!(
                "{} is not between 0001-01-01 and 9999-12-31 (google.protobuf.Timestamp)",
                value.seconds
            ),
        ));
    }
    Ok(())
}

/// Checks a timestamp that must be present and valid.
pub fn required_timestamp(field: &str, value: Option<&Timestamp>) -> Checked {
    let value = value.ok_or_else(|| {
        invalid(
            field,
            Fault::Required,
            format!("is required (a time; in JSON, e.g. {TIMESTAMP_SHAPE})"),
        )
    })?;
    timestamp(field, value)
}

/// The most characters of an official's name ([`official`]).
pub const OFFICIAL_MAX_CHARS: usize = 120;

/// Checks the name of the official acting for an agency
/// (`SubmitRequest.official`): optional, at most [`OFFICIAL_MAX_CHARS`]
/// characters, on one line. The agency names them; no gateway can check who
/// they are.
pub fn official(field: &str, name: &str) -> Checked {
    if name.chars().count() > OFFICIAL_MAX_CHARS {
        return Err(invalid(
            field,
            Fault::TooLong {
                max: OFFICIAL_MAX_CHARS,
            },
            format!("is longer than {OFFICIAL_MAX_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            field,
            Fault::ControlCharacters,
            "holds control characters (a line break, a tab): give the name on one line",
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

/// The refusal of a message without a payload this version knows.
pub fn unknown_payload() -> Invalid {
    invalid(
        "payload",
        Fault::UnknownPayload,
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
            required_timestamp("reception_confirmation.received_at", p.received_at.as_ref())?;
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
            Fault::NoReaders,
            "name at least one role that may read this section",
        ));
    }
    for (i, role) in readers.roles.iter().enumerate() {
        known::<v1::Role>(&format!("{field}.roles[{i}]"), *role)?;
    }
    Ok(())
}

/// Checks a case summary; `at` is the field path of the summary itself.
pub fn case_summary(at: &str, summary: &v1::CaseSummary) -> Checked {
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
        return Err(invalid(
            at,
            Fault::NoSection,
            "has no section: give at least one",
        ));
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
        case_id(id).map_err(|e| invalid(format!("{field}[{i}]"), e.fault, e.rule))?;
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
    required_timestamp(&format!("{at}.arrival"), proposal.arrival.as_ref())?;
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
            required_timestamp(&format!("{at}.counter.arrival"), counter.arrival.as_ref())?;
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
    required_timestamp(
        &format!("{at}.handed_over_at"),
        handoff.handed_over_at.as_ref(),
    )?;
    text(&format!("{at}.point_of_entry"), &handoff.point_of_entry, 64)?;
    let field = format!("{at}.received_by");
    officer(&field, required(&field, handoff.received_by.as_ref())?)?;
    case_ids(&format!("{at}.case_ids"), &handoff.case_ids)
}

fn required<'a, T>(field: &str, value: Option<&'a T>) -> Result<&'a T, Invalid> {
    value.ok_or_else(|| invalid(field, Fault::Required, "is required"))
}

fn text(field: &str, value: &str, max: usize) -> Checked {
    if value.trim().is_empty() {
        return Err(invalid(field, Fault::Required, "is required"));
    }
    if value.chars().count() > max {
        return Err(invalid(
            field,
            Fault::TooLong { max },
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// Checks an enum field: set, and a value this version knows.
fn known<E: TryFrom<i32>>(field: &str, value: i32) -> Checked {
    if value == 0 {
        return Err(invalid(
            field,
            Fault::Required,
            "is required (it is unspecified)",
        ));
    }
    E::try_from(value).map(|_| ()).map_err(|_| {
        invalid(
            field,
            Fault::UnknownValue { value },
            format!("{value} is not a known value"),
        )
    })
}

/// Checks a date that must be present and valid.
fn required_date(field: &str, value: Option<&v1::Date>) -> Checked {
    let value = value.ok_or_else(|| {
        invalid(
            field,
            Fault::Required,
            format!("is required (a date; in JSON, e.g. {DATE_SHAPE})"),
        )
    })?;
    date(field, value)
}

/// Checks a calendar date: a real day of a year from 1900 to 2200 (a birth
/// date, a determination, a travel date; nothing in a case lies outside).
fn date(field: &str, value: &v1::Date) -> Checked {
    let days_in_month = match value.month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if value.year % 4 == 0 && (value.year % 100 != 0 || value.year % 400 == 0) => 29,
        2 => 28,
        _ => {
            return Err(invalid(
                field,
                Fault::BadDate,
                format!(
                    "month {} is not 1 to 12 (a date is written {DATE_SHAPE})",
                    value.month
                ),
            ));
        }
    };
    if !(1900..=2200).contains(&value.year) || !(1..=days_in_month).contains(&value.day) {
        return Err(invalid(
            field,
            Fault::BadDate,
            format!(
                "{}-{:02}-{:02} is not a valid date from 1900 to 2200",
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
            Fault::TooLong { max: 128 },
            "is longer than 128 characters",
        ));
    }
    let field = format!("{at}.best_interest");
    let determination = notice
        .best_interest
        .as_ref()
        .ok_or_else(|| invalid(&field, Fault::BestInterestMissing, "is required"))?;
    best_interest(&field, determination)?;
    if let Some(interview) = &notice.consular_interview {
        text(
            &format!("{at}.consular_interview.consulate"),
            &interview.consulate,
            200,
        )?;
        let field = format!("{at}.consular_interview.date");
        required_date(&field, interview.date.as_ref())?;
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
                Fault::NotAChild { years: *years },
                format!("{years} is not the age of a child (under 18)"),
            ));
        }
        None => {
            return Err(invalid(
                format!("{at}.age"),
                Fault::Required,
                "give birth_date or estimated_age_years",
            ));
        }
    }
    known::<v1::Sex>(&format!("{at}.sex"), child.sex)?;
    if child.nationalities.is_empty() {
        return Err(invalid(
            format!("{at}.nationalities"),
            Fault::Required,
            "needs at least one country code",
        ));
    }
    for (i, code) in child.nationalities.iter().enumerate() {
        country_code(&format!("{at}.nationalities[{i}]"), code)?;
    }
    for (i, document) in child.documents.iter().enumerate() {
        let at = format!("{at}.documents[{i}]");
        known::<v1::DocumentKind>(&format!("{at}.kind"), document.kind)?;
        text(&format!("{at}.number"), &document.number, 64)?;
        country_code(&format!("{at}.issuing_country"), &document.issuing_country)?;
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
    required_date(&field, determination.date.as_ref())?;
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
    required_date(&field, transport.earliest_date.as_ref())
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
    fn notice() -> AdvanceNotice {
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

    fn proposal() -> v1::ArrivalProposal {
        v1::ArrivalProposal {
            proposal_id: "P1".into(),
            case_ids: vec![],
            point_of_entry: "GT-TECUN-UMAN".into(),
            arrival: Some(Timestamp {
                seconds: 1_796_400_000,
                nanos: 0,
            }),
            time_zone: "America/Guatemala".into(),
            transport_mode: v1::TransportMode::Land as i32,
            transport_reference: String::new(),
            escort_officers: vec![],
        }
    }

    #[test]
    fn timestamps_are_checked_as_protobuf_defines_them() {
        let check = |seconds, nanos| {
            let mut p = proposal();
            p.arrival = Some(Timestamp { seconds, nanos });
            payload_content(&Payload::ArrivalProposal(p))
        };
        check(1_796_400_000, 0).unwrap();
        check(1_796_400_000, 999_999_999).unwrap();
        check(TIMESTAMP_MIN_SECONDS, 0).unwrap();
        check(TIMESTAMP_MAX_SECONDS, 0).unwrap();
        let error = check(1_796_400_000, -5).unwrap_err();
        assert_eq!(error.field, "arrival_proposal.arrival.nanos");
        assert!(error.rule.contains("-5 is not 0 to 999999999"), "{error}");
        let error = check(1_796_400_000, 1_000_000_000).unwrap_err();
        assert_eq!(error.field, "arrival_proposal.arrival.nanos");
        let error = check(TIMESTAMP_MAX_SECONDS + 1, 0).unwrap_err();
        assert_eq!(error.field, "arrival_proposal.arrival.seconds");
        let error = check(TIMESTAMP_MIN_SECONDS - 1, 0).unwrap_err();
        assert_eq!(error.field, "arrival_proposal.arrival.seconds");
    }

    #[test]
    fn every_timestamp_of_every_kind_is_checked() {
        let bad = Some(Timestamp {
            seconds: 1_796_400_000,
            nanos: -5,
        });
        let counter = Payload::ArrivalResponse(v1::ArrivalResponse {
            proposal_id: "P1".into(),
            decision: Some(v1::arrival_response::Decision::Counter(
                v1::arrival_response::Counter {
                    arrival: bad,
                    time_zone: "America/Guatemala".into(),
                    note: String::new(),
                },
            )),
        });
        let handoff = Payload::HandoffAck(v1::HandoffAck {
            handed_over_at: bad,
            point_of_entry: "GT-TECUN-UMAN".into(),
            received_by: Some(v1::Officer {
                name: "Rosa Cux".into(),
                institution: "MINEX".into(),
            }),
            case_ids: vec![],
            condition_notes: String::new(),
        });
        let reception = Payload::ReceptionConfirmation(v1::ReceptionConfirmation {
            received_at: bad,
            placement: v1::Placement::WithFamily as i32,
            placement_detail: String::new(),
        });
        for (payload, field) in [
            (counter, "arrival_response.counter.arrival.nanos"),
            (handoff, "handoff_ack.handed_over_at.nanos"),
            (reception, "reception_confirmation.received_at.nanos"),
        ] {
            assert_eq!(payload_content(&payload).unwrap_err().field, field);
        }
    }

    #[test]
    fn a_missing_date_shows_how_to_write_one() {
        let mut no_date = notice();
        no_date.transport.as_mut().unwrap().earliest_date = None;
        let error = advance_notice("advance_notice", &no_date).unwrap_err();
        assert_eq!(error.field, "advance_notice.transport.earliest_date");
        assert!(error.rule.contains(DATE_SHAPE), "{error}");
    }

    #[test]
    fn fields_are_named_as_json_writes_them() {
        let name = |field: &str| {
            Invalid::new(field, Fault::Required, "is required").json_field("advance_notice")
        };
        assert_eq!(name("advance_notice.best_interest"), "bestInterest");
        assert_eq!(
            name("advance_notice.child.nationalities[1]"),
            "child.nationalities[1]"
        );
        assert_eq!(
            name("advance_notice.consular_interview.date"),
            "consularInterview.date"
        );
        assert_eq!(name("advance_notice"), "");
        assert_eq!(
            Invalid::new("case_summary.health.readers.roles", Fault::NoReaders, "x")
                .json_field("case_summary"),
            "health.readers.roles"
        );
    }
}
