//! Group commit of secret writes: API writes (new secrets and changes to existing ones)
//! that arrive while others are in flight share one transaction, with one statement per
//! table for all of them, instead of a transaction and six or seven statements each.
//!
//! Why: on PostgreSQL most of a small write's cost is per statement (protocol, executor
//! start, plan checks) and per transaction (commit, WAL flush), not per row, so sixteen
//! concurrent PutSecretValue calls cost little more in one transaction than one does.
//! A batch is all or nothing: if any write in it does not apply (its revision moved, its
//! secret is gone, a version to restage is missing, its name is taken, a constraint
//! refuses it), the batch is rolled back and each write runs again in its own transaction,
//! which gives it exactly the outcome and error it would have had alone. Background jobs' fenced writes never
//! join a batch. A change is acknowledged only after the batch's commit.
//!
//! Batching needs no waiting: a runner takes one change, then whatever else is already
//! queued (up to `MAX_BATCH`), so a lone writer's change goes out at once, alone.

use arca_store::{Effects, NewVersion, Result, SecretChange, SecretRecord, StoreError};
use futures_util::future::{join, join_all};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

use crate::error::{pg, Fail};
use crate::write::{self, WResult};
use crate::Db;

/// Changes per shared transaction.
const MAX_BATCH: usize = 32;

/// Changes waiting for the runner.
const QUEUE: usize = 1024;

/// A write the batcher commits.
pub(crate) enum Write {
    /// A change to an existing secret, under its revision check.
    Update(SecretChange),
    /// A new secret with its first versions and the durable work its creation causes.
    Create {
        secret: SecretRecord,
        versions: Vec<NewVersion>,
        effects: Effects,
    },
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<()>>,
}

