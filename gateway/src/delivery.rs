//! Delivering the outbox: one task per peer.
//!
//! The task keeps one long-lived bidirectional stream open to the peer and
//! sends the peer's outbox in sequence order, in batches, with several batches
//! in flight. The peer answers batches in order; an entry leaves the outbox
//! only when its receipt checks out (right message, right peer, right bytes),
//! and the receipt is kept. On any error the stream is dropped and, after an
//! exponential backoff with jitter, everything not yet answered is sent again
//! from the start of the outbox: the peer's dedupe turns that into exactly once.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use prost::Message as _;
use rand::Rng as _;
use retorno_proto::v1::{
    DeliveryBatch, DeliveryResults, Envelope, ReceiptedButLost, delivery_result,
    peer_exchange_client::PeerExchangeClient,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    config::{Delivery, PeerConfig},
    country::Country,
    links::{Links, Rejected},
    metrics::{self, Metrics, Outcome},
    peer_api::BATCH_BYTES,
    receipt::{self, PeerReceipts, ReceiptError},
    seal,
    store::{Answer, Direction, Finding, FindingKind, OutboxItem, Store, StoreError},
    tls,
};

/// Why a delivery session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Connect(#[from] tls::TlsError),
    #[error("peer answered with an error: {0}")]
    Status(#[from] tonic::Status),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("peer closed the stream")]
    Closed,
    #[error(
        "keepalive expired: the peer answered no HTTP/2 ping within delivery.keepalive_timeout_ms and sent nothing for {silent_ms} ms; the connection went silent (a partition, or a frozen peer) and is dropped"
    )]
    Silent { silent_ms: u64 },
    #[error("peer broke the protocol: {0}")]
    Protocol(String),
    #[error("peer broke the protocol: {0}")]
    Receipt(#[from] ReceiptError),
}

/// A stream that failed on a connection silent for longer than a keepalive
/// ping may go unanswered was dropped for that: HTTP/2 reports it as a
/// broken pipe, as it does a peer that closed, so the silence tells.
fn went_silent(
    status: tonic::Status,
    heard: &retorno_client::tls::LastHeard,
    keepalive: crate::config::Keepalive,
) -> SessionError {
    let silent = heard.silent_for();
    if silent >= keepalive.timeout {
        SessionError::Silent {
            silent_ms: silent.as_millis() as u64,
        }
    } else {
        SessionError::Status(status)
    }
}

/// Delivers one peer's outbox until shutdown.
pub struct Courier {
    /// The peer.
    pub peer: Country,
    /// Where it is.
    pub address: PeerConfig,
    /// The outbox.
    pub store: Arc<Store>,
    /// This gateway's TLS material; the client configuration is taken from it
    /// at each connection, so that a renewed certificate or a new revocation
    /// list is used from the next reconnect on.
    pub tls: tls::Credentials,
    /// Batch sizes and backoff.
    pub settings: Delivery,
    /// Largest message, so that the stream accepts what the peer may answer.
    pub max_message_bytes: usize,
    /// Set to true when the gateway stops.
    pub shutdown: watch::Receiver<bool>,
    /// Where this courier tells operators what it saw of the peer.
    pub links: Arc<Links>,
    /// Counts deliveries, rejections, batches and reconnects.
    pub metrics: Metrics,
}

/// Exponential backoff with jitter: each wait is between half and all of the
/// current step, and the step doubles up to the maximum.
struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            step: initial,
        }
    }

    fn next(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    fn reset(&mut self) {
        self.step = self.initial;
    }
}

impl Courier {
    /// Runs until the gateway shuts down.
    pub async fn run(self) {
        let span = tracing::info_span!("delivery", peer = %self.peer);
        self.deliver().instrument(span).await;
    }

