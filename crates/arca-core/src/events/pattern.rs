//! EventBridge event patterns: parsed once (`Pattern::parse`, which refuses what
//! EventBridge refuses), then matched against events as JSON. The grammar, from
//! EventBridge's documentation of event patterns and their comparison operators:
//! a pattern is an object; each member is either an object (matched against the event's
//! object of that name), or a non-empty array of matchers, any of which may match the
//! event's value (or, when that value is an array, any of its elements); `$or` holds a
//! list of patterns of which one must match. Matchers: a string, number, boolean or null
//! (exact; numbers by value), `prefix`, `suffix` (each optionally `equals-ignore-case`),
//! `equals-ignore-case`, `wildcard` (`*` any run, `\*` a star), `anything-but` (a value, a
//! list, or a prefix, suffix, equals-ignore-case or wildcard), `numeric` (up to two
//! comparisons), `exists`, and `cidr` (IPv4 and IPv6).

use serde_json::{Map, Value};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// (member name, what it must match), all of which must hold.
    fields: Vec<(String, Node)>,
    /// Each a list of alternatives, one of which must hold.
    ors: Vec<Vec<Pattern>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Object(Pattern),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(String, bool),
    Suffix(String, bool),
    IgnoreCase(String),
    Wildcard(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    AnythingButIgnoreCase(Vec<String>),
    AnythingButWildcard(Vec<String>),
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// Why a pattern is refused (log-safe: a pattern holds no secrets, but the text names
/// only the member and the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(msg.into()))
}

impl Pattern {
    /// Parses a pattern from its JSON text.
    pub fn parse_str(text: &str) -> Result<Self, PatternError> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Self::parse(&v),
            Err(_) => err("Event pattern is not valid JSON."),
        }
    }

    pub fn parse(v: &Value) -> Result<Self, PatternError> {
        let Value::Object(m) = v else {
            return err("Event pattern must be a JSON object.");
        };
        Self::object(m, "")
    }

    fn object(m: &Map<String, Value>, path: &str) -> Result<Self, PatternError> {
        let mut p = Pattern {
            fields: Vec::new(),
            ors: Vec::new(),
        };
        for (k, v) in m {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k == "$or" {
                let Value::Array(alts) = v else {
                    return err(format!("{here}: $or must be an array of patterns."));
                };
                if alts.len() < 2 {
                    return err(format!("{here}: $or needs at least two patterns."));
                }
                let mut list = Vec::new();
                for a in alts {
                    let Value::Object(am) = a else {
                        return err(format!("{here}: each $or alternative must be an object."));
                    };
                    list.push(Self::object(am, path)?);
                }
                p.ors.push(list);
                continue;
            }
            let node = match v {
                Value::Object(sub) => Node::Object(Self::object(sub, &here)?),
                Value::Array(items) => {
                    if items.is_empty() {
                        return err(format!("{here}: an array of matchers cannot be empty."));
                    }
                    Node::Leaf(
                        items
                            .iter()
                            .map(|i| matcher(i, &here))
                            .collect::<Result<_, _>>()?,
                    )
                }
                _ => {
                    return err(format!(
                        "{here}: a pattern member must be an object or an array."
                    ))
                }
            };
            p.fields.push((k.clone(), node));
        }
        Ok(p)
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Value) -> bool {
        let obj = event.as_object();
        self.fields.iter().all(|(k, node)| {
            let field = obj.and_then(|o| o.get(k));
            match node {
                Node::Object(sub) => match field {
                    Some(v @ Value::Object(_)) => sub.matches(v),
                    // Absent: only a sub-pattern that wants absence can match.
                    None => sub.matches(&Value::Null) && sub.only_absence(),
                    _ => false,
                },
                Node::Leaf(ms) => ms.iter().any(|m| m.matches(field)),
            }
        }) && self
            .ors
            .iter()
            .all(|alts| alts.iter().any(|a| a.matches(event)))
    }

    /// Every leaf of this pattern is `exists: false` (it matches a missing object).
    fn only_absence(&self) -> bool {
        self.ors.is_empty()
            && self.fields.iter().all(|(_, n)| match n {
                Node::Object(p) => p.only_absence(),
                Node::Leaf(ms) => ms.iter().all(|m| *m == Matcher::Exists(false)),
            })
    }
}

fn strings(v: &Value, here: &str, what: &str) -> Result<Vec<String>, PatternError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                _ => err(format!("{here}: {what} takes strings.")),
            })
            .collect(),
        _ => err(format!(
            "{here}: {what} takes a string or a list of strings."
        )),
    }
}

fn string(v: &Value, here: &str, what: &str) -> Result<String, PatternError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => err(format!("{here}: {what} takes a string.")),
    }
}

/// A prefix or suffix operand: a string, or `{"equals-ignore-case": string}`.
fn affix(v: &Value, here: &str, what: &str) -> Result<(String, bool), PatternError> {
    match v {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Object(m) if m.len() == 1 => match m.get("equals-ignore-case") {
            Some(Value::String(s)) => Ok((s.clone(), true)),
            _ => err(format!(
                "{here}: {what} takes a string or equals-ignore-case."
            )),
        },
        _ => err(format!("{here}: {what} takes a string.")),
    }
}

