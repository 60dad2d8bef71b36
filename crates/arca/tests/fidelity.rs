//! Fidelity to AWS through the Rust SDK: every case of `tests/fidelity/errors.json` that
//! an SDK can send (see that file; boto3 runs it too, in tests/e2e/test_fidelity.py) is
//! sent with `aws-sdk-secretsmanager` to the real binary, checking the error code, the
//! HTTP status, the message, and, for shapes the model has, that the SDK parsed the
//! error into its typed exception with the `Message` member filled.

mod common;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{
    Filter, FilterNameStringType, ReplicaRegionType, RotationRulesType, SortOrderType, Tag,
};
use aws_sdk_secretsmanager::Client;
use base64::Engine;
use common::Server;
use serde_json::Value;
use std::collections::HashMap;

const REGION: &str = "us-east-1";

/// What the client saw of an error.
#[derive(Debug)]
struct Seen {
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    /// The typed exception's name and its `Message` member, for modelled shapes.
    modeled: Option<(&'static str, Option<String>)>,
}

fn seen<E>(e: SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>) -> Seen
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    aws_sdk_secretsmanager::Error:
        From<SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>>,
{
    use aws_sdk_secretsmanager::Error as T;
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_owned);
    let message = e.message().map(str::to_owned);
    let m = |x: Option<&str>| x.map(str::to_owned);
    let modeled = match aws_sdk_secretsmanager::Error::from(e) {
        T::ResourceNotFoundException(x) => Some(("ResourceNotFoundException", m(x.message()))),
        T::InvalidParameterException(x) => Some(("InvalidParameterException", m(x.message()))),
        T::InvalidRequestException(x) => Some(("InvalidRequestException", m(x.message()))),
        T::ResourceExistsException(x) => Some(("ResourceExistsException", m(x.message()))),
        T::InvalidNextTokenException(x) => Some(("InvalidNextTokenException", m(x.message()))),
        T::LimitExceededException(x) => Some(("LimitExceededException", m(x.message()))),
        T::DecryptionFailure(x) => Some(("DecryptionFailure", m(x.message()))),
        T::EncryptionFailure(x) => Some(("EncryptionFailure", m(x.message()))),
        T::InternalServiceError(x) => Some(("InternalServiceError", m(x.message()))),
        T::MalformedPolicyDocumentException(x) => {
            Some(("MalformedPolicyDocumentException", m(x.message())))
        }
        T::PublicPolicyException(x) => Some(("PublicPolicyException", m(x.message()))),
        _ => None,
    };
    Seen {
        status,
        code,
        message,
        modeled,
    }
}

fn s(p: &Value, k: &str) -> Option<String> {
    p.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn n(p: &Value, k: &str) -> Option<i64> {
    p.get(k).and_then(Value::as_i64)
}

fn b(p: &Value, k: &str) -> Option<bool> {
    p.get(k).and_then(Value::as_bool)
}

fn list(p: &Value, k: &str) -> Option<Vec<String>> {
    p.get(k).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

fn tags(p: &Value) -> Option<Vec<Tag>> {
    p.get("Tags").and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|t| {
                Tag::builder()
                    .set_key(s(t, "Key"))
                    .set_value(s(t, "Value"))
                    .build()
            })
            .collect()
    })
}

fn filters(p: &Value) -> Option<Vec<Filter>> {
    p.get("Filters").and_then(Value::as_array).map(|fs| {
        fs.iter()
            .map(|f| {
                Filter::builder()
                    .set_key(s(f, "Key").map(|k| FilterNameStringType::from(k.as_str())))
                    .set_values(list(f, "Values"))
                    .build()
            })
            .collect()
    })
}

fn replica_regions(p: &Value) -> Option<Vec<ReplicaRegionType>> {
    p.get("AddReplicaRegions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|r| {
                    ReplicaRegionType::builder()
                        .set_region(s(r, "Region"))
                        .set_kms_key_id(s(r, "KmsKeyId"))
                        .build()
                })
                .collect()
        })
}

fn binary(p: &Value) -> Option<Blob> {
    s(p, "SecretBinary").map(|v| {
        Blob::new(
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .expect("base64 SecretBinary"),
        )
    })
}

/// The response members a case may save, by name.
type Saved = HashMap<&'static str, String>;

