//! The figures: what a case counts as, and the tables of a period.
//!
//! [`counted`] is the one function that reads a case for statistics. It takes
//! the typed categories the tables need (the other country, months, point of
//! entry, age band, sex, companionship, protection concerns, outcome, timing)
//! and nothing else: no id, name, date of birth or free text reaches a table,
//! so that a report can hold counts only. A figure whose field the case
//! record does not hold is left out rather than guessed (see the README's
//! "Statistics" section for what each table counts).

use std::collections::BTreeMap;

use retorno_proto::v1::{
    AgeBand, CaseState, CaseView, Companionship, DeclineReason, Placement, ProtectionConcern, Role,
    Sex, TimelineEntry, WithdrawalReason, arrival_response::Decision,
    timeline_facts::Payload as Fact,
};

use crate::country::Country;

/// A calendar month, `YYYY-MM`, the unit of a report's period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// The year.
    pub year: i16,
    /// 1 to 12.
    pub month: i8,
}

/// Why a month could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a month: write YYYY-MM, e.g. 2026-01")]
pub struct BadMonth(pub String);

impl std::str::FromStr for Month {
    type Err = BadMonth;

    fn from_str(text: &str) -> Result<Month, BadMonth> {
        let bad = || BadMonth(text.to_owned());
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        let year: i16 = year.parse().map_err(|_| bad())?;
        let month: i8 = month.parse().map_err(|_| bad())?;
        if year.to_string().len() != 4 || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Month {
    /// The month of an instant, in UTC (both gateways of a case agree on it).
    pub fn of(at: jiff::Timestamp) -> Month {
        let date = at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year.saturating_add(1),
                month: 1,
            }
        } else {
            Month {
                month: self.month + 1,
                ..self
            }
        }
    }
}

/// The months a report covers, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// The first month.
    pub from: Month,
    /// The last month.
    pub to: Month,
}

/// A period that ends before it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--to {to} is before --from {from}")]
pub struct BackwardPeriod {
    /// The first month given.
    pub from: Month,
    /// The last month given.
    pub to: Month,
}

impl Period {
    /// A period from `from` to `to`, refused if it runs backwards.
    pub fn new(from: Month, to: Month) -> Result<Period, BackwardPeriod> {
        if to < from {
            return Err(BackwardPeriod { from, to });
        }
        Ok(Period { from, to })
    }

    /// Whether `month` is inside.
    pub fn holds(&self, month: Month) -> bool {
        (self.from..=self.to).contains(&month)
    }

    /// Every month, in order.
    pub fn months(&self) -> Vec<Month> {
        let mut months = vec![self.from];
        while let Some(last) = months.last().copied().filter(|last| *last < self.to) {
            months.push(last.next());
        }
        months
    }
}

/// Which side of its cases a table counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// Children this country returned (it is the case's destination).
    Returned,
    /// Children this country received back (it is the case's origin).
    Received,
}

impl Side {
    /// The name tables carry.
    pub fn name(self) -> &'static str {
        match self {
            Side::Returned => "returned",
            Side::Received => "received",
        }
    }
}

/// How a case ended, or that it has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Received and placed as the reception confirmation says.
    Received(Placement),
    /// Withdrawn: the child stays, for this reason.
    Withdrawn(WithdrawalReason),
    /// Neither yet.
    Open,
}

/// Who acknowledged a handoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandedOverTo {
    /// The child's own country's consulate.
    OwnConsulate,
    /// Another country's consulate acting under a delegation.
    DelegatedConsulate,
    /// Child protection (the reception agency at the border).
    ChildProtection,
}

/// How the origin answered this child's arrival proposals, the first that
/// applies in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answers {
    /// At least one proposal was declined as outside the reception hours.
    DeclinedForTheHour,
    /// Declined for another reason, or countered.
    DeclinedOrCountered,
    /// The first answer accepted.
    AcceptedFirst,
    /// No answer yet.
    None,
}

