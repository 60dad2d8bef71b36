//! The one loop every background job runs in: take (or renew) the job's lease, run one
//! pass (renewing the lease while it runs), then wait for the job's interval, a wake-up
//! or shutdown; a failed pass backs off exponentially with jitter. Leases come from a
//! [`Leases`] implementation: the server uses [`StoreLeases`], kept in the store (SQLite
//! for one node, PostgreSQL for several), so that each job runs on one node of a cluster
//! at a time; [`LocalLeases`] keeps them in memory, for tests. Each grant's fencing token
//! goes with the job's writes ([`Lease::fence`]) and the store checks it in their
//! transaction, so a holder that lost its lease cannot commit.

use arca_store::{Fence, Store};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// A pass's failure, as the job reports it (logged; never secret material).
pub type JobError = Box<dyn std::error::Error + Send + Sync>;

/// What a pass leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Nothing more is due now: wait for the interval or a wake-up.
    Idle,
    /// More work is waiting: run again at once.
    More,
}

/// One kind of background work: the purge, rotation, and later replication delivery,
/// sync and event delivery.
#[async_trait]
pub trait Job: Send + Sync {
    /// The job's name: the lease's key and the logs' `job` field.
    fn name(&self) -> &'static str;
    /// One pass, under `lease`.
    async fn run(&self, lease: &Lease) -> Result<Pass, JobError>;
}

/// The right to run a job until `expires`, held by `holder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: &'static str,
    pub holder: String,
    /// Grows with every new grant of this job's lease (not with renewals): a write that
    /// carries an older token than the current one comes from a holder that lost it.
    pub fencing_token: u64,
    pub expires: Instant,
}

impl Lease {
    /// What the job's writes carry so that they commit only while this grant holds.
    pub fn fence(&self) -> Fence {
        Fence {
            job: self.job.to_owned(),
            holder: self.holder.clone(),
            token: self.fencing_token as i64,
        }
    }
}

/// This process's name in lease tables: the pid and a random part, so that nodes on
/// different hosts (or a restarted process reusing a pid) never share one.
pub fn this_node() -> &'static str {
    static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        use rand::Rng;
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let tag: u32 = rand::thread_rng().gen();
        if host.is_empty() {
            format!("node-{}-{tag:08x}", std::process::id())
        } else {
            format!("{host}-{}-{tag:08x}", std::process::id())
        }
    })
}

/// Leases kept in the store, by the store's clock: one node on SQLite, any number on
/// PostgreSQL, the same code.
pub struct StoreLeases {
    store: Arc<dyn Store>,
}

impl StoreLeases {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

#[async_trait]
impl Leases for StoreLeases {
    async fn acquire(
        &self,
        job: &'static str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, JobError> {
        // The expiry is counted from before the request, so this node's idea of it is
        // never later than the store's.
        let asked = Instant::now();
        let grant = self
            .store
            .acquire_lease(job, holder, ttl.as_millis() as i64)
            .await?;
        Ok(grant.map(|g| Lease {
            job,
            holder: holder.to_owned(),
            fencing_token: g.token as u64,
            expires: asked + Duration::from_millis(g.ttl_ms.max(0) as u64),
        }))
    }

    async fn release(&self, lease: &Lease) {
        if let Err(e) = self.store.release_lease(&lease.fence()).await {
            tracing::warn!(job = lease.job, error = %e, "releasing a lease failed; it will expire");
        }
    }
}

/// Where leases are kept.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Grants `job` to `holder` for `ttl` (renewing it when `holder` already has it), or
    /// `None` while another holder's lease has not expired.
    async fn acquire(
        &self,
        job: &'static str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, JobError>;
    /// Gives the lease up (at shutdown), so another holder need not wait for it to expire.
    async fn release(&self, lease: &Lease);
}

/// Leases in this process's memory: right for one node, where every worker shares it.
#[derive(Default)]
pub struct LocalLeases {
    held: Mutex<HashMap<&'static str, Lease>>,
    tokens: Mutex<HashMap<&'static str, u64>>,
}

impl LocalLeases {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

#[async_trait]
impl Leases for LocalLeases {
    async fn acquire(
        &self,
        job: &'static str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, JobError> {
        let now = Instant::now();
        let mut held = self.held.lock().expect("lease table");
        if let Some(l) = held.get_mut(job) {
            if l.holder == holder {
                l.expires = now + ttl;
                return Ok(Some(l.clone()));
            }
            if l.expires > now {
                return Ok(None);
            }
        }
        let mut tokens = self.tokens.lock().expect("lease tokens");
        let token = tokens.entry(job).or_insert(0);
        *token += 1;
        let lease = Lease {
            job,
            holder: holder.to_owned(),
            fencing_token: *token,
            expires: now + ttl,
        };
        held.insert(job, lease.clone());
        Ok(Some(lease))
    }