fn wildcard_ok(w: &str, here: &str) -> Result<(), PatternError> {
    if w.contains("**") {
        return err(format!(
            "{here}: consecutive wildcard characters are not allowed."
        ));
    }
    Ok(())
}

fn matcher(v: &Value, here: &str) -> Result<Matcher, PatternError> {
    let m = match v {
        Value::Object(m) => m,
        Value::Array(_) => return err(format!("{here}: matchers cannot be nested arrays.")),
        other => return Ok(Matcher::Exact(other.clone())),
    };
    if m.len() != 1 {
        return err(format!(
            "{here}: a matcher object has exactly one operator."
        ));
    }
    let (op, arg) = m.iter().next().expect("one member");
    Ok(match op.as_str() {
        "prefix" => {
            let (s, ic) = affix(arg, here, "prefix")?;
            Matcher::Prefix(s, ic)
        }
        "suffix" => {
            let (s, ic) = affix(arg, here, "suffix")?;
            Matcher::Suffix(s, ic)
        }
        "equals-ignore-case" => Matcher::IgnoreCase(string(arg, here, op)?),
        "wildcard" => {
            let w = string(arg, here, op)?;
            wildcard_ok(&w, here)?;
            Matcher::Wildcard(w)
        }
        "exists" => match arg {
            Value::Bool(b) => Matcher::Exists(*b),
            _ => return err(format!("{here}: exists takes true or false.")),
        },
        "numeric" => Matcher::Numeric(numeric(arg, here)?),
        "cidr" => {
            let s = string(arg, here, op)?;
            cidr(&s).ok_or_else(|| PatternError(format!("{here}: not a CIDR block: {s}")))?
        }
        "anything-but" => match arg {
            Value::Object(inner) if inner.len() == 1 => {
                let (iop, iarg) = inner.iter().next().expect("one member");
                match iop.as_str() {
                    "prefix" => Matcher::AnythingButPrefix(string(iarg, here, "prefix")?),
                    "suffix" => Matcher::AnythingButSuffix(string(iarg, here, "suffix")?),
                    "equals-ignore-case" => {
                        Matcher::AnythingButIgnoreCase(strings(iarg, here, iop)?)
                    }
                    "wildcard" => {
                        let ws = strings(iarg, here, iop)?;
                        for w in &ws {
                            wildcard_ok(w, here)?;
                        }
                        Matcher::AnythingButWildcard(ws)
                    }
                    _ => return err(format!("{here}: unsupported anything-but operator {iop}.")),
                }
            }
            Value::Array(list) if !list.is_empty() => {
                let all_strings = list.iter().all(Value::is_string);
                let all_numbers = list.iter().all(Value::is_number);
                if !all_strings && !all_numbers {
                    return err(format!(
                        "{here}: anything-but takes a list of strings or of numbers."
                    ));
                }
                Matcher::AnythingBut(list.clone())
            }
            Value::String(_) | Value::Number(_) => Matcher::AnythingBut(vec![arg.clone()]),
            _ => {
                return err(format!(
                    "{here}: anything-but takes a value, a list or an operator."
                ))
            }
        },
        other => return err(format!("{here}: unrecognized match type {other}.")),
    })
}

fn numeric(arg: &Value, here: &str) -> Result<Vec<(Cmp, f64)>, PatternError> {
    let Value::Array(a) = arg else {
        return err(format!("{here}: numeric takes a list."));
    };
    if a.is_empty() || a.len() % 2 != 0 || a.len() > 4 {
        return err(format!("{here}: numeric takes one or two comparisons."));
    }
    let mut out = Vec::new();
    for pair in a.chunks(2) {
        let cmp = match pair[0].as_str() {
            Some("<") => Cmp::Lt,
            Some("<=") => Cmp::Le,
            Some("=") => Cmp::Eq,
            Some(">=") => Cmp::Ge,
            Some(">") => Cmp::Gt,
            _ => return err(format!("{here}: unrecognized numeric operator.")),
        };
        let Some(n) = pair[1].as_f64() else {
            return err(format!("{here}: numeric comparisons take numbers."));
        };
        out.push((cmp, n));
    }
    if out.len() == 2 {
        let lower = |c: Cmp| matches!(c, Cmp::Gt | Cmp::Ge);
        let upper = |c: Cmp| matches!(c, Cmp::Lt | Cmp::Le);
        let ok = (lower(out[0].0) && upper(out[1].0)) || (upper(out[0].0) && lower(out[1].0));
        if !ok {
            return err(format!(
                "{here}: two numeric comparisons must be a lower and an upper bound."
            ));
        }
    }
    Ok(out)
}

