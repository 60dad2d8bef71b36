//! Read paths of the SQLite backend: loading full records (secret row, then its tags and
//! version metadata in one query each, batched over many secrets), sealed values, and
//! keyset-paginated listing. All functions take a reader connection and never write.

use std::collections::HashMap;

use arca_types::time::Millis;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, ToSql};

use super::error::{json_err, sql_err};
use arca_store::names::{prefix_ranges, NameRange};
use arca_store::{
    AccessKeyRecord, AuditEntry, AuditQuery, AuditRecord, CursorValue, DeliveryRecord,
    DeliveryState, EncryptionKeyRecord, EventQuery, EventRecord, IamKind, IamRecord, KeyOwner,
    KeyScope, ListQuery, NewDelivery, OutboxEntry, OutboxKind, PurgeDue, Result,
    RotationFunctionRecord, RuleRecord, SealedValue, SecretPredicate, SecretRecord, SortBy,
    StoreError, TargetRecord, VersionRecord,
};

/// Columns of `secrets`, in the order `secret_from_row` reads them.
pub(super) const SECRET_COLS: &str = "id, region, arn, name, description, kms_key_id, \
    secret_type, owning_service, primary_region, created_at, last_changed_at, \
    last_accessed_day, deleted_at, purge_at, extra, revision, rotation_due_at";

/// Upper bound on rows fetched per list round trip. Bounded so a page whose predicate
/// rejects most candidates works through the table in steps instead of materializing it.
const MAX_BATCH: usize = 256;

/// A secret row whose children are not loaded yet, and its JSON `extra` still as text
/// (decoded outside the row callback so a decode error keeps its own message).
struct SecretRow {
    id: i64,
    record: SecretRecord,
    extra: String,
}

fn secret_from_row(r: &Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        id: r.get(0)?,
        record: SecretRecord {
            region: r.get(1)?,
            arn: r.get(2)?,
            name: r.get(3)?,
            description: r.get(4)?,
            kms_key_id: r.get(5)?,
            secret_type: r.get(6)?,
            owning_service: r.get(7)?,
            primary_region: r.get(8)?,
            created_at: r.get(9)?,
            last_changed_at: r.get(10)?,
            last_accessed_day: r.get(11)?,
            deleted_at: r.get(12)?,
            purge_at: r.get(13)?,
            rotation_due_at: r.get(16)?,
            extra: serde_json::Value::Null,
            tags: Vec::new(),
            versions: Vec::new(),
            revision: r.get(15)?,
        },
        extra: r.get(14)?,
    })
}

/// Decodes `extra` and loads tags and versions for every row, with one tag query and one
/// version query for the whole batch.
fn complete(conn: &Connection, rows: Vec<SecretRow>) -> Result<Vec<SecretRecord>> {
    let mut records = with_tags(conn, rows)?;
    load_versions(conn, &mut records, false)?;
    Ok(records.into_iter().map(|(_, r)| r).collect())
}

/// How a batch of secret ids is bound: one id directly, several as a JSON array (so a
/// single cached statement serves every batch size).
fn id_filter(records: &[(i64, SecretRecord)]) -> Result<(&'static str, Box<dyn ToSql>)> {
    Ok(if records.len() == 1 {
        ("secret_id = ?1", Box::new(records[0].0))
    } else {
        let ids = serde_json::to_string(&records.iter().map(|r| r.0).collect::<Vec<_>>())
            .map_err(json_err("encode id batch"))?;
        (
            "secret_id IN (SELECT value FROM json_each(?1))",
            Box::new(ids),
        )
    })
}

/// Decodes `extra` and loads the tags of every row (one query for the batch); versions
/// are left empty.
fn with_tags(conn: &Connection, rows: Vec<SecretRow>) -> Result<Vec<(i64, SecretRecord)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut records = Vec::with_capacity(rows.len());
    let mut index = HashMap::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let mut rec = row.record;
        rec.extra = serde_json::from_str(&row.extra).map_err(json_err("decode secrets.extra"))?;
        index.insert(row.id, i);
        records.push((row.id, rec));
    }
    let (filter, key) = id_filter(&records)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT secret_id, key, value FROM tags WHERE {filter} ORDER BY secret_id, position"
        ))
        .map_err(sql_err("prepare tag load"))?;
    let mut rows = stmt.query([&key]).map_err(sql_err("load tags"))?;
    while let Some(r) = rows.next().map_err(sql_err("load tags"))? {
        let id: i64 = r.get(0).map_err(sql_err("read tag"))?;
        let tag = (
            r.get(1).map_err(sql_err("read tag"))?,
            r.get(2).map_err(sql_err("read tag"))?,
        );
        if let Some(&i) = index.get(&id) {
            records[i].1.tags.push(tag);
        }
    }
    Ok(records)
}

