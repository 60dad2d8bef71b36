//! Running sync jobs: each job's worker loop, the passes the API asks for (the push
//! trigger, `arca sync run` and `plan`), the status, and the events a pass leaves in the
//! trail (`SyncSucceeded`, `SyncFailed`), which rules can route to webhooks.

use super::{unix_ms, Guard, Report, SyncJob};
use crate::worker::{Job, JobError, Lease, Pass};
use arca_core::schedule::RotationSchedule;
use arca_core::sync::{RunRequest, SyncControl};
use arca_core::Arca;
use arca_store::Fence;
use arca_types::{ApiError, ErrorCode};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Failures listed in one event at most (the count is always complete).
const EVENT_FAILURES: usize = 50;

/// One job and where its events go.
pub struct Runner {
    pub job: Arc<SyncJob>,
    arca: Arc<Arca>,
}

impl Runner {
    pub fn new(job: Arc<SyncJob>, arca: Arc<Arca>) -> Self {
        Self { job, arca }
    }

    /// A pass, and (unless it only planned) its event; with `fence`, its writes are made
    /// under that lease (the scheduled passes).
    pub async fn pass(&self, dry_run: bool, only: &[String], fence: Option<Fence>) -> Report {
        let before = self.job.last_report().map(|r| r.outcome);
        let guard = fence.map(|fence| Guard {
            store: self.arca.store().clone(),
            fence,
        });
        let r = self.job.pass(dry_run, only, guard.as_ref()).await;
        if !dry_run {
            self.record(&r, before.as_deref()).await;
        }
        r
    }

    /// `SyncFailed` for a pass that failed or left failures; `SyncSucceeded` for one that
    /// wrote something or recovered from a failure. Unchanged passes leave no event:
    /// the status shows them.
    async fn record(&self, r: &Report, before: Option<&str>) {
        let writes = writes(r);
        let name = match r.outcome.as_str() {
            "ok" if writes == 0 && before.is_none_or(|b| b == "ok") => return,
            "ok" => "SyncSucceeded",
            _ => "SyncFailed",
        };
        let mut data = Map::new();
        data.insert("outcome".into(), r.outcome.clone().into());
        if let Some(e) = &r.error {
            data.insert("failureReason".into(), e.clone().into());
        }
        data.insert("listed".into(), r.listed.into());
        data.insert("counts".into(), json!(r.counts));
        data.insert("failed".into(), r.failed.into());
        if !r.failures.is_empty() {
            let list: Vec<Value> = r
                .failures
                .iter()
                .take(EVENT_FAILURES)
                .map(|f| json!({"name": f.name, "source": f.source, "error": f.error}))
                .collect();
            data.insert("failures".into(), list.into());
        }
        data.insert(
            "durationMs".into(),
            r.finished
                .unwrap_or(0)
                .saturating_sub(r.started.unwrap_or(0))
                .into(),
        );
        if let Err(e) = self
            .arca
            .record_sync_event(&self.job.spec.region, name, data, &r.job)
            .await
        {
            tracing::error!(job = %r.job, error = %e.message, "could not record the sync event");
        }
    }

    fn status(&self) -> Value {
        let now = unix_ms();
        let mut v = self.job.describe();
        v["job"] = self.job.spec.name.clone().into();
        let (phase, done, total) = self.job.progress().get();
        v["running"] = self.job.is_running().into();
        if !phase.is_empty() {
            v["progress"] = json!({"phase": phase, "done": done, "total": total});
        }
        if let Some(r) = self.job.last_report() {
            v["last_pass"] = json!({
                "started": r.started, "finished": r.finished, "outcome": r.outcome,
                "error": r.error, "listed": r.listed, "counts": r.counts, "failed": r.failed,
                "failures": r.failures.iter().take(EVENT_FAILURES).collect::<Vec<_>>(),
                "source_requests": r.source_requests,
                "source_value_reads": r.source_value_reads,
                "target_requests": r.target_requests,
            });
            v["next_run_after"] = r
                .finished
                .map(|f| f + self.job.spec.interval.as_millis() as u64)
                .into();
            v["lag_secs"] = (self.job.lag_ms(&r, now) as f64 / 1000.0).into();
        } else {
            v["lag_secs"] = Value::Null;
        }
        v
    }
}

fn writes(r: &Report) -> u64 {
    ["create", "update", "restore", "delete"]
        .iter()
        .filter_map(|k| r.counts.get(*k))
        .sum()
}

/// The worker's view of a job: one pass per interval (plus jitter), or at each window
/// of a schedule expression; never two at once.
pub struct SyncWorkerJob {
    runner: Arc<Runner>,
    /// `sync/<job>`: each job has a lease of its own.
    lease: &'static str,
    /// With a schedule, the worker ticks often and a pass runs when a window has opened
    /// since the last one.
    schedule: Option<RotationSchedule>,
    last: Mutex<i64>,
}

