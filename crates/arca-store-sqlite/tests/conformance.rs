//! Runs the backend-independent conformance suite against `SqliteStore`, one temporary
//! database file per test (a file, not memory, so WAL and separate connections are real).

use arca_store_sqlite::SqliteStore;
use tempfile::TempDir;

async fn fresh_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("arca.db")).expect("open store");
    (store, dir)
}

arca_store::store_conformance_tests!(fresh_store);
