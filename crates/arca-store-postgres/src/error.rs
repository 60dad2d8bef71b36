//! Turning driver errors into `StoreError`s whose text is safe to log, and telling which
//! failures a transaction may simply retry.
//! PostgreSQL's DETAIL field (and the message of data and integrity errors) can quote row
//! values, so only the SQLSTATE, the names of constraints, tables and columns, and the
//! message of other error classes are kept: sealed blobs, digests and descriptions never
//! reach a log.

use arca_store::StoreError;
use tokio_postgres::error::SqlState;

/// A failed step of a store operation: a store-level outcome (NotFound, Conflict, ...) or
/// a driver error with what was being done.
#[derive(Debug)]
pub(crate) enum Fail {
    Store(StoreError),
    Pg(&'static str, tokio_postgres::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    /// A serialization failure or deadlock: the transaction was rolled back as a whole
    /// and running it again is correct.
    pub(crate) fn retryable(&self) -> bool {
        matches!(self, Fail::Pg(_, e) if matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        ))
    }

    /// A statement refused because an earlier one of its transaction failed.
    pub(crate) fn is_in_failed_transaction(&self) -> bool {
        matches!(self, Fail::Pg(_, e) if e.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION))
    }

    /// True if this is a UNIQUE violation of `constraint`.
    pub(crate) fn violates(&self, constraint: &str) -> bool {
        match self {
            Fail::Pg(_, e) => e.as_db_error().is_some_and(|d| {
                *d.code() == SqlState::UNIQUE_VIOLATION && d.constraint() == Some(constraint)
            }),
            Fail::Store(_) => false,
        }
    }

    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Pg(context, e) => StoreError::Backend(format!("{context}: {}", describe(&e))),
        }
    }
}

/// `map_err` adapter: `.map_err(pg("load tags"))`.
pub(crate) fn pg(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Fail {
    move |e| Fail::Pg(context, e)
}

/// `map_err` adapter straight to a `StoreError`.
pub(crate) fn pg_store(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| Fail::Pg(context, e).into_store()
}

/// Log-safe text of a driver error.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        // Connection-level failures (refused, closed, TLS, timeouts): no row data in them.
        return e.to_string();
    };
    let code = db.code().code();
    let mut out = format!("postgres {code}");
    // Class 22 (data exception) and 23 (integrity violation) messages can quote values.
    if !(code.starts_with("22") || code.starts_with("23")) {
        out.push_str(": ");
        out.push_str(db.message());
    }
    for (what, name) in [
        ("constraint", db.constraint()),
        ("table", db.table()),
        ("column", db.column()),
    ] {
        if let Some(n) = name {
            out.push_str(&format!(" {what} {n}"));
        }
    }
    out
}

/// JSON columns that fail to decode mean corruption.
pub(crate) fn json_err(context: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| {
        StoreError::Backend(format!(
            "{context}: malformed JSON at line {} column {}",
            e.line(),
            e.column()
        ))
    }
}