/// Loads the versions of every record (one query for the batch), or only the labelled
/// ones (through the partial index on them).
fn load_versions(
    conn: &Connection,
    records: &mut [(i64, SecretRecord)],
    labelled_only: bool,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let index: HashMap<i64, usize> = records.iter().enumerate().map(|(i, r)| (r.0, i)).collect();
    let (filter, key) = id_filter(records)?;
    let labelled = if labelled_only {
        " AND stages <> '[]'"
    } else {
        ""
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT secret_id, version_id, stages, created_at, last_accessed_day, kms_key_ids, \
             value_digest, has_value FROM versions WHERE {filter}{labelled} ORDER BY secret_id, id"
        ))
        .map_err(sql_err("prepare version load"))?;
    let mut rows = stmt.query([&key]).map_err(sql_err("load versions"))?;
    while let Some(r) = rows.next().map_err(sql_err("load versions"))? {
        let id: i64 = r.get(0).map_err(sql_err("read version"))?;
        let stages: String = r.get(2).map_err(sql_err("read version"))?;
        let kms: String = r.get(5).map_err(sql_err("read version"))?;
        let version = VersionRecord {
            version_id: r.get(1).map_err(sql_err("read version"))?,
            stages: serde_json::from_str(&stages).map_err(json_err("decode versions.stages"))?,
            created_at: r.get(3).map_err(sql_err("read version"))?,
            last_accessed_day: r.get(4).map_err(sql_err("read version"))?,
            kms_key_ids: serde_json::from_str(&kms)
                .map_err(json_err("decode versions.kms_key_ids"))?,
            value_digest: r.get(6).map_err(sql_err("read version"))?,
            has_value: r.get(7).map_err(sql_err("read version"))?,
        };
        if let Some(&i) = index.get(&id) {
            records[i].1.versions.push(version);
        }
    }
    Ok(())
}

/// Runs `f`'s queries in one read transaction: they all see one snapshot (a record's row,
/// tags and versions agree even while the writer commits), and the connection takes the
/// WAL read lock once instead of once per query.
pub(super) fn snapshot<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached("BEGIN")
        .and_then(|mut s| s.execute([]))
        .map_err(sql_err("begin read"))?;
    // Ends the transaction however `f` returns, panics included: a pooled connection left
    // inside one would pin its snapshot (and the WAL) for as long as it lives.
    struct End<'a>(&'a Connection);
    impl Drop for End<'_> {
        fn drop(&mut self) {
            if !self.0.is_autocommit() {
                // A read transaction has nothing to commit; ending it releases the snapshot.
                let _ = self.0.execute_batch("ROLLBACK");
            }
        }
    }
    let end = End(conn);
    let out = f(conn);
    // The usual end, through a cached statement (the guard's ROLLBACK is parsed each time).
    let ended = conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .map_err(sql_err("end read"));
    drop(end);
    let out = out?;
    ended.map(|_| out)
}

fn find_one(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> Result<Option<SecretRecord>> {
    snapshot(conn, |conn| {
        let row = conn
            .prepare_cached(sql)
            .map_err(sql_err("prepare secret lookup"))?
            .query_row(params, secret_from_row)
            .optional()
            .map_err(sql_err("look up secret"))?;
        match row {
            None => Ok(None),
            Some(row) => Ok(complete(conn, vec![row])?.pop()),
        }
    })
}

pub(super) fn find_by_name(
    conn: &Connection,
    region: &str,
    name: &str,
) -> Result<Option<SecretRecord>> {
    find_one(
        conn,
        &format!("SELECT {SECRET_COLS} FROM secrets WHERE region = ?1 AND name = ?2"),
        &[&region, &name],
    )
}

pub(super) fn find_by_arn(
    conn: &Connection,
    region: &str,
    arn: &str,
) -> Result<Option<SecretRecord>> {
    find_one(
        conn,
        &format!("SELECT {SECRET_COLS} FROM secrets WHERE arn = ?1 AND region = ?2"),
        &[&arn, &region],
    )
}

pub(super) fn sealed_value(
    conn: &Connection,
    arn: &str,
    version_id: &str,
) -> Result<Option<SealedValue>> {
    conn.prepare_cached(
        "SELECT sv.sealed FROM secrets s \
         JOIN versions v ON v.secret_id = s.id \
         JOIN sealed_values sv ON sv.version_row = v.id \
         WHERE s.arn = ?1 AND v.version_id = ?2",
    )
    .map_err(sql_err("prepare sealed value lookup"))?
    .query_row(params![arn, version_id], |r| r.get(0).map(SealedValue))
    .optional()
    .map_err(sql_err("read sealed value"))
}

pub(super) fn due_for_purge(conn: &Connection, now: Millis, limit: usize) -> Result<Vec<PurgeDue>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT region, arn, purge_at FROM secrets WHERE purge_at IS NOT NULL AND purge_at <= ?1 \
             ORDER BY purge_at, arn LIMIT ?2",
        )
        .map_err(sql_err("prepare purge scan"))?;
    let rows = stmt
        .query_map(params![now, clamp_limit(limit)], |r| {
            Ok(PurgeDue {
                region: r.get(0)?,
                arn: r.get(1)?,
                purge_at: r.get(2)?,
            })
        })
        .map_err(sql_err("scan due purges"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sql_err("scan due purges"))
}

