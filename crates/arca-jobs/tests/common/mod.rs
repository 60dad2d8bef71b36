//! Shared by the rotation-scheduler tests: a real arca-core over SQLite in a temp dir,
//! driven by a `ManualClock` (no test waits for real time to pass), a rotation-function
//! binding in the store, and an `InvokerSource` whose invoker runs Arca's real `generic`
//! rotator while recording every step it is asked to run and failing chosen steps on cue
//! (the named failure points of STYLE habit 8).
#![allow(dead_code)]

use arca_core::rotation::ClaimedRotation;
use arca_core::schedule::RotationSchedule;
use arca_core::{Arca, KeyService, RequestCtx};
use arca_crypto::RootKey;
use arca_rotation::builtin::{BuiltinKind, BuiltinOptions, BuiltinRotator};
use arca_rotation::{
    CoreSecretsApi, InvokeError, Invoker, InvokerSource, RotationEvent, SecretsApi, Step,
};
use arca_store::{EventQuery, EventRecord, RotationFunctionRecord, Store};
use arca_store_sqlite::SqliteStore;
use arca_types::secret::SecretString;
use arca_types::time::{to_wire, ManualClock, Millis, MILLIS_PER_DAY};
use arca_types::wire::*;
use arca_types::ApiError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:rotate-generic";
/// A fixed root key (64 hex digits), so a reopened store can read what was sealed before
/// the "restart" — an ephemeral key would make every value unreadable.
const ROOT_KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub const SECOND: Millis = 1000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = MILLIS_PER_DAY;
/// 2024-01-01T10:00:00Z: mid-morning, so day-based windows (which open at midnight UTC)
/// are visibly not "now + N days".
pub const T0: Millis = 1_704_103_200_000;

pub fn day_floor(ms: Millis) -> Millis {
    ms.div_euclid(DAY) * DAY
}

pub fn after_days(n: i64) -> Option<RotationRules> {
    Some(RotationRules {
        automatically_after_days: Some(n),
        ..Default::default()
    })
}

/// The window start the schedule itself gives for these rules.
pub fn window_start(rules: &RotationRules, last_rotated: Millis, now: Millis) -> Millis {
    RotationSchedule::from_rules(rules)
        .expect("valid rules")
        .next_window(last_rotated, now)
        .expect("a window")
        .0
}

pub fn wire(ms: Millis) -> Option<f64> {
    Some(to_wire(ms))
}

/// What the test scripts: which steps fail (before doing anything) how many more times,
/// and every event the function was invoked with.
#[derive(Default)]
pub struct Script {
    calls: Mutex<Vec<RotationEvent>>,
    failures: Mutex<HashMap<Step, u32>>,
}

impl Script {
    /// The next `times` invocations of `step` fail without touching the secret.
    pub fn fail(&self, step: Step, times: u32) {
        self.failures
            .lock()
            .expect("failures lock")
            .insert(step, times);
    }

    pub fn calls_for(&self, arn: &str) -> Vec<RotationEvent> {
        self.calls
            .lock()
            .expect("calls lock")
            .iter()
            .filter(|e| e.secret_id == arn)
            .cloned()
            .collect()
    }

    pub fn steps_for(&self, arn: &str) -> Vec<Step> {
        self.calls_for(arn).into_iter().map(|e| e.step).collect()
    }

    pub fn count(&self, arn: &str, step: Step) -> usize {
        self.steps_for(arn)
            .into_iter()
            .filter(|s| *s == step)
            .count()
    }

    pub fn total(&self) -> usize {
        self.calls.lock().expect("calls lock").len()
    }
}

pub struct ScriptedInvoker {
    script: Arc<Script>,
    inner: BuiltinRotator,
}

