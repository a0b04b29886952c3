//! Moving a gateway (issue 13, point 4): a stopped gateway's whole database
//! is copied into an empty one and checked, and the gateway then runs on the
//! copy as if nothing had happened: its queue goes out in order and once,
//! its audit chain and every seal verify, its sealed envelopes open with the
//! same key. The target here is a second sled database, because the copy and
//! its checks are engine-neutral (`kv::copy`, `kv::compare`); moving onto a
//! real PostgreSQL is the PostgreSQL engine's own test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use retorno_gateway::{Config, audit, kv};
use retorno_tests::{
    Region, country, engine, eventually, inbox_now, new_key, notice_to, open_database, postgres, v1,
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

/// MX (sled, with an at-rest key) and GT, and a history at MX: 3 notices
/// delivered, a refusal, then 2 notices queued while GT is down. Both are
/// stopped at the end; returns their configurations and the ids MX accepted.
async fn a_history(region: &Region) -> (Config, Config, Vec<String>) {
    let mut mx_config = region.config("MX");
    mx_config.storage.keys = vec![new_key(region, "mx-2026-11.key")];
    let gt_config = region.config("GT");
    let gt = region.start_with(gt_config.clone()).await;
    let mx = region.start_with(mx_config.clone()).await;
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
    // The stopped gateway's database is free once its flush task has ended.
    drop(open_database(&mx_config).await);
    (mx_config, gt_config, sent)
}

/// MX, moved, runs with `mx_config`: its queue goes out, GT holds each
/// notice once in the order accepted, and MX holds every receipt.
async fn runs_on_the_copy(region: &Region, mx_config: Config, gt_config: Config, sent: &[String]) {
    let mx = region.restart_with(mx_config).await;
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
    for id in sent {
        let status = inm.status(id).await.unwrap();
        assert_eq!(status.state(), v1::DeliveryState::Delivered, "{id}");
    }
    mx.shutdown().await;
    gt.shutdown().await;
}

#[tokio::test]
async fn a_gateway_with_a_mixed_history_runs_on_its_copy_with_its_queue_its_chain_and_its_seals() {
    let region = Region::new(&["MX", "GT"]);
    let (mx_config, gt_config, sent) = a_history(&region).await;

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
    runs_on_the_copy(&region, moved_config, gt_config, &sent).await;
}

/// Runs `gateway-process migrate --config FILE` with the URL in
/// `RETORNO_MIGRATE_TO`: whether it succeeded, its stdout and stderr.
async fn migrate(config: &Config, file: &std::path::Path, url: &str) -> (bool, String, String) {
    migrate_with(config, file, url, &[]).await
}

/// [`migrate`] with more arguments.
async fn migrate_with(
    config: &Config,
    file: &std::path::Path,
    url: &str,
    more: &[&std::ffi::OsStr],
) -> (bool, String, String) {
    std::fs::write(file, config.to_toml().unwrap()).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-process"));
    command
        .args(["migrate", "--config", file.to_str().unwrap()])
        .args(more)
        .env("RETORNO_MIGRATE_TO", url);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[tokio::test]
async fn migrate_moves_a_sled_gateway_onto_postgresql_where_it_runs_on() {
    let Some(cluster) = postgres::shared() else {
        return;
    };
    let region = Region::new(&["MX", "GT"]);
    let (mx_config, gt_config, sent) = a_history(&region).await;
    let url = cluster.database(&engine::database_name("mx"));
    let file = region.dir().join("mx.toml");

    // Guatemala's config pointed at Mexico's folder by mistake: refused
    // before anything is copied.
    let mut wrong = region.config("GT");
    wrong.data_dir = mx_config.data_dir.clone();
    let (ok, out, err) = migrate(&wrong, &region.dir().join("wrong.toml"), &url).await;
    assert!(
        !ok && err.contains("belongs to the gateway of MX, not of GT")
            && err.contains("is --config this gateway's own file?"),
        "{out}{err}"
    );

    let (ok, out, err) = migrate(&mx_config, &file, &url).await;
    assert!(ok, "{out}{err}");
    for line in [
        "  copied outbox                2 entries",
        "  copied sent                  5 entries",
        "  same    outbox                2 entries, same keys and values",
        "  audit chain of the target intact: height ",
        "set [storage] backend = \"postgres\" and url, then start it",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    let (ok, _, err) = migrate(&mx_config, &file, &url).await;
    assert!(
        !ok && err.contains("the target database is not empty"),
        "{err}"
    );

    // In the file: backend = "postgres" and url. The chain and every seal verify there.
    let mut pg_config = mx_config.clone();
    pg_config.storage = engine::postgres_storage(&url, "node-a");
    pg_config.storage.keys = mx_config.storage.keys.clone();
    let report = audit::verify_stopped(&pg_config).await.unwrap();
    assert!(report.intact() && report.seals.verified > 0, "{report}");

    // MX runs on PostgreSQL; a migrate into its database now is refused by its lease.
    let mx = region.restart_with(pg_config.clone()).await;
    let (ok, _, err) = migrate(&mx_config, &file, &url).await;
    assert!(!ok && err.contains("holds this database's lease"), "{err}");
    mx.shutdown().await;
    runs_on_the_copy(&region, pg_config, gt_config, &sent).await;
}

/// `migrate --to-tls-ca --to-tls-cert --to-tls-key`: onto a PostgreSQL that
/// knows its clients by certificate (`hostssl ... cert`), the copy goes over
/// TLS with the client certificate, and the last line says which settings
/// the gateway's file needs; without the certificate the server refuses the
/// copy and the error names the flag that gives it (not the gateway file's
/// setting, which the operator did not type here).
#[tokio::test]
async fn migrate_onto_a_postgresql_that_asks_for_a_client_certificate() {
    let Some((cluster, tls)) = postgres::Cluster::start_with_tls() else {
        return;
    };
    let region = Region::new(&["MX", "GT"]);
    let (mx_config, gt_config, sent) = a_history(&region).await;
    let url = cluster.database(&engine::database_name("mx"));
    let file = region.dir().join("mx.toml");
    let arg = |flag: &str| std::ffi::OsString::from(flag);
    let server_only = [arg("--to-tls-ca"), tls.ca.clone().into_os_string()];
    let server_only: Vec<&std::ffi::OsStr> = server_only.iter().map(|a| a.as_os_str()).collect();
    let (ok, out, err) = migrate_with(&mx_config, &file, &url, &server_only).await;
    assert!(
        !ok && err.contains("this node presents none: set --to-tls-cert and --to-tls-key")
            && !err.contains("storage."),
        "{out}{err}"
    );

    let mutual = [
        arg("--to-tls-ca"),
        tls.ca.clone().into_os_string(),
        arg("--to-tls-cert"),
        tls.client_cert.clone().into_os_string(),
        arg("--to-tls-key"),
        tls.client_key.clone().into_os_string(),
    ];
    let mutual: Vec<&std::ffi::OsStr> = mutual.iter().map(|a| a.as_os_str()).collect();
    let (ok, out, err) = migrate_with(&mx_config, &file, &url, &mutual).await;
    assert!(ok, "{out}{err}");
    let settings = format!(
        "set [storage] backend = \"postgres\" and url, tls_ca = \"{}\", tls_cert = \"{}\", tls_key = \"{}\", then start it",
        tls.ca.display(),
        tls.client_cert.display(),
        tls.client_key.display()
    );
    assert!(out.contains(&settings), "{settings:?} in\n{out}");

    // MX runs on the copy over the same mutual TLS.
    let mut pg_config = mx_config.clone();
    pg_config.storage = engine::postgres_storage(&url, "node-a");
    pg_config.storage.keys = mx_config.storage.keys.clone();
    pg_config.storage.tls_ca = Some(tls.ca.clone());
    pg_config.storage.tls_cert = Some(tls.client_cert.clone());
    pg_config.storage.tls_key = Some(tls.client_key.clone());
    runs_on_the_copy(&region, pg_config, gt_config, &sent).await;
}
