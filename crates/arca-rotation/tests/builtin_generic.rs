//! The `generic` built-in rotator and the entry checks every built-in rotator shares,
//! against a real arca-core.

mod builtin_support;

use arca_rotation::builtin::{BuiltinKind, BuiltinOptions, BuiltinRotator};
use arca_rotation::{Invoker, Step};
use builtin_support::*;

fn generic(env: &Env) -> BuiltinRotator {
    BuiltinRotator::new(
        BuiltinKind::Generic,
        env.api.clone(),
        BuiltinOptions::for_kind(BuiltinKind::Generic),
    )
}

#[tokio::test]
async fn generic_json_secret_gets_a_new_password_and_keeps_other_fields() {
    let env = Env::new().await;
    let arn = env
        .create(
            "app",
            r#"{"username":"app","password":"old-pw","extra":{"k":1}}"#,
        )
        .await;
    let rot = generic(&env);
    let first = env.version_of(&arn, "AWSCURRENT").await;
    let r = Rotation::new(&arn);
    r.run(&rot, 2).await.expect("rotation");
    let cur = env.json(&arn, "AWSCURRENT").await;
    assert_eq!(env.version_of(&arn, "AWSCURRENT").await, r.token);
    assert_eq!(env.version_of(&arn, "AWSPREVIOUS").await, first);
    assert_eq!(cur["username"], "app");
    assert_eq!(cur["extra"], serde_json::json!({"k": 1}));
    let pw = cur["password"].as_str().expect("password");
    assert_ne!(pw, "old-pw");
    assert_eq!(pw.len(), 32, "GetRandomPassword's default length");

    // A second rotation moves on again; re-running it once finished does nothing.
    let r2 = Rotation::new(&arn);
    r2.run(&rot, 1).await.expect("second rotation");
    assert_eq!(env.version_of(&arn, "AWSCURRENT").await, r2.token);
    assert_ne!(env.json(&arn, "AWSCURRENT").await["password"], pw);
    r2.run(&rot, 1).await.expect("already current");
    assert_eq!(env.version_of(&arn, "AWSCURRENT").await, r2.token);
}

#[tokio::test]
async fn generic_plain_string_is_replaced_whole() {
    let env = Env::new().await;
    let arn = env.create("token", "not json at all").await;
    Rotation::new(&arn)
        .run(&generic(&env), 1)
        .await
        .expect("rotation");
    let v = env.value(&arn, "AWSCURRENT").await;
    assert_ne!(v, "not json at all");
    assert_eq!(v.len(), 32);
}

#[tokio::test]
async fn password_rules_come_from_the_options() {
    let env = Env::new().await;
    let arn = env.create("rules", r#"{"password":"x"}"#).await;
    let spec: arca_rotation::BuiltinSpec = serde_json::from_value(serde_json::json!({
        "kind": "generic",
        "options": {"password_length": 12, "exclude_punctuation": true}
    }))
    .expect("spec");
    let rot = BuiltinRotator::from_spec(&spec, env.api.clone());
    Rotation::new(&arn).run(&rot, 1).await.expect("rotation");
    let pw = env.json(&arn, "AWSCURRENT").await["password"]
        .as_str()
        .expect("password")
        .to_owned();
    assert_eq!(pw.len(), 12);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw}");
}

#[tokio::test]
async fn steps_refuse_a_token_that_is_not_pending() {
    let env = Env::new().await;
    let arn = env.create("checks", r#"{"password":"x"}"#).await;
    let rot = generic(&env);
    let r = Rotation::new(&arn);
    // Not a version of the secret (and not createSecret, which may make it).
    for step in [Step::SetSecret, Step::TestSecret, Step::FinishSecret] {
        let e = r.step(&rot, step).await.expect_err("unknown token");
        assert!(e.message.contains("no stage"), "{}", e.message);
    }
    // A version that is neither AWSCURRENT nor AWSPENDING.
    r.run(&rot, 1).await.expect("rotation");
    let r2 = Rotation::new(&arn);
    r2.run(&rot, 1).await.expect("rotation");
    let e = r
        .step(&rot, Step::SetSecret)
        .await
        .expect_err("AWSPREVIOUS is not pending");
    assert!(e.message.contains("not AWSPENDING"), "{}", e.message);
    // The current version: nothing to do, for every step.
    for step in Step::ALL {
        r2.step(&rot, step).await.expect("already current");
    }
}

#[tokio::test]
async fn errors_never_carry_the_secret_value() {
    let env = Env::new().await;
    // A database rotator on a secret that is not its engine's: the error names the
    // field, not the value.
    let canary = "canary-Secret-Value-42";
    let arn = env
        .create(
            "wrong-engine",
            &serde_json::json!({"engine": "oracle", "host": "h", "username": "u", "password": canary})
                .to_string(),
        )
        .await;
    let rot = BuiltinRotator::new(
        BuiltinKind::PostgresSingleUser,
        env.api.clone(),
        BuiltinOptions::for_kind(BuiltinKind::PostgresSingleUser),
    );
    let e = rot
        .invoke(&Rotation::new(&arn).event(Step::CreateSecret))
        .await
        .expect_err("wrong engine");
    assert!(e.message.contains("engine"), "{}", e.message);
    assert!(!e.message.contains(canary), "{}", e.message);
    // Binary secrets cannot be rotated by a built-in rotator; the message says why.
    let arn = env.create("not-json", canary).await;
    let e = rot
        .invoke(&Rotation::new(&arn).event(Step::CreateSecret))
        .await
        .expect_err("not JSON");
    assert!(!e.message.contains(canary), "{}", e.message);
}