/// Where `PostgresStore::update_secret` sends unfenced changes.
pub(crate) struct Batcher {
    queue: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the runner: one batch at a time. (Two runners, each batch's statements in
    /// their own backend, measured slower: concurrent batches write the same index pages
    /// and each ran slower than one alone, and batches came out smaller.) It stops when
    /// the batcher is dropped.
    pub(crate) fn start(db: Db) -> Batcher {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(runner(db, rx));
        Batcher { queue }
    }

    /// Applies `write`, alone or with others; returns once it is committed.
    pub(crate) async fn write(&self, write: Write) -> Result<()> {
        let (reply, outcome) = oneshot::channel();
        let stopped = || StoreError::Backend("the write batcher has stopped".to_owned());
        self.queue
            .send(Job { write, reply })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

async fn runner(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        run(&db, jobs).await;
    }
}

/// Commits `jobs` together, or one by one if they cannot all apply, and answers each.
async fn run(db: &Db, jobs: Vec<Job>) {
    let writes: Vec<&Write> = jobs.iter().map(|j| &j.write).collect();
    match together(db, &writes).await {
        Outcome::Committed => {
            // One wake of the sequencer for the batch, if it left any log rows.
            db.after_write(
                updates(&writes).any(write::change_ordered)
                    || creates(&writes).any(|(_, _, e)| write::effects_ordered(e)),
            );
            creates(&writes).for_each(|_| db.after_create());
            for j in jobs {
                let _ = j.reply.send(Ok(()));
            }
            return;
        }
        // The COMMIT itself failed: whether it took effect is unknown (a connection lost
        // after the commit), so replaying the writes could apply them twice or refuse
        // ones that did commit. Each caller gets the error, as a lone write would.
        Outcome::CommitFailed(e) => {
            let e = e.into_store().to_string();
            for j in jobs {
                let _ = j.reply.send(Err(StoreError::Backend(e.clone())));
            }
            return;
        }
        Outcome::RolledBack(None) => {}
        // A failure of the batch as such (the connection, a constraint that one of the
        // writes breaks): each write alone says which, if any, is refused.
        Outcome::RolledBack(Some(e)) => tracing::debug!(
            error = %e.into_store(),
            "a batch of writes failed; retrying them one by one"
        ),
    }
    join_all(jobs.into_iter().map(|j| async move {
        let out = match &j.write {
            Write::Update(change) => db.update_alone(change).await,
            Write::Create {
                secret,
                versions,
                effects,
            } => db.create_alone(secret, versions, effects).await,
        };
        let _ = j.reply.send(out);
    }))
    .await;
}

/// How a batch ended.
enum Outcome {
    Committed,
    /// Rolled back before its commit: a write did not apply (`None`) or a statement failed.
    RolledBack(Option<Fail>),
    /// The commit was sent and failed: nothing is known of its effect.
    CommitFailed(Fail),
}

/// One transaction for all of `ws`.
///
/// Two round trips whatever the batch holds: BEGIN with every statement, pipelined in
/// order; then COMMIT or ROLLBACK. Statements find a secret's row by ARN (not by an id
/// read back first) so that none waits for another's answer; each runs even if an earlier
/// one did not apply, and then the whole transaction is rolled back. The connection is
/// never handed back inside the transaction: every path after BEGIN ends it.
async fn together(db: &Db, ws: &[&Write]) -> Outcome {
    let stmts = match statements(ws) {
        Ok(s) => s,
        Err(f) => return Outcome::RolledBack(Some(f)),
    };
    // The log rows in batch order.
    let (mut events, mut outbox, mut audit, mut deliveries) = (vec![], vec![], vec![], vec![]);
    for w in ws {
        match w {
            Write::Update(c) => {
                events.extend(c.events.iter().cloned());
                outbox.extend(c.outbox.iter().cloned());
                audit.extend(c.audit.iter().cloned());
                deliveries.extend(c.deliveries.iter().cloned());
            }
            Write::Create { effects: e, .. } => {
                outbox.extend(e.outbox.iter().cloned());
                audit.extend(e.audit.iter().cloned());
                deliveries.extend(e.deliveries.iter().cloned());
            }
        }
    }
    let client = match db.client().await {
        Ok(c) => c,
        Err(e) => return Outcome::RolledBack(Some(Fail::Store(e))),
    };
    // Prepared first (cached per connection after the first batch), so that each
    // statement below is sent when first polled, in this order, right after BEGIN.
    let prepared = join_all(stmts.iter().map(|s| client.prepare_cached(s.sql))).await;
    let prepared = match prepared
        .into_iter()
        .zip(&stmts)
        .map(|(p, s)| p.map_err(pg(s.what)))
        .collect::<WResult<Vec<_>>>()
    {
        Ok(p) => p,
        Err(f) => return Outcome::RolledBack(Some(f)),
    };
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = stmts
        .iter()
        .map(|s| {
            s.params
                .iter()
                .map(|p| &**p as &(dyn ToSql + Sync))
                .collect()
        })
        .collect();
    // The statements' shapes never change, and PostgreSQL's default would plan each one
    // again for every batch (its custom plans look cheaper for arrays of unknown length).
    let begin = client.batch_execute("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan");
    let runs = join_all(
        prepared
            .iter()
            .zip(&params)
            .map(|(stmt, params)| client.execute(stmt, params)),
    );
    // The logs depend on nothing above and nothing depends on them.
    let logs = async {
        write::append_events(&client, &events).await?;
        write::append_outbox(&client, &outbox).await?;
        write::append_audit(&client, &audit).await?;
        write::append_deliveries(&client, &deliveries).await
    };
    let (begun, (runs, logs)) = join(begin, join(runs, logs)).await;
    let mut applies = true;
    let mut results = vec![begun.map_err(pg("begin"))];
    for (r, s) in runs.into_iter().zip(&stmts) {
        match r {
            Ok(n) => applies &= s.expect.is_none_or(|e| e == n),
            Err(e) => results.push(Err(Fail::Pg(s.what, e))),
        }
    }
    results.push(logs.map(|_| ()));
    let failed = write::first_cause(results).err();
    if failed.is_none() && applies {
        return match client.batch_execute("COMMIT").await {
            Ok(()) => Outcome::Committed,
            Err(e) => Outcome::CommitFailed(Fail::Pg("commit", e)),
        };
    }
    if client.batch_execute("ROLLBACK").await.is_err() {
        // Not known to be outside the transaction: never reuse this connection.
        drop(deadpool_postgres::Object::take(client));
    }
    Outcome::RolledBack(failed)
}

/// The batch's changes to existing secrets, in order.
fn updates<'a>(ws: &'a [&'a Write]) -> impl Iterator<Item = &'a SecretChange> + 'a {
    ws.iter().filter_map(|w| match w {
        Write::Update(c) => Some(c),
        Write::Create { .. } => None,
    })
}

/// The batch's new secrets, in order.
fn creates<'a>(
    ws: &'a [&'a Write],
) -> impl Iterator<Item = (&'a SecretRecord, &'a [NewVersion], &'a Effects)> + 'a {
    ws.iter().filter_map(|w| match w {
        Write::Create {
            secret,
            versions,
            effects,
        } => Some((secret, versions.as_slice(), effects)),
        Write::Update(_) => None,
    })
}

type Param = Box<dyn ToSql + Sync + Send>;

/// One statement of a batch, its parameters encoded before anything is sent.
struct Stmt {
    sql: &'static str,
    params: Vec<Param>,
    /// The row count that means every change applied, where one may not.
    expect: Option<u64>,
    what: &'static str,
}

fn boxed<T: ToSql + Sync + Send + 'static>(v: T) -> Param {
    Box::new(v)
}

