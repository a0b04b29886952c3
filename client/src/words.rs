//! What a person reads about a case, in the reader's language: one place for
//! the web console and the `retorno` program, so that a caseworker reads the
//! same words for the same step whichever she uses.
//!
//! - [`dates`]: instants in a point of entry's time zone.
//! - [`timeline_line`], [`payload_line`]: a step's line, from the facts the
//!   gateway left for this reader (`TimelineEntry.facts`, already cut by its
//!   need-to-know rules) or from a message of the inbox. An entry has no
//!   facts when the reader may not see its content, or when it was stored
//!   before facts existed. The first reads as its kind (`Informe de
//!   seguimiento`); the second, an unknown kind, or a value the message files
//!   do not name keeps the gateway's own sentence.
//! - [`kind`], [`kind_of`]: a message's kind and its name.
//! - [`state`], [`companionship`], [`role`], [`label`]: the names of a case's state, a role and
//!   of the values of the proto's enums.
//! - [`reason`]: a refusal or a remark kept in a timeline or a receipt.

pub mod dates;

use fluent_bundle::FluentValue;
use retorno_proto::v1::{
    CaseState, Companionship, RefusalDetail, TimelineEntry, arrival_response::Decision,
    envelope_body, timeline_facts::Payload,
};

use crate::{i18n::Lang, refusal::Refusal};

/// How a line writes an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// `4 de diciembre de 2026, 11:00 (hora de Guatemala)`: a page.
    Full,
    /// `2026-12-04 11:00 (hora de Guatemala)`: a terminal.
    Compact,
}

/// A protobuf timestamp as an instant, `None` if absent or out of range.
pub fn instant(at: Option<&pbjson_types::Timestamp>) -> Option<jiff::Timestamp> {
    let at = at?;
    jiff::Timestamp::new(at.seconds, at.nanos).ok()
}

/// `at` in the IANA `zone`, written as `times` says.
pub fn local(at: jiff::Timestamp, zone: &str, lang: Lang, times: Times) -> String {
    match times {
        Times::Full => dates::date_time(at, zone, lang),
        Times::Compact => dates::compact_date_time(at, zone, lang),
    }
}

/// The line for a timeline `entry`, in `lang`, times in the point of entry's zone.
pub fn timeline_line(entry: &TimelineEntry, lang: Lang, times: Times) -> String {
    let Some(payload) = entry
        .facts
        .as_ref()
        .and_then(|facts| facts.payload.as_ref())
    else {
        let unseen = entry.summary == retorno_proto::timeline::unseen_line(&entry.kind);
        return if unseen && Lang::En.has(&format!("kind-{}", entry.kind)) {
            kind(&entry.kind, lang)
        } else {
            entry.summary.clone()
        };
    };
    payload_line(payload, lang, times).unwrap_or_else(|| entry.summary.clone())
}

/// A message kind's name (`kind-<kind>` in the message files, `kind-unknown`
/// for one they do not name): `Propuesta de arribo`.
pub fn kind(kind: &str, lang: Lang) -> String {
    let id = format!("kind-{kind}");
    if Lang::En.has(&id) {
        lang.text(&id, &[])
    } else {
        lang.text("kind-unknown", &[])
    }
}

/// The kind of a message's payload, as timelines and message ids name it
/// ([`retorno_proto::timeline::kind_name`]); `unknown` without one.
pub fn kind_of(payload: Option<&envelope_body::Payload>) -> &'static str {
    payload.map_or("unknown", retorno_proto::timeline::kind_name)
}

/// A role by name (`cli-role-<role>` in the message files), from the code a
/// certificate and a refusal give it (`child-protection`): `institución de
/// protección de la niñez`. A role the files do not name stays as its code.
pub fn role(role: &str, lang: Lang) -> String {
    let id = format!("cli-role-{role}");
    if Lang::En.has(&id) {
        lang.text(&id, &[])
    } else {
        role.to_owned()
    }
}

/// A case's state by name: `Arribo acordado`, `Arrival agreed`.
pub fn state(state: CaseState, lang: Lang) -> String {
    lang.text(
        &format!("state-{}", code(state.as_str_name(), "CASE_STATE_")),
        &[],
    )
}

