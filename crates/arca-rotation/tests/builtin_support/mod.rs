//! Shared by the built-in rotator tests: a real arca-core in a temp dir, a driver that
//! invokes the four steps as the scheduler will, database admin connections, random
//! names, and a TCP proxy that can be taken down to simulate an unreachable database.
//!
//! PostgreSQL on the development and CI machines trusts every 127.0.0.1 login, so a
//! password could never fail and single-user rotation could not be told from a no-op.
//! `ensure_pg_password_auth` puts one line at the top of pg_hba.conf (members of the
//! role `arca_rotation_test` log in over 127.0.0.1 with SCRAM) and reloads; every role
//! these tests create is a member. Nothing else on the server is affected.
#![allow(dead_code)]

use arca_core::{Arca, KeyService, RequestCtx};
use arca_crypto::RootKey;
use arca_rotation::{InvokeError, Invoker, RotationEvent, SecretsApi, Step};
use arca_store_sqlite::SqliteStore;
use arca_types::secret::SecretString;
use arca_types::time::SystemClock;
use arca_types::wire::CreateSecretRequest;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub const REGION: &str = "us-east-1";
pub const PG_PORT: u16 = 5432;
pub const MY_PORT: u16 = 3306;
pub const PG_GROUP: &str = "arca_rotation_test";

pub struct Env {
    pub arca: Arc<Arca>,
    pub api: Arc<dyn SecretsApi>,
    _dir: tempfile::TempDir,
}

impl Env {
    pub async fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn arca_store::Store> =
            Arc::new(SqliteStore::open(&dir.path().join("arca.db")).expect("open store"));
        let keys = KeyService::load(
            RootKey::generate_ephemeral(),
            store.clone(),
            "123456789012".into(),
        )
        .await
        .expect("keys");
        let arca = Arc::new(Arca::new(
            store,
            Arc::new(keys),
            Arc::new(SystemClock),
            "123456789012".into(),
        ));
        let api: Arc<dyn SecretsApi> = Arc::new(arca_rotation::CoreSecretsApi::new(arca.clone()));
        Env {
            arca,
            api,
            _dir: dir,
        }
    }

    /// Creates a secret; returns its ARN.
    pub async fn create(&self, name: &str, value: &str) -> String {
        let r = self
            .arca
            .create_secret(
                &RequestCtx::new(REGION),
                CreateSecretRequest {
                    name: Some(name.into()),
                    client_request_token: Some(uuid::Uuid::new_v4().to_string()),
                    secret_string: Some(SecretString::new(value.into())),
                    ..Default::default()
                },
            )
            .await
            .expect("create secret");
        r.arn
    }

    pub async fn value(&self, arn: &str, stage: &str) -> String {
        self.api
            .get_secret_value(arn, None, Some(stage))
            .await
            .expect("get value")
            .secret_string
            .expect("string")
            .expose()
            .to_owned()
    }

    pub async fn json(&self, arn: &str, stage: &str) -> serde_json::Value {
        serde_json::from_str(&self.value(arn, stage).await).expect("json")
    }

    pub async fn version_of(&self, arn: &str, stage: &str) -> String {
        self.api
            .get_secret_value(arn, None, Some(stage))
            .await
            .expect("get value")
            .version_id
    }
}

/// One rotation's identifiers.
#[derive(Clone)]
pub struct Rotation {
    pub arn: String,
    pub token: String,
    pub rotation_token: String,
}

