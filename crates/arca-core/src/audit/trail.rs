//! Reading the trail back: records as CloudTrail JSON, the chain's verification, and
//! CloudTrail's LookupEvents over the same records (newest first, one lookup attribute,
//! at most 50 a page), so `aws cloudtrail lookup-events` works against Arca.

use crate::{store_err, Arca, RequestCtx};
use arca_store::{AuditQuery, AuditRecord, ChainBreak, ChainWalk, Store, StoreError};
use arca_types::cloudtrail::*;
use arca_types::time::{to_wire, Millis};
use arca_types::{ApiError, ErrorCode};
use serde_json::Value;

/// The whole CloudTrail record of a stored audit record.
pub fn record_json(r: &AuditRecord) -> Value {
    serde_json::from_str(&r.entry.detail).unwrap_or(Value::Null)
}

/// What a walk of the whole chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub checked: u64,
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
            after = r.seq;
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(Verification {
        checked: walk.checked,
        head: walk.head(),
        head_hash: hex(walk.head_hash()),
        broken,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const MAX_RESULTS: i64 = 50;
/// How many records one lookup reads at most while filtering on what the store does not
/// index (event source, user name, resource type), before it answers with what it found
/// and a token to go on from.
const SCAN_LIMIT: usize = 10_000;

/// A test of one record (and its CloudTrail JSON) against an attribute's value.
type RecordTest = fn(&AuditRecord, &Value, &str) -> bool;

/// The lookup attribute, in the store's terms where the store can filter.
enum Attribute {
    Store(fn(&mut AuditQuery, String)),
    /// Checked on each record's CloudTrail JSON.
    Record(RecordTest),
}

fn attribute(key: &str) -> Option<Attribute> {
    use Attribute::*;
    Some(match key {
        "EventId" => Store(|q, v| q.event_id = Some(v)),
        "EventName" => Store(|q, v| q.event_name = Some(v)),
        "AccessKeyId" => Store(|q, v| q.access_key_id = Some(v)),
        "ResourceName" => Store(|q, v| q.resource = Some(v)),
        "ReadOnly" => Record(|r, _, v| r.entry.read_only.to_string() == v),
        "Username" => Record(|_, j, v| username(j).as_deref() == Some(v)),
        "EventSource" => Record(|_, j, v| j["eventSource"].as_str() == Some(v)),
        "ResourceType" => Record(|r, _, v| v == SECRET_RESOURCE_TYPE && r.entry.resource.is_some()),
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

/// The page token: where the next page starts, bound to the parameters it was made for.
fn token(before: i64, fingerprint: u64) -> String {
    format!("{before}.{fingerprint:x}")
}

fn parse_token(t: &str, fingerprint: u64) -> Option<i64> {
    let (before, fp) = t.split_once('.')?;
    (u64::from_str_radix(fp, 16).ok()? == fingerprint).then_some(())?;
    before.parse().ok().filter(|b: &i64| *b > 0)
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
    /// CloudTrail's LookupEvents over this region's records.
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
        let mut query = AuditQuery {
            descending: true,
            before_seq: before,
            from_time: req.start_time.map(millis),
            // EndTime is inclusive; the store's bound is not.
            to_time: req.end_time.map(|e| millis(e) + 1),
            ..AuditQuery::default()
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
                Some(Attribute::Store(set)) => set(&mut query, value.clone()),
                Some(Attribute::Record(f)) => check = Some((f, value.clone())),
                None => {
                    return Err(invalid(
                        ErrorCode::InvalidLookupAttributes,
                        &format!("Invalid attribute key: {key}"),
                    ))
                }
            }
        }
        query.region = Some(ctx.region.clone());
        let page_size = if check.is_some() {
            500
        } else {
            limit as usize + 1
        };
        let mut events = Vec::new();
        let mut scanned = 0usize;
        // The last record looked at: the next page (and the token's) starts below it.
        let mut cursor = before;
        let mut more = false;
        'pages: loop {
            query.before_seq = cursor;
            query.limit = page_size;
            let page = self.store.list_audit(&query).await.map_err(store_err)?;
            let full = page.len() == page_size;
            for r in page {
                if scanned == SCAN_LIMIT {
                    more = true;
                    break 'pages;
                }
                scanned += 1;
                let j = record_json(&r);
                if check.as_ref().is_none_or(|(f, v)| f(&r, &j, v)) {
                    if events.len() == limit as usize {
                        // Not looked at for this page: the next one starts with it.
                        more = true;
                        break 'pages;
                    }
                    events.push(event(&r, &j));
                }
                cursor = Some(r.seq);
            }
            if !full {
                break;
            }
        }
        Ok(LookupEventsResponse {
            events,
            next_token: more.then(|| token(cursor.unwrap_or(0), fp)),
        })
    }
}

fn event(r: &AuditRecord, j: &Value) -> Event {
    Event {
        event_id: r.entry.event_id.clone(),
        event_name: r.entry.event_name.clone(),
        read_only: r.entry.read_only.to_string(),
        access_key_id: r.entry.access_key_id.clone(),
        event_time: to_wire(r.entry.time - r.entry.time.rem_euclid(1000)),
        event_source: j["eventSource"].as_str().unwrap_or_default().to_owned(),
        username: username(j),
        resources: r
            .entry
            .resource
            .iter()
            .map(|name| Resource {
                resource_type: Some(SECRET_RESOURCE_TYPE.to_owned()),
                resource_name: Some(name.clone()),
            })
            .collect(),
        cloud_trail_event: r.entry.detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_their_parameters() {
        let t = token(42, 7);
        assert_eq!(parse_token(&t, 7), Some(42));
        assert_eq!(parse_token(&t, 8), None);
        assert_eq!(parse_token("junk", 7), None);
        assert_eq!(parse_token("0.7", 7), None);
    }
}
