//! EventBridge's rule operations on each region's default bus (PutRule, DeleteRule,
//! DescribeRule, ListRules, EnableRule, DisableRule, PutTargets, RemoveTargets,
//! ListTargetsByRule), over the store's rules and targets, with EventBridge's limits and
//! refusals. Every change commits with the call's audit record and then reloads the
//! routes, so the next write is matched against it.

use super::routes::RuleState;
use super::targets::TargetKind;
use crate::{store_err, Arca, RequestCtx};
use arca_store::{RuleRecord, StoreError, TargetRecord};
use arca_types::error::{Shown, Violation};
use arca_types::eventbridge::*;
use arca_types::{ApiError, ErrorCode};

/// EventBridge's default quota of targets per rule.
pub const MAX_TARGETS_PER_RULE: usize = 5;
/// RetryPolicy defaults: 185 retries over 24 hours.
pub const DEFAULT_MAX_RETRIES: u32 = 185;
pub const DEFAULT_MAX_AGE_SECS: u32 = 86_400;
/// Who owns rules written from the config file (ManagedBy): the API may not change them.
pub const CONFIG_MANAGER: &str = "arca.config";

const NAME_PATTERN: &str = r"[\.\-_A-Za-z0-9]+";

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

fn name_violations(value: Option<&str>, path: &str, out: &mut Vec<Violation>) {
    let v = |constraint: String, shown: Shown| Violation {
        value: shown,
        path: path.to_owned(),
        constraint,
    };
    match value {
        None => out.push(v("Member must not be null".into(), Shown::Null)),
        Some("") => out.push(v(
            "Member must have length greater than or equal to 1".into(),
            Shown::Value(String::new()),
        )),
        Some(s) if s.len() > 64 => out.push(v(
            "Member must have length less than or equal to 64".into(),
            Shown::Value(s.to_owned()),
        )),
        Some(s) if !valid_name(s) => out.push(v(
            format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
            Shown::Value(s.to_owned()),
        )),
        _ => {}
    }
}

fn check(violations: Vec<Violation>) -> Result<(), ApiError> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(&violations))
    }
}

/// Only the default bus exists (by name or ARN).
fn check_bus(ctx: &RequestCtx, account: &str, bus: &Option<String>) -> Result<(), ApiError> {
    let Some(b) = bus else { return Ok(()) };
    let arn = format!(
        "arn:aws:events:{}:{account}:event-bus/{DEFAULT_BUS}",
        ctx.region
    );
    if b == DEFAULT_BUS || *b == arn {
        return Ok(());
    }
    let name = b.rsplit('/').next().unwrap_or(b);
    Err(ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("Event bus {name} does not exist."),
    ))
}

fn no_rule(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("Rule {name} does not exist on EventBus {DEFAULT_BUS}."),
    )
}

fn managed(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ManagedRule,
        format!(
            "Rule {name} is managed by {CONFIG_MANAGER} (Arca's config file) and cannot be changed through the API."
        ),
    )
}

pub fn rule_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:rule/{name}")
}

fn limit_of(limit: Option<i64>, violations: &mut Vec<Violation>) -> usize {
    match limit {
        None => 100,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            violations.push(Violation {
                value: Shown::Value(n.to_string()),
                path: "limit".into(),
                constraint: if n < 1 {
                    "Member must have value greater than or equal to 1".into()
                } else {
                    "Member must have value less than or equal to 100".into()
                },
            });
            100
        }
    }
}

/// Page tokens: the offset into the sorted list, bound to what is listed.
fn token(offset: usize, scope: &str) -> String {
    format!("{offset}.{:016x}", fingerprint(scope))
}

fn parse_token(t: &Option<String>, scope: &str) -> Result<usize, ApiError> {
    let Some(t) = t else { return Ok(0) };
    let bad = || ApiError::new(ErrorCode::Validation, "The nextToken provided is invalid.");
    let (n, fp) = t.split_once('.').ok_or_else(bad)?;
    if fp != format!("{:016x}", fingerprint(scope)) {
        return Err(bad());
    }
    n.parse().map_err(|_| bad())
}

