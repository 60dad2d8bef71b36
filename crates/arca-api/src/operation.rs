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
    /// A model operation Arca does not serve yet (replication, resource policies).
    Unsupported(&'static str),
}

/// Operations of the model that later issues bring (cross-account replicas, policies).
const UNSUPPORTED: &[&str] = &[
    "AssociateCrossAccountReplica",
    "DeleteResourcePolicy",
    "DisassociateCrossAccountReplica",
    "GetResourcePolicy",
    "ListResourcePolicies",
    "PutResourcePolicy",
    "ValidateResourcePolicy",
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
            Unsupported(n) => n,
        }
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
            Operation::parse("PutResourcePolicy", b"{}").unwrap(),
            Operation::Unsupported("PutResourcePolicy")
        ));
        assert_eq!(
            Operation::parse("Nope", b"{}").unwrap_err().code,
            ErrorCode::UnknownOperation
        );
    }
}
