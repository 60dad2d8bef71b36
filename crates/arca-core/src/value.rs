//! A secret value in memory (string or binary) and its sealed form. The kind travels
//! inside the ciphertext as one leading byte, so storage never learns it either.

use arca_types::secret::{SecretBlob, SecretString};
use arca_types::{ApiError, SecretBytes};
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    String(SecretString),
    Binary(SecretBlob),
}

impl Value {
    /// Reads the SecretString/SecretBinary pair of a request: at most one of them (their
    /// sizes are the model's constraints, checked with the rest of the request).
    pub(crate) fn from_request(
        string: Option<SecretString>,
        binary: Option<SecretBlob>,
    ) -> Result<Option<Value>, ApiError> {
        match (string, binary) {
            (Some(_), Some(_)) => Err(ApiError::both_value_kinds()),
            (Some(s), None) => Ok(Some(Value::String(s))),
            (None, Some(b)) => Ok(Some(Value::Binary(b))),
            (None, None) => Ok(None),
        }
    }

    /// The byte length of a request's SecretString, for the model's size check.
    pub(crate) fn string_len(s: &Option<SecretString>) -> Option<usize> {
        s.as_ref().map(|s| s.expose().len())
    }

    /// The byte length of a request's SecretBinary, for the model's size check.
    pub(crate) fn binary_len(b: &Option<SecretBlob>) -> Option<usize> {
        b.as_ref().map(|b| b.0.len())
    }

    pub(crate) fn is_binary(&self) -> bool {
        matches!(self, Value::Binary(_))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Value::String(s) => s.expose().as_bytes(),
            Value::Binary(b) => b.0.expose(),
        }
    }

    /// The plaintext that gets sealed: a kind byte, then the value.
    pub(crate) fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.bytes().len() + 1));
        out.push(if self.is_binary() { 1 } else { 0 });
        out.extend_from_slice(self.bytes());
        out
    }

    pub(crate) fn from_plaintext(mut p: SecretBytes) -> Option<Value> {
        let kind = *p.expose().first()?;
        // In place: a GetSecretValue makes no second copy of the value.
        p.remove_prefix(1);
        match kind {
            0 => SecretString::from_utf8(p).ok().map(Value::String),
            1 => Some(Value::Binary(SecretBlob(p))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_round_trip_keeps_kind() {
        let v = Value::String(SecretString::new("héllo".into()));
        let back = Value::from_plaintext(SecretBytes::from_slice(&v.to_plaintext()));
        assert_eq!(back, Some(v));
        let b = Value::Binary(SecretBlob(SecretBytes::from_slice(&[0, 255])));
        let back = Value::from_plaintext(SecretBytes::from_slice(&b.to_plaintext()));
        assert_eq!(back, Some(b));
    }

    #[test]
    fn at_most_one_kind() {
        assert!(Value::from_request(
            Some(SecretString::new("a".into())),
            Some(SecretBlob(SecretBytes::from_slice(b"b")))
        )
        .is_err());
    }
}
