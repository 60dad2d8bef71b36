//! The storage seam: the `Store` trait and the records it keeps. Backends live in their
//! own crates (`arca-store-sqlite`).
//! Backends store only what arca-core hands them; secret values arrive already sealed
//! (ciphertext from arca-crypto), so no backend ever sees plaintext. Every backend must
//! pass the one conformance suite in `conformance`.

mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
mod iam;
mod lease;
mod model;
pub mod names;
mod rules;

pub use audit::*;
pub use iam::*;
pub use lease::*;
pub use model::*;
pub use rules::*;

use arca_types::time::Millis;
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A secret with this name already exists in the region (including one scheduled
    /// for deletion).
    #[error("a secret with this name already exists")]
    NameTaken,
    /// The record changed since it was read (optimistic concurrency); reread and retry.
    #[error("the record changed concurrently")]
    Conflict,
    #[error("record not found")]
    NotFound,
    /// A job's write carried a [`Fence`] whose lease is no longer held (expired, or
    /// granted to another holder): nothing was written.
    #[error("the job's lease was lost")]
    LeaseLost,
    /// The backend failed (I/O, corruption, ...). The message is for the operator's log,
    /// never for a client, and never contains secret material.
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A predicate applied to each candidate secret in list order (arca-core owns the
/// ListSecrets filter semantics; backends only narrow candidates with the hints in
/// `ListQuery`).
/// How a lookup names a secret.
#[derive(Debug, Clone, Copy)]
pub enum SecretKey<'a> {
    Name(&'a str),
    Arn(&'a str),
}

pub type SecretPredicate<'a> = &'a (dyn Fn(&SecretRecord) -> bool + Send + Sync);

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ----- secrets -----

    /// Finds a secret (with its tags and version metadata, without values) by exact name.
    async fn find_by_name(&self, region: &str, name: &str) -> Result<Option<SecretRecord>>;
    /// Finds a secret by its exact full ARN.
    async fn find_by_arn(&self, region: &str, arn: &str) -> Result<Option<SecretRecord>>;

    /// As `find_by_name` or `find_by_arn`, with the sealed value of the AWSCURRENT version
    /// where the backend can fetch it in the same query (the read path's cache miss: one
    /// round trip instead of two). `None` beside a record only means "not fetched".
    async fn find_with_current(
        &self,
        region: &str,
        key: SecretKey<'_>,
    ) -> Result<Option<(SecretRecord, Option<SealedValue>)>> {
        let found = match key {
            SecretKey::Name(name) => self.find_by_name(region, name).await?,
            SecretKey::Arn(arn) => self.find_by_arn(region, arn).await?,
        };
        Ok(found.map(|r| (r, None)))
    }

    /// Inserts a new secret with `revision = 1`, and its first version if any.
    /// Fails with `NameTaken` if the name exists in the region.
    async fn create_secret(&self, secret: &SecretRecord, first: Option<&NewVersion>) -> Result<()> {
        self.create_secret_with(
            secret,
            first.map(std::slice::from_ref).unwrap_or_default(),
            &Effects::default(),
        )
        .await
    }

    /// `create_secret` with any number of versions (a replica arrives with all of its
    /// primary's), and the work the creation causes (`effects`) in the same transaction:
    /// a secret created with replicas is never committed without its replication work,
    /// nor a CreateSecret call without its audit record.
    async fn create_secret_with(
        &self,
        secret: &SecretRecord,
        versions: &[NewVersion],
        effects: &Effects,
    ) -> Result<()>;

    /// Applies a change to one secret atomically, if its stored revision still equals
    /// `change.expected_revision` (else `Conflict`); the stored revision becomes
    /// `expected_revision + 1`. All of it is applied, or none of it.
    async fn update_secret(&self, change: &SecretChange) -> Result<()>;

    /// Deletes a secret and all of its versions and tags for good, with the work the
    /// deletion causes (`effects`: its audit records and event deliveries) in the same
    /// transaction. Missing is not an error (the effects are still written).
    async fn delete_secret(&self, region: &str, arn: &str, effects: &Effects) -> Result<()>;

    /// The sealed value of one version, as stored.
    async fn get_sealed_value(&self, arn: &str, version_id: &str) -> Result<Option<SealedValue>>;

    /// One page of secrets in `query`'s order, starting strictly after `query.after`,
    /// keeping only those `pred` accepts, at most `query.limit` of them. `pred` sees each
    /// candidate's metadata and tags but no versions; the returned records carry only their
    /// labelled versions (deprecated ones are omitted: listing never shows them, and a
    /// secret can have a hundred).
    async fn list_secrets(
        &self,
        region: &str,
        query: &ListQuery,
        pred: SecretPredicate<'_>,
    ) -> Result<Vec<SecretRecord>>;

    /// Secrets (across regions) whose scheduled deletion date is at or before `now`.
    async fn due_for_purge(&self, now: Millis, limit: usize) -> Result<Vec<PurgeDue>>;

    /// Deletes a secret for good, as `delete_secret` does, but only if it is still
    /// scheduled for deletion at `purge_at`: a RestoreSecret (or a new DeleteSecret) that
    /// committed after `due_for_purge` listed it wins. Returns whether it was deleted.
    /// `effects` commit with the deletion, and only if it happens.
    async fn purge_secret(
        &self,
        region: &str,
        arn: &str,
        purge_at: Millis,
        effects: &Effects,
    ) -> Result<bool>;

    /// Secrets (any region) whose rotation_due_at <= now, earliest first: (region, arn).
    async fn due_for_rotation(&self, now: Millis, limit: usize) -> Result<Vec<(String, String)>>;

    /// The time by the clock that every node sharing this store agrees on (the database
    /// server's), for leases kept in rows the nodes share; `None` when one process serves
    /// the store (SQLite), whose own clock is then the only one.
    async fn shared_clock(&self) -> Result<Option<Millis>> {
        Ok(None)
    }

    // ----- events -----

    /// Appends an event that no write causes; returns its id (strictly increasing).
    /// `event.id` is ignored. Durable once this returns, like every other write. A write's
    /// own events go in [`SecretChange::events`], so they commit with it or not at all.
    async fn append_event(&self, event: &EventRecord) -> Result<i64>;
    /// Events with id > query.after_id, ascending, at most query.limit, optionally only one secret's.
    /// Ids become visible in increasing order (an event never appears below an id a reader
    /// has already seen), so a consumer may resume from the last id it processed.
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>>;

    // ----- audit trail -----

    /// Writes what the read path gathered ([`ReadBatch`]) in one durable write: audit
    /// records that no write carries (reads, refused calls), in order, each chained to the
    /// one before (see [`chain_hash`]); the event deliveries those records' events owe;
    /// and LastAccessedDate touches (each touch's secret and version were read on its day;
    /// dates only move forward, secrets or versions that no longer exist are skipped, and
    /// `revision` does not change: access dates are not a concurrent-write conflict).
    /// A write's own record goes in [`SecretChange::audit`] (or [`Effects::audit`]), so it
    /// commits with the write or not at all. Shared, so that a failed write is retried
    /// without copying the batch.
    async fn append_reads(&self, batch: Arc<ReadBatch>) -> Result<()>;
    /// One page of records, as `query` asks (see [`AuditQuery`]). Seqs become visible in
    /// increasing order, so a follower may resume after the last seq it saw.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>>;

    // ----- replication outbox -----

    /// Entries due at `now` (next_attempt_at <= now), in id order, at most `limit`.
    async fn due_outbox(&self, now: Millis, limit: usize) -> Result<Vec<OutboxEntry>>;
    /// The pending entries for one secret (by ARN) that failed at least once (attempts >
    /// 0), in id order: what DescribeSecret reads to tell a region that is behind. Fresh
    /// entries are left out: they are delivered within moments, and keeping them findable
    /// by secret would cost every replicated write an index update.
    async fn outbox_for(&self, arn: &str) -> Result<Vec<OutboxEntry>>;
    /// How many entries are pending, in all.
    async fn outbox_len(&self) -> Result<u64>;
    /// Removes delivered (or obsolete) entries. Missing ids are not an error. With a
    /// `fence`, only while its lease holds (else `LeaseLost`, nothing removed).
    async fn complete_outbox(&self, ids: &[i64], fence: Option<&Fence>) -> Result<()>;
    /// Records a failed attempt on each entry: attempts + 1, the error, the next time.
    /// `fence` as for `complete_outbox`.
    async fn defer_outbox(
        &self,
        ids: &[i64],
        error: &str,
        next_attempt_at: Millis,
        fence: Option<&Fence>,
    ) -> Result<()>;

    // ----- event rules, targets, deliveries -----

    /// Creates or replaces a rule (keyed by region and name); its targets are kept. The
    /// rule-changing calls take the call's audit records, committed with the change.
    async fn put_rule(&self, rule: &RuleRecord, audit: Vec<AuditEntry>) -> Result<()>;
    async fn get_rule(&self, region: &str, name: &str) -> Result<Option<RuleRecord>>;
    /// Every rule, ordered by (region, name): few enough to hold in memory.
    async fn list_rules(&self) -> Result<Vec<RuleRecord>>;
    /// Deletes a rule with its targets and pending deliveries (dead letters are kept).
    /// Returns whether it existed.
    async fn delete_rule(&self, region: &str, name: &str, audit: Vec<AuditEntry>) -> Result<bool>;
    /// Creates or replaces targets of one rule (keyed by id). `NotFound` if the rule
    /// does not exist.
    async fn put_targets(&self, targets: &[TargetRecord], audit: Vec<AuditEntry>) -> Result<()>;
    /// Removes targets by id (and their pending deliveries); missing ids are not an error.
    async fn remove_targets(
        &self,
        region: &str,
        rule: &str,
        ids: &[String],
        audit: Vec<AuditEntry>,
    ) -> Result<()>;
    /// Every target, ordered by (region, rule, id).
    async fn list_targets(&self) -> Result<Vec<TargetRecord>>;
    /// The pending delivery at the head of each (region, rule, target) whose next attempt
    /// is due at `now`, in seq order, at most `limit`: a target never gets a delivery
    /// before an older one of its own is done.
    async fn due_deliveries(&self, now: Millis, limit: usize) -> Result<Vec<DeliveryRecord>>;
    /// Records an attempt's outcome, with its audit records in the same transaction.
    /// `NotFound` if the delivery is gone (its rule or target was removed meanwhile);
    /// `LeaseLost` if `fence`'s lease no longer holds.
    async fn finish_delivery(
        &self,
        seq: i64,
        outcome: &DeliveryOutcome,
        audit: Vec<AuditEntry>,
        fence: Option<&Fence>,
    ) -> Result<()>;
    /// Deliveries in `state`, in seq order, after `after_seq`, at most `limit`.
    async fn list_deliveries(
        &self,
        state: DeliveryState,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>>;
    /// Makes a dead letter pending again, due at `now`, with its attempts reset. Returns
    /// whether it was a dead letter.
    async fn replay_delivery(&self, seq: i64, now: Millis) -> Result<bool>;

    // ----- rotation functions -----

    /// Rotation-function bindings (operator configuration), keyed by function ARN; put = upsert.
    async fn put_rotation_function(&self, f: &RotationFunctionRecord) -> Result<()>;
    /// Every binding, ordered by ARN.
    async fn list_rotation_functions(&self) -> Result<Vec<RotationFunctionRecord>>;
    /// Removes a binding. Missing is not an error.
    async fn delete_rotation_function(&self, arn: &str) -> Result<()>;

    // ----- sync jobs -----

    /// Sync jobs added at run time (operator configuration), keyed by name; put = upsert.
    async fn put_sync_job(&self, job: &SyncJobRecord) -> Result<()>;
    /// Every stored job, ordered by name.
    async fn list_sync_jobs(&self) -> Result<Vec<SyncJobRecord>>;
    /// Removes a job; returns whether it existed.
    async fn delete_sync_job(&self, name: &str) -> Result<bool>;

    // ----- access keys (SigV4 credentials) -----

    async fn put_access_key(&self, key: &AccessKeyRecord) -> Result<()>;
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>>;
    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>>;
    /// Removes an access key; returns whether it existed.
    async fn delete_access_key(&self, access_key_id: &str) -> Result<bool>;

    // ----- IAM principals and policies -----

    /// Stores one IAM entity: with `replaces` None, a new one (`NameTaken` if (account,
    /// kind, name) exists); with `Some(updated_at)`, a replacement of the stored entity
    /// whose `updated_at` is that (`NotFound` if missing, `Conflict` if it changed
    /// since: a read-modify-write on another node never loses this one's change; the
    /// stored `created_at` is kept).
    async fn put_iam(&self, rec: &IamRecord, replaces: Option<Millis>) -> Result<()>;
    /// Deletes one entity; returns whether it existed. A user's access keys are not
    /// touched (arca-core refuses to delete a user that still has keys, as IAM does).
    async fn delete_iam(&self, account: &str, kind: IamKind, name: &str) -> Result<bool>;
    /// Every entity, ordered by (account, kind as its text, name): few enough to hold
    /// in memory.
    async fn list_iam(&self) -> Result<Vec<IamRecord>>;

    // ----- key-encryption keys (wrapped by the root key) -----

    async fn put_encryption_key(&self, key: &EncryptionKeyRecord) -> Result<()>;
    async fn list_encryption_keys(&self) -> Result<Vec<EncryptionKeyRecord>>;

    // ----- leases and the change feed (several nodes on one database) -----

    /// Grants `job`'s lease to `holder` for `ttl_ms` by the store's clock, renewing it
    /// (same token) when `holder` holds it already; a new grant (first, or taking over
    /// an expired or released lease) gets a token above every earlier one. `None` while
    /// another holder's lease is unexpired.
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<LeaseGrant>>;
    /// Gives a lease up, if `fence` still names its current grant.
    async fn release_lease(&self, fence: &Fence) -> Result<()>;
    /// Whether `fence` still names its lease's current, unexpired grant, by the store's
    /// clock: what a job checks before a write that the store cannot fence itself (a
    /// call to another endpoint).
    async fn lease_holds(&self, fence: &Fence) -> Result<bool>;
    /// Starts delivering the changes committed through this database (by any node) to
    /// `sink`. Backends that serve one process (SQLite) have no other writers and
    /// deliver nothing: that process's own writes update its caches directly.
    fn watch_changes(&self, sink: std::sync::Arc<dyn ChangeSink>) {
        let _ = sink;
    }

    // ----- dev only -----

    /// Removes every secret, version, tag and event: all state except access keys,
    /// encryption keys and rotation-function bindings. Used by `--dev` resets.
    async fn wipe_secrets(&self) -> Result<()>;
}
