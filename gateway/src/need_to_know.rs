//! Need to know: what an agency may see of a case and of a message.
//!
//! This is the one place that decides it. Every read path asks it: the inbox
//! ([`message`]), a case with its timeline ([`case()`]), the case list
//! ([`listed`]) and a message's status ([`Reader::may_read`]); a console,
//! statistics or an operator view must ask it too, so that no two paths can
//! disagree. A [`Reader`] reads a case as one of three [`Audience`]s, chosen
//! by its role and by the side of the case its country is on:
//!
//! | reader | audience |
//! | --- | --- |
//! | child protection, either side | [`Audience::Whole`] |
//! | destination authority of the case's destination | [`Audience::Returning`] |
//! | destination authority of the case's origin, consulate, delegated consulate | [`Audience::IdentityAndTravel`] |
//! | operator, either side | [`Audience::Metadata`] |
//!
//! What each audience sees of each kind of message is [`payload`]. A timeline
//! line is rendered for its reader from the message's stored
//! [`TimelineFacts`] as [`payload`] cuts them down for that reader, never
//! from a finished sentence with parts taken out afterwards: a consulate's
//! line for a notice is built from a notice that holds no risk level.

use retorno_proto::timeline::unseen_line;
use retorno_proto::v1::{
    self, ArrivalProposal, ArrivalResponse, CaseView, DeclineReason, EnvelopeBody, HandoffAck,
    TimelineEntry, TimelineFacts,
    arrival_response::{Counter, Decision, Decline},
    envelope_body::Payload,
    timeline_facts::Payload as Fact,
};

use crate::{
    case::{self, Kind, Refusal},
    country::Country,
    identity::Role,
};

/// An agency reading through its own gateway, as its certificate says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reader {
    /// Its role.
    pub role: Role,
    /// The country whose gateway it reads through: its own, or for a
    /// consulate acting under a delegation, the country it acts for.
    pub country: Country,
    /// The consulate's own country when it acts for `country` under a
    /// delegation; such a reader sees only the cases
    /// [`case::delegated_may_see`] allows.
    pub delegated: Option<Country>,
}

/// The side of a case a reader's country is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The country returning the child.
    Destination,
    /// The child's own country.
    Origin,
}

/// How much of a case a reader sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Child protection: the whole case, summaries included. The origin's
    /// receives the child and places it; the destination's made the
    /// best-interest determination the return rests on.
    Whole,
    /// The destination's authority: every message but a case summary (which
    /// goes to child protection). It wrote the notice, and the reception and
    /// follow-up reports are addressed to it: the returning state answers for
    /// a return being safe.
    Returning,
    /// A consulate (its country's own, or one acting under a delegation) and
    /// the origin's destination authority: what admitting the child and its
    /// journey need, the child's identity and the travel. No protection
    /// concerns, risk, best-interest details, family contact, summary,
    /// placement, follow-up, or reasons that are about the child (a
    /// withdrawal's reason can say that the child was granted asylum, which
    /// the authorities of the child's own state must not learn).
    IdentityAndTravel,
    /// The national operations team: where each message stands (ids, kinds,
    /// states, times, errors), never what a message says. It runs the
    /// gateway and has no part in a case.
    Metadata,
}

/// What of a message a reader may see.
#[derive(Clone, Debug, PartialEq)]
pub enum Visibility<T> {
    /// All of it.
    Full,
    /// Only this reduced copy (for an inbox item, the signed envelope bytes
    /// are withheld, since they hold the whole).
    Redacted(Box<T>),
    /// Nothing of its content: an inbox skips it; a timeline shows only that
    /// a message of its kind was sent.
    Hidden,
}

impl Reader {
    /// The side of `case` this reader's country is on.
    pub fn side(&self, case: &CaseView) -> Side {
        if case.destination_country == self.country.as_str() {
            Side::Destination
        } else {
            Side::Origin
        }
    }

    /// Whether this reader may see `case` at all: a delegated consulate only
    /// the cases [`case::delegated_may_see`] allows, any other agency of this
    /// country every case its gateway holds.
    pub fn may_read(&self, case: &CaseView) -> Result<(), Refusal> {
        match self.delegated {
            Some(acting) => case::delegated_may_see(case, self.country, acting),
            None => Ok(()),
        }
    }

