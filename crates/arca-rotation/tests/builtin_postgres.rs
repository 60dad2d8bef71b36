//! The PostgreSQL built-in rotators against the real server on 127.0.0.1:5432: every
//! test makes its own randomly named roles and drops them at the end.

mod builtin_support;

use arca_rotation::builtin::{BuiltinKind, BuiltinOptions, BuiltinRotator};
use arca_rotation::Step;
use builtin_support::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn rotator(env: &Env, kind: BuiltinKind) -> BuiltinRotator {
    let mut o = BuiltinOptions::for_kind(kind);
    o.connect_timeout = Duration::from_secs(2);
    BuiltinRotator::new(kind, env.api.clone(), o)
}

async fn password_of(env: &Env, arn: &str, stage: &str) -> (String, String) {
    let j = env.json(arn, stage).await;
    (
        j["username"].as_str().expect("username").to_owned(),
        j["password"].as_str().expect("password").to_owned(),
    )
}

#[tokio::test]
async fn pg_single_user_rotates_twice_and_old_passwords_stop_working() {
    ensure_pg_password_auth().await;
    let admin = pg_admin().await;
    let env = Env::new().await;
    let user = random_name("arca_rt_single");
    let pw0 = random_password();
    pg_create_user(&admin, &user, &pw0).await;
    let arn = env
        .create(&user, &pg_secret(&user, &pw0, PG_PORT).to_string())
        .await;
    let rot = rotator(&env, BuiltinKind::PostgresSingleUser);

    // Each step twice: a re-invoked step is harmless.
    let r1 = Rotation::new(&arn);
    r1.run(&rot, 2).await.expect("first rotation");
    let (u1, pw1) = password_of(&env, &arn, "AWSCURRENT").await;
    assert_eq!(u1, user);
    assert_ne!(pw1, pw0);
    assert!(
        !pw1.contains([':', '/', '@', '"', '\'', '\\']),
        "excluded characters"
    );
    assert!(pg_login_ok(&user, &pw1).await, "new password works");
    assert!(!pg_login_ok(&user, &pw0).await, "old password fails");

    let r2 = Rotation::new(&arn);
    r2.run(&rot, 1).await.expect("second rotation");
    let (_, pw2) = password_of(&env, &arn, "AWSCURRENT").await;
    assert_ne!(pw2, pw1);
    assert!(pg_login_ok(&user, &pw2).await);
    assert!(!pg_login_ok(&user, &pw1).await);
    // Invoked again once finished: nothing to do.
    r2.run(&rot, 1).await.expect("re-run after finish");
    assert!(pg_login_ok(&user, &pw2).await);

    admin
        .batch_execute(&format!("DROP ROLE {user}"))
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn pg_single_user_set_secret_uses_previous_when_current_no_longer_logs_in() {
    // AWSCURRENT no longer matches the database (the templates' reason to try
    // AWSPREVIOUS): setSecret logs in with AWSPREVIOUS instead.
    ensure_pg_password_auth().await;
    let admin = pg_admin().await;
    let env = Env::new().await;
    let user = random_name("arca_rt_prev");
    let pw0 = random_password();
    pg_create_user(&admin, &user, &pw0).await;
    let arn = env
        .create(&user, &pg_secret(&user, &pw0, PG_PORT).to_string())
        .await;
    let rot = rotator(&env, BuiltinKind::PostgresSingleUser);
    Rotation::new(&arn).run(&rot, 1).await.expect("rotation");
    // Someone puts the old password back as AWSCURRENT (AWSPREVIOUS now holds the one the
    // database has): setSecret logs in with AWSPREVIOUS.
    let (_, pw1) = password_of(&env, &arn, "AWSCURRENT").await;
    env.api
        .put_secret_value(
            &arn,
            &uuid::Uuid::new_v4().to_string(),
            arca_types::secret::SecretString::new(pg_secret(&user, &pw0, PG_PORT).to_string()),
            vec!["AWSCURRENT".into()],
        )
        .await
        .expect("put stale current");
    Rotation::new(&arn)
        .run(&rot, 1)
        .await
        .expect("rotation through AWSPREVIOUS");
    let (_, pw2) = password_of(&env, &arn, "AWSCURRENT").await;
    assert!(pg_login_ok(&user, &pw2).await);
    assert!(!pg_login_ok(&user, &pw1).await);
    admin
        .batch_execute(&format!("DROP ROLE {user}"))
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn pg_alternating_users_toggle_clone_with_same_privileges_and_no_failed_login() {
    ensure_pg_password_auth().await;
    let admin = pg_admin().await;
    let env = Env::new().await;
    let user = random_name("arca_rt_alt");
    let clone = format!("{user}_clone");
    let master = random_name("arca_rt_master");
    let group = random_name("arca_rt_grp");
    let table = random_name("arca_rt_tbl");
    let (pw0, mpw) = (random_password(), random_password());
    pg_create_user(&admin, &user, &pw0).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {master} LOGIN CREATEROLE PASSWORD '{mpw}' IN ROLE {PG_GROUP};
             GRANT {user} TO {master} WITH ADMIN OPTION;
             CREATE ROLE {group} NOLOGIN;
             GRANT {group} TO {user};
             CREATE TABLE {table} (x int);
             GRANT SELECT, INSERT ON {table} TO {user};
             GRANT UPDATE ON {table} TO {group};"
        ))
        .await
        .expect("setup");
    let master_arn = env
        .create(&master, &pg_secret(&master, &mpw, PG_PORT).to_string())
        .await;
    let mut value = pg_secret(&user, &pw0, PG_PORT);
    value["masterarn"] = master_arn.clone().into();
    let arn = env.create(&user, &value.to_string()).await;
    let rot = rotator(&env, BuiltinKind::PostgresAlternatingUsers);

    // A client that logs in with whatever AWSCURRENT holds, over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (api, arn, stop, ok, failed) = (
            env.api.clone(),
            arn.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let v = api
                    .get_secret_value(&arn, None, Some("AWSCURRENT"))
                    .await
                    .expect("read AWSCURRENT");
                let j: serde_json::Value =
                    serde_json::from_str(v.secret_string.expect("string").expose()).expect("json");
                let (u, p) = (
                    j["username"].as_str().unwrap(),
                    j["password"].as_str().unwrap(),
                );
                if pg_login_ok(u, p).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(200)).await;
    Rotation::new(&arn)
        .run(&rot, 2)
        .await
        .expect("first rotation");
    let (u1, pw1) = password_of(&env, &arn, "AWSCURRENT").await;
    assert_eq!(u1, clone);
    assert!(pg_login_ok(&clone, &pw1).await, "the clone logs in");
    assert!(
        pg_login_ok(&user, &pw0).await,
        "the original user still logs in"
    );
    // Identical privileges: the clone is a member of the original role.
    for p in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
        let row = admin
            .query_one(
                "SELECT has_table_privilege($1, $3, $4), has_table_privilege($2, $3, $4)",
                &[&user, &clone, &table, &p],
            )
            .await
            .expect("privileges");
        let (a, b): (bool, bool) = (row.get(0), row.get(1));
        assert_eq!(a, b, "{p} differs between {user} and {clone}");
    }
    let member: bool = admin
        .query_one("SELECT pg_has_role($1, $2, 'USAGE')", &[&clone, &group])
        .await
        .expect("membership")
        .get(0);
    assert!(member, "the clone has the original's role memberships");
    let c = pg_connect(&clone, &pw1, PG_PORT)
        .await
        .expect("clone login");
    c.batch_execute(&format!(
        "INSERT INTO {table} VALUES (1); UPDATE {table} SET x = 2"
    ))
    .await
    .expect("the clone uses the original's privileges");
    drop(c);

    tokio::time::sleep(Duration::from_millis(300)).await;
    Rotation::new(&arn)
        .run(&rot, 1)
        .await
        .expect("second rotation");
    let (u2, pw2) = password_of(&env, &arn, "AWSCURRENT").await;
    assert_eq!(u2, user, "the second rotation toggles back");
    assert!(pg_login_ok(&user, &pw2).await);
    assert!(!pg_login_ok(&user, &pw0).await);
    assert!(pg_login_ok(&clone, &pw1).await, "AWSPREVIOUS still works");
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop.store(true, Ordering::Relaxed);
    client.await.expect("client task");
    assert!(ok.load(Ordering::Relaxed) > 0, "the client ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a login with AWSCURRENT failed"
    );

    admin
        .batch_execute(&format!(
            "DROP TABLE {table}; DROP ROLE {clone}; DROP ROLE {user}; DROP ROLE {group}; DROP ROLE {master};"
        ))
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn pg_confused_deputy_pending_other_host_or_user_is_refused() {
    ensure_pg_password_auth().await;
    let admin = pg_admin().await;
    let env = Env::new().await;
    let (user, victim) = (random_name("arca_rt_cd"), random_name("arca_rt_victim"));
    let (pw, vpw) = (random_password(), random_password());
    pg_create_user(&admin, &user, &pw).await;
    pg_create_user(&admin, &victim, &vpw).await;
    let arn = env
        .create(&user, &pg_secret(&user, &pw, PG_PORT).to_string())
        .await;
    let rot = rotator(&env, BuiltinKind::PostgresSingleUser);

    // A pending version naming another host.
    let r = Rotation::new(&arn);
    let mut evil = pg_secret(&user, "attacker-chosen", PG_PORT);
    evil["host"] = "db.attacker.example".into();
    env.api
        .put_secret_value(
            &arn,
            &r.token,
            arca_types::secret::SecretString::new(evil.to_string()),
            vec!["AWSPENDING".into()],
        )
        .await
        .expect("put pending");
    let e = r.step(&rot, Step::SetSecret).await.expect_err("other host");
    assert!(
        e.message.contains("different database host"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("attacker-chosen"), "{}", e.message);
    assert!(pg_login_ok(&user, &pw).await, "the database is untouched");

    // A pending version naming another user on the same server.
    let r = Rotation::new(&arn);
    env.api
        .put_secret_value(
            &arn,
            &r.token,
            arca_types::secret::SecretString::new(
                pg_secret(&victim, "attacker-chosen", PG_PORT).to_string(),
            ),
            vec!["AWSPENDING".into()],
        )
        .await
        .expect("put pending");
    let e = r.step(&rot, Step::SetSecret).await.expect_err("other user");
    assert!(e.message.contains("refusing"), "{}", e.message);
    assert!(pg_login_ok(&victim, &vpw).await, "the victim is untouched");
    assert!(!pg_login_ok(&victim, "attacker-chosen").await);
    assert_eq!(
        env.json(&arn, "AWSCURRENT").await["username"],
        user.as_str()
    );

    admin
        .batch_execute(&format!("DROP ROLE {user}; DROP ROLE {victim};"))
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn pg_database_down_fails_set_secret_and_a_later_retry_completes() {
    ensure_pg_password_auth().await;
    let admin = pg_admin().await;
    let env = Env::new().await;
    let user = random_name("arca_rt_down");
    let pw0 = random_password();
    pg_create_user(&admin, &user, &pw0).await;
    // The secret reaches the database through a proxy we can take down.
    let mut proxy = Proxy::start(PG_PORT).await;
    let arn = env
        .create(&user, &pg_secret(&user, &pw0, proxy.port).to_string())
        .await;
    let rot = rotator(&env, BuiltinKind::PostgresSingleUser);
    let first = env.version_of(&arn, "AWSCURRENT").await;

    proxy.stop().await;
    let r = Rotation::new(&arn);
    r.step(&rot, Step::CreateSecret)
        .await
        .expect("createSecret needs no database");
    let e = r
        .step(&rot, Step::SetSecret)
        .await
        .expect_err("database down");
    let (_, pending_pw) = {
        let v = env
            .api
            .get_secret_value(&arn, Some(&r.token), Some("AWSPENDING"))
            .await
            .expect("pending");
        let j: serde_json::Value =
            serde_json::from_str(v.secret_string.expect("string").expose()).expect("json");
        ((), j["password"].as_str().expect("pw").to_owned())
    };
    assert!(
        !e.message.contains(&pending_pw) && !e.message.contains(&pw0),
        "{}",
        e.message
    );
    assert_eq!(env.version_of(&arn, "AWSCURRENT").await, first);
    assert!(pg_login_ok(&user, &pw0).await, "AWSCURRENT still works");

    // The retry runs the whole rotation again with the same token.
    proxy.restart().await;
    r.run(&rot, 1).await.expect("retry");
    let (_, pw1) = password_of(&env, &arn, "AWSCURRENT").await;
    assert_eq!(pw1, pending_pw, "the retry kept the pending version");
    assert!(pg_login_ok(&user, &pw1).await);
    assert!(!pg_login_ok(&user, &pw0).await);

    admin
        .batch_execute(&format!("DROP ROLE {user}"))
        .await
        .expect("cleanup");
}
