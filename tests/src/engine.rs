//! The storage engine a test's gateways run on, so that one test body runs
//! on both engines ([`on_both_engines!`](crate::on_both_engines)): one code
//! path, parametrised, not a copy.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
};

use retorno_gateway::config::{DatabaseUrl, Storage};

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
