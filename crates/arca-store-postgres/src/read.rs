//! Read paths of the PostgreSQL backend: whole records in one statement each (a secret's
//! row with its tags and versions aggregated beside it, so the three agree without a
//! transaction), sealed values, keyset-paginated listing, and the numbered part of the
//! ordered logs (rows the sequencer has not numbered yet are not visible to readers).

use std::sync::LazyLock;

use arca_types::time::Millis;
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::{json_err, pg_store};
use arca_store::names::{prefix_ranges, NameRange};
use arca_store::{
    AccessKeyRecord, AuditEntry, AuditQuery, AuditRecord, CursorValue, DeliveryRecord,
    DeliveryState, EncryptionKeyRecord, EventQuery, EventRecord, Fence, IamKind, IamRecord,
    KeyOwner, KeyScope, ListQuery, NewDelivery, OutboxEntry, OutboxKind, PurgeDue, Result,
    RotationFunctionRecord, RuleRecord, SealedValue, SecretKey, SecretPredicate, SecretRecord,
    SortBy, StoreError, SyncJobRecord, TargetRecord, VersionRecord,
};

type Param = Box<dyn ToSql + Sync + Send>;

/// A secret's columns, then its tags (keys, values, in order) and its versions (JSON, in
/// order), as `secret_from_row` reads them. `{versions}` narrows the versions.
fn secret_select(versions: &str) -> String {
    format!(
        "SELECT s.id, s.region, s.arn, s.name, s.description, s.kms_key_id, s.secret_type, \
         s.owning_service, s.primary_region, s.created_at, s.last_changed_at, \
         s.last_accessed_day, s.deleted_at, s.purge_at, s.extra::text, s.revision, \
         s.rotation_due_at, \
         ARRAY(SELECT t.key FROM tags t WHERE t.secret_id = s.id ORDER BY t.position), \
         ARRAY(SELECT t.value FROM tags t WHERE t.secret_id = s.id ORDER BY t.position), \
         (SELECT json_agg(json_build_array(v.version_id, v.stages, v.created_at, \
            v.last_accessed_day, v.kms_key_ids, encode(v.value_digest, 'hex'), v.has_value) \
            ORDER BY v.id)::text FROM versions v WHERE v.secret_id = s.id{versions}) \
         FROM secrets s"
    )
}

/// Every version.
static SECRET_FULL: LazyLock<String> = LazyLock::new(|| secret_select(""));

/// Every version, and (column 20) the AWSCURRENT version's sealed value.
static SECRET_WITH_CURRENT: LazyLock<String> = LazyLock::new(|| {
    secret_select("").replacen(
        " FROM secrets s",
        ", (SELECT sv.sealed FROM versions cv JOIN sealed_values sv ON sv.version_row = cv.id \
         WHERE cv.secret_id = s.id AND 'AWSCURRENT' = ANY(cv.stages) LIMIT 1) FROM secrets s",
        1,
    )
});
/// Labelled versions only (listing never shows deprecated ones).
static SECRET_LISTED: LazyLock<String> =
    LazyLock::new(|| secret_select(" AND cardinality(v.stages) > 0"));

type VersionJson = (
    String,
    Vec<String>,
    i64,
    Option<i64>,
    Vec<String>,
    String,
    bool,
);

