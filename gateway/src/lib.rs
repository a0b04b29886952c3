//! One country's retorno gateway.
//!
//! A gateway accepts messages from its own country's agencies (the Agency
//! API), keeps each in a durable sled outbox until the recipient country's
//! gateway has stored it and returned a receipt, and receives other
//! countries' messages (the Peer API) into an inbox that its agencies
//! subscribe to. Both listeners require mutual TLS; identities come from
//! certificates only. See `shared/DESIGN.md` for the whole picture.
//!
//! # Layout
//! - [`country`]: [`Country`], the two-letter code that names gateways.
//! - [`identity`]: [`Identity`], who a certificate says the other end is.
//! - [`config`]: [`Config`], the gateway's TOML file, checked at start.
//! - [`tls`]: server-side mutual TLS: the acceptor that reads identities once per
//!   connection, and [`tls::Credentials`], which reloads certificates, keys, CAs and
//!   revocation lists without a restart and warns of approaching expiry.
//! - [`storage`]: the storage interface: the error type, the records, the transaction the
//!   case engine and the audit chain run in, and what every engine must guarantee.
//! - [`store`]: [`Store`], the sled engine: every tree of the database and the group commit.
//! - [`at_rest`]: [`at_rest::Vault`], the keys that encrypt envelopes at rest, and rotation.
//! - [`audit`]: the hash-chained audit log of what the gateway did, and its verification.
//! - [`retention`]: purging the personal data of closed cases, keeping what proves them.
//! - [`validate`]: the checks on submitted and delivered messages, with field-naming errors
//!   (the payload rules themselves are `retorno_proto::rules`, shared with the client).
//! - [`clock`]: [`clock::Clock`], the one source of "now" for the case rules (movable in tests),
//!   and every conversion between instants (wire, microseconds, seconds, RFC 3339).
//! - [`case`]: the case state machine and the region's safeguards.
//! - [`need_to_know`]: what an agency may see of a case and of a message, for every read path.
//! - [`policy`]: reception windows per point of entry, in local time.
//! - [`reception`]: keeping each peer's published reception policy.
//! - [`limits`]: message size, submit rate per agency and delivery streams per peer.
//! - [`connections`]: connections per identity, the idle timeout, and why a connection ended.
//! - [`envelope`]: building envelopes for the outbox.
//! - [`receipt`]: issuing, sealing, checking and verifying receipts, with [`receipt::ReceiptError`].
//! - [`seal`]: the gateways' batch signatures (Merkle proofs) over envelopes and receipts.
//! - [`evidence`]: exporting one exchange and verifying it offline with the regional root.
//! - [`statistics`]: disaggregated figures under disclosure control, signed country reports, the regional merge.
//! - [`agency_api`]: the Agency API (submit, subscribe, acknowledge, status).
//! - [`peer_api`]: the Peer API (streaming delivery with receipts).
//! - [`delivery`]: the courier that delivers one peer's outbox.
//! - [`alerts`]: conditions an operator must act on, posted to webhooks and kept until delivered.
//! - [`links`]: what each courier saw of its peer, kept in memory for operators.
//! - [`operator_api`]: the Operator API (`retorno-gateway ops`): where each message stands.
//! - [`gateway`]: [`Gateway`], a running gateway.
//! - [`health`]: `grpc.health.v1` on both listeners, from real checks, and draining.
//! - [`metrics`]: the Prometheus metrics and their plain-HTTP listener.
//! - [`dev`]: the files of a whole local region (PKI, configs, profiles) for `retorno-gateway dev`.
//!
//! The `retorno-gateway` program (`src/main.rs` and `src/main/`) parses
//! arguments and calls this library; clap and anyhow are its dependencies only.

// Tests may panic on a broken expectation; library code may not (STYLE.md 6).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
// The library's readers are its maintainers: its documentation names the
// private item that does the work (`cargo doc --document-private-items`
// renders those links).
#![allow(rustdoc::private_intra_doc_links)]

pub mod agency_api;
pub mod alerts;
pub mod at_rest;
pub mod audit;
pub mod case;
pub mod clock;
pub mod config;
pub mod connections;
pub mod country;
pub mod delivery;
pub mod dev;
pub mod envelope;
pub mod evidence;
pub mod gateway;
pub mod health;
pub mod identity;
pub mod kv;
pub mod lease;
pub mod limits;
pub mod links;
pub mod metrics;
pub mod need_to_know;
pub mod operator_api;
pub mod peer_api;
pub mod policy;
pub mod receipt;
pub mod reception;
pub mod retention;
pub mod seal;
pub mod statistics;
pub mod storage;
pub mod store;
pub mod tls;
pub mod validate;

pub use config::Config;
pub use country::Country;
pub use gateway::Gateway;
pub use identity::Identity;
pub use store::Store;

/// The allocator the gateway's programs use. sled copies tree nodes on
/// every update, and with glibc's allocator a quarter of a gateway's CPU
/// under load went to malloc and free (measured with `perf` on
/// `retorno-bench`); declare it in a program with
/// `#[global_allocator] static ALLOCATOR: retorno_gateway::Allocator = retorno_gateway::Allocator;`.
pub use mimalloc::MiMalloc as Allocator;
