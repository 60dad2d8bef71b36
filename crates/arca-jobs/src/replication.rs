//! Replication delivery: drains the outbox, in id order, to each replica region over its
//! link (this process for a region it serves, HTTPS to another deployment for a region
//! named in the configuration). Per pass, a secret's entries for one region become one
//! delivery of its current state, and each region gets its deliveries in one request.
//! An entry leaves the outbox only once its region has answered; a region that does not
//! answer is retried with backoff, and catches up when it returns.

use crate::worker::{Job, JobError, Lease, Pass};
use arca_core::replication::Delivered;
use arca_core::Arca;
use arca_store::{Fence, OutboxEntry};
use arca_types::replication::{DeliverRequest, DeliverResponse, Delivery, Outcome, DELIVER_TARGET};
use arca_types::secret::SecretString;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Entries read per pass.
const BATCH: usize = 512;
/// Deliveries per request on a link.
const PER_REQUEST: usize = 64;
/// A remote request's body stays under this (the receiver takes up to 16 MiB): deliveries
/// of large values are split over several requests; one delivery larger than this goes
/// alone.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// A failed link: log-safe reason.
#[derive(Debug, Clone)]
pub struct LinkError(pub String);

/// How deliveries reach one region.
#[async_trait]
pub trait Link: Send + Sync {
    /// Delivers in order; one outcome per delivery, or the link failed as a whole.
    /// `fence` is the replication job's lease: a region this deployment serves applies
    /// the deliveries only while it holds. (Another deployment cannot check it; there the
    /// primary revision that each replica records keeps a late delivery from undoing a
    /// newer one.)
    async fn deliver(
        &self,
        region: &str,
        deliveries: Vec<Delivery>,
        fence: &Fence,
    ) -> Result<Vec<Outcome>, LinkError>;
}

/// A region this process serves: the deliveries are applied in place.
pub struct LocalLink {
    pub arca: Arc<Arca>,
}

#[async_trait]
impl Link for LocalLink {
    async fn deliver(
        &self,
        region: &str,
        deliveries: Vec<Delivery>,
        fence: &Fence,
    ) -> Result<Vec<Outcome>, LinkError> {
        Ok(self.arca.deliver(region, deliveries, Some(fence)).await)
    }
}

/// A region served by another Arca deployment, reached over HTTPS, each request signed
/// with SigV4 by an access key that the other side binds to replication.
pub struct RemoteLink {
    endpoint: String,
    access_key_id: String,
    secret_access_key: SecretString,
    client: reqwest::Client,
}

