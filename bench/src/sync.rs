//! The sync benchmark: N secrets in a real OpenBao, synced into Arca. Prints the first
//! full pass (secrets/s), an unchanged pass (time, and the requests it made on each
//! side), OpenBao's own rate for the same listing and metadata reads (the floor an
//! unchanged pass cannot beat), and the lag from a change in OpenBao to its arrival in
//! Arca with the push trigger and with a 30 s interval.

use crate::systems::{self, Env, Kind, System};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct SyncArgs {
    /// Secrets written to OpenBao and synced.
    #[arg(long, default_value_t = 10_000)]
    secrets: usize,
    /// Push-trigger lag samples.
    #[arg(long, default_value_t = 100)]
    push_samples: usize,
    /// 30 s-interval lag samples (each written at a random moment, then waited for).
    #[arg(long, default_value_t = 6)]
    interval_samples: usize,
    #[command(flatten)]
    pub common: crate::CommonArgs,
}

const CONCURRENCY: usize = 16;

fn path_of(i: usize) -> String {
    format!("bench/f{:02}/s{i:05}", i % 100)
}

struct Bao {
    url: String,
    http: reqwest::Client,
}

impl Bao {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(m, format!("{}/v1/{path}", self.url))
            .header("x-vault-token", "root");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let r = req.send().await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("OpenBao {method} {path}: {status} {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn put(&self, i: usize, value: &str) -> Result<()> {
        self.call(
            "POST",
            &format!("secret/data/{}", path_of(i)),
            Some(json!({"data": {"value": value, "i": i}})),
        )
        .await
        .map(|_| ())
    }
}

