//! Whole-secret operations: CreateSecret, UpdateSecret, DescribeSecret, DeleteSecret,
//! RestoreSecret, TagResource, UntagResource, and GetRandomPassword.

use super::values::{digests_equal, VersionInput, VersionOutcome};
use super::{ensure_not_deleted, ensure_unscoped, metadata_change, note_tagged};
use crate::stages::AWSCURRENT;
use crate::validate::{self, Check};
use crate::value::Value;
use crate::{password, store_err, Arca, RequestCtx};
use arca_store::{Effects, NewVersion, SecretRecord, StoreError};
use arca_types::arn::{random_suffix, secret_arn, SecretRef};
use arca_types::time::{to_wire, MILLIS_PER_DAY};
use arca_types::wire::*;
use arca_types::ApiError;

const DEFAULT_RECOVERY_DAYS: i64 = 30;

impl Arca {
    pub async fn create_secret(
        &self,
        ctx: &RequestCtx,
        req: CreateSecretRequest,
    ) -> Result<CreateSecretResponse, ApiError> {
        let mut check = Check::new();
        let name = check.required("name", &req.name).map(String::as_str);
        check.length("name", name, 1, 512);
        check.token(&req.client_request_token);
        check.description(&req.description);
        check.kms_key_id(&req.kms_key_id);
        check.secret_value(
            Value::string_len(&req.secret_string),
            Value::binary_len(&req.secret_binary),
        );
        check.tags("tags", req.tags.as_deref());
        if req.add_replica_regions.is_some() {
            check.replica_regions("addReplicaRegions", req.add_replica_regions.as_deref());
        }
        check.secret_type(&req.secret_type);
        check.finish()?;
        let name = validate::present(name)?.to_owned();
        validate::name_chars(&name)?;
        // A key scoped to a name (an event target's) may create that secret.
        match &ctx.only_secret {
            Some(crate::SecretScope::Name(n)) if *n == name => {}
            _ => ensure_unscoped(ctx)?,
        }
        self.authorize(ctx, crate::authz::Target::Missing(&name))?;
        if self.foreign(ctx) {
            return Err(ApiError::new(
                arca_types::ErrorCode::InvalidRequest,
                format!(
                    "Secrets live in account {} in this deployment: another account's \
                     principals reach them by ARN where a resource policy shares them, and \
                     cannot create their own.",
                    self.account
                ),
            ));
        }
        let token = req.client_request_token.clone();
        let tags = validate::tag_pairs(req.tags.as_deref().unwrap_or_default())?;
        let wanted = crate::replication::wanted_regions(
            &ctx.region,
            req.add_replica_regions.as_deref().unwrap_or_default(),
        )?;
        let force = req.force_overwrite_replica_secret.unwrap_or(false);
        let value = Value::from_request(req.secret_string, req.secret_binary)?;
        if value.is_some() && token.is_none() {
            return Err(ApiError::token_required());
        }
        let now = self.now();
        let key = self
            .keys
            .resolve(&ctx.region, req.kms_key_id.as_deref(), now)
            .await?;
        if value.is_some() {
            let arn = self.arn_for_missing(&ctx.region, &name);
            self.authorize_key(ctx, "kms:GenerateDataKey", &key.key_id, &arn)?;
        }

        loop {
            if let Some(existing) = self
                .store
                .find_by_name(&ctx.region, &name)
                .await
                .map_err(store_err)?
            {
                return self.create_conflict(existing, token.as_deref(), value.as_ref());
            }
            let arn = secret_arn(&ctx.region, &self.account, &name, &random_suffix());
            let mut secret = SecretRecord {
                region: ctx.region.clone(),
                arn: arn.clone(),
                name: name.clone(),
                description: req.description.clone(),
                kms_key_id: key.arn.clone(),
                secret_type: req.secret_type.clone(),
                owning_service: None,
                primary_region: None,
                created_at: now,
                last_changed_at: now,
                last_accessed_day: None,
                deleted_at: None,
                purge_at: None,
                rotation_due_at: None,
                extra: serde_json::Value::Null,
                tags: tags.clone(),
                versions: Vec::new(),
                revision: 0,
            };
            note_tagged(&mut secret);
            let mut list = Vec::new();
            crate::replication::add_replicas(&mut list, &wanted, force);
            crate::replication::set_replicas(&mut secret, &list);
            let mut first: Option<NewVersion> = None;
            let mut version_id = None;
            if let (Some(v), Some(t)) = (&value, &token) {
                match self.new_version_change(
                    secret.clone(),
                    VersionInput {
                        token: t,
                        value: v,
                        labels: &[AWSCURRENT.to_owned()],
                        key: &key,
                    },
                    now,
                )? {
                    VersionOutcome::New(change, version) => {
                        first = change.new_versions.into_iter().next();
                        version_id = Some(version.version_id);
                    }
                    VersionOutcome::Existing(_) => return Err(ApiError::internal()),
                }
                secret.last_changed_at = now;
            }
            let mut outbox = Vec::new();
            crate::replication::enqueue_syncs_on_create(&secret, first.as_ref(), now, &mut outbox);
            let call = ctx.unrecorded_call();
            let mut audit: Vec<_> = call
                .map(|c| {
                    let response =
                        crate::audit::response_elements(&c.event_name, &arn, &name, None);
                    vec![c.entry_about(&self.account, Some(&arn), Some(response), None)]
                })
                .unwrap_or_default();
            for (region, _) in &wanted {
                let started =
                    crate::events::replica_event("ReplicationStarted", &secret, region, None, now);
                audit.push(crate::audit::service_event(&self.account, &started));
            }
            let effects = Effects {
                outbox,
                deliveries: self.route(&audit),
                audit,
                fence: ctx.fence.clone(),
            };
            let generation = self.cache.generation();
            let created = self
                .store
                .create_secret_with(&secret, first.as_slice(), &effects)
                .await;
            self.cache
                .invalidate(&secret.region, &secret.name, &secret.arn);
            let owed = !effects.deliveries.is_empty();
            let outbox = effects.outbox;
            match created {
                Ok(()) => {
                    // What was just committed is cached, so the first write or read after a
                    // create needs no store read.
                    let mut rec = secret.clone();
                    rec.revision = 1;
                    rec.versions = first.iter().map(|n| n.version.clone()).collect();
                    let written: Vec<(&str, &[u8])> = first
                        .iter()
                        .map(|n| (n.version.version_id.as_str(), n.sealed.0.as_slice()))
                        .collect();
                    self.cache.replace_since(generation, rec, &written);
                    if let Some(c) = call {
                        c.mark_recorded();
                    }
                    if !outbox.is_empty() {
                        self.wake_replication();
                    }
                    if owed {
                        self.delivery_wakeup.notify_one();
                    }
                    let status = self.replication_status(&secret).await?;
                    return Ok(CreateSecretResponse {
                        arn,
                        name,
                        version_id,
                        replication_status: (!status.is_empty()).then_some(status),
                    });
                }
                // Lost a race with a create of the same name: answer as if it came first.
                Err(StoreError::NameTaken) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
    }

    /// CreateSecret on a name that exists: an identical retry (same token, same value) is
    /// answered as the original was; anything else is ResourceExistsException, or
    /// InvalidRequestException while the old secret awaits deletion.
    fn create_conflict(
        &self,
        existing: SecretRecord,
        token: Option<&str>,
        value: Option<&Value>,
    ) -> Result<CreateSecretResponse, ApiError> {
        if existing.deleted_at.is_some() {
            return Err(ApiError::name_scheduled_for_deletion());
        }
        if let (Some(t), Some(v)) = (token, value) {
            if let Some(x) = existing.versions.iter().find(|x| x.version_id == t) {
                let digest = self.digest(&existing.arn, v);
                if x.has_value && digests_equal(&x.value_digest, &digest) {
                    return Ok(CreateSecretResponse {
                        arn: existing.arn,
                        name: existing.name,
                        version_id: Some(t.to_owned()),
                        replication_status: None,
                    });
                }
                // The token names a version of this secret with another value (recorded:
                // moto's AWS-verified test_create_different_secret_with_same_token).
                return Err(ApiError::token_in_use(t, &existing.arn));
            }
        }
        Err(ApiError::secret_exists(&existing.name))
    }

    pub async fn update_secret(
        &self,
        ctx: &RequestCtx,
        req: UpdateSecretRequest,
    ) -> Result<UpdateSecretResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.token(&req.client_request_token);
        check.description(&req.description);
        check.kms_key_id(&req.kms_key_id);
        check.secret_value(
            Value::string_len(&req.secret_string),
            Value::binary_len(&req.secret_binary),
        );
        check.secret_type(&req.secret_type);
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        validate::name_chars(&id)?;
        ensure_unscoped(ctx)?;
        let token = req.client_request_token.clone();
        let value = Value::from_request(req.secret_string, req.secret_binary)?;
        if value.is_some() && token.is_none() {
            return Err(ApiError::token_required());
        }
        let first = self.must_find(ctx, &id).await?;
        ensure_not_deleted(&first)?;
        let now = self.now();
        // A new KmsKeyId applies to this and later versions; older versions stay sealed
        // under the key that sealed them (each envelope names its key).
        let key = match &req.kms_key_id {
            Some(k) => self.keys.resolve(&ctx.region, Some(k), now).await?,
            None => {
                self.keys
                    .resolve(&ctx.region, first.kms_key_id.as_deref(), now)
                    .await?
            }
        };
        if value.is_some() {
            self.authorize_key(ctx, "kms:GenerateDataKey", &key.key_id, &first.arn)?;
        }
        self.modify(ctx, &id, |mut secret| {
            ensure_not_deleted(&secret)?;
            if let Some(d) = &req.description {
                secret.description = Some(d.clone());
            }
            if let Some(t) = &req.secret_type {
                secret.secret_type = Some(t.clone());
            }
            if req.kms_key_id.is_some() {
                secret.kms_key_id = key.arn.clone();
            }
            secret.last_changed_at = now;
            let (arn, name) = (secret.arn.clone(), secret.name.clone());
            match (&value, &token) {
                (Some(v), Some(t)) => {
                    match self.new_version_change(
                        secret,
                        VersionInput {
                            token: t,
                            value: v,
                            labels: &[AWSCURRENT.to_owned()],
                            key: &key,
                        },
                        now,
                    )? {
                        VersionOutcome::New(change, version) => Ok((
                            Some(*change),
                            UpdateSecretResponse {
                                arn,
                                name,
                                version_id: Some(version.version_id),
                            },
                        )),
                        // A retry with the same token and value succeeds and changes
                        // nothing (recorded: moto's AWS-verified
                        // test_update_same_secret_value_with_same_token).
                        VersionOutcome::Existing(version) => Ok((
                            None,
                            UpdateSecretResponse {
                                arn,
                                name,
                                version_id: Some(version.version_id),
                            },
                        )),
                    }
                }
                _ => Ok((
                    Some(metadata_change(secret)),
                    UpdateSecretResponse {
                        arn,
                        name,
                        version_id: None,
                    },
                )),
            }
        })
        .await
    }

    pub async fn describe_secret(
        &self,
        ctx: &RequestCtx,
        req: DescribeSecretRequest,
    ) -> Result<DescribeSecretResponse, ApiError> {
        let id = validate::only_secret_id(&req.secret_id)?;
        let secret = self.must_find(ctx, id).await?;
        let mut out = self.describe(&secret, false);
        let status = self.replication_status(&secret).await?;
        if !status.is_empty() {
            out.replication_status = Some(status);
        }
        Ok(out)
    }

    pub async fn delete_secret(
        &self,
        ctx: &RequestCtx,
        req: DeleteSecretRequest,
    ) -> Result<DeleteSecretResponse, ApiError> {
        let id = validate::only_secret_id(&req.secret_id)?.to_owned();
        ensure_unscoped(ctx)?;
        let force = req.force_delete_without_recovery.unwrap_or(false);
        // The range first: AWS answers RecoveryWindowInDays=0 with Force with the range
        // error (recorded, getmoto/moto#6461).
        let days = req.recovery_window_in_days.unwrap_or(DEFAULT_RECOVERY_DAYS);
        if !(7..=30).contains(&days) {
            return Err(ApiError::recovery_window_out_of_range());
        }
        if force && req.recovery_window_in_days.is_some() {
            return Err(ApiError::force_delete_with_window());
        }
        let now = self.now();
        if force {
            // AWS answers a forced delete of a secret that doesn't exist with success.
            let Some(secret) = self.lookup(ctx, &id).await? else {
                let (arn, name) = match SecretRef::parse(&id) {
                    SecretRef::Arn { arn, resource, .. } => (arn, resource),
                    SecretRef::Name(n) => (
                        format!(
                            "arn:aws:secretsmanager:{}:{}:secret:{n}",
                            ctx.region, self.account
                        ),
                        n,
                    ),
                };
                return Ok(DeleteSecretResponse {
                    arn,
                    name,
                    deletion_date: to_wire(now),
                });
            };
            // Under the secret's write lock, as every other write: a write in flight
            // finishes first (it updates the cache before it lets go of the lock), so it
            // cannot put the deleted record back into the cache after the invalidation.
            let _guard = self.write_locks.lock(&secret.arn).await;
            let fresh = self.lookup_fresh(ctx, &secret.arn).await?;
            if let Some(fresh) = &fresh {
                crate::replication::ensure_deletable(fresh)?;
            }
            // The call's record and the deletion's event commit with the deletion.
            let call = ctx.unrecorded_call();
            let mut audit: Vec<_> = call
                .map(|c| {
                    let response = crate::audit::response_elements(
                        &c.event_name,
                        &secret.arn,
                        &secret.name,
                        None,
                    );
                    vec![c.entry_about(&self.account, Some(&secret.arn), Some(response), None)]
                })
                .unwrap_or_default();
            audit.push(crate::audit::service_event(
                &self.account,
                &crate::events::secret_event("EndSecretVersionDelete", &secret, None, now),
            ));
            let effects = arca_store::Effects {
                deliveries: self.route(&audit),
                audit,
                outbox: Vec::new(),
                fence: ctx.fence.clone(),
            };
            let deleted = self
                .store
                .delete_secret(&ctx.region, &secret.arn, &effects)
                .await;
            self.cache
                .invalidate(&ctx.region, &secret.name, &secret.arn);
            deleted.map_err(store_err)?;
            if let Some(c) = call {
                c.mark_recorded();
            }
            if !effects.deliveries.is_empty() {
                self.delivery_wakeup.notify_one();
            }
            return Ok(DeleteSecretResponse {
                arn: secret.arn,
                name: secret.name,
                deletion_date: to_wire(now),
            });
        }
        let purge_at = now + days * MILLIS_PER_DAY;
        self.modify(ctx, &id, |mut secret| {
            crate::replication::ensure_deletable(&secret)?;
            if secret.deleted_at.is_some() {
                return Err(ApiError::already_marked_for_deletion());
            }
            secret.deleted_at = Some(now);
            secret.purge_at = Some(purge_at);
            let out = DeleteSecretResponse {
                arn: secret.arn.clone(),
                name: secret.name.clone(),
                deletion_date: to_wire(purge_at),
            };
            let started =
                crate::events::secret_event("StartSecretVersionDelete", &secret, None, now);
            let mut change = metadata_change(secret);
            change.events.push(started);
            Ok((Some(change), out))
        })
        .await
    }

    pub async fn restore_secret(
        &self,
        ctx: &RequestCtx,
        req: SecretIdRequest,
    ) -> Result<ArnNameResponse, ApiError> {
        let id = validate::only_secret_id(&req.secret_id)?.to_owned();
        ensure_unscoped(ctx)?;
        self.modify(ctx, &id, |mut secret| {
            let out = ArnNameResponse {
                arn: secret.arn.clone(),
                name: secret.name.clone(),
            };
            if secret.deleted_at.is_none() {
                return Ok((None, out));
            }
            secret.deleted_at = None;
            secret.purge_at = None;
            crate::rotation::reschedule(&mut secret);
            let cancelled =
                crate::events::secret_event("CancelSecretVersionDelete", &secret, None, self.now());
            let mut change = metadata_change(secret);
            change.events.push(cancelled);
            Ok((Some(change), out))
        })
        .await
    }

    pub async fn tag_resource(
        &self,
        ctx: &RequestCtx,
        req: TagResourceRequest,
    ) -> Result<Empty, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        let tags = check.required("tags", &req.tags);
        check.tags("tags", tags.map(Vec::as_slice));
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        validate::name_chars(&id)?;
        ensure_unscoped(ctx)?;
        let new_tags = validate::tag_pairs(validate::present(tags)?)?;
        let now = self.now();
        self.modify(ctx, &id, |mut secret| {
            for (k, v) in &new_tags {
                match secret.tags.iter_mut().find(|(ek, _)| ek == k) {
                    Some(existing) => existing.1 = v.clone(),
                    None => secret.tags.push((k.clone(), v.clone())),
                }
            }
            if secret.tags.len() > validate::MAX_TAGS {
                return Err(ApiError::too_many_tags(validate::MAX_TAGS));
            }
            note_tagged(&mut secret);
            secret.last_changed_at = now;
            Ok((Some(metadata_change(secret)), Empty {}))
        })
        .await
    }

    pub async fn untag_resource(
        &self,
        ctx: &RequestCtx,
        req: UntagResourceRequest,
    ) -> Result<Empty, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        let keys = check.required("tagKeys", &req.tag_keys);
        for (i, k) in keys.into_iter().flatten().enumerate() {
            check.length(&format!("tagKeys.{}.member", i + 1), Some(k), 1, 128);
        }
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        validate::name_chars(&id)?;
        ensure_unscoped(ctx)?;
        let keys = validate::present(keys)?.clone();
        let now = self.now();
        self.modify(ctx, &id, |mut secret| {
            let before = secret.tags.len();
            secret.tags.retain(|(k, _)| !keys.contains(k));
            if secret.tags.len() == before {
                return Ok((None, Empty {}));
            }
            secret.last_changed_at = now;
            Ok((Some(metadata_change(secret)), Empty {}))
        })
        .await
    }

    pub fn get_random_password(
        &self,
        ctx: &RequestCtx,
        req: GetRandomPasswordRequest,
    ) -> Result<GetRandomPasswordResponse, ApiError> {
        self.authorize(ctx, crate::authz::Target::Any)?;
        Ok(GetRandomPasswordResponse {
            random_password: password::generate(&req)?,
        })
    }
}
