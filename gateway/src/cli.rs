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
            let credentials = crate::tls::Credentials::load(config.country, &config.tls)?;
            println!(
                "{}: configuration for {} is usable",
                file.display(),
                config.country
            );
            print_certificates(&credentials, config.tls.expiry_warning_days);
            Ok(())
        }
        Command::Dev(options) => dev::run(options).await,
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
