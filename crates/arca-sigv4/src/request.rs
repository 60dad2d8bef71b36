//! The request as the HTTP layer hands it over: borrowed strings and bytes, no HTTP crate types.
//! Its Debug hides everything that authenticates a request (Authorization, session token,
//! X-Amz-Signature) and the body, so it can be logged.

use std::fmt;

/// One received request, exactly as it arrived on the wire.
#[derive(Clone, Copy)]
pub struct RequestParts<'a> {
    /// "POST"
    pub method: &'a str,
    /// Raw path as received (still percent-encoded), e.g. "/".
    pub path: &'a str,
    /// Raw query string without the '?', "" if none.
    pub query: &'a str,
    /// All headers as received: names in any case, repeated names allowed, in order.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// Every value of header `name` (case-insensitive), in the order received.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Header names whose values authenticate the request and therefore never get printed.
const REDACTED_HEADERS: &[&str] = &["authorization", "x-amz-security-token"];
/// Query parameters likewise.
const REDACTED_PARAMS: &[&str] = &["X-Amz-Signature", "X-Amz-Security-Token"];

impl fmt::Debug for RequestParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                if REDACTED_HEADERS.iter().any(|r| n.eq_ignore_ascii_case(r)) {
                    (*n, "[redacted]")
                } else {
                    (*n, *v)
                }
            })
            .collect();
        let query: Vec<String> = self
            .query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                // Compare decoded names so "X-Amz-Signature" can't slip through as "X%2DAmz...".
                let decoded = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
                if REDACTED_PARAMS
                    .iter()
                    .any(|r| decoded.eq_ignore_ascii_case(r))
                {
                    format!("{key}=[redacted]")
                } else {
                    pair.to_string()
                }
            })
            .collect();
        f.debug_struct("RequestParts")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &query.join("&"))
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}