    /// How much of a case this reader sees from `side`.
    pub fn audience(&self, side: Side) -> Audience {
        if self.delegated.is_some() {
            return Audience::IdentityAndTravel;
        }
        match (self.role, side) {
            (Role::Operator, _) => Audience::Metadata,
            (Role::ChildProtection, _) => Audience::Whole,
            (Role::DestinationAuthority, Side::Destination) => Audience::Returning,
            (Role::DestinationAuthority, Side::Origin) | (Role::Consulate, _) => {
                Audience::IdentityAndTravel
            }
        }
    }

    /// Whether this reader sees every case whole, so that deciding what it
    /// sees of a message needs no case (its inbox reads no case per item).
    pub fn sees_every_case_whole(&self) -> bool {
        [Side::Destination, Side::Origin]
            .iter()
            .all(|side| self.audience(*side) == Audience::Whole)
    }
}

/// Whether `reader` may have this gateway's statistics tables: the
/// destination authority and child protection of this country. Not a
/// consulate, its own or a delegated one: tables are about the country's
/// children as a whole, which a consulate has no part in deciding.
pub fn may_read_statistics(reader: &Reader) -> Result<(), Refusal> {
    match (reader.role, reader.delegated) {
        (Role::DestinationAuthority | Role::ChildProtection, None) => Ok(()),
        _ => Err(Refusal {
            rule: case::Rule::Permission,
            reason: retorno_proto::refusal::Reason::new(
                retorno_proto::refusal::Code::StatisticsNotAllowed,
            ),
            message: "statistics are given to the destination authority and child protection, not to consulates".into(),
        }),
    }
}

/// What `audience` sees of a message's payload.
pub fn payload(audience: Audience, payload: &Payload) -> Visibility<Payload> {
    match (audience, payload) {
        (Audience::Metadata, _) => Visibility::Hidden,
        (Audience::Whole, _) => Visibility::Full,
        (_, Payload::CaseSummary(_)) => Visibility::Hidden,
        (Audience::Returning, _) => Visibility::Full,
        (Audience::IdentityAndTravel, payload) => identity_and_travel(payload),
    }
}

/// The identity and travel data of a message, if it has any.
fn identity_and_travel(payload: &Payload) -> Visibility<Payload> {
    let reduced = match payload {
        Payload::AdvanceNotice(notice) => {
            Payload::AdvanceNotice(notice_identity_and_travel(notice))
        }
        Payload::ArrivalResponse(response) => Payload::ArrivalResponse(response_travel(response)),
        // The reason can be protection granted: asylum, from the origin's own state.
        Payload::CaseWithdrawal(_) => Payload::CaseWithdrawal(v1::CaseWithdrawal::default()),
        Payload::ArrivalProposal(_) | Payload::HandoffAck(_) => return Visibility::Full,
        Payload::CaseSummary(_)
        | Payload::ReceptionConfirmation(_)
        | Payload::FollowUpReport(_) => return Visibility::Hidden,
    };
    if &reduced == payload {
        Visibility::Full
    } else {
        Visibility::Redacted(Box::new(reduced))
    }
}

/// The child's identity and the planned travel; of the family contact, only
/// whether the family was located (who receives the child at the border).
fn notice_identity_and_travel(notice: &v1::AdvanceNotice) -> v1::AdvanceNotice {
    v1::AdvanceNotice {
        child: notice.child.clone(),
        companionship: notice.companionship,
        family_group_id: notice.family_group_id.clone(),
        consular_interview: notice.consular_interview.clone(),
        transport: notice.transport.clone(),
        origin_contact: notice
            .origin_contact
            .as_ref()
            .map(|contact| v1::OriginContact {
                family_located: contact.family_located,
                ..v1::OriginContact::default()
            }),
        ..v1::AdvanceNotice::default()
    }
}

/// An answer's decision and times, without its free text, and a decline's
/// reason only when it is about the travel (hours, notice, capacity).
fn response_travel(response: &ArrivalResponse) -> ArrivalResponse {
    let decision = response.decision.clone().map(|decision| match decision {
        Decision::Counter(counter) => Decision::Counter(Counter {
            note: String::new(),
            ..counter
        }),
        Decision::Decline(decline) => Decision::Decline(Decline {
            reason: if about_travel(decline.reason()) {
                decline.reason
            } else {
                DeclineReason::Unspecified as i32
            },
            text: String::new(),
        }),
        accept @ Decision::Accept(_) => accept,
    });
    ArrivalResponse {
        proposal_id: response.proposal_id.clone(),
        decision,
    }
}