#[async_trait]
impl Invoker for ScriptedInvoker {
    async fn invoke(&self, event: &RotationEvent) -> Result<(), InvokeError> {
        self.script
            .calls
            .lock()
            .expect("calls lock")
            .push(event.clone());
        let fail = {
            let mut f = self.script.failures.lock().expect("failures lock");
            match f.get_mut(&event.step) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        if fail {
            return Err(InvokeError::new(format!(
                "injected failure at {}",
                event.step.as_str()
            )));
        }
        self.inner.invoke(event).await
    }
}

/// Hands out the scripted invoker for `FUNCTION_ARN`, and refuses any other ARN.
pub struct ScriptedSource {
    script: Arc<Script>,
    api: Arc<dyn SecretsApi>,
}

impl ScriptedSource {
    pub fn new(script: Arc<Script>, arca: Arc<Arca>) -> Self {
        Self {
            script,
            api: Arc::new(CoreSecretsApi::new(arca)),
        }
    }
}

#[async_trait]
impl InvokerSource for ScriptedSource {
    async fn invoker_for(&self, function_arn: &str) -> Result<Arc<dyn Invoker>, InvokeError> {
        if function_arn != FUNCTION_ARN {
            return Err(InvokeError::new(format!(
                "no rotation function is bound to {function_arn}"
            )));
        }
        Ok(Arc::new(ScriptedInvoker {
            script: self.script.clone(),
            inner: BuiltinRotator::new(
                BuiltinKind::Generic,
                self.api.clone(),
                BuiltinOptions::for_kind(BuiltinKind::Generic),
            ),
        }))
    }
}

/// One "server process": a store over the database file and an Arca over that store.
pub struct Node {
    pub store: Arc<dyn Store>,
    pub arca: Arc<Arca>,
    pub source: Arc<ScriptedSource>,
}

impl Node {
    pub async fn open(db: &Path, clock: &ManualClock, script: Arc<Script>) -> Node {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).expect("open store"));
        Node::over(store, clock, script).await
    }

    /// A second Arca over an already open store: its own in-process write locks, so only
    /// the store's revision check keeps it from racing the first.
    pub async fn over(store: Arc<dyn Store>, clock: &ManualClock, script: Arc<Script>) -> Node {
        let root = RootKey::from_base64(ROOT_KEY_HEX).expect("root key");
        let keys = KeyService::load(root, store.clone(), ACCOUNT.into())
            .await
            .expect("keys");
        let arca = Arc::new(Arca::new(
            store.clone(),
            Arc::new(keys),
            Arc::new(clock.clone()),
            ACCOUNT.into(),
        ));
        let source = Arc::new(ScriptedSource::new(script, arca.clone()));
        Node {
            store,
            arca,
            source,
        }
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub script: Arc<Script>,
    node: Option<Node>,
}

/// Binds `FUNCTION_ARN` to Arca's generic built-in rotator.
pub async fn bind_rotation_function(store: &dyn Store, at: Millis) {
    store
        .put_rotation_function(&RotationFunctionRecord {
            arn: FUNCTION_ARN.into(),
            spec: serde_json::json!({"type": "builtin", "kind": "generic"}),
            sealed_secret: None,
            created_at: at,
        })
        .await
        .expect("bind rotation function");
}

pub fn ctx() -> RequestCtx {
    RequestCtx::new(REGION)
}

impl Env {
    pub async fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(T0);
        let script = Arc::new(Script::default());
        let node = Node::open(&dir.path().join("arca.db"), &clock, script.clone()).await;
        bind_rotation_function(node.store.as_ref(), T0).await;
        Env {
            dir,
            clock,
            script,
            node: Some(node),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("arca.db")
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("a running node")
    }

    pub fn arca(&self) -> &Arc<Arca> {
        &self.node().arca
    }

    /// A restart (or `kill -9`): everything in memory is dropped — unfinished claims
    /// included — and a new process opens the same database file.
    pub async fn restart(&mut self) {
        drop(self.node.take());
        self.node = Some(Node::open(&self.db(), &self.clock, self.script.clone()).await);
    }

    pub fn set(&self, t: Millis) {
        self.clock.set(t);
    }

    pub fn advance(&self, by: Millis) {
        self.clock.advance(by);
    }

    pub fn now(&self) -> Millis {
        arca_types::time::Clock::now_millis(&self.clock)
    }

    pub async fn create(&self, name: &str, value: &str) -> String {
        self.arca()
            .create_secret(
                &ctx(),
                CreateSecretRequest {
                    name: Some(name.into()),
                    client_request_token: Some(uuid()),
                    secret_string: Some(SecretString::new(value.into())),
                    ..Default::default()
                },
            )
            .await
            .expect("create secret")
            .arn
    }

    pub async fn rotate(
        &self,
        arn: &str,
        rules: Option<RotationRules>,
        immediately: Option<bool>,
    ) -> Result<RotateSecretResponse, ApiError> {
        self.arca()
            .rotate_secret(
                &ctx(),
                RotateSecretRequest {
                    secret_id: Some(arn.into()),
                    client_request_token: Some(uuid()),
                    rotation_lambda_arn: Some(FUNCTION_ARN.into()),
                    rotation_rules: rules,
                    rotate_immediately: immediately,
                    ..Default::default()
                },
            )
            .await
    }

