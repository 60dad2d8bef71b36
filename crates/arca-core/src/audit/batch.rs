//! Many calls' records in one entry of the chain. Reads come by the tens of thousands a
//! second; one row each (with its JSON and index pages) cost a GetSecretValue half its
//! rate (measured: c16 30,000 req/s with a row per read, 60,000 without a trail). So the
//! queue's writer packs what it gathered into batches: each distinct set of fields (a
//! `Fields`: who, from where, which secret, which parameters, which outcome) is written
//! once, and each call adds only its time and two ids. Reading the trail expands a batch
//! back into one CloudTrail record per call (`expand`); the hash chain covers the batch as
//! written, so no call in it can be changed, dropped or moved unseen.

use super::{Call, Fields, Params, API_CALL};
use arca_store::{AuditEntry, AuditRecord};
use arca_types::time::Millis;
use arca_types::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The batch as stored (the entry's `detail`).
#[derive(Deserialize)]
struct Packed {
    /// The account the records name.
    a: String,
    /// Distinct fields, referred to by index.
    f: Vec<Fields>,
    /// Distinct callers' contexts (event, source, region, key, address, user agent);
    /// when present, `f` holds only what differs per secret (resource, parameters,
    /// outcome) and `g[i]` is the context of `f[i]`. Absent in batches written before
    /// the split: their `f` is whole.
    #[serde(default)]
    x: Vec<Fields>,
    #[serde(default)]
    g: Vec<u32>,
    /// The batch's first time: the calls' times are written after it.
    t: Millis,
    /// The calls in order: (fields index, time after `t`, request id, event id when it is
    /// not the one the request id gives), ids in their compact form (see `Id`).
    c: Vec<(u32, Millis, String, Option<String>)>,
}

/// `Packed` as written, borrowing from the calls.
#[derive(Serialize)]
struct PackedRef<'a> {
    a: &'a str,
    f: Vec<Fields>,
    x: Vec<Fields>,
    g: Vec<u32>,
    t: Millis,
    c: Vec<(u32, Millis, Id<'a>, Option<Id<'a>>)>,
}

/// An id as written in a batch: a UUID (lower-case, hyphenated, as Arca makes them) as
/// the 22 characters of its 16 bytes in base64url, anything else as it is. Written
/// without an allocation: a batch holds thousands.
struct Id<'a>(&'a str);

impl Serialize for Id<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        let canonical = self.0.len() == 36 && !self.0.bytes().any(|b| b.is_ascii_uppercase());
        if let (true, Ok(u)) = (canonical, uuid::Uuid::try_parse(self.0)) {
            let mut buf = [0u8; 22];
            if let Ok(22) = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode_slice(u.as_bytes(), &mut buf)
            {
                if let Ok(text) = std::str::from_utf8(&buf) {
                    return s.serialize_str(text);
                }
            }
        }
        s.serialize_str(self.0)
    }
}

/// An id as the records show it.
fn id(written: &str) -> String {
    use base64::Engine;
    if written.len() == 22 {
        if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(written) {
            if let Ok(u) = uuid::Uuid::from_slice(&bytes) {
                return u.hyphenated().to_string();
            }
        }
    }
    written.to_owned()
}

/// A finished call waiting for its batch.
pub(crate) struct Pending {
    pub call: Arc<Call>,
    pub response: Option<Value>,
    pub error: Option<ApiError>,
}

/// What makes two calls' fields the same, borrowed from the calls: the fields of a call
/// are built (its body parsed, its strings copied) only when it differs from every call
/// before it in the batch.
#[derive(Hash, PartialEq, Eq)]
struct CtxKey<'a> {
    name: &'a str,
    source: &'a str,
    region: &'a str,
    read_only: bool,
    access_key_id: Option<&'a str>,
    /// The source address and user agent by identity: arca-api shares one copy of each
    /// distinct string among requests, so equal pointers mean equal strings (and equal
    /// strings in two copies only cost a duplicate context).
    source_ip: usize,
    user_agent: usize,
}

/// What differs per secret, within one context.
#[derive(Hash, PartialEq, Eq)]
struct Key<'a> {
    ctx: u32,
    params: ParamsKey<'a>,
    resource: Option<&'a str>,
    response: Option<String>,
    error: Option<(&'static str, &'a str)>,
}

#[derive(Hash, PartialEq, Eq)]
enum ParamsKey<'a> {
    Body(&'a [u8]),
    Rendered(String),
}

fn ctx_key(p: &Pending) -> CtxKey<'_> {
    let c = &p.call;
    CtxKey {
        name: &c.event_name,
        source: c.event_source,
        region: &c.region,
        read_only: c.read_only,
        access_key_id: c.caller.access_key_id.as_deref(),
        source_ip: c
            .caller
            .source_ip
            .as_ref()
            .map_or(0, |a| Arc::as_ptr(a) as *const u8 as usize),
        user_agent: c
            .caller
            .user_agent
            .as_ref()
            .map_or(0, |a| Arc::as_ptr(a) as *const u8 as usize),
    }
}