/// One column of the batch's rows, owned, as an array parameter.
fn column<R, T: ToSql + Sync + Send + 'static>(rows: &[R], f: impl Fn(&R) -> T) -> Param {
    boxed(rows.iter().map(f).collect::<Vec<T>>())
}

/// Stage lists (and key id lists) travel as JSON arrays, one text per row: PostgreSQL
/// arrays of arrays must be rectangular.
fn text_list(items: &[String], what: &'static str) -> WResult<String> {
    write::json(&items, what)
}

/// The batch's statements in the order they must run: the secret rows (which takes their
/// locks and checks their revisions), tags, then versions (removals before restaging
/// before insertions, as one change alone does).
fn statements(ws: &[&Write]) -> WResult<Vec<Stmt>> {
    let mut out = Vec::new();
    let news: Vec<&SecretRecord> = creates(ws).map(|(s, _, _)| s).collect();
    if !news.is_empty() {
        out.push(insert_secrets(&news)?);
    }
    let cs: Vec<&SecretChange> = updates(ws).collect();
    if !cs.is_empty() {
        out.extend(update_secrets(&cs)?);
    }
    // Every write's tags and new versions, in batch order.
    let tags = ws.iter().map(|w| match w {
        Write::Update(c) => (c.secret.arn.as_str(), c.secret.tags.as_slice()),
        Write::Create { secret, .. } => (secret.arn.as_str(), secret.tags.as_slice()),
    });
    let (mut arn, mut position, mut key, mut value) = (vec![], vec![], vec![], vec![]);
    for (a, tags) in tags {
        for (i, (k, v)) in tags.iter().enumerate() {
            arn.push(a.to_owned());
            position.push(i as i32);
            key.push(k.clone());
            value.push(v.clone());
        }
    }
    if !arn.is_empty() {
        out.push(Stmt {
            sql: "INSERT INTO tags (secret_id, position, key, value) \
                  SELECT s.id, d.position, d.key, d.value \
                  FROM unnest($1::text[], $2::int[], $3::text[], $4::text[]) \
                  AS d(arn, position, key, value) JOIN secrets s ON s.arn = d.arn",
            params: vec![boxed(arn), boxed(position), boxed(key), boxed(value)],
            expect: None,
            what: "insert tags",
        });
    }
    out.extend(version_statements(ws, &cs)?);
    Ok(out)
}

/// The new secrets' rows, with their change notices (revision 1).
fn insert_secrets(news: &[&SecretRecord]) -> WResult<Stmt> {
    let extra = news
        .iter()
        .map(|s| write::json(&s.extra, "encode extra"))
        .collect::<WResult<Vec<String>>>()?;
    Ok(Stmt {
        sql: INSERT_SECRETS,
        params: vec![
            column(news, |s| s.region.clone()),
            column(news, |s| s.arn.clone()),
            column(news, |s| s.name.clone()),
            column(news, |s| s.description.clone()),
            column(news, |s| s.kms_key_id.clone()),
            column(news, |s| s.secret_type.clone()),
            column(news, |s| s.owning_service.clone()),
            column(news, |s| s.primary_region.clone()),
            column(news, |s| s.created_at),
            column(news, |s| s.last_changed_at),
            column(news, |s| s.last_accessed_day),
            column(news, |s| s.deleted_at),
            column(news, |s| s.purge_at),
            boxed(extra),
            column(news, |s| s.rotation_due_at),
        ],
        // A name taken fails the statement (unique constraint), which fails the batch.
        expect: Some(news.len() as u64),
        what: "insert secrets",
    })
}

