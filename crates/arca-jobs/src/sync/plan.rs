//! What one pass does, decided from metadata alone: the source's entries (each with its
//! target name and version stamp) against the target's secrets (with their ownership and
//! version tags). Pure, so `arca sync plan` and the pass share it and tests run it
//! without servers.

use super::mapping::SourceRef;
use std::collections::{BTreeMap, HashMap};

/// Tag naming the job that owns (created) a target secret.
pub const OWNER_TAG: &str = "arca:sync:job";
/// Tag holding the source version a target secret holds: `VERSION@CREATED` for KV v2
/// (the pair names a version for ever, across a path deleted and created again), or
/// `hmac-sha256:…` of the value for KV v1, which has no versions.
pub const VERSION_TAG: &str = "arca:sync:source-version";
/// Tag naming the source entry's path (below the mount).
pub const PATH_TAG: &str = "arca:sync:source-path";
/// Tag naming the entry's key, for per-key granularity (tag values cannot hold `#`, so
/// path and key are two tags).
pub const KEY_TAG: &str = "arca:sync:source-key";

/// One source value the job wants in the target.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub source: SourceRef,
    pub name: String,
    /// The version stamp (None when the entry has no current value: its current KV v2
    /// version is deleted or destroyed).
    pub stamp: Option<String>,
    /// KV v2 version to read (None for KV v1).
    pub version: Option<u64>,
}

/// A target secret as listed, with the tags the job reads.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    pub name: String,
    pub owner: Option<String>,
    pub stamp: Option<String>,
    /// The source entry it came from (its tags).
    pub source_path: Option<String>,
    pub source_key: Option<String>,
    /// Scheduled for deletion.
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionPolicy {
    Keep,
    /// DeleteSecret with this recovery window (7–30 days).
    Delete {
        window_days: u32,
    },
    /// DeleteSecret with ForceDeleteWithoutRecovery.
    DeleteNow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    /// Restore (it was scheduled for deletion), then update.
    Restore,
    Unchanged,
    Delete {
        force: bool,
        window_days: u32,
    },
    /// Owned, its source is gone, and the policy keeps it.
    Keep,
    /// Already scheduled for deletion and its source is gone: nothing to do.
    AlreadyDeleted,
    /// The name belongs to a secret this job does not own: left untouched.
    Conflict(String),
    /// The target would refuse the name, or two sources map to it.
    Invalid(String),
}

impl Action {
    pub fn word(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Restore => "restore",
            Action::Unchanged => "unchanged",
            Action::Delete { .. } => "delete",
            Action::Keep => "keep",
            Action::AlreadyDeleted => "already-deleted",
            Action::Conflict(_) => "conflict",
            Action::Invalid(_) => "invalid",
        }
    }

    /// Whether the pass writes to the target for it.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Restore | Action::Delete { .. }
        )
    }

    /// Whether the pass reads the source value for it.
    pub fn reads_value(&self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Restore)
    }
}

/// One line of the plan: a target name, what to do and why.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub source: Option<SourceRef>,
    /// The source version to write (creates and updates).
    pub stamp: Option<String>,
    pub version: Option<u64>,
    pub action: Action,
    pub why: String,
}

