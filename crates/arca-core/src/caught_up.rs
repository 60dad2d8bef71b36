//! Waiting for a batching writer task (access dates, audit records) to have written
//! everything queued before the wait began.

use tokio::sync::{watch, Notify};

/// Waits until `written` (the writer's count of items written, in queue order) reaches
/// `queued`, asking the writer through `hurry` to end its gathering early. Returns at
/// once if the writer task has ended (it owns the count's sending side).
pub(crate) async fn caught_up(written: &watch::Receiver<u64>, queued: u64, hurry: &Notify) {
    let mut written = written.clone();
    if *written.borrow() >= queued {
        return;
    }
    hurry.notify_one();
    let _ = written.wait_for(|w| *w >= queued).await;
}
