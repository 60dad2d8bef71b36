//! The rotation scheduler against a real arca-core over SQLite, with an injected clock:
//! RotateSecret and the four steps, scheduled windows, the single catch-up after missed
//! windows, leases that survive a crashed runner and a restart, racing schedulers, a
//! failure at each step with backoff, cancellation, manual rotation, and secrets that must
//! not rotate. No test waits for real time: the service clock is a `ManualClock`, and the
//! scheduler is driven through `claim_due_rotations` + `run_attempt` (and, once, through
//! the real `run_rotation` loop).

mod common;

use arca_core::rotation::{
    ClaimedRotation, DEFAULT_LEASE_MS, EVENT_ROTATION_CANCELLED, EVENT_ROTATION_FAILED,
    EVENT_ROTATION_STARTED, EVENT_ROTATION_SUCCEEDED,
};
use arca_rotation::Step;
use arca_types::wire::{DeleteSecretRequest, SecretIdRequest, UpdateSecretRequest};
use arca_types::ErrorCode;
use common::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

const INITIAL: &str = r#"{"username":"app","password":"initial-password"}"#;

fn expected(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------- 1. RotateSecret with RotateImmediately ----------

#[tokio::test]
async fn rotate_immediately_runs_the_four_steps_once_with_one_token() {
    let env = Env::new().await;
    let arn = env.create("app", INITIAL).await;
    let (first, _) = env.current(&arn).await;
    let rules = after_days(7);

    let resp = env.rotate(&arn, rules.clone(), None).await.expect("rotate");
    let token = resp
        .version_id
        .expect("RotateSecret returns the new version id");
    assert_eq!(
        env.event_names(&arn).await,
        expected(&[EVENT_ROTATION_STARTED])
    );

    let claims = env.claim().await;
    assert_eq!(claims.len(), 1);
    let claim = &claims[0];
    assert_eq!(claim.arn, arn);
    assert_eq!(claim.lambda_arn, FUNCTION_ARN);
    assert_eq!(claim.job.token, token);
    assert_eq!(claim.job.attempt, 1);
    assert!(
        env.claim().await.is_empty(),
        "a leased attempt is not claimed twice"
    );

    env.run(claim).await;

    let calls = env.script.calls_for(&arn);
    assert_eq!(
        calls.iter().map(|e| e.step).collect::<Vec<_>>(),
        Step::ALL.to_vec(),
        "the four steps, in order, once each"
    );
    for e in &calls {
        assert_eq!(e.client_request_token, token);
        assert_eq!(e.rotation_token, claim.rotation_token);
        assert_eq!(e.secret_id, arn);
    }
    let (cur, value) = env.current(&arn).await;
    assert_eq!(cur, token, "AWSCURRENT moved to the rotation's version");
    assert_ne!(value, INITIAL);
    assert_eq!(
        env.staged(&arn, "AWSPREVIOUS").await.expect("previous").0,
        first
    );
    assert_eq!(env.version_count(&arn).await, 2, "one new version");

    let events = env.events(&arn).await;
    assert_eq!(
        events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec![EVENT_ROTATION_STARTED, EVENT_ROTATION_SUCCEEDED]
    );
    assert!(events
        .iter()
        .all(|e| e.version_id.as_deref() == Some(token.as_str())));

    let d = env.describe(&arn).await;
    assert_eq!(d.rotation_enabled, Some(true));
    assert_eq!(d.rotation_lambda_arn.as_deref(), Some(FUNCTION_ARN));
    assert_eq!(d.last_rotated_date, wire(T0));
    let next = window_start(rules.as_ref().expect("rules"), T0, T0);
    assert_eq!(next, day_floor(T0) + 7 * DAY);
    assert_eq!(d.next_rotation_date, wire(next));

    // Nothing more to do until the next window.
    assert!(env.claim().await.is_empty());
    env.set(next - 1);
    assert!(env.claim().await.is_empty());
    assert_eq!(env.script.total(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_loop_runs_a_rotate_immediately_request_once() {
    let env = Env::new().await;
    let arn = env.create("looped", INITIAL).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(arca_jobs::rotation::run_rotation(
        env.arca().clone(),
        env.node().source.clone(),
        Duration::from_millis(20),
        arca_jobs::worker::StoreLeases::new(env.arca().store().clone()),
        rx,
    ));
    let token = env
        .rotate(&arn, after_days(30), None)
        .await
        .expect("rotate")
        .version_id
        .expect("version id");

    // A guard against a hang, not a timing assumption: the loop is woken by RotateSecret.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let names = env.event_names(&arn).await;
        if names.iter().any(|n| n == EVENT_ROTATION_SUCCEEDED) {
            break;
        }
        assert!(
            !names.iter().any(|n| n == EVENT_ROTATION_FAILED),
            "rotation failed: {:?}",
            env.events(&arn).await
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the loop never finished the rotation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the loop go round a few more times: nothing is due any more.
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(true).expect("shutdown");
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the loop stops on shutdown")
        .expect("the loop did not panic");

    assert_eq!(env.script.steps_for(&arn), Step::ALL.to_vec());
    assert_eq!(env.current(&arn).await.0, token);
    assert_eq!(
        env.event_names(&arn).await,
        expected(&[EVENT_ROTATION_STARTED, EVENT_ROTATION_SUCCEEDED])
    );
}

// ---------- 2. A scheduled rotation ----------

#[tokio::test]
async fn scheduled_rotation_runs_once_when_its_window_opens() {
    let env = Env::new().await;
    let arn = env.create("daily", INITIAL).await;
    let first = env.rotate_now(&arn, after_days(1)).await;
    let window = day_floor(T0) + DAY;
    assert_eq!(env.describe(&arn).await.next_rotation_date, wire(window));

    // Before the window: nothing is due, however often the scheduler looks.
    for t in [T0 + HOUR, window - HOUR, window - 1] {
        env.set(t);
        assert!(env.claim().await.is_empty(), "nothing due at {t}");
    }

    // Inside the window: exactly one rotation, with a fresh token.
    env.set(window + 2 * HOUR);
    let claims = env.claim().await;
    assert_eq!(claims.len(), 1);
    let token = claims[0].job.token.clone();
    assert_ne!(token, first);
    assert_eq!(claims[0].job.attempt, 1);
    assert!(env.claim().await.is_empty(), "claimed once");
    env.run(&claims[0]).await;
    assert_eq!(env.current(&arn).await.0, token);
    assert!(env.claim().await.is_empty(), "nothing left after it ran");

    let events = env.events(&arn).await;
    let started: Vec<_> = events
        .iter()
        .filter(|e| e.name == EVENT_ROTATION_STARTED)
        .collect();
    assert_eq!(started.len(), 2);
    assert_eq!(started[1].detail["trigger"], "schedule");
    assert_eq!(started[1].version_id.as_deref(), Some(token.as_str()));

    let d = env.describe(&arn).await;
    assert_eq!(d.last_rotated_date, wire(window + 2 * HOUR));
    assert_eq!(d.next_rotation_date, wire(window + DAY));
    assert_eq!(env.script.count(&arn, Step::CreateSecret), 2);
}

// ---------- 3. Missed windows ----------

#[tokio::test]
async fn missed_windows_are_caught_up_once_then_counted_from_now() {
    let env = Env::new().await;
    let arn = env.create("missed", INITIAL).await;
    env.rotate_now(&arn, after_days(1)).await;

    // The server was down for five days: five windows went by.
    env.advance(5 * DAY);
    let now = env.now();
    let mut claimed = Vec::new();
    for _ in 0..5 {
        for c in env.claim().await {
            env.run(&c).await;
            claimed.push(c);
        }
    }
    assert_eq!(claimed.len(), 1, "exactly one catch-up rotation");
    assert_eq!(env.current(&arn).await.0, claimed[0].job.token);

    let d = env.describe(&arn).await;
    assert_eq!(d.last_rotated_date, wire(now));
    let next = day_floor(now) + DAY;
    assert!(next > now);
    assert_eq!(
        d.next_rotation_date,
        wire(next),
        "counted from the catch-up"
    );
    assert_eq!(
        env.event_names(&arn)
            .await
            .iter()
            .filter(|n| *n == EVENT_ROTATION_SUCCEEDED)
            .count(),
        2,
        "the first rotation and one catch-up"
    );

    // The next window is the ordinary next one.
    env.set(next - 1);
    assert!(env.claim().await.is_empty());
    env.set(next);
    assert_eq!(env.tick().await.len(), 1);
}

// ---------- 4. A runner that dies mid-rotation ----------

#[tokio::test]
async fn a_crashed_attempt_is_reclaimed_after_its_lease_and_finishes_idempotently() {
    let env = Env::new().await;
    let arn = env.create("crash", INITIAL).await;
    let (first, first_value) = env.current(&arn).await;
    let token = env
        .rotate(&arn, after_days(30), None)
        .await
        .expect("rotate")
        .version_id
        .expect("version id");

    let c1 = env.claim().await.pop().expect("claimed");
    env.invoke(&c1, Step::CreateSecret)
        .await
        .expect("createSecret");
    let (pending, _) = env.staged(&arn, "AWSPENDING").await.expect("AWSPENDING");
    assert_eq!(pending, token);
    // kill -9: the runner is gone; its claim is never finished.
    let rotation_token = c1.rotation_token.clone();
    drop(c1);
    // The token is a credential: derived when needed, never written to the database.
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", env.db().display());
        if let Ok(bytes) = std::fs::read(&path) {
            let t = rotation_token.expose().as_bytes();
            assert!(
                !bytes.windows(t.len()).any(|w| w == t),
                "the rotation token is stored in {path}"
            );
        }
    }

    // Before the lease runs out, nobody else may run the rotation.
    env.set(T0 + DEFAULT_LEASE_MS - 1);
    assert!(
        env.claim().await.is_empty(),
        "no second runner under a lease"
    );
    assert_eq!(env.current(&arn).await, (first.clone(), first_value));

    env.set(T0 + DEFAULT_LEASE_MS + SECOND);
    let claims = env.claim().await;
    assert_eq!(claims.len(), 1);
    let c2 = &claims[0];
    assert_eq!(c2.job.token, token, "the same rotation is taken up again");
    assert_eq!(c2.rotation_token, rotation_token);
    assert_eq!(c2.job.attempt, 2);
    assert!(env.claim().await.is_empty());
    env.run(c2).await;

    assert_eq!(env.current(&arn).await.0, token);
    assert_eq!(
        env.staged(&arn, "AWSPREVIOUS").await.expect("prev").0,
        first
    );
    assert_eq!(env.version_count(&arn).await, 2, "only one new version");
    assert_eq!(env.script.count(&arn, Step::CreateSecret), 2);
    assert_eq!(env.script.count(&arn, Step::FinishSecret), 1);
    let events = env.events(&arn).await;
    assert_eq!(
        events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec![EVENT_ROTATION_STARTED, EVENT_ROTATION_SUCCEEDED]
    );
    assert_eq!(events[1].detail["attempt"], 2);
}

#[tokio::test]
async fn a_runner_that_dies_after_finish_secret_is_completed_by_the_next_one() {
    let env = Env::new().await;
    let arn = env.create("crash-late", INITIAL).await;
    let token = env
        .rotate(&arn, after_days(30), None)
        .await
        .expect("rotate")
        .version_id
        .expect("version id");
    let c1 = env.claim().await.pop().expect("claimed");
    for step in Step::ALL {
        env.invoke(&c1, step).await.expect("step");
    }
    drop(c1); // AWSCURRENT moved, but the outcome was never recorded.
    assert_eq!(env.current(&arn).await.0, token);
    assert_eq!(env.describe(&arn).await.last_rotated_date, None);

    env.set(T0 + DEFAULT_LEASE_MS + SECOND);
    let claims = env.tick().await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].job.token, token);
    assert_eq!(env.current(&arn).await.0, token);
    assert_eq!(env.version_count(&arn).await, 2);
    assert_eq!(
        env.describe(&arn).await.last_rotated_date,
        wire(T0 + DEFAULT_LEASE_MS + SECOND)
    );
    assert!(env.claim().await.is_empty());
}

// ---------- 5. Two schedulers racing ----------

/// Claims from both nodes at once, many times over; returns every claim either got.
async fn race(nodes: &[Arc<arca_core::Arca>; 2], rounds: usize) -> Vec<ClaimedRotation> {
    let mut tasks = Vec::new();
    for arca in nodes.clone() {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..rounds {
                got.extend(
                    arca.claim_due_rotations(3, DEFAULT_LEASE_MS, None)
                        .await
                        .expect("claim"),
                );
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all
}

fn assert_each_once(claims: &[ClaimedRotation], arns: &[String], attempt: u32) {
    let mut by_arn: BTreeMap<&str, usize> = BTreeMap::new();
    for c in claims {
        *by_arn.entry(c.arn.as_str()).or_default() += 1;
        assert_eq!(c.job.attempt, attempt);
    }
    for arn in arns {
        assert_eq!(
            by_arn.get(arn.as_str()).copied(),
            Some(1),
            "{arn} claimed exactly once (claims: {by_arn:?})"
        );
    }
    assert_eq!(claims.len(), arns.len());
}

async fn racing_schedulers(separate_stores: bool) {
    let env = Env::new().await;
    let mut arns = Vec::new();
    for i in 0..12 {
        let arn = env.create(&format!("race-{i}"), INITIAL).await;
        env.rotate(&arn, after_days(1), None).await.expect("rotate");
        arns.push(arn);
    }
    // A second scheduler: another process on the same database file, or another Arca
    // over the same store — either way its own in-process locks, so only the store's
    // revision check stands between them.
    let other = if separate_stores {
        Node::open(&env.db(), &env.clock, env.script.clone()).await
    } else {
        Node::over(env.node().store.clone(), &env.clock, env.script.clone()).await
    };
    let nodes = [env.arca().clone(), other.arca.clone()];

    let first = race(&nodes, 30).await;
    assert_each_once(&first, &arns, 1);

    // Every runner died; once the leases run out each is taken up again exactly once.
    env.advance(DEFAULT_LEASE_MS + SECOND);
    let second = race(&nodes, 30).await;
    assert_each_once(&second, &arns, 2);

    // Both nodes run what they hold, concurrently; then nothing is left.
    let mut runs = Vec::new();
    for (i, c) in second.into_iter().enumerate() {
        let (arca, source) = if i % 2 == 0 {
            (env.arca().clone(), env.node().source.clone())
        } else {
            (other.arca.clone(), other.source.clone())
        };
        runs.push(tokio::spawn(async move {
            arca_jobs::rotation::run_attempt(&arca, source.as_ref(), &c).await;
        }));
    }
    for r in runs {
        r.await.expect("run");
    }
    assert!(race(&nodes, 5).await.is_empty());
    for arn in &arns {
        let names = env.event_names(arn).await;
        assert_eq!(
            names,
            expected(&[EVENT_ROTATION_STARTED, EVENT_ROTATION_SUCCEEDED]),
            "{arn}"
        );
        assert_eq!(env.version_count(arn).await, 2, "{arn}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedulers_over_one_store_claim_each_rotation_once() {
    racing_schedulers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedulers_in_two_processes_claim_each_rotation_once() {
    racing_schedulers(true).await;
}

// ---------- 6. A failure at each step ----------

async fn failure_at(step: Step) {
    let env = Env::new().await;
    let arn = env.create("failing", INITIAL).await;
    let original = env.current(&arn).await;
    let token = env
        .rotate(&arn, after_days(7), None)
        .await
        .expect("rotate")
        .version_id
        .expect("version id");
    env.script.fail(step, 2);

    let mut rotation_token = None;
    let mut previous_delay = 0;
    for attempt in 1..=2u32 {
        let claims = env.claim().await;
        assert_eq!(claims.len(), 1, "attempt {attempt} is due");
        let c = &claims[0];
        assert_eq!(c.job.token, token, "retried with the same token");
        assert_eq!(c.job.attempt, attempt);
        assert_eq!(
            *rotation_token.get_or_insert(c.rotation_token.clone()),
            c.rotation_token
        );
        env.run(c).await;

        // AWSCURRENT stays where it was and still reads.
        assert_eq!(env.current(&arn).await, original, "after failure {attempt}");
        let failed = env.events(&arn).await.pop().expect("an event");
        assert_eq!(failed.name, EVENT_ROTATION_FAILED);
        assert_eq!(failed.step.as_deref(), Some(step.as_str()));
        assert_eq!(
            failed.error.as_deref(),
            Some(format!("injected failure at {}", step.as_str()).as_str())
        );
        assert_eq!(failed.version_id.as_deref(), Some(token.as_str()));
        assert_eq!(failed.detail["attempt"], attempt);
        let retry_at = failed.detail["retryAt"].as_i64().expect("retryAt");
        let delay = retry_at - env.now();
        assert!(delay >= 15 * SECOND, "backoff {delay} ms is not immediate");
        assert!(delay >= previous_delay / 2, "backoff does not collapse");
        previous_delay = delay;
        let d = env.describe(&arn).await;
        assert_eq!(d.rotation_enabled, Some(true));
        assert_eq!(d.last_rotated_date, None);

        // Not before the backoff...
        env.set(retry_at - 1);
        assert!(env.claim().await.is_empty(), "no retry before the backoff");
        // ...and at it.
        env.set(retry_at);
    }

    let claims = env.tick().await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].job.attempt, 3);
    assert_eq!(env.current(&arn).await.0, token, "the retry completed");
    assert_eq!(env.version_count(&arn).await, 2, "one new version in all");
    assert_eq!(env.script.count(&arn, step), 3);
    assert_eq!(env.script.count(&arn, Step::FinishSecret), {
        if step == Step::FinishSecret {
            3
        } else {
            1
        }
    });
    let names = env.event_names(&arn).await;
    assert_eq!(
        names,
        expected(&[
            EVENT_ROTATION_STARTED,
            EVENT_ROTATION_FAILED,
            EVENT_ROTATION_FAILED,
            EVENT_ROTATION_SUCCEEDED
        ])
    );
    assert_eq!(env.describe(&arn).await.last_rotated_date, wire(env.now()));
    assert!(env.claim().await.is_empty());
}

#[tokio::test]
async fn failure_at_create_secret_keeps_awscurrent_and_retries_after_backoff() {
    failure_at(Step::CreateSecret).await;
}

#[tokio::test]
async fn failure_at_set_secret_keeps_awscurrent_and_retries_after_backoff() {
    failure_at(Step::SetSecret).await;
}

#[tokio::test]
async fn failure_at_test_secret_keeps_awscurrent_and_retries_after_backoff() {
    failure_at(Step::TestSecret).await;
}

#[tokio::test]
async fn failure_at_finish_secret_keeps_awscurrent_and_retries_after_backoff() {
    failure_at(Step::FinishSecret).await;
}

// ---------- 7. CancelRotateSecret ----------

#[tokio::test]
async fn cancel_after_a_failed_attempt_stops_retries_and_blocks_rotate_while_pending() {
    let env = Env::new().await;
    let arn = env.create("cancel", INITIAL).await;
    let original = env.current(&arn).await;
    let token = env
        .rotate(&arn, after_days(1), None)
        .await
        .expect("rotate")
        .version_id
        .expect("version id");
    env.script.fail(Step::SetSecret, 1);
    assert_eq!(env.tick().await.len(), 1);
    assert_eq!(
        env.staged(&arn, "AWSPENDING").await.expect("pending").0,
        token,
        "createSecret left its AWSPENDING version"
    );

    let resp = env.cancel(&arn).await;
    assert_eq!(resp.version_id.as_deref(), Some(token.as_str()));
    let last = env.events(&arn).await.pop().expect("event");
    assert_eq!(last.name, EVENT_ROTATION_CANCELLED);
    assert_eq!(last.version_id.as_deref(), Some(token.as_str()));
    let d = env.describe(&arn).await;
    assert_eq!(d.rotation_enabled, Some(false));
    assert_eq!(d.next_rotation_date, None);

    // No further attempts, however long we wait.
    let calls = env.script.total();
    for by in [5 * MINUTE, HOUR, DAY, 30 * DAY] {
        env.advance(by);
        assert!(env.claim().await.is_empty());
    }
    assert_eq!(env.script.total(), calls);
    assert_eq!(env.current(&arn).await, original);

    // AWSPENDING on another version: a rotation is still "in progress" for RotateSecret.
    let err = env
        .rotate(&arn, None, None)
        .await
        .expect_err("refused while AWSPENDING sits on another version");
    assert_eq!(err.code, ErrorCode::InvalidRequest);

    env.remove_stage(&arn, "AWSPENDING", &token).await;
    let again = env
        .rotate(&arn, None, None)
        .await
        .expect("allowed once AWSPENDING is gone")
        .version_id
        .expect("version id");
    assert_ne!(again, token);
    assert_eq!(env.tick().await.len(), 1);
    assert_eq!(env.current(&arn).await.0, again);
    assert_eq!(env.describe(&arn).await.rotation_enabled, Some(true));
}

#[tokio::test]
async fn cancel_during_a_leased_attempt_leaves_nothing_to_retry() {
    let env = Env::new().await;
    let arn = env.create("cancel-inflight", INITIAL).await;
    env.rotate(&arn, after_days(1), None).await.expect("rotate");
    let c = env.claim().await.pop().expect("claimed");
    env.cancel(&arn).await;
    // The runner finishes after the cancellation (here: failing at testSecret).
    env.script.fail(Step::TestSecret, 1);
    env.run(&c).await;

    for by in [DEFAULT_LEASE_MS + SECOND, HOUR, 2 * DAY] {
        env.advance(by);
        assert!(env.claim().await.is_empty(), "no attempt after cancel");
    }
    assert_eq!(env.script.count(&arn, Step::CreateSecret), 1);
    let names = env.event_names(&arn).await;
    assert_eq!(names[0], EVENT_ROTATION_STARTED);
    assert_eq!(names[1], EVENT_ROTATION_CANCELLED);
    assert!(
        !names[2..].iter().any(|n| n == EVENT_ROTATION_SUCCEEDED),
        "{names:?}"
    );
    let d = env.describe(&arn).await;
    assert_eq!(d.rotation_enabled, Some(false));
    assert_eq!(d.next_rotation_date, None);
}

// ---------- 8. A manual new value counts as a rotation ----------

#[tokio::test]
async fn manual_put_and_update_count_as_rotation_for_the_schedule() {
    let env = Env::new().await;
    let arn = env.create("manual", INITIAL).await;
    let rules = after_days(3);
    env.rotate_now(&arn, rules.clone()).await;
    let scheduled = day_floor(T0) + 3 * DAY;
    assert_eq!(env.describe(&arn).await.next_rotation_date, wire(scheduled));

    env.advance(DAY + 2 * HOUR);
    let t1 = env.now();
    env.put(&arn, r#"{"username":"app","password":"by-hand"}"#, None)
        .await;
    let d = env.describe(&arn).await;
    assert_eq!(d.last_rotated_date, wire(t1));
    assert_eq!(d.next_rotation_date, wire(day_floor(t1) + 3 * DAY));

    env.advance(DAY);
    let t2 = env.now();
    env.arca()
        .update_secret(
            &ctx(),
            UpdateSecretRequest {
                secret_id: Some(arn.clone()),
                client_request_token: Some(uuid()),
                secret_string: Some(arca_types::secret::SecretString::new(
                    r#"{"username":"app","password":"by-hand-2"}"#.into(),
                )),
                ..Default::default()
            },
        )
        .await
        .expect("update secret");
    let d = env.describe(&arn).await;
    assert_eq!(d.last_rotated_date, wire(t2));
    let next = day_floor(t2) + 3 * DAY;
    assert_eq!(d.next_rotation_date, wire(next));

    // A version that does not become AWSCURRENT is not a rotation.
    env.advance(HOUR);
    env.put(&arn, "side", Some(vec!["CUSTOM".into()])).await;
    let d = env.describe(&arn).await;
    assert_eq!(d.last_rotated_date, wire(t2));
    assert_eq!(d.next_rotation_date, wire(next));

    // The scheduler follows the moved date.
    env.set(scheduled + HOUR);
    assert!(
        env.claim().await.is_empty(),
        "the old window no longer applies"
    );
    env.set(next - 1);
    assert!(env.claim().await.is_empty());
    env.set(next);
    assert_eq!(env.tick().await.len(), 1);
}

// ---------- 9. Persistence across restarts ----------

#[tokio::test]
async fn a_restart_before_the_window_keeps_the_schedule() {
    let mut env = Env::new().await;
    let arn = env.create("persist", INITIAL).await;
    let first = env.rotate_now(&arn, after_days(2)).await;
    let next = day_floor(T0) + 2 * DAY;

    env.advance(HOUR);
    env.restart().await;
    assert!(env.claim().await.is_empty());
    let d = env.describe(&arn).await;
    assert_eq!(d.next_rotation_date, wire(next));
    assert_eq!(d.last_rotated_date, wire(T0));
    assert_eq!(env.current(&arn).await.0, first);

    env.set(next - 1);
    env.restart().await;
    assert!(env.claim().await.is_empty());
    env.set(next + HOUR);
    env.restart().await;
    let claims = env.tick().await;
    assert_eq!(claims.len(), 1);
    assert_eq!(env.current(&arn).await.0, claims[0].job.token);
    env.restart().await;
    assert!(env.claim().await.is_empty());
    assert_eq!(
        env.describe(&arn).await.next_rotation_date,
        wire(day_floor(next + HOUR) + 2 * DAY)
    );
}

#[tokio::test]
async fn a_restart_during_a_leased_attempt_keeps_the_lease_then_resumes() {
    let mut env = Env::new().await;
    let arn = env.create("persist-lease", INITIAL).await;
    let (first, _) = env.current(&arn).await;
    let token = env
        .rotate(&arn, after_days(2), None)
        .await
        .expect("rotate")
        .version_id
        .expect("version id");
    let c1 = env.claim().await.pop().expect("claimed");
    env.invoke(&c1, Step::CreateSecret).await.expect("create");
    env.invoke(&c1, Step::SetSecret).await.expect("set");
    drop(c1);
    env.restart().await; // kill -9 mid-rotation

    env.set(T0 + DEFAULT_LEASE_MS - 1);
    assert!(
        env.claim().await.is_empty(),
        "the lease survived the restart"
    );
    assert_eq!(env.current(&arn).await.0, first);

    env.set(T0 + DEFAULT_LEASE_MS + MINUTE);
    env.restart().await;
    let claims = env.tick().await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].job.token, token);
    assert_eq!(claims[0].job.attempt, 2);
    assert_eq!(env.current(&arn).await.0, token);
    assert_eq!(env.version_count(&arn).await, 2);
    assert!(env.claim().await.is_empty());
}

#[tokio::test]
async fn a_restart_during_the_retry_backoff_keeps_the_retry_time() {
    let mut env = Env::new().await;
    let arn = env.create("persist-retry", INITIAL).await;
    let token = env
        .rotate(&arn, after_days(2), None)
        .await
        .expect("rotate")
        .version_id
        .expect("version id");
    env.script.fail(Step::TestSecret, 1);
    env.tick().await;
    let retry_at = env.events(&arn).await.pop().expect("event").detail["retryAt"]
        .as_i64()
        .expect("retryAt");

    env.restart().await;
    env.set(retry_at - 1);
    assert!(env.claim().await.is_empty());
    env.set(retry_at);
    let claims = env.tick().await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].job.attempt, 2);
    assert_eq!(env.current(&arn).await.0, token);
}

// ---------- 10. Secrets that must not rotate ----------

#[tokio::test]
async fn a_secret_scheduled_for_deletion_is_not_rotated() {
    let env = Env::new().await;
    let arn = env.create("deleted", INITIAL).await;
    env.rotate_now(&arn, after_days(1)).await;
    // And one deleted while its RotateSecret job waits.
    let arn2 = env.create("deleted-pending", INITIAL).await;
    env.rotate(&arn2, after_days(1), None)
        .await
        .expect("rotate");
    for a in [&arn, &arn2] {
        env.arca()
            .delete_secret(
                &ctx(),
                DeleteSecretRequest {
                    secret_id: Some(a.clone()),
                    recovery_window_in_days: Some(7),
                    force_delete_without_recovery: None,
                },
            )
            .await
            .expect("delete");
    }
    let calls = env.script.total();
    for by in [0, DAY, DEFAULT_LEASE_MS, 3 * DAY] {
        env.advance(by);
        assert!(
            env.claim().await.is_empty(),
            "deleted secrets are not rotated"
        );
    }
    assert_eq!(env.script.total(), calls);
}

#[tokio::test]
async fn a_restored_secret_rotates_again() {
    let env = Env::new().await;
    let arn = env.create("restored", INITIAL).await;
    env.rotate_now(&arn, after_days(1)).await;
    env.arca()
        .delete_secret(
            &ctx(),
            DeleteSecretRequest {
                secret_id: Some(arn.clone()),
                recovery_window_in_days: Some(7),
                force_delete_without_recovery: None,
            },
        )
        .await
        .expect("delete");
    // The scheduler looks while it is deleted (its window has come)...
    env.advance(2 * DAY);
    assert!(env.claim().await.is_empty());
    // ...then it is restored: rotation is still enabled and overdue.
    env.arca()
        .restore_secret(
            &ctx(),
            SecretIdRequest {
                secret_id: Some(arn.clone()),
            },
        )
        .await
        .expect("restore");
    let d = env.describe(&arn).await;
    assert_eq!(d.rotation_enabled, Some(true));
    let next = d.next_rotation_date.expect("NextRotationDate");
    assert!(next <= arca_types::time::to_wire(env.now()), "overdue");
    let claims = env.tick().await;
    assert_eq!(
        claims.len(),
        1,
        "RotationEnabled with NextRotationDate {next} in the past, yet the scheduler never \
         claims the restored secret"
    );
}

#[tokio::test]
async fn a_secret_with_rotation_disabled_is_not_rotated() {
    let env = Env::new().await;
    let arn = env.create("disabled", INITIAL).await;
    let rules = after_days(1);
    env.rotate_now(&arn, rules.clone()).await;
    env.cancel(&arn).await;
    let d = env.describe(&arn).await;
    assert_eq!(d.rotation_enabled, Some(false));
    assert_eq!(
        d.rotation_rules
            .as_ref()
            .map(|r| r.automatically_after_days),
        Some(Some(1))
    );

    // A manual value does not re-enable it either.
    env.advance(HOUR);
    env.put(&arn, "by-hand", None).await;
    let calls = env.script.total();
    for by in [DAY, 2 * DAY, 30 * DAY] {
        env.advance(by);
        assert!(env.claim().await.is_empty());
    }
    assert_eq!(env.script.total(), calls);
    assert_eq!(env.describe(&arn).await.next_rotation_date, None);

    // A secret that never had rotation is never looked at.
    let plain = env.create("plain", INITIAL).await;
    env.advance(100 * DAY);
    assert!(env.claim().await.is_empty());
    assert!(env.script.calls_for(&plain).is_empty());
    let seen: HashSet<String> = env
        .script
        .calls_for(&arn)
        .into_iter()
        .map(|e| e.client_request_token)
        .collect();
    assert_eq!(seen.len(), 1, "only the first rotation ever ran");
}

// ---------- RotateImmediately=false ----------

#[tokio::test]
async fn rotate_immediately_false_runs_only_test_secret_and_keeps_awscurrent() {
    let env = Env::new().await;
    let arn = env.create("test-only", INITIAL).await;
    let original = env.current(&arn).await;
    let rules = after_days(5);
    let resp = env
        .rotate(&arn, rules.clone(), Some(false))
        .await
        .expect("rotate");
    assert_eq!(resp.version_id, None);
    let claims = env.tick().await;
    assert_eq!(claims.len(), 1);
    assert!(claims[0].job.test_only);
    assert_eq!(env.script.steps_for(&arn), vec![Step::TestSecret]);
    assert_eq!(env.current(&arn).await, original);
    assert!(
        env.staged(&arn, "AWSPENDING").await.is_none(),
        "test label removed"
    );
    let names = env.event_names(&arn).await;
    assert_eq!(
        names,
        expected(&[EVENT_ROTATION_STARTED, EVENT_ROTATION_SUCCEEDED])
    );
    let d = env.describe(&arn).await;
    assert_eq!(d.rotation_enabled, Some(true));
    assert_eq!(d.last_rotated_date, None);
    let next = window_start(rules.as_ref().expect("rules"), T0, T0);
    assert_eq!(d.next_rotation_date, wire(next));
    assert!(env.claim().await.is_empty());
    env.set(next);
    let claims = env.tick().await;
    assert_eq!(claims.len(), 1, "the first scheduled rotation");
    assert!(!claims[0].job.test_only);
    assert_eq!(env.current(&arn).await.0, claims[0].job.token);
}

// ---------- A runner that outlives its lease ----------

/// Runner A holds attempt 1 past its lease; runner B takes the rotation over (attempt 2).
/// When A finally reports its (failed) outcome, B still holds the lease: A's report must
/// not release the rotation to a third runner while B is running it.
#[tokio::test]
async fn a_stale_runner_reporting_late_does_not_release_the_new_runners_lease() {
    let env = Env::new().await;
    let arn = env.create("stale", INITIAL).await;
    env.rotate(&arn, after_days(1), None).await.expect("rotate");
    let a = env.claim().await.pop().expect("A claims");
    env.advance(DEFAULT_LEASE_MS + SECOND);
    let b = env
        .claim()
        .await
        .pop()
        .expect("B takes over after the lease");
    assert_eq!(b.job.attempt, 2);
    let b_lease_until = b.job.lease_until.expect("B's lease");

    // A, slow, finally fails and reports.
    env.script.fail(Step::TestSecret, 1);
    env.run(&a).await;

    // Well inside B's lease (and past any backoff attempt 1 could get), nobody else may
    // start the rotation.
    env.advance(5 * MINUTE);
    assert!(env.now() < b_lease_until);
    let third = env.claim().await;
    assert!(
        third.is_empty(),
        "a third runner got attempt {:?} while B (attempt 2) still holds its lease until {}",
        third.iter().map(|c| c.job.attempt).collect::<Vec<_>>(),
        b_lease_until
    );
}
