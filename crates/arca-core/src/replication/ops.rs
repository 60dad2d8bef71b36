//! The replication operations: ReplicateSecretToRegions, RemoveRegionsFromReplication
//! and StopReplicationToReplica, and what CreateSecret's AddReplicaRegions and
//! DescribeSecret's ReplicationStatus need from them.

use super::{
    replica_of, replicas, set_promoted_from, set_replica_of, set_replicas, status_list, Replica,
    Status,
};
use crate::ops::{ensure_not_deleted, ensure_unscoped, metadata_change, Writer};
use crate::validate::{self, Check};
use crate::{store_err, Arca, RequestCtx};
use arca_store::{OutboxEntry, OutboxKind, SecretRecord};
use arca_types::wire::{
    ArnResponse, RemoveRegionsFromReplicationRequest, ReplicaRegion,
    ReplicateSecretToRegionsRequest, ReplicationResponse, ReplicationStatus,
};
use arca_types::ApiError;

/// The regions asked for, checked against the secret's own region: (region, key).
pub(crate) fn wanted_regions(
    own_region: &str,
    asked: &[ReplicaRegion],
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for r in asked {
        let region = r
            .region
            .clone()
            .filter(|r| r != own_region && !out.iter().any(|(o, _)| o == r))
            .ok_or_else(ApiError::invalid_replica_region)?;
        out.push((region, r.kms_key_id.clone().filter(|k| !k.is_empty())));
    }
    Ok(out)
}

/// Adds (or, for a region already there, retries) replica regions in `list`.
pub(crate) fn add_replicas(
    list: &mut Vec<Replica>,
    wanted: &[(String, Option<String>)],
    force: bool,
) {
    for (region, key) in wanted {
        let fresh = Replica {
            region: region.clone(),
            kms_key_id: key.clone(),
            force,
            status: Status::InProgress,
            message: None,
            last_accessed_day: None,
        };
        match list.iter_mut().find(|r| &r.region == region) {
            Some(r) => {
                *r = Replica {
                    last_accessed_day: r.last_accessed_day,
                    ..fresh
                }
            }
            None => list.push(fresh),
        }
    }
}

impl Arca {
    pub async fn replicate_secret_to_regions(
        &self,
        ctx: &RequestCtx,
        req: ReplicateSecretToRegionsRequest,
    ) -> Result<ReplicationResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.required("addReplicaRegions", &req.add_replica_regions);
        check.replica_regions("addReplicaRegions", req.add_replica_regions.as_deref());
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        ensure_unscoped(ctx)?;
        let force = req.force_overwrite_replica_secret.unwrap_or(false);
        let asked = req.add_replica_regions.unwrap_or_default();
        let wanted = wanted_regions(&ctx.region, &asked)?;
        let (arn, secret) = self
            .modify(ctx, &id, |mut secret| {
                ensure_not_deleted(&secret)?;
                let mut list = replicas(&secret);
                let before: Vec<String> = list.iter().map(|r| r.region.clone()).collect();
                add_replicas(&mut list, &wanted, force);
                set_replicas(&mut secret, &list);
                let arn = secret.arn.clone();
                let now = self.now();
                let mut change = metadata_change(secret.clone());
                for r in list.iter().filter(|r| !before.contains(&r.region)) {
                    change.events.push(crate::events::replica_event(
                        "ReplicationStarted",
                        &secret,
                        &r.region,
                        None,
                        now,
                    ));
                }
                Ok((Some(change), (arn, secret)))
            })
            .await?;
        Ok(ReplicationResponse {
            arn,
            replication_status: self.replication_status(&secret).await?,
        })
    }

    pub async fn remove_regions_from_replication(
        &self,
        ctx: &RequestCtx,
        req: RemoveRegionsFromReplicationRequest,
    ) -> Result<ReplicationResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.required("removeReplicaRegions", &req.remove_replica_regions);
        check.count(
            "removeReplicaRegions",
            req.remove_replica_regions.as_deref(),
            1,
            usize::MAX,
        );
        let regions = req.remove_replica_regions.unwrap_or_default();
        for (i, r) in regions.iter().enumerate() {
            check.region(&format!("removeReplicaRegions.{}.member", i + 1), Some(r));
        }
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        ensure_unscoped(ctx)?;
        let now = self.now();
        let secret = self
            .modify(ctx, &id, |mut secret| {
                let before = replicas(&secret);
                let (gone, kept): (Vec<Replica>, Vec<Replica>) = before
                    .into_iter()
                    .partition(|r| regions.contains(&r.region));
                // Removing a region that is not a replica changes nothing (moto's reading
                // of AWS: "Removing region is idempotent").
                if gone.is_empty() {
                    return Ok((None, secret));
                }
                set_replicas(&mut secret, &kept);
                let mut change = metadata_change(secret.clone());
                change.outbox = gone
                    .iter()
                    .map(|r| {
                        OutboxEntry::new(
                            OutboxKind::Remove,
                            &secret.region,
                            &secret.arn,
                            &secret.name,
                            &r.region,
                            now,
                        )
                    })
                    .collect();
                Ok((Some(change), secret))
            })
            .await?;
        Ok(ReplicationResponse {
            arn: secret.arn.clone(),
            replication_status: self.replication_status(&secret).await?,
        })
    }

    /// Called in the replica's region: the replica becomes a standalone secret there, and
    /// the primary is told (through the outbox, so it learns even if it is down now).
    pub async fn stop_replication_to_replica(
        &self,
        ctx: &RequestCtx,
        req: arca_types::wire::SecretIdRequest,
    ) -> Result<ArnResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        ensure_unscoped(ctx)?;
        let now = self.now();
        let arn = self
            .modify_as(Writer::Replication, ctx, &id, |mut secret| {
                let Some(of) = replica_of(&secret) else {
                    return Err(ApiError::not_a_replica());
                };
                let primary_region = secret.primary_region.clone().unwrap_or_default();
                set_replica_of(&mut secret, None);
                set_promoted_from(&mut secret, Some(&of.primary_arn));
                secret.primary_region = None;
                let arn = secret.arn.clone();
                let mut change = metadata_change(secret.clone());
                change.outbox.push(OutboxEntry::new(
                    OutboxKind::Promoted,
                    &secret.region,
                    &of.primary_arn,
                    &secret.name,
                    &primary_region,
                    now,
                ));
                Ok((Some(change), arn))
            })
            .await?;
        self.wake_replication();
        tracing::info!(arn = %arn, "replica promoted to a standalone secret");
        Ok(ArnResponse { arn })
    }

    /// ReplicationStatus of a primary: its record's view, corrected by the deliveries that
    /// failed and wait in the outbox. Empty for a secret with no replicas.
    pub(crate) async fn replication_status(
        &self,
        s: &SecretRecord,
    ) -> Result<Vec<ReplicationStatus>, ApiError> {
        if replicas(s).is_empty() {
            return Ok(Vec::new());
        }
        let pending = self.store.outbox_for(&s.arn).await.map_err(store_err)?;
        Ok(status_list(
            s,
            &pending,
            self.now(),
            self.replication_failed_after(),
        ))
    }
}
