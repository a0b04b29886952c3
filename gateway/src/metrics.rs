//! Metrics for Prometheus, on a plain-HTTP listener of their own.
//!
//! Events are counted where they happen (a submit answered, a peer's answer
//! to a batch applied, a batch from a peer stored) through one [`Metrics`]
//! handle: an increment is an atomic add behind a read lock, cheap enough
//! for the hot path. What is a state rather than an event (outbox depth,
//! certificate expiry, store size) is read from its source when Prometheus
//! scrapes, off the async workers, so that nothing keeps it up to date
//! between scrapes.
//!
//! The same listener answers `GET /health` with the health checks' last
//! [`Verdict`] in plain HTTP (`200 SERVING`, or `503 NOT_SERVING: ` and the
//! names of the failing checks), for a layer-4 load balancer whose TLS
//! passes through to the gateway and so cannot ask `grpc.health.v1` over
//! mutual TLS. [`crate::health`] decides; this only shows its answer.
//!
//! No label holds an id, a name or anything else from a message's content:
//! the labels are a peer's country code, a payload kind and an outcome, and
//! for certificates their role and subject (a gateway's or a CA's, never a
//! person's). The scrape test checks the text for every id it sent.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes, server::conn::http1};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use retorno_proto::v1::envelope_body::Payload;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    clock::Clock,
    country::Country,
    health::Verdict,
    store::Store,
    tls::{CertificateInfo, Credentials},
};

/// What became of one message, as a label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// An agency's submit was accepted into the outbox.
    Accepted,
    /// An agency's submit was refused (validation, case rules, rate).
    RefusedAtSubmit,
    /// The peer stored it and its receipt is kept here.
    Delivered,
    /// The peer rejected it without storing it.
    RejectedByPeer,
    /// A peer's message was stored here and passed the case rules.
    Received,
    /// A peer's message was stored here but refused by the case rules.
    RefusedOnArrival,
    /// A peer's message was rejected here without being stored.
    RejectedOnArrival,
    /// A peer sent again a message stored here before.
    Duplicate,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::RefusedAtSubmit => "refused_at_submit",
            Outcome::Delivered => "delivered",
            Outcome::RejectedByPeer => "rejected_by_peer",
            Outcome::Received => "received",
            Outcome::RefusedOnArrival => "refused_on_arrival",
            Outcome::RejectedOnArrival => "rejected_on_arrival",
            Outcome::Duplicate => "duplicate",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The peer label: a country code, or `unknown` where a refused submit
/// named no valid one.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct PeerLabel(pub Option<Country>);

impl EncodeLabelValue for PeerLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let text = self.0.as_ref().map_or("unknown", Country::as_str);
        std::fmt::Write::write_str(encoder, text)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    peer: PeerLabel,
    kind: &'static str,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: PeerLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    role: &'static str,
    subject: String,
}

/// A finding of going back in time ([`crate::store::Finding`]): the peer
/// compared with and what was found (`outbox_went_back`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    peer: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CrlLabels {
    issuer: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds, from a millisecond to ten minutes.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// Messages per batch, from 1 to 1024.
fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// The gateway's metrics; cheap to clone, every clone counts into the same.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    messages: Family<MessageLabels, Counter>,
    submit_latency: Histogram,
    delivery_latency: Histograms<PeerLabels>,
    batch_size: Histograms<PeerLabels>,
    outbox_depth: Family<PeerLabels, Gauge>,
    oldest_queued_age: Family<PeerLabels, Gauge>,
    connected: Family<PeerLabels, Gauge>,
    last_receipt: Family<PeerLabels, Gauge>,
    reconnects: Family<PeerLabels, Counter>,
    certificate_expiry: Family<CertificateLabels, Gauge>,
    peer_certificate_expiry: Family<PeerLabels, Gauge>,
    crl_age: Family<CrlLabels, Gauge>,
    audit_height: Gauge,
    /// Standing (unacknowledged) findings of going back in time.
    went_back: Family<FindingLabels, Gauge>,
    store_size: Gauge,
    purges: Counter,
    serving: Gauge,
    draining: Gauge,
    lease_held: Gauge,
    /// The last sealing certificate seen from each peer, so that it is
    /// parsed only when it changes, not at every batch.
    /// With its expiry (seconds since the Unix epoch), shown as seconds
    /// left at each scrape.
    peer_certificates: Mutex<HashMap<Country, (Vec<u8>, i64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered, at zero.
    pub fn new() -> Metrics {
        let mut inner = Inner {
            messages: Family::default(),
            submit_latency: latency_histogram(),
            delivery_latency: Family::new_with_constructor(latency_histogram),
            batch_size: Family::new_with_constructor(batch_histogram),
            outbox_depth: Family::default(),
            oldest_queued_age: Family::default(),
            connected: Family::default(),
            last_receipt: Family::default(),
            reconnects: Family::default(),
            certificate_expiry: Family::default(),
            peer_certificate_expiry: Family::default(),
            crl_age: Family::default(),
            audit_height: Gauge::default(),
            went_back: Family::default(),
            store_size: Gauge::default(),
            purges: Counter::default(),
            serving: Gauge::default(),
            draining: Gauge::default(),
            lease_held: Gauge::default(),
            peer_certificates: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        let mut registry = Registry::default();
        register(&mut registry, &inner);
        inner.registry = registry;
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// One message reached `outcome`.
    pub fn message(&self, peer: Option<Country>, kind: &'static str, outcome: Outcome) {
        let labels = MessageLabels {
            peer: PeerLabel(peer),
            kind,
            outcome,
        };
        self.inner.messages.get_or_create(&labels).inc();
    }

    /// How long a submit took until it was answered "accepted".
    pub fn submit_latency(&self, took: Duration) {
        self.inner.submit_latency.observe(took.as_secs_f64());
    }

    /// A peer answered a batch of `size` messages.
    pub fn batch_answered(&self, peer: Country, size: usize) {
        self.inner
            .batch_size
            .get_or_create(&peer_labels(peer))
            .observe(size as f64);
    }

    /// A message's receipt came back `seconds` after it was accepted, at
    /// `now_unix` (seconds since the Unix epoch).
    pub fn delivered(&self, peer: Country, seconds: f64, now_unix: i64) {
        let labels = peer_labels(peer);
        self.inner
            .delivery_latency
            .get_or_create(&labels)
            .observe(seconds.max(0.0));
        self.inner.last_receipt.get_or_create(&labels).set(now_unix);
    }

    /// The delivery stream to `peer` opened (`true`) or ended.
    pub fn connected(&self, peer: Country, up: bool) {
        self.inner
            .connected
            .get_or_create(&peer_labels(peer))
            .set(i64::from(up));
    }

    /// The courier for `peer` is about to try again after a failure.
    pub fn reconnect_attempt(&self, peer: Country) {
        self.inner
            .reconnects
            .get_or_create(&peer_labels(peer))
            .inc();
    }

    /// Retention purged the personal data of `count` messages.
    pub fn purged(&self, count: usize) {
        self.inner.purges.inc_by(count as u64);
    }

    /// What the health checks concluded, and whether an operator drains the gateway.
    pub fn health(&self, serving: bool, draining: bool) {
        self.inner.serving.set(i64::from(serving));
        self.inner.draining.set(i64::from(draining));
    }

    /// Whether this node holds the gateway's lease (and so serves).
    pub fn lease_held(&self, held: bool) {
        self.inner.lease_held.set(i64::from(held));
    }

    /// `peer` sealed with `certificate` (DER): its expiry is shown.
    pub fn peer_certificate(&self, peer: Country, certificate: &[u8]) {
        let mut seen = self.peer_certificates();
        if seen
            .get(&peer)
            .is_some_and(|(known, _)| known == certificate)
        {
            return;
        }
        let role = crate::tls::CertificateRole::Gateway;
        let Some(info) = CertificateInfo::read(std::path::Path::new(""), role, certificate) else {
            return;
        };
        seen.insert(peer, (certificate.to_vec(), info.not_after_unix));
    }

    fn peer_certificates(&self) -> std::sync::MutexGuard<'_, HashMap<Country, (Vec<u8>, i64)>> {
        // Each entry is replaced whole: a poisoned lock still holds whole values.
        self.inner
            .peer_certificates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The text Prometheus scrapes (OpenMetrics), as the metrics are now.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
        {
            tracing::error!(%error, "the metrics could not be encoded");
        }
        text
    }
}

fn peer_labels(peer: Country) -> PeerLabels {
    PeerLabels {
        peer: PeerLabel(Some(peer)),
    }
}

/// Registers every metric of `inner` under its name and help.
fn register(registry: &mut Registry, inner: &Inner) {
    registry.register(
        "retorno_messages",
        "Messages by peer country, payload kind and outcome",
        inner.messages.clone(),
    );
    registry.register(
        "retorno_submit_latency_seconds",
        "Time from a submit's arrival to its answer \"accepted\"",
        inner.submit_latency.clone(),
    );
    registry.register(
        "retorno_delivery_latency_seconds",
        "Time from a message's acceptance to its receipt from the peer",
        inner.delivery_latency.clone(),
    );
    registry.register(
        "retorno_delivery_batch_size",
        "Messages per delivery batch answered by the peer",
        inner.batch_size.clone(),
    );
    registry.register(
        "retorno_outbox_depth",
        "Messages queued for the peer",
        inner.outbox_depth.clone(),
    );
    registry.register(
        "retorno_outbox_oldest_age_seconds",
        "Age of the oldest message queued for the peer (0 when none is)",
        inner.oldest_queued_age.clone(),
    );
    registry.register(
        "retorno_peer_connected",
        "Whether the delivery stream to the peer is open (1) or not (0)",
        inner.connected.clone(),
    );
    registry.register(
        "retorno_peer_last_receipt_timestamp_seconds",
        "When the last receipt came from the peer, in seconds since the Unix epoch",
        inner.last_receipt.clone(),
    );
    registry.register(
        "retorno_peer_reconnect_attempts",
        "Times the courier tried the peer again after a failure",
        inner.reconnects.clone(),
    );
    registry.register(
        "retorno_certificate_expiry_seconds",
        "Seconds until this gateway's certificate, its CAs and the regional root expire",
        inner.certificate_expiry.clone(),
    );
    registry.register(
        "retorno_peer_certificate_expiry_seconds",
        "Seconds until the certificate a peer last sealed with expires",
        inner.peer_certificate_expiry.clone(),
    );
    registry.register(
        "retorno_crl_age_seconds",
        "Seconds since each configured revocation list was issued",
        inner.crl_age.clone(),
    );
    registry.register(
        "retorno_audit_height",
        "Entries in the audit chain",
        inner.audit_height.clone(),
    );
    registry.register(
        "retorno_went_back_findings",
        "Standing findings that this gateway or a peer went back in time (a restored backup, a lost disk cache), per peer and kind, until an operator acknowledges them",
        inner.went_back.clone(),
    );
    registry.register(
        "retorno_store_size_bytes",
        "Bytes the database takes on disk",
        inner.store_size.clone(),
    );
    registry.register(
        "retorno_retention_purged_messages",
        "Messages whose personal data retention purged",
        inner.purges.clone(),
    );
    registry.register(
        "retorno_health_serving",
        "Whether the gRPC health status is SERVING (1) or NOT_SERVING (0)",
        inner.serving.clone(),
    );
    registry.register(
        "retorno_draining",
        "Whether an operator drains this gateway (1) or not (0)",
        inner.draining.clone(),
    );
    registry.register(
        "retorno_lease_held",
        "Whether this node holds the gateway's lease and serves (1) or stands by for it (0); 1 on sled, which has one node",
        inner.lease_held.clone(),
    );
}

/// The payload kind of a submit, as a label value.
pub fn submit_kind(payload: Option<&retorno_proto::v1::submit_request::Payload>) -> &'static str {
    use retorno_proto::v1::submit_request::Payload as P;
    match payload {
        Some(P::AdvanceNotice(_)) => "advance_notice",
        Some(P::CaseSummary(_)) => "case_summary",
        Some(P::ArrivalProposal(_)) => "arrival_proposal",
        Some(P::ArrivalResponse(_)) => "arrival_response",
        Some(P::HandoffAck(_)) => "handoff_ack",
        Some(P::ReceptionConfirmation(_)) => "reception_confirmation",
        Some(P::FollowUpReport(_)) => "follow_up_report",
        Some(P::CaseWithdrawal(_)) => "case_withdrawal",
        None => "none",
    }
}

