//! The rotation event and the invoker seam. The event's JSON is exactly what AWS sends a
//! rotation Lambda: `{"Step", "SecretId", "ClientRequestToken", "RotationToken"}`.

use arca_types::secret::SecretString;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Step {
    #[serde(rename = "createSecret")]
    CreateSecret,
    #[serde(rename = "setSecret")]
    SetSecret,
    #[serde(rename = "testSecret")]
    TestSecret,
    #[serde(rename = "finishSecret")]
    FinishSecret,
}

impl Step {
    pub const ALL: [Step; 4] = [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub step: Step,
    /// The secret's full ARN.
    pub secret_id: String,
    /// The version being created: the rotation's token.
    pub client_request_token: String,
    /// The token PutSecretValue accepts as RotationToken during this rotation: a
    /// credential, so it is redacted in Debug output and wiped on drop.
    pub rotation_token: SecretString,
}

/// Why a step failed. The message is recorded in events and logs: implementations must
/// never put secret material (values, passwords, keys) in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvokeError {
    pub message: String,
}

impl InvokeError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Runs one step of a rotation function. A step must be safe to run again: the scheduler
/// retries a failed rotation from createSecret with the same token.
#[async_trait]
pub trait Invoker: Send + Sync {
    async fn invoke(&self, event: &RotationEvent) -> Result<(), InvokeError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_is_aws_shaped() {
        let e = RotationEvent {
            step: Step::SetSecret,
            secret_id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf".into(),
            client_request_token: "t".repeat(36),
            rotation_token: SecretString::new("r".repeat(36)),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Step"], "setSecret");
        assert!(v.get("SecretId").is_some());
        assert!(v.get("ClientRequestToken").is_some());
        assert!(v.get("RotationToken").is_some());
        assert_eq!(v["RotationToken"], "r".repeat(36));
        assert_eq!(serde_json::from_value::<RotationEvent>(v).unwrap(), e);
        // The function gets the token; logs of the event never do.
        assert!(!format!("{e:?}").contains("rrrr"), "{e:?}");
    }
}
