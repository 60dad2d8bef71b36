//! Shared by the end-to-end tests of the `arca` binary: spawn `arca server` on port 0,
//! capture everything it prints (stdout and stderr, in one buffer a test can scan), build
//! `aws-sdk-secretsmanager` clients pointed at it, and send raw signed requests that the
//! SDK would never produce. The server process is killed when its handle drops.

#![allow(dead_code)]

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::Client;
use aws_smithy_runtime::client::http::hyper_014::HyperClientBuilder;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The pair every test client signs with; `--dev` accepts exactly this pair when it is
/// in the server's environment as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
pub const ACCESS_KEY_ID: &str = "AKIAARCARUSTTEST0001";
pub const SECRET_ACCESS_KEY: &str = "arca-rust-e2e/Secret+Key/0123456789abcdef";

/// How long the server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variables the binary reads; cleared so a developer's shell cannot change
/// what a test runs against.
const ARCA_ENV: &[&str] = &[
    "ARCA_CONFIG",
    "ARCA_DATABASE",
    "ARCA_ROOT_KEY_FILE",
    "ARCA_ROOT_KEY",
    "ARCA_ACCOUNT_ID",
    "ARCA_LOG",
    "ARCA_LISTEN",
    "ARCA_ACCESS_KEY_ID",
    "ARCA_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "RUST_LOG",
];

/// How to start a server. `ServerBuilder::dev()` is the common case.
pub struct ServerBuilder {
    dev: bool,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ServerBuilder {
    /// `arca server --dev`, accepting [`ACCESS_KEY_ID`] / [`SECRET_ACCESS_KEY`].
    pub fn dev() -> Self {
        Self {
            dev: true,
            args: Vec::new(),
            env: vec![
                ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
                ("AWS_SECRET_ACCESS_KEY".into(), SECRET_ACCESS_KEY.into()),
            ],
        }
    }

    /// `arca server` without `--dev`: the caller supplies the database, root key and
    /// access keys through [`Self::arg`] / [`Self::env`].
    pub fn production() -> Self {
        Self {
            dev: false,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn spawn(self) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arca"));
        // Global flags (--log, --database) are accepted after the subcommand too.
        cmd.arg("server").arg("--listen").arg("127.0.0.1:0");
        if self.dev {
            cmd.arg("--dev");
        }
        cmd.args(&self.args);
        for k in ARCA_ENV {
            cmd.env_remove(k);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning the arca binary");

        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let out_buf = output.clone();
        let out_thread = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                append(&out_buf, &line);
                if let Some(addr) = listening_addr(&line) {
                    // The receiver may be gone (startup timed out); keep draining anyway.
                    let _ = tx.send(addr);
                }
            }
        });
        let err_buf = output.clone();
        let err_thread = std::thread::spawn(move || {
            let mut reader = stderr;
            let mut chunk = [0u8; 8192];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => append(&err_buf, &chunk[..n]),
                }
            }
        });

        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            output,
            readers: vec![out_thread, err_thread],
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(e) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                server.join_readers();
                panic!(
                    "arca server did not print its listening line ({e:?}); output:\n{}",
                    server.output_string()
                );
            }
        }
        server
    }
}

fn append(buf: &Mutex<Vec<u8>>, bytes: &[u8]) {
    buf.lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend_from_slice(bytes);
}

