//! The one error table: every error Arca can return to a client, with its AWS `__type`
//! and HTTP status. Domain code says which code an error is; only the HTTP layer renders it.

use std::fmt;

/// Every error name a client can see. Service errors come from botocore's model of
/// Secrets Manager; the protocol and authentication errors are the ones AWS's JSON
/// front end returns before a request reaches the service.
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
    PreconditionNotMet,
    PublicPolicy,
    // Protocol and authentication errors (AWS common errors for JSON protocols).
    UnrecognizedClient,
    InvalidSignature,
    IncompleteSignature,
    MissingAuthenticationToken,
    AccessDenied,
    Serialization,
    UnknownOperation,
    RequestEntityTooLarge,
    NotImplemented,
}

impl ErrorCode {
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
            PreconditionNotMet => "PreconditionNotMetException",
            PublicPolicy => "PublicPolicyException",
            UnrecognizedClient => "UnrecognizedClientException",
            InvalidSignature => "InvalidSignatureException",
            IncompleteSignature => "IncompleteSignature",
            MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AccessDenied => "AccessDeniedException",
            Serialization => "SerializationException",
            UnknownOperation => "UnknownOperationException",
            RequestEntityTooLarge => "RequestEntityTooLargeException",
            NotImplemented => "NotImplementedException",
        }
    }

    /// The HTTP status AWS answers with. Secrets Manager uses 400 for every client error
    /// (unlike moto's 404s); only internal errors are 5xx.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InternalServiceError => 500,
            MissingAuthenticationToken | AccessDenied => 400,
            UnrecognizedClient | InvalidSignature | IncompleteSignature => 400,
            RequestEntityTooLarge => 413,
            NotImplemented => 501,
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

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn not_found() -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            "Secrets Manager can't find the specified secret.",
        )
    }
    pub fn not_found_version() -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
        )
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalServiceError,
            "An error occurred on the server side.",
        )
    }
}

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
        assert_eq!(ErrorCode::InternalServiceError.http_status(), 500);
        assert_eq!(
            ErrorCode::ResourceNotFound.aws_type(),
            "ResourceNotFoundException"
        );
    }
}
