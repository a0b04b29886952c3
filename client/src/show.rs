//! How the `retorno` program prints what the gateway returns.

/// Prints a line to stdout; a closed pipe (`retorno inbox | head`) ends the
/// program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::show::write_line(format_args!($($arg)*))
    };
}

/// Writes one line to stdout, exiting quietly if the reader has gone.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(error) = writeln!(std::io::stdout().lock(), "{args}") {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("retorno: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}

use std::sync::OnceLock;

use retorno_client::{
    ClientError,
    i18n::{Lang, t},
    refusal::Refusal,
    words::{self, Times},
};
use retorno_proto::v1::{
    AdvanceNotice, ArrivalProposal, CaseView, Date, DeliveryState, InboxItem, Role, Sender,
    StatusResponse, SubmitResponse, envelope_body::Payload,
};

/// The reader's language, from `LC_ALL`, `LC_MESSAGES` or `LANG` (English
/// when unset or `C`), read once.
pub fn lang() -> Lang {
    static LANG: OnceLock<Lang> = OnceLock::new();
    *LANG.get_or_init(Lang::from_env)
}

/// The sentence `id` of `client/locales/*/*.ftl` in the reader's language.
fn say(id: &str, args: &[(&str, &str)]) -> String {
    let args: Vec<(&str, fluent_bundle::FluentValue<'_>)> = args
        .iter()
        .map(|(name, value)| (*name, (*value).into()))
        .collect();
    t(lang(), id, &args)
}

/// A failed command, as the program prints it after `retorno: `. A refusal
/// by the gateway is rendered from its reason code in the reader's
/// language; in English it keeps the gateway's own sentence, which names
/// every detail (and is what the README shows).
pub fn error(error: &anyhow::Error) -> String {
    let refusal = match error.downcast_ref::<ClientError>() {
        Some(ClientError::Status(status)) if lang() != Lang::En => {
            Refusal::from_status(status).map(|refusal| (status.code(), refusal))
        }
        _ => None,
    };
    match refusal {
        Some((code, refusal)) => say(
            "cli-refused",
            &[
                ("status", &format!("{code:?}")),
                ("reason", &refusal.render(lang())),
            ],
        ),
        None => format!("{error:#}"),
    }
}

/// Prints a line of the program's own, in the reader's language.
pub fn said(id: &str, args: &[(&str, &str)]) {
    out!("{}", say(id, args));
}

/// Prints one inbox item, as a summary or as JSON.
pub fn inbox_item(item: &InboxItem, json: bool) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string(item)?);
        return Ok(());
    }
    let cursor = item.cursor.to_string();
    let Some(body) = &item.body else {
        said("cli-inbox-no-body", &[("cursor", &cursor)]);
        return Ok(());
    };
    said(
        "cli-inbox-item",
        &[
            ("cursor", &cursor),
            ("at", &time(item.received_at.as_ref())),
            ("sender", &sender_name(body.sender.as_ref())),
            ("case", &body.case_id),
            ("message_id", &body.message_id),
        ],
    );
    let line = match &body.payload {
        Some(Payload::AdvanceNotice(notice)) => notice_summary(notice),
        Some(Payload::CaseSummary(_)) => say("cli-inbox-summary", &[]),
        Some(payload) => words::payload_line(&words::facts_of(payload), lang(), Times::Compact)
            .unwrap_or_else(|| say("cli-inbox-unknown", &[])),
        None => say("cli-inbox-unknown", &[]),
    };
    out!("    {line}");
    if item.redacted {
        out!("    {}", say("cli-inbox-redacted", &[]));
    }
    Ok(())
}

