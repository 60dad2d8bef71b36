//! Multi-Region secrets: which regions a primary replicates to and how each is doing
//! (kept in the primary's record), which primary a replica copies (kept in the
//! replica's), and the outbox entries a client's write queues with it. The operations
//! live in `ops`, the receiving side of a delivery in `apply`, the sending side's
//! bookkeeping in `source`.

mod apply;
mod ops;
mod source;

use arca_store::{OutboxEntry, OutboxKind, SecretChange, SecretRecord};
use arca_types::time::{to_wire, Millis};
use arca_types::wire::ReplicationStatus;
use serde::{Deserialize, Serialize};

pub(crate) use ops::{add_replicas, wanted_regions};
pub use source::Delivered;

/// What ReplicationStatus shows as a replica's key when none was named (recorded: the AWS
/// CLI's ReplicateSecretToRegions example).
const DEFAULT_KEY_ALIAS: &str = "alias/aws/secretsmanager";
/// StatusMessage of a replica that is in sync (recorded: the AWS CLI's DescribeSecret
/// example).
const IN_SYNC_MESSAGE: &str = "Replication succeeded";
/// StatusMessage of a region whose secret of the same name is not a replica (model: the
/// documentation of ReplicationStatusType.StatusMessage).
pub(crate) const NAME_EXISTS_MESSAGE: &str = "Secret with this name already exists in this region";

/// Where the record keeps its replication state (in `extra`, so no schema change).
const REPLICAS: &str = "replicas";
const REPLICA_OF: &str = "replica_of";
const PROMOTED_FROM: &str = "promoted_from";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    InProgress,
    InSync,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::InSync => "InSync",
            Status::Failed => "Failed",
        }
    }
}

/// One replica region of a primary, as the primary's record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Replica {
    pub region: String,
    pub kms_key_id: Option<String>,
    /// Replace a standalone secret of the same name there.
    #[serde(default)]
    pub force: bool,
    pub status: Status,
    pub message: Option<String>,
    pub last_accessed_day: Option<Millis>,
}

/// A replica's link to its primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplicaOf {
    pub primary_arn: String,
    /// The primary's revision the replica was last brought to.
    pub revision: i64,
}

