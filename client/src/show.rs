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
    console::accounts::AccountError,
    i18n::{Lang, t},
    refusal::Refusal,
    tls::TlsError,
    words::{self, Times},
};
use retorno_proto::v1::{
    AdvanceNotice, ArrivalProposal, CaseView, Date, DeliveryState, InboxItem, Sender,
    StatusResponse, SubmitResponse, envelope_body::Payload,
};

/// The reader's language, from `LC_ALL`, `LC_MESSAGES` or `LANG` (English
/// when unset or `C`), read once.
pub fn lang() -> Lang {
    static LANG: OnceLock<Lang> = OnceLock::new();
    *LANG.get_or_init(Lang::from_env)
}

/// The sentence `id` of `client/locales/*/*.ftl` in `lang`.
pub fn say_in(lang: Lang, id: &str, args: &[(&str, &str)]) -> String {
    let args: Vec<(&str, fluent_bundle::FluentValue<'_>)> = args
        .iter()
        .map(|(name, value)| (*name, (*value).into()))
        .collect();
    t(lang, id, &args)
}

/// The sentence `id` in the reader's language.
pub fn say(id: &str, args: &[(&str, &str)]) -> String {
    say_in(lang(), id, args)
}

/// A failed command, as the program prints it after `retorno: `. A refusal
/// by the gateway is rendered from its reason code in the reader's
/// language; in English it keeps the gateway's own sentence, which names
/// every detail (and is what the README shows).
pub fn error(error: &anyhow::Error) -> String {
    // The failures whose sentence says everything (no source chain to add).
    if let Some(
        failed @ (ClientError::Tls(TlsError::Transport { .. } | TlsError::File { .. })
        | ClientError::Profile { .. }),
    ) = error.downcast_ref::<ClientError>()
    {
        return failed.render(lang());
    }
    if let Some(account) = error.downcast_ref::<AccountError>() {
        return account.render(lang());
    }
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

/// Prints lines.
fn print(lines: Vec<String>) {
    for line in lines {
        out!("{line}");
    }
}

/// Prints one inbox item, as a summary or as JSON.
pub fn inbox_item(item: &InboxItem, json: bool) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string(item)?);
    } else {
        print(inbox_lines(item, lang()));
    }
    Ok(())
}

/// An inbox item as the program shows it: who sent what for which case, then the step.
fn inbox_lines(item: &InboxItem, lang: Lang) -> Vec<String> {
    let say = |id: &str, args: &[(&str, &str)]| say_in(lang, id, args);
    let cursor = item.cursor.to_string();
    let Some(body) = &item.body else {
        return vec![say("cli-inbox-no-body", &[("cursor", &cursor)])];
    };
    let mut lines = vec![say(
        "cli-inbox-item",
        &[
            ("cursor", &cursor),
            ("at", &time(item.received_at.as_ref())),
            ("sender", &sender_name(body.sender.as_ref(), lang)),
            ("case", &body.case_id),
            ("message_id", &body.message_id),
        ],
    )];
    let line = match &body.payload {
        Some(Payload::AdvanceNotice(notice)) => notice_summary(notice, lang),
        Some(Payload::CaseSummary(_)) => say("cli-inbox-summary", &[]),
        Some(payload) => {
            let line = words::payload_line(&payload.clone().into(), lang, Times::Compact)
                .unwrap_or_else(|| words::kind(words::kind_of(Some(payload)), lang));
            match payload {
                Payload::HandoffAck(handoff) => say(
                    "cli-inbox-handoff",
                    &[
                        ("line", &line),
                        (
                            "institution",
                            &handoff
                                .received_by
                                .as_ref()
                                .map(|by| by.institution.clone())
                                .unwrap_or_default(),
                        ),
                        ("at", &time(handoff.handed_over_at.as_ref())),
                    ],
                ),
                _ => line,
            }
        }
        None => say("cli-inbox-unknown", &[]),
    };
    lines.push(format!("    {line}"));
    if item.redacted {
        lines.push(format!("    {}", say("cli-inbox-redacted", &[])));
    }
    lines
}

