//! The `arca` binary: `arca server` (the Secrets Manager API) and the admin CLI (access
//! keys, encryption keys, status). It reads configuration, opens the store and the key
//! hierarchy, and wires arca-core, arca-api and arca-jobs together.

mod config;
mod iam;
mod sync;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context, Result};
use arca_core::access::AccessKeys;
use arca_core::{Arca, KeyService, RequestCtx};
use arca_crypto::RootKey;
use arca_store::Store;
use arca_store_sqlite::SqliteStore;
use arca_types::secret::SecretString;
use arca_types::time::{Clock, OffsetClock, SystemClock};
use arca_types::ApiError;
use clap::{Parser, Subcommand};
use config::{FileConfig, DEFAULT_ACCOUNT_ID, DEFAULT_LISTEN};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

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
    /// The database: a SQLite file (default: arca.db, or a temporary one with --dev), or a
    /// PostgreSQL URL (`postgres://user@host:5432/dbname[?sslmode=verify-full]`).
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
        /// Development mode: a temporary database and root key (unless --database or a
        /// root key is given), a printed access key (or the AWS_ACCESS_KEY_ID /
        /// AWS_SECRET_ACCESS_KEY pair from the environment), and the /_arca/dev endpoints.
        /// Never for real secrets.
        #[arg(long)]
        dev: bool,
        /// How often the deletion purge runs, in seconds (default 60).
        #[arg(long)]
        purge_interval_secs: Option<u64>,
        /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
        #[arg(long, env = "ARCA_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key (a file of mode 0600).
        #[arg(long, env = "ARCA_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// CA bundle local rotation commands trust when calling back (AWS_CA_BUNDLE).
        #[arg(long, env = "ARCA_TLS_CA", requires = "tls_cert")]
        tls_ca: Option<PathBuf>,
    },
    /// Manage IAM users, their access keys, roles and policies (as `aws iam` names them).
    Iam(iam::IamArgs),
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
    /// Bind rotation-function ARNs to what runs them.
    RotationFunction {
        #[command(subcommand)]
        action: FunctionAction,
    },
    /// Print events from the audit trail as JSON lines: Secrets Manager's service events
    /// (rotation, deletion) in a short form, or with --eventbridge every published event
    /// (service events and write calls) in EventBridge's envelope.
    Events {
        /// Only events after this trail seq (each line's "id", or "seq" with --eventbridge).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Only this secret's events (its ARN or name).
        #[arg(long)]
        secret: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print EventBridge envelopes (what rules match and targets receive).
        #[arg(long)]
        eventbridge: bool,
    },
    /// Manage event rules and their targets, and the deliveries they owe (a running
    /// server picks up changes within 5 seconds).
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Print the audit trail (CloudTrail records, one JSON line each, oldest first), or
    /// `arca audit verify` its hash chain.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        action: Option<AuditAction>,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Sync jobs from Vault/OpenBao: list, add and remove them; plan, run and show them
    /// on the running server.
    Sync {
        #[command(subcommand)]
        action: SyncAction,
    },
    /// Create a new root key file (mode 0600).
    InitRootKey { path: PathBuf },
    /// Bring the database to this build's schema (the server also does so at start).
    Migrate,
    /// Show what the store holds.
    Status,
}

