//! Issue 4: no personal data in logs. A whole case runs through real
//! gateways while every log line of the process, at TRACE level and from
//! every crate (tracing events, and `log` records from sled and rustls), is
//! captured; the child's names, birth date, document number and family
//! contact must appear in none of them, in any rendering.
//!
//! A global subscriber is the only one that sees the gateways' spawned
//! tasks, so this test has its own binary and is its only test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use jiff::{SignedDuration, Timestamp};
use retorno_client::compose;
use retorno_gateway::{
    Store,
    retention::{self, Mode},
};
use retorno_proto::v1::{CaseState, DeterminingAuthority, child, submit_request::Payload};
use retorno_tests::{
    Region, country, eventually, inbox_now, new_key, notice, notice_to, return_a_child,
    submit_case_message, wait_for_state,
};
use tracing_subscriber::{
    Layer,
    filter::{LevelFilter, filter_fn},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Everything logged, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The example child's personal data in the renderings a log line might use:
/// as typed, Debug-escaped (`Ana Lu\u{ed}a`), as bytes in decimal or hex, and
/// the birth date (29 February 2012) as a date or a Debug struct.
fn personal_data() -> Vec<String> {
    let mut needles: Vec<String> = [
        "Ana Lucía",
        "Ana Lu",
        "Lucía",
        "Pérez",
        "rez Xol",
        "Xol",
        "María",
        "RENAP-1203-4567",
        "1203-4567",
        "5555 0100",
        "2012-02-29",
        "2012-02-30",
        "2012-2-29",
        "29/02/2012",
        "29.02.2012",
        "20120229",
        "year: 2012",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let given = "Ana Luc".as_bytes();
    needles.push(
        given
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    needles.push(given.iter().map(|b| format!("{b:02x}")).collect());
    needles.push(given.iter().map(|b| format!("{b:02X}")).collect());
    needles
}

/// Lives as long as its thread's thread-locals: see [`thread_alive`].
struct Alive;

impl Drop for Alive {
    fn drop(&mut self) {}
}

thread_local! {
    static ALIVE: Alive = const { Alive };
}

/// Whether this thread's thread-locals are still there. A thread that ends
/// (a store's writer thread, a runtime's worker) runs their destructors,
/// crossbeam-epoch's among them, which frees sled's deferred garbage, and
/// sled logs that at TRACE; the fmt layer's buffer, a thread-local too, may
/// be gone by then, and using it aborts the process ("thread local panicked
/// on drop", about one run in 150). Such a line is dropped: [`ALIVE`] is
/// first used just before the fmt layer's buffer, so it is destroyed just
/// after it. A gateway caps sled's lines at info, so this concerns only a
/// subscriber that takes sled's TRACE, like this test's.
fn thread_alive() -> bool {
    ALIVE.try_with(|_| ()).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_case_leaves_no_personal_data_in_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_filter(LevelFilter::TRACE)
                .with_filter(filter_fn(|_| thread_alive())),
        )
        .try_init()
        .unwrap();

    let region = Region::new(&["MX", "GT"]);
    // Both gateways encrypt at rest, as `retorno-gateway dev` sets them up:
    // sled's TRACE lines print every value it writes, so in the clear they
    // would print the envelopes.
    let mut mx_config = region.config("MX");
    mx_config.storage.keys = vec![new_key(&region, "MX.key")];
    // Mexico relaxes the best-interest gate for Guatemala, which has not
    // agreed, so that one notice is refused on arrival (a refusal path).
    mx_config.case.relax_best_interest_for = vec![country("GT")];
    let mx = region.start_with(mx_config).await;
    let mut gt_config = region.config("GT");
    gt_config.storage.keys = vec![new_key(&region, "GT.key")];
    let gt = region.start_with(gt_config.clone()).await;

    // The story: notice to follow-up.
    let case = "MX-2026-0001";
    return_a_child(&region, case, notice()).await;
    for role in ["child-protection", "consulate"] {
        let mut agency = region.agency("GT", role).await;
        assert!(!inbox_now(&mut agency, 0).await.is_empty());
    }
    let mut inm = region.agency("MX", "destination-authority").await;
    inm.case(case).await.unwrap();

    // Refusals: a notice whose determination does not find return (at
    // submit), a second notice for the same case, a night arrival, and a
    // notice refused by the receiving gateway; and a withdrawal.
    let mut by_migration = notice_to("GT", "MX-2026-0002");
    if let Some(Payload::AdvanceNotice(n)) = &mut by_migration.payload {
        n.best_interest.as_mut().unwrap().outcome =
            retorno_proto::v1::BestInterestOutcome::Stay as i32;
    }
    assert!(inm.submit(by_migration).await.is_err());
    assert!(inm.submit(notice_to("GT", case)).await.is_err());
    let mut bad_date = notice_to("GT", "MX-2026-0005");
    if let Some(Payload::AdvanceNotice(n)) = &mut bad_date.payload {
        let Some(child::Age::BirthDate(date)) = &mut n.child.as_mut().unwrap().age else {
            panic!("the example child has a birth date")
        };
        date.day = 30;
    }
    let error = inm.submit(bad_date).await.unwrap_err().to_string();
    assert!(error.contains("2012-02-30"), "the agency is told: {error}");
    let withdrawn = "MX-2026-0003";
    inm.submit(notice_to("GT", withdrawn)).await.unwrap();
    let night = compose::proposal(&compose::Proposal {
        id: "P1",
        cases: Vec::new(),
        point: "GT-TECUN-UMAN",
        at: &format!(
            "{} 21:30",
            retorno_tests::weekday_ahead("America/Guatemala")
        ),
        time_zone: "America/Guatemala",
        mode: "land",
        reference: "bus INM-0452",
        escorts: &["Lucía Gómez/INM".to_owned()],
    })
    .unwrap();
    assert!(submit_case_message(&inm, withdrawn, night).await.is_err());
    let withdrawal = compose::withdrawal("protection-granted", "asylum granted").unwrap();
    submit_case_message(&inm, withdrawn, withdrawal)
        .await
        .unwrap();
    let mut refused = notice_to("GT", "MX-2026-0004");
    if let Some(Payload::AdvanceNotice(n)) = &mut refused.payload {
        n.best_interest.as_mut().unwrap().authority_kind = DeterminingAuthority::Migration as i32;
    }
    inm.submit(refused).await.unwrap();
    let sbs = region.agency("GT", "child-protection").await;
    wait_for_state(&sbs, withdrawn, CaseState::Withdrawn).await;
    eventually("Mexico's outbox to be delivered", || async {
        (mx.outbox_depth(country("GT")) == 0).then_some(())
    })
    .await;

    // Retention, a year and a half later, on Guatemala's stopped gateway.
    gt.shutdown().await;
    let store = eventually("GT's database to be free", || async {
        Store::open(&gt_config.data_dir, &gt_config.storage).ok()
    })
    .await;
    let later = Timestamp::now()
        .checked_add(SignedDuration::from_hours(550 * 24))
        .unwrap();
    let policy = retention::Policy::from(&gt_config.storage);
    let report = retention::purge(&store, &policy, later, Mode::Purge)
        .await
        .unwrap();
    report.log();
    assert!(report.purged() > 0);
    drop(store);
    mx.shutdown().await;

    let logs = captured.text();
    assert!(logs.contains("gateway started"), "the capture works");
    assert!(logs.contains(" TRACE "), "TRACE lines are captured");
    assert!(
        logs.contains("sled::pagecache"),
        "sled's own lines (which print every value written) are captured"
    );
    assert!(logs.contains(case), "case ids may be logged");
    for needle in personal_data() {
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&needle)).collect();
        assert!(
            lines.is_empty(),
            "{needle:?} is logged:\n{}",
            lines.join("\n")
        );
    }
}
