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
//!
//! Every conversion between the gateway's representations of an instant is
//! here too: `jiff::Timestamp` (the case rules), protobuf `Timestamp` (the
//! wire), microseconds since the epoch (what the store keeps), seconds
//! (certificate expiry), `rustls` `UnixTime` (certificate checks at a past
//! instant) and RFC 3339 text (alerts). Each is written once, saturating or
//! refusing on overflow as its callers need.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use jiff::{SignedDuration, Timestamp};
use rustls_pki_types::UnixTime;

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

/// The system's time in microseconds since the Unix epoch: when a record was
/// stored, an answer recorded, an alert raised (never the case rules' "now").
pub fn system_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The system's time in seconds since the Unix epoch (certificate expiry).
pub fn system_seconds() -> i64 {
    system_micros().div_euclid(1_000_000)
}

/// An instant on the wire.
pub fn wire(at: Timestamp) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
    }
}

/// An instant kept in microseconds since the epoch, on the wire.
pub fn wire_micros(micros: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

/// An instant from the wire; `None` if it is out of range.
pub fn from_wire(value: &pbjson_types::Timestamp) -> Option<Timestamp> {
    Timestamp::new(value.seconds, value.nanos).ok()
}

/// An instant from the wire in microseconds since the epoch, saturating;
/// 0 for none.
pub fn micros_of(value: Option<&pbjson_types::Timestamp>) -> i64 {
    value.map_or(0, |t| {
        t.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(t.nanos / 1000))
    })
}

/// An instant from the wire in microseconds since the epoch; `None` if it
/// does not fit (a request's bound, refused rather than saturated).
pub fn checked_micros(value: &pbjson_types::Timestamp) -> Option<i64> {
    value
        .seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(i64::from(value.nanos / 1000)))
}

/// An instant kept in microseconds, for checking a certificate at that time
/// (an instant before the epoch is the epoch).
pub fn unix_time(micros: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_micros(
        micros.max(0).unsigned_abs(),
    ))
}

/// An instant kept in microseconds, as RFC 3339 text; empty if out of range.
pub fn rfc3339(micros: i64) -> String {
    Timestamp::from_microsecond(micros).map_or_else(|_| String::new(), |t| t.to_string())
}

/// An instant as RFC 3339 in a zone's offset, e.g. `2026-12-04T10:00:00-06:00`
/// (UTC for an unknown zone): how refusals carry times, beside the zone's
/// name, for a reader to format.
pub fn rfc3339_in(at: Timestamp, time_zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    rfc3339_zoned(&at.to_zoned_datetime(tz))
}

/// A zoned instant as RFC 3339 with its offset.
pub fn rfc3339_zoned(at: &jiff::ZonedDateTime) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
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

    #[test]
    fn every_representation_of_an_instant_converts_back_to_the_same_instant() {
        let micros = 1_700_000_000_123_456;
        let on_wire = wire_micros(micros);
        assert_eq!(
            (on_wire.seconds, on_wire.nanos),
            (1_700_000_000, 123_456_000)
        );
        assert_eq!(micros_of(Some(&on_wire)), micros);
        assert_eq!(checked_micros(&on_wire), Some(micros));
        let at = from_wire(&on_wire).unwrap();
        assert_eq!(at.as_microsecond(), micros);
        assert_eq!(wire(at), on_wire);
        assert_eq!(wire_micros(-1).seconds, -1, "before the epoch rounds down");
        assert_eq!(micros_of(None), 0);
        let huge = pbjson_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(checked_micros(&huge), None);
        assert_eq!(micros_of(Some(&huge)), i64::MAX);
        assert_eq!(rfc3339(micros), "2023-11-14T22:13:20.123456Z");
        assert_eq!(unix_time(micros).as_secs(), 1_700_000_000);
        assert!(system_seconds() > 1_700_000_000);
    }
}