fn secret_from_row(r: &Row) -> Result<SecretRecord> {
    let get = |e: tokio_postgres::Error| pg_store("read secret row")(e);
    let extra: String = r.try_get(14).map_err(get)?;
    let keys: Vec<String> = r.try_get(17).map_err(get)?;
    let values: Vec<String> = r.try_get(18).map_err(get)?;
    let versions: Option<String> = r.try_get(19).map_err(get)?;
    let versions: Vec<VersionJson> = match versions {
        Some(v) => serde_json::from_str(&v).map_err(json_err("decode versions"))?,
        None => Vec::new(),
    };
    let versions = versions
        .into_iter()
        .map(
            |(
                version_id,
                stages,
                created_at,
                last_accessed_day,
                kms_key_ids,
                digest,
                has_value,
            )| {
                Ok(VersionRecord {
                    version_id,
                    stages,
                    created_at,
                    last_accessed_day,
                    kms_key_ids,
                    value_digest: hex::decode(digest)
                        .map_err(|_| StoreError::Backend("malformed version digest".to_owned()))?,
                    has_value,
                })
            },
        )
        .collect::<Result<_>>()?;
    Ok(SecretRecord {
        region: r.try_get(1).map_err(get)?,
        arn: r.try_get(2).map_err(get)?,
        name: r.try_get(3).map_err(get)?,
        description: r.try_get(4).map_err(get)?,
        kms_key_id: r.try_get(5).map_err(get)?,
        secret_type: r.try_get(6).map_err(get)?,
        owning_service: r.try_get(7).map_err(get)?,
        primary_region: r.try_get(8).map_err(get)?,
        created_at: r.try_get(9).map_err(get)?,
        last_changed_at: r.try_get(10).map_err(get)?,
        last_accessed_day: r.try_get(11).map_err(get)?,
        deleted_at: r.try_get(12).map_err(get)?,
        purge_at: r.try_get(13).map_err(get)?,
        extra: serde_json::from_str(&extra).map_err(json_err("decode secrets.extra"))?,
        revision: r.try_get(15).map_err(get)?,
        rotation_due_at: r.try_get(16).map_err(get)?,
        tags: keys.into_iter().zip(values).collect(),
        versions,
    })
}

async fn query(
    c: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: &'static str,
) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_store(what))?;
    c.query(&stmt, params).await.map_err(pg_store(what))
}

pub(crate) async fn find_by_name(
    c: &Client,
    region: &str,
    name: &str,
) -> Result<Option<SecretRecord>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} WHERE s.region = $1 AND s.name = $2", *SECRET_FULL));
    query(c, &SQL, &[&region, &name], "look up secret by name")
        .await?
        .first()
        .map(secret_from_row)
        .transpose()
}

pub(crate) async fn find_by_arn(
    c: &Client,
    region: &str,
    arn: &str,
) -> Result<Option<SecretRecord>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} WHERE s.arn = $1 AND s.region = $2", *SECRET_FULL));
    query(c, &SQL, &[&arn, &region], "look up secret by ARN")
        .await?
        .first()
        .map(secret_from_row)
        .transpose()
}

/// A secret by name or ARN with its AWSCURRENT version's sealed value, in one statement.
pub(crate) async fn find_with_current(
    c: &Client,
    region: &str,
    key: SecretKey<'_>,
) -> Result<Option<(SecretRecord, Option<SealedValue>)>> {
    static BY_NAME: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} WHERE s.region = $1 AND s.name = $2",
            *SECRET_WITH_CURRENT
        )
    });
    static BY_ARN: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} WHERE s.region = $1 AND s.arn = $2",
            *SECRET_WITH_CURRENT
        )
    });
    let (sql, value) = match key {
        SecretKey::Name(n) => (&*BY_NAME, n),
        SecretKey::Arn(a) => (&*BY_ARN, a),
    };
    let rows = query(c, sql, &[&region, &value], "look up secret").await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let sealed: Option<Vec<u8>> = row
        .try_get(20)
        .map_err(pg_store("read the current sealed value"))?;
    Ok(Some((secret_from_row(row)?, sealed.map(SealedValue))))
}

pub(crate) async fn sealed_value(
    c: &Client,
    arn: &str,
    version_id: &str,
) -> Result<Option<SealedValue>> {
    let rows = query(
        c,
        "SELECT sv.sealed FROM secrets s JOIN versions v ON v.secret_id = s.id \
         JOIN sealed_values sv ON sv.version_row = v.id WHERE s.arn = $1 AND v.version_id = $2",
        &[&arn, &version_id],
        "read sealed value",
    )
    .await?;
    Ok(rows.first().map(|r| SealedValue(r.get(0))))
}

pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) async fn due_for_purge(c: &Client, now: Millis, n: usize) -> Result<Vec<PurgeDue>> {
    let rows = query(
        c,
        "SELECT region, arn, purge_at FROM secrets WHERE purge_at IS NOT NULL AND purge_at <= $1 \
         ORDER BY purge_at, arn LIMIT $2",
        &[&now, &limit(n)],
        "scan due purges",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| PurgeDue {
            region: r.get(0),
            arn: r.get(1),
            purge_at: r.get(2),
        })
        .collect())
}

