//! LastAccessedDate recording, off the read path. A read notes the day in the cached
//! record at once (so DescribeSecret shows it) and queues the store write; a background
//! task writes queued dates concurrently, so the store's group commit gives many of them
//! one fsync, and no read waits for a disk flush. An access date is metadata no client
//! write depends on: if the queue is full, or the process stops before the write, the day
//! is recorded on the next read instead.

use crate::cache::ReadCache;
use arca_store::Store;
use arca_types::time::Millis;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;

const QUEUE: usize = 65_536;
const BATCH: usize = 512;

struct Touch {
    region: String,
    name: String,
    arn: String,
    version_id: String,
    day: Millis,
}

pub(crate) struct AccessRecorder {
    store: Arc<dyn Store>,
    cache: Arc<ReadCache>,
    /// Started on first use, inside the runtime.
    tx: OnceLock<mpsc::Sender<Touch>>,
    /// (arn, version, day) queued or being written: not queued again meanwhile.
    inflight: Arc<Mutex<HashSet<(String, String, Millis)>>>,
}

impl AccessRecorder {
    pub(crate) fn new(store: Arc<dyn Store>, cache: Arc<ReadCache>) -> Self {
        Self {
            store,
            cache,
            tx: OnceLock::new(),
            inflight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    pub(crate) fn record(
        &self,
        region: &str,
        name: &str,
        arn: &str,
        version_id: &str,
        day: Millis,
    ) {
        self.cache.note_access(arn, version_id, day);
        let key = (arn.to_owned(), version_id.to_owned(), day);
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if !inflight.insert(key.clone()) {
                return;
            }
        }
        let touch = Touch {
            region: region.to_owned(),
            name: name.to_owned(),
            arn: arn.to_owned(),
            version_id: version_id.to_owned(),
            day,
        };
        if self.sender().try_send(touch).is_err() {
            self.inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            tracing::debug!("access-date queue full; the date is recorded on a later read");
        }
    }

    fn sender(&self) -> &mpsc::Sender<Touch> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(
                rx,
                self.store.clone(),
                self.cache.clone(),
                self.inflight.clone(),
            ));
            tx
        })
    }
}

async fn run(
    mut rx: mpsc::Receiver<Touch>,
    store: Arc<dyn Store>,
    cache: Arc<ReadCache>,
    inflight: Arc<Mutex<HashSet<(String, String, Millis)>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(t) => batch.push(t),
                Err(_) => break,
            }
        }
        let mut writes = tokio::task::JoinSet::new();
        for t in batch {
            let store = store.clone();
            writes.spawn(async move {
                let r = store.touch_accessed(&t.arn, &t.version_id, t.day).await;
                (t, r)
            });
        }
        while let Some(done) = writes.join_next().await {
            let Ok((t, result)) = done else { continue };
            if let Err(e) = result {
                tracing::warn!(error = %e, "recording an access date failed");
            }
            // The store now has the day: reread it from there next time.
            cache.invalidate(&t.region, &t.name, &t.arn);
            inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&(
                t.arn,
                t.version_id,
                t.day,
            ));
        }
    }
}