fn key(p: &Pending, ctx: u32) -> Key<'_> {
    let c = &p.call;
    Key {
        ctx,
        params: match &c.params {
            Params::ReadBody(b) => ParamsKey::Body(b),
            Params::Rendered(v) => ParamsKey::Rendered(v.to_string()),
        },
        resource: c.found_arn(),
        response: p.response.as_ref().map(Value::to_string),
        error: p
            .error
            .as_ref()
            .map(|e| (e.code.aws_type(), e.message.as_str())),
    }
}

/// Packs `pending` (in order) into entries of at most `max` calls each, whose calls'
/// times spread by at most `span`.
pub(crate) fn pack_all(
    account: &str,
    pending: &[Pending],
    max: usize,
    span: Millis,
) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < pending.len() {
        let (mut lo, mut hi) = (pending[start].call.time, pending[start].call.time);
        let mut end = start + 1;
        while end < pending.len() && end - start < max {
            let t = pending[end].call.time;
            if hi.max(t) - lo.min(t) > span {
                break;
            }
            (lo, hi) = (lo.min(t), hi.max(t));
            end += 1;
        }
        out.push(pack(account, &pending[start..end]));
        start = end;
    }
    out
}

/// Packs `pending` (in order, at least one) into one entry.
fn pack(account: &str, pending: &[Pending]) -> AuditEntry {
    let mut contexts: HashMap<CtxKey<'_>, u32, ahash::RandomState> = HashMap::default();
    let mut index: HashMap<Key<'_>, u32, ahash::RandomState> = HashMap::default();
    let first = pending.first().map_or(0, |p| p.call.time);
    let mut packed = PackedRef {
        a: account,
        f: Vec::new(),
        x: Vec::new(),
        g: Vec::new(),
        t: first,
        c: Vec::with_capacity(pending.len()),
    };
    for p in pending {
        let ck = ctx_key(p);
        let (ctx, new_ctx) = match contexts.get(&ck) {
            Some(c) => (*c, false),
            None => {
                let c = packed.x.len() as u32;
                contexts.insert(ck, c);
                (c, true)
            }
        };
        let k = key(p, ctx);
        let i = match index.get(&k) {
            Some(i) => *i,
            None => {
                let i = packed.f.len() as u32;
                let (context, own) = p.call.fields(p.response.as_ref(), p.error.as_ref()).split();
                if new_ctx {
                    packed.x.push(context);
                }
                packed.f.push(own);
                packed.g.push(ctx);
                index.insert(k, i);
                i
            }
        };
        packed.c.push((
            i,
            p.call.time - first,
            Id(&p.call.request_id),
            p.call.own_event_id.then_some(Id(&p.call.event_id)),
        ));
    }
    AuditEntry {
        time: first,
        event_id: String::new(),
        event_type: API_CALL.into(),
        event_name: String::new(),
        region: String::new(),
        read_only: true,
        access_key_id: None,
        resource: None,
        error_code: None,
        batch: pending.len() as u32,
        detail: serde_json::to_string(&packed).unwrap_or_default(),
    }
}

/// One call's record, as the trail's readers see it: a single entry, or one call of a
/// batch. `index` is its place in the entry (0 for a single one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub seq: i64,
    pub index: u32,
    pub time: Millis,
    pub event_id: String,
    pub event_type: String,
    pub event_name: String,
    pub region: String,
    pub read_only: bool,
    pub access_key_id: Option<String>,
    pub resource: Option<String>,
    pub error_code: Option<String>,
    /// The whole CloudTrail record.
    pub json: String,
}

impl Item {
    /// The call as a single entry of its own (what an event is made from).
    pub fn into_entry(self) -> AuditEntry {
        AuditEntry {
            time: self.time,
            event_id: self.event_id,
            event_type: self.event_type,
            event_name: self.event_name,
            region: self.region,
            read_only: self.read_only,
            access_key_id: self.access_key_id,
            resource: self.resource,
            error_code: self.error_code,
            batch: 0,
            detail: self.json,
        }
    }
}

