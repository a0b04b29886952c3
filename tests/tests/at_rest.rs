//! Issue 4, personal data at rest: a child's envelopes are sealed in the
//! outbox and the inbox under the operator's key, a new key takes over
//! without making old records unreadable, a sealed value cannot be moved to
//! another record, and the personal data of a closed case is purged after
//! its retention period while the proof of what happened stays.
//!
//! Every test runs on both engines. "On disk" means the bytes of every file
//! in the gateway's sled folder; on PostgreSQL, every row of the gateway's
//! database, and for the test of a whole region the files of a cluster of
//! its own (tables and WAL).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use jiff::{SignedDuration, Timestamp};
use prost::Message as _;
use retorno_client::compose;
use retorno_gateway::{
    at_rest::{AtRestError, KeyId, Vault},
    audit,
    case::{Applied, Refusal},
    config::Storage,
    identity::Role,
    need_to_know,
    retention::{self, Mode},
    storage::{CasesTx, TxError},
    store::{Answer, Enqueued, OutboxRecord, Received, Store, StoreError},
};
use retorno_proto::v1::{
    AdvanceNotice, CaseState, DeterminingAuthority, envelope_body::Payload as Body,
    submit_request::Payload,
};
use retorno_tests::{
    Region, country, engine, eventually, files_contain, inbox_now, new_key, notice, notice_to,
    return_a_child, submit_case_message, wait_for_state,
};
use uuid::Uuid;

/// The example child's names, as UTF-8 bytes.
const GIVEN_NAMES: &str = "Ana Lucía";
const FAMILY_NAMES: &str = "Pérez Xol";

fn no_case(_: &dyn CasesTx) -> Result<Result<Applied, Refusal>, TxError> {
    Ok(Ok(Applied {
        cases: vec![],
        state: CaseState::Unspecified,
    }))
}

/// Opens the store in `dir` (sled) or at `storage.url` (PostgreSQL),
/// waiting for a store just dropped to release sled's lock (its flush task
/// ends when its last handle goes).
async fn open(dir: &Path, storage: &Storage) -> Arc<Store> {
    eventually("the database to be free", || async {
        match Store::open(dir, storage) {
            Ok(store) => Some(store),
            Err(StoreError::Sled(_)) => None,
            Err(other) => panic!("{other}"),
        }
    })
    .await
}

/// [`open`] with at-rest `keys` instead of `storage`'s.
async fn open_with(dir: &Path, storage: &Storage, keys: &[PathBuf]) -> Arc<Store> {
    let storage = Storage {
        keys: keys.to_vec(),
        ..storage.clone()
    };
    open(dir, &storage).await
}

/// Whether `needle` is on disk in the stopped store's database: in any
/// file of its sled folder (which holds only it), or in any row of its
/// PostgreSQL database (the cluster's files hold other tests' databases).
async fn on_disk(dir: &Path, storage: &Storage, needle: &str) -> bool {
    match engine::current() {
        engine::Engine::Sled => files_contain(dir, needle.as_bytes()),
        engine::Engine::Postgres(_) => {
            engine::database_contains(dir, storage, needle.as_bytes()).await
        }
    }
}

/// The example notice as a sealed envelope's bytes, for case `case_id`.
fn notice_envelope(case_id: &str) -> Vec<u8> {
    retorno_tests::envelope("MX", "GT", case_id).encode_to_vec()
}

fn outbox_record(envelope: &[u8], id: Uuid) -> OutboxRecord {
    OutboxRecord {
        envelope: envelope.to_vec(),
        body_sha256: vec![0; 32],
        message_id: id.to_string(),
        kind: String::new(),
    }
}

