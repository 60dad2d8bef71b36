//! The IAM and STS operations over the Query protocol: each reads its parameters, calls
//! arca-core's `iam` module, and writes the answer in IAM's or STS's XML shape.

use crate::query::{self, Params, QueryService, Xml};
use crate::server::Response;
use crate::ApiState;
use arca_core::iam::ops::{Holder, KeyView, PolicyView, RoleView, UserView};
use arca_core::iam::sts::AssumeRoleRequest;
use arca_core::RequestCtx;
use arca_types::ApiError;

/// Every IAM action answered here.
pub(crate) const IAM_ACTIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "DeleteAccessKey",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "PutUserPolicy",
    "GetUserPolicy",
    "DeleteUserPolicy",
    "ListUserPolicies",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
];

pub(crate) const STS_ACTIONS: &[&str] = &["AssumeRole", "GetCallerIdentity"];

/// The action a Query request names, if this service answers it.
pub(crate) fn action_of(service: QueryService, p: &Params) -> Option<&'static str> {
    let list = match service {
        QueryService::Iam => IAM_ACTIONS,
        QueryService::Sts => STS_ACTIONS,
    };
    let a = p.action()?;
    list.iter().copied().find(|x| *x == a)
}

fn user(x: &mut Xml, u: &UserView) {
    x.open("User")
        .leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &u.arn)
        .date("CreateDate", u.created_at);
    if !u.tags.is_empty() {
        x.open("Tags");
        for (k, v) in &u.tags {
            x.open("member")
                .leaf("Key", k)
                .leaf("Value", v)
                .close("member");
        }
        x.close("Tags");
    }
    x.close("User");
}

fn role(x: &mut Xml, tag: &str, r: &RoleView) {
    x.open(tag)
        .leaf("Path", &r.path)
        .leaf("RoleName", &r.name)
        .leaf("RoleId", &r.id)
        .leaf("Arn", &r.arn)
        .date("CreateDate", r.created_at)
        .policy("AssumeRolePolicyDocument", &r.trust)
        .opt("Description", r.description.as_deref())
        .leaf("MaxSessionDuration", &r.max_session_secs.to_string())
        .close(tag);
}

fn policy(x: &mut Xml, tag: &str, p: &PolicyView) {
    x.open(tag)
        .leaf("PolicyName", &p.name)
        .leaf("PolicyId", &p.id)
        .leaf("Arn", &p.arn)
        .leaf("Path", &p.path)
        .leaf("DefaultVersionId", "v1")
        .leaf("AttachmentCount", &p.attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .opt("Description", p.description.as_deref())
        .date("CreateDate", p.created_at)
        .date("UpdateDate", p.updated_at)
        .close(tag);
}

fn key(x: &mut Xml, k: &KeyView) {
    x.leaf("UserName", &k.user_name)
        .leaf("AccessKeyId", &k.access_key_id)
        .leaf("Status", if k.active { "Active" } else { "Inactive" })
        .date("CreateDate", k.created_at);
}

/// One page of a list: IAM's Marker/MaxItems (the marker is the next item's index).
fn page<T>(items: Vec<T>, p: &Params) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = p
        .get("Marker")
        .map(|m| m.parse::<usize>().map_err(|_| bad_marker()))
        .transpose()?
        .unwrap_or(0);
    let max = p.int("MaxItems", "maxItems")?.unwrap_or(100).clamp(1, 1000) as usize;
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + page.len() < total).then(|| (start + page.len()).to_string());
    Ok((page, next))
}

fn bad_marker() -> ApiError {
    ApiError::new(arca_types::ErrorCode::InvalidInput, "Invalid Marker.")
}

fn truncation(x: &mut Xml, next: Option<String>) {
    x.leaf("IsTruncated", if next.is_some() { "true" } else { "false" });
    x.opt("Marker", next.as_deref());
}

fn holder_of(action: &str) -> Holder {
    if action.contains("Role") {
        Holder::Role
    } else {
        Holder::User
    }
}

