//! The operator's view of the messages this gateway accepted and of those it
//! received: the message log, where each peer's queue stands, and
//! requeueing a message the peer rejected.
//!
//! Everything here reads the `sent`, `outbox`, `inbox`, `seen` and `acks`
//! trees the hot path already writes; nothing adds a write per message. A
//! received message is listed from its inbox record's bookkeeping (sender,
//! id, case, kind, size, kept in the clear beside the sealed envelope); an
//! entry stored before those were kept is opened for them, and one of those
//! whose envelope retention removed is listed by its cursor and times alone. A rejected message's outbox
//! entry is kept in its [`SentRecord`] (`held_envelope`, still sealed at rest
//! under its old key) by the same transaction that records the rejection, so
//! that [`Store::requeue`] can put it back in the outbox under the peer's
//! next sequence number, never a used one.

use crate::storage::TxError;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{
    FinishTrees, InboxRecord, OutboxRecord, RequeuedRecord, SentRecord, Store, StoreError, Write,
    abort, decode, outbox_key, read_u64,
};
use crate::{
    audit::{self, Record},
    country::Country,
};
use retorno_proto::v1::DeliveryState;

/// A requeue the writer applied: its peer, who waits for it, and its outcome.
pub(super) type WaitingRequeue = (
    Country,
    oneshot::Sender<Result<Requeued, StoreError>>,
    Result<Requeued, StoreError>,
);

/// Which messages of the log to list ([`Store::messages`],
/// [`Store::received_messages`]).
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    /// Only messages to this peer (received: from it).
    pub peer: Option<Country>,
    /// Only messages in this state (see [`state_of`]).
    pub state: Option<LogState>,
    /// Only messages accepted at or after this time (microseconds since the epoch).
    pub since_micros: i64,
    /// Only messages of this case.
    pub case_id: Option<String>,
    /// Only sent messages older than this one (the previous page's last).
    pub before: Option<Uuid>,
    /// Only received messages before this inbox cursor (the previous page's last).
    pub before_cursor: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// Where a message stands as the operator reads it: a rejection (not
/// stored by the peer) is told from a refusal (stored, refused by the
/// peer's case rules), because only the first can be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogState {
    /// In the outbox.
    Queued,
    /// Stored by the peer and applied to its case.
    Delivered,
    /// Refused by the peer without storing it.
    Rejected,
    /// Stored by the peer as refused by its case rules; for a received
    /// message, stored here as refused by this gateway's.
    Refused,
    /// Received from a peer, stored, and given to this country's agencies.
    Received,
}

impl LogState {
    /// Whether a message that went this way can be in this state: only
    /// [`LogState::Refused`] is a state of both.
    pub fn applies_to(self, received: bool) -> bool {
        match self {
            LogState::Queued | LogState::Delivered | LogState::Rejected => !received,
            LogState::Received => received,
            LogState::Refused => true,
        }
    }
}

/// The [`LogState`] of a sent record.
pub fn state_of(record: &SentRecord) -> LogState {
    match DeliveryState::try_from(record.state) {
        Ok(DeliveryState::Delivered) if !record.peer_refused.is_empty() => LogState::Refused,
        Ok(DeliveryState::Delivered) => LogState::Delivered,
        Ok(DeliveryState::Rejected) => LogState::Rejected,
        _ => LogState::Queued,
    }
}

/// Why a message cannot be requeued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRequeueable {
    /// This gateway accepted no message with that id.
    Unknown,
    /// It is still in the outbox.
    Queued,
    /// The peer stored it and gave a receipt.
    Delivered,
    /// The peer stored it, refused by its case rules: a new message is needed.
    RefusedByCaseRules,
    /// Rejected before rejected envelopes were kept: nothing to send.
    EnvelopeGone,
    /// Its kept envelope was removed by retention
    /// (`storage.retention_withdrawn_days` after the rejection).
    EnvelopePurged,
}

