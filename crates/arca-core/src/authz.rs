//! The one authorization point. The API layer puts the caller's `Identity` (from the
//! verified access key) and the operation's condition keys in the request context; every
//! operation, once it has resolved its secret (or found there is none), asks
//! `Arca::authorize`, which evaluates the caller's identity policies and the secret's
//! resource policy with arca-policy and refuses with AWS's AccessDeniedException.

use crate::{Arca, RequestCtx};
use arca_policy::{Context, Decision, Kind, Policy, Principal, PrincipalKind, Request, Value};
use arca_store::SecretRecord;
use arca_types::wire::*;
use arca_types::ApiError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// AWS's refusal: `User: ARN is not authorized to perform: ACTION on resource: ID
/// because no identity-based policy allows the ACTION action`. The resource is the
/// SecretId as the caller gave it (recorded: AWS quotes names as given, whether or not
/// the secret exists); an action on no resource names none.
fn denied(
    identity: &Identity,
    action: &str,
    named: Option<&str>,
    reason: Option<&str>,
) -> ApiError {
    let on = named
        .map(|n| format!(" on resource: {n}"))
        .unwrap_or_default();
    let because = reason.map(|r| format!(" {r}")).unwrap_or_default();
    ApiError::new(
        arca_types::ErrorCode::AccessDenied,
        format!(
            "User: {} is not authorized to perform: {action}{on}{because}",
            identity.principal.arn
        ),
    )
}

/// Why a decision refused, as AWS words it; a stored policy that no longer parses
/// refuses as an explicit deny would.
fn reason(decision: Option<Decision>, action: &str) -> String {
    decision
        .unwrap_or(Decision::ExplicitDeny(arca_policy::PolicyType::Resource))
        .reason(action)
}

/// Who is calling, with their identity policies compiled.
#[derive(Debug)]
pub struct Identity {
    pub principal: Principal,
    pub policies: Vec<Arc<Policy>>,
    /// Some identity policy allows every action on every resource without a condition
    /// and none denies anything: only a resource policy can then refuse, so a secret
    /// without one needs no evaluation (the read path's fast case).
    unrestricted: bool,
    /// The principal as a CloudTrail record's userIdentity names it (JSON text, without
    /// the access key id, which differs per key), rendered once.
    pub audit_identity: Arc<str>,
    /// No identity policy reads the time, so decisions may be remembered.
    cacheable: bool,
    decisions: crate::decisions::Decisions,
}

impl Identity {
    pub fn new(principal: Principal, policies: Vec<Arc<Policy>>) -> Self {
        let statements = || policies.iter().flat_map(|p| p.statements.iter());
        let no_deny = statements().all(|s| s.effect == arca_policy::Effect::Allow);
        let allow_all = statements().any(|s| {
            s.effect == arca_policy::Effect::Allow
                && s.conditions.is_empty()
                && !s.action.negated
                && s.action.items.iter().any(|p| p.is_any())
                && s.resource
                    .as_ref()
                    .is_some_and(|r| !r.negated && r.items.iter().any(|p| p.is_any()))
        });
        let unrestricted = no_deny && (allow_all || principal.kind == PrincipalKind::Root);
        let cacheable = policies.iter().all(|p| !p.time_dependent);
        Self {
            audit_identity: audit_identity(&principal).into(),
            principal,
            policies,
            unrestricted,
            cacheable,
            decisions: Default::default(),
        }
    }

    /// The administrator of `account`: what every access key created before principals
    /// existed stands for (full access, as those keys always had).
    pub fn administrator(account: &str) -> Self {
        let admin = Policy::parse(ADMINISTRATOR_ACCESS, Kind::Identity)
            .map(Arc::new)
            .map(|p| vec![p])
            .unwrap_or_default();
        Self::new(
            Principal {
                arn: format!("arn:aws:iam::{account}:user/{ADMINISTRATOR}"),
                account: account.to_owned(),
                kind: PrincipalKind::User,
                role_arn: None,
                name: Some(ADMINISTRATOR.to_owned()),
                userid: format!("AIDA{}", &stable_id(account)),
                tags: Default::default(),
            },
            admin,
        )
    }
}

