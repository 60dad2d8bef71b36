//! From source paths to target names: which paths a job takes (prefixes, include and
//! exclude globs, recursion), the name template, and per-secret or per-key granularity.
//! Names the target would refuse are reported, never rewritten.

use globset::{GlobSet, GlobSetBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// The whole KV entry as one JSON secret.
    PerSecret,
    /// Each key of the entry its own secret (its value as the SecretString).
    PerKey,
}

/// Which source entries a job syncs, and what each is called in the target.
pub struct Mapping {
    pub mount: String,
    /// Folders below the mount ("" is the whole mount), without slashes at the ends.
    pub prefixes: Vec<String>,
    /// Also the entries in folders below a prefix (default), or only those directly in it.
    pub recursive: bool,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    /// `{mount}`, `{prefix}`, `{path}` (the path below the prefix), `{full_path}` (the
    /// path below the mount), `{key}` (per-key granularity only).
    pub template: String,
    pub granularity: Granularity,
}

/// Where a target secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceRef {
    /// The entry's path below the mount.
    pub path: String,
    /// Per-key granularity: the key within the entry.
    pub key: Option<String>,
}

impl SourceRef {
    /// `path` or `path#key`: the value of the source-path tag, and what reports name.
    pub fn label(&self) -> String {
        match &self.key {
            Some(k) => format!("{}#{k}", self.path),
            None => self.path.clone(),
        }
    }
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // `*` stays within one path segment; `**` crosses them.
        let g = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("glob {p:?}: {e}"))?;
        b.add(g);
    }
    b.build().map(Some).map_err(|e| format!("globs: {e}"))
}

impl Mapping {
    pub fn new(
        mount: &str,
        prefixes: &[String],
        recursive: bool,
        include: &[String],
        exclude: &[String],
        template: Option<&str>,
        granularity: Granularity,
    ) -> Result<Self, String> {
        let template = match template {
            Some(t) => t.to_owned(),
            None if granularity == Granularity::PerKey => "{full_path}/{key}".to_owned(),
            None => "{full_path}".to_owned(),
        };
        for field in placeholders(&template) {
            match field {
                "mount" | "prefix" | "path" | "full_path" => {}
                "key" if granularity == Granularity::PerKey => {}
                "key" => return Err("{key} needs granularity = \"per-key\"".to_owned()),
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} in the name template"
                    ))
                }
            }
        }
        if granularity == Granularity::PerKey && !template.contains("{key}") {
            return Err("a per-key name template must contain {key}".to_owned());
        }
        let mut prefixes: Vec<String> = prefixes
            .iter()
            .map(|p| p.trim_matches('/').to_owned())
            .collect();
        if prefixes.is_empty() {
            prefixes.push(String::new());
        }
        Ok(Self {
            mount: mount.trim_matches('/').to_owned(),
            prefixes,
            recursive,
            include: globs(include)?,
            exclude: globs(exclude)?,
            template,
            granularity,
        })
    }

    /// The prefix `path` falls under (the longest), if the job takes it at all.
    pub fn prefix_of(&self, path: &str) -> Option<&str> {
        let p = self
            .prefixes
            .iter()
            .filter(|p| p.is_empty() || path.starts_with(&format!("{p}/")))
            .max_by_key(|p| p.len())?;
        let below = if p.is_empty() {
            path
        } else {
            &path[p.len() + 1..]
        };
        if !self.recursive && below.contains('/') {
            return None;
        }
        if self.include.as_ref().is_some_and(|g| !g.is_match(path)) {
            return None;
        }
        if self.exclude.as_ref().is_some_and(|g| g.is_match(path)) {
            return None;
        }
        Some(p)
    }

    /// The target name of an entry's value (`key` for per-key granularity).
    pub fn name(&self, prefix: &str, path: &str, key: Option<&str>) -> String {
        let below = if prefix.is_empty() {
            path
        } else {
            path.strip_prefix(prefix)
                .and_then(|s| s.strip_prefix('/'))
                .unwrap_or(path)
        };
        let mut out = String::with_capacity(self.template.len() + path.len());
        let mut rest = self.template.as_str();
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            out.push_str(match &after[..end] {
                "mount" => &self.mount,
                "prefix" => prefix,
                "path" => below,
                "full_path" => path,
                "key" => key.unwrap_or(""),
                other => other,
            });
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(f, _)| f))
}

