//! The SQLite backend: the embedded default `Store`.
//!
//! Data flow: reads run on the calling task against a pooled reader connection; writes
//! are closures sent to one writer thread that owns the only writing connection and
//! commits them in groups (one fsync for every write that queued up meanwhile). SQLite in
//! WAL mode lets the readers proceed while the writer commits.
//!
//! Module map: `schema` (pragmas, migrations), `read` (record loading, listing),
//! `write` (one function per logical write), `error` (log-safe error text).

mod error;
mod read;
mod schema;
mod write;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use arca_types::time::Millis;
use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::oneshot;

use arca_store::{
    AccessKeyRecord, AuditEntry, AuditQuery, AuditRecord, DeliveryOutcome, DeliveryRecord,
    DeliveryState, Effects, EncryptionKeyRecord, EventQuery, EventRecord, Fence, IamKind,
    IamRecord, LeaseGrant, ListQuery, NewVersion, OutboxEntry, PurgeDue, ReadBatch, Result,
    RotationFunctionRecord, RuleRecord, SealedValue, SecretChange, SecretPredicate, SecretRecord,
    Store, StoreError, TargetRecord,
};
use error::sql_err;
use schema::Role;

/// Most writes committed by one transaction. Bounds the latency the first write of a
/// group waits for the others, and the work lost to a failing commit.
const MAX_GROUP: usize = 256;

type WriteJob = Box<dyn FnOnce(&Connection) -> Result<()> + Send>;

struct WriteRequest {
    job: WriteJob,
    reply: oneshot::Sender<Result<()>>,
}

/// The SQLite `Store`. Cheap to share behind an `Arc`; dropping it drains queued writes,
/// stops the writer thread and closes every connection.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<mpsc::Sender<WriteRequest>>,
    writer_thread: Option<JoinHandle<()>>,
    /// Dropping it stops the checkpointer.
    checkpoint_stop: Option<mpsc::Sender<()>>,
    checkpoint_thread: Option<JoinHandle<()>>,
    readers: ReaderPool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Brings the database at `path` (created if missing) to this build's schema without
