//! Deliveries: handing each queued event to its target, in order per target, at least
//! once. The delivery worker (arca-jobs) takes the due head of each target's queue from
//! here, invokes the target, and reports back; this module decides what the outcome means
//! (done, retry after an exponential backoff with jitter, or a dead letter once the
//! target's RetryPolicy is spent) and commits it with the delivery's own trail record
//! (`InvokeTarget`, source events.amazonaws.com), so the trail shows every attempt.
//! Every attempt carries the same idempotency key, so a target can tell a retry (after a
//! crash between its answer and our commit, say) from a new event.
//!
//! The built-in copy action lives here too: it is Secrets Manager work (read a value,
//! write it into another region), done through the same operations a client calls, each
//! recorded in the trail as a call by events.amazonaws.com.

use super::targets::TargetKind;
use crate::audit::{Call, Caller, ServiceEvent};
use crate::{store_err, Arca, RequestCtx, SecretScope};
use arca_store::{DeliveryOutcome, DeliveryRecord, DeliveryState, TargetRecord};
use arca_types::arn::secret_name_of;
use arca_types::time::Millis;
use arca_types::wire::{CreateSecretRequest, GetSecretValueRequest, PutSecretValueRequest};
use arca_types::{ApiError, ErrorCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The source of a delivery's trail record (and of the copy action's calls).
pub const DELIVERY_SOURCE: &str = "events.amazonaws.com";
/// The first retry waits this long; each further one twice as long, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: Millis = 1_000;
const MAX_BACKOFF_MS: Millis = 300_000;

/// A delivery whose turn it is, with what to send.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub record: DeliveryRecord,
    pub target: TargetRecord,
    pub kind: TargetKind,
    /// The event (or the target's Input, or the InputPath's part of the event), as JSON.
    pub body: Vec<u8>,
    /// The same on every attempt: `<event id>/<rule>/<target id>`.
    pub idempotency_key: String,
    /// The name of the secret the event is about, if any (what a command's credentials
    /// are scoped to).
    pub secret_name: Option<String>,
    /// The delivery job's lease: the outcome, and the copy action's writes, commit only
    /// while it holds.
    pub fence: Option<arca_store::Fence>,
}

/// A JSONPath of the simple form EventBridge's InputPath takes: `$` or `$.a.b`.
pub fn json_path(v: &Value, path: &str) -> Result<Value, String> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("InputPath {path} must start with $."))?;
    let mut cur = v;
    if rest.is_empty() {
        return Ok(v.clone());
    }
    let rest = rest
        .strip_prefix('.')
        .ok_or_else(|| format!("InputPath {path} is not of the form $.a.b."))?;
    for key in rest.split('.') {
        if key.is_empty() {
            return Err(format!("InputPath {path} is not of the form $.a.b."));
        }
        cur = cur.get(key).unwrap_or(&Value::Null);
    }
    Ok(cur.clone())
}

/// The secret an event is about: the ARN in the trail record, where Secrets Manager puts
/// it for each kind of record.
pub fn event_secret(event: &Value) -> Option<String> {
    let d = &event["detail"];
    [
        &d["additionalEventData"]["SecretId"],
        &d["responseElements"]["arn"],
        &d["requestParameters"]["secretId"],
        &d["requestParameters"]["name"],
        &event["resources"][0],
    ]
    .into_iter()
    .find_map(|v| v.as_str().map(str::to_owned))
}

