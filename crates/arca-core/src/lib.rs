//! Arca's domain: the Secrets Manager operations and the invariants they keep (staging
//! labels, idempotency tokens, deletion windows). It takes a `Store` and a `Keyring` and
//! knows neither HTTP nor SQL.

pub mod filter;
pub mod password;
