//! Replays AWS's SigV4 test suite (tests/vectors, copied from the aws-sigv4 crate's source):
//! each step function must reproduce the suite's canonical request, string to sign and
//! signature byte for byte, `verify` must accept the signed requests (header and presigned
//! forms) and reject them with one byte changed, and `sign_request` must reproduce the
//! suite's Authorization header.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use arca_sigv4::{
    canonical_headers, canonical_query_string, canonical_request, canonical_uri, compute_signature,
    derive_signing_key, parse_amz_date, parse_authorization_header, parse_presigned_query,
    payload_hash, presign_request, sign_request, signed_headers, string_to_sign, verify,
    AuthErrorKind, CredentialScope, SigningParams, VerifyConfig,
};
use arca_types::secret::SecretString;
use common::{Keys, OwnedRequest};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

struct Context {
    region: String,
    service: String,
    time: i64,
    amz_date: String,
    sign_body: bool,
    /// The suite's request carries a session token (signed or not).
    has_token: bool,
    /// The token was added after signing, so it is not part of what was signed.
    omit_session_token: bool,
}

fn context(dir: &Path) -> Context {
    let v: serde_json::Value = serde_json::from_str(&read(dir, "context.json")).expect("json");
    let ts = v["timestamp"].as_str().expect("timestamp");
    // "2015-08-30T12:36:00Z" -> "20150830T123600Z"
    let amz_date: String = ts.chars().filter(|c| *c != '-' && *c != ':').collect();
    Context {
        region: v["region"].as_str().expect("region").to_string(),
        service: v["service"].as_str().expect("service").to_string(),
        time: parse_amz_date(&amz_date).expect("suite date"),
        amz_date,
        sign_body: v["sign_body"].as_bool().unwrap_or(false),
        has_token: v["credentials"]["token"].is_string(),
        omit_session_token: v["omit_session_token"].as_bool().unwrap_or(false),
    }
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(vectors_dir())
        .expect("vectors dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("context.json").exists())
        .collect();
    dirs.sort();
    dirs
}

fn cfg(ctx: &Context) -> VerifyConfig {
    VerifyConfig {
        service: ctx.service.clone(),
        max_skew_secs: 300,
    }
}

/// Changes one character of the signature (hex digit) at `at`.
fn flip_signature_char(s: &str, sig_start: usize, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = sig_start + at;
    b[i] = if b[i] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).expect("ascii")
}

#[test]
fn the_suite_is_present() {
    let names: Vec<String> = cases()
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for must in [
        "get-vanilla",
        "get-vanilla-query-order-key-case",
        "post-vanilla",
        "post-x-www-form-urlencoded",
        "get-header-value-trim",
        "get-header-key-duplicate",
        "get-space-normalized",
        "get-utf8",
        "get-vanilla-with-session-token",
    ] {
        assert!(names.iter().any(|n| n == must), "missing vector {must}");
    }
    assert!(names.len() >= 30, "only {} vectors", names.len());
}

