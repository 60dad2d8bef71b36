//! Upgrading a database written by an older build: opening it applies the newer
//! migrations in place, and everything it held is still there and still works.

use arca_store::conformance::{arn, event};
use arca_store::{
    EventQuery, RotationFunctionRecord, SealedValue, SecretChange, Store, VersionRecord,
};
use arca_store_sqlite::SqliteStore;
use rusqlite::params;

const T0: i64 = 1_700_000_000_000;
const R1: &str = "us-east-1";

/// Builds a database exactly as a build that only knew migration 001 left it, holding
/// one secret with a tag, a version and its sealed value, and an access key.
fn write_schema_v1_database(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .expect("pragmas");
    conn.execute_batch(include_str!("../migrations/001_initial.sql"))
        .expect("apply 001");
    conn.execute_batch("PRAGMA user_version = 1")
        .expect("set version");
    conn.execute(
        "INSERT INTO secrets (region, arn, name, description, created_at, last_changed_at, \
         last_accessed_day, deleted_at, purge_at, extra, revision) \
         VALUES (?1, ?2, 'old/db', 'from v1', ?3, ?4, NULL, NULL, NULL, '{\"k\":1}', 3)",
        params![R1, arn(R1, "old/db"), T0, T0 + 5],
    )
    .expect("insert secret");
    let sid = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO tags (secret_id, position, key, value) VALUES (?1, 0, 'team', 'a')",
        [sid],
    )
    .expect("insert tag");
    conn.execute(
        "INSERT INTO versions (secret_id, version_id, stages, created_at, last_accessed_day, \
         kms_key_ids, value_digest, has_value) \
         VALUES (?1, 'v1', '[\"AWSCURRENT\"]', ?2, NULL, '[\"DEFAULT\"]', x'd16e', 1)",
        params![sid, T0],
    )
    .expect("insert version");
    let vrow = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO sealed_values (version_row, sealed) VALUES (?1, x'00ff10')",
        [vrow],
    )
    .expect("insert value");
    conn.execute(
        "INSERT INTO access_keys (access_key_id, sealed_secret, description, created_at, enabled) \
         VALUES ('AKIAOLD', x'01', NULL, ?1, 1)",
        [T0],
    )
    .expect("insert key");
}

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .expect("raw open")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version")
}

#[tokio::test]
async fn a_schema_1_database_is_migrated_on_open_with_its_data_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("arca.db");
    write_schema_v1_database(&path);
    assert_eq!(user_version(&path), 1);

    let store = SqliteStore::open(&path).expect("open migrates");
    let old = store
        .find_by_arn(R1, &arn(R1, "old/db"))
        .await
        .expect("find")
        .expect("old secret still there");
    assert_eq!(old.name, "old/db");
    assert_eq!(old.description.as_deref(), Some("from v1"));
    assert_eq!(old.last_changed_at, T0 + 5);
    assert_eq!(old.extra, serde_json::json!({"k": 1}));
    assert_eq!(old.revision, 3);
    assert_eq!(old.tags, [("team".to_owned(), "a".to_owned())]);
    assert_eq!(
        old.versions,
        [VersionRecord {
            version_id: "v1".into(),
            stages: vec!["AWSCURRENT".into()],
            created_at: T0,
            last_accessed_day: None,
            kms_key_ids: vec!["DEFAULT".into()],
            value_digest: vec![0xd1, 0x6e],
            has_value: true,
        }]
    );
    // Existing secrets have nothing scheduled.
    assert_eq!(old.rotation_due_at, None);
    assert!(store
        .due_for_rotation(i64::MAX, 10)
        .await
        .expect("due")
        .is_empty());
    assert_eq!(
        store.get_sealed_value(&old.arn, "v1").await.expect("get"),
        Some(SealedValue(vec![0x00, 0xff, 0x10]))
    );
    assert_eq!(
        store
            .get_access_key("AKIAOLD")
            .await
            .expect("get")
            .map(|k| (k.sealed_secret, k.owner)),
        Some((vec![1], None)),
        "a key from before principals has no owner"
    );

    // The new column and tables work on the migrated file.
    let mut c = SecretChange {
        secret: old.clone(),
        expected_revision: old.revision,
        new_versions: vec![],
        restaged: vec![],
        removed_versions: vec![],
        events: vec![],
        outbox: Vec::new(),
        audit: Vec::new(),
        deliveries: Vec::new(),
        fence: None,
    };
    c.secret.rotation_due_at = Some(T0);
    store.update_secret(&c).await.expect("schedule rotation");
    assert_eq!(
        store.due_for_rotation(T0, 10).await.expect("due"),
        [(R1.to_owned(), old.arn.clone())]
    );
    let id = store
        .append_event(&event(0, Some(&old.arn)))
        .await
        .expect("append");
    let f = RotationFunctionRecord {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        spec: serde_json::json!({"builtin": "generic"}),
        sealed_secret: None,
        created_at: T0,
    };
    store.put_rotation_function(&f).await.expect("put function");
    store.close();
    // A key's owner is both columns or neither, on the migrated file too.
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    for (account, user) in [(Some("111122223333"), None), (None, Some("alice"))] {
        assert!(
            raw.execute(
                "UPDATE access_keys SET owner_account = ?1, owner_user = ?2 \
                 WHERE access_key_id = 'AKIAOLD'",
                params![account, user],
            )
            .is_err(),
            "half an owner ({account:?}, {user:?}) is refused"
        );
    }
    drop(raw);

    // Reopening applies nothing twice and keeps what was written after the upgrade.
    assert_eq!(user_version(&path), 10);
    let store = SqliteStore::open(&path).expect("reopen");
    let events = store
        .list_events(&EventQuery {
            after_id: 0,
            limit: 10,
            secret_arn: None,
        })
        .await
        .expect("list events");
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [id]);
    assert_eq!(store.list_rotation_functions().await.expect("list"), [f]);
    assert_eq!(
        store
            .find_by_arn(R1, &old.arn)
            .await
            .expect("find")
            .map(|s| s.rotation_due_at),
        Some(Some(T0))
    );
}
