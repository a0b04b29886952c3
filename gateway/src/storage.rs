//! The storage interface: what the rest of the gateway asks of a storage
//! engine, and what every engine must guarantee.
//!
//! The engine today is sled ([`crate::store`], `[storage] backend = "sled"`,
//! the default and for now the only accepted value). This module holds what
//! does not depend on the engine: the error type, the transaction that the
//! case engine ([`crate::case`]) and the audit chain ([`crate::audit`]) run
//! in, and the reads the audit verification makes. The case engine and the
//! audit log write through [`CasesTx`] and [`AuditTx`] and read through
//! [`Records`]; they never name an engine, a tree, a table or a transaction
//! type of one. Nothing outside the engine touches trees, tables or keys.
//!
//! # What a transaction must guarantee
//!
//! Writes that belong together are one transaction in every engine: an
//! accepted submit is its outbox entry, its status record, its case step and
//! its audit entry; a stored arrival is its inbox entry, its permanent dedupe
//! record (with the receipt given), its case step, its audit entry and its
//! sequence index; a recorded answer is the removal from the outbox, the
//! status with the receipt, the case's delivery state and the audit entry.
//! Either all of it is visible afterwards or none of it is. The case engine
//! checks everything before its first write, so a refusal writes nothing;
//! it may be run again (a conflict, [`TxError::Conflict`]), so it must not
//! keep state between runs. The audit chain is serial: one appender at a
//! time holds the head (sequence and last hash), and a head is kept only
//! after the transaction that wrote its entry committed.
//!
//! # What "accepted" and "receipt" require of an engine
//!
//! "Accepted" is answered, and a receipt signed, only after the transaction
//! is durable; many transactions share one durability wait (group commit),
//! and readers (the courier, inbox subscribers) see entries only up to the
//! durable watermark. sled: a flush, then (with the default
//! `durability = "power-loss"`) a device sync of what its recovery reads.
//! PostgreSQL: the commit returns, with `synchronous_commit = on` and, for a
//! country that must survive the loss of a machine, a synchronous standby.
//!
//! # The hot calls
//!
//! Per notice, on the sending side: one submit transaction (grouped with
//! the others waiting), one durability wait (shared), one read of the outbox
//! by the courier, one answer transaction (grouped per delivery batch). On
//! the receiving side: one transaction per delivery batch and one shared
//! durability wait. Everything else (case views, status, operator reads,
//! retention, alerts) is off the hot path.
//!
//! # The next engine: PostgreSQL
//!
//! A PostgreSQL engine (tokio-postgres with a pool) implements the same
//! calls: each sled tree becomes a table keyed as the tree is (the case
//! records stay opaque key/value rows under [`CasesTx`]), a group of writes
//! becomes one transaction, group commit becomes one commit for the writes
//! waiting, and a conflict (`serialization_failure`) is [`TxError::Conflict`]
//! and the group is run again. Several nodes of one country on one database
//! hold a lease row with an epoch: every write transaction first checks
//! (`SELECT ... FOR SHARE`) that the epoch is still this node's, and aborts
//! if not, so that a node that lost its lease can never write again
//! (fencing). The calls are synchronous here because sled is and the writer
//! runs on a thread of its own; that writer is the one place that would
//! call into an async driver (`Handle::block_on`), so the case engine and
//! the audit log keep their synchronous, engine-free shape.

use std::sync::Arc;

use crate::{at_rest::AtRestError, case::Refusal};

/// Every tree of a gateway's database (the table of [`crate::store`]),
/// besides the engine's default tree: what `migrate` copies and an engine
/// creates.
pub const TREES: &[&str] = &[
    "outbox",
    "sent",
    "inbox",
    "seen",
    "acks",
    "cases",
    "policies",
    "certificates",
    "retention",
    "audit",
    "sequences",
    "rollbacks",
    "alerts",
];

