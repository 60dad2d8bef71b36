//! Rotation-function bindings: which ARN (`arn:aws:lambda:<region>:<account>:function:<name>`)
//! runs as which invoker. The operator binds them in the config file or with
//! `arca rotation-function add`; they live in the store (an HTTP function's signing secret
//! sealed under the root key), so every server process sees the same bindings.

use crate::api::CoreSecretsApi;
use crate::command::{CommandInvoker, LocalEndpoint};
use crate::event::{InvokeError, Invoker};
use crate::http::HttpInvoker;
use arca_core::access::AccessKeys;
use arca_core::Arca;
use arca_core::KeyService;
use arca_core::SecretScope;
use arca_crypto::RootKey;
use arca_store::{RotationFunctionRecord, Store};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Purpose string binding sealed HTTP signing secrets to their use.
pub const HMAC_SEAL_PURPOSE: &str = "arca/rotation-function-hmac/v1";
const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// What a function ARN is bound to (the `spec` JSON of its record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FunctionSpec {
    /// POST the event to `url`, HMAC-signed with the function's sealed secret.
    Http {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
    },
    /// Run `argv` with the event on stdin and scoped credentials in the environment:
    /// a session of `role` (an IAM role of the function's account, as a Lambda
    /// function's execution role), or without one, a key limited to the secret.
    Command {
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// One of Arca's built-in rotators.
    Builtin {
        kind: String,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        options: serde_json::Value,
    },
}

pub use arca_types::arn::valid_function_arn;

/// Finds the invoker for a function ARN. The scheduler depends on this seam only.
#[async_trait]
pub trait InvokerSource: Send + Sync {
    async fn invoker_for(&self, function_arn: &str) -> Result<Arc<dyn Invoker>, InvokeError>;
}

/// Builds invokers from the stored bindings.
pub struct Registry {
    store: Arc<dyn Store>,
    keys: Arc<KeyService>,
    arca: Arc<Arca>,
    access_keys: Arc<AccessKeys>,
    /// Where local commands reach Arca (`AWS_ENDPOINT_URL`, `AWS_CA_BUNDLE`).
    endpoint: LocalEndpoint,
}

impl Registry {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyService>,
        arca: Arc<Arca>,
        access_keys: Arc<AccessKeys>,
        endpoint: LocalEndpoint,
    ) -> Self {
        Self {
            store,
            keys,
            arca,
            access_keys,
            endpoint,
        }
    }
}

impl Registry {
    /// The binding of `function_arn`, decoded.
    async fn binding(
        &self,
        function_arn: &str,
    ) -> Result<(RotationFunctionRecord, FunctionSpec), InvokeError> {
        let records = self
            .store
            .list_rotation_functions()
            .await
            .map_err(|_| InvokeError::new("cannot read rotation-function bindings"))?;
        let rec = records
            .into_iter()
            .find(|r| r.arn == function_arn)
            .ok_or_else(|| {
                InvokeError::new(format!("no rotation function is bound to {function_arn}"))
            })?;
        let spec: FunctionSpec = serde_json::from_value(rec.spec.clone())
            .map_err(|_| InvokeError::new(format!("the binding of {function_arn} is malformed")))?;
        Ok((rec, spec))
    }

