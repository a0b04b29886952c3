//! The inbox: envelopes received from peers, stored once each under the
//! permanent dedupe record with the receipt given; the durable watermark
//! that subscribers read up to; and each agency's acknowledged cursor.

use tokio::sync::watch;
use uuid::Uuid;

use super::{
    Arrival, Direction, InboxRecord, Received, SeenRecord, Store, StoreError, abort, decode,
    next_cursor, positions, read_u64, seen_key,
};
use crate::{
    audit::{self, Record},
    country::Country,
    kv,
    storage::{CasesTx, TxError},
};

/// The inbox, dedupe and acknowledgements.
impl Store {
    /// Stores a received envelope with its dedupe record and its case step in
    /// one transaction, unless `(sender, id)` was stored before. `case_step`
    /// applies the message to its case, or records it as refused, and returns
    /// the refusal; `receipt_for(received_at, refusal)` builds the receipt for
    /// a new entry. Call [`Store::commit`] and then [`Store::publish_inbox`]
    /// before answering with it. [`Store::receive_all`] for one arrival that
    /// names no case (the Peer API stores whole batches with it).
    pub fn receive(
        &self,
        sender: Country,
        id: Uuid,
        envelope: &[u8],
        body_sha256: &[u8],
        case_step: impl Fn(&dyn CasesTx) -> Result<Option<String>, TxError>,
        receipt_for: impl Fn(i64, &str) -> Vec<u8>,
    ) -> Result<Received, StoreError> {
        let arrival = Arrival {
            sender,
            id,
            case_id: "",
            kind: "",
            envelope,
            body_sha256,
            sequence: 0,
            official: "",
        };
        let mut received = self.receive_all(
            &[arrival],
            |_, cases| case_step(cases),
            |_, at, refused| receipt_for(at, refused),
            |_| Ok(()),
        )?;
        received.pop().ok_or(StoreError::Closed)
    }

