//! Keeping each peer's published reception policy.
//!
//! A destination checks a proposal against the origin's policy before it
//! accepts it from its agency, so it needs that policy even while the origin
//! is unreachable: one task per peer fetches it over the Peer API, keeps it in
//! the store (so a restart does not forget it) and in the case rules, and
//! fetches it again every [`REFRESH`].
//!
//! A peer's policy also lists its delegations, and a delegation added to the
//! peer's config would otherwise reach this gateway only at the next refresh:
//! a delivery that claims a delegation the cached policy does not list makes
//! the Peer API fetch that peer's policy at once ([`ArrivalRefresh`]), within
//! [`ARRIVAL_TIMEOUT`] and at most once per [`ARRIVAL_INTERVAL`].

use std::{future::Future, sync::Arc, time::Duration};

use retorno_proto::v1::{ReceptionPolicyRequest, peer_exchange_client::PeerExchangeClient};
use tokio::{
    sync::{Mutex, watch},
    time::Instant,
};

use crate::{case::Rules, config::PeerConfig, country::Country, store::Store, tls};

/// How often a known policy is fetched again.
pub const REFRESH: Duration = Duration::from_secs(600);

/// How long a delivery waits for the policy it made the gateway fetch; past
/// it the case rules decide with the policy already known, so a peer that
/// accepts connections but never answers holds up its own batch only briefly.
pub const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(3);

/// The least time between two fetches of one peer's policy made on arrival,
/// so that a peer (buggy or hostile) whose every batch claims a delegation it
/// does not publish cannot make this gateway reconnect for each batch.
pub const ARRIVAL_INTERVAL: Duration = Duration::from_secs(10);

/// First and longest wait after a failed fetch.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Failures are logged as warnings once the retries have reached this wait
/// (after about 1.5 s of failing), at debug level before.
const WARN_AFTER: Duration = Duration::from_millis(800);

/// Fetches one peer's policy and keeps it; shared by the periodic
/// [`PolicyWatch`] and the Peer API's [`ArrivalRefresh`].
#[derive(Clone)]
pub struct PolicyFetcher {
    /// The peer.
    pub peer: Country,
    /// Where it is.
    pub address: PeerConfig,
    /// This gateway's TLS material; the current client configuration is taken at each fetch.
    pub tls: tls::Credentials,
    /// Where the policy is kept.
    pub store: Arc<Store>,
    /// Where the case rules read it.
    pub rules: Arc<Rules>,
}

impl PolicyFetcher {
    /// Fetches the peer's policy once and keeps it in the store and the case rules.
    pub async fn fetch(&self) -> Result<(), String> {
        // One short call: the default keepalive only guards against a hang.
        let keepalive = crate::config::Keepalive::default();
        let (channel, _) = tls::connect_to_peer(self.peer, &self.address, &self.tls, keepalive)
            .await
            .map_err(|e| e.to_string())?;
        let policy = PeerExchangeClient::new(channel)
            .get_reception_policy(ReceptionPolicyRequest {})
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        if policy.country != self.peer.as_str() {
            return Err(format!(
                "{} published a policy for {:?}",
                self.peer, policy.country
            ));
        }
        self.store
            .save_policy(self.peer, &policy)
            .map_err(|e| e.to_string())?;
        let mut policies = self
            .rules
            .peer_policies
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if policies.get(&self.peer) != Some(&policy) {
            tracing::info!(peer = %self.peer, points = policy.points.len(), "reception policy updated");
        }
        policies.insert(self.peer, policy);
        Ok(())
    }
}

/// Fetches one peer's policy until shutdown.
pub struct PolicyWatch {
    /// What fetches it.
    pub fetcher: PolicyFetcher,
    /// Set to true when the gateway stops.
    pub shutdown: watch::Receiver<bool>,
}

