//! `retorno-gateway ops`: the operator's commands against a running gateway,
//! over the Operator API with an operator's profile. Text for people,
//! `--json` (the proto3 JSON mapping) for scripts.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use retorno_client::{Operations, Profile};
use retorno_proto::v1::{
    GatewayStatus, ListMessagesRequest, MessageHistory, MessageState, MessageSummary,
    RequeueResponse,
};
use serde::Serialize;

/// Options shared by every `ops` command.
#[derive(Args)]
pub struct OpsOptions {
    /// The operator's connection profile (an agency profile whose
    /// certificate has the role `operator`).
    #[arg(long, env = "RETORNO_PROFILE")]
    profile: PathBuf,
    /// Print the answer as JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: OpsCommand,
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Per peer (connected, queued, oldest age, last receipt, last error),
    /// certificates with days left, store size, drain state, findings.
    Status,
    /// The message log, newest first, a page at a time.
    Messages {
        /// Only messages to this country.
        #[arg(long)]
        peer: Option<String>,
        /// Only messages in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only messages accepted at or after this time (RFC 3339, e.g. 2026-12-02T08:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only messages of this case.
        #[arg(long = "case")]
        case_id: Option<String>,
        /// Messages per page.
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        /// The page after the one that printed this token.
        #[arg(long)]
        page: Option<String>,
    },
    /// One message's whole history: accepted, each attempt, answers, requeues.
    Show {
        /// The message id.
        message_id: String,
    },
    /// Send again messages the peer rejected without storing them (once the
    /// cause, e.g. a seal or policy problem, is fixed).
    Requeue {
        /// The message ids.
        #[arg(required = true)]
        message_ids: Vec<String>,
    },
    /// Drain: health says NOT_SERVING so that a load balancer takes this
    /// gateway out; queued messages still go out.
    Drain,
    /// Resume after a drain.
    Resume,
}

/// A message state on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum StateArg {
    Queued,
    Delivered,
    Rejected,
    Refused,
}

impl StateArg {
    fn to_proto(self) -> MessageState {
        match self {
            StateArg::Queued => MessageState::Queued,
            StateArg::Delivered => MessageState::Delivered,
            StateArg::Rejected => MessageState::Rejected,
            StateArg::Refused => MessageState::Refused,
        }
    }
}

/// Runs one `ops` command.
pub async fn run(options: OpsOptions) -> anyhow::Result<()> {
    let profile = Profile::load(&options.profile)?;
    let mut ops = Operations::connect(&profile).await?;
    let json = options.json;
    match options.command {
        OpsCommand::Status => print(json, &ops.status().await?, status_text),
        OpsCommand::Messages {
            peer,
            state,
            since,
            case_id,
            page_size,
            page,
        } => {
            let request = ListMessagesRequest {
                peer: peer.unwrap_or_default(),
                state: state.map_or(MessageState::Unspecified, StateArg::to_proto) as i32,
                since: since.as_deref().map(timestamp).transpose()?,
                case_id: case_id.unwrap_or_default(),
                page_size,
                page_token: page.unwrap_or_default(),
            };
            let answer = ops.messages(request).await?;
            print(json, &answer, |answer| {
                let mut text: String = answer.messages.iter().map(summary_line).collect();
                if !answer.next_page_token.is_empty() {
                    text.push_str(&format!("more: --page {}\n", answer.next_page_token));
                }
                text
            })
        }
        OpsCommand::Show { message_id } => print(json, &ops.show(&message_id).await?, history_text),
        OpsCommand::Requeue { message_ids } => {
            let answer = ops.requeue(message_ids).await?;
            print(json, &answer, requeue_text)?;
            let refused = answer.outcomes.iter().filter(|o| !o.requeued).count();
            anyhow::ensure!(refused == 0, "{refused} message(s) not requeued");
            Ok(())
        }
        OpsCommand::Drain => {
            let on = ops.set_draining(true).await?;
            print(json, &serde_json::json!({ "draining": on }), |_| {
                "draining: health reports NOT_SERVING; queued messages still go out\n".into()
            })
        }
        OpsCommand::Resume => {
            let on = ops.set_draining(false).await?;
            print(json, &serde_json::json!({ "draining": on }), |_| {
                "resumed: health follows the gateway's checks again\n".into()
            })
        }
    }
}

