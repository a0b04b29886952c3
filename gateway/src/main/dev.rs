//! `retorno-gateway dev`: a whole local region in one process.
//!
//! The region's files are written by the library ([`retorno_gateway::dev`]);
//! this module parses the options, starts one gateway per country, each on a
//! runtime of its own, and prints where everything is.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use retorno_certs_dev::ROLES;
use retorno_gateway::{
    Config, Country, Gateway,
    config::DEFAULT_METRICS_LISTEN,
    dev::{DevOptions, dev_delegations, metrics_at, prepare},
};

/// Options of `retorno-gateway dev` (see [`DevOptions`]).
#[derive(Clone, Debug, clap::Args)]
pub struct DevArgs {
    /// Where the region's certificates, configs, profiles and data live.
    #[arg(long, default_value = ".retorno-dev")]
    pub dir: PathBuf,
    /// The countries of the region, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "MX,GT,HN,US")]
    pub countries: Vec<Country>,
    /// The first country's Peer API port; the others follow.
    #[arg(long, default_value_t = 7401)]
    pub peer_port: u16,
    /// The first country's Agency API port; the others follow.
    #[arg(long, default_value_t = 7501)]
    pub agency_port: u16,
    /// The first country's metrics port (loopback); the others follow.
    #[arg(long, default_value_t = 9464)]
    pub metrics_port: u16,
    /// Runs the region's case rules this many days ahead of the system
    /// clock, so that a walkthrough can hand over on the agreed arrival day
    /// and follow up a month later without waiting. Development only: the
    /// gateways' `created_at` then lies about the date. Never run it
    /// backwards on the same data (a step would seem to precede the one before).
    #[arg(long, default_value_t = 0)]
    pub danger_clock_ahead_days: u32,
}

impl From<DevArgs> for DevOptions {
    fn from(args: DevArgs) -> DevOptions {
        DevOptions {
            dir: args.dir,
            countries: args.countries,
            peer_port: args.peer_port,
            agency_port: args.agency_port,
            metrics_port: args.metrics_port,
            danger_clock_ahead_days: args.danger_clock_ahead_days,
        }
    }
}

/// Prepares the folder if needed, starts every gateway and runs until Ctrl-C.
pub async fn run(options: DevOptions) -> anyhow::Result<()> {
    let configs = prepare(&options)?;
    let clock = options.clock()?;
    let mut gateways = Vec::new();
    for (file, i) in configs.iter().zip(0u16..) {
        let mut config = Config::load_with_files(file)?;
        // A region written before `[metrics]` existed would have every
        // gateway on the same default port.
        if config.metrics.listen == DEFAULT_METRICS_LISTEN {
            config.metrics.listen = metrics_at(&options, i);
        }
        let runtime = gateway_runtime(config.country)?;
        let started = runtime
            .spawn(Gateway::start_with_clock(config, clock.clone()))
            .await?;
        let gateway = match started {
            Ok(gateway) => gateway,
            Err(error) => {
                runtime.shutdown_background();
                return Err(start_error(file, error));
            }
        };
        gateways.push((gateway, runtime));
    }
    let stop = crate::cli::ShutdownSignal::listen()?;
    let mut banner = region_banner(&options, gateways.iter().map(|(gateway, _)| gateway));
    if options.danger_clock_ahead_days > 0 {
        let _ = writeln!(
            banner,
            "\nthe case rules run {} days ahead of the system clock: it is {} for them",
            options.danger_clock_ahead_days,
            clock.now().strftime("%Y-%m-%d %H:%M UTC")
        );
    }
    // A region whose output nobody reads (`| head`, a closed terminal) keeps
    // running: `println!` would panic on the closed stdout and stop it.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), banner.as_bytes());
    stop.received().await;
    // Ignored if stderr is closed too: the gateways must still shut down.
    let _ = writeln!(
        std::io::stderr(),
        "stopping the region; queued messages stay in {}",
        options.dir.display()
    );
    for (gateway, runtime) in gateways {
        runtime.spawn(gateway.shutdown()).await?;
        runtime.shutdown_background();
    }
    Ok(())
}

