//! Write paths of the SQLite backend. Each function is one logical write, run by the
//! writer thread inside its own savepoint of a (possibly shared) transaction, so an
//! error returned here undoes everything the function did and nothing else.

use arca_types::time::{Clock, Millis};
use rusqlite::{params, Connection, OptionalExtension};

use super::error::{is_name_taken, json_err, sql_err};
use arca_store::{
    chain_hash, AccessKeyRecord, AuditEntry, DeliveryOutcome, Effects, EncryptionKeyRecord,
    EventRecord, Fence, IamKind, IamRecord, LeaseGrant, NewDelivery, NewVersion, OutboxEntry,
    Result, RotationFunctionRecord, RuleRecord, SecretChange, SecretRecord, StoreError,
    TargetRecord, GENESIS,
};

/// The wall clock, for leases: never the dev clock that tests move, since a lease's
/// expiry is about how long a node has been silent.
fn wall_ms() -> Millis {
    arca_types::time::SystemClock.now_millis()
}

/// Grants, renews or refuses `job`'s lease (see `Store::acquire_lease`).
pub(super) fn acquire_lease(
    conn: &Connection,
    job: &str,
    holder: &str,
    ttl_ms: i64,
) -> Result<Option<LeaseGrant>> {
    let now = wall_ms();
    let held: Option<(String, i64, i64)> = conn
        .prepare_cached("SELECT holder, token, expires_at FROM leases WHERE job = ?1")
        .map_err(sql_err("prepare lease read"))?
        .query_row([job], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(sql_err("read lease"))?;
    let token = match held {
        Some((h, token, expires)) if expires > now => {
            if h != holder {
                return Ok(None);
            }
            token
        }
        Some((_, token, _)) => token + 1,
        None => 1,
    };
    conn.prepare_cached(
        "INSERT INTO leases (job, holder, token, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, token = excluded.token, \
         expires_at = excluded.expires_at",
    )
    .map_err(sql_err("prepare lease write"))?
    .execute(params![job, holder, token, now + ttl_ms])
    .map_err(sql_err("write lease"))?;
    Ok(Some(LeaseGrant { token, ttl_ms }))
}

pub(super) fn release_lease(conn: &Connection, f: &Fence) -> Result<()> {
    conn.prepare_cached(
        "UPDATE leases SET expires_at = 0 WHERE job = ?1 AND holder = ?2 AND token = ?3",
    )
    .map_err(sql_err("prepare lease release"))?
    .execute(params![f.job, f.holder, f.token])
    .map_err(sql_err("release lease"))?;
    Ok(())
}

/// Refuses a job's write whose lease no longer holds. The writer thread is the only
/// writer, so nothing can take the lease over between this check and the commit.
pub(super) fn check_fence(conn: &Connection, fence: Option<&Fence>) -> Result<()> {
    let Some(f) = fence else {
        return Ok(());
    };
    let held = conn
        .prepare_cached(
            "SELECT 1 FROM leases WHERE job = ?1 AND holder = ?2 AND token = ?3 \
             AND expires_at > ?4",
        )
        .map_err(sql_err("prepare fence check"))?
        .exists(params![f.job, f.holder, f.token, wall_ms()])
        .map_err(sql_err("check fence"))?;
    if held {
        Ok(())
    } else {
        Err(StoreError::LeaseLost)
    }
}

fn json(v: &impl serde::Serialize, what: &'static str) -> Result<String> {
    serde_json::to_string(v).map_err(json_err(what))
}

pub(super) fn create_secret(
    conn: &Connection,
    s: &SecretRecord,
    versions: &[NewVersion],
    effects: &Effects,
) -> Result<()> {
    check_fence(conn, effects.fence.as_ref())?;
    // Checked first so NameTaken does not depend on parsing constraint messages; the
    // UNIQUE constraint below stays the real guard.
    let taken = conn
        .prepare_cached("SELECT 1 FROM secrets WHERE region = ?1 AND name = ?2")
        .map_err(sql_err("prepare name check"))?
        .exists(params![s.region, s.name])
        .map_err(sql_err("check name"))?;
    if taken {
        return Err(StoreError::NameTaken);
    }
    conn.prepare_cached(
        "INSERT INTO secrets (region, arn, name, description, kms_key_id, secret_type, \
         owning_service, primary_region, created_at, last_changed_at, last_accessed_day, \
         deleted_at, purge_at, extra, rotation_due_at, revision) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 1)",
    )
    .map_err(sql_err("prepare secret insert"))?
    .execute(params![
        s.region,
        s.arn,
        s.name,
        s.description,
        s.kms_key_id,
        s.secret_type,
        s.owning_service,
        s.primary_region,
        s.created_at,
        s.last_changed_at,
        s.last_accessed_day,
        s.deleted_at,
        s.purge_at,
        json(&s.extra, "encode extra")?,
        s.rotation_due_at,
    ])
    .map_err(|e| {
        if is_name_taken(&e) {
            StoreError::NameTaken
        } else {
            sql_err("insert secret")(e)
        }
    })?;
    let id = conn.last_insert_rowid();
    insert_tags(conn, id, &s.tags)?;
    for v in versions {
        insert_version(conn, id, v)?;
    }
    write_effects(conn, effects)
}

/// The durable work a write causes, in the write's transaction.
pub(super) fn write_effects(conn: &Connection, effects: &Effects) -> Result<()> {
    for e in &effects.outbox {
        append_outbox(conn, e)?;
    }
    append_audit(conn, &effects.audit)?;
    append_deliveries(conn, &effects.deliveries)
}

fn insert_tags(conn: &Connection, secret_id: i64, tags: &[(String, String)]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO tags (secret_id, position, key, value) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_err("prepare tag insert"))?;
    for (pos, (k, v)) in tags.iter().enumerate() {
        stmt.execute(params![secret_id, pos as i64, k, v])
            .map_err(sql_err("insert tag"))?;
    }
    Ok(())
}

