//! Disclosure control: the one place that decides what of a table may leave.
//!
//! No published figure counts between 1 and k−1 children (k is
//! `[statistics] min_cell`). With [`Method::Suppress`], such cells are
//! withheld (primary suppression); then, so that a withheld cell cannot be
//! recomputed from a published row, column or grand total, every line (a row
//! or a column, its total included) that withholds exactly one figure
//! withholds one more: its smallest non-zero figure, or a zero if it has no
//! other. That repeats until no line withholds exactly one (secondary
//! suppression). Totals are figures like the others: a total under k is
//! withheld too. With [`Method::Round`], every figure is rounded to the
//! nearest multiple of k instead (totals rounded on their own, so they need
//! not add up). A country report and the regional merge both go through
//! [`protect`], so they cannot disagree.

use serde::{Deserialize, Serialize};

use super::figures::Table;

/// The smallest count a report may publish other than zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct MinCell(u64);

/// The default k.
pub const DEFAULT_MIN_CELL: u64 = 5;
/// Below this no report is written: a cell of 1 or 2 children is a child.
pub const LOWEST_MIN_CELL: u64 = 3;

/// A `min_cell` below [`LOWEST_MIN_CELL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "statistics.min_cell = {0} is refused: it may not be lower than {LOWEST_MIN_CELL} (default {DEFAULT_MIN_CELL})"
)]
pub struct MinCellTooLow(pub u64);

impl TryFrom<u64> for MinCell {
    type Error = MinCellTooLow;

    fn try_from(k: u64) -> Result<MinCell, MinCellTooLow> {
        if k < LOWEST_MIN_CELL {
            return Err(MinCellTooLow(k));
        }
        Ok(MinCell(k))
    }
}

impl From<MinCell> for u64 {
    fn from(k: MinCell) -> u64 {
        k.0
    }
}

impl Default for MinCell {
    fn default() -> Self {
        MinCell(DEFAULT_MIN_CELL)
    }
}

impl MinCell {
    /// k.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Whether it is below the default (the operator lowered it: audited).
    pub fn lowered(self) -> bool {
        self.0 < DEFAULT_MIN_CELL
    }
}

/// How small counts are kept from being published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Primary and secondary suppression.
    #[default]
    Suppress,
    /// Rounding every figure to base k.
    Round,
}

/// k and the method, as `[statistics]` sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// k.
    pub min_cell: MinCell,
    /// Suppression or rounding.
    pub method: Method,
}

/// A table as it may be published: a figure is `None` when withheld.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The table's stable name, e.g. `returned.age_sex`.
    pub name: String,
    /// What a figure counts.
    pub title: String,
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// `cells[row][column]`; `None` is "fewer than k, or withheld so that
    /// one that is cannot be recomputed".
    pub cells: Vec<Vec<Option<u64>>>,
    /// Whether the totals below are published at all.
    pub margins: bool,
    /// Per row (empty without margins).
    pub row_totals: Vec<Option<u64>>,
    /// Per column (empty without margins).
    pub column_totals: Vec<Option<u64>>,
    /// The grand total (`None` without margins, or withheld).
    pub total: Option<u64>,
}

/// A table's figures with its totals as one grid: with margins, the last
/// row holds the column totals and the last column the row totals, so that
/// every row and every column of the grid is a line whose last figure is the
/// sum of the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    /// `values[row][column]`, `None` for a withheld figure.
    pub values: Vec<Vec<Option<u64>>>,
    /// Whether the last row and column are totals.
    pub margins: bool,
}

impl Grid {
    /// The grid of a table of true counts, totals added when it has margins.
    pub fn of(table: &Table) -> Grid {
        let mut values: Vec<Vec<Option<u64>>> = table
            .counts
            .iter()
            .map(|row| row.iter().copied().map(Some).collect())
            .collect();
        if table.margins {
            for row in &mut values {
                row.push(Some(row.iter().flatten().sum()));
            }
            let width = table.columns.len() + 1;
            let totals = (0..width)
                .map(|column| Some(values.iter().filter_map(|row| row[column]).sum()))
                .collect();
            values.push(totals);
        }
        Grid {
            values,
            margins: table.margins,
        }
    }

