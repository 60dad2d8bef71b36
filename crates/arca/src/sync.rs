//! Sync jobs in the binary: turning `[[sync]]` entries (and jobs added with `arca sync
//! add`) into running jobs at server start, and the `arca sync` commands. `plan`, `run`
//! and `status` ask the running server (`ArcaSync.*`, signed with SigV4), which owns the
//! jobs, so a pass never overlaps one the server is running.

use crate::config::{self, SyncJobConfig};
use anyhow::{bail, Context, Result};
use arca_core::Arca;
use arca_jobs::remote::{RemoteConfig, RemoteCredentials, RemoteEndpoint};
use arca_jobs::sync::control::{Runner, SyncJobs, SyncWorkerJob};
use arca_jobs::sync::mapping::{Granularity, Mapping};
use arca_jobs::sync::plan::DeletionPolicy;
use arca_jobs::sync::source::{KvSource, KvVersion, SourceAuth, SourceConfig};
use arca_jobs::sync::target::SdkTarget;
use arca_jobs::sync::{Digester, JobSpec, SyncJob};

use arca_types::secret::SecretString;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How a job's target is reached, besides its own settings.
pub struct TargetContext {
    pub remotes: Vec<config::RemoteEndpointConfig>,
    /// This server's own URL and the CA that signed its certificate (if HTTPS).
    pub own_url: String,
    pub own_ca: Option<Vec<u8>>,
    /// The in-memory key the sync signs its calls into this Arca with.
    pub own_key: (String, SecretString),
    /// This Arca, which issues the sessions of a job's `role` (absent: no job may name one).
    pub arca: Option<Arc<arca_core::Arca>>,
}

/// A job's settings checked, before anything is connected: what `arca sync add` and the
/// server's start refuse.
pub fn check(
    cfg: &SyncJobConfig,
) -> Result<(JobSpec, Option<arca_core::schedule::RotationSchedule>)> {
    let n = &cfg.name;
    if n.is_empty()
        || n.len() > 64
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("sync job name {n:?}: 1 to 64 characters of letters, digits, - and _");
    }
    let policy = match (
        cfg.deletion.as_deref().unwrap_or("keep"),
        cfg.recovery_window_days,
    ) {
        ("keep", None) => DeletionPolicy::Keep,
        ("delete", days) => {
            let window_days = days.unwrap_or(30);
            if !(7..=30).contains(&window_days) {
                bail!("sync job {n}: recovery_window_days must be 7 to 30");
            }
            DeletionPolicy::Delete { window_days }
        }
        ("delete-now", None) => DeletionPolicy::DeleteNow,
        (p @ ("keep" | "delete-now"), Some(_)) => {
            bail!("sync job {n}: recovery_window_days goes with deletion = \"delete\", not {p:?}")
        }
        (other, _) => bail!("sync job {n}: deletion {other:?} is not keep, delete or delete-now"),
    };
    let granularity = match cfg.granularity.as_deref().unwrap_or("secret") {
        "secret" => Granularity::PerSecret,
        "key" => Granularity::PerKey,
        other => bail!("sync job {n}: granularity {other:?} is not secret or key"),
    };
    let src = &cfg.source;
    let mount = src.mount.clone().unwrap_or_else(|| "secret".into());
    let prefixes = if src.prefixes.is_empty() {
        vec![String::new()]
    } else {
        src.prefixes.clone()
    };
    let mapping = Mapping::new(
        &mount,
        &prefixes,
        src.recursive.unwrap_or(true),
        &src.include,
        &src.exclude,
        cfg.name_template.as_deref(),
        granularity,
    )
    .map_err(|e| anyhow::anyhow!("sync job {n}: {e}"))?;
    let schedule = match &cfg.schedule {
        None => None,
        Some(expr) => {
            if cfg.interval_secs.is_some() {
                bail!("sync job {n}: give interval_secs or schedule, not both");
            }
            let rules = arca_types::wire::RotationRules {
                schedule_expression: Some(expr.clone()),
                ..Default::default()
            };
            Some(
                arca_core::schedule::RotationSchedule::from_rules(&rules).map_err(|e| {
                    anyhow::anyhow!("sync job {n}: schedule {expr:?}: {}", e.message)
                })?,
            )
        }
    };
    let interval = Duration::from_secs(cfg.interval_secs.unwrap_or(300).max(1));
    kv_version(cfg)?;
    match (&src.token_file, &src.token_env, &src.approle_role_id) {
        (Some(_), None, None) | (None, Some(_), None) => {}
        (None, None, Some(_)) if src.approle_secret_id_file.is_some() => {}
        _ => bail!(
            "sync job {n}: give the source's token_file, or token_env, or approle_role_id with approle_secret_id_file"
        ),
    }
    if !(src.address.starts_with("http://") || src.address.starts_with("https://")) {
        bail!(
            "sync job {n}: source address {:?} is not an http(s) URL",
            src.address
        );
    }
    let region = cfg
        .target
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".into());
    if !arca_core::replication::valid_region(&region) {
        bail!("sync job {n}: {region:?} is not a region name");
    }
    if cfg.target.remote.is_some() && cfg.target.region.is_some() {
        bail!("sync job {n}: a remote target has its region in its [[remotes]] entry");
    }
    if cfg.target.remote.is_some() && cfg.target.role.is_some() {
        bail!("sync job {n}: a role is for writing into this Arca; a remote target has its own credentials");
    }
    Ok((
        JobSpec {
            name: n.clone(),
            mapping,
            policy,
            kms_key_id: cfg.kms_key_id.clone(),
            tags: cfg
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            interval,
            region,
        },
        schedule,
    ))
}

