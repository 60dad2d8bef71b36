//! MySQL and MariaDB for the built-in rotators: log in with a secret's credentials, set
//! the logged-in user's own password, and create or update the `_clone` user as the
//! master user, replaying `SHOW GRANTS` of the original.
//!
//! Security notes: neither server takes `?` parameters in account management statements
//! (ALTER USER / CREATE USER / SET PASSWORD / SHOW GRANTS reject them), so every string
//! literal there is quoted by the server's own `QUOTE()` from a bound parameter, with the
//! session's `sql_mode` cleared of NO_BACKSLASH_ESCAPES first (QUOTE's backslash escapes
//! would not be escapes under it) and a utf8mb4 connection. Identifiers that go into
//! replayed GRANT statements are backtick-quoted with backticks doubled, the rule both
//! servers use. A new clone is created locked and unlocked only once its grants are in
//! place, so a crash in between never leaves a clone that logs in without privileges.
//! Errors are summarized as server error codes: a server message may quote the statement.
//! The connection is plaintext; TLS to the database is a follow-up.

use super::shared::DbSecret;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use std::time::Duration;
use zeroize::Zeroizing;

pub(crate) fn summarize(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => {
            let what = match s.code {
                1045 => "access denied",
                1044 => "access denied to database",
                1049 => "unknown database",
                1227 | 1142 => "insufficient privilege",
                1396 => "account operation failed",
                1064 => "syntax error",
                1040 => "too many connections",
                4151 => "account is locked",
                3118 => "account is locked",
                _ => "server error",
            };
            format!("{what} (error {}, SQLSTATE {})", s.code, s.state)
        }
        mysql_async::Error::Io(io) => format!("i/o error: {io}"),
        mysql_async::Error::Driver(_) => "driver error".into(),
        mysql_async::Error::Url(_) => "invalid connection options".into(),
        mysql_async::Error::Other(_) => "client error".into(),
    }
}

/// Logs in with `secret`'s credentials over TCP (never switching to a local socket: the
/// secret names a host and port, and that is the server to talk to).
pub(crate) async fn connect(secret: &DbSecret, timeout: Duration) -> Result<Conn, String> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(secret.host.clone())
        .tcp_port(secret.port)
        .user(Some(secret.username.clone()))
        .pass(Some(secret.password().to_owned()))
        .db_name(secret.dbname.clone())
        .prefer_socket(false)
        .stmt_cache_size(0);
    match tokio::time::timeout(timeout, Conn::new(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(summarize(&e)),
        Err(_) => Err("connect timed out".into()),
    }
}

pub(crate) async fn close(conn: Conn) {
    if let Err(e) = conn.disconnect().await {
        tracing::debug!(error = %summarize(&e), "closing a rotation database connection");
    }
}

/// Makes `QUOTE()`'s output a valid literal in this session.
async fn prepare_session(conn: &mut Conn) -> Result<(), String> {
    conn.query_drop(
        "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))",
    )
    .await
    .map_err(|e| summarize(&e))?;
    conn.query_drop("SET NAMES utf8mb4")
        .await
        .map_err(|e| summarize(&e))
}

/// Server-quoted string literals for `values`, in order.
async fn quote(conn: &mut Conn, values: &[&str]) -> Result<Vec<Zeroizing<String>>, String> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let q: Option<String> = conn
            .exec_first("SELECT QUOTE(?)", (v.to_string(),))
            .await
            .map_err(|e| summarize(&e))?;
        out.push(Zeroizing::new(
            q.ok_or_else(|| "QUOTE() returned no row".to_owned())?,
        ));
    }
    Ok(out)
}

/// Single user: the logged-in user sets its own new password. `SET PASSWORD` needs no
/// privilege for one's own account (MariaDB's ALTER USER would need CREATE USER); MySQL 8
/// takes the plaintext literal, MariaDB and MySQL 5.x hash it with PASSWORD().
pub(crate) async fn set_own_password(conn: &mut Conn, password: &str) -> Result<(), String> {
    prepare_session(conn).await?;
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| summarize(&e))?;
    let version = version.unwrap_or_default();
    let hashed = version.contains("MariaDB") || version.starts_with("5.");
    let q = quote(conn, &[password]).await?;
    let stmt = Zeroizing::new(if hashed {
        format!("SET PASSWORD = PASSWORD({})", q[0].as_str())
    } else {
        format!("SET PASSWORD = {}", q[0].as_str())
    });
    conn.query_drop(stmt.as_str())
        .await
        .map_err(|e| summarize(&e))
}

/// A backtick-quoted identifier (backticks doubled).
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// The host part of `user`'s account: `%` when it has one, else its only one.
async fn account_host(conn: &mut Conn, user: &str) -> Result<String, String> {
    let hosts: Vec<String> = conn
        .exec("SELECT Host FROM mysql.user WHERE User = ?", (user,))
        .await
        .map_err(|e| summarize(&e))?;
    if hosts.iter().any(|h| h == "%") {
        return Ok("%".into());
    }
    match hosts.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("the current user has no account on the server".into()),
        _ => Err(
            "the current user has accounts for several hosts; cannot tell which to clone".into(),
        ),
    }
}