/// A storage failure. Each means the operation did not take effect, with
/// one exception: [`StoreError::Postgres`] after a connection lost during a
/// commit, whose outcome is unknown (the commit may have reached the
/// database and its synchronous standby). The store then reads its
/// counters and the audit head again before the next write, and a client
/// that retries with the same message id is answered as for a duplicate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error (I/O, corruption).
    #[error("storage error: {0}")]
    Sled(Arc<sled::Error>),
    /// PostgreSQL failed (connection, query, commit); keeps the SQLSTATE,
    /// never the connection URL. After a lost connection the outcome of a
    /// commit in flight is unknown.
    #[error("PostgreSQL: {0}")]
    Postgres(crate::kv::postgres::PgError),
    /// This node no longer holds the gateway's lease (another node took it,
    /// or it never took one): it writes nothing; the holder serves.
    #[error(
        "this node does not hold the gateway's lease (its epoch {}, the database's {}): nothing was written; the lease holder serves",
        epoch_text(.held),
        epoch_text(.current)
    )]
    Fenced {
        /// The epoch this node acquired, if any.
        held: Option<i64>,
        /// The epoch in the database, if the lease row exists.
        current: Option<i64>,
    },
    /// Another node of the gateway holds the lease: it is running there.
    #[error(
        "node {holder:?} of this gateway holds the lease (it is running): stop it first, or wait {lease} s after it died"
    )]
    LeaseHeld {
        /// The node holding it.
        holder: String,
        /// `[storage] lease_seconds`: how long a dead holder keeps it.
        lease: u64,
    },
    /// A write and its commit did not finish in time and are still waiting:
    /// nothing can be promised until they do.
    #[error(
        "{what} has not finished after {waited_s} s: the database is not completing commits (PostgreSQL waiting for a synchronous standby that is gone, or a hung disk or network)"
    )]
    Stalled {
        /// What waits, e.g. "the health probe's write and flush".
        what: &'static str,
        /// How long it has waited, in whole seconds.
        waited_s: u64,
    },
    /// The storage settings are inconsistent (a configuration built in
    /// code, which `check-config` did not see); nothing was opened.
    #[error("{field}: {reason}")]
    Settings {
        /// The setting to change.
        field: &'static str,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// The flush task has stopped, so nothing can be made durable.
    #[error("the storage flush task has stopped")]
    Closed,
    /// A write panicked (a bug): its group's transaction was dropped.
    #[error("a bug stopped this write (see the gateway's log); nothing of it was stored")]
    Panicked,
    /// A stored record could not be decoded.
    #[error("stored record under {tree} is corrupt: {reason}")]
    Corrupt {
        /// The tree holding it.
        tree: &'static str,
        /// The decode error.
        reason: String,
    },
    /// The database folder could not be prepared.
    #[error("{0}")]
    Io(Arc<std::io::Error>),
    /// The receipts of a batch could not be sealed; nothing of the batch
    /// was stored.
    #[error("the receipts could not be sealed ({0}); nothing of the batch was stored")]
    Seal(String),
    /// The case rules refused the message; nothing was stored.
    #[error("{0}")]
    Refused(Refusal),
    /// `migrate` found entries in the target database: it copies into an
    /// empty one only, so that nothing already there is overwritten or mixed in.
    #[error(
        "the target database is not empty: its tree {tree} holds entries; migrate copies into an empty database only (give it a new one)"
    )]
    TargetNotEmpty {
        /// The first tree found holding entries.
        tree: &'static str,
    },
    /// The database holds another country's gateway: its configuration
    /// points at the wrong folder or PostgreSQL database. Nothing was written.
    #[error(
        "this database belongs to the gateway of {stored}, not of {configured}: nothing was written; point [storage] url (PostgreSQL) or data_dir (sled) at {configured}'s own database"
    )]
    OtherCountry {
        /// The country recorded in the database when it was first opened.
        stored: String,
        /// The country of the configuration that opened it.
        configured: crate::country::Country,
    },
    /// An envelope could not be sealed or opened (see [`crate::at_rest`]).
    #[error("{tree} entry: {source}")]
    AtRest {
        /// The tree holding it.
        tree: &'static str,
        /// What failed; names the key id when a key is missing.
        source: AtRestError,
    },
}

fn epoch_text(epoch: &Option<i64>) -> String {
    epoch.map_or_else(|| "none".to_owned(), |epoch| epoch.to_string())
}

/// A record read for verification, or why it cannot be read: an error of
/// one record, so that a verifier names it and goes on.
pub type Stored<T> = Result<T, StoreError>;

/// An envelope waiting in the outbox.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutboxRecord {
    /// The encoded `Envelope`, exactly as it will be sent.
    #[prost(bytes = "vec", tag = "1")]
    pub envelope: Vec<u8>,
    /// SHA-256 of the envelope's body, to check the receipt against.
    #[prost(bytes = "vec", tag = "2")]
    pub body_sha256: Vec<u8>,
    /// The message id, to check the receipt against.
    #[prost(string, tag = "3")]
    pub message_id: String,
    /// The payload kind (`advance_notice`, ...), kept for the operator's message log.
    #[prost(string, tag = "4")]
    pub kind: String,
}

