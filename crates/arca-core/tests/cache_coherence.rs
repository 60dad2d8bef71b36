//! Regression: the read cache is updated in place by writes (write-through). After every
//! kind of write, what a warm instance answers must equal what a cold instance (a second
//! process on the same database, nothing cached) reads from the store.

mod common;

use arca_core::{Arca, RequestCtx};
use arca_types::secret::SecretString;
use arca_types::wire::*;
use common::instance;

async fn snapshot(arca: &Arca, ctx: &RequestCtx) -> String {
    let d = arca
        .describe_secret(
            ctx,
            DescribeSecretRequest {
                secret_id: Some("s".into()),
            },
        )
        .await
        .expect("describe");
    let v = arca
        .list_secret_version_ids(
            ctx,
            ListSecretVersionIdsRequest {
                secret_id: Some("s".into()),
                include_deprecated: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("versions");
    let mut d = serde_json::to_value(&d).expect("json");
    // Access dates are recorded asynchronously; they are not what this test is about.
    d.as_object_mut()
        .expect("object")
        .remove("LastAccessedDate");
    let mut v = serde_json::to_value(&v).expect("json");
    for e in v["Versions"].as_array_mut().expect("array") {
        e.as_object_mut()
            .expect("object")
            .remove("LastAccessedDate");
    }
    format!("{d}\n{v}")
}

fn token(i: u32) -> Option<String> {
    Some(format!("{i:0>32}"))
}

#[tokio::test]
async fn warm_and_cold_instances_agree_after_every_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("arca.db");
    let warm = instance(&db).await;
    let ctx = RequestCtx::new("us-east-1");
    let check = |step: &'static str| {
        let db = db.clone();
        let ctx = ctx.clone();
        let warm = &warm;
        async move {
            let cold = instance(&db).await;
            assert_eq!(
                snapshot(warm, &ctx).await,
                snapshot(&cold, &ctx).await,
                "after {step}"
            );
        }
    };

    warm.create_secret(
        &ctx,
        CreateSecretRequest {
            name: Some("s".into()),
            secret_string: Some(SecretString::new("v0".into())),
            client_request_token: token(0),
            tags: Some(vec![Tag {
                key: Some("a".into()),
                value: Some("1".into()),
            }]),
            ..Default::default()
        },
    )
    .await
    .expect("create");
    // Warm the cache with a read, then write through it.
    snapshot(&warm, &ctx).await;
    check("create").await;
    for i in 1..4 {
        warm.put_secret_value(
            &ctx,
            PutSecretValueRequest {
                secret_id: Some("s".into()),
                client_request_token: token(i),
                secret_string: Some(SecretString::new(format!("v{i}"))),
                ..Default::default()
            },
        )
        .await
        .expect("put");
        check("put").await;
    }
    warm.put_secret_value(
        &ctx,
        PutSecretValueRequest {
            secret_id: Some("s".into()),
            client_request_token: token(9),
            secret_string: Some(SecretString::new("pending".into())),
            version_stages: Some(vec!["AWSPENDING".into(), "CUSTOM".into()]),
            ..Default::default()
        },
    )
    .await
    .expect("put pending");
    check("put with stages").await;
    warm.update_secret_version_stage(
        &ctx,
        UpdateSecretVersionStageRequest {
            secret_id: Some("s".into()),
            version_stage: Some("AWSCURRENT".into()),
            move_to_version_id: token(9),
            remove_from_version_id: token(3),
        },
    )
    .await
    .expect("move current");
    check("update version stage").await;
    warm.update_secret(
        &ctx,
        UpdateSecretRequest {
            secret_id: Some("s".into()),
            description: Some("d".into()),
            ..Default::default()
        },
    )
    .await
    .expect("update");
    check("update metadata").await;
    warm.tag_resource(
        &ctx,
        TagResourceRequest {
            secret_id: Some("s".into()),
            tags: Some(vec![Tag {
                key: Some("b".into()),
                value: Some("2".into()),
            }]),
        },
    )
    .await
    .expect("tag");
    check("tag").await;
    warm.untag_resource(
        &ctx,
        UntagResourceRequest {
            secret_id: Some("s".into()),
            tag_keys: Some(vec!["a".into()]),
        },
    )
    .await
    .expect("untag");
    check("untag").await;
    warm.delete_secret(
        &ctx,
        DeleteSecretRequest {
            secret_id: Some("s".into()),
            recovery_window_in_days: Some(7),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    check("delete").await;
    warm.restore_secret(
        &ctx,
        SecretIdRequest {
            secret_id: Some("s".into()),
        },
    )
    .await
    .expect("restore");
    check("restore").await;
}
