//! Envelopes at rest in the store: sealed under the vault's newest key when
//! written, opened when read ([`crate::at_rest`] does the cryptography), and
//! what retention ([`crate::retention`]) may do to the records that hold them.
//!
//! A message the peer rejected keeps its envelope in its `sent` record so
//! that an operator can requeue it. The transaction that keeps it also
//! indexes it in the `retention` tree (`held/` + message id, valued when it
//! was rejected), and a requeue or a purge removes the entry: retention finds
//! the few kept envelopes without reading every message. A database from
//! before the index is read whole once, by the first purge, which then
//! records `held_indexed`.
//!
//! [`Store::rekey`] seals every kept envelope again under the newest key, so
//! that an older key can be removed from `storage.keys`. Bytes that sled
//! left behind in its files (a purged envelope, the value a re-seal
//! replaced) then can no longer be opened by anyone.

use std::collections::BTreeMap;

use retorno_proto::v1::{KeyEnvelopes, RekeyResponse};
use uuid::Uuid;

use super::{
    InboxRecord, OutboxRecord, SeenRecord, SentRecord, Store, StoreError, abort, decode, read_u64,
    seen_key,
};
use crate::{
    at_rest::{KeyId, key_id_of},
    audit::{self, Record},
    country::Country,
    kv::{self, Tree, TxTree},
    storage::TxError,
};

/// A record that carries an envelope, which is sealed at rest when the vault has a key.
pub(super) trait HoldsEnvelope: prost::Message + Default {
    /// Its tree: named in errors and bound into the associated data.
    const TREE: &'static str;
    /// The envelope, in the clear.
    fn envelope(&mut self) -> &mut Vec<u8>;
}

impl HoldsEnvelope for OutboxRecord {
    const TREE: &'static str = "outbox";
    fn envelope(&mut self) -> &mut Vec<u8> {
        &mut self.envelope
    }
}

impl HoldsEnvelope for InboxRecord {
    const TREE: &'static str = "inbox";
    fn envelope(&mut self) -> &mut Vec<u8> {
        &mut self.envelope
    }
}

/// The at-rest part of a stored record: on disk, a record with a key
/// configured is the record with its `envelope` emptied, followed by this
/// message (protobuf concatenation is a merge, so the bytes decode as one
/// message with field 16 added). The record types stay as their users know
/// them, with the envelope in the clear; only this module sees field 16. A
/// record written before a key was set has no field 16 and reads as it is.
/// `OutboxRecord` and `InboxRecord` must leave tag 16 unused.
#[derive(Clone, PartialEq, prost::Message)]
struct SealedEnvelope {
    /// The envelope sealed by [`crate::at_rest::Vault::seal`].
    #[prost(bytes = "vec", tag = "16")]
    sealed: Vec<u8>,
}

/// What a sealed envelope is bound to: its tree and its key there, so that
/// a sealed value copied into another record does not open.
fn associated_data(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut data = format!("retorno/{tree}/").into_bytes();
    data.extend_from_slice(key);
    data
}

/// Key in the `retention` tree: the inbox cursor up to which refused entries were swept.
const REFUSED_SWEPT: &[u8] = b"refused_swept_upto";

/// Key prefix in the `retention` tree: a rejected message whose envelope is
/// kept for a requeue (`held/` + message id), valued when it was rejected.
const HELD: &[u8] = b"held/";

/// Key in the `retention` tree: present once every kept envelope is indexed
/// under [`HELD`].
const HELD_INDEXED: &[u8] = b"held_indexed";

pub(super) fn held_key(id: Uuid) -> Vec<u8> {
    [HELD, id.as_bytes()].concat()
}

/// Indexes rejected message `id`, whose envelope its `sent` record now
/// keeps, inside the transaction that keeps it.
pub(super) fn index_held_in(
    retention: &TxTree<'_>,
    id: Uuid,
    rejected_at_micros: i64,
) -> Result<(), TxError> {
    retention.insert(held_key(id), rejected_at_micros.to_be_bytes().to_vec())
}

/// Drops the index entry of `id`, whose `sent` record no longer keeps an
/// envelope (requeued), inside the transaction that clears it.
pub(super) fn unindex_held_in(retention: &TxTree<'_>, id: Uuid) -> Result<(), TxError> {
    retention.remove(held_key(id)).map(drop)
}

