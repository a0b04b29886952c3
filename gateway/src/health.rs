//! `grpc.health.v1` on both listeners, computed from real checks.
//!
//! A load balancer, a peer or an agency asks a listener whether the gateway
//! serves; the answer is what [`Checks::run`] last concluded, every
//! `health.probe_interval_ms` and at once when an operator drains or
//! resumes. The gateway is NOT_SERVING while any of these holds:
//!
//! - the store does not take a write and a flush ([`Store::probe`]), or
//!   has not finished one after `health.probe_timeout_ms` (a database that
//!   stopped completing commits);
//! - its own certificate has expired, or a configured revocation list revokes it;
//! - it went back in time and no operator has acknowledged what was lost
//!   (README, "Backups and going back in time");
//! - a peer's oldest queued message is older than `health.stuck_after_s`
//!   while that peer answers its own health check as SERVING: a stuck
//!   courier. A peer that is down is not this gateway's fault: it shows in
//!   the per-peer metrics instead;
//! - an operator drains it ([`crate::Gateway::set_draining`]): queued
//!   messages still go out, new work goes elsewhere.
//!
//! Every service name a listener serves (`""` and its API's) gets the same
//! status: each of the checks stops both APIs from keeping their promises.
//! The metrics listener's `GET /health` answers the same [`Verdict`] in
//! plain HTTP, for a layer-4 load balancer that cannot speak gRPC over
//! mutual TLS ([`crate::metrics`]).

use std::{
    collections::BTreeMap,
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_check_response, health_client::HealthClient},
    server::HealthReporter,
};

use crate::{
    clock::Clock,
    config::{self, PeerConfig},
    country::Country,
    metrics::Metrics,
    storage::StoreError,
    store::Store,
    tls::{self, Credentials},
};

/// The Peer API's service name, as health clients ask for it.
pub const PEER_SERVICE: &str = "retorno.v1.PeerExchange";
/// The Agency API's service name, as health clients ask for it.
pub const AGENCY_SERVICE: &str = "retorno.v1.Agency";

/// How long a peer may take to answer its health check.
const PEER_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// One reason the gateway does not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unhealthy {
    /// An operator drains the gateway.
    Draining,
    /// The store did not take the probe's write and flush.
    Store(String),
    /// The gateway's own certificate has expired.
    CertificateExpired {
        /// When it expired, as written in it.
        not_after: String,
    },
    /// A configured revocation list revokes the gateway's own certificate.
    CertificateRevoked {
        /// The list's issuer.
        issuer: String,
    },
    /// The gateway went back in time and no operator acknowledged it.
    WentBack,
    /// A reachable peer's oldest queued message waits too long.
    Stuck {
        /// The peer.
        peer: Country,
        /// How long the message has waited, in seconds.
        age_s: i64,
    },
}

impl Unhealthy {
    /// The check that found it, as `GET /health` names it: a fixed word,
    /// never anything of a message or a person.
    pub fn check(&self) -> &'static str {
        match self {
            Unhealthy::Draining => "draining",
            Unhealthy::Store(_) => "store",
            Unhealthy::CertificateExpired { .. } => "certificate_expired",
            Unhealthy::CertificateRevoked { .. } => "certificate_revoked",
            Unhealthy::WentBack => "went_back",
            Unhealthy::Stuck { .. } => "stuck_courier",
        }
    }
}

/// What the checks last concluded: the one answer that `grpc.health.v1` on
/// both listeners and `GET /health` on the metrics listener give.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Verdict {
    /// The checks have not run yet: not serving.
    #[default]
    Starting,
    /// Every reason not to serve that the last run found; none is SERVING.
    Checked(Vec<Unhealthy>),
    /// This node of the gateway waits for the lease another node holds
    /// (PostgreSQL, several nodes): not serving, and not broken.
    StandingBy,
}

impl Verdict {
    /// Whether the gateway serves.
    pub fn serving(&self) -> bool {
        matches!(self, Verdict::Checked(found) if found.is_empty())
    }

