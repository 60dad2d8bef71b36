//! Built-in rotators: rotation functions with no code for the user to write. They follow
//! AWS's published rotation templates (SecretsManagerRDS{PostgreSQL,MySQL}Rotation
//! {SingleUser,MultiUser}) step by step, and talk to Secrets Manager only through
//! `SecretsApi`, as a Lambda does through boto3.
//!
//! Flow of one invocation: the entry checks (the token is a version of the secret; already
//! AWSCURRENT means nothing to do; otherwise it must be AWSPENDING), then the step:
//! - createSecret: a copy of AWSCURRENT with a new random password (and, alternating, the
//!   other user of the `user` / `user_clone` pair) is put as AWSPENDING under the token;
//! - setSecret: the confused-deputy guards (same host and port, and the same user or its
//!   clone), then the password is set in the database: single user by logging in as the
//!   user (with AWSCURRENT, else AWSPREVIOUS), alternating users as the master user named
//!   by `masterarn`;
//! - testSecret: log in with AWSPENDING and run a query;
//! - finishSecret: AWSCURRENT moves to the token's version.
//!
//! Every step first looks at whether its work is already done, so running it again, after
//! a success or after a crash half-way, is harmless. Error messages never carry secret
//! values or passwords; database errors are reduced to their codes.

mod generic;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod shared;

use crate::api::SecretsApi;
use crate::event::{InvokeError, Invoker, RotationEvent, Step};
use arca_types::wire::GetRandomPasswordRequest;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shared::{
    alt_username, api_err, get_value, must_get_value, DbSecret, Engine, AWSCURRENT, AWSPENDING,
    AWSPREVIOUS,
};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Characters AWS's database rotation templates exclude from generated passwords: they
/// break connection strings and shell quoting.
pub const DB_EXCLUDE_CHARACTERS: &str = ":/@\"'\\";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A step that talks to a database gives up after this long.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Which built-in rotator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuiltinKind {
    #[serde(rename = "generic")]
    Generic,
    #[serde(rename = "postgres-single-user")]
    PostgresSingleUser,
    #[serde(rename = "postgres-alternating-users")]
    PostgresAlternatingUsers,
    #[serde(rename = "mysql-single-user")]
    MysqlSingleUser,
    #[serde(rename = "mysql-alternating-users")]
    MysqlAlternatingUsers,
}

impl BuiltinKind {
    pub const ALL: [BuiltinKind; 5] = [
        BuiltinKind::Generic,
        BuiltinKind::PostgresSingleUser,
        BuiltinKind::PostgresAlternatingUsers,
        BuiltinKind::MysqlSingleUser,
        BuiltinKind::MysqlAlternatingUsers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinKind::Generic => "generic",
            BuiltinKind::PostgresSingleUser => "postgres-single-user",
            BuiltinKind::PostgresAlternatingUsers => "postgres-alternating-users",
            BuiltinKind::MysqlSingleUser => "mysql-single-user",
            BuiltinKind::MysqlAlternatingUsers => "mysql-alternating-users",
        }
    }

    fn engine(self) -> Option<Engine> {
        match self {
            BuiltinKind::Generic => None,
            BuiltinKind::PostgresSingleUser | BuiltinKind::PostgresAlternatingUsers => {
                Some(Engine::Postgres)
            }
            BuiltinKind::MysqlSingleUser | BuiltinKind::MysqlAlternatingUsers => {
                Some(Engine::Mysql)
            }
        }
    }

    fn alternating(self) -> bool {
        matches!(
            self,
            BuiltinKind::PostgresAlternatingUsers | BuiltinKind::MysqlAlternatingUsers
        )
    }
}

impl fmt::Display for BuiltinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind named `s` (`generic`, `postgres-single-user`, `postgres-alternating-users`,
/// `mysql-single-user`, `mysql-alternating-users`).
pub fn parse_kind(s: &str) -> Result<BuiltinKind, InvokeError> {
    BuiltinKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            InvokeError::new(format!(
                "unknown built-in rotator {s:?}; expected one of generic, postgres-single-user, postgres-alternating-users, mysql-single-user, mysql-alternating-users"
            ))
        })
}

