//! Task 1 of SigV4: the canonical request. Each function is one step of the spec
//! (canonical URI, query, headers, signed headers, payload hash) so it can be tested against
//! AWS's vectors on its own; `canonical_request` joins them.

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::error::AuthError;

/// SigV4's URI encoding: everything except the unreserved characters `A-Z a-z 0-9 - _ . ~`,
/// with uppercase hex.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// URI-encodes bytes the way SigV4 wants (`%XX`, uppercase, unreserved characters kept).
pub fn uri_encode(bytes: &[u8]) -> String {
    percent_encode(bytes, SIGV4_ENCODE).to_string()
}

/// Canonical URI for non-S3 services. `path` is the raw path as received, which the client
/// has already percent-encoded once; dot segments and empty segments are removed (RFC 3986
/// 5.2.4, as the SDKs normalize) and each segment is then encoded again. That second encoding
/// is what the spec calls double-encoding: `%3D` on the wire becomes `%253D` here.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    // A trailing "/", "/." or "/.." keeps the path a directory, as in RFC 3986.
    let trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = String::with_capacity(path.len() + 8);
    for seg in &segments {
        out.push('/');
        out.push_str(&uri_encode(seg.as_bytes()));
    }
    if segments.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// Decodes one query-string component: `%XX` escapes, and `+` as a space (form encoding,
/// as the AWS SDKs read query strings when they sign them).
fn decode_query_component(s: &str) -> Vec<u8> {
    let plus_as_space: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space).collect()
}

/// Canonical query string: every `name=value` pair decoded and re-encoded with SigV4's
/// encoding, sorted by encoded name then encoded value, joined with `&`. A pair whose
/// decoded name equals `exclude` (the presigned form's `X-Amz-Signature`) is left out.
pub fn canonical_query_string(query: &str, exclude: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode_query_component(k);
            if exclude.is_some_and(|ex| ex.as_bytes() == k.as_slice()) {
                return None;
            }
            Some((uri_encode(&k), uri_encode(&decode_query_component(v))))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims leading and trailing spaces and collapses runs of spaces into one, as the spec says
/// (only the space character: the SDKs leave tabs alone, and so must we to agree with them).
fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Canonical headers block for the headers named in `signed` (lowercase, sorted, as from
/// [`parse_signed_headers`]): one `name:value\n` line each, where repeated headers are joined
/// with `,` in the order received and each value is trimmed. A signed header that is absent
/// gets an empty value, so the signature simply fails to match.
pub fn canonical_headers(headers: &[(&str, &str)], signed: &[String]) -> String {
    let mut out = String::new();
    for name in signed {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, v) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&trim_all(v));
        }
        out.push('\n');
    }
    out
}

/// The signed-headers line: names joined with `;`.
pub fn signed_headers(names: &[String]) -> String {
    names.join(";")
}

/// Parses a `SignedHeaders` value into lowercase, sorted, de-duplicated names. An empty list
/// or an empty name is malformed.
pub fn parse_signed_headers(value: &str) -> Result<Vec<String>, AuthError> {
    let mut names = Vec::new();
    for name in value.split(';') {
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(AuthError::incomplete(
                "SignedHeaders must be a ';'-separated list of header names.",
            ));
        }
        names.push(name.to_ascii_lowercase());
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Hex SHA-256 of the body: the last line of the canonical request. Arca always hashes the
/// real body; UNSIGNED-PAYLOAD is not accepted.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Joins the steps into the canonical request.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_path_is_slash() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("//"), "/");
        assert_eq!(canonical_uri("/./"), "/");
        assert_eq!(canonical_uri("/.."), "/");
    }

    #[test]
    fn path_is_normalized_then_encoded_again() {
        assert_eq!(canonical_uri("/example/.."), "/");
        assert_eq!(canonical_uri("/example1/example2/../.."), "/");
        assert_eq!(canonical_uri("/./example/"), "/example/");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/a b"), "/a%20b");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(
            canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(canonical_uri("/-._~az09"), "/-._~az09");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(
            canonical_query_string("Param2=value2&Param1=value1", None),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(canonical_query_string("b=2&a=2&a=1", None), "a=1&a=2&b=2");
        assert_eq!(canonical_query_string("k", None), "k=");
        assert_eq!(
            canonical_query_string("a=%2f&&b=c+d", None),
            "a=%2F&b=c%20d"
        );
        assert_eq!(
            canonical_query_string(
                "a=1&X-Amz-Signature=abc&X-Amz-Date=1",
                Some("X-Amz-Signature")
            ),
            "X-Amz-Date=1&a=1"
        );
        assert_eq!(canonical_query_string("", None), "");
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("My-Header1", "  a   b  "),
            ("my-header1", "c"),
            ("X-Other", "unsigned"),
        ];
        let signed = parse_signed_headers("My-Header1;host").expect("valid");
        assert_eq!(signed, ["host", "my-header1"]);
        assert_eq!(
            canonical_headers(&headers, &signed),
            "host:example.amazonaws.com\nmy-header1:a b,c\n"
        );
        assert_eq!(signed_headers(&signed), "host;my-header1");
    }

    #[test]
    fn malformed_signed_headers_are_rejected() {
        for bad in ["", ";", "host;", "ho st", "a:b"] {
            assert!(parse_signed_headers(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn empty_body_hash() {
        assert_eq!(
            payload_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
