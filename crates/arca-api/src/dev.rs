//! Dev-only endpoints for test suites: wipe all secrets, move the service clock forward
//! (and wake the purge so deletion windows end without waiting). Refused unless the
//! server runs with `--dev`.

use crate::ApiState;
use arca_types::time::OffsetClock;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Response, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// What `--dev` hands the HTTP layer.
pub struct DevHooks {
    /// Offset (in ms) added to real time by the service clock.
    pub clock: OffsetClock,
    /// Wakes the background purge.
    pub purge_wakeup: Arc<Notify>,
}

pub(crate) async fn handle(
    State(state): State<Arc<ApiState>>,
    Path(action): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response<Body> {
    let Some(dev) = &state.dev else {
        return plain(
            StatusCode::FORBIDDEN,
            "dev endpoints need `arca server --dev`\n",
        );
    };
    match action.as_str() {
        "reset" => match state.arca.store().wipe_secrets().await {
            Ok(()) => plain(StatusCode::OK, "{}"),
            Err(e) => {
                tracing::error!(error = %e, "dev reset failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "reset failed\n")
            }
        },
        "advance-clock" => {
            let Some(secs) = q.get("seconds").and_then(|s| s.parse::<i64>().ok()) else {
                return plain(StatusCode::BAD_REQUEST, "seconds=N is required\n");
            };
            dev.clock.advance(secs * 1000);
            dev.purge_wakeup.notify_one();
            plain(StatusCode::OK, "{}")
        }
        _ => plain(StatusCode::NOT_FOUND, "unknown dev action\n"),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r
}
