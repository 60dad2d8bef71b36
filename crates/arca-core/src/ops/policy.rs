//! The resource-policy operations: PutResourcePolicy, GetResourcePolicy,
//! DeleteResourcePolicy, ListResourcePolicies and ValidateResourcePolicy. A secret has
//! at most the one policy callers may write, `default`, kept in its record (so it
//! commits, replicates and is cached with the rest of the secret) and compiled once for
//! the authorization point.

use super::{ensure_not_deleted, ensure_unscoped, metadata_change};
use crate::authz::{resource_policy_text, set_resource_policy};
use crate::validate::{self, Check};
use crate::{Arca, RequestCtx};
use arca_policy::{Kind, Policy};
use arca_types::wire::*;
use arca_types::{ApiError, ErrorCode};

/// The one policy name callers may write.
const DEFAULT: &str = "default";

/// The model's ResourcePolicyNameType pattern.
fn policy_name_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_policy_name(check: &mut Check, v: &Option<String>) {
    check.length("policyName", v.as_deref(), 1, 64);
    check.pattern(
        "policyName",
        v.as_deref(),
        policy_name_ok,
        "[0-9A-Za-z\\-\\_]+",
        false,
    );
}

fn check_policy_text(check: &mut Check, v: &Option<String>) {
    check.required("resourcePolicy", v);
    check.length("resourcePolicy", v.as_deref(), 1, 20_480);
}

/// Put and Delete accept only `default` (the model: "if you specify any other name, the
/// operation returns an InvalidParameterException").
fn writable_name(name: &Option<String>) -> Result<(), ApiError> {
    match name.as_deref() {
        None | Some(DEFAULT) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "You can only attach the default resource policy.",
        )),
    }
}

/// A document as a resource policy, or AWS's MalformedPolicyDocumentException (recorded
/// text for a grammar error: "This policy has invalid syntax.").
fn parse(text: &str) -> Result<Policy, ApiError> {
    Policy::parse(text, Kind::Resource).map_err(|e| {
        tracing::debug!(reason = %e, "resource policy refused");
        ApiError::new(
            ErrorCode::MalformedPolicyDocument,
            "This policy has invalid syntax.",
        )
    })
}

/// The console's texts for the checks ValidateResourcePolicy runs beyond syntax
/// (awsdocs, manage_secret-policy.md). The check names are Arca's own: no AWS capture
/// of a failing validation was found.
const BROAD_ACCESS: (&str, &str) = (
    "BROAD_ACCESS",
    "This resource policy grants broad access to your secret.",
);
const LOCKOUT: (&str, &str) = (
    "LOCKOUT",
    "Your requested changes will not allow you to manage this secret in the future.",
);

