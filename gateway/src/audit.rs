//! The audit log: what this gateway did, in order, append-only and
//! hash-chained, kept by the storage engine (the sled tree `audit`).
//!
//! One [`AuditEntry`] for every accepted submit, every envelope stored from
//! a peer, every verified receipt recorded, every refusal (a submit refused by
//! validation or the case rules, an envelope rejected on arrival, an envelope
//! stored but refused by the case rules, a message the peer rejected for
//! good), every agency read (cases, its inbox, where a message stands),
//! every operator action (the Operator API, `retorno-gateway rekey`) and every
//! envelope that retention removed. Each entry holds the hash of the one
//! before, so that an entry altered, removed or inserted breaks the chain at
//! that place; [`verify`] walks the chain and checks every seal kept (the
//! envelopes in the inbox, the receipts received and given) against the
//! certificates kept and the regional root.
//!
//! An entry that records a write is appended in the same transaction as the
//! write ([`append_in`] on the engine's [`AuditTx`], called by the store), so
//! the log and the data never disagree: a crash takes back both or neither. Refusals and reads
//! write nothing else and are appended in a small transaction of their own,
//! made durable by the next group commit or sled's own flush (500 ms); a
//! crash can lose the last of those, never leave a gap in the chain.
//!
//! Entries hold no personal data of a child: ids, parties, event kinds, and
//! reasons that name a field or a rule. The one name they hold is the acting
//! official's, as their agency named them (`official`: staff, not the child,
//! and accountable by design). A validation message can quote the value it
//! refuses (a bad date may be a birth date), so only the field it names is
//! kept ([`status_reason`], [`rejection_reason`]).
//!
//! The chain proves that nothing inside the log was changed; it cannot show
//! that its newest entries were cut off, because its head is kept in the same
//! database. The [`Report`] prints the head (sequence and hash) so that an
//! operator can keep it elsewhere and compare it later.

use std::{collections::HashMap, fmt, path::PathBuf};

use prost::Message as _;
use retorno_proto::v1::{Envelope, EnvelopeBody, Rejection, Seal};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::{
    config::Config,
    country::Country,
    receipt,
    seal::{self, Verifier},
    storage::{AuditTx, Entries, Records, StoreError, TxError},
};

/// What an entry's hash covers before the entry itself, so that it can never
/// be mistaken for another retorno digest.
const DOMAIN: &[u8] = b"retorno.v1 audit entry\0";

/// The previous hash of the first entry.
const GENESIS: [u8; 32] = [0; 32];

/// Longest detail kept (in bytes), so that an entry stays small whatever a
/// reason says.
const MAX_DETAIL: usize = 500;

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Event {
    /// Not set (never written).
    Unspecified = 0,
    /// An agency's submit was accepted: the message is in the outbox.
    SubmitAccepted = 1,
    /// An agency's submit was refused (validation or case rules); nothing stored.
    SubmitRefused = 2,
    /// A peer's envelope was stored in the inbox (a delivery to this gateway).
    Delivered = 3,
    /// A peer's envelope was stored, but the case rules refused it: kept as evidence only.
    StoredRefused = 4,
    /// A peer's envelope was rejected on arrival; nothing stored.
    EnvelopeRejected = 5,
    /// The peer's verified receipt for a message of the outbox was recorded.
    Receipt = 6,
    /// The peer rejected a message of the outbox for good.
    PeerRejected = 7,
    /// An agency read a case (`GetCase`).
    CaseRead = 8,
    /// An agency listed cases (`ListCases`).
    CasesListed = 9,
    /// An agency opened its inbox (`Subscribe`): from which cursor.
    InboxRead = 10,
    /// An agency asked where a message stands (`GetStatus`).
    StatusRead = 11,
    /// An operator read the gateway's state or its message log (the Operator API).
    OperatorRead = 12,
    /// An operator requeued a message the peer had rejected.
    Requeued = 13,
    /// An operator drained or resumed the gateway.
    Drain = 14,
    /// A statistics report was made with `[statistics] min_cell` below the
    /// default: the detail says how low.
    MinCellLowered = 15,
    /// Retention removed a kept envelope (the personal data of a message);
    /// the detail names the rule and, for an inbox entry, its cursor.
    EnvelopePurged = 16,
    /// The kept envelopes were sealed again under the newest at-rest key
    /// (`retorno-gateway rekey`, or an operator's `ops rekey`); the detail
    /// gives the key ids and counts.
    Rekeyed = 17,
}

