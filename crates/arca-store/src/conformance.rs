//! The one behavioural test suite every `Store` backend must pass.
//!
//! Each case is a public async function taking a fresh, empty store; the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro expands them into
//! one `#[tokio::test]` per case for a backend, so a failure names the broken behaviour.
//! Nothing here may depend on a particular backend: only the `Store` trait is used.
//!
//! The cases panic (assert) on failure; they are test code compiled into the library so
//! that backends in other places can run them too.

use arca_types::time::{Millis, MILLIS_PER_DAY};

use crate::{
    AccessKeyRecord, AccessTouch, AuditEntry, AuditQuery, AuditRecord, ChainBreak, ChainWalk,
    CursorValue, DeliveryOutcome, DeliveryRecord, DeliveryState, Effects, EncryptionKeyRecord,
    EventQuery, EventRecord, IamKind, IamRecord, KeyOwner, KeyScope, ListCursor, ListQuery,
    NewDelivery, NewVersion, OutboxEntry, OutboxKind, PurgeDue, ReadBatch, RotationFunctionRecord,
    RuleRecord, SealedValue, SecretChange, SecretKey, SecretRecord, SortBy, Store, StoreError,
    SyncJobRecord, TargetRecord, VersionRecord, GENESIS,
};

/// Expands into one `#[tokio::test]` per conformance case. `$make` is a path to an
/// `async fn() -> (S, G)` returning a fresh empty store and a guard kept alive for the
/// test's duration (e.g. the temporary directory holding the database). The calling
/// crate must depend on `tokio` with the `macros` and `rt` features.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:path) => {
        $crate::store_conformance_tests!(@cases $make;
            create_then_find_by_name_and_arn,
            find_missing_is_none,
            create_sets_revision_to_one,
            name_taken_in_same_region_only,
            name_taken_by_secret_scheduled_for_deletion,
            a_name_created_twice_at_once_is_taken_once,
            writers_racing_one_revision_commit_once,
            writers_racing_one_client_request_token_store_it_once,
            label_moves_racing_on_one_secret_leave_one_holder,
            the_version_limit_holds_under_concurrent_puts,
            update_applies_and_bumps_revision,
            update_with_stale_revision_conflicts_and_applies_nothing,
            update_missing_secret_is_not_found,
            update_versions_add_restage_remove_atomically,
            update_restaging_unknown_version_applies_nothing,
            concurrent_writes_to_many_secrets_each_apply_or_fail_alone,
            concurrent_creates_each_land_whole_or_fail_alone,
            tags_keep_order_and_are_replaced,
            sealed_value_round_trip,
            find_with_current_is_find_plus_the_current_value,
            touch_accessed_does_not_bump_revision,
            touch_accessed_never_moves_back,
            touch_accessed_applies_a_whole_batch,
            a_read_batch_commits_records_deliveries_and_touches_together,
            update_does_not_roll_back_access_date,
            delete_removes_versions_and_values,
            list_orders_by_every_sort_with_arn_tie_break,
            list_pages_return_each_secret_once_while_secrets_change,
            list_excludes_planned_deletion_unless_asked,
            list_is_scoped_to_region,
            list_name_prefix_hint_does_not_change_results,
            list_predicate_filters_with_limit,
            list_returns_labelled_versions_only,
            list_records_are_complete,
            due_for_purge_finds_due_secrets_across_regions,
            purge_deletes_only_what_is_still_due,
            restore_racing_the_purge_has_one_outcome,
            rotation_due_at_round_trips_through_create_and_update,
            due_for_rotation_finds_due_secrets_in_order_across_regions,
            due_for_rotation_forgets_cleared_and_postponed_secrets,
            events_get_increasing_ids_and_round_trip,
            update_appends_its_events_only_when_it_commits,
            outbox_entries_commit_with_their_change_only,
            outbox_is_due_in_id_order_deferred_and_completed,
            create_with_outbox_queues_in_the_same_transaction,
            audit_records_chain_in_append_order,
            audit_records_of_a_write_commit_with_it_only,
            audit_lists_filter_and_page_both_ways,
            rules_and_targets_upsert_list_delete,
            deliveries_commit_with_their_write_only,
            deliveries_are_due_one_at_a_time_per_target_in_order,
            events_list_after_id_with_limit_and_secret_filter,
            events_are_all_listed_after_many_appends,
            wipe_secrets_removes_events_without_reusing_ids,
            rotation_functions_upsert_list_delete,
            sync_jobs_upsert_list_delete,
            access_keys_round_trip,
            iam_entities_round_trip,
            encryption_keys_round_trip,
            wipe_secrets_keeps_keys,
            a_lease_is_exclusive_renewed_taken_over_and_released,
            a_write_fenced_by_a_lost_lease_commits_nothing,
            a_shared_clock_tells_the_time,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let (store, _guard) = $make().await;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

// ----- fixtures -----

const T0: Millis = 1_700_000_000_000;
const R1: &str = "us-east-1";
const R2: &str = "eu-west-1";

/// A plausible ARN: region, name and a suffix, as AWS builds them.
pub fn arn(region: &str, name: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:123456789012:secret:{name}-AbCdEf")
}

/// A minimal secret with no tags or versions.
pub fn secret(region: &str, name: &str, created_at: Millis) -> SecretRecord {
    SecretRecord {
        region: region.to_owned(),
        arn: arn(region, name),
        name: name.to_owned(),
        description: None,
        kms_key_id: None,
        secret_type: None,
        owning_service: None,
        primary_region: None,
        created_at,
        last_changed_at: created_at,
        last_accessed_day: None,
        deleted_at: None,
        purge_at: None,
        rotation_due_at: None,
        extra: serde_json::json!({}),
        tags: Vec::new(),
        versions: Vec::new(),
        revision: 1,
    }
}

/// A version with a value whose sealed bytes name the version (recognizable in a file).
pub fn version(id: &str, stages: &[&str], created_at: Millis) -> NewVersion {
    NewVersion {
        version: VersionRecord {
            version_id: id.to_owned(),
            stages: stages.iter().map(|s| (*s).to_owned()).collect(),
            created_at,
            last_accessed_day: None,
            kms_key_ids: vec!["DEFAULT".to_owned()],
            value_digest: vec![0xd1, 0x6e, id.len() as u8],
            has_value: true,
        },
        sealed: SealedValue(format!("sealed-bytes-of-{id}").into_bytes()),
    }
}

/// A change that rewrites `current` as it is (callers edit it), at its revision.
pub fn change(current: &SecretRecord) -> SecretChange {
    SecretChange {
        secret: current.clone(),
        expected_revision: current.revision,
        new_versions: Vec::new(),
        restaged: Vec::new(),
        removed_versions: Vec::new(),
        events: Vec::new(),
        outbox: Vec::new(),
        audit: Vec::new(),
        deliveries: Vec::new(),
        fence: None,
    }
}

fn query(sort_by: SortBy, descending: bool, limit: usize) -> ListQuery {
    ListQuery {
        sort_by,
        descending,
        after: None,
        limit,
        include_planned_deletion: false,
        name_prefixes: None,
    }
}

fn all(_: &SecretRecord) -> bool {
    true
}

/// The cursor a caller builds from the last record of a page.
pub fn cursor_of(sort: SortBy, r: &SecretRecord) -> ListCursor {
    let sort_value = match sort {
        SortBy::Name => CursorValue::Name(r.name.clone()),
        SortBy::CreatedDate => CursorValue::Time(Some(r.created_at)),
        SortBy::LastChangedDate => CursorValue::Time(Some(r.last_changed_at)),
        SortBy::LastAccessedDate => CursorValue::Time(r.last_accessed_day),
    };
    ListCursor {
        sort_value,
        arn: r.arn.clone(),
    }
}

async fn create<S: Store>(store: &S, s: &SecretRecord, first: Option<&NewVersion>) {
    store.create_secret(s, first).await.expect("create_secret");
}

async fn by_arn<S: Store>(store: &S, s: &SecretRecord) -> SecretRecord {
    store
        .find_by_arn(&s.region, &s.arn)
        .await
        .expect("find_by_arn")
        .expect("secret exists")
}

/// What the record should look like after a create (revision set by the store, versions
/// from the first version).
fn created(s: &SecretRecord, first: Option<&NewVersion>) -> SecretRecord {
    let mut want = s.clone();
    want.revision = 1;
    want.versions = first.map(|v| vec![v.version.clone()]).unwrap_or_default();
    want
}

/// Lists every page of `q` (page size `q.limit`) and returns the concatenation.
async fn list_all<S: Store>(
    store: &S,
    region: &str,
    q: &ListQuery,
    pred: &(dyn Fn(&SecretRecord) -> bool + Send + Sync),
) -> Vec<SecretRecord> {
    let mut q = q.clone();
    let mut out: Vec<SecretRecord> = Vec::new();
    loop {
        let page = store
            .list_secrets(region, &q, pred)
            .await
            .expect("list_secrets");
        assert!(page.len() <= q.limit, "page larger than limit");
        let Some(last) = page.last() else { break };
        q.after = Some(cursor_of(q.sort_by, last));
        let short = page.len() < q.limit;
        out.extend(page);
        if short {
            break;
        }
        assert!(out.len() < 100_000, "pagination does not terminate");
    }
    out
}

fn names(rs: &[SecretRecord]) -> Vec<String> {
    rs.iter().map(|r| r.name.clone()).collect()
}

/// The reference order: sort value (NULL access date smallest), then ARN, both in the
/// requested direction.
fn expected_order(mut rs: Vec<SecretRecord>, sort: SortBy, descending: bool) -> Vec<String> {
    rs.sort_by(|a, b| {
        let ord = match sort {
            SortBy::Name => a.name.cmp(&b.name),
            SortBy::CreatedDate => a.created_at.cmp(&b.created_at),
            SortBy::LastChangedDate => a.last_changed_at.cmp(&b.last_changed_at),
            SortBy::LastAccessedDate => a.last_accessed_day.cmp(&b.last_accessed_day),
        }
        .then_with(|| a.arn.cmp(&b.arn));
        if descending {
            ord.reverse()
        } else {
            ord
        }
    });
    names(&rs)
}

const ALL_SORTS: [SortBy; 4] = [
    SortBy::Name,
    SortBy::CreatedDate,
    SortBy::LastChangedDate,
    SortBy::LastAccessedDate,
];

// ----- secrets: create, find -----

pub async fn create_then_find_by_name_and_arn<S: Store>(store: &S) {
    let mut s = secret(R1, "app/db", T0);
    s.description = Some("the database".into());
    s.kms_key_id = Some("alias/team".into());
    s.secret_type = Some("database".into());
    s.owning_service = Some("rds".into());
    s.primary_region = Some(R1.into());
    s.last_accessed_day = Some(T0 - T0 % MILLIS_PER_DAY);
    s.extra = serde_json::json!({"rotation": {"days": 30}, "replicas": ["eu-west-1"]});
    s.tags = vec![("team".into(), "a".into()), ("env".into(), "prod".into())];
    let v = version("v1", &["AWSCURRENT"], T0);
    create(store, &s, Some(&v)).await;

    let want = created(&s, Some(&v));
    let found = store
        .find_by_name(R1, "app/db")
        .await
        .expect("find_by_name");
    assert_eq!(found.as_ref(), Some(&want));
    assert_eq!(by_arn(store, &s).await, want);
}

pub async fn find_missing_is_none<S: Store>(store: &S) {
    let s = secret(R1, "present", T0);
    create(store, &s, None).await;
    assert_eq!(store.find_by_name(R1, "absent").await.expect("find"), None);
    assert_eq!(store.find_by_name(R2, "present").await.expect("find"), None);
    assert_eq!(
        store
            .find_by_arn(R1, &arn(R1, "absent"))
            .await
            .expect("find"),
        None
    );
    // The ARN is right but the region asked is not the secret's.
    assert_eq!(store.find_by_arn(R2, &s.arn).await.expect("find"), None);
    // A secret without versions is found with none.
    assert!(by_arn(store, &s).await.versions.is_empty());
}

pub async fn create_sets_revision_to_one<S: Store>(store: &S) {
    let mut s = secret(R1, "rev", T0);
    s.revision = 42;
    create(store, &s, None).await;
    assert_eq!(by_arn(store, &s).await.revision, 1);
}

pub async fn name_taken_in_same_region_only<S: Store>(store: &S) {
    create(store, &secret(R1, "shared", T0), None).await;
    let mut again = secret(R1, "shared", T0 + 1);
    again.arn = format!("{}-other", again.arn);
    let err = store
        .create_secret(&again, Some(&version("x", &["AWSCURRENT"], T0)))
        .await;
    assert!(matches!(err, Err(StoreError::NameTaken)), "got {err:?}");
    // Nothing of the refused secret was stored.
    assert_eq!(store.find_by_arn(R1, &again.arn).await.expect("find"), None);
    assert_eq!(
        store.get_sealed_value(&again.arn, "x").await.expect("get"),
        None
    );
    // The same name in another region is a different secret.
    create(store, &secret(R2, "shared", T0), None).await;
}

pub async fn name_taken_by_secret_scheduled_for_deletion<S: Store>(store: &S) {
    let mut s = secret(R1, "leaving", T0);
    s.deleted_at = Some(T0);
    s.purge_at = Some(T0 + 7 * MILLIS_PER_DAY);
    create(store, &s, None).await;
    let mut again = secret(R1, "leaving", T0);
    again.arn = format!("{}-2", again.arn);
    let err = store.create_secret(&again, None).await;
    assert!(matches!(err, Err(StoreError::NameTaken)), "got {err:?}");
}

/// Concurrency: the name's uniqueness holds when both creates are in flight together.
pub async fn a_name_created_twice_at_once_is_taken_once<S: Store>(store: &S) {
    for round in 0..20 {
        let name = format!("twice-{round}");
        let a = secret(R1, &name, T0);
        let mut b = secret(R1, &name, T0);
        b.arn = format!("{}-b", b.arn);
        let (va, vb) = (
            version("va", &["AWSCURRENT"], T0),
            version("vb", &["AWSCURRENT"], T0),
        );
        let (ra, rb) = tokio::join!(
            store.create_secret(&a, Some(&va)),
            store.create_secret(&b, Some(&vb))
        );
        let taken = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::NameTaken)))
            .count();
        assert!(
            ra.is_ok() != rb.is_ok() && taken == 1,
            "round {round}: {ra:?} {rb:?}"
        );
        let (winner, loser, v) = if ra.is_ok() {
            (&a, &b, "vb")
        } else {
            (&b, &a, "va")
        };
        assert_eq!(by_arn(store, winner).await.name, name);
        assert_eq!(store.find_by_arn(R1, &loser.arn).await.expect("find"), None);
        assert_eq!(
            store.get_sealed_value(&loser.arn, v).await.expect("get"),
            None
        );
    }
}

