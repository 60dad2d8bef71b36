//! The read path's bookkeeping, one batched path: the audit records no write carries
//! (reads and refused calls) and the LastAccessedDate days that reads set. A request
//! hands its finished `Call`, or its day, to one bounded queue and goes on; one task
//! gathers what arrives, packs the calls (`audit::batch`), and writes the records, the
//! event deliveries their events owe and the days in one store write
//! (`Store::append_reads`: one transaction, one commit, one chain extension). So a read
//! never waits for the disk, and a burst of reads costs one commit, not one per read:
//! every commit also makes each SQLite reader drop its page cache. A batch holding calls
//! closes 100 ms after its first call (the trail shows a read within moments); one
//! holding only days gathers for a second (nothing a client waits on depends on them).
//!
//! When the queue is full (the store is slower than the calls for a while): a refused
//! call that could have written waits for room, so its record is never lost; a read's
//! record, or a refused authentication's, waits up to `FULL_WAIT` and is then dropped.
//! Drops are counted (`AuditStats::dropped`), logged (at most every 10 s), and written
//! into the trail itself as an `AuditRecordsDropped` service event with the count, so a
//! reader of the trail sees where it has a hole. A day that finds no room is not queued:
//! the next read of that secret queues it again. A write's own record never takes this
//! path: it commits with the write.

use crate::accessed::AccessDays;
use crate::audit::batch::{pack_all, Pending};
use crate::audit::ServiceEvent;
use crate::cache::ReadCache;
use arca_store::{AccessTouch, AuditEntry, NewDelivery, ReadBatch, SecretRecord, Store};
use arca_types::time::{Clock, Millis};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// Items queued at most (a call about 1 KiB while queued, a day about 150 bytes).
pub const DEFAULT_QUEUE: usize = 65_536;
/// How long a batch gathers after its first call.
const CALLS_GATHER: Duration = Duration::from_millis(100);
/// How long a batch of days alone gathers after its first day.
const DAYS_GATHER: Duration = Duration::from_secs(1);
/// How long a droppable record waits for room in a full queue.
const FULL_WAIT: Duration = Duration::from_millis(20);
/// The most a batch's calls' times spread (see `audit::batch`): queries widen time
/// bounds by it.
pub const BATCH_SPAN_MS: Millis = 1_000;
/// Calls per trail entry (a batch's row stays well under a megabyte).
const CHUNK: usize = 4_096;
/// Calls per batch at most.
const MAX_CALLS: usize = CHUNK * 4;
/// Days per batch at most.
const MAX_TOUCHES: usize = 65_536;
/// Days per store call: a batch's calls go out together, so the writer commits them as
/// one group, with other writes able to run in between.
const TOUCH_CHUNK: usize = 1_024;
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// The source Arca's own bookkeeping events name (not an AWS service).
pub const ARCA_AUDIT_SOURCE: &str = "audit.arca.local";

/// What the audit side of the queue has done since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    pub queued: u64,
    pub written: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Store writes that failed (their records are retried).
    pub failed_writes: u64,
}

/// The event routes a queued record is matched against, and whom to wake when it is.
pub(crate) type Routing = (
    Arc<crate::events::routes::RouteTable>,
    Arc<tokio::sync::Notify>,
);

enum Item {
    Call(Pending),
    Touch(AccessTouch),
}

/// Items written so far, by kind, in queue order.
#[derive(Clone, Copy, Default)]
struct Written {
    calls: u64,
    touches: u64,
}

struct Shared {
    calls_queued: AtomicU64,
    touches_queued: AtomicU64,
    dropped: AtomicU64,
    failed_writes: AtomicU64,
    /// Ends a batch's gathering early (a `flush` waits).
    flush_now: Notify,
    last_drop_log: Mutex<Option<Instant>>,
}

pub(crate) struct ReadLog {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    account: String,
    capacity: usize,
    routing: Routing,
    days: Arc<AccessDays>,
    shared: Arc<Shared>,
    /// The queue and the writer's counts; the writer task starts on first use, inside
    /// the runtime, and owns the counts' sending side, so waiting on them ends if the
    /// task does.
    tx: OnceLock<(mpsc::Sender<Item>, watch::Receiver<Written>)>,
}

