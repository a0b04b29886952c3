//! Evidence files: one exchange, provable later and offline with nothing but
//! the regional root certificate.
//!
//! A bundle holds the envelope as it arrived (its body and the sending
//! gateway's seal), the receipt the receiving gateway gave (its body and seal)
//! and both signing certificates. [`verify`] checks each link and reports
//! every check by name, so that a failure says exactly what does not hold.

use std::path::Path;

use prost::Message as _;
use retorno_proto::v1::{EnvelopeBody, EvidenceBundle, ReceiptBody};
use rustls_pki_types::{CertificateDer, UnixTime};
use uuid::Uuid;

use crate::{
    country::Country,
    envelope,
    seal::{self, Verifier},
    store::{Store, StoreError},
};

/// Why evidence could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This gateway has no such message.
    #[error("{0}")]
    NotFound(String),
    /// A stored record could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Builds the bundle of a message this gateway received.
pub fn export(
    store: &Store,
    id: Uuid,
    exported_by: Country,
) -> Result<EvidenceBundle, EvidenceError> {
    let sender = store
        .senders_of(id)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            EvidenceError::NotFound(format!(
                "{exported_by}'s gateway has received no message {id}; export evidence on the receiving gateway"
            ))
        })?;
    let (inbox, seen) = store.received(sender, id)?.ok_or_else(|| {
        EvidenceError::NotFound(format!(
            "message {id} from {sender} is no longer in the inbox"
        ))
    })?;
    let corrupt = |e: prost::DecodeError| EvidenceError::Corrupt(e.to_string());
    let envelope =
        retorno_proto::v1::Envelope::decode(inbox.envelope.as_slice()).map_err(corrupt)?;
    let receipt = retorno_proto::v1::Receipt::decode(seen.receipt.as_slice()).map_err(corrupt)?;
    let certificate = |seal: Option<&retorno_proto::v1::Seal>| -> Result<Vec<u8>, EvidenceError> {
        let id = seal
            .map(|s| s.certificate_sha256.as_slice())
            .unwrap_or_default();
        Ok(store.certificate(id)?.unwrap_or_default())
    };
    Ok(EvidenceBundle {
        sender_certificate: certificate(envelope.seal.as_ref())?,
        receiver_certificate: certificate(receipt.seal.as_ref())?,
        envelope: Some(envelope),
        receipt: Some(receipt),
        exported_by: exported_by.to_string(),
        exported_at: Some(crate::clock::wire_micros(crate::clock::system_micros())),
    })
}

/// One check of a verification and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. "sender's seal over the envelope".
    pub what: String,
    /// `Ok(detail)` or `Err(why not)`.
    pub outcome: Result<String, String>,
}

/// Checks a bundle against the regional root; every check is reported.
pub fn verify(bundle: &EvidenceBundle, roots: &[CertificateDer<'_>]) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |what: &str, outcome: Result<String, String>| {
        checks.push(Check {
            what: what.to_owned(),
            outcome,
        });
    };
    let envelope = bundle.envelope.clone().unwrap_or_default();
    let receipt = bundle.receipt.clone().unwrap_or_default();
    let body = EnvelopeBody::decode(envelope.body.as_slice());
    check(
        "the envelope body decodes",
        body.as_ref()
            .map(|b| format!("message {} of case {}", b.message_id, b.case_id))
            .map_err(|e| e.to_string()),
    );
    let receipt_body = ReceiptBody::decode(receipt.body.as_slice());
    check(
        "the receipt body decodes",
        receipt_body
            .as_ref()
            .map(|r| format!("stored by {}", r.receiving_country))
            .map_err(|e| e.to_string()),
    );
    let (Ok(body), Ok(receipt_body)) = (body, receipt_body) else {
        return checks;
    };
    // Certificates are judged at the time the receiver stored the message.
    let at = receipt_body
        .received_at
        .as_ref()
        .map_or_else(UnixTime::now, |t| {
            crate::clock::unix_time(crate::clock::micros_of(Some(t)))
        });
    let sender = body.sender.clone().unwrap_or_default().country;
    let (certified, sealed) = signer_checks(
        seal::ENVELOPES,
        &bundle.sender_certificate,
        roots,
        at,
        &sender,
        &envelope.body,
        envelope.seal.as_ref(),
    );
    check(
        "the sender's certificate is the sender's, under the regional root",
        certified,
    );
    check("the sender's seal covers the envelope body", sealed);
    let (certified, sealed) = signer_checks(
        seal::RECEIPTS,
        &bundle.receiver_certificate,
        roots,
        at,
        &receipt_body.receiving_country,
        &receipt.body,
        receipt.seal.as_ref(),
    );
    check(
        "the receiver's certificate is the receiver's, under the regional root",
        certified,
    );
    check("the receiver's seal covers the receipt body", sealed);
    let digest = envelope::digest(&envelope.body);
    check(
        "the receipt names this message and its exact bytes",
        if receipt_body.message_id != body.message_id {
            Err(format!(
                "the receipt is for {}, the envelope is {}",
                receipt_body.message_id, body.message_id
            ))
        } else if receipt_body.body_sha256 != digest {
            Err(format!(
                "body SHA-256 {} differs from the receipt's {}",
                seal::hex(&digest),
                seal::hex(&receipt_body.body_sha256)
            ))
        } else {
            Ok(format!("body SHA-256 {}", seal::hex(&digest)))
        },
    );
    check(
        "the receiver is the envelope's recipient",
        if receipt_body.receiving_country == body.recipient_country {
            Ok(body.recipient_country.clone())
        } else {
            Err(format!(
                "addressed to {}, stored by {}",
                body.recipient_country, receipt_body.receiving_country
            ))
        },
    );
    checks
}

/// Whether `certificate` is `expected`'s gateway's under the regional root at
/// `at`, and whether its seal covers `body`: two checks, each reported, so
/// the seal is still checked (against the certificate's key alone) when the
/// certificate is not the right one.
fn signer_checks(
    domain: &'static [u8],
    certificate: &[u8],
    roots: &[CertificateDer<'_>],
    at: UnixTime,
    expected: &str,
    body: &[u8],
    seal: Option<&retorno_proto::v1::Seal>,
) -> (Result<String, String>, Result<String, String>) {
    let (certified, verifier) =
        match seal::gateway_verifier(domain, certificate, roots, at, Some(expected)) {
            Ok((country, verifier)) => (Ok(format!("{country}'s gateway")), Ok(verifier)),
            Err(error) => (
                Err(error.to_string()),
                Verifier::new(domain, certificate).map_err(|e| e.to_string()),
            ),
        };
    let sealed = verifier.and_then(|mut verifier| {
        verifier.verify(body, seal).map_err(|e| e.to_string())?;
        Ok("signature valid".to_owned())
    });
    (certified, sealed)
}

/// Writes a bundle as JSON (proto3 mapping, bytes in base64).
pub fn write(bundle: &EvidenceBundle, file: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(bundle).map_err(std::io::Error::other)?;
    std::fs::write(file, text)
}

/// Reads a bundle written by [`write()`].
pub fn read(file: &Path) -> Result<EvidenceBundle, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not an evidence file: {e}", file.display()))
}
