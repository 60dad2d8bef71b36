//! Parsing the two places a SigV4 signature can arrive: the `Authorization` header and the
//! presigned query (`X-Amz-*` parameters). Parsing only checks shape; what the values must be
//! (algorithm, scope, dates) is checked in `verify`, in the documented order.

use crate::canonical::{parse_signed_headers, parse_signed_names, SignedNames};
use crate::error::AuthError;
use crate::signing::{CredentialScope, Signature};
use crate::split::{split_ascii, split_once_ascii};

/// `AKID/YYYYMMDD/region/service/aws4_request`, split. The terminator is kept as sent so that
/// `verify` can report a wrong one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub scope: CredentialScope,
    pub terminator: String,
}

/// A Credential value split into its five parts, borrowed from the header (the verify path's
/// form of [`Credential`]: no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CredentialRef<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
    /// `AKID/YYYYMMDD/region/service`, everything before the terminator: one string that
    /// names the signing key (no part contains '/'), so the key cache can be asked by it.
    pub scope_id: &'a str,
}

const CREDENTIAL_SHAPE: &str = "Credential must have exactly 5 slash-separated elements: \
     <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request.";

/// Splits a Credential value into its five parts, borrowing them. Fewer or more parts, or an
/// empty part, is malformed (IncompleteSignature).
pub(crate) fn parse_credential_ref(value: &str) -> Result<CredentialRef<'_>, AuthError> {
    let mut parts = split_ascii(value, b'/');
    let mut next = || parts.next().filter(|p| !p.is_empty());
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) =
        (next(), next(), next(), next(), next(), parts.next())
    else {
        return Err(AuthError::incomplete(CREDENTIAL_SHAPE));
    };
    Ok(CredentialRef {
        access_key_id,
        date,
        region,
        service,
        terminator,
        scope_id: &value[..value.len() - terminator.len() - 1],
    })
}

/// Splits a Credential value into its five parts. Fewer or more parts, or an empty part, is
/// malformed (IncompleteSignature).
pub fn parse_credential(value: &str) -> Result<Credential, AuthError> {
    parse_credential_ref(value).map(|c| c.to_credential())
}

impl CredentialRef<'_> {
    pub(crate) fn to_credential(self) -> Credential {
        Credential {
            access_key_id: self.access_key_id.to_string(),
            scope: CredentialScope {
                date: self.date.to_string(),
                region: self.region.to_string(),
                service: self.service.to_string(),
            },
            terminator: self.terminator.to_string(),
        }
    }
}

/// A parsed `Authorization` header. Its Debug prints no signature (see [`Signature`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub algorithm: String,
    pub credential: Credential,
    /// Lowercase, sorted, de-duplicated.
    pub signed_headers: Vec<String>,
    pub signature: Signature,
}

/// An `Authorization` header parsed into parts borrowed from it: what `verify` works from,
/// since the owned [`ParsedAuthorization`] costs an allocation per part on every request.
/// No Debug: it holds the provided signature as a plain `&str`.
pub(crate) struct AuthorizationRef<'a> {
    pub algorithm: &'a str,
    pub credential: CredentialRef<'a>,
    pub signed_headers: SignedNames<'a>,
    /// As sent; compared in constant time, never printed.
    pub signature: &'a str,
}

/// Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. The
/// components may come in any order, with or without spaces after the commas. Every missing
/// component is named in one message, as AWS does, but the header itself is never echoed
/// (it carries the signature).
pub fn parse_authorization_header(value: &str) -> Result<ParsedAuthorization, AuthError> {
    let p = parse_authorization_ref(value)?;
    Ok(ParsedAuthorization {
        algorithm: p.algorithm.to_string(),
        credential: p.credential.to_credential(),
        signed_headers: p.signed_headers.to_vec(),
        signature: Signature::from_provided(p.signature),
    })
}