/// The `rotation_due_at IS NOT NULL` term lets SQLite use the partial index.
const DUE_FOR_ROTATION: &str = "SELECT region, arn FROM secrets \
    WHERE rotation_due_at IS NOT NULL AND rotation_due_at <= ?1 \
    ORDER BY rotation_due_at, arn LIMIT ?2";

pub(super) fn due_for_rotation(
    conn: &Connection,
    now: Millis,
    limit: usize,
) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare_cached(DUE_FOR_ROTATION)
        .map_err(sql_err("prepare rotation scan"))?;
    let rows = stmt
        .query_map(params![now, clamp_limit(limit)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sql_err("scan due rotations"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sql_err("scan due rotations"))
}

// ----- events -----

/// Two shapes rather than `(?3 IS NULL OR secret_arn = ?3)`, which SQLite cannot serve
/// from an index: one secret's page is a range of `events_by_secret`, the whole log's a
/// range of the rowid (which is the id).
fn event_sql(one_secret: bool) -> &'static str {
    if one_secret {
        "SELECT id, time, name, region, secret_arn, version_id, step, error, detail \
         FROM events WHERE secret_arn = ?3 AND id > ?1 ORDER BY id LIMIT ?2"
    } else {
        "SELECT id, time, name, region, secret_arn, version_id, step, error, detail \
         FROM events WHERE id > ?1 AND ?3 IS NULL ORDER BY id LIMIT ?2"
    }
}

/// One page of the event log.
pub(super) fn events(conn: &Connection, q: &EventQuery) -> Result<Vec<EventRecord>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(event_sql(q.secret_arn.is_some()))
        .map_err(sql_err("prepare event list"))?;
    let rows = stmt
        .query_map(
            params![q.after_id, clamp_limit(q.limit), q.secret_arn],
            |r| {
                Ok((
                    EventRecord {
                        id: r.get(0)?,
                        time: r.get(1)?,
                        name: r.get(2)?,
                        region: r.get(3)?,
                        secret_arn: r.get(4)?,
                        version_id: r.get(5)?,
                        step: r.get(6)?,
                        error: r.get(7)?,
                        detail: serde_json::Value::Null,
                    },
                    r.get::<_, String>(8)?,
                ))
            },
        )
        .map_err(sql_err("list events"))?;
    let mut out = Vec::new();
    for row in rows {
        let (mut e, detail) = row.map_err(sql_err("list events"))?;
        e.detail = serde_json::from_str(&detail).map_err(json_err("decode events.detail"))?;
        out.push(e);
    }
    Ok(out)
}

// ----- audit trail -----

