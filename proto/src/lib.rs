//! The `retorno.v1` wire contract, generated from `proto/retorno/v1/*.proto`.
//!
//! Every message also has serde impls that follow the proto3 JSON mapping
//! (field names in lowerCamelCase or as written, enums by name, timestamps in
//! RFC 3339), which is what `retorno send notice FILE.json` reads.
//!
//! # Layout
//! - [`v1`]: messages, the `PeerExchange` and `Agency` services' clients and servers.
//! - [`rules`]: what each payload's fields must hold, checked by both gateways and the client.
//! - [`refusal`]: the reason codes of every refusal, with their parameters, shared with the client.
//! - [`timeline`]: what a timeline line says of a step its reader may not see.
//! - [`FILE_DESCRIPTOR_SET`]: the compiled descriptors, for reflection.
//! - [`codec`]: the services' codec, which answers undecodable bytes with `INVALID_ARGUMENT`.

// Tests may panic on a broken expectation; library code may not (STYLE.md 6).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod codec;

/// Messages and services of the `retorno.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/retorno.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/retorno.v1.serde.rs"));
}

pub mod refusal;
pub mod rules;
pub mod timeline;

/// The encoded `FileDescriptorSet` of every `retorno.v1` file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/retorno_descriptor.bin"));