/// `arca: listening on 127.0.0.1:PORT (http)` -> the address.
fn listening_addr(line: &[u8]) -> Option<SocketAddr> {
    let line = std::str::from_utf8(line).ok()?;
    line.trim()
        .strip_prefix("arca: listening on ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A running `arca server`; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    /// `arca server --dev` with the test key pair.
    pub fn dev() -> Server {
        ServerBuilder::dev().spawn()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An SDK client for `region` signing with the test key pair.
    pub fn client(&self, region: &str) -> Client {
        sdk_client(&self.endpoint(), region, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    }

    /// Everything the server printed so far, stdout and stderr interleaved by arrival.
    pub fn output(&self) -> Vec<u8> {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn output_string(&self) -> String {
        String::from_utf8_lossy(&self.output()).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (the graceful shutdown path), waits for the process to exit and for
    /// its output to be drained. Falls back to SIGKILL after 15 s.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill(1)");
        assert!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + Duration::from_secs(15);
        let exit = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for arca") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "arca did not exit within 15 s of SIGTERM; output:\n{}",
                    self.output_string()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.join_readers();
        exit
    }

    fn join_readers(&mut self) {
        for t in self.readers.drain(..) {
            let _ = t.join();
        }
    }

    /// `POST /_arca/dev/reset`: wipes every secret.
    pub async fn dev_reset(&self) {
        let r = raw_request(self.addr, "/_arca/dev/reset", &[], b"").await;
        assert_eq!(r.status, 200, "dev reset: {}", r.text());
    }

    /// `POST /_arca/dev/advance-clock?seconds=N`: moves the service clock and wakes the purge.
    pub async fn advance_clock(&self, seconds: i64) {
        let path = format!("/_arca/dev/advance-clock?seconds={seconds}");
        let r = raw_request(self.addr, &path, &[], b"").await;
        assert_eq!(r.status, 200, "advance-clock: {}", r.text());
    }

    /// A SigV4-signed awsJson1_1 call with an arbitrary body.
    pub async fn signed_call(
        &self,
        region: &str,
        key_id: &str,
        secret: &str,
        operation: &str,
        body: &[u8],
    ) -> RawResponse {
        signed_call(self.addr, region, key_id, secret, operation, body).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }
}

/// An SDK client for a plain-HTTP endpoint with static credentials. Retries are off so a
/// test sees the first answer, and a timeout keeps a hung server from hanging the suite.
pub fn sdk_client(endpoint: &str, region: &str, key_id: &str, secret: &str) -> Client {
    let http = HyperClientBuilder::new().build(hyper_014::client::HttpConnector::new());
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::from_keys(key_id, secret, None))
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(15))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// The bare `__type` of an error body.
    pub fn error_type(&self) -> String {
        let t = self.json()["__type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        t.rsplit('#').next().unwrap_or_default().to_owned()
    }
}

/// One HTTP/1.1 `POST` over a fresh connection (`Connection: close`, so the body ends at EOF).
pub async fn raw_request(
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut req = format!("POST {path_and_query} HTTP/1.1\r\n");
    let has_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
    if !has_host {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(req.as_bytes()).await?;
        s.write_all(body).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let out = tokio::time::timeout(Duration::from_secs(15), io)
        .await
        .expect("raw request timed out")
        .expect("raw request failed");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP response head");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    RawResponse {
        status,
        headers: head,
        body: out[split + 4..].to_vec(),
    }
}

/// A SigV4-signed (header form, current time) awsJson1_1 request for `operation`, with any
/// body: how to send what the SDK refuses to (malformed JSON, wrong types, wrong keys).
pub async fn signed_call(
    addr: SocketAddr,
    region: &str,
    key_id: &str,
    secret: &str,
    operation: &str,
    body: &[u8],
) -> RawResponse {
    let host = addr.to_string();
    let target = format!("secretsmanager.{operation}");
    let headers = [
        ("host", host.as_str()),
        ("content-type", arca_sigv4::JSON_CONTENT_TYPE),
        ("x-amz-target", target.as_str()),
    ];
    let secret = arca_types::secret::SecretString::new(secret.to_owned());
    let signed = arca_sigv4::sign_json_post(&host, &target, body, key_id, &secret, region);
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("x-amz-date", &signed.x_amz_date));
    all.push(("authorization", &signed.authorization));
    raw_request(addr, "/", &all, body).await
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut f = std::fs::File::open("/dev/urandom").expect("opening /dev/urandom");
    let mut b = vec![0u8; n];
    f.read_exact(&mut b).expect("reading /dev/urandom");
    b
}

/// A unique, recognisable string for scanning: `prefix` plus 32 random hex digits.
pub fn canary(prefix: &str) -> String {
    format!("{prefix}-{}", hex(&random_bytes(16)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A unique secret name per call, so tests sharing a server never collide.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", hex(&random_bytes(4)))
}

/// A temporary directory for a non-dev server's database.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("arca-test-")
        .tempdir()
        .expect("creating a temporary directory")
}

/// The files in `dir` (not recursive), for scanning.
pub fn files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("reading the database directory")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}