impl NotRequeueable {
    /// The reason as a sentence an operator can act on.
    pub fn reason(self) -> &'static str {
        match self {
            NotRequeueable::Unknown => "this gateway accepted no message with this id",
            NotRequeueable::Queued => "it is still queued: it goes out when the peer answers",
            NotRequeueable::Delivered => "the peer stored it and gave a receipt",
            NotRequeueable::RefusedByCaseRules => {
                "the peer stored it and its case rules refused it; that answer is final: send a new message instead"
            }
            NotRequeueable::EnvelopeGone => {
                "it was rejected before this gateway kept rejected envelopes; send a new message instead"
            }
            NotRequeueable::EnvelopePurged => {
                "retention removed its envelope storage.retention_withdrawn_days after the rejection; send a new message instead"
            }
        }
    }
}

/// What [`Store::requeue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeued {
    /// Back in the outbox under this new sequence number.
    Now(u64),
    /// Not requeued, and why.
    Not(NotRequeueable),
}

/// Whether a message can be sent again: only one the peer rejected without
/// storing it, whose envelope was kept. The one rule `ops show` and
/// `ops requeue` both ask.
pub fn requeueable(record: Option<&SentRecord>) -> Result<(), NotRequeueable> {
    let Some(record) = record else {
        return Err(NotRequeueable::Unknown);
    };
    match state_of(record) {
        LogState::Queued => Err(NotRequeueable::Queued),
        LogState::Delivered => Err(NotRequeueable::Delivered),
        LogState::Refused => Err(NotRequeueable::RefusedByCaseRules),
        LogState::Rejected if record.held_purged_at_micros != 0 => {
            Err(NotRequeueable::EnvelopePurged)
        }
        LogState::Rejected if record.held_envelope.is_empty() => Err(NotRequeueable::EnvelopeGone),
        LogState::Rejected => Ok(()),
        // Never a sent record's state.
        LogState::Received => Err(NotRequeueable::Unknown),
    }
}

/// A message this gateway received, as the operator's log lists it: its
/// inbox record's bookkeeping, never its envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Its inbox cursor.
    pub cursor: u64,
    /// The sending country; empty if unknown (see the module doc).
    pub sender: String,
    /// The message id; empty if unknown.
    pub message_id: String,
    /// The case it names; empty if unknown.
    pub case_id: String,
    /// The payload kind; empty if unknown.
    pub kind: String,
    /// The envelope's size in bytes; 0 if unknown.
    pub size_bytes: u64,
    /// When it was stored, microseconds since the epoch.
    pub received_at_micros: i64,
    /// Why this gateway's case rules refused it, if they did.
    pub refused: String,
    /// When retention removed its envelope; 0 while kept.
    pub purged_at_micros: i64,
}

impl ReceivedMessage {
    /// Where it stands: [`LogState::Refused`] or [`LogState::Received`].
    pub fn state(&self) -> LogState {
        if self.refused.is_empty() {
            LogState::Received
        } else {
            LogState::Refused
        }
    }
}

impl MessageFilter {
    fn admits_received(&self, message: &ReceivedMessage) -> bool {
        self.peer.is_none_or(|peer| message.sender == peer.as_str())
            && self.state.is_none_or(|state| message.state() == state)
            && message.received_at_micros >= self.since_micros
            && self
                .case_id
                .as_ref()
                .is_none_or(|case| message.case_id == *case)
    }

    fn admits(&self, record: &SentRecord) -> bool {
        self.peer
            .is_none_or(|peer| record.recipient == peer.as_str())
            && self.state.is_none_or(|state| state_of(record) == state)
            && record.accepted_at_micros >= self.since_micros
            && self
                .case_id
                .as_ref()
                .is_none_or(|case| record.case_ids.contains(case))
    }
}