/// CloudTrail's userIdentity for a principal: an IAM user, a role session (with its
/// issuer), or an account's root.
fn audit_identity(p: &Principal) -> String {
    let v = match p.kind {
        PrincipalKind::RoleSession => {
            let role = p.role_arn.clone().unwrap_or_default();
            let role_id = p.userid.split(':').next().unwrap_or_default();
            serde_json::json!({
                "type": "AssumedRole",
                "principalId": p.userid,
                "arn": p.arn,
                "accountId": p.account,
                "sessionContext": {"sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role,
                    "accountId": p.account,
                    "userName": p.name,
                }},
            })
        }
        PrincipalKind::Root => serde_json::json!({
            "type": "Root", "principalId": p.account, "arn": p.arn, "accountId": p.account,
        }),
        _ => serde_json::json!({
            "type": "IAMUser",
            "principalId": p.userid,
            "arn": p.arn,
            "accountId": p.account,
            "userName": p.name,
        }),
    };
    v.to_string()
}

/// The administrator user's name.
pub const ADMINISTRATOR: &str = "arca-admin";

/// AWS's managed policy AdministratorAccess.
pub const ADMINISTRATOR_ACCESS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// A stable unique-id-like suffix for a principal without a stored id.
pub(crate) fn stable_id(seed: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(seed.as_bytes());
    d.iter()
        .take(8)
        .map(|b| char::from(b'A' + b % 26))
        .collect::<String>()
        + "EXAMPLE"
}

/// The authorization part of one request's context.
#[derive(Debug)]
pub struct Access {
    pub identity: Arc<Identity>,
    /// The operation, e.g. `GetSecretValue` (the action is `secretsmanager:` + this).
    pub operation: &'static str,
    /// The request's own condition keys (secretsmanager:VersionStage, aws:TagKeys, ...).
    pub keys: Context,
    pub source_ip: Option<Arc<str>>,
    pub secure_transport: bool,
    /// `keys` in one canonical text (sorted), for the decision cache.
    keys_fingerprint: String,
    /// Set once any authorization decision was made for the request: an operation that
    /// answers without one is a bug, and the API layer fails it closed.
    decided: AtomicBool,
}

impl Access {
    pub fn new(identity: Arc<Identity>, operation: &'static str, keys: Context) -> Self {
        let mut pairs: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        pairs.sort_unstable();
        Self {
            keys_fingerprint: pairs.join("\n"),
            identity,
            operation,
            keys,
            source_ip: None,
            secure_transport: false,
            decided: AtomicBool::new(false),
        }
    }

    pub fn decided(&self) -> bool {
        self.decided.load(Ordering::Relaxed)
    }

    /// Records that the request was decided on (GetCallerIdentity needs no permission).
    pub fn mark_decided(&self) {
        self.decided.store(true, Ordering::Relaxed);
    }
}

/// What a request is about, for its decision.
pub(crate) enum Target<'a> {
    /// An existing secret, and the id the caller named it by (what AWS's refusal quotes).
    Secret {
        record: &'a SecretRecord,
        id: &'a str,
    },
    /// A secret that does not exist (yet), by the id the caller gave.
    Missing(&'a str),
    /// No resource (ListSecrets, GetRandomPassword, BatchGetSecretValue itself).
    Any,
}

/// Where a secret's resource policy lives in its record (in `extra`, so no schema change).
pub(crate) const RESOURCE_POLICY: &str = "resource_policy";

pub(crate) fn resource_policy_text(s: &SecretRecord) -> Option<&str> {
    s.extra.get(RESOURCE_POLICY).and_then(|v| v.as_str())
}

pub(crate) fn set_resource_policy(s: &mut SecretRecord, text: Option<&str>) {
    if !s.extra.is_object() {
        s.extra = serde_json::json!({});
    }
    if let Some(obj) = s.extra.as_object_mut() {
        match text {
            Some(t) => obj.insert(RESOURCE_POLICY.into(), t.into()),
            None => obj.remove(RESOURCE_POLICY),
        };
    }
}

/// Compiled resource policies by their text: a policy is compiled once, not per request.
#[derive(Default)]
pub(crate) struct PolicyCache {
    compiled: Mutex<HashMap<Arc<str>, Arc<Policy>>>,
}

