//! A timeline entry's line in the reader's language, from the facts the
//! gateway left in it for this reader (`TimelineEntry.facts`, already cut by
//! its need-to-know rules). An entry without facts (the reader may not see
//! its content, or it was stored before facts existed) keeps the gateway's
//! own sentence, as does any value the message files do not name.

use fluent_bundle::FluentValue;
use retorno_proto::v1::{TimelineEntry, arrival_response::Decision, timeline_facts::Payload};

use super::{dates, pages::instant};
use crate::i18n::Lang;

/// The line for `entry`, in `lang`, times in the point of entry's zone.
pub(crate) fn line(entry: &TimelineEntry, lang: Lang) -> String {
    let Some(payload) = entry
        .facts
        .as_ref()
        .and_then(|facts| facts.payload.as_ref())
    else {
        return entry.summary.clone();
    };
    rendered(payload, lang).unwrap_or_else(|| entry.summary.clone())
}

fn rendered(payload: &Payload, lang: Lang) -> Option<String> {
    let text =
        |id: &str, args: &[(&str, FluentValue<'_>)]| Lang::En.has(id).then(|| lang.text(id, args));
    let at = |at: Option<&pbjson_types::Timestamp>, zone: &str| {
        instant(at).map(|at| dates::date_time(at, zone, lang))
    };
    match payload {
        Payload::AdvanceNotice(notice) => {
            let companionship =
                option(notice.companionship().as_str_name(), "COMPANIONSHIP_", lang)?;
            match option(notice.risk_level().as_str_name(), "RISK_LEVEL_", lang) {
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
                    match option(d.reason().as_str_name(), "DECLINE_REASON_", lang) {
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
            match option(r.placement().as_str_name(), "PLACEMENT_", lang) {
                Some(placement) => {
                    text("tl-received-placement", &[("placement", placement.into())])
                }
                None => text("tl-received", &[]),
            }
        }
        Payload::FollowUpReport(f) => {
            let days = ("days", FluentValue::from(f.days_since_return));
            match option(f.status().as_str_name(), "FOLLOW_UP_STATUS_", lang) {
                Some(status) => text("tl-follow-up-status", &[days, ("status", status.into())]),
                None => text("tl-follow-up", &[days]),
            }
        }
        Payload::CaseWithdrawal(w) => {
            match option(w.reason().as_str_name(), "WITHDRAWAL_REASON_", lang) {
                Some(reason) => text("tl-withdrawn-reason", &[("reason", reason.into())]),
                None => text("tl-withdrawn", &[]),
            }
        }
    }
}

/// An enum value's label (`o-<value>` in the message files), `None` when it
/// is unspecified or has no label: `RISK_LEVEL_HIGH` is `o-high`.
fn option(name: &str, prefix: &str, lang: Lang) -> Option<String> {
    let value = name.strip_prefix(prefix)?;
    if value == "UNSPECIFIED" {
        return None;
    }
    let id = format!("o-{}", value.to_ascii_lowercase().replace('_', "-"));
    Lang::En.has(&id).then(|| lang.text(&id, &[]))
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
    fn a_line_is_in_the_readers_language_and_without_facts_keeps_the_gateways() {
        let notice = entry(Payload::AdvanceNotice(v1::AdvanceNotice {
            companionship: v1::Companionship::Unaccompanied as i32,
            risk_level: v1::RiskLevel::High as i32,
            ..Default::default()
        }));
        assert_eq!(
            line(&notice, Lang::Es),
            "Aviso previo: No acompañado, riesgo Alto"
        );
        assert_eq!(line(&notice, Lang::En), "Notice: Unaccompanied, risk High");
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
        let es = line(&proposal, Lang::Es);
        assert!(
            es.starts_with("Propuesta P1 para 1 NNA en GT-TECUN-UMAN: "),
            "{es}"
        );
        assert!(es.contains("(hora de Guatemala)"), "{es}");
        let hidden = TimelineEntry {
            summary: "arrival_proposal (not shown)".into(),
            ..Default::default()
        };
        assert_eq!(line(&hidden, Lang::Es), "arrival_proposal (not shown)");
    }
}
