//! The key hierarchy as the service uses it: the root key (from a file or the
//! environment) wraps named key-encryption keys kept in the store; those KEKs, unwrapped
//! into the in-memory `Keyring` at start-up, wrap each version's data key. This module
//! resolves a request's `KmsKeyId` (alias, key id or ARN) to a KEK and creates keys.

use arca_crypto::{DigestKey, Kek, Keyring, RootKey};
use arca_policy::{Kind, Policy};
use arca_store::{EncryptionKeyRecord, Store};
use arca_types::arn::kms_key_arn;
use arca_types::time::Millis;
use arca_types::ApiError;
use std::sync::{Arc, RwLock};

/// The alias of the default key, as AWS names its managed key for the service.
pub const DEFAULT_ALIAS: &str = "alias/aws/secretsmanager";

/// What a resolved `KmsKeyId` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKey {
    /// The KEK's id in the keyring (a UUID).
    pub key_id: String,
    /// The key's ARN for customer keys; None for the default key, which AWS does not show
    /// in DescribeSecret and lists as "DEFAULT" in ListSecretVersionIds.
    pub arn: Option<String>,
}

#[derive(Debug, Clone)]
struct KeyMeta {
    key_id: String,
    alias: Option<String>,
    region: String,
    /// The key policy as stored (None: KMS's default policy) and compiled.
    policy_text: Option<String>,
    policy: Option<Arc<Policy>>,
}

/// KMS's default key policy: the account's root may do everything with the key, which
/// hands the decision to the account's identity policies ("Enable IAM User Permissions").
pub fn default_key_policy(account: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

/// A key policy as stored, compiled; one that does not parse grants nothing (it was
/// checked when it was written).
fn compile(text: Option<&str>, account: &str) -> Option<Arc<Policy>> {
    let text = text.map_or_else(|| default_key_policy(account), str::to_owned);
    match Policy::parse(&text, Kind::Resource) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::warn!(error = %e, "a stored key policy does not parse; it grants nothing");
            None
        }
    }
}

