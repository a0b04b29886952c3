//! Seals: the gateways' signatures over what they send and what they receive.
//!
//! A courier seals each delivery batch with one ECDSA signature over the
//! Merkle root of the batch's envelope bodies; the receiving gateway seals its
//! receipts the same way. Each envelope and receipt carries its own proof, so
//! that it can be shown to a third party alone, offline, with the signer's
//! certificate and the regional root. Signing a batch instead of every message
//! keeps signatures off the per-message cost of a busy gateway.
//!
//! The signature covers a domain string and the root, so that a seal over
//! envelopes can never be passed off as a seal over receipts.

use std::{collections::HashMap, sync::Arc};

use retorno_proto::v1::Seal;
use rustls::{SignatureScheme, sign::SigningKey};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};

use crate::{country::Country, identity::Identity};

/// What an envelope seal signs, before the root.
pub const ENVELOPES: &[u8] = b"retorno.v1 envelope batch\0";
/// What a receipt seal signs, before the root.
pub const RECEIPTS: &[u8] = b"retorno.v1 receipt batch\0";

/// Why a seal or a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// There is no seal, or no certificate to check it with.
    #[error("missing: {0}")]
    Missing(&'static str),
    /// The seal names another certificate than the one given.
    #[error("the seal names certificate {named}, but the certificate given is {given}")]
    WrongCertificate {
        /// Hex SHA-256 named by the seal.
        named: String,
        /// Hex SHA-256 of the certificate given.
        given: String,
    },
    /// The proof does not lead from this body to a root.
    #[error("the Merkle proof does not fit leaf {index} of {count}")]
    BadProof {
        /// The leaf index.
        index: u32,
        /// The leaf count.
        count: u32,
    },
    /// The signature does not verify with the certificate's key.
    #[error(
        "the signature does not verify with the signer's key: the body or the seal was altered"
    )]
    BadSignature,
    /// The certificate does not chain to the root, or names no retorno gateway.
    #[error("the signer's certificate {0}")]
    Certificate(String),
    /// The certificate is another gateway's than the one expected.
    #[error("the signer's certificate names {signer}, but {expected}'s gateway was expected")]
    NotThePeer {
        /// Who the certificate names.
        signer: Identity,
        /// The country expected (the peer, or the one a record names).
        expected: String,
    },
    /// This gateway could not sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Lowercase hex, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a certificate: how seals name their signer.
pub fn certificate_id(certificate: &[u8]) -> Vec<u8> {
    Sha256::digest(certificate).to_vec()
}

fn leaf(body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update([0u8]);
    hash.update(body);
    hash.finalize().into()
}

fn node(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update([1u8]);
    hash.update(left);
    hash.update(right);
    hash.finalize().into()
}

/// Every level of the tree, leaves first; an odd last node is carried up.
fn levels(leaves: Vec<[u8; 32]>) -> Vec<Vec<[u8; 32]>> {
    let mut levels = vec![leaves];
    while levels.last().is_some_and(|level| level.len() > 1) {
        let below = levels.last().map(Vec::as_slice).unwrap_or_default();
        let above = below
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node(left, right),
                [single] => *single,
                _ => [0; 32],
            })
            .collect();
        levels.push(above);
    }
    levels
}

/// Follows a proof from a body's leaf to the root it implies.
fn root_from_proof(body: &[u8], index: u32, count: u32, proof: &[Vec<u8>]) -> Option<[u8; 32]> {
    if count == 0 || index >= count {
        return None;
    }
    let (mut hash, mut index, mut width) = (leaf(body), index as usize, count as usize);
    let mut siblings = proof.iter();
    while width > 1 {
        let sibling = index ^ 1;
        if sibling < width {
            let other = siblings.next()?;
            hash = if index % 2 == 0 {
                node(&hash, other)
            } else {
                node(other, &hash)
            };
        }
        index /= 2;
        width = width.div_ceil(2);
    }
    siblings.next().is_none().then_some(hash)
}

fn signed_message(domain: &[u8], root: &[u8; 32]) -> Vec<u8> {
    [domain, root.as_slice()].concat()
}

/// A gateway's means to seal: its certificate and the key that belongs to it.
#[derive(Clone)]
pub struct Sealer {
    /// The signing gateway's certificate (DER).
    pub certificate: CertificateDer<'static>,
    /// Its private key, as rustls holds it.
    pub key: Arc<dyn SigningKey>,
}

impl Sealer {
    /// Seals every body of a batch with one signature; the seals are in the bodies' order.
    pub fn seal(&self, domain: &[u8], bodies: &[&[u8]]) -> Result<Vec<Seal>, SealError> {
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let levels = levels(bodies.iter().map(|body| leaf(body)).collect());
        let root = levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or([0; 32]);
        let signer = self
            .key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .ok_or_else(|| {
                SealError::Signing("the gateway key is not an ECDSA P-256 key".into())
            })?;
        let signature = signer
            .sign(&signed_message(domain, &root))
            .map_err(|e| SealError::Signing(e.to_string()))?;
        let certificate_sha256 = certificate_id(&self.certificate);
        let count = u32::try_from(bodies.len())
            .map_err(|_| SealError::Signing("batch too large".into()))?;
        Ok((0..bodies.len())
            .map(|index| Seal {
                certificate_sha256: certificate_sha256.clone(),
                leaf_index: u32::try_from(index).unwrap_or(u32::MAX),
                leaf_count: count,
                proof: proof(&levels, index),
                signature: signature.clone(),
            })
            .collect())
    }
}

