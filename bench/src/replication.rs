//! The replication run: two production-mode Arca deployments on this machine. Site B
//! serves eu-west-1 and ap-south-1 over HTTPS (a certificate made here); site A serves
//! us-east-1 over plain HTTP to the load generator and names both regions as served by B,
//! with a key B binds to replication. Measured in one run:
//! - replication lag: the time from A's acknowledgement of a PutSecretValue to the value
//!   being readable from B (polled every 2 ms over TLS), p50/p99/max, under an open-loop
//!   write load of 100 and 1,000 writes/s on 50 replicated secrets;
//! - A's closed-loop PutSecretValue rate (c16) on secrets with 0, 1 and 2 replica regions,
//!   repeated with the order rotated, medians reported with the ratio to 0.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::Rng;

use crate::load::{self, Generator, LoadSpec, Proto, Req, Stop, ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::systems::{self, Env, Process};
use crate::CommonArgs;
use arca_types::secret::SecretString;

const B_REGIONS: [&str; 2] = ["eu-west-1", "ap-south-1"];
const LAG_SECRETS: usize = 50;

#[derive(Args)]
pub struct ReplicationArgs {
    /// Seconds of each lag measurement.
    #[arg(long, default_value_t = 10.0)]
    lag_secs: f64,
    /// Measured seconds of each PutSecretValue rate cell.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Repetitions of the rate cells (order rotated).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Site A on CPU 0 alone, site B and the load generator on CPU 1 (needs 2 CPUs and
    /// `taskset`): A's own cost of replicating, with the replica site off its core.
    #[arg(long)]
    pin: bool,
    /// Secrets per rate cell's set.
    #[arg(long, default_value_t = 2000)]
    set: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// One signed Secrets Manager call over a pooled client; the JSON answer.
async fn call(
    client: &reqwest::Client,
    base: &str,
    region: &str,
    op: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    call_target(client, base, region, &format!("secretsmanager.{op}"), body).await
}

/// One signed awsJson1_1 call with X-Amz-Target `target` (any of Arca's services).
pub async fn call_target(
    client: &reqwest::Client,
    base: &str,
    region: &str,
    target: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let url = reqwest::Url::parse(base)?;
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(443)
    );
    let body = serde_json::to_vec(&body)?;
    let secret = SecretString::new(SECRET_ACCESS_KEY.to_owned());
    let s = arca_sigv4::sign_json_post(&host, target, &body, ACCESS_KEY_ID, &secret, region);
    let resp = client
        .post(url)
        .header("content-type", arca_sigv4::JSON_CONTENT_TYPE)
        .header("x-amz-target", target)
        .header("x-amz-date", &s.x_amz_date)
        .header("authorization", &s.authorization)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!("{target}: {status} {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

fn admin(env: &Env, data: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(&env.arca_bin)
        .args(args)
        .env("ARCA_DATABASE", data.join("arca.db"))
        .env("ARCA_ROOT_KEY_FILE", data.join("root.key"))
        .output()
        .context("running the arca admin CLI")?;
    if !out.status.success() {
        bail!("arca {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn outbox(env: &Env, data: &Path) -> Result<u64> {
    let out = admin(env, data, &["status"])?;
    out.lines()
        .find_map(|l| l.strip_prefix("replication outbox: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no outbox line in `arca status`")
}

async fn drain(env: &Env, data: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while outbox(env, data)? > 0 {
        if Instant::now() > deadline {
            bail!("the outbox did not drain in 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

struct Sites {
    a: Process,
    a_url: String,
    a_addr: std::net::SocketAddr,
    a_data: std::path::PathBuf,
    b: Process,
    b_url: String,
    b_client: reqwest::Client,
}

async fn start_sites(env: &Env, dir: &Path, pin: bool) -> Result<Sites> {
    let (a_data, b_data) = (dir.join("a"), dir.join("b"));
    systems::arca_init(env, &a_data)?;
    systems::arca_init(env, &b_data)?;
    // B's certificate, for 127.0.0.1.
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .context("making a certificate")?;
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    let cert_file = b_data.join("cert.pem");
    let key_file = b_data.join("key.pem");
    std::fs::write(&cert_file, &cert_pem)?;
    std::fs::write(&key_file, &key_pem)?;
    let private = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
    };
    private(&key_file)?;
    // The key B binds to replication, handed to A in a 0600 file.
    let out = admin(env, &b_data, &["access-key", "create", "--replication"])?;
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::to_owned)
            .context("no key in the admin output")
    };
    let (link_id, link_secret) = (
        field("AWS_ACCESS_KEY_ID=")?,
        field("AWS_SECRET_ACCESS_KEY=")?,
    );
    let secret_file = a_data.join("link.secret");
    std::fs::write(&secret_file, &link_secret)?;
    private(&secret_file)?;

    let b_port = systems::free_port()?;
    let b_cfg = b_data.join("arca.toml");
    std::fs::write(
        &b_cfg,
        format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            cert_file.display().to_string(),
            key_file.display().to_string()
        ),
    )?;
    let mut cmd = systems::arca_command(env, &b_data);
    cmd.arg("--config").arg(&b_cfg);
    rebuild(
        &mut cmd,
        Some(&format!("127.0.0.1:{b_port}")),
        pin.then_some(1),
    );
    let mut b = Process::spawn(cmd, &dir.join("log-b"))?;
    systems::wait_listening(&mut b, "arca: listening on ", Duration::from_secs(60)).await?;
    let b_url = format!("https://127.0.0.1:{b_port}");

    let mut a_cfg = String::new();
    for r in B_REGIONS {
        a_cfg.push_str(&format!(
            "[[replication.regions]]\nregion = {r:?}\nendpoint = {b_url:?}\naccess_key_id = {link_id:?}\nsecret_access_key_file = {:?}\nca_file = {:?}\n",
            secret_file.display().to_string(),
            cert_file.display().to_string()
        ));
    }
    let a_cfg_file = a_data.join("arca.toml");
    std::fs::write(&a_cfg_file, a_cfg)?;
    let mut cmd = systems::arca_command(env, &a_data);
    cmd.arg("--config").arg(&a_cfg_file);
    if pin {
        rebuild(&mut cmd, None, Some(0));
    }
    let mut a = Process::spawn(cmd, &dir.join("log-a"))?;
    let a_addr =
        systems::wait_listening(&mut a, "arca: listening on ", Duration::from_secs(60)).await?;
    let b_client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes())?)
        .timeout(Duration::from_secs(10))
        .build()?;
    Ok(Sites {
        a,
        a_url: format!("http://{a_addr}"),
        a_addr,
        a_data,
        b,
        b_url,
        b_client,
    })
}

/// Rebuilds `cmd` to listen on `listen` (if given; `arca_command` listens on port 0, and B
/// needs a port known before it starts) and to run on CPU `cpu` only (if given), through
/// `taskset`.
fn rebuild(cmd: &mut std::process::Command, listen: Option<&str>, cpu: Option<usize>) {
    let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut fresh = match cpu {
        Some(c) => {
            let mut t = std::process::Command::new("taskset");
            t.arg("-c").arg(c.to_string()).arg(cmd.get_program());
            t
        }
        None => std::process::Command::new(cmd.get_program()),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if let (true, Some(listen)) = (a == "--listen", listen) {
            let _ = it.next();
            fresh.arg("--listen").arg(listen);
        } else {
            fresh.arg(a);
        }
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => fresh.env(k, v),
            None => fresh.env_remove(k),
        };
    }
    *cmd = fresh;
}

fn name(set: &str, i: usize) -> String {
    format!("bench/repl/{set}/{i:05}")
}

/// Regions site A serves itself: replicas there are internal copies.
const LOCAL_REGIONS: [&str; 2] = ["us-west-2", "eu-central-1"];

/// The rate cells: a label and the replica regions of their secrets.
const CELLS: [(&str, &[&str]); 5] = [
    ("none", &[]),
    ("1 on site B", &["eu-west-1"]),
    ("2 on site B", &B_REGIONS),
    ("1 on site A", &["us-west-2"]),
    ("2 on site A", &LOCAL_REGIONS),
];

fn replicas(regions: &[&str]) -> serde_json::Value {
    serde_json::Value::Array(
        regions
            .iter()
            .map(|r| serde_json::json!({"Region": r}))
            .collect(),
    )
}

async fn fill(sites: &Sites, set: &str, count: usize, regions: &[&str]) -> Result<()> {
    let n_replicas = regions.len();
    let gen: Generator = {
        let set = set.to_owned();
        let regions = replicas(regions);
        Arc::new(move |_, seq| {
            let mut body = serde_json::json!({
                "Name": name(&set, seq as usize),
                "SecretString": "x".repeat(1024),
                "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
            });
            if n_replicas > 0 {
                body["AddReplicaRegions"] = regions.clone();
            }
            Req {
                method: hyper::Method::POST,
                path: "/".into(),
                target: Some("CreateSecret"),
                body: serde_json::to_vec(&body).unwrap_or_default().into(),
            }
        })
    };
    let r = load::run(LoadSpec {
        addr: sites.a_addr,
        also: Vec::new(),
        proto: Proto::Aws,
        concurrency: 16,
        stop: Stop::Count(count as u64),
        generator: gen,
        server_pgid: None,
        progress: None,
    })
    .await?;
    if r.errors > 0 {
        bail!("filling {set}: {} errors ({:?})", r.errors, r.first_error);
    }
    Ok(())
}

/// (rate, A's CPU µs per write, B's CPU µs per write), B's over the measured window.
async fn put_rate(sites: &Sites, set: &str, count: usize, secs: f64) -> Result<(f64, f64, f64)> {
    let set_name = set.to_owned();
    let gen: Generator = Arc::new(move |rng, seq| {
        let body = serde_json::json!({
            "SecretId": name(&set_name, rng.gen_range(0..count)),
            "SecretString": format!("{seq:0>1024}"),
            "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
        });
        Req {
            method: hyper::Method::POST,
            path: "/".into(),
            target: Some("PutSecretValue"),
            body: serde_json::to_vec(&body).unwrap_or_default().into(),
        }
    });
    let b_before = crate::procstat::group_cpu(sites.b.pgid());
    let r = load::run(LoadSpec {
        addr: sites.a_addr,
        also: Vec::new(),
        proto: Proto::Aws,
        concurrency: 16,
        stop: Stop::Timed {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs_f64(secs),
        },
        generator: gen,
        server_pgid: Some(sites.a.pgid()),
        progress: None,
    })
    .await?;
    if r.errors > 0 {
        bail!(
            "PutSecretValue on {set}: {} errors ({:?})",
            r.errors,
            r.first_error
        );
    }
    // B's CPU over the warm-up and the window (it lags a little behind A's writes).
    let b_cpu = crate::procstat::group_cpu(sites.b.pgid()).saturating_sub(b_before);
    let writes = r.ok as f64 * (1.0 + 1.0 / secs);
    let a_us = r.server_cpu.unwrap_or(f64::NAN) / 100.0 * r.elapsed.as_secs_f64() * 1e6
        / r.ok.max(1) as f64;
    Ok((r.rate(), a_us, b_cpu.as_secs_f64() * 1e6 / writes.max(1.0)))
}

struct Lag {
    samples: usize,
    p50: f64,
    p99: f64,
    max: f64,
    lost: usize,
}

/// Writes at `rate`/s for `secs` to the lag set; samples every `every`-th write and polls
/// B until it reads that write (or a later one of the same secret).
async fn lag(
    sites: &Arc<Sites>,
    set: &str,
    secrets: usize,
    rate: u32,
    secs: f64,
    every: u64,
) -> Result<Lag> {
    let writer = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    let mut seq: u64 = 0;
    while Instant::now() < end {
        tick.tick().await;
        seq += 1;
        let (sites, writer) = (sites.clone(), writer.clone());
        let secret = name(set, (seq as usize) % secrets);
        let sampled = seq.is_multiple_of(every);
        tasks.spawn(async move {
            let value = format!("{seq:012}");
            call(
                &writer,
                &sites.a_url,
                load::REGION,
                "PutSecretValue",
                serde_json::json!({"SecretId": secret, "SecretString": value,
                    "ClientRequestToken": uuid::Uuid::new_v4().to_string()}),
            )
            .await?;
            let acked = Instant::now();
            if !sampled {
                return Ok::<Option<f64>, anyhow::Error>(None);
            }
            let deadline = acked + Duration::from_secs(10);
            loop {
                let got = call(
                    &sites.b_client,
                    &sites.b_url,
                    B_REGIONS[0],
                    "GetSecretValue",
                    serde_json::json!({"SecretId": secret}),
                )
                .await;
                if let Ok(v) = got {
                    let seen = v["SecretString"].as_str().unwrap_or("");
                    if seen >= value.as_str() {
                        return Ok(Some(acked.elapsed().as_secs_f64() * 1000.0));
                    }
                }
                if Instant::now() > deadline {
                    return Ok(None);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }
    let mut lags = Vec::new();
    let mut lost = 0;
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok(Some(ms)) => lags.push(ms),
            Ok(None) => {}
            Err(e) => {
                lost += 1;
                eprintln!("arca-bench: a write failed: {e}");
            }
        }
    }
    lags.sort_by(f64::total_cmp);
    let q = |p: f64| {
        lags.get(((lags.len() as f64 * p) as usize).min(lags.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Lag {
        samples: lags.len(),
        p50: q(0.5),
        p99: q(0.99),
        max: lags.last().copied().unwrap_or(f64::NAN),
        lost,
    })
}

/// With `--pin`, this process (the load generator) runs on CPU 1, beside site B; site A gets
/// CPU 0 to itself: the nearest this machine comes to a replica deployment on hardware of
/// its own. Called before the runtime starts its threads, which inherit it.
pub fn pin_load_generator(args: &ReplicationArgs) -> Result<()> {
    if args.pin {
        let mut set = nix::sched::CpuSet::new();
        set.set(1)?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    }
    Ok(())
}

pub async fn run(env: &Env, args: &ReplicationArgs) -> Result<()> {
    let dir = env.work.join("replication");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let sites = Arc::new(start_sites(env, &dir, args.pin).await?);
    eprintln!(
        "arca-bench: site A {} -> site B {} ({:?})",
        sites.a_url, sites.b_url, B_REGIONS
    );

    let mut lag_rows = Vec::new();
    for (rate, every) in [(100u32, 1u64), (1000, 5)] {
        // Secrets replicated to B, enough that none reaches the 100-version quota (a
        // quarter of it at most).
        let secrets = LAG_SECRETS.max((f64::from(rate) * args.lag_secs / 25.0) as usize);
        let set = format!("lag{rate}");
        fill(&sites, &set, secrets, &B_REGIONS[..1]).await?;
        drain(env, &sites.a_data).await?;
        let l = lag(&sites, &set, secrets, rate, args.lag_secs, every).await?;
        drain(env, &sites.a_data).await?;
        eprintln!(
            "arca-bench: lag at {rate}/s: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
            l.p50, l.p99, l.samples
        );
        lag_rows.push((rate, l));
    }

    for (n, (_, regions)) in CELLS.iter().enumerate() {
        fill(&sites, &format!("r{n}"), args.set, regions).await?;
    }
    drain(env, &sites.a_data).await?;
    let mut rates: [Vec<f64>; CELLS.len()] = Default::default();
    let mut a_cpu: [Vec<f64>; CELLS.len()] = Default::default();
    let mut b_cpu: [Vec<f64>; CELLS.len()] = Default::default();
    for rep in 0..args.reps {
        for k in 0..CELLS.len() {
            let n = (k + rep) % CELLS.len();
            let (r, a_us, b_us) =
                put_rate(&sites, &format!("r{n}"), args.set, args.duration).await?;
            a_cpu[n].push(a_us);
            b_cpu[n].push(b_us);
            // Each cell starts with the deliveries of the one before done.
            drain(env, &sites.a_data).await?;
            eprintln!("arca-bench: PutSecretValue c16, replicas {}: {r:.0} req/s, A {a_us:.0} µs/write, B {b_us:.0} µs/write", CELLS[n].0);
            rates[n].push(r);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let m: Vec<f64> = rates.iter_mut().map(median).collect();
    let ma: Vec<f64> = a_cpu.iter_mut().map(median).collect();
    let mb: Vec<f64> = b_cpu.iter_mut().map(median).collect();

    let mut out = String::new();
    out.push_str(&format!(
        "## Replication across two deployments (HTTPS link, one machine{})\n\n",
        if args.pin {
            "; site A pinned to CPU 0, site B and the load generator to CPU 1"
        } else {
            ""
        }
    ));
    out.push_str("| writes/s | samples | lag p50 ms | lag p99 ms | max ms | failed writes |\n|---:|---:|---:|---:|---:|---:|\n");
    for (rate, l) in &lag_rows {
        out.push_str(&format!(
            "| {rate} | {} | {:.1} | {:.1} | {:.1} | {} |\n",
            l.samples, l.p50, l.p99, l.max, l.lost
        ));
    }
    out.push_str(&format!(
        "\n| replica regions | PutSecretValue c16 req/s (median of {}) | ÷ none | site A CPU µs/write | site B CPU µs/write |\n|---:|---:|---:|---:|---:|\n",
        args.reps
    ));
    for (n, r) in m.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {r:.0} | {:.2} | {:.0} | {:.0} |\n",
            CELLS[n].0,
            r / m[0],
            ma[n],
            mb[n]
        ));
    }
    let p99_1000 = lag_rows.last().map_or(f64::NAN, |(_, l)| l.p99);
    out.push_str(&format!(
        "\nTargets: p99 lag at 1,000 writes/s ≤ 100 ms: {} ({p99_1000:.1} ms); rate with 2 replicas ≥ 0.70 of none: on site B {} ({:.2}), on site A {} ({:.2})\n",
        if p99_1000 <= 100.0 { "met" } else { "NOT met" },
        if m[2] / m[0] >= 0.70 { "met" } else { "NOT met" },
        m[2] / m[0],
        if m[4] / m[0] >= 0.70 { "met" } else { "NOT met" },
        m[4] / m[0]
    ));
    println!("{out}");
    if let Some(p) = &args.common.out {
        std::fs::write(p, &out)?;
    }
    let mut sites = Arc::try_unwrap(sites).map_err(|_| anyhow::anyhow!("sites still shared"))?;
    sites.a.stop(Duration::from_secs(10));
    sites.b.stop(Duration::from_secs(10));
    if !args.common.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
