//! Durable state of one gateway, in the trees of one database of either
//! engine ([`crate::kv`]: sled, the embedded default, or PostgreSQL). This
//! logic is written once for both: an engine only keeps bytes under keys
//! and runs a group of writes as one transaction.
//!
//! Nothing outside this module touches trees or keys. The trees:
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `outbox` | peer country (2 bytes) + sequence (u64 BE) | [`OutboxRecord`]: an envelope waiting for its receipt |
//! | `sent` | message id (16 bytes) | [`SentRecord`]: where a message this gateway accepted stands, with its receipt once delivered |
//! | `inbox` | cursor (u64 BE) | [`InboxRecord`]: an envelope received from a peer, with its bookkeeping for the operator's log (sender, id, case, kind, size) |
//! | `seen` | sender country (2 bytes) + message id (16 bytes) | [`SeenRecord`]: the permanent dedupe record and the receipt given |
//! | `acks` | agency URN | the agency's acknowledged inbox cursor (u64 BE) |
//! | `cases` | `case/ID`, `family/CC/GROUP`, `capacity/POINT/DATE` | the case records of [`crate::case`] |
//! | `policies` | peer country (2 bytes) | the peer's published `ReceptionPolicy` |
//! | `retention` | `refused_swept_upto`; `held/` + message id (16 bytes); `held_indexed` | the inbox cursor up to which [`crate::retention`] swept refused entries (u64 BE); a rejected message whose envelope is kept for a requeue, with when it was rejected (i64 BE microseconds); that every such message is indexed (see [`at_rest`]) |
//! | `certificates` | SHA-256 of a certificate | the certificate (DER) that sealed envelopes or receipts kept here |
//! | `audit` | sequence (u64 BE) | [`crate::audit::AuditEntry`]: the hash-chained audit log |
//! | `sequences` | see [`positions`] | per peer and direction, the highest sequence number seen, and sequence number -> message id |
//! | `rollbacks` | UUIDv7 (detection order) | [`Finding`]: a gateway found gone back in time, until acknowledged |
//! | `alerts` | `a/` + condition key; `q/` + webhook (u16 BE) + id (u64 BE) | a standing alert condition (JSON); an alert event (JSON) waiting for its webhook ([`crate::alerts`]) |
//! | (default tree) | `health-probe` | when the health probe last wrote and flushed (i64 BE microseconds); see [`operations`] |
//!
//! With `storage.keys` set, the envelopes in `outbox` and `inbox` are sealed
//! ([`crate::at_rest`]) when written and opened when read; callers only see
//! them in the clear.
//!
//! Writes that belong together go in one transaction. sled makes nothing
//! durable until it is flushed, so every promise ("accepted", a receipt) waits
//! for [`Store::commit`], which many concurrent callers share: one flush covers
//! every write that finished before the flush began (group commit). On
//! PostgreSQL a transaction is durable when its commit returns, and the flush
//! has nothing left to do.
//!
//! Transactions are grouped too, because each sled transaction costs two
//! synchronous log writes under a global lock whatever its size (and each
//! PostgreSQL commit waits for its WAL, and a synchronous standby's): the submits
//! waiting at one moment, and the peers' answers to delivery batches, are
//! applied by one writer thread in one transaction ([`Store::enqueue_by`],
//! [`Store::record_answers`]), and a delivery batch from a peer is stored in
//! one ([`Store::receive_all`]). Each submit in a group still passes or fails
//! on its own, in the order the group holds them.
//!
//! Readers of the outbox and the inbox (the delivery task, subscribers) only see
//! entries up to a *durable watermark*, published after the flush that covers
//! them, so nothing leaves this gateway that a crash could still take back.
//!
//! This file opens the store and holds the outbox (submits, their group
//! transaction, the peers' answers). The other concerns have a module each:
//! [`inbox`] (receiving, dedupe, acknowledgements), [`cases`] (case records,
//! policies, certificates), [`audit_log`], [`at_rest`] (sealed envelopes and
//! retention's purge), [`writer`](mod@writer) (the writer thread and group commit),
//! [`positions`] (sequence numbers and going back in time), [`messages`]
//! (the operator's view and requeue), [`alerts`], [`operations`] (probe and
//! sizes) and [`barrier`] (the power-loss barrier).

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, MutexGuard, mpsc as sync_mpsc},
};

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

mod alerts;
mod at_rest;
mod audit_log;
mod barrier;
mod cases;
mod inbox;
mod messages;
mod operations;
pub(crate) use operations::COUNTRY_KEY;
pub use operations::check_owner;
mod positions;
mod writer;
use writer::{Flusher, group_commit, writer};

use crate::at_rest::Vault;
pub use crate::storage::{
    InboxRecord, OutboxRecord, RequeuedRecord, SeenRecord, SentRecord, StoreError, Stored,
};
use crate::{
    audit::{self, Record},
    case::{Applied, CaseStep, Refusal},
    config::{Durability, Storage},
    country::Country,
    kv::{self, Db, Tree, TxTree},
    storage::{AuditTx, CasesTx, TxError},
};
pub use alerts::WaitingAlert;
pub use at_rest::Rekeyed;
use barrier::PowerLossBarrier;
pub use messages::{
    LogState, MessageFilter, NotRequeueable, ReceivedMessage, Requeued, requeueable, state_of,
};
pub use positions::{
    Direction, Finding, Kind as FindingKind, MAX_LISTED_IDS, Position, findings_report,
};

/// An outbox entry handed to the delivery task.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    /// Its place in the peer's queue.
    pub seq: u64,
    /// The stored record.
    pub record: OutboxRecord,
}

/// What [`Store::enqueue`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored now under this sequence number, and what it did to its case.
    New(u64, Applied),
    /// The id was accepted before with the same body; nothing new was stored.
    Duplicate,
    /// The id was accepted before with a different body; nothing was stored.
    Conflict,
}

/// What [`Store::receive`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored now at this inbox cursor; answer with this receipt once committed.
    Stored {
        /// The inbox cursor.
        cursor: u64,
        /// The encoded `Receipt`.
        receipt: Vec<u8>,
    },
    /// Stored before: the original receipt, nothing new stored.
    Duplicate {
        /// The encoded `Receipt` given the first time.
        receipt: Vec<u8>,
    },
    /// The id was stored before with a different body: a forgery or a bug, never a duplicate.
    Conflict,
}

/// A message arriving from a peer, as [`Store::receive_all`] stores it.
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    /// The delivering country.
    pub sender: Country,
    /// The message id.
    pub id: Uuid,
    /// The case it names, for the audit log and the message log.
    pub case_id: &'a str,
    /// The payload kind (`advance_notice`, ...), for the message log.
    pub kind: &'a str,
    /// The encoded `Envelope` as received.
    pub envelope: &'a [u8],
    /// SHA-256 of its body.
    pub body_sha256: &'a [u8],
    /// Its place in the sender's outbox for this gateway (0 if not given).
    pub sequence: u64,
    /// The official its sender named (`Sender.official`), for the audit log.
    pub official: &'a str,
}

