//! Secrets Manager endpoints outside this deployment (another Arca, real AWS, LocalStack,
//! moto), reached through the AWS SDK for Rust (`aws-sdk-secretsmanager`) with nothing
//! Arca-specific on the path, so that the same code writes into real AWS. The copy
//! action sends a region's copies to the endpoint configured for that region.

use arca_core::events::deliver::{copy_description, CopySource};
use arca_types::secret::SecretString;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::Client;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How the endpoint is reached and who calls it.
pub struct RemoteConfig {
    /// What the log and errors call it.
    pub name: String,
    pub region: String,
    /// None: AWS's own endpoint for the region.
    pub endpoint: Option<String>,
    pub credentials: RemoteCredentials,
    /// PEM: extra roots to trust (besides the system's), for a private CA.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// Where the SDK finds its credentials.
pub enum RemoteCredentials {
    Keys {
        access_key_id: String,
        secret_access_key: SecretString,
    },
    /// A profile of the shared AWS config and credentials files.
    Profile(String),
    /// The usual AWS chain: environment, shared files, web identity, container, instance.
    DefaultChain,
    /// Sessions of an IAM role of this deployment (a sync job writing here as its role),
    /// renewed by the SDK before each expires.
    Role(RoleSessions),
}

/// Credentials of one IAM role, issued by this deployment's own Arca: what a job that
/// writes here through the SDK signs with instead of a key of the administrator.
#[derive(Clone)]
pub struct RoleSessions {
    pub arca: std::sync::Arc<arca_core::Arca>,
    pub account: String,
    pub role: String,
    pub session_name: String,
}

impl std::fmt::Debug for RoleSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleSessions")
            .field("account", &self.account)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// An hour, IAM's default session: the SDK renews a few minutes before the end.
const ROLE_SESSION_SECS: i64 = 3_600;

impl aws_credential_types::provider::ProvideCredentials for RoleSessions {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        use aws_credential_types::provider::error::CredentialsError;
        let issued = self
            .arca
            .issue_role_session(
                &self.account,
                &self.role,
                &self.session_name,
                ROLE_SESSION_SECS,
            )
            .map(|s| {
                let expiry = std::time::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(s.expiration_secs).unwrap_or(0));
                aws_credential_types::Credentials::new(
                    s.access_key_id,
                    s.secret_access_key.expose(),
                    Some(s.session_token.expose().to_owned()),
                    Some(expiry),
                    "arca-role",
                )
            })
            .ok_or_else(|| {
                CredentialsError::not_loaded(format!(
                    "the role {} does not exist in account {}",
                    self.role, self.account
                ))
            });
        aws_credential_types::provider::future::ProvideCredentials::ready(issued)
    }
}

/// One endpoint, with its client (connections are pooled and reused).
pub struct RemoteEndpoint {
    name: String,
    region: String,
    client: Client,
}

/// The endpoints by region.
pub type Remotes = Arc<HashMap<String, RemoteEndpoint>>;

impl RemoteEndpoint {
    pub async fn connect(cfg: RemoteConfig) -> Result<Self, String> {
        use aws_smithy_http_client::tls;
        let mut trust = tls::TrustStore::default();
        if let Some(pem) = cfg.ca_pem {
            trust = trust.with_pem_certificate(pem);
        }
        let context = tls::TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|e| format!("{}: TLS settings: {e}", cfg.name))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https();
        let region = aws_config::Region::new(cfg.region.clone());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .http_client(http)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(cfg.timeout)
                    .build(),
            );
        if let Some(url) = &cfg.endpoint {
            loader = loader.endpoint_url(url);
        }
        loader = match cfg.credentials {
            RemoteCredentials::Keys {
                access_key_id,
                secret_access_key,
            } => loader.credentials_provider(aws_credential_types::Credentials::new(
                access_key_id,
                secret_access_key.expose(),
                None,
                None,
                "arca-config",
            )),
            RemoteCredentials::Profile(p) => loader.profile_name(p),
            RemoteCredentials::DefaultChain => loader,
            RemoteCredentials::Role(r) => loader.credentials_provider(r),
        };
        let shared = loader.load().await;
        Ok(Self {
            name: cfg.name,
            region: cfg.region,
            client: Client::new(&shared),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `copy` into the same-named secret there: PutSecretValue with the copy's
    /// token (a retry writes the same version), and CreateSecret (under `kms_key_id`)
    /// when the secret is missing.
    pub async fn put_or_create(
        &self,
        copy: &CopySource,
        kms_key_id: Option<&str>,
    ) -> Result<(), String> {
        // The SDK takes owned buffers and does not zeroize them: the plaintext lives in
        // its request until that is freed, a limit of the SDK, not of Arca's own types.
        let string = copy.secret_string.as_ref().map(|s| s.expose().to_owned());
        let binary = copy
            .secret_binary
            .as_ref()
            .map(|b| Blob::new(b.0.expose().to_vec()));
        let put = self
            .client
            .put_secret_value()
            .secret_id(&copy.name)
            .client_request_token(&copy.token)
            .set_secret_string(string.clone())
            .set_secret_binary(binary.clone())
            .send()
            .await;
        match put {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(self.failed("PutSecretValue", &copy.name, &e)),
        }
        self.client
            .create_secret()
            .name(&copy.name)
            .client_request_token(&copy.token)
            .description(copy_description(&copy.from_region))
            .set_kms_key_id(kms_key_id.map(str::to_owned))
            .set_secret_string(string)
            .set_secret_binary(binary)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("CreateSecret", &copy.name, &e))
    }

    /// An SDK error as a delivery's error text. The SDK's errors hold the service's code
    /// and message, never the request's body.
    pub fn failed<E: std::error::Error>(&self, op: &str, name: &str, e: &E) -> String {
        format!(
            "{op} {name} at {} ({}): {}",
            self.name,
            self.region,
            DisplayErrorContext(e)
        )
    }
}
