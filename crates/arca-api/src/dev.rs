//! Dev-only endpoints for test suites: wipe all secrets, move the service clock forward
//! (and wake the purge and the rotation scheduler so windows end without waiting), and
//! read the event log. Refused unless the
//! server runs with `--dev`.

use crate::server::Response;
use crate::ApiState;
use arca_types::time::OffsetClock;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// The path prefix of the dev hooks; what follows it names the action.
pub(crate) const PREFIX: &str = "/_arca/dev/";

/// What `--dev` hands the HTTP layer.
pub struct DevHooks {
    /// Offset (in ms) added to real time by the service clock.
    pub clock: OffsetClock,
    /// Wakes the background purge.
    pub purge_wakeup: Arc<Notify>,
}

/// `name=value` pairs of a query string, percent-decoded (`+` is a space).
fn parse_query(query: &str) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) async fn handle(state: &ApiState, action: &str, query: &str) -> Response {
    let q = parse_query(query);
    let Some(dev) = &state.dev else {
        return plain(
            StatusCode::FORBIDDEN,
            "dev endpoints need `arca server --dev`\n",
        );
    };
    match action {
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
            let after = q.get("after").and_then(|s| s.parse().ok()).unwrap_or(0);
            let limit = q.get("limit").and_then(|s| s.parse().ok()).unwrap_or(1000);
            let listed = arca_core::events::service_events(
                state.arca.store().as_ref(),
                q.get("secret").map(String::as_str),
                after,
                limit,
            )
            .await;
            match listed {
                Ok(list) => {
                    let body = serde_json::json!({ "events": list }).to_string();
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
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

pub(crate) fn method_not_allowed() -> Response {
    let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "dev endpoints take POST\n");
    r.headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    r
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::parse_query;

    #[test]
    fn query_pairs_are_decoded() {
        let q = parse_query("seconds=86400&secret=arn%3Aaws%3Ax&flag&a+b=c+d");
        assert_eq!(q["seconds"], "86400");
        assert_eq!(q["secret"], "arn:aws:x");
        assert_eq!(q["flag"], "");
        assert_eq!(q["a b"], "c d");
        assert!(parse_query("").is_empty());
    }
}
