//! The receiving side of a delivery, in a replica's region (or, for `Promoted`, the
//! primary's): a replica created or brought up to the primary's state, sealed under the
//! replica region's key; a replica removed; a primary told its replica was promoted.
//! Every delivery is idempotent: a replica records the primary revision it holds and
//! ignores anything not newer.

use super::{
    promoted_from, replica_arn, replica_of, replicas, set_replica_of, set_replicas, ReplicaOf,
    NAME_EXISTS_MESSAGE,
};
use crate::keys::ResolvedKey;
use crate::ops::{mark_ever_tagged, metadata_change, Writer};
use crate::value::Value;
use crate::{Arca, RequestCtx};
use arca_store::{
    Effects, Fence, NewVersion, SealedValue, SecretChange, SecretRecord, StoreError, VersionRecord,
};
use arca_types::replication::{Delivery, Outcome, ReplicaState, ReplicaValue};
use arca_types::ApiError;
use std::collections::HashMap;

/// How a version's key is recorded when it is the region's default key.
const DEFAULT_KEY_STORED: &str = "DEFAULT";

fn retry(what: &str, e: impl std::fmt::Display) -> Outcome {
    tracing::warn!(error = %e, "{what}");
    Outcome::Retry {
        message: format!("{what}: the replica region could not store it now"),
    }
}

impl Arca {
    /// Applies deliveries addressed to `region`, one outcome each, in order. They concern
    /// different secrets (the sender sends one per secret), so they run concurrently.
    /// `fence`: the delivering job's lease, when the deliveries come from this
    /// deployment's own replication job (a region it serves itself): every write then
    /// commits only while that lease holds. Deliveries from another deployment come
    /// without one; their order is kept by the primary revision each replica records.
    pub async fn deliver(
        &self,
        region: &str,
        deliveries: Vec<Delivery>,
        fence: Option<&Fence>,
    ) -> Vec<Outcome> {
        let runs = deliveries
            .into_iter()
            .map(|d| self.deliver_one(region, d, fence));
        futures_util::future::join_all(runs).await
    }

    async fn deliver_one(&self, region: &str, d: Delivery, fence: Option<&Fence>) -> Outcome {
        match d {
            Delivery::Sync(state) => self.apply_sync(region, *state, fence).await,
            Delivery::Remove { primary_arn, name } => {
                self.apply_remove(region, &primary_arn, &name, fence).await
            }
            Delivery::Promoted {
                primary_arn,
                replica_region,
                ..
            } => match self
                .replica_promoted(region, &primary_arn, &replica_region, fence)
                .await
            {
                Ok(()) => Outcome::Applied {
                    last_accessed_day: None,
                },
                Err(e) => retry("recording a promotion failed", e.message),
            },
        }
    }

    async fn apply_sync(&self, region: &str, st: ReplicaState, fence: Option<&Fence>) -> Outcome {
        let effects = Effects {
            fence: fence.cloned(),
            ..Effects::default()
        };
        let Some(arn) = replica_arn(&st.primary_arn, region, &self.account) else {
            return Outcome::Failed {
                message: "The primary secret's ARN is not a Secrets Manager ARN.".into(),
            };
        };
        let _guard = self.write_locks.lock(&arn).await;
        let existing = match self.store.find_by_name(region, &st.name).await {
            Ok(e) => e,
            Err(e) => return retry("reading the replica failed", e),
        };
        let key = match self
            .keys
            .resolve(region, st.kms_key_id.as_deref(), self.now())
            .await
        {
            Ok(k) => k,
            Err(e) => {
                return Outcome::Failed {
                    message: format!(
                        "The KMS key {} cannot be used in {region}: {}",
                        st.kms_key_id.as_deref().unwrap_or(super::DEFAULT_KEY_ALIAS),
                        e.message
                    ),
                }
            }
        };
        let outcome = match existing {
            None => self.create_replica(region, &arn, &st, &key, &effects).await,
            Some(s) if replica_of(&s).is_some_and(|o| o.primary_arn == st.primary_arn) => {
                self.update_replica(s, &st, &key, fence).await
            }
            Some(s) if promoted_from(&s).as_deref() == Some(st.primary_arn.as_str()) => {
                Outcome::Promoted
            }
            Some(s) if st.force_overwrite => {
                if let Err(e) = self.store.delete_secret(region, &s.arn, &effects).await {
                    return retry("replacing the secret of the same name failed", e);
                }
                self.cache.invalidate(region, &s.name, &s.arn);
                tracing::info!(arn = %s.arn, "secret of the same name overwritten by a replica");
                self.create_replica(region, &arn, &st, &key, &effects).await
            }
            Some(_) => Outcome::Failed {
                message: NAME_EXISTS_MESSAGE.into(),
            },
        };
        self.cache.invalidate(region, &st.name, &arn);
        outcome
    }

