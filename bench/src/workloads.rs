//! The workloads of issue 4 and how each maps onto each protocol: Secrets Manager operations
//! for Arca, the ceiling, moto and LocalStack; KV v2 for OpenBao (GET secret/data/<k> for
//! reads, POST secret/data/<k> for writes, LIST secret/metadata/<dir> for lists).

use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use rand::Rng;

use crate::load::{Generator, Proto, Req};

pub const VALUE_LEN: usize = 1024;
pub const HOT_PREFIX: &str = "bench/hot/";
/// PutSecretValue cells write to their own set, so that no secret gets near the 100-version
/// quota within a run (Secrets Manager, and Arca, refuse the 101st version younger than a
/// day with LimitExceededException).
pub const WRITE_PREFIX: &str = "bench/write/";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Get,
    Put,
    List,
    Mixed,
    Create,
}

impl Op {
    pub fn label(self) -> &'static str {
        match self {
            Op::Get => "GetSecretValue",
            Op::Put => "PutSecretValue",
            Op::Create => "CreateSecret",
            Op::List => "ListSecrets",
            Op::Mixed => "Mixed 95/5",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Create => "create",
            Op::List => "list",
            Op::Mixed => "mixed",
        }
    }
}

/// A workload cell: an operation at a concurrency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    pub op: Op,
    pub concurrency: usize,
}

impl Workload {
    /// The cells of issue 4, in the order they run (CreateSecret last: it grows the store).
    pub fn all() -> Vec<Workload> {
        let w = |op, concurrency| Workload { op, concurrency };
        vec![
            w(Op::Get, 1),
            w(Op::Get, 16),
            w(Op::Get, 64),
            w(Op::Put, 1),
            w(Op::Put, 16),
            w(Op::List, 16),
            w(Op::Mixed, 16),
            w(Op::Create, 16),
        ]
    }

    /// `get` (all GetSecretValue cells), `get16`, `put1`, ...
    pub fn parse_list(s: &str) -> anyhow::Result<Vec<Workload>> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let matched: Vec<Workload> = Workload::all()
                .into_iter()
                .filter(|w| {
                    item == w.op.key() || item == format!("{}{}", w.op.key(), w.concurrency)
                })
                .collect();
            if matched.is_empty() {
                anyhow::bail!(
                    "unknown workload {item:?} (get, get1, get16, get64, put, put1, put16, list, mixed, create)"
                );
            }
            out.extend(matched);
        }
        out.sort();
        out.dedup();
        // Keep the canonical order (create last).
        let order = Workload::all();
        out.sort_by_key(|w| order.iter().position(|o| o == w));
        Ok(out)
    }
}

/// A 1,024-character value, different for different `n`.
pub fn secret_value(n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = format!("v{n:015}-");
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while s.len() < VALUE_LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
    }
    s
}

pub fn hot_name(i: usize) -> String {
    format!("{HOT_PREFIX}{i:04}")
}

fn token(rng: &mut impl Rng) -> String {
    uuid::Uuid::from_u128(rng.gen()).to_string()
}

/// A per-request value: a fixed 1 KB body with the sequence number stamped at the front.
fn stamped(base: &str, seq: u64) -> String {
    let stamp = format!("w{seq:015}-");
    let mut s = String::with_capacity(base.len());
    s.push_str(&stamp);
    s.push_str(&base[stamp.len()..]);
    s
}

fn aws(target: &'static str, body: String) -> Req {
    Req {
        method: Method::POST,
        path: "/".into(),
        target: Some(target),
        body: Bytes::from(body),
    }
}

fn vault(method: Method, path: String, body: String) -> Req {
    Req {
        method,
        path,
        target: None,
        body: Bytes::from(body),
    }
}

