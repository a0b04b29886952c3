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
            crate::tls::KeyedChain::load(&config.tls.gateway_cert, &config.tls.gateway_key)?;
            crate::tls::load_roots(&config.tls.regional_root)?;
            crate::tls::load_roots(&config.tls.agency_ca)?;
            println!(
                "{}: configuration for {} is usable",
                file.display(),
                config.country
            );
            Ok(())
        }
        Command::Dev(options) => dev::run(options).await,
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
