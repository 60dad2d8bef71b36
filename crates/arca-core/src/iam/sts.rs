//! STS: temporary credentials for a role (AssumeRole) and who a caller is
//! (GetCallerIdentity). A session token is the session itself, sealed under the root key
//! (as AWS's tokens are opaque sealed blobs): every node of a deployment opens it, and
//! nothing is stored, so a session ends only by expiring or by its role being deleted.

use crate::authz::Identity;
use crate::{Arca, RequestCtx};
use arca_policy::{Principal, PrincipalKind, Value};
use arca_types::secret::SecretString;
use arca_types::{ApiError, ErrorCode};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

const SEAL_PURPOSE: &str = "arca/sts-session/v1";

/// botocore's sts model: DurationSeconds 900..=43200, IAM's default session an hour.
pub const MIN_DURATION_SECS: i64 = 900;
pub const MAX_DURATION_SECS: i64 = 43_200;
pub const DEFAULT_DURATION_SECS: i64 = 3_600;

/// The identities of live sessions by access key id, each with the role entry it was
/// built from: a directory change makes a new entry, and with it a new identity.
#[derive(Default)]
pub(crate) struct SessionIdentities {
    map: std::sync::RwLock<std::collections::HashMap<String, SessionEntry>>,
}

/// A session's identity and the role entry it was built from.
type SessionEntry = (Arc<super::RoleEntry>, Arc<Identity>);

/// Sessions remembered; past this the map starts over.
const SESSIONS_MAX: usize = 10_000;

impl SessionIdentities {
    fn get(&self, key_id: &str, role: &Arc<super::RoleEntry>) -> Option<Arc<Identity>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(key_id)
            .filter(|(r, _)| Arc::ptr_eq(r, role))
            .map(|(_, i)| i.clone())
    }

    fn put(&self, key_id: &str, role: Arc<super::RoleEntry>, identity: Arc<Identity>) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SESSIONS_MAX {
            map.clear();
        }
        map.insert(key_id.to_owned(), (role, identity));
    }
}

/// What a session token holds. Short keys: the token travels on every request.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The session's access key id.
    k: String,
    /// Its secret access key.
    s: String,
    /// The role's account and name.
    a: String,
    r: String,
    /// The role's unique id when the session began: a role deleted and created again
    /// under the same name does not inherit the old role's sessions.
    i: String,
    n: String,
    /// Expiry, seconds since the epoch.
    x: i64,
}

/// An opened session token.
pub struct Session {
    pub access_key_id: String,
    pub secret: SecretString,
    pub account: String,
    pub role: String,
    role_id: String,
    pub session_name: String,
    pub expires_at_secs: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("account", &self.account)
            .field("role", &self.role)
            .field("session_name", &self.session_name)
            .field("expires_at_secs", &self.expires_at_secs)
            .finish_non_exhaustive()
    }
}

/// Why a session token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Not a token this deployment issued for this access key id.
    Unrecognized,
    /// Past its expiry.
    Expired,
}

/// An AssumeRole request, as the Query API or the admin CLI gives it.
#[derive(Debug, Clone, Default)]
pub struct AssumeRoleRequest {
    pub role_arn: Option<String>,
    pub role_session_name: Option<String>,
    pub duration_seconds: Option<i64>,
    pub external_id: Option<String>,
    /// Session policies (Policy, PolicyArns): refused, Arca does not narrow sessions.
    pub session_policy: bool,
}

/// What AssumeRole returns.
pub struct AssumedRole {
    pub assumed_role_id: String,
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    /// Seconds since the epoch.
    pub expiration_secs: i64,
}

/// What GetCallerIdentity returns.
pub struct CallerIdentity {
    pub arn: String,
    pub user_id: String,
    pub account: String,
}

fn validation(value: &str, path: &str, constraint: &str) -> ApiError {
    ApiError::validation(&[arca_types::Violation {
        value: arca_types::Shown::Value(value.to_owned()),
        path: path.to_owned(),
        constraint: constraint.to_owned(),
    }])
}

