//! Regional statistics as the Conference's secretariat meets them: each
//! country signs its report with its gateway's key, anyone holding the
//! regional root checks it, and the merge adds only reports that hold, one
//! per country, withholding small figures again and drawing the charts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{path::Path, process::Command};

use retorno_gateway::statistics::{
    Rule, Table,
    disclosure::{self, MinCell},
    merge::{self, MergeError},
    report::{self, Report, ReportError},
};
use retorno_tests::{Region, regional_roots, sealer};

fn program() -> &'static str {
    env!("CARGO_BIN_EXE_gateway-process")
}

fn months() -> Vec<String> {
    (1..=12).map(|m| format!("2026-{m:02}")).collect()
}

/// A country's returned tables, as its gateway would count them: `scale`
/// children per cell, and a few small cells.
fn tables(scale: u64) -> Vec<Table> {
    let by_month = Table {
        name: "returned.by_notice_month".into(),
        title: "returned: children by month of the advance notice and the other country".into(),
        rows: months(),
        columns: vec!["GT".into(), "HN".into()],
        counts: (0..12)
            .map(|m| vec![scale + m, if m == 3 { 2 } else { scale }])
            .collect(),
        margins: true,
    };
    let age_sex = Table {
        name: "returned.age_sex".into(),
        title: "returned: children by age band at the notice and sex".into(),
        rows: vec!["0-4".into(), "5-11".into(), "12-17".into()],
        columns: vec!["female".into(), "male".into()],
        counts: vec![
            vec![1, scale],
            vec![scale, scale + 1],
            vec![2 * scale, 3 * scale],
        ],
        margins: true,
    };
    vec![by_month, age_sex]
}

/// `country`'s report signed by `signer`'s gateway.
fn signed(region: &Region, country: &str, signer: &str, scale: u64) -> Report {
    signed_with(region, country, signer, tables(scale), Rule::default())
}

/// `country`'s report of `tables` under `rule`, signed by `signer`'s gateway.
fn signed_with(
    region: &Region,
    country: &str,
    signer: &str,
    tables: Vec<Table>,
    rule: Rule,
) -> Report {
    let body = report::Body {
        format: report::FORMAT.into(),
        country: country.into(),
        from: "2026-01".into(),
        to: "2026-12".into(),
        generated_at: jiff::Timestamp::now().to_string(),
        rule,
        tables: tables
            .iter()
            .map(|table| disclosure::publish(table, rule))
            .collect(),
    };
    report::sign(body, &sealer(region, signer)).unwrap()
}

fn write(report: &Report, file: &Path) {
    std::fs::write(file, report::to_file_bytes(report).unwrap()).unwrap();
}

