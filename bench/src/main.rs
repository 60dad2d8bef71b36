//! `arca-bench`: races Arca against its peers and a bare hyper ceiling in one run and
//! prints one markdown table of medians with "Arca ÷ this" ratios, then the target checks of
//! issue 4. Flow: start every system (peers installed into virtualenvs on first use) ->
//! seed each with the hot set -> for each workload, for each repetition, run every system
//! back to back (rotating who goes first) -> stop them all -> report. `arca-bench scale`
//! fills Arca with many secrets and compares figures at 1,000 and at N; `arca-bench
//! ceiling` is the ceiling server itself. Never run as a timed test in CI: CI runs `--tiny`
//! once to prove the instrument works.

mod ceiling;
mod invalidation;
mod load;
mod procstat;
mod replication;
mod report;
mod scale;
mod sync;
mod systems;
mod workloads;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use load::{LoadSpec, Stop};
use report::{applies, Cell, Results};
use systems::{Env, Kind, System};
use workloads::Workload;

#[derive(Parser)]
#[command(
    name = "arca-bench",
    about = "Benchmark Arca against moto, LocalStack, OpenBao and a bare hyper ceiling, in one run",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// The ceiling server: reads each request body, answers a canned 1 KB GetSecretValue.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Fill Arca with many secrets and compare latency, RSS and restart time with 1,000.
    Scale(scale::ScaleArgs),
    /// Two deployments: replication lag at 100 and 1,000 writes/s, and PutSecretValue
    /// rate with 0, 1 and 2 replica regions.
    Replication(replication::ReplicationArgs),
    /// Sync from OpenBao: 10,000 secrets, the first and an unchanged pass, OpenBao's own
    /// rate, and the lag with the push trigger and with a 30 s interval.
    Sync(sync::SyncArgs),
}

#[derive(Args, Clone)]
pub struct CommonArgs {
    /// The arca binary. Default: `cargo build --release -p arca`, then target/release/arca.
    #[arg(long)]
    arca_bin: Option<PathBuf>,
    /// Databases and logs go here (default target/arca-bench); removed afterwards unless --keep.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep databases and server logs.
    #[arg(long)]
    keep: bool,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Measured seconds per cell (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds per cell (not measured). Two: in per-request traces, both Arca and
    /// the ceiling answered slowly for the first ~1.2 s after a cell's connections opened.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Repetitions of every cell; the table shows medians.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Systems, comma-separated: arca,ceiling,moto,localstack,openbao.
    #[arg(long, default_value = "arca,ceiling,moto,localstack,openbao")]
    systems: String,
    /// Workloads, comma-separated: get, get1, get16, get64, put, put1, put16, list, mixed, create.
    #[arg(long, default_value = "get,put,list,mixed,create")]
    workloads: String,
    /// Size of the hot set the reads pick from.
    #[arg(long, default_value_t = 1000)]
    hot_set: usize,
    /// Size of the set PutSecretValue cells and the mixed run's writes pick from, kept apart
    /// from the hot set and large enough that no secret reaches the 100-version quota during
    /// a run (a full run writes ~420,000 versions at this machine's best speed).
    #[arg(long, default_value_t = 20_000)]
    write_set: usize,
    /// Smoke mode for CI: Arca and the ceiling only, 1 repetition, half-second cells, a hot
    /// set of 100; fails if Arca answers any request with an error.
    #[arg(long)]
    tiny: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Resolves paths and, unless `--arca-bin` was given, builds the release binary of Arca.
fn make_env(common: &CommonArgs) -> Result<Env> {
    let root = repo_root();
    let arca_bin = match &common.arca_bin {
        Some(p) => p.clone(),
        None => {
            eprintln!("arca-bench: cargo build --release -p arca");
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "-p", "arca"])
                .current_dir(&root)
                .status()
                .context("running cargo build")?;
            if !status.success() {
                bail!("cargo build --release -p arca failed");
            }
            root.join("target/release/arca")
        }
    };
    let arca_bin = if arca_bin.is_relative() {
        std::env::current_dir()?.join(arca_bin)
    } else {
        arca_bin
    };
    if !arca_bin.exists() {
        bail!("no arca binary at {}", arca_bin.display());
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let work = common
        .work_dir
        .clone()
        .unwrap_or_else(|| root.join("target/arca-bench"))
        .join(format!("run-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| {
        let has311 = Command::new("python3.11")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if has311 { "python3.11" } else { "python3" }.to_string()
    });
    Ok(Env {
        root,
        work,
        arca_bin,
        self_bin: std::env::current_exe()?,
        python,
        database: None,
    })
}

/// The machine, for the report header.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("? GiB".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), {mem} RAM, Linux {kernel}")
}

