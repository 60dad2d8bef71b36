//! The EventBridge envelope of a trail record: what a rule's pattern is matched against
//! and what a target receives. As CloudTrail hands Secrets Manager's records to
//! EventBridge: `detail-type` "AWS API Call via CloudTrail" for calls and "AWS Service
//! Event via CloudTrail" for what the service did on its own, `source` "aws." and the
//! service's name, `detail` the CloudTrail record itself (so it never holds a value).

use arca_store::AuditEntry;
use serde_json::{json, Value};

pub const API_CALL: &str = "AWS API Call via CloudTrail";
pub const SERVICE_EVENT: &str = "AWS Service Event via CloudTrail";

/// Sources whose records are Arca's own machinery, never published: a replication
/// delivery, the trail's own notes, and the event deliveries themselves (a rule matching
/// its own deliveries would feed itself).
const UNPUBLISHED_SOURCES: [&str; 3] = [
    "replication.arca.local",
    crate::audit::ARCA_AUDIT_SOURCE,
    super::deliver::DELIVERY_SOURCE,
];

/// XORed into a record's event id to make its envelope's id: stable (a delivery retried
/// after a restart carries the same id) and distinct from the record's own eventID.
const ENVELOPE_ID_MASK: [u8; 16] = [
    0x51, 0x0e, 0x52, 0x7f, 0xad, 0xe6, 0x08, 0x2c, 0x9b, 0x05, 0x68, 0x8c, 0x2b, 0x3e, 0x6c, 0x1f,
];

/// Whether a record can become an event: one call or service event (not a batch), of
/// an AWS service. Read-only calls are published too, but only rules in state
/// ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS see them (as in EventBridge).
pub(crate) fn publishable(e: &AuditEntry) -> bool {
    e.batch == 0
}

/// The envelope of `e` (None for a record that is not published).
pub(crate) fn envelope(account: &str, e: &AuditEntry) -> Option<Value> {
    if !publishable(e) {
        return None;
    }
    let detail: Value = serde_json::from_str(&e.detail).ok()?;
    let source = detail.get("eventSource")?.as_str()?;
    if UNPUBLISHED_SOURCES.contains(&source) {
        return None;
    }
    let service = source.split('.').next().unwrap_or(source);
    // Arca's own services (the sync) publish under `arca.`, not as an AWS service.
    let owner = if source.ends_with(".arca.local") {
        "arca"
    } else {
        "aws"
    };
    let service_event = e.event_type == "AwsServiceEvent";
    let resources: Vec<Value> = match (&e.resource, service_event) {
        (Some(r), true) if r.starts_with("arn:") => vec![r.clone().into()],
        _ => Vec::new(),
    };
    Some(json!({
        "version": "0",
        "id": envelope_id(&e.event_id),
        "detail-type": if service_event { SERVICE_EVENT } else { API_CALL },
        "source": format!("{owner}.{service}"),
        "account": account,
        "time": detail.get("eventTime").cloned().unwrap_or(Value::Null),
        "region": e.region,
        "resources": resources,
        "detail": detail,
    }))
}

/// The envelope id of the record with `event_id`.
pub(crate) fn envelope_id(event_id: &str) -> String {
    match uuid::Uuid::try_parse(event_id) {
        Ok(u) => {
            let mut b = *u.as_bytes();
            for (x, m) in b.iter_mut().zip(ENVELOPE_ID_MASK) {
                *x ^= m;
            }
            uuid::Uuid::from_bytes(b).hyphenated().to_string()
        }
        // Not a UUID (records written by tests): still stable and distinct.
        Err(_) => format!("event-{event_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event_type: &str, source: &str, batch: u32) -> AuditEntry {
        AuditEntry {
            time: 0,
            event_id: "6f1c2a4e-8b7d-4c3e-9a2b-1d0e5f6a7b8c".into(),
            event_type: event_type.into(),
            event_name: "PutSecretValue".into(),
            region: "us-east-1".into(),
            read_only: false,
            access_key_id: None,
            resource: Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf".into()),
            error_code: None,
            batch,
            detail: json!({"eventSource": source, "eventTime": "2026-12-07T01:00:00Z",
                           "eventID": "6f1c2a4e-8b7d-4c3e-9a2b-1d0e5f6a7b8c"})
            .to_string(),
        }
    }

    #[test]
    fn calls_and_service_events_get_cloudtrails_detail_types() {
        let call = envelope(
            "123456789012",
            &entry("AwsApiCall", "secretsmanager.amazonaws.com", 0),
        )
        .expect("published");
        assert_eq!(call["detail-type"], API_CALL);
        assert_eq!(call["source"], "aws.secretsmanager");
        assert_eq!(call["time"], "2026-12-07T01:00:00Z");
        assert_eq!(call["resources"], json!([]));
        assert_eq!(
            call["detail"]["eventSource"],
            "secretsmanager.amazonaws.com"
        );
        let id = call["id"].as_str().unwrap();
        assert_ne!(id, "6f1c2a4e-8b7d-4c3e-9a2b-1d0e5f6a7b8c");
        assert_eq!(
            id,
            envelope_id("6f1c2a4e-8b7d-4c3e-9a2b-1d0e5f6a7b8c"),
            "stable"
        );
        let svc = envelope(
            "123456789012",
            &entry("AwsServiceEvent", "secretsmanager.amazonaws.com", 0),
        )
        .expect("published");
        assert_eq!(svc["detail-type"], SERVICE_EVENT);
        assert_eq!(svc["resources"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn batches_and_arcas_machinery_are_not_published() {
        assert!(envelope("1", &entry("AwsApiCall", "secretsmanager.amazonaws.com", 3)).is_none());
        for s in UNPUBLISHED_SOURCES {
            assert!(
                envelope("1", &entry("AwsServiceEvent", s, 0)).is_none(),
                "{s}"
            );
        }
    }
}
