//! Records the store keeps. Plain data: no behaviour beyond small helpers, no plaintext.

use arca_types::time::Millis;

/// One secret with its tags and the metadata of every version it still keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRecord {
    pub region: String,
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    /// The encryption key the secret's new versions are sealed under, as the user named
    /// it (None = the default key `aws/secretsmanager`).
    pub kms_key_id: Option<String>,
    pub secret_type: Option<String>,
    pub owning_service: Option<String>,
    pub primary_region: Option<String>,
    pub created_at: Millis,
    pub last_changed_at: Millis,
    /// UTC day start of the last read, if ever read.
    pub last_accessed_day: Option<Millis>,
    /// When DeleteSecret was called (DescribeSecret's DeletedDate), if scheduled.
    pub deleted_at: Option<Millis>,
    /// When the background purge removes the secret for good, if scheduled.
    pub purge_at: Option<Millis>,
    /// When the rotation worker must next look at this secret: a scheduled rotation, a
    /// retry after a failure, or the expiry of a claimed attempt's lease. None = nothing
    /// to do. Written like any other metadata field (so a claim is an `update_secret`
    /// with a revision check); `Store::due_for_rotation` finds the due ones.
    pub rotation_due_at: Option<Millis>,
    /// Rotation and replication configuration, owned by later features as a JSON
    /// document so adding them needs no schema change here.
    pub extra: serde_json::Value,
    /// Tags in the order they were added.
    pub tags: Vec<(String, String)>,
    /// Version metadata, oldest first.
    pub versions: Vec<VersionRecord>,
    /// Optimistic-concurrency counter; backends set it, core only compares.
    pub revision: i64,
}

impl SecretRecord {
    /// Moves the secret's and version `version_id`'s access day forward to `day` (never
    /// back: reads may report days out of order).
    pub fn mark_accessed(&mut self, version_id: &str, day: Millis) {
        self.last_accessed_day = self.last_accessed_day.max(Some(day));
        if let Some(v) = self
            .versions
            .iter_mut()
            .find(|v| v.version_id == version_id)
        {
            v.last_accessed_day = v.last_accessed_day.max(Some(day));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub version_id: String,
    pub stages: Vec<String>,
    pub created_at: Millis,
    pub last_accessed_day: Option<Millis>,
    /// Which key-encryption key sealed this version (its key id, or "DEFAULT").
    pub kms_key_ids: Vec<String>,
    /// Digest of the plaintext keyed per secret (HMAC), so idempotency checks compare
    /// values without decrypting; never the value itself.
    pub value_digest: Vec<u8>,
    /// Whether the version holds a value (CreateSecret without a value creates none).
    pub has_value: bool,
}

/// One read to record: `arn` and its version `version_id` were read on `day` (a UTC day
/// start).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessTouch {
    pub arn: String,
    pub version_id: String,
    pub day: Millis,
}

/// What the read path gathered for one write (`Store::append_reads`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub audit: Vec<crate::AuditEntry>,
    pub deliveries: Vec<crate::NewDelivery>,
    pub touches: Vec<AccessTouch>,
}

impl ReadBatch {
    pub fn is_empty(&self) -> bool {
        self.audit.is_empty() && self.deliveries.is_empty() && self.touches.is_empty()
    }
}

/// A secret whose recovery window has ended, as `Store::due_for_purge` lists it: the
/// deletion date travels with it so that the purge deletes only what is still due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PurgeDue {
    pub region: String,
    pub arn: String,
    pub purge_at: Millis,
}

/// A sealed secret value: an opaque envelope from arca-crypto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue(pub Vec<u8>);

/// A version being added, with its sealed value.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub version: VersionRecord,
    pub sealed: SealedValue,
}

/// A set of changes to one secret, applied atomically with a revision check.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretChange {
    /// The secret's new metadata and tags (region and arn identify it and never change;
    /// `versions` in it are ignored: use the fields below).
    pub secret: SecretRecord,
    pub expected_revision: i64,
    pub new_versions: Vec<NewVersion>,
    /// Existing versions whose stage list changed: (version_id, new stages).
    pub restaged: Vec<(String, Vec<String>)>,
    /// Versions to delete with their values.
    pub removed_versions: Vec<String>,
    /// Events the change causes, appended in the same transaction (their ids assigned by
    /// the store): a committed change always has its events, a refused one none.
    pub events: Vec<EventRecord>,
    /// Replication work the change causes, queued in the same transaction (ids assigned
    /// by the store), for the same reason.
    pub outbox: Vec<OutboxEntry>,
    /// The audit record of the call that made the change (chained by the store), for
    /// the same reason.
    pub audit: Vec<crate::AuditEntry>,
    /// The event deliveries the change's events owe, for the same reason.
    pub deliveries: Vec<crate::NewDelivery>,
    /// A background job's write: committed only while the job's lease holds.
    pub fence: Option<crate::Fence>,
}

/// The durable work a secret's creation (or deletion) causes, committed with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub outbox: Vec<OutboxEntry>,
    pub audit: Vec<crate::AuditEntry>,
    pub deliveries: Vec<crate::NewDelivery>,
    /// A background job's write (the purge): committed only while the job's lease holds.
    pub fence: Option<crate::Fence>,
}

/// What a replication outbox entry asks the delivery worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// Bring the replica in `target_region` up to the primary's current state.
    Sync,
    /// Delete the replica in `target_region` (the region left the replication).
    Remove,
    /// Tell the primary in `target_region` that its replica `arn` (in `source_region`)
    /// was promoted to a standalone secret, so it stops replicating to it.
    Promoted,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Sync => "sync",
            OutboxKind::Remove => "remove",
            OutboxKind::Promoted => "promoted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sync" => OutboxKind::Sync,
            "remove" => OutboxKind::Remove,
            "promoted" => OutboxKind::Promoted,
            _ => return None,
        })
    }
}