fn kv_version(cfg: &SyncJobConfig) -> Result<KvVersion> {
    Ok(match cfg.source.kv_version.as_deref().unwrap_or("auto") {
        "1" => KvVersion::V1,
        "2" => KvVersion::V2,
        "auto" => KvVersion::Auto,
        other => bail!(
            "sync job {}: kv_version {other:?} is not 1, 2 or auto",
            cfg.name
        ),
    })
}

/// The source's credentials, read now (files of mode 0600, or the named variable).
fn source_auth(cfg: &SyncJobConfig) -> Result<SourceAuth> {
    let src = &cfg.source;
    let text = |bytes: zeroize::Zeroizing<Vec<u8>>| -> Result<SecretString> {
        let s = String::from_utf8(bytes.to_vec()).context("credential file is not UTF-8")?;
        Ok(SecretString::new(s))
    };
    if let Some(f) = &src.token_file {
        return Ok(SourceAuth::Token(text(crate::read_private_file(f)?)?));
    }
    if let Some(var) = &src.token_env {
        let t = std::env::var(var).with_context(|| {
            format!(
                "sync job {}: ${var} (its source token) is not set",
                cfg.name
            )
        })?;
        return Ok(SourceAuth::Token(SecretString::new(t)));
    }
    match (&src.approle_role_id, &src.approle_secret_id_file) {
        (Some(role_id), Some(f)) => Ok(SourceAuth::AppRole {
            mount: src
                .approle_mount
                .clone()
                .unwrap_or_else(|| "approle".into()),
            role_id: role_id.clone(),
            secret_id: text(crate::read_private_file(f)?)?,
        }),
        _ => bail!("sync job {}: no source credentials", cfg.name),
    }
}

