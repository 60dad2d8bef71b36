//! The audit trail: one record per call, in the shape of the CloudTrail management event
//! Secrets Manager writes (eventVersion 1.11). A call's record is drafted when the
//! request arrives (`Call`), carried in its `RequestCtx`, and written either inside the
//! transaction of the call's first write (so a committed change always has its record)
//! or, for calls that change nothing (reads, refused calls), through the batched queue
//! in `readlog`. No field ever holds secret material: request parameters are the
//! request's members minus the ones the model marks sensitive, and responses are
//! summarized as AWS summarizes them (`{"arn"}`), never copied.

pub mod batch;
mod params;
pub mod trail;

use crate::schedule::civil_from_days;
use arca_store::AuditEntry;
use arca_types::time::{Millis, MILLIS_PER_DAY};
use arca_types::ApiError;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub use crate::readlog::{AuditStats, ARCA_AUDIT_SOURCE, DEFAULT_QUEUE};

pub const EVENT_VERSION: &str = "1.11";
pub const EVENT_SOURCE: &str = "secretsmanager.amazonaws.com";
pub const API_CALL: &str = "AwsApiCall";
pub const SERVICE_EVENT: &str = "AwsServiceEvent";

/// Who called, from where, as the HTTP layer saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The access key id the request was signed with (as claimed, when the signature
    /// failed).
    pub access_key_id: Option<String>,
    /// The caller's userIdentity as CloudTrail writes it (type, principalId, arn,
    /// userName or sessionContext), JSON text shared by every call of one principal
    /// (see `authz::Identity::audit_identity`); absent, the key stands for itself.
    pub identity: Option<Arc<str>>,
    /// Shared: one per connection, not one per request.
    pub source_ip: Option<Arc<str>>,
    pub user_agent: Option<Arc<str>>,
}

/// A CloudTrail record, its members in the order CloudTrail writes them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record<'a> {
    pub event_version: &'a str,
    pub user_identity: Value,
    pub event_time: String,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'a str>,
    pub request_parameters: Option<&'a serde_json::value::RawValue>,
    pub response_elements: Option<&'a serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Box<serde_json::value::RawValue>>,
    #[serde(rename = "requestID")]
    pub request_id: &'a str,
    #[serde(rename = "eventID")]
    pub event_id: &'a str,
    pub read_only: bool,
    pub event_type: &'a str,
    pub management_event: bool,
    pub recipient_account_id: &'a str,
    pub event_category: &'a str,
}

/// One call's record in the making. Shared by the request's context; the first write
/// that commits takes it into its transaction.
#[derive(Debug)]
pub struct Call {
    pub event_name: String,
    /// The service that answers: Secrets Manager, or Arca's own replication link.
    pub event_source: &'static str,
    pub time: Millis,
    pub event_id: String,
    pub request_id: String,
    /// The event id is not the one `event_id_for(request_id)` gives (a batch member's).
    pub(crate) own_event_id: bool,
    pub region: String,
    pub read_only: bool,
    pub caller: Caller,
    params: Params,
    /// The secret the call resolved to (its ARN), once a lookup found it.
    resource: OnceLock<String>,
    /// Set once a write committed this call's record.
    recorded: AtomicBool,
}

/// The request's parameters: rendered at once for calls that may write (so the request
/// body, which may hold a value, is not kept), or kept as the body of a read (which holds
/// none) and rendered by the queue's writer, off the request path.
enum Params {
    Rendered(Value),
    ReadBody(Vec<u8>),
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Params(..)")
    }
}

/// Operations that only read (CloudTrail's readOnly).
pub fn is_read_only(op: &str) -> bool {
    op.starts_with("Get")
        || op.starts_with("List")
        || op.starts_with("Describe")
        || op.starts_with("BatchGet")
        || op == "ValidateResourcePolicy"
        || op == "LookupEvents"
        || op == "TestEventPattern"
}

impl Call {
    /// Drafts the record of a call to `op` with JSON `body`, at `time`. `region` is the
    /// region the call was signed for.
    pub fn new(
        op: &str,
        body: &[u8],
        region: &str,
        time: Millis,
        request_id: &str,
        caller: Caller,
    ) -> Self {
        let read_only = is_read_only(op);
        let derived = derived_event_id(request_id);
        let params = if read_only {
            Params::ReadBody(body.to_vec())
        } else {
            Params::Rendered(params::request_parameters(op, body))
        };
        Self {
            event_name: op.to_owned(),
            event_source: EVENT_SOURCE,
            time,
            own_event_id: derived.is_none(),
            event_id: derived.unwrap_or_else(new_event_id),
            request_id: request_id.to_owned(),
            region: region.to_owned(),
            read_only,
            caller,
            params,
            resource: OnceLock::new(),
            recorded: AtomicBool::new(false),
        }
    }

