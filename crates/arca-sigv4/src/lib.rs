//! arca-sigv4: a pure AWS Signature Version 4 verifier for the server side. The HTTP layer hands
//! in the request as plain strings and bytes ([`RequestParts`]); [`verify`] parses the
//! Authorization header or presigned query, runs the cheap checks (algorithm, scope, region,
//! clock skew, payload hash), then looks the key up and compares signatures in constant time.
//! No web framework, no I/O, no clock: the caller passes `now`.
//!
//! Data flow: `parse` (header/query -> `AuthParams`) -> `verify` (checks, key lookup) ->
//! `canonical` (canonical request) -> `signing` (string to sign, key derivation, signature),
//! with `cache` keeping derived keys across requests. The public step functions build each
//! piece as a string, as the spec describes it; `verify` uses streaming twins of them (parts
//! borrowed from the request, the canonical request hashed as it is produced, the string to
//! sign fed straight into the HMAC), tested to agree byte for byte.
//! `sign` reuses the step functions to produce signatures for tests and load generators.

mod cache;
mod canonical;
mod error;
mod parse;
mod request;
mod sign;
mod signing;
mod split;
mod time;
mod verify;

pub use cache::SigningKeyCache;
pub use canonical::{
    canonical_headers, canonical_query_string, canonical_request, canonical_uri,
    parse_signed_headers, payload_hash, signed_headers, uri_encode,
};
pub use error::{AuthError, AuthErrorKind};
pub use parse::{
    parse_authorization_header, parse_credential, parse_presigned_query, Credential,
    ParsedAuthorization, PresignedQuery,
};
pub use request::RequestParts;
pub use sign::{
    presign_request, sign_json_post, sign_request, sign_request_cached, SignedAuthorization,
    SigningParams, JSON_CONTENT_TYPE,
};
pub use signing::{
    compute_signature, derive_signing_key, string_to_sign, CredentialScope, Signature, SigningKey,
    ALGORITHM, TERMINATOR,
};
pub use time::{format_amz_date, parse_amz_date, parse_http_date};
pub use verify::{verify, verify_cached, KeyLookup, Verified, VerifyConfig};
