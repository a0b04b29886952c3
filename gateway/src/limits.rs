//! Limits on what one caller may take: a submit rate per agency and a number
//! of open delivery streams per peer. A misbehaving or compromised client is
//! slowed down with `ResourceExhausted`, never allowed to starve the others.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::country::Country;

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

/// Counts open delivery streams per peer.
#[derive(Clone)]
pub struct StreamSlots {
    max: usize,
    open: Arc<Mutex<HashMap<Country, usize>>>,
}

/// An open stream's place; freed when dropped.
pub struct StreamSlot {
    peer: Country,
    open: Arc<Mutex<HashMap<Country, usize>>>,
}

impl StreamSlots {
    /// At most `max` streams per peer.
    pub fn new(max: usize) -> Self {
        StreamSlots {
            max,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for one more stream from `peer`, if it has fewer than the maximum open.
    pub fn open(&self, peer: Country) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(peer).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            peer,
            open: self.open.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
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
    fn stream_slots_free_on_drop() {
        let slots = StreamSlots::new(2);
        let mx: Country = "MX".parse().unwrap();
        let first = slots.open(mx).unwrap();
        let _second = slots.open(mx).unwrap();
        assert!(slots.open(mx).is_none());
        assert!(slots.open("HN".parse().unwrap()).is_some());
        drop(first);
        assert!(slots.open(mx).is_some());
    }
}