/// One case as statistics count it: categories only, never who the child is.
#[derive(Clone, Debug, PartialEq)]
pub struct Counted {
    /// The side this gateway's country is on.
    pub side: Side,
    /// The other country of the case.
    pub other: String,
    /// The month of the advance notice.
    pub notice_month: Option<Month>,
    /// The month of the reception, once received.
    pub received_month: Option<Month>,
    /// The agreed arrival's point of entry, once agreed.
    pub point: Option<String>,
    /// The age band at the notice.
    pub age: AgeBand,
    /// The child's sex as the notice gave it.
    pub sex: Sex,
    /// Alone, separated or with family.
    pub companionship: Companionship,
    /// Each protection concern the notice named.
    pub concerns: Vec<ProtectionConcern>,
    /// How the case ended.
    pub outcome: Outcome,
    /// Hours from the notice to the agreed arrival.
    pub notice_hours: Option<i64>,
    /// Who acknowledged the handoff, and whether it was flagged late.
    pub handoff: Option<(HandedOverTo, bool)>,
    /// How the proposals were answered.
    pub answers: Answers,
    /// Per follow-up milestone (30, 90, 180 days): due by `as_of`, and done.
    pub follow_ups: [(bool, bool); 3],
}

/// The follow-up milestones, in days after the reception.
pub const FOLLOW_UP_DAYS: [u32; 3] = [30, 90, 180];

/// What statistics read of `case`, held by `here`'s gateway, with follow-ups
/// due by `as_of`. `None` for a case this country is on neither side of.
pub fn counted(case: &CaseView, here: Country, as_of: jiff::Timestamp) -> Option<Counted> {
    let (side, other) = if case.destination_country == here.as_str() {
        (Side::Returned, &case.origin_country)
    } else if case.origin_country == here.as_str() {
        (Side::Received, &case.destination_country)
    } else {
        return None;
    };
    let applied: Vec<&TimelineEntry> = case
        .timeline
        .iter()
        .filter(|entry| entry.refused.is_empty())
        .collect();
    let notice_at = applied
        .iter()
        .find(|entry| entry.kind == "advance_notice")
        .and_then(|entry| entry.at.as_ref())
        .and_then(crate::clock::from_wire);
    let received_at = case.received_at.as_ref().and_then(crate::clock::from_wire);
    let arrival = case
        .agreed_arrival
        .as_ref()
        .and_then(|agreed| agreed.arrival.as_ref())
        .and_then(crate::clock::from_wire);
    Some(Counted {
        side,
        other: other.clone(),
        notice_month: notice_at.map(Month::of),
        received_month: received_at.map(Month::of),
        point: case
            .agreed_arrival
            .as_ref()
            .map(|agreed| agreed.point_of_entry.clone()),
        age: case.age_band(),
        sex: case.sex(),
        companionship: case.companionship(),
        concerns: concerns(&applied),
        outcome: outcome(case, &applied),
        notice_hours: notice_at
            .zip(arrival)
            .map(|(notice, arrival)| (arrival - notice).as_hours()),
        handoff: handoff(&applied),
        answers: answers(&applied),
        follow_ups: follow_ups(&applied, received_at, as_of),
    })
}

fn fact(entry: &TimelineEntry) -> Option<&Fact> {
    entry
        .facts
        .as_ref()
        .and_then(|facts| facts.payload.as_ref())
}

fn concerns(applied: &[&TimelineEntry]) -> Vec<ProtectionConcern> {
    applied
        .iter()
        .find_map(|entry| match fact(entry) {
            Some(Fact::AdvanceNotice(notice)) => Some(notice.protection_concerns().collect()),
            _ => None,
        })
        .unwrap_or_default()
}

fn outcome(case: &CaseView, applied: &[&TimelineEntry]) -> Outcome {
    let last = |wanted: &str| {
        applied
            .iter()
            .rev()
            .find(|entry| entry.kind == wanted)
            .and_then(|entry| fact(entry))
    };
    match case.state() {
        CaseState::Withdrawn => match last("case_withdrawal") {
            Some(Fact::CaseWithdrawal(withdrawal)) => Outcome::Withdrawn(withdrawal.reason()),
            _ => Outcome::Withdrawn(WithdrawalReason::Unspecified),
        },
        CaseState::Received | CaseState::FollowUp => match last("reception_confirmation") {
            Some(Fact::ReceptionConfirmation(reception)) => {
                Outcome::Received(reception.placement())
            }
            _ => Outcome::Received(Placement::Unspecified),
        },
        _ => Outcome::Open,
    }
}

