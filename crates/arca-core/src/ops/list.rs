//! Listing: ListSecrets, BatchGetSecretValue, and the purge of secrets whose recovery
//! window has ended. Filter semantics live in `crate::filter`; pages are keyset pages
//! (the last item's sort value and ARN), so they stay right while secrets come and go.

use super::ensure_unscoped;
use crate::authz::Target;
use crate::cache::Cached;
use crate::filter::{decode_list_token, encode_list_token, query_fingerprint, Filters};
use crate::validate::{self, Check};
use crate::{store_err, Arca, RequestCtx};
use arca_store::{CursorValue, ListCursor, ListQuery, SecretRecord, SortBy};
use arca_types::wire::*;
use arca_types::{ApiError, ErrorCode};

/// What each member of a batch is authorized as.
const GET: &str = "GetSecretValue";

impl Arca {
    pub async fn list_secrets(
        &self,
        ctx: &RequestCtx,
        req: ListSecretsRequest,
    ) -> Result<ListSecretsResponse, ApiError> {
        let mut check = Check::new();
        check.max_results(req.max_results, 100);
        check.next_token(&req.next_token);
        check.one_of("sortOrder", req.sort_order.as_deref(), &["asc", "desc"]);
        check.one_of(
            "sortBy",
            req.sort_by.as_deref(),
            &[
                "created-date",
                "last-accessed-date",
                "last-changed-date",
                "name",
            ],
        );
        check.finish()?;
        let filters = Filters::parse(&req.filters)?;
        ensure_unscoped(ctx)?;
        self.authorize(ctx, Target::Any)?;
        let limit = req.max_results.map_or(100, |n| n as usize);
        let sort_by = match req.sort_by.as_deref() {
            Some("last-accessed-date") => SortBy::LastAccessedDate,
            Some("last-changed-date") => SortBy::LastChangedDate,
            Some("name") => SortBy::Name,
            _ => SortBy::CreatedDate,
        };
        let descending = req.sort_order.as_deref() != Some("asc");
        let include_planned_deletion = req.include_planned_deletion.unwrap_or(false);
        let fingerprint =
            query_fingerprint(&filters, sort_by, descending, include_planned_deletion);
        let after = match req.next_token.as_deref() {
            Some(t) => Some(decode_list_token(t, fingerprint)?),
            None => None,
        };
        let (page, more) = self
            .page(
                ctx,
                &filters,
                sort_by,
                descending,
                include_planned_deletion,
                after,
                limit,
            )
            .await?;
        let next_token = if more {
            page.last()
                .map(|s| encode_list_token(&cursor_of(s, sort_by), fingerprint))
        } else {
            None
        };
        Ok(ListSecretsResponse {
            secret_list: page.iter().map(|s| self.describe(s, true)).collect(),
            next_token,
        })
    }