/// The payload kind of a message, as a label value.
pub fn payload_kind(payload: Option<&Payload>) -> &'static str {
    payload.map_or("none", retorno_proto::timeline::kind_name)
}

/// The payload kind and `created_at` of an encoded `Envelope`, read from
/// the wire without decoding (and copying) its payload: the courier counts
/// each delivered message by kind and times it from its creation.
pub fn envelope_facts(envelope: &[u8]) -> (&'static str, Option<i64>) {
    let Some(body) = wire::length_delimited(envelope, 1) else {
        return ("none", None);
    };
    let created_at = wire::length_delimited(body, 5).map(|timestamp| {
        let seconds = wire::varint(timestamp, 1).unwrap_or(0) as i64;
        let nanos = wire::varint(timestamp, 2).unwrap_or(0) as i64;
        seconds.saturating_mul(1_000_000) + nanos / 1_000
    });
    (body_kind(body), created_at)
}

/// The payload kind of an encoded `EnvelopeBody`, read from the wire.
pub fn body_kind(body: &[u8]) -> &'static str {
    match wire::first_tag_in(body, 10..=17) {
        Some(10) => "advance_notice",
        Some(11) => "case_summary",
        Some(12) => "arrival_proposal",
        Some(13) => "arrival_response",
        Some(14) => "handoff_ack",
        Some(15) => "reception_confirmation",
        Some(16) => "follow_up_report",
        Some(17) => "case_withdrawal",
        _ => "none",
    }
}

