//! Building envelopes for the outbox, and reading a stored one's header.
//!
//! An envelope carries its body as bytes so that the hash (and, later, the
//! signature) is over the bytes as sent, never over a re-encoding. The receipt
//! ([`crate::receipt`]) binds the message id to the SHA-256 of exactly those bytes.

use prost::Message as _;
use retorno_proto::v1::{Envelope, EnvelopeBody};
use sha2::{Digest, Sha256};

/// SHA-256 of an envelope body's bytes.
pub fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The body of a stored envelope, if both decode: for bookkeeping that
/// reads its header (message id, case, sender, kind).
pub fn body_of(envelope: &[u8]) -> Option<EnvelopeBody> {
    let envelope = Envelope::decode(envelope).ok()?;
    EnvelopeBody::decode(envelope.body.as_slice()).ok()
}

/// The payload kind of `body` as agencies name it (`advance_notice`, ...),
/// or "" if it has none.
pub fn kind(body: &EnvelopeBody) -> &'static str {
    body.payload
        .as_ref()
        .map_or("", |payload| crate::case::Kind::of(payload).name())
}

/// An envelope ready for the outbox.
pub struct Sealed {
    /// The encoded `Envelope`.
    pub envelope: Vec<u8>,
    /// SHA-256 of the body bytes.
    pub body_sha256: Vec<u8>,
}

/// Encodes the body once and wraps it in an envelope.
pub fn seal(body: &EnvelopeBody) -> Sealed {
    let body = body.encode_to_vec();
    let body_sha256 = digest(&body);
    Sealed {
        envelope: Envelope { body, seal: None }.encode_to_vec(),
        body_sha256,
    }
}