impl Store {
    /// A page of the message log, newest first (message ids are UUIDv7, so
    /// the `sent` tree is in acceptance order), and whether more follow.
    pub fn messages(
        &self,
        filter: &MessageFilter,
    ) -> Result<(Vec<(Uuid, SentRecord)>, bool), StoreError> {
        let upper = filter.before.map_or([0xff; 16], |id| *id.as_bytes());
        let mut page = Vec::new();
        for item in self.sent.range(..upper).rev() {
            let (key, value) = item?;
            let record: SentRecord = decode("sent", &value)?;
            if !filter.admits(&record) {
                continue;
            }
            if page.len() == filter.limit {
                return Ok((page, true));
            }
            page.push((super::at_rest::sent_id(&key)?, record));
        }
        Ok((page, false))
    }

    /// A page of the messages received from peers, newest first (inbox
    /// cursors follow arrival), and whether more follow. Only durable
    /// entries are listed.
    pub fn received_messages(
        &self,
        filter: &MessageFilter,
    ) -> Result<(Vec<ReceivedMessage>, bool), StoreError> {
        let upto = self.inbox_head();
        let upper = filter
            .before_cursor
            .map_or(upto, |cursor| cursor.saturating_sub(1).min(upto));
        let mut page = Vec::new();
        for item in self.inbox.range(..=upper.to_be_bytes()).rev() {
            let (key, value) = item?;
            let message = self.received_of(read_u64(&key), &value)?;
            if !filter.admits_received(&message) {
                continue;
            }
            if page.len() == filter.limit {
                return Ok((page, true));
            }
            page.push(message);
        }
        Ok((page, false))
    }

    /// Message `id` as received from one of `senders`, if this gateway stored it.
    pub fn received_message(
        &self,
        senders: impl IntoIterator<Item = Country>,
        id: Uuid,
    ) -> Result<Option<ReceivedMessage>, StoreError> {
        for sender in senders {
            let Some(seen) = self.seen(sender, id)? else {
                continue;
            };
            let Some(value) = self.inbox.get(seen.cursor.to_be_bytes())? else {
                continue;
            };
            let mut message = self.received_of(seen.cursor, &value)?;
            // An entry from before the bookkeeping, purged, is known by its
            // dedupe record.
            message.sender = sender.to_string();
            message.message_id = id.to_string();
            return Ok(Some(message));
        }
        Ok(None)
    }

    /// Every agency's acknowledged inbox cursor, by URN.
    pub fn acknowledgements(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.acks
            .iter()
            .map(|item| {
                let (key, value) = item?;
                Ok((String::from_utf8_lossy(&key).into_owned(), read_u64(&value)))
            })
            .collect()
    }

    /// The bookkeeping of inbox entry `cursor`, whose stored bytes are `value`.
    pub(super) fn received_of(
        &self,
        cursor: u64,
        value: &[u8],
    ) -> Result<ReceivedMessage, StoreError> {
        let record: InboxRecord = decode("inbox", value)?;
        let mut message = ReceivedMessage {
            cursor,
            sender: record.sender,
            message_id: record.message_id,
            case_id: record.case_id,
            kind: record.kind,
            size_bytes: record.size_bytes,
            received_at_micros: record.received_at_micros,
            refused: record.refused,
            purged_at_micros: record.purged_at_micros,
        };
        if message.message_id.is_empty() && message.purged_at_micros == 0 {
            // Stored before the bookkeeping: what the envelope names. A key
            // since retired leaves it unnamed rather than failing the page.
            if let Ok(opened) = self.decode_at_rest::<InboxRecord>(&cursor.to_be_bytes(), value) {
                message.size_bytes = opened.envelope.len() as u64;
                if let Some(body) = crate::envelope::body_of(&opened.envelope) {
                    message.kind = crate::envelope::kind(&body).to_owned();
                    message.sender = body.sender.map(|s| s.country).unwrap_or_default();
                    message.message_id = body.message_id;
                    message.case_id = body.case_id;
                }
            }
        }
        Ok(message)
    }

    /// When the oldest message queued for `peer` was accepted (microseconds
    /// since the epoch), if one is queued.
    pub fn oldest_queued(&self, peer: Country) -> Result<Option<i64>, StoreError> {
        let Some(first) = self.outbox.scan_prefix(peer.as_bytes()).next() else {
            return Ok(None);
        };
        let (key, value) = first?;
        let record: OutboxRecord = self.decode_at_rest(&key, &value)?;
        let Ok(id) = Uuid::try_parse(&record.message_id) else {
            return Ok(None);
        };
        Ok(self.sent_status(id)?.map(|sent| sent.accepted_at_micros))
    }