impl std::str::FromStr for BuiltinKind {
    type Err = InvokeError;
    fn from_str(s: &str) -> Result<Self, InvokeError> {
        parse_kind(s)
    }
}

/// A built-in rotator as configuration and the admin CLI carry it:
/// `{"kind": "postgres-alternating-users", "options": {"password_length": 40}}`
/// (the `kind` and `options` of a `FunctionSpec::Builtin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSpec {
    pub kind: BuiltinKind,
    #[serde(default)]
    pub options: BuiltinSettings,
}

/// The tunable parts of a built-in rotator. Unset fields take the defaults of
/// `BuiltinOptions::for_kind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_length: Option<i64>,
    /// Replaces the default (`:/@"'\` for databases, none for `generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_characters: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_punctuation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_each_included_type: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_secs: Option<u64>,
}

impl BuiltinSpec {
    pub fn new(kind: BuiltinKind) -> Self {
        Self {
            kind,
            options: BuiltinSettings::default(),
        }
    }

    /// From a `FunctionSpec::Builtin`'s `kind` and `options` (JSON null: defaults).
    pub fn from_parts(kind: &str, options: &serde_json::Value) -> Result<Self, InvokeError> {
        let kind = parse_kind(kind)?;
        let options = if options.is_null() {
            BuiltinSettings::default()
        } else {
            serde_json::from_value(options.clone()).map_err(|e| {
                InvokeError::new(format!("invalid options for built-in rotator {kind}: {e}"))
            })?
        };
        Ok(Self { kind, options })
    }

    pub fn options(&self) -> BuiltinOptions {
        let s = &self.options;
        let mut o = BuiltinOptions::for_kind(self.kind);
        if s.password_length.is_some() {
            o.password.password_length = s.password_length;
        }
        if s.exclude_characters.is_some() {
            o.password.exclude_characters = s.exclude_characters.clone();
        }
        if s.exclude_punctuation.is_some() {
            o.password.exclude_punctuation = s.exclude_punctuation;
        }
        if s.require_each_included_type.is_some() {
            o.password.require_each_included_type = s.require_each_included_type;
        }
        if let Some(secs) = s.connect_timeout_secs {
            o.connect_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = s.step_timeout_secs {
            o.step_timeout = Duration::from_secs(secs.max(1));
        }
        o
    }
}

/// The invoker for a `FunctionSpec::Builtin { kind, options }`.
pub fn from_spec(
    kind: &str,
    options: &serde_json::Value,
    api: Arc<dyn SecretsApi>,
) -> Result<Arc<dyn Invoker>, InvokeError> {
    let spec = BuiltinSpec::from_parts(kind, options)?;
    Ok(Arc::new(BuiltinRotator::from_spec(&spec, api)))
}

/// How a built-in rotator makes passwords and how long it waits for a database.
#[derive(Debug, Clone)]
pub struct BuiltinOptions {
    /// The GetRandomPassword rules for new passwords.
    pub password: GetRandomPasswordRequest,
    pub connect_timeout: Duration,
    pub step_timeout: Duration,
}

impl BuiltinOptions {
    /// AWS's template defaults: GetRandomPassword's defaults (32 characters), and for
    /// databases ExcludeCharacters `:/@"'\`.
    pub fn for_kind(kind: BuiltinKind) -> Self {
        let mut password = GetRandomPasswordRequest::default();
        if kind.engine().is_some() {
            password.exclude_characters = Some(DB_EXCLUDE_CHARACTERS.to_owned());
        }
        Self {
            password,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            step_timeout: DEFAULT_STEP_TIMEOUT,
        }
    }
}

/// A built-in rotation function: an `Invoker` that runs the four steps in-process.
pub struct BuiltinRotator {
    kind: BuiltinKind,
    api: Arc<dyn SecretsApi>,
    options: BuiltinOptions,
}

impl BuiltinRotator {
    pub fn new(kind: BuiltinKind, api: Arc<dyn SecretsApi>, options: BuiltinOptions) -> Self {
        Self { kind, api, options }
    }

    pub fn from_spec(spec: &BuiltinSpec, api: Arc<dyn SecretsApi>) -> Self {
        Self::new(spec.kind, api, spec.options())
    }

    pub fn kind(&self) -> BuiltinKind {
        self.kind
    }