impl ReadLog {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        account: String,
        capacity: usize,
        routing: Routing,
        cache: Arc<ReadCache>,
    ) -> Self {
        Self {
            store,
            clock,
            account,
            routing,
            capacity: capacity.max(1),
            days: Arc::new(AccessDays::new(cache)),
            shared: Arc::new(Shared {
                calls_queued: AtomicU64::new(0),
                touches_queued: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                failed_writes: AtomicU64::new(0),
                flush_now: Notify::new(),
                last_drop_log: Mutex::new(None),
            }),
            tx: OnceLock::new(),
        }
    }

    /// Queues a finished call's record (`pending`: the call, its response summary or
    /// error).
    pub(crate) async fn record(&self, pending: Pending) {
        let droppable =
            pending.call.read_only || pending.error.as_ref().is_some_and(|e| e.code.is_auth());
        let tx = &self.queue().0;
        let item = Item::Call(pending);
        let sent = if droppable {
            match tx.try_send(item) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(item)) => {
                    tx.send_timeout(item, FULL_WAIT).await.is_ok()
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        } else {
            tx.send(item).await.is_ok()
        };
        if sent {
            self.shared.calls_queued.fetch_add(1, Ordering::AcqRel);
        } else {
            self.note_drop();
        }
    }

    fn note_drop(&self) {
        let total = self.shared.dropped.fetch_add(1, Ordering::AcqRel) + 1;
        let mut last = self
            .shared
            .last_drop_log
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                dropped_total = total,
                "audit queue full: read records dropped (the trail records how many)"
            );
        }
    }

    /// Queues "`arn`'s version `version_id` was read on `day`", unless it is pending.
    pub(crate) fn touch(&self, arn: &str, version_id: &str, day: Millis) {
        {
            let mut pending = self.days.lock();
            if let Some(t) = AccessDays::claim(&mut pending, arn, version_id, day) {
                // Sent and counted under the lock, so the count follows the queue's order.
                match self.queue().0.try_send(Item::Touch(t)) {
                    Ok(()) => {
                        self.shared.touches_queued.fetch_add(1, Ordering::AcqRel);
                    }
                    Err(e) => {
                        if let Item::Touch(t) = e.into_inner() {
                            AccessDays::forget(&mut pending, &t);
                        }
                        // Not noted in the cache either: the next read tries again.
                        tracing::debug!("read log full; the day is recorded on a later read");
                        return;
                    }
                }
            }
        }
        self.days.noted(arn, version_id, day);
    }

    /// Lays days not yet written over a record just read from the store.
    pub(crate) fn overlay(&self, record: &mut SecretRecord) {
        self.days.overlay(record);
    }

    pub(crate) fn stats(&self) -> AuditStats {
        let written = self.tx.get().map_or(0, |(_, w)| w.borrow().calls);
        AuditStats {
            queued: self.shared.calls_queued.load(Ordering::Acquire),
            written,
            dropped: self.shared.dropped.load(Ordering::Acquire),
            failed_writes: self.shared.failed_writes.load(Ordering::Acquire),
        }
    }

    /// Waits until every call queued before this is recorded.
    pub(crate) async fn flush_calls(&self) {
        let queued = self.shared.calls_queued.load(Ordering::Acquire);
        self.caught_up(|w| w.calls >= queued).await;
    }

    /// Waits until every day queued before this is written.
    pub(crate) async fn flush_touches(&self) {
        let queued = self.shared.touches_queued.load(Ordering::Acquire);
        self.caught_up(|w| w.touches >= queued).await;
    }

    /// Waits for the writer's counts to satisfy `done`, asking it to end its gathering
    /// early. Returns at once if nothing was ever queued or the writer task has ended.
    async fn caught_up(&self, done: impl Fn(&Written) -> bool) {
        let Some((_, written)) = self.tx.get() else {
            return;
        };
        let mut written = written.clone();
        if done(&written.borrow()) {
            return;
        }
        self.shared.flush_now.notify_one();
        let _ = written.wait_for(|w| done(w)).await;
    }

    fn queue(&self) -> &(mpsc::Sender<Item>, watch::Receiver<Written>) {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.capacity);
            let (written_tx, written) = watch::channel(Written::default());
            tokio::spawn(run(
                rx,
                Writer {
                    store: self.store.clone(),
                    clock: self.clock.clone(),
                    account: self.account.clone(),
                    shared: self.shared.clone(),
                    routing: self.routing.clone(),
                    days: self.days.clone(),
                },
                written_tx,
            ));
            (tx, written)
        })
    }
}

struct Writer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    account: String,
    shared: Arc<Shared>,
    routing: Routing,
    days: Arc<AccessDays>,
}

impl Writer {
    /// The trail's note of records dropped since the last note.
    fn drop_note(&self, count: u64, region: &str) -> AuditEntry {
        let mut data = serde_json::Map::new();
        data.insert("droppedRecords".into(), count.into());
        ServiceEvent {
            source: ARCA_AUDIT_SOURCE,
            name: "AuditRecordsDropped",
            region,
            time: self.clock.now_millis(),
            resource: None,
            request_id: None,
            data,
        }
        .entry(&self.account)
    }