    /// The names of the failing checks, each once, in the order found.
    pub fn failing_checks(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        match self {
            Verdict::Starting => names.push("starting"),
            Verdict::StandingBy => names.push("standby"),
            Verdict::Checked(found) => {
                for name in found.iter().map(Unhealthy::check) {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        names
    }

    /// The plain-text answer: `SERVING`, or `NOT_SERVING: ` and the names
    /// of the failing checks.
    pub fn plain_text(&self) -> String {
        if self.serving() {
            "SERVING\n".to_owned()
        } else {
            format!("NOT_SERVING: {}\n", self.failing_checks().join(", "))
        }
    }

    fn status(&self) -> ServingStatus {
        if self.serving() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    }
}

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unhealthy::Draining => write!(f, "drained by an operator"),
            Unhealthy::Store(error) => {
                write!(f, "the store does not take a write and a flush: {error}")
            }
            Unhealthy::CertificateExpired { not_after } => {
                write!(
                    f,
                    "this gateway's certificate expired on {not_after}: renew it"
                )
            }
            Unhealthy::CertificateRevoked { issuer } => write!(
                f,
                "this gateway's certificate is revoked by the list of {issuer}: install a new one"
            ),
            Unhealthy::WentBack => write!(
                f,
                "this gateway went back in time and no operator has acknowledged it: `retorno-gateway rollback --config FILE`"
            ),
            Unhealthy::Stuck { peer, age_s } => write!(
                f,
                "{peer} answers, but the oldest message for it has waited {age_s} s"
            ),
        }
    }
}

/// Where the checks' verdict is published: one reporter per listener.
#[derive(Clone)]
pub struct Reporters {
    /// The Peer API listener's health service.
    pub peer: HealthReporter,
    /// The Agency API listener's health service.
    pub agency: HealthReporter,
    /// The metrics listener's `GET /health` reads the verdict here.
    pub plain: watch::Sender<Verdict>,
}

impl Reporters {
    async fn publish(&self, verdict: &Verdict) {
        let status = verdict.status();
        for name in ["", PEER_SERVICE] {
            self.peer.set_service_status(name, status).await;
        }
        for name in ["", AGENCY_SERVICE] {
            self.agency.set_service_status(name, status).await;
        }
        self.plain.send_if_modified(|shown| {
            let changed = shown != verdict;
            if changed {
                *shown = verdict.clone();
            }
            changed
        });
    }
}

/// What the checks read.
pub struct Checks {
    /// Probed for a write and a flush; holds the findings and the outbox.
    pub store: Arc<Store>,
    /// The certificates and revocation lists in use.
    pub tls: Credentials,
    /// "Now" for certificate expiry: the case rules' clock
    /// (the system's in production; tests move it past an expiry).
    pub clock: Clock,
    /// The peers, and where to ask them for their own health.
    pub peers: BTreeMap<Country, PeerConfig>,
    /// Intervals and thresholds.
    pub settings: config::Health,
    /// Where the verdict is shown besides the health services.
    pub metrics: Metrics,
    /// True while an operator drains the gateway.
    pub draining: watch::Receiver<bool>,
    /// A store probe that outlived `health.probe_timeout_ms` and still runs.
    pub pending_probe: PendingProbe,
}

/// A store probe still running after its time ran out (a commit waiting for
/// a synchronous standby that is gone blocks without end): the next checks
/// wait on it rather than start another, and report how long it has waited.
#[derive(Default)]
pub struct PendingProbe(std::sync::Mutex<Option<Probe>>);

/// A running store probe and when it started.
type Probe = (JoinHandle<Result<(), StoreError>>, Instant);

impl PendingProbe {
    fn take(&self) -> Option<Probe> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn keep(&self, probe: JoinHandle<Result<(), StoreError>>, started: Instant) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((probe, started));
    }
}

impl Checks {
    /// Whether the store takes a write and a flush within
    /// `health.probe_timeout_ms`. The probe runs as a task of its own, so
    /// that one blocked inside the database (PostgreSQL's calls block)
    /// cannot hold up the checks: they report it and look again next time.
    async fn probe(&self) -> Result<(), StoreError> {
        let (mut probe, started) = self.pending_probe.take().unwrap_or_else(|| {
            let store = self.store.clone();
            (
                tokio::spawn(async move { store.probe().await }),
                Instant::now(),
            )
        });
        let left = self
            .settings
            .probe_timeout()
            .saturating_sub(started.elapsed());
        match tokio::time::timeout(left, &mut probe).await {
            Ok(finished) => finished.unwrap_or(Err(StoreError::Panicked)),
            Err(_) => {
                let waited_s = started.elapsed().as_secs();
                self.pending_probe.keep(probe, started);
                Err(StoreError::Stalled {
                    what: "the health probe's write and flush",
                    waited_s,
                })
            }
        }
    }