impl Event {
    /// The name printed for operators.
    pub fn name(self) -> &'static str {
        match self {
            Event::Unspecified => "unspecified",
            Event::SubmitAccepted => "submit-accepted",
            Event::SubmitRefused => "submit-refused",
            Event::Delivered => "delivered",
            Event::StoredRefused => "stored-refused",
            Event::EnvelopeRejected => "envelope-rejected",
            Event::Receipt => "receipt",
            Event::PeerRejected => "peer-rejected",
            Event::CaseRead => "case-read",
            Event::CasesListed => "cases-listed",
            Event::InboxRead => "inbox-read",
            Event::StatusRead => "status-read",
            Event::OperatorRead => "operator-read",
            Event::Requeued => "requeued",
            Event::Drain => "drain",
            Event::MinCellLowered => "min-cell-lowered",
            Event::EnvelopePurged => "envelope-purged",
            Event::Rekeyed => "rekeyed",
        }
    }
}

/// One entry of the log, as stored under its sequence number (u64 big-endian).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuditEntry {
    /// Its place in the log, from 1, without gaps.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// When it was appended, microseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub at_micros: i64,
    /// What it records.
    #[prost(enumeration = "Event", tag = "3")]
    pub event: i32,
    /// The message concerned, if any.
    #[prost(string, tag = "4")]
    pub message_id: String,
    /// The cases concerned (a group proposal moves several).
    #[prost(string, repeated, tag = "5")]
    pub case_ids: Vec<String>,
    /// Who: the agency's URN, or the peer's country.
    #[prost(string, tag = "6")]
    pub party: String,
    /// Why, for a refusal: the rule or the field, never a value.
    #[prost(string, tag = "7")]
    pub detail: String,
    /// The official the agency named for a submit, or the sending agency
    /// named for a delivered message (`Sender.official`): as named, never
    /// checked by any gateway. Empty when none was named.
    #[prost(string, tag = "10")]
    pub official: String,
    /// The hash of the entry before (zeros for the first).
    #[prost(bytes = "vec", tag = "8")]
    pub prev_hash: Vec<u8>,
    /// SHA-256 over [`DOMAIN`] and this entry encoded with `hash` empty.
    #[prost(bytes = "vec", tag = "9")]
    pub hash: Vec<u8>,
}

impl AuditEntry {
    /// The hash this entry must carry: SHA-256 over [`DOMAIN`] and the
    /// entry encoded with `hash` empty.
    fn expected_hash(&self) -> [u8; 32] {
        let digest = |unhashed: &AuditEntry| {
            Sha256::new()
                .chain_update(DOMAIN)
                .chain_update(unhashed.encode_to_vec())
                .finalize()
                .into()
        };
        if self.hash.is_empty() {
            return digest(self);
        }
        digest(&AuditEntry {
            hash: Vec::new(),
            ..self.clone()
        })
    }

    /// What it records, for a report: event, message, cases, party.
    pub fn describe(&self) -> String {
        let event = Event::try_from(self.event).map_or_else(
            |_| format!("unknown event {}", self.event),
            |e| e.name().to_owned(),
        );
        let mut text = event;
        if !self.message_id.is_empty() {
            text.push_str(&format!(" of message {}", self.message_id));
        }
        if !self.case_ids.is_empty() {
            text.push_str(&format!(", case {}", self.case_ids.join(" ")));
        }
        if !self.party.is_empty() {
            text.push_str(&format!(", party {}", self.party));
        }
        if !self.official.is_empty() {
            text.push_str(&format!(
                ", official {:?} (as named by the agency)",
                self.official
            ));
        }
        text
    }
}

/// What a caller records; the store adds sequence, time and hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// What happened.
    pub event: Event,
    /// The message concerned, if any.
    pub message_id: String,
    /// The cases concerned.
    pub case_ids: Vec<String>,
    /// Who: an agency's URN, an operator's, a peer's country, or the
    /// command that acted (`retorno-gateway rekey`).
    pub party: String,
    /// Why, for a refusal; no personal data (see the module doc).
    pub detail: String,
    /// The official an agency named for a message (see [`AuditEntry::official`]).
    pub official: String,
}

impl Record {
    fn new(event: Event, party: impl Into<String>) -> Record {
        Record {
            event,
            party: party.into(),
            ..Record::default()
        }
    }

    /// Sets the message concerned.
    pub fn message(mut self, id: impl Into<String>) -> Record {
        self.message_id = id.into();
        self
    }

