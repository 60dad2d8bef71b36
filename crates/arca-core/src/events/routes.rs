//! Which deliveries a write owes: the enabled rules and their targets, compiled and held
//! in memory (reloaded from the store after every rule change, and by the delivery
//! worker now and then, for rules changed by another process), and the matching of each
//! trail record's envelope against them. Matching runs inside the write, before its
//! commit, so the deliveries commit with it; with no rules it costs one atomic load.

use super::envelope::envelope;
use super::pattern::Pattern;
use crate::Arca;
use arca_store::{AuditEntry, NewDelivery, RuleRecord, TargetRecord};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// A rule's state, as EventBridge has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    Enabled,
    Disabled,
    /// Enabled, and sees read-only calls too.
    EnabledWithAllManagementEvents,
}

impl RuleState {
    pub const ALL: [RuleState; 3] = [
        RuleState::Enabled,
        RuleState::Disabled,
        RuleState::EnabledWithAllManagementEvents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Enabled => "ENABLED",
            RuleState::Disabled => "DISABLED",
            RuleState::EnabledWithAllManagementEvents => {
                "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
            }
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

struct Route {
    rule: String,
    read_only_too: bool,
    pattern: Pattern,
    targets: Vec<String>,
}

/// The compiled routes of every enabled rule that has targets, by region.
#[derive(Default)]
pub(crate) struct Routes {
    by_region: HashMap<String, Vec<Route>>,
    /// Whether any route sees read-only calls (else reads are never matched).
    reads: bool,
}

impl Routes {
    pub(crate) fn build(rules: &[RuleRecord], targets: &[TargetRecord]) -> Self {
        let mut out = Routes::default();
        for r in rules {
            let state = RuleState::parse(&r.state).unwrap_or(RuleState::Disabled);
            if state == RuleState::Disabled {
                continue;
            }
            let ids: Vec<String> = targets
                .iter()
                .filter(|t| t.region == r.region && t.rule == r.name)
                .map(|t| t.id.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let Ok(pattern) = Pattern::parse_str(&r.pattern) else {
                // Stored patterns were parsed when they were put; one that no longer
                // parses (a newer build's syntax) matches nothing rather than everything.
                tracing::warn!(rule = %r.name, region = %r.region, "stored event pattern does not parse; the rule is skipped");
                continue;
            };
            let read_only_too = state == RuleState::EnabledWithAllManagementEvents;
            out.reads |= read_only_too;
            out.by_region
                .entry(r.region.clone())
                .or_default()
                .push(Route {
                    rule: r.name.clone(),
                    read_only_too,
                    pattern,
                    targets: ids,
                });
        }
        out
    }
}

/// The routes in use, swapped whole on reload.
pub(crate) struct RouteTable {
    current: RwLock<Arc<Routes>>,
    any: AtomicBool,
    reads: AtomicBool,
}

impl RouteTable {
    pub(crate) fn new() -> Self {
        Self {
            current: RwLock::new(Arc::new(Routes::default())),
            any: AtomicBool::new(false),
            reads: AtomicBool::new(false),
        }
    }

    pub(crate) fn set(&self, routes: Routes) {
        self.any
            .store(!routes.by_region.is_empty(), Ordering::Release);
        self.reads.store(routes.reads, Ordering::Release);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(routes);
    }

    /// Whether a call's record could match anything (so the recorder knows which
    /// queued records to look at).
    pub(crate) fn wants(&self, read_only: bool) -> bool {
        self.any.load(Ordering::Acquire) && (!read_only || self.reads.load(Ordering::Acquire))
    }

    /// The deliveries `entries` owe, in order.
    pub(crate) fn route(&self, account: &str, entries: &[AuditEntry]) -> Vec<NewDelivery> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        let routes = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Vec::new();
        for e in entries {
            let Some(candidates) = routes.by_region.get(&e.region) else {
                continue;
            };
            if e.read_only && !routes.reads {
                continue;
            }
            let Some(event) = envelope(account, e) else {
                continue;
            };
            let mut text: Option<String> = None;
            for route in candidates {
                if e.read_only && !route.read_only_too {
                    continue;
                }
                if !route.pattern.matches(&event) {
                    continue;
                }
                let text = text.get_or_insert_with(|| event.to_string());
                let id = event["id"].as_str().unwrap_or_default();
                for t in &route.targets {
                    out.push(NewDelivery {
                        region: e.region.clone(),
                        rule: route.rule.clone(),
                        target_id: t.clone(),
                        event_id: id.to_owned(),
                        event: text.clone(),
                        created_at: e.time,
                    });
                }
            }
        }
        out
    }
}

impl Arca {
    /// Rereads the rules and targets from the store and routes by them from now on.
    pub async fn reload_rules(&self) -> Result<(), arca_types::ApiError> {
        let (rules, targets) = tokio::try_join!(self.store.list_rules(), self.store.list_targets())
            .map_err(crate::store_err)?;
        self.routes.set(Routes::build(&rules, &targets));
        Ok(())
    }

    /// The deliveries `entries` owe (see [`RouteTable::route`]).
    pub(crate) fn route(&self, entries: &[AuditEntry]) -> Vec<NewDelivery> {
        self.routes.route(&self.account, entries)
    }
}
