//! Keeping each peer's published reception policy.
//!
//! A destination checks a proposal against the origin's policy before it
//! accepts it from its agency, so it needs that policy even while the origin
//! is unreachable: one task per peer fetches it over the Peer API, keeps it in
//! the store (so a restart does not forget it) and in the case rules, and
//! fetches it again every [`REFRESH`].

use std::{sync::Arc, time::Duration};

use retorno_proto::v1::{ReceptionPolicyRequest, peer_exchange_client::PeerExchangeClient};
use tokio::sync::watch;

use crate::{case::Rules, config::PeerConfig, country::Country, store::Store, tls};

/// How often a known policy is fetched again.
pub const REFRESH: Duration = Duration::from_secs(600);

/// First and longest wait after a failed fetch.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Fetches one peer's policy until shutdown.
pub struct PolicyWatch {
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
                fetched = self.fetch() => fetched,
                _ = stop.changed() => return,
            };
            let wait = match fetched {
                Ok(()) => {
                    retry = RETRY_FIRST;
                    REFRESH
                }
                Err(error) => {
                    tracing::debug!(peer = %self.peer, %error, "reception policy not fetched");
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

    async fn fetch(&self) -> Result<(), String> {
        let channel = tls::connect_to_peer(self.peer, &self.address, &self.tls)
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
