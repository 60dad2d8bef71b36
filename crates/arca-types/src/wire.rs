//! Wire DTOs of the Secrets Manager operations Arca serves, field for field from botocore's
//! model (secretsmanager 2017-10-17). Requests deserialize from awsJson1_1 bodies; responses
//! serialize with absent optionals omitted and timestamps as epoch seconds.

use crate::secret::{SecretBlob, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicaRegion {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RotationRules {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicationStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accessed_date: Option<f64>,
}

// ---------- CreateSecret ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretRequest {
    pub name: Option<String>,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub secret_binary: Option<SecretBlob>,
    pub secret_string: Option<SecretString>,
    pub tags: Option<Vec<Tag>>,
    pub add_replica_regions: Option<Vec<ReplicaRegion>>,
    pub force_overwrite_replica_secret: Option<bool>,
    #[serde(rename = "Type")]
    pub secret_type: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_status: Option<Vec<ReplicationStatus>>,
}

// ---------- GetSecretValue ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSecretValueRequest {
    pub secret_id: Option<String>,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSecretValueResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<SecretBlob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<SecretString>,
    pub version_stages: Vec<String>,
    pub created_date: f64,
}

// ---------- BatchGetSecretValue ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueRequest {
    pub secret_id_list: Option<Vec<String>>,
    pub filters: Option<Vec<Filter>>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiErrorEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueResponse {
    pub secret_values: Vec<GetSecretValueResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub errors: Vec<ApiErrorEntry>,
}

// ---------- PutSecretValue ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueRequest {
    pub secret_id: Option<String>,
    pub client_request_token: Option<String>,
    pub secret_binary: Option<SecretBlob>,
    pub secret_string: Option<SecretString>,
    pub version_stages: Option<Vec<String>>,
    /// Sensitive in the model: held and printed like a secret value.
    pub rotation_token: Option<SecretString>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub version_id: String,
    pub version_stages: Vec<String>,
}

// ---------- UpdateSecret ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretRequest {
    pub secret_id: Option<String>,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub secret_binary: Option<SecretBlob>,
    pub secret_string: Option<SecretString>,
    #[serde(rename = "Type")]
    pub secret_type: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

// ---------- DescribeSecret / ListSecrets ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSecretRequest {
    pub secret_id: Option<String>,
}

/// DescribeSecret's response; ListSecrets entries share every field but name the version
/// map `SecretVersionsToStages` and never carry ReplicationStatus.
#[derive(Debug, Default, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_enabled: Option<bool>,
    #[serde(rename = "RotationLambdaARN", skip_serializing_if = "Option::is_none")]
    pub rotation_lambda_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_rules: Option<RotationRules>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rotated_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accessed_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_ids_to_stages: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_versions_to_stages: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owning_service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_status: Option<Vec<ReplicationStatus>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsRequest {
    pub include_planned_deletion: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub filters: Option<Vec<Filter>>,
    pub sort_order: Option<String>,
    pub sort_by: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsResponse {
    pub secret_list: Vec<DescribeSecretResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

// ---------- ListSecretVersionIds ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsRequest {
    pub secret_id: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub include_deprecated: Option<bool>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretVersionsListEntry {
    pub version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_stages: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accessed_date: Option<f64>,
    pub created_date: f64,
    pub kms_key_ids: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsResponse {
    pub versions: Vec<SecretVersionsListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
}

// ---------- UpdateSecretVersionStage ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretVersionStageRequest {
    pub secret_id: Option<String>,
    pub version_stage: Option<String>,
    pub remove_from_version_id: Option<String>,
    pub move_to_version_id: Option<String>,
}

/// Shape shared by responses that only name the secret (UpdateSecretVersionStage,
/// RestoreSecret).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnNameResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
}

// ---------- DeleteSecret / RestoreSecret ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretRequest {
    pub secret_id: Option<String>,
    pub recovery_window_in_days: Option<i64>,
    pub force_delete_without_recovery: Option<bool>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub deletion_date: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretIdRequest {
    pub secret_id: Option<String>,
}

// ---------- Tags ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    pub secret_id: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceRequest {
    pub secret_id: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

// ---------- GetRandomPassword ----------
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordRequest {
    pub password_length: Option<i64>,
    pub exclude_characters: Option<String>,
    pub exclude_numbers: Option<bool>,
    pub exclude_punctuation: Option<bool>,
    pub exclude_uppercase: Option<bool>,
    pub exclude_lowercase: Option<bool>,
    pub include_space: Option<bool>,
    pub require_each_included_type: Option<bool>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordResponse {
    pub random_password: SecretString,
}

/// The empty JSON object AWS returns for TagResource and UntagResource.
#[derive(Debug, Default, Serialize)]
pub struct Empty {}

// ---------- RotateSecret / CancelRotateSecret ----------
#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ExternalSecretRotationMetadataItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateSecretRequest {
    pub secret_id: Option<String>,
    pub client_request_token: Option<String>,
    #[serde(rename = "RotationLambdaARN")]
    pub rotation_lambda_arn: Option<String>,
    pub rotation_rules: Option<RotationRules>,
    pub external_secret_rotation_metadata: Option<Vec<ExternalSecretRotationMetadataItem>>,
    pub external_secret_rotation_role_arn: Option<String>,
    pub rotate_immediately: Option<bool>,
}

/// RotateSecret's and CancelRotateSecret's response.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

// ---------- Replication ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicateSecretToRegionsRequest {
    pub secret_id: Option<String>,
    pub add_replica_regions: Option<Vec<ReplicaRegion>>,
    pub force_overwrite_replica_secret: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveRegionsFromReplicationRequest {
    pub secret_id: Option<String>,
    pub remove_replica_regions: Option<Vec<String>>,
}

/// ReplicateSecretToRegions' and RemoveRegionsFromReplication's response.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicationResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub replication_status: Vec<ReplicationStatus>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
}

// ---------- Resource policies ----------
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutResourcePolicyRequest {
    pub secret_id: Option<String>,
    pub resource_policy: Option<String>,
    pub policy_name: Option<String>,
    pub block_public_policy: Option<bool>,
}

/// GetResourcePolicy, DeleteResourcePolicy: the secret and the policy's name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourcePolicyRequest {
    pub secret_id: Option<String>,
    pub policy_name: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourcePolicyResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourcePoliciesRequest {
    pub secret_id: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourcePolicySummary {
    pub policy_name: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourcePoliciesResponse {
    pub resource_policies: Vec<ResourcePolicySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidateResourcePolicyRequest {
    pub secret_id: Option<String>,
    pub resource_policy: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidationErrorsEntry {
    pub check_name: String,
    pub error_message: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidateResourcePolicyResponse {
    pub policy_validation_passed: bool,
    pub validation_errors: Vec<ValidationErrorsEntry>,
}
