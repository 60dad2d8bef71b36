//! Schema migrations for the PostgreSQL backend: SQL files under `migrations/`, embedded
//! at build time and applied in order, each in its own transaction, under an advisory
//! lock so that nodes starting together migrate once. Applied versions are rows of
//! `arca_schema`.

use arca_store::{Result, StoreError};
use deadpool_postgres::Client;

use crate::error::pg_store;

/// (version, SQL). Append only: never edit a migration that has shipped.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/001_initial.sql")),
    (2, include_str!("../migrations/002_leases_and_changes.sql")),
    (3, include_str!("../migrations/003_notify_plpgsql.sql")),
    (4, include_str!("../migrations/004_hot_label_moves.sql")),
    (5, include_str!("../migrations/005_changed_order_apart.sql")),
    (6, include_str!("../migrations/006_iam.sql")),
    (7, include_str!("../migrations/007_key_policies.sql")),
];

/// The newest schema this build knows.
pub(crate) fn newest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Advisory lock ids (second key; the first is the schema's name hashed, so deployments
/// in different schemas of one database do not wait on each other).
pub(crate) const MIGRATE_LOCK: i32 = 1;
pub(crate) const SEQUENCE_LOCK: i32 = 2;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS arca_schema (
    version    int         PRIMARY KEY CHECK (version > 0),
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// The schema version of the database (0 if Arca never ran on it).
pub(crate) async fn current(client: &Client) -> Result<i32> {
    let exists: bool = client
        .query_one("SELECT to_regclass('arca_schema') IS NOT NULL", &[])
        .await
        .map_err(pg_store("look for the schema version"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM arca_schema", &[])
        .await
        .map_err(pg_store("read the schema version"))?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// Refuses a database whose schema is newer than this build's: an older binary must not
/// write a newer schema (a node left behind in a rolling upgrade stops instead).
fn check_not_newer(current: i32) -> Result<()> {
    if current > newest() {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this build supports ({}); \
             upgrade this node",
            newest()
        )));
    }
    Ok(())
}

/// Brings the schema up to this build's; returns the version before and after.
pub(crate) async fn migrate(client: &mut Client) -> Result<(i32, i32)> {
    let before = current(client).await?;
    check_not_newer(before)?;
    if before == newest() {
        return Ok((before, before));
    }
    let mut at = before;
    for &(version, sql) in MIGRATIONS {
        let tx = client
            .transaction()
            .await
            .map_err(pg_store("begin migration"))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1)",
            &[&MIGRATE_LOCK],
        )
        .await
        .map_err(pg_store("lock for migration"))?;
        tx.batch_execute(VERSION_TABLE)
            .await
            .map_err(pg_store("create the schema version table"))?;
        // Read again under the lock: another node may have migrated meanwhile.
        let applied: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM arca_schema WHERE version = $1)",
                &[&version],
            )
            .await
            .map_err(pg_store("read the schema version"))?
            .get(0);
        if !applied {
            tx.batch_execute(sql)
                .await
                .map_err(pg_store("apply migration"))?;
            tx.execute("INSERT INTO arca_schema (version) VALUES ($1)", &[&version])
                .await
                .map_err(pg_store("record the schema version"))?;
        }
        tx.commit().await.map_err(pg_store("commit migration"))?;
        at = version;
    }
    Ok((before, at))
}

/// Refuses to serve a database on another schema version than this build's.
pub(crate) async fn check(client: &Client) -> Result<()> {
    let v = current(client).await?;
    check_not_newer(v)?;
    if v < newest() {
        return Err(StoreError::Backend(format!(
            "database schema version {v} is older than this build's ({}); run `arca migrate`",
            newest()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
    }
}
