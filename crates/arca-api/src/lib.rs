//! Arca's HTTP face, and the only crate that knows HTTP. A request flows:
//! body read (size-limited) -> SigV4 verification (region from the credential scope) ->
//! `Operation` parsed from `X-Amz-Target` and the JSON body -> one `match` calling
//! arca-core -> JSON response or `{"__type","Message"}` error.

pub mod codec;
mod dev;
mod iam;
mod json;
pub mod operation;
mod query;
mod server;
pub mod tls;

use arca_core::access::AccessKeys;
use arca_core::audit::{self, Call, Caller};
use arca_core::{Arca, RequestCtx};
use arca_sigv4::{verify_cached, RequestParts, SigningKeyCache, VerifyConfig};
use arca_types::time::{Clock, SystemClock};
use arca_types::{cloudtrail, eventbridge};
use arca_types::{ApiError, ErrorCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::Request;
use operation::Operation;
use std::sync::Arc;
use std::time::Instant;

pub use dev::DevHooks;
pub use server::serve;

/// Requests larger than this are refused before they are read in full. The largest valid
/// request (a 65,536-byte SecretBinary, base64-encoded, with its other fields) is ~90 KB.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// The limit for a replication delivery from another deployment: one secret's state may
/// carry up to 100 versions of 64 KiB (about 9 MB as JSON); senders split larger batches
/// (see arca-jobs' `MAX_REQUEST_BYTES`).
pub const MAX_DELIVERY_BYTES: usize = 16 * 1024 * 1024;

pub struct ApiState {
    pub arca: Arc<Arca>,
    pub access_keys: Arc<AccessKeys>,
    pub verify: VerifyConfig,
    /// Present only with `--dev`: the test hooks (reset, clock).
    pub dev: Option<DevHooks>,
    /// Signatures are checked against real time, even when `--dev` moves the service
    /// clock forward to end deletion windows.
    pub auth_clock: Arc<dyn Clock>,
    signing_keys: SigningKeyCache,
    /// Who every access key stands for until principals of their own exist: the
    /// administrator of the deployment's account.
    administrator: Arc<arca_core::authz::Identity>,
}

impl ApiState {
    pub fn new(arca: Arc<Arca>, access_keys: Arc<AccessKeys>, dev: Option<DevHooks>) -> Self {
        let administrator = Arc::new(arca_core::authz::Identity::administrator(arca.account()));
        Self {
            administrator,
            arca,
            access_keys,
            verify: VerifyConfig::default(),
            dev,
            auth_clock: Arc::new(SystemClock),
            signing_keys: SigningKeyCache::new(),
        }
    }
}

/// One request, whatever its path: the dev hooks under `/_arca/dev/`, the API elsewhere
/// (AWS SDKs always POST to `/`, but the path is part of what the signature covers, so any
/// other path is answered by the API too, and fails there if it was not signed).
/// What the requests of one connection share: where it comes from, and the user agent its
/// client sent last (an SDK sends the same one each time), so that a request's audit
/// record copies neither.
pub(crate) struct Connection {
    ip: Arc<str>,
    /// Whether the connection is TLS (aws:SecureTransport).
    tls: bool,
    user_agent: std::sync::Mutex<Option<(http::HeaderValue, Arc<str>)>>,
}

/// One shared copy of each distinct source address and user agent (the audit queue
/// groups calls by their identity), up to `INTERNED_MAX`; past that, copies are made.
fn intern(s: &str) -> Arc<str> {
    const INTERNED_MAX: usize = 4_096;
    static INTERNED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<Arc<str>>>> =
        std::sync::OnceLock::new();
    let mut set = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(a) = set.get(s) {
        return a.clone();
    }
    let a: Arc<str> = s.into();
    if set.len() < INTERNED_MAX {
        set.insert(a.clone());
    }
    a
}

impl Connection {
    pub(crate) fn new(peer: std::net::SocketAddr, tls: bool) -> Self {
        Self {
            ip: intern(&peer.ip().to_string()),
            tls,
            user_agent: std::sync::Mutex::new(None),
        }
    }

    fn user_agent(&self, v: &http::HeaderValue) -> Option<Arc<str>> {
        let mut last = self.user_agent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((h, ua)) = last.as_ref() {
            if h == v {
                return Some(ua.clone());
            }
        }
        let text = v.to_str().ok()?;
        // Bounded, so a huge header cannot fill the trail (a valid header value is
        // visible ASCII, so any byte index is a character boundary).
        let ua = intern(text.get(..text.len().min(1024)).unwrap_or_default());
        *last = Some((v.clone(), ua.clone()));
        Some(ua)
    }
}

pub(crate) async fn handle(
    state: &ApiState,
    req: Request<Incoming>,
    conn: &Connection,
) -> server::Response {
    if let Some(action) = req.uri().path().strip_prefix(dev::PREFIX) {
        // POST only: a state-changing GET could be triggered by any web page.
        if req.method() != hyper::Method::POST {
            return dev::method_not_allowed();
        }
        let action = action.to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        // Boxed: the dev hooks' future stays out of the API future's size.
        return Box::pin(dev::handle(state, &action, &query)).await;
    }
    // A request id needs uniqueness, not secrecy: no OS randomness (a syscall) per request.
    let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let request_id: &str = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut id_buf);
    // Timed only when the request log is on (two clock reads per request otherwise).
    let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
    let (parts, body) = req.into_parts();
    let limit = if parts.headers.get("x-amz-target").map(|v| v.as_bytes())
        == Some(arca_core::DELIVER_OPERATION.as_bytes())
    {
        MAX_DELIVERY_BYTES
    } else {
        MAX_BODY_BYTES
    };
    let body = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = ApiError::body_too_large(limit);
            return codec::error(&e, request_id);
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let query = query::service_of(&parts, &body);
    let result = serve_one(state, &parts, &body, target, query, request_id, conn).await;
    let (op, response) = match result {
        Ok((op, resp)) => (op, resp),
        Err((op, e)) => {
            if e.code == ErrorCode::InternalServiceError {
                tracing::error!(op, request_id, "request failed with an internal error");
            }
            let resp = match query {
                Some(q) => query::error(q, &e, request_id),
                None => codec::error(&e, request_id),
            };
            (op, resp)
        }
    };
    tracing::debug!(
        op,
        status = response.status().as_u16(),
        micros = started.map_or(0, |t| t.elapsed().as_micros() as u64),
        request_id,
        "request"
    );
    response
}