pub(crate) async fn due_for_rotation(
    c: &Client,
    now: Millis,
    n: usize,
) -> Result<Vec<(String, String)>> {
    let rows = query(
        c,
        "SELECT region, arn FROM secrets WHERE rotation_due_at IS NOT NULL \
         AND rotation_due_at <= $1 ORDER BY rotation_due_at, arn LIMIT $2",
        &[&now, &limit(n)],
        "scan due rotations",
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

// ----- events -----

pub(crate) async fn events(c: &Client, q: &EventQuery) -> Result<Vec<EventRecord>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    const COLS: &str = "id, time, name, region, secret_arn, version_id, step, error, detail::text";
    let rows = match &q.secret_arn {
        Some(arn) => {
            query(
                c,
                &format!(
                    "SELECT {COLS} FROM events WHERE secret_arn = $3 AND id IS NOT NULL \
                     AND id > $1 ORDER BY id LIMIT $2"
                ),
                &[&q.after_id, &limit(q.limit), arn],
                "list events",
            )
            .await?
        }
        None => {
            query(
                c,
                &format!(
                "SELECT {COLS} FROM events WHERE id IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
            ),
                &[&q.after_id, &limit(q.limit)],
                "list events",
            )
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            let detail: String = r.get(8);
            Ok(EventRecord {
                id: r.get(0),
                time: r.get(1),
                name: r.get(2),
                region: r.get(3),
                secret_arn: r.get(4),
                version_id: r.get(5),
                step: r.get(6),
                error: r.get(7),
                detail: serde_json::from_str(&detail).map_err(json_err("decode events.detail"))?,
            })
        })
        .collect()
}

// ----- audit trail -----

/// Escapes LIKE's wildcards (with `\`, the default escape character).
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// An audit record's entry from columns 1 to 11 of a row (time, event_id, event_type,
/// event_name, region, read_only, access_key_id, resource, error_code, batch_size, detail).
pub(crate) fn audit_entry(r: &Row) -> AuditEntry {
    AuditEntry {
        time: r.get(1),
        event_id: r.get(2),
        event_type: r.get(3),
        event_name: r.get(4),
        region: r.get(5),
        read_only: r.get(6),
        access_key_id: r.get(7),
        resource: r.get(8),
        error_code: r.get(9),
        batch: r.get::<_, i32>(10) as u32,
        detail: r.get(11),
    }
}

pub(crate) async fn audit(c: &Client, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "SELECT seq, time, event_id, event_type, event_name, region, read_only, access_key_id, \
         resource, error_code, batch_size, detail, prev_hash, hash FROM audit \
         WHERE seq IS NOT NULL AND ",
    );
    let mut args: Vec<Param> = Vec::new();
    let mut arg = |sql: &mut String, cond: &str, v: Param| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("${}", args.len())));
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
        // suffix after it). LIKE is case-sensitive, as names are.
        arg(&mut sql, "(resource = ?", Box::new(r.clone()));
        sql.truncate(sql.len() - " AND ".len());
        arg(
            &mut sql,
            " OR resource LIKE ?)",
            Box::new(format!("arn:%:secret:{}-______", like_escape(r))),
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
    sql.push_str("true)) ORDER BY seq ");
    sql.push_str(if q.descending { "DESC" } else { "ASC" });
    args.push(Box::new(limit(q.limit)));
    sql.push_str(&format!(" LIMIT ${}", args.len()));
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as _).collect();
    let rows = query(c, &sql, &params, "list audit records").await?;
    Ok(rows
        .iter()
        .map(|r| AuditRecord {
            seq: r.get(0),
            entry: audit_entry(r),
            prev_hash: r.get(12),
            hash: r.get(13),
        })
        .collect())
}

// ----- replication outbox -----

const OUTBOX_COLS: &str = "id, created_at, kind, source_region, arn, name, target_region, \
    version_ids, attempts, next_attempt_at, last_error, revision";

