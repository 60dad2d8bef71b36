//! The GetSecretValue answer of the read path: it holds the shared cache entry and the
//! opened value, and lends out ARN, name, version id and labels instead of copying them
//! into a response struct per request.

use crate::cache::Cached;
use crate::value::Value;
use arca_store::{SecretRecord, VersionRecord};
use arca_types::secret::{SecretBlob, SecretString};
use arca_types::time::to_wire;
use arca_types::wire::GetSecretValueResponse;
use std::sync::Arc;

/// One version's value with its identifying fields, borrowed from the cached record.
pub struct SecretValue {
    pub(crate) entry: Arc<Cached>,
    /// Index of the version in `entry.record.versions`.
    pub(crate) version: usize,
    pub(crate) value: Value,
}

impl SecretValue {
    fn version(&self) -> &VersionRecord {
        // The index came from this very record, which an `Arc` keeps unchanged.
        &self.entry.record.versions[self.version]
    }
    pub fn arn(&self) -> &str {
        &self.entry.record.arn
    }
    pub fn name(&self) -> &str {
        &self.entry.record.name
    }
    pub fn version_id(&self) -> &str {
        &self.version().version_id
    }
    pub fn version_stages(&self) -> &[String] {
        &self.version().stages
    }
    /// Seconds since the epoch, as the wire has it.
    pub fn created_date(&self) -> f64 {
        to_wire(self.version().created_at)
    }
    pub fn secret_string(&self) -> Option<&SecretString> {
        match &self.value {
            Value::String(s) => Some(s),
            Value::Binary(_) => None,
        }
    }
    pub fn secret_binary(&self) -> Option<&SecretBlob> {
        match &self.value {
            Value::Binary(b) => Some(b),
            Value::String(_) => None,
        }
    }

    /// The owned response struct (for callers that serialize it with serde).
    pub fn into_response(self) -> GetSecretValueResponse {
        let v = &self.entry.record.versions[self.version];
        response(&self.entry.record, v, self.value)
    }
}

pub(crate) fn response(
    secret: &SecretRecord,
    version: &VersionRecord,
    value: Value,
) -> GetSecretValueResponse {
    let (secret_string, secret_binary) = match value {
        Value::String(s) => (Some(s), None),
        Value::Binary(b) => (None, Some(b)),
    };
    GetSecretValueResponse {
        arn: secret.arn.clone(),
        name: secret.name.clone(),
        version_id: version.version_id.clone(),
        secret_string,
        secret_binary,
        version_stages: version.stages.clone(),
        created_date: to_wire(version.created_at),
    }
}
