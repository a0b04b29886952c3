//! Regional statistics: figures that can leave the country without exposing a child.
//!
//! A gateway counts its cases into tables ([`figures`]), withholds what
//! could point at a child ([`disclosure`]), and signs the result as a
//! country report that the regional root alone verifies ([`report`]). The
//! Conference's secretariat merges the countries' reports into one regional
//! picture, applying the same disclosure control again ([`merge`]), with
//! charts. A report holds tables only, never a case.
//!
//! # Layout
//! - [`figures`]: what statistics read of a case ([`figures::counted`]), and the tables.
//! - [`disclosure`]: the threshold rule, primary and secondary suppression, rounding.
//! - [`report`]: the signed country report, its CSVs, and its verification.
//! - [`merge`]: the regional merge.
//! - [`charts`]: the regional charts as SVG.
//! - [`page`]: the regional merge's self-contained HTML page.

pub mod charts;
pub mod disclosure;
pub mod figures;
pub mod merge;
pub mod page;
pub mod report;

use std::path::{Path, PathBuf};

use crate::{
    audit::Record,
    config::Config,
    country::Country,
    store::{Store, StoreError},
};

pub use disclosure::{Method, MinCell, Published, Rule};
pub use figures::{Month, Period, Table};

/// The tables of `period` over every case `store` holds for `here`, with
/// follow-ups due by `as_of`, before disclosure control. Cases are read one
/// at a time: memory does not grow with their number.
pub fn tables(
    store: &Store,
    here: Country,
    period: Period,
    as_of: jiff::Timestamp,
) -> Result<Vec<Table>, StoreError> {
    let mut figures = figures::Figures::new(period);
    for case in store.cases() {
        if let Some(counted) = figures::counted(&case?, here, as_of) {
            figures.add(&counted);
        }
    }
    Ok(figures.tables())
}

/// This gateway's tables for `period` as they may leave it under `rule`.
pub fn published(
    store: &Store,
    here: Country,
    period: Period,
    rule: Rule,
    as_of: jiff::Timestamp,
) -> Result<Vec<Published>, StoreError> {
    Ok(tables(store, here, period, as_of)?
        .iter()
        .map(|table| disclosure::publish(table, rule))
        .collect())
}

/// The body of `here`'s report for `period`, made at `as_of`.
pub fn report_body(
    here: Country,
    period: Period,
    rule: Rule,
    as_of: jiff::Timestamp,
    tables: Vec<Published>,
) -> report::Body {
    report::Body {
        format: report::FORMAT.to_owned(),
        country: here.to_string(),
        from: period.from.to_string(),
        to: period.to.to_string(),
        generated_at: as_of.to_string(),
        rule,
        tables,
    }
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StatisticsError {
    /// The store could not be opened or read.
    #[error(
        "{error}{hint}",
        error = .0,
        hint = if .0.held_by_a_running_gateway() { " (stop the gateway first: its database is open)" } else { "" }
    )]
    Store(#[from] StoreError),
    /// The certificates could not be loaded.
    #[error("{0}")]
    Credentials(String),
    /// The report could not be signed or written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
}

/// Makes, signs and writes the report of the stopped gateway `config`
/// describes for `period`, with its CSVs; returns the CSV files. A
/// `min_cell` below the default is written to the audit log first, and
/// flushed, so that no report with a lowered k exists without its entry.
pub async fn write_report(
    config: &Config,
    period: Period,
    out: &Path,
) -> Result<Vec<PathBuf>, StatisticsError> {
    let credentials = crate::tls::Credentials::load_with_delegations(
        config.country,
        &config.tls,
        &config.delegations,
    )
    .map_err(|e| StatisticsError::Credentials(e.to_string()))?;
    let store = crate::storage::open(&config.data_dir, &config.storage, config.country)?;
    let rule = config.statistics;
    if rule.min_cell.lowered() {
        let who = format!("operator:stats-report:{}", config.country);
        store.audit(&[Record::min_cell_lowered(&who, rule.min_cell.get())])?;
        store.commit().await?;
    }
    let now = jiff::Timestamp::now();
    let tables = published(&store, config.country, period, rule, now)?;
    let body = report_body(config.country, period, rule, now, tables);
    let signed = report::sign(body, &credentials.sealer())?;
    Ok(report::write(&signed, out)?)
}