/// serving it (`arca migrate`); returns the schema version before and after. Refuses a
/// database whose schema is newer than this build's.
pub fn migrate(path: &Path) -> Result<(i32, i32)> {
    let mut conn = schema::open_connection(path, Role::Writer)?;
    schema::migrate(&mut conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it to the newest
    /// schema. There is no in-memory variant: tests use a temporary file so WAL, the
    /// separate reader connections and fsync behave as in production.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut conn = schema::open_connection(path, Role::Writer)?;
        schema::migrate(&mut conn)?;
        // Checkpoints copy the WAL into the main file and fsync it: done by the writer after
        // a commit they stall every write queued behind it (measured: a sixth of the
        // writer's time under PutSecretValue load), so a thread of their own runs them; the
        // writer only finishes the rare one that must restart a long WAL (`restart_wal`).
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(sql_err("set writer pragmas"))?;
        let checkpoint_conn = schema::open_connection(path, Role::Writer)?;
        let readers = ReaderPool::new(path.to_owned());
        // Fail now, not on the first request, if readers cannot open the file.
        drop(readers.get()?);
        let (tx, rx) = mpsc::channel();
        let restart_wanted = Arc::new(AtomicBool::new(false));
        let wanted = restart_wanted.clone();
        let thread = std::thread::Builder::new()
            .name("arca-sqlite-writer".to_owned())
            .spawn(move || writer_loop(conn, rx, wanted))
            .map_err(|e| StoreError::Backend(format!("spawn writer thread: {e}")))?;
        let (stop_tx, stop_rx) = mpsc::channel();
        let checkpoint_thread = std::thread::Builder::new()
            .name("arca-sqlite-checkpoint".to_owned())
            .spawn(move || checkpoint_loop(checkpoint_conn, stop_rx, restart_wanted))
            .map_err(|e| StoreError::Backend(format!("spawn checkpoint thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Some(tx),
            writer_thread: Some(thread),
            checkpoint_stop: Some(stop_tx),
            checkpoint_thread: Some(checkpoint_thread),
            readers,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for queued writes, then closes every connection (the last close checkpoints
    /// the WAL into the main file). Same as dropping, but explicit at shutdown.
    pub fn close(self) {
        drop(self);
    }

    /// Runs `job` on the writer thread and waits until its group is durably committed.
    ///
    /// Why a dedicated thread rather than `spawn_blocking` per write: SQLite admits one
    /// writer at a time anyway, the commit's fsync must not stall a runtime worker, and a
    /// single consumer of a queue can commit everything queued behind it in one
    /// transaction (group commit), which is what makes thousands of durable writes per
    /// second possible on one disk. If the caller stops waiting, the write may still
    /// apply, as with any database.
    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // The job's value travels apart from the commit outcome and is handed out only
        // once the group committed: an id from a rolled-back insert is never returned.
        let (value_tx, mut value_rx) = oneshot::channel();
        let job = move |c: &Connection| {
            let _ = value_tx.send(job(c)?);
            Ok(())
        };
        let (reply, done) = oneshot::channel();
        let stopped = || StoreError::Backend("sqlite writer thread has stopped".to_owned());
        self.writer
            .as_ref()
            .ok_or_else(stopped)?
            .send(WriteRequest {
                job: Box::new(job),
                reply,
            })
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())??;
        value_rx
            .try_recv()
            .map_err(|_| StoreError::Backend("write committed without a result".to_owned()))
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and exit.
        self.writer.take();
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
        self.checkpoint_stop.take();
        if let Some(t) = self.checkpoint_thread.take() {
            let _ = t.join();
        }
    }
}

/// How often the checkpointer copies committed WAL frames into the main file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Past this many WAL frames (64 MiB at 4 KiB pages) a checkpoint also restarts the WAL.
/// Under writes without a pause, PASSIVE checkpoints never catch up with the writer, so the
/// writer never gets to restart the WAL from its start, and it grew without bound (measured:
/// 16 GB of database and WAL after filling 1,000,000 secrets, against 2 GB before).
const WAL_RESET_FRAMES: i64 = 16_384;

/// PASSIVE checkpoints never block the writer or readers; they copy what no reader still
/// needs, and the writer restarts the WAL from its start once all of it was copied. When
/// that does not happen (the WAL is past `WAL_RESET_FRAMES`), the checkpointer asks the
/// writer to restart it (`restart_wanted`).
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, restart_wanted: Arc<AtomicBool>) {
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Stopped (the store is closing): its last connection checkpoints on close.
            _ => return,
        }
        match passive_checkpoint(&conn) {
            Ok(frames) if frames > WAL_RESET_FRAMES => {
                restart_wanted.store(true, Ordering::Release)
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// One PASSIVE checkpoint. Returns the WAL's frames.
fn passive_checkpoint(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
        .map_err(sql_err("checkpoint"))
}

/// A RESTART checkpoint, run by the writer between two commits: it copies what the last
/// PASSIVE one left, waits (busy handler) for readers still on the WAL, and makes the next
/// commit start the WAL over from its beginning, in a file cut to `journal_size_limit`.
/// In the writer, not the checkpointer: a checkpointer that must first get the write lock
/// rarely wins it from a writer that takes it again the moment it commits, and under a
/// steady write load the WAL grew to hundreds of megabytes. Not TRUNCATE: an emptied WAL
/// file grows again block by block and each commit's sync also writes the new size
/// (measured, PutSecretValue at c16: 6,500 writes/s with TRUNCATE, 8,000 with RESTART).
/// Returns false if it could not finish (SQLite reports that as "busy", not as an error:
/// e.g. the checkpointer held the checkpoint lock, which is not waited for).
fn restart_wal(conn: &Connection) -> Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
        .map(|busy| busy == 0)
        .map_err(sql_err("checkpoint and restart the WAL"))
}

// ----- writer -----

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<WriteRequest>,
    restart_wanted: Arc<AtomicBool>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        commit_group(&conn, group);
        if restart_wanted.swap(false, Ordering::AcqRel) {
            match restart_wal(&conn) {
                Ok(true) => {}
                Ok(false) => {
                    // Try again after the next commit.
                    tracing::debug!("WAL restart busy; retrying");
                    restart_wanted.store(true, Ordering::Release);
                }
                Err(e) => tracing::warn!(error = %e, "WAL restart failed"),
            }
        }
    }
}

/// Commits a group of writes in one transaction, each in its own savepoint: a write that
/// fails is rolled back alone and reports its own error; the others commit together and
/// are acknowledged only after COMMIT returned (the WAL is synced, see `schema`).
fn commit_group(conn: &Connection, group: Vec<WriteRequest>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        fail_all(
            conn,
            group.into_iter().map(|r| r.reply),
            &sql_err("begin write")(e).to_string(),
        );
        return;
    }
    let mut outcomes = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    while let Some(req) = jobs.next() {
        match run_in_savepoint(conn, req.job) {
            Ok(result) => outcomes.push((req.reply, result)),
            Err(broken) => {
                // The transaction itself is unusable: nothing in it may be acknowledged.
                let replies = outcomes
                    .into_iter()
                    .map(|o| o.0)
                    .chain(std::iter::once(req.reply))
                    .chain(jobs.map(|r| r.reply));
                fail_all(conn, replies, &broken);
                return;
            }
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for (reply, result) in outcomes {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let msg = sql_err("commit")(e).to_string();
            rollback(conn);
            for (reply, result) in outcomes {
                // A write that failed on its own keeps its own error.
                let _ = reply.send(result.and(Err(StoreError::Backend(msg.clone()))));
            }
        }
    }
}

/// Ok(the job's result), or Err if the savepoint machinery failed (transaction broken).
fn run_in_savepoint(conn: &Connection, job: WriteJob) -> std::result::Result<Result<()>, String> {
    let exec = |sql: &str, what: &'static str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(|e| sql_err(what)(e).to_string())
    };
    exec("SAVEPOINT write_job", "open savepoint")?;
    // A panic must not kill the only writer (every later write would fail); it is
    // reported as a backend error and its partial work rolled back.
    let result = catch_unwind(AssertUnwindSafe(|| job(conn)))
        .unwrap_or_else(|_| Err(StoreError::Backend("write panicked".to_owned())));
    if result.is_err() {
        exec("ROLLBACK TO write_job", "roll back savepoint")?;
    }
    exec("RELEASE write_job", "release savepoint")?;
    Ok(result)
}