    fn http(
        &self,
        function_arn: &str,
        rec: &RotationFunctionRecord,
        url: &str,
        timeout_secs: Option<u64>,
    ) -> Result<HttpInvoker, InvokeError> {
        let sealed = rec
            .sealed_secret
            .as_ref()
            .ok_or_else(|| InvokeError::new("the HTTP function has no signing secret"))?;
        let secret = self
            .keys
            .root()
            .open_blob(HMAC_SEAL_PURPOSE, sealed)
            .map_err(|_| InvokeError::new("the HTTP function's signing secret cannot be opened"))?;
        HttpInvoker::new(
            function_arn,
            url,
            secret,
            Duration::from_secs(timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)),
        )
    }

    fn command(
        &self,
        function_arn: &str,
        argv: Vec<String>,
        timeout_secs: Option<u64>,
        role: Option<String>,
    ) -> Result<CommandInvoker, InvokeError> {
        let invoker = CommandInvoker::new(
            argv,
            Duration::from_secs(timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)),
            self.endpoint.clone(),
            self.access_keys.clone(),
        )?;
        Ok(match role {
            None => invoker,
            Some(role) => {
                // arn:aws:lambda:REGION:ACCOUNT:function:NAME
                let mut parts = function_arn.split(':');
                let account = parts.nth(4).unwrap_or_default().to_owned();
                let name = function_arn.rsplit(':').next().unwrap_or("rotation");
                invoker.with_role(crate::command::RoleBinding {
                    arca: self.arca.clone(),
                    account,
                    role,
                    session_name: name.chars().take(64).collect(),
                })
            }
        })
    }

    /// Delivers an event to the function bound to `function_arn`: a webhook gets it
    /// POSTed and signed as a rotation step is, with the delivery's idempotency key in
    /// `X-Arca-Delivery-Id`; a command gets it on stdin, with credentials for the
    /// secrets named `secret_name` (in every region) when the event is about a secret,
    /// else none that can touch a secret.
    pub async fn deliver_event(
        &self,
        function_arn: &str,
        body: Vec<u8>,
        idempotency_key: &str,
        region: &str,
        secret_name: Option<&str>,
    ) -> Result<(), InvokeError> {
        let (rec, spec) = self.binding(function_arn).await?;
        match spec {
            FunctionSpec::Http { url, timeout_secs } => {
                self.http(function_arn, &rec, &url, timeout_secs)?
                    .post(
                        body,
                        &[(crate::http::DELIVERY_HEADER, idempotency_key)],
                        "event delivery",
                    )
                    .await
            }
            FunctionSpec::Command {
                argv,
                timeout_secs,
                role,
            } => {
                // A key scoped to a name no secret can have, when the event names none.
                let scope = SecretScope::Name(secret_name.unwrap_or("\0").to_owned());
                self.command(function_arn, argv, timeout_secs, role)?
                    .run(&body, region, scope, "event delivery")
                    .await
            }
            FunctionSpec::Builtin { .. } => Err(InvokeError::new(format!(
                "{function_arn} is bound to a built-in rotator, which takes rotation steps, not events"
            ))),
        }
    }
}

#[async_trait]
impl InvokerSource for Registry {
    async fn invoker_for(&self, function_arn: &str) -> Result<Arc<dyn Invoker>, InvokeError> {
        let (rec, spec) = self.binding(function_arn).await?;
        Ok(match spec {
            FunctionSpec::Http { url, timeout_secs } => {
                Arc::new(self.http(function_arn, &rec, &url, timeout_secs)?)
            }
            FunctionSpec::Command {
                argv,
                timeout_secs,
                role,
            } => Arc::new(self.command(function_arn, argv, timeout_secs, role)?),
            FunctionSpec::Builtin { kind, options } => crate::builtin::from_spec(
                &kind,
                &options,
                Arc::new(CoreSecretsApi::new(self.arca.clone())),
            )?,
        })
    }
}

/// A binding ready to store: validates the ARN and the spec, seals an HTTP secret.
pub fn binding_record(
    root: &RootKey,
    arn: &str,
    spec: &FunctionSpec,
    hmac_secret: Option<&[u8]>,
    now: arca_types::time::Millis,
) -> Result<RotationFunctionRecord, String> {
    if !valid_function_arn(arn) {
        return Err(format!(
            "{arn} is not a function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"
        ));
    }
    let sealed_secret = match spec {
        FunctionSpec::Http { url, .. } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err("the URL must start with http:// or https://".into());
            }
            let secret = hmac_secret.ok_or("an HTTP function needs a signing secret")?;
            if secret.len() < 16 {
                return Err("the signing secret must be at least 16 bytes".into());
            }
            Some(root.seal_blob(HMAC_SEAL_PURPOSE, secret))
        }
        FunctionSpec::Command { argv, .. } => {
            if argv.is_empty() {
                return Err("the command is empty".into());
            }
            None
        }
        FunctionSpec::Builtin { kind, .. } => {
            crate::builtin::parse_kind(kind).map_err(|e| e.message)?;
            None
        }
    };
    Ok(RotationFunctionRecord {
        arn: arn.to_owned(),
        spec: serde_json::to_value(spec).map_err(|e| e.to_string())?,
        sealed_secret,
        created_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_arns() {
        assert!(valid_function_arn(
            "arn:aws:lambda:us-east-1:123456789012:function:rotate-db"
        ));
        assert!(!valid_function_arn(
            "arn:aws:lambda:us-east-1:123:function:x"
        ));
        assert!(!valid_function_arn(
            "arn:aws:s3:us-east-1:123456789012:function:x"
        ));
        assert!(!valid_function_arn(
            "arn:aws:lambda:us-east-1:123456789012:function:"
        ));
    }

    #[test]
    fn spec_json_is_tagged() {
        let s = FunctionSpec::Command {
            argv: vec!["python3".into(), "shim.py".into()],
            timeout_secs: Some(5),
            role: Some("rotator".into()),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["type"], "command");
        assert_eq!(serde_json::from_value::<FunctionSpec>(v).unwrap(), s);
        let b: FunctionSpec =
            serde_json::from_str(r#"{"type":"builtin","kind":"generic"}"#).unwrap();
        assert!(matches!(b, FunctionSpec::Builtin { .. }));
    }
}