pub(super) fn audit(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "SELECT seq, time, event_id, event_type, event_name, region, read_only, access_key_id, \
         resource, error_code, batch_size, detail, prev_hash, hash FROM audit WHERE ",
    );
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    let mut arg = |sql: &mut String, cond: &str, v: Box<dyn rusqlite::ToSql>| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
        sql.push_str(" AND ");
    };
    if q.descending {
        if let Some(before) = q.before_seq {
            arg(&mut sql, "seq < ?", Box::new(before));
        }
    } else {
        arg(&mut sql, "seq > ?", Box::new(q.after_seq));
    }
    if let Some(t) = q.from_time {
        arg(&mut sql, "time >= ?", Box::new(t));
    }
    if let Some(t) = q.to_time {
        arg(&mut sql, "time < ?", Box::new(t));
    }
    // Batches pass the column filters: their calls are filtered by arca-core.
    sql.push_str("(batch_size > 0 OR (");
    if let Some(r) = &q.region {
        arg(&mut sql, "region = ?", Box::new(r.clone()));
    }
    if let Some(r) = &q.resource {
        // Exactly, or as a name: any ARN of a secret with this name (AWS's six-character
        // suffix after it). GLOB, not LIKE: names are case-sensitive.
        let mut escaped = String::with_capacity(r.len());
        for c in r.chars() {
            match c {
                '*' | '?' | '[' => {
                    escaped.push('[');
                    escaped.push(c);
                    escaped.push(']');
                }
                c => escaped.push(c),
            }
        }
        arg(&mut sql, "(resource = ?", Box::new(r.clone()));
        sql.truncate(sql.len() - " AND ".len());
        arg(
            &mut sql,
            " OR resource GLOB ?)",
            Box::new(format!("arn:*:secret:{escaped}-??????")),
        );
    }
    if let Some(n) = &q.event_name {
        arg(&mut sql, "event_name = ?", Box::new(n.clone()));
    }
    if let Some(k) = &q.access_key_id {
        arg(&mut sql, "access_key_id = ?", Box::new(k.clone()));
    }
    if let Some(id) = &q.event_id {
        arg(&mut sql, "event_id = ?", Box::new(id.clone()));
    }
    if let Some(ro) = q.read_only {
        arg(&mut sql, "read_only = ?", Box::new(ro));
    }
    match q.failed {
        Some(true) => sql.push_str("error_code IS NOT NULL AND "),
        Some(false) => sql.push_str("error_code IS NULL AND "),
        None => {}
    }
    sql.push_str("1)) AND ");
    sql.push_str("1 ORDER BY seq ");
    sql.push_str(if q.descending { "DESC" } else { "ASC" });
    args.push(Box::new(clamp_limit(q.limit)));
    sql.push_str(&format!(" LIMIT ?{}", args.len()));
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(sql_err("prepare audit list"))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(AuditRecord {
                seq: r.get(0)?,
                entry: AuditEntry {
                    time: r.get(1)?,
                    event_id: r.get(2)?,
                    event_type: r.get(3)?,
                    event_name: r.get(4)?,
                    region: r.get(5)?,
                    read_only: r.get(6)?,
                    access_key_id: r.get(7)?,
                    resource: r.get(8)?,
                    error_code: r.get(9)?,
                    batch: r.get(10)?,
                    detail: r.get(11)?,
                },
                prev_hash: r.get(12)?,
                hash: r.get(13)?,
            })
        })
        .map_err(sql_err("list audit records"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(sql_err("list audit records"))
}

// ----- replication outbox -----

const OUTBOX_COLS: &str = "id, created_at, kind, source_region, arn, name, target_region, \
    version_ids, attempts, next_attempt_at, last_error, revision";

fn outbox_rows(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<Vec<OutboxEntry>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(sql_err("prepare outbox read"))?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                OutboxEntry {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    kind: OutboxKind::Sync,
                    source_region: r.get(3)?,
                    arn: r.get(4)?,
                    name: r.get(5)?,
                    target_region: r.get(6)?,
                    version_ids: Vec::new(),
                    revision: r.get(11)?,
                    attempts: r.get(8)?,
                    next_attempt_at: r.get(9)?,
                    last_error: r.get(10)?,
                },
                r.get::<_, String>(2)?,
                r.get::<_, String>(7)?,
            ))
        })
        .map_err(sql_err("read outbox"))?;
    let mut out = Vec::new();
    for row in rows {
        let (mut e, kind, ids) = row.map_err(sql_err("read outbox"))?;
        e.kind = OutboxKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown outbox kind {kind:?}")))?;
        e.version_ids =
            serde_json::from_str(&ids).map_err(json_err("decode outbox.version_ids"))?;
        out.push(e);
    }
    Ok(out)
}

pub(super) fn due_outbox(conn: &Connection, now: Millis, limit: usize) -> Result<Vec<OutboxEntry>> {
    outbox_rows(
        conn,
        &format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
        ),
        &[&now, &clamp_limit(limit)],
    )
}

pub(super) fn outbox_for(conn: &Connection, arn: &str) -> Result<Vec<OutboxEntry>> {
    outbox_rows(
        conn,
        &format!("SELECT {OUTBOX_COLS} FROM outbox WHERE arn = ?1 AND attempts > 0 ORDER BY id"),
        &[&arn],
    )
}

pub(super) fn outbox_len(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM outbox")
        .map_err(sql_err("prepare outbox count"))?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(sql_err("count outbox"))
}

// ----- event rules, targets, deliveries -----

pub(super) fn rules(conn: &Connection, one: Option<(&str, &str)>) -> Result<Vec<RuleRecord>> {
    let sql = "SELECT region, name, pattern, state, description, managed_by, created_at \
               FROM rules WHERE ?1 IS NULL OR (region = ?1 AND name = ?2) ORDER BY region, name";
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(sql_err("prepare rule read"))?;
    let (region, name) = one.unzip();
    let rows = stmt
        .query_map(params![region, name], |r| {
            Ok(RuleRecord {
                region: r.get(0)?,
                name: r.get(1)?,
                pattern: r.get(2)?,
                state: r.get(3)?,
                description: r.get(4)?,
                managed_by: r.get(5)?,
                created_at: r.get(6)?,
            })
        })
        .map_err(sql_err("read rules"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(sql_err("read rule row"))
}

pub(super) fn targets(conn: &Connection) -> Result<Vec<TargetRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT region, rule, id, arn, input, input_path, max_retries, max_age_secs, options \
             FROM targets ORDER BY region, rule, id",
        )
        .map_err(sql_err("prepare target read"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(TargetRecord {
                region: r.get(0)?,
                rule: r.get(1)?,
                id: r.get(2)?,
                arn: r.get(3)?,
                input: r.get(4)?,
                input_path: r.get(5)?,
                max_retries: r.get(6)?,
                max_age_secs: r.get(7)?,
                options: r.get(8)?,
            })
        })
        .map_err(sql_err("read targets"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(sql_err("read target row"))
}

const DELIVERY_COLS: &str = "seq, region, rule, target_id, event_id, event, created_at, state, \
    attempts, next_attempt_at, last_error";

fn delivery_rows(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<Vec<DeliveryRecord>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(sql_err("prepare delivery read"))?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                DeliveryRecord {
                    seq: r.get(0)?,
                    delivery: NewDelivery {
                        region: r.get(1)?,
                        rule: r.get(2)?,
                        target_id: r.get(3)?,
                        event_id: r.get(4)?,
                        event: r.get(5)?,
                        created_at: r.get(6)?,
                    },
                    state: DeliveryState::Pending,
                    attempts: r.get(8)?,
                    next_attempt_at: r.get(9)?,
                    last_error: r.get(10)?,
                },
                r.get::<_, String>(7)?,
            ))
        })
        .map_err(sql_err("read deliveries"))?;
    rows.map(|row| {
        let (mut d, state) = row.map_err(sql_err("read delivery row"))?;
        d.state = DeliveryState::parse(&state)
            .ok_or_else(|| StoreError::Backend(format!("unknown delivery state {state:?}")))?;
        Ok(d)
    })
    .collect()
}

