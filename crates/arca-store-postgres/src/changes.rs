//! The change feed across nodes. Every write that changes a secret, an access key or an
//! encryption key queues a notice (`arca_notify`, PostgreSQL's NOTIFY) in its own
//! transaction, so the notice goes out when, and only if, the write commits. Each node
//! keeps one connection outside the pool LISTENing on its schema's channel and hands the
//! notices to its caches. A lost or stalled connection is reported (`lost`: the caches stop
//! serving), and once listening again (`resumed`) the caches start empty, since notices
//! sent meanwhile were missed.

use std::sync::Arc;
use std::time::Duration;

use arca_store::{Change, ChangeSink};
use deadpool_postgres::Transaction;

use crate::connect::Dialer;
use crate::error::pg;
use crate::write::WResult;

/// How often the listener proves its connection alive; a probe unanswered for as long
/// counts as a lost connection. So a stalled feed is noticed within twice this.
pub const HEARTBEAT: Duration = Duration::from_millis(1000);

/// Queues `change`'s notice in the write's transaction.
pub(crate) async fn notify(tx: &Transaction<'_>, change: &Change) -> WResult<()> {
    let stmt = tx
        .prepare_cached("SELECT arca_notify($1)")
        .await
        .map_err(pg("prepare change notice"))?;
    tx.execute(&stmt, &[&change.encode()])
        .await
        .map_err(pg("queue change notice"))?;
    Ok(())
}

/// Starts the listener. The sink hears `lost` at once: nothing may be served from a cache
/// until the feed listens.
pub(crate) fn spawn(
    dialer: Dialer,
    target: String,
    sink: Arc<dyn ChangeSink>,
) -> tokio::task::AbortHandle {
    sink.lost();
    let task = tokio::spawn(async move {
        let mut failures: u32 = 0;
        loop {
            match listen(&dialer, sink.as_ref()).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(database = %target, error = %e, "the change feed is down; caches are bypassed until it is back");
                }
            }
            sink.lost();
            let wait = Duration::from_millis(100u64 << failures.min(5));
            tokio::time::sleep(wait).await;
        }
    });
    task.abort_handle()
}

/// One connection's life: LISTEN, report changes until the connection fails or stalls.
/// Returns Ok after a connection that worked (so the next attempt starts without delay).
async fn listen(dialer: &Dialer, sink: &dyn ChangeSink) -> Result<(), String> {
    let (client, mut rx, driver) = dialer
        .connect_for_notices()
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let channel: String = client
            .query_one("SELECT arca_channel()", &[])
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        // The channel is a digest's hex with a fixed prefix: safe to quote as is.
        client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await
            .map_err(|e| e.to_string())?;
        sink.resumed();
        tracing::info!("the change feed is listening");
        loop {
            tokio::select! {
                notice = rx.recv() => match notice {
                    Some(payload) => match Change::parse(&payload) {
                        Some(change) => sink.changed(&change),
                        None => tracing::warn!("ignoring a change notice this build does not know"),
                    },
                    None => return Err("the connection closed".to_owned()),
                },
                _ = tokio::time::sleep(HEARTBEAT) => {
                    match tokio::time::timeout(HEARTBEAT, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e.to_string()),
                        Err(_) => return Err("the connection stalled".to_owned()),
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}
