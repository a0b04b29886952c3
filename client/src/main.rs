//! `retorno`: the command line for agencies. Parses arguments and calls the library.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use retorno_client::{Client, Profile, compose, notice::read_notice};
use retorno_proto::v1::{CaseState, DeliveryState, SubmitRequest, submit_request::Payload};

mod help;
mod show;
mod web_console;

/// Talk to your own country's retorno gateway.
#[derive(Parser)]
#[command(
    name = "retorno",
    version,
    about = "The command line for agencies: send case messages to another country through your own country's retorno gateway, read your inbox, follow deliveries and cases.",
    long_about = "The command line for agencies: send case messages (an advance notice, a case summary, an arrival proposal and its answer, the handoff, reception and follow-up) to another country through your own country's retorno gateway, read your inbox, follow deliveries and cases.\n\nEvery command needs a connection: --profile FILE (or RETORNO_PROFILE=FILE), or --gateway, --ca, --cert and --key. `retorno-gateway dev` writes a profile per agency under .retorno-dev/CC/profiles."
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// The official acting for your agency, e.g. "Ana Pérez": sent with each
    /// message and shown in both countries' timelines and audit logs, as your
    /// agency names them (no gateway can check it).
    #[arg(long, env = "RETORNO_OFFICIAL", global = true, default_value = "")]
    official: String,
    #[command(subcommand)]
    command: Command,
}

