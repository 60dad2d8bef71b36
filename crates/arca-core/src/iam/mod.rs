//! IAM principals: users, roles and customer managed policies as stored documents, and
//! the in-memory directory the request path resolves callers through (each user's and
//! role's policies compiled once, when the directory is read).

pub mod ops;
pub mod sts;

use crate::authz::Identity;
use arca_policy::{Kind, Policy, Principal, PrincipalKind};
use arca_store::{IamKind, IamRecord, KeyOwner, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// A user as stored (IAM's User, with its inline and attached policies).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub struct UserDoc {
    pub path: String,
    /// The unique id (`AIDA...`): aws:userid.
    pub id: String,
    /// Inline policies by name, as the caller wrote them.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policies, by ARN.
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A role as stored.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub struct RoleDoc {
    pub path: String,
    /// The unique id (`AROA...`).
    pub id: String,
    /// Who may assume it (AssumeRolePolicyDocument).
    pub trust: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The longest session AssumeRole grants, in seconds (IAM's default: an hour).
    pub max_session_secs: u32,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A customer managed policy as stored (one version: Arca keeps no policy versions).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub struct PolicyDoc {
    pub path: String,
    /// The unique id (`ANPA...`).
    pub id: String,
    pub document: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// The AWS managed policies Arca knows, by name (ARN `arn:aws:iam::aws:policy/NAME`).
/// SecretsManagerReadWrite is cut to the actions that exist here.
pub const AWS_MANAGED: &[(&str, &str)] = &[
    ("AdministratorAccess", crate::authz::ADMINISTRATOR_ACCESS),
    (
        "SecretsManagerReadWrite",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","kms:DescribeKey","kms:ListAliases","kms:ListKeys"],"Resource":"*"}]}"#,
    ),
    (
        "IAMFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#,
    ),
];

pub const AWS_MANAGED_PREFIX: &str = "arn:aws:iam::aws:policy/";

/// `arn:aws:iam::ACCOUNT:KIND{path}NAME`, as IAM writes it.
pub fn entity_arn(account: &str, kind: IamKind, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{}{path}{name}", kind.as_str())
}

/// A role, compiled: what AssumeRole checks and what its sessions may do.
#[derive(Debug)]
pub struct RoleEntry {
    pub account: String,
    pub name: String,
    pub arn: String,
    pub id: String,
    pub trust: Arc<Policy>,
    pub policies: Vec<Arc<Policy>>,
    pub max_session_secs: u32,
    pub tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct Snapshot {
    /// Every stored entity, as read.
    records: Vec<IamRecord>,
    users: HashMap<KeyOwner, Arc<Identity>>,
    roles: HashMap<(String, String), Arc<RoleEntry>>,
}

/// The users, roles and policies of every account, as last read from the store.
pub struct Directory {
    store: Arc<dyn Store>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// One reload at a time, so an older read never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
}

fn parse_policy(text: &str, kind: Kind, what: &str) -> Option<Arc<Policy>> {
    match Policy::parse(text, kind) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            // Validated when written; one that no longer parses grants nothing.
            tracing::warn!(entity = what, error = %e, "a stored IAM policy does not parse; ignored");
            None
        }
    }
}

impl Snapshot {
    fn build(records: Vec<IamRecord>) -> Self {
        let mut managed: HashMap<String, Arc<Policy>> = AWS_MANAGED
            .iter()
            .filter_map(|(name, text)| {
                let p = parse_policy(text, Kind::Identity, name)?;
                Some((format!("{AWS_MANAGED_PREFIX}{name}"), p))
            })
            .collect();
        for r in records.iter().filter(|r| r.kind == IamKind::Policy) {
            if let Ok(doc) = serde_json::from_str::<PolicyDoc>(&r.document) {
                if let Some(p) = parse_policy(&doc.document, Kind::Identity, &r.name) {
                    managed.insert(
                        entity_arn(&r.account, IamKind::Policy, &doc.path, &r.name),
                        p,
                    );
                }
            }
        }
        let policies_of = |inline: &BTreeMap<String, String>, attached: &[String], who: &str| {
            inline
                .values()
                .filter_map(|t| parse_policy(t, Kind::Identity, who))
                .chain(attached.iter().filter_map(|a| managed.get(a).cloned()))
                .collect::<Vec<_>>()
        };
        let mut users = HashMap::new();
        let mut roles = HashMap::new();
        for r in &records {
            let key = (r.account.clone(), r.name.clone());
            match r.kind {
                IamKind::User => {
                    let Ok(doc) = serde_json::from_str::<UserDoc>(&r.document) else {
                        tracing::warn!(user = %r.name, "a stored IAM user does not parse; ignored");
                        continue;
                    };
                    let principal = Principal {
                        arn: entity_arn(&r.account, IamKind::User, &doc.path, &r.name),
                        account: r.account.clone(),
                        kind: PrincipalKind::User,
                        role_arn: None,
                        name: Some(r.name.clone()),
                        userid: doc.id.clone(),
                        tags: doc.tags.clone(),
                    };
                    let policies = policies_of(&doc.inline, &doc.attached, &r.name);
                    let owner = KeyOwner {
                        account: r.account.clone(),
                        user: r.name.clone(),
                    };
                    users.insert(owner, Arc::new(Identity::new(principal, policies)));
                }
                IamKind::Role => {
                    let Ok(doc) = serde_json::from_str::<RoleDoc>(&r.document) else {
                        tracing::warn!(role = %r.name, "a stored IAM role does not parse; ignored");
                        continue;
                    };
                    let Some(trust) = parse_policy(&doc.trust, Kind::Resource, &r.name) else {
                        continue;
                    };
                    roles.insert(
                        key,
                        Arc::new(RoleEntry {
                            account: r.account.clone(),
                            name: r.name.clone(),
                            arn: entity_arn(&r.account, IamKind::Role, &doc.path, &r.name),
                            id: doc.id.clone(),
                            trust,
                            policies: policies_of(&doc.inline, &doc.attached, &r.name),
                            max_session_secs: doc.max_session_secs,
                            tags: doc.tags.clone(),
                        }),
                    );
                }
                IamKind::Policy => {}
            }
        }
        Self {
            records,
            users,
            roles,
        }
    }
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rereads every entity and recompiles (after a change here, on another node's
    /// notice, or on the periodic reread that picks up the admin CLI's changes).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _one = self.reloading.lock().await;
        let records = self.store.list_iam().await?;
        let unchanged = self.current().records == records;
        if !unchanged {
            let snap = Arc::new(Snapshot::build(records));
            *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = snap;
        }
        Ok(())
    }

    /// The identity of a user (with its policies compiled), if the user exists.
    pub fn user_identity(&self, owner: &KeyOwner) -> Option<Arc<Identity>> {
        // On every request signed with a user's key: a lookup, no copy of the names.
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .users
            .get(owner)
            .cloned()
    }

    pub fn role(&self, account: &str, name: &str) -> Option<Arc<RoleEntry>> {
        self.current()
            .roles
            .get(&(account.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The stored record of one entity.
    pub fn record(&self, account: &str, kind: IamKind, name: &str) -> Option<IamRecord> {
        self.current()
            .records
            .iter()
            .find(|r| r.account == account && r.kind == kind && r.name == name)
            .cloned()
    }

    /// Every stored entity of `kind` in `account`, by name.
    pub fn records(&self, account: &str, kind: IamKind) -> Vec<IamRecord> {
        self.current()
            .records
            .iter()
            .filter(|r| r.account == account && r.kind == kind)
            .cloned()
            .collect()
    }
}
