//! What every built-in rotator shares: the secret JSON (`SecretDoc`, wiped on drop), the
//! reads of a secret version through `SecretsApi`, the `_clone` toggle, and the error
//! summaries. Nothing here ever formats a password or a secret value into a message.

use crate::api::SecretsApi;
use crate::event::InvokeError;
use arca_types::secret::SecretString;
use arca_types::{ApiError, ErrorCode};
use serde_json::{Map, Value};
use zeroize::Zeroize;

pub(crate) const AWSCURRENT: &str = "AWSCURRENT";
pub(crate) const AWSPENDING: &str = "AWSPENDING";
pub(crate) const AWSPREVIOUS: &str = "AWSPREVIOUS";

pub(crate) const CLONE_SUFFIX: &str = "_clone";

/// A Secrets Manager error, as a rotation step reports it: the AWS error name and the
/// service's message (which never carries secret material).
pub(crate) fn api_err(what: &str, e: ApiError) -> InvokeError {
    InvokeError::new(format!("{what}: {}: {}", e.code.aws_type(), e.message))
}

pub(crate) fn is_not_found(e: &ApiError) -> bool {
    e.code == ErrorCode::ResourceNotFound
}

/// The database engines a secret's `engine` field may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    fn accepts(self, engine: &str) -> bool {
        match self {
            Engine::Postgres => matches!(engine, "postgres" | "postgresql" | "aurora-postgresql"),
            Engine::Mysql => matches!(engine, "mysql" | "mariadb" | "aurora-mysql" | "aurora"),
        }
    }

    pub(crate) fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        }
    }

    /// The longest user name the server takes (PostgreSQL NAMEDATALEN-1; MySQL 8 and
    /// MariaDB allow 32 in mysql.user on MySQL, 80 on MariaDB: take the smaller).
    pub(crate) fn max_username(self) -> usize {
        match self {
            Engine::Postgres => 63,
            Engine::Mysql => 32,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }
}

/// A secret's SecretString parsed as a JSON object. Every string in it is wiped when it
/// is dropped, so passwords do not linger in freed memory longer than needed.
pub(crate) struct SecretDoc {
    pub(crate) map: Map<String, Value>,
}

impl Drop for SecretDoc {
    fn drop(&mut self) {
        fn wipe(v: &mut Value) {
            match v {
                Value::String(s) => s.zeroize(),
                Value::Array(a) => a.iter_mut().for_each(wipe),
                Value::Object(o) => o.values_mut().for_each(wipe),
                _ => {}
            }
        }
        self.map.values_mut().for_each(wipe);
    }
}

impl SecretDoc {
    /// `None` when the value is not a JSON object (the generic rotator then replaces the
    /// whole string). The parse error is dropped: it may quote the value.
    pub(crate) fn parse(value: &SecretString) -> Option<SecretDoc> {
        match serde_json::from_str::<Value>(value.expose()) {
            Ok(Value::Object(map)) => Some(SecretDoc { map }),
            Ok(mut other) => {
                if let Value::String(s) = &mut other {
                    s.zeroize();
                }
                None
            }
            Err(_) => None,
        }
    }

    pub(crate) fn str_field(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    pub(crate) fn set_str(&mut self, key: &str, value: &str) {
        if let Some(Value::String(old)) = self.map.get_mut(key) {
            old.zeroize();
        }
        self.map
            .insert(key.to_owned(), Value::String(value.to_owned()));
    }

    pub(crate) fn to_secret(&self) -> SecretString {
        // Serializing a map of JSON values cannot fail.
        SecretString::new(serde_json::to_string(&self.map).unwrap_or_default())
    }
}

/// The connection details of a database secret, checked against the rotator's engine.
pub(crate) struct DbSecret {
    pub(crate) doc: SecretDoc,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: String,
    pub(crate) dbname: Option<String>,
}

impl DbSecret {
    /// `label` names the version in errors ("AWSCURRENT", "master secret", ...).
    pub(crate) fn from_value(
        value: &SecretString,
        engine: Engine,
        label: &str,
    ) -> Result<DbSecret, InvokeError> {
        let doc = SecretDoc::parse(value).ok_or_else(|| {
            InvokeError::new(format!("the {label} secret value is not a JSON object"))
        })?;
        let field = |k: &str| -> Result<String, InvokeError> {
            doc.str_field(k).map(str::to_owned).ok_or_else(|| {
                InvokeError::new(format!("the {label} secret JSON has no string field {k:?}"))
            })
        };
        let eng = field("engine")?;
        if !engine.accepts(&eng) {
            return Err(InvokeError::new(format!(
                "the {label} secret's engine {eng:?} is not one this rotator handles ({})",
                engine.name()
            )));
        }
        let host = field("host")?;
        let username = field("username")?;
        if doc.str_field("password").is_none() {
            return Err(InvokeError::new(format!(
                "the {label} secret JSON has no string field \"password\""
            )));
        }
        let port = match doc.map.get("port") {
            None | Some(Value::Null) => engine.default_port(),
            Some(Value::Number(n)) => {
                n.as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| {
                        InvokeError::new(format!("the {label} secret's port is not a TCP port"))
                    })?
            }
            Some(Value::String(s)) => s.trim().parse().map_err(|_| {
                InvokeError::new(format!("the {label} secret's port is not a TCP port"))
            })?,
            Some(_) => {
                return Err(InvokeError::new(format!(
                    "the {label} secret's port is not a TCP port"
                )))
            }
        };
        let dbname = doc.str_field("dbname").map(str::to_owned);
        Ok(DbSecret {
            doc,
            host,
            port,
            username,
            dbname,
        })
    }

