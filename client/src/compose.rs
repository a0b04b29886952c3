//! Building case messages from what a caseworker types: local times in a
//! point of entry's time zone, enum values by their short names.

use jiff::{civil::DateTime, tz::TimeZone};
use pbjson_types::Timestamp;
use retorno_proto::v1::{
    self, ArrivalProposal, ArrivalResponse, CaseWithdrawal, FollowUpReport, HandoffAck, Officer,
    ReceptionConfirmation, SubmitRequest, arrival_response, submit_request::Payload,
};

/// A value a caseworker typed that cannot be used; says which flag and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {problem}")]
pub struct BadInput {
    /// The flag, e.g. `--at`.
    pub flag: &'static str,
    /// What is wrong and what to type instead.
    pub problem: String,
}

impl BadInput {
    /// A refusal of `flag`'s value.
    pub fn new(flag: &'static str, problem: impl Into<String>) -> BadInput {
        BadInput {
            flag,
            problem: problem.into(),
        }
    }
}

fn bad(flag: &'static str, problem: impl Into<String>) -> BadInput {
    BadInput::new(flag, problem)
}

/// The time zone of an arrival at `point`: the one its country publishes.
/// A `--tz` typed as well must agree (it confirms, it cannot change it: the
/// gateway would refuse another zone anyway).
pub fn point_time_zone(given: Option<&str>, point: &v1::PointOfEntry) -> Result<String, BadInput> {
    match given {
        None => Ok(point.time_zone.clone()),
        Some(tz) if tz == point.time_zone => Ok(point.time_zone.clone()),
        Some(tz) => Err(bad(
            "--tz",
            format!(
                "{tz} is not the time zone of {} ({}, as its country publishes it): leave --tz out, or write --tz {}",
                point.code, point.time_zone, point.time_zone
            ),
        )),
    }
}

/// Reads a local date and time (`2026-12-04 10:00` or `2026-12-04T10:00`) in
/// an IANA time zone; daylight-saving rules are the zone's.
pub fn local_instant(at: &str, time_zone: &str) -> Result<Timestamp, BadInput> {
    let tz = TimeZone::get(time_zone).map_err(|e| {
        bad(
            "--tz",
            format!("{time_zone:?} is not an IANA time zone ({e}); e.g. America/Guatemala"),
        )
    })?;
    let local: DateTime = at.replace(' ', "T").parse().map_err(|e| {
        bad(
            "--at",
            format!("{at:?} is not a local date and time ({e}); write e.g. \"2026-12-04 10:00\""),
        )
    })?;
    let zoned = local
        .to_zoned_datetime(tz)
        .map_err(|e| bad("--at", format!("{at} does not exist in {time_zone}: {e}")))?;
    let instant = zoned.timestamp();
    Ok(Timestamp {
        seconds: instant.as_second(),
        nanos: instant.subsec_nanosecond(),
    })
}

/// Now, as a wire timestamp.
pub fn now() -> Timestamp {
    let now = jiff::Timestamp::now();
    Timestamp {
        seconds: now.as_second(),
        nanos: now.subsec_nanosecond(),
    }
}

/// Parses an enum value by its short name: `with-family` for `PLACEMENT_WITH_FAMILY`.
pub fn enum_value<E>(
    flag: &'static str,
    text: &str,
    prefix: &str,
    from_name: fn(&str) -> Option<E>,
    names: &[&str],
) -> Result<E, BadInput> {
    let name = format!("{prefix}{}", text.to_uppercase().replace('-', "_"));
    from_name(&name).ok_or_else(|| {
        bad(
            flag,
            format!("{text:?} is not one of: {}", names.join(", ")),
        )
    })
}

/// Splits an officer given as `NAME/INSTITUTION`.
pub fn officer(flag: &'static str, text: &str) -> Result<Officer, BadInput> {
    match text.split_once('/') {
        Some((name, institution)) if !name.trim().is_empty() && !institution.trim().is_empty() => {
            Ok(Officer {
                name: name.trim().to_owned(),
                institution: institution.trim().to_owned(),
            })
        }
        _ => Err(bad(
            flag,
            format!("{text:?}: write NAME/INSTITUTION, e.g. \"Rosa Cux/SBS\""),
        )),
    }
}