fn outbox_rows(rows: &[Row]) -> Result<Vec<OutboxEntry>> {
    rows.iter()
        .map(|r| {
            let kind: String = r.get(2);
            Ok(OutboxEntry {
                id: r.get(0),
                created_at: r.get(1),
                kind: OutboxKind::parse(&kind)
                    .ok_or_else(|| StoreError::Backend(format!("unknown outbox kind {kind:?}")))?,
                source_region: r.get(3),
                arn: r.get(4),
                name: r.get(5),
                target_region: r.get(6),
                version_ids: r.get(7),
                attempts: r.get::<_, i32>(8) as u32,
                next_attempt_at: r.get(9),
                last_error: r.get(10),
                revision: r.get(11),
            })
        })
        .collect()
}

pub(crate) async fn due_outbox(c: &Client, now: Millis, n: usize) -> Result<Vec<OutboxEntry>> {
    let rows = query(
        c,
        &format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE id IS NOT NULL AND next_attempt_at <= $1 \
             ORDER BY id LIMIT $2"
        ),
        &[&now, &limit(n)],
        "read due outbox",
    )
    .await?;
    outbox_rows(&rows)
}

pub(crate) async fn outbox_for(c: &Client, arn: &str) -> Result<Vec<OutboxEntry>> {
    let rows = query(
        c,
        &format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE arn = $1 AND attempts > 0 AND id IS NOT NULL \
             ORDER BY id"
        ),
        &[&arn],
        "read a secret's outbox",
    )
    .await?;
    outbox_rows(&rows)
}

pub(crate) async fn clock(c: &Client) -> Result<Millis> {
    let rows = query(c, "SELECT arca_now_ms()", &[], "read the clock").await?;
    rows.first()
        .map(|r| r.get::<_, i64>(0))
        .ok_or_else(|| StoreError::Backend("the clock query returned no row".into()))
}

pub(crate) async fn lease_holds(c: &Client, f: &Fence) -> Result<bool> {
    let rows = query(
        c,
        "SELECT 1 FROM leases WHERE job = $1 AND holder = $2 AND token = $3 \
         AND expires_at > arca_now_ms()",
        &[&f.job, &f.holder, &f.token],
        "check lease",
    )
    .await?;
    Ok(!rows.is_empty())
}

pub(crate) async fn outbox_len(c: &Client) -> Result<u64> {
    let rows = query(c, "SELECT count(*) FROM outbox", &[], "count outbox").await?;
    Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
}

// ----- event rules, targets, deliveries -----

pub(crate) async fn rules(c: &Client, one: Option<(&str, &str)>) -> Result<Vec<RuleRecord>> {
    let (region, name) = one.unzip();
    let rows = query(
        c,
        "SELECT region, name, pattern, state, description, managed_by, created_at FROM rules \
         WHERE $1::text IS NULL OR (region = $1 AND name = $2) ORDER BY region, name",
        &[&region, &name],
        "read rules",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| RuleRecord {
            region: r.get(0),
            name: r.get(1),
            pattern: r.get(2),
            state: r.get(3),
            description: r.get(4),
            managed_by: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}

pub(crate) async fn targets(c: &Client) -> Result<Vec<TargetRecord>> {
    let rows = query(
        c,
        "SELECT region, rule, id, arn, input, input_path, max_retries, max_age_secs, options \
         FROM targets ORDER BY region, rule, id",
        &[],
        "read targets",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| TargetRecord {
            region: r.get(0),
            rule: r.get(1),
            id: r.get(2),
            arn: r.get(3),
            input: r.get(4),
            input_path: r.get(5),
            max_retries: r.get::<_, i32>(6) as u32,
            max_age_secs: r.get::<_, i32>(7) as u32,
            options: r.get(8),
        })
        .collect())
}

const DELIVERY_COLS: &str = "seq, region, rule, target_id, event_id, event, created_at, state, \
    attempts, next_attempt_at, last_error";

fn delivery_rows(rows: &[Row]) -> Result<Vec<DeliveryRecord>> {
    rows.iter()
        .map(|r| {
            let state: String = r.get(7);
            Ok(DeliveryRecord {
                seq: r.get(0),
                delivery: NewDelivery {
                    region: r.get(1),
                    rule: r.get(2),
                    target_id: r.get(3),
                    event_id: r.get(4),
                    event: r.get(5),
                    created_at: r.get(6),
                },
                state: DeliveryState::parse(&state).ok_or_else(|| {
                    StoreError::Backend(format!("unknown delivery state {state:?}"))
                })?,
                attempts: r.get::<_, i32>(8) as u32,
                next_attempt_at: r.get(9),
                last_error: r.get(10),
            })
        })
        .collect()
}

pub(crate) async fn due_deliveries(
    c: &Client,
    now: Millis,
    n: usize,
) -> Result<Vec<DeliveryRecord>> {
    // The head of each target's queue (its lowest pending seq), if due.
    let rows = query(
        c,
        &format!(
            "SELECT {DELIVERY_COLS} FROM deliveries d WHERE state = 'pending' AND seq IS NOT NULL \
             AND next_attempt_at <= $1 AND seq = (SELECT min(seq) FROM deliveries h \
             WHERE h.region = d.region AND h.rule = d.rule AND h.target_id = d.target_id \
             AND h.state = 'pending') ORDER BY seq LIMIT $2"
        ),
        &[&now, &limit(n)],
        "read due deliveries",
    )
    .await?;
    delivery_rows(&rows)
}

pub(crate) async fn deliveries(
    c: &Client,
    state: DeliveryState,
    after_seq: i64,
    n: usize,
) -> Result<Vec<DeliveryRecord>> {
    let rows = query(
        c,
        &format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE state = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        ),
        &[&state.as_str(), &after_seq, &limit(n)],
        "read deliveries",
    )
    .await?;
    delivery_rows(&rows)
}