    /// The versions of `st` that `have` lacks (or holds without a value) and that carry a
    /// value, sealed for the replica; or the ids whose values the delivery did not bring.
    fn seal_new_versions(
        &self,
        arn: &str,
        st: &ReplicaState,
        have: &[VersionRecord],
        key: &ResolvedKey,
    ) -> Result<Vec<NewVersion>, Outcome> {
        let values: HashMap<&str, &ReplicaValue> = st
            .values
            .iter()
            .map(|v| (v.version_id.as_str(), v))
            .collect();
        let mut missing = Vec::new();
        let mut out = Vec::new();
        for v in &st.versions {
            let held = have.iter().find(|h| h.version_id == v.version_id);
            if held.is_some_and(|h| h.has_value || !v.has_value) {
                continue;
            }
            // A version as the replica keeps it: sealed (or, for a value-less AWSPENDING
            // placeholder, empty) under the replica region's key.
            let version = |value_digest: Vec<u8>, sealed: Vec<u8>| NewVersion {
                version: VersionRecord {
                    version_id: v.version_id.clone(),
                    stages: v.stages.clone(),
                    created_at: v.created_at,
                    last_accessed_day: None,
                    kms_key_ids: vec![key
                        .arn
                        .clone()
                        .unwrap_or_else(|| DEFAULT_KEY_STORED.to_owned())],
                    has_value: v.has_value,
                    value_digest,
                },
                sealed: SealedValue(sealed),
            };
            if !v.has_value {
                out.push(version(Vec::new(), Vec::new()));
                continue;
            }
            let Some(given) = values.get(v.version_id.as_str()) else {
                missing.push(v.version_id.clone());
                continue;
            };
            let value =
                match Value::from_request(given.secret_string.clone(), given.secret_binary.clone())
                {
                    Ok(Some(value)) => value,
                    _ => {
                        return Err(Outcome::Failed {
                            message: format!("The value of version {} is malformed.", v.version_id),
                        })
                    }
                };
            let sealed = self
                .seal(&key.key_id, arn, &v.version_id, &value)
                .map_err(|e| Outcome::Failed { message: e.message })?;
            out.push(version(self.digest(arn, &value), sealed));
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(Outcome::Missing {
                version_ids: missing,
            })
        }
    }

    /// The replica's metadata as the primary's state says.
    fn replica_record(
        &self,
        mut s: SecretRecord,
        st: &ReplicaState,
        key: &ResolvedKey,
    ) -> SecretRecord {
        s.name = st.name.clone();
        s.description = st.description.clone();
        s.kms_key_id = key.arn.clone();
        s.secret_type = st.secret_type.clone();
        s.primary_region = Some(st.primary_region.clone());
        s.created_at = st.created_at;
        s.last_changed_at = st.last_changed_at;
        s.deleted_at = st.deleted_at;
        // A replica is never purged on its own: it goes when its region leaves the
        // replication (and a primary with replicas cannot be deleted).
        s.purge_at = None;
        s.rotation_due_at = None;
        s.tags = st.tags.clone();
        if st.ever_tagged {
            mark_ever_tagged(&mut s);
        }
        crate::authz::set_resource_policy(&mut s, st.resource_policy.as_deref());
        set_replica_of(
            &mut s,
            Some(&ReplicaOf {
                primary_arn: st.primary_arn.clone(),
                revision: st.revision,
            }),
        );
        s
    }

    async fn create_replica(
        &self,
        region: &str,
        arn: &str,
        st: &ReplicaState,
        key: &ResolvedKey,
        effects: &Effects,
    ) -> Outcome {
        let versions = match self.seal_new_versions(arn, st, &[], key) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let blank = SecretRecord {
            region: region.to_owned(),
            arn: arn.to_owned(),
            name: st.name.clone(),
            description: None,
            kms_key_id: None,
            secret_type: None,
            owning_service: None,
            primary_region: None,
            created_at: st.created_at,
            last_changed_at: st.last_changed_at,
            last_accessed_day: None,
            deleted_at: None,
            purge_at: None,
            rotation_due_at: None,
            extra: serde_json::Value::Null,
            tags: Vec::new(),
            versions: Vec::new(),
            revision: 0,
        };
        let record = self.replica_record(blank, st, key);
        match self
            .store
            .create_secret_with(&record, &versions, effects)
            .await
        {
            Ok(()) => {
                tracing::info!(arn, "replica created");
                Outcome::Applied {
                    last_accessed_day: None,
                }
            }
            // A client created the name in between: the next attempt sees it.
            Err(StoreError::NameTaken) => Outcome::Retry {
                message: "a secret of the same name was created concurrently".into(),
            },
            Err(e) => retry("creating the replica failed", e),
        }
    }