    /// Sets the cases concerned; empty ids are left out.
    pub fn cases<S: AsRef<str>>(mut self, ids: &[S]) -> Record {
        self.case_ids = ids
            .iter()
            .map(|id| id.as_ref().to_owned())
            .filter(|id| !id.is_empty())
            .collect();
        self
    }

    /// Sets the official named for the message, cut to [`MAX_DETAIL`] bytes.
    pub fn official(mut self, name: &str) -> Record {
        self.official = capped(name).to_owned();
        self
    }

    /// Sets the reason, cut to [`MAX_DETAIL`] bytes.
    pub fn detail(mut self, detail: &str) -> Record {
        self.detail = capped(detail).to_owned();
        self
    }

    /// A statistics report made by `who` with a `min_cell` lowered to `k`.
    pub fn min_cell_lowered(who: &str, k: u64) -> Record {
        Record::new(Event::MinCellLowered, who).detail(&format!(
            "statistics.min_cell = {k}, lower than the default 5"
        ))
    }

    /// A submit accepted from `agency` (its URN).
    pub fn submit_accepted(agency: &str) -> Record {
        Record::new(Event::SubmitAccepted, agency)
    }

    /// A submit refused to `agency`; give the reason with [`Record::detail`].
    pub fn submit_refused(agency: &str) -> Record {
        Record::new(Event::SubmitRefused, agency)
    }

    /// An envelope stored from `peer`, refused by the case rules if `refusal` is not empty.
    pub fn stored(peer: Country, refusal: &str) -> Record {
        if refusal.is_empty() {
            Record::new(Event::Delivered, peer.as_str())
        } else {
            Record::new(Event::StoredRefused, peer.as_str())
                .detail(&format!("case rules: {refusal}"))
        }
    }

    /// An envelope from `peer` rejected on arrival.
    pub fn envelope_rejected(peer: Country, rejection: &Rejection) -> Record {
        Record::new(Event::EnvelopeRejected, peer.as_str())
            .message(rejection.message_id.as_str())
            .detail(&rejection_reason(rejection))
    }

    /// `peer`'s verified receipt recorded; `peer_refused` is its case rules' refusal, if any.
    pub fn receipt(peer: Country, peer_refused: &str) -> Record {
        let record = Record::new(Event::Receipt, peer.as_str());
        if peer_refused.is_empty() {
            record
        } else {
            record.detail(&format!("the peer's case rules: {peer_refused}"))
        }
    }

    /// `peer` rejected a message for good (`rejection`: the encoded `Rejection`).
    pub fn peer_rejected(peer: Country, rejection: &[u8]) -> Record {
        let reason = Rejection::decode(rejection).map_or_else(
            |_| "the rejection does not decode".to_owned(),
            |r| rejection_reason(&r),
        );
        Record::new(Event::PeerRejected, peer.as_str()).detail(&reason)
    }

    /// `agency` read case `case_id`.
    pub fn case_read(agency: &str, case_id: &str) -> Record {
        Record::new(Event::CaseRead, agency).cases(&[case_id])
    }

    /// `agency` subscribed to its inbox after `cursor`.
    pub fn inbox_read(agency: &str, cursor: u64) -> Record {
        Record::new(Event::InboxRead, agency).detail(&format!("after cursor {cursor}"))
    }

    /// `agency` asked where message `id` stands.
    pub fn status_read(agency: &str, id: &str) -> Record {
        Record::new(Event::StatusRead, agency).message(id)
    }

    /// `operator` read `what` (e.g. "gateway status", "message log").
    pub fn operator_read(operator: &str, what: &str) -> Record {
        Record::new(Event::OperatorRead, operator).detail(what)
    }

    /// `operator` requeued a message the peer had rejected.
    pub fn requeued(operator: &str, id: &str, sequence: u64) -> Record {
        Record::new(Event::Requeued, operator)
            .message(id)
            .detail(&format!("new sequence {sequence}"))
    }

    /// `operator` drained the gateway (`on`) or resumed it.
    pub fn drain(operator: &str, on: bool) -> Record {
        Record::new(Event::Drain, operator).detail(if on { "drain" } else { "resume" })
    }

    /// Retention removed the kept envelope of a message exchanged with
    /// `peer`; `why` names the rule (and the setting that set its period).
    pub fn envelope_purged(peer: &str, why: &str) -> Record {
        Record::new(Event::EnvelopePurged, peer).detail(why)
    }

    /// `party` (an operator, or the command `retorno-gateway rekey`) sealed
    /// kept envelopes again; `what` gives key ids and counts, never content.
    pub fn rekeyed(party: &str, what: &str) -> Record {
        Record::new(Event::Rekeyed, party).detail(what)
    }