/// Distinct policy texts kept compiled; past this the cache starts over.
const POLICY_CACHE_MAX: usize = 10_000;

impl PolicyCache {
    fn get(&self, text: &str) -> Option<Arc<Policy>> {
        let mut map = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(text) {
            return Some(p.clone());
        }
        // Stored policies were validated when written; one that no longer parses is
        // refused as a whole (fail closed: see `authorize`).
        let p = Arc::new(Policy::parse(text, Kind::Resource).ok()?);
        if map.len() >= POLICY_CACHE_MAX {
            map.clear();
        }
        map.insert(text.into(), p.clone());
        Some(p)
    }
}

impl Arca {
    /// Decides whether the request may perform its operation on `target`.
    pub(crate) fn authorize(&self, ctx: &RequestCtx, target: Target) -> Result<(), ApiError> {
        match &ctx.access {
            Some(a) => self.authorize_as(ctx, a.operation, target),
            // Background work of this deployment (rotation, replication, event targets)
            // acts with the service's own authority.
            None => Ok(()),
        }
    }

    /// As `authorize`, for `operation` (BatchGetSecretValue checks GetSecretValue on
    /// each secret it returns).
    pub(crate) fn authorize_as(
        &self,
        ctx: &RequestCtx,
        operation: &str,
        target: Target,
    ) -> Result<(), ApiError> {
        let Some(access) = &ctx.access else {
            return Ok(());
        };
        access.decided.store(true, Ordering::Relaxed);
        let identity = &access.identity;
        // A name another account's principal gives names a secret of its own account
        // (which holds none here), and `*` is about the caller's own account too; an
        // existing secret, or an ARN, is the deployment's.
        let own = match &target {
            Target::Secret { .. } => false,
            Target::Missing(id) => !id.starts_with("arn:"),
            Target::Any => true,
        };
        let resource_account = if own {
            identity.principal.account.as_str()
        } else {
            self.account.as_str()
        };
        // Borrowed for an existing secret: the read path allocates nothing here.
        let (resource, named, secret): (std::borrow::Cow<str>, _, _) = match target {
            Target::Secret { record, id } => (record.arn.as_str().into(), Some(id), Some(record)),
            Target::Missing(id) if own => (
                format!(
                    "arn:aws:secretsmanager:{}:{resource_account}:secret:{id}",
                    ctx.region
                )
                .into(),
                Some(id),
                None,
            ),
            Target::Missing(id) => (self.arn_for_missing(&ctx.region, id).into(), Some(id), None),
            Target::Any => ("*".into(), None, None),
        };
        let policy_text = secret.and_then(resource_policy_text);
        if identity.unrestricted
            && policy_text.is_none()
            && identity.principal.account == self.account
        {
            return Ok(());
        }
        let question = crate::decisions::Question {
            operation,
            resource: &resource,
            revision: secret.map_or(-1, |s| s.revision),
            region: &ctx.region,
            keys: &access.keys_fingerprint,
            source_ip: access.source_ip.as_deref(),
            secure_transport: access.secure_transport,
        };
        // A remembered decision was cacheable when made, and the revision in the question
        // pins the resource policy it was made with.
        let remembered = if identity.cacheable {
            identity.decisions.get(&question)
        } else {
            None
        };
        let action = || format!("secretsmanager:{operation}");
        let decision = match remembered {
            Some(d) => d,
            None => {
                let policy = match policy_text {
                    Some(t) => match self.policies.get(t) {
                        Some(p) => Some(p),
                        None => {
                            tracing::error!(arn = %resource, "a stored resource policy does not parse");
                            let action = action();
                            return Err(denied(
                                identity,
                                &action,
                                named,
                                Some(&reason(None, &action)),
                            ));
                        }
                    },
                    None => None,
                };
                let context = self.context_for(ctx, access, secret);
                let identity_policies: Vec<&Policy> =
                    identity.policies.iter().map(|p| &**p).collect();
                let d = arca_policy::evaluate(
                    &Request {
                        principal: &identity.principal,
                        action: &action(),
                        resource: &resource,
                        resource_account,
                        context: &context,
                    },
                    &identity_policies,
                    policy.as_deref(),
                );
                if identity.cacheable && policy.as_ref().is_none_or(|p| !p.time_dependent) {
                    identity.decisions.put(&question, d);
                }
                d
            }
        };
        if decision.allowed() {
            Ok(())
        } else {
            let action = action();
            Err(denied(
                identity,
                &action,
                named,
                Some(&reason(Some(decision), &action)),
            ))
        }
    }