fn handoff(applied: &[&TimelineEntry]) -> Option<(HandedOverTo, bool)> {
    let entry = applied.iter().find(|entry| entry.kind == "handoff_ack")?;
    let sender = entry.sender.as_ref()?;
    let to = if sender.role() != Role::Consulate {
        HandedOverTo::ChildProtection
    } else if sender.delegated_consulate_country.is_empty() {
        HandedOverTo::OwnConsulate
    } else {
        HandedOverTo::DelegatedConsulate
    };
    Some((to, !entry.flag.is_empty()))
}

fn answers(applied: &[&TimelineEntry]) -> Answers {
    let decisions: Vec<&Decision> = applied
        .iter()
        .filter_map(|entry| match fact(entry) {
            Some(Fact::ArrivalResponse(response)) => response.decision.as_ref(),
            _ => None,
        })
        .collect();
    let for_the_hour = |decision: &&Decision| {
        matches!(decision, Decision::Decline(decline)
            if decline.reason() == DeclineReason::OutsideReceptionHours)
    };
    match decisions.first() {
        None => Answers::None,
        Some(_) if decisions.iter().any(for_the_hour) => Answers::DeclinedForTheHour,
        Some(Decision::Accept(_)) => Answers::AcceptedFirst,
        Some(_) => Answers::DeclinedOrCountered,
    }
}

fn follow_ups(
    applied: &[&TimelineEntry],
    received_at: Option<jiff::Timestamp>,
    as_of: jiff::Timestamp,
) -> [(bool, bool); 3] {
    let done = |days: u32| {
        applied.iter().any(|entry| {
            matches!(fact(entry), Some(Fact::FollowUpReport(report)) if report.days_since_return == days)
        })
    };
    FOLLOW_UP_DAYS.map(|days| {
        let due = received_at.is_some_and(|received| {
            received + jiff::SignedDuration::from_hours(24 * i64::from(days)) <= as_of
        });
        let done = done(days);
        (due || done, done)
    })
}

/// A table of true counts, before disclosure control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// A stable name, e.g. `returned.age_sex`.
    pub name: String,
    /// What a cell counts, for a reader.
    pub title: String,
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// `counts[row][column]`.
    pub counts: Vec<Vec<u64>>,
    /// Whether row, column and grand totals are published: false when one
    /// child can be in several cells (protection concerns), where a total
    /// would not count children.
    pub margins: bool,
}

/// Counts keyed by labels, while cases are read.
#[derive(Default)]
struct Tally {
    cells: BTreeMap<(String, String), u64>,
}

impl Tally {
    fn add(&mut self, row: impl Into<String>, column: impl Into<String>) {
        *self.cells.entry((row.into(), column.into())).or_default() += 1;
    }
}

/// Where a table's row labels come from.
enum Rows {
    /// These, in this order (categories with a fixed list).
    Fixed(Vec<String>),
    /// The values seen, sorted (countries, points of entry, concerns).
    Seen,
    /// Every month of the period, so that an empty month reads 0.
    Months,
}

/// One table's definition: its labels and which cell a case adds to.
struct Definition {
    name: &'static str,
    title: &'static str,
    /// Its row labels.
    rows: Rows,
    /// Fixed column labels; when empty, the columns seen, sorted.
    columns: Vec<String>,
    margins: bool,
    /// The cells a case adds one to (none, one, or one per concern).
    cells: fn(&Counted, &Period) -> Vec<(String, String)>,
}

fn labels(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

const COMPANIONSHIP: [&str; 4] = ["unaccompanied", "separated", "with family", "not stated"];

fn companionship(value: Companionship) -> &'static str {
    match value {
        Companionship::Unaccompanied => COMPANIONSHIP[0],
        Companionship::Separated => COMPANIONSHIP[1],
        Companionship::WithFamily => COMPANIONSHIP[2],
        Companionship::Unspecified => COMPANIONSHIP[3],
    }
}

