//! The read cache: secret records (metadata, tags, version labels) by ARN and by name,
//! each with its AWSCURRENT version found once and that version's sealed value kept beside
//! it, and other versions' sealed values by (ARN, version id). It holds no plaintext:
//! values stay sealed and are opened per request. Every write in this process invalidates what it changed; a
//! read that raced a write does not fill the cache (an epoch counter tells), so the cache
//! never serves a record older than the last write this process acknowledged. Writes by
//! other nodes arrive through the store's change feed (`feed`): each notice invalidates
//! the entry unless it already holds that revision, and while the feed is down the cache
//! serves nothing, since notices may be missed. A fill never replaces an entry with an
//! older revision of it.

use crate::stages::AWSCURRENT;
use arca_store::{AccessTouch, SecretRecord, VersionRecord};
use quick_cache::sync::Cache;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// One cached secret: its record, and what a plain GetSecretValue needs next (which version
/// is AWSCURRENT, and that version's sealed value) so that read makes one cache lookup.
pub(crate) struct Cached {
    pub(crate) record: SecretRecord,
    /// Index into `record.versions` of the AWSCURRENT version.
    current: Option<usize>,
    /// That version's sealed value, once a read fetched it. Sealed values never change and
    /// any write replaces the whole entry, so this can never be stale.
    current_sealed: OnceLock<Arc<Vec<u8>>>,
}

impl Cached {
    pub(crate) fn new(record: SecretRecord) -> Self {
        let current = record
            .versions
            .iter()
            .position(|v| v.stages.iter().any(|s| s == AWSCURRENT));
        Self {
            record,
            current,
            current_sealed: OnceLock::new(),
        }
    }

    /// As `new`, with the AWSCURRENT version's sealed value already in its slot when the
    /// store returned it with the record (from the same snapshot).
    pub(crate) fn with_current_sealed(
        record: SecretRecord,
        sealed: Option<arca_store::SealedValue>,
    ) -> Self {
        let entry = Self::new(record);
        if let (Some(sealed), Some(_)) = (sealed, entry.current) {
            let _ = entry.current_sealed.set(Arc::new(sealed.0));
        }
        entry
    }

    fn current_version(&self) -> Option<&VersionRecord> {
        self.current.and_then(|i| self.record.versions.get(i))
    }

    /// Index in `record.versions` of the version holding `stage` (AWSCURRENT's found once,
    /// when the entry was made).
    pub(crate) fn holder_index(&self, stage: &str) -> Option<usize> {
        if stage == AWSCURRENT {
            self.current
        } else {
            self.record
                .versions
                .iter()
                .position(|v| v.stages.iter().any(|s| s == stage))
        }
    }

    /// The slot for `version_id`'s sealed value, if it is the AWSCURRENT version.
    pub(crate) fn sealed_slot(&self, version_id: &str) -> Option<&OnceLock<Arc<Vec<u8>>>> {
        let current = self.current_version()?;
        (current.version_id == version_id).then_some(&self.current_sealed)
    }
}

impl std::ops::Deref for Cached {
    type Target = SecretRecord;
    fn deref(&self) -> &SecretRecord {
        &self.record
    }
}

/// A `(String, String)` key borrowed: it hashes as the owned pair does (fields in order,
/// as a tuple), so lookups on the read path allocate nothing.
#[derive(Hash)]
struct PairRef<'a>(&'a str, &'a str);

/// The region inside a secret ARN (`arn:aws:secretsmanager:<region>:...`).
fn region_in_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The secret name inside a secret ARN (`...:secret:<name>-<suffix>`).
fn name_in_arn(arn: &str) -> Option<&str> {
    let (_, resource) = arn.split_once(":secret:")?;
    let (name, suffix) = resource.rsplit_once('-')?;
    (suffix.len() == 6).then_some(name)
}

impl quick_cache::Equivalent<(String, String)> for PairRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// Entries per map. A cached record is typically a few hundred bytes, a sealed 1 KB
/// value about 1.1 KB: the defaults stay well under 200 MB.
pub const DEFAULT_CAPACITY: usize = 65_536;

