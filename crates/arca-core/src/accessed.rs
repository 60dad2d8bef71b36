//! LastAccessedDate recording, off the read path. A read notes the day in the cached
//! record at once and queues the store write; a background task writes what gathered
//! over about a second as one batch (one transaction, one fsync), so no read waits for a
//! disk flush. Batching matters beyond the fsync: every commit makes each SQLite reader
//! drop its page cache, so a burst of first-of-day reads over many secrets (each one a
//! write) must not become hundreds of commits a second. Until written, pending days are
//! laid over records read from the store (`overlay`), and a listing sorted by access date
//! waits for them (`flush`). An access date is metadata no client write depends on: if
//! the queue is full, or the process stops before the write, the day is recorded on the
//! next read instead.

use crate::cache::ReadCache;
use arca_store::{AccessTouch, SecretRecord, Store};
use arca_types::time::Millis;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

const QUEUE: usize = 65_536;
/// How long a batch gathers after its first touch.
const GATHER: Duration = Duration::from_secs(1);
/// Touches per store call; a batch's calls go out together, so the writer commits them as
/// one group, with other writes able to run in between.
const CHUNK: usize = 1_024;

/// Touches queued or being written, by ARN: (version id, day). Not queued twice.
type Pending = HashMap<String, Vec<(String, Millis)>>;

pub(crate) struct AccessRecorder {
    store: Arc<dyn Store>,
    cache: Arc<ReadCache>,
    shared: Arc<Shared>,
    /// The queue, and the count of touches written so far (queue order); the writer task
    /// starts on first use, inside the runtime, and owns the count's sending side, so
    /// waiting on it ends if the task does.
    tx: OnceLock<(mpsc::Sender<AccessTouch>, watch::Receiver<u64>)>,
}

/// What the recorder and its writer task share.
struct Shared {
    pending: Mutex<Pending>,
    /// Touches sent to the queue so far.
    queued: AtomicU64,
    /// Ends a batch's gathering early (a `flush` waits).
    flush_now: Notify,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AccessRecorder {
    pub(crate) fn new(store: Arc<dyn Store>, cache: Arc<ReadCache>) -> Self {
        Self {
            store,
            cache,
            shared: Arc::new(Shared {
                pending: Mutex::new(HashMap::new()),
                queued: AtomicU64::new(0),
                flush_now: Notify::new(),
            }),
            tx: OnceLock::new(),
        }
    }

    pub(crate) fn record(&self, arn: &str, version_id: &str, day: Millis) {
        {
            let mut pending = self.shared.pending();
            let versions = pending.entry(arn.to_owned()).or_default();
            if !versions.iter().any(|(v, d)| v == version_id && *d >= day) {
                versions.push((version_id.to_owned(), day));
                let touch = AccessTouch {
                    arn: arn.to_owned(),
                    version_id: version_id.to_owned(),
                    day,
                };
                // Sent and counted under the lock, so `queued` follows the queue's order.
                match self.queue().0.try_send(touch) {
                    Ok(()) => {
                        self.shared.queued.fetch_add(1, Ordering::AcqRel);
                    }
                    Err(e) => {
                        forget(&mut pending, &e.into_inner());
                        // Not noted in the cache either: the next read tries again.
                        tracing::debug!(
                            "access-date queue full; the date is recorded on a later read"
                        );
                        return;
                    }
                }
            }
        }
        self.cache.note_access(arn, version_id, day);
    }

    /// Lays days not yet written over a record just read from the store.
    pub(crate) fn overlay(&self, record: &mut SecretRecord) {
        let pending = self.shared.pending();
        let Some(touches) = pending.get(&record.arn) else {
            return;
        };
        for (version_id, day) in touches {
            record.mark_accessed(version_id, *day);
        }
    }

    /// Waits until every touch queued before the call is written.
    pub(crate) async fn flush(&self) {
        // Nothing was ever queued if the queue does not exist yet.
        if let Some((_, written)) = self.tx.get() {
            let queued = self.shared.queued.load(Ordering::Acquire);
            crate::caught_up::caught_up(written, queued, &self.shared.flush_now).await;
        }
    }

    fn queue(&self) -> &(mpsc::Sender<AccessTouch>, watch::Receiver<u64>) {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let (written_tx, written) = watch::channel(0);
            tokio::spawn(run(
                rx,
                self.store.clone(),
                self.cache.clone(),
                self.shared.clone(),
                written_tx,
            ));
            (tx, written)
        })
    }
}

fn forget(pending: &mut Pending, t: &AccessTouch) {
    if let Some(versions) = pending.get_mut(&t.arn) {
        versions.retain(|(v, d)| !(*v == t.version_id && *d == t.day));
        if versions.is_empty() {
            pending.remove(&t.arn);
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<AccessTouch>,
    store: Arc<dyn Store>,
    cache: Arc<ReadCache>,
    shared: Arc<Shared>,
    written: watch::Sender<u64>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, QUEUE).await > 0 {
        tokio::select! {
            _ = tokio::time::sleep(GATHER) => {}
            _ = shared.flush_now.notified() => {}
        }
        while let Ok(t) = rx.try_recv() {
            batch.push(t);
        }
        let mut writes = tokio::task::JoinSet::new();
        for (i, chunk) in batch.chunks(CHUNK).enumerate() {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            writes.spawn(async move { (i, store.touch_accessed(chunk).await) });
        }
        let mut failed = Vec::new();
        while let Some(done) = writes.join_next().await {
            match done {
                Ok((_, Ok(()))) => {}
                Ok((i, Err(e))) => {
                    tracing::warn!(error = %e, "recording access dates failed");
                    failed.extend(batch.chunks(CHUNK).nth(i).into_iter().flatten());
                }
                Err(e) => tracing::warn!(error = %e, "recording access dates failed"),
            }
        }
        // Entries filled from reads that raced this write may lack the day: put it back.
        cache.touched(&batch);
        // Where the write failed, the cache must not claim the day, or no read would
        // record it again: drop those entries, and the next read refills and retries.
        for t in failed {
            cache.invalidate_arn(&t.arn);
        }
        {
            let mut pending = shared.pending();
            for t in &batch {
                forget(&mut pending, t);
            }
        }
        written.send_modify(|w| *w += batch.len() as u64);
        batch.clear();
    }
}
