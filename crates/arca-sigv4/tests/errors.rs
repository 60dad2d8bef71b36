//! Every way `verify` rejects a request: the kind, AWS's wording, and the order of checks
//! (cheap checks before the key lookup). Requests are signed with `sign_request` /
//! `presign_request`, which the vector and oracle tests pin to AWS's own signers.

mod common;

use std::cell::Cell;

use arca_sigv4::{
    canonical_headers, canonical_query_string, canonical_request, canonical_uri, compute_signature,
    derive_signing_key, parse_signed_headers, payload_hash, presign_request, sign_request,
    sign_request_cached, signed_headers, string_to_sign, verify, verify_cached, AuthError,
    AuthErrorKind, KeyLookup, SigningKeyCache, SigningParams, VerifyConfig,
};
use arca_types::secret::SecretString;
use common::{Keys, OwnedRequest};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z
const T: i64 = 1_440_938_160;

fn cfg() -> VerifyConfig {
    VerifyConfig::default()
}

fn keys() -> Keys {
    Keys::one(AKID, SECRET)
}

fn base() -> OwnedRequest {
    OwnedRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![
            ("Host".into(), "localhost:7700".into()),
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            (
                "X-Amz-Target".into(),
                "secretsmanager.GetSecretValue".into(),
            ),
        ],
        body: br#"{"SecretId":"db/password"}"#.to_vec(),
    }
}

fn signed_with(req: &OwnedRequest, region: &str, service: &str, at: i64) -> OwnedRequest {
    let secret = SecretString::new(SECRET.into());
    let p = SigningParams {
        access_key_id: AKID,
        secret_access_key: &secret,
        region,
        service,
        unix_secs: at,
    };
    let s = req.with_parts(|parts| sign_request(parts, &p));
    let mut out = req.clone();
    out.headers.push(("X-Amz-Date".into(), s.x_amz_date));
    out.headers.push(("Authorization".into(), s.authorization));
    out
}

fn signed(req: &OwnedRequest) -> OwnedRequest {
    signed_with(req, "us-east-1", "secretsmanager", T)
}

/// The test key's parameters in the default region and service, at `at`.
fn params(secret: &SecretString, at: i64) -> SigningParams<'_> {
    SigningParams {
        access_key_id: AKID,
        secret_access_key: secret,
        region: "us-east-1",
        service: "secretsmanager",
        unix_secs: at,
    }
}

fn presigned(req: &OwnedRequest, at: i64, expires: i64) -> OwnedRequest {
    let secret = SecretString::new(SECRET.into());
    let p = params(&secret, at);
    let mut out = req.clone();
    out.query = req.with_parts(|parts| presign_request(parts, &p, expires));
    out
}

fn check(req: &OwnedRequest, now: i64) -> Result<arca_sigv4::Verified, AuthError> {
    let r = req.with_parts(|p| verify(p, &cfg(), now, &keys()));
    if let Err(e) = &r {
        assert_no_secrets(req, &e.message);
    }
    r
}

fn reject(req: &OwnedRequest, now: i64) -> AuthError {
    check(req, now).expect_err("should be rejected")
}

/// No message may carry the signature, the secret or the session token.
fn assert_no_secrets(req: &OwnedRequest, message: &str) {
    assert!(!message.contains(SECRET), "{message}");
    let mut sigs: Vec<&str> = Vec::new();
    if let Some(a) = req.header("authorization") {
        if let Some((_, s)) = a.split_once("Signature=") {
            sigs.push(s);
        }
    }
    if let Some((_, s)) = req.query.split_once("X-Amz-Signature=") {
        sigs.push(s);
    }
    for s in sigs {
        let s = s.split(['&', ',']).next().unwrap_or_default();
        assert!(s.is_empty() || !message.contains(s), "{message}");
    }
    if let Some(t) = req.header("x-amz-security-token") {
        assert!(!message.contains(t), "{message}");
    }
}

fn set_header(req: &mut OwnedRequest, name: &str, value: &str) {
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    req.headers.push((name.into(), value.into()));
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
    Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

#[test]
fn a_correctly_signed_request_is_accepted() {
    let v = check(&signed(&base()), T).expect("accepted");
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.date, "20150830");
    assert_eq!(
        v.signed_headers,
        "content-type;host;x-amz-date;x-amz-target"
    );
    assert_eq!(
        v.signed_header_names().collect::<Vec<_>>(),
        ["content-type", "host", "x-amz-date", "x-amz-target"]
    );
}

