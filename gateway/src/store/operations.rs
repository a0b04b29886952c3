//! What operations read of the store: a probe that proves it still takes a
//! write and a flush, its size, the audit chain's height and the age of
//! each peer's oldest queued message. None of it touches the hot path: the
//! health task and a scrape call these, every few seconds at most.

use std::sync::atomic::Ordering;

use uuid::Uuid;

use super::{OutboxRecord, SentRecord, Store, StoreError, decode};
use crate::country::Country;

/// The key the probe writes in sled's default tree.
const PROBE_KEY: &[u8] = b"health-probe";

/// The key, in the engine's default tree, under which a database records
/// the country of the gateway that first opened it ([`Store::claim`]).
pub(crate) const COUNTRY_KEY: &[u8] = b"country";

impl Store {
    /// Records `country` as this database's owner on its first open, and
    /// refuses ([`StoreError::OtherCountry`]) a database that another
    /// country's gateway recorded: two gateways pointed at one PostgreSQL
    /// database (or one folder) by mistake would share one lease, one audit
    /// chain and one outbox. A database from before this record is claimed
    /// by the first gateway that opens it.
    pub async fn claim(&self, country: Country) -> Result<(), StoreError> {
        if !self.check_owner(country)? {
            self.db
                .default_tree()
                .insert(COUNTRY_KEY, country.as_str().as_bytes())?;
            self.commit().await?;
        }
        Ok(())
    }

    /// Refuses ([`StoreError::OtherCountry`]) a database that another
    /// country's gateway recorded as its own; `true` when `country`'s did,
    /// `false` when none has yet. Writes nothing.
    pub fn check_owner(&self, country: Country) -> Result<bool, StoreError> {
        check_owner(&self.db, country)
    }

    /// Writes the time under a probe key and waits for the flush that covers
    /// it (the same group commit, and power-loss barrier, that every
    /// "accepted" waits for). An error means the store cannot promise
    /// anything now.
    pub async fn probe(&self) -> Result<(), StoreError> {
        if self.probe_fault.load(Ordering::Relaxed) {
            return Err(StoreError::Io(std::sync::Arc::new(std::io::Error::other(
                "the health probe was told to fail (Store::danger_fail_probes)",
            ))));
        }
        self.db
            .default_tree()
            .insert(PROBE_KEY, &crate::clock::system_micros().to_be_bytes())?;
        self.commit().await
    }

    /// Makes every [`Store::probe`] fail until turned off: the only way a
    /// test can see a gateway whose disk stopped taking writes, since sled
    /// keeps writing to files it has open (and tests run as root, whom
    /// permissions do not stop). Nothing else of the store changes.
    pub fn danger_fail_probes(&self, on: bool) {
        self.probe_fault.store(on, Ordering::Relaxed);
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk()
    }

    /// How many entries the audit chain holds.
    pub fn audit_height(&self) -> u64 {
        // A panic while holding the head leaves the last committed value.
        self.audit_head
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .head
            .next_seq
            .saturating_sub(1)
    }

    /// When the oldest message queued for `peer` was accepted (microseconds
    /// since the Unix epoch), if any is queued.
    pub fn oldest_queued_micros(&self, peer: Country) -> Result<Option<i64>, StoreError> {
        let Some((_, bytes)) = self
            .outbox
            .scan_prefix(peer.as_bytes())
            .next()
            .transpose()?
        else {
            return Ok(None);
        };
        // The id is kept in the clear beside a sealed envelope: no key needed.
        let record: OutboxRecord = decode("outbox", &bytes)?;
        let Ok(id) = Uuid::try_parse(&record.message_id) else {
            return Ok(None);
        };
        let sent: Option<SentRecord> = self
            .sent
            .get(id.as_bytes())?
            .map(|bytes| decode("sent", &bytes))
            .transpose()?;
        Ok(sent.map(|sent| sent.accepted_at_micros))
    }
}

/// [`Store::check_owner`] on an engine's database not opened as a store
/// (what `migrate` copies from).
pub fn check_owner(db: &crate::kv::Db, country: Country) -> Result<bool, StoreError> {
    match db.default_tree().get(COUNTRY_KEY)? {
        Some(stored) if stored.as_ref() == country.as_str().as_bytes() => Ok(true),
        Some(stored) => Err(StoreError::OtherCountry {
            stored: String::from_utf8_lossy(&stored).into_owned(),
            configured: country,
        }),
        None => Ok(false),
    }
}
