//! The one error table: every error Arca can return to a client, with its AWS `__type`,
//! its HTTP status and its text. Domain code picks a constructor here; only the HTTP layer
//! renders it (as `{"__type": ..., "Message": ...}`).
//!
//! Each text says where it comes from:
//! - *recorded*: a response of real AWS kept in public material, most of it LocalStack's
//!   snapshot tests (`tests/aws/services/secretsmanager/test_secretsmanager.snapshot.json`,
//!   recorded against AWS), moto's tests marked as verified against AWS, or AWS output
//!   pasted into a public issue (named);
//! - *model*: botocore's `secretsmanager/2017-10-17/service-2.json` (an error shape's
//!   documentation, or a constraint rendered as AWS's front end renders constraints);
//! - *docs*: the AWS Secrets Manager API reference or user guide;
//! - *not found*: no AWS text could be found; the comment says whose wording it is.
//!
//! The authentication errors' texts (SigV4) are AWS's front-end texts and live with the
//! verifier in `arca-sigv4/src/error.rs`, which reports them through [`ErrorCode`].

use std::fmt;

/// Every error name a client can see. Service errors come from botocore's model of
/// Secrets Manager; the others are the ones AWS's JSON front end returns before (or
/// besides) the service: validation, protocol and authentication errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // Service errors (botocore model, secretsmanager 2017-10-17).
    ResourceNotFound,
    InvalidParameter,
    InvalidRequest,
    DecryptionFailure,
    EncryptionFailure,
    InternalServiceError,
    InvalidNextToken,
    LimitExceeded,
    ResourceExists,
    MalformedPolicyDocument,
    PublicPolicy,
    // Front-end errors (AWS common errors for JSON protocols; not in the service model,
    // so SDKs surface them as generic errors with this code).
    Validation,
    UnrecognizedClient,
    InvalidSignature,
    IncompleteSignature,
    MissingAuthenticationToken,
    AccessDenied,
    Serialization,
    UnknownOperation,
    RequestEntityTooLarge,
    // CloudTrail's LookupEvents (botocore model cloudtrail 2013-11-01).
    InvalidLookupAttributes,
    InvalidTimeRange,
    InvalidMaxResults,
    InvalidEventCategory,
    // EventBridge (botocore model events 2015-10-07).
    InvalidEventPattern,
    ManagedRule,
    /// A session token past its expiry (every service; STS and IAM call it ExpiredToken).
    ExpiredToken,
    // IAM (botocore model iam 2010-05-08) and STS (sts 2011-06-15), Query protocol.
    NoSuchEntity,
    EntityAlreadyExists,
    DeleteConflict,
    InvalidInput,
    ConcurrentModification,
}

