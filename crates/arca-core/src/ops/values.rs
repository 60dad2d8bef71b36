//! Versions and their labels: GetSecretValue, PutSecretValue, UpdateSecretVersionStage,
//! ListSecretVersionIds, and `new_version_change`, the one place a version is added
//! (CreateSecret, PutSecretValue and UpdateSecret all go through it).

use super::{ensure_not_deleted, metadata_change};
use crate::answer::SecretValue;
use crate::cache::Cached;
use crate::keys::ResolvedKey;
use crate::stages::{self, AWSCURRENT};
use crate::validate;
use crate::value::Value;
use crate::{Arca, RequestCtx};
use arca_store::{NewVersion, SealedValue, SecretChange, SecretRecord, VersionRecord};
use arca_types::time::{day_floor, to_wire, Millis};
use arca_types::wire::*;
use arca_types::{ApiError, ErrorCode};
use base64::Engine;

/// A version to add: its id (the ClientRequestToken), value, the labels to give it, the
/// key to seal it under, and whether reusing an existing token is an error.
pub(crate) struct VersionInput<'a> {
    pub token: &'a str,
    pub value: &'a Value,
    pub labels: &'a [String],
    pub key: &'a ResolvedKey,
    /// UpdateSecret's rule: any reuse of a token is an error there, where PutSecretValue
    /// and CreateSecret accept a same-value retry.
    pub reject_existing: bool,
}

/// What adding a version with a given token amounts to.
pub(crate) enum VersionOutcome {
    /// The token already names a version with the same value: nothing to write.
    Existing(VersionRecord),
    /// A new version: the change to apply and the version as it will be stored.
    New(Box<SecretChange>, VersionRecord),
}

/// A missing ClientRequestToken: SDKs always fill one in; AWS documents that raw HTTP
/// callers must generate it themselves (LocalStack's recordings of AWS show
/// InvalidRequestException for the omission).
pub(crate) fn token_required() -> ApiError {
    ApiError::invalid_request(
        "You must provide a ClientRequestToken when you provide a secret value; SDKs and the AWS CLI generate one for you.",
    )
}

impl Arca {
    /// Plans adding `input` to `secret`: moves the labels (AWSCURRENT's old holder
    /// becomes AWSPREVIOUS), checks the quotas and prunes old deprecated versions.
    pub(crate) fn new_version_change(
        &self,
        mut secret: SecretRecord,
        input: VersionInput<'_>,
        now: Millis,
    ) -> Result<VersionOutcome, ApiError> {
        let VersionInput {
            token,
            value,
            labels,
            key,
            reject_existing,
        } = input;
        let digest = self.digest(&secret.arn, value);
        // RotateSecret stages its token as a value-less AWSPENDING version before the
        // rotation function's createSecret step fills it (as AWS does: the templates refuse
        // a token that isn't staged). Filling that placeholder is the one way to write a
        // value into an existing version id.
        let mut placeholder = None;
        if let Some(existing) = secret.versions.iter().find(|v| v.version_id == token) {
            if !existing.has_value && !reject_existing {
                placeholder = Some(existing.clone());
            } else {
                let same = existing.has_value && digests_equal(&existing.value_digest, &digest);
                if same && !reject_existing {
                    return Ok(VersionOutcome::Existing(existing.clone()));
                }
                return Err(ApiError::new(
                    ErrorCode::ResourceExists,
                    "A resource with the ID you requested already exists. You can't modify an existing version, you can only create new versions.",
                ));
            }
        }
        let sealed = self.seal(&key.key_id, &secret.arn, token, value)?;
        let version = VersionRecord {
            version_id: token.to_owned(),
            stages: Vec::new(),
            created_at: placeholder.as_ref().map_or(now, |p| p.created_at),
            last_accessed_day: None,
            kms_key_ids: vec![key.arn.clone().unwrap_or_else(|| "DEFAULT".to_owned())],
            value_digest: digest,
            has_value: true,
        };
        let before = secret.versions.clone();
        let mut after = before.clone();
        after.retain(|v| v.version_id != token);
        after.push(version);
        let mut labels: Vec<String> = labels.to_vec();
        // The first version of a secret always becomes AWSCURRENT.
        if stages::holder(&after, AWSCURRENT).is_none() && !labels.iter().any(|l| l == AWSCURRENT) {
            labels.push(AWSCURRENT.to_owned());
        }
        for l in &labels {
            stages::attach(&mut after, l, token);
        }
        stages::check_label_quota(&after)?;
        let removed = stages::versions_to_prune(&after, now)?;
        let restaged = stages::restaged(&before, &after);
        let version = after
            .iter()
            .find(|v| v.version_id == token)
            .cloned()
            .ok_or_else(ApiError::internal)?;
        secret.last_changed_at = now;
        if version.stages.iter().any(|s| s == AWSCURRENT) {
            crate::rotation::note_manual_rotation(&mut secret, now);
        }
        let mut change = metadata_change(secret);
        change.new_versions.push(NewVersion {
            version: version.clone(),
            sealed: SealedValue(sealed),
        });
        change.restaged = restaged
            .into_iter()
            .filter(|(id, _)| !removed.contains(id) && id != token)
            .collect();
        change.removed_versions = removed;
        if placeholder.is_some() {
            // The store applies removals before insertions: the placeholder row goes and
            // the filled version takes its id.
            change.removed_versions.push(token.to_owned());
        }
        Ok(VersionOutcome::New(Box::new(change), version))
    }