const AGE_BANDS: [&str; 5] = ["0-4", "5-11", "12-17", "18 or older", "not stated"];

fn age_band(value: AgeBand) -> &'static str {
    match value {
        AgeBand::UnderFive => AGE_BANDS[0],
        AgeBand::FiveToEleven => AGE_BANDS[1],
        AgeBand::TwelveToSeventeen => AGE_BANDS[2],
        AgeBand::Adult => AGE_BANDS[3],
        AgeBand::Unspecified => AGE_BANDS[4],
    }
}

/// The two bands published series use (0-11 and 12-17).
fn broad_age_band(value: AgeBand) -> &'static str {
    match value {
        AgeBand::UnderFive | AgeBand::FiveToEleven => "0-11",
        AgeBand::TwelveToSeventeen => "12-17",
        AgeBand::Adult | AgeBand::Unspecified => "other or not stated",
    }
}

const SEXES: [&str; 3] = ["female", "male", "unknown or not stated"];

fn sex(value: Sex) -> &'static str {
    match value {
        Sex::Female => SEXES[0],
        Sex::Male => SEXES[1],
        Sex::Unknown | Sex::Unspecified => SEXES[2],
    }
}

/// Hours-of-notice bands (the dev policies' minimum notice is 48 hours).
pub const NOTICE_BANDS: [&str; 5] = [
    "under 48 h",
    "48-71 h",
    "72-119 h",
    "120-239 h",
    "240 h or more",
];

fn notice_band(hours: i64) -> &'static str {
    match hours {
        ..48 => NOTICE_BANDS[0],
        48..72 => NOTICE_BANDS[1],
        72..120 => NOTICE_BANDS[2],
        120..240 => NOTICE_BANDS[3],
        _ => NOTICE_BANDS[4],
    }
}

const OUTCOMES: [&str; 9] = [
    "received: with family",
    "received: reception centre",
    "received: foster care",
    "received: other or not stated",
    "withdrawn: protection granted",
    "withdrawn: local integration",
    "withdrawn: best-interest decision",
    "withdrawn: other or not stated",
    "not concluded",
];

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Received(Placement::WithFamily) => OUTCOMES[0],
        Outcome::Received(Placement::ReceptionCentre) => OUTCOMES[1],
        Outcome::Received(Placement::FosterCare) => OUTCOMES[2],
        Outcome::Received(Placement::Unspecified) => OUTCOMES[3],
        Outcome::Withdrawn(WithdrawalReason::ProtectionGranted) => OUTCOMES[4],
        Outcome::Withdrawn(WithdrawalReason::LocalIntegration) => OUTCOMES[5],
        Outcome::Withdrawn(WithdrawalReason::BestInterestDecision) => OUTCOMES[6],
        Outcome::Withdrawn(_) => OUTCOMES[7],
        Outcome::Open => OUTCOMES[8],
    }
}

fn concern_label(concern: ProtectionConcern) -> String {
    concern
        .as_str_name()
        .trim_start_matches("PROTECTION_CONCERN_")
        .to_lowercase()
        .replace('_', " ")
}

/// Cells of a case notified in the period.
fn notified(case: &Counted, period: &Period, cell: (String, String)) -> Vec<(String, String)> {
    if case.notice_month.is_some_and(|month| period.holds(month)) {
        vec![cell]
    } else {
        Vec::new()
    }
}