impl ErrorCode {
    /// Whether the request was refused before its caller was known (a missing, unknown or
    /// badly signed credential).
    pub fn is_auth(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            UnrecognizedClient
                | InvalidSignature
                | IncompleteSignature
                | MissingAuthenticationToken
        )
    }

    /// The `__type` value AWS puts in the error body.
    pub fn aws_type(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ResourceNotFound => "ResourceNotFoundException",
            InvalidParameter => "InvalidParameterException",
            InvalidRequest => "InvalidRequestException",
            DecryptionFailure => "DecryptionFailure",
            EncryptionFailure => "EncryptionFailure",
            InternalServiceError => "InternalServiceError",
            InvalidNextToken => "InvalidNextTokenException",
            LimitExceeded => "LimitExceededException",
            ResourceExists => "ResourceExistsException",
            MalformedPolicyDocument => "MalformedPolicyDocumentException",
            PublicPolicy => "PublicPolicyException",
            Validation => "ValidationException",
            UnrecognizedClient => "UnrecognizedClientException",
            InvalidSignature => "InvalidSignatureException",
            IncompleteSignature => "IncompleteSignature",
            MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AccessDenied => "AccessDeniedException",
            Serialization => "SerializationException",
            UnknownOperation => "UnknownOperationException",
            InvalidLookupAttributes => "InvalidLookupAttributesException",
            InvalidTimeRange => "InvalidTimeRangeException",
            InvalidMaxResults => "InvalidMaxResultsException",
            InvalidEventCategory => "InvalidEventCategoryException",
            InvalidEventPattern => "InvalidEventPatternException",
            ManagedRule => "ManagedRuleException",
            RequestEntityTooLarge => "RequestEntityTooLargeException",
            ExpiredToken => "ExpiredTokenException",
            NoSuchEntity => "NoSuchEntity",
            EntityAlreadyExists => "EntityAlreadyExists",
            DeleteConflict => "DeleteConflict",
            InvalidInput => "InvalidInput",
            ConcurrentModification => "ConcurrentModification",
        }
    }

    /// The `<Code>` a Query-protocol service (IAM, STS) answers with: the JSON services'
    /// front-end errors have other names there (AWS's common errors for Query APIs).
    pub fn query_code(self) -> &'static str {
        use ErrorCode::*;
        match self {
            UnrecognizedClient => "InvalidClientTokenId",
            InvalidSignature => "SignatureDoesNotMatch",
            AccessDenied => "AccessDenied",
            ExpiredToken => "ExpiredToken",
            Validation => "ValidationError",
            UnknownOperation => "InvalidAction",
            InternalServiceError => "ServiceFailure",
            MalformedPolicyDocument => "MalformedPolicyDocument",
            LimitExceeded => "LimitExceeded",
            Serialization => "MalformedInput",
            MissingAuthenticationToken => "MissingAuthenticationToken",
            other => other.aws_type(),
        }
    }

    /// The HTTP status a Query-protocol service answers with (IAM's per-error statuses).
    pub fn query_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            UnrecognizedClient
            | InvalidSignature
            | AccessDenied
            | ExpiredToken
            | MissingAuthenticationToken => 403,
            NoSuchEntity => 404,
            EntityAlreadyExists | DeleteConflict | LimitExceeded | ConcurrentModification => 409,
            other => other.http_status(),
        }
    }

    /// The HTTP status AWS answers with. Secrets Manager uses 400 for every client error
    /// (recorded: ResourceNotFoundException is 400 on AWS, unlike moto's 404); only
    /// internal errors are 5xx.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InternalServiceError => 500,
            RequestEntityTooLarge => 413,
            _ => 400,
        }
    }
}

/// An error on its way to a client: a code from the table and a message that never
/// contains internals or secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

/// What a validation message shows of the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// The value, quoted (`Value '0' at ...`).
    Value(String),
    /// A required member that is absent (`Value null at ...`).
    Null,
    /// A member the model marks sensitive (a secret value, a rotation token) or one too
    /// large to echo: only its path is named (`Value at ...`).
    Hidden,
}

