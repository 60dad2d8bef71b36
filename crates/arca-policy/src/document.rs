//! The IAM JSON policy grammar: a document's text becomes a compiled `Policy` (patterns,
//! condition operators and values parsed once), or a `PolicyError` saying what is wrong
//! in the words IAM uses. Identity policies carry no Principal and must name a Resource;
//! resource policies must name a Principal.

use crate::condition::Condition;
use crate::pattern::Pattern;
use serde_json::Value as Json;

/// Where a document is attached, which decides what it must and must not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Attached to a user or role.
    Identity,
    /// Attached to a resource (a secret, a key).
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Why a document was refused (the text is fit for a client: it quotes only the
/// document, never anything else).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

/// A compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `2012-10-17` (policy variables) or the older `2008-10-17` (none).
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
    /// Whether the decision may change with the time alone (a condition or variable on
    /// aws:CurrentTime, aws:EpochTime, aws:TokenIssueTime or aws:MultiFactorAuthAge):
    /// such a policy's decisions are never cached.
    pub time_dependent: bool,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// Principal or NotPrincipal (resource policies only).
    pub principal: Option<Negatable<Principals>>,
    /// Action or NotAction, lowercased (actions are case-insensitive).
    pub action: Negatable<Vec<Pattern>>,
    /// Resource or NotResource; None: the statement is about the resource it is attached to.
    pub resource: Option<Negatable<Vec<Pattern>>>,
    pub conditions: Vec<Condition>,
}

/// An element and whether it was written in its `Not` form.
#[derive(Debug, Clone)]
pub struct Negatable<T> {
    pub negated: bool,
    pub items: T,
}

/// Who a resource policy's statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Anyone,
    List(Vec<PrincipalId>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalId {
    /// A whole account (`123456789012` or `arn:aws:iam::123456789012:root`).
    Account(String),
    /// A user, role or role-session ARN.
    Arn(String),
    /// `{"Service": "..."}`, `{"Federated": "..."}`, `{"CanonicalUser": "..."}`.
    Other { kind: String, id: String },
}

impl Policy {
    /// Parses and compiles a document attached as `kind`.
    pub fn parse(text: &str, kind: Kind) -> Result<Policy, PolicyError> {
        let json: Json = match serde_json::from_str(text) {
            Ok(j) => j,
            Err(_) => return err("This policy contains invalid Json"),
        };
        Self::from_json(&json, kind)
    }

    pub fn from_json(json: &Json, kind: Kind) -> Result<Policy, PolicyError> {
        let Json::Object(top) = json else {
            return err("This policy contains invalid Json");
        };
        let mut version = None;
        let mut id = None;
        let mut statements = None;
        for (k, v) in top {
            match k.as_str() {
                "Version" => match v.as_str() {
                    Some(s @ ("2012-10-17" | "2008-10-17")) => version = Some(s.to_owned()),
                    _ => return err("The policy document has an invalid Version"),
                },
                "Id" => id = Some(string(v, "Id")?),
                "Statement" => statements = Some(v),
                other => {
                    return err(format!(
                        "Policy document should not specify a field named {other}"
                    ))
                }
            }
        }
        let variables = version.as_deref() == Some("2012-10-17");
        let list = match statements {
            Some(Json::Array(a)) => a.iter().collect::<Vec<_>>(),
            Some(o @ Json::Object(_)) => vec![o],
            Some(_) => return err("Statement must be an object or an array of objects"),
            None => return err("Missing required field Statement"),
        };
        if list.is_empty() {
            return err("Missing required field Statement");
        }
        let statements = list
            .into_iter()
            .map(|s| statement(s, kind, variables))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sids: Vec<&str> = statements.iter().filter_map(|s| s.sid.as_deref()).collect();
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return err("Statement IDs (SID) in a single policy must be unique");
        }
        // Conservative: any mention of a time key, wherever it appears.
        let text = json.to_string().to_ascii_lowercase();
        let time_dependent = [
            "aws:currenttime",
            "aws:epochtime",
            "aws:tokenissuetime",
            "aws:multifactorauthage",
        ]
        .iter()
        .any(|k| text.contains(k));
        Ok(Policy {
            version,
            id,
            statements,
            time_dependent,
        })
    }

    /// Whether the policy grants broad access: an Allow to everyone (`*`, or
    /// NotPrincipal) that no condition pins to a fixed source, account, network or
    /// caller id (S3's "The meaning of public", which Secrets Manager's BlockPublicPolicy
    /// follows).
    pub fn grants_public_access(&self) -> bool {
        const PINNING: &[&str] = &[
            "aws:sourcearn",
            "aws:sourcevpc",
            "aws:sourcevpce",
            "aws:sourceaccount",
            "aws:sourceowner",
            "aws:sourceip",
            "aws:userid",
        ];
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.principal
                    .as_ref()
                    .is_some_and(|p| p.negated || p.items == Principals::Anyone)
                && !s.conditions.iter().any(|c| c.pins(PINNING))
        })
    }

    /// Whether the policy denies everyone, unconditionally, the right to change the
    /// policy again (the lockout ValidateResourcePolicy warns of).
    pub fn locks_out(&self) -> bool {
        use crate::pattern::NoVars;
        let manages = |a: &Negatable<Vec<Pattern>>| {
            [
                "secretsmanager:putresourcepolicy",
                "secretsmanager:deleteresourcepolicy",
            ]
            .iter()
            .any(|op| a.items.iter().any(|p| p.matches(op, &NoVars, true)) != a.negated)
        };
        self.statements.iter().any(|s| {
            s.effect == Effect::Deny
                && s.conditions.is_empty()
                && s.principal
                    .as_ref()
                    .is_some_and(|p| !p.negated && p.items == Principals::Anyone)
                && manages(&s.action)
                && s.resource
                    .as_ref()
                    .is_none_or(|r| !r.negated && r.items.iter().any(Pattern::is_any))
        })
    }

    /// Whether policy variables are substituted (Version 2012-10-17).
    pub fn variables(&self) -> bool {
        self.version.as_deref() == Some("2012-10-17")
    }
}