/// [`parse_authorization_header`] without the copies: same checks, same order, same errors.
pub(crate) fn parse_authorization_ref(value: &str) -> Result<AuthorizationRef<'_>, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in split_ascii(rest, b',') {
        let Some((k, v)) = split_once_ascii(component.trim(), b'=') else {
            continue;
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return Err(AuthError::incomplete(format!(
                "Authorization header contains the '{}' parameter more than once.",
                k.trim()
            )));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        let mut missing = String::new();
        for (name, present) in [
            ("Credential", credential.is_some()),
            ("Signature", signature.is_some()),
            ("SignedHeaders", signed_headers.is_some()),
        ] {
            if !present {
                missing.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        return Err(AuthError::incomplete(missing.trim_end()));
    };
    Ok(AuthorizationRef {
        algorithm,
        credential: parse_credential_ref(credential)?,
        signed_headers: parse_signed_names(signed_headers)?,
        signature,
    })
}

/// The authentication parameters of a presigned query. Its Debug prints no signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedQuery {
    pub algorithm: String,
    pub credential: Credential,
    /// `X-Amz-Date` as sent (checked in `verify`).
    pub amz_date: String,
    /// `X-Amz-Expires`, 1..=604800 seconds.
    pub expires_secs: i64,
    pub signed_headers: Vec<String>,
    pub signature: Signature,
    /// `X-Amz-Security-Token`, the session token of temporary credentials (redacted in
    /// Debug).
    pub security_token: Option<arca_types::secret::SecretString>,
}

pub const X_AMZ_ALGORITHM: &str = "X-Amz-Algorithm";
pub const X_AMZ_CREDENTIAL: &str = "X-Amz-Credential";
pub const X_AMZ_DATE: &str = "X-Amz-Date";
pub const X_AMZ_EXPIRES: &str = "X-Amz-Expires";
pub const X_AMZ_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
pub const X_AMZ_SIGNATURE: &str = "X-Amz-Signature";
pub const X_AMZ_SECURITY_TOKEN: &str = "X-Amz-Security-Token";

/// A week, the longest validity SigV4 allows a presigned request.
const MAX_EXPIRES_SECS: i64 = 604_800;