/// Just enough of the protobuf wire format to find a field without decoding the rest.
mod wire {
    use prost::encoding::decode_varint;

    /// Each field of `message` in order: its tag, and its value (the bytes
    /// of a length-delimited field, the number of a varint); `None` ends it.
    fn fields(mut message: &[u8]) -> impl Iterator<Item = (u32, Value<'_>)> {
        std::iter::from_fn(move || {
            let key = decode_varint(&mut message).ok()?;
            let tag = u32::try_from(key >> 3).ok()?;
            let value = match key & 7 {
                0 => Value::Varint(decode_varint(&mut message).ok()?),
                1 => Value::Skipped(message.get(..8).map(|_| message = &message[8..])?),
                2 => {
                    let len = usize::try_from(decode_varint(&mut message).ok()?).ok()?;
                    let bytes = message.get(..len)?;
                    message = &message[len..];
                    Value::Bytes(bytes)
                }
                5 => Value::Skipped(message.get(..4).map(|_| message = &message[4..])?),
                _ => return None,
            };
            Some((tag, value))
        })
    }

    enum Value<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Skipped(()),
    }

    pub(super) fn length_delimited(message: &[u8], tag: u32) -> Option<&[u8]> {
        fields(message).find_map(|(t, value)| match value {
            Value::Bytes(bytes) if t == tag => Some(bytes),
            _ => None,
        })
    }

    pub(super) fn varint(message: &[u8], tag: u32) -> Option<u64> {
        fields(message).find_map(|(t, value)| match value {
            Value::Varint(number) if t == tag => Some(number),
            _ => None,
        })
    }

    pub(super) fn first_tag_in(message: &[u8], tags: std::ops::RangeInclusive<u32>) -> Option<u32> {
        fields(message)
            .map(|(tag, _)| tag)
            .find(|tag| tags.contains(tag))
    }
}

/// What a scrape reads besides the counters: the store, the TLS material
/// and the clock that certificate expiry is measured on.
#[derive(Clone)]
pub struct Sources {
    /// The metrics to fill in and encode.
    pub metrics: Metrics,
    /// Outbox depth and age, audit height, size.
    pub store: Arc<Store>,
    /// The certificates and revocation lists in use.
    pub tls: Credentials,
    /// The peers, for their per-peer gauges.
    pub peers: Vec<Country>,
    /// The gateway's "now" (movable in tests, as for health).
    pub clock: Clock,
    /// The health checks' last verdict, for `GET /health`.
    pub health: watch::Receiver<Verdict>,
}

