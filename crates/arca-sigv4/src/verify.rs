//! `verify`: the order of checks. Everything that needs no secret (shape, algorithm, scope,
//! region, clock, payload hash) is checked first, so a forged or stale request costs no key
//! lookup; then the key is looked up; last, the signature is recomputed from the same step
//! functions the spec names and compared in constant time.

use std::borrow::Cow;

use arca_types::secret::SecretString;
use sha2::{Digest, Sha256};

use crate::cache::SigningKeyCache;
use crate::canonical::{hash_canonical_request, SignedNames};
use crate::error::{echo, AuthError, AuthErrorKind};
use crate::parse::{
    parse_authorization_ref, parse_presigned_query, CredentialRef, PresignedQuery, X_AMZ_SIGNATURE,
};
use crate::request::RequestParts;
use crate::signing::{
    ct_eq_bytes, derive_signing_key, hex32, signature_hex, ALGORITHM, TERMINATOR,
};
use crate::time::{format_amz_date, parse_amz_date, parse_http_date};

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// The service name the credential scope must carry, e.g. "secretsmanager".
    pub service: String,
    /// How far the request time may be from `now`, either way (AWS uses 300).
    pub max_skew_secs: i64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            service: "secretsmanager".to_string(),
            max_skew_secs: 300,
        }
    }
}

/// Looks up the secret access key for an access key id (e.g. from the store).
/// Returning `None` means UnrecognizedClientException.
pub trait KeyLookup {
    fn secret_key(&self, access_key_id: &str) -> Option<SecretString>;
    /// The secret of temporary credentials: `session_token` was issued with
    /// `access_key_id`. The default knows no sessions.
    fn session_key(
        &self,
        access_key_id: &str,
        session_token: &str,
    ) -> Result<SecretString, AuthError> {
        let _ = (access_key_id, session_token);
        Err(AuthError::unrecognized_client())
    }
}

impl<F: Fn(&str) -> Option<SecretString>> KeyLookup for F {
    fn secret_key(&self, access_key_id: &str) -> Option<SecretString> {
        self(access_key_id)
    }
}

/// Who signed an accepted request, and for which scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    /// `YYYYMMDD` from the credential scope.
    pub date: String,
    /// The signed header names as `SignedHeaders` lists them canonically: lowercase,
    /// sorted, joined with `;` (one string rather than a list: every request builds one).
    pub signed_headers: String,
}

impl Verified {
    /// The signed header names, lowercase and sorted.
    pub fn signed_header_names(&self) -> impl Iterator<Item = &str> {
        self.signed_headers.split(';')
    }
}

/// How long a request stays valid: header-signed requests within the clock skew of their
/// time, presigned ones until their `X-Amz-Expires` runs out.
#[derive(Clone, Copy)]
enum Validity {
    Skew,
    Expires(i64),
}

/// The authentication parameters, whichever form they came in, borrowed from the request
/// (header form) or from its parsed presigned query. No Debug: it holds the provided
/// signature as a plain `&str`.
struct AuthParams<'a> {
    algorithm: &'a str,
    credential: CredentialRef<'a>,
    signed_headers: SignedNames<'a>,
    /// As sent; compared in constant time, never printed.
    signature: &'a str,
    /// The request time, `YYYYMMDDTHHMMSSZ`, as it goes into the string to sign.
    amz_date: Cow<'a, str>,
    request_time: i64,
    validity: Validity,
    presigned: bool,
    /// The session token of temporary credentials, if the query carried one.
    session_token: Option<&'a str>,
}

const DATE_REQUIRED: &str =
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";

/// The one value of a header that must not repeat (a second Authorization or X-Amz-Date
/// would make it ambiguous which one was checked).
fn single_header<'a>(req: &RequestParts<'a>, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut values = req.header_values(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::incomplete(format!(
            "The '{name}' header must not be repeated."
        )));
    }
    Ok(first)
}

fn bad_date(value: &str) -> AuthError {
    AuthError::incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
        echo(value)
    ))
}