    /// `agency` listed cases: `state` is the filter asked for, `count` how many it got.
    pub fn cases_listed(agency: &str, state: &str, count: usize) -> Record {
        Record::new(Event::CasesListed, agency)
            .detail(&format!("state filter {state}: {count} cases"))
    }
}

fn capped(text: &str) -> &str {
    if text.len() <= MAX_DETAIL {
        return text;
    }
    let mut end = MAX_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The field a validation message names: the text before its first `": "`
/// when that is a field path (`advance_notice.child.birth_date`). What
/// follows may quote the refused value and is never kept.
fn field_named(message: &str) -> Option<&str> {
    let (head, _) = message.split_once(": ")?;
    let path = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.[]".contains(c);
    (!head.is_empty() && head.chars().all(path)).then_some(head)
}

/// What the audit keeps of a refusal answered with `status`: its code and
/// the field it names, if any.
pub fn status_reason(status: &tonic::Status) -> String {
    match field_named(status.message()) {
        Some(field) => format!("{:?}: {field}", status.code()),
        None => format!("{:?}", status.code()),
    }
}

/// What the audit keeps of a rejection: its code and the field it names, if any.
pub fn rejection_reason(rejection: &Rejection) -> String {
    let code = format!("{:?}", rejection.code());
    match field_named(&rejection.reason) {
        Some(field) => format!("{code}: {field}"),
        None => code,
    }
}

/// Where the chain ends: what the next entry takes. The store keeps it in
/// memory behind its audit lock and advances it only when an append commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The sequence number of the next entry.
    pub next_seq: u64,
    /// The hash of the last entry (zeros before the first).
    pub last_hash: [u8; 32],
}

impl Head {
    /// The head after the log's last entry (sequence key, encoded entry), or
    /// the first head if the log is empty.
    pub fn after(last: Option<(&[u8], &[u8])>) -> Result<Head, StoreError> {
        let Some((key, value)) = last else {
            return Ok(Head {
                next_seq: 1,
                last_hash: GENESIS,
            });
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            tree: "audit",
            reason: format!("the last entry {reason}; run `retorno-gateway audit verify`"),
        };
        let seq = sequence(key).ok_or_else(|| corrupt("has no sequence number".into()))?;
        let entry = AuditEntry::decode(value).map_err(|e| corrupt(e.to_string()))?;
        let last_hash = <[u8; 32]>::try_from(entry.hash.as_slice())
            .map_err(|_| corrupt("has no 32-byte hash".into()))?;
        Ok(Head {
            next_seq: seq + 1,
            last_hash,
        })
    }
}

fn sequence(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

/// Appends `record` after `head` inside a transaction on the `audit` tree
/// and returns the head it leaves; the caller keeps that head only if the
/// transaction commits (the engine may run it again, with the same head).
pub fn append_in(tx: &dyn AuditTx, head: &Head, record: &Record) -> Result<Head, TxError> {
    let mut entry = AuditEntry {
        seq: head.next_seq,
        at_micros: crate::clock::system_micros(),
        event: record.event as i32,
        message_id: record.message_id.clone(),
        case_ids: record.case_ids.clone(),
        party: record.party.clone(),
        detail: record.detail.clone(),
        official: record.official.clone(),
        prev_hash: head.last_hash.to_vec(),
        hash: Vec::new(),
    };
    let hash = entry.expected_hash();
    entry.hash = hash.to_vec();
    tx.append(head.next_seq, entry.encode_to_vec())?;
    Ok(Head {
        next_seq: head.next_seq + 1,
        last_hash: hash,
    })
}

/// Every entry of the log in order; an entry that does not decode is left out.
pub fn entries(store: &impl Records) -> Result<Vec<AuditEntry>, StoreError> {
    let mut entries = Vec::new();
    for item in store.audit_log() {
        let (_, value) = item?;
        if let Ok(entry) = AuditEntry::decode(value.as_slice()) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// Why an entry breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Its content is not what its hash was computed over.
    HashMismatch,
    /// Entries before it are gone: the chain jumps over them.
    Missing {
        /// The first missing sequence number.
        from: u64,
        /// The last missing sequence number.
        to: u64,
    },
    /// Its previous hash is not the hash of the entry before it.
    BrokenLink {
        /// The entry before it.
        previous: u64,
    },
    /// The sequence number inside it is not the one it is stored under.
    WrongSequence {
        /// The number inside.
        stored: u64,
    },
    /// Its key is not a sequence number.
    BadKey,
    /// Its bytes do not decode, or are not those an append writes.
    Undecodable(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::HashMismatch => write!(
                f,
                "hash mismatch: its content is not what its hash covers (the entry was altered)"
            ),
            Fault::Missing { from, to } if from == to => {
                write!(f, "broken link: entry {from} before it is missing")
            }
            Fault::Missing { from, to } => {
                write!(
                    f,
                    "broken link: entries {from} to {to} before it are missing"
                )
            }
            Fault::BrokenLink { previous } => write!(
                f,
                "broken link: its previous hash is not entry {previous}'s hash (entry {previous} was altered or replaced)"
            ),
            Fault::WrongSequence { stored } => write!(
                f,
                "it says it is entry {stored}: it was moved from another place"
            ),
            Fault::BadKey => write!(f, "its key is not an 8-byte sequence number"),
            Fault::Undecodable(why) => write!(f, "it is not an entry as written: {why}"),
        }
    }
}

/// The first entry that breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// Its sequence number (its key).
    pub seq: u64,
    /// What it records, as far as it can be read.
    pub records: String,
    /// Why it breaks the chain.
    pub fault: Fault,
}