/// Seeds the hot set: CreateSecret (or a KV v2 write) of `hot` 1 KB secrets at c16.
async fn seed(sys: &System, hot: usize, write_set: usize) -> Result<()> {
    if sys.kind == Kind::Ceiling {
        return Ok(());
    }
    for (count, name_of) in [
        (hot, workloads::hot_name_u64 as fn(u64) -> String),
        (write_set, workloads::write_name_u64),
    ] {
        // moto and LocalStack answer concurrent CreateSecret calls with HTTP 500s now and
        // then (their own races: "dictionary changed size during iteration"): they are
        // seeded one request at a time.
        let concurrency = match sys.kind {
            Kind::Moto | Kind::LocalStack => 1,
            _ => 16,
        };
        let r = load::run(LoadSpec {
            addr: sys.addr,
            also: Vec::new(),
            proto: sys.proto(),
            concurrency,
            stop: Stop::Count(count as u64),
            generator: workloads::seed(sys.proto(), name_of, 0),
            server_pgid: None,
            progress: None,
        })
        .await?;
        if r.errors > 0 {
            bail!(
                "seeding {count} secrets: {} errors, first: {}",
                r.errors,
                r.first_error.unwrap_or_default()
            );
        }
    }
    if sys.kind == Kind::ArcaPolicies {
        let r = load::run(LoadSpec {
            addr: sys.addr,
            also: Vec::new(),
            proto: sys.proto(),
            concurrency: 16,
            stop: Stop::Count(hot as u64),
            generator: workloads::put_policies(systems::resource_policy()),
            server_pgid: None,
            progress: None,
        })
        .await?;
        if r.errors > 0 {
            bail!(
                "attaching resource policies: {} errors, first: {}",
                r.errors,
                r.first_error.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// A server that died between cells: Arca is restarted on the same database (and the death
/// reported in the errors section: it is a finding, whatever killed it); a dead peer is
/// reported unavailable from then on.
async fn ensure_alive(
    env: &Env,
    running: &mut BTreeMap<Kind, System>,
    results: &mut Results,
    k: Kind,
) -> bool {
    let Some(sys) = running.get_mut(&k) else {
        return false;
    };
    let Some(status) = sys.process.exited() else {
        return true;
    };
    let tail = sys.process.log_tail();
    eprintln!(
        "arca-bench: {} exited during the run ({status}): {tail}",
        k.name()
    );
    running.remove(&k);
    if k != Kind::Arca {
        results
            .unavailable
            .insert(k, format!("exited during the run ({status})"));
        return false;
    }
    results.restarts.push(format!(
        "arca exited during the run ({status}; last output: {tail:?}); restarted on the same database"
    ));
    let dir = env.work.join(k.name());
    let log = dir.join(format!("log-restart-{}", results.restarts.len()));
    match systems::start_arca_on(env, &dir.join("data"), &log).await {
        Ok(sys) => {
            running.insert(k, sys);
            true
        }
        Err(e) => {
            results
                .restarts
                .push(format!("restarting arca failed: {e:#}"));
            false
        }
    }
}

async fn bench(args: RunArgs) -> Result<()> {
    let (duration, warmup, reps, hot, write_set, systems_arg) = if args.tiny {
        (0.5, 0.1, 1, 100, 100, "arca,ceiling".to_string())
    } else {
        (
            args.duration,
            args.warmup,
            args.reps.max(1),
            args.hot_set.max(1),
            args.write_set.max(1),
            args.systems.clone(),
        )
    };
    let mut kinds = Vec::new();
    for s in systems_arg.split(',').filter(|s| !s.trim().is_empty()) {
        let k = Kind::parse(s)?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if !kinds.contains(&Kind::Arca) {
        kinds.insert(0, Kind::Arca);
    }
    let workloads = Workload::parse_list(&args.workloads)?;
    let env = make_env(&args.common)?;
    let started = Instant::now();

    let mut results = Results {
        systems: kinds.clone(),
        workloads: workloads.clone(),
        ..Default::default()
    };
    let mut running: BTreeMap<Kind, System> = BTreeMap::new();
    for &k in &kinds {
        eprintln!("arca-bench: starting {}", k.name());
        let dir = env.work.join(k.name());
        let t = Instant::now();
        let sys = match systems::start(&env, k, &dir).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("arca-bench: {} unavailable: {e:#}", k.name());
                results.unavailable.insert(k, format!("{e:#}"));
                continue;
            }
        };
        let t_seed = Instant::now();
        if let Err(e) = seed(&sys, hot, write_set).await {
            eprintln!("arca-bench: {} unavailable: {e:#}", k.name());
            results.unavailable.insert(k, format!("{e:#}"));
            continue;
        }
        let seeded = if k == Kind::Ceiling {
            "nothing to seed".to_string()
        } else {
            format!(
                "seeded {hot} + {write_set} secrets in {:.1} s",
                t_seed.elapsed().as_secs_f64()
            )
        };
        eprintln!(
            "arca-bench: {} at {} (started in {:.1} s, {seeded})",
            k.name(),
            sys.addr,
            (t_seed - t).as_secs_f64(),
        );
        running.insert(k, sys);
    }
    if !running.contains_key(&Kind::Arca) {
        bail!(
            "Arca did not start: {}",
            results
                .unavailable
                .get(&Kind::Arca)
                .cloned()
                .unwrap_or_default()
        );
    }

    let stop = Stop::Timed {
        warmup: Duration::from_secs_f64(warmup),
        measure: Duration::from_secs_f64(duration),
    };
    for w in &workloads {
        for rep in 0..reps {
            // Rotate who goes first so no system always runs on a cold (or hot) machine.
            let order: Vec<Kind> = {
                let list: Vec<Kind> = kinds
                    .iter()
                    .copied()
                    .filter(|k| applies(*k, w) && running.contains_key(k))
                    .collect();
                let n = list.len().max(1);
                (0..list.len()).map(|i| list[(i + rep) % n]).collect()
            };
            for k in order {
                if !ensure_alive(&env, &mut running, &mut results, k).await {
                    continue;
                }
                let Some(sys) = running.get(&k) else { continue };
                // The machine to itself: every other system is stopped for the cell.
                let others: Vec<&System> = running
                    .iter()
                    .filter(|(o, _)| **o != k)
                    .map(|(_, s)| s)
                    .collect();
                for o in &others {
                    o.process.pause();
                }
                let tag = format!("r{rep}");
                let r = load::run(LoadSpec {
                    addr: sys.addr,
                    also: sys.also.iter().map(|s| s.addr).collect(),
                    proto: sys.proto(),
                    concurrency: w.concurrency,
                    stop,
                    generator: workloads::generator(sys.proto(), w.op, hot, write_set, tag),
                    server_pgid: Some(sys.process.pgid()),
                    progress: None,
                })
                .await;
                for o in &others {
                    o.process.resume();
                }
                let cell = match r {
                    Ok(r) => {
                        if let Some(e) = &r.first_error {
                            results.first_errors.entry((*w, k)).or_insert(e.clone());
                        }
                        let c = Cell::from_result(&r);
                        eprintln!(
                            "  {} c{} rep {}/{reps} {:<10} {:>9.0} req/s  p50 {:.3} p99 {:.3} ms  errors {}  client CPU {:.0}%",
                            w.op.label(),
                            w.concurrency,
                            rep + 1,
                            k.name(),
                            c.rps,
                            c.p50,
                            c.p99,
                            c.errors,
                            c.client_cpu
                        );
                        Some(c)
                    }
                    Err(e) => {
                        results
                            .first_errors
                            .entry((*w, k))
                            .or_insert(format!("{e:#}"));
                        None
                    }
                };
                results.runs.entry((*w, k)).or_default().push(cell);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if let Some(sys) = running.get(&Kind::ArcaPostgres2) {
        eprintln!("arca-bench: cross-node invalidation delay (arca-postgres-2)");
        results.invalidation = Some(
            invalidation::measure(sys, 200)
                .await
                .map(|d| {
                    eprintln!(
                        "  {} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                        d.samples, d.p50_ms, d.p99_ms, d.max_ms
                    );
                    (d.samples, d.p50_ms, d.p99_ms, d.max_ms)
                })
                .map_err(|e| format!("{e:#}")),
        );
    }
    for (_, mut sys) in std::mem::take(&mut running) {
        sys.process.stop(Duration::from_secs(5));
    }
    if !args.common.keep {
        let _ = std::fs::remove_dir_all(&env.work);
    }

    let mut out = String::new();
    out.push_str(&format!(
        "Machine: {}. Arca: {} (production mode: root key file, on-disk SQLite, synchronous=FULL).\n\
         {reps} repetition(s) per cell, {duration} s measured after {warmup} s warm-up, hot set of {hot} secrets of 1 KB (PutSecretValue cells and the mixed run's writes go to a separate set of {write_set}); \
         figures are medians over repetitions; \"Arca ÷ this\" is the median of per-repetition rate ratios. \
         Client CPU is the load generator's own (user+sys, % of one core); server CPU is the server's process group; other CPU is everything else the machine ran meanwhile (noise: other people's builds). \
         Total wall time {:.0} s.\n\n",
        machine(),
        env.arca_bin.display(),
        started.elapsed().as_secs_f64()
    ));
    out.push_str(&results.table());
    out.push_str("\nTarget checks (issue 4):\n\n");
    for line in results.target_checks() {
        out.push_str(&format!("    {line}\n"));
    }
    for r in &results.restarts {
        out.push_str(&format!("\nWARNING: {r}\n"));
    }
    let notes = results.error_notes();
    if !notes.is_empty() {
        out.push_str("\nErrors:\n\n");
        out.push_str(&notes);
    }
    println!("{out}");
    if let Some(path) = &args.common.out {
        std::fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
    }

    if args.tiny {
        let arca_errors: u64 = results
            .runs
            .iter()
            .filter(|((_, k), _)| *k == Kind::Arca)
            .flat_map(|(_, v)| v.iter())
            .map(|c| {
                c.as_ref()
                    .map_or(1, |c| c.errors + u64::from(c.requests == 0))
            })
            .sum();
        if !results.restarts.is_empty() {
            bail!("tiny run: Arca died during the run");
        }
        if arca_errors > 0 {
            bail!("tiny run: Arca answered {arca_errors} request(s) with errors (or ran none)");
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Replication(a)) = &cli.command {
        replication::pin_load_generator(a)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if let Some(Cmd::Ceiling { listen }) = &cli.command {
            return ceiling::serve(*listen).await;
        }
        // Ctrl-C or a kill must not leave servers behind.
        tokio::spawn(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("arca-bench: interrupted; stopping servers");
            systems::kill_all();
            std::process::exit(130);
        });
        match cli.command {
            Some(Cmd::Scale(a)) => {
                let mut env = make_env(&a.common)?;
                if a.postgres {
                    env.database = Some(systems::postgres_schema("arca_scale")?);
                }
                let ran = scale::run(&env, &a).await;
                // A million secrets take gigabytes; keep them only when asked to.
                if a.postgres && !a.common.keep {
                    if let Err(e) = systems::drop_postgres_schema("arca_scale") {
                        eprintln!("arca-bench: {e:#}");
                    }
                }
                ran
            }
            Some(Cmd::Replication(a)) => {
                let env = make_env(&a.common)?;
                replication::run(&env, &a).await
            }
            Some(Cmd::Sync(a)) => {
                let env = make_env(&a.common)?;
                sync::run(&env, &a).await
            }
            _ => bench(cli.run).await,
        }
    })
}