type Served = Result<(&'static str, server::Response), (&'static str, ApiError)>;

/// The service a request's target names: Secrets Manager's operations, CloudTrail's
/// LookupEvents (over Arca's audit trail), or the replication link's delivery.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    SecretsManager,
    CloudTrail,
    EventBridge,
    Replication,
    /// Arca's sync jobs: `ArcaSync.RunJob` (the push trigger) and `ArcaSync.GetStatus`.
    Sync,
    /// IAM or STS, over the Query protocol.
    Query(query::QueryService),
}

impl Service {
    /// The eventSource its calls' audit records name.
    fn event_source(self) -> &'static str {
        match self {
            Self::SecretsManager => audit::EVENT_SOURCE,
            Self::CloudTrail => "cloudtrail.amazonaws.com",
            Self::EventBridge => "events.amazonaws.com",
            // Arca's own link between deployments.
            Self::Replication => "replication.arca.local",
            Self::Sync => arca_core::sync::SYNC_SOURCE,
            Self::Query(q) => q.event_source(),
        }
    }

    /// The action prefix that policies name this service's actions by (Secrets
    /// Manager's actions are decided where their secret is resolved).
    fn action_prefix(self) -> Option<&'static str> {
        match self {
            Self::CloudTrail => Some("cloudtrail"),
            Self::EventBridge => Some("events"),
            Self::Sync => Some("arca-sync"),
            Self::SecretsManager | Self::Replication | Self::Query(_) => None,
        }
    }

    fn of(target: Option<&str>, query: Option<query::QueryService>) -> Self {
        if let Some(q) = query {
            return Self::Query(q);
        }
        match target {
            Some(t) if t == arca_core::DELIVER_OPERATION => Self::Replication,
            Some(t) if t.starts_with(cloudtrail::TARGET_PREFIX) => Self::CloudTrail,
            Some(t) if t.starts_with(eventbridge::TARGET_PREFIX) => Self::EventBridge,
            Some(t) if t.starts_with(arca_core::sync::TARGET_PREFIX) => Self::Sync,
            _ => Self::SecretsManager,
        }
    }
}

