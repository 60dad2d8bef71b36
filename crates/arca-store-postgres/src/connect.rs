//! Turning a `postgres://` URL (and an optional CA file) into a connection pool: the TLS
//! mode, certificate roots, timeouts, and a description of the target safe to log (no
//! password).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arca_store::{Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to reach the database.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/dbname[?sslmode=...&options=...]`, or the
    /// key=value form libpq also accepts. `sslmode` is `disable` (the default) or
    /// `require`/`verify-ca`/`verify-full`, which all verify the server's certificate and
    /// name (against `ca_file`, else the system's roots).
    pub url: String,
    /// PEM file of the CA(s) that sign the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Most connections this process opens.
    pub pool_size: usize,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL can hold a password.
        f.debug_struct("PgOptions")
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_file: None,
            pool_size: 32,
        }
    }
}

/// True if `s` names a PostgreSQL database rather than a file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// How long opening a connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a session may sit idle inside a transaction before PostgreSQL ends it.
const IDLE_IN_TRANSACTION_MS: u64 = 60_000;

/// How long a request waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Splits `sslmode=...` off the URL (the driver knows only disable/prefer/require and
/// would not verify): returns the URL without it and whether TLS is required.
fn split_sslmode(url: &str) -> Result<(String, bool)> {
    let bad = |m: &str| {
        StoreError::Backend(format!(
            "sslmode={m} is not supported: use disable, require, verify-ca or verify-full \
             (TLS always verifies the server)"
        ))
    };
    let classify = |m: &str| match m {
        "disable" => Ok(false),
        "require" | "verify-ca" | "verify-full" => Ok(true),
        other => Err(bad(other)),
    };
    if is_postgres_url(url) {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), false));
        };
        let mut tls = false;
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.strip_prefix("sslmode=") {
                Some(m) => tls = classify(m)?,
                None => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((url, tls))
    } else {
        let mut tls = false;
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.strip_prefix("sslmode=") {
                Some(m) => tls = classify(m)?,
                None => kept.push(word),
            }
        }
        Ok((kept.join(" "), tls))
    }
}

/// `host:port/dbname` of a config: what logs and errors name.
pub(crate) fn describe_target(cfg: &tokio_postgres::Config) -> String {
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", cfg.get_dbname().unwrap_or("(default)"))
}

fn tls_connector(ca_file: Option<&PathBuf>) -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                StoreError::Backend(format!("reading database CA file {}: {e}", path.display()))
            })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| {
                    StoreError::Backend(format!("parsing database CA file {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    StoreError::Backend(format!("database CA file {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(StoreError::Backend(format!(
                    "database CA file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system root rustls cannot parse is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// How to open a connection of our own, outside the pool (the change feed's listener).
#[derive(Clone)]
pub(crate) struct Dialer {
    cfg: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl Dialer {
    /// A connection whose notices (NOTIFY payloads) arrive on the returned channel; the
    /// task that drives the connection ends (and the channel closes) when it fails.
    pub(crate) async fn connect_for_notices(
        &self,
    ) -> std::result::Result<
        (
            tokio_postgres::Client,
            tokio::sync::mpsc::UnboundedReceiver<String>,
            tokio::task::JoinHandle<()>,
        ),
        tokio_postgres::Error,
    > {
        use futures_util::StreamExt;
        let (client, mut conn) = self.cfg.connect(self.tls.clone()).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // The connection delivers notices only while polled: its own task does that.
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(Ok(msg)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = msg {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        Ok((client, rx, driver))
    }
}

/// The pool for `opts`, the target's description, and a dialer for connections outside
/// the pool. Opens no connection yet.
pub(crate) fn pool(opts: &PgOptions) -> Result<(Pool, String, Dialer)> {
    let (url, tls) = split_sslmode(&opts.url)?;
    // The driver's message for a malformed URL does not quote it.
    let mut cfg = tokio_postgres::Config::from_str(&url)
        .map_err(|e| StoreError::Backend(format!("invalid database URL: {e}")))?;
    cfg.ssl_mode(if tls {
        SslMode::Require
    } else {
        SslMode::Disable
    });
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("arca");
    }
    // A node that stalls inside a transaction (paused, cut off) must not hold its row
    // locks, and a lease row, for longer than this: the server ends such a session.
    let options = cfg.get_options().unwrap_or_default().to_owned();
    cfg.options(format!(
        "{options} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    ));
    let target = describe_target(&cfg);
    let tls = tls_connector(opts.ca_file.as_ref())?;
    let dialer = Dialer {
        cfg: cfg.clone(),
        tls: tls.clone(),
    };
    let manager = Manager::from_config(
        cfg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(opts.pool_size.max(2))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Backend(format!("database pool: {e}")))?;
    Ok((pool, target, dialer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_split_off_both_forms() {
        let (u, tls) =
            split_sslmode("postgres://a@h/db?sslmode=verify-full&options=x").expect("test input");
        assert_eq!((u.as_str(), tls), ("postgres://a@h/db?options=x", true));
        let (u, tls) = split_sslmode("postgres://a@h/db?sslmode=disable").expect("test input");
        assert_eq!((u.as_str(), tls), ("postgres://a@h/db", false));
        let (u, tls) = split_sslmode("postgres://a@h/db").expect("test input");
        assert_eq!((u.as_str(), tls), ("postgres://a@h/db", false));
        let (u, tls) = split_sslmode("host=h sslmode=require dbname=d").expect("test input");
        assert_eq!((u.as_str(), tls), ("host=h dbname=d", true));
        assert!(split_sslmode("postgres://h/db?sslmode=prefer").is_err());
    }

    #[test]
    fn the_target_description_has_no_password() {
        let cfg = tokio_postgres::Config::from_str("postgres://u:hunter2@db.example:6432/arca")
            .expect("test input");
        let d = describe_target(&cfg);
        assert_eq!(d, "db.example:6432/arca");
        assert!(!format!("{:?}", PgOptions::new("postgres://u:hunter2@h/d")).contains("hunter2"));
    }
}
