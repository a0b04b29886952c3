//! Moving a gateway (issue 13, point 4): a stopped gateway's whole database
//! is copied into an empty one and checked, and the gateway then runs on the
//! copy as if nothing had happened: its queue goes out in order and once,
//! its audit chain and every seal verify, its sealed envelopes open with the
//! same key. The target here is a second sled database, because the copy and
//! its checks are engine-neutral (`kv::copy`, `kv::compare`); moving onto a
//! real PostgreSQL is the PostgreSQL engine's own test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use retorno_gateway::{audit, kv};
use retorno_tests::{
    Region, country, eventually, inbox_now, new_key, notice_to, open_database, v1,
};

/// The copied audit chain, walked with `audit verify`'s checks.
fn chain_of(db: &kv::Db) -> audit::Chain {
    let tree = db.open_tree("audit").unwrap();
    let log = tree.iter().map(|item| {
        let (key, value) = item?;
        Ok((key.to_vec(), value.to_vec()))
    });
    audit::verify_log(Box::new(log)).unwrap()
}

#[tokio::test]
async fn a_gateway_with_a_mixed_history_runs_on_its_copy_with_its_queue_its_chain_and_its_seals() {
    let region = Region::new(&["MX", "GT"]);
    let mut mx_config = region.config("MX");
    mx_config.storage.keys = vec![new_key(&region, "mx-2026-11.key")];
    let gt_config = region.config("GT");
    let gt = region.start_with(gt_config.clone()).await;
    let mx = region.start_with(mx_config.clone()).await;

    // A history: notices delivered, a refusal, then notices queued while GT is down.
    let mut inm = region.agency("MX", "destination-authority").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let notice = notice_to("GT", &format!("MX-2026-13{i:02}"));
        sent.push(inm.submit(notice).await.unwrap().message_id);
    }
    eventually("MX's first notices to be delivered", || async {
        (mx.outbox_depth(country("GT")) == 0).then_some(())
    })
    .await;
    let mut consulate = region.agency("MX", "consulate").await;
    consulate
        .submit(notice_to("GT", "MX-2026-1399"))
        .await
        .unwrap_err();
    gt.shutdown().await;
    for i in 3..5 {
        let notice = notice_to("GT", &format!("MX-2026-13{i:02}"));
        sent.push(inm.submit(notice).await.unwrap().message_id);
    }
    assert_eq!(mx.outbox_depth(country("GT")), 2);
    mx.shutdown().await;

    // The move: MX's database copied into a new, empty one, and checked.
    let source = open_database(&mx_config).await;
    let moved = region.dir().join("MX-moved");
    let target = kv::Db::Sled(sled::open(&moved).unwrap());
    let copied = kv::copy(&source, &target).unwrap();
    let count = |tree| copied.trees.iter().find(|(t, _)| *t == tree).unwrap().1;
    assert_eq!(count("outbox"), 2, "the queue");
    assert_eq!(
        count("sent"),
        5,
        "every notice accepted, with its receipt once delivered"
    );
    let compared = kv::compare(&source, &target).unwrap();
    assert!(compared.iter().all(kv::Compared::same), "{compared:?}");
    let chain = chain_of(&target);
    assert!(chain.broken.is_none(), "{chain:?}");
    assert_eq!(chain.entries, count("audit"));
    assert_eq!(chain, chain_of(&source), "the same head");
    // A second run finds the target taken and writes nothing.
    let again = kv::copy(&source, &target).unwrap_err();
    assert!(again.to_string().contains("not empty"), "{again}");
    drop((source, target));

    // `audit verify` on the copy: the chain, and every seal, opened with the same key.
    let mut moved_config = mx_config.clone();
    moved_config.data_dir = moved;
    let report = eventually("the copy to be free and verified", || async {
        audit::verify_stopped(&moved_config).await.ok()
    })
    .await;
    assert!(report.intact(), "{report}");
    assert!(report.seals.verified > 0, "{report}");

    // MX runs on the copy: the queue goes out, and GT holds each notice once, in order.
    let mx = region.restart_with(moved_config).await;
    let gt = region.restart_with(gt_config).await;
    eventually("MX's queue to go out from the copy", || async {
        (mx.outbox_depth(country("GT")) == 0).then_some(())
    })
    .await;
    let mut sbs = region.agency("GT", "child-protection").await;
    let received: Vec<String> = inbox_now(&mut sbs, 0)
        .await
        .into_iter()
        .map(|item| item.body.unwrap().message_id)
        .collect();
    assert_eq!(received, sent, "every notice once, in the order accepted");
    let mut inm = region.agency_when_up("MX", "destination-authority").await;
    for id in &sent {
        let status = inm.status(id).await.unwrap();
        assert_eq!(status.state(), v1::DeliveryState::Delivered, "{id}");
    }
    mx.shutdown().await;
    gt.shutdown().await;
}
