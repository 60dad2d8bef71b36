//! Event rules, their targets, and the deliveries they owe: what EventBridge keeps for a
//! rule on the default bus, and the durable queue between an event and its targets.
//! A delivery is written in the transaction of the write whose event matched the rule
//! (see `SecretChange::deliveries`), so a committed event is never without its
//! deliveries; the delivery worker hands each (rule, target)'s deliveries over in seq
//! order, one at a time.

use arca_types::time::Millis;

/// A rule: an event pattern on a region's default event bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub region: String,
    pub name: String,
    /// The pattern, as the caller wrote it (JSON text; arca-core has parsed it).
    pub pattern: String,
    /// "ENABLED", "DISABLED" or "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS".
    pub state: String,
    pub description: Option<String>,
    /// Where the rule came from: None for the API or CLI, `Some("config")` for the
    /// config file (which owns it and rewrites it at start).
    pub managed_by: Option<String>,
    pub created_at: Millis,
}

/// One target of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    pub region: String,
    pub rule: String,
    pub id: String,
    /// The target's ARN: a bound function (`arn:aws:lambda:...`) or a built-in action.
    pub arn: String,
    /// EventBridge's `Input` (constant JSON sent instead of the event), if set.
    pub input: Option<String>,
    /// `InputPath` (a JSONPath into the event), if set.
    pub input_path: Option<String>,
    /// RetryPolicy: retries after the first attempt, and the oldest event still tried.
    pub max_retries: u32,
    pub max_age_secs: u32,
    /// Target-specific options (JSON object), owned by arca-core.
    pub options: String,
}

/// A delivery to queue, written with the event that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub region: String,
    pub rule: String,
    pub target_id: String,
    /// The event's id (the envelope's `id`); with the rule and target it is the
    /// delivery's idempotency key, the same on every attempt.
    pub event_id: String,
    /// The event, in EventBridge's envelope (JSON text). Never holds secret material.
    pub event: String,
    pub created_at: Millis,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its turn or its next attempt.
    Pending,
    /// Given up on (retries or age exhausted): kept for `arca rules dead-letters` and replay.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Assigned on insert, in commit order: the order a target receives its deliveries.
    pub seq: i64,
    pub delivery: NewDelivery,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: Millis,
    /// The last attempt's log-safe error.
    pub last_error: Option<String>,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered: the delivery is removed.
    Delivered,
    /// Failed, to be tried again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: Millis,
    },
    /// Failed for good: kept as a dead letter.
    Dead { error: String },
}
