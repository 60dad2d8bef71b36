//! The operations, grouped by what they touch: `secrets` (create, update, delete, restore,
//! tags, describe), `values` (read and write versions and labels), `list` (ListSecrets,
//! BatchGetSecretValue by filter, the purge). This module holds what they share: finding
//! a secret from a SecretId, sealing and opening values, and the optimistic-retry loop.

mod list;
mod policy;
mod secrets;
mod values;

use crate::cache::Cached;
use crate::value::Value;
use crate::{replication, store_err, Arca, RequestCtx};
use arca_store::{SealedValue, SecretChange, SecretKey, SecretRecord, StoreError, VersionRecord};
use arca_types::arn::SecretRef;
use arca_types::time::to_wire;
use arca_types::wire::{DescribeSecretResponse, Tag};
use arca_types::ApiError;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Whether the caller may see the secret with ARN `found` (None: no such secret). A scoped
/// key sees its one secret and nothing else, not even whether another exists.
/// A key scoped to a name may also learn that its own name does not exist (it may
/// create it); asked for any other name, it learns nothing.
fn scope_allows(
    ctx: &RequestCtx,
    secret_id: &str,
    found: Option<(&str, &str)>,
) -> Result<(), ApiError> {
    match (&ctx.only_secret, found) {
        (Some(scope), Some((arn, name))) if !scope.allows(arn, name) => {
            Err(ApiError::access_denied())
        }
        (Some(crate::SecretScope::Name(n)), None)
            if *n == arca_types::arn::secret_name_of(secret_id) =>
        {
            Ok(())
        }
        (Some(_), None) => Err(ApiError::access_denied()),
        _ => Ok(()),
    }
}

/// What a decision about `secret_id` is on: the secret found, or the one named.
fn target<'a>(secret_id: &'a str, found: Option<&'a SecretRecord>) -> crate::authz::Target<'a> {
    match found {
        Some(record) => crate::authz::Target::Secret {
            record,
            id: secret_id,
        },
        None => crate::authz::Target::Missing(secret_id),
    }
}

/// Notes in the call's audit record which secret it is about.
fn note_found(ctx: &RequestCtx, found: Option<&str>) {
    if let (Some(call), Some(arn)) = (&ctx.call, found) {
        call.found(arn);
    }
}

/// Who writes: a client's operation, or the replication machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    Client,
    Replication,
}

/// How many times a write is retried when another write to the same secret won the race.
const MAX_WRITE_ATTEMPTS: usize = 16;

impl Arca {
    /// Finds a secret by name, full ARN, or partial ARN (the ARN without its random
    /// suffix), in the request's region only.
    pub(crate) async fn lookup(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
    ) -> Result<Option<SecretRecord>, ApiError> {
        let found = self.lookup_unscoped(ctx, secret_id, false).await?;
        self.check_scope(ctx, secret_id, found)
    }

    /// As `lookup`, but straight from the store: what a read-modify-write must start from.
    pub(crate) async fn lookup_fresh(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
    ) -> Result<Option<SecretRecord>, ApiError> {
        let found = self.lookup_unscoped(ctx, secret_id, true).await?;
        self.check_scope(ctx, secret_id, found)
    }

    fn check_scope(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
        found: Option<SecretRecord>,
    ) -> Result<Option<SecretRecord>, ApiError> {
        note_found(ctx, found.as_ref().map(|s| s.arn.as_str()));
        scope_allows(
            ctx,
            secret_id,
            found.as_ref().map(|s| (s.arn.as_str(), s.name.as_str())),
        )?;
        self.authorize(ctx, target(secret_id, found.as_ref()))?;
        Ok(found)
    }

    async fn lookup_unscoped(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
        fresh: bool,
    ) -> Result<Option<SecretRecord>, ApiError> {
        Ok(self
            .lookup_shared_unscoped(ctx, secret_id, fresh)
            .await?
            .map(|c| Arc::try_unwrap(c).map_or_else(|c| c.record.clone(), |c| c.record)))
    }

