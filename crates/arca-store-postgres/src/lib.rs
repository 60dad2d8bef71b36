//! The PostgreSQL backend: one database shared by any number of Arca nodes.
//!
//! Data flow: every call takes a pooled connection; a read is one statement (a secret's
//! tags and versions are aggregated into its row, so they agree without a transaction), a
//! write is one transaction, retried whole when PostgreSQL reports a serialization failure
//! or deadlock. The database keeps integrity (unique names and aliases, foreign keys,
//! checks); nodes share nothing else. Rows of the ordered logs are numbered after commit
//! by the sequencer (see `sequence`), so numbers appear in commit order across nodes.
//!
//! Module map: `connect` (URL, TLS, pool), `schema` (migrations), `sequence` (log
//! numbering and the audit chain), `read`, `write`, `batch` (group commit of API
//! writes), `changes` (the change feed), `error` (log-safe error text).

mod batch;
mod changes;
mod connect;
mod error;
mod read;
mod schema;
mod sequence;
#[cfg(feature = "testing")]
pub mod testing;
mod write;

pub use changes::HEARTBEAT as CHANGE_FEED_HEARTBEAT;
pub use connect::{is_postgres_url, PgOptions};

use std::sync::Arc;
use std::time::Duration;

use arca_types::time::Millis;
use async_trait::async_trait;
use deadpool_postgres::{Client, Pool};

use arca_store::{
    AccessKeyRecord, AuditEntry, AuditQuery, AuditRecord, ChangeSink, DeliveryOutcome,
    DeliveryRecord, DeliveryState, Effects, EncryptionKeyRecord, EventQuery, EventRecord, Fence,
    IamKind, IamRecord, LeaseGrant, ListQuery, NewVersion, OutboxEntry, PurgeDue, ReadBatch,
    Result, RotationFunctionRecord, RuleRecord, SealedValue, SecretChange, SecretKey,
    SecretPredicate, SecretRecord, Store, StoreError, SyncJobRecord, TargetRecord,
};
use error::{pg, Fail};
use sequence::Sequencer;

/// Attempts of a transaction that PostgreSQL rolled back for a serialization failure or
/// a deadlock (both name a transaction that may simply run again).
const TX_ATTEMPTS: u32 = 5;

/// Secrets this node creates between two `ANALYZE`s of the secret tables.
///
/// Why: the planner picks ListSecrets' index from the tables' statistics. Right after a
/// bulk load, before autovacuum gets to them, stale statistics made a broad-prefix page
/// at 1,000,000 secrets take 581 ms instead of 1.2 ms (it scanned every matching name
/// and sorted them). A node that is loading secrets refreshes them itself.
const ANALYZE_EVERY: u64 = 100_000;

/// The PostgreSQL `Store`.
pub struct PostgresStore {
    db: Db,
    batcher: batch::Batcher,
    /// For the change feed's own connection.
    dialer: connect::Dialer,
    /// The change feed's listeners, stopped with the store.
    feeds: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for f in self
            .feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            f.abort();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.db.target)
            .finish_non_exhaustive()
    }
}

/// A pooled connection, or a clear error naming the database (never the URL: it can hold
/// a password).
async fn connect(pool: &Pool, target: &str) -> Result<Client> {
    pool.get()
        .await
        .map_err(|e| StoreError::Backend(format!("cannot reach PostgreSQL at {target}: {e}")))
}

/// Brings the database to this build's schema without serving it (`arca migrate`);
/// returns the schema version before and after.
pub async fn migrate(opts: &PgOptions) -> Result<(i32, i32)> {
    let (pool, target, _) = connect::pool(opts)?;
    let mut client = connect(&pool, &target).await?;
    schema::migrate(&mut client).await
}

/// Runs one write transaction on a pooled connection, retrying it whole on a
/// serialization failure or deadlock. `$body` is an async block using `$tx`.
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut client = $self.client().await?;
            let outcome: std::result::Result<_, Fail> = async {
                let $tx = client.transaction().await.map_err(pg("begin"))?;
                let out = $body.await?;
                $tx.commit().await.map_err(pg("commit"))?;
                Ok(out)
            }
            .await;
            match outcome {
                Err(f) if f.retryable() && attempt < TX_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
                }
                other => break other.map_err(Fail::into_store),
            }
        }
    }};
}

impl PostgresStore {
    /// Connects, migrates the schema to this build's, and starts the sequencer. Fails
    /// with a clear message if the database is unreachable or its schema is newer.
    pub async fn open(opts: &PgOptions) -> Result<PostgresStore> {
        let (pool, target, dialer) = connect::pool(opts)?;
        {
            let mut client = connect(&pool, &target).await?;
            schema::migrate(&mut client).await?;
            schema::check(&client).await?;
        }
        let sequencer = Sequencer::start(pool.clone());
        let db = Db {
            pool,
            target: target.into(),
            sequencer,
            created: Default::default(),
        };
        Ok(PostgresStore {
            batcher: batch::Batcher::start(db.clone()),
            db,
            dialer,
            feeds: Default::default(),
        })
    }

