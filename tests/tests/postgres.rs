//! The PostgreSQL engine of the key/value layer, against a real PostgreSQL
//! started by the test ([`retorno_tests::postgres`]), through `kv::Db` as
//! the store uses it: tree operations and paged iteration both ways,
//! transactions (abort, serialization retries), the lease and fencing
//! between two nodes, and the engine called from current-thread and
//! multi-thread runtimes. Without PostgreSQL these tests pass after one line
//! saying they were skipped, unless `RETORNO_REQUIRE_POSTGRES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    ops::Bound,
    process::Command,
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use retorno_gateway::{
    config::{DatabaseUrl, Storage},
    kv::{self, Batch, Db, Tree, postgres::Pg},
    storage::{Backend, StoreError, TxError},
};
use retorno_tests::postgres;

const GATEWAY: &str = "mx";

/// A new database of the shared cluster, opened through `kv::Db` (the
/// schema migrated), or `None` when PostgreSQL is missing.
fn database(name: &str) -> Option<(String, Db)> {
    let cluster = postgres::shared()?;
    let url = cluster.database(name);
    let db = open(&url);
    Some((url, db))
}

fn open(url: &str) -> Db {
    let settings = Storage {
        backend: Backend::Postgres,
        url: Some(DatabaseUrl::new(url)),
        ..Storage::default()
    };
    Db::open(std::path::Path::new("/nonexistent"), &settings).unwrap()
}

fn pg(db: &Db) -> &Pg {
    match db {
        Db::Postgres(pg) => pg,
        _ => panic!("not a PostgreSQL database"),
    }
}

/// Opens the database and takes the gateway's lease as node "a": its URL
/// and the database.
fn writable(name: &str) -> Option<(String, Db)> {
    let (url, db) = database(name)?;
    assert_eq!(
        pg(&db)
            .try_acquire(GATEWAY, "a", Duration::from_secs(60))
            .unwrap(),
        Some(1)
    );
    Some((url, db))
}

/// Every table of a gateway's database: one per tree, and the default tree's.
fn tables() -> impl Iterator<Item = &'static str> {
    retorno_gateway::storage::TREES
        .iter()
        .copied()
        .chain([kv::postgres::DEFAULT_TABLE])
}

fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn keys(iter: kv::Iter) -> Vec<u64> {
    iter.map(|entry| {
        let (k, _) = entry.unwrap();
        u64::from_be_bytes(k.as_ref().try_into().unwrap())
    })
    .collect()
}

