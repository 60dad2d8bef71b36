//! Write paths of the PostgreSQL backend. Each function is one logical write's statements,
//! run inside the caller's transaction, so an error undoes all of it. Rows of the ordered
//! logs are inserted unnumbered (see `sequence`). Concurrency is left to the database: a
//! revision check is an `UPDATE ... WHERE revision = $n` (a concurrent writer waits on the
//! row lock, then finds the revision moved), a name is unique by constraint.

use std::collections::HashMap;

use arca_types::time::Millis;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use crate::changes::notify;
use crate::error::{pg, Fail};
use arca_store::{
    AccessKeyRecord, AccessTouch, AuditEntry, Change, DeliveryOutcome, Effects,
    EncryptionKeyRecord, EventRecord, Fence, IamKind, IamRecord, LeaseGrant, NewDelivery,
    NewVersion, OutboxEntry, RotationFunctionRecord, RuleRecord, SecretChange, SecretRecord,
    StoreError, SyncJobRecord, TargetRecord,
};

pub(crate) type WResult<T> = std::result::Result<T, Fail>;

// ----- leases -----

/// Grants, renews or refuses `job`'s lease (see `Store::acquire_lease`), by the
/// database's clock. Taking a lease over waits for the fenced writes in flight under the
/// old grant (they hold its row in share mode), so none of them commits after it.
pub(crate) async fn acquire_lease(
    tx: &Transaction<'_>,
    job: &str,
    holder: &str,
    ttl_ms: i64,
) -> WResult<Option<LeaseGrant>> {
    // A takeover waits for fenced writes in flight under the old grant; a holder whose
    // transaction hangs must not stop the job for good, so the wait is bounded (the
    // attempt fails, and the worker asks again later).
    tx.batch_execute("SET LOCAL lock_timeout = '5s'")
        .await
        .map_err(pg("bound the lease wait"))?;
    let row = rows(
        tx,
        "INSERT INTO leases AS l (job, holder, token, expires_at) \
         VALUES ($1, $2, 1, arca_now_ms() + $3) \
         ON CONFLICT (job) DO UPDATE SET \
           token = CASE WHEN l.holder = excluded.holder AND l.expires_at > arca_now_ms() \
                   THEN l.token ELSE l.token + 1 END, \
           holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE l.holder = excluded.holder OR l.expires_at <= arca_now_ms() \
         RETURNING token",
        &[&job, &holder, &ttl_ms],
        "take lease",
    )
    .await?;
    Ok(row.first().map(|r| LeaseGrant {
        token: r.get(0),
        ttl_ms,
    }))
}

pub(crate) async fn release_lease(tx: &Transaction<'_>, f: &Fence) -> WResult<()> {
    exec(
        tx,
        "UPDATE leases SET expires_at = 0 WHERE job = $1 AND holder = $2 AND token = $3",
        &[&f.job, &f.holder, &f.token],
        "release lease",
    )
    .await?;
    Ok(())
}

/// Refuses a job's write whose lease no longer holds. The lease row stays locked in
/// share mode until the write commits, so a takeover (which updates it) waits for it.
pub(crate) async fn check_fence(tx: &Transaction<'_>, fence: Option<&Fence>) -> WResult<()> {
    let Some(f) = fence else {
        return Ok(());
    };
    let held = rows(
        tx,
        "SELECT 1 FROM leases WHERE job = $1 AND holder = $2 AND token = $3 \
         AND expires_at > arca_now_ms() FOR SHARE",
        &[&f.job, &f.holder, &f.token],
        "check fence",
    )
    .await?;
    if held.is_empty() {
        Err(Fail::Store(StoreError::LeaseLost))
    } else {
        Ok(())
    }
}

/// The constraints a second secret of one name breaks: (region, name), and the ARN (which
/// holds the name), whichever the database checks first.
const NAME_CONSTRAINTS: [&str; 2] = ["secrets_region_name", "secrets_arn_key"];

pub(crate) fn json(v: &impl serde::Serialize, what: &'static str) -> WResult<String> {
    serde_json::to_string(v).map_err(|e| Fail::Store(crate::error::json_err(what)(e)))
}