    /// Puts a message the peer rejected back in its outbox, after what is
    /// queued now, under the peer's next sequence number; the same id, so
    /// that the peer's dedupe still holds. Recorded in the audit log as
    /// `operator`'s, in the same transaction, and durable before it answers.
    pub async fn requeue(&self, id: Uuid, operator: &str) -> Result<Requeued, StoreError> {
        let record = self.sent_status(id)?;
        if let Err(not) = requeueable(record.as_ref()) {
            return Ok(Requeued::Not(not));
        }
        let Some(peer) = record.and_then(|r| r.recipient.parse::<Country>().ok()) else {
            return Ok(Requeued::Not(NotRequeueable::Unknown));
        };
        let (done, wait) = oneshot::channel();
        self.writes
            .send(Write::Requeue {
                peer,
                id,
                operator: operator.to_owned(),
                done,
            })
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// One requeue inside the writer's transaction: checked again there (a
    /// second requeue of the same id in the same group finds it queued).
    pub(super) fn requeue_in(
        &self,
        (peer, id, operator): (Country, Uuid, &str),
        next_seq: &mut std::collections::HashMap<Country, u64>,
        FinishTrees {
            outbox,
            sent,
            log,
            retention,
            ..
        }: FinishTrees<'_>,
        head: &mut audit::Head,
    ) -> Result<Requeued, TxError> {
        let record: Option<SentRecord> = sent
            .get(id.as_bytes())?
            .map(|bytes| decode("sent", &bytes))
            .transpose()
            .map_err(abort)?;
        if let Err(not) = requeueable(record.as_ref()) {
            return Ok(Requeued::Not(not));
        }
        let Some(mut record) = record else {
            return Ok(Requeued::Not(NotRequeueable::Unknown));
        };
        let seq = *next_seq.get(&peer).ok_or_else(|| {
            abort(StoreError::Corrupt {
                tree: "outbox",
                reason: format!("no sequence taken for {peer}"),
            })
        })?;
        let held: OutboxRecord = self
            .decode_at_rest(&record.held_key, &record.held_envelope)
            .map_err(abort)?;
        let key = outbox_key(peer, seq);
        outbox.insert(key, self.encode_at_rest(&key, held).map_err(abort)?)?;
        record.requeued.push(RequeuedRecord {
            at_micros: crate::clock::system_micros(),
            operator: operator.to_owned(),
            rejection: std::mem::take(&mut record.rejection),
            rejected_at_micros: std::mem::take(&mut record.answered_at_micros),
            sequence: seq,
        });
        record.state = DeliveryState::Queued as i32;
        record.held_envelope.clear();
        record.held_key.clear();
        super::at_rest::unindex_held_in(retention, id)?;
        sent.insert(id.as_bytes(), prost::Message::encode_to_vec(&record))?;
        let entry = Record::requeued(operator, &id.to_string(), seq).cases(&record.case_ids);
        *head = audit::append_in(log, head, &entry)?;
        next_seq.insert(peer, seq + 1);
        Ok(Requeued::Now(seq))
    }

    /// Answers the requeues of a group after `flushed`, publishing the
    /// requeued entries to their couriers first.
    pub(super) fn answer_requeues(
        &self,
        requeues: Vec<WaitingRequeue>,
        flushed: Result<(), StoreError>,
    ) {
        for (peer, done, result) in requeues {
            let answer = match result {
                Ok(Requeued::Now(seq)) => flushed.clone().map(|()| Requeued::Now(seq)),
                other => other,
            };
            if matches!(answer, Ok(Requeued::Now(_)))
                && let Err(error) = self.publish_outbox(peer)
            {
                tracing::error!(%error, %peer, "could not publish a requeued entry");
            }
            let _ = done.send(answer);
        }
    }
}
