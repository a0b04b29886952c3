//! How the `retorno` program prints what the gateway returns.

use retorno_proto::v1::{
    AdvanceNotice, Date, DeliveryState, InboxItem, StatusResponse, envelope_body::Payload,
};

/// Prints one inbox item, as a summary or as JSON.
pub fn inbox_item(item: &InboxItem, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(item)?);
        return Ok(());
    }
    let Some(body) = &item.body else {
        println!("#{} (no body)", item.cursor);
        return Ok(());
    };
    let sender = body.sender.clone().unwrap_or_default();
    println!(
        "#{}  received {}  from {} {} ({})  case {}  message {}",
        item.cursor,
        time(item.received_at.as_ref()),
        sender.country,
        sender.agency,
        words(sender.role().as_str_name(), "ROLE_").replace(' ', "-"),
        body.case_id,
        body.message_id
    );
    match &body.payload {
        Some(Payload::AdvanceNotice(notice)) => {
            println!("    advance notice: {}", notice_summary(notice))
        }
        None => println!("    (a kind this program does not know)"),
    }
    Ok(())
}

fn notice_summary(notice: &AdvanceNotice) -> String {
    let child = notice.child.clone().unwrap_or_default();
    let transport = notice.transport.clone().unwrap_or_default();
    format!(
        "{} {}, {}, risk {}, entry {} from {}",
        child.given_names,
        child.family_names,
        words(notice.companionship().as_str_name(), "COMPANIONSHIP_"),
        words(notice.risk_level().as_str_name(), "RISK_LEVEL_"),
        transport.point_of_entry,
        date(transport.earliest_date.as_ref())
    )
}

/// An enum value's name as words: `COMPANIONSHIP_WITH_FAMILY` -> `with family`.
fn words(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

fn date(date: Option<&Date>) -> String {
    date.map_or_else(
        || "?".into(),
        |d| format!("{}-{:02}-{:02}", d.year, d.month, d.day),
    )
}

fn time(timestamp: Option<&pbjson_types::Timestamp>) -> String {
    timestamp.map_or_else(
        || "?".into(),
        |t| {
            serde_json::to_value(t)
                .map_or_else(|_| "?".into(), |v| v.as_str().unwrap_or("?").to_owned())
        },
    )
}

/// Prints where a sent message stands.
pub fn status(status: &StatusResponse) {
    let to = &status.recipient_country;
    match status.state() {
        DeliveryState::Delivered => {
            let receipt = status.receipt_body.clone().unwrap_or_default();
            println!(
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
            println!("receipt: body sha256 {hash}");
        }
        DeliveryState::Queued => println!(
            "queued: message {} for {to}, accepted {}; waiting for {to}'s receipt",
            status.message_id,
            time(status.accepted_at.as_ref())
        ),
        DeliveryState::Rejected => {
            let rejection = status.rejection.clone().unwrap_or_default();
            println!(
                "rejected by {to}: {} ({})",
                rejection.reason,
                rejection.code().as_str_name()
            );
        }
        DeliveryState::Unspecified => println!("unknown state for message {}", status.message_id),
    }
}