/// A runtime of one dev gateway's own, whose threads all run inside a
/// `gateway{country=MX}` span: every task, and so every log line, of that
/// gateway then says which country's gateway wrote it, with no change to how
/// the gateway spawns its tasks.
fn gateway_runtime(country: Country) -> std::io::Result<tokio::runtime::Runtime> {
    let span = tracing::info_span!("gateway", country = %country);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("gateway-{country}"))
        .on_thread_start(move || {
            // Entered for the thread's whole life: the guard is never dropped,
            // so the span is never left on this thread.
            std::mem::forget(span.clone().entered());
        })
        .enable_all()
        .build()
}

/// A gateway that did not start; a port in use most likely means a region
/// is already running.
fn start_error(file: &Path, error: retorno_gateway::gateway::StartError) -> anyhow::Error {
    let busy = matches!(
        &error,
        retorno_gateway::gateway::StartError::Bind { source, .. }
            if source.kind() == std::io::ErrorKind::AddrInUse
    );
    let error =
        anyhow::Error::new(error).context(format!("starting the gateway of {}", file.display()));
    if busy {
        error.context(
            "a port of the region is taken: is a dev region already running (Ctrl-C it, or use it)? Otherwise pick others with --peer-port and --agency-port",
        )
    } else {
        error
    }
}

fn region_banner<'a>(
    options: &DevOptions,
    gateways: impl Iterator<Item = &'a Gateway> + Clone,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "retorno dev region in {} (Ctrl-C stops it)",
        options.dir.display()
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "  country  peer API          agency API        metrics                              profiles"
    );
    for gateway in gateways.clone() {
        let profiles = options
            .dir
            .join(gateway.country().as_str())
            .join("profiles");
        let metrics = gateway
            .metrics_addr()
            .map_or_else(|| "off".to_owned(), retorno_gateway::metrics::url);
        let _ = writeln!(
            out,
            "  {:<7}  {:<16}  {:<16}  {:<35}  {}/{{{}}}.toml",
            gateway.country().as_str(),
            gateway.peer_addr(),
            gateway.agency_addr(),
            metrics,
            profiles.display(),
            ROLES.join(",")
        );
    }
    let region: Vec<Country> = gateways.clone().map(Gateway::country).collect();
    for gateway in gateways {
        for consulate in dev_delegations(gateway.country(), &region) {
            let profile = options
                .dir
                .join(gateway.country().as_str())
                .join("profiles")
                .join(format!("consulate-{consulate}.toml"));
            let _ = writeln!(
                out,
                "  {consulate}'s consulate acts for {} under [[delegations]]: {}",
                gateway.country(),
                profile.display()
            );
        }
    }
    out.push('\n');
    out.push_str("Try, in another terminal:\n");
    let profile = |cc: &str, role: &str| {
        options
            .dir
            .join(cc)
            .join("profiles")
            .join(format!("{role}.toml"))
    };
    let _ = writeln!(
        out,
        "  cargo run --release -p retorno-client -- --profile {} send notice client/examples/notice-mx-gt.json --to GT --case MX-2026-0001",
        profile("MX", "destination-authority").display()
    );
    let _ = writeln!(
        out,
        "  cargo run --release -p retorno-client -- --profile {} inbox",
        profile("GT", "child-protection").display()
    );
    let _ = writeln!(
        out,
        "A web console for an agency (add a staff account first; the password is read from stdin):"
    );
    let users = options.dir.join("MX").join("console-users.toml");
    let _ = writeln!(
        out,
        "  cargo run --release -p retorno-client -- console user add aperez --name \"Ana Pérez\" --users {}",
        users.display()
    );
    let _ = writeln!(
        out,
        "  cargo run --release -p retorno-client -- --profile {} console --users {} --listen 127.0.0.1:8080",
        profile("MX", "destination-authority").display(),
        users.display()
    );
    out
}