fn get<T: for<'de> Deserialize<'de>>(s: &SecretRecord, key: &str) -> Option<T> {
    s.extra
        .get(key)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn set<T: Serialize>(s: &mut SecretRecord, key: &str, value: Option<&T>) {
    if !s.extra.is_object() {
        s.extra = serde_json::json!({});
    }
    let Some(obj) = s.extra.as_object_mut() else {
        return;
    };
    match value.and_then(|v| serde_json::to_value(v).ok()) {
        Some(v) => {
            obj.insert(key.to_owned(), v);
        }
        None => {
            obj.remove(key);
        }
    }
}

/// The replica regions of a primary (empty for a standalone secret or a replica).
pub(crate) fn replicas(s: &SecretRecord) -> Vec<Replica> {
    get(s, REPLICAS).unwrap_or_default()
}

pub(crate) fn set_replicas(s: &mut SecretRecord, list: &[Replica]) {
    set(s, REPLICAS, (!list.is_empty()).then_some(&list));
    // A primary shows its own region as PrimaryRegion while it has replicas (recorded:
    // the AWS CLI's DescribeSecret example; real AWS lists PrimaryRegion only for secrets
    // with replication, rebuy-de/aws-nuke#1127).
    s.primary_region = (!list.is_empty()).then(|| s.region.clone());
}

pub(crate) fn replica_of(s: &SecretRecord) -> Option<ReplicaOf> {
    get(s, REPLICA_OF)
}

pub(crate) fn set_replica_of(s: &mut SecretRecord, of: Option<&ReplicaOf>) {
    set(s, REPLICA_OF, of);
}

/// The primary a promoted secret was a replica of.
pub(crate) fn promoted_from(s: &SecretRecord) -> Option<String> {
    get(s, PROMOTED_FROM)
}

pub(crate) fn set_promoted_from(s: &mut SecretRecord, primary_arn: Option<&String>) {
    set(s, PROMOTED_FROM, primary_arn);
}

/// Whether `s` is a replica (read-only in its region).
pub(crate) fn is_replica(s: &SecretRecord) -> bool {
    replica_of(s).is_some()
}

/// Queues a `Sync` for every replica that is not Failed, carrying the versions the
/// change creates. Called for every client write, inside `modify`, so the entries
/// commit with the change.
pub(crate) fn enqueue_syncs(change: &mut SecretChange, now: Millis) {
    let s = &change.secret;
    let new_ids: Vec<String> = change
        .new_versions
        .iter()
        .map(|n| n.version.version_id.clone())
        .collect();
    for r in replicas(s) {
        if r.status == Status::Failed {
            continue;
        }
        let mut e = OutboxEntry::new(OutboxKind::Sync, &s.region, &s.arn, &s.name, &r.region, now);
        e.version_ids = new_ids.clone();
        // A create's record has revision 0 in hand and 1 once stored.
        e.revision = change.expected_revision + 1;
        change.outbox.push(e);
    }
}

/// DeleteSecret's rule: a replica is deleted from its primary's region (by removing the
/// region), and a primary only once it has no replicas (recorded AWS texts).
pub(crate) fn ensure_deletable(s: &SecretRecord) -> Result<(), arca_types::ApiError> {
    if is_replica(s) {
        return Err(arca_types::ApiError::replica_write());
    }
    let list = replicas(s);
    if !list.is_empty() {
        let regions: Vec<&str> = list.iter().map(|r| r.region.as_str()).collect();
        return Err(arca_types::ApiError::delete_primary_with_replicas(
            &s.arn, &regions,
        ));
    }
    Ok(())
}

/// `enqueue_syncs` for a secret being created with replicas (its first version, if any).
pub(crate) fn enqueue_syncs_on_create(
    s: &SecretRecord,
    first: Option<&arca_store::NewVersion>,
    now: Millis,
    out: &mut Vec<OutboxEntry>,
) {
    let mut change = crate::ops::metadata_change(s.clone());
    change.new_versions.extend(first.cloned());
    enqueue_syncs(&mut change, now);
    out.append(&mut change.outbox);
}

/// How long a region may stay behind (deliveries failing) before its status turns from
/// InProgress to Failed.
pub const DEFAULT_FAILED_AFTER_MS: Millis = 5 * 60 * 1000;

/// ReplicationStatus as DescribeSecret shows it: what the record says, corrected by the
/// outbox (`pending`: this secret's entries whose delivery failed at least once and waits
/// to be retried). A region with such entries is InProgress, and Failed once the oldest
/// has waited `failed_after`, with the last attempt's error.
pub(crate) fn status_list(
    s: &SecretRecord,
    pending: &[OutboxEntry],
    now: Millis,
    failed_after: Millis,
) -> Vec<ReplicationStatus> {
    replicas(s)
        .into_iter()
        .map(|r| {
            let behind: Vec<&OutboxEntry> = pending
                .iter()
                .filter(|e| e.kind == OutboxKind::Sync && e.target_region == r.region)
                .collect();
            let (status, message) = match (r.status, behind.first()) {
                (Status::Failed, _) => (Status::Failed, r.message.clone()),
                (_, Some(oldest)) if now - oldest.created_at >= failed_after => (
                    Status::Failed,
                    Some(format!(
                        "Replication has not been delivered for {} s: {}",
                        (now - oldest.created_at) / 1000,
                        behind
                            .iter()
                            .rev()
                            .find_map(|e| e.last_error.clone())
                            .unwrap_or_else(|| "the region has not answered".into())
                    )),
                ),
                (_, Some(_)) => (Status::InProgress, None),
                (Status::InSync, None) => (Status::InSync, Some(IN_SYNC_MESSAGE.to_owned())),
                (Status::InProgress, None) => (Status::InProgress, None),
            };
            ReplicationStatus {
                region: Some(r.region),
                kms_key_id: Some(r.kms_key_id.unwrap_or_else(|| DEFAULT_KEY_ALIAS.to_owned())),
                status: Some(status.as_str().to_owned()),
                status_message: message,
                last_accessed_date: r.last_accessed_day.map(to_wire),
            }
        })
        .collect()
}

/// A region name as the model allows it: `^([a-z]+-)+\d+$`, 1 to 128 characters.
pub fn valid_region(r: &str) -> bool {
    if r.is_empty() || r.len() > 128 {
        return false;
    }
    let Some((head, digits)) = r.rsplit_once('-') else {
        return false;
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !head.is_empty()
        && head
            .split('-')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The replica's ARN: the primary's with the replica's region (and this deployment's
/// account), same name and random suffix.
pub(crate) fn replica_arn(primary_arn: &str, region: &str, account: &str) -> Option<String> {
    let rest = primary_arn.strip_prefix("arn:")?;
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    if parts.len() != 6 || parts[1] != "secretsmanager" || parts[4] != "secret" {
        return None;
    }
    Some(format!(
        "arn:{}:secretsmanager:{region}:{account}:secret:{}",
        parts[0], parts[5]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_follow_the_model_pattern() {
        for ok in ["us-east-1", "eu-west-3", "ap-southeast-12", "us-gov-west-1"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-east-1",
            "us--1",
            "-1",
            "us-east-1a",
            "us_east-1",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }

    #[test]
    fn a_replica_arn_differs_from_its_primary_by_region_only() {
        assert_eq!(
            replica_arn(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/pass-AbCdEf",
                "eu-west-1",
                "123456789012"
            )
            .as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db/pass-AbCdEf")
        );
        assert_eq!(replica_arn("not-an-arn", "eu-west-1", "1"), None);
    }
}
