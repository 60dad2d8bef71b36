//! Containers for secret material: zeroized on drop, redacted in Debug, compared in
//! constant time, readable only through one explicit accessor.

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Zeroes a vector's whole allocation (its bytes and its spare capacity), then empties it.
///
/// `zeroize`'s own `Vec<u8>` impl writes one volatile byte at a time (measured: about 2% of
/// a GetSecretValue's CPU for its two 1 KB buffers); its slice impl fills the bytes and then
/// hides them behind an optimization barrier, which keeps the writes just as surely and runs
/// at memset speed.
pub fn wipe_vec(v: &mut Vec<u8>) {
    zero_whole_allocation(v);
    v.clear();
}

/// Leaves `v` at full capacity, every byte zero. Never reallocates (the new length is the
/// capacity), so no copy of the old contents is left behind.
fn zero_whole_allocation(v: &mut Vec<u8>) {
    v.resize(v.capacity(), 0);
    v.as_mut_slice().zeroize();
}

/// Bytes that must never be printed or logged: secret values, data keys, signing keys.
#[derive(Clone, Default)]
pub struct SecretBytes(Vec<u8>);

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe_vec(&mut self.0);
    }
}

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
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
    /// Drops the first `n` bytes in place: the rest moves down within the same allocation
    /// (no second copy of the material is made; the stale tail is wiped with the rest on drop).
    pub fn remove_prefix(&mut self, n: usize) {
        self.0.drain(..n.min(self.0.len()));
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

/// A secret UTF-8 string (a SecretString value, a secret access key). Held as a `String`,
/// so reading it needs no UTF-8 check (it runs on every GetSecretValue and every signature
/// check); wiped on drop like `SecretBytes`.
#[derive(Clone, Default)]
pub struct SecretString(String);

impl Drop for SecretString {
    fn drop(&mut self) {
        // Taking the buffer out as bytes moves it (no copy) so it can be wiped.
        wipe_vec(&mut std::mem::take(&mut self.0).into_bytes());
    }
}

impl SecretString {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn into_bytes(mut self) -> SecretBytes {
        SecretBytes::new(std::mem::take(&mut self.0).into_bytes())
    }
    /// The bytes as a string if they are UTF-8, without copying them; else the bytes back.
    pub fn from_utf8(mut bytes: SecretBytes) -> Result<Self, SecretBytes> {
        match String::from_utf8(std::mem::take(&mut bytes.0)) {
            Ok(s) => Ok(Self(s)),
            Err(e) => Err(SecretBytes::new(e.into_bytes())),
        }
    }
}

impl PartialEq for SecretString {
    /// Constant time, as for `SecretBytes`.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
impl Eq for SecretString {}

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
    fn wiping_zeroes_the_whole_allocation() {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&[0xAA; 40]);
        let (cap, ptr) = (v.capacity(), v.as_ptr());
        zero_whole_allocation(&mut v);
        assert_eq!(v.as_ptr(), ptr, "no reallocation");
        assert_eq!(v.len(), cap);
        assert!(v.iter().all(|&b| b == 0));
        wipe_vec(&mut v);
        assert!(v.is_empty());
        assert_eq!(v.capacity(), cap);
    }

    #[test]
    fn prefixes_come_off_in_place_and_strings_must_be_utf8() {
        let mut b = SecretBytes::from_slice(b"\x00value");
        let ptr = b.expose().as_ptr();
        b.remove_prefix(1);
        assert_eq!(b.expose(), b"value");
        assert_eq!(b.expose().as_ptr(), ptr);
        let s = SecretString::from_utf8(b).expect("ASCII is UTF-8");
        assert_eq!(s.expose(), "value");
        assert!(SecretString::from_utf8(SecretBytes::from_slice(&[0xff, 0xfe])).is_err());
        let mut short = SecretBytes::from_slice(b"a");
        short.remove_prefix(5);
        assert!(short.is_empty());
    }

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
