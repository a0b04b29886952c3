//! Instants as a caseworker reads them: in the point of entry's time zone,
//! in the reader's language, with month and weekday names from the message
//! files: `4 de diciembre de 2026, 11:00 (hora de Guatemala)`,
//! `4 December 2026, 11:00 (Guatemala time)`; in a terminal, where lines
//! line up and sort, the compact form `2026-12-04 11:00 (hora de Guatemala)`.

use fluent_bundle::FluentValue;
use jiff::{Timestamp, ZonedDateTime, civil::Date, tz::TimeZone};

use crate::i18n::Lang;

/// An instant in `zone` (IANA), e.g. `4 de diciembre de 2026, 11:00 (hora de Guatemala)`.
/// An unknown zone shows the instant in UTC, saying so.
pub fn date_time(at: Timestamp, zone: &str, lang: Lang) -> String {
    format(at, zone, lang, "date-time")
}

/// As [`date_time`], with the weekday first: `viernes 4 de diciembre de 2026, 11:00 (hora de Guatemala)`.
pub fn weekday_date_time(at: Timestamp, zone: &str, lang: Lang) -> String {
    format(at, zone, lang, "date-time-weekday")
}

/// As [`date_time`], compact for a terminal: `2026-12-04 11:00 (hora de Guatemala)`.
pub fn compact_date_time(at: Timestamp, zone: &str, lang: Lang) -> String {
    format(at, zone, lang, "date-time-compact")
}

/// A wall-clock time with its weekday, without the zone (a refusal names it
/// once): `viernes 2026-12-04 11:00`.
pub fn weekday_compact(local: jiff::civil::DateTime, lang: Lang) -> String {
    wall_clock(local, "", lang, "date-time-weekday-compact")
}

/// A day without a time, for a week view: `viernes 4 de diciembre`.
pub fn day(date: Date, lang: Lang) -> String {
    lang.text(
        "date-day",
        &[
            ("weekday", weekday_name(date, lang).into()),
            ("day", FluentValue::from(date.day().to_string())),
            ("month", month_name(date.month(), lang).into()),
        ],
    )
}

/// A calendar date: `4 de diciembre de 2026`.
pub fn date(date: Date, lang: Lang) -> String {
    lang.text(
        "date",
        &[
            ("day", FluentValue::from(date.day().to_string())),
            ("month", month_name(date.month(), lang).into()),
            ("year", FluentValue::from(date.year().to_string())),
        ],
    )
}

/// The zone's name for people: `Guatemala`, `Ciudad de México`.
pub fn zone_name(zone: &str, lang: Lang) -> String {
    let id = format!("zone-{}", zone.replace('/', "-"));
    if Lang::En.has(&id) {
        return lang.text(&id, &[]);
    }
    zone.rsplit('/').next().unwrap_or(zone).replace('_', " ")
}

/// The instant in `zone`, or in UTC if the zone is unknown.
pub fn zoned(at: Timestamp, zone: &str) -> ZonedDateTime {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    at.to_zoned_datetime(tz)
}

fn format(at: Timestamp, zone: &str, lang: Lang, id: &str) -> String {
    let (zone, local) = match TimeZone::get(zone) {
        Ok(tz) => (zone, at.to_zoned_datetime(tz)),
        Err(_) => ("UTC", at.to_zoned_datetime(TimeZone::UTC)),
    };
    wall_clock(local.datetime(), &zone_name(zone, lang), lang, id)
}

/// Message `id` for the wall-clock time `local` in the zone named `zone`,
/// with every part a date message may use.
fn wall_clock(local: jiff::civil::DateTime, zone: &str, lang: Lang, id: &str) -> String {
    let date = local.date();
    lang.text(
        id,
        &[
            ("weekday", weekday_name(date, lang).into()),
            ("day", FluentValue::from(date.day().to_string())),
            ("month", month_name(date.month(), lang).into()),
            ("year", FluentValue::from(date.year().to_string())),
            ("date", FluentValue::from(date.to_string())),
            (
                "time",
                FluentValue::from(format!("{:02}:{:02}", local.hour(), local.minute())),
            ),
            ("zone", FluentValue::from(zone.to_owned())),
        ],
    )
}

fn month_name(month: i8, lang: Lang) -> String {
    lang.text(&format!("month-{month}"), &[])
}

fn weekday_name(date: Date, lang: Lang) -> String {
    let iso = date.weekday().to_monday_one_offset();
    lang.text(&format!("weekday-{iso}"), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn an_instant_reads_in_the_points_time_zone_in_each_language() {
        // 17:00 UTC is 11:00 in Guatemala (UTC-6, no daylight saving).
        let arrival = at("2026-12-04T17:00:00Z");
        assert_eq!(
            date_time(arrival, "America/Guatemala", Lang::Es),
            "4 de diciembre de 2026, 11:00 (hora de Guatemala)"
        );
        assert_eq!(
            date_time(arrival, "America/Guatemala", Lang::En),
            "4 December 2026, 11:00 (Guatemala time)"
        );
        assert_eq!(
            weekday_date_time(arrival, "America/Guatemala", Lang::Es),
            "viernes 4 de diciembre de 2026, 11:00 (hora de Guatemala)"
        );
        assert_eq!(
            weekday_date_time(arrival, "America/Guatemala", Lang::En),
            "Friday 4 December 2026, 11:00 (Guatemala time)"
        );
        assert_eq!(
            compact_date_time(arrival, "America/Guatemala", Lang::Es),
            "2026-12-04 11:00 (hora de Guatemala)"
        );
        assert_eq!(
            compact_date_time(arrival, "America/Guatemala", Lang::En),
            "2026-12-04 11:00 (Guatemala time)"
        );
        assert_eq!(
            date_time(arrival, "America/Mexico_City", Lang::Es),
            "4 de diciembre de 2026, 11:00 (hora de Ciudad de México)"
        );
    }

    #[test]
    fn days_and_dates_name_weekdays_in_lower_case_in_spanish() {
        let monday = Date::new(2026, 11, 30).unwrap();
        assert_eq!(day(monday, Lang::Es), "lunes 30 de noviembre");
        assert_eq!(day(monday, Lang::En), "Monday 30 November");
        assert_eq!(date(monday, Lang::Es), "30 de noviembre de 2026");
    }

    #[test]
    fn an_unknown_zone_shows_utc_and_a_zone_without_a_name_shows_its_city() {
        let arrival = at("2026-12-04T17:00:00Z");
        assert_eq!(
            date_time(arrival, "Nowhere/Atlantis", Lang::En),
            "4 December 2026, 17:00 (UTC time)"
        );
        assert_eq!(
            zone_name("America/Port_of_Spain", Lang::Es),
            "Port of Spain"
        );
    }
}