pub(super) fn due_deliveries(
    conn: &Connection,
    now: Millis,
    limit: usize,
) -> Result<Vec<DeliveryRecord>> {
    // The head of each target's queue (its lowest pending seq), if due.
    delivery_rows(
        conn,
        &format!(
            "SELECT {DELIVERY_COLS} FROM deliveries d WHERE state = 'pending' \
             AND next_attempt_at <= ?1 AND seq = (SELECT min(seq) FROM deliveries h \
             WHERE h.region = d.region AND h.rule = d.rule AND h.target_id = d.target_id \
             AND h.state = 'pending') ORDER BY seq LIMIT ?2"
        ),
        &[&now, &clamp_limit(limit)],
    )
}

pub(super) fn deliveries(
    conn: &Connection,
    state: DeliveryState,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<DeliveryRecord>> {
    delivery_rows(
        conn,
        &format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE state = ?1 AND seq > ?2 \
             ORDER BY seq LIMIT ?3"
        ),
        &[&state.as_str(), &after_seq, &clamp_limit(limit)],
    )
}

// ----- rotation functions -----

pub(super) fn sync_jobs(conn: &Connection) -> Result<Vec<arca_store::SyncJobRecord>> {
    let mut stmt = conn
        .prepare_cached("SELECT name, spec, created_at FROM sync_jobs ORDER BY name")
        .map_err(sql_err("prepare sync jobs"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sql_err("list sync jobs"))?;
    let mut out = Vec::new();
    for row in rows {
        let (name, spec, created_at) = row.map_err(sql_err("read sync job"))?;
        out.push(arca_store::SyncJobRecord {
            name,
            spec: serde_json::from_str(&spec).map_err(json_err("decode sync_jobs.spec"))?,
            created_at,
        });
    }
    Ok(out)
}

pub(super) fn rotation_functions(conn: &Connection) -> Result<Vec<RotationFunctionRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT arn, spec, sealed_secret, created_at FROM rotation_functions ORDER BY arn",
        )
        .map_err(sql_err("prepare rotation function list"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                RotationFunctionRecord {
                    arn: r.get(0)?,
                    spec: serde_json::Value::Null,
                    sealed_secret: r.get(2)?,
                    created_at: r.get(3)?,
                },
                r.get::<_, String>(1)?,
            ))
        })
        .map_err(sql_err("list rotation functions"))?;
    let mut out = Vec::new();
    for row in rows {
        let (mut f, spec) = row.map_err(sql_err("list rotation functions"))?;
        f.spec = serde_json::from_str(&spec).map_err(json_err("decode rotation_functions.spec"))?;
        out.push(f);
    }
    Ok(out)
}

// ----- keys -----

fn access_key_from_row(r: &Row<'_>) -> rusqlite::Result<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        access_key_id: r.get(0)?,
        sealed_secret: r.get(1)?,
        description: r.get(2)?,
        created_at: r.get(3)?,
        enabled: r.get(4)?,
        scope: KeyScope::parse(&r.get::<_, String>(5)?).unwrap_or_default(),
        // Both or neither (a CHECK in the schema).
        owner: match (r.get(6)?, r.get(7)?) {
            (Some(account), Some(user)) => Some(KeyOwner { account, user }),
            _ => None,
        },
    })
}

const ACCESS_KEY_COLS: &str =
    "access_key_id, sealed_secret, description, created_at, enabled, scope, owner_account, \
     owner_user";

pub(super) fn access_key(conn: &Connection, id: &str) -> Result<Option<AccessKeyRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE access_key_id = ?1"
    ))
    .map_err(sql_err("prepare access key lookup"))?
    .query_row([id], access_key_from_row)
    .optional()
    .map_err(sql_err("read access key"))
}

pub(super) fn access_keys(conn: &Connection) -> Result<Vec<AccessKeyRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ACCESS_KEY_COLS} FROM access_keys ORDER BY created_at, access_key_id"
        ))
        .map_err(sql_err("prepare access key list"))?;
    let rows = stmt
        .query_map([], access_key_from_row)
        .map_err(sql_err("list access keys"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sql_err("list access keys"))
}

// ----- IAM principals and policies -----