    async fn deliver(mut self) {
        let mut watermark = match self.store.outbox_watermark(self.peer) {
            Ok(watermark) => watermark,
            Err(error) => {
                tracing::error!(%error, "cannot read the outbox; delivery to this peer is stopped");
                return;
            }
        };
        let mut backoff =
            Backoff::new(self.settings.backoff_initial(), self.settings.backoff_max());
        // The stream is kept open, work or not, and opened again after any
        // failure: comparing positions when it opens ([`Courier::compare_positions`])
        // tells a gateway that went back in time (or a peer whose inbox did)
        // as soon as the two can talk, not at the next message.
        while !*self.shutdown.borrow() {
            // A peer that accepts TCP but never answers the handshake must not
            // hold up shutdown until the connect timeout.
            let mut stop = self.shutdown.clone();
            let session = tokio::select! {
                session = self.session(&mut watermark, &mut backoff) => session,
                _ = stop.changed() => return,
            };
            self.metrics.connected(self.peer, false);
            match session {
                Ok(()) => return,
                Err(error) => {
                    self.metrics.reconnect_attempt(self.peer);
                    let wait = backoff.next();
                    let (cause, queued) = (self.cause(&error), self.queued(&watermark));
                    self.links.failed(self.peer, &cause);
                    let retry_in_ms = wait.as_millis() as u64;
                    let address = &self.address.address;
                    if queued > 0 {
                        tracing::warn!(%address, %cause, queued, retry_in_ms, "delivery interrupted; the queued messages wait for the peer");
                    } else {
                        tracing::info!(%address, %cause, retry_in_ms, "peer not reachable; nothing is queued for it");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = self.shutdown.changed() => return,
                    }
                }
            }
        }
    }

    /// Why a session ended, naming a transport cause (nothing listening, a
    /// certificate refused) rather than "transport error" when there is one.
    fn cause(&self, error: &SessionError) -> String {
        let transport = match error {
            SessionError::Status(status) => retorno_client::tls::TransportCause::of(status),
            _ => None,
        };
        match transport {
            Some(cause) => cause.describe(&self.address.address),
            None => error.to_string(),
        }
    }

    /// How many messages wait for the peer: from the oldest queued to the
    /// newest durable sequence (entries leave in order, so this needs one read,
    /// not a count of a queue that may hold a million).
    fn queued(&self, watermark: &watch::Receiver<u64>) -> u64 {
        let upto = *watermark.borrow();
        match self.store.outbox_after(self.peer, 0, upto, 1) {
            Ok(first) => first
                .first()
                .map_or(0, |item| upto.saturating_sub(item.seq) + 1),
            Err(_) => 0,
        }
    }