#[test]
fn tree_operations_and_paged_iteration_in_both_directions() {
    let Some((_, db)) = writable("tree_operations") else {
        return;
    };
    let audit = db.open_tree("audit").unwrap();
    assert!(audit.is_empty().unwrap());
    assert_eq!(audit.last().unwrap(), None);

    // More rows than the largest page (512), in one batch.
    const N: u64 = 1500;
    let mut batch = Batch::default();
    for n in 0..N {
        batch.insert(key(n), format!("entry {n}"));
    }
    audit.apply_batch(batch).unwrap();
    assert_eq!(audit.len().unwrap(), N as usize);
    assert!(!audit.is_empty().unwrap());
    assert_eq!(audit.get(key(7)).unwrap().unwrap().as_ref(), b"entry 7");
    assert_eq!(audit.get(key(N)).unwrap(), None);

    let all: Vec<u64> = (0..N).collect();
    assert_eq!(keys(audit.iter()), all);
    assert_eq!(
        keys(Box::new(audit.iter().rev())),
        all.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(
        keys(audit.range(key(100)..key(1200))),
        (100..1200).collect::<Vec<_>>()
    );
    assert_eq!(
        keys(audit.range(key(100)..=key(1200))),
        (100..=1200).collect::<Vec<_>>()
    );
    assert_eq!(
        keys(audit.range::<[u8; 8], _>((Bound::Excluded(key(100)), Bound::Unbounded))),
        (101..N).collect::<Vec<_>>()
    );
    assert_eq!(
        keys(Box::new(audit.range(..key(900)).rev())),
        (0..900).rev().collect::<Vec<_>>()
    );

    // Both ends at once, meeting in the middle across page boundaries.
    let mut iter = audit.iter();
    let mut front = Vec::new();
    let mut back = Vec::new();
    loop {
        let Some(entry) = iter.next() else { break };
        front.push(u64::from_be_bytes(
            entry.unwrap().0.as_ref().try_into().unwrap(),
        ));
        for _ in 0..3 {
            if let Some(entry) = iter.next_back() {
                back.push(u64::from_be_bytes(
                    entry.unwrap().0.as_ref().try_into().unwrap(),
                ));
            }
        }
    }
    back.reverse();
    front.extend(back);
    assert_eq!(front, all);

    // Prefixes, with 0xff bytes at their ends.
    let cases = db.open_tree("cases").unwrap();
    for (k, v) in [
        (&b"a\xff\xff"[..], &b"1"[..]),
        (b"ab", b"2"),
        (b"ab\x00", b"3"),
        (b"ab\xff", b"4"),
        (b"ac", b"5"),
        (b"b", b"6"),
    ] {
        cases.insert(k, v).unwrap();
    }
    let found: Vec<Vec<u8>> = cases
        .scan_prefix(b"ab")
        .map(|entry| entry.unwrap().0.to_vec())
        .collect();
    assert_eq!(
        found,
        vec![b"ab".to_vec(), b"ab\x00".to_vec(), b"ab\xff".to_vec()]
    );
    assert_eq!(
        cases.last_with_prefix(b"ab").unwrap().unwrap().1.as_ref(),
        b"4"
    );
    // Bytes order: "a\xff\xff" sorts after "ac".
    assert_eq!(
        cases.last_with_prefix(b"a").unwrap().unwrap().0.as_ref(),
        b"a\xff\xff"
    );
    assert_eq!(cases.last_with_prefix(b"z").unwrap(), None);
    assert_eq!(cases.last().unwrap().unwrap().0.as_ref(), b"b");

    // Upsert, remove (returns the old value), update_and_fetch.
    cases.insert(b"ab", b"two").unwrap();
    assert_eq!(cases.get(b"ab").unwrap().unwrap().as_ref(), b"two");
    assert_eq!(cases.remove(b"ab").unwrap().unwrap().as_ref(), b"two");
    assert_eq!(cases.remove(b"ab").unwrap(), None);
    assert_eq!(cases.get(b"ab").unwrap(), None);
    let counter = |old: Option<&[u8]>| {
        let n = old.map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
        Some((n + 1).to_be_bytes().to_vec())
    };
    cases.update_and_fetch(b"n", counter).unwrap();
    let n = cases.update_and_fetch(b"n", counter).unwrap().unwrap();
    assert_eq!(n.as_ref(), &2u64.to_be_bytes());

    cases.clear().unwrap();
    assert!(cases.is_empty().unwrap());
    assert_eq!(
        audit.len().unwrap(),
        N as usize,
        "clear touches one tree only"
    );

    // The default tree, ids, size, and a tree with no table.
    db.default_tree().insert(b"probe", b"ok").unwrap();
    assert_eq!(
        db.default_tree().get(b"probe").unwrap().unwrap().as_ref(),
        b"ok"
    );
    let first = db.generate_id().unwrap();
    assert!(db.generate_id().unwrap() > first);
    assert!(db.size_on_disk().unwrap() > 0);
    db.flush().unwrap();
    let error = db.open_tree("nonesuch").err().unwrap().to_string();
    assert!(
        error.contains("nonesuch") && error.contains("TREES"),
        "{error}"
    );
}

#[test]
fn a_transaction_sees_its_own_writes_and_an_aborted_one_keeps_nothing() {
    let Some((_, db)) = writable("transactions") else {
        return;
    };
    let outbox = db.open_tree("outbox").unwrap();
    let sent = db.open_tree("sent").unwrap();
    outbox.insert(b"kept", b"before").unwrap();

    let seen = kv::transaction(&[&outbox, &sent], |trees| {
        trees[0].insert(b"new", b"1".to_vec())?;
        trees[1].insert(b"status", b"accepted".to_vec())?;
        assert_eq!(trees[0].get(b"new")?.unwrap().as_ref(), b"1");
        assert_eq!(trees[0].remove(b"kept")?.unwrap().as_ref(), b"before");
        assert_eq!(trees[0].get(b"kept")?, None);
        Ok(trees[1].get(b"status")?.unwrap().to_vec())
    })
    .unwrap();
    assert_eq!(seen, b"accepted");
    assert_eq!(outbox.get(b"new").unwrap().unwrap().as_ref(), b"1");
    assert_eq!(outbox.get(b"kept").unwrap(), None);

    let result: Result<(), StoreError> = kv::transaction(&[&outbox, &sent], |trees| {
        trees[0].insert(b"lost", b"x".to_vec())?;
        trees[1].remove(b"status")?;
        Err(TxError::Abort(StoreError::Closed))
    });
    assert!(matches!(result, Err(StoreError::Closed)), "{result:?}");
    assert_eq!(outbox.get(b"lost").unwrap(), None);
    assert_eq!(sent.get(b"status").unwrap().unwrap().as_ref(), b"accepted");

    // A closure that panics (a bug) keeps nothing, and its connection,
    // left inside a transaction, is not given to the next caller.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kv::transaction::<()>(&[&outbox], |trees| {
            trees[0].insert(b"panicked", b"x".to_vec())?;
            trees[0].get(b"new")?;
            panic!("a bug in a transaction");
        })
    }));
    assert!(panicked.is_err());
    outbox.insert(b"after panic", b"z").unwrap();
    assert_eq!(outbox.get(b"panicked").unwrap(), None);
    assert_eq!(outbox.get(b"after panic").unwrap().unwrap().as_ref(), b"z");

    // A conflict from the closure runs it again.
    let runs = std::sync::atomic::AtomicU32::new(0);
    kv::transaction(&[&outbox], |trees| {
        trees[0].insert(b"retried", b"y".to_vec())?;
        if runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(TxError::Conflict);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(runs.into_inner(), 2);
    assert_eq!(outbox.get(b"retried").unwrap().unwrap().as_ref(), b"y");
}

/// Keys read ahead in one round trip read as a get would read them: what
/// is stored, `None` for what is not, and this transaction's own writes
/// over both, before and after the prefetch.
#[test]
fn a_prefetch_reads_what_gets_would_and_own_writes_win() {
    let Some((_, db)) = writable("prefetch") else {
        return;
    };
    let sent = db.open_tree("sent").unwrap();
    for n in 1..=3 {
        sent.insert(key(n), n.to_string().into_bytes()).unwrap();
    }
    kv::transaction(&[&sent], |trees| {
        let tree = &trees[0];
        assert!(tree.reads_are_round_trips());
        tree.insert(key(2), b"written before".to_vec())?;
        let wanted: Vec<Vec<u8>> = (1..=5).map(|n| key(n).to_vec()).collect();
        tree.prefetch(&wanted)?;
        tree.prefetch(&wanted)?;
        assert_eq!(tree.get(key(1))?.unwrap().as_ref(), b"1");
        assert_eq!(tree.get(key(2))?.unwrap().as_ref(), b"written before");
        assert_eq!(tree.get(key(3))?.unwrap().as_ref(), b"3");
        assert_eq!(tree.get(key(4))?, None);
        tree.insert(key(4), b"written after".to_vec())?;
        assert_eq!(tree.get(key(4))?.unwrap().as_ref(), b"written after");
        assert_eq!(tree.remove(key(3))?.unwrap().as_ref(), b"3");
        assert_eq!(tree.get(key(3))?, None);
        // Not prefetched: read on its own.
        assert_eq!(tree.get(key(9))?, None);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        sent.get(key(4)).unwrap().unwrap().as_ref(),
        b"written after"
    );
    assert_eq!(sent.get(key(3)).unwrap(), None);
    assert_eq!(sent.get(key(1)).unwrap().unwrap().as_ref(), b"1");
}

#[test]
fn concurrent_transactions_on_one_counter_end_exact() {
    let Some((_, db)) = writable("counter") else {
        return;
    };
    let tree = db.open_tree("sequences").unwrap();
    const THREADS: u64 = 6;
    const EACH: u64 = 25;
    let start = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let tree = tree.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..EACH {
                    kv::transaction(&[&tree], |trees| {
                        let n = trees[0]
                            .get(b"counter")?
                            .map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().unwrap()));
                        trees[0].insert(b"counter", (n + 1).to_be_bytes().to_vec())?;
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let n = tree.get(b"counter").unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(n.as_ref().try_into().unwrap()),
        THREADS * EACH
    );
}

#[test]
fn one_node_holds_the_lease_and_the_one_that_lost_it_writes_nothing() {
    let Some((url, a)) = database("lease") else {
        return;
    };
    let b = open(&url);
    let (pa, pb) = (pg(&a), pg(&b));
    let ttl = Duration::from_secs(1);

    // Without a lease, nothing is written.
    let outbox_a = a.open_tree("outbox").unwrap();
    let error = outbox_a.insert(b"k", b"v").unwrap_err();
    assert!(
        matches!(error, StoreError::Fenced { held: None, .. }),
        "{error:?}"
    );

    assert_eq!(pa.try_acquire(GATEWAY, "a", ttl).unwrap(), Some(1));
    assert_eq!(pb.try_acquire(GATEWAY, "b", ttl).unwrap(), None);
    assert_eq!(pa.holder(GATEWAY).unwrap(), Some(("a".to_owned(), 1)));
    assert!(pa.renew(ttl).unwrap());
    // Taking it again while held keeps the epoch.
    assert_eq!(pa.try_acquire(GATEWAY, "a", ttl).unwrap(), Some(1));
    outbox_a.insert(b"by a", b"1").unwrap();
    assert!(matches!(
        b.open_tree("outbox").unwrap().insert(b"by b", b"1"),
        Err(StoreError::Fenced { .. })
    ));

    // a stops renewing (paused, partitioned); b takes over once it expires,
    // on the database's clock.
    let deadline = Instant::now() + Duration::from_secs(30);
    let epoch = loop {
        if let Some(epoch) = pb.try_acquire(GATEWAY, "b", ttl).unwrap() {
            break epoch;
        }
        assert!(Instant::now() < deadline, "b never took the expired lease");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(epoch, 2);
    assert_eq!(pb.holder(GATEWAY).unwrap(), Some(("b".to_owned(), 2)));

    // a wakes up: its writes fail and leave nothing; its renewal says lost.
    let result = kv::transaction(&[&outbox_a], |trees| {
        trees[0].insert(b"late by a", b"x".to_vec())?;
        Ok(())
    });
    assert!(
        matches!(
            result,
            Err(StoreError::Fenced {
                held: Some(1),
                current: Some(2)
            })
        ),
        "{result:?}"
    );
    let message = result.unwrap_err().to_string();
    assert!(message.contains("lease"), "{message}");
    assert!(outbox_a.remove(b"by a").is_err());
    assert!(!pa.renew(ttl).unwrap());
    let outbox_b = b.open_tree("outbox").unwrap();
    assert_eq!(outbox_b.get(b"late by a").unwrap(), None);
    assert_eq!(outbox_b.get(b"by a").unwrap().unwrap().as_ref(), b"1");
    outbox_b.insert(b"by b", b"2").unwrap();

    // b restarts (a new handle of the same node): a higher epoch, and the
    // old handle is fenced too.
    let b2 = open(&url);
    assert_eq!(pg(&b2).try_acquire(GATEWAY, "b", ttl).unwrap(), Some(3));
    assert!(matches!(
        outbox_b.insert(b"old b", b"x"),
        Err(StoreError::Fenced {
            held: Some(2),
            current: Some(3)
        })
    ));
    // Released, the lease is free at once and its epoch keeps rising.
    pg(&b2).release().unwrap();
    assert_eq!(pa.holder(GATEWAY).unwrap(), None);
    assert_eq!(pa.try_acquire(GATEWAY, "a", ttl).unwrap(), Some(4));
}

#[test]
fn a_takeover_waits_for_the_holders_transaction_in_flight() {
    let Some((url, a)) = database("takeover") else {
        return;
    };
    let b = open(&url);
    let ttl = Duration::from_millis(300);
    assert_eq!(pg(&a).try_acquire(GATEWAY, "a", ttl).unwrap(), Some(1));
    // a's transaction has passed its fencing check and is still running
    // when its lease expires and b tries to take over.
    let (go_tx, writer) = inside_a_transaction(&a, b"in flight");
    let watcher = open(&url);
    let pb = pg(&b).clone();
    let taker = std::thread::spawn(move || {
        loop {
            if let Some(epoch) = pb
                .try_acquire(GATEWAY, "b", Duration::from_secs(60))
                .unwrap()
            {
                return epoch;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    // b's takeover waits on a's FOR SHARE lock (seen from a third session).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lease_update_waits(&watcher) {
        assert!(
            Instant::now() < deadline,
            "the takeover never waited on the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!taker.is_finished());
    go_tx.send(()).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(taker.join().unwrap(), 2);
    let tree = b.open_tree("outbox").unwrap();
    assert_eq!(tree.get(b"in flight").unwrap().unwrap().as_ref(), b"1");
    assert!(matches!(
        a.open_tree("outbox").unwrap().insert(b"after", b"x"),
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(tree.get(b"after").unwrap(), None);
}

/// A holder paused inside a transaction (past its fencing check, sending
/// nothing) does not keep the standby out: the server ends its session after
/// `IDLE_IN_TRANSACTION`, its transaction keeps nothing, and the standby
/// takes the lease.
#[test]
fn a_holder_paused_inside_a_transaction_does_not_keep_the_standby_out() {
    let Some((url, a)) = database("paused") else {
        return;
    };
    let b = open(&url);
    let ttl = Duration::from_millis(300);
    assert_eq!(pg(&a).try_acquire(GATEWAY, "a", ttl).unwrap(), Some(1));
    // Paused: nothing is sent until the test wakes it.
    let (wake_tx, writer) = inside_a_transaction(&a, b"paused");
    let started = Instant::now();
    let pb = pg(&b).clone();
    let deadline = started + kv::postgres::IDLE_IN_TRANSACTION + Duration::from_secs(20);
    let epoch = loop {
        if let Some(epoch) = pb
            .try_acquire(GATEWAY, "b", Duration::from_secs(60))
            .unwrap()
        {
            break epoch;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never took the lease"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(epoch, 2);
    wake_tx.send(()).unwrap();
    assert!(
        writer.join().unwrap().is_err(),
        "the paused transaction failed"
    );
    let tree = b.open_tree("outbox").unwrap();
    assert_eq!(tree.get(b"paused").unwrap(), None);
}

/// A transaction of `db` that inserts `key` (value `1`) into the outbox,
/// passes its fencing check and then sends nothing until the returned
/// sender wakes it (or 60 s pass): a holder slow or paused inside its
/// transaction. Returns once the transaction is there, with its outcome.
fn inside_a_transaction(
    db: &Db,
    key: &'static [u8],
) -> (
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<Result<(), StoreError>>,
) {
    let outbox = db.open_tree("outbox").unwrap();
    let (inside_tx, inside) = std::sync::mpsc::channel::<()>();
    let (wake_tx, wake) = std::sync::mpsc::channel::<()>();
    let wake = std::sync::Mutex::new(wake);
    let writer = std::thread::spawn(move || {
        kv::transaction(&[&outbox], |trees| {
            trees[0].insert(key, b"1".to_vec())?;
            let _ = inside_tx.send(());
            let _ = wake.lock().unwrap().recv_timeout(Duration::from_secs(60));
            Ok(())
        })
    });
    inside.recv().unwrap();
    (wake_tx, writer)
}

/// A transaction's reads and removals of many keys (`k = ANY($1)`) go
/// through the primary key, never through a scan of the table, even where
/// the planner would take one (a small table, no statistics yet): a scan
/// compares every row with every key (without `enable_seqscan = off`, the
/// PostgreSQL server used twice the CPU per notice in `retorno-bench
/// --backend postgres`), and under SERIALIZABLE it takes a predicate lock
/// on the whole table, so that a concurrent write to it makes one of the
/// two transactions fail and run again.
#[test]
fn reads_and_removals_of_many_keys_use_the_primary_key_not_a_scan() {
    let Some((url, db)) = writable("no_scans") else {
        return;
    };
    let cluster = postgres::shared().unwrap();
    let outbox = db.open_tree("outbox").unwrap();
    // Sequential scans, index scans and rows inserted, as the server counts
    // them. The engine's session reports its counts when it goes idle.
    let counts = || {
        let row = cluster.psql(
            &url,
            "SELECT coalesce(seq_scan, 0) || ' ' || coalesce(idx_scan, 0) || ' ' || n_tup_ins \
             FROM pg_stat_user_tables WHERE relname = 'outbox'",
        );
        let numbers: Vec<u64> = row.split_whitespace().map(|n| n.parse().unwrap()).collect();
        (numbers[0], numbers[1], numbers[2])
    };
    let reported = |until: &dyn Fn((u64, u64, u64)) -> bool| {
        let waiting = Instant::now();
        loop {
            let now = counts();
            if until(now) {
                return now;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "the engine's session never reported its counts: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    kv::transaction(&[&outbox], |trees| {
        for n in 0..200 {
            trees[0].insert(key(n), vec![7; 100])?;
        }
        Ok(())
    })
    .unwrap();
    let (seq_before, idx_before, _) = reported(&|(_, _, inserted)| inserted == 200);

    let wanted: Vec<Vec<u8>> = (0..64).map(|n| key(n * 3).to_vec()).collect();
    kv::transaction(&[&outbox], |trees| {
        trees[0].prefetch(&wanted)?;
        for wanted in &wanted {
            assert!(trees[0].remove(wanted)?.is_some());
        }
        Ok(())
    })
    .unwrap();
    let (seq_after, idx_after, _) =
        reported(&|(seq, idx, _)| (seq, idx) != (seq_before, idx_before));
    assert_eq!(
        seq_after, seq_before,
        "no scan of the table (index scans: {idx_before} then {idx_after})"
    );
    assert_eq!(outbox.len().unwrap(), 200 - 64);
}

/// A value of a few KB that does not compress (an envelope sealed at rest)
/// stays in its row: nothing goes to the table's TOAST table (migration
/// `0003_inline_values`, on every tree's table), which by default would
/// first try to compress it and then store it there with an index entry of
/// its own.
#[test]
fn values_of_a_few_kilobytes_stay_in_their_rows() {
    let Some((url, db)) = writable("inline_values") else {
        return;
    };
    let cluster = postgres::shared().unwrap();
    let outbox = db.open_tree("outbox").unwrap();
    kv::transaction(&[&outbox], |trees| {
        for n in 0..64 {
            trees[0].insert(key(n), retorno_tests::incompressible(n + 1, 3000))?;
        }
        Ok(())
    })
    .unwrap();
    let toasted = cluster.psql(
        &url,
        "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'outbox'",
    );
    assert_eq!(toasted.trim(), "0", "bytes in outbox's TOAST table");
    assert_eq!(outbox.get(key(7)).unwrap().unwrap().len(), 3000);
    // Every tree's table, so that none is left with the default.
    for table in tables() {
        let options = cluster.psql(
            &url,
            &format!(
                "SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class \
                 WHERE relname = '{table}'"
            ),
        );
        assert!(
            options.contains("toast_tuple_target=8160"),
            "{table}: {options}"
        );
    }
}

/// A database that a gateway of schema version 2 left (before
/// `0003_inline_values`) is brought to version 3 when a node opens it, and
/// keeps its rows: the upgrade of a running deployment.
#[test]
fn a_database_of_schema_2_is_brought_to_schema_3_at_open_and_keeps_its_rows() {
    let Some((url, db)) = writable("upgrade_2_to_3") else {
        return;
    };
    let cluster = postgres::shared().unwrap();
    db.open_tree("outbox")
        .unwrap()
        .insert(key(1), b"queued before".to_vec())
        .unwrap();
    pg(&db).release().unwrap();
    drop(db);
    // As version 2 left it: no version 3, every table with the default.
    let mut downgrade = String::from("DELETE FROM retorno_schema WHERE version = 3;");
    for table in tables() {
        downgrade.push_str(&format!(
            "ALTER TABLE \"{table}\" RESET (toast_tuple_target);"
        ));
    }
    cluster.psql(&url, &downgrade);
    let options = "SELECT count(*) FROM pg_class WHERE 'toast_tuple_target=8160' = ANY(reloptions)";
    assert_eq!(cluster.psql(&url, options).trim(), "0");

    let db = open(&url);
    assert_eq!(
        cluster
            .psql(
                &url,
                "SELECT string_agg(name, ',' ORDER BY version) FROM retorno_schema"
            )
            .trim(),
        "0001_trees,0002_lease,0003_inline_values"
    );
    assert_eq!(
        cluster.psql(&url, options).trim(),
        tables().count().to_string()
    );
    assert_eq!(
        db.open_tree("outbox")
            .unwrap()
            .get(key(1))
            .unwrap()
            .as_deref(),
        Some(&b"queued before"[..])
    );
}

/// Whether a session waits on a lock while updating the lease (the takeover).
fn lease_update_waits(db: &Db) -> bool {
    pg(db).lease_waiters().unwrap() > 0
}

#[test]
fn the_engine_works_from_a_plain_thread_and_both_runtimes() {
    let Some((url, db)) = database("runtimes") else {
        return;
    };
    pg(&db)
        .try_acquire(GATEWAY, "a", Duration::from_secs(60))
        .unwrap();
    let tree = db.open_tree("inbox").unwrap();
    tree.insert(b"plain", b"1").unwrap();

    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = tree.clone();
    current.block_on(async move {
        t.insert(b"current", b"2").unwrap();
        assert_eq!(t.get(b"plain").unwrap().unwrap().as_ref(), b"1");
        assert_eq!(keys_of(&t).len(), 2);
        // A handle opened and dropped inside the runtime.
        let other = open(&url);
        assert!(
            other
                .open_tree("inbox")
                .unwrap()
                .get(b"current")
                .unwrap()
                .is_some()
        );
        drop(other);
    });

    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = tree.clone();
    multi.block_on(async move {
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let t = t.clone();
                tokio::spawn(async move {
                    t.insert([b'm', i], vec![i]).unwrap();
                    t.get([b'm', i]).unwrap().unwrap()
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().as_ref(), &[i as u8]);
        }
    });
    assert_eq!(tree.len().unwrap(), 10);
}

fn keys_of(tree: &Tree) -> Vec<Vec<u8>> {
    tree.iter().map(|entry| entry.unwrap().0.to_vec()).collect()
}

#[tokio::test]
async fn the_engine_works_inside_a_current_thread_tokio_test() {
    let Some((_, db)) = writable("tokio_current") else {
        return;
    };
    let tree = db.open_tree("acks").unwrap();
    tree.insert(b"k", b"v").unwrap();
    assert_eq!(tree.get(b"k").unwrap().unwrap().as_ref(), b"v");
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_works_inside_a_multi_thread_tokio_test() {
    let Some((_, db)) = writable("tokio_multi") else {
        return;
    };
    let tree = db.open_tree("acks").unwrap();
    tree.insert(b"k", b"v").unwrap();
    assert_eq!(tree.get(b"k").unwrap().unwrap().as_ref(), b"v");
    drop(db);
}

/// The database machine dies: a primary with a synchronous standby is
/// killed with SIGKILL, the standby promoted, and the node reconnects to it
/// (a multi-host URL): every transaction that returned is there, and a
/// write that failed is not, unless its connection was lost (then its
/// outcome is unknown, and the error says so).
#[test]
fn after_a_database_failover_every_committed_transaction_is_there() {
    let Some(cluster) = postgres::Cluster::start_with_standby() else {
        return;
    };
    cluster.database("failover");
    let db = open(&cluster.failover_url("failover"));
    pg(&db)
        .try_acquire(GATEWAY, "a", Duration::from_secs(600))
        .unwrap();
    let tree = db.open_tree("inbox").unwrap();
    const N: u64 = 100;
    for n in 0..N {
        kv::transaction(&[&tree], |trees| {
            trees[0].insert(key(n), format!("notice {n}").into_bytes())?;
            Ok(())
        })
        .unwrap();
    }

    cluster.kill_primary();
    // A write racing the kill: the primary's backends outlive its
    // postmaster for a moment, so it may still commit (and reach the
    // standby); if its answer is lost, the error says the connection was
    // lost (outcome unknown); any other error means it was not kept.
    let racing = tree.insert(key(N + 1), b"while down");

    cluster.promote_standby();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(error) = tree.insert(key(N), b"after") {
        assert!(Instant::now() < deadline, "never reconnected: {error}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(keys(tree.range(..key(N))), (0..N).collect::<Vec<_>>());
    let kept = tree.get(key(N + 1)).unwrap().is_some();
    match &racing {
        Ok(()) => assert!(kept, "a write that returned is lost"),
        Err(StoreError::Postgres(error)) if error.is_closed() => {}
        Err(error) => assert!(!kept, "a write that failed ({error}) was kept"),
    }
    // The lease came along with the data: the same epoch still writes.
    assert_eq!(pg(&db).holder(GATEWAY).unwrap(), Some(("a".to_owned(), 1)));
}

/// The figure of the hot path: transactions per second of 64 inserts of
/// 2 KB each (durable: fsync and synchronous_commit on); beside it, for
/// what bounds it, one insert per transaction, and 64 inserts without
/// waiting for the WAL flush (`synchronous_commit = off`, for the figure only).
#[test]
fn a_transaction_of_64_inserts_rate() {
    let Some((url, db)) = database("rate") else {
        return;
    };
    pg(&db)
        .try_acquire(GATEWAY, "a", Duration::from_secs(600))
        .unwrap();
    let rate = |db: &Db, per: u64, first: u64| {
        let tree = db.open_tree("outbox").unwrap();
        let value = vec![7u8; 2048];
        const ROUNDS: u64 = 100;
        let started = Instant::now();
        for round in 0..ROUNDS {
            kv::transaction(&[&tree], |trees| {
                for i in 0..per {
                    trees[0].insert((first + round * per + i).to_be_bytes(), value.clone())?;
                }
                Ok(())
            })
            .unwrap();
        }
        ROUNDS as f64 / started.elapsed().as_secs_f64()
    };
    let durable = rate(&db, 64, 0);
    let single = rate(&db, 1, 1_000_000);
    let lazy_db = open(&format!("{url}?options=-c%20synchronous_commit%3Doff"));
    pg(&lazy_db)
        .try_acquire(GATEWAY, "a", Duration::from_secs(600))
        .unwrap();
    let lazy = rate(&lazy_db, 64, 2_000_000);
    println!(
        "PostgreSQL: {durable:.0} transactions/s of 64 inserts of 2 KB ({:.0} inserts/s); \
         {single:.0}/s of 1 insert; {lazy:.0}/s of 64 inserts with synchronous_commit = off",
        durable * 64.0
    );
    assert_eq!(
        db.open_tree("outbox").unwrap().len().unwrap(),
        100 * 64 * 2 + 100
    );
}

/// Without PostgreSQL the tests pass after one line saying they were
/// skipped; with `RETORNO_REQUIRE_POSTGRES=1` they fail. Runs this test
/// binary again on one test with the binaries' folder pointed nowhere.
#[test]
fn without_postgres_the_tests_skip_in_one_line_unless_it_is_required() {
    let run = |require: bool| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "a_transaction_sees_its_own_writes_and_an_aborted_one_keeps_nothing",
                "--test-threads=1",
            ])
            .env("RETORNO_PG_BINDIR", "/nonexistent");
        if require {
            command.env("RETORNO_REQUIRE_POSTGRES", "1");
        } else {
            command.env_remove("RETORNO_REQUIRE_POSTGRES");
        }
        command.output().unwrap()
    };
    let skipped = run(false);
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("skipped"))
        .collect();
    assert_eq!(lines, vec![postgres::SKIPPED], "{stderr}");
    assert!(postgres::SKIPPED.contains("apt-get install postgresql"));

    let required = run(true);
    assert!(!required.status.success());
    let stdout = String::from_utf8_lossy(&required.stdout);
    assert!(stdout.contains("RETORNO_REQUIRE_POSTGRES=1"), "{stdout}");
}

/// `[storage] tls_ca`: against a PostgreSQL that takes TLS connections
/// only, the engine connects with the CA that signed the server's
/// certificate; without it the server rejects the plain connection; a URL
/// with `sslmode=require` and no CA is refused naming `storage.tls_ca`; and
/// a CA that did not sign the server's certificate is refused.
#[test]
fn connections_are_tls_and_the_server_is_verified_against_storage_tls_ca() {
    let Some((cluster, tls)) = postgres::Cluster::start_with_tls() else {
        return;
    };
    let url = cluster.database(postgres::SERVER_TLS_ONLY);

    let db = open_with(&tls_settings(&url, Some(&tls.ca), None)).unwrap();
    assert!(db.open_tree("cases").unwrap().is_empty().unwrap());

    let Err(plain) = open_with(&tls_settings(&url, None, None)) else {
        panic!("a plain connection to a TLS-only server was taken");
    };
    assert!(plain.to_string().contains("no encryption"), "{plain}");

    let Err(unverifiable) = open_with(&tls_settings(&format!("{url}?sslmode=require"), None, None))
    else {
        panic!("sslmode=require without a CA was taken");
    };
    assert!(
        unverifiable
            .to_string()
            .contains("storage.tls_ca is not set"),
        "{unverifiable}"
    );

    let other = OtherCa::new();
    let Err(impostor) = open_with(&tls_settings(&url, Some(&other.files.ca), None)) else {
        panic!("a server whose certificate another CA signed was trusted");
    };
    assert!(
        impostor.to_string().contains("UnknownIssuer")
            && impostor
                .to_string()
                .contains("check that storage.tls_ca is the CA"),
        "{impostor}"
    );
}

/// `[storage] tls_cert` and `tls_key`: where `pg_hba.conf` says `cert`,
/// the server takes the node by its client certificate, and no password;
/// without one, or with one another CA issued, the connection is refused
/// and the error says which setting to look at.
#[test]
fn a_server_that_asks_for_a_client_certificate_takes_storage_tls_cert() {
    let Some((cluster, tls)) = postgres::Cluster::start_with_tls() else {
        return;
    };
    let url = cluster.database("client_certificates");
    let own = Some((tls.client_cert.as_path(), tls.client_key.as_path()));

    let db = open_with(&tls_settings(&url, Some(&tls.ca), own)).unwrap();
    assert!(db.open_tree("cases").unwrap().is_empty().unwrap());

    let Err(none) = open_with(&tls_settings(&url, Some(&tls.ca), None)) else {
        panic!("a connection without a client certificate was taken");
    };
    assert!(
        none.to_string()
            .contains("this node presents none: set storage.tls_cert and storage.tls_key"),
        "{none}"
    );

    let other = OtherCa::new();
    let Err(stranger) = open_with(&tls_settings(
        &url,
        Some(&tls.ca),
        Some((&other.files.client_cert, &other.files.client_key)),
    )) else {
        panic!("a client certificate another CA issued was taken");
    };
    assert!(
        stranger.to_string().contains("storage.tls_cert"),
        "{stranger}"
    );

    let Err(mismatched) = open_with(&tls_settings(
        &url,
        Some(&tls.ca),
        Some((&tls.client_cert, &other.files.client_key)),
    )) else {
        panic!("a client certificate with another certificate's key was taken");
    };
    assert!(
        mismatched.to_string().contains("storage.tls_key"),
        "{mismatched}"
    );
}

/// `[storage]` for PostgreSQL at `url` over TLS verified against `ca`,
/// presenting the client certificate `own` (certificate, key).
fn tls_settings(
    url: &str,
    ca: Option<&std::path::Path>,
    own: Option<(&std::path::Path, &std::path::Path)>,
) -> Storage {
    Storage {
        backend: Backend::Postgres,
        url: Some(DatabaseUrl::new(url)),
        tls_ca: ca.map(std::path::Path::to_owned),
        tls_cert: own.map(|(cert, _)| cert.to_owned()),
        tls_key: own.map(|(_, key)| key.to_owned()),
        ..Storage::default()
    }
}

fn open_with(settings: &Storage) -> Result<Db, StoreError> {
    Db::open(std::path::Path::new("/nonexistent"), settings)
}

/// A CA that signed nothing of the cluster's, and a client certificate for
/// the user `postgres` that it issued.
struct OtherCa {
    _dir: tempfile::TempDir,
    files: postgres::TlsFiles,
}

impl OtherCa {
    fn new() -> OtherCa {
        let dir = tempfile::tempdir().unwrap();
        OtherCa {
            files: postgres::TlsFiles::of_another_ca(dir.path()),
            _dir: dir,
        }
    }
}

/// A whole gateway on a TLS-only PostgreSQL that knows it by its client
/// certificate (`[storage] tls_ca`, `tls_cert`, `tls_key`): Mexico's notice
/// is accepted, reaches Guatemala, and Guatemala's receipt is stored at
/// Mexico, every one of those writes over a mutually verified connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_postgresql_over_tls_sends_a_notice_and_holds_its_receipt() {
    use retorno_proto::v1::DeliveryState;
    let Some((cluster, tls)) = postgres::Cluster::start_with_tls() else {
        return;
    };
    let region = retorno_tests::Region::new(&["MX", "GT"]);
    let mut config = region.config("MX");
    config.storage = retorno_tests::engine::postgres_storage(&cluster.database("mx"), "node-a");
    config.storage.tls_ca = Some(tls.ca);
    config.storage.tls_cert = Some(tls.client_cert);
    config.storage.tls_key = Some(tls.client_key);
    let mx = region.start_with(config).await;
    let gt = region.start("GT").await;
    let inm = region.agency("MX", "destination-authority").await;
    let mut sbs = region.agency("GT", "child-protection").await;
    let accepted = inm
        .clone()
        .submit(retorno_tests::notice_to("GT", "MX-2026-0001"))
        .await
        .unwrap();
    let items = retorno_tests::inbox_with(&mut sbs, 0, 1).await;
    assert_eq!(
        items[0].body.as_ref().unwrap().message_id,
        accepted.message_id
    );
    retorno_tests::eventually("MX to record GT's receipt", || {
        let mut inm = inm.clone();
        let id = accepted.message_id.clone();
        async move { (inm.status(&id).await.unwrap().state() == DeliveryState::Delivered).then_some(()) }
    })
    .await;
    gt.shutdown().await;
    mx.shutdown().await;
}