/// A rejected message whose envelope is kept for a requeue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldEnvelope {
    /// The message id.
    pub id: Uuid,
    /// When the peer's rejection was recorded, microseconds since the Unix epoch.
    pub rejected_at_micros: i64,
}

/// How the kept envelopes stood before [`Store::rekey`], and what it did.
/// Holds key ids and counts only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Envelopes sealed under each key (an outbox or inbox entry, or a
    /// rejected message's envelope kept for a requeue).
    pub by_key: BTreeMap<KeyId, usize>,
    /// Envelopes in the clear (written before a key was configured).
    pub clear: usize,
    /// Envelopes sealed again under the newest key (in a dry run, to be).
    /// On a running gateway the counts above are each part's as it was
    /// scanned (the outbox, then the envelopes kept for a requeue, then the
    /// inbox), and this is what was written.
    pub resealed: usize,
}

impl Rekeyed {
    /// What a rekey under `newest` did, for its audit entry: key ids and counts.
    fn describe(&self, newest: KeyId) -> String {
        let mut before: Vec<String> = self
            .by_key
            .iter()
            .map(|(id, count)| format!("{count} under key {id}"))
            .collect();
        if self.clear > 0 {
            before.push(format!("{} in the clear", self.clear));
        }
        format!(
            "sealed {} kept envelope(s) again under key {newest}; before: {}",
            self.resealed,
            before.join(", ")
        )
    }
}

/// How many entries one transaction of [`Store::rekey`] seals again.
const REKEY_BATCH: usize = 256;

/// The key a stored record's envelope is sealed under: `Some(None)` in the
/// clear, `None` without an envelope (purged).
fn sealed_under(tree: &'static str, bytes: &[u8]) -> Result<Option<Option<KeyId>>, StoreError> {
    let sealed: SealedEnvelope = decode(tree, bytes)?;
    if !sealed.sealed.is_empty() {
        let id = key_id_of(&sealed.sealed).map_err(|source| StoreError::AtRest { tree, source })?;
        return Ok(Some(Some(id)));
    }
    // Field 1 of both record types is the envelope in the clear.
    let clear: ClearEnvelope = decode(tree, bytes)?;
    Ok((!clear.envelope.is_empty()).then_some(None))
}

/// Whether `bytes` (a record of `tree`) holds an envelope not sealed under `newest`.
fn stale_under(tree: &'static str, bytes: &[u8], newest: KeyId) -> Result<bool, StoreError> {
    Ok(matches!(sealed_under(tree, bytes)?, Some(under) if under != Some(newest)))
}

/// Field 1 of [`OutboxRecord`] and [`InboxRecord`]: the envelope, when
/// stored in the clear.
#[derive(Clone, PartialEq, prost::Message)]
struct ClearEnvelope {
    #[prost(bytes = "vec", tag = "1")]
    envelope: Vec<u8>,
}

/// What retention needs to know of an inbox entry, without opening its envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// Its cursor.
    pub cursor: u64,
    /// When it was stored, microseconds since the Unix epoch.
    pub received_at_micros: i64,
    /// Whether the case rules refused it on arrival.
    pub refused: bool,
    /// Whether it still holds its envelope (sealed or not).
    pub holds_envelope: bool,
}

impl InboxEntry {
    fn read(cursor: u64, bytes: &[u8]) -> Result<InboxEntry, StoreError> {
        let record: InboxRecord = decode("inbox", bytes)?;
        let sealed: SealedEnvelope = decode("inbox", bytes)?;
        Ok(InboxEntry {
            cursor,
            received_at_micros: record.received_at_micros,
            refused: !record.refused.is_empty(),
            holds_envelope: !(record.envelope.is_empty() && sealed.sealed.is_empty()),
        })
    }
}

/// Envelopes at rest ([`crate::at_rest`]) and what retention ([`crate::retention`]) may do to them.
impl Store {
    /// Encodes a record for the tree, its envelope sealed under the newest
    /// key and bound to `key`, or in the clear when no key is configured.
    pub(super) fn encode_at_rest<R: HoldsEnvelope>(
        &self,
        key: &[u8],
        mut record: R,
    ) -> Result<Vec<u8>, StoreError> {
        if !self.vault.seals() {
            return Ok(record.encode_to_vec());
        }
        let clear = std::mem::take(record.envelope());
        let sealed = self
            .vault
            .seal(&clear, &associated_data(R::TREE, key))
            .map_err(|source| StoreError::AtRest {
                tree: R::TREE,
                source,
            })?;
        let mut bytes = record.encode_to_vec();
        // Encoding into a Vec cannot run out of room.
        prost::Message::encode(&SealedEnvelope { sealed }, &mut bytes).map_err(|e| {
            StoreError::Corrupt {
                tree: R::TREE,
                reason: e.to_string(),
            }
        })?;
        Ok(bytes)
    }