#[derive(Subcommand)]
enum SyncAction {
    /// Every job: the config file's `[[sync]]` and the added ones, one JSON line each.
    List,
    /// Add (or replace) a job from a TOML file holding one job, in the shape of a
    /// `[[sync]]` entry; a running server starts (or restarts) it within 5 seconds.
    Add { file: PathBuf },
    /// Remove an added job; a running server stops it within 5 seconds (jobs of the
    /// config file are removed from the file).
    Remove { name: String },
    /// Show, without writing anything, what a pass of JOB would do and why.
    Plan {
        job: String,
        /// Only these source paths.
        #[arg(long = "path")]
        paths: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run one pass of JOB now and print its report (the push trigger's operation).
    Run {
        job: String,
        /// Only these source paths.
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Return at once; the pass runs in the background.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Each job's last pass, counts, lag, progress and next run.
    Status {
        job: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Where the running server is (its key comes from AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY).
#[derive(clap::Args)]
struct ServerArgs {
    /// The server's URL (default: the config's listen address).
    #[arg(long, env = "ARCA_ENDPOINT")]
    endpoint_url: Option<String>,
    /// CA bundle to trust for an HTTPS server.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RulesAction {
    /// Every rule with its targets, one JSON line each.
    List,
    /// Create or replace a rule on a region's default bus.
    Put {
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long)]
        name: String,
        /// The event pattern (EventBridge's syntax), as JSON.
        #[arg(long)]
        pattern: String,
        /// ENABLED, DISABLED or ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS.
        #[arg(long, default_value = "ENABLED")]
        state: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a rule and its targets.
    Delete {
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long)]
        name: String,
    },
    /// Add (or replace) a target of a rule: a bound function ARN
    /// (arn:aws:lambda:...), or arn:arca:events:<region>:<account>:action/copy-secret[/<KmsKeyId>].
    AddTarget {
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long)]
        rule: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        arn: String,
        /// Constant JSON sent instead of the event.
        #[arg(long)]
        input: Option<String>,
        /// Retries after the first attempt (0-185, default 185).
        #[arg(long)]
        max_retries: Option<i64>,
        /// The oldest event still delivered, in seconds (60-86400, default 86400).
        #[arg(long)]
        max_age_secs: Option<i64>,
    },
    /// Remove a target of a rule (what is still owed to it is dropped).
    RemoveTarget {
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long)]
        rule: String,
        #[arg(long)]
        id: String,
    },
    /// Deliveries given up on, one JSON line each.
    DeadLetters {
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Deliveries still owed, one JSON line each.
    Pending {
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Put dead letters back at the head of their targets' queues.
    Replay {
        /// The deliveries' ids (the "id" of `arca rules dead-letters`).
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Walk the whole hash chain; report the first missing, reordered or altered record.
    /// Exits non-zero if the chain is broken.
    Verify,
}

#[derive(clap::Args)]
struct AuditFilterArgs {
    /// Records at or after this time (2026-12-06T10:00:00Z, 2026-12-06, or epoch seconds).
    #[arg(long)]
    since: Option<String>,
    /// Records before this time.
    #[arg(long)]
    until: Option<String>,
    /// One secret's records: its name or ARN.
    #[arg(long)]
    secret: Option<String>,
    /// Only this event (e.g. GetSecretValue, RotationSucceeded).
    #[arg(long)]
    event: Option<String>,
    /// Only calls signed with this access key id.
    #[arg(long)]
    access_key: Option<String>,
    /// Only calls that succeeded, or only those that failed.
    #[arg(long, value_parser = ["success", "failure"])]
    outcome: Option<String>,
    /// Only this region's records.
    #[arg(long)]
    region: Option<String>,
    /// At most this many records (without --follow).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Keep printing new records as they are written.
    #[arg(long)]
    follow: bool,
}

#[derive(Subcommand)]
enum AccessKeyAction {
    /// Create an access key and print it (the secret is shown only this once).
    Create {
        #[arg(long)]
        description: Option<String>,
        /// Bind the key to the replication link: another deployment delivers its
        /// replicas with it, and it can do nothing else.
        #[arg(long)]
        replication: bool,
    },
    /// List access key ids.
    List,
}

#[derive(Subcommand)]
enum FunctionAction {
    /// Bind an ARN (arn:aws:lambda:<region>:<account>:function:<name>) to an HTTP endpoint,
    /// a built-in rotator, or a local command (given after `--`).
    Add {
        #[arg(long)]
        arn: String,
        /// POST each step's event to this URL, HMAC-signed.
        #[arg(long, conflicts_with_all = ["builtin", "command"])]
        http: Option<String>,
        /// File holding the HTTP signing secret (mode 0600); without it one is generated
        /// and printed once.
        #[arg(long, requires = "http")]
        hmac_secret_file: Option<PathBuf>,
        /// A built-in rotator: generic, postgres-single-user, postgres-alternating-users,
        /// mysql-single-user, mysql-alternating-users.
        #[arg(long, conflicts_with = "command")]
        builtin: Option<String>,
        /// Options of the built-in rotator, as JSON.
        #[arg(long, requires = "builtin")]
        options: Option<String>,
        #[arg(long)]
        timeout_secs: Option<u64>,
        /// Run the command as this IAM role (of the function's account), as a Lambda
        /// function runs as its execution role; without it, with a key limited to the
        /// secret being rotated.
        #[arg(long)]
        role: Option<String>,
        /// The command to run, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    List,
    Remove {
        #[arg(long)]
        arn: String,
    },
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
        /// Its key policy (JSON, or file://PATH); without one, KMS's default policy
        /// (the account's identity policies decide who may use the key).
        #[arg(long)]
        policy: Option<String>,
    },
    /// List encryption keys.
    List,
    /// Replace a key's policy (KMS's PutKeyPolicy). The key: its id, ARN or alias.
    PutPolicy {
        key: String,
        /// The policy (JSON, or file://PATH).
        #[arg(long)]
        policy: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
    /// Print a key's policy.
    GetPolicy {
        key: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

pub(crate) struct Opened {
    database: PathBuf,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Arc<KeyService>,
    pub(crate) account: String,
    file: FileConfig,
}

async fn open(cli: &Cli, root: RootKey, database: PathBuf, file: FileConfig) -> Result<Opened> {
    let store: Arc<dyn Store> = match postgres_options(&database, &file) {
        Some(opts) => Arc::new(
            arca_store_postgres::PostgresStore::open(&opts)
                .await
                .map_err(|e| anyhow::anyhow!("opening the PostgreSQL database: {e}"))?,
        ),
        None => Arc::new(
            SqliteStore::open(&database)
                .with_context(|| format!("opening database {}", database.display()))?,
        ),
    };
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
        database,
        store,
        keys,
        account,
        file,
    })
}

/// What every admin command starts from: the configuration, the root key, the store.
async fn open_admin(cli: &Cli) -> Result<Opened> {
    let file = file_config(cli)?;
    let root = load_root_key(cli, &file)?;
    let db = database_path(cli, &file);
    open(cli, root, db, file).await
}

/// The PostgreSQL connection options, if `database` is a `postgres://` URL.
fn postgres_options(database: &Path, file: &FileConfig) -> Option<arca_store_postgres::PgOptions> {
    let url = database
        .to_str()
        .filter(|u| arca_store_postgres::is_postgres_url(u))?;
    let mut opts = arca_store_postgres::PgOptions::new(url);
    opts.ca_file = file.database_ca_file.clone();
    if let Some(n) = file.database_pool_size {
        opts.pool_size = n;
    }
    Some(opts)
}

/// How a database is named in output: a file's path, or a URL without its credentials.
fn database_label(database: &Path) -> String {
    let s = database.display().to_string();
    if !arca_store_postgres::is_postgres_url(&s) {
        return s;
    }
    match s.split_once("://").and_then(|(scheme, rest)| {
        rest.split_once('@')
            .map(|(_, host)| format!("{scheme}://{}", host.split('?').next().unwrap_or(host)))
    }) {
        Some(safe) => safe,
        None => s.split('?').next().unwrap_or(&s).to_owned(),
    }
}

/// The database: the flag (or `ARCA_DATABASE`), else the config file, else the default.
fn database_path(cli: &Cli, file: &FileConfig) -> PathBuf {
    cli.database
        .clone()
        .or_else(|| file.database.clone())
        .unwrap_or_else(config::default_database)
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
            tls_cert,
            tls_key,
            tls_ca,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert_file), Some(key_file)) => Some(config::TlsConfig {
                    cert_file: cert_file.clone(),
                    key_file: key_file.clone(),
                    ca_file: tls_ca.clone(),
                }),
                _ => None,
            };
            server(&cli, listen.clone(), *dev, *purge_interval_secs, tls).await
        }
        Command::InitRootKey { path } => {
            RootKey::generate_file(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created root key file {} (mode 0600); back it up: without it nothing stored can be decrypted", path.display());
            Ok(())
        }
        Command::AccessKey { action } => {
            let o = open_admin(&cli).await?;
            let access = AccessKeys::load(o.keys.clone(), o.store.clone(), Vec::new()).await?;
            match action {
                AccessKeyAction::Create {
                    description,
                    replication,
                } => {
                    let scope = if *replication {
                        arca_store::KeyScope::Replication
                    } else {
                        arca_store::KeyScope::Full
                    };
                    let (id, secret) = access
                        .create(description.clone(), scope, SystemClock.now_millis())
                        .await?;
                    println!("AWS_ACCESS_KEY_ID={id}");
                    println!("AWS_SECRET_ACCESS_KEY={}", secret.expose());
                }
                AccessKeyAction::List => {
                    for k in o.store.list_access_keys().await? {
                        println!(
                            "{}\t{}\t{}\t{}",
                            k.access_key_id,
                            if k.enabled { "enabled" } else { "disabled" },
                            k.scope.as_str(),
                            k.description.unwrap_or_default()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Key { action } => {
            let o = open_admin(&cli).await?;
            match action {
                KeyAction::Create {
                    alias,
                    region,
                    policy,
                } => {
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
                    if let Some(p) = policy {
                        o.keys.put_policy(&id, &iam::document(p)?).await?;
                    }
                    println!("{}", arca_types::arn::kms_key_arn(region, &o.account, &id));
                }
                KeyAction::PutPolicy {
                    key,
                    policy,
                    region,
                } => {
                    let id = o
                        .keys
                        .key_id_of(region, key)
                        .with_context(|| format!("no key {key} in {region}"))?;
                    o.keys.put_policy(&id, &iam::document(policy)?).await?;
                }
                KeyAction::GetPolicy { key, region } => {
                    let id = o
                        .keys
                        .key_id_of(region, key)
                        .with_context(|| format!("no key {key} in {region}"))?;
                    println!("{}", o.keys.policy_text(&id).unwrap_or_default());
                }
                KeyAction::List => {
                    for (id, alias, region, arn) in o.keys.list() {
                        println!("{id}\t{region}\t{}\t{arn}", alias.unwrap_or_default());
                    }
                }
            }
            Ok(())
        }
        Command::RotationFunction { action } => {
            let o = open_admin(&cli).await?;
            match action {
                FunctionAction::Add {
                    arn,
                    http,
                    hmac_secret_file,
                    builtin,
                    options,
                    timeout_secs,
                    role,
                    command,
                } => {
                    let mut printed_secret = None;
                    let (spec, secret) = if let Some(url) = http {
                        let secret = match hmac_secret_file {
                            Some(p) => read_private_file(p)?,
                            None => {
                                let s: [u8; 32] = rand::random();
                                printed_secret = Some(hex::encode(s));
                                Zeroizing::new(hex::encode(s).into_bytes())
                            }
                        };
                        (
                            arca_rotation::FunctionSpec::Http {
                                url: url.clone(),
                                timeout_secs: *timeout_secs,
                            },
                            Some(secret),
                        )
                    } else if let Some(kind) = builtin {
                        let options = match options {
                            Some(o) => serde_json::from_str(o).context("--options must be JSON")?,
                            None => serde_json::Value::Null,
                        };
                        (
                            arca_rotation::FunctionSpec::Builtin {
                                kind: kind.clone(),
                                options,
                            },
                            None,
                        )
                    } else if !command.is_empty() {
                        (
                            arca_rotation::FunctionSpec::Command {
                                argv: command.clone(),
                                timeout_secs: *timeout_secs,
                                role: role.clone(),
                            },
                            None,
                        )
                    } else {
                        bail!("give --http URL, --builtin KIND, or a command after --");
                    };
                    let rec = arca_rotation::functions::binding_record(
                        o.keys.root(),
                        arn,
                        &spec,
                        secret.as_ref().map(|s| s.as_slice()),
                        SystemClock.now_millis(),
                    )
                    .map_err(|e| anyhow::anyhow!(e))?;
                    o.store.put_rotation_function(&rec).await?;
                    println!("bound {arn}");
                    if let Some(s) = printed_secret {
                        println!("ARCA_ROTATION_HMAC_SECRET={s}");
                    }
                }
                FunctionAction::List => {
                    for f in o.store.list_rotation_functions().await? {
                        println!("{}\t{}", f.arn, f.spec);
                    }
                }
                FunctionAction::Remove { arn } => {
                    o.store.delete_rotation_function(arn).await?;
                    println!("removed {arn}");
                }
            }
            Ok(())
        }
        Command::Events {
            after,
            secret,
            limit,
            eventbridge,
        } => {
            let o = open_admin(&cli).await?;
            let store = o.store.as_ref();
            let events = if *eventbridge {
                arca_core::events::published(store, &o.account, secret.as_deref(), *after, *limit)
                    .await?
            } else {
                arca_core::events::service_events(store, secret.as_deref(), *after, *limit).await?
            };
            for e in events {
                println!("{e}");
            }
            Ok(())
        }
        Command::Iam(args) => {
            let o = open_admin(&cli).await?;
            iam::iam_command(&o, args.clone()).await
        }
        Command::Rules { action } => {
            let o = open_admin(&cli).await?;
            rules_command(&o, action).await
        }
        Command::Audit { action, filter } => {
            let o = open_admin(&cli).await?;
            match action {
                Some(AuditAction::Verify) => audit_verify(o.store.as_ref()).await,
                None => audit_print(o.store.as_ref(), filter).await,
            }
        }
        Command::Sync { action } => sync_command(&cli, action).await,
        Command::Migrate => {
            let file = file_config(&cli)?;
            let db = database_path(&cli, &file);
            let label = database_label(&db);
            let (from, to) = match postgres_options(&db, &file) {
                Some(opts) => arca_store_postgres::migrate(&opts).await,
                None => arca_store_sqlite::migrate(&db),
            }
            .map_err(|e| anyhow::anyhow!("migrating {label}: {e}"))?;
            if from == to {
                println!("{label}: schema version {to}, up to date");
            } else {
                println!("{label}: schema version {from} -> {to}");
            }
            Ok(())
        }
        Command::Status => {
            let o = open_admin(&cli).await?;
            println!("database: {}", database_label(&o.database));
            println!("account: {}", o.account);
            println!("access keys: {}", o.store.list_access_keys().await?.len());
            println!("encryption keys: {}", o.keys.list().len());
            println!(
                "replication outbox: {} pending",
                o.store.outbox_len().await?
            );
            Ok(())
        }
    }
}

/// Writes the config file's rules (and removes the ones it no longer has).
async fn sync_command(cli: &Cli, action: &SyncAction) -> Result<()> {
    let endpoint = |a: &ServerArgs| -> Result<(String, Option<PathBuf>)> {
        let file = file_config(cli)?;
        let url = match &a.endpoint_url {
            Some(u) => u.clone(),
            None => {
                let listen = file
                    .listen
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
                let scheme = if file.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", listen.replace("0.0.0.0", "127.0.0.1"))
            }
        };
        let ca = a
            .ca_file
            .clone()
            .or_else(|| file.tls.as_ref().and_then(|t| t.ca_file.clone()));
        Ok((url, ca))
    };
    let print =
        |v: &serde_json::Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match action {
        SyncAction::List => {
            let o = open_admin(cli).await?;
            // all_jobs lets the file win a name, so a job is "added" exactly when the
            // file does not have it.
            for j in sync::all_jobs(&o.file.sync, o.store.as_ref()).await? {
                let origin = if o.file.sync.iter().any(|f| f.name == j.name) {
                    "config"
                } else {
                    "added"
                };
                let line = serde_json::json!({
                    "name": j.name, "origin": origin, "source": j.source.address,
                    "mount": j.source.mount.as_deref().unwrap_or("secret"),
                    "prefixes": j.source.prefixes,
                    "target": j.target.remote.clone().unwrap_or_else(|| format!("this Arca ({})", j.target.region.as_deref().unwrap_or("us-east-1"))),
                });
                println!("{line}");
            }
        }
        SyncAction::Add { file } => {
            let o = open_admin(cli).await?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let job: config::SyncJobConfig =
                toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
            sync::check(&job)?;
            if o.file.sync.iter().any(|j| j.name == job.name) {
                bail!(
                    "the config file already has a [[sync]] job named {}",
                    job.name
                );
            }
            if let Some(r) = &job.target.remote {
                if !o.file.remotes.iter().any(|x| &x.name == r) {
                    bail!("no [[remotes]] entry of the config file is named {r}");
                }
            }
            o.store
                .put_sync_job(&arca_store::SyncJobRecord {
                    name: job.name.clone(),
                    spec: serde_json::to_value(&job)?,
                    created_at: SystemClock.now_millis(),
                })
                .await?;
            println!(
                "added sync job {} (a running server starts it at its next start)",
                job.name
            );
        }
        SyncAction::Remove { name } => {
            let o = open_admin(cli).await?;
            if !o.store.delete_sync_job(name).await? {
                if o.file.sync.iter().any(|j| &j.name == name) {
                    bail!("{name} is a [[sync]] job of the config file: remove it there");
                }
                bail!("no added sync job is named {name}");
            }
            println!("removed sync job {name}");
        }
        SyncAction::Plan { job, paths, server } => {
            let (url, ca) = endpoint(server)?;
            let body = serde_json::json!({"Job": job, "Paths": paths, "DryRun": true});
            print(&sync::call(&url, ca.as_deref(), "RunJob", body).await?);
        }
        SyncAction::Run {
            job,
            paths,
            no_wait,
            server,
        } => {
            let (url, ca) = endpoint(server)?;
            let body = serde_json::json!({"Job": job, "Paths": paths, "NoWait": no_wait});
            let r = sync::call(&url, ca.as_deref(), "RunJob", body).await?;
            print(&r);
            if r["outcome"] == "failed" {
                bail!("the pass failed");
            }
        }
        SyncAction::Status { job, server } => {
            let (url, ca) = endpoint(server)?;
            let body = serde_json::json!({"Job": job});
            print(&sync::call(&url, ca.as_deref(), "GetStatus", body).await?);
        }
    }
    Ok(())
}

async fn apply_config_rules(arca: &Arca, rules: &[config::ConfiguredRule]) -> Result<()> {
    let rules = rules
        .iter()
        .map(|r| arca_core::events::rules::ConfigRule {
            region: r.region.clone().unwrap_or_else(|| "us-east-1".into()),
            name: r.name.clone(),
            pattern: r.pattern.clone(),
            state: r.state.clone(),
            description: r.description.clone(),
            targets: r
                .targets
                .iter()
                .map(|t| arca_types::eventbridge::TargetDto {
                    id: Some(t.id.clone()),
                    arn: Some(t.arn.clone()),
                    input: t.input.clone(),
                    retry_policy: Some(arca_types::eventbridge::RetryPolicy {
                        maximum_retry_attempts: t.max_retries,
                        maximum_event_age_in_seconds: t.max_age_secs,
                    }),
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    arca.apply_config_rules(rules)
        .await
        .map_err(|e| anyhow::anyhow!("[[rules]] in the config file: {}", e.message))
}

fn delivery_json(d: &arca_store::DeliveryRecord) -> serde_json::Value {
    let x = &d.delivery;
    serde_json::json!({
        "id": d.seq,
        "region": x.region,
        "rule": x.rule,
        "targetId": x.target_id,
        "eventId": x.event_id,
        "created": arca_types::time::to_wire(x.created_at),
        "attempts": d.attempts,
        "nextAttempt": arca_types::time::to_wire(d.next_attempt_at),
        "lastError": d.last_error,
        "event": serde_json::from_str::<serde_json::Value>(&x.event).unwrap_or_default(),
    })
}

/// Writes the config file's `[iam]` entities: managed policies first (users and roles
/// attach them), then users, then roles.
async fn apply_config_iam(arca: &Arca, iam: &config::IamConfig) -> Result<()> {
    use arca_core::iam::ops::Configured;
    use arca_store::IamKind;
    let mut all = Vec::new();
    for p in &iam.policies {
        all.push(Configured {
            account: p.account.clone(),
            kind: IamKind::Policy,
            name: p.name.clone(),
            path: p.path.clone(),
            inline: Default::default(),
            attached: Vec::new(),
            trust: None,
            max_session_secs: None,
            document: Some(p.document.clone()),
        });
    }
    for (kind, list) in [(IamKind::User, &iam.users), (IamKind::Role, &iam.roles)] {
        for p in list {
            if kind == IamKind::Role && p.trust.is_none() {
                bail!(
                    "[[iam.roles]] {}: a role needs its trust policy (trust)",
                    p.name
                );
            }
            all.push(Configured {
                account: p.account.clone(),
                kind,
                name: p.name.clone(),
                path: p.path.clone(),
                inline: p.policies.clone(),
                attached: p.managed.clone(),
                trust: p.trust.clone(),
                max_session_secs: p.max_session_secs,
                document: None,
            });
        }
    }
    for c in all {
        let what = format!("[iam] {} {}", c.kind.as_str(), c.name);
        arca.iam_configure(c)
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {}: {}", e.code.query_code(), e.message))?;
    }
    Ok(())
}

async fn rules_command(o: &Opened, action: &RulesAction) -> Result<()> {
    let arca = Arca::new(
        o.store.clone(),
        o.keys.clone(),
        Arc::new(SystemClock),
        o.account.clone(),
    );
    let api = |e: ApiError| anyhow::anyhow!("{}: {}", e.code.aws_type(), e.message);
    match action {
        RulesAction::List => {
            for (r, targets) in arca.all_rules().await.map_err(api)? {
                let targets: Vec<_> = targets
                    .iter()
                    .map(arca_core::events::rules::target_dto)
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "Region": r.region,
                        "Name": r.name,
                        "Arn": arca_core::events::rules::rule_arn(&r.region, &o.account, &r.name),
                        "EventPattern": r.pattern,
                        "State": r.state,
                        "Description": r.description,
                        "ManagedBy": r.managed_by,
                        "Targets": targets,
                    })
                );
            }
        }
        RulesAction::Put {
            region,
            name,
            pattern,
            state,
            description,
        } => {
            let ctx = RequestCtx::new(region.clone());
            let req = arca_types::eventbridge::PutRuleRequest {
                name: Some(name.clone()),
                event_pattern: Some(pattern.clone()),
                state: Some(state.clone()),
                description: description.clone(),
                ..Default::default()
            };
            let out = arca.put_rule(&ctx, req).await.map_err(api)?;
            println!("{}", out.rule_arn);
        }
        RulesAction::Delete { region, name } => {
            arca.remove_rule(&RequestCtx::new(region.clone()), name)
                .await
                .map_err(api)?;
            println!("deleted {name}");
        }
        RulesAction::AddTarget {
            region,
            rule,
            id,
            arn,
            input,
            max_retries,
            max_age_secs,
        } => {
            let target = arca_types::eventbridge::TargetDto {
                id: Some(id.clone()),
                arn: Some(arn.clone()),
                input: input.clone(),
                retry_policy: Some(arca_types::eventbridge::RetryPolicy {
                    maximum_retry_attempts: *max_retries,
                    maximum_event_age_in_seconds: *max_age_secs,
                }),
                ..Default::default()
            };
            let req = arca_types::eventbridge::PutTargetsRequest {
                rule: Some(rule.clone()),
                targets: Some(vec![target]),
                ..Default::default()
            };
            let out = arca
                .put_targets(&RequestCtx::new(region.clone()), req)
                .await
                .map_err(api)?;
            if let Some(f) = out.failed_entries.first() {
                anyhow::bail!("{}: {}", f.error_code, f.error_message);
            }
            println!("added target {id} to {rule}");
        }
        RulesAction::RemoveTarget { region, rule, id } => {
            let req = arca_types::eventbridge::RemoveTargetsRequest {
                rule: Some(rule.clone()),
                ids: Some(vec![id.clone()]),
                force: Some(true),
                ..Default::default()
            };
            arca.remove_targets(&RequestCtx::new(region.clone()), req)
                .await
                .map_err(api)?;
            println!("removed target {id} from {rule}");
        }
        RulesAction::DeadLetters { after, limit } => {
            for d in arca.dead_letters(*after, *limit).await.map_err(api)? {
                println!("{}", delivery_json(&d));
            }
        }
        RulesAction::Pending { after, limit } => {
            for d in arca.pending_deliveries(*after, *limit).await.map_err(api)? {
                println!("{}", delivery_json(&d));
            }
        }
        RulesAction::Replay { ids } => {
            for id in ids {
                if arca.replay_dead_letter(*id).await.map_err(api)? {
                    println!("replaying {id}");
                } else {
                    anyhow::bail!("{id} is not a dead letter");
                }
            }
        }
    }
    Ok(())
}

async fn audit_verify(store: &dyn arca_store::Store) -> Result<()> {
    let v = arca_core::audit::trail::verify(store).await?;
    match &v.broken {
        None => {
            println!(
                "audit trail intact: {} records in {} entries, head {} {}",
                v.records, v.checked, v.head, v.head_hash
            );
            Ok(())
        }
        Some(b) => {
            let what = match b {
                arca_store::ChainBreak::Missing { expected, found } if expected + 1 == *found => {
                    format!("entry {expected} is missing")
                }
                arca_store::ChainBreak::Missing { expected, found } => {
                    format!("entries {expected} to {} are missing", found - 1)
                }
                arca_store::ChainBreak::Unlinked { seq } => format!(
                    "entry {seq} does not follow entry {} (reordered, or an entry replaced)",
                    seq - 1
                ),
                arca_store::ChainBreak::Altered { seq } => {
                    format!("entry {seq} was altered (its content does not match its hash)")
                }
            };
            println!(
                "audit trail BROKEN: {what}; the {} entries before it are intact",
                v.checked
            );
            bail!("the audit trail's hash chain is broken")
        }
    }
}

async fn audit_print(store: &dyn arca_store::Store, f: &AuditFilterArgs) -> Result<()> {
    use arca_core::audit::trail;
    let time = |s: &Option<String>, what: &str| -> Result<Option<i64>> {
        s.as_deref()
            .map(|t| {
                arca_core::audit::parse_time(t)
                    .ok_or_else(|| anyhow::anyhow!("--{what}: not a time: {t}"))
            })
            .transpose()
    };
    let filter = trail::Filter {
        from_time: time(&f.since, "since")?,
        to_time: time(&f.until, "until")?,
        secret: f.secret.clone(),
        event_name: f.event.clone(),
        access_key_id: f.access_key.clone(),
        region: f.region.clone(),
        failed: f.outcome.as_deref().map(|o| o == "failure"),
        ..Default::default()
    };
    let mut left = f.limit;
    let mut cursor = None;
    loop {
        let want = if f.follow { 1000 } else { left.min(1000) };
        let (items, at) = trail::read_forward(store, &filter, cursor, want).await?;
        let mut out = std::io::stdout().lock();
        for i in &items {
            writeln!(out, "{}", i.json)?;
        }
        out.flush()?;
        drop(out);
        let moved = at != cursor;
        cursor = at;
        if !f.follow {
            left -= items.len();
            if left == 0 || !moved {
                return Ok(());
            }
        } else if !moved {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn server(
    cli: &Cli,
    listen: Option<String>,
    dev: bool,
    purge_interval_secs: Option<u64>,
    tls: Option<config::TlsConfig>,
) -> Result<()> {
    let file = file_config(cli)?;
    let tls = tls.or_else(|| file.tls.clone());
    // Before anything is opened: a bad certificate or key stops the start with its reason.
    let acceptor = match &tls {
        Some(t) => {
            let key = read_private_file(&t.key_file)?;
            Some(
                arca_api::tls::acceptor(&t.cert_file, &t.key_file, &key)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        }
        None => None,
    };
    let listen = listen
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    // With --dev the database and root key live only as long as the process.
    let mut _dev_dir = None;
    let (root, db) = if dev {
        // A database and root key given explicitly are used (crash tests restart a dev
        // server on the same state); otherwise both are temporary.
        let configured_db = cli.database.clone().or_else(|| file.database.clone());
        let configured_root = cli.root_key_file.is_some()
            || file.root_key_file.is_some()
            || std::env::var_os("ARCA_ROOT_KEY").is_some();
        let db = match configured_db {
            Some(db) => db,
            None => {
                let dir = tempfile::Builder::new().prefix("arca-dev-").tempdir()?;
                let db = dir.path().join("arca.db");
                _dev_dir = Some(dir);
                db
            }
        };
        let root = if configured_root {
            load_root_key(cli, &file)?
        } else {
            RootKey::generate_ephemeral()
        };
        if _dev_dir.is_some() || !configured_root {
            eprintln!("WARNING: --dev: a temporary database and/or an EPHEMERAL ROOT KEY; what they hold is lost at exit. Never store real secrets this way.");
        }
        (root, db)
    } else {
        (load_root_key(cli, &file)?, database_path(cli, &file))
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
    for k in &o.file.access_keys {
        if let Some(user) = &k.user {
            access.set_owner(
                &k.id,
                arca_store::KeyOwner {
                    account: k.account.clone().unwrap_or_else(|| o.account.clone()),
                    user: user.clone(),
                },
            );
        }
    }
    for f in &o.file.rotation_functions {
        let secret = f
            .hmac_secret_file
            .as_ref()
            .map(|p| read_private_file(p))
            .transpose()?;
        let rec = arca_rotation::functions::binding_record(
            o.keys.root(),
            &f.arn,
            &f.spec,
            secret.as_ref().map(|s| s.as_slice()),
            SystemClock.now_millis(),
        )
        .map_err(|e| anyhow::anyhow!("rotation function {}: {e}", f.arn))?;
        o.store.put_rotation_function(&rec).await?;
    }

    let offset_clock = OffsetClock::new();
    let clock: Arc<dyn Clock> = if dev {
        // A dev node can start with its clock already moved (what advance-clock does): a
        // test that restarts one of several dev nodes on one database brings it back on
        // the others' time, or for a moment it would judge their leases by its own.
        if let Some(secs) = dev_clock_offset_secs()? {
            offset_clock.advance(secs.saturating_mul(1000));
        }
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

    let mut arca = Arca::new(o.store.clone(), o.keys.clone(), clock, o.account.clone());
    if let Some(n) = o.file.audit.queue {
        arca.set_audit_queue(n);
    }
    arca.set_audit_enabled(o.file.audit.enabled.unwrap_or(true));
    let arca = Arc::new(arca);
    if let Some(secs) = o.file.replication.failed_after_secs {
        arca.set_replication_failed_after(Duration::from_secs(secs));
    }
    let links = replication_links(&arca, &o.file.replication)?;
    apply_config_rules(&arca, &o.file.rules).await?;
    arca.reload_rules()
        .await
        .map_err(|e| anyhow::anyhow!("loading event rules: {}", e.message))?;
    let dev_hooks = dev.then(|| arca_api::DevHooks {
        clock: offset_clock.clone(),
        purge_wakeup: purge_wakeup.clone(),
    });
    apply_config_iam(&arca, &o.file.iam).await?;
    arca.iam()
        .reload()
        .await
        .context("loading IAM users, roles and policies")?;
    let state = Arc::new(arca_api::ApiState::new(arca.clone(), access, dev_hooks));
    // Other nodes' writes on a shared database reach this node's caches (a no-op on
    // SQLite, where this process is the only writer).
    arca.follow_changes(Some(state.access_keys.clone()));

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr()?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!("arca: listening on {local} ({scheme})");
    std::io::stdout().flush()?;
    tracing::info!(%local, account = %o.account, dev, "arca server started");

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    // Every background job runs in the same worker loop, under leases kept in the store:
    // on PostgreSQL each job runs on one node of the cluster at a time, and its writes
    // are fenced by its lease.
    let leases: Arc<dyn arca_jobs::worker::Leases> =
        arca_jobs::worker::StoreLeases::new(o.store.clone());
    tracing::info!(
        node = arca_jobs::worker::this_node(),
        "background jobs run under leases"
    );
    let directory = tokio::spawn(
        arca_jobs::worker::Worker::local(
            Duration::from_secs(2),
            Arc::new(tokio::sync::Notify::new()),
            arca_jobs::worker::LocalLeases::new(),
        )
        .run(
            Arc::new(arca_jobs::DirectoryJob {
                arca: arca.clone(),
                access: state.access_keys.clone(),
            }),
            shutdown_rx.clone(),
        ),
    );
    let purge = tokio::spawn(
        arca_jobs::worker::Worker::local(
            Duration::from_secs(purge_interval_secs.max(1)),
            purge_wakeup,
            leases.clone(),
        )
        .run(
            Arc::new(arca_jobs::PurgeJob { arca: arca.clone() }),
            shutdown_rx.clone(),
        ),
    );
    // Local rotation commands reach this server on its own address.
    let url = if local.ip().is_unspecified() {
        format!("{scheme}://127.0.0.1:{}", local.port())
    } else {
        format!("{scheme}://{local}")
    };
    let endpoint_url = url.clone();
    let endpoint = arca_rotation::LocalEndpoint {
        url,
        ca_bundle: tls.as_ref().and_then(|t| t.ca_file.clone()),
    };
    let registry = Arc::new(arca_rotation::Registry::new(
        o.store.clone(),
        o.keys.clone(),
        arca.clone(),
        state.access_keys.clone(),
        endpoint,
    ));
    let remotes = remote_endpoints(&o.file.remotes, &o.file.replication).await?;
    let delivery = tokio::spawn(arca_jobs::events::run_delivery(
        arca.clone(),
        registry.clone(),
        remotes,
        Duration::from_millis(500),
        leases.clone(),
        shutdown_rx.clone(),
    ));
    let replication = tokio::spawn(
        arca_jobs::worker::Worker::local(
            Duration::from_millis(500),
            arca.replication_wakeup(),
            leases.clone(),
        )
        .run(
            Arc::new(arca_jobs::replication::ReplicationJob::new(
                arca.clone(),
                links,
            )),
            shutdown_rx.clone(),
        ),
    );
    // Sync jobs write into this Arca through the SDK on its own address, signed with a
    // key that exists only in this process.
    let own_key = state.access_keys.issue_process_key();
    let own_ca = match tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let keys = o.keys.clone();
    let digest: arca_jobs::sync::Digester = Arc::new(move |label: &str, value: &[u8]| {
        format!(
            "hmac-sha256:{}",
            hex::encode(keys.digest().value_digest(label, false, value))
        )
    });
    let syncs = sync::Supervisor::start(
        &arca,
        &o.file.sync,
        sync::TargetContext {
            remotes: o.file.remotes.clone(),
            own_url: endpoint_url.clone(),
            own_ca,
            own_key,
            arca: Some(arca.clone()),
        },
        digest,
        leases.clone(),
    )
    .await?;
    let syncs = tokio::spawn(syncs.run(shutdown_rx.clone()));
    let attempt_lease = Duration::from_secs(
        o.file
            .rotation_attempt_lease_secs
            .unwrap_or(arca_core::rotation::DEFAULT_LEASE_MS as u64 / 1000)
            .max(5),
    );
    let rotation = tokio::spawn(
        arca_jobs::worker::Worker::local(Duration::from_secs(5), arca.rotation_wakeup(), leases)
            .run(
                Arc::new(
                    arca_jobs::rotation::RotationScheduler::new(arca.clone(), registry)
                        .with_attempt_lease(attempt_lease),
                ),
                shutdown_rx,
            ),
    );
    arca_api::serve(listener, acceptor, state, shutdown_signal()).await?;
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), purge).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), directory).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), rotation).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), replication).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), delivery).await;
    let _ = tokio::time::timeout(Duration::from_secs(35), syncs).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), arca.flush_access_dates()).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), arca.flush_audit()).await;
    tracing::info!("arca server stopped");
    Ok(())
}

