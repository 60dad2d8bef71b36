//! The event record's public JSON shape, shared by `arca events` and the dev endpoint, and
//! stable for the webhook routing later features build on:
//! `{"id", "time" (epoch seconds with a fraction), "name", "region", "secretArn",
//! "versionId", "step", "error", "detail"}`; absent values are null. Names so far:
//! RotationStarted, RotationSucceeded, RotationFailed, RotationCancelled. Events never
//! carry secret material.

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