fn required(path: &str) -> ApiError {
    ApiError::validation(&[arca_types::Violation {
        value: arca_types::Shown::Null,
        path: path.to_owned(),
        constraint: "Member must not be null".to_owned(),
    }])
}

/// `[\w+=,.@-]*` (RoleSessionName, IAM names).
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// The role an ARN names: (account, name), the path dropped.
fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path_name = resource.strip_prefix("role/")?;
    let name = path_name.rsplit('/').next()?;
    (!account.is_empty() && !name.is_empty()).then_some((account, name))
}

impl Arca {
    /// Opens a session token presented with `access_key_id`, at `now_secs`.
    pub fn open_session(
        &self,
        access_key_id: &str,
        token: &str,
        now_secs: i64,
    ) -> Result<Session, SessionError> {
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| SessionError::Unrecognized)?;
        let plain = self
            .keys
            .root()
            .open_blob(SEAL_PURPOSE, &sealed)
            .map_err(|_| SessionError::Unrecognized)?;
        let s: Sealed =
            serde_json::from_slice(plain.expose()).map_err(|_| SessionError::Unrecognized)?;
        let Sealed {
            k,
            s: secret,
            a: account,
            r: role,
            i: role_id,
            n: session_name,
            x: expires_at_secs,
        } = s;
        let secret = Zeroizing::new(secret);
        if k != access_key_id {
            return Err(SessionError::Unrecognized);
        }
        if now_secs >= expires_at_secs {
            return Err(SessionError::Expired);
        }
        Ok(Session {
            access_key_id: k,
            secret: SecretString::new(secret.to_string()),
            account,
            role,
            role_id,
            session_name,
            expires_at_secs,
        })
    }

    /// Who a session acts as: its role's policies, if the role still exists (the same
    /// role: not one created again under its name). One identity per session and role
    /// version, so its decisions are remembered like a user's.
    pub fn session_identity(&self, s: &Session) -> Option<Arc<Identity>> {
        let role = self.iam.role(&s.account, &s.role)?;
        if role.id != s.role_id {
            return None;
        }
        if let Some(id) = self.sessions.get(&s.access_key_id, &role) {
            return Some(id);
        }
        let principal = Principal {
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                s.account, s.role, s.session_name
            ),
            account: s.account.clone(),
            kind: PrincipalKind::RoleSession,
            role_arn: Some(role.arn.clone()),
            name: Some(s.role.clone()),
            userid: format!("{}:{}", role.id, s.session_name),
            tags: role.tags.clone(),
        };
        let identity = Arc::new(Identity::new(principal, role.policies.clone()));
        self.sessions
            .put(&s.access_key_id, role.clone(), identity.clone());
        Some(identity)
    }

    /// STS AssumeRole: the caller must be trusted by the role's trust policy (and, when
    /// the trust policy names only an account, allowed sts:AssumeRole by its own
    /// policies), as IAM evaluates a resource policy.
    pub async fn assume_role(
        &self,
        ctx: &RequestCtx,
        req: AssumeRoleRequest,
    ) -> Result<AssumedRole, ApiError> {
        let arn = req.role_arn.ok_or_else(|| required("roleArn"))?;
        if !(20..=2048).contains(&arn.len()) {
            return Err(validation(
                &arn,
                "roleArn",
                if arn.len() < 20 {
                    "Member must have length greater than or equal to 20"
                } else {
                    "Member must have length less than or equal to 2048"
                },
            ));
        }
        let session_name = req
            .role_session_name
            .ok_or_else(|| required("roleSessionName"))?;
        if !(2..=64).contains(&session_name.len()) {
            return Err(validation(
                &session_name,
                "roleSessionName",
                if session_name.len() < 2 {
                    "Member must have length greater than or equal to 2"
                } else {
                    "Member must have length less than or equal to 64"
                },
            ));
        }
        if !session_name.chars().all(is_name_char) {
            return Err(validation(
                &session_name,
                "roleSessionName",
                "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
            ));
        }
        let duration = req.duration_seconds.unwrap_or(DEFAULT_DURATION_SECS);
        if duration < MIN_DURATION_SECS {
            return Err(validation(
                &duration.to_string(),
                "durationSeconds",
                "Member must have value greater than or equal to 900",
            ));
        }
        if duration > MAX_DURATION_SECS {
            return Err(validation(
                &duration.to_string(),
                "durationSeconds",
                "Member must have value less than or equal to 43200",
            ));
        }
        if let Some(id) = &req.external_id {
            if !(2..=1224).contains(&id.len())
                || !id.chars().all(|c| is_name_char(c) || c == ':' || c == '/')
            {
                return Err(validation(
                    id,
                    "externalId",
                    "Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
                ));
            }
        }
        if req.session_policy {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "Session policies (Policy, PolicyArns) are not supported by Arca: give the \
                 role the narrower permissions instead.",
            ));
        }
        let role = parse_role_arn(&arn).and_then(|(account, name)| self.iam.role(account, name));
        let mut extra = arca_policy::Context::default();
        if let Some(id) = &req.external_id {
            extra.set("sts:ExternalId", Value::Str(id.clone()));
        }
        extra.set("sts:RoleSessionName", Value::Str(session_name.clone()));
        // A role that does not exist is refused as one that does not trust the caller
        // (AWS does not tell them apart).
        let Some(role) = role else {
            return Err(self.refuse(ctx, "sts:AssumeRole", &arn));
        };
        self.authorize_action(
            ctx,
            "sts:AssumeRole",
            &arn,
            &role.account,
            extra,
            Some(&role.trust),
        )?;
        if duration > i64::from(role.max_session_secs) {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        self.mint_session(&role, &session_name, duration)
    }

    /// Credentials of `role` (in `account`) for `ttl_secs`, issued by the service itself
    /// without a trust check: what a rotation command bound to a role runs with, as a
    /// Lambda function runs with its execution role. `None` if the role does not exist.
    pub fn issue_role_session(
        &self,
        account: &str,
        role: &str,
        session_name: &str,
        ttl_secs: i64,
    ) -> Option<AssumedRole> {
        let role = self.iam.role(account, role)?;
        self.mint_session(&role, session_name, ttl_secs).ok()
    }

    fn mint_session(
        &self,
        role: &super::RoleEntry,
        session_name: &str,
        duration: i64,
    ) -> Result<AssumedRole, ApiError> {
        let (id, secret) = crate::access::generate_pair_with_prefix("ASIA");
        let expires = self.clock.now_millis() / 1000 + duration;
        let payload = Zeroizing::new(
            serde_json::to_vec(&Sealed {
                k: id.clone(),
                s: secret.expose().to_owned(),
                a: role.account.clone(),
                r: role.name.clone(),
                i: role.id.clone(),
                n: session_name.to_owned(),
                x: expires,
            })
            .map_err(|_| ApiError::internal())?,
        );
        let sealed = self.keys.root().seal_blob(SEAL_PURPOSE, &payload);
        let token = base64::engine::general_purpose::STANDARD.encode(sealed);
        Ok(AssumedRole {
            assumed_role_id: format!("{}:{session_name}", role.id),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{session_name}",
                role.account, role.name
            ),
            access_key_id: id,
            secret_access_key: secret,
            session_token: SecretString::new(token),
            expiration_secs: expires,
        })
    }

    /// STS GetCallerIdentity: allowed to every authenticated caller, as on AWS.
    pub fn get_caller_identity(&self, ctx: &RequestCtx) -> Result<CallerIdentity, ApiError> {
        let access = ctx.access.as_ref().ok_or_else(ApiError::internal)?;
        access.mark_decided();
        let p = &access.identity.principal;
        Ok(CallerIdentity {
            arn: p.arn.clone(),
            user_id: p.userid.clone(),
            account: p.account.clone(),
        })
    }
}
