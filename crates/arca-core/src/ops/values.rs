//! Versions and their labels: GetSecretValue, PutSecretValue, UpdateSecretVersionStage,
//! ListSecretVersionIds, and `new_version_change`, the one place a version is added
//! (CreateSecret, PutSecretValue and UpdateSecret all go through it).

use super::{ensure_not_deleted, metadata_change};
use crate::answer::SecretValue;
use crate::cache::Cached;
use crate::keys::ResolvedKey;
use crate::stages::{self, AWSCURRENT, AWSPENDING};
use crate::validate::{self, Check};
use crate::value::Value;
use crate::{Arca, RequestCtx};
use arca_store::{NewVersion, SealedValue, SecretChange, SecretRecord, VersionRecord};
use arca_types::time::{day_floor, to_wire, Millis};
use arca_types::wire::*;
use arca_types::ApiError;
use base64::Engine;

/// A version to add: its id (the ClientRequestToken), value, the labels to give it and
/// the key to seal it under.
pub(crate) struct VersionInput<'a> {
    pub token: &'a str,
    pub value: &'a Value,
    pub labels: &'a [String],
    pub key: &'a ResolvedKey,
}

/// What adding a version with a given token amounts to.
pub(crate) enum VersionOutcome {
    /// The token already names a version with the same value: nothing to write.
    Existing(VersionRecord),
    /// A new version: the change to apply and the version as it will be stored.
    New(Box<SecretChange>, VersionRecord),
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
        } = input;
        let digest = self.digest(&secret.arn, value);
        // RotateSecret stages its token as a value-less AWSPENDING version before the
        // rotation function's createSecret step fills it (as AWS does: the templates refuse
        // a token that isn't staged). Filling that placeholder is the one way to write a
        // value into an existing version id.
        let mut placeholder = None;
        // CreateSecret, PutSecretValue and UpdateSecret alike accept a retry with the same
        // token and value, and refuse the token with another value (recorded: moto's
        // AWS-verified same-token tests of all three).
        if let Some(existing) = secret.versions.iter().find(|v| v.version_id == token) {
            if !existing.has_value {
                placeholder = Some(existing.clone());
            } else if digests_equal(&existing.value_digest, &digest) {
                return Ok(VersionOutcome::Existing(existing.clone()));
            } else {
                return Err(ApiError::token_in_use(token, &secret.arn));
            }
        }
        let sealed = self.seal(&key.key_id, &secret.arn, token, value)?;
        let version = VersionRecord {
            version_id: token.to_owned(),
            stages: Vec::new(),
            created_at: placeholder.as_ref().map_or(now, |p| p.created_at),
            last_accessed_day: None,
            kms_key_ids: vec![key
                .arn
                .clone()
                .unwrap_or_else(|| DEFAULT_KEY_STORED.to_owned())],
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
        let current_before = stages::holder(&after, AWSCURRENT).map(|v| v.version_id.clone());
        for l in &labels {
            stages::attach(&mut after, l, token);
        }
        // A new version taking AWSCURRENT leaves the old one with AWSPREVIOUS and without
        // AWSPENDING, whose rotation is over (recorded: LocalStack
        // test_update_secret_version_stages_current_pending, where the version holding
        // AWSCURRENT and AWSPENDING kept only AWSPREVIOUS after a plain PutSecretValue).
        if let Some(old) = current_before.filter(|old| old != token) {
            if labels.iter().any(|l| l == AWSCURRENT) && !labels.iter().any(|l| l == AWSPENDING) {
                stages::detach(&mut after, AWSPENDING, &old);
            }
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
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.version_id("versionId", &req.version_id);
        check.stage("versionStage", req.version_stage.as_deref());
        check.finish()?;
        let id = validate::present(id)?;
        validate::name_chars(id)?;
        let entry = self.must_find_shared(ctx, id).await?;
        let (version, value) = self
            .read_version(
                ctx,
                &entry,
                req.version_id.as_deref(),
                req.version_stage.as_deref(),
            )
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
        ctx: &RequestCtx,
        entry: &Cached,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<(usize, Value), ApiError> {
        let secret = &entry.record;
        ensure_not_deleted(secret)?;
        let index = match (version_id, stage) {
            (Some(id), stage) => {
                let i = secret
                    .versions
                    .iter()
                    .position(|v| v.version_id == id)
                    .ok_or_else(|| ApiError::no_value_for_version(id))?;
                if let Some(st) = stage {
                    if !secret.versions[i].stages.iter().any(|s| s == st) {
                        return Err(ApiError::stage_not_on_version());
                    }
                }
                i
            }
            (None, stage) => {
                let st = stage.unwrap_or(AWSCURRENT);
                entry
                    .holder_index(st)
                    .ok_or_else(|| ApiError::no_value_for_stage(st))?
            }
        };
        let version = &secret.versions[index];
        if !version.has_value {
            // The AWSPENDING placeholder of a rotation before its createSecret step
            // (recorded: AWS answers a read of it by label with the label's text,
            // aws/aws-sdk-js-v3#7701).
            return Err(match (version_id, stage) {
                (None, st) => ApiError::no_value_for_stage(st.unwrap_or(AWSCURRENT)),
                (Some(id), _) => ApiError::no_value_for_version(id),
            });
        }
        // A version sealed under a customer key reads only with that key's permission.
        if let Some(k) = version.kms_key_ids.first() {
            self.authorize_key(ctx, "kms:Decrypt", k, &secret.arn)?;
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
        self.reads.touch(&secret.arn, &version.version_id, today);
    }

    pub async fn put_secret_value(
        &self,
        ctx: &RequestCtx,
        req: PutSecretValueRequest,
    ) -> Result<PutSecretValueResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.token(&req.client_request_token);
        check.secret_value(
            Value::string_len(&req.secret_string),
            Value::binary_len(&req.secret_binary),
        );
        check.count("versionStages", req.version_stages.as_deref(), 1, 20);
        for (i, s) in req.version_stages.iter().flatten().enumerate() {
            check.stage(&format!("versionStages.{}.member", i + 1), Some(s));
        }
        let rt = req.rotation_token.as_ref().map(|t| t.expose());
        check.hidden_length("rotationToken", rt.map(str::len), 36, 256);
        check.pattern(
            "rotationToken",
            rt,
            |t| t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            r"^[a-zA-Z0-9\-]+$",
            true,
        );
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        validate::name_chars(&id)?;
        let labels = req
            .version_stages
            .clone()
            .unwrap_or_else(|| vec![AWSCURRENT.to_owned()]);
        let value = Value::from_request(req.secret_string, req.secret_binary)?
            .ok_or_else(ApiError::value_required)?;
        let token = req
            .client_request_token
            .clone()
            .ok_or_else(ApiError::token_required)?;
        let first = self.must_find(ctx, &id).await?;
        ensure_not_deleted(&first)?;
        let key = self
            .keys
            .resolve(&ctx.region, first.kms_key_id.as_deref(), self.now())
            .await?;
        self.authorize_key(ctx, "kms:GenerateDataKey", &key.key_id, &first.arn)?;
        let now = self.now();
        self.modify(ctx, &id, |secret| {
            ensure_not_deleted(&secret)?;
            if let Some(rt) = &req.rotation_token {
                self.check_rotation_token(&secret, rt, &token)?;
            }
            let (arn, name) = (secret.arn.clone(), secret.name.clone());
            let input = VersionInput {
                token: &token,
                value: &value,
                labels: &labels,
                key: &key,
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
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        let label = check.required("versionStage", &req.version_stage);
        check.stage("versionStage", label.map(String::as_str));
        check.version_id("removeFromVersionId", &req.remove_from_version_id);
        check.version_id("moveToVersionId", &req.move_to_version_id);
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        validate::name_chars(&id)?;
        let label = validate::present(label)?.clone();
        let remove_from = req.remove_from_version_id.clone();
        let move_to = req.move_to_version_id.clone();
        if remove_from.is_none() && move_to.is_none() {
            return Err(ApiError::move_or_remove_required());
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
                    return Err(ApiError::version_not_found(r));
                }
            }
            match &move_to {
                Some(target) => {
                    if !exists(target) {
                        return Err(ApiError::version_not_found(target));
                    }
                    if let Some(h) = &holder {
                        if h != target && remove_from.as_deref() != Some(h.as_str()) {
                            return Err(ApiError::remove_from_required(&label, h));
                        }
                    }
                    if holder.is_none() {
                        if let Some(r) = &remove_from {
                            return Err(ApiError::label_not_on_version(&label, r));
                        }
                    }
                    stages::attach(&mut after, &label, target);
                }
                None => {
                    let r = remove_from.as_deref().unwrap_or_default();
                    if holder.as_deref() != Some(r) {
                        return Err(ApiError::label_not_on_version(&label, r));
                    }
                    if label == AWSCURRENT {
                        return Err(ApiError::current_cannot_be_removed());
                    }
                    stages::detach(&mut after, &label, r);
                }
            }
            stages::check_label_quota(&after)?;
            let restaged = stages::restaged(&before, &after);
            let out = ArnNameResponse {
                arn: secret.arn.clone(),
                name: secret.name.clone(),
            };
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
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.max_results(req.max_results, 100);
        check.next_token(&req.next_token);
        check.finish()?;
        let id = validate::present(id)?;
        validate::name_chars(id)?;
        let limit = req.max_results.map_or(100, |n| n as usize);
        let token = req.next_token.as_deref();
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
                    kms_key_ids: v.kms_key_ids.iter().map(|k| wire_key_id(k)).collect(),
                })
                .collect(),
            next_token,
            arn: secret.arn.clone(),
            name: secret.name.clone(),
        })
    }
}

/// How a version's key shows in ListSecretVersionIds: the default key as AWS names it
/// there (recorded: `"KmsKeyIds": ["DefaultEncryptionKey"]`, LocalStack
/// test_update_secret_version_stages_current_previous), a customer key by its ARN.
fn wire_key_id(stored: &str) -> String {
    if stored == DEFAULT_KEY_STORED {
        "DefaultEncryptionKey".to_owned()
    } else {
        stored.to_owned()
    }
}

/// What a version record holds for the default key.
const DEFAULT_KEY_STORED: &str = "DEFAULT";

pub(crate) fn invalid_next_token() -> ApiError {
    ApiError::invalid_next_token()
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
