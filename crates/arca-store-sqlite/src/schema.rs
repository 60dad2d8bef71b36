//! Connection setup (pragmas) and schema migrations for the SQLite backend.
//! Migrations are SQL files under `migrations/`, embedded at build time and applied
//! in order; the applied count is kept in `PRAGMA user_version`.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::error::sql_err;
use arca_store::{Result, StoreError};

/// (version, SQL). A migration's version is the `user_version` after it is applied.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/001_initial.sql")),
    (2, include_str!("../migrations/002_rotation_events.sql")),
    (3, include_str!("../migrations/003_labelled_versions.sql")),
    (4, include_str!("../migrations/004_replication.sql")),
    (5, include_str!("../migrations/005_audit.sql")),
    (6, include_str!("../migrations/006_rules.sql")),
    (7, include_str!("../migrations/007_sync_jobs.sql")),
    (8, include_str!("../migrations/008_leases.sql")),
    (9, include_str!("../migrations/009_iam.sql")),
    (10, include_str!("../migrations/010_key_policies.sql")),
];

/// How long a connection waits on a lock held by another connection (another process
/// opening the same file, or a checkpoint) before reporting `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a connection waiting on a lock tries again.
const BUSY_STEP: Duration = Duration::from_micros(250);

/// The busy handler: waits for a lock in short, even steps, up to `BUSY_TIMEOUT`.
/// SQLite's own `busy_timeout` sleeps in steps that grow to 100 ms, so a writer held up for
/// a few milliseconds by a WAL reset slept on for tens of milliseconds after the lock was
/// free, and the checkpointer, holding the write lock while it waited for readers, did the
/// same: PutSecretValue stalled for up to half a second (max latency, c16).
fn busy_wait(attempt: i32) -> bool {
    thread_local! {
        /// When this thread's current wait began (SQLite calls with attempt 0 first).
        static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    let since = WAITING_SINCE.with(|w| match w.get() {
        Some(t) if attempt > 0 => t,
        _ => {
            w.set(Some(now));
            now
        }
    });
    if now.duration_since(since) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_STEP);
    true
}

/// Prepared statements kept per connection. List queries come in a few dozen shapes
/// (sort column x direction x cursor x filters), so the default of 16 would thrash.
const STATEMENT_CACHE: usize = 128;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Writer,
    Reader,
}

/// Opens one connection to `path` with the pragmas every connection needs.
pub(super) fn open_connection(path: &Path, role: Role) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(sql_err("open database"))?;
    conn.busy_handler(Some(busy_wait))
        .map_err(sql_err("set busy handler"))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // WAL: readers never block the writer nor each other, and a commit is one sequential
    // append to the log instead of rewriting pages in place.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_err("set journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "database refused WAL journal mode (got {mode})"
        )));
    }
    // FULL, not NORMAL: with NORMAL in WAL mode the log is only synced at checkpoints, so
    // the last transactions acknowledged before a power failure (or OS crash) can be lost.
    // An acknowledged PutSecretValue must survive that, so every commit syncs the WAL.
    // Group commit in the writer amortizes that fsync over concurrent writes.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(sql_err("set pragmas"))?;
    if role == Role::Reader {
        // Readers keep a page cache of their own and refuse writes so a bug cannot bypass
        // the writer. No mmap: measured under concurrent writes, every read transaction
        // re-mapped the growing file (munmap and page faults were a quarter of the CPU).
        conn.execute_batch(
            "PRAGMA mmap_size = 0;
             PRAGMA cache_size = -16384;
             PRAGMA query_only = ON;",
        )
        .map_err(sql_err("set reader pragmas"))?;
    }
    Ok(conn)
}

/// Brings the schema up to the newest migration, each migration in its own transaction.
/// Applies the migrations the database lacks; returns the schema version before and after.
pub(super) fn migrate(conn: &mut Connection) -> Result<(i32, i32)> {
    let current: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err("read schema version"))?;
    let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > newest {
        // Refuse rather than guess: an older binary must not write a newer schema.
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this build supports ({newest})"
        )));
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err("begin migration"))?;
        tx.execute_batch(sql).map_err(sql_err("apply migration"))?;
        // user_version lives in the database header and is part of this transaction, so
        // a crash leaves either the old schema and version or the new ones.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .map_err(sql_err("record schema version"))?;
        tx.commit().map_err(sql_err("commit migration"))?;
    }
    Ok((current, current.max(newest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }
}
