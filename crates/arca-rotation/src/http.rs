//! The HTTP invoker: POSTs the event as JSON to the operator's endpoint, signed so the
//! receiver can tell it came from Arca. Signature: `X-Arca-Signature: v1=<hex>` where
//! `<hex>` is HMAC-SHA256(function secret, "<X-Arca-Timestamp>.<body>"); receivers must
//! compare in constant time and reject stale timestamps (e.g. older than 5 minutes).
//! A 2xx answer is success; anything else, or no answer within the timeout, is failure.

use crate::event::{InvokeError, Invoker, RotationEvent};
use arca_types::SecretBytes;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "x-arca-signature";
pub const TIMESTAMP_HEADER: &str = "x-arca-timestamp";
pub const FUNCTION_HEADER: &str = "x-arca-function";

pub struct HttpInvoker {
    function_arn: String,
    url: String,
    secret: SecretBytes,
    client: reqwest::Client,
}

impl HttpInvoker {
    pub fn new(
        function_arn: &str,
        url: &str,
        secret: SecretBytes,
        timeout: Duration,
    ) -> Result<Self, InvokeError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| InvokeError::new("cannot build the HTTP client"))?;
        Ok(Self {
            function_arn: function_arn.to_owned(),
            url: url.to_owned(),
            secret,
            client,
        })
    }
}

/// `v1=` + hex HMAC-SHA256 over "<timestamp>.<body>".
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver runs: true if `header` is the signature of (timestamp, body).
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    use subtle::ConstantTimeEq;
    signature(secret, timestamp, body)
        .as_bytes()
        .ct_eq(header.as_bytes())
        .into()
}

/// The header an event delivery carries its idempotency key in (the same on every
/// attempt of one delivery).
pub const DELIVERY_HEADER: &str = "x-arca-delivery-id";

impl HttpInvoker {
    /// POSTs `body`, signed, with `extra` headers; `what` names the call in errors.
    pub async fn post(
        &self,
        body: Vec<u8>,
        extra: &[(&str, &str)],
        what: &str,
    ) -> Result<(), InvokeError> {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let sig = signature(self.secret.expose(), &ts, &body);
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, &ts)
            .header(SIGNATURE_HEADER, sig)
            .header(FUNCTION_HEADER, &self.function_arn);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.body(body).send().await.map_err(|e| {
            let how = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            InvokeError::new(format!("{what} endpoint {how}"))
        })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            // The body is the function's own text and may carry anything: not recorded.
            Err(InvokeError::new(format!(
                "{what} endpoint answered HTTP {}",
                status.as_u16()
            )))
        }
    }
}

#[async_trait]
impl Invoker for HttpInvoker {
    async fn invoke(&self, event: &RotationEvent) -> Result<(), InvokeError> {
        let body =
            serde_json::to_vec(event).map_err(|_| InvokeError::new("cannot encode the event"))?;
        self.post(
            body,
            &[],
            &format!("{} step: rotation", event.step.as_str()),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_bind_timestamp_and_body() {
        let s = signature(b"k", "100", b"{}");
        assert!(s.starts_with("v1="));
        assert!(verify_signature(b"k", "100", b"{}", &s));
        assert!(!verify_signature(b"k", "101", b"{}", &s));
        assert!(!verify_signature(b"k", "100", b"{ }", &s));
        assert!(!verify_signature(b"other", "100", b"{}", &s));
    }
}
