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

/// The one event bus Arca has in each region.
pub const DEFAULT_BUS: &str = "default";

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PutRuleRequest {
    pub name: Option<String>,
    pub schedule_expression: Option<String>,
    pub event_pattern: Option<String>,
    pub state: Option<String>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub tags: Option<Vec<serde_json::Value>>,
    pub event_bus_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PutRuleResponse {
    pub rule_arn: String,
}

/// DeleteRule, DescribeRule, EnableRule, DisableRule.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RuleNameRequest {
    pub name: Option<String>,
    pub event_bus_name: Option<String>,
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RuleDto {
    pub name: String,
    pub arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_pattern: Option<String>,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    pub event_bus_name: String,
    /// DescribeRule only: the account that created the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ListRulesRequest {
    pub name_prefix: Option<String>,
    pub event_bus_name: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ListRulesResponse {
    pub rules: Vec<RuleDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RetryPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_event_age_in_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TargetDto {
    pub id: Option<String>,
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// Members Arca does not act on (RoleArn, InputTransformer, SqsParameters, ...):
    /// accepted only when absent, so nothing is silently ignored.
    #[serde(flatten, skip_serializing)]
    pub other: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PutTargetsRequest {
    pub rule: Option<String>,
    pub event_bus_name: Option<String>,
    pub targets: Option<Vec<TargetDto>>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct FailedTargetEntry {
    pub target_id: String,
    pub error_code: String,
    pub error_message: String,
}

/// PutTargets' and RemoveTargets' answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TargetsResultResponse {
    pub failed_entry_count: i64,
    pub failed_entries: Vec<FailedTargetEntry>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTargetsRequest {
    pub rule: Option<String>,
    pub event_bus_name: Option<String>,
    pub ids: Option<Vec<String>>,
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ListTargetsByRuleRequest {
    pub rule: Option<String>,
    pub event_bus_name: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ListTargetsByRuleResponse {
    pub targets: Vec<TargetDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
