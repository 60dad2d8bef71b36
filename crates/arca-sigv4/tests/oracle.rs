//! Property test against an independent signer: the `aws-sigv4` crate (what the AWS Rust SDK
//! uses) signs many generated requests for "secretsmanager" (random methods, paths, queries,
//! headers, bodies, regions, keys and times, seeded so failures reproduce), in the header form
//! and the presigned-query form; `verify` must accept every one, and must reject each with the
//! right kind once one thing is changed: a body byte, a signed header value, the region, the
//! date, the secret, the key id, the clock.

mod common;

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use arca_sigv4::{format_amz_date, verify, AuthErrorKind, VerifyConfig};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use common::{Keys, OwnedRequest};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const SERVICE: &str = "secretsmanager";
const CASES: usize = 400;

struct Case {
    /// What the server receives, without the signature.
    req: OwnedRequest,
    /// The authority the client signed (host header / URI authority).
    host: String,
    akid: String,
    secret: String,
    region: String,
    time: i64,
    content_sha_header: bool,
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or_default()
}

fn word(rng: &mut StdRng, alphabet: &[u8], min: usize, max: usize) -> String {
    let n = rng.gen_range(min..=max);
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Path and query pieces that are valid in a URI as received (already percent-encoded).
const URI_ATOMS: &[&str] = &[
    "a", "b", "Z", "0", "9", "-", "_", ".", "~", "%20", "%2F", "%3D", "%C3%A9", "@", ":", "!", "$",
    "'", "(", ")", "*", ",", ";",
];
const QUERY_ATOMS: &[&str] = &[
    "a",
    "B",
    "7",
    "-",
    "_",
    ".",
    "~",
    "%20",
    "%2B",
    "+",
    "%26",
    "%3D",
    "%E1%88%B4",
    "%7e",
];

fn atoms(rng: &mut StdRng, set: &[&str], max: usize) -> String {
    let n = rng.gen_range(1..=max);
    (0..n).map(|_| pick(rng, set)).collect()
}

fn gen_case(rng: &mut StdRng) -> Case {
    let method = if rng.gen_bool(0.8) { "POST" } else { "GET" };
    let path = if rng.gen_bool(0.6) {
        "/".to_string()
    } else {
        let mut p = String::new();
        for _ in 0..rng.gen_range(1..=4) {
            p.push('/');
            match rng.gen_range(0..10) {
                0 => p.push('.'),
                1 => p.push_str(".."),
                2 => {} // an empty segment: "//"
                _ => p.push_str(&atoms(rng, URI_ATOMS, 6)),
            }
        }
        if rng.gen_bool(0.3) {
            p.push('/');
        }
        p
    };
    let query = if rng.gen_bool(0.6) {
        String::new()
    } else {
        let mut pairs = Vec::new();
        for _ in 0..rng.gen_range(1..=4) {
            let k = atoms(rng, QUERY_ATOMS, 5);
            match rng.gen_range(0..5) {
                0 => pairs.push(k),
                1 => pairs.push(format!("{k}=")),
                _ => pairs.push(format!("{k}={}", atoms(rng, QUERY_ATOMS, 6))),
            }
        }
        if rng.gen_bool(0.2) {
            let dup = pairs[0].clone();
            pairs.push(dup);
        }
        pairs.join("&")
    };
    let host = match rng.gen_range(0..3) {
        0 => "secretsmanager.us-east-1.amazonaws.com".to_string(),
        1 => format!("localhost:{}", rng.gen_range(1024..65535)),
        _ => "127.0.0.1:8080".to_string(),
    };
    let mut headers: Vec<(String, String)> = vec![
        ("Content-Type".into(), "application/x-amz-json-1.1".into()),
        (
            "X-Amz-Target".into(),
            format!(
                "secretsmanager.{}",
                pick(rng, &["GetSecretValue", "CreateSecret", "ListSecrets"])
            ),
        ),
    ];
    let value_chars = b"abcXYZ019 -_.,;:=/\"'()[]{}!?*&^%$#@~`|<>\\+";
    for i in 0..rng.gen_range(0..4) {
        let name = if rng.gen_bool(0.5) {
            format!("X-Custom-{i}")
        } else {
            format!("x-custom-{i}")
        };
        let v = word(rng, value_chars, 0, 24);
        headers.push((name.clone(), v));
        if rng.gen_bool(0.3) {
            // A repeated header, name in a different case.
            headers.push((name.to_uppercase(), word(rng, value_chars, 1, 12)));
        }
    }
    if rng.gen_bool(0.3) {
        // Not signed by the SDK (it may change in transit); must not matter to the verifier.
        headers.push(("User-Agent".into(), "oracle-test/1.0".into()));
    }
    let body: Vec<u8> = if method == "GET" && rng.gen_bool(0.5) {
        Vec::new()
    } else {
        (0..rng.gen_range(0..600)).map(|_| rng.gen()).collect()
    };
    let region = if rng.gen_bool(0.5) {
        pick(
            rng,
            &["us-east-1", "eu-west-2", "ap-southeast-1", "us-gov-west-1"],
        )
        .to_string()
    } else {
        let lower = b"abcdefghijklmnopqrstuvwxyz";
        format!(
            "{}-{}-{}",
            word(rng, lower, 1, 6),
            word(rng, lower, 1, 8),
            rng.gen_range(0..20)
        )
    };
    let key_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let secret_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    Case {
        req: OwnedRequest {
            method: method.into(),
            path,
            query,
            headers,
            body,
        },
        host,
        akid: format!("AKIA{}", word(rng, key_chars, 12, 16)),
        secret: word(rng, secret_chars, 40, 40),
        region,
        // 2001-09-09 .. 2096-ish
        time: rng.gen_range(1_000_000_000..4_000_000_000),
        content_sha_header: rng.gen_bool(0.3),
    }
}

struct Signer<'a> {
    service: &'a str,
    session_token: Option<String>,
    presign_expires: Option<u64>,
}