fn insert_version(conn: &Connection, secret_id: i64, nv: &NewVersion) -> Result<()> {
    let v = &nv.version;
    conn.prepare_cached(
        "INSERT INTO versions (secret_id, version_id, stages, created_at, last_accessed_day, \
         kms_key_ids, value_digest, has_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(sql_err("prepare version insert"))?
    .execute(params![
        secret_id,
        v.version_id,
        json(&v.stages, "encode stages")?,
        v.created_at,
        v.last_accessed_day,
        json(&v.kms_key_ids, "encode kms key ids")?,
        v.value_digest,
        v.has_value,
    ])
    .map_err(sql_err("insert version"))?;
    let row = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO sealed_values (version_row, sealed) VALUES (?1, ?2)")
        .map_err(sql_err("prepare value insert"))?
        .execute(params![row, nv.sealed.0])
        .map_err(sql_err("insert sealed value"))?;
    Ok(())
}

pub(super) fn update_secret(conn: &Connection, c: &SecretChange) -> Result<()> {
    check_fence(conn, c.fence.as_ref())?;
    let s = &c.secret;
    // last_accessed_day only moves forward here: it is not covered by the revision check
    // (touch_accessed does not bump it), so a change built from a record read before a
    // touch must not roll the access date back.
    let id: Option<i64> = conn
        .prepare_cached(
            "UPDATE secrets SET name = ?3, description = ?4, kms_key_id = ?5, secret_type = ?6, \
             owning_service = ?7, primary_region = ?8, created_at = ?9, last_changed_at = ?10, \
             last_accessed_day = CASE \
                 WHEN last_accessed_day IS NULL OR last_accessed_day < ?11 THEN ?11 \
                 ELSE last_accessed_day END, \
             deleted_at = ?12, purge_at = ?13, extra = ?14, rotation_due_at = ?16, \
             revision = revision + 1 \
             WHERE region = ?1 AND arn = ?2 AND revision = ?15 RETURNING id",
        )
        .map_err(sql_err("prepare secret update"))?
        .query_row(
            params![
                s.region,
                s.arn,
                s.name,
                s.description,
                s.kms_key_id,
                s.secret_type,
                s.owning_service,
                s.primary_region,
                s.created_at,
                s.last_changed_at,
                s.last_accessed_day,
                s.deleted_at,
                s.purge_at,
                json(&s.extra, "encode extra")?,
                c.expected_revision,
                s.rotation_due_at,
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| {
            if is_name_taken(&e) {
                StoreError::NameTaken
            } else {
                sql_err("update secret")(e)
            }
        })?;
    let Some(id) = id else {
        let exists = conn
            .prepare_cached("SELECT 1 FROM secrets WHERE region = ?1 AND arn = ?2")
            .map_err(sql_err("prepare secret check"))?
            .exists(params![s.region, s.arn])
            .map_err(sql_err("check secret"))?;
        return Err(if exists {
            StoreError::Conflict
        } else {
            StoreError::NotFound
        });
    };

    conn.prepare_cached("DELETE FROM tags WHERE secret_id = ?1")
        .map_err(sql_err("prepare tag delete"))?
        .execute([id])
        .map_err(sql_err("delete tags"))?;
    insert_tags(conn, id, &s.tags)?;

    // Removals first, so a change that drops one version and adds another never holds
    // both at once; a version already gone is fine (the goal state holds).
    let mut del = conn
        .prepare_cached("DELETE FROM versions WHERE secret_id = ?1 AND version_id = ?2")
        .map_err(sql_err("prepare version delete"))?;
    for v in &c.removed_versions {
        del.execute(params![id, v])
            .map_err(sql_err("delete version"))?;
    }
    let mut restage = conn
        .prepare_cached("UPDATE versions SET stages = ?3 WHERE secret_id = ?1 AND version_id = ?2")
        .map_err(sql_err("prepare restage"))?;
    for (v, stages) in &c.restaged {
        let n = restage
            .execute(params![id, v, json(stages, "encode stages")?])
            .map_err(sql_err("restage version"))?;
        if n == 0 {
            // Restaging a version that does not exist would silently lose a label move;
            // fail the whole change instead.
            return Err(StoreError::NotFound);
        }
    }
    for nv in &c.new_versions {
        insert_version(conn, id, nv)?;
    }
    for e in &c.events {
        append_event(conn, e)?;
    }
    for e in &c.outbox {
        append_outbox(conn, e)?;
    }
    append_audit(conn, &c.audit)?;
    append_deliveries(conn, &c.deliveries)
}

/// Appends audit records, each chained to the one before it. Runs on the single writer,
/// inside the transaction (and savepoint) of the write that carries them, so the chain's
/// head read here is the one this commit extends, and a rolled-back write takes its
/// records with it.
pub(super) fn append_audit(conn: &Connection, entries: &[AuditEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut prev: Vec<u8> = conn
        .prepare_cached("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
        .map_err(sql_err("prepare audit head"))?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(sql_err("read audit head"))?
        .unwrap_or_else(|| GENESIS.to_vec());
    // The highest seq ever used, deleted or not: a removed tail leaves a gap, not a reuse.
    let mut seq: i64 = conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")
        .map_err(sql_err("prepare audit seq"))?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(sql_err("read audit seq"))?
        .unwrap_or(0);
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO audit (seq, time, event_id, event_type, event_name, region, read_only, \
             access_key_id, resource, error_code, batch_size, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(sql_err("prepare audit insert"))?;
    for e in entries {
        seq += 1;
        let hash = chain_hash(&prev, seq, e);
        insert
            .execute(params![
                seq,
                e.time,
                e.event_id,
                e.event_type,
                e.event_name,
                e.region,
                e.read_only,
                e.access_key_id,
                e.resource,
                e.error_code,
                e.batch,
                e.detail,
                prev,
                hash.as_slice(),
            ])
            .map_err(sql_err("insert audit record"))?;
        prev = hash.to_vec();
    }
    Ok(())
}

/// Queues one replication entry; its id comes from AUTOINCREMENT on the single writer,
/// so ids follow commit order.
fn append_outbox(conn: &Connection, e: &OutboxEntry) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (created_at, kind, source_region, arn, name, target_region, \
         version_ids, attempts, next_attempt_at, last_error, revision) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .map_err(sql_err("prepare outbox insert"))?
    .execute(params![
        e.created_at,
        e.kind.as_str(),
        e.source_region,
        e.arn,
        e.name,
        e.target_region,
        json(&e.version_ids, "encode outbox version ids")?,
        e.attempts,
        e.next_attempt_at,
        e.last_error,
        e.revision,
    ])
    .map_err(sql_err("insert outbox entry"))?;
    Ok(())
}

pub(super) fn complete_outbox(conn: &Connection, ids: &[i64], fence: Option<&Fence>) -> Result<()> {
    check_fence(conn, fence)?;
    let mut stmt = conn
        .prepare_cached("DELETE FROM outbox WHERE id = ?1")
        .map_err(sql_err("prepare outbox delete"))?;
    for id in ids {
        stmt.execute([id]).map_err(sql_err("delete outbox entry"))?;
    }
    Ok(())
}

pub(super) fn defer_outbox(
    conn: &Connection,
    ids: &[i64],
    error: &str,
    next_attempt_at: Millis,
    fence: Option<&Fence>,
) -> Result<()> {
    check_fence(conn, fence)?;
    let mut stmt = conn
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 \
             WHERE id = ?1",
        )
        .map_err(sql_err("prepare outbox defer"))?;
    for id in ids {
        stmt.execute(params![id, error, next_attempt_at])
            .map_err(sql_err("defer outbox entry"))?;
    }
    Ok(())
}

pub(super) fn delete_secret(
    conn: &Connection,
    region: &str,
    arn: &str,
    effects: &Effects,
) -> Result<()> {
    check_fence(conn, effects.fence.as_ref())?;
    // Tags, versions and sealed values go with it (ON DELETE CASCADE).
    conn.prepare_cached("DELETE FROM secrets WHERE region = ?1 AND arn = ?2")
        .map_err(sql_err("prepare secret delete"))?
        .execute(params![region, arn])
        .map_err(sql_err("delete secret"))?;
    write_effects(conn, effects)
}

/// `delete_secret`, if the secret is still scheduled for deletion at `purge_at`.
pub(super) fn purge_secret(
    conn: &Connection,
    region: &str,
    arn: &str,
    purge_at: Millis,
    effects: &Effects,
) -> Result<bool> {
    check_fence(conn, effects.fence.as_ref())?;
    let n = conn
        .prepare_cached("DELETE FROM secrets WHERE region = ?1 AND arn = ?2 AND purge_at = ?3")
        .map_err(sql_err("prepare secret purge"))?
        .execute(params![region, arn, purge_at])
        .map_err(sql_err("purge secret"))?;
    if n > 0 {
        write_effects(conn, effects)?;
    }
    Ok(n > 0)
}

pub(super) fn touch_accessed(
    conn: &Connection,
    arn: &str,
    version_id: &str,
    day: Millis,
) -> Result<()> {
    // Forward only: concurrent readers may report days out of order.
    conn.prepare_cached(
        "UPDATE secrets SET last_accessed_day = ?2 \
         WHERE arn = ?1 AND (last_accessed_day IS NULL OR last_accessed_day < ?2)",
    )
    .map_err(sql_err("prepare secret touch"))?
    .execute(params![arn, day])
    .map_err(sql_err("touch secret"))?;
    conn.prepare_cached(
        "UPDATE versions SET last_accessed_day = ?3 \
         WHERE secret_id = (SELECT id FROM secrets WHERE arn = ?1) AND version_id = ?2 \
           AND (last_accessed_day IS NULL OR last_accessed_day < ?3)",
    )
    .map_err(sql_err("prepare version touch"))?
    .execute(params![arn, version_id, day])
    .map_err(sql_err("touch version"))?;
    Ok(())
}

pub(super) fn put_access_key(conn: &Connection, k: &AccessKeyRecord) -> Result<()> {
    let owner = k.owner.as_ref();
    conn.prepare_cached(
        "INSERT INTO access_keys (access_key_id, sealed_secret, description, created_at, enabled, \
         scope, owner_account, owner_user) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (access_key_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
         description = excluded.description, created_at = excluded.created_at, \
         enabled = excluded.enabled, scope = excluded.scope, \
         owner_account = excluded.owner_account, owner_user = excluded.owner_user",
    )
    .map_err(sql_err("prepare access key upsert"))?
    .execute(params![
        k.access_key_id,
        k.sealed_secret,
        k.description,
        k.created_at,
        k.enabled,
        k.scope.as_str(),
        owner.map(|o| &o.account),
        owner.map(|o| &o.user),
    ])
    .map_err(sql_err("put access key"))?;
    Ok(())
}

pub(super) fn delete_access_key(conn: &Connection, id: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM access_keys WHERE access_key_id = ?1")
        .map_err(sql_err("prepare access key delete"))?
        .execute([id])
        .map_err(sql_err("delete access key"))?;
    Ok(n > 0)
}

/// Creates (`NameTaken` if the key exists) or replaces (`NotFound` if it does not, and
/// `created_at` is kept) one IAM entity.
pub(super) fn put_iam(conn: &Connection, r: &IamRecord, replaces: Option<Millis>) -> Result<()> {
    let n = if replaces.is_none() {
        // DO NOTHING on the key alone: a taken name is told by the row count, not by
        // parsing a constraint message.
        conn.prepare_cached(
            "INSERT INTO iam_entities (account, kind, name, document, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (account, kind, name) DO NOTHING",
        )
        .map_err(sql_err("prepare iam insert"))?
        .execute(params![
            r.account,
            r.kind.as_str(),
            r.name,
            r.document,
            r.created_at,
            r.updated_at
        ])
        .map_err(sql_err("insert iam entity"))?
    } else {
        conn.prepare_cached(
            "UPDATE iam_entities SET document = ?4, updated_at = ?5 \
             WHERE account = ?1 AND kind = ?2 AND name = ?3 AND updated_at = ?6",
        )
        .map_err(sql_err("prepare iam update"))?
        .execute(params![
            r.account,
            r.kind.as_str(),
            r.name,
            r.document,
            r.updated_at,
            replaces
        ])
        .map_err(sql_err("update iam entity"))?
    };
    match (n, replaces) {
        (0, None) => Err(StoreError::NameTaken),
        (0, Some(_)) => {
            // Missing, or changed since it was read.
            let exists: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM iam_entities \
                     WHERE account = ?1 AND kind = ?2 AND name = ?3)",
                )
                .map_err(sql_err("prepare iam exists"))?
                .query_row(params![r.account, r.kind.as_str(), r.name], |row| {
                    row.get(0)
                })
                .map_err(sql_err("iam exists"))?;
            Err(if exists {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            })
        }
        _ => Ok(()),
    }
}

pub(super) fn delete_iam(
    conn: &Connection,
    account: &str,
    kind: IamKind,
    name: &str,
) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM iam_entities WHERE account = ?1 AND kind = ?2 AND name = ?3")
        .map_err(sql_err("prepare iam delete"))?
        .execute(params![account, kind.as_str(), name])
        .map_err(sql_err("delete iam entity"))?;
    Ok(n > 0)
}

