//! Events: what the service did (its CloudTrail service events: rotation started,
//! succeeded, failed, cancelled; a secret's deletion started, cancelled, ended) and the
//! write calls, read from the audit trail, published in EventBridge's envelope
//! (`envelope`), matched against rules (`pattern`, `routes`, `rules`) and delivered to
//! their targets (`targets`, `deliver`).
//!
//! `arca events` and the dev endpoint list the service events in a short JSON shape:
//! `{"id" (the trail seq), "time" (epoch seconds with a fraction), "name", "region",
//! "secretArn", "versionId", "step", "error", "detail"}`; absent values are null, and
//! events never carry secret material.

pub mod deliver;
pub mod envelope;
pub mod pattern;
pub(crate) mod routes;
pub mod rules;
pub mod targets;

pub use routes::RuleState;

use crate::audit::trail::{read_forward, Cursor, Filter};
use arca_store::{EventRecord, SecretRecord, Store, StoreError};
use arca_types::time::Millis;

/// What Secrets Manager did on its own about a secret (`name`, e.g. RotationStarted,
/// StartSecretVersionDelete), to commit with the change it reports (`SecretChange::events`,
/// which the write path also puts in the trail).
pub(crate) fn secret_event(
    name: &str,
    s: &SecretRecord,
    version: Option<&str>,
    now: Millis,
) -> EventRecord {
    arn_event(name, &s.region, &s.arn, version, now)
}

/// `secret_event` for a secret known by region and ARN only.
pub(crate) fn arn_event(
    name: &str,
    region: &str,
    arn: &str,
    version: Option<&str>,
    now: Millis,
) -> EventRecord {
    EventRecord {
        id: 0,
        time: now,
        name: name.to_owned(),
        region: region.to_owned(),
        secret_arn: Some(arn.to_owned()),
        version_id: version.map(str::to_owned),
        step: None,
        error: None,
        detail: Value::Null,
    }
}

/// A replication event (ReplicationStarted, ReplicationSucceeded, ReplicationFailed) about
/// `s`'s replica in `region`, with why it failed.
pub(crate) fn replica_event(
    name: &str,
    s: &SecretRecord,
    region: &str,
    message: Option<&str>,
    now: Millis,
) -> EventRecord {
    let mut e = secret_event(name, s, None, now);
    e.detail = json!({ "replicaRegion": region });
    e.error = message.map(str::to_owned);
    e
}
use arca_types::time::to_wire;
use serde_json::{json, Value};

/// The trail's calls matching `filter` after seq `after`, each turned into a line by
/// `line` (None: skipped), until `limit` lines.
async fn scan(
    store: &dyn Store,
    filter: &Filter,
    after: i64,
    limit: usize,
    mut line: impl FnMut(crate::audit::batch::Item) -> Option<Value>,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = Some(Cursor {
        seq: after,
        index: u32::MAX,
    });
    loop {
        let (items, next) = read_forward(store, filter, cursor, limit.max(1)).await?;
        let done = items.is_empty() || next == cursor;
        for item in items {
            if let Some(v) = line(item) {
                out.push(v);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        if done {
            return Ok(out);
        }
        cursor = next;
    }
}

/// Secrets Manager's service events in the trail (one secret's, when `secret` is set),
/// after trail seq `after`, at most `limit`, in the short shape above.
pub async fn service_events(
    store: &dyn Store,
    secret: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    let filter = Filter {
        secret: secret.map(str::to_owned),
        read_only: Some(false),
        ..Default::default()
    };
    scan(store, &filter, after, limit, |item| {
        if item.event_type != crate::audit::SERVICE_EVENT {
            return None;
        }
        let r = serde_json::from_str::<Value>(&item.json).ok()?;
        if r["eventSource"] != crate::audit::EVENT_SOURCE {
            return None;
        }
        let data = &r["additionalEventData"];
        let text = |k: &str| data.get(k).cloned().unwrap_or(Value::Null);
        Some(json!({
            "id": item.seq,
            "time": to_wire(item.time),
            "name": item.event_name,
            "region": item.region,
            "secretArn": text("SecretId"),
            "versionId": text("VersionId"),
            "step": text("step"),
            "error": text("failureReason"),
            "detail": text("detail"),
        }))
    })
    .await
}

/// The published events (EventBridge envelopes) in the trail after seq `after`, each
/// with its trail `seq` beside it, at most `limit`.
pub async fn published(
    store: &dyn Store,
    account: &str,
    secret: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    let filter = Filter {
        secret: secret.map(str::to_owned),
        read_only: Some(false),
        ..Default::default()
    };
    scan(store, &filter, after, limit, |item| {
        let seq = item.seq;
        let entry = item.into_entry();
        let mut e = envelope::envelope(account, &entry)?;
        e["seq"] = seq.into();
        Some(e)
    })
    .await
}

/// EventBridge's TestEventPattern: whether `event` (an event in EventBridge's envelope)
/// matches `pattern`.
pub fn test_event_pattern(
    req: &arca_types::eventbridge::TestEventPatternRequest,
) -> Result<arca_types::eventbridge::TestEventPatternResponse, arca_types::ApiError> {
    use arca_types::{ApiError, ErrorCode};
    let invalid = |why: &str| {
        ApiError::new(
            ErrorCode::InvalidEventPattern,
            format!("Event pattern is not valid. Reason: {why}"),
        )
    };
    let (Some(pattern), Some(event)) = (&req.event_pattern, &req.event) else {
        return Err(ApiError::new(
            ErrorCode::Validation,
            "EventPattern and Event are required.",
        ));
    };
    if pattern.len() > 4096 {
        return Err(ApiError::new(
            ErrorCode::Validation,
            "1 validation error detected: Value at 'eventPattern' failed to satisfy constraint: Member must have length less than or equal to 4096",
        ));
    }
    let p = pattern::Pattern::parse_str(pattern).map_err(|e| invalid(&e.0))?;
    let event: Value = serde_json::from_str(event)
        .map_err(|_| ApiError::new(ErrorCode::InvalidEventPattern, "Event is not valid JSON."))?;
    // The members the model's documentation makes mandatory.
    const REQUIRED: [&str; 7] = [
        "id",
        "account",
        "source",
        "time",
        "region",
        "resources",
        "detail-type",
    ];
    if let Some(missing) = REQUIRED.iter().find(|k| event.get(**k).is_none()) {
        return Err(ApiError::new(
            ErrorCode::InvalidEventPattern,
            format!("Parameter Event is not valid: it has no \"{missing}\"."),
        ));
    }
    Ok(arca_types::eventbridge::TestEventPatternResponse {
        result: p.matches(&event),
    })
}