/// Concurrency: of two changes made from the same revision and sent together, exactly
/// one commits and the other is a Conflict that left nothing behind.
pub async fn writers_racing_one_revision_commit_once<S: Store>(store: &S) {
    let s = secret(R1, "racing", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    for round in 0..20 {
        let base = by_arn(store, &s).await;
        let mut a = change(&base);
        a.new_versions = vec![version(&format!("a{round}"), &["L"], T0 + 1)];
        a.events = vec![event(0, Some(&s.arn))];
        let mut b = change(&base);
        b.new_versions = vec![version(&format!("b{round}"), &["L"], T0 + 1)];
        b.events = vec![event(2, Some(&s.arn))];
        let (ra, rb) = tokio::join!(store.update_secret(&a), store.update_secret(&b));
        let conflicts = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict)))
            .count();
        assert!(
            ra.is_ok() != rb.is_ok() && conflicts == 1,
            "round {round}: {ra:?} {rb:?}"
        );
        let after = by_arn(store, &s).await;
        assert_eq!(after.revision, base.revision + 1);
        let (won, lost) = if ra.is_ok() { ("a", "b") } else { ("b", "a") };
        let ids: Vec<&str> = after
            .versions
            .iter()
            .map(|v| v.version_id.as_str())
            .collect();
        assert!(ids.contains(&format!("{won}{round}").as_str()), "{ids:?}");
        assert!(!ids.contains(&format!("{lost}{round}").as_str()), "{ids:?}");
    }
    // One event per committed change, none from the refused ones.
    assert_eq!(all_events(store, 0, 100, Some(&s.arn)).await.len(), 20);
}