#[tokio::test]
async fn a_country_report_verifies_with_the_root_alone_and_not_with_a_byte_changed() {
    let region = Region::new(&["MX", "GT"]);
    let config = region.write_config("MX");
    let out = region.dir().join("mx-2026.json");
    let made = Command::new(program())
        .args(["stats", "report", "--config"])
        .arg(&config)
        .args(["--from", "2026-01", "--to", "2026-12", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(region.dir().join("mx-2026.returned.age_sex.csv").exists());
    assert!(region.dir().join("mx-2026.received.outcomes.csv").exists());
    let verify = |file: &Path| {
        Command::new(program())
            .args(["stats", "verify"])
            .arg(file)
            .arg("--root")
            .arg(region.pki().root_ca())
            .output()
            .unwrap()
    };
    let ok = verify(&out);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("a report of MX"));

    let bytes = std::fs::read(&out).unwrap();
    let roots = regional_roots(&region);
    for at in (0..bytes.len()).step_by(bytes.len() / 40) {
        let mut changed = bytes.clone();
        changed[at] ^= 0x01;
        let outcome = report::from_file_bytes(&changed).and_then(|r| report::verify(&r, &roots));
        assert!(
            outcome.is_err(),
            "byte {at} changed, and the report still verifies"
        );
    }
    // A byte that changes no figure (a space) still makes it another file.
    let spaced = String::from_utf8(bytes.clone())
        .unwrap()
        .replacen(": ", ":  ", 1);
    assert!(matches!(
        report::from_file_bytes(spaced.as_bytes()),
        Err(ReportError::NotCanonical)
    ));
    let mut changed = bytes.clone();
    let at = bytes.len() / 2;
    changed[at] ^= 0x01;
    let altered = region.dir().join("altered.json");
    std::fs::write(&altered, &changed).unwrap();
    assert!(!verify(&altered).status.success());
}

#[tokio::test]
async fn a_report_signed_by_another_countrys_gateway_fails_and_the_merge_refuses_it() {
    let region = Region::new(&["MX", "GT", "HN"]);
    let roots = regional_roots(&region);
    let forged = signed(&region, "MX", "GT", 10);
    match report::verify(&forged, &roots) {
        Err(ReportError::WrongCountry { claimed, signer }) => {
            assert_eq!((claimed.as_str(), signer.as_str()), ("MX", "GT"));
        }
        other => panic!("a report of MX signed by GT's gateway: {other:?}"),
    }
    let reports = vec![
        ("hn.json".to_owned(), signed(&region, "HN", "HN", 10)),
        ("mx.json".to_owned(), forged),
    ];
    match merge::merge(&reports, &roots) {
        Err(MergeError::Report { file, .. }) => assert_eq!(file, "mx.json"),
        other => panic!("the merge took a forged report: {other:?}"),
    }
    let mut tampered = signed(&region, "GT", "GT", 10);
    tampered.body.tables[0].cells[0][0] = Some(99);
    let reports = vec![("gt.json".to_owned(), tampered)];
    assert!(matches!(
        merge::merge(&reports, &roots),
        Err(MergeError::Report { .. })
    ));
}

#[tokio::test]
async fn the_merge_refuses_two_reports_of_one_country_for_the_period() {
    let region = Region::new(&["MX", "GT"]);
    let reports = vec![
        ("mx-a.json".to_owned(), signed(&region, "MX", "MX", 10)),
        ("gt.json".to_owned(), signed(&region, "GT", "GT", 10)),
        ("mx-b.json".to_owned(), signed(&region, "MX", "MX", 20)),
    ];
    match merge::merge(&reports, &regional_roots(&region)) {
        Err(MergeError::Duplicate {
            country,
            first,
            second,
            ..
        }) => {
            assert_eq!(
                (country.as_str(), first.as_str(), second.as_str()),
                ("MX", "mx-a.json", "mx-b.json")
            );
        }
        other => panic!("two reports of MX were merged: {other:?}"),
    }
}

/// Texts of an SVG document's `<text>` elements, after checking it parses.
fn svg_texts(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let document =
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text().map(|text| text.trim().to_owned()))
        .collect()
}