pub(super) fn put_encryption_key(conn: &Connection, k: &EncryptionKeyRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO encryption_keys (key_id, alias, region, wrapped, created_at, policy) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (key_id) DO UPDATE SET alias = excluded.alias, region = excluded.region, \
         wrapped = excluded.wrapped, created_at = excluded.created_at, \
         policy = excluded.policy",
    )
    .map_err(sql_err("prepare encryption key upsert"))?
    .execute(params![
        k.key_id,
        k.alias,
        k.region,
        k.wrapped,
        k.created_at,
        k.policy
    ])
    .map_err(sql_err("put encryption key"))?;
    Ok(())
}

/// Returns the new event's id. Ids come from AUTOINCREMENT on the single writer, so they
/// are assigned and committed in order and never reused (not even after a wipe).
pub(super) fn append_event(conn: &Connection, e: &EventRecord) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO events (time, name, region, secret_arn, version_id, step, error, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(sql_err("prepare event insert"))?
    .execute(params![
        e.time,
        e.name,
        e.region,
        e.secret_arn,
        e.version_id,
        e.step,
        e.error,
        json(&e.detail, "encode event detail")?,
    ])
    .map_err(sql_err("insert event"))?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn put_rotation_function(conn: &Connection, f: &RotationFunctionRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rotation_functions (arn, spec, sealed_secret, created_at) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (arn) DO UPDATE SET spec = excluded.spec, \
         sealed_secret = excluded.sealed_secret, created_at = excluded.created_at",
    )
    .map_err(sql_err("prepare rotation function upsert"))?
    .execute(params![
        f.arn,
        json(&f.spec, "encode rotation function spec")?,
        f.sealed_secret,
        f.created_at
    ])
    .map_err(sql_err("put rotation function"))?;
    Ok(())
}