/// Answers one IAM action.
pub(crate) async fn iam(
    state: &ApiState,
    ctx: &RequestCtx,
    p: &Params,
    action: &'static str,
    request_id: &str,
) -> Result<Response, ApiError> {
    let arca = &state.arca;
    let s = QueryService::Iam;
    let ok = |f: &dyn Fn(&mut Xml)| query::ok(s, action, request_id, |x| f(x));
    let done = || query::ok(s, action, request_id, |_| {});
    let holder = holder_of(action);
    let holder_name = || match holder {
        Holder::User => p.get("UserName"),
        Holder::Role => p.get("RoleName"),
    };
    Ok(match action {
        "CreateUser" => {
            let u = arca
                .iam_create_user(ctx, p.get("UserName"), p.get("Path"), p.tags())
                .await?;
            ok(&|x| user(x, &u))
        }
        "GetUser" => {
            let u = arca.iam_get_user(ctx, p.get("UserName")).await?;
            ok(&|x| user(x, &u))
        }
        "ListUsers" => {
            let (users, next) = page(arca.iam_list_users(ctx, p.get("PathPrefix")).await?, p)?;
            ok(&|x| {
                x.open("Users");
                for u in &users {
                    x.open("member");
                    user_fields(x, u);
                    x.close("member");
                }
                x.close("Users");
                truncation(x, next.clone());
            })
        }
        "DeleteUser" => {
            arca.iam_delete_user(ctx, p.get("UserName")).await?;
            done()
        }
        "CreateAccessKey" => {
            let k = arca
                .iam_create_access_key(ctx, &state.access_keys, p.get("UserName"))
                .await?;
            ok(&|x| {
                x.open("AccessKey");
                key(x, &k.view);
                x.leaf("SecretAccessKey", k.secret.expose());
                x.close("AccessKey");
            })
        }
        "ListAccessKeys" => {
            let (keys, next) = page(arca.iam_list_access_keys(ctx, p.get("UserName")).await?, p)?;
            ok(&|x| {
                x.open("AccessKeyMetadata");
                for k in &keys {
                    x.open("member");
                    key(x, k);
                    x.close("member");
                }
                x.close("AccessKeyMetadata");
                truncation(x, next.clone());
            })
        }
        "DeleteAccessKey" => {
            arca.iam_delete_access_key(
                ctx,
                &state.access_keys,
                p.get("UserName"),
                p.get("AccessKeyId"),
            )
            .await?;
            done()
        }
        "CreateRole" => {
            let r = arca
                .iam_create_role(
                    ctx,
                    p.get("RoleName"),
                    p.get("Path"),
                    p.get("AssumeRolePolicyDocument"),
                    p.get("Description"),
                    p.int("MaxSessionDuration", "maxSessionDuration")?,
                )
                .await?;
            ok(&|x| role(x, "Role", &r))
        }
        "GetRole" => {
            let r = arca.iam_get_role(ctx, p.get("RoleName")).await?;
            ok(&|x| role(x, "Role", &r))
        }
        "ListRoles" => {
            let (roles, next) = page(arca.iam_list_roles(ctx, p.get("PathPrefix")).await?, p)?;
            ok(&|x| {
                x.open("Roles");
                for r in &roles {
                    role(x, "member", r);
                }
                x.close("Roles");
                truncation(x, next.clone());
            })
        }
        "DeleteRole" => {
            arca.iam_delete_role(ctx, p.get("RoleName")).await?;
            done()
        }
        "PutUserPolicy" | "PutRolePolicy" => {
            arca.iam_put_inline_policy(
                ctx,
                holder,
                holder_name(),
                p.get("PolicyName"),
                p.get("PolicyDocument"),
            )
            .await?;
            done()
        }
        "GetUserPolicy" | "GetRolePolicy" => {
            let (who, name, text) = arca
                .iam_get_inline_policy(ctx, holder, holder_name(), p.get("PolicyName"))
                .await?;
            let who_tag = if holder == Holder::Role {
                "RoleName"
            } else {
                "UserName"
            };
            ok(&|x| {
                x.leaf(who_tag, &who)
                    .leaf("PolicyName", &name)
                    .policy("PolicyDocument", &text);
            })
        }
        "DeleteUserPolicy" | "DeleteRolePolicy" => {
            arca.iam_delete_inline_policy(ctx, holder, holder_name(), p.get("PolicyName"))
                .await?;
            done()
        }
        "ListUserPolicies" | "ListRolePolicies" => {
            let (names, next) = page(
                arca.iam_list_inline_policies(ctx, holder, holder_name())
                    .await?,
                p,
            )?;
            ok(&|x| {
                x.open("PolicyNames");
                for n in &names {
                    x.leaf("member", n);
                }
                x.close("PolicyNames");
                truncation(x, next.clone());
            })
        }
        "CreatePolicy" => {
            let v = arca
                .iam_create_policy(
                    ctx,
                    p.get("PolicyName"),
                    p.get("Path"),
                    p.get("PolicyDocument"),
                    p.get("Description"),
                )
                .await?;
            ok(&|x| policy(x, "Policy", &v))
        }
        "GetPolicy" => {
            let v = arca.iam_get_policy(ctx, p.get("PolicyArn")).await?;
            ok(&|x| policy(x, "Policy", &v))
        }
        "ListPolicies" => {
            let mut all = Vec::new();
            let scope = p.get("Scope").unwrap_or_else(|| "All".to_owned());
            if scope != "Local" {
                for (name, _) in arca_core::iam::AWS_MANAGED {
                    let arn = format!("{}{name}", arca_core::iam::AWS_MANAGED_PREFIX);
                    all.push(arca.iam_get_policy(ctx, Some(arn)).await?);
                }
            }
            if scope != "AWS" {
                all.extend(arca.iam_list_policies(ctx).await?);
            }
            let (list, next) = page(all, p)?;
            ok(&|x| {
                x.open("Policies");
                for v in &list {
                    policy(x, "member", v);
                }
                x.close("Policies");
                truncation(x, next.clone());
            })
        }
        "DeletePolicy" => {
            arca.iam_delete_policy(ctx, p.get("PolicyArn")).await?;
            done()
        }
        "AttachUserPolicy" | "AttachRolePolicy" => {
            arca.iam_attach_policy(ctx, holder, holder_name(), p.get("PolicyArn"))
                .await?;
            done()
        }
        "DetachUserPolicy" | "DetachRolePolicy" => {
            arca.iam_detach_policy(ctx, holder, holder_name(), p.get("PolicyArn"))
                .await?;
            done()
        }
        _ => {
            // ListAttachedUserPolicies, ListAttachedRolePolicies.
            let (list, next) = page(arca.iam_list_attached(ctx, holder, holder_name()).await?, p)?;
            ok(&|x| {
                x.open("AttachedPolicies");
                for (name, arn) in &list {
                    x.open("member")
                        .leaf("PolicyName", name)
                        .leaf("PolicyArn", arn)
                        .close("member");
                }
                x.close("AttachedPolicies");
                truncation(x, next.clone());
            })
        }
    })
}