impl RemoteLink {
    /// `endpoint` must be `https://`: a value never crosses in the clear. `ca_pem`: a CA
    /// to trust besides the system's.
    pub fn new(
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: SecretString,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, LinkError> {
        if !endpoint.starts_with("https://") {
            return Err(LinkError(format!(
                "the endpoint of a replica region must be https:// (got {endpoint})"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true);
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| LinkError(format!("reading the CA bundle: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| LinkError(format!("building the HTTPS client: {e}")))?;
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret_access_key,
            client,
        })
    }
}

#[async_trait]
impl Link for RemoteLink {
    async fn deliver(
        &self,
        region: &str,
        deliveries: Vec<Delivery>,
        _fence: &Fence,
    ) -> Result<Vec<Outcome>, LinkError> {
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for batch in split_by_size(deliveries, MAX_REQUEST_BYTES)? {
            outcomes.extend(self.send(region, batch).await?);
        }
        Ok(outcomes)
    }
}

/// Splits deliveries into runs whose encoded size stays under `max` (a delivery larger
/// than `max` makes a run of its own), keeping their order.
fn split_by_size(deliveries: Vec<Delivery>, max: usize) -> Result<Vec<Vec<Delivery>>, LinkError> {
    let mut runs: Vec<Vec<Delivery>> = Vec::new();
    let mut size = 0;
    for d in deliveries {
        // Measured by encoding into a sink: the plaintext is never kept in a second buffer.
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, &d)
            .map_err(|e| LinkError(format!("encoding a delivery: {e}")))?;
        let n = counter.0 + 1;
        match runs.last_mut() {
            Some(run) if size + n <= max => run.push(d),
            _ => {
                runs.push(vec![d]);
                size = 0;
            }
        }
        size += n;
    }
    Ok(runs)
}

/// An `io::Write` that only counts.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl RemoteLink {
    /// One request: its deliveries' outcomes, in order.
    async fn send(
        &self,
        region: &str,
        deliveries: Vec<Delivery>,
    ) -> Result<Vec<Outcome>, LinkError> {
        let n = deliveries.len();
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&DeliverRequest { deliveries })
                .map_err(|e| LinkError(format!("encoding deliveries: {e}")))?,
        );
        let url = reqwest::Url::parse(&format!("{}/", self.endpoint))
            .map_err(|e| LinkError(format!("bad endpoint: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => return Err(LinkError("the endpoint has no host".into())),
        };
        let signed = arca_sigv4::sign_json_post(
            &host,
            DELIVER_TARGET,
            &body,
            &self.access_key_id,
            &self.secret_access_key,
            region,
        );
        let resp = self
            .client
            .post(url)
            .header("content-type", arca_sigv4::JSON_CONTENT_TYPE)
            .header("x-amz-target", DELIVER_TARGET)
            .header("x-amz-date", &signed.x_amz_date)
            .header("authorization", &signed.authorization)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                LinkError(format!(
                    "the region's endpoint did not answer: {}",
                    chain(&e.without_url())
                ))
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| LinkError(format!("reading the answer: {}", e.without_url())))?;
        if !status.is_success() {
            // An error body is AWS-shaped and holds no secret material.
            let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            return Err(LinkError(format!("the region answered {status}: {text}")));
        }
        let answer: DeliverResponse = serde_json::from_slice(&bytes)
            .map_err(|e| LinkError(format!("the region's answer is malformed: {e}")))?;
        if answer.outcomes.len() != n {
            return Err(LinkError(
                "the region answered a different number of deliveries".into(),
            ));
        }
        Ok(answer.outcomes)
    }
}

/// An error with its causes ("error sending request" alone does not say that the
/// certificate was refused).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Where each region is served: named remote regions, and this process for the rest.
pub struct Links {
    pub local: Arc<dyn Link>,
    pub remote: HashMap<String, Arc<dyn Link>>,
}

impl Links {
    fn get(&self, region: &str) -> Arc<dyn Link> {
        self.remote
            .get(region)
            .cloned()
            .unwrap_or_else(|| self.local.clone())
    }
}

/// A region whose link failed: how often in a row, until when to wait, and why.
struct Down {
    failures: u32,
    until: i64,
    reason: String,
}

/// The delivery job.
pub struct ReplicationJob {
    arca: Arc<Arca>,
    links: Links,
    /// Regions whose link failed, and when to try them again: new entries for them wait
    /// too, instead of hammering a region that is down at the rate of writes.
    down: Mutex<HashMap<String, Down>>,
}

impl ReplicationJob {
    pub fn new(arca: Arc<Arca>, links: Links) -> Self {
        Self {
            arca,
            links,
            down: Mutex::new(HashMap::new()),
        }
    }

    fn backoff_ms(attempts: u32) -> i64 {
        let base = 100i64.saturating_mul(1 << attempts.min(8));
        let capped = base.min(10_000);
        // Jitter over the upper half, so regions that failed together do not retry together.
        capped / 2 + (rand::random::<u64>() % (capped / 2 + 1) as u64) as i64
    }

    /// Until when `region` is left alone, and why (the last failure's reason, which is
    /// what a Failed status shows).
    fn region_down(&self, region: &str, now: i64) -> Option<(i64, String)> {
        let down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        down.get(region)
            .filter(|d| d.until > now)
            .map(|d| (d.until, d.reason.clone()))
    }

    fn mark_down(&self, region: &str, now: i64, reason: &str) -> i64 {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        let d = down.entry(region.to_owned()).or_insert(Down {
            failures: 0,
            until: 0,
            reason: String::new(),
        });
        d.failures = d.failures.saturating_add(1);
        d.until = now + Self::backoff_ms(d.failures);
        d.reason = reason.to_owned();
        d.until
    }