/// Plans a pass of job `job`. `refused` says why the target would refuse a name.
pub fn plan(
    job: &str,
    wanted: Vec<Wanted>,
    existing: Vec<Existing>,
    policy: DeletionPolicy,
    refused: impl Fn(&str) -> Option<String>,
) -> Vec<Step> {
    let existing: HashMap<String, Existing> =
        existing.into_iter().map(|e| (e.name.clone(), e)).collect();
    let mut by_name: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
    for w in wanted {
        by_name.entry(w.name.clone()).or_default().push(w);
    }
    let mut steps = Vec::new();
    for (name, mut ws) in by_name {
        if ws.len() > 1 {
            let from: Vec<String> = ws.iter().map(|w| w.source.label()).collect();
            steps.push(Step {
                name,
                source: None,
                stamp: None,
                version: None,
                action: Action::Invalid(format!(
                    "several sources map to this name: {}",
                    from.join(", ")
                )),
                why: "fix the name template".into(),
            });
            continue;
        }
        let w = ws.remove(0);
        let found = existing.get(&name);
        let owned = found.is_some_and(|e| e.owner.as_deref() == Some(job));
        let (action, why) = match (&w.stamp, found) {
            _ if refused(&name).is_some() => {
                let why = refused(&name).unwrap_or_default();
                (Action::Invalid(why.clone()), why)
            }
            (_, Some(e)) if !owned => {
                let holder = match &e.owner {
                    Some(o) => format!("owned by sync job {o:?}"),
                    None => "not created by a sync job".to_owned(),
                };
                (
                    Action::Conflict(holder.clone()),
                    format!("a secret of this name exists, {holder}: left untouched"),
                )
            }
            // The source entry has no current value (KV v2: deleted or destroyed).
            (None, None) => (Action::AlreadyDeleted, "no current source version".into()),
            (None, Some(e)) => gone(
                e,
                policy,
                "the current source version is deleted or destroyed",
            ),
            (Some(_), None) => (Action::Create, "new in the source".into()),
            (Some(s), Some(e)) if e.deleted => (
                Action::Restore,
                format!(
                    "scheduled for deletion in the target, back in the source ({})",
                    short(s)
                ),
            ),
            (Some(s), Some(e)) if e.stamp.as_deref() == Some(s.as_str()) => {
                (Action::Unchanged, format!("holds {}", short(s)))
            }
            (Some(s), Some(e)) => (
                Action::Update,
                format!(
                    "holds {}, the source has {}",
                    e.stamp
                        .as_deref()
                        .map_or("no version tag".to_owned(), short),
                    short(s)
                ),
            ),
        };
        steps.push(Step {
            name,
            source: Some(w.source),
            stamp: w.stamp,
            version: w.version,
            action,
            why,
        });
    }
    // Owned secrets that no source entry maps to any more.
    let taken: std::collections::HashSet<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let mut orphans: Vec<&Existing> = existing
        .values()
        .filter(|e| e.owner.as_deref() == Some(job) && !taken.contains(e.name.as_str()))
        .collect();
    orphans.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tail = Vec::new();
    for e in orphans {
        let (action, why) = gone(e, policy, "its source entry is gone");
        tail.push(Step {
            name: e.name.clone(),
            source: None,
            stamp: None,
            version: None,
            action,
            why,
        });
    }
    steps.extend(tail);
    steps
}

/// What the policy does with an owned secret whose source value is gone.
fn gone(e: &Existing, policy: DeletionPolicy, reason: &str) -> (Action, String) {
    if e.deleted {
        return (
            Action::AlreadyDeleted,
            format!("{reason}; already scheduled for deletion"),
        );
    }
    match policy {
        DeletionPolicy::Keep => (
            Action::Keep,
            format!("{reason}; the deletion policy keeps it"),
        ),
        DeletionPolicy::Delete { window_days } => (
            Action::Delete {
                force: false,
                window_days,
            },
            format!("{reason}; deleted with a {window_days}-day recovery window"),
        ),
        DeletionPolicy::DeleteNow => (
            Action::Delete {
                force: true,
                window_days: 0,
            },
            format!("{reason}; deleted without recovery"),
        ),
    }
}

/// A stamp as reports show it: KV v2's version number, or a digest's first characters.
fn short(stamp: &str) -> String {
    match stamp.split_once('@') {
        Some((v, _)) => format!("version {v}"),
        None => format!("digest {}", &stamp[..stamp.len().min(20)]),
    }
}

