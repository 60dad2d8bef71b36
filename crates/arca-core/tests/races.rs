//! Regressions for two races found in review, made deterministic by a store that stops
//! at a named point until the test lets it go:
//! - a forced DeleteSecret during a write in flight: the write, finishing after the
//!   delete, put the deleted record back into the read cache;
//! - the purge listing a secret, then a RestoreSecret committing, then the purge deleting
//!   the restored secret anyway;
//! - an event appended after its write had committed: a failure (or a crash) in between
//!   lost it. Events now travel in the write's own transaction.
//!
//! The read path's bookkeeping: a burst of reads is one store write, holding both the
//! reads' audit records and the access dates they set.
//!
//! And what only concurrency shows: one ClientRequestToken sent twice at once, puts
//! racing at the 100-version quota, two label moves on one secret at once.

use arca_core::{Arca, KeyService, RequestCtx};
use arca_crypto::RootKey;
use arca_store::{
    AccessKeyRecord, AuditEntry, AuditQuery, AuditRecord, DeliveryOutcome, DeliveryRecord,
    DeliveryState, Effects, EncryptionKeyRecord, EventQuery, EventRecord, ListQuery, NewVersion,
    OutboxEntry, PurgeDue, ReadBatch, RotationFunctionRecord, RuleRecord, SealedValue,
    SecretChange, SecretPredicate, SecretRecord, Store, TargetRecord,
};
use arca_store_sqlite::SqliteStore;
use arca_types::secret::SecretString;
use arca_types::time::{Clock, ManualClock, Millis, MILLIS_PER_DAY};
use arca_types::wire::*;
use arca_types::ErrorCode;
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

type Result<T> = arca_store::Result<T>;

/// A point where the store stops, once armed: it says it got there, then waits.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    reached: Notify,
    release: Notify,
}

impl Gate {
    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
    }
}

/// SQLite with two gates: after an `update_secret` has committed (before the caller
/// sees the result), and after `due_for_purge` has listed (before the purge deletes).
struct GatedStore {
    inner: SqliteStore,
    after_update: Gate,
    after_due_for_purge: Gate,
    /// A lone `append_event` (one outside a write's transaction) fails, as a crash
    /// between a commit and an append after it would lose the event.
    refuse_lone_events: AtomicBool,
    /// Each read-log write seen: (calls it records, access dates it sets).
    read_batches: std::sync::Mutex<Vec<(u32, usize)>>,
}