/// The outcome of walking the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// Entries that verified (all of them if the chain is intact).
    pub entries: u64,
    /// The last entry that verified: sequence and hash.
    pub head: Option<(u64, [u8; 32])>,
    /// The first entry that does not, if any.
    pub broken: Option<Broken>,
}

/// Walks the chain from the first entry and stops at the first that breaks it.
pub fn verify_chain(store: &impl Records) -> Result<Chain, StoreError> {
    verify_log(store.audit_log())
}

/// [`verify_chain`] over a log read from anywhere (sequence key and encoded
/// entry, in key order): `retorno-gateway migrate` walks the chain it copied
/// into the target database with the same checks as `audit verify`.
pub fn verify_log(log: Entries<'_, (Vec<u8>, Vec<u8>)>) -> Result<Chain, StoreError> {
    let mut chain = Chain::default();
    let mut last_hash = GENESIS;
    let mut expected = 1u64;
    for item in log {
        let (key, value) = item?;
        let seq = sequence(&key).unwrap_or(expected);
        match check_entry(&key, &value, expected, &last_hash) {
            Ok(hash) => {
                chain.entries += 1;
                chain.head = Some((seq, hash));
                last_hash = hash;
                expected = seq + 1;
            }
            Err(fault) => {
                let records = AuditEntry::decode(value.as_slice())
                    .map_or_else(|_| "(unreadable)".to_owned(), |e| e.describe());
                chain.broken = Some(Broken {
                    seq,
                    records,
                    fault,
                });
                break;
            }
        }
    }
    Ok(chain)
}

/// Checks one stored entry against its place; returns its hash.
fn check_entry(
    key: &[u8],
    value: &[u8],
    expected: u64,
    last_hash: &[u8; 32],
) -> Result<[u8; 32], Fault> {
    let seq = sequence(key).ok_or(Fault::BadKey)?;
    let entry = AuditEntry::decode(value).map_err(|e| Fault::Undecodable(e.to_string()))?;
    // Bytes that decode but are not what an append writes (an unknown field
    // added, a field repeated) were not written by the gateway.
    if entry.encode_to_vec() != value {
        return Err(Fault::Undecodable("its encoding was changed".into()));
    }
    if entry.seq != seq {
        return Err(Fault::WrongSequence { stored: entry.seq });
    }
    if seq > expected {
        return Err(Fault::Missing {
            from: expected,
            to: seq - 1,
        });
    }
    if entry.prev_hash != last_hash {
        return Err(Fault::BrokenLink {
            previous: seq.saturating_sub(1),
        });
    }
    let hash = entry.expected_hash();
    if entry.hash != hash {
        return Err(Fault::HashMismatch);
    }
    Ok(hash)
}

/// A seal that does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadSeal {
    /// The record that carries it, e.g. "inbox entry 7 (message … from MX)".
    pub what: String,
    /// Why it fails.
    pub why: String,
}

/// The outcome of checking the seals kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seals {
    /// Seals that verified.
    pub verified: u64,
    /// Inbox envelopes skipped because retention purged them (their body
    /// hash and receipt remain in the seen record).
    pub purged: u64,
    /// Receipts this gateway gave whose sealing a crash interrupted; they
    /// are sealed when the peer delivers the message again.
    pub unsealed: u64,
    /// Every seal that does not verify.
    pub failures: Vec<BadSeal>,
}