#[test]
fn no_authorization_and_no_presigned_query_is_missing_token() {
    let e = reject(&base(), T);
    assert_eq!(e.kind, AuthErrorKind::MissingAuthenticationToken);
    assert_eq!(e.message, "Missing Authentication Token");
    assert_eq!(e.kind.aws_type(), "MissingAuthenticationTokenException");
    // A query that merely has unrelated parameters is not a presigned request either.
    let mut r = base();
    r.query = "X-Amz-Date=20150830T123600Z&foo=bar".into();
    assert_eq!(
        reject(&r, T).kind,
        AuthErrorKind::MissingAuthenticationToken
    );
}

#[test]
fn malformed_authorization_lists_what_is_missing() {
    let mut r = base();
    set_header(&mut r, "X-Amz-Date", "20150830T123600Z");
    set_header(
        &mut r,
        "Authorization",
        "AWS4-HMAC-SHA256 SignedHeaders=host",
    );
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert_eq!(e.kind.aws_type(), "IncompleteSignature");
    assert_eq!(
        e.message,
        "Authorization header requires 'Credential' parameter. \
         Authorization header requires 'Signature' parameter."
    );

    // Without any date header AWS adds that requirement to the same message.
    let mut r = base();
    set_header(&mut r, "Authorization", "Bearer abc");
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert_eq!(
        e.message,
        "Authorization header requires 'Credential' parameter. \
         Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    );

    // Well-formed but no date at all.
    let mut r = signed(&base());
    r = r.without_header("x-amz-date");
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert!(
        e.message.contains("'X-Amz-Date' or a 'Date'"),
        "{}",
        e.message
    );
}

#[test]
fn malformed_dates_are_incomplete() {
    let mut r = signed(&base());
    set_header(&mut r, "X-Amz-Date", "2015-08-30T12:36:00Z");
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert!(
        e.message
            .starts_with("Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'."),
        "{}",
        e.message
    );
}

#[test]
fn unsupported_algorithm_is_incomplete() {
    let mut r = signed(&base());
    let a = r
        .header("authorization")
        .expect("authz")
        .replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
    set_header(&mut r, "Authorization", &a);
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert_eq!(
        e.message,
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'. Only 'AWS4-HMAC-SHA256' is supported."
    );
}

#[test]
fn host_must_be_signed() {
    let r = signed(&base().without_header("host"));
    // The client then sends a Host header that the signature does not cover.
    let mut r = r;
    r.headers.push(("Host".into(), "localhost:7700".into()));
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert_eq!(
        e.message,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn credential_must_have_five_parts() {
    let mut r = signed(&base());
    let a = r
        .header("authorization")
        .expect("authz")
        .replace("/us-east-1/", "/");
    set_header(&mut r, "Authorization", &a);
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert!(
        e.message.starts_with("Credential must have exactly 5"),
        "{}",
        e.message
    );
}

#[test]
fn scope_terminator_service_region_and_date_are_checked() {
    let mut r = signed(&base());
    let a = r
        .header("authorization")
        .expect("authz")
        .replace("/aws4_request", "/aws5_request");
    set_header(&mut r, "Authorization", &a);
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(
        e.message,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
    );

    let e = reject(&signed_with(&base(), "us-east-1", "kms", T), T);
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(e.kind.aws_type(), "InvalidSignatureException");
    assert_eq!(
        e.message,
        "Credential should be scoped to correct service: 'secretsmanager'. "
    );

    for region in ["useast1", "US-EAST-1", "us-east-", "us east-1"] {
        let e = reject(&signed_with(&base(), region, "secretsmanager", T), T);
        assert_eq!(e.kind, AuthErrorKind::InvalidSignature, "{region}");
        assert_eq!(e.message, "Credential should be scoped to a valid region. ");
    }

    let mut r = signed(&base());
    let a = r
        .header("authorization")
        .expect("authz")
        .replace("/20150830/", "/20150829/");
    set_header(&mut r, "Authorization", &a);
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(
        e.message,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '20150829' != '20150830', from '20150830T123600Z'."
    );
}

#[test]
fn clock_skew_both_ways() {
    let r = signed(&base());
    // Exactly at the edge is still fine.
    check(&r, T + 300).expect("300 s late is accepted");
    check(&r, T - 300).expect("300 s early is accepted");

    let e = reject(&r, T + 600);
    assert_eq!(e.kind, AuthErrorKind::SignatureExpired);
    assert_eq!(e.kind.aws_type(), "InvalidSignatureException");
    assert_eq!(
        e.message,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z \
         (20150830T124600Z - 5 min.)"
    );

    let e = reject(&r, T - 301);
    assert_eq!(e.kind, AuthErrorKind::SignatureExpired);
    assert_eq!(
        e.message,
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z \
         (20150830T123059Z + 5 min.)"
    );
}

#[test]
fn date_header_is_the_fallback_for_x_amz_date() {
    // Signed by hand with the step functions: Date instead of X-Amz-Date.
    let mut r = base();
    r.headers
        .push(("Date".into(), "Sun, 30 Aug 2015 12:36:00 GMT".into()));
    let names = parse_signed_headers("host;date;x-amz-target;content-type").expect("names");
    let creq = r.with_parts(|p| {
        canonical_request(
            p.method,
            &canonical_uri(p.path),
            &canonical_query_string(p.query, None),
            &canonical_headers(p.headers, &names),
            &signed_headers(&names),
            &payload_hash(p.body),
        )
    });
    let scope = arca_sigv4::CredentialScope {
        date: "20150830".into(),
        region: "us-east-1".into(),
        service: "secretsmanager".into(),
    };
    let sts = string_to_sign("20150830T123600Z", &scope, &creq);
    let key = derive_signing_key(
        &SecretString::new(SECRET.into()),
        "20150830",
        "us-east-1",
        "secretsmanager",
    );
    let sig = compute_signature(&key, &sts);
    r.headers.push((
        "Authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders={}, Signature={}",
            signed_headers(&names),
            sig.expose()
        ),
    ));
    check(&r, T).expect("Date fallback accepted");
    let e = reject(&r, T + 301);
    assert_eq!(e.kind, AuthErrorKind::SignatureExpired);
}

#[test]
fn presigned_expiry_and_future_dates() {
    let r = presigned(&base(), T, 60);
    check(&r, T).expect("fresh");
    check(&r, T + 60).expect("last second");
    let e = reject(&r, T + 61);
    assert_eq!(e.kind, AuthErrorKind::SignatureExpired);
    assert_eq!(
        e.message,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T123701Z - 1 min.)"
    );
    let e = reject(&r, T - 301);
    assert_eq!(e.kind, AuthErrorKind::SignatureExpired);
    assert!(
        e.message.starts_with("Signature not yet current"),
        "{}",
        e.message
    );

    // Presigned and an Authorization header at once: ambiguous.
    let mut both = r.clone();
    both.headers
        .push(("Authorization".into(), "AWS4-HMAC-SHA256 x".into()));
    assert_eq!(reject(&both, T).kind, AuthErrorKind::IncompleteSignature);

    // A presigned query missing parts names them.
    let mut partial = base();
    partial.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abcd".into();
    let e = reject(&partial, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert!(
        e.message.contains("must include 'X-Amz-Credential'"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("must include 'X-Amz-Expires'"),
        "{}",
        e.message
    );

    // A presigned signature over a different query param fails.
    let mut tampered = r.clone();
    tampered.query = tampered
        .query
        .replace("X-Amz-Expires=60", "X-Amz-Expires=600");
    let e = reject(&tampered, T);
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(e.message, MISMATCH);
}

#[test]
fn unknown_access_key_is_unrecognized_client() {
    let r = signed(&base());
    let e = r
        .with_parts(|p| verify(p, &cfg(), T, &Keys::one("AKIDOTHER", SECRET)))
        .expect_err("unknown key");
    assert_eq!(e.kind, AuthErrorKind::UnrecognizedClient);
    assert_eq!(e.kind.aws_type(), "UnrecognizedClientException");
    assert_eq!(
        e.message,
        "The security token included in the request is invalid."
    );
}

#[test]
fn bad_signature_is_invalid_signature() {
    let mut r = signed(&base());
    let a = r.header("authorization").expect("authz").to_string();
    let (head, sig) = a.split_once("Signature=").expect("sig");
    let flipped: String = sig
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 5 {
                if c == 'a' {
                    'b'
                } else {
                    'a'
                }
            } else {
                c
            }
        })
        .collect();
    set_header(
        &mut r,
        "Authorization",
        &format!("{head}Signature={flipped}"),
    );
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(e.message, MISMATCH);

    // Truncated and empty signatures too.
    set_header(
        &mut r,
        "Authorization",
        &format!("{head}Signature={}", &sig[..63]),
    );
    assert_eq!(reject(&r, T).message, MISMATCH);
    set_header(&mut r, "Authorization", &format!("{head}Signature="));
    assert_eq!(reject(&r, T).message, MISMATCH);
}

#[test]
fn content_sha256_must_match_the_body_and_unsigned_payload_is_refused() {
    let mut req = base();
    req.headers
        .push(("X-Amz-Content-Sha256".into(), payload_hash(&req.body)));
    check(&signed(&req), T).expect("matching content hash accepted");

    let mut wrong = base();
    wrong.headers.push((
        "X-Amz-Content-Sha256".into(),
        payload_hash(b"something else"),
    ));
    let e = reject(&signed(&wrong), T);
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(
        e.message,
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    );

    for mode in [
        "UNSIGNED-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "abc",
    ] {
        let mut unsigned = base();
        unsigned
            .headers
            .push(("X-Amz-Content-Sha256".into(), mode.into()));
        let e = reject(&signed(&unsigned), T);
        assert_eq!(e.kind, AuthErrorKind::InvalidSignature, "{mode}");
        assert!(e.message.contains("not accepted"), "{}", e.message);
    }
}

#[test]
fn session_tokens_are_rejected_explicitly() {
    const TOKEN: &str = "FwoGZXIvYXdzEXAMPLETOKEN";
    // Signed token: well formed, but Arca issues none, so it cannot be valid.
    let mut req = base();
    req.headers
        .push(("X-Amz-Security-Token".into(), TOKEN.into()));
    let e = reject(&signed(&req), T);
    assert_eq!(e.kind, AuthErrorKind::UnrecognizedClient);
    assert_eq!(
        e.message,
        "The security token included in the request is invalid."
    );

    // Unsigned token: the signature would not cover it.
    let mut r = signed(&base());
    r.headers
        .push(("X-Amz-Security-Token".into(), TOKEN.into()));
    let e = reject(&r, T);
    assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
    assert_eq!(
        e.message,
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
    );

    // Presigned token (always covered: every query parameter is signed).
    let mut q = base();
    q.query = format!("X-Amz-Security-Token={TOKEN}");
    let e = reject(&presigned(&q, T, 60), T);
    assert_eq!(e.kind, AuthErrorKind::UnrecognizedClient);
}

#[test]
fn repeated_authorization_or_date_headers_are_refused() {
    let mut r = signed(&base());
    let a = r.header("authorization").expect("authz").to_string();
    r.headers.push(("authorization".into(), a));
    assert_eq!(reject(&r, T).kind, AuthErrorKind::IncompleteSignature);

    let mut r = signed(&base());
    r.headers
        .push(("x-amz-date".into(), "20150830T123700Z".into()));
    assert_eq!(reject(&r, T).kind, AuthErrorKind::IncompleteSignature);
}

/// Counts lookups, to prove the cheap checks run first.
struct CountingKeys(Cell<u32>);

impl KeyLookup for CountingKeys {
    fn secret_key(&self, _: &str) -> Option<SecretString> {
        self.0.set(self.0.get() + 1);
        Some(SecretString::new(SECRET.into()))
    }
}

#[test]
fn cheap_checks_run_before_the_key_lookup() {
    let keys = CountingKeys(Cell::new(0));
    let c = cfg();
    let cases = [
        (signed(&base()), T + 3600, AuthErrorKind::SignatureExpired),
        (
            signed_with(&base(), "us-east-1", "kms", T),
            T,
            AuthErrorKind::InvalidSignature,
        ),
        (
            signed_with(&base(), "nowhere", "secretsmanager", T),
            T,
            AuthErrorKind::InvalidSignature,
        ),
        (
            presigned(&base(), T, 10),
            T + 11,
            AuthErrorKind::SignatureExpired,
        ),
    ];
    for (r, now, kind) in &cases {
        let e = r
            .with_parts(|p| verify(p, &c, *now, &keys))
            .expect_err("rejected");
        assert_eq!(e.kind, *kind);
    }
    // A wrong content hash is also caught before the lookup.
    let mut wrong = base();
    wrong
        .headers
        .push(("X-Amz-Content-Sha256".into(), payload_hash(b"x")));
    let e = signed(&wrong)
        .with_parts(|p| verify(p, &c, T, &keys))
        .expect_err("rejected");
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(
        keys.0.get(),
        0,
        "the key store was consulted for a request that fails cheap checks"
    );

    // And an unknown key is reported as such even if the signature is garbage: the lookup
    // comes before the signature.
    let mut r = signed(&base());
    let a = r
        .header("authorization")
        .expect("authz")
        .replace("Signature=", "Signature=00");
    set_header(&mut r, "Authorization", &a);
    let e = r
        .with_parts(|p| verify(p, &c, T, &Keys::one("AKIDOTHER", SECRET)))
        .expect_err("unknown");
    assert_eq!(e.kind, AuthErrorKind::UnrecognizedClient);
    r.with_parts(|p| verify(p, &c, T, &keys))
        .expect_err("mismatch");
    assert_eq!(keys.0.get(), 1);
}

#[test]
fn auth_errors_convert_to_the_error_table() {
    let e = reject(&signed(&base()), T + 3600);
    let api: arca_types::ApiError = e.clone().into();
    assert_eq!(api.code, arca_types::ErrorCode::InvalidSignature);
    assert_eq!(api.message, e.message);
    assert_eq!(
        e.to_string(),
        format!("InvalidSignatureException: {}", e.message)
    );
}

/// `verify_cached` decides exactly as `verify` does, in both forms, with a cold and a warm
/// cache, and a cached key never outlives a change of secret.
#[test]
fn the_cached_path_agrees_with_the_uncached_one() {
    let cache = SigningKeyCache::new();
    let c = cfg();
    let cached = |r: &OwnedRequest, now: i64, keys: &Keys| {
        r.with_parts(|p| verify_cached(p, &c, now, keys, Some(&cache)))
    };
    let mut tampered = signed(&base());
    tampered.body.push(b' ');
    let mut q = base();
    q.query = "b=2&a=1".into();
    let mut date_form = base();
    date_form
        .headers
        .push(("Date".into(), "Sun, 30 Aug 2015 12:36:00 GMT".into()));
    let date_form = {
        let mut s = signed(&date_form).without_header("x-amz-date");
        // sign_request signed X-Amz-Date; re-sign as a client using Date would.
        let secret = SecretString::new(SECRET.into());
        let names = parse_signed_headers("content-type;date;host;x-amz-target").expect("names");
        let creq = s.with_parts(|p| {
            canonical_request(
                p.method,
                &canonical_uri(p.path),
                &canonical_query_string(p.query, None),
                &canonical_headers(p.headers, &names),
                &signed_headers(&names),
                &payload_hash(p.body),
            )
        });
        let scope = arca_sigv4::CredentialScope {
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "secretsmanager".into(),
        };
        let key = derive_signing_key(&secret, "20150830", "us-east-1", "secretsmanager");
        let sig = compute_signature(&key, &string_to_sign("20150830T123600Z", &scope, &creq));
        let authz = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/secretsmanager/aws4_request, \
             SignedHeaders=content-type;date;host;x-amz-target, Signature={}",
            sig.expose()
        );
        set_header(&mut s, "Authorization", &authz);
        s
    };
    let cases = [
        signed(&base()),
        signed(&q),
        presigned(&base(), T, 60),
        presigned(&q, T, 60),
        tampered,
        date_form,
        signed_with(&base(), "eu-west-1", "secretsmanager", T),
    ];
    for round in 0..2 {
        for (i, r) in cases.iter().enumerate() {
            let want = check(r, T);
            assert_eq!(cached(r, T, &keys()), want, "round {round}, case {i}");
            if i != 4 {
                assert!(want.is_ok(), "case {i}: {want:?}");
            }
        }
    }
    // The secret changes under a warm cache: the old key must not be used.
    let rotated = Keys::one(AKID, "a-completely-different-secret-key-000000");
    let e = cached(&cases[0], T, &rotated).expect_err("old signature, new secret");
    assert_eq!(e.message, MISMATCH);
    cached(&cases[0], T, &keys()).expect("and back");
}

#[test]
fn signing_with_cached_keys_gives_the_same_signature() {
    let secret = SecretString::new(SECRET.into());
    let cache = SigningKeyCache::new();
    for at in [1_440_938_160, 1_440_938_161, 1_441_038_160] {
        let p = params(&secret, at);
        let req = base();
        let fresh = req.with_parts(|parts| sign_request(parts, &p));
        // Twice: the first call derives and caches, the second reuses.
        for _ in 0..2 {
            let cached = req.with_parts(|parts| sign_request_cached(parts, &p, Some(&cache)));
            assert_eq!(cached, fresh, "at {at}");
        }
    }
}
