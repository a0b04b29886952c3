//! Authenticated connections: how many one identity may hold, when one with
//! nothing to do is closed, and why one ended.
//!
//! The TLS handshake has its own timeout; after it, a connection with a valid
//! certificate could otherwise stay open for good doing nothing, and anyone
//! holding one certificate could keep file handles without limit. So each
//! listener counts connections per identity ([`ConnectionSlots`]) and closes
//! one on which no call has been in progress for `limits.idle_timeout_ms`
//! ([`IdleTimer`]). Idleness is counted in calls, not bytes: an agency's
//! `inbox --follow` is a call in progress however quiet it is, and a client
//! that only answers pings is still idle. HTTP/2 keepalive pings (set on the
//! servers in `gateway.rs`) and TCP keepalive close a connection whose other
//! end went silent, as in a partition that drops every packet; [`Watch`]
//! names that cause when the connection ends.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use http_body::{Body, Frame, SizeHint};
use tokio::{
    net::TcpStream,
    time::{Instant, Sleep},
};
use tonic::codegen::http;

use crate::{config::Keepalive, config::Limits, identity::Identity, tls::PeerInfo};

/// What one listener allows an authenticated connection.
#[derive(Clone)]
pub struct ConnectionRules {
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long a connection may have no call in progress.
    pub idle_timeout: Duration,
    /// The listener's HTTP/2 and TCP keepalive, to name the cause when it expires.
    pub keepalive: Keepalive,
    /// Open connections per identity on this listener.
    pub slots: ConnectionSlots,
}

impl ConnectionRules {
    /// The rules `[limits]` sets, with a count of its own for one listener.
    pub fn for_listener(limits: &Limits) -> Self {
        ConnectionRules {
            handshake_timeout: Duration::from_millis(limits.handshake_timeout_ms),
            idle_timeout: limits.idle_timeout(),
            keepalive: limits.keepalive(),
            slots: ConnectionSlots::new(limits.connections_per_identity),
        }
    }
}

/// Turns on TCP keepalive, so that the kernel too gives up on a peer that
/// stopped answering, even where no HTTP/2 ping is due.
pub fn tcp_keepalive(tcp: &TcpStream, keepalive: Keepalive) -> std::io::Result<()> {
    let probes = socket2::TcpKeepalive::new()
        .with_time(keepalive.interval)
        .with_interval(keepalive.interval);
    socket2::SockRef::from(tcp).set_tcp_keepalive(&probes)
}

/// Counts open connections per identity (by URN).
#[derive(Clone)]
pub struct ConnectionSlots {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// An open connection's place; freed when the connection is dropped.
pub struct ConnectionSlot {
    identity: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl ConnectionSlots {
    /// At most `max` connections per identity.
    pub fn new(max: usize) -> Self {
        ConnectionSlots {
            max,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for one more connection of `identity`, or why there is none.
    pub fn open(&self, identity: &Identity) -> Result<ConnectionSlot, String> {
        let urn = identity.urn();
        // The map holds plain counts: a panic elsewhere cannot leave it inconsistent.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(urn.clone()).or_insert(0);
        if *count >= self.max {
            return Err(format!(
                "{identity} already holds {} open connections (limits.connections_per_identity)",
                self.max
            ));
        }
        *count += 1;
        Ok(ConnectionSlot {
            identity: urn,
            open: self.open.clone(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.identity) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.identity);
            }
        }
    }
}

/// The calls in progress on one connection, and since when there were none.
#[derive(Debug)]
pub struct Activity {
    calls: Mutex<(usize, Instant)>,
}

impl Activity {
    /// A connection with no call yet, idle from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            calls: Mutex::new((0, Instant::now())),
        })
    }

    /// Counts a call until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> CallGuard {
        self.lock().0 += 1;
        CallGuard(self.clone())
    }

    /// Since when no call has been in progress; `None` while one is.
    fn idle_since(&self) -> Option<Instant> {
        let (calls, since) = *self.lock();
        (calls == 0).then_some(since)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        // Plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One call in progress; the connection is idle again from its drop.
#[derive(Debug)]
pub struct CallGuard(Arc<Activity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let mut calls = self.0.lock();
        calls.0 = calls.0.saturating_sub(1);
        if calls.0 == 0 {
            calls.1 = Instant::now();
        }
    }
}

/// Fires when a connection has had no call in progress for its timeout.
pub struct IdleTimer {
    activity: Arc<Activity>,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl IdleTimer {
    /// A timer over `activity`.
    pub fn new(activity: Arc<Activity>, timeout: Duration) -> Self {
        IdleTimer {
            activity,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Ready once the connection has been idle for the whole timeout; keeps
    /// the task's waker registered until then.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let deadline = match self.activity.idle_since() {
                Some(since) => since + self.timeout,
                None => now + self.timeout,
            };
            if deadline <= now {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(deadline);
        }
    }
}

/// How a connection ended, as far as its stream could see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Still open.
    Open,
    /// The client closed it (end of stream) or it failed under a read.
    ByClient,
    /// Closed here after the idle timeout.
    Idle,
}

