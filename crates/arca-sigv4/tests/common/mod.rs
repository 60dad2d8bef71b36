//! Helpers shared by the integration tests: a key table and an owned request that can be
//! borrowed as `RequestParts`.

#![allow(dead_code)]

use arca_sigv4::{KeyLookup, RequestParts};
use arca_types::secret::SecretString;

/// A fixed table of access key id -> secret.
pub struct Keys(pub Vec<(String, String)>);

impl Keys {
    pub fn one(akid: &str, secret: &str) -> Self {
        Keys(vec![(akid.to_string(), secret.to_string())])
    }
}

impl KeyLookup for Keys {
    fn secret_key(&self, access_key_id: &str) -> Option<SecretString> {
        self.0
            .iter()
            .find(|(k, _)| k == access_key_id)
            .map(|(_, s)| SecretString::new(s.clone()))
    }
}

/// A request the tests own and mutate.
#[derive(Clone, Debug)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    /// Calls `f` with a borrowed view (RequestParts borrows a slice of `(&str, &str)`).
    pub fn with_parts<R>(&self, f: impl FnOnce(&RequestParts) -> R) -> R {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        f(&parts)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn without_header(&self, name: &str) -> Self {
        let mut r = self.clone();
        r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        r
    }

    /// Parses the test suite's request files: a request line, `Name:value` header lines
    /// (a line starting with whitespace continues the previous value, HTTP's obs-fold,
    /// unfolded with a space as RFC 7230 allows), a blank line, the body.
    pub fn parse_suite(text: &str) -> Self {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let (method, rest) = request_line.split_once(' ').expect("method");
        // One case (double-url-encode) omits the protocol.
        let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                let last = headers.last_mut().expect("continuation after a header");
                last.1.push(' ');
                last.1.push_str(line);
                continue;
            }
            let (n, v) = line.split_once(':').expect("header line");
            headers.push((n.to_string(), v.to_string()));
        }
        OwnedRequest {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }
}
