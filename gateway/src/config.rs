//! The gateway's configuration: one TOML file, read once, checked at start.
//!
//! Every error names the file and the field, and says how to fix it. Relative
//! paths in the file are taken relative to the file's own folder, so that a
//! region's configs can be moved together with their certificates.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::country::Country;

mod operations;

pub use operations::{
    DEFAULT_METRICS_LISTEN, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_STUCK_AFTER_S, Health, Log,
    LogFormat, Metrics,
};

/// Default limit on one message's encoded size: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// A gateway's whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This gateway's country; must match the URI in its certificate.
    pub country: Country,
    /// Where the sled database lives; created if missing.
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Listen,
    /// Certificates and keys.
    pub tls: TlsPaths,
    /// The other countries' gateways, by country code.
    #[serde(default)]
    pub peers: BTreeMap<Country, PeerConfig>,
    /// Size limits.
    #[serde(default)]
    pub limits: Limits,
    /// How the outbox is delivered.
    #[serde(default)]
    pub delivery: Delivery,
    /// What "durable" means on this machine.
    #[serde(default)]
    pub storage: Storage,
    /// Case rules that are this country's to set.
    #[serde(default)]
    pub case: CaseRules,
    /// Where and when this country receives its children; published to peers.
    #[serde(default)]
    pub reception: Reception,
    /// Alerts to webhooks (`[alerts]`, `[[alerts.webhooks]]`).
    #[serde(default)]
    pub alerts: AlertSettings,
    /// The Prometheus scrape endpoint (`[metrics]`).
    #[serde(default)]
    pub metrics: Metrics,
    /// How the gRPC health status is computed (`[health]`).
    #[serde(default)]
    pub health: Health,
    /// How the program writes its log (`[log]`).
    #[serde(default)]
    pub log: Log,
    /// Disclosure control of statistics (`[statistics]`: `min_cell`, default
    /// 5, never below 3; `method`, `suppress` or `round`).
    #[serde(default)]
    pub statistics: crate::statistics::Rule,
    /// Consulates of other countries that act for this one where it has
    /// none (`[[delegations]]`); published to peers with the reception
    /// policy, so that they accept what those consulates send through this
    /// gateway. Last in the struct: TOML writes arrays of tables after the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegations: Vec<Delegation>,
}

/// A consulate of another country that may act for this country: it
/// connects to this gateway's Agency API with its own country's
/// certificate and may do what this country's consulate may, in cases of
/// which this country is the origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// Whose consulate acts for this country, e.g. `GT`.
    pub consulate_country: Country,
    /// That country's agency CA, which certifies its consulate. The Agency
    /// API trusts it for certificates naming that country's consulate only.
    pub agency_ca: PathBuf,
}

/// Default hours before the agreed arrival from which a handoff may be acknowledged.
pub const DEFAULT_HANDOFF_MARGIN_HOURS: u32 = 12;
/// Default hours after the agreed arrival beyond which a handoff is flagged late.
pub const DEFAULT_HANDOFF_LATE_AFTER_HOURS: u32 = 48;
/// Default days by which a follow-up at N days may come before the N days are up.
pub const DEFAULT_FOLLOW_UP_TOLERANCE_DAYS: u32 = 3;
/// Default follow-ups after a reception, in days: the region's practice of a
/// visit after one, three and six months.
pub const DEFAULT_FOLLOW_UP_DAYS: [u32; 3] = [30, 90, 180];

/// Case rules set per country.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseRules {
    /// Countries with which a bilateral agreement accepts a best-interest
    /// determination made by the migration authority. Empty (strict) by
    /// default; both countries must list each other, and the case shows it.
    pub relax_best_interest_for: Vec<Country>,
    /// A handoff of a child this country receives is acknowledged no earlier
    /// than this many hours before the agreed arrival: a child cannot be
    /// handed over before it can have arrived. Published with the reception
    /// policy, so that the destination applies the same rule.
    pub handoff_margin_hours: u32,
    /// A handoff acknowledged more than this many hours after the agreed
    /// arrival is accepted (the child is in custody; refusing the record
    /// would not undo that) and flagged late in both timelines.
    pub handoff_late_after_hours: u32,
    /// A follow-up report "at N days" comes no earlier than N days after the
    /// reception, less this many days (a visit is planned around a date).
    pub follow_up_tolerance_days: u32,
    /// The follow-ups this country expects after receiving a child, in days
    /// after the reception (each at least 1, at most 3650): the console lists
    /// them as due and overdue. Published with the reception policy.
    pub follow_up_days: Vec<u32>,
}

impl Default for CaseRules {
    fn default() -> Self {
        CaseRules {
            relax_best_interest_for: Vec::new(),
            handoff_margin_hours: DEFAULT_HANDOFF_MARGIN_HOURS,
            handoff_late_after_hours: DEFAULT_HANDOFF_LATE_AFTER_HOURS,
            follow_up_tolerance_days: DEFAULT_FOLLOW_UP_TOLERANCE_DAYS,
            follow_up_days: DEFAULT_FOLLOW_UP_DAYS.to_vec(),
        }
    }
}

impl CaseRules {
    /// The timing this country publishes with its reception policy.
    pub fn timing(&self) -> retorno_proto::v1::CaseTiming {
        retorno_proto::v1::CaseTiming {
            handoff_margin_hours: self.handoff_margin_hours,
            handoff_late_after_hours: self.handoff_late_after_hours,
            follow_up_tolerance_days: self.follow_up_tolerance_days,
            follow_up_days: self.follow_up_days.clone(),
        }
    }