/// A job ready to run: source and target connected (nothing is called yet).
pub async fn build(
    cfg: &SyncJobConfig,
    ctx: &TargetContext,
    digest: Digester,
) -> Result<(SyncJob, Option<arca_core::schedule::RotationSchedule>)> {
    let (spec, schedule) = check(cfg)?;
    let src = &cfg.source;
    let kv_version = kv_version(cfg)?;
    let ca_pem = src
        .ca_file
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let source = KvSource::new(SourceConfig {
        address: src.address.clone(),
        namespace: src.namespace.clone(),
        mount: spec.mapping.mount.clone(),
        kv_version,
        auth: source_auth(cfg)?,
        ca_pem,
        timeout: Duration::from_secs(src.timeout_secs.unwrap_or(10)),
    })
    .map_err(|e| anyhow::anyhow!("sync job {}: {e}", cfg.name))?;
    let remote = match &cfg.target.remote {
        Some(name) => {
            let r = ctx
                .remotes
                .iter()
                .find(|r| &r.name == name)
                .with_context(|| {
                    format!(
                        "sync job {}: no [[remotes]] entry is named {name}",
                        cfg.name
                    )
                })?;
            crate::remote_config(r)?
        }
        // This Arca, through the same SDK path as any other endpoint.
        None => RemoteConfig {
            name: format!("this Arca ({})", spec.region),
            region: spec.region.clone(),
            endpoint: Some(ctx.own_url.clone()),
            credentials: match (&cfg.target.role, &ctx.arca) {
                (Some(role), Some(arca)) => {
                    RemoteCredentials::Role(arca_jobs::remote::RoleSessions {
                        arca: arca.clone(),
                        account: arca.account().to_owned(),
                        role: role.clone(),
                        session_name: format!("sync-{}", cfg.name).chars().take(64).collect(),
                    })
                }
                (Some(_), None) => bail!("sync job {}: a role needs the server", cfg.name),
                (None, _) => RemoteCredentials::Keys {
                    access_key_id: ctx.own_key.0.clone(),
                    secret_access_key: ctx.own_key.1.clone(),
                },
            },
            ca_pem: ctx.own_ca.clone(),
            timeout: Duration::from_secs(10),
        },
    };
    let endpoint = RemoteEndpoint::connect(remote)
        .await
        .map_err(|e| anyhow::anyhow!("sync job {}: {e}", cfg.name))?;
    Ok((
        SyncJob::new(spec, source, SdkTarget { endpoint }, digest),
        schedule,
    ))
}

/// Every job to run: the config file's, then the stored ones (a stored job named like a
/// config job is ignored, with a warning: the file wins).
pub async fn all_jobs(
    file: &[SyncJobConfig],
    store: &dyn arca_store::Store,
) -> Result<Vec<SyncJobConfig>> {
    let mut jobs: BTreeMap<String, SyncJobConfig> = BTreeMap::new();
    for j in file {
        if jobs.insert(j.name.clone(), j.clone()).is_some() {
            bail!("two [[sync]] jobs are named {}", j.name);
        }
    }
    for rec in store.list_sync_jobs().await? {
        if jobs.contains_key(&rec.name) {
            tracing::warn!(job = %rec.name, "a stored sync job has the name of a [[sync]] job of the config file; the file's is used");
            continue;
        }
        let cfg: SyncJobConfig = serde_json::from_value(rec.spec)
            .with_context(|| format!("stored sync job {}", rec.name))?;
        jobs.insert(rec.name.clone(), cfg);
    }
    Ok(jobs.into_values().collect())
}

/// How often a running server rereads the jobs added or removed with `arca sync`.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The running jobs: each in its own worker loop, stopped on its own when it is removed
/// or changed.
pub struct Supervisor {
    arca: Arc<Arca>,
    control: Arc<SyncJobs>,
    digest: Digester,
    leases: Arc<dyn arca_jobs::worker::Leases>,
    ctx: TargetContext,
    /// The config file's jobs, which only a restart changes.
    fixed: std::collections::BTreeSet<String>,
    running: BTreeMap<String, Running>,
}

struct Running {
    spec: serde_json::Value,
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Starts the config file's jobs and the stored ones, and installs the control the
    /// API reaches. A job that cannot start (a missing token file, say) stops the start.
    pub async fn start(
        arca: &Arc<Arca>,
        file: &[SyncJobConfig],
        ctx: TargetContext,
        digest: Digester,
        leases: Arc<dyn arca_jobs::worker::Leases>,
    ) -> Result<Self> {
        let control = Arc::new(SyncJobs::default());
        arca.set_sync_control(control.clone());
        let mut this = Self {
            arca: arca.clone(),
            control,
            digest,
            leases,
            ctx,
            fixed: file.iter().map(|j| j.name.clone()).collect(),
            running: BTreeMap::new(),
        };
        for cfg in all_jobs(file, arca.store().as_ref()).await? {
            this.launch(&cfg).await?;
        }
        Ok(this)
    }

