//! The alerts tree: which alert conditions stand, and the alert events not
//! yet delivered to each webhook. An event stays here until its webhook
//! answered 2xx, across restarts ([`crate::alerts`] decides what to send).

use super::{Store, StoreError};

/// An event waiting for its webhook: its key in the tree, and the event (JSON).
pub type WaitingAlert = (Vec<u8>, Vec<u8>);

const ACTIVE: &[u8] = b"a/";
const QUEUED: &[u8] = b"q/";

fn active_key(key: &str) -> Vec<u8> {
    [ACTIVE, key.as_bytes()].concat()
}

fn queued_prefix(webhook: u16) -> Vec<u8> {
    [QUEUED, &webhook.to_be_bytes()].concat()
}

impl Store {
    /// The standing condition under `key`, as [`crate::alerts`] wrote it.
    pub fn alert_standing(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.alerts.get(active_key(key))?.map(|v| v.to_vec()))
    }

    /// Every standing condition: its key and what [`crate::alerts`] wrote.
    pub fn alerts_standing(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.alerts
            .scan_prefix(ACTIVE)
            .map(|item| {
                let (key, value) = item?;
                let key = String::from_utf8_lossy(&key[ACTIVE.len()..]).into_owned();
                Ok((key, value.to_vec()))
            })
            .collect()
    }

    /// Records that `key` stands (`Some`, with its state) or has cleared
    /// (`None`), and queues `event` for each of `webhooks`, in one batch.
    pub fn alert_event(
        &self,
        key: &str,
        standing: Option<&[u8]>,
        event: &[u8],
        webhooks: u16,
    ) -> Result<(), StoreError> {
        let mut batch = crate::kv::Batch::default();
        match standing {
            Some(state) => batch.insert(active_key(key), state),
            None => batch.remove(active_key(key)),
        }
        for webhook in 0..webhooks {
            let id = self.db.generate_id()?;
            let queued = [queued_prefix(webhook), id.to_be_bytes().to_vec()].concat();
            batch.insert(queued, event);
        }
        self.alerts.apply_batch(batch)
    }

    /// Up to `limit` events waiting for `webhook`, oldest first, with their keys.
    pub fn alerts_waiting(
        &self,
        webhook: u16,
        limit: usize,
    ) -> Result<Vec<WaitingAlert>, StoreError> {
        self.alerts
            .scan_prefix(queued_prefix(webhook))
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    /// An event its webhook accepted: removed.
    pub fn alert_delivered(&self, key: &[u8]) -> Result<(), StoreError> {
        self.alerts.remove(key)?;
        Ok(())
    }
}
