//! Reading the trail back: records as CloudTrail JSON, the chain's verification, and
//! CloudTrail's LookupEvents over the same records (newest first, one lookup attribute,
//! at most 50 a page), so `aws cloudtrail lookup-events` works against Arca.

use super::batch::{expand, Item};
use crate::readlog::BATCH_SPAN_MS;
use crate::{store_err, Arca, RequestCtx};
use arca_store::{AuditQuery, ChainBreak, ChainWalk, Store, StoreError};
use arca_types::cloudtrail::*;
use arca_types::time::{to_wire, Millis};
use arca_types::{ApiError, ErrorCode};
use serde_json::Value;

/// Which calls to read back: every filter that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub region: Option<String>,
    pub from_time: Option<Millis>,
    /// Exclusive.
    pub to_time: Option<Millis>,
    /// The secret: its ARN, or its name (any ARN of a secret of that name).
    pub secret: Option<String>,
    pub event_name: Option<String>,
    pub access_key_id: Option<String>,
    pub event_id: Option<String>,
    pub read_only: Option<bool>,
    /// Some(true): only calls that failed.
    pub failed: Option<bool>,
}

impl Filter {
    /// The store's coarse part of it (batches pass; times widened for them).
    fn query(&self) -> AuditQuery {
        AuditQuery {
            region: self.region.clone(),
            from_time: self.from_time.map(|t| t - BATCH_SPAN_MS),
            to_time: self.to_time,
            resource: self.secret.clone(),
            event_name: self.event_name.clone(),
            access_key_id: self.access_key_id.clone(),
            event_id: self.event_id.clone(),
            read_only: self.read_only,
            failed: self.failed,
            ..AuditQuery::default()
        }
    }

    pub fn matches(&self, i: &Item) -> bool {
        fn eq(want: &Option<String>, got: &str) -> bool {
            want.as_deref().is_none_or(|w| w == got)
        }
        eq(&self.region, &i.region)
            && self.from_time.is_none_or(|t| i.time >= t)
            && self.to_time.is_none_or(|t| i.time < t)
            && self
                .secret
                .as_deref()
                .is_none_or(|s| i.resource.as_deref().is_some_and(|r| names_secret(r, s)))
            && eq(&self.event_name, &i.event_name)
            && self
                .access_key_id
                .as_deref()
                .is_none_or(|k| i.access_key_id.as_deref() == Some(k))
            && eq(&self.event_id, &i.event_id)
            && self.read_only.is_none_or(|ro| i.read_only == ro)
            && self.failed.is_none_or(|f| i.error_code.is_some() == f)
    }
}

/// Whether a record's resource is `wanted`: the same string, or (`wanted` a name) the ARN
/// of a secret of that name (`...:secret:<name>-` and AWS's six-character suffix).
fn names_secret(resource: &str, wanted: &str) -> bool {
    resource == wanted
        || (resource.starts_with("arn:")
            && resource.contains(":secret:")
            && arca_types::arn::secret_name_of(resource) == wanted)
}

/// Where a reader is in the trail: after (ascending) or before (descending) this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub seq: i64,
    pub index: u32,
}

/// Up to `limit` calls matching `filter`, oldest first, after `after` (None: from the
/// start). Returns them and the cursor of the last one looked at.
pub async fn read_forward(
    store: &dyn Store,
    filter: &Filter,
    after: Option<Cursor>,
    limit: usize,
) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
    const PAGE: usize = 500;
    let mut q = filter.query();
    let mut out = Vec::new();
    let mut cursor = after;
    q.after_seq = after.map_or(0, |c| c.seq - 1);
    loop {
        q.limit = PAGE;
        let page = store.list_audit(&q).await?;
        let full = page.len() == PAGE;
        for r in &page {
            for item in expand(r) {
                if cursor.is_some_and(|c| (item.seq, item.index) <= (c.seq, c.index)) {
                    continue;
                }
                if out.len() == limit {
                    return Ok((out, cursor));
                }
                cursor = Some(Cursor {
                    seq: item.seq,
                    index: item.index,
                });
                if filter.matches(&item) {
                    out.push(item);
                }
            }
            q.after_seq = r.seq;
        }
        if !full {
            return Ok((out, cursor));
        }
    }
}

/// What a walk of the whole chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries (links of the chain) checked.
    pub checked: u64,
    /// Calls' records in them (a batch holds many).
    pub records: u64,
    /// The last record checked and its hash (hex): what an operator keeps outside the
    /// database, to detect later that the tail was cut.
    pub head: i64,
    pub head_hash: String,
    /// The first problem, if any.
    pub broken: Option<ChainBreak>,
}

