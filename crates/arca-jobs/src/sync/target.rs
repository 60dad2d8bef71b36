//! The sync's target: any Secrets Manager endpoint, reached through the AWS SDK
//! ([`RemoteEndpoint`]). This Arca is reached the same way, on its own address, so one
//! code path writes into Arca, real AWS, LocalStack or moto. Only standard operations
//! are used: ListSecrets (filtered on the ownership tag), CreateSecret, PutSecretValue,
//! TagResource, RestoreSecret and DeleteSecret.

use super::plan::{Existing, KEY_TAG, OWNER_TAG, PATH_TAG, VERSION_TAG};
use crate::remote::RemoteEndpoint;
use arca_store::{Fence, FENCE_HEADER};
use arca_types::secret::SecretString;
use aws_sdk_secretsmanager::config::http::HttpRequest;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

pub struct SdkTarget {
    pub endpoint: RemoteEndpoint,
}

/// A write's inputs: the value and the tags that say where it came from.
pub struct Write<'a> {
    pub name: &'a str,
    pub value: &'a SecretString,
    pub token: &'a str,
    pub job: &'a str,
    pub source_path: &'a str,
    pub source_key: Option<&'a str>,
    pub stamp: &'a str,
    pub kms_key_id: Option<&'a str>,
    pub extra_tags: &'a [(String, String)],
    pub description: &'a str,
}

/// A failed target call: its text, and whether the name is taken by a secret the job
/// does not own (a conflict found only when creating).
#[derive(Debug)]
pub struct TargetError {
    pub message: String,
    pub exists: bool,
}

impl SdkTarget {
    /// Every secret that this job owns (its ownership tag names the job), scheduled
    /// deletions included, with their sync tags; with `path`, only those synced from that
    /// source path (a push-triggered pass lists no more than it needs).
    pub async fn owned(&self, job: &str, path: Option<&str>) -> Result<Vec<Existing>, TargetError> {
        // tag-value matches by prefix and any tag's value: the exact job and path are
        // checked below.
        let (key, value) = match path {
            None => (OWNER_TAG, job),
            Some(p) => (PATH_TAG, p),
        };
        let filters = vec![
            Filter::builder()
                .key(FilterNameStringType::TagKey)
                .values(key)
                .build(),
            Filter::builder()
                .key(FilterNameStringType::TagValue)
                .values(value)
                .build(),
        ];
        let mut out = Vec::new();
        let mut pages = self
            .endpoint
            .client()
            .list_secrets()
            .set_filters(Some(filters))
            .include_planned_deletion(true)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| TargetError {
                message: self.endpoint.failed("ListSecrets", "(owned secrets)", &e),
                exists: false,
            })?;
            for s in page.secret_list() {
                let tag = |k: &str| {
                    s.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                        .map(str::to_owned)
                };
                let owner = tag(OWNER_TAG);
                if owner.as_deref() != Some(job)
                    || path.is_some_and(|p| tag(PATH_TAG).as_deref() != Some(p))
                {
                    continue;
                }
                out.push(Existing {
                    name: s.name().unwrap_or_default().to_owned(),
                    owner,
                    stamp: tag(VERSION_TAG),
                    source_path: tag(PATH_TAG),
                    source_key: tag(KEY_TAG),
                    deleted: s.deleted_date().is_some(),
                });
            }
        }
        Ok(out)
    }

    fn tags(w: &Write<'_>) -> Vec<Tag> {
        let mut tags = vec![
            Tag::builder().key(OWNER_TAG).value(w.job).build(),
            Tag::builder().key(PATH_TAG).value(w.source_path).build(),
            Tag::builder().key(VERSION_TAG).value(w.stamp).build(),
        ];
        if let Some(k) = w.source_key {
            tags.push(Tag::builder().key(KEY_TAG).value(k).build());
        }
        for (k, v) in w.extra_tags {
            tags.push(Tag::builder().key(k).value(v).build());
        }
        tags
    }

    /// Adds `fence` to a write's request (see [`FENCE_HEADER`]); other endpoints ignore
    /// the header.
    fn fenced(fence: Option<&Fence>) -> impl Fn(&mut HttpRequest) + Send + Sync + 'static {
        let value = fence.map(Fence::encode);
        move |req: &mut HttpRequest| {
            if let Some(v) = &value {
                req.headers_mut().insert(FENCE_HEADER, v.clone());
            }
        }
    }

    fn err<E: std::error::Error>(&self, op: &str, name: &str, e: &E) -> TargetError {
        TargetError {
            message: self.endpoint.failed(op, name, e),
            exists: false,
        }
    }

    /// Creates the secret with its tags. A name already taken is a conflict.
    pub async fn create(&self, w: &Write<'_>, fence: Option<&Fence>) -> Result<(), TargetError> {
        // The SDK takes owned buffers and does not zeroize them (a limit of the SDK).
        let r = self
            .endpoint
            .client()
            .create_secret()
            .name(w.name)
            .client_request_token(w.token)
            .description(w.description)
            .set_kms_key_id(w.kms_key_id.map(str::to_owned))
            .secret_string(w.value.expose())
            .set_tags(Some(Self::tags(w)))
            .customize()
            .mutate_request(Self::fenced(fence))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception());
                let mut te = self.err("CreateSecret", w.name, &e);
                te.exists = exists;
                Err(te)
            }
        }
    }

    /// Puts the new value (idempotent through the token), then moves the version tag.
    pub async fn update(&self, w: &Write<'_>, fence: Option<&Fence>) -> Result<(), TargetError> {
        self.endpoint
            .client()
            .put_secret_value()
            .secret_id(w.name)
            .client_request_token(w.token)
            .secret_string(w.value.expose())
            .customize()
            .mutate_request(Self::fenced(fence))
            .send()
            .await
            .map_err(|e| self.err("PutSecretValue", w.name, &e))?;
        // A failure here leaves the old tag: the next pass writes the same version again
        // with the same token (a no-op) and retries the tag.
        self.endpoint
            .client()
            .tag_resource()
            .secret_id(w.name)
            .set_tags(Some(Self::tags(w)))
            .customize()
            .mutate_request(Self::fenced(fence))
            .send()
            .await
            .map_err(|e| self.err("TagResource", w.name, &e))?;
        Ok(())
    }

    pub async fn restore(&self, name: &str, fence: Option<&Fence>) -> Result<(), TargetError> {
        self.endpoint
            .client()
            .restore_secret()
            .secret_id(name)
            .customize()
            .mutate_request(Self::fenced(fence))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("RestoreSecret", name, &e))
    }

    pub async fn delete(
        &self,
        name: &str,
        force: bool,
        window_days: u32,
        fence: Option<&Fence>,
    ) -> Result<(), TargetError> {
        let mut call = self.endpoint.client().delete_secret().secret_id(name);
        call = if force {
            call.force_delete_without_recovery(true)
        } else {
            call.recovery_window_in_days(i64::from(window_days))
        };
        call.customize()
            .mutate_request(Self::fenced(fence))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("DeleteSecret", name, &e))
    }
}
