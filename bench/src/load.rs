//! The load generator: `concurrency` keep-alive HTTP/1.1 connections, each a closed loop
//! (send, read the whole response, send the next), for a warm-up and then a measured window
//! (or until a fixed number of requests has been sent, for fills). AWS-protocol requests are
//! SigV4-signed one by one just before they are sent, so signing is part of the client cost
//! this module reports (its own process CPU, user+sys, during the measured window).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use arca_types::secret::SecretString;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Method;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::procstat;

/// The access key every AWS-protocol system is started with (and moto/LocalStack ignore).
pub const ACCESS_KEY_ID: &str = "AKIAARCABENCH0000001";
pub const SECRET_ACCESS_KEY: &str = "arca-bench/Secret+Key/0123456789abcdefABCD";
pub const REGION: &str = "us-east-1";

/// How a system is spoken to.
#[derive(Clone, Debug)]
pub enum Proto {
    /// awsJson1_1 over `POST /`, SigV4-signed with [`ACCESS_KEY_ID`].
    Aws,
    /// Vault/OpenBao HTTP API with `X-Vault-Token`.
    Vault { token: String },
}

/// One request as a workload describes it, before signing.
pub struct Req {
    pub method: Method,
    pub path: String,
    /// `X-Amz-Target` operation name (AWS protocol only).
    pub target: Option<&'static str>,
    pub body: Bytes,
}

/// Builds the `seq`-th request of a run (seq is unique within the run).
pub type Generator = Arc<dyn Fn(&mut SmallRng, u64) -> Req + Send + Sync>;

/// When the closed loops stop.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// Warm up, then measure for the duration.
    Timed { warmup: Duration, measure: Duration },
    /// Send exactly this many requests, all measured (fills).
    Count(u64),
}

