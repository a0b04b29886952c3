//! Alerts: conditions an operator must act on, posted as JSON to the
//! configured webhooks (`[[alerts.webhooks]]`).
//!
//! A [`Condition`] fires once when it starts to hold, again after
//! `alerts.repeat_interval_s` while it still holds, and a `resolved` event
//! follows when it clears. Which conditions stand is kept in the store, so a
//! restart neither repeats an alert early nor forgets to resolve one. Each
//! event is written to the store for each webhook before anything is sent,
//! and removed only when that webhook answered 2xx: a receiver that is down
//! delays alerts, with exponential backoff, and loses none, across restarts.
//!
//! Most conditions are found by [`run`], which looks every
//! `alerts.check_interval_ms` at the certificates in use, each peer's link
//! and queue, the messages peers rejected and the findings of going back in
//! time. Others are raised by whoever finds them: [`Alerts::raise`] and
//! [`Alerts::clear`] with [`Condition::StoreProbe`] (the health check) or
//! [`Condition::AuditVerification`].
//!
//! An event names the gateway, the condition and ids (a peer, a message
//! id, a certificate's role and subject); never a case id, a name or any
//! content of a message.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{sync::Notify, sync::watch, task::JoinHandle};

use crate::{
    config::AlertSettings,
    country::Country,
    links::Links,
    store::{Store, StoreError, requeueable},
    tls::Credentials,
};

mod webhook;

pub use webhook::{Target, WebhookError};

/// Something an operator must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A certificate in use expires within `within_days`.
    CertificateExpiring {
        /// Its role and subject, e.g. `gateway certificate CN=retorno gateway MX`.
        certificate: String,
        /// The threshold crossed.
        within_days: u32,
    },
    /// A certificate in use has expired.
    CertificateExpired {
        /// Its role and subject.
        certificate: String,
    },
    /// A peer has been unreachable for longer than `alerts.peer_unreachable_after_s`.
    PeerUnreachable(Country),
    /// A peer's oldest queued message is older than `alerts.queue_age_s`.
    QueueStuck(Country),
    /// A peer rejected a message without storing it; clears once it is requeued.
    MessageRejected {
        /// The peer.
        peer: Country,
        /// The message id.
        message_id: String,
    },
    /// The store's health probe fails.
    StoreProbe,
    /// A verification of the audit log failed.
    AuditVerification,
    /// A peer went back in time (a finding of [`crate::store::Finding`]).
    PeerRolledBack(Country),
    /// This gateway went back in time, found when comparing with `peer`.
    WentBack(Country),
}

impl Condition {
    /// The alert's name in events.
    pub fn name(&self) -> &'static str {
        match self {
            Condition::CertificateExpiring { .. } => "certificate_expiring",
            Condition::CertificateExpired { .. } => "certificate_expired",
            Condition::PeerUnreachable(_) => "peer_unreachable",
            Condition::QueueStuck(_) => "queue_stuck",
            Condition::MessageRejected { .. } => "message_rejected",
            Condition::StoreProbe => "store_probe_failing",
            Condition::AuditVerification => "audit_verification_failed",
            Condition::PeerRolledBack(_) => "peer_rolled_back",
            Condition::WentBack(_) => "went_back",
        }
    }

    /// What identifies one occurrence: fired once, resolved once.
    pub fn key(&self) -> String {
        let name = self.name();
        match self {
            Condition::CertificateExpiring {
                certificate,
                within_days,
            } => format!("{name}/{certificate}/{within_days}"),
            Condition::CertificateExpired { certificate } => format!("{name}/{certificate}"),
            Condition::PeerUnreachable(peer)
            | Condition::QueueStuck(peer)
            | Condition::PeerRolledBack(peer)
            | Condition::WentBack(peer) => format!("{name}/{peer}"),
            Condition::MessageRejected { peer, message_id } => {
                format!("{name}/{peer}/{message_id}")
            }
            Condition::StoreProbe | Condition::AuditVerification => name.to_owned(),
        }
    }

    /// The ids an event carries.
    fn labels(&self) -> Value {
        match self {
            Condition::CertificateExpiring {
                certificate,
                within_days,
            } => json!({ "certificate": certificate, "within_days": within_days }),
            Condition::CertificateExpired { certificate } => json!({ "certificate": certificate }),
            Condition::PeerUnreachable(peer)
            | Condition::QueueStuck(peer)
            | Condition::PeerRolledBack(peer)
            | Condition::WentBack(peer) => json!({ "peer": peer.as_str() }),
            Condition::MessageRejected { peer, message_id } => {
                json!({ "peer": peer.as_str(), "message_id": message_id })
            }
            Condition::StoreProbe | Condition::AuditVerification => json!({}),
        }
    }
}