/// Why an Agency API request for statistics names no period.
#[derive(Debug, thiserror::Error)]
pub enum BadPeriod {
    /// A month does not read.
    #[error("{field}: {source}")]
    Month {
        /// `from` or `to`.
        field: &'static str,
        /// Why.
        source: figures::BadMonth,
    },
    /// The period runs backwards.
    #[error("to: {0}")]
    Backward(#[from] figures::BackwardPeriod),
}

/// The period an Agency API request asks for.
pub fn requested_period(
    request: &retorno_proto::v1::StatisticsRequest,
) -> Result<Period, BadPeriod> {
    let month = |field: &'static str, text: &str| {
        text.parse::<Month>()
            .map_err(|source| BadPeriod::Month { field, source })
    };
    Ok(Period::new(
        month("from", &request.from)?,
        month("to", &request.to)?,
    )?)
}

/// The Agency API's answer: `here`'s tables for `period` under `rule`.
pub fn answer(
    store: &Store,
    here: Country,
    period: Period,
    rule: Rule,
    as_of: jiff::Timestamp,
) -> Result<retorno_proto::v1::StatisticsResponse, StoreError> {
    use retorno_proto::v1::{Figure, StatisticsResponse, StatisticsRow, StatisticsTable};
    let figure = |value: &Option<u64>| Figure {
        withheld: value.is_none(),
        count: value.unwrap_or(0),
    };
    let row = |values: &[Option<u64>]| StatisticsRow {
        figures: values.iter().map(figure).collect(),
    };
    let tables = published(store, here, period, rule, as_of)?
        .into_iter()
        .map(|table| StatisticsTable {
            cells: table.cells.iter().map(|cells| row(cells)).collect(),
            row_totals: Some(row(&table.row_totals)),
            column_totals: Some(row(&table.column_totals)),
            total: table.margins.then(|| figure(&table.total)),
            margins: table.margins,
            name: table.name,
            title: table.title,
            rows: table.rows,
            columns: table.columns,
        })
        .collect();
    Ok(StatisticsResponse {
        country: here.to_string(),
        from: period.from.to_string(),
        to: period.to.to_string(),
        min_cell: rule.min_cell.get(),
        tables,
    })
}

#[cfg(test)]
mod tests {
    //! A population written through the store's real write path (the Peer
    //! API's `receive_all` transaction, which runs the case engine), counted
    //! and compared with what the generator knows to be true.

    use std::{
        collections::{BTreeMap, BTreeSet},
        sync::RwLock,
    };

    use retorno_proto::v1::{
        self, ArrivalProposal, ArrivalResponse, EnvelopeBody, Sender, arrival_response,
        envelope_body::Payload,
    };

    use super::{figures::Side, *};
    use crate::{
        case::{Rules, Step},
        clock::Clock,
        config::Storage,
        identity::Role,
        policy,
        store::Arrival,
    };

    /// A deterministic generator (no seed file, the same population every run).
    struct Draw(u64);

    impl Draw {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// What the generator made one case into, in the labels a report uses.
    struct Truth {
        month: String,
        other: String,
        age: &'static str,
        sex: &'static str,
        companionship: &'static str,
        outcome: &'static str,
        follow_up: Option<bool>,
    }

    fn wire(at: jiff::Timestamp) -> pbjson_types::Timestamp {
        pbjson_types::Timestamp {
            seconds: at.as_second(),
            nanos: 0,
        }
    }

    fn hours(n: i64) -> jiff::SignedDuration {
        jiff::SignedDuration::from_hours(n)
    }

    /// One step: sent by `sender` (country, role) at `at`.
    struct Planned {
        case_id: String,
        sender: (Country, Role),
        recipient: Country,
        at: jiff::Timestamp,
        payload: Payload,
    }

    fn point_of(country: Country) -> (String, String) {
        let point = &policy::dev_points(country)[0];
        (point.code.clone(), point.time_zone.clone())
    }

    /// 10:00 local at `point`'s zone, `days` after `from`, moved off Sunday.
    fn arrival_after(from: jiff::Timestamp, days: i64, time_zone: &str) -> jiff::Timestamp {
        let tz = jiff::tz::TimeZone::get(time_zone).unwrap();
        let mut date = (from + hours(24 * days))
            .to_zoned_datetime(tz.clone())
            .date();
        if date.weekday() == jiff::civil::Weekday::Sunday {
            date = date.tomorrow().unwrap();
        }
        date.at(10, 0, 0, 0)
            .to_zoned_datetime(tz)
            .unwrap()
            .timestamp()
    }

