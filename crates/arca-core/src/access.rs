//! SigV4 access keys: creation, sealed storage (the secret half is sealed under the root
//! key), and the in-memory lookup the request path uses. Keys from the config file or the
//! environment are held only in memory.

use crate::keys::KeyService;
use arca_store::{AccessKeyRecord, KeyOwner, KeyScope, Store};
use arca_types::secret::SecretString;
use arca_types::time::Millis;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

const SEAL_PURPOSE: &str = "arca/access-key/v1";

pub struct AccessKeys {
    keys: Arc<KeyService>,
    store: Arc<dyn Store>,
    cache: RwLock<HashMap<String, SecretString, ahash::RandomState>>,
    /// The IAM user each stored key belongs to (absent: the administrator).
    owners: RwLock<HashMap<String, Arc<KeyOwner>, ahash::RandomState>>,
    /// Ids of the keys read from the store (the others came from configuration or were
    /// issued to this process), so that a key deleted from the store is forgotten.
    stored: RwLock<std::collections::HashSet<String, ahash::RandomState>>,
    /// Held by a reread from its list to its last update, and by this process's own
    /// key writes, so a reread that listed before a write never undoes it.
    rereading: tokio::sync::Mutex<()>,
    /// Ids of the stored keys bound to the replication link.
    replication: RwLock<std::collections::HashSet<String, ahash::RandomState>>,
    /// Short-lived keys limited to one secret, issued to rotation commands; memory only.
    scoped: RwLock<HashMap<String, ScopedKey, ahash::RandomState>>,
    /// When the stored keys were last reread (ms since start), to rate-limit rereads
    /// that unknown access key ids trigger.
    last_refresh: AtomicU64,
    started: Instant,
}

struct ScopedKey {
    secret: SecretString,
    scope: crate::SecretScope,
    expires_at: Instant,
}

/// Unknown access key ids trigger at most one reread of the stored keys per interval.
const REFRESH_INTERVAL_MS: u64 = 1000;

impl AccessKeys {
    /// Loads `extra` keys from configuration, then every enabled stored key.
    pub async fn load(
        keys: Arc<KeyService>,
        store: Arc<dyn Store>,
        extra: Vec<(String, SecretString)>,
    ) -> Result<Self, arca_store::StoreError> {
        let mut cache = HashMap::default();
        for (id, secret) in extra {
            cache.insert(id, secret);
        }
        let this = Self {
            keys,
            store,
            cache: RwLock::new(cache),
            owners: RwLock::new(HashMap::default()),
            stored: RwLock::new(Default::default()),
            rereading: tokio::sync::Mutex::new(()),
            replication: RwLock::new(Default::default()),
            scoped: RwLock::new(HashMap::default()),
            last_refresh: AtomicU64::new(0),
            started: Instant::now(),
        };
        this.refresh().await?;
        Ok(this)
    }

    /// The secret for an access key id, if the key is known, enabled and not expired.
    pub fn lookup(&self, access_key_id: &str) -> Option<SecretString> {
        if let Some(s) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(access_key_id)
        {
            return Some(s.clone());
        }
        let scoped = self.scoped.read().unwrap_or_else(|p| p.into_inner());
        scoped
            .get(access_key_id)
            .filter(|k| k.expires_at > Instant::now())
            .map(|k| k.secret.clone())
    }

    /// The IAM user a key belongs to; `None` for the administrator's keys (those made
    /// before principals existed, configured ones, and the process's own).
    pub fn owner_of(&self, access_key_id: &str) -> Option<Arc<KeyOwner>> {
        self.owners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(access_key_id)
            .cloned()
    }

    /// Makes a configured (in-memory) key a key of IAM user `owner`.
    pub fn set_owner(&self, access_key_id: &str, owner: KeyOwner) {
        self.owners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(access_key_id.to_owned(), Arc::new(owner));
    }

