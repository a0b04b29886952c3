//! Limits on what one caller may take: a message size, a submit rate per
//! agency and a number of open delivery streams per peer. A misbehaving or
//! compromised client is slowed down with `ResourceExhausted`, never allowed
//! to starve the others; an oversized message gets one answer wherever it is
//! caught ([`too_large`]).

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use tonic::{Code, Status, codegen::http};

use crate::{country::Country, identity::Identity, tls::PeerInfo};

/// The answer to a message of `size` bytes over `max`, wherever it is caught.
pub fn too_large(size: Option<usize>, max: usize) -> Status {
    let reason = retorno_proto::refusal::Reason::new(retorno_proto::refusal::Code::MessageTooLarge)
        .with("max", max);
    let reason = match size {
        Some(size) => reason.with("size", size),
        None => reason,
    };
    let size = size
        .map(|size| format!("{size} bytes, "))
        .unwrap_or_default();
    reason.status(
        tonic::Code::InvalidArgument,
        format!(
            "message is {size}over this gateway's limit of {max} bytes (limits.max_message_bytes)"
        ),
    )
}

/// Gives tonic's own refusal of an oversized request (`OUT_OF_RANGE`,
/// decided from the length prefix before a byte of the message is read) the
/// gateway's answer, [`too_large`], so that a client sees one limit, named
/// by its setting, whatever the size. For unary requests (the Agency API),
/// whose status tonic sends in the response headers.
#[derive(Clone)]
pub struct NameTheSizeLimit {
    /// `limits.max_message_bytes`.
    pub max: usize,
    /// Told of each such refusal (to audit it as the handler would have).
    pub refused: Refused,
}

/// Told who sent an oversized request, to which method, and the answer.
pub type Refused = Arc<dyn Fn(&Identity, &str, &Status) + Send + Sync>;

impl<S> tower::Layer<S> for NameTheSizeLimit {
    type Service = SizeLimitNamed<S>;

    fn layer(&self, inner: S) -> SizeLimitNamed<S> {
        SizeLimitNamed {
            inner,
            max: self.max,
            refused: self.refused.clone(),
        }
    }
}

/// A service whose oversized requests are answered with [`too_large`].
#[derive(Clone)]
pub struct SizeLimitNamed<S> {
    inner: S,
    max: usize,
    refused: Refused,
}

type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, ResBody> tower::Service<http::Request<B>> for SizeLimitNamed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Answer<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let caller = request.extensions().get::<PeerInfo>().cloned();
        let method = request.uri().path().to_owned();
        let (answer, max, refused) = (self.inner.call(request), self.max, self.refused.clone());
        Box::pin(async move {
            let mut response = answer.await?;
            if let Some(status) = Status::from_header_map(response.headers())
                && let Some(size) = oversized(&status)
            {
                let ours = too_large(size, max);
                // Only fails for a message that is not valid header text; ours is.
                let _ = ours.add_header(response.headers_mut());
                if let Some(caller) = caller {
                    refused(&caller.identity, &method, &ours);
                }
            }
            Ok(response)
        })
    }
}

/// Whether `status` is tonic's refusal of a message over its decoding
/// limit, and the size it found if it says so.
fn oversized(status: &Status) -> Option<Option<usize>> {
    const TONIC: &str = "message length too large: found ";
    if status.code() != Code::OutOfRange {
        return None;
    }
    let (_, found) = status.message().split_once(TONIC)?;
    Some(found.split(' ').next().and_then(|n| n.parse().ok()))
}

/// A token bucket per key: `rate` tokens a second, up to `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter of `rate` per second with bursts up to `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how many milliseconds until one is free.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        // The map holds plain numbers: a panic elsewhere cannot leave it inconsistent.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate * 1000.0).ceil() as u64)
        }
    }
}

/// Open delivery streams per peer. A peer at its maximum that opens one
/// more replaces its oldest idle stream instead of being refused: its new
/// connection is the best evidence that an old one is dead, and a partition
/// can leave a dead one open here for good (no FIN or RST ever arrives). A
/// stream busy with a batch is never replaced.
#[derive(Clone)]
pub struct StreamSlots {
    max: usize,
    open: Arc<Mutex<OpenStreams>>,
}

#[derive(Default)]
struct OpenStreams {
    next_id: u64,
    by_peer: HashMap<Country, Vec<Held>>,
}

/// One open stream as the slots see it.
struct Held {
    id: u64,
    busy: bool,
    /// When it last finished a batch, or opened.
    quiet_since: Instant,
    replaced: tokio::sync::watch::Sender<bool>,
}

/// An open stream's place; freed when dropped.
pub struct StreamSlot {
    peer: Country,
    id: u64,
    open: Arc<Mutex<OpenStreams>>,
    replaced: tokio::sync::watch::Receiver<bool>,
}

/// A new stream's slot, and how long the stream it replaced had been quiet.
pub struct Opened {
    /// The new stream's place.
    pub slot: StreamSlot,
    /// Set when the peer was at its maximum and its oldest idle stream was replaced.
    pub replaced_quiet_for: Option<std::time::Duration>,
}

impl StreamSlots {
    /// At most `max` streams per peer.
    pub fn new(max: usize) -> Self {
        StreamSlots {
            max,
            open: Arc::new(Mutex::new(OpenStreams::default())),
        }
    }

