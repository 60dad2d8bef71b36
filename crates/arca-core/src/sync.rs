//! Sync jobs as the service sees them: the control that the API's `ArcaSync.*`
//! operations reach (installed by the server, which runs the jobs), and the trail's
//! records of what a pass did, published as events like every service event.

use crate::audit::ServiceEvent;
use crate::Arca;
use arca_store::ReadBatch;
use arca_types::ApiError;
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The eventSource of the sync's own records (its events publish as `arca.sync`).
pub const SYNC_SOURCE: &str = "sync.arca.local";
/// The X-Amz-Target prefix of the sync operations: `ArcaSync.RunJob`, `ArcaSync.GetStatus`.
pub const TARGET_PREFIX: &str = "ArcaSync.";

/// A pass the API asks for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RunRequest {
    pub job: String,
    /// Only these source paths (the push model: "this entry changed").
    #[serde(default)]
    pub paths: Vec<String>,
    /// Plan only: nothing is written, and KV v2 values are not read.
    #[serde(default)]
    pub dry_run: bool,
    /// Return at once (the pass runs in the background) instead of with its report.
    #[serde(default)]
    pub no_wait: bool,
}

/// What runs the jobs (the server's sync workers).
#[async_trait]
pub trait SyncControl: Send + Sync {
    /// One pass of a job now; its report (JSON), or `{"Queued": true}` with `no_wait`.
    async fn run(&self, req: RunRequest) -> Result<Value, ApiError>;
    /// Every job's state, or one job's.
    async fn status(&self, job: Option<&str>) -> Result<Value, ApiError>;
}

impl Arca {
    /// Installs the control of this process's sync jobs (once, at start).
    pub fn set_sync_control(&self, control: Arc<dyn SyncControl>) {
        let _ = self.sync.set(control);
    }

    /// The sync control, if this process runs jobs.
    pub fn sync_control(&self) -> Result<&Arc<dyn SyncControl>, ApiError> {
        self.sync.get().ok_or_else(|| {
            ApiError::new(
                arca_types::ErrorCode::ResourceNotFound,
                "This server runs no sync jobs.",
            )
        })
    }

    /// Records a sync event in the trail (eventSource `sync.arca.local`, the job's name
    /// in `additionalEventData.job`), with the deliveries the rules route it to, durably
    /// before returning. `data` must hold no secret material: names, paths, counts and
    /// error texts only.
    pub async fn record_sync_event(
        &self,
        region: &str,
        name: &str,
        mut data: Map<String, Value>,
        job: &str,
    ) -> Result<(), ApiError> {
        data.insert("job".into(), job.into());
        let entry = ServiceEvent {
            source: SYNC_SOURCE,
            name,
            region,
            time: self.clock.now_millis(),
            resource: None,
            request_id: None,
            data,
        }
        .entry(&self.account);
        let deliveries = self.route(std::slice::from_ref(&entry));
        let notify = !deliveries.is_empty();
        let batch = ReadBatch {
            audit: vec![entry],
            deliveries,
            touches: Vec::new(),
        };
        self.store
            .append_reads(Arc::new(batch))
            .await
            .map_err(crate::store_err)?;
        if notify {
            self.delivery_wakeup.notify_one();
        }
        Ok(())
    }
}
