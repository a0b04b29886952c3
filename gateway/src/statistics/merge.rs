//! The regional merge: the countries' signed reports added into one picture.
//!
//! Every report is verified with the regional root first; two reports of one
//! country, or reports of different periods, are refused. A cross-border
//! return is in two reports: the returning country's (`returned.*` tables)
//! and the child's country's (`received.*`). Both gateways of a case hold the
//! same record, so the merge adds the `returned.*` tables only, and each
//! return is counted once, by the country that returned the child. A figure
//! withheld in any report is withheld in the sum; the sums then go through
//! the same [`disclosure::protect`] as a country's tables.

use std::{collections::BTreeMap, path::Path};

use rustls_pki_types::CertificateDer;

use super::{
    disclosure::{self, Grid, Method, Published, Rule},
    report::{self, Report, ReportError},
};
use crate::country::Country;

/// The prefix of the tables the merge adds: the returning country's side.
pub const MERGED_SIDE: &str = "returned.";

/// The derived table of children returned per month by each reporting country.
pub const BY_COUNTRY_AND_MONTH: &str = "returned.by_month_and_returning_country";

/// Why a merge was refused.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A report does not verify.
    #[error("{file}: {source}")]
    Report {
        /// The report's file.
        file: String,
        /// Why.
        source: ReportError,
    },
    /// Two reports of one country.
    #[error(
        "{first} and {second} are both reports of {country} for {period}: a country is counted once; give one"
    )]
    Duplicate {
        /// The country.
        country: Country,
        /// Its period.
        period: String,
        /// The first file.
        first: String,
        /// The second.
        second: String,
    },
    /// Reports of different periods.
    #[error("{file} covers {found}, the others {expected}: merge reports of one period")]
    Period {
        /// The odd report.
        file: String,
        /// Its period.
        found: String,
        /// The first report's.
        expected: String,
    },
    /// Nothing to merge.
    #[error("no reports given")]
    Empty,
}

/// The merged tables and what they were made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The reporting countries, in order.
    pub countries: Vec<Country>,
    /// `from` and `to`.
    pub period: (String, String),
    /// The rule the sums were published under.
    pub rule: Rule,
    /// The tables.
    pub tables: Vec<Published>,
}

/// Verifies and merges `reports` (each with the name of its file).
pub fn merge(
    reports: &[(String, Report)],
    roots: &[CertificateDer<'_>],
) -> Result<Merged, MergeError> {
    let (_, first) = reports.first().ok_or(MergeError::Empty)?;
    let period = (first.body.from.clone(), first.body.to.clone());
    let mut seen: BTreeMap<Country, &str> = BTreeMap::new();
    for (file, report) in reports {
        let country = report::verify(report, roots).map_err(|source| MergeError::Report {
            file: file.clone(),
            source,
        })?;
        let found = (report.body.from.clone(), report.body.to.clone());
        if found != period {
            return Err(MergeError::Period {
                file: file.clone(),
                found: format!("{} to {}", found.0, found.1),
                expected: format!("{} to {}", period.0, period.1),
            });
        }
        if let Some(earlier) = seen.insert(country, file) {
            return Err(MergeError::Duplicate {
                country,
                period: format!("{} to {}", period.0, period.1),
                first: earlier.to_owned(),
                second: file.clone(),
            });
        }
    }
    let bodies: Vec<&report::Body> = reports.iter().map(|(_, report)| &report.body).collect();
    let rule = strictest(&bodies);
    let mut tables: Vec<Published> = names(&bodies)
        .iter()
        .map(|name| disclosure::protect(sum(&bodies, name), rule))
        .zip(names(&bodies))
        .map(|(grid, name)| labelled(&bodies, &name, &grid))
        .collect();
    tables.insert(0, by_country_and_month(&bodies, rule));
    Ok(Merged {
        countries: seen.into_keys().collect(),
        period,
        rule,
        tables,
    })
}

/// The largest k of the reports; rounding if any report rounded.
fn strictest(bodies: &[&report::Body]) -> Rule {
    let k = bodies
        .iter()
        .map(|body| body.rule.min_cell)
        .max_by_key(|k| k.get())
        .unwrap_or_default();
    let method = if bodies.iter().any(|body| body.rule.method == Method::Round) {
        Method::Round
    } else {
        Method::Suppress
    };
    Rule {
        min_cell: k,
        method,
    }
}

/// The names of the tables merged, in the first report's order.
fn names(bodies: &[&report::Body]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for table in bodies.iter().flat_map(|body| &body.tables) {
        if table.name.starts_with(MERGED_SIDE) && !names.contains(&table.name) {
            names.push(table.name.clone());
        }
    }
    names
}

/// Labels in first-seen order over every report's copy of a table.
fn union(copies: &[&Published], pick: fn(&Published) -> &Vec<String>) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for label in copies.iter().flat_map(|table| pick(table)) {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    labels
}

fn copies<'a>(bodies: &[&'a report::Body], name: &str) -> Vec<&'a Published> {
    bodies
        .iter()
        .filter_map(|body| body.tables.iter().find(|table| table.name == name))
        .collect()
}