/// The changed secrets' rows under their revision checks, then the removal of their tags
/// (the tag insert that follows writes every batch member's tags).
fn update_secrets(cs: &[&SecretChange]) -> WResult<Vec<Stmt>> {
    let extra = cs
        .iter()
        .map(|c| write::json(&c.secret.extra, "encode extra"))
        .collect::<WResult<Vec<String>>>()?;
    let mut out = vec![Stmt {
        sql: UPDATE_SECRETS,
        params: vec![
            column(cs, |c| c.secret.region.clone()),
            column(cs, |c| c.secret.arn.clone()),
            column(cs, |c| c.secret.name.clone()),
            column(cs, |c| c.secret.description.clone()),
            column(cs, |c| c.secret.kms_key_id.clone()),
            column(cs, |c| c.secret.secret_type.clone()),
            column(cs, |c| c.secret.owning_service.clone()),
            column(cs, |c| c.secret.primary_region.clone()),
            column(cs, |c| c.secret.created_at),
            column(cs, |c| c.secret.last_changed_at),
            column(cs, |c| c.secret.last_accessed_day),
            column(cs, |c| c.secret.deleted_at),
            column(cs, |c| c.secret.purge_at),
            boxed(extra),
            column(cs, |c| c.expected_revision),
            column(cs, |c| c.secret.rotation_due_at),
        ],
        // A change whose row did not match (or two changes to one row: an UPDATE joins
        // each row once) leaves the count short.
        expect: Some(cs.len() as u64),
        what: "update secrets",
    }];
    out.push(Stmt {
        sql: "DELETE FROM tags WHERE secret_id IN (SELECT id FROM secrets WHERE arn = ANY($1))",
        params: vec![column(cs, |c| c.secret.arn.clone())],
        expect: None,
        what: "delete tags",
    });
    Ok(out)
}

/// Version removals and label moves of the changes, then every write's new versions.
fn version_statements(ws: &[&Write], cs: &[&SecretChange]) -> WResult<Vec<Stmt>> {
    let mut out = Vec::new();
    let (mut arn, mut version) = (vec![], vec![]);
    for c in cs {
        for v in &c.removed_versions {
            arn.push(c.secret.arn.clone());
            version.push(v.clone());
        }
    }
    if !arn.is_empty() {
        out.push(Stmt {
            sql: "DELETE FROM versions v USING unnest($1::text[], $2::text[]) \
                  AS d(arn, version_id), secrets s \
                  WHERE s.arn = d.arn AND v.secret_id = s.id AND v.version_id = d.version_id",
            params: vec![boxed(arn), boxed(version)],
            expect: None,
            what: "delete versions",
        });
    }
    let (mut arn, mut version, mut stages) = (vec![], vec![], vec![]);
    for c in cs {
        for (v, s) in &c.restaged {
            arn.push(c.secret.arn.clone());
            version.push(v.clone());
            stages.push(text_list(s, "encode stages")?);
        }
    }
    if !arn.is_empty() {
        out.push(Stmt {
            sql: "UPDATE versions v \
                  SET stages = ARRAY(SELECT json_array_elements_text(d.stages::json)) \
                  FROM unnest($1::text[], $2::text[], $3::text[]) AS d(arn, version_id, stages), \
                  secrets s \
                  WHERE s.arn = d.arn AND v.secret_id = s.id AND v.version_id = d.version_id",
            // Restaging a version that does not exist would silently lose a label move.
            expect: Some(arn.len() as u64),
            params: vec![boxed(arn), boxed(version), boxed(stages)],
            what: "restage versions",
        });
    }
    let new: Vec<(&str, &NewVersion)> = ws
        .iter()
        .flat_map(|w| {
            let (arn, versions) = match w {
                Write::Update(c) => (c.secret.arn.as_str(), c.new_versions.as_slice()),
                Write::Create {
                    secret, versions, ..
                } => (secret.arn.as_str(), versions.as_slice()),
            };
            versions.iter().map(move |nv| (arn, nv))
        })
        .collect();
    if !new.is_empty() {
        let list = |f: fn(&arca_store::VersionRecord) -> &Vec<String>, what| {
            new.iter()
                .map(|(_, nv)| text_list(f(&nv.version), what))
                .collect::<WResult<Vec<String>>>()
        };
        out.push(Stmt {
            sql: INSERT_VERSIONS,
            params: vec![
                column(&new, |(a, _)| a.to_string()),
                column(&new, |(_, nv)| nv.version.version_id.clone()),
                boxed(list(|v| &v.stages, "encode stages")?),
                column(&new, |(_, nv)| nv.version.created_at),
                column(&new, |(_, nv)| nv.version.last_accessed_day),
                boxed(list(|v| &v.kms_key_ids, "encode key ids")?),
                column(&new, |(_, nv)| nv.version.value_digest.clone()),
                column(&new, |(_, nv)| nv.version.has_value),
                column(&new, |(_, nv)| nv.sealed.0.clone()),
            ],
            expect: None,
            what: "insert versions",
        });
    }
    Ok(out)
}