/// What a connection's stream records to say, when it is dropped, why it ended.
pub struct Watch {
    last_read: Instant,
    ending: Ending,
    idle_timeout: Duration,
    keepalive: Keepalive,
}

impl Watch {
    /// A watch over a connection that was just admitted.
    pub fn new(rules: &ConnectionRules) -> Self {
        Watch {
            last_read: Instant::now(),
            ending: Ending::Open,
            idle_timeout: rules.idle_timeout,
            keepalive: rules.keepalive,
        }
    }

    /// Bytes came in.
    pub fn read(&mut self) {
        self.last_read = Instant::now();
    }

    /// The connection is ending this way (the first cause seen is kept).
    pub fn ended(&mut self, ending: Ending) {
        if self.ending == Ending::Open {
            self.ending = ending;
        }
    }

    /// Whether the idle timeout closed the connection.
    pub fn closed_idle(&self) -> bool {
        self.ending == Ending::Idle
    }

    /// Logs why the connection ended. Other than the client closing it or
    /// the idle timeout, the HTTP/2 server drops a connection only when it
    /// fails, shuts down, or when a keepalive ping goes unanswered; a
    /// connection silent for longer than the ping's timeout ended that way.
    pub fn log_end(&self, info: &PeerInfo, listener: &'static str) {
        let (identity, remote) = (&info.identity, info.remote);
        let silent = self.last_read.elapsed();
        match self.ending {
            Ending::Idle => tracing::info!(
                listener, %identity, %remote, idle = ?self.idle_timeout,
                "connection closed: no call in progress for the idle timeout (limits.idle_timeout_ms)"
            ),
            Ending::ByClient => {
                tracing::debug!(listener, %identity, %remote, "connection closed by the client")
            }
            Ending::Open if silent >= self.keepalive.timeout => tracing::info!(
                listener, %identity, %remote, silent_ms = silent.as_millis() as u64,
                "connection closed: keepalive expired, the other end answered no HTTP/2 ping within limits.keepalive_timeout_ms (it went silent: a partition, or a frozen process)"
            ),
            Ending::Open => tracing::debug!(listener, %identity, %remote, "connection closed"),
        }
    }
}

/// Counts each call on the connection it came in on as activity, from the
/// request until its response body is done or dropped (a stream's life).
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackCalls;

impl<S> tower::Layer<S> for TrackCalls {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked { inner }
    }
}

/// A service whose calls count as their connection's activity.
#[derive(Clone, Debug)]
pub struct Tracked<S> {
    inner: S,
}

type TrackedFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, ResBody> tower::Service<http::Request<B>> for Tracked<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: 'static,
{
    type Response = http::Response<CallBody<ResBody>>;
    type Error = S::Error;
    type Future = TrackedFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = request
            .extensions()
            .get::<PeerInfo>()
            .map(|info| info.activity.begin());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| CallBody {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// A response body that holds its call's [`CallGuard`].
#[derive(Debug)]
pub struct CallBody<B> {
    inner: B,
    _guard: Option<CallGuard>,
}

impl<B: Body + Unpin> Body for CallBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agency(name: &str) -> Identity {
        format!("urn:retorno:agency:MX:consulate:{name}")
            .parse()
            .unwrap()
    }

    #[test]
    fn one_identity_holds_at_most_its_connections_and_frees_them_on_drop() {
        let slots = ConnectionSlots::new(2);
        let first = slots.open(&agency("SRE")).unwrap();
        let _second = slots.open(&agency("SRE")).unwrap();
        let refused = slots.open(&agency("SRE")).err().unwrap();
        assert!(
            refused.contains("limits.connections_per_identity"),
            "{refused}"
        );
        assert!(slots.open(&agency("OTHER")).is_ok());
        drop(first);
        assert!(slots.open(&agency("SRE")).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_while_no_call_is_in_progress() {
        let activity = Activity::new();
        let mut timer = IdleTimer::new(activity.clone(), Duration::from_secs(10));
        let call = activity.begin();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let expired = std::future::poll_fn(|cx| Poll::Ready(timer.poll_expired(cx))).await;
        assert!(expired.is_pending(), "a call in progress is not idle");
        drop(call);
        tokio::time::sleep(Duration::from_secs(9)).await;
        let expired = std::future::poll_fn(|cx| Poll::Ready(timer.poll_expired(cx))).await;
        assert!(expired.is_pending(), "idle for 9 s of 10");
        std::future::poll_fn(|cx| timer.poll_expired(cx)).await;
        assert!(activity.idle_since().unwrap().elapsed() >= Duration::from_secs(10));
    }
}
