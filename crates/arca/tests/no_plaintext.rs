//! Two security properties of the running binary, checked from outside:
//! 1. at rest: no secret value (nor the root key, nor an access key's secret) appears in
//!    any file of the database directory (db, -wal, -shm), raw or base64- or hex-encoded,
//!    while the server runs and after it shut down; a description and a tag value, stored
//!    in clear on purpose, ARE found, which proves the scan can fail;
//! 2. in logs: with `--log trace`, nothing secret reaches stdout or stderr, including on
//!    error paths (malformed JSON, wrong-type fields, a wrong signing key).
//!
//! Every secret is a fresh random canary, so a hit can only come from this run.

mod common;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use aws_sdk_secretsmanager::Client;
use aws_smithy_types::Blob;
use base64::Engine as _;
use common::{
    canary, contains, files_in, random_bytes, sdk_client, tempdir, Server, ServerBuilder,
    ACCESS_KEY_ID, SECRET_ACCESS_KEY,
};
use std::path::Path;

const REGION: &str = "eu-west-1";

/// The encodings a secret could leak in: as is, base64 (standard and URL-safe, padded or
/// not), and hex in both cases.
fn forms(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    vec![
        ("raw", secret.to_vec()),
        ("base64", STANDARD.encode(secret).into_bytes()),
        (
            "base64 (no padding)",
            STANDARD_NO_PAD.encode(secret).into_bytes(),
        ),
        ("base64url", URL_SAFE_NO_PAD.encode(secret).into_bytes()),
        ("hex", common::hex(secret).into_bytes()),
        ("HEX", common::hex(secret).to_uppercase().into_bytes()),
    ]
}

/// Every `(what, form)` of every secret found in `haystack`, for the failure message.
fn leaks(haystack: &[u8], secrets: &[(&str, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (what, secret) in secrets {
        for (form, needle) in forms(secret) {
            if contains(haystack, &needle) {
                found.push(format!("{what} ({form})"));
            }
        }
    }
    found
}

/// Each file of the database directory with its contents.
fn read_db_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_in(dir)
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {p:?}: {e}"));
            (name, bytes)
        })
        .collect()
}

/// Asserts no secret is in any file of `dir` and every clear-text marker is in one of them.
fn scan_db_dir(dir: &Path, when: &str, secrets: &[(&str, Vec<u8>)], clear: &[&str]) {
    let files = read_db_dir(dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with(".db")),
        "{when}: no database file in {dir:?}: {names:?}"
    );
    for (name, bytes) in &files {
        let found = leaks(bytes, secrets);
        assert!(
            found.is_empty(),
            "{when}: {name} ({} bytes) holds secret material in clear: {found:?}",
            bytes.len()
        );
    }
    for marker in clear {
        assert!(
            files.iter().any(|(_, b)| contains(b, marker.as_bytes())),
            "{when}: the clear-text marker {marker:?} is in none of {names:?}: the scan \
             would not see a leak either"
        );
    }
}

struct AtRest {
    string_value: String,
    binary_value: Vec<u8>,
    updated_value: String,
    put_value: String,
    description: String,
    tag_value: String,
}

/// A non-dev server on `db` with the given root key and access key.
fn production_server(db: &Path, root_key_b64: &str, key_id: &str, secret: &str) -> Server {
    ServerBuilder::production()
        .arg("--database")
        .arg(db.to_string_lossy())
        .env("ARCA_ROOT_KEY", root_key_b64)
        .env("ARCA_ACCESS_KEY_ID", key_id)
        .env("ARCA_SECRET_ACCESS_KEY", secret)
        .spawn()
}

async fn get_string(sm: &Client, id: &str) -> String {
    sm.get_secret_value()
        .secret_id(id)
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string()
        .expect("SecretString")
        .to_owned()
}

async fn get_binary(sm: &Client, id: &str) -> Vec<u8> {
    sm.get_secret_value()
        .secret_id(id)
        .send()
        .await
        .expect("GetSecretValue")
        .secret_binary()
        .expect("SecretBinary")
        .as_ref()
        .to_vec()
}

async fn read_back(sm: &Client, c: &AtRest) {
    assert_eq!(get_string(sm, "canary/string").await, c.string_value);
    assert_eq!(get_binary(sm, "canary/binary").await, c.binary_value);
    assert_eq!(get_string(sm, "canary/updated").await, c.updated_value);
    assert_eq!(get_string(sm, "canary/put").await, c.put_value);
}