/// Rewrites one line of `SHOW GRANTS FOR current` so it grants the same to `pending`:
/// the grantee after ` TO ` (or ` FOR ` in MariaDB's `SET DEFAULT ROLE`) is replaced,
/// `IDENTIFIED BY PASSWORD ...` (MariaDB prints the hash there) is dropped, and
/// `REQUIRE ...` / `WITH ...` options are kept. `None` for lines that are not grants.
pub(crate) fn rewrite_grant(
    line: &str,
    current: &str,
    host: &str,
    pending: &str,
) -> Option<String> {
    let forms = [
        format!("{}@{}", ident(current), ident(host)),
        format!(
            "'{}'@'{}'",
            current.replace('\'', "\\'"),
            host.replace('\'', "\\'")
        ),
    ];
    let (keyword, prefix_ok) = if line.starts_with("GRANT ") {
        (" TO ", true)
    } else if line.starts_with("SET DEFAULT ROLE ") {
        (" FOR ", true)
    } else {
        (" TO ", false)
    };
    if !prefix_ok {
        return None;
    }
    let (pos, form) = forms
        .iter()
        .filter_map(|f| line.rfind(&format!("{keyword}{f}")).map(|p| (p, f)))
        .max_by_key(|(p, _)| *p)?;
    let head = &line[..pos];
    let rest = &line[pos + keyword.len() + form.len()..];
    let keep = [" REQUIRE ", " WITH "]
        .iter()
        .filter_map(|k| rest.find(k))
        .min()
        .map(|i| &rest[i..])
        .unwrap_or("");
    Some(format!(
        "{head}{keyword}{}@{}{keep}",
        ident(pending),
        ident(host)
    ))
}

/// Alternating users, as the master user: makes `pending` exist with `current`'s grants
/// and `password`.
pub(crate) async fn upsert_clone(
    conn: &mut Conn,
    current: &str,
    pending: &str,
    password: &str,
) -> Result<(), String> {
    prepare_session(conn).await?;
    let host = account_host(conn, current).await?;
    let exists: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?",
            (pending, host.as_str()),
        )
        .await
        .map_err(|e| summarize(&e))?;
    let q = quote(conn, &[pending, &host, password, current]).await?;
    let (qp, qh, qpw, qc) = (&q[0], &q[1], &q[2], &q[3]);
    if exists.is_none() {
        let stmt = Zeroizing::new(format!(
            "CREATE USER {}@{} IDENTIFIED BY {} ACCOUNT LOCK",
            qp.as_str(),
            qh.as_str(),
            qpw.as_str()
        ));
        conn.query_drop(stmt.as_str())
            .await
            .map_err(|e| format!("creating the clone user: {}", summarize(&e)))?;
    }
    let grants: Vec<String> = conn
        .query(format!("SHOW GRANTS FOR {}@{}", qc.as_str(), qh.as_str()))
        .await
        .map_err(|e| format!("reading the current user's grants: {}", summarize(&e)))?;
    for line in &grants {
        match rewrite_grant(line, current, &host, pending) {
            Some(g) => conn
                .query_drop(g)
                .await
                .map_err(|e| format!("copying a grant: {}", summarize(&e)))?,
            None => tracing::warn!("skipping a SHOW GRANTS line that is not a grant"),
        }
    }
    let stmt = Zeroizing::new(format!(
        "ALTER USER {}@{} IDENTIFIED BY {} ACCOUNT UNLOCK",
        qp.as_str(),
        qh.as_str(),
        qpw.as_str()
    ));
    conn.query_drop(stmt.as_str())
        .await
        .map_err(|e| format!("setting the clone's password: {}", summarize(&e)))
}

/// testSecret's check: a query runs with the new credentials.
pub(crate) async fn check(conn: &mut Conn) -> Result<(), String> {
    let one: Option<i64> = conn
        .query_first("SELECT 1")
        .await
        .map_err(|e| summarize(&e))?;
    match one {
        Some(1) => Ok(()),
        _ => Err("SELECT 1 returned an unexpected result".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite_grant;

    #[test]
    fn grants_move_to_the_clone() {
        let g = "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC'";
        assert_eq!(
            rewrite_grant(g, "app", "%", "app_clone").unwrap(),
            "GRANT USAGE ON *.* TO `app_clone`@`%`"
        );
        let g = "GRANT SELECT, INSERT ON `db TO x`.* TO `app`@`%` WITH GRANT OPTION";
        assert_eq!(
            rewrite_grant(g, "app", "%", "app_clone").unwrap(),
            "GRANT SELECT, INSERT ON `db TO x`.* TO `app_clone`@`%` WITH GRANT OPTION"
        );
        let g = "GRANT SELECT ON `t`.* TO 'app'@'%'";
        assert_eq!(
            rewrite_grant(g, "app", "%", "a`b").unwrap(),
            "GRANT SELECT ON `t`.* TO `a``b`@`%`"
        );
        assert_eq!(
            rewrite_grant(
                "SET DEFAULT ROLE `r` FOR `app`@`%`",
                "app",
                "%",
                "app_clone"
            )
            .unwrap(),
            "SET DEFAULT ROLE `r` FOR `app_clone`@`%`"
        );
        assert!(rewrite_grant("GRANT SELECT ON *.* TO `other`@`%`", "app", "%", "x").is_none());
        assert!(rewrite_grant("REVOKE ALL", "app", "%", "x").is_none());
    }
}