async fn exec(
    tx: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: &'static str,
) -> WResult<u64> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg(what))?;
    tx.execute(&stmt, params).await.map_err(pg(what))
}

async fn rows(
    tx: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: &'static str,
) -> WResult<Vec<tokio_postgres::Row>> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg(what))?;
    tx.query(&stmt, params).await.map_err(pg(what))
}

fn name_taken(f: Fail) -> Fail {
    if NAME_CONSTRAINTS.iter().any(|c| f.violates(c)) {
        Fail::Store(StoreError::NameTaken)
    } else {
        f
    }
}

/// Whether a write leaves rows for the sequencer to number.
pub(crate) fn effects_ordered(e: &Effects) -> bool {
    !(e.outbox.is_empty() && e.audit.is_empty() && e.deliveries.is_empty())
}

pub(crate) fn change_ordered(c: &SecretChange) -> bool {
    !(c.events.is_empty() && c.outbox.is_empty() && c.audit.is_empty() && c.deliveries.is_empty())
}

pub(crate) async fn create_secret(
    tx: &Transaction<'_>,
    s: &SecretRecord,
    versions: &[NewVersion],
    effects: &Effects,
) -> WResult<()> {
    check_fence(tx, effects.fence.as_ref()).await?;
    // The unique constraint is the guard; a concurrent creator of the same name waits on
    // it and then fails with NameTaken.
    let row = rows(
        tx,
        "INSERT INTO secrets (region, arn, name, description, kms_key_id, secret_type, \
         owning_service, primary_region, created_at, last_changed_at, last_accessed_day, \
         deleted_at, purge_at, extra, rotation_due_at, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::json, $15, 1) \
         RETURNING id",
        &[
            &s.region,
            &s.arn,
            &s.name,
            &s.description,
            &s.kms_key_id,
            &s.secret_type,
            &s.owning_service,
            &s.primary_region,
            &s.created_at,
            &s.last_changed_at,
            &s.last_accessed_day,
            &s.deleted_at,
            &s.purge_at,
            &json(&s.extra, "encode extra")?,
            &s.rotation_due_at,
        ],
        "insert secret",
    )
    .await
    .map_err(name_taken)?;
    let id: i64 = row.first().map(|r| r.get(0)).ok_or_else(|| {
        Fail::Store(StoreError::Backend(
            "insert secret returned no id".to_owned(),
        ))
    })?;
    insert_tags(tx, id, &s.tags).await?;
    insert_versions(tx, id, versions).await?;
    notify(
        tx,
        &Change::Secret {
            arn: s.arn.clone(),
            revision: 1,
        },
    )
    .await?;
    write_effects(tx, effects).await
}

/// The durable work a write causes, in the write's transaction.
pub(crate) async fn write_effects(tx: &Transaction<'_>, e: &Effects) -> WResult<()> {
    append_outbox(tx, &e.outbox).await?;
    append_audit(tx, &e.audit).await?;
    append_deliveries(tx, &e.deliveries).await
}

async fn insert_tags(
    tx: &Transaction<'_>,
    secret_id: i64,
    tags: &[(String, String)],
) -> WResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let (keys, values): (Vec<&str>, Vec<&str>) =
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).unzip();
    exec(
        tx,
        "INSERT INTO tags (secret_id, position, key, value) \
         SELECT $1, (t.n - 1)::int, t.key, t.value \
         FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(key, value, n)",
        &[&secret_id, &keys, &values],
        "insert tags",
    )
    .await?;
    Ok(())
}

async fn insert_versions(
    tx: &Transaction<'_>,
    secret_id: i64,
    versions: &[NewVersion],
) -> WResult<()> {
    for nv in versions {
        let v = &nv.version;
        let row = rows(
            tx,
            "WITH v AS (INSERT INTO versions (secret_id, version_id, stages, created_at, \
             last_accessed_day, kms_key_ids, value_digest, has_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id) \
             INSERT INTO sealed_values (version_row, sealed) SELECT id, $9 FROM v RETURNING version_row",
            &[
                &secret_id,
                &v.version_id,
                &v.stages,
                &v.created_at,
                &v.last_accessed_day,
                &v.kms_key_ids,
                &v.value_digest,
                &v.has_value,
                &nv.sealed.0,
            ],
            "insert version",
        )
        .await?;
        if row.is_empty() {
            return Err(Fail::Store(StoreError::Backend(
                "insert version returned nothing".to_owned(),
            )));
        }
    }
    Ok(())
}