pub(super) fn delete_rotation_function(conn: &Connection, arn: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM rotation_functions WHERE arn = ?1")
        .map_err(sql_err("prepare rotation function delete"))?
        .execute([arn])
        .map_err(sql_err("delete rotation function"))?;
    Ok(())
}

pub(super) fn put_sync_job(conn: &Connection, j: &arca_store::SyncJobRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_jobs (name, spec, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at",
    )
    .map_err(sql_err("prepare sync job upsert"))?
    .execute(params![
        j.name,
        json(&j.spec, "encode sync job spec")?,
        j.created_at
    ])
    .map_err(sql_err("put sync job"))?;
    Ok(())
}

pub(super) fn delete_sync_job(conn: &Connection, name: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM sync_jobs WHERE name = ?1")
        .map_err(sql_err("prepare sync job delete"))?
        .execute([name])
        .map_err(sql_err("delete sync job"))?;
    Ok(n > 0)
}

/// Everything but keys, IAM entities and rotation-function bindings (operator
/// configuration).
pub(super) fn wipe_secrets(conn: &Connection) -> Result<()> {
    // Children first: deleting them directly is much cheaper than cascading per row.
    // The events' AUTOINCREMENT counter (in sqlite_sequence) survives, so ids are not reused.
    conn.execute_batch(
        "DELETE FROM sealed_values; DELETE FROM tags; DELETE FROM versions; DELETE FROM secrets; \
         DELETE FROM events; DELETE FROM outbox; DELETE FROM deliveries;",
    )
    .map_err(sql_err("wipe secrets"))
}

