//! PostgreSQL for the built-in rotators: log in with a secret's credentials, set a user's
//! own password, and create or update the `_clone` user as the master user.
//!
//! Security notes: utility statements (ALTER/CREATE ROLE, GRANT) take no bind parameters,
//! so each is built by the server with `format('%I', ...)` (quote_ident) and `%L`
//! (quote_literal) from bound values, then run as is: no input is ever spliced into SQL
//! on this side. The password is sent as a SCRAM-SHA-256 verifier computed here, so the
//! plaintext never reaches the server, its statement log or `pg_stat_statements`. Errors
//! are summarized as SQLSTATE codes: a server message may quote the statement.
//! The connection is plaintext (NoTls); TLS to the database is a follow-up.

use super::shared::DbSecret;
use std::time::Duration;
use tokio_postgres::{Client, GenericClient, NoTls};
use zeroize::Zeroizing;

/// A failed database call, summarized without server text.
pub(crate) fn summarize(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let what = match code {
            "28P01" => "invalid password",
            "28000" => "invalid authorization specification",
            "3D000" => "database does not exist",
            "42501" => "insufficient privilege",
            "42704" => "undefined object",
            "42710" => "duplicate object",
            "0LP01" => "invalid grant operation",
            "53300" => "too many connections",
            "57P03" => "server not accepting connections",
            _ => "database error",
        };
        return format!("{what} (SQLSTATE {code})");
    }
    if e.is_closed() {
        return "connection closed".into();
    }
    // Client-side errors (connect refused, timeout, protocol) carry no server text.
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

/// Logs in with `secret`'s credentials. The connection task ends when the client drops.
pub(crate) async fn connect(secret: &DbSecret, timeout: Duration) -> Result<Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&secret.host)
        .port(secret.port)
        .user(&secret.username)
        .password(secret.password())
        .dbname(secret.dbname.as_deref().unwrap_or("postgres"))
        .application_name("arca-rotation")
        .connect_timeout(timeout);
    let fut = cfg.connect(NoTls);
    let (client, conn) = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(summarize(&e)),
        Err(_) => return Err("connect timed out".into()),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %summarize(&e), "rotation database connection ended");
        }
    });
    Ok(client)
}

/// The statement a bound `format()` call builds on the server.
async fn server_format<C: GenericClient + Sync>(
    client: &C,
    template: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Zeroizing<String>, String> {
    let row = client
        .query_one(template, args)
        .await
        .map_err(|e| summarize(&e))?;
    let s: String = row.try_get(0).map_err(|e| summarize(&e))?;
    Ok(Zeroizing::new(s))
}

fn verifier(password: &str) -> Zeroizing<String> {
    Zeroizing::new(postgres_protocol::password::scram_sha_256(
        password.as_bytes(),
    ))
}

/// Single user: the logged-in user sets a new password on `username` (itself).
pub(crate) async fn set_password(
    client: &Client,
    username: &str,
    password: &str,
) -> Result<(), String> {
    let v = verifier(password);
    let stmt = server_format(
        client,
        "SELECT format('ALTER USER %I WITH PASSWORD %L', $1::text, $2::text)",
        &[&username, &v.as_str()],
    )
    .await?;
    client.batch_execute(&stmt).await.map_err(|e| summarize(&e))
}

/// Alternating users, as the master user: creates `pending` if missing, as a member of
/// `current` (so it holds the same privileges, as AWS's template does), or else sets its
/// password. Creation and grant are one transaction: a crash between them cannot leave
/// a clone that logs in without the privileges.
pub(crate) async fn upsert_clone(
    client: &mut Client,
    current: &str,
    pending: &str,
    password: &str,
) -> Result<(), String> {
    let v = verifier(password);
    let tx = client.transaction().await.map_err(|e| summarize(&e))?;
    let exists = tx
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&pending])
        .await
        .map_err(|e| summarize(&e))?
        .is_some();
    let mut stmts = Vec::new();
    if exists {
        stmts.push(
            server_format(
                &tx,
                "SELECT format('ALTER ROLE %I WITH PASSWORD %L', $1::text, $2::text)",
                &[&pending, &v.as_str()],
            )
            .await?,
        );
    } else {
        stmts.push(
            server_format(
                &tx,
                "SELECT format('CREATE ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)",
                &[&pending, &v.as_str()],
            )
            .await?,
        );
        stmts.push(
            server_format(
                &tx,
                "SELECT format('GRANT %I TO %I', $1::text, $2::text)",
                &[&current, &pending],
            )
            .await?,
        );
    }
    for s in &stmts {
        tx.batch_execute(s).await.map_err(|e| summarize(&e))?;
    }
    tx.commit().await.map_err(|e| summarize(&e))
}

/// testSecret's check: a query runs with the new credentials.
pub(crate) async fn check(client: &Client) -> Result<(), String> {
    client
        .simple_query("SELECT NOW()")
        .await
        .map(|_| ())
        .map_err(|e| summarize(&e))
}