    /// One page of secrets plus whether more follow (asks the store for one extra).
    #[allow(clippy::too_many_arguments)]
    async fn page(
        &self,
        ctx: &RequestCtx,
        filters: &Filters,
        sort_by: SortBy,
        descending: bool,
        include_planned_deletion: bool,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Result<(Vec<SecretRecord>, bool), ApiError> {
        // Another account's principals see their own account's secrets, and it holds
        // none here (they reach the deployment's by ARN, where a resource policy shares
        // them).
        if self.foreign(ctx) {
            return Ok((Vec::new(), false));
        }
        let query = ListQuery {
            sort_by,
            descending,
            after,
            limit: limit + 1,
            include_planned_deletion,
            name_prefixes: filters.name_prefixes(),
        };
        if sort_by == SortBy::LastAccessedDate {
            // The store orders by what it holds: reads before this call must be in it.
            self.reads.flush_touches().await;
        }
        let pred = |s: &SecretRecord| filters.matches(s);
        let mut page = self
            .store
            .list_secrets(&ctx.region, &query, &pred)
            .await
            .map_err(store_err)?;
        if sort_by != SortBy::LastAccessedDate {
            // Not in that sort: its next-page cursor must carry the stored day it sorted by.
            for s in &mut page {
                self.reads.overlay(s);
            }
        }
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }

    pub async fn batch_get_secret_value(
        &self,
        ctx: &RequestCtx,
        req: BatchGetSecretValueRequest,
    ) -> Result<BatchGetSecretValueResponse, ApiError> {
        let mut check = Check::new();
        check.count("secretIdList", req.secret_id_list.as_deref(), 1, 20);
        for (i, id) in req.secret_id_list.iter().flatten().enumerate() {
            check.length(&format!("secretIdList.{}.member", i + 1), Some(id), 1, 2048);
        }
        check.max_results(req.max_results, 20);
        check.next_token(&req.next_token);
        check.finish()?;
        let filters = Filters::parse(&req.filters)?;
        for id in req.secret_id_list.iter().flatten() {
            validate::name_chars(id)?;
        }
        ensure_unscoped(ctx)?;
        match (&req.secret_id_list, &req.filters) {
            (Some(_), Some(_)) | (None, None) => return Err(ApiError::ids_or_filters()),
            _ => {}
        }
        // The batch itself, and ListSecrets when it filters (the model's "Required
        // permissions"); each secret returned is a GetSecretValue of its own.
        self.authorize(ctx, Target::Any)?;
        if req.filters.is_some() {
            self.authorize_as(ctx, "ListSecrets", Target::Any)?;
        }
        let mut out = BatchGetSecretValueResponse::default();
        if let Some(ids) = &req.secret_id_list {
            if req.max_results.is_some() || req.next_token.is_some() {
                return Err(ApiError::paging_needs_filters());
            }
            for id in ids {
                let (arn, result) = match self.lookup_shared_as(ctx, id, Some(GET)).await {
                    Err(e) if e.code == ErrorCode::AccessDenied => (id.clone(), Err(e)),
                    Err(e) => return Err(e),
                    Ok(None) => (id.clone(), Err(ApiError::secret_not_found())),
                    Ok(Some(secret)) => (secret.arn.clone(), self.read_current(ctx, &secret).await),
                };
                self.audit_member(ctx, &arn, result.as_ref().err()).await;
                match result {
                    Ok(v) => out.secret_values.push(v),
                    Err(e) if e.code == ErrorCode::InternalServiceError => return Err(e),
                    Err(e) => out.errors.push(error_entry(id, e)),
                }
            }
            return Ok(out);
        }
        let limit = req.max_results.map_or(20, |n| n as usize);
        // BatchGetSecretValue pages newest first and never shows secrets awaiting deletion.
        let fingerprint = query_fingerprint(&filters, SortBy::CreatedDate, true, false);
        let after = match req.next_token.as_deref() {
            Some(t) => Some(decode_list_token(t, fingerprint)?),
            None => None,
        };
        let (page, more) = self
            .page(
                ctx,
                &filters,
                SortBy::CreatedDate,
                true,
                false,
                after,
                limit,
            )
            .await?;
        if more {
            out.next_token = page
                .last()
                .map(|s| encode_list_token(&cursor_of(s, SortBy::CreatedDate), fingerprint));
        }
        for secret in page.into_iter().map(Cached::new) {
            let target = Target::Secret {
                record: &secret.record,
                id: &secret.record.arn,
            };
            let result = match self.authorize_as(ctx, GET, target) {
                Ok(()) => self.read_current(ctx, &secret).await,
                Err(e) => Err(e),
            };
            self.audit_member(ctx, &secret.arn, result.as_ref().err())
                .await;
            match result {
                Ok(v) => out.secret_values.push(v),
                Err(e) if e.code == ErrorCode::InternalServiceError => return Err(e),
                Err(e) => out.errors.push(error_entry(&secret.arn, e)),
            }
        }
        Ok(out)
    }

    /// The GetSecretValue record AWS writes for each secret of a batch.
    async fn audit_member(&self, ctx: &RequestCtx, arn: &str, error: Option<&ApiError>) {
        if let Some(call) = &ctx.call {
            let member = std::sync::Arc::new(crate::audit::batch_member(call, arn));
            self.record_call(member, error).await;
        }
    }

    async fn read_current(
        &self,
        ctx: &RequestCtx,
        secret: &Cached,
    ) -> Result<GetSecretValueResponse, ApiError> {
        let (version, value) = self.read_version(ctx, secret, None, None).await?;
        let v = &secret.record.versions[version];
        self.note_access(secret, v);
        Ok(crate::answer::response(&secret.record, v, value))
    }

    /// Deletes for good the secrets whose recovery window has ended. Returns how many.
    /// Each deletion commits only while `fence`'s lease holds (the purge job's).
    pub async fn purge_due(&self, fence: Option<&arca_store::Fence>) -> Result<usize, ApiError> {
        let mut purged = 0;
        loop {
            let due = self
                .store
                .due_for_purge(self.now(), 256)
                .await
                .map_err(store_err)?;
            if due.is_empty() {
                return Ok(purged);
            }
            for d in &due {
                // Under the write lock, so no write in flight re-fills the cache after the
                // invalidation; and only if the secret is still due at the date listed, so
                // a RestoreSecret that committed since the listing wins.
                let _guard = self.write_locks.lock(&d.arn).await;
                let effects = self.purge_effects(d, fence);
                let deleted = self
                    .store
                    .purge_secret(&d.region, &d.arn, d.purge_at, &effects)
                    .await;
                if !effects.deliveries.is_empty() && matches!(deleted, Ok(true)) {
                    self.delivery_wakeup.notify_one();
                }
                // The name is not at hand; the stale name entry resolves to nothing.
                self.cache.invalidate(&d.region, "", &d.arn);
                if deleted.map_err(store_err)? {
                    tracing::info!(arn = %d.arn, "purged secret at the end of its recovery window");
                    purged += 1;
                }
            }
        }
    }
}

impl Arca {
    /// The trail's record of a purge (EndSecretVersionDelete) and the deliveries it owes,
    /// committed with the purge if it happens.
    fn purge_effects(
        &self,
        d: &arca_store::PurgeDue,
        fence: Option<&arca_store::Fence>,
    ) -> arca_store::Effects {
        let event = crate::events::arn_event(
            "EndSecretVersionDelete",
            &d.region,
            &d.arn,
            None,
            self.now(),
        );
        let audit = vec![crate::audit::service_event(&self.account, &event)];
        arca_store::Effects {
            deliveries: self.route(&audit),
            audit,
            outbox: Vec::new(),
            fence: fence.cloned(),
        }
    }
}

fn error_entry(id: &str, e: ApiError) -> ApiErrorEntry {
    ApiErrorEntry {
        secret_id: Some(id.to_owned()),
        error_code: Some(e.code.aws_type().to_owned()),
        message: Some(e.message),
    }
}

fn cursor_of(s: &SecretRecord, sort_by: SortBy) -> ListCursor {
    let sort_value = match sort_by {
        SortBy::CreatedDate => CursorValue::Time(Some(s.created_at)),
        SortBy::LastChangedDate => CursorValue::Time(Some(s.last_changed_at)),
        SortBy::LastAccessedDate => CursorValue::Time(s.last_accessed_day),
        SortBy::Name => CursorValue::Name(s.name.clone()),
    };
    ListCursor {
        sort_value,
        arn: s.arn.clone(),
    }
}