    pub async fn get_secret_value(
        &self,
        ctx: &RequestCtx,
        req: GetSecretValueRequest,
    ) -> Result<GetSecretValueResponse, ApiError> {
        self.get_secret_value_shared(ctx, req)
            .await
            .map(SecretValue::into_response)
    }

    /// GetSecretValue answered from the shared cache entry: the answer borrows ARN, name,
    /// version id and labels from the cached record (the read path renders it directly).
    pub async fn get_secret_value_shared(
        &self,
        ctx: &RequestCtx,
        req: GetSecretValueRequest,
    ) -> Result<SecretValue, ApiError> {
        let id = validate::secret_id(&req.secret_id)?;
        let version_id = validate::version_id("VersionId", &req.version_id)?;
        if let Some(s) = &req.version_stage {
            validate::stage("VersionStage", s)?;
        }
        let entry = self.must_find_shared(ctx, id).await?;
        let (version, value) = self
            .read_version(&entry, version_id.as_deref(), req.version_stage.as_deref())
            .await?;
        if let Some(v) = entry.record.versions.get(version) {
            self.note_access(&entry.record, v);
        }
        Ok(SecretValue {
            entry,
            version,
            value,
        })
    }

    /// Reads one version of a live secret: by id, by label, or AWSCURRENT. Returns the
    /// version's index in the record, and its opened value.
    pub(crate) async fn read_version(
        &self,
        entry: &Cached,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<(usize, Value), ApiError> {
        let secret = &entry.record;
        ensure_not_deleted(secret)?;
        let index = match (version_id, stage) {
            (Some(id), stage) => {
                let i = secret.versions.iter().position(|v| v.version_id == id).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ResourceNotFound,
                        format!("Secrets Manager can't find the specified secret value for VersionId: {id}"),
                    )
                })?;
                if let Some(st) = stage {
                    if !secret.versions[i].stages.iter().any(|s| s == st) {
                        return Err(ApiError::invalid_request(
                            "You provided a VersionStage that is not associated to the provided VersionId.",
                        ));
                    }
                }
                i
            }
            (None, stage) => {
                let st = stage.unwrap_or(AWSCURRENT);
                entry.holder_index(st).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ResourceNotFound,
                        format!("Secrets Manager can't find the specified secret value for staging label: {st}"),
                    )
                })?
            }
        };
        let version = &secret.versions[index];
        if !version.has_value {
            return Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {}",
                    version.version_id
                ),
            ));
        }
        let slot = entry.sealed_slot(&version.version_id);
        let value = self.open(&secret.arn, &version.version_id, slot).await?;
        Ok((index, value))
    }

    /// Records LastAccessedDate (day granularity) when the day changed, off the read
    /// path (see `accessed`), so that reads stay reads.
    pub(crate) fn note_access(&self, secret: &SecretRecord, version: &VersionRecord) {
        let today = day_floor(self.now());
        if secret.last_accessed_day == Some(today) && version.last_accessed_day == Some(today) {
            return;
        }
        self.accessed
            .record(&secret.arn, &version.version_id, today);
    }

    pub async fn put_secret_value(
        &self,
        ctx: &RequestCtx,
        req: PutSecretValueRequest,
    ) -> Result<PutSecretValueResponse, ApiError> {
        let id = validate::secret_id(&req.secret_id)?.to_owned();
        let token = validate::token(&req.client_request_token)?.map(str::to_owned);
        let labels = match &req.version_stages {
            None => vec![AWSCURRENT.to_owned()],
            Some(l) => {
                if l.is_empty() || l.len() > 20 {
                    return Err(ApiError::invalid_parameter(
                        "Invalid parameter: VersionStages must contain between 1 and 20 items.",
                    ));
                }
                for s in l {
                    validate::stage("VersionStages", s)?;
                }
                l.clone()
            }
        };
        if let Some(rt) = &req.rotation_token {
            validate::length("RotationToken", rt, 36, 256)?;
            if !rt.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(ApiError::invalid_parameter(
                    "Invalid parameter: RotationToken must match ^[a-zA-Z0-9\\-]+$.",
                ));
            }
        }
        let value =
            Value::from_request(req.secret_string, req.secret_binary)?.ok_or_else(|| {
                ApiError::invalid_parameter("You must provide either SecretString or SecretBinary.")
            })?;
        let token = token.ok_or_else(token_required)?;
        let first = self.must_find(ctx, &id).await?;
        ensure_not_deleted(&first)?;
        let key = self
            .keys
            .resolve(&ctx.region, first.kms_key_id.as_deref(), self.now())
            .await?;
        let now = self.now();
        self.modify(ctx, &id, |secret| {
            ensure_not_deleted(&secret)?;
            let (arn, name) = (secret.arn.clone(), secret.name.clone());
            let input = VersionInput {
                token: &token,
                value: &value,
                labels: &labels,
                key: &key,
                reject_existing: false,
            };
            match self.new_version_change(secret, input, now)? {
                VersionOutcome::Existing(v) => Ok((
                    None,
                    PutSecretValueResponse {
                        arn,
                        name,
                        version_id: v.version_id,
                        version_stages: v.stages,
                    },
                )),
                VersionOutcome::New(change, v) => Ok((
                    Some(*change),
                    PutSecretValueResponse {
                        arn,
                        name,
                        version_id: v.version_id,
                        version_stages: v.stages,
                    },
                )),
            }
        })
        .await
    }

    pub async fn update_secret_version_stage(
        &self,
        ctx: &RequestCtx,
        req: UpdateSecretVersionStageRequest,
    ) -> Result<ArnNameResponse, ApiError> {
        let id = validate::secret_id(&req.secret_id)?.to_owned();
        let label = validate::required(&req.version_stage, "VersionStage")?.clone();
        validate::stage("VersionStage", &label)?;
        let remove_from = validate::version_id("RemoveFromVersionId", &req.remove_from_version_id)?;
        let move_to = validate::version_id("MoveToVersionId", &req.move_to_version_id)?;
        if remove_from.is_none() && move_to.is_none() {
            return Err(ApiError::invalid_parameter(
                "You must specify either MoveToVersionId or RemoveFromVersionId.",
            ));
        }
        let now = self.now();
        self.modify(ctx, &id, |mut secret| {
            ensure_not_deleted(&secret)?;
            let before = secret.versions.clone();
            let mut after = before.clone();
            let holder = stages::holder(&before, &label).map(|v| v.version_id.clone());
            let exists = |vid: &str| before.iter().any(|v| v.version_id == vid);
            if let Some(r) = &remove_from {
                if !exists(r) {
                    return Err(version_not_found(r));
                }
            }
            match &move_to {
                Some(target) => {
                    if !exists(target) {
                        return Err(version_not_found(target));
                    }
                    if let Some(h) = &holder {
                        if h != target && remove_from.as_deref() != Some(h.as_str()) {
                            return Err(ApiError::invalid_parameter(format!(
                                "The parameter RemoveFromVersionId can't be empty. Staging label {label} is currently attached to version {h}, so you must explicitly reference that version in RemoveFromVersionId."
                            )));
                        }
                    }
                    if holder.is_none() {
                        if let Some(r) = &remove_from {
                            return Err(not_attached(&label, r));
                        }
                    }
                    stages::attach(&mut after, &label, target);
                }
                None => {
                    let r = remove_from.as_deref().unwrap_or_default();
                    if holder.as_deref() != Some(r) {
                        return Err(not_attached(&label, r));
                    }
                    if label == AWSCURRENT {
                        return Err(ApiError::invalid_parameter(
                            "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.",
                        ));
                    }
                    stages::detach(&mut after, &label, r);
                }
            }
            stages::check_label_quota(&after)?;
            let restaged = stages::restaged(&before, &after);
            let out = ArnNameResponse { arn: secret.arn.clone(), name: secret.name.clone() };
            if restaged.is_empty() {
                return Ok((None, out));
            }
            secret.last_changed_at = now;
            let mut change = metadata_change(secret);
            change.restaged = restaged;
            Ok((Some(change), out))
        })
        .await
    }

    pub async fn list_secret_version_ids(
        &self,
        ctx: &RequestCtx,
        req: ListSecretVersionIdsRequest,
    ) -> Result<ListSecretVersionIdsResponse, ApiError> {
        let id = validate::secret_id(&req.secret_id)?;
        let limit = validate::max_results(req.max_results, 100)?.unwrap_or(100);
        let token = validate::next_token(&req.next_token)?;
        let secret = self.must_find(ctx, id).await?;
        let include_deprecated = req.include_deprecated.unwrap_or(false);
        // Newest first; deprecated versions only when asked for.
        let mut versions: Vec<&VersionRecord> = secret
            .versions
            .iter()
            .filter(|v| include_deprecated || !v.stages.is_empty())
            .collect();
        versions.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(b.version_id.cmp(&a.version_id))
        });
        let start = match token {
            None => 0,
            Some(t) => {
                let after = decode_version_token(t)?;
                versions
                    .iter()
                    .position(|v| v.version_id == after)
                    .map(|i| i + 1)
                    .ok_or_else(invalid_next_token)?
            }
        };
        let page: Vec<&VersionRecord> = versions.iter().skip(start).take(limit).copied().collect();
        let next_token = if start + page.len() < versions.len() {
            page.last().map(|v| encode_version_token(&v.version_id))
        } else {
            None
        };
        Ok(ListSecretVersionIdsResponse {
            versions: page
                .into_iter()
                .map(|v| SecretVersionsListEntry {
                    version_id: v.version_id.clone(),
                    version_stages: if v.stages.is_empty() {
                        None
                    } else {
                        Some(v.stages.clone())
                    },
                    last_accessed_date: v.last_accessed_day.map(to_wire),
                    created_date: to_wire(v.created_at),
                    kms_key_ids: v.kms_key_ids.clone(),
                })
                .collect(),
            next_token,
            arn: secret.arn.clone(),
            name: secret.name.clone(),
        })
    }
}

fn version_not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("Secrets Manager can't find the specified secret version: {id}"),
    )
}

fn not_attached(label: &str, version: &str) -> ApiError {
    ApiError::invalid_parameter(format!(
        "The staging label {label} is not attached to the version {version}, so you can't remove it."
    ))
}

pub(crate) fn invalid_next_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidNextToken,
        "The NextToken value is invalid.",
    )
}

fn encode_version_token(version_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{version_id}"))
}

fn decode_version_token(t: &str) -> Result<String, ApiError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| invalid_next_token())?;
    let s = String::from_utf8(raw).map_err(|_| invalid_next_token())?;
    s.strip_prefix("v1:")
        .map(str::to_owned)
        .ok_or_else(invalid_next_token)
}

/// Digests are keyed MACs of secret values: compared in constant time.
pub(crate) fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