pub(crate) async fn update_secret(tx: &Transaction<'_>, c: &SecretChange) -> WResult<()> {
    check_fence(tx, c.fence.as_ref()).await?;
    let s = &c.secret;
    // last_accessed_day only moves forward: access dates are not covered by the revision
    // check, so a change built from a record read before a touch must not roll one back.
    // The change notice is queued by the same statement (one round trip for both).
    let updated = rows(
        tx,
        "WITH u AS (UPDATE secrets SET name = $3, description = $4, kms_key_id = $5, \
         secret_type = $6, owning_service = $7, primary_region = $8, created_at = $9, \
         last_changed_at = $10, last_accessed_day = greatest(last_accessed_day, $11), \
         deleted_at = $12, purge_at = $13, extra = $14::text::json, rotation_due_at = $16, \
         revision = revision + 1 \
         WHERE region = $1 AND arn = $2 AND revision = $15 RETURNING id, revision, arn) \
         SELECT id, arca_notify('s ' || revision || ' ' || arn) FROM u",
        &[
            &s.region,
            &s.arn,
            &s.name,
            &s.description,
            &s.kms_key_id,
            &s.secret_type,
            &s.owning_service,
            &s.primary_region,
            &s.created_at,
            &s.last_changed_at,
            &s.last_accessed_day,
            &s.deleted_at,
            &s.purge_at,
            &json(&s.extra, "encode extra")?,
            &c.expected_revision,
            &s.rotation_due_at,
        ],
        "update secret",
    )
    .await
    .map_err(name_taken)?;
    let Some(id) = updated.first().map(|r| r.get::<_, i64>(0)) else {
        let exists = !rows(
            tx,
            "SELECT 1 FROM secrets WHERE region = $1 AND arn = $2",
            &[&s.region, &s.arn],
            "check secret",
        )
        .await?
        .is_empty();
        return Err(Fail::Store(if exists {
            StoreError::Conflict
        } else {
            StoreError::NotFound
        }));
    };
    // The rest touches three independent sets of tables: sent together (pipelined on the
    // one connection), each set's statements in order, so a write waits for about one
    // round trip more instead of ten. The row lock taken above orders concurrent writers.
    let tags = async {
        exec(
            tx,
            "DELETE FROM tags WHERE secret_id = $1",
            &[&id],
            "delete tags",
        )
        .await?;
        insert_tags(tx, id, &s.tags).await
    };
    let versions = async {
        // Removals first, so a change that drops one version and adds another never
        // holds both; a version already gone is fine (the goal state holds).
        if !c.removed_versions.is_empty() {
            exec(
                tx,
                "DELETE FROM versions WHERE secret_id = $1 AND version_id = ANY($2)",
                &[&id, &c.removed_versions],
                "delete versions",
            )
            .await?;
        }
        for (v, stages) in &c.restaged {
            let n = exec(
                tx,
                "UPDATE versions SET stages = $3 WHERE secret_id = $1 AND version_id = $2",
                &[&id, v, stages],
                "restage version",
            )
            .await?;
            if n == 0 {
                // Restaging a version that does not exist would silently lose a label move.
                return Err(Fail::Store(StoreError::NotFound));
            }
        }
        insert_versions(tx, id, &c.new_versions).await
    };
    let logs = async {
        append_events(tx, &c.events).await?;
        append_outbox(tx, &c.outbox).await?;
        append_audit(tx, &c.audit).await?;
        append_deliveries(tx, &c.deliveries).await
    };
    let (tags, versions, logs) = futures_util::future::join3(tags, versions, logs).await;
    first_cause([tags, versions.map(|_| ()), logs.map(|_| ())])
}

/// The error that caused a pipelined write to fail: once one statement fails, the ones
/// after it fail only because the transaction is aborted (25P02), which says nothing.
pub(crate) fn first_cause(results: impl IntoIterator<Item = WResult<()>>) -> WResult<()> {
    let mut aborted = None;
    for r in results {
        match r {
            Ok(()) => {}
            Err(f) if f.is_in_failed_transaction() => aborted = Some(f),
            Err(f) => return Err(f),
        }
    }
    aborted.map_or(Ok(()), Err)
}