/// Every table, in the order a report lists them.
fn definitions() -> Vec<Definition> {
    vec![
        Definition {
            name: "by_notice_month",
            title: "children by month of the advance notice and the other country",
            rows: Rows::Months,
            columns: Vec::new(),
            margins: true,
            cells: |case, period| match case.notice_month {
                Some(month) if period.holds(month) => vec![(month.to_string(), case.other.clone())],
                _ => Vec::new(),
            },
        },
        Definition {
            name: "by_reception_month",
            title: "children by month of reception and the other country",
            rows: Rows::Months,
            columns: Vec::new(),
            margins: true,
            cells: |case, period| match case.received_month {
                Some(month) if period.holds(month) => vec![(month.to_string(), case.other.clone())],
                _ => Vec::new(),
            },
        },
        Definition {
            name: "age_sex",
            title: "children by age band at the notice and sex",
            rows: Rows::Fixed(labels(&AGE_BANDS)),
            columns: labels(&SEXES),
            margins: true,
            cells: |case, period| {
                notified(
                    case,
                    period,
                    (age_band(case.age).into(), sex(case.sex).into()),
                )
            },
        },
        Definition {
            name: "age_companionship",
            title: "children by age group (0-11, 12-17) and companionship",
            rows: Rows::Fixed(labels(&["0-11", "12-17", "other or not stated"])),
            columns: labels(&COMPANIONSHIP),
            margins: true,
            cells: |case, period| {
                let cell = (
                    broad_age_band(case.age).into(),
                    companionship(case.companionship).into(),
                );
                notified(case, period, cell)
            },
        },
        Definition {
            name: "companionship_by_country",
            title: "children by the other country and companionship",
            rows: Rows::Seen,
            columns: labels(&COMPANIONSHIP),
            margins: true,
            cells: |case, period| {
                notified(
                    case,
                    period,
                    (case.other.clone(), companionship(case.companionship).into()),
                )
            },
        },
        Definition {
            name: "protection_concerns",
            title: "children with each protection concern, by companionship (a child with several concerns is in several rows: no totals)",
            rows: Rows::Seen,
            columns: labels(&COMPANIONSHIP),
            margins: false,
            cells: |case, period| {
                case.concerns
                    .iter()
                    .filter(|concern| **concern != ProtectionConcern::Unspecified)
                    .flat_map(|concern| {
                        let cell = (
                            concern_label(*concern),
                            companionship(case.companionship).into(),
                        );
                        notified(case, period, cell)
                    })
                    .collect()
            },
        },
        Definition {
            name: "point_of_entry",
            title: "children with an agreed arrival by point of entry and age group",
            rows: Rows::Seen,
            columns: labels(&["0-11", "12-17", "other or not stated"]),
            margins: true,
            cells: |case, period| match &case.point {
                Some(point) => notified(
                    case,
                    period,
                    (point.clone(), broad_age_band(case.age).into()),
                ),
                None => Vec::new(),
            },
        },
        Definition {
            name: "outcomes",
            title: "children by outcome and the other country",
            rows: Rows::Fixed(labels(&OUTCOMES)),
            columns: Vec::new(),
            margins: true,
            cells: |case, period| {
                notified(
                    case,
                    period,
                    (outcome_label(case.outcome).into(), case.other.clone()),
                )
            },
        },
        Definition {
            name: "hours_of_notice",
            title: "children with an agreed arrival by hours from the notice to the arrival, and companionship",
            rows: Rows::Fixed(labels(&NOTICE_BANDS)),
            columns: labels(&COMPANIONSHIP),
            margins: true,
            cells: |case, period| match case.notice_hours {
                Some(hours) => {
                    let cell = (
                        notice_band(hours).into(),
                        companionship(case.companionship).into(),
                    );
                    notified(case, period, cell)
                }
                None => Vec::new(),
            },
        },
        Definition {
            name: "handoff_on_time",
            title: "children handed over by point of entry: on time, or flagged late after the agreed arrival",
            rows: Rows::Seen,
            columns: labels(&["on time", "late"]),
            margins: true,
            cells: |case, period| match (&case.point, case.handoff) {
                (Some(point), Some((_, late))) => {
                    let column = if late { "late" } else { "on time" };
                    notified(case, period, (point.clone(), column.into()))
                }
                _ => Vec::new(),
            },
        },
        Definition {
            name: "handoff_by",
            title: "children handed over by the other country and who acknowledged the handoff",
            rows: Rows::Seen,
            columns: labels(&["own consulate", "delegated consulate", "child protection"]),
            margins: true,
            cells: |case, period| match case.handoff {
                Some((to, _)) => {
                    let column = match to {
                        HandedOverTo::OwnConsulate => "own consulate",
                        HandedOverTo::DelegatedConsulate => "delegated consulate",
                        HandedOverTo::ChildProtection => "child protection",
                    };
                    notified(case, period, (case.other.clone(), column.into()))
                }
                None => Vec::new(),
            },
        },
        Definition {
            name: "arrival_answers",
            title: "children by the other country and how their arrival proposals were answered",
            rows: Rows::Seen,
            columns: labels(&[
                "declined for the reception hours",
                "declined or countered otherwise",
                "accepted first",
                "not answered",
            ]),
            margins: true,
            cells: |case, period| {
                let column = match case.answers {
                    Answers::DeclinedForTheHour => "declined for the reception hours",
                    Answers::DeclinedOrCountered => "declined or countered otherwise",
                    Answers::AcceptedFirst => "accepted first",
                    Answers::None => "not answered",
                };
                notified(case, period, (case.other.clone(), column.into()))
            },
        },
        Definition {
            name: "follow_ups",
            title: "follow-ups due by the report's date, done or not, per milestone",
            rows: Rows::Fixed(labels(&["30 days", "90 days", "180 days"])),
            columns: labels(&["done", "due, not done"]),
            margins: true,
            cells: |case, period| {
                let milestones = ["30 days", "90 days", "180 days"];
                milestones
                    .iter()
                    .zip(case.follow_ups)
                    .filter(|(_, (due, _))| *due)
                    .flat_map(|(row, (_, done))| {
                        let column = if done { "done" } else { "due, not done" };
                        notified(case, period, ((*row).into(), column.into()))
                    })
                    .collect()
            },
        },
    ]
}

