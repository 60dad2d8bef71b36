//! The batched path for records no write carries: reads and refused calls. A request
//! hands its finished `Call` to a bounded queue and goes on; one task renders what
//! gathered over a short window and appends it in one store write (one commit, one
//! chain extension), so a read never waits for the disk.
//!
//! When the queue is full (the store is slower than the calls for a while): a refused
//! call that could have written waits for room, so its record is never lost; a read's
//! record, or a refused authentication's, waits up to `FULL_WAIT` and is then dropped.
//! Drops are counted (`AuditStats::dropped`), logged (at most every 10 s), and written
//! into the trail itself as an `AuditRecordsDropped` service event with the count, so a
//! reader of the trail sees where it has a hole. A write's own record never takes this
//! path: it commits with the write.

use super::batch::{pack_all, Pending};
use super::{Call, ServiceEvent};
use arca_store::{AuditEntry, NewDelivery, Store};
use arca_types::time::{Clock, Millis};
use arca_types::ApiError;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// Records queued at most (about 1 KiB each while queued).
pub const DEFAULT_QUEUE: usize = 65_536;
/// How long a batch gathers after its first record.
const GATHER: Duration = Duration::from_millis(100);
/// How long a droppable record waits for room in a full queue.
const FULL_WAIT: Duration = Duration::from_millis(20);
/// The most a batch's calls' times spread (see `batch`): queries widen time bounds by it.
pub const BATCH_SPAN_MS: Millis = 1_000;
/// Calls per batch entry (a batch's row stays well under a megabyte).
const CHUNK: usize = 4_096;
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// The source Arca's own bookkeeping events name (not an AWS service).
pub const ARCA_AUDIT_SOURCE: &str = "audit.arca.local";

/// What the queue has done since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    pub queued: u64,
    pub written: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Store writes that failed (their records are retried).
    pub failed_writes: u64,
}

type Queued = Pending;

struct Shared {
    queued: AtomicU64,
    dropped: AtomicU64,
    failed_writes: AtomicU64,
    flush_now: Notify,
    last_drop_log: Mutex<Option<Instant>>,
}

/// The event routes a queued record is matched against, and whom to wake when it is.
pub(crate) type Routing = (
    Arc<crate::events::routes::RouteTable>,
    Arc<tokio::sync::Notify>,
);

pub(crate) struct AuditRecorder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    account: String,
    capacity: usize,
    routing: Routing,
    shared: Arc<Shared>,
    tx: OnceLock<(mpsc::Sender<Queued>, watch::Receiver<u64>)>,
}

impl AuditRecorder {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        account: String,
        capacity: usize,
        routing: Routing,
    ) -> Self {
        Self {
            store,
            clock,
            account,
            routing,
            capacity: capacity.max(1),
            shared: Arc::new(Shared {
                queued: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                failed_writes: AtomicU64::new(0),
                flush_now: Notify::new(),
                last_drop_log: Mutex::new(None),
            }),
            tx: OnceLock::new(),
        }
    }

    /// Queues `call`'s record, answered with `response` or `error`.
    pub(crate) async fn record(
        &self,
        call: Arc<Call>,
        response: Option<Value>,
        error: Option<ApiError>,
    ) {
        let droppable = call.read_only || error.as_ref().is_some_and(|e| e.code.is_auth());
        let item = Queued {
            call,
            response,
            error,
        };
        let tx = &self.queue().0;
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
            self.shared.queued.fetch_add(1, Ordering::AcqRel);
        } else {
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
    }

    pub(crate) fn stats(&self) -> AuditStats {
        let written = self.tx.get().map_or(0, |(_, w)| *w.borrow());
        AuditStats {
            queued: self.shared.queued.load(Ordering::Acquire),
            written,
            dropped: self.shared.dropped.load(Ordering::Acquire),
            failed_writes: self.shared.failed_writes.load(Ordering::Acquire),
        }
    }

    /// Waits until every record queued before the call is written.
    pub(crate) async fn flush(&self) {
        // Nothing was ever queued if the queue does not exist yet.
        if let Some((_, written)) = self.tx.get() {
            let queued = self.shared.queued.load(Ordering::Acquire);
            crate::caught_up::caught_up(written, queued, &self.shared.flush_now).await;
        }
    }

    fn queue(&self) -> &(mpsc::Sender<Queued>, watch::Receiver<u64>) {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.capacity);
            let (written_tx, written) = watch::channel(0);
            tokio::spawn(run(
                rx,
                Writer {
                    store: self.store.clone(),
                    clock: self.clock.clone(),
                    account: self.account.clone(),
                    shared: self.shared.clone(),
                    routing: self.routing.clone(),
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

    /// Appends `entries`, retrying until the store takes them (a record handed to the
    /// queue is only ever lost with the process).
    async fn append(&self, entries: Vec<AuditEntry>, deliveries: Vec<NewDelivery>) {
        let mut delay = Duration::from_millis(50);
        let owed = !deliveries.is_empty();
        loop {
            match self
                .store
                .append_audit(entries.clone(), deliveries.clone())
                .await
            {
                Ok(()) => {
                    if owed {
                        self.routing.1.notify_one();
                    }
                    return;
                }
                Err(e) => {
                    self.shared.failed_writes.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(error = %e, "writing audit records failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Queued>, w: Writer, written: watch::Sender<u64>) {
    let mut batch = Vec::new();
    let mut noted_drops = 0u64;
    while rx.recv_many(&mut batch, CHUNK).await > 0 {
        tokio::select! {
            _ = tokio::time::sleep(GATHER) => {}
            _ = w.shared.flush_now.notified() => {}
        }
        while batch.len() < CHUNK * 4 {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let region = batch
            .last()
            .map(|q| q.call.region.clone())
            .unwrap_or_default();
        // Rendering thousands of calls takes a millisecond or more: off the runtime's
        // workers, so requests in flight do not wait behind it.
        let account = w.account.clone();
        let pending = std::mem::take(&mut batch);
        let routes = w.routing.0.clone();
        let (mut entries, deliveries, pending) = match tokio::task::spawn_blocking(move || {
            let entries = pack_all(&account, &pending, CHUNK, BATCH_SPAN_MS);
            // Refused writes (and, for rules that ask, reads) are events too: matched
            // one by one, their deliveries committed with the batch that records them.
            let routed: Vec<AuditEntry> = pending
                .iter()
                .filter(|p| routes.wants(p.call.read_only))
                .map(|p| p.call.entry(&account, p.response.clone(), p.error.as_ref()))
                .collect();
            let deliveries = routes.route(&account, &routed);
            (entries, deliveries, pending)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "packing audit records failed");
                continue;
            }
        };
        batch = pending;
        batch.clear();
        let dropped = w.shared.dropped.load(Ordering::Acquire);
        if dropped > noted_drops {
            entries.push(w.drop_note(dropped - noted_drops, &region));
            noted_drops = dropped;
        }
        w.append(entries, deliveries).await;
        written.send_modify(|x| *x += n);
    }
}