/// An advance notice in the inbox: who the child is, with whom the child
/// travels, the risk where this role sees it, where and from when.
fn notice_summary(notice: &AdvanceNotice) -> String {
    let child = notice.child.clone().unwrap_or_default();
    let transport = notice.transport.clone().unwrap_or_default();
    let name = format!("{} {}", child.given_names, child.family_names);
    let companionship = words::companionship(notice.companionship(), lang());
    let point = transport.point_of_entry;
    let date = date(transport.earliest_date.as_ref());
    let mut args = vec![
        ("child", name.as_str()),
        ("companionship", companionship.as_str()),
        ("point", point.as_str()),
        ("date", date.as_str()),
    ];
    match words::label(notice.risk_level().as_str_name(), "RISK_LEVEL_", lang()) {
        Some(risk) => {
            args.push(("risk", &risk));
            say("cli-inbox-notice-risk", &args)
        }
        None => say("cli-inbox-notice", &args),
    }
}

/// Who sent a message, e.g. `GT SBS (child-protection)`, or for a consulate
/// acting for another country under a delegation
/// `GT MINEX (consulate of GT acting for HN, under HN's delegation)`.
/// The official the agency named follows: `MX INM (destination-authority), Ana Pérez`.
fn sender_name(sender: Option<&Sender>) -> String {
    let sender = sender.cloned().unwrap_or_default();
    let role = role_name(sender.role());
    let agency = match sender.delegated_consulate_country.as_str() {
        "" => format!("{} {} ({role})", sender.country, sender.agency),
        acting => say(
            "cli-sender-delegated",
            &[
                ("acting", acting),
                ("agency", &sender.agency),
                ("role", &role),
                ("country", &sender.country),
            ],
        ),
    };
    match sender.official.as_str() {
        "" => agency,
        official => format!("{agency}, {official}"),
    }
}

fn role_name(role: Role) -> String {
    say(
        &format!("cli-role-{}", words::code(role.as_str_name(), "ROLE_")),
        &[],
    )
}

fn date(date: Option<&Date>) -> String {
    date.map_or_else(
        || "?".into(),
        |d| format!("{}-{:02}-{:02}", d.year, d.month, d.day),
    )
}

