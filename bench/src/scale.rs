//! The scale run: one production-mode Arca server, filled through its own API (concurrent
//! CreateSecret of 1 KB secrets), measured at 1,000 secrets and again at N: GetSecretValue
//! p50/p99 over random secrets at c1 and c16, a 100-item ListSecrets page with a name filter
//! (a broad prefix that matches everything, and a narrow one that matches exactly 100),
//! server RSS, and restart time (SIGTERM, start again on the same database and root key,
//! time until a signed GetSecretValue answers 200).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use rand::Rng;

use crate::load::{self, Generator, LoadSpec, Proto, Req, Stop};
use crate::report::group_thousands;
use crate::systems::{self, Env, System};
use crate::workloads;
use crate::CommonArgs;

const PREFIX: &str = "bench/scale/";
const BASE: u64 = 1000;

#[derive(Args)]
pub struct ScaleArgs {
    /// Secrets to fill the store with.
    #[arg(long, default_value_t = 1_000_000)]
    secrets: u64,
    /// Concurrent CreateSecret requests during the fill.
    #[arg(long, default_value_t = 16)]
    fill_concurrency: usize,
    /// Measured seconds per latency figure.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Skip the fill: measure the store in this directory (`scale/data` of an earlier run
    /// with --keep) as holding --secrets secrets, for profiling and A/B runs. Reads there
    /// set access dates, so later runs on it write fewer of them.
    #[arg(long)]
    reuse: Option<std::path::PathBuf>,
    /// Run on PostgreSQL (a fresh schema `arca_scale` on `ARCA_BENCH_POSTGRES`, default the
    /// local server) instead of SQLite.
    #[arg(long)]
    pub postgres: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn scale_name(n: u64) -> String {
    format!("{PREFIX}{n:07}")
}

/// Figures at one store size.
#[derive(Default, Clone)]
struct Figures {
    get_c1_p50: f64,
    get_c1_p99: f64,
    get_c16_p50: f64,
    get_c16_p99: f64,
    get_c16_rps: f64,
    list_broad_p50: f64,
    list_broad_p99: f64,
    list_narrow_p50: f64,
    list_narrow_p99: f64,
    rss_after_load: u64,
    restart_secs: f64,
    rss_after_restart: u64,
    db_bytes: u64,
    errors: u64,
}

fn get_random(n: u64) -> Generator {
    Arc::new(move |rng, _| Req {
        method: hyper::Method::POST,
        path: "/".into(),
        target: Some("GetSecretValue"),
        body: format!(r#"{{"SecretId":"{}"}}"#, scale_name(rng.gen_range(0..n))).into(),
    })
}

fn list(prefix: String) -> Generator {
    Arc::new(move |_, _| Req {
        method: hyper::Method::POST,
        path: "/".into(),
        target: Some("ListSecrets"),
        body: format!(r#"{{"MaxResults":100,"Filters":[{{"Key":"name","Values":["{prefix}"]}}]}}"#)
            .into(),
    })
}

async fn timed(sys: &System, conc: usize, secs: f64, g: Generator) -> Result<load::LoadResult> {
    load::run(LoadSpec {
        addr: sys.addr,
        also: Vec::new(),
        proto: Proto::Aws,
        concurrency: conc,
        stop: Stop::Timed {
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs_f64(secs),
        },
        generator: g,
        server_pgid: Some(sys.process.pgid()),
        progress: None,
    })
    .await
}

/// Creates secrets `from..to` and returns the fill rate.
async fn fill(sys: &System, from: u64, to: u64, conc: usize) -> Result<f64> {
    let count = to - from;
    let t = Instant::now();
    let r = load::run(LoadSpec {
        addr: sys.addr,
        also: Vec::new(),
        proto: Proto::Aws,
        concurrency: conc,
        stop: Stop::Count(count),
        generator: workloads::seed(Proto::Aws, scale_name, from),
        server_pgid: None,
        progress: Some(Arc::new(move |done| {
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "  fill: {} of {} ({:.0}/s)",
                group_thousands(from + done),
                group_thousands(to),
                done as f64 / secs.max(1e-9)
            );
        })),
    })
    .await?;
    if r.errors > 0 {
        bail!(
            "fill {from}..{to}: {} errors; first: {}",
            r.errors,
            r.first_error.unwrap_or_default()
        );
    }
    Ok(count as f64 / t.elapsed().as_secs_f64().max(1e-9))
}

fn db_bytes(data: &std::path::Path) -> u64 {
    ["arca.db", "arca.db-wal", "arca.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Measures at store size `n`, then restarts the server (returned).
async fn measure(
    env: &Env,
    mut sys: System,
    n: u64,
    secs: f64,
    data: &std::path::Path,
    log: &std::path::Path,
) -> Result<(System, Figures)> {
    let mut f = Figures::default();
    let r = timed(&sys, 1, secs, get_random(n)).await?;
    f.errors += r.errors;
    (f.get_c1_p50, f.get_c1_p99) = (r.percentile_ms(0.5), r.percentile_ms(0.99));
    let r = timed(&sys, 16, secs, get_random(n)).await?;
    f.errors += r.errors;
    (f.get_c16_p50, f.get_c16_p99, f.get_c16_rps) =
        (r.percentile_ms(0.5), r.percentile_ms(0.99), r.rate());
    let r = timed(&sys, 1, secs, list(PREFIX.to_string())).await?;
    f.errors += r.errors;
    (f.list_broad_p50, f.list_broad_p99) = (r.percentile_ms(0.5), r.percentile_ms(0.99));
    // A prefix matching exactly 100 names in the middle of the key space.
    let mid = scale_name(n / 2 / 100 * 100);
    let narrow = mid[..mid.len() - 2].to_string();
    let r = timed(&sys, 1, secs, list(narrow)).await?;
    f.errors += r.errors;
    (f.list_narrow_p50, f.list_narrow_p99) = (r.percentile_ms(0.5), r.percentile_ms(0.99));
    f.rss_after_load = crate::procstat::rss_bytes(sys.process.pid()).unwrap_or(0);
    f.db_bytes = match &env.database {
        Some(url) => crate::systems::postgres_schema_bytes(url).unwrap_or(0),
        None => db_bytes(data),
    };

    // Restart: graceful stop, then time a fresh start until it serves a signed read.
    sys.process.stop(Duration::from_secs(30));
    drop(sys);
    let t = Instant::now();
    let sys = systems::start_arca_on(env, data, log).await?;
    let probe = || Req {
        method: hyper::Method::POST,
        path: "/".into(),
        target: Some("GetSecretValue"),
        body: format!(r#"{{"SecretId":"{}"}}"#, scale_name(n - 1)).into(),
    };
    loop {
        match load::call_once(sys.addr, &Proto::Aws, probe()).await {
            Ok(()) => break,
            Err(e) if t.elapsed() > Duration::from_secs(120) => {
                bail!("restarted server does not answer: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
    f.restart_secs = t.elapsed().as_secs_f64();
    f.rss_after_restart = crate::procstat::rss_bytes(sys.process.pid()).unwrap_or(0);
    Ok((sys, f))
}

pub async fn run(env: &Env, args: &ScaleArgs) -> Result<()> {
    if let Some(data) = &args.reuse {
        return measure_existing(env, args, data).await;
    }
    if args.secrets < BASE {
        bail!("--secrets must be at least {BASE}");
    }
    let dir = env.work.join("scale");
    let data = dir.join("data");
    let log = dir.join("log");
    systems::arca_init(env, &data)?;
    let sys = systems::start_arca_on(env, &data, &log).await?;
    eprintln!("arca-bench scale: Arca at {}; filling {BASE}", sys.addr);
    let small_rate = fill(&sys, 0, BASE, args.fill_concurrency).await?;
    eprintln!("arca-bench scale: measuring at {BASE}");
    let (sys, small) = measure(env, sys, BASE, args.duration, &data, &log).await?;
    let n = args.secrets;
    eprintln!("arca-bench scale: filling to {}", group_thousands(n));
    let t = Instant::now();
    let rate = if n > BASE {
        fill(&sys, BASE, n, args.fill_concurrency).await?
    } else {
        small_rate
    };
    let fill_secs = t.elapsed().as_secs_f64();
    eprintln!("arca-bench scale: measuring at {}", group_thousands(n));
    let (mut sys, big) = measure(env, sys, n, args.duration, &data, &log).await?;
    sys.process.stop(Duration::from_secs(30));
    drop(sys);
    if !args.common.keep {
        let _ = std::fs::remove_dir_all(&env.work);
    }

    let rows = table_rows(&small, &big);
    let mut out = format!(
        "Scale run: {}. Fill through the API (CreateSecret, 1 KB values, c{}): {} secrets in {:.0} s = {:.0} creates/s.\n\
         Latencies from {} s closed-loop runs over random secrets of the whole store.\n\n\
         | figure | at {} | at {} | ratio |\n|---|---:|---:|---:|\n",
        crate::machine(),
        args.fill_concurrency,
        group_thousands(n - BASE),
        fill_secs,
        rate,
        args.duration,
        group_thousands(BASE),
        group_thousands(n),
    );
    for (name, a, b, r) in rows {
        out.push_str(&format!("| {name} | {a} | {b} | {r} |\n"));
    }
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0);
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let p50_ratio = big.get_c1_p50 / small.get_c1_p50.max(1e-9);
    let list_ms = big.list_broad_p50.max(big.list_narrow_p50);
    out.push_str(&format!(
        "\nTarget checks at {} secrets (issue 4):\n\n    \
         {} GetSecretValue p50 (c1) ≤ 1.5× its value at 1,000: {p50_ratio:.2}×\n    \
         {} 100-item ListSecrets page < 20 ms (p50, worse of broad/narrow): {list_ms:.3} ms\n    \
         {} server RSS < 1 GiB: {}\n    \
         {} start-up < 2 s: {:.3} s\n",
        group_thousands(n),
        verdict(p50_ratio <= 1.5),
        verdict(list_ms < 20.0),
        verdict(big.rss_after_load < 1 << 30),
        mib(big.rss_after_load),
        verdict(big.restart_secs < 2.0),
        big.restart_secs,
    ));
    println!("{out}");
    if let Some(p) = &args.common.out {
        std::fs::write(p, &out)?;
    }
    Ok(())
}

/// How one figure is printed.
#[derive(Clone, Copy)]
enum Unit {
    Ms,
    Rate,
    Bytes,
    Secs,
    Count,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Ms => format!("{v:.3} ms"),
            Unit::Rate => format!("{v:.0}"),
            Unit::Bytes => format!("{:.1} MiB", v / 1024.0 / 1024.0),
            Unit::Secs => format!("{v:.3} s"),
            Unit::Count => format!("{v}"),
        }
    }
}

fn figure_list(f: &Figures) -> Vec<(&'static str, f64, Unit)> {
    vec![
        ("GetSecretValue c1 p50", f.get_c1_p50, Unit::Ms),
        ("GetSecretValue c1 p99", f.get_c1_p99, Unit::Ms),
        ("GetSecretValue c16 p50", f.get_c16_p50, Unit::Ms),
        ("GetSecretValue c16 p99", f.get_c16_p99, Unit::Ms),
        ("GetSecretValue c16 req/s", f.get_c16_rps, Unit::Rate),
        (
            "ListSecrets 100, broad prefix, p50",
            f.list_broad_p50,
            Unit::Ms,
        ),
        (
            "ListSecrets 100, broad prefix, p99",
            f.list_broad_p99,
            Unit::Ms,
        ),
        (
            "ListSecrets 100, narrow prefix, p50",
            f.list_narrow_p50,
            Unit::Ms,
        ),
        (
            "ListSecrets 100, narrow prefix, p99",
            f.list_narrow_p99,
            Unit::Ms,
        ),
        (
            "server RSS after load",
            f.rss_after_load as f64,
            Unit::Bytes,
        ),
        (
            "server RSS after restart + 1 read",
            f.rss_after_restart as f64,
            Unit::Bytes,
        ),
        ("restart to first signed read", f.restart_secs, Unit::Secs),
        // SQLite: the file with its WAL; PostgreSQL: the schema's tables, indexes, TOAST.
        ("database size", f.db_bytes as f64, Unit::Bytes),
        ("errors during measurement", f.errors as f64, Unit::Count),
    ]
}

/// (figure, at the small size, at the large size, ratio) for the report table.
fn table_rows(small: &Figures, big: &Figures) -> Vec<(&'static str, String, String, String)> {
    figure_list(small)
        .into_iter()
        .zip(figure_list(big))
        .map(|((name, a, unit), (_, b, _))| {
            let ratio = match unit {
                Unit::Count => String::new(),
                _ if a > 0.0 => format!("{:.2}×", b / a),
                _ => "—".into(),
            };
            (name, unit.show(a), unit.show(b), ratio)
        })
        .collect()
}

/// `--reuse`: measures a store an earlier `--keep` run filled, without filling.
async fn measure_existing(env: &Env, args: &ScaleArgs, data: &std::path::Path) -> Result<()> {
    if !data.join("arca.db").exists() || !data.join("root.key").exists() {
        bail!(
            "{} holds no arca.db and root.key from an earlier --keep run",
            data.display()
        );
    }
    let log = env.work.join("scale-log");
    std::fs::create_dir_all(&log)?;
    let sys = systems::start_arca_on(env, data, &log).await?;
    eprintln!(
        "arca-bench scale: Arca at {} on {}",
        sys.addr,
        data.display()
    );
    let (mut sys, f) = measure(env, sys, args.secrets, args.duration, data, &log).await?;
    sys.process.stop(Duration::from_secs(30));
    let mut out = format!(
        "Scale figures of an existing store ({} secrets assumed), {}:\n\n| figure | value |\n|---|---:|\n",
        group_thousands(args.secrets),
        crate::machine(),
    );
    for (name, v, unit) in figure_list(&f) {
        out.push_str(&format!("| {name} | {} |\n", unit.show(v)));
    }
    println!("{out}");
    Ok(())
}
