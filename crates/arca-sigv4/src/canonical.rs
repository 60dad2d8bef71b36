//! Task 1 of SigV4: the canonical request. Each function is one step of the spec
//! (canonical URI, query, headers, signed headers, payload hash) so it can be tested against
//! AWS's vectors on its own; `canonical_request` joins them.

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::error::AuthError;
use crate::split::{split_ascii, SplitAscii};

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
    parse_signed_names(value).map(|n| n.to_vec())
}

/// The names of a `SignedHeaders` value, lowercase, sorted and de-duplicated. Every SDK sends
/// them that way already, so the common case borrows the value as sent; only a value that
/// needs normalizing is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignedNames<'a> {
    /// The value as sent, which is already `;`-joined canonical names.
    Canonical(&'a str),
    /// Normalized copies.
    Normalized(Vec<String>),
    /// Normalized names owned elsewhere (a parsed presigned query).
    Borrowed(&'a [String]),
}

/// Iterator over [`SignedNames`], whichever form they are in.
pub(crate) enum SignedNamesIter<'s> {
    Split(SplitAscii<'s>),
    Slice(std::slice::Iter<'s, String>),
}

impl<'s> Iterator for SignedNamesIter<'s> {
    type Item = &'s str;
    fn next(&mut self) -> Option<&'s str> {
        match self {
            SignedNamesIter::Split(it) => it.next(),
            SignedNamesIter::Slice(it) => it.next().map(String::as_str),
        }
    }
}

impl SignedNames<'_> {
    pub(crate) fn iter(&self) -> SignedNamesIter<'_> {
        match self {
            SignedNames::Canonical(s) => SignedNamesIter::Split(split_ascii(s, b';')),
            SignedNames::Normalized(v) => SignedNamesIter::Slice(v.iter()),
            SignedNames::Borrowed(v) => SignedNamesIter::Slice(v.iter()),
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    pub(crate) fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }

    /// The names joined with `;`, as the canonical `SignedHeaders` value.
    pub(crate) fn joined(&self) -> String {
        match self {
            SignedNames::Canonical(s) => (*s).to_owned(),
            _ => {
                let mut out = String::new();
                for (i, n) in self.iter().enumerate() {
                    if i > 0 {
                        out.push(';');
                    }
                    out.push_str(n);
                }
                out
            }
        }
    }
}

/// A name as a `SignedHeaders` entry may be: visible ASCII other than ':'.
fn valid_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b':'
}

/// [`parse_signed_headers`] that borrows `value` when it is already canonical (every name
/// valid and lowercase, strictly increasing, so sorted and unique) and normalizes a copy
/// otherwise. Same errors either way.
pub(crate) fn parse_signed_names(value: &str) -> Result<SignedNames<'_>, AuthError> {
    let mut prev: Option<&str> = None;
    let canonical = split_ascii(value, b';').all(|name| {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| valid_name_byte(b) && !b.is_ascii_uppercase())
            && prev.is_none_or(|p| p < name);
        prev = Some(name);
        ok
    });
    if canonical {
        return Ok(SignedNames::Canonical(value));
    }
    normalize_signed_headers(value).map(SignedNames::Normalized)
}