/// Where each replica region is served: the configured remote regions over HTTPS, this
/// process for every other region.
fn replication_links(
    arca: &Arc<Arca>,
    cfg: &config::ReplicationConfig,
) -> Result<arca_jobs::replication::Links> {
    let mut remote: std::collections::HashMap<String, Arc<dyn arca_jobs::replication::Link>> =
        std::collections::HashMap::new();
    for r in &cfg.regions {
        let secret = read_private_file(&r.secret_access_key_file)?;
        let secret = String::from_utf8(secret.to_vec())
            .context("the secret access key file is not UTF-8")?;
        let ca = r
            .ca_file
            .as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
            .transpose()?;
        let link = arca_jobs::replication::RemoteLink::new(
            &r.endpoint,
            &r.access_key_id,
            SecretString::new(secret),
            ca.as_deref(),
            Duration::from_secs(r.timeout_secs.unwrap_or(10)),
        )
        .map_err(|e| anyhow::anyhow!("replica region {}: {}", r.region, e.0))?;
        tracing::info!(region = %r.region, endpoint = %r.endpoint, "replica region served by another deployment");
        remote.insert(r.region.clone(), Arc::new(link));
    }
    Ok(arca_jobs::replication::Links {
        local: Arc::new(arca_jobs::replication::LocalLink { arca: arca.clone() }),
        remote,
    })
}