    pub(crate) fn password(&self) -> &str {
        self.doc.str_field("password").unwrap_or_default()
    }

    pub(crate) fn masterarn(&self) -> Option<&str> {
        self.doc.str_field("masterarn")
    }
}

/// The other user of an alternating pair: `user` <-> `user_clone`.
pub(crate) fn alt_username(username: &str, engine: Engine) -> Result<String, InvokeError> {
    if let Some(base) = username.strip_suffix(CLONE_SUFFIX) {
        if !base.is_empty() {
            return Ok(base.to_owned());
        }
    }
    let clone = format!("{username}{CLONE_SUFFIX}");
    if clone.chars().count() > engine.max_username() {
        return Err(InvokeError::new(format!(
            "the user name {username:?} is too long to add the {CLONE_SUFFIX:?} suffix ({} characters at most)",
            engine.max_username()
        )));
    }
    Ok(clone)
}

/// GetSecretValue by stage (and version), `None` when that version or label is absent.
pub(crate) async fn get_value(
    api: &dyn SecretsApi,
    secret_id: &str,
    version_id: Option<&str>,
    stage: &str,
) -> Result<Option<SecretString>, InvokeError> {
    match api.get_secret_value(secret_id, version_id, Some(stage)).await {
        Ok(r) => match r.secret_string {
            Some(s) => Ok(Some(s)),
            None => Err(InvokeError::new(format!(
                "the {stage} version holds SecretBinary; built-in rotators rotate SecretString values"
            ))),
        },
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api_err(&format!("GetSecretValue ({stage})"), e)),
    }
}

/// Like `get_value`, but a missing version is an error.
pub(crate) async fn must_get_value(
    api: &dyn SecretsApi,
    secret_id: &str,
    version_id: Option<&str>,
    stage: &str,
) -> Result<SecretString, InvokeError> {
    get_value(api, secret_id, version_id, stage)
        .await?
        .ok_or_else(|| InvokeError::new(format!("the secret has no {stage} version")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_suffix_toggles() {
        assert_eq!(alt_username("app", Engine::Postgres).unwrap(), "app_clone");
        assert_eq!(alt_username("app_clone", Engine::Postgres).unwrap(), "app");
        assert_eq!(
            alt_username("_clone", Engine::Postgres).unwrap(),
            "_clone_clone"
        );
        assert!(alt_username(&"x".repeat(30), Engine::Mysql).is_err());
    }

    #[test]
    fn db_secret_checks_engine_and_reads_port_as_number_or_string() {
        let v = SecretString::new(
            r#"{"engine":"mariadb","host":"h","port":"3307","username":"u","password":"p"}"#.into(),
        );
        let s = DbSecret::from_value(&v, Engine::Mysql, "AWSCURRENT").unwrap();
        assert_eq!((s.port, s.password()), (3307, "p"));
        let e = DbSecret::from_value(&v, Engine::Postgres, "AWSCURRENT")
            .err()
            .unwrap();
        assert!(e.message.contains("engine"));
    }

    #[test]
    fn parse_errors_never_quote_the_value() {
        let v = SecretString::new(r#"{"engine":"postgres","host":"h","password":"hunter2""#.into());
        let e = DbSecret::from_value(&v, Engine::Postgres, "AWSCURRENT")
            .err()
            .unwrap();
        assert!(!e.message.contains("hunter2"));
        let v =
            SecretString::new(r#"{"engine":"postgres","host":"h","password":"hunter2"}"#.into());
        let e = DbSecret::from_value(&v, Engine::Postgres, "AWSCURRENT")
            .err()
            .unwrap();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