    /// A call answered by another service on Arca's endpoint (`source`), whose request
    /// parameters are summarized as `params` by the caller.
    pub fn other(
        op: &str,
        source: &'static str,
        params: Value,
        region: &str,
        time: Millis,
        request_id: &str,
        caller: Caller,
    ) -> Self {
        let mut call = Self::new(op, b"", region, time, request_id, caller);
        call.event_source = source;
        call.params = Params::Rendered(params);
        call
    }

    /// The secret the call resolved to, if a lookup found one.
    pub fn found_arn(&self) -> Option<&str> {
        self.resource.get().map(String::as_str)
    }

    /// Notes the secret the call is about (the first one found wins: a call names one; a
    /// batch names many, and its members have records of their own).
    pub(crate) fn found(&self, arn: &str) {
        if self.event_name == "BatchGetSecretValue" || self.resource.get().is_some() {
            return;
        }
        let _ = self.resource.set(arn.to_owned());
    }

    pub(crate) fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }

    pub(crate) fn mark_recorded(&self) {
        self.recorded.store(true, Ordering::Release);
    }

    fn resource(&self, params: &Value) -> Option<String> {
        self.found_arn().map(str::to_owned).or_else(|| {
            ["secretId", "name"]
                .iter()
                .find_map(|k| params.get(k).and_then(Value::as_str).map(str::to_owned))
        })
    }

    /// What this call's record holds besides its time and ids, answered with
    /// `response` (responseElements) or `error`.
    pub(crate) fn fields(&self, response: Option<&Value>, error: Option<&ApiError>) -> Fields {
        let params = match &self.params {
            Params::Rendered(v) => v.clone(),
            Params::ReadBody(body) => params::request_parameters(&self.event_name, body),
        };
        let resource = self.resource(&params);
        Fields {
            event_name: self.event_name.clone(),
            event_source: self.event_source.to_owned(),
            region: self.region.clone(),
            read_only: self.read_only,
            access_key_id: self.caller.access_key_id.clone(),
            identity: self.caller.identity.as_deref().map(str::to_owned),
            source_ip: self.caller.source_ip.as_deref().map(str::to_owned),
            user_agent: self.caller.user_agent.as_deref().map(str::to_owned),
            resource,
            params: params
                .as_object()
                .is_some_and(|m| !m.is_empty())
                .then(|| params.to_string()),
            response: if error.is_some() {
                None
            } else {
                response.map(Value::to_string)
            },
            error_code: error.map(|e| e.code.aws_type().to_owned()),
            error_message: error.map(|e| e.message.clone()),
        }
    }

    /// The record of this call as one entry of its own (a write's, committed with it).
    pub(crate) fn entry(
        &self,
        account: &str,
        response: Option<Value>,
        error: Option<&ApiError>,
    ) -> AuditEntry {
        self.entry_about(account, None, response, error)
    }

    /// `entry`, about the secret `resource` when given (a creation picks its ARN itself,
    /// anew on each attempt).
    pub(crate) fn entry_about(
        &self,
        account: &str,
        resource: Option<&str>,
        response: Option<Value>,
        error: Option<&ApiError>,
    ) -> AuditEntry {
        let mut f = self.fields(response.as_ref(), error);
        if let Some(r) = resource {
            f.resource = Some(r.to_owned());
        }
        let detail = f.render(account, self.time, &self.request_id, &self.event_id);
        f.into_entry(self.time, self.event_id.clone(), detail)
    }
}

/// A call's record, but for its time and ids: what the calls of a batch share when they
/// differ in nothing else. Request parameters and response elements are JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct Fields {
    // A batch's per-secret part leaves the context's members empty (see `split`).
    #[serde(rename = "n", default, skip_serializing_if = "String::is_empty")]
    pub event_name: String,
    #[serde(rename = "s", default, skip_serializing_if = "String::is_empty")]
    pub event_source: String,
    #[serde(rename = "r", default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(rename = "ro", default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The caller's userIdentity (JSON text), when it is a known principal.
    #[serde(rename = "who", default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(rename = "ip", default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(rename = "ua", default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(rename = "res", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
    #[serde(rename = "out", default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(rename = "ec", default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(rename = "em", default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

