//! The Secrets Manager calls a rotation function makes (what a Lambda does through boto3),
//! as a trait so built-in rotators run in-process against arca-core, and tests can watch.

use arca_core::{Arca, RequestCtx};
use arca_types::arn::SecretRef;
use arca_types::secret::SecretString;
use arca_types::wire::*;
use arca_types::ApiError;
use async_trait::async_trait;
use std::sync::Arc;

#[async_trait]
pub trait SecretsApi: Send + Sync {
    async fn describe_secret(&self, secret_id: &str) -> Result<DescribeSecretResponse, ApiError>;
    async fn get_secret_value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<GetSecretValueResponse, ApiError>;
    /// Stores `value` as version `token` with `stages` (AWSPENDING during createSecret).
    /// No RotationToken: it proves to Secrets Manager that a call through an assumed role
    /// comes from the rotation's function, and built-in rotators are Arca itself.
    async fn put_secret_value(
        &self,
        secret_id: &str,
        token: &str,
        value: SecretString,
        stages: Vec<String>,
    ) -> Result<(), ApiError>;
    async fn update_secret_version_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to_version_id: Option<&str>,
        remove_from_version_id: Option<&str>,
    ) -> Result<(), ApiError>;
    async fn get_random_password(
        &self,
        req: GetRandomPasswordRequest,
    ) -> Result<SecretString, ApiError>;
}

/// `SecretsApi` straight onto arca-core. Rotation events always name the secret by its
/// full ARN, so the region comes from the ARN.
pub struct CoreSecretsApi {
    arca: Arc<Arca>,
}

impl CoreSecretsApi {
    pub fn new(arca: Arc<Arca>) -> Self {
        Self { arca }
    }

    fn ctx(&self, secret_id: &str) -> Result<RequestCtx, ApiError> {
        match SecretRef::parse(secret_id) {
            SecretRef::Arn { region, .. } => Ok(RequestCtx::new(region)),
            SecretRef::Name(_) => Err(ApiError::arn_required()),
        }
    }
}

#[async_trait]
impl SecretsApi for CoreSecretsApi {
    async fn describe_secret(&self, secret_id: &str) -> Result<DescribeSecretResponse, ApiError> {
        let ctx = self.ctx(secret_id)?;
        self.arca
            .describe_secret(
                &ctx,
                DescribeSecretRequest {
                    secret_id: Some(secret_id.to_owned()),
                },
            )
            .await
    }

    async fn get_secret_value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<GetSecretValueResponse, ApiError> {
        let ctx = self.ctx(secret_id)?;
        self.arca
            .get_secret_value(
                &ctx,
                GetSecretValueRequest {
                    secret_id: Some(secret_id.to_owned()),
                    version_id: version_id.map(str::to_owned),
                    version_stage: version_stage.map(str::to_owned),
                },
            )
            .await
    }

    async fn put_secret_value(
        &self,
        secret_id: &str,
        token: &str,
        value: SecretString,
        stages: Vec<String>,
    ) -> Result<(), ApiError> {
        let ctx = self.ctx(secret_id)?;
        self.arca
            .put_secret_value(
                &ctx,
                PutSecretValueRequest {
                    secret_id: Some(secret_id.to_owned()),
                    client_request_token: Some(token.to_owned()),
                    secret_string: Some(value),
                    secret_binary: None,
                    version_stages: Some(stages),
                    rotation_token: None,
                },
            )
            .await
            .map(|_| ())
    }

    async fn update_secret_version_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to_version_id: Option<&str>,
        remove_from_version_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let ctx = self.ctx(secret_id)?;
        self.arca
            .update_secret_version_stage(
                &ctx,
                UpdateSecretVersionStageRequest {
                    secret_id: Some(secret_id.to_owned()),
                    version_stage: Some(stage.to_owned()),
                    move_to_version_id: move_to_version_id.map(str::to_owned),
                    remove_from_version_id: remove_from_version_id.map(str::to_owned),
                },
            )
            .await
            .map(|_| ())
    }

    async fn get_random_password(
        &self,
        req: GetRandomPasswordRequest,
    ) -> Result<SecretString, ApiError> {
        self.arca
            .get_random_password(&arca_core::RequestCtx::new(String::new()), req)
            .map(|r| r.random_password)
    }
}