    /// Decides an action of another service (IAM's, STS's) on `resource`, owned by
    /// `resource_account`, with the request's `extra` condition keys and the resource's
    /// own policy, if any: a role's trust policy for sts:AssumeRole, which must reach
    /// the caller itself (see `arca_policy::evaluate_trust`).
    pub(crate) fn authorize_action(
        &self,
        ctx: &RequestCtx,
        action: &str,
        resource: &str,
        resource_account: &str,
        extra: Context,
        resource_policy: Option<&Policy>,
    ) -> Result<(), ApiError> {
        let Some(access) = &ctx.access else {
            return Ok(());
        };
        access.decided.store(true, Ordering::Relaxed);
        let identity = &access.identity;
        let trust = action == "sts:AssumeRole";
        if identity.unrestricted
            && resource_policy.is_none()
            && !trust
            && identity.principal.account == resource_account
        {
            return Ok(());
        }
        let mut context = self.context_for(ctx, access, None);
        for (k, v) in extra.iter() {
            context.set(k, v.clone());
        }
        let identity_policies: Vec<&Policy> = identity.policies.iter().map(|p| &**p).collect();
        let request = Request {
            principal: &identity.principal,
            action,
            resource,
            resource_account,
            context: &context,
        };
        let decision = match resource_policy {
            Some(p) if trust => arca_policy::evaluate_trust(&request, &identity_policies, p),
            _ => arca_policy::evaluate(&request, &identity_policies, resource_policy),
        };
        if decision.allowed() {
            Ok(())
        } else {
            // An action on no resource names none (as the Secrets Manager refusals do).
            let named = (resource != "*").then_some(resource);
            Err(denied(
                identity,
                action,
                named,
                Some(&reason(Some(decision), action)),
            ))
        }
    }

    /// Whether the caller may use the customer key `key_id` for `action` (kms:Decrypt to
    /// read a version sealed under it, kms:GenerateDataKey to seal a new one) through
    /// Secrets Manager on `secret_arn`: the key policy must reach the caller, as in KMS
    /// (its default names the account, handing the decision to identity policies). The
    /// default key needs nothing beyond the secret permission.
    pub(crate) fn authorize_key(
        &self,
        ctx: &RequestCtx,
        action: &str,
        key_id: &str,
        secret_arn: &str,
    ) -> Result<(), ApiError> {
        let Some(access) = &ctx.access else {
            return Ok(());
        };
        let refused = || {
            ApiError::new(
                arca_types::ErrorCode::AccessDenied,
                "Access to KMS is not allowed",
            )
        };
        let Some((key_arn, policy)) = self.keys.customer_key_policy(key_id) else {
            // The AWS managed key serves its own account only: a secret shared with
            // another account must be under a customer key (Secrets Manager docs,
            // "Access AWS Secrets Manager secrets from a different account").
            if self.foreign(ctx) {
                return Err(refused());
            }
            return Ok(());
        };
        let Some(policy) = policy else {
            return Err(refused());
        };
        let identity = &access.identity;
        let mut context = self.context_for(ctx, access, None);
        context.set(
            "kms:ViaService",
            Value::Str(format!("secretsmanager.{}.amazonaws.com", ctx.region)),
        );
        context.set(
            "kms:EncryptionContext:SecretARN",
            Value::Str(secret_arn.to_owned()),
        );
        context.set(
            "kms:CallerAccount",
            Value::Str(identity.principal.account.clone()),
        );
        let identity_policies: Vec<&Policy> = identity.policies.iter().map(|p| &**p).collect();
        let decision = arca_policy::evaluate_trust(
            &Request {
                principal: &identity.principal,
                action,
                resource: &key_arn,
                resource_account: &self.account,
                context: &context,
            },
            &identity_policies,
            &policy,
        );
        if decision.allowed() {
            Ok(())
        } else {
            Err(refused())
        }
    }