impl PolicyWatch {
    /// Runs until the gateway shuts down.
    pub async fn run(mut self) {
        let mut retry = RETRY_FIRST;
        loop {
            // A peer that accepts TCP but never answers must not hold up shutdown.
            let mut stop = self.shutdown.clone();
            let fetched = tokio::select! {
                fetched = self.fetcher.fetch() => fetched,
                _ = stop.changed() => return,
            };
            let wait = match fetched {
                Ok(()) => {
                    retry = RETRY_FIRST;
                    REFRESH
                }
                Err(error) => {
                    // A peer still starting (the dev region starts its
                    // gateways one by one) is not worth a warning; one that
                    // stays unreachable is: proposals to it are refused.
                    if retry >= WARN_AFTER {
                        tracing::warn!(peer = %self.fetcher.peer, address = %self.fetcher.address.address, %error, "reception policy not fetched; proposals for this peer wait for it");
                    } else {
                        tracing::debug!(peer = %self.fetcher.peer, %error, "reception policy not fetched");
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                    retry
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }
}

/// Fetches one peer's policy when a delivery from it needs the policy now.
pub struct ArrivalRefresh {
    fetcher: PolicyFetcher,
    throttle: Throttle,
}

impl ArrivalRefresh {
    /// On-arrival fetches of `fetcher`'s peer.
    pub fn new(fetcher: PolicyFetcher) -> ArrivalRefresh {
        ArrivalRefresh {
            fetcher,
            throttle: Throttle::default(),
        }
    }

    /// Fetches the peer's policy now, unless it was fetched on arrival less
    /// than [`ARRIVAL_INTERVAL`] ago; a failure is logged, not returned: the
    /// case rules then decide with the policy already known.
    pub async fn refresh(&self) {
        self.throttle
            .run(self.fetcher.peer, self.fetcher.fetch())
            .await;
    }
}

/// Bounds a peer's on-arrival fetches in time and in number.
#[derive(Default)]
struct Throttle {
    /// When the last fetch started. An async lock, held during the fetch, so
    /// that a batch arriving meanwhile waits for that fetch's policy instead
    /// of being judged on the old one.
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    /// Runs `fetch` for `peer` within [`ARRIVAL_TIMEOUT`], unless one started
    /// less than [`ARRIVAL_INTERVAL`] ago.
    async fn run(&self, peer: Country, fetch: impl Future<Output = Result<(), String>>) {
        let mut last = self.last.lock().await;
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < ARRIVAL_INTERVAL) {
            tracing::debug!(%peer, "reception policy fetched on arrival moments ago; not again yet");
            return;
        }
        *last = Some(now);
        match tokio::time::timeout(ARRIVAL_TIMEOUT, fetch).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%peer, %error, "reception policy not fetched on arrival; the case rules use the one known");
            }
            Err(_) => {
                tracing::warn!(%peer, timeout = ?ARRIVAL_TIMEOUT, "reception policy not fetched on arrival in time; the case rules use the one known");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn hn() -> Country {
        "HN".parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_is_fetched_on_arrival_at_most_once_per_interval() {
        let throttle = Throttle::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        throttle.run(hn(), fetch()).await;
        throttle.run(hn(), fetch()).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "the second is too soon");
        tokio::time::advance(ARRIVAL_INTERVAL).await;
        throttle.run(hn(), fetch()).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_answers_holds_a_batch_up_only_until_the_timeout() {
        let throttle = Throttle::default();
        let start = Instant::now();
        throttle
            .run(hn(), std::future::pending::<Result<(), String>>())
            .await;
        assert_eq!(start.elapsed(), ARRIVAL_TIMEOUT);
        // A failed fetch counts: the peer cannot make the gateway retry at once.
        let fetches = AtomicUsize::new(0);
        throttle
            .run(hn(), async {
                fetches.fetch_add(1, Ordering::SeqCst);
                Err("refused".to_owned())
            })
            .await;
        assert_eq!(fetches.load(Ordering::SeqCst), 0);
    }
}