    /// Writes one gathered batch; returns the days that were not written. Records and
    /// deliveries go with the first days and are retried until the store takes them (a
    /// record handed to the queue is only ever lost with the process); the other days go
    /// out at once beside them, each store call tried once.
    async fn write(
        &self,
        audit: Vec<AuditEntry>,
        deliveries: Vec<NewDelivery>,
        touches: &[AccessTouch],
    ) -> Vec<AccessTouch> {
        let mut chunks = touches.chunks(TOUCH_CHUNK);
        let first = Arc::new(ReadBatch {
            audit,
            deliveries,
            touches: chunks.next().map(<[_]>::to_vec).unwrap_or_default(),
        });
        let owed = !first.deliveries.is_empty();
        let must = owed || !first.audit.is_empty();
        let rest = chunks.map(|chunk| {
            let batch = Arc::new(ReadBatch {
                touches: chunk.to_vec(),
                ..ReadBatch::default()
            });
            async move {
                match self.store.append_reads(batch.clone()).await {
                    Ok(()) => Vec::new(),
                    Err(e) => {
                        tracing::warn!(error = %e, "recording access dates failed");
                        batch.touches.clone()
                    }
                }
            }
        });
        let head = async {
            let mut delay = Duration::from_millis(50);
            loop {
                match self.store.append_reads(first.clone()).await {
                    Ok(()) => {
                        if owed {
                            self.routing.1.notify_one();
                        }
                        return Vec::new();
                    }
                    Err(e) if must => {
                        self.shared.failed_writes.fetch_add(1, Ordering::AcqRel);
                        tracing::warn!(error = %e, "writing audit records failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "recording access dates failed");
                        return first.touches.clone();
                    }
                }
            }
        };
        let (head, rest) = tokio::join!(head, futures_util::future::join_all(rest));
        head.into_iter().chain(rest.into_iter().flatten()).collect()
    }
}

/// Gathers one batch into `items`: until its deadline (100 ms after its first call, a
/// second after its first day when it holds no call), a flush, or its size limits.
/// While a batch holds only days, arrivals are taken as they come (to see the first
/// call); once it holds a call, the rest wait in the queue until the deadline, so the
/// queue's capacity bounds what waits. Returns false once the queue is closed and
/// drained.
async fn gather(rx: &mut mpsc::Receiver<Item>, shared: &Shared, items: &mut Vec<Item>) -> bool {
    if rx.recv_many(items, CHUNK).await == 0 {
        return false;
    }
    let mut deadline = Instant::now() + DAYS_GATHER;
    let (mut seen, mut calls) = (0, 0);
    loop {
        calls += count_calls(&items[seen..]);
        seen = items.len();
        if calls >= MAX_CALLS || items.len() - calls >= MAX_TOUCHES {
            return true;
        }
        if calls > 0 {
            // The first call of the batch is among those just taken: only touches came
            // before it, so the deadline moves to 100 ms from now.
            deadline = deadline.min(Instant::now() + CALLS_GATHER);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => {}
                _ = shared.flush_now.notified() => {}
            }
            let (mut calls, mut touches) = (calls, items.len() - calls);
            while calls < MAX_CALLS && touches < MAX_TOUCHES {
                match rx.try_recv() {
                    Ok(item) => {
                        match item {
                            Item::Call(_) => calls += 1,
                            Item::Touch(_) => touches += 1,
                        }
                        items.push(item);
                    }
                    Err(_) => break,
                }
            }
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => return true,
            _ = shared.flush_now.notified() => return true,
            n = rx.recv_many(items, CHUNK) => if n == 0 { return true },
        }
    }
}

fn count_calls(items: &[Item]) -> usize {
    items.iter().filter(|i| matches!(i, Item::Call(_))).count()
}

async fn run(mut rx: mpsc::Receiver<Item>, w: Writer, written: watch::Sender<Written>) {
    let mut items = Vec::new();
    let mut noted_drops = 0u64;
    while gather(&mut rx, &w.shared, &mut items).await {
        let mut calls = Vec::new();
        let mut touches = Vec::new();
        for item in items.drain(..) {
            match item {
                Item::Call(p) => calls.push(p),
                Item::Touch(t) => touches.push(t),
            }
        }
        let n_calls = calls.len() as u64;
        let region = calls
            .last()
            .map(|q| q.call.region.clone())
            .unwrap_or_default();
        let (mut entries, deliveries) = if calls.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            // Rendering thousands of calls takes a millisecond or more: off the runtime's
            // workers, so requests in flight do not wait behind it.
            let account = w.account.clone();
            let routes = w.routing.0.clone();
            match tokio::task::spawn_blocking(move || {
                let entries = pack_all(&account, &calls, CHUNK, BATCH_SPAN_MS);
                // Refused writes (and, for rules that ask, reads) are events too: matched
                // one by one, their deliveries committed with the batch that records them.
                let routed: Vec<AuditEntry> = calls
                    .iter()
                    .filter(|p| routes.wants(p.call.read_only))
                    .map(|p| p.call.entry(&account, p.response.clone(), p.error.as_ref()))
                    .collect();
                let deliveries = routes.route(&account, &routed);
                (entries, deliveries)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "packing audit records failed");
                    (Vec::new(), Vec::new())
                }
            }
        };
        let dropped = w.shared.dropped.load(Ordering::Acquire);
        if dropped > noted_drops {
            entries.push(w.drop_note(dropped - noted_drops, &region));
            noted_drops = dropped;
        }
        let failed = w.write(entries, deliveries, &touches).await;
        w.days.written(&touches, &failed);
        written.send_modify(|x| {
            x.calls += n_calls;
            x.touches += touches.len() as u64;
        });
    }
}