#[test]
fn header_form_steps_match_the_suite() {
    for dir in cases() {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let ctx = context(&dir);
        let req = OwnedRequest::parse_suite(&read(&dir, "header-signed-request.txt"));
        let auth = parse_authorization_header(req.header("authorization").expect("authz"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let creq = canonical_request(
            &req.method,
            &canonical_uri(&req.path),
            &canonical_query_string(&req.query, None),
            &req.with_parts(|p| canonical_headers(p.headers, &auth.signed_headers)),
            &signed_headers(&auth.signed_headers),
            &payload_hash(&req.body),
        );
        assert_eq!(
            creq,
            read(&dir, "header-canonical-request.txt"),
            "{name}: canonical request"
        );

        let scope = CredentialScope {
            date: ctx.amz_date[..8].to_string(),
            region: ctx.region.clone(),
            service: ctx.service.clone(),
        };
        assert_eq!(auth.credential.scope, scope, "{name}");
        let sts = string_to_sign(&ctx.amz_date, &scope, &creq);
        assert_eq!(
            sts,
            read(&dir, "header-string-to-sign.txt"),
            "{name}: string to sign"
        );

        let key = derive_signing_key(
            &SecretString::new(SECRET.into()),
            &scope.date,
            &scope.region,
            &scope.service,
        );
        let sig = compute_signature(&key, &sts);
        assert_eq!(
            sig.expose(),
            read(&dir, "header-signature.txt").trim(),
            "{name}: signature"
        );
        assert_eq!(sig.expose(), auth.signature.expose(), "{name}");
    }
}

#[test]
fn query_form_steps_match_the_suite() {
    for dir in cases() {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let ctx = context(&dir);
        let req = OwnedRequest::parse_suite(&read(&dir, "query-signed-request.txt"));
        let q = parse_presigned_query(&req.query)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("presigned");
        // post-sts-header-after appends the token after signing; Arca's verifier signs every
        // parameter (and rejects tokens anyway), so leave it out to replay the steps.
        let query: String = if ctx.omit_session_token {
            req.query
                .split('&')
                .filter(|p| !p.starts_with("X-Amz-Security-Token="))
                .collect::<Vec<_>>()
                .join("&")
        } else {
            req.query.clone()
        };
        let creq = canonical_request(
            &req.method,
            &canonical_uri(&req.path),
            &canonical_query_string(&query, Some("X-Amz-Signature")),
            &req.with_parts(|p| canonical_headers(p.headers, &q.signed_headers)),
            &signed_headers(&q.signed_headers),
            &payload_hash(&req.body),
        );
        assert_eq!(
            creq,
            read(&dir, "query-canonical-request.txt"),
            "{name}: canonical request"
        );
        let sts = string_to_sign(&q.amz_date, &q.credential.scope, &creq);
        assert_eq!(
            sts,
            read(&dir, "query-string-to-sign.txt"),
            "{name}: string to sign"
        );
        let key = derive_signing_key(
            &SecretString::new(SECRET.into()),
            &q.credential.scope.date,
            &ctx.region,
            &ctx.service,
        );
        let sig = compute_signature(&key, &sts);
        assert_eq!(
            sig.expose(),
            read(&dir, "query-signature.txt").trim(),
            "{name}"
        );
        assert_eq!(sig.expose(), q.signature.expose(), "{name}");
    }
}

#[test]
fn verify_accepts_the_suite_and_rejects_one_changed_byte() {
    let keys = Keys::one(AKID, SECRET);
    for dir in cases() {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let ctx = context(&dir);
        let cfg = cfg(&ctx);

        // Header form.
        let req = OwnedRequest::parse_suite(&read(&dir, "header-signed-request.txt"));
        let result = req.with_parts(|p| verify(p, &cfg, ctx.time, &keys));
        if ctx.has_token {
            // Arca issues no session tokens: a signed token is an unknown client, an unsigned
            // one (post-sts-header-after) is a malformed signature.
            let e = result.expect_err(&name);
            let signed = req
                .header("authorization")
                .expect("authz")
                .contains("x-amz-security-token");
            let want = if signed {
                AuthErrorKind::UnrecognizedClient
            } else {
                AuthErrorKind::IncompleteSignature
            };
            assert_eq!(e.kind, want, "{name}: {e}");
        } else {
            let v = result.unwrap_or_else(|e| panic!("{name}: header form rejected: {e}"));
            assert_eq!(v.access_key_id, AKID);
            assert_eq!(v.region, ctx.region);
            assert_eq!(v.date, "20150830");

            let authz = req.header("authorization").expect("authz").to_string();
            let sig_start = authz.find("Signature=").expect("sig") + "Signature=".len();
            for at in [0, 31, 63] {
                let mut bad = req.clone();
                for h in bad
                    .headers
                    .iter_mut()
                    .filter(|h| h.0.eq_ignore_ascii_case("authorization"))
                {
                    h.1 = flip_signature_char(&authz, sig_start, at);
                }
                let e = bad
                    .with_parts(|p| verify(p, &cfg, ctx.time, &keys))
                    .expect_err(&name);
                assert_eq!(e.kind, AuthErrorKind::InvalidSignature, "{name}");
            }
            // A changed signed header value (host) also breaks it.
            let mut bad = req.clone();
            for h in bad
                .headers
                .iter_mut()
                .filter(|h| h.0.eq_ignore_ascii_case("host"))
            {
                h.1.push('x');
            }
            let e = bad
                .with_parts(|p| verify(p, &cfg, ctx.time, &keys))
                .expect_err(&name);
            assert_eq!(e.kind, AuthErrorKind::InvalidSignature, "{name}");
            // And so does a changed body byte, when there is a body.
            if !req.body.is_empty() {
                let mut bad = req.clone();
                bad.body[0] ^= 1;
                let e = bad
                    .with_parts(|p| verify(p, &cfg, ctx.time, &keys))
                    .expect_err(&name);
                assert_eq!(e.kind, AuthErrorKind::InvalidSignature, "{name}");
            }
        }

        // Presigned form.
        let req = OwnedRequest::parse_suite(&read(&dir, "query-signed-request.txt"));
        let result = req.with_parts(|p| verify(p, &cfg, ctx.time, &keys));
        if ctx.has_token && req.query.contains("X-Amz-Security-Token") {
            let e = result.expect_err(&name);
            assert_eq!(e.kind, AuthErrorKind::UnrecognizedClient, "{name}: {e}");
            continue;
        }
        result.unwrap_or_else(|e| panic!("{name}: query form rejected: {e}"));
        let sig_start = req.query.find("X-Amz-Signature=").expect("sig") + "X-Amz-Signature=".len();
        let mut bad = req.clone();
        bad.query = flip_signature_char(&req.query, sig_start, 10);
        let e = bad
            .with_parts(|p| verify(p, &cfg, ctx.time, &keys))
            .expect_err(&name);
        assert_eq!(e.kind, AuthErrorKind::InvalidSignature, "{name}");
    }
}

#[test]
fn sign_request_reproduces_the_suite() {
    let secret = SecretString::new(SECRET.into());
    for dir in cases() {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let ctx = context(&dir);
        if ctx.has_token {
            continue;
        }
        // The signed request's path is what went on the wire (request.txt shows some paths,
        // e.g. get-space-normalized's, pre-encoded for display).
        let wire_path = OwnedRequest::parse_suite(&read(&dir, "header-signed-request.txt")).path;
        let mut req = OwnedRequest::parse_suite(&read(&dir, "request.txt"));
        req.path = wire_path.clone();
        if ctx.sign_body {
            let h = payload_hash(&req.body);
            req.headers.push(("x-amz-content-sha256".into(), h));
        }
        let params = SigningParams {
            access_key_id: AKID,
            secret_access_key: &secret,
            region: &ctx.region,
            service: &ctx.service,
            unix_secs: ctx.time,
        };
        let signed = req.with_parts(|p| sign_request(p, &params));
        let expected = OwnedRequest::parse_suite(&read(&dir, "header-signed-request.txt"));
        assert_eq!(
            Some(signed.authorization.as_str()),
            expected.header("authorization"),
            "{name}"
        );
        assert_eq!(signed.x_amz_date, ctx.amz_date);

        // Presigned: the parameter order differs from the suite's, the signature must not.
        let mut req = OwnedRequest::parse_suite(&read(&dir, "request.txt"));
        req.path = wire_path;
        let query = req.with_parts(|p| presign_request(p, &params, 3600));
        let sig = query.rsplit_once("X-Amz-Signature=").expect("sig").1;
        assert_eq!(sig, read(&dir, "query-signature.txt").trim(), "{name}");
    }
}

/// `double-url-encode` (a Lambda ARN in the path) has no context file: its scope is in its
/// string to sign. It pins the double encoding of `%3A` to `%253A`.
#[test]
fn double_url_encoded_path_matches_the_suite() {
    let dir = vectors_dir().join("double-url-encode");
    let req = OwnedRequest::parse_suite(&read(&dir, "header-signed-request.txt"));
    let authz = req
        .header("authorization")
        .expect("authz")
        .trim()
        .to_string();
    let auth = parse_authorization_header(&authz).expect("parses");
    let creq = canonical_request(
        &req.method,
        &canonical_uri(&req.path),
        &canonical_query_string(&req.query, None),
        &req.with_parts(|p| canonical_headers(p.headers, &auth.signed_headers)),
        &signed_headers(&auth.signed_headers),
        &payload_hash(&req.body),
    );
    assert_eq!(creq, read(&dir, "header-canonical-request.txt"));
    let sts = string_to_sign("20210511T154045Z", &auth.credential.scope, &creq);
    // This one file ends with a newline; the others do not.
    assert_eq!(sts, read(&dir, "header-string-to-sign.txt").trim_end());

    let cfg = VerifyConfig {
        service: "lambda".into(),
        max_skew_secs: 300,
    };
    let now = parse_amz_date("20210511T154045Z").expect("date");
    let keys = Keys::one(AKID, SECRET);
    let v = req
        .with_parts(|p| verify(p, &cfg, now, &keys))
        .expect("accepted");
    assert_eq!(v.region, "us-east-2");
}