/// Puts `envelope` in the outbox for GT and in the inbox from MX, durably.
async fn store_both_ways(store: &Store, envelope: &[u8]) -> u64 {
    let id = Uuid::now_v7();
    store
        .enqueue(
            country("GT"),
            id,
            id.as_bytes().to_vec(),
            outbox_record(envelope, id),
            &no_case,
        )
        .await
        .unwrap();
    let stored = store
        .receive(
            country("MX"),
            Uuid::now_v7(),
            envelope,
            b"hash",
            |_| Ok(None),
            |_, _| b"receipt".to_vec(),
        )
        .unwrap();
    let Received::Stored { cursor, .. } = stored else {
        panic!("{stored:?}")
    };
    store.commit().await.unwrap();
    store.publish_inbox(cursor);
    cursor
}

/// Two new key files under `dir/keys`: November's, then December's.
fn november_and_december(dir: &Path) -> (PathBuf, PathBuf) {
    let [november, december] = ["2026-11", "2026-12"].map(|month| {
        let file = dir.join(format!("keys/{month}.key"));
        retorno_gateway::at_rest::write_new_key(&file).unwrap();
        file
    });
    (november, december)
}

fn key_id(key: &Path) -> String {
    Vault::load(&[key.to_owned()])
        .unwrap()
        .sealing_key()
        .unwrap()
        .to_string()
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_childs_name_reaches_the_disk_only_when_no_key_is_configured() {
        for keyed in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let keys = if keyed {
                let key = dir.path().join("keys/2026-11.key");
                retorno_gateway::at_rest::write_new_key(&key).unwrap();
                vec![key]
            } else {
                vec![]
            };
            let storage = engine::storage_with_keys("mx", &keys);
            let store = open(&data, &storage).await;
            let envelope = notice_envelope("MX-2026-0001");
            store_both_ways(&store, &envelope).await;

            // Readers get the envelope back exactly.
            let queued = store.outbox_after(country("GT"), 0, 1, 1).unwrap();
            assert_eq!(queued[0].record.envelope, envelope);
            let received = store.inbox_after(0, 1).unwrap();
            assert_eq!(received[0].1.envelope, envelope);

            drop(store);
            for name in [GIVEN_NAMES, FAMILY_NAMES, "RENAP-1203-4567"] {
                assert_eq!(
                    on_disk(&data, &storage, name).await,
                    !keyed,
                    "{name:?} on disk with keys = {keys:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_new_key_seals_new_records_and_old_ones_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (november, december) = november_and_december(dir.path());
        let gt = country("GT");
        let old = notice_envelope("MX-2026-0001");
        let new = notice_envelope("MX-2026-0002");

        let storage = engine::storage_with_keys("mx", &[]);
        let store = open_with(&data, &storage, std::slice::from_ref(&november)).await;
        store_both_ways(&store, &old).await;
        drop(store);

        // December's key is added: new records use it, November's still open.
        let store = open_with(&data, &storage, &[november.clone(), december.clone()]).await;
        store_both_ways(&store, &new).await;
        let queued = store.outbox_after(gt, 0, 2, 10).unwrap();
        let envelopes: Vec<&[u8]> = queued
            .iter()
            .map(|i| i.record.envelope.as_slice())
            .collect();
        assert_eq!(envelopes, [old.as_slice(), new.as_slice()]);
        let received = store.inbox_after(0, 10).unwrap();
        let envelopes: Vec<&[u8]> = received
            .iter()
            .map(|(_, r)| r.envelope.as_slice())
            .collect();
        assert_eq!(envelopes, [old.as_slice(), new.as_slice()]);
        drop(store);

        // With December's key alone, the new records open (they carry its id)
        // and the old ones fail with an error naming November's key id.
        let store = open_with(&data, &storage, std::slice::from_ref(&december)).await;
        assert_eq!(
            store.outbox_after(gt, 1, 2, 1).unwrap()[0].record.envelope,
            new
        );
        assert_eq!(store.inbox_after(1, 1).unwrap()[0].1.envelope, new);
        let november_id = key_id(&november);
        let outbox_error = store.outbox_after(gt, 0, 1, 1).unwrap_err();
        let inbox_error = store.inbox_after(0, 1).unwrap_err();
        for error in [outbox_error, inbox_error] {
            assert!(
                matches!(
                    &error,
                    StoreError::AtRest {
                        source: AtRestError::UnknownKey { key_id },
                        ..
                    } if key_id.to_string() == november_id
                ),
                "{error}"
            );
            assert!(error.to_string().contains(&november_id), "{error}");
        }
    }

    #[tokio::test]
    async fn a_sealed_envelope_copied_into_another_record_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = dir.path().join("keys/2026-11.key");
        retorno_gateway::at_rest::write_new_key(&key).unwrap();
        let storage = engine::storage_with_keys("mx", std::slice::from_ref(&key));
        let store = open(&data, &storage).await;
        let first = store_both_ways(&store, &notice_envelope("MX-2026-0001")).await;
        let second = store_both_ways(&store, &notice_envelope("MX-2026-0002")).await;
        drop(store);

        // Someone with write access to the database puts entry 1's bytes under entry 2.
        let db = engine::raw_database(&data, &storage).await;
        let inbox = db.open_tree("inbox").unwrap();
        let bytes = inbox.get(first.to_be_bytes()).unwrap().unwrap();
        inbox.insert(second.to_be_bytes(), bytes).unwrap();
        db.flush().unwrap();
        drop((inbox, db));

        let store = open(&data, &storage).await;
        assert!(
            store.inbox_after(0, 1).is_ok(),
            "entry 1 is where it belongs"
        );
        let error = store.inbox_after(first, 1).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::AtRest {
                    tree: "inbox",
                    source: AtRestError::Refused { .. }
                }
            ),
            "{error}"
        );
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn rekey_seals_every_kept_envelope_under_the_newest_key_so_an_older_one_can_go() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (november, december) = november_and_december(dir.path());
        let gt = country("GT");
        let (clear, old, new) = (
            notice_envelope("MX-2026-0001"),
            notice_envelope("MX-2026-0002"),
            notice_envelope("MX-2026-0003"),
        );
        let storage = engine::storage_with_keys("mx", &[]);

        // Before any key, one envelope each way in the clear; under
        // November's, one each way and one GT rejected, kept for a requeue.
        let store = open_with(&data, &storage, &[]).await;
        store_both_ways(&store, &clear).await;
        drop(store);
        let store = open_with(&data, &storage, std::slice::from_ref(&november)).await;
        store_both_ways(&store, &old).await;
        let rejected = Uuid::now_v7();
        let record = outbox_record(&old, rejected);
        let Enqueued::New(seq, _) = store
            .enqueue(gt, rejected, b"r".to_vec(), record, &no_case)
            .await
            .unwrap()
        else {
            panic!("not accepted")
        };
        let answer = Answer::rejected(seq, rejected, b"too large".to_vec());
        store.record_answers(gt, vec![answer]).await.unwrap();
        drop(store);

        // December's key is appended; one envelope each way under it.
        let both = [november.clone(), december.clone()];
        let store = open_with(&data, &storage, &both).await;
        store_both_ways(&store, &new).await;
        let (november_id, december_id) = (
            Vault::load(std::slice::from_ref(&november)).unwrap().sealing_key().unwrap(),
            Vault::load(std::slice::from_ref(&december)).unwrap().sealing_key().unwrap(),
        );
        let dry = store.rekey(true).await.unwrap();
        let by_key = |counts: &[(KeyId, usize)]| counts.iter().copied().collect::<BTreeMap<_, _>>();
        assert_eq!(dry.by_key, by_key(&[(november_id, 3), (december_id, 2)]));
        assert_eq!((dry.clear, dry.resealed), (2, 5));
        let rekeyed = || {
            audit::entries(&store)
                .unwrap()
                .into_iter()
                .filter(|e| e.event == audit::Event::Rekeyed as i32)
                .map(|e| (e.party, e.detail))
                .collect::<Vec<_>>()
        };
        assert_eq!(store.rekey(true).await.unwrap(), dry, "a dry run changes nothing");
        assert!(rekeyed().is_empty(), "a dry run logs nothing");
        assert_eq!(store.rekey(false).await.unwrap(), dry);
        let after = store.rekey(true).await.unwrap();
        assert_eq!(after.by_key, by_key(&[(december_id, 7)]));
        assert_eq!((after.clear, after.resealed), (0, 0));
        // The audit log says what the rekey did, in key ids and counts (keys
        // in id order).
        let before: Vec<String> =
            dry.by_key.iter().map(|(id, n)| format!("{n} under key {id}")).collect();
        assert_eq!(
            rekeyed(),
            [(
                "retorno-gateway rekey".to_owned(),
                format!(
                    "sealed 5 kept envelope(s) again under key {december_id}; before: {}, 2 in the clear",
                    before.join(", ")
                )
            )]
        );
        // A rekey with nothing left to seal is recorded too.
        assert_eq!(store.rekey(false).await.unwrap().resealed, 0);
        assert_eq!(
            rekeyed().last().unwrap().1,
            format!("sealed 0 kept envelope(s) again under key {december_id}; before: 7 under key {december_id}")
        );
        assert_eq!(rekeyed().len(), 2);
        drop(store);
        // No record holds the child's name in the clear any more.
        assert!(!engine::database_contains(&data, &storage, GIVEN_NAMES.as_bytes()).await);

        // With December's key alone, everything opens, in order, and the
        // rejected message can still be requeued.
        let store = open_with(&data, &storage, std::slice::from_ref(&december)).await;
        // Sequence 3 is the rejected message, out of the outbox.
        let queued = store.outbox_after(gt, 0, 4, 10).unwrap();
        let envelopes: Vec<&[u8]> = queued.iter().map(|i| i.record.envelope.as_slice()).collect();
        assert!(envelopes == [clear.as_slice(), old.as_slice(), new.as_slice()], "not as stored");
        let received = store.inbox_after(0, 10).unwrap();
        let envelopes: Vec<&[u8]> = received.iter().map(|(_, r)| r.envelope.as_slice()).collect();
        assert!(envelopes == [clear.as_slice(), old.as_slice(), new.as_slice()], "not as stored");
        assert!(matches!(
            store.requeue(rejected, "ops").await.unwrap(),
            retorno_gateway::store::Requeued::Now(_)
        ));
        let requeued = store.outbox_after(gt, 4, 5, 10).unwrap();
        assert!(requeued[0].record.envelope == old, "the kept envelope opens");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn retorno_gateway_rekey_lets_an_operator_retire_a_key_and_the_notice_still_arrives() {
        let region = Region::new(&["MX", "GT"]);
        region.take_offline("GT");
        let november = new_key(&region, "MX-2026-11.key");
        let december = new_key(&region, "MX-2026-12.key");
        let mut config = region.config("MX");
        config.storage.keys = vec![november.clone()];
        let mx = region.start_with(config.clone()).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let sent = inm.submit(notice_to("GT", "MX-2026-0001")).await.unwrap();
        mx.shutdown().await;

        // The operator appends December's key and runs rekey on the stopped gateway.
        config.storage.keys = vec![november.clone(), december.clone()];
        let file = region.dir().join("MX-rekey.toml");
        std::fs::write(&file, config.to_toml().unwrap()).unwrap();
        let rekey = |dry_run: bool| {
            let file = file.clone();
            async move {
                eventually("rekey to find the database free", || {
                    let file = file.clone();
                    async move {
                        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-process"));
                        command.env("LC_ALL", "en_US.UTF-8");
                        command.arg("rekey").arg("--config").arg(&file);
                        if dry_run {
                            command.arg("--dry-run");
                        }
                        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
                            .await
                            .unwrap();
                        let printed = format!(
                            "{}{}",
                            String::from_utf8_lossy(&output.stdout),
                            String::from_utf8_lossy(&output.stderr)
                        );
                        if output.status.success() {
                            Some(printed)
                        } else if printed.contains("running gateway") {
                            None
                        } else {
                            panic!("{printed}")
                        }
                    }
                })
                .await
            }
        };
        let (november_id, december_id) = (key_id(&november), key_id(&december));
        let dry = rekey(true).await;
        assert!(dry.contains("1 envelope(s) kept"), "{dry}");
        assert!(
            dry.contains(&format!("1 sealed under key {november_id} ({})", november.display())),
            "{dry}"
        );
        assert!(dry.contains("would seal 1 envelope(s) again under key"), "{dry}");
        let done = rekey(false).await;
        assert!(
            done.contains(&format!("sealed 1 envelope(s) again under key {december_id} ({})", december.display())),
            "{done}"
        );
        assert!(
            done.contains(&format!("no kept envelope needs {} now", november.display())),
            "{done}"
        );
        assert!(!done.contains(GIVEN_NAMES), "{done}");

        // November's key is removed; the queued notice reaches Guatemala whole.
        config.storage.keys = vec![december];
        let mx = region.restart_with(config).await;
        let gt = region.start("GT").await;
        let sbs = region.agency_when_up("GT", "child-protection").await;
        let items = eventually("the notice in Guatemala's inbox", || async {
            let items = inbox_now(&mut sbs.clone(), 0).await;
            (!items.is_empty()).then_some(items)
        })
        .await;
        let body = items[0].body.as_ref().unwrap();
        assert_eq!(body.message_id, sent.message_id);
        let Some(Body::AdvanceNotice(seen)) = &body.payload else {
            panic!("the notice")
        };
        assert_eq!(seen.child.as_ref().unwrap().given_names, GIVEN_NAMES);
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

/// With keys, no file of either gateway holds the child's name, after a
/// whole return through both: on sled their folders, on PostgreSQL the
/// files of a cluster of this test's own (tables and WAL).
async fn no_gateway_file_holds_the_childs_name() {
    let region = Region::new(&["MX", "GT"]);
    let mut configs = Vec::new();
    for code in ["MX", "GT"] {
        let mut config = region.config(code);
        config.storage.keys = vec![new_key(&region, &format!("{code}.key"))];
        configs.push(config);
    }
    let mx = region.start_with(configs[0].clone()).await;
    let gt = region.start_with(configs[1].clone()).await;

    return_a_child(&region, "MX-2026-0001", notice()).await;
    // The agencies still read the notice whole: it is opened on the way out.
    let mut sbs = region.agency("GT", "child-protection").await;
    let items = inbox_now(&mut sbs, 0).await;
    let Some(Body::AdvanceNotice(seen)) = &items[0].body.as_ref().unwrap().payload else {
        panic!("the first item is the notice")
    };
    assert_eq!(seen.child.as_ref().unwrap().given_names, GIVEN_NAMES);

    mx.shutdown().await;
    gt.shutdown().await;
    // On PostgreSQL the cluster's folder holds the tables and the WAL: a
    // cluster of this test's own, since others of this file store names
    // in the clear.
    for code in ["MX", "GT"] {
        let files = region.storage_files(code);
        for name in [GIVEN_NAMES, FAMILY_NAMES, "RENAP-1203-4567", "María Xol"] {
            assert!(
                !files_contain(&files, name.as_bytes()),
                "{name:?} is on disk in {}",
                files.display()
            );
        }
    }
}

#[tokio::test]
async fn with_keys_configured_no_gateway_file_holds_the_childs_name_on_sled() {
    engine::on(
        engine::Engine::Sled,
        no_gateway_file_holds_the_childs_name(),
    )
    .await;
}

#[tokio::test]
async fn with_keys_configured_no_gateway_file_holds_the_childs_name_on_postgres() {
    if let Some(postgres) = engine::private_postgres() {
        engine::on(postgres, no_gateway_file_holds_the_childs_name()).await;
    }
}

/// The example notice for another child.
fn notice_of(given_names: &str, family_names: &str) -> AdvanceNotice {
    let mut notice = notice();
    let child = notice.child.as_mut().unwrap();
    child.given_names = given_names.to_owned();
    child.family_names = family_names.to_owned();
    notice
}

retorno_tests::on_both_engines! {
    #[tokio::test]
    async fn a_case_withdrawn_long_ago_loses_its_personal_data_and_keeps_its_proof() {
        const WITHDRAWN: &str = "MX-2026-0301";
        const RECEIVED: &str = "MX-2026-0302";
        const REFUSED: &str = "MX-2026-0303";
        let region = Region::new(&["MX", "GT"]);
        // Mexico relaxes the best-interest gate for Guatemala, which has not
        // agreed: Guatemala stores such a notice as refused.
        let mut mx_config = region.config("MX");
        mx_config.case.relax_best_interest_for = vec![country("GT")];
        let mx = region.start_with(mx_config).await;
        // Guatemala keeps envelopes in the clear here, so that the checks below
        // can see the names before the purge.
        let gt_config = region.config("GT");
        let gt = region.start_with(gt_config.clone()).await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let sbs = region.agency("GT", "child-protection").await;

        // Ana Lucía stays in Mexico: her case is withdrawn.
        inm.submit(notice_to("GT", WITHDRAWN)).await.unwrap();
        wait_for_state(&sbs, WITHDRAWN, CaseState::Notified).await;
        let withdrawal = compose::withdrawal("protection-granted", "asylum granted").unwrap();
        submit_case_message(&inm, WITHDRAWN, withdrawal)
            .await
            .unwrap();
        let withdrawn = wait_for_state(&sbs, WITHDRAWN, CaseState::Withdrawn).await;
        // Berta returns today.
        return_a_child(&region, RECEIVED, notice_of("Berta Alicia", "Cux Tum")).await;
        // Carla's notice is refused on arrival.
        let mut refused = notice_of("Carla Beatriz", "Ajú Sac");
        refused.best_interest.as_mut().unwrap().authority_kind = DeterminingAuthority::Migration as i32;
        let request = compose::request(REFUSED, Some("GT"), Payload::AdvanceNotice(refused));
        let refused_id = inm.submit(request).await.unwrap().message_id;
        eventually("Mexico's outbox to be delivered", || async {
            (mx.outbox_depth(country("GT")) == 0).then_some(())
        })
        .await;
        gt.shutdown().await;
        let data = &gt_config.data_dir;
        for name in ["Ana Lucía", "Berta Alicia", "Carla Beatriz"] {
            assert!(
                engine::database_contains(data, &gt_config.storage, name.as_bytes()).await,
                "{name} is kept before the purge"
            );
        }

        // 91 days later: past the withdrawal's 90, far from the reception's 365.
        let store = open(data, &gt_config.storage).await;
        let policy = retention::Policy::from(&gt_config.storage);
        let now = Timestamp::now()
            .checked_add(SignedDuration::from_hours(91 * 24))
            .unwrap();
        let dry = retention::purge(&store, &policy, now, Mode::DryRun)
            .await
            .unwrap();
        let due: Vec<(&str, usize)> = dry
            .cases
            .iter()
            .map(|c| (c.case_id.as_str(), c.purged))
            .collect();
        assert_eq!(due, [(WITHDRAWN, 2)], "the notice and the withdrawal");
        assert_eq!(dry.refused, 1, "Carla's refused notice");
        let report = retention::purge(&store, &policy, now, Mode::Purge)
            .await
            .unwrap();
        assert_eq!(
            (report.cases.clone(), report.refused),
            (dry.cases, dry.refused)
        );
        assert!(
            report.to_string().contains(WITHDRAWN) && !report.to_string().contains("Ana"),
            "{report}"
        );

        // What proves the exchange stays: the case and its timeline, and for
        // each message the hash of the body received and the receipt given.
        let case = store.read_case(WITHDRAWN).unwrap().unwrap();
        assert_eq!(case.state(), CaseState::Withdrawn);
        let child_protection = need_to_know::Reader {
            role: Role::ChildProtection,
            country: country("GT"),
            delegated: None,
        };
        let read = need_to_know::case(&child_protection, case.clone()).unwrap();
        assert_eq!(
            read.timeline, withdrawn.timeline,
            "as child protection reads it"
        );
        for entry in &case.timeline {
            let id = Uuid::parse_str(&entry.message_id).unwrap();
            let seen = store.seen(country("MX"), id).unwrap().unwrap();
            assert_eq!(seen.body_sha256.len(), 32);
            assert!(!seen.receipt.is_empty());
            let kept = store.inbox_entry(seen.cursor).unwrap().unwrap();
            assert!(!kept.holds_envelope, "{entry:?} still holds its envelope");
        }
        // Berta's case is untouched.
        for entry in &store.read_case(RECEIVED).unwrap().unwrap().timeline {
            let id = Uuid::parse_str(&entry.message_id).unwrap();
            if let Some(seen) = store.seen(country("MX"), id).unwrap() {
                assert!(
                    store
                        .inbox_entry(seen.cursor)
                        .unwrap()
                        .unwrap()
                        .holds_envelope
                );
            }
        }
        let again = retention::purge(&store, &policy, now, Mode::Purge)
            .await
            .unwrap();
        assert_eq!(again.purged(), 0, "nothing is purged twice");
        // Each removal is in the audit log, with its message, case and rule,
        // and the chain holds.
        let purged: Vec<(String, String, Vec<String>, String)> = audit::entries(&store)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == audit::Event::EnvelopePurged as i32)
            .map(|e| (e.message_id, e.party, e.case_ids, e.detail))
            .collect();
        let mut expected: Vec<(String, String, Vec<String>, &str)> = case
            .timeline
            .iter()
            .map(|entry| {
                let rule = "retention: the case closed as WITHDRAWN at ";
                (entry.message_id.clone(), "MX".to_owned(), vec![WITHDRAWN.to_owned()], rule)
            })
            .collect();
        expected.push((refused_id, "MX".to_owned(), vec![REFUSED.to_owned()], "retention: refused on arrival"));
        assert_eq!(purged.len(), expected.len(), "{purged:#?}");
        for (found, (id, party, cases, rule)) in purged.iter().zip(&expected) {
            assert_eq!((&found.0, &found.1, &found.2), (id, party, cases), "{found:?}");
            assert!(found.3.starts_with("inbox cursor ") && found.3.contains(rule), "{found:?}");
        }
        assert!(purged[..2].iter().all(|e| e.3.ends_with("storage.retention_withdrawn_days passed")));
        let roots = retorno_tests::regional_roots(&region);
        let verified = audit::verify(&store, &roots, country("GT")).unwrap();
        assert!(verified.intact(), "{verified}");
        drop(store);

        assert!(!engine::database_contains(data, &gt_config.storage, "Ana Lucía".as_bytes()).await);
        assert!(!engine::database_contains(data, &gt_config.storage, "Carla Beatriz".as_bytes()).await);
        assert!(engine::database_contains(data, &gt_config.storage, "Berta Alicia".as_bytes()).await);

        // Guatemala's agencies no longer get the purged messages; the case reads as before.
        let gt = region.start_with(gt_config.clone()).await;
        let mut sbs = region.agency_when_up("GT", "child-protection").await;
        let items = inbox_now(&mut sbs, 0).await;
        assert!(!items.is_empty());
        assert!(
            items
                .iter()
                .all(|item| item.body.as_ref().unwrap().case_id == RECEIVED),
            "only Berta's messages are given"
        );
        assert_eq!(
            sbs.case(WITHDRAWN).await.unwrap().timeline,
            withdrawn.timeline
        );
        mx.shutdown().await;
        gt.shutdown().await;
    }
}

retorno_tests::on_both_engines! {
    #[tokio::test(flavor = "multi_thread")]
    async fn ops_rekey_reseals_a_running_gateway_while_it_delivers_and_nothing_is_lost_or_doubled() {
        let region = Region::new(&["MX", "GT"]);
        let november = new_key(&region, "MX-2026-11.key");
        let december = new_key(&region, "MX-2026-12.key");
        let mut config = region.config("MX");
        config.storage.keys = vec![november.clone()];
        let mx = region.start_with(config.clone()).await;
        let gt = region.start("GT").await;
        // Mexico keeps three notices from Guatemala in its inbox...
        let mut pgn = region.agency("GT", "destination-authority").await;
        for n in 1..=3 {
            pgn.submit(notice_to("MX", &format!("GT-2026-{n:04}"))).await.unwrap();
        }
        eventually("Guatemala's notices in Mexico's inbox", || async {
            (gt.outbox_depth(country("MX")) == 0).then_some(())
        })
        .await;
        // ...and queues 300 for Guatemala while it is down, all under
        // November's key: two batches of the rekey and a part of a third.
        gt.shutdown().await;
        let mut inm = region.agency("MX", "destination-authority").await;
        let mut sent = Vec::new();
        for n in 1..=300 {
            sent.push(inm.submit(notice_to("GT", &format!("MX-2026-{n:04}"))).await.unwrap().message_id);
        }
        mx.shutdown().await;

        // December's key is appended and Mexico restarts; Guatemala comes
        // back, so deliveries run while the operator rekeys, and Mexico's
        // agency keeps submitting.
        config.storage.keys = vec![november.clone(), december.clone()];
        let mx = region.restart_with(config.clone()).await;
        let gt = region.restart_with(region.config("GT")).await;
        let submitting = tokio::spawn(async move {
            let mut more = Vec::new();
            for n in 301..=600 {
                more.push(inm.submit(notice_to("GT", &format!("MX-2026-{n:04}"))).await.unwrap().message_id);
            }
            more
        });
        let mut ops = retorno_client::Operations::connect(&region.profile("MX", "operator"))
            .await
            .unwrap();
        let (november_id, december_id) = (key_id(&november), key_id(&december));
        let dry = ops.rekey(true).await.unwrap();
        assert!(dry.dry_run && dry.retirable_files.is_empty(), "{dry:?}");
        assert_eq!(dry.sealing_key.as_ref().unwrap().id, december_id);
        let done = ops.rekey(false).await.unwrap();
        assert_eq!(
            (done.sealing_key.as_ref().unwrap().file.as_str(), done.retirable_files.as_slice()),
            (december.display().to_string().as_str(), [november.display().to_string()].as_slice()),
            "{done:?}"
        );
        assert!(done.keys.iter().any(|k| k.id == november_id && k.envelopes >= 3), "{done:?}");
        sent.extend(submitting.await.unwrap());

        // Every notice reaches Guatemala once, in order.
        let mut sbs = region.agency("GT", "child-protection").await;
        let items = retorno_tests::inbox_with(&mut sbs, 0, sent.len()).await;
        let arrived: Vec<String> = items
            .iter()
            .map(|item| item.body.as_ref().unwrap().message_id.clone())
            .collect();
        assert_eq!(arrived, sent);
        eventually("Mexico's outbox to be empty", || async {
            (mx.outbox_depth(country("GT")) == 0).then_some(())
        })
        .await;
        // Nothing kept is under November's key any more.
        let after = ops.rekey(true).await.unwrap();
        assert!(after.keys.iter().all(|k| k.id != november_id), "{after:?}");
        mx.shutdown().await;
        gt.shutdown().await;

        // The rekey is in the audit log, as the operator's.
        let store = retorno_tests::open_store(&config).await;
        let rekeyed: Vec<String> = audit::entries(&store)
            .unwrap()
            .into_iter()
            .filter(|e| e.event == audit::Event::Rekeyed as i32)
            .map(|e| e.party)
            .collect();
        assert_eq!(rekeyed, ["urn:retorno:agency:MX:operator:OPS"]);
        drop(store);

        // November's key is removed: Mexico's agency still reads Guatemala's notices whole.
        config.storage.keys = vec![december];
        let _mx = region.restart_with(config).await;
        let mut dif = region.agency_when_up("MX", "child-protection").await;
        let kept = inbox_now(&mut dif, 0).await;
        assert_eq!(kept.len(), 3);
        assert!(format!("{kept:?}").contains(GIVEN_NAMES));
    }
}