    fn mark_up(&self, region: &str) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.remove(region).is_some() {
            tracing::info!(region, "replica region reachable again");
        }
    }

    async fn defer(
        &self,
        groups: &[Vec<OutboxEntry>],
        reason: &str,
        until: i64,
        fence: &Fence,
    ) -> Result<(), JobError> {
        let ids: Vec<i64> = groups.iter().flatten().map(|e| e.id).collect();
        self.arca
            .store()
            .defer_outbox(&ids, reason, until, Some(fence))
            .await?;
        Ok(())
    }

    /// Delivers one region's groups (each: one secret's entries, in id order); returns the
    /// ids that are done, for the pass to complete in one write with every region's.
    async fn deliver_region(
        &self,
        region: &str,
        groups: Vec<Vec<OutboxEntry>>,
        fence: &Fence,
    ) -> Result<Vec<i64>, JobError> {
        let now = self.arca.clock().now_millis();
        let mut done_all = Vec::new();
        if let Some((until, reason)) = self.region_down(region, now) {
            self.defer(&groups, &reason, until, fence).await?;
            return Ok(done_all);
        }
        let link = self.links.get(region);
        let chunks: Vec<&[Vec<OutboxEntry>]> = groups.chunks(PER_REQUEST).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut sending: Vec<&Vec<OutboxEntry>> = Vec::new();
            let mut deliveries = Vec::new();
            let mut done = Vec::new();
            for g in chunk.iter() {
                match self.arca.prepare_delivery(g, &[]).await? {
                    Some(d) => {
                        sending.push(g);
                        deliveries.push(d);
                    }
                    // Obsolete: the secret or its replica region is gone.
                    None => done.extend(g.iter().map(|e| e.id)),
                }
            }
            let outcomes = if deliveries.is_empty() {
                Vec::new()
            } else {
                match link.deliver(region, deliveries, fence).await {
                    Ok(o) => {
                        self.mark_up(region);
                        o
                    }
                    Err(LinkError(reason)) => {
                        let until = self.mark_down(region, now, &reason);
                        tracing::warn!(region, error = %reason, "replication delivery failed; will retry");
                        done_all.extend(done);
                        // This request's deliveries and every later one wait for the region.
                        let mut rest: Vec<Vec<OutboxEntry>> =
                            sending.iter().map(|g| (*g).clone()).collect();
                        rest.extend(chunks[i + 1..].iter().flat_map(|c| c.iter().cloned()));
                        self.defer(&rest, &reason, until, fence).await?;
                        return Ok(done_all);
                    }
                }
            };
            let mut later: Vec<(Vec<OutboxEntry>, String)> = Vec::new();
            for (g, outcome) in sending.into_iter().zip(outcomes) {
                match self.arca.delivered(g, &outcome, Some(fence)).await? {
                    Delivered::Done => done.extend(g.iter().map(|e| e.id)),
                    Delivered::Retry(reason) => later.push((g.clone(), reason)),
                    Delivered::Resend(ids) => {
                        // Once more, with the values the region lacks.
                        let again = match self.arca.prepare_delivery(g, &ids).await? {
                            Some(d) => link.deliver(region, vec![d], fence).await,
                            None => {
                                done.extend(g.iter().map(|e| e.id));
                                continue;
                            }
                        };
                        let outcome = match again {
                            Ok(mut o) if o.len() == 1 => o.remove(0),
                            Ok(_) => Outcome::Retry {
                                message: "the region answered a different number of deliveries"
                                    .into(),
                            },
                            Err(LinkError(reason)) => Outcome::Retry { message: reason },
                        };
                        match self.arca.delivered(g, &outcome, Some(fence)).await? {
                            Delivered::Done => done.extend(g.iter().map(|e| e.id)),
                            Delivered::Retry(reason) => later.push((g.clone(), reason)),
                            Delivered::Resend(_) => later
                                .push((g.clone(), "the region still lacks version values".into())),
                        }
                    }
                }
            }
            done_all.extend(done);
            for (g, reason) in later {
                let attempts = g.iter().map(|e| e.attempts).max().unwrap_or(0);
                let until = now + Self::backoff_ms(attempts + 1);
                self.defer(std::slice::from_ref(&g), &reason, until, fence)
                    .await?;
            }
        }
        Ok(done_all)
    }
}