/// Finds the presigned-query parameters. `Ok(None)` when the query carries no signature at
/// all (no `X-Amz-Algorithm`, `X-Amz-Credential` or `X-Amz-Signature`), so the caller can
/// fall back to the header form or report a missing token.
pub fn parse_presigned_query(query: &str) -> Result<Option<PresignedQuery>, AuthError> {
    const NAMES: [&str; 7] = [
        X_AMZ_ALGORITHM,
        X_AMZ_CREDENTIAL,
        X_AMZ_SIGNATURE,
        X_AMZ_SIGNED_HEADERS,
        X_AMZ_DATE,
        X_AMZ_EXPIRES,
        X_AMZ_SECURITY_TOKEN,
    ];
    let mut found: [Option<String>; 7] = Default::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_encoding::percent_decode_str(k).decode_utf8_lossy();
        let Some(i) = NAMES.iter().position(|n| *n == k) else {
            continue;
        };
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned();
        if found[i].replace(v).is_some() {
            return Err(AuthError::incomplete(format!(
                "AWS query-string parameter '{}' appears more than once.",
                NAMES[i]
            )));
        }
    }
    let [algorithm, credential, signature, signed_headers, date, expires, token] = found;
    if algorithm.is_none() && credential.is_none() && signature.is_none() {
        return Ok(None);
    }
    let mut missing = String::new();
    for (name, present) in [
        (X_AMZ_ALGORITHM, algorithm.is_some()),
        (X_AMZ_CREDENTIAL, credential.is_some()),
        (X_AMZ_SIGNATURE, signature.is_some()),
        (X_AMZ_SIGNED_HEADERS, signed_headers.is_some()),
        (X_AMZ_DATE, date.is_some()),
        (X_AMZ_EXPIRES, expires.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "AWS query-string parameters must include '{name}'. "
            ));
        }
    }
    let (
        Some(algorithm),
        Some(credential),
        Some(signature),
        Some(signed_headers),
        Some(amz_date),
        Some(expires),
    ) = (
        algorithm,
        credential,
        signature,
        signed_headers,
        date,
        expires,
    )
    else {
        missing.push_str("Re-examine the query-string parameters.");
        return Err(AuthError::incomplete(missing));
    };
    let expires_secs = match expires.parse::<i64>() {
        Ok(n) if expires.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(AuthError::incomplete("X-Amz-Expires should be a number.")),
    };
    if !(1..=MAX_EXPIRES_SECS).contains(&expires_secs) {
        return Err(AuthError::incomplete(
            "X-Amz-Expires must be between 1 and 604800 seconds (one week).",
        ));
    }
    Ok(Some(PresignedQuery {
        algorithm,
        credential: parse_credential(&credential)?,
        amz_date,
        expires_secs,
        signed_headers: parse_signed_headers(&signed_headers)?,
        signature: Signature::from_provided(&signature),
        security_token: token.map(arca_types::secret::SecretString::new),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AuthErrorKind;

    const SIG: &str = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";

    #[test]
    fn parses_a_well_formed_header_in_any_order_and_spacing() {
        for h in [
            format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Signature={SIG},SignedHeaders=x-amz-date;Host,Credential=AKID/20150830/us-east-1/service/aws4_request"),
        ] {
            let p = parse_authorization_header(&h).expect("well formed");
            assert_eq!(p.algorithm, "AWS4-HMAC-SHA256");
            assert_eq!(p.credential.access_key_id, "AKID");
            assert_eq!(p.credential.scope.to_string(), "20150830/us-east-1/service/aws4_request");
            assert_eq!(p.signed_headers, ["host", "x-amz-date"]);
            assert_eq!(p.signature.expose(), SIG);
        }
    }

    #[test]
    fn names_every_missing_component() {
        let e = parse_authorization_header("AWS4-HMAC-SHA256 Foo=bar").expect_err("incomplete");
        assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
        assert_eq!(
            e.message,
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter."
        );
        let e = parse_authorization_header(&format!(
            "AWS4-HMAC-SHA256 Credential=A/2/r/s/aws4_request, Signature={SIG}"
        ))
        .expect_err("incomplete");
        assert_eq!(
            e.message,
            "Authorization header requires 'SignedHeaders' parameter."
        );
        assert!(!e.message.contains(SIG));
    }

    #[test]
    fn rejects_duplicate_components_and_bad_credentials() {
        let e = parse_authorization_header(&format!(
            "AWS4-HMAC-SHA256 Credential=A/2/r/s/aws4_request, SignedHeaders=host, Signature={SIG}, Signature={SIG}"
        ))
        .expect_err("duplicate");
        assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
        for cred in [
            "A/2/r/s",
            "A/2/r/s/aws4_request/x",
            "/2/r/s/aws4_request",
            "A//r/s/aws4_request",
        ] {
            let e = parse_credential(cred).expect_err(cred);
            assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
        }
    }

    #[test]
    fn presigned_query_absent_partial_and_complete() {
        assert_eq!(parse_presigned_query("").expect("ok"), None);
        assert_eq!(parse_presigned_query("a=b&X-Amz-Date=1").expect("ok"), None);
        let e = parse_presigned_query("X-Amz-Signature=abc").expect_err("partial");
        assert_eq!(e.kind, AuthErrorKind::IncompleteSignature);
        assert!(e.message.contains("'X-Amz-Algorithm'"));
        assert!(!e.message.contains("abc"));
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abc";
        let p = parse_presigned_query(q).expect("ok").expect("present");
        assert_eq!(p.credential.access_key_id, "AKID");
        assert_eq!(p.expires_secs, 3600);
        assert!(p.security_token.is_none());
        for bad in ["0", "604801", "-1", "1e3", ""] {
            let q2 = q.replace("X-Amz-Expires=3600", &format!("X-Amz-Expires={bad}"));
            let e = parse_presigned_query(&q2).expect_err(bad);
            assert_eq!(e.kind, AuthErrorKind::IncompleteSignature, "{bad}");
        }
    }
}