    /// As `lookup`, but the cache's shared entry (no copy of the record).
    pub(crate) async fn lookup_shared(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
    ) -> Result<Option<Arc<Cached>>, ApiError> {
        self.lookup_shared_as(ctx, secret_id, None).await
    }

    /// As `lookup_shared`, authorized for `operation` rather than the request's own
    /// (a batch's members are each a GetSecretValue).
    pub(crate) async fn lookup_shared_as(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
        operation: Option<&str>,
    ) -> Result<Option<Arc<Cached>>, ApiError> {
        let found = self.lookup_shared_unscoped(ctx, secret_id, false).await?;
        note_found(ctx, found.as_ref().map(|s| s.arn.as_str()));
        scope_allows(
            ctx,
            secret_id,
            found
                .as_ref()
                .map(|s| (s.record.arn.as_str(), s.record.name.as_str())),
        )?;
        let target = target(secret_id, found.as_ref().map(|c| &c.record));
        match operation {
            Some(op) => self.authorize_as(ctx, op, target)?,
            None => self.authorize(ctx, target)?,
        }
        Ok(found)
    }

    /// The read path's lookup: a shared record, straight from the cache when it is there
    /// (no copy of the record per request).
    pub(crate) async fn must_find_shared(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
    ) -> Result<Arc<Cached>, ApiError> {
        self.lookup_shared(ctx, secret_id)
            .await?
            .ok_or_else(ApiError::secret_not_found)
    }

    async fn lookup_shared_unscoped(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
        fresh: bool,
    ) -> Result<Option<Arc<Cached>>, ApiError> {
        // A name names a secret of the caller's own account: another account's holds
        // none in this deployment (see `Arca::foreign`).
        if self.foreign(ctx) && matches!(SecretRef::parse(secret_id), SecretRef::Name(_)) {
            return Ok(None);
        }
        if !fresh {
            let cached = match SecretRef::parse(secret_id) {
                SecretRef::Name(name) => self.cache.by_name(&ctx.region, &name),
                SecretRef::Arn { arn, .. } => self.cache.by_arn(&arn),
            };
            if let Some(rec) = cached {
                if rec.region == ctx.region {
                    return Ok(Some(rec));
                }
            }
        }
        let epoch = self.cache.epoch();
        let found = self
            .lookup_in_store_with_current(ctx, secret_id)
            .await?
            .map(|(r, sealed)| Arc::new(Cached::with_current_sealed(r, sealed)));
        if let Some(rec) = &found {
            self.cache.fill(rec.clone(), epoch);
        }
        Ok(found)
    }

