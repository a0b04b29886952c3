//! The Peer API: other countries' gateways deliver envelopes here.
//!
//! The peer's country comes from its certificate. An envelope is stored only
//! if its stated sender is that country, it is addressed to this gateway, it
//! fits the size limit and it validates; otherwise it gets a [`Rejection`]
//! that names the rule and nothing is stored. A batch is answered only after
//! every envelope in it is durable.

use std::{collections::BTreeMap, sync::Arc};

use prost::Message as _;
use retorno_proto::v1::{
    DeliveryBatch, DeliveryResult, DeliveryResults, Envelope, EnvelopeBody, Receipt, Rejection,
    RejectionCode, delivery_result, peer_exchange_server::PeerExchange,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::{
    audit,
    case::{self, Rules},
    country::Country,
    envelope,
    identity::{Identity, Role},
    limits::StreamSlots,
    metrics::{self, Metrics, Outcome as Counted},
    receipt,
    reception::ArrivalRefresh,
    seal::{self, SealError, Verifier},
    store::{Arrival, Finding, FindingKind, MAX_LISTED_IDS, Received, Store},
    tls::Credentials,
    tls::caller,
    validate,
};

/// Envelopes per delivery batch may add up to this many bytes on top of one
/// maximal message; the sender keeps its batches under it.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The Peer API of one gateway.
#[derive(Clone)]
pub struct PeerService {
    /// This gateway's country: envelopes must be addressed to it.
    pub country: Country,
    /// Where received envelopes go.
    pub store: Arc<Store>,
    /// Largest accepted envelope body.
    pub max_message_bytes: usize,
    /// Ends open streams when the gateway shuts down, so that shutdown does not wait on them.
    pub shutdown: watch::Receiver<bool>,
    /// The case rules, run again on every delivered message.
    pub rules: Arc<Rules>,
    /// Open delivery streams per peer.
    pub streams: StreamSlots,
    /// This gateway's TLS material: seals receipts, and holds the regional
    /// root that peers' seals must chain to.
    pub tls: Credentials,
    /// Counts what became of each arriving message.
    pub metrics: Metrics,
    /// Fetches a configured peer's policy when one of its deliveries claims a
    /// delegation that the policy known here does not list (yet).
    pub policy_refresh: Arc<BTreeMap<Country, ArrivalRefresh>>,
}

/// An envelope that passed its checks, ready to be stored.
struct Checked {
    id: Uuid,
    body: EnvelopeBody,
    /// The sender's role as the body states it (from an authenticated gateway).
    role: Role,
    /// The `Envelope` as received, re-encoded for the inbox.
    encoded: Vec<u8>,
    body_sha256: Vec<u8>,
    /// Its place in the sender's outbox for this gateway (0 if not given).
    sequence: u64,
}

/// The outcome for one envelope before the batch is committed.
enum Outcome {
    Stored {
        cursor: u64,
        id: Uuid,
        receipt: Vec<u8>,
        /// Whether the case rules refused it (it is stored, as evidence).
        refused: bool,
    },
    Duplicate {
        id: Uuid,
        receipt: Vec<u8>,
    },
    Rejected(Rejection),
}

fn rejection(message_id: &str, code: RejectionCode, reason: impl Into<String>) -> Rejection {
    Rejection {
        message_id: message_id.to_owned(),
        code: code as i32,
        reason: reason.into(),
    }
}

impl PeerService {
    /// Checks one envelope: what it is, who sent it, to whom.
    fn check_one(&self, peer: Country, envelope: &Envelope) -> Result<Checked, Rejection> {
        if envelope.body.len() > self.max_message_bytes {
            return Err(rejection(
                "",
                RejectionCode::TooLarge,
                format!(
                    "envelope body is {} bytes, over this gateway's limit of {} bytes",
                    envelope.body.len(),
                    self.max_message_bytes
                ),
            ));
        }
        let body = match EnvelopeBody::decode(envelope.body.as_slice()) {
            Ok(body) => body,
            Err(error) => {
                let reason =
                    format!("envelope body does not decode as retorno.v1.EnvelopeBody: {error}");
                return Err(rejection("", RejectionCode::Malformed, reason));
            }
        };
        let routing = match validate::envelope_body(&body) {
            Ok(routing) => routing,
            Err(invalid) => {
                let code = if invalid.field == "payload" {
                    RejectionCode::Malformed
                } else {
                    RejectionCode::Invalid
                };
                return Err(rejection(&body.message_id, code, invalid.to_string()));
            }
        };
        if routing.sender != peer {
            let reason = format!(
                "sender.country is {} but the delivering gateway's certificate is {peer}'s",
                routing.sender
            );
            return Err(rejection(
                &body.message_id,
                RejectionCode::ForgedSender,
                reason,
            ));
        }
        if routing.recipient != self.country {
            let reason = format!(
                "recipient_country is {} but this is {}'s gateway",
                routing.recipient, self.country
            );
            return Err(rejection(
                &body.message_id,
                RejectionCode::WrongRecipient,
                reason,
            ));
        }
        let Some(role) = body
            .sender
            .as_ref()
            .and_then(|s| Role::from_proto(s.role()))
            .filter(|_| body.payload.is_some())
        else {
            let reason = "payload and sender.role are required";
            return Err(rejection(&body.message_id, RejectionCode::Invalid, reason));
        };
        Ok(Checked {
            id: routing.id,
            body_sha256: envelope::digest(&envelope.body),
            encoded: envelope.encode_to_vec(),
            body,
            role,
            sequence: 0,
        })
    }

    /// Fetches `peer`'s policy now if an envelope claims a delegation that
    /// the policy known here does not list: the peer may have added it since
    /// the last periodic fetch. The case rules decide afterwards, as always.
    async fn refresh_policy_for(&self, peer: Country, checked: &[Result<Checked, Rejection>]) {
        let unlisted = checked.iter().flatten().any(|checked| {
            case::delegated_consulate(&checked.body)
                .ok()
                .flatten()
                .is_some_and(|consulate| self.rules.lists_delegation(peer, consulate) != Some(true))
        });
        if !unlisted {
            return;
        }
        if let Some(refresh) = self.policy_refresh.get(&peer) {
            refresh.refresh().await;
        }
    }

    /// Stores every envelope that passed its checks in one transaction, each
    /// run through the case rules (a refusal is stored as refused and named
    /// in its receipt), and returns one outcome per envelope of the batch.
    fn store_checked(
        &self,
        peer: Country,
        checked: Vec<Result<Checked, Rejection>>,
    ) -> Result<Vec<Outcome>, Status> {
        let ready: Vec<&Checked> = checked.iter().filter_map(|c| c.as_ref().ok()).collect();
        let arrivals: Vec<Arrival<'_>> = ready
            .iter()
            .map(|c| Arrival {
                sender: peer,
                id: c.id,
                case_id: &c.body.case_id,
                kind: crate::envelope::kind(&c.body),
                envelope: &c.encoded,
                body_sha256: &c.body_sha256,
                sequence: c.sequence,
                official: c
                    .body
                    .sender
                    .as_ref()
                    .map_or("", |sender| sender.official.as_str()),
            })
            .collect();
        let now = self.rules.now();
        // Set at each run of the transaction; the last run is the one stored.
        let refused: Vec<std::sync::atomic::AtomicBool> =
            ready.iter().map(|_| Default::default()).collect();
        // The refusal as data, for the receipt; set at each run like `refused`.
        let details: Vec<std::sync::Mutex<Option<retorno_proto::v1::RefusalDetail>>> =
            ready.iter().map(|_| Default::default()).collect();
        let set_detail = |index: usize, detail: Option<retorno_proto::v1::RefusalDetail>| {
            if let Ok(mut slot) = details[index].lock() {
                *slot = detail;
            }
        };
        let case_step = |index: usize, cases: &dyn crate::storage::CasesTx| {
            let checked = ready[index];
            let Some(payload) = checked.body.payload.as_ref() else {
                refused[index].store(true, std::sync::atomic::Ordering::Relaxed);
                let reason = retorno_proto::refusal::Reason::new(
                    retorno_proto::refusal::Code::FieldRequired,
                )
                .with("field", "payload");
                set_detail(index, Some(reason.detail("payload is required")));
                return Ok(Some("payload is required".to_owned()));
            };
            refused[index].store(false, std::sync::atomic::Ordering::Relaxed);
            set_detail(index, None);
            let step = case::Step {
                body: &checked.body,
                payload,
                sender: peer,
                role: checked.role,
                recipient: self.country,
                now,
            };
            match self.rules.apply(cases, &step)? {
                Ok(_) => Ok(None),
                Err(refusal) => {
                    self.rules.record_refused(cases, &step, &refusal)?;
                    refused[index].store(true, std::sync::atomic::Ordering::Relaxed);
                    set_detail(index, Some(refusal.detail()));
                    Ok(Some(refusal.message))
                }
            }
        };
        let receipt_for = |index: usize, at: i64, refused: &str| {
            let checked = ready[index];
            receipt::issue(
                &checked.body.message_id,
                self.country,
                at,
                &checked.body_sha256,
                refused,
                details[index].lock().ok().and_then(|detail| detail.clone()),
            )
        };
        // The new receipts are sealed inside the batch's transaction, with
        // one signature, so that each is written once and in its final form.
        let sealer = self.tls.sealer();
        self.store
            .save_certificate(&sealer.certificate)
            .map_err(unavailable)?;
        let seal = |receipts: &mut [(Uuid, Vec<u8>)]| {
            let mut decoded = receipts
                .iter()
                .map(|(id, bytes)| Ok((*id, receipt::decode(bytes)?)))
                .collect::<Result<Vec<_>, receipt::ReceiptError>>()
                .map_err(|e| e.to_string())?;
            receipt::seal_batch(&sealer, &mut decoded).map_err(|e| e.to_string())?;
            for ((_, bytes), (_, sealed)) in receipts.iter_mut().zip(decoded) {
                *bytes = sealed.encode_to_vec();
            }
            Ok(())
        };
        let mut stored = self
            .store
            .receive_all(&arrivals, case_step, receipt_for, seal)
            .map_err(unavailable)?
            .into_iter();
        let mut refused = refused.iter();
        checked
            .iter()
            .map(|checked| {
                let checked = match checked {
                    Ok(checked) => checked,
                    Err(rejection) => return Ok(Outcome::Rejected(rejection.clone())),
                };
                let was_refused = refused
                    .next()
                    .is_some_and(|r| r.load(std::sync::atomic::Ordering::Relaxed));
                Ok(match stored.next() {
                    Some(Received::Stored { cursor, receipt }) => Outcome::Stored {
                        cursor,
                        id: checked.id,
                        receipt,
                        refused: was_refused,
                    },
                    Some(Received::Duplicate { receipt }) => Outcome::Duplicate {
                        id: checked.id,
                        receipt,
                    },
                    Some(Received::Conflict) => Outcome::Rejected(rejection(
                        &checked.body.message_id,
                        RejectionCode::Invalid,
                        "message_id was stored before with a different body: refused as a forgery",
                    )),
                    None => {
                        return Err(Status::internal(
                            "the store answered fewer arrivals than it was given",
                        ));
                    }
                })
            })
            .collect()
    }

    /// Checks that the batch was sealed by the delivering gateway, under the
    /// regional root; the verifier then checks each envelope's seal.
    fn check_signer(
        &self,
        peer: Country,
        certificate: &CertificateDer<'_>,
    ) -> Result<Verifier, (RejectionCode, String)> {
        if certificate.is_empty() {
            return Err((
                RejectionCode::Invalid,
                "the batch carries no seal certificate: envelopes must be sealed".into(),
            ));
        }
        let roots = self.tls.regional_roots();
        match seal::gateway_verifier(
            seal::ENVELOPES,
            certificate.as_ref(),
            &roots,
            UnixTime::now(),
            Some(peer.as_str()),
        ) {
            Ok((_, verifier)) => Ok(verifier),
            Err(SealError::NotThePeer { signer, .. }) => Err((
                RejectionCode::ForgedSender,
                format!("the batch is sealed by {signer}, but the delivering gateway is {peer}'s"),
            )),
            Err(error) => Err((RejectionCode::Invalid, format!("seal: {error}"))),
        }
    }

    /// Answers one batch of a delivery stream: envelopes, or the sender's
    /// position (the stream's first batch), or what the sender found this
    /// gateway's inbox lost.
    async fn answer(&self, peer: Country, batch: DeliveryBatch) -> Result<DeliveryResults, Status> {
        if !batch.envelopes.is_empty() {
            return self.receive_batch(peer, batch).await;
        }
        let mut answer = DeliveryResults::default();
        if let Some(theirs) = &batch.position {
            let ours = self
                .store
                .receiver_position(peer, theirs)
                .map_err(unavailable)?;
            if ours.stored_upto < theirs.receipted_upto {
                tracing::error!(%peer, stored_upto = ours.stored_upto, receipted_upto = theirs.receipted_upto, "this gateway's inbox went back in time: the peer holds receipts for messages it no longer has; the peer sends their ids next");
            }
            answer.position = Some(ours);
        }
        if let Some(lost) = batch.receipted_but_lost {
            let count = lost.count.max(lost.message_ids.len() as u64);
            let finding = Finding::new(
                peer,
                FindingKind::InboxWentBack,
                lost.stored_upto,
                lost.receipted_upto,
                count,
                lost.message_ids.into_iter().take(MAX_LISTED_IDS).collect(),
            );
            self.store.record_finding(finding).map_err(unavailable)?;
        }
        Ok(answer)
    }

    /// Stores a batch, seals its receipts with one signature, commits once,
    /// and returns one result per envelope.
    async fn receive_batch(
        &self,
        peer: Country,
        batch: DeliveryBatch,
    ) -> Result<DeliveryResults, Status> {
        let kinds: Vec<&'static str> = batch
            .envelopes
            .iter()
            .map(|envelope| metrics::body_kind(&envelope.body))
            .collect();
        let certificate = CertificateDer::from(batch.signer_certificate);
        let outcomes = match self.check_signer(peer, &certificate) {
            Ok(mut verifier) => {
                self.store
                    .save_certificate(&certificate)
                    .map_err(unavailable)?;
                let checked: Vec<_> = batch
                    .envelopes
                    .iter()
                    .enumerate()
                    .map(|(index, envelope)| {
                        match verifier.verify(&envelope.body, envelope.seal.as_ref()) {
                            Ok(()) => self.check_one(peer, envelope).map(|checked| Checked {
                                sequence: batch.sequences.get(index).copied().unwrap_or(0),
                                ..checked
                            }),
                            Err(error) => Err(rejection(
                                &message_id_of(envelope),
                                RejectionCode::Invalid,
                                format!("seal: {error}"),
                            )),
                        }
                    })
                    .collect();
                self.refresh_policy_for(peer, &checked).await;
                // A blocking sled transaction (it may wait for the writer's
                // audit lock): off the async workers.
                let service = self.clone();
                tokio::task::spawn_blocking(move || service.store_checked(peer, checked))
                    .await
                    .map_err(|e| Status::internal(format!("storing a batch failed: {e}")))??
            }
            Err((code, reason)) => batch
                .envelopes
                .iter()
                .map(|envelope| {
                    Outcome::Rejected(rejection(&message_id_of(envelope), code, reason.clone()))
                })
                .collect(),
        };
        let (receipts, signer_certificates) = self.seal_receipts(peer, &outcomes)?;
        let rejected: Vec<audit::Record> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Rejected(rejection) => {
                    Some(audit::Record::envelope_rejected(peer, rejection))
                }
                _ => None,
            })
            .collect();
        if !rejected.is_empty() {
            self.store.audit(&rejected).map_err(unavailable)?;
        }
        let highest_cursor = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Stored { cursor, .. } => Some(*cursor),
                _ => None,
            })
            .max();
        // A duplicate may answer for an envelope whose first copy is not yet
        // flushed (sent twice in quick succession), so it waits for the flush too.
        if outcomes.iter().any(|o| !matches!(o, Outcome::Rejected(_))) {
            self.store.commit().await.map_err(unavailable)?;
        }
        if let Some(cursor) = highest_cursor {
            self.store.publish_inbox(cursor);
        }
        self.count(peer, &kinds, &outcomes);
        let results = outcomes
            .into_iter()
            .zip(receipts)
            .map(|(outcome, receipt)| to_result(peer, outcome, receipt))
            .collect::<Result<_, _>>()?;
        Ok(DeliveryResults {
            results,
            signer_certificates,
            position: None,
        })
    }

    /// Counts a stored batch: each envelope received, refused on arrival,
    /// rejected or a duplicate, by kind.
    fn count(&self, peer: Country, kinds: &[&'static str], outcomes: &[Outcome]) {
        for (kind, outcome) in kinds.iter().zip(outcomes) {
            let counted = match outcome {
                Outcome::Stored { refused: false, .. } => Counted::Received,
                Outcome::Stored { refused: true, .. } => Counted::RefusedOnArrival,
                Outcome::Duplicate { .. } => Counted::Duplicate,
                Outcome::Rejected(_) => Counted::RejectedOnArrival,
            };
            self.metrics.message(Some(peer), kind, counted);
        }
    }

    /// Seals, with one signature, every receipt of the batch not sealed yet
    /// (any whose sealing a crash interrupted: new ones are sealed inside
    /// the batch's transaction), keeps the sealed form, and returns each
    /// outcome's receipt as answered (by index, none for a rejection) and
    /// the certificates that sealed them. Each receipt is decoded once.
    fn seal_receipts(&self, peer: Country, outcomes: &[Outcome]) -> Result<Answered, Status> {
        let mut indices = Vec::new();
        let mut receipts: Vec<(Uuid, Receipt)> = Vec::new();
        for (index, outcome) in outcomes.iter().enumerate() {
            if let Outcome::Stored { id, receipt, .. } | Outcome::Duplicate { id, receipt } =
                outcome
            {
                let receipt = receipt::decode(receipt)
                    .map_err(|e| Status::internal(format!("stored receipt is corrupt: {e}")))?;
                indices.push(index);
                receipts.push((*id, receipt));
            }
        }
        let sealer = self.tls.sealer();
        let kept: Vec<(Country, Uuid, Vec<u8>)> = receipt::seal_batch(&sealer, &mut receipts)
            .map_err(|e| Status::internal(e.to_string()))?
            .into_iter()
            .map(|(id, sealed)| (peer, id, sealed))
            .collect();
        if !kept.is_empty() {
            self.store
                .save_certificate(&sealer.certificate)
                .map_err(unavailable)?;
            self.store.seal_receipts(&kept).map_err(unavailable)?;
        }
        // Each certificate named by the batch's seals, looked up once.
        let mut named: Vec<Vec<u8>> = Vec::new();
        let mut certificates: Vec<Vec<u8>> = Vec::new();
        let mut answered: Vec<Option<Receipt>> = vec![None; outcomes.len()];
        for (index, (_, receipt)) in indices.into_iter().zip(receipts) {
            let id = receipt
                .seal
                .as_ref()
                .map(|s| s.certificate_sha256.clone())
                .unwrap_or_default();
            if !named.contains(&id) {
                if let Some(certificate) = self.store.certificate(&id).map_err(unavailable)? {
                    certificates.push(certificate);
                }
                named.push(id);
            }
            answered[index] = Some(receipt);
        }
        Ok((answered, certificates))
    }
}

