//! LastAccessedDate days not yet written. A read notes the day in the cached record at
//! once and hands the store write to the read log (`readlog`), which writes it with the
//! reads' audit records, off the read path. Until written, pending days are laid over
//! records read from the store (`overlay`), and a listing sorted by access date waits
//! for them (the log's `flush_touches`). An access date is metadata no client write
//! depends on: if the log's queue is full, or the process stops before the write, the
//! day is recorded on the next read instead.

use crate::cache::ReadCache;
use arca_store::{AccessTouch, SecretRecord};
use arca_types::time::Millis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Touches queued or being written, by ARN: (version id, day). Not queued twice.
type Pending = HashMap<String, Vec<(String, Millis)>>;

pub(crate) struct AccessDays {
    pending: Mutex<Pending>,
    cache: Arc<ReadCache>,
}

impl AccessDays {
    pub(crate) fn new(cache: Arc<ReadCache>) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            cache,
        }
    }

    /// The pending days, locked: the log sends a claimed touch under this lock, so that
    /// its count of queued touches follows the queue's order.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The touch to queue for this read, unless one for the same day (or a later one) is
    /// already pending; claimed in `pending` until written or given back.
    pub(crate) fn claim(
        pending: &mut Pending,
        arn: &str,
        version_id: &str,
        day: Millis,
    ) -> Option<AccessTouch> {
        let versions = pending.entry(arn.to_owned()).or_default();
        if versions.iter().any(|(v, d)| v == version_id && *d >= day) {
            return None;
        }
        versions.push((version_id.to_owned(), day));
        Some(AccessTouch {
            arn: arn.to_owned(),
            version_id: version_id.to_owned(),
            day,
        })
    }

    /// Gives back a claim whose touch was not queued or is written.
    pub(crate) fn forget(pending: &mut Pending, t: &AccessTouch) {
        if let Some(versions) = pending.get_mut(&t.arn) {
            versions.retain(|(v, d)| !(*v == t.version_id && *d == t.day));
            if versions.is_empty() {
                pending.remove(&t.arn);
            }
        }
    }

    /// Notes a queued touch's day in the cached record, so later reads that day queue
    /// nothing.
    pub(crate) fn noted(&self, arn: &str, version_id: &str, day: Millis) {
        self.cache.note_access(arn, version_id, day);
    }

    /// Lays days not yet written over a record just read from the store.
    pub(crate) fn overlay(&self, record: &mut SecretRecord) {
        let pending = self.lock();
        let Some(touches) = pending.get(&record.arn) else {
            return;
        };
        for (version_id, day) in touches {
            record.mark_accessed(version_id, *day);
        }
    }

    /// After a batch's write: `touches` were handed to the store, `failed` of them were
    /// not written.
    pub(crate) fn written(&self, touches: &[AccessTouch], failed: &[AccessTouch]) {
        // Entries filled from reads that raced this write may lack the day: put it back.
        self.cache.touched(touches);
        // Where the write failed, the cache must not claim the day, or no read would
        // record it again: drop those entries, and the next read refills and retries.
        for t in failed {
            self.cache.invalidate_arn(&t.arn);
        }
        let mut pending = self.lock();
        for t in touches {
            Self::forget(&mut pending, t);
        }
    }
}