    /// Decodes a record stored under `key`, opening its envelope if sealed
    /// (records written in the clear, before a key was set, read as they are).
    pub(super) fn decode_at_rest<R: HoldsEnvelope>(
        &self,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<R, StoreError> {
        let mut record: R = decode(R::TREE, bytes)?;
        let sealed: SealedEnvelope = decode(R::TREE, bytes)?;
        if !sealed.sealed.is_empty() {
            *record.envelope() = self
                .vault
                .open(&sealed.sealed, &associated_data(R::TREE, key))
                .map_err(|source| StoreError::AtRest {
                    tree: R::TREE,
                    source,
                })?;
        }
        Ok(record)
    }

    /// The permanent record of message `id` from `sender`, if this gateway
    /// received it: its inbox cursor, body hash and the receipt given.
    pub fn seen(&self, sender: Country, id: Uuid) -> Result<Option<SeenRecord>, StoreError> {
        self.seen
            .get(seen_key(sender, id))?
            .map(|bytes| decode("seen", &bytes))
            .transpose()
    }

    /// An inbox entry's bookkeeping; its envelope is not opened.
    pub fn inbox_entry(&self, cursor: u64) -> Result<Option<InboxEntry>, StoreError> {
        self.inbox
            .get(cursor.to_be_bytes())?
            .map(|bytes| InboxEntry::read(cursor, &bytes))
            .transpose()
    }

    /// Removes the envelope of inbox entry `cursor` and marks when, keeping
    /// the rest of the record; its `seen` record (hash and receipt) and its
    /// case are untouched. The same transaction appends the purge to the
    /// audit log, with the message, case and sender (as
    /// [`Store::received_messages`] names them) and `why` (the retention rule). Returns whether there was an envelope to
    /// remove. Not flushed: call [`Store::commit`].
    pub fn purge_inbox_entry(
        &self,
        cursor: u64,
        now_micros: i64,
        why: &str,
    ) -> Result<bool, StoreError> {
        let key = cursor.to_be_bytes();
        self.audited(|head| {
            kv::transaction(&[&self.inbox, &self.audit], |trees| {
                let [inbox, log] = trees else {
                    return Err(abort(StoreError::Closed));
                };
                let Some(bytes) = inbox.get(key)? else {
                    return Ok((false, head.clone()));
                };
                let mut record: InboxRecord = decode("inbox", &bytes).map_err(abort)?;
                let sealed: SealedEnvelope = decode("inbox", &bytes).map_err(abort)?;
                if record.envelope.is_empty() && sealed.sealed.is_empty() {
                    return Ok((false, head.clone()));
                }
                // Named as the operator's log names it; a key since removed
                // only leaves the names out: the cursor still says which entry went.
                let named = self.received_of(cursor, &bytes).map_err(abort)?;
                // Re-encoding the record alone drops the sealed part (field 16).
                record.envelope = Vec::new();
                record.purged_at_micros = now_micros;
                inbox.insert(key, prost::Message::encode_to_vec(&record))?;
                let entry = Record::envelope_purged(
                    &named.sender,
                    &format!("inbox cursor {cursor}: {why}"),
                )
                .message(named.message_id)
                .cases(&[named.case_id]);
                Ok((true, audit::append_in(log, head, &entry)?))
            })
        })
    }

    /// Durable inbox entries after the last sweep mark and received before
    /// `before_micros` that the case rules refused and that still hold their
    /// envelope, with the cursor to mark once they are purged (`None` when
    /// no entry was swept). Cursors follow arrival, so each entry is read by
    /// one sweep only.
    pub fn refused_inbox_before(
        &self,
        before_micros: i64,
    ) -> Result<(Vec<InboxEntry>, Option<u64>), StoreError> {
        let from = self
            .retention
            .get(REFUSED_SWEPT)?
            .map_or(0, |bytes| read_u64(&bytes));
        let upto = self.inbox_head();
        let mut swept = None;
        let mut refused = Vec::new();
        if from >= upto {
            return Ok((refused, swept));
        }
        for item in self
            .inbox
            .range((from + 1).to_be_bytes()..=upto.to_be_bytes())
        {
            let (key, value) = item?;
            let entry = InboxEntry::read(read_u64(&key), &value)?;
            if entry.received_at_micros >= before_micros {
                break;
            }
            swept = Some(entry.cursor);
            if entry.refused && entry.holds_envelope {
                refused.push(entry);
            }
        }
        Ok((refused, swept))
    }

    /// Records that refused inbox entries up to `cursor` were swept.
    pub fn mark_refused_swept(&self, cursor: u64) -> Result<(), StoreError> {
        self.retention.update_and_fetch(REFUSED_SWEPT, |old| {
            let old = old.map_or(0, read_u64);
            Some(old.max(cursor).to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// The rejected messages whose envelope is kept for a requeue, and
    /// whether they were found by reading every message (a database from
    /// before the index: see [`Store::index_held`]) rather than the index.
    pub fn held_envelopes(&self) -> Result<(Vec<HeldEnvelope>, bool), StoreError> {
        if self.retention.get(HELD_INDEXED)?.is_none() {
            let mut held = Vec::new();
            for item in self.sent.iter() {
                let (key, value) = item?;
                let record: SentRecord = decode("sent", &value)?;
                if !record.held_envelope.is_empty() {
                    held.push(HeldEnvelope {
                        id: sent_id(&key)?,
                        rejected_at_micros: record.answered_at_micros,
                    });
                }
            }
            return Ok((held, true));
        }
        let mut held = Vec::new();
        for item in self.retention.scan_prefix(HELD) {
            let (key, value) = item?;
            held.push(HeldEnvelope {
                id: sent_id(&key[HELD.len()..])?,
                rejected_at_micros: i64::from_be_bytes(value.as_ref().try_into().map_err(
                    |_| StoreError::Corrupt {
                        tree: "retention",
                        reason: "a held/ entry is not 8 bytes".into(),
                    },
                )?),
            });
        }
        Ok((held, false))
    }

    /// Indexes `held`, found by reading every message, and records that
    /// every kept envelope is indexed from now on. An entry whose message
    /// was requeued meanwhile is dropped by its purge.
    pub fn index_held(&self, held: &[HeldEnvelope]) -> Result<(), StoreError> {
        kv::transaction(&[&self.retention], |retention| {
            for envelope in held {
                index_held_in(&retention[0], envelope.id, envelope.rejected_at_micros)?;
            }
            retention[0].insert(HELD_INDEXED, Vec::new())
        })
    }

    /// Removes the envelope kept for a requeue of rejected message `id` if
    /// its rejection was recorded before `before_micros`, and marks when;
    /// the rest of its `sent` record (the rejection, the history) stays.
    /// The same transaction appends the purge to the audit log with `why`
    /// (the retention rule). Its index entry goes too, as does one whose
    /// message no longer keeps an envelope. Returns whether there was an
    /// envelope to remove. Not flushed: call [`Store::commit`].
    pub fn purge_held_envelope(
        &self,
        id: Uuid,
        before_micros: i64,
        now_micros: i64,
        why: &str,
    ) -> Result<bool, StoreError> {
        self.audited(|head| {
            kv::transaction(&[&self.sent, &self.retention, &self.audit], |trees| {
                let [sent, retention, log] = trees else {
                    return Err(abort(StoreError::Closed));
                };
                let record: Option<SentRecord> = sent
                    .get(id.as_bytes())?
                    .map(|bytes| decode("sent", &bytes))
                    .transpose()
                    .map_err(abort)?;
                let Some(mut record) = record.filter(|r| !r.held_envelope.is_empty()) else {
                    unindex_held_in(retention, id)?;
                    return Ok((false, head.clone()));
                };
                if record.answered_at_micros >= before_micros {
                    // Rejected again since it was indexed: not due yet.
                    index_held_in(retention, id, record.answered_at_micros)?;
                    return Ok((false, head.clone()));
                }
                record.held_envelope = Vec::new();
                record.held_key = Vec::new();
                record.held_purged_at_micros = now_micros;
                sent.insert(id.as_bytes(), prost::Message::encode_to_vec(&record))?;
                unindex_held_in(retention, id)?;
                let entry = Record::envelope_purged(&record.recipient, why)
                    .message(id.to_string())
                    .cases(&record.case_ids);
                Ok((true, audit::append_in(log, head, &entry)?))
            })
        })
    }

    /// Seals every kept envelope again under the newest key of
    /// `storage.keys` (one already under it is left as it is), envelopes in
    /// the clear included: the outbox, the inbox and the envelopes of
    /// rejected messages kept for a requeue. Counts without changing
    /// anything when `dry_run`. Once every batch is written, appends what it
    /// did to the audit log. For a stopped gateway (`retorno-gateway
    /// rekey`); flushed before it returns.
    pub async fn rekey(&self, dry_run: bool) -> Result<Rekeyed, StoreError> {
        let done = self.rekey_unflushed(dry_run, "retorno-gateway rekey")?;
        if !dry_run {
            self.commit().await?;
        }
        Ok(done)
    }

    /// [`Store::rekey`] without the flush, and safe beside a running
    /// gateway's writes (the Operator API's `Rekey`): each batch reads its
    /// entries again inside its transaction, so that an entry delivered,
    /// purged or requeued since the scan is left as it now is, and what is
    /// written meanwhile is sealed under the newest key already. The
    /// outbox goes first and the envelopes kept for a requeue after it: a
    /// message rejected meanwhile moves its outbox bytes there as they are,
    /// so they are scanned once the outbox holds nothing older. A real run
    /// always appends a `rekeyed` entry to the audit log as `party`'s, also
    /// when it sealed nothing or stopped on an error (then with what it did
    /// before). Blocking (it reads every kept envelope): a running gateway
    /// calls it on a blocking thread, then [`Store::commit`].
    pub fn rekey_unflushed(&self, dry_run: bool, party: &str) -> Result<Rekeyed, StoreError> {
        let Some(newest) = self.vault.sealing_key() else {
            return Err(StoreError::Settings {
                field: "storage.keys",
                reason: "no key is configured to seal under: append a key file first".into(),
            });
        };
        let mut done = Rekeyed::default();
        let mut count = |under: Option<KeyId>| {
            match under {
                Some(id) => *done.by_key.entry(id).or_default() += 1,
                None => done.clear += 1,
            }
            under != Some(newest)
        };
        if dry_run {
            let stale = stale::<OutboxRecord>(&self.outbox, &mut count)?.len()
                + self.stale_held(&mut count)?.len()
                + stale::<InboxRecord>(&self.inbox, &mut count)?.len();
            done.resealed = stale;
            return Ok(done);
        }
        let mut resealed = 0;
        let outcome = (|| {
            let outbox = stale::<OutboxRecord>(&self.outbox, &mut count)?;
            resealed += self.reseal::<OutboxRecord>(&self.outbox, &outbox, newest)?;
            let held = self.stale_held(&mut count)?;
            resealed += self.reseal_held(&held, newest)?;
            let inbox = stale::<InboxRecord>(&self.inbox, &mut count)?;
            resealed += self.reseal::<InboxRecord>(&self.inbox, &inbox, newest)?;
            Ok::<(), StoreError>(())
        })();
        done.resealed = resealed;
        let mut what = done.describe(newest);
        match outcome {
            Ok(()) => {
                self.audit(&[Record::rekeyed(party, &what)])?;
                Ok(done)
            }
            Err(error) => {
                // What it did before the error is on disk: said if the log takes it.
                what.push_str(&format!("; stopped by an error: {error}"));
                let _ = self.audit(&[Record::rekeyed(party, &what)]);
                Err(error)
            }
        }
    }

    /// The keys of the `sent` records whose envelope kept for a requeue
    /// `count` says to seal again.
    fn stale_held(
        &self,
        count: &mut impl FnMut(Option<KeyId>) -> bool,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut held = Vec::new();
        for item in self.sent.iter() {
            let (key, value) = item?;
            let record: SentRecord = decode("sent", &value)?;
            if record.held_envelope.is_empty() {
                continue;
            }
            if let Some(under) = sealed_under(OutboxRecord::TREE, &record.held_envelope)?
                && count(under)
            {
                held.push(key.to_vec());
            }
        }
        Ok(held)
    }

    /// Seals the envelopes kept for a requeue in `sent` records `keys` again
    /// under `newest` ([`Store::rewrite_in_batches`]); returns how many it wrote.
    fn reseal_held(&self, keys: &[Vec<u8>], newest: KeyId) -> Result<usize, StoreError> {
        self.rewrite_in_batches(&self.sent, keys, |_, bytes| {
            let mut record: SentRecord = decode("sent", bytes)?;
            // Requeued, purged or sealed again since the scan.
            if !stale_under(OutboxRecord::TREE, &record.held_envelope, newest)? {
                return Ok(None);
            }
            let kept: OutboxRecord =
                self.decode_at_rest(&record.held_key, &record.held_envelope)?;
            record.held_envelope = self.encode_at_rest(&record.held_key, kept)?;
            Ok(Some(prost::Message::encode_to_vec(&record)))
        })
    }

    /// Seals the envelopes of `tree`'s entries `keys` again under `newest`
    /// ([`Store::rewrite_in_batches`]); returns how many it wrote. An entry
    /// gone since the scan (delivered), without an envelope now (purged) or
    /// already under `newest` is left as it is: a purged envelope must not
    /// come back.
    pub(super) fn reseal<R: HoldsEnvelope>(
        &self,
        tree: &Tree,
        keys: &[Vec<u8>],
        newest: KeyId,
    ) -> Result<usize, StoreError> {
        self.rewrite_in_batches(tree, keys, |key, bytes| {
            if !stale_under(R::TREE, bytes, newest)? {
                return Ok(None);
            }
            let record: R = self.decode_at_rest(key, bytes)?;
            self.encode_at_rest(key, record).map(Some)
        })
    }

    /// Rewrites `tree`'s entries `keys`, [`REKEY_BATCH`] per transaction:
    /// `again` is given each entry still there, read inside the transaction,
    /// and returns its new bytes, or `None` to leave it as it now is.
    /// Returns how many entries it rewrote.
    fn rewrite_in_batches(
        &self,
        tree: &Tree,
        keys: &[Vec<u8>],
        again: impl Fn(&[u8], &[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<usize, StoreError> {
        let mut written = 0;
        for batch in keys.chunks(REKEY_BATCH) {
            written += kv::transaction(&[tree], |trees| {
                let mut written = 0;
                for key in batch {
                    let Some(bytes) = trees[0].get(key)? else {
                        continue;
                    };
                    if let Some(value) = again(key, &bytes).map_err(abort)? {
                        trees[0].insert(key, value)?;
                        written += 1;
                    }
                }
                Ok(written)
            })?;
        }
        Ok(written)
    }

    /// What a rekey found and did, for the operator: each key by id and
    /// file, and (after a real one) the files no kept envelope needs now.
    pub fn rekey_report(&self, done: &Rekeyed, dry_run: bool) -> RekeyResponse {
        let file = |id: KeyId| {
            self.vault
                .keys()
                .find(|(k, _)| *k == id)
                .map(|(_, file)| file.display().to_string())
                .unwrap_or_default()
        };
        let newest = self.vault.sealing_key();
        RekeyResponse {
            keys: done
                .by_key
                .iter()
                .map(|(id, count)| KeyEnvelopes {
                    id: id.to_string(),
                    file: file(*id),
                    envelopes: *count as u64,
                })
                .collect(),
            clear: done.clear as u64,
            resealed: done.resealed as u64,
            sealing_key: newest.map(|id| KeyEnvelopes {
                id: id.to_string(),
                file: file(id),
                envelopes: done.by_key.get(&id).copied().unwrap_or_default() as u64,
            }),
            dry_run,
            retirable_files: match (dry_run, newest) {
                (false, Some(newest)) => self
                    .vault
                    .keys()
                    .filter(|(id, _)| *id != newest)
                    .map(|(_, file)| file.display().to_string())
                    .collect(),
                _ => Vec::new(),
            },
        }
    }
}

/// The keys of `tree`'s entries whose envelope `count` (told the key it is
/// sealed under, `None` in the clear) says to seal again; entries without
/// an envelope (purged) are skipped.
pub(super) fn stale<R: HoldsEnvelope>(
    tree: &Tree,
    count: &mut impl FnMut(Option<KeyId>) -> bool,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut keys = Vec::new();
    for item in tree.iter() {
        let (key, value) = item?;
        if let Some(under) = sealed_under(R::TREE, &value)?
            && count(under)
        {
            keys.push(key.to_vec());
        }
    }
    Ok(keys)
}

/// The message id a `sent` key (or the end of an index key) holds.
pub(super) fn sent_id(key: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(key).map_err(|e| StoreError::Corrupt {
        tree: "sent",
        reason: e.to_string(),
    })
}