/// Each outcome's receipt as answered (by index; none for a rejection),
/// and the certificates that sealed them.
type Answered = (Vec<Option<Receipt>>, Vec<Vec<u8>>);

fn unavailable(error: crate::store::StoreError) -> Status {
    Status::unavailable(error.to_string())
}

fn message_id_of(envelope: &Envelope) -> String {
    EnvelopeBody::decode(envelope.body.as_slice())
        .map(|b| b.message_id)
        .unwrap_or_default()
}

/// The answer to one envelope: its receipt as [`PeerService::seal_receipts`]
/// answered it, or its rejection.
fn to_result(
    peer: Country,
    outcome: Outcome,
    receipt: Option<Receipt>,
) -> Result<DeliveryResult, Status> {
    let result = match outcome {
        Outcome::Stored { .. } | Outcome::Duplicate { .. } => {
            let receipt = receipt
                .ok_or_else(|| Status::internal("no receipt was answered for a stored envelope"))?;
            delivery_result::Result::Receipt(receipt)
        }
        Outcome::Rejected(rejection) => {
            tracing::warn!(%peer, message_id = %rejection.message_id, code = ?rejection.code(), "envelope refused");
            delivery_result::Result::Rejection(rejection)
        }
    };
    Ok(DeliveryResult {
        result: Some(result),
    })
}