/// What the audit record names a call by: the operation of a known target, else what the
/// target says (bounded, so a junk header cannot fill the trail).
fn event_name(target: Option<&str>) -> String {
    let name = target
        .map(|t| {
            t.strip_prefix(cloudtrail::TARGET_PREFIX)
                .or_else(|| t.strip_prefix(eventbridge::TARGET_PREFIX))
                .or_else(|| t.strip_prefix(arca_core::sync::TARGET_PREFIX))
                .or_else(|| t.strip_prefix("secretsmanager."))
                .unwrap_or(t)
        })
        .unwrap_or("");
    if !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        name.to_owned()
    } else {
        "-".to_owned()
    }
}

fn caller(parts: &http::request::Parts, conn: &Connection, key: Option<String>) -> Caller {
    Caller {
        access_key_id: key,
        identity: None,
        source_ip: Some(conn.ip.clone()),
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| conn.user_agent(v)),
    }
}

/// The access key id and region a refused request claimed (unverified: for its record).
fn claimed_scope(parts: &http::request::Parts) -> (Option<String>, String) {
    let credential = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| arca_sigv4::parse_authorization_header(v).ok())
        .map(|p| p.credential);
    match credential {
        Some(c) => (
            Some(c.access_key_id.chars().take(128).collect()),
            c.scope.region.chars().take(64).collect(),
        ),
        None => (None, String::new()),
    }
}