fn raw(text: &Option<String>) -> Option<&serde_json::value::RawValue> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

impl Fields {
    /// The caller's context (event, source, region, readOnly, key, address, user agent)
    /// and the rest, for a batch to write each distinct context once.
    pub(crate) fn split(self) -> (Fields, Fields) {
        let context = Fields {
            event_name: self.event_name,
            event_source: self.event_source,
            region: self.region,
            read_only: self.read_only,
            access_key_id: self.access_key_id,
            identity: self.identity,
            source_ip: self.source_ip,
            user_agent: self.user_agent,
            resource: None,
            params: None,
            response: None,
            error_code: None,
            error_message: None,
        };
        let own = Fields {
            event_name: String::new(),
            event_source: String::new(),
            region: String::new(),
            read_only: false,
            access_key_id: None,
            identity: None,
            source_ip: None,
            user_agent: None,
            ..self
        };
        (context, own)
    }

    /// Puts back the context `split` took out.
    pub(crate) fn join(&mut self, context: &Fields) {
        self.event_name.clone_from(&context.event_name);
        self.event_source.clone_from(&context.event_source);
        self.region.clone_from(&context.region);
        self.read_only = context.read_only;
        self.access_key_id.clone_from(&context.access_key_id);
        self.identity.clone_from(&context.identity);
        self.source_ip.clone_from(&context.source_ip);
        self.user_agent.clone_from(&context.user_agent);
    }

    /// The whole CloudTrail record of one call with these fields.
    pub(crate) fn render(
        &self,
        account: &str,
        time: Millis,
        request_id: &str,
        event_id: &str,
    ) -> String {
        let record = Record {
            event_version: EVENT_VERSION,
            user_identity: self.user_identity(account),
            event_time: event_time(time),
            event_source: &self.event_source,
            event_name: &self.event_name,
            aws_region: &self.region,
            source_ip_address: self.source_ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            error_code: self.error_code.as_deref(),
            error_message: self.error_message.as_deref(),
            request_parameters: raw(&self.params),
            response_elements: raw(&self.response),
            additional_event_data: None,
            request_id,
            event_id,
            read_only: self.read_only,
            event_type: API_CALL,
            management_event: true,
            recipient_account_id: account,
            event_category: "Management",
        };
        serde_json::to_string(&record).unwrap_or_default()
    }

    pub(crate) fn into_entry(self, time: Millis, event_id: String, detail: String) -> AuditEntry {
        AuditEntry {
            time,
            event_id,
            event_type: API_CALL.into(),
            event_name: self.event_name,
            region: self.region,
            read_only: self.read_only,
            access_key_id: self.access_key_id,
            resource: self.resource,
            error_code: self.error_code,
            batch: 0,
            detail,
        }
    }

    /// The identity block: the access key's holder. Until principals exist, every key is
    /// the account's own (an IAM user named for nothing but its key).
    fn user_identity(&self, account: &str) -> Value {
        let known = self
            .identity
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        if let Some(mut id) = known {
            if let (Some(obj), Some(key)) = (id.as_object_mut(), &self.access_key_id) {
                obj.insert("accessKeyId".into(), Value::String(key.clone()));
            }
            return id;
        }
        match &self.access_key_id {
            Some(key) => json!({
                "type": "IAMUser",
                "principalId": key,
                "accountId": account,
                "accessKeyId": key,
            }),
            None => json!({ "accountId": account }),
        }
    }
}

/// Something a service did on its own, for the trail.
pub(crate) struct ServiceEvent<'a> {
    /// The service, as CloudTrail names it (its eventSource, invokedBy, address and agent).
    pub source: &'a str,
    pub name: &'a str,
    pub region: &'a str,
    pub time: Millis,
    pub resource: Option<&'a str>,
    pub request_id: Option<String>,
    pub data: serde_json::Map<String, Value>,
}