pub(super) fn iam(conn: &Connection) -> Result<Vec<IamRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT account, kind, name, document, created_at, updated_at FROM iam_entities \
             ORDER BY account, kind, name",
        )
        .map_err(sql_err("prepare iam list"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                IamRecord {
                    account: r.get(0)?,
                    kind: IamKind::User,
                    name: r.get(2)?,
                    document: r.get(3)?,
                    created_at: r.get(4)?,
                    updated_at: r.get(5)?,
                },
            ))
        })
        .map_err(sql_err("list iam entities"))?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, mut rec) = row.map_err(sql_err("read iam entity"))?;
        // The schema's CHECK admits only the kinds this build knows.
        rec.kind = IamKind::parse(&kind).ok_or_else(|| {
            StoreError::Backend("iam_entities.kind holds an unknown kind".to_owned())
        })?;
        out.push(rec);
    }
    Ok(out)
}

pub(super) fn encryption_keys(conn: &Connection) -> Result<Vec<EncryptionKeyRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT key_id, alias, region, wrapped, created_at, policy FROM encryption_keys \
             ORDER BY created_at, key_id",
        )
        .map_err(sql_err("prepare encryption key list"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(EncryptionKeyRecord {
                key_id: r.get(0)?,
                alias: r.get(1)?,
                region: r.get(2)?,
                wrapped: r.get(3)?,
                created_at: r.get(4)?,
                policy: r.get(5)?,
            })
        })
        .map_err(sql_err("list encryption keys"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sql_err("list encryption keys"))
}

fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

// ----- listing -----

/// The sort column for each order. `last_accessed_key` is the non-NULL twin of
/// `last_accessed_day` (NULL sorts smallest), see the schema.
fn sort_column(sort: SortBy) -> &'static str {
    match sort {
        SortBy::Name => "name",
        SortBy::CreatedDate => "created_at",
        SortBy::LastChangedDate => "last_changed_at",
        SortBy::LastAccessedDate => "last_accessed_key",
    }
}

fn sort_value(sort: SortBy, r: &SecretRecord) -> Value {
    match sort {
        SortBy::Name => Value::Text(r.name.clone()),
        SortBy::CreatedDate => Value::Integer(r.created_at),
        SortBy::LastChangedDate => Value::Integer(r.last_changed_at),
        SortBy::LastAccessedDate => Value::Integer(r.last_accessed_day.unwrap_or(i64::MIN)),
    }
}

fn cursor_value(sort: SortBy, v: &CursorValue) -> Result<Value> {
    match (sort, v) {
        (SortBy::Name, CursorValue::Name(n)) => Ok(Value::Text(n.clone())),
        (SortBy::Name, CursorValue::Time(_)) | (_, CursorValue::Name(_)) => Err(
            StoreError::Backend("list cursor does not match the sort order".to_owned()),
        ),
        (_, CursorValue::Time(t)) => Ok(Value::Integer(t.unwrap_or(i64::MIN))),
    }
}

/// One page of `list_secrets`. Candidates come from an index in list order, a batch at a
/// time, each batch starting strictly after the last candidate seen (kept or not); the
/// predicate decides which are kept. With a Name sort and prefix hints, each prefix's name
/// range is scanned in turn (the ranges are disjoint and sorted, so concatenating them
/// keeps the order); for other sorts the ranges only filter rows before children load.
pub(super) fn list(
    conn: &Connection,
    region: &str,
    query: &ListQuery,
    pred: SecretPredicate<'_>,
) -> Result<Vec<SecretRecord>> {
    let mut out = Vec::new();
    if query.limit == 0 {
        return Ok(out);
    }
    let sort = query.sort_by;
    let ranges = query.name_prefixes.as_deref().and_then(prefix_ranges);
    let cursor = match &query.after {
        Some(c) => Some((cursor_value(sort, &c.sort_value)?, c.arn.clone())),
        None => None,
    };

    // Segments scanned one after another; for a Name sort with hints, one per range.
    let (segments, name_filter): (Vec<Option<NameRange>>, Option<Vec<NameRange>>) =
        match (sort, ranges) {
            (SortBy::Name, Some(mut rs)) => {
                if query.descending {
                    rs.reverse();
                }
                (rs.into_iter().map(Some).collect(), None)
            }
            (_, rs) => (vec![None], rs),
        };
    // For the other sorts, a narrow prefix is best served by the name index (then sorting
    // the few matches), a broad one by the sort's index with the name only filtering rows
    // (else SQLite may sort a million matches per page). A capped count tells which.
    let names_indexed = match &name_filter {
        Some(rs) => count_in_ranges(conn, region, rs, BROAD_PREFIX_ROWS)? < BROAD_PREFIX_ROWS,
        None => false,
    };

    let mut batch = query.limit.clamp(1, MAX_BATCH);
    for segment in segments {
        let mut after = cursor.clone();
        loop {
            let rows = fetch_candidates(
                conn,
                region,
                query,
                after.as_ref(),
                segment.as_ref(),
                name_filter.as_deref().map(|r| (r, names_indexed)),
                batch,
            )?;
            let fetched = rows.len();
            // The predicate needs metadata and tags only; versions are loaded for the kept.
            let mut kept = Vec::new();
            let mut full = false;
            for (id, rec) in with_tags(conn, rows)? {
                after = Some((sort_value(sort, &rec), rec.arn.clone()));
                if pred(&rec) {
                    kept.push((id, rec));
                    if out.len() + kept.len() == query.limit {
                        full = true;
                        break;
                    }
                }
            }
            load_versions(conn, &mut kept, true)?;
            out.extend(kept.into_iter().map(|(_, r)| r));
            if full {
                return Ok(out);
            }
            if fetched < batch {
                break;
            }
            // The predicate is rejecting candidates: take bigger steps.
            batch = (batch * 4).min(MAX_BATCH);
        }
    }
    Ok(out)
}

