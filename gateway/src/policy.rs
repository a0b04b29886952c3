//! Reception policy: where and when a country can receive its children.
//!
//! Windows are local wall-clock hours at each point of entry, in that point's
//! IANA time zone, so that daylight-saving changes move them correctly; they
//! are configuration, published to peers, never constants. Unaccompanied and
//! separated children have stricter hours (no evening or night arrivals).

use jiff::{
    Timestamp, ZonedDateTime,
    civil::{Date, DateTime},
    tz::TimeZone,
};
use retorno_proto::v1::{CaseTiming, Companionship, HourWindow, PointOfEntry, ReceptionPolicy};
use serde::{Deserialize, Serialize};

use retorno_proto::refusal::{Code, Reason};

use crate::country::Country;

/// How many alternatives a refusal offers.
const SLOTS_OFFERED: usize = 3;

/// One point of entry as written in the gateway's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointConfig {
    /// The code proposals use, e.g. `GT-TECUN-UMAN`.
    pub code: String,
    /// A name people read.
    pub name: String,
    /// IANA time zone, e.g. `America/Guatemala`.
    pub time_zone: String,
    /// ISO weekdays, 1 (Monday) to 7 (Sunday).
    pub weekdays: Vec<u32>,
    /// Hours for children with family, `HH:MM-HH:MM` local time.
    pub hours: String,
    /// Stricter hours for unaccompanied and separated children, `HH:MM-HH:MM`.
    pub unaccompanied_hours: String,
    /// Hours between the proposal and the arrival, at least.
    pub minimum_notice_hours: u32,
    /// Children received per local day.
    pub capacity_per_day: u32,
}

/// A point of entry's configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct BadPoint {
    /// The field, relative to the point.
    pub field: String,
    /// What is wrong and the fix.
    pub problem: String,
}