/// At most this many writes share one transaction...
const WRITE_GROUP: usize = 256;
/// ...and the envelopes of one transaction's submits add up to at most this
/// many bytes (one larger envelope goes alone), so that a group of large
/// messages does not hold hundreds of MiB in one transaction.
const WRITE_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// A write waiting for the writer thread: the outbox's writes, which share
/// its trees, so that its transactions never wait on each other.
enum Write {
    /// An agency's submit.
    Submit(Submit),
    /// A peer's answers to one delivery batch.
    Answers {
        peer: Country,
        answers: Vec<Answer>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// An operator's requeue of a rejected message ([`Store::requeue`]).
    Requeue {
        peer: Country,
        id: Uuid,
        operator: String,
        done: oneshot::Sender<Result<Requeued, StoreError>>,
    },
}

impl Write {
    /// The bytes of envelope it stores (none for answers).
    fn envelope_bytes(&self) -> usize {
        match self {
            Write::Submit(submit) => submit.record.envelope.len(),
            Write::Answers { .. } | Write::Requeue { .. } => 0,
        }
    }
}

/// What the writer did with one [`Write`].
#[derive(Debug)]
enum Done {
    /// A submit's outcome.
    Submit(Enqueued),
    /// Answers recorded.
    Answers,
    /// A requeue's outcome.
    Requeue(Requeued),
}

/// What the writer did with one [`Write`], or why it failed.
type Written = Result<Done, StoreError>;

/// A submit waiting for the writer thread.
struct Submit {
    agency: String,
    /// The official the agency named, for the audit log.
    official: String,
    peer: Country,
    id: Uuid,
    request_sha256: Vec<u8>,
    record: OutboxRecord,
    case_step: CaseStep,
    answer: oneshot::Sender<Result<Enqueued, StoreError>>,
}

/// Per-peer outbox bookkeeping kept in memory.
struct PeerQueue {
    next_seq: u64,
    /// A write transaction failed: whether it committed may be unknown (a
    /// database connection lost during the commit), so `next_seq` is read
    /// again from the stored outbox and positions before it is used.
    stale: bool,
    /// The highest sequence known to be flushed; the delivery task reads up to it.
    durable: watch::Sender<u64>,
}

/// The database of one gateway.
pub struct Store {
    outbox: Tree,
    sent: Tree,
    inbox: Tree,
    seen: Tree,
    acks: Tree,
    cases: Tree,
    policies: Tree,
    certificates: Tree,
    /// Retention's bookkeeping (how far refused inbox entries were swept).
    retention: Tree,
    /// The audit log ([`crate::audit`]).
    audit: Tree,
    /// Positions and sequence numbers per peer ([`positions`]).
    sequences: Tree,
    /// Findings of going back in time ([`positions`]).
    rollbacks: Tree,
    /// Alert conditions standing and alert events not yet delivered ([`alerts`]).
    alerts: Tree,
    /// Where the audit chain ends. Held around every transaction that
    /// appends to it, and advanced only when that transaction commits. Lock
    /// order, so that no two writers deadlock: always after `queues` or
    /// `inbox_next` (when those are held), never before them; while it is
    /// held only the case rules' read lock on peer policies is taken, and
    /// no holder of that lock takes this one.
    audit_head: Mutex<AuditHead>,
    /// Seals envelopes before they are written and opens them when read.
    vault: Arc<Vault>,
    /// Each peer's next sequence number and durable watermark. Only the
    /// writer thread takes sequence numbers (holding this lock across its
    /// transaction); readers see entries only up to the watermark, which is
    /// raised after the flush that covers them, so a cursor never skips one.
    queues: Mutex<HashMap<Country, PeerQueue>>,
    /// The same for the inbox: the next cursor to give (`None`: to be read
    /// again from the inbox, after a failed write).
    inbox_next: Mutex<Option<u64>>,
    /// The highest inbox cursor known to be flushed.
    inbox_durable: watch::Sender<u64>,
    flush_requests: mpsc::UnboundedSender<oneshot::Sender<Result<(), StoreError>>>,
    /// Writes for the writer thread ([`writer`](mod@writer)).
    writes: sync_mpsc::Sender<Write>,
    /// The database itself, for the health probe and its size on disk ([`operations`]).
    db: Db,
    /// A test's order that the health probe fail ([`Store::danger_fail_probes`]).
    probe_fault: std::sync::atomic::AtomicBool,
}

fn outbox_key(peer: Country, seq: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..2].copy_from_slice(&peer.as_bytes());
    key[2..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn seen_key(sender: Country, id: Uuid) -> [u8; 18] {
    let mut key = [0u8; 18];
    key[..2].copy_from_slice(&sender.as_bytes());
    key[2..].copy_from_slice(id.as_bytes());
    key
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let start = bytes.len().saturating_sub(8);
    buf[8 - (bytes.len() - start)..].copy_from_slice(&bytes[start..]);
    u64::from_be_bytes(buf)
}

fn decode<M: prost::Message + Default>(tree: &'static str, bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

fn abort(error: StoreError) -> TxError {
    TxError::Abort(error)
}

impl CasesTx for TxTree<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        Ok(TxTree::get(self, key)?.map(|value| value.to_vec()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), TxError> {
        TxTree::insert(self, key, value)
    }
}

impl AuditTx for TxTree<'_> {
    fn append(&self, seq: u64, entry: Vec<u8>) -> Result<(), TxError> {
        TxTree::insert(self, seq.to_be_bytes(), entry)
    }
}

/// Where the audit chain ends, and whether that must be read again from
/// the log before the next append (a write failed and the log could not be
/// read then).
#[derive(Clone)]
struct AuditHead {
    head: audit::Head,
    stale: bool,
}

impl AuditHead {
    fn fresh(head: audit::Head) -> AuditHead {
        AuditHead { head, stale: false }
    }
}

/// The cursor after the last entry of the `inbox` tree.
/// The at-rest keys `settings` name.
fn vault_of(settings: &Storage) -> Result<Arc<Vault>, StoreError> {
    let vault = Vault::load(&settings.keys).map_err(|source| StoreError::AtRest {
        tree: "storage.keys",
        source,
    })?;
    Ok(Arc::new(vault))
}

fn next_cursor(inbox: &Tree) -> Result<u64, StoreError> {
    Ok(match inbox.last()? {
        Some((key, _)) => read_u64(&key) + 1,
        None => 1,
    })
}

/// The audit head after the last entry of the `audit` tree.
fn audit_head_of(tree: &Tree) -> Result<audit::Head, StoreError> {
    let last = tree.last()?;
    audit::Head::after(last.as_ref().map(|(k, v)| (k.as_ref(), v.as_ref())))
}

impl Store {
    /// Opens (or creates) the database in `dir` and starts its flush task.
    /// Must be called inside a Tokio runtime.
    pub fn open(dir: &Path, settings: &Storage) -> Result<Arc<Store>, StoreError> {
        Store::open_with_vault(dir, settings, vault_of(settings)?)
    }

    /// [`Store::open`] with the at-rest keys already loaded (the gateway
    /// loads them first, to report a bad key file as a configuration error).
    /// On PostgreSQL, for a command on a stopped gateway: takes the lease
    /// once (this node's name, `[storage] node`), and is refused while
    /// another node holds it.
    pub fn open_with_vault(
        dir: &Path,
        settings: &Storage,
        vault: Arc<Vault>,
    ) -> Result<Arc<Store>, StoreError> {
        let db = Db::open(dir, settings)?;
        Store::lease_once(&db, settings)?;
        Store::open_on(db, dir, settings, vault)
    }

    /// [`Store::open`] for a command on `country`'s stopped gateway:
    /// refused ([`StoreError::OtherCountry`]) when the database records
    /// another country's gateway as its owner, and then, on PostgreSQL, the
    /// lease is given back at once. Writes nothing: the gateway records its
    /// country when it starts ([`Store::claim`]).
    pub fn open_stopped(
        dir: &Path,
        settings: &Storage,
        country: Country,
    ) -> Result<Arc<Store>, StoreError> {
        let vault = vault_of(settings)?;
        let db = Db::open(dir, settings)?;
        let lease = Store::lease_once(&db, settings)?;
        let store = Store::open_on(db, dir, settings, vault)?;
        if let Err(refused) = store.check_owner(country) {
            if let Some(lease) = lease
                && let Err(error) = crate::lease::Lease::release(&lease)
            {
                tracing::warn!(%error, "could not give the lease back");
            }
            return Err(refused);
        }
        Ok(store)
    }

    /// On PostgreSQL, takes the lease once as this node (`[storage] node`),
    /// refused while another node holds it; nothing on sled, whose lock on
    /// its folder does the same.
    fn lease_once(
        db: &Db,
        settings: &Storage,
    ) -> Result<Option<crate::lease::PgLease>, StoreError> {
        let Db::Postgres(pg) = db else {
            return Ok(None);
        };
        let lease = crate::lease::PgLease::new(pg.clone(), settings);
        crate::lease::Lease::try_acquire(&lease)?.ok_or_else(|| StoreError::LeaseHeld {
            holder: crate::lease::Lease::holder(&lease)
                .ok()
                .flatten()
                .map(|(node, _)| node)
                .unwrap_or_default(),
            lease: settings.lease_seconds,
        })?;
        Ok(Some(lease))
    }

    /// Opens the store over an engine's database `db` (on PostgreSQL, with
    /// this node's lease held). With sled and `durability = "power-loss"`,
    /// every flush is followed by the barrier ([`barrier`]).
    pub(crate) fn open_on(
        db: Db,
        dir: &Path,
        settings: &Storage,
        vault: Arc<Vault>,
    ) -> Result<Arc<Store>, StoreError> {
        let barrier = match (&db, settings.durability) {
            (Db::Sled(_), Durability::PowerLoss) => {
                Some(PowerLossBarrier::open(dir).map_err(|e| StoreError::Io(Arc::new(e)))?)
            }
            _ => None,
        };
        Store::open_engine(db, barrier, vault)
    }

    fn open_engine(
        db: Db,
        barrier: Option<PowerLossBarrier>,
        vault: Arc<Vault>,
    ) -> Result<Arc<Store>, StoreError> {
        let inbox = db.open_tree("inbox")?;
        let inbox_next = next_cursor(&inbox)?;
        let audit = db.open_tree("audit")?;
        let audit_head = Mutex::new(AuditHead::fresh(audit_head_of(&audit)?));
        let (flush_requests, receiver) = mpsc::unbounded_channel();
        let flusher = Arc::new(Flusher {
            db: db.clone(),
            barrier: barrier.map(Mutex::new),
        });
        tokio::spawn(group_commit(flusher.clone(), receiver));
        let (writes, waiting) = sync_mpsc::channel();
        let store = Arc::new(Store {
            db: db.clone(),
            outbox: db.open_tree("outbox")?,
            sent: db.open_tree("sent")?,
            seen: db.open_tree("seen")?,
            acks: db.open_tree("acks")?,
            cases: db.open_tree("cases")?,
            policies: db.open_tree("policies")?,
            certificates: db.open_tree("certificates")?,
            retention: db.open_tree("retention")?,
            audit,
            sequences: db.open_tree("sequences")?,
            rollbacks: db.open_tree("rollbacks")?,
            alerts: db.open_tree("alerts")?,
            audit_head,
            vault,
            inbox,
            queues: Mutex::new(HashMap::new()),
            inbox_next: Mutex::new(Some(inbox_next)),
            inbox_durable: watch::Sender::new(inbox_next - 1),
            flush_requests,
            writes,
            probe_fault: std::sync::atomic::AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("retorno-writer".into())
            .spawn(move || writer(weak, waiting, &flusher))
            .map_err(|e| StoreError::Io(Arc::new(e)))?;
        Ok(store)
    }

    /// Waits until every write that finished before this call is durable.
    /// Concurrent callers share one flush.
    pub async fn commit(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.flush_requests
            .send(done)
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<Country, PeerQueue>> {
        // A panic while holding this lock leaves the map consistent (it only
        // holds counters), so a poisoned lock is still usable.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_queue<T>(
        &self,
        peer: Country,
        f: impl FnOnce(&mut PeerQueue) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut queues = self.queues();
        f(self.queue_in(&mut queues, peer)?)
    }

    /// The queue of `peer` in `queues`, read from the outbox the first time
    /// (and again after a failed write).
    fn queue_in<'q>(
        &self,
        queues: &'q mut HashMap<Country, PeerQueue>,
        peer: Country,
    ) -> Result<&'q mut PeerQueue, StoreError> {
        Ok(match queues.entry(peer) {
            std::collections::hash_map::Entry::Occupied(entry) => {
                let queue = entry.into_mut();
                if queue.stale {
                    queue.next_seq = self.last_assigned(peer)? + 1;
                    queue.stale = false;
                }
                queue
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                let last = self.last_assigned(peer)?;
                entry.insert(PeerQueue {
                    next_seq: last + 1,
                    stale: false,
                    durable: watch::Sender::new(last),
                })
            }
        })
    }

    /// The highest sequence number given to a message for `peer`, as stored.
    fn last_assigned(&self, peer: Country) -> Result<u64, StoreError> {
        let queued = match self.outbox.last_with_prefix(peer.as_bytes())? {
            Some((key, _)) => read_u64(&key),
            None => 0,
        };
        // Numbers are never given twice, even once the outbox is empty.
        let assigned = self.position(Direction::Out, peer)?.assigned_upto;
        Ok(queued.max(assigned))
    }

    /// Stores an envelope in the outbox for `peer`, its status record and its
    /// case step (`case_step`, run in the same transaction), then waits until
    /// all are durable. A retried id with the same request is a duplicate and
    /// stores nothing; a refused case step stores nothing and is returned as
    /// [`StoreError::Refused`]. The audit log records the submit with no
    /// agency: the Agency API uses [`Store::enqueue_by`].
    pub async fn enqueue(
        &self,
        peer: Country,
        id: Uuid,
        request_sha256: Vec<u8>,
        record: OutboxRecord,
        case_step: impl Fn(&dyn CasesTx) -> Result<Result<Applied, Refusal>, TxError>
        + Send
        + Sync
        + 'static,
    ) -> Result<Enqueued, StoreError> {
        self.enqueue_by(
            "",
            "",
            peer,
            id,
            request_sha256,
            record,
            Box::new(case_step),
        )
        .await
    }

    /// [`Store::enqueue`] for a submit by `agency` (its URN) and the
    /// `official` it names (empty for none), whom the audit entry of the
    /// accepted submit names; the entry is written in the same transaction
    /// as the outbox entry.
    ///
    /// The writer thread applies every submit waiting at the time in one
    /// transaction and one flush; the answer comes once the flush covering
    /// this submit is done, and the delivery task sees the entry then too,
    /// even if the caller has stopped waiting.
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue_by(
        &self,
        agency: &str,
        official: &str,
        peer: Country,
        id: Uuid,
        request_sha256: Vec<u8>,
        record: OutboxRecord,
        case_step: CaseStep,
    ) -> Result<Enqueued, StoreError> {
        let (answer, wait) = oneshot::channel();
        self.writes
            .send(Write::Submit(Submit {
                agency: agency.to_owned(),
                official: official.to_owned(),
                peer,
                id,
                request_sha256,
                record,
                case_step,
                answer,
            }))
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::apply_writes`], but a panic (a bug in a case step) fails only
    /// the write that panicked, not the thread and every later write: the
    /// group is applied again one write at a time. A panic can only come
    /// from inside the transaction (sled then commits nothing), and the
    /// sequence numbers and audit head move only after a commit, so nothing
    /// needs to be read again. Locks are taken with poisoning ignored.
    fn apply_writes_surviving_panics(&self, group: &[Write]) -> Vec<Written> {
        let attempt = |writes: &[Write]| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply_writes(writes)))
        };
        attempt(group).unwrap_or_else(|_| {
            tracing::error!("a write panicked: its group is applied again one write at a time");
            group
                .iter()
                .map(|write| match attempt(std::slice::from_ref(write)) {
                    Ok(mut results) => results.pop().unwrap_or(Err(StoreError::Closed)),
                    Err(_) => Err(StoreError::Panicked),
                })
                .collect()
        })
    }

    /// Applies a group of writes in one transaction; if that transaction
    /// fails, applies each in its own, so that one bad write fails alone.
    fn apply_writes(&self, group: &[Write]) -> Vec<Written> {
        match self.apply_group(group) {
            Ok(results) => results,
            Err(error) if group.len() == 1 => vec![Err(error)],
            Err(_) => group
                .iter()
                .map(|write| {
                    self.apply_group(std::slice::from_ref(write))
                        .and_then(|mut results| results.pop().ok_or(StoreError::Closed))
                        .and_then(|result| result)
                })
                .collect(),
        }
    }

    /// One transaction over the outbox, status, case and audit trees for the
    /// whole group, in order. Each submit is a duplicate, a conflict, refused
    /// by its case step (which then wrote nothing), or stored under the next
    /// sequence number of its peer; each batch of answers is recorded.
    fn apply_group(&self, group: &[Write]) -> Result<Vec<Written>, StoreError> {
        let mut queues = self.queues();
        let mut first_seq: HashMap<Country, u64> = HashMap::new();
        for write in group {
            let peer = match write {
                Write::Submit(submit) => submit.peer,
                Write::Requeue { peer, .. } => *peer,
                Write::Answers { .. } => continue,
            };
            if let std::collections::hash_map::Entry::Vacant(entry) = first_seq.entry(peer) {
                entry.insert(self.queue_in(&mut queues, peer)?.next_seq);
            }
        }
        let trees = [
            &self.outbox,
            &self.sent,
            &self.cases,
            &self.audit,
            &self.sequences,
            &self.retention,
        ];
        let written = self.audited(|head| {
            kv::transaction(&trees, |views| {
                let [outbox, sent, cases, log, sequences, retention] = views else {
                    return Err(abort(StoreError::Closed));
                };
                let trees = FinishTrees {
                    outbox,
                    sent,
                    cases,
                    log,
                    sequences,
                    retention,
                };
                prefetch_group(group, trees)?;
                let mut head = head.clone();
                let mut next_seq = first_seq.clone();
                let mut results = Vec::with_capacity(group.len());
                for write in group {
                    match write {
                        Write::Submit(submit) => {
                            let result =
                                self.apply_submit(submit, &mut next_seq, trees, &mut head)?;
                            results.push(result.map(Done::Submit));
                        }
                        Write::Answers { peer, answers, .. } => {
                            let mut highest = positions::Highest::default();
                            for answer in answers {
                                head = finish_in(*peer, answer, trees, head)?;
                                if let AnswerOutcome::Delivered { .. } = answer.outcome {
                                    highest.note(Direction::Out, *peer, answer.seq, answer.id);
                                }
                            }
                            highest.raise_in(trees.sequences)?;
                            results.push(Ok(Done::Answers));
                        }
                        Write::Requeue {
                            peer, id, operator, ..
                        } => {
                            let requeue = (*peer, *id, operator.as_str());
                            let result =
                                self.requeue_in(requeue, &mut next_seq, trees, &mut head)?;
                            results.push(Ok(Done::Requeue(result)));
                        }
                    }
                }
                for (peer, next) in &next_seq {
                    if first_seq.get(peer) != Some(next) {
                        positions::assigned_in(trees.sequences, *peer, next - 1)?;
                    }
                }
                Ok(((results, next_seq), head))
            })
        });
        let (results, next_seq) = match written {
            Ok(written) => written,
            Err(error) => {
                for peer in first_seq.keys() {
                    if let Some(queue) = queues.get_mut(peer) {
                        queue.stale = true;
                    }
                }
                return Err(error);
            }
        };
        for (peer, next) in next_seq {
            if let Some(queue) = queues.get_mut(&peer) {
                queue.next_seq = next;
            }
        }
        Ok(results)
    }

    /// One submit of [`Store::apply_group`], inside its transaction.
    fn apply_submit(
        &self,
        submit: &Submit,
        next_seq: &mut HashMap<Country, u64>,
        FinishTrees {
            outbox,
            sent,
            cases,
            log,
            ..
        }: FinishTrees<'_>,
        head: &mut audit::Head,
    ) -> Result<Result<Enqueued, StoreError>, TxError> {
        if let Some(existing) = sent.get(submit.id.as_bytes())? {
            let existing: SentRecord = decode("sent", &existing).map_err(abort)?;
            return Ok(Ok(if existing.request_sha256 == submit.request_sha256 {
                Enqueued::Duplicate
            } else {
                Enqueued::Conflict
            }));
        }
        let applied = match (submit.case_step)(cases)? {
            Ok(applied) => applied,
            Err(refusal) => return Ok(Err(StoreError::Refused(refusal))),
        };
        let seq = *next_seq.get(&submit.peer).ok_or_else(|| {
            abort(StoreError::Corrupt {
                tree: "outbox",
                reason: format!("no sequence taken for {}", submit.peer),
            })
        })?;
        let key = outbox_key(submit.peer, seq);
        let record = self
            .encode_at_rest(&key, submit.record.clone())
            .map_err(abort)?;
        outbox.insert(key, record)?;
        let status = SentRecord {
            recipient: submit.peer.to_string(),
            accepted_at_micros: crate::clock::system_micros(),
            state: retorno_proto::v1::DeliveryState::Queued as i32,
            request_sha256: submit.request_sha256.clone(),
            case_ids: applied.cases.clone(),
            kind: submit.record.kind.clone(),
            size_bytes: submit.record.envelope.len() as u64,
            ..SentRecord::default()
        };
        sent.insert(submit.id.as_bytes(), prost::Message::encode_to_vec(&status))?;
        let entry = Record::submit_accepted(&submit.agency)
            .official(&submit.official)
            .message(submit.id.to_string())
            .cases(&applied.cases);
        *head = audit::append_in(log, head, &entry)?;
        next_seq.insert(submit.peer, seq + 1);
        Ok(Ok(Enqueued::New(seq, applied)))
    }

    /// Answers the submits of a group after `flushed`, the flush that
    /// followed its transaction: the peers' new entries are published to
    /// the delivery tasks first. A refusal or a conflict wrote nothing and
    /// is answered as it is.
    fn answer_submits(
        &self,
        submits: Vec<(Submit, Result<Enqueued, StoreError>)>,
        flushed: Result<(), StoreError>,
    ) {
        if flushed.is_ok() {
            // Everything the writer stored so far is durable now, including
            // entries of an earlier group whose flush failed (a duplicate of
            // one of them is answered "accepted" now and must be delivered).
            let mut peers: Vec<Country> = submits.iter().map(|(submit, _)| submit.peer).collect();
            peers.sort_unstable();
            peers.dedup();
            for peer in peers {
                if let Err(error) = self.publish_outbox(peer) {
                    tracing::error!(%error, %peer, "could not publish durable outbox entries");
                }
            }
        }
        for (submit, result) in submits {
            let answer = match result {
                Ok(Enqueued::New(..) | Enqueued::Duplicate) => flushed.clone().and(result),
                other => other,
            };
            let _ = submit.answer.send(answer);
        }
    }

    /// Lets the delivery task see every entry stored for `peer` so far. Call
    /// only after a flush that followed those writes.
    fn publish_outbox(&self, peer: Country) -> Result<(), StoreError> {
        self.with_queue(peer, |queue| {
            let seq = queue.next_seq - 1;
            queue.durable.send_if_modified(|durable| {
                let raise = seq > *durable;
                *durable = (*durable).max(seq);
                raise
            });
            Ok(())
        })
    }

    /// Follows the highest durable outbox sequence for `peer`.
    pub fn outbox_watermark(&self, peer: Country) -> Result<watch::Receiver<u64>, StoreError> {
        self.with_queue(peer, |queue| Ok(queue.durable.subscribe()))
    }

    /// Up to `limit` durable outbox entries for `peer` after `after_seq`, in order.
    pub fn outbox_after(
        &self,
        peer: Country,
        after_seq: u64,
        upto_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        if after_seq >= upto_seq {
            return Ok(Vec::new());
        }
        let range = outbox_key(peer, after_seq + 1)..=outbox_key(peer, upto_seq);
        self.outbox
            .range(range)
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                Ok(OutboxItem {
                    seq: read_u64(&key),
                    record: self.decode_at_rest(&key, &value)?,
                })
            })
            .collect()
    }

    /// How many envelopes wait for `peer`.
    pub fn outbox_depth(&self, peer: Country) -> usize {
        self.outbox.scan_prefix(peer.as_bytes()).count()
    }

    /// Records how the peer answered a batch, in one transaction: for each
    /// entry its verified receipt (with the peer's case refusal, if any) or
    /// its rejection in the message's `sent` record, which the case timeline
    /// shows ([`Store::case_as_shown`]), and removes the entries from the
    /// outbox. One transaction per answered batch, not per
    /// message: each sled transaction costs two synchronous log writes.
    ///
    /// Not flushed on purpose: if a crash takes this back, the entries are
    /// sent again and the peer answers with its original receipts.
    pub async fn record_answers(
        &self,
        peer: Country,
        answers: Vec<Answer>,
    ) -> Result<(), StoreError> {
        if answers.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.writes
            .send(Write::Answers {
                peer,
                answers,
                done,
            })
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Where a message this gateway accepted stands, if it accepted it.
    pub fn sent_status(&self, id: Uuid) -> Result<Option<SentRecord>, StoreError> {
        self.sent
            .get(id.as_bytes())?
            .map(|bytes| decode("sent", &bytes))
            .transpose()
    }
}

/// A peer's answer to one outbox entry, to record with [`Store::record_answers`].
#[derive(Clone, Debug)]
pub struct Answer {
    seq: u64,
    id: Uuid,
    outcome: AnswerOutcome,
}

#[derive(Clone, Debug)]
enum AnswerOutcome {
    Delivered {
        receipt: Vec<u8>,
        peer_refused: String,
    },
    Rejected {
        rejection: Vec<u8>,
    },
}

impl Answer {
    /// The entry was stored by the peer: its verified receipt (encoded), and
    /// the peer's case refusal if its case rules refused it.
    pub fn delivered(seq: u64, id: Uuid, receipt: Vec<u8>, peer_refused: String) -> Self {
        Answer {
            seq,
            id,
            outcome: AnswerOutcome::Delivered {
                receipt,
                peer_refused,
            },
        }
    }

    /// The peer refused the entry for good (the encoded `Rejection`).
    pub fn rejected(seq: u64, id: Uuid, rejection: Vec<u8>) -> Self {
        Answer {
            seq,
            id,
            outcome: AnswerOutcome::Rejected { rejection },
        }
    }

    /// Whether the peer stored the entry (rather than rejected it).
    pub fn is_delivered(&self) -> bool {
        matches!(self.outcome, AnswerOutcome::Delivered { .. })
    }
}

/// The trees of the writer's transaction, as that transaction sees them.
#[derive(Clone, Copy)]
struct FinishTrees<'a> {
    outbox: &'a TxTree<'a>,
    sent: &'a TxTree<'a>,
    cases: &'a TxTree<'a>,
    log: &'a TxTree<'a>,
    sequences: &'a TxTree<'a>,
    /// For the index of rejected messages whose envelope is kept ([`at_rest`]).
    retention: &'a TxTree<'a>,
}

/// Reads ahead, in one round trip per tree, what a group's writes will read
/// one key at a time, where each read is a round trip (PostgreSQL): the
/// status of each submitted or answered message, the answered outbox
/// entries and their sequence index entries. Nothing on sled.
fn prefetch_group(
    group: &[Write],
    FinishTrees {
        outbox,
        sent,
        sequences,
        ..
    }: FinishTrees<'_>,
) -> Result<(), TxError> {
    if !sent.reads_are_round_trips() {
        return Ok(());
    }
    let (mut outbox_keys, mut sent_keys) = (Vec::new(), Vec::new());
    for write in group {
        match write {
            Write::Submit(submit) => sent_keys.push(submit.id.as_bytes().to_vec()),
            Write::Answers { peer, answers, .. } => {
                for answer in answers {
                    outbox_keys.push(outbox_key(*peer, answer.seq).to_vec());
                    sent_keys.push(answer.id.as_bytes().to_vec());
                }
                let delivered = answers.iter().filter(|answer| answer.is_delivered());
                positions::prefetch_index(
                    sequences,
                    Direction::Out,
                    delivered.map(|answer| (*peer, answer.seq)),
                )?;
            }
            Write::Requeue { .. } => {}
        }
    }
    outbox.prefetch(&outbox_keys)?;
    sent.prefetch(&sent_keys)
}

/// Records one answer inside a transaction; returns the audit head after it.
fn finish_in(
    peer: Country,
    answer: &Answer,
    FinishTrees {
        outbox,
        sent,
        log,
        sequences,
        retention,
        ..
    }: FinishTrees<'_>,
    head: audit::Head,
) -> Result<audit::Head, TxError> {
    let message_id = answer.id.to_string();
    if let AnswerOutcome::Delivered { .. } = answer.outcome {
        positions::index_in(sequences, Direction::Out, peer, answer.seq, answer.id)?;
    }
    // An entry finished before (an answer applied twice) is not recorded again.
    let key = outbox_key(peer, answer.seq);
    let removed = outbox.remove(key)?;
    let was_waiting = removed.is_some();
    let (entry, peer_refused) = match &answer.outcome {
        AnswerOutcome::Delivered { peer_refused, .. } => {
            (Record::receipt(peer, peer_refused), peer_refused.as_str())
        }
        AnswerOutcome::Rejected { rejection } => (Record::peer_rejected(peer, rejection), ""),
    };
    let mut case_ids = Vec::new();
    if let Some(bytes) = sent.get(answer.id.as_bytes())? {
        let mut status: SentRecord = decode("sent", &bytes).map_err(abort)?;
        let answered_at = crate::clock::system_micros();
        match &answer.outcome {
            AnswerOutcome::Delivered { receipt, .. } => {
                status.state = retorno_proto::v1::DeliveryState::Delivered as i32;
                status.receipt = receipt.clone();
                status.peer_refused = peer_refused.to_owned();
            }
            AnswerOutcome::Rejected { rejection } => {
                status.state = retorno_proto::v1::DeliveryState::Rejected as i32;
                status.rejection = rejection.clone();
                // Kept as stored so that an operator can requeue it once the
                // cause is fixed, and indexed for retention, which removes it
                // in time if no one does.
                if let Some(held) = &removed {
                    status.held_envelope = held.to_vec();
                    status.held_key = key.to_vec();
                    at_rest::index_held_in(retention, answer.id, answered_at)?;
                }
            }
        }
        if was_waiting {
            status.answered_at_micros = answered_at;
        }
        sent.insert(answer.id.as_bytes(), prost::Message::encode_to_vec(&status))?;
        case_ids = status.case_ids;
    }
    if !was_waiting {
        return Ok(head);
    }
    let entry = entry.message(message_id.as_str()).cases(&case_ids);
    audit::append_in(log, &head, &entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_case(_: &dyn CasesTx) -> Result<Result<Applied, Refusal>, TxError> {
        Ok(Ok(none()))
    }

    fn none() -> Applied {
        Applied {
            cases: vec![],
            state: retorno_proto::v1::CaseState::Unspecified,
        }
    }

    fn power_loss() -> Storage {
        Storage {
            durability: Durability::PowerLoss,
            ..Storage::default()
        }
    }

    fn record(body: &[u8]) -> OutboxRecord {
        OutboxRecord {
            envelope: body.to_vec(),
            body_sha256: body.to_vec(),
            message_id: String::new(),
            kind: String::new(),
        }
    }

    #[tokio::test]
    async fn outbox_keeps_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let gt: Country = "GT".parse().unwrap();
        {
            let store = Store::open(dir.path(), &Storage::default()).unwrap();
            for i in 0..5u8 {
                let outcome = store
                    .enqueue(gt, Uuid::now_v7(), vec![i], record(&[i]), &no_case)
                    .await
                    .unwrap();
                assert_eq!(outcome, Enqueued::New(u64::from(i) + 1, none()));
            }
            assert_eq!(*store.outbox_watermark(gt).unwrap().borrow(), 5);
        }
        // sled needs its lock released; the flush task holds the db until the
        // store's channel closes.
        tokio::task::yield_now().await;
        let store = loop {
            match Store::open(dir.path(), &Storage::default()) {
                Ok(store) => break store,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        let items = store.outbox_after(gt, 0, 5, 100).unwrap();
        let bodies: Vec<u8> = items.iter().map(|i| i.record.envelope[0]).collect();
        assert_eq!(bodies, vec![0, 1, 2, 3, 4]);
        assert_eq!(store.outbox_depth(gt), 5);
        let outcome = store
            .enqueue(gt, Uuid::now_v7(), vec![9], record(&[9]), &no_case)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Enqueued::New(6, none()),
            "sequence continues after restart"
        );
    }

    #[tokio::test]
    async fn large_entries_go_to_blob_files_and_pass_the_power_loss_barrier() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &power_loss()).unwrap();
        let gt: Country = "GT".parse().unwrap();
        // Over a quarter of sled's 512 KiB segment: written as a blob file.
        let big = vec![7u8; 600 * 1024];
        let outcome = store
            .enqueue(gt, Uuid::now_v7(), vec![1], record(&big), &no_case)
            .await
            .unwrap();
        assert_eq!(outcome, Enqueued::New(1, none()));
        let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blobs > 0, "the large entry went to a blob file");
        let items = store.outbox_after(gt, 0, 1, 1).unwrap();
        assert_eq!(items[0].record.envelope, big);
    }

    #[tokio::test]
    async fn a_retried_submit_is_a_duplicate_and_a_changed_one_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &power_loss()).unwrap();
        let gt: Country = "GT".parse().unwrap();
        let id = Uuid::now_v7();
        assert_eq!(
            store
                .enqueue(gt, id, b"a".to_vec(), record(b"a"), &no_case)
                .await
                .unwrap(),
            Enqueued::New(1, none())
        );
        assert_eq!(
            store
                .enqueue(gt, id, b"a".to_vec(), record(b"a"), &no_case)
                .await
                .unwrap(),
            Enqueued::Duplicate
        );
        assert_eq!(
            store
                .enqueue(gt, id, b"b".to_vec(), record(b"b"), &no_case)
                .await
                .unwrap(),
            Enqueued::Conflict
        );
        assert_eq!(store.outbox_depth(gt), 1);
    }

    /// A submit as the writer thread receives it (its answer is not awaited).
    fn submit(id: Uuid, request: &[u8], step: CaseStep) -> Write {
        let (answer, _) = oneshot::channel();
        Write::Submit(Submit {
            official: String::new(),
            agency: String::new(),
            peer: "GT".parse().unwrap(),
            id,
            request_sha256: request.to_vec(),
            record: record(request),
            case_step: step,
            answer,
        })
    }

    fn refusing() -> CaseStep {
        Box::new(|_| {
            Ok(Err(Refusal {
                rule: crate::case::Rule::Order,
                reason: retorno_proto::refusal::Reason::new(
                    retorno_proto::refusal::Code::OutOfOrder,
                ),
                message: "refused".into(),
            }))
        })
    }

    fn sequences(results: &[Written]) -> Vec<Result<Option<u64>, String>> {
        results
            .iter()
            .map(|result| match result {
                Ok(Done::Submit(Enqueued::New(seq, _))) => Ok(Some(*seq)),
                Ok(Done::Submit(Enqueued::Duplicate)) => Ok(None),
                Err(StoreError::Refused(refusal)) => Err(refusal.message.clone()),
                other => Err(format!("{other:?}")),
            })
            .collect()
    }

    /// One group, one transaction: a new submit, its retry, a refused one
    /// and another new one get sequence 1, "duplicate", the refusal (and no
    /// sequence) and sequence 2.
    #[tokio::test]
    async fn one_group_keeps_each_submits_outcome_and_the_sequence_contiguous() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let group = [
            submit(a, b"a", Box::new(no_case)),
            submit(a, b"a", Box::new(no_case)),
            submit(b, b"b", refusing()),
            submit(c, b"c", Box::new(no_case)),
        ];
        let results = store.apply_group(&group).unwrap();
        assert_eq!(
            sequences(&results),
            vec![Ok(Some(1)), Ok(None), Err("refused".into()), Ok(Some(2))]
        );
        assert!(
            store.sent_status(b).unwrap().is_none(),
            "the refused submit stored nothing"
        );
        assert_eq!(store.outbox_depth("GT".parse().unwrap()), 2);
    }

    /// A bug that panics in one submit's case step fails that submit only:
    /// the rest of its group is stored, and the writer thread goes on.
    #[tokio::test]
    async fn a_panicking_case_step_fails_only_its_own_submit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        let panicking: CaseStep = Box::new(|_| panic!("a bug in a case step"));
        let group = [
            submit(Uuid::now_v7(), b"a", Box::new(no_case)),
            submit(Uuid::now_v7(), b"b", panicking),
            submit(Uuid::now_v7(), b"c", Box::new(no_case)),
        ];
        let results = store.apply_writes_surviving_panics(&group);
        assert!(
            matches!(results[1], Err(StoreError::Panicked)),
            "{results:?}"
        );
        assert_eq!(
            sequences(&results[..1])
                .into_iter()
                .chain(sequences(&results[2..]))
                .collect::<Vec<_>>(),
            vec![Ok(Some(1)), Ok(Some(2))]
        );
        let next = store
            .enqueue(
                "GT".parse().unwrap(),
                Uuid::now_v7(),
                vec![9],
                record(b"d"),
                &no_case,
            )
            .await
            .unwrap();
        assert_eq!(next, Enqueued::New(3, none()));
    }

    /// Submits waiting together share one transaction, yet each keeps its
    /// own outcome: a refusal stores nothing and takes no sequence number,
    /// a duplicate within the same group is answered as one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn grouped_submits_keep_their_own_outcomes_and_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        let gt: Country = "GT".parse().unwrap();
        let repeated = Uuid::now_v7();
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = if i % 10 == 0 {
                    repeated
                } else {
                    Uuid::now_v7()
                };
                let refused = i % 7 == 3 && i % 10 != 0;
                let step = move |_: &dyn crate::storage::CasesTx| {
                    Ok(if refused {
                        Err(Refusal {
                            rule: crate::case::Rule::Order,
                            reason: retorno_proto::refusal::Reason::new(
                                retorno_proto::refusal::Code::OutOfOrder,
                            ),
                            message: "refused".into(),
                        })
                    } else {
                        Ok(none())
                    })
                };
                let request = if i % 10 == 0 {
                    b"same".to_vec()
                } else {
                    i.to_be_bytes().to_vec()
                };
                (i, store.enqueue(gt, id, request, record(b"x"), step).await)
            }));
        }
        let mut stored = Vec::new();
        let (mut refusals, mut duplicates) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                (_, Ok(Enqueued::New(seq, _))) => stored.push(seq),
                (_, Ok(Enqueued::Duplicate)) => duplicates += 1,
                (i, Err(StoreError::Refused(_))) => {
                    assert!(i % 7 == 3 && i % 10 != 0, "submit {i} was refused");
                    refusals += 1
                }
                (i, other) => panic!("submit {i}: {other:?}"),
            }
        }
        stored.sort_unstable();
        let expected: Vec<u64> = (1..=stored.len() as u64).collect();
        assert_eq!(stored, expected, "sequence numbers are contiguous from 1");
        assert_eq!(store.outbox_depth(gt), stored.len());
        // The repeated id is stored once and answered as a duplicate for its
        // 19 other copies; the others refused by their step stored nothing.
        assert_eq!(duplicates, 19);
        assert_eq!(
            refusals,
            (0..200u32).filter(|i| i % 7 == 3 && i % 10 != 0).count()
        );
        assert_eq!(stored.len() + duplicates + refusals, 200);
    }

    #[tokio::test]
    async fn receiving_twice_stores_once_with_the_same_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        let mx: Country = "MX".parse().unwrap();
        let id = Uuid::now_v7();
        let first = store
            .receive(mx, id, b"env", b"hash", |_| Ok(None), |_, _| b"r1".to_vec())
            .unwrap();
        assert_eq!(
            first,
            Received::Stored {
                cursor: 1,
                receipt: b"r1".to_vec()
            }
        );
        let again = store
            .receive(mx, id, b"env", b"hash", |_| Ok(None), |_, _| b"r2".to_vec())
            .unwrap();
        assert_eq!(
            again,
            Received::Duplicate {
                receipt: b"r1".to_vec()
            }
        );
        let forged = store
            .receive(
                mx,
                id,
                b"env2",
                b"other",
                |_| Ok(None),
                |_, _| b"r3".to_vec(),
            )
            .unwrap();
        assert_eq!(forged, Received::Conflict);
        store.commit().await.unwrap();
        store.publish_inbox(1);
        assert_eq!(store.inbox_after(0, 10).unwrap().len(), 1);
    }

    /// A batch's new receipts are sealed inside its transaction: the dedupe
    /// record keeps the sealed form, a duplicate later in the batch answers
    /// with it too, and a sealing failure stores nothing of the batch.
    #[tokio::test]
    async fn a_batch_keeps_its_receipts_sealed_and_a_sealing_failure_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        let mx: Country = "MX".parse().unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let arrival = |id| Arrival {
            sender: mx,
            id,
            case_id: "",
            kind: "",
            envelope: b"env",
            body_sha256: b"hash",
            sequence: 0,
            official: "",
        };
        let batch = [arrival(a), arrival(b), arrival(a)];
        let receipt_for = |index: usize, _: i64, _: &str| format!("receipt {index}").into_bytes();

        let failed = store.receive_all(
            &batch,
            |_, _| Ok(None),
            receipt_for,
            |_| Err("no key".to_owned()),
        );
        assert!(
            matches!(&failed, Err(StoreError::Seal(reason)) if reason == "no key"),
            "{failed:?}"
        );
        assert!(store.seen(mx, a).unwrap().is_none() && store.seen(mx, b).unwrap().is_none());

        let signatures = std::sync::atomic::AtomicUsize::new(0);
        let received = store
            .receive_all(
                &batch,
                |_, _| Ok(None),
                receipt_for,
                |receipts| {
                    signatures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    for (_, receipt) in receipts.iter_mut() {
                        receipt.extend_from_slice(b" sealed");
                    }
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(signatures.into_inner(), 1, "one sealing for the batch");
        assert_eq!(
            received,
            [
                Received::Stored {
                    cursor: 1,
                    receipt: b"receipt 0 sealed".to_vec()
                },
                Received::Stored {
                    cursor: 2,
                    receipt: b"receipt 1 sealed".to_vec()
                },
                Received::Duplicate {
                    receipt: b"receipt 0 sealed".to_vec()
                },
            ]
        );
        assert_eq!(
            store.seen(mx, a).unwrap().unwrap().receipt,
            b"receipt 0 sealed"
        );
        assert_eq!(
            store.seen(mx, b).unwrap().unwrap().receipt,
            b"receipt 1 sealed"
        );
    }

    #[tokio::test]
    async fn acknowledgements_never_go_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        assert_eq!(store.acknowledge("a", 5).await.unwrap(), 5);
        assert_eq!(store.acknowledge("a", 3).await.unwrap(), 5);
        assert_eq!(store.acknowledged("a").unwrap(), 5);
        assert_eq!(store.acknowledged("b").unwrap(), 0);
    }

    /// Three messages to GT, accepted; `rejected` of them rejected by GT
    /// (the others delivered), in one answered batch.
    async fn rejected_by_gt(store: &Store, rejected: &[bool]) -> Vec<Uuid> {
        let gt: Country = "GT".parse().unwrap();
        let mut ids = Vec::new();
        let mut answers = Vec::new();
        for (i, rejected) in rejected.iter().enumerate() {
            let id = Uuid::now_v7();
            let body = [u8::try_from(i).unwrap(); 64];
            let Enqueued::New(seq, _) = store
                .enqueue(gt, id, body.to_vec(), record(&body), &no_case)
                .await
                .unwrap()
            else {
                panic!("not accepted")
            };
            answers.push(if *rejected {
                Answer::rejected(seq, id, b"too large".to_vec())
            } else {
                Answer::delivered(seq, id, b"receipt".to_vec(), String::new())
            });
            ids.push(id);
        }
        store.record_answers(gt, answers).await.unwrap();
        ids
    }

    fn withdrawal_period() -> crate::retention::Policy {
        crate::retention::Policy {
            after_reception: jiff::SignedDuration::from_hours(24 * 365),
            after_withdrawal: jiff::SignedDuration::from_hours(24 * 90),
            check_interval: std::time::Duration::from_secs(3600),
        }
    }

    fn days_later(days: i64) -> jiff::Timestamp {
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days)
    }

    #[tokio::test]
    async fn a_rejected_messages_kept_envelope_goes_a_withdrawal_period_after_the_rejection_unless_requeued()
     {
        use crate::retention::{Mode, purge};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &power_loss()).unwrap();
        // As after a first purge: from here on, the index alone is read.
        store.index_held(&[]).unwrap();
        let gt: Country = "GT".parse().unwrap();
        let ids = rejected_by_gt(&store, &[true, true, false]).await;
        let (kept, requeued, delivered) = (ids[0], ids[1], ids[2]);
        let listed = |store: &Store| {
            let (held, read_whole) = store.held_envelopes().unwrap();
            assert!(!read_whole);
            held.iter().map(|h| h.id).collect::<Vec<_>>()
        };
        assert_eq!(listed(&store), [kept, requeued]);
        // A requeue takes its message off the index; a second rejection puts it back.
        let Requeued::Now(seq) = store.requeue(requeued, "ops").await.unwrap() else {
            panic!("not requeued")
        };
        assert_eq!(listed(&store), [kept]);
        let rejected_again = Answer::rejected(seq, requeued, b"too large".to_vec());
        store
            .record_answers(gt, vec![rejected_again])
            .await
            .unwrap();
        assert_eq!(listed(&store), [kept, requeued]);

        let policy = withdrawal_period();
        let early = purge(&store, &policy, days_later(89), Mode::Purge)
            .await
            .unwrap();
        assert_eq!(early.rejected, 0);
        let dry = purge(&store, &policy, days_later(91), Mode::DryRun)
            .await
            .unwrap();
        assert_eq!(dry.rejected, 2);
        assert!(requeueable(store.sent_status(kept).unwrap().as_ref()).is_ok());

        let later = days_later(91);
        let report = purge(&store, &policy, later, Mode::Purge).await.unwrap();
        assert_eq!((report.rejected, report.purged()), (2, 2));
        assert!(
            report
                .to_string()
                .contains("2 rejected message(s) kept for a requeue"),
            "{report}"
        );
        for id in [kept, requeued] {
            let record = store.sent_status(id).unwrap().unwrap();
            assert!(record.held_envelope.is_empty() && record.held_key.is_empty());
            assert_eq!(record.held_purged_at_micros, later.as_microsecond());
            assert_eq!(record.rejection, b"too large", "the rejection stays");
            assert_eq!(
                requeueable(Some(&record)),
                Err(NotRequeueable::EnvelopePurged)
            );
        }
        assert_eq!(
            store.requeue(kept, "ops").await.unwrap(),
            Requeued::Not(NotRequeueable::EnvelopePurged)
        );
        let untouched = store.sent_status(delivered).unwrap().unwrap();
        assert_eq!(untouched.receipt, b"receipt");
        assert!(listed(&store).is_empty());
        let again = purge(&store, &policy, days_later(200), Mode::Purge)
            .await
            .unwrap();
        assert_eq!(again.rejected, 0, "nothing is purged twice");
    }

    #[tokio::test]
    async fn the_first_purge_finds_envelopes_kept_before_the_index_and_indexes_them() {
        use crate::retention::{Mode, purge};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &power_loss()).unwrap();
        let ids = rejected_by_gt(&store, &[false, true]).await;
        // A database from before the index: the envelope is kept, unindexed.
        store.retention.remove(at_rest::held_key(ids[1])).unwrap();
        store.retention.remove(b"held_indexed").unwrap();
        assert_eq!(
            store
                .held_envelopes()
                .unwrap()
                .0
                .iter()
                .map(|h| h.id)
                .collect::<Vec<_>>(),
            [ids[1]]
        );
        let policy = withdrawal_period();
        let dry = purge(&store, &policy, days_later(91), Mode::DryRun)
            .await
            .unwrap();
        assert_eq!(dry.rejected, 1);
        assert!(
            store.held_envelopes().unwrap().1,
            "a dry run writes nothing"
        );

        let early = purge(&store, &policy, days_later(89), Mode::Purge)
            .await
            .unwrap();
        assert_eq!(early.rejected, 0);
        let (held, read_whole) = store.held_envelopes().unwrap();
        assert!(!read_whole, "indexed by the first purge");
        assert_eq!(held.iter().map(|h| h.id).collect::<Vec<_>>(), [ids[1]]);
        let due = purge(&store, &policy, days_later(91), Mode::Purge)
            .await
            .unwrap();
        assert_eq!(due.rejected, 1);
        assert!(
            store
                .sent_status(ids[1])
                .unwrap()
                .unwrap()
                .held_envelope
                .is_empty()
        );
    }

    /// The operator's log of received messages lists each inbox entry from
    /// its bookkeeping, newest first, a page at a time and filtered; an
    /// entry stored before the bookkeeping is opened for it, and once purged
    /// is still found by its id through its dedupe record.
    #[tokio::test]
    async fn received_messages_are_listed_from_their_bookkeeping_and_older_entries_still_read() {
        use retorno_proto::v1::{AdvanceNotice, Sender, envelope_body::Payload};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        let (mx, sv): (Country, Country) = ("MX".parse().unwrap(), "SV".parse().unwrap());
        let envelope = |sender: Country, id: Uuid, case_id: &str| {
            crate::envelope::seal(&retorno_proto::v1::EnvelopeBody {
                message_id: id.to_string(),
                case_id: case_id.to_owned(),
                sender: Some(Sender {
                    country: sender.to_string(),
                    ..Sender::default()
                }),
                payload: Some(Payload::AdvanceNotice(AdvanceNotice::default())),
                ..Default::default()
            })
            .envelope
        };
        let ids = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        let envelopes = [
            envelope(mx, ids[0], "MX-1"),
            envelope(sv, ids[1], "SV-1"),
            envelope(mx, ids[2], "MX-2"),
        ];
        let arrivals: Vec<Arrival<'_>> = [(mx, "MX-1"), (sv, "SV-1"), (mx, "MX-2")]
            .iter()
            .zip(&ids)
            .zip(&envelopes)
            .map(|(((sender, case_id), id), envelope)| Arrival {
                sender: *sender,
                id: *id,
                case_id,
                kind: "advance_notice",
                envelope,
                body_sha256: b"hash",
                sequence: 0,
                official: "",
            })
            .collect();
        store
            .receive_all(
                &arrivals,
                |index, _| Ok((index == 1).then(|| "a case rule".to_owned())),
                |_, _, _| b"receipt".to_vec(),
                |_| Ok(()),
            )
            .unwrap();
        store.commit().await.unwrap();
        store.publish_inbox(3);
        let all = MessageFilter {
            limit: 10,
            ..MessageFilter::default()
        };
        let (page, more) = store.received_messages(&all).unwrap();
        assert!(!more);
        let listed: Vec<(u64, &str, &str, &str, &str, LogState)> = page
            .iter()
            .map(|m| {
                let kind = m.kind.as_str();
                (
                    m.cursor,
                    m.sender.as_str(),
                    m.message_id.as_str(),
                    m.case_id.as_str(),
                    kind,
                    m.state(),
                )
            })
            .collect();
        let (a, b, c) = (ids[0].to_string(), ids[1].to_string(), ids[2].to_string());
        assert_eq!(
            listed,
            [
                (
                    3,
                    "MX",
                    c.as_str(),
                    "MX-2",
                    "advance_notice",
                    LogState::Received
                ),
                (
                    2,
                    "SV",
                    b.as_str(),
                    "SV-1",
                    "advance_notice",
                    LogState::Refused
                ),
                (
                    1,
                    "MX",
                    a.as_str(),
                    "MX-1",
                    "advance_notice",
                    LogState::Received
                ),
            ]
        );
        assert_eq!(page[2].size_bytes, envelopes[0].len() as u64);
        assert_eq!(page[1].refused, "a case rule");

        // A page at a time, and each filter.
        let cursors = |filter: MessageFilter| {
            let (page, more) = store.received_messages(&filter).unwrap();
            (page.iter().map(|m| m.cursor).collect::<Vec<_>>(), more)
        };
        let one = MessageFilter {
            limit: 1,
            ..all.clone()
        };
        assert_eq!(cursors(one.clone()), (vec![3], true));
        assert_eq!(
            cursors(MessageFilter {
                before_cursor: Some(3),
                ..one.clone()
            }),
            (vec![2], true)
        );
        assert_eq!(
            cursors(MessageFilter {
                before_cursor: Some(2),
                ..one
            }),
            (vec![1], false)
        );
        assert_eq!(
            cursors(MessageFilter {
                peer: Some(mx),
                ..all.clone()
            })
            .0,
            [3, 1]
        );
        let refused = MessageFilter {
            state: Some(LogState::Refused),
            ..all.clone()
        };
        assert_eq!(cursors(refused).0, [2]);
        let case = MessageFilter {
            case_id: Some("MX-1".into()),
            ..all.clone()
        };
        assert_eq!(cursors(case).0, [1]);
        let later = MessageFilter {
            since_micros: i64::MAX,
            ..all.clone()
        };
        assert_eq!(cursors(later).0, Vec::<u64>::new());

        // An entry written before the bookkeeping reads it from its envelope.
        let legacy = InboxRecord {
            envelope: envelopes[0].clone(),
            received_at_micros: page[2].received_at_micros,
            ..InboxRecord::default()
        };
        store
            .inbox
            .insert(1u64.to_be_bytes(), prost::Message::encode_to_vec(&legacy))
            .unwrap();
        let (page, _) = store.received_messages(&all).unwrap();
        assert_eq!(
            (
                page[2].sender.as_str(),
                page[2].message_id.as_str(),
                page[2].case_id.as_str(),
                page[2].kind.as_str()
            ),
            ("MX", a.as_str(), "MX-1", "advance_notice")
        );
        // Once purged, it has no envelope to read: the list gives its cursor
        // and times, and its id still finds it.
        assert!(store.purge_inbox_entry(1, 42, "a test's rule").unwrap());
        let (page, _) = store.received_messages(&all).unwrap();
        assert_eq!(
            (page[2].message_id.as_str(), page[2].purged_at_micros),
            ("", 42)
        );
        let found = store.received_message([sv, mx], ids[0]).unwrap().unwrap();
        assert_eq!(
            (
                found.cursor,
                found.sender.as_str(),
                found.message_id.as_str()
            ),
            (1, "MX", a.as_str())
        );
        assert_eq!(
            store.received_message([sv], ids[0]).unwrap(),
            None,
            "only from the senders asked"
        );
        // A new entry keeps its bookkeeping through a purge.
        assert!(store.purge_inbox_entry(3, 43, "a test's rule").unwrap());
        let found = store.received_message([mx], ids[2]).unwrap().unwrap();
        assert_eq!(
            (
                found.case_id.as_str(),
                found.kind.as_str(),
                found.purged_at_micros
            ),
            ("MX-2", "advance_notice", 43)
        );

        store.acknowledge("urn:a", 2).await.unwrap();
        store.acknowledge("urn:b", 3).await.unwrap();
        assert_eq!(
            store.acknowledgements().unwrap(),
            [("urn:a".to_owned(), 2), ("urn:b".to_owned(), 3)]
        );
    }

    /// A rekey beside a running gateway reads each entry again inside its
    /// batch's transaction: an outbox entry delivered, or an inbox envelope
    /// purged, between the scan and the re-seal stays gone; the others are
    /// sealed under the newest key.
    #[tokio::test]
    async fn a_rekey_never_brings_back_what_was_delivered_or_purged_since_its_scan() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old.key"), dir.path().join("new.key"));
        crate::at_rest::write_new_key(&old).unwrap();
        crate::at_rest::write_new_key(&new).unwrap();
        let data = dir.path().join("db");
        let (mx, gt): (Country, Country) = ("MX".parse().unwrap(), "GT".parse().unwrap());
        let vault = |files: &[std::path::PathBuf]| Arc::new(Vault::load(files).unwrap());
        let (delivered, kept) = (Uuid::now_v7(), Uuid::now_v7());
        {
            let store = Store::open_with_vault(
                &data,
                &Storage::default(),
                vault(std::slice::from_ref(&old)),
            )
            .unwrap();
            for id in [delivered, kept] {
                store
                    .enqueue(gt, id, id.as_bytes().to_vec(), record(b"out"), &no_case)
                    .await
                    .unwrap();
                store
                    .receive(mx, id, b"in", b"hash", |_| Ok(None), |_, _| b"r".to_vec())
                    .unwrap();
            }
            store.commit().await.unwrap();
        }
        tokio::task::yield_now().await;
        let store = loop {
            match Store::open_with_vault(
                &data,
                &Storage::default(),
                vault(&[old.clone(), new.clone()]),
            ) {
                Ok(store) => break store,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        let newest = store.vault.sealing_key().unwrap();
        let mut all = |_: Option<crate::at_rest::KeyId>| true;
        let outbox = at_rest::stale::<OutboxRecord>(&store.outbox, &mut all).unwrap();
        let inbox = at_rest::stale::<InboxRecord>(&store.inbox, &mut all).unwrap();
        assert_eq!((outbox.len(), inbox.len()), (2, 2));

        // Between the scan and the re-seal: the first outbox entry is
        // delivered, the first inbox envelope purged.
        let answer = Answer::delivered(1, delivered, b"receipt".to_vec(), String::new());
        store.record_answers(gt, vec![answer]).await.unwrap();
        assert!(store.purge_inbox_entry(1, 7, "a test's rule").unwrap());

        let written = (
            store
                .reseal::<OutboxRecord>(&store.outbox, &outbox, newest)
                .unwrap(),
            store
                .reseal::<InboxRecord>(&store.inbox, &inbox, newest)
                .unwrap(),
        );
        assert_eq!(written, (1, 1), "only what is still kept is written");
        assert_eq!(store.outbox_depth(gt), 1);
        assert!(
            store.outbox.get(outbox_key(gt, 1)).unwrap().is_none(),
            "delivered stays gone"
        );
        assert!(
            !store.inbox_entry(1).unwrap().unwrap().holds_envelope,
            "purged stays purged"
        );
        drop(store);
        tokio::task::yield_now().await;

        // With the new key alone, what was kept opens.
        let store = loop {
            match Store::open_with_vault(
                &data,
                &Storage::default(),
                vault(std::slice::from_ref(&new)),
            ) {
                Ok(store) => break store,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        let queued = store.outbox_after(gt, 0, 2, 10).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].record.envelope, b"out");
        store.publish_inbox(2);
        let received = store.inbox_after(0, 10).unwrap();
        let envelopes: Vec<&[u8]> = received
            .iter()
            .map(|(_, r)| r.envelope.as_slice())
            .collect();
        assert_eq!(envelopes, [b"".as_slice(), b"in".as_slice()]);
    }
}