fn fingerprint(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Arca {
    fn rule_dto(&self, r: &RuleRecord, describe: bool) -> RuleDto {
        RuleDto {
            name: r.name.clone(),
            arn: rule_arn(&r.region, &self.account, &r.name),
            event_pattern: Some(r.pattern.clone()),
            state: r.state.clone(),
            description: r.description.clone(),
            managed_by: r.managed_by.clone(),
            event_bus_name: DEFAULT_BUS.into(),
            created_by: describe.then(|| self.account.clone()),
        }
    }

    /// The call's audit record, to commit with the rule change (empty when unaudited).
    fn rule_audit(&self, ctx: &RequestCtx, arn: &str) -> Vec<arca_store::AuditEntry> {
        ctx.unrecorded_call()
            .map(|c| {
                vec![c.entry_about(
                    &self.account,
                    Some(arn),
                    Some(serde_json::json!({ "ruleArn": arn })),
                    None,
                )]
            })
            .unwrap_or_default()
    }

    fn rule_changed(&self, ctx: &RequestCtx) {
        if let Some(c) = ctx.unrecorded_call() {
            c.mark_recorded();
        }
    }

    async fn existing_rule(&self, ctx: &RequestCtx, name: &str) -> Result<RuleRecord, ApiError> {
        self.store
            .get_rule(&ctx.region, name)
            .await
            .map_err(store_err)?
            .ok_or_else(|| no_rule(name))
    }

    pub async fn put_rule(
        &self,
        ctx: &RequestCtx,
        req: PutRuleRequest,
    ) -> Result<PutRuleResponse, ApiError> {
        let mut v = Vec::new();
        name_violations(req.name.as_deref(), "name", &mut v);
        if let Some(d) = &req.description {
            if d.chars().count() > 512 {
                v.push(Violation {
                    value: Shown::Value(d.clone()),
                    path: "description".into(),
                    constraint: "Member must have length less than or equal to 512".into(),
                });
            }
        }
        if let Some(p) = &req.event_pattern {
            if p.len() > 4096 {
                v.push(Violation {
                    value: Shown::Hidden,
                    path: "eventPattern".into(),
                    constraint: "Member must have length less than or equal to 4096".into(),
                });
            }
        }
        let state = match req.state.as_deref() {
            None => RuleState::Enabled,
            Some(s) => RuleState::parse(s).unwrap_or_else(|| {
                v.push(Violation {
                    value: Shown::Value(s.to_owned()),
                    path: "state".into(),
                    constraint: "Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]".into(),
                });
                RuleState::Disabled
            }),
        };
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let name = req.name.unwrap_or_default();
        if req.schedule_expression.is_some() {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "ScheduleExpression is not supported by Arca: rules match events only.",
            ));
        }
        let Some(pattern) = req.event_pattern else {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            ));
        };
        super::pattern::Pattern::parse_str(&pattern).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidEventPattern,
                format!("Event pattern is not valid. Reason: {}", e.0),
            )
        })?;
        let existing = self
            .store
            .get_rule(&ctx.region, &name)
            .await
            .map_err(store_err)?;
        if existing.as_ref().is_some_and(|r| r.managed_by.is_some()) {
            return Err(managed(&name));
        }
        let record = RuleRecord {
            region: ctx.region.clone(),
            name: name.clone(),
            pattern,
            state: state.as_str().into(),
            description: req.description,
            managed_by: None,
            created_at: existing.map_or_else(|| self.now(), |r| r.created_at),
        };
        self.write_rule(ctx, &record).await?;
        Ok(PutRuleResponse {
            rule_arn: rule_arn(&ctx.region, &self.account, &name),
        })
    }

    /// Stores a rule (from the API, the CLI or the config file) and routes by it.
    pub async fn write_rule(&self, ctx: &RequestCtx, record: &RuleRecord) -> Result<(), ApiError> {
        let arn = rule_arn(&record.region, &self.account, &record.name);
        self.store
            .put_rule(record, self.rule_audit(ctx, &arn))
            .await
            .map_err(store_err)?;
        self.rule_changed(ctx);
        self.reload_rules().await
    }

    pub async fn describe_rule(
        &self,
        ctx: &RequestCtx,
        req: RuleNameRequest,
    ) -> Result<RuleDto, ApiError> {
        let mut v = Vec::new();
        name_violations(req.name.as_deref(), "name", &mut v);
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let r = self
            .existing_rule(ctx, req.name.as_deref().unwrap_or(""))
            .await?;
        Ok(self.rule_dto(&r, true))
    }

    pub async fn list_rules(
        &self,
        ctx: &RequestCtx,
        req: ListRulesRequest,
    ) -> Result<ListRulesResponse, ApiError> {
        let mut v = Vec::new();
        if let Some(p) = &req.name_prefix {
            name_violations(Some(p), "namePrefix", &mut v);
        }
        let limit = limit_of(req.limit, &mut v);
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let prefix = req.name_prefix.unwrap_or_default();
        let scope = format!("rules|{}|{prefix}", ctx.region);
        let start = parse_token(&req.next_token, &scope)?;
        let all: Vec<RuleRecord> = self
            .store
            .list_rules()
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|r| r.region == ctx.region && r.name.starts_with(&prefix))
            .collect();
        let page: Vec<RuleDto> = all
            .iter()
            .skip(start)
            .take(limit)
            .map(|r| self.rule_dto(r, false))
            .collect();
        let end = start + page.len();
        Ok(ListRulesResponse {
            rules: page,
            next_token: (end < all.len()).then(|| token(end, &scope)),
        })
    }

    /// EnableRule (`enable`) or DisableRule.
    pub async fn set_rule_state(
        &self,
        ctx: &RequestCtx,
        req: RuleNameRequest,
        enable: bool,
    ) -> Result<(), ApiError> {
        let mut v = Vec::new();
        name_violations(req.name.as_deref(), "name", &mut v);
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let mut r = self
            .existing_rule(ctx, req.name.as_deref().unwrap_or(""))
            .await?;
        if r.managed_by.is_some() {
            return Err(managed(&r.name));
        }
        r.state = if enable {
            RuleState::Enabled
        } else {
            RuleState::Disabled
        }
        .as_str()
        .into();
        self.write_rule(ctx, &r).await
    }

    pub async fn delete_rule(
        &self,
        ctx: &RequestCtx,
        req: RuleNameRequest,
    ) -> Result<(), ApiError> {
        let mut v = Vec::new();
        name_violations(req.name.as_deref(), "name", &mut v);
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let name = req.name.unwrap_or_default();
        // AWS answers a rule that does not exist with success.
        let Some(r) = self
            .store
            .get_rule(&ctx.region, &name)
            .await
            .map_err(store_err)?
        else {
            return Ok(());
        };
        if r.managed_by.is_some() && !req.force.unwrap_or(false) {
            return Err(managed(&name));
        }
        let has_targets = self
            .store
            .list_targets()
            .await
            .map_err(store_err)?
            .iter()
            .any(|t| t.region == ctx.region && t.rule == name);
        if has_targets {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "Rule can't be deleted since it has targets.",
            ));
        }
        self.remove_rule(ctx, &name).await
    }

    /// Deletes a rule with whatever targets it has (the CLI and the config file).
    pub async fn remove_rule(&self, ctx: &RequestCtx, name: &str) -> Result<(), ApiError> {
        let arn = rule_arn(&ctx.region, &self.account, name);
        self.store
            .delete_rule(&ctx.region, name, self.rule_audit(ctx, &arn))
            .await
            .map_err(store_err)?;
        self.rule_changed(ctx);
        self.reload_rules().await
    }

    pub async fn put_targets(
        &self,
        ctx: &RequestCtx,
        req: PutTargetsRequest,
    ) -> Result<TargetsResultResponse, ApiError> {
        let mut v = Vec::new();
        name_violations(req.rule.as_deref(), "rule", &mut v);
        let targets = req.targets.unwrap_or_default();
        if targets.is_empty() || targets.len() > 100 {
            v.push(Violation {
                value: Shown::Hidden,
                path: "targets".into(),
                constraint: if targets.is_empty() {
                    "Member must have length greater than or equal to 1".into()
                } else {
                    "Member must have length less than or equal to 100".into()
                },
            });
        }
        for (i, t) in targets.iter().enumerate() {
            name_violations(
                t.id.as_deref(),
                &format!("targets.{}.member.id", i + 1),
                &mut v,
            );
            match &t.arn {
                None => v.push(Violation {
                    value: Shown::Null,
                    path: format!("targets.{}.member.arn", i + 1),
                    constraint: "Member must not be null".into(),
                }),
                Some(a) if a.is_empty() || a.len() > 1600 => v.push(Violation {
                    value: Shown::Value(a.clone()),
                    path: format!("targets.{}.member.arn", i + 1),
                    constraint: "Member must have length between 1 and 1600".into(),
                }),
                _ => {}
            }
            if let Some(p) = &t.retry_policy {
                if let Some(n) = p.maximum_retry_attempts {
                    if !(0..=185).contains(&n) {
                        v.push(Violation {
                            value: Shown::Value(n.to_string()),
                            path: format!(
                                "targets.{}.member.retryPolicy.maximumRetryAttempts",
                                i + 1
                            ),
                            constraint: "Member must have value between 0 and 185".into(),
                        });
                    }
                }
                if let Some(n) = p.maximum_event_age_in_seconds {
                    if !(60..=86_400).contains(&n) {
                        v.push(Violation {
                            value: Shown::Value(n.to_string()),
                            path: format!(
                                "targets.{}.member.retryPolicy.maximumEventAgeInSeconds",
                                i + 1
                            ),
                            constraint: "Member must have value between 60 and 86400".into(),
                        });
                    }
                }
            }
        }
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let rule = req.rule.unwrap_or_default();
        let r = self.existing_rule(ctx, &rule).await?;
        if r.managed_by.is_some() {
            return Err(managed(&rule));
        }
        let mut failed = Vec::new();
        let mut records = Vec::new();
        for t in targets {
            let id = t.id.clone().unwrap_or_default();
            match self.target_record(&ctx.region, &rule, t) {
                Ok(rec) => records.push(rec),
                Err(message) => failed.push(FailedTargetEntry {
                    target_id: id,
                    error_code: "ValidationException".into(),
                    error_message: message,
                }),
            }
        }
        let existing = self.store.list_targets().await.map_err(store_err)?;
        let mut ids: std::collections::BTreeSet<&str> = existing
            .iter()
            .filter(|t| t.region == ctx.region && t.rule == rule)
            .map(|t| t.id.as_str())
            .collect();
        ids.extend(records.iter().map(|t| t.id.as_str()));
        if ids.len() > MAX_TARGETS_PER_RULE {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "The requested resource exceeds the maximum number allowed (a rule has at most {MAX_TARGETS_PER_RULE} targets)."
                ),
            ));
        }
        if !records.is_empty() {
            let arn = rule_arn(&ctx.region, &self.account, &rule);
            match self
                .store
                .put_targets(&records, self.rule_audit(ctx, &arn))
                .await
            {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Err(no_rule(&rule)),
                Err(e) => return Err(store_err(e)),
            }
            self.rule_changed(ctx);
            self.reload_rules().await?;
        }
        Ok(TargetsResultResponse {
            failed_entry_count: failed.len() as i64,
            failed_entries: failed,
        })
    }

    /// A target as stored, or why it is refused.
    pub fn target_record(
        &self,
        region: &str,
        rule: &str,
        t: TargetDto,
    ) -> Result<TargetRecord, String> {
        let arn = t.arn.unwrap_or_default();
        if let Some(k) = t.other.keys().next() {
            return Err(format!("{k} is not supported by Arca's targets."));
        }
        TargetKind::parse(&arn)?;
        if t.input.is_some() && t.input_path.is_some() {
            return Err("Only one of Input and InputPath may be set.".into());
        }
        if let Some(i) = &t.input {
            if serde_json::from_str::<serde_json::Value>(i).is_err() {
                return Err("Input is not valid JSON.".into());
            }
        }
        if let Some(p) = &t.input_path {
            super::deliver::json_path(&serde_json::Value::Null, p)?;
        }
        let policy = t.retry_policy.unwrap_or_default();
        Ok(TargetRecord {
            region: region.to_owned(),
            rule: rule.to_owned(),
            id: t.id.unwrap_or_default(),
            arn,
            input: t.input,
            input_path: t.input_path,
            max_retries: policy
                .maximum_retry_attempts
                .map_or(DEFAULT_MAX_RETRIES, |n| n as u32),
            max_age_secs: policy
                .maximum_event_age_in_seconds
                .map_or(DEFAULT_MAX_AGE_SECS, |n| n as u32),
            options: "{}".into(),
        })
    }

    pub async fn remove_targets(
        &self,
        ctx: &RequestCtx,
        req: RemoveTargetsRequest,
    ) -> Result<TargetsResultResponse, ApiError> {
        let mut v = Vec::new();
        name_violations(req.rule.as_deref(), "rule", &mut v);
        let ids = req.ids.unwrap_or_default();
        if ids.is_empty() || ids.len() > 100 {
            v.push(Violation {
                value: Shown::Hidden,
                path: "ids".into(),
                constraint: "Member must have length between 1 and 100".into(),
            });
        }
        for (i, id) in ids.iter().enumerate() {
            name_violations(Some(id), &format!("ids.{}.member", i + 1), &mut v);
        }
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let rule = req.rule.unwrap_or_default();
        let r = self.existing_rule(ctx, &rule).await?;
        if r.managed_by.is_some() && !req.force.unwrap_or(false) {
            return Err(managed(&rule));
        }
        let arn = rule_arn(&ctx.region, &self.account, &rule);
        self.store
            .remove_targets(&ctx.region, &rule, &ids, self.rule_audit(ctx, &arn))
            .await
            .map_err(store_err)?;
        self.rule_changed(ctx);
        self.reload_rules().await?;
        Ok(TargetsResultResponse::default())
    }

    pub async fn list_targets_by_rule(
        &self,
        ctx: &RequestCtx,
        req: ListTargetsByRuleRequest,
    ) -> Result<ListTargetsByRuleResponse, ApiError> {
        let mut v = Vec::new();
        name_violations(req.rule.as_deref(), "rule", &mut v);
        let limit = limit_of(req.limit, &mut v);
        check(v)?;
        check_bus(ctx, &self.account, &req.event_bus_name)?;
        let rule = req.rule.unwrap_or_default();
        self.existing_rule(ctx, &rule).await?;
        let scope = format!("targets|{}|{rule}", ctx.region);
        let start = parse_token(&req.next_token, &scope)?;
        let all: Vec<TargetRecord> = self
            .store
            .list_targets()
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|t| t.region == ctx.region && t.rule == rule)
            .collect();
        let page: Vec<TargetDto> = all.iter().skip(start).take(limit).map(target_dto).collect();
        let end = start + page.len();
        Ok(ListTargetsByRuleResponse {
            targets: page,
            next_token: (end < all.len()).then(|| token(end, &scope)),
        })
    }

    /// Every rule of every region and its targets (for `arca rules list`).
    pub async fn all_rules(&self) -> Result<Vec<(RuleRecord, Vec<TargetRecord>)>, ApiError> {
        let (rules, targets) = tokio::try_join!(self.store.list_rules(), self.store.list_targets())
            .map_err(store_err)?;
        Ok(rules
            .into_iter()
            .map(|r| {
                let ts = targets
                    .iter()
                    .filter(|t| t.region == r.region && t.rule == r.name)
                    .cloned()
                    .collect();
                (r, ts)
            })
            .collect())
    }
}

