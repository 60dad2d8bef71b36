//! The IAM operations tooling needs (users, access keys, roles, inline and managed
//! policies), with IAM's errors, each authorized as `iam:ACTION` on the entity's ARN.
//! They act in the caller's account (background callers, the admin CLI: the default one).

use super::{entity_arn, PolicyDoc, RoleDoc, UserDoc, AWS_MANAGED, AWS_MANAGED_PREFIX};
use crate::access::AccessKeys;
use crate::{Arca, RequestCtx};
use arca_policy::{Kind, Policy};
use arca_store::{IamKind, IamRecord, KeyOwner, StoreError};
use arca_types::secret::SecretString;
use arca_types::time::Millis;
use arca_types::{ApiError, ErrorCode, Shown, Violation};
use std::collections::BTreeMap;

/// IAM's quota of access keys per user.
pub const ACCESS_KEYS_PER_USER: usize = 2;
/// IAM's default MaxSessionDuration of a role, and its bounds.
pub const DEFAULT_MAX_SESSION_SECS: u32 = 3_600;

/// Who holds an inline or attached policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    User,
    Role,
}

impl Holder {
    fn kind(self) -> IamKind {
        match self {
            Holder::User => IamKind::User,
            Holder::Role => IamKind::Role,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Holder::User => "user",
            Holder::Role => "role",
        }
    }

