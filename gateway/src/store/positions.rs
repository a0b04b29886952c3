//! Where each peer's stream stands, so that a gateway that went back in time
//! never carries on silently.
//!
//! A power cut in `process-crash` mode, a disk that lied about its cache or
//! a database restored from last night's backup all leave a gateway holding
//! less than it once promised. Its peers still hold the rest: the receiver
//! the messages it stored, the sender the receipts it was given. So each
//! side keeps, per peer, the highest outbox sequence number it has seen (and
//! that message's id), and an index from sequence number to message id; at
//! the start of every delivery stream the two compare positions
//! ([`crate::delivery`], [`crate::peer_api`]). What either finds is kept as a
//! [`Finding`] until an operator acknowledges it.
//!
//! Keys of the `sequences` tree: `P` + direction + country for a position,
//! `S` + direction + country + sequence (u64 BE) for the index, where the
//! direction is `o` (this gateway's outbox to that peer) or `i` (what this
//! gateway stored from that peer). Keys of `rollbacks`: a UUIDv7, in the
//! order of detection.

use crate::{kv::TxTree, storage::TxError};
use retorno_proto::v1::{ReceiverPosition, SenderPosition};
use uuid::Uuid;

use super::{Store, StoreError, abort, decode};
use crate::country::Country;

/// At most this many message ids go in one answer or finding; the count is always exact.
pub const MAX_LISTED_IDS: usize = 10_000;

/// Which way messages flow between this gateway and a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// This gateway's outbox to the peer.
    Out,
    /// What this gateway stored from the peer.
    In,
}

impl Direction {
    fn byte(self) -> u8 {
        match self {
            Direction::Out => b'o',
            Direction::In => b'i',
        }
    }
}

/// The position of one direction with one peer, as stored.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Position {
    /// Out: the highest sequence number given to a message for the peer.
    #[prost(uint64, tag = "1")]
    pub assigned_upto: u64,
    /// Out: the highest sequence number whose receipt this gateway holds.
    /// In: the highest sequence number stored from the peer.
    #[prost(uint64, tag = "2")]
    pub done_upto: u64,
    /// The id of the message at `done_upto`.
    #[prost(string, tag = "3")]
    pub done_message_id: String,
}

/// What a comparison of positions found: someone went back in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// This gateway's outbox went back: the peer stored messages this
    /// gateway accepted and no longer knows. Their senders must be told.
    OutboxWentBack = 1,
    /// The peer's outbox went back: this gateway holds messages from it that
    /// it no longer knows (their ids are listed for its operators).
    PeerOutboxWentBack = 2,
    /// This gateway's inbox went back: the peer holds its receipts for
    /// messages it no longer has. Its agencies may have missed them.
    InboxWentBack = 3,
    /// The peer's inbox went back: it lost messages this gateway delivered.
    PeerInboxWentBack = 4,
}

impl Kind {
    fn from_i32(value: i32) -> Option<Kind> {
        [
            Kind::OutboxWentBack,
            Kind::PeerOutboxWentBack,
            Kind::InboxWentBack,
            Kind::PeerInboxWentBack,
        ]
        .into_iter()
        .find(|kind| *kind as i32 == value)
    }

    /// Whether this gateway itself lost what it had promised (it is
    /// unhealthy until an operator acknowledges).
    pub fn is_own_loss(self) -> bool {
        matches!(self, Kind::OutboxWentBack | Kind::InboxWentBack)
    }

    /// Its name in metrics and alerts.
    pub fn label(self) -> &'static str {
        match self {
            Kind::OutboxWentBack => "outbox_went_back",
            Kind::PeerOutboxWentBack => "peer_outbox_went_back",
            Kind::InboxWentBack => "inbox_went_back",
            Kind::PeerInboxWentBack => "peer_inbox_went_back",
        }
    }

    /// What it means, for an operator.
    pub fn describe(self, peer: &str) -> String {
        match self {
            Kind::OutboxWentBack => format!(
                "this gateway went back in time: {peer} stored messages this gateway accepted for it and no longer has; tell the agencies that sent them to send them again"
            ),
            Kind::PeerOutboxWentBack => format!(
                "{peer}'s gateway went back in time: this gateway holds messages from {peer} that {peer} no longer has"
            ),
            Kind::InboxWentBack => format!(
                "this gateway's inbox went back in time: {peer} holds this gateway's receipts for messages it no longer has; its agencies may have missed them: ask {peer} to send them again"
            ),
            Kind::PeerInboxWentBack => format!(
                "{peer}'s inbox went back in time: {peer} no longer has messages it gave this gateway receipts for; they must be sent again as new messages"
            ),
        }
    }
}