    /// The lambda_handler entry checks. `Ok(false)`: the token is already AWSCURRENT,
    /// nothing to do.
    async fn entry_checks(&self, event: &RotationEvent) -> Result<bool, InvokeError> {
        let meta = self
            .api
            .describe_secret(&event.secret_id)
            .await
            .map_err(|e| api_err("DescribeSecret", e))?;
        let versions = meta.version_ids_to_stages.unwrap_or_default();
        let token = &event.client_request_token;
        match versions.get(token) {
            Some(stages) if stages.iter().any(|s| s == AWSCURRENT) => Ok(false),
            Some(stages) if stages.iter().any(|s| s == AWSPENDING) => Ok(true),
            Some(_) => Err(InvokeError::new(format!(
                "secret version {token} is not AWSPENDING for this rotation"
            ))),
            // AWS's RotateSecret stages the token before createSecret runs; when the
            // caller has not, createSecret makes the version itself.
            None if event.step == Step::CreateSecret => Ok(true),
            None => Err(InvokeError::new(format!(
                "secret version {token} has no stage for rotation of this secret"
            ))),
        }
    }

    async fn create_secret(&self, event: &RotationEvent) -> Result<(), InvokeError> {
        let id = &event.secret_id;
        let current = must_get_value(&*self.api, id, None, AWSCURRENT).await?;
        let token = &event.client_request_token;
        if get_value(&*self.api, id, Some(token), AWSPENDING)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let password = self
            .api
            .get_random_password(self.options.password.clone())
            .await
            .map_err(|e| api_err("GetRandomPassword", e))?;
        let value = match self.kind.engine() {
            None => generic::new_value(&current, &password),
            Some(engine) => {
                let mut cur = DbSecret::from_value(&current, engine, AWSCURRENT)?;
                if self.kind.alternating() {
                    let alt = alt_username(&cur.username, engine)?;
                    cur.doc.set_str("username", &alt);
                }
                cur.doc.set_str("password", password.expose());
                cur.doc.to_secret()
            }
        };
        self.api
            .put_secret_value(id, token, value, vec![AWSPENDING.to_owned()])
            .await
            .map_err(|e| api_err("PutSecretValue (AWSPENDING)", e))
    }

    async fn set_secret(&self, event: &RotationEvent, engine: Engine) -> Result<(), InvokeError> {
        let id = &event.secret_id;
        let token = &event.client_request_token;
        let current = DbSecret::from_value(
            &must_get_value(&*self.api, id, None, AWSCURRENT).await?,
            engine,
            AWSCURRENT,
        )?;
        let pending = DbSecret::from_value(
            &must_get_value(&*self.api, id, Some(token), AWSPENDING).await?,
            engine,
            AWSPENDING,
        )?;

        // Confused-deputy guards, before any login: the pending secret must name the same
        // server, and the same user (single) or its pair (alternating).
        if pending.host != current.host || pending.port != current.port {
            return Err(InvokeError::new(
                "setSecret: the AWSPENDING secret names a different database host or port than AWSCURRENT; refusing to modify it",
            ));
        }
        let expected_user = if self.kind.alternating() {
            alt_username(&current.username, engine)?
        } else {
            current.username.clone()
        };
        if pending.username != expected_user {
            return Err(InvokeError::new(format!(
                "setSecret: the AWSPENDING secret names user {:?}, not {:?}; refusing to modify it",
                pending.username, expected_user
            )));
        }

        // Already done (a re-run, or a crash after the password was set)?
        if self.login_ok(engine, &pending).await.is_ok() {
            tracing::info!(secret = %id, "setSecret: AWSPENDING already logs in");
            return Ok(());
        }

        if self.kind.alternating() {
            self.set_alternating(engine, id, &current, &pending).await
        } else {
            self.set_single(engine, id, &current, &pending).await
        }
    }

