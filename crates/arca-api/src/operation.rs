//! Parse, then handle: the `X-Amz-Target` header and JSON body become a typed
//! `Operation` before any handler runs. Every operation of botocore's model is named here;
//! those Arca does not serve yet are parsed too, so they get a clear error, not a 404.

use crate::codec::decode;
use arca_types::wire::*;
use arca_types::ApiError;

const TARGET_PREFIX: &str = "secretsmanager.";

#[derive(Debug)]
pub enum Operation {
    BatchGetSecretValue(BatchGetSecretValueRequest),
    CancelRotateSecret(SecretIdRequest),
    CreateSecret(CreateSecretRequest),
    DeleteSecret(DeleteSecretRequest),
    DescribeSecret(DescribeSecretRequest),
    GetRandomPassword(GetRandomPasswordRequest),
    GetSecretValue(GetSecretValueRequest),
    ListSecretVersionIds(ListSecretVersionIdsRequest),
    ListSecrets(ListSecretsRequest),
    PutSecretValue(PutSecretValueRequest),
    RemoveRegionsFromReplication(RemoveRegionsFromReplicationRequest),
    ReplicateSecretToRegions(ReplicateSecretToRegionsRequest),
    RestoreSecret(SecretIdRequest),
    RotateSecret(RotateSecretRequest),
    StopReplicationToReplica(SecretIdRequest),
    TagResource(TagResourceRequest),
    UntagResource(UntagResourceRequest),
    UpdateSecret(UpdateSecretRequest),
    UpdateSecretVersionStage(UpdateSecretVersionStageRequest),
    PutResourcePolicy(PutResourcePolicyRequest),
    GetResourcePolicy(ResourcePolicyRequest),
    DeleteResourcePolicy(ResourcePolicyRequest),
    ListResourcePolicies(ListResourcePoliciesRequest),
    ValidateResourcePolicy(ValidateResourcePolicyRequest),
    /// A model operation Arca does not serve yet (replication, resource policies).
    Unsupported(&'static str),
}

/// Operations of the model that a later issue brings (cross-account replicas).
const UNSUPPORTED: &[&str] = &[
    "AssociateCrossAccountReplica",
    "DisassociateCrossAccountReplica",
];

impl Operation {
    /// The operation name from an `X-Amz-Target` value, if it names one of the model's.
    pub fn name_of(target: Option<&str>) -> Result<&str, ApiError> {
        let unknown = ApiError::unknown_operation;
        let target = target.ok_or_else(unknown)?;
        target.strip_prefix(TARGET_PREFIX).ok_or_else(unknown)
    }

    pub fn parse(name: &str, body: &[u8]) -> Result<Operation, ApiError> {
        use Operation::*;
        Ok(match name {
            "BatchGetSecretValue" => BatchGetSecretValue(decode(body)?),
            "CancelRotateSecret" => CancelRotateSecret(decode(body)?),
            "CreateSecret" => CreateSecret(decode(body)?),
            "DeleteSecret" => DeleteSecret(decode(body)?),
            "DescribeSecret" => DescribeSecret(decode(body)?),
            "GetRandomPassword" => GetRandomPassword(decode(body)?),
            "GetSecretValue" => GetSecretValue(decode(body)?),
            "ListSecretVersionIds" => ListSecretVersionIds(decode(body)?),
            "ListSecrets" => ListSecrets(decode(body)?),
            "PutSecretValue" => PutSecretValue(decode(body)?),
            "RemoveRegionsFromReplication" => RemoveRegionsFromReplication(decode(body)?),
            "ReplicateSecretToRegions" => ReplicateSecretToRegions(decode(body)?),
            "RestoreSecret" => RestoreSecret(decode(body)?),
            "RotateSecret" => RotateSecret(decode(body)?),
            "StopReplicationToReplica" => StopReplicationToReplica(decode(body)?),
            "TagResource" => TagResource(decode(body)?),
            "UntagResource" => UntagResource(decode(body)?),
            "UpdateSecret" => UpdateSecret(decode(body)?),
            "UpdateSecretVersionStage" => UpdateSecretVersionStage(decode(body)?),
            "PutResourcePolicy" => PutResourcePolicy(decode(body)?),
            "GetResourcePolicy" => GetResourcePolicy(decode(body)?),
            "DeleteResourcePolicy" => DeleteResourcePolicy(decode(body)?),
            "ListResourcePolicies" => ListResourcePolicies(decode(body)?),
            "ValidateResourcePolicy" => ValidateResourcePolicy(decode(body)?),
            other => match UNSUPPORTED.iter().find(|u| **u == other) {
                Some(u) => Unsupported(u),
                None => return Err(ApiError::unknown_operation()),
            },
        })
    }