impl Signer<'_> {
    fn header() -> Self {
        Signer {
            service: SERVICE,
            session_token: None,
            presign_expires: None,
        }
    }
    fn presign(expires: u64) -> Self {
        Signer {
            presign_expires: Some(expires),
            ..Self::header()
        }
    }

    /// Signs `c` with aws-sigv4 and returns the request as the server would receive it.
    fn sign(&self, c: &Case) -> OwnedRequest {
        let identity: Identity = Credentials::new(
            &c.akid,
            &c.secret,
            self.session_token.clone(),
            None,
            "oracle",
        )
        .into();
        let mut settings = SigningSettings::default();
        if c.content_sha_header {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        if let Some(e) = self.presign_expires {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(e));
        }
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(c.time as u64);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&c.region)
            .name(self.service)
            .time(time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let uri = if c.req.query.is_empty() {
            format!("https://{}{}", c.host, c.req.path)
        } else {
            format!("https://{}{}?{}", c.host, c.req.path, c.req.query)
        };
        let signable = SignableRequest::new(
            &c.req.method,
            uri,
            c.req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Bytes(&c.req.body),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
        let (new_headers, new_params) = instructions.into_parts();

        let mut out = c.req.clone();
        // The client's HTTP stack sends the authority as Host (":443" being the default for
        // https, the SDK leaves it out, and so does the client).
        out.headers.push(("Host".into(), c.host.clone()));
        for h in new_headers {
            out.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(h.name()));
            out.headers
                .push((h.name().to_string(), h.value().to_string()));
        }
        for (k, v) in new_params {
            let v: Cow<str> = v;
            if !out.query.is_empty() {
                out.query.push('&');
            }
            out.query.push_str(k);
            out.query.push('=');
            out.query
                .push_str(&utf8_percent_encode(&v, NON_ALPHANUMERIC).to_string());
        }
        out
    }
}