    async fn update_replica(
        &self,
        s: SecretRecord,
        st: &ReplicaState,
        key: &ResolvedKey,
        fence: Option<&Fence>,
    ) -> Outcome {
        let held = replica_of(&s).map_or(i64::MIN, |o| o.revision);
        let last_accessed_day = {
            let mut r = s.clone();
            self.reads.overlay(&mut r);
            r.last_accessed_day
        };
        if held >= st.revision {
            return Outcome::Applied { last_accessed_day };
        }
        let added = match self.seal_new_versions(&s.arn, st, &s.versions, key) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let refilled: Vec<String> = added
            .iter()
            .filter(|n| {
                s.versions
                    .iter()
                    .any(|h| h.version_id == n.version.version_id)
            })
            .map(|n| n.version.version_id.clone())
            .collect();
        let mut removed: Vec<String> = s
            .versions
            .iter()
            .filter(|h| !st.versions.iter().any(|v| v.version_id == h.version_id))
            .map(|h| h.version_id.clone())
            .collect();
        removed.extend(refilled.iter().cloned());
        let restaged: Vec<(String, Vec<String>)> = s
            .versions
            .iter()
            .filter(|h| !removed.contains(&h.version_id))
            .filter_map(|h| {
                let v = st.versions.iter().find(|v| v.version_id == h.version_id)?;
                (v.stages != h.stages).then(|| (h.version_id.clone(), v.stages.clone()))
            })
            .collect();
        let expected_revision = s.revision;
        let record = self.replica_record(s, st, key);
        let change = SecretChange {
            new_versions: added,
            restaged,
            removed_versions: removed,
            fence: fence.cloned(),
            ..metadata_change(SecretRecord {
                revision: expected_revision,
                ..record
            })
        };
        match self.store.update_secret(&change).await {
            Ok(()) => Outcome::Applied { last_accessed_day },
            Err(StoreError::Conflict) => Outcome::Retry {
                message: "the replica changed concurrently".into(),
            },
            Err(e) => retry("updating the replica failed", e),
        }
    }

    async fn apply_remove(
        &self,
        region: &str,
        primary_arn: &str,
        name: &str,
        fence: Option<&Fence>,
    ) -> Outcome {
        let effects = Effects {
            fence: fence.cloned(),
            ..Effects::default()
        };
        let found = match self.store.find_by_name(region, name).await {
            Ok(f) => f,
            Err(e) => return retry("reading the replica failed", e),
        };
        if let Some(s) =
            found.filter(|s| replica_of(s).is_some_and(|o| o.primary_arn == primary_arn))
        {
            let _guard = self.write_locks.lock(&s.arn).await;
            if let Err(e) = self.store.delete_secret(region, &s.arn, &effects).await {
                return retry("deleting the replica failed", e);
            }
            self.cache.invalidate(region, &s.name, &s.arn);
            tracing::info!(arn = %s.arn, "replica removed");
        }
        Outcome::Applied {
            last_accessed_day: None,
        }
    }

    /// The primary `primary_arn` (in `region`) learns that its replica in `replica_region`
    /// was promoted: the region leaves its replication, and nothing more is sent there.
    pub(crate) async fn replica_promoted(
        &self,
        region: &str,
        primary_arn: &str,
        replica_region: &str,
        fence: Option<&Fence>,
    ) -> Result<(), ApiError> {
        let ctx = RequestCtx::fenced(region, fence.cloned());
        let result = self
            .modify_as(Writer::Replication, &ctx, primary_arn, |mut s| {
                let list = replicas(&s);
                if !list.iter().any(|r| r.region == replica_region) {
                    return Ok((None, ()));
                }
                let kept: Vec<_> = list
                    .into_iter()
                    .filter(|r| r.region != replica_region)
                    .collect();
                set_replicas(&mut s, &kept);
                Ok((Some(metadata_change(s)), ()))
            })
            .await;
        match result {
            Err(e) if e.code == arca_types::ErrorCode::ResourceNotFound => Ok(()),
            other => {
                if other.is_ok() {
                    tracing::info!(
                        primary_arn,
                        replica_region,
                        "replica was promoted; replication to it stopped"
                    );
                }
                other
            }
        }
    }
}