/// A comparison of positions that found a gateway gone back in time, kept
/// until an operator acknowledges it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Finding {
    /// When it was found, microseconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub detected_at_micros: i64,
    /// The peer compared with.
    #[prost(string, tag = "2")]
    pub peer: String,
    /// [`Kind`].
    #[prost(int32, tag = "3")]
    pub kind: i32,
    /// The sequence number this gateway's side stood at.
    #[prost(uint64, tag = "4")]
    pub ours: u64,
    /// The sequence number the other side stood at.
    #[prost(uint64, tag = "5")]
    pub theirs: u64,
    /// How many messages are concerned.
    #[prost(uint64, tag = "6")]
    pub count: u64,
    /// Their ids, in sequence order (at most [`MAX_LISTED_IDS`]).
    #[prost(string, repeated, tag = "7")]
    pub message_ids: Vec<String>,
    /// When an operator acknowledged it; 0 while it stands.
    #[prost(int64, tag = "8")]
    pub acknowledged_at_micros: i64,
}

impl Finding {
    /// A new finding, detected now.
    pub fn new(
        peer: Country,
        kind: Kind,
        ours: u64,
        theirs: u64,
        count: u64,
        ids: Vec<String>,
    ) -> Self {
        Finding {
            detected_at_micros: crate::clock::system_micros(),
            peer: peer.to_string(),
            kind: kind as i32,
            ours,
            theirs,
            count,
            message_ids: ids,
            acknowledged_at_micros: 0,
        }
    }

    /// Its [`Kind`], if this build knows it.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_i32(self.kind)
    }
}

fn position_key(direction: Direction, peer: Country) -> [u8; 4] {
    let [a, b] = peer.as_bytes();
    [b'P', direction.byte(), a, b]
}

