//! `retorno-gateway dev`: a whole local region in one process.
//!
//! On first run it writes a development PKI, one gateway config per country
//! and one client profile per agency under one folder; later runs reuse them,
//! and each gateway's sled data, so whatever was queued is still there.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use retorno_certs_dev::{Layout, Options, ROLES};
use retorno_client::Profile;

use crate::{
    clock::Clock,
    config::{
        CaseRules, Config, DEFAULT_METRICS_LISTEN, Delegation, Delivery, Health, Limits, Listen,
        Log, Metrics, PeerConfig, Reception, Storage, TlsPaths,
    },
    country::Country,
    gateway::Gateway,
};

/// Each dev gateway's at-rest key, relative to its folder (`.retorno-dev/CC`),
/// written with mode 0600 when the gateway's config is first written.
const DEV_KEY: &str = "keys/dev.key";

/// Options of `retorno-gateway dev`.
#[derive(Clone, Debug, clap::Args)]
pub struct DevOptions {
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

impl DevOptions {
    /// The region's clock: the system's, or one running ahead of it.
    fn clock(&self) -> anyhow::Result<Clock> {
        if self.danger_clock_ahead_days == 0 {
            return Ok(Clock::system());
        }
        let clock = Clock::adjustable();
        let ahead = jiff::SignedDuration::from_hours(24 * i64::from(self.danger_clock_ahead_days));
        clock.advance(ahead)?;
        Ok(clock)
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
    print_region(&options, gateways.iter().map(|(gateway, _)| gateway));
    if options.danger_clock_ahead_days > 0 {
        println!(
            "\nthe case rules run {} days ahead of the system clock: it is {} for them",
            options.danger_clock_ahead_days,
            clock.now().strftime("%Y-%m-%d %H:%M UTC")
        );
    }
    crate::cli::shutdown_signal().await?;
    eprintln!(
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
fn start_error(file: &Path, error: crate::gateway::StartError) -> anyhow::Error {
    let busy = matches!(
        &error,
        crate::gateway::StartError::Bind { source, .. }
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

/// Where the `i`th country's metrics listen.
fn metrics_at(options: &DevOptions, i: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, options.metrics_port.saturating_add(i)))
}

/// Writes whatever is missing (PKI, configs, profiles) and returns the config files.
pub fn prepare(options: &DevOptions) -> anyhow::Result<Vec<PathBuf>> {
    let countries: Vec<Country> = {
        let mut seen = options.countries.clone();
        seen.dedup();
        seen
    };
    let layout = retorno_certs_dev::generate(&Options {
        out: options.dir.join("certs"),
        countries: countries.iter().map(ToString::to_string).collect(),
        force: false,
    })?;
    let listen: BTreeMap<Country, Listen> = countries
        .iter()
        .zip(0u16..)
        .map(|(country, i)| {
            let at = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port + i));
            (
                *country,
                Listen {
                    peer: at(options.peer_port),
                    agency: at(options.agency_port),
                },
            )
        })
        .collect();
    let mut files = Vec::new();
    for (country, index) in countries.iter().zip(0u16..) {
        let folder = options.dir.join(country.as_str());
        let file = folder.join("gateway.toml");
        if !file.exists() {
            let key = folder.join(DEV_KEY);
            if !key.exists() {
                crate::at_rest::write_new_key(&key)?;
            }
            let mut config = gateway_config(*country, &layout, &listen)?;
            config.metrics.listen = metrics_at(options, index);
            write(&file, &config.to_toml()?)?;
        }
        for role in ROLES {
            let profile_file = folder.join("profiles").join(format!("{role}.toml"));
            if !profile_file.exists() {
                write(
                    &profile_file,
                    &agency_profile(*country, *country, role, &layout, &listen)?.to_toml()?,
                )?;
            }
        }
        for consulate in dev_delegations(*country, &countries) {
            let name = format!("consulate-{consulate}.toml");
            let profile_file = folder.join("profiles").join(name);
            if !profile_file.exists() {
                let profile = agency_profile(*country, consulate, "consulate", &layout, &listen)?;
                write(&profile_file, &profile.to_toml()?)?;
            }
        }
        files.push(file);
    }
    Ok(files)
}

fn gateway_config(
    country: Country,
    layout: &Layout,
    listen: &BTreeMap<Country, Listen>,
) -> anyhow::Result<Config> {
    let cc = country.as_str();
    let peers = listen
        .iter()
        .filter(|(peer, _)| **peer != country)
        .map(|(peer, addresses)| {
            let config = PeerConfig {
                address: addresses.peer.to_string(),
                tls_name: Some(retorno_certs_dev::gateway_dns_name(peer.as_str())),
            };
            (*peer, config)
        })
        .collect();
    // Paths are written relative to the config's folder (.retorno-dev/CC).
    let certs = |path: PathBuf| relative_to_country(layout, &path);
    Ok(Config {
        country,
        data_dir: PathBuf::from("data"),
        listen: listen
            .get(&country)
            .context("every country has addresses")?
            .clone(),
        tls: TlsPaths {
            regional_root: certs(layout.root_ca())?,
            gateway_cert: certs(layout.gateway_cert(cc))?,
            gateway_key: certs(layout.gateway_key(cc))?,
            agency_ca: certs(layout.agency_ca(cc))?,
            crls: Vec::new(),
            reload_interval_ms: crate::config::DEFAULT_RELOAD_INTERVAL_MS,
            expiry_warning_days: crate::config::DEFAULT_EXPIRY_WARNING_DAYS,
        },
        peers,
        limits: Limits::default(),
        delivery: Delivery::default(),
        storage: Storage {
            keys: vec![PathBuf::from(DEV_KEY)],
            ..Storage::default()
        },
        case: CaseRules::default(),
        reception: Reception {
            points: crate::policy::dev_points(country),
        },
        alerts: crate::config::AlertSettings::default(),
        metrics: Metrics::default(),
        health: Health::default(),
        log: Log::default(),
        statistics: crate::statistics::Rule::default(),
        delegations: dev_delegations(country, &listen.keys().copied().collect::<Vec<_>>())
            .into_iter()
            .map(|consulate_country| {
                Ok(Delegation {
                    consulate_country,
                    agency_ca: certs(layout.agency_ca(consulate_country.as_str()))?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    })
}

/// The dev region's consular delegations: Honduras has Guatemala's
/// consulate act for it (when both are in the region), so that the
/// walkthrough can show a handoff acknowledged under a delegation.
fn dev_delegations(country: Country, region: &[Country]) -> Vec<Country> {
    let pairs = [("HN", "GT")];
    pairs
        .iter()
        .filter(|(origin, _)| *origin == country.as_str())
        .filter_map(|(_, consulate)| consulate.parse::<Country>().ok())
        .filter(|consulate| region.contains(consulate))
        .collect()
}

/// The profile of `agency_country`'s agency in `role` connecting to
/// `country`'s gateway: its own, or, for a delegated consulate, the
/// gateway of the country it acts for.
fn agency_profile(
    country: Country,
    agency_country: Country,
    role: &str,
    layout: &Layout,
    listen: &BTreeMap<Country, Listen>,
) -> anyhow::Result<Profile> {
    let cc = country.as_str();
    let agency_cc = agency_country.as_str();
    // Profiles live one folder deeper (.retorno-dev/CC/profiles).
    let certs = |path: PathBuf| relative_to_country(layout, &path).map(|p| Path::new("..").join(p));
    Ok(Profile {
        gateway: listen
            .get(&country)
            .context("every country has addresses")?
            .agency
            .to_string(),
        tls_name: Some(retorno_certs_dev::gateway_dns_name(cc)),
        ca: certs(layout.root_ca())?,
        cert: certs(layout.agency_cert(agency_cc, role))?,
        key: certs(layout.agency_key(agency_cc, role))?,
    })
}

/// A path under the PKI folder, as seen from a country's folder (`../certs/...`).
fn relative_to_country(layout: &Layout, path: &Path) -> anyhow::Result<PathBuf> {
    let inside = path
        .strip_prefix(layout.dir())
        .with_context(|| format!("{} is not under {}", path.display(), layout.dir().display()))?;
    Ok(Path::new("..").join("certs").join(inside))
}

fn write(file: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))
}

fn print_region<'a>(options: &DevOptions, gateways: impl Iterator<Item = &'a Gateway> + Clone) {
    println!(
        "retorno dev region in {} (Ctrl-C stops it)",
        options.dir.display()
    );
    println!();
    println!(
        "  country  peer API          agency API        metrics                              profiles"
    );
    for gateway in gateways.clone() {
        let profiles = options
            .dir
            .join(gateway.country().as_str())
            .join("profiles");
        let metrics = gateway
            .metrics_addr()
            .map_or_else(|| "off".to_owned(), crate::metrics::url);
        println!(
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
            println!(
                "  {consulate}'s consulate acts for {} under [[delegations]]: {}",
                gateway.country(),
                profile.display()
            );
        }
    }
    println!();
    println!("Try, in another terminal:");
    let profile = |cc: &str, role: &str| {
        options
            .dir
            .join(cc)
            .join("profiles")
            .join(format!("{role}.toml"))
    };
    println!(
        "  cargo run --release -p retorno-client -- --profile {} send notice client/examples/notice-mx-gt.json --to GT --case MX-2026-0001",
        profile("MX", "destination-authority").display()
    );
    println!(
        "  cargo run --release -p retorno-client -- --profile {} inbox",
        profile("GT", "child-protection").display()
    );
}
