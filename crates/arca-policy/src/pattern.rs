//! Text patterns as policies write them: `*` (any run of characters) and `?` (any one
//! character), with policy variables (`${aws:username}`, `${key, 'default'}`, and the
//! escapes `${*}`, `${?}`, `${$}`) compiled once, when the policy is parsed, and
//! resolved per request. A variable's value is always literal text: a `*` in a user
//! name is not a wildcard.

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(char),
    /// `*`: any run of characters, the empty one included.
    Many,
    /// `?`: exactly one character.
    One,
    /// `${key}` or `${key, 'default'}`; the key lowercased (keys are case-insensitive).
    Var {
        key: String,
        default: Option<String>,
    },
}

/// No variables at all: for judging a policy's text outside any request.
pub(crate) struct NoVars;

impl Vars for NoVars {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pieces: Vec<Piece>,
    /// Whether `*`/`?` are wildcards (StringEquals compares them as text).
    wild: bool,
}

/// What a pattern's variables are resolved against.
pub trait Vars {
    /// The single value of `key` (lowercased) as text, if the request has one.
    fn var(&self, key: &str) -> Option<String>;
}

impl Pattern {
    /// Compiles `text`. `variables`: whether `${...}` is a variable (policy version
    /// 2012-10-17) or literal text (2008-10-17, or no version). `wild`: whether `*` and
    /// `?` are wildcards.
    pub fn compile(text: &str, variables: bool, wild: bool) -> Pattern {
        let mut pieces = Vec::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                if let Some(end) = rest.find('}') {
                    pieces.push(variable(&rest[2..end]));
                    rest = &rest[end + 1..];
                    continue;
                }
            }
            pieces.push(match c {
                '*' if wild => Piece::Many,
                '?' if wild => Piece::One,
                c => Piece::Lit(c),
            });
            rest = &rest[c.len_utf8()..];
        }
        Pattern { pieces, wild }
    }

    /// Whether the pattern holds a variable (its meaning then depends on the request).
    pub fn has_variables(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Var { .. }))
    }

    /// Whether the pattern is the single wildcard `*`.
    pub fn is_any(&self) -> bool {
        self.wild && self.pieces == [Piece::Many]
    }

    /// The pattern with its variables replaced by their values (None: a variable has no
    /// value and no default, so the pattern matches nothing).
    fn resolve(&self, vars: &dyn Vars) -> Option<Vec<Piece>> {
        let mut out = Vec::with_capacity(self.pieces.len());
        for p in &self.pieces {
            match p {
                Piece::Var { key, default } => {
                    let value = match key.as_str() {
                        "*" => Some("*".to_owned()),
                        "?" => Some("?".to_owned()),
                        "$" => Some("$".to_owned()),
                        _ => vars.var(key).or_else(|| default.clone()),
                    }?;
                    out.extend(value.chars().map(Piece::Lit));
                }
                other => out.push(other.clone()),
            }
        }
        Some(out)
    }

    /// Whether `text` matches; `fold`: compare letters case-insensitively.
    pub fn matches(&self, text: &str, vars: &dyn Vars, fold: bool) -> bool {
        if !self.has_variables() {
            return glob(&self.pieces, text, fold);
        }
        match self.resolve(vars) {
            Some(pieces) => glob(&pieces, text, fold),
            None => false,
        }
    }

    /// The pattern's text with its variables resolved (for operators that compare as
    /// numbers, dates, addresses or booleans), if every variable has a value.
    pub fn text(&self, vars: &dyn Vars) -> Option<String> {
        let pieces = if self.has_variables() {
            self.resolve(vars)?
        } else {
            self.pieces.clone()
        };
        // Resolved pieces hold no variables.
        Some(
            pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Lit(c) => Some(*c),
                    Piece::Many => Some('*'),
                    Piece::One => Some('?'),
                    Piece::Var { .. } => None,
                })
                .collect(),
        )
    }
}

/// `${key}` or `${key, 'default'}` (the text between the braces).
fn variable(inner: &str) -> Piece {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or(d);
            (k.trim(), Some(d.to_owned()))
        }
        None => (inner.trim(), None),
    };
    Piece::Var {
        key: key.to_ascii_lowercase(),
        default,
    }
}

fn eq(a: char, b: char, fold: bool) -> bool {
    a == b || (fold && a.to_lowercase().eq(b.to_lowercase()))
}

/// Wildcard matching by the classic two-pointer walk: on a mismatch after a `*`, the
/// `*` takes one more character. Linear in practice, quadratic at worst (no blow-up).
fn glob(pattern: &[Piece], text: &str, fold: bool) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Piece::Many) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Piece::One) => {
                p += 1;
                t += 1;
            }
            Some(Piece::Lit(c)) if eq(*c, text[t], fold) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|x| *x == Piece::Many)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoVars;
    impl Vars for NoVars {
        fn var(&self, key: &str) -> Option<String> {
            (key == "aws:username").then(|| "a*b".to_owned())
        }
    }

    fn m(p: &str, t: &str) -> bool {
        Pattern::compile(p, true, true).matches(t, &NoVars, false)
    }

    #[test]
    fn wildcards_match_as_iam_documents() {
        assert!(m("*", ""));
        assert!(m("a*", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*:secret:*", "arn:aws:secretsmanager:r:1:secret:x"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("abc", "abcd"));
    }

    #[test]
    fn variables_resolve_to_literal_text() {
        // The user name "a*b" is text: it does not match "aXb".
        assert!(m("home/${aws:username}/*", "home/a*b/x"));
        assert!(!m("home/${aws:username}/*", "home/aXb/x"));
        assert!(m("${*}", "*"));
        assert!(!m("${*}", "x"));
        assert!(m("${aws:missing, 'dflt'}", "dflt"));
        assert!(!m("${aws:missing}", ""));
        // Version 2008-10-17: the text is literal.
        assert!(Pattern::compile("${aws:username}", false, true).matches(
            "${aws:username}",
            &NoVars,
            false
        ));
    }
}
