//! verify_bench: nanoseconds per `verify_cached` for one realistic, correctly signed
//! GetSecretValue request with a warm signing-key cache, the server's hot path. Run in release:
//! `cargo run --release -p arca-sigv4 --example verify_bench [iterations]`.

use std::hint::black_box;
use std::time::Instant;

use arca_sigv4::VerifyConfig;
use arca_sigv4::{sign_request, verify_cached, RequestParts, SigningKeyCache, SigningParams};
use arca_types::secret::SecretString;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z
const T: i64 = 1_440_938_160;

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let secret = SecretString::new(SECRET.into());
    let body = br#"{"SecretId":"bench/hot/0042"}"#;
    let content_length = body.len().to_string();
    let unsigned = [
        ("host", "localhost:7700"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "secretsmanager.GetSecretValue"),
    ];
    let signed = sign_request(
        &RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &unsigned,
            body,
        },
        &SigningParams {
            access_key_id: AKID,
            secret_access_key: &secret,
            region: "us-east-1",
            service: "secretsmanager",
            unix_secs: T,
        },
    );
    // What an SDK sends: content-length is on the wire but not signed.
    let headers = [
        ("host", "localhost:7700"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-date", signed.x_amz_date.as_str()),
        ("x-amz-target", "secretsmanager.GetSecretValue"),
        ("content-length", content_length.as_str()),
        ("authorization", signed.authorization.as_str()),
    ];
    let req = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let cfg = VerifyConfig::default();
    let lookup = |id: &str| (id == AKID).then(|| SecretString::new(SECRET.into()));
    let cache = SigningKeyCache::new();
    let run = |n: u32| {
        for _ in 0..n {
            let v = verify_cached(black_box(&req), &cfg, T, &lookup, Some(&cache));
            assert!(v.is_ok(), "{v:?}");
            black_box(v).ok();
        }
    };
    run(iterations / 10 + 1); // warm the cache, the allocator and the branch predictors
    let start = Instant::now();
    run(iterations);
    let elapsed = start.elapsed();
    println!(
        "{iterations} verifies in {:.3} s: {:.0} ns/verify",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / f64::from(iterations)
    );
}