// ----- operator configuration -----

pub(crate) async fn sync_jobs(c: &Client) -> Result<Vec<SyncJobRecord>> {
    let rows = query(
        c,
        "SELECT name, spec::text, created_at FROM sync_jobs ORDER BY name",
        &[],
        "list sync jobs",
    )
    .await?;
    rows.iter()
        .map(|r| {
            let spec: String = r.get(1);
            Ok(SyncJobRecord {
                name: r.get(0),
                spec: serde_json::from_str(&spec).map_err(json_err("decode sync_jobs.spec"))?,
                created_at: r.get(2),
            })
        })
        .collect()
}

pub(crate) async fn rotation_functions(c: &Client) -> Result<Vec<RotationFunctionRecord>> {
    let rows = query(
        c,
        "SELECT arn, spec::text, sealed_secret, created_at FROM rotation_functions ORDER BY arn",
        &[],
        "list rotation functions",
    )
    .await?;
    rows.iter()
        .map(|r| {
            let spec: String = r.get(1);
            Ok(RotationFunctionRecord {
                arn: r.get(0),
                spec: serde_json::from_str(&spec)
                    .map_err(json_err("decode rotation_functions.spec"))?,
                sealed_secret: r.get(2),
                created_at: r.get(3),
            })
        })
        .collect()
}

const ACCESS_KEY_COLS: &str =
    "access_key_id, sealed_secret, description, created_at, enabled, scope, owner_account, \
     owner_user";

fn access_key_from_row(r: &Row) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key_id: r.get(0),
        sealed_secret: r.get(1),
        description: r.get(2),
        created_at: r.get(3),
        enabled: r.get(4),
        scope: KeyScope::parse(r.get(5)).unwrap_or_default(),
        // Both or neither (a CHECK in the schema).
        owner: match (r.get(6), r.get(7)) {
            (Some(account), Some(user)) => Some(KeyOwner { account, user }),
            _ => None,
        },
    }
}

pub(crate) async fn access_key(c: &Client, id: &str) -> Result<Option<AccessKeyRecord>> {
    let rows = query(
        c,
        &format!("SELECT {ACCESS_KEY_COLS} FROM access_keys WHERE access_key_id = $1"),
        &[&id],
        "read access key",
    )
    .await?;
    Ok(rows.first().map(access_key_from_row))
}

pub(crate) async fn access_keys(c: &Client) -> Result<Vec<AccessKeyRecord>> {
    let rows = query(
        c,
        &format!("SELECT {ACCESS_KEY_COLS} FROM access_keys ORDER BY created_at, access_key_id"),
        &[],
        "list access keys",
    )
    .await?;
    Ok(rows.iter().map(access_key_from_row).collect())
}