/// An advance notice in the inbox: who the child is, with whom the child
/// travels, the risk where this role sees it, where and from when.
fn notice_summary(notice: &AdvanceNotice, lang: Lang) -> String {
    let child = notice.child.clone().unwrap_or_default();
    let transport = notice.transport.clone().unwrap_or_default();
    let name = format!("{} {}", child.given_names, child.family_names);
    let companionship = words::companionship(notice.companionship(), lang);
    let point = transport.point_of_entry;
    let date = date(transport.earliest_date.as_ref());
    let mut args = vec![
        ("child", name.as_str()),
        ("companionship", companionship.as_str()),
        ("point", point.as_str()),
        ("date", date.as_str()),
    ];
    match words::label(notice.risk_level().as_str_name(), "RISK_LEVEL_", lang) {
        Some(risk) => {
            args.push(("risk", &risk));
            say_in(lang, "cli-inbox-notice-risk", &args)
        }
        None => say_in(lang, "cli-inbox-notice", &args),
    }
}

/// Who sent a message, e.g. `GT SBS (child-protection)`, or for a consulate
/// acting for another country under a delegation
/// `GT MINEX (consulate of GT acting for HN, under HN's delegation)`.
/// The official the agency named follows: `MX INM (destination-authority), Ana Pérez`.
fn sender_name(sender: Option<&Sender>, lang: Lang) -> String {
    let sender = sender.cloned().unwrap_or_default();
    let role = words::role(&words::code(sender.role().as_str_name(), "ROLE_"), lang);
    let agency = match sender.delegated_consulate_country.as_str() {
        "" => format!("{} {} ({role})", sender.country, sender.agency),
        acting => say_in(
            lang,
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
    print(status_lines(status, lang()));
}

fn status_lines(status: &StatusResponse, lang: Lang) -> Vec<String> {
    let say = |id: &str, args: &[(&str, &str)]| say_in(lang, id, args);
    let to = &status.recipient_country;
    let id = &status.message_id;
    match status.state() {
        DeliveryState::Delivered => {
            let receipt = status.receipt_body.clone().unwrap_or_default();
            let hash: String = receipt
                .body_sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut lines = vec![
                say(
                    "cli-delivered",
                    &[
                        ("message_id", id),
                        ("country", &receipt.receiving_country),
                        ("stored", &time(receipt.received_at.as_ref())),
                        ("accepted", &time(status.accepted_at.as_ref())),
                    ],
                ),
                say("cli-receipt", &[("sha256", &hash)]),
            ];
            if !receipt.case_refusal.is_empty() {
                let reason = words::reason(
                    &receipt.case_refusal,
                    receipt.case_refusal_detail.as_ref(),
                    lang,
                );
                lines.push(say(
                    "cli-delivered-refused",
                    &[("country", &receipt.receiving_country), ("reason", &reason)],
                ));
            }
            lines
        }
        DeliveryState::Queued => vec![say(
            "cli-queued",
            &[
                ("message_id", id),
                ("country", to),
                ("accepted", &time(status.accepted_at.as_ref())),
            ],
        )],
        DeliveryState::Rejected => {
            let rejection = status.rejection.clone().unwrap_or_default();
            vec![say(
                "cli-rejected",
                &[
                    ("country", to),
                    ("reason", &rejection.reason),
                    ("code", rejection.code().as_str_name()),
                ],
            )]
        }
        DeliveryState::Unspecified | DeliveryState::Received => {
            vec![say("cli-unknown-state", &[("message_id", id)])]
        }
    }
}

/// A proposal as a case's first lines show it: `P1 at GT-TECUN-UMAN 2026-12-04 11:00 (Guatemala time)`.
fn proposal(p: &ArrivalProposal, lang: Lang) -> String {
    let at = words::instant(p.arrival.as_ref()).map_or_else(
        || "?".into(),
        |at| words::local(at, &p.time_zone, lang, Times::Compact),
    );
    say_in(
        lang,
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
    print(case_lines(case, lang()));
}

/// A case's first lines, then one line per step of its timeline (with, under
/// it, the rules' remark and any refusal, in the reader's language).
fn case_lines(case: &CaseView, lang: Lang) -> Vec<String> {
    let say = |id: &str, args: &[(&str, &str)]| say_in(lang, id, args);
    let mut lines = vec![say(
        "cli-case",
        &[
            ("case", &case.case_id),
            ("destination", &case.destination_country),
            ("origin", &case.origin_country),
            ("state", &words::state(case.state(), lang)),
            (
                "companionship",
                &words::companionship(case.companionship(), lang),
            ),
        ],
    )];
    if !case.family_group_id.is_empty() {
        lines.push(say("cli-family-group", &[("group", &case.family_group_id)]));
    }
    if case.best_interest_relaxed {
        lines.push(say("cli-relaxed", &[]));
    }
    if let Some(open) = &case.open_proposal {
        lines.push(say(
            "cli-open-proposal",
            &[("proposal", &proposal(open, lang))],
        ));
    }
    if let Some(agreed) = &case.agreed_arrival {
        lines.push(say(
            "cli-agreed-arrival",
            &[
                ("proposal", &proposal(agreed, lang)),
                ("cases", &agreed.case_ids.join(", ")),
            ],
        ));
    }
    lines.push(say("cli-timeline", &[]));
    for entry in &case.timeline {
        let delivery = match entry.delivery() {
            DeliveryState::Queued => say("cli-delivery-queued", &[]),
            DeliveryState::Delivered => say("cli-delivery-delivered", &[]),
            DeliveryState::Rejected => say("cli-delivery-rejected", &[]),
            DeliveryState::Received => say("cli-delivery-received", &[]),
            DeliveryState::Unspecified => "?".to_owned(),
        };
        lines.push(format!(
            "  {}  {}  {}  [{delivery}]",
            time(entry.at.as_ref()),
            sender_name(entry.sender.as_ref(), lang),
            words::timeline_line(entry, lang, Times::Compact)
        ));
        if !entry.flag.is_empty() {
            lines.push(format!(
                "      {}",
                words::reason(&entry.flag, entry.flag_detail.as_ref(), lang)
            ));
        }
        if !entry.refused.is_empty() {
            let reason = words::reason(&entry.refused, entry.refused_detail.as_ref(), lang);
            lines.push(format!(
                "      {}",
                say("cli-refused-here", &[("reason", &reason)])
            ));
        }
        if !entry.peer_refused.is_empty() {
            let reason = words::reason(
                &entry.peer_refused,
                entry.peer_refused_detail.as_ref(),
                lang,
            );
            lines.push(format!(
                "      {}",
                say("cli-refused-by-peer", &[("reason", &reason)])
            ));
        }
    }
    lines
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
#[allow(clippy::unwrap_used)]
mod tests {
    use retorno_proto::{
        refusal::{Code, Reason},
        v1::{
            self, CaseState, Companionship, EnvelopeBody, RiskLevel, Role, TimelineEntry,
            TimelineFacts, timeline_facts,
        },
    };

    use super::*;

    fn at(text: &str) -> Option<pbjson_types::Timestamp> {
        let at: jiff::Timestamp = text.parse().unwrap();
        Some(pbjson_types::Timestamp {
            seconds: at.as_second(),
            nanos: 0,
        })
    }

    fn sender(country: &str, agency: &str, role: Role) -> Option<Sender> {
        Some(Sender {
            country: country.into(),
            agency: agency.into(),
            role: role as i32,
            ..Default::default()
        })
    }

    #[test]
    fn a_sender_under_a_delegation_names_both_countries_in_each_language() {
        let mut sender = sender("HN", "MINEX", Role::Consulate).unwrap();
        assert_eq!(sender_name(Some(&sender), Lang::En), "HN MINEX (consulate)");
        sender.delegated_consulate_country = "GT".into();
        assert_eq!(
            sender_name(Some(&sender), Lang::En),
            "GT MINEX (consulate of GT acting for HN, under HN's delegation)"
        );
        assert_eq!(
            sender_name(Some(&sender), Lang::Es),
            "GT MINEX (consulado de GT en nombre de HN, por delegación de HN)"
        );
    }

    /// A case read under a Spanish locale: every line in Spanish, the rules'
    /// remark and a refusal from their codes, a step the reader may not see
    /// by its kind, and an entry stored before facts with its own sentence.
    #[test]
    fn a_case_reads_in_spanish_with_its_remarks_and_refusals() {
        let arrival = v1::ArrivalProposal {
            proposal_id: "P1".into(),
            point_of_entry: "GT-TECUN-UMAN".into(),
            time_zone: "America/Guatemala".into(),
            arrival: at("2026-12-04T17:00:00Z"),
            case_ids: vec!["MX-2026-0001".into()],
            ..Default::default()
        };
        let late = "late: acknowledged 72 hours after the agreed arrival at 2026-12-04 11:00 America/Guatemala (over GT's handoff_late_after_hours of 48)";
        let too_early = "follow_up_report.days_since_return: too early now";
        let case = CaseView {
            case_id: "MX-2026-0001".into(),
            destination_country: "MX".into(),
            origin_country: "GT".into(),
            state: CaseState::HandedOver as i32,
            companionship: Companionship::Unaccompanied as i32,
            agreed_arrival: Some(arrival),
            timeline: vec![
                TimelineEntry {
                    kind: "advance_notice".into(),
                    sender: sender("MX", "INM", Role::DestinationAuthority),
                    at: at("2026-12-02T08:00:00Z"),
                    summary: "notice: unaccompanied, risk high".into(),
                    delivery: DeliveryState::Delivered as i32,
                    facts: Some(TimelineFacts {
                        payload: Some(timeline_facts::Payload::AdvanceNotice(v1::AdvanceNotice {
                            companionship: Companionship::Unaccompanied as i32,
                            risk_level: RiskLevel::High as i32,
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                },
                TimelineEntry {
                    kind: "handoff_ack".into(),
                    sender: sender("GT", "MINEX", Role::Consulate),
                    at: at("2026-12-07T17:00:00Z"),
                    summary: "handed over at GT-TECUN-UMAN, 1 child(ren)".into(),
                    delivery: DeliveryState::Received as i32,
                    flag: late.into(),
                    flag_detail: Some(
                        Reason::new(Code::HandoffLate)
                            .with("hours", 72)
                            .with("arrival", "2026-12-04T11:00:00-06:00")
                            .with("time_zone", "America/Guatemala")
                            .with("country", "GT")
                            .with("late_after", 48)
                            .detail(late),
                    ),
                    facts: Some(TimelineFacts {
                        payload: Some(timeline_facts::Payload::HandoffAck(v1::HandoffAck {
                            point_of_entry: "GT-TECUN-UMAN".into(),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                },
                TimelineEntry {
                    kind: "follow_up_report".into(),
                    sender: sender("GT", "SBS", Role::ChildProtection),
                    at: at("2026-12-08T17:00:00Z"),
                    summary: retorno_proto::timeline::unseen_line("follow_up_report"),
                    delivery: DeliveryState::Received as i32,
                    refused: too_early.into(),
                    refused_detail: Some(
                        Reason::new(Code::TooEarly)
                            .with("rule", "follow_up_tolerance_days")
                            .with("earliest", "2027-01-01T08:00:00-06:00")
                            .with("time_zone", "America/Guatemala")
                            .detail(too_early),
                    ),
                    ..Default::default()
                },
                TimelineEntry {
                    kind: "arrival_proposal".into(),
                    sender: sender("MX", "INM", Role::DestinationAuthority),
                    at: at("2026-12-02T09:00:00Z"),
                    summary: "proposal P0 for 1 child(ren) at GT-TECUN-UMAN 2026-12-03 10:00 America/Guatemala".into(),
                    delivery: DeliveryState::Delivered as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let lines = case_lines(&case, Lang::Es);
        let expected = [
            "caso MX-2026-0001  MX -> GT  Entregado  (No acompañado)",
            "arribo acordado: P1 en GT-TECUN-UMAN, 2026-12-04 11:00 (hora de Guatemala) para MX-2026-0001",
            "historial del caso:",
            "  2026-12-02 08:00:00 UTC  MX INM (autoridad del país de destino)  Aviso previo: No acompañado, riesgo Alto  [entregado]",
            "  2026-12-07 17:00:00 UTC  GT MINEX (consulado)  Entrega en GT-TECUN-UMAN, 1 NNA  [recibido]",
            "      Entrega tardía: se acusó 72 horas después del arribo acordado (el viernes 2026-12-04 11:00, hora de Guatemala), más de las 48 horas que admite GT (handoff_late_after_hours).",
            "  2026-12-08 17:00:00 UTC  GT SBS (institución de protección de la niñez)  Informe de seguimiento  [recibido]",
            "      RECHAZADO aquí: Demasiado pronto: lo más temprano permitido es el viernes 2027-01-01 08:00 (hora de Guatemala), según follow_up_tolerance_days.",
            "  2026-12-02 09:00:00 UTC  MX INM (autoridad del país de destino)  proposal P0 for 1 child(ren) at GT-TECUN-UMAN 2026-12-03 10:00 America/Guatemala  [entregado]",
        ];
        assert_eq!(lines, expected);
        // In English the remark and the refusal are the gateway's sentences.
        let english = case_lines(&case, Lang::En).join("\n");
        assert!(
            english.contains(late) && english.contains(too_early),
            "{english}"
        );
        assert!(
            english.contains("  Follow-up report  [received]"),
            "{english}"
        );
    }

    #[test]
    fn an_inbox_handoff_names_who_received_and_a_step_without_its_line_names_its_kind() {
        let item = |payload| InboxItem {
            cursor: 7,
            received_at: at("2026-12-04T17:05:00Z"),
            body: Some(EnvelopeBody {
                message_id: "01a22a34-4d95-750b-a3cf-17f05588d2c3".into(),
                case_id: "MX-2026-0001".into(),
                sender: sender("GT", "MINEX", Role::Consulate),
                payload: Some(payload),
                ..Default::default()
            }),
            ..Default::default()
        };
        let handoff = item(Payload::HandoffAck(v1::HandoffAck {
            point_of_entry: "GT-TECUN-UMAN".into(),
            case_ids: vec!["MX-2026-0001".into()],
            handed_over_at: at("2026-12-04T17:00:00Z"),
            received_by: Some(v1::Officer {
                institution: "SBS".into(),
                ..Default::default()
            }),
            ..Default::default()
        }));
        assert_eq!(
            inbox_lines(&handoff, Lang::Es),
            [
                "#7  recibido 2026-12-04 17:05:00 UTC  de GT MINEX (consulado)  caso MX-2026-0001  mensaje 01a22a34-4d95-750b-a3cf-17f05588d2c3",
                "    Entrega en GT-TECUN-UMAN, 1 NNA; recibido por SBS el 2026-12-04 17:00:00 UTC",
            ]
        );
        // A proposal without its arrival cannot make its line: it is named, not "unknown".
        let proposal = item(Payload::ArrivalProposal(v1::ArrivalProposal::default()));
        assert_eq!(
            inbox_lines(&proposal, Lang::Es)[1],
            "    Propuesta de arribo"
        );
    }

    #[test]
    fn a_rejected_delivery_reads_in_spanish() {
        let status = StatusResponse {
            message_id: "m1".into(),
            recipient_country: "GT".into(),
            state: DeliveryState::Rejected as i32,
            rejection: Some(v1::Rejection {
                reason: "bad seal".into(),
                code: v1::RejectionCode::Invalid as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            status_lines(&status, Lang::Es),
            ["rechazado por GT: bad seal (REJECTION_CODE_INVALID)"]
        );
        assert_eq!(
            say_in(Lang::Es, "cli-rejected-exit", &[("country", "GT")]),
            "GT rechazó el mensaje"
        );
    }
}
