//! The sending side's domain work, for the delivery worker in arca-jobs: turning a
//! secret's outbox entries for one region into a delivery (read at send time, so it is
//! the current state), and recording what the region answered in the primary's status.

use super::{replica_of, replicas, set_replicas, Status};
use crate::ops::{ever_tagged, Writer};
use crate::value::Value;
use crate::{store_err, Arca, RequestCtx};
use arca_store::{OutboxEntry, OutboxKind};
use arca_types::replication::{Delivery, Outcome, ReplicaState, ReplicaValue, ReplicaVersion};
use arca_types::ApiError;
use std::collections::BTreeSet;

/// What to do with a group of entries after its delivery was answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// The entries are done (delivered, or obsolete): complete them.
    Done,
    /// Send again, with these versions' values.
    Resend(Vec<String>),
    /// Keep them, and try again later; the reason is log-safe.
    Retry(String),
}

impl Arca {
    /// The delivery for `entries` (one secret's, for one region, in id order), or None
    /// when they are obsolete (the secret or its replica region is gone). `values`: the
    /// versions whose values to send besides the ones the entries created.
    pub async fn prepare_delivery(
        &self,
        entries: &[OutboxEntry],
        values: &[String],
    ) -> Result<Option<Delivery>, ApiError> {
        let Some(last) = entries.last() else {
            return Ok(None);
        };
        match last.kind {
            OutboxKind::Remove => Ok(Some(Delivery::Remove {
                primary_arn: last.arn.clone(),
                name: last.name.clone(),
            })),
            OutboxKind::Promoted => Ok(Some(Delivery::Promoted {
                primary_arn: last.arn.clone(),
                name: last.name.clone(),
                replica_region: last.source_region.clone(),
            })),
            OutboxKind::Sync => {
                let mut wanted: BTreeSet<String> = entries
                    .iter()
                    .flat_map(|e| e.version_ids.iter().cloned())
                    .collect();
                wanted.extend(values.iter().cloned());
                let newest = entries.iter().map(|e| e.revision).max().unwrap_or(0);
                self.replica_state(last, newest, wanted).await
            }
        }
    }

    /// The primary's state for `entry`'s region: from the read cache when its copy is at
    /// least as new as the newest change queued (`newest`: the cache is filled after the
    /// commit that made the entry visible, so it may still lag), else from the store.
    async fn replica_state(
        &self,
        entry: &OutboxEntry,
        newest: i64,
        mut wanted: BTreeSet<String>,
    ) -> Result<Option<Delivery>, ApiError> {
        let cached = self
            .cache
            .by_arn(&entry.arn)
            .filter(|c| c.record.region == entry.source_region && c.record.revision >= newest);
        let stored;
        let s: &arca_store::SecretRecord = match &cached {
            Some(c) => &c.record,
            None => match self
                .store
                .find_by_arn(&entry.source_region, &entry.arn)
                .await
                .map_err(store_err)?
            {
                Some(s) => {
                    stored = s;
                    &stored
                }
                None => return Ok(None),
            },
        };
        if replica_of(s).is_some() {
            return Ok(None);
        }
        let Some(replica) = replicas(s)
            .into_iter()
            .find(|r| r.region == entry.target_region && r.status != Status::Failed)
        else {
            return Ok(None);
        };
        // A region not yet in sync may lack anything: send every value at once rather
        // than learn it from a Missing answer.
        if replica.status != Status::InSync {
            wanted.extend(s.versions.iter().map(|v| v.version_id.clone()));
        }
        let mut values = Vec::new();
        for v in s
            .versions
            .iter()
            .filter(|v| v.has_value && wanted.contains(&v.version_id))
        {
            let (secret_string, secret_binary) =
                match self.open(&s.arn, &v.version_id, None).await? {
                    Value::String(x) => (Some(x), None),
                    Value::Binary(x) => (None, Some(x)),
                };
            values.push(ReplicaValue {
                version_id: v.version_id.clone(),
                secret_string,
                secret_binary,
            });
        }
        Ok(Some(Delivery::Sync(Box::new(ReplicaState {
            primary_arn: s.arn.clone(),
            primary_region: s.region.clone(),
            name: s.name.clone(),
            revision: s.revision,
            kms_key_id: replica.kms_key_id.clone(),
            force_overwrite: replica.force,
            description: s.description.clone(),
            secret_type: s.secret_type.clone(),
            created_at: s.created_at,
            last_changed_at: s.last_changed_at,
            deleted_at: s.deleted_at,
            ever_tagged: ever_tagged(s),
            tags: s.tags.clone(),
            resource_policy: crate::authz::resource_policy_text(s).map(str::to_owned),
            versions: s
                .versions
                .iter()
                .map(|v| ReplicaVersion {
                    version_id: v.version_id.clone(),
                    stages: v.stages.clone(),
                    created_at: v.created_at,
                    has_value: v.has_value,
                })
                .collect(),
            values,
        }))))
    }

