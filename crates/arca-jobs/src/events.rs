//! The event delivery worker: takes the due head delivery of each target from arca-core,
//! invokes the targets concurrently (a bound webhook or command through the rotation
//! functions' registry, the built-in copy action through arca-core, and on to a remote
//! Secrets Manager endpoint when its region is one, see `remote`), and reports each
//! outcome back, which commits it with its trail record. A target's next delivery is
//! only taken once its current one is finished, so each target sees its events in order.
//! Deliveries live in the store, so a restarted server picks up where it stopped. The loop
//! is the shared [`Worker`](crate::worker::Worker); it also rereads the rules now and then,
//! for rules another process changed.

use crate::remote::Remotes;
use crate::worker::{Job, JobError, Lease, Leases, Pass, Worker};
use arca_core::events::deliver::DueDelivery;
use arca_core::events::targets::TargetKind;
use arca_core::Arca;
use arca_rotation::Registry;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

/// Targets invoked at once, at most.
const MAX_CONCURRENT: usize = 16;
/// How often the rules are reread from the store.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

pub struct DeliveryJob {
    arca: Arc<Arca>,
    functions: Arc<Registry>,
    remotes: Remotes,
    last_reload: Mutex<Instant>,
}

impl DeliveryJob {
    pub fn new(arca: Arc<Arca>, functions: Arc<Registry>, remotes: Remotes) -> Self {
        Self {
            arca,
            functions,
            remotes,
            last_reload: Mutex::new(Instant::now()),
        }
    }

    async fn invoke(&self, due: &DueDelivery) -> Result<(), String> {
        match &due.kind {
            TargetKind::Function(arn) => self
                .functions
                .deliver_event(
                    arn,
                    due.body.clone(),
                    &due.idempotency_key,
                    &due.record.delivery.region,
                    due.secret_name.as_deref(),
                )
                .await
                .map_err(|e| e.message),
            TargetKind::CopySecret { region, kms_key_id } => match self.remotes.get(region) {
                Some(remote) => {
                    let copy = self.arca.copy_source(due, region).await?;
                    remote.put_or_create(&copy, kms_key_id.as_deref()).await
                }
                None => {
                    self.arca
                        .copy_secret(due, region, kms_key_id.as_deref())
                        .await
                }
            },
        }
    }
}

#[async_trait]
impl Job for DeliveryJob {
    fn name(&self) -> &'static str {
        "event-delivery"
    }

    async fn run(&self, lease: &Lease) -> Result<Pass, JobError> {
        {
            let mut last = self.last_reload.lock().await;
            if last.elapsed() >= RELOAD_EVERY {
                self.arca.reload_rules().await?;
                *last = Instant::now();
            }
        }
        let due = self
            .arca
            .due_deliveries(MAX_CONCURRENT, Some(&lease.fence()))
            .await?;
        if due.is_empty() {
            return Ok(Pass::Idle);
        }
        let attempts = due.iter().map(|d| async move {
            let result = self.invoke(d).await;
            self.arca.finish_delivery(d, result).await
        });
        for r in futures_util::future::join_all(attempts).await {
            r?;
        }
        // The next deliveries of the targets just served may be due at once.
        Ok(Pass::More)
    }
}

/// Runs event delivery on this node until `shutdown` flips to true.
pub async fn run_delivery(
    arca: Arc<Arca>,
    functions: Arc<Registry>,
    remotes: Remotes,
    interval: Duration,
    leases: Arc<dyn Leases>,
    shutdown: watch::Receiver<bool>,
) {
    let wakeup = arca.delivery_wakeup();
    Worker::local(interval, wakeup, leases)
        .run(
            Arc::new(DeliveryJob::new(arca, functions, remotes)),
            shutdown,
        )
        .await
}
