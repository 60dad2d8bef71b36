//! Arca's domain: the Secrets Manager operations and the invariants they keep (staging
//! labels, idempotency tokens, deletion windows). It takes a `Store` and the key
//! hierarchy and knows neither HTTP nor SQL. Requests arrive as wire DTOs already parsed
//! by arca-api; answers leave as wire DTOs or an `ApiError` from the one error table.

pub mod access;
mod accessed;
mod answer;
pub mod audit;
pub mod authz;
mod cache;
mod decisions;
pub mod events;
mod feed;
pub mod filter;
pub mod iam;
pub mod keys;
mod locks;
mod ops;
pub mod password;
mod readlog;
pub mod replication;
pub mod rotation;
pub mod schedule;
pub mod stages;
pub mod sync;
mod validate;
mod value;

use arca_store::{Store, StoreError};
use arca_types::time::Clock;
use arca_types::ApiError;
use std::sync::Arc;

pub use answer::SecretValue;
pub use keys::KeyService;

/// The region (from the request's SigV4 scope) an operation runs in. Each region is its
/// own namespace of secrets.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub region: String,
    /// When set, the caller may act on these secrets and no other: the short-lived
    /// credentials a rotation command gets are scoped to its secret's ARN, an event
    /// target's command to its secret's name (in every region).
    pub only_secret: Option<SecretScope>,
    /// The caller's access key is bound to the replication link: it may deliver replicas
    /// and do nothing else.
    pub replication_link: bool,
    /// The call's audit record in the making (None: not audited, e.g. background work).
    pub call: Option<Arc<audit::Call>>,
    /// Background work under a lease: every write the call makes commits only while the
    /// lease holds.
    pub fence: Option<arca_store::Fence>,
    /// Who is calling and what for, from the API layer (None: the service's own
    /// background work, which acts with the service's authority).
    pub access: Option<Arc<authz::Access>>,
}

/// What a scoped caller may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretScope {
    /// One secret, by its full ARN.
    Arn(String),
    /// The secrets of this name, in any region (created ones included).
    Name(String),
}

impl SecretScope {
    pub fn allows(&self, arn: &str, name: &str) -> bool {
        match self {
            SecretScope::Arn(a) => a == arn,
            SecretScope::Name(n) => n == name,
        }
    }
}

/// The one operation a replication-bound key may call (see `RequestCtx::authorize`).
pub use arca_types::replication::DELIVER_TARGET as DELIVER_OPERATION;

impl RequestCtx {
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            only_secret: None,
            replication_link: false,
            call: None,
            fence: None,
            access: None,
        }
    }

    /// A context for a background job's writes under `fence`.
    pub fn fenced(region: impl Into<String>, fence: Option<arca_store::Fence>) -> Self {
        Self {
            fence,
            ..Self::new(region)
        }
    }

    /// The audit record of the call, if it is audited and no write has taken it yet.
    pub(crate) fn unrecorded_call(&self) -> Option<&Arc<audit::Call>> {
        self.call.as_ref().filter(|c| !c.recorded())
    }

    /// The authorization point every request passes before its operation runs: a key
    /// bound to replication may only deliver, and only such a key may. (Scoped rotation
    /// keys are further limited to their one secret where the secret is looked up.)
    pub fn authorize(&self, operation: &str) -> Result<(), ApiError> {
        if self.replication_link != (operation == DELIVER_OPERATION) {
            return Err(ApiError::access_denied());
        }
        Ok(())
    }
}

/// The Secrets Manager service: one per process, shared by every request.
pub struct Arca {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Arc<KeyService>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) account: String,
    /// Wakes the rotation scheduler when RotateSecret starts a rotation.
    rotation_wakeup: Arc<tokio::sync::Notify>,
    /// Wakes the replication delivery when a write queued outbox entries.
    replication_wakeup: Arc<tokio::sync::Notify>,
    /// How long a replica region may stay behind before it shows as Failed.
    replication_failed_after: std::sync::atomic::AtomicI64,
    /// Serializes writes to one secret within this process.
    pub(crate) write_locks: locks::StripedLocks,
    pub(crate) cache: Arc<cache::ReadCache>,
    /// The read path's bookkeeping: read audit records and access dates.
    pub(crate) reads: readlog::ReadLog,
    audit_enabled: std::sync::atomic::AtomicBool,
    /// The enabled rules and their targets, matched against every write's records.
    pub(crate) routes: Arc<events::routes::RouteTable>,
    /// Wakes the event delivery worker when a write queued deliveries.
    pub(crate) delivery_wakeup: Arc<tokio::sync::Notify>,
    /// The sync jobs this process runs, once the server has started them.
    sync: std::sync::OnceLock<Arc<dyn sync::SyncControl>>,
    /// Resource policies compiled once per distinct text.
    pub(crate) policies: authz::PolicyCache,
    /// IAM users, roles and managed policies, compiled.
    pub(crate) iam: iam::Directory,
    /// The identity of each live role session, so that its decisions are remembered
    /// across its requests (see `session_identity`).
    pub(crate) sessions: iam::sts::SessionIdentities,
}