impl Sources {
    /// Reads the states into their gauges and encodes everything.
    pub fn scrape(&self) -> String {
        let metrics = &self.metrics.inner;
        // Acceptance times are the system's; certificate expiry is measured
        // on the gateway's clock, as health measures it.
        let now_micros = crate::clock::system_micros();
        let now = self.clock.now().as_second();
        for peer in &self.peers {
            let labels = peer_labels(*peer);
            let depth = self.store.outbox_depth(*peer);
            metrics
                .outbox_depth
                .get_or_create(&labels)
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
            let age = match self.store.oldest_queued_micros(*peer) {
                Ok(Some(accepted)) => (now_micros - accepted).max(0) / 1_000_000,
                Ok(None) => 0,
                Err(error) => {
                    tracing::warn!(%error, %peer, "metrics: cannot read the oldest queued message");
                    0
                }
            };
            metrics.oldest_queued_age.get_or_create(&labels).set(age);
            // A peer never connected to shows 0, not nothing.
            drop(metrics.connected.get_or_create(&labels));
            drop(metrics.reconnects.get_or_create(&labels));
        }
        metrics.certificate_expiry.clear();
        for certificate in self.tls.certificates() {
            let labels = CertificateLabels {
                role: certificate_role(&certificate),
                subject: certificate.subject.clone(),
            };
            metrics
                .certificate_expiry
                .get_or_create(&labels)
                .set(certificate.not_after_unix - now);
        }
        for (peer, (_, not_after)) in self.metrics.peer_certificates().iter() {
            metrics
                .peer_certificate_expiry
                .get_or_create(&peer_labels(*peer))
                .set(not_after - now);
        }
        metrics.crl_age.clear();
        for crl in self.tls.crls() {
            let labels = CrlLabels { issuer: crl.issuer };
            metrics
                .crl_age
                .get_or_create(&labels)
                .set(now - crl.this_update_unix);
        }
        metrics
            .audit_height
            .set(i64::try_from(self.store.audit_height()).unwrap_or(i64::MAX));
        metrics.went_back.clear();
        match self.store.findings() {
            Ok(findings) => {
                for finding in findings.iter().filter(|f| f.acknowledged_at_micros == 0) {
                    let labels = FindingLabels {
                        peer: finding.peer.clone(),
                        kind: finding.kind().map_or("unknown", |kind| kind.label()),
                    };
                    metrics.went_back.get_or_create(&labels).inc();
                }
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot read the findings"),
        }
        match self.store.size_on_disk() {
            Ok(bytes) => {
                metrics
                    .store_size
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot read the store's size"),
        }
        self.metrics.encode()
    }
}

fn certificate_role(certificate: &CertificateInfo) -> &'static str {
    use crate::tls::CertificateRole;
    match certificate.role {
        CertificateRole::Gateway => "gateway",
        CertificateRole::Intermediate => "intermediate",
        CertificateRole::RegionalRoot => "regional_root",
        CertificateRole::AgencyCa => "agency_ca",
    }
}

/// Binds the metrics listener, if `[metrics]` enables it.
pub async fn bind(config: &crate::config::Metrics) -> std::io::Result<Option<TcpListener>> {
    if !config.enabled {
        return Ok(None);
    }
    TcpListener::bind(config.listen).await.map(Some)
}

/// What a metrics listener answers from: a serving gateway's sources, or
/// the few metrics of a node standing by for the lease.
#[derive(Clone)]
enum Answers {
    Gateway(Box<Sources>),
    StandingBy(Metrics),
}

impl Answers {
    fn verdict(&self) -> Verdict {
        match self {
            Answers::Gateway(sources) => sources.health.borrow().clone(),
            Answers::StandingBy(_) => Verdict::StandingBy,
        }
    }