    /// Records the region's answer to the delivery of `entries` in the primary's status.
    pub async fn delivered(
        &self,
        entries: &[OutboxEntry],
        outcome: &Outcome,
        fence: Option<&arca_store::Fence>,
    ) -> Result<Delivered, ApiError> {
        let Some(last) = entries.last() else {
            return Ok(Delivered::Done);
        };
        if last.kind != OutboxKind::Sync {
            return Ok(match outcome {
                Outcome::Retry { message } => Delivered::Retry(message.clone()),
                _ => Delivered::Done,
            });
        }
        let (status, message, accessed) = match outcome {
            Outcome::Applied { last_accessed_day } => (Status::InSync, None, *last_accessed_day),
            Outcome::Failed { message } => (Status::Failed, Some(message.clone()), None),
            Outcome::Missing { version_ids } => return Ok(Delivered::Resend(version_ids.clone())),
            Outcome::Retry { message } => return Ok(Delivered::Retry(message.clone())),
            Outcome::Promoted => {
                self.replica_promoted(&last.source_region, &last.arn, &last.target_region, fence)
                    .await?;
                return Ok(Delivered::Done);
            }
        };
        if status == Status::Failed {
            tracing::warn!(
                arn = %last.arn,
                region = %last.target_region,
                reason = message.as_deref().unwrap_or(""),
                "replication to a region failed"
            );
        }
        // Most answers change nothing (an InSync region stays InSync): look first, without
        // the write path's copies of the record.
        let unchanged = |r: &super::Replica| {
            r.status == status
                && r.message == message
                && r.last_accessed_day == accessed.max(r.last_accessed_day)
        };
        if let Some(c) = self.cache.by_arn(&last.arn) {
            if replicas(&c.record)
                .iter()
                .find(|r| r.region == last.target_region)
                .is_none_or(unchanged)
            {
                return Ok(Delivered::Done);
            }
        }
        let ctx = RequestCtx::fenced(last.source_region.clone(), fence.cloned());
        let target = last.target_region.clone();
        let result = self
            .modify_as(Writer::Replication, &ctx, &last.arn, |mut s| {
                let mut list = replicas(&s);
                let Some(r) = list.iter_mut().find(|r| r.region == target) else {
                    return Ok((None, ()));
                };
                if unchanged(r) {
                    return Ok((None, ()));
                }
                // A region's status changing is a service event, as AWS's
                // ReplicationSucceeded and ReplicationFailed.
                let event = match status {
                    Status::InSync if r.status != Status::InSync => Some("ReplicationSucceeded"),
                    Status::Failed if r.status != Status::Failed => Some("ReplicationFailed"),
                    _ => None,
                };
                r.status = status;
                r.message = message.clone();
                r.last_accessed_day = accessed.max(r.last_accessed_day);
                set_replicas(&mut s, &list);
                let now = self.now();
                let events: Vec<_> = event
                    .map(|name| {
                        crate::events::replica_event(name, &s, &target, message.as_deref(), now)
                    })
                    .into_iter()
                    .collect();
                let mut change = crate::ops::metadata_change(s);
                change.events = events;
                Ok((Some(change), ()))
            })
            .await;
        match result {
            Ok(()) => Ok(Delivered::Done),
            Err(e) if e.code == arca_types::ErrorCode::ResourceNotFound => Ok(Delivered::Done),
            Err(e) => Err(e),
        }
    }
}
