//! `retorno-stats-bench`: how long a country report takes over many cases,
//! and how much memory it needs.
//!
//! It makes a dev region (MX, GT, HN, SV), writes `--cases` cases into
//! Mexico's stopped gateway with the case engine (`Rules::apply` in
//! transactions on its `cases` tree, as the store's transactions run it,
//! without the inbox and audit entries a delivery also writes: statistics
//! do not read them, and a million cases then take about 2 GB of disk, not
//! 5), half returned by Mexico and half received by it, then runs `gateway-process stats report`
//! over 2026 as a separate process and prints its wall time and peak
//! resident memory (its VmHWM, sampled). Build with
//! `cargo build --release -p retorno-tests`; everything is in a temporary
//! folder, removed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, process::Command, sync::RwLock, time::Instant};

use anyhow::Context as _;
use clap::Parser;
use retorno_gateway::{
    case::{Rules, Step},
    clock::Clock,
    country::Country,
    identity::Role,
    policy,
    store::Store,
};
use retorno_proto::v1::{
    self, ArrivalProposal, ArrivalResponse, EnvelopeBody, Sender, arrival_response,
    envelope_body::Payload,
};
use retorno_tests::{Region, eventually};

#[global_allocator]
static ALLOCATOR: retorno_gateway::Allocator = retorno_gateway::Allocator;

/// Measures `stats report` over generated cases.
#[derive(Parser)]
struct Options {
    /// How many cases to generate.
    #[arg(long, default_value_t = 1_000_000)]
    cases: usize,
}