fn bad(field: &str, problem: impl Into<String>) -> BadPoint {
    BadPoint {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// Parses `HH:MM-HH:MM` into minutes after midnight.
fn window(field: &str, text: &str) -> Result<HourWindow, BadPoint> {
    let minutes = |part: &str| -> Option<u32> {
        let (h, m) = part.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let parsed = text
        .split_once('-')
        .and_then(|(start, end)| Some((minutes(start)?, minutes(end)?)));
    match parsed {
        Some((start, end)) if start < end => Ok(HourWindow {
            start_minute: start,
            end_minute: end,
        }),
        _ => Err(bad(
            field,
            format!(
                "{text:?} is not a window: write it as HH:MM-HH:MM, start before end, e.g. \"08:00-16:00\""
            ),
        )),
    }
}

impl PointConfig {
    /// Checks the point and turns it into its published form.
    pub fn to_proto(&self) -> Result<PointOfEntry, BadPoint> {
        if self.code.trim().is_empty() {
            return Err(bad("code", "is required"));
        }
        TimeZone::get(&self.time_zone).map_err(|e| {
            bad(
                "time_zone",
                format!(
                    "{:?} is not an IANA time zone ({e}); e.g. \"America/Guatemala\"",
                    self.time_zone
                ),
            )
        })?;
        if self.weekdays.is_empty() || self.weekdays.iter().any(|d| !(1..=7).contains(d)) {
            return Err(bad(
                "weekdays",
                "list ISO weekdays, 1 (Monday) to 7 (Sunday)",
            ));
        }
        let hours = window("hours", &self.hours)?;
        let strict = window("unaccompanied_hours", &self.unaccompanied_hours)?;
        if strict.start_minute < hours.start_minute || strict.end_minute > hours.end_minute {
            return Err(bad(
                "unaccompanied_hours",
                "must lie within hours: they are the stricter ones",
            ));
        }
        if self.capacity_per_day == 0 {
            return Err(bad("capacity_per_day", "must be at least 1"));
        }
        Ok(PointOfEntry {
            code: self.code.clone(),
            name: self.name.clone(),
            time_zone: self.time_zone.clone(),
            weekdays: self.weekdays.clone(),
            hours: Some(hours),
            unaccompanied_hours: Some(strict),
            minimum_notice_hours: self.minimum_notice_hours,
            capacity_per_day: self.capacity_per_day,
        })
    }
}

/// Builds a country's published policy from its configured points.
pub fn published(
    country: Country,
    points: &[PointConfig],
) -> Result<ReceptionPolicy, (usize, BadPoint)> {
    let points = points
        .iter()
        .enumerate()
        .map(|(i, point)| point.to_proto().map_err(|e| (i, e)))
        .collect::<Result<_, _>>()?;
    Ok(ReceptionPolicy {
        country: country.to_string(),
        points,
        // The gateway adds its `[[delegations]]` and `[case]` timing when it publishes.
        delegated_consulates: Vec::new(),
        timing: None,
    })
}

/// The case timing a policy publishes, or the defaults for a gateway that
/// publishes none (an older version).
pub fn timing(policy: &ReceptionPolicy) -> CaseTiming {
    policy
        .timing
        .unwrap_or_else(|| crate::config::CaseRules::default().timing())
}

/// A proposed arrival that the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsidePolicy {
    /// Why, in words a caseworker reads.
    pub reason: String,
    /// Why, as data: the reason code, with the arrival, the point's hours
    /// and the offered slots as RFC 3339 times and the point's `time_zone`.
    pub refusal: Reason,
    /// The latest allowed arrival before the one proposed (still after the
    /// minimum notice), if any: an earlier slot may suit as well as a later
    /// one, and listing only later ones would hide it.
    pub before: Option<String>,
    /// The next allowed arrival times after the one proposed, local, e.g.
    /// `2026-12-04 08:00 America/Guatemala (Friday)`.
    pub nearest: Vec<String>,
}

impl OutsidePolicy {
    fn new(refusal: Reason, reason: String) -> OutsidePolicy {
        OutsidePolicy {
            reason,
            refusal,
            before: None,
            nearest: Vec::new(),
        }
    }

    /// The refusal offering `before` and `nearest` as alternatives.
    fn offering(
        refusal: Reason,
        reason: String,
        before: Option<ZonedDateTime>,
        nearest: Vec<ZonedDateTime>,
    ) -> OutsidePolicy {
        let slots: Vec<String> = nearest.iter().map(rfc3339_zoned).collect();
        let refusal = refusal
            .with(
                "before",
                before.as_ref().map(rfc3339_zoned).unwrap_or_default(),
            )
            .with("slots", slots.join(", "));
        OutsidePolicy {
            reason,
            refusal,
            before: before.as_ref().map(describe),
            nearest: nearest.iter().map(describe).collect(),
        }
    }
}

/// An instant as RFC 3339 in its zone's offset, e.g. `2026-12-04T10:00:00-06:00`:
/// how refusals carry times, beside the zone's name, for a reader to format.
pub fn rfc3339(at: Timestamp, time_zone: &str) -> String {
    let tz = TimeZone::get(time_zone).unwrap_or(TimeZone::UTC);
    rfc3339_zoned(&at.to_zoned_datetime(tz))
}

fn rfc3339_zoned(at: &ZonedDateTime) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

impl std::fmt::Display for OutsidePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)?;
        match (&self.before, self.nearest.is_empty()) {
            (Some(before), true) => write!(f, "; nearest allowed arrival: before it {before}"),
            (Some(before), false) => write!(
                f,
                "; nearest allowed arrivals: before it {before}; after it {}",
                self.nearest.join(", ")
            ),
            (None, false) => write!(
                f,
                "; nearest allowed arrivals: after it {} (none before it is allowed)",
                self.nearest.join(", ")
            ),
            (None, true) => Ok(()),
        }
    }
}

/// The window that applies to a group: the stricter one if any child travels
/// without family.
fn applicable_window(
    point: &PointOfEntry,
    companionships: &[Companionship],
) -> (HourWindow, &'static str) {
    let strict = companionships
        .iter()
        .any(|c| matches!(c, Companionship::Unaccompanied | Companionship::Separated));
    if strict {
        (
            point.unaccompanied_hours.unwrap_or_default(),
            "unaccompanied and separated children",
        )
    } else {
        (point.hours.unwrap_or_default(), "children with family")
    }
}

fn iso_weekday(zoned: &ZonedDateTime) -> u32 {
    match zoned.weekday().to_sunday_zero_offset() {
        0 => 7,
        n => u32::try_from(n).unwrap_or(7),
    }
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn describe(zoned: &ZonedDateTime) -> String {
    format!(
        "{} {} ({:?})",
        zoned.strftime("%Y-%m-%d %H:%M"),
        zoned.time_zone().iana_name().unwrap_or("?"),
        zoned.weekday()
    )
}

/// The point of entry named `code` in `policy`.
pub fn point<'a>(policy: &'a ReceptionPolicy, code: &str) -> Option<&'a PointOfEntry> {
    policy.points.iter().find(|p| p.code == code)
}

