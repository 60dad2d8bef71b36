//! Sync from Vault/OpenBao: one job copies a KV mount's entries under its prefixes into a
//! Secrets Manager target, one way. A pass lists the source (names, and KV v2 metadata),
//! lists the target's secrets that carry the job's ownership tag, plans from that
//! metadata alone (`plan`), then reads source values only for what it creates or
//! updates, and writes them with tokens derived from (job, path, source version), so a
//! retried write is a no-op. KV v1 has no versions: its values are read every pass and
//! compared by a keyed digest (HMAC-SHA256 under a key derived from Arca's root key).
//! The job runs in the shared [`Worker`](crate::worker::Worker) loop.

pub mod control;
pub mod mapping;
pub mod plan;
pub mod source;
pub mod target;

use arca_types::secret::SecretString;
use futures_util::stream::{self, StreamExt};
use mapping::{Granularity, Mapping, SourceRef};
use plan::{Action, DeletionPolicy, Existing, Step, Wanted};
use sha2::{Digest, Sha256};
use source::{EntryData, EntryMeta, KvSource, KvVersion, SourceError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use target::{SdkTarget, Write};

/// Source metadata requests and target writes in flight at once, at most.
const CONCURRENCY: usize = 16;

/// The lease a scheduled pass runs under. Each write first checks that it still holds
/// (the only check a write to another endpoint can have), and carries it to the target
/// ([`arca_store::FENCE_HEADER`]), so that an Arca target commits the write only while it
/// holds: a node that lost the job's lease in the middle of a pass writes nothing more.
pub struct Guard {
    pub store: Arc<dyn arca_store::Store>,
    pub fence: arca_store::Fence,
}

impl Guard {
    async fn check(&self) -> Result<(), String> {
        match self.store.lease_holds(&self.fence).await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the job's lease was lost: another node runs it now".into()),
            Err(e) => Err(format!("checking the job's lease failed: {e}")),
        }
    }
}

/// What a job is: where from, where to, how names map, what deletions do.
pub struct JobSpec {
    pub name: String,
    pub mapping: Mapping,
    pub policy: DeletionPolicy,
    pub kms_key_id: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Between passes (the worker adds jitter).
    pub interval: Duration,
    /// The region its events are recorded in (its target's region).
    pub region: String,
}

/// A keyed digest of a KV v1 value: `digest(label, value)` with a label naming the job
/// and entry. Its key never leaves the process.
pub type Digester = Arc<dyn Fn(&str, &[u8]) -> String + Send + Sync>;

/// One failed entry of a pass: its target name and what went wrong (no values).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub name: String,
    pub source: Option<String>,
    pub error: String,
}

/// What a pass did (or, for a plan, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub job: String,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    /// "ok", "partial" (some entries failed) or "failed" (the pass stopped).
    pub outcome: String,
    pub error: Option<String>,
    /// Source entries taken by the job's prefixes and globs.
    pub listed: u64,
    /// Steps by action (create, update, unchanged, delete, keep, conflict, invalid, ...).
    pub counts: BTreeMap<String, u64>,
    pub failed: u64,
    pub failures: Vec<Failure>,
    /// Requests made to the source, and how many of them read secret material.
    pub source_requests: u64,
    pub source_value_reads: u64,
    /// Target requests made (list pages and writes).
    pub target_requests: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<PlannedStep>,
}

/// A step as `arca sync plan` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedStep {
    pub name: String,
    pub source: Option<String>,
    pub action: &'static str,
    pub why: String,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The ClientRequestToken of a write: derived from (job, entry, source version), so the