/// Queues deliveries; seq from AUTOINCREMENT on the single writer follows commit order.
pub(super) fn append_deliveries(conn: &Connection, deliveries: &[NewDelivery]) -> Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO deliveries (region, rule, target_id, event_id, event, created_at, \
             next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )
        .map_err(sql_err("prepare delivery insert"))?;
    for d in deliveries {
        insert
            .execute(params![
                d.region,
                d.rule,
                d.target_id,
                d.event_id,
                d.event,
                d.created_at
            ])
            .map_err(sql_err("insert delivery"))?;
    }
    Ok(())
}

pub(super) fn put_rule(conn: &Connection, r: &RuleRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rules (region, name, pattern, state, description, managed_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (region, name) DO UPDATE SET pattern = excluded.pattern, \
         state = excluded.state, description = excluded.description, \
         managed_by = excluded.managed_by",
    )
    .map_err(sql_err("prepare rule upsert"))?
    .execute(params![
        r.region,
        r.name,
        r.pattern,
        r.state,
        r.description,
        r.managed_by,
        r.created_at
    ])
    .map_err(sql_err("upsert rule"))?;
    Ok(())
}

pub(super) fn delete_rule(conn: &Connection, region: &str, name: &str) -> Result<bool> {
    // Targets go with the rule (ON DELETE CASCADE); its pending deliveries are owed to
    // nobody now, its dead letters stay for the operator.
    conn.prepare_cached(
        "DELETE FROM deliveries WHERE region = ?1 AND rule = ?2 AND state = 'pending'",
    )
    .map_err(sql_err("prepare rule deliveries delete"))?
    .execute(params![region, name])
    .map_err(sql_err("delete rule deliveries"))?;
    let n = conn
        .prepare_cached("DELETE FROM rules WHERE region = ?1 AND name = ?2")
        .map_err(sql_err("prepare rule delete"))?
        .execute(params![region, name])
        .map_err(sql_err("delete rule"))?;
    Ok(n > 0)
}