impl ServiceEvent<'_> {
    /// The CloudTrail service event (`AwsServiceEvent`, userIdentity `invokedBy`, the
    /// service's name as source address and user agent, `additionalEventData`).
    pub(crate) fn entry(self, account: &str) -> AuditEntry {
        let event_id = new_event_id();
        let request_id = self.request_id.unwrap_or_else(|| event_id.clone());
        let data = (!self.data.is_empty())
            .then(|| serde_json::value::to_raw_value(&Value::Object(self.data)).ok())
            .flatten();
        let record = Record {
            event_version: EVENT_VERSION,
            user_identity: json!({ "accountId": account, "invokedBy": self.source }),
            event_time: event_time(self.time),
            event_source: self.source,
            event_name: self.name,
            aws_region: self.region,
            source_ip_address: Some(self.source),
            user_agent: Some(self.source),
            error_code: None,
            error_message: None,
            request_parameters: None,
            response_elements: None,
            additional_event_data: data,
            request_id: &request_id,
            event_id: &event_id,
            read_only: false,
            event_type: SERVICE_EVENT,
            management_event: true,
            recipient_account_id: account,
            event_category: "Management",
        };
        let detail = serde_json::to_string(&record).unwrap_or_default();
        AuditEntry {
            time: self.time,
            event_id,
            event_type: SERVICE_EVENT.into(),
            event_name: self.name.to_owned(),
            region: self.region.to_owned(),
            read_only: false,
            access_key_id: None,
            resource: self.resource.map(str::to_owned),
            error_code: None,
            batch: 0,
            detail,
        }
    }
}

/// The trail's record of something Secrets Manager did on its own (a rotation started,
/// succeeded, failed, was cancelled), as AWS writes them: `additionalEventData.SecretId`
/// the secret's ARN, the request id `Rotation-<arn>-<uuid>`. Arca adds the version, step,
/// error and the event's own detail beside SecretId. Committed with the change it reports.
pub(crate) fn service_event(account: &str, e: &arca_store::EventRecord) -> AuditEntry {
    let mut data = serde_json::Map::new();
    if let Some(arn) = &e.secret_arn {
        data.insert("SecretId".into(), arn.clone().into());
    }
    if let Some(v) = &e.version_id {
        data.insert("VersionId".into(), v.clone().into());
    }
    if let Some(step) = &e.step {
        data.insert("step".into(), step.clone().into());
    }
    if let Some(err) = &e.error {
        data.insert("failureReason".into(), err.clone().into());
    }
    if !e.detail.is_null() {
        data.insert("detail".into(), e.detail.clone());
    }
    ServiceEvent {
        source: EVENT_SOURCE,
        name: &e.name,
        region: &e.region,
        time: e.time,
        resource: e.secret_arn.as_deref(),
        // AWS's rotation events carry such a request id; its deletion events none.
        request_id: e.name.starts_with("Rotation").then(|| {
            format!(
                "Rotation-{}-{}",
                e.secret_arn.as_deref().unwrap_or(""),
                new_event_id()
            )
        }),
        data,
    }
    .entry(account)
}

/// A GetSecretValue record for one secret of a BatchGetSecretValue call (AWS writes one
/// per secret besides the batch's own).
pub(crate) fn batch_member(call: &Call, arn: &str) -> Call {
    let caller = call.caller.clone();
    let mut member = Call::new(
        "GetSecretValue",
        b"",
        &call.region,
        call.time,
        &call.request_id,
        caller,
    );
    member.params = Params::Rendered(json!({ "secretId": arn }));
    // The batch's own record has the event id its request id gives.
    member.event_id = new_event_id();
    member.own_event_id = true;
    member.found(arn);
    member
}

/// responseElements of a write: the secret's ARN (and, for DeleteSecret, its name and
/// deletion date), as Secrets Manager records them since February 2024.
pub(crate) fn response_elements(
    op: &str,
    arn: &str,
    name: &str,
    purge_at: Option<Millis>,
) -> Value {
    match (op, purge_at) {
        ("DeleteSecret", Some(at)) => json!({
            "name": name,
            "deletionDate": deletion_date(at),
            "arn": arn,
        }),
        _ => json!({ "arn": arn }),
    }
}

/// XORed into a request id's bytes to make its record's event id: a v4 UUID stays one
/// (the version and variant bits are zero here), and distinct request ids give distinct
/// event ids, so a batch need not write both.
const EVENT_ID_MASK: [u8; 16] = [
    0x6a, 0x09, 0xe6, 0x67, 0xbb, 0x67, 0x0e, 0x85, 0x3c, 0x6e, 0xf3, 0x72, 0xa5, 0x4f, 0xf5, 0x3a,
];

/// The event id of the call with `request_id`, if that is a UUID.
pub(crate) fn derived_event_id(request_id: &str) -> Option<String> {
    let u = uuid::Uuid::try_parse(request_id).ok()?;
    let mut b = *u.as_bytes();
    for (x, m) in b.iter_mut().zip(EVENT_ID_MASK) {
        *x ^= m;
    }
    Some(uuid::Uuid::from_bytes(b).hyphenated().to_string())
}