/// Checks seals against the certificates kept, each certificate once
/// against the regional root: a record re-sealed with a key of one's own
/// does not pass for a gateway's.
struct Signers<'a> {
    store: &'a dyn Records,
    roots: &'a [CertificateDer<'a>],
    known: HashMap<(Vec<u8>, &'static [u8]), Signer>,
}

/// A certificate's gateway and its verifier, or why it cannot seal anything here.
type Signer = Result<(Country, Verifier), String>;

impl Signers<'_> {
    /// Checks that `seal` is `signer`'s seal over `body` under `domain`;
    /// `at_micros` is when the record was made, when its certificate must be valid.
    fn check(
        &mut self,
        domain: &'static [u8],
        signer: &str,
        body: &[u8],
        seal: Option<&Seal>,
        at_micros: i64,
    ) -> Result<Result<(), String>, StoreError> {
        let Some(seal) = seal else {
            return Ok(Err("it has no seal".into()));
        };
        let key = (seal.certificate_sha256.clone(), domain);
        if !self.known.contains_key(&key) {
            let verifier = self.verifier(domain, &seal.certificate_sha256, at_micros)?;
            self.known.insert(key.clone(), verifier);
        }
        let Some(known) = self.known.get_mut(&key) else {
            return Ok(Err("no verifier".into()));
        };
        let (country, verifier) = match known {
            Ok(known) => known,
            Err(why) => return Ok(Err(why.clone())),
        };
        if country.as_str() != signer {
            return Ok(Err(format!(
                "sealed by {country}'s gateway, but the record names {signer}"
            )));
        }
        Ok(verifier.verify(body, Some(seal)).map_err(|e| e.to_string()))
    }

    fn verifier(
        &self,
        domain: &'static [u8],
        certificate_sha256: &[u8],
        at_micros: i64,
    ) -> Result<Signer, StoreError> {
        let Some(der) = self.store.certificate(certificate_sha256)? else {
            return Ok(Err(format!(
                "the certificate it names ({}) is not in the certificates tree",
                seal::hex(certificate_sha256)
            )));
        };
        let at = crate::clock::unix_time(at_micros);
        Ok(seal::gateway_verifier(domain, &der, self.roots, at, None).map_err(|e| e.to_string()))
    }
}

