//! SQLite-specific behaviour the conformance suite cannot see: what lands in the file,
//! persistence across a restart, and many concurrent writers sharing group commits.

use std::sync::Arc;

use arca_store::conformance::{event, secret, version};
use arca_store::{
    AccessKeyRecord, EventQuery, KeyScope, SealedValue, SecretChange, Store, StoreError,
};
use arca_store_sqlite::SqliteStore;

const T0: i64 = 1_700_000_000_000;
const MARKER: &[u8] = b"ARCA-DURABILITY-MARKER-7f3c9e";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn data_is_in_the_file_after_close_and_visible_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arca.db");
    let s = secret("us-east-1", "durable", T0);
    let mut v = version("v1", &["AWSCURRENT"], T0);
    v.sealed = SealedValue(MARKER.to_vec());
    let key = AccessKeyRecord {
        access_key_id: "AKIADURABLE".into(),
        sealed_secret: vec![1, 2, 3],
        description: None,
        created_at: T0,
        enabled: true,
        scope: KeyScope::Full,
        owner: None,
    };

    let store = SqliteStore::open(&path).expect("open");
    store.create_secret(&s, Some(&v)).await.expect("create");
    store.put_access_key(&key).await.expect("put key");
    let before = store
        .find_by_arn("us-east-1", &s.arn)
        .await
        .expect("find")
        .expect("present");
    store.close();

    // Closing the last connection checkpoints the WAL into the main file.
    let bytes = std::fs::read(&path).expect("read db file");
    assert!(
        contains(&bytes, MARKER),
        "sealed value not in the database file"
    );
    let wal = dir.path().join("arca.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "WAL not checkpointed on close"
    );

    let store = SqliteStore::open(&path).expect("reopen");
    let after = store
        .find_by_arn("us-east-1", &s.arn)
        .await
        .expect("find")
        .expect("present after reopen");
    assert_eq!(after, before);
    assert_eq!(
        store.get_sealed_value(&s.arn, "v1").await.expect("get"),
        Some(v.sealed)
    );
    assert_eq!(
        store.get_access_key("AKIADURABLE").await.expect("get"),
        Some(key)
    );
}

#[tokio::test]
async fn the_file_stays_in_wal_mode_with_the_current_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arca.db");
    SqliteStore::open(&path).expect("open").close();
    // Reopening an existing database runs no migration twice.
    SqliteStore::open(&path).expect("reopen").close();
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, 10);
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arca.db");
    SqliteStore::open(&path).expect("open").close();
    rusqlite::Connection::open(&path)
        .expect("raw open")
        .execute_batch("PRAGMA user_version = 999")
        .expect("bump version");
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Backend(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_commits_without_losing_or_mixing_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("arca.db")).expect("open"));
    let s = secret("us-east-1", "contended", T0);
    store.create_secret(&s, None).await.expect("create");

    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            // Half create their own secret; half race to update the shared one from
            // revision 1, of which exactly one may win.
            if i % 2 == 0 {
                let own = secret("us-east-1", &format!("w{i:03}"), T0 + i);
                let v = version("v1", &["AWSCURRENT"], T0);
                store.create_secret(&own, Some(&v)).await.map(|_| false)
            } else {
                let mut shared = secret("us-east-1", "contended", T0);
                shared.description = Some(format!("writer {i}"));
                let change = SecretChange {
                    secret: shared,
                    expected_revision: 1,
                    new_versions: vec![version(&format!("v{i}"), &[], T0)],
                    restaged: vec![],
                    removed_versions: vec![],
                    events: vec![],
                    outbox: Vec::new(),
                    audit: Vec::new(),
                    deliveries: Vec::new(),
                    fence: None,
                };
                match store.update_secret(&change).await {
                    Ok(()) => Ok(true),
                    Err(StoreError::Conflict) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("join").expect("write") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one racing update wins");
    let shared = store
        .find_by_name("us-east-1", "contended")
        .await
        .expect("find")
        .expect("present");
    assert_eq!(shared.revision, 2);
    assert_eq!(
        shared.versions.len(),
        1,
        "only the winner's version was added"
    );
    for i in (0..200).step_by(2) {
        let own = store
            .find_by_name("us-east-1", &format!("w{i:03}"))
            .await
            .expect("find");
        assert!(own.is_some_and(|r| r.versions.len() == 1), "w{i:03} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_event_appends_get_distinct_ids_in_commit_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arca.db");
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let e = event(i, None);
            store.append_event(&e).await.map(|id| (id, e))
        }));
    }
    let mut appended = Vec::new();
    for t in tasks {
        let (id, e) = t.await.expect("join").expect("append");
        appended.push(arca_store::EventRecord { id, ..e });
    }
    appended.sort_by_key(|e| e.id);
    // Every acknowledged append is listed, under the id it was given, once.
    let all = |store: Arc<SqliteStore>| async move {
        store
            .list_events(&EventQuery {
                after_id: 0,
                limit: 1000,
                secret_arn: None,
            })
            .await
            .expect("list")
    };
    assert_eq!(all(Arc::clone(&store)).await, appended);
    drop(store);
    let store = Arc::new(SqliteStore::open(&path).expect("reopen"));
    assert_eq!(all(store).await, appended, "events lost across a restart");
}