/// Reads the header form: Authorization plus X-Amz-Date (or Date).
fn header_params<'a>(
    req: &RequestParts<'a>,
    authorization: &'a str,
) -> Result<AuthParams<'a>, AuthError> {
    let date = match single_header(req, "x-amz-date")? {
        Some(d) => Some((d, parse_amz_date(d.trim()), true)),
        None => single_header(req, "date")?.map(|d| (d, parse_http_date(d.trim()), false)),
    };
    let parsed = match parse_authorization_ref(authorization) {
        Ok(p) => p,
        // AWS lists a missing date together with the missing components.
        Err(mut e) if date.is_none() => {
            e.message.push(' ');
            e.message.push_str(DATE_REQUIRED);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let (amz_date, request_time) = match date {
        None => return Err(AuthError::incomplete(DATE_REQUIRED)),
        Some((raw, None, _)) => return Err(bad_date(raw)),
        // parse_amz_date accepts exactly what format_amz_date writes, so a valid X-Amz-Date
        // is its own canonical form and needs no copy.
        Some((raw, Some(t), true)) => (Cow::Borrowed(raw.trim()), t),
        Some((_, Some(t), false)) => (Cow::Owned(format_amz_date(t)), t),
    };
    Ok(AuthParams {
        algorithm: parsed.algorithm,
        credential: parsed.credential,
        signed_headers: parsed.signed_headers,
        signature: parsed.signature,
        amz_date,
        request_time,
        validity: Validity::Skew,
        presigned: false,
        session_token: None,
    })
}

/// Reads the presigned form from its parsed query. `scope_id` receives the key cache's id
/// (the parsed credential keeps its parts apart), which the parameters then borrow.
fn presigned_params<'a>(
    q: &'a PresignedQuery,
    scope_id: &'a mut String,
) -> Result<AuthParams<'a>, AuthError> {
    let request_time = parse_amz_date(&q.amz_date).ok_or_else(|| bad_date(&q.amz_date))?;
    let c = &q.credential;
    *scope_id = format!(
        "{}/{}/{}/{}",
        c.access_key_id, c.scope.date, c.scope.region, c.scope.service
    );
    Ok(AuthParams {
        algorithm: &q.algorithm,
        credential: CredentialRef {
            access_key_id: &c.access_key_id,
            date: &c.scope.date,
            region: &c.scope.region,
            service: &c.scope.service,
            terminator: &c.terminator,
            scope_id,
        },
        signed_headers: SignedNames::Borrowed(&q.signed_headers),
        signature: q.signature.expose(),
        amz_date: Cow::Borrowed(&q.amz_date),
        request_time,
        validity: Validity::Expires(q.expires_secs),
        presigned: true,
        session_token: q.security_token.as_ref().map(|t| t.expose()),
    })
}

/// "5 min." or "90 sec.", as AWS words the window in expiry messages.
fn window(secs: i64) -> String {
    if secs % 60 == 0 {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} sec.")
    }
}

fn expired(request_time: i64, now: i64, allowed: i64) -> AuthError {
    AuthError::new(
        AuthErrorKind::SignatureExpired,
        format!(
            "Signature expired: {} is now earlier than {} ({} - {})",
            format_amz_date(request_time),
            format_amz_date(now - allowed),
            format_amz_date(now),
            window(allowed)
        ),
    )
}

fn not_yet_current(request_time: i64, now: i64, allowed: i64) -> AuthError {
    AuthError::new(
        AuthErrorKind::SignatureExpired,
        format!(
            "Signature not yet current: {} is still later than {} ({} + {})",
            format_amz_date(request_time),
            format_amz_date(now + allowed),
            format_amz_date(now),
            window(allowed)
        ),
    )
}