    /// [`Store::receive`] for a whole delivery batch, in one transaction: the
    /// closures take the index of the arrival in `arrivals`. An id stored
    /// before, or earlier in the same batch, is a duplicate (or a conflict if
    /// its body differs). The audit entry of each delivery (or of its refusal
    /// by the case rules) is written in the same transaction, and so are
    /// the new receipts in their final form: `seal` replaces each (message
    /// id, encoded receipt) of the batch's new entries by its sealed form,
    /// all at once (one signature), and its error stores nothing.
    pub fn receive_all(
        &self,
        arrivals: &[Arrival<'_>],
        case_step: impl Fn(usize, &dyn CasesTx) -> Result<Option<String>, TxError>,
        receipt_for: impl Fn(usize, i64, &str) -> Vec<u8>,
        seal: impl Fn(&mut [(Uuid, Vec<u8>)]) -> Result<(), String>,
    ) -> Result<Vec<Received>, StoreError> {
        if arrivals.is_empty() {
            return Ok(Vec::new());
        }
        let mut next = self.inbox_next.lock().unwrap_or_else(|e| e.into_inner());
        let first = match *next {
            Some(first) => first,
            None => next_cursor(&self.inbox)?,
        };
        let received_at = crate::clock::system_micros();
        let trees = [
            &self.inbox,
            &self.seen,
            &self.cases,
            &self.audit,
            &self.sequences,
        ];
        let received = self.audited(|head| {
            kv::transaction(&trees, |views| {
                let [inbox, seen, cases, log, sequences] = views else {
                    return Err(abort(StoreError::Closed));
                };
                if seen.reads_are_round_trips() {
                    // On PostgreSQL, what the loop reads one key at a time,
                    // in one round trip per tree.
                    let keys: Vec<Vec<u8>> = arrivals
                        .iter()
                        .map(|arrival| seen_key(arrival.sender, arrival.id).to_vec())
                        .collect();
                    seen.prefetch(&keys)?;
                    let keys: Vec<Vec<u8>> = arrivals
                        .iter()
                        .filter(|arrival| !arrival.case_id.is_empty())
                        .map(|arrival| crate::case::case_key(arrival.case_id))
                        .collect();
                    cases.prefetch(&keys)?;
                    positions::prefetch_index(
                        sequences,
                        Direction::In,
                        arrivals
                            .iter()
                            .map(|arrival| (arrival.sender, arrival.sequence)),
                    )?;
                }
                let mut head = head.clone();
                let mut cursor = first;
                let mut received = Vec::with_capacity(arrivals.len());
                let mut highest = positions::Highest::default();
                // The new entries' dedupe records, whose receipts are sealed
                // after the loop: (key, record, index in `received`, message id).
                let mut new_seen: Vec<(_, SeenRecord, usize, Uuid)> = Vec::new();
                for (index, arrival) in arrivals.iter().enumerate() {
                    let key = seen_key(arrival.sender, arrival.id);
                    let (sender, seq) = (arrival.sender, arrival.sequence);
                    positions::index_in(sequences, Direction::In, sender, seq, arrival.id)?;
                    highest.note(Direction::In, sender, seq, arrival.id);
                    if let Some(bytes) = seen.get(key)? {
                        let earlier: SeenRecord = decode("seen", &bytes).map_err(abort)?;
                        received.push(if earlier.body_sha256 == arrival.body_sha256 {
                            Received::Duplicate {
                                receipt: earlier.receipt,
                            }
                        } else {
                            Received::Conflict
                        });
                        continue;
                    }
                    let refused = case_step(index, cases)?.unwrap_or_default();
                    let receipt = receipt_for(index, received_at, &refused);
                    let entry = Record::stored(arrival.sender, &refused)
                        .official(arrival.official)
                        .message(arrival.id.to_string())
                        .cases(&[arrival.case_id]);
                    head = audit::append_in(log, &head, &entry)?;
                    let record = InboxRecord {
                        envelope: arrival.envelope.to_vec(),
                        received_at_micros: received_at,
                        refused,
                        sender: arrival.sender.to_string(),
                        message_id: arrival.id.to_string(),
                        case_id: arrival.case_id.to_owned(),
                        kind: arrival.kind.to_owned(),
                        size_bytes: arrival.envelope.len() as u64,
                        purged_at_micros: 0,
                    };
                    let seen_record = SeenRecord {
                        receipt: receipt.clone(),
                        body_sha256: arrival.body_sha256.to_vec(),
                        cursor,
                    };
                    let record = self
                        .encode_at_rest(&cursor.to_be_bytes(), record)
                        .map_err(abort)?;
                    inbox.insert(cursor.to_be_bytes(), record)?;
                    // Written now, so that the same id later in the batch is
                    // a duplicate; written again below, sealed.
                    seen.insert(key, prost::Message::encode_to_vec(&seen_record))?;
                    new_seen.push((key, seen_record, received.len(), arrival.id));
                    received.push(Received::Stored { cursor, receipt });
                    cursor += 1;
                }
                let mut receipts: Vec<(Uuid, Vec<u8>)> = new_seen
                    .iter()
                    .map(|(_, record, _, id)| (*id, record.receipt.clone()))
                    .collect();
                if !receipts.is_empty() {
                    seal(&mut receipts).map_err(|reason| abort(StoreError::Seal(reason)))?;
                }
                for ((key, mut record, at, _), (_, sealed)) in new_seen.into_iter().zip(receipts) {
                    // A duplicate of it later in the batch answers with the same receipt.
                    for later in &mut received[at..] {
                        if let Received::Duplicate { receipt } = later
                            && *receipt == record.receipt
                        {
                            receipt.clone_from(&sealed);
                        }
                    }
                    if let Received::Stored { receipt, .. } = &mut received[at] {
                        receipt.clone_from(&sealed);
                    }
                    record.receipt = sealed;
                    seen.insert(key, prost::Message::encode_to_vec(&record))?;
                }
                highest.raise_in(sequences)?;
                Ok(((received, cursor), head))
            })
        });
        // After a failure the commit's outcome may be unknown: the next
        // cursor is read again from the inbox before it is used.
        *next = received.as_ref().ok().map(|(_, after)| *after);
        Ok(received?.0)
    }

    /// Lets subscribers see inbox entries up to `cursor` (they are durable).
    pub fn publish_inbox(&self, cursor: u64) {
        self.inbox_durable.send_if_modified(|durable| {
            let raise = cursor > *durable;
            *durable = (*durable).max(cursor);
            raise
        });
    }

    /// Follows the highest durable inbox cursor.
    pub fn inbox_watermark(&self) -> watch::Receiver<u64> {
        self.inbox_durable.subscribe()
    }

    /// Up to `limit` durable inbox entries after `after`, in order.
    pub fn inbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, InboxRecord)>, StoreError> {
        let upto = *self.inbox_durable.borrow();
        if after >= upto {
            return Ok(Vec::new());
        }
        self.inbox
            .range((after + 1).to_be_bytes()..=upto.to_be_bytes())
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                Ok((read_u64(&key), self.decode_at_rest(&key, &value)?))
            })
            .collect()
    }

    /// The highest durable inbox cursor.
    pub fn inbox_head(&self) -> u64 {
        *self.inbox_durable.borrow()
    }

    /// What this gateway stored for `(sender, id)`: the envelope as received
    /// and the receipt it gave, for evidence.
    pub fn received(
        &self,
        sender: Country,
        id: Uuid,
    ) -> Result<Option<(InboxRecord, SeenRecord)>, StoreError> {
        let Some(bytes) = self.seen.get(seen_key(sender, id))? else {
            return Ok(None);
        };
        let seen: SeenRecord = decode("seen", &bytes)?;
        let Some(inbox) = self.inbox.get(seen.cursor.to_be_bytes())? else {
            return Ok(None);
        };
        let record = self.decode_at_rest(&seen.cursor.to_be_bytes(), &inbox)?;
        Ok(Some((record, seen)))
    }

    /// Every sender that this gateway received message `id` from (normally one).
    pub fn senders_of(&self, id: Uuid) -> Result<Vec<Country>, StoreError> {
        let mut senders = Vec::new();
        for item in self.seen.iter() {
            let (key, _) = item?;
            if key.len() == 18
                && key[2..] == id.as_bytes()[..]
                && let Ok(country) = Country::from_bytes([key[0], key[1]])
            {
                senders.push(country);
            }
        }
        Ok(senders)
    }

    /// The last inbox cursor `agency` acknowledged (0 if none).
    pub fn acknowledged(&self, agency: &str) -> Result<u64, StoreError> {
        Ok(self
            .acks
            .get(agency.as_bytes())?
            .map_or(0, |bytes| read_u64(&bytes)))
    }

    /// Raises `agency`'s acknowledged cursor to `cursor` (never lowers it), durably.
    pub async fn acknowledge(&self, agency: &str, cursor: u64) -> Result<u64, StoreError> {
        let updated = self.acks.update_and_fetch(agency.as_bytes(), |old| {
            let old = old.map_or(0, read_u64);
            Some(old.max(cursor).to_be_bytes().to_vec())
        })?;
        self.commit().await?;
        Ok(updated.map_or(cursor, |bytes| read_u64(&bytes)))
    }

    /// Replaces the receipts kept for `(sender, id)` with their sealed form,
    /// in one transaction: for receipts stored before [`Store::receive_all`]
    /// sealed them itself (a crash between storing and sealing, in an
    /// earlier release). Call before [`Store::commit`].
    pub fn seal_receipts(&self, sealed: &[(Country, Uuid, Vec<u8>)]) -> Result<(), StoreError> {
        kv::transaction(&[&self.seen], |trees| {
            let seen = &trees[0];
            for (sender, id, receipt) in sealed {
                let key = seen_key(*sender, *id);
                if let Some(bytes) = seen.get(key)? {
                    let mut record: SeenRecord = decode("seen", &bytes).map_err(abort)?;
                    record.receipt.clone_from(receipt);
                    seen.insert(key, prost::Message::encode_to_vec(&record))?;
                }
            }
            Ok(())
        })
    }
}
