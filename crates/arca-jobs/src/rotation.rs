//! The rotation scheduler: claims due rotations (scheduled, retried, or abandoned by a
//! runner that died), runs the four steps in order through the secret's rotation function,
//! and reports the outcome to arca-core, which records events and schedules the next
//! window or a retry. Work is found through each secret's persisted `rotation_due_at`, so
//! a restarted server resumes where it stopped.

use arca_core::rotation::{ClaimedRotation, DEFAULT_LEASE_MS};
use arca_core::Arca;
use arca_rotation::{InvokerSource, RotationEvent, Step};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// At most this many rotations run at once.
const MAX_CONCURRENT: usize = 8;

pub async fn run_rotation(
    arca: Arc<Arca>,
    invokers: Arc<dyn InvokerSource>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let wakeup = arca.rotation_wakeup();
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut failures: u32 = 0;
    loop {
        let available = permits.available_permits();
        let wait = if available == 0 {
            interval
        } else {
            match arca.claim_due_rotations(available, DEFAULT_LEASE_MS).await {
                Ok(claims) => {
                    failures = 0;
                    for claim in claims {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            return;
                        };
                        let (arca, invokers) = (arca.clone(), invokers.clone());
                        tokio::spawn(async move {
                            run_attempt(&arca, invokers.as_ref(), &claim).await;
                            drop(permit);
                            // Look again at once: a finished attempt may free the next.
                            arca.rotation_wakeup().notify_one();
                        });
                    }
                    interval
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = crate::backoff(failures, interval);
                    tracing::warn!(error = %e, "claiming due rotations failed");
                    backoff
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wakeup.notified() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
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
        rotation_token: claim.job.rotation_token.clone(),
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
