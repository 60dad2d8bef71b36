//! The `arca` binary: `arca server` (the Secrets Manager API) and the admin CLI (access
//! keys, encryption keys, status). It reads configuration, opens the store and the key
//! hierarchy, and wires arca-core, arca-api and arca-jobs together.

mod config;

use anyhow::{bail, Context, Result};
use arca_core::access::AccessKeys;
use arca_core::{Arca, KeyService};
use arca_crypto::RootKey;
use arca_store::sqlite::SqliteStore;
use arca_store::Store;
use arca_types::secret::SecretString;
use arca_types::time::{Clock, OffsetClock, SystemClock};
use clap::{Parser, Subcommand};
use config::{FileConfig, DEFAULT_ACCOUNT_ID, DEFAULT_LISTEN};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "arca",
    version,
    about = "A self-hosted secrets manager that speaks the AWS Secrets Manager API"
)]
struct Cli {
    /// Configuration file (TOML). Values from it are overridden by the environment and flags.
    #[arg(long, global = true, env = "ARCA_CONFIG")]
    config: Option<PathBuf>,
    /// SQLite database file (default: arca.db, or a temporary one with --dev).
    #[arg(long, global = true, env = "ARCA_DATABASE")]
    database: Option<PathBuf>,
    /// Root key file (mode 0600). The environment variable ARCA_ROOT_KEY (base64) may be
    /// used instead.
    #[arg(long, global = true, env = "ARCA_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
    /// Account id used in ARNs.
    #[arg(long, global = true, env = "ARCA_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. info or arca=debug.
    #[arg(long, global = true, env = "ARCA_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Secrets Manager API.
    Server {
        /// Address to listen on (default 127.0.0.1:9610; port 0 picks a free port).
        #[arg(long, env = "ARCA_LISTEN")]
        listen: Option<String>,
        /// Development mode: a temporary database and root key, a printed access key
        /// (or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY pair from the environment),
        /// and the /_arca/dev endpoints. Never for real secrets.
        #[arg(long)]
        dev: bool,
        /// How often the deletion purge runs, in seconds (default 60).
        #[arg(long)]
        purge_interval_secs: Option<u64>,
    },
    /// Manage SigV4 access keys.
    AccessKey {
        #[command(subcommand)]
        action: AccessKeyAction,
    },
    /// Manage encryption keys (key-encryption keys wrapped by the root key).
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Create a new root key file (mode 0600).
    InitRootKey { path: PathBuf },
    /// Show what the store holds.
    Status,
}

#[derive(Subcommand)]
enum AccessKeyAction {
    /// Create an access key and print it (the secret is shown only this once).
    Create {
        #[arg(long)]
        description: Option<String>,
    },
    /// List access key ids.
    List,
}

#[derive(Subcommand)]
enum KeyAction {
    /// Create a named encryption key for use as KmsKeyId.
    Create {
        /// Alias, e.g. alias/team-a.
        #[arg(long)]
        alias: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
    /// List encryption keys.
    List,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

struct Opened {
    store: Arc<dyn Store>,
    keys: Arc<KeyService>,
    account: String,
    file: FileConfig,
}

async fn open(cli: &Cli, root: RootKey, database: PathBuf, file: FileConfig) -> Result<Opened> {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&database)
            .with_context(|| format!("opening database {}", database.display()))?,
    );
    let account = cli
        .account_id
        .clone()
        .or_else(|| file.account_id.clone())
        .unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_owned());
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        bail!("the account id must be 12 digits, got {account:?}");
    }
    let keys = Arc::new(KeyService::load(root, store.clone(), account.clone()).await?);
    Ok(Opened {
        store,
        keys,
        account,
        file,
    })
}

fn load_root_key(cli: &Cli, file: &FileConfig) -> Result<RootKey> {
    if let Some(path) = cli.root_key_file.as_ref().or(file.root_key_file.as_ref()) {
        return RootKey::from_file(path).map_err(|e| anyhow::anyhow!("root key: {e}"));
    }
    if let Ok(v) = std::env::var("ARCA_ROOT_KEY") {
        return RootKey::from_base64(&v).map_err(|e| anyhow::anyhow!("ARCA_ROOT_KEY: {e}"));
    }
    bail!("no root key: set root_key_file in the config, --root-key-file, or ARCA_ROOT_KEY (create one with `arca init-root-key PATH`)")
}