    /// Single user: log in as the user with AWSCURRENT, else AWSPREVIOUS (a crash after
    /// finishSecret moved the label, or a rotation that changed the password and failed
    /// before finishSecret), and set the AWSPENDING password.
    async fn set_single(
        &self,
        engine: Engine,
        id: &str,
        current: &DbSecret,
        pending: &DbSecret,
    ) -> Result<(), InvokeError> {
        let t = self.options.connect_timeout;
        let mut reasons = Vec::new();
        let mut candidates = vec![(AWSCURRENT, None)];
        if let Some(prev) = get_value(&*self.api, id, None, AWSPREVIOUS).await? {
            let prev = DbSecret::from_value(&prev, engine, AWSPREVIOUS)?;
            // The previous version is only tried for the same server and user.
            if prev.host == current.host
                && prev.port == current.port
                && prev.username == current.username
            {
                candidates.push((AWSPREVIOUS, Some(prev)));
            }
        }
        for (label, secret) in &candidates {
            let secret = secret.as_ref().unwrap_or(current);
            let result = match engine {
                Engine::Postgres => match postgres::connect(secret, t).await {
                    Ok(client) => {
                        postgres::set_password(&client, &pending.username, pending.password()).await
                    }
                    Err(e) => {
                        reasons.push(format!("{label}: {e}"));
                        continue;
                    }
                },
                Engine::Mysql => match mysql::connect(secret, t).await {
                    Ok(mut conn) => {
                        let r = mysql::set_own_password(&mut conn, pending.password()).await;
                        mysql::close(conn).await;
                        r
                    }
                    Err(e) => {
                        reasons.push(format!("{label}: {e}"));
                        continue;
                    }
                },
            };
            return result.map_err(|e| {
                InvokeError::new(format!(
                    "setSecret: setting the new password (logged in with {label}): {e}"
                ))
            });
        }
        Err(InvokeError::new(format!(
            "setSecret: unable to log into the database with the current or previous credentials ({})",
            reasons.join("; ")
        )))
    }

    /// Alternating users: AWSCURRENT must log in (so the rotator is not tricked into
    /// acting for credentials nobody holds), then the master user sets the other user.
    async fn set_alternating(
        &self,
        engine: Engine,
        id: &str,
        current: &DbSecret,
        pending: &DbSecret,
    ) -> Result<(), InvokeError> {
        let t = self.options.connect_timeout;
        self.login_ok(engine, current).await.map_err(|e| {
            InvokeError::new(format!(
                "setSecret: unable to log into the database with the current credentials ({e})"
            ))
        })?;
        let master_arn = current.masterarn().ok_or_else(|| {
            InvokeError::new("setSecret: the AWSCURRENT secret JSON has no \"masterarn\"")
        })?;
        let mut master = DbSecret::from_value(
            &must_get_value(&*self.api, master_arn, None, AWSCURRENT)
                .await
                .map_err(|e| InvokeError::new(format!("master secret: {}", e.message)))?,
            engine,
            "master",
        )?;
        if master.host != current.host || master.port != current.port {
            return Err(InvokeError::new(
                "setSecret: the master secret names a different database host or port than AWSCURRENT",
            ));
        }
        if master.username == current.username || master.username == pending.username {
            return Err(InvokeError::new(
                "setSecret: the master secret names the user being rotated",
            ));
        }
        // The master logs into the user's database, as the templates do.
        master.dbname = current.dbname.clone();
        let result = match engine {
            Engine::Postgres => {
                let mut client = postgres::connect(&master, t).await.map_err(|e| {
                    InvokeError::new(format!(
                        "setSecret: unable to log into the database with the master credentials ({e})"
                    ))
                })?;
                postgres::upsert_clone(
                    &mut client,
                    &current.username,
                    &pending.username,
                    pending.password(),
                )
                .await
            }
            Engine::Mysql => {
                let mut conn = mysql::connect(&master, t).await.map_err(|e| {
                    InvokeError::new(format!(
                        "setSecret: unable to log into the database with the master credentials ({e})"
                    ))
                })?;
                let r = mysql::upsert_clone(
                    &mut conn,
                    &current.username,
                    &pending.username,
                    pending.password(),
                )
                .await;
                mysql::close(conn).await;
                r
            }
        };
        result.map_err(|e| {
            InvokeError::new(format!(
                "setSecret: setting user {:?} as the master user: {e}",
                pending.username
            ))
        })?;
        tracing::info!(secret = %id, user = %pending.username, "setSecret: password set");
        Ok(())
    }

