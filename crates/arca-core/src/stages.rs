//! Staging-label rules, as pure functions over a secret's version list: a label is on at
//! most one version; moving AWSCURRENT hands AWSPREVIOUS to the version that had it; a
//! secret carries at most 20 labels; versions without labels are deprecated and are
//! removed only beyond 100 versions and never within 24 hours of their creation.

use arca_store::VersionRecord;
use arca_types::time::Millis;
use arca_types::ApiError;

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub const AWSPENDING: &str = "AWSPENDING";

/// Staging labels attached across all versions of a secret (AWS quota).
pub const MAX_LABELS_PER_SECRET: usize = 20;
/// Versions a secret keeps before deprecated ones are removed (AWS quota).
pub const MAX_VERSIONS: usize = 100;
/// Deprecated versions younger than this are never removed.
pub const MIN_VERSION_AGE_MS: Millis = 24 * 3600 * 1000;

pub fn holder<'a>(versions: &'a [VersionRecord], label: &str) -> Option<&'a VersionRecord> {
    versions
        .iter()
        .find(|v| v.stages.iter().any(|s| s == label))
}

/// Attaches `label` to `target`, taking it off whichever version had it. Moving
/// AWSCURRENT off version X gives X the label AWSPREVIOUS (and takes AWSPREVIOUS off
/// whichever version had it).
pub fn attach(versions: &mut [VersionRecord], label: &str, target: &str) {
    let previous_holder = holder(versions, label).map(|v| v.version_id.clone());
    if previous_holder.as_deref() == Some(target) {
        return;
    }
    for v in versions.iter_mut() {
        v.stages.retain(|s| s != label);
    }
    if let Some(t) = versions.iter_mut().find(|v| v.version_id == target) {
        t.stages.push(label.to_owned());
    }
    if label == AWSCURRENT {
        if let Some(old) = previous_holder {
            attach(versions, AWSPREVIOUS, &old);
        }
    }
}

/// Takes `label` off `version_id`.
pub fn detach(versions: &mut [VersionRecord], label: &str, version_id: &str) {
    if let Some(v) = versions.iter_mut().find(|v| v.version_id == version_id) {
        v.stages.retain(|s| s != label);
    }
}

pub fn check_label_quota(versions: &[VersionRecord]) -> Result<(), ApiError> {
    let n: usize = versions.iter().map(|v| v.stages.len()).sum();
    if n > MAX_LABELS_PER_SECRET {
        return Err(ApiError::too_many_labels(MAX_LABELS_PER_SECRET));
    }
    Ok(())
}

/// Which deprecated versions to remove so the secret keeps at most MAX_VERSIONS, oldest
/// first, sparing any younger than 24 hours. Errors with LimitExceededException when the
/// quota can't be met that way (AWS: calling PutSecretValue more often than its clean-up
/// can keep up with reaches the version quota).
pub fn versions_to_prune(versions: &[VersionRecord], now: Millis) -> Result<Vec<String>, ApiError> {
    let excess = versions.len().saturating_sub(MAX_VERSIONS);
    if excess == 0 {
        return Ok(Vec::new());
    }
    let mut candidates: Vec<&VersionRecord> = versions
        .iter()
        .filter(|v| v.stages.is_empty() && now - v.created_at >= MIN_VERSION_AGE_MS)
        .collect();
    candidates.sort_by_key(|v| v.created_at);
    if candidates.len() < excess {
        return Err(ApiError::too_many_versions(MAX_VERSIONS));
    }
    Ok(candidates[..excess]
        .iter()
        .map(|v| v.version_id.clone())
        .collect())
}

/// Versions whose stage list differs between `before` and `after` (same ids).
pub fn restaged(before: &[VersionRecord], after: &[VersionRecord]) -> Vec<(String, Vec<String>)> {
    after
        .iter()
        .filter(|a| {
            before
                .iter()
                .find(|b| b.version_id == a.version_id)
                .is_some_and(|b| b.stages != a.stages)
        })
        .map(|a| (a.version_id.clone(), a.stages.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::ErrorCode;

    fn v(id: &str, stages: &[&str], created_at: Millis) -> VersionRecord {
        VersionRecord {
            version_id: id.into(),
            stages: stages.iter().map(|s| s.to_string()).collect(),
            created_at,
            last_accessed_day: None,
            kms_key_ids: vec!["DEFAULT".into()],
            value_digest: vec![],
            has_value: true,
        }
    }

    #[test]
    fn moving_current_moves_previous() {
        let mut vs = vec![
            v("a", &[AWSPREVIOUS], 0),
            v("b", &[AWSCURRENT], 1),
            v("c", &[], 2),
        ];
        attach(&mut vs, AWSCURRENT, "c");
        assert_eq!(vs[0].stages, Vec::<String>::new());
        assert_eq!(vs[1].stages, vec![AWSPREVIOUS]);
        assert_eq!(vs[2].stages, vec![AWSCURRENT]);
    }

    #[test]
    fn attaching_to_the_holder_changes_nothing() {
        let mut vs = vec![v("a", &[AWSPREVIOUS], 0), v("b", &[AWSCURRENT], 1)];
        attach(&mut vs, AWSCURRENT, "b");
        assert_eq!(vs[0].stages, vec![AWSPREVIOUS]);
        assert_eq!(vs[1].stages, vec![AWSCURRENT]);
    }

    #[test]
    fn custom_labels_move_alone() {
        let mut vs = vec![v("a", &[AWSCURRENT, "x"], 0), v("b", &[], 1)];
        attach(&mut vs, "x", "b");
        assert_eq!(vs[0].stages, vec![AWSCURRENT]);
        assert_eq!(vs[1].stages, vec!["x"]);
    }

    #[test]
    fn label_quota() {
        let many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check_label_quota(&[v("a", &refs[..20], 0)]).is_ok());
        let e = check_label_quota(&[v("a", &refs, 0)]).unwrap_err();
        assert_eq!(e.code, ErrorCode::LimitExceeded);
    }

    #[test]
    fn prune_spares_young_and_labelled_versions() {
        let day = MIN_VERSION_AGE_MS;
        let now = 10 * day;
        let mut vs: Vec<VersionRecord> = (0..100).map(|i| v(&format!("v{i:03}"), &[], i)).collect();
        vs[0].stages = vec![AWSCURRENT.into()];
        assert!(versions_to_prune(&vs, now).unwrap().is_empty());
        vs.push(v("new", &[], now));
        // 101 versions: the oldest unlabelled one (v001) goes, not the labelled v000.
        assert_eq!(
            versions_to_prune(&vs, now).unwrap(),
            vec!["v001".to_string()]
        );
        // All deprecated versions are younger than a day: the quota is hit.
        let e = versions_to_prune(&vs, 50).unwrap_err();
        assert_eq!(e.code, ErrorCode::LimitExceeded);
    }

    #[test]
    fn restaged_lists_only_changes() {
        let before = vec![v("a", &[AWSCURRENT], 0), v("b", &[], 1)];
        let mut after = before.clone();
        attach(&mut after, AWSCURRENT, "b");
        let r = restaged(&before, &after);
        assert_eq!(r.len(), 2);
    }
}