fn string(v: &Json, field: &str) -> Result<String, PolicyError> {
    match v {
        Json::String(s) => Ok(s.clone()),
        _ => err(format!("{field} must be a string")),
    }
}

/// A string or a non-empty array of strings.
fn strings(v: &Json, field: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(a) if !a.is_empty() => a.iter().map(|x| string(x, field)).collect(),
        _ => err(format!(
            "{field} must be a string or a non-empty array of strings"
        )),
    }
}

fn statement(v: &Json, kind: Kind, variables: bool) -> Result<Statement, PolicyError> {
    let Json::Object(o) = v else {
        return err("Statement must be an object or an array of objects");
    };
    let mut sid = None;
    let mut effect = None;
    let mut principal = None;
    let mut action = None;
    let mut resource = None;
    let mut conditions = Vec::new();
    for (k, v) in o {
        match k.as_str() {
            "Sid" => sid = Some(string(v, "Sid")?),
            "Effect" => {
                effect = Some(match v.as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => return err("Invalid effect: the Effect must be Allow or Deny"),
                })
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return err("Statement can't have both Principal and NotPrincipal");
                }
                principal = Some(Negatable {
                    negated: k == "NotPrincipal",
                    items: principals(v)?,
                });
            }
            "Action" | "NotAction" => {
                if action.is_some() {
                    return err("Statement can't have both Action and NotAction");
                }
                let items = strings(v, k)?
                    .iter()
                    .map(|a| action_pattern(a))
                    .collect::<Result<_, _>>()?;
                action = Some(Negatable {
                    negated: k == "NotAction",
                    items,
                });
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return err("Statement can't have both Resource and NotResource");
                }
                let items = strings(v, k)?
                    .iter()
                    .map(|r| resource_pattern(r, variables))
                    .collect::<Result<_, _>>()?;
                resource = Some(Negatable {
                    negated: k == "NotResource",
                    items,
                });
            }
            "Condition" => conditions = crate::condition::parse_block(v, variables)?,
            other => {
                return err(format!(
                    "Statement should not specify a field named {other}"
                ))
            }
        }
    }
    let Some(effect) = effect else {
        return err("Missing required field Effect");
    };
    let Some(action) = action else {
        return err("Missing required field Action");
    };
    match kind {
        Kind::Identity => {
            if principal.is_some() {
                return err("Has prohibited field Principal");
            }
            if resource.is_none() {
                return err("Missing required field Resource");
            }
        }
        Kind::Resource => {
            if principal.is_none() {
                return err("Missing required field Principal");
            }
        }
    }
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

