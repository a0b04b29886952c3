//! The `retorno-gateway` program: argument parsing and logging set-up only.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use retorno_gateway::{
    config::{Config, LogFormat},
    gateway::Gateway,
};

use crate::{dev, ops};

/// How log lines are written (`--log-format`); the configuration's
/// [`LogFormat`] without clap in the library.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    /// One line of text per event, for a terminal.
    Text,
    /// One JSON object per line, for a log shipper.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> LogFormat {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// One country's retorno gateway.
#[derive(Parser)]
#[command(name = "retorno-gateway", version, about)]
struct Cli {
    /// How log lines are written: `text` for people, `json` (one object
    /// per line, the same fields) for log shippers. Overrides `[log] format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one gateway from its configuration file until Ctrl-C.
    Run {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file and its certificates without starting.
    CheckConfig {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
        /// Also try each peer's Peer API: reachable, TLS accepted, policy fetched.
        #[arg(long)]
        peers: bool,
    },
    /// Run a whole local region (dev PKI, one gateway per country) in one process.
    Dev(dev::DevArgs),
    /// Purge the personal data of closed cases once, on a stopped gateway
    /// (a running one does it every storage.retention_check_interval_s).
    /// Prints case ids and counts only.
    Purge {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
        /// Print what is due without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Seal every kept envelope again under the newest key of storage.keys,
    /// on a stopped gateway, so that an older key can be removed from the
    /// list. Prints key ids and counts only.
    Rekey {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
        /// Print how the envelopes stand, per key, without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export or verify the evidence of one exchange.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// List what this gateway found when a peer or itself went back in time
    /// (a restore from backup, a lost disk cache), with the message ids
    /// concerned; on a stopped gateway. `--acknowledge` marks them seen.
    Rollback {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
        /// Mark every standing finding acknowledged (the gateway stops
        /// reporting itself as gone back at start).
        #[arg(long)]
        acknowledge: bool,
    },
    /// Operate a running gateway over its Operator API, with an operator's
    /// profile: status, message log, one message's history, requeue, drain.
    Ops(ops::OpsOptions),
    /// Move a stopped sled gateway onto PostgreSQL: copy its whole database
    /// into an empty one, then check the copy (every tree's entries, keys and
    /// values, and the audit chain). Then set `[storage] backend = "postgres"`
    /// and `url`, and start it.
    Migrate(ops::MigrateArgs),
    /// Check the audit log of a stopped gateway.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Disaggregated statistics: a signed country report, its verification,
    /// and the regional merge.
    Stats {
        #[command(subcommand)]
        command: StatsCommand,
    },
}

#[derive(Subcommand)]
enum StatsCommand {
    /// Write this country's tables for a period, under `[statistics]`
    /// disclosure control and signed by the gateway's key, and a CSV per
    /// table next to it (on a stopped gateway).
    Report {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
        /// The first month, YYYY-MM.
        #[arg(long)]
        from: String,
        /// The last month, YYYY-MM.
        #[arg(long)]
        to: String,
        /// Where to write the report (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a report's signature with nothing but the regional root.
    Verify {
        /// The report.
        file: PathBuf,
        /// The regional root CA certificate (PEM).
        #[arg(long)]
        root: PathBuf,
    },
    /// Verify the countries' reports, add them, apply disclosure control
    /// again, and write index.html, the CSVs and the SVG charts.
    Merge {
        /// The reports, one per country, of one period.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The regional root CA certificate (PEM).
        #[arg(long)]
        root: PathBuf,
        /// The folder to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and check every stored seal against the regional
    /// root; prints what verified, or the first entry that fails and why,
    /// and exits non-zero on a failure.
    Verify {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write a message's envelope, its receipt and both signing certificates
    /// into one file (on the stopped receiving gateway).
    Export {
        /// The gateway's TOML configuration.
        #[arg(long, env = "RETORNO_CONFIG")]
        config: PathBuf,
        /// The message id.
        message_id: String,
        /// Where to write the evidence (JSON).
        #[arg(long, default_value = "evidence.json")]
        out: PathBuf,
    },
    /// Check an evidence file offline with nothing but the regional root.
    Verify {
        /// The evidence file.
        file: PathBuf,
        /// The regional root CA certificate (PEM).
        #[arg(long)]
        root: PathBuf,
    },
}

/// Parses arguments, runs the command, and turns its error into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(
        cli.log_format
            .map(LogFormat::from)
            .or_else(|| configured_log_format(&cli.command))
            .unwrap_or_default(),
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("retorno-gateway: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("retorno-gateway: {}", said_once(&error));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each said once: many errors print
/// their source in their own message too (`cannot listen on X: Address
/// already in use`), and the plain chain would repeat it.
fn said_once(error: &anyhow::Error) -> String {
    // A profile, a PEM file or a connection that failed (ops), in the
    // reader's language: their sentences say everything (no source chain).
    use retorno_client::{ClientError, tls::TlsError};
    if let Some(
        failed @ (ClientError::Tls(TlsError::Transport { .. } | TlsError::File { .. })
        | ClientError::Profile { .. }),
    ) = error.downcast_ref::<ClientError>()
    {
        return failed.render(ops::lang());
    }
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `[log] format` of the gateway that `run` starts, so that a config file
/// alone can ask for JSON (an unreadable file is reported by `run` itself).
fn configured_log_format(command: &Command) -> Option<LogFormat> {
    match command {
        Command::Run { config } => Config::load(config).ok().map(|c| c.log.format),
        _ => None,
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // sled's debug and trace lines print the values it stores: envelopes, that
    // is personal data, whatever RUST_LOG asks for;
    // tokio-postgres's debug lines print the parameters of every statement,
    // which hold the same values.
    let filter = ["sled=info", "tokio_postgres=info"]
        .into_iter()
        .filter_map(|directive| directive.parse().ok())
        .fold(filter, |filter, directive| filter.add_directive(directive));
    // Colour codes only for a person at a terminal, not in a file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => lines.init(),
        // Each event's fields at the top level, as the text lines print them.
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config } => {
            let config = Config::load_with_files(&config)?;
            let stop = ShutdownSignal::listen()?;
            let gateway = Gateway::start(config).await?;
            eprintln!(
                "{} gateway: peers on {}, agencies on {}; Ctrl-C stops it",
                gateway.country(),
                gateway.peer_addr(),
                gateway.agency_addr()
            );
            tokio::select! {
                () = stop.received() => {
                    gateway.shutdown().await;
                    Ok(())
                }
                why = gateway.lease_lost() => {
                    gateway.shutdown().await;
                    // A supervisor starts it again, as a standby.
                    anyhow::bail!("this node lost the lease ({why}): another node of the gateway serves now")
                }
            }
        }
        Command::CheckConfig {
            config: file,
            peers,
        } => {
            let config = Config::load_with_files(&file)?;
            // The same checks as at start and at every reload.
            let credentials = retorno_gateway::tls::Credentials::load_with_delegations(
                config.country,
                &config.tls,
                &config.delegations,
            )?;
            println!(
                "{}: configuration for {} is usable",
                file.display(),
                config.country
            );
            print_certificates(&credentials, config.tls.expiry_warning_days);
            if let Some(warning) = config.storage.durability.warning() {
                println!("warning: {warning}");
            }
            for warning in delegation_warnings(&config, &credentials) {
                println!("warning: {warning}");
            }
            if peers {
                check_peers(&config, &credentials).await?;
            }
            Ok(())
        }
        Command::Dev(options) => dev::run(options.into()).await,
        Command::Ops(options) => ops::run(options).await,
        Command::Migrate(args) => ops::migrate(args).await,
        Command::Evidence {
            command:
                EvidenceCommand::Export {
                    config,
                    message_id,
                    out,
                },
        } => {
            let config = Config::load_with_files(&config)?;
            let id = uuid::Uuid::try_parse(&message_id)
                .map_err(|_| anyhow::anyhow!("{message_id:?} is not a message id (a UUID)"))?;
            let store = open_stopped(&config, "stop it, then export")?;
            let bundle = retorno_gateway::evidence::export(&store, id, config.country)?;
            retorno_gateway::evidence::write(&bundle, &out)?;
            println!("wrote the evidence of message {id} to {}", out.display());
            Ok(())
        }
        Command::Evidence {
            command: EvidenceCommand::Verify { file, root },
        } => {
            let bundle = retorno_gateway::evidence::read(&file).map_err(|e| anyhow::anyhow!(e))?;
            let roots = retorno_gateway::tls::load_certificates(&root)?;
            let checks = retorno_gateway::evidence::verify(&bundle, &roots);
            let mut failed = 0;
            for check in &checks {
                match &check.outcome {
                    Ok(detail) => println!("ok      {}: {detail}", check.what),
                    Err(why) => {
                        failed += 1;
                        println!("FAILED  {}: {why}", check.what);
                    }
                }
            }
            anyhow::ensure!(
                failed == 0,
                "{failed} of {} checks failed: this evidence does not prove the exchange",
                checks.len()
            );
            println!(
                "the evidence holds: {} checks passed against {}",
                checks.len(),
                root.display()
            );
            Ok(())
        }
        Command::Purge { config, dry_run } => {
            let config = Config::load_with_files(&config)?;
            let mode = if dry_run {
                retorno_gateway::retention::Mode::DryRun
            } else {
                retorno_gateway::retention::Mode::Purge
            };
            print!(
                "{}",
                retorno_gateway::retention::purge_once(&config, mode).await?
            );
            Ok(())
        }
        Command::Rekey { config, dry_run } => {
            let config = Config::load_with_files(&config)?;
            let store = open_stopped(&config, "stop the gateway first")?;
            let done = store.rekey(dry_run).await?;
            print!("{}", ops::rekey_text(&store.rekey_report(&done, dry_run)));
            Ok(())
        }
        Command::Rollback {
            config,
            acknowledge,
        } => {
            let config = Config::load(&config)?;
            let store = open_stopped(&config, "stop the gateway first")?;
            print!(
                "{}",
                retorno_gateway::store::findings_report(&store.findings()?)
            );
            if acknowledge {
                let count = store.acknowledge_findings()?;
                println!("acknowledged {count} finding(s)");
            }
            Ok(())
        }
        Command::Stats { command } => stats(command).await,
        Command::Audit {
            command: AuditCommand::Verify { config },
        } => {
            let config = Config::load_with_files(&config)?;
            let report = retorno_gateway::audit::verify_stopped(&config).await?;
            print!("{report}");
            anyhow::ensure!(
                report.intact(),
                "the audit log or a stored seal does not verify"
            );
            Ok(())
        }
    }
}

async fn stats(command: StatsCommand) -> anyhow::Result<()> {
    use retorno_gateway::statistics::{self, merge, report};
    match command {
        StatsCommand::Report {
            config,
            from,
            to,
            out,
        } => {
            let config = Config::load(&config)?;
            let period = statistics::Period::new(from.parse()?, to.parse()?)?;
            let written = statistics::write_report(&config, period, &out).await?;
            println!(
                "wrote {}'s report for {} to {} to {} and {} CSV files next to it",
                config.country,
                period.from,
                period.to,
                out.display(),
                written.len()
            );
            Ok(())
        }
        StatsCommand::Verify { file, root } => {
            let report = report::read(&file)?;
            let roots = retorno_gateway::tls::load_certificates(&root)?;
            let country = report::verify(&report, &roots)?;
            println!(
                "{}: a report of {country} for {} to {}, signed by {country}'s gateway under {}",
                file.display(),
                report.body.from,
                report.body.to,
                root.display()
            );
            Ok(())
        }
        StatsCommand::Merge { files, root, out } => {
            let roots = retorno_gateway::tls::load_certificates(&root)?;
            let reports = files
                .iter()
                .map(|file| {
                    let report = report::read(file)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                    Ok((file.display().to_string(), report))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let merged = merge::merge(&reports, &roots)?;
            merge::write(&merged, &out)?;
            println!(
                "merged the reports of {} into {}",
                merged
                    .countries
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                out.join("index.html").display()
            );
            Ok(())
        }
    }
}

/// Prints each certificate's expiry and each revocation list, so that an
/// operator sees what to renew before a peer refuses it.
fn print_certificates(credentials: &retorno_gateway::tls::Credentials, warning_days: u32) {
    println!("certificates:");
    for cert in credentials.certificates() {
        let days_left = cert.days_left_now();
        let note = if cert.expired() {
            "EXPIRED: renew it".to_owned()
        } else if days_left < i64::from(warning_days) {
            format!("{days_left} days left: renew it soon")
        } else {
            format!("{days_left} days left")
        };
        println!(
            "  {:<19} {}  {}  expires {} ({note})",
            cert.role.as_str(),
            cert.file.display(),
            cert.subject,
            cert.not_after
        );
    }
    let crls = credentials.crls();
    if !crls.is_empty() {
        println!("revocation lists:");
    }
    for crl in crls {
        println!(
            "  {}  issued by {}  {} revoked  next update {}{}",
            crl.file.display(),
            crl.issuer,
            crl.revoked,
            crl.next_update.as_deref().unwrap_or("-"),
            if crl.stale {
                " (STALE: fetch a newer one)"
            } else {
                ""
            }
        );
    }
}

/// A delegation whose country's agency CA has no revocation list in
/// `tls.crls`: a consulate certificate that country has revoked would
/// still be admitted.
fn delegation_warnings(
    config: &Config,
    credentials: &retorno_gateway::tls::Credentials,
) -> Vec<String> {
    let certificates = credentials.certificates();
    let crls = credentials.crls();
    let mut warnings = Vec::new();
    for (i, delegation) in config.delegations.iter().enumerate() {
        let cc = delegation.consulate_country;
        let subjects: Vec<&str> = certificates
            .iter()
            .filter(|cert| cert.file == delegation.agency_ca)
            .map(|cert| cert.subject.as_str())
            .collect();
        let listed = crls
            .iter()
            .any(|crl| subjects.contains(&crl.issuer.as_str()));
        if !listed {
            warnings.push(format!(
                "delegations[{i}]: tls.crls has no revocation list of {cc}'s agency CA ({}), so a certificate {cc} revokes for its consulate is still admitted here: add {cc}'s agency CRL (kept current from {cc}) to tls.crls",
                delegation.agency_ca.display()
            ));
        }
    }
    warnings
}

/// How far `check-config --peers` got with one peer.
enum PeerCheck {
    /// The peer answered with its reception policy.
    PolicyFetched(retorno_proto::v1::ReceptionPolicy),
    /// Something listens, and the TLS handshake went through, but the call failed.
    TlsAccepted(String),
    /// Something listens, but the TLS handshake failed.
    Reachable(String),
    /// Nothing could be reached.
    NotReachable(String),
}

/// Tries one peer's Peer API as the courier would, and reads its policy.
async fn check_peer(
    country: retorno_gateway::Country,
    peer: &retorno_gateway::config::PeerConfig,
    credentials: &retorno_gateway::tls::Credentials,
) -> PeerCheck {
    use retorno_client::tls::{TlsError, TransportCause};
    use retorno_proto::v1::{ReceptionPolicyRequest, peer_exchange_client::PeerExchangeClient};
    // One short call: the default keepalive only guards against a hang.
    let keepalive = retorno_gateway::config::Keepalive::default();
    let channel =
        match retorno_gateway::tls::connect_to_peer(country, peer, credentials, keepalive).await {
            Ok((channel, _)) => channel,
            Err(
                error @ TlsError::Transport {
                    cause: TransportCause::NothingListens,
                    ..
                },
            ) => {
                return PeerCheck::NotReachable(error.to_string());
            }
            Err(error) => return PeerCheck::Reachable(error.to_string()),
        };
    let mut client = PeerExchangeClient::new(channel);
    let call = client.get_reception_policy(ReceptionPolicyRequest {});
    match tokio::time::timeout(std::time::Duration::from_secs(10), call).await {
        Ok(Ok(policy)) => PeerCheck::PolicyFetched(policy.into_inner()),
        // With TLS 1.3 a refused certificate shows on the first call.
        Ok(Err(status)) => match TransportCause::of(&status) {
            Some(cause) => PeerCheck::Reachable(cause.describe(&peer.address)),
            None => PeerCheck::TlsAccepted(format!("{:?}: {}", status.code(), status.message())),
        },
        Err(_) => PeerCheck::TlsAccepted("no answer within 10 s".to_owned()),
    }
}

/// `check-config --peers`: one line per peer; an error if any is not ready.
async fn check_peers(
    config: &Config,
    credentials: &retorno_gateway::tls::Credentials,
) -> anyhow::Result<()> {
    println!("peers:");
    let mut failed = 0;
    for (country, peer) in &config.peers {
        let line = match check_peer(*country, peer, credentials).await {
            PeerCheck::PolicyFetched(policy) => format!(
                "reachable, TLS accepted, policy fetched ({} point{} of entry{})",
                policy.points.len(),
                if policy.points.len() == 1 { "" } else { "s" },
                match policy.delegated_consulates.as_slice() {
                    [] => String::new(),
                    list => format!(", delegates to the consulates of {}", list.join(", ")),
                }
            ),
            PeerCheck::TlsAccepted(why) => {
                failed += 1;
                format!("reachable, TLS accepted, policy NOT fetched: {why}")
            }
            PeerCheck::Reachable(why) => {
                failed += 1;
                format!("reachable, TLS NOT accepted: {why}")
            }
            PeerCheck::NotReachable(why) => {
                failed += 1;
                format!("NOT reachable: {why}")
            }
        };
        println!("  {country}  {}  {line}", peer.address);
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} peers are not ready",
        config.peers.len()
    );
    Ok(())
}

/// The store of `config`'s stopped gateway, for a command; an error names
/// the folder, and adds `hint` when a running gateway holds the database.
fn open_stopped(
    config: &Config,
    hint: &str,
) -> anyhow::Result<std::sync::Arc<retorno_gateway::Store>> {
    retorno_gateway::storage::open(&config.data_dir, &config.storage, config.country).map_err(
        |error| {
            let dir = config.data_dir.display();
            if error.held_by_a_running_gateway() {
                anyhow::anyhow!("{dir}: {error} (a running gateway holds it: {hint})")
            } else {
                anyhow::anyhow!("{dir}: {error}")
            }
        },
    )
}

/// Ctrl-C (SIGINT) and SIGTERM, the two ways an operator stops a gateway,
/// caught from the moment this is made: make it before saying the gateway
/// is ready, or a signal sent in between kills the process unclean.
pub struct ShutdownSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    pub fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignal {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Until one of the two arrives.
    pub async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