/// same version written twice is one version in the target. Formatted as a UUID.
pub fn write_token(job: &str, label: &str, stamp: &str) -> String {
    let mut h = Sha256::new();
    for part in ["arca-sync/v1", job, label, stamp] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let x = hex::encode(&h.finalize()[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

pub struct SyncJob {
    pub spec: JobSpec,
    source: KvSource,
    target: SdkTarget,
    digest: Digester,
    /// One pass at a time (the worker's and `run now` requests).
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<Report>>,
    /// The start of the last pass that did not fail as a whole.
    last_good_start: Mutex<Option<u64>>,
    /// Entries whose change a pass saw but could not write yet, with when it first saw
    /// them (what the status's lag is measured from).
    pending: Mutex<HashMap<String, u64>>,
    progress: Progress,
}

/// Where a running pass is, for `arca sync status` on long passes.
#[derive(Default)]
pub struct Progress {
    phase: Mutex<&'static str>,
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn start(&self, phase: &'static str, total: u64) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    fn step(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// (phase, done, total); the phase is empty between passes.
    pub fn get(&self) -> (&'static str, u64, u64) {
        (
            *self.phase.lock().unwrap_or_else(|p| p.into_inner()),
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// An entry's values, once read, kept for the writes of this pass only.
type Values = HashMap<String, EntryData>;

impl SyncJob {
    pub fn new(spec: JobSpec, source: KvSource, target: SdkTarget, digest: Digester) -> Self {
        Self {
            spec,
            source,
            target,
            digest,
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            last_good_start: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            progress: Progress::default(),
        }
    }

    /// Where it reads from and writes to, as the status shows it (no credentials).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source.describe(),
            "mount": self.spec.mapping.mount,
            "prefixes": self.spec.mapping.prefixes,
            "target": self.target.endpoint.name(),
            "interval_secs": self.spec.interval.as_secs(),
        })
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Whether a pass is running now.
    pub fn is_running(&self) -> bool {
        self.running.try_lock().is_err()
    }

    /// How far behind the target may be, in ms at `now`: since the oldest change a pass
    /// saw and could not write; after a pass that failed as a whole (the source was
    /// unreadable), since the start of the last pass that did not fail, an upper bound;
    /// 0 when the last pass wrote everything it saw. `last` is the last pass's report.
    pub fn lag_ms(&self, last: &Report, now: u64) -> u64 {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let oldest_pending = pending.values().min().copied();
        let since = if last.outcome == "failed" {
            let good = *self
                .last_good_start
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            [good.or(last.started), oldest_pending]
                .into_iter()
                .flatten()
                .min()
        } else {
            oldest_pending
        };
        since.map_or(0, |t| now.saturating_sub(t))
    }

    /// The last finished pass's report.
    pub fn last_report(&self) -> Option<Report> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One pass: writes unless `dry_run` (then only plans, and reads no secret material
    /// for KV v2). With `only`, the pass looks at those source paths alone (and at the
    /// target secrets synced from them): what the push trigger asks for. With `guard`,
    /// every write is made under that lease.
    pub async fn pass(&self, dry_run: bool, only: &[String], guard: Option<&Guard>) -> Report {
        let _one = self.running.lock().await;
        let job = self.spec.name.clone();
        let (req0, reads0) = (
            self.source.requests.load(Ordering::Relaxed),
            self.source.data_reads.load(Ordering::Relaxed),
        );
        let mut report = Report {
            job,
            started: Some(unix_ms()),
            ..Default::default()
        };
        let result = self.pass_inner(dry_run, only, guard, &mut report).await;
        self.progress.start("", 0);
        match result {
            Ok(()) => {
                report.outcome = if report.failed > 0 { "partial" } else { "ok" }.into();
            }
            Err(e) => {
                report.outcome = "failed".into();
                report.error = Some(e);
            }
        }
        report.source_requests = self.source.requests.load(Ordering::Relaxed) - req0;
        report.source_value_reads = self.source.data_reads.load(Ordering::Relaxed) - reads0;
        report.finished = Some(unix_ms());
        if !dry_run {
            if report.outcome != "failed" {
                *self
                    .last_good_start
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = report.started;
            }
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        }
        report
    }

    async fn pass_inner(
        &self,
        dry_run: bool,
        only: &[String],
        guard: Option<&Guard>,
        report: &mut Report,
    ) -> Result<(), String> {
        let src = |e: SourceError| format!("source: {e}");
        self.source.check_token().await.map_err(src)?;
        let version = self.source.kv_version().await.map_err(src)?;
        // Every entry under the prefixes, each once, with the prefix it falls under.
        let mut paths: BTreeMap<String, String> = BTreeMap::new();
        self.progress.start("listing source", 0);
        if only.is_empty() {
            let roots: BTreeSet<&String> = self.spec.mapping.prefixes.iter().collect();
            for root in roots {
                for p in self.source.list_tree(root).await.map_err(src)? {
                    if let Some(prefix) = self.spec.mapping.prefix_of(&p) {
                        paths.insert(p.clone(), prefix.to_owned());
                    }
                }
            }
        } else {
            // Paths outside the job's prefixes and globs are not the job's to touch.
            for p in only {
                if let Some(prefix) = self.spec.mapping.prefix_of(p) {
                    paths.insert(p.clone(), prefix.to_owned());
                }
            }
        }
        report.listed = paths.len() as u64;
        self.progress.start("listing target", 0);
        let tgt = |e: target::TargetError| format!("target: {}", e.message);
        let mut existing = Vec::new();
        if only.is_empty() {
            existing = self
                .target
                .owned(&self.spec.name, None)
                .await
                .map_err(tgt)?;
            report.target_requests += 1 + existing.len() as u64 / 100;
        } else {
            for p in paths.keys() {
                let mut some = self
                    .target
                    .owned(&self.spec.name, Some(p))
                    .await
                    .map_err(tgt)?;
                report.target_requests += 1;
                existing.append(&mut some);
            }
        }

        let mut values: Values = HashMap::new();
        let wanted = match version {
            KvVersion::V2 => self.wanted_v2(&paths, &existing, &mut values).await?,
            _ => self.wanted_v1(&paths, &mut values).await?,
        };
        let steps = plan::plan(
            &self.spec.name,
            wanted,
            existing,
            self.spec.policy,
            mapping::refused_name,
        );
        for s in &steps {
            *report.counts.entry(s.action.word().to_owned()).or_insert(0) += 1;
            if let Action::Invalid(why) | Action::Conflict(why) = &s.action {
                report.failures.push(Failure {
                    name: s.name.clone(),
                    source: s.source.as_ref().map(SourceRef::label),
                    error: why.clone(),
                });
            }
        }
        report.failed = report
            .failures
            .iter()
            .filter(|f| !f.error.is_empty())
            .count() as u64;
        if dry_run {
            report.steps = steps
                .iter()
                .map(|s| PlannedStep {
                    name: s.name.clone(),
                    source: s.source.as_ref().map(SourceRef::label),
                    action: s.action.word(),
                    why: s.why.clone(),
                })
                .collect();
            return Ok(());
        }
        let values = tokio::sync::Mutex::new(values);
        let writes: Vec<Step> = steps.into_iter().filter(|s| s.action.writes()).collect();
        self.progress.start("writing", writes.len() as u64);
        let outcomes: Vec<(Step, Result<(), String>)> = stream::iter(writes)
            .map(|s| async {
                let r = self.apply(&s, &values, guard).await;
                self.progress.step();
                (s, r)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let now = unix_ms();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if only.is_empty() {
            // What this pass did not see is no longer pending (gone from the source).
            let seen: BTreeSet<String> = outcomes.iter().map(|(s, _)| s.name.clone()).collect();
            pending.retain(|name, _| seen.contains(name));
        }
        for (s, r) in outcomes {
            if r.is_ok() {
                pending.remove(&s.name);
            } else {
                pending
                    .entry(s.name.clone())
                    .or_insert(report.started.unwrap_or(now));
            }
            report.target_requests += match s.action {
                Action::Update | Action::Restore => 2,
                _ => 1,
            };
            if let Err(e) = r {
                let word = s.action.word().to_owned();
                if let Some(n) = report.counts.get_mut(&word) {
                    *n -= 1;
                }
                // A name taken meanwhile by a secret the job does not own.
                let kind = if e.starts_with("conflict:") {
                    "conflict"
                } else {
                    "failed"
                };
                *report.counts.entry(kind.to_owned()).or_insert(0) += 1;
                report.failed += 1;
                report.failures.push(Failure {
                    name: s.name.clone(),
                    source: s.source.as_ref().map(SourceRef::label),
                    error: e,
                });
            }
        }
        Ok(())
    }

    /// KV v2: metadata of every entry (concurrently), then the wanted values. Per-key
    /// entries whose version the target already holds keep the keys the target has;
    /// changed ones are read now, since their keys decide the names.
    async fn wanted_v2(
        &self,
        paths: &BTreeMap<String, String>,
        existing: &[Existing],
        values: &mut Values,
    ) -> Result<Vec<Wanted>, String> {
        self.progress.start("reading metadata", paths.len() as u64);
        let metas: Vec<(String, Result<Option<EntryMeta>, SourceError>)> =
            stream::iter(paths.keys().cloned())
                .map(|p| async move {
                    let m = self.source.metadata(&p).await;
                    self.progress.step();
                    (p, m)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut wanted = Vec::new();
        for (path, meta) in metas {
            let meta = match meta {
                Ok(Some(m)) => m,
                // Deleted between the list and now: its target secrets become orphans.
                Ok(None) => continue,
                // A source that fails mid-pass fails the pass: deleting on a partial
                // view would be wrong.
                Err(e) => return Err(format!("source: {e}")),
            };
            let prefix = &paths[&path];
            let stamp = (!meta.current_gone).then(|| format!("{}@{}", meta.version, meta.created));
            let version = Some(meta.version);
            match self.spec.mapping.granularity {
                Granularity::PerSecret => wanted.push(Wanted {
                    source: SourceRef {
                        path: path.clone(),
                        key: None,
                    },
                    name: self.spec.mapping.name(prefix, &path, None),
                    stamp,
                    version,
                }),
                Granularity::PerKey => {
                    let held: Vec<&Existing> = existing
                        .iter()
                        .filter(|e| e.source_path.as_deref() == Some(path.as_str()))
                        .collect();
                    let current =
                        !held.is_empty() && held.iter().all(|e| e.stamp == stamp && !e.deleted);
                    let keys: Vec<String> = if stamp.is_none() || current {
                        held.iter().filter_map(|e| e.source_key.clone()).collect()
                    } else {
                        match self.source.read(&path, version).await {
                            Ok(Some(d)) => {
                                let keys = d.pairs.iter().map(|(k, _)| k.clone()).collect();
                                values.insert(path.clone(), d);
                                keys
                            }
                            Ok(None) => continue,
                            Err(e) => return Err(format!("source: {e}")),
                        }
                    };
                    for key in keys {
                        wanted.push(Wanted {
                            name: self.spec.mapping.name(prefix, &path, Some(&key)),
                            source: SourceRef {
                                path: path.clone(),
                                key: Some(key),
                            },
                            stamp: stamp.clone(),
                            version,
                        });
                    }
                }
            }
        }
        Ok(wanted)
    }

    /// KV v1: no versions, so every value is read and stamped with its keyed digest.
    async fn wanted_v1(
        &self,
        paths: &BTreeMap<String, String>,
        values: &mut Values,
    ) -> Result<Vec<Wanted>, String> {
        self.progress
            .start("reading values (KV v1)", paths.len() as u64);
        let read: Vec<(String, Result<Option<EntryData>, SourceError>)> =
            stream::iter(paths.keys().cloned())
                .map(|p| async move {
                    let d = self.source.read(&p, None).await;
                    self.progress.step();
                    (p, d)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut wanted = Vec::new();
        for (path, data) in read {
            let data = match data {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) => return Err(format!("source: {e}")),
            };
            let prefix = &paths[&path];
            let stamp = |label: &str, v: &SecretString| {
                (self.digest)(
                    &format!("sync/{}/{label}", self.spec.name),
                    v.expose().as_bytes(),
                )
            };
            match self.spec.mapping.granularity {
                Granularity::PerSecret => wanted.push(Wanted {
                    name: self.spec.mapping.name(prefix, &path, None),
                    stamp: Some(stamp(&path, &data.json)),
                    source: SourceRef {
                        path: path.clone(),
                        key: None,
                    },
                    version: None,
                }),
                Granularity::PerKey => {
                    for (k, v) in &data.pairs {
                        let r = SourceRef {
                            path: path.clone(),
                            key: Some(k.clone()),
                        };
                        wanted.push(Wanted {
                            name: self.spec.mapping.name(prefix, &path, Some(k)),
                            stamp: Some(stamp(&r.label(), v)),
                            source: r,
                            version: None,
                        });
                    }
                }
            }
            values.insert(path, data);
        }
        Ok(wanted)
    }

    /// Carries out one writing step.
    async fn apply(
        &self,
        s: &Step,
        values: &tokio::sync::Mutex<Values>,
        guard: Option<&Guard>,
    ) -> Result<(), String> {
        if let Some(g) = guard {
            g.check().await?;
        }
        let fence = guard.map(|g| &g.fence);
        let t = |e: target::TargetError| {
            if e.exists {
                format!("conflict: {}", e.message)
            } else {
                e.message
            }
        };
        if let Action::Delete { force, window_days } = s.action {
            return self
                .target
                .delete(&s.name, force, window_days, fence)
                .await
                .map_err(t);
        }
        let (Some(source), Some(stamp)) = (&s.source, &s.stamp) else {
            return Err("internal: a write without a source".into());
        };
        let value = self.value_of(source, s.version, values).await?;
        let label = source.label();
        let token = write_token(&self.spec.name, &label, stamp);
        let description = format!(
            "Synced by Arca job {} from {}/{}",
            self.spec.name, self.spec.mapping.mount, source.path
        );
        let w = Write {
            name: &s.name,
            value: &value,
            token: &token,
            job: &self.spec.name,
            source_path: &source.path,
            source_key: source.key.as_deref(),
            stamp,
            kms_key_id: self.spec.kms_key_id.as_deref(),
            extra_tags: &self.spec.tags,
            description: &description,
        };
        match s.action {
            Action::Create => self.target.create(&w, fence).await.map_err(t),
            Action::Update => self.target.update(&w, fence).await.map_err(t),
            Action::Restore => {
                self.target.restore(&s.name, fence).await.map_err(t)?;
                self.target.update(&w, fence).await.map_err(t)
            }
            _ => Ok(()),
        }
    }

    /// The value a step writes: from this pass's reads, or read now (at the version the
    /// metadata named, so value and version tag agree).
    async fn value_of(
        &self,
        source: &SourceRef,
        version: Option<u64>,
        values: &tokio::sync::Mutex<Values>,
    ) -> Result<SecretString, String> {
        let pick = |d: &EntryData| -> Option<SecretString> {
            match &source.key {
                None => Some(d.json.clone()),
                Some(k) => d
                    .pairs
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone()),
            }
        };
        if let Some(d) = values.lock().await.get(&source.path) {
            return pick(d).ok_or_else(|| format!("{} has no key {:?}", source.path, source.key));
        }
        let d = self
            .source
            .read(&source.path, version)
            .await
            .map_err(|e| format!("source: {e}"))?
            .ok_or_else(|| format!("source: {} is gone (deleted during the pass)", source.path))?;
        let v = pick(&d);
        values.lock().await.insert(source.path.clone(), d);
        v.ok_or_else(|| format!("{} has no key {:?}", source.path, source.key))
    }
}