pub(crate) struct ReadCache {
    /// Bumped by every invalidation; a fill that saw another epoch is dropped.
    epoch: AtomicU64,
    /// False while the change feed is down: lookups miss and fills are dropped.
    serving: AtomicBool,
    /// Bumped whenever the feed goes down or comes back: a write that began in another
    /// generation may have missed notices, so its record is not cached (`replace`).
    generation: AtomicU64,
    /// Orders fills against invalidations (both are off the hot path: misses and writes).
    fill_lock: Mutex<()>,
    by_arn: Cache<String, Arc<Cached>>,
    /// The same entries as `by_arn` (the same `Arc`s), by (region, name): a read by name
    /// costs one lookup. Both maps change together, under `fill_lock`.
    by_name: Cache<(String, String), Arc<Cached>>,
    /// Sealed values of versions other than the current one (those live in `Cached`).
    sealed: Cache<(String, String), Arc<Vec<u8>>>,
    /// The newest revision the change feed announced for each secret (`i64::MAX`: deleted).
    /// Nothing older is ever cached: a write of this node that committed before another
    /// node's newer one may finish after that one's notice arrived.
    heard: Cache<String, i64>,
}

impl ReadCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(16);
        Self {
            epoch: AtomicU64::new(0),
            serving: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            fill_lock: Mutex::new(()),
            by_arn: Cache::new(capacity),
            by_name: Cache::new(capacity),
            sealed: Cache::new(capacity),
            heard: Cache::new(capacity),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    pub(crate) fn by_arn(&self, arn: &str) -> Option<Arc<Cached>> {
        if !self.serving() {
            return None;
        }
        self.by_arn.get(arn)
    }

    pub(crate) fn by_name(&self, region: &str, name: &str) -> Option<Arc<Cached>> {
        if !self.serving() {
            return None;
        }
        self.by_name
            .get(&PairRef(region, name))
            .filter(|r| r.name == name && r.region == region)
    }

    /// Caches a record read from the store, unless a write happened since `seen_epoch`.
    pub(crate) fn fill(&self, record: Arc<Cached>, seen_epoch: u64) {
        let _g = self.fill_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.epoch() != seen_epoch || !self.serving() {
            return;
        }
        self.put(record);
    }

    /// A change another node (or this one) committed: `arn` is now at `revision`. An
    /// entry that holds it (this node's own write) stays; anything older goes, and fills
    /// in flight are dropped, since they may have read the store before the commit.
    pub(crate) fn changed(&self, arn: &str, revision: i64) {
        self.hear(arn, revision);
        if self.by_arn.get(arn).is_some_and(|e| e.revision >= revision) {
            return;
        }
        self.forget(arn);
    }

    /// A secret deleted for good (by any node): nothing of it is cached again.
    pub(crate) fn deleted(&self, arn: &str) {
        self.hear(arn, i64::MAX);
        self.forget(arn);
    }

    fn hear(&self, arn: &str, revision: i64) {
        let _g = self.fill_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.heard.get(arn).is_none_or(|r| r < revision) {
            self.heard.insert(arn.to_owned(), revision);
        }
    }

    /// Drops `arn`'s entries (and fills in flight), cached or not: a notice carries only
    /// the ARN, which holds the region and the name.
    fn forget(&self, arn: &str) {
        self.invalidate(region_in_arn(arn).unwrap_or_default(), "", arn);
    }

    /// The change feed is down (`false`: serve nothing, since changes may be missed) or
    /// back (`true`: start empty, for the same reason).
    pub(crate) fn set_serving(&self, serving: bool) {
        let _g = self.fill_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.serving.store(serving, Ordering::Release);
        self.by_arn.clear();
        self.by_name.clear();
    }

    /// Both maps at once; the caller holds `fill_lock`. A current version's sealed value
    /// already fetched carries over to the new entry if that version is still current, and
    /// moves to the map of sealed values if it is not (or if the entry is dropped), so no
    /// sealed value this process has read is fetched from the store twice.
    fn put(&self, record: Arc<Cached>) {
        if let Some(old) = self.by_arn.get(&record.arn) {
            if old.revision > record.revision {
                // Never step back: what this node served stays the oldest it may serve.
                return;
            }
        }
        if self
            .heard
            .get(&record.arn)
            .is_some_and(|r| r > record.revision)
        {
            // Another node already committed a newer revision (or deleted it).
            self.drop_locked(&record.region, &record.name, &record.arn);
            return;
        }
        if let Some(old) = self.by_arn.get(&record.arn) {
            let still_current = matches!(
                (old.current_version(), record.current_version()),
                (Some(a), Some(b)) if a.version_id == b.version_id
            );
            match old.current_sealed.get() {
                Some(sealed) if still_current => {
                    let _ = record.current_sealed.set(sealed.clone());
                }
                _ => self.keep_current_sealed(&old),
            }
        }
        self.by_name
            .insert((record.region.clone(), record.name.clone()), record.clone());
        self.by_arn.insert(record.arn.clone(), record);
    }

    /// Moves an entry's current sealed value, if fetched, into the map of sealed values.
    fn keep_current_sealed(&self, entry: &Cached) {
        if let (Some(v), Some(sealed)) = (entry.current_version(), entry.current_sealed.get()) {
            self.fill_sealed(&entry.arn, &v.version_id, sealed.clone());
        }
    }

    /// Shows a read's access day in the cached record before the store has it.
    pub(crate) fn note_access(&self, arn: &str, version_id: &str, day: i64) {
        let _g = self.fill_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = self.by_arn.get(arn) else {
            return;
        };
        let has_day = |d: Option<i64>| d.is_some_and(|d| d >= day);
        let version = entry.versions.iter().find(|v| v.version_id == version_id);
        if has_day(entry.last_accessed_day) && version.is_none_or(|v| has_day(v.last_accessed_day))
        {
            return;
        }
        let mut rec = entry.record.clone();
        rec.mark_accessed(version_id, day);
        self.put(Arc::new(Cached::new(rec)));
    }

    /// After access dates were written: fills of records read before the write are
    /// dropped (epoch), and entries that got filled without the day before that get it
    /// back, so a cached record never shows an older access date than the store.
    pub(crate) fn touched(&self, touches: &[AccessTouch]) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for t in touches {
            // One at a time, so misses filling meanwhile wait for one update, not a batch.
            self.note_access(&t.arn, &t.version_id, t.day);
        }
    }

    pub(crate) fn sealed(&self, arn: &str, version_id: &str) -> Option<Arc<Vec<u8>>> {
        self.sealed.get(&PairRef(arn, version_id))
    }

    /// A version's sealed value never changes, so it can be cached whenever read.
    pub(crate) fn fill_sealed(&self, arn: &str, version_id: &str, sealed: Arc<Vec<u8>>) {
        self.sealed
            .insert((arn.to_owned(), version_id.to_owned()), sealed);
    }

    /// What a writer notes before its store write, for `replace_since`.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Puts the record a write just committed (the writer holds the secret's write lock, so
    /// nothing newer exists in this process); fills that raced the write are dropped by the
    /// epoch bump. `written` are the sealed values of the versions the write created: the
    /// new current version's is put in its slot, so the first read after a write needs no
    /// store read. Unless the change feed went down or came back since the writer noted
    /// `generation`: notices of other nodes' newer writes may have been missed meanwhile,
    /// so the record is only forgotten.
    pub(crate) fn replace_since(
        &self,
        generation: u64,
        record: SecretRecord,
        written: &[(&str, &[u8])],
    ) {
        self.replace_checked(Some(generation), record, written);
    }

    #[cfg(test)]
    pub(crate) fn replace(&self, record: SecretRecord, written: &[(&str, &[u8])]) {
        self.replace_checked(None, record, written);
    }

    fn replace_checked(
        &self,
        generation: Option<u64>,
        record: SecretRecord,
        written: &[(&str, &[u8])],
    ) {
        let entry = Cached::new(record);
        if let Some(v) = entry.current_version() {
            if let Some((_, sealed)) = written.iter().find(|(id, _)| *id == v.version_id) {
                let _ = entry.current_sealed.set(Arc::new(sealed.to_vec()));
            }
        }
        let _g = self.fill_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Checked under the lock that `set_serving` takes, so a feed outage cannot slip in
        // between the check and the put.
        if generation.is_some_and(|g| g != self.generation()) {
            self.drop_locked(&entry.region, &entry.name, &entry.arn);
            return;
        }
        self.put(Arc::new(entry));
    }

    /// Forgets a secret (after any write to it). Its sealed values stay: they are
    /// immutable, and reachable only through a record that still lists their version.
    pub(crate) fn invalidate(&self, region: &str, name: &str, arn: &str) {
        let _g = self.fill_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.drop_locked(region, name, arn);
    }

    /// `invalidate`'s removal, for a caller holding `fill_lock`.
    fn drop_locked(&self, region: &str, name: &str, arn: &str) {
        if let Some(old) = self.by_arn.get(arn) {
            self.keep_current_sealed(&old);
        }
        self.by_arn.remove(arn);
        self.by_name.remove(&PairRef(region, name));
        // A caller without the name (the purge, a notice) still drops the name entry,
        // even one whose ARN entry was evicted: every ARN ends in
        // `secret:<name>-<6-character suffix>`.
        if let Some(n) = name_in_arn(arn).filter(|n| *n != name) {
            self.by_name.remove(&PairRef(region, n));
        }
    }

    /// Forgets a secret known only by ARN (its entry gives the region and name).
    pub(crate) fn invalidate_arn(&self, arn: &str) {
        if let Some(entry) = self.by_arn.get(arn) {
            self.invalidate(&entry.region, &entry.name, arn);
        }
    }

    pub(crate) fn clear(&self) {
        let _g = self.fill_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.by_arn.clear();
        self.by_name.clear();
        self.sealed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, arn: &str) -> SecretRecord {
        SecretRecord {
            region: "us-east-1".into(),
            arn: arn.into(),
            name: name.into(),
            description: None,
            kms_key_id: None,
            secret_type: None,
            owning_service: None,
            primary_region: None,
            created_at: 0,
            last_changed_at: 0,
            last_accessed_day: None,
            deleted_at: None,
            purge_at: None,
            extra: serde_json::Value::Null,
            tags: vec![],
            versions: vec![],
            revision: 1,
            rotation_due_at: None,
        }
    }

    #[test]
    fn a_fill_that_raced_a_write_is_dropped() {
        let c = ReadCache::new(16);
        let seen = c.epoch();
        c.invalidate("us-east-1", "a", "arn:a");
        c.fill(Arc::new(Cached::new(rec("a", "arn:a"))), seen);
        assert!(c.by_arn("arn:a").is_none());
        c.fill(Arc::new(Cached::new(rec("a", "arn:a"))), c.epoch());
        assert!(c.by_name("us-east-1", "a").is_some());
        assert!(c.by_name("eu-west-1", "a").is_none());
        c.invalidate("us-east-1", "a", "arn:a");
        assert!(c.by_name("us-east-1", "a").is_none());
    }

    #[test]
    fn invalidating_by_arn_alone_forgets_the_name_too() {
        // The purge knows only (region, ARN); a read by name must not find the record.
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-pw-AbC123";
        let c = ReadCache::new(16);
        c.fill(Arc::new(Cached::new(rec("app/db-pw", arn))), c.epoch());
        assert!(c.by_name("us-east-1", "app/db-pw").is_some());
        c.invalidate("us-east-1", "", arn);
        assert!(c.by_name("us-east-1", "app/db-pw").is_none());
        assert!(c.by_arn(arn).is_none());
        assert_eq!(name_in_arn(arn), Some("app/db-pw"));
        assert_eq!(name_in_arn("arn:a"), None);
    }

    fn version(id: &str, stages: &[&str]) -> VersionRecord {
        VersionRecord {
            version_id: id.into(),
            stages: stages.iter().map(|s| s.to_string()).collect(),
            created_at: 0,
            last_accessed_day: None,
            kms_key_ids: vec![],
            value_digest: vec![],
            has_value: true,
        }
    }

    #[test]
    fn the_current_version_and_its_sealed_value_sit_in_the_entry() {
        let mut r = rec("a", "arn:a");
        r.versions = vec![
            version("v1", &["AWSPREVIOUS"]),
            version("v2", &["AWSCURRENT"]),
        ];
        let e = Cached::new(r.clone());
        assert_eq!(e.holder_index("AWSCURRENT"), Some(1));
        assert_eq!(e.holder_index("AWSPREVIOUS"), Some(0));
        assert!(e.holder_index("AWSPENDING").is_none());
        assert!(
            e.sealed_slot("v1").is_none(),
            "only the current version has a slot"
        );
        let slot = e.sealed_slot("v2").expect("current version");
        slot.set(Arc::new(vec![1, 2, 3])).expect("empty slot");

        let c = ReadCache::new(16);
        c.fill(Arc::new(e), c.epoch());
        // A write that keeps v2 current (a tag change): the sealed value carries over.
        c.replace(r.clone(), &[]);
        let kept = c.by_arn("arn:a").expect("cached");
        assert_eq!(
            kept.sealed_slot("v2")
                .and_then(|s| s.get())
                .map(|v| v.len()),
            Some(3)
        );
        // A write that makes v3 current: nothing carries over to the new current version.
        r.versions = vec![
            version("v2", &["AWSPREVIOUS"]),
            version("v3", &["AWSCURRENT"]),
        ];
        c.replace(r, &[]);
        let moved = c.by_arn("arn:a").expect("cached");
        assert!(moved.sealed_slot("v3").expect("current").get().is_none());
        assert!(moved.sealed_slot("v2").is_none());
        // v2's sealed value is not lost: it moved to the map of other versions' values.
        assert_eq!(c.sealed("arn:a", "v2").map(|v| v.len()), Some(3));
    }

    #[test]
    fn a_write_fills_the_new_current_slot_and_invalidation_keeps_sealed_values() {
        let mut r = rec("a", "arn:a");
        r.versions = vec![version("v1", &["AWSCURRENT"])];
        let c = ReadCache::new(16);
        c.replace(r.clone(), &[("v1", &[9, 9][..])]);
        let e = c.by_arn("arn:a").expect("cached");
        assert_eq!(
            e.sealed_slot("v1").and_then(|s| s.get()).map(|v| v.len()),
            Some(2)
        );
        // A version the write did not create gets no slot filled from `written`.
        r.versions = vec![
            version("v1", &["AWSPREVIOUS"]),
            version("v2", &["AWSCURRENT"]),
        ];
        c.replace(r, &[("v9", &[1][..])]);
        let e = c.by_arn("arn:a").expect("cached");
        assert!(e.sealed_slot("v2").expect("current").get().is_none());
        assert_eq!(c.sealed("arn:a", "v1").map(|v| v.len()), Some(2));
        e.sealed_slot("v2")
            .expect("current")
            .set(Arc::new(vec![7]))
            .expect("empty");
        c.invalidate("us-east-1", "a", "arn:a");
        assert!(c.by_arn("arn:a").is_none());
        assert_eq!(c.sealed("arn:a", "v2").map(|v| v.len()), Some(1));
    }

    #[test]
    fn nothing_older_than_a_notice_is_cached_and_a_deleted_secret_never_again() {
        let c = ReadCache::new(16);
        let mut r = rec("a", "arn:a");
        r.revision = 3;
        c.replace(r.clone(), &[]);
        // Another node's notice for revision 3: this node's own entry holds it, it stays.
        c.changed("arn:a", 3);
        assert_eq!(c.by_arn("arn:a").map(|e| e.revision), Some(3));
        // Revision 5 committed elsewhere; this node's own write of revision 4 finishing
        // late must not be cached over it.
        c.changed("arn:a", 5);
        assert!(c.by_arn("arn:a").is_none());
        r.revision = 4;
        c.replace(r.clone(), &[]);
        assert!(
            c.by_arn("arn:a").is_none(),
            "revision 4 after a notice of 5"
        );
        r.revision = 5;
        c.fill(Arc::new(Cached::new(r.clone())), c.epoch());
        assert_eq!(c.by_arn("arn:a").map(|e| e.revision), Some(5));
        // Never a step back, even without a notice.
        r.revision = 2;
        c.fill(Arc::new(Cached::new(r.clone())), c.epoch());
        assert_eq!(c.by_arn("arn:a").map(|e| e.revision), Some(5));
        c.deleted("arn:a");
        r.revision = 9;
        c.fill(Arc::new(Cached::new(r)), c.epoch());
        assert!(c.by_arn("arn:a").is_none() && c.by_name("us-east-1", "a").is_none());
    }

    #[test]
    fn a_notice_drops_the_name_entry_even_when_the_arn_entry_was_evicted() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbC123";
        let c = ReadCache::new(16);
        c.replace(rec("app/db", arn), &[]);
        // The ARN map evicted its entry on its own; reads by name still find the record.
        c.by_arn.remove(arn);
        assert!(c.by_name("us-east-1", "app/db").is_some());
        c.changed(arn, 7);
        assert!(c.by_name("us-east-1", "app/db").is_none());
    }

    #[test]
    fn a_write_that_began_before_a_feed_outage_is_not_cached() {
        let c = ReadCache::new(16);
        let before = c.generation();
        c.set_serving(false);
        c.set_serving(true);
        c.replace_since(before, rec("a", "arn:a"), &[]);
        assert!(c.by_arn("arn:a").is_none());
        c.replace_since(c.generation(), rec("a", "arn:a"), &[]);
        assert!(c.by_arn("arn:a").is_some());
    }

    #[test]
    fn while_the_feed_is_down_nothing_is_served() {
        let c = ReadCache::new(16);
        c.replace(rec("a", "arn:a"), &[]);
        c.set_serving(false);
        assert!(c.by_arn("arn:a").is_none());
        c.fill(Arc::new(Cached::new(rec("a", "arn:a"))), c.epoch());
        assert!(c.by_name("us-east-1", "a").is_none());
        c.set_serving(true);
        assert!(
            c.by_arn("arn:a").is_none(),
            "the cache starts empty when the feed is back"
        );
        c.fill(Arc::new(Cached::new(rec("a", "arn:a"))), c.epoch());
        assert!(c.by_arn("arn:a").is_some());
    }
}