    /// One connection: compares positions, then streams the outbox and
    /// applies answers until an error or shutdown.
    async fn session(
        &mut self,
        watermark: &mut watch::Receiver<u64>,
        backoff: &mut Backoff,
    ) -> Result<(), SessionError> {
        let keepalive = self.settings.keepalive();
        let (channel, heard) =
            tls::connect_to_peer(self.peer, &self.address, &self.tls, keepalive).await?;
        let limit = self.max_message_bytes + BATCH_BYTES;
        let mut client = PeerExchangeClient::new(channel)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        let (batches, outgoing) = mpsc::channel(self.settings.max_batches_in_flight);
        let mut answers = client
            .deliver(ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        tracing::info!("connected");
        self.links.connected(self.peer);
        self.metrics.connected(self.peer, true);
        self.compare_positions(&batches, &mut answers).await?;
        let mut in_flight: VecDeque<Vec<OutboxItem>> = VecDeque::new();
        let mut sent_upto = 0u64;
        loop {
            while in_flight.len() < self.settings.max_batches_in_flight {
                let upto = *watermark.borrow_and_update();
                let items = self.next_batch(sent_upto, upto)?;
                let Some(last) = items.last() else { break };
                sent_upto = last.seq;
                batches
                    .send(self.sealed_batch(&items)?)
                    .await
                    .map_err(|_| SessionError::Closed)?;
                in_flight.push_back(items);
            }
            let window_open = in_flight.len() < self.settings.max_batches_in_flight;
            tokio::select! {
                answer = answers.message() => {
                    let answer = answer
                        .map_err(|status| went_silent(status, &heard, keepalive))?
                        .ok_or(SessionError::Closed)?;
                    let items = in_flight.pop_front().ok_or_else(|| {
                        SessionError::Protocol("an answer came for no batch".into())
                    })?;
                    self.apply(&items, answer).await?;
                    backoff.reset();
                }
                changed = watermark.changed(), if window_open => {
                    if changed.is_err() { return Ok(()) }
                }
                _ = self.shutdown.changed() => return Ok(()),
            }
        }
    }

    /// The stream's first exchange: this gateway says where its outbox
    /// for the peer stands, the peer where it stands, and each finds out
    /// whether the other, or itself, went back in time
    /// ([`crate::store::Finding`]). A gateway that went back continues its
    /// sequence numbers after the peer's; a peer whose inbox went back is
    /// told which of its receipts name messages it no longer has.
    async fn compare_positions(
        &self,
        batches: &mpsc::Sender<DeliveryBatch>,
        answers: &mut tonic::Streaming<DeliveryResults>,
    ) -> Result<(), SessionError> {
        let ours = self.store.sender_position(self.peer)?;
        let hello = DeliveryBatch {
            position: Some(ours.clone()),
            ..DeliveryBatch::default()
        };
        batches
            .send(hello)
            .await
            .map_err(|_| SessionError::Closed)?;
        let answer = answers.message().await?.ok_or(SessionError::Closed)?;
        let Some(theirs) = answer.position else {
            // A gateway of an older release answers without comparing: the
            // region upgrades country by country, and delivery must go on.
            tracing::info!(
                "the peer does not compare positions (an older release); delivering without"
            );
            return Ok(());
        };
        if theirs.stored_upto > ours.assigned_upto {
            self.store.record_finding(Finding::new(
                self.peer,
                FindingKind::OutboxWentBack,
                ours.assigned_upto,
                theirs.stored_upto,
                theirs.held_beyond_sender,
                theirs.held_beyond_sender_ids,
            ))?;
            self.store
                .continue_after(self.peer, theirs.stored_upto)
                .await?;
        }
        if theirs.stored_upto < ours.receipted_upto {
            let (count, ids) =
                self.store
                    .ids_after(Direction::Out, self.peer, theirs.stored_upto)?;
            self.store.record_finding(Finding::new(
                self.peer,
                FindingKind::PeerInboxWentBack,
                ours.receipted_upto,
                theirs.stored_upto,
                count,
                ids.clone(),
            ))?;
            let lost = DeliveryBatch {
                receipted_but_lost: Some(ReceiptedButLost {
                    receipted_upto: ours.receipted_upto,
                    stored_upto: theirs.stored_upto,
                    message_ids: ids,
                    count,
                }),
                ..DeliveryBatch::default()
            };
            batches.send(lost).await.map_err(|_| SessionError::Closed)?;
            answers.message().await?.ok_or(SessionError::Closed)?;
        }
        Ok(())
    }

    /// The next entries to send: up to `batch_size`, and under [`BATCH_BYTES`]
    /// unless a single entry is larger.
    fn next_batch(&self, after: u64, upto: u64) -> Result<Vec<OutboxItem>, StoreError> {
        let mut items =
            self.store
                .outbox_after(self.peer, after, upto, self.settings.batch_size)?;
        let mut bytes = 0;
        let keep = items
            .iter()
            .take_while(|item| {
                bytes += item.record.envelope.len();
                bytes <= BATCH_BYTES
            })
            .count()
            .max(1);
        items.truncate(keep);
        Ok(items)
    }

    /// Applies the peer's answers to one batch.
    async fn apply(
        &self,
        items: &[OutboxItem],
        answer: DeliveryResults,
    ) -> Result<(), SessionError> {
        if answer.results.len() != items.len() {
            return Err(SessionError::Protocol(format!(
                "{} results for a batch of {}",
                answer.results.len(),
                items.len()
            )));
        }
        let mut receipts = PeerReceipts::new(
            self.peer,
            &answer.signer_certificates,
            &self.tls.regional_roots(),
        )?;
        let now_micros = crate::clock::system_micros();
        for certificate in &answer.signer_certificates {
            self.store.save_certificate(certificate)?;
            self.metrics.peer_certificate(self.peer, certificate);
        }
        // Every result is checked before any is recorded: a batch with one
        // bad receipt is recorded not at all, and sent again.
        let mut answers = Vec::with_capacity(items.len());
        for (item, result) in items.iter().zip(answer.results) {
            let id = Uuid::try_parse(&item.record.message_id)
                .map_err(|e| SessionError::Protocol(format!("outbox entry has a bad id: {e}")))?;
            match result.result {
                Some(delivery_result::Result::Receipt(receipt)) => {
                    let checked = receipt::check(
                        &receipt,
                        &item.record.message_id,
                        self.peer,
                        &item.record.body_sha256,
                    )?;
                    receipts.verify(&receipt)?;
                    if !checked.case_refusal.is_empty() {
                        tracing::warn!(message_id = %id, "stored by the peer, but refused by its case rules");
                    }
                    answers.push(Answer::delivered(
                        item.seq,
                        id,
                        receipt.encode_to_vec(),
                        checked.case_refusal,
                    ));
                }
                Some(delivery_result::Result::Rejection(rejection)) => {
                    tracing::error!(message_id = %id, code = ?rejection.code(), "peer refused the message for good; it is kept as rejected");
                    self.links.rejected(Rejected {
                        peer: self.peer,
                        message_id: id.to_string(),
                        code: rejection
                            .code()
                            .as_str_name()
                            .trim_start_matches("REJECTION_CODE_")
                            .to_owned(),
                    });
                    answers.push(Answer::rejected(item.seq, id, rejection.encode_to_vec()));
                }
                None => return Err(SessionError::Protocol("an empty result".into())),
            }
        }
        let count = answers.len();
        let outcomes: Vec<bool> = answers.iter().map(Answer::is_delivered).collect();
        self.store.record_answers(self.peer, answers).await?;
        self.links.receipt(self.peer);
        self.count(items, &outcomes, now_micros);
        tracing::debug!(count, "batch answered");
        Ok(())
    }

    /// Counts a recorded batch: each message delivered (with the time from
    /// its creation to its receipt) or rejected, by kind.
    fn count(&self, items: &[OutboxItem], delivered: &[bool], now_micros: i64) {
        self.metrics.batch_answered(self.peer, items.len());
        for (item, delivered) in items.iter().zip(delivered) {
            let (kind, created_at) = metrics::envelope_facts(&item.record.envelope);
            if *delivered {
                self.metrics
                    .message(Some(self.peer), kind, Outcome::Delivered);
                let waited = created_at.map_or(0, |at| now_micros - at);
                self.metrics
                    .delivered(self.peer, waited as f64 / 1e6, now_micros / 1_000_000);
            } else {
                self.metrics
                    .message(Some(self.peer), kind, Outcome::RejectedByPeer);
            }
        }
    }
}

impl Courier {
    /// Seals the batch's envelopes with one signature under the current key.
    fn sealed_batch(&self, items: &[OutboxItem]) -> Result<DeliveryBatch, SessionError> {
        let mut envelopes = items
            .iter()
            .map(|item| {
                Envelope::decode(item.record.envelope.as_slice()).map_err(|e| StoreError::Corrupt {
                    tree: "outbox",
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sealer = self.tls.sealer();
        let bodies: Vec<&[u8]> = envelopes.iter().map(|e| e.body.as_slice()).collect();
        let seals = sealer
            .seal(seal::ENVELOPES, &bodies)
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        for (envelope, seal) in envelopes.iter_mut().zip(seals) {
            envelope.seal = Some(seal);
        }
        self.store.save_certificate(&sealer.certificate)?;
        Ok(DeliveryBatch {
            envelopes,
            signer_certificate: sealer.certificate.to_vec(),
            sequences: items.iter().map(|item| item.seq).collect(),
            ..DeliveryBatch::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<Duration> = (0..6).map(|_| backoff.next()).collect();
        for (wait, step) in waits.iter().zip([100u64, 200, 400, 800, 1000, 1000]) {
            assert!(
                *wait >= Duration::from_millis(step / 2) && *wait <= Duration::from_millis(step),
                "{wait:?} for step {step}"
            );
        }
        backoff.reset();
        assert!(backoff.next() <= Duration::from_millis(100));
    }
}
