//! A secret value in memory (string or binary) and its sealed form. The kind travels
//! inside the ciphertext as one leading byte, so storage never learns it either.

use arca_types::secret::{SecretBlob, SecretString};
use arca_types::{ApiError, SecretBytes};
use zeroize::Zeroizing;

pub(crate) const MAX_VALUE_BYTES: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    String(SecretString),
    Binary(SecretBlob),
}

impl Value {
    /// Reads the SecretString/SecretBinary pair of a request: at most one of them, each
    /// within the model's 1–65,536 bytes.
    pub(crate) fn from_request(
        string: Option<SecretString>,
        binary: Option<SecretBlob>,
    ) -> Result<Option<Value>, ApiError> {
        match (string, binary) {
            (Some(_), Some(_)) => Err(ApiError::invalid_parameter(
                "You can't specify both a binary secret value and a string secret value in the same secret.",
            )),
            (Some(s), None) => {
                check_size("SecretString", s.expose().len())?;
                Ok(Some(Value::String(s)))
            }
            (None, Some(b)) => {
                check_size("SecretBinary", b.0.len())?;
                Ok(Some(Value::Binary(b)))
            }
            (None, None) => Ok(None),
        }
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

fn check_size(field: &str, n: usize) -> Result<(), ApiError> {
    if n == 0 || n > MAX_VALUE_BYTES {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid parameter: {field} must have length between 1 and {MAX_VALUE_BYTES}."
        )));
    }
    Ok(())
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
    fn size_limits() {
        let ok = "a".repeat(MAX_VALUE_BYTES);
        assert!(Value::from_request(Some(SecretString::new(ok)), None).is_ok());
        let big = "a".repeat(MAX_VALUE_BYTES + 1);
        assert!(Value::from_request(Some(SecretString::new(big)), None).is_err());
        assert!(Value::from_request(
            Some(SecretString::new("a".into())),
            Some(SecretBlob(SecretBytes::from_slice(b"b")))
        )
        .is_err());
    }
}