#[async_trait]
impl Store for GatedStore {
    async fn find_by_name(&self, region: &str, name: &str) -> Result<Option<SecretRecord>> {
        self.inner.find_by_name(region, name).await
    }
    async fn find_by_arn(&self, region: &str, arn: &str) -> Result<Option<SecretRecord>> {
        self.inner.find_by_arn(region, arn).await
    }
    async fn create_secret_with(
        &self,
        secret: &SecretRecord,
        versions: &[NewVersion],
        effects: &Effects,
    ) -> Result<()> {
        self.inner
            .create_secret_with(secret, versions, effects)
            .await
    }
    async fn append_reads(&self, batch: Arc<ReadBatch>) -> Result<()> {
        let calls = batch.audit.iter().map(|e| e.batch.max(1)).sum();
        self.read_batches
            .lock()
            .expect("batches")
            .push((calls, batch.touches.len()));
        self.inner.append_reads(batch).await
    }
    async fn put_rule(&self, rule: &RuleRecord, audit: Vec<AuditEntry>) -> Result<()> {
        self.inner.put_rule(rule, audit).await
    }
    async fn get_rule(&self, region: &str, name: &str) -> Result<Option<RuleRecord>> {
        self.inner.get_rule(region, name).await
    }
    async fn list_rules(&self) -> Result<Vec<RuleRecord>> {
        self.inner.list_rules().await
    }
    async fn delete_rule(&self, region: &str, name: &str, audit: Vec<AuditEntry>) -> Result<bool> {
        self.inner.delete_rule(region, name, audit).await
    }
    async fn put_targets(&self, targets: &[TargetRecord], audit: Vec<AuditEntry>) -> Result<()> {
        self.inner.put_targets(targets, audit).await
    }
    async fn remove_targets(
        &self,
        region: &str,
        rule: &str,
        ids: &[String],
        audit: Vec<AuditEntry>,
    ) -> Result<()> {
        self.inner.remove_targets(region, rule, ids, audit).await
    }
    async fn list_targets(&self) -> Result<Vec<TargetRecord>> {
        self.inner.list_targets().await
    }
    async fn due_deliveries(&self, now: Millis, limit: usize) -> Result<Vec<DeliveryRecord>> {
        self.inner.due_deliveries(now, limit).await
    }
    async fn finish_delivery(
        &self,
        seq: i64,
        outcome: &DeliveryOutcome,
        audit: Vec<AuditEntry>,
        fence: Option<&arca_store::Fence>,
    ) -> Result<()> {
        self.inner.finish_delivery(seq, outcome, audit, fence).await
    }
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<arca_store::LeaseGrant>> {
        self.inner.acquire_lease(job, holder, ttl_ms).await
    }
    async fn release_lease(&self, fence: &arca_store::Fence) -> Result<()> {
        self.inner.release_lease(fence).await
    }
    async fn lease_holds(&self, fence: &arca_store::Fence) -> Result<bool> {
        self.inner.lease_holds(fence).await
    }
    async fn list_deliveries(
        &self,
        state: DeliveryState,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>> {
        self.inner.list_deliveries(state, after_seq, limit).await
    }
    async fn replay_delivery(&self, seq: i64, now: Millis) -> Result<bool> {
        self.inner.replay_delivery(seq, now).await
    }
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.inner.list_audit(query).await
    }
    async fn due_outbox(&self, now: Millis, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.inner.due_outbox(now, limit).await
    }
    async fn outbox_for(&self, arn: &str) -> Result<Vec<OutboxEntry>> {
        self.inner.outbox_for(arn).await
    }
    async fn outbox_len(&self) -> Result<u64> {
        self.inner.outbox_len().await
    }
    async fn complete_outbox(&self, ids: &[i64], fence: Option<&arca_store::Fence>) -> Result<()> {
        self.inner.complete_outbox(ids, fence).await
    }
    async fn defer_outbox(
        &self,
        ids: &[i64],
        error: &str,
        next_attempt_at: Millis,
        fence: Option<&arca_store::Fence>,
    ) -> Result<()> {
        self.inner
            .defer_outbox(ids, error, next_attempt_at, fence)
            .await
    }
    async fn update_secret(&self, change: &SecretChange) -> Result<()> {
        let r = self.inner.update_secret(change).await;
        self.after_update.pass().await;
        r
    }
    async fn delete_secret(&self, region: &str, arn: &str, effects: &Effects) -> Result<()> {
        self.inner.delete_secret(region, arn, effects).await
    }
    async fn get_sealed_value(&self, arn: &str, version_id: &str) -> Result<Option<SealedValue>> {
        self.inner.get_sealed_value(arn, version_id).await
    }
    async fn list_secrets(
        &self,
        region: &str,
        query: &ListQuery,
        pred: SecretPredicate<'_>,
    ) -> Result<Vec<SecretRecord>> {
        self.inner.list_secrets(region, query, pred).await
    }
    async fn due_for_purge(&self, now: Millis, limit: usize) -> Result<Vec<PurgeDue>> {
        let r = self.inner.due_for_purge(now, limit).await;
        self.after_due_for_purge.pass().await;
        r
    }
    async fn purge_secret(
        &self,
        region: &str,
        arn: &str,
        purge_at: Millis,
        effects: &Effects,
    ) -> Result<bool> {
        self.inner
            .purge_secret(region, arn, purge_at, effects)
            .await
    }
    async fn due_for_rotation(&self, now: Millis, limit: usize) -> Result<Vec<(String, String)>> {
        self.inner.due_for_rotation(now, limit).await
    }
    async fn append_event(&self, event: &EventRecord) -> Result<i64> {
        if self.refuse_lone_events.load(Ordering::SeqCst) {
            return Err(arca_store::StoreError::Backend(
                "refused by the test".into(),
            ));
        }
        self.inner.append_event(event).await
    }
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>> {
        self.inner.list_events(query).await
    }
    async fn put_sync_job(&self, j: &arca_store::SyncJobRecord) -> Result<()> {
        self.inner.put_sync_job(j).await
    }
    async fn list_sync_jobs(&self) -> Result<Vec<arca_store::SyncJobRecord>> {
        self.inner.list_sync_jobs().await
    }
    async fn delete_sync_job(&self, name: &str) -> Result<bool> {
        self.inner.delete_sync_job(name).await
    }
    async fn put_rotation_function(&self, f: &RotationFunctionRecord) -> Result<()> {
        self.inner.put_rotation_function(f).await
    }
    async fn list_rotation_functions(&self) -> Result<Vec<RotationFunctionRecord>> {
        self.inner.list_rotation_functions().await
    }
    async fn delete_rotation_function(&self, arn: &str) -> Result<()> {
        self.inner.delete_rotation_function(arn).await
    }
    async fn put_access_key(&self, key: &AccessKeyRecord) -> Result<()> {
        self.inner.put_access_key(key).await
    }
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>> {
        self.inner.get_access_key(access_key_id).await
    }
    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        self.inner.list_access_keys().await
    }
    async fn delete_access_key(&self, access_key_id: &str) -> Result<bool> {
        self.inner.delete_access_key(access_key_id).await
    }
    async fn put_iam(&self, rec: &arca_store::IamRecord, replaces: Option<i64>) -> Result<()> {
        self.inner.put_iam(rec, replaces).await
    }
    async fn delete_iam(
        &self,
        account: &str,
        kind: arca_store::IamKind,
        name: &str,
    ) -> Result<bool> {
        self.inner.delete_iam(account, kind, name).await
    }
    async fn list_iam(&self) -> Result<Vec<arca_store::IamRecord>> {
        self.inner.list_iam().await
    }
    async fn put_encryption_key(&self, key: &EncryptionKeyRecord) -> Result<()> {
        self.inner.put_encryption_key(key).await
    }
    async fn list_encryption_keys(&self) -> Result<Vec<EncryptionKeyRecord>> {
        self.inner.list_encryption_keys().await
    }
    async fn wipe_secrets(&self) -> Result<()> {
        self.inner.wipe_secrets().await
    }
}

