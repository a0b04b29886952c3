//! The one source of "now" for the case rules.
//!
//! Minimum notice, the handoff margin and the follow-up period all compare a
//! step with the time it is taken, and a case's steps are days or weeks
//! apart. The gateway therefore reads the time through a [`Clock`]: the
//! system's in production, one that a test (or `retorno-gateway dev`) may
//! move forward, so that a case can be walked from proposal to follow-up
//! without waiting a month. Every message's `created_at` comes from it too,
//! so the receiving gateway, which applies the rules at the sender's
//! `created_at`, sees the same time as the sender did.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use jiff::{SignedDuration, Timestamp};

/// Where the gateway's "now" comes from.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// How far this clock runs ahead of the system's, in microseconds;
    /// `None` for the system clock itself. Shared, so that every gateway
    /// of a test region that holds a clone moves together.
    shift: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock: what a production gateway uses.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that starts at the system's time and can be moved forward
    /// (tests, the dev region); it keeps running at the system's pace.
    pub fn adjustable() -> Clock {
        Clock {
            shift: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Now, as the case rules see it.
    pub fn now(&self) -> Timestamp {
        let system = Timestamp::now();
        let Some(shift) = &self.shift else {
            return system;
        };
        let by = SignedDuration::from_micros(shift.load(Ordering::SeqCst));
        system.checked_add(by).unwrap_or(system)
    }

    /// Now, in microseconds since the Unix epoch (a message's `created_at`).
    pub fn now_micros(&self) -> i64 {
        self.now().as_microsecond()
    }

    /// Moves an adjustable clock forward by `by`; the system clock does not
    /// move, and says so.
    pub fn advance(&self, by: SignedDuration) -> Result<(), FixedClock> {
        let shift = self.shift.as_ref().ok_or(FixedClock)?;
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        shift.fetch_add(micros, Ordering::SeqCst);
        Ok(())
    }

    /// Moves an adjustable clock to `at` (forward only: time never runs
    /// back, so that `created_at` keeps the order of the steps).
    pub fn advance_to(&self, at: Timestamp) -> Result<(), FixedClock> {
        let ahead = at.duration_since(self.now());
        if ahead.is_positive() {
            self.advance(ahead)?;
        }
        Ok(())
    }
}

/// The system clock cannot be moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this gateway runs on the system clock, which cannot be moved")]
pub struct FixedClock;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_forward_for_every_clone_and_never_back() {
        let clock = Clock::adjustable();
        let shared = clock.clone();
        let week = SignedDuration::from_hours(24 * 7);
        let start = clock.now();
        clock.advance(week).unwrap();
        assert!(shared.now().duration_since(start) >= week);
        let moved = shared.now();
        shared.advance_to(start).unwrap();
        assert!(clock.now() >= moved, "time ran back");
        assert_eq!(Clock::system().advance(week), Err(FixedClock));
    }
}
