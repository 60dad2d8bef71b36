//! The audit trail's records and the hash chain that makes tampering evident. One chain,
//! global (across regions), in the order records are appended: every record carries the
//! hash of the one before, so an edited, deleted or reordered row breaks the chain at
//! that row. Backends assign `seq` and compute the hashes on append, inside the
//! transaction that appends, with [`chain_hash`]; `arca audit verify` recomputes them.

use arca_types::time::Millis;
use sha2::{Digest, Sha256};

/// The hash the first record chains to.
pub const GENESIS: [u8; 32] = [0; 32];

/// One record to append: an API call (CloudTrail's `AwsApiCall`) or something the
/// service did on its own (`AwsServiceEvent`). The columns a query filters on are fields
/// of their own; the rest of the CloudTrail record is `detail`, a JSON object that
/// arca-core renders and no backend interprets. Never holds secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub time: Millis,
    /// CloudTrail's eventID: a random UUID.
    pub event_id: String,
    /// "AwsApiCall" or "AwsServiceEvent".
    pub event_type: String,
    pub event_name: String,
    pub region: String,
    pub read_only: bool,
    /// The caller's access key id, as it signed (None for service events and unsigned calls).
    pub access_key_id: Option<String>,
    /// The secret involved: its ARN when the call found it, else the SecretId as given.
    pub resource: Option<String>,
    /// The error the call ended with (e.g. "ResourceNotFoundException"), None on success.
    pub error_code: Option<String>,
    /// 0 for one record; N for a batch of N calls' records in one entry (reads, refused
    /// calls: arca-core packs them so that a read costs a few bytes of a shared row, not
    /// a row). A batch's other columns are not those of its calls: queries return every
    /// batch in their seq and time bounds, and arca-core filters the calls.
    pub batch: u32,
    /// The rest of the record (identity, source address, user agent, request parameters,
    /// response elements, error message, request id), as JSON text.
    pub detail: String,
}

/// A stored record: its place in the chain and its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Assigned on append: 1, 2, 3, ... in commit order, never reused (a gap is a
    /// deleted record).
    pub seq: i64,
    pub entry: AuditEntry,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: Vec<u8>,
    /// `chain_hash(prev_hash, seq, entry)`.
    pub hash: Vec<u8>,
}

/// Which records to read: `seq` after `after_seq` (ascending) or before `before_seq`
/// (descending, newest first, as CloudTrail's LookupEvents answers), narrowed by the
/// filters that are set. Batches (see [`AuditEntry::batch`]) are narrowed by seq and time
/// only (their `time` is their first call's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub after_seq: i64,
    /// Newest first, starting below this seq (None: from the newest).
    pub before_seq: Option<i64>,
    pub descending: bool,
    pub limit: usize,
    /// Only this region's records.
    pub region: Option<String>,
    pub from_time: Option<Millis>,
    /// Exclusive.
    pub to_time: Option<Millis>,
    /// The secret involved: records whose resource is exactly this, or, for a name, the
    /// ARN of any secret of that name (ARN ending `:secret:<name>-` and six characters).
    pub resource: Option<String>,
    pub event_name: Option<String>,
    pub access_key_id: Option<String>,
    pub event_id: Option<String>,
    pub read_only: Option<bool>,
    /// Some(true): only calls that failed; Some(false): only those that succeeded.
    pub failed: Option<bool>,
}

/// The link of record `seq` with `entry`, after a record whose hash is `prev`: SHA-256
/// over the previous hash, the seq, and every field, each length-prefixed so that no two
/// different records encode alike.
pub fn chain_hash(prev: &[u8], seq: i64, e: &AuditEntry) -> [u8; 32] {
    fn field(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    fn opt(h: &mut Sha256, v: &Option<String>) {
        match v {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                field(h, s.as_bytes());
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"arca-audit-v1");
    field(&mut h, prev);
    h.update(seq.to_be_bytes());
    h.update(e.time.to_be_bytes());
    field(&mut h, e.event_id.as_bytes());
    field(&mut h, e.event_type.as_bytes());
    field(&mut h, e.event_name.as_bytes());
    field(&mut h, e.region.as_bytes());
    h.update([u8::from(e.read_only)]);
    opt(&mut h, &e.access_key_id);
    opt(&mut h, &e.resource);
    opt(&mut h, &e.error_code);
    h.update(e.batch.to_be_bytes());
    field(&mut h, e.detail.as_bytes());
    h.finalize().into()
}

/// What a walk of the chain found wrong first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// Records between `expected` and `found` are missing (deleted), or the chain does not
    /// start at 1.
    Missing { expected: i64, found: i64 },
    /// Record `seq` does not link to the one before it (reordered, or one before it
    /// replaced).
    Unlinked { seq: i64 },
    /// Record `seq`'s content does not match its hash (edited).
    Altered { seq: i64 },
}

/// Walks records in ascending seq order, one page at a time, remembering only the last.
#[derive(Debug, Clone)]
pub struct ChainWalk {
    next_seq: i64,
    prev_hash: Vec<u8>,
    /// Records checked so far.
    pub checked: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS.to_vec(),
            checked: 0,
        }
    }
}

