//! Containers for secret material: zeroized on drop, redacted in Debug, compared in
//! constant time, readable only through one explicit accessor.

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Bytes that must never be printed or logged: secret values, data keys, signing keys.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }
    /// The one way to read the material. Callers must not copy it into logs or errors.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

impl From<String> for SecretBytes {
    fn from(s: String) -> Self {
        Self::new(s.into_bytes())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for SecretBytes {
    /// Constant time in the length of the shorter input; lengths are not secret here.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}
impl Eq for SecretBytes {}

/// A secret UTF-8 string (a SecretString value, a secret access key).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(SecretBytes);

impl SecretString {
    pub fn new(s: String) -> Self {
        Self(SecretBytes::new(s.into_bytes()))
    }
    pub fn expose(&self) -> &str {
        // Constructed only from `String`, so always valid UTF-8.
        std::str::from_utf8(self.0.expose()).unwrap_or_default()
    }
    pub fn into_bytes(self) -> SecretBytes {
        self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

/// SecretBinary: raw bytes in memory, base64 on the wire (awsJson blob).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBlob(pub SecretBytes);

impl fmt::Debug for SecretBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for SecretBlob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let s = Zeroizing::new(String::deserialize(d)?);
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(|v| SecretBlob(SecretBytes::new(v)))
            .map_err(|_| serde::de::Error::custom("invalid base64 in blob"))
    }
}

impl serde::Serialize for SecretBlob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        let enc = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.expose()));
        s.serialize_str(&enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_slice(b"canary-123");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let t = SecretString::new("canary-123".into());
        assert_eq!(format!("{t:?}"), "[redacted]");
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(SecretBytes::from_slice(b"a"), SecretBytes::from_slice(b"a"));
        assert_ne!(SecretBytes::from_slice(b"a"), SecretBytes::from_slice(b"b"));
        assert_ne!(
            SecretBytes::from_slice(b"a"),
            SecretBytes::from_slice(b"ab")
        );
    }

    #[test]
    fn blob_round_trips_base64() {
        let b: SecretBlob = serde_json::from_str("\"AAEC\"").expect("valid base64");
        assert_eq!(b.0.expose(), &[0, 1, 2]);
        assert_eq!(serde_json::to_string(&b).expect("serializes"), "\"AAEC\"");
        assert!(serde_json::from_str::<SecretBlob>("\"***\"").is_err());
    }
}