fn saved(pairs: &[(&'static str, Option<&str>)]) -> Saved {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v.to_owned())))
        .collect()
}

/// One call of the table through the SDK.
async fn call(sm: &Client, op: &str, p: &Value) -> Result<Saved, Seen> {
    match op {
        "CreateSecret" => sm
            .create_secret()
            .set_name(s(p, "Name"))
            .set_secret_string(s(p, "SecretString"))
            .set_secret_binary(binary(p))
            .set_description(s(p, "Description"))
            .set_client_request_token(s(p, "ClientRequestToken"))
            .set_tags(tags(p))
            .set_kms_key_id(s(p, "KmsKeyId"))
            .set_add_replica_regions(replica_regions(p))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn()), ("VersionId", o.version_id())]))
            .map_err(seen),
        "PutSecretValue" => sm
            .put_secret_value()
            .set_secret_id(s(p, "SecretId"))
            .set_secret_string(s(p, "SecretString"))
            .set_secret_binary(binary(p))
            .set_client_request_token(s(p, "ClientRequestToken"))
            .set_version_stages(list(p, "VersionStages"))
            .set_rotation_token(s(p, "RotationToken"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn()), ("VersionId", o.version_id())]))
            .map_err(seen),
        "UpdateSecret" => sm
            .update_secret()
            .set_secret_id(s(p, "SecretId"))
            .set_secret_string(s(p, "SecretString"))
            .set_description(s(p, "Description"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn()), ("VersionId", o.version_id())]))
            .map_err(seen),
        "GetSecretValue" => sm
            .get_secret_value()
            .set_secret_id(s(p, "SecretId"))
            .set_version_id(s(p, "VersionId"))
            .set_version_stage(s(p, "VersionStage"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn()), ("VersionId", o.version_id())]))
            .map_err(seen),
        "DescribeSecret" => sm
            .describe_secret()
            .set_secret_id(s(p, "SecretId"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn())]))
            .map_err(seen),
        "DeleteSecret" => sm
            .delete_secret()
            .set_secret_id(s(p, "SecretId"))
            .set_recovery_window_in_days(n(p, "RecoveryWindowInDays"))
            .set_force_delete_without_recovery(b(p, "ForceDeleteWithoutRecovery"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn())]))
            .map_err(seen),
        "TagResource" => sm
            .tag_resource()
            .set_secret_id(s(p, "SecretId"))
            .set_tags(tags(p))
            .send()
            .await
            .map(|_| Saved::new())
            .map_err(seen),
        "ListSecretVersionIds" => sm
            .list_secret_version_ids()
            .set_secret_id(s(p, "SecretId"))
            .set_max_results(n(p, "MaxResults").map(|v| v as i32))
            .set_next_token(s(p, "NextToken"))
            .set_include_deprecated(b(p, "IncludeDeprecated"))
            .send()
            .await
            .map(|_| Saved::new())
            .map_err(seen),
        "ListSecrets" => sm
            .list_secrets()
            .set_max_results(n(p, "MaxResults").map(|v| v as i32))
            .set_next_token(s(p, "NextToken"))
            .set_sort_order(s(p, "SortOrder").map(|v| SortOrderType::from(v.as_str())))
            .set_filters(filters(p))
            .send()
            .await
            .map(|_| Saved::new())
            .map_err(seen),
        "UpdateSecretVersionStage" => sm
            .update_secret_version_stage()
            .set_secret_id(s(p, "SecretId"))
            .set_version_stage(s(p, "VersionStage"))
            .set_move_to_version_id(s(p, "MoveToVersionId"))
            .set_remove_from_version_id(s(p, "RemoveFromVersionId"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn())]))
            .map_err(seen),
        "RotateSecret" => sm
            .rotate_secret()
            .set_secret_id(s(p, "SecretId"))
            .set_rotation_lambda_arn(s(p, "RotationLambdaARN"))
            .set_rotation_rules(p.get("RotationRules").map(|r| {
                RotationRulesType::builder()
                    .set_automatically_after_days(n(r, "AutomaticallyAfterDays"))
                    .set_schedule_expression(s(r, "ScheduleExpression"))
                    .set_duration(s(r, "Duration"))
                    .build()
            }))
            .set_external_secret_rotation_role_arn(s(p, "ExternalSecretRotationRoleArn"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn())]))
            .map_err(seen),
        "GetRandomPassword" => sm
            .get_random_password()
            .set_password_length(n(p, "PasswordLength"))
            .set_exclude_characters(s(p, "ExcludeCharacters"))
            .set_exclude_numbers(b(p, "ExcludeNumbers"))
            .set_exclude_punctuation(b(p, "ExcludePunctuation"))
            .set_exclude_uppercase(b(p, "ExcludeUppercase"))
            .set_exclude_lowercase(b(p, "ExcludeLowercase"))
            .send()
            .await
            .map(|_| Saved::new())
            .map_err(seen),
        "BatchGetSecretValue" => sm
            .batch_get_secret_value()
            .set_secret_id_list(list(p, "SecretIdList"))
            .set_filters(filters(p))
            .set_max_results(n(p, "MaxResults").map(|v| v as i32))
            .set_next_token(s(p, "NextToken"))
            .send()
            .await
            .map(|_| Saved::new())
            .map_err(seen),
        "ReplicateSecretToRegions" => sm
            .replicate_secret_to_regions()
            .set_secret_id(s(p, "SecretId"))
            .set_add_replica_regions(replica_regions(p))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn())]))
            .map_err(seen),
        "RemoveRegionsFromReplication" => sm
            .remove_regions_from_replication()
            .set_secret_id(s(p, "SecretId"))
            .set_remove_replica_regions(list(p, "RemoveReplicaRegions"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn())]))
            .map_err(seen),
        "StopReplicationToReplica" => sm
            .stop_replication_to_replica()
            .set_secret_id(s(p, "SecretId"))
            .send()
            .await
            .map(|o| saved(&[("ARN", o.arn())]))
            .map_err(seen),
        "PutResourcePolicy" => sm
            .put_resource_policy()
            .set_secret_id(s(p, "SecretId"))
            .set_resource_policy(s(p, "ResourcePolicy"))
            .send()
            .await
            .map(|_| Saved::new())
            .map_err(seen),
        other => panic!("the Rust runner has no mapping for {other}: add one"),
    }
}