#[tokio::test]
async fn database_files_hold_no_plaintext_secrets() {
    let dir = tempdir();
    let db = dir.path().join("arca.db");
    let root_key = random_bytes(32);
    let root_key_b64 = base64::engine::general_purpose::STANDARD.encode(&root_key);
    let key_id = "AKIAARCANOPLAINTEXT1";
    let access_secret = canary("access-secret");

    let c = AtRest {
        string_value: canary("string-secret"),
        // Random bytes, none of them printable on purpose, with a recognisable middle.
        binary_value: [
            random_bytes(24),
            canary("binary").into_bytes(),
            random_bytes(24),
        ]
        .concat(),
        updated_value: canary("updated-secret"),
        put_value: canary("put-secret"),
        description: canary("clear-description"),
        tag_value: canary("clear-tag"),
    };

    let mut server = production_server(&db, &root_key_b64, key_id, &access_secret);
    let sm = sdk_client(&server.endpoint(), REGION, key_id, &access_secret);
    sm.create_secret()
        .name("canary/string")
        .secret_string(&c.string_value)
        .description(&c.description)
        .tags(Tag::builder().key("marker").value(&c.tag_value).build())
        .send()
        .await
        .expect("CreateSecret string");
    sm.create_secret()
        .name("canary/binary")
        .secret_binary(Blob::new(c.binary_value.clone()))
        .send()
        .await
        .expect("CreateSecret binary");
    sm.create_secret()
        .name("canary/updated")
        .secret_string("placeholder")
        .send()
        .await
        .expect("CreateSecret for UpdateSecret");
    sm.update_secret()
        .secret_id("canary/updated")
        .secret_string(&c.updated_value)
        .send()
        .await
        .expect("UpdateSecret");
    sm.create_secret()
        .name("canary/put")
        .secret_string("placeholder")
        .send()
        .await
        .expect("CreateSecret for PutSecretValue");
    sm.put_secret_value()
        .secret_id("canary/put")
        .secret_string(&c.put_value)
        .send()
        .await
        .expect("PutSecretValue");
    read_back(&sm, &c).await;

    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("SecretString", c.string_value.clone().into_bytes()),
        ("SecretBinary", c.binary_value.clone()),
        ("UpdateSecret value", c.updated_value.clone().into_bytes()),
        ("PutSecretValue value", c.put_value.clone().into_bytes()),
        ("root key", root_key.clone()),
        (
            "root key (as configured)",
            root_key_b64.clone().into_bytes(),
        ),
        ("secret access key", access_secret.clone().into_bytes()),
    ];
    let clear = [c.description.as_str(), c.tag_value.as_str()];

    // While running: the write-ahead log holds the recent writes.
    let files = read_db_dir(dir.path());
    assert!(
        files.iter().any(|(n, _)| n.ends_with("-wal")),
        "expected a WAL file while the server runs: {:?}",
        files.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    scan_db_dir(dir.path(), "while running", &secrets, &clear);

    // After a graceful shutdown (SIGTERM), whatever was checkpointed into the main file.
    let status = server.terminate();
    assert!(status.success(), "arca exited with {status}");
    scan_db_dir(dir.path(), "after shutdown", &secrets, &clear);

    // The files scanned are the ones that hold the secrets: a new server on the same
    // directory and root key reads every value back.
    let mut server = production_server(&db, &root_key_b64, key_id, &access_secret);
    let sm = sdk_client(&server.endpoint(), REGION, key_id, &access_secret);
    read_back(&sm, &c).await;
    let status = server.terminate();
    assert!(status.success(), "arca exited with {status}");
    scan_db_dir(dir.path(), "after a restart", &secrets, &clear);
    let out = server.output();
    let found = leaks(&out, &secrets);
    assert!(found.is_empty(), "the server printed {found:?}");
}