impl ChainWalk {
    /// Checks the next record; the first problem found is returned (and the walk should
    /// stop there).
    pub fn check(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        if r.seq != self.next_seq {
            return Err(ChainBreak::Missing {
                expected: self.next_seq,
                found: r.seq,
            });
        }
        if r.prev_hash != self.prev_hash {
            return Err(ChainBreak::Unlinked { seq: r.seq });
        }
        if chain_hash(&r.prev_hash, r.seq, &r.entry).as_slice() != r.hash.as_slice() {
            return Err(ChainBreak::Altered { seq: r.seq });
        }
        self.next_seq = r.seq + 1;
        self.prev_hash = r.hash.clone();
        self.checked += 1;
        Ok(())
    }

    /// The last seq checked (0 before any).
    pub fn head(&self) -> i64 {
        self.next_seq - 1
    }

    /// The hash of the last record checked: with `head`, what an operator records outside
    /// the database to detect a truncated tail later.
    pub fn head_hash(&self) -> &[u8] {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> AuditEntry {
        AuditEntry {
            time: 1,
            event_id: "e".into(),
            event_type: "AwsApiCall".into(),
            event_name: name.into(),
            region: "us-east-1".into(),
            read_only: true,
            access_key_id: None,
            resource: Some("r".into()),
            error_code: None,
            batch: 0,
            detail: "{}".into(),
        }
    }

    fn chain(names: &[&str]) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_vec();
        let mut out = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let seq = i as i64 + 1;
            let e = entry(n);
            let hash = chain_hash(&prev, seq, &e).to_vec();
            out.push(AuditRecord {
                seq,
                entry: e,
                prev_hash: prev,
                hash: hash.clone(),
            });
            prev = hash;
        }
        out
    }

    fn walk(rs: &[AuditRecord]) -> Result<u64, ChainBreak> {
        let mut w = ChainWalk::default();
        for r in rs {
            w.check(r)?;
        }
        Ok(w.checked)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(walk(&chain(&["a", "b", "c"])), Ok(3));
    }

    #[test]
    fn each_kind_of_tampering_is_found_where_it_is() {
        let mut edited = chain(&["a", "b", "c"]);
        edited[1].entry.event_name = "x".into();
        assert_eq!(walk(&edited), Err(ChainBreak::Altered { seq: 2 }));

        let mut a_none = chain(&["a", "b"]);
        a_none[0].entry.access_key_id = Some(String::new());
        assert_eq!(walk(&a_none), Err(ChainBreak::Altered { seq: 1 }));

        let mut deleted = chain(&["a", "b", "c"]);
        deleted.remove(1);
        assert_eq!(
            walk(&deleted),
            Err(ChainBreak::Missing {
                expected: 2,
                found: 3
            })
        );

        // Swapping two rows' contents but keeping seqs in place: the links break.
        let mut swapped = chain(&["a", "b", "c"]);
        let (x, y) = (swapped[1].clone(), swapped[2].clone());
        swapped[1] = AuditRecord { seq: 2, ..y };
        swapped[2] = AuditRecord { seq: 3, ..x };
        assert_eq!(walk(&swapped), Err(ChainBreak::Unlinked { seq: 2 }));

        let mut head_cut = chain(&["a", "b"]);
        head_cut.remove(0);
        assert_eq!(
            walk(&head_cut),
            Err(ChainBreak::Missing {
                expected: 1,
                found: 2
            })
        );
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let mut a = entry("ab");
        a.region = "c".into();
        let mut b = entry("a");
        b.region = "bc".into();
        assert_ne!(chain_hash(&GENESIS, 1, &a), chain_hash(&GENESIS, 1, &b));
    }
}
