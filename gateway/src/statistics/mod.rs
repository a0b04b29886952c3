//! Regional statistics: figures that can leave the country without exposing a child.
//!
//! A gateway counts its cases into tables ([`figures`]), withholds what
//! could point at a child ([`disclosure`]), and signs the result as a
//! country report that the regional root alone verifies ([`report`]). The
//! Conference's secretariat merges the countries' reports into one regional
//! picture, applying the same disclosure control again ([`merge`]), with
//! charts ([`charts`]). A report holds tables only, never a case.
//!
//! # Layout
//! - [`figures`]: what statistics read of a case ([`figures::counted`]), and the tables.
//! - [`disclosure`]: the threshold rule, primary and secondary suppression, rounding.
//! - [`report`]: the signed country report, its CSVs, and its verification.
//! - [`merge`]: the regional merge and its self-contained HTML page.
//! - [`charts`]: the SVG charts.

pub mod disclosure;
pub mod figures;

use crate::{country::Country, store::Store, store::StoreError};

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