fn action_pattern(a: &str) -> Result<Pattern, PolicyError> {
    if a != "*" {
        let (service, name) = a.split_once(':').unwrap_or(("", ""));
        if service.is_empty()
            || name.is_empty()
            || !service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return err(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            );
        }
    }
    Ok(Pattern::compile(&a.to_ascii_lowercase(), false, true))
}

fn resource_pattern(r: &str, variables: bool) -> Result<Pattern, PolicyError> {
    if r != "*" && !r.starts_with("arn:") {
        return err(format!("Resource {r} must be in ARN format or \"*\"."));
    }
    Ok(Pattern::compile(r, variables, true))
}

fn principals(v: &Json) -> Result<Principals, PolicyError> {
    match v {
        Json::String(s) if s == "*" => Ok(Principals::Anyone),
        Json::Object(o) if !o.is_empty() => {
            let mut list = Vec::new();
            for (kind, ids) in o {
                for id in strings(ids, "Principal")? {
                    match kind.as_str() {
                        "AWS" if id == "*" => return Ok(Principals::Anyone),
                        "AWS" => list.push(aws_principal(&id)?),
                        "Service" | "Federated" | "CanonicalUser" => {
                            list.push(PrincipalId::Other {
                                kind: kind.clone(),
                                id,
                            })
                        }
                        _ => return err("Invalid principal in policy"),
                    }
                }
            }
            Ok(Principals::List(list))
        }
        _ => err("Invalid principal in policy"),
    }
}

/// An `AWS` principal: an account id, an account's root ARN, or an IAM/STS ARN. IAM
/// accepts no partial wildcards in principals.
fn aws_principal(id: &str) -> Result<PrincipalId, PolicyError> {
    let invalid = || err(format!("Invalid principal in policy: \"AWS\":\"{id}\""));
    if is_account_id(id) {
        return Ok(PrincipalId::Account(id.to_owned()));
    }
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return invalid();
    };
    if arn != "arn"
        || partition.is_empty()
        || !matches!(service, "iam" | "sts")
        || !region.is_empty()
        || !is_account_id(account)
        || resource.is_empty()
        || id.contains('*')
        || id.contains('?')
    {
        return invalid();
    }
    if service == "iam" && resource == "root" {
        return Ok(PrincipalId::Account(account.to_owned()));
    }
    Ok(PrincipalId::Arn(id.to_owned()))
}

pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(text: &str) -> Policy {
        Policy::parse(text, Kind::Resource).expect("a valid resource policy")
    }

    #[test]
    fn the_grammar_refuses_what_iam_refuses() {
        for (text, kind) in [
            ("not json", Kind::Resource),
            (r#"{"Statement":[]}"#, Kind::Resource),
            (
                r#"{"Version":"2019-10-19","Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}"#,
                Kind::Resource,
            ),
            (
                r#"{"Statement":{"Effect":"AllowSomething","Principal":"*","Action":"*"}}"#,
                Kind::Resource,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#,
                Kind::Resource,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"GetSecretValue"}}"#,
                Kind::Resource,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/x"},"Action":"*"}}"#,
                Kind::Resource,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#,
                Kind::Identity,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#,
                Kind::Identity,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"secret"}}"#,
                Kind::Identity,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"a:b":"c"}}}}"#,
                Kind::Identity,
            ),
            (
                r#"{"Statement":[{"Sid":"a","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"a","Effect":"Deny","Action":"*","Resource":"*"}]}"#,
                Kind::Identity,
            ),
        ] {
            assert!(Policy::parse(text, kind).is_err(), "accepted: {text}");
        }
    }

    #[test]
    fn broad_access_is_an_allow_to_everyone_that_nothing_pins() {
        let public = [
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"secretsmanager:*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:SourceAccount":"1111*"}}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}}"#,
        ];
        for p in public {
            assert!(resource(p).grants_public_access(), "not public: {p}");
        }
        let private = [
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}}}"#,
        ];
        for p in private {
            assert!(!resource(p).grants_public_access(), "public: {p}");
        }
    }

    #[test]
    fn a_lockout_denies_everyone_the_policy_operations() {
        let lockout = resource(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}}"#,
        );
        assert!(lockout.locks_out());
        let scoped = resource(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
        );
        assert!(!scoped.locks_out());
    }
}
