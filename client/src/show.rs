//! How the `retorno` program prints what the gateway returns.

/// Prints a line to stdout; a closed pipe (`retorno inbox | head`) ends the
/// program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::show::write_line(format_args!($($arg)*))
    };
}
pub(crate) use out;

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

use retorno_proto::v1::{
    AdvanceNotice, ArrivalProposal, CaseView, Date, DeliveryState, InboxItem, Sender,
    StatusResponse, SubmitResponse, envelope_body::Payload,
};

/// Prints one inbox item, as a summary or as JSON.
pub fn inbox_item(item: &InboxItem, json: bool) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string(item)?);
        return Ok(());
    }
    let Some(body) = &item.body else {
        out!("#{} (no body)", item.cursor);
        return Ok(());
    };
    let sender = body.sender.clone().unwrap_or_default();
    out!(
        "#{}  received {}  from {}  case {}  message {}",
        item.cursor,
        time(item.received_at.as_ref()),
        sender_name(&sender),
        body.case_id,
        body.message_id
    );
    match &body.payload {
        Some(Payload::AdvanceNotice(notice)) => {
            out!("    advance notice: {}", notice_summary(notice))
        }
        Some(Payload::CaseSummary(_)) => {
            out!("    case summary (retorno inbox --json shows it in full)")
        }
        Some(Payload::ArrivalProposal(p)) => out!("    arrival proposal {}", proposal(p)),
        Some(Payload::ArrivalResponse(r)) => {
            out!("    answer to proposal {}: {}", r.proposal_id, response(r))
        }
        Some(Payload::HandoffAck(h)) => out!(
            "    handoff at {} to {} ({})",
            h.point_of_entry,
            h.received_by.clone().unwrap_or_default().institution,
            time(h.handed_over_at.as_ref())
        ),
        Some(Payload::ReceptionConfirmation(r)) => {
            out!(
                "    received: {}",
                words(r.placement().as_str_name(), "PLACEMENT_")
            )
        }
        Some(Payload::FollowUpReport(f)) => out!(
            "    follow-up at {} days: {}",
            f.days_since_return,
            words(f.status().as_str_name(), "FOLLOW_UP_STATUS_")
        ),
        Some(Payload::CaseWithdrawal(w)) => {
            out!(
                "    withdrawn{}",
                shown(w.reason().as_str_name(), "WITHDRAWAL_REASON_")
            )
        }
        None => out!("    (a kind this program does not know)"),
    }
    if item.redacted {
        out!("    (details your role does not need were left out)");
    }
    Ok(())
}

fn notice_summary(notice: &AdvanceNotice) -> String {
    let child = notice.child.clone().unwrap_or_default();
    let transport = notice.transport.clone().unwrap_or_default();
    let risk = match notice.risk_level() {
        retorno_proto::v1::RiskLevel::Unspecified => String::new(),
        level => format!(", risk {}", words(level.as_str_name(), "RISK_LEVEL_")),
    };
    format!(
        "{} {}, {}{risk}, entry {} from {}",
        child.given_names,
        child.family_names,
        words(notice.companionship().as_str_name(), "COMPANIONSHIP_"),
        transport.point_of_entry,
        date(transport.earliest_date.as_ref())
    )
}

/// Who sent a message, e.g. `GT SBS (child-protection)`, or for a consulate
/// acting for another country under a delegation
/// `GT MINEX (consulate of GT acting for HN, under HN's delegation)`.
/// The official the agency named follows: `MX INM (destination-authority), Ana Pérez`.
fn sender_name(sender: &Sender) -> String {
    let role = words(sender.role().as_str_name(), "ROLE_").replace(' ', "-");
    let agency = match sender.delegated_consulate_country.as_str() {
        "" => format!("{} {} ({role})", sender.country, sender.agency),
        acting => format!(
            "{acting} {} ({role} of {acting} acting for {}, under {}'s delegation)",
            sender.agency, sender.country, sender.country
        ),
    };
    match sender.official.as_str() {
        "" => agency,
        official => format!("{agency}, {official}"),
    }
}

