//! Rotation attempts on two nodes whose clocks disagree, sharing one PostgreSQL: an
//! attempt's lease is judged by the database's clock, so a node whose clock runs ahead
//! does not take over an attempt that another node still holds, and does take it over
//! once the lease has run out by the database's clock.

mod common;

use arca_store::Store;
use arca_store_postgres::testing::fresh_schema;
use arca_store_postgres::PostgresStore;
use arca_types::secret::SecretString;
use arca_types::time::{Clock, ManualClock, SystemClock};
use arca_types::wire::*;
use common::{ctx, Node, Script, FUNCTION_ARN, HOUR};
use std::sync::Arc;
use std::time::Duration;

const LEASE_MS: i64 = 2_000;

#[tokio::test]
async fn a_node_whose_clock_runs_ahead_does_not_take_over_a_held_attempt() {
    let (opts, _guard) = fresh_schema().await;
    let open = || async {
        let s: Arc<dyn Store> = Arc::new(PostgresStore::open(&opts).await.expect("open store"));
        s
    };
    let now = SystemClock.now_millis();
    let script = Arc::new(Script::default());
    let a = Node::over(open().await, &ManualClock::new(now), script.clone()).await;
    // B's clock is an hour ahead of A's (and of the database's).
    let b = Node::over(open().await, &ManualClock::new(now + HOUR), script).await;
    common::bind_rotation_function(a.store.as_ref(), now).await;
    let arn = a
        .arca
        .create_secret(
            &ctx(),
            CreateSecretRequest {
                name: Some("skewed".into()),
                secret_string: Some(SecretString::new("initial".into())),
                client_request_token: Some(common::uuid()),
                ..Default::default()
            },
        )
        .await
        .expect("create")
        .arn;
    a.arca
        .rotate_secret(
            &ctx(),
            RotateSecretRequest {
                secret_id: Some(arn.clone()),
                rotation_lambda_arn: Some(FUNCTION_ARN.into()),
                client_request_token: Some(common::uuid()),
                ..Default::default()
            },
        )
        .await
        .expect("rotate");

    let held = a
        .arca
        .claim_due_rotations(8, LEASE_MS, None)
        .await
        .expect("claim on A");
    assert_eq!(held.len(), 1, "A claims the attempt");
    assert_eq!(held[0].job.attempt, 1);

    // By B's clock A's lease ran out an hour ago; by the database's it holds.
    let early = b
        .arca
        .claim_due_rotations(8, LEASE_MS, None)
        .await
        .expect("claim on B");
    assert!(
        early.is_empty(),
        "B took over attempt {:?} while A held it",
        early.iter().map(|c| c.job.attempt).collect::<Vec<_>>()
    );
    // Looking changed nothing: the secret is where A's claim left it.
    let record = b
        .store
        .find_by_arn(common::REGION, &arn)
        .await
        .expect("find")
        .expect("exists");
    let after_claim = a
        .store
        .find_by_arn(common::REGION, &arn)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(record.revision, after_claim.revision);

    // Once the lease has run out by the database's clock, B takes the attempt over.
    tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 + 500)).await;
    let taken = b
        .arca
        .claim_due_rotations(8, LEASE_MS, None)
        .await
        .expect("claim on B");
    assert_eq!(taken.len(), 1, "B takes over the expired attempt");
    assert_eq!(taken[0].job.attempt, 2);
    assert_eq!(taken[0].job.token, held[0].job.token);
}
