//! Configuration: one struct, read from a TOML file, then the environment, then flags
//! (later wins). Secret material (the root key, access keys) comes from files or the
//! environment, never from flags, which `ps` would show.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9610";
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub account_id: Option<String>,
    /// The SQLite database file, or a PostgreSQL URL (`postgres://...`).
    pub database: Option<PathBuf>,
    /// PEM file of the CA(s) that sign the PostgreSQL server's certificate (with
    /// `sslmode=require` or `verify-full` in the URL; else the system's roots are used).
    pub database_ca_file: Option<PathBuf>,
    /// Most PostgreSQL connections this node opens (default 32).
    pub database_pool_size: Option<usize>,
    /// Path of the root key file (mode 0600). `ARCA_ROOT_KEY` may be used instead.
    pub root_key_file: Option<PathBuf>,
    pub purge_interval_secs: Option<u64>,
    /// How long a node running a rotation attempt holds it (default 900): if the node
    /// dies, another takes the attempt over once this has passed. Keep it above the
    /// rotation functions' timeouts (at least 5).
    pub rotation_attempt_lease_secs: Option<u64>,
    /// Static access keys. The file holding them must not be readable by group or others.
    #[serde(default)]
    pub access_keys: Vec<StaticKey>,
    /// Rotation-function bindings, stored at start-up (the admin CLI can add more).
    #[serde(default)]
    pub rotation_functions: Vec<ConfiguredFunction>,
    /// `[tls]`: serve HTTPS instead of HTTP.
    pub tls: Option<TlsConfig>,
    /// `[replication]`: replica regions served by other deployments.
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// `[audit]`: the audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[[rules]]`: event rules and their targets, owned by this file: written at start,
    /// and removed when they leave it. The API cannot change them.
    #[serde(default)]
    pub rules: Vec<ConfiguredRule>,
    /// `[[remotes]]`: Secrets Manager endpoints elsewhere that the copy action writes to.
    #[serde(default)]
    pub remotes: Vec<RemoteEndpointConfig>,
    /// `[[sync]]`: jobs that copy a Vault/OpenBao KV prefix into a Secrets Manager target.
    #[serde(default)]
    pub sync: Vec<SyncJobConfig>,
    /// `[iam]`: users, roles and managed policies of the account, written at start-up.
    #[serde(default)]
    pub iam: IamConfig,
}

/// `[iam]`: `[[iam.policies]]` (name, document, path), `[[iam.users]]` (name, path,
/// `policies` = inline documents by name, `managed` = policy ARNs) and `[[iam.roles]]`
/// (the same, plus `trust` and `max_session_secs`). The file owns what it names: each
/// start makes those entities' policies exactly the file's; entities made through the
/// API or `arca iam` are left alone. A static access key names its user with `user`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    #[serde(default)]
    pub policies: Vec<IamPolicyConfig>,
    #[serde(default)]
    pub users: Vec<IamPrincipalConfig>,
    #[serde(default)]
    pub roles: Vec<IamPrincipalConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPolicyConfig {
    /// The account (default: `account_id`).
    pub account: Option<String>,
    pub name: String,
    pub path: Option<String>,
    pub document: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPrincipalConfig {
    /// The account (default: `account_id`). Another account's principals reach this
    /// deployment's secrets where resource policies share them.
    pub account: Option<String>,
    pub name: String,
    pub path: Option<String>,
    #[serde(default)]
    pub policies: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub managed: Vec<String>,
    /// Roles only.
    pub trust: Option<String>,
    pub max_session_secs: Option<i64>,
}

/// `[[sync]]`: one job. `name`; `interval_secs` (default 300) or `schedule` (a rotation
/// schedule expression: `rate(N hours)`, `cron(...)`); `jitter_secs` (default a tenth
/// of the interval, at most 30); `deletion` `keep` (default), `delete` (with
/// `recovery_window_days`, default 30) or `delete-now`; `granularity` `secret` (default:
/// the entry as one JSON secret) or `key` (each key its own secret); `name_template`
/// (default `{full_path}`, the source path below the mount: placeholders `{mount}`, `{prefix}`, `{path}`, `{full_path}`,
/// `{key}`); `kms_key_id`; `tags` (extra tags on every secret it writes); and the
/// `[sync.source]` and `[sync.target]` tables.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncJobConfig {
    pub name: String,
    pub interval_secs: Option<u64>,
    pub schedule: Option<String>,
    pub jitter_secs: Option<u64>,
    pub deletion: Option<String>,
    pub recovery_window_days: Option<u32>,
    pub granularity: Option<String>,
    pub name_template: Option<String>,
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    pub source: SyncSourceConfig,
    #[serde(default)]
    pub target: SyncTargetConfig,
}

