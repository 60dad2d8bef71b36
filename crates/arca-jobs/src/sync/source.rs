//! The sync's source: a Vault or OpenBao KV mount (version 1 or 2) read over its HTTP
//! API, with a token (renewed while renewable) or an AppRole login (redone when the
//! token it got expires). Listing and metadata never read secret material; `read` is the
//! only call that does, and the pass calls it only for entries that changed.

use arca_types::secret::SecretString;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How the source is reached.
pub struct SourceConfig {
    /// e.g. `http://127.0.0.1:8200` (no trailing slash needed).
    pub address: String,
    /// Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// The KV mount's path, e.g. `secret`.
    pub mount: String,
    pub kv_version: KvVersion,
    pub auth: SourceAuth,
    /// PEM roots to trust besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
    /// Asked of the server (`sys/internal/ui/mounts/<mount>`) at the first pass.
    Auto,
}

/// How the job authenticates. Credentials come from files or the environment (never
/// from flags or the config file itself).
pub enum SourceAuth {
    Token(SecretString),
    AppRole {
        /// Where AppRole is mounted (default `approle`).
        mount: String,
        role_id: String,
        secret_id: SecretString,
    },
}

/// What went wrong talking to the source. The text names the request's path and the
/// server's answer (its `errors` list), never a token or a value.
#[derive(Debug, Clone)]
pub struct SourceError {
    pub message: String,
    /// The token was refused (expired, revoked or lacking the policy): a clear failure of
    /// the pass, after one fresh AppRole login where that is possible.
    pub denied: bool,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {}

fn err(message: impl Into<String>) -> SourceError {
    SourceError {
        message: message.into(),
        denied: false,
    }
}

/// KV v2 metadata of one entry, as much as change detection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// KV v2's current_version (0 for KV v1).
    pub version: u64,
    /// When the metadata was created: a deleted-and-recreated path restarts at version
    /// 1, so the pair (created, version) is what names a version for ever.
    pub created: String,
    /// The current version is soft-deleted or destroyed: it has no value to sync.
    pub current_gone: bool,
}

/// An entry's data: the KV pairs, zeroized when dropped.
pub struct EntryData {
    pub pairs: Vec<(String, SecretString)>,
    /// The whole entry as one JSON object (per-secret granularity).
    pub json: SecretString,
}

struct Session {
    token: Option<SecretString>,
    /// When to renew (or log in again): two thirds into the token's TTL.
    renew_at: Option<Instant>,
    renewable: bool,
}

pub struct KvSource {
    cfg: SourceConfig,
    http: reqwest::Client,
    session: Mutex<Session>,
    version: Mutex<Option<KvVersion>>,
    /// Requests made (listing, metadata, data reads) since start: the pass reports them.
    pub(crate) requests: std::sync::atomic::AtomicU64,
    /// Of those, reads of secret material.
    pub(crate) data_reads: std::sync::atomic::AtomicU64,
}

