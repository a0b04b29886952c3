//! Receipts: what a receiving gateway gives for every envelope it stored.
//!
//! A receipt binds the message id and the receiving country to the SHA-256 of
//! the envelope body exactly as sent, with the receiver's case rules' refusal
//! if they refused the step. The receiver issues it inside the transaction
//! that stores the envelope, seals the batch's receipts with one signature
//! once that transaction committed, and gives the same receipt to every
//! duplicate. The sender checks it against what it sent and verifies the seal
//! against the peer's certificate before an entry may leave its outbox; the
//! audit and evidence commands verify kept receipts again, offline.
//!
//! Everything a receipt is checked for is here, so that the courier, the
//! audit and the evidence export cannot disagree on what a good receipt is.

use prost::Message as _;
use retorno_proto::v1::{Receipt, ReceiptBody, RefusalDetail};
use rustls_pki_types::{CertificateDer, UnixTime};
use uuid::Uuid;

use crate::{
    country::Country,
    seal::{self, SealError, Sealer, Verifier},
};

/// Why a receipt is not the one expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The receipt or its body does not decode.
    #[error("receipt {what} does not decode: {reason}")]
    Decode {
        /// "body", or "" for the receipt itself.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// The receipt names another message.
    #[error("receipt is for message {found}, expected {expected}")]
    WrongMessage {
        /// The message id the receipt names.
        found: String,
        /// The message id sent.
        expected: String,
    },
    /// The receipt names another receiver.
    #[error("receipt names {found} as receiver, expected {expected}")]
    WrongReceiver {
        /// The receiving country the receipt names.
        found: String,
        /// The peer the message was sent to.
        expected: Country,
    },
    /// The receipt is over other bytes than the envelope sent.
    #[error("receipt's body hash does not match the envelope sent")]
    WrongBytes,
    /// The receipt is sealed by a certificate that was not sent with it.
    #[error("a receipt is sealed by a certificate the peer did not send")]
    UnknownSigner,
    /// The seal does not verify, or its signer is not the peer's gateway.
    #[error("receipt seal: {0}")]
    Seal(#[from] SealError),
}

/// Issues the receipt (encoded, not sealed yet) for a stored envelope, with
/// the case rules' refusal if they refused it, in words and as data.
pub fn issue(
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
        received_at: Some(crate::clock::wire_micros(received_at_micros)),
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

/// Decodes a kept receipt.
pub fn decode(encoded: &[u8]) -> Result<Receipt, ReceiptError> {
    Receipt::decode(encoded).map_err(|e| ReceiptError::Decode {
        what: "",
        reason: e.to_string(),
    })
}

/// Whether a kept receipt is still waiting for its seal (a crash interrupted
/// its batch); one that does not decode is not "waiting".
pub fn is_unsealed(encoded: &[u8]) -> bool {
    Receipt::decode(encoded).is_ok_and(|receipt| receipt.seal.is_none())
}

/// When the receiver says it stored the message, in microseconds since the
/// epoch (0 if the body does not say): when its certificate must have been valid.
pub fn received_at_micros(receipt: &Receipt) -> i64 {
    ReceiptBody::decode(receipt.body.as_slice())
        .map(|body| crate::clock::micros_of(body.received_at.as_ref()))
        .unwrap_or(0)
}

/// Checks that a receipt is for this message, from this peer, over these bytes.
pub fn check(
    receipt: &Receipt,
    message_id: &str,
    peer: Country,
    body_sha256: &[u8],
) -> Result<ReceiptBody, ReceiptError> {
    let body = ReceiptBody::decode(receipt.body.as_slice()).map_err(|e| ReceiptError::Decode {
        what: "body",
        reason: e.to_string(),
    })?;
    if body.message_id != message_id {
        return Err(ReceiptError::WrongMessage {
            found: body.message_id,
            expected: message_id.to_owned(),
        });
    }
    if body.receiving_country != peer.as_str() {
        return Err(ReceiptError::WrongReceiver {
            found: body.receiving_country,
            expected: peer,
        });
    }
    if body.body_sha256 != body_sha256 {
        return Err(ReceiptError::WrongBytes);
    }
    Ok(body)
}

/// Seals, with one signature, every receipt of `receipts` that has no seal
/// yet (new ones, and any whose sealing a crash interrupted). A message that
/// appears twice gets one receipt, sealed once, and both places get it.
/// Returns the receipts newly sealed (message id, encoded), for keeping.
pub fn seal_batch(
    sealer: &Sealer,
    receipts: &mut [(Uuid, Receipt)],
) -> Result<Vec<(Uuid, Vec<u8>)>, ReceiptError> {
    let mut unsealed: Vec<usize> = Vec::new();
    for (i, (id, receipt)) in receipts.iter().enumerate() {
        if receipt.seal.is_none() && !unsealed.iter().any(|j| receipts[*j].0 == *id) {
            unsealed.push(i);
        }
    }
    let bodies: Vec<&[u8]> = unsealed
        .iter()
        .map(|i| receipts[*i].1.body.as_slice())
        .collect();
    let seals = sealer.seal(seal::RECEIPTS, &bodies)?;
    let mut sealed = Vec::with_capacity(unsealed.len());
    for (i, seal) in unsealed.into_iter().zip(seals) {
        receipts[i].1.seal = Some(seal);
        sealed.push((receipts[i].0, receipts[i].1.encode_to_vec()));
    }
    for (id, receipt) in receipts.iter_mut().filter(|(_, r)| r.seal.is_none()) {
        if let Some((_, encoded)) = sealed.iter().find(|(sealed_id, _)| sealed_id == id) {
            *receipt = decode(encoded)?;
        }
    }
    Ok(sealed)
}

/// Verifies receipts' seals against the certificates the peer sent with
/// them: each must be the peer's gateway's, under the regional root.
pub struct PeerReceipts {
    verifiers: Vec<(Vec<u8>, Verifier)>,
}

impl PeerReceipts {
    /// Checks each certificate the peer sent (DER) and makes its verifier.
    pub fn new(
        peer: Country,
        certificates: &[Vec<u8>],
        roots: &[CertificateDer<'_>],
    ) -> Result<Self, ReceiptError> {
        let mut verifiers = Vec::new();
        for der in certificates {
            let (_, verifier) = seal::gateway_verifier(
                seal::RECEIPTS,
                der,
                roots,
                UnixTime::now(),
                Some(peer.as_str()),
            )?;
            verifiers.push((seal::certificate_id(der), verifier));
        }
        Ok(PeerReceipts { verifiers })
    }

    /// A receipt whose seal does not verify is refused: the entry stays in the outbox.
    pub fn verify(&mut self, receipt: &Receipt) -> Result<(), ReceiptError> {
        let named = receipt
            .seal
            .as_ref()
            .map(|s| s.certificate_sha256.as_slice())
            .unwrap_or_default();
        let (_, verifier) = self
            .verifiers
            .iter_mut()
            .find(|(id, _)| id.as_slice() == named)
            .ok_or(ReceiptError::UnknownSigner)?;
        Ok(verifier.verify(&receipt.body, receipt.seal.as_ref())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{envelope, tls};

    #[test]
    fn a_receipt_checks_only_against_its_own_envelope() {
        let gt: Country = "GT".parse().unwrap();
        let hash = envelope::digest(b"body");
        let receipt = decode(&issue("id-1", gt, 1_700_000_000_123_456, &hash, "", None)).unwrap();
        let body = check(&receipt, "id-1", gt, &hash).unwrap();
        assert_eq!(body.received_at.unwrap().nanos, 123_456_000);
        assert_eq!(received_at_micros(&receipt), 1_700_000_000_123_456);
        assert!(check(&receipt, "id-2", gt, &hash).is_err());
        assert!(check(&receipt, "id-1", "HN".parse().unwrap(), &hash).is_err());
        assert!(check(&receipt, "id-1", gt, &envelope::digest(b"other")).is_err());
    }

    fn pki() -> (tempfile::TempDir, retorno_certs_dev::Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = retorno_certs_dev::generate(&retorno_certs_dev::Options {
            out: dir.path().to_owned(),
            countries: vec!["GT".into(), "HN".into()],
            force: false,
        })
        .unwrap();
        (dir, layout)
    }

    fn sealer(layout: &retorno_certs_dev::Layout, cc: &str) -> Sealer {
        let own = tls::KeyedChain::load(&layout.gateway_cert(cc), &layout.gateway_key(cc)).unwrap();
        Sealer {
            certificate: own.chain[0].clone(),
            key: rustls::crypto::ring::sign::any_ecdsa_type(&own.key).unwrap(),
        }
    }

    #[test]
    fn a_batch_seals_each_message_once_and_leaves_sealed_receipts_alone() {
        let (_dir, layout) = pki();
        let gt = sealer(&layout, "GT");
        let gt_country: Country = "GT".parse().unwrap();
        let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
        let issued =
            |id: Uuid| decode(&issue(&id.to_string(), gt_country, 1, b"h", "", None)).unwrap();
        let mut receipts = vec![(one, issued(one)), (two, issued(two)), (one, issued(one))];
        let sealed = seal_batch(&gt, &mut receipts).unwrap();
        assert_eq!(sealed.len(), 2, "one seal per message");
        assert!(receipts.iter().all(|(_, r)| r.seal.is_some()));
        assert_eq!(
            receipts[0].1, receipts[2].1,
            "a duplicate gets the same receipt"
        );
        assert!(seal_batch(&gt, &mut receipts).unwrap().is_empty());
    }

    #[test]
    fn the_courier_accepts_only_receipts_sealed_by_its_peer_over_the_bytes_sent() {
        let (_dir, layout) = pki();
        let roots = tls::load_certificates(&layout.root_ca()).unwrap();
        let gt = sealer(&layout, "GT");
        let bodies: [&[u8]; 2] = [b"receipt one", b"receipt two"];
        let seals = gt.seal(seal::RECEIPTS, &bodies).unwrap();
        let receipt = |body: &[u8], seal: &retorno_proto::v1::Seal| Receipt {
            body: body.to_vec(),
            seal: Some(seal.clone()),
        };
        let certificates = vec![gt.certificate.to_vec()];
        let gt_country: Country = "GT".parse().unwrap();
        let mut check = PeerReceipts::new(gt_country, &certificates, &roots).unwrap();
        check.verify(&receipt(bodies[0], &seals[0])).unwrap();
        check.verify(&receipt(bodies[1], &seals[1])).unwrap();
        assert!(
            check.verify(&receipt(b"receipt 0ne", &seals[0])).is_err(),
            "altered body"
        );
        assert!(
            check
                .verify(&Receipt {
                    body: bodies[0].to_vec(),
                    seal: None
                })
                .is_err(),
            "no seal"
        );

        // Receipts sealed by Honduras do not pass for Guatemala's.
        let hn = sealer(&layout, "HN");
        let hn_certificates = vec![hn.certificate.to_vec()];
        assert!(PeerReceipts::new(gt_country, &hn_certificates, &roots).is_err());
        // A seal made for envelopes is not a receipt seal.
        let envelope_seals = gt.seal(seal::ENVELOPES, &bodies).unwrap();
        assert!(
            check
                .verify(&receipt(bodies[0], &envelope_seals[0]))
                .is_err()
        );
    }
}