/// The `[[remotes]]` endpoints, by region. A region may have one endpoint, and not one
/// that replication reaches through another deployment's link (whose key may only
/// deliver replicas).
async fn remote_endpoints(
    cfg: &[config::RemoteEndpointConfig],
    replication: &config::ReplicationConfig,
) -> Result<arca_jobs::remote::Remotes> {
    use arca_jobs::remote::RemoteEndpoint;
    let mut by_region = std::collections::HashMap::new();
    for r in cfg {
        if !arca_core::replication::valid_region(&r.region) {
            bail!("remote {}: {:?} is not a region name", r.name, r.region);
        }
        if by_region.contains_key(&r.region) {
            bail!(
                "remote {}: another remote already serves {}",
                r.name,
                r.region
            );
        }
        if replication.regions.iter().any(|x| x.region == r.region) {
            bail!(
                "remote {}: {} is a [[replication.regions]] region; its deployment is reached through its replication link",
                r.name,
                r.region
            );
        }
        let endpoint = RemoteEndpoint::connect(remote_config(r)?)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(name = %r.name, region = %r.region, endpoint = r.endpoint.as_deref().unwrap_or("AWS"), "remote Secrets Manager endpoint");
        by_region.insert(r.region.clone(), endpoint);
    }
    Ok(Arc::new(by_region))
}

