//! Leases on background jobs, kept in the store so that several nodes on one database run
//! each job once, and the change feed through which a node hears of other nodes' writes.

use std::fmt;

/// A grant of a job's lease, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGrant {
    /// Grows with every new grant of the job (not with renewals by the same holder).
    pub token: i64,
    /// Milliseconds the lease has left, by the store's clock when it granted it. Nodes'
    /// clocks need not agree: only the store's is compared.
    pub ttl_ms: i64,
}

/// What a job's write carries so that the store commits it only while the job's lease is
/// still `holder`'s with this `token`, unexpired, and checks that in the write's own
/// transaction: a node that lost its lease (paused, partitioned, slow) cannot commit.
#[derive(Clone, PartialEq, Eq)]
pub struct Fence {
    pub job: String,
    pub holder: String,
    pub token: i64,
}

/// The request header that carries a [`Fence`] with a call to an Arca endpoint (a sync
/// job writing into this deployment through its API), so that the call's writes commit
/// only while the job's lease holds. A fence can only make a write fail, never allow one:
/// any caller may send it.
pub const FENCE_HEADER: &str = "x-arca-fence";

impl Fence {
    /// The fence as one header value: `token holder job` (the job's name, which may hold
    /// spaces, last).
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.token, self.holder, self.job)
    }

    /// Reads back what [`Fence::encode`] wrote; `None` for anything else.
    pub fn parse(s: &str) -> Option<Fence> {
        let mut parts = s.splitn(3, ' ');
        let token = parts.next()?.parse().ok()?;
        let holder = parts.next().filter(|h| !h.is_empty())?.to_owned();
        let job = parts.next().filter(|j| !j.is_empty())?.to_owned();
        Some(Fence { job, holder, token })
    }
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fence({}@{}#{})", self.job, self.holder, self.token)
    }
}

/// A change another node committed, as the change feed reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A secret was created or changed and is now at `revision`.
    Secret { arn: String, revision: i64 },
    /// A secret was deleted for good.
    Deleted { arn: String },
    /// An encryption key was added.
    Keys,
    /// An access key was added, changed or disabled.
    AccessKey { access_key_id: String },
    /// An event rule or target was added, changed or removed.
    Rules,
    /// An IAM user, role or managed policy was added, changed or removed.
    Iam,
}

impl Change {
    /// The notification text (what `parse` reads back): short, one line, no secret
    /// material (ARNs, revisions and key ids only).
    pub fn encode(&self) -> String {
        match self {
            Change::Secret { arn, revision } => format!("s {revision} {arn}"),
            Change::Deleted { arn } => format!("d {arn}"),
            Change::Keys => "k".to_owned(),
            Change::AccessKey { access_key_id } => format!("a {access_key_id}"),
            Change::Rules => "r".to_owned(),
            Change::Iam => "i".to_owned(),
        }
    }

    pub fn parse(s: &str) -> Option<Change> {
        let (kind, rest) = s.split_once(' ').unwrap_or((s, ""));
        Some(match kind {
            "s" => {
                let (rev, arn) = rest.split_once(' ')?;
                Change::Secret {
                    arn: arn.to_owned(),
                    revision: rev.parse().ok()?,
                }
            }
            "d" if !rest.is_empty() => Change::Deleted {
                arn: rest.to_owned(),
            },
            "k" => Change::Keys,
            "r" => Change::Rules,
            "i" => Change::Iam,
            "a" if !rest.is_empty() => Change::AccessKey {
                access_key_id: rest.to_owned(),
            },
            _ => return None,
        })
    }
}

/// Where a backend shared by several nodes delivers the change feed (arca-core's caches).
pub trait ChangeSink: Send + Sync {
    /// Another node (or this one) committed `change`.
    fn changed(&self, change: &Change);
    /// The feed was interrupted: changes may be missed until `resumed`, so nothing cached
    /// may be served meanwhile.
    fn lost(&self);
    /// The feed works again (or for the first time): everything cached before may be
    /// stale and is dropped.
    fn resumed(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_their_text() {
        for c in [
            Change::Secret {
                arn: "arn:aws:secretsmanager:us-east-1:1:secret:a b-AbCdEf".into(),
                revision: 7,
            },
            Change::Deleted {
                arn: "arn:x".into(),
            },
            Change::Keys,
            Change::Rules,
            Change::Iam,
            Change::AccessKey {
                access_key_id: "AKIA1".into(),
            },
        ] {
            assert_eq!(Change::parse(&c.encode()), Some(c));
        }
        assert_eq!(Change::parse("s x arn"), None);
        assert_eq!(Change::parse("d"), None);
        assert_eq!(Change::parse("?"), None);
    }

    #[test]
    fn fences_round_trip_through_their_header_value() {
        let f = Fence {
            job: "sync/kv to arca".into(),
            holder: "host-12-00ab".into(),
            token: 42,
        };
        assert_eq!(Fence::parse(&f.encode()), Some(f));
        for bad in ["", "42", "42 host", "x host job", "42  job"] {
            assert_eq!(Fence::parse(bad), None, "{bad:?}");
        }
    }
}