fn about_travel(reason: DeclineReason) -> bool {
    matches!(
        reason,
        DeclineReason::OutsideReceptionHours
            | DeclineReason::NoticeTooShort
            | DeclineReason::NoCapacity
    )
}

/// What `reader` sees of an inbox message of `case` (`None`: no case here,
/// or not looked up because the reader [sees every case
/// whole](Reader::sees_every_case_whole)). A reader that needs the case and
/// has none sees nothing.
pub fn message(
    reader: &Reader,
    case: Option<&CaseView>,
    body: &EnvelopeBody,
) -> Visibility<EnvelopeBody> {
    let audience = match case {
        Some(case) if reader.may_read(case).is_ok() => reader.audience(reader.side(case)),
        None if reader.sees_every_case_whole() => Audience::Whole,
        _ => return Visibility::Hidden,
    };
    let Some(content) = &body.payload else {
        return Visibility::Hidden;
    };
    match payload(audience, content) {
        Visibility::Full => Visibility::Full,
        Visibility::Hidden => Visibility::Hidden,
        Visibility::Redacted(reduced) => Visibility::Redacted(Box::new(EnvelopeBody {
            payload: Some(*reduced),
            ..body.clone()
        })),
    }
}

/// `case` as `reader` may read it: its timeline lines rendered from what the
/// reader may see of each message. A refusal when it may not read the case.
pub fn case(reader: &Reader, mut case: CaseView) -> Result<CaseView, Refusal> {
    reader.may_read(&case)?;
    let audience = reader.audience(reader.side(&case));
    if audience == Audience::Metadata {
        case = case_metadata(case);
    }
    case.timeline = case
        .timeline
        .into_iter()
        .map(|entry| entry_for(audience, entry))
        .collect();
    Ok(case)
}

/// `case` as `reader` reads it ([`case()`]) with what the case engine says
/// of it for this reader: the steps its role may take now
/// ([`case::Rules::allowed_steps`], asked as this reader's country and role)
/// and the follow-ups the origin expects ([`case::Rules::follow_ups`]).
pub fn case_for(reader: &Reader, case: CaseView, rules: &case::Rules) -> Result<CaseView, Refusal> {
    let actor = case::Actor {
        country: reader.country,
        role: reader.role,
        delegated: reader.delegated,
    };
    let allowed_steps = rules.allowed_steps(&case, &actor);
    let follow_ups = rules.follow_ups(&case);
    let mut case = self::case(reader, case)?;
    case.allowed_steps = allowed_steps;
    case.follow_ups = follow_ups;
    Ok(case)
}

/// A case's ids, countries, state and times: what an operator sees. The
/// family group, companionship and travel plans describe the child.
fn case_metadata(case: CaseView) -> CaseView {
    CaseView {
        case_id: case.case_id,
        destination_country: case.destination_country,
        origin_country: case.origin_country,
        state: case.state,
        timeline: case.timeline,
        handed_over_at: case.handed_over_at,
        received_at: case.received_at,
        ..CaseView::default()
    }
}

/// `case` as a case list shows it to `reader` (no timeline), if it may read
/// it, with the follow-ups the origin expects ([`case::Rules::follow_ups`], as
/// [`case_for`] gives them): read off the timeline before the list leaves it out.
pub fn listed(reader: &Reader, case: CaseView, rules: &case::Rules) -> Option<CaseView> {
    let follow_ups = rules.follow_ups(&case);
    let bare = CaseView {
        timeline: Vec::new(),
        ..case
    };
    let mut listed = self::case(reader, bare).ok()?;
    listed.follow_ups = follow_ups;
    Some(listed)
}