/// New secret rows in batch order, with their change notices (queued for the commit); one
/// row back per row inserted.
const INSERT_SECRETS: &str = "WITH d AS (SELECT * FROM unnest($1::text[], $2::text[], \
     $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], \
     $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[], $15::bigint[]) \
     WITH ORDINALITY AS d(region, arn, name, description, kms_key_id, secret_type, \
     owning_service, primary_region, created_at, last_changed_at, last_accessed_day, \
     deleted_at, purge_at, extra, rotation_due_at, n)), \
     i AS (INSERT INTO secrets (region, arn, name, description, kms_key_id, secret_type, \
     owning_service, primary_region, created_at, last_changed_at, last_accessed_day, \
     deleted_at, purge_at, extra, rotation_due_at, revision) \
     SELECT region, arn, name, description, kms_key_id, secret_type, owning_service, \
     primary_region, created_at, last_changed_at, last_accessed_day, deleted_at, purge_at, \
     extra::json, rotation_due_at, 1 FROM d ORDER BY n RETURNING arn) \
     SELECT arca_notify('s 1 ' || arn) FROM i";

/// Every secret row under its revision check, with its change notice (queued for the
/// commit); one row back per row updated.
const UPDATE_SECRETS: &str = "WITH d AS (SELECT * FROM unnest($1::text[], $2::text[], \
     $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], \
     $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[], $15::bigint[], \
     $16::bigint[]) AS d(region, arn, name, description, kms_key_id, secret_type, \
     owning_service, primary_region, created_at, last_changed_at, last_accessed_day, \
     deleted_at, purge_at, extra, expected, rotation_due_at)), \
     u AS (UPDATE secrets s SET name = d.name, description = d.description, \
     kms_key_id = d.kms_key_id, secret_type = d.secret_type, \
     owning_service = d.owning_service, primary_region = d.primary_region, \
     created_at = d.created_at, last_changed_at = d.last_changed_at, \
     last_accessed_day = greatest(s.last_accessed_day, d.last_accessed_day), \
     deleted_at = d.deleted_at, purge_at = d.purge_at, extra = d.extra::json, \
     rotation_due_at = d.rotation_due_at, revision = s.revision + 1 \
     FROM d WHERE s.region = d.region AND s.arn = d.arn AND s.revision = d.expected \
     RETURNING s.revision, s.arn) \
     SELECT arca_notify('s ' || revision || ' ' || arn) FROM u";

/// New versions with their sealed values; WITH ORDINALITY and ORDER BY keep the batch's
/// order in the row ids, which order a secret's versions.
const INSERT_VERSIONS: &str = "WITH d AS (SELECT x.*, s.id AS secret_id FROM \
     unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], \
     $7::bytea[], $8::bool[], $9::bytea[]) WITH ORDINALITY AS x(arn, version_id, stages, \
     created_at, last_accessed_day, kms_key_ids, value_digest, has_value, sealed, n) \
     JOIN secrets s ON s.arn = x.arn), \
     v AS (INSERT INTO versions (secret_id, version_id, stages, created_at, \
     last_accessed_day, kms_key_ids, value_digest, has_value) \
     SELECT secret_id, version_id, ARRAY(SELECT json_array_elements_text(stages::json)), \
     created_at, last_accessed_day, ARRAY(SELECT json_array_elements_text(kms_key_ids::json)), \
     value_digest, has_value FROM d ORDER BY n RETURNING id, secret_id, version_id) \
     INSERT INTO sealed_values (version_row, sealed) \
     SELECT v.id, d.sealed FROM v JOIN d USING (secret_id, version_id)";