// ----- IAM principals and policies -----

pub(crate) async fn iam(c: &Client) -> Result<Vec<IamRecord>> {
    let rows = query(
        c,
        "SELECT account, kind, name, document, created_at, updated_at FROM iam_entities \
         ORDER BY account, kind, name",
        &[],
        "list iam entities",
    )
    .await?;
    rows.iter()
        .map(|r| {
            // The schema's CHECK admits only the kinds this build knows.
            let kind = IamKind::parse(r.get(1)).ok_or_else(|| {
                StoreError::Backend("iam_entities.kind holds an unknown kind".to_owned())
            })?;
            Ok(IamRecord {
                account: r.get(0),
                kind,
                name: r.get(2),
                document: r.get(3),
                created_at: r.get(4),
                updated_at: r.get(5),
            })
        })
        .collect()
}

pub(crate) async fn encryption_keys(c: &Client) -> Result<Vec<EncryptionKeyRecord>> {
    let rows = query(
        c,
        "SELECT key_id, alias, region, wrapped, created_at, policy FROM encryption_keys \
         ORDER BY created_at, key_id",
        &[],
        "list encryption keys",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| EncryptionKeyRecord {
            key_id: r.get(0),
            alias: r.get(1),
            region: r.get(2),
            wrapped: r.get(3),
            created_at: r.get(4),
            policy: r.get(5),
        })
        .collect())
}

// ----- listing -----

/// The sort column and its ARN tiebreak for each order (`last_accessed_key` is
/// `last_accessed_day` with NULL as the smallest value; the LastChangedDate order lives in
/// `secret_changed`, joined as `o`: see the schema).
fn sort_columns(sort: SortBy) -> (&'static str, &'static str) {
    match sort {
        SortBy::Name => ("s.name", "s.arn"),
        SortBy::CreatedDate => ("s.created_at", "s.arn"),
        SortBy::LastChangedDate => ("o.last_changed_at", "o.arn"),
        SortBy::LastAccessedDate => ("s.last_accessed_key", "s.arn"),
    }
}

/// The LastChangedDate order's candidates: the narrow table's index, then the rows.
static SECRET_LISTED_BY_CHANGED: LazyLock<String> = LazyLock::new(|| {
    SECRET_LISTED.replacen(
        " FROM secrets s",
        " FROM secret_changed o JOIN secrets s ON s.id = o.secret_id",
        1,
    )
});

#[derive(Clone)]
enum SortValue {
    Int(i64),
    Text(String),
}

impl SortValue {
    fn param(&self) -> Param {
        match self {
            SortValue::Int(i) => Box::new(*i),
            SortValue::Text(s) => Box::new(s.clone()),
        }
    }
}

fn sort_value(sort: SortBy, r: &SecretRecord) -> SortValue {
    match sort {
        SortBy::Name => SortValue::Text(r.name.clone()),
        SortBy::CreatedDate => SortValue::Int(r.created_at),
        SortBy::LastChangedDate => SortValue::Int(r.last_changed_at),
        SortBy::LastAccessedDate => SortValue::Int(r.last_accessed_day.unwrap_or(i64::MIN)),
    }
}

fn cursor_value(sort: SortBy, v: &CursorValue) -> Result<SortValue> {
    match (sort, v) {
        (SortBy::Name, CursorValue::Name(n)) => Ok(SortValue::Text(n.clone())),
        (SortBy::Name, CursorValue::Time(_)) | (_, CursorValue::Name(_)) => Err(
            StoreError::Backend("list cursor does not match the sort order".to_owned()),
        ),
        (_, CursorValue::Time(t)) => Ok(SortValue::Int(t.unwrap_or(i64::MIN))),
    }
}

/// Upper bound on rows fetched per list round trip.
const MAX_BATCH: usize = 256;

