//! The local-command invoker: runs the operator's command with the event as JSON on
//! stdin, and in its environment the endpoint (`AWS_ENDPOINT_URL`, and `AWS_CA_BUNDLE` under TLS), the secret's region,
//! and short-lived credentials that may act on the secret being rotated and nothing else.
//! So a Lambda-style handler written for boto3 runs unmodified (see `contrib/lambda_shim.py`).
//! Exit status 0 is success; anything else, or overrunning the timeout, is failure.

use crate::event::{InvokeError, Invoker, RotationEvent};
use arca_core::access::AccessKeys;
use arca_core::SecretScope;
use arca_types::arn::SecretRef;
use async_trait::async_trait;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Where a local command reaches this Arca: its URL and, when it serves TLS under a
/// certificate the system does not trust, the CA bundle to trust (`AWS_CA_BUNDLE`).
#[derive(Debug, Clone)]
pub struct LocalEndpoint {
    pub url: String,
    pub ca_bundle: Option<std::path::PathBuf>,
}

pub struct CommandInvoker {
    argv: Vec<String>,
    timeout: Duration,
    endpoint: LocalEndpoint,
    access_keys: Arc<AccessKeys>,
    role: Option<RoleBinding>,
}

/// The IAM role a command runs as: each run gets a session of it, named for the
/// function, which lives as long as the run may (sessions are sealed tokens, not stored,
/// so one outlives the run until it expires).
pub struct RoleBinding {
    pub arca: Arc<arca_core::Arca>,
    pub account: String,
    pub role: String,
    pub session_name: String,
}

impl CommandInvoker {
    pub fn new(
        argv: Vec<String>,
        timeout: Duration,
        endpoint: LocalEndpoint,
        access_keys: Arc<AccessKeys>,
    ) -> Result<Self, InvokeError> {
        if argv.is_empty() {
            return Err(InvokeError::new("the rotation command is empty"));
        }
        Ok(Self {
            argv,
            timeout,
            endpoint,
            access_keys,
            role: None,
        })
    }

    /// Runs as `role` instead of with a key limited to the secret.
    pub fn with_role(mut self, role: RoleBinding) -> Self {
        self.role = Some(role);
        self
    }
}

impl CommandInvoker {
    /// Runs the command with `body` on stdin, in `region`, with credentials limited to
    /// `scope` that end with the run; `what` names the run in errors.
    pub async fn run(
        &self,
        body: &[u8],
        region: &str,
        scope: SecretScope,
        what: &str,
    ) -> Result<(), InvokeError> {
        // Credentials live a little longer than the step may run; a scoped key ends with
        // it, a role's session when it expires.
        let ttl = self.timeout + Duration::from_secs(30);
        let (key_id, secret, token) = match &self.role {
            None => {
                let (id, secret) = self.access_keys.issue_scoped(scope, ttl);
                (id, secret, None)
            }
            Some(r) => {
                let s = r
                    .arca
                    .issue_role_session(&r.account, &r.role, &r.session_name, ttl.as_secs() as i64)
                    .ok_or_else(|| {
                        InvokeError::new(format!(
                            "{what}: the command's role {} does not exist in account {}",
                            r.role, r.account
                        ))
                    })?;
                (s.access_key_id, s.secret_access_key, Some(s.session_token))
            }
        };
        let mut cmd = tokio::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // The function's own output may carry secret values: never captured or logged.
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") || k.to_string_lossy().starts_with("ARCA_") {
                cmd.env_remove(&k);
            }
        }
        if let Some(ca) = &self.endpoint.ca_bundle {
            cmd.env("AWS_CA_BUNDLE", ca);
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint.url)
            .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &self.endpoint.url)
            .env("AWS_REGION", region)
            .env("AWS_DEFAULT_REGION", region)
            .env("AWS_ACCESS_KEY_ID", &key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret.expose());
        if let Some(t) = &token {
            cmd.env("AWS_SESSION_TOKEN", t.expose());
        }
        let result = async {
            let mut child = cmd
                .spawn()
                .map_err(|_| InvokeError::new(format!("{what}: cannot start the command")))?;
            if let Some(mut stdin) = child.stdin.take() {
                // A command that never reads stdin is its own business.
                let _ = stdin.write_all(body).await;
            }
            match tokio::time::timeout(self.timeout, child.wait()).await {
                Ok(Ok(status)) if status.success() => Ok(()),
                Ok(Ok(status)) => Err(InvokeError::new(format!(
                    "{what} command exited with {}",
                    status
                        .code()
                        .map(|c| format!("status {c}"))
                        .unwrap_or_else(|| "a signal".into())
                ))),
                Ok(Err(_)) => Err(InvokeError::new(format!(
                    "{what}: waiting for the command failed"
                ))),
                Err(_) => {
                    let _ = child.kill().await;
                    Err(InvokeError::new(format!(
                        "{what} command timed out after {} s",
                        self.timeout.as_secs()
                    )))
                }
            }
        }
        .await;
        self.access_keys.revoke_scoped(&key_id);
        result
    }
}

#[async_trait]
impl Invoker for CommandInvoker {
    async fn invoke(&self, event: &RotationEvent) -> Result<(), InvokeError> {
        let region = match SecretRef::parse(&event.secret_id) {
            SecretRef::Arn { region, .. } => region,
            SecretRef::Name(_) => {
                return Err(InvokeError::new(
                    "the rotation event must name the secret by ARN",
                ))
            }
        };
        let body =
            serde_json::to_vec(event).map_err(|_| InvokeError::new("cannot encode the event"))?;
        self.run(
            &body,
            &region,
            SecretScope::Arn(event.secret_id.clone()),
            &format!("{} step: rotation", event.step.as_str()),
        )
        .await
    }
}