/// A condition standing, as kept in the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Standing {
    alert: String,
    labels: Value,
    summary: String,
    since_micros: i64,
    last_sent_micros: i64,
}

/// One event, as posted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    /// The gateway's country.
    pub gateway: String,
    /// The alert's name, e.g. `peer_unreachable`.
    pub alert: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// What identifies the occurrence (the same in its `resolved`).
    pub key: String,
    /// The ids concerned (peer, message id, certificate).
    pub labels: Value,
    /// What it means, in a sentence.
    pub summary: String,
    /// Since when it holds (RFC 3339).
    pub since: String,
    /// When this event was made (RFC 3339).
    pub at: String,
    /// True when a condition that still holds is sent again.
    pub repeat: bool,
}

/// Why an alert could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A standing condition or an event could not be encoded.
    #[error("alert state: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// The alerts of one gateway.
pub struct Alerts {
    country: Country,
    store: Arc<Store>,
    settings: AlertSettings,
    /// Wakes the webhook deliverers when an event is queued.
    queued: Arc<Notify>,
    /// One raise or clear at a time, so that a condition fires once.
    deciding: Mutex<()>,
}

impl Alerts {
    /// The alerts of `country`'s gateway.
    pub fn new(country: Country, store: Arc<Store>, settings: AlertSettings) -> Alerts {
        Alerts {
            country,
            store,
            settings,
            queued: Arc::new(Notify::new()),
            deciding: Mutex::new(()),
        }
    }

    /// How many events wait for webhook `index` (the `index`th of `[[alerts.webhooks]]`).
    pub fn waiting(&self, index: u16) -> Result<usize, AlertError> {
        Ok(self.store.alerts_waiting(index, usize::MAX)?.len())
    }

    fn webhooks(&self) -> u16 {
        u16::try_from(self.settings.webhooks.len()).unwrap_or(u16::MAX)
    }

    /// `condition` holds (`summary` says what it means): fires it if it did
    /// not stand, again if it was last sent a repeat interval ago.
    pub fn raise(&self, condition: &Condition, summary: &str) -> Result<(), AlertError> {
        let _one = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        let key = condition.key();
        let now = crate::clock::system_micros();
        let standing: Option<Standing> = self
            .store
            .alert_standing(&key)?
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()?;
        let repeat_micros = i64::try_from(self.settings.repeat_interval_s)
            .unwrap_or(i64::MAX / 2_000_000)
            .saturating_mul(1_000_000);
        let (since, repeat) = match &standing {
            None => (now, false),
            Some(s) if now - s.last_sent_micros >= repeat_micros => (s.since_micros, true),
            Some(_) => return Ok(()),
        };
        let state = Standing {
            alert: condition.name().to_owned(),
            labels: condition.labels(),
            summary: summary.to_owned(),
            since_micros: since,
            last_sent_micros: now,
        };
        self.send(&key, Some(&state), &state, "firing", repeat)
    }

    /// `condition` no longer holds: a `resolved` event if it stood.
    pub fn clear(&self, condition: &Condition) -> Result<(), AlertError> {
        self.clear_key(&condition.key())
    }

    fn clear_key(&self, key: &str) -> Result<(), AlertError> {
        let _one = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bytes) = self.store.alert_standing(key)? else {
            return Ok(());
        };
        let state: Standing = serde_json::from_slice(&bytes)?;
        self.send(key, None, &state, "resolved", false)
    }

    fn send(
        &self,
        key: &str,
        standing: Option<&Standing>,
        state: &Standing,
        status: &str,
        repeat: bool,
    ) -> Result<(), AlertError> {
        let event = Event {
            gateway: self.country.to_string(),
            alert: state.alert.clone(),
            status: status.to_owned(),
            key: key.to_owned(),
            labels: state.labels.clone(),
            summary: state.summary.clone(),
            since: crate::clock::rfc3339(state.since_micros),
            at: crate::clock::rfc3339(crate::clock::system_micros()),
            repeat,
        };
        tracing::warn!(alert = %event.alert, status, key, "{}", event.summary);
        let standing = standing.map(serde_json::to_vec).transpose()?;
        let encoded = serde_json::to_vec(&event)?;
        self.store
            .alert_event(key, standing.as_deref(), &encoded, self.webhooks())?;
        self.queued.notify_waiters();
        Ok(())
    }

    /// Makes the standing conditions of the families in `prefixes` be
    /// exactly `holding`: raises each, clears the others but those in `keep`
    /// (not yet long enough to fire, but not cleared either).
    fn reconcile(
        &self,
        prefixes: &[&str],
        holding: &[(Condition, String)],
        keep: &BTreeSet<String>,
    ) -> Result<(), AlertError> {
        let mut keys: BTreeSet<String> = holding.iter().map(|(c, _)| c.key()).collect();
        keys.extend(keep.iter().cloned());
        for (condition, summary) in holding {
            self.raise(condition, summary)?;
        }
        for (key, _) in self.store.alerts_standing()? {
            let ours = prefixes.iter().any(|p| key.starts_with(&format!("{p}/")));
            if ours && !keys.contains(&key) {
                self.clear_key(&key)?;
            }
        }
        Ok(())
    }
}