fn proof(levels: &[Vec<[u8; 32]>], mut index: usize) -> Vec<Vec<u8>> {
    let mut proof = Vec::new();
    for level in &levels[..levels.len().saturating_sub(1)] {
        if let Some(sibling) = level.get(index ^ 1) {
            proof.push(sibling.to_vec());
        }
        index /= 2;
    }
    proof
}

/// Checks seals against one signer's certificate, verifying each distinct
/// batch signature once.
pub struct Verifier {
    domain: &'static [u8],
    certificate: CertificateDer<'static>,
    certificate_sha256: Vec<u8>,
    verified: HashMap<([u8; 32], Vec<u8>), bool>,
}

impl Verifier {
    /// A verifier for seals made with `certificate` (DER) under `domain`.
    pub fn new(domain: &'static [u8], certificate: &[u8]) -> Result<Self, SealError> {
        if certificate.is_empty() {
            return Err(SealError::Missing("the signer's certificate"));
        }
        let certificate = CertificateDer::from(certificate.to_vec());
        EndEntityCert::try_from(&certificate)
            .map_err(|e| SealError::Certificate(format!("cannot be read: {e}")))?;
        Ok(Verifier {
            domain,
            certificate_sha256: certificate_id(&certificate),
            certificate,
            verified: HashMap::new(),
        })
    }

    /// Checks that `seal` is a valid seal of `body` by this verifier's signer.
    pub fn verify(&mut self, body: &[u8], seal: Option<&Seal>) -> Result<(), SealError> {
        let seal = seal.ok_or(SealError::Missing("the seal"))?;
        if seal.certificate_sha256 != self.certificate_sha256 {
            return Err(SealError::WrongCertificate {
                named: hex(&seal.certificate_sha256),
                given: hex(&self.certificate_sha256),
            });
        }
        let root = root_from_proof(body, seal.leaf_index, seal.leaf_count, &seal.proof).ok_or(
            SealError::BadProof {
                index: seal.leaf_index,
                count: seal.leaf_count,
            },
        )?;
        let key = (root, seal.signature.clone());
        let valid = match self.verified.get(&key) {
            Some(valid) => *valid,
            None => {
                let valid = EndEntityCert::try_from(&self.certificate).is_ok_and(|certificate| {
                    certificate
                        .verify_signature(
                            webpki::ring::ECDSA_P256_SHA256,
                            &signed_message(self.domain, &root),
                            &seal.signature,
                        )
                        .is_ok()
                });
                self.verified.insert(key, valid);
                valid
            }
        };
        if valid {
            Ok(())
        } else {
            Err(SealError::BadSignature)
        }
    }
}

/// Checks that `certificate` (DER) is a gateway's under `roots` at `time`
/// (`expected`'s, if given), and builds the verifier of its seals under
/// `domain`: the one check every reader of a peer's seals makes (the Peer
/// API, the courier, the audit and the evidence export). Returns the
/// certificate's country with the verifier.
pub fn gateway_verifier(
    domain: &'static [u8],
    certificate: &[u8],
    roots: &[CertificateDer<'_>],
    time: UnixTime,
    expected: Option<&str>,
) -> Result<(Country, Verifier), SealError> {
    if certificate.is_empty() {
        return Err(SealError::Missing("the signer's certificate"));
    }
    let signer = match certified_gateway(&CertificateDer::from(certificate), roots, time)? {
        Identity::Gateway { country } => country,
        other => {
            return Err(SealError::Certificate(format!(
                "names {other}, not a gateway"
            )));
        }
    };
    if let Some(expected) = expected.filter(|expected| *expected != signer.as_str()) {
        return Err(SealError::NotThePeer {
            signer: Identity::Gateway { country: signer },
            expected: expected.to_owned(),
        });
    }
    Ok((signer, Verifier::new(domain, certificate)?))
}

/// Checks that `certificate` chains to one of `roots` at `time` and names a
/// gateway; returns which.
pub fn certified_gateway(
    certificate: &CertificateDer<'_>,
    roots: &[CertificateDer<'_>],
    time: UnixTime,
) -> Result<Identity, SealError> {
    let anchors = roots
        .iter()
        .map(|root| {
            anchor_from_trusted_cert(root)
                .map_err(|e| SealError::Certificate(format!("root cannot be read: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let parsed = EndEntityCert::try_from(certificate)
        .map_err(|e| SealError::Certificate(format!("cannot be read: {e}")))?;
    parsed
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| {
            SealError::Certificate(format!(
                "is not certified by the regional root at that time: {e}"
            ))
        })?;
    match Identity::from_certificate(certificate) {
        Ok(identity @ Identity::Gateway { .. }) => Ok(identity),
        Ok(other) => Err(SealError::Certificate(format!(
            "names {other}, not a gateway"
        ))),
        Err(e) => Err(SealError::Certificate(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_every_size_of_batch_proves_the_same_root() {
        for count in 1..=9usize {
            let bodies: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8; i + 1]).collect();
            let levels = levels(bodies.iter().map(|b| leaf(b)).collect());
            let root = levels.last().unwrap()[0];
            for (index, body) in bodies.iter().enumerate() {
                let proof = proof(&levels, index);
                let found = root_from_proof(body, index as u32, count as u32, &proof);
                assert_eq!(found, Some(root), "leaf {index} of {count}");
                // Another body, or another place, gives another root or none.
                assert_ne!(
                    root_from_proof(b"other", index as u32, count as u32, &proof),
                    Some(root)
                );
            }
        }
    }
}
