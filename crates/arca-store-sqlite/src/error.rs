//! Turning rusqlite errors into `StoreError`s whose text is safe to log.
//! Messages are built from the operation, the SQLite result code and SQLite's own
//! message (which names tables and columns, never row contents); row values are never
//! formatted, so sealed blobs, digests and descriptions cannot leak into logs.

use arca_store::StoreError;

/// `map_err` adapter: `.map_err(sql_err("load tags"))`.
pub(super) fn sql_err(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend(format!("{context}: {}", describe(&e)))
}

fn describe(e: &rusqlite::Error) -> String {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(err, msg) => match msg {
            Some(m) => format!("sqlite {:?} ({}): {m}", err.code, err.extended_code),
            None => format!("sqlite {:?} ({})", err.code, err.extended_code),
        },
        // Variants that could carry a value (conversion failures, out-of-range integers)
        // are reduced to their kind and column.
        E::FromSqlConversionFailure(col, ty, _) => {
            format!("column {col} of type {ty} could not be converted")
        }
        E::IntegralValueOutOfRange(col, _) => format!("column {col} out of range"),
        E::InvalidColumnType(col, name, ty) => {
            format!("column {col} ({name}) has unexpected type {ty}")
        }
        E::QueryReturnedNoRows => "no rows".to_owned(),
        E::InvalidColumnIndex(i) => format!("invalid column index {i}"),
        E::InvalidColumnName(n) => format!("invalid column name {n}"),
        E::InvalidParameterCount(got, want) => {
            format!("{got} parameters given, {want} expected")
        }
        _ => "sqlite error".to_owned(),
    }
}

/// True if `e` is a UNIQUE violation of the (region, name) constraint.
pub(super) fn is_name_taken(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(err, Some(msg)) => {
            err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && msg.contains("secrets.region, secrets.name")
        }
        _ => false,
    }
}

/// JSON columns (stages, key ids, extra) that fail to decode mean corruption.
pub(super) fn json_err(context: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| {
        StoreError::Backend(format!(
            "{context}: malformed JSON at line {} column {}",
            e.line(),
            e.column()
        ))
    }
}