    /// A slot for one more stream from `peer`: a free one, or the one of
    /// its oldest idle stream, which is told to end. `None` if all of the
    /// peer's streams are busy with a batch.
    pub fn open(&self, peer: Country) -> Option<Opened> {
        let now = Instant::now();
        let mut open = self.lock();
        open.next_id += 1;
        let id = open.next_id;
        let held = open.by_peer.entry(peer).or_default();
        let mut replaced_quiet_for = None;
        if held.len() >= self.max {
            let oldest = held
                .iter()
                .enumerate()
                .filter(|(_, stream)| !stream.busy)
                .min_by_key(|(_, stream)| stream.quiet_since)
                .map(|(index, _)| index)?;
            let old = held.remove(oldest);
            replaced_quiet_for = Some(now.saturating_duration_since(old.quiet_since));
            old.replaced.send_replace(true);
        }
        let (sender, replaced) = tokio::sync::watch::channel(false);
        held.push(Held {
            id,
            busy: false,
            quiet_since: now,
            replaced: sender,
        });
        Some(Opened {
            slot: StreamSlot {
                peer,
                id,
                open: self.open.clone(),
                replaced,
            },
            replaced_quiet_for,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenStreams> {
        lock(&self.open)
    }
}

/// The map holds plain values: a panic elsewhere cannot leave it inconsistent.
fn lock(open: &Mutex<OpenStreams>) -> std::sync::MutexGuard<'_, OpenStreams> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamSlot {
    /// Resolves when a newer stream from the same peer has taken this slot.
    pub async fn replaced(&mut self) {
        if self.replaced.wait_for(|replaced| *replaced).await.is_err() {
            // The slot was freed without a replacement: nothing to wait for.
            std::future::pending::<()>().await;
        }
    }

    /// Marks the stream busy with a batch (not to be replaced) until the guard drops.
    pub fn busy(&self) -> Busy<'_> {
        self.update(|held| held.busy = true);
        Busy(self)
    }

    fn update(&self, change: impl FnOnce(&mut Held)) {
        let mut open = lock(&self.open);
        let held = open.by_peer.get_mut(&self.peer);
        if let Some(held) = held.and_then(|h| h.iter_mut().find(|h| h.id == self.id)) {
            change(held);
        }
    }
}

/// A stream busy with a batch; idle again from its drop.
pub struct Busy<'a>(&'a StreamSlot);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.update(|held| {
            held.busy = false;
            held.quiet_since = Instant::now();
        });
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(held) = open.by_peer.get_mut(&self.peer) {
            held.retain(|h| h.id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.take("a", start).unwrap();
        }
        assert_eq!(limiter.take("a", start), Err(100), "a token every 100 ms");
        limiter.take("b", start).unwrap();
        limiter
            .take("a", start + Duration::from_millis(100))
            .unwrap();
    }

    #[test]
    fn tonics_refusal_of_an_oversized_message_is_recognised_with_its_size() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 2097356 bytes, the limit is: 2097152 bytes",
        );
        assert_eq!(oversized(&tonic), Some(Some(2_097_356)));
        assert_eq!(
            oversized(&Status::out_of_range("cursor: out of range")),
            None
        );
        let ours = too_large(Some(2_097_356), 1024);
        assert_eq!(ours.code(), Code::InvalidArgument);
        assert_eq!(
            ours.message(),
            "message is 2097356 bytes, over this gateway's limit of 1024 bytes (limits.max_message_bytes)"
        );
        assert_eq!(
            too_large(None, 1024).message(),
            "message is over this gateway's limit of 1024 bytes (limits.max_message_bytes)"
        );
    }

    #[test]
    fn stream_slots_free_on_drop() {
        let slots = StreamSlots::new(2);
        let mx: Country = "MX".parse().unwrap();
        let first = slots.open(mx).unwrap().slot;
        let second = slots.open(mx).unwrap().slot;
        let _first_busy = first.busy();
        let _second_busy = second.busy();
        assert!(
            slots.open(mx).is_none(),
            "both streams are busy with a batch"
        );
        assert!(slots.open("HN".parse().unwrap()).is_some());
        drop(_first_busy);
        drop(_second_busy);
        drop(first);
        let third = slots.open(mx).unwrap();
        assert!(
            third.replaced_quiet_for.is_none(),
            "a freed slot replaces nothing"
        );
    }

    #[tokio::test]
    async fn a_stream_over_the_limit_replaces_the_oldest_idle_one() {
        let slots = StreamSlots::new(2);
        let mx: Country = "MX".parse().unwrap();
        let mut oldest = slots.open(mx).unwrap().slot;
        let busy = slots.open(mx).unwrap().slot;
        let working = busy.busy();
        let newer = slots.open(mx).unwrap();
        assert!(newer.replaced_quiet_for.is_some());
        tokio::time::timeout(std::time::Duration::from_secs(5), oldest.replaced())
            .await
            .expect("the oldest idle stream is told to end");
        assert!(
            !*busy.replaced.borrow(),
            "a stream busy with a batch is kept"
        );
        drop(working);
        drop(oldest);
        assert!(
            slots.open(mx).is_some(),
            "the newer stream is replaced in turn"
        );
    }
}
