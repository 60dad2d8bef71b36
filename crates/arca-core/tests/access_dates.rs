//! LastAccessedDate is written to the store in batches, off the read path. Until a batch
//! is written, what the API shows must already include it (from the cache, or laid over
//! records read from the store), and a listing sorted by access date must wait for it.

mod common;

use arca_core::{Arca, RequestCtx};
use arca_types::secret::SecretString;
use arca_types::wire::*;
use common::instance;

async fn create(arca: &Arca, ctx: &RequestCtx, name: &str) {
    arca.create_secret(
        ctx,
        CreateSecretRequest {
            name: Some(name.into()),
            secret_string: Some(SecretString::new("v".into())),
            client_request_token: Some(format!("{name:0>32}")),
            ..Default::default()
        },
    )
    .await
    .expect("create");
}

async fn get(arca: &Arca, ctx: &RequestCtx, name: &str) {
    arca.get_secret_value(
        ctx,
        GetSecretValueRequest {
            secret_id: Some(name.into()),
            ..Default::default()
        },
    )
    .await
    .expect("get");
}

async fn accessed(arca: &Arca, ctx: &RequestCtx, name: &str) -> Option<serde_json::Value> {
    let d = arca
        .describe_secret(
            ctx,
            DescribeSecretRequest {
                secret_id: Some(name.into()),
            },
        )
        .await
        .expect("describe");
    serde_json::to_value(&d)
        .expect("json")
        .get("LastAccessedDate")
        .cloned()
}

async fn list(arca: &Arca, ctx: &RequestCtx, sort_by: &str) -> Vec<serde_json::Value> {
    let out = arca
        .list_secrets(
            ctx,
            ListSecretsRequest {
                sort_by: Some(sort_by.into()),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    serde_json::to_value(&out).expect("json")["SecretList"]
        .as_array()
        .expect("list")
        .clone()
}

#[tokio::test]
async fn pending_access_dates_show_everywhere_and_reach_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("arca.db");
    let arca = instance(&db).await;
    let ctx = RequestCtx::new("us-east-1");
    create(&arca, &ctx, "read").await;
    create(&arca, &ctx, "unread").await;
    get(&arca, &ctx, "read").await;

    // At once, while the write is still gathering: DescribeSecret from the cache, and
    // ListSecrets (read from the store) with the pending day laid over.
    let day = accessed(&arca, &ctx, "read")
        .await
        .expect("read secret has a date");
    assert_eq!(accessed(&arca, &ctx, "unread").await, None);
    let by_name = list(&arca, &ctx, "name").await;
    let read = by_name
        .iter()
        .find(|s| s["Name"] == "read")
        .expect("listed");
    assert_eq!(read.get("LastAccessedDate"), Some(&day));

    // A listing sorted by access date waits for the write, so the store's order is right.
    let sorted = list(&arca, &ctx, "last-accessed-date").await;
    assert_eq!(sorted[0]["Name"], "read", "{sorted:?}");
    // And the day is in the store: a second instance with nothing cached sees it.
    let cold = instance(&db).await;
    assert_eq!(accessed(&cold, &ctx, "read").await, Some(day));
    assert_eq!(accessed(&cold, &ctx, "unread").await, None);
}