    /// Bounds that keep the rules meaningful: a margin or tolerance so wide
    /// that it admits a step before the one it follows is no rule.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.handoff_margin_hours > 72 {
            return Err((
                "case.handoff_margin_hours",
                format!(
                    "{} hours would admit a handoff days before the child arrives: at most 72 (default {DEFAULT_HANDOFF_MARGIN_HOURS})",
                    self.handoff_margin_hours
                ),
            ));
        }
        if self.handoff_late_after_hours == 0 {
            return Err((
                "case.handoff_late_after_hours",
                format!("must be at least 1 hour (default {DEFAULT_HANDOFF_LATE_AFTER_HOURS})"),
            ));
        }
        if let Some(days) = self
            .follow_up_days
            .iter()
            .find(|days| !(1..=3650).contains(*days))
        {
            return Err((
                "case.follow_up_days",
                format!(
                    "{days} is not a number of days from 1 to 3650 after the reception (default {DEFAULT_FOLLOW_UP_DAYS:?})"
                ),
            ));
        }
        if self.follow_up_tolerance_days > 14 {
            return Err((
                "case.follow_up_tolerance_days",
                format!(
                    "{} days would admit a 14-day follow-up on the day of the reception: at most 14 (default {DEFAULT_FOLLOW_UP_TOLERANCE_DAYS})",
                    self.follow_up_tolerance_days
                ),
            ));
        }
        Ok(())
    }
}

/// This country's reception policy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reception {
    /// Points of entry with their windows. Proposals to this country must name one.
    pub points: Vec<crate::policy::PointConfig>,
}

/// The two listeners. Both require a client certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// The Peer API, for other countries' gateways (trusts the regional root).
    pub peer: SocketAddr,
    /// The Agency API, for this country's agencies (trusts this country's agency CA).
    pub agency: SocketAddr,
}

/// Certificate and key files, PEM.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    /// The regional root CA: peers must be certified under it.
    pub regional_root: PathBuf,
    /// This gateway's certificate (server and client use), issued by the regional root.
    pub gateway_cert: PathBuf,
    /// This gateway's private key.
    pub gateway_key: PathBuf,
    /// This country's agency CA: agencies must be certified under it.
    pub agency_ca: PathBuf,
    /// PEM revocation lists (of the regional root, of the agency CA, or both),
    /// honoured on both listeners and on connections to peers. A certificate
    /// whose issuer has no list here is not checked for revocation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<PathBuf>,
    /// How often every file above is re-read; changed material is checked
    /// and installed without a restart.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
    /// A certificate (own, regional root, agency CA) with fewer days left than
    /// this is logged as a warning at start and at every reload.
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
}

/// Default of [`TlsPaths::reload_interval_ms`]: ten seconds, so that a
/// rotated certificate is in use within seconds at a negligible cost
/// (a few small files read).
pub const DEFAULT_RELOAD_INTERVAL_MS: u64 = 10_000;

/// Default of [`TlsPaths::expiry_warning_days`]: a month, time enough to renew.
pub const DEFAULT_EXPIRY_WARNING_DAYS: u32 = 30;

fn default_reload_interval_ms() -> u64 {
    DEFAULT_RELOAD_INTERVAL_MS
}

fn default_expiry_warning_days() -> u32 {
    DEFAULT_EXPIRY_WARNING_DAYS
}

impl TlsPaths {
    /// How often the TLS files are re-read.
    pub fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.reload_interval_ms)
    }
}

/// Where to reach a peer gateway.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// `host:port` of the peer's Peer API.
    pub address: String,
    /// The DNS name to check in the peer's certificate; defaults to the host of `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
}

impl PeerConfig {
    /// The name the peer's certificate must carry.
    pub fn server_name(&self) -> &str {
        match &self.tls_name {
            Some(name) => name,
            None => self
                .address
                .rsplit_once(':')
                .map_or(self.address.as_str(), |(host, _)| host),
        }
    }
}

/// Limits on what callers may send.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted message, encoded, in bytes.
    pub max_message_bytes: usize,
    /// How long a TLS handshake may take before the connection is dropped.
    pub handshake_timeout_ms: u64,
    /// Submits per second one agency may sustain; a runaway script or a
    /// stolen certificate cannot flood the outbox.
    pub agency_submits_per_second: u32,
    /// Submits one agency may make in a burst above that rate.
    pub agency_submit_burst: u32,
    /// Delivery streams one peer gateway may hold open at once. A new stream
    /// beyond it replaces the peer's oldest idle one (its new connection is
    /// the best evidence that the old one is dead).
    pub streams_per_peer: usize,
    /// Authenticated connections one certificate identity may hold open on
    /// one listener; beyond it a new connection is closed after the handshake.
    pub connections_per_identity: usize,
    /// How long an authenticated connection may stay open with no call in
    /// progress before it is closed (an open subscription is a call).
    pub idle_timeout_ms: u64,
    /// How often both listeners ping a connection that has sent nothing
    /// (HTTP/2 PING); also the TCP keepalive time.
    pub keepalive_interval_ms: u64,
    /// How long a ping may go unanswered before the connection is closed as dead.
    pub keepalive_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            handshake_timeout_ms: 10_000,
            agency_submits_per_second: 200,
            agency_submit_burst: 1000,
            streams_per_peer: 4,
            connections_per_identity: 256,
            idle_timeout_ms: 300_000,
            keepalive_interval_ms: 20_000,
            keepalive_timeout_ms: 20_000,
        }
    }
}

impl Limits {
    /// How long a connection may stay open with no call in progress.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The listeners' HTTP/2 and TCP keepalive.
    pub fn keepalive(&self) -> Keepalive {
        Keepalive {
            interval: Duration::from_millis(self.keepalive_interval_ms),
            timeout: Duration::from_millis(self.keepalive_timeout_ms),
        }
    }

    /// The zero values that would disable a safeguard, named for the error.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let at_least_one = [
            (
                "limits.agency_submits_per_second",
                u64::from(self.agency_submits_per_second),
            ),
            (
                "limits.agency_submit_burst",
                u64::from(self.agency_submit_burst),
            ),
            ("limits.streams_per_peer", self.streams_per_peer as u64),
            (
                "limits.connections_per_identity",
                self.connections_per_identity as u64,
            ),
            ("limits.idle_timeout_ms", self.idle_timeout_ms),
            ("limits.keepalive_interval_ms", self.keepalive_interval_ms),
            ("limits.keepalive_timeout_ms", self.keepalive_timeout_ms),
        ];
        if let Some((field, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err((field, "must be at least 1".into()));
        }
        if self.max_message_bytes < 1024 {
            return Err((
                "limits.max_message_bytes",
                "must be at least 1024 bytes".into(),
            ));
        }
        Ok(())
    }
}