    async fn launch(&mut self, cfg: &SyncJobConfig) -> Result<()> {
        let (job, schedule) = build(cfg, &self.ctx, self.digest.clone()).await?;
        let runner = Arc::new(Runner::new(Arc::new(job), self.arca.clone()));
        let interval = runner.job.spec.interval;
        // A scheduled job ticks every 30 s and passes when its window opens.
        let (tick, jitter) = match &schedule {
            Some(_) => (Duration::from_secs(30), Duration::ZERO),
            None => (
                interval,
                Duration::from_secs(
                    cfg.jitter_secs
                        .unwrap_or_else(|| (interval.as_secs() / 10).min(30)),
                ),
            ),
        };
        let worker = arca_jobs::worker::Worker::local(
            tick,
            Arc::new(tokio::sync::Notify::new()),
            self.leases.clone(),
        )
        .with_jitter(jitter);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let handle = tokio::spawn(worker.run(
            Arc::new(SyncWorkerJob::new(runner.clone(), schedule)),
            stopped,
        ));
        self.control.insert(runner);
        tracing::info!(job = %cfg.name, source = %cfg.source.address, "sync job started");
        self.running.insert(
            cfg.name.clone(),
            Running {
                spec: serde_json::to_value(cfg)?,
                stop,
                handle,
            },
        );
        Ok(())
    }

    async fn halt(&mut self, name: &str) {
        if let Some(r) = self.running.remove(name) {
            self.control.remove(name);
            let _ = r.stop.send(true);
            // A pass in flight finishes its writes first (bounded by the target timeouts).
            let _ = tokio::time::timeout(Duration::from_secs(30), r.handle).await;
            tracing::info!(job = name, "sync job stopped");
        }
    }

    /// Follows the stored jobs until `shutdown`: starts added ones, restarts changed ones,
    /// stops removed ones. Then stops every job.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RELOAD_EVERY) => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %format!("{e:#}"), "rereading the added sync jobs failed");
            }
        }
        let names: Vec<String> = self.running.keys().cloned().collect();
        for n in names {
            self.halt(&n).await;
        }
    }

    async fn reload(&mut self) -> Result<()> {
        let stored = self.arca.store().list_sync_jobs().await?;
        let mut wanted = BTreeMap::new();
        for rec in stored {
            if !self.fixed.contains(&rec.name) {
                wanted.insert(rec.name.clone(), rec.spec);
            }
        }
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(n, r)| {
                !self.fixed.contains(*n) && wanted.get(*n).is_none_or(|spec| *spec != r.spec)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for n in gone {
            self.halt(&n).await;
        }
        for (name, spec) in wanted {
            if self.running.contains_key(&name) {
                continue;
            }
            let cfg: SyncJobConfig = match serde_json::from_value(spec) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(job = %name, error = %e, "a stored sync job cannot be read");
                    continue;
                }
            };
            if let Err(e) = self.launch(&cfg).await {
                tracing::warn!(job = %name, error = %format!("{e:#}"), "an added sync job could not start");
            }
        }
        Ok(())
    }
}

/// Calls `ArcaSync.<op>` on the running server, signed with the AWS_ACCESS_KEY_ID /
/// AWS_SECRET_ACCESS_KEY pair of the environment.
pub async fn call(
    endpoint: &str,
    ca_file: Option<&std::path::Path>,
    op: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let (Ok(id), Ok(secret)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) else {
        bail!("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to a key of the server");
    };
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into());
    let url = reqwest::Url::parse(endpoint).with_context(|| format!("endpoint {endpoint}"))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => bail!("endpoint {endpoint} has no host"),
    };
    let target = format!("{}{op}", arca_core::sync::TARGET_PREFIX);
    let bytes = serde_json::to_vec(&body)?;
    let signed = arca_sigv4::sign_json_post(
        &host,
        &target,
        &bytes,
        &id,
        &SecretString::new(secret),
        &region,
    );
    let mut client = reqwest::Client::builder().timeout(Duration::from_secs(3600));
    if let Some(ca) = ca_file {
        for cert in reqwest::Certificate::from_pem_bundle(&std::fs::read(ca)?)? {
            client = client.add_root_certificate(cert);
        }
    }
    let resp = client
        .build()?
        .post(url)
        .header("content-type", arca_sigv4::JSON_CONTENT_TYPE)
        .header("x-amz-target", &target)
        .header("x-amz-date", &signed.x_amz_date)
        .header("authorization", &signed.authorization)
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("calling {endpoint} (is the server running?)"))?;
    let status = resp.status();
    let v: serde_json::Value = resp
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "{}: {}",
            v["__type"].as_str().unwrap_or("error"),
            v["message"]
                .as_str()
                .or(v["Message"].as_str())
                .unwrap_or("")
        );
    }
    Ok(v)
}