/// One page of `list_secrets`: candidates from an index in list order, a batch at a time,
/// each batch strictly after the last candidate seen (kept or not); the predicate decides
/// which are kept. With a Name sort and prefix hints, each prefix's name range is scanned
/// in turn (disjoint and sorted, so concatenating them keeps the order); for other sorts
/// the ranges only filter rows.
pub(crate) async fn list(
    c: &Client,
    region: &str,
    q: &ListQuery,
    pred: SecretPredicate<'_>,
) -> Result<Vec<SecretRecord>> {
    let mut out = Vec::new();
    if q.limit == 0 {
        return Ok(out);
    }
    let sort = q.sort_by;
    let ranges = q.name_prefixes.as_deref().and_then(prefix_ranges);
    let cursor = match &q.after {
        Some(cur) => Some((cursor_value(sort, &cur.sort_value)?, cur.arn.clone())),
        None => None,
    };
    let (segments, name_filter): (Vec<Option<NameRange>>, Option<Vec<NameRange>>) =
        match (sort, ranges) {
            (SortBy::Name, Some(mut rs)) => {
                if q.descending {
                    rs.reverse();
                }
                (rs.into_iter().map(Some).collect(), None)
            }
            (_, rs) => (vec![None], rs),
        };
    let mut batch = q.limit.clamp(1, MAX_BATCH);
    for segment in segments {
        let mut after = cursor.clone();
        loop {
            let (sql, args) = candidate_sql(
                region,
                q,
                after.as_ref(),
                segment.as_ref(),
                name_filter.as_deref(),
                batch,
            );
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as _).collect();
            let rows = query(c, &sql, &params, "list secrets").await?;
            let fetched = rows.len();
            for row in &rows {
                let mut rec = secret_from_row(row)?;
                after = Some((sort_value(sort, &rec), rec.arn.clone()));
                // The predicate sees metadata and tags only.
                let versions = std::mem::take(&mut rec.versions);
                if pred(&rec) {
                    rec.versions = versions;
                    out.push(rec);
                    if out.len() == q.limit {
                        return Ok(out);
                    }
                }
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

fn candidate_sql(
    region: &str,
    q: &ListQuery,
    after: Option<&(SortValue, String)>,
    segment: Option<&NameRange>,
    name_filter: Option<&[NameRange]>,
    batch: usize,
) -> (String, Vec<Param>) {
    let (col, tie) = sort_columns(q.sort_by);
    let (cmp, dir) = if q.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let mut sql = match q.sort_by {
        SortBy::LastChangedDate => format!("{} WHERE o.region = $1", *SECRET_LISTED_BY_CHANGED),
        _ => format!("{} WHERE s.region = $1", *SECRET_LISTED),
    };
    let mut args: Vec<Param> = vec![Box::new(region.to_owned())];
    if !q.include_planned_deletion {
        sql.push_str(" AND s.deleted_at IS NULL");
    }
    // A cursor before the segment's start is replaced by the segment's bound.
    let mut after = after;
    if let (Some(seg), Some((SortValue::Text(cur), _))) = (segment, after) {
        let before_segment = if q.descending {
            seg.hi.as_deref().is_some_and(|hi| cur.as_str() >= hi)
        } else {
            cur.as_str() < seg.lo.as_str()
        };
        if before_segment {
            after = None;
        }
    }
    if let Some((v, arn)) = after {
        args.push(v.param());
        let n = args.len();
        args.push(Box::new(arn.clone()));
        sql.push_str(&format!(" AND ({col}, {tie}) {cmp} (${n}, ${})", n + 1));
    }
    if let Some(seg) = segment {
        sql.push_str(" AND ");
        bind_range(&mut sql, &mut args, seg);
    }
    if let Some(ranges) = name_filter {
        sql.push_str(" AND (");
        for (i, r) in ranges.iter().enumerate() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push('(');
            bind_range(&mut sql, &mut args, r);
            sql.push(')');
        }
        sql.push(')');
    }
    args.push(Box::new(limit(batch)));
    sql.push_str(&format!(
        " ORDER BY {col} {dir}, {tie} {dir} LIMIT ${}",
        args.len()
    ));
    (sql, args)
}

/// `name >= lo [AND name < hi]`, bound as parameters.
fn bind_range(sql: &mut String, args: &mut Vec<Param>, r: &NameRange) {
    args.push(Box::new(r.lo.clone()));
    sql.push_str(&format!("s.name >= ${}", args.len()));
    if let Some(hi) = &r.hi {
        args.push(Box::new(hi.clone()));
        sql.push_str(&format!(" AND s.name < ${}", args.len()));
    }
}