/// What [`run`] looks at.
pub struct Watched {
    /// The alerts.
    pub alerts: Arc<Alerts>,
    /// The certificates in use.
    pub tls: Credentials,
    /// What the couriers saw.
    pub links: Arc<Links>,
    /// The peers.
    pub peers: Vec<Country>,
}

impl Watched {
    fn check(&self) -> Result<(), AlertError> {
        let alerts = &self.alerts;
        let none = BTreeSet::new();
        alerts.reconcile(
            &["certificate_expiring", "certificate_expired"],
            &self.certificates(),
            &none,
        )?;
        // A peer still unreachable, if not for long yet (after a restart),
        // is not resolved: it resolves when a stream opens.
        let (unreachable, down) = self.unreachable();
        alerts.reconcile(&["peer_unreachable"], &unreachable, &down)?;
        alerts.reconcile(&["queue_stuck"], &self.stuck()?, &none)?;
        alerts.reconcile(&["peer_rolled_back", "went_back"], &self.findings()?, &none)?;
        self.rejections()
    }

    fn certificates(&self) -> Vec<(Condition, String)> {
        let mut holding = Vec::new();
        for info in self.tls.certificates() {
            let certificate = format!("{} {}", info.role.as_str(), info.subject);
            let days_left = info.days_left_now();
            if info.expired() {
                let summary = format!("the {certificate} has expired: renew it now");
                holding.push((Condition::CertificateExpired { certificate }, summary));
                continue;
            }
            for within_days in &self.alerts.settings.certificate_days {
                if days_left < i64::from(*within_days) {
                    let summary = format!(
                        "the {certificate} expires in {days_left} days (within {within_days}): renew it"
                    );
                    let condition = Condition::CertificateExpiring {
                        certificate: certificate.clone(),
                        within_days: *within_days,
                    };
                    holding.push((condition, summary));
                }
            }
        }
        holding
    }

    /// The peers unreachable for longer than allowed, and the keys of every
    /// peer unreachable now.
    fn unreachable(&self) -> (Vec<(Condition, String)>, BTreeSet<String>) {
        let now = crate::clock::system_micros();
        let after = secs_micros(self.alerts.settings.peer_unreachable_after_s);
        let mut holding = Vec::new();
        let mut down = BTreeSet::new();
        for peer in &self.peers {
            let Some(since) = self.links.status(*peer).unreachable_since_micros else {
                continue;
            };
            let condition = Condition::PeerUnreachable(*peer);
            down.insert(condition.key());
            if now - since > after {
                let summary = format!(
                    "{peer}'s gateway has been unreachable since {}: messages for it wait in the outbox",
                    crate::clock::rfc3339(since)
                );
                holding.push((condition, summary));
            }
        }
        (holding, down)
    }

    fn stuck(&self) -> Result<Vec<(Condition, String)>, AlertError> {
        let now = crate::clock::system_micros();
        let age = secs_micros(self.alerts.settings.queue_age_s);
        let mut holding = Vec::new();
        for peer in &self.peers {
            if let Some(accepted) = self.alerts.store.oldest_queued(*peer)?
                && now - accepted > age
            {
                let summary = format!(
                    "the oldest message queued for {peer} was accepted at {} and is not delivered yet",
                    crate::clock::rfc3339(accepted)
                );
                holding.push((Condition::QueueStuck(*peer), summary));
            }
        }
        Ok(holding)
    }

    fn findings(&self) -> Result<Vec<(Condition, String)>, AlertError> {
        let mut holding = Vec::new();
        for finding in self.alerts.store.findings()? {
            let (Some(kind), Ok(peer)) = (finding.kind(), finding.peer.parse::<Country>()) else {
                continue;
            };
            if finding.acknowledged_at_micros != 0 {
                continue;
            }
            let condition = if kind.is_own_loss() {
                Condition::WentBack(peer)
            } else {
                Condition::PeerRolledBack(peer)
            };
            let summary = format!(
                "{} ({} message(s)); `retorno-gateway rollback` lists them",
                kind.describe(peer.as_str()),
                finding.count
            );
            holding.push((condition, summary));
        }
        Ok(holding)
    }