impl SyncWorkerJob {
    pub fn new(runner: Arc<Runner>, schedule: Option<RotationSchedule>) -> Self {
        // Leaked once per configured job at start: lease names are `&'static str`.
        let lease = Box::leak(format!("sync/{}", runner.job.spec.name).into_boxed_str());
        Self {
            runner,
            lease,
            schedule,
            last: Mutex::new(unix_ms() as i64),
        }
    }

    /// Whether a scheduled job's next window has opened (and, if so, takes it).
    fn due(&self) -> bool {
        let Some(s) = &self.schedule else {
            return true;
        };
        let now = unix_ms() as i64;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let open = window_opened(s, *last, now);
        if open {
            *last = now;
        }
        open
    }
}

/// Whether a window of `s` has opened after the pass at `last` and by `now`.
fn window_opened(s: &RotationSchedule, last: i64, now: i64) -> bool {
    s.next_window(last, last)
        .is_some_and(|(start, _)| start <= now)
}

#[async_trait]
impl Job for SyncWorkerJob {
    fn name(&self) -> &'static str {
        self.lease
    }

    async fn run(&self, lease: &Lease) -> Result<Pass, JobError> {
        if !self.due() {
            return Ok(Pass::Idle);
        }
        let r = self.runner.pass(false, &[], Some(lease.fence())).await;
        let writes = writes(&r);
        match r.outcome.as_str() {
            "failed" => {
                return Err(format!(
                    "sync job {}: {}",
                    r.job,
                    r.error.as_deref().unwrap_or("failed")
                )
                .into())
            }
            "partial" => {
                tracing::warn!(job = %r.job, failed = r.failed, writes, "sync pass finished with failures")
            }
            _ => tracing::info!(job = %r.job, listed = r.listed, writes, "sync pass finished"),
        }
        Ok(Pass::Idle)
    }
}

/// Every job of this process, by name: what the `ArcaSync.*` operations reach. Jobs come
/// and go while the server runs (`arca sync add` and `remove`).
#[derive(Default)]
pub struct SyncJobs {
    runners: std::sync::RwLock<BTreeMap<String, Arc<Runner>>>,
}

impl SyncJobs {
    pub fn insert(&self, runner: Arc<Runner>) {
        self.runners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(runner.job.spec.name.clone(), runner);
    }

    pub fn remove(&self, job: &str) {
        self.runners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(job);
    }

    fn runner(&self, job: &str) -> Result<Arc<Runner>, ApiError> {
        self.runners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(job)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ResourceNotFound,
                    format!("No sync job is named {job}."),
                )
            })
    }

    fn all(&self) -> Vec<Arc<Runner>> {
        self.runners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl SyncControl for SyncJobs {
    async fn run(&self, req: RunRequest) -> Result<Value, ApiError> {
        let runner = self.runner(&req.job)?;
        if req.paths.len() > 100 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "At most 100 paths may be named in one request.",
            ));
        }
        if req.no_wait {
            tokio::spawn(async move {
                runner.pass(req.dry_run, &req.paths, None).await;
            });
            return Ok(json!({"Queued": true}));
        }
        let r = runner.pass(req.dry_run, &req.paths, None).await;
        serde_json::to_value(&r).map_err(|_| ApiError::internal())
    }

    async fn status(&self, job: Option<&str>) -> Result<Value, ApiError> {
        Ok(match job {
            Some(j) => json!({"Jobs": [self.runner(j)?.status()]}),
            None => json!({"Jobs": self.all().iter().map(|r| r.status()).collect::<Vec<_>>()}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(expr: &str) -> RotationSchedule {
        RotationSchedule::from_rules(&arca_types::wire::RotationRules {
            schedule_expression: Some(expr.into()),
            ..Default::default()
        })
        .expect("a valid schedule")
    }

    #[test]
    fn a_schedule_passes_once_per_window() {
        const H: i64 = 3_600_000;
        let day = 1_796_601_600_000; // 2026-12-07T00:00:00Z
        let hourly = schedule("rate(4 hours)");
        // Ran at 00:10: the next window opens at 04:00.
        assert!(!window_opened(&hourly, day + H / 6, day + 3 * H));
        assert!(window_opened(&hourly, day + H / 6, day + 4 * H));
        let cron = schedule("cron(0 6 * * ? *)");
        assert!(!window_opened(&cron, day + H, day + 5 * H));
        assert!(window_opened(&cron, day + H, day + 6 * H));
        // Having passed at 06:00, the next is tomorrow's.
        assert!(!window_opened(&cron, day + 6 * H, day + 23 * H));
    }
}