    /// Plans case `index` and says what it is.
    fn plan(index: usize, draw: &mut Draw, steps: &mut Vec<Planned>) -> Truth {
        let mx: Country = "MX".parse().unwrap();
        let others: [Country; 3] = [
            "GT".parse().unwrap(),
            "HN".parse().unwrap(),
            "SV".parse().unwrap(),
        ];
        // Few cases with SV, so that its cells are small and withheld.
        let other = others[match draw.below(100) {
            0..49 => 0,
            49..98 => 1,
            _ => 2,
        }];
        let returned = draw.below(2) == 0;
        let (destination, origin) = if returned { (mx, other) } else { (other, mx) };
        let case_id = format!("{destination}-2026-{index:05}");
        let month = draw.below(12) as i8 + 1;
        let notice_at: jiff::Timestamp = jiff::civil::date(2026, month, draw.below(28) as i8 + 1)
            .at(12, 0, 0, 0)
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp();
        let age = draw.below(18) as i32;
        let age_label = match age {
            0..=4 => "0-4",
            5..=11 => "5-11",
            _ => "12-17",
        };
        let (sex, sex_label) = match draw.below(3) {
            0 => (v1::Sex::Female, "female"),
            1 => (v1::Sex::Male, "male"),
            _ => (v1::Sex::Unknown, "unknown or not stated"),
        };
        let (companionship, companionship_label) = match draw.below(3) {
            0 => (v1::Companionship::Unaccompanied, "unaccompanied"),
            1 => (v1::Companionship::Separated, "separated"),
            _ => (v1::Companionship::WithFamily, "with family"),
        };
        let child = v1::Child {
            age: Some(if draw.below(2) == 0 {
                v1::child::Age::BirthDate(v1::Date {
                    year: 2026 - age,
                    month: 1,
                    day: 1,
                })
            } else {
                v1::child::Age::EstimatedAgeYears(age as u32)
            }),
            sex: sex as i32,
            ..v1::Child::default()
        };
        let notice = v1::AdvanceNotice {
            child: Some(child),
            companionship: companionship as i32,
            best_interest: Some(v1::BestInterestDetermination {
                authority_kind: v1::DeterminingAuthority::ChildProtection as i32,
                outcome: v1::BestInterestOutcome::Return as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut step = |sender: (Country, Role), at: jiff::Timestamp, payload: Payload| {
            let recipient = if sender.0 == destination {
                origin
            } else {
                destination
            };
            steps.push(Planned {
                case_id: case_id.clone(),
                sender,
                recipient,
                at,
                payload,
            });
        };
        step(
            (destination, Role::DestinationAuthority),
            notice_at,
            Payload::AdvanceNotice(notice),
        );
        let mut truth = Truth {
            month: format!("2026-{month:02}"),
            other: if returned { origin } else { destination }.to_string(),
            age: age_label,
            sex: sex_label,
            companionship: companionship_label,
            outcome: "not concluded",
            follow_up: None,
        };
        let path = draw.below(10);
        if path == 0 {
            return truth;
        }
        if path == 1 {
            let (reason, label) = match draw.below(2) {
                0 => (
                    v1::WithdrawalReason::ProtectionGranted,
                    "withdrawn: protection granted",
                ),
                _ => (
                    v1::WithdrawalReason::LocalIntegration,
                    "withdrawn: local integration",
                ),
            };
            let withdrawal = v1::CaseWithdrawal {
                reason: reason as i32,
                text: String::new(),
            };
            step(
                (destination, Role::DestinationAuthority),
                notice_at + hours(2),
                Payload::CaseWithdrawal(withdrawal),
            );
            truth.outcome = label;
            return truth;
        }
        let (point, time_zone) = point_of(origin);
        let arrival = arrival_after(notice_at, 3 + draw.below(12) as i64, &time_zone);
        let proposal = |id: &str| {
            Payload::ArrivalProposal(ArrivalProposal {
                proposal_id: id.into(),
                case_ids: vec![case_id.clone()],
                point_of_entry: point.clone(),
                arrival: Some(wire(arrival)),
                time_zone: time_zone.clone(),
                escort_officers: vec![v1::Officer {
                    name: "escort".into(),
                    institution: "INM".into(),
                }],
                ..Default::default()
            })
        };
        let answer = |id: &str, decision| {
            Payload::ArrivalResponse(ArrivalResponse {
                proposal_id: id.into(),
                decision: Some(decision),
            })
        };
        let (first, second) = (proposal("P1"), proposal("P2"));
        step(
            (destination, Role::DestinationAuthority),
            notice_at + hours(1),
            first,
        );
        if path == 2 {
            let decline = arrival_response::Decision::Decline(arrival_response::Decline {
                reason: v1::DeclineReason::OutsideReceptionHours as i32,
                text: String::new(),
            });
            step(
                (origin, Role::ChildProtection),
                notice_at + hours(2),
                answer("P1", decline),
            );
            step(
                (destination, Role::DestinationAuthority),
                notice_at + hours(3),
                second,
            );
            step(
                (origin, Role::ChildProtection),
                notice_at + hours(4),
                answer(
                    "P2",
                    arrival_response::Decision::Accept(arrival_response::Accept {}),
                ),
            );
        } else {
            step(
                (origin, Role::ChildProtection),
                notice_at + hours(2),
                answer(
                    "P1",
                    arrival_response::Decision::Accept(arrival_response::Accept {}),
                ),
            );
        }
        let handed_over = arrival + hours(1);
        let by = if draw.below(2) == 0 {
            Role::Consulate
        } else {
            Role::ChildProtection
        };
        step(
            (origin, by),
            handed_over,
            Payload::HandoffAck(v1::HandoffAck {
                case_ids: vec![case_id.clone()],
                point_of_entry: point.clone(),
                ..Default::default()
            }),
        );
        let (placement, label) = match draw.below(4) {
            0 => (v1::Placement::WithFamily, "received: with family"),
            1 => (v1::Placement::ReceptionCentre, "received: reception centre"),
            2 => (v1::Placement::FosterCare, "received: foster care"),
            _ => (v1::Placement::Unspecified, "received: other or not stated"),
        };
        let received = handed_over + hours(2);
        step(
            (origin, Role::ChildProtection),
            received,
            Payload::ReceptionConfirmation(v1::ReceptionConfirmation {
                placement: placement as i32,
                ..Default::default()
            }),
        );
        truth.outcome = label;
        let followed = draw.below(2) == 0;
        if followed {
            step(
                (origin, Role::ChildProtection),
                received + hours(24 * 30),
                Payload::FollowUpReport(v1::FollowUpReport {
                    days_since_return: 30,
                    ..Default::default()
                }),
            );
        }
        truth.follow_up = Some(followed);
        truth
    }

    fn rules() -> Rules {
        let policy = |code: &str| {
            let country: Country = code.parse().unwrap();
            (
                country,
                policy::published(country, &policy::dev_points(country)).unwrap(),
            )
        };
        Rules {
            country: "MX".parse().unwrap(),
            relaxed_best_interest: BTreeSet::new(),
            own_policy: policy("MX").1,
            peer_policies: RwLock::new(["GT", "HN", "SV"].iter().map(|c| policy(c)).collect()),
            clock: Clock::system(),
        }
    }

    /// Writes every planned step through `receive_all`, a batch at a time;
    /// every one must be applied, or the generator's truth would be wrong.
    fn write(store: &Store, rules: &Rules, steps: &[Planned]) {
        for batch in steps.chunks(256) {
            let bodies: Vec<EnvelopeBody> = batch
                .iter()
                .map(|planned| EnvelopeBody {
                    message_id: uuid::Uuid::now_v7().to_string(),
                    case_id: planned.case_id.clone(),
                    sender: Some(Sender {
                        country: planned.sender.0.to_string(),
                        agency: "A".into(),
                        role: planned.sender.1.to_proto() as i32,
                        delegated_consulate_country: String::new(),
                        ..Default::default()
                    }),
                    created_at: Some(wire(planned.at)),
                    payload: Some(planned.payload.clone()),
                    ..Default::default()
                })
                .collect();
            let ids: Vec<uuid::Uuid> = bodies.iter().map(|_| uuid::Uuid::now_v7()).collect();
            let arrivals: Vec<Arrival<'_>> = batch
                .iter()
                .zip(&ids)
                .map(|(planned, id)| Arrival {
                    sender: planned.sender.0,
                    id: *id,
                    case_id: &planned.case_id,
                    kind: crate::case::Kind::of(&planned.payload).name(),
                    envelope: b"envelope",
                    body_sha256: b"sha",
                    sequence: 0,
                    official: "",
                })
                .collect();
            let refused = RwLock::new(Vec::new());
            store
                .receive_all(
                    &arrivals,
                    |index, tx| {
                        let planned = &batch[index];
                        let step = Step {
                            body: &bodies[index],
                            payload: &planned.payload,
                            sender: planned.sender.0,
                            role: planned.sender.1,
                            recipient: planned.recipient,
                            now: planned.at,
                        };
                        Ok(match rules.apply(tx, &step)? {
                            Ok(_) => None,
                            Err(refusal) => {
                                refused
                                    .write()
                                    .unwrap()
                                    .push(format!("{}: {}", planned.case_id, refusal.message));
                                Some(refusal.message)
                            }
                        })
                    },
                    |_, _, _| Vec::new(),
                    |_| Ok(()),
                )
                .unwrap();
            let refused = refused.into_inner().unwrap();
            assert!(
                refused.is_empty(),
                "the generator planned steps the rules refuse: {refused:?}"
            );
        }
    }

    /// The true count per (table, row, column) of MX's returned and received children.
    fn true_counts(truths: &[(Side, Truth)]) -> BTreeMap<(String, String, String), u64> {
        let mut counts = BTreeMap::new();
        for (side, truth) in truths {
            let mut add = |table: &str, row: &str, column: &str| {
                *counts
                    .entry((
                        format!("{}.{table}", side.name()),
                        row.to_owned(),
                        column.to_owned(),
                    ))
                    .or_insert(0) += 1;
            };
            add("by_notice_month", &truth.month, &truth.other);
            add("age_sex", truth.age, truth.sex);
            add(
                "companionship_by_country",
                &truth.other,
                truth.companionship,
            );
            add("outcomes", truth.outcome, &truth.other);
            if let Some(done) = truth.follow_up {
                add(
                    "follow_ups",
                    "30 days",
                    if done { "done" } else { "due, not done" },
                );
                // Only the 30-day report is ever sent; the others are due by `as_of`.
                add("follow_ups", "90 days", "due, not done");
                add("follow_ups", "180 days", "due, not done");
            }
        }
        counts
    }

    #[tokio::test]
    async fn a_generated_population_gives_its_true_counts_where_published() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Storage::default()).unwrap();
        let mut draw = Draw(12);
        let mut steps = Vec::new();
        let truths: Vec<(Side, Truth)> = (0..2400)
            .map(|index| {
                let truth = plan(index, &mut draw, &mut steps);
                let side = if steps
                    .iter()
                    .rev()
                    .find(|s| matches!(s.payload, Payload::AdvanceNotice(_)))
                    .is_some_and(|s| s.sender.0.as_str() == "MX")
                {
                    Side::Returned
                } else {
                    Side::Received
                };
                (side, truth)
            })
            .collect();
        write(&store, &rules(), &steps);
        let period = Period::new("2026-01".parse().unwrap(), "2026-12".parse().unwrap()).unwrap();
        let as_of: jiff::Timestamp = "2027-12-31T00:00:00Z".parse().unwrap();
        let rule = Rule::default();
        let tables = published(&store, "MX".parse().unwrap(), period, rule, as_of).unwrap();
        let truth = true_counts(&truths);
        let mut checked = 0;
        let mut withheld = 0;
        for table in tables
            .iter()
            .filter(|t| truth.keys().any(|(name, _, _)| *name == t.name))
        {
            let count = |row: Option<&str>, column: Option<&str>| -> u64 {
                truth
                    .iter()
                    .filter(|((name, r, c), _)| {
                        *name == table.name
                            && row.is_none_or(|row| row == r)
                            && column.is_none_or(|column| column == c)
                    })
                    .map(|(_, n)| *n)
                    .sum()
            };
            for (r, row) in table.rows.iter().enumerate() {
                for (c, column) in table.columns.iter().enumerate() {
                    match table.cells[r][c] {
                        Some(value) => {
                            assert_eq!(
                                value,
                                count(Some(row), Some(column)),
                                "{} [{row}, {column}]",
                                table.name
                            );
                            checked += 1;
                        }
                        None => withheld += 1,
                    }
                }
                if let Some(Some(total)) = table.row_totals.get(r) {
                    assert_eq!(
                        *total,
                        count(Some(row), None),
                        "{} row total {row}",
                        table.name
                    );
                }
            }
            for (c, column) in table.columns.iter().enumerate() {
                if let Some(Some(total)) = table.column_totals.get(c) {
                    assert_eq!(
                        *total,
                        count(None, Some(column)),
                        "{} column total {column}",
                        table.name
                    );
                }
            }
            assert_eq!(
                table.total,
                Some(count(None, None)),
                "{}: the grand total is published and true",
                table.name
            );
        }
        assert!(checked > 100, "{checked} cells checked");
        assert!(withheld > 0, "the population has small cells to withhold");
        let returned = truths
            .iter()
            .filter(|(side, _)| *side == Side::Returned)
            .count() as u64;
        let by_month = tables
            .iter()
            .find(|t| t.name == "returned.by_notice_month")
            .unwrap();
        assert_eq!(by_month.total, Some(returned));
    }
}
