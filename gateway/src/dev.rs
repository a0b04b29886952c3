//! A whole local region's files: what `retorno-gateway dev` runs.
//!
//! On first run [`prepare`] writes a development PKI, one gateway config per
//! country and one client profile per agency under one folder; later runs
//! reuse them, and each gateway's sled data, so whatever was queued is still
//! there. The program (`gateway/src/main/dev.rs`) starts the gateways; tests
//! that start a region in process use this module alone.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use retorno_certs_dev::{Layout, Options, ROLES};
use retorno_client::Profile;

use crate::{
    clock::{Clock, FixedClock},
    config::{
        CaseRules, Config, Delegation, Delivery, Health, Limits, Listen, Log, Metrics, PeerConfig,
        Reception, Storage, TlsPaths,
    },
    country::Country,
};

/// Why the region's files could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct DevError {
    /// What was being written, e.g. "writing .retorno-dev/MX/gateway.toml".
    pub what: String,
    /// Why it failed.
    pub reason: String,
}

/// Names what failed, for `map_err`.
fn failed<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> DevError {
    let what = what.into();
    move |error| DevError {
        what,
        reason: error.to_string(),
    }
}

/// Each dev gateway's at-rest key, relative to its folder (`.retorno-dev/CC`),
/// written with mode 0600 when the gateway's config is first written.
const DEV_KEY: &str = "keys/dev.key";

/// Options of `retorno-gateway dev`.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// Where the region's certificates, configs, profiles and data live.
    pub dir: PathBuf,
    /// The countries of the region, comma-separated.
    pub countries: Vec<Country>,
    /// The first country's Peer API port; the others follow.
    pub peer_port: u16,
    /// The first country's Agency API port; the others follow.
    pub agency_port: u16,
    /// The first country's metrics port (loopback); the others follow.
    pub metrics_port: u16,
    /// Runs the region's case rules this many days ahead of the system
    /// clock, so that a walkthrough can hand over on the agreed arrival day
    /// and follow up a month later without waiting. Development only: the
    /// gateways' `created_at` then lies about the date. Never run it
    /// backwards on the same data (a step would seem to precede the one before).
    pub danger_clock_ahead_days: u32,
}

impl DevOptions {
    /// The region's clock: the system's, or one running ahead of it.
    pub fn clock(&self) -> Result<Clock, FixedClock> {
        if self.danger_clock_ahead_days == 0 {
            return Ok(Clock::system());
        }
        let clock = Clock::adjustable();
        let ahead = jiff::SignedDuration::from_hours(24 * i64::from(self.danger_clock_ahead_days));
        clock.advance(ahead)?;
        Ok(clock)
    }
}

/// Where [`free_ports`] looks when the kernel does not say its ephemeral
/// range: below Linux's default one (32768–60999).
const FREE_PORTS: std::ops::Range<u16> = 15_000..32_000;

/// Where [`free_ports`] looks: the widest stretch of ports outside the
/// ephemeral range this machine's kernel gives outgoing connections
/// (`/proc/sys/net/ipv4/ip_local_port_range`), so that no connection can be
/// given a port between its choice and the gateway's bind. Machines differ:
/// some start the ephemeral range at 16000 or even 1024.
fn free_port_range() -> std::ops::Range<u16> {
    static RANGE: std::sync::OnceLock<std::ops::Range<u16>> = std::sync::OnceLock::new();
    RANGE
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
                .ok()
                .and_then(|text| outside_ephemeral(&text))
                .unwrap_or(FREE_PORTS)
        })
        .clone()
}

/// The widest stretch of ports from 10000 up (clear of the well-known
/// services' usual ports) outside the ephemeral range `text` gives
/// ("low high"), if one of at least 2,000 ports exists.
fn outside_ephemeral(text: &str) -> Option<std::ops::Range<u16>> {
    const FLOOR: u16 = 10_000;
    let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    let (low, high) = (bounds.next()??, bounds.next()??);
    let below = FLOOR..low.max(FLOOR);
    let above = high.saturating_add(1).max(FLOOR)..u16::MAX;
    let widest = if below.len() >= above.len() {
        below
    } else {
        above
    };
    (widest.len() >= 2_000).then_some(widest)
}

/// Where the next [`free_ports`] of this process starts looking, as an
/// offset into [`free_port_range`]; it starts at one derived from the process id.
static NEXT_FREE_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// `count` consecutive ports on 127.0.0.1 that are free now, and that no
/// other call of this process has handed out: for a dev region, whose
/// gateways must know each other's addresses before any of them binds. Two
/// concurrent callers in one process never get overlapping ports; a port
/// from the ephemeral range (what binding port 0 gives) could be taken by
/// any outgoing connection before the gateway binds it.
pub fn free_ports(count: u16) -> std::io::Result<u16> {
    let listeners = free_listeners(count)?;
    let first = listeners[0].local_addr()?.port();
    Ok(first)
}