fn index_key(direction: Direction, peer: Country, seq: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[0] = b'S';
    key[1] = direction.byte();
    key[2..4].copy_from_slice(&peer.as_bytes());
    key[4..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The position of `direction` with `peer`, inside a transaction.
pub(super) fn position_in(
    tree: &TxTree<'_>,
    direction: Direction,
    peer: Country,
) -> Result<Position, TxError> {
    match tree.get(position_key(direction, peer))? {
        Some(bytes) => decode("sequences", &bytes).map_err(abort),
        None => Ok(Position::default()),
    }
}

/// Raises the outbox position with `peer` to `assigned_upto`, inside a transaction.
pub(super) fn assigned_in(
    tree: &TxTree<'_>,
    peer: Country,
    assigned_upto: u64,
) -> Result<(), TxError> {
    let mut position = position_in(tree, Direction::Out, peer)?;
    if assigned_upto > position.assigned_upto {
        position.assigned_upto = assigned_upto;
        let key = position_key(Direction::Out, peer);
        tree.insert(key, prost::Message::encode_to_vec(&position))?;
    }
    Ok(())
}

/// Indexes, inside a transaction, message `id` at `seq` as done in
/// `direction` with `peer` (its receipt kept, or it was stored). A sequence
/// number already indexed under another id (a sender that went back gave it
/// twice) keeps its first id. The position is raised once per transaction
/// by [`Highest`], not per message.
/// Reads ahead, where reads are round trips, the index entries that
/// [`index_in`] will read for each `(peer, seq)` in `direction`.
pub(super) fn prefetch_index(
    tree: &TxTree<'_>,
    direction: Direction,
    positions: impl IntoIterator<Item = (Country, u64)>,
) -> Result<(), TxError> {
    let keys: Vec<Vec<u8>> = positions
        .into_iter()
        .filter(|(_, seq)| *seq != 0)
        .map(|(peer, seq)| index_key(direction, peer, seq).to_vec())
        .collect();
    tree.prefetch(&keys)
}

pub(super) fn index_in(
    tree: &TxTree<'_>,
    direction: Direction,
    peer: Country,
    seq: u64,
    id: Uuid,
) -> Result<(), TxError> {
    if seq == 0 {
        return Ok(());
    }
    let key = index_key(direction, peer, seq);
    match tree.get(key)? {
        Some(earlier) if earlier.as_ref() != id.as_bytes() => {
            tracing::warn!(%peer, seq, "a sequence number arrived again under another message id: the sender went back in time");
        }
        Some(_) => {}
        None => {
            tree.insert(key, id.as_bytes())?;
        }
    }
    Ok(())
}

/// The highest sequence number done per direction and peer in one
/// transaction, so that each position is read and rewritten once per
/// transaction rather than once per message.
#[derive(Default)]
pub(super) struct Highest(std::collections::BTreeMap<(u8, Country), (u64, Uuid)>);

impl Highest {
    /// Notes that message `id` at `seq` is done.
    pub(super) fn note(&mut self, direction: Direction, peer: Country, seq: u64, id: Uuid) {
        let entry = self.0.entry((direction.byte(), peer)).or_insert((0, id));
        if seq > entry.0 {
            *entry = (seq, id);
        }
    }

    /// Raises each position noted to its highest, inside the transaction.
    pub(super) fn raise_in(&self, tree: &TxTree<'_>) -> Result<(), TxError> {
        for (&(byte, peer), &(seq, id)) in &self.0 {
            let direction = if byte == Direction::Out.byte() {
                Direction::Out
            } else {
                Direction::In
            };
            let mut position = position_in(tree, direction, peer)?;
            if seq > position.done_upto {
                position.done_upto = seq;
                position.done_message_id = id.to_string();
                if direction == Direction::Out {
                    position.assigned_upto = position.assigned_upto.max(seq);
                }
                tree.insert(
                    position_key(direction, peer),
                    prost::Message::encode_to_vec(&position),
                )?;
            }
        }
        Ok(())
    }
}

/// Going back in time: what positions say and what an operator acknowledges.
impl Store {
    /// The stored position of `direction` with `peer`.
    pub fn position(&self, direction: Direction, peer: Country) -> Result<Position, StoreError> {
        self.sequences
            .get(position_key(direction, peer))?
            .map_or(Ok(Position::default()), |bytes| decode("sequences", &bytes))
    }

    /// Where this gateway's outbox for `peer` stands, to open a delivery stream with.
    pub fn sender_position(&self, peer: Country) -> Result<SenderPosition, StoreError> {
        let position = self.position(Direction::Out, peer)?;
        let assigned = self.with_queue(peer, |queue| Ok(queue.next_seq - 1))?;
        Ok(SenderPosition {
            assigned_upto: assigned.max(position.assigned_upto),
            receipted_upto: position.done_upto,
            receipted_message_id: position.done_message_id,
        })
    }

    /// How many messages are indexed in `direction` with `peer` after `seq`,
    /// and the ids of the first [`MAX_LISTED_IDS`] of them, in sequence order.
    pub fn ids_after(
        &self,
        direction: Direction,
        peer: Country,
        seq: u64,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let from = index_key(direction, peer, seq.saturating_add(1));
        let upto = index_key(direction, peer, u64::MAX);
        let mut count = 0u64;
        let mut ids = Vec::new();
        for item in self.sequences.range(from..=upto) {
            let (_, id) = item?;
            count += 1;
            if ids.len() < MAX_LISTED_IDS {
                ids.push(
                    Uuid::from_slice(&id)
                        .map_or_else(|_| crate::seal::hex(&id), |id| id.to_string()),
                );
            }
        }
        Ok((count, ids))
    }

    /// This gateway's answer to a sender's position: where it stands with
    /// that sender and, if the sender went back, what it holds beyond the
    /// sender's outbox (recorded as a finding too).
    pub fn receiver_position(
        &self,
        sender: Country,
        theirs: &SenderPosition,
    ) -> Result<ReceiverPosition, StoreError> {
        let ours = self.position(Direction::In, sender)?;
        let mut answer = ReceiverPosition {
            stored_upto: ours.done_upto,
            stored_message_id: ours.done_message_id,
            ..ReceiverPosition::default()
        };
        if ours.done_upto > theirs.assigned_upto {
            let (count, ids) = self.ids_after(Direction::In, sender, theirs.assigned_upto)?;
            self.record_finding(Finding::new(
                sender,
                Kind::PeerOutboxWentBack,
                ours.done_upto,
                theirs.assigned_upto,
                count,
                ids.clone(),
            ))?;
            answer.held_beyond_sender = count;
            answer.held_beyond_sender_ids = ids;
        }
        Ok(answer)
    }

    /// After `peer` said that it holds messages beyond this gateway's outbox:
    /// sequence numbers continue after the peer's, so that none it has seen
    /// is given again, durably before any new one is given.
    pub async fn continue_after(&self, peer: Country, seen_upto: u64) -> Result<(), StoreError> {
        {
            let mut queues = self.queues();
            let queue = self.queue_in(&mut queues, peer)?;
            // The durable watermark stays: it moves only after a flush of
            // entries stored, and the gap below the new numbers holds none.
            queue.next_seq = queue.next_seq.max(seen_upto + 1);
            crate::kv::transaction(&[&self.sequences], |tree| {
                assigned_in(&tree[0], peer, seen_upto)
            })?;
        }
        self.commit().await
    }

    /// Keeps a finding (and logs it), durably, unless the same one (peer,
    /// kind and both positions) is kept already: a stream that reconnects
    /// finds the same thing again.
    pub fn record_finding(&self, finding: Finding) -> Result<(), StoreError> {
        let same = |kept: &Finding| {
            (&kept.peer, kept.kind, kept.ours, kept.theirs)
                == (&finding.peer, finding.kind, finding.ours, finding.theirs)
        };
        if self.findings()?.iter().any(same) {
            return Ok(());
        }
        let kind = finding.kind();
        let description = kind.map_or_else(
            || "unknown finding".to_owned(),
            |k| k.describe(&finding.peer),
        );
        let shown: Vec<&str> = finding
            .message_ids
            .iter()
            .take(20)
            .map(String::as_str)
            .collect();
        if kind.is_some_and(Kind::is_own_loss) {
            tracing::error!(peer = %finding.peer, ours = finding.ours, theirs = finding.theirs, count = finding.count, ids = ?shown, "{description}; `retorno-gateway rollback --config FILE` lists every id");
        } else {
            tracing::warn!(peer = %finding.peer, ours = finding.ours, theirs = finding.theirs, count = finding.count, ids = ?shown, "{description}");
        }
        // Time-ordered and unique.
        let key = Uuid::now_v7();
        self.rollbacks
            .insert(key.as_bytes(), prost::Message::encode_to_vec(&finding))?;
        self.rollbacks.flush()?;
        Ok(())
    }

    /// Every finding kept, oldest first.
    pub fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.rollbacks
            .iter()
            .map(|item| decode("rollbacks", &item?.1))
            .collect()
    }

    /// Marks every standing finding acknowledged now; returns how many.
    pub fn acknowledge_findings(&self) -> Result<usize, StoreError> {
        let now = crate::clock::system_micros();
        let mut count = 0;
        for item in self.rollbacks.iter() {
            let (key, bytes) = item?;
            let mut finding: Finding = decode("rollbacks", &bytes)?;
            if finding.acknowledged_at_micros == 0 {
                finding.acknowledged_at_micros = now;
                self.rollbacks
                    .insert(key, prost::Message::encode_to_vec(&finding))?;
                count += 1;
            }
        }
        self.rollbacks.flush()?;
        Ok(count)
    }

    /// Whether a finding of this gateway's own loss stands unacknowledged.
    pub fn went_back_unacknowledged(&self) -> Result<bool, StoreError> {
        Ok(self
            .findings()?
            .iter()
            .any(|f| f.acknowledged_at_micros == 0 && f.kind().is_some_and(Kind::is_own_loss)))
    }
}

/// The findings as an operator reads them: one paragraph each, newest last,
/// with every id kept.
pub fn findings_report(findings: &[Finding]) -> String {
    use std::fmt::Write as _;
    if findings.is_empty() {
        return "no gateway went back in time: every peer's position matched\n".to_owned();
    }
    let mut out = String::new();
    for finding in findings {
        let when = jiff::Timestamp::from_microsecond(finding.detected_at_micros).map_or_else(
            |_| finding.detected_at_micros.to_string(),
            |t| t.to_string(),
        );
        let status = if finding.acknowledged_at_micros == 0 {
            "STANDING"
        } else {
            "acknowledged"
        };
        let what = finding.kind().map_or_else(
            || "unknown finding".to_owned(),
            |k| k.describe(&finding.peer),
        );
        let _ = writeln!(
            out,
            "{when}  {status}  {what}\n  this side at sequence {}, the other at {}; {} message(s):",
            finding.ours, finding.theirs, finding.count
        );
        for id in &finding.message_ids {
            let _ = writeln!(out, "    {id}");
        }
        if (finding.message_ids.len() as u64) < finding.count {
            let _ = writeln!(
                out,
                "    ... and {} more",
                finding.count - finding.message_ids.len() as u64
            );
        }
    }
    out
}
