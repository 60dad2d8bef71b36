//! IAM principals and policies as the store keeps them: one JSON document per entity
//! (arca-core owns the documents' shape), keyed by (account, kind, name).

use arca_types::time::Millis;

/// What an IAM entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IamKind {
    User,
    Role,
    /// A customer managed policy.
    Policy,
}

impl IamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IamKind::User => "user",
            IamKind::Role => "role",
            IamKind::Policy => "policy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => IamKind::User,
            "role" => IamKind::Role,
            "policy" => IamKind::Policy,
            _ => return None,
        })
    }
}

/// One user, role or managed policy. Names are unique per (account, kind), compared
/// exactly (IAM itself compares them case-insensitively; arca-core checks that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamRecord {
    /// The 12-digit account id.
    pub account: String,
    pub kind: IamKind,
    pub name: String,
    /// The entity as JSON (path, id, inline and attached policies, trust policy, ...).
    /// Policies only: never a credential.
    pub document: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// The IAM user an access key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyOwner {
    pub account: String,
    pub user: String,
}