/// Runs `f(i)` for i in 0..n, CONCURRENCY at a time.
async fn each<F, Fut>(n: usize, f: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (f, next) = (f.clone(), next.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                f(i).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// An awsJson1_1 call to Arca at `addr`, signed with the bench key.
async fn arca_call(http: &reqwest::Client, addr: &str, target: &str, body: Value) -> Result<Value> {
    crate::replication::call_target(http, &format!("http://{addr}"), "us-east-1", target, body)
        .await
}

async fn start_arca(env: &Env, data: &std::path::Path, bao: &str, interval: u64) -> Result<System> {
    let token = data.join("bao.token");
    std::fs::write(&token, "root\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))?;
    }
    let config = data.join("arca.toml");
    std::fs::write(
        &config,
        format!(
            "[[sync]]\nname = \"bench\"\ninterval_secs = {interval}\njitter_secs = 0\n\
             [sync.source]\naddress = \"{bao}\"\nmount = \"secret\"\nkv_version = \"2\"\n\
             prefixes = [\"bench/\"]\ntoken_file = {:?}\n",
            token.display().to_string()
        ),
    )?;
    let mut cmd = systems::arca_command(env, data);
    cmd.env("ARCA_CONFIG", &config);
    let mut process = systems::Process::spawn(cmd, &data.join("log"))?;
    let addr =
        systems::wait_listening(&mut process, "arca: listening on ", Duration::from_secs(60))
            .await?;
    Ok(System {
        kind: Kind::Arca,
        addr,
        process,
        also: Vec::new(),
    })
}

/// Waits for the job's first pass (it starts with the server) and returns its report.
async fn first_pass(http: &reqwest::Client, addr: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let s = arca_call(http, addr, "ArcaSync.GetStatus", json!({"Job": "bench"})).await?;
        let last = &s["Jobs"][0]["last_pass"];
        if !last.is_null() {
            return Ok(last.clone());
        }
        if Instant::now() > deadline {
            bail!("the first pass did not finish");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

pub async fn run(env: &Env, args: &SyncArgs) -> Result<()> {
    let dir = env.work.join("sync");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut openbao = systems::start(env, Kind::OpenBao, &dir.join("openbao")).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let bao = Arc::new(Bao {
        url: format!("http://{}", openbao.addr),
        http: http.clone(),
    });
    let n = args.secrets;
    eprintln!("arca-bench: writing {n} secrets to OpenBao");
    let b = bao.clone();
    each(n, move |i| {
        let b = b.clone();
        async move { b.put(i, "v1").await }
    })
    .await?;

    // OpenBao's own rate for what an unchanged pass asks of it: the listing (one LIST per
    // folder) and one metadata read per entry, at the sync's concurrency.
    let t = Instant::now();
    let folders = bao.call("LIST", "secret/metadata/bench/", None).await?;
    let folders: Vec<String> = folders["data"]["keys"]
        .as_array()
        .context("no folders listed")?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    for f in &folders {
        bao.call("LIST", &format!("secret/metadata/bench/{f}"), None)
            .await?;
    }
    let b = bao.clone();
    each(n, move |i| {
        let b = b.clone();
        async move {
            b.call("GET", &format!("secret/metadata/{}", path_of(i)), None)
                .await
                .map(|_| ())
        }
    })
    .await?;
    let floor = t.elapsed().as_secs_f64();
    let floor_requests = 1 + folders.len() + n;

    // Phase 1: push lag, on a job that only passes when asked (interval 1 h).
    let data = dir.join("arca");
    systems::arca_init(env, &data)?;
    let mut arca = start_arca(env, &data, &bao.url, 3600).await?;
    let addr = arca.addr.to_string();
    let first = first_pass(&http, &addr).await?;
    let first_secs = (first["finished"].as_f64().unwrap_or(0.0)
        - first["started"].as_f64().unwrap_or(0.0))
        / 1000.0;
    if first["counts"]["create"].as_u64() != Some(n as u64) {
        bail!("the first pass did not create {n} secrets: {first}");
    }
    let t = Instant::now();
    let unchanged = arca_call(&http, &addr, "ArcaSync.RunJob", json!({"Job": "bench"})).await?;
    let unchanged_secs = t.elapsed().as_secs_f64();
    if unchanged["counts"]["unchanged"].as_u64() != Some(n as u64) {
        bail!("the unchanged pass was not all unchanged: {unchanged}");
    }

    let mut push = Vec::new();
    for s in 0..args.push_samples {
        let i = s % n;
        bao.put(i, &format!("push{s}")).await?;
        let t = Instant::now();
        let r = arca_call(
            &http,
            &addr,
            "ArcaSync.RunJob",
            json!({"Job": "bench", "Paths": [path_of(i)]}),
        )
        .await?;
        push.push(t.elapsed().as_secs_f64() * 1000.0);
        if r["counts"]["update"].as_u64() != Some(1) {
            bail!("a push pass did not update its secret: {r}");
        }
    }
    arca.process.stop(Duration::from_secs(10));

    // Phase 2: a 30 s interval, no push: the time until the change is readable in Arca.
    let mut arca = start_arca(env, &data, &bao.url, 30).await?;
    let addr = arca.addr.to_string();
    first_pass(&http, &addr).await?;
    let mut interval = Vec::new();
    for s in 0..args.interval_samples {
        // At a random moment of the interval: a change written just after a pass waits
        // a whole interval, one written just before it almost none.
        let pause = rand::random::<u64>() % 30_000;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let i = (s * 7919) % n;
        let value = format!("poll{s}");
        bao.put(i, &value).await?;
        let t = Instant::now();
        loop {
            let v = arca_call(
                &http,
                &addr,
                "secretsmanager.GetSecretValue",
                json!({"SecretId": path_of(i)}),
            )
            .await?;
            if v["SecretString"]
                .as_str()
                .is_some_and(|x| x.contains(&value))
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                bail!("a change did not arrive within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        interval.push(t.elapsed().as_secs_f64());
    }
    arca.process.stop(Duration::from_secs(10));
    openbao.process.stop(Duration::from_secs(10));

    let report = format!(
        "sync from OpenBao, {n} secrets (KV v2, 100 folders, concurrency {CONCURRENCY})\n\
         first full pass:    {first_secs:.2} s  ({:.0} secrets/s; {} source requests)\n\
         unchanged pass:     {unchanged_secs:.2} s  (source requests {}, of which value reads {}; target requests {})\n\
         OpenBao floor:      {floor:.2} s  for the same {floor_requests} list/metadata requests ({:.0} req/s): unchanged / floor = {:.2}\n\
         push lag:           p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples; change written -> RunJob with its path returned)\n\
         30 s interval lag:  median {:.1} s, max {:.1} s ({} samples written at random moments; change written -> readable in Arca)\n\
         targets: unchanged pass < 10 s and bounded by OpenBao's rate; push p99 < 1 s\n",
        n as f64 / first_secs.max(1e-9),
        first["source_requests"],
        unchanged["source_requests"],
        unchanged["source_value_reads"],
        unchanged["target_requests"],
        floor_requests as f64 / floor,
        unchanged_secs / floor,
        pct(&mut push, 0.5),
        pct(&mut push, 0.99),
        pct(&mut push, 1.0),
        push.len(),
        pct(&mut interval, 0.5),
        pct(&mut interval, 1.0),
        interval.len(),
    );
    println!("{report}");
    if let Some(out) = &args.common.out {
        std::fs::write(out, &report)?;
    }
    if !args.common.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