/// A submit request of one payload for a case.
pub fn request(case_id: &str, to: Option<&str>, payload: Payload) -> SubmitRequest {
    SubmitRequest {
        message_id: String::new(),
        case_id: case_id.to_owned(),
        recipient_country: to.unwrap_or_default().to_owned(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// What `retorno propose` asks for.
pub struct Proposal<'a> {
    /// The proposal's id.
    pub id: &'a str,
    /// Every case travelling together (empty: the case alone).
    pub cases: Vec<String>,
    /// The point of entry's code.
    pub point: &'a str,
    /// Local arrival time and its zone.
    pub at: &'a str,
    /// The point's IANA time zone.
    pub time_zone: &'a str,
    /// `air`, `land` or `sea`.
    pub mode: &'a str,
    /// Flight number, bus.
    pub reference: &'a str,
    /// `NAME/INSTITUTION` each.
    pub escorts: &'a [String],
}

/// Builds an arrival proposal.
pub fn proposal(p: &Proposal<'_>) -> Result<Payload, BadInput> {
    let mode = enum_value(
        "--mode",
        p.mode,
        "TRANSPORT_MODE_",
        v1::TransportMode::from_str_name,
        &["air", "land", "sea"],
    )?;
    let escort_officers = p
        .escorts
        .iter()
        .map(|e| officer("--escort", e))
        .collect::<Result<_, _>>()?;
    Ok(Payload::ArrivalProposal(ArrivalProposal {
        proposal_id: p.id.to_owned(),
        case_ids: p.cases.clone(),
        point_of_entry: p.point.to_owned(),
        arrival: Some(local_instant(p.at, p.time_zone)?),
        time_zone: p.time_zone.to_owned(),
        transport_mode: mode as i32,
        transport_reference: p.reference.to_owned(),
        escort_officers,
    }))
}

/// Builds an acceptance.
pub fn accept(proposal_id: &str) -> Payload {
    Payload::ArrivalResponse(ArrivalResponse {
        proposal_id: proposal_id.to_owned(),
        decision: Some(arrival_response::Decision::Accept(
            arrival_response::Accept {},
        )),
    })
}

/// Builds a counter-proposal of another local time.
pub fn counter(
    proposal_id: &str,
    at: &str,
    time_zone: &str,
    note: &str,
) -> Result<Payload, BadInput> {
    Ok(Payload::ArrivalResponse(ArrivalResponse {
        proposal_id: proposal_id.to_owned(),
        decision: Some(arrival_response::Decision::Counter(
            arrival_response::Counter {
                arrival: Some(local_instant(at, time_zone)?),
                time_zone: time_zone.to_owned(),
                note: note.to_owned(),
            },
        )),
    }))
}

/// Builds a refusal of a proposal.
pub fn decline(proposal_id: &str, reason: &str, text: &str) -> Result<Payload, BadInput> {
    let names = [
        "outside-reception-hours",
        "notice-too-short",
        "no-capacity",
        "family-not-located",
        "risk-on-return",
        "other",
    ];
    let reason = enum_value(
        "--reason",
        reason,
        "DECLINE_REASON_",
        v1::DeclineReason::from_str_name,
        &names,
    )?;
    Ok(Payload::ArrivalResponse(ArrivalResponse {
        proposal_id: proposal_id.to_owned(),
        decision: Some(arrival_response::Decision::Decline(
            arrival_response::Decline {
                reason: reason as i32,
                text: text.to_owned(),
            },
        )),
    }))
}

/// Builds a custody handoff acknowledgement, dated now.
pub fn handoff(
    point: &str,
    received_by: &str,
    cases: Vec<String>,
    notes: &str,
) -> Result<Payload, BadInput> {
    Ok(Payload::HandoffAck(HandoffAck {
        handed_over_at: Some(now()),
        point_of_entry: point.to_owned(),
        received_by: Some(officer("--received-by", received_by)?),
        case_ids: cases,
        condition_notes: notes.to_owned(),
    }))
}

/// Builds a reception confirmation, dated now.
pub fn reception(placement: &str, detail: &str) -> Result<Payload, BadInput> {
    let names = ["with-family", "reception-centre", "foster-care"];
    let placement = enum_value(
        "--placement",
        placement,
        "PLACEMENT_",
        v1::Placement::from_str_name,
        &names,
    )?;
    Ok(Payload::ReceptionConfirmation(ReceptionConfirmation {
        received_at: Some(now()),
        placement: placement as i32,
        placement_detail: detail.to_owned(),
    }))
}

/// Builds a follow-up report.
pub fn follow_up(days: u32, status: &str, notes: &str) -> Result<Payload, BadInput> {
    let names = ["stable", "at-risk", "lost-contact", "remigrated"];
    let status = enum_value(
        "--status",
        status,
        "FOLLOW_UP_STATUS_",
        v1::FollowUpStatus::from_str_name,
        &names,
    )?;
    Ok(Payload::FollowUpReport(FollowUpReport {
        days_since_return: days,
        status: status as i32,
        notes: notes.to_owned(),
    }))
}

/// Builds a withdrawal: the child stays.
pub fn withdrawal(reason: &str, text: &str) -> Result<Payload, BadInput> {
    let names = [
        "protection-granted",
        "local-integration",
        "best-interest-decision",
        "other",
    ];
    let reason = enum_value(
        "--reason",
        reason,
        "WITHDRAWAL_REASON_",
        v1::WithdrawalReason::from_str_name,
        &names,
    )?;
    Ok(Payload::CaseWithdrawal(CaseWithdrawal {
        reason: reason as i32,
        text: text.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_follow_the_zone_including_daylight_saving() {
        // Guatemala has no daylight saving: UTC-6 all year, so 10:00 is 16:00 UTC.
        assert_eq!(
            local_instant("2026-12-04 10:00", "America/Guatemala")
                .unwrap()
                .seconds
                % 86_400,
            16 * 3600
        );
        // Los Angeles: 10:00 is 17:00 UTC in summer, 18:00 UTC in winter.
        let summer = local_instant("2027-07-01 10:00", "America/Los_Angeles").unwrap();
        let winter = local_instant("2027-01-01 10:00", "America/Los_Angeles").unwrap();
        assert_eq!(summer.seconds % 86_400, 17 * 3600);
        assert_eq!(winter.seconds % 86_400, 18 * 3600);
    }

    #[test]
    fn bad_input_names_the_flag() {
        assert_eq!(
            local_instant("tomorrow", "America/Guatemala")
                .unwrap_err()
                .flag,
            "--at"
        );
        assert_eq!(
            local_instant("2026-12-04 10:00", "Mars/Olympus")
                .unwrap_err()
                .flag,
            "--tz"
        );
        assert_eq!(
            reception("under-a-bridge", "").unwrap_err().flag,
            "--placement"
        );
        assert!(officer("--escort", "Rosa Cux").is_err());
    }

    #[test]
    fn the_time_zone_comes_from_the_published_point_and_a_typed_one_must_agree() {
        let point = v1::PointOfEntry {
            code: "GT-TECUN-UMAN".into(),
            time_zone: "America/Guatemala".into(),
            ..v1::PointOfEntry::default()
        };
        assert_eq!(point_time_zone(None, &point).unwrap(), "America/Guatemala");
        assert_eq!(
            point_time_zone(Some("America/Guatemala"), &point).unwrap(),
            "America/Guatemala"
        );
        let error = point_time_zone(Some("America/Mexico_City"), &point).unwrap_err();
        assert_eq!(error.flag, "--tz");
        assert!(error.problem.contains("leave --tz out"), "{error}");
    }
}
