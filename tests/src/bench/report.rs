//! The table: each figure next to its baseline and their ratio, per run and
//! as the median of the runs.

/// How a figure is printed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unit {
    /// Per second.
    Rate,
    /// Milliseconds.
    Ms,
    /// Seconds.
    Secs,
    /// Bytes, printed as MB.
    Mb,
    /// Bytes, printed as KB.
    Kb,
    /// CPU cores (seconds of CPU per second).
    Cores,
}

fn format(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Rate => format!("{} /s", thousands(value)),
        Unit::Ms => format!("{value:.2} ms"),
        Unit::Secs => format!("{value:.3} s"),
        Unit::Mb => format!("{:.1} MB", value / 1e6),
        Unit::Kb => format!("{:.1} KB", value / 1e3),
        Unit::Cores => format!("{value:.2} cores"),
    }
}

/// 12345.6 as "12,346".
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line of the table.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) unit: Unit,
    pub(crate) value: f64,
    pub(crate) baseline: Option<f64>,
    /// What the baseline is.
    pub(crate) against: &'static str,
    /// Whether value / baseline means something.
    pub(crate) show_ratio: bool,
}

impl Row {
    pub(crate) fn new(label: impl Into<String>, unit: Unit, value: f64) -> Row {
        Row {
            label: label.into(),
            unit,
            value,
            baseline: None,
            against: "",
            show_ratio: true,
        }
    }

    /// Prints the baseline without a ratio (when dividing means nothing).
    pub(crate) fn without_ratio(mut self) -> Row {
        self.show_ratio = false;
        self
    }

    pub(crate) fn against(mut self, baseline: f64, what: &'static str) -> Row {
        self.baseline = Some(baseline);
        self.against = what;
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline
            .filter(|b| self.show_ratio && *b > 0.0)
            .map(|baseline| self.value / baseline)
    }
}

/// Prints `rows` under `title`; `ratios` overrides each row's ratio (medians of per-run ratios).
pub(crate) fn print(title: &str, rows: &[Row], ratios: Option<&[Option<f64>]>) {
    println!("\n{title}");
    println!(
        "  {:<46} {:>14} {:>14} {:>7}  baseline",
        "figure", "gateways", "baseline", "ratio"
    );
    for (i, row) in rows.iter().enumerate() {
        let baseline = row
            .baseline
            .map(|b| format(row.unit, b))
            .unwrap_or_default();
        let ratio = ratios
            .map_or_else(|| row.ratio(), |ratios| ratios.get(i).copied().flatten())
            .map(|r| format!("{r:.2}"))
            .unwrap_or_default();
        println!(
            "  {:<46} {:>14} {:>14} {:>7}  {}",
            row.label,
            format(row.unit, row.value),
            baseline,
            ratio,
            row.against
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The median of each figure, of each baseline and of each per-run ratio,
/// over runs that printed the same rows.
pub(crate) fn medians(runs: &[Vec<Row>]) -> (Vec<Row>, Vec<Option<f64>>) {
    let Some(first) = runs.first() else {
        return (Vec::new(), Vec::new());
    };
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for (i, template) in first.iter().enumerate() {
        let same: Vec<&Row> = runs.iter().filter_map(|run| run.get(i)).collect();
        let mut row = template.clone();
        row.value = median(same.iter().map(|r| r.value).collect());
        row.baseline = template
            .baseline
            .map(|_| median(same.iter().filter_map(|r| r.baseline).collect()));
        let per_run: Vec<f64> = same.iter().filter_map(|r| r.ratio()).collect();
        ratios.push((!per_run.is_empty()).then(|| median(per_run)));
        rows.push(row);
    }
    (rows, ratios)
}
