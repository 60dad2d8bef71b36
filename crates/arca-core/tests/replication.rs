//! The delivery contract on its own (no worker, no HTTP): what the outbox holds after a
//! write, what a delivery carries, and that applying it is idempotent: a replayed delivery,
//! or one from an older revision of the primary arriving late, changes nothing.

use arca_core::{Arca, KeyService, RequestCtx};
use arca_crypto::RootKey;
use arca_store::{OutboxKind, Store};
use arca_store_sqlite::SqliteStore;
use arca_types::replication::{Delivery, Outcome};
use arca_types::secret::SecretString;
use arca_types::time::{Clock, ManualClock};
use arca_types::wire::*;
use std::sync::Arc;

const ROOT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PRIMARY: &str = "us-east-1";
const REPLICA: &str = "eu-west-1";

async fn instance(dir: &tempfile::TempDir) -> Arc<Arca> {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("arca.db")).expect("open"));
    let root = RootKey::from_base64(ROOT).expect("root");
    let keys = KeyService::load(root, store.clone(), "123456789012".into())
        .await
        .expect("keys");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_800_000_000_000));
    Arc::new(Arca::new(
        store,
        Arc::new(keys),
        clock,
        "123456789012".into(),
    ))
}

async fn put(arca: &Arca, value: &str) -> String {
    arca.put_secret_value(
        &RequestCtx::new(PRIMARY),
        PutSecretValueRequest {
            secret_id: Some("s".into()),
            secret_string: Some(SecretString::new(value.into())),
            client_request_token: Some(uuid::Uuid::new_v4().to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("put")
    .version_id
}

async fn replica_value(arca: &Arca) -> String {
    arca.get_secret_value(
        &RequestCtx::new(REPLICA),
        GetSecretValueRequest {
            secret_id: Some("s".into()),
            ..Default::default()
        },
    )
    .await
    .expect("read the replica")
    .secret_string
    .expect("a string")
    .expose()
    .to_owned()
}

/// Secret "s" with value "v1" in the primary region, replicated to the replica region.
async fn create_replicated(arca: &Arca) {
    arca.create_secret(
        &RequestCtx::new(PRIMARY),
        CreateSecretRequest {
            name: Some("s".into()),
            secret_string: Some(SecretString::new("v1".into())),
            client_request_token: Some(uuid::Uuid::new_v4().to_string()),
            add_replica_regions: Some(vec![ReplicaRegion {
                region: Some(REPLICA.into()),
                kms_key_id: None,
            }]),
            ..Default::default()
        },
    )
    .await
    .expect("create");
}

/// The delivery for everything the outbox holds, as the worker would build it.
async fn delivery(arca: &Arca) -> Delivery {
    let entries = arca
        .store()
        .due_outbox(i64::MAX, 100)
        .await
        .expect("outbox");
    arca.prepare_delivery(&entries, &[])
        .await
        .expect("prepare")
        .expect("a delivery")
}

#[tokio::test]
async fn deliveries_are_idempotent_and_never_move_a_replica_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arca = instance(&dir).await;
    create_replicated(&arca).await;
    // The create queued one Sync to the replica region, with the first version's id.
    let queued = arca
        .store()
        .due_outbox(i64::MAX, 100)
        .await
        .expect("outbox");
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].kind, queued[0].target_region.as_str()),
        (OutboxKind::Sync, REPLICA)
    );
    assert_eq!(queued[0].version_ids.len(), 1);

    let first = delivery(&arca).await;
    let Delivery::Sync(state) = &first else {
        panic!("a sync")
    };
    // Debug output of a delivery never shows a value.
    assert!(!format!("{first:?}").contains("v1"));
    assert_eq!(state.values.len(), 1);
    let applied = arca.deliver(REPLICA, vec![first.clone()], None).await;
    assert!(matches!(applied[0], Outcome::Applied { .. }), "{applied:?}");
    assert_eq!(replica_value(&arca).await, "v1");

    // A replay changes nothing.
    let again = arca.deliver(REPLICA, vec![first.clone()], None).await;
    assert!(matches!(again[0], Outcome::Applied { .. }));
    assert_eq!(replica_value(&arca).await, "v1");

    // The primary moves on; its new state is delivered; then the old delivery arrives late
    // and is ignored.
    put(&arca, "v2").await;
    let second = delivery(&arca).await;
    arca.deliver(REPLICA, vec![second], None).await;
    assert_eq!(replica_value(&arca).await, "v2");
    let late = arca.deliver(REPLICA, vec![first], None).await;
    assert!(matches!(late[0], Outcome::Applied { .. }));
    assert_eq!(
        replica_value(&arca).await,
        "v2",
        "a late delivery moved the replica back"
    );
}

#[tokio::test]
async fn a_delivery_without_the_values_the_replica_lacks_asks_for_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arca = instance(&dir).await;
    create_replicated(&arca).await;
    let Delivery::Sync(mut state) = delivery(&arca).await else {
        panic!("a sync")
    };
    let wanted: Vec<String> = state.values.iter().map(|v| v.version_id.clone()).collect();
    state.values.clear();
    let out = arca
        .deliver(REPLICA, vec![Delivery::Sync(state)], None)
        .await;
    assert_eq!(
        out,
        vec![Outcome::Missing {
            version_ids: wanted
        }]
    );
    // Nothing was half-created meanwhile.
    let gone = arca
        .describe_secret(
            &RequestCtx::new(REPLICA),
            DescribeSecretRequest {
                secret_id: Some("s".into()),
            },
        )
        .await;
    assert!(gone.is_err());
}

#[tokio::test]
async fn a_delivery_under_a_lost_lease_applies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arca = instance(&dir).await;
    create_replicated(&arca).await;
    let store = arca.store();
    // The replication job's lease, granted to "a" and then, once it ran out, to "b".
    let a = store
        .acquire_lease("replication", "a", 1)
        .await
        .expect("lease")
        .expect("granted");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let b = store
        .acquire_lease("replication", "b", 60_000)
        .await
        .expect("lease")
        .expect("granted after expiry");
    let fence = |holder: &str, token: i64| arca_store::Fence {
        job: "replication".into(),
        holder: holder.into(),
        token,
    };
    let stale = fence("a", a.token);

    // "a" stalled while building its delivery and sends it now: the region refuses it.
    let first = delivery(&arca).await;
    let out = arca
        .deliver(REPLICA, vec![first.clone()], Some(&stale))
        .await;
    assert!(matches!(out[0], Outcome::Retry { .. }), "{out:?}");
    let absent = arca
        .describe_secret(
            &RequestCtx::new(REPLICA),
            DescribeSecretRequest {
                secret_id: Some("s".into()),
            },
        )
        .await;
    assert!(absent.is_err(), "a replica was created under a lost lease");
    // Nor can it record the region's answer in the primary's status.
    let entries = store.due_outbox(i64::MAX, 100).await.expect("outbox");
    let applied = Outcome::Applied {
        last_accessed_day: None,
    };
    assert!(arca
        .delivered(&entries, &applied, Some(&stale))
        .await
        .is_err());

    // The holder's delivery applies.
    let current = fence("b", b.token);
    let out = arca.deliver(REPLICA, vec![first], Some(&current)).await;
    assert!(matches!(out[0], Outcome::Applied { .. }), "{out:?}");
    assert_eq!(replica_value(&arca).await, "v1");
    arca.delivered(&entries, &applied, Some(&current))
        .await
        .expect("status recorded by the holder");
}
