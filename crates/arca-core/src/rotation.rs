//! Rotation as Secrets Manager runs it: RotateSecret and CancelRotateSecret, the rotation
//! state kept with each secret, and the two calls the scheduler (arca-jobs) makes:
//! `claim_due_rotations` (take a lease on due work: a scheduled rotation, a retry, or an
//! attempt whose runner died) and `finish_rotation_attempt` (record the outcome, schedule
//! the next window or a retry with backoff). A secret's `rotation_due_at` is the one time
//! the scheduler must look at it; the lease is taken with the store's revision check, so
//! two rotations of one secret never run at once, even across processes.

use crate::events::secret_event as event;
use crate::ops::{ensure_not_deleted, ensure_unscoped, metadata_change};
use crate::schedule::RotationSchedule;
use crate::stages::{self, AWSCURRENT, AWSPENDING};
use crate::validate::{self, Check};
use crate::{store_err, Arca, RequestCtx};
use arca_store::{EventRecord, NewVersion, SealedValue, SecretRecord, VersionRecord};
use arca_types::secret::SecretString;
use arca_types::time::{to_wire, Millis};
use arca_types::wire::{
    DescribeSecretResponse, RotateSecretRequest, RotateSecretResponse, RotationRules,
    SecretIdRequest,
};
use arca_types::{ApiError, ErrorCode};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Event names (the stable `name` field of recorded events).
pub const EVENT_ROTATION_STARTED: &str = "RotationStarted";
pub const EVENT_ROTATION_SUCCEEDED: &str = "RotationSucceeded";
pub const EVENT_ROTATION_FAILED: &str = "RotationFailed";
pub const EVENT_ROTATION_CANCELLED: &str = "RotationCancelled";

/// How long a claimed attempt may run before another runner may take it over.
pub const DEFAULT_LEASE_MS: Millis = 15 * 60 * 1000;
/// Retries back off exponentially from this, with jitter...
const RETRY_BASE_MS: Millis = 30 * 1000;
/// ...up to this.
const RETRY_CAP_MS: Millis = 60 * 60 * 1000;

/// Rotation configuration and progress, kept in the secret's `extra.rotation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationState {
    pub enabled: bool,
    pub lambda_arn: Option<String>,
    pub rules: Option<RotationRules>,
    pub last_rotated_at: Option<Millis>,
    /// Start of the next rotation window (DescribeSecret's NextRotationDate).
    pub next_rotation_at: Option<Millis>,
    pub window_end: Option<Millis>,
    /// The rotation in progress, if any.
    pub job: Option<RotationJob>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationJob {
    /// The new version's id (the ClientRequestToken).
    pub token: String,
    /// RotateImmediately=false: only the testSecret step runs.
    pub test_only: bool,
    pub attempt: u32,
    pub started_at: Millis,
    /// A runner holds the attempt until then, by the store's shared clock when it has
    /// one (PostgreSQL: the database server's, so that nodes whose clocks differ agree on
    /// when a lease ran out), else by this node's.
    pub lease_until: Option<Millis>,
    /// A failed attempt is retried from then.
    pub retry_at: Option<Millis>,
    pub last_error: Option<String>,
}

/// A rotation attempt a runner now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRotation {
    pub region: String,
    pub arn: String,
    pub lambda_arn: String,
    pub job: RotationJob,
    /// The RotationToken handed to the function in each event (derived from the root
    /// key, never stored; see [`Arca::rotation_token`]).
    pub rotation_token: SecretString,
}

/// How an attempt ended: Ok, or the step that failed and why (no secret material).
pub type AttemptOutcome = Result<(), (String, String)>;