/// A user's fields without the enclosing `<User>` (a ListUsers member).
fn user_fields(x: &mut Xml, u: &UserView) {
    x.leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &u.arn)
        .date("CreateDate", u.created_at);
}

/// Answers one STS action.
pub(crate) async fn sts(
    state: &ApiState,
    ctx: &RequestCtx,
    p: &Params,
    action: &'static str,
    request_id: &str,
) -> Result<Response, ApiError> {
    let arca = &state.arca;
    let s = QueryService::Sts;
    Ok(match action {
        "AssumeRole" => {
            let r = arca
                .assume_role(
                    ctx,
                    AssumeRoleRequest {
                        role_arn: p.get("RoleArn"),
                        role_session_name: p.get("RoleSessionName"),
                        duration_seconds: p.int("DurationSeconds", "durationSeconds")?,
                        external_id: p.get("ExternalId"),
                        session_policy: p.get("Policy").is_some() || p.any_starting("PolicyArns."),
                    },
                )
                .await?;
            query::ok(s, action, request_id, |x| {
                x.open("AssumedRoleUser")
                    .leaf("AssumedRoleId", &r.assumed_role_id)
                    .leaf("Arn", &r.arn)
                    .close("AssumedRoleUser")
                    .open("Credentials")
                    .leaf("AccessKeyId", &r.access_key_id)
                    .leaf("SecretAccessKey", r.secret_access_key.expose())
                    .leaf("SessionToken", r.session_token.expose())
                    .date("Expiration", r.expiration_secs * 1000)
                    .close("Credentials")
                    .leaf("PackedPolicySize", "0");
            })
        }
        _ => {
            let who = arca.get_caller_identity(ctx)?;
            query::ok(s, action, request_id, |x| {
                x.leaf("UserId", &who.user_id)
                    .leaf("Account", &who.account)
                    .leaf("Arn", &who.arn);
            })
        }
    })
}