    /// Resolves `secret_id` (a name, a full ARN, or a partial ARN naming the secret by its
    /// name) in the store, with the AWSCURRENT version's sealed value where the store
    /// fetches it in the same query.
    async fn lookup_in_store_with_current(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
    ) -> Result<Option<(SecretRecord, Option<SealedValue>)>, ApiError> {
        let region = ctx.region.as_str();
        let mut found = match SecretRef::parse(secret_id) {
            SecretRef::Name(name) => {
                self.store
                    .find_with_current(region, SecretKey::Name(&name))
                    .await
            }
            SecretRef::Arn {
                arn,
                region: in_arn,
                account,
                resource,
            } => {
                if in_arn != region || account != self.account {
                    return Ok(None);
                }
                match self
                    .store
                    .find_with_current(region, SecretKey::Arn(&arn))
                    .await
                {
                    Ok(Some(s)) => Ok(Some(s)),
                    // Not a full ARN: a partial ARN names the secret by its name.
                    Ok(None) => {
                        self.store
                            .find_with_current(region, SecretKey::Name(&resource))
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
        }
        .map_err(store_err)?;
        if let Some((r, _)) = &mut found {
            self.reads.overlay(r);
        }
        Ok(found)
    }

    pub(crate) async fn must_find(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
    ) -> Result<SecretRecord, ApiError> {
        self.lookup(ctx, secret_id)
            .await?
            .ok_or_else(ApiError::secret_not_found)
    }

    /// Seals a value for one version under the secret's key.
    pub(crate) fn seal(
        &self,
        key_id: &str,
        arn: &str,
        version_id: &str,
        value: &Value,
    ) -> Result<Vec<u8>, ApiError> {
        self.keys
            .keyring()
            .seal(key_id, arn, version_id, &value.to_plaintext())
            .map_err(|e| {
                tracing::error!(error = %e, "sealing a secret value failed");
                ApiError::encryption_failure()
            })
    }

    /// Opens one version's value. `slot` is where the cache keeps this version's sealed
    /// value beside its record (the AWSCURRENT version): read from there, filled on a miss.
    pub(crate) async fn open(
        &self,
        arn: &str,
        version_id: &str,
        slot: Option<&OnceLock<Arc<Vec<u8>>>>,
    ) -> Result<Value, ApiError> {
        let fetched;
        let sealed: &[u8] = match slot.and_then(OnceLock::get) {
            Some(s) => s,
            None => {
                fetched = self.sealed(arn, version_id, slot.is_none()).await?;
                if let Some(slot) = slot {
                    let _ = slot.set(fetched.clone());
                }
                &fetched
            }
        };
        let decryption_failure = ApiError::decryption_failure;
        let open = || self.keys.keyring().open(arn, version_id, sealed);
        let plain = match open() {
            // A key another node created after this one loaded its keys.
            Err(arca_crypto::CryptoError::UnknownKey(_)) => {
                if let Err(e) = self.keys.reload().await {
                    tracing::warn!(error = %e, "rereading encryption keys failed");
                }
                open()
            }
            other => other,
        }
        .map_err(|e| {
            tracing::error!(error = %e, "opening a sealed secret value failed");
            decryption_failure()
        })?;
        Value::from_plaintext(plain).ok_or_else(decryption_failure)
    }

    /// A version's sealed value from the cache or the store; kept in the cache's map of
    /// sealed values when `keep` (values with a slot of their own are kept there instead).
    async fn sealed(
        &self,
        arn: &str,
        version_id: &str,
        keep: bool,
    ) -> Result<Arc<Vec<u8>>, ApiError> {
        if let Some(s) = self.cache.sealed(arn, version_id) {
            return Ok(s);
        }
        let s = Arc::new(
            self.store
                .get_sealed_value(arn, version_id)
                .await
                .map_err(store_err)?
                .ok_or_else(ApiError::secret_not_found)?
                .0,
        );
        if keep {
            self.cache.fill_sealed(arn, version_id, s.clone());
        }
        Ok(s)
    }

    pub(crate) fn digest(&self, arn: &str, value: &Value) -> Vec<u8> {
        self.keys
            .digest()
            .value_digest(arn, value.is_binary(), value.bytes())
    }

    /// AWS's answer to a write in a replica's region, for checks that come before `modify`.
    pub(crate) async fn refuse_replica(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
    ) -> Result<(), ApiError> {
        match self.lookup(ctx, secret_id).await? {
            Some(s) if replication::is_replica(&s) => Err(ApiError::replica_write()),
            _ => Ok(()),
        }
    }

    /// Runs read-modify-write `f` on one secret until it commits without a concurrent
    /// change in between. `f` returns the change to apply (None: nothing to write) and
    /// the operation's result. Writers of one secret in this process queue on a striped
    /// lock, so they don't race each other; the store's revision check still guards
    /// against writers in other processes sharing the database.
    pub(crate) async fn modify<T>(
        &self,
        ctx: &RequestCtx,
        secret_id: &str,
        f: impl FnMut(SecretRecord) -> Result<(Option<SecretChange>, T), ApiError>,
    ) -> Result<T, ApiError> {
        self.modify_as(Writer::Client, ctx, secret_id, f).await
    }

    /// `modify` for `writer`. A client's write is refused on a replica, and queues a
    /// delivery to each replica region of a primary, in the same transaction; the
    /// replication machinery's own writes (a replica brought up to date, a status) do
    /// neither.
    pub(crate) async fn modify_as<T>(
        &self,
        writer: Writer,
        ctx: &RequestCtx,
        secret_id: &str,
        mut f: impl FnMut(SecretRecord) -> Result<(Option<SecretChange>, T), ApiError>,
    ) -> Result<T, ApiError> {
        let arn = self.must_find(ctx, secret_id).await?.arn;
        let _guard = self.write_locks.lock(&arn).await;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            // Read under the lock. The cache holds what this process last wrote (writes
            // update it before the lock is released); after a conflict, which only a
            // writer in another process can cause, read the store itself.
            let secret = if attempt == 0 {
                self.lookup(ctx, secret_id).await?
            } else {
                self.lookup_fresh(ctx, secret_id).await?
            }
            .ok_or_else(ApiError::secret_not_found)?;
            if writer == Writer::Client && replication::is_replica(&secret) {
                return Err(ApiError::replica_write());
            }
            let (change, out) = f(secret)?;
            let Some(mut change) = change else {
                return Ok(out);
            };
            if writer == Writer::Client {
                replication::enqueue_syncs(&mut change, self.now());
            }
            // The call's record commits with its first write (later writes of the same
            // call, if any, are part of what that record describes).
            let call = ctx.unrecorded_call();
            change.audit = call
                .map(|c| {
                    let s = &change.secret;
                    let response =
                        crate::audit::response_elements(&c.event_name, &s.arn, &s.name, s.purge_at);
                    vec![c.entry(&self.account, Some(response), None)]
                })
                .unwrap_or_default();
            // What the service did on its own goes in the trail too, in the same commit,
            // and so do the deliveries the records' events owe.
            for e in &change.events {
                change
                    .audit
                    .push(crate::audit::service_event(&self.account, e));
            }
            change.deliveries = self.route(&change.audit);
            change.fence = ctx.fence.clone();
            let generation = self.cache.generation();
            let result = self.store.update_secret(&change).await;
            match result {
                Ok(()) => {
                    if let Some(c) = call {
                        c.mark_recorded();
                    }
                    if !change.outbox.is_empty() {
                        self.wake_replication();
                    }
                    if !change.deliveries.is_empty() {
                        self.delivery_wakeup.notify_one();
                    }
                    let written: Vec<(&str, &[u8])> = change
                        .new_versions
                        .iter()
                        .map(|n| (n.version.version_id.as_str(), n.sealed.0.as_slice()))
                        .collect();
                    self.cache
                        .replace_since(generation, applied(&change), &written);
                    return Ok(out);
                }
                Err(StoreError::Conflict) => {
                    let s = &change.secret;
                    self.cache.invalidate(&s.region, &s.name, &s.arn);
                    continue;
                }
                Err(e) => {
                    let s = &change.secret;
                    self.cache.invalidate(&s.region, &s.name, &s.arn);
                    return Err(match e {
                        StoreError::NotFound => ApiError::secret_not_found(),
                        e => store_err(e),
                    });
                }
            }
        }
        tracing::warn!("giving up on a write after repeated concurrent conflicts");
        Err(ApiError::internal())
    }

    pub(crate) fn describe(&self, s: &SecretRecord, list_form: bool) -> DescribeSecretResponse {
        let stages = versions_to_stages(&s.versions);
        let stages = if stages.is_empty() {
            None
        } else {
            Some(stages)
        };
        let (v2s, sv2s) = if list_form {
            (None, stages)
        } else {
            (stages, None)
        };
        let mut out = DescribeSecretResponse {
            arn: s.arn.clone(),
            name: s.name.clone(),
            secret_type: s.secret_type.clone(),
            // An empty Description is no Description (recorded: a secret created with
            // Description="" shows none).
            description: s.description.clone().filter(|d| !d.is_empty()),
            kms_key_id: s.kms_key_id.clone(),
            last_changed_date: Some(to_wire(s.last_changed_at)),
            last_accessed_date: s.last_accessed_day.map(to_wire),
            deleted_date: s.deleted_at.map(to_wire),
            // Absent until the secret first has a tag; `[]` once they were all removed
            // (recorded: LocalStack test_secret_tags).
            tags: if s.tags.is_empty() && !ever_tagged(s) {
                None
            } else {
                Some(wire_tags(&s.tags))
            },
            version_ids_to_stages: v2s,
            secret_versions_to_stages: sv2s,
            owning_service: s.owning_service.clone(),
            created_date: Some(to_wire(s.created_at)),
            primary_region: s.primary_region.clone(),
            ..Default::default()
        };
        crate::rotation::describe_rotation(s, &mut out);
        out
    }
}

pub(crate) fn versions_to_stages(versions: &[VersionRecord]) -> BTreeMap<String, Vec<String>> {
    versions
        .iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| (v.version_id.clone(), v.stages.clone()))
        .collect()
}

/// Where the record keeps that it once had tags (metadata, in `extra`, so no schema
/// change: `"tagged": true`).
const TAGGED: &str = "tagged";

pub(crate) fn ever_tagged(s: &SecretRecord) -> bool {
    s.extra.get(TAGGED).and_then(serde_json::Value::as_bool) == Some(true)
}

/// Notes that `s` once had tags, whether or not it has any now (a replica copying its
/// primary's flag).
pub(crate) fn mark_ever_tagged(s: &mut SecretRecord) {
    if !s.extra.is_object() {
        s.extra = serde_json::json!({});
    }
    if let Some(obj) = s.extra.as_object_mut() {
        obj.insert(TAGGED.into(), serde_json::Value::Bool(true));
    }
}

/// Notes that `s` has tags now (if it has), for `ever_tagged`.
pub(crate) fn note_tagged(s: &mut SecretRecord) {
    if !s.tags.is_empty() && !ever_tagged(s) {
        mark_ever_tagged(s);
    }
}

pub(crate) fn wire_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// Refuses operations that are not about one secret to a scoped caller.
pub(crate) fn ensure_unscoped(ctx: &RequestCtx) -> Result<(), ApiError> {
    if ctx.only_secret.is_some() {
        return Err(ApiError::access_denied());
    }
    Ok(())
}

/// AWS's answer to any value read or change of a secret scheduled for deletion.
pub(crate) fn ensure_not_deleted(s: &SecretRecord) -> Result<(), ApiError> {
    if s.deleted_at.is_some() {
        return Err(ApiError::marked_for_deletion());
    }
    Ok(())
}

/// The record as the store holds it after `change` applied: what `change.secret` says,
/// with its versions less the removed ones, restaged, plus the new ones (oldest first).
pub(crate) fn applied(change: &SecretChange) -> SecretRecord {
    let mut rec = change.secret.clone();
    rec.revision = change.expected_revision + 1;
    rec.versions
        .retain(|v| !change.removed_versions.contains(&v.version_id));
    for (id, stages) in &change.restaged {
        if let Some(v) = rec.versions.iter_mut().find(|v| &v.version_id == id) {
            v.stages = stages.clone();
        }
    }
    rec.versions
        .extend(change.new_versions.iter().map(|n| n.version.clone()));
    rec
}

/// A change that rewrites `secret`'s metadata and nothing else.
pub(crate) fn metadata_change(secret: SecretRecord) -> SecretChange {
    SecretChange {
        expected_revision: secret.revision,
        secret,
        new_versions: Vec::new(),
        restaged: Vec::new(),
        removed_versions: Vec::new(),
        events: Vec::new(),
        outbox: Vec::new(),
        audit: Vec::new(),
        deliveries: Vec::new(),
        fence: None,
    }
}