    fn scrape(&self) -> String {
        match self {
            Answers::Gateway(sources) => sources.scrape(),
            Answers::StandingBy(metrics) => metrics.encode(),
        }
    }
}

/// Serves `GET /metrics` and `GET /health` (plain HTTP/1.1) until `shutdown` turns true.
pub fn serve(
    listener: TcpListener,
    sources: Sources,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let serving = accept(listener, Answers::Gateway(Box::new(sources)), shutdown);
    tokio::spawn(async move {
        serving.await;
    })
}

/// Serves a node standing by for the lease until `stopping` turns true,
/// then gives the listener back for the gateway to serve on: `GET /health`
/// answers 503 `NOT_SERVING: standby` (a balancer's check sends no traffic,
/// and tells it from a dead node, whose port is closed), and `GET /metrics`
/// the standby's own metrics (`retorno_lease_held 0`).
pub fn serve_standby(
    listener: TcpListener,
    stopping: watch::Receiver<bool>,
) -> JoinHandle<TcpListener> {
    let metrics = Metrics::new();
    metrics.lease_held(false);
    tokio::spawn(accept(listener, Answers::StandingBy(metrics), stopping))
}

/// Accepts and answers connections until `shutdown` turns true; returns the listener.
async fn accept(
    listener: TcpListener,
    answers: Answers,
    mut shutdown: watch::Receiver<bool>,
) -> TcpListener {
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "metrics: accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return listener,
        };
        let answers = answers.clone();
        let service = hyper::service::service_fn(move |request| {
            let answers = answers.clone();
            async move { Ok::<_, Infallible>(answer(&answers, &request).await) }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// The answer to one request: the metrics for `GET /metrics`, the health
/// verdict for `GET /health`, 404 otherwise.
async fn answer<B>(answers: &Answers, request: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    let path = request.uri().path();
    if request.method() == Method::GET && path == "/health" {
        let verdict = answers.verdict();
        let status = match verdict.serving() {
            true => StatusCode::OK,
            false => StatusCode::SERVICE_UNAVAILABLE,
        };
        return reply(status, "text/plain; charset=utf-8", verdict.plain_text());
    }
    if request.method() != Method::GET || path != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "retorno serves GET /metrics and GET /health only\n".into(),
        );
    }
    // Counting the outbox and reading the files' sizes blocks: off the workers.
    let scraping = answers.clone();
    match tokio::task::spawn_blocking(move || scraping.scrape()).await {
        Ok(text) => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        ),
        Err(error) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("the scrape failed: {error}\n"),
        ),
    }
}

/// Where a gateway's metrics are, for people: `http://ADDRESS/metrics`.
pub fn url(address: SocketAddr) -> String {
    format!("http://{address}/metrics")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use retorno_proto::v1::{AdvanceNotice, Envelope, EnvelopeBody};

    #[test]
    fn the_kind_and_creation_time_are_read_from_the_wire() {
        let body = EnvelopeBody {
            message_id: "0190d6f0-0000-7000-8000-000000000001".into(),
            case_id: "MX-2026-0001".into(),
            created_at: Some(pbjson_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 5_000,
            }),
            payload: Some(Payload::AdvanceNotice(AdvanceNotice::default())),
            ..EnvelopeBody::default()
        };
        let envelope = Envelope {
            body: body.encode_to_vec(),
            seal: None,
        }
        .encode_to_vec();
        assert_eq!(
            envelope_facts(&envelope),
            ("advance_notice", Some(1_800_000_000_000_005))
        );
        assert_eq!(envelope_facts(b"\xff"), ("none", None));
    }

    #[test]
    fn counts_show_with_their_labels() {
        let metrics = Metrics::new();
        let gt = "GT".parse().ok();
        metrics.message(gt, "advance_notice", Outcome::Accepted);
        metrics.message(gt, "advance_notice", Outcome::Accepted);
        metrics.message(None, "none", Outcome::RefusedAtSubmit);
        let text = metrics.encode();
        assert!(
            text.contains(
                "retorno_messages_total{peer=\"GT\",kind=\"advance_notice\",outcome=\"accepted\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "retorno_messages_total{peer=\"unknown\",kind=\"none\",outcome=\"refused_at_submit\"} 1"
            ),
            "{text}"
        );
    }
}