/// A rule from the config file.
#[derive(Debug, Clone)]
pub struct ConfigRule {
    pub region: String,
    pub name: String,
    pub pattern: String,
    pub state: Option<String>,
    pub description: Option<String>,
    pub targets: Vec<TargetDto>,
}

impl Arca {
    /// Makes the config file's rules the config-owned rules: each written (ManagedBy
    /// `arca.config`) with exactly its targets, and config-owned rules the file no longer
    /// has removed. Rules made through the API are left alone, unless the file takes over
    /// one's name.
    pub async fn apply_config_rules(&self, rules: Vec<ConfigRule>) -> Result<(), ApiError> {
        let existing = self.all_rules().await?;
        for (r, _) in &existing {
            let kept = rules
                .iter()
                .any(|c| c.region == r.region && c.name == r.name);
            if r.managed_by.is_some() && !kept {
                self.remove_rule(&RequestCtx::new(r.region.clone()), &r.name)
                    .await?;
            }
        }
        for c in rules {
            let bad = |why: String| {
                ApiError::new(ErrorCode::Validation, format!("rule {}: {why}", c.name))
            };
            if !valid_name(&c.name) {
                return Err(bad(format!("the name must match {NAME_PATTERN}")));
            }
            super::pattern::Pattern::parse_str(&c.pattern)
                .map_err(|e| bad(format!("the pattern is not valid: {}", e.0)))?;
            let state = match c.state.as_deref() {
                None => RuleState::Enabled,
                Some(s) => RuleState::parse(s).ok_or_else(|| bad(format!("unknown state {s}")))?,
            };
            let mut targets = Vec::new();
            for t in c.targets.clone() {
                let id = t.id.clone().unwrap_or_default();
                if !valid_name(&id) {
                    return Err(bad(format!("target id {id:?} must match {NAME_PATTERN}")));
                }
                targets.push(
                    self.target_record(&c.region, &c.name, t)
                        .map_err(|e| bad(format!("target {id}: {e}")))?,
                );
            }
            if targets.len() > MAX_TARGETS_PER_RULE {
                return Err(bad(format!("more than {MAX_TARGETS_PER_RULE} targets")));
            }
            let ctx = RequestCtx::new(c.region.clone());
            let created_at = existing
                .iter()
                .find(|(r, _)| r.region == c.region && r.name == c.name)
                .map_or_else(|| self.now(), |(r, _)| r.created_at);
            self.store
                .put_rule(
                    &RuleRecord {
                        region: c.region.clone(),
                        name: c.name.clone(),
                        pattern: c.pattern.clone(),
                        state: state.as_str().into(),
                        description: c.description.clone(),
                        managed_by: Some(CONFIG_MANAGER.into()),
                        created_at,
                    },
                    Vec::new(),
                )
                .await
                .map_err(store_err)?;
            let gone: Vec<String> = existing
                .iter()
                .filter(|(r, _)| r.region == c.region && r.name == c.name)
                .flat_map(|(_, ts)| ts.iter())
                .filter(|t| !targets.iter().any(|n| n.id == t.id))
                .map(|t| t.id.clone())
                .collect();
            if !gone.is_empty() {
                self.store
                    .remove_targets(&ctx.region, &c.name, &gone, Vec::new())
                    .await
                    .map_err(store_err)?;
            }
            if !targets.is_empty() {
                self.store
                    .put_targets(&targets, Vec::new())
                    .await
                    .map_err(store_err)?;
            }
        }
        self.reload_rules().await
    }
}

pub fn target_dto(t: &TargetRecord) -> TargetDto {
    TargetDto {
        id: Some(t.id.clone()),
        arn: Some(t.arn.clone()),
        input: t.input.clone(),
        input_path: t.input_path.clone(),
        retry_policy: Some(RetryPolicy {
            maximum_retry_attempts: Some(t.max_retries.into()),
            maximum_event_age_in_seconds: Some(t.max_age_secs.into()),
        }),
        other: Default::default(),
    }
}