/// How a `[[remotes]]` entry is reached: its credentials read now (files of mode 0600).
fn remote_config(r: &config::RemoteEndpointConfig) -> Result<arca_jobs::remote::RemoteConfig> {
    use arca_jobs::remote::RemoteCredentials;
    let credentials = match (&r.access_key_id, &r.secret_access_key_file, &r.profile) {
            (Some(id), Some(file), None) => {
                let secret = read_private_file(file)?;
                let secret = String::from_utf8(secret.to_vec())
                    .context("the secret access key file is not UTF-8")?;
                RemoteCredentials::Keys {
                    access_key_id: id.clone(),
                    secret_access_key: SecretString::new(secret),
                }
            }
            (None, None, Some(p)) => RemoteCredentials::Profile(p.clone()),
            (None, None, None) => RemoteCredentials::DefaultChain,
            _ => bail!(
                "remote {}: give access_key_id with secret_access_key_file, or profile, or neither (the AWS chain)",
                r.name
            ),
        };
    if let Some(url) = &r.endpoint {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!("remote {}: endpoint {url} is not an http(s) URL", r.name);
        }
    }
    let ca_pem = r
        .ca_file
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    Ok(arca_jobs::remote::RemoteConfig {
        name: r.name.clone(),
        region: r.region.clone(),
        endpoint: r.endpoint.clone(),
        credentials,
        ca_pem,
        timeout: Duration::from_secs(r.timeout_secs.unwrap_or(10)),
    })
}

/// Reads a file holding a secret, refusing one that group or others can read.
fn read_private_file(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>> {
    config::check_private(path)?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    Ok(Zeroizing::new(text.trim().as_bytes().to_vec()))
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

/// `ARCA_DEV_CLOCK_OFFSET_SECS`: with `--dev`, seconds the service clock starts ahead.
fn dev_clock_offset_secs() -> anyhow::Result<Option<i64>> {
    match std::env::var("ARCA_DEV_CLOCK_OFFSET_SECS") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .map(Some)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "ARCA_DEV_CLOCK_OFFSET_SECS must be a whole number of seconds, 0 or more"
                )
            }),
        _ => Ok(None),
    }
}