pub(crate) fn new_event_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn split(ms: Millis) -> (i64, u32, u32, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let days = ms.div_euclid(MILLIS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let rem = secs - days * 86_400;
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// CloudTrail's eventTime: ISO 8601 to the second, UTC (`2018-04-03T17:50:55Z`).
pub fn event_time(ms: Millis) -> String {
    let (y, m, d, h, mi, s) = split(ms);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A time from the command line: `2026-12-06T10:00:00Z`, `2026-12-06`, or epoch seconds.
pub fn parse_time(s: &str) -> Option<Millis> {
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = 0;
    if let Some(t) = time {
        let mut p = t.splitn(3, ':').map(str::parse::<i64>);
        let (h, mi, sec) = (p.next()?.ok()?, p.next()?.ok()?, p.next()?.ok()?);
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        secs = h * 3600 + mi * 60 + sec;
    }
    let days = crate::schedule::days_from_civil(y, m as u32, day as u32);
    Some(days * MILLIS_PER_DAY + secs * 1000)
}

/// DeleteSecret's deletionDate as AWS's example records it (`May 3, 2018 5:51:02 PM`).
fn deletion_date(ms: Millis) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, h, mi, s) = split(ms);
    let (h12, half) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    let month = MONTHS[(m as usize).saturating_sub(1).min(11)];
    format!("{month} {d}, {y} {h12}:{mi:02}:{s:02} {half}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_cloudtrail_and_aws_write_them() {
        // 2018-04-03T17:50:55Z
        let t = 1_522_777_855_000;
        assert_eq!(event_time(t), "2018-04-03T17:50:55Z");
        // 2018-05-03T17:51:02Z, AWS's DeleteSecret example.
        assert_eq!(deletion_date(1_525_369_862_000), "May 3, 2018 5:51:02 PM");
        assert_eq!(deletion_date(1_525_308_662_000), "May 3, 2018 12:51:02 AM");
        assert_eq!(parse_time("2018-04-03T17:50:55Z"), Some(t));
        assert_eq!(
            parse_time("2018-04-03"),
            Some(t - (17 * 3600 + 50 * 60 + 55) * 1000)
        );
        assert_eq!(parse_time("1522777855"), Some(t));
        assert_eq!(parse_time("2018-13-03"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_write_record_holds_parameters_but_no_value() {
        let body = br#"{"SecretId":"db","SecretString":"hunter2-canary","ClientRequestToken":"t-1","VersionStages":["AWSCURRENT"]}"#;
        let call = Call::new(
            "PutSecretValue",
            body,
            "us-east-1",
            1_522_777_855_000,
            "req-1",
            Caller {
                access_key_id: Some("AKIAEXAMPLE".into()),
                identity: None,
                source_ip: Some("127.0.0.1".into()),
                user_agent: Some("aws-cli/2".into()),
            },
        );
        call.found("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf");
        let e = call.entry(
            "123456789012",
            Some(response_elements("PutSecretValue", "arn:x", "db", None)),
            None,
        );
        assert!(!e.detail.contains("hunter2"), "{}", e.detail);
        let d: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(
            d["requestParameters"],
            json!({"secretId": "db", "clientRequestToken": "t-1", "versionStages": ["AWSCURRENT"]})
        );
        assert_eq!(d["responseElements"], json!({"arn": "arn:x"}));
        assert_eq!(d["eventTime"], "2018-04-03T17:50:55Z");
        assert_eq!(d["readOnly"], false);
        assert_eq!(d["userIdentity"]["accessKeyId"], "AKIAEXAMPLE");
        assert_eq!(
            e.resource.as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf")
        );
        assert!(format!("{call:?}").len() > 10);
    }

    #[test]
    fn a_refused_read_records_its_error_and_no_response() {
        let call = Call::new(
            "GetSecretValue",
            br#"{"SecretId":"missing"}"#,
            "eu-west-1",
            0,
            "r",
            Caller::default(),
        );
        let e = call.entry("1", None, Some(&ApiError::secret_not_found()));
        let d: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(d["errorCode"], "ResourceNotFoundException");
        assert_eq!(d["responseElements"], Value::Null);
        assert_eq!(d["requestParameters"], json!({"secretId": "missing"}));
        assert_eq!(e.resource.as_deref(), Some("missing"));
        assert_eq!(e.error_code.as_deref(), Some("ResourceNotFoundException"));
        assert!(e.read_only);
    }
}
