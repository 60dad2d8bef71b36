//! IAM policies without I/O: `document` parses and compiles the JSON grammar, `pattern`
//! and `condition` hold what statements match with, and `evaluate` turns a request, the
//! caller's identity policies and the resource's policy into a decision. Policies are
//! compiled once, when they are written or loaded, and evaluated per request.

pub mod condition;
pub mod document;
pub mod evaluate;
pub mod pattern;

pub use document::{Effect, Kind, Policy, PolicyError, PrincipalId, Principals};
pub use evaluate::{
    evaluate, evaluate_trust, Context, Decision, PolicyType, Principal, PrincipalKind, Request,
    Value,
};
