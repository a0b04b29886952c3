//! The regional charts, as SVG drawn with plotters.
//!
//! Each chart draws one merged table. A withheld figure is drawn as a grey
//! bar marked "<k" (fewer than k children, or withheld so that one that is
//! cannot be worked out), never as zero; the legend says so.

use plotters::prelude::*;

use super::{disclosure::Published, merge::Merged};

/// One chart: its file name (without `.svg`), its title, and its SVG.
pub struct Chart {
    /// The file name, e.g. `returned-per-month`.
    pub name: &'static str,
    /// What it shows.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
const WITHHELD: RGBColor = RGBColor(190, 190, 190);

/// One bar segment: series index, value, and whether it is withheld.
struct Segment {
    series: usize,
    height: u64,
    withheld: bool,
}

/// Every chart the merged tables allow.
pub fn all(merged: &Merged) -> Vec<Chart> {
    let k = merged.rule.min_cell.get();
    let find = |name: &str| merged.tables.iter().find(|table| table.name == name);
    let mut charts = Vec::new();
    if let Some(table) = find("returned.age_sex") {
        let title = "Children returned by age band and sex".to_owned();
        let mut svg = String::new();
        if let Err(error) = pyramid(&mut svg, table, &title, k) {
            tracing::warn!(%error, chart = title, "a chart could not be drawn");
        }
        charts.push(Chart {
            name: "age-and-sex",
            title,
            svg,
        });
    }
    let specs: [(&'static str, &str, String, bool); 3] = [
        (
            "returned-per-month",
            super::merge::BY_COUNTRY_AND_MONTH,
            "Children returned per month, by returning country".into(),
            true,
        ),
        (
            "handoff-on-time",
            "returned.handoff_on_time",
            "Handoffs on time or late, per point of entry".into(),
            true,
        ),
        (
            "hours-of-notice",
            "returned.hours_of_notice",
            "Hours of notice before the agreed arrival".into(),
            true,
        ),
    ];
    for (name, table, title, stacked) in specs {
        if let Some(table) = find(table) {
            let svg = bars(table, &title, k, stacked);
            charts.push(Chart { name, title, svg });
        }
    }
    if let Some(table) = find("returned.outcomes") {
        let title = "Outcomes of the returns".to_owned();
        let svg = bars(table, &title, k, true);
        charts.push(Chart {
            name: "outcomes",
            title,
            svg,
        });
    }
    charts
}

/// A bar chart of `table`: one bar per row, a segment per column (stacked),
/// or one bar per row and column side by side.
fn bars(table: &Published, title: &str, k: u64, stacked: bool) -> String {
    let rows: Vec<Vec<Segment>> = table
        .cells
        .iter()
        .map(|cells| {
            cells
                .iter()
                .enumerate()
                .map(|(series, value)| Segment {
                    series,
                    height: value.unwrap_or(k),
                    withheld: value.is_none(),
                })
                .collect()
        })
        .collect();
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg, table, title, k, stacked, &rows) {
        tracing::warn!(%error, chart = title, "a chart could not be drawn");
    }
    svg
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

fn draw(
    svg: &mut String,
    table: &Published,
    title: &str,
    k: u64,
    stacked: bool,
    rows: &[Vec<Segment>],
) -> Drawn {
    let columns = table.columns.len().max(1);
    let slots = if stacked { 1 } else { columns };
    let top = rows
        .iter()
        .map(|row| {
            if stacked {
                row.iter().map(|s| s.height).sum()
            } else {
                row.iter().map(|s| s.height).max().unwrap_or(0)
            }
        })
        .max()
        .unwrap_or(0)
        .max(k)
        + k;
    let width = u32::try_from(160 + rows.len() * 40 * slots)
        .unwrap_or(1600)
        .clamp(640, 1600);
    let root = SVGBackend::with_string(svg, (width, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = u32::try_from(rows.len() * (slots + 1)).unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(60)
        .y_label_area_size(50)
        .build_cartesian_2d(0u32..x_max, 0u64..top)?;
    let labels = table.rows.clone();
    let slot = u32::try_from(slots + 1).unwrap_or(1);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(usize::try_from(x_max).unwrap_or(1))
        .x_label_formatter(&|x| {
            let index = usize::try_from(*x / slot).unwrap_or(usize::MAX);
            if *x % slot == 0 {
                labels.get(index).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("children")
        .draw()?;
    for series in 0..columns {
        let color = PALETTE[series % PALETTE.len()];
        let mut rectangles = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let base = u32::try_from(index).unwrap_or(0) * slot;
            let below: u64 = if stacked {
                row.iter().take(series).map(|s| s.height).sum()
            } else {
                0
            };
            let Some(segment) = row.iter().find(|s| s.series == series) else {
                continue;
            };
            let x = if stacked {
                base
            } else {
                base + u32::try_from(series).unwrap_or(0)
            };
            let fill = if segment.withheld { WITHHELD } else { color };
            rectangles.push(Rectangle::new(
                [(x, below), (x + 1, below + segment.height)],
                fill.filled(),
            ));
        }
        let label = table.columns.get(series).cloned().unwrap_or_default();
        chart
            .draw_series(rectangles)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0, 0), (0, 0)],
            WITHHELD.filled(),
        )))?
        .label(format!("fewer than {k} (withheld)"))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], WITHHELD.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The age-and-sex pyramid: one row per age band, girls to the left and
/// boys to the right of the axis (other columns of the table are not drawn).
fn pyramid(svg: &mut String, table: &Published, title: &str, k: u64) -> Drawn {
    let column = |name: &str| table.columns.iter().position(|c| c == name);
    let sides = [
        (column("female"), -1i64, PALETTE[3]),
        (column("male"), 1, PALETTE[0]),
    ];
    let height = |value: &Option<u64>| i64::try_from(value.unwrap_or(k)).unwrap_or(i64::MAX);
    let widest = table
        .cells
        .iter()
        .flatten()
        .map(height)
        .max()
        .unwrap_or(0)
        .max(i64::try_from(k).unwrap_or(0))
        + 1;
    let bands = i32::try_from(table.rows.len()).unwrap_or(0);
    let root = SVGBackend::with_string(svg, (640, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(-widest..widest, 0..bands.max(1))?;
    let labels = table.rows.clone();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(labels.len().max(1))
        .y_label_formatter(&|y| {
            labels
                .get(usize::try_from(*y).unwrap_or(usize::MAX))
                .cloned()
                .unwrap_or_default()
        })
        .x_label_formatter(&|x| x.abs().to_string())
        .x_desc("children")
        .draw()?;
    for (index, sign, color) in sides {
        let Some(index) = index else { continue };
        let bars: Vec<_> = table
            .cells
            .iter()
            .enumerate()
            .map(|(band, cells)| {
                let value = cells.get(index).copied().flatten();
                let fill = if value.is_none() { WITHHELD } else { color };
                let y = i32::try_from(band).unwrap_or(0);
                Rectangle::new([(0, y), (sign * height(&value), y + 1)], fill.filled())
            })
            .collect();
        let label = table.columns.get(index).cloned().unwrap_or_default();
        chart
            .draw_series(bars)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0, 0), (0, 0)],
            WITHHELD.filled(),
        )))?
        .label(format!("fewer than {k} (withheld)"))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], WITHHELD.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
