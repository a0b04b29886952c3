//! A gateway restored from a backup (or whose disk lied about its cache) has
//! gone back in time: it lost messages it had accepted, or stored. It must
//! not carry on silently. Its peer still holds the rest, so when their
//! delivery stream opens the two compare positions; each side says what it
//! found, the one that went back lists the message ids it lost, and no
//! sequence number is given twice.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use retorno_gateway::{
    Gateway,
    store::{Direction, Finding, FindingKind},
};
use retorno_proto::v1::DeliveryState;
use retorno_tests::{Region, country, eventually, inbox_with, notice_to, open_store};

/// Submits `count` notices from MX's migration institute; their message ids.
async fn send(region: &Region, prefix: &str, count: usize) -> Vec<String> {
    let mut inm = region.agency_when_up("MX", "destination-authority").await;
    let mut ids = Vec::new();
    for i in 0..count {
        let case = format!("MX-2026-{prefix}{i:03}");
        ids.push(inm.submit(notice_to("GT", &case)).await.unwrap().message_id);
    }
    ids
}

/// Waits until MX holds GT's receipt for `id` (and so for all before it).
async fn delivered(region: &Region, id: &str) {
    let inm = region.agency_when_up("MX", "destination-authority").await;
    eventually("MX to hold GT's receipt", || {
        let mut inm = inm.clone();
        let id = id.to_owned();
        async move {
            let status = inm.status(&id).await.ok()?;
            (status.state() == DeliveryState::Delivered).then_some(())
        }
    })
    .await;
}

/// Copies a stopped gateway's database folder, once the gateway released it.
async fn copy_stopped(region: &Region, code: &str, to: &Path) {
    let config = region.config(code);
    drop(open_store(&config).await);
    retorno_tests::copy_dir(&config.data_dir, to).unwrap();
}

/// Puts `backup` back as `code`'s database, as an operator restores one.
async fn restore(region: &Region, code: &str, backup: &Path) {
    let config = region.config(code);
    drop(open_store(&config).await);
    std::fs::remove_dir_all(&config.data_dir).unwrap();
    retorno_tests::copy_dir(backup, &config.data_dir).unwrap();
}

/// Waits until `gateway` has kept a finding of `kind`.
async fn finding(gateway: &Gateway, kind: FindingKind) -> Finding {
    eventually("the finding", || async move {
        let findings = gateway.findings().unwrap();
        findings.into_iter().find(|f| f.kind() == Some(kind))
    })
    .await
}

#[tokio::test]
async fn mexico_restored_from_a_backup_finds_out_lists_what_it_lost_and_never_reuses_a_number() {
    let region = Region::new(&["MX", "GT"]);
    let gt = region.start("GT").await;
    let mx = region.start("MX").await;
    let before = send(&region, "A", 5).await;
    delivered(&region, before.last().unwrap()).await;
    mx.shutdown().await;
    let backup = region.dir().join("mx-backup");
    copy_stopped(&region, "MX", &backup).await;

    // After the backup, 100 more notices are accepted and delivered.
    let mx = region.restart_with(region.config("MX")).await;
    let lost = send(&region, "B", 100).await;
    delivered(&region, lost.last().unwrap()).await;
    mx.shutdown().await;

    // Mexico's database is restored from the backup: those 100 are gone.
    restore(&region, "MX", &backup).await;
    let mx = region.restart_with(region.config("MX")).await;
    let found = finding(&mx, FindingKind::OutboxWentBack).await;
    assert_eq!((found.ours, found.theirs, found.count), (5, 105, 100));
    assert_eq!(
        found.message_ids, lost,
        "MX lists exactly the ids GT holds and MX lost"
    );
    let seen = finding(&gt, FindingKind::PeerOutboxWentBack).await;
    assert_eq!((seen.ours, seen.theirs, seen.count), (105, 5, 100));
    assert_eq!(seen.message_ids, lost);
    let mut inm = region.agency_when_up("MX", "destination-authority").await;
    assert!(
        inm.status(&lost[0]).await.is_err(),
        "MX no longer knows a lost message"
    );

    // New notices continue after GT's high-water mark and arrive once each.
    let after = send(&region, "C", 10).await;
    let mut sbs = region.agency_when_up("GT", "child-protection").await;
    let items = inbox_with(&mut sbs, 0, 115).await;
    let ids: Vec<String> = items
        .iter()
        .map(|item| item.body.as_ref().unwrap().message_id.clone())
        .collect();
    let expected: Vec<String> = [before, lost.clone(), after.clone()].concat();
    assert_eq!(
        ids, expected,
        "nothing delivered twice, nothing missing, in order"
    );
    delivered(&region, after.last().unwrap()).await;

    // Reconnecting finds the same thing again and keeps it once.
    mx.shutdown().await;
    let mx = region.restart_with(region.config("MX")).await;
    delivered(&region, after.last().unwrap()).await;
    assert_eq!(mx.findings().unwrap().len(), 1);
    mx.shutdown().await;
    gt.shutdown().await;

    let gt_store = open_store(&region.config("GT")).await;
    let (count, numbered) = gt_store
        .ids_after(Direction::In, country("MX"), 105)
        .unwrap();
    assert_eq!(count, 10);
    assert_eq!(numbered, after, "the new notices took numbers 106..=115");
    let (_, first) = gt_store.ids_after(Direction::In, country("MX"), 5).unwrap();
    assert_eq!(
        first[..100],
        lost[..],
        "numbers 6..=105 still name the lost notices"
    );
}

#[tokio::test]
async fn guatemala_restored_from_a_backup_is_told_which_messages_its_agencies_may_have_missed() {
    let region = Region::new(&["MX", "GT"]);
    let gt = region.start("GT").await;
    let mx = region.start("MX").await;
    let before = send(&region, "A", 5).await;
    delivered(&region, before.last().unwrap()).await;
    gt.shutdown().await;
    let backup = region.dir().join("gt-backup");
    copy_stopped(&region, "GT", &backup).await;

    let gt = region.restart_with(region.config("GT")).await;
    let lost = send(&region, "B", 100).await;
    delivered(&region, lost.last().unwrap()).await;
    gt.shutdown().await;

    // Guatemala's database is restored: it stored 100 messages MX holds receipts for.
    restore(&region, "GT", &backup).await;
    let gt = region.restart_with(region.config("GT")).await;
    let missed = finding(&gt, FindingKind::InboxWentBack).await;
    assert_eq!((missed.ours, missed.theirs, missed.count), (5, 105, 100));
    assert_eq!(
        missed.message_ids, lost,
        "GT lists what its agencies may have missed"
    );
    let told = finding(&mx, FindingKind::PeerInboxWentBack).await;
    assert_eq!((told.ours, told.theirs, told.count), (105, 5, 100));
    assert_eq!(told.message_ids, lost);

    // Delivery goes on: a new notice arrives after the 5 GT still holds.
    let after = send(&region, "C", 1).await;
    let mut sbs = region.agency_when_up("GT", "child-protection").await;
    let items = inbox_with(&mut sbs, 0, 6).await;
    assert_eq!(items[5].body.as_ref().unwrap().message_id, after[0]);
    mx.shutdown().await;
    gt.shutdown().await;
}