    /// Every reason not to serve, now; empty when the gateway serves.
    pub async fn run(&self) -> Vec<Unhealthy> {
        let mut found = Vec::new();
        if *self.draining.borrow() {
            found.push(Unhealthy::Draining);
        }
        if let Err(error) = self.probe().await {
            found.push(Unhealthy::Store(error.to_string()));
        }
        found.extend(self.certificate());
        match self.store.went_back_unacknowledged() {
            Ok(true) => found.push(Unhealthy::WentBack),
            Ok(false) => {}
            Err(error) => found.push(Unhealthy::Store(error.to_string())),
        }
        found.extend(self.stuck().await);
        found
    }

    /// Whether the gateway's own certificate is expired or revoked.
    fn certificate(&self) -> Vec<Unhealthy> {
        let now = self.clock.now().as_second();
        let crls = self.tls.crls();
        let mut found = Vec::new();
        let own = self.tls.certificates();
        let own = own
            .iter()
            .filter(|c| c.role == tls::CertificateRole::Gateway);
        for certificate in own {
            if certificate.not_after_unix <= now {
                found.push(Unhealthy::CertificateExpired {
                    not_after: certificate.not_after.clone(),
                });
            }
            if let Some(crl) = crls.iter().find(|crl| crl.revokes(certificate)) {
                found.push(Unhealthy::CertificateRevoked {
                    issuer: crl.issuer.clone(),
                });
            }
        }
        found
    }

    /// The peers whose oldest queued message is too old while they answer.
    async fn stuck(&self) -> Vec<Unhealthy> {
        // Acceptance times are the system's, whatever the case rules' clock says.
        let now = crate::clock::system_micros();
        let limit = i64::try_from(self.settings.stuck_after_s).unwrap_or(i64::MAX);
        let mut found = Vec::new();
        for (peer, address) in &self.peers {
            let age_s = match self.store.oldest_queued_micros(*peer) {
                Ok(Some(accepted)) => (now - accepted) / 1_000_000,
                Ok(None) => continue,
                Err(error) => {
                    found.push(Unhealthy::Store(error.to_string()));
                    continue;
                }
            };
            if age_s > limit && self.peer_serves(*peer, address).await {
                found.push(Unhealthy::Stuck { peer: *peer, age_s });
            }
        }
        found
    }

    /// Whether `peer` answers its own health check as SERVING, over the
    /// same mutual TLS its courier uses.
    async fn peer_serves(&self, peer: Country, address: &PeerConfig) -> bool {
        let ask = async {
            let keepalive = crate::config::Keepalive::default();
            let (channel, _) = tls::connect_to_peer(peer, address, &self.tls, keepalive)
                .await
                .ok()?;
            let request = HealthCheckRequest {
                service: PEER_SERVICE.into(),
            };
            let answer = HealthClient::new(channel).check(request).await.ok()?;
            Some(answer.into_inner().status() == health_check_response::ServingStatus::Serving)
        };
        tokio::time::timeout(PEER_CHECK_TIMEOUT, ask)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Runs the checks, publishes the verdict and logs each change of it.
    async fn publish(&self, reporters: &Reporters, last: &mut Option<Vec<Unhealthy>>) {
        let found = self.run().await;
        let verdict = Verdict::Checked(found.clone());
        let serving = verdict.serving();
        self.metrics.health(serving, *self.draining.borrow());
        reporters.publish(&verdict).await;
        if last.as_ref() != Some(&found) {
            if serving {
                tracing::info!("health: SERVING");
            } else {
                let reasons = found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::warn!(%reasons, "health: NOT_SERVING");
            }
            *last = Some(found);
        }
    }

    /// Publishes a first verdict now, then runs the checks every
    /// `health.probe_interval_ms` and whenever draining changes, until shutdown.
    pub async fn start(
        mut self,
        reporters: Reporters,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let mut last = None;
        self.publish(&reporters, &mut last).await;
        tokio::spawn(async move {
            let interval = self.settings.probe_interval();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    changed = self.draining.changed() => if changed.is_err() { return },
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                self.publish(&reporters, &mut last).await;
            }
        })
    }
}