    /// The grid of a published table (how a merge reads a country's).
    pub fn of_published(table: &Published) -> Grid {
        let mut values = table.cells.clone();
        if table.margins {
            for (row, total) in values.iter_mut().zip(&table.row_totals) {
                row.push(*total);
            }
            let mut last = table.column_totals.clone();
            last.push(table.total);
            values.push(last);
        }
        Grid {
            values,
            margins: table.margins,
        }
    }

    /// Every line as the positions of its figures (rows, then columns);
    /// none without margins, where no figure is the sum of others.
    pub fn lines(&self) -> Vec<Vec<(usize, usize)>> {
        if !self.margins {
            return Vec::new();
        }
        let height = self.values.len();
        let width = self.values.first().map_or(0, Vec::len);
        let rows = (0..height).map(|r| (0..width).map(|c| (r, c)).collect());
        let columns = (0..width).map(|c| (0..height).map(|r| (r, c)).collect());
        rows.chain(columns)
            .filter(|line: &Vec<(usize, usize)>| line.len() >= 2)
            .collect()
    }

    /// The table as published, with `name`, `title` and labels from `like`.
    pub fn publish(
        &self,
        name: &str,
        title: &str,
        rows: &[String],
        columns: &[String],
    ) -> Published {
        let body_rows = rows.len();
        let cells = self
            .values
            .iter()
            .take(body_rows)
            .map(|row| row.iter().take(columns.len()).copied().collect())
            .collect();
        let (row_totals, column_totals, total) = if self.margins {
            let last_column = columns.len();
            let row_totals = self
                .values
                .iter()
                .take(body_rows)
                .map(|row| row[last_column])
                .collect();
            let last = self.values.get(body_rows).cloned().unwrap_or_default();
            let total = last.get(last_column).copied().flatten();
            (
                row_totals,
                last.into_iter().take(last_column).collect(),
                total,
            )
        } else {
            (Vec::new(), Vec::new(), None)
        };
        Published {
            name: name.to_owned(),
            title: title.to_owned(),
            rows: rows.to_vec(),
            columns: columns.to_vec(),
            cells,
            margins: self.margins,
            row_totals,
            column_totals,
            total,
        }
    }
}

/// `grid` made safe to publish under `rule`.
pub fn protect(mut grid: Grid, rule: Rule) -> Grid {
    let k = rule.min_cell.get();
    match rule.method {
        Method::Round => {
            for value in grid.values.iter_mut().flatten().flatten() {
                *value = (*value + k / 2) / k * k;
            }
        }
        Method::Suppress => {
            for value in grid.values.iter_mut().flatten() {
                if value.is_some_and(|count| (1..k).contains(&count)) {
                    *value = None;
                }
            }
            suppress_secondary(&mut grid);
        }
    }
    grid
}

