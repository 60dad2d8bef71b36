//! Keyed digests of secret values. arca-core stores one next to each version so that a retried
//! request (same ClientRequestToken) can be checked for "same value?" without decrypting the
//! stored version and without storing an unkeyed hash that could be brute-forced offline.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::aead::KEY_LEN;

type HmacSha256 = Hmac<Sha256>;

/// Domain label so a value digest can never collide with any other HMAC made with this key.
const LABEL: &[u8] = b"arca/v1/value-digest";
/// Domain label of rotation tokens (see [`DigestKey::rotation_token`]).
const ROTATION_LABEL: &[u8] = b"arca/v1/rotation-token";

/// An HMAC-SHA256 key derived from the root key. Zeroized on drop; prints as `[redacted]`.
pub struct DigestKey(Box<Zeroizing<[u8; KEY_LEN]>>);

impl DigestKey {
    pub(crate) fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        Self(Box::new(Zeroizing::new(*bytes)))
    }

    /// HMAC-SHA256 over the length-prefixed fields (label, arn, kind, value), where kind tells a
    /// SecretString from a SecretBinary with the same bytes. Fed to the MAC field by field, so the
    /// value is never copied. Compare digests with `subtle::ConstantTimeEq`, not `==`.
    pub fn value_digest(&self, arn: &str, is_binary: bool, plaintext: &[u8]) -> Vec<u8> {
        let kind: &[u8] = if is_binary { b"binary" } else { b"string" };
        // Not input-dependent: HMAC accepts keys of any length. A silent fallback (say, an empty
        // digest) would make every value look "equal", which is worse than this unreachable panic.
        let mut mac = HmacSha256::new_from_slice(&self.0[..]).expect("HMAC takes any key length");
        for field in [LABEL, arn.as_bytes(), kind, plaintext] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// The RotationToken of one rotation: HMAC-SHA256 over (label, arn, version id, start
    /// time), hex. Derived rather than stored, so no token is ever written to disk, and the
    /// same rotation always gets the same token (retries, restarts, other nodes with the
    /// same root key). Zeroized on drop; compare it in constant time.
    pub fn rotation_token(
        &self,
        arn: &str,
        version_id: &str,
        started_at: i64,
    ) -> Zeroizing<String> {
        let mut mac = HmacSha256::new_from_slice(&self.0[..]).expect("HMAC takes any key length");
        let started = started_at.to_be_bytes();
        for field in [
            ROTATION_LABEL,
            arn.as_bytes(),
            version_id.as_bytes(),
            &started[..],
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        let mut bytes: [u8; 32] = mac.finalize().into_bytes().into();
        let token = Zeroizing::new(hex::encode(bytes));
        zeroize::Zeroize::zeroize(&mut bytes);
        token
    }
}

impl fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigestKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use crate::RootKey;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";

    #[test]
    fn digest_is_stable_for_the_same_input() {
        let root = RootKey::from_base64(&hex::encode([3u8; 32])).expect("key");
        let d = root.digest_key();
        let a = d.value_digest(ARN, false, b"hunter2");
        assert_eq!(a.len(), 32);
        assert_eq!(a, d.value_digest(ARN, false, b"hunter2"));
        // Deriving the digest key again from the same root gives the same digests.
        assert_eq!(a, root.digest_key().value_digest(ARN, false, b"hunter2"));
    }

    #[test]
    fn digest_differs_across_arn_kind_value_and_root() {
        let root = RootKey::from_base64(&hex::encode([3u8; 32])).expect("key");
        let d = root.digest_key();
        let base = d.value_digest(ARN, false, b"hunter2");
        assert_ne!(base, d.value_digest(&format!("{ARN}x"), false, b"hunter2"));
        assert_ne!(base, d.value_digest(ARN, true, b"hunter2"));
        assert_ne!(base, d.value_digest(ARN, false, b"hunter3"));
        assert_ne!(base, d.value_digest(ARN, false, b""));
        // Bytes moved between the ARN and the value must not collide.
        assert_ne!(
            d.value_digest("ab", false, b"c"),
            d.value_digest("a", false, b"bc")
        );
        let other = RootKey::from_base64(&hex::encode([4u8; 32])).expect("key");
        assert_ne!(
            base,
            other.digest_key().value_digest(ARN, false, b"hunter2")
        );
    }

    #[test]
    fn rotation_tokens_are_stable_per_rotation_and_differ_otherwise() {
        let root = RootKey::from_base64(&hex::encode([3u8; 32])).expect("key");
        let d = root.digest_key();
        let t = d.rotation_token(ARN, "v1", 10);
        assert_eq!(t.len(), 64);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(*t, *root.digest_key().rotation_token(ARN, "v1", 10));
        assert_ne!(*t, *d.rotation_token(ARN, "v2", 10));
        assert_ne!(*t, *d.rotation_token(ARN, "v1", 11));
        assert_ne!(*t, *d.rotation_token(&format!("{ARN}x"), "v1", 10));
        let other = RootKey::from_base64(&hex::encode([4u8; 32])).expect("key");
        assert_ne!(*t, *other.digest_key().rotation_token(ARN, "v1", 10));
        // Not a value digest of the same fields.
        assert_ne!(
            t.as_bytes(),
            hex::encode(d.value_digest(ARN, false, b"v1")).as_bytes()
        );
    }
}