/// One unit of replication work, durable from the commit of the change that caused it
/// until the worker has delivered it. Holds names and ids only, never secret material:
/// the worker reads the current state when it delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Assigned by the store, strictly increasing in commit order.
    pub id: i64,
    pub created_at: Millis,
    pub kind: OutboxKind,
    /// The region of the secret whose change this is.
    pub source_region: String,
    /// The primary's ARN (for `Promoted` too: the primary, in `target_region`, whose
    /// replica in `source_region` was promoted).
    pub arn: String,
    /// The secret's name (the replica has the primary's name).
    pub name: String,
    pub target_region: String,
    /// Versions the change created: the delivery sends their values (others the replica
    /// already has, or asks for).
    pub version_ids: Vec<String>,
    /// The secret's revision once the change committed (0 where it does not apply): a
    /// copy of the record at least this new is a state the delivery may send.
    pub revision: i64,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Not to be tried again before this time (backoff after a failure).
    pub next_attempt_at: Millis,
    /// Why the last attempt failed (log-safe).
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// A new entry, due now.
    pub fn new(
        kind: OutboxKind,
        source_region: &str,
        arn: &str,
        name: &str,
        target_region: &str,
        now: Millis,
    ) -> Self {
        Self {
            id: 0,
            created_at: now,
            kind,
            source_region: source_region.to_owned(),
            arn: arn.to_owned(),
            name: name.to_owned(),
            target_region: target_region.to_owned(),
            version_ids: Vec::new(),
            revision: 0,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
        }
    }
}

/// The scope an access key is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyScope {
    /// The Secrets Manager API, in full.
    #[default]
    Full,
    /// Only the replication link between deployments: another deployment delivers its
    /// replicas with it, and it can do nothing else.
    Replication,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Full => "full",
            KeyScope::Replication => "replication",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "full" => KeyScope::Full,
            "replication" => KeyScope::Replication,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    CreatedDate,
    LastAccessedDate,
    LastChangedDate,
    Name,
}

/// The position after which the next page starts: the last item's sort value and ARN
/// (the tie-breaker), so pages stay correct while secrets come and go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub sort_value: CursorValue,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorValue {
    Time(Option<Millis>),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub sort_by: SortBy,
    pub descending: bool,
    pub after: Option<ListCursor>,
    pub limit: usize,
    pub include_planned_deletion: bool,
    /// Hint: if set, only secrets whose name starts with one of these can match
    /// (backends may use an index; the predicate still decides).
    pub name_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    /// The secret access key, sealed under the root key by arca-crypto.
    pub sealed_secret: Vec<u8>,
    pub description: Option<String>,
    pub created_at: Millis,
    pub enabled: bool,
    pub scope: KeyScope,
    /// The IAM user the key belongs to; `None` for the keys that predate principals,
    /// which stand for the default account's administrator.
    pub owner: Option<crate::KeyOwner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionKeyRecord {
    /// A UUID, as in KMS.
    pub key_id: String,
    /// e.g. "alias/aws/secretsmanager" or "alias/team-a".
    pub alias: Option<String>,
    pub region: String,
    /// Key material wrapped by the root key.
    pub wrapped: Vec<u8>,
    pub created_at: Millis,
    /// The key policy (JSON), as KMS keeps one per key; `None` for keys made before
    /// key policies existed, which behave as KMS's default policy (the account's
    /// identity policies decide).
    pub policy: Option<String>,
}

/// Something that happened to a secret or the server (a rotation started, succeeded,
/// failed, was cancelled, ...), kept in an append-only log. Never holds secret material.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Assigned by the store on append, strictly increasing and never reused, so a
    /// reader can resume after the last id it saw.
    pub id: i64,
    pub time: Millis,
    /// What happened, e.g. "RotationStarted".
    pub name: String,
    pub region: String,
    pub secret_arn: Option<String>,
    pub version_id: Option<String>,
    /// The rotation step involved, if any (e.g. "setSecret").
    pub step: Option<String>,
    /// A log-safe error message, for failures.
    pub error: Option<String>,
    /// Further event-specific fields, owned by the producer.
    pub detail: serde_json::Value,
}

/// One page of the event log: events with `id > after_id`, ascending by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub after_id: i64,
    pub limit: usize,
    /// Only this secret's events, if set.
    pub secret_arn: Option<String>,
}

/// A sync job added through `arca sync add` (jobs of the config file are not stored).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncJobRecord {
    /// The job's name; the key.
    pub name: String,
    /// The job's configuration, owned by the sync feature as a JSON document. It names
    /// credential files, never holds credentials.
    pub spec: serde_json::Value,
    pub created_at: Millis,
}

/// The operator's binding of a rotation-function ARN to what runs it (an HTTP endpoint,
/// a local command or a built-in rotator, described by `spec`).
#[derive(Debug, Clone, PartialEq)]
pub struct RotationFunctionRecord {
    /// The function's ARN (`arn:aws:lambda:<region>:<account>:function:<name>`); the key.
    pub arn: String,
    /// How to invoke the function, owned by the rotation feature as a JSON document.
    pub spec: serde_json::Value,
    /// e.g. an HMAC signing secret, sealed under the root key by the caller.
    pub sealed_secret: Option<Vec<u8>>,
    pub created_at: Millis,
}
