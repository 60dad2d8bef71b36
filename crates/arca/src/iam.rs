//! `arca iam ...`: the IAM operations from the command line, on the store directly (as
//! the operator, with the service's own authority). Named as the aws CLI names them; a
//! running server picks the changes up within two seconds.

use crate::Opened;
use anyhow::Result;
use arca_core::access::AccessKeys;
use arca_core::iam::ops::{Holder, RoleView, UserView};
use arca_core::{Arca, RequestCtx};
use arca_types::time::SystemClock;
use arca_types::ApiError;
use clap::{Args, Subcommand};
use serde_json::json;
use std::sync::Arc;

#[derive(Args, Clone)]
pub struct IamArgs {
    /// The account to act in (default: the deployment's account).
    #[arg(long, global = true)]
    account: Option<String>,
    #[command(subcommand)]
    action: IamAction,
}

/// A user or a role, for the policy commands.
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
pub struct Who {
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    role: Option<String>,
}

impl Who {
    fn holder(&self) -> (Holder, Option<String>) {
        match &self.role {
            Some(r) => (Holder::Role, Some(r.clone())),
            None => (Holder::User, self.user.clone()),
        }
    }
}

#[derive(Subcommand, Clone)]
pub enum IamAction {
    CreateUser {
        name: String,
        #[arg(long)]
        path: Option<String>,
    },
    ListUsers,
    DeleteUser {
        name: String,
    },
    /// Create an access key for a user and print it (the secret is shown only once).
    CreateAccessKey {
        #[arg(long)]
        user: String,
    },
    ListAccessKeys {
        #[arg(long)]
        user: String,
    },
    DeleteAccessKey {
        #[arg(long)]
        user: String,
        access_key_id: String,
    },
    /// Create a role; --trust is its trust policy (JSON, or file://PATH).
    CreateRole {
        name: String,
        #[arg(long)]
        trust: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        max_session_secs: Option<i64>,
    },
    ListRoles,
    DeleteRole {
        name: String,
    },
    /// Put an inline policy (JSON, or file://PATH) on a user or a role.
    PutPolicy {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        name: String,
        #[arg(long)]
        document: String,
    },
    GetPolicy {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        name: String,
    },
    DeletePolicy {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        name: String,
    },
    /// The inline and attached policies of a user or a role.
    ListPolicies {
        #[command(flatten)]
        who: Who,
    },
    /// Create a customer managed policy.
    CreateManagedPolicy {
        name: String,
        #[arg(long)]
        document: String,
    },
    DeleteManagedPolicy {
        arn: String,
    },
    /// Attach a managed policy (by ARN) to a user or a role.
    Attach {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        arn: String,
    },
    Detach {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        arn: String,
    },
}

/// A document given inline or as `file://PATH` (the aws CLI's convention).
pub(crate) fn document(arg: &str) -> Result<String> {
    match arg.strip_prefix("file://") {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))
        }
        None => Ok(arg.to_owned()),
    }
}

fn user_json(u: &UserView) -> serde_json::Value {
    json!({"UserName": u.name, "UserId": u.id, "Arn": u.arn, "Path": u.path})
}

fn role_json(r: &RoleView) -> serde_json::Value {
    json!({"RoleName": r.name, "RoleId": r.id, "Arn": r.arn, "Path": r.path,
           "MaxSessionDuration": r.max_session_secs})
}