async fn serve_one(
    state: &ApiState,
    parts: &http::request::Parts,
    body: &[u8],
    target: Option<&str>,
    query: Option<query::QueryService>,
    request_id: &str,
    conn: &Connection,
) -> Served {
    let service = Service::of(target, query);
    let params = query.map(|_| query::Params::parse(body));
    let target = match &params {
        Some(p) => p.action(),
        None => target,
    };
    let audited = state.arca.audit_enabled();
    // The call's time, for its record (no clock read when nothing is recorded).
    let now = if audited {
        state.arca.clock().now_millis()
    } else {
        0
    };
    // Authenticate first: nothing about secrets, not even which operations exist, is
    // revealed to an unauthenticated caller.
    let authenticated = authenticate_refreshing(state, parts, body, service)
        .await
        .and_then(|(v, session)| Ok((identity_of(state, &v, session.as_ref())?, v)));
    let (identity, principal) = match authenticated {
        Ok(p) => p,
        Err(e) => {
            if audited {
                let (key, region) = claimed_scope(parts);
                let call = Call::other(
                    &event_name(target),
                    service.event_source(),
                    serde_json::Value::Null,
                    &region,
                    now,
                    request_id,
                    caller(parts, conn, key),
                );
                state.arca.record_call(Arc::new(call), Some(&e)).await;
            }
            return Err(("-", e));
        }
    };
    let mut ctx = RequestCtx {
        region: principal.region,
        only_secret: state.access_keys.scope_of(&principal.access_key_id),
        replication_link: state
            .access_keys
            .is_replication_key(&principal.access_key_id),
        call: None,
        // A background job of this deployment calling through the API (a sync job writing
        // here) sends its lease along: the call's writes then commit only while it holds.
        fence: parts
            .headers
            .get(arca_store::FENCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(arca_store::Fence::parse),
        access: None,
    };
    if audited {
        let mut who = caller(parts, conn, Some(principal.access_key_id));
        who.identity = Some(identity.audit_identity.clone());
        let call = match service {
            // A delivery's body holds values: it is summarized, never parsed for the record.
            Service::Replication => Call::other(
                "Deliver",
                Service::Replication.event_source(),
                serde_json::Value::Null,
                &ctx.region,
                now,
                request_id,
                who,
            ),
            // A form body is not JSON: its parameters are recorded as CloudTrail's
            // requestParameters (answers, where CreateAccessKey's and AssumeRole's
            // credentials are, never are).
            Service::Query(q) => Call::other(
                &event_name(target),
                q.event_source(),
                params
                    .as_ref()
                    .map_or(serde_json::Value::Null, query::Params::request_parameters),
                &ctx.region,
                now,
                request_id,
                who,
            ),
            _ => {
                let mut c = Call::new(&event_name(target), body, &ctx.region, now, request_id, who);
                c.event_source = service.event_source();
                c
            }
        };
        ctx.call = Some(Arc::new(call));
    }
    // Every service but the replication link decides on the caller's policies: Secrets
    // Manager where each secret is resolved (its `Access`, with the operation's condition
    // keys, is made once the operation is parsed), the others here, per action on `*`.
    if !matches!(service, Service::Replication | Service::SecretsManager) {
        let mut access =
            arca_core::authz::Access::new(identity.clone(), "", arca_policy::Context::default());
        access.source_ip = Some(conn.ip.clone());
        access.secure_transport = conn.tls;
        ctx.access = Some(Arc::new(access));
    }
    if let (Some(prefix), Some(op)) = (service.action_prefix(), target) {
        let op_name = event_name(Some(op));
        let action = format!("{prefix}:{op_name}");
        if let Err(e) = state.arca.authorize_call(&ctx, &action) {
            state.arca.finish_call(&ctx, Some(&e)).await;
            return Err(("-", e));
        }
    }
    let result = match service {
        Service::Query(q) => match &params {
            Some(p) => Box::pin(query_call(state, &ctx, q, p, request_id)).await,
            None => Err(("-", ApiError::internal())),
        },
        Service::Replication => deliver(state, &ctx, body, request_id).await,
        Service::CloudTrail => cloudtrail(state, &ctx, body, target, request_id).await,
        Service::EventBridge => eventbridge(state, &ctx, body, target, request_id).await,
        Service::Sync => Box::pin(sync(state, &ctx, body, target, request_id)).await,
        Service::SecretsManager => {
            secrets_manager(state, &mut ctx, identity, body, target, request_id, conn).await
        }
    };
    state
        .arca
        .finish_call(&ctx, result.as_ref().err().map(|(_, e)| e))
        .await;
    result
}

async fn deliver(state: &ApiState, ctx: &RequestCtx, body: &[u8], request_id: &str) -> Served {
    const OP: &str = arca_core::DELIVER_OPERATION;
    ctx.authorize(OP).map_err(|e| (OP, e))?;
    let req: arca_types::replication::DeliverRequest = codec::decode(body).map_err(|e| (OP, e))?;
    let outcomes = state.arca.deliver(&ctx.region, req.deliveries, None).await;
    let resp = codec::ok(
        &arca_types::replication::DeliverResponse { outcomes },
        request_id,
    );
    Ok((OP, resp))
}

/// Which of `ops` (a service's operations under the target prefix `prefix`) the request
/// names, authorized; anything else that service offers is an unknown operation.
fn pick_operation(
    ctx: &RequestCtx,
    target: Option<&str>,
    prefix: &str,
    ops: &[&'static str],
) -> Result<&'static str, (&'static str, ApiError)> {
    let Some(op) = target
        .and_then(|t| t.strip_prefix(prefix))
        .and_then(|name| ops.iter().copied().find(|o| *o == name))
    else {
        return Err(("-", ApiError::unknown_operation()));
    };
    ctx.authorize(op).map_err(|e| (op, e))?;
    Ok(op)
}

/// The one operation a service other than Secrets Manager is answered for (`op`, under
/// the target prefix `prefix`), authorized and its request decoded; anything else that
/// service offers is an unknown operation.
fn one_operation<R: serde::de::DeserializeOwned>(
    ctx: &RequestCtx,
    body: &[u8],
    target: Option<&str>,
    prefix: &str,
    op: &'static str,
) -> Result<R, (&'static str, ApiError)> {
    pick_operation(ctx, target, prefix, &[op])?;
    codec::decode(body).map_err(|e| (op, e))
}

/// CloudTrail's LookupEvents, over the audit trail.
async fn cloudtrail(
    state: &ApiState,
    ctx: &RequestCtx,
    body: &[u8],
    target: Option<&str>,
    request_id: &str,
) -> Served {
    const OP: &str = "LookupEvents";
    let req = one_operation(ctx, body, target, cloudtrail::TARGET_PREFIX, OP)?;
    let resp = Box::pin(state.arca.lookup_events(ctx, req))
        .await
        .map_err(|e| (OP, e))?;
    Ok((OP, codec::ok(&resp, request_id)))
}

/// The sync jobs' operations: `RunJob` (a pass now, of a whole job or of some paths: the
/// push trigger) and `GetStatus`. A key scoped to one secret may call neither.
async fn sync(
    state: &ApiState,
    ctx: &RequestCtx,
    body: &[u8],
    target: Option<&str>,
    request_id: &str,
) -> Served {
    let op = pick_operation(
        ctx,
        target,
        arca_core::sync::TARGET_PREFIX,
        &["RunJob", "GetStatus"],
    )?;
    if ctx.only_secret.is_some() {
        return Err((op, ApiError::access_denied()));
    }
    let control = state.arca.sync_control().map_err(|e| (op, e))?;
    let resp = match op {
        "RunJob" => {
            let req: arca_core::sync::RunRequest = codec::decode(body).map_err(|e| (op, e))?;
            control.run(req).await
        }
        _ => {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase", deny_unknown_fields)]
            struct StatusRequest {
                job: Option<String>,
            }
            let req: StatusRequest = codec::decode(body).map_err(|e| (op, e))?;
            control.status(req.job.as_deref()).await
        }
    }
    .map_err(|e| (op, e))?;
    Ok((op, codec::ok(&resp, request_id)))
}

/// EventBridge's rule operations and TestEventPattern; any other operation of
/// EventBridge's is unknown here.
async fn eventbridge(
    state: &ApiState,
    ctx: &RequestCtx,
    body: &[u8],
    target: Option<&str>,
    request_id: &str,
) -> Served {
    const OPS: [&str; 10] = [
        "PutRule",
        "DeleteRule",
        "DescribeRule",
        "ListRules",
        "EnableRule",
        "DisableRule",
        "PutTargets",
        "RemoveTargets",
        "ListTargetsByRule",
        "TestEventPattern",
    ];
    let op = pick_operation(ctx, target, eventbridge::TARGET_PREFIX, &OPS)?;
    let arca = &state.arca;
    let empty = || codec::ok(&serde_json::json!({}), request_id);
    let resp = async {
        Ok::<_, ApiError>(match op {
            "PutRule" => codec::ok(&arca.put_rule(ctx, codec::decode(body)?).await?, request_id),
            "DeleteRule" => {
                arca.delete_rule(ctx, codec::decode(body)?).await?;
                empty()
            }
            "DescribeRule" => codec::ok(
                &arca.describe_rule(ctx, codec::decode(body)?).await?,
                request_id,
            ),
            "ListRules" => codec::ok(
                &arca.list_rules(ctx, codec::decode(body)?).await?,
                request_id,
            ),
            "EnableRule" | "DisableRule" => {
                arca.set_rule_state(ctx, codec::decode(body)?, op == "EnableRule")
                    .await?;
                empty()
            }
            "PutTargets" => codec::ok(
                &arca.put_targets(ctx, codec::decode(body)?).await?,
                request_id,
            ),
            "RemoveTargets" => codec::ok(
                &arca.remove_targets(ctx, codec::decode(body)?).await?,
                request_id,
            ),
            "ListTargetsByRule" => codec::ok(
                &arca.list_targets_by_rule(ctx, codec::decode(body)?).await?,
                request_id,
            ),
            _ => codec::ok(
                &arca_core::events::test_event_pattern(&codec::decode(body)?)?,
                request_id,
            ),
        })
    }
    .await
    .map_err(|e| (op, e))?;
    Ok((op, resp))
}

async fn secrets_manager(
    state: &ApiState,
    ctx: &mut RequestCtx,
    identity: Arc<arca_core::authz::Identity>,
    body: &[u8],
    target: Option<&str>,
    request_id: &str,
    conn: &Connection,
) -> Served {
    let name = Operation::name_of(target).map_err(|e| ("-", e))?;
    let op = Operation::parse(name, body).map_err(|e| (Operation::static_name(name), e))?;
    let op_name = op.name();
    ctx.authorize(op_name).map_err(|e| (op_name, e))?;
    let mut access = arca_core::authz::Access::new(identity, op_name, op.condition_keys());
    access.source_ip = Some(conn.ip.clone());
    access.secure_transport = conn.tls;
    let access = Arc::new(access);
    ctx.access = Some(access.clone());
    let resp = dispatch(&state.arca, ctx, op, request_id)
        .await
        .map_err(|e| (op_name, e))?;
    // Fail closed: an operation that answered without asking the authorization point
    // is a bug, and its answer is not sent.
    if !access.decided() {
        tracing::error!(
            op = op_name,
            "an operation answered without an authorization decision"
        );
        return Err((op_name, ApiError::internal()));
    }
    Ok((op_name, resp))
}

/// `authenticate`, and once more after rereading the stored keys when the key is unknown
/// (an access key the admin CLI created after start-up; at most once a second).
async fn authenticate_refreshing(
    state: &ApiState,
    parts: &http::request::Parts,
    body: &[u8],
    service: Service,
) -> Result<(arca_sigv4::Verified, Option<Session>), ApiError> {
    match authenticate(state, parts, body, service) {
        Ok(r) => Ok(r),
        Err(e) if e.code == ErrorCode::UnrecognizedClient && state.access_keys.refresh_due() => {
            if let Err(err) = state.access_keys.refresh().await {
                tracing::warn!(error = %err, "rereading access keys failed");
            }
            authenticate(state, parts, body, service)
        }
        Err(e) => Err(e),
    }
}

fn authenticate(
    state: &ApiState,
    parts: &http::request::Parts,
    body: &[u8],
    service: Service,
) -> Result<(arca_sigv4::Verified, Option<Session>), ApiError> {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(parts.headers.len());
    headers.extend(
        parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))),
    );
    let req = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let now = state.auth_clock.now_millis() / 1000;
    let lookup = Lookup {
        state,
        // Sessions expire by the service's clock (which `--dev` can move forward), as
        // AssumeRole set their expiry by it; signatures are checked against real time.
        now_secs: state.arca.clock().now_millis() / 1000,
        session: std::cell::RefCell::new(None),
    };
    let other_cfg;
    let cfg = match service {
        Service::Query(q) => {
            other_cfg = VerifyConfig {
                service: q.signing_name().to_owned(),
                ..state.verify.clone()
            };
            &other_cfg
        }
        Service::CloudTrail | Service::EventBridge => {
            other_cfg = VerifyConfig {
                service: if service == Service::CloudTrail {
                    cloudtrail::SIGNING_NAME
                } else {
                    eventbridge::SIGNING_NAME
                }
                .to_owned(),
                ..state.verify.clone()
            };
            &other_cfg
        }
        _ => &state.verify,
    };
    match verify_cached(&req, cfg, now, &lookup, Some(&state.signing_keys)) {
        Ok(v) => Ok((v, lookup.session.into_inner())),
        Err(e) => {
            tracing::debug!(kind = ?e.kind, "request rejected by signature verification");
            Err(ApiError::new(e.kind.error_code(), e.message))
        }
    }
}