fn cidr(s: &str) -> Option<Matcher> {
    let (addr, bits) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Matcher::Cidr(ip, bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `*` matches any run of characters (none included); `\*` is a star.
fn wildcard(pattern: &str, s: &str) -> bool {
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'*') => {
                chars.next();
                parts.last_mut().expect("one part").push('*');
            }
            '*' => parts.push(String::new()),
            c => parts.last_mut().expect("one part").push(c),
        }
    }
    if parts.len() == 1 {
        return parts[0] == s;
    }
    let (first, last) = (&parts[0], &parts[parts.len() - 1]);
    if !s.starts_with(first.as_str()) || s.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    if !s.ends_with(last.as_str()) {
        return false;
    }
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid.as_str()) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Matcher {
    /// Whether the event's value `field` (None: absent) matches; an array matches when
    /// any element does (`exists` looks at the field itself).
    fn matches(&self, field: Option<&Value>) -> bool {
        match self {
            Matcher::Exists(want) => {
                let present = match field {
                    None => false,
                    // Only leaves exist for a pattern: an object is not matched by exists.
                    Some(Value::Object(_)) => false,
                    Some(Value::Array(a)) => !a.is_empty(),
                    Some(_) => true,
                };
                present == *want
            }
            // anything-but holds when no element is one of the excluded.
            Matcher::AnythingBut(_)
            | Matcher::AnythingButPrefix(_)
            | Matcher::AnythingButSuffix(_)
            | Matcher::AnythingButIgnoreCase(_)
            | Matcher::AnythingButWildcard(_) => match field {
                None => false,
                Some(Value::Array(a)) => !a.is_empty() && a.iter().all(|v| self.one(v)),
                Some(v) => self.one(v),
            },
            _ => match field {
                None => false,
                Some(Value::Array(a)) => a.iter().any(|v| self.one(v)),
                Some(v) => self.one(v),
            },
        }
    }

    fn one(&self, v: &Value) -> bool {
        let s = v.as_str();
        match self {
            Matcher::Exact(x) => same(x, v),
            Matcher::Prefix(p, false) => s.is_some_and(|s| s.starts_with(p.as_str())),
            Matcher::Prefix(p, true) => {
                s.is_some_and(|s| s.to_lowercase().starts_with(&p.to_lowercase()))
            }
            Matcher::Suffix(p, false) => s.is_some_and(|s| s.ends_with(p.as_str())),
            Matcher::Suffix(p, true) => {
                s.is_some_and(|s| s.to_lowercase().ends_with(&p.to_lowercase()))
            }
            Matcher::IgnoreCase(p) => s.is_some_and(|s| s.to_lowercase() == p.to_lowercase()),
            Matcher::Wildcard(w) => s.is_some_and(|s| wildcard(w, s)),
            Matcher::AnythingBut(list) => {
                (v.is_string() || v.is_number()) && !list.iter().any(|x| same(x, v))
            }
            Matcher::AnythingButPrefix(p) => s.is_some_and(|s| !s.starts_with(p.as_str())),
            Matcher::AnythingButSuffix(p) => s.is_some_and(|s| !s.ends_with(p.as_str())),
            Matcher::AnythingButIgnoreCase(list) => s.is_some_and(|s| {
                let l = s.to_lowercase();
                !list.iter().any(|x| x.to_lowercase() == l)
            }),
            Matcher::AnythingButWildcard(list) => {
                s.is_some_and(|s| !list.iter().any(|w| wildcard(w, s)))
            }
            Matcher::Numeric(cmps) => v.as_f64().is_some_and(|n| {
                cmps.iter().all(|(c, x)| match c {
                    Cmp::Lt => n < *x,
                    Cmp::Le => n <= *x,
                    Cmp::Eq => n == *x,
                    Cmp::Ge => n >= *x,
                    Cmp::Gt => n > *x,
                })
            }),
            Matcher::Cidr(net, bits) => s
                .and_then(|s| s.parse::<IpAddr>().ok())
                .is_some_and(|ip| in_cidr(ip, *net, *bits)),
            Matcher::Exists(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &str = include_str!("pattern_cases.json");

    #[test]
    fn the_documented_cases_match_as_eventbridge_matches_them() {
        let doc: Value = serde_json::from_str(CASES).expect("cases");
        let base = doc["base"].as_object().expect("base").clone();
        let cases = doc["cases"].as_array().expect("cases");
        assert!(cases.len() >= 40);
        for c in cases {
            let name = c["name"].as_str().unwrap_or("?");
            let parsed = Pattern::parse(&c["pattern"]);
            if c["invalid"] == Value::Bool(true) {
                assert!(parsed.is_err(), "{name}: should be refused");
                continue;
            }
            let p = parsed.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let mut event = base.clone();
            for (k, v) in c["event"].as_object().expect("event") {
                event.insert(k.clone(), v.clone());
            }
            assert_eq!(
                p.matches(&Value::Object(event)),
                c["match"].as_bool().expect("match"),
                "{name}"
            );
        }
    }

    #[test]
    fn wildcards_anchor_at_both_ends() {
        assert!(wildcard("*", ""));
        assert!(wildcard("a*", "abc"));
        assert!(!wildcard("a*", "bac"));
        assert!(wildcard("*c", "abc"));
        assert!(wildcard("a*b*c", "aXbYc"));
        assert!(!wildcard("a*b*c", "aXcYb"));
        assert!(!wildcard("ab*ba", "aba"));
    }
}