/// The tables of `period` over `cases`, both sides, with true counts.
pub struct Figures {
    period: Period,
    definitions: Vec<Definition>,
    /// `tallies[side][definition]`.
    tallies: [Vec<Tally>; 2],
}

impl Figures {
    /// Empty figures for `period`.
    pub fn new(period: Period) -> Figures {
        let definitions = definitions();
        let empty = || definitions.iter().map(|_| Tally::default()).collect();
        Figures {
            period,
            tallies: [empty(), empty()],
            definitions,
        }
    }

    /// Counts one case.
    pub fn add(&mut self, case: &Counted) {
        let side = match case.side {
            Side::Returned => 0,
            Side::Received => 1,
        };
        for (definition, tally) in self.definitions.iter().zip(&mut self.tallies[side]) {
            for (row, column) in (definition.cells)(case, &self.period) {
                tally.add(row, column);
            }
        }
    }

    /// The tables, returned side first.
    pub fn tables(&self) -> Vec<Table> {
        let mut tables = Vec::new();
        for (side, tallies) in [Side::Returned, Side::Received].iter().zip(&self.tallies) {
            for (definition, tally) in self.definitions.iter().zip(tallies) {
                tables.push(table(*side, definition, tally, &self.period));
            }
        }
        tables
    }
}

fn table(side: Side, definition: &Definition, tally: &Tally, period: &Period) -> Table {
    let seen = |pick: fn(&(String, String)) -> &String| {
        let mut seen: Vec<String> = tally.cells.keys().map(pick).cloned().collect();
        seen.sort();
        seen.dedup();
        seen
    };
    let rows = match &definition.rows {
        Rows::Fixed(rows) => rows.clone(),
        Rows::Seen => seen(|(row, _)| row),
        Rows::Months => period.months().iter().map(Month::to_string).collect(),
    };
    let columns = if definition.columns.is_empty() {
        seen(|(_, column)| column)
    } else {
        definition.columns.clone()
    };
    let counts = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|column| {
                    let key = (row.clone(), column.clone());
                    tally.cells.get(&key).copied().unwrap_or(0)
                })
                .collect()
        })
        .collect();
    Table {
        name: format!("{}.{}", side.name(), definition.name),
        title: format!("{}: {}", side.name(), definition.title),
        rows,
        columns,
        counts,
        margins: definition.margins,
    }
}