fn print<T: Serialize>(json: bool, value: &T, text: impl Fn(&T) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text(value));
    }
    Ok(())
}

fn timestamp(text: &str) -> anyhow::Result<pbjson_types::Timestamp> {
    let at: jiff::Timestamp = text
        .parse()
        .map_err(|e| anyhow::anyhow!("--since: {text:?} is not an RFC 3339 time ({e})"))?;
    Ok(retorno_gateway::clock::wire(at))
}

fn when(at: Option<&pbjson_types::Timestamp>) -> String {
    at.and_then(retorno_gateway::clock::from_wire).map_or_else(
        || "-".into(),
        |at| at.round(jiff::Unit::Second).map_or(at, |r| r).to_string(),
    )
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn status_text(status: &GatewayStatus) -> String {
    let mut text = format!(
        "{} gateway at {}: {}, store {} bytes\n",
        status.country,
        when(status.now.as_ref()),
        if status.draining {
            "DRAINING"
        } else {
            "serving"
        },
        status.store_bytes
    );
    text.push_str("peers:\n");
    for peer in &status.peers {
        let link = if peer.connected { "connected" } else { "DOWN" };
        let oldest = match peer.queued {
            0 => String::new(),
            _ => format!(", oldest {}", age(peer.oldest_queued_seconds)),
        };
        text.push_str(&format!(
            "  {}  {link}  queued {}{oldest}  last receipt {}",
            peer.country,
            peer.queued,
            when(peer.last_receipt_at.as_ref())
        ));
        if !peer.last_error.is_empty() {
            text.push_str(&format!(
                "  last error {}: {}",
                when(peer.last_error_at.as_ref()),
                peer.last_error
            ));
        }
        text.push('\n');
    }
    text.push_str("certificates:\n");
    for cert in &status.certificates {
        let note = if cert.days_left < 0 {
            "EXPIRED".to_owned()
        } else {
            format!("{} days left", cert.days_left)
        };
        text.push_str(&format!("  {:<19} {}  {note}\n", cert.role, cert.subject));
    }
    if status.findings.is_empty() {
        text.push_str("went back in time: nothing found\n");
    }
    for finding in &status.findings {
        let seen = if finding.acknowledged {
            " (acknowledged)"
        } else {
            ""
        };
        text.push_str(&format!(
            "FINDING {} with {}: {} message(s): {}{seen}\n",
            finding.kind, finding.peer, finding.count, finding.description
        ));
    }
    text
}

fn state_name(state: i32) -> &'static str {
    match MessageState::try_from(state) {
        Ok(MessageState::Queued) => "queued",
        Ok(MessageState::Delivered) => "delivered",
        Ok(MessageState::Rejected) => "REJECTED",
        Ok(MessageState::Refused) => "refused",
        _ => "?",
    }
}

fn summary_line(message: &MessageSummary) -> String {
    let error = match message.error.as_str() {
        "" => String::new(),
        error => format!("  {error}"),
    };
    format!(
        "{}  {}  to {}  {:<22} {:<9} {} bytes  case {}{error}\n",
        message.message_id,
        when(message.accepted_at.as_ref()),
        message.peer,
        message.kind,
        state_name(message.state),
        message.size_bytes,
        message.case_ids.join(" "),
    )
}

fn history_text(history: &MessageHistory) -> String {
    let mut text = history
        .message
        .as_ref()
        .map(summary_line)
        .unwrap_or_default();
    for event in &history.events {
        let detail = match event.detail.as_str() {
            "" => String::new(),
            detail => format!(": {detail}"),
        };
        text.push_str(&format!(
            "  {}  {}{detail}\n",
            when(event.at.as_ref()),
            event.event
        ));
    }
    if history.requeueable {
        text.push_str("requeueable: `ops requeue` sends it again once the cause is fixed\n");
    } else {
        text.push_str(&format!("not requeueable: {}\n", history.not_requeueable));
    }
    text
}

fn requeue_text(answer: &RequeueResponse) -> String {
    answer
        .outcomes
        .iter()
        .map(|outcome| match outcome.requeued {
            true => format!(
                "requeued {} (new sequence {})\n",
                outcome.message_id, outcome.sequence
            ),
            false => format!("NOT requeued {}: {}\n", outcome.message_id, outcome.reason),
        })
        .collect()
}
