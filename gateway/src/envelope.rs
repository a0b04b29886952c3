//! Sealing envelopes and issuing and checking receipts.
//!
//! An envelope carries its body as bytes so that the hash (and, later, the
//! signature) is over the bytes as sent, never over a re-encoding. The receipt
//! binds the message id to the SHA-256 of exactly those bytes.

use pbjson_types::Timestamp;
use prost::Message as _;
use retorno_proto::v1::{Envelope, EnvelopeBody, Receipt, ReceiptBody, RefusalDetail};
use sha2::{Digest, Sha256};

use crate::country::Country;

/// SHA-256 of an envelope body's bytes.
pub fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// A timestamp from microseconds since the Unix epoch.
pub fn timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
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

/// Issues the receipt for a stored envelope (encoded), with the case rules'
/// refusal if they refused it, in words and as data.
pub fn issue_receipt(
    message_id: &str,
    receiving: Country,
    received_at_micros: i64,
    body_sha256: &[u8],
    case_refusal: &str,
    case_refusal_detail: Option<RefusalDetail>,
) -> Vec<u8> {
    let body = ReceiptBody {
        message_id: message_id.to_owned(),
        receiving_country: receiving.to_string(),
        received_at: Some(timestamp(received_at_micros)),
        body_sha256: body_sha256.to_vec(),
        case_refusal: case_refusal.to_owned(),
        case_refusal_detail,
    };
    Receipt {
        body: body.encode_to_vec(),
        seal: None,
    }
    .encode_to_vec()
}

/// Checks that a receipt is for this message, from this peer, over these bytes.
pub fn check_receipt(
    receipt: &Receipt,
    message_id: &str,
    peer: Country,
    body_sha256: &[u8],
) -> Result<ReceiptBody, String> {
    let body = ReceiptBody::decode(receipt.body.as_slice())
        .map_err(|e| format!("receipt body does not decode: {e}"))?;
    if body.message_id != message_id {
        return Err(format!(
            "receipt is for message {}, expected {message_id}",
            body.message_id
        ));
    }
    if body.receiving_country != peer.as_str() {
        return Err(format!(
            "receipt names {} as receiver, expected {peer}",
            body.receiving_country
        ));
    }
    if body.body_sha256 != body_sha256 {
        return Err("receipt's body hash does not match the envelope sent".to_owned());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_checks_only_against_its_own_envelope() {
        let gt: Country = "GT".parse().unwrap();
        let hash = digest(b"body");
        let receipt = Receipt::decode(
            issue_receipt("id-1", gt, 1_700_000_000_123_456, &hash, "", None).as_slice(),
        )
        .unwrap();
        let body = check_receipt(&receipt, "id-1", gt, &hash).unwrap();
        assert_eq!(body.received_at.unwrap().nanos, 123_456_000);
        assert!(check_receipt(&receipt, "id-2", gt, &hash).is_err());
        assert!(check_receipt(&receipt, "id-1", "HN".parse().unwrap(), &hash).is_err());
        assert!(check_receipt(&receipt, "id-1", gt, &digest(b"other")).is_err());
    }
}
