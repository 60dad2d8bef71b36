//! Debug of every public type that can hold a key, a signature or a session token prints none
//! of it, so logging a request or a parsed header at any level leaks nothing.

use arca_sigv4::{
    compute_signature, derive_signing_key, parse_authorization_header, parse_presigned_query,
    presign_request, sign_request, verify, RequestParts, Signature, SigningParams, VerifyConfig,
};
use arca_types::secret::SecretString;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLETOKENcanary";
const T: i64 = 1_440_938_160;

fn assert_clean(what: &str, debug: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(!debug.contains(s), "{what} Debug leaks {s:?}: {debug}");
    }
}

#[test]
fn nothing_secret_in_debug_output() {
    let secret = SecretString::new(SECRET.into());
    let key = derive_signing_key(&secret, "20150830", "us-east-1", "secretsmanager");
    let key_hex = hex::encode(key.expose());
    let sig = compute_signature(&key, "string to sign");
    let sig_hex = sig.expose().to_string();
    let all = [SECRET, key_hex.as_str(), sig_hex.as_str(), TOKEN];

    assert_clean("SecretString", &format!("{secret:?}"), &all);
    assert_clean("SigningKey", &format!("{key:?}"), &all);
    assert_clean("Signature", &format!("{sig:?}"), &all);
    assert_clean(
        "Signature",
        &format!("{:?}", Signature::from_provided(&sig_hex)),
        &all,
    );

    let params = SigningParams {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: &secret,
        region: "us-east-1",
        service: "secretsmanager",
        unix_secs: T,
    };
    assert_clean("SigningParams", &format!("{params:?}"), &all);

    let headers = [
        ("Host", "localhost"),
        ("X-Amz-Security-Token", TOKEN),
        ("Content-Type", "application/x-amz-json-1.1"),
    ];
    let body = br#"{"SecretString":"canary-body-value"}"#;
    let req = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let signed = sign_request(&req, &params);
    let header_sig = signed
        .authorization
        .rsplit_once("Signature=")
        .expect("sig")
        .1
        .to_string();
    let all = [
        SECRET,
        key_hex.as_str(),
        sig_hex.as_str(),
        TOKEN,
        header_sig.as_str(),
        "canary-body-value",
    ];
    let debug = format!("{signed:?}");
    assert_clean("SignedAuthorization", &debug, &all);
    assert!(
        debug.contains("Credential=AKIDEXAMPLE"),
        "public parts stay visible: {debug}"
    );

    let parsed = parse_authorization_header(&signed.authorization).expect("parses");
    assert_clean("ParsedAuthorization", &format!("{parsed:?}"), &all);

    // The whole request as the HTTP layer would log it.
    let full_headers = [
        ("Host", "localhost"),
        ("X-Amz-Security-Token", TOKEN),
        ("authorization", signed.authorization.as_str()),
        ("X-Amz-Date", signed.x_amz_date.as_str()),
    ];
    let full = RequestParts {
        headers: &full_headers,
        ..req
    };
    let debug = format!("{full:?}");
    assert_clean("RequestParts", &debug, &all);
    assert!(debug.contains("localhost"), "{debug}");

    // Presigned: the signature and token are in the query.
    let q_headers = [("Host", "localhost")];
    let q_req = RequestParts {
        method: "GET",
        path: "/",
        query: "X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLETOKENcanary",
        headers: &q_headers,
        body: b"",
    };
    let query = presign_request(&q_req, &params, 60);
    let q_sig = query
        .rsplit_once("X-Amz-Signature=")
        .expect("sig")
        .1
        .to_string();
    let all = [SECRET, TOKEN, q_sig.as_str()];
    let presigned = RequestParts {
        query: &query,
        ..q_req
    };
    assert_clean("RequestParts (presigned)", &format!("{presigned:?}"), &all);
    let parsed = parse_presigned_query(&query).expect("ok").expect("present");
    assert_clean("PresignedQuery", &format!("{parsed:?}"), &all);

    // Errors: their Debug and Display are what gets logged on rejection.
    let keys = |_: &str| Some(SecretString::new(SECRET.into()));
    for (r, now) in [(&full, T), (&presigned, T), (&full, T + 10_000)] {
        let e = verify(r, &VerifyConfig::default(), now, &keys).expect_err("rejected");
        assert_clean(
            "AuthError",
            &format!("{e:?} {e}"),
            &[SECRET, TOKEN, header_sig.as_str(), q_sig.as_str()],
        );
    }
}