    /// Whether the caller belongs to another account than the deployment's, the one
    /// that holds the secrets and keys (other accounts hold principals only).
    pub(crate) fn foreign(&self, ctx: &RequestCtx) -> bool {
        ctx.access
            .as_ref()
            .is_some_and(|a| a.identity.principal.account != self.account)
    }

    /// Decides an action on no particular resource (`events:PutRule`,
    /// `cloudtrail:LookupEvents`) in the caller's own account.
    pub fn authorize_call(&self, ctx: &RequestCtx, action: &str) -> Result<(), ApiError> {
        let account = ctx.access.as_ref().map_or_else(
            || self.account.clone(),
            |a| a.identity.principal.account.clone(),
        );
        self.authorize_action(ctx, action, "*", &account, Context::default(), None)
    }

    /// A refusal that no policy decided (AssumeRole of a role that does not exist, which
    /// AWS does not tell apart from one that does not trust the caller).
    pub(crate) fn refuse(&self, ctx: &RequestCtx, action: &str, resource: &str) -> ApiError {
        match &ctx.access {
            Some(access) => {
                access.mark_decided();
                denied(&access.identity, action, Some(resource), None)
            }
            None => ApiError::access_denied(),
        }
    }

    /// The resource a request about a secret that does not exist is decided on: the ARN
    /// the caller gave, or the one a secret of that name would have, without its suffix.
    pub(crate) fn arn_for_missing(&self, region: &str, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_owned()
        } else {
            format!(
                "arn:aws:secretsmanager:{region}:{}:secret:{id}",
                self.account
            )
        }
    }

    /// The request context: the request's own keys, the caller's connection, the time,
    /// and the secret's (its ARN, tags and primary region).
    fn context_for(
        &self,
        ctx: &RequestCtx,
        access: &Access,
        secret: Option<&SecretRecord>,
    ) -> Context {
        let mut c = access.keys.clone();
        let now = self.clock.now_millis();
        c.set("aws:CurrentTime", Value::Str(crate::audit::event_time(now)));
        c.set("aws:EpochTime", Value::Num((now / 1000) as f64));
        c.set("aws:SecureTransport", Value::Bool(access.secure_transport));
        c.set("aws:RequestedRegion", Value::Str(ctx.region.clone()));
        if let Some(ip) = &access.source_ip {
            c.set("aws:SourceIp", Value::Str(ip.to_string()));
        }
        if let Some(s) = secret {
            c.set("secretsmanager:SecretId", Value::Str(s.arn.clone()));
            for (k, v) in &s.tags {
                c.set(
                    &format!("secretsmanager:ResourceTag/{k}"),
                    Value::Str(v.clone()),
                );
                c.set(&format!("aws:ResourceTag/{k}"), Value::Str(v.clone()));
            }
            if let Some(p) = &s.primary_region {
                c.set("secretsmanager:SecretPrimaryRegion", Value::Str(p.clone()));
            }
        }
        c
    }
}

/// The condition keys a request of each operation brings (the Service Authorization
/// Reference's "Actions defined by AWS Secrets Manager").
pub trait ConditionKeys {
    fn condition_keys(&self, _c: &mut Context) {}
}

fn set_str(c: &mut Context, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        c.set(key, Value::Str(v.clone()));
    }
}

fn set_bool(c: &mut Context, key: &str, v: Option<bool>) {
    if let Some(v) = v {
        c.set(key, Value::Bool(v));
    }
}

/// aws:RequestTag/k for each tag and aws:TagKeys for their keys.
fn set_tags(c: &mut Context, tags: &Option<Vec<Tag>>) {
    let Some(tags) = tags else {
        return;
    };
    let mut keys = Vec::new();
    for t in tags {
        if let Some(k) = &t.key {
            keys.push(k.clone());
            c.set(
                &format!("aws:RequestTag/{k}"),
                Value::Str(t.value.clone().unwrap_or_default()),
            );
        }
    }
    c.set("aws:TagKeys", Value::List(keys));
}