/// Walks the whole chain from its first record, a page at a time.
pub async fn verify(store: &dyn Store) -> Result<Verification, StoreError> {
    const PAGE: usize = 2_000;
    let mut walk = ChainWalk::default();
    let mut after = 0;
    let mut broken = None;
    let mut records = 0;
    'pages: loop {
        let page = store
            .list_audit(&AuditQuery {
                after_seq: after,
                limit: PAGE,
                ..AuditQuery::default()
            })
            .await?;
        for r in &page {
            if let Err(b) = walk.check(r) {
                broken = Some(b);
                break 'pages;
            }
            records += u64::from(r.entry.batch.max(1));
            after = r.seq;
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(Verification {
        checked: walk.checked,
        records,
        head: walk.head(),
        head_hash: hex(walk.head_hash()),
        broken,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const MAX_RESULTS: i64 = 50;
/// How many calls one lookup looks at most while filtering on what the store does not
/// index, before it answers with what it found and a token to go on from.
const SCAN_LIMIT: usize = 20_000;

/// A lookup attribute: a filter the store narrows by, or a test of each record.
enum Attribute {
    Filter(fn(&mut Filter, String)),
    Record(fn(&Item, &Value, &str) -> bool),
}

fn attribute(key: &str) -> Option<Attribute> {
    use Attribute::*;
    Some(match key {
        "EventId" => Filter(|f, v| f.event_id = Some(v)),
        "EventName" => Filter(|f, v| f.event_name = Some(v)),
        "AccessKeyId" => Filter(|f, v| f.access_key_id = Some(v)),
        "ResourceName" => Filter(|f, v| f.secret = Some(v)),
        "ReadOnly" => Record(|i, _, v| i.read_only.to_string() == v),
        "Username" => Record(|_, j, v| username(j).as_deref() == Some(v)),
        "EventSource" => Record(|_, j, v| j["eventSource"].as_str() == Some(v)),
        "ResourceType" => Record(|i, _, v| v == SECRET_RESOURCE_TYPE && i.resource.is_some()),
        _ => return None,
    })
}

/// The user or role name of the caller, as LookupEvents' Username gives it.
fn username(j: &Value) -> Option<String> {
    let id = &j["userIdentity"];
    id["userName"]
        .as_str()
        .or_else(|| id["sessionContext"]["sessionIssuer"]["userName"].as_str())
        .or_else(|| id["invokedBy"].as_str())
        .map(str::to_owned)
}

fn invalid(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(code, message)
}

/// The page token: where the next page starts (below this call), bound to the
/// parameters it was made for.
fn token(c: Cursor, fingerprint: u64) -> String {
    format!("{}.{}.{fingerprint:x}", c.seq, c.index)
}

fn parse_token(t: &str, fingerprint: u64) -> Option<Cursor> {
    let mut parts = t.splitn(3, '.');
    let seq = parts.next()?.parse().ok().filter(|s: &i64| *s > 0)?;
    let index = parts.next()?.parse().ok()?;
    (u64::from_str_radix(parts.next()?, 16).ok()? == fingerprint).then_some(Cursor { seq, index })
}

fn fingerprint(req: &LookupEventsRequest, region: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    region.hash(&mut h);
    for a in req.lookup_attributes.iter().flatten() {
        a.attribute_key.hash(&mut h);
        a.attribute_value.hash(&mut h);
    }
    req.start_time.map(f64::to_bits).hash(&mut h);
    req.end_time.map(f64::to_bits).hash(&mut h);
    h.finish()
}

fn millis(secs: f64) -> Millis {
    (secs * 1000.0).floor() as Millis
}

impl Arca {
    /// CloudTrail's LookupEvents over this region's records, newest first.
    pub async fn lookup_events(
        &self,
        ctx: &RequestCtx,
        req: LookupEventsRequest,
    ) -> Result<LookupEventsResponse, ApiError> {
        // The trail names every secret: a key scoped to one may not read it.
        if ctx.only_secret.is_some() {
            return Err(ApiError::access_denied());
        }
        let attrs = req.lookup_attributes.clone().unwrap_or_default();
        if attrs.len() > 1 {
            return Err(invalid(
                ErrorCode::InvalidLookupAttributes,
                "You cannot specify more than one lookup attribute.",
            ));
        }
        let limit = req.max_results.unwrap_or(MAX_RESULTS);
        if !(1..=MAX_RESULTS).contains(&limit) {
            return Err(invalid(
                ErrorCode::InvalidMaxResults,
                "MaxResults must be between 1 and 50.",
            ));
        }
        if let (Some(s), Some(e)) = (req.start_time, req.end_time) {
            if s > e {
                return Err(invalid(
                    ErrorCode::InvalidTimeRange,
                    "Start date must be earlier than or equal to end date.",
                ));
            }
        }
        match req.event_category.as_deref() {
            None => {}
            // Arca keeps no Insights events.
            Some("insight") => return Ok(LookupEventsResponse::default()),
            Some(_) => {
                return Err(invalid(
                    ErrorCode::InvalidEventCategory,
                    "The event category is not valid.",
                ))
            }
        }
        let fp = fingerprint(&req, &ctx.region);
        let before = match req.next_token.as_deref() {
            None => None,
            Some(t) => Some(parse_token(t, fp).ok_or_else(|| {
                invalid(
                    ErrorCode::InvalidNextToken,
                    "Invalid NextToken: the token is not valid, or was issued for other parameters.",
                )
            })?),
        };
        let mut filter = Filter {
            region: Some(ctx.region.clone()),
            from_time: req.start_time.map(millis),
            // EndTime is inclusive.
            to_time: req.end_time.map(|e| millis(e) + 1),
            ..Filter::default()
        };
        let mut check: Option<(RecordTest, String)> = None;
        if let Some(a) = attrs.first() {
            let (Some(key), Some(value)) = (&a.attribute_key, &a.attribute_value) else {
                return Err(invalid(
                    ErrorCode::InvalidLookupAttributes,
                    "A lookup attribute needs both an AttributeKey and an AttributeValue.",
                ));
            };
            match attribute(key) {
                Some(Attribute::Filter(set)) => set(&mut filter, value.clone()),
                Some(Attribute::Record(f)) => check = Some((f, value.clone())),
                None => {
                    return Err(invalid(
                        ErrorCode::InvalidLookupAttributes,
                        &format!("Invalid attribute key: {key}"),
                    ))
                }
            }
        }
        let mut query = filter.query();
        query.descending = true;
        const PAGE: usize = 200;
        let mut events = Vec::new();
        let mut scanned = 0usize;
        // The last call looked at: the next page (and the token's) starts below it.
        let mut cursor = before;
        let mut more = false;
        query.before_seq = before.map(|c| c.seq + 1);
        'pages: loop {
            query.limit = PAGE;
            let page = self.store.list_audit(&query).await.map_err(store_err)?;
            let full = page.len() == PAGE;
            for r in &page {
                for item in expand(r).into_iter().rev() {
                    if before.is_some_and(|c| (item.seq, item.index) >= (c.seq, c.index)) {
                        continue;
                    }
                    if scanned == SCAN_LIMIT {
                        more = true;
                        break 'pages;
                    }
                    scanned += 1;
                    if filter.matches(&item) {
                        let j: Value = serde_json::from_str(&item.json).unwrap_or(Value::Null);
                        if check.as_ref().is_none_or(|(f, v)| f(&item, &j, v)) {
                            if events.len() == limit as usize {
                                // Not part of this page: the next one starts with it.
                                more = true;
                                break 'pages;
                            }
                            events.push(event(&item, &j));
                        }
                    }
                    cursor = Some(Cursor {
                        seq: item.seq,
                        index: item.index,
                    });
                }
                query.before_seq = Some(r.seq);
            }
            if !full {
                break;
            }
        }
        Ok(LookupEventsResponse {
            events,
            next_token: more.then_some(cursor).flatten().map(|c| token(c, fp)),
        })
    }
}

type RecordTest = fn(&Item, &Value, &str) -> bool;

fn event(i: &Item, j: &Value) -> Event {
    Event {
        event_id: i.event_id.clone(),
        event_name: i.event_name.clone(),
        read_only: i.read_only.to_string(),
        access_key_id: i.access_key_id.clone(),
        event_time: to_wire(i.time - i.time.rem_euclid(1000)),
        event_source: j["eventSource"].as_str().unwrap_or_default().to_owned(),
        username: username(j),
        resources: i
            .resource
            .iter()
            .map(|name| Resource {
                resource_type: Some(SECRET_RESOURCE_TYPE.to_owned()),
                resource_name: Some(name.clone()),
            })
            .collect(),
        cloud_trail_event: i.json.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_their_parameters() {
        let c = Cursor { seq: 42, index: 3 };
        let t = token(c, 7);
        assert_eq!(parse_token(&t, 7), Some(c));
        assert_eq!(parse_token(&t, 8), None);
        assert_eq!(parse_token("junk", 7), None);
        assert_eq!(parse_token("0.0.7", 7), None);
    }

    #[test]
    fn a_name_matches_its_secrets_arns_only() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:db/main-AbCdEf";
        assert!(names_secret(arn, "db/main"));
        assert!(names_secret(arn, arn));
        assert!(!names_secret(arn, "db"));
        assert!(!names_secret(
            "arn:aws:secretsmanager:us-east-1:1:secret:db/main-old-AbCdEf",
            "db/main"
        ));
        assert!(!names_secret(arn, "DB/MAIN"));
        assert!(names_secret("db/main", "db/main"));
    }
}