#[tonic::async_trait]
impl PeerExchange for PeerService {
    async fn get_reception_policy(
        &self,
        request: Request<retorno_proto::v1::ReceptionPolicyRequest>,
    ) -> Result<Response<retorno_proto::v1::ReceptionPolicy>, Status> {
        caller(&request)?;
        Ok(Response::new(self.rules.own_policy.clone()))
    }

    type DeliverStream = ReceiverStream<Result<DeliveryResults, Status>>;

    async fn deliver(
        &self,
        request: Request<Streaming<DeliveryBatch>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let peer = match caller(&request)? {
            Identity::Gateway { country } => *country,
            other => {
                return Err(Status::permission_denied(format!(
                    "{other} is not a gateway: only gateways may deliver"
                )));
            }
        };
        let opened = self.streams.open(peer).ok_or_else(|| {
            Status::resource_exhausted(format!(
                "{peer} already holds the most delivery streams allowed (limits.streams_per_peer), each busy with a batch"
            ))
        })?;
        if let Some(quiet) = opened.replaced_quiet_for {
            tracing::info!(%peer, quiet_ms = quiet.as_millis() as u64, "a new delivery stream replaces the peer's oldest idle one (limits.streams_per_peer): its new connection says the old one is dead");
        }
        let mut slot = opened.slot;
        let mut batches = request.into_inner();
        let (sender, receiver) = mpsc::channel(8);
        let service = self.clone();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            // The slot is freed when this stream ends.
            loop {
                let batch = tokio::select! {
                    batch = batches.message() => batch,
                    _ = shutdown.changed() => return,
                    () = slot.replaced() => {
                        let _ = sender.try_send(Err(Status::aborted(
                            "a newer delivery stream from the same gateway took this one's place (limits.streams_per_peer)",
                        )));
                        return;
                    }
                };
                let answer = match batch {
                    Ok(Some(batch)) => {
                        let _busy = slot.busy();
                        service.answer(peer, batch).await
                    }
                    Ok(None) => return,
                    Err(status) => Err(status),
                };
                let failed = answer.is_err();
                if sender.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
