//! The signing side: it produces the Authorization header (or presigned query) for a request
//! using the same step functions the verifier uses. Tests, the benchmark's load generator
//! and the replication link to other deployments sign with it. The oracle tests against the
//! `aws-sigv4` crate keep both sides honest.

use std::fmt;

use arca_types::secret::SecretString;

use crate::cache::SigningKeyCache;
use crate::canonical::{
    canonical_headers, canonical_query_string, canonical_request, canonical_uri, payload_hash,
    signed_headers, uri_encode,
};
use crate::parse::{
    X_AMZ_ALGORITHM, X_AMZ_CREDENTIAL, X_AMZ_DATE, X_AMZ_EXPIRES, X_AMZ_SIGNATURE,
    X_AMZ_SIGNED_HEADERS,
};
use crate::request::RequestParts;
use crate::signing::{
    compute_signature, derive_signing_key, string_to_sign, CredentialScope, Signature, ALGORITHM,
};
use crate::time::format_amz_date;

/// Who signs, for which scope, at what time.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a SecretString,
    pub region: &'a str,
    pub service: &'a str,
    pub unix_secs: i64,
}

/// The two headers to add to a request signed in the header form. Debug hides the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedAuthorization {
    /// Value for `X-Amz-Date`.
    pub x_amz_date: String,
    /// Value for `Authorization`.
    pub authorization: String,
}

impl fmt::Debug for SignedAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Everything up to "Signature=" is public (key id, scope, header names).
        let shown = match self.authorization.find("Signature=") {
            Some(i) => format!("{}Signature=[redacted]", &self.authorization[..i]),
            None => "[redacted]".to_string(),
        };
        f.debug_struct("SignedAuthorization")
            .field("x_amz_date", &self.x_amz_date)
            .field("authorization", &shown)
            .finish()
    }
}

/// Lowercase, sorted, unique names of `headers`, skipping the ones a signer never signs.
fn header_names(headers: &[(&str, &str)], skip: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !skip.contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn sign(
    req: &RequestParts,
    headers: &[(&str, &str)],
    query: &str,
    names: &[String],
    amz_date: &str,
    p: &SigningParams,
    keys: Option<&SigningKeyCache>,
) -> Signature {
    let scope = CredentialScope {
        date: amz_date[..8].to_string(),
        region: p.region.to_string(),
        service: p.service.to_string(),
    };
    let creq = canonical_request(
        req.method,
        &canonical_uri(req.path),
        &canonical_query_string(query, None),
        &canonical_headers(headers, names),
        &signed_headers(names),
        &payload_hash(req.body),
    );
    let sts = string_to_sign(amz_date, &scope, &creq);
    let key = match keys {
        Some(c) => c.get_or_derive(
            p.access_key_id,
            p.secret_access_key,
            &scope.date,
            p.region,
            p.service,
        ),
        None => derive_signing_key(p.secret_access_key, &scope.date, p.region, p.service),
    };
    compute_signature(&key, &sts)
}

/// The awsJson1_1 content type every Secrets Manager request carries.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Signs an awsJson1_1 `POST /` to `host` with `X-Amz-Target: target` (the one shape of a
/// Secrets Manager call) at the current time; `Content-Type`, `Host` and `X-Amz-Target`
/// are signed, and the caller sends them with the two returned headers.
pub fn sign_json_post(
    host: &str,
    target: &str,
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &SecretString,
    region: &str,
) -> SignedAuthorization {
    let headers = [
        ("content-type", JSON_CONTENT_TYPE),
        ("host", host),
        ("x-amz-target", target),
    ];
    let unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    sign_request(
        &RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        },
        &SigningParams {
            access_key_id,
            secret_access_key,
            region,
            service: "secretsmanager",
            unix_secs,
        },
    )
}

/// Signs `req` in the header form. Every header in `req.headers` is signed (they must include
/// `host`), plus the `X-Amz-Date` returned; any `Authorization` or `X-Amz-Date` already in
/// `req.headers` is ignored, and the caller sends the returned values instead.
pub fn sign_request(req: &RequestParts, p: &SigningParams) -> SignedAuthorization {
    sign_request_cached(req, p, None)
}

/// As [`sign_request`], reusing signing keys derived earlier (four HMACs per key and day,
/// as a long-lived client would): the benchmark's load generator signs every request and
/// shares the machine with the server it measures.
pub fn sign_request_cached(
    req: &RequestParts,
    p: &SigningParams,
    keys: Option<&SigningKeyCache>,
) -> SignedAuthorization {
    let amz_date = format_amz_date(p.unix_secs);
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| {
            !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("x-amz-date")
        })
        .copied()
        .collect();
    headers.push(("x-amz-date", &amz_date));
    let names = header_names(&headers, &[]);
    let signature = sign(req, &headers, req.query, &names, &amz_date, p, keys);
    SignedAuthorization {
        authorization: format!(
            "{ALGORITHM} Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
            p.access_key_id,
            &amz_date[..8],
            p.region,
            p.service,
            signed_headers(&names),
            signature.expose()
        ),
        x_amz_date: amz_date,
    }
}

/// Signs `req` in the presigned-query form, valid for `expires_secs`. Returns the whole query
/// string to send (the original parameters plus the `X-Amz-*` ones). Every header in
/// `req.headers` except `Authorization` is signed; they must include `host`.
pub fn presign_request(req: &RequestParts, p: &SigningParams, expires_secs: i64) -> String {
    let amz_date = format_amz_date(p.unix_secs);
    let names = header_names(req.headers, &["authorization"]);
    let credential = format!(
        "{}/{}/{}/{}/aws4_request",
        p.access_key_id,
        &amz_date[..8],
        p.region,
        p.service
    );
    let mut query = req.query.to_string();
    for (k, v) in [
        (X_AMZ_ALGORITHM, ALGORITHM.to_string()),
        (X_AMZ_CREDENTIAL, credential),
        (X_AMZ_DATE, amz_date.clone()),
        (X_AMZ_EXPIRES, expires_secs.to_string()),
        (X_AMZ_SIGNED_HEADERS, signed_headers(&names)),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(&uri_encode(v.as_bytes()));
    }
    let signature = sign(req, req.headers, &query, &names, &amz_date, p, None);
    format!("{query}&{X_AMZ_SIGNATURE}={}", signature.expose())
}