const ROOT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const T0: Millis = 1_800_000_000_000;

async fn instance(dir: &tempfile::TempDir, clock: ManualClock) -> (Arc<Arca>, Arc<GatedStore>) {
    let gated = Arc::new(GatedStore {
        inner: SqliteStore::open(&dir.path().join("arca.db")).expect("open"),
        after_update: Gate::default(),
        after_due_for_purge: Gate::default(),
        refuse_lone_events: AtomicBool::new(false),
        read_batches: Default::default(),
    });
    let store: Arc<dyn Store> = gated.clone();
    let root = RootKey::from_base64(ROOT).expect("root");
    let keys = KeyService::load(root, store.clone(), "123456789012".into())
        .await
        .expect("keys");
    let clock: Arc<dyn Clock> = Arc::new(clock);
    let arca = Arca::new(store, Arc::new(keys), clock, "123456789012".into());
    (Arc::new(arca), gated)
}

async fn create(arca: &Arca, ctx: &RequestCtx) {
    arca.create_secret(
        ctx,
        CreateSecretRequest {
            name: Some("s".into()),
            secret_string: Some(SecretString::new("v0".into())),
            client_request_token: Some("0".repeat(32)),
            ..Default::default()
        },
    )
    .await
    .expect("create");
}

fn secret_id() -> Option<String> {
    Some("s".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_delete_during_a_write_stays_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (arca, store) = instance(&dir, ManualClock::new(T0)).await;
    let ctx = RequestCtx::new("us-east-1");
    create(&arca, &ctx).await;

    // A PutSecretValue commits, then stops before it updates the cache.
    store.after_update.armed.store(true, Ordering::SeqCst);
    let writer = {
        let (arca, ctx) = (arca.clone(), ctx.clone());
        tokio::spawn(async move {
            arca.put_secret_value(
                &ctx,
                PutSecretValueRequest {
                    secret_id: secret_id(),
                    client_request_token: Some("1".repeat(32)),
                    secret_string: Some(SecretString::new("v1".into())),
                    ..Default::default()
                },
            )
            .await
        })
    };
    store.after_update.reached.notified().await;

    // The forced delete now runs while the write is in flight. With the write lock it
    // waits for the write; without it, it finishes at once.
    let deleter = {
        let (arca, ctx) = (arca.clone(), ctx.clone());
        tokio::spawn(async move {
            arca.delete_secret(
                &ctx,
                DeleteSecretRequest {
                    secret_id: secret_id(),
                    force_delete_without_recovery: Some(true),
                    ..Default::default()
                },
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.after_update.release.notify_one();
    writer.await.expect("join").expect("put");
    deleter.await.expect("join").expect("forced delete");

    let e = arca
        .get_secret_value(
            &ctx,
            GetSecretValueRequest {
                secret_id: secret_id(),
                ..Default::default()
            },
        )
        .await
        .expect_err("the deleted secret must not be read back from the cache");
    assert_eq!(e.code, ErrorCode::ResourceNotFound, "{e}");
    let e = arca
        .describe_secret(
            &ctx,
            DescribeSecretRequest {
                secret_id: secret_id(),
            },
        )
        .await
        .expect_err("described");
    assert_eq!(e.code, ErrorCode::ResourceNotFound, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_during_the_purge_keeps_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let (arca, store) = instance(&dir, clock.clone()).await;
    let ctx = RequestCtx::new("us-east-1");
    create(&arca, &ctx).await;
    arca.delete_secret(
        &ctx,
        DeleteSecretRequest {
            secret_id: secret_id(),
            recovery_window_in_days: Some(7),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    clock.advance(7 * MILLIS_PER_DAY + 1);

    // The purge lists the secret as due, then stops before deleting it.
    store
        .after_due_for_purge
        .armed
        .store(true, Ordering::SeqCst);
    let purge = {
        let arca = arca.clone();
        tokio::spawn(async move { arca.purge_due(None).await })
    };
    store.after_due_for_purge.reached.notified().await;
    arca.restore_secret(
        &ctx,
        SecretIdRequest {
            secret_id: secret_id(),
        },
    )
    .await
    .expect("restore");
    store.after_due_for_purge.release.notify_one();
    assert_eq!(purge.await.expect("join").expect("purge"), 0);

    let d = arca
        .describe_secret(
            &ctx,
            DescribeSecretRequest {
                secret_id: secret_id(),
            },
        )
        .await
        .expect("the restored secret survives the purge");
    assert!(d.deleted_date.is_none());
    let v = arca
        .get_secret_value(
            &ctx,
            GetSecretValueRequest {
                secret_id: secret_id(),
                ..Default::default()
            },
        )
        .await
        .expect("read");
    assert_eq!(v.secret_string.expect("string").expose(), "v0");
}

#[tokio::test]
async fn an_event_is_committed_with_its_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (arca, store) = instance(&dir, ManualClock::new(T0)).await;
    let ctx = RequestCtx::new("us-east-1");
    create(&arca, &ctx).await;
    store.refuse_lone_events.store(true, Ordering::SeqCst);
    let arn = arca
        .cancel_rotate_secret(
            &ctx,
            SecretIdRequest {
                secret_id: secret_id(),
            },
        )
        .await
        .expect("cancel")
        .arn;
    let events = store
        .list_events(&EventQuery {
            after_id: 0,
            limit: 10,
            secret_arn: Some(arn),
        })
        .await
        .expect("events");
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["RotationCancelled"]);
}

fn put(token: &str, value: &str, stages: Option<Vec<String>>) -> PutSecretValueRequest {
    PutSecretValueRequest {
        secret_id: secret_id(),
        client_request_token: Some(token.into()),
        secret_string: Some(SecretString::new(value.into())),
        version_stages: stages,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_puts_with_one_client_request_token_make_one_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (arca, _store) = instance(&dir, ManualClock::new(T0)).await;
    let ctx = RequestCtx::new("us-east-1");
    create(&arca, &ctx).await;
    for round in 0..10 {
        // The same value twice at once: a retry that raced its original. Both succeed
        // with the one version.
        let token = format!("{round:0>32}a");
        let (a, b) = tokio::join!(
            arca.put_secret_value(&ctx, put(&token, "same", None)),
            arca.put_secret_value(&ctx, put(&token, "same", None))
        );
        let (a, b) = (a.expect("first"), b.expect("second"));
        assert_eq!(a.version_id, token);
        assert_eq!(b.version_id, token);
        // Different values under one token: one wins, the other is refused with AWS's
        // ResourceExistsException, and the stored value is the winner's.
        let token = format!("{round:0>32}b");
        let (a, b) = tokio::join!(
            arca.put_secret_value(&ctx, put(&token, "left", None)),
            arca.put_secret_value(&ctx, put(&token, "right", None))
        );
        let won = match (&a, &b) {
            (Ok(_), Err(e)) if e.code == ErrorCode::ResourceExists => "left",
            (Err(e), Ok(_)) if e.code == ErrorCode::ResourceExists => "right",
            other => panic!("round {round}: {other:?}"),
        };
        let v = arca
            .get_secret_value(
                &ctx,
                GetSecretValueRequest {
                    secret_id: secret_id(),
                    version_id: Some(token.clone()),
                    ..Default::default()
                },
            )
            .await
            .expect("read");
        assert_eq!(v.secret_string.expect("string").expose(), won);
    }
    let versions = arca
        .list_secret_version_ids(
            &ctx,
            ListSecretVersionIdsRequest {
                secret_id: secret_id(),
                include_deprecated: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("versions")
        .versions;
    assert_eq!(versions.len(), 21, "the first version and two per round");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_label_moves_at_once_leave_the_label_on_one_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (arca, _store) = instance(&dir, ManualClock::new(T0)).await;
    let ctx = RequestCtx::new("us-east-1");
    create(&arca, &ctx).await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let token = format!("label{i:0>27}");
        arca.put_secret_value(&ctx, put(&token, "v", Some(vec![format!("own{i}")])))
            .await
            .expect("put");
        ids.push(token);
    }
    let mv = |to: &str| UpdateSecretVersionStageRequest {
        secret_id: secret_id(),
        version_stage: Some("blue".into()),
        move_to_version_id: Some(to.into()),
        remove_from_version_id: None,
    };
    // The label is on neither: both moves are valid alone; one lands first, and the
    // second then needs RemoveFromVersionId naming the first's version.
    let (a, b) = tokio::join!(
        arca.update_secret_version_stage(&ctx, mv(&ids[0])),
        arca.update_secret_version_stage(&ctx, mv(&ids[1]))
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    let refused = a.as_ref().err().or(b.as_ref().err()).expect("one refused");
    assert_eq!(refused.code, ErrorCode::InvalidParameter, "{refused}");
    let d = arca
        .describe_secret(
            &ctx,
            DescribeSecretRequest {
                secret_id: secret_id(),
            },
        )
        .await
        .expect("describe");
    let holders: Vec<&String> = d
        .version_ids_to_stages
        .iter()
        .flatten()
        .filter(|(_, s)| s.iter().any(|l| l == "blue"))
        .map(|(v, _)| v)
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
    let winner = if a.is_ok() { &ids[0] } else { &ids[1] };
    assert_eq!(holders[0], winner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_at_the_version_quota_keep_every_acknowledged_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let (arca, _store) = instance(&dir, clock.clone()).await;
    let ctx = RequestCtx::new("us-east-1");
    create(&arca, &ctx).await;
    for i in 1..100 {
        arca.put_secret_value(&ctx, put(&format!("old{i:0>29}"), "old", None))
            .await
            .expect("fill");
    }
    // The deprecated versions are old enough to be removed now.
    clock.advance(25 * 60 * 60 * 1000);
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (arca, ctx) = (arca.clone(), ctx.clone());
        puts.spawn(async move {
            let token = format!("new{i:0>29}");
            arca.put_secret_value(&ctx, put(&token, "new", None))
                .await
                .map(|r| r.version_id)
        });
    }
    let mut acknowledged = Vec::new();
    while let Some(r) = puts.join_next().await {
        acknowledged.push(r.expect("join").expect("put at the quota"));
    }
    let listed = arca
        .list_secret_version_ids(
            &ctx,
            ListSecretVersionIdsRequest {
                secret_id: secret_id(),
                max_results: Some(100),
                include_deprecated: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("versions");
    assert!(listed.next_token.is_none(), "more than 100 versions kept");
    let ids: Vec<&str> = listed
        .versions
        .iter()
        .map(|v| v.version_id.as_str())
        .collect();
    assert_eq!(ids.len(), 100);
    for a in &acknowledged {
        assert!(ids.contains(&a.as_str()), "acknowledged {a} is gone");
    }
}

#[tokio::test]
async fn reads_record_their_calls_and_access_dates_in_one_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (arca, store) = instance(&dir, ManualClock::new(T0)).await;
    let plain = RequestCtx::new("us-east-1");
    let names: Vec<String> = (0..20).map(|i| format!("read-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        arca.create_secret(
            &plain,
            CreateSecretRequest {
                name: Some(name.clone()),
                secret_string: Some(SecretString::new("v".into())),
                client_request_token: Some(format!("{i:0>32}")),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    }
    for (i, name) in names.iter().enumerate() {
        let body = format!(r#"{{"SecretId":"{name}"}}"#);
        let mut ctx = RequestCtx::new("us-east-1");
        ctx.call = Some(Arc::new(arca_core::audit::Call::new(
            "GetSecretValue",
            body.as_bytes(),
            "us-east-1",
            T0,
            &format!("00000000-0000-4000-8000-{i:012}"),
            arca_core::audit::Caller::default(),
        )));
        let got = arca
            .get_secret_value(
                &ctx,
                GetSecretValueRequest {
                    secret_id: Some(name.clone()),
                    ..Default::default()
                },
            )
            .await;
        arca.finish_call(&ctx, got.as_ref().err()).await;
        got.expect("get");
    }
    arca.flush_audit().await;
    arca.flush_access_dates().await;
    let batches = store.read_batches.lock().expect("batches").clone();
    assert_eq!(
        batches,
        [(20, 20)],
        "one write for the reads' records and days"
    );
}