impl Arca {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyService>,
        clock: Arc<dyn Clock>,
        account: String,
    ) -> Self {
        let cache = Arc::new(cache::ReadCache::new(cache::DEFAULT_CAPACITY));
        let routes = Arc::new(events::routes::RouteTable::new());
        let delivery_wakeup = Arc::new(tokio::sync::Notify::new());
        let reads = readlog::ReadLog::new(
            store.clone(),
            clock.clone(),
            account.clone(),
            readlog::DEFAULT_QUEUE,
            (routes.clone(), delivery_wakeup.clone()),
            cache.clone(),
        );
        Self {
            keys,
            clock,
            account,
            rotation_wakeup: Arc::new(tokio::sync::Notify::new()),
            replication_wakeup: Arc::new(tokio::sync::Notify::new()),
            replication_failed_after: std::sync::atomic::AtomicI64::new(
                replication::DEFAULT_FAILED_AFTER_MS,
            ),
            write_locks: locks::StripedLocks::new(),
            cache,
            reads,
            audit_enabled: std::sync::atomic::AtomicBool::new(true),
            routes,
            delivery_wakeup,
            sync: std::sync::OnceLock::new(),
            policies: Default::default(),
            iam: iam::Directory::new(store.clone()),
            sessions: Default::default(),
            store,
        }
    }

    /// Replaces the read log's queue with one of `capacity` items (before serving).
    pub fn set_audit_queue(&mut self, capacity: usize) {
        self.reads = readlog::ReadLog::new(
            self.store.clone(),
            self.clock.clone(),
            self.account.clone(),
            capacity,
            (self.routes.clone(), self.delivery_wakeup.clone()),
            self.cache.clone(),
        );
    }

    /// Turns the audit trail on or off (on by default). Off, calls leave no record.
    pub fn set_audit_enabled(&self, on: bool) {
        self.audit_enabled
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn audit_enabled(&self) -> bool {
        self.audit_enabled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a call that no write recorded (a read, a refusal, a write that changed
    /// nothing), once its answer is known: `error` is what it failed with.
    pub async fn finish_call(&self, ctx: &RequestCtx, error: Option<&ApiError>) {
        let Some(call) = ctx.unrecorded_call() else {
            return;
        };
        self.record_call(call.clone(), error).await;
    }

    /// Records `call`, refused before a context existed (authentication) or finished.
    pub async fn record_call(&self, call: Arc<audit::Call>, error: Option<&ApiError>) {
        let response = if call.read_only || error.is_some() {
            None
        } else {
            call.found_arn()
                .map(|arn| serde_json::json!({ "arn": arn }))
        };
        self.reads
            .record(audit::batch::Pending {
                call,
                response,
                error: error.cloned(),
            })
            .await;
    }

    /// What the audit queue has done since start.
    pub fn audit_stats(&self) -> audit::AuditStats {
        self.reads.stats()
    }

    /// Waits until every audit record queued so far is written (at shutdown, and for
    /// tests that read the trail).
    pub async fn flush_audit(&self) {
        self.reads.flush_calls().await;
    }

    /// What the rotation scheduler waits on besides its timer.
    pub fn rotation_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.rotation_wakeup.clone()
    }

    pub(crate) fn wake_rotation(&self) {
        self.rotation_wakeup.notify_one();
    }

    /// What the replication delivery waits on besides its timer.
    pub fn replication_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.replication_wakeup.clone()
    }

    pub(crate) fn wake_replication(&self) {
        self.replication_wakeup.notify_one();
    }

    /// Sets how long a replica region may stay behind (its deliveries failing) before
    /// DescribeSecret shows it as Failed.
    pub fn set_replication_failed_after(&self, d: std::time::Duration) {
        self.replication_failed_after.store(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub(crate) fn replication_failed_after(&self) -> i64 {
        self.replication_failed_after
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Rereads the encryption keys and their policies (the admin CLI may have changed
    /// them in the store).
    pub async fn reload_keys(&self) -> Result<(), keys::KeyServiceError> {
        self.keys.reload().await
    }

    /// The IAM directory (users, roles, policies) callers are resolved through.
    pub fn iam(&self) -> &iam::Directory {
        &self.iam
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Removes every secret and event (the `--dev` reset), and forgets cached reads.
    pub async fn wipe_secrets(&self) -> Result<(), ApiError> {
        let result = self.store.wipe_secrets().await.map_err(store_err);
        self.cache.clear();
        result
    }

    /// Writes the access dates still gathering for their batch (at shutdown, so a clean
    /// stop loses none).
    pub async fn flush_access_dates(&self) {
        self.reads.flush_touches().await;
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }
}

/// Store failures are logged here, where they are handled, and reach the client only as
/// AWS's opaque InternalServiceError.
pub(crate) fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store operation failed");
    ApiError::internal()
}