fn fail_all(
    conn: &Connection,
    replies: impl Iterator<Item = oneshot::Sender<Result<()>>>,
    msg: &str,
) {
    rollback(conn);
    for reply in replies {
        let _ = reply.send(Err(StoreError::Backend(msg.to_owned())));
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        // Nothing more can be done if this fails too; the next BEGIN will report it.
        let _ = conn.execute_batch("ROLLBACK");
    }
}

// ----- readers -----

/// Idle reader connections. A request takes one (opening a new one if none is idle, so
/// a read never waits for another read) and returns it afterwards; at most `max_idle`
/// are kept.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl ReaderPool {
    fn new(path: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ReaderPool {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle: cores * 2,
        }
    }

    fn get(&self) -> Result<PooledReader<'_>> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => schema::open_connection(&self.path, Role::Reader)?,
        };
        Ok(PooledReader {
            pool: self,
            conn: Some(conn),
        })
    }
}

struct PooledReader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl std::ops::Deref for PooledReader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Only `drop` takes the connection out.
        self.conn
            .as_ref()
            .expect("pooled connection present until drop")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            // One left inside a transaction (a bug, or a panic mid-read) is closed instead.
            if !c.is_autocommit() {
                return;
            }
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.pool.max_idle {
                idle.push(c);
            }
        }
    }
}

// ----- the trait -----