pub(crate) async fn delete_secret(
    tx: &Transaction<'_>,
    region: &str,
    arn: &str,
    effects: &Effects,
) -> WResult<()> {
    check_fence(tx, effects.fence.as_ref()).await?;
    // Tags, versions and sealed values go with it (ON DELETE CASCADE).
    let n = exec(
        tx,
        "DELETE FROM secrets WHERE region = $1 AND arn = $2",
        &[&region, &arn],
        "delete secret",
    )
    .await?;
    if n > 0 {
        let arn = arn.to_owned();
        notify(tx, &Change::Deleted { arn }).await?;
    }
    write_effects(tx, effects).await
}

pub(crate) async fn purge_secret(
    tx: &Transaction<'_>,
    region: &str,
    arn: &str,
    purge_at: Millis,
    effects: &Effects,
) -> WResult<bool> {
    check_fence(tx, effects.fence.as_ref()).await?;
    let n = exec(
        tx,
        "DELETE FROM secrets WHERE region = $1 AND arn = $2 AND purge_at = $3",
        &[&region, &arn, &purge_at],
        "purge secret",
    )
    .await?;
    if n > 0 {
        let arn = arn.to_owned();
        notify(tx, &Change::Deleted { arn }).await?;
        write_effects(tx, effects).await?;
    }
    Ok(n > 0)
}

/// Moves access days forward for a batch of reads, secrets first and then versions, each
/// in ARN order so that concurrent batches (other nodes) take row locks in one order.
pub(crate) async fn touch_accessed(tx: &Transaction<'_>, touches: &[AccessTouch]) -> WResult<()> {
    if touches.is_empty() {
        return Ok(());
    }
    let mut secrets: HashMap<&str, Millis> = HashMap::new();
    let mut versions: HashMap<(&str, &str), Millis> = HashMap::new();
    for t in touches {
        let d = secrets.entry(&t.arn).or_insert(t.day);
        *d = (*d).max(t.day);
        let d = versions.entry((&t.arn, &t.version_id)).or_insert(t.day);
        *d = (*d).max(t.day);
    }
    let mut secrets: Vec<_> = secrets.into_iter().collect();
    secrets.sort_unstable();
    let (arns, days): (Vec<&str>, Vec<Millis>) = secrets.into_iter().unzip();
    exec(
        tx,
        "UPDATE secrets s SET last_accessed_day = t.day \
         FROM (SELECT * FROM unnest($1::text[], $2::bigint[]) AS u(arn, day) ORDER BY arn) t \
         WHERE s.arn = t.arn AND (s.last_accessed_day IS NULL OR s.last_accessed_day < t.day)",
        &[&arns, &days],
        "touch secrets",
    )
    .await?;
    let mut versions: Vec<_> = versions.into_iter().collect();
    versions.sort_unstable();
    let mut arns = Vec::with_capacity(versions.len());
    let mut ids = Vec::with_capacity(versions.len());
    let mut days = Vec::with_capacity(versions.len());
    for ((arn, id), day) in versions {
        arns.push(arn);
        ids.push(id);
        days.push(day);
    }
    exec(
        tx,
        "UPDATE versions v SET last_accessed_day = t.day \
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(arn, version_id, day) \
         JOIN secrets s ON s.arn = t.arn \
         WHERE v.secret_id = s.id AND v.version_id = t.version_id \
           AND (v.last_accessed_day IS NULL OR v.last_accessed_day < t.day)",
        &[&arns, &ids, &days],
        "touch versions",
    )
    .await?;
    Ok(())
}

// ----- ordered logs (numbered later by the sequencer) -----

pub(crate) async fn append_events(
    tx: &impl GenericClient,
    events: &[EventRecord],
) -> WResult<Vec<i64>> {
    let mut row_ids = Vec::with_capacity(events.len());
    for e in events {
        let r = rows(
            tx,
            "INSERT INTO events (time, name, region, secret_arn, version_id, step, error, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::json) RETURNING row_id",
            &[
                &e.time,
                &e.name,
                &e.region,
                &e.secret_arn,
                &e.version_id,
                &e.step,
                &e.error,
                &json(&e.detail, "encode event detail")?,
            ],
            "insert event",
        )
        .await?;
        row_ids.extend(r.first().map(|r| r.get::<_, i64>(0)));
    }
    Ok(row_ids)
}

