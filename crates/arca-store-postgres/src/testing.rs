//! For tests (the `testing` feature): a fresh, empty PostgreSQL store per test, in a
//! schema of its own on the test server, dropped when the guard goes. Used by this
//! crate's tests and by other crates' tests that run on PostgreSQL.

use crate::{PgOptions, PostgresStore};

/// The test server: `ARCA_TEST_POSTGRES`, else the local one `.ci/run` starts.
pub fn server_url() -> String {
    std::env::var("ARCA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// Drops its schema when dropped (the store's sessions carry the schema's name as their
/// application name, so they can be found and ended first).
pub struct SchemaGuard {
    pub schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // Its own thread and runtime: the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    // The guard drops before the store: end the store's sessions first, or
                    // the DROP would wait on a transaction this thread keeps from finishing.
                    let _ = client
                        .execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE application_name = $1 AND pid <> pg_backend_pid()",
                            &[&schema],
                        )
                        .await;
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Creates an empty schema and returns options whose connections use it.
pub async fn fresh_schema() -> (PgOptions, SchemaGuard) {
    let schema = format!("arca_test_{}", uuid::Uuid::new_v4().simple());
    let (client, conn) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL (is it running? see README)");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let url = server_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut opts = PgOptions::new(format!(
        "{url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
    ));
    opts.pool_size = 8;
    (opts, SchemaGuard { schema })
}

pub async fn fresh_store() -> (PostgresStore, SchemaGuard) {
    let (opts, guard) = fresh_schema().await;
    let store = PostgresStore::open(&opts).await.expect("open store");
    (store, guard)
}
