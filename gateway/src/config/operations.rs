//! The settings an operations team reads and tunes: `[metrics]`,
//! `[health]` and `[log]`. Kept apart from the rest of the configuration,
//! which is about cases and peers.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

/// Where the metrics listener binds by default: loopback only, so that the
/// counters of a country's traffic are not offered to its whole network.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// `[metrics]`: the Prometheus scrape endpoint, plain HTTP on its own port.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Whether the metrics listener runs at all.
    pub enabled: bool,
    /// The address of `GET /metrics`; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Lets `listen` be an address other than loopback. The scrape text
    /// holds no personal data, but it tells anyone who reaches it how much
    /// this country sends to whom and when: expose it through a TLS proxy
    /// or a firewall that admits only the Prometheus server instead.
    pub danger_listen_beyond_loopback: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: true,
            listen: DEFAULT_METRICS_LISTEN,
            danger_listen_beyond_loopback: false,
        }
    }
}

impl Metrics {
    /// The checks of `[metrics]`: loopback unless the operator says otherwise.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.enabled && !self.listen.ip().is_loopback() && !self.danger_listen_beyond_loopback {
            return Err((
                "metrics.listen",
                format!(
                    "{} is not a loopback address: the metrics are plain HTTP without authentication; keep 127.0.0.1 and put a TLS proxy in front (see the README, \"Operating a gateway\"), or set metrics.danger_listen_beyond_loopback = true",
                    self.listen
                ),
            ));
        }
        Ok(())
    }
}

/// Default of [`Health::probe_interval_ms`].
pub const DEFAULT_PROBE_INTERVAL_MS: u64 = 5_000;
/// Default of [`Health::probe_timeout_ms`].
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 5_000;
/// Default of [`Health::stuck_after_s`]: a courier that has not delivered
/// a reachable peer's oldest message in 15 minutes is stuck.
pub const DEFAULT_STUCK_AFTER_S: u64 = 900;

/// `[health]`: how the gRPC health status is computed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// How often the checks run (a store write and flush among them).
    pub probe_interval_ms: u64,
    /// A store probe (a write and its flush or commit) not finished after
    /// this long makes the gateway NOT_SERVING until it finishes: the store
    /// is not completing commits, so no "accepted" could be given.
    pub probe_timeout_ms: u64,
    /// A peer's oldest queued message older than this, while that peer
    /// answers its own health check, makes this gateway NOT_SERVING.
    pub stuck_after_s: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            probe_interval_ms: DEFAULT_PROBE_INTERVAL_MS,
            probe_timeout_ms: DEFAULT_PROBE_TIMEOUT_MS,
            stuck_after_s: DEFAULT_STUCK_AFTER_S,
        }
    }
}

impl Health {
    /// How often the checks run.
    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    /// How long a store probe may take before the gateway says it does not serve.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }

    /// The checks of `[health]`.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.probe_interval_ms < 10 {
            return Err((
                "health.probe_interval_ms",
                format!(
                    "{} is too short: at least 10 ms (default {DEFAULT_PROBE_INTERVAL_MS})",
                    self.probe_interval_ms
                ),
            ));
        }
        if self.probe_timeout_ms < 10 {
            return Err((
                "health.probe_timeout_ms",
                format!(
                    "{} is too short: at least 10 ms (default {DEFAULT_PROBE_TIMEOUT_MS})",
                    self.probe_timeout_ms
                ),
            ));
        }
        if self.stuck_after_s == 0 {
            return Err((
                "health.stuck_after_s",
                format!("must be at least 1 second (default {DEFAULT_STUCK_AFTER_S})"),
            ));
        }
        Ok(())
    }
}

/// `[log]`: how the gateway program writes its log lines.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` for people, `json` for log shippers.
    pub format: LogFormat,
}

/// The shape of a log line; both carry the same fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One line of text per event, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log shipper.
    Json,
}
