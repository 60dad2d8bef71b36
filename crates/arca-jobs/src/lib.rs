//! Background workers (the deletion purge here, the rotation scheduler in `rotation`).
//! Each runs `work()` until there is nothing left, then waits for
//! its interval, a wake-up, or shutdown; failures back off exponentially with jitter.
//! The purge removes secrets whose recovery window has ended; the state it works from
//! (each secret's purge date) is persisted, so a restarted server simply resumes.

pub mod rotation;

use arca_core::Arca;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Runs the deletion purge until `shutdown` flips to true.
pub async fn run_purge(
    arca: Arc<Arca>,
    interval: Duration,
    wakeup: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        let wait = match arca.purge_due().await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(purged = n, "deletion purge ran");
                }
                failures = 0;
                interval
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let backoff = backoff(failures, interval);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "deletion purge failed");
                backoff
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

/// Exponential backoff from 100 ms, capped at `cap`, with full jitter.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1u32 << failures.min(16));
    let ceiling = base.min(cap).max(Duration::from_millis(1));
    let ms = rand::thread_rng().gen_range(0..=ceiling.as_millis() as u64);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped() {
        for f in 0..40 {
            assert!(backoff(f, Duration::from_secs(5)) <= Duration::from_secs(5));
        }
    }
}
