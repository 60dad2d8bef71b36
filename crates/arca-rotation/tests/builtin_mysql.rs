//! The MySQL/MariaDB built-in rotators against the real server on 127.0.0.1:3306: every
//! test makes its own randomly named accounts and drops them at the end.

mod builtin_support;

use arca_rotation::builtin::{BuiltinKind, BuiltinOptions, BuiltinRotator};
use arca_rotation::Step;
use builtin_support::*;
use mysql_async::prelude::Queryable;
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

async fn admin_sql(sql: &str) {
    let mut c = my_admin().await;
    c.query_drop(sql).await.expect(sql);
    let _ = c.disconnect().await;
}

async fn create_user(user: &str, pw: &str) {
    admin_sql(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}'")).await;
    // The secrets name database `test`: the user must be allowed to use it.
    admin_sql(&format!("GRANT SELECT ON test.* TO '{user}'@'%'")).await;
}

/// SHOW GRANTS with the grantee and the password hash taken out.
async fn grants(user: &str) -> Vec<String> {
    let mut c = my_admin().await;
    let rows: Vec<String> = c
        .query(format!("SHOW GRANTS FOR '{user}'@'%'"))
        .await
        .expect("show grants");
    let _ = c.disconnect().await;
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|g| {
            let g = g.replace(&format!("`{user}`@`%`"), "<grantee>");
            match g.find(" IDENTIFIED BY PASSWORD") {
                Some(i) => g[..i].to_owned(),
                None => g,
            }
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn mysql_single_user_rotates_twice_and_old_passwords_stop_working() {
    let env = Env::new().await;
    let user = random_name("arca_rt_s");
    let pw0 = random_password();
    create_user(&user, &pw0).await;
    let arn = env
        .create(&user, &my_secret(&user, &pw0, MY_PORT).to_string())
        .await;
    let rot = rotator(&env, BuiltinKind::MysqlSingleUser);

    let r1 = Rotation::new(&arn);
    r1.run(&rot, 2).await.expect("first rotation");
    let (u1, pw1) = password_of(&env, &arn, "AWSCURRENT").await;
    assert_eq!(u1, user);
    assert_ne!(pw1, pw0);
    assert!(
        !pw1.contains([':', '/', '@', '"', '\'', '\\']),
        "excluded characters"
    );
    assert!(my_login_ok(&user, &pw1).await, "new password works");
    assert!(!my_login_ok(&user, &pw0).await, "old password fails");

    let r2 = Rotation::new(&arn);
    r2.run(&rot, 1).await.expect("second rotation");
    let (_, pw2) = password_of(&env, &arn, "AWSCURRENT").await;
    assert!(my_login_ok(&user, &pw2).await);
    assert!(!my_login_ok(&user, &pw1).await);
    r2.run(&rot, 1).await.expect("re-run after finish");
    assert!(my_login_ok(&user, &pw2).await);

    admin_sql(&format!("DROP USER '{user}'@'%'")).await;
}

#[tokio::test]
async fn mysql_alternating_users_toggle_clone_with_same_grants_and_no_failed_login() {
    let env = Env::new().await;
    let user = random_name("arca_rt_a");
    let clone = format!("{user}_clone");
    let master = random_name("arca_rt_m");
    let table = random_name("arca_rt_t");
    let (pw0, mpw) = (random_password(), random_password());
    create_user(&user, &pw0).await;
    create_user(&master, &mpw).await;
    admin_sql(&format!("CREATE TABLE test.{table} (x int)")).await;
    admin_sql(&format!(
        "GRANT SELECT, INSERT ON test.{table} TO '{user}'@'%'"
    ))
    .await;
    admin_sql(&format!(
        "GRANT UPDATE ON test.* TO '{user}'@'%' WITH GRANT OPTION"
    ))
    .await;
    admin_sql(&format!(
        "GRANT ALL PRIVILEGES ON *.* TO '{master}'@'%' WITH GRANT OPTION"
    ))
    .await;
    let master_arn = env
        .create(&master, &my_secret(&master, &mpw, MY_PORT).to_string())
        .await;
    let mut value = my_secret(&user, &pw0, MY_PORT);
    value["masterarn"] = master_arn.clone().into();
    let arn = env.create(&user, &value.to_string()).await;
    let rot = rotator(&env, BuiltinKind::MysqlAlternatingUsers);

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
                if my_login_ok(u, p).await {
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
    assert!(my_login_ok(&clone, &pw1).await, "the clone logs in");
    assert!(
        my_login_ok(&user, &pw0).await,
        "the original user still logs in"
    );
    assert_eq!(
        grants(&user).await,
        grants(&clone).await,
        "identical grants"
    );
    let mut c = my_connect(&clone, &pw1, MY_PORT)
        .await
        .expect("clone login");
    c.query_drop(format!("INSERT INTO test.{table} VALUES (1)"))
        .await
        .expect("the clone uses the original's grants");
    let _ = c.disconnect().await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    Rotation::new(&arn)
        .run(&rot, 1)
        .await
        .expect("second rotation");
    let (u2, pw2) = password_of(&env, &arn, "AWSCURRENT").await;
    assert_eq!(u2, user, "the second rotation toggles back");
    assert!(my_login_ok(&user, &pw2).await);
    assert!(!my_login_ok(&user, &pw0).await);
    assert!(my_login_ok(&clone, &pw1).await, "AWSPREVIOUS still works");
    assert_eq!(grants(&user).await, grants(&clone).await);
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop.store(true, Ordering::Relaxed);
    client.await.expect("client task");
    assert!(ok.load(Ordering::Relaxed) > 0, "the client ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a login with AWSCURRENT failed"
    );

    admin_sql(&format!(
        "DROP USER '{user}'@'%', '{clone}'@'%', '{master}'@'%'"
    ))
    .await;
    admin_sql(&format!("DROP TABLE test.{table}")).await;
}

#[tokio::test]
async fn mysql_confused_deputy_pending_other_host_or_user_is_refused() {
    let env = Env::new().await;
    let (user, victim) = (random_name("arca_rt_cd"), random_name("arca_rt_v"));
    let (pw, vpw) = (random_password(), random_password());
    create_user(&user, &pw).await;
    create_user(&victim, &vpw).await;
    let arn = env
        .create(&user, &my_secret(&user, &pw, MY_PORT).to_string())
        .await;
    let rot = rotator(&env, BuiltinKind::MysqlSingleUser);

    let r = Rotation::new(&arn);
    let mut evil = my_secret(&user, "attacker-chosen", MY_PORT);
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
    assert!(my_login_ok(&user, &pw).await, "the database is untouched");

    let r = Rotation::new(&arn);
    env.api
        .put_secret_value(
            &arn,
            &r.token,
            arca_types::secret::SecretString::new(
                my_secret(&victim, "attacker-chosen", MY_PORT).to_string(),
            ),
            vec!["AWSPENDING".into()],
        )
        .await
        .expect("put pending");
    let e = r.step(&rot, Step::SetSecret).await.expect_err("other user");
    assert!(e.message.contains("refusing"), "{}", e.message);
    assert!(my_login_ok(&victim, &vpw).await, "the victim is untouched");
    assert!(!my_login_ok(&victim, "attacker-chosen").await);

    admin_sql(&format!("DROP USER '{user}'@'%', '{victim}'@'%'")).await;
}

#[tokio::test]
async fn mysql_database_down_fails_set_secret_and_a_later_retry_completes() {
    let env = Env::new().await;
    let user = random_name("arca_rt_d");
    let pw0 = random_password();
    create_user(&user, &pw0).await;
    let mut proxy = Proxy::start(MY_PORT).await;
    let arn = env
        .create(&user, &my_secret(&user, &pw0, proxy.port).to_string())
        .await;
    let rot = rotator(&env, BuiltinKind::MysqlSingleUser);
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
    assert!(!e.message.contains(&pw0), "{}", e.message);
    assert_eq!(env.version_of(&arn, "AWSCURRENT").await, first);
    assert!(my_login_ok(&user, &pw0).await, "AWSCURRENT still works");

    proxy.restart().await;
    r.run(&rot, 1).await.expect("retry");
    let (_, pw1) = password_of(&env, &arn, "AWSCURRENT").await;
    assert!(my_login_ok(&user, &pw1).await);
    assert!(!my_login_ok(&user, &pw0).await);

    admin_sql(&format!("DROP USER '{user}'@'%'")).await;
}