/// Where the gateway is and which certificate to use: a profile file, or flags.
/// Shown under their own heading in every command's help.
#[derive(Args)]
#[command(next_help_heading = help::CONNECTION_HEADING)]
struct Connection {
    /// A connection profile (TOML: gateway, ca, cert, key, tls_name).
    #[arg(long, env = "RETORNO_PROFILE", global = true)]
    profile: Option<PathBuf>,
    /// The gateway's Agency API, host:port (instead of a profile).
    #[arg(long, global = true, requires_all = ["ca", "cert", "key"])]
    gateway: Option<String>,
    /// The regional root CA that certifies gateways (PEM).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Your agency's certificate (PEM).
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// Your agency's private key (PEM).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// The DNS name in the gateway's certificate (default: the host of --gateway).
    #[arg(long, global = true)]
    tls_name: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Send a message to another country's gateway.
    Send {
        #[command(subcommand)]
        kind: SendKind,
    },
    /// Show the messages in your gateway's inbox after your last acknowledgement.
    Inbox {
        /// Keep waiting for new messages.
        #[arg(long)]
        follow: bool,
        /// Start after this cursor instead of after your last acknowledgement.
        #[arg(long)]
        after: Option<u64>,
        /// Acknowledge each message once shown, so the next `inbox` starts after it.
        #[arg(long)]
        ack: bool,
        /// Print each message as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge every inbox message up to a cursor.
    Ack {
        /// The cursor shown by `inbox`.
        cursor: u64,
    },
    /// Where a message you sent stands: queued, delivered (with the receipt) or rejected.
    Status {
        /// The message id printed by `send`.
        message_id: String,
    },
    /// Propose an arrival (destination authority). Times are local to the point of entry.
    Propose {
        #[command(flatten)]
        case: CaseArg,
        /// An id for this proposal, e.g. P1.
        #[arg(long)]
        proposal: String,
        /// The origin's point of entry, e.g. GT-TECUN-UMAN.
        #[arg(long)]
        point: String,
        /// Local arrival date and time at the point, e.g. "2026-12-04 10:00".
        #[arg(long)]
        at: String,
        /// The point's IANA time zone, e.g. America/Guatemala; by default the
        /// one the origin publishes for the point (given, it must agree).
        #[arg(long)]
        tz: Option<String>,
        /// air, land or sea.
        #[arg(long, default_value = "land")]
        mode: String,
        /// Flight number, bus company and plate.
        #[arg(long, default_value = "")]
        reference: String,
        /// An escort officer as NAME/INSTITUTION; repeat for each.
        #[arg(long)]
        escort: Vec<String>,
        /// Every case of a family group travelling together, comma-separated.
        #[arg(long, value_delimiter = ',')]
        cases: Vec<String>,
    },
    /// Answer a proposal (origin child protection): accept, counter or decline.
    Respond {
        #[command(flatten)]
        case: CaseArg,
        /// The proposal answered.
        #[arg(long)]
        proposal: String,
        #[command(subcommand)]
        decision: Decision,
    },
    /// Acknowledge the custody handoff (consulate or reception agency).
    Handoff {
        #[command(flatten)]
        case: CaseArg,
        /// The point of entry where the children were received.
        #[arg(long)]
        point: String,
        /// Who received them, as NAME/INSTITUTION.
        #[arg(long)]
        received_by: String,
        /// Every case of a family group handed over together, comma-separated.
        #[arg(long, value_delimiter = ',')]
        cases: Vec<String>,
        /// Condition notes.
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Confirm reception and placement (origin child protection).
    Confirm {
        #[command(flatten)]
        case: CaseArg,
        /// with-family, reception-centre or foster-care.
        #[arg(long)]
        placement: String,
        /// Where, in words.
        #[arg(long, default_value = "")]
        detail: String,
    },
    /// Report on the child after return (origin child protection).
    FollowUp {
        #[command(flatten)]
        case: CaseArg,
        /// Days since the return.
        #[arg(long)]
        days: u32,
        /// stable, at-risk, lost-contact or remigrated.
        #[arg(long)]
        status: String,
        /// Notes.
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Withdraw a case: the child stays (destination authority).
    Withdraw {
        #[command(flatten)]
        case: CaseArg,
        /// protection-granted, local-integration, best-interest-decision or other.
        #[arg(long)]
        reason: String,
        /// Required with --reason other.
        #[arg(long, default_value = "")]
        text: String,
    },
    /// Read cases.
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// Run the web console for your agency's staff, or manage its accounts (`console user ...`).
    Console(ConsoleArgs),
}

/// `retorno console`: serve the web console with the agency's profile.
#[derive(Args)]
struct ConsoleArgs {
    /// Where to listen. Any address but loopback needs --tls-cert and --tls-key.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The console's HTTPS certificate (PEM), to serve over TLS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The staff accounts file (kept 0600; `retorno console user add` makes it).
    #[arg(long, global = true, default_value = "console-users.toml")]
    users: PathBuf,
    /// Minutes without a request after which a session ends.
    #[arg(long, default_value_t = 30)]
    idle_minutes: u64,
    /// The origin staff type in their browser when it is not --listen,
    /// e.g. https://consola.sbs.gob.gt:8443 (forms must come from it).
    // The text is `--help`'s, where a bare URL reads best.
    #[allow(rustdoc::bare_urls)]
    #[arg(long)]
    public_origin: Option<String>,
    #[command(subcommand)]
    user: Option<ConsoleCommand>,
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Manage the console's staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account; the password is read from standard input (not echoed on a terminal).
    Add {
        /// What the official types to log in, e.g. aperez.
        login: String,
        /// The name the other country reads in the timeline, e.g. "Ana Pérez".
        #[arg(long)]
        name: String,
    },
    /// Disable an account: it can no longer log in.
    Disable {
        /// The account's login.
        login: String,
    },
    /// List the accounts (never their hashes).
    List,
}

/// The case a message belongs to.
#[derive(Args)]
struct CaseArg {
    /// The case id, e.g. MX-2026-0001.
    #[arg(long)]
    case: String,
    /// The country to send to; by default the case's other country.
    #[arg(long)]
    to: Option<String>,
}

#[derive(Subcommand)]
enum Decision {
    /// Accept the proposal as it is.
    Accept,
    /// Propose another local time instead.
    Counter {
        /// Local date and time, e.g. "2026-12-04 11:00".
        #[arg(long)]
        at: String,
        /// The point's IANA time zone; by default the one your country
        /// publishes for the proposal's point (given, it must agree).
        #[arg(long)]
        tz: Option<String>,
        /// A note for the destination.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Decline, with a reason.
    Decline {
        /// outside-reception-hours, notice-too-short, no-capacity, family-not-located, risk-on-return or other.
        #[arg(long)]
        reason: String,
        /// Required with --reason other.
        #[arg(long, default_value = "")]
        text: String,
    },
}

#[derive(Subcommand)]
enum CaseCommand {
    /// A case's state, agreed arrival and timeline with delivery status.
    Show {
        /// The case id.
        case: String,
    },
    /// The cases your gateway knows.
    List {
        /// Only cases in this state, e.g. arrival-agreed.
        #[arg(long)]
        state: Option<String>,
    },
}

#[derive(Subcommand)]
enum SendKind {
    /// A case summary, from a JSON file with the fields of retorno.v1.CaseSummary.
    Summary {
        /// The summary as JSON.
        file: PathBuf,
        #[command(flatten)]
        case: CaseArg,
    },
    /// An advance notice of repatriation, from a JSON file.
    Notice {
        /// The notice as JSON, with the field names of retorno.v1.AdvanceNotice.
        file: PathBuf,
        /// The country to send it to (ISO 3166-1 alpha-2), e.g. GT.
        #[arg(long)]
        to: String,
        /// The case id, starting with your country's code (MX-2026-0001); made for you if omitted.
        #[arg(long)]
        case: Option<String>,
        /// A UUIDv7 to reuse when retrying a send whose answer was lost.
        #[arg(long)]
        message_id: Option<String>,
    },
}

fn main() -> ExitCode {
    let command = help::localized(Cli::command(), show::lang());
    let matches = match command.try_get_matches() {
        Ok(matches) => matches,
        Err(error) => match help::error_in(&error, show::lang()) {
            Some(text) => {
                eprint!("{text}");
                return ExitCode::from(2);
            }
            None => error.exit(),
        },
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("retorno: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("retorno: {}", show::error(&error));
            ExitCode::FAILURE
        }
    }
}

impl Connection {
    fn profile(&self) -> anyhow::Result<Profile> {
        if let Some(file) = &self.profile {
            return Ok(Profile::load(file)?);
        }
        match (&self.gateway, &self.ca, &self.cert, &self.key) {
            (Some(gateway), Some(ca), Some(cert), Some(key)) => Ok(Profile {
                gateway: gateway.clone(),
                tls_name: self.tls_name.clone(),
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => anyhow::bail!("{}", show::say("cli-no-connection", &[])),
        }
    }

    /// The connection options as typed on a command line, so that a printed
    /// hint (`retorno ... status ID`) runs as shown. A profile taken from
    /// RETORNO_PROFILE is written out too: the next shell may not have it.
    fn as_args(&self) -> String {
        if let Some(file) = &self.profile {
            return format!("--profile {}", file.display());
        }
        let mut args = Vec::new();
        let flags = [
            ("--gateway", self.gateway.clone()),
            ("--ca", self.ca.as_ref().map(|p| p.display().to_string())),
            (
                "--cert",
                self.cert.as_ref().map(|p| p.display().to_string()),
            ),
            ("--key", self.key.as_ref().map(|p| p.display().to_string())),
            ("--tls-name", self.tls_name.clone()),
        ];
        for (flag, value) in flags {
            if let Some(value) = value {
                args.push(format!("{flag} {value}"));
            }
        }
        args.join(" ")
    }
}

/// Submits one case message and prints where the case stands.
async fn submit(
    client: &mut Client,
    case: &CaseArg,
    official: &str,
    payload: Payload,
) -> anyhow::Result<()> {
    let request = SubmitRequest {
        official: official.to_owned(),
        ..compose::request(&case.case, case.to.as_deref(), payload)
    };
    let answer = client.submit(request).await?;
    show::accepted(&answer);
    Ok(())
}

fn case_state(text: &str) -> anyhow::Result<CaseState> {
    let name = format!("CASE_STATE_{}", text.to_uppercase().replace('-', "_"));
    CaseState::from_str_name(&name).ok_or_else(|| {
        anyhow::anyhow!(
            "{}",
            show::say(
                "cli-bad-state",
                &[
                    ("given", text),
                    ("states", "notified, summary-shared, arrival-proposed, awaiting-proposal, arrival-agreed, handed-over, received, follow-up, withdrawn"),
                ],
            )
        )
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Console(args) = &cli.command {
        return web_console::run(&cli.connection, args).await;
    }
    // Read the input before connecting, so that a bad file is reported first.
    retorno_proto::rules::official("--official", &cli.official)?;
    let official = cli.official.as_str();
    if let Command::Send {
        kind: SendKind::Notice { file, .. },
    } = &cli.command
    {
        read_notice(file)?;
    }
    let profile = cli.connection.profile()?;
    let mut client = Client::connect(&profile).await?;
    match cli.command {
        Command::Send {
            kind:
                SendKind::Notice {
                    file,
                    to,
                    case,
                    message_id,
                },
        } => {
            let notice = read_notice(&file)?;
            let request = SubmitRequest {
                message_id: message_id.unwrap_or_default(),
                case_id: case.unwrap_or_default(),
                recipient_country: to,
                payload: Some(Payload::AdvanceNotice(notice)),
                official: official.to_owned(),
            };
            let answer = client.submit(request).await?;
            show::accepted(&answer);
            show::said(
                "cli-notice-stored",
                &[
                    ("connection", &cli.connection.as_args()),
                    ("message_id", &answer.message_id),
                ],
            );
        }
        Command::Send {
            kind: SendKind::Summary { file, case },
        } => {
            let summary = retorno_client::notice::read_summary(&file)?;
            submit(&mut client, &case, official, Payload::CaseSummary(summary)).await?;
        }
        Command::Propose {
            case,
            proposal,
            point,
            at,
            tz,
            mode,
            reference,
            escort,
            cases,
        } => {
            let published = client.origin_point(&case.case, Some(&point)).await?;
            let tz = compose::point_time_zone(tz.as_deref(), &published)?;
            let proposal = compose::Proposal {
                id: &proposal,
                cases,
                point: &point,
                at: &at,
                time_zone: &tz,
                mode: &mode,
                reference: &reference,
                escorts: &escort,
            };
            submit(&mut client, &case, official, compose::proposal(&proposal)?).await?;
        }
        Command::Respond {
            case,
            proposal,
            decision,
        } => {
            let payload = match decision {
                Decision::Accept => compose::accept(&proposal),
                Decision::Counter { at, tz, note } => {
                    let published = client.origin_point(&case.case, None).await?;
                    let tz = compose::point_time_zone(tz.as_deref(), &published)?;
                    compose::counter(&proposal, &at, &tz, &note)?
                }
                Decision::Decline { reason, text } => compose::decline(&proposal, &reason, &text)?,
            };
            submit(&mut client, &case, official, payload).await?;
        }
        Command::Handoff {
            case,
            point,
            received_by,
            cases,
            notes,
        } => {
            submit(
                &mut client,
                &case,
                official,
                compose::handoff(&point, &received_by, cases, &notes)?,
            )
            .await?;
        }
        Command::Confirm {
            case,
            placement,
            detail,
        } => {
            submit(
                &mut client,
                &case,
                official,
                compose::reception(&placement, &detail)?,
            )
            .await?;
        }
        Command::FollowUp {
            case,
            days,
            status,
            notes,
        } => {
            submit(
                &mut client,
                &case,
                official,
                compose::follow_up(days, &status, &notes)?,
            )
            .await?;
        }
        Command::Withdraw { case, reason, text } => {
            submit(
                &mut client,
                &case,
                official,
                compose::withdrawal(&reason, &text)?,
            )
            .await?;
        }
        Command::Case {
            command: CaseCommand::Show { case },
        } => {
            show::case(&client.case(&case).await?);
        }
        Command::Case {
            command: CaseCommand::List { state },
        } => {
            let state = state.as_deref().map(case_state).transpose()?;
            show::case_list(&client.cases(state).await?);
        }
        // Handled before connecting.
        Command::Console(_) => {}
        Command::Inbox {
            follow,
            after,
            ack,
            json,
        } => {
            let mut items = client.subscribe(after, follow).await?;
            let mut shown = 0usize;
            while let Some(item) = items.message().await? {
                show::inbox_item(&item, json)?;
                shown += 1;
                if ack {
                    client.acknowledge(item.cursor).await?;
                }
            }
            if shown == 0 {
                show::said("cli-no-new-messages", &[]);
            }
        }
        Command::Ack { cursor } => {
            let cursor = client.acknowledge(cursor).await?;
            show::said("cli-acknowledged", &[("cursor", &cursor.to_string())]);
        }
        Command::Status { message_id } => {
            let status = client.status(&message_id).await?;
            show::status(&status);
            if status.state() == DeliveryState::Rejected {
                anyhow::bail!(
                    "{}",
                    show::say(
                        "cli-rejected-exit",
                        &[("country", &status.recipient_country)]
                    )
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_status_hint_repeats_the_connection_used() {
        let cli = Cli::try_parse_from([
            "retorno",
            "--profile",
            ".retorno-dev/MX/profiles/destination-authority.toml",
            "status",
            "01a2",
        ])
        .unwrap();
        assert_eq!(
            cli.connection.as_args(),
            "--profile .retorno-dev/MX/profiles/destination-authority.toml"
        );
    }

    #[test]
    fn connection_options_have_their_own_heading_in_every_command() {
        let mut command = Cli::command();
        command.build();
        for sub in command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
        {
            let profile = sub
                .get_arguments()
                .find(|arg| arg.get_id() == "profile")
                .unwrap();
            assert!(
                profile
                    .get_help_heading()
                    .is_some_and(|h| h.starts_with("Connection")),
                "{}",
                sub.get_name()
            );
        }
    }
}
