//! The rotation scheduler: claims due rotations (scheduled, retried, or abandoned by a
//! runner that died), runs the four steps in order through the secret's rotation function,
//! and reports the outcome to arca-core, which records events and schedules the next
//! window or a retry. Work is found through each secret's persisted `rotation_due_at`, so
//! a restarted server resumes where it stopped. The loop is the shared
//! [`Worker`](crate::worker::Worker).

use crate::worker::{Job, JobError, Lease, Leases, Pass, Worker};
use arca_core::rotation::{ClaimedRotation, DEFAULT_LEASE_MS};
use arca_core::Arca;
use arca_rotation::{InvokerSource, RotationEvent, Step};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// At most this many rotations run at once.
const MAX_CONCURRENT: usize = 8;

/// The scheduler: each pass claims as many due rotations as there are free slots and
/// starts them; each attempt then runs on its own (under its own per-secret lease, kept
/// by arca-core) and wakes the scheduler when it ends.
pub struct RotationScheduler {
    arca: Arc<Arca>,
    invokers: Arc<dyn InvokerSource>,
    permits: Arc<Semaphore>,
    /// How long a claimed attempt is this node's before another may take it over.
    attempt_lease_ms: i64,
}

impl RotationScheduler {
    pub fn new(arca: Arc<Arca>, invokers: Arc<dyn InvokerSource>) -> Self {
        Self {
            arca,
            invokers,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
            attempt_lease_ms: DEFAULT_LEASE_MS,
        }
    }

    /// The same scheduler with attempts held for `lease` (see `DEFAULT_LEASE_MS`).
    pub fn with_attempt_lease(mut self, lease: Duration) -> Self {
        self.attempt_lease_ms = lease.as_millis() as i64;
        self
    }
}

#[async_trait]
impl Job for RotationScheduler {
    fn name(&self) -> &'static str {
        "rotation"
    }

    async fn run(&self, lease: &Lease) -> Result<Pass, JobError> {
        let available = self.permits.available_permits();
        if available == 0 {
            return Ok(Pass::Idle);
        }
        let claims = self
            .arca
            .claim_due_rotations(available, self.attempt_lease_ms, Some(&lease.fence()))
            .await?;
        for claim in claims {
            let permit = self.permits.clone().acquire_owned().await?;
            let (arca, invokers) = (self.arca.clone(), self.invokers.clone());
            tokio::spawn(async move {
                run_attempt(&arca, invokers.as_ref(), &claim).await;
                drop(permit);
                // Look again at once: a finished attempt may free the next.
                arca.rotation_wakeup().notify_one();
            });
        }
        Ok(Pass::Idle)
    }
}

/// Runs the rotation scheduler on this node until `shutdown` flips to true.
pub async fn run_rotation(
    arca: Arc<Arca>,
    invokers: Arc<dyn InvokerSource>,
    interval: Duration,
    leases: Arc<dyn Leases>,
    shutdown: watch::Receiver<bool>,
) {
    let wakeup = arca.rotation_wakeup();
    Worker::local(interval, wakeup, leases)
        .run(Arc::new(RotationScheduler::new(arca, invokers)), shutdown)
        .await
}

/// Runs one claimed attempt to its end and reports it.
pub async fn run_attempt(arca: &Arca, invokers: &dyn InvokerSource, claim: &ClaimedRotation) {
    let outcome = attempt(arca, invokers, claim).await;
    match &outcome {
        Ok(()) => {
            tracing::info!(arn = %claim.arn, version = %claim.job.token, "rotation succeeded")
        }
        Err((step, error)) => {
            tracing::warn!(arn = %claim.arn, version = %claim.job.token, step, error, "rotation step failed")
        }
    }
    if let Err(e) = arca.finish_rotation_attempt(claim, outcome).await {
        // The lease runs out and the attempt is taken up again.
        tracing::error!(error = %e, arn = %claim.arn, "recording a rotation outcome failed");
    }
}

async fn attempt(
    arca: &Arca,
    invokers: &dyn InvokerSource,
    claim: &ClaimedRotation,
) -> Result<(), (String, String)> {
    let invoker = invokers
        .invoker_for(&claim.lambda_arn)
        .await
        .map_err(|e| ("createSecret".to_owned(), e.message))?;
    let event = |step| RotationEvent {
        step,
        secret_id: claim.arn.clone(),
        client_request_token: claim.job.token.clone(),
        rotation_token: claim.rotation_token.clone(),
    };
    if claim.job.test_only {
        arca.begin_test_rotation(claim)
            .await
            .map_err(|e| ("testSecret".to_owned(), e.message))?;
        let result = invoker
            .invoke(&event(Step::TestSecret))
            .await
            .map_err(|e| ("testSecret".to_owned(), e.message));
        if let Err(e) = arca.end_test_rotation(claim).await {
            tracing::warn!(error = %e, "removing the test rotation's AWSPENDING label failed");
        }
        return result;
    }
    for step in Step::ALL {
        invoker
            .invoke(&event(step))
            .await
            .map_err(|e| (step.as_str().to_owned(), e.message))?;
    }
    Ok(())
}