    /// `User` or `Role`, as IAM's action names spell it.
    fn title(self) -> &'static str {
        match self {
            Holder::User => "User",
            Holder::Role => "Role",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserView {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created_at: Millis,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct RoleView {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created_at: Millis,
    pub trust: String,
    pub description: Option<String>,
    pub max_session_secs: u32,
}

#[derive(Debug, Clone)]
pub struct PolicyView {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub attachments: usize,
    pub description: Option<String>,
    pub document: String,
}

#[derive(Debug, Clone)]
pub struct KeyView {
    pub user_name: String,
    pub access_key_id: String,
    pub active: bool,
    pub created_at: Millis,
}

/// A new access key: its secret is shown once.
pub struct NewKey {
    pub view: KeyView,
    pub secret: SecretString,
}

fn err(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

fn no_such(what: &str, name: &str) -> ApiError {
    err(
        ErrorCode::NoSuchEntity,
        format!("The {what} with name {name} cannot be found."),
    )
}

fn violation(value: Shown, path: &str, constraint: impl Into<String>) -> ApiError {
    ApiError::validation(&[Violation {
        value,
        path: path.to_owned(),
        constraint: constraint.into(),
    }])
}

/// A name of `[\w+=,.@-]+`, 1..=max characters (userName, roleName, policyName).
fn check_name(name: Option<String>, field: &str, max: usize) -> Result<String, ApiError> {
    let Some(name) = name else {
        return Err(violation(Shown::Null, field, "Member must not be null"));
    };
    if name.is_empty() {
        return Err(violation(
            Shown::Value(name),
            field,
            "Member must have length greater than or equal to 1",
        ));
    }
    if name.chars().count() > max {
        return Err(violation(
            Shown::Value(name),
            field,
            format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !name.chars().all(super::sts::is_name_char) {
        return Err(violation(
            Shown::Value(name),
            field,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(name)
}

/// A path: `/`, or `/`-delimited printable ASCII starting and ending with `/`.
fn check_path(path: Option<String>) -> Result<String, ApiError> {
    let path = path.unwrap_or_else(|| "/".to_owned());
    let ok = path.len() <= 512
        && (path == "/"
            || (path.len() >= 3
                && path.starts_with('/')
                && path.ends_with('/')
                && path.bytes().all(|b| (0x21..=0x7e).contains(&b))));
    if ok {
        Ok(path)
    } else {
        Err(violation(
            Shown::Value(path),
            "path",
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ))
    }
}

/// A policy document that IAM would accept, of `kind` (a trust policy is a resource
/// policy: it names principals).
fn check_document(text: Option<String>, field: &str, kind: Kind) -> Result<String, ApiError> {
    let Some(text) = text else {
        return Err(violation(Shown::Null, field, "Member must not be null"));
    };
    Policy::parse(&text, kind)
        .map_err(|e| err(ErrorCode::MalformedPolicyDocument, e.to_string()))?;
    Ok(text)
}

/// A unique id as IAM makes them: a 4-letter prefix naming the kind and 17 characters.
fn unique_id(prefix: &str) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rngs::OsRng;
    prefix
        .chars()
        .chain((0..17).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char))
        .collect()
}

fn store_err(e: StoreError, what: &str, name: &str) -> ApiError {
    match e {
        StoreError::NameTaken => err(
            ErrorCode::EntityAlreadyExists,
            format!("{what} with name {name} already exists."),
        ),
        StoreError::NotFound => no_such(&what.to_ascii_lowercase(), name),
        other => crate::store_err(other),
    }
}

fn user_view(r: &IamRecord, d: &UserDoc) -> UserView {
    UserView {
        name: r.name.clone(),
        path: d.path.clone(),
        id: d.id.clone(),
        arn: entity_arn(&r.account, IamKind::User, &d.path, &r.name),
        created_at: r.created_at,
        tags: d.tags.clone(),
    }
}

fn role_view(r: &IamRecord, d: &RoleDoc) -> RoleView {
    RoleView {
        name: r.name.clone(),
        path: d.path.clone(),
        id: d.id.clone(),
        arn: entity_arn(&r.account, IamKind::Role, &d.path, &r.name),
        created_at: r.created_at,
        trust: d.trust.clone(),
        description: d.description.clone(),
        max_session_secs: d.max_session_secs,
    }
}

/// IAM deletes a user or role only once its policies are gone (DeleteConflict).
fn ensure_no_policies(
    inline: &BTreeMap<String, String>,
    attached: &[String],
) -> Result<(), ApiError> {
    if !inline.is_empty() {
        return Err(err(
            ErrorCode::DeleteConflict,
            "Cannot delete entity, must delete policies first.",
        ));
    }
    if !attached.is_empty() {
        return Err(err(
            ErrorCode::DeleteConflict,
            "Cannot delete entity, must detach all policies first.",
        ));
    }
    Ok(())
}

/// The inline and attached policies of a user or role, whichever it is.
struct Held<'a> {
    inline: &'a mut BTreeMap<String, String>,
    attached: &'a mut Vec<String>,
}

/// A user's or role's document, parsed, to read or change its policies.
enum HolderDoc {
    User(UserDoc),
    Role(RoleDoc),
}

impl HolderDoc {
    fn held(&mut self) -> Held<'_> {
        match self {
            HolderDoc::User(d) => Held {
                inline: &mut d.inline,
                attached: &mut d.attached,
            },
            HolderDoc::Role(d) => Held {
                inline: &mut d.inline,
                attached: &mut d.attached,
            },
        }
    }

    fn path(&self) -> &str {
        match self {
            HolderDoc::User(d) => &d.path,
            HolderDoc::Role(d) => &d.path,
        }
    }

    fn to_json(&self) -> String {
        match self {
            HolderDoc::User(d) => serde_json::to_string(d),
            HolderDoc::Role(d) => serde_json::to_string(d),
        }
        .unwrap_or_default()
    }
}

impl Arca {
    /// The account an IAM call acts in: the caller's.
    fn iam_account(&self, ctx: &RequestCtx) -> String {
        ctx.access.as_ref().map_or_else(
            || self.account.clone(),
            |a| a.identity.principal.account.clone(),
        )
    }

    fn iam_check(&self, ctx: &RequestCtx, action: &str, resource: &str) -> Result<(), ApiError> {
        let account = self.iam_account(ctx);
        self.authorize_action(
            ctx,
            &format!("iam:{action}"),
            resource,
            &account,
            Default::default(),
            None,
        )
    }

    /// Reads the store again (so a change from another node or the admin CLI is seen)
    /// and returns the entity.
    async fn fresh(
        &self,
        account: &str,
        kind: IamKind,
        name: &str,
    ) -> Result<Option<IamRecord>, ApiError> {
        self.iam.reload().await.map_err(crate::store_err)?;
        Ok(self.iam.record(account, kind, name))
    }

    /// Writes an entity: a new one (`replaces` None), or over the version read (its
    /// `updated_at`), so that two concurrent changes never lose one (IAM's
    /// ConcurrentModification for the later).
    async fn put_entity(
        &self,
        rec: IamRecord,
        replaces: Option<Millis>,
        what: &str,
    ) -> Result<(), ApiError> {
        let name = rec.name.clone();
        match self.store.put_iam(&rec, replaces).await {
            Err(StoreError::Conflict) => {
                self.iam.reload().await.map_err(crate::store_err)?;
                return Err(err(
                    ErrorCode::ConcurrentModification,
                    "The request was rejected because multiple requests to change this \
                     object were submitted simultaneously. Wait a few minutes and submit \
                     your request again.",
                ));
            }
            other => other.map_err(|e| store_err(e, what, &name))?,
        }
        self.iam.reload().await.map_err(crate::store_err)
    }

    /// The user a call names, or the caller itself when it names none (IAM's rule for
    /// GetUser, CreateAccessKey, ListAccessKeys, DeleteAccessKey). `None`: the caller is
    /// the administrator, which is no stored user.
    fn user_named(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
    ) -> Result<Option<String>, ApiError> {
        match name {
            Some(n) => check_name(Some(n), "userName", 64).map(Some),
            None => Ok(ctx
                .access
                .as_ref()
                .filter(|a| a.identity.principal.kind == arca_policy::PrincipalKind::User)
                .and_then(|a| a.identity.principal.name.clone())
                .filter(|n| n != crate::authz::ADMINISTRATOR)),
        }
    }

    fn user_record(&self, account: &str, name: &str) -> Result<(IamRecord, UserDoc), ApiError> {
        let r = self
            .iam
            .record(account, IamKind::User, name)
            .ok_or_else(|| no_such("user", name))?;
        let d = serde_json::from_str(&r.document).map_err(|_| ApiError::internal())?;
        Ok((r, d))
    }

    fn holder_record(
        &self,
        account: &str,
        holder: Holder,
        name: &str,
    ) -> Result<(IamRecord, HolderDoc), ApiError> {
        let r = self
            .iam
            .record(account, holder.kind(), name)
            .ok_or_else(|| no_such(holder.word(), name))?;
        let d = match holder {
            Holder::User => serde_json::from_str(&r.document).map(HolderDoc::User),
            Holder::Role => serde_json::from_str(&r.document).map(HolderDoc::Role),
        }
        .map_err(|_| ApiError::internal())?;
        Ok((r, d))
    }

    /// IAM names are unique without regard to case.
    fn name_taken(&self, account: &str, kind: IamKind, name: &str) -> bool {
        self.iam
            .records(account, kind)
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// A new entity's record, created and updated now.
    fn new_record(
        &self,
        account: String,
        kind: IamKind,
        name: String,
        doc: &impl serde::Serialize,
    ) -> Result<IamRecord, ApiError> {
        let now = self.now();
        Ok(IamRecord {
            account,
            kind,
            name,
            document: serde_json::to_string(doc).map_err(|_| ApiError::internal())?,
            created_at: now,
            updated_at: now,
        })
    }

    // ----- users -----

    pub async fn iam_create_user(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
        path: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> Result<UserView, ApiError> {
        let name = check_name(name, "userName", 64)?;
        let path = check_path(path)?;
        let account = self.iam_account(ctx);
        self.iam_check(
            ctx,
            "CreateUser",
            &entity_arn(&account, IamKind::User, &path, &name),
        )?;
        self.iam.reload().await.map_err(crate::store_err)?;
        if self.name_taken(&account, IamKind::User, &name) || name == crate::authz::ADMINISTRATOR {
            return Err(store_err(StoreError::NameTaken, "User", &name));
        }
        let doc = UserDoc {
            path,
            id: unique_id("AIDA"),
            tags,
            ..Default::default()
        };
        let rec = self.new_record(account, IamKind::User, name, &doc)?;
        self.put_entity(rec.clone(), None, "User").await?;
        Ok(user_view(&rec, &doc))
    }

    pub async fn iam_get_user(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
    ) -> Result<UserView, ApiError> {
        let account = self.iam_account(ctx);
        let Some(name) = self.user_named(ctx, name)? else {
            // The administrator asking about itself.
            let access = ctx.access.as_ref().ok_or_else(ApiError::internal)?;
            access.mark_decided();
            let p = &access.identity.principal;
            return Ok(UserView {
                name: crate::authz::ADMINISTRATOR.to_owned(),
                path: "/".to_owned(),
                id: p.userid.clone(),
                arn: p.arn.clone(),
                created_at: 0,
                tags: BTreeMap::new(),
            });
        };
        let found = self.fresh(&account, IamKind::User, &name).await?;
        let path = found
            .as_ref()
            .and_then(|r| serde_json::from_str::<UserDoc>(&r.document).ok())
            .map_or_else(|| "/".to_owned(), |d| d.path);
        self.iam_check(
            ctx,
            "GetUser",
            &entity_arn(&account, IamKind::User, &path, &name),
        )?;
        let (r, d) = self.user_record(&account, &name)?;
        Ok(user_view(&r, &d))
    }

    pub async fn iam_list_users(
        &self,
        ctx: &RequestCtx,
        path_prefix: Option<String>,
    ) -> Result<Vec<UserView>, ApiError> {
        self.list_entities(
            ctx,
            IamKind::User,
            "ListUsers",
            path_prefix,
            |r, d: &UserDoc| (d.path.clone(), user_view(r, d)),
        )
        .await
    }

    /// ListUsers, ListRoles: the caller's account's entities of `kind` under a path prefix.
    async fn list_entities<D: serde::de::DeserializeOwned, V>(
        &self,
        ctx: &RequestCtx,
        kind: IamKind,
        action: &str,
        path_prefix: Option<String>,
        view: impl Fn(&IamRecord, &D) -> (String, V),
    ) -> Result<Vec<V>, ApiError> {
        self.iam_check(ctx, action, "*")?;
        self.iam.reload().await.map_err(crate::store_err)?;
        let prefix = path_prefix.unwrap_or_else(|| "/".to_owned());
        Ok(self
            .iam
            .records(&self.iam_account(ctx), kind)
            .iter()
            .filter_map(|r| Some(view(r, &serde_json::from_str::<D>(&r.document).ok()?)))
            .filter(|(path, _)| path.starts_with(&prefix))
            .map(|(_, v)| v)
            .collect())
    }

    pub async fn iam_delete_user(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
    ) -> Result<(), ApiError> {
        let name = check_name(name, "userName", 64)?;
        let account = self.iam_account(ctx);
        self.fresh(&account, IamKind::User, &name).await?;
        let arn = self
            .user_record(&account, &name)
            .map(|(r, d)| entity_arn(&r.account, IamKind::User, &d.path, &r.name))
            .unwrap_or_else(|_| entity_arn(&account, IamKind::User, "/", &name));
        self.iam_check(ctx, "DeleteUser", &arn)?;
        let (_, doc) = self.user_record(&account, &name)?;
        let owner = KeyOwner {
            account: account.clone(),
            user: name.clone(),
        };
        let has_keys = self
            .store
            .list_access_keys()
            .await
            .map_err(crate::store_err)?
            .iter()
            .any(|k| k.owner.as_ref() == Some(&owner));
        if has_keys {
            return Err(err(
                ErrorCode::DeleteConflict,
                "Cannot delete entity, must delete access keys first.",
            ));
        }
        ensure_no_policies(&doc.inline, &doc.attached)?;
        self.delete_entity(&account, IamKind::User, &name, "user")
            .await
    }

    async fn delete_entity(
        &self,
        account: &str,
        kind: IamKind,
        name: &str,
        what: &str,
    ) -> Result<(), ApiError> {
        let existed = self
            .store
            .delete_iam(account, kind, name)
            .await
            .map_err(crate::store_err)?;
        self.iam.reload().await.map_err(crate::store_err)?;
        if existed {
            Ok(())
        } else {
            Err(no_such(what, name))
        }
    }

    // ----- access keys -----

    /// The user a key call acts on, authorized: (owner, user ARN).
    async fn key_user(
        &self,
        ctx: &RequestCtx,
        action: &str,
        name: Option<String>,
    ) -> Result<(Option<KeyOwner>, String, String), ApiError> {
        let account = self.iam_account(ctx);
        match self.user_named(ctx, name)? {
            Some(name) => {
                self.fresh(&account, IamKind::User, &name).await?;
                let arn = self
                    .user_record(&account, &name)
                    .map(|(r, d)| entity_arn(&r.account, IamKind::User, &d.path, &r.name))
                    .unwrap_or_else(|_| entity_arn(&account, IamKind::User, "/", &name));
                self.iam_check(ctx, action, &arn)?;
                self.user_record(&account, &name)?;
                Ok((
                    Some(KeyOwner {
                        account,
                        user: name.clone(),
                    }),
                    name,
                    arn,
                ))
            }
            None => {
                let arn = entity_arn(&account, IamKind::User, "/", crate::authz::ADMINISTRATOR);
                self.iam_check(ctx, action, &arn)?;
                Ok((None, crate::authz::ADMINISTRATOR.to_owned(), arn))
            }
        }
    }

    async fn keys_of(
        &self,
        owner: &Option<KeyOwner>,
    ) -> Result<Vec<arca_store::AccessKeyRecord>, ApiError> {
        Ok(self
            .store
            .list_access_keys()
            .await
            .map_err(crate::store_err)?
            .into_iter()
            .filter(|k| &k.owner == owner && k.scope == arca_store::KeyScope::Full)
            .collect())
    }

    pub async fn iam_create_access_key(
        &self,
        ctx: &RequestCtx,
        keys: &AccessKeys,
        user: Option<String>,
    ) -> Result<NewKey, ApiError> {
        let (owner, user_name, _) = self.key_user(ctx, "CreateAccessKey", user).await?;
        // The administrator's keys predate the quota (and the operator makes them).
        if owner.is_some() && self.keys_of(&owner).await?.len() >= ACCESS_KEYS_PER_USER {
            return Err(err(
                ErrorCode::LimitExceeded,
                format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"),
            ));
        }
        let now = self.now();
        let (id, secret) = keys
            .create_for(owner, now)
            .await
            .map_err(crate::store_err)?;
        Ok(NewKey {
            view: KeyView {
                user_name,
                access_key_id: id,
                active: true,
                created_at: now,
            },
            secret,
        })
    }

    pub async fn iam_list_access_keys(
        &self,
        ctx: &RequestCtx,
        user: Option<String>,
    ) -> Result<Vec<KeyView>, ApiError> {
        let (owner, user_name, _) = self.key_user(ctx, "ListAccessKeys", user).await?;
        Ok(self
            .keys_of(&owner)
            .await?
            .into_iter()
            .map(|k| KeyView {
                user_name: user_name.clone(),
                access_key_id: k.access_key_id,
                active: k.enabled,
                created_at: k.created_at,
            })
            .collect())
    }

    pub async fn iam_delete_access_key(
        &self,
        ctx: &RequestCtx,
        keys: &AccessKeys,
        user: Option<String>,
        access_key_id: Option<String>,
    ) -> Result<(), ApiError> {
        let id = access_key_id
            .ok_or_else(|| violation(Shown::Null, "accessKeyId", "Member must not be null"))?;
        let (owner, _, _) = self.key_user(ctx, "DeleteAccessKey", user).await?;
        if !self
            .keys_of(&owner)
            .await?
            .iter()
            .any(|k| k.access_key_id == id)
        {
            return Err(err(
                ErrorCode::NoSuchEntity,
                format!("The Access Key with id {id} cannot be found."),
            ));
        }
        keys.delete(&id).await.map_err(crate::store_err)?;
        Ok(())
    }

    // ----- roles -----

    pub async fn iam_create_role(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
        path: Option<String>,
        trust: Option<String>,
        description: Option<String>,
        max_session_secs: Option<i64>,
    ) -> Result<RoleView, ApiError> {
        let name = check_name(name, "roleName", 64)?;
        let path = check_path(path)?;
        let trust = check_document(trust, "assumeRolePolicyDocument", Kind::Resource)?;
        let max = max_session_secs.unwrap_or(i64::from(DEFAULT_MAX_SESSION_SECS));
        if !(3_600..=43_200).contains(&max) {
            return Err(violation(
                Shown::Value(max.to_string()),
                "maxSessionDuration",
                if max < 3_600 {
                    "Member must have value greater than or equal to 3600"
                } else {
                    "Member must have value less than or equal to 43200"
                },
            ));
        }
        let account = self.iam_account(ctx);
        self.iam_check(
            ctx,
            "CreateRole",
            &entity_arn(&account, IamKind::Role, &path, &name),
        )?;
        self.iam.reload().await.map_err(crate::store_err)?;
        if self.name_taken(&account, IamKind::Role, &name) {
            return Err(store_err(StoreError::NameTaken, "Role", &name));
        }
        let doc = RoleDoc {
            path,
            id: unique_id("AROA"),
            trust,
            description,
            max_session_secs: max as u32,
            ..Default::default()
        };
        let rec = self.new_record(account, IamKind::Role, name, &doc)?;
        self.put_entity(rec.clone(), None, "Role").await?;
        Ok(role_view(&rec, &doc))
    }

    pub async fn iam_get_role(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
    ) -> Result<RoleView, ApiError> {
        let name = check_name(name, "roleName", 64)?;
        let account = self.iam_account(ctx);
        let found = self.fresh(&account, IamKind::Role, &name).await?;
        let doc = found
            .as_ref()
            .and_then(|r| serde_json::from_str::<RoleDoc>(&r.document).ok());
        let path = doc.as_ref().map_or("/", |d| d.path.as_str());
        self.iam_check(
            ctx,
            "GetRole",
            &entity_arn(&account, IamKind::Role, path, &name),
        )?;
        match (found, doc) {
            (Some(r), Some(d)) => Ok(role_view(&r, &d)),
            _ => Err(no_such("role", &name)),
        }
    }

    pub async fn iam_list_roles(
        &self,
        ctx: &RequestCtx,
        path_prefix: Option<String>,
    ) -> Result<Vec<RoleView>, ApiError> {
        self.list_entities(
            ctx,
            IamKind::Role,
            "ListRoles",
            path_prefix,
            |r, d: &RoleDoc| (d.path.clone(), role_view(r, d)),
        )
        .await
    }

    pub async fn iam_delete_role(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
    ) -> Result<(), ApiError> {
        let name = check_name(name, "roleName", 64)?;
        let account = self.iam_account(ctx);
        self.fresh(&account, IamKind::Role, &name).await?;
        let found = self.holder_record(&account, Holder::Role, &name);
        let arn = found
            .as_ref()
            .map(|(r, d)| entity_arn(&r.account, IamKind::Role, d.path(), &r.name))
            .unwrap_or_else(|_| entity_arn(&account, IamKind::Role, "/", &name));
        self.iam_check(ctx, "DeleteRole", &arn)?;
        let (_, mut doc) = found?;
        let held = doc.held();
        ensure_no_policies(held.inline, held.attached)?;
        self.delete_entity(&account, IamKind::Role, &name, "role")
            .await
    }

    // ----- inline policies (PutUserPolicy, PutRolePolicy and their Get/Delete/List) -----

    /// Reads a user or role fresh and authorizes `action` on it: (record, document).
    async fn holder_for(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
        action: &str,
    ) -> Result<(IamRecord, HolderDoc), ApiError> {
        let field = match holder {
            Holder::User => "userName",
            Holder::Role => "roleName",
        };
        let name = check_name(name, field, 64)?;
        let account = self.iam_account(ctx);
        self.fresh(&account, holder.kind(), &name).await?;
        let found = self.holder_record(&account, holder, &name);
        let arn = found
            .as_ref()
            .map(|(r, d)| entity_arn(&r.account, holder.kind(), d.path(), &r.name))
            .unwrap_or_else(|_| entity_arn(&account, holder.kind(), "/", &name));
        self.iam_check(ctx, action, &arn)?;
        found
    }

    async fn save_holder(
        &self,
        mut rec: IamRecord,
        doc: &HolderDoc,
        holder: Holder,
    ) -> Result<(), ApiError> {
        rec.document = doc.to_json();
        let read_at = rec.updated_at;
        // Always later than the version replaced, which is how the store tells them.
        rec.updated_at = self.now().max(read_at + 1);
        self.put_entity(rec, Some(read_at), holder.title()).await
    }

    pub async fn iam_put_inline_policy(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
        policy_name: Option<String>,
        document: Option<String>,
    ) -> Result<(), ApiError> {
        let policy_name = check_name(policy_name, "policyName", 128)?;
        let document = check_document(document, "policyDocument", Kind::Identity)?;
        let action = format!("Put{}Policy", holder.title());
        let (rec, mut doc) = self.holder_for(ctx, holder, name, &action).await?;
        doc.held().inline.insert(policy_name, document);
        self.save_holder(rec, &doc, holder).await
    }

    pub async fn iam_get_inline_policy(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
        policy_name: Option<String>,
    ) -> Result<(String, String, String), ApiError> {
        let policy_name = check_name(policy_name, "policyName", 128)?;
        let action = format!("Get{}Policy", holder.title());
        let (rec, mut doc) = self.holder_for(ctx, holder, name, &action).await?;
        let text = doc
            .held()
            .inline
            .get(&policy_name)
            .cloned()
            .ok_or_else(|| no_such(&format!("{} policy", holder.word()), &policy_name))?;
        Ok((rec.name, policy_name, text))
    }

    pub async fn iam_delete_inline_policy(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
        policy_name: Option<String>,
    ) -> Result<(), ApiError> {
        let policy_name = check_name(policy_name, "policyName", 128)?;
        let action = format!("Delete{}Policy", holder.title());
        let (rec, mut doc) = self.holder_for(ctx, holder, name, &action).await?;
        if doc.held().inline.remove(&policy_name).is_none() {
            return Err(no_such(&format!("{} policy", holder.word()), &policy_name));
        }
        self.save_holder(rec, &doc, holder).await
    }

    pub async fn iam_list_inline_policies(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
    ) -> Result<Vec<String>, ApiError> {
        let action = format!("List{}Policies", holder.title());
        let (_, mut doc) = self.holder_for(ctx, holder, name, &action).await?;
        Ok(doc.held().inline.keys().cloned().collect())
    }

    // ----- managed policies -----

    fn policy_views(&self, account: &str) -> Vec<PolicyView> {
        let attachments = |arn: &str| {
            [IamKind::User, IamKind::Role]
                .iter()
                .flat_map(|k| self.iam.records(account, *k))
                .filter(|r| r.document.contains(arn))
                .filter(|r| {
                    let attached: Option<Vec<String>> = match r.kind {
                        IamKind::User => serde_json::from_str::<UserDoc>(&r.document)
                            .ok()
                            .map(|d| d.attached),
                        _ => serde_json::from_str::<RoleDoc>(&r.document)
                            .ok()
                            .map(|d| d.attached),
                    };
                    attached.is_some_and(|a| a.iter().any(|x| x == arn))
                })
                .count()
        };
        self.iam
            .records(account, IamKind::Policy)
            .iter()
            .filter_map(|r| {
                let d: PolicyDoc = serde_json::from_str(&r.document).ok()?;
                let arn = entity_arn(account, IamKind::Policy, &d.path, &r.name);
                Some(PolicyView {
                    name: r.name.clone(),
                    path: d.path,
                    id: d.id,
                    attachments: attachments(&arn),
                    arn,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    description: d.description,
                    document: d.document,
                })
            })
            .collect()
    }

    pub async fn iam_create_policy(
        &self,
        ctx: &RequestCtx,
        name: Option<String>,
        path: Option<String>,
        document: Option<String>,
        description: Option<String>,
    ) -> Result<PolicyView, ApiError> {
        let name = check_name(name, "policyName", 128)?;
        let path = check_path(path)?;
        let document = check_document(document, "policyDocument", Kind::Identity)?;
        let account = self.iam_account(ctx);
        let arn = entity_arn(&account, IamKind::Policy, &path, &name);
        self.iam_check(ctx, "CreatePolicy", &arn)?;
        self.iam.reload().await.map_err(crate::store_err)?;
        let taken = || {
            err(
                ErrorCode::EntityAlreadyExists,
                format!("A policy called {name} already exists. Duplicate names are not allowed."),
            )
        };
        if self.name_taken(&account, IamKind::Policy, &name) {
            return Err(taken());
        }
        let doc = PolicyDoc {
            path,
            id: unique_id("ANPA"),
            document,
            description,
        };
        let rec = self.new_record(account.clone(), IamKind::Policy, name.clone(), &doc)?;
        match self.store.put_iam(&rec, None).await {
            Err(StoreError::NameTaken) => return Err(taken()),
            other => other.map_err(crate::store_err)?,
        }
        self.iam.reload().await.map_err(crate::store_err)?;
        self.policy_views(&account)
            .into_iter()
            .find(|p| p.arn == arn)
            .ok_or_else(ApiError::internal)
    }

    fn policy_not_found(arn: &str) -> ApiError {
        err(
            ErrorCode::NoSuchEntity,
            format!("Policy {arn} was not found."),
        )
    }

    pub async fn iam_get_policy(
        &self,
        ctx: &RequestCtx,
        arn: Option<String>,
    ) -> Result<PolicyView, ApiError> {
        let arn =
            arn.ok_or_else(|| violation(Shown::Null, "policyArn", "Member must not be null"))?;
        self.iam_check(ctx, "GetPolicy", &arn)?;
        if let Some(name) = arn.strip_prefix(AWS_MANAGED_PREFIX) {
            if let Some((_, text)) = AWS_MANAGED.iter().find(|(n, _)| *n == name) {
                return Ok(PolicyView {
                    name: name.to_owned(),
                    path: "/".to_owned(),
                    id: format!("ANPA{}", &crate::authz::stable_id(name)),
                    arn: arn.clone(),
                    created_at: 0,
                    updated_at: 0,
                    attachments: 0,
                    description: None,
                    document: (*text).to_owned(),
                });
            }
        }
        self.iam.reload().await.map_err(crate::store_err)?;
        self.policy_views(&self.iam_account(ctx))
            .into_iter()
            .find(|p| p.arn == arn)
            .ok_or_else(|| Self::policy_not_found(&arn))
    }

    pub async fn iam_list_policies(&self, ctx: &RequestCtx) -> Result<Vec<PolicyView>, ApiError> {
        self.iam_check(ctx, "ListPolicies", "*")?;
        self.iam.reload().await.map_err(crate::store_err)?;
        Ok(self.policy_views(&self.iam_account(ctx)))
    }

    pub async fn iam_delete_policy(
        &self,
        ctx: &RequestCtx,
        arn: Option<String>,
    ) -> Result<(), ApiError> {
        let arn =
            arn.ok_or_else(|| violation(Shown::Null, "policyArn", "Member must not be null"))?;
        self.iam_check(ctx, "DeletePolicy", &arn)?;
        self.iam.reload().await.map_err(crate::store_err)?;
        let account = self.iam_account(ctx);
        let Some(p) = self
            .policy_views(&account)
            .into_iter()
            .find(|p| p.arn == arn)
        else {
            return Err(Self::policy_not_found(&arn));
        };
        if p.attachments > 0 {
            return Err(err(
                ErrorCode::DeleteConflict,
                "Cannot delete a policy attached to entities.",
            ));
        }
        self.delete_entity(&account, IamKind::Policy, &p.name, "policy")
            .await
    }

    /// Whether `arn` names a managed policy a principal of `account` may attach.
    fn attachable(&self, account: &str, arn: &str) -> bool {
        arn.strip_prefix(AWS_MANAGED_PREFIX)
            .is_some_and(|n| AWS_MANAGED.iter().any(|(m, _)| *m == n))
            || self.policy_views(account).iter().any(|p| p.arn == arn)
    }

    pub async fn iam_attach_policy(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
        arn: Option<String>,
    ) -> Result<(), ApiError> {
        let arn =
            arn.ok_or_else(|| violation(Shown::Null, "policyArn", "Member must not be null"))?;
        let action = format!("Attach{}Policy", holder.title());
        let (rec, mut doc) = self.holder_for(ctx, holder, name, &action).await?;
        if !self.attachable(&rec.account, &arn) {
            return Err(err(
                ErrorCode::NoSuchEntity,
                format!("Policy {arn} does not exist or is not attachable."),
            ));
        }
        let held = doc.held();
        if held.attached.contains(&arn) {
            return Ok(());
        }
        held.attached.push(arn);
        self.save_holder(rec, &doc, holder).await
    }

    pub async fn iam_detach_policy(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
        arn: Option<String>,
    ) -> Result<(), ApiError> {
        let arn =
            arn.ok_or_else(|| violation(Shown::Null, "policyArn", "Member must not be null"))?;
        let action = format!("Detach{}Policy", holder.title());
        let (rec, mut doc) = self.holder_for(ctx, holder, name, &action).await?;
        let held = doc.held();
        let before = held.attached.len();
        held.attached.retain(|a| a != &arn);
        if held.attached.len() == before {
            return Err(err(
                ErrorCode::NoSuchEntity,
                format!("Policy {arn} was not found."),
            ));
        }
        self.save_holder(rec, &doc, holder).await
    }

    /// The attached managed policies: (name, ARN).
    pub async fn iam_list_attached(
        &self,
        ctx: &RequestCtx,
        holder: Holder,
        name: Option<String>,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let action = format!("ListAttached{}Policies", holder.title());
        let (_, mut doc) = self.holder_for(ctx, holder, name, &action).await?;
        Ok(doc
            .held()
            .attached
            .iter()
            .map(|a| (a.rsplit('/').next().unwrap_or(a).to_owned(), a.clone()))
            .collect())
    }
}

/// An entity as the config file describes it: applied at start-up, its policies then
/// being exactly the file's (the file owns what it names; other entities are left alone).
#[derive(Debug, Clone)]
pub struct Configured {
    /// The account (default: the deployment's). Other accounts hold principals only.
    pub account: Option<String>,
    pub kind: IamKind,
    pub name: String,
    pub path: Option<String>,
    /// Inline policies by name (users, roles).
    pub inline: BTreeMap<String, String>,
    /// Attached managed policies by ARN (users, roles).
    pub attached: Vec<String>,
    /// The trust policy (roles).
    pub trust: Option<String>,
    pub max_session_secs: Option<i64>,
    /// The policy document (managed policies).
    pub document: Option<String>,
}

impl Arca {
    /// Creates or updates one configured entity in the deployment's account (its id and
    /// creation date are kept when it exists).
    pub async fn iam_configure(&self, c: Configured) -> Result<(), ApiError> {
        let field = match c.kind {
            IamKind::User => "userName",
            IamKind::Role => "roleName",
            IamKind::Policy => "policyName",
        };
        let max = if c.kind == IamKind::Policy { 128 } else { 64 };
        let name = check_name(Some(c.name), field, max)?;
        let path = check_path(c.path)?;
        let account = c.account.unwrap_or_else(|| self.account.clone());
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("{account} is not a 12-digit account id"),
            ));
        }
        for text in c.inline.values() {
            check_document(Some(text.clone()), "policyDocument", Kind::Identity)?;
        }
        self.iam.reload().await.map_err(crate::store_err)?;
        for arn in &c.attached {
            if !self.attachable(&account, arn) {
                return Err(err(
                    ErrorCode::NoSuchEntity,
                    format!("Policy {arn} does not exist or is not attachable."),
                ));
            }
        }
        let existing = self.iam.record(&account, c.kind, &name);
        let old_id = |prefix: &str| {
            existing
                .as_ref()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.document).ok())
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| unique_id(prefix))
        };
        let document = match c.kind {
            IamKind::User => serde_json::to_string(&UserDoc {
                path,
                id: old_id("AIDA"),
                inline: c.inline,
                attached: c.attached,
                tags: BTreeMap::new(),
            }),
            IamKind::Role => {
                let max = c
                    .max_session_secs
                    .unwrap_or(i64::from(DEFAULT_MAX_SESSION_SECS))
                    .clamp(3_600, 43_200);
                serde_json::to_string(&RoleDoc {
                    path,
                    id: old_id("AROA"),
                    trust: check_document(c.trust, "assumeRolePolicyDocument", Kind::Resource)?,
                    description: None,
                    max_session_secs: max as u32,
                    inline: c.inline,
                    attached: c.attached,
                    tags: BTreeMap::new(),
                })
            }
            IamKind::Policy => serde_json::to_string(&PolicyDoc {
                path,
                id: old_id("ANPA"),
                document: check_document(c.document, "policyDocument", Kind::Identity)?,
                description: None,
            }),
        }
        .map_err(|_| ApiError::internal())?;
        let now = self.now();
        let rec = IamRecord {
            account,
            kind: c.kind,
            name,
            document,
            created_at: existing.as_ref().map_or(now, |r| r.created_at),
            updated_at: existing.as_ref().map_or(now, |r| now.max(r.updated_at + 1)),
        };
        let what = match c.kind {
            IamKind::User => "User",
            IamKind::Role => "Role",
            IamKind::Policy => "Policy",
        };
        self.put_entity(rec, existing.as_ref().map(|r| r.updated_at), what)
            .await
    }
}
