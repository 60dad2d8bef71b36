//! Dev-only endpoints for test suites: wipe all secrets, move the service clock forward
//! (and wake the purge and the rotation scheduler so windows end without waiting), and
//! read the event log. Refused unless the
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
        "reset" => match state.arca.wipe_secrets().await {
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
            state.arca.rotation_wakeup().notify_one();
            plain(StatusCode::OK, "{}")
        }
        "events" => {
            let query = arca_store::EventQuery {
                after_id: q.get("after").and_then(|s| s.parse().ok()).unwrap_or(0),
                limit: q.get("limit").and_then(|s| s.parse().ok()).unwrap_or(1000),
                secret_arn: q.get("secret").cloned(),
            };
            match state.arca.store().list_events(&query).await {
                Ok(events) => {
                    let list: Vec<_> = events.iter().map(arca_core::events::event_json).collect();
                    let body = serde_json::json!({ "events": list }).to_string();
                    let mut r = Response::new(Body::from(body));
                    r.headers_mut().insert(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    );
                    r
                }
                Err(e) => {
                    tracing::error!(error = %e, "listing events failed");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "listing events failed\n")
                }
            }
        }
        _ => plain(StatusCode::NOT_FOUND, "unknown dev action\n"),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r
}