/// One read of a random secret among the first `hot` hot secrets.
pub fn get(proto: &Proto, name: &str) -> Req {
    match proto {
        Proto::Aws => aws("GetSecretValue", format!(r#"{{"SecretId":"{name}"}}"#)),
        Proto::Vault { .. } => vault(
            Method::GET,
            format!("/v1/secret/data/{name}"),
            String::new(),
        ),
    }
}

/// A new version of (or the first version of) `name`.
pub fn write(proto: &Proto, target: &'static str, name: &str, value: &str, token: String) -> Req {
    match proto {
        Proto::Aws => {
            let id_field = if target == "CreateSecret" {
                "Name"
            } else {
                "SecretId"
            };
            aws(
                target,
                format!(
                    r#"{{"{id_field}":"{name}","ClientRequestToken":"{token}","SecretString":"{value}"}}"#
                ),
            )
        }
        Proto::Vault { .. } => vault(
            Method::POST,
            format!("/v1/secret/data/{name}"),
            format!(r#"{{"data":{{"value":"{value}"}}}}"#),
        ),
    }
}

/// Creates secrets `name_of(offset + seq)` with a 1 KB value each, one per sequence number
/// (seeding the hot set, filling the store for the scale run).
pub fn seed(proto: Proto, name_of: fn(u64) -> String, offset: u64) -> Generator {
    Arc::new(move |rng, seq| {
        let n = offset + seq;
        write(
            &proto,
            "CreateSecret",
            &name_of(n),
            &secret_value(n),
            token(rng),
        )
    })
}

/// PutResourcePolicy of `policy` on hot secret `seq` (the `arca-policies` system).
pub fn put_policies(policy: String) -> Generator {
    let quoted = serde_json::to_string(&policy).unwrap_or_default();
    Arc::new(move |_rng, seq| {
        aws(
            "PutResourcePolicy",
            format!(
                r#"{{"SecretId":"{}","ResourcePolicy":{quoted}}}"#,
                hot_name_u64(seq)
            ),
        )
    })
}

pub fn hot_name_u64(n: u64) -> String {
    format!("{HOT_PREFIX}{n:04}")
}

pub fn write_name_u64(n: u64) -> String {
    format!("{WRITE_PREFIX}{n:05}")
}

/// The request stream of `op` for `proto` over a hot set of `hot` secrets. `tag` makes
/// CreateSecret names unique across repetitions.
pub fn generator(proto: Proto, op: Op, hot: usize, write_set: usize, tag: String) -> Generator {
    let base = secret_value(7);
    Arc::new(move |rng, seq| match op {
        Op::Get => get(&proto, &hot_name(rng.gen_range(0..hot))),
        Op::Put => write(
            &proto,
            "PutSecretValue",
            &write_name_u64(rng.gen_range(0..write_set as u64)),
            &stamped(&base, seq),
            token(rng),
        ),
        Op::Create => write(
            &proto,
            "CreateSecret",
            &format!("bench/new/{tag}-{seq}"),
            &stamped(&base, seq),
            token(rng),
        ),
        Op::List => match &proto {
            Proto::Aws => aws(
                "ListSecrets",
                format!(
                    r#"{{"MaxResults":100,"Filters":[{{"Key":"name","Values":["{HOT_PREFIX}"]}}]}}"#
                ),
            ),
            Proto::Vault { .. } => vault(
                Method::from_bytes(b"LIST").unwrap_or(Method::GET),
                format!("/v1/secret/metadata/{HOT_PREFIX}"),
                String::new(),
            ),
        },
        // Reads of the hot set, writes to the write set: on a fast machine the run's writes
        // alone gave each hot secret ~80 new versions, and some reached the 100-version
        // quota (AWS's LimitExceededException, answered as AWS would).
        Op::Mixed => {
            if rng.gen_range(0..100) < 5 {
                write(
                    &proto,
                    "PutSecretValue",
                    &write_name_u64(rng.gen_range(0..write_set as u64)),
                    &stamped(&base, seq),
                    token(rng),
                )
            } else {
                get(&proto, &hot_name(rng.gen_range(0..hot)))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_one_kilobyte_and_distinct() {
        assert_eq!(secret_value(1).len(), VALUE_LEN);
        assert_ne!(secret_value(1), secret_value(2));
        assert_eq!(stamped(&secret_value(1), 99).len(), VALUE_LEN);
    }

    #[test]
    fn workload_lists_parse() {
        let w = Workload::parse_list("create,get16,put").expect("parses");
        let keys: Vec<String> = w
            .iter()
            .map(|w| format!("{}{}", w.op.key(), w.concurrency))
            .collect();
        assert_eq!(keys, ["get16", "put1", "put16", "create16"]);
    }
}
