//! The storage engine a test's gateways run on, so that one test body runs
//! on both engines ([`on_both_engines!`](crate::on_both_engines)): one code
//! path, parametrised, not a copy.

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use retorno_gateway::{
    config::{DatabaseUrl, Storage},
    kv::Db,
    lease::{Lease as _, PgLease},
    storage::{StoreError, TREES},
};

use crate::postgres::{self, Cluster};

/// A storage engine for a test region.
#[derive(Clone)]
pub enum Engine {
    /// sled in the region's temporary folder (the default).
    Sled,
    /// PostgreSQL: a database per gateway in this test binary's cluster.
    Postgres(&'static Cluster),
}

tokio::task_local! {
    static ENGINE: Engine;
}

/// The engine of the running test ([`on`]); sled outside one.
pub fn current() -> Engine {
    ENGINE.try_with(Clone::clone).unwrap_or(Engine::Sled)
}

/// Runs a test body with its regions on `engine`.
pub async fn on<F: Future>(engine: Engine, body: F) -> F::Output {
    ENGINE.scope(engine, body).await
}

/// The PostgreSQL engine, or `None` (after the one-line skip notice) when
/// PostgreSQL is not installed; a failure instead under `RETORNO_REQUIRE_POSTGRES=1`.
pub fn postgres() -> Option<Engine> {
    postgres::shared().map(Engine::Postgres)
}

/// A database name not used before in this test binary's cluster.
pub fn database_name(code: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "gw_{}_{}",
        NEXT.fetch_add(1, Ordering::Relaxed),
        code.to_lowercase()
    )
}

/// Storage settings for a node named `node` of a gateway whose database is `url`.
pub fn postgres_storage(url: &str, node: &str) -> Storage {
    Storage {
        backend: retorno_gateway::storage::Backend::Postgres,
        url: Some(DatabaseUrl::new(url)),
        node: Some(node.to_owned()),
        ..Storage::default()
    }
}

/// A PostgreSQL engine on a cluster of the caller's own, not the test
/// binary's shared one: for a test that reads the cluster's files, which
/// other tests' databases would share. The cluster is stopped when the
/// test process ends. `None` as [`postgres()`].
pub fn private_postgres() -> Option<Engine> {
    let cluster: &'static Cluster = Box::leak(Box::new(Cluster::start()?));
    Some(Engine::Postgres(cluster))
}

/// Storage settings, with at-rest `keys`, for a database of its own on the
/// running test's engine, for a store a test opens itself: sled in the
/// folder it opens, or a new database in the engine's cluster.
pub fn storage_with_keys(code: &str, keys: &[PathBuf]) -> Storage {
    let mut storage = match current() {
        Engine::Sled => Storage::default(),
        Engine::Postgres(cluster) => {
            postgres_storage(&cluster.database(&database_name(code)), "node-a")
        }
    };
    storage.keys = keys.to_vec();
    storage
}

/// The raw database of a stopped gateway (`dir` and `storage` as its
/// config gives them), as whoever has write access to it sees it: on
/// PostgreSQL with the lease taken, as a stopped gateway's command takes it.
/// Waits for a store just dropped to release sled's lock.
pub async fn raw_database(dir: &Path, storage: &Storage) -> Db {
    let db = crate::eventually("the database to be free", || async {
        match Db::open(dir, storage) {
            Ok(db) => Some(db),
            Err(StoreError::Sled(_)) => None,
            Err(other) => panic!("{other}"),
        }
    })
    .await;
    if let Db::Postgres(pg) = &db {
        PgLease::new(pg.clone(), storage)
            .try_acquire()
            .unwrap()
            .expect("the lease of a stopped gateway");
    }
    db
}

/// Whether any key or value of any tree of the stopped gateway's database
/// contains `needle`: what any reader of the database can still get.
pub async fn database_contains(dir: &Path, storage: &Storage, needle: &[u8]) -> bool {
    let db = raw_database(dir, storage).await;
    let has = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let mut trees: Vec<_> = TREES
        .iter()
        .map(|name| db.open_tree(name).unwrap())
        .collect();
    trees.push(db.default_tree());
    trees.iter().any(|tree| {
        tree.iter().any(|item| {
            let (key, value) = item.unwrap();
            has(&key) || has(&value)
        })
    })
}

/// Writes each test twice, as a module of two tests: `sled` and `postgres`
/// (which returns early, saying so once, where PostgreSQL is not installed).
/// Every [`Region`](crate::Region) the body makes runs on that engine.
#[macro_export]
macro_rules! on_both_engines {
    ($(
        $(#[$attr:meta])*
        async fn $name:ident() $body:block
    )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            async fn sled() {
                $crate::engine::on($crate::engine::Engine::Sled, async $body).await
            }

            $(#[$attr])*
            async fn postgres() {
                if let Some(engine) = $crate::engine::postgres() {
                    $crate::engine::on(engine, async $body).await
                }
            }
        }
    )*};
}
