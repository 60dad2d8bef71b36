//! Wire DTOs of CloudTrail's LookupEvents (botocore model cloudtrail 2013-11-01), which
//! Arca answers over its own audit trail so that `aws cloudtrail lookup-events` and
//! existing scripts work against its endpoint.

use serde::{Deserialize, Serialize};

/// `X-Amz-Target` prefix of CloudTrail's JSON 1.1 protocol.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";
/// The service name a CloudTrail request's SigV4 scope carries.
pub const SIGNING_NAME: &str = "cloudtrail";
/// The resource type a Secrets Manager secret has in LookupEvents' Resources.
pub const SECRET_RESOURCE_TYPE: &str = "AWS::SecretsManager::Secret";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct LookupAttribute {
    pub attribute_key: Option<String>,
    pub attribute_value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsRequest {
    pub lookup_attributes: Option<Vec<LookupAttribute>>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub event_category: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    pub resource_type: Option<String>,
    pub resource_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub event_id: String,
    pub event_name: String,
    /// "true" or "false": a string in the model.
    pub read_only: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    pub event_time: f64,
    pub event_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub resources: Vec<Resource>,
    /// The whole CloudTrail record, as a JSON string.
    pub cloud_trail_event: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsResponse {
    pub events: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