pub struct LoadSpec {
    pub addr: SocketAddr,
    /// Further nodes of the same system: connection i goes to `[addr, also..][i % n]`.
    pub also: Vec<SocketAddr>,
    pub proto: Proto,
    pub concurrency: usize,
    pub stop: Stop,
    pub generator: Generator,
    /// Process group of the server, for its CPU time during the measured window.
    pub server_pgid: Option<i32>,
    /// Called about every 10 s with the number of requests done (fills).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// What one run measured. Latencies are in microseconds.
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub hist: Histogram<u64>,
    /// The load generator's CPU (user+sys) during the window, % of one core.
    pub client_cpu: f64,
    /// The server's process group CPU during the window, % of one core.
    pub server_cpu: Option<f64>,
    /// CPU used by everything else on the machine during the window, % of one core.
    pub other_cpu: f64,
    pub first_error: Option<String>,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        (self.ok + self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
    pub fn max_ms(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
}

struct Shared {
    seq: AtomicU64,
    done: AtomicU64,
    first_error: Mutex<Option<String>>,
}

struct ConnOutcome {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
}

fn new_hist() -> Result<Histogram<u64>> {
    // 1 µs .. 120 s at 3 significant figures.
    Histogram::new_with_bounds(1, 120_000_000, 3).context("creating a histogram")
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Turns a workload request into a wire request: AWS requests are signed here, per request.
fn build(
    req: Req,
    host: &str,
    proto: &Proto,
    secret: &SecretString,
    keys: &arca_sigv4::SigningKeyCache,
) -> Result<hyper::Request<Full<Bytes>>> {
    let mut b = hyper::Request::builder()
        .method(req.method.clone())
        .uri(req.path.as_str())
        .header("host", host);
    match proto {
        Proto::Aws => {
            let target = format!("secretsmanager.{}", req.target.unwrap_or("GetSecretValue"));
            let headers = [
                ("host", host),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target.as_str()),
            ];
            let parts = arca_sigv4::RequestParts {
                method: req.method.as_str(),
                path: &req.path,
                query: "",
                headers: &headers,
                body: &req.body,
            };
            // Signing keys are derived once per day, as a long-lived SDK client would: the
            // generator's CPU is taken from the machine the servers run on.
            let signed = arca_sigv4::sign_request_cached(
                &parts,
                &arca_sigv4::SigningParams {
                    access_key_id: ACCESS_KEY_ID,
                    secret_access_key: secret,
                    region: REGION,
                    service: "secretsmanager",
                    unix_secs: unix_now(),
                },
                Some(keys),
            );
            b = b
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-target", target)
                .header("x-amz-date", signed.x_amz_date)
                .header("authorization", signed.authorization);
        }
        Proto::Vault { token } => {
            b = b
                .header("x-vault-token", token.as_str())
                .header("content-type", "application/json");
        }
    }
    Ok(b.body(Full::new(req.body))?)
}

/// Sends one request and reads the whole response. Err(message) for transport errors and
/// non-2xx answers.
async fn one(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(), String> {
    one_body(sender, addr, request).await.map(|_| ())
}

/// `one`, keeping the answer's body.
async fn one_body(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Bytes, String> {
    // A server that closes after every response (moto) costs a reconnect: that is
    // part of what a client of it pays, so it counts in the request's latency.
    let ready = match sender.as_mut() {
        Some(s) => s.ready().await.is_ok(),
        None => false,
    };
    if !ready {
        *sender = Some(connect(addr).await.map_err(|e| format!("connect: {e}"))?);
    }
    let s = sender.as_mut().ok_or("no connection")?;
    let resp = match s.send_request(request).await {
        Ok(r) => r,
        Err(e) => {
            *sender = None;
            return Err(format!("transport: {e}"));
        }
    };
    let status = resp.status();
    let close = resp
        .headers()
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            *sender = None;
            return Err(format!("reading body: {e}"));
        }
    };
    if close {
        *sender = None;
    }
    if status.is_success() {
        Ok(body)
    } else {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        Err(format!("HTTP {status}: {text}"))
    }
}

async fn conn_loop(
    spec: Arc<LoadSpec>,
    shared: Arc<Shared>,
    measure_from: Instant,
    end: Option<Instant>,
    index: usize,
) -> Result<ConnOutcome> {
    let addr = match index % (1 + spec.also.len()) {
        0 => spec.addr,
        i => spec.also[i - 1],
    };
    let mut hist = new_hist()?;
    let (mut ok, mut errors) = (0u64, 0u64);
    // Seeded from the OS: ClientRequestTokens drawn from it must never repeat across runs.
    let mut rng = SmallRng::from_entropy();
    let secret = SecretString::new(SECRET_ACCESS_KEY.to_owned());
    let host = addr.to_string();
    let keys = arca_sigv4::SigningKeyCache::new();
    let mut sender = None;
    loop {
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        match (spec.stop, end) {
            (Stop::Count(n), _) if seq >= n => break,
            (_, Some(end)) if Instant::now() >= end => break,
            _ => {}
        }
        let req = (spec.generator)(&mut rng, seq);
        let request = build(req, &host, &spec.proto, &secret, &keys)?;
        let started = Instant::now();
        let outcome = one(&mut sender, addr, request).await;
        let finished = Instant::now();
        if started < measure_from {
            continue;
        }
        match outcome {
            Ok(()) => {
                ok += 1;
                let micros = finished.duration_since(started).as_micros() as u64;
                hist.saturating_record(micros.max(1));
            }
            Err(e) => {
                errors += 1;
                {
                    let mut first = shared.first_error.lock().unwrap_or_else(|p| p.into_inner());
                    if first.is_none() {
                        *first = Some(e);
                    }
                }
                // Do not spin on a dead server.
                if sender.is_none() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(ConnOutcome { hist, ok, errors })
}

/// Runs the load and returns what was measured.
pub async fn run(spec: LoadSpec) -> Result<LoadResult> {
    let spec = Arc::new(spec);
    let shared = Arc::new(Shared {
        seq: AtomicU64::new(0),
        done: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let start = Instant::now();
    let (measure_from, end) = match spec.stop {
        Stop::Timed { warmup, measure } => (start + warmup, Some(start + warmup + measure)),
        Stop::Count(_) => (start, None),
    };
    let mut tasks = Vec::with_capacity(spec.concurrency);
    for i in 0..spec.concurrency {
        tasks.push(tokio::spawn(conn_loop(
            spec.clone(),
            shared.clone(),
            measure_from,
            end,
            i,
        )));
    }
    // CPU is sampled when the measured window opens and after the last response.
    tokio::time::sleep_until(measure_from.into()).await;
    let before = (
        procstat::self_cpu(),
        spec.server_pgid.map(procstat::group_cpu),
        procstat::machine_busy(),
    );
    let window_start = Instant::now();
    let progress = spec.progress.clone().map(|f| {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                f(shared.done.load(Ordering::Relaxed));
            }
        })
    });
    let mut hist = new_hist()?;
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let o = t.await.context("a load connection panicked")??;
        hist.add(&o.hist).context("merging histograms")?;
        ok += o.ok;
        errors += o.errors;
    }
    if let Some(p) = progress {
        p.abort();
    }
    let elapsed = match spec.stop {
        Stop::Timed { measure, .. } => measure,
        Stop::Count(_) => window_start.elapsed(),
    };
    let after_self = procstat::self_cpu();
    let after_server = spec.server_pgid.map(procstat::group_cpu);
    let after_machine = procstat::machine_busy();
    let wall = window_start.elapsed().as_secs_f64().max(1e-9);
    let client_cpu = (after_self - before.0).as_secs_f64() / wall * 100.0;
    let server_cpu = match (before.1, after_server) {
        (Some(b), Some(a)) => Some((a.saturating_sub(b)).as_secs_f64() / wall * 100.0),
        _ => None,
    };
    // Everything else the machine did meanwhile (other processes, other builds): the noise.
    let other_cpu = {
        let total = after_machine.saturating_sub(before.2).as_secs_f64() / wall * 100.0;
        (total - client_cpu - server_cpu.unwrap_or(0.0)).max(0.0)
    };
    let first_error = shared
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    Ok(LoadResult {
        ok,
        errors,
        elapsed,
        hist,
        client_cpu,
        server_cpu,
        other_cpu,
        first_error,
    })
}

/// Sends one request on a fresh connection: Ok if the answer was 2xx.
pub async fn call_once(addr: SocketAddr, proto: &Proto, req: Req) -> Result<(), String> {
    Caller::new(addr, proto.clone()).call(req).await.map(|_| ())
}

/// One client on one kept-alive connection, that reads answers (for probes that look at
/// what came back rather than how fast).
pub struct Caller {
    addr: SocketAddr,
    proto: Proto,
    secret: SecretString,
    keys: arca_sigv4::SigningKeyCache,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Caller {
    pub fn new(addr: SocketAddr, proto: Proto) -> Self {
        Self {
            addr,
            proto,
            secret: SecretString::new(SECRET_ACCESS_KEY.to_owned()),
            keys: arca_sigv4::SigningKeyCache::new(),
            sender: None,
        }
    }

    /// Sends `req`; the answer's body if it was 2xx.
    pub async fn call(&mut self, req: Req) -> Result<Bytes, String> {
        let request = build(
            req,
            &self.addr.to_string(),
            &self.proto,
            &self.secret,
            &self.keys,
        )
        .map_err(|e| e.to_string())?;
        one_body(&mut self.sender, self.addr, request).await
    }
}