// Reads run inline on the calling task: they are index lookups served from the page
// cache or the memory map in microseconds, less than a `spawn_blocking` hand-off costs,
// and `list_secrets` borrows a predicate that could not move to another thread anyway.
// Writes go to the writer thread (see `SqliteStore::write`), cloning their inputs.
#[async_trait]
impl Store for SqliteStore {
    async fn find_by_name(&self, region: &str, name: &str) -> Result<Option<SecretRecord>> {
        let conn = self.readers.get()?;
        read::find_by_name(&conn, region, name)
    }

    async fn find_by_arn(&self, region: &str, arn: &str) -> Result<Option<SecretRecord>> {
        let conn = self.readers.get()?;
        read::find_by_arn(&conn, region, arn)
    }

    async fn create_secret_with(
        &self,
        secret: &SecretRecord,
        versions: &[NewVersion],
        effects: &Effects,
    ) -> Result<()> {
        let secret = secret.clone();
        let versions = versions.to_vec();
        let effects = effects.clone();
        self.write(move |c| write::create_secret(c, &secret, &versions, &effects))
            .await
    }

    async fn update_secret(&self, change: &SecretChange) -> Result<()> {
        let change = change.clone();
        self.write(move |c| write::update_secret(c, &change)).await
    }

    async fn delete_secret(&self, region: &str, arn: &str, effects: &Effects) -> Result<()> {
        let (region, arn) = (region.to_owned(), arn.to_owned());
        let effects = effects.clone();
        self.write(move |c| write::delete_secret(c, &region, &arn, &effects))
            .await
    }

    async fn get_sealed_value(&self, arn: &str, version_id: &str) -> Result<Option<SealedValue>> {
        let conn = self.readers.get()?;
        read::sealed_value(&conn, arn, version_id)
    }

    async fn list_secrets(
        &self,
        region: &str,
        query: &ListQuery,
        pred: SecretPredicate<'_>,
    ) -> Result<Vec<SecretRecord>> {
        let conn = self.readers.get()?;
        read::list(&conn, region, query, pred)
    }

    async fn due_for_purge(&self, now: Millis, limit: usize) -> Result<Vec<PurgeDue>> {
        let conn = self.readers.get()?;
        read::due_for_purge(&conn, now, limit)
    }

    async fn purge_secret(
        &self,
        region: &str,
        arn: &str,
        purge_at: Millis,
        effects: &Effects,
    ) -> Result<bool> {
        let (region, arn) = (region.to_owned(), arn.to_owned());
        let effects = effects.clone();
        self.write(move |c| write::purge_secret(c, &region, &arn, purge_at, &effects))
            .await
    }

    async fn due_for_rotation(&self, now: Millis, limit: usize) -> Result<Vec<(String, String)>> {
        let conn = self.readers.get()?;
        read::due_for_rotation(&conn, now, limit)
    }