/// [`free_ports`], still bound: a caller that binds in this process keeps
/// them, and no other socket can take one before it does.
pub fn free_listeners(count: u16) -> std::io::Result<Vec<std::net::TcpListener>> {
    use std::sync::atomic::Ordering;
    if count == 0 {
        return Err(std::io::Error::other("no ports asked for"));
    }
    let range = free_port_range();
    let span = u32::from(range.end - range.start);
    let _ = NEXT_FREE_PORT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let mut last_error = None;
    for _ in 0..200 {
        let offset = NEXT_FREE_PORT.fetch_add(u32::from(count), Ordering::Relaxed) % span;
        let Some(start) = u16::try_from(offset)
            .ok()
            .map(|offset| range.start + offset)
            .filter(|start| u32::from(*start) + u32::from(count) <= u32::from(range.end))
        else {
            continue;
        };
        let bound: std::io::Result<Vec<std::net::TcpListener>> = (start..start + count)
            .map(|port| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
            .collect();
        match bound {
            Ok(listeners) => return Ok(listeners),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free ports")))
}

/// Where the `i`th country's metrics listen.
pub fn metrics_at(options: &DevOptions, i: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, options.metrics_port.saturating_add(i)))
}

/// Writes whatever is missing (PKI, configs, profiles) and returns the config files.
pub fn prepare(options: &DevOptions) -> Result<Vec<PathBuf>, DevError> {
    let countries: Vec<Country> = {
        let mut seen = options.countries.clone();
        seen.dedup();
        seen
    };
    let layout = retorno_certs_dev::generate(&Options {
        out: options.dir.join("certs"),
        countries: countries.iter().map(ToString::to_string).collect(),
        force: false,
    })
    .map_err(failed("writing the development PKI"))?;
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
                crate::at_rest::write_new_key(&key)
                    .map_err(failed(format!("writing {}", key.display())))?;
            }
            let mut config = gateway_config(*country, &layout, &listen)?;
            config.metrics.listen = metrics_at(options, index);
            let text = config
                .to_toml()
                .map_err(failed("the gateway configuration"))?;
            write(&file, &text)?;
        }
        for role in ROLES {
            let profile_file = folder.join("profiles").join(format!("{role}.toml"));
            if !profile_file.exists() {
                let profile = agency_profile(*country, *country, role, &layout, &listen)?;
                write(&profile_file, &profile_text(&profile)?)?;
            }
        }
        for consulate in dev_delegations(*country, &countries) {
            let name = format!("consulate-{consulate}.toml");
            let profile_file = folder.join("profiles").join(name);
            if !profile_file.exists() {
                let profile = agency_profile(*country, consulate, "consulate", &layout, &listen)?;
                write(&profile_file, &profile_text(&profile)?)?;
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
) -> Result<Config, DevError> {
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
            .ok_or_else(|| failed("the region's addresses")("a country has none"))?
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
            .collect::<Result<_, DevError>>()?,
    })
}

/// The dev region's consular delegations: Honduras has Guatemala's
/// consulate act for it (when both are in the region), so that the
/// walkthrough can show a handoff acknowledged under a delegation.
pub fn dev_delegations(country: Country, region: &[Country]) -> Vec<Country> {
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
) -> Result<Profile, DevError> {
    let cc = country.as_str();
    let agency_cc = agency_country.as_str();
    // Profiles live one folder deeper (.retorno-dev/CC/profiles).
    let certs = |path: PathBuf| relative_to_country(layout, &path).map(|p| Path::new("..").join(p));
    Ok(Profile {
        gateway: listen
            .get(&country)
            .ok_or_else(|| failed("the region's addresses")("a country has none"))?
            .agency
            .to_string(),
        tls_name: Some(retorno_certs_dev::gateway_dns_name(cc)),
        ca: certs(layout.root_ca())?,
        cert: certs(layout.agency_cert(agency_cc, role))?,
        key: certs(layout.agency_key(agency_cc, role))?,
    })
}

/// A path under the PKI folder, as seen from a country's folder (`../certs/...`).
fn relative_to_country(layout: &Layout, path: &Path) -> Result<PathBuf, DevError> {
    let inside = path.strip_prefix(layout.dir()).map_err(failed(format!(
        "{} is not under {}",
        path.display(),
        layout.dir().display()
    )))?;
    Ok(Path::new("..").join("certs").join(inside))
}

fn profile_text(profile: &Profile) -> Result<String, DevError> {
    profile.to_toml().map_err(failed("an agency profile"))
}

fn write(file: &Path, text: &str) -> Result<(), DevError> {
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder)
            .map_err(failed(format!("creating {}", folder.display())))?;
    }
    std::fs::write(file, text).map_err(failed(format!("writing {}", file.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stretch chosen is outside whatever ephemeral range the kernel
    /// says: Linux's default, one that starts at 16000, one that leaves
    /// only the top, and none when nothing wide enough is left.
    #[test]
    fn the_free_range_avoids_the_kernels_ephemeral_range() {
        assert_eq!(outside_ephemeral("32768\t60999\n"), Some(10_000..32_768));
        assert_eq!(outside_ephemeral("16000 65535"), Some(10_000..16_000));
        assert_eq!(outside_ephemeral("1024 40000"), Some(40_001..65_535));
        assert_eq!(outside_ephemeral("1024 65535"), None);
        assert_eq!(outside_ephemeral("garbage"), None);
    }

    /// Concurrent callers get disjoint blocks, outside the ephemeral range,
    /// that are free to bind: what the README's tests, run in parallel, need.
    #[test]
    fn free_ports_are_disjoint_and_outside_the_ephemeral_range() {
        let blocks: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| free_ports(3).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ports: Vec<u16> = blocks.iter().flat_map(|&start| start..start + 3).collect();
        assert!(
            ports.iter().all(|port| free_port_range().contains(port)),
            "{ports:?}"
        );
        ports.sort_unstable();
        let before = ports.len();
        ports.dedup();
        assert_eq!(ports.len(), before, "a port handed out twice: {blocks:?}");
        for &start in &blocks {
            for port in start..start + 3 {
                std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
            }
        }
    }
}
