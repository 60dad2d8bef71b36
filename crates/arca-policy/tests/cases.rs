//! The evaluation table: every case in `tests/cases/*.json` (a policy set, a request and
//! the documented decision, each with its source) decided by the engine.

use arca_policy::{
    evaluate, evaluate_trust, Context, Decision, Kind, Policy, Principal, PrincipalKind, Request,
    Value,
};
use serde_json::Value as Json;
use std::collections::BTreeMap;

fn principal(j: &Json) -> Principal {
    let s = |k: &str| j.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let kind = match s("type").as_deref() {
        Some("user") => PrincipalKind::User,
        Some("role-session") => PrincipalKind::RoleSession,
        Some("root") => PrincipalKind::Root,
        Some("anonymous") => PrincipalKind::Anonymous,
        other => panic!("unknown principal type {other:?}"),
    };
    let tags: BTreeMap<String, String> = j
        .get("tags")
        .and_then(|t| t.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().expect("tag values are strings").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Principal {
        arn: s("arn").unwrap_or_default(),
        account: s("account").unwrap_or_default(),
        kind,
        role_arn: s("role_arn"),
        name: s("name"),
        userid: s("userid").unwrap_or_default(),
        tags,
    }
}

fn context(j: Option<&Json>) -> Context {
    let mut c = Context::new();
    for (k, v) in j.and_then(|j| j.as_object()).into_iter().flatten() {
        let v = match v {
            Json::String(s) => Value::Str(s.clone()),
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Num(n.as_f64().expect("a number")),
            Json::Array(a) => Value::List(
                a.iter()
                    .map(|x| x.as_str().expect("list values are strings").to_owned())
                    .collect(),
            ),
            other => panic!("unsupported context value {other}"),
        };
        c.set(k, v);
    }
    c
}

fn decision(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "Allow",
        Decision::ExplicitDeny(_) => "ExplicitDeny",
        Decision::ImplicitDeny(_) => "ImplicitDeny",
    }
}

#[test]
fn every_documented_case_decides_as_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    let mut names = std::collections::HashSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let cases: Vec<Json> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for case in cases {
            total += 1;
            let name = case["name"].as_str().expect("name").to_owned();
            assert!(names.insert(name.clone()), "duplicate case name {name}");
            let source = case["source"].as_str().expect("source");
            assert!(
                source.starts_with("IAM:")
                    || source.starts_with("Secrets Manager:")
                    || source.starts_with("reasoned:"),
                "{name}: the source must say where the case comes from"
            );
            let identity: Vec<Policy> = case["identity_policies"]
                .as_array()
                .expect("identity_policies")
                .iter()
                .map(|p| {
                    Policy::from_json(p, Kind::Identity)
                        .unwrap_or_else(|e| panic!("{name}: identity policy refused: {e}"))
                })
                .collect();
            let resource = match &case["resource_policy"] {
                Json::Null => None,
                p => Some(
                    Policy::from_json(p, Kind::Resource)
                        .unwrap_or_else(|e| panic!("{name}: resource policy refused: {e}")),
                ),
            };
            let p = principal(&case["principal"]);
            let r = &case["request"];
            let ctx = context(r.get("context"));
            let req = Request {
                principal: &p,
                action: r["action"].as_str().expect("action"),
                resource: r["resource"].as_str().expect("resource"),
                resource_account: r["resource_account"].as_str().expect("resource_account"),
                context: &ctx,
            };
            let refs: Vec<&Policy> = identity.iter().collect();
            // A case with "trust": true decides AssumeRole against a role's trust policy.
            let got = match (case["trust"].as_bool(), resource.as_ref()) {
                (Some(true), Some(trust)) => decision(evaluate_trust(&req, &refs, trust)),
                _ => decision(evaluate(&req, &refs, resource.as_ref())),
            };
            let want = case["expected"].as_str().expect("expected");
            if got != want {
                failures.push(format!(
                    "{}: {name}: got {got}, want {want} ({source})",
                    file.file_name().and_then(|f| f.to_str()).unwrap_or("?")
                ));
            }
        }
    }
    assert!(
        total >= 150,
        "the table has {total} cases; the issue asks for at least 150"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