fn cfg() -> VerifyConfig {
    VerifyConfig {
        service: SERVICE.into(),
        max_skew_secs: 300,
    }
}

fn kind_of(req: &OwnedRequest, now: i64, keys: &Keys) -> Result<(), AuthErrorKind> {
    req.with_parts(|p| verify(p, &cfg(), now, keys))
        .map(|_| ())
        .map_err(|e| e.kind)
}

fn set_header(req: &mut OwnedRequest, name: &str, value: String) {
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    req.headers.push((name.to_string(), value));
}

fn replace_query_param(query: &str, name: &str, value: &str) -> String {
    query
        .split('&')
        .map(|p| {
            if p.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One second from `t` in the direction of `now`, so a changed date stays valid in time.
fn nudge(t: i64, now: i64) -> i64 {
    if now >= t {
        t + 1
    } else {
        t - 1
    }
}

fn other_region(r: &str) -> &'static str {
    if r == "us-west-2" {
        "eu-north-1"
    } else {
        "us-west-2"
    }
}

#[test]
fn header_signed_requests_from_aws_sigv4_verify_and_mutations_fail() {
    let mut rng = StdRng::seed_from_u64(0x5157_4e34);
    for i in 0..CASES {
        let c = gen_case(&mut rng);
        let keys = Keys::one(&c.akid, &c.secret);
        let signed = Signer::header().sign(&c);
        let now = c.time + rng.gen_range(-300..=300);
        let ctx = format!("case {i}: {:?}", signed);

        let v = signed
            .with_parts(|p| verify(p, &cfg(), now, &keys))
            .unwrap_or_else(|e| panic!("{ctx}: rejected: {e}"));
        assert_eq!(v.access_key_id, c.akid, "{ctx}");
        assert_eq!(v.region, c.region, "{ctx}");
        assert!(
            v.signed_header_names().any(|h| h == "x-amz-target"),
            "{ctx}"
        );

        // A body byte.
        let mut m = signed.clone();
        match m.body.first_mut() {
            Some(b) => *b ^= 0x20,
            None => m.body.push(b'x'),
        }
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: body"
        );

        // A signed header value.
        let mut m = signed.clone();
        set_header(&mut m, "X-Amz-Target", "secretsmanager.DeleteSecret".into());
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: header"
        );

        // The region in the credential scope.
        let mut m = signed.clone();
        let authz = m.header("authorization").expect("authz").to_string();
        let moved = authz.replace(
            &format!("/{}/{SERVICE}/", c.region),
            &format!("/{}/{SERVICE}/", other_region(&c.region)),
        );
        assert_ne!(moved, authz);
        set_header(&mut m, "Authorization", moved);
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: region"
        );

        // The date, moved by one second towards `now` so it stays inside the skew window
        // (it may cross midnight, which the scope-date check catches: still InvalidSignature).
        let mut m = signed.clone();
        set_header(&mut m, "X-Amz-Date", format_amz_date(nudge(c.time, now)));
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: date"
        );

        // The secret.
        let wrong = Keys::one(&c.akid, &format!("{}x", &c.secret[1..]));
        assert_eq!(
            kind_of(&signed, now, &wrong),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: secret"
        );

        // The key id.
        let unknown = Keys::one("AKIAOTHER", &c.secret);
        assert_eq!(
            kind_of(&signed, now, &unknown),
            Err(AuthErrorKind::UnrecognizedClient),
            "{ctx}: key id"
        );

        // The clock, both ways.
        assert_eq!(
            kind_of(&signed, c.time + 301, &keys),
            Err(AuthErrorKind::SignatureExpired),
            "{ctx}"
        );
        assert_eq!(
            kind_of(&signed, c.time - 301, &keys),
            Err(AuthErrorKind::SignatureExpired),
            "{ctx}"
        );
    }
}