use arca_core::iam::sts::{Session, SessionError};

/// The signing secrets: stored and configured keys, and the sessions that AssumeRole
/// issued (known by their token; the opened session is kept for the caller's identity).
struct Lookup<'a> {
    state: &'a ApiState,
    now_secs: i64,
    session: std::cell::RefCell<Option<Session>>,
}

impl arca_sigv4::KeyLookup for Lookup<'_> {
    fn secret_key(&self, access_key_id: &str) -> Option<arca_types::secret::SecretString> {
        self.state.access_keys.lookup(access_key_id)
    }

    fn session_key(
        &self,
        access_key_id: &str,
        session_token: &str,
    ) -> Result<arca_types::secret::SecretString, arca_sigv4::AuthError> {
        match self
            .state
            .arca
            .open_session(access_key_id, session_token, self.now_secs)
        {
            Ok(s) => {
                let secret = s.secret.clone();
                *self.session.borrow_mut() = Some(s);
                Ok(secret)
            }
            Err(SessionError::Expired) => Err(arca_sigv4::AuthError::expired_token()),
            Err(SessionError::Unrecognized) => Err(arca_sigv4::AuthError::unrecognized_client()),
        }
    }
}

/// Who a verified request comes from: a session's role, a user's key, or (keys of no
/// user) the administrator. A key or session whose principal is gone is unrecognized.
fn identity_of(
    state: &ApiState,
    v: &arca_sigv4::Verified,
    session: Option<&Session>,
) -> Result<Arc<arca_core::authz::Identity>, ApiError> {
    let gone = || {
        ApiError::new(
            ErrorCode::UnrecognizedClient,
            "The security token included in the request is invalid.",
        )
    };
    if let Some(s) = session {
        return state.arca.session_identity(s).ok_or_else(gone);
    }
    match state.access_keys.owner_of(&v.access_key_id) {
        None => Ok(state.administrator.clone()),
        Some(owner) => state.arca.iam().user_identity(&owner).ok_or_else(gone),
    }
}

