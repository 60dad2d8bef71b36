//! Wire DTOs of the EventBridge operations Arca answers on its endpoint (botocore model
//! events 2015-10-07), so that `aws events ...` works against it.

use serde::{Deserialize, Serialize};

/// `X-Amz-Target` prefix of EventBridge's JSON 1.1 protocol.
pub const TARGET_PREFIX: &str = "AWSEvents.";
/// The service name an EventBridge request's SigV4 scope carries.
pub const SIGNING_NAME: &str = "events";

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TestEventPatternRequest {
    pub event_pattern: Option<String>,
    pub event: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TestEventPatternResponse {
    pub result: bool,
}