impl Arca {
    pub async fn put_resource_policy(
        &self,
        ctx: &RequestCtx,
        req: PutResourcePolicyRequest,
    ) -> Result<ResourcePolicyResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check_policy_text(&mut check, &req.resource_policy);
        check_policy_name(&mut check, &req.policy_name);
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        ensure_unscoped(ctx)?;
        writable_name(&req.policy_name)?;
        let text = validate::present(req.resource_policy.as_ref())?.clone();
        // Authorized (and found) before the document is judged: a caller who may not
        // write the policy learns nothing from its errors.
        self.must_find(ctx, &id).await?;
        let policy = parse(&text)?;
        if req.block_public_policy == Some(true) && policy.grants_public_access() {
            return Err(ApiError::new(
                ErrorCode::PublicPolicy,
                "You can't attach a resource-based policy that allows broad access to the secret.",
            ));
        }
        self.write_policy(ctx, &id, Some(text)).await
    }

    pub async fn get_resource_policy(
        &self,
        ctx: &RequestCtx,
        req: ResourcePolicyRequest,
    ) -> Result<ResourcePolicyResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check_policy_name(&mut check, &req.policy_name);
        check.finish()?;
        let id = validate::present(id)?;
        let secret = self.must_find(ctx, id).await?;
        ensure_not_deleted(&secret)?;
        // Only `default` can exist; asked for another, there is no such policy.
        if req.policy_name.as_deref().is_some_and(|n| n != DEFAULT) {
            return Err(ApiError::secret_not_found());
        }
        let policy = resource_policy_text(&secret).map(str::to_owned);
        Ok(ResourcePolicyResponse {
            arn: secret.arn.clone(),
            name: secret.name.clone(),
            // Absent when the secret has none (recorded: aws/aws-cdk#31566).
            policy_name: policy.as_ref().map(|_| DEFAULT.to_owned()),
            resource_policy: policy,
        })
    }

    pub async fn delete_resource_policy(
        &self,
        ctx: &RequestCtx,
        req: ResourcePolicyRequest,
    ) -> Result<ResourcePolicyResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check_policy_name(&mut check, &req.policy_name);
        check.finish()?;
        let id = validate::present(id)?.to_owned();
        ensure_unscoped(ctx)?;
        writable_name(&req.policy_name)?;
        self.write_policy(ctx, &id, None).await
    }

    /// Attaches `text` as the secret's policy (None: removes it); a write that changes
    /// nothing (the same policy, or removing none) commits nothing.
    async fn write_policy(
        &self,
        ctx: &RequestCtx,
        id: &str,
        text: Option<String>,
    ) -> Result<ResourcePolicyResponse, ApiError> {
        let now = self.now();
        self.modify(ctx, id, |mut secret| {
            ensure_not_deleted(&secret)?;
            let out = ResourcePolicyResponse {
                arn: secret.arn.clone(),
                name: secret.name.clone(),
                resource_policy: None,
                policy_name: Some(DEFAULT.to_owned()),
            };
            if resource_policy_text(&secret) == text.as_deref() {
                return Ok((None, out));
            }
            set_resource_policy(&mut secret, text.as_deref());
            secret.last_changed_at = now;
            Ok((Some(metadata_change(secret)), out))
        })
        .await
    }

    pub async fn list_resource_policies(
        &self,
        ctx: &RequestCtx,
        req: ListResourcePoliciesRequest,
    ) -> Result<ListResourcePoliciesResponse, ApiError> {
        let mut check = Check::new();
        let id = check.secret_id(&req.secret_id);
        check.max_results(req.max_results, 100);
        check.next_token(&req.next_token);
        check.finish()?;
        let id = validate::present(id)?;
        let secret = self.must_find(ctx, id).await?;
        ensure_not_deleted(&secret)?;
        // One page holds every policy a secret can have: no token this service issued
        // can be presented.
        if req.next_token.is_some() {
            return Err(ApiError::invalid_next_token());
        }
        let resource_policies = resource_policy_text(&secret)
            .map(|_| {
                vec![ResourcePolicySummary {
                    policy_name: DEFAULT.to_owned(),
                }]
            })
            .unwrap_or_default();
        Ok(ListResourcePoliciesResponse {
            resource_policies,
            next_token: None,
        })
    }

    pub async fn validate_resource_policy(
        &self,
        ctx: &RequestCtx,
        req: ValidateResourcePolicyRequest,
    ) -> Result<ValidateResourcePolicyResponse, ApiError> {
        let mut check = Check::new();
        if req.secret_id.is_some() {
            check.secret_id(&req.secret_id);
        }
        check_policy_text(&mut check, &req.resource_policy);
        check.finish()?;
        ensure_unscoped(ctx)?;
        match &req.secret_id {
            Some(id) => {
                let secret = self.must_find(ctx, id).await?;
                ensure_not_deleted(&secret)?;
            }
            None => self.authorize(ctx, crate::authz::Target::Any)?,
        }
        let text = validate::present(req.resource_policy.as_ref())?;
        let policy = parse(text)?;
        let mut errors = Vec::new();
        for (found, (check_name, message)) in [
            (policy.grants_public_access(), BROAD_ACCESS),
            (policy.locks_out(), LOCKOUT),
        ] {
            if found {
                errors.push(ValidationErrorsEntry {
                    check_name: check_name.to_owned(),
                    error_message: message.to_owned(),
                });
            }
        }
        Ok(ValidateResourcePolicyResponse {
            policy_validation_passed: errors.is_empty(),
            validation_errors: errors,
        })
    }
}