/// An IAM or STS action: which one the form names, then its handler.
async fn query_call(
    state: &ApiState,
    ctx: &RequestCtx,
    service: query::QueryService,
    p: &query::Params,
    request_id: &str,
) -> Served {
    let Some(action) = iam::action_of(service, p) else {
        let e = match p.action() {
            None => ApiError::new(ErrorCode::UnknownOperation, "Missing Action"),
            Some(a) => ApiError::new(
                ErrorCode::UnknownOperation,
                format!(
                    "Could not find operation {} for version {}",
                    a.chars().take(64).collect::<String>(),
                    p.get("Version").unwrap_or_default()
                ),
            ),
        };
        return Err(("-", e));
    };
    if ctx.only_secret.is_some() {
        return Err((action, ApiError::access_denied()));
    }
    let resp = match service {
        query::QueryService::Iam => iam::iam(state, ctx, p, action, request_id).await,
        query::QueryService::Sts => iam::sts(state, ctx, p, action, request_id).await,
    };
    resp.map(|r| (action, r)).map_err(|e| (action, e))
}

/// The one match from operation to handler. GetSecretValue, the hot path, is awaited
/// inline and rendered by hand from the cached record; every other operation's future is
/// boxed, so the per-connection future (moved on every poll setup) stays small.
async fn dispatch(
    arca: &Arca,
    ctx: &RequestCtx,
    op: Operation,
    request_id: &str,
) -> Result<server::Response, ApiError> {
    use Operation::*;
    Ok(match op {
        GetSecretValue(r) => {
            let v = arca.get_secret_value_shared(ctx, r).await?;
            return codec::ok_rendered(json::get_secret_value(&json::Answer::from(&v)), request_id);
        }
        BatchGetSecretValue(r) => codec::ok(
            &Box::pin(arca.batch_get_secret_value(ctx, r)).await?,
            request_id,
        ),
        CancelRotateSecret(r) => codec::ok(
            &Box::pin(arca.cancel_rotate_secret(ctx, r)).await?,
            request_id,
        ),
        CreateSecret(r) => codec::ok(&Box::pin(arca.create_secret(ctx, r)).await?, request_id),
        DeleteSecret(r) => codec::ok(&Box::pin(arca.delete_secret(ctx, r)).await?, request_id),
        DescribeSecret(r) => codec::ok(&Box::pin(arca.describe_secret(ctx, r)).await?, request_id),
        GetRandomPassword(r) => codec::ok(&arca.get_random_password(ctx, r)?, request_id),
        ListSecretVersionIds(r) => codec::ok(
            &Box::pin(arca.list_secret_version_ids(ctx, r)).await?,
            request_id,
        ),
        ListSecrets(r) => codec::ok(&Box::pin(arca.list_secrets(ctx, r)).await?, request_id),
        PutSecretValue(r) => codec::ok(&Box::pin(arca.put_secret_value(ctx, r)).await?, request_id),
        RemoveRegionsFromReplication(r) => codec::ok(
            &Box::pin(arca.remove_regions_from_replication(ctx, r)).await?,
            request_id,
        ),
        ReplicateSecretToRegions(r) => codec::ok(
            &Box::pin(arca.replicate_secret_to_regions(ctx, r)).await?,
            request_id,
        ),
        StopReplicationToReplica(r) => codec::ok(
            &Box::pin(arca.stop_replication_to_replica(ctx, r)).await?,
            request_id,
        ),
        RestoreSecret(r) => codec::ok(&Box::pin(arca.restore_secret(ctx, r)).await?, request_id),
        RotateSecret(r) => codec::ok(&Box::pin(arca.rotate_secret(ctx, r)).await?, request_id),
        TagResource(r) => codec::ok(&Box::pin(arca.tag_resource(ctx, r)).await?, request_id),
        UntagResource(r) => codec::ok(&Box::pin(arca.untag_resource(ctx, r)).await?, request_id),
        UpdateSecret(r) => codec::ok(&Box::pin(arca.update_secret(ctx, r)).await?, request_id),
        UpdateSecretVersionStage(r) => codec::ok(
            &Box::pin(arca.update_secret_version_stage(ctx, r)).await?,
            request_id,
        ),
        PutResourcePolicy(r) => codec::ok(
            &Box::pin(arca.put_resource_policy(ctx, r)).await?,
            request_id,
        ),
        GetResourcePolicy(r) => codec::ok(
            &Box::pin(arca.get_resource_policy(ctx, r)).await?,
            request_id,
        ),
        DeleteResourcePolicy(r) => codec::ok(
            &Box::pin(arca.delete_resource_policy(ctx, r)).await?,
            request_id,
        ),
        ListResourcePolicies(r) => codec::ok(
            &Box::pin(arca.list_resource_policies(ctx, r)).await?,
            request_id,
        ),
        ValidateResourcePolicy(r) => codec::ok(
            &Box::pin(arca.validate_resource_policy(ctx, r)).await?,
            request_id,
        ),
        Unsupported(name) => return Err(ApiError::operation_unsupported(name)),
    })
}
