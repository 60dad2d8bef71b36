//! The sequencer: numbers the rows of the ordered logs (events, outbox, deliveries, audit)
//! after their transactions committed, and chains the audit records.
//!
//! Why not a sequence or a lock: a sequence hands out numbers in the order transactions
//! ask, not the order they commit, so a reader resuming after id 10 could miss an id 9
//! committed later by another node; a lock held until commit would serialize every write
//! of the cluster behind one fsync at a time. Instead a write inserts its rows unnumbered,
//! tagged with its transaction id. A pass (one at a time across the cluster, under an
//! advisory lock) numbers the rows whose transaction id is below the oldest transaction
//! still running (`pg_snapshot_xmin`): no transaction that could still commit can add a
//! row before them, so numbers are final and appear in increasing order, whichever node
//! wrote them. Within the pass, rows are numbered in (transaction id, insertion) order.
//!
//! Passes run after this node's writes (a task woken by them, at most one pass per
//! `MIN_GAP` so that a busy node's writes share passes), before every read of a log (so a
//! node reads its own writes), and every second (rows of a node that died after its commit
//! are numbered by the others). A woken pass that finds another node's pass running skips:
//! that pass, or the next, numbers this node's rows too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arca_store::{chain_hash, Result};
use deadpool_postgres::Pool;
use tokio::sync::{Mutex, Notify};

use crate::error::pg_store;
use crate::schema::SEQUENCE_LOCK;

/// Rows numbered per log per statement; a pass repeats until a log has none left.
const BATCH: i64 = 5_000;

/// How long a reader waits for transactions that were running when it began.
const CATCH_UP: Duration = Duration::from_secs(5);

/// How often a pass runs when no write woke it.
const IDLE_PASS: Duration = Duration::from_secs(1);

/// The shortest time between two woken passes: a pass costs about ten statements however
/// many rows it numbers.
const MIN_GAP: Duration = Duration::from_millis(10);

/// Whether a pass waits for another node's pass to end.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Yes,
    No,
}

pub(crate) struct Sequencer {
    pool: Pool,
    /// One pass at a time in this process (the advisory lock orders the cluster's).
    pass: Mutex<()>,
    dirty: AtomicBool,
    wake: Notify,
}

/// (table, number column, counter name).
const LOGS: &[(&str, &str, &str)] = &[
    ("events", "id", "events"),
    ("outbox", "id", "outbox"),
    ("deliveries", "seq", "deliveries"),
];

impl Sequencer {
    pub(crate) fn start(pool: Pool) -> Arc<Sequencer> {
        let s = Arc::new(Sequencer {
            pool,
            pass: Mutex::new(()),
            dirty: AtomicBool::new(false),
            wake: Notify::new(),
        });
        tokio::spawn(background(Arc::downgrade(&s)));
        s
    }