#[test]
fn presigned_requests_from_aws_sigv4_verify_and_mutations_fail() {
    let mut rng = StdRng::seed_from_u64(0x5052_4553);
    for i in 0..CASES {
        let mut c = gen_case(&mut rng);
        // x-amz-content-sha256 is a header-form feature.
        c.content_sha_header = false;
        let keys = Keys::one(&c.akid, &c.secret);
        let expires = rng.gen_range(1..=604_800u64);
        let signed = Signer::presign(expires).sign(&c);
        let now = c.time + rng.gen_range(-300..=expires as i64);
        let ctx = format!("case {i}: {:?}", signed);

        let v = signed
            .with_parts(|p| verify(p, &cfg(), now, &keys))
            .unwrap_or_else(|e| panic!("{ctx}: rejected: {e}"));
        assert_eq!(v.access_key_id, c.akid, "{ctx}");

        let mut m = signed.clone();
        match m.body.first_mut() {
            Some(b) => *b ^= 0x20,
            None => m.body.push(b'x'),
        }
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: body"
        );

        let mut m = signed.clone();
        set_header(&mut m, "X-Amz-Target", "secretsmanager.DeleteSecret".into());
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: header"
        );

        let mut m = signed.clone();
        m.query = replace_query_param(&m.query, "X-Amz-Date", &format_amz_date(nudge(c.time, now)));
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: date"
        );

        let mut m = signed.clone();
        m.query = replace_query_param(
            &m.query,
            "X-Amz-Expires",
            &(expires % 604_800 + 1).to_string(),
        );
        assert_eq!(
            kind_of(&m, now.min(c.time), &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: expires"
        );

        let mut m = signed.clone();
        let cred = utf8_percent_encode(
            &format!(
                "{}/{}/{}/{SERVICE}/aws4_request",
                c.akid,
                &format_amz_date(c.time)[..8],
                other_region(&c.region)
            ),
            NON_ALPHANUMERIC,
        )
        .to_string();
        m.query = replace_query_param(&m.query, "X-Amz-Credential", &cred);
        assert_eq!(
            kind_of(&m, now, &keys),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: region"
        );

        let wrong = Keys::one(&c.akid, &format!("{}x", &c.secret[1..]));
        assert_eq!(
            kind_of(&signed, now, &wrong),
            Err(AuthErrorKind::InvalidSignature),
            "{ctx}: secret"
        );

        assert_eq!(
            kind_of(&signed, c.time + expires as i64 + 1, &keys),
            Err(AuthErrorKind::SignatureExpired),
            "{ctx}: expired"
        );
        assert_eq!(
            kind_of(&signed, c.time - 301, &keys),
            Err(AuthErrorKind::SignatureExpired),
            "{ctx}"
        );
    }
}

#[test]
fn a_service_other_than_secretsmanager_is_rejected() {
    let mut rng = StdRng::seed_from_u64(7);
    let c = gen_case(&mut rng);
    let keys = Keys::one(&c.akid, &c.secret);
    let signed = Signer {
        service: "kms",
        ..Signer::header()
    }
    .sign(&c);
    let e = signed
        .with_parts(|p| verify(p, &cfg(), c.time, &keys))
        .expect_err("wrong service");
    assert_eq!(e.kind, AuthErrorKind::InvalidSignature);
    assert_eq!(
        e.message,
        "Credential should be scoped to correct service: 'secretsmanager'. "
    );
}

#[test]
fn sdk_session_tokens_are_unrecognized_in_both_forms() {
    let mut rng = StdRng::seed_from_u64(11);
    for presign in [None, Some(900)] {
        let c = gen_case(&mut rng);
        let keys = Keys::one(&c.akid, &c.secret);
        let signed = Signer {
            session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".into()),
            presign_expires: presign,
            ..Signer::header()
        }
        .sign(&c);
        let e = signed
            .with_parts(|p| verify(p, &cfg(), c.time, &keys))
            .expect_err("token");
        assert_eq!(e.kind, AuthErrorKind::UnrecognizedClient, "{presign:?}");
        assert_eq!(
            e.message,
            "The security token included in the request is invalid."
        );
    }
}
