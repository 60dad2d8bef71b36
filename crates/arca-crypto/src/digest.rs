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
}