/// Checks an arrival at `point` for children of these companionships, made at `now`.
pub fn check_arrival(
    point: &PointOfEntry,
    arrival: Timestamp,
    stated_time_zone: &str,
    companionships: &[Companionship],
    now: Timestamp,
) -> Result<(), OutsidePolicy> {
    let tz = TimeZone::get(&point.time_zone).map_err(|e| {
        OutsidePolicy::new(
            Reason::new(Code::UnknownTimeZone)
                .with("point", &point.code)
                .with("time_zone", &point.time_zone),
            format!("the point's time zone {} is unknown: {e}", point.time_zone),
        )
    })?;
    let local = arrival.to_zoned_datetime(tz.clone());
    let earliest = earliest_allowed(point, now);
    // Both sides of the proposed arrival, never earlier than the minimum notice allows.
    let data = |code: Code| {
        Reason::new(code)
            .with("point", &point.code)
            .with("time_zone", &point.time_zone)
            .with("arrival", rfc3339_zoned(&local))
    };
    let around = |refusal: Reason, reason: String| {
        OutsidePolicy::offering(
            refusal,
            reason,
            latest_slot_before(point, companionships, arrival, earliest, &tz),
            nearest_slots(point, companionships, earliest.max(arrival), &tz),
        )
    };
    if stated_time_zone != point.time_zone {
        return Err(OutsidePolicy::new(
            Reason::new(Code::TimeZoneMismatch)
                .with("field", "time_zone")
                .with("given", stated_time_zone)
                .with("point", &point.code)
                .with("time_zone", &point.time_zone),
            format!(
                "time_zone is {stated_time_zone:?} but {} is in {}",
                point.code, point.time_zone
            ),
        ));
    }
    if arrival < earliest {
        return Err(OutsidePolicy::offering(
            data(Code::MinimumNotice).with("hours", point.minimum_notice_hours),
            format!(
                "arrival {} is less than the minimum notice of {} hours at {} away",
                describe(&local),
                point.minimum_notice_hours,
                point.code
            ),
            None,
            nearest_slots(point, companionships, earliest, &tz),
        ));
    }
    if !point.weekdays.contains(&iso_weekday(&local)) {
        return Err(around(
            data(Code::NoReceptionOnWeekday),
            format!(
                "{} receives no children on {:?}",
                point.code,
                local.weekday()
            ),
        ));
    }
    let (window, who) = applicable_window(point, companionships);
    let minute =
        u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
    if minute < window.start_minute || minute >= window.end_minute {
        let night = if minute >= window.end_minute {
            "evening or night "
        } else {
            ""
        };
        let refusal = data(Code::OutsideReceptionHours)
            .with("start", hhmm(window.start_minute))
            .with("end", hhmm(window.end_minute))
            .with("night", if night.is_empty() { "no" } else { "yes" })
            .with(
                "alone",
                if who.starts_with("unaccompanied") {
                    "yes"
                } else {
                    "no"
                },
            );
        return Err(around(
            refusal,
            format!(
                "arrival {} is an {night}arrival outside the reception hours for {who} at {} ({}-{} local time)",
                describe(&local),
                point.code,
                hhmm(window.start_minute),
                hhmm(window.end_minute)
            ),
        ));
    }
    Ok(())
}

/// The earliest instant a proposal made at `now` may arrive.
fn earliest_allowed(point: &PointOfEntry, now: Timestamp) -> Timestamp {
    let notice = jiff::SignedDuration::from_hours(i64::from(point.minimum_notice_hours));
    now.checked_add(notice).unwrap_or(now)
}