/// HTTP/2 keepalive: a ping after `interval` without traffic, and the
/// connection closed as dead if `timeout` passes without its answer. A
/// partition that drops every packet (no FIN, no RST) is found this way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Quiet time before a ping.
    pub interval: Duration,
    /// How long the answer may take.
    pub timeout: Duration,
}

impl Default for Keepalive {
    /// A ping after 20 s of silence, answered within 20 s.
    fn default() -> Self {
        Keepalive {
            interval: retorno_client::tls::KEEPALIVE,
            timeout: retorno_client::tls::KEEPALIVE,
        }
    }
}

/// Delivery tuning.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Envelopes per batch on the peer stream.
    pub batch_size: usize,
    /// Batches sent but not yet answered, per peer.
    pub max_batches_in_flight: usize,
    /// First wait after a failed connection.
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts.
    pub backoff_max_ms: u64,
    /// How often the courier pings a peer connection that has sent nothing
    /// (HTTP/2 PING, also while idle).
    pub keepalive_interval_ms: u64,
    /// How long a ping may go unanswered before the courier drops the
    /// connection as dead and reconnects.
    pub keepalive_timeout_ms: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            batch_size: 128,
            max_batches_in_flight: 8,
            backoff_initial_ms: 100,
            backoff_max_ms: 30_000,
            keepalive_interval_ms: 20_000,
            keepalive_timeout_ms: 20_000,
        }
    }
}

impl Delivery {
    /// First wait after a failed connection.
    pub fn backoff_initial(&self) -> Duration {
        Duration::from_millis(self.backoff_initial_ms)
    }

    /// Longest wait between attempts.
    pub fn backoff_max(&self) -> Duration {
        Duration::from_millis(self.backoff_max_ms)
    }

    /// The courier's HTTP/2 keepalive.
    pub fn keepalive(&self) -> Keepalive {
        Keepalive {
            interval: Duration::from_millis(self.keepalive_interval_ms),
            timeout: Duration::from_millis(self.keepalive_timeout_ms),
        }
    }
}

/// When a condition becomes an alert, and where alerts go ([`crate::alerts`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// An alert per threshold when a certificate in use expires within this
    /// many days (each threshold fires once).
    pub certificate_days: Vec<u32>,
    /// A peer unreachable for longer than this is an alert.
    pub peer_unreachable_after_s: u64,
    /// A peer's oldest queued message older than this is an alert.
    pub queue_age_s: u64,
    /// A condition that still holds is sent again after this long.
    pub repeat_interval_s: u64,
    /// How often conditions are checked.
    pub check_interval_ms: u64,
    /// First wait after a webhook failed; doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    /// Longest wait between attempts to deliver to a webhook.
    pub retry_max_ms: u64,
    /// Where alert events are posted, as JSON. Last: TOML writes arrays of tables after the rest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            certificate_days: vec![30, 7],
            peer_unreachable_after_s: 300,
            queue_age_s: 900,
            repeat_interval_s: 3600,
            check_interval_ms: 5000,
            retry_initial_ms: 1000,
            retry_max_ms: 60_000,
            webhooks: Vec::new(),
        }
    }
}

/// A receiver of alert events (`[[alerts.webhooks]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://host:port/path` or `https://host:port/path`.
    pub url: String,
    /// Sent as `Authorization: Bearer ...` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// The CA that certifies an `https` receiver (PEM); required for `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// A client certificate for receivers that ask for one (PEM), with `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