/// Counts of a plan's steps by action word, in a fixed order.
pub fn counts(steps: &[Step]) -> BTreeMap<&'static str, u64> {
    let mut c = BTreeMap::new();
    for s in steps {
        *c.entry(s.action.word()).or_insert(0) += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(path: &str, stamp: Option<&str>) -> Wanted {
        Wanted {
            source: SourceRef {
                path: path.into(),
                key: None,
            },
            name: path.into(),
            stamp: stamp.map(str::to_owned),
            version: Some(1),
        }
    }

    fn have(name: &str, owner: Option<&str>, stamp: Option<&str>, deleted: bool) -> Existing {
        Existing {
            name: name.into(),
            owner: owner.map(str::to_owned),
            stamp: stamp.map(str::to_owned),
            source_path: Some(name.into()),
            source_key: None,
            deleted,
        }
    }

    fn actions(steps: &[Step]) -> Vec<(String, &'static str)> {
        steps
            .iter()
            .map(|s| (s.name.clone(), s.action.word()))
            .collect()
    }

    #[test]
    fn new_changed_unchanged_and_foreign_names() {
        let steps = plan(
            "j",
            vec![
                want("a", Some("1@t")),
                want("b", Some("2@t")),
                want("c", Some("3@t")),
                want("d", Some("1@t")),
                want("e", Some("1@t")),
            ],
            vec![
                have("b", Some("j"), Some("1@t"), false),
                have("c", Some("j"), Some("3@t"), false),
                have("d", None, None, false),
                have("e", Some("other"), Some("1@t"), false),
            ],
            DeletionPolicy::Keep,
            |_| None,
        );
        assert_eq!(
            actions(&steps),
            vec![
                ("a".into(), "create"),
                ("b".into(), "update"),
                ("c".into(), "unchanged"),
                ("d".into(), "conflict"),
                ("e".into(), "conflict"),
            ]
        );
        assert!(steps
            .iter()
            .all(|s| s.action.reads_value() == s.action.writes()));
    }

    #[test]
    fn each_deletion_policy_treats_a_vanished_source_as_it_says() {
        let existing = || {
            vec![
                have("gone", Some("j"), Some("1@t"), false),
                have("soft", Some("j"), Some("1@t"), false),
                have("foreign", None, None, false),
                have("was", Some("j"), Some("1@t"), true),
            ]
        };
        let wanted = || vec![want("soft", None)];
        let keep = plan("j", wanted(), existing(), DeletionPolicy::Keep, |_| None);
        assert_eq!(
            actions(&keep),
            vec![
                ("soft".into(), "keep"),
                ("gone".into(), "keep"),
                ("was".into(), "already-deleted")
            ]
        );
        let del = plan(
            "j",
            wanted(),
            existing(),
            DeletionPolicy::Delete { window_days: 7 },
            |_| None,
        );
        assert_eq!(
            del[1].action,
            Action::Delete {
                force: false,
                window_days: 7
            }
        );
        let now = plan("j", wanted(), existing(), DeletionPolicy::DeleteNow, |_| {
            None
        });
        assert_eq!(
            now[0].action,
            Action::Delete {
                force: true,
                window_days: 0
            }
        );
        // Never a secret the job does not own.
        assert!(now.iter().all(|s| s.name != "foreign"));
    }

    #[test]
    fn a_source_back_after_deletion_is_restored() {
        let steps = plan(
            "j",
            vec![want("a", Some("2@t"))],
            vec![have("a", Some("j"), Some("1@t"), true)],
            DeletionPolicy::Delete { window_days: 7 },
            |_| None,
        );
        assert_eq!(steps[0].action, Action::Restore);
    }

    #[test]
    fn refused_and_doubled_names_are_failures_not_writes() {
        let mut twice = want("x/a", Some("1@t"));
        twice.name = "same".into();
        let mut again = want("y/a", Some("1@t"));
        again.name = "same".into();
        let steps = plan(
            "j",
            vec![twice, again, want("bad name", Some("1@t"))],
            vec![],
            DeletionPolicy::Keep,
            |n| n.contains(' ').then(|| "space".to_owned()),
        );
        assert_eq!(
            actions(&steps),
            vec![("bad name".into(), "invalid"), ("same".into(), "invalid")]
        );
        assert!(steps.iter().all(|s| !s.action.writes()));
    }
}