    async fn release(&self, lease: &Lease) {
        let mut held = self.held.lock().expect("lease table");
        if held
            .get(lease.job)
            .is_some_and(|l| l.holder == lease.holder && l.fencing_token == lease.fencing_token)
        {
            held.remove(lease.job);
        }
    }
}

/// How a job is run.
#[derive(Clone)]
pub struct Worker {
    /// Time between passes when idle; also the longest wait for a lease another holder has.
    pub interval: Duration,
    /// Notified when work may have become due (a write that schedules some).
    pub wakeup: Arc<Notify>,
    pub leases: Arc<dyn Leases>,
    /// This node's name in the lease table.
    pub holder: String,
    /// Up to this much is added at random to each idle wait, so that jobs started
    /// together (and nodes) do not pass in lockstep.
    pub jitter: Duration,
}

impl Worker {
    /// A worker of this node ([`this_node`]) taking its leases from `leases`.
    pub fn local(interval: Duration, wakeup: Arc<Notify>, leases: Arc<dyn Leases>) -> Self {
        Self {
            interval,
            wakeup,
            leases,
            holder: this_node().to_owned(),
            jitter: Duration::ZERO,
        }
    }

    /// The same worker with `jitter` added at random to each idle wait.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    fn idle_wait(&self) -> Duration {
        use rand::Rng;
        let extra = self.jitter.as_millis() as u64;
        if extra == 0 {
            return self.interval;
        }
        self.interval + Duration::from_millis(rand::thread_rng().gen_range(0..=extra))
    }

    /// The lease outlives a few intervals, so one slow pass does not lose it, and a dead
    /// holder's job is taken over soon after.
    fn lease_ttl(&self) -> Duration {
        (self.interval * 3).max(Duration::from_secs(15))
    }

    /// Runs `job` until `shutdown` flips to true.
    pub async fn run(self, job: Arc<dyn Job>, mut shutdown: watch::Receiver<bool>) {
        let name = job.name();
        let mut failures: u32 = 0;
        let mut held: Option<Lease> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // A lease with most of its term left is used as it is: a job passing back to
            // back (Pass::More) does not write its lease row before every pass.
            let fresh = held
                .clone()
                .filter(|l| l.expires > Instant::now() + self.lease_ttl() * 2 / 3);
            let granted = match fresh {
                Some(l) => Ok(Some(l)),
                None => {
                    self.leases
                        .acquire(name, &self.holder, self.lease_ttl())
                        .await
                }
            };
            let wait = match granted {
                Ok(Some(lease)) => {
                    let pass = self.run_pass(job.as_ref(), &lease).await;
                    held = Some(lease);
                    match pass {
                        Ok(Pass::More) => {
                            failures = 0;
                            continue;
                        }
                        Ok(Pass::Idle) => {
                            failures = 0;
                            self.idle_wait()
                        }
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            let wait = backoff(failures, self.interval);
                            tracing::warn!(job = name, error = %e, retry_in_ms = wait.as_millis() as u64, "background pass failed");
                            wait
                        }
                    }
                }
                Ok(None) => {
                    held = None;
                    self.interval
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff(failures, self.interval);
                    tracing::warn!(job = name, error = %e, "taking the job's lease failed");
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wakeup.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
        if let Some(lease) = held {
            self.leases.release(&lease).await;
        }
    }
}

impl Worker {
    /// One pass, renewing the lease every third of its term while the pass runs, so that
    /// a long pass keeps it. A renewal that fails (or finds the lease gone) is logged; the
    /// pass's own fenced writes then fail, and the next loop asks for the lease again.
    /// The renewals run in a task of their own: the pass keeps being polled meanwhile. (A
    /// renewal waits for the pass's fenced write in flight, which holds the lease row; had
    /// the renewal stopped the pass from being polled, neither would ever finish.)
    async fn run_pass(&self, job: &dyn Job, lease: &Lease) -> Result<Pass, JobError> {
        let ttl = self.lease_ttl();
        let (leases, holder, name, token) = (
            self.leases.clone(),
            self.holder.clone(),
            lease.job,
            lease.fencing_token,
        );
        let renewals = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match leases.acquire(name, &holder, ttl).await {
                    Ok(Some(l)) if l.fencing_token == token => {}
                    Ok(_) => tracing::warn!(job = name, "the job's lease was lost during a pass"),
                    Err(e) => {
                        tracing::warn!(job = name, error = %e, "renewing the job's lease failed")
                    }
                }
            }
        });
        let pass = job.run(lease).await;
        renewals.abort();
        pass
    }
}