/// One step of a generated case.
struct Planned {
    case_id: String,
    sender: (Country, Role),
    recipient: Country,
    at: jiff::Timestamp,
    payload: Payload,
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

/// A deterministic draw.
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

fn country(code: &str) -> Country {
    code.parse().unwrap()
}

/// 10:00 local at `time_zone`, `days` after `from`, off Sunday.
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

fn notice(draw: &mut Draw) -> v1::AdvanceNotice {
    let age = draw.below(18) as i32;
    v1::AdvanceNotice {
        child: Some(v1::Child {
            age: Some(v1::child::Age::BirthDate(v1::Date {
                year: 2026 - age,
                month: 1,
                day: 1,
            })),
            sex: draw.below(4) as i32,
            ..v1::Child::default()
        }),
        companionship: draw.below(4) as i32,
        protection_concerns: if draw.below(5) == 0 {
            vec![draw.below(11) as i32]
        } else {
            Vec::new()
        },
        best_interest: Some(v1::BestInterestDetermination {
            authority_kind: v1::DeterminingAuthority::ChildProtection as i32,
            outcome: v1::BestInterestOutcome::Return as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Plans case `index`'s steps.
fn plan(index: usize, draw: &mut Draw, steps: &mut Vec<Planned>) {
    let mx = country("MX");
    let other = [country("GT"), country("HN"), country("SV")][draw.below(3) as usize];
    let (destination, origin) = if index.is_multiple_of(2) {
        (mx, other)
    } else {
        (other, mx)
    };
    let case_id = format!("{destination}-2026-{index:07}");
    let notice_at = jiff::civil::date(2026, draw.below(12) as i8 + 1, draw.below(28) as i8 + 1)
        .at(12, 0, 0, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
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
    let authority = (destination, Role::DestinationAuthority);
    let protection = (origin, Role::ChildProtection);
    step(authority, notice_at, Payload::AdvanceNotice(notice(draw)));
    match draw.below(20) {
        0..4 => return,
        4..7 => {
            let withdrawal = v1::CaseWithdrawal {
                reason: draw.below(4) as i32 + 1,
                text: String::new(),
            };
            step(
                authority,
                notice_at + hours(2),
                Payload::CaseWithdrawal(withdrawal),
            );
            return;
        }
        _ => {}
    }
    let point = &policy::dev_points(origin)[0];
    let arrival = arrival_after(notice_at, 3 + draw.below(12) as i64, &point.time_zone);
    let proposal = ArrivalProposal {
        proposal_id: "P1".into(),
        case_ids: vec![case_id.clone()],
        point_of_entry: point.code.clone(),
        arrival: Some(wire(arrival)),
        time_zone: point.time_zone.clone(),
        escort_officers: vec![v1::Officer {
            name: "escort".into(),
            institution: "INM".into(),
        }],
        ..Default::default()
    };
    step(
        authority,
        notice_at + hours(1),
        Payload::ArrivalProposal(proposal),
    );
    let accept = ArrivalResponse {
        proposal_id: "P1".into(),
        decision: Some(arrival_response::Decision::Accept(
            arrival_response::Accept {},
        )),
    };
    step(
        protection,
        notice_at + hours(2),
        Payload::ArrivalResponse(accept),
    );
    let handed_over = arrival + hours(if draw.below(10) == 0 { 60 } else { 1 });
    let handoff = v1::HandoffAck {
        case_ids: vec![case_id.clone()],
        point_of_entry: point.code.clone(),
        ..Default::default()
    };
    step(
        (origin, Role::Consulate),
        handed_over,
        Payload::HandoffAck(handoff),
    );
    let reception = v1::ReceptionConfirmation {
        placement: draw.below(4) as i32,
        ..Default::default()
    };
    step(
        protection,
        handed_over + hours(2),
        Payload::ReceptionConfirmation(reception),
    );
}

/// Mexico's case rules, with room at its point of entry for every arrival.
fn rules() -> Rules {
    let published = |code: &str, capacity: u32| {
        let mut points = policy::dev_points(country(code));
        points[0].capacity_per_day = capacity;
        (
            country(code),
            policy::published(country(code), &points).unwrap(),
        )
    };
    Rules {
        country: country("MX"),
        relaxed_best_interest: BTreeSet::new(),
        own_policy: published("MX", 1_000_000).1,
        peer_policies: RwLock::new(
            ["GT", "HN", "SV"]
                .iter()
                .map(|code| published(code, 30))
                .collect(),
        ),
        clock: Clock::system(),
    }
}

/// Applies one batch of steps with the case engine in one transaction on
/// the gateway's `cases` tree, as the store's own transactions run it;
/// returns the refusals.
fn write(cases: &sled::Tree, rules: &Rules, batch: &[Planned]) -> anyhow::Result<Vec<String>> {
    let bodies: Vec<EnvelopeBody> = batch
        .iter()
        .map(|planned| EnvelopeBody {
            message_id: uuid::Uuid::now_v7().to_string(),
            case_id: planned.case_id.clone(),
            sender: Some(Sender {
                country: planned.sender.0.to_string(),
                agency: "BENCH".into(),
                role: planned.sender.1.to_proto() as i32,
                delegated_consulate_country: String::new(),
                ..Default::default()
            }),
            created_at: Some(wire(planned.at)),
            payload: Some(planned.payload.clone()),
            ..Default::default()
        })
        .collect();
    let refused = cases
        .transaction(|tx| {
            let mut refused = Vec::new();
            for (planned, body) in batch.iter().zip(&bodies) {
                let step = Step {
                    body,
                    payload: &planned.payload,
                    sender: planned.sender.0,
                    role: planned.sender.1,
                    recipient: planned.recipient,
                    now: planned.at,
                };
                let tx = retorno_gateway::kv::TxTree::Sled(tx);
                if let Err(refusal) = rules.apply(&tx, &step)? {
                    refused.push(format!("{}: {}", planned.case_id, refusal.message));
                }
            }
            Ok(refused)
        })
        .map_err(
            |e: sled::transaction::TransactionError<retorno_gateway::store::StoreError>| {
                anyhow::anyhow!("{e:?}")
            },
        )?;
    Ok(refused)
}

/// The stopped gateway's sled database itself (this bench writes cases
/// straight into it), once the store has released it.
async fn sled_database(dir: &std::path::Path) -> sled::Db {
    eventually("the database to be free", || async { sled::open(dir).ok() }).await
}

/// A running process's peak resident memory so far (VmHWM), in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `command` to its end; returns its output and its peak resident
/// memory in KiB, read from /proc every 2 ms (the high-water mark only grows,
/// so the last reading is at most 2 ms short of the end).
fn run_measured(command: &mut Command) -> anyhow::Result<(std::process::Output, u64)> {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        while finished
            .recv_timeout(std::time::Duration::from_millis(2))
            .is_err()
        {
            match peak_kib(pid) {
                Some(kib) => peak = peak.max(kib),
                None => break,
            }
        }
        peak
    });
    let output = child.wait_with_output()?;
    let _ = done.send(());
    let peak = watcher.join().unwrap_or(0);
    Ok((output, peak))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let region = Region::new(&["MX", "GT", "HN", "SV"]);
    let config_file = region.write_config("MX");
    let config = region.config("MX");
    let started = Instant::now();
    {
        drop(Store::open(&config.data_dir, &config.storage)?);
        let db = sled_database(&config.data_dir).await;
        let cases = db.open_tree("cases")?;
        let rules = rules();
        let mut draw = Draw(2026);
        let mut refused = Vec::new();
        let mut steps = Vec::new();
        for index in 0..options.cases {
            plan(index, &mut draw, &mut steps);
            if steps.len() >= 2000 {
                refused.extend(write(&cases, &rules, &steps)?);
                steps.clear();
            }
            if index > 0 && index % 100_000 == 0 {
                eprintln!(
                    "{index} cases written ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        refused.extend(write(&cases, &rules, &steps)?);
        db.flush_async().await?;
        anyhow::ensure!(
            refused.is_empty(),
            "generated steps were refused: {:?}",
            &refused[..refused.len().min(5)]
        );
    }
    drop(sled_database(&config.data_dir).await);
    println!(
        "generated {} cases in {:.1} s",
        options.cases,
        started.elapsed().as_secs_f64()
    );
    let program = std::env::current_exe()?.with_file_name("gateway-process");
    let out = region.dir().join("mx-2026.json");
    let started = Instant::now();
    let (report, peak) = run_measured(
        Command::new(&program)
            .args(["stats", "report", "--config"])
            .arg(&config_file)
            .args(["--from", "2026-01", "--to", "2026-12", "--out"])
            .arg(&out),
    )
    .with_context(|| format!("running {}", program.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.status.success(),
        "stats report failed: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    println!(
        "stats report over {} cases: {seconds:.2} s, peak resident memory {:.0} MiB",
        options.cases,
        peak as f64 / 1024.0
    );
    Ok(())
}