pub fn rotation_state(s: &SecretRecord) -> RotationState {
    s.extra
        .get("rotation")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Recomputes when the scheduler must look at `s` (e.g. after RestoreSecret: the
/// scheduler stops looking at secrets scheduled for deletion).
pub(crate) fn reschedule(s: &mut SecretRecord) {
    if has_rotation_state(s) {
        let st = rotation_state(s);
        set_rotation_state(s, &st);
    }
}

pub(crate) fn has_rotation_state(s: &SecretRecord) -> bool {
    s.extra.get("rotation").is_some()
}

pub(crate) fn set_rotation_state(s: &mut SecretRecord, state: &RotationState) {
    if !s.extra.is_object() {
        s.extra = serde_json::json!({});
    }
    if let (Some(obj), Ok(v)) = (s.extra.as_object_mut(), serde_json::to_value(state)) {
        obj.insert("rotation".into(), v);
    }
    s.rotation_due_at = due_at(state);
}

/// The one time the scheduler must look at a secret with this state. A job that no
/// runner has claimed yet is due at once, whatever the scheduler's clock says: the node
/// that accepted RotateSecret may not be the one running the scheduler, and their clocks
/// may differ.
fn due_at(state: &RotationState) -> Option<Millis> {
    match &state.job {
        Some(job) => Some(job.lease_until.or(job.retry_at).unwrap_or(0)),
        None if state.enabled => state.next_rotation_at,
        None => None,
    }
}

/// Fills the rotation fields of DescribeSecret / ListSecrets.
pub(crate) fn describe_rotation(s: &SecretRecord, out: &mut DescribeSecretResponse) {
    if !has_rotation_state(s) {
        return;
    }
    let st = rotation_state(s);
    out.rotation_enabled = Some(st.enabled);
    out.rotation_lambda_arn = st.lambda_arn.clone();
    // Stored rules are shown the way AWS echoes them (e.g. rate(10 days) also as
    // AutomaticallyAfterDays 10).
    out.rotation_rules = st.rules.as_ref().map(|r| {
        RotationSchedule::from_rules(r)
            .map(|s| s.to_rules())
            .unwrap_or_else(|_| r.clone())
    });
    out.last_rotated_date = st.last_rotated_at.map(to_wire);
    if st.enabled {
        out.next_rotation_date = st.next_rotation_at.map(to_wire);
    }
}

/// A manual PutSecretValue/UpdateSecret that makes a new AWSCURRENT counts as a rotation
/// for the schedule, as in AWS: the next window is counted from it.
pub(crate) fn note_manual_rotation(s: &mut SecretRecord, now: Millis) {
    if !has_rotation_state(s) {
        return;
    }
    let mut st = rotation_state(s);
    if !st.enabled || st.job.is_some() {
        return;
    }
    st.last_rotated_at = Some(now);
    schedule_next(&mut st, now);
    set_rotation_state(s, &st);
}

fn schedule_next(st: &mut RotationState, now: Millis) {
    let window = st
        .rules
        .as_ref()
        .and_then(|r| RotationSchedule::from_rules(r).ok())
        .and_then(|sch| sch.next_window(st.last_rotated_at.unwrap_or(now), now));
    st.next_rotation_at = window.map(|w| w.0);
    st.window_end = window.map(|w| w.1);
}

fn retry_delay(attempt: u32) -> Millis {
    let exp = RETRY_BASE_MS.saturating_mul(1i64 << attempt.min(20));
    let ceiling = exp.min(RETRY_CAP_MS);
    // Jitter in [ceiling/2, ceiling] keeps retries spread yet never immediate.
    rand::thread_rng().gen_range(ceiling / 2..=ceiling)
}

/// A rotation is in progress when AWSPENDING sits on a version other than AWSCURRENT's.
fn pending_elsewhere(s: &SecretRecord) -> Option<String> {
    let pending = stages::holder(&s.versions, AWSPENDING)?;
    let current = stages::holder(&s.versions, AWSCURRENT).map(|v| v.version_id.as_str());
    (Some(pending.version_id.as_str()) != current).then(|| pending.version_id.clone())
}

/// The value-less AWSPENDING version a rotation's token names until createSecret fills it.
fn pending_placeholder(s: &SecretRecord, token: &str, now: Millis) -> NewVersion {
    NewVersion {
        version: VersionRecord {
            version_id: token.to_owned(),
            stages: vec![AWSPENDING.to_owned()],
            created_at: now,
            last_accessed_day: None,
            kms_key_ids: vec![s.kms_key_id.clone().unwrap_or_else(|| "DEFAULT".to_owned())],
            value_digest: Vec::new(),
            has_value: false,
        },
        sealed: SealedValue(Vec::new()),
    }
}

fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Arca {
    /// PutSecretValue's RotationToken ties the write to the rotation in progress (docs:
    /// "Secrets Manager validates the identity with the rotation token"): it must be the
    /// token that rotation handed its function, and the write must be of that rotation's
    /// version. Compared in constant time: the token is a credential.
    pub(crate) fn check_rotation_token(
        &self,
        s: &SecretRecord,
        given: &SecretString,
        version_id: &str,
    ) -> Result<(), ApiError> {
        use subtle::ConstantTimeEq;
        let st = rotation_state(s);
        let matches = st.job.as_ref().is_some_and(|j| {
            let expected = self.rotation_token(&s.arn, j);
            bool::from(
                expected
                    .expose()
                    .as_bytes()
                    .ct_eq(given.expose().as_bytes()),
            ) && j.token == version_id
        });
        if matches {
            Ok(())
        } else {
            Err(ApiError::rotation_token_mismatch())
        }
    }

    /// The RotationToken of the rotation `job` of secret `arn`: a keyed digest of the
    /// rotation's identity (its version and start), so it is never stored and is the same
    /// for every attempt of that rotation.
    pub fn rotation_token(&self, arn: &str, job: &RotationJob) -> SecretString {
        let t = self
            .keys
            .digest()
            .rotation_token(arn, &job.token, job.started_at);
        SecretString::new(t.as_str().to_owned())
    }

    pub async fn rotate_secret(
        &self,
        ctx: &RequestCtx,
        req: RotateSecretRequest,
    ) -> Result<RotateSecretResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.token(&req.client_request_token);
        check.length(
            "rotationLambdaARN",
            req.rotation_lambda_arn.as_deref(),
            0,
            2048,
        );
        if let Some(r) = &req.rotation_rules {
            RotationSchedule::check_rules(&mut check, r);
        }
        check.length(
            "externalSecretRotationRoleArn",
            req.external_secret_rotation_role_arn.as_deref(),
            20,
            2048,
        );
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        validate::name_chars(&id)?;
        // Before the secret is looked up, and as InvalidParameterException (recorded).
        let token = req
            .client_request_token
            .clone()
            .ok_or_else(ApiError::rotation_token_required)?;
        ensure_unscoped(ctx)?;
        if req.external_secret_rotation_metadata.is_some()
            || req.external_secret_rotation_role_arn.is_some()
        {
            return Err(ApiError::external_rotation_unsupported());
        }
        let schedule = match &req.rotation_rules {
            Some(r) => Some(RotationSchedule::from_rules(r)?),
            None => None,
        };
        let rotate_now = req.rotate_immediately.unwrap_or(true);
        // A replica refuses rotation before its function is even looked at.
        self.refuse_replica(ctx, &id).await?;
        if let Some(arn) = &req.rotation_lambda_arn {
            if !arn.is_empty() && !self.rotation_function_exists(arn).await? {
                return Err(ApiError::cannot_invoke_function());
            }
        }
        let now = self.now();
        let resp = self
            .modify(ctx, &id, |mut secret| {
                ensure_not_deleted(&secret)?;
                let mut st = rotation_state(&secret);
                if let Some(arn) = req.rotation_lambda_arn.as_ref().filter(|a| !a.is_empty()) {
                    st.lambda_arn = Some(arn.clone());
                }
                let Some(lambda_arn) = st.lambda_arn.clone() else {
                    return Err(ApiError::no_rotation_function());
                };
                if st.job.is_some() || pending_elsewhere(&secret).is_some() {
                    return Err(ApiError::rotation_in_progress());
                }
                if let Some(sch) = &schedule {
                    st.rules = Some(sch.to_stored_rules());
                }
                st.enabled = true;
                let job_token = token.clone();
                if rotate_now && secret.versions.iter().any(|v| v.version_id == job_token) {
                    return Err(ApiError::token_in_use(&job_token, &secret.arn));
                }
                st.job = Some(RotationJob {
                    token: job_token.clone(),
                    test_only: !rotate_now,
                    attempt: 0,
                    started_at: now,
                    lease_until: None,
                    retry_at: None,
                    last_error: None,
                });
                // The schedule counts from the last rotation (or from now for a first one).
                schedule_next(&mut st, now);
                set_rotation_state(&mut secret, &st);
                let resp = RotateSecretResponse {
                    arn: secret.arn.clone(),
                    name: secret.name.clone(),
                    version_id: rotate_now.then(|| job_token.clone()),
                };
                let placeholder = rotate_now.then(|| pending_placeholder(&secret, &job_token, now));
                let event = event(EVENT_ROTATION_STARTED, &secret, Some(&job_token), now)
                    .with_detail(serde_json::json!({"trigger": "RotateSecret", "rotateImmediately": rotate_now, "lambdaArn": lambda_arn}));
                let mut change = metadata_change(secret);
                change.new_versions.extend(placeholder);
                change.events.push(event);
                Ok((Some(change), resp))
            })
            .await?;
        self.wake_rotation();
        Ok(resp)
    }

    pub async fn cancel_rotate_secret(
        &self,
        ctx: &RequestCtx,
        req: SecretIdRequest,
    ) -> Result<RotateSecretResponse, ApiError> {
        let id = validate::only_secret_id(&req.secret_id)?.to_owned();
        ensure_unscoped(ctx)?;
        let now = self.now();
        let resp = self
            .modify(ctx, &id, |mut secret| {
                ensure_not_deleted(&secret)?;
                let mut st = rotation_state(&secret);
                let job = st.job.take();
                // AWS leaves the labels as they are: a partly made AWSPENDING version stays
                // until the caller removes the label.
                st.enabled = false;
                st.next_rotation_at = None;
                st.window_end = None;
                set_rotation_state(&mut secret, &st);
                let version = job
                    .as_ref()
                    .map(|j| j.token.clone())
                    .or_else(|| pending_elsewhere(&secret));
                let resp = RotateSecretResponse {
                    arn: secret.arn.clone(),
                    name: secret.name.clone(),
                    version_id: version.clone(),
                };
                let event = event(EVENT_ROTATION_CANCELLED, &secret, version.as_deref(), now);
                let mut change = metadata_change(secret);
                change.events.push(event);
                Ok((Some(change), resp))
            })
            .await?;
        Ok(resp)
    }

    async fn rotation_function_exists(&self, arn: &str) -> Result<bool, ApiError> {
        Ok(self
            .store
            .list_rotation_functions()
            .await
            .map_err(store_err)?
            .iter()
            .any(|f| f.arn == arn))
    }

    /// Takes a lease on every rotation that is due at `now` (at most `limit`): a retry, an
    /// attempt whose runner's lease ran out, or a scheduled rotation (which starts a new
    /// job). A missed window is caught up once: the next one is counted from now. Each
    /// claim commits only while `fence` (the scheduler's lease) holds; the attempt then
    /// runs under its own per-secret lease, whose attempt number fences its outcome.
    pub async fn claim_due_rotations(
        &self,
        limit: usize,
        lease_ms: Millis,
        fence: Option<&arca_store::Fence>,
    ) -> Result<Vec<ClaimedRotation>, ApiError> {
        let now = self.now();
        let due = self
            .store
            .due_for_rotation(now, limit)
            .await
            .map_err(store_err)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let lease_now = self
            .store
            .shared_clock()
            .await
            .map_err(store_err)?
            .unwrap_or(now);
        let mut claimed = Vec::new();
        for (region, arn) in due {
            let ctx = RequestCtx::fenced(region.clone(), fence.cloned());
            let result = self
                .modify(&ctx, &arn, |mut secret| {
                    let mut new_placeholder = None;
                    let mut started_event = None;
                    let mut st = rotation_state(&secret);
                    if secret.deleted_at.is_some() {
                        // No rotation while deletion is scheduled; RestoreSecret brings it back.
                        secret.rotation_due_at = None;
                        return Ok((Some(metadata_change(secret)), None));
                    }
                    let Some(lambda_arn) = st.lambda_arn.clone() else {
                        secret.rotation_due_at = None;
                        return Ok((Some(metadata_change(secret)), None));
                    };
                    let job = match st.job.take() {
                        Some(job) => {
                            let leased = job.lease_until.is_some_and(|l| l > lease_now);
                            let waiting = job.retry_at.is_some_and(|r| r > now);
                            if leased || waiting {
                                st.job = Some(job);
                                let before = secret.rotation_due_at;
                                set_rotation_state(&mut secret, &st);
                                // The lease is by the shared clock and the scheduler looks by
                                // this node's: a node whose clock runs ahead looks early, and
                                // finds nothing to write.
                                if secret.rotation_due_at == before {
                                    return Ok((None, None));
                                }
                                return Ok((Some(metadata_change(secret)), None));
                            }
                            job
                        }
                        None => {
                            if !st.enabled || st.next_rotation_at.is_none_or(|n| n > now) {
                                set_rotation_state(&mut secret, &st);
                                return Ok((Some(metadata_change(secret)), None));
                            }
                            // A scheduled rotation. An unfinished one (AWSPENDING left on
                            // another version) is reattempted with its own token.
                            let token = match pending_elsewhere(&secret) {
                                Some(t) => t,
                                None => {
                                    let t = new_token();
                                    new_placeholder = Some(pending_placeholder(&secret, &t, now));
                                    t
                                }
                            };
                            started_event = Some(
                                event(EVENT_ROTATION_STARTED, &secret, Some(&token), now)
                                    .with_detail(serde_json::json!({"trigger": "schedule", "lambdaArn": lambda_arn})),
                            );
                            RotationJob {
                                token,
                                test_only: false,
                                attempt: 0,
                                started_at: now,
                                lease_until: None,
                                retry_at: None,
                                last_error: None,
                            }
                        }
                    };
                    let mut job = job;
                    job.attempt += 1;
                    job.lease_until = Some(lease_now + lease_ms);
                    job.retry_at = None;
                    st.job = Some(job.clone());
                    set_rotation_state(&mut secret, &st);
                    let claim = ClaimedRotation {
                        region: region.clone(),
                        arn: secret.arn.clone(),
                        lambda_arn,
                        rotation_token: self.rotation_token(&secret.arn, &job),
                        job,
                    };
                    let mut change = metadata_change(secret);
                    change.new_versions.extend(new_placeholder);
                    change.events.extend(started_event);
                    Ok((Some(change), Some(claim)))
                })
                .await;
            match result {
                Ok(Some(c)) => claimed.push(c),
                Ok(None) => {}
                Err(e) if e.code == ErrorCode::ResourceNotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(claimed)
    }

    /// Records how a claimed attempt ended. Success clears the job and schedules the next
    /// window; failure keeps AWSCURRENT where it is and schedules a retry with backoff.
    pub async fn finish_rotation_attempt(
        &self,
        claim: &ClaimedRotation,
        outcome: AttemptOutcome,
    ) -> Result<(), ApiError> {
        let now = self.now();
        let ctx = RequestCtx::new(claim.region.clone());
        self
            .modify(&ctx, &claim.arn, |mut secret| {
                let mut st = rotation_state(&secret);
                // Cancelled or superseded while running: nothing of ours to record.
                // A runner whose lease ran out may report after another took over: only the
                // holder of the current attempt may record its outcome.
                let Some(mut job) = st
                    .job
                    .take()
                    .filter(|j| j.token == claim.job.token && j.attempt == claim.job.attempt)
                else {
                    return Ok((None, ()));
                };
                let outcome = match &outcome {
                    Ok(()) if !job.test_only => {
                        let current = stages::holder(&secret.versions, AWSCURRENT).map(|v| v.version_id.clone());
                        if current.as_deref() == Some(job.token.as_str()) {
                            Ok(())
                        } else {
                            Err(("finishSecret".to_owned(), "the rotation function finished without moving AWSCURRENT to the new version".to_owned()))
                        }
                    }
                    other => other.clone(),
                };
                let mut restaged = Vec::new();
                let ev = match outcome {
                    Ok(()) => {
                        if !job.test_only {
                            st.last_rotated_at = Some(now);
                            // AWS takes AWSPENDING off the new version once finishSecret
                            // succeeds (the templates leave it there).
                            if let Some(v) = secret.versions.iter().find(|v| v.version_id == job.token) {
                                if v.stages.iter().any(|s| s == AWSPENDING) {
                                    let stages: Vec<String> =
                                        v.stages.iter().filter(|s| *s != AWSPENDING).cloned().collect();
                                    restaged.push((job.token.clone(), stages));
                                }
                            }
                        }
                        schedule_next(&mut st, now);
                        event(EVENT_ROTATION_SUCCEEDED, &secret, Some(&job.token), now)
                            .with_detail(serde_json::json!({"attempt": job.attempt, "testOnly": job.test_only}))
                    }
                    Err((step, error)) => {
                        job.lease_until = None;
                        job.retry_at = Some(now + retry_delay(job.attempt));
                        job.last_error = Some(error.clone());
                        let mut e = event(EVENT_ROTATION_FAILED, &secret, Some(&job.token), now)
                            .with_detail(serde_json::json!({"attempt": job.attempt, "retryAt": job.retry_at}));
                        e.step = Some(step);
                        e.error = Some(error);
                        // A test-only run that fails is not retried: it reported its finding.
                        if !job.test_only {
                            st.job = Some(job);
                        } else {
                            schedule_next(&mut st, now);
                        }
                        e
                    }
                };
                set_rotation_state(&mut secret, &st);
                let mut change = metadata_change(secret);
                change.restaged = restaged;
                change.events.push(ev);
                Ok((Some(change), ()))
            })
            .await?;
        Ok(())
    }
}

trait WithDetail {
    fn with_detail(self, detail: serde_json::Value) -> Self;
}

impl WithDetail for EventRecord {
    fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

impl Arca {
    /// RotateImmediately=false: AWS tests the configuration by running only testSecret
    /// against an AWSPENDING version it creates for the test and removes afterwards. This
    /// makes that version: a copy of AWSCURRENT's value under the rotation's token.
    pub async fn begin_test_rotation(&self, claim: &ClaimedRotation) -> Result<(), ApiError> {
        let ctx = RequestCtx::new(claim.region.clone());
        let secret = self.must_find(&ctx, &claim.arn).await?;
        if secret
            .versions
            .iter()
            .any(|v| v.version_id == claim.job.token)
        {
            return Ok(());
        }
        let current = self
            .get_secret_value(
                &ctx,
                arca_types::wire::GetSecretValueRequest {
                    secret_id: Some(claim.arn.clone()),
                    version_id: None,
                    version_stage: None,
                },
            )
            .await?;
        self.put_secret_value(
            &ctx,
            arca_types::wire::PutSecretValueRequest {
                secret_id: Some(claim.arn.clone()),
                client_request_token: Some(claim.job.token.clone()),
                secret_string: current.secret_string,
                secret_binary: current.secret_binary,
                version_stages: Some(vec![AWSPENDING.to_owned()]),
                rotation_token: Some(claim.rotation_token.clone()),
            },
        )
        .await
        .map(|_| ())
    }

    /// Removes the test's AWSPENDING label again (the version stays, deprecated).
    pub async fn end_test_rotation(&self, claim: &ClaimedRotation) -> Result<(), ApiError> {
        let ctx = RequestCtx::new(claim.region.clone());
        let secret = self.must_find(&ctx, &claim.arn).await?;
        let on_token = secret
            .versions
            .iter()
            .any(|v| v.version_id == claim.job.token && v.stages.iter().any(|s| s == AWSPENDING));
        if !on_token {
            return Ok(());
        }
        self.update_secret_version_stage(
            &ctx,
            arca_types::wire::UpdateSecretVersionStageRequest {
                secret_id: Some(claim.arn.clone()),
                version_stage: Some(AWSPENDING.to_owned()),
                remove_from_version_id: Some(claim.job.token.clone()),
                move_to_version_id: None,
            },
        )
        .await
        .map(|_| ())
    }
}