/// A 36-character token from `key`: the copy action's ClientRequestToken, so a retried
/// copy writes the version the first attempt wrote, not another.
fn token_of(key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn backoff(attempt: u32) -> Millis {
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(MAX_BACKOFF_MS);
    // ±20% so targets that failed together do not retry together.
    let jitter = (base / 5).max(1);
    base - jitter + rand::random::<u64>().rem_euclid(2 * jitter as u64) as Millis
}

/// What the copy action writes: the event's secret's current value, read in its region.
/// Redacted in Debug (its value fields are secret types).
#[derive(Debug)]
pub struct CopySource {
    pub name: String,
    pub from_region: String,
    /// The ClientRequestToken of the write (derived from the delivery).
    pub token: String,
    pub secret_string: Option<arca_types::secret::SecretString>,
    pub secret_binary: Option<arca_types::secret::SecretBlob>,
}

/// The description a secret the copy action creates carries.
pub fn copy_description(from_region: &str) -> String {
    format!("Copied by Arca from {from_region}")
}

impl Arca {
    /// Wakes the delivery worker (a write queued deliveries).
    pub fn delivery_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.delivery_wakeup.clone()
    }

    /// The head delivery of each target whose attempt is due, at most `limit`. Deliveries
    /// older than their target's MaximumEventAgeInSeconds become dead letters here.
    pub async fn due_deliveries(
        &self,
        limit: usize,
        fence: Option<&arca_store::Fence>,
    ) -> Result<Vec<DueDelivery>, ApiError> {
        let now = self.now();
        let due = self
            .store
            .due_deliveries(now, limit)
            .await
            .map_err(store_err)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let targets = self.store.list_targets().await.map_err(store_err)?;
        let mut out = Vec::with_capacity(due.len());
        for record in due {
            let d = &record.delivery;
            let Some(target) = targets
                .iter()
                .find(|t| t.region == d.region && t.rule == d.rule && t.id == d.target_id)
                .cloned()
            else {
                continue;
            };
            let prepared = TargetKind::parse(&target.arn).and_then(|kind| {
                let event: Value = serde_json::from_str(&d.event)
                    .map_err(|_| "the queued event is not JSON".to_owned())?;
                let body = match (&target.input, &target.input_path) {
                    (Some(i), _) => i.clone().into_bytes(),
                    (None, Some(p)) => json_path(&event, p)?.to_string().into_bytes(),
                    (None, None) => d.event.clone().into_bytes(),
                };
                Ok((kind, body, event_secret(&event).map(|s| secret_name_of(&s))))
            });
            let age_ms = now - d.created_at;
            let expired = age_ms > Millis::from(target.max_age_secs) * 1000;
            let due = match prepared {
                Ok((kind, body, secret_name)) => DueDelivery {
                    idempotency_key: format!("{}/{}/{}", d.event_id, d.rule, d.target_id),
                    record,
                    target,
                    kind,
                    body,
                    secret_name,
                    fence: fence.cloned(),
                },
                Err(e) => {
                    self.give_up(&record, &target, &e, fence).await?;
                    continue;
                }
            };
            if expired {
                let why = format!(
                    "the event is older than the target's MaximumEventAgeInSeconds ({} s)",
                    due.target.max_age_secs
                );
                self.give_up(&due.record, &due.target, &why, fence).await?;
                continue;
            }
            out.push(due);
        }
        Ok(out)
    }

    async fn give_up(
        &self,
        record: &DeliveryRecord,
        target: &TargetRecord,
        error: &str,
        fence: Option<&arca_store::Fence>,
    ) -> Result<(), ApiError> {
        let audit = vec![self.delivery_entry(record, target, "DeadLettered", Some(error))];
        let outcome = DeliveryOutcome::Dead {
            error: error.to_owned(),
        };
        match self
            .store
            .finish_delivery(record.seq, &outcome, audit, fence)
            .await
        {
            Ok(()) | Err(arca_store::StoreError::NotFound) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Records what became of an attempt: delivered, retried later, or a dead letter
    /// (the RetryPolicy's retries or age spent). `error` must be log-safe.
    pub async fn finish_delivery(
        &self,
        due: &DueDelivery,
        result: Result<(), String>,
    ) -> Result<(), ApiError> {
        let attempt = due.record.attempts + 1;
        let (outcome, word, error) = match result {
            Ok(()) => (DeliveryOutcome::Delivered, "Delivered", None),
            Err(e) => {
                let next = self.now() + backoff(attempt);
                let too_old = next - due.record.delivery.created_at
                    > Millis::from(due.target.max_age_secs) * 1000;
                if attempt > due.target.max_retries || too_old {
                    (
                        DeliveryOutcome::Dead { error: e.clone() },
                        "DeadLettered",
                        Some(e),
                    )
                } else {
                    (
                        DeliveryOutcome::Retry {
                            error: e.clone(),
                            next_attempt_at: next,
                        },
                        "WillRetry",
                        Some(e),
                    )
                }
            }
        };
        if matches!(outcome, DeliveryOutcome::Dead { .. }) {
            tracing::warn!(rule = %due.target.rule, target = %due.target.id, seq = due.record.seq,
                error = error.as_deref().unwrap_or(""), "event delivery dead-lettered");
        }
        let audit = vec![self.delivery_entry(&due.record, &due.target, word, error.as_deref())];
        match self
            .store
            .finish_delivery(due.record.seq, &outcome, audit, due.fence.as_ref())
            .await
        {
            // The target or its rule was removed meanwhile: nothing is owed any more.
            Ok(()) | Err(arca_store::StoreError::NotFound) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// The trail's record of one attempt.
    fn delivery_entry(
        &self,
        record: &DeliveryRecord,
        target: &TargetRecord,
        outcome: &str,
        error: Option<&str>,
    ) -> arca_store::AuditEntry {
        let d = &record.delivery;
        let rule_arn = super::rules::rule_arn(&d.region, &self.account, &d.rule);
        let mut data = serde_json::Map::new();
        data.insert("ruleArn".into(), rule_arn.clone().into());
        data.insert("targetId".into(), d.target_id.clone().into());
        data.insert("targetArn".into(), target.arn.clone().into());
        data.insert("eventId".into(), d.event_id.clone().into());
        data.insert("deliveryId".into(), record.seq.into());
        data.insert("attempt".into(), (record.attempts + 1).into());
        data.insert("outcome".into(), outcome.into());
        if let Some(e) = error {
            data.insert("error".into(), e.into());
        }
        ServiceEvent {
            source: DELIVERY_SOURCE,
            name: "InvokeTarget",
            region: &d.region,
            time: self.now(),
            resource: Some(&rule_arn),
            request_id: None,
            data,
        }
        .entry(&self.account)
    }

    /// Dead letters, oldest first, after `after_seq`.
    pub async fn dead_letters(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        self.store
            .list_deliveries(DeliveryState::Dead, after_seq, limit)
            .await
            .map_err(store_err)
    }

    /// Deliveries still owed, oldest first, after `after_seq`.
    pub async fn pending_deliveries(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        self.store
            .list_deliveries(DeliveryState::Pending, after_seq, limit)
            .await
            .map_err(store_err)
    }

    /// Puts a dead letter back at the head of its target's queue. Returns whether `seq`
    /// was a dead letter.
    pub async fn replay_dead_letter(&self, seq: i64) -> Result<bool, ApiError> {
        let done = self
            .store
            .replay_delivery(seq, self.now())
            .await
            .map_err(store_err)?;
        if done {
            self.delivery_wakeup.notify_one();
        }
        Ok(done)
    }

    /// The built-in action, its read half: the current value of the event's secret in
    /// the event's region, read as events.amazonaws.com (recorded in the trail), with
    /// the ClientRequestToken its copy writes with. The token derives from the version
    /// read (its secret's ARN and version id), not from the event: a retried delivery,
    /// and every later event that finds the same current version, writes the same
    /// version there, so a copy holds one version per source version it saw. `to_region`
    /// is where the copy goes: never the event's own region.
    pub async fn copy_source(
        &self,
        due: &DueDelivery,
        to_region: &str,
    ) -> Result<CopySource, String> {
        let event: Value =
            serde_json::from_slice(&due.body).map_err(|_| "the event is not JSON".to_owned())?;
        let source = event_secret(&event).ok_or("the event names no secret")?;
        let from_region = match arca_types::arn::SecretRef::parse(&source) {
            arca_types::arn::SecretRef::Arn { region, .. } => region,
            arca_types::arn::SecretRef::Name(_) => event["region"]
                .as_str()
                .unwrap_or(&due.record.delivery.region)
                .to_owned(),
        };
        if from_region == to_region {
            return Err(format!(
                "the copy action's region {to_region} is the event's own region"
            ));
        }
        let request_id = token_of(&format!("{}/request", due.idempotency_key));
        let read_ctx = self.action_ctx(
            "GetSecretValue",
            &from_region,
            json!({ "secretId": source }),
            &request_id,
            due,
        );
        let read = self
            .get_secret_value(
                &read_ctx,
                GetSecretValueRequest {
                    secret_id: Some(source.clone()),
                    ..Default::default()
                },
            )
            .await;
        self.finish_call(&read_ctx, read.as_ref().err()).await;
        let value = read.map_err(|e| format!("reading {source}: {}", e.code.aws_type()))?;
        Ok(CopySource {
            name: value.name,
            from_region,
            token: token_of(&format!("copy/{}/{}", value.arn, value.version_id)),
            secret_string: value.secret_string,
            secret_binary: value.secret_binary,
        })
    }

    /// The built-in action, in this deployment: reads the current value of the event's
    /// secret in its region and writes it into the same-named secret in `region` (created
    /// there, under `kms_key_id`, when missing). Both calls are recorded in the trail as
    /// calls by events.amazonaws.com. Idempotent per source version (see `copy_source`).
    pub async fn copy_secret(
        &self,
        due: &DueDelivery,
        region: &str,
        kms_key_id: Option<&str>,
    ) -> Result<(), String> {
        let CopySource {
            name,
            from_region,
            token,
            secret_string,
            secret_binary,
        } = self.copy_source(due, region).await?;
        let write_id = token_of(&format!("{}/write", due.idempotency_key));
        let put_ctx = self.action_ctx(
            "PutSecretValue",
            region,
            json!({ "secretId": name, "clientRequestToken": token }),
            &write_id,
            due,
        );
        let put = self
            .put_secret_value(
                &put_ctx,
                PutSecretValueRequest {
                    secret_id: Some(name.clone()),
                    client_request_token: Some(token.clone()),
                    secret_string: secret_string.clone(),
                    secret_binary: secret_binary.clone(),
                    ..Default::default()
                },
            )
            .await;
        self.finish_call(&put_ctx, put.as_ref().err()).await;
        match put {
            Err(e) if e.code == ErrorCode::ResourceNotFound => {}
            other => {
                return other
                    .map(|_| ())
                    .map_err(|e| format!("writing {name} in {region}: {}", e.code.aws_type()))
            }
        }
        // Not there yet (the refused put is in the trail): create it.
        let mut params = json!({ "name": name, "clientRequestToken": token });
        if let Some(k) = kms_key_id {
            params["kmsKeyId"] = k.into();
        }
        let create_ctx = self.action_ctx("CreateSecret", region, params, &write_id, due);
        let created = self
            .create_secret(
                &create_ctx,
                CreateSecretRequest {
                    name: Some(name.clone()),
                    client_request_token: Some(token),
                    description: Some(copy_description(&from_region)),
                    kms_key_id: kms_key_id.map(str::to_owned),
                    secret_string,
                    secret_binary,
                    ..Default::default()
                },
            )
            .await;
        self.finish_call(&create_ctx, created.as_ref().err()).await;
        created
            .map(|_| ())
            .map_err(|e| format!("creating {name} in {region}: {}", e.code.aws_type()))
    }

    /// The context of a call the copy action makes: audited, as events.amazonaws.com,
    /// allowed to touch only secrets of the event's secret's name, and fenced by the
    /// delivery job's lease.
    fn action_ctx(
        &self,
        op: &str,
        region: &str,
        params: Value,
        request_id: &str,
        due: &DueDelivery,
    ) -> RequestCtx {
        let mut ctx = RequestCtx::fenced(region, due.fence.clone());
        if let Some(name) = params["secretId"].as_str().or(params["name"].as_str()) {
            ctx.only_secret = Some(SecretScope::Name(secret_name_of(name)));
        }
        if self.audit_enabled() {
            let agent: Arc<str> = Arc::from(DELIVERY_SOURCE);
            let call = Call::other(
                op,
                crate::audit::EVENT_SOURCE,
                params,
                region,
                self.now(),
                request_id,
                Caller {
                    access_key_id: None,
                    identity: None,
                    source_ip: Some(agent.clone()),
                    user_agent: Some(agent),
                },
            );
            ctx.call = Some(Arc::new(call));
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_paths() {
        let v = json!({"detail": {"eventName": "RotationSucceeded"}, "id": "x"});
        assert_eq!(json_path(&v, "$").unwrap(), v);
        assert_eq!(
            json_path(&v, "$.detail.eventName").unwrap(),
            "RotationSucceeded"
        );
        assert_eq!(json_path(&v, "$.nope.deeper").unwrap(), Value::Null);
        assert!(json_path(&v, "detail").is_err());
        assert!(json_path(&v, "$..x").is_err());
    }

    #[test]
    fn the_secret_of_each_kind_of_event() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf";
        let service = json!({"detail": {"additionalEventData": {"SecretId": arn}}});
        assert_eq!(event_secret(&service).as_deref(), Some(arn));
        let call = json!({"detail": {"responseElements": {"arn": arn}}});
        assert_eq!(event_secret(&call).as_deref(), Some(arn));
        assert_eq!(secret_name_of(arn), "db/app");
        assert_eq!(secret_name_of("db/app"), "db/app");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for (attempt, base) in [(1, 1_000), (2, 2_000), (3, 4_000), (30, MAX_BACKOFF_MS)] {
            let b = backoff(attempt);
            assert!(b >= base * 4 / 5 && b <= base * 6 / 5, "{attempt}: {b}");
        }
    }

    #[test]
    fn tokens_are_stable_and_valid_client_request_tokens() {
        let t = token_of("e/r/t");
        assert_eq!(t, token_of("e/r/t"));
        assert_ne!(t, token_of("e/r/u"));
        assert_eq!(t.len(), 36);
    }
}