/// Where a message accepted by this gateway stands.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SentRecord {
    /// The country it goes to.
    #[prost(string, tag = "1")]
    pub recipient: String,
    /// When it was accepted, microseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub accepted_at_micros: i64,
    /// `retorno.v1.DeliveryState`.
    #[prost(int32, tag = "3")]
    pub state: i32,
    /// The encoded `Receipt`, once delivered: the evidence of delivery.
    #[prost(bytes = "vec", tag = "4")]
    pub receipt: Vec<u8>,
    /// The encoded `Rejection`, if the peer refused it for good.
    #[prost(bytes = "vec", tag = "5")]
    pub rejection: Vec<u8>,
    /// SHA-256 of the submit request, so that a retried submit can be told from a different one.
    #[prost(bytes = "vec", tag = "6")]
    pub request_sha256: Vec<u8>,
    /// The cases the message moved, whose timelines show its delivery.
    #[prost(string, repeated, tag = "7")]
    pub case_ids: Vec<String>,
    /// The payload kind (`advance_notice`, ...), for the operator's message log.
    #[prost(string, tag = "8")]
    pub kind: String,
    /// The envelope's size in bytes, for the operator's message log.
    #[prost(uint64, tag = "9")]
    pub size_bytes: u64,
    /// When the peer's answer (receipt or rejection) was recorded; 0 before.
    #[prost(int64, tag = "10")]
    pub answered_at_micros: i64,
    /// The peer's case refusal, when it stored the message as refused.
    #[prost(string, tag = "11")]
    pub peer_refused: String,
    /// Each time an operator sent it again after a rejection, oldest first.
    #[prost(message, repeated, tag = "12")]
    pub requeued: Vec<RequeuedRecord>,
    /// A rejected message's outbox entry as it was stored (sealed at rest
    /// under `held_key`), kept so that an operator can requeue it once the
    /// cause is fixed. Empty otherwise.
    #[prost(bytes = "vec", tag = "13")]
    pub held_envelope: Vec<u8>,
    /// The outbox key `held_envelope` was stored (and sealed) under.
    #[prost(bytes = "vec", tag = "14")]
    pub held_key: Vec<u8>,
    /// When retention removed `held_envelope`, unrequeued
    /// `storage.retention_withdrawn_days` after the rejection; 0 if it did not.
    #[prost(int64, tag = "15")]
    pub held_purged_at_micros: i64,
}

/// One requeue of a rejected message: the rejection it answered, and who did it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequeuedRecord {
    /// When it was requeued, microseconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub at_micros: i64,
    /// The operator's URN.
    #[prost(string, tag = "2")]
    pub operator: String,
    /// The encoded `Rejection` it had before.
    #[prost(bytes = "vec", tag = "3")]
    pub rejection: Vec<u8>,
    /// When that rejection was recorded.
    #[prost(int64, tag = "4")]
    pub rejected_at_micros: i64,
    /// Its new sequence number in the peer's queue.
    #[prost(uint64, tag = "5")]
    pub sequence: u64,
}

/// An envelope received from a peer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InboxRecord {
    /// The encoded `Envelope` as received.
    #[prost(bytes = "vec", tag = "1")]
    pub envelope: Vec<u8>,
    /// When it was stored, microseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub received_at_micros: i64,
    /// Why the case rules refused it, if they did; refused messages are kept
    /// as evidence but not given to agencies.
    #[prost(string, tag = "3")]
    pub refused: String,
    /// The sending country, for the operator's message log (kept in the
    /// clear, like the audit log: ids and kinds, no content). Empty in an
    /// entry stored before the log listed received messages.
    #[prost(string, tag = "4")]
    pub sender: String,
    /// The message id, for the operator's message log.
    #[prost(string, tag = "5")]
    pub message_id: String,
    /// The case it names, for the operator's message log.
    #[prost(string, tag = "6")]
    pub case_id: String,
    /// The payload kind (`advance_notice`, ...), for the operator's message log.
    #[prost(string, tag = "7")]
    pub kind: String,
    /// The envelope's size in bytes, for the operator's message log.
    #[prost(uint64, tag = "8")]
    pub size_bytes: u64,
    /// When retention purged the envelope (microseconds since the Unix
    /// epoch); 0 while it is kept. A purged entry has no envelope: its
    /// `SeenRecord` hash and receipt, and its case timeline, remain.
    #[prost(int64, tag = "17")]
    pub purged_at_micros: i64,
}