#[tokio::test]
async fn the_merge_adds_the_countries_withholds_small_figures_again_and_draws_each_series() {
    let region = Region::new(&["MX", "GT", "HN"]);
    let dir = region.dir().join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (country, scale) in [("MX", 10), ("HN", 7), ("GT", 30)] {
        let file = dir.join(format!("{}-2026.json", country.to_lowercase()));
        write(&signed(&region, country, country, scale), &file);
        files.push(file);
    }
    let out = region.dir().join("regional");
    let merged = Command::new(program())
        .args(["stats", "merge"])
        .args(&files)
        .arg("--root")
        .arg(region.pki().root_ca())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );

    let reports: Vec<(String, Report)> = files
        .iter()
        .map(|file| (file.display().to_string(), report::read(file).unwrap()))
        .collect();
    let merged = merge::merge(&reports, &regional_roots(&region)).unwrap();
    let k = MinCell::default().get();
    for table in &merged.tables {
        let figures = table
            .cells
            .iter()
            .flatten()
            .chain(&table.row_totals)
            .chain(&table.column_totals)
            .chain(std::iter::once(&table.total));
        for value in figures.flatten() {
            assert!(
                *value == 0 || *value >= k,
                "{} publishes {value}",
                table.name
            );
        }
    }
    // Added where every country published the figure: GT children in June,
    // 15 (MX) + 12 (HN) + 35 (GT). (January is withheld: secondary suppression.)
    let by_month = merged
        .tables
        .iter()
        .find(|t| t.name == "returned.by_notice_month")
        .unwrap();
    assert_eq!(by_month.cells[5][0], Some(15 + 12 + 35));
    // April's HN cell was 2 in each report: withheld there, so withheld in the sum.
    assert_eq!(by_month.cells[3][1], None);
    let by_country = merged
        .tables
        .iter()
        .find(|t| t.name == merge::BY_COUNTRY_AND_MONTH)
        .unwrap();
    assert_eq!(by_country.columns, ["MX", "HN", "GT"]);
    assert_eq!(by_country.cells[5], [Some(25), Some(19), Some(65)]);

    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        page.contains("&lt;5"),
        "withheld figures read as fewer than 5"
    );
    assert!(
        !page.contains("<script"),
        "the page is self-contained and has no script"
    );
    assert!(out.join("returned.age_sex.csv").exists());
    assert!(
        std::fs::read_to_string(out.join("returned.age_sex.csv"))
            .unwrap()
            .contains("<5")
    );

    let per_month = svg_texts(&out.join("returned-per-month.svg"));
    for series in ["MX", "GT", "HN", "fewer than 5 (withheld)"] {
        assert!(
            per_month.iter().any(|t| t == series),
            "returned-per-month lacks {series}: {per_month:?}"
        );
    }
    // 0-4 and 5-11 are withheld in the sum: drawn as grey "fewer than 5" bars, not as nothing.
    let drawn = std::fs::read_to_string(out.join("age-and-sex.svg")).unwrap();
    assert!(
        drawn.matches("fill=\"#BEBEBE\"").count() >= 4,
        "withheld bars are drawn"
    );
    let pyramid = svg_texts(&out.join("age-and-sex.svg"));
    for series in ["female", "male"] {
        assert!(
            pyramid.iter().any(|t| t == series),
            "age-and-sex lacks {series}: {pyramid:?}"
        );
    }
}