/// Why the target would refuse `name` (Secrets Manager's CreateSecret rules: 1–512
/// characters of ASCII letters, digits and `/_+=.@-`). A name ending in a hyphen and six
/// characters is allowed (AWS only advises against it), so it is not refused here.
pub fn refused_name(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 512 {
        return Some(format!(
            "the target name is {} characters long; Secrets Manager takes 1 to 512",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return Some(format!(
            "the target name {name:?} contains {c:?}; Secrets Manager names take ASCII letters, digits and /_+=.@-"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(prefixes: &[&str], template: Option<&str>, g: Granularity) -> Mapping {
        let p: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
        Mapping::new("secret", &p, true, &[], &[], template, g).expect("mapping")
    }

    #[test]
    fn templates_fill_their_placeholders() {
        let map = m(
            &["apps/prod"],
            Some("vault/{mount}/{prefix}/{path}"),
            Granularity::PerSecret,
        );
        assert_eq!(map.prefix_of("apps/prod/db/main"), Some("apps/prod"));
        assert_eq!(
            map.name("apps/prod", "apps/prod/db/main", None),
            "vault/secret/apps/prod/db/main"
        );
        // By default a secret is named by its full source path (below the mount).
        let keys = m(&["apps"], None, Granularity::PerKey);
        assert_eq!(
            keys.name("apps", "apps/db", Some("password")),
            "apps/db/password"
        );
        let whole = m(&["apps"], None, Granularity::PerSecret);
        assert_eq!(whole.name("apps", "apps/db", None), "apps/db");
        let full = m(&["apps"], Some("x/{full_path}"), Granularity::PerSecret);
        assert_eq!(full.name("apps", "apps/db", None), "x/apps/db");
    }

    #[test]
    fn bad_templates_are_refused() {
        let p = vec!["a".to_string()];
        assert!(Mapping::new(
            "s",
            &p,
            true,
            &[],
            &[],
            Some("{nope}"),
            Granularity::PerSecret
        )
        .is_err());
        assert!(Mapping::new(
            "s",
            &p,
            true,
            &[],
            &[],
            Some("{key}"),
            Granularity::PerSecret
        )
        .is_err());
        assert!(
            Mapping::new("s", &p, true, &[], &[], Some("{path}"), Granularity::PerKey).is_err()
        );
    }

    #[test]
    fn prefixes_globs_and_recursion_select_paths() {
        let p = vec!["apps".to_string(), "apps/legacy".to_string()];
        let inc = vec!["apps/**".to_string()];
        let exc = vec!["**/tmp-*".to_string()];
        let map = Mapping::new("secret", &p, true, &inc, &exc, None, Granularity::PerSecret)
            .expect("mapping");
        assert_eq!(map.prefix_of("apps/a"), Some("apps"));
        assert_eq!(map.prefix_of("apps/legacy/b"), Some("apps/legacy"));
        assert_eq!(map.prefix_of("apps/x/tmp-1"), None);
        assert_eq!(map.prefix_of("other/a"), None);
        assert_eq!(map.prefix_of("appsx/a"), None);
        let flat = Mapping::new(
            "secret",
            &p[..1],
            false,
            &[],
            &[],
            None,
            Granularity::PerSecret,
        )
        .expect("mapping");
        assert_eq!(flat.prefix_of("apps/a"), Some("apps"));
        assert_eq!(flat.prefix_of("apps/a/b"), None);
    }

    #[test]
    fn names_the_target_refuses_are_reported() {
        assert!(refused_name("db/main").is_none());
        assert!(refused_name("has space").is_some());
        assert!(refused_name("").is_some());
        assert!(refused_name(&"a".repeat(513)).is_some());
        assert!(refused_name("app-abcdef").is_none());
    }
}
