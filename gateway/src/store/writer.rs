//! The store's writer and group commit: one thread applies every write
//! waiting in one transaction, and one task makes many callers' writes
//! durable with one flush (see the store's module documentation).

use std::sync::{Arc, Mutex, Weak, mpsc as sync_mpsc};

use tokio::sync::{mpsc, oneshot};

use super::{
    Done, Enqueued, Requeued, Store, StoreError, WRITE_GROUP, WRITE_GROUP_BYTES, Write,
    barrier::PowerLossBarrier,
};
use crate::kv::Db;

/// The writer thread: takes every write waiting (up to [`WRITE_GROUP`]) and
/// applies them in one transaction. Answers are recorded then (a receipt is
/// kept, not promised: a crash before the next flush only means the entry is
/// delivered again, and the peer answers with the same receipt); submits are
/// answered after a flush. Writes that arrive meanwhile wait for the next
/// group. Ends when the store is dropped.
pub(super) fn writer(store: Weak<Store>, writes: sync_mpsc::Receiver<Write>, flusher: &Flusher) {
    while let Ok(first) = writes.recv() {
        let mut bytes = first.envelope_bytes();
        let mut group = vec![first];
        while group.len() < WRITE_GROUP && bytes < WRITE_GROUP_BYTES {
            match writes.try_recv() {
                Ok(write) => {
                    bytes += write.envelope_bytes();
                    group.push(write);
                }
                Err(_) => break,
            }
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        let results = store.apply_writes_surviving_panics(&group);
        let mut submits = Vec::new();
        let mut requeues = Vec::new();
        for (write, result) in group.into_iter().zip(results) {
            match (write, result) {
                (Write::Submit(submit), Ok(Done::Submit(enqueued))) => {
                    submits.push((submit, Ok(enqueued)));
                }
                (Write::Submit(submit), result) => {
                    submits.push((submit, result.and(Err(StoreError::Closed))));
                }
                (Write::Answers { done, .. }, result) => {
                    let _ = done.send(result.map(|_| ()));
                }
                (Write::Requeue { peer, done, .. }, Ok(Done::Requeue(requeued))) => {
                    requeues.push((peer, done, Ok(requeued)));
                }
                (Write::Requeue { peer, done, .. }, result) => {
                    requeues.push((peer, done, result.and(Err(StoreError::Closed))));
                }
            }
        }
        // A duplicate waits for the flush too: its first copy may be in this very group.
        let durable = submits
            .iter()
            .any(|(_, r)| matches!(r, Ok(Enqueued::New(..) | Enqueued::Duplicate)))
            || requeues
                .iter()
                .any(|(_, _, r)| matches!(r, Ok(Requeued::Now(_))));
        let flushed = if durable { flusher.flush() } else { Ok(()) };
        if let Err(error) = &flushed {
            tracing::error!(%error, "flush failed: no submit in this group is accepted");
        }
        store.answer_requeues(requeues, flushed.clone());
        store.answer_submits(submits, flushed);
    }
}

/// The flush task: takes every waiting request, flushes once, answers them all.
/// A request that arrives during a flush waits for the next one, because its
/// write may have finished after the current flush began.
pub(super) async fn group_commit(
    flusher: Arc<Flusher>,
    mut requests: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), StoreError>>>,
) {
    while let Some(first) = requests.recv().await {
        let mut waiters = vec![first];
        while let Ok(more) = requests.try_recv() {
            waiters.push(more);
        }
        let flusher = flusher.clone();
        let result = tokio::task::spawn_blocking(move || flusher.flush())
            .await
            .unwrap_or(Err(StoreError::Closed));
        if let Err(error) = &result {
            tracing::error!(%error, "flush failed: nothing in this group is acknowledged");
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

/// Makes every write that finished before [`Flusher::flush`] was called durable.
pub(super) struct Flusher {
    pub(super) db: Db,
    pub(super) barrier: Option<Mutex<PowerLossBarrier>>,
}

impl Flusher {
    pub(super) fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        if let Some(barrier) = &self.barrier {
            // The barrier's state stays valid if a holder panicked.
            let mut barrier = barrier.lock().unwrap_or_else(|e| e.into_inner());
            barrier.sync().map_err(|e| StoreError::Io(Arc::new(e)))?;
        }
        Ok(())
    }
}