#[tokio::test]
async fn a_min_cell_below_three_is_refused_and_a_lowered_one_is_audited() {
    let region = Region::new(&["MX", "GT"]);
    let config = region.write_config("MX");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("min_cell = 5"), "{text}");
    std::fs::write(&config, text.replace("min_cell = 5", "min_cell = 2")).unwrap();
    let refused = retorno_gateway::Config::load(&config)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("statistics.min_cell = 2 is refused"),
        "{refused}"
    );

    std::fs::write(&config, text.replace("min_cell = 5", "min_cell = 3")).unwrap();
    let out = region.dir().join("mx.json");
    let made = Command::new(program())
        .args(["stats", "report", "--config"])
        .arg(&config)
        .args(["--from", "2026-01", "--to", "2026-03", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = retorno_gateway::Config::load(&config).unwrap();
    let store = retorno_tests::open_store(&config).await;
    let entries = retorno_gateway::audit::entries(&store).unwrap();
    assert!(
        entries.iter().any(
            |e| e.event == retorno_gateway::audit::Event::MinCellLowered as i32
                && e.detail.contains("min_cell = 3")
        ),
        "no audit entry for the lowered min_cell"
    );
}

#[tokio::test]
async fn the_agency_api_gives_the_tables_to_the_authority_and_child_protection_not_to_a_consulate()
{
    use retorno_proto::v1::{StatisticsRequest, agency_client::AgencyClient};
    use retorno_tests::{agency_channel, notice_to};

    let region = Region::new(&["MX", "GT"]);
    let _mx = region.start("MX").await;
    let _gt = region.start("GT").await;
    let mut inm = region.agency("MX", "destination-authority").await;
    for n in 0..6 {
        inm.submit(notice_to("GT", &format!("MX-2026-{:04}", 900 + n)))
            .await
            .unwrap();
    }
    let month = retorno_gateway::statistics::Month::of(region.clock().now()).to_string();
    let request = StatisticsRequest {
        from: month.clone(),
        to: month.clone(),
    };
    for role in ["destination-authority", "child-protection"] {
        let mut client = AgencyClient::new(agency_channel(&region, "MX", role).await);
        let answer = client
            .get_statistics(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!((answer.country.as_str(), answer.min_cell), ("MX", 5));
        let by_month = answer
            .tables
            .iter()
            .find(|t| t.name == "returned.by_notice_month")
            .unwrap();
        assert_eq!(by_month.rows, std::slice::from_ref(&month));
        assert_eq!(by_month.columns, ["GT"]);
        let cell = &by_month.cells[0].figures[0];
        assert_eq!((cell.withheld, cell.count), (false, 6), "{role}");
        // One notice's child is in one age band: fewer than 5 there.
        let age_sex = answer
            .tables
            .iter()
            .find(|t| t.name == "returned.age_sex")
            .unwrap();
        let figures = age_sex.cells.iter().flat_map(|row| &row.figures);
        assert!(
            figures
                .clone()
                .all(|f| f.withheld || f.count == 0 || f.count >= 5)
        );
    }
    let mut consulate = AgencyClient::new(agency_channel(&region, "MX", "consulate").await);
    let refused = consulate.get_statistics(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    let mut inm = AgencyClient::new(agency_channel(&region, "MX", "destination-authority").await);
    let bad = inm
        .get_statistics(StatisticsRequest {
            from: "2026-13".into(),
            to: month,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().starts_with("from:"), "{}", bad.message());
}

#[tokio::test]
async fn the_merge_withholds_again_under_the_largest_k_and_refuses_another_period() {
    let region = Region::new(&["MX", "GT"]);
    let roots = regional_roots(&region);
    let table = |counts: Vec<Vec<u64>>| Table {
        name: "returned.handoff_by".into(),
        title: "returned: children handed over".into(),
        rows: vec!["GT".into(), "HN".into()],
        columns: vec!["own consulate".into(), "child protection".into()],
        counts,
        margins: true,
    };
    let three = Rule {
        min_cell: MinCell::try_from(3).unwrap(),
        ..Rule::default()
    };
    // MX publishes 3 under k = 3; GT has none there: the sum, 3, is under GT's k = 5.
    let mx = signed_with(
        &region,
        "MX",
        "MX",
        vec![table(vec![vec![3, 20], vec![30, 40]])],
        three,
    );
    assert_eq!(mx.body.tables[0].cells[0][0], Some(3));
    let gt = signed_with(
        &region,
        "GT",
        "GT",
        vec![table(vec![vec![0, 10], vec![10, 10]])],
        Rule::default(),
    );
    let merged = merge::merge(
        &[
            ("mx.json".to_owned(), mx.clone()),
            ("gt.json".to_owned(), gt),
        ],
        &roots,
    )
    .unwrap();
    assert_eq!(merged.rule.min_cell.get(), 5);
    let handoff = merged
        .tables
        .iter()
        .find(|t| t.name == "returned.handoff_by")
        .unwrap();
    assert_eq!(
        handoff.cells[0][0], None,
        "3 children is under the merge's k of 5"
    );
    assert_eq!(handoff.total, Some(123));

    let mut later = signed(&region, "GT", "GT", 10);
    later.body.from = "2027-01".into();
    later.body.to = "2027-12".into();
    let later = report::sign(later.body, &sealer(&region, "GT")).unwrap();
    match merge::merge(
        &[
            ("mx.json".to_owned(), mx),
            ("gt-2027.json".to_owned(), later),
        ],
        &roots,
    ) {
        Err(MergeError::Period { file, .. }) => assert_eq!(file, "gt-2027.json"),
        other => panic!("reports of two periods were merged: {other:?}"),
    }
}