    /// `host:port/dbname`, for logs.
    pub fn target(&self) -> &str {
        &self.db.target
    }

    async fn client(&self) -> Result<Client> {
        self.db.client().await
    }

    /// Numbers what committed so far, so that this node reads its own writes in the logs.
    async fn sequenced(&self) -> Result<()> {
        self.db.sequencer.catch_up().await
    }

    fn after_write(&self, ordered: bool) {
        self.db.after_write(ordered);
    }
}

/// What a write needs: the pool, the database's name for errors, and the sequencer to
/// wake. Shared by the store and the write batcher's runners.
#[derive(Clone)]
pub(crate) struct Db {
    pool: Pool,
    target: Arc<str>,
    sequencer: Arc<Sequencer>,
    /// Secrets created by this node, for `ANALYZE_EVERY`.
    created: Arc<std::sync::atomic::AtomicU64>,
}

impl Db {
    async fn client(&self) -> Result<Client> {
        connect(&self.pool, &self.target).await
    }

    fn after_write(&self, ordered: bool) {
        if ordered {
            self.sequencer.poke();
        }
    }

    /// Counts a created secret; every `ANALYZE_EVERY`th starts an `ANALYZE` of the secret
    /// tables in the background (it samples, so it takes well under a second at 1M).
    fn after_create(&self) {
        let n = self
            .created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if !n.is_multiple_of(ANALYZE_EVERY) {
            return;
        }
        let db = self.clone();
        tokio::spawn(async move {
            let analyzed = match db.client().await {
                Ok(c) => c
                    .batch_execute("ANALYZE secrets, versions, tags")
                    .await
                    .map_err(|e| StoreError::Backend(error::describe(&e))),
                Err(e) => Err(e),
            };
            if let Err(e) = analyzed {
                tracing::warn!(error = %e, "refreshing the planner's statistics failed");
            }
        });
    }

    /// A new secret in a transaction of its own.
    async fn create_alone(
        &self,
        secret: &SecretRecord,
        versions: &[NewVersion],
        effects: &Effects,
    ) -> Result<()> {
        in_tx!(self, |tx| write::create_secret(
            &tx, secret, versions, effects
        ))?;
        self.after_write(write::effects_ordered(effects));
        self.after_create();
        Ok(())
    }

