//! What each courier saw of its peer: connections opened, connection
//! errors, streams interrupted and receipts, kept in memory.
//!
//! An operator asks "is the peer reachable, since when, what was the last
//! error" (`ops status`) and "what happened each time this message was
//! tried" (`ops show`). Writing an attempt per message would add a write per
//! message to the hot path; instead each peer keeps a bounded log of its
//! connection events, and a message's attempts are the events between its
//! acceptance and the peer's answer (both in its `SentRecord`). The log
//! starts empty at each start of the gateway.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Mutex,
};

use crate::{clock::system_micros as now_micros, country::Country};

/// Events kept per peer; older ones are dropped first.
const EVENTS_PER_PEER: usize = 512;

/// One thing a courier saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    /// When, microseconds since the Unix epoch.
    pub at_micros: i64,
    /// What happened.
    pub kind: LinkEventKind,
    /// The error, for a failure.
    pub detail: String,
}

/// What a courier saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEventKind {
    /// A delivery stream opened.
    Connected,
    /// The peer could not be reached (TCP, TLS or the stream's opening).
    ConnectionFailed,
    /// An open stream ended with an error; what was in flight is sent again.
    Interrupted,
}

impl LinkEventKind {
    /// The name an operator reads.
    pub fn name(self) -> &'static str {
        match self {
            LinkEventKind::Connected => "connected",
            LinkEventKind::ConnectionFailed => "connection_failed",
            LinkEventKind::Interrupted => "stream_interrupted",
        }
    }
}

/// Where the link to one peer stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Since when a stream is open, if one is.
    pub connected_since_micros: Option<i64>,
    /// Since when the peer has been unreachable (no stream open), if it is;
    /// from the gateway's start if it never was reachable.
    pub unreachable_since_micros: Option<i64>,
    /// The last error and when.
    pub last_error: Option<(i64, String)>,
    /// When a receipt last came.
    pub last_receipt_micros: Option<i64>,
}

#[derive(Default)]
struct Link {
    status: LinkStatus,
    events: VecDeque<LinkEvent>,
}

/// A message a peer rejected, waiting for [`crate::alerts`] to report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The peer.
    pub peer: Country,
    /// The message id.
    pub message_id: String,
    /// The rejection's code, e.g. `TOO_LARGE`.
    pub code: String,
}

/// Rejections kept for the alerts at most; beyond, the oldest are dropped
/// (each stays in the message log).
const REJECTIONS_KEPT: usize = 1024;

/// The links to every peer.
pub struct Links {
    links: BTreeMap<Country, Mutex<Link>>,
    rejected: Mutex<VecDeque<Rejected>>,
}

impl Links {
    /// A log for each of `peers`, all unreachable from now until a stream opens.
    pub fn new(peers: impl IntoIterator<Item = Country>) -> Links {
        let started = now_micros();
        let links = peers
            .into_iter()
            .map(|peer| {
                let link = Link {
                    status: LinkStatus {
                        unreachable_since_micros: Some(started),
                        ..LinkStatus::default()
                    },
                    events: VecDeque::new(),
                };
                (peer, Mutex::new(link))
            })
            .collect();
        Links {
            links,
            rejected: Mutex::new(VecDeque::new()),
        }
    }

    fn with<T>(&self, peer: Country, f: impl FnOnce(&mut Link) -> T) -> Option<T> {
        let link = self.links.get(&peer)?;
        // A panic while holding the lock leaves only counters half-updated.
        let mut link = link.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&mut link))
    }

    /// A stream to `peer` opened.
    pub fn connected(&self, peer: Country) {
        let now = now_micros();
        self.with(peer, |link| {
            link.status.connected_since_micros = Some(now);
            link.status.unreachable_since_micros = None;
            link.push(now, LinkEventKind::Connected, String::new());
        });
    }

    /// A session with `peer` ended with `error`.
    pub fn failed(&self, peer: Country, error: &str) {
        let now = now_micros();
        self.with(peer, |link| {
            let kind = match link.status.connected_since_micros.take() {
                Some(_) => LinkEventKind::Interrupted,
                None => LinkEventKind::ConnectionFailed,
            };
            link.status.unreachable_since_micros.get_or_insert(now);
            link.status.last_error = Some((now, error.to_owned()));
            link.push(now, kind, error.to_owned());
        });
    }

    /// Receipts from `peer` were recorded.
    pub fn receipt(&self, peer: Country) {
        let now = now_micros();
        self.with(peer, |link| link.status.last_receipt_micros = Some(now));
    }

    /// `peer` rejected a message for good.
    pub fn rejected(&self, rejected: Rejected) {
        let mut queue = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() == REJECTIONS_KEPT {
            queue.pop_front();
        }
        queue.push_back(rejected);
    }

    /// The rejections since the last call.
    pub fn take_rejected(&self) -> Vec<Rejected> {
        let mut queue = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        queue.drain(..).collect()
    }

    /// Where the link to `peer` stands.
    pub fn status(&self, peer: Country) -> LinkStatus {
        self.with(peer, |link| link.status.clone())
            .unwrap_or_default()
    }

    /// The events with `peer` from `from` up to `until` (microseconds), oldest first.
    pub fn events(&self, peer: Country, from: i64, until: i64) -> Vec<LinkEvent> {
        self.with(peer, |link| {
            link.events
                .iter()
                .filter(|event| event.at_micros >= from && event.at_micros <= until)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
    }
}

impl Link {
    fn push(&mut self, at_micros: i64, kind: LinkEventKind, detail: String) {
        if self.events.len() == EVENTS_PER_PEER {
            self.events.pop_front();
        }
        self.events.push_back(LinkEvent {
            at_micros,
            kind,
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_after_a_connection_is_an_interruption_and_the_log_is_bounded() {
        let gt: Country = "GT".parse().unwrap();
        let links = Links::new([gt]);
        assert!(links.status(gt).unreachable_since_micros.is_some());
        links.failed(gt, "refused");
        links.connected(gt);
        assert_eq!(links.status(gt).unreachable_since_micros, None);
        links.failed(gt, "reset");
        let kinds: Vec<_> = links
            .events(gt, 0, i64::MAX)
            .iter()
            .map(|e| e.kind)
            .collect();
        use LinkEventKind::*;
        assert_eq!(kinds, [ConnectionFailed, Connected, Interrupted]);
        assert_eq!(links.status(gt).last_error.unwrap().1, "reset");
        for _ in 0..2 * EVENTS_PER_PEER {
            links.failed(gt, "again");
        }
        assert_eq!(links.events(gt, 0, i64::MAX).len(), EVENTS_PER_PEER);
    }
}