pub(super) fn put_targets(conn: &Connection, targets: &[TargetRecord]) -> Result<()> {
    let mut exists = conn
        .prepare_cached("SELECT 1 FROM rules WHERE region = ?1 AND name = ?2")
        .map_err(sql_err("prepare rule check"))?;
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO targets (region, rule, id, arn, input, input_path, max_retries, \
             max_age_secs, options) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (region, rule, id) DO UPDATE SET arn = excluded.arn, \
             input = excluded.input, input_path = excluded.input_path, \
             max_retries = excluded.max_retries, max_age_secs = excluded.max_age_secs, \
             options = excluded.options",
        )
        .map_err(sql_err("prepare target upsert"))?;
    for t in targets {
        if !exists
            .exists(params![t.region, t.rule])
            .map_err(sql_err("check rule"))?
        {
            return Err(StoreError::NotFound);
        }
        upsert
            .execute(params![
                t.region,
                t.rule,
                t.id,
                t.arn,
                t.input,
                t.input_path,
                t.max_retries,
                t.max_age_secs,
                t.options
            ])
            .map_err(sql_err("upsert target"))?;
    }
    Ok(())
}

pub(super) fn remove_targets(
    conn: &Connection,
    region: &str,
    rule: &str,
    ids: &[String],
) -> Result<()> {
    let mut del = conn
        .prepare_cached("DELETE FROM targets WHERE region = ?1 AND rule = ?2 AND id = ?3")
        .map_err(sql_err("prepare target delete"))?;
    let mut owed = conn
        .prepare_cached(
            "DELETE FROM deliveries WHERE region = ?1 AND rule = ?2 AND target_id = ?3 \
             AND state = 'pending'",
        )
        .map_err(sql_err("prepare target deliveries delete"))?;
    for id in ids {
        del.execute(params![region, rule, id])
            .map_err(sql_err("delete target"))?;
        owed.execute(params![region, rule, id])
            .map_err(sql_err("delete target deliveries"))?;
    }
    Ok(())
}

