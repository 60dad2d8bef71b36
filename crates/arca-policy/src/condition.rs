//! The Condition element: operators (String*, Numeric*, Date*, Bool, BinaryEquals,
//! IpAddress, Arn*, Null), their `IfExists` forms and the `ForAllValues`/`ForAnyValue`
//! set qualifiers, evaluated against a request's context as the IAM User Guide's
//! "Condition operators" and "Multivalued context keys" pages describe.

use crate::document::PolicyError;
use crate::pattern::{Pattern, Vars};
use serde_json::Value as Json;

/// What a condition reads from the request.
pub trait Lookup: Vars {
    /// Every value of `key` (lowercased), as text; None when the request has none (an
    /// empty multivalued key counts as absent).
    fn values(&self, key: &str) -> Option<Vec<String>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

/// One (operator, key, values) triple of a Condition block.
#[derive(Debug, Clone)]
pub struct Condition {
    family: Family,
    /// The `Not` form (StringNotEquals, NotIpAddress, ArnNotLike, ...).
    negated: bool,
    if_exists: bool,
    set: Option<SetQualifier>,
    /// Lowercased: condition key names are case-insensitive.
    key: String,
    values: Vec<Pattern>,
}

/// Operator name (without qualifier or IfExists) -> its family and whether it negates.
fn operator(name: &str) -> Option<(Family, bool)> {
    use Family::*;
    Some(match name {
        "StringEquals" => (StringEquals, false),
        "StringNotEquals" => (StringEquals, true),
        "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
        "StringLike" => (StringLike, false),
        "StringNotLike" => (StringLike, true),
        "NumericEquals" => (NumericEquals, false),
        "NumericNotEquals" => (NumericEquals, true),
        "NumericLessThan" => (NumericLessThan, false),
        "NumericLessThanEquals" => (NumericLessThanEquals, false),
        "NumericGreaterThan" => (NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
        "DateEquals" => (DateEquals, false),
        "DateNotEquals" => (DateEquals, true),
        "DateLessThan" => (DateLessThan, false),
        "DateLessThanEquals" => (DateLessThanEquals, false),
        "DateGreaterThan" => (DateGreaterThan, false),
        "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
        "Bool" => (Bool, false),
        "BinaryEquals" => (BinaryEquals, false),
        "IpAddress" => (IpAddress, false),
        "NotIpAddress" => (IpAddress, true),
        "ArnEquals" | "ArnLike" => (Arn, false),
        "ArnNotEquals" | "ArnNotLike" => (Arn, true),
        "Null" => (Null, false),
        _ => return None,
    })
}

/// Parses a statement's Condition block.
pub(crate) fn parse_block(v: &Json, variables: bool) -> Result<Vec<Condition>, PolicyError> {
    let Json::Object(ops) = v else {
        return Err(PolicyError("Condition must be an object".into()));
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let (set, rest) = if let Some(r) = op.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = op.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, op.as_str())
        };
        let (name, if_exists) = match rest.strip_suffix("IfExists") {
            Some(n) if n != "Null" => (n, true),
            _ => (rest, false),
        };
        let Some((family, negated)) = operator(name) else {
            return Err(PolicyError(format!("Invalid Condition type : {op}")));
        };
        let Json::Object(keys) = keys else {
            return Err(PolicyError(format!("Condition {op} must be an object")));
        };
        for (key, values) in keys {
            let values = condition_values(values, op)?;
            let wild = matches!(family, Family::StringLike | Family::Arn);
            let values: Vec<Pattern> = values
                .iter()
                .map(|v| Pattern::compile(v, variables, wild))
                .collect();
            // A value its operator cannot read (a number that is not one) is kept: it
            // matches nothing, as the documented cases expect, rather than failing the
            // whole document.
            out.push(Condition {
                family,
                negated,
                if_exists,
                set,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(out)
}

/// A condition's value(s): strings, numbers and booleans, alone or in an array.
fn condition_values(v: &Json, op: &str) -> Result<Vec<String>, PolicyError> {
    let one = |x: &Json| match x {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError(format!(
            "Condition {op} values must be strings, numbers or booleans"
        ))),
    };
    match v {
        Json::Array(a) if a.is_empty() => Err(PolicyError(format!(
            "Condition {op} must have at least one value"
        ))),
        Json::Array(a) => a.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

impl Condition {
    /// Whether the condition pins one of `keys` (lowercased) to fixed values (no
    /// wildcard, no variable, and for addresses not the whole internet): the test of
    /// S3's and Secrets Manager's "the meaning of public".
    pub fn pins(&self, keys: &[&str]) -> bool {
        use crate::pattern::NoVars;
        if self.negated
            || self.if_exists
            || self.set == Some(SetQualifier::ForAllValues)
            || !keys.contains(&self.key.as_str())
        {
            return false;
        }
        self.values.iter().all(|p| {
            let Some(text) = p.text(&NoVars).filter(|_| !p.has_variables()) else {
                return false;
            };
            match self.family {
                Family::StringEquals | Family::StringEqualsIgnoreCase => true,
                Family::StringLike | Family::Arn => !text.contains(['*', '?']),
                Family::IpAddress => network(&text).is_some_and(|n| n.prefix_len() > 0),
                _ => false,
            }
        })
    }

    /// Whether the condition holds for the request.
    pub fn holds(&self, req: &dyn Lookup) -> bool {
        let found = req.values(&self.key).filter(|v| !v.is_empty());
        if self.family == Family::Null {
            let absent = found.is_none();
            return self.values.iter().any(|p| {
                p.text(req)
                    .is_some_and(|t| t.eq_ignore_ascii_case(if absent { "true" } else { "false" }))
            });
        }
        let Some(found) = found else {
            // An absent key: IfExists passes; ForAllValues holds vacuously; ForAnyValue
            // fails; otherwise a negated operator holds and a positive one fails.
            return self.if_exists
                || match self.set {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => false,
                    None => self.negated,
                };
        };
        let one = |value: &str| {
            let any = self.values.iter().any(|p| self.matches(p, value, req));
            any != self.negated
        };
        match self.set {
            Some(SetQualifier::ForAllValues) => found.iter().all(|v| one(v)),
            _ => found.iter().any(|v| one(v)),
        }
    }

    /// Whether the request's `value` matches the policy's `pattern` (before negation).
    fn matches(&self, pattern: &Pattern, value: &str, vars: &dyn Vars) -> bool {
        use Family::*;
        match self.family {
            StringEquals | StringLike => pattern.matches(value, vars, false),
            StringEqualsIgnoreCase => pattern.matches(value, vars, true),
            Arn => pattern
                .text(vars)
                .is_some_and(|p| arn_like(&p, value, vars)),
            _ => {
                let Some(p) = pattern.text(vars) else {
                    return false;
                };
                match self.family {
                    f if f.is_numeric() => match (number(value), number(&p)) {
                        (Some(a), Some(b)) => compare(f, a, b),
                        _ => false,
                    },
                    f if f.is_date() => match (date(value), date(&p)) {
                        (Some(a), Some(b)) => compare(f, a, b),
                        _ => false,
                    },
                    Bool => value.eq_ignore_ascii_case(&p),
                    BinaryEquals => value == p,
                    IpAddress => match (value.trim().parse::<std::net::IpAddr>(), network(&p)) {
                        (Ok(ip), Some(net)) => net.contains(&ip),
                        _ => false,
                    },
                    _ => false,
                }
            }
        }
    }
}

impl Family {
    fn is_numeric(self) -> bool {
        use Family::*;
        matches!(
            self,
            NumericEquals
                | NumericLessThan
                | NumericLessThanEquals
                | NumericGreaterThan
                | NumericGreaterThanEquals
        )
    }

    fn is_date(self) -> bool {
        use Family::*;
        matches!(
            self,
            DateEquals
                | DateLessThan
                | DateLessThanEquals
                | DateGreaterThan
                | DateGreaterThanEquals
        )
    }
}

/// `request OP policy` for the ordered operators.
fn compare(f: Family, request: f64, policy: f64) -> bool {
    use Family::*;
    match f {
        NumericEquals | DateEquals => request == policy,
        NumericLessThan | DateLessThan => request < policy,
        NumericLessThanEquals | DateLessThanEquals => request <= policy,
        NumericGreaterThan | DateGreaterThan => request > policy,
        NumericGreaterThanEquals | DateGreaterThanEquals => request >= policy,
        _ => false,
    }
}

fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    // Plain decimal numbers only (no "inf", "NaN" or hex).
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date as IAM accepts it (ISO 8601, with or without a time, or epoch seconds), as
/// seconds since the epoch.
pub(crate) fn date(s: &str) -> Option<f64> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let s = s.trim();
    if let Some(n) = number(s) {
        return Some(n);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(d) = time::Date::parse(s, &Iso8601::DEFAULT) {
        return Some(d.midnight().assume_utc().unix_timestamp() as f64);
    }
    None
}

/// A CIDR block, or a single address (its own /32 or /128).
fn network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Some(n);
    }
    s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from)
}

/// ArnEquals/ArnLike: each of the six colon-separated parts compared on its own,
/// case-sensitively, with wildcards (the sixth part is the rest, colons included).
fn arn_like(pattern: &str, value: &str, vars: &dyn Vars) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    p.len() == 6
        && v.len() == 6
        && p.iter()
            .zip(&v)
            .all(|(p, v)| Pattern::compile(p, false, true).matches(v, vars, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_the_forms_iam_accepts() {
        assert_eq!(date("1970-01-02"), Some(86_400.0));
        assert_eq!(date("1970-01-01T00:01:00Z"), Some(60.0));
        assert_eq!(date("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(date("1970-01-01T00:00:01.500Z"), Some(1.5));
        assert_eq!(date("86400"), Some(86_400.0));
        assert_eq!(date("yesterday"), None);
    }
}