/// An enum value's name as words: `COMPANIONSHIP_WITH_FAMILY` -> `with family`.
fn words(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

/// `: {words}` for a category, nothing for one the gateway withheld from
/// this role (every category is required, so unspecified means withheld).
fn shown(name: &str, prefix: &str) -> String {
    match words(name, prefix).as_str() {
        "unspecified" => String::new(),
        words => format!(": {words}"),
    }
}

fn date(date: Option<&Date>) -> String {
    date.map_or_else(
        || "?".into(),
        |d| format!("{}-{:02}-{:02}", d.year, d.month, d.day),
    )
}

fn time(timestamp: Option<&pbjson_types::Timestamp>) -> String {
    timestamp
        .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map_or_else(
            || "?".into(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// Prints where a sent message stands.
pub fn status(status: &StatusResponse) {
    let to = &status.recipient_country;
    match status.state() {
        DeliveryState::Delivered => {
            let receipt = status.receipt_body.clone().unwrap_or_default();
            out!(
                "delivered: message {} stored by {} at {} (accepted here {})",
                status.message_id,
                receipt.receiving_country,
                time(receipt.received_at.as_ref()),
                time(status.accepted_at.as_ref())
            );
            let hash: String = receipt
                .body_sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out!("receipt: body sha256 {hash}");
            if !receipt.case_refusal.is_empty() {
                out!(
                    "but {}'s case rules refused it (it is kept there as refused): {}",
                    receipt.receiving_country,
                    receipt.case_refusal
                );
            }
        }
        DeliveryState::Queued => out!(
            "queued: message {} for {to}, accepted {}; waiting for {to}'s receipt",
            status.message_id,
            time(status.accepted_at.as_ref())
        ),
        DeliveryState::Rejected => {
            let rejection = status.rejection.clone().unwrap_or_default();
            out!(
                "rejected by {to}: {} ({})",
                rejection.reason,
                rejection.code().as_str_name()
            );
        }
        DeliveryState::Unspecified | DeliveryState::Received => {
            out!("unknown state for message {}", status.message_id)
        }
    }
}

fn local(at: Option<&pbjson_types::Timestamp>, time_zone: &str) -> String {
    let Some(at) = at.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()) else {
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

fn proposal(p: &ArrivalProposal) -> String {
    format!(
        "{} at {} {}",
        p.proposal_id,
        p.point_of_entry,
        local(p.arrival.as_ref(), &p.time_zone)
    )
}

fn response(r: &retorno_proto::v1::ArrivalResponse) -> String {
    use retorno_proto::v1::arrival_response::Decision;
    match &r.decision {
        Some(Decision::Accept(_)) => "accepted".into(),
        Some(Decision::Counter(c)) => {
            format!("counter with {}", local(c.arrival.as_ref(), &c.time_zone))
        }
        Some(Decision::Decline(d)) => format!(
            "declined{}",
            shown(d.reason().as_str_name(), "DECLINE_REASON_")
        ),
        None => "?".into(),
    }
}

fn state(case: &CaseView) -> String {
    case.state()
        .as_str_name()
        .trim_start_matches("CASE_STATE_")
        .to_owned()
}

/// Prints what a submit did.
pub fn accepted(answer: &SubmitResponse) {
    let again = if answer.duplicate {
        " (it had been accepted before)"
    } else {
        ""
    };
    let state = retorno_proto::v1::CaseState::try_from(answer.case_state).unwrap_or_default();
    out!(
        "accepted{again}: message {}, case {} is now {}",
        answer.message_id,
        answer.case_id,
        state.as_str_name().trim_start_matches("CASE_STATE_")
    );
}

/// Prints a case with its timeline.
pub fn case(case: &CaseView) {
    out!(
        "case {}  {} -> {}  {}  ({})",
        case.case_id,
        case.destination_country,
        case.origin_country,
        state(case),
        words(case.companionship().as_str_name(), "COMPANIONSHIP_")
    );
    if !case.family_group_id.is_empty() {
        out!("family group: {}", case.family_group_id);
    }
    if case.best_interest_relaxed {
        out!(
            "best-interest gate RELAXED under a bilateral agreement (determination by the migration authority)"
        );
    }
    if let Some(open) = &case.open_proposal {
        out!("open proposal: {}", proposal(open));
    }
    if let Some(agreed) = &case.agreed_arrival {
        out!(
            "agreed arrival: {} for {}",
            proposal(agreed),
            agreed.case_ids.join(", ")
        );
    }
    out!("timeline:");
    for entry in &case.timeline {
        let sender = entry.sender.clone().unwrap_or_default();
        let delivery = match entry.delivery() {
            DeliveryState::Queued => "queued",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Rejected => "REJECTED by the peer",
            DeliveryState::Received => "received",
            DeliveryState::Unspecified => "?",
        };
        out!(
            "  {}  {}  {}  [{delivery}]",
            time(entry.at.as_ref()),
            sender_name(&sender),
            entry.summary
        );
        if !entry.flag.is_empty() {
            out!("      {}", entry.flag);
        }
        if !entry.refused.is_empty() {
            out!("      REFUSED here: {}", entry.refused);
        }
        if !entry.peer_refused.is_empty() {
            out!(
                "      REFUSED by the other country's gateway: {}",
                entry.peer_refused
            );
        }
    }
}

/// Prints one line per case.
pub fn case_list(cases: &[CaseView]) {
    if cases.is_empty() {
        out!("no cases");
    }
    for case in cases {
        out!(
            "{}  {} -> {}  {}",
            case.case_id,
            case.destination_country,
            case.origin_country,
            state(case)
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
        assert_eq!(sender_name(&sender), "HN MINEX (consulate)");
        sender.delegated_consulate_country = "GT".into();
        assert_eq!(
            sender_name(&sender),
            "GT MINEX (consulate of GT acting for HN, under HN's delegation)"
        );
    }
}