/// `[sync.source]`: `address` (e.g. `http://127.0.0.1:8200`), `namespace`, `mount`
/// (default `secret`), `kv_version` (`1`, `2` or `auto`, the default, which asks the
/// server), `prefixes` (default the whole mount), `include`/`exclude` globs over the path
/// below the mount, `recursive` (default true), `ca_file`, `timeout_secs` (default 10),
/// and the credentials: `token_file` or `token_env` (a token, never inline), or
/// `approle_role_id` with `approle_secret_id_file` (and `approle_mount`, default
/// `approle`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSourceConfig {
    pub address: String,
    pub namespace: Option<String>,
    pub mount: Option<String>,
    pub kv_version: Option<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub recursive: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub approle_mount: Option<String>,
    pub approle_role_id: Option<String>,
    pub approle_secret_id_file: Option<PathBuf>,
}

/// `[sync.target]`: `remote` (the name of a `[[remotes]]` entry: any Secrets Manager
/// endpoint), or nothing: this Arca, in `region` (default us-east-1).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTargetConfig {
    pub remote: Option<String>,
    pub region: Option<String>,
    /// Write into this Arca as this IAM role (of the deployment's account), with its
    /// policies, instead of with the service's own full key. Not with `remote`.
    pub role: Option<String>,
}

/// `[[remotes]]`: a Secrets Manager endpoint outside this deployment (another Arca, real
/// AWS, LocalStack), reached through the AWS SDK: `name`, `region` (the copy action's
/// copies to this region go here; one endpoint per region), `endpoint` (absent: AWS's
/// own endpoint for the region), credentials as `access_key_id` with
/// `secret_access_key_file` (mode 0600), or `profile`, or neither (the usual AWS chain),
/// `ca_file` (extra roots to trust) and `timeout_secs` (default 10).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteEndpointConfig {
    pub name: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key_file: Option<PathBuf>,
    pub profile: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
}

/// `[[rules]]`: `name`, `region` (default us-east-1), `pattern` (EventBridge's JSON, as a
/// string), `state`, `description`, and `[[rules.targets]]` with `id`, `arn`, `input`,
/// `max_retries`, `max_age_secs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredRule {
    pub name: String,
    pub region: Option<String>,
    pub pattern: String,
    pub state: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub targets: Vec<ConfiguredTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredTarget {
    pub id: String,
    pub arn: String,
    pub input: Option<String>,
    pub max_retries: Option<i64>,
    pub max_age_secs: Option<i64>,
}

/// `[audit]`: `enabled` (default true: every call leaves a record) and `queue` (how many
/// records of reads and refused calls wait for their batch write at most; default 65,536).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    pub enabled: Option<bool>,
    pub queue: Option<usize>,
}

/// `[replication]`: `failed_after_secs` (how long a region may stay behind before it
/// shows as Failed, default 300) and `[[replication.regions]]`, each a region served by
/// another Arca deployment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    pub failed_after_secs: Option<u64>,
    #[serde(default)]
    pub regions: Vec<RemoteRegion>,
}

/// A region served by another deployment: its `https://` endpoint, the access key (bound
/// to replication there: `arca access-key create --replication`) with its secret in a
/// file of mode 0600, and optionally the CA that signed the endpoint's certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteRegion {
    pub region: String,
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key_file: PathBuf,
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
}

/// `[tls]`: `cert_file` (PEM chain, leaf first), `key_file` (PEM private key, mode 0600)
/// and, optionally, `ca_file`: the CA bundle that local rotation commands are told to
/// trust (`AWS_CA_BUNDLE`) when they call back to this server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: Option<PathBuf>,
}

/// `[[rotation_functions]]`: an ARN and what it runs, e.g.
/// `arn = "arn:aws:lambda:us-east-1:123456789012:function:rotate-db"`,
/// `type = "builtin"`, `kind = "postgres-single-user"`; or `type = "http"`, `url`,
/// `hmac_secret_file`; or `type = "command"`, `argv = [...]`; each with `timeout_secs`.
#[derive(Debug, Deserialize)]
pub struct ConfiguredFunction {
    pub arn: String,
    /// File holding an HTTP function's signing secret (mode 0600).
    pub hmac_secret_file: Option<PathBuf>,
    #[serde(flatten)]
    pub spec: arca_rotation::FunctionSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticKey {
    pub id: String,
    pub secret: String,
    /// The IAM user the key belongs to (of `account`, default `account_id`); without
    /// one, the administrator.
    pub user: Option<String>,
    pub account: Option<String>,
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let cfg: FileConfig = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        if !cfg.access_keys.is_empty() {
            check_private(path)?;
        }
        Ok(cfg)
    }
}

/// A file that holds secrets must not be readable by group or others.
#[cfg(unix)]
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} holds secret material but is readable by group or others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn check_private(_path: &Path) -> Result<()> {
    Ok(())
}

/// Where the database lives when neither the config nor a flag says.
pub fn default_database() -> PathBuf {
    PathBuf::from("arca.db")
}