    async fn append_event(&self, event: &EventRecord) -> Result<i64> {
        let event = event.clone();
        self.write(move |c| write::append_event(c, &event)).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>> {
        let conn = self.readers.get()?;
        read::events(&conn, query)
    }

    async fn append_reads(&self, batch: Arc<ReadBatch>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(move |c| {
            write::append_audit(c, &batch.audit)?;
            write::append_deliveries(c, &batch.deliveries)?;
            batch
                .touches
                .iter()
                .try_for_each(|t| write::touch_accessed(c, &t.arn, &t.version_id, t.day))
        })
        .await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let conn = self.readers.get()?;
        read::audit(&conn, query)
    }

    async fn due_outbox(&self, now: Millis, limit: usize) -> Result<Vec<OutboxEntry>> {
        let conn = self.readers.get()?;
        read::due_outbox(&conn, now, limit)
    }

    async fn outbox_for(&self, arn: &str) -> Result<Vec<OutboxEntry>> {
        let conn = self.readers.get()?;
        read::outbox_for(&conn, arn)
    }

    async fn outbox_len(&self) -> Result<u64> {
        let conn = self.readers.get()?;
        read::outbox_len(&conn)
    }

    async fn complete_outbox(&self, ids: &[i64], fence: Option<&Fence>) -> Result<()> {
        let ids = ids.to_vec();
        let fence = fence.cloned();
        self.write(move |c| write::complete_outbox(c, &ids, fence.as_ref()))
            .await
    }

    async fn defer_outbox(
        &self,
        ids: &[i64],
        error: &str,
        next_attempt_at: Millis,
        fence: Option<&Fence>,
    ) -> Result<()> {
        let ids = ids.to_vec();
        let error = error.to_owned();
        let fence = fence.cloned();
        self.write(move |c| write::defer_outbox(c, &ids, &error, next_attempt_at, fence.as_ref()))
            .await
    }

    async fn put_rule(&self, rule: &RuleRecord, audit: Vec<AuditEntry>) -> Result<()> {
        let rule = rule.clone();
        self.write(move |c| {
            write::put_rule(c, &rule)?;
            write::append_audit(c, &audit)
        })
        .await
    }

    async fn get_rule(&self, region: &str, name: &str) -> Result<Option<RuleRecord>> {
        let conn = self.readers.get()?;
        Ok(read::rules(&conn, Some((region, name)))?.pop())
    }

    async fn list_rules(&self) -> Result<Vec<RuleRecord>> {
        let conn = self.readers.get()?;
        read::rules(&conn, None)
    }

    async fn delete_rule(&self, region: &str, name: &str, audit: Vec<AuditEntry>) -> Result<bool> {
        let (region, name) = (region.to_owned(), name.to_owned());
        self.write(move |c| {
            let existed = write::delete_rule(c, &region, &name)?;
            write::append_audit(c, &audit)?;
            Ok(existed)
        })
        .await
    }

    async fn put_targets(&self, targets: &[TargetRecord], audit: Vec<AuditEntry>) -> Result<()> {
        let targets = targets.to_vec();
        self.write(move |c| {
            write::put_targets(c, &targets)?;
            write::append_audit(c, &audit)
        })
        .await
    }

    async fn remove_targets(
        &self,
        region: &str,
        rule: &str,
        ids: &[String],
        audit: Vec<AuditEntry>,
    ) -> Result<()> {
        let (region, rule, ids) = (region.to_owned(), rule.to_owned(), ids.to_vec());
        self.write(move |c| {
            write::remove_targets(c, &region, &rule, &ids)?;
            write::append_audit(c, &audit)
        })
        .await
    }

    async fn list_targets(&self) -> Result<Vec<TargetRecord>> {
        let conn = self.readers.get()?;
        read::targets(&conn)
    }

    async fn due_deliveries(&self, now: Millis, limit: usize) -> Result<Vec<DeliveryRecord>> {
        let conn = self.readers.get()?;
        read::due_deliveries(&conn, now, limit)
    }

    async fn finish_delivery(
        &self,
        seq: i64,
        outcome: &DeliveryOutcome,
        audit: Vec<AuditEntry>,
        fence: Option<&Fence>,
    ) -> Result<()> {
        let outcome = outcome.clone();
        let fence = fence.cloned();
        self.write(move |c| write::finish_delivery(c, seq, &outcome, &audit, fence.as_ref()))
            .await
    }

    async fn list_deliveries(
        &self,
        state: DeliveryState,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>> {
        let conn = self.readers.get()?;
        read::deliveries(&conn, state, after_seq, limit)
    }

    async fn replay_delivery(&self, seq: i64, now: Millis) -> Result<bool> {
        self.write(move |c| write::replay_delivery(c, seq, now))
            .await
    }

    async fn put_rotation_function(&self, f: &RotationFunctionRecord) -> Result<()> {
        let f = f.clone();
        self.write(move |c| write::put_rotation_function(c, &f))
            .await
    }

    async fn list_rotation_functions(&self) -> Result<Vec<RotationFunctionRecord>> {
        let conn = self.readers.get()?;
        read::rotation_functions(&conn)
    }

    async fn delete_rotation_function(&self, arn: &str) -> Result<()> {
        let arn = arn.to_owned();
        self.write(move |c| write::delete_rotation_function(c, &arn))
            .await
    }

    async fn put_sync_job(&self, job: &arca_store::SyncJobRecord) -> Result<()> {
        let job = job.clone();
        self.write(move |c| write::put_sync_job(c, &job)).await
    }

    async fn list_sync_jobs(&self) -> Result<Vec<arca_store::SyncJobRecord>> {
        let conn = self.readers.get()?;
        read::sync_jobs(&conn)
    }

    async fn delete_sync_job(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| write::delete_sync_job(c, &name)).await
    }

    async fn put_access_key(&self, key: &AccessKeyRecord) -> Result<()> {
        let key = key.clone();
        self.write(move |c| write::put_access_key(c, &key)).await
    }

    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>> {
        let conn = self.readers.get()?;
        read::access_key(&conn, access_key_id)
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        let conn = self.readers.get()?;
        read::access_keys(&conn)
    }

    async fn delete_access_key(&self, access_key_id: &str) -> Result<bool> {
        let id = access_key_id.to_owned();
        self.write(move |c| write::delete_access_key(c, &id)).await
    }

    async fn put_iam(
        &self,
        rec: &IamRecord,
        replaces: Option<arca_types::time::Millis>,
    ) -> Result<()> {
        let rec = rec.clone();
        self.write(move |c| write::put_iam(c, &rec, replaces)).await
    }

    async fn delete_iam(&self, account: &str, kind: IamKind, name: &str) -> Result<bool> {
        let (account, name) = (account.to_owned(), name.to_owned());
        self.write(move |c| write::delete_iam(c, &account, kind, &name))
            .await
    }

    async fn list_iam(&self) -> Result<Vec<IamRecord>> {
        let conn = self.readers.get()?;
        read::iam(&conn)
    }

    async fn put_encryption_key(&self, key: &EncryptionKeyRecord) -> Result<()> {
        let key = key.clone();
        self.write(move |c| write::put_encryption_key(c, &key))
            .await
    }

    async fn list_encryption_keys(&self) -> Result<Vec<EncryptionKeyRecord>> {
        let conn = self.readers.get()?;
        read::encryption_keys(&conn)
    }

    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<LeaseGrant>> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |c| write::acquire_lease(c, &job, &holder, ttl_ms))
            .await
    }

    async fn release_lease(&self, fence: &Fence) -> Result<()> {
        let fence = fence.clone();
        self.write(move |c| write::release_lease(c, &fence)).await
    }

    async fn lease_holds(&self, fence: &Fence) -> Result<bool> {
        let conn = self.readers.get()?;
        match write::check_fence(&conn, Some(fence)) {
            Ok(()) => Ok(true),
            Err(StoreError::LeaseLost) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn wipe_secrets(&self) -> Result<()> {
        self.write(write::wipe_secrets).await
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;

    #[test]
    fn a_long_wal_is_restarted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wal.db");
        let writer = schema::open_connection(&path, Role::Writer).expect("writer");
        writer
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0;
                 PRAGMA journal_size_limit = 65536;
                 CREATE TABLE t (x BLOB);",
            )
            .expect("setup");
        let insert = || {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(8192))", [])
                .expect("insert");
        };
        for _ in 0..50 {
            insert();
        }
        let wal = dir.path().join("wal.db-wal");
        let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert!(size() > 300_000, "the WAL holds the writes");
        let checkpointer = schema::open_connection(&path, Role::Writer).expect("checkpointer");
        assert!(passive_checkpoint(&checkpointer).expect("passive") > 50);
        // The writer's restart: the next write starts the WAL over, in a file cut to the
        // size limit.
        assert!(restart_wal(&writer).expect("restart"), "restart completed");
        insert();
        assert!(size() <= 65_536, "WAL of {} bytes", size());
        let n: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 51);
    }
}