    pub async fn cancel(&self, arn: &str) -> RotateSecretResponse {
        self.arca()
            .cancel_rotate_secret(
                &ctx(),
                SecretIdRequest {
                    secret_id: Some(arn.into()),
                },
            )
            .await
            .expect("cancel rotation")
    }

    pub async fn describe(&self, arn: &str) -> DescribeSecretResponse {
        self.arca()
            .describe_secret(
                &ctx(),
                DescribeSecretRequest {
                    secret_id: Some(arn.into()),
                },
            )
            .await
            .expect("describe")
    }

    /// (version id, value) of the version holding `stage`.
    pub async fn staged(&self, arn: &str, stage: &str) -> Option<(String, String)> {
        let r = self
            .arca()
            .get_secret_value(
                &ctx(),
                GetSecretValueRequest {
                    secret_id: Some(arn.into()),
                    version_id: None,
                    version_stage: Some(stage.into()),
                },
            )
            .await
            .ok()?;
        let value = r.secret_string.expect("string").expose().to_owned();
        Some((r.version_id, value))
    }

    pub async fn current(&self, arn: &str) -> (String, String) {
        self.staged(arn, "AWSCURRENT").await.expect("AWSCURRENT")
    }

    pub async fn put(&self, arn: &str, value: &str, stages: Option<Vec<String>>) -> String {
        let token = uuid();
        self.arca()
            .put_secret_value(
                &ctx(),
                PutSecretValueRequest {
                    secret_id: Some(arn.into()),
                    client_request_token: Some(token.clone()),
                    secret_string: Some(SecretString::new(value.into())),
                    version_stages: stages,
                    ..Default::default()
                },
            )
            .await
            .expect("put secret value");
        token
    }

    pub async fn remove_stage(&self, arn: &str, stage: &str, from: &str) {
        self.arca()
            .update_secret_version_stage(
                &ctx(),
                UpdateSecretVersionStageRequest {
                    secret_id: Some(arn.into()),
                    version_stage: Some(stage.into()),
                    remove_from_version_id: Some(from.into()),
                    move_to_version_id: None,
                },
            )
            .await
            .expect("remove stage");
    }

    /// Every version the store holds for the secret, labelled or not.
    pub async fn version_count(&self, arn: &str) -> usize {
        self.node()
            .store
            .find_by_arn(REGION, arn)
            .await
            .expect("find")
            .expect("secret exists")
            .versions
            .len()
    }

    pub async fn events(&self, arn: &str) -> Vec<EventRecord> {
        self.node()
            .store
            .list_events(&EventQuery {
                after_id: 0,
                limit: 10_000,
                secret_arn: Some(arn.into()),
            })
            .await
            .expect("events")
    }

    pub async fn event_names(&self, arn: &str) -> Vec<String> {
        self.events(arn).await.into_iter().map(|e| e.name).collect()
    }

    pub async fn claim(&self) -> Vec<ClaimedRotation> {
        self.arca()
            .claim_due_rotations(100, arca_core::rotation::DEFAULT_LEASE_MS, None)
            .await
            .expect("claim due rotations")
    }

    pub async fn run(&self, claim: &ClaimedRotation) {
        arca_jobs::rotation::run_attempt(self.arca(), self.node().source.as_ref(), claim).await;
    }

    /// Claims what is due and runs it to the end; returns the claims.
    pub async fn tick(&self) -> Vec<ClaimedRotation> {
        let claims = self.claim().await;
        for c in &claims {
            self.run(c).await;
        }
        claims
    }

    /// Invokes one step of the secret's function directly, as a runner would.
    pub async fn invoke(&self, claim: &ClaimedRotation, step: Step) -> Result<(), InvokeError> {
        let inv = self
            .node()
            .source
            .invoker_for(&claim.lambda_arn)
            .await
            .expect("invoker");
        inv.invoke(&RotationEvent {
            step,
            secret_id: claim.arn.clone(),
            client_request_token: claim.job.token.clone(),
            rotation_token: claim.rotation_token.clone(),
        })
        .await
    }

    /// RotateSecret (RotateImmediately) and the first rotation run to success at the
    /// current time. Returns the new version id.
    pub async fn rotate_now(&self, arn: &str, rules: Option<RotationRules>) -> String {
        let token = self
            .rotate(arn, rules, None)
            .await
            .expect("rotate secret")
            .version_id
            .expect("a version id");
        let claims = self.tick().await;
        assert_eq!(claims.len(), 1, "the RotateSecret job is claimed once");
        assert_eq!(
            self.current(arn).await.0,
            token,
            "the first rotation finished"
        );
        token
    }
}

/// A version-4-shaped UUID for ClientRequestTokens (rand is already a dependency).
pub fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