pub(super) fn finish_delivery(
    conn: &Connection,
    seq: i64,
    outcome: &DeliveryOutcome,
    audit: &[AuditEntry],
    fence: Option<&Fence>,
) -> Result<()> {
    check_fence(conn, fence)?;
    let n = match outcome {
        DeliveryOutcome::Delivered => conn
            .prepare_cached("DELETE FROM deliveries WHERE seq = ?1 AND state = 'pending'")
            .map_err(sql_err("prepare delivery delete"))?
            .execute([seq])
            .map_err(sql_err("delete delivery"))?,
        DeliveryOutcome::Retry {
            error,
            next_attempt_at,
        } => conn
            .prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, \
                 next_attempt_at = ?3 WHERE seq = ?1 AND state = 'pending'",
            )
            .map_err(sql_err("prepare delivery retry"))?
            .execute(params![seq, error, next_attempt_at])
            .map_err(sql_err("defer delivery"))?,
        DeliveryOutcome::Dead { error } => conn
            .prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, state = 'dead' \
                 WHERE seq = ?1 AND state = 'pending'",
            )
            .map_err(sql_err("prepare delivery dead-letter"))?
            .execute(params![seq, error])
            .map_err(sql_err("dead-letter delivery"))?,
    };
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    append_audit(conn, audit)
}

pub(super) fn replay_delivery(conn: &Connection, seq: i64, now: Millis) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?2 \
             WHERE seq = ?1 AND state = 'dead'",
        )
        .map_err(sql_err("prepare delivery replay"))?
        .execute(params![seq, now])
        .map_err(sql_err("replay delivery"))?;
    Ok(n > 0)
}