    /// A write added unnumbered rows: number them soon.
    pub(crate) fn poke(&self) {
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Numbers every row committed before this call began, waiting (up to `CATCH_UP`) for
    /// transactions still running then: what a reader of the logs must see. Rows of
    /// transactions that outlast the wait are numbered by a later pass.
    pub(crate) async fn catch_up(&self) -> Result<()> {
        let target: i64 = {
            let client = self.client().await?;
            client
                .query_one(
                    "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
                    &[],
                )
                .await
                .map_err(pg_store("read the transaction horizon"))?
                .get(0)
        };
        let started = std::time::Instant::now();
        loop {
            let (_, horizon) = self.run(Wait::Yes).await?;
            if horizon >= target || started.elapsed() > CATCH_UP {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool
            .get()
            .await
            .map_err(|e| arca_store::StoreError::Backend(format!("database pool: {e}")))
    }

    /// Numbers every row whose transaction has ended. Returns how many it numbered, and the
    /// horizon it numbered below (every transaction with a lower id had ended); with
    /// `Wait::No`, (0, 0) at once if another pass holds the cluster's lock.
    pub(crate) async fn run(&self, wait: Wait) -> Result<(u64, i64)> {
        let _one = self.pass.lock().await;
        self.dirty.store(false, Ordering::Release);
        let mut client = self.client().await?;
        let mut total = 0;
        loop {
            let tx = client
                .transaction()
                .await
                .map_err(pg_store("begin sequencing"))?;
            let locked: bool = tx
                .query_one(
                    match wait {
                        Wait::Yes => {
                            "SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1) IS NOT NULL"
                        }
                        Wait::No => {
                            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), $1)"
                        }
                    },
                    &[&SEQUENCE_LOCK],
                )
                .await
                .map_err(pg_store("lock for sequencing"))?
                .get(0);
            if !locked {
                return Ok((total, 0));
            }
            // Later statements see a horizon at least this high.
            let horizon: i64 = tx
                .query_one(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
                    &[],
                )
                .await
                .map_err(pg_store("read the transaction horizon"))?
                .get(0);
            let mut full = false;
            for &(table, col, counter) in LOGS {
                let n = number(&tx, table, col, counter).await?;
                full |= n == BATCH as u64;
                total += n;
            }
            let n = chain_audit(&tx).await?;
            full |= n == BATCH as u64;
            total += n;
            tx.commit().await.map_err(pg_store("commit sequencing"))?;
            if !full {
                return Ok((total, horizon));
            }
        }
    }
}

async fn background(me: Weak<Sequencer>) {
    loop {
        let Some(s) = me.upgrade() else { return };
        let woken = tokio::time::timeout(IDLE_PASS, s.wake.notified())
            .await
            .is_ok();
        if woken && !s.dirty.load(Ordering::Acquire) {
            continue;
        }
        match s.run(Wait::No).await {
            Ok((_, horizon)) => {
                if horizon == 0 {
                    // Skipped: the other node's pass may have begun before this node's
                    // rows committed, so try again soon.
                    s.poke();
                }
                drop(s);
                tokio::time::sleep(MIN_GAP).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sequencing the logs failed; retrying");
                drop(s);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Numbers one log's final rows after its counter; returns how many.
async fn number(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    col: &str,
    counter: &str,
) -> Result<u64> {
    let base: i64 = tx
        .query_one("SELECT value FROM counters WHERE name = $1", &[&counter])
        .await
        .map_err(pg_store("read a log counter"))?
        .get(0);
    let sql = format!(
        "WITH todo AS (SELECT row_id, $1::bigint + row_number() OVER (ORDER BY tx, row_id) AS n \
           FROM {table} WHERE {col} IS NULL AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
           ORDER BY tx, row_id LIMIT $2) \
         UPDATE {table} t SET {col} = todo.n FROM todo WHERE t.row_id = todo.row_id \
         RETURNING todo.n"
    );
    let stmt = tx
        .prepare_cached(&sql)
        .await
        .map_err(pg_store("prepare numbering"))?;
    let rows = tx
        .query(&stmt, &[&base, &BATCH])
        .await
        .map_err(pg_store("number log rows"))?;
    let top = rows.iter().map(|r| r.get::<_, i64>(0)).max();
    if let Some(top) = top {
        tx.execute(
            "UPDATE counters SET value = $2 WHERE name = $1",
            &[&counter, &top],
        )
        .await
        .map_err(pg_store("advance a log counter"))?;
    }
    Ok(rows.len() as u64)
}

/// Numbers and chains the final audit records.
async fn chain_audit(tx: &deadpool_postgres::Transaction<'_>) -> Result<u64> {
    let head = tx
        .query_one("SELECT value, hash FROM counters WHERE name = 'audit'", &[])
        .await
        .map_err(pg_store("read the audit head"))?;
    let mut seq: i64 = head.get(0);
    let mut prev: Vec<u8> = head.get(1);
    let stmt = tx
        .prepare_cached(
            "SELECT row_id, time, event_id, event_type, event_name, region, read_only, \
             access_key_id, resource, error_code, batch_size, detail FROM audit \
             WHERE seq IS NULL AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY tx, row_id LIMIT $1",
        )
        .await
        .map_err(pg_store("prepare audit chaining"))?;
    let rows = tx
        .query(&stmt, &[&BATCH])
        .await
        .map_err(pg_store("read unchained audit records"))?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (mut ids, mut seqs, mut prevs, mut hashes) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    for r in &rows {
        let e = crate::read::audit_entry(r);
        seq += 1;
        let hash = chain_hash(&prev, seq, &e).to_vec();
        ids.push(r.get::<_, i64>(0));
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut prev, hash.clone()));
        hashes.push(hash);
    }
    tx.execute(
        "UPDATE audit a SET seq = u.seq, prev_hash = u.prev, hash = u.hash \
         FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS u(row_id, seq, prev, hash) \
         WHERE a.row_id = u.row_id",
        &[&ids, &seqs, &prevs, &hashes],
    )
    .await
    .map_err(pg_store("chain audit records"))?;
    tx.execute(
        "UPDATE counters SET value = $1, hash = $2 WHERE name = 'audit'",
        &[&seq, &prev],
    )
    .await
    .map_err(pg_store("advance the audit head"))?;
    Ok(rows.len() as u64)
}