/// The permanent record that an envelope was stored, and the receipt given for it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SeenRecord {
    /// The encoded `Receipt` given the first time; given again to every duplicate.
    #[prost(bytes = "vec", tag = "1")]
    pub receipt: Vec<u8>,
    /// SHA-256 of the body first stored under this id.
    #[prost(bytes = "vec", tag = "2")]
    pub body_sha256: Vec<u8>,
    /// Where it sits in the inbox.
    #[prost(uint64, tag = "3")]
    pub cursor: u64,
}

/// Why a write inside a transaction stopped.
#[derive(Debug, Clone)]
pub enum TxError {
    /// Another transaction got in the way; the engine runs this one again.
    Conflict,
    /// The transaction is abandoned with this error; nothing of it is kept.
    Abort(StoreError),
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Abort(error)
    }
}

/// The case records inside the transaction that stores a message: opaque
/// keys and values that [`crate::case`] defines (a case, a family group, a
/// capacity counter), so an engine keeps them as a key/value table.
pub trait CasesTx {
    /// The value under `key`, as this transaction sees it.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TxError>;
    /// Writes `value` under `key` in this transaction.
    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), TxError>;
}

/// The audit log inside a transaction: [`crate::audit`] appends an entry
/// under its sequence number (u64 big-endian), after the head it was given.
pub trait AuditTx {
    /// Writes the encoded entry `entry` under sequence number `seq`.
    fn append(&self, seq: u64, entry: Vec<u8>) -> Result<(), TxError>;
}

/// Records read one at a time, each read able to fail on its own.
pub type Entries<'a, T> = Box<dyn Iterator<Item = Result<T, StoreError>> + 'a>;

/// What the audit and seal verification reads: the log and every record that
/// carries a seal, each record's error on its own so that a verifier names it
/// and goes on.
pub trait Records {
    /// Every audit entry as stored (sequence key, encoded entry), in order.
    fn audit_log(&self) -> Entries<'_, (Vec<u8>, Vec<u8>)>;
    /// Every inbox entry in cursor order, opened.
    fn inbox_entries(&self) -> Entries<'_, (u64, Stored<InboxRecord>)>;
    /// Every sent record, by message id.
    fn sent_entries(&self) -> Entries<'_, (String, Stored<SentRecord>)>;
    /// Every seen record: sender, message id, record.
    fn seen_entries(&self) -> Entries<'_, (String, String, Stored<SeenRecord>)>;
    /// The certificate (DER) with this SHA-256, if kept.
    fn certificate(&self, sha256: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

impl<T: Records + ?Sized> Records for Arc<T> {
    fn audit_log(&self) -> Entries<'_, (Vec<u8>, Vec<u8>)> {
        (**self).audit_log()
    }
    fn inbox_entries(&self) -> Entries<'_, (u64, Stored<InboxRecord>)> {
        (**self).inbox_entries()
    }
    fn sent_entries(&self) -> Entries<'_, (String, Stored<SentRecord>)> {
        (**self).sent_entries()
    }
    fn seen_entries(&self) -> Entries<'_, (String, String, Stored<SeenRecord>)> {
        (**self).seen_entries()
    }
    fn certificate(&self, sha256: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).certificate(sha256)
    }
}

/// The storage engine (`[storage] backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// sled, embedded: one database folder per gateway, nothing to install.
    #[default]
    Sled,
    /// PostgreSQL (`url`): one database shared by the gateway's nodes, one
    /// of which holds the lease and writes.
    Postgres,
}

impl StoreError {
    /// Whether this is the refusal of a database a running gateway holds:
    /// sled's lock on its folder, or another node's lease on PostgreSQL.
    pub fn held_by_a_running_gateway(&self) -> bool {
        match self {
            StoreError::Sled(error) => {
                matches!(&**error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
            }
            StoreError::LeaseHeld { .. } => true,
            _ => false,
        }
    }
}

/// Opens the configured engine's database in `dir` (`[storage] backend`),
/// for the commands that work on `country`'s stopped gateway: refused when
/// it is another country's ([`crate::store::Store::open_stopped`]).
pub fn open(
    dir: &std::path::Path,
    settings: &crate::config::Storage,
    country: crate::country::Country,
) -> Result<Arc<crate::store::Store>, StoreError> {
    crate::store::Store::open_stopped(dir, settings, country)
}

/// Case records in memory, for the case engine's own tests: writes are kept
/// at once (the case engine writes nothing before its checks pass).
#[cfg(test)]
#[derive(Default)]
pub struct MemoryCases(std::sync::Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>);

#[cfg(test)]
impl CasesTx for MemoryCases {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), TxError> {
        self.0.lock().unwrap().insert(key.to_vec(), value);
        Ok(())
    }
}
