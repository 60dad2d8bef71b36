//! The replication operations through the AWS SDK for Rust, against the real binary (one
//! deployment; the regions are the SigV4 scopes): CreateSecret with AddReplicaRegions,
//! ReplicateSecretToRegions, DescribeSecret's ReplicationStatus through InProgress, InSync
//! and Failed, reads in the replica region, the replica's refusal of writes,
//! RemoveRegionsFromReplication and StopReplicationToReplica.

mod common;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::{ReplicaRegionType, ReplicationStatusType, StatusType};
use aws_sdk_secretsmanager::Client;
use common::Server;
use std::time::{Duration, Instant};

const PRIMARY: &str = "us-east-1";
const REPLICA: &str = "eu-west-1";
const THIRD: &str = "ap-south-1";

fn region(r: &str) -> ReplicaRegionType {
    ReplicaRegionType::builder().region(r).build()
}

async fn status(c: &Client, id: &str, region: &str) -> Option<ReplicationStatusType> {
    c.describe_secret()
        .secret_id(id)
        .send()
        .await
        .expect("describe")
        .replication_status()
        .iter()
        .find(|s| s.region() == Some(region))
        .cloned()
}

async fn wait_status(
    c: &Client,
    id: &str,
    region: &str,
    want: StatusType,
) -> ReplicationStatusType {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = status(c, id, region).await {
            if s.status() == Some(&want) {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "{region} never became {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn value(c: &Client, id: &str) -> Option<String> {
    c.get_secret_value()
        .secret_id(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.secret_string().map(str::to_owned))
}

async fn wait_value(c: &Client, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while value(c, id).await.as_deref() != Some(want) {
        assert!(Instant::now() < deadline, "the replica never read {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_replication_operation_through_the_rust_sdk() {
    let server = Server::dev();
    let (p, r, t) = (
        server.client(PRIMARY),
        server.client(REPLICA),
        server.client(THIRD),
    );

    let created = p
        .create_secret()
        .name("sdk/rep")
        .secret_string("one")
        .add_replica_regions(region(REPLICA))
        .send()
        .await
        .expect("create");
    let first = &created.replication_status()[0];
    assert_eq!(first.status(), Some(&StatusType::InProgress));
    assert_eq!(first.kms_key_id(), Some("alias/aws/secretsmanager"));
    let synced = wait_status(&p, "sdk/rep", REPLICA, StatusType::InSync).await;
    assert_eq!(synced.status_message(), Some("Replication succeeded"));
    wait_value(&r, "sdk/rep", "one").await;
    let d = r
        .describe_secret()
        .secret_id("sdk/rep")
        .send()
        .await
        .expect("describe replica");
    assert_eq!(d.primary_region(), Some(PRIMARY));
    assert_eq!(
        d.arn(),
        created
            .arn()
            .map(|a| a.replace(PRIMARY, REPLICA))
            .as_deref()
    );

    // A write to the primary reaches the replica; a write to the replica is refused.
    p.put_secret_value()
        .secret_id("sdk/rep")
        .secret_string("two")
        .send()
        .await
        .expect("put");
    wait_value(&r, "sdk/rep", "two").await;
    let e = r
        .put_secret_value()
        .secret_id("sdk/rep")
        .secret_string("x")
        .send()
        .await
        .expect_err("a replica is read-only");
    assert_eq!(e.code(), Some("InvalidParameterException"));
    assert_eq!(
        e.message(),
        Some("Operation not permitted on a replica secret. Call must be made in primary secret's region.")
    );

    // A region that already holds the name fails; the replica there is not made.
    t.create_secret()
        .name("sdk/rep")
        .secret_string("theirs")
        .send()
        .await
        .expect("create in the third region");
    let out = p
        .replicate_secret_to_regions()
        .secret_id("sdk/rep")
        .add_replica_regions(region(THIRD))
        .send()
        .await
        .expect("replicate");
    assert_eq!(out.arn(), created.arn());
    assert_eq!(out.replication_status().len(), 2);
    let failed = wait_status(&p, "sdk/rep", THIRD, StatusType::Failed).await;
    assert_eq!(
        failed.status_message(),
        Some("Secret with this name already exists in this region")
    );
    assert_eq!(value(&t, "sdk/rep").await.as_deref(), Some("theirs"));

    let out = p
        .remove_regions_from_replication()
        .secret_id("sdk/rep")
        .remove_replica_regions(THIRD)
        .send()
        .await
        .expect("remove");
    let regions: Vec<_> = out
        .replication_status()
        .iter()
        .filter_map(|s| s.region())
        .collect();
    assert_eq!(regions, [REPLICA]);

    let promoted = r
        .stop_replication_to_replica()
        .secret_id("sdk/rep")
        .send()
        .await
        .expect("promote");
    assert_eq!(promoted.arn(), d.arn());
    r.put_secret_value()
        .secret_id("sdk/rep")
        .secret_string("standalone")
        .send()
        .await
        .expect("a promoted secret takes writes");
    let deadline = Instant::now() + Duration::from_secs(15);
    while status(&p, "sdk/rep", REPLICA).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the primary still lists the promoted region"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // With no replicas left, the primary can be deleted again.
    p.delete_secret()
        .secret_id("sdk/rep")
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete");
}
