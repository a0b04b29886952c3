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
    let specs: [(&'static str, &str, String, bool); 4] = [
        (
            "returned-per-month",
            super::merge::BY_COUNTRY_AND_MONTH,
            "Children returned per month, by returning country".into(),
            true,
        ),
        (
            "age-and-sex",
            "returned.age_sex",
            "Children returned by age band and sex".into(),
            false,
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