/// The first [`SLOTS_OFFERED`] allowed arrival instants at or after `from`,
/// one per day: the window's opening (or `from` itself inside a window).
pub fn nearest_slots(
    point: &PointOfEntry,
    companionships: &[Companionship],
    from: Timestamp,
    tz: &TimeZone,
) -> Vec<ZonedDateTime> {
    let (window, _) = applicable_window(point, companionships);
    let mut slots = Vec::new();
    let mut day: Date = from.to_zoned_datetime(tz.clone()).date();
    for _ in 0..60 {
        if let Some(slot) = slot_on(day, window, point, from, tz) {
            slots.push(slot);
            if slots.len() == SLOTS_OFFERED {
                break;
            }
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    slots
}

/// The latest allowed arrival (on a quarter hour) before `arrival` and not
/// before `earliest`, searching back day by day to `earliest`'s day.
pub fn latest_slot_before(
    point: &PointOfEntry,
    companionships: &[Companionship],
    arrival: Timestamp,
    earliest: Timestamp,
    tz: &TimeZone,
) -> Option<ZonedDateTime> {
    let (window, _) = applicable_window(point, companionships);
    let first_day = earliest.to_zoned_datetime(tz.clone()).date();
    let mut day = arrival.to_zoned_datetime(tz.clone()).date();
    while day >= first_day {
        if let Some(slot) = last_slot_on(day, window, point, arrival, tz)
            && slot.timestamp() >= earliest
        {
            return Some(slot);
        }
        day = day.yesterday().ok()?;
    }
    None
}

/// The last allowed quarter hour of `day` before `before`, if any.
fn last_slot_on(
    day: Date,
    window: HourWindow,
    point: &PointOfEntry,
    before: Timestamp,
    tz: &TimeZone,
) -> Option<ZonedDateTime> {
    let open = local_minute(day, window.start_minute, tz)?;
    if !point.weekdays.contains(&iso_weekday(&open)) || open.timestamp() >= before {
        return None;
    }
    let last = local_minute(day, (window.end_minute.saturating_sub(1) / 15) * 15, tz)?;
    if last.timestamp() < before {
        return Some(last);
    }
    // `before` falls inside the window: the quarter hour before it.
    let local = before.to_zoned_datetime(tz.clone());
    let minute = u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).ok()?;
    let quarter = (minute.saturating_sub(1) / 15) * 15;
    local_minute(day, quarter.max(window.start_minute), tz)
}

/// `minute` minutes after midnight of `day`, local time.
fn local_minute(day: Date, minute: u32, tz: &TimeZone) -> Option<ZonedDateTime> {
    let time = jiff::civil::time(
        i8::try_from(minute / 60).ok()?,
        i8::try_from(minute % 60).ok()?,
        0,
        0,
    );
    DateTime::from_parts(day, time)
        .to_zoned_datetime(tz.clone())
        .ok()
}

/// The first allowed minute of `day` at or after `from`, if any.
fn slot_on(
    day: Date,
    window: HourWindow,
    point: &PointOfEntry,
    from: Timestamp,
    tz: &TimeZone,
) -> Option<ZonedDateTime> {
    let at = |minute: u32| local_minute(day, minute, tz);
    let open = at(window.start_minute)?;
    if !point.weekdays.contains(&iso_weekday(&open)) {
        return None;
    }
    if open.timestamp() >= from {
        return Some(open);
    }
    // `from` falls inside or after today's window: the next whole quarter hour, if still open.
    let from_local = from.to_zoned_datetime(tz.clone());
    let minute =
        u32::try_from(i32::from(from_local.hour()) * 60 + i32::from(from_local.minute())).ok()?;
    let rounded = minute.div_ceil(15) * 15;
    (rounded < window.end_minute).then(|| at(rounded)).flatten()
}

/// The local date of an instant at a point, as `YYYY-MM-DD`, for daily capacity.
pub fn local_date(point: &PointOfEntry, arrival: Timestamp) -> String {
    TimeZone::get(&point.time_zone)
        .map(|tz| {
            arrival
                .to_zoned_datetime(tz)
                .strftime("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
}

/// Default points for the dev region, so that `retorno-gateway dev` has a policy to publish.
pub fn dev_points(country: Country) -> Vec<PointConfig> {
    let (code, name, tz) = match country.as_str() {
        "GT" => (
            "GT-TECUN-UMAN",
            "Tecún Umán land border",
            "America/Guatemala",
        ),
        "MX" => (
            "MX-AICM",
            "Mexico City international airport",
            "America/Mexico_City",
        ),
        "HN" => ("HN-CORINTO", "Corinto land border", "America/Tegucigalpa"),
        "US" => (
            "US-SAN-YSIDRO",
            "San Ysidro port of entry",
            "America/Los_Angeles",
        ),
        "SV" => (
            "SV-LA-HACHADURA",
            "La Hachadura land border",
            "America/El_Salvador",
        ),
        _ => ("AIRPORT", "International airport", "UTC"),
    };
    vec![PointConfig {
        code: code.to_owned(),
        name: name.to_owned(),
        time_zone: tz.to_owned(),
        weekdays: vec![1, 2, 3, 4, 5, 6],
        hours: "08:00-18:00".to_owned(),
        unaccompanied_hours: "08:00-16:00".to_owned(),
        minimum_notice_hours: 48,
        capacity_per_day: 30,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tecun_uman() -> PointOfEntry {
        dev_points("GT".parse().unwrap())[0].to_proto().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_night_arrival_of_an_unaccompanied_child_is_refused_with_nearest_slots() {
        let point = tecun_uman();
        // 2026-12-10 is a Thursday; 21:30 in Guatemala is 03:30 UTC the next day.
        let error = check_arrival(
            &point,
            at("2026-12-11T03:30:00Z"),
            "America/Guatemala",
            &[Companionship::Unaccompanied],
            at("2026-12-01T00:00:00Z"),
        )
        .unwrap_err();
        assert!(error.reason.contains("evening or night arrival"), "{error}");
        assert!(error.reason.contains("2026-12-10 21:30"), "{error}");
        assert_eq!(
            error.nearest[0],
            "2026-12-11 08:00 America/Guatemala (Friday)"
        );
        assert_eq!(
            error.nearest[1],
            "2026-12-12 08:00 America/Guatemala (Saturday)"
        );
        assert_eq!(
            error.nearest[2], "2026-12-14 08:00 America/Guatemala (Monday)",
            "no Sundays"
        );
        assert_eq!(
            error.before.as_deref(),
            Some("2026-12-10 15:45 America/Guatemala (Thursday)"),
            "the same day's last slot is offered too"
        );
        assert!(
            error.to_string().contains(
                "nearest allowed arrivals: before it 2026-12-10 15:45 America/Guatemala (Thursday); after it 2026-12-11 08:00"
            ),
            "{error}"
        );
    }

    /// Issue 9: a 21:30 refusal listed only the next days while the same
    /// day's 10:00, after the minimum notice, was allowed.
    #[test]
    fn an_earlier_slot_after_the_minimum_notice_is_not_hidden() {
        let point = tecun_uman();
        // Proposed on Monday 2026-11-30 at 09:47 in Guatemala, for Wednesday 21:30.
        let now = at("2026-11-30T15:47:00Z");
        let error = check_arrival(
            &point,
            at("2026-12-03T03:30:00Z"),
            "America/Guatemala",
            &[Companionship::Unaccompanied],
            now,
        )
        .unwrap_err();
        assert_eq!(
            error.before.as_deref(),
            Some("2026-12-02 15:45 America/Guatemala (Wednesday)")
        );
        // Proposed at 16:10 on Sunday for Wednesday 06:00: Wednesday's window
        // is after the arrival and Tuesday's last slot before the notice ends.
        let late_now = at("2026-11-29T22:10:00Z");
        let early_morning = check_arrival(
            &point,
            at("2026-12-02T12:00:00Z"),
            "America/Guatemala",
            &[Companionship::Unaccompanied],
            late_now,
        )
        .unwrap_err();
        assert_eq!(early_morning.before, None, "{early_morning}");
        assert_eq!(
            early_morning.nearest[0],
            "2026-12-02 08:00 America/Guatemala (Wednesday)"
        );
        assert!(
            early_morning
                .to_string()
                .contains("(none before it is allowed)"),
            "{early_morning}"
        );
    }

    #[test]
    fn families_have_longer_hours_than_children_alone() {
        let point = tecun_uman();
        let five_pm = at("2026-12-10T23:00:00Z"); // 17:00 in Guatemala
        let now = at("2026-12-01T00:00:00Z");
        assert!(
            check_arrival(
                &point,
                five_pm,
                "America/Guatemala",
                &[Companionship::WithFamily],
                now
            )
            .is_ok()
        );
        assert!(
            check_arrival(
                &point,
                five_pm,
                "America/Guatemala",
                &[Companionship::Separated],
                now
            )
            .is_err()
        );
    }

    #[test]
    fn the_minimum_notice_is_enforced() {
        let point = tecun_uman();
        let error = check_arrival(
            &point,
            at("2026-12-10T16:00:00Z"),
            "America/Guatemala",
            &[Companionship::WithFamily],
            at("2026-12-09T16:00:00Z"),
        )
        .unwrap_err();
        assert!(
            error.reason.contains("minimum notice of 48 hours"),
            "{error}"
        );
        assert_eq!(
            error.nearest[0],
            "2026-12-11 10:00 America/Guatemala (Friday)"
        );
    }

    #[test]
    fn bad_points_name_the_field() {
        let mut point = dev_points("GT".parse().unwrap()).remove(0);
        point.unaccompanied_hours = "07:00-16:00".into();
        assert_eq!(point.to_proto().unwrap_err().field, "unaccompanied_hours");
        point.unaccompanied_hours = "8-16".into();
        assert_eq!(point.to_proto().unwrap_err().field, "unaccompanied_hours");
        point.time_zone = "America/Atlantis".into();
        assert_eq!(point.to_proto().unwrap_err().field, "time_zone");
    }
}