pub(crate) async fn append_outbox(tx: &impl GenericClient, entries: &[OutboxEntry]) -> WResult<()> {
    for e in entries {
        exec(
            tx,
            "INSERT INTO outbox (created_at, kind, source_region, arn, name, target_region, \
             version_ids, attempts, next_attempt_at, last_error, revision) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &e.created_at,
                &e.kind.as_str(),
                &e.source_region,
                &e.arn,
                &e.name,
                &e.target_region,
                &e.version_ids,
                &(e.attempts as i32),
                &e.next_attempt_at,
                &e.last_error,
                &e.revision,
            ],
            "insert outbox entry",
        )
        .await?;
    }
    Ok(())
}

/// One column of `rows` as an array parameter (for `unnest`).
fn col<'a, R, T>(rows: &'a [R], f: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(f).collect()
}

/// Inserts audit records unchained; the sequencer numbers and chains them in order.
pub(crate) async fn append_audit(tx: &impl GenericClient, entries: &[AuditEntry]) -> WResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    // One array per column (unnest zips them back into rows).
    let e = entries;
    let (time, event_id, event_type, event_name, region) = (
        col(e, |e| e.time),
        col(e, |e| e.event_id.as_str()),
        col(e, |e| e.event_type.as_str()),
        col(e, |e| e.event_name.as_str()),
        col(e, |e| e.region.as_str()),
    );
    let (read_only, key, resource, error, batch, detail) = (
        col(e, |e| e.read_only),
        col(e, |e| e.access_key_id.as_deref()),
        col(e, |e| e.resource.as_deref()),
        col(e, |e| e.error_code.as_deref()),
        col(e, |e| e.batch as i32),
        col(e, |e| e.detail.as_str()),
    );
    // WITH ORDINALITY keeps the entries' order in row_id, which orders the chain.
    exec(
        tx,
        "INSERT INTO audit (time, event_id, event_type, event_name, region, read_only, \
         access_key_id, resource, error_code, batch_size, detail) \
         SELECT time, event_id, event_type, event_name, region, read_only, access_key_id, \
         resource, error_code, batch_size, detail FROM unnest($1::bigint[], $2::text[], \
         $3::text[], $4::text[], $5::text[], $6::bool[], $7::text[], $8::text[], $9::text[], \
         $10::int[], $11::text[]) WITH ORDINALITY AS u(time, event_id, event_type, event_name, \
         region, read_only, access_key_id, resource, error_code, batch_size, detail, n) ORDER BY n",
        &[
            &time,
            &event_id,
            &event_type,
            &event_name,
            &region,
            &read_only,
            &key,
            &resource,
            &error,
            &batch,
            &detail,
        ],
        "insert audit records",
    )
    .await?;
    Ok(())
}

pub(crate) async fn append_deliveries(tx: &impl GenericClient, ds: &[NewDelivery]) -> WResult<()> {
    if ds.is_empty() {
        return Ok(());
    }
    let (region, rule, target, event_id, event, at) = (
        col(ds, |d| d.region.as_str()),
        col(ds, |d| d.rule.as_str()),
        col(ds, |d| d.target_id.as_str()),
        col(ds, |d| d.event_id.as_str()),
        col(ds, |d| d.event.as_str()),
        col(ds, |d| d.created_at),
    );
    exec(
        tx,
        "INSERT INTO deliveries (region, rule, target_id, event_id, event, created_at, \
         next_attempt_at) SELECT region, rule, target_id, event_id, event, created_at, created_at \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) \
         WITH ORDINALITY AS u(region, rule, target_id, event_id, event, created_at, n) ORDER BY n",
        &[&region, &rule, &target, &event_id, &event, &at],
        "insert deliveries",
    )
    .await?;
    Ok(())
}