pub struct KeyService {
    root: RootKey,
    keyring: Keyring,
    digest: DigestKey,
    store: Arc<dyn Store>,
    account: String,
    meta: RwLock<Vec<KeyMeta>>,
    /// Serializes creation of default keys so two first writes in a region make one.
    create_lock: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyServiceError {
    #[error("cannot unwrap encryption key {0}: wrong root key or corrupted key record")]
    Unwrap(String),
    #[error("store error: {0}")]
    Store(#[from] arca_store::StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl KeyService {
    /// Loads and unwraps every stored KEK. Fails if the root key is not the one that
    /// wrapped them: starting with a wrong root key must be loud, not silent.
    pub async fn load(
        root: RootKey,
        store: Arc<dyn Store>,
        account: String,
    ) -> Result<Self, KeyServiceError> {
        let digest = root.digest_key();
        let this = Self {
            root,
            keyring: Keyring::new(),
            digest,
            store,
            account,
            meta: RwLock::new(Vec::new()),
            create_lock: tokio::sync::Mutex::new(()),
        };
        this.reload().await?;
        Ok(this)
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn digest(&self) -> &DigestKey {
        &self.digest
    }

    pub fn root(&self) -> &RootKey {
        &self.root
    }

    /// Resolves a request's KmsKeyId in `region`. None, "" and the default alias mean the
    /// default key, created on first use as AWS creates `aws/secretsmanager`.
    pub async fn resolve(
        &self,
        region: &str,
        kms_key_id: Option<&str>,
        now: Millis,
    ) -> Result<ResolvedKey, ApiError> {
        let wanted = kms_key_id.unwrap_or("");
        let is_default = wanted.is_empty()
            || wanted == DEFAULT_ALIAS
            || wanted == format!("arn:aws:kms:{region}:{}:{DEFAULT_ALIAS}", self.account);
        if is_default {
            if let Some(k) =
                self.find(|m| m.region == region && m.alias.as_deref() == Some(DEFAULT_ALIAS))
            {
                return Ok(ResolvedKey {
                    key_id: k.key_id,
                    arn: None,
                });
            }
            let k = self
                .create_key(region, Some(DEFAULT_ALIAS), now)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "creating the default key failed");
                    ApiError::encryption_failure()
                })?;
            return Ok(ResolvedKey {
                key_id: k,
                arn: None,
            });
        }
        let prefix = format!("arn:aws:kms:{region}:{}:", self.account);
        let local = wanted.strip_prefix(&prefix).unwrap_or(wanted);
        let found = if let Some(id) = local.strip_prefix("key/") {
            self.find(|m| m.region == region && m.key_id == id)
        } else if local.starts_with("alias/") {
            self.find(|m| m.region == region && m.alias.as_deref() == Some(local))
        } else {
            self.find(|m| m.region == region && m.key_id == local)
        };
        // A key the admin CLI created after start-up: reread the stored keys once.
        let found = match found {
            Some(k) => Some(k),
            None => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, "rereading encryption keys failed");
                }
                self.find(|m| {
                    m.region == region
                        && (m.key_id == local
                            || local.strip_prefix("key/") == Some(m.key_id.as_str())
                            || m.alias.as_deref() == Some(local))
                })
            }
        };
        match found {
            Some(k) => Ok(ResolvedKey {
                arn: Some(kms_key_arn(region, &self.account, &k.key_id)),
                key_id: k.key_id,
            }),
            None => Err(ApiError::unknown_key()),
        }
    }

    /// Loads keys stored since start-up (by another process, such as the admin CLI, or
    /// another node).
    pub async fn reload(&self) -> Result<(), KeyServiceError> {
        let _guard = self.create_lock.lock().await;
        self.reload_locked().await
    }

    /// `reload`, for a caller holding `create_lock`.
    async fn reload_locked(&self) -> Result<(), KeyServiceError> {
        for rec in self.store.list_encryption_keys().await? {
            if self.keyring.contains(&rec.key_id) {
                // Its policy may have changed (on another node, or by the admin CLI).
                let mut meta = self.meta.write().unwrap_or_else(|p| p.into_inner());
                if let Some(m) = meta.iter_mut().find(|m| m.key_id == rec.key_id) {
                    if m.policy_text != rec.policy {
                        m.policy = compile(rec.policy.as_deref(), &self.account);
                        m.policy_text = rec.policy;
                    }
                }
                continue;
            }
            let kek = self
                .root
                .unwrap_kek(&rec.key_id, &rec.wrapped)
                .map_err(|_| KeyServiceError::Unwrap(rec.key_id.clone()))?;
            self.keyring.insert(&rec.key_id, kek);
            self.meta
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(KeyMeta {
                    key_id: rec.key_id,
                    alias: rec.alias,
                    region: rec.region,
                    policy: compile(rec.policy.as_deref(), &self.account),
                    policy_text: rec.policy,
                });
        }
        Ok(())
    }

    fn find(&self, pred: impl Fn(&KeyMeta) -> bool) -> Option<KeyMeta> {
        self.meta
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|m| pred(m))
            .cloned()
    }

    /// Creates a KEK in `region`, stores it wrapped under the root key, and makes it
    /// usable at once. Returns its key id. Aliases are unique per region.
    pub async fn create_key(
        &self,
        region: &str,
        alias: Option<&str>,
        now: Millis,
    ) -> Result<String, KeyServiceError> {
        let _guard = self.create_lock.lock().await;
        if let Some(a) = alias {
            if !a.starts_with("alias/") || a.len() <= "alias/".len() {
                return Err(KeyServiceError::Invalid(format!(
                    "alias must look like alias/<name>, got {a}"
                )));
            }
            if let Some(k) = self.find(|m| m.region == region && m.alias.as_deref() == Some(a)) {
                if a == DEFAULT_ALIAS {
                    return Ok(k.key_id);
                }
                return Err(KeyServiceError::Invalid(format!(
                    "alias {a} already exists in {region}"
                )));
            }
        }
        let key_id = uuid::Uuid::new_v4().to_string();
        let kek = Kek::generate();
        let wrapped = self.root.wrap_kek(&key_id, &kek);
        let stored = self
            .store
            .put_encryption_key(&EncryptionKeyRecord {
                key_id: key_id.clone(),
                alias: alias.map(str::to_owned),
                region: region.to_owned(),
                wrapped,
                created_at: now,
                policy: None,
            })
            .await;
        if let Err(e) = stored {
            // Another node on the same database may have created the alias first (the
            // store keeps aliases unique per region): the default key is then theirs.
            self.reload_locked().await?;
            if let Some(k) = alias
                .and_then(|a| self.find(|m| m.region == region && m.alias.as_deref() == Some(a)))
            {
                if alias == Some(DEFAULT_ALIAS) {
                    return Ok(k.key_id);
                }
                return Err(KeyServiceError::Invalid(format!(
                    "alias {} already exists in {region}",
                    alias.unwrap_or_default()
                )));
            }
            return Err(e.into());
        }
        self.keyring.insert(&key_id, kek);
        self.meta
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(KeyMeta {
                key_id: key_id.clone(),
                alias: alias.map(str::to_owned),
                region: region.to_owned(),
                policy_text: None,
                policy: compile(None, &self.account),
            });
        Ok(key_id)
    }

    /// The ARN and compiled policy of a customer key, by key id or ARN; `None` for the default
    /// key (AWS's managed key lets every caller that Secrets Manager lets through use
    /// it via Secrets Manager) and for ids this service does not hold. The policy is
    /// `None` when the stored one does not parse: it grants nothing.
    pub fn customer_key_policy(&self, key_id: &str) -> Option<(String, Option<Arc<Policy>>)> {
        // On every read of a secret: looked at in place, nothing copied for the default key.
        // Versions name their key by ARN (`arn:aws:kms:...:key/ID`), requests by id.
        let key_id = key_id.rsplit_once(":key/").map_or(key_id, |(_, id)| id);
        let meta = self.meta.read().unwrap_or_else(|p| p.into_inner());
        let m = meta.iter().find(|m| m.key_id == key_id)?;
        if m.alias.as_deref() == Some(DEFAULT_ALIAS) {
            return None;
        }
        Some((
            kms_key_arn(&m.region, &self.account, &m.key_id),
            m.policy.clone(),
        ))
    }

    /// The key a KmsKeyId (key id, ARN or alias, in `region`) names: its id.
    pub fn key_id_of(&self, region: &str, wanted: &str) -> Option<String> {
        let prefix = format!("arn:aws:kms:{region}:{}:", self.account);
        let local = wanted.strip_prefix(&prefix).unwrap_or(wanted);
        let local = local.strip_prefix("key/").unwrap_or(local);
        self.find(|m| {
            m.region == region && (m.key_id == local || m.alias.as_deref() == Some(local))
        })
        .map(|m| m.key_id)
    }

    /// A key's policy as stored, or KMS's default policy for a key that has none.
    pub fn policy_text(&self, key_id: &str) -> Option<String> {
        let m = self.find(|m| m.key_id == key_id)?;
        Some(
            m.policy_text
                .unwrap_or_else(|| default_key_policy(&self.account)),
        )
    }

    /// Replaces a customer key's policy (KMS's PutKeyPolicy): a resource policy whose
    /// principals say who may use the key. The default key's policy is AWS's, fixed.
    pub async fn put_policy(&self, key_id: &str, text: &str) -> Result<(), KeyServiceError> {
        Policy::parse(text, Kind::Resource)
            .map_err(|e| KeyServiceError::Invalid(format!("MalformedPolicyDocument: {e}")))?;
        let _guard = self.create_lock.lock().await;
        let mut rec = self
            .store
            .list_encryption_keys()
            .await?
            .into_iter()
            .find(|r| r.key_id == key_id)
            .ok_or_else(|| KeyServiceError::Invalid(format!("no key {key_id}")))?;
        if rec.alias.as_deref() == Some(DEFAULT_ALIAS) {
            return Err(KeyServiceError::Invalid(
                "the default key's policy is AWS's and cannot be changed".into(),
            ));
        }
        rec.policy = Some(text.to_owned());
        self.store.put_encryption_key(&rec).await?;
        self.reload_locked().await
    }

    /// (key id, alias, region, ARN) of every key, for the admin CLI.
    pub fn list(&self) -> Vec<(String, Option<String>, String, String)> {
        self.meta
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|m| {
                (
                    m.key_id.clone(),
                    m.alias.clone(),
                    m.region.clone(),
                    kms_key_arn(&m.region, &self.account, &m.key_id),
                )
            })
            .collect()
    }
}