impl Rotation {
    pub fn new(arn: &str) -> Rotation {
        Rotation {
            arn: arn.to_owned(),
            token: uuid::Uuid::new_v4().to_string(),
            rotation_token: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn event(&self, step: Step) -> RotationEvent {
        RotationEvent {
            step,
            secret_id: self.arn.clone(),
            client_request_token: self.token.clone(),
            rotation_token: SecretString::new(self.rotation_token.clone()),
        }
    }

    pub async fn step(&self, inv: &dyn Invoker, step: Step) -> Result<(), InvokeError> {
        inv.invoke(&self.event(step)).await
    }

    /// All four steps in order, each invoked `times` times in a row (2: idempotence).
    pub async fn run(&self, inv: &dyn Invoker, times: usize) -> Result<(), (Step, InvokeError)> {
        for step in Step::ALL {
            for _ in 0..times {
                self.step(inv, step).await.map_err(|e| (step, e))?;
            }
        }
        Ok(())
    }
}

/// A fresh, lowercase, identifier-safe name.
pub fn random_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

pub fn random_password() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn pg_secret(user: &str, password: &str, port: u16) -> serde_json::Value {
    serde_json::json!({
        "engine": "postgres", "host": "127.0.0.1", "port": port,
        "username": user, "password": password, "dbname": "test"
    })
}

pub fn my_secret(user: &str, password: &str, port: u16) -> serde_json::Value {
    serde_json::json!({
        "engine": "mysql", "host": "127.0.0.1", "port": port,
        "username": user, "password": password, "dbname": "test"
    })
}

// ---------- PostgreSQL ----------

/// The superuser over trust auth, in database `test`.
pub async fn pg_admin() -> tokio_postgres::Client {
    pg_connect("postgres", "", PG_PORT)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (see scripts/test)")
}

pub async fn pg_connect(
    user: &str,
    password: &str,
    port: u16,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(port)
        .user(user)
        .dbname("test")
        .connect_timeout(Duration::from_secs(5));
    if !password.is_empty() {
        cfg.password(password);
    }
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Logs in and runs a query: does this password work?
pub async fn pg_login_ok(user: &str, password: &str) -> bool {
    match pg_connect(user, password, PG_PORT).await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}

/// Makes PostgreSQL check passwords for members of `arca_rotation_test` over 127.0.0.1
/// (see the module comment). Idempotent and safe across concurrent test processes.
pub async fn ensure_pg_password_auth() {
    let c = pg_admin().await;
    c.batch_execute("SELECT pg_advisory_lock(7319420)")
        .await
        .expect("lock");
    c.batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE {PG_GROUP} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ))
    .await
    .expect("group role");
    let present: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_hba_file_rules r WHERE $1 = ANY(r.user_name) \
             AND r.auth_method = 'scram-sha-256' AND r.line_number < COALESCE((SELECT min(line_number) \
             FROM pg_hba_file_rules WHERE type = 'host' AND auth_method = 'trust'), 2147483647))",
            &[&format!("+{PG_GROUP}")],
        )
        .await
        .expect("read pg_hba_file_rules")
        .get(0);
    if !present {
        let path: String = c
            .query_one("SHOW hba_file", &[])
            .await
            .expect("hba_file")
            .get(0);
        let old = std::fs::read_to_string(&path).expect("read pg_hba.conf");
        let new = format!(
            "# Arca rotation tests (crates/arca-rotation/tests): members of {PG_GROUP} need a password.\n\
             host all +{PG_GROUP} 127.0.0.1/32 scram-sha-256\n{old}"
        );
        std::fs::write(&path, new).unwrap_or_else(|e| {
            panic!("cannot add the password rule to {path} ({e}); add `host all +{PG_GROUP} 127.0.0.1/32 scram-sha-256` at its top and reload")
        });
        c.batch_execute("SELECT pg_reload_conf()")
            .await
            .expect("reload");
    }
    // Wait until the server enforces it (a reload is asynchronous).
    let probe = random_name("arca_rt_probe");
    c.batch_execute(&format!(
        "CREATE ROLE {probe} LOGIN PASSWORD 'right' IN ROLE {PG_GROUP}"
    ))
    .await
    .expect("probe role");
    let mut enforced = false;
    for _ in 0..100 {
        if !pg_login_ok(&probe, "wrong").await {
            enforced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.batch_execute(&format!("DROP ROLE {probe}"))
        .await
        .expect("drop probe");
    c.batch_execute("SELECT pg_advisory_unlock(7319420)")
        .await
        .expect("unlock");
    assert!(
        enforced,
        "PostgreSQL does not check passwords for {PG_GROUP} members"
    );
}

/// Creates a login role with `password`, a member of the test group.
pub async fn pg_create_user(admin: &tokio_postgres::Client, user: &str, password: &str) {
    admin
        .batch_execute(&format!(
            "CREATE ROLE {user} LOGIN PASSWORD '{password}' IN ROLE {PG_GROUP}"
        ))
        .await
        .expect("create role");
}

// ---------- MySQL / MariaDB ----------

pub async fn my_connect(
    user: &str,
    password: &str,
    port: u16,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(if password.is_empty() {
            None
        } else {
            Some(password)
        })
        .db_name(Some("test"))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await
}

pub async fn my_admin() -> mysql_async::Conn {
    my_connect("root", "", MY_PORT)
        .await
        .expect("MariaDB on 127.0.0.1:3306 (see scripts/test)")
}

pub async fn my_login_ok(user: &str, password: &str) -> bool {
    use mysql_async::prelude::Queryable;
    match my_connect(user, password, MY_PORT).await {
        Ok(mut c) => {
            let ok = c.query_drop("SELECT 1").await.is_ok();
            let _ = c.disconnect().await;
            ok
        }
        Err(_) => false,
    }
}

// ---------- a TCP proxy that can be taken down ----------

/// Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream` until stopped; can be restarted on
/// the same port.
pub struct Proxy {
    pub port: u16,
    upstream: u16,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut p = Proxy {
            port,
            upstream,
            task: None,
        };
        p.serve(listener);
        p
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut conns = JoinSet::new();
            while let Ok((mut down, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        }));
    }

    /// Closes the port and every open connection.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy port");
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