pub(crate) async fn complete_outbox(
    tx: &Transaction<'_>,
    ids: &[i64],
    fence: Option<&Fence>,
) -> WResult<()> {
    check_fence(tx, fence).await?;
    exec(
        tx,
        "DELETE FROM outbox WHERE id = ANY($1)",
        &[&ids],
        "delete outbox entries",
    )
    .await?;
    Ok(())
}

pub(crate) async fn defer_outbox(
    tx: &Transaction<'_>,
    ids: &[i64],
    error: &str,
    next_attempt_at: Millis,
    fence: Option<&Fence>,
) -> WResult<()> {
    check_fence(tx, fence).await?;
    exec(
        tx,
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 \
         WHERE id = ANY($1)",
        &[&ids, &error, &next_attempt_at],
        "defer outbox entries",
    )
    .await?;
    Ok(())
}

// ----- rules, targets, deliveries -----

pub(crate) async fn put_rule(tx: &Transaction<'_>, r: &RuleRecord) -> WResult<()> {
    // Every node routes its writes' events by the rules: tell them (at commit).
    notify(tx, &Change::Rules).await?;
    exec(
        tx,
        "INSERT INTO rules (region, name, pattern, state, description, managed_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (region, name) DO UPDATE SET pattern = excluded.pattern, \
         state = excluded.state, description = excluded.description, \
         managed_by = excluded.managed_by",
        &[
            &r.region,
            &r.name,
            &r.pattern,
            &r.state,
            &r.description,
            &r.managed_by,
            &r.created_at,
        ],
        "upsert rule",
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete_rule(tx: &Transaction<'_>, region: &str, name: &str) -> WResult<bool> {
    // Every node routes its writes' events by the rules: tell them (at commit).
    notify(tx, &Change::Rules).await?;
    // Targets go with the rule (ON DELETE CASCADE); its pending deliveries are owed to
    // nobody now, its dead letters stay for the operator.
    exec(
        tx,
        "DELETE FROM deliveries WHERE region = $1 AND rule = $2 AND state = 'pending'",
        &[&region, &name],
        "delete rule deliveries",
    )
    .await?;
    let n = exec(
        tx,
        "DELETE FROM rules WHERE region = $1 AND name = $2",
        &[&region, &name],
        "delete rule",
    )
    .await?;
    Ok(n > 0)
}

pub(crate) async fn put_targets(tx: &Transaction<'_>, targets: &[TargetRecord]) -> WResult<()> {
    // Every node routes its writes' events by the rules: tell them (at commit).
    notify(tx, &Change::Rules).await?;
    for t in targets {
        let exists = !rows(
            tx,
            "SELECT 1 FROM rules WHERE region = $1 AND name = $2",
            &[&t.region, &t.rule],
            "check rule",
        )
        .await?
        .is_empty();
        if !exists {
            return Err(Fail::Store(StoreError::NotFound));
        }
        exec(
            tx,
            "INSERT INTO targets (region, rule, id, arn, input, input_path, max_retries, \
             max_age_secs, options) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (region, rule, id) DO UPDATE SET arn = excluded.arn, \
             input = excluded.input, input_path = excluded.input_path, \
             max_retries = excluded.max_retries, max_age_secs = excluded.max_age_secs, \
             options = excluded.options",
            &[
                &t.region,
                &t.rule,
                &t.id,
                &t.arn,
                &t.input,
                &t.input_path,
                &(t.max_retries as i32),
                &(t.max_age_secs as i32),
                &t.options,
            ],
            "upsert target",
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn remove_targets(
    tx: &Transaction<'_>,
    region: &str,
    rule: &str,
    ids: &[String],
) -> WResult<()> {
    notify(tx, &Change::Rules).await?;
    exec(
        tx,
        "DELETE FROM targets WHERE region = $1 AND rule = $2 AND id = ANY($3)",
        &[&region, &rule, &ids],
        "delete targets",
    )
    .await?;
    exec(
        tx,
        "DELETE FROM deliveries WHERE region = $1 AND rule = $2 AND target_id = ANY($3) \
         AND state = 'pending'",
        &[&region, &rule, &ids],
        "delete target deliveries",
    )
    .await?;
    Ok(())
}

pub(crate) async fn finish_delivery(
    tx: &Transaction<'_>,
    seq: i64,
    outcome: &DeliveryOutcome,
    audit: &[AuditEntry],
    fence: Option<&Fence>,
) -> WResult<()> {
    check_fence(tx, fence).await?;
    let n =
        match outcome {
            DeliveryOutcome::Delivered => {
                exec(
                    tx,
                    "DELETE FROM deliveries WHERE seq = $1 AND state = 'pending'",
                    &[&seq],
                    "delete delivery",
                )
                .await?
            }
            DeliveryOutcome::Retry {
                error,
                next_attempt_at,
            } => {
                exec(
                    tx,
                    "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_at = $3 WHERE seq = $1 AND state = 'pending'",
                    &[&seq, error, next_attempt_at],
                    "defer delivery",
                )
                .await?
            }
            DeliveryOutcome::Dead { error } => exec(
                tx,
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, state = 'dead' \
                 WHERE seq = $1 AND state = 'pending'",
                &[&seq, error],
                "dead-letter delivery",
            )
            .await?,
        };
    if n == 0 {
        return Err(Fail::Store(StoreError::NotFound));
    }
    append_audit(tx, audit).await
}

pub(crate) async fn replay_delivery(tx: &Transaction<'_>, seq: i64, now: Millis) -> WResult<bool> {
    let n = exec(
        tx,
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $2 \
         WHERE seq = $1 AND state = 'dead'",
        &[&seq, &now],
        "replay delivery",
    )
    .await?;
    Ok(n > 0)
}

// ----- operator configuration -----

pub(crate) async fn put_rotation_function(
    tx: &Transaction<'_>,
    f: &RotationFunctionRecord,
) -> WResult<()> {
    exec(
        tx,
        "INSERT INTO rotation_functions (arn, spec, sealed_secret, created_at) \
         VALUES ($1, $2::text::json, $3, $4) \
         ON CONFLICT (arn) DO UPDATE SET spec = excluded.spec, \
         sealed_secret = excluded.sealed_secret, created_at = excluded.created_at",
        &[
            &f.arn,
            &json(&f.spec, "encode rotation function spec")?,
            &f.sealed_secret,
            &f.created_at,
        ],
        "put rotation function",
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete_rotation_function(tx: &Transaction<'_>, arn: &str) -> WResult<()> {
    exec(
        tx,
        "DELETE FROM rotation_functions WHERE arn = $1",
        &[&arn],
        "delete rotation function",
    )
    .await?;
    Ok(())
}

pub(crate) async fn put_sync_job(tx: &Transaction<'_>, j: &SyncJobRecord) -> WResult<()> {
    exec(
        tx,
        "INSERT INTO sync_jobs (name, spec, created_at) VALUES ($1, $2::text::json, $3) \
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at",
        &[
            &j.name,
            &json(&j.spec, "encode sync job spec")?,
            &j.created_at,
        ],
        "put sync job",
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete_sync_job(tx: &Transaction<'_>, name: &str) -> WResult<bool> {
    let n = exec(
        tx,
        "DELETE FROM sync_jobs WHERE name = $1",
        &[&name],
        "delete sync job",
    )
    .await?;
    Ok(n > 0)
}

pub(crate) async fn put_access_key(tx: &Transaction<'_>, k: &AccessKeyRecord) -> WResult<()> {
    let owner = k.owner.as_ref();
    exec(
        tx,
        "INSERT INTO access_keys (access_key_id, sealed_secret, description, created_at, enabled, \
         scope, owner_account, owner_user) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (access_key_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
         description = excluded.description, created_at = excluded.created_at, \
         enabled = excluded.enabled, scope = excluded.scope, \
         owner_account = excluded.owner_account, owner_user = excluded.owner_user",
        &[
            &k.access_key_id,
            &k.sealed_secret,
            &k.description,
            &k.created_at,
            &k.enabled,
            &k.scope.as_str(),
            &owner.map(|o| o.account.as_str()),
            &owner.map(|o| o.user.as_str()),
        ],
        "put access key",
    )
    .await?;
    let access_key_id = k.access_key_id.clone();
    notify(tx, &Change::AccessKey { access_key_id }).await
}

pub(crate) async fn delete_access_key(tx: &Transaction<'_>, id: &str) -> WResult<bool> {
    let n = exec(
        tx,
        "DELETE FROM access_keys WHERE access_key_id = $1",
        &[&id],
        "delete access key",
    )
    .await?;
    // Every node's key cache must forget it (at commit).
    let access_key_id = id.to_owned();
    notify(tx, &Change::AccessKey { access_key_id }).await?;
    Ok(n > 0)
}

// ----- IAM principals and policies -----

/// Creates (`NameTaken` if the key exists) or replaces (`NotFound` if it does not, and
/// `created_at` is kept) one IAM entity.
pub(crate) async fn put_iam(
    tx: &Transaction<'_>,
    r: &IamRecord,
    replaces: Option<i64>,
) -> WResult<()> {
    // Every node authorizes by the entities: tell them (at commit).
    notify(tx, &Change::Iam).await?;
    let n = if replaces.is_none() {
        // DO NOTHING on the key alone: a concurrent create of the same entity waits for
        // the first to commit, then inserts nothing; a taken name is told by the row count.
        exec(
            tx,
            "INSERT INTO iam_entities (account, kind, name, document, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, kind, name) DO NOTHING",
            &[
                &r.account,
                &r.kind.as_str(),
                &r.name,
                &r.document,
                &r.created_at,
                &r.updated_at,
            ],
            "insert iam entity",
        )
        .await?
    } else {
        exec(
            tx,
            "UPDATE iam_entities SET document = $4, updated_at = $5 \
             WHERE account = $1 AND kind = $2 AND name = $3 AND updated_at = $6",
            &[
                &r.account,
                &r.kind.as_str(),
                &r.name,
                &r.document,
                &r.updated_at,
                &replaces,
            ],
            "update iam entity",
        )
        .await?
    };
    match (n, replaces) {
        (0, None) => Err(Fail::Store(StoreError::NameTaken)),
        (0, Some(_)) => {
            // Missing, or changed since it was read (a concurrent writer's row lock
            // made this UPDATE wait for it, then see its new updated_at).
            let rows = tx
                .query(
                    "SELECT 1 FROM iam_entities WHERE account = $1 AND kind = $2 AND name = $3",
                    &[&r.account, &r.kind.as_str(), &r.name],
                )
                .await
                .map_err(pg("iam exists"))?;
            Err(Fail::Store(if rows.is_empty() {
                StoreError::NotFound
            } else {
                StoreError::Conflict
            }))
        }
        _ => Ok(()),
    }
}

pub(crate) async fn delete_iam(
    tx: &Transaction<'_>,
    account: &str,
    kind: IamKind,
    name: &str,
) -> WResult<bool> {
    // Every node authorizes by the entities: tell them (at commit).
    notify(tx, &Change::Iam).await?;
    let n = exec(
        tx,
        "DELETE FROM iam_entities WHERE account = $1 AND kind = $2 AND name = $3",
        &[&account, &kind.as_str(), &name],
        "delete iam entity",
    )
    .await?;
    Ok(n > 0)
}

pub(crate) async fn put_encryption_key(
    tx: &Transaction<'_>,
    k: &EncryptionKeyRecord,
) -> WResult<()> {
    exec(
        tx,
        "INSERT INTO encryption_keys (key_id, alias, region, wrapped, created_at, policy) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (key_id) DO UPDATE SET alias = excluded.alias, region = excluded.region, \
         wrapped = excluded.wrapped, created_at = excluded.created_at, policy = excluded.policy",
        &[
            &k.key_id,
            &k.alias,
            &k.region,
            &k.wrapped,
            &k.created_at,
            &k.policy,
        ],
        "put encryption key",
    )
    .await?;
    notify(tx, &Change::Keys).await
}

/// Everything but keys, IAM entities and operator configuration. The log counters stay, so numbers are
/// not reused.
pub(crate) async fn wipe_secrets(tx: &Transaction<'_>) -> WResult<()> {
    tx.batch_execute(
        "DELETE FROM sealed_values; DELETE FROM tags; DELETE FROM versions; DELETE FROM secrets; \
         DELETE FROM events; DELETE FROM outbox; DELETE FROM deliveries;",
    )
    .await
    .map_err(pg("wipe secrets"))
}