fn file_config(cli: &Cli) -> Result<FileConfig> {
    match &cli.config {
        Some(p) => FileConfig::load(p),
        None => Ok(FileConfig::default()),
    }
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Server {
            listen,
            dev,
            purge_interval_secs,
        } => server(&cli, listen.clone(), *dev, *purge_interval_secs).await,
        Command::InitRootKey { path } => {
            RootKey::generate_file(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created root key file {} (mode 0600); back it up: without it nothing stored can be decrypted", path.display());
            Ok(())
        }
        Command::AccessKey { action } => {
            let file = file_config(&cli)?;
            let root = load_root_key(&cli, &file)?;
            let db = cli
                .database
                .clone()
                .or_else(|| file.database.clone())
                .unwrap_or_else(config::default_database);
            let o = open(&cli, root, db, file).await?;
            let access = AccessKeys::load(o.keys.clone(), o.store.clone(), Vec::new()).await?;
            match action {
                AccessKeyAction::Create { description } => {
                    let (id, secret) = access
                        .create(description.clone(), SystemClock.now_millis())
                        .await?;
                    println!("AWS_ACCESS_KEY_ID={id}");
                    println!("AWS_SECRET_ACCESS_KEY={}", secret.expose());
                }
                AccessKeyAction::List => {
                    for k in o.store.list_access_keys().await? {
                        println!(
                            "{}\t{}\t{}",
                            k.access_key_id,
                            if k.enabled { "enabled" } else { "disabled" },
                            k.description.unwrap_or_default()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Key { action } => {
            let file = file_config(&cli)?;
            let root = load_root_key(&cli, &file)?;
            let db = cli
                .database
                .clone()
                .or_else(|| file.database.clone())
                .unwrap_or_else(config::default_database);
            let o = open(&cli, root, db, file).await?;
            match action {
                KeyAction::Create { alias, region } => {
                    let alias = alias.as_ref().map(|a| {
                        if a.starts_with("alias/") {
                            a.clone()
                        } else {
                            format!("alias/{a}")
                        }
                    });
                    let id = o
                        .keys
                        .create_key(region, alias.as_deref(), SystemClock.now_millis())
                        .await?;
                    println!("{}", arca_types::arn::kms_key_arn(region, &o.account, &id));
                }
                KeyAction::List => {
                    for (id, alias, region, arn) in o.keys.list() {
                        println!("{id}\t{region}\t{}\t{arn}", alias.unwrap_or_default());
                    }
                }
            }
            Ok(())
        }
        Command::Status => {
            let file = file_config(&cli)?;
            let root = load_root_key(&cli, &file)?;
            let db = cli
                .database
                .clone()
                .or_else(|| file.database.clone())
                .unwrap_or_else(config::default_database);
            let o = open(&cli, root, db.clone(), file).await?;
            println!("database: {}", db.display());
            println!("account: {}", o.account);
            println!("access keys: {}", o.store.list_access_keys().await?.len());
            println!("encryption keys: {}", o.keys.list().len());
            Ok(())
        }
    }
}

async fn server(
    cli: &Cli,
    listen: Option<String>,
    dev: bool,
    purge_interval_secs: Option<u64>,
) -> Result<()> {
    let file = file_config(cli)?;
    let listen = listen
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    // With --dev the database and root key live only as long as the process.
    let mut _dev_dir = None;
    let (root, db) = if dev {
        let dir = tempfile::Builder::new().prefix("arca-dev-").tempdir()?;
        let db = dir.path().join("arca.db");
        _dev_dir = Some(dir);
        eprintln!("WARNING: --dev: temporary database and an EPHEMERAL ROOT KEY; everything is lost at exit. Never store real secrets this way.");
        (RootKey::generate_ephemeral(), db)
    } else {
        let db = cli
            .database
            .clone()
            .or_else(|| file.database.clone())
            .unwrap_or_else(config::default_database);
        (load_root_key(cli, &file)?, db)
    };
    let purge_interval_secs = purge_interval_secs
        .or(file.purge_interval_secs)
        .unwrap_or(60);
    let o = open(cli, root, db, file).await?;

    let mut static_keys: Vec<(String, SecretString)> = o
        .file
        .access_keys
        .iter()
        .map(|k| (k.id.clone(), SecretString::new(k.secret.clone())))
        .collect();
    if let (Ok(id), Ok(secret)) = (
        std::env::var("ARCA_ACCESS_KEY_ID"),
        std::env::var("ARCA_SECRET_ACCESS_KEY"),
    ) {
        static_keys.push((id, SecretString::new(secret)));
    }
    let access = Arc::new(AccessKeys::load(o.keys.clone(), o.store.clone(), static_keys).await?);

    let offset_clock = OffsetClock::new();
    let clock: Arc<dyn Clock> = if dev {
        Arc::new(offset_clock.clone())
    } else {
        Arc::new(SystemClock)
    };
    let purge_wakeup = Arc::new(tokio::sync::Notify::new());
    if dev {
        let env_pair = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        );
        let (id, secret) = match env_pair {
            (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => {
                println!("arca: --dev accepts the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY pair from the environment ({id})");
                (id, SecretString::new(secret))
            }
            _ => {
                let (id, secret) = arca_core::access::generate_pair();
                println!("arca: --dev access key (use these in your client):");
                println!("  AWS_ACCESS_KEY_ID={id}");
                println!("  AWS_SECRET_ACCESS_KEY={}", secret.expose());
                (id, secret)
            }
        };
        access
            .insert(&id, secret, Some("--dev".into()), clock.now_millis())
            .await?;
    }

    let arca = Arc::new(Arca::new(
        o.store.clone(),
        o.keys.clone(),
        clock,
        o.account.clone(),
    ));
    let dev_hooks = dev.then(|| arca_api::DevHooks {
        clock: offset_clock.clone(),
        purge_wakeup: purge_wakeup.clone(),
    });
    let state = Arc::new(arca_api::ApiState::new(arca.clone(), access, dev_hooks));

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr()?;
    println!("arca: listening on {local}");
    std::io::stdout().flush()?;
    tracing::info!(%local, account = %o.account, dev, "arca server started");

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let purge = tokio::spawn(arca_jobs::run_purge(
        arca.clone(),
        Duration::from_secs(purge_interval_secs.max(1)),
        purge_wakeup,
        shutdown_rx,
    ));
    axum::serve(listener, arca_api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), purge).await;
    tracing::info!("arca server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
