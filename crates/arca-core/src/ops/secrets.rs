//! Whole-secret operations: CreateSecret, UpdateSecret, DescribeSecret, DeleteSecret,
//! RestoreSecret, TagResource, UntagResource, and GetRandomPassword.

use super::values::{digests_equal, token_required, VersionInput, VersionOutcome};
use super::{ensure_not_deleted, ensure_unscoped, metadata_change};
use crate::stages::AWSCURRENT;
use crate::value::Value;
use crate::{password, store_err, validate, Arca, RequestCtx};
use arca_store::{NewVersion, SecretRecord, StoreError};
use arca_types::arn::{random_suffix, secret_arn, SecretRef};
use arca_types::time::{to_wire, MILLIS_PER_DAY};
use arca_types::wire::*;
use arca_types::{ApiError, ErrorCode};

const DEFAULT_RECOVERY_DAYS: i64 = 30;

impl Arca {
    pub async fn create_secret(
        &self,
        ctx: &RequestCtx,
        req: CreateSecretRequest,
    ) -> Result<CreateSecretResponse, ApiError> {
        ensure_unscoped(ctx)?;
        let name = validate::required(&req.name, "Name")?.clone();
        validate::secret_name(&name)?;
        validate::description(&req.description)?;
        validate::secret_type(&req.secret_type)?;
        if let Some(k) = &req.kms_key_id {
            validate::length("KmsKeyId", k, 0, 2048)?;
        }
        let token = validate::token(&req.client_request_token)?.map(str::to_owned);
        let tags = validate::tags(req.tags.as_deref().unwrap_or_default())?;
        if req.add_replica_regions.is_some() || req.force_overwrite_replica_secret.is_some() {
            return Err(ApiError::invalid_request(
                "Arca does not support replication yet (AddReplicaRegions, ForceOverwriteReplicaSecret).",
            ));
        }
        let value = Value::from_request(req.secret_string, req.secret_binary)?;
        if value.is_some() && token.is_none() {
            return Err(token_required());
        }
        let now = self.now();
        let key = self
            .keys
            .resolve(&ctx.region, req.kms_key_id.as_deref(), now)
            .await?;

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
                        reject_existing: false,
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
            let created = self.store.create_secret(&secret, first.as_ref()).await;
            self.cache
                .invalidate(&secret.region, &secret.name, &secret.arn);
            match created {
                Ok(()) => {
                    return Ok(CreateSecretResponse {
                        arn,
                        name,
                        version_id,
                        replication_status: None,
                    })
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
            return Err(ApiError::invalid_request(
                "You can't create this secret because a secret with this name is already scheduled for deletion.",
            ));
        }
        if let (Some(t), Some(v)) = (token, value) {
            let digest = self.digest(&existing.arn, v);
            if existing.versions.iter().any(|x| {
                x.version_id == t && x.has_value && digests_equal(&x.value_digest, &digest)
            }) {
                return Ok(CreateSecretResponse {
                    arn: existing.arn,
                    name: existing.name,
                    version_id: Some(t.to_owned()),
                    replication_status: None,
                });
            }
        }
        Err(ApiError::new(
            ErrorCode::ResourceExists,
            format!(
                "The operation failed because the secret {} already exists.",
                existing.name
            ),
        ))
    }

    pub async fn update_secret(
        &self,
        ctx: &RequestCtx,
        req: UpdateSecretRequest,
    ) -> Result<UpdateSecretResponse, ApiError> {
        ensure_unscoped(ctx)?;
        let id = validate::secret_id(&req.secret_id)?.to_owned();
        validate::description(&req.description)?;
        validate::secret_type(&req.secret_type)?;
        if let Some(k) = &req.kms_key_id {
            validate::length("KmsKeyId", k, 0, 2048)?;
        }
        let token = validate::token(&req.client_request_token)?.map(str::to_owned);
        let value = Value::from_request(req.secret_string, req.secret_binary)?;
        if value.is_some() && token.is_none() {
            return Err(token_required());
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
                            reject_existing: true,
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
                        VersionOutcome::Existing(_) => Err(ApiError::internal()),
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
        let id = validate::secret_id(&req.secret_id)?;
        let secret = self.must_find(ctx, id).await?;
        Ok(self.describe(&secret, false))
    }

    pub async fn delete_secret(
        &self,
        ctx: &RequestCtx,
        req: DeleteSecretRequest,
    ) -> Result<DeleteSecretResponse, ApiError> {
        ensure_unscoped(ctx)?;
        let id = validate::secret_id(&req.secret_id)?.to_owned();
        let force = req.force_delete_without_recovery.unwrap_or(false);
        if force && req.recovery_window_in_days.is_some() {
            return Err(ApiError::invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
            ));
        }
        let days = req.recovery_window_in_days.unwrap_or(DEFAULT_RECOVERY_DAYS);
        if !(7..=30).contains(&days) {
            return Err(ApiError::invalid_parameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            ));
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
            let deleted = self.store.delete_secret(&ctx.region, &secret.arn).await;
            self.cache
                .invalidate(&ctx.region, &secret.name, &secret.arn);
            deleted.map_err(store_err)?;
            return Ok(DeleteSecretResponse {
                arn: secret.arn,
                name: secret.name,
                deletion_date: to_wire(now),
            });
        }
        let purge_at = now + days * MILLIS_PER_DAY;
        self.modify(ctx, &id, |mut secret| {
            if secret.deleted_at.is_some() {
                return Err(ApiError::invalid_request(
                    "You can't perform this operation on the secret because it was already scheduled for deletion.",
                ));
            }
            secret.deleted_at = Some(now);
            secret.purge_at = Some(purge_at);
            let out = DeleteSecretResponse {
                arn: secret.arn.clone(),
                name: secret.name.clone(),
                deletion_date: to_wire(purge_at),
            };
            Ok((Some(metadata_change(secret)), out))
        })
        .await
    }

    pub async fn restore_secret(
        &self,
        ctx: &RequestCtx,
        req: SecretIdRequest,
    ) -> Result<ArnNameResponse, ApiError> {
        ensure_unscoped(ctx)?;
        let id = validate::secret_id(&req.secret_id)?.to_owned();
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
            Ok((Some(metadata_change(secret)), out))
        })
        .await
    }

    pub async fn tag_resource(
        &self,
        ctx: &RequestCtx,
        req: TagResourceRequest,
    ) -> Result<Empty, ApiError> {
        ensure_unscoped(ctx)?;
        let id = validate::secret_id(&req.secret_id)?.to_owned();
        let new_tags = validate::tags(validate::required(&req.tags, "Tags")?)?;
        let now = self.now();
        self.modify(ctx, &id, |mut secret| {
            for (k, v) in &new_tags {
                match secret.tags.iter_mut().find(|(ek, _)| ek == k) {
                    Some(existing) => existing.1 = v.clone(),
                    None => secret.tags.push((k.clone(), v.clone())),
                }
            }
            if secret.tags.len() > validate::MAX_TAGS {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid parameter: a secret can have at most {} tags.",
                    validate::MAX_TAGS
                )));
            }
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
        ensure_unscoped(ctx)?;
        let id = validate::secret_id(&req.secret_id)?.to_owned();
        let keys = validate::required(&req.tag_keys, "TagKeys")?.clone();
        for k in &keys {
            validate::length("TagKey", k, 1, 128)?;
        }
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
        req: GetRandomPasswordRequest,
    ) -> Result<GetRandomPasswordResponse, ApiError> {
        Ok(GetRandomPasswordResponse {
            random_password: password::generate(&req)?,
        })
    }
}