/// A timeline entry as `audience` reads it: the line and the facts it may see.
fn entry_for(audience: Audience, mut entry: TimelineEntry) -> TimelineEntry {
    let stored = entry.facts.take().and_then(|facts| facts.payload);
    let Some(stored) = stored.map(Payload::from) else {
        // Stored before lines were rendered per reader: only its own sentence is left.
        if matches!(audience, Audience::IdentityAndTravel | Audience::Metadata) {
            entry.summary = unseen_line(&entry.kind);
        }
        return entry;
    };
    let seen = match payload(audience, &stored) {
        Visibility::Full => Some(stored),
        Visibility::Redacted(reduced) => Some(*reduced),
        Visibility::Hidden => None,
    };
    entry.summary = match &seen {
        Some(seen) => line(seen),
        None => unseen_line(&entry.kind),
    };
    entry.facts = seen.as_ref().map(facts);
    entry
}

/// What a timeline stores of a message: its payload cut down to what any
/// line can show (categories and travel data, no names or free text).
pub fn facts(payload: &Payload) -> TimelineFacts {
    let fact = match payload {
        Payload::AdvanceNotice(notice) => Fact::AdvanceNotice(v1::AdvanceNotice {
            companionship: notice.companionship,
            // Categories for statistics; a reader that may not see them
            // (identity and travel only) gets a notice without them.
            protection_concerns: notice.protection_concerns.clone(),
            risk_level: notice.risk_level,
            ..v1::AdvanceNotice::default()
        }),
        Payload::CaseSummary(_) => Fact::CaseSummary(v1::CaseSummary::default()),
        Payload::ArrivalProposal(proposal) => Fact::ArrivalProposal(ArrivalProposal {
            proposal_id: proposal.proposal_id.clone(),
            case_ids: proposal.case_ids.clone(),
            point_of_entry: proposal.point_of_entry.clone(),
            arrival: proposal.arrival,
            time_zone: proposal.time_zone.clone(),
            ..ArrivalProposal::default()
        }),
        Payload::ArrivalResponse(response) => Fact::ArrivalResponse(response_facts(response)),
        Payload::HandoffAck(handoff) => Fact::HandoffAck(HandoffAck {
            point_of_entry: handoff.point_of_entry.clone(),
            case_ids: handoff.case_ids.clone(),
            ..HandoffAck::default()
        }),
        Payload::ReceptionConfirmation(reception) => {
            Fact::ReceptionConfirmation(v1::ReceptionConfirmation {
                placement: reception.placement,
                ..v1::ReceptionConfirmation::default()
            })
        }
        Payload::FollowUpReport(report) => Fact::FollowUpReport(v1::FollowUpReport {
            days_since_return: report.days_since_return,
            status: report.status,
            notes: String::new(),
        }),
        Payload::CaseWithdrawal(withdrawal) => Fact::CaseWithdrawal(v1::CaseWithdrawal {
            reason: withdrawal.reason,
            text: String::new(),
        }),
    };
    TimelineFacts {
        payload: Some(fact),
    }
}

/// An answer's decision without its free text.
fn response_facts(response: &ArrivalResponse) -> ArrivalResponse {
    let decision = response.decision.clone().map(|decision| match decision {
        Decision::Counter(counter) => Decision::Counter(Counter {
            note: String::new(),
            ..counter
        }),
        Decision::Decline(decline) => Decision::Decline(Decline {
            text: String::new(),
            ..decline
        }),
        accept @ Decision::Accept(_) => accept,
    });
    ArrivalResponse {
        proposal_id: response.proposal_id.clone(),
        decision,
    }
}

