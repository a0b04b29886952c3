//! How an agency (or a gateway, towards its peers) talks to a retorno gateway.
//!
//! # Layout
//! - [`profile`]: [`Profile`], the connection profile file (gateway address, CA, certificate, key).
//! - [`tls`]: loading PEM material, opening a mutual-TLS gRPC channel, and naming why one failed.
//! - [`client`]: [`Client`], the typed Agency API client.
//! - [`operator`]: [`Operations`], the typed Operator API client (`retorno-gateway ops`).
//! - [`notice`]: reading a notice or summary from JSON and checking it with the gateway's rules
//!   (`retorno_proto::rules`), with errors that name the field as written in the file.
//! - [`console`]: `retorno console`, the web console for an agency's staff (axum, askama).
//! - [`compose`]: building case messages from what a caseworker types (local times, short enum names).
//! - [`words`]: what a person reads about a case (a step's line, a state, dates), one place for
//!   the console and the program.
//! - [`refusal`]: a gateway's refusal as data (reason code, parameters), rendered in the reader's language.
//! - [`error`]: the error type, [`ClientError`].
//! - [`i18n`]: the reader's language (Spanish, English) and the Fluent messages in `locales/`.
//!
//! The `retorno` program (`src/main.rs`) is a thin command line over these.

// Tests may panic on a broken expectation; library code may not (STYLE.md 6).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
pub mod compose;
pub mod console;
pub mod error;
pub mod i18n;
pub mod notice;
pub mod operator;
pub mod profile;
pub mod refusal;
pub mod tls;
pub mod words;

pub use client::Client;
pub use error::ClientError;
pub use operator::Operations;
pub use profile::Profile;
