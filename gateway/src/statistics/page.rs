//! The regional page: one self-contained HTML file (styles and charts
//! inline, no script), so that it can be mailed, archived and opened offline.

use super::{charts, disclosure::Published, merge::Merged};

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn figure(value: &Option<u64>, k: u64) -> String {
    match value {
        Some(count) => count.to_string(),
        None => format!("&lt;{k}"),
    }
}

fn table(table: &Published, k: u64) -> String {
    let mut html = format!("<h3>{}</h3>\n<table>\n<tr><th></th>", escape(&table.title));
    for column in &table.columns {
        html.push_str(&format!("<th scope=\"col\">{}</th>", escape(column)));
    }
    if table.margins {
        html.push_str("<th scope=\"col\">total</th>");
    }
    html.push_str("</tr>\n");
    for (index, (row, cells)) in table.rows.iter().zip(&table.cells).enumerate() {
        html.push_str(&format!("<tr><th scope=\"row\">{}</th>", escape(row)));
        for cell in cells.iter().chain(table.row_totals.get(index)) {
            html.push_str(&format!("<td>{}</td>", figure(cell, k)));
        }
        html.push_str("</tr>\n");
    }
    if table.margins {
        html.push_str("<tr><th scope=\"row\">total</th>");
        for cell in table
            .column_totals
            .iter()
            .chain(std::iter::once(&table.total))
        {
            html.push_str(&format!("<td>{}</td>", figure(cell, k)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// The page of a merge, with its charts inline.
pub fn index(merged: &Merged, charts: &[charts::Chart]) -> String {
    let k = merged.rule.min_cell.get();
    let countries: Vec<String> = merged.countries.iter().map(|c| c.to_string()).collect();
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Regional statistics {from} to {to}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}td,th{{border:1px solid #999;padding:.2em .5em;text-align:right}}th[scope=row]{{text-align:left}}</style>\n</head>\n<body>\n<h1>Children returned in the region, {from} to {to}</h1>\n<p>Reports of {countries}, each verified with the regional root. Each return is counted once, in the report of the country that returned the child (its <code>returned</code> tables). No figure between 1 and {km1} is shown: &lt;{k} is fewer than {k} children, or a figure withheld so that such a one cannot be worked out from the totals.</p>\n",
        from = escape(&merged.period.0),
        to = escape(&merged.period.1),
        countries = escape(&countries.join(", ")),
        km1 = k.saturating_sub(1),
    );
    html.push_str("<h2>Charts</h2>\n");
    for chart in charts {
        html.push_str(&format!(
            "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
            chart
                .svg
                .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            escape(&chart.title)
        ));
    }
    html.push_str("<h2>Tables</h2>\n");
    for published in &merged.tables {
        html.push_str(&table(published, k));
    }
    html.push_str("</body>\n</html>\n");
    html
}
