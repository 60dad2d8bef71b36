//! The decision for one request, as the IAM User Guide's "Policy evaluation logic"
//! describes it: an explicit deny in any policy wins; within one account, an identity
//! policy or a resource policy that names the caller allows; across accounts, both
//! must; otherwise the request is implicitly denied. The principal's own context keys
//! (aws:PrincipalArn, aws:username, aws:PrincipalTag/...) come from the principal.

use crate::condition::Lookup;
use crate::document::{Effect, Negatable, Policy, PrincipalId, Principals, Statement};
use crate::pattern::{Pattern, Vars};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An account's root user: allowed everything in its own account by identity.
    Root,
    User,
    /// A session of an assumed role.
    RoleSession,
    Anonymous,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The caller's ARN (a session's `arn:aws:sts::...:assumed-role/Role/session`).
    pub arn: String,
    pub account: String,
    pub kind: PrincipalKind,
    /// A session's role (`arn:aws:iam::...:role/path/Role`).
    pub role_arn: Option<String>,
    /// The user's name (aws:username), or a session's role name.
    pub name: Option<String>,
    /// aws:userid: the user's unique id, or `ROLEID:session` for a session.
    pub userid: String,
    /// aws:PrincipalTag/...
    pub tags: BTreeMap<String, String>,
}

impl Principal {
    /// aws:PrincipalArn: a session is known by its role's ARN.
    pub fn principal_arn(&self) -> &str {
        self.role_arn.as_deref().unwrap_or(&self.arn)
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            PrincipalKind::Root => "Account",
            PrincipalKind::User => "User",
            PrincipalKind::RoleSession => "AssumedRole",
            PrincipalKind::Anonymous => "Anonymous",
        }
    }
}

/// A request context value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Num(f64),
    /// A multivalued key (aws:TagKeys, secretsmanager:AddReplicaRegions).
    List(Vec<String>),
}

impl Value {
    fn texts(&self) -> Vec<String> {
        match self {
            Value::Str(s) => vec![s.clone()],
            Value::Bool(b) => vec![b.to_string()],
            Value::Num(n) => vec![n.to_string()],
            Value::List(l) => l.clone(),
        }
    }
}

/// The request's own context keys (the principal's are derived from it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    values: HashMap<String, Value>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (case-insensitive) to `value`.
    pub fn set(&mut self, key: &str, value: Value) -> &mut Self {
        self.values.insert(key.to_ascii_lowercase(), value);
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(&key.to_ascii_lowercase())
    }

    /// Every key (lowercased) and its value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// One request to decide.
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// `service:Operation`, e.g. `secretsmanager:GetSecretValue`.
    pub action: &'a str,
    /// The resource's ARN, or `*` for actions on no resource.
    pub resource: &'a str,
    /// The account that owns the resource.
    pub resource_account: &'a str,
    pub context: &'a Context,
}

impl Request<'_> {
    fn principal_value(&self, key: &str) -> Option<Value> {
        let p = self.principal;
        if let Some(tag) = key.strip_prefix("aws:principaltag/") {
            return p
                .tags
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                .map(|(_, v)| Value::Str(v.clone()));
        }
        let s = |v: &str| Some(Value::Str(v.to_owned()));
        match key {
            "aws:principalarn" if p.kind != PrincipalKind::Anonymous => s(p.principal_arn()),
            "aws:principalaccount" if p.kind != PrincipalKind::Anonymous => s(&p.account),
            "aws:principaltype" => s(p.type_name()),
            "aws:username" if p.kind == PrincipalKind::User => p.name.as_deref().and_then(s),
            "aws:userid" if p.kind != PrincipalKind::Anonymous => s(&p.userid),
            _ => None,
        }
    }

    fn value(&self, key: &str) -> Option<Value> {
        self.principal_value(key)
            .or_else(|| self.context.values.get(key).cloned())
    }
}

impl Vars for Request<'_> {
    fn var(&self, key: &str) -> Option<String> {
        match self.value(key)? {
            // A multivalued key cannot stand for one value.
            Value::List(_) => None,
            v => v.texts().pop(),
        }
    }
}

impl Lookup for Request<'_> {
    fn values(&self, key: &str) -> Option<Vec<String>> {
        self.value(key).map(|v| v.texts())
    }
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    Identity,
    Resource,
}

/// The outcome, with what an AccessDenied message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A Deny statement matched, in this kind of policy.
    ExplicitDeny(PolicyType),
    /// Nothing allowed it; the policy type that would have had to.
    ImplicitDeny(PolicyType),
}

impl Decision {
    pub fn allowed(self) -> bool {
        self == Decision::Allow
    }

    /// The `because ...`/`with ...` tail of AWS's AccessDeniedException message.
    pub fn reason(self, action: &str) -> String {
        let kind = |t| match t {
            PolicyType::Identity => "identity-based",
            PolicyType::Resource => "resource-based",
        };
        match self {
            Decision::Allow => String::new(),
            // "an identity-based", "a resource-based" (AWS's wording).
            Decision::ExplicitDeny(t) => {
                let article = if t == PolicyType::Identity { "an" } else { "a" };
                format!("with an explicit deny in {article} {} policy", kind(t))
            }
            Decision::ImplicitDeny(t) => {
                format!("because no {} policy allows the {action} action", kind(t))
            }
        }
    }
}

/// How a resource policy's Allow reached the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grant {
    None,
    /// Through the caller's account (its id or root ARN): the account delegates to its
    /// own identity policies, so in the same account this grants nothing by itself.
    Account,
    /// The caller by name (user, role, session) or everyone (`*`).
    Direct,
}