fn set_regions(c: &mut Context, regions: &Option<Vec<ReplicaRegion>>) {
    if let Some(r) = regions {
        let list = r.iter().filter_map(|r| r.region.clone()).collect();
        c.set("secretsmanager:AddReplicaRegions", Value::List(list));
    }
}

impl ConditionKeys for GetSecretValueRequest {
    fn condition_keys(&self, c: &mut Context) {
        set_str(c, "secretsmanager:VersionId", &self.version_id);
        set_str(c, "secretsmanager:VersionStage", &self.version_stage);
    }
}

impl ConditionKeys for CreateSecretRequest {
    fn condition_keys(&self, c: &mut Context) {
        set_str(c, "secretsmanager:Name", &self.name);
        set_str(c, "secretsmanager:Description", &self.description);
        set_str(c, "secretsmanager:KmsKeyId", &self.kms_key_id);
        set_tags(c, &self.tags);
        set_regions(c, &self.add_replica_regions);
        set_bool(
            c,
            "secretsmanager:ForceOverwriteReplicaSecret",
            self.force_overwrite_replica_secret,
        );
    }
}

impl ConditionKeys for UpdateSecretRequest {
    fn condition_keys(&self, c: &mut Context) {
        set_str(c, "secretsmanager:Description", &self.description);
        set_str(c, "secretsmanager:KmsKeyId", &self.kms_key_id);
    }
}

impl ConditionKeys for DeleteSecretRequest {
    fn condition_keys(&self, c: &mut Context) {
        if let Some(d) = self.recovery_window_in_days {
            c.set("secretsmanager:RecoveryWindowInDays", Value::Num(d as f64));
        }
        set_bool(
            c,
            "secretsmanager:ForceDeleteWithoutRecovery",
            self.force_delete_without_recovery,
        );
    }
}

impl ConditionKeys for RotateSecretRequest {
    fn condition_keys(&self, c: &mut Context) {
        set_str(
            c,
            "secretsmanager:RotationLambdaARN",
            &self.rotation_lambda_arn,
        );
        c.set(
            "secretsmanager:ModifyRotationRules",
            Value::Bool(self.rotation_rules.is_some()),
        );
        c.set(
            "secretsmanager:RotateImmediately",
            Value::Bool(self.rotate_immediately.unwrap_or(true)),
        );
    }
}

impl ConditionKeys for UpdateSecretVersionStageRequest {
    fn condition_keys(&self, c: &mut Context) {
        set_str(c, "secretsmanager:VersionStage", &self.version_stage);
    }
}

impl ConditionKeys for TagResourceRequest {
    fn condition_keys(&self, c: &mut Context) {
        set_tags(c, &self.tags);
    }
}

impl ConditionKeys for UntagResourceRequest {
    fn condition_keys(&self, c: &mut Context) {
        if let Some(k) = &self.tag_keys {
            c.set("aws:TagKeys", Value::List(k.clone()));
        }
    }
}

impl ConditionKeys for ReplicateSecretToRegionsRequest {
    fn condition_keys(&self, c: &mut Context) {
        set_regions(c, &self.add_replica_regions);
        set_bool(
            c,
            "secretsmanager:ForceOverwriteReplicaSecret",
            self.force_overwrite_replica_secret,
        );
    }
}

impl ConditionKeys for PutResourcePolicyRequest {
    fn condition_keys(&self, c: &mut Context) {
        c.set(
            "secretsmanager:BlockPublicPolicy",
            Value::Bool(self.block_public_policy.unwrap_or(false)),
        );
    }
}

impl ConditionKeys for BatchGetSecretValueRequest {}
impl ConditionKeys for SecretIdRequest {}
impl ConditionKeys for DescribeSecretRequest {}
impl ConditionKeys for GetRandomPasswordRequest {}
impl ConditionKeys for ListSecretVersionIdsRequest {}
impl ConditionKeys for ListSecretsRequest {}
impl ConditionKeys for PutSecretValueRequest {}
impl ConditionKeys for RemoveRegionsFromReplicationRequest {}
impl ConditionKeys for ResourcePolicyRequest {}
impl ConditionKeys for ListResourcePoliciesRequest {}
impl ConditionKeys for ValidateResourcePolicyRequest {}
