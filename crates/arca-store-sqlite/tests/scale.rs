//! Listing and lookups must stay index-bound with a million secrets. Ignored by default
//! (it builds a large database); run with
//! `cargo test -p arca-store-sqlite --release --test scale -- --ignored --nocapture`.

use std::time::Instant;

use arca_store::conformance::cursor_of;
use arca_store::{ListQuery, SecretRecord, SortBy, Store};
use arca_store_sqlite::SqliteStore;

#[tokio::test]
#[ignore = "builds a large database; run explicitly"]
async fn pages_stay_fast_with_a_million_secrets() {
    let n: i64 = std::env::var("ARCA_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arca.db");
    SqliteStore::open(&path).expect("create schema").close();
    {
        // Bulk load behind the store's back: one transaction, far faster than n writes.
        let mut conn = rusqlite::Connection::open(&path).expect("raw open");
        let tx = conn.transaction().expect("begin");
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO secrets (region, arn, name, created_at, last_changed_at, \
                     last_accessed_day, revision) VALUES ('us-east-1', ?1, ?2, ?3, ?4, ?5, 1)",
                )
                .expect("prepare");
            for i in 0..n {
                let name = format!("svc{:03}/secret-{i:07}", i % 1000);
                let arn = format!("arn:aws:secretsmanager:us-east-1:1:secret:{name}-x");
                let accessed = (i % 5 != 0).then_some(i % 365);
                stmt.execute(rusqlite::params![arn, name, i, (i * 7919) % n, accessed])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let store = SqliteStore::open(&path).expect("open");
    let all = |_: &SecretRecord| true;
    for sort in [
        SortBy::Name,
        SortBy::CreatedDate,
        SortBy::LastChangedDate,
        SortBy::LastAccessedDate,
    ] {
        for descending in [false, true] {
            let mut q = ListQuery {
                sort_by: sort,
                descending,
                after: None,
                limit: 100,
                include_planned_deletion: false,
                name_prefixes: None,
            };
            let start = Instant::now();
            for _ in 0..20 {
                let page = store
                    .list_secrets("us-east-1", &q, &all)
                    .await
                    .expect("list");
                assert_eq!(page.len(), 100);
                q.after = page.last().map(|r| cursor_of(sort, r));
            }
            let per_page = start.elapsed() / 20;
            println!("{sort:?} desc={descending}: {per_page:?} per 100-item page");
            assert!(
                per_page.as_millis() < 200,
                "{sort:?} page took {per_page:?}"
            );
        }
    }
    let q = ListQuery {
        sort_by: SortBy::CreatedDate,
        descending: false,
        after: None,
        limit: 10,
        include_planned_deletion: false,
        name_prefixes: Some(vec!["svc042/".into()]),
    };
    let pred = |r: &SecretRecord| r.name.starts_with("svc042/");
    let start = Instant::now();
    let page = store
        .list_secrets("us-east-1", &q, &pred)
        .await
        .expect("list");
    println!("prefix filter on created order: {:?}", start.elapsed());
    assert_eq!(page.len(), 10);

    let start = Instant::now();
    for i in 0..10_000i64 {
        let name = format!(
            "svc{:03}/secret-{:07}",
            (i * 97) % 1000,
            (i * 97 + 1000 * (i % 7)) % n
        );
        let _ = store.find_by_name("us-east-1", &name).await.expect("find");
    }
    println!("find_by_name: {:?} per lookup", start.elapsed() / 10_000);
}