/// Checks every seal kept: the peers' seals over the envelopes in the inbox,
/// the peers' seals over the receipts in the sent records, and this
/// gateway's (`own`) seals over the receipts it gave.
pub fn verify_seals(
    store: &impl Records,
    roots: &[CertificateDer<'_>],
    own: Country,
) -> Result<Seals, StoreError> {
    let mut seals = Seals::default();
    let mut signers = Signers {
        store,
        roots,
        known: HashMap::new(),
    };
    for item in store.inbox_entries() {
        let (cursor, record) = item?;
        let what = format!("inbox entry {cursor}");
        let record = match record {
            Ok(record) if record.purged_at_micros != 0 => {
                seals.purged += 1;
                continue;
            }
            Ok(record) => record,
            Err(error) => {
                tally(&mut seals, what, Err(error.to_string()));
                continue;
            }
        };
        let (what, result) = match Envelope::decode(record.envelope.as_slice()) {
            Ok(envelope) => {
                let body = EnvelopeBody::decode(envelope.body.as_slice()).unwrap_or_default();
                let sender = body.sender.map(|s| s.country).unwrap_or_default();
                let what = format!("{what} (message {} from {sender})", body.message_id);
                let result = signers.check(
                    seal::ENVELOPES,
                    &sender,
                    &envelope.body,
                    envelope.seal.as_ref(),
                    record.received_at_micros,
                )?;
                (what, result)
            }
            Err(error) => (what, Err(format!("the envelope does not decode: {error}"))),
        };
        tally(&mut seals, what, result);
    }
    for item in store.sent_entries() {
        let (id, record) = item?;
        let what = format!("the receipt for message {id}");
        let record = match record {
            Ok(record) if record.receipt.is_empty() => continue,
            Ok(record) => record,
            Err(error) => {
                tally(&mut seals, what, Err(error.to_string()));
                continue;
            }
        };
        let what = format!("{what} (sent to {})", record.recipient);
        let result = check_receipt(&mut signers, &record.receipt, &record.recipient)?;
        tally(&mut seals, what, result);
    }
    for item in store.seen_entries() {
        let (sender, id, record) = item?;
        let what = format!("the receipt given for message {id} from {sender}");
        let receipt = match record {
            Ok(record) => record.receipt,
            Err(error) => {
                tally(&mut seals, what, Err(error.to_string()));
                continue;
            }
        };
        if receipt::is_unsealed(&receipt) {
            seals.unsealed += 1;
            continue;
        }
        let result = check_receipt(&mut signers, &receipt, own.as_str())?;
        tally(&mut seals, what, result);
    }
    Ok(seals)
}

fn tally(seals: &mut Seals, what: String, result: Result<(), String>) {
    match result {
        Ok(()) => seals.verified += 1,
        Err(why) => seals.failures.push(BadSeal { what, why }),
    }
}

fn check_receipt(
    signers: &mut Signers<'_>,
    encoded: &[u8],
    signer: &str,
) -> Result<Result<(), String>, StoreError> {
    let receipt = match receipt::decode(encoded) {
        Ok(receipt) => receipt,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let at = receipt::received_at_micros(&receipt);
    signers.check(
        seal::RECEIPTS,
        signer,
        &receipt.body,
        receipt.seal.as_ref(),
        at,
    )
}

/// What `retorno-gateway audit verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The chain.
    pub chain: Chain,
    /// The seals.
    pub seals: Seals,
}

impl Report {
    /// Whether the chain is whole and every seal verifies.
    pub fn intact(&self) -> bool {
        self.chain.broken.is_none() && self.seals.failures.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (chain, seals) = (&self.chain, &self.seals);
        if self.intact() {
            writeln!(
                f,
                "audit chain intact: {} entries, {} seals verified",
                chain.entries, seals.verified
            )?;
        } else {
            if let Some(broken) = &chain.broken {
                writeln!(
                    f,
                    "audit entry {} ({}) fails: {}",
                    broken.seq, broken.records, broken.fault
                )?;
            }
            for bad in &seals.failures {
                writeln!(f, "seal of {} fails: {}", bad.what, bad.why)?;
            }
            writeln!(
                f,
                "audit verification FAILED: {} entries verified{}, {} seals verified, {} failed",
                chain.entries,
                if chain.broken.is_some() {
                    " before the break"
                } else {
                    ""
                },
                seals.verified,
                seals.failures.len()
            )?;
        }
        if let (Some((seq, hash)), None) = (&chain.head, &chain.broken) {
            writeln!(
                f,
                "head: entry {seq}, hash {} (keep it elsewhere: a later head must extend it)",
                seal::hex(hash)
            )?;
        }
        if seals.purged > 0 {
            writeln!(
                f,
                "note: {} inbox envelopes purged by retention were skipped; their body hashes and receipts remain in the seen records",
                seals.purged
            )?;
        }
        if seals.unsealed > 0 {
            writeln!(
                f,
                "note: {} receipts given are not sealed yet (a crash interrupted their batch); they are sealed when the peer delivers again",
                seals.unsealed
            )?;
        }
        Ok(())
    }
}

/// Walks the chain and checks every seal; `roots` are the regional roots
/// that certificates must chain to, `own` this gateway's country.
pub fn verify(
    store: &impl Records,
    roots: &[CertificateDer<'_>],
    own: Country,
) -> Result<Report, StoreError> {
    Ok(Report {
        chain: verify_chain(store)?,
        seals: verify_seals(store, roots, own)?,
    })
}

/// Why `retorno-gateway audit verify` could not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database could not be opened, most often because the gateway is running.
    #[error(
        "data_dir {}: cannot open the database: {source}{}",
        dir.display(),
        if source.held_by_a_running_gateway() {
            " (stop the gateway to verify its audit log)"
        } else {
            ""
        }
    )]
    Open {
        /// The data folder.
        dir: PathBuf,
        /// What failed.
        source: StoreError,
    },
    /// The regional root could not be read.
    #[error("tls.regional_root: {0}")]
    Roots(#[from] crate::tls::TlsError),
    /// Reading the database failed part way.
    #[error("data_dir {}: reading failed", dir.display())]
    Read {
        /// The data folder.
        dir: PathBuf,
        /// What failed.
        source: StoreError,
    },
}

/// `retorno-gateway audit verify`: verifies a stopped gateway's log and seals.
pub async fn verify_stopped(config: &Config) -> Result<Report, AuditError> {
    let roots = crate::tls::load_certificates(&config.tls.regional_root)?;
    let dir = config.data_dir.clone();
    let store = crate::storage::open(&dir, &config.storage, config.country).map_err(|source| {
        AuditError::Open {
            dir: dir.clone(),
            source,
        }
    })?;
    let report = verify(&store, &roots, config.country)
        .map_err(|source| AuditError::Read { dir, source })?;
    let alerts = crate::alerts::Alerts::new(config.country, store.clone(), config.alerts.clone());
    alert_outcome(&alerts, &report);
    if let Err(error) = store.commit().await {
        tracing::error!(%error, "the audit verification alert could not be flushed");
    }
    Ok(report)
}