/// One violated constraint of botocore's model, as AWS's front end reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub value: Shown,
    /// The member's path in the request, lower camel case, lists numbered from 1:
    /// `maxResults`, `rotationRules.duration`, `filters.1.member.key`.
    pub path: String,
    /// The rule, as AWS words it: "Member must have length greater than or equal to 32".
    pub constraint: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }

    fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    // ----- validation (ValidationException) -------------------------------------------

    /// Every model constraint a request breaks, in one message. Recorded for Secrets
    /// Manager: "1 validation error detected: Value 'AWSCURRENT' at 'versionId' failed to
    /// satisfy constraint: Member must have length greater than or equal to 32"
    /// (hashicorp/terraform-provider-aws#35827). Several violations are counted and joined
    /// with "; " as AWS's JSON services join them (recorded from DynamoDB and Cognito).
    pub fn validation(violations: &[Violation]) -> Self {
        let n = violations.len();
        let mut msg = format!(
            "{n} validation error{} detected: ",
            if n == 1 { "" } else { "s" }
        );
        for (i, v) in violations.iter().enumerate() {
            if i > 0 {
                msg.push_str("; ");
            }
            match &v.value {
                Shown::Value(s) => msg.push_str(&format!("Value '{s}' at")),
                Shown::Null => msg.push_str("Value null at"),
                Shown::Hidden => msg.push_str("Value at"),
            }
            msg.push_str(&format!(
                " '{}' failed to satisfy constraint: {}",
                v.path, v.constraint
            ));
        }
        Self::new(ErrorCode::Validation, msg)
    }

    /// A Name or SecretId with a character outside ASCII letters, digits and `/_+=.@-`.
    /// Recorded (LocalStack `test_invalid_secret_name`, the same text on ten operations;
    /// the `!` it lists is nevertheless refused).
    pub fn invalid_name() -> Self {
        Self::new(
            ErrorCode::Validation,
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        )
    }

    // ----- ResourceNotFoundException --------------------------------------------------

    /// Recorded (LocalStack `test_secret_not_found`).
    pub fn secret_not_found() -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            "Secrets Manager can't find the specified secret.",
        )
    }

    /// No version holds `stage`, or the one that does has no value yet. Recorded
    /// (LocalStack `test_get_secret_value_errors`, `test_secret_version_not_found`).
    pub fn no_value_for_stage(stage: &str) -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Secrets Manager can't find the specified secret value for staging label: {stage}"
            ),
        )
    }

    /// Recorded (LocalStack `test_secret_version_not_found`).
    pub fn no_value_for_version(version_id: &str) -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Secrets Manager can't find the specified secret value for VersionId: {version_id}"
            ),
        )
    }

    /// UpdateSecretVersionStage naming a version the secret does not have. Not found:
    /// AWS's text for this case is not in public material; Arca's wording, in the style
    /// of the recorded not-found texts.
    pub fn version_not_found(version_id: &str) -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            format!("Secrets Manager can't find the specified secret version: {version_id}"),
        )
    }

    // ----- InvalidRequestException ----------------------------------------------------

    /// A write with a value and no ClientRequestToken (raw HTTP callers; SDKs fill one
    /// in). Recorded (LocalStack `test_no_client_request_token`, CreateSecret,
    /// UpdateSecret, PutSecretValue; aws/aws-sdk-js-v3#4640).
    pub fn token_required() -> Self {
        Self::invalid_request(TOKEN_REQUIRED)
    }

    /// RotateSecret's form of [`Self::token_required`]: the same text as
    /// InvalidParameterException. Recorded (LocalStack
    /// `test_no_client_request_token[RotateSecret]`).
    pub fn rotation_token_required() -> Self {
        Self::invalid_parameter(TOKEN_REQUIRED)
    }

    /// Any read of a value or change of a secret scheduled for deletion. Recorded
    /// (external-secrets/kubernetes-external-secrets#415, hashicorp/terraform-provider-aws#23998).
    pub fn marked_for_deletion() -> Self {
        Self::invalid_request(
            "You can't perform this operation on the secret because it was marked for deletion.",
        )
    }

    /// DeleteSecret (with a recovery window) of a secret already scheduled for deletion.
    /// Not found: AWS's text is not in public material; this is moto's and LocalStack's
    /// wording, so test suites written against them match.
    pub fn already_marked_for_deletion() -> Self {
        Self::invalid_request(
            "You tried to perform the operation on a secret that's currently marked deleted.",
        )
    }

    /// CreateSecret with the name of a secret scheduled for deletion. Recorded (LocalStack
    /// `test_exp_raised_on_creation_of_secret_scheduled_for_deletion`).
    pub fn name_scheduled_for_deletion() -> Self {
        Self::invalid_request(
            "You can't create this secret because a secret with this name is already scheduled for deletion.",
        )
    }

    /// PutSecretValue without SecretString or SecretBinary. Not found: AWS's text is not in
    /// public material; moto's and LocalStack's wording.
    pub fn value_required() -> Self {
        Self::invalid_request("You must provide either SecretString or SecretBinary.")
    }

    /// GetSecretValue with a VersionId and a VersionStage of different versions. Recorded
    /// (LocalStack `test_get_secret_value_errors`).
    pub fn stage_not_on_version() -> Self {
        Self::invalid_request(
            "You provided a VersionStage that is not associated to the provided VersionId.",
        )
    }

    /// RotateSecret with no RotationLambdaARN on a secret that has none. Recorded
    /// (getmoto/moto#3912, from the aws CLI).
    pub fn no_rotation_function() -> Self {
        Self::invalid_request("No Lambda rotation function ARN is associated with this secret.")
    }

    /// RotateSecret while AWSPENDING is on a version other than AWSCURRENT's. Recorded
    /// (hashicorp/terraform-provider-aws#35023, aws/aws-cdk#28539).
    pub fn rotation_in_progress() -> Self {
        Self::invalid_request(
            "A previous rotation isn't complete. That rotation will be reattempted.",
        )
    }

    /// PutSecretValue with a RotationToken that is not the token of the rotation in
    /// progress on the secret (or with none in progress), or with a ClientRequestToken that
    /// is not that rotation's version. Not found: AWS validates the token (docs: "Secrets
    /// Manager validates the identity with the rotation token") but its refusal's text is
    /// not in public material; Arca's wording.
    pub fn rotation_token_mismatch() -> Self {
        Self::invalid_request(
            "The RotationToken doesn't match a rotation in progress for this secret and ClientRequestToken.",
        )
    }

    /// ExternalSecretRotationMetadata / ExternalSecretRotationRoleArn (managed external
    /// rotation), which Arca does not offer. Arca's own text.
    pub fn external_rotation_unsupported() -> Self {
        Self::invalid_request(
            "Arca does not support managed external secret rotation (ExternalSecretRotationMetadata).",
        )
    }

    /// A model operation Arca does not serve yet. Arca's own text.
    pub fn operation_unsupported(name: &str) -> Self {
        Self::invalid_request(format!("Arca does not support the {name} operation yet."))
    }

    // ----- InvalidParameterException --------------------------------------------------

    /// Any write to a replica, in the replica's region. Recorded (real AWS output in
    /// gruntwork-io/cloud-nuke#435 and rebuy-de/aws-nuke#1127 for DeleteSecret, and
    /// lgallard/terraform-aws-secrets-manager#188 for PutResourcePolicy, status 400).
    pub fn replica_write() -> Self {
        Self::invalid_parameter(
            "Operation not permitted on a replica secret. Call must be made in primary secret's region.",
        )
    }

    /// DeleteSecret of a primary that still has replicas. Recorded (the same two issues):
    /// the full ARN, then the regions joined by ", " in brackets.
    pub fn delete_primary_with_replicas(arn: &str, regions: &[&str]) -> Self {
        Self::invalid_parameter(format!(
            "You can't delete secret {arn} that still has replica regions [{}].",
            regions.join(", ")
        ))
    }

    /// A replica region that is the secret's own region (or not a region). Recorded
    /// (aws-samples/aws-health-aware#32: CreateSecret with AddReplicaRegions of its own
    /// region).
    pub fn invalid_replica_region() -> Self {
        Self::invalid_parameter("Invalid replica region.")
    }

    /// StopReplicationToReplica on a secret that is not a replica. Not found: AWS's type
    /// is known (moto's tests assert InvalidParameterException) but not its text; this
    /// wording is Arca's.
    pub fn not_a_replica() -> Self {
        Self::invalid_parameter(
            "StopReplicationToReplica can only be called on a replica secret, in the replica's region.",
        )
    }

    /// Recorded (getmoto/moto#6461: AWS's answer, checked before the conflict with
    /// ForceDeleteWithoutRecovery).
    pub fn recovery_window_out_of_range() -> Self {
        Self::invalid_parameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        )
    }

    /// Not found: AWS documents the rule ("You can't use both this parameter and
    /// ForceDeleteWithoutRecovery in the same call"); the text is moto's.
    pub fn force_delete_with_window() -> Self {
        Self::invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        )
    }

    /// Both SecretString and SecretBinary. Recorded in 2018 with a typographic apostrophe
    /// (aws/aws-sdk-java#1556); AWS's texts have used ASCII apostrophes since 2020.
    pub fn both_value_kinds() -> Self {
        Self::invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )
    }

    /// UpdateSecretVersionStage moving a label that another version holds, without
    /// naming that version in RemoveFromVersionId. Recorded (moto's AWS-verified
    /// `test_update_secret_version_stage_dont_specify_current_stage`, for AWSCURRENT).
    pub fn remove_from_required(label: &str, holder: &str) -> Self {
        Self::invalid_parameter(format!(
            "The parameter RemoveFromVersionId can't be empty. Staging label {label} is currently attached to version {holder}, so you must explicitly reference that version in RemoveFromVersionId."
        ))
    }

    /// UpdateSecretVersionStage with RemoveFromVersionId naming a version that does not
    /// hold the label. Not found: Arca's wording.
    pub fn label_not_on_version(label: &str, version_id: &str) -> Self {
        Self::invalid_parameter(format!(
            "The staging label {label} is not attached to the version {version_id}, so you can't remove it."
        ))
    }

    /// UpdateSecretVersionStage with neither MoveToVersionId nor RemoveFromVersionId.
    /// Not found: Arca's wording.
    pub fn move_or_remove_required() -> Self {
        Self::invalid_parameter("You must specify either MoveToVersionId or RemoveFromVersionId.")
    }

    /// Removing AWSCURRENT without moving it. Docs ("A secret always has a version with
    /// the staging label AWSCURRENT"); the text is not found: Arca's wording.
    pub fn current_cannot_be_removed() -> Self {
        Self::invalid_parameter(
            "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.",
        )
    }

    /// A tag key with the reserved `aws:` prefix. Docs (tagging: "The aws: prefix is
    /// reserved for AWS use"); the text is not found: Arca's wording.
    pub fn reserved_tag_key() -> Self {
        Self::invalid_parameter(
            "Invalid parameter: Tag keys starting with 'aws:' are reserved for AWS use.",
        )
    }

    /// More than 50 tags on a secret. Docs (the quota of 50 tags per secret); the text is
    /// not found: Arca's wording.
    pub fn too_many_tags(max: usize) -> Self {
        Self::invalid_parameter(format!(
            "Invalid parameter: a secret can have at most {max} tags."
        ))
    }

    /// BatchGetSecretValue with both or neither of SecretIdList and Filters. Docs ("You
    /// must include Filters or SecretIdList, but not both"); the text is moto's.
    pub fn ids_or_filters() -> Self {
        Self::invalid_parameter(
            "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
        )
    }

    /// BatchGetSecretValue with SecretIdList and MaxResults or NextToken. Docs (MaxResults:
    /// "To use this parameter, you must also use the Filters parameter"); the text is not
    /// found: Arca's wording.
    pub fn paging_needs_filters() -> Self {
        Self::invalid_parameter("'MaxResults' and 'NextToken' can only be used with 'Filters'.")
    }

    /// A filter without Key or Values. Not found: moto's wording (moto
    /// `test_with_no_filter_key`, `test_with_no_filter_values`).
    pub fn filter_key_required() -> Self {
        Self::invalid_parameter("Invalid filter key")
    }

    /// See [`Self::filter_key_required`].
    pub fn filter_values_required(key: &str) -> Self {
        Self::invalid_parameter(format!("Invalid filter values for key: {key}"))
    }

    /// GetRandomPassword with fewer characters than required types. moto's wording; not
    /// found in AWS's recorded output.
    pub fn password_too_short() -> Self {
        Self::invalid_parameter("Password length is too short based on the required types.")
    }

    /// GetRandomPassword excluding every character. Not found: Arca's wording.
    pub fn password_nothing_allowed() -> Self {
        Self::invalid_parameter(
            "The password can't be generated: the request excludes every character type.",
        )
    }

    /// RotationRules with both AutomaticallyAfterDays and ScheduleExpression. Docs (the
    /// model: "with AutomaticallyAfterDays or ScheduleExpression, but not both"); the text
    /// is not found: Arca's wording.
    pub fn rotation_rules_both() -> Self {
        Self::invalid_parameter(
            "You cannot specify both rotation frequency and schedule expression together.",
        )
    }

    /// RotationRules with neither. Not found: Arca's wording.
    pub fn rotation_rules_empty() -> Self {
        Self::invalid_parameter(
            "RotationRules must contain either AutomaticallyAfterDays or ScheduleExpression.",
        )
    }

    /// A rotation Duration below one hour. Docs ("You can set the rotation window as small
    /// as one hour"); the text is not found: Arca's wording.
    pub fn rotation_window_too_short(duration: &str) -> Self {
        Self::invalid_parameter(format!(
            "The rotation window Duration {duration} must be at least 1h."
        ))
    }

    /// A rotation window reaching into the next one or the next UTC day. Docs (the
    /// model's words, quoted); the text is not found: Arca's wording around them.
    pub fn rotation_window_overlaps(duration: &str) -> Self {
        Self::invalid_parameter(format!(
            "The rotation window Duration {duration} must not extend into the next rotation window or the next UTC day."
        ))
    }

    /// A ScheduleExpression that is not a valid `rate()` or `cron()`. Docs (the schedule
    /// expression rules); the text is not found: Arca's wording with the reason.
    pub fn invalid_schedule(expression: &str, why: &str) -> Self {
        Self::invalid_parameter(format!(
            "The ScheduleExpression {expression} isn't valid: {why}"
        ))
    }

    /// A built-in rotator's event naming its secret by name: rotation events carry the
    /// full ARN (the region comes from it). Arca's own text.
    pub fn arn_required() -> Self {
        Self::invalid_parameter("The SecretId must be the secret's full ARN.")
    }

    // ----- ResourceExistsException ----------------------------------------------------

    /// Recorded (LocalStack `test_secret_exists_snapshots`).
    pub fn secret_exists(name: &str) -> Self {
        Self::new(
            ErrorCode::ResourceExists,
            format!("The operation failed because the secret {name} already exists."),
        )
    }

    /// A ClientRequestToken that names an existing version with a different value.
    /// Recorded (moto's AWS-verified `test_put_different_secret_value_with_same_token`
    /// and its CreateSecret and UpdateSecret twins).
    pub fn token_in_use(token: &str, arn: &str) -> Self {
        Self::new(
            ErrorCode::ResourceExists,
            format!("You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}."),
        )
    }

    // ----- LimitExceededException -----------------------------------------------------

    /// Docs (the quota of 20 staging labels per secret); the text is not found: Arca's.
    pub fn too_many_labels(max: usize) -> Self {
        Self::new(
            ErrorCode::LimitExceeded,
            format!("A secret can have at most {max} staging labels attached across all of its versions."),
        )
    }

    /// Docs (PutSecretValue: calling it more often than every 10 minutes "you will reach
    /// the quota for secret versions"); the text is not found: Arca's.
    pub fn too_many_versions(max: usize) -> Self {
        Self::new(
            ErrorCode::LimitExceeded,
            format!("You have exceeded the maximum number of versions ({max}) for this secret. Deprecated versions younger than 24 hours can't be removed yet."),
        )
    }

    // ----- InvalidNextTokenException --------------------------------------------------

    /// Model (the InvalidNextTokenException shape's documentation).
    pub fn invalid_next_token() -> Self {
        Self::new(
            ErrorCode::InvalidNextToken,
            "The NextToken value is invalid.",
        )
    }

    // ----- EncryptionFailure / DecryptionFailure --------------------------------------

    /// Model (the EncryptionFailure shape's documentation, less its link).
    pub fn encryption_failure() -> Self {
        Self::new(
            ErrorCode::EncryptionFailure,
            "Secrets Manager can't encrypt the protected secret text using the provided KMS key. Check that the KMS key is available, enabled, and not in an invalid state.",
        )
    }

    /// A KmsKeyId that names no key of the region. Model (the EncryptionFailure shape's
    /// documentation, first sentence); what AWS says for an unknown key is not found.
    pub fn unknown_key() -> Self {
        Self::new(
            ErrorCode::EncryptionFailure,
            "Secrets Manager can't encrypt the protected secret text using the provided KMS key.",
        )
    }

    /// Model (the DecryptionFailure shape's documentation).
    pub fn decryption_failure() -> Self {
        Self::new(
            ErrorCode::DecryptionFailure,
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
        )
    }

    // ----- AccessDeniedException ------------------------------------------------------

    /// RotateSecret naming a rotation function Secrets Manager can't invoke (Arca: no
    /// function is bound to the ARN). Recorded (LocalStack
    /// `test_rotate_secret_invalid_lambda_arn`).
    pub fn cannot_invoke_function() -> Self {
        Self::new(
            ErrorCode::AccessDenied,
            "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.",
        )
    }

    /// A caller whose credentials are scoped to one secret reaching for another (or for
    /// an operation on many). Arca's own: the message names no secret, so it reveals
    /// nothing about which exist.
    pub fn access_denied() -> Self {
        Self::new(
            ErrorCode::AccessDenied,
            "The credentials used are not authorized to perform this operation on this resource.",
        )
    }

    // ----- protocol errors ------------------------------------------------------------

    /// A body that is not the operation's JSON. Arca's wording (AWS's says where the
    /// parser stopped, as this does, without echoing the input, which may be secret).
    pub fn serialization(what: &str, line: usize, column: usize) -> Self {
        Self::new(
            ErrorCode::Serialization,
            format!("{what} (line {line}, column {column})"),
        )
    }

    /// An X-Amz-Target that names no operation of the service. AWS's JSON front end sends
    /// UnknownOperationException without a text; not found in recorded Secrets Manager
    /// output.
    pub fn unknown_operation() -> Self {
        Self::new(ErrorCode::UnknownOperation, "")
    }

    /// Arca's own limit, far above the largest valid request.
    pub fn body_too_large(max: usize) -> Self {
        Self::new(
            ErrorCode::RequestEntityTooLarge,
            format!("Request body is larger than {max} bytes."),
        )
    }

    /// Model (the InternalServiceError shape's documentation).
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalServiceError,
            "An error occurred on the server side.",
        )
    }
}