pub async fn iam_command(o: &Opened, args: IamArgs) -> Result<()> {
    let account = args.account.unwrap_or_else(|| o.account.clone());
    let arca = Arca::new(
        o.store.clone(),
        o.keys.clone(),
        Arc::new(SystemClock),
        account,
    );
    arca.iam()
        .reload()
        .await
        .map_err(|e| anyhow::anyhow!("reading IAM entities: {e}"))?;
    // The operator acts with the service's authority: no caller to authorize.
    let ctx = RequestCtx::new("us-east-1");
    let api = |e: ApiError| anyhow::anyhow!("{}: {}", e.code.query_code(), e.message);
    let out = |v: serde_json::Value| println!("{v}");
    match args.action {
        IamAction::CreateUser { name, path } => {
            let u = arca
                .iam_create_user(&ctx, Some(name), path, Default::default())
                .await
                .map_err(api)?;
            out(user_json(&u));
        }
        IamAction::ListUsers => {
            for u in arca.iam_list_users(&ctx, None).await.map_err(api)? {
                out(user_json(&u));
            }
        }
        IamAction::DeleteUser { name } => {
            arca.iam_delete_user(&ctx, Some(name)).await.map_err(api)?
        }
        IamAction::CreateAccessKey { user } => {
            let keys = AccessKeys::load(o.keys.clone(), o.store.clone(), Vec::new()).await?;
            let k = arca
                .iam_create_access_key(&ctx, &keys, Some(user))
                .await
                .map_err(api)?;
            out(
                json!({"UserName": k.view.user_name, "AccessKeyId": k.view.access_key_id,
                       "SecretAccessKey": k.secret.expose()}),
            );
        }
        IamAction::ListAccessKeys { user } => {
            for k in arca
                .iam_list_access_keys(&ctx, Some(user))
                .await
                .map_err(api)?
            {
                out(
                    json!({"UserName": k.user_name, "AccessKeyId": k.access_key_id,
                           "Status": if k.active { "Active" } else { "Inactive" }}),
                );
            }
        }
        IamAction::DeleteAccessKey {
            user,
            access_key_id,
        } => {
            let keys = AccessKeys::load(o.keys.clone(), o.store.clone(), Vec::new()).await?;
            arca.iam_delete_access_key(&ctx, &keys, Some(user), Some(access_key_id))
                .await
                .map_err(api)?;
        }
        IamAction::CreateRole {
            name,
            trust,
            path,
            max_session_secs,
        } => {
            let r = arca
                .iam_create_role(
                    &ctx,
                    Some(name),
                    path,
                    Some(document(&trust)?),
                    None,
                    max_session_secs,
                )
                .await
                .map_err(api)?;
            out(role_json(&r));
        }
        IamAction::ListRoles => {
            for r in arca.iam_list_roles(&ctx, None).await.map_err(api)? {
                out(role_json(&r));
            }
        }
        IamAction::DeleteRole { name } => {
            arca.iam_delete_role(&ctx, Some(name)).await.map_err(api)?
        }
        IamAction::PutPolicy {
            who,
            name,
            document: doc,
        } => {
            let (holder, n) = who.holder();
            arca.iam_put_inline_policy(&ctx, holder, n, Some(name), Some(document(&doc)?))
                .await
                .map_err(api)?;
        }
        IamAction::GetPolicy { who, name } => {
            let (holder, n) = who.holder();
            let (_, _, text) = arca
                .iam_get_inline_policy(&ctx, holder, n, Some(name))
                .await
                .map_err(api)?;
            println!("{text}");
        }
        IamAction::DeletePolicy { who, name } => {
            let (holder, n) = who.holder();
            arca.iam_delete_inline_policy(&ctx, holder, n, Some(name))
                .await
                .map_err(api)?;
        }
        IamAction::ListPolicies { who } => {
            let (holder, n) = who.holder();
            let inline = arca
                .iam_list_inline_policies(&ctx, holder, n.clone())
                .await
                .map_err(api)?;
            let attached = arca.iam_list_attached(&ctx, holder, n).await.map_err(api)?;
            out(json!({
                "Inline": inline,
                "Attached": attached.iter().map(|(_, arn)| arn).collect::<Vec<_>>(),
            }));
        }
        IamAction::CreateManagedPolicy {
            name,
            document: doc,
        } => {
            let p = arca
                .iam_create_policy(&ctx, Some(name), None, Some(document(&doc)?), None)
                .await
                .map_err(api)?;
            out(json!({"PolicyName": p.name, "Arn": p.arn, "PolicyId": p.id}));
        }
        IamAction::DeleteManagedPolicy { arn } => {
            arca.iam_delete_policy(&ctx, Some(arn)).await.map_err(api)?
        }
        IamAction::Attach { who, arn } => {
            let (holder, n) = who.holder();
            arca.iam_attach_policy(&ctx, holder, n, Some(arn))
                .await
                .map_err(api)?;
        }
        IamAction::Detach { who, arn } => {
            let (holder, n) = who.holder();
            arca.iam_detach_policy(&ctx, holder, n, Some(arn))
                .await
                .map_err(api)?;
        }
    }
    Ok(())
}
