//! What crosses the replication link: the messages a primary's delivery worker sends to a
//! replica region (served by this deployment or another) and the answers it gets.
//!
//! A `Sync` carries the primary's replicated state (metadata, tags, versions and their
//! labels) and the plaintext of the versions the replica is not known to hold. Both
//! deployments have their own root keys and share no key, so the value cannot cross as
//! ciphertext that the receiver could open; it crosses inside TLS only (a remote link
//! must be `https://`), and the receiver seals it under the replica region's key at once.
//! Between regions of one deployment the messages never leave the process.

use crate::secret::{SecretBlob, SecretString};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// One delivery to a replica region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "Kind", rename_all_fields = "PascalCase")]
pub enum Delivery {
    /// Bring the replica of `PrimaryArn` to this state (create it if missing).
    /// Boxed: a state is far larger than the other variants (serde sees through the box).
    Sync(Box<ReplicaState>),
    /// The region left the replication: delete the replica of `PrimaryArn`.
    Remove { primary_arn: String, name: String },
    /// Sent to the primary's region: the replica of `PrimaryArn` in `ReplicaRegion` was
    /// promoted to a standalone secret.
    Promoted {
        primary_arn: String,
        name: String,
        replica_region: String,
    },
}

/// The primary's replicated state, as of `Revision`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicaState {
    pub primary_arn: String,
    pub primary_region: String,
    pub name: String,
    /// The primary's revision this state is from: a replica never moves back to an older
    /// one, so replayed or reordered deliveries change nothing.
    pub revision: i64,
    /// The key to seal the replica under, in the replica's region (None: its default key).
    pub kms_key_id: Option<String>,
    /// Replace a standalone secret of the same name in the replica region.
    pub force_overwrite: bool,
    pub description: Option<String>,
    pub secret_type: Option<String>,
    pub created_at: Millis,
    pub last_changed_at: Millis,
    pub deleted_at: Option<Millis>,
    pub tags: Vec<(String, String)>,
    pub ever_tagged: bool,
    /// The primary's resource policy: AWS replicates it with the tags. Absent from
    /// deliveries of deployments that predate resource policies (then: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
    pub versions: Vec<ReplicaVersion>,
    /// Plaintext of some versions (those new since the last delivery, or asked for).
    pub values: Vec<ReplicaValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicaVersion {
    pub version_id: String,
    pub stages: Vec<String>,
    pub created_at: Millis,
    pub has_value: bool,
}

/// One version's value. Debug shows neither half.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicaValue {
    pub version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<SecretBlob>,
}

/// The receiver's answer to one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Outcome", rename_all_fields = "PascalCase")]
pub enum Outcome {
    /// Done (or already done: a replayed delivery). `LastAccessedDay` is the replica's.
    Applied { last_accessed_day: Option<Millis> },
    /// The replica lacks these versions' values: send them.
    Missing { version_ids: Vec<String> },
    /// The replica was promoted: stop replicating to it.
    Promoted,
    /// Cannot be done until an operator acts (a name taken by another secret, a key that
    /// is missing); `Message` is the StatusMessage to show.
    Failed { message: String },
    /// Could not be done now (the receiver's store failed): try again later.
    Retry { message: String },
}

/// The body of one request on a remote link.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliverRequest {
    pub deliveries: Vec<Delivery>,
}

/// The answer: one outcome per delivery, in order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliverResponse {
    pub outcomes: Vec<Outcome>,
}

/// The `X-Amz-Target` of a remote delivery (not a Secrets Manager operation; only keys
/// bound to replication may call it).
pub const DELIVER_TARGET: &str = "ArcaReplication.Deliver";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_redacted_in_debug_and_round_trip_on_the_wire() {
        let v = ReplicaValue {
            version_id: "v1".into(),
            secret_string: Some(SecretString::new("hunter2".into())),
            secret_binary: None,
        };
        assert!(!format!("{v:?}").contains("hunter2"));
        let d = Delivery::Remove {
            primary_arn: "arn".into(),
            name: "n".into(),
        };
        let json = serde_json::to_string(&d).expect("encode");
        assert!(json.contains("\"Kind\":\"Remove\""), "{json}");
        let back: Delivery = serde_json::from_str(&json).expect("decode");
        assert!(matches!(back, Delivery::Remove { .. }));
        let json = serde_json::to_string(&v).expect("encode");
        let back: ReplicaValue = serde_json::from_str(&json).expect("decode");
        assert_eq!(
            back.secret_string.as_ref().map(SecretString::expose),
            Some("hunter2")
        );
    }
}