    /// Fires an alert per message a peer rejected, and resolves those that
    /// can no longer be requeued (requeued, or their envelope purged).
    fn rejections(&self) -> Result<(), AlertError> {
        for rejected in self.links.take_rejected() {
            let condition = Condition::MessageRejected {
                peer: rejected.peer,
                message_id: rejected.message_id.clone(),
            };
            let summary = format!(
                "{} rejected message {} ({}) without storing it: fix the cause, then `retorno-gateway ops requeue {}`",
                rejected.peer, rejected.message_id, rejected.code, rejected.message_id
            );
            self.alerts.raise(&condition, &summary)?;
        }
        for (key, _) in self.alerts.store.alerts_standing()? {
            let Some(id) = key
                .strip_prefix("message_rejected/")
                .and_then(|rest| rest.rsplit('/').next())
                .and_then(|id| uuid::Uuid::try_parse(id).ok())
            else {
                continue;
            };
            let still = self.alerts.store.sent_status(id)?;
            // Standing while the operator can act on it: until it is requeued,
            // or retention removes its envelope.
            if requeueable(still.as_ref()).is_err() {
                self.alerts.clear_key(&key)?;
            }
        }
        Ok(())
    }
}

fn secs_micros(seconds: u64) -> i64 {
    i64::try_from(seconds)
        .unwrap_or(i64::MAX / 2_000_000)
        .saturating_mul(1_000_000)
}

/// Checks the conditions every `alerts.check_interval_ms` and delivers the
/// events to each webhook, until `shutdown`.
pub fn run(watched: Watched, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let settings = watched.alerts.settings.clone();
    for (index, hook) in settings.webhooks.iter().enumerate() {
        let Ok(index) = u16::try_from(index) else {
            break;
        };
        match Target::new(hook) {
            Ok(target) => tasks.push(tokio::spawn(webhook::deliver(
                index,
                target,
                watched.alerts.clone(),
                shutdown.clone(),
            ))),
            Err(error) => {
                tracing::error!(%error, url = %hook.url, "alerts for this webhook are kept but not sent")
            }
        }
    }
    tasks.push(tokio::spawn(check_loop(watched, shutdown)));
    tasks
}

async fn check_loop(watched: Watched, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(watched.alerts.settings.check_interval_ms);
    loop {
        if let Err(error) = watched.check() {
            tracing::error!(%error, "checking alert conditions failed");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Storage, Webhook};

    fn alerts(dir: &std::path::Path) -> Alerts {
        let store = Store::open(dir, &Storage::default()).unwrap();
        let settings = AlertSettings {
            webhooks: vec![Webhook {
                url: "http://127.0.0.1:9/".into(),
                bearer_token: None,
                ca: None,
                client_cert: None,
                client_key: None,
            }],
            ..AlertSettings::default()
        };
        Alerts::new("MX".parse().unwrap(), store, settings)
    }

    fn last_event(alerts: &Alerts) -> Event {
        let waiting = alerts.store.alerts_waiting(0, usize::MAX).unwrap();
        serde_json::from_slice(&waiting.last().unwrap().1).unwrap()
    }

    #[tokio::test]
    async fn a_condition_fires_once_again_after_the_repeat_interval_and_resolves_once() {
        let dir = tempfile::tempdir().unwrap();
        let alerts = alerts(dir.path());
        let down = Condition::PeerUnreachable("GT".parse().unwrap());
        alerts.raise(&down, "GT is down").unwrap();
        alerts.raise(&down, "GT is down").unwrap();
        assert_eq!(alerts.waiting(0).unwrap(), 1);
        let first = last_event(&alerts);
        assert_eq!((first.status.as_str(), first.repeat), ("firing", false));

        // Last sent longer ago than the repeat interval: sent again, same `since`.
        let key = down.key();
        let mut standing: Standing =
            serde_json::from_slice(&alerts.store.alert_standing(&key).unwrap().unwrap()).unwrap();
        standing.last_sent_micros -= 3601 * 1_000_000;
        let encoded = serde_json::to_vec(&standing).unwrap();
        alerts
            .store
            .alert_event(&key, Some(&encoded), b"", 0)
            .unwrap();
        alerts.raise(&down, "GT is down").unwrap();
        assert_eq!(alerts.waiting(0).unwrap(), 2);
        let again = last_event(&alerts);
        assert_eq!(
            (again.repeat, again.since.as_str()),
            (true, first.since.as_str())
        );

        alerts.clear(&down).unwrap();
        alerts.clear(&down).unwrap();
        assert_eq!(alerts.waiting(0).unwrap(), 3);
        let resolved = last_event(&alerts);
        assert_eq!(
            (resolved.status.as_str(), resolved.key.as_str()),
            ("resolved", "peer_unreachable/GT")
        );
        assert!(alerts.store.alerts_standing().unwrap().is_empty());
    }
}