/// The calls an entry holds, in order (an entry that does not decode yields none: the
/// chain's verification reports it).
pub fn expand(r: &AuditRecord) -> Vec<Item> {
    let e = &r.entry;
    if e.batch == 0 {
        return vec![Item {
            seq: r.seq,
            index: 0,
            time: e.time,
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            event_name: e.event_name.clone(),
            region: e.region.clone(),
            read_only: e.read_only,
            access_key_id: e.access_key_id.clone(),
            resource: e.resource.clone(),
            error_code: e.error_code.clone(),
            json: e.detail.clone(),
        }];
    }
    let Ok(mut p) = serde_json::from_str::<Packed>(&e.detail) else {
        return Vec::new();
    };
    if !p.x.is_empty() {
        let (x, g) = (std::mem::take(&mut p.x), std::mem::take(&mut p.g));
        for (i, f) in p.f.iter_mut().enumerate() {
            let Some(ctx) = g.get(i).and_then(|c| x.get(*c as usize)) else {
                return Vec::new();
            };
            f.join(ctx);
        }
    }
    p.c.iter()
        .enumerate()
        .filter_map(|(i, (fi, dt, request_id, event_id))| {
            let f = p.f.get(*fi as usize)?;
            let request_id = id(request_id);
            let event_id = match event_id {
                Some(e) => id(e),
                None => super::derived_event_id(&request_id).unwrap_or_default(),
            };
            let time = p.t + dt;
            Some(Item {
                seq: r.seq,
                index: i as u32,
                time,
                event_id: event_id.clone(),
                event_type: API_CALL.into(),
                event_name: f.event_name.clone(),
                region: f.region.clone(),
                read_only: f.read_only,
                access_key_id: f.access_key_id.clone(),
                resource: f.resource.clone(),
                error_code: f.error_code.clone(),
                json: f.render(&p.a, time, &request_id, &event_id),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One client: its address and user agent shared, as arca-api shares them.
    fn caller() -> super::super::Caller {
        static CALLER: std::sync::OnceLock<super::super::Caller> = std::sync::OnceLock::new();
        CALLER
            .get_or_init(|| super::super::Caller {
                access_key_id: Some("AKIA1".into()),
                identity: None,
                source_ip: Some("127.0.0.1".into()),
                user_agent: Some("ua".into()),
            })
            .clone()
    }

    fn pending(secret: &str, i: i64) -> Pending {
        let call = Call::new(
            "GetSecretValue",
            format!("{{\"SecretId\":\"{secret}\"}}").as_bytes(),
            "us-east-1",
            1_000 + i,
            &format!("r{i}"),
            caller(),
        );
        Pending {
            call: Arc::new(call),
            response: None,
            error: None,
        }
    }

    /// Checks that `record` expands to the records `alone` (in order); returns its items.
    fn expands_to(record: &AuditRecord, alone: &[String]) -> Vec<Item> {
        let items = expand(record);
        assert_eq!(
            items.iter().map(|i| i.json.clone()).collect::<Vec<_>>(),
            alone
        );
        items
    }

    #[test]
    fn a_batch_expands_to_the_records_its_calls_would_have_alone() {
        let calls: Vec<Pending> = (0..5)
            .map(|i| pending(if i % 2 == 0 { "a" } else { "b" }, i))
            .collect();
        let alone: Vec<String> = calls
            .iter()
            .map(|p| p.call.entry("123", None, None).detail)
            .collect();
        let entries = pack_all("123", &calls, 100, 1_000);
        assert_eq!(entries.len(), 1);
        let entry = entries.into_iter().next().unwrap();
        assert_eq!(entry.batch, 5);
        assert_eq!(entry.time, 1_000);
        let packed: Packed = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(
            packed.f.len(),
            2,
            "each distinct set of fields is written once"
        );
        assert_eq!(packed.x.len(), 1, "and each caller's context once");
        let record = AuditRecord {
            seq: 9,
            entry,
            prev_hash: Vec::new(),
            hash: Vec::new(),
        };
        let items = expands_to(&record, &alone);
        assert_eq!(items[3].index, 3);
        assert_eq!(items[3].resource.as_deref(), Some("b"));
        assert_eq!(items[3].event_id, calls[3].call.event_id);
        assert!(
            !record.entry.detail.contains(&calls[3].call.event_id),
            "ids are written compactly"
        );
    }

    #[test]
    fn batches_split_at_their_size_and_time_span() {
        let mut calls: Vec<Pending> = (0..10).map(|i| pending("a", i)).collect();
        calls.push(pending("a", 5_000));
        let entries = pack_all("1", &calls, 4, 1_000);
        assert_eq!(
            entries.iter().map(|e| e.batch).collect::<Vec<_>>(),
            [4, 4, 2, 1]
        );
    }

    #[test]
    fn a_batch_written_before_contexts_were_split_still_expands() {
        let calls: Vec<Pending> = (0..3).map(|i| pending("a", i)).collect();
        let alone: Vec<String> = calls
            .iter()
            .map(|p| p.call.entry("123", None, None).detail)
            .collect();
        // The earlier form: whole fields, no contexts.
        let whole = calls[0].call.fields(None, None);
        let detail = serde_json::json!({
            "a": "123",
            "f": [whole],
            "t": 1_000,
            "c": calls
                .iter()
                .enumerate()
                .map(|(i, p)| serde_json::json!([0, i, p.call.request_id, p.call.event_id]))
                .collect::<Vec<_>>(),
        })
        .to_string();
        let entries = pack_all("123", &calls, 100, 1_000);
        let record = AuditRecord {
            seq: 1,
            entry: AuditEntry {
                detail,
                ..entries[0].clone()
            },
            prev_hash: Vec::new(),
            hash: Vec::new(),
        };
        expands_to(&record, &alone);
    }
}
