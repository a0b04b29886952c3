//! Several nodes of one country's gateway on one database: which of them
//! serves.
//!
//! One node holds the country's lease, a row with an epoch in the database
//! ([`crate::kv`]'s PostgreSQL engine). Only the holder opens the store,
//! accepts, delivers and receives; every write transaction checks the epoch
//! first, so a node that lost its lease (paused, cut off) can never write
//! again: its writes fail as fenced, whatever it believes. The other nodes
//! stand by: their listeners answer `grpc.health.v1` NOT_SERVING and
//! nothing else, so that a load balancer sends traffic to the holder. When
//! the holder dies, its lease runs out (`[storage] lease_seconds`, timed
//! by the database's clock) and a standby takes it with the next epoch.
//!
//! The holder renews every third of the lease. A holder that finds its
//! lease gone, or cannot renew it for a whole lease (an error, or a renewal
//! that the database does not complete), stops serving at once
//! ([`keep`]) and its program exits, to start again as a standby.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::{config::Storage, kv::postgres::Pg, storage::StoreError};

/// The lease's name in the database: one gateway per database, so one lease.
const LEASE: &str = "gateway";

/// A lease on one country's gateway, held (or wanted) by this node. The
/// calls block (the engine's calls do): they are run off the async threads.
pub trait Lease: Send + Sync + 'static {
    /// Takes the lease if it is free, expired or already this node's;
    /// returns the epoch now held, or `None` while another node holds it.
    fn try_acquire(&self) -> Result<Option<i64>, StoreError>;
    /// Extends the lease; `false` when it is no longer this node's.
    fn renew(&self) -> Result<bool, StoreError>;
    /// Gives the lease up (a clean stop), so that a standby need not wait
    /// for it to run out.
    fn release(&self) -> Result<(), StoreError>;
    /// Who holds the lease, for the log of a standby.
    fn holder(&self) -> Result<Option<(String, i64)>, StoreError>;
}

/// Runs a blocking lease call off the async threads.
async fn blocking<T: Send + 'static>(
    lease: &Arc<dyn Lease>,
    call: impl FnOnce(&dyn Lease) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let lease = lease.clone();
    tokio::task::spawn_blocking(move || call(lease.as_ref()))
        .await
        .unwrap_or(Err(StoreError::Closed))
}

/// Gives the lease up, so that another node may take it at once.
pub async fn release(lease: &Arc<dyn Lease>) -> Result<(), StoreError> {
    blocking(lease, |lease| lease.release()).await
}

/// Tries once to take the lease.
pub async fn try_acquire(lease: &Arc<dyn Lease>) -> Result<Option<i64>, StoreError> {
    blocking(lease, |lease| lease.try_acquire()).await
}

/// Waits until this node holds the lease, trying every `every`; returns
/// the epoch held.
pub async fn acquire(lease: &Arc<dyn Lease>, every: Duration) -> i64 {
    let mut announced = None;
    loop {
        match try_acquire(lease).await {
            Ok(Some(epoch)) => {
                tracing::info!(epoch, "this node holds the lease now and serves");
                return epoch;
            }
            Ok(None) => {
                let holder = blocking(lease, |lease| lease.holder()).await.ok().flatten();
                if holder != announced {
                    if let Some((node, epoch)) = &holder {
                        tracing::info!(holder = %node, epoch, "standing by: another node holds the lease");
                    }
                    announced = holder;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "standing by: the lease could not be read");
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Keeps the lease while the gateway runs: renews it every third of `ttl`
/// until `shutdown`, then releases it. Returns why the lease was lost, if
/// it was: the gateway must stop serving at once.
pub async fn keep(
    lease: Arc<dyn Lease>,
    ttl: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Option<String> {
    let every = ttl / 3;
    let mut renewed = tokio::time::Instant::now();
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(every) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        if stopping {
            if let Err(error) = release(&lease).await {
                tracing::warn!(%error, "the lease could not be released: a standby takes it when it runs out");
            }
            return None;
        }
        // A renewal blocked in the database (a commit waiting for a
        // synchronous standby that is gone) counts as failed once the lease
        // it would extend has run out: this node stops serving, as it would
        // on an error. The blocked call is left to finish on its own.
        let left = ttl.saturating_sub(renewed.elapsed()).max(every);
        let renewal = tokio::time::timeout(left, blocking(&lease, |lease| lease.renew()))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Stalled {
                    what: "the lease's renewal",
                    waited_s: left.as_secs(),
                })
            });
        match renewal {
            Ok(true) => renewed = tokio::time::Instant::now(),
            Ok(false) => return Some("another node holds the lease now".into()),
            Err(error) if renewed.elapsed() >= ttl => {
                return Some(format!(
                    "the lease could not be renewed for {} s ({error}): another node may hold it",
                    ttl.as_secs()
                ));
            }
            Err(error) => tracing::warn!(%error, "the lease could not be renewed; trying again"),
        }
    }
}

/// The lease in a gateway's PostgreSQL database (`retorno_lease`), for
/// this node (`[storage] node`, by default the host name).
pub struct PgLease {
    pg: Pg,
    node: String,
    ttl: Duration,
}

impl PgLease {
    /// The lease of the gateway whose database `pg` is, for this node.
    pub fn new(pg: Pg, settings: &Storage) -> PgLease {
        PgLease {
            pg,
            node: settings.node_name(),
            ttl: Duration::from_secs(settings.lease_seconds.max(1)),
        }
    }
}

impl Lease for PgLease {
    fn try_acquire(&self) -> Result<Option<i64>, StoreError> {
        self.pg.try_acquire(LEASE, &self.node, self.ttl)
    }

    fn renew(&self) -> Result<bool, StoreError> {
        self.pg.renew(self.ttl)
    }

    fn release(&self) -> Result<(), StoreError> {
        self.pg.release()
    }

    fn holder(&self) -> Result<Option<(String, i64)>, StoreError> {
        self.pg.holder(LEASE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, mpsc};

    /// A lease whose renewal blocks until the test lets it go, as one does
    /// when the database stops completing commits.
    struct Blocked(Mutex<mpsc::Receiver<()>>);

    impl Lease for Blocked {
        fn try_acquire(&self) -> Result<Option<i64>, StoreError> {
            Ok(Some(1))
        }
        fn renew(&self) -> Result<bool, StoreError> {
            // At most 20 s, so that a failing test ends.
            let _ = self
                .0
                .lock()
                .map(|wait| wait.recv_timeout(Duration::from_secs(20)));
            Ok(true)
        }
        fn release(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn holder(&self) -> Result<Option<(String, i64)>, StoreError> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn a_renewal_the_database_never_completes_stops_the_holder_within_a_lease() {
        let (release, wait) = mpsc::channel();
        let lease: Arc<dyn Lease> = Arc::new(Blocked(Mutex::new(wait)));
        let ttl = Duration::from_millis(300);
        let (_stop, shutdown) = watch::channel(false);
        let started = tokio::time::Instant::now();
        let why = tokio::time::timeout(Duration::from_secs(10), keep(lease, ttl, shutdown))
            .await
            .expect("keep to stop serving within 10 s of a renewal that never completes")
            .expect("a reason to stop serving");
        assert!(why.contains("could not be renewed"), "{why}");
        assert!(started.elapsed() < ttl * 3, "stopped within about a lease");
        // The blocked call finishes, so that the runtime can shut down.
        let _ = release.send(());
    }
}