const TOKEN_REQUIRED: &str =
    "You must provide a ClientRequestToken value. We recommend a UUID-type value.";

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.aws_type(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_400_and_internal_is_500() {
        assert_eq!(ErrorCode::ResourceNotFound.http_status(), 400);
        assert_eq!(ErrorCode::InvalidSignature.http_status(), 400);
        assert_eq!(ErrorCode::Validation.http_status(), 400);
        assert_eq!(ErrorCode::InternalServiceError.http_status(), 500);
        assert_eq!(
            ErrorCode::ResourceNotFound.aws_type(),
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn validation_messages_count_and_join_violations() {
        let one = ApiError::validation(&[Violation {
            value: Shown::Value("AWSCURRENT".into()),
            path: "versionId".into(),
            constraint: "Member must have length greater than or equal to 32".into(),
        }]);
        assert_eq!(one.code, ErrorCode::Validation);
        assert_eq!(
            one.message,
            "1 validation error detected: Value 'AWSCURRENT' at 'versionId' failed to satisfy constraint: Member must have length greater than or equal to 32"
        );
        let two = ApiError::validation(&[
            Violation {
                value: Shown::Null,
                path: "secretId".into(),
                constraint: "Member must not be null".into(),
            },
            Violation {
                value: Shown::Hidden,
                path: "secretString".into(),
                constraint: "Member must have length less than or equal to 65536".into(),
            },
        ]);
        assert_eq!(
            two.message,
            "2 validation errors detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null; Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"
        );
    }
}