/// `^([a-z]+-)+\d+$`: "us-east-1", "eu-central-2", "us-gov-west-1".
fn looks_like_region(region: &str) -> bool {
    let Some((name, number)) = region.rsplit_once('-') else {
        return false;
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && name
            .split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Verifies a SigV4-signed request (header form or presigned query) at time `now_unix_secs`.
///
/// Check order: shape -> algorithm -> host signed -> session token signed -> scope
/// (terminator, service, region, date) -> clock -> payload hash -> key lookup (with the
/// session token, for temporary credentials) -> signature (constant time).
pub fn verify(
    req: &RequestParts,
    cfg: &VerifyConfig,
    now_unix_secs: i64,
    keys: &dyn KeyLookup,
) -> Result<Verified, AuthError> {
    verify_cached(req, cfg, now_unix_secs, keys, None)
}

/// `verify`, reusing derived signing keys from `cache` (a server verifies many requests
/// per key and day; deriving costs four HMACs).
///
/// This is the server's per-request path, so the header form allocates next to nothing: the
/// header is parsed into borrowed parts, the canonical request is streamed into its hash,
/// the string to sign into the HMAC, and hex digests live on the stack. Each of those is
/// tested to agree byte for byte with the spec's step functions.
pub fn verify_cached(
    req: &RequestParts,
    cfg: &VerifyConfig,
    now_unix_secs: i64,
    keys: &dyn KeyLookup,
    cache: Option<&SigningKeyCache>,
) -> Result<Verified, AuthError> {
    let authorization = single_header(req, "authorization")?;
    let presigned = parse_presigned_query(req.query)?;
    let mut presigned_scope_id = String::new();
    let params = match (authorization, &presigned) {
        (None, None) => return Err(AuthError::missing_token()),
        (Some(_), Some(_)) => {
            return Err(AuthError::incomplete(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter \
                 or the Authorization header should be specified.",
            ))
        }
        (Some(h), None) => header_params(req, h)?,
        (None, Some(q)) => presigned_params(q, &mut presigned_scope_id)?,
    };

    if params.algorithm != ALGORITHM {
        return Err(AuthError::incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'. Only '{ALGORITHM}' is supported.",
            echo(params.algorithm)
        )));
    }
    // Without host in the signature a request could be replayed against another endpoint.
    if !params.signed_headers.contains("host") {
        return Err(AuthError::incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let token_header = single_header(req, "x-amz-security-token")?;
    if token_header.is_some() && !params.signed_headers.contains("x-amz-security-token") {
        return Err(AuthError::incomplete(
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let session_token = params.session_token.or(token_header);

    let scope = &params.credential;
    if scope.terminator != TERMINATOR {
        return Err(AuthError::invalid(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'. ",
            echo(scope.terminator)
        )));
    }
    if scope.service != cfg.service {
        return Err(AuthError::invalid(format!(
            "Credential should be scoped to correct service: '{}'. ",
            cfg.service
        )));
    }
    if !looks_like_region(scope.region) {
        return Err(AuthError::invalid(
            "Credential should be scoped to a valid region. ",
        ));
    }
    let http_day = &params.amz_date[..8];
    if scope.date != http_day {
        return Err(AuthError::invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{http_day}', from '{}'.",
            echo(scope.date),
            params.amz_date
        )));
    }

    let skew = cfg.max_skew_secs;
    let t = params.request_time;
    if t > now_unix_secs.saturating_add(skew) {
        return Err(not_yet_current(t, now_unix_secs, skew));
    }
    match params.validity {
        Validity::Skew if t < now_unix_secs.saturating_sub(skew) => {
            return Err(expired(t, now_unix_secs, skew))
        }
        Validity::Expires(secs) if now_unix_secs > t.saturating_add(secs) => {
            return Err(expired(t, now_unix_secs, secs))
        }
        _ => {}
    }

    let body_hash = hex32(&Sha256::digest(req.body).into());
    if let Some(claimed) = single_header(req, "x-amz-content-sha256")? {
        let claimed = claimed.trim();
        if claimed.len() != 64 || !claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
            // UNSIGNED-PAYLOAD and the STREAMING-* modes would leave the body unauthenticated.
            return Err(AuthError::invalid(
                "x-amz-content-sha256 must be the hex SHA-256 of the payload; \
                 unsigned and streaming payloads are not accepted by this service.",
            ));
        }
        if !claimed.as_bytes().eq_ignore_ascii_case(&body_hash) {
            return Err(AuthError::invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }

    // Temporary credentials are known only together with their session token.
    let secret = match session_token {
        Some(token) => keys.session_key(scope.access_key_id, token.trim())?,
        None => keys
            .secret_key(scope.access_key_id)
            .ok_or_else(AuthError::unrecognized_client)?,
    };

    let exclude = params.presigned.then_some(X_AMZ_SIGNATURE);
    let creq_hash = hex32(&hash_canonical_request(
        req.method,
        req.path,
        req.query,
        exclude,
        req.headers,
        &params.signed_headers,
        &body_hash,
    ));
    let (cached, derived);
    let key: &[u8] = match cache {
        Some(c) => {
            cached = c.key_for(
                scope.scope_id,
                &secret,
                scope.date,
                scope.region,
                scope.service,
            );
            &cached[..]
        }
        None => {
            derived = derive_signing_key(&secret, scope.date, scope.region, scope.service);
            derived.expose()
        }
    };
    let expected = signature_hex(
        key,
        &params.amz_date,
        scope.date,
        scope.region,
        scope.service,
        &creq_hash,
    );
    // Constant time; lengths are public.
    if !ct_eq_bytes(&expected[..], params.signature.as_bytes()) {
        return Err(AuthError::signature_mismatch());
    }

    Ok(Verified {
        access_key_id: scope.access_key_id.to_string(),
        region: scope.region.to_string(),
        date: scope.date.to_string(),
        signed_headers: params.signed_headers.joined(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_shape() {
        for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "a-0"] {
            assert!(looks_like_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-EAST-1",
            "us--1",
            "-1",
            "us-east-1a",
            "1",
            "us_east-1",
        ] {
            assert!(!looks_like_region(bad), "{bad}");
        }
    }

    /// header_params signs with the X-Amz-Date as sent instead of reformatting the parsed
    /// time; that is only the same if every value parse_amz_date accepts formats back to
    /// itself.
    #[test]
    fn accepted_amz_dates_are_their_own_formatting() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x4441_5445);
        let mut accepted = 0;
        for _ in 0..100_000 {
            let s = format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                rng.gen_range(0..10_000),
                rng.gen_range(0..14),
                rng.gen_range(0..33),
                rng.gen_range(0..25),
                rng.gen_range(0..61),
                rng.gen_range(0..61)
            );
            if let Some(t) = parse_amz_date(&s) {
                accepted += 1;
                assert_eq!(format_amz_date(t), s);
            }
        }
        assert!(accepted > 50_000, "{accepted}");
    }

    #[test]
    fn window_wording() {
        assert_eq!(window(300), "5 min.");
        assert_eq!(window(90), "90 sec.");
    }
}