/// `${name}` from what setup saved; `${N c}`: the character c, N times.
fn expand(v: &Value, vars: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => {
            if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if let Some((count, c)) = inner.split_once(' ') {
                    if let Ok(count) = count.parse::<usize>() {
                        return Value::String(c.repeat(count));
                    }
                }
            }
            let mut out = s.clone();
            for (k, val) in vars {
                out = out.replace(&format!("${{{k}}}"), val);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| expand(x, vars)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), expand(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn table() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fidelity/errors.json"
    );
    let text = std::fs::read_to_string(path).expect("reading tests/fidelity/errors.json");
    let doc: Value = serde_json::from_str(&text).expect("errors.json is JSON");
    doc["cases"].as_array().expect("cases").clone()
}

fn for_rust(case: &Value) -> bool {
    match case.get("clients").and_then(Value::as_array) {
        None => true,
        Some(c) => c.iter().any(|x| x == "rust"),
    }
}

#[tokio::test]
async fn every_error_of_the_table_through_the_rust_sdk() {
    let server = Server::dev();
    let sm = server.client(REGION);
    let cases: Vec<Value> = table().into_iter().filter(for_rust).collect();
    assert!(cases.len() > 30, "the table lost its cases");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        server.dev_reset().await;
        let mut vars: HashMap<String, String> = HashMap::new();
        for step in case
            .get("setup")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let op = step["op"].as_str().expect("op");
            let params = expand(&step["params"], &vars);
            let mut out = Saved::new();
            for _ in 0..step.get("repeat").and_then(Value::as_u64).unwrap_or(1) {
                out = call(&sm, op, &params)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: setup {op} failed: {e:?}"));
            }
            for (var, member) in step
                .get("save")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let member = member.as_str().expect("member");
                let value = out
                    .get(member)
                    .unwrap_or_else(|| panic!("{name}: {op} returned no {member}"));
                vars.insert(var.clone(), value.clone());
            }
        }
        let op = case["call"]["op"].as_str().expect("op");
        let want = &case["expect"];
        let want_type = want["type"].as_str().expect("type");
        let want_message = expand(&want["message"], &vars);
        let want_message = want_message.as_str().expect("message");
        let want_status = want.get("status").and_then(Value::as_u64).unwrap_or(400) as u16;
        let modeled = want["modeled"].as_bool().expect("modeled");
        match call(&sm, op, &expand(&case["call"]["params"], &vars)).await {
            Ok(_) => failures.push(format!("{name}: {op} succeeded")),
            Err(got) => {
                let mut wrong = Vec::new();
                if got.status != Some(want_status) {
                    wrong.push(format!("status {:?}", got.status));
                }
                if got.code.as_deref() != Some(want_type) {
                    wrong.push(format!("code {:?}", got.code));
                }
                if got.message.as_deref() != Some(want_message) {
                    wrong.push(format!("message {:?}", got.message));
                }
                match (&got.modeled, modeled) {
                    (Some((t, m)), true)
                        if *t == want_type && m.as_deref() == Some(want_message) => {}
                    (None, false) => {}
                    (other, _) => wrong.push(format!("typed exception {other:?}")),
                }
                if !wrong.is_empty() {
                    failures.push(format!("{name}: {}", wrong.join(", ")));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