/// Withholds one more figure in each line that withholds exactly one, until none does.
fn suppress_secondary(grid: &mut Grid) {
    let lines = grid.lines();
    loop {
        let mut changed = false;
        for line in &lines {
            let withheld = line
                .iter()
                .filter(|(r, c)| grid.values[*r][*c].is_none())
                .count();
            if withheld != 1 {
                continue;
            }
            if let Some((r, c)) = partner(grid, line) {
                grid.values[r][c] = None;
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// The figure a line withholds next: its smallest non-zero one, else a zero.
fn partner(grid: &Grid, line: &[(usize, usize)]) -> Option<(usize, usize)> {
    line.iter()
        .filter_map(|(r, c)| grid.values[*r][*c].map(|value| ((value == 0, value), (*r, *c))))
        .min()
        .map(|(_, position)| position)
}

/// A table of true counts as it may be published under `rule`.
pub fn publish(table: &Table, rule: Rule) -> Published {
    protect(Grid::of(table), rule).publish(&table.name, &table.title, &table.rows, &table.columns)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What a reader can work out of a published grid: fills every figure
    /// that is the only unknown of a line whose other figures are known
    /// (the last of a line is the sum of the others), until nothing more
    /// follows. Written apart from the suppression code, so that it checks it.
    fn deduce(grid: &Grid) -> Vec<Vec<Option<u64>>> {
        let mut known = grid.values.clone();
        let lines = grid.lines();
        loop {
            let mut progress = false;
            for line in &lines {
                let unknown: Vec<usize> = (0..line.len())
                    .filter(|i| known[line[*i].0][line[*i].1].is_none())
                    .collect();
                let [only] = unknown[..] else { continue };
                let value = |i: usize| known[line[i].0][line[i].1].unwrap_or(0) as i128;
                let last = line.len() - 1;
                let parts: i128 = (0..last).filter(|i| *i != only).map(value).sum();
                let found = if only == last {
                    parts
                } else {
                    value(last) - parts
                };
                let (r, c) = line[only];
                known[r][c] = Some(found.max(0) as u64);
                progress = true;
            }
            if !progress {
                return known;
            }
        }
    }

    fn table(counts: Vec<Vec<u64>>, margins: bool) -> Table {
        let columns = counts.first().map_or(0, Vec::len);
        Table {
            name: "t".into(),
            title: "t".into(),
            rows: (0..counts.len()).map(|r| format!("r{r}")).collect(),
            columns: (0..columns).map(|c| format!("c{c}")).collect(),
            counts,
            margins,
        }
    }

    fn rule(k: u64) -> Rule {
        Rule {
            min_cell: MinCell::try_from(k).unwrap(),
            method: Method::Suppress,
        }
    }

    /// Small counts, zeros and large counts, so that every case arises.
    fn count() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), 1u64..5, 5u64..40]
    }

    fn counts() -> impl Strategy<Value = Vec<Vec<u64>>> {
        (1usize..7, 1usize..7).prop_flat_map(|(rows, columns)| {
            prop::collection::vec(prop::collection::vec(count(), columns), rows)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn no_published_figure_is_small_and_no_withheld_one_can_be_worked_out(
            counts in counts(),
            k in 3u64..8,
            margins in any::<bool>(),
        ) {
            let table = table(counts, margins);
            let truth = Grid::of(&table);
            let published = protect(truth.clone(), rule(k));
            for (row, true_row) in published.values.iter().zip(&truth.values) {
                for (value, true_value) in row.iter().zip(true_row) {
                    if let Some(value) = value {
                        prop_assert!(*value == 0 || *value >= k, "published {value} under k={k}");
                        prop_assert_eq!(Some(*value), *true_value, "a published figure is the true count");
                    }
                }
            }
            let worked_out = deduce(&published);
            for (r, row) in published.values.iter().enumerate() {
                for (c, value) in row.iter().enumerate() {
                    if value.is_none() {
                        prop_assert!(worked_out[r][c].is_none(), "withheld ({r},{c}) = {:?} can be recomputed from {:?}", truth.values[r][c], published.values);
                    }
                }
            }
        }

        #[test]
        fn rounding_publishes_only_multiples_of_k(counts in counts(), k in 3u64..8) {
            let table = table(counts, true);
            let rounded = protect(Grid::of(&table), Rule { min_cell: MinCell::try_from(k).unwrap(), method: Method::Round });
            for value in rounded.values.iter().flatten() {
                prop_assert_eq!(value.map(|v| v % k), Some(0));
            }
        }
    }

    #[test]
    fn a_lone_small_cell_takes_a_partner_in_its_row_and_its_column() {
        let table = table(vec![vec![2, 10, 20], vec![8, 9, 30]], true);
        let published = publish(&table, rule(5));
        assert_eq!(published.cells[0], vec![None, None, Some(20)]);
        assert_eq!(published.cells[1], vec![None, None, Some(30)]);
        assert_eq!(published.row_totals, vec![Some(32), Some(47)]);
        assert_eq!(published.total, Some(79));
    }

    #[test]
    fn min_cell_below_three_is_refused() {
        assert_eq!(MinCell::try_from(2), Err(MinCellTooLow(2)));
        assert!(MinCell::try_from(3).unwrap().lowered());
        assert!(!MinCell::default().lowered());
    }
}
