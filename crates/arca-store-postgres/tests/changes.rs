//! The change feed across nodes: two stores on one schema stand for two nodes. What one
//! commits reaches the other's feed; what it rolls back does not; a feed whose connection
//! is killed says so and comes back.

mod support;

use std::sync::Arc;
use std::time::Duration;

use arca_store::conformance::{change as change_of, secret, version};
use arca_store::{
    AccessKeyRecord, Change, ChangeSink, EncryptionKeyRecord, IamKind, IamRecord, KeyOwner,
    KeyScope, Store, StoreError,
};
use arca_store_postgres::PostgresStore;
use tokio::sync::mpsc;

#[derive(Debug, PartialEq)]
enum Heard {
    Change(Change),
    Lost,
    Resumed,
}

struct Recorder(mpsc::UnboundedSender<Heard>);

impl ChangeSink for Recorder {
    fn changed(&self, change: &Change) {
        let _ = self.0.send(Heard::Change(change.clone()));
    }
    fn lost(&self) {
        let _ = self.0.send(Heard::Lost);
    }
    fn resumed(&self) {
        let _ = self.0.send(Heard::Resumed);
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the feed delivered within 10 s")
        .expect("the feed is open")
}

/// Waits until the feed listens (it reports `Lost` first, then `Resumed`).
async fn listening(rx: &mut mpsc::UnboundedReceiver<Heard>) {
    loop {
        if next(rx).await == Heard::Resumed {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_node_commits_reaches_the_other_and_nothing_else_does() {
    let (opts, _guard) = support::fresh_schema().await;
    let a = PostgresStore::open(&opts).await.expect("node a");
    let b = PostgresStore::open(&opts).await.expect("node b");
    let (tx, mut rx) = mpsc::unbounded_channel();
    b.watch_changes(Arc::new(Recorder(tx)));
    assert_eq!(
        next(&mut rx).await,
        Heard::Lost,
        "nothing is served before listening"
    );
    listening(&mut rx).await;

    let s = secret("us-east-1", "fed", 1_700_000_000_000);
    a.create_secret(&s, Some(&version("v1", &["AWSCURRENT"], 1)))
        .await
        .expect("create");
    assert_eq!(
        next(&mut rx).await,
        Heard::Change(Change::Secret {
            arn: s.arn.clone(),
            revision: 1
        })
    );
    let found = a
        .find_by_arn("us-east-1", &s.arn)
        .await
        .expect("find")
        .expect("exists");
    let mut c = change_of(&found);
    c.secret.description = Some("two".into());
    a.update_secret(&c).await.expect("update");
    // A stale write is rolled back: it sends nothing.
    assert!(matches!(
        a.update_secret(&c).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        next(&mut rx).await,
        Heard::Change(Change::Secret {
            arn: s.arn.clone(),
            revision: 2
        })
    );
    a.put_encryption_key(&EncryptionKeyRecord {
        key_id: "k1".into(),
        alias: Some("alias/fed".into()),
        region: "us-east-1".into(),
        wrapped: vec![1, 2, 3],
        created_at: 1,
        policy: None,
    })
    .await
    .expect("key");
    assert_eq!(next(&mut rx).await, Heard::Change(Change::Keys));
    a.delete_secret("us-east-1", &s.arn, &Default::default())
        .await
        .expect("delete");
    assert_eq!(
        next(&mut rx).await,
        Heard::Change(Change::Deleted { arn: s.arn.clone() })
    );
    // IAM writes and access keys' removal reach the other node too; a refused create
    // (the entity exists) sends nothing.
    let user = IamRecord {
        account: "111122223333".into(),
        kind: IamKind::User,
        name: "alice".into(),
        document: "{}".into(),
        created_at: 1,
        updated_at: 1,
    };
    a.put_iam(&user, None).await.expect("create user");
    assert_eq!(next(&mut rx).await, Heard::Change(Change::Iam));
    assert!(matches!(
        a.put_iam(&user, None).await,
        Err(StoreError::NameTaken)
    ));
    a.put_iam(&user, Some(1)).await.expect("replace user");
    assert_eq!(next(&mut rx).await, Heard::Change(Change::Iam));
    let key = AccessKeyRecord {
        access_key_id: "AKIAFED".into(),
        sealed_secret: vec![1],
        description: None,
        created_at: 1,
        enabled: true,
        scope: KeyScope::Full,
        owner: Some(KeyOwner {
            account: user.account.clone(),
            user: user.name.clone(),
        }),
    };
    a.put_access_key(&key).await.expect("put key");
    let key_changed = Heard::Change(Change::AccessKey {
        access_key_id: key.access_key_id.clone(),
    });
    assert_eq!(next(&mut rx).await, key_changed);
    assert!(a
        .delete_access_key(&key.access_key_id)
        .await
        .expect("delete key"));
    assert_eq!(next(&mut rx).await, key_changed);
    assert!(a
        .delete_iam(&user.account, user.kind, &user.name)
        .await
        .expect("delete user"));
    assert_eq!(next(&mut rx).await, Heard::Change(Change::Iam));
    // The failed update and create sent nothing: each next notice was the one after it.
    let none = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(none.is_err(), "no further notice: {none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_whose_connection_dies_says_so_and_comes_back() {
    let (opts, guard) = support::fresh_schema().await;
    let a = PostgresStore::open(&opts).await.expect("node a");
    let b = PostgresStore::open(&opts).await.expect("node b");
    let (tx, mut rx) = mpsc::unbounded_channel();
    b.watch_changes(Arc::new(Recorder(tx)));
    listening(&mut rx).await;

    // Every session of this schema ends, the listener's included (as in a database
    // restart or failover).
    let (admin, conn) = tokio_postgres::connect(&support::server_url(), tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(conn);
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&guard.schema],
        )
        .await
        .expect("terminate");
    assert_eq!(next(&mut rx).await, Heard::Lost);
    listening(&mut rx).await;

    // Writes made after it is back reach it. (The pool's own connections died too: the
    // first write may fail, as requests in flight during a failover do.)
    let s = secret("us-east-1", "after", 1_700_000_000_000);
    let mut created = a.create_secret(&s, None).await;
    if created.is_err() {
        created = a.create_secret(&s, None).await;
    }
    created.expect("create after the restart");
    assert_eq!(
        next(&mut rx).await,
        Heard::Change(Change::Secret {
            arn: s.arn.clone(),
            revision: 1
        })
    );
}