/// Two PutSecretValue calls with one ClientRequestToken (one version id) from the same
/// read: one stores it, the other is refused and finds it on its reread.
pub async fn writers_racing_one_client_request_token_store_it_once<S: Store>(store: &S) {
    let s = secret(R1, "token-race", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    for round in 0..10 {
        let base = by_arn(store, &s).await;
        let id = format!("token-{round}");
        let mut a = change(&base);
        a.new_versions = vec![version(&id, &["L"], T0 + 1)];
        a.new_versions[0].sealed = SealedValue(b"from-a".to_vec());
        let mut b = a.clone();
        b.new_versions[0].sealed = SealedValue(b"from-b".to_vec());
        let (ra, rb) = tokio::join!(store.update_secret(&a), store.update_secret(&b));
        assert!(ra.is_ok() != rb.is_ok(), "round {round}: {ra:?} {rb:?}");
        let lost = if ra.is_ok() { &rb } else { &ra };
        assert!(matches!(lost, Err(StoreError::Conflict)), "{lost:?}");
        let after = by_arn(store, &s).await;
        assert_eq!(
            after.versions.iter().filter(|v| v.version_id == id).count(),
            1
        );
        let won: &[u8] = if ra.is_ok() { b"from-a" } else { b"from-b" };
        let sealed = store
            .get_sealed_value(&s.arn, &id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(sealed.0, won, "the winner's value, never a mix");
    }
}

/// Two label moves from one read (AWSCURRENT to v2, and to v3): one applies, the other is
/// refused; retried on a reread, it applies after. A label never has two holders.
pub async fn label_moves_racing_on_one_secret_leave_one_holder<S: Store>(store: &S) {
    let s = secret(R1, "label-race", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let base = by_arn(store, &s).await;
    let mut add = change(&base);
    add.new_versions = vec![version("v2", &[], T0 + 1), version("v3", &[], T0 + 2)];
    store.update_secret(&add).await.expect("add versions");
    let holders = |r: &SecretRecord| -> Vec<String> {
        r.versions
            .iter()
            .filter(|v| v.stages.iter().any(|l| l == "AWSCURRENT"))
            .map(|v| v.version_id.clone())
            .collect()
    };
    // Moves AWSCURRENT to `to` from whichever version holds it now, retrying on conflict.
    let s = &s;
    let mv = |to: &'static str| async move {
        let mut conflicts = 0;
        loop {
            let cur = by_arn(store, s).await;
            let mut c = change(&cur);
            for v in &cur.versions {
                let has = v.stages.iter().any(|l| l == "AWSCURRENT");
                if has && v.version_id != to {
                    c.restaged.push((v.version_id.clone(), Vec::new()));
                } else if !has && v.version_id == to {
                    c.restaged
                        .push((v.version_id.clone(), vec!["AWSCURRENT".to_owned()]));
                }
            }
            match store.update_secret(&c).await {
                Ok(()) => return conflicts,
                Err(StoreError::Conflict) => conflicts += 1,
                Err(e) => panic!("label move: {e:?}"),
            }
        }
    };
    for _ in 0..5 {
        let (ca, cb) = tokio::join!(mv("v2"), mv("v3"));
        let after = by_arn(store, s).await;
        let h = holders(&after);
        assert_eq!(h.len(), 1, "one holder: {h:?}");
        // The move that committed last (the one that hit a conflict, if any) holds it.
        if ca > 0 && cb == 0 {
            assert_eq!(h, ["v2"]);
        } else if cb > 0 && ca == 0 {
            assert_eq!(h, ["v3"]);
        }
    }
}

/// Four writers each add versions with retries, and each change drops the oldest
/// unlabelled version past a limit (what core does at AWS's 100): the limit holds, no
/// added version is lost, and the dropped versions' values are gone.
pub async fn the_version_limit_holds_under_concurrent_puts<S: Store>(store: &S) {
    // Above the 21 versions kept at the end (v0 and the 20 added), so only old ones go.
    const LIMIT: usize = 30;
    let s = secret(R1, "version-limit", T0);
    create(store, &s, Some(&version("v0", &["AWSCURRENT"], T0))).await;
    let base = by_arn(store, &s).await;
    let mut fill = change(&base);
    fill.new_versions = (1..LIMIT)
        .map(|i| version(&format!("old{i}"), &[], T0 + i as Millis))
        .collect();
    store.update_secret(&fill).await.expect("fill");
    let s = &s;
    let writer = |w: usize| async move {
        for i in 0..5 {
            let id = format!("w{w}-{i}");
            loop {
                let cur = by_arn(store, s).await;
                let mut c = change(&cur);
                c.new_versions = vec![version(&id, &[], T0 + 1_000)];
                if cur.versions.len() + 1 > LIMIT {
                    let oldest = cur
                        .versions
                        .iter()
                        .find(|v| v.stages.is_empty())
                        .expect("an unlabelled version");
                    c.removed_versions = vec![oldest.version_id.clone()];
                }
                match store.update_secret(&c).await {
                    Ok(()) => break,
                    Err(StoreError::Conflict) => continue,
                    Err(e) => panic!("put: {e:?}"),
                }
            }
        }
    };
    tokio::join!(writer(0), writer(1), writer(2), writer(3));
    let after = by_arn(store, s).await;
    assert_eq!(after.versions.len(), LIMIT);
    let ids: Vec<&str> = after
        .versions
        .iter()
        .map(|v| v.version_id.as_str())
        .collect();
    for w in 0..4 {
        for i in 0..5 {
            assert!(ids.contains(&format!("w{w}-{i}").as_str()), "{ids:?}");
        }
    }
    assert!(ids.contains(&"v0"), "the labelled version stays");
    for i in 1..LIMIT {
        let id = format!("old{i}");
        if !ids.contains(&id.as_str()) {
            assert_eq!(
                store.get_sealed_value(&s.arn, &id).await.expect("read"),
                None
            );
        }
    }
}

// ----- secrets: update -----

pub async fn update_applies_and_bumps_revision<S: Store>(store: &S) {
    let s = secret(R1, "upd", T0);
    create(store, &s, None).await;
    let cur = by_arn(store, &s).await;
    let mut c = change(&cur);
    c.secret.description = Some("new".into());
    c.secret.kms_key_id = Some("alias/k".into());
    c.secret.last_changed_at = T0 + 5;
    c.secret.deleted_at = Some(T0 + 6);
    c.secret.purge_at = Some(T0 + 7);
    c.secret.extra = serde_json::json!({"rotation": {"lambda": "arn:x"}});
    store.update_secret(&c).await.expect("update");

    let got = by_arn(store, &s).await;
    let mut want = c.secret.clone();
    want.revision = 2;
    assert_eq!(got, want);

    // And again from the new revision.
    let mut c2 = change(&got);
    c2.secret.deleted_at = None;
    c2.secret.purge_at = None;
    store.update_secret(&c2).await.expect("second update");
    let got = by_arn(store, &s).await;
    assert_eq!(got.revision, 3);
    assert_eq!(got.deleted_at, None);
}

pub async fn update_with_stale_revision_conflicts_and_applies_nothing<S: Store>(store: &S) {
    let s = secret(R1, "race", T0);
    let v1 = version("v1", &["AWSCURRENT"], T0);
    create(store, &s, Some(&v1)).await;
    let stale = by_arn(store, &s).await;

    let mut winner = change(&stale);
    winner.secret.description = Some("winner".into());
    store.update_secret(&winner).await.expect("first writer");
    let after_winner = by_arn(store, &s).await;

    let mut loser = change(&stale);
    loser.secret.description = Some("loser".into());
    loser.secret.tags = vec![("k".into(), "v".into())];
    loser.new_versions = vec![version("v2", &["AWSCURRENT"], T0 + 1)];
    loser.restaged = vec![("v1".into(), vec!["AWSPREVIOUS".into()])];
    let err = store.update_secret(&loser).await;
    assert!(matches!(err, Err(StoreError::Conflict)), "got {err:?}");

    assert_eq!(by_arn(store, &s).await, after_winner);
    assert_eq!(
        store.get_sealed_value(&s.arn, "v2").await.expect("get"),
        None
    );
}

/// Every pending entry of one secret, whatever its next attempt time.
async fn pending<S: Store>(store: &S, arn: &str) -> Vec<OutboxEntry> {
    let mut all = store.due_outbox(Millis::MAX, 10_000).await.expect("outbox");
    all.retain(|e| e.arn == arn);
    all
}

fn outbox_entry(kind: OutboxKind, s: &SecretRecord, target: &str, at: Millis) -> OutboxEntry {
    let mut e = OutboxEntry::new(kind, &s.region, &s.arn, &s.name, target, at);
    e.version_ids = vec!["v2".into()];
    e.revision = 7;
    e
}

pub async fn outbox_entries_commit_with_their_change_only<S: Store>(store: &S) {
    let s = secret(R1, "replicated-change", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let stale = by_arn(store, &s).await;

    let mut ok = change(&stale);
    ok.outbox = vec![
        outbox_entry(OutboxKind::Sync, &s, R2, T0),
        outbox_entry(OutboxKind::Sync, &s, "ap-south-1", T0),
    ];
    store.update_secret(&ok).await.expect("update");
    let queued = pending(store, &s.arn).await;
    assert_eq!(queued.len(), 2, "{queued:?}");
    assert!(queued[0].id < queued[1].id, "ids increase: {queued:?}");
    for (got, sent) in queued.iter().zip(&ok.outbox) {
        assert_eq!(
            OutboxEntry {
                id: got.id,
                ..sent.clone()
            },
            *got,
            "every field round-trips"
        );
    }

    // The same change again carries a stale revision: refused, and it queues nothing.
    let mut refused = change(&stale);
    refused.outbox = vec![outbox_entry(OutboxKind::Remove, &s, R2, T0)];
    assert!(matches!(
        store.update_secret(&refused).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(pending(store, &s.arn).await.len(), 2);
    assert_eq!(store.outbox_len().await.expect("len"), 2);
    assert!(
        store.outbox_for(&s.arn).await.expect("outbox").is_empty(),
        "entries that never failed are not listed as behind"
    );
}

pub async fn outbox_is_due_in_id_order_deferred_and_completed<S: Store>(store: &S) {
    let s = secret(R1, "outbox-order", T0);
    create(store, &s, None).await;
    let mut rec = by_arn(store, &s).await;
    for i in 0..3 {
        let mut c = change(&rec);
        c.outbox = vec![outbox_entry(OutboxKind::Sync, &s, R2, T0 + i)];
        store.update_secret(&c).await.expect("update");
        rec = by_arn(store, &s).await;
    }
    let due = store.due_outbox(T0 + 10, 10).await.expect("due");
    assert_eq!(due.len(), 3);
    assert!(due.windows(2).all(|w| w[0].id < w[1].id), "{due:?}");
    assert_eq!(store.due_outbox(T0 + 10, 2).await.expect("due").len(), 2);

    // A failed attempt: counted, explained, and not due before its next time.
    store
        .defer_outbox(&[due[0].id], "region unreachable", T0 + 1_000, None)
        .await
        .expect("defer");
    let now_due = store.due_outbox(T0 + 10, 10).await.expect("due");
    assert_eq!(
        now_due.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![due[1].id, due[2].id]
    );
    let failed = store.outbox_for(&s.arn).await.expect("outbox");
    assert_eq!(
        failed.len(),
        1,
        "only the deferred entry is behind: {failed:?}"
    );
    let deferred = &failed[0];
    assert_eq!(deferred.attempts, 1);
    assert_eq!(deferred.last_error.as_deref(), Some("region unreachable"));
    assert_eq!(deferred.next_attempt_at, T0 + 1_000);
    assert_eq!(
        store.due_outbox(T0 + 1_000, 10).await.expect("due").len(),
        3
    );

    store
        .complete_outbox(&[due[1].id, due[2].id, 999_999], None)
        .await
        .expect("complete");
    let left = pending(store, &s.arn).await;
    assert_eq!(
        left.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![due[0].id]
    );
    store.wipe_secrets().await.expect("wipe");
    assert_eq!(
        store.outbox_len().await.expect("len"),
        0,
        "a wipe empties the outbox"
    );
}

pub async fn create_with_outbox_queues_in_the_same_transaction<S: Store>(store: &S) {
    let s = secret(R1, "created-replicated", T0);
    let entry = outbox_entry(OutboxKind::Sync, &s, R2, T0);
    store
        .create_secret_with(
            &s,
            &[
                version("v1", &["AWSPREVIOUS"], T0),
                version("v2", &["AWSCURRENT"], T0 + 1),
            ],
            &Effects {
                outbox: vec![entry.clone()],
                audit: Vec::new(),
                deliveries: Vec::new(),
                fence: None,
            },
        )
        .await
        .expect("create");
    let stored = by_arn(store, &s).await;
    assert_eq!(
        stored
            .versions
            .iter()
            .map(|v| v.version_id.as_str())
            .collect::<Vec<_>>(),
        ["v1", "v2"],
        "every version is created with the secret"
    );
    assert_eq!(
        store.get_sealed_value(&s.arn, "v1").await.expect("read"),
        Some(SealedValue(b"sealed-bytes-of-v1".to_vec()))
    );
    let queued = pending(store, &s.arn).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, OutboxKind::Sync);
    // A create refused for its name queues nothing.
    let again = store
        .create_secret_with(
            &s,
            &[],
            &Effects {
                outbox: vec![outbox_entry(OutboxKind::Remove, &s, R2, T0)],
                audit: vec![audit_entry("CreateSecret", Some(&s.arn), T0)],
                deliveries: Vec::new(),
                fence: None,
            },
        )
        .await;
    assert!(matches!(again, Err(StoreError::NameTaken)));
    assert_eq!(pending(store, &s.arn).await.len(), 1);
}

pub async fn update_appends_its_events_only_when_it_commits<S: Store>(store: &S) {
    let s = secret(R1, "evented-change", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let stale = by_arn(store, &s).await;

    let mut ok = change(&stale);
    ok.events = vec![event(0, Some(&s.arn)), event(1, Some(&s.arn))];
    store.update_secret(&ok).await.expect("update");
    let listed = all_events(store, 0, 10, Some(&s.arn)).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for (got, sent) in listed.iter().zip(&ok.events) {
        assert_eq!(
            EventRecord {
                id: -1,
                ..got.clone()
            },
            *sent
        );
    }

    // A change refused for its revision, or for restaging a version that does not exist,
    // leaves no event behind.
    let mut stale_change = change(&stale);
    stale_change.events = vec![event(2, Some(&s.arn))];
    let err = store.update_secret(&stale_change).await;
    assert!(matches!(err, Err(StoreError::Conflict)), "got {err:?}");
    let current = by_arn(store, &s).await;
    let mut bad = change(&current);
    bad.restaged = vec![("no-such-version".into(), vec!["X".into()])];
    bad.events = vec![event(4, Some(&s.arn))];
    let err = store.update_secret(&bad).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
    assert_eq!(all_events(store, 0, 10, Some(&s.arn)).await, listed);
}

pub async fn update_missing_secret_is_not_found<S: Store>(store: &S) {
    let s = secret(R1, "ghost", T0);
    let err = store.update_secret(&change(&s)).await;
    assert!(matches!(err, Err(StoreError::NotFound)), "got {err:?}");
}

pub async fn update_versions_add_restage_remove_atomically<S: Store>(store: &S) {
    let s = secret(R1, "rotating", T0);
    let v1 = version("v1", &["AWSPREVIOUS"], T0);
    create(store, &s, Some(&v1)).await;
    let mut c = change(&by_arn(store, &s).await);
    c.new_versions = vec![version("v2", &["AWSCURRENT"], T0 + 1)];
    store.update_secret(&c).await.expect("add v2");

    // v3 becomes current, v2 previous, v1 goes.
    let mut c = change(&by_arn(store, &s).await);
    c.new_versions = vec![version("v3", &["AWSCURRENT", "custom"], T0 + 2)];
    c.restaged = vec![("v2".into(), vec!["AWSPREVIOUS".into()])];
    c.removed_versions = vec!["v1".into()];
    store.update_secret(&c).await.expect("rotate");

    let got = by_arn(store, &s).await;
    assert_eq!(got.revision, 3);
    let ids: Vec<_> = got.versions.iter().map(|v| v.version_id.as_str()).collect();
    assert_eq!(ids, ["v2", "v3"], "versions oldest first");
    assert_eq!(got.versions[0].stages, ["AWSPREVIOUS"]);
    assert_eq!(
        got.versions[1],
        version("v3", &["AWSCURRENT", "custom"], T0 + 2).version
    );
    assert_eq!(
        store.get_sealed_value(&s.arn, "v1").await.expect("get"),
        None
    );
    assert_eq!(
        store.get_sealed_value(&s.arn, "v3").await.expect("get"),
        Some(version("v3", &[], 0).sealed)
    );
}

pub async fn update_restaging_unknown_version_applies_nothing<S: Store>(store: &S) {
    let s = secret(R1, "half", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let before = by_arn(store, &s).await;
    let mut c = change(&before);
    c.secret.description = Some("changed".into());
    c.new_versions = vec![version("v2", &["AWSCURRENT"], T0 + 1)];
    c.removed_versions = vec!["v1".into()];
    c.restaged = vec![("no-such-version".into(), vec!["AWSPREVIOUS".into()])];
    assert!(store.update_secret(&c).await.is_err());
    assert_eq!(
        by_arn(store, &s).await,
        before,
        "a failed update applied part of itself"
    );
    assert!(store
        .get_sealed_value(&s.arn, "v1")
        .await
        .expect("get")
        .is_some());
    assert_eq!(
        store.get_sealed_value(&s.arn, "v2").await.expect("get"),
        None
    );
}

/// Many writes to different secrets at once (a backend may commit them together): each
/// applies whole, with its versions, labels, tags, events and audit record, or, if it
/// cannot apply alone (stale revision, a version to restage that is missing), fails as it
/// would alone and leaves nothing, without taking the others down with it.
pub async fn concurrent_writes_to_many_secrets_each_apply_or_fail_alone<S: Store>(store: &S) {
    const N: usize = 30;
    let mut before = Vec::new();
    for i in 0..N {
        let mut s = secret(R1, &format!("many-{i:02}"), T0);
        s.tags = vec![("n".into(), i.to_string())];
        create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
        before.push(by_arn(store, &s).await);
    }
    // First, writes that all apply.
    let plain: Vec<SecretChange> = before
        .iter()
        .map(|b| {
            let mut c = change(b);
            c.secret.kms_key_id = Some("alias/first".into());
            c
        })
        .collect();
    let outcomes =
        futures_util::future::join_all(plain.iter().map(|c| store.update_secret(c))).await;
    for ((out, b), c) in outcomes.iter().zip(&mut before).zip(&plain) {
        assert!(out.is_ok(), "{out:?}");
        let got = by_arn(store, b).await;
        assert_eq!(
            (got.revision, &got.kms_key_id),
            (b.revision + 1, &c.secret.kms_key_id)
        );
        *b = got;
    }
    // Then a mix. i % 5: 0 stale, 1 restages a version that does not exist, 2 drops v1, else plain.
    let changes: Vec<SecretChange> = before
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut c = change(b);
            c.secret.description = Some(format!("write {i}"));
            c.secret.tags = vec![("k".into(), format!("{i}")), ("a".into(), "b".into())];
            c.new_versions = vec![version(&format!("v2-{i}"), &["AWSCURRENT", "x"], T0 + 1)];
            c.events = vec![event(0, Some(&b.arn))];
            c.audit = vec![audit_entry(
                "PutSecretValue",
                Some(&b.arn),
                T0 + i as Millis,
            )];
            match i % 5 {
                0 => c.expected_revision += 7,
                1 => c.restaged = vec![("missing".into(), vec!["AWSPREVIOUS".into()])],
                2 => c.removed_versions = vec!["v1".into()],
                _ => c.restaged = vec![("v1".into(), vec!["AWSPREVIOUS".into()])],
            }
            c
        })
        .collect();
    let outcomes =
        futures_util::future::join_all(changes.iter().map(|c| store.update_secret(c))).await;
    for (i, (out, b)) in outcomes.iter().zip(&before).enumerate() {
        let got = by_arn(store, b).await;
        let v2 = store
            .get_sealed_value(&b.arn, &format!("v2-{i}"))
            .await
            .expect("get");
        match i % 5 {
            0 => assert!(matches!(out, Err(StoreError::Conflict)), "{i}: {out:?}"),
            1 => assert!(out.is_err(), "{i}: {out:?}"),
            _ => assert!(out.is_ok(), "{i}: {out:?}"),
        }
        if out.is_err() {
            assert_eq!(&got, b, "{i}: a refused write applied part of itself");
            assert_eq!(v2, None, "{i}");
            continue;
        }
        assert_eq!(got.revision, b.revision + 1, "{i}");
        assert_eq!(
            got.description.as_deref(),
            Some(format!("write {i}").as_str())
        );
        assert_eq!(got.tags, changes[i].secret.tags, "{i}: tags in order");
        let versions: Vec<(&str, &[String])> = got
            .versions
            .iter()
            .map(|v| (v.version_id.as_str(), v.stages.as_slice()))
            .collect();
        let v2_id = format!("v2-{i}");
        let current = ["AWSCURRENT".to_owned(), "x".to_owned()];
        let previous = ["AWSPREVIOUS".to_owned()];
        if i % 5 == 2 {
            assert_eq!(versions, [(v2_id.as_str(), &current[..])], "{i}");
        } else {
            assert_eq!(
                versions,
                [("v1", &previous[..]), (v2_id.as_str(), &current[..])],
                "{i}: versions oldest first"
            );
        }
        assert_eq!(
            got.versions.last(),
            Some(&changes[i].new_versions[0].version)
        );
        assert_eq!(v2, Some(changes[i].new_versions[0].sealed.clone()), "{i}");
    }
    // The committed writes' events and audit records, and nothing of the refused ones.
    let applied: Vec<&str> = outcomes
        .iter()
        .zip(&before)
        .filter(|(o, _)| o.is_ok())
        .map(|(_, b)| b.arn.as_str())
        .collect();
    assert_eq!(applied.len(), N * 3 / 5);
    let mut with_events: Vec<String> = all_events(store, 0, 1_000, None)
        .await
        .into_iter()
        .filter_map(|e| e.secret_arn)
        .collect();
    with_events.sort();
    assert_eq!(with_events, applied);
    assert_eq!(audited(store, "PutSecretValue").await, applied);
}

/// Many creates at once (a backend may commit them together): each lands whole, with its
/// tags, version, value and audit record; one whose name is taken fails with NameTaken and
/// leaves nothing, without taking the others down with it.
pub async fn concurrent_creates_each_land_whole_or_fail_alone<S: Store>(store: &S) {
    const N: usize = 20;
    let taken = secret(R1, "born-taken", T0);
    create(store, &taken, None).await;
    let mut news: Vec<SecretRecord> = (0..N)
        .map(|i| {
            let mut s = secret(R1, &format!("born-{i:02}"), T0 + i as Millis);
            s.tags = vec![("i".into(), i.to_string()), ("b".into(), "x".into())];
            s
        })
        .collect();
    // Same name as `taken`, another ARN.
    let mut dup = secret(R1, "born-taken", T0);
    dup.arn = arn(R1, "born-taken").replace("-AbCdEf", "-XyZxYz");
    news.push(dup);
    let versions: Vec<NewVersion> = (0..=N)
        .map(|i| version(&format!("first-{i}"), &["AWSCURRENT"], T0))
        .collect();
    let effects: Vec<Effects> = news
        .iter()
        .map(|s| Effects {
            audit: vec![audit_entry("CreateSecret", Some(&s.arn), s.created_at)],
            ..Effects::default()
        })
        .collect();
    let create = |i: usize| {
        store.create_secret_with(&news[i], std::slice::from_ref(&versions[i]), &effects[i])
    };
    // First creates that all land, then a mix with the taken name.
    let mut outcomes = futures_util::future::join_all((0..N - 4).map(create)).await;
    outcomes.extend(futures_util::future::join_all((N - 4..=N).map(create)).await);
    for (i, out) in outcomes.iter().enumerate().take(N) {
        assert!(out.is_ok(), "{i}: {out:?}");
        let got = by_arn(store, &news[i]).await;
        assert_eq!(got.tags, news[i].tags, "{i}");
        assert_eq!(got.revision, 1);
        assert_eq!(got.versions, vec![versions[i].version.clone()], "{i}");
        assert_eq!(
            store
                .get_sealed_value(&news[i].arn, &versions[i].version.version_id)
                .await
                .expect("get"),
            Some(versions[i].sealed.clone())
        );
    }
    assert!(
        matches!(outcomes[N], Err(StoreError::NameTaken)),
        "{:?}",
        outcomes[N]
    );
    assert!(store
        .find_by_arn(R1, &news[N].arn)
        .await
        .expect("find")
        .is_none());
    let mut expected: Vec<String> = news[..N].iter().map(|s| s.arn.clone()).collect();
    expected.sort();
    assert_eq!(audited(store, "CreateSecret").await, expected);
}

pub async fn tags_keep_order_and_are_replaced<S: Store>(store: &S) {
    let mut s = secret(R1, "tagged", T0);
    // Deliberately not alphabetical: insertion order must survive.
    s.tags = vec![
        ("zeta".into(), "1".into()),
        ("alpha".into(), "2".into()),
        ("mid".into(), "".into()),
    ];
    create(store, &s, None).await;
    assert_eq!(by_arn(store, &s).await.tags, s.tags);

    let mut c = change(&by_arn(store, &s).await);
    c.secret.tags = vec![("b".into(), "x".into()), ("a".into(), "y".into())];
    store.update_secret(&c).await.expect("retag");
    assert_eq!(by_arn(store, &s).await.tags, c.secret.tags);

    let mut c = change(&by_arn(store, &s).await);
    c.secret.tags.clear();
    store.update_secret(&c).await.expect("untag");
    assert!(by_arn(store, &s).await.tags.is_empty());
}

/// `find_with_current` finds what `find_by_*` find; a sealed value beside the record is
/// the AWSCURRENT version's, and only that.
pub async fn find_with_current_is_find_plus_the_current_value<S: Store>(store: &S) {
    let s = secret(R1, "with-current", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let mut c = change(&by_arn(store, &s).await);
    c.new_versions = vec![version("v2", &["AWSCURRENT"], T0 + 1)];
    c.restaged = vec![("v1".into(), vec!["AWSPREVIOUS".into()])];
    store.update_secret(&c).await.expect("put v2");
    let record = by_arn(store, &s).await;
    for key in [SecretKey::Name(&s.name), SecretKey::Arn(&s.arn)] {
        let (got, sealed) = store
            .find_with_current(R1, key)
            .await
            .expect("find")
            .expect("found");
        assert_eq!(got, record, "{key:?}");
        assert!(
            sealed.is_none() || sealed == Some(version("v2", &[], 0).sealed),
            "{key:?}: {sealed:?}"
        );
    }
    for key in [
        SecretKey::Name("missing"),
        SecretKey::Arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf"),
    ] {
        assert!(store
            .find_with_current(R1, key)
            .await
            .expect("find")
            .is_none());
    }
    // In another region the secret is not there.
    assert!(store
        .find_with_current(R2, SecretKey::Name(&s.name))
        .await
        .expect("find")
        .is_none());
    // A secret with no value has nothing to go with it.
    let empty = secret(R1, "no-value", T0);
    create(store, &empty, None).await;
    let (_, sealed) = store
        .find_with_current(R1, SecretKey::Arn(&empty.arn))
        .await
        .expect("find")
        .expect("found");
    assert_eq!(sealed, None);
}

pub async fn sealed_value_round_trip<S: Store>(store: &S) {
    let s = secret(R1, "blob", T0);
    let mut v = version("v1", &["AWSCURRENT"], T0);
    // Every byte value, including NUL and invalid UTF-8.
    v.sealed = SealedValue((0..=255u8).chain((0..=255u8).rev()).collect());
    create(store, &s, Some(&v)).await;
    assert_eq!(
        store.get_sealed_value(&s.arn, "v1").await.expect("get"),
        Some(v.sealed)
    );
    assert_eq!(
        store.get_sealed_value(&s.arn, "v9").await.expect("get"),
        None
    );
    assert_eq!(
        store
            .get_sealed_value(&arn(R1, "nope"), "v1")
            .await
            .expect("get"),
        None
    );
    // Metadata lists never carry values, but they say whether one exists.
    assert!(by_arn(store, &s).await.versions[0].has_value);
}

fn touch(arn: &str, version_id: &str, day: Millis) -> AccessTouch {
    AccessTouch {
        arn: arn.to_owned(),
        version_id: version_id.to_owned(),
        day,
    }
}

/// A batch of touches alone, as the read path writes one when nothing else gathered.
async fn touch_accessed<S: Store>(store: &S, touches: Vec<AccessTouch>) -> crate::Result<()> {
    let batch = ReadBatch {
        touches,
        ..ReadBatch::default()
    };
    store.append_reads(std::sync::Arc::new(batch)).await
}

/// A batch of audit records and deliveries alone.
async fn append_audit<S: Store>(
    store: &S,
    audit: Vec<AuditEntry>,
    deliveries: Vec<crate::NewDelivery>,
) -> crate::Result<()> {
    let batch = ReadBatch {
        audit,
        deliveries,
        ..ReadBatch::default()
    };
    store.append_reads(std::sync::Arc::new(batch)).await
}

pub async fn a_read_batch_commits_records_deliveries_and_touches_together<S: Store>(store: &S) {
    let s = secret(R1, "read-batch", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let day = T0 - T0 % MILLIS_PER_DAY;
    let batch = ReadBatch {
        audit: vec![audit_entry("GetSecretValue", Some(&s.arn), T0 + 1)],
        deliveries: vec![delivery("r", "a", "1", T0)],
        touches: vec![touch(&s.arn, "v1", day)],
    };
    store
        .append_reads(std::sync::Arc::new(batch))
        .await
        .expect("append reads");
    let got = by_arn(store, &s).await;
    assert_eq!(got.last_accessed_day, Some(day));
    assert_eq!(got.versions[0].last_accessed_day, Some(day));
    assert_eq!(got.revision, 1, "a read batch is not a change");
    let records = all_audit(store).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].entry.event_name, "GetSecretValue");
    assert_eq!(store.due_deliveries(T0, 10).await.expect("due").len(), 1);
    store
        .append_reads(std::sync::Arc::new(ReadBatch::default()))
        .await
        .expect("empty batch");
}

pub async fn touch_accessed_applies_a_whole_batch<S: Store>(store: &S) {
    let a = secret(R1, "batch-a", T0);
    let b = secret(R1, "batch-b", T0);
    create(store, &a, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    create(store, &b, Some(&version("v2", &["AWSCURRENT"], T0))).await;
    let day = T0 - T0 % MILLIS_PER_DAY;
    // A missing secret in the middle of the batch does not stop the rest.
    touch_accessed(
        store,
        vec![
            touch(&a.arn, "v1", day),
            touch(&arn(R1, "gone"), "v1", day),
            touch(&b.arn, "v2", day + MILLIS_PER_DAY),
        ],
    )
    .await
    .expect("touch batch");
    let (got_a, got_b) = (by_arn(store, &a).await, by_arn(store, &b).await);
    assert_eq!(got_a.last_accessed_day, Some(day));
    assert_eq!(got_a.versions[0].last_accessed_day, Some(day));
    assert_eq!(got_b.last_accessed_day, Some(day + MILLIS_PER_DAY));
    assert_eq!(
        got_b.versions[0].last_accessed_day,
        Some(day + MILLIS_PER_DAY)
    );
    assert_eq!((got_a.revision, got_b.revision), (1, 1));
    touch_accessed(store, vec![]).await.expect("empty batch");
}

pub async fn touch_accessed_does_not_bump_revision<S: Store>(store: &S) {
    let s = secret(R1, "read-me", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let day = T0 - T0 % MILLIS_PER_DAY;
    touch_accessed(store, vec![touch(&s.arn, "v1", day)])
        .await
        .expect("touch");
    let got = by_arn(store, &s).await;
    assert_eq!(got.revision, 1);
    assert_eq!(got.last_accessed_day, Some(day));
    assert_eq!(got.versions[0].last_accessed_day, Some(day));
    // A change prepared before the touch still applies.
    let mut c = change(&got);
    c.expected_revision = 1;
    store.update_secret(&c).await.expect("update after touch");
    // Touching something missing is not an error.
    touch_accessed(store, vec![touch(&arn(R1, "gone"), "v1", day)])
        .await
        .expect("touch missing");
}

pub async fn touch_accessed_never_moves_back<S: Store>(store: &S) {
    let s = secret(R1, "days", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let day2 = 2 * MILLIS_PER_DAY + T0 - T0 % MILLIS_PER_DAY;
    touch_accessed(store, vec![touch(&s.arn, "v1", day2)])
        .await
        .expect("touch");
    // A reader that started earlier reports an older day afterwards.
    touch_accessed(store, vec![touch(&s.arn, "v1", day2 - MILLIS_PER_DAY)])
        .await
        .expect("touch");
    let got = by_arn(store, &s).await;
    assert_eq!(got.last_accessed_day, Some(day2));
    assert_eq!(got.versions[0].last_accessed_day, Some(day2));
}

pub async fn update_does_not_roll_back_access_date<S: Store>(store: &S) {
    let s = secret(R1, "stale-read", T0);
    create(store, &s, None).await;
    let read_before_touch = by_arn(store, &s).await;
    let day = T0 - T0 % MILLIS_PER_DAY;
    touch_accessed(store, vec![touch(&s.arn, "none", day)])
        .await
        .expect("touch");
    // The access date is outside the revision check, so this change is not a conflict,
    // but it must not erase the newer access date either.
    store
        .update_secret(&change(&read_before_touch))
        .await
        .expect("update");
    assert_eq!(by_arn(store, &s).await.last_accessed_day, Some(day));
}

// ----- secrets: delete -----

pub async fn delete_removes_versions_and_values<S: Store>(store: &S) {
    let mut s = secret(R1, "doomed", T0);
    s.tags = vec![("k".into(), "v".into())];
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    let keep = secret(R1, "kept", T0);
    create(store, &keep, Some(&version("v1", &["AWSCURRENT"], T0))).await;

    store
        .delete_secret(R1, &s.arn, &Effects::default())
        .await
        .expect("delete");
    assert_eq!(store.find_by_arn(R1, &s.arn).await.expect("find"), None);
    assert_eq!(store.find_by_name(R1, "doomed").await.expect("find"), None);
    assert_eq!(
        store.get_sealed_value(&s.arn, "v1").await.expect("get"),
        None
    );
    // Deleting again, or something that never existed, is fine.
    store
        .delete_secret(R1, &s.arn, &Effects::default())
        .await
        .expect("delete again");
    // Other secrets are untouched, and the name is free again, without old tags/versions.
    assert!(store
        .get_sealed_value(&keep.arn, "v1")
        .await
        .expect("get")
        .is_some());
    let mut reborn = secret(R1, "doomed", T0 + 1);
    reborn.arn = format!("{}-new", reborn.arn);
    create(store, &reborn, None).await;
    let got = by_arn(store, &reborn).await;
    assert!(got.tags.is_empty() && got.versions.is_empty());
}

// ----- listing -----

/// Secrets with ties in every time column and NULL access dates, so tie-breaks and
/// NULL ordering are exercised.
async fn populate_for_sorting<S: Store>(store: &S) -> Vec<SecretRecord> {
    let mut made = Vec::new();
    for i in 0..12i64 {
        let mut s = secret(R1, &format!("s{:02}", (i * 7) % 12), T0 + (i % 3) * 1000);
        s.last_changed_at = T0 + (i % 4) * 10;
        s.last_accessed_day = match i % 3 {
            0 => None,
            1 => Some(T0),
            _ => Some(T0 + MILLIS_PER_DAY * (i % 2)),
        };
        create(store, &s, None).await;
        made.push(created(&s, None));
    }
    made
}

pub async fn list_orders_by_every_sort_with_arn_tie_break<S: Store>(store: &S) {
    let made = populate_for_sorting(store).await;
    for sort in ALL_SORTS {
        for descending in [false, true] {
            let want = expected_order(made.clone(), sort, descending);
            for page in [1, 2, 5, 100] {
                let got = list_all(store, R1, &query(sort, descending, page), &all).await;
                assert_eq!(
                    names(&got),
                    want,
                    "sort {sort:?} descending {descending} page {page}"
                );
            }
        }
    }
}

pub async fn list_pages_return_each_secret_once_while_secrets_change<S: Store>(store: &S) {
    for sort in [SortBy::Name, SortBy::CreatedDate] {
        store.wipe_secrets().await.expect("wipe");
        for i in 0..10 {
            create(store, &secret(R1, &format!("p-{i:02}"), T0 + i * 10), None).await;
        }
        let q = query(sort, false, 3);
        let page1 = store.list_secrets(R1, &q, &all).await.expect("page 1");
        assert_eq!(names(&page1), ["p-00", "p-01", "p-02"]);

        // Between pages: one insert before the cursor, one after, one delete of an item
        // already returned and one of an item not yet returned.
        create(store, &secret(R1, "p-00a", T0 + 5), None).await;
        create(store, &secret(R1, "p-05a", T0 + 55), None).await;
        store
            .delete_secret(R1, &arn(R1, "p-01"), &Effects::default())
            .await
            .expect("delete");
        store
            .delete_secret(R1, &arn(R1, "p-07"), &Effects::default())
            .await
            .expect("delete");

        let mut rest_q = q.clone();
        rest_q.after = page1.last().map(|r| cursor_of(sort, r));
        let rest = list_all(store, R1, &rest_q, &all).await;
        let mut seen = names(&page1);
        seen.extend(names(&rest));
        assert_eq!(
            seen,
            ["p-00", "p-01", "p-02", "p-03", "p-04", "p-05", "p-05a", "p-06", "p-08", "p-09"],
            "sort {sort:?}"
        );
    }
}

pub async fn list_excludes_planned_deletion_unless_asked<S: Store>(store: &S) {
    create(store, &secret(R1, "live", T0), None).await;
    let mut gone = secret(R1, "gone", T0);
    gone.deleted_at = Some(T0);
    gone.purge_at = Some(T0 + 7 * MILLIS_PER_DAY);
    create(store, &gone, None).await;

    let mut q = query(SortBy::Name, false, 10);
    assert_eq!(
        names(&store.list_secrets(R1, &q, &all).await.expect("list")),
        ["live"]
    );
    q.include_planned_deletion = true;
    assert_eq!(
        names(&store.list_secrets(R1, &q, &all).await.expect("list")),
        ["gone", "live"]
    );
}

pub async fn list_is_scoped_to_region<S: Store>(store: &S) {
    create(store, &secret(R1, "a", T0), None).await;
    create(store, &secret(R2, "b", T0), None).await;
    for sort in ALL_SORTS {
        let got = store
            .list_secrets(R2, &query(sort, false, 10), &all)
            .await
            .expect("list");
        assert_eq!(names(&got), ["b"]);
    }
    let none = store
        .list_secrets("ap-south-1", &query(SortBy::Name, false, 10), &all)
        .await;
    assert!(none.expect("list").is_empty());
}

pub async fn list_name_prefix_hint_does_not_change_results<S: Store>(store: &S) {
    let names_made = [
        "app",
        "app/db",
        "app/web",
        "apq",
        "b",
        "ba",
        "prod/app",
        "prod/db",
        "x\u{e9}",
        "x\u{10FFFF}z",
    ];
    for (i, n) in names_made.iter().enumerate() {
        let mut s = secret(R1, n, T0 + (i as i64 % 3));
        s.last_accessed_day = (i % 2 == 0).then_some(T0);
        create(store, &s, None).await;
    }
    let prefix_sets: [&[&str]; 6] = [
        &["app"],
        &["app/", "prod/"],
        &["ap", "app/db"],
        &["x\u{10FFFF}", "b"],
        &["zzz"],
        &["", "b"],
    ];
    for prefixes in prefix_sets {
        let owned: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
        let pred_prefixes = owned.clone();
        let pred = move |r: &SecretRecord| pred_prefixes.iter().any(|p| r.name.starts_with(p));
        for sort in ALL_SORTS {
            for descending in [false, true] {
                for page in [1, 3, 50] {
                    let plain = query(sort, descending, page);
                    let mut hinted = plain.clone();
                    hinted.name_prefixes = Some(owned.clone());
                    let want = list_all(store, R1, &plain, &pred).await;
                    let got = list_all(store, R1, &hinted, &pred).await;
                    assert_eq!(
                        names(&got),
                        names(&want),
                        "prefixes {prefixes:?} sort {sort:?} desc {descending} page {page}"
                    );
                }
            }
        }
    }
}

pub async fn list_returns_labelled_versions_only<S: Store>(store: &S) {
    let s = secret(R1, "many", T0);
    create(store, &s, Some(&version("v-current", &["AWSCURRENT"], T0))).await;
    let found = store
        .find_by_name(R1, "many")
        .await
        .expect("find")
        .expect("exists");
    let mut change = SecretChange {
        secret: found.clone(),
        expected_revision: found.revision,
        new_versions: vec![
            version("v-old", &[], T0 + 1),
            version("v-custom", &["X"], T0 + 2),
        ],
        restaged: vec![],
        removed_versions: vec![],
        events: vec![],
        outbox: Vec::new(),
        audit: Vec::new(),
        deliveries: Vec::new(),
        fence: None,
    };
    change.secret.versions.clear();
    store.update_secret(&change).await.expect("update");
    // The predicate sees metadata and tags, not versions.
    let saw_versions = std::sync::atomic::AtomicBool::new(false);
    let pred = |r: &SecretRecord| {
        if !r.versions.is_empty() {
            saw_versions.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        true
    };
    let page = store
        .list_secrets(R1, &query(SortBy::Name, false, 10), &pred)
        .await
        .expect("list");
    assert!(!saw_versions.load(std::sync::atomic::Ordering::SeqCst));
    let mut ids: Vec<&str> = page[0]
        .versions
        .iter()
        .map(|v| v.version_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["v-current", "v-custom"]);
    // Finding one secret still loads every version.
    let full = store
        .find_by_name(R1, "many")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(full.versions.len(), 3);
}

pub async fn list_predicate_filters_with_limit<S: Store>(store: &S) {
    // Enough secrets that the accepted ones are spread over many candidate batches.
    for i in 0..120 {
        create(store, &secret(R1, &format!("n{i:03}"), T0 + i), None).await;
    }
    let pred = |r: &SecretRecord| r.name.ends_with('7');
    let page = store
        .list_secrets(R1, &query(SortBy::CreatedDate, false, 4), &pred)
        .await
        .expect("list");
    assert_eq!(names(&page), ["n007", "n017", "n027", "n037"]);
    let everything = list_all(store, R1, &query(SortBy::Name, true, 5), &pred).await;
    let want: Vec<String> = (0..120)
        .rev()
        .filter(|i| i % 10 == 7)
        .map(|i| format!("n{i:03}"))
        .collect();
    assert_eq!(names(&everything), want);
    let nothing = |_: &SecretRecord| false;
    let page = store
        .list_secrets(R1, &query(SortBy::Name, false, 10), &nothing)
        .await;
    assert!(page.expect("list").is_empty());
    let zero = store
        .list_secrets(R1, &query(SortBy::Name, false, 0), &all)
        .await;
    assert!(zero.expect("list").is_empty());
}

pub async fn list_records_are_complete<S: Store>(store: &S) {
    let mut want = Vec::new();
    for i in 0..5 {
        let mut s = secret(R1, &format!("full{i}"), T0 + i);
        s.tags = (0..i).map(|t| (format!("k{t}"), format!("v{t}"))).collect();
        s.extra = serde_json::json!({ "i": i });
        let v = version(&format!("v{i}"), &["AWSCURRENT"], T0);
        create(store, &s, Some(&v)).await;
        if i % 2 == 0 {
            let mut c = change(&by_arn(store, &s).await);
            c.new_versions = vec![version("pending", &["AWSPENDING"], T0 + 1)];
            store.update_secret(&c).await.expect("add version");
        }
        want.push(by_arn(store, &s).await);
    }
    for page in [1, 2, 10] {
        let got = list_all(store, R1, &query(SortBy::CreatedDate, false, page), &all).await;
        assert_eq!(got, want, "page {page}");
    }
}

// ----- purge -----

pub async fn due_for_purge_finds_due_secrets_across_regions<S: Store>(store: &S) {
    let mut due = Vec::new();
    for (region, name, purge_at) in [
        (R1, "due1", Some(T0 - 10)),
        (R2, "due2", Some(T0)),
        (R1, "later", Some(T0 + 1)),
        (R1, "never", None),
    ] {
        let mut s = secret(region, name, T0);
        s.deleted_at = purge_at.map(|p| p - 7 * MILLIS_PER_DAY);
        s.purge_at = purge_at;
        create(store, &s, None).await;
        if let Some(p) = purge_at.filter(|p| *p <= T0) {
            due.push(PurgeDue {
                region: region.to_owned(),
                arn: s.arn.clone(),
                purge_at: p,
            });
        }
    }
    let mut got = store.due_for_purge(T0, 10).await.expect("due");
    got.sort();
    due.sort();
    assert_eq!(got, due);
    assert_eq!(store.due_for_purge(T0, 1).await.expect("due").len(), 1);
    assert!(store
        .due_for_purge(T0 - 11, 10)
        .await
        .expect("due")
        .is_empty());
}

/// The purge lists due secrets, then deletes them one by one; a secret restored (or
/// deleted again with a new date) in between must survive the stale entry.
pub async fn purge_deletes_only_what_is_still_due<S: Store>(store: &S) {
    let mut s = secret(R1, "restored", T0);
    s.deleted_at = Some(T0 - 7 * MILLIS_PER_DAY);
    s.purge_at = Some(T0 - 1);
    create(store, &s, None).await;
    let due = store.due_for_purge(T0, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    let mut c = change(&by_arn(store, &s).await);
    c.secret.deleted_at = None;
    c.secret.purge_at = None;
    store.update_secret(&c).await.expect("restore");
    assert!(!store
        .purge_secret(R1, &s.arn, due[0].purge_at, &Effects::default())
        .await
        .expect("purge"));
    assert!(store.find_by_arn(R1, &s.arn).await.expect("find").is_some());

    // Deleted again, with a later date: the old date no longer matches; the new one does.
    let mut c = change(&by_arn(store, &s).await);
    c.secret.deleted_at = Some(T0);
    c.secret.purge_at = Some(T0 + 5);
    store.update_secret(&c).await.expect("delete again");
    assert!(!store
        .purge_secret(R1, &s.arn, T0 - 1, &Effects::default())
        .await
        .expect("purge"));
    assert!(store
        .purge_secret(R1, &s.arn, T0 + 5, &Effects::default())
        .await
        .expect("purge"));
    assert!(store.find_by_arn(R1, &s.arn).await.expect("find").is_none());
    assert!(!store
        .purge_secret(R1, &s.arn, T0 + 5, &Effects::default())
        .await
        .expect("purge a missing one"));
}

/// Concurrency: a restore and the purge of one secret sent together. Either the restore
/// commits first (the purge then finds the date changed and keeps the secret) or the
/// purge does (the restore then finds no secret); never a restored secret that is gone.
pub async fn restore_racing_the_purge_has_one_outcome<S: Store>(store: &S) {
    for round in 0..20 {
        let mut s = secret(R1, &format!("contested-{round}"), T0);
        s.deleted_at = Some(T0 - 7 * MILLIS_PER_DAY);
        s.purge_at = Some(T0 - 1);
        create(store, &s, None).await;
        let mut restore = change(&by_arn(store, &s).await);
        restore.secret.deleted_at = None;
        restore.secret.purge_at = None;
        let none = Effects::default();
        let (restored, purged) = tokio::join!(
            store.update_secret(&restore),
            store.purge_secret(R1, &s.arn, T0 - 1, &none)
        );
        let purged = purged.expect("purge");
        let found = store.find_by_arn(R1, &s.arn).await.expect("find");
        match (restored, purged) {
            (Ok(()), false) => {
                let f = found.expect("the restored secret is kept");
                assert_eq!(f.purge_at, None);
            }
            (Err(StoreError::NotFound), true) => assert!(found.is_none()),
            other => panic!("round {round}: {other:?}, found {found:?}"),
        }
    }
}

// ----- rotation schedule -----

pub async fn rotation_due_at_round_trips_through_create_and_update<S: Store>(store: &S) {
    let mut s = secret(R1, "rotated", T0);
    s.rotation_due_at = Some(T0 + 30 * MILLIS_PER_DAY);
    create(store, &s, None).await;
    assert_eq!(by_arn(store, &s).await, created(&s, None));

    // Set, moved and cleared like any other metadata field.
    for due in [Some(T0 + 5), Some(T0 - 5), None, Some(T0)] {
        let mut c = change(&by_arn(store, &s).await);
        c.secret.rotation_due_at = due;
        store.update_secret(&c).await.expect("update");
        let got = by_arn(store, &s).await;
        assert_eq!(got.rotation_due_at, due);
        assert_eq!(got.revision, c.expected_revision + 1);
    }
    // A change that loses the revision race does not move it.
    let stale = by_arn(store, &s).await;
    store.update_secret(&change(&stale)).await.expect("winner");
    let mut loser = change(&stale);
    loser.secret.rotation_due_at = None;
    let err = store.update_secret(&loser).await;
    assert!(matches!(err, Err(StoreError::Conflict)), "got {err:?}");
    assert_eq!(by_arn(store, &s).await.rotation_due_at, Some(T0));
}

pub async fn due_for_rotation_finds_due_secrets_in_order_across_regions<S: Store>(store: &S) {
    // Created out of due order, spread over two regions; ties at T0 - 10.
    let specs = [
        (R2, "r-late-due", Some(T0)),
        (R1, "r-future", Some(T0 + 1)),
        (R1, "r-early", Some(T0 - 1000)),
        (R1, "r-none", None),
        (R2, "r-mid-b", Some(T0 - 10)),
        (R1, "r-mid-a", Some(T0 - 10)),
    ];
    for (region, name, due) in specs {
        let mut s = secret(region, name, T0);
        s.rotation_due_at = due;
        create(store, &s, None).await;
    }
    let pair = |region: &str, name: &str| (region.to_owned(), arn(region, name));
    let (mid_a, mid_b) = (pair(R1, "r-mid-a"), pair(R2, "r-mid-b"));
    let got = store.due_for_rotation(T0, 10).await.expect("due");
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], pair(R1, "r-early"));
    // Equal due times may come in either order, but both before the later one.
    let mut middle = got[1..3].to_vec();
    middle.sort();
    let mut want_middle = vec![mid_a, mid_b];
    want_middle.sort();
    assert_eq!(middle, want_middle);
    assert_eq!(got[3], pair(R2, "r-late-due"));

    // The limit keeps the earliest.
    let first_two = store.due_for_rotation(T0, 2).await.expect("due");
    assert_eq!(first_two, got[..2]);
    assert!(store.due_for_rotation(T0, 0).await.expect("due").is_empty());
    // Due exactly at `now` counts; nothing is due before the earliest.
    assert_eq!(
        store.due_for_rotation(T0 - 1000, 10).await.expect("due"),
        [pair(R1, "r-early")]
    );
    assert!(store
        .due_for_rotation(T0 - 1001, 10)
        .await
        .expect("due")
        .is_empty());
    assert_eq!(
        store.due_for_rotation(T0 + 1, 10).await.expect("due").len(),
        5
    );
}

pub async fn due_for_rotation_forgets_cleared_and_postponed_secrets<S: Store>(store: &S) {
    let mut a = secret(R1, "claim-a", T0);
    a.rotation_due_at = Some(T0 - 2);
    let mut b = secret(R2, "claim-b", T0);
    b.rotation_due_at = Some(T0 - 1);
    create(store, &a, None).await;
    create(store, &b, None).await;
    let due = |s: &SecretRecord| (s.region.clone(), s.arn.clone());
    assert_eq!(
        store.due_for_rotation(T0, 10).await.expect("due"),
        [due(&a), due(&b)]
    );

    // A worker claims `a` by pushing its due time past a lease; `b` finishes.
    let mut c = change(&by_arn(store, &a).await);
    c.secret.rotation_due_at = Some(T0 + 60_000);
    store.update_secret(&c).await.expect("claim a");
    let mut c = change(&by_arn(store, &b).await);
    c.secret.rotation_due_at = None;
    store.update_secret(&c).await.expect("finish b");
    assert!(store
        .due_for_rotation(T0, 10)
        .await
        .expect("due")
        .is_empty());

    // The lease expires: `a` is due again, and only `a`.
    assert_eq!(
        store.due_for_rotation(T0 + 60_000, 10).await.expect("due"),
        [due(&a)]
    );
    // Deleting a secret takes it off the schedule.
    store
        .delete_secret(R1, &a.arn, &Effects::default())
        .await
        .expect("delete");
    assert!(store
        .due_for_rotation(i64::MAX, 10)
        .await
        .expect("due")
        .is_empty());
}

// ----- events -----

/// An event with every optional field set from `i`, or left empty when `i` is odd.
pub fn event(i: i64, secret_arn: Option<&str>) -> EventRecord {
    let full = i % 2 == 0;
    EventRecord {
        id: -1,
        time: T0 + i,
        name: if full {
            "RotationFailed".into()
        } else {
            "RotationStarted".into()
        },
        region: R1.into(),
        secret_arn: secret_arn.map(str::to_owned),
        version_id: full.then(|| format!("v-{i}")),
        step: full.then(|| "setSecret".to_owned()),
        error: full.then(|| format!("connection refused ({i})")),
        detail: if full {
            serde_json::json!({ "attempt": i, "nested": { "list": [1, "two", null] } })
        } else {
            serde_json::json!({})
        },
    }
}

fn events_query(after_id: i64, limit: usize, secret_arn: Option<&str>) -> EventQuery {
    EventQuery {
        after_id,
        limit,
        secret_arn: secret_arn.map(str::to_owned),
    }
}

async fn append<S: Store>(store: &S, e: &EventRecord) -> EventRecord {
    let id = store.append_event(e).await.expect("append_event");
    EventRecord { id, ..e.clone() }
}

/// Every event after `after_id`, read in pages of `page`.
async fn all_events<S: Store>(
    store: &S,
    after_id: i64,
    page: usize,
    secret_arn: Option<&str>,
) -> Vec<EventRecord> {
    let mut out: Vec<EventRecord> = Vec::new();
    let mut after = after_id;
    loop {
        let got = store
            .list_events(&events_query(after, page, secret_arn))
            .await
            .expect("list_events");
        assert!(got.len() <= page, "page larger than limit");
        let Some(last) = got.last() else { break };
        after = last.id;
        out.extend(got);
        assert!(out.len() < 100_000, "event paging does not terminate");
    }
    out
}

pub async fn events_get_increasing_ids_and_round_trip<S: Store>(store: &S) {
    assert!(store
        .list_events(&events_query(0, 10, None))
        .await
        .expect("list")
        .is_empty());
    let sa = arn(R1, "evented");
    let mut made = Vec::new();
    for i in 0..4 {
        let mut e = event(i, (i != 1).then_some(sa.as_str()));
        // The id passed in is ignored.
        e.id = 1000 - i;
        made.push(append(store, &e).await);
    }
    for w in made.windows(2) {
        assert!(w[0].id < w[1].id, "ids not increasing: {made:?}");
    }
    assert!(made[0].id > 0, "ids start above 0, so after_id 0 lists all");
    assert_eq!(
        store
            .list_events(&events_query(0, 10, None))
            .await
            .expect("list"),
        made
    );
}

pub async fn events_list_after_id_with_limit_and_secret_filter<S: Store>(store: &S) {
    let (sa, sb) = (arn(R1, "ev-a"), arn(R2, "ev-b"));
    let mut made = Vec::new();
    for i in 0..9 {
        let target = match i % 3 {
            0 => Some(sa.as_str()),
            1 => Some(sb.as_str()),
            _ => None,
        };
        made.push(append(store, &event(i, target)).await);
    }
    let ids = |es: &[EventRecord]| es.iter().map(|e| e.id).collect::<Vec<_>>();

    // after_id is exclusive; limit keeps the oldest.
    let got = store
        .list_events(&events_query(made[2].id, 3, None))
        .await
        .expect("list");
    assert_eq!(got, made[3..6]);
    assert!(store
        .list_events(&events_query(made[8].id, 10, None))
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_events(&events_query(0, 0, None))
        .await
        .expect("list")
        .is_empty());
    for page in [1, 2, 4, 100] {
        assert_eq!(all_events(store, 0, page, None).await, made, "page {page}");
    }

    // One secret's events, paged, starting after any id (not only that secret's).
    let of = |arn: &str| -> Vec<EventRecord> {
        made.iter()
            .filter(|e| e.secret_arn.as_deref() == Some(arn))
            .cloned()
            .collect()
    };
    for page in [1, 2, 10] {
        assert_eq!(all_events(store, 0, page, Some(&sa)).await, of(&sa));
        assert_eq!(all_events(store, 0, page, Some(&sb)).await, of(&sb));
    }
    let after_b = all_events(store, made[1].id, 10, Some(&sb)).await;
    assert_eq!(ids(&after_b), ids(&of(&sb)[1..]));
    let after_other = all_events(store, made[2].id, 1, Some(&sa)).await;
    assert_eq!(ids(&after_other), ids(&of(&sa)[1..]));
    assert!(all_events(store, 0, 10, Some(&arn(R1, "quiet")))
        .await
        .is_empty());
}

pub async fn events_are_all_listed_after_many_appends<S: Store>(store: &S) {
    let sa = arn(R1, "busy");
    let mut made = Vec::new();
    for i in 0..300 {
        let target = (i % 4 == 0).then_some(sa.as_str());
        made.push(append(store, &event(i, target)).await);
    }
    let listed = all_events(store, 0, 64, None).await;
    assert_eq!(listed.len(), made.len());
    assert_eq!(listed, made);
    let ids: std::collections::BTreeSet<i64> = made.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), made.len(), "an id was handed out twice");
    let mine = all_events(store, 0, 7, Some(&sa)).await;
    assert_eq!(mine.len(), 75);
    assert!(mine.iter().all(|e| e.secret_arn.as_deref() == Some(&*sa)));
}

pub async fn wipe_secrets_removes_events_without_reusing_ids<S: Store>(store: &S) {
    let s = secret(R1, "wiped", T0);
    create(store, &s, None).await;
    let mut last = 0;
    for i in 0..3 {
        last = append(store, &event(i, Some(&s.arn))).await.id;
    }
    let f = RotationFunctionRecord {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:keep".into(),
        spec: serde_json::json!({"builtin": "generic"}),
        sealed_secret: None,
        created_at: T0,
    };
    store.put_rotation_function(&f).await.expect("put");

    store.wipe_secrets().await.expect("wipe");
    assert!(all_events(store, 0, 10, None).await.is_empty());
    assert!(all_events(store, 0, 10, Some(&s.arn)).await.is_empty());
    // Operator configuration survives a dev reset.
    assert_eq!(store.list_rotation_functions().await.expect("list"), [f]);
    // A consumer that had read up to `last` must still see what comes next.
    let next = append(store, &event(9, None)).await;
    assert!(
        next.id > last,
        "id {} reused after wipe (last {last})",
        next.id
    );
    assert_eq!(
        store
            .list_events(&events_query(last, 10, None))
            .await
            .expect("list"),
        [next]
    );
}

// ----- sync jobs -----

pub async fn sync_jobs_upsert_list_delete<S: Store>(store: &S) {
    assert!(store.list_sync_jobs().await.expect("list").is_empty());
    let job = |name: &str, mount: &str, at| SyncJobRecord {
        name: name.into(),
        spec: serde_json::json!({"name": name, "source": {"mount": mount}}),
        created_at: at,
    };
    // Put out of name order; then replace one.
    store
        .put_sync_job(&job("b", "kv", T0))
        .await
        .expect("put b");
    store
        .put_sync_job(&job("a", "secret", T0))
        .await
        .expect("put a");
    store
        .put_sync_job(&job("a", "other", T0 + 1))
        .await
        .expect("replace a");
    assert_eq!(
        store.list_sync_jobs().await.expect("list"),
        [job("a", "other", T0 + 1), job("b", "kv", T0)]
    );
    assert!(store.delete_sync_job("a").await.expect("delete a"));
    assert!(!store.delete_sync_job("a").await.expect("delete a again"));
    assert_eq!(
        store.list_sync_jobs().await.expect("list"),
        [job("b", "kv", T0)]
    );
}

// ----- rotation functions -----

pub async fn rotation_functions_upsert_list_delete<S: Store>(store: &S) {
    assert!(store
        .list_rotation_functions()
        .await
        .expect("list")
        .is_empty());
    let fa = RotationFunctionRecord {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:a-http".into(),
        spec: serde_json::json!({"http": {"url": "https://rotator.internal/a", "timeout_ms": 5000}}),
        sealed_secret: Some((0..=255u8).collect()),
        created_at: T0,
    };
    let fb = RotationFunctionRecord {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:b-cmd".into(),
        spec: serde_json::json!({"command": ["python3", "handler.py"]}),
        sealed_secret: None,
        created_at: T0 + 1,
    };
    // Put out of ARN order.
    store.put_rotation_function(&fb).await.expect("put b");
    store.put_rotation_function(&fa).await.expect("put a");
    let sorted = |mut v: Vec<RotationFunctionRecord>| {
        v.sort_by(|x, y| x.arn.cmp(&y.arn));
        v
    };
    assert_eq!(
        sorted(store.list_rotation_functions().await.expect("list")),
        [fa.clone(), fb.clone()]
    );

    // Put replaces every field, including clearing the sealed secret.
    let fa2 = RotationFunctionRecord {
        spec: serde_json::json!({"builtin": "postgres-single-user"}),
        sealed_secret: None,
        created_at: T0 + 2,
        ..fa.clone()
    };
    store.put_rotation_function(&fa2).await.expect("put again");
    assert_eq!(
        sorted(store.list_rotation_functions().await.expect("list")),
        [fa2, fb.clone()]
    );

    store
        .delete_rotation_function(&fa.arn)
        .await
        .expect("delete");
    // Deleting what is not there is fine.
    store
        .delete_rotation_function(&fa.arn)
        .await
        .expect("delete again");
    store
        .delete_rotation_function("arn:aws:lambda:us-east-1:123456789012:function:never")
        .await
        .expect("delete missing");
    assert_eq!(store.list_rotation_functions().await.expect("list"), [fb]);
}

// ----- keys -----

pub async fn access_keys_round_trip<S: Store>(store: &S) {
    let a = AccessKeyRecord {
        access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
        sealed_secret: vec![1, 2, 3, 0, 255],
        description: Some("ci".into()),
        created_at: T0,
        enabled: true,
        scope: KeyScope::Full,
        owner: None,
    };
    let alice = KeyOwner {
        account: "111122223333".into(),
        user: "alice".into(),
    };
    let b = AccessKeyRecord {
        access_key_id: "AKIABBBBBBBBBBBBBBBB".into(),
        sealed_secret: vec![9],
        description: None,
        created_at: T0 + 1,
        enabled: false,
        scope: KeyScope::Replication,
        owner: Some(alice.clone()),
    };
    store.put_access_key(&a).await.expect("put");
    store.put_access_key(&b).await.expect("put");
    assert_eq!(
        store.get_access_key(&a.access_key_id).await.expect("get"),
        Some(a.clone())
    );
    // The owner round-trips.
    assert_eq!(
        store.get_access_key(&b.access_key_id).await.expect("get"),
        Some(b.clone())
    );
    assert_eq!(store.get_access_key("AKIANOPE").await.expect("get"), None);
    // Put replaces, the owner included (set, then cleared again).
    let a2 = AccessKeyRecord {
        enabled: false,
        scope: KeyScope::Full,
        description: None,
        owner: Some(alice.clone()),
        ..a.clone()
    };
    store.put_access_key(&a2).await.expect("put again");
    assert_eq!(
        store.get_access_key(&a.access_key_id).await.expect("get"),
        Some(a2.clone())
    );
    let a3 = AccessKeyRecord {
        owner: None,
        ..a2.clone()
    };
    store.put_access_key(&a3).await.expect("put a third time");
    let mut all_keys = store.list_access_keys().await.expect("list");
    all_keys.sort_by(|x, y| x.access_key_id.cmp(&y.access_key_id));
    assert_eq!(all_keys, [a3.clone(), b.clone()]);

    // Delete says whether the key was there, and it is gone for good.
    assert!(store
        .delete_access_key(&b.access_key_id)
        .await
        .expect("delete"));
    assert!(!store
        .delete_access_key(&b.access_key_id)
        .await
        .expect("delete again"));
    assert!(!store
        .delete_access_key("AKIANOPE")
        .await
        .expect("delete missing"));
    assert_eq!(
        store.get_access_key(&b.access_key_id).await.expect("get"),
        None
    );
    assert_eq!(store.list_access_keys().await.expect("list"), [a3]);
}

// ----- IAM principals and policies -----

fn iam(account: &str, kind: IamKind, name: &str, document: &str, at: Millis) -> IamRecord {
    IamRecord {
        account: account.into(),
        kind,
        name: name.into(),
        document: document.into(),
        created_at: at,
        updated_at: at,
    }
}

pub async fn iam_entities_round_trip<S: Store>(store: &S) {
    const A1: &str = "111122223333";
    const A2: &str = "444455556666";
    assert!(store.list_iam().await.expect("list").is_empty());
    let u1 = iam(A1, IamKind::User, "alice", r#"{"path":"/"}"#, T0);
    let r1 = iam(A1, IamKind::Role, "deployer", r#"{"trust":{}}"#, T0 + 1);
    let p1 = iam(
        A1,
        IamKind::Policy,
        "read-only",
        r#"{"Version":"2012-10-17"}"#,
        T0 + 2,
    );
    // The same names in another account, and one name shared by two kinds.
    let u2 = iam(A2, IamKind::User, "alice", r#"{"path":"/other/"}"#, T0 + 3);
    let r2 = iam(A2, IamKind::Role, "alice", "{}", T0 + 4);
    let p2 = iam(A2, IamKind::Policy, "read-only", "{}", T0 + 5);
    // Created out of order.
    for r in [&p2, &u1, &r2, &p1, &u2, &r1] {
        store.put_iam(r, None).await.expect("create");
    }

    // A second create is refused and changes nothing.
    let again = iam(A1, IamKind::User, "alice", r#"{"changed":true}"#, T0 + 10);
    assert!(matches!(
        store.put_iam(&again, None).await,
        Err(StoreError::NameTaken)
    ));
    // Replacing one that does not exist is refused and creates nothing.
    let missing = iam(A1, IamKind::User, "bob", "{}", T0 + 10);
    assert!(matches!(
        store.put_iam(&missing, Some(T0)).await,
        Err(StoreError::NotFound)
    ));
    // Names are compared exactly, kinds and accounts apart.
    let other_kind = iam(A1, IamKind::Policy, "alice", "{}", T0 + 10);
    assert!(matches!(
        store.put_iam(&other_kind, Some(T0 + 1)).await,
        Err(StoreError::NotFound)
    ));
    let other_account = iam(A2, IamKind::Role, "deployer", "{}", T0 + 10);
    assert!(matches!(
        store.put_iam(&other_account, Some(T0 + 2)).await,
        Err(StoreError::NotFound)
    ));

    // Listed by (account, kind as text, name): "policy" < "role" < "user".
    assert_eq!(
        store.list_iam().await.expect("list"),
        [
            p1.clone(),
            r1.clone(),
            u1.clone(),
            p2.clone(),
            r2.clone(),
            u2.clone()
        ]
    );

    // A replacement changes the document and updated_at and keeps created_at, whatever
    // the record it was given says.
    let replacement = IamRecord {
        document: r#"{"path":"/","tags":[]}"#.into(),
        created_at: T0 + 99,
        updated_at: T0 + 20,
        ..u1.clone()
    };
    // Only over the version it was read at: a stale replacement is a conflict and
    // changes nothing.
    let stale = IamRecord {
        document: r#"{"stale":true}"#.into(),
        ..replacement.clone()
    };
    assert!(matches!(
        store.put_iam(&stale, Some(u1.updated_at + 1)).await,
        Err(StoreError::Conflict)
    ));
    store
        .put_iam(&replacement, Some(u1.updated_at))
        .await
        .expect("replace");
    // The same read again is stale now.
    assert!(matches!(
        store.put_iam(&stale, Some(u1.updated_at)).await,
        Err(StoreError::Conflict)
    ));
    let u1b = IamRecord {
        created_at: u1.created_at,
        ..replacement
    };
    assert_eq!(
        store.list_iam().await.expect("list"),
        [
            p1.clone(),
            r1.clone(),
            u1b.clone(),
            p2.clone(),
            r2.clone(),
            u2.clone()
        ]
    );

    // Delete says whether the entity was there; only that one goes.
    assert!(store
        .delete_iam(A1, IamKind::User, "alice")
        .await
        .expect("delete"));
    assert!(!store
        .delete_iam(A1, IamKind::User, "alice")
        .await
        .expect("delete again"));
    assert!(!store
        .delete_iam(A1, IamKind::Policy, "alice")
        .await
        .expect("delete another kind"));
    assert!(!store
        .delete_iam("999999999999", IamKind::Role, "deployer")
        .await
        .expect("delete in another account"));
    assert_eq!(
        store.list_iam().await.expect("list"),
        [p1, r1, p2, r2.clone(), u2.clone()]
    );
    // The name is free again.
    store.put_iam(&u1, None).await.expect("create again");
    assert!(store.list_iam().await.expect("list").contains(&u1));
    // Deleting the user leaves its keys alone (arca-core checks for them first).
    let key = AccessKeyRecord {
        access_key_id: "AKIAOWNEDBYALICE".into(),
        sealed_secret: vec![4],
        description: None,
        created_at: T0,
        enabled: true,
        scope: KeyScope::Full,
        owner: Some(KeyOwner {
            account: A2.into(),
            user: "alice".into(),
        }),
    };
    store.put_access_key(&key).await.expect("put key");
    assert!(store
        .delete_iam(A2, IamKind::User, "alice")
        .await
        .expect("delete owner"));
    assert_eq!(store.list_access_keys().await.expect("list"), [key]);
}

pub async fn encryption_keys_round_trip<S: Store>(store: &S) {
    let k1 = EncryptionKeyRecord {
        key_id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
        alias: Some("alias/aws/secretsmanager".into()),
        region: R1.into(),
        wrapped: vec![7; 60],
        created_at: T0,
        policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
    };
    let k2 = EncryptionKeyRecord {
        key_id: "6fa459ea-ee8a-3ca4-894e-db77e160355e".into(),
        alias: None,
        region: R2.into(),
        wrapped: vec![0, 1],
        created_at: T0 + 1,
        policy: None,
    };
    store.put_encryption_key(&k1).await.expect("put");
    store.put_encryption_key(&k2).await.expect("put");
    // The upsert replaces the policy too (PutKeyPolicy).
    let k1b = EncryptionKeyRecord {
        alias: Some("alias/renamed".into()),
        policy: Some(r#"{"Version":"2012-10-17","Id":"changed","Statement":[]}"#.into()),
        ..k1.clone()
    };
    store.put_encryption_key(&k1b).await.expect("put again");
    let mut got = store.list_encryption_keys().await.expect("list");
    got.sort_by(|x, y| x.key_id.cmp(&y.key_id));
    assert_eq!(got, [k1b, k2]);
}

pub async fn wipe_secrets_keeps_keys<S: Store>(store: &S) {
    let s = secret(R1, "w", T0);
    create(store, &s, Some(&version("v1", &["AWSCURRENT"], T0))).await;
    create(store, &secret(R2, "w2", T0), None).await;
    let key = AccessKeyRecord {
        access_key_id: "AKIAKEEP".into(),
        sealed_secret: vec![1],
        description: None,
        created_at: T0,
        enabled: true,
        scope: KeyScope::Full,
        owner: Some(KeyOwner {
            account: "111122223333".into(),
            user: "keeper".into(),
        }),
    };
    store.put_access_key(&key).await.expect("put");
    // IAM entities are operator configuration too: a wipe keeps them.
    let user = iam("111122223333", IamKind::User, "keeper", "{}", T0);
    let policy = iam("111122223333", IamKind::Policy, "p", "{}", T0);
    store.put_iam(&user, None).await.expect("put user");
    store.put_iam(&policy, None).await.expect("put policy");
    store.wipe_secrets().await.expect("wipe");
    assert_eq!(store.find_by_arn(R1, &s.arn).await.expect("find"), None);
    assert_eq!(
        store.get_sealed_value(&s.arn, "v1").await.expect("get"),
        None
    );
    for region in [R1, R2] {
        let q = ListQuery {
            include_planned_deletion: true,
            ..query(SortBy::Name, false, 10)
        };
        assert!(store
            .list_secrets(region, &q, &all)
            .await
            .expect("list")
            .is_empty());
    }
    assert_eq!(store.list_access_keys().await.expect("list"), [key]);
    assert_eq!(store.list_iam().await.expect("list iam"), [policy, user]);
    // The name is free again.
    create(store, &s, None).await;
}

// ----- audit trail -----

fn audit_entry(name: &str, resource: Option<&str>, time: Millis) -> AuditEntry {
    AuditEntry {
        time,
        event_id: format!("{name}-{time}-{}", resource.unwrap_or("-")),
        event_type: "AwsApiCall".into(),
        event_name: name.into(),
        region: R1.into(),
        read_only: name.starts_with("Get") || name.starts_with("Describe"),
        access_key_id: Some("AKIAEXAMPLE".into()),
        resource: resource.map(str::to_owned),
        error_code: None,
        batch: 0,
        detail: format!("{{\"requestID\":\"{time}\"}}"),
    }
}

/// The resources of every audit record of `event_name`, sorted.
async fn audited<S: Store>(store: &S, event_name: &str) -> Vec<String> {
    let mut out: Vec<String> = all_audit(store)
        .await
        .into_iter()
        .filter(|r| r.entry.event_name == event_name)
        .filter_map(|r| r.entry.resource)
        .collect();
    out.sort();
    out
}

async fn all_audit<S: Store>(store: &S) -> Vec<AuditRecord> {
    store
        .list_audit(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .expect("list audit")
}

fn verify(records: &[AuditRecord]) -> std::result::Result<u64, ChainBreak> {
    let mut walk = ChainWalk::default();
    for r in records {
        walk.check(r)?;
    }
    Ok(walk.checked)
}

pub async fn audit_records_chain_in_append_order<S: Store>(store: &S) {
    let first: Vec<AuditEntry> = (0..3)
        .map(|i| audit_entry("GetSecretValue", Some("a"), T0 + i))
        .collect();
    append_audit(store, first.clone(), Vec::new())
        .await
        .expect("append");
    append_audit(
        store,
        vec![audit_entry("ListSecrets", None, T0 + 10)],
        Vec::new(),
    )
    .await
    .expect("append");
    let all = all_audit(store).await;
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "seqs start at 1 and follow append order"
    );
    assert_eq!(all[0].entry, first[0], "every field round-trips");
    assert_eq!(all[0].prev_hash, GENESIS.to_vec());
    assert_eq!(all[1].prev_hash, all[0].hash);
    assert_eq!(verify(&all), Ok(4));
}

pub async fn audit_records_of_a_write_commit_with_it_only<S: Store>(store: &S) {
    let s = secret(R1, "audited", T0);
    store
        .create_secret_with(
            &s,
            &[version("v1", &["AWSCURRENT"], T0)],
            &Effects {
                outbox: Vec::new(),
                audit: vec![audit_entry("CreateSecret", Some(&s.arn), T0)],
                deliveries: Vec::new(),
                fence: None,
            },
        )
        .await
        .expect("create");
    let stale = by_arn(store, &s).await;
    let mut ok = change(&stale);
    ok.audit = vec![audit_entry("UpdateSecret", Some(&s.arn), T0 + 1)];
    store.update_secret(&ok).await.expect("update");
    let mut refused = change(&stale);
    refused.audit = vec![audit_entry("TagResource", Some(&s.arn), T0 + 2)];
    assert!(matches!(
        store.update_secret(&refused).await,
        Err(StoreError::Conflict)
    ));
    let refused_create = store
        .create_secret_with(
            &s,
            &[],
            &Effects {
                outbox: Vec::new(),
                audit: vec![audit_entry("CreateSecret", Some(&s.arn), T0 + 3)],
                deliveries: Vec::new(),
                fence: None,
            },
        )
        .await;
    assert!(matches!(refused_create, Err(StoreError::NameTaken)));
    append_audit(
        store,
        vec![audit_entry("DescribeSecret", Some(&s.arn), T0 + 4)],
        Vec::new(),
    )
    .await
    .expect("append");
    let all = all_audit(store).await;
    assert_eq!(
        all.iter()
            .map(|r| r.entry.event_name.as_str())
            .collect::<Vec<_>>(),
        ["CreateSecret", "UpdateSecret", "DescribeSecret"],
        "refused writes leave no record of their own, and the chain has no gap"
    );
    assert_eq!(verify(&all), Ok(3));
}

pub async fn audit_lists_filter_and_page_both_ways<S: Store>(store: &S) {
    let mut entries = Vec::new();
    for i in 0..20 {
        let mut e = audit_entry(
            if i % 2 == 0 {
                "GetSecretValue"
            } else {
                "PutSecretValue"
            },
            Some(if i % 4 < 2 { "s1" } else { "s2" }),
            T0 + i,
        );
        if i % 5 == 0 {
            e.error_code = Some("ResourceNotFoundException".into());
        }
        if i == 7 {
            e.access_key_id = Some("AKIAOTHER".into());
        }
        entries.push(e);
    }
    append_audit(store, entries, Vec::new())
        .await
        .expect("append");
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        f(&mut q);
        q
    };
    let seqs = |rs: Vec<AuditRecord>| rs.iter().map(|r| r.seq).collect::<Vec<_>>();
    let got =
        |query: AuditQuery| async move { seqs(store.list_audit(&query).await.expect("list")) };

    assert_eq!(got(q(|q| q.after_seq = 17)).await, [18, 19, 20]);
    assert_eq!(
        got(q(|q| {
            q.descending = true;
            q.limit = 3;
        }))
        .await,
        [20, 19, 18],
        "newest first"
    );
    assert_eq!(
        got(q(|q| {
            q.descending = true;
            q.before_seq = Some(18);
            q.limit = 2;
        }))
        .await,
        [17, 16]
    );
    assert_eq!(
        got(q(|q| {
            q.from_time = Some(T0 + 3);
            q.to_time = Some(T0 + 6);
        }))
        .await,
        [4, 5, 6],
        "from inclusive, to exclusive"
    );
    assert_eq!(
        got(q(|q| q.resource = Some("s2".into()))).await,
        [3, 4, 7, 8, 11, 12, 15, 16, 19, 20]
    );
    assert_eq!(
        got(q(|q| {
            q.event_name = Some("PutSecretValue".into());
            q.resource = Some("s1".into());
        }))
        .await,
        [2, 6, 10, 14, 18]
    );
    assert_eq!(got(q(|q| q.failed = Some(true))).await, [1, 6, 11, 16]);
    assert_eq!(got(q(|q| q.failed = Some(false))).await.len(), 16);
    assert_eq!(
        got(q(|q| q.access_key_id = Some("AKIAOTHER".into()))).await,
        [8]
    );
    assert_eq!(got(q(|q| q.read_only = Some(true))).await.len(), 10);
    assert_eq!(
        got(q(
            |q| q.event_id = Some(format!("PutSecretValue-{}-s2", T0 + 3))
        ))
        .await,
        [4]
    );
    assert!(got(q(|q| q.limit = 0)).await.is_empty());

    // A secret's records by its name find them under its ARN (of any incarnation), and
    // nothing of a secret whose name merely starts alike or differs in case.
    let a1 = arn(R1, "db_pass");
    let a2 = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db_pass-XyZ123".to_owned();
    let other = arn(R1, "db_pass-old");
    let lookalike = arn(R1, "DB_PASS");
    let mut more = Vec::new();
    for (i, r) in [&a1, &a2, &other, &lookalike].into_iter().enumerate() {
        more.push(audit_entry("DescribeSecret", Some(r), T0 + 100 + i as i64));
    }
    more.push(audit_entry("DescribeSecret", Some("db_pass"), T0 + 200));
    append_audit(store, more, Vec::new()).await.expect("append");
    let found = store
        .list_audit(&q(|q| q.resource = Some("db_pass".into())))
        .await
        .expect("list");
    assert_eq!(
        found
            .iter()
            .map(|r| r.entry.resource.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        [a1.clone(), a2, "db_pass".to_owned()]
    );
    let exact = AuditQuery {
        resource: Some(a1),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(got(exact).await.len(), 1, "an ARN matches exactly");
}

// ----- event rules, targets, deliveries -----

fn rule(region: &str, name: &str) -> RuleRecord {
    RuleRecord {
        region: region.to_owned(),
        name: name.to_owned(),
        pattern: r#"{"source":["aws.secretsmanager"]}"#.to_owned(),
        state: "ENABLED".to_owned(),
        description: Some(format!("rule {name}")),
        managed_by: None,
        created_at: T0,
    }
}

fn target(region: &str, rule: &str, id: &str) -> TargetRecord {
    TargetRecord {
        region: region.to_owned(),
        rule: rule.to_owned(),
        id: id.to_owned(),
        arn: format!("arn:aws:lambda:{region}:123456789012:function:{id}"),
        input: None,
        input_path: None,
        max_retries: 185,
        max_age_secs: 86_400,
        options: "{}".to_owned(),
    }
}

fn delivery(rule: &str, target_id: &str, event: &str, at: Millis) -> NewDelivery {
    NewDelivery {
        region: R1.to_owned(),
        rule: rule.to_owned(),
        target_id: target_id.to_owned(),
        event_id: format!("event-{event}"),
        event: format!(r#"{{"id":"event-{event}"}}"#),
        created_at: at,
    }
}

fn events_of(ds: &[DeliveryRecord]) -> Vec<&str> {
    ds.iter().map(|d| d.delivery.event_id.as_str()).collect()
}

pub async fn rules_and_targets_upsert_list_delete<S: Store>(store: &S) {
    store
        .put_rule(&rule(R1, "b"), Vec::new())
        .await
        .expect("put");
    store
        .put_rule(&rule(R1, "a"), Vec::new())
        .await
        .expect("put");
    store
        .put_rule(&rule(R2, "a"), Vec::new())
        .await
        .expect("put");
    let mut changed = rule(R1, "a");
    changed.state = "DISABLED".to_owned();
    changed.description = None;
    store.put_rule(&changed, Vec::new()).await.expect("upsert");
    assert_eq!(store.get_rule(R1, "a").await.expect("get"), Some(changed));
    assert_eq!(store.get_rule(R1, "zz").await.expect("get"), None);
    let all = store.list_rules().await.expect("list");
    assert_eq!(
        all.iter()
            .map(|r| (r.region.as_str(), r.name.as_str()))
            .collect::<Vec<_>>(),
        [(R2, "a"), (R1, "a"), (R1, "b")],
        "ordered by region, then name"
    );
    // Targets need their rule, are keyed by id, and replaced in place.
    assert!(matches!(
        store
            .put_targets(&[target(R1, "nope", "t")], Vec::new())
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .put_targets(&[target(R1, "a", "t2"), target(R1, "a", "t1")], Vec::new())
        .await
        .expect("targets");
    let mut t1 = target(R1, "a", "t1");
    t1.input = Some("{\"k\":1}".to_owned());
    t1.max_retries = 2;
    store
        .put_targets(&[t1.clone()], Vec::new())
        .await
        .expect("replace");
    store
        .put_targets(&[target(R1, "b", "t1")], Vec::new())
        .await
        .expect("targets");
    let ts = store.list_targets().await.expect("list");
    assert_eq!(ts.len(), 3);
    assert_eq!(ts[0], t1, "ordered by region, rule, id");
    store
        .remove_targets(
            R1,
            "a",
            &["t2".to_owned(), "missing".to_owned()],
            Vec::new(),
        )
        .await
        .expect("remove");
    assert_eq!(store.list_targets().await.expect("list").len(), 2);
    // A rule goes with its targets; its name in another region is another rule.
    assert!(store
        .delete_rule(R1, "a", Vec::new())
        .await
        .expect("delete"));
    assert!(!store
        .delete_rule(R1, "a", Vec::new())
        .await
        .expect("delete again"));
    let ts = store.list_targets().await.expect("list");
    assert_eq!(
        ts.iter()
            .map(|t| (t.rule.as_str(), t.id.as_str()))
            .collect::<Vec<_>>(),
        [("b", "t1")]
    );
    assert!(store.get_rule(R2, "a").await.expect("get").is_some());
}

pub async fn deliveries_commit_with_their_write_only<S: Store>(store: &S) {
    let s = secret(R1, "evented", T0);
    let with = |event: &str, at: Millis| Effects {
        outbox: Vec::new(),
        audit: vec![audit_entry("CreateSecret", Some(&s.arn), at)],
        deliveries: vec![delivery("r", "t", event, at)],
        fence: None,
    };
    store
        .create_secret_with(&s, &[], &with("created", T0))
        .await
        .expect("create");
    // Refused for its name: nothing queued.
    assert!(matches!(
        store.create_secret_with(&s, &[], &with("taken", T0)).await,
        Err(StoreError::NameTaken)
    ));
    let stale = by_arn(store, &s).await;
    let mut ok = change(&stale);
    ok.deliveries = vec![delivery("r", "t", "updated", T0 + 1)];
    store.update_secret(&ok).await.expect("update");
    let mut refused = change(&stale);
    refused.deliveries = vec![delivery("r", "t", "conflicted", T0 + 2)];
    assert!(matches!(
        store.update_secret(&refused).await,
        Err(StoreError::Conflict)
    ));
    append_audit(
        store,
        vec![audit_entry("PutSecretValue", Some(&s.arn), T0 + 3)],
        vec![delivery("r", "t", "refused-call", T0 + 3)],
    )
    .await
    .expect("append");
    // A purge that does not happen (the date moved) writes nothing; the deletion does.
    assert!(!store
        .purge_secret(R1, &s.arn, T0 - 5, &with("not-purged", T0 + 4))
        .await
        .expect("purge"));
    store
        .delete_secret(R1, &s.arn, &with("deleted", T0 + 5))
        .await
        .expect("delete");
    let pending = store
        .list_deliveries(DeliveryState::Pending, 0, 100)
        .await
        .expect("list");
    assert_eq!(
        events_of(&pending),
        [
            "event-created",
            "event-updated",
            "event-refused-call",
            "event-deleted"
        ]
    );
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(pending
        .iter()
        .all(|d| d.attempts == 0 && d.last_error.is_none()));
    assert_eq!(pending[0].next_attempt_at, T0, "due when written");
}

pub async fn deliveries_are_due_one_at_a_time_per_target_in_order<S: Store>(store: &S) {
    store
        .put_rule(&rule(R1, "r"), Vec::new())
        .await
        .expect("rule");
    store
        .put_targets(&[target(R1, "r", "a"), target(R1, "r", "b")], Vec::new())
        .await
        .expect("targets");
    let queued = vec![
        delivery("r", "a", "1", T0),
        delivery("r", "b", "1", T0),
        delivery("r", "a", "2", T0),
        delivery("r", "b", "2", T0),
        delivery("r", "a", "3", T0),
    ];
    append_audit(store, Vec::new(), queued)
        .await
        .expect("queue");
    let due = store.due_deliveries(T0, 10).await.expect("due");
    assert_eq!(
        events_of(&due),
        ["event-1", "event-1"],
        "the head of each target"
    );
    assert_eq!(due[0].delivery.target_id, "a");
    let (a1, b1) = (due[0].seq, due[1].seq);
    // a's head fails and waits: a's later deliveries wait behind it, b goes on.
    store
        .finish_delivery(
            a1,
            &DeliveryOutcome::Retry {
                error: "HTTP 503".to_owned(),
                next_attempt_at: T0 + 1000,
            },
            Vec::new(),
            None,
        )
        .await
        .expect("retry");
    store
        .finish_delivery(
            b1,
            &DeliveryOutcome::Delivered,
            vec![audit_entry("InvokeTarget", None, T0)],
            None,
        )
        .await
        .expect("delivered");
    let due = store.due_deliveries(T0, 10).await.expect("due");
    assert_eq!(events_of(&due), ["event-2"]);
    assert_eq!(due[0].delivery.target_id, "b");
    let later = store.due_deliveries(T0 + 1000, 10).await.expect("due");
    assert_eq!(events_of(&later), ["event-1", "event-2"]);
    assert_eq!(later[0].attempts, 1);
    assert_eq!(later[0].last_error.as_deref(), Some("HTTP 503"));
    // Dead-lettered: out of the queue, a's next is due; replay puts it back at the head.
    store
        .finish_delivery(
            a1,
            &DeliveryOutcome::Dead {
                error: "gave up".to_owned(),
            },
            Vec::new(),
            None,
        )
        .await
        .expect("dead");
    assert!(matches!(
        store
            .finish_delivery(a1, &DeliveryOutcome::Delivered, Vec::new(), None)
            .await,
        Err(StoreError::NotFound)
    ));
    let dead = store
        .list_deliveries(DeliveryState::Dead, 0, 10)
        .await
        .expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].seq, dead[0].attempts), (a1, 2));
    let due = store.due_deliveries(T0 + 1000, 10).await.expect("due");
    assert_eq!(events_of(&due), ["event-2", "event-2"]);
    assert!(store.replay_delivery(a1, T0 + 2000).await.expect("replay"));
    assert!(!store
        .replay_delivery(a1, T0 + 2000)
        .await
        .expect("not dead"));
    let due = store.due_deliveries(T0 + 2000, 10).await.expect("due");
    assert_eq!(
        due[0].seq, a1,
        "the replayed delivery is its target's head again"
    );
    assert_eq!(due[0].attempts, 0);
    // Removing a target drops what is owed to it; dead letters of a deleted rule stay.
    store
        .remove_targets(R1, "r", &["b".to_owned()], Vec::new())
        .await
        .expect("remove");
    let pending = store
        .list_deliveries(DeliveryState::Pending, 0, 10)
        .await
        .expect("pending");
    assert!(pending.iter().all(|d| d.delivery.target_id == "a"));
    store
        .finish_delivery(
            a1,
            &DeliveryOutcome::Dead {
                error: "again".to_owned(),
            },
            Vec::new(),
            None,
        )
        .await
        .expect("dead");
    assert!(store
        .delete_rule(R1, "r", Vec::new())
        .await
        .expect("delete"));
    assert!(store
        .list_deliveries(DeliveryState::Pending, 0, 10)
        .await
        .expect("pending")
        .is_empty());
    assert_eq!(
        store
            .list_deliveries(DeliveryState::Dead, 0, 10)
            .await
            .expect("dead")
            .len(),
        1
    );
    // The delivered one's record is in the trail.
    assert_eq!(all_audit(store).await.len(), 1);
}

// ----- leases -----

fn fence(job: &str, holder: &str, token: i64) -> crate::Fence {
    crate::Fence {
        job: job.to_owned(),
        holder: holder.to_owned(),
        token,
    }
}

/// A shared clock (the database server's) tells the time, and never goes back between
/// two reads. (The database runs beside the tests, so it agrees with this clock closely.)
pub async fn a_shared_clock_tells_the_time<S: Store>(store: &S) {
    use arca_types::time::{Clock, SystemClock};
    let Some(first) = store.shared_clock().await.expect("clock") else {
        return;
    };
    let wall = SystemClock.now_millis();
    assert!((first - wall).abs() < 60_000, "{first} vs {wall}");
    let second = store
        .shared_clock()
        .await
        .expect("clock")
        .expect("still shared");
    assert!(second >= first);
}

pub async fn a_lease_is_exclusive_renewed_taken_over_and_released<S: Store>(store: &S) {
    let ttl = 300;
    let a = store
        .acquire_lease("purge", "node-a", ttl)
        .await
        .expect("acquire")
        .expect("a free lease is granted");
    assert!(
        store
            .acquire_lease("purge", "node-b", ttl)
            .await
            .expect("acquire")
            .is_none(),
        "an unexpired lease is not granted to another holder"
    );
    assert!(
        store
            .acquire_lease("rotation", "node-b", ttl)
            .await
            .expect("acquire")
            .is_some(),
        "leases of other jobs are separate"
    );
    let renewed = store
        .acquire_lease("purge", "node-a", ttl)
        .await
        .expect("acquire")
        .expect("the holder renews");
    assert_eq!(renewed.token, a.token, "a renewal keeps the token");
    tokio::time::sleep(std::time::Duration::from_millis(ttl as u64 + 200)).await;
    let b = store
        .acquire_lease("purge", "node-b", ttl)
        .await
        .expect("acquire")
        .expect("an expired lease is taken over");
    assert!(b.token > a.token, "a new grant gets a greater token");
    // The old holder's release does not free the new holder's lease.
    store
        .release_lease(&fence("purge", "node-a", a.token))
        .await
        .expect("release");
    assert!(store
        .acquire_lease("purge", "node-a", ttl)
        .await
        .expect("acquire")
        .is_none());
    store
        .release_lease(&fence("purge", "node-b", b.token))
        .await
        .expect("release");
    let c = store
        .acquire_lease("purge", "node-a", ttl)
        .await
        .expect("acquire")
        .expect("a released lease is free at once");
    assert!(c.token > b.token, "tokens keep growing after a release");
}

pub async fn a_write_fenced_by_a_lost_lease_commits_nothing<S: Store>(store: &S) {
    let ttl = 300;
    let a = store
        .acquire_lease("purge", "node-a", ttl)
        .await
        .expect("acquire")
        .expect("granted");
    let fa = fence("purge", "node-a", a.token);
    assert!(store.lease_holds(&fa).await.expect("check"));
    assert!(!store
        .lease_holds(&fence("purge", "node-b", a.token))
        .await
        .expect("check"));
    assert!(!store
        .lease_holds(&fence("purge", "node-a", a.token + 1))
        .await
        .expect("check"));
    let s = secret(R1, "fenced", T0);
    store
        .create_secret_with(
            &s,
            &[],
            &Effects {
                fence: Some(fa.clone()),
                ..Effects::default()
            },
        )
        .await
        .expect("a write under a held lease commits");
    let found = store
        .find_by_arn(R1, &s.arn)
        .await
        .expect("find")
        .expect("exists");
    let mut c = change(&found);
    c.secret.description = Some("under a".into());
    c.fence = Some(fa.clone());
    store.update_secret(&c).await.expect("fenced update");

    tokio::time::sleep(std::time::Duration::from_millis(ttl as u64 + 200)).await;
    let b = store
        .acquire_lease("purge", "node-b", ttl)
        .await
        .expect("acquire")
        .expect("taken over");
    assert!(
        !store.lease_holds(&fa).await.expect("check"),
        "a's lease is gone"
    );
    assert!(store
        .lease_holds(&fence("purge", "node-b", b.token))
        .await
        .expect("check"));
    let found = store
        .find_by_arn(R1, &s.arn)
        .await
        .expect("find")
        .expect("exists");
    let mut late = change(&found);
    late.secret.description = Some("late write of a".into());
    late.fence = Some(fa.clone());
    assert!(matches!(
        store.update_secret(&late).await,
        Err(StoreError::LeaseLost)
    ));
    let after = store
        .find_by_arn(R1, &s.arn)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(after.revision, found.revision, "nothing was applied");
    assert_eq!(after.description.as_deref(), Some("under a"));
    let lost = Effects {
        fence: Some(fa.clone()),
        ..Effects::default()
    };
    assert!(matches!(
        store.purge_secret(R1, &s.arn, 0, &lost).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store.delete_secret(R1, &s.arn, &lost).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(store.find_by_arn(R1, &s.arn).await.expect("find").is_some());
    assert!(matches!(
        store.complete_outbox(&[1], Some(&fa)).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store.defer_outbox(&[1], "x", T0, Some(&fa)).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store
            .finish_delivery(1, &DeliveryOutcome::Delivered, Vec::new(), Some(&fa))
            .await,
        Err(StoreError::LeaseLost)
    ));
    // The new holder's writes commit.
    let mut now = change(&after);
    now.secret.description = Some("under b".into());
    now.fence = Some(fence("purge", "node-b", b.token));
    store
        .update_secret(&now)
        .await
        .expect("the new holder writes");
}