fn fetch_candidates(
    conn: &Connection,
    region: &str,
    query: &ListQuery,
    after: Option<&(Value, String)>,
    segment: Option<&NameRange>,
    name_filter: Option<(&[NameRange], bool)>,
    batch: usize,
) -> Result<Vec<SecretRow>> {
    let (sql, args) = candidate_sql(region, query, after, segment, name_filter, batch);
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err("prepare list"))?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), secret_from_row)
        .map_err(sql_err("list secrets"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(sql_err("list secrets"))
}

/// The candidate query and its arguments (separate so tests can check its query plan).
fn candidate_sql(
    region: &str,
    query: &ListQuery,
    after: Option<&(Value, String)>,
    segment: Option<&NameRange>,
    name_filter: Option<(&[NameRange], bool)>,
    batch: usize,
) -> (String, Vec<Value>) {
    let col = sort_column(query.sort_by);
    let (cmp, dir) = if query.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE region = ?");
    let mut args: Vec<Value> = vec![Value::Text(region.to_owned())];
    if !query.include_planned_deletion {
        sql.push_str(" AND deleted_at IS NULL");
    }

    // Within a name segment, use whichever of (cursor, segment bound) is tighter on the
    // scan's starting side, so the index range starts at the right place; SQLite uses
    // only one lower (or upper) bound per column for the range.
    let mut after = after;
    if let (Some(seg), Some((Value::Text(c), _))) = (segment, after) {
        let cursor_before_segment = if query.descending {
            seg.hi.as_deref().is_some_and(|hi| c.as_str() >= hi)
        } else {
            c.as_str() < seg.lo.as_str()
        };
        if cursor_before_segment {
            after = None;
        }
    }
    if let Some((v, arn)) = after {
        sql.push_str(&format!(" AND ({col}, arn) {cmp} (?, ?)"));
        args.push(v.clone());
        args.push(Value::Text(arn.clone()));
    }
    if let Some(seg) = segment {
        if query.descending {
            if after.is_some() {
                sql.push_str(" AND name >= ?");
                args.push(Value::Text(seg.lo.clone()));
            } else {
                push_range(&mut sql, &mut args, seg);
            }
        } else {
            if after.is_none() {
                sql.push_str(" AND name >= ?");
                args.push(Value::Text(seg.lo.clone()));
            }
            if let Some(hi) = &seg.hi {
                sql.push_str(" AND name < ?");
                args.push(Value::Text(hi.clone()));
            }
        }
    }
    if let Some((ranges, indexed)) = name_filter {
        // `+name` keeps SQLite from choosing the name index for a broad filter.
        let column = if indexed { "name" } else { "+name" };
        sql.push_str(" AND (");
        for (i, r) in ranges.iter().enumerate() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push('(');
            push_range_terms_on(&mut sql, &mut args, r, column);
            sql.push(')');
        }
        sql.push(')');
    }
    sql.push_str(&format!(" ORDER BY {col} {dir}, arn {dir} LIMIT ?"));
    args.push(Value::Integer(clamp_limit(batch)));
    (sql, args)
}

fn push_range(sql: &mut String, args: &mut Vec<Value>, r: &NameRange) {
    sql.push_str(" AND ");
    push_range_terms(sql, args, r);
}

fn push_range_terms(sql: &mut String, args: &mut Vec<Value>, r: &NameRange) {
    push_range_terms_on(sql, args, r, "name");
}

fn push_range_terms_on(sql: &mut String, args: &mut Vec<Value>, r: &NameRange, column: &str) {
    sql.push_str(&format!("{column} >= ?"));
    args.push(Value::Text(r.lo.clone()));
    if let Some(hi) = &r.hi {
        sql.push_str(&format!(" AND {column} < ?"));
        args.push(Value::Text(hi.clone()));
    }
}

/// Above this many secrets in the prefix ranges, a prefix counts as broad.
const BROAD_PREFIX_ROWS: i64 = 4096;