/// Raises (or clears) the audit verification alert in the stopped
/// gateway's store, from which the gateway posts it to its webhooks when
/// it runs: a failed verification must reach the operators even if no one
/// reads this report.
fn alert_outcome(alerts: &crate::alerts::Alerts, report: &Report) {
    let condition = crate::alerts::Condition::AuditVerification;
    let recorded = if report.intact() {
        alerts.clear(&condition)
    } else {
        alerts.raise(
            &condition,
            "the audit log or a stored seal does not verify: `retorno-gateway audit verify` names the first entry that fails",
        )
    };
    if let Err(error) = recorded {
        tracing::error!(%error, "the audit verification alert could not be recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn only_the_field_of_a_validation_message_is_kept() {
        let status = tonic::Status::invalid_argument(
            "advance_notice.child.birth_date: 2011-02-30 is not a valid date",
        );
        assert_eq!(
            status_reason(&status),
            "InvalidArgument: advance_notice.child.birth_date"
        );
        let status = tonic::Status::invalid_argument("message is 99 bytes, over the limit");
        assert_eq!(status_reason(&status), "InvalidArgument");
        let rejection = Rejection {
            message_id: String::new(),
            code: retorno_proto::v1::RejectionCode::Invalid as i32,
            reason: "advance_notice.child.estimated_age_years: 17 is not the age of a child".into(),
        };
        assert_eq!(
            rejection_reason(&rejection),
            "Invalid: advance_notice.child.estimated_age_years"
        );
    }

    fn no_case(
        _: &dyn crate::storage::CasesTx,
    ) -> Result<Result<crate::case::Applied, crate::case::Refusal>, crate::storage::TxError> {
        Ok(Ok(crate::case::Applied {
            cases: vec!["MX-1".into()],
            state: retorno_proto::v1::CaseState::Notified,
        }))
    }

    fn outbox_record(id: uuid::Uuid) -> crate::storage::OutboxRecord {
        crate::storage::OutboxRecord {
            envelope: b"envelope".to_vec(),
            body_sha256: vec![0; 32],
            message_id: id.to_string(),
            kind: String::new(),
        }
    }

    /// Submits, deliveries and reads from many tasks at once, as a busy
    /// gateway has them: every append takes its place, none is lost or
    /// linked twice, and a reopened store continues the chain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_leave_one_unbroken_chain_that_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Storage::default();
        let store = Store::open(dir.path(), &settings).unwrap();
        let (mx, gt): (Country, Country) = ("MX".parse().unwrap(), "GT".parse().unwrap());
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    let id = uuid::Uuid::now_v7();
                    let agency = format!("urn:agency:{task}");
                    store
                        .enqueue_by(
                            &agency,
                            "",
                            gt,
                            id,
                            id.as_bytes().to_vec(),
                            outbox_record(id),
                            Box::new(no_case),
                        )
                        .await
                        .unwrap();
                    store
                        .receive(
                            mx,
                            uuid::Uuid::now_v7(),
                            b"e",
                            b"h",
                            |_| Ok(None),
                            |_, _| Vec::new(),
                        )
                        .unwrap();
                    store.audit(&[Record::case_read(&agency, "MX-1")]).unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let chain = verify_chain(&store).unwrap();
        assert_eq!((chain.entries, chain.broken), (600, None));
        let events = entries(&store).unwrap();
        let count = |event: Event| events.iter().filter(|e| e.event == event as i32).count();
        assert_eq!(
            [
                count(Event::SubmitAccepted),
                count(Event::Delivered),
                count(Event::CaseRead)
            ],
            [200, 200, 200]
        );
        drop(store);

        let store = loop {
            match Store::open(dir.path(), &settings) {
                Ok(store) => break store,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        store.audit(&[Record::case_read("urn:x", "MX-1")]).unwrap();
        let chain = verify_chain(&store).unwrap();
        assert_eq!((chain.entries, chain.broken), (601, None));
    }

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        let long = "é".repeat(400);
        let kept = Record::submit_refused("a").detail(&long).detail;
        assert!(kept.len() <= MAX_DETAIL && long.starts_with(&kept));
    }
}
