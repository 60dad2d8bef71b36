//! The cross-node invalidation delay of a system with several nodes: write a secret on
//! one node, then read it on another (which had the old value cached) until the new value
//! shows; the time from the write's acknowledgement to the first read that returns it.

use anyhow::{bail, Context, Result};
use tokio::time::{Duration, Instant};

use crate::load::{Caller, Proto};
use crate::systems::System;
use crate::workloads;

pub struct Delays {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn secret_string(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["SecretString"].as_str().map(str::to_owned)
}

/// `samples` writes on the first node, each read back on the second.
pub async fn measure(sys: &System, samples: usize) -> Result<Delays> {
    let Some(other) = sys.also.first() else {
        bail!("{} has one node", sys.kind.name());
    };
    let mut writer = Caller::new(sys.addr, Proto::Aws);
    let mut reader = Caller::new(other.addr, Proto::Aws);
    let mut delays = Vec::with_capacity(samples);
    for i in 0..samples {
        let name = workloads::write_name_u64((i % 16) as u64);
        // The reader's node caches the current value first, so what is measured is the
        // invalidation, not a miss.
        let before = reader
            .call(workloads::get(&Proto::Aws, &name))
            .await
            .map_err(anyhow::Error::msg)
            .context("reading on the second node")?;
        let value = format!("invalidation-{i}-{}", uuid::Uuid::new_v4().simple());
        if secret_string(&before).as_deref() == Some(value.as_str()) {
            bail!("the value was there before it was written");
        }
        let token = uuid::Uuid::new_v4().to_string();
        writer
            .call(workloads::write(
                &Proto::Aws,
                "PutSecretValue",
                &name,
                &value,
                token,
            ))
            .await
            .map_err(anyhow::Error::msg)
            .context("writing on the first node")?;
        let acked = Instant::now();
        loop {
            let body = reader
                .call(workloads::get(&Proto::Aws, &name))
                .await
                .map_err(anyhow::Error::msg)
                .context("reading on the second node")?;
            if secret_string(&body).as_deref() == Some(value.as_str()) {
                delays.push(acked.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if acked.elapsed() > Duration::from_secs(10) {
                bail!("the second node still served the old value 10 s after the write");
            }
        }
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    Ok(Delays {
        samples: delays.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}