/// Decides `req` given the caller's identity policies and the resource's policy.
pub fn evaluate(req: &Request, identity: &[&Policy], resource: Option<&Policy>) -> Decision {
    let (identity_allows, grant) = match gather(req, identity, resource) {
        Ok(found) => found,
        Err(deny) => return deny,
    };
    // Anonymous callers have no identity policies: only a resource policy's `*` helps.
    if req.principal.kind == PrincipalKind::Anonymous {
        return if grant == Grant::Direct {
            Decision::Allow
        } else {
            Decision::ImplicitDeny(PolicyType::Resource)
        };
    }
    if same_account(req) {
        if identity_allows || grant == Grant::Direct {
            Decision::Allow
        } else {
            Decision::ImplicitDeny(PolicyType::Identity)
        }
    } else if !identity_allows {
        Decision::ImplicitDeny(PolicyType::Identity)
    } else if grant == Grant::None {
        Decision::ImplicitDeny(PolicyType::Resource)
    } else {
        Decision::Allow
    }
}

/// Decides `sts:AssumeRole` against a role's trust policy. Unlike other resource
/// policies, a trust policy must itself reach the caller: naming it (in the role's own
/// account that suffices), or naming its account, which then delegates to the caller's
/// identity policies (IAM User Guide, "How IAM roles differ from resource-based
/// policies"). An identity policy alone never lets anyone assume a role.
pub fn evaluate_trust(req: &Request, identity: &[&Policy], trust: &Policy) -> Decision {
    let (identity_allows, grant) = match gather(req, identity, Some(trust)) {
        Ok(found) => found,
        Err(deny) => return deny,
    };
    match grant {
        Grant::None => Decision::ImplicitDeny(PolicyType::Resource),
        Grant::Direct if same_account(req) => Decision::Allow,
        _ if identity_allows => Decision::Allow,
        _ => Decision::ImplicitDeny(PolicyType::Identity),
    }
}

fn same_account(req: &Request) -> bool {
    req.principal.account == req.resource_account && req.principal.kind != PrincipalKind::Anonymous
}

/// Whether some identity statement allows the request, and how far the resource
/// policy's Allows reach the caller; `Err` with the decision if any policy denies.
fn gather(
    req: &Request,
    identity: &[&Policy],
    resource: Option<&Policy>,
) -> Result<(bool, Grant), Decision> {
    let mut identity_allows = req.principal.kind == PrincipalKind::Root && same_account(req);
    let mut grant = Grant::None;
    for policy in identity {
        for st in &policy.statements {
            if !applies(st, req) {
                continue;
            }
            match st.effect {
                Effect::Deny => return Err(Decision::ExplicitDeny(PolicyType::Identity)),
                Effect::Allow => identity_allows = true,
            }
        }
    }
    if let Some(policy) = resource {
        for st in &policy.statements {
            let g = principal_grant(st.principal.as_ref(), req.principal);
            if g == Grant::None || !applies(st, req) {
                continue;
            }
            match st.effect {
                Effect::Deny => return Err(Decision::ExplicitDeny(PolicyType::Resource)),
                Effect::Allow => grant = grant.max(g),
            }
        }
    }
    Ok((identity_allows, grant))
}

/// Whether the statement's Action, Resource and Condition all hold for the request.
fn applies(st: &Statement, req: &Request) -> bool {
    matches_any(&st.action, |p| p.matches(req.action, req, true))
        && st
            .resource
            .as_ref()
            .is_none_or(|r| matches_any(r, |p| p.matches(req.resource, req, false)))
        && st.conditions.iter().all(|c| c.holds(req))
}

fn matches_any(n: &Negatable<Vec<Pattern>>, mut f: impl FnMut(&Pattern) -> bool) -> bool {
    n.items.iter().any(&mut f) != n.negated
}

/// How a resource policy statement's Principal/NotPrincipal reaches `caller`.
fn principal_grant(spec: Option<&Negatable<Principals>>, caller: &Principal) -> Grant {
    let Some(spec) = spec else {
        return Grant::None;
    };
    let names = |id: &PrincipalId| -> Grant {
        match id {
            PrincipalId::Account(a) if caller.kind != PrincipalKind::Anonymous => {
                if *a != caller.account {
                    Grant::None
                } else if caller.kind == PrincipalKind::Root {
                    Grant::Direct
                } else {
                    Grant::Account
                }
            }
            PrincipalId::Arn(arn)
                if caller.kind != PrincipalKind::Anonymous
                    && (*arn == caller.arn || Some(arn.as_str()) == caller.role_arn.as_deref()) =>
            {
                Grant::Direct
            }
            _ => Grant::None,
        }
    };
    match (&spec.items, spec.negated) {
        (Principals::Anyone, false) => Grant::Direct,
        (Principals::Anyone, true) => Grant::None,
        (Principals::List(ids), false) => ids.iter().map(names).max().unwrap_or(Grant::None),
        // NotPrincipal: the statement reaches every caller except one whose own ARN
        // (user or session) is listed (an account's root: its account). Listing an
        // account does not exempt the account's other principals.
        (Principals::List(ids), true) => {
            let excluded = match caller.kind {
                PrincipalKind::Anonymous => false,
                PrincipalKind::Root => ids
                    .iter()
                    .any(|id| matches!(id, PrincipalId::Account(a) if *a == caller.account)),
                PrincipalKind::User | PrincipalKind::RoleSession => ids
                    .iter()
                    .any(|id| matches!(id, PrincipalId::Arn(a) if *a == caller.arn)),
            };
            if excluded {
                Grant::None
            } else {
                Grant::Direct
            }
        }
    }
}