pub(crate) fn words(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

/// `: {words}` for a category the reader sees, nothing for one withheld
/// (every category is required, so unspecified means withheld).
fn category(name: &str, prefix: &str, separator: &str) -> String {
    match words(name, prefix).as_str() {
        "unspecified" => String::new(),
        shown => format!("{separator}{shown}"),
    }
}

pub(crate) fn local_time(at: Option<&pbjson_types::Timestamp>, time_zone: &str) -> String {
    let Some(at) = at.and_then(crate::clock::from_wire) else {
        return "?".into();
    };
    match jiff::tz::TimeZone::get(time_zone) {
        Ok(tz) => format!(
            "{} {time_zone}",
            at.to_zoned_datetime(tz).strftime("%Y-%m-%d %H:%M")
        ),
        Err(_) => at.to_string(),
    }
}

/// A one-line account of a message, from what the reader may see of it.
fn line(payload: &Payload) -> String {
    match payload {
        Payload::AdvanceNotice(notice) => format!(
            "notice: {}{}",
            words(notice.companionship().as_str_name(), "COMPANIONSHIP_"),
            category(notice.risk_level().as_str_name(), "RISK_LEVEL_", ", risk ")
        ),
        Payload::CaseSummary(_) => unseen_line(Kind::Summary.name()),
        Payload::ArrivalProposal(p) => format!(
            "proposal {} for {} child(ren) at {} {}",
            p.proposal_id,
            p.case_ids.len().max(1),
            p.point_of_entry,
            local_time(p.arrival.as_ref(), &p.time_zone)
        ),
        Payload::ArrivalResponse(r) => response_line(r),
        Payload::HandoffAck(h) => format!(
            "handed over at {}, {} child(ren)",
            h.point_of_entry,
            h.case_ids.len().max(1)
        ),
        Payload::ReceptionConfirmation(r) => format!(
            "received{}",
            category(r.placement().as_str_name(), "PLACEMENT_", ": ")
        ),
        Payload::FollowUpReport(f) => format!(
            "follow-up at {} days{}",
            f.days_since_return,
            category(f.status().as_str_name(), "FOLLOW_UP_STATUS_", ": ")
        ),
        Payload::CaseWithdrawal(w) => format!(
            "withdrawn{}",
            category(w.reason().as_str_name(), "WITHDRAWAL_REASON_", ": ")
        ),
    }
}

fn response_line(r: &ArrivalResponse) -> String {
    match &r.decision {
        Some(Decision::Accept(_)) => format!("accepted proposal {}", r.proposal_id),
        Some(Decision::Counter(c)) => format!(
            "countered proposal {} with {}",
            r.proposal_id,
            local_time(c.arrival.as_ref(), &c.time_zone)
        ),
        Some(Decision::Decline(d)) => format!(
            "declined proposal {}{}",
            r.proposal_id,
            category(d.reason().as_str_name(), "DECLINE_REASON_", ": ")
        ),
        None => format!("answered proposal {}", r.proposal_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(role: Role, delegated: Option<&str>) -> Reader {
        Reader {
            role,
            country: "GT".parse().unwrap(),
            delegated: delegated.map(|code| code.parse().unwrap()),
        }
    }

    fn notice() -> v1::AdvanceNotice {
        v1::AdvanceNotice {
            protection_concerns: vec![v1::ProtectionConcern::Health as i32],
            risk_level: v1::RiskLevel::High as i32,
            companionship: v1::Companionship::Unaccompanied as i32,
            best_interest: Some(v1::BestInterestDetermination::default()),
            child: Some(v1::Child {
                given_names: "Ana".into(),
                ..Default::default()
            }),
            origin_contact: Some(v1::OriginContact {
                family_located: true,
                contact_phone: "+502 5555 0000".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_reader_reads_the_audience_of_its_role_and_side() {
        use Audience::*;
        use Side::*;
        let cases = [
            (Role::ChildProtection, None, Destination, Whole),
            (Role::ChildProtection, None, Origin, Whole),
            (Role::DestinationAuthority, None, Destination, Returning),
            (Role::DestinationAuthority, None, Origin, IdentityAndTravel),
            (Role::Consulate, None, Origin, IdentityAndTravel),
            (Role::Consulate, None, Destination, IdentityAndTravel),
            (Role::Consulate, Some("HN"), Origin, IdentityAndTravel),
            (Role::Operator, None, Origin, Metadata),
            (Role::Operator, None, Destination, Metadata),
        ];
        for (role, delegated, side, audience) in cases {
            assert_eq!(
                reader(role, delegated).audience(side),
                audience,
                "{role:?} {delegated:?} {side:?}"
            );
        }
        assert!(reader(Role::ChildProtection, None).sees_every_case_whole());
        assert!(!reader(Role::DestinationAuthority, None).sees_every_case_whole());
    }

    #[test]
    fn identity_and_travel_is_a_notice_without_its_sensitive_parts() {
        let Visibility::Redacted(seen) = payload(
            Audience::IdentityAndTravel,
            &Payload::AdvanceNotice(notice()),
        ) else {
            panic!("a consulate sees a redacted notice");
        };
        let Payload::AdvanceNotice(seen) = *seen else {
            panic!()
        };
        assert!(seen.protection_concerns.is_empty() && seen.best_interest.is_none());
        assert_eq!(seen.risk_level, 0);
        assert_eq!(seen.child.unwrap().given_names, "Ana");
        let contact = seen.origin_contact.unwrap();
        assert!(contact.family_located && contact.contact_phone.is_empty());
        let summary = Payload::CaseSummary(v1::CaseSummary::default());
        for audience in [Audience::IdentityAndTravel, Audience::Returning] {
            assert_eq!(payload(audience, &summary), Visibility::Hidden);
        }
        assert_eq!(payload(Audience::Whole, &summary), Visibility::Full);
    }

    #[test]
    fn an_operator_sees_no_payload_and_a_case_without_its_child() {
        let operator = reader(Role::Operator, None);
        for content in [
            Payload::AdvanceNotice(notice()),
            Payload::CaseSummary(v1::CaseSummary::default()),
            Payload::HandoffAck(v1::HandoffAck::default()),
        ] {
            assert_eq!(payload(Audience::Metadata, &content), Visibility::Hidden);
        }
        let body = EnvelopeBody {
            payload: Some(Payload::AdvanceNotice(notice())),
            ..EnvelopeBody::default()
        };
        let whole = CaseView {
            case_id: "GT-1".into(),
            destination_country: "MX".into(),
            origin_country: "GT".into(),
            family_group_id: "F1".into(),
            companionship: v1::Companionship::Unaccompanied as i32,
            agreed_arrival: Some(ArrivalProposal::default()),
            timeline: vec![TimelineEntry {
                message_id: "m1".into(),
                kind: Kind::Notice.name().into(),
                facts: Some(facts(&Payload::AdvanceNotice(notice()))),
                ..TimelineEntry::default()
            }],
            ..CaseView::default()
        };
        assert_eq!(message(&operator, Some(&whole), &body), Visibility::Hidden);
        let seen = case(&operator, whole).unwrap();
        assert_eq!(
            (seen.case_id.as_str(), seen.family_group_id.as_str()),
            ("GT-1", "")
        );
        assert!(seen.agreed_arrival.is_none() && seen.companionship == 0);
        let line = &seen.timeline[0];
        assert_eq!(
            (line.message_id.as_str(), line.summary.as_str()),
            ("m1", "advance notice")
        );
        assert!(line.facts.is_none());
    }

    #[test]
    fn a_line_is_rendered_from_what_its_reader_sees() {
        let stored = facts(&Payload::AdvanceNotice(notice()));
        let entry = TimelineEntry {
            kind: Kind::Notice.name().into(),
            facts: Some(stored),
            ..TimelineEntry::default()
        };
        let whole = entry_for(Audience::Whole, entry.clone());
        assert_eq!(whole.summary, "notice: unaccompanied, risk high");
        let consulate = entry_for(Audience::IdentityAndTravel, entry);
        assert_eq!(consulate.summary, "notice: unaccompanied");
        let Some(Fact::AdvanceNotice(seen)) = consulate.facts.unwrap().payload else {
            panic!("the consulate sees the notice's facts");
        };
        assert_eq!(seen.risk_level, 0);

        let follow_up = TimelineEntry {
            kind: Kind::FollowUp.name().into(),
            facts: Some(facts(&Payload::FollowUpReport(v1::FollowUpReport {
                days_since_return: 30,
                status: v1::FollowUpStatus::AtRisk as i32,
                notes: "hidden".into(),
            }))),
            ..TimelineEntry::default()
        };
        let hidden = entry_for(Audience::IdentityAndTravel, follow_up.clone());
        assert_eq!(hidden.summary, "follow-up report");
        assert!(hidden.facts.is_none());
        assert_eq!(
            entry_for(Audience::Returning, follow_up).summary,
            "follow-up at 30 days: at risk"
        );
    }

    #[test]
    fn a_line_stored_as_a_sentence_is_not_shown_to_a_consulate() {
        let old = TimelineEntry {
            kind: Kind::Reception.name().into(),
            summary: "received: foster care".into(),
            ..TimelineEntry::default()
        };
        assert_eq!(
            entry_for(Audience::IdentityAndTravel, old.clone()).summary,
            "reception confirmed"
        );
        assert_eq!(
            entry_for(Audience::Whole, old).summary,
            "received: foster care"
        );
    }
}
