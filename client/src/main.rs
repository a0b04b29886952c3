//! `retorno`: the command line for agencies. Parses arguments and calls the library.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use retorno_client::{Client, Profile, notice::read_notice};
use retorno_proto::v1::{DeliveryState, SubmitRequest, submit_request::Payload};

mod show;

/// Talk to your own country's retorno gateway.
#[derive(Parser)]
#[command(name = "retorno", version, about)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

/// Where the gateway is and which certificate to use: a profile file, or flags.
#[derive(Args)]
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
}

#[derive(Subcommand)]
enum SendKind {
    /// An advance notice of repatriation, from a JSON file.
    Notice {
        /// The notice as JSON, with the field names of retorno.v1.AdvanceNotice.
        file: PathBuf,
        /// The country to send it to (ISO 3166-1 alpha-2), e.g. GT.
        #[arg(long)]
        to: String,
        /// The case id; a new one is made if omitted.
        #[arg(long)]
        case: Option<String>,
        /// A UUIDv7 to reuse when retrying a send whose answer was lost.
        #[arg(long)]
        message_id: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            eprintln!("retorno: {error:#}");
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
            _ => anyhow::bail!(
                "no connection given: pass --profile FILE (retorno-gateway dev writes them under .retorno-dev/CC/profiles) or --gateway, --ca, --cert and --key"
            ),
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Read the input before connecting, so that a bad file is reported first.
    if let Command::Send {
        kind: SendKind::Notice { file, .. },
    } = &cli.command
    {
        read_notice(file)?;
    }
    let profile = cli.connection.profile()?;
    let mut client = Client::connect(&profile)
        .await
        .with_context(|| format!("connecting to the gateway at {}", profile.gateway))?;
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
            let case_id = case.unwrap_or_else(|| format!("case-{}", uuid::Uuid::now_v7()));
            let request = SubmitRequest {
                message_id: message_id.unwrap_or_default(),
                case_id: case_id.clone(),
                recipient_country: to.clone(),
                payload: Some(Payload::AdvanceNotice(notice)),
            };
            let answer = client.submit(request).await?;
            let again = if answer.duplicate {
                " (it had been accepted before)"
            } else {
                ""
            };
            println!(
                "accepted{again}: message {} for {to}, case {case_id}",
                answer.message_id
            );
            println!(
                "it is stored in the outbox; `retorno status {}` shows its delivery",
                answer.message_id
            );
        }
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
                println!("no new messages");
            }
        }
        Command::Ack { cursor } => {
            let cursor = client.acknowledge(cursor).await?;
            println!("acknowledged up to {cursor}");
        }
        Command::Status { message_id } => {
            let status = client.status(&message_id).await?;
            show::status(&status);
            if status.state() == DeliveryState::Rejected {
                anyhow::bail!("the message was rejected by {}", status.recipient_country);
            }
        }
    }
    Ok(())
}
