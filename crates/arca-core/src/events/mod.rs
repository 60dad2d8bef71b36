//! The event record's public JSON shape, shared by `arca events` and the dev endpoint, and
//! stable for the webhook routing later features build on:
//! `{"id", "time" (epoch seconds with a fraction), "name", "region", "secretArn",
//! "versionId", "step", "error", "detail"}`; absent values are null. Names so far:
//! RotationStarted, RotationSucceeded, RotationFailed, RotationCancelled. Events never
//! carry secret material.

pub mod pattern;

use arca_store::EventRecord;
use arca_types::time::to_wire;
use serde_json::{json, Value};

pub fn event_json(e: &EventRecord) -> Value {
    json!({
        "id": e.id,
        "time": to_wire(e.time),
        "name": e.name,
        "region": e.region,
        "secretArn": e.secret_arn,
        "versionId": e.version_id,
        "step": e.step,
        "error": e.error,
        "detail": e.detail,
    })
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