    /// `change` in a transaction of its own.
    async fn update_alone(&self, change: &SecretChange) -> Result<()> {
        in_tx!(self, |tx| write::update_secret(&tx, change))?;
        self.after_write(write::change_ordered(change));
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn find_by_name(&self, region: &str, name: &str) -> Result<Option<SecretRecord>> {
        read::find_by_name(&self.client().await?, region, name).await
    }

    async fn find_by_arn(&self, region: &str, arn: &str) -> Result<Option<SecretRecord>> {
        read::find_by_arn(&self.client().await?, region, arn).await
    }

    async fn find_with_current(
        &self,
        region: &str,
        key: SecretKey<'_>,
    ) -> Result<Option<(SecretRecord, Option<SealedValue>)>> {
        read::find_with_current(&self.client().await?, region, key).await
    }

    async fn create_secret_with(
        &self,
        secret: &SecretRecord,
        versions: &[NewVersion],
        effects: &Effects,
    ) -> Result<()> {
        // A fenced write must be checked against its lease in its own transaction.
        if effects.fence.is_some() {
            return self.db.create_alone(secret, versions, effects).await;
        }
        self.batcher
            .write(batch::Write::Create {
                secret: secret.clone(),
                versions: versions.to_vec(),
                effects: effects.clone(),
            })
            .await
    }

    async fn update_secret(&self, change: &SecretChange) -> Result<()> {
        // A fenced write must be checked against its lease in its own transaction.
        if change.fence.is_some() {
            return self.db.update_alone(change).await;
        }
        self.batcher
            .write(batch::Write::Update(change.clone()))
            .await
    }

    async fn delete_secret(&self, region: &str, arn: &str, effects: &Effects) -> Result<()> {
        in_tx!(self, |tx| write::delete_secret(&tx, region, arn, effects))?;
        self.after_write(write::effects_ordered(effects));
        Ok(())
    }

    async fn get_sealed_value(&self, arn: &str, version_id: &str) -> Result<Option<SealedValue>> {
        read::sealed_value(&self.client().await?, arn, version_id).await
    }

    async fn list_secrets(
        &self,
        region: &str,
        query: &ListQuery,
        pred: SecretPredicate<'_>,
    ) -> Result<Vec<SecretRecord>> {
        read::list(&self.client().await?, region, query, pred).await
    }

    async fn due_for_purge(&self, now: Millis, limit: usize) -> Result<Vec<PurgeDue>> {
        read::due_for_purge(&self.client().await?, now, limit).await
    }

    async fn purge_secret(
        &self,
        region: &str,
        arn: &str,
        purge_at: Millis,
        effects: &Effects,
    ) -> Result<bool> {
        let purged = in_tx!(self, |tx| write::purge_secret(
            &tx, region, arn, purge_at, effects
        ))?;
        self.after_write(purged && write::effects_ordered(effects));
        Ok(purged)
    }

    async fn due_for_rotation(&self, now: Millis, limit: usize) -> Result<Vec<(String, String)>> {
        read::due_for_rotation(&self.client().await?, now, limit).await
    }

    async fn shared_clock(&self) -> Result<Option<Millis>> {
        read::clock(&self.client().await?).await.map(Some)
    }

    async fn append_event(&self, event: &EventRecord) -> Result<i64> {
        let row_ids = in_tx!(self, |tx| write::append_events(
            &tx,
            std::slice::from_ref(event)
        ))?;
        let row_id = row_ids
            .first()
            .copied()
            .ok_or_else(|| StoreError::Backend("insert event returned no row".to_owned()))?;
        // The caller gets the event's number: wait for the sequencer to assign it (at
        // once unless an older transaction is still running somewhere).
        for _ in 0..500 {
            self.sequenced().await?;
            let client = self.client().await?;
            let row = client
                .query_one("SELECT id FROM events WHERE row_id = $1", &[&row_id])
                .await
                .map_err(error::pg_store("read the event's number"))?;
            if let Some(id) = row.get::<_, Option<i64>>(0) {
                return Ok(id);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(StoreError::Backend(
            "the event was stored but not numbered within 5 s (a long transaction holds the \
             logs back)"
                .to_owned(),
        ))
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>> {
        self.sequenced().await?;
        read::events(&self.client().await?, query).await
    }

    async fn append_reads(&self, batch: Arc<ReadBatch>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        in_tx!(self, |tx| async {
            write::append_audit(&tx, &batch.audit).await?;
            write::append_deliveries(&tx, &batch.deliveries).await?;
            write::touch_accessed(&tx, &batch.touches).await
        })?;
        self.after_write(!(batch.audit.is_empty() && batch.deliveries.is_empty()));
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.sequenced().await?;
        read::audit(&self.client().await?, query).await
    }

    async fn due_outbox(&self, now: Millis, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.sequenced().await?;
        read::due_outbox(&self.client().await?, now, limit).await
    }

    async fn outbox_for(&self, arn: &str) -> Result<Vec<OutboxEntry>> {
        read::outbox_for(&self.client().await?, arn).await
    }

    async fn outbox_len(&self) -> Result<u64> {
        read::outbox_len(&self.client().await?).await
    }

    async fn complete_outbox(&self, ids: &[i64], fence: Option<&Fence>) -> Result<()> {
        in_tx!(self, |tx| write::complete_outbox(&tx, ids, fence))
    }

    async fn defer_outbox(
        &self,
        ids: &[i64],
        error: &str,
        next_attempt_at: Millis,
        fence: Option<&Fence>,
    ) -> Result<()> {
        in_tx!(self, |tx| write::defer_outbox(
            &tx,
            ids,
            error,
            next_attempt_at,
            fence
        ))
    }

    async fn put_rule(&self, rule: &RuleRecord, audit: Vec<AuditEntry>) -> Result<()> {
        in_tx!(self, |tx| async {
            write::put_rule(&tx, rule).await?;
            write::append_audit(&tx, &audit).await
        })?;
        self.after_write(!audit.is_empty());
        Ok(())
    }

    async fn get_rule(&self, region: &str, name: &str) -> Result<Option<RuleRecord>> {
        Ok(read::rules(&self.client().await?, Some((region, name)))
            .await?
            .pop())
    }

    async fn list_rules(&self) -> Result<Vec<RuleRecord>> {
        read::rules(&self.client().await?, None).await
    }

    async fn delete_rule(&self, region: &str, name: &str, audit: Vec<AuditEntry>) -> Result<bool> {
        let existed = in_tx!(self, |tx| async {
            let existed = write::delete_rule(&tx, region, name).await?;
            write::append_audit(&tx, &audit).await?;
            Ok::<_, Fail>(existed)
        })?;
        self.after_write(!audit.is_empty());
        Ok(existed)
    }

    async fn put_targets(&self, targets: &[TargetRecord], audit: Vec<AuditEntry>) -> Result<()> {
        in_tx!(self, |tx| async {
            write::put_targets(&tx, targets).await?;
            write::append_audit(&tx, &audit).await
        })?;
        self.after_write(!audit.is_empty());
        Ok(())
    }

    async fn remove_targets(
        &self,
        region: &str,
        rule: &str,
        ids: &[String],
        audit: Vec<AuditEntry>,
    ) -> Result<()> {
        in_tx!(self, |tx| async {
            write::remove_targets(&tx, region, rule, ids).await?;
            write::append_audit(&tx, &audit).await
        })?;
        self.after_write(!audit.is_empty());
        Ok(())
    }

    async fn list_targets(&self) -> Result<Vec<TargetRecord>> {
        read::targets(&self.client().await?).await
    }

    async fn due_deliveries(&self, now: Millis, limit: usize) -> Result<Vec<DeliveryRecord>> {
        self.sequenced().await?;
        read::due_deliveries(&self.client().await?, now, limit).await
    }

    async fn finish_delivery(
        &self,
        seq: i64,
        outcome: &DeliveryOutcome,
        audit: Vec<AuditEntry>,
        fence: Option<&Fence>,
    ) -> Result<()> {
        in_tx!(self, |tx| write::finish_delivery(
            &tx, seq, outcome, &audit, fence
        ))?;
        self.after_write(!audit.is_empty());
        Ok(())
    }

    async fn list_deliveries(
        &self,
        state: DeliveryState,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>> {
        self.sequenced().await?;
        read::deliveries(&self.client().await?, state, after_seq, limit).await
    }

    async fn replay_delivery(&self, seq: i64, now: Millis) -> Result<bool> {
        in_tx!(self, |tx| write::replay_delivery(&tx, seq, now))
    }

    async fn put_rotation_function(&self, f: &RotationFunctionRecord) -> Result<()> {
        in_tx!(self, |tx| write::put_rotation_function(&tx, f))
    }

    async fn list_rotation_functions(&self) -> Result<Vec<RotationFunctionRecord>> {
        read::rotation_functions(&self.client().await?).await
    }

    async fn delete_rotation_function(&self, arn: &str) -> Result<()> {
        in_tx!(self, |tx| write::delete_rotation_function(&tx, arn))
    }

    async fn put_sync_job(&self, job: &SyncJobRecord) -> Result<()> {
        in_tx!(self, |tx| write::put_sync_job(&tx, job))
    }

    async fn list_sync_jobs(&self) -> Result<Vec<SyncJobRecord>> {
        read::sync_jobs(&self.client().await?).await
    }

    async fn delete_sync_job(&self, name: &str) -> Result<bool> {
        in_tx!(self, |tx| write::delete_sync_job(&tx, name))
    }

    async fn put_access_key(&self, key: &AccessKeyRecord) -> Result<()> {
        in_tx!(self, |tx| write::put_access_key(&tx, key))
    }

    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>> {
        read::access_key(&self.client().await?, access_key_id).await
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        read::access_keys(&self.client().await?).await
    }

    async fn delete_access_key(&self, access_key_id: &str) -> Result<bool> {
        in_tx!(self, |tx| write::delete_access_key(&tx, access_key_id))
    }

    async fn put_iam(
        &self,
        rec: &IamRecord,
        replaces: Option<arca_types::time::Millis>,
    ) -> Result<()> {
        in_tx!(self, |tx| write::put_iam(&tx, rec, replaces))
    }

    async fn delete_iam(&self, account: &str, kind: IamKind, name: &str) -> Result<bool> {
        in_tx!(self, |tx| write::delete_iam(&tx, account, kind, name))
    }

    async fn list_iam(&self) -> Result<Vec<IamRecord>> {
        read::iam(&self.client().await?).await
    }

    async fn put_encryption_key(&self, key: &EncryptionKeyRecord) -> Result<()> {
        in_tx!(self, |tx| write::put_encryption_key(&tx, key))
    }

    async fn list_encryption_keys(&self) -> Result<Vec<EncryptionKeyRecord>> {
        read::encryption_keys(&self.client().await?).await
    }

    async fn wipe_secrets(&self) -> Result<()> {
        in_tx!(self, |tx| write::wipe_secrets(&tx))
    }

    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<LeaseGrant>> {
        in_tx!(self, |tx| write::acquire_lease(&tx, job, holder, ttl_ms))
    }

    async fn release_lease(&self, fence: &Fence) -> Result<()> {
        in_tx!(self, |tx| write::release_lease(&tx, fence))
    }

    async fn lease_holds(&self, fence: &Fence) -> Result<bool> {
        read::lease_holds(&self.client().await?, fence).await
    }

    fn watch_changes(&self, sink: Arc<dyn ChangeSink>) {
        let feed = changes::spawn(self.dialer.clone(), self.db.target.to_string(), sink);
        self.feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(feed);
    }
}