    /// The model's name for `name`, as a static string for logs ("-" if unknown).
    pub fn static_name(name: &str) -> &'static str {
        const KNOWN: &[&str] = &[
            "BatchGetSecretValue",
            "CancelRotateSecret",
            "CreateSecret",
            "DeleteSecret",
            "DescribeSecret",
            "GetRandomPassword",
            "GetSecretValue",
            "ListSecretVersionIds",
            "ListSecrets",
            "PutSecretValue",
            "RemoveRegionsFromReplication",
            "ReplicateSecretToRegions",
            "RestoreSecret",
            "RotateSecret",
            "StopReplicationToReplica",
            "TagResource",
            "UntagResource",
            "UpdateSecret",
            "UpdateSecretVersionStage",
            "PutResourcePolicy",
            "GetResourcePolicy",
            "DeleteResourcePolicy",
            "ListResourcePolicies",
            "ValidateResourcePolicy",
        ];
        KNOWN
            .iter()
            .chain(UNSUPPORTED.iter())
            .find(|k| **k == name)
            .copied()
            .unwrap_or("-")
    }

    pub fn name(&self) -> &'static str {
        use Operation::*;
        match self {
            BatchGetSecretValue(_) => "BatchGetSecretValue",
            CancelRotateSecret(_) => "CancelRotateSecret",
            CreateSecret(_) => "CreateSecret",
            DeleteSecret(_) => "DeleteSecret",
            DescribeSecret(_) => "DescribeSecret",
            GetRandomPassword(_) => "GetRandomPassword",
            GetSecretValue(_) => "GetSecretValue",
            ListSecretVersionIds(_) => "ListSecretVersionIds",
            ListSecrets(_) => "ListSecrets",
            PutSecretValue(_) => "PutSecretValue",
            RemoveRegionsFromReplication(_) => "RemoveRegionsFromReplication",
            ReplicateSecretToRegions(_) => "ReplicateSecretToRegions",
            RestoreSecret(_) => "RestoreSecret",
            RotateSecret(_) => "RotateSecret",
            StopReplicationToReplica(_) => "StopReplicationToReplica",
            TagResource(_) => "TagResource",
            UntagResource(_) => "UntagResource",
            UpdateSecret(_) => "UpdateSecret",
            UpdateSecretVersionStage(_) => "UpdateSecretVersionStage",
            PutResourcePolicy(_) => "PutResourcePolicy",
            GetResourcePolicy(_) => "GetResourcePolicy",
            DeleteResourcePolicy(_) => "DeleteResourcePolicy",
            ListResourcePolicies(_) => "ListResourcePolicies",
            ValidateResourcePolicy(_) => "ValidateResourcePolicy",
            Unsupported(n) => n,
        }
    }

    /// The request's condition keys, for the authorization point.
    pub fn condition_keys(&self) -> arca_policy::Context {
        use arca_core::authz::ConditionKeys;
        use Operation::*;
        let mut c = arca_policy::Context::new();
        let keys: &dyn ConditionKeys = match self {
            BatchGetSecretValue(r) => r,
            CancelRotateSecret(r) | RestoreSecret(r) | StopReplicationToReplica(r) => r,
            CreateSecret(r) => r,
            DeleteSecret(r) => r,
            DescribeSecret(r) => r,
            GetRandomPassword(r) => r,
            GetSecretValue(r) => r,
            ListSecretVersionIds(r) => r,
            ListSecrets(r) => r,
            PutSecretValue(r) => r,
            RemoveRegionsFromReplication(r) => r,
            ReplicateSecretToRegions(r) => r,
            RotateSecret(r) => r,
            TagResource(r) => r,
            UntagResource(r) => r,
            UpdateSecret(r) => r,
            UpdateSecretVersionStage(r) => r,
            PutResourcePolicy(r) => r,
            GetResourcePolicy(r) | DeleteResourcePolicy(r) => r,
            ListResourcePolicies(r) => r,
            ValidateResourcePolicy(r) => r,
            Unsupported(_) => return c,
        };
        keys.condition_keys(&mut c);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::ErrorCode;

    #[test]
    fn targets_parse_to_operations() {
        assert_eq!(
            Operation::name_of(Some("secretsmanager.GetSecretValue")).unwrap(),
            "GetSecretValue"
        );
        assert!(Operation::name_of(Some("kms.Encrypt")).is_err());
        assert!(Operation::name_of(None).is_err());
        let op = Operation::parse("GetSecretValue", br#"{"SecretId":"x"}"#).unwrap();
        assert_eq!(op.name(), "GetSecretValue");
        assert!(matches!(
            Operation::parse("AssociateCrossAccountReplica", b"{}").unwrap(),
            Operation::Unsupported("AssociateCrossAccountReplica")
        ));
        assert_eq!(
            Operation::parse("Nope", b"{}").unwrap_err().code,
            ErrorCode::UnknownOperation
        );
    }
}
