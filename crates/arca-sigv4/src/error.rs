//! The verifier's errors: which AWS authentication error a rejection is, and a message that is
//! safe to send to the client (it never carries a signature, a key or a string to sign).

use arca_types::{ApiError, ErrorCode};

/// Why a request was not authenticated. Each kind maps to the `__type` AWS's JSON front end
/// returns for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// Neither an Authorization header nor a presigned query.
    MissingAuthenticationToken,
    /// The Authorization header or presigned query is malformed or lacks a part.
    IncompleteSignature,
    /// Scope, payload hash or signature does not match.
    InvalidSignature,
    /// The access key id is unknown, or its session token is not one Arca issued for it.
    UnrecognizedClient,
    /// The session token of temporary credentials is past its expiry.
    ExpiredToken,
    /// The request time is outside the allowed skew or the presigned URL has expired.
    /// AWS's JSON services report this as `InvalidSignatureException`.
    SignatureExpired,
    /// Authenticated but not allowed. `verify` never returns it; it exists so that the
    /// authorization layer above can report through the same type.
    AccessDenied,
}

impl AuthErrorKind {
    /// The `__type` AWS puts in the error body for this kind.
    pub fn aws_type(&self) -> &'static str {
        self.error_code().aws_type()
    }

    /// The entry in Arca's one error table.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            AuthErrorKind::MissingAuthenticationToken => ErrorCode::MissingAuthenticationToken,
            AuthErrorKind::IncompleteSignature => ErrorCode::IncompleteSignature,
            AuthErrorKind::InvalidSignature | AuthErrorKind::SignatureExpired => {
                ErrorCode::InvalidSignature
            }
            AuthErrorKind::UnrecognizedClient => ErrorCode::UnrecognizedClient,
            AuthErrorKind::ExpiredToken => ErrorCode::ExpiredToken,
            AuthErrorKind::AccessDenied => ErrorCode::AccessDenied,
        }
    }
}

/// A rejected request. `message` is written for the client and contains no secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.aws_type())]
pub struct AuthError {
    pub kind: AuthErrorKind,
    pub message: String,
}

impl AuthError {
    pub fn new(kind: AuthErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn missing_token() -> Self {
        Self::new(
            AuthErrorKind::MissingAuthenticationToken,
            "Missing Authentication Token",
        )
    }

    pub(crate) fn incomplete(message: impl Into<String>) -> Self {
        Self::new(AuthErrorKind::IncompleteSignature, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(AuthErrorKind::InvalidSignature, message)
    }

    pub(crate) fn signature_mismatch() -> Self {
        Self::invalid(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. \
             Consult the service documentation for details.",
        )
    }

    /// Temporary credentials past their expiry (AWS's text).
    pub fn expired_token() -> Self {
        Self::new(
            AuthErrorKind::ExpiredToken,
            "The security token included in the request is expired",
        )
    }

    pub fn unrecognized_client() -> Self {
        Self::new(
            AuthErrorKind::UnrecognizedClient,
            "The security token included in the request is invalid.",
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(e.kind.error_code(), e.message)
    }
}

/// Client-supplied text that we echo back in messages (an algorithm name, a terminator) is cut
/// short and stripped of anything but plain visible ASCII, so a message can't be used to
/// reflect arbitrary bytes, and can't be long.
pub(crate) fn echo(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_types_match_aws() {
        use AuthErrorKind::*;
        assert_eq!(
            MissingAuthenticationToken.aws_type(),
            "MissingAuthenticationTokenException"
        );
        assert_eq!(IncompleteSignature.aws_type(), "IncompleteSignature");
        assert_eq!(InvalidSignature.aws_type(), "InvalidSignatureException");
        assert_eq!(UnrecognizedClient.aws_type(), "UnrecognizedClientException");
        assert_eq!(SignatureExpired.aws_type(), "InvalidSignatureException");
        assert_eq!(AccessDenied.aws_type(), "AccessDeniedException");
    }

    #[test]
    fn echo_strips_and_truncates() {
        assert_eq!(echo("ab c\n\u{1b}d"), "abcd");
        assert_eq!(echo(&"x".repeat(500)).len(), 64);
    }
}
