//! Decisions remembered per caller identity: the read path asks the same question (this
//! user, GetSecretValue, this secret at this revision, from this address) thousands of
//! times a second, and the answer only changes when something in the key changes. The
//! key holds everything a decision reads that can differ between two requests of one
//! identity; what it does not hold (the identity's policies, the principal's tags) comes
//! with the identity, which is rebuilt whenever the directory changes, cache and all.
//! Policies that read the time are never cached (see `Policy::time_dependent`).

use arca_policy::Decision;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};

/// Entries kept per identity; past this the cache starts over.
const MAX_ENTRIES: usize = 4_096;

/// What one decision depends on besides the identity. Borrowed for lookups.
pub(crate) struct Question<'a> {
    pub operation: &'a str,
    /// The resource's ARN (or the id a missing secret was named by, or `*`).
    pub resource: &'a str,
    /// The secret record's revision (its tags, resource policy and primary region move
    /// with it); -1 for no record.
    pub revision: i64,
    pub region: &'a str,
    /// The request's own condition keys, canonical (see `Access::keys_fingerprint`).
    pub keys: &'a str,
    pub source_ip: Option<&'a str>,
    pub secure_transport: bool,
}

impl Question<'_> {
    fn hash_with(&self, state: &ahash::RandomState) -> u64 {
        let mut h = state.build_hasher();
        self.operation.hash(&mut h);
        self.resource.hash(&mut h);
        self.revision.hash(&mut h);
        self.region.hash(&mut h);
        self.keys.hash(&mut h);
        self.source_ip.hash(&mut h);
        self.secure_transport.hash(&mut h);
        h.finish()
    }

    fn is(&self, e: &Entry) -> bool {
        self.revision == e.revision
            && self.secure_transport == e.secure_transport
            && self.operation == &*e.operation
            && self.resource == &*e.resource
            && self.region == &*e.region
            && self.keys == &*e.keys
            && self.source_ip == e.source_ip.as_deref()
    }
}

/// An owned question and its answer. The full question is compared on every hit: a
/// hash collision never hands one request another's decision.
struct Entry {
    operation: Arc<str>,
    resource: Arc<str>,
    revision: i64,
    region: Arc<str>,
    keys: Arc<str>,
    source_ip: Option<Arc<str>>,
    secure_transport: bool,
    decision: Decision,
}

#[derive(Default)]
pub(crate) struct Decisions {
    state: ahash::RandomState,
    entries: RwLock<HashMap<u64, Vec<Entry>>>,
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decisions").finish_non_exhaustive()
    }
}

impl Decisions {
    pub(crate) fn get(&self, q: &Question) -> Option<Decision> {
        let h = q.hash_with(&self.state);
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&h)?
            .iter()
            .find(|e| q.is(e))
            .map(|e| e.decision)
    }

    pub(crate) fn put(&self, q: &Question, decision: Decision) {
        let h = q.hash_with(&self.state);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let bucket = entries.entry(h).or_default();
        if bucket.iter().any(|e| q.is(e)) {
            return;
        }
        bucket.push(Entry {
            operation: q.operation.into(),
            resource: q.resource.into(),
            revision: q.revision,
            region: q.region.into(),
            keys: q.keys.into(),
            source_ip: q.source_ip.map(Into::into),
            secure_transport: q.secure_transport,
            decision,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q<'a>(resource: &'a str, revision: i64, ip: Option<&'a str>) -> Question<'a> {
        Question {
            operation: "GetSecretValue",
            resource,
            revision,
            region: "us-east-1",
            keys: "",
            source_ip: ip,
            secure_transport: false,
        }
    }

    #[test]
    fn a_decision_is_found_only_for_the_same_question() {
        let d = Decisions::default();
        assert_eq!(d.get(&q("arn:a", 1, Some("10.0.0.1"))), None);
        d.put(&q("arn:a", 1, Some("10.0.0.1")), Decision::Allow);
        assert_eq!(
            d.get(&q("arn:a", 1, Some("10.0.0.1"))),
            Some(Decision::Allow)
        );
        // Another revision, address or resource is another question.
        assert_eq!(d.get(&q("arn:a", 2, Some("10.0.0.1"))), None);
        assert_eq!(d.get(&q("arn:a", 1, Some("10.0.0.2"))), None);
        assert_eq!(d.get(&q("arn:a", 1, None)), None);
        assert_eq!(d.get(&q("arn:b", 1, Some("10.0.0.1"))), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let d = Decisions::default();
        let names: Vec<String> = (0..MAX_ENTRIES + 10).map(|i| format!("arn:{i}")).collect();
        for n in &names {
            d.put(&q(n, 1, None), Decision::Allow);
        }
        let n = d.entries.read().unwrap().len();
        assert!(n <= MAX_ENTRIES, "{n}");
    }
}