    /// Whether the key is bound to the replication link.
    pub fn is_replication_key(&self, access_key_id: &str) -> bool {
        self.replication
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(access_key_id)
    }

    /// What a key may act on, if it is a scoped key.
    pub fn scope_of(&self, access_key_id: &str) -> Option<crate::SecretScope> {
        self.scoped
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(access_key_id)
            .map(|k| k.scope.clone())
    }

    /// Issues a key pair that expires after `ttl` and may act only within `scope`.
    pub fn issue_scoped(
        &self,
        scope: crate::SecretScope,
        ttl: std::time::Duration,
    ) -> (String, SecretString) {
        let (id, secret) = generate_pair();
        let now = Instant::now();
        let mut scoped = self.scoped.write().unwrap_or_else(|p| p.into_inner());
        scoped.retain(|_, k| k.expires_at > now);
        scoped.insert(
            id.clone(),
            ScopedKey {
                secret: secret.clone(),
                scope,
                expires_at: now + ttl,
            },
        );
        (id, secret)
    }

    /// A new full key held only in this process's memory (never stored): what the
    /// server's own background clients (the sync into this Arca) sign with.
    pub fn issue_process_key(&self) -> (String, SecretString) {
        let (id, secret) = generate_pair();
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), secret.clone());
        (id, secret)
    }

    /// Ends a scoped key before its expiry (its rotation step is over).
    pub fn revoke_scoped(&self, access_key_id: &str) {
        self.scoped
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(access_key_id);
    }

    /// Whether a reread is allowed now; claims the slot if so.
    pub fn refresh_due(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64 + REFRESH_INTERVAL_MS;
        let last = self.last_refresh.load(Ordering::Relaxed);
        now - last >= REFRESH_INTERVAL_MS
            && self
                .last_refresh
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Re-reads stored keys (another process, such as the admin CLI, may have added one).
    pub async fn refresh(&self) -> Result<(), arca_store::StoreError> {
        let _one = self.rereading.lock().await;
        let records = self.store.list_access_keys().await?;
        {
            // Keys deleted from the store since the last read are forgotten.
            let now: std::collections::HashSet<&str, ahash::RandomState> =
                records.iter().map(|r| r.access_key_id.as_str()).collect();
            let mut stored = self.stored.write().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<String> = stored
                .iter()
                .filter(|id| !now.contains(id.as_str()))
                .cloned()
                .collect();
            for id in gone {
                stored.remove(&id);
                self.forget(&id);
            }
            stored.extend(records.iter().map(|r| r.access_key_id.clone()));
        }
        for rec in records {
            {
                let mut owners = self.owners.write().unwrap_or_else(|p| p.into_inner());
                match &rec.owner {
                    Some(o) if owners.get(&rec.access_key_id).map(|x| &**x) != Some(o) => {
                        owners.insert(rec.access_key_id.clone(), Arc::new(o.clone()));
                    }
                    Some(_) => {}
                    None => {
                        owners.remove(&rec.access_key_id);
                    }
                }
            }
            {
                let mut repl = self.replication.write().unwrap_or_else(|p| p.into_inner());
                if rec.enabled && rec.scope == KeyScope::Replication {
                    repl.insert(rec.access_key_id.clone());
                } else {
                    repl.remove(&rec.access_key_id);
                }
            }
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            if !rec.enabled {
                cache.remove(&rec.access_key_id);
                continue;
            }
            if cache.contains_key(&rec.access_key_id) {
                continue;
            }
            match self
                .keys
                .root()
                .open_blob(&seal_purpose(&rec.access_key_id), &rec.sealed_secret)
                .ok()
                .and_then(|secret| String::from_utf8(secret.expose().to_vec()).ok())
            {
                Some(s) => {
                    cache.insert(rec.access_key_id.clone(), SecretString::new(s));
                }
                None => tracing::warn!(
                    access_key_id = %rec.access_key_id,
                    "stored access key cannot be opened with this root key; ignored"
                ),
            }
        }
        Ok(())
    }

    fn forget(&self, id: &str) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.owners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.replication
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Creates and stores a new key of IAM user `owner`; returns (id, secret).
    pub async fn create_for(
        &self,
        owner: Option<KeyOwner>,
        now: Millis,
    ) -> Result<(String, SecretString), arca_store::StoreError> {
        let (id, secret) = generate_pair();
        self.store_key(&id, secret.clone(), None, KeyScope::Full, owner, now)
            .await?;
        Ok((id, secret))
    }

    /// Deletes a stored key; returns whether it existed. It stops working here at once
    /// (other nodes on their next reread).
    pub async fn delete(&self, access_key_id: &str) -> Result<bool, arca_store::StoreError> {
        let _one = self.rereading.lock().await;
        let existed = self.store.delete_access_key(access_key_id).await?;
        self.stored
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(access_key_id);
        self.forget(access_key_id);
        Ok(existed)
    }

    /// Creates and stores a new key pair; returns (id, secret) for printing once.
    pub async fn create(
        &self,
        description: Option<String>,
        scope: KeyScope,
        now: Millis,
    ) -> Result<(String, SecretString), arca_store::StoreError> {
        let (id, secret) = generate_pair();
        self.insert_scoped(&id, secret.clone(), description, scope, now)
            .await?;
        Ok((id, secret))
    }

    /// Stores a given key pair (used by `--dev` to accept the caller's AWS_* pair).
    pub async fn insert(
        &self,
        id: &str,
        secret: SecretString,
        description: Option<String>,
        now: Millis,
    ) -> Result<(), arca_store::StoreError> {
        self.insert_scoped(id, secret, description, KeyScope::Full, now)
            .await
    }

    /// Stores a given key pair bound to `scope`.
    pub async fn insert_scoped(
        &self,
        id: &str,
        secret: SecretString,
        description: Option<String>,
        scope: KeyScope,
        now: Millis,
    ) -> Result<(), arca_store::StoreError> {
        self.store_key(id, secret, description, scope, None, now)
            .await
    }

    async fn store_key(
        &self,
        id: &str,
        secret: SecretString,
        description: Option<String>,
        scope: KeyScope,
        owner: Option<KeyOwner>,
        now: Millis,
    ) -> Result<(), arca_store::StoreError> {
        let _one = self.rereading.lock().await;
        let sealed = self
            .keys
            .root()
            .seal_blob(&seal_purpose(id), secret.expose().as_bytes());
        self.store
            .put_access_key(&AccessKeyRecord {
                access_key_id: id.to_owned(),
                sealed_secret: sealed,
                description,
                created_at: now,
                enabled: true,
                scope,
                owner: owner.clone(),
            })
            .await?;
        self.stored
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned());
        if let Some(o) = owner {
            self.owners
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_owned(), Arc::new(o));
        }
        if scope == KeyScope::Replication {
            self.replication
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_owned());
        }
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), secret);
        Ok(())
    }
}

fn seal_purpose(id: &str) -> String {
    format!("{SEAL_PURPOSE}/{id}")
}

/// An AWS-shaped key pair: a 20-character id starting with AKIA and a 40-character secret.
pub fn generate_pair() -> (String, SecretString) {
    generate_pair_with_prefix("AKIA")
}

/// A key pair whose id starts with `prefix` (`ASIA` for temporary credentials, as AWS).
pub fn generate_pair_with_prefix(prefix: &str) -> (String, SecretString) {
    const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rngs::OsRng;
    let id: String = prefix
        .chars()
        .chain((0..16).map(|_| ID_CHARS[rng.gen_range(0..ID_CHARS.len())] as char))
        .collect();
    let secret: String = (0..40)
        .map(|_| SECRET_CHARS[rng.gen_range(0..SECRET_CHARS.len())] as char)
        .collect();
    (id, SecretString::new(secret))
}
