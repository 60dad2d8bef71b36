//! awsJson1_1 bodies: decoding requests (errors become SerializationException with a
//! position, never an echo of the input, which may be secret) and rendering responses
//! and errors as `{"__type": ..., "Message": ...}` with the status from the error table.

use crate::server::Response;
use arca_types::ApiError;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::Full;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // SDKs always send at least "{}"; an empty body is read as an empty request.
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "a value has the wrong type or shape",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "the request body is not valid JSON"
            }
            serde_json::error::Category::Io => "the request body could not be read",
        };
        ApiError::serialization(what, e.line(), e.column())
    })
}

pub fn ok<T: Serialize>(value: &T, request_id: &str) -> Response {
    // Sized for a typical answer (a 1 KB secret and its metadata) so that serializing
    // seldom reallocates; larger answers grow the buffer as usual.
    let mut bytes = Vec::with_capacity(2048);
    match serde_json::to_writer(&mut bytes, value) {
        Ok(()) => response(StatusCode::OK, bytes, request_id),
        Err(_) => error(&ApiError::internal(), request_id),
    }
}

/// A response body already rendered (see `json`); a rendering failure is an internal error.
pub(crate) fn ok_rendered(
    rendered: Result<Bytes, serde_json::Error>,
    request_id: &str,
) -> Result<Response, ApiError> {
    let body = rendered.map_err(|_| ApiError::internal())?;
    Ok(response_bytes(StatusCode::OK, body, request_id))
}

pub fn error(e: &ApiError, request_id: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "__type")]
        kind: &'a str,
        // Capital M: every exception shape of the model has a member `Message`, which
        // botocore and the SDKs fill from this key (AWS sends it so).
        #[serde(rename = "Message")]
        message: &'a str,
    }
    let bytes = serde_json::to_vec(&Body {
        kind: e.code.aws_type(),
        message: &e.message,
    })
    .unwrap_or_else(|_| b"{}".to_vec());
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = response(status, bytes, request_id);
    if let Ok(v) = HeaderValue::from_str(e.code.aws_type()) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn response(status: StatusCode, bytes: Vec<u8>, request_id: &str) -> Response {
    // Answers may carry secret values (BatchGetSecretValue): wiped once sent.
    response_bytes(status, crate::json::wiped_on_drop(bytes), request_id)
}

fn response_bytes(status: StatusCode, body: Bytes, request_id: &str) -> Response {
    response_typed(status, body, CONTENT_TYPE, request_id)
}

/// A response of `content_type` with the request id header (the Query protocol's XML
/// answers use it too).
pub(crate) fn response_typed(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
    request_id: &str,
) -> Response {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::wire::GetSecretValueRequest;
    use arca_types::ErrorCode;

    #[test]
    fn decode_errors_do_not_echo_input() {
        let e = decode::<GetSecretValueRequest>(br#"{"SecretId": 12345678}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::Serialization);
        assert!(!e.message.contains("12345678"), "{}", e.message);
        let e = decode::<GetSecretValueRequest>(br#"{"SecretId": "canary-xyz"#).unwrap_err();
        assert!(!e.message.contains("canary"), "{}", e.message);
        assert!(decode::<GetSecretValueRequest>(b"").is_ok());
    }
}
