//! A request's `requestParameters` as CloudTrail records them: the request's members with
//! their names' first letter in lower case (`SecretId` becomes `secretId`, nested members
//! too), minus every member the model marks sensitive. The model's sensitive shapes are
//! SecretString, SecretBinary and RotationToken (and the generated password, which only a
//! response carries); AWS leaves those members out of the record, so Arca does too.

use serde_json::{Map, Value};

/// Members never recorded, in any operation, at any depth.
const SENSITIVE: &[&str] = &["SecretString", "SecretBinary", "RotationToken"];

/// The recorded parameters of a call to `op` with JSON `body` (an empty object when the
/// body is not a JSON object: the call failed to parse, and its record says so).
pub(crate) fn request_parameters(_op: &str, body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Value::Object(object(m)),
        _ => Value::Object(Map::new()),
    }
}

fn object(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .filter(|(k, _)| !SENSITIVE.contains(&k.as_str()))
        .map(|(k, v)| (lower_first(&k), value(v)))
        .collect()
}

fn value(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(object(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(value).collect()),
        v => v,
    }
}

fn lower_first(k: &str) -> String {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_renamed_and_sensitive_ones_dropped_at_any_depth() {
        let body = json!({
            "Name": "db",
            "SecretString": "canary-1",
            "SecretBinary": "Y2FuYXJ5LTI=",
            "Tags": [{"Key": "team", "Value": "a"}],
            "RotationRules": {"AutomaticallyAfterDays": 30},
            "Nested": {"RotationToken": "canary-3"},
        });
        let got = request_parameters("CreateSecret", body.to_string().as_bytes());
        assert_eq!(
            got,
            json!({
                "name": "db",
                "tags": [{"key": "team", "value": "a"}],
                "rotationRules": {"automaticallyAfterDays": 30},
                "nested": {},
            })
        );
        assert!(!got.to_string().contains("canary"));
    }

    #[test]
    fn a_body_that_is_not_an_object_records_no_parameters() {
        assert_eq!(request_parameters("X", b"not json"), json!({}));
        assert_eq!(request_parameters("X", b"[1]"), json!({}));
    }
}
