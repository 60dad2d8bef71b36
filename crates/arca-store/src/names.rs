//! Name-prefix hints as index ranges: the half-open ranges of names that start with any of
//! a ListSecrets filter's prefixes, shared by the backends that narrow candidates with them.

/// The half-open name range `[lo, hi)` of names starting with some prefix (`hi = None`:
/// unbounded above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRange {
    pub lo: String,
    pub hi: Option<String>,
}

/// The smallest string greater than every string starting with `p`, if any. Backends
/// compare names bytewise (SQLite's TEXT, PostgreSQL's "C" collation) and UTF-8 byte order equals code point order, so bumping the
/// last character (dropping trailing U+10FFFF) gives the bound.
fn prefix_successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(c) = chars.pop() {
        let next = match c {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Sorted, disjoint ranges covering the names that start with any of `prefixes`, or None
/// if they cover everything (an empty prefix, or no prefixes at all: the hint is then
/// treated as absent, which is always safe because the predicate decides).
pub fn prefix_ranges(prefixes: &[String]) -> Option<Vec<NameRange>> {
    let mut sorted: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() || sorted[0].is_empty() {
        return None;
    }
    let mut kept: Vec<&str> = Vec::new();
    for p in sorted {
        // After sorting, a prefix of `p` sorts before it; its range already covers `p`'s.
        if kept.last().is_some_and(|k| p.starts_with(k)) {
            continue;
        }
        kept.push(p);
    }
    Some(
        kept.into_iter()
            .map(|p| NameRange {
                lo: p.to_owned(),
                hi: prefix_successor(p),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_bumps_last_char() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    }

    #[test]
    fn prefix_ranges_drop_covered_prefixes() {
        let r = prefix_ranges(&["b/x".into(), "a".into(), "b".into(), "ab".into()]);
        let r = r.expect("ranges");
        assert_eq!(
            r,
            vec![
                NameRange {
                    lo: "a".into(),
                    hi: Some("b".into())
                },
                NameRange {
                    lo: "b".into(),
                    hi: Some("c".into())
                },
            ]
        );
        assert_eq!(prefix_ranges(&["".into(), "a".into()]), None);
        assert_eq!(prefix_ranges(&[]), None);
    }
}