/// The general case: trim, check, lowercase, sort, de-duplicate.
fn normalize_signed_headers(value: &str) -> Result<Vec<String>, AuthError> {
    let mut names = Vec::new();
    for name in value.split(';') {
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(valid_name_byte) {
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

/// Whether [`canonical_uri`] would return `path` unchanged: it starts with '/', and its
/// segments are non-empty, not dot segments, and need no encoding (an optional trailing '/'
/// aside). "/" (every Secrets Manager request) is the common case.
fn uri_is_canonical(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    })
}

/// Whether [`trim_all`] would change `value`: a leading or trailing space, or two in a row.
fn needs_trim(value: &str) -> bool {
    let b = value.as_bytes();
    b.first() == Some(&b' ')
        || b.last() == Some(&b' ')
        || b.windows(2).any(|w| w[0] == b' ' && w[1] == b' ')
}

/// SHA-256 of the canonical request, fed to the hasher piece by piece instead of building
/// the string: this is the verifier's per-request path, and the joined string (plus one
/// allocation per step) would only be hashed and dropped. Byte for byte the same input as
/// `canonical_request(method, &canonical_uri(path), &canonical_query_string(query,
/// exclude), &canonical_headers(headers, names), &signed_headers(names), payload_hash)`,
/// which the tests check. The uncommon shapes (a path or header value that needs
/// normalizing, a query string) fall back to those step functions.
pub(crate) fn hash_canonical_request(
    method: &str,
    path: &str,
    query: &str,
    exclude: Option<&str>,
    headers: &[(&str, &str)],
    names: &SignedNames,
    payload_hash_hex: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    if uri_is_canonical(path) {
        h.update(path.as_bytes());
    } else {
        h.update(canonical_uri(path).as_bytes());
    }
    h.update(b"\n");
    if !query.is_empty() {
        h.update(canonical_query_string(query, exclude).as_bytes());
    }
    h.update(b"\n");
    for name in names.iter() {
        h.update(name.as_bytes());
        h.update(b":");
        let mut first = true;
        for (_, v) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                h.update(b",");
            }
            first = false;
            if needs_trim(v) {
                h.update(trim_all(v).as_bytes());
            } else {
                h.update(v.as_bytes());
            }
        }
        h.update(b"\n");
    }
    h.update(b"\n");
    match names {
        SignedNames::Canonical(joined) => h.update(joined.as_bytes()),
        _ => {
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    h.update(b";");
                }
                h.update(name.as_bytes());
            }
        }
    }
    h.update(b"\n");
    h.update(payload_hash_hex);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_names_join_canonically_whatever_their_form() {
        let canonical = parse_signed_names("content-type;host").expect("names");
        assert_eq!(canonical.joined(), "content-type;host");
        let normalized = parse_signed_names("Host;Content-Type").expect("names");
        assert_eq!(normalized.joined(), "content-type;host");
        assert_eq!(normalized.to_vec(), ["content-type", "host"]);
    }

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

    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn atoms(rng: &mut StdRng, set: &[&str], max: usize) -> String {
        (0..rng.gen_range(1..=max))
            .map(|_| set.choose(rng).copied().unwrap_or_default())
            .collect()
    }

    /// Paths as received: mostly "/", else segments of plain, encoded, dot and empty parts
    /// (the oracle test's atoms), so both the borrowed fast path and the fallback run.
    fn gen_path(rng: &mut StdRng) -> String {
        const URI_ATOMS: &[&str] = &[
            "a", "b", "Z", "0", "9", "-", "_", ".", "~", "%20", "%2F", "%3D", "%C3%A9", "@", ":",
            "!", "$", "'", "(", ")", "*", ",", ";", " ", "é",
        ];
        match rng.gen_range(0..8) {
            0 => "/".into(),
            1 => ["", "//", "/.", "/..", "/./", "a", "a/b"][rng.gen_range(0..7)].into(),
            n => {
                let plain = n < 5;
                let mut p = String::new();
                for _ in 0..rng.gen_range(1..=4) {
                    p.push('/');
                    if plain {
                        p.push_str(&atoms(rng, &["a", "Z", "0", "-", "_", ".", "~"], 6));
                        continue;
                    }
                    match rng.gen_range(0..10) {
                        0 => p.push('.'),
                        1 => p.push_str(".."),
                        2 => {}
                        _ => p.push_str(&atoms(rng, URI_ATOMS, 6)),
                    }
                }
                if rng.gen_bool(0.3) {
                    p.push('/');
                }
                p
            }
        }
    }

    fn gen_query(rng: &mut StdRng) -> String {
        const QUERY_ATOMS: &[&str] = &[
            "a",
            "B",
            "7",
            "-",
            "_",
            ".",
            "~",
            "%20",
            "%2B",
            "+",
            "%26",
            "%3D",
            "%7e",
            "X-Amz-Signature",
        ];
        if rng.gen_bool(0.5) {
            return String::new();
        }
        let pairs: Vec<String> = (0..rng.gen_range(1..=4))
            .map(|_| {
                let k = atoms(rng, QUERY_ATOMS, 3);
                match rng.gen_range(0..4) {
                    0 => k,
                    1 => format!("{k}="),
                    _ => format!("{k}={}", atoms(rng, QUERY_ATOMS, 4)),
                }
            })
            .collect();
        pairs.join("&")
    }

    /// Header values with and without the spaces trim_all removes (leading, trailing, runs),
    /// and tabs, which it keeps.
    fn gen_value(rng: &mut StdRng) -> String {
        const VALUE_ATOMS: &[&str] = &[
            "a",
            "X",
            "0",
            " ",
            "  ",
            "\t",
            ",",
            ";",
            ":",
            "=",
            "/",
            "\"",
            "é",
            "application/x",
        ];
        if rng.gen_bool(0.1) {
            return String::new();
        }
        atoms(rng, VALUE_ATOMS, 8)
    }

    /// A `SignedHeaders` value as a client might send it: usually canonical, sometimes in
    /// the wrong case, order, with repeats or spaces, naming headers present or absent.
    fn gen_signed(rng: &mut StdRng, present: &[String]) -> String {
        let mut names: Vec<String> = present.iter().map(|n| n.to_ascii_lowercase()).collect();
        if rng.gen_bool(0.2) {
            names.push("x-absent".into());
        }
        names.sort();
        names.dedup();
        if rng.gen_bool(0.3) {
            names.shuffle(rng);
        }
        if rng.gen_bool(0.2) {
            let dup = names[0].clone();
            names.push(dup);
        }
        for n in &mut names {
            if rng.gen_bool(0.1) {
                *n = n.to_ascii_uppercase();
            }
            if rng.gen_bool(0.05) {
                *n = format!(" {n}");
            }
        }
        names.join(";")
    }

    #[test]
    fn streamed_hash_equals_hash_of_canonical_request() {
        let mut rng = StdRng::seed_from_u64(0x4352_4551);
        let mut fast_paths = 0;
        for i in 0..3000 {
            let method = ["POST", "GET", "PUT"][rng.gen_range(0..3)];
            let path = gen_path(&mut rng);
            let query = gen_query(&mut rng);
            let mut owned: Vec<(String, String)> = vec![("Host".into(), "localhost:7700".into())];
            for name in ["Content-Type", "X-Amz-Date", "X-Amz-Target", "My-Header"] {
                for _ in 0..rng.gen_range(0..3) {
                    let name = if rng.gen_bool(0.5) {
                        name.to_ascii_lowercase()
                    } else {
                        name.to_string()
                    };
                    owned.push((name, gen_value(&mut rng)));
                }
            }
            owned.shuffle(&mut rng);
            let headers: Vec<(&str, &str)> = owned
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let present: Vec<String> = owned.iter().map(|(n, _)| n.clone()).collect();
            let signed_value = gen_signed(&mut rng, &present);
            let names = parse_signed_names(&signed_value).expect("valid names");
            if matches!(names, SignedNames::Canonical(_)) {
                fast_paths += 1;
            }
            let body: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
            let exclude = rng.gen_bool(0.3).then_some("X-Amz-Signature");

            let vec_names = parse_signed_headers(&signed_value).expect("valid names");
            let creq = canonical_request(
                method,
                &canonical_uri(&path),
                &canonical_query_string(&query, exclude),
                &canonical_headers(&headers, &vec_names),
                &signed_headers(&vec_names),
                &payload_hash(&body),
            );
            let body_hash = payload_hash(&body);
            let streamed = hash_canonical_request(
                method,
                &path,
                &query,
                exclude,
                &headers,
                &names,
                body_hash.as_bytes(),
            );
            let want: [u8; 32] = Sha256::digest(creq.as_bytes()).into();
            assert_eq!(streamed, want, "case {i}: {creq:?}");
            // The same names, owned elsewhere (the presigned form).
            let borrowed = hash_canonical_request(
                method,
                &path,
                &query,
                exclude,
                &headers,
                &SignedNames::Borrowed(&vec_names),
                body_hash.as_bytes(),
            );
            assert_eq!(borrowed, want, "case {i}: {creq:?}");
        }
        assert!(fast_paths > 500, "{fast_paths}");
    }

    #[test]
    fn canonical_paths_are_recognized_exactly() {
        let mut rng = StdRng::seed_from_u64(0x5552_4921);
        for _ in 0..5000 {
            let p = gen_path(&mut rng);
            if uri_is_canonical(&p) {
                assert_eq!(canonical_uri(&p), p);
            }
        }
        for p in ["/", "/a", "/a/", "/a-b_c.d~e/f", "/..."] {
            assert!(uri_is_canonical(p), "{p}");
        }
        for p in [
            "", "a", "//", "/./", "/a/.", "/a/..", "/a//b", "/a%20b", "/a b", "/é",
        ] {
            assert!(!uri_is_canonical(p), "{p}");
        }
    }

    #[test]
    fn borrowed_signed_names_agree_with_normalizing() {
        const NAME_ATOMS: &[&str] = &["a", "b", "host", "x-amz-date", "A", "Host", "-", ":", " "];
        let mut rng = StdRng::seed_from_u64(0x5348_4452);
        for _ in 0..20000 {
            let value = (0..rng.gen_range(1..=4))
                .map(|_| {
                    if rng.gen_bool(0.05) {
                        String::new()
                    } else {
                        atoms(&mut rng, NAME_ATOMS, 2)
                    }
                })
                .collect::<Vec<_>>()
                .join(";");
            let ours = parse_signed_names(&value).map(|n| n.to_vec());
            assert_eq!(ours, normalize_signed_headers(&value), "{value:?}");
        }
        assert!(matches!(
            parse_signed_names("content-type;host;x-amz-date;x-amz-target"),
            Ok(SignedNames::Canonical(_))
        ));
        for v in [
            "host;Content-Type",
            "host;content-type",
            "host;host",
            "host; x",
        ] {
            assert!(
                matches!(parse_signed_names(v), Ok(SignedNames::Normalized(_))),
                "{v}"
            );
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
