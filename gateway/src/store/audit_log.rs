//! The audit log's place in the store: appending under the head's lock
//! ([`crate::audit`] decides what an entry holds), and what its
//! verification reads ([`Records`]).

use std::sync::MutexGuard;

use uuid::Uuid;

use super::{
    AuditHead, InboxRecord, SeenRecord, SentRecord, Store, StoreError, Stored, audit_head_of,
    decode, read_u64,
};
use crate::{
    audit::{self, Record},
    kv,
    storage::{Entries, Records},
};

/// The audit log ([`crate::audit`]) and what its verification reads.
impl Store {
    pub(super) fn audit_head(&self) -> MutexGuard<'_, AuditHead> {
        // The head is replaced whole, and only after a commit: a panic while
        // the lock is held leaves it true, so a poisoned lock is still usable.
        self.audit_head.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `write`, a transaction that appends to the audit log after the
    /// head it is given and returns the head it leaves, with the audit lock
    /// held; keeps that head if the transaction committed. After a storage
    /// error the head is read again from the tree, whatever sled kept.
    pub(super) fn audited<T>(
        &self,
        write: impl FnOnce(&audit::Head) -> Result<(T, audit::Head), StoreError>,
    ) -> Result<T, StoreError> {
        let mut head = self.audit_head();
        if head.stale {
            *head = AuditHead::fresh(audit_head_of(&self.audit)?);
        }
        match write(&head.head) {
            Ok((value, next)) => {
                *head = AuditHead::fresh(next);
                Ok(value)
            }
            Err(error) => {
                // The commit may have happened (a connection lost during
                // it): the head is read again before the next append, never
                // guessed, so that no entry is written twice under one number.
                *head = match audit_head_of(&self.audit) {
                    Ok(reloaded) => AuditHead::fresh(reloaded),
                    Err(_) => AuditHead {
                        stale: true,
                        ..head.clone()
                    },
                };
                Err(error)
            }
        }
    }

    /// Appends records that go with no other write (a refusal, a read) in
    /// one transaction of their own. Not flushed: the next group commit or
    /// sled's own flush makes them durable.
    pub fn audit(&self, records: &[Record]) -> Result<(), StoreError> {
        self.audited(|head| {
            kv::transaction(&[&self.audit], |log| {
                let mut next = head.clone();
                for record in records {
                    next = audit::append_in(&log[0], &next, record)?;
                }
                Ok(((), next))
            })
        })
    }

    /// Every audit entry as stored (sequence key, encoded entry), in order.
    pub fn audit_log(&self) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.audit
            .iter()
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    /// Every inbox entry in cursor order, opened; an entry that does not
    /// open is returned as its own error, so that a verifier can name it and go on.
    pub fn inbox_entries(
        &self,
    ) -> impl Iterator<Item = Result<(u64, Stored<InboxRecord>), StoreError>> + '_ {
        self.inbox.iter().map(|item| {
            let (key, value) = item?;
            Ok((read_u64(&key), self.decode_at_rest(&key, &value)))
        })
    }

    /// Every sent record, by message id.
    pub fn sent_entries(
        &self,
    ) -> impl Iterator<Item = Result<(String, Stored<SentRecord>), StoreError>> + '_ {
        self.sent.iter().map(|item| {
            let (key, value) = item?;
            let id =
                Uuid::from_slice(&key).map_or_else(|_| crate::seal::hex(&key), |id| id.to_string());
            Ok((id, decode("sent", &value)))
        })
    }

    /// Every seen record: sender, message id, record.
    pub fn seen_entries(
        &self,
    ) -> impl Iterator<Item = Result<(String, String, Stored<SeenRecord>), StoreError>> + '_ {
        self.seen.iter().map(|item| {
            let (key, value) = item?;
            let sender = String::from_utf8_lossy(&key[..key.len().min(2)]).into_owned();
            let id = Uuid::from_slice(key.get(2..).unwrap_or_default())
                .map_or_else(|_| crate::seal::hex(&key), |id| id.to_string());
            Ok((sender, id, decode("seen", &value)))
        })
    }
}

impl Records for Store {
    fn audit_log(&self) -> Entries<'_, (Vec<u8>, Vec<u8>)> {
        Box::new(Store::audit_log(self))
    }

    fn inbox_entries(&self) -> Entries<'_, (u64, Stored<InboxRecord>)> {
        Box::new(Store::inbox_entries(self))
    }

    fn sent_entries(&self) -> Entries<'_, (String, Stored<SentRecord>)> {
        Box::new(Store::sent_entries(self))
    }

    fn seen_entries(&self) -> Entries<'_, (String, String, Stored<SeenRecord>)> {
        Box::new(Store::seen_entries(self))
    }

    fn certificate(&self, sha256: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Store::certificate(self, sha256)
    }
}