/// Adds figures: withheld if any is; a label a report lacks counts zero there.
fn add(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.sum()
}

/// One report's figure at (row label, column label) of its grid; `Some(0)` if it has neither.
fn figure(table: &Published, grid: &Grid, row: Option<&str>, column: Option<&str>) -> Option<u64> {
    let find = |labels: &[String], wanted: Option<&str>, total: usize| match wanted {
        Some(label) => labels.iter().position(|l| l == label),
        None => Some(total),
    };
    let (Some(r), Some(c)) = (
        find(&table.rows, row, table.rows.len()),
        find(&table.columns, column, table.columns.len()),
    ) else {
        return Some(0);
    };
    grid.values
        .get(r)
        .and_then(|line| line.get(c))
        .copied()
        .unwrap_or(Some(0))
}

/// The summed grid of table `name` (totals last when it has margins).
fn sum(bodies: &[&report::Body], name: &str) -> Grid {
    let copies = copies(bodies, name);
    let rows = union(&copies, |table| &table.rows);
    let columns = union(&copies, |table| &table.columns);
    let margins = copies.iter().all(|table| table.margins);
    let grids: Vec<Grid> = copies
        .iter()
        .map(|table| Grid::of_published(table))
        .collect();
    let extra = usize::from(margins);
    let row_labels: Vec<Option<&str>> = rows
        .iter()
        .map(|label| Some(label.as_str()))
        .chain(std::iter::repeat_n(None, extra))
        .collect();
    let column_labels: Vec<Option<&str>> = columns
        .iter()
        .map(|label| Some(label.as_str()))
        .chain(std::iter::repeat_n(None, extra))
        .collect();
    let values = row_labels
        .iter()
        .map(|row| {
            column_labels
                .iter()
                .map(|column| {
                    add(copies
                        .iter()
                        .zip(&grids)
                        .map(|(table, grid)| figure(table, grid, *row, *column)))
                })
                .collect()
        })
        .collect();
    Grid { values, margins }
}

fn labelled(bodies: &[&report::Body], name: &str, grid: &Grid) -> Published {
    let copies = copies(bodies, name);
    let rows = union(&copies, |table| &table.rows);
    let columns = union(&copies, |table| &table.columns);
    let title = copies
        .first()
        .map(|table| format!("{} (all reporting countries)", table.title))
        .unwrap_or_default();
    grid.publish(name, &title, &rows, &columns)
}

/// Children returned per month (rows) by each reporting country (columns),
/// from each report's month totals.
fn by_country_and_month(bodies: &[&report::Body], rule: Rule) -> Published {
    let name = format!("{MERGED_SIDE}by_notice_month");
    let months = union(&copies(bodies, &name), |table| &table.rows);
    let columns: Vec<String> = bodies.iter().map(|body| body.country.clone()).collect();
    let month_totals: Vec<Vec<Option<u64>>> = bodies
        .iter()
        .map(|body| {
            let table = body.tables.iter().find(|table| table.name == name);
            months
                .iter()
                .map(|month| match table {
                    Some(table) => {
                        let grid = Grid::of_published(table);
                        figure(table, &grid, Some(month), None)
                    }
                    None => Some(0),
                })
                .collect()
        })
        .collect();
    let mut values: Vec<Vec<Option<u64>>> = (0..months.len())
        .map(|m| {
            let mut row: Vec<Option<u64>> = month_totals.iter().map(|totals| totals[m]).collect();
            row.push(add(row.iter().copied()));
            row
        })
        .collect();
    let width = columns.len() + 1;
    let totals = (0..width)
        .map(|c| add(values.iter().map(|row| row[c])))
        .collect();
    values.push(totals);
    let grid = disclosure::protect(
        Grid {
            values,
            margins: true,
        },
        rule,
    );
    grid.publish(
        BY_COUNTRY_AND_MONTH,
        "returned: children by month of the advance notice and the returning country",
        &months,
        &columns,
    )
}

/// Writes the merged tables into `dir`: one CSV per table and `index.html`.
pub fn write(merged: &Merged, dir: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        file: dir.to_owned(),
        source,
    })?;
    let k = merged.rule.min_cell.get();
    report::write_csvs(&merged.tables, k, dir, "")?;
    let charts = super::charts::all(merged);
    for chart in &charts {
        let file = dir.join(format!("{}.svg", chart.name));
        std::fs::write(&file, &chart.svg).map_err(|source| ReportError::Io {
            file: file.clone(),
            source,
        })?;
    }
    let file = dir.join("index.html");
    let page = super::page::index(merged, &charts);
    std::fs::write(&file, page).map_err(|source| ReportError::Io {
        file: file.clone(),
        source,
    })
}