/// Groups due entries by region, then by secret (in the order of each secret's first
/// entry, so older work goes first).
fn group(entries: Vec<OutboxEntry>) -> Vec<(String, Vec<Vec<OutboxEntry>>)> {
    let mut regions: Vec<(String, Vec<Vec<OutboxEntry>>)> = Vec::new();
    for e in entries {
        let r = match regions.iter().position(|(r, _)| *r == e.target_region) {
            Some(i) => i,
            None => {
                regions.push((e.target_region.clone(), Vec::new()));
                regions.len() - 1
            }
        };
        let groups = &mut regions[r].1;
        match groups
            .iter_mut()
            .find(|g| g[0].arn == e.arn && g[0].source_region == e.source_region)
        {
            Some(g) => g.push(e),
            None => groups.push(vec![e]),
        }
    }
    regions
}

#[async_trait]
impl Job for ReplicationJob {
    fn name(&self) -> &'static str {
        "replication"
    }

    async fn run(&self, lease: &Lease) -> Result<Pass, JobError> {
        let fence = lease.fence();
        let fence = &fence;
        let now = self.arca.clock().now_millis();
        let due = self.arca.store().due_outbox(now, BATCH).await?;
        if due.is_empty() {
            return Ok(Pass::Idle);
        }
        let full = due.len() == BATCH;
        let runs = group(due).into_iter().map(|(region, groups)| async move {
            self.deliver_region(&region, groups, fence).await
        });
        let mut done = Vec::new();
        for r in futures_util::future::join_all(runs).await {
            done.extend(r?);
        }
        // One write (one commit) for the whole pass.
        self.arca
            .store()
            .complete_outbox(&done, Some(fence))
            .await?;
        Ok(if full { Pass::More } else { Pass::Idle })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_store::OutboxKind;

    fn entry(id: i64, arn: &str, target: &str) -> OutboxEntry {
        let mut e = OutboxEntry::new(OutboxKind::Sync, "us-east-1", arn, "n", target, 0);
        e.id = id;
        e
    }

    #[test]
    fn entries_group_by_region_then_secret_in_order() {
        let g = group(vec![
            entry(1, "a", "eu-west-1"),
            entry(2, "b", "eu-west-1"),
            entry(3, "a", "ap-south-1"),
            entry(4, "a", "eu-west-1"),
        ]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, "eu-west-1");
        let ids: Vec<Vec<i64>> = g[0]
            .1
            .iter()
            .map(|x| x.iter().map(|e| e.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 4], vec![2]]);
        assert_eq!(g[1].1.len(), 1);
    }

    #[test]
    fn large_batches_split_by_size_in_order() {
        let d = |i: usize| Delivery::Remove {
            primary_arn: format!("arn-{i}"),
            name: "x".repeat(1000),
        };
        let runs = split_by_size((0..10).map(d).collect(), 3_500).expect("split");
        let names: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                r.iter()
                    .map(|d| match d {
                        Delivery::Remove { primary_arn, .. } => primary_arn.clone(),
                        _ => unreachable!(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            names.concat(),
            (0..10).map(|i| format!("arn-{i}")).collect::<Vec<_>>()
        );
        assert!(
            runs.iter().all(|r| r.len() == 3 || r.len() == 1),
            "{names:?}"
        );
        // One delivery bigger than the bound goes alone.
        let runs = split_by_size(vec![d(0), d(1)], 10).expect("split");
        assert_eq!(runs.len(), 2);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempts in 0..20 {
            let b = ReplicationJob::backoff_ms(attempts);
            assert!((50..=10_000).contains(&b), "{attempts}: {b}");
        }
        assert!(ReplicationJob::backoff_ms(1) <= 200);
    }
}