/// Whom the child travels with: `No acompañado`, `With family`.
pub fn companionship(companionship: Companionship, lang: Lang) -> String {
    let code = code(companionship.as_str_name(), "COMPANIONSHIP_");
    lang.text(&format!("companionship-{code}"), &[])
}

/// A refusal or a remark that a timeline or a receipt keeps (`refused`,
/// `peer_refused`, `flag`, `case_refusal`, each with its `*_detail`): in
/// English the gateway's own sentence, which names every detail; in another
/// language rendered from its reason code where one was kept.
pub fn reason(sentence: &str, detail: Option<&RefusalDetail>, lang: Lang) -> String {
    match detail {
        Some(detail) if lang != Lang::En => Refusal::from_detail(detail).render(lang),
        _ => sentence.to_owned(),
    }
}

/// `CASE_STATE_ARRIVAL_AGREED` without `prefix`, as the message ids and the
/// program's options write it: `arrival-agreed`.
pub fn code(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// A step's line from its facts; `None` where a value has no message.
pub fn payload_line(payload: &Payload, lang: Lang, times: Times) -> Option<String> {
    let text =
        |id: &str, args: &[(&str, FluentValue<'_>)]| Lang::En.has(id).then(|| lang.text(id, args));
    let at = |at: Option<&pbjson_types::Timestamp>, zone: &str| {
        instant(at).map(|at| local(at, zone, lang, times))
    };
    match payload {
        Payload::AdvanceNotice(notice) => {
            let companionship =
                label(notice.companionship().as_str_name(), "COMPANIONSHIP_", lang)?;
            match label(notice.risk_level().as_str_name(), "RISK_LEVEL_", lang) {
                Some(risk) => text(
                    "tl-notice-risk",
                    &[
                        ("companionship", companionship.into()),
                        ("risk", risk.into()),
                    ],
                ),
                None => text("tl-notice", &[("companionship", companionship.into())]),
            }
        }
        Payload::CaseSummary(_) => text("tl-summary", &[]),
        Payload::ArrivalProposal(p) => text(
            "tl-proposal",
            &[
                ("id", p.proposal_id.as_str().into()),
                ("children", p.case_ids.len().max(1).into()),
                ("point", p.point_of_entry.as_str().into()),
                ("at", at(p.arrival.as_ref(), &p.time_zone)?.into()),
            ],
        ),
        Payload::ArrivalResponse(r) => {
            let id = ("id", FluentValue::from(r.proposal_id.as_str()));
            match &r.decision {
                Some(Decision::Accept(_)) => text("tl-accepted", &[id]),
                Some(Decision::Counter(c)) => text(
                    "tl-countered",
                    &[id, ("at", at(c.arrival.as_ref(), &c.time_zone)?.into())],
                ),
                Some(Decision::Decline(d)) => {
                    match label(d.reason().as_str_name(), "DECLINE_REASON_", lang) {
                        Some(reason) => {
                            text("tl-declined-reason", &[id, ("reason", reason.into())])
                        }
                        None => text("tl-declined", &[id]),
                    }
                }
                None => None,
            }
        }
        Payload::HandoffAck(h) => text(
            "tl-handoff",
            &[
                ("point", h.point_of_entry.as_str().into()),
                ("children", h.case_ids.len().max(1).into()),
            ],
        ),
        Payload::ReceptionConfirmation(r) => {
            match label(r.placement().as_str_name(), "PLACEMENT_", lang) {
                Some(placement) => {
                    text("tl-received-placement", &[("placement", placement.into())])
                }
                None => text("tl-received", &[]),
            }
        }
        Payload::FollowUpReport(f) => {
            let days = ("days", FluentValue::from(f.days_since_return));
            match label(f.status().as_str_name(), "FOLLOW_UP_STATUS_", lang) {
                Some(status) => text("tl-follow-up-status", &[days, ("status", status.into())]),
                None => text("tl-follow-up", &[days]),
            }
        }
        Payload::CaseWithdrawal(w) => {
            match label(w.reason().as_str_name(), "WITHDRAWAL_REASON_", lang) {
                Some(reason) => text("tl-withdrawn-reason", &[("reason", reason.into())]),
                None => text("tl-withdrawn", &[]),
            }
        }
    }
}

/// An enum value's label, `None` when it is unspecified or has no label:
/// `RISK_LEVEL_HIGH` is `o-high`. A value whose words differ by field has a
/// label of its own, `o-<field>-<value>`: `PLACEMENT_WITH_FAMILY` is
/// `o-placement-with-family` (con su familia), not the companionship's
/// `o-with-family` (acompañado por su familia).
pub fn label(name: &str, prefix: &str, lang: Lang) -> Option<String> {
    let value = name.strip_prefix(prefix)?;
    if value == "UNSPECIFIED" {
        return None;
    }
    let field = prefix
        .trim_end_matches('_')
        .to_ascii_lowercase()
        .replace('_', "-");
    option(&field, &value.to_ascii_lowercase().replace('_', "-"), lang)
}

/// The label of `value` (kebab-case) in a choice of `field`: `o-<field>-<value>`
/// where the field has words of its own for it, else `o-<value>`; `None`
/// when neither exists. The console's forms label their choices with it too.
pub fn option(field: &str, value: &str, lang: Lang) -> Option<String> {
    [format!("o-{field}-{value}"), format!("o-{value}")]
        .into_iter()
        .find(|id| Lang::En.has(id))
        .map(|id| lang.text(&id, &[]))
}

#[cfg(test)]
mod tests {
    use retorno_proto::v1::{self, TimelineFacts};

    use super::*;

    fn entry(payload: Payload) -> TimelineEntry {
        TimelineEntry {
            summary: "the gateway's sentence".into(),
            facts: Some(TimelineFacts {
                payload: Some(payload),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_line_is_in_the_readers_language_from_its_facts_or_else_its_kind() {
        let notice = entry(Payload::AdvanceNotice(v1::AdvanceNotice {
            companionship: v1::Companionship::Unaccompanied as i32,
            risk_level: v1::RiskLevel::High as i32,
            ..Default::default()
        }));
        assert_eq!(
            timeline_line(&notice, Lang::Es, Times::Full),
            "Aviso previo: No acompañado, riesgo Alto"
        );
        assert_eq!(
            timeline_line(&notice, Lang::En, Times::Full),
            "Notice: Unaccompanied, risk High"
        );
        let proposal = entry(Payload::ArrivalProposal(v1::ArrivalProposal {
            proposal_id: "P1".into(),
            point_of_entry: "GT-TECUN-UMAN".into(),
            time_zone: "America/Guatemala".into(),
            arrival: Some(pbjson_types::Timestamp {
                seconds: 1_796_652_000,
                nanos: 0,
            }),
            ..Default::default()
        }));
        let es = timeline_line(&proposal, Lang::Es, Times::Full);
        assert!(
            es.starts_with("Propuesta P1 para 1 NNA en GT-TECUN-UMAN: "),
            "{es}"
        );
        assert!(es.contains("(hora de Guatemala)"), "{es}");
        let compact = timeline_line(&proposal, Lang::En, Times::Compact);
        assert!(
            compact.starts_with("Proposal P1 for 1 child(ren) at GT-TECUN-UMAN: ")
                && compact.ends_with(" (Guatemala time)"),
            "{compact}"
        );
        let hidden = TimelineEntry {
            kind: "follow_up_report".into(),
            summary: "follow-up report".into(),
            ..Default::default()
        };
        assert_eq!(
            timeline_line(&hidden, Lang::Es, Times::Compact),
            "Informe de seguimiento"
        );
        assert_eq!(
            timeline_line(&hidden, Lang::En, Times::Compact),
            "Follow-up report"
        );
        let unknown = TimelineEntry {
            kind: "a_kind_from_later".into(),
            summary: "a kind from later".into(),
            ..Default::default()
        };
        assert_eq!(
            timeline_line(&unknown, Lang::Es, Times::Compact),
            "a kind from later"
        );
        let inbox = v1::envelope_body::Payload::FollowUpReport(v1::FollowUpReport {
            days_since_return: 30,
            status: v1::FollowUpStatus::Stable as i32,
            ..Default::default()
        });
        assert_eq!(
            payload_line(&inbox.into(), Lang::Es, Times::Compact).as_deref(),
            Some("Seguimiento a los 30 días: Estable")
        );
    }
}
