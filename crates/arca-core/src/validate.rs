//! Checks of requests against botocore's model, done before anything is looked up, as
//! AWS's front end does them: a `Check` gathers every violated constraint (required
//! members, lengths, ranges, patterns, enums) and fails with one ValidationException
//! naming them all. The service's own rules (the secret-name charset, tag rules) follow.

use arca_types::error::{Shown, Violation};
use arca_types::wire::{ReplicaRegion, Tag};
use arca_types::ApiError;

/// Values longer than this are named by path only: a message is not the place to echo
/// a 64 KiB member back.
const MAX_ECHO_CHARS: usize = 4096;

/// The violations found so far in one request.
#[derive(Default)]
pub(crate) struct Check(Vec<Violation>);

impl Check {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, value: Shown, path: &str, constraint: String) {
        self.0.push(Violation {
            value,
            path: path.to_owned(),
            constraint,
        });
    }

    /// Ok when nothing was violated; else one ValidationException naming every violation.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(&self.0))
        }
    }

    /// A required member: absent is a violation.
    pub(crate) fn required<'a, T>(&mut self, path: &str, v: &'a Option<T>) -> Option<&'a T> {
        if v.is_none() {
            self.push(Shown::Null, path, "Member must not be null".into());
        }
        v.as_ref()
    }

    /// A string member's length in characters, echoing the value.
    pub(crate) fn length(&mut self, path: &str, v: Option<&str>, min: usize, max: usize) {
        if let Some(s) = v {
            let n = s.chars().count();
            let shown = || {
                if n > MAX_ECHO_CHARS {
                    Shown::Hidden
                } else {
                    Shown::Value(s.to_owned())
                }
            };
            self.bounds(shown, path, n, min, max, "length");
        }
    }

    /// The length of a sensitive member (a secret value, a rotation token): the value is
    /// never echoed.
    pub(crate) fn hidden_length(&mut self, path: &str, n: Option<usize>, min: usize, max: usize) {
        if let Some(n) = n {
            self.bounds(|| Shown::Hidden, path, n, min, max, "length");
        }
    }

    /// The number of members of a list.
    pub(crate) fn count<T>(&mut self, path: &str, v: Option<&[T]>, min: usize, max: usize) {
        if let Some(l) = v {
            self.bounds(|| Shown::Hidden, path, l.len(), min, max, "length");
        }
    }

    /// A number's range.
    pub(crate) fn range(&mut self, path: &str, v: Option<i64>, min: i64, max: i64) {
        let Some(n) = v else { return };
        if n < min {
            self.push(
                Shown::Value(n.to_string()),
                path,
                format!("Member must have value greater than or equal to {min}"),
            );
        } else if n > max {
            self.push(
                Shown::Value(n.to_string()),
                path,
                format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// A string that must match the model's `pattern` (decided by `matches`).
    pub(crate) fn pattern(
        &mut self,
        path: &str,
        v: Option<&str>,
        matches: impl Fn(&str) -> bool,
        pattern: &str,
        hidden: bool,
    ) {
        if let Some(s) = v.filter(|s| !matches(s)) {
            let shown = if hidden || s.chars().count() > MAX_ECHO_CHARS {
                Shown::Hidden
            } else {
                Shown::Value(s.to_owned())
            };
            self.push(
                shown,
                path,
                format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
    }

    /// A string from the model's enum.
    pub(crate) fn one_of(&mut self, path: &str, v: Option<&str>, allowed: &[&str]) {
        if let Some(s) = v.filter(|s| !allowed.contains(s)) {
            let shown: String = s.chars().filter(|c| !c.is_control()).take(256).collect();
            self.push(
                Shown::Value(shown),
                path,
                format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// `shown` is made only for a violation: a request within bounds (every GetSecretValue)
    /// allocates nothing here.
    fn bounds(
        &mut self,
        shown: impl FnOnce() -> Shown,
        path: &str,
        n: usize,
        min: usize,
        max: usize,
        what: &str,
    ) {
        if n < min {
            self.push(
                shown(),
                path,
                format!("Member must have {what} greater than or equal to {min}"),
            );
        } else if n > max {
            self.push(
                shown(),
                path,
                format!("Member must have {what} less than or equal to {max}"),
            );
        }
    }

    // ----- the model's shared members -------------------------------------------------

    /// `SecretId`: required, 1–2048.
    pub(crate) fn secret_id<'a>(&mut self, v: &'a Option<String>) -> Option<&'a str> {
        let id = self.required("secretId", v).map(String::as_str);
        self.length("secretId", id, 1, 2048);
        id
    }

    /// `ClientRequestToken`: 32–64.
    pub(crate) fn token(&mut self, v: &Option<String>) {
        self.length("clientRequestToken", v.as_deref(), 32, 64);
    }

    /// `VersionId`-typed members: 32–64.
    pub(crate) fn version_id(&mut self, path: &str, v: &Option<String>) {
        self.length(path, v.as_deref(), 32, 64);
    }

    /// `VersionStage`-typed members: 1–256.
    pub(crate) fn stage(&mut self, path: &str, v: Option<&str>) {
        self.length(path, v, 1, 256);
    }

    pub(crate) fn description(&mut self, v: &Option<String>) {
        self.length("description", v.as_deref(), 0, 2048);
    }

    pub(crate) fn kms_key_id(&mut self, v: &Option<String>) {
        self.length("kmsKeyId", v.as_deref(), 0, 2048);
    }

    pub(crate) fn secret_type(&mut self, v: &Option<String>) {
        self.length("type", v.as_deref(), 0, 256);
    }

    /// `SecretString` / `SecretBinary`: 1–65,536 bytes each, never echoed.
    pub(crate) fn secret_value(&mut self, string_len: Option<usize>, binary_len: Option<usize>) {
        self.hidden_length("secretString", string_len, 1, 65_536);
        self.hidden_length("secretBinary", binary_len, 1, 65_536);
    }

    /// A `TagListType`: keys 1–128, values 0–256.
    pub(crate) fn tags(&mut self, path: &str, tags: Option<&[Tag]>) {
        for (i, t) in tags.unwrap_or_default().iter().enumerate() {
            let n = i + 1;
            let key_path = format!("{path}.{n}.member.key");
            self.required(&key_path, &t.key);
            self.length(&key_path, t.key.as_deref(), 1, 128);
            self.length(
                &format!("{path}.{n}.member.value"),
                t.value.as_deref(),
                0,
                256,
            );
        }
    }

    /// An `AddReplicaRegionListType` (at least one) of regions and key ids.
    pub(crate) fn replica_regions(&mut self, path: &str, v: Option<&[ReplicaRegion]>) {
        self.count(path, v, 1, usize::MAX);
        for (i, r) in v.unwrap_or_default().iter().enumerate() {
            let n = i + 1;
            self.region(&format!("{path}.{n}.member.region"), r.region.as_deref());
            self.length(
                &format!("{path}.{n}.member.kmsKeyId"),
                r.kms_key_id.as_deref(),
                0,
                2048,
            );
        }
    }

    /// A `RegionType`: 1–128 characters matching `^([a-z]+-)+\d+$`.
    pub(crate) fn region(&mut self, path: &str, v: Option<&str>) {
        self.length(path, v, 1, 128);
        if v.is_some_and(|r| !r.is_empty() && r.len() <= 128) {
            self.pattern(
                path,
                v,
                crate::replication::valid_region,
                "^([a-z]+-)+\\d+$",
                false,
            );
        }
    }

    pub(crate) fn max_results(&mut self, v: Option<i64>, max: i64) {
        self.range("maxResults", v, 1, max);
    }

    pub(crate) fn next_token(&mut self, v: &Option<String>) {
        self.length("nextToken", v.as_deref(), 1, 4096);
    }
}

/// A member the model requires, after a clean `Check::finish` (present by then).
pub(crate) fn present<T>(v: Option<T>) -> Result<T, ApiError> {
    v.ok_or_else(ApiError::internal)
}

/// The whole check of a request whose one member is a SecretId: the model's
/// constraints, then the name charset.
pub(crate) fn only_secret_id(v: &Option<String>) -> Result<&str, ApiError> {
    let mut check = Check::new();
    let id = check.secret_id(v);
    check.finish()?;
    let id = present(id)?;
    name_chars(id)?;
    Ok(id)
}

/// Secret names: ASCII letters, digits and `/_+=.@-` (AWS's documented charset). AWS
/// checks every Name and SecretId so, after the model's constraints; a SecretId that is
/// an ARN is checked by the ARN rules instead (it holds `:`).
pub(crate) fn name_chars(id: &str) -> Result<(), ApiError> {
    if id.starts_with("arn:") {
        return Ok(());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        return Err(ApiError::invalid_name());
    }
    Ok(())
}

pub(crate) const MAX_TAGS: usize = 50;

/// The service's tag rules, after the model's: the `aws:` prefix is reserved for AWS
/// (tagging documentation), at most 50 tags. A repeated key keeps its last value.
pub(crate) fn tag_pairs(tags: &[Tag]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for t in tags {
        let key = t.key.clone().unwrap_or_default();
        let value = t.value.clone().unwrap_or_default();
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::reserved_tag_key());
        }
        if let Some(existing) = out.iter_mut().find(|(k, _)| *k == key) {
            existing.1 = value;
        } else {
            out.push((key, value));
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::too_many_tags(MAX_TAGS));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::ErrorCode;

    #[test]
    fn a_clean_request_passes_and_violations_are_gathered() {
        let mut c = Check::new();
        c.secret_id(&Some("s".into()));
        c.token(&Some("0".repeat(32)));
        assert!(c.finish().is_ok());

        let mut c = Check::new();
        c.secret_id(&None);
        c.token(&Some("short".into()));
        c.max_results(Some(0), 100);
        let e = c.finish().unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert_eq!(
            e.message,
            "3 validation errors detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null; \
             Value 'short' at 'clientRequestToken' failed to satisfy constraint: Member must have length greater than or equal to 32; \
             Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
    }

    #[test]
    fn secret_values_are_never_echoed() {
        let mut c = Check::new();
        c.secret_value(Some(65_537), None);
        c.pattern(
            "rotationToken",
            Some("canary token!"),
            |s| !s.contains(' '),
            "^[a-zA-Z0-9\\-]+$",
            true,
        );
        let e = c.finish().unwrap_err();
        assert!(!e.message.contains("canary"), "{}", e.message);
        assert!(
            e.message.contains("Value at 'secretString'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn names_outside_the_charset_are_refused() {
        for bad in ["a b", "a*", "q?", "x!", "]", "back\\slash", "é"] {
            assert_eq!(
                name_chars(bad).unwrap_err().code,
                ErrorCode::Validation,
                "{bad}"
            );
        }
        for ok in [
            "db/prod",
            "Valid/_+=.@-Name",
            "arn:aws:secretsmanager:us-east-1:1:secret:x",
        ] {
            assert!(name_chars(ok).is_ok(), "{ok}");
        }
    }
}