/// Exponential backoff from 100 ms, capped at `cap`, with full jitter.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    use rand::Rng;
    let base = Duration::from_millis(100).saturating_mul(1u32 << failures.min(16));
    let ceiling = base.min(cap).max(Duration::from_millis(1));
    let ms = rand::thread_rng().gen_range(0..=ceiling.as_millis() as u64);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_is_capped() {
        for f in 0..40 {
            assert!(backoff(f, Duration::from_secs(5)) <= Duration::from_secs(5));
        }
    }

    #[tokio::test]
    async fn a_lease_is_exclusive_until_it_expires_and_then_fenced() {
        let leases = LocalLeases::new();
        let ttl = Duration::from_millis(50);
        let a = leases
            .acquire("j", "a", ttl)
            .await
            .unwrap()
            .expect("a gets it");
        assert!(leases.acquire("j", "b", ttl).await.unwrap().is_none());
        // Renewal keeps the token.
        let a2 = leases
            .acquire("j", "a", ttl)
            .await
            .unwrap()
            .expect("a renews");
        assert_eq!(a2.fencing_token, a.fencing_token);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let b = leases
            .acquire("j", "b", ttl)
            .await
            .unwrap()
            .expect("b takes over");
        assert!(b.fencing_token > a.fencing_token);
        // a's late release does not free b's lease.
        leases.release(&a2).await;
        assert!(leases.acquire("j", "a", ttl).await.unwrap().is_none());
        leases.release(&b).await;
        assert!(leases.acquire("j", "a", ttl).await.unwrap().is_some());
    }

    struct Counting {
        passes: AtomicU32,
        more_until: u32,
        ran: Arc<Notify>,
    }

    #[async_trait]
    impl Job for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn run(&self, _lease: &Lease) -> Result<Pass, JobError> {
            let n = self.passes.fetch_add(1, Ordering::SeqCst) + 1;
            self.ran.notify_one();
            Ok(if n < self.more_until {
                Pass::More
            } else {
                Pass::Idle
            })
        }
    }

    #[tokio::test]
    async fn two_workers_of_one_job_run_it_on_one_holder_only() {
        one_holder_runs_the_job(LocalLeases::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_workers_on_store_leases_run_it_on_one_holder_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            arca_store_sqlite::SqliteStore::open(&dir.path().join("arca.db")).expect("open store");
        one_holder_runs_the_job(StoreLeases::new(Arc::new(store))).await;
    }

    async fn one_holder_runs_the_job(leases: Arc<dyn Leases>) {
        let ran = Arc::new(Notify::new());
        let job = Arc::new(Counting {
            passes: AtomicU32::new(0),
            more_until: 3,
            ran: ran.clone(),
        });
        let (tx, rx) = watch::channel(false);
        let wakeup = Arc::new(Notify::new());
        let mut handles = Vec::new();
        for holder in ["n1", "n2"] {
            let w = Worker {
                interval: Duration::from_secs(3600),
                wakeup: wakeup.clone(),
                leases: leases.clone(),
                holder: holder.into(),
                jitter: Duration::ZERO,
            };
            handles.push(tokio::spawn(w.run(job.clone(), rx.clone())));
        }
        // The first holder runs passes until Idle (three), then both sleep for an hour:
        // the other never gets the lease, so no fourth pass happens.
        while job.passes.load(Ordering::SeqCst) < 3 {
            ran.notified().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(job.passes.load(Ordering::SeqCst), 3);
        // A wake-up runs one more pass, on the holder.
        wakeup.notify_waiters();
        ran.notified().await;
        tx.send(true).unwrap();
        for h in handles {
            h.await.unwrap();
        }
        // Released at shutdown: anyone may take it now.
        assert!(leases
            .acquire("counting", "n3", Duration::from_secs(1))
            .await
            .unwrap()
            .is_some());
    }
}