/// An instant in UTC, as the program's columns show it: `2026-12-04 17:00:00 UTC`.
fn time(timestamp: Option<&pbjson_types::Timestamp>) -> String {
    words::instant(timestamp).map_or_else(
        || "?".into(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Prints where a sent message stands.
pub fn status(status: &StatusResponse) {
    let to = &status.recipient_country;
    let id = &status.message_id;
    match status.state() {
        DeliveryState::Delivered => {
            let receipt = status.receipt_body.clone().unwrap_or_default();
            said(
                "cli-delivered",
                &[
                    ("message_id", id),
                    ("country", &receipt.receiving_country),
                    ("stored", &time(receipt.received_at.as_ref())),
                    ("accepted", &time(status.accepted_at.as_ref())),
                ],
            );
            let hash: String = receipt
                .body_sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            said("cli-receipt", &[("sha256", &hash)]);
            if !receipt.case_refusal.is_empty() {
                let reason =
                    refusal_text(&receipt.case_refusal, receipt.case_refusal_detail.as_ref());
                said(
                    "cli-delivered-refused",
                    &[("country", &receipt.receiving_country), ("reason", &reason)],
                );
            }
        }
        DeliveryState::Queued => said(
            "cli-queued",
            &[
                ("message_id", id),
                ("country", to),
                ("accepted", &time(status.accepted_at.as_ref())),
            ],
        ),
        DeliveryState::Rejected => {
            let rejection = status.rejection.clone().unwrap_or_default();
            said(
                "cli-rejected",
                &[
                    ("country", to),
                    ("reason", &rejection.reason),
                    ("code", rejection.code().as_str_name()),
                ],
            );
        }
        DeliveryState::Unspecified | DeliveryState::Received => {
            said("cli-unknown-state", &[("message_id", id)])
        }
    }
}

/// A proposal as a case's first lines show it: `P1 at GT-TECUN-UMAN 2026-12-04 11:00 (Guatemala time)`.
fn proposal(p: &ArrivalProposal) -> String {
    let at = words::instant(p.arrival.as_ref()).map_or_else(
        || "?".into(),
        |at| words::local(at, &p.time_zone, lang(), Times::Compact),
    );
    say(
        "cli-proposal",
        &[
            ("id", &p.proposal_id),
            ("point", &p.point_of_entry),
            ("at", &at),
        ],
    )
}

/// Prints what a submit did.
pub fn accepted(answer: &SubmitResponse) {
    let state = retorno_proto::v1::CaseState::try_from(answer.case_state).unwrap_or_default();
    said(
        "cli-accepted",
        &[
            ("duplicate", if answer.duplicate { "yes" } else { "no" }),
            ("message_id", &answer.message_id),
            ("case", &answer.case_id),
            ("state", &words::state(state, lang())),
        ],
    );
}

/// Prints a case with its timeline.
pub fn case(case: &CaseView) {
    said(
        "cli-case",
        &[
            ("case", &case.case_id),
            ("destination", &case.destination_country),
            ("origin", &case.origin_country),
            ("state", &words::state(case.state(), lang())),
            (
                "companionship",
                &words::companionship(case.companionship(), lang()),
            ),
        ],
    );
    if !case.family_group_id.is_empty() {
        said("cli-family-group", &[("group", &case.family_group_id)]);
    }
    if case.best_interest_relaxed {
        said("cli-relaxed", &[]);
    }
    if let Some(open) = &case.open_proposal {
        said("cli-open-proposal", &[("proposal", &proposal(open))]);
    }
    if let Some(agreed) = &case.agreed_arrival {
        said(
            "cli-agreed-arrival",
            &[
                ("proposal", &proposal(agreed)),
                ("cases", &agreed.case_ids.join(", ")),
            ],
        );
    }
    said("cli-timeline", &[]);
    for entry in &case.timeline {
        let delivery = match entry.delivery() {
            DeliveryState::Queued => say("cli-delivery-queued", &[]),
            DeliveryState::Delivered => say("cli-delivery-delivered", &[]),
            DeliveryState::Rejected => say("cli-delivery-rejected", &[]),
            DeliveryState::Received => say("cli-delivery-received", &[]),
            DeliveryState::Unspecified => "?".to_owned(),
        };
        out!(
            "  {}  {}  {}  [{delivery}]",
            time(entry.at.as_ref()),
            sender_name(entry.sender.as_ref()),
            words::timeline_line(entry, lang(), Times::Compact)
        );
        if !entry.flag.is_empty() {
            out!(
                "      {}",
                refusal_text(&entry.flag, entry.flag_detail.as_ref())
            );
        }
        if !entry.refused.is_empty() {
            let reason = refusal_text(&entry.refused, entry.refused_detail.as_ref());
            out!("      {}", say("cli-refused-here", &[("reason", &reason)]));
        }
        if !entry.peer_refused.is_empty() {
            let reason = refusal_text(&entry.peer_refused, entry.peer_refused_detail.as_ref());
            out!(
                "      {}",
                say("cli-refused-by-peer", &[("reason", &reason)])
            );
        }
    }
}

/// A refusal or remark kept in a timeline or a receipt ([`words::reason`]).
fn refusal_text(sentence: &str, detail: Option<&retorno_proto::v1::RefusalDetail>) -> String {
    words::reason(sentence, detail, lang())
}

/// Prints one line per case.
pub fn case_list(cases: &[CaseView]) {
    if cases.is_empty() {
        said("cli-no-cases", &[]);
    }
    for case in cases {
        said(
            "cli-case-row",
            &[
                ("case", &case.case_id),
                ("destination", &case.destination_country),
                ("origin", &case.origin_country),
                ("state", &words::state(case.state(), lang())),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use retorno_proto::v1::Role;

    use super::*;

    #[test]
    fn a_sender_under_a_delegation_names_both_countries() {
        let mut sender = Sender {
            country: "HN".into(),
            agency: "MINEX".into(),
            role: Role::Consulate as i32,
            delegated_consulate_country: String::new(),
            ..Default::default()
        };
        assert_eq!(sender_name(Some(&sender)), "HN MINEX (consulate)");
        sender.delegated_consulate_country = "GT".into();
        assert_eq!(
            sender_name(Some(&sender)),
            "GT MINEX (consulate of GT acting for HN, under HN's delegation)"
        );
    }
}