/// How many secrets of `region` have a name in `ranges`, counting no further than `cap`.
fn count_in_ranges(conn: &Connection, region: &str, ranges: &[NameRange], cap: i64) -> Result<i64> {
    let mut total = 0;
    for r in ranges {
        let mut sql =
            String::from("SELECT count(*) FROM (SELECT 1 FROM secrets WHERE region = ? AND ");
        let mut args: Vec<Value> = vec![Value::Text(region.to_owned())];
        push_range_terms(&mut sql, &mut args, r);
        sql.push_str(" LIMIT ?)");
        args.push(Value::Integer(cap - total));
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(sql_err("prepare prefix count"))?;
        let n: i64 = stmt
            .query_row(params_from_iter(args.iter()), |row| row.get(0))
            .map_err(sql_err("prefix count"))?;
        total += n;
        if total >= cap {
            break;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str, args: &[Value]) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan");
        let rows: Vec<String> = stmt
            .query_map(params_from_iter(args.iter()), |r| r.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan");
        rows.join("; ")
    }

    /// A read that fails or panics still ends its transaction, so a pooled connection
    /// never keeps a snapshot (and the WAL behind it) pinned.
    #[test]
    fn a_snapshot_ends_when_its_read_fails_or_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = super::super::schema::open_connection(
            &dir.path().join("snap.db"),
            super::super::schema::Role::Writer,
        )
        .expect("open");
        let seen = snapshot(&conn, |c| Ok(c.is_autocommit())).expect("read");
        assert!(!seen, "the read ran inside a transaction");
        assert!(conn.is_autocommit());
        let failed: Result<()> = snapshot(&conn, |_| Err(StoreError::Backend("no".into())));
        assert!(failed.is_err());
        assert!(conn.is_autocommit());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            snapshot(&conn, |_| -> Result<()> { panic!("mid-read") })
        }));
        assert!(panicked.is_err());
        assert!(conn.is_autocommit());
    }

    /// The rotation scan and event pages are range scans of an index, never a sort or a
    /// walk over the whole table.
    #[test]
    fn rotation_and_event_queries_use_an_index_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = super::super::schema::open_connection(
            &dir.path().join("plan.db"),
            super::super::schema::Role::Writer,
        )
        .expect("open");
        super::super::schema::migrate(&mut conn).expect("migrate");
        let due = plan(
            &conn,
            DUE_FOR_ROTATION,
            &[Value::Integer(0), Value::Integer(10)],
        );
        assert!(due.contains("secrets_by_rotation"), "{due}");
        for one_secret in [false, true] {
            let arn = if one_secret {
                Value::Text("arn:x".into())
            } else {
                Value::Null
            };
            let p = plan(
                &conn,
                event_sql(one_secret),
                &[Value::Integer(0), Value::Integer(10), arn],
            );
            assert!(!p.contains("TEMP B-TREE"), "{p}");
            assert!(p.contains(">"), "not a range scan: {p}");
            if one_secret {
                assert!(p.contains("events_by_secret"), "{p}");
            }
        }
    }

    /// Every list shape must walk an index in list order: a temp B-tree would mean
    /// sorting the region's whole table for each page.
    #[test]
    fn list_queries_use_an_index_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = super::super::schema::open_connection(
            &dir.path().join("plan.db"),
            super::super::schema::Role::Writer,
        )
        .expect("open");
        super::super::schema::migrate(&mut conn).expect("migrate");
        let ranges = prefix_ranges(&["app/".into(), "prod/".into()]).expect("ranges");
        for sort in [
            SortBy::Name,
            SortBy::CreatedDate,
            SortBy::LastChangedDate,
            SortBy::LastAccessedDate,
        ] {
            for descending in [false, true] {
                for with_cursor in [false, true] {
                    for deleted in [false, true] {
                        let q = ListQuery {
                            sort_by: sort,
                            descending,
                            after: None,
                            limit: 10,
                            include_planned_deletion: deleted,
                            name_prefixes: None,
                        };
                        let cursor = with_cursor.then(|| {
                            let v = match sort {
                                SortBy::Name => Value::Text("m".into()),
                                _ => Value::Integer(5),
                            };
                            (v, "arn:x".to_owned())
                        });
                        // A broad name filter (`+name`) must ride the sort's index; a
                        // narrow one may sort its few matches.
                        let (segment, filter) = match sort {
                            SortBy::Name => (Some(&ranges[0]), None),
                            _ => (None, Some((&ranges[..], false))),
                        };
                        for (segment, filter) in [(None, None), (segment, filter)] {
                            let (sql, args) =
                                candidate_sql("r", &q, cursor.as_ref(), segment, filter, 10);
                            let mut stmt = conn
                                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                                .expect("plan");
                            let plan: Vec<String> = stmt
                                .query_map(params_from_iter(args.iter()), |r| r.get(3))
                                .expect("plan")
                                .collect::<rusqlite::Result<_>>()
                                .expect("plan");
                            let plan = plan.join("; ");
                            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
                            assert!(plan.contains("USING INDEX"), "{sql}: {plan}");
                            if with_cursor || segment.is_some() {
                                // The cursor or name range bounds the index scan itself.
                                assert!(plan.contains(">") || plan.contains("<"), "{sql}: {plan}");
                            }
                        }
                    }
                }
            }
        }
    }
}
