//! The `retorno-gateway` program: argument parsing and logging set-up only.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{config::Config, dev, gateway::Gateway};

/// One country's retorno gateway.
#[derive(Parser)]
#[command(name = "retorno-gateway", version, about)]
struct Cli {
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
    },
    /// Run a whole local region (dev PKI, one gateway per country) in one process.
    Dev(dev::DevOptions),
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
    init_logging();
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
            eprintln!("retorno-gateway: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // sled's debug and trace lines print the values it stores: envelopes, that
    // is personal data, whatever RUST_LOG asks for.
    let filter = match "sled=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config } => {
            let config = Config::load(&config)?;
            let gateway = Gateway::start(config).await?;
            eprintln!(
                "{} gateway: peers on {}, agencies on {}; Ctrl-C stops it",
                gateway.country(),
                gateway.peer_addr(),
                gateway.agency_addr()
            );
            shutdown_signal().await?;
            gateway.shutdown().await;
            Ok(())
        }
        Command::CheckConfig { config: file } => {
            let config = Config::load(&file)?;
            // The same checks as at start and at every reload.
            let credentials = crate::tls::Credentials::load_with_delegations(
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
            Ok(())
        }
        Command::Dev(options) => dev::run(options).await,
        Command::Evidence {
            command:
                EvidenceCommand::Export {
                    config,
                    message_id,
                    out,
                },
        } => {
            let config = Config::load(&config)?;
            let id = uuid::Uuid::try_parse(&message_id)
                .map_err(|_| anyhow::anyhow!("{message_id:?} is not a message id (a UUID)"))?;
            let store =
                crate::store::Store::open(&config.data_dir, &config.storage).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: {e} (is the gateway running? stop it, then export)",
                        config.data_dir.display()
                    )
                })?;
            let bundle = crate::evidence::export(&store, id, config.country)?;
            crate::evidence::write(&bundle, &out)?;
            println!("wrote the evidence of message {id} to {}", out.display());
            Ok(())
        }
        Command::Evidence {
            command: EvidenceCommand::Verify { file, root },
        } => {
            let bundle = crate::evidence::read(&file).map_err(|e| anyhow::anyhow!(e))?;
            let roots = crate::tls::load_certificates(&root)?;
            let checks = crate::evidence::verify(&bundle, &roots);
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
            let config = Config::load(&config)?;
            let mode = if dry_run {
                crate::retention::Mode::DryRun
            } else {
                crate::retention::Mode::Purge
            };
            print!("{}", crate::retention::purge_once(&config, mode).await?);
            Ok(())
        }
        Command::Rollback {
            config,
            acknowledge,
        } => {
            let config = Config::load(&config)?;
            let store = crate::Store::open(&config.data_dir, &config.storage).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (stop the gateway first: its database is open)",
                    config.data_dir.display()
                )
            })?;
            print!("{}", crate::store::findings_report(&store.findings()?));
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
            let config = Config::load(&config)?;
            let report = crate::audit::verify_stopped(&config).await?;
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
    use crate::statistics::{self, merge, report};
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
            let roots = crate::tls::load_certificates(&root)?;
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
            let roots = crate::tls::load_certificates(&root)?;
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
fn print_certificates(credentials: &crate::tls::Credentials, warning_days: u32) {
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

/// Waits for Ctrl-C (SIGINT) or SIGTERM, the two ways an operator stops a gateway.
pub async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}