    /// Logs in with `secret` and runs the engine's check query.
    async fn login_ok(&self, engine: Engine, secret: &DbSecret) -> Result<(), String> {
        let t = self.options.connect_timeout;
        match engine {
            Engine::Postgres => {
                let client = postgres::connect(secret, t).await?;
                postgres::check(&client).await
            }
            Engine::Mysql => {
                let mut conn = mysql::connect(secret, t).await?;
                let r = mysql::check(&mut conn).await;
                mysql::close(conn).await;
                r
            }
        }
    }

    async fn test_secret(&self, event: &RotationEvent, engine: Engine) -> Result<(), InvokeError> {
        let pending = DbSecret::from_value(
            &must_get_value(
                &*self.api,
                &event.secret_id,
                Some(&event.client_request_token),
                AWSPENDING,
            )
            .await?,
            engine,
            AWSPENDING,
        )?;
        self.login_ok(engine, &pending).await.map_err(|e| {
            InvokeError::new(format!(
                "testSecret: unable to log into the database with the pending credentials ({e})"
            ))
        })
    }

    async fn finish_secret(&self, event: &RotationEvent) -> Result<(), InvokeError> {
        let id = &event.secret_id;
        let token = &event.client_request_token;
        let meta = self
            .api
            .describe_secret(id)
            .await
            .map_err(|e| api_err("DescribeSecret", e))?;
        let versions = meta.version_ids_to_stages.unwrap_or_default();
        let current = versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
            .map(|(v, _)| v.clone());
        if current.as_deref() == Some(token.as_str()) {
            return Ok(());
        }
        self.api
            .update_secret_version_stage(id, AWSCURRENT, Some(token), current.as_deref())
            .await
            .map_err(|e| api_err("UpdateSecretVersionStage (AWSCURRENT)", e))?;
        tracing::info!(secret = %id, version = %token, "finishSecret: AWSCURRENT moved");
        Ok(())
    }

    async fn run_step(&self, event: &RotationEvent) -> Result<(), InvokeError> {
        if !self.entry_checks(event).await? {
            return Ok(());
        }
        match (event.step, self.kind.engine()) {
            (Step::CreateSecret, _) => self.create_secret(event).await,
            // The generic rotator has no system to update.
            (Step::SetSecret | Step::TestSecret, None) => Ok(()),
            (Step::SetSecret, Some(engine)) => self.set_secret(event, engine).await,
            (Step::TestSecret, Some(engine)) => self.test_secret(event, engine).await,
            (Step::FinishSecret, _) => self.finish_secret(event).await,
        }
    }
}

#[async_trait]
impl Invoker for BuiltinRotator {
    async fn invoke(&self, event: &RotationEvent) -> Result<(), InvokeError> {
        match tokio::time::timeout(self.options.step_timeout, self.run_step(event)).await {
            Ok(r) => r,
            Err(_) => Err(InvokeError::new(format!(
                "{}: timed out after {}s",
                event.step.as_str(),
                self.options.step_timeout.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        for k in BuiltinKind::ALL {
            assert_eq!(parse_kind(k.as_str()).unwrap(), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        assert!(parse_kind("postgres").is_err());
    }

    #[test]
    fn spec_defaults_and_overrides() {
        let s: BuiltinSpec = serde_json::from_str(
            r#"{"kind":"mysql-single-user","options":{"password_length":40}}"#,
        )
        .unwrap();
        let o = s.options();
        assert_eq!(o.password.password_length, Some(40));
        assert_eq!(
            o.password.exclude_characters.as_deref(),
            Some(DB_EXCLUDE_CHARACTERS)
        );
        assert_eq!(o.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let g = BuiltinSpec::new(BuiltinKind::Generic).options();
        assert_eq!(g.password.exclude_characters, None);
        assert!(serde_json::from_str::<BuiltinSpec>(r#"{"kind":"generic","x":1}"#).is_err());
        assert!(BuiltinSpec::from_parts("generic", &serde_json::json!({"y": 1})).is_err());
        let d = BuiltinSpec::from_parts("generic", &serde_json::Value::Null).unwrap();
        assert_eq!(d, BuiltinSpec::new(BuiltinKind::Generic));
        assert!(serde_json::from_str::<BuiltinSpec>(r#"{"kind":"oracle"}"#).is_err());
    }
}