impl KvSource {
    pub fn new(cfg: SourceConfig) -> Result<Self, SourceError> {
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &cfg.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| err(format!("source CA file: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| err(format!("source HTTP client: {e}")))?;
        let token = match &cfg.auth {
            SourceAuth::Token(t) => Some(t.clone()),
            SourceAuth::AppRole { .. } => None,
        };
        let fixed = (cfg.kv_version != KvVersion::Auto).then_some(cfg.kv_version);
        Ok(Self {
            cfg,
            http,
            session: Mutex::new(Session {
                token,
                renew_at: None,
                renewable: true,
            }),
            version: Mutex::new(fixed),
            requests: 0.into(),
            data_reads: 0.into(),
        })
    }

    /// The source's address and auth method (never a token), for status output.
    pub fn describe(&self) -> String {
        let auth = match &self.cfg.auth {
            SourceAuth::Token(_) => "token",
            SourceAuth::AppRole { .. } => "approle",
        };
        format!("{} ({auth})", self.cfg.address)
    }

    pub fn mount(&self) -> &str {
        self.cfg.mount.trim_matches('/')
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.cfg.address.trim_end_matches('/'), path)
    }

    /// A request with the namespace header, and the token when there is one.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&SecretString>,
    ) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(ns) = &self.cfg.namespace {
            rb = rb.header("X-Vault-Namespace", ns);
        }
        if let Some(t) = token {
            rb = rb.header("X-Vault-Token", t.expose());
        }
        rb
    }

    /// Sends and decodes: `Ok(None)` for 404 (no such path, or an empty folder).
    async fn send(
        &self,
        rb: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Option<Value>, SourceError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = rb
            .send()
            .await
            .map_err(|e| err(format!("{what}: source unreachable: {}", without_url(&e))))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let errors = body
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            return Err(SourceError {
                message: format!("{what}: source answered {status}: {errors}"),
                denied: status == reqwest::StatusCode::FORBIDDEN
                    || status == reqwest::StatusCode::UNAUTHORIZED,
            });
        }
        Ok(Some(body))
    }

    /// The token to use now: logs in (AppRole) or renews it when it is due.
    async fn token(&self) -> Result<SecretString, SourceError> {
        let mut s = self.session.lock().await;
        let due = s.renew_at.is_some_and(|t| Instant::now() >= t);
        if s.token.is_none() {
            self.login(&mut s).await?;
        } else if due {
            if s.renewable {
                if let Err(e) = self.renew(&mut s).await {
                    tracing::warn!(error = %e, "renewing the source token failed");
                    if matches!(self.cfg.auth, SourceAuth::AppRole { .. }) {
                        self.login(&mut s).await?;
                    } else {
                        return Err(e);
                    }
                }
            } else if matches!(self.cfg.auth, SourceAuth::AppRole { .. }) {
                self.login(&mut s).await?;
            } else {
                // A fixed, non-renewable token: use it until the source refuses it.
                s.renew_at = None;
            }
        }
        s.token.clone().ok_or_else(|| err("no source token"))
    }

    /// After a refusal: an AppRole job logs in again once; a token job cannot recover.
    async fn relogin(&self) -> Result<bool, SourceError> {
        if !matches!(self.cfg.auth, SourceAuth::AppRole { .. }) {
            return Ok(false);
        }
        let mut s = self.session.lock().await;
        self.login(&mut s).await?;
        Ok(true)
    }

    async fn login(&self, s: &mut Session) -> Result<(), SourceError> {
        let SourceAuth::AppRole {
            mount,
            role_id,
            secret_id,
        } = &self.cfg.auth
        else {
            return Err(err("the source token was refused"));
        };
        let body = serde_json::json!({"role_id": role_id, "secret_id": secret_id.expose()});
        let path = format!("auth/{}/login", mount.trim_matches('/'));
        let resp = self
            .send(
                self.request(reqwest::Method::POST, &path, None).json(&body),
                "AppRole login",
            )
            .await?
            .ok_or_else(|| err(format!("AppRole login: no auth method at {path}")))?;
        self.take_auth(s, &resp, "AppRole login")
    }

    async fn renew(&self, s: &mut Session) -> Result<(), SourceError> {
        let token = s.token.clone().ok_or_else(|| err("no source token"))?;
        let resp = self
            .send(
                self.request(reqwest::Method::POST, "auth/token/renew-self", Some(&token)),
                "token renewal",
            )
            .await?
            .ok_or_else(|| err("token renewal: not found"))?;
        self.take_auth(s, &resp, "token renewal")
    }

    /// Keeps the token and the TTL of a login or renewal answer.
    fn take_auth(&self, s: &mut Session, resp: &Value, what: &str) -> Result<(), SourceError> {
        let auth = resp
            .get("auth")
            .ok_or_else(|| err(format!("{what}: no auth in the answer")))?;
        let token = auth
            .get("client_token")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("{what}: no client_token in the answer")))?;
        s.token = Some(SecretString::new(token.to_owned()));
        let ttl = auth
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        s.renewable = auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        s.renew_at = (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl * 2 / 3));
        Ok(())
    }

    /// At the start of a pass: learns a static token's TTL (so it is renewed in time),
    /// and checks that the token is still accepted.
    pub async fn check_token(&self) -> Result<(), SourceError> {
        let token = self.token().await?;
        let known = self.session.lock().await.renew_at.is_some();
        if known {
            return Ok(());
        }
        let resp = self
            .authed(
                reqwest::Method::GET,
                "auth/token/lookup-self",
                "token lookup",
            )
            .await;
        match resp {
            Ok(Some(v)) => {
                let data = &v["data"];
                let ttl = data.get("ttl").and_then(Value::as_u64).unwrap_or(0);
                let mut s = self.session.lock().await;
                if s.token.as_ref().map(SecretString::expose) == Some(token.expose()) {
                    s.renewable = data
                        .get("renewable")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    s.renew_at =
                        (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl * 2 / 3));
                }
                Ok(())
            }
            // A token without lookup-self rights still works for KV: carry on.
            Ok(None) => Ok(()),
            Err(e) if e.denied => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A request with the current token, retried once after a fresh AppRole login when
    /// the source refuses it.
    async fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        what: &str,
    ) -> Result<Option<Value>, SourceError> {
        let token = self.token().await?;
        match self
            .send(self.request(method.clone(), path, Some(&token)), what)
            .await
        {
            Err(e) if e.denied && self.relogin().await? => {
                let token = self.token().await?;
                self.send(self.request(method, path, Some(&token)), what)
                    .await
            }
            other => other,
        }
    }

    /// The mount's KV version (asked once when configured as `auto`).
    pub async fn kv_version(&self) -> Result<KvVersion, SourceError> {
        let mut v = self.version.lock().await;
        if let Some(v) = *v {
            return Ok(v);
        }
        let path = format!("sys/internal/ui/mounts/{}", self.mount());
        let found = self
            .authed(reqwest::Method::GET, &path, "mount lookup")
            .await?
            .ok_or_else(|| err(format!("no KV mount at {}", self.mount())))?;
        let version = match found["data"]["options"]["version"].as_str() {
            Some("2") => KvVersion::V2,
            _ => KvVersion::V1,
        };
        *v = Some(version);
        Ok(version)
    }

    /// The names below `folder` (relative to the mount; "" is its root), recursively:
    /// entries as paths relative to the mount. Folders are walked breadth first; an
    /// empty or missing folder lists nothing.
    pub async fn list_tree(&self, folder: &str) -> Result<Vec<String>, SourceError> {
        let version = self.kv_version().await?;
        let mut out = Vec::new();
        let mut folders = vec![folder.trim_matches('/').to_owned()];
        while let Some(dir) = folders.pop() {
            let path = match version {
                KvVersion::V2 => format!("{}/metadata/{dir}", self.mount()),
                _ => format!("{}/{dir}", self.mount()),
            };
            let list = reqwest::Method::from_bytes(b"LIST").expect("LIST is a method token");
            let Some(resp) = self.authed(list, &path, "list").await? else {
                continue;
            };
            for key in resp["data"]["keys"].as_array().into_iter().flatten() {
                let Some(key) = key.as_str() else { continue };
                let full = if dir.is_empty() {
                    key.to_owned()
                } else {
                    format!("{dir}/{key}")
                };
                match full.strip_suffix('/') {
                    Some(sub) => folders.push(sub.to_owned()),
                    None => out.push(full),
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// KV v2 metadata of one entry (None: it is gone). Reads no secret material.
    pub async fn metadata(&self, path: &str) -> Result<Option<EntryMeta>, SourceError> {
        let p = format!("{}/metadata/{path}", self.mount());
        let Some(resp) = self.authed(reqwest::Method::GET, &p, "metadata").await? else {
            return Ok(None);
        };
        let data = &resp["data"];
        let version = data["current_version"].as_u64().unwrap_or(0);
        let current = &data["versions"][version.to_string()];
        let deleted = current["deletion_time"]
            .as_str()
            .is_some_and(|t| !t.is_empty());
        let destroyed = current["destroyed"].as_bool().unwrap_or(false);
        Ok(Some(EntryMeta {
            version,
            created: data["created_time"].as_str().unwrap_or("").to_owned(),
            current_gone: version == 0 || deleted || destroyed,
        }))
    }

    /// Reads an entry's data: KV v2 at `version` (so the value matches the version the
    /// metadata named), KV v1 as it is. None: it is gone (or that version was deleted
    /// meanwhile).
    pub async fn read(
        &self,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<EntryData>, SourceError> {
        let p = match (self.kv_version().await?, version) {
            (KvVersion::V2, Some(v)) => format!("{}/data/{path}?version={v}", self.mount()),
            (KvVersion::V2, None) => format!("{}/data/{path}", self.mount()),
            _ => format!("{}/{path}", self.mount()),
        };
        self.data_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(mut resp) = self.authed(reqwest::Method::GET, &p, "read").await? else {
            return Ok(None);
        };
        let data = match self.kv_version().await? {
            KvVersion::V2 => resp["data"]["data"].take(),
            _ => resp["data"].take(),
        };
        let Value::Object(map) = data else {
            return Ok(None);
        };
        let json = SecretString::new(Value::Object(map.clone()).to_string());
        let pairs = map
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, SecretString::new(text))
            })
            .collect();
        // `resp` held the values too; serde_json does not zeroize, which is a limit of
        // the decoder (the same holds for the SDK's buffers on the target side).
        drop(resp);
        Ok(Some(EntryData { pairs, json }))
    }
}

/// A reqwest error without its URL (which is harmless, but long) or anything else.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}