#[tokio::test]
async fn trace_logs_hold_no_secrets() {
    let mut server = ServerBuilder::dev().arg("--log").arg("trace").spawn();
    let sm = server.client(REGION);

    let string_value = canary("log-string");
    let binary_value = [random_bytes(16), canary("log-binary").into_bytes()].concat();
    let put_value = canary("log-put");
    let update_value = canary("log-update");
    let malformed = canary("log-malformed");
    let wrong_type = canary("log-wrong-type");
    let bad_base64 = canary("log-bad-base64");
    let wrong_key = canary("log-wrong-key");
    let token_value = canary("log-batch");

    // The ordinary workload.
    sm.create_secret()
        .name("log/string")
        .secret_string(&string_value)
        .description("a described secret")
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await
        .expect("CreateSecret");
    sm.create_secret()
        .name("log/binary")
        .secret_binary(Blob::new(binary_value.clone()))
        .send()
        .await
        .expect("CreateSecret binary");
    assert_eq!(
        sm.get_secret_value()
            .secret_id("log/string")
            .send()
            .await
            .expect("GetSecretValue")
            .secret_string(),
        Some(string_value.as_str())
    );
    sm.put_secret_value()
        .secret_id("log/string")
        .secret_string(&put_value)
        .send()
        .await
        .expect("PutSecretValue");
    sm.update_secret()
        .secret_id("log/binary")
        .secret_string(&update_value)
        .send()
        .await
        .expect("UpdateSecret");
    sm.create_secret()
        .name("log/batch")
        .secret_string(&token_value)
        .send()
        .await
        .expect("CreateSecret");
    let batch = sm
        .batch_get_secret_value()
        .secret_id_list("log/string")
        .secret_id_list("log/binary")
        .secret_id_list("log/batch")
        .secret_id_list("log/missing")
        .send()
        .await
        .expect("BatchGetSecretValue");
    assert_eq!(batch.secret_values().len(), 3);
    let by_filter = sm
        .batch_get_secret_value()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values("log/")
                .build(),
        )
        .send()
        .await
        .expect("BatchGetSecretValue by filter");
    assert_eq!(by_filter.secret_values().len(), 3);
    sm.list_secrets().send().await.expect("ListSecrets");
    sm.describe_secret()
        .secret_id("log/string")
        .send()
        .await
        .expect("DescribeSecret");
    sm.list_secret_version_ids()
        .secret_id("log/string")
        .include_deprecated(true)
        .send()
        .await
        .expect("ListSecretVersionIds");
    sm.get_secret_value()
        .secret_id("log/string")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .expect("GetSecretValue AWSPREVIOUS");

    // Error paths the SDK would never produce, signed with the right key so they get past
    // authentication into the JSON decoder.
    let sign = |op: &'static str, body: String| {
        let server = &server;
        async move {
            server
                .signed_call(
                    REGION,
                    ACCESS_KEY_ID,
                    SECRET_ACCESS_KEY,
                    op,
                    body.as_bytes(),
                )
                .await
        }
    };
    let r = sign(
        "CreateSecret",
        format!(r#"{{"Name":"log/bad","SecretString":"{malformed}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (400, "SerializationException"),
        "{}",
        r.text()
    );
    let r = sign(
        "PutSecretValue",
        format!(r#"{{"SecretId":"log/string","SecretString":"{malformed}",}}"#),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = sign(
        "CreateSecret",
        format!(r#"{{"Name":"log/typed","SecretString":{{"nested":"{wrong_type}"}}}}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (400, "SerializationException"),
        "{}",
        r.text()
    );
    let r = sign(
        "PutSecretValue",
        format!(r#"{{"SecretId":"log/string","SecretString":["{wrong_type}"]}}"#),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = sign(
        "CreateSecret",
        format!(r#"{{"Name":"log/b64","SecretBinary":"{bad_base64}!!"}}"#),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Nor does the answer echo the input (client-facing messages carry no secrets).
    assert!(!contains(&r.body, bad_base64.as_bytes()), "{}", r.text());

    // A wrong secret key that is itself a canary: through the SDK and raw.
    let wrong = sdk_client(&server.endpoint(), REGION, ACCESS_KEY_ID, &wrong_key);
    let err = wrong
        .get_secret_value()
        .secret_id("log/string")
        .send()
        .await
        .expect_err("signed with the wrong key");
    assert!(err.as_service_error().is_some(), "{err:?}");
    let r = server
        .signed_call(
            REGION,
            ACCESS_KEY_ID,
            &wrong_key,
            "GetSecretValue",
            br#"{"SecretId":"log/string"}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = server
        .signed_call(
            REGION,
            "AKIAUNKNOWNKEY000001",
            &wrong_key,
            "ListSecrets",
            b"{}",
        )
        .await;
    assert!(r.status == 400 || r.status == 403, "{}", r.text());

    let status = server.terminate();
    assert!(status.success(), "arca exited with {status}");
    let out = server.output();
    let text = String::from_utf8_lossy(&out);

    // Logging was on: the log is substantial and names the operations it served.
    assert!(out.len() > 1000, "suspiciously short log:\n{text}");
    for op in [
        "CreateSecret",
        "GetSecretValue",
        "PutSecretValue",
        "UpdateSecret",
        "BatchGetSecretValue",
        "ListSecrets",
        "DescribeSecret",
        "ListSecretVersionIds",
    ] {
        assert!(text.contains(op), "the trace log never names {op}:\n{text}");
    }

    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("SecretString", string_value.into_bytes()),
        ("SecretBinary", binary_value),
        ("PutSecretValue value", put_value.into_bytes()),
        ("UpdateSecret value", update_value.into_bytes()),
        ("BatchGetSecretValue value", token_value.into_bytes()),
        ("malformed JSON value", malformed.into_bytes()),
        ("wrong-type value", wrong_type.into_bytes()),
        ("invalid base64 value", bad_base64.into_bytes()),
        ("wrong secret key", wrong_key.into_bytes()),
        ("secret access key", SECRET_ACCESS_KEY.as_bytes().to_vec()),
    ];
    let found = leaks(&out, &secrets);
    assert!(
        found.is_empty(),
        "secret material in the trace log: {found:?}\n{text}"
    );
}
