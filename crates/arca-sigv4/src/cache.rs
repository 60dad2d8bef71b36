//! `SigningKeyCache`: derived signing keys kept across requests, so a server pays the four
//! HMACs of key derivation once per access key, scope and day rather than once per request.

use std::collections::HashMap;
use std::sync::RwLock;

use arca_types::secret::SecretString;
use zeroize::Zeroizing;

use crate::signing::{ct_eq_bytes, derive_signing_key, SigningKey};

/// Derived signing keys by scope id, `AKID/YYYYMMDD/region/service` (the Credential value
/// without its terminator: one string, so a lookup borrows it from the request instead of
/// building a key). Each entry also keeps the secret it was derived from, compared in
/// constant time on every hit, so a key whose secret changed is derived afresh. Bounded:
/// cleared when full.
///
/// An `RwLock` because every request reads it from several worker threads and almost never
/// writes (once per key and day).
#[derive(Default)]
pub struct SigningKeyCache {
    entries: RwLock<HashMap<String, (SecretString, SigningKey), ahash::RandomState>>,
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeyCache([redacted])")
    }
}

const SIGNING_KEY_CACHE_MAX: usize = 4096;

impl SigningKeyCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The signing key for a scope, derived once and then reused while `secret` stays the
    /// same.
    pub fn get_or_derive(
        &self,
        access_key_id: &str,
        secret: &SecretString,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        // Parts with a '/' would make the joined id ambiguous ("a/b" + "c" vs "a" + "b/c").
        // A parsed Credential can't have one; anything else is simply not cached.
        if [access_key_id, date, region, service]
            .iter()
            .any(|p| p.contains('/'))
        {
            return derive_signing_key(secret, date, region, service);
        }
        let scope_id = format!("{access_key_id}/{date}/{region}/{service}");
        if let Some(k) = self.hit(&scope_id, secret, |k| k.clone()) {
            return k;
        }
        self.insert(&scope_id, secret, date, region, service)
    }

    /// The verify path's lookup: the key for `scope_id` (`AKID/date/region/service`, whose
    /// parts are `date`, `region` and `service`), copied onto the caller's stack in a
    /// zeroizing buffer. A hit allocates nothing and holds the read lock only for the lookup.
    pub(crate) fn key_for(
        &self,
        scope_id: &str,
        secret: &SecretString,
        date: &str,
        region: &str,
        service: &str,
    ) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0; 32]);
        let copy = |k: &SigningKey, out: &mut [u8; 32]| out.copy_from_slice(k.expose());
        if self.hit(scope_id, secret, |k| copy(k, &mut out)).is_none() {
            let k = self.insert(scope_id, secret, date, region, service);
            copy(&k, &mut out);
        }
        out
    }

    /// Runs `f` on the cached key for `scope_id` if there is one derived from `secret`.
    fn hit<R>(
        &self,
        scope_id: &str,
        secret: &SecretString,
        f: impl FnOnce(&SigningKey) -> R,
    ) -> Option<R> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let (s, k) = entries.get(scope_id)?;
        ct_eq_bytes(s.expose().as_bytes(), secret.expose().as_bytes()).then(|| f(k))
    }

    fn insert(
        &self,
        scope_id: &str,
        secret: &SecretString,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        let key = derive_signing_key(secret, date, region, service);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SIGNING_KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(scope_id.to_owned(), (secret.clone(), key.clone()));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_keys_match_derived_ones_and_follow_secret_changes() {
        let cache = SigningKeyCache::new();
        let a = SecretString::new("secret-a".into());
        let b = SecretString::new("secret-b".into());
        let k1 = cache.get_or_derive("AK", &a, "20150830", "us-east-1", "secretsmanager");
        let k2 = cache.get_or_derive("AK", &a, "20150830", "us-east-1", "secretsmanager");
        let d = derive_signing_key(&a, "20150830", "us-east-1", "secretsmanager");
        assert_eq!(k1.expose(), d.expose());
        assert_eq!(k2.expose(), d.expose());
        let kb = cache.get_or_derive("AK", &b, "20150830", "us-east-1", "secretsmanager");
        assert_eq!(
            kb.expose(),
            derive_signing_key(&b, "20150830", "us-east-1", "secretsmanager").expose()
        );
        assert!(!format!("{cache:?}").contains("secret"));
    }

    #[test]
    fn key_for_shares_entries_with_get_or_derive_and_follows_secret_changes() {
        let cache = SigningKeyCache::new();
        let a = SecretString::new("secret-a".into());
        let b = SecretString::new("secret-b".into());
        let id = "AK/20150830/us-east-1/secretsmanager";
        let derived = |s| derive_signing_key(s, "20150830", "us-east-1", "secretsmanager");
        let k = cache.key_for(id, &a, "20150830", "us-east-1", "secretsmanager");
        assert_eq!(&k[..], derived(&a).expose());
        let g = cache.get_or_derive("AK", &a, "20150830", "us-east-1", "secretsmanager");
        assert_eq!(g.expose(), derived(&a).expose());
        assert_eq!(cache.entries.read().map(|e| e.len()).ok(), Some(1));
        let k = cache.key_for(id, &b, "20150830", "us-east-1", "secretsmanager");
        assert_eq!(&k[..], derived(&b).expose());
        let k = cache.key_for(id, &b, "20150830", "us-east-1", "secretsmanager");
        assert_eq!(&k[..], derived(&b).expose());
    }

    #[test]
    fn parts_with_slashes_are_not_cached_and_do_not_collide() {
        let cache = SigningKeyCache::new();
        let a = SecretString::new("secret-a".into());
        let k1 = cache.get_or_derive("a/b", &a, "c", "r", "s");
        let k2 = cache.get_or_derive("a", &a, "b/c", "r", "s");
        assert_eq!(k1.expose(), derive_signing_key(&a, "c", "r", "s").expose());
        assert_eq!(
            k2.expose(),
            derive_signing_key(&a, "b/c", "r", "s").expose()
        );
        assert_eq!(cache.entries.read().map(|e| e.len()).ok(), Some(0));
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = SigningKeyCache::new();
        let a = SecretString::new("secret-a".into());
        for i in 0..SIGNING_KEY_CACHE_MAX + 3 {
            cache.get_or_derive(&format!("AK{i}"), &a, "20150830", "us-east-1", "sm");
        }
        let len = cache.entries.read().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!((1..=SIGNING_KEY_CACHE_MAX).contains(&len), "{len}");
    }
}