impl AlertSettings {
    fn check(&self) -> Result<(), (String, String)> {
        if self.certificate_days.contains(&0) {
            return Err((
                "alerts.certificate_days".into(),
                "each threshold must be at least 1 day (default [30, 7])".into(),
            ));
        }
        if self.check_interval_ms < 10 || self.retry_initial_ms == 0 || self.repeat_interval_s == 0
        {
            return Err((
                "alerts".into(),
                "check_interval_ms must be at least 10, retry_initial_ms and repeat_interval_s at least 1 (defaults 5000, 1000, 3600)".into(),
            ));
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            let field = |name: &str| format!("alerts.webhooks[{i}].{name}");
            let https = hook.url.starts_with("https://");
            if !https && !hook.url.starts_with("http://") {
                return Err((
                    field("url"),
                    format!("{:?} must start with http:// or https://", hook.url),
                ));
            }
            if https && hook.ca.is_none() {
                return Err((
                    field("ca"),
                    "an https webhook needs the CA that certifies it (a PEM file)".into(),
                ));
            }
            if hook.client_cert.is_some() != hook.client_key.is_some() {
                return Err((
                    field("client_cert"),
                    "give client_cert and client_key together".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Storage settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// The storage engine: `"sled"` (the default, embedded) or `"postgres"`.
    pub backend: crate::storage::Backend,
    /// The PostgreSQL database (`postgres://user:password@host:port/db`),
    /// required with `backend = "postgres"` and refused otherwise. Never
    /// logged whole: it may hold a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<DatabaseUrl>,
    /// The PEM file of the CA that signed the PostgreSQL server's
    /// certificate. Set, every connection to PostgreSQL is TLS and the
    /// server's certificate must chain to this CA and name the URL's host;
    /// unset, connections are in the clear (a private network, or the same
    /// machine). PostgreSQL only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// The PEM file of this node's client certificate for PostgreSQL (with
    /// [`Storage::tls_key`]; needs `tls_ca`): presented on every
    /// connection, so that a server whose `pg_hba.conf` says `hostssl ...
    /// cert` knows the gateway by its certificate (its common name is the
    /// database user) and `url` holds no password. PostgreSQL only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM file of the private key of [`Storage::tls_cert`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Connections to PostgreSQL this node keeps at most.
    pub pool_size: usize,
    /// This node's name in the gateway's lease (PostgreSQL); the host name
    /// when not set ([`Storage::node_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How long a lease on PostgreSQL lasts without renewal: the longest a
    /// dead holder keeps the other nodes from taking over.
    pub lease_seconds: u64,
    /// What a flush must reach before the gateway says "accepted" or signs a receipt.
    pub durability: Durability,
    /// sled's page cache, in MiB. sled's own default (1 GiB) would let a long
    /// peer outage grow the process far beyond what the backlog needs; 16
    /// keeps a million queued notices under 200 MB and costs no throughput
    /// (`retorno-bench --backlog 1000000`).
    pub cache_mb: u64,
    /// Key files (64 hex digits each, mode 0600) that encrypt personal data
    /// at rest; see [`crate::at_rest`]. The last one seals new records and
    /// every one opens old records, so a key is rotated by appending a file.
    /// Empty keeps records in the clear, with a warning at start, so that a
    /// gateway upgraded from before encryption keeps working until one is set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PathBuf>,
    /// Days after its reception (RECEIVED or FOLLOW_UP) that a case's
    /// personal data is purged; hashes, receipts and the timeline stay.
    pub retention_received_days: u32,
    /// Days after its withdrawal that a case's personal data is purged, and
    /// after arrival that a message refused by the case rules is.
    pub retention_withdrawn_days: u32,
    /// How often the purge runs (it also runs at start), in seconds.
    pub retention_check_interval_s: u64,
}

/// Default of [`Storage::pool_size`].
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Default of [`Storage::lease_seconds`]: a standby node takes over within
/// seconds of the holder's death.
pub const DEFAULT_LEASE_SECONDS: u64 = 5;

/// A database URL: shown without its password (`Debug`), so that printing
/// a configuration never leaks it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A URL from its text.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The whole URL, password included: for connecting only, never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***` ([`redact_url`]).
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// `url` with any password replaced by `***`: the one in the user part
/// (`USER:PASSWORD@`) and any `...password=` parameter. Where the parts are
/// unclear it hides more, never less. The one function that shows a
/// database URL to a person or a log.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = match rest.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _password)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => rest.to_owned(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let parameters: Vec<String> = query
                .split('&')
                .map(|parameter| match parameter.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().ends_with("password") => {
                        format!("{key}=***")
                    }
                    _ => parameter.to_owned(),
                })
                .collect();
            format!("{path}?{}", parameters.join("&"))
        }
        None => rest,
    };
    match scheme {
        "" => rest,
        scheme => format!("{scheme}://{rest}"),
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Default of [`Storage::retention_received_days`]: a year of follow-up.
pub const DEFAULT_RETENTION_RECEIVED_DAYS: u32 = 365;
/// Default of [`Storage::retention_withdrawn_days`]: time for appeals and
/// questions after a child stays, and no longer.
pub const DEFAULT_RETENTION_WITHDRAWN_DAYS: u32 = 90;
/// Default of [`Storage::retention_check_interval_s`]: hourly, so that
/// nothing is kept much past its day at the cost of one scan of the cases.
pub const DEFAULT_RETENTION_CHECK_INTERVAL_S: u64 = 3600;

impl Default for Storage {
    fn default() -> Self {
        Storage {
            backend: crate::storage::Backend::default(),
            url: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            pool_size: DEFAULT_POOL_SIZE,
            node: None,
            lease_seconds: DEFAULT_LEASE_SECONDS,
            durability: Durability::default(),
            cache_mb: 16,
            keys: Vec::new(),
            retention_received_days: DEFAULT_RETENTION_RECEIVED_DAYS,
            retention_withdrawn_days: DEFAULT_RETENTION_WITHDRAWN_DAYS,
            retention_check_interval_s: DEFAULT_RETENTION_CHECK_INTERVAL_S,
        }
    }
}

impl Storage {
    /// This node's name in the gateway's lease: `node`, else the host name.
    pub fn node_name(&self) -> String {
        if let Some(node) = &self.node {
            return node.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|name| name.trim().to_owned())
            .ok()
            .filter(|name| !name.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "node".to_owned())
    }

    /// The TLS files for PostgreSQL: `None` when `tls_ca` is not set.
    pub fn tls_files(&self) -> Option<crate::kv::postgres::TlsFiles<'_>> {
        Some(crate::kv::postgres::TlsFiles {
            ca: self.tls_ca.as_deref()?,
            client: self.tls_cert.as_deref().zip(self.tls_key.as_deref()),
        })
    }

    /// The checks of the engine's settings (backend, url, TLS files),
    /// which [`crate::kv::Db::open`] runs too, so that a configuration built
    /// in code cannot skip them: a client certificate without `tls_ca` is
    /// refused rather than left unused on a connection without TLS. A
    /// refusal calls the settings by `names` (the file's, or `migrate`'s
    /// flags that give them).
    pub fn check_engine(
        &self,
        names: crate::kv::postgres::SettingNames,
    ) -> Result<(), (&'static str, String)> {
        match (self.backend, &self.url) {
            (crate::storage::Backend::Postgres, None) => {
                return Err((
                    names.url,
                    "backend = \"postgres\" needs the database: url = \"postgres://user@host:5432/database\"".into(),
                ));
            }
            (crate::storage::Backend::Postgres, Some(url)) => {
                crate::kv::postgres::parse_url(url.expose(), self.tls_ca.as_deref(), names)?;
            }
            (crate::storage::Backend::Sled, _) => {
                let tls = [
                    (names.tls_ca, self.tls_ca.is_some()),
                    (names.tls_cert, self.tls_cert.is_some()),
                    (names.tls_key, self.tls_key.is_some()),
                ];
                if let Some((field, _)) = tls.into_iter().find(|(_, set)| *set) {
                    return Err((
                        field,
                        "only backend = \"postgres\" connects to a server; remove it, or set backend = \"postgres\"".into(),
                    ));
                }
                if self.url.is_some() {
                    return Err((
                        names.url,
                        "only backend = \"postgres\" uses a url; remove it, or set backend = \"postgres\"".into(),
                    ));
                }
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err((
                    names.tls_key,
                    format!(
                        "{} is set: name the PEM file of its private key too",
                        names.tls_cert
                    ),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    names.tls_cert,
                    format!(
                        "{} is set: name the PEM file of the client certificate too",
                        names.tls_key
                    ),
                ));
            }
            (Some(_), Some(_)) if self.tls_ca.is_none() => {
                return Err((
                    names.tls_ca,
                    format!(
                        "a client certificate ({}) goes only over TLS: set {} to the PEM file of the CA that signed the PostgreSQL server's certificate",
                        names.tls_cert, names.tls_ca
                    ),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The checks of `[storage]`: the engine's settings, retention periods
    /// and the key files.
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.check_engine(crate::kv::postgres::SettingNames::STORAGE)?;
        if self.pool_size == 0 {
            return Err((
                "storage.pool_size",
                format!("must be at least 1 (default {DEFAULT_POOL_SIZE})"),
            ));
        }
        if self.lease_seconds == 0 {
            return Err((
                "storage.lease_seconds",
                format!("must be at least 1 second (default {DEFAULT_LEASE_SECONDS})"),
            ));
        }
        if self
            .node
            .as_ref()
            .is_some_and(|node| node.trim().is_empty())
        {
            return Err((
                "storage.node",
                "must not be empty; remove it to use the host name".into(),
            ));
        }
        if self.retention_received_days == 0 || self.retention_withdrawn_days == 0 {
            return Err((
                "storage",
                "retention_received_days and retention_withdrawn_days must be at least 1 day (defaults 365 and 90)".into(),
            ));
        }
        if self.retention_check_interval_s == 0 {
            return Err((
                "storage.retention_check_interval_s",
                format!("must be at least 1 second (default {DEFAULT_RETENTION_CHECK_INTERVAL_S})"),
            ));
        }
        crate::at_rest::Vault::load(&self.keys)
            .map_err(|error| ("storage.keys", error.to_string()))?;
        Ok(())
    }
}

/// What "durable" means; see the README's section on durability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// sled's flush: the data is in the operating system's page cache and
    /// survives a crash of the gateway process, not a power cut: a simulated
    /// power cut lost 1,765 of 2,265 accepted notices in this mode. Only by
    /// explicit choice, with a warning at start and in `check-config`.
    ProcessCrash,
    /// sled's flush followed by a device sync of everything sled's recovery
    /// reads (its log, config, new blob files and their folders): survives a
    /// power cut on a disk that honours cache flushes. The default: it cost
    /// no measurable throughput in `retorno-bench`.
    #[default]
    PowerLoss,
}

impl Durability {
    /// Why this setting needs an operator's attention, if it does: said at
    /// start (a WARN line) and by `check-config`, from this one place.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            Durability::PowerLoss => None,
            Durability::ProcessCrash => Some(
                "storage.durability = \"process-crash\": what this gateway accepted in the last moments before a power cut, a hypervisor reset or a kernel panic is LOST (it survives only a crash of the gateway process); remove the line to use the default \"power-loss\"",
            ),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the configuration: {source}")]
    Read {
        /// The config file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not match the expected shape.
    #[error("{file}: {message}")]
    Parse {
        /// The config file.
        file: PathBuf,
        /// toml's message, which names the field and the line.
        message: String,
    },
    /// A field has a value that cannot work.
    #[error("{file}: {field}: {problem}")]
    Invalid {
        /// The config file, or "(built in code)".
        file: PathBuf,
        /// The field, as a TOML path.
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

impl Config {
    /// Reads and checks a config file; relative paths become relative to its folder.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        config.resolve_paths(file.parent().unwrap_or(Path::new(".")));
        config.check(file)?;
        Ok(config)
    }

    /// Reads and checks a config file, and that every file it names can be
    /// read, so that a wrong path is reported with the config file and the
    /// field (`tls.regional_root`), not only as a path the TLS loader could
    /// not open. The programs load configs this way; [`Config::load`] alone
    /// leaves the files to whoever opens them.
    pub fn load_with_files(file: &Path) -> Result<Config, ConfigError> {
        let config = Config::load(file)?;
        config.check_files(file)?;
        Ok(config)
    }

    /// Every file the config names, with its field as a TOML path.
    pub fn files(&self) -> Vec<(String, &Path)> {
        let mut files = vec![
            (
                "tls.regional_root".to_owned(),
                self.tls.regional_root.as_path(),
            ),
            (
                "tls.gateway_cert".to_owned(),
                self.tls.gateway_cert.as_path(),
            ),
            ("tls.gateway_key".to_owned(), self.tls.gateway_key.as_path()),
            ("tls.agency_ca".to_owned(), self.tls.agency_ca.as_path()),
        ];
        for (i, path) in self.tls.crls.iter().enumerate() {
            files.push((format!("tls.crls[{i}]"), path.as_path()));
        }
        for (i, path) in self.storage.keys.iter().enumerate() {
            files.push((format!("storage.keys[{i}]"), path.as_path()));
        }
        for (field, file) in [
            ("storage.tls_ca", &self.storage.tls_ca),
            ("storage.tls_cert", &self.storage.tls_cert),
            ("storage.tls_key", &self.storage.tls_key),
        ] {
            if let Some(file) = file {
                files.push((field.to_owned(), file.as_path()));
            }
        }
        for (i, delegation) in self.delegations.iter().enumerate() {
            files.push((
                format!("delegations[{i}].agency_ca"),
                delegation.agency_ca.as_path(),
            ));
        }
        files
    }

    /// Checks that every file the config names is a file this process can open.
    pub fn check_files(&self, file: &Path) -> Result<(), ConfigError> {
        for (field, path) in self.files() {
            let problem = match std::fs::metadata(path) {
                Ok(meta) if !meta.is_file() => Some("is not a file".to_owned()),
                Ok(_) => std::fs::File::open(path)
                    .err()
                    .map(|e| format!("cannot be read ({e})")),
                Err(e) => Some(format!("cannot be read ({e})")),
            };
            if let Some(problem) = problem {
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    field,
                    problem: format!(
                        "{} {problem}: fix the path (a relative path is taken from the folder of {})",
                        path.display(),
                        file.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Writes the config as TOML (used by `retorno-gateway dev`).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.data_dir);
        resolve(&mut self.tls.regional_root);
        resolve(&mut self.tls.gateway_cert);
        resolve(&mut self.tls.gateway_key);
        resolve(&mut self.tls.agency_ca);
        self.tls.crls.iter_mut().for_each(resolve);
        self.storage.keys.iter_mut().for_each(resolve);
        for file in [
            &mut self.storage.tls_ca,
            &mut self.storage.tls_cert,
            &mut self.storage.tls_key,
        ] {
            file.iter_mut().for_each(resolve);
        }
        for delegation in &mut self.delegations {
            resolve(&mut delegation.agency_ca);
        }
    }

    /// The countries whose consulates act for this one, from `[[delegations]]`.
    pub fn delegated_consulates(&self) -> BTreeSet<Country> {
        self.delegations
            .iter()
            .map(|d| d.consulate_country)
            .collect()
    }

    /// The checks of `[[delegations]]`: another country each, once each,
    /// under its own agency CA.
    fn check_delegations(&self) -> Result<(), (String, String)> {
        let mut seen = BTreeSet::new();
        for (i, delegation) in self.delegations.iter().enumerate() {
            let cc = delegation.consulate_country;
            if cc == self.country {
                return Err((
                    format!("delegations[{i}].consulate_country"),
                    format!(
                        "{cc} cannot delegate to its own consulate: remove this entry ({cc}'s consulates connect with certificates from tls.agency_ca)"
                    ),
                ));
            }
            if !seen.insert(cc) {
                return Err((
                    format!("delegations[{i}].consulate_country"),
                    format!(
                        "{cc} is delegated to twice: keep one [[delegations]] entry per country"
                    ),
                ));
            }
            if delegation.agency_ca == self.tls.agency_ca {
                return Err((
                    format!("delegations[{i}].agency_ca"),
                    format!(
                        "is {}'s own agency CA (tls.agency_ca): give {cc}'s agency CA, which certifies {cc}'s consulate",
                        self.country
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the values that the shape alone does not. `file` names the source in errors.
    pub fn check(&self, file: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, problem: String| ConfigError::Invalid {
            file: file.to_owned(),
            field: field.to_owned(),
            problem,
        };
        if self.peers.contains_key(&self.country) {
            return Err(invalid(
                &format!("peers.{}", self.country),
                "a gateway cannot be its own peer: remove this entry".into(),
            ));
        }
        for (country, peer) in &self.peers {
            if !peer.address.contains(':') {
                return Err(invalid(
                    &format!("peers.{country}.address"),
                    format!("{:?} has no port: write it as host:port", peer.address),
                ));
            }
        }
        if let Err((field, problem)) = self.limits.check() {
            return Err(invalid(field, problem));
        }
        if self.tls.reload_interval_ms < 10 {
            return Err(invalid(
                "tls.reload_interval_ms",
                format!(
                    "{} is too short: re-reading the files needs at least 10 ms (default {DEFAULT_RELOAD_INTERVAL_MS})",
                    self.tls.reload_interval_ms
                ),
            ));
        }
        if let Err((i, bad)) = crate::policy::published(self.country, &self.reception.points) {
            return Err(invalid(
                &format!("reception.points[{i}].{}", bad.field),
                bad.problem,
            ));
        }
        if let Err((field, problem)) = self.storage.check() {
            return Err(invalid(field, problem));
        }
        if let Err((field, problem)) = self.case.check() {
            return Err(invalid(field, problem));
        }
        if let Err((field, problem)) = self.check_delegations() {
            return Err(invalid(&field, problem));
        }
        if let Err((field, problem)) = self.alerts.check() {
            return Err(invalid(&field, problem));
        }
        if let Err((field, problem)) = self.metrics.check().and_then(|()| self.health.check()) {
            return Err(invalid(field, problem));
        }
        if self.delivery.batch_size == 0 || self.delivery.max_batches_in_flight == 0 {
            return Err(invalid(
                "delivery",
                "batch_size and max_batches_in_flight must be at least 1".into(),
            ));
        }
        if self.delivery.keepalive_interval_ms == 0 || self.delivery.keepalive_timeout_ms == 0 {
            return Err(invalid(
                "delivery",
                "keepalive_interval_ms and keepalive_timeout_ms must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_survives_a_power_cut_unless_the_operator_chooses_otherwise() {
        let (_dir, file) = write(GOOD);
        let config = Config::load(&file).unwrap();
        assert_eq!(config.storage.durability, Durability::PowerLoss);
        assert_eq!(Durability::PowerLoss.warning(), None);
        let text = GOOD.replace(
            "[listen]",
            "[storage]\ndurability = \"process-crash\"\n[listen]",
        );
        let (_dir, file) = write(&text);
        let config = Config::load(&file).unwrap();
        let warning = config.storage.durability.warning().unwrap();
        assert!(
            warning.contains("power cut") && warning.contains("LOST"),
            "{warning}"
        );
    }

    #[test]
    fn the_storage_engine_is_sled_and_an_unknown_one_is_refused_naming_the_accepted_ones() {
        let (_dir, file) = write(GOOD);
        let config = Config::load(&file).unwrap();
        assert_eq!(config.storage.backend, crate::storage::Backend::Sled);
        let text = GOOD.replace("[listen]", "[storage]\nbackend = \"sled\"\n[listen]");
        let (_dir, file) = write(&text);
        assert_eq!(
            Config::load(&file).unwrap().storage.backend,
            crate::storage::Backend::Sled
        );
        let error =
            load_error(&GOOD.replace("[listen]", "[storage]\nbackend = \"mysql\"\n[listen]"));
        assert!(
            error.contains("backend")
                && error.contains("mysql")
                && error.contains("`sled`")
                && error.contains("`postgres`"),
            "{error}"
        );
    }

    #[test]
    fn postgres_needs_a_url_and_sled_refuses_one_naming_the_field() {
        let error =
            load_error(&GOOD.replace("[listen]", "[storage]\nbackend = \"postgres\"\n[listen]"));
        assert!(
            error.contains("storage.url") && error.contains("postgres://"),
            "{error}"
        );

        let text = GOOD.replace(
            "[listen]",
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://gw:s3cret@db.mx:5432/retorno\"\nnode = \"mx-a\"\n[listen]",
        );
        let (_dir, file) = write(&text);
        let config = Config::load(&file).unwrap();
        assert_eq!(config.storage.backend, crate::storage::Backend::Postgres);
        assert_eq!(config.storage.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(config.storage.lease_seconds, DEFAULT_LEASE_SECONDS);
        assert_eq!(config.storage.node_name(), "mx-a");
        let shown = format!("{:?}", config.storage);
        assert!(
            !shown.contains("s3cret") && shown.contains("postgres://gw:***@db.mx:5432/retorno"),
            "{shown}"
        );

        let error = load_error(&GOOD.replace(
            "[listen]",
            "[storage]\nurl = \"postgres://gw@db.mx/retorno\"\n[listen]",
        ));
        assert!(
            error.contains("storage.url") && error.contains("backend = \"postgres\""),
            "{error}"
        );

        let error = load_error(&GOOD.replace(
            "[listen]",
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://gw@db.mx/retorno\"\npool_size = 0\n[listen]",
        ));
        assert!(error.contains("storage.pool_size"), "{error}");

        // TLS to PostgreSQL: sslmode=require needs the CA to verify the
        // server; sled has no server.
        let error = load_error(&GOOD.replace(
            "[listen]",
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://gw@db.mx/retorno?sslmode=require\"\n[listen]",
        ));
        assert!(
            error.contains("storage.url") && error.contains("storage.tls_ca is not set"),
            "{error}"
        );
        let error =
            load_error(&GOOD.replace("[listen]", "[storage]\ntls_ca = \"ca.pem\"\n[listen]"));
        assert!(
            error.contains("storage.tls_ca") && error.contains("only backend = \"postgres\""),
            "{error}"
        );

        // A client certificate: with its key, and over TLS only.
        let postgres = "[storage]\nbackend = \"postgres\"\nurl = \"postgres://gw@db.mx/retorno\"\n";
        for (storage, field, says) in [
            (
                "tls_ca = \"ca.pem\"\ntls_cert = \"gw.pem\"\n",
                "storage.tls_key",
                "private key",
            ),
            (
                "tls_ca = \"ca.pem\"\ntls_key = \"gw.key\"\n",
                "storage.tls_cert",
                "client certificate",
            ),
            (
                "tls_cert = \"gw.pem\"\ntls_key = \"gw.key\"\n",
                "storage.tls_ca",
                "only over TLS",
            ),
        ] {
            let error =
                load_error(&GOOD.replace("[listen]", &format!("{postgres}{storage}[listen]")));
            assert!(
                error.contains(field) && error.contains(says),
                "{storage}: {error}"
            );
        }
        let error = load_error(&GOOD.replace(
            "[listen]",
            "[storage]\ntls_cert = \"gw.pem\"\ntls_key = \"gw.key\"\n[listen]",
        ));
        assert!(
            error.contains("storage.tls_cert") && error.contains("only backend = \"postgres\""),
            "{error}"
        );
    }

    /// A configuration built in code (a test, `dev`) does not pass through
    /// `Config::load`: opening its database runs the same engine checks, so
    /// a client certificate without `tls_ca` is refused before any
    /// connection instead of being left unused on a connection without TLS.
    #[test]
    fn opening_a_database_runs_the_engine_checks_of_a_configuration_built_in_code() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = Storage {
            backend: crate::storage::Backend::Postgres,
            url: Some(DatabaseUrl::new("postgres://gw@127.0.0.1:1/retorno")),
            tls_cert: Some(dir.path().join("gw.pem")),
            tls_key: Some(dir.path().join("gw.key")),
            ..Storage::default()
        };
        let Err(error) = crate::kv::Db::open(dir.path(), &storage) else {
            panic!("opened a PostgreSQL database with a client certificate and no tls_ca");
        };
        let error = error.to_string();
        assert!(
            error.starts_with("storage.tls_ca:") && error.contains("only over TLS"),
            "{error}"
        );

        storage.backend = crate::storage::Backend::Sled;
        storage.url = None;
        let Err(error) = crate::kv::Db::open(dir.path(), &storage) else {
            panic!("opened sled with PostgreSQL's TLS files set");
        };
        assert!(
            error.to_string().starts_with("storage.tls_cert:"),
            "{error}"
        );
    }

    /// Why the configuration `text` is refused.
    fn load_error(text: &str) -> String {
        let (_dir, file) = write(text);
        Config::load(&file).unwrap_err().to_string()
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    const GOOD: &str = r#"
        country = "mx"
        data_dir = "data"
        [listen]
        peer = "127.0.0.1:7401"
        agency = "127.0.0.1:7501"
        [tls]
        regional_root = "certs/root/ca.pem"
        gateway_cert = "certs/MX/gateway.pem"
        gateway_key = "certs/MX/gateway.key.pem"
        agency_ca = "certs/MX/agency-ca.pem"
        [peers.GT]
        address = "127.0.0.1:7402"
        tls_name = "gateway.gt.retorno.test"
    "#;

    #[test]
    fn case_timing_has_defaults_and_bounds_that_name_the_field() {
        let (_dir, file) = write(GOOD);
        let config = Config::load(&file).unwrap();
        assert_eq!(
            config.case.handoff_margin_hours,
            DEFAULT_HANDOFF_MARGIN_HOURS
        );
        for (setting, field) in [
            ("handoff_margin_hours = 100", "case.handoff_margin_hours"),
            (
                "handoff_late_after_hours = 0",
                "case.handoff_late_after_hours",
            ),
            (
                "follow_up_tolerance_days = 30",
                "case.follow_up_tolerance_days",
            ),
        ] {
            let (_dir, file) = write(&format!("{GOOD}\n[case]\n{setting}\n"));
            match Config::load(&file) {
                Err(ConfigError::Invalid { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{setting}: {other:?}"),
            }
        }
    }

    #[test]
    fn loads_and_resolves_paths_next_to_the_file() {
        let (dir, file) = write(GOOD);
        let config = Config::load(&file).unwrap();
        assert_eq!(config.country.as_str(), "MX");
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(config.limits.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
        let gt = &config.peers[&"GT".parse().unwrap()];
        assert_eq!(gt.server_name(), "gateway.gt.retorno.test");
    }

    #[test]
    fn a_missing_file_is_named_with_the_config_file_and_the_field() {
        let (dir, file) = write(GOOD);
        for name in [
            "certs/MX/gateway.pem",
            "certs/MX/gateway.key.pem",
            "certs/MX/agency-ca.pem",
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let error = Config::load_with_files(&file).unwrap_err().to_string();
        let expected = format!(
            "{}: tls.regional_root: {} cannot be read (No such file or directory (os error 2)): fix the path (a relative path is taken from the folder of {})",
            file.display(),
            dir.path().join("certs/root/ca.pem").display(),
            file.display()
        );
        assert_eq!(error, expected);
        std::fs::create_dir_all(dir.path().join("certs/root")).unwrap();
        std::fs::write(dir.path().join("certs/root/ca.pem"), "").unwrap();
        Config::load_with_files(&file).unwrap();
    }

    #[test]
    fn tls_reload_fields_default_and_resolve_next_to_the_file() {
        let (_dir, file) = write(GOOD);
        let tls = Config::load(&file).unwrap().tls;
        assert!(tls.crls.is_empty());
        assert_eq!(tls.reload_interval_ms, DEFAULT_RELOAD_INTERVAL_MS);
        assert_eq!(tls.expiry_warning_days, DEFAULT_EXPIRY_WARNING_DAYS);

        let with = GOOD.replace(
            "[peers.GT]",
            "crls = [\"certs/root/crl.pem\"]\nreload_interval_ms = 500\nexpiry_warning_days = 7\n[peers.GT]",
        );
        let (dir, file) = write(&with);
        let tls = Config::load(&file).unwrap().tls;
        assert_eq!(tls.crls, vec![dir.path().join("certs/root/crl.pem")]);
        assert_eq!(tls.reload_interval(), Duration::from_millis(500));
        assert_eq!(tls.expiry_warning_days, 7);

        let (_dir, file) = write(&GOOD.replace("[peers.GT]", "reload_interval_ms = 0\n[peers.GT]"));
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("tls.reload_interval_ms"), "{error}");
    }

    #[test]
    fn storage_keys_resolve_next_to_the_file_and_must_be_private() {
        let (_dir, file) = write(GOOD);
        let storage = Config::load(&file).unwrap().storage;
        assert!(storage.keys.is_empty());
        assert_eq!(storage.retention_received_days, 365);
        assert_eq!(storage.retention_withdrawn_days, 90);
        assert_eq!(storage.retention_check_interval_s, 3600);

        let with_key = format!("{GOOD}\n[storage]\nkeys = [\"keys/2026-11.key\"]\n");
        let (dir2, file) = write(&with_key);
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(
            error.contains("storage.keys")
                && error.contains("2026-11.key")
                && error.contains("does not exist"),
            "{error}"
        );
        let key = dir2.path().join("keys/2026-11.key");
        crate::at_rest::write_new_key(&key).unwrap();
        assert_eq!(Config::load(&file).unwrap().storage.keys, vec![key.clone()]);
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");

        let (_dir, file) = write(&format!(
            "{GOOD}\n[storage]\nretention_withdrawn_days = 0\n"
        ));
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("retention_withdrawn_days"), "{error}");
    }

    #[test]
    fn delegations_resolve_next_to_the_file_and_name_the_field_when_wrong() {
        let (_dir, file) = write(GOOD);
        assert!(Config::load(&file).unwrap().delegations.is_empty());

        let with = format!(
            "{GOOD}\n[[delegations]]\nconsulate_country = \"gt\"\nagency_ca = \"certs/GT/agency-ca.pem\"\n"
        );
        let (dir, file) = write(&with);
        let config = Config::load(&file).unwrap();
        assert_eq!(
            config.delegations,
            vec![Delegation {
                consulate_country: "GT".parse().unwrap(),
                agency_ca: dir.path().join("certs/GT/agency-ca.pem"),
            }]
        );
        assert_eq!(
            config.delegated_consulates(),
            BTreeSet::from(["GT".parse().unwrap()])
        );
        let again = toml::from_str::<Config>(&config.to_toml().unwrap()).unwrap();
        assert_eq!(
            again.delegations, config.delegations,
            "written back as [[delegations]]"
        );

        let to_itself = with.replace("consulate_country = \"gt\"", "consulate_country = \"MX\"");
        let (_dir, file) = write(&to_itself);
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(
            error.contains("delegations[0].consulate_country")
                && error.contains("MX cannot delegate to its own consulate"),
            "{error}"
        );

        let twice = format!(
            "{with}\n[[delegations]]\nconsulate_country = \"GT\"\nagency_ca = \"certs/GT/other.pem\"\n"
        );
        let (_dir, file) = write(&twice);
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(
            error.contains("delegations[1].consulate_country") && error.contains("twice"),
            "{error}"
        );

        let own_ca = with.replace("certs/GT/agency-ca.pem", "certs/MX/agency-ca.pem");
        let (_dir, file) = write(&own_ca);
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("delegations[0].agency_ca"), "{error}");

        let (_dir, file) = write(&format!(
            "{GOOD}\n[[delegations]]\nconsulate_country = \"GT\"\n"
        ));
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("agency_ca"), "{error}");
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let (_dir, file) = write(&GOOD.replace("country = \"mx\"", "country = \"mex\""));
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("gateway.toml"), "{error}");
        assert!(
            error.contains("country") && error.contains("\"mex\""),
            "{error}"
        );

        let (_dir, file) = write(&GOOD.replace("address = \"127.0.0.1:7402\"", "address = \"gt\""));
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("peers.GT.address"), "{error}");

        let (_dir, file) = write(&GOOD.replace("[listen]", "colour = 1\n[listen]"));
        let error = Config::load(&file).unwrap_err().to_string();
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn a_zero_connection_limit_is_refused_by_name() {
        for field in [
            "connections_per_identity",
            "idle_timeout_ms",
            "keepalive_interval_ms",
            "keepalive_timeout_ms",
        ] {
            let (_dir, file) = write(&format!("{GOOD}\n[limits]\n{field} = 0\n"));
            let error = Config::load(&file).unwrap_err().to_string();
            assert!(
                error.contains(&format!("limits.{field}")) && error.contains("at least 1"),
                "{error}"
            );
        }
    }
}
