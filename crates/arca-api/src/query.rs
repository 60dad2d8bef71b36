//! The AWS Query protocol that IAM and STS speak: form-encoded `Action=...&Version=...`
//! requests, and XML answers and errors. The operations themselves live in arca-core's
//! `iam` module; this module only reads parameters and writes XML (by hand: a handful of
//! flat shapes, with every text escaped).

use crate::server::Response;
use arca_types::ApiError;
use http::{header, StatusCode};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The Query services Arca answers, told apart by their API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryService {
    Iam,
    Sts,
}

impl QueryService {
    pub(crate) fn signing_name(self) -> &'static str {
        match self {
            QueryService::Iam => "iam",
            QueryService::Sts => "sts",
        }
    }

    pub(crate) fn event_source(self) -> &'static str {
        match self {
            QueryService::Iam => "iam.amazonaws.com",
            QueryService::Sts => "sts.amazonaws.com",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            QueryService::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
            QueryService::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
        }
    }
}

/// A request's form parameters.
pub(crate) struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self {
            map: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.map.get(name).cloned()
    }

    pub(crate) fn action(&self) -> Option<&str> {
        self.map.get("Action").map(String::as_str)
    }

    /// An integer parameter; one that does not parse is a validation error.
    pub(crate) fn int(&self, name: &str, path: &str) -> Result<Option<i64>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::validation(&[arca_types::Violation {
                    value: arca_types::Shown::Value(v.chars().take(64).collect()),
                    path: path.to_owned(),
                    constraint: "Member must be a number".to_owned(),
                }])
            }),
        }
    }

    /// `Tags.member.N.Key` / `.Value`.
    pub(crate) fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        for n in 1.. {
            let Some(k) = self.map.get(&format!("Tags.member.{n}.Key")) else {
                break;
            };
            let v = self
                .map
                .get(&format!("Tags.member.{n}.Value"))
                .cloned()
                .unwrap_or_default();
            tags.insert(k.clone(), v);
        }
        tags
    }

    /// The parameters as CloudTrail's requestParameters write them (`UserName` becomes
    /// `userName`), Action and Version left out. IAM and STS requests carry no secret
    /// material (the secrets they make are in answers, which are never recorded); each
    /// value is bounded so a huge parameter cannot fill the trail.
    pub(crate) fn request_parameters(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (k, v) in &self.map {
            if k == "Action" || k == "Version" || out.len() >= 32 {
                continue;
            }
            let mut chars = k.chars();
            let key: String = chars
                .next()
                .map(|c| c.to_ascii_lowercase())
                .into_iter()
                .chain(chars)
                .take(128)
                .collect();
            out.insert(key, v.chars().take(4096).collect::<String>().into());
        }
        serde_json::Value::Object(out)
    }

    /// Whether any parameter starts with `prefix` (PolicyArns.member.1.arn ...).
    pub(crate) fn any_starting(&self, prefix: &str) -> bool {
        self.map.keys().any(|k| k.starts_with(prefix))
    }
}

/// Which Query service a request is for: a form body naming an Action and the API
/// version of IAM or STS. Anything else is not a Query request.
pub(crate) fn service_of(parts: &http::request::Parts, body: &[u8]) -> Option<QueryService> {
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form || parts.headers.contains_key("x-amz-target") {
        return None;
    }
    let version = form_urlencoded::parse(body)
        .find(|(k, _)| k == "Version")
        .map(|(_, v)| v.into_owned());
    match version.as_deref() {
        Some("2010-05-08") => Some(QueryService::Iam),
        Some("2011-06-15") => Some(QueryService::Sts),
        _ => None,
    }
}

/// Text escaped for XML content.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// An XML body under construction. Wiped when dropped: CreateAccessKey's and
/// AssumeRole's answers carry secrets.
pub(crate) struct Xml {
    out: zeroize::Zeroizing<String>,
}

impl Xml {
    fn new() -> Self {
        Self {
            out: zeroize::Zeroizing::new(String::with_capacity(1024)),
        }
    }

    pub(crate) fn open(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.out, "<{tag}>");
        self
    }

    pub(crate) fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.out, "</{tag}>");
        self
    }

    pub(crate) fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        let _ = write!(self.out, "<{tag}>");
        escape(text, &mut self.out);
        let _ = write!(self.out, "</{tag}>");
        self
    }

    pub(crate) fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    /// A policy document, URL-encoded as IAM returns it (botocore decodes it).
    pub(crate) fn policy(&mut self, tag: &str, text: &str) -> &mut Self {
        let encoded: String = form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        self.leaf(tag, &encoded)
    }

    pub(crate) fn date(&mut self, tag: &str, millis: i64) -> &mut Self {
        self.leaf(tag, &iso_date(millis))
    }
}

/// `2012-05-08T23:34:01Z`, as IAM and STS write dates.
pub(crate) fn iso_date(millis: i64) -> String {
    arca_core::audit::event_time(millis)
}

/// `<ActionResponse xmlns=...><ActionResult>...</ActionResult><ResponseMetadata>...`.
pub(crate) fn ok(
    service: QueryService,
    action: &str,
    request_id: &str,
    result: impl FnOnce(&mut Xml),
) -> Response {
    let mut x = Xml::new();
    let _ = write!(
        x.out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{}\">",
        service.namespace()
    );
    let mut inner = Xml::new();
    result(&mut inner);
    if !inner.out.is_empty() {
        let _ = write!(
            x.out,
            "<{action}Result>{}</{action}Result>",
            inner.out.as_str()
        );
    }
    x.open("ResponseMetadata")
        .leaf("RequestId", request_id)
        .close("ResponseMetadata");
    let _ = write!(x.out, "</{action}Response>");
    respond(StatusCode::OK, &x, request_id)
}

/// `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error>`.
pub(crate) fn error(service: QueryService, e: &ApiError, request_id: &str) -> Response {
    let status = e.code.query_status();
    let mut x = Xml::new();
    let _ = write!(
        x.out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{}\">",
        service.namespace()
    );
    x.open("Error")
        .leaf("Type", if status >= 500 { "Receiver" } else { "Sender" })
        .leaf("Code", e.code.query_code())
        .leaf("Message", &e.message)
        .close("Error")
        .leaf("RequestId", request_id);
    let _ = write!(x.out, "</ErrorResponse>");
    respond(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &x,
        request_id,
    )
}

fn respond(status: StatusCode, x: &Xml, request_id: &str) -> Response {
    let body = crate::json::wiped_on_drop(x.out.as_bytes().to_vec());
    crate::codec::response_typed(status, body, "text/xml", request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_policies_url_encoded() {
        let mut x = Xml::new();
        x.leaf("A", "<b>&\"'").policy("P", r#"{"a": "b c"}"#);
        assert_eq!(
            x.out.as_str(),
            "<A>&lt;b&gt;&amp;&quot;&apos;</A><P>%7B%22a%22%3A%20%22b%20c%22%7D</P>"
        );
        assert_eq!(iso_date(1_336_519_641_000), "2012-05-08T23:27:21Z");
    }

    #[test]
    fn tags_and_numbers_are_read() {
        let p = Params::parse(
            b"Action=CreateUser&Tags.member.1.Key=team&Tags.member.1.Value=a&Tags.member.2.Key=x&DurationSeconds=9x",
        );
        assert_eq!(p.action(), Some("CreateUser"));
        assert_eq!(p.tags().len(), 2);
        assert!(p.int("DurationSeconds", "durationSeconds").is_err());
    }
}
