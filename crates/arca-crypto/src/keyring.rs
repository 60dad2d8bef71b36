//! The in-memory keyring of unwrapped KEKs and the envelope format of secret values: `seal` turns
//! a plaintext into a self-describing blob for the store, `open` turns it back. `open` runs on
//! every GetSecretValue, so KEK key schedules are expanded once at `insert`, the lock is held only
//! to unwrap the 32-byte data key, and the plaintext is decrypted in place in one allocation.
//!
//! Envelope layout, version 1 (all integers big-endian):
//!
//! ```text
//! offset   size  field
//! 0        1     format = 0x01
//! 1        2     K = length of the key id (1..=65535)
//! 3        K     key id of the KEK, UTF-8
//! 3+K      12    nonce for the data key
//! 15+K     32    data key, AES-256-GCM under the KEK
//! 47+K     16    tag for the data key
//! 63+K     12    nonce for the value
//! 75+K     n     value, AES-256-GCM under the data key
//! 75+K+n   16    tag for the value
//! ```
//!
//! AADs are length-prefixed field lists (see `aead::encode_fields`):
//! data key: ("arca/v1/envelope/data-key", key id, arn, version id);
//! value: ("arca/v1/envelope/value", arn, version id).
//! The key id is authenticated through the data-key AAD, and binding the ARN and version id to
//! both layers means neither the whole envelope nor its wrapped data key can be moved to another
//! secret or version. Each data key is fresh and encrypts exactly one value, so its random nonce
//! can never repeat under it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use arca_types::SecretBytes;
use zeroize::Zeroizing;

use crate::aead::{
    encode_fields, encoded_len, open_key_into, open_to_vec, seal_into, try_fill_random, try_nonce,
    Cipher, KEY_LEN, NONCE_LEN, SEALED_KEY_LEN, TAG_LEN,
};
use crate::{CryptoError, Kek};

const FORMAT_V1: u8 = 1;
const AAD_DATA_KEY: &[u8] = b"arca/v1/envelope/data-key";
const AAD_VALUE: &[u8] = b"arca/v1/envelope/value";
/// Fixed bytes of an envelope besides the key id and the value ciphertext.
const FIXED_LEN: usize = 1 + 2 + SEALED_KEY_LEN + NONCE_LEN + TAG_LEN;

/// The unwrapped KEKs by key id, as ready-to-use AES-GCM keys (whose schedules AWS-LC keeps
/// on its own heap and wipes when freed, so rehashing the map copies no key material).
/// Thread-safe; share it with `Arc<Keyring>`.
#[derive(Default)]
pub struct Keyring {
    keks: RwLock<HashMap<String, Cipher, ahash::RandomState>>,
}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a KEK, replacing any KEK with the same id. The raw KEK is dropped (and wiped) here;
    /// only its expanded key schedule is kept.
    pub fn insert(&self, key_id: &str, kek: Kek) {
        let cipher = kek.cipher();
        drop(kek);
        self.keks
            .write()
            // Writers only call `HashMap::insert`, which cannot leave the map half-updated, so a
            // panic elsewhere while holding the lock does not make the map unsafe to use.
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key_id.to_owned(), cipher);
    }

    pub fn contains(&self, key_id: &str) -> bool {
        self.read().contains_key(key_id)
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Cipher, ahash::RandomState>> {
        self.keks.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seals one secret version's value: a fresh random data key encrypts the value with
    /// (arn, version_id) as AAD, and the data key is wrapped under KEK `key_id`. Returns the
    /// envelope described in the module docs.
    pub fn seal(
        &self,
        key_id: &str,
        arn: &str,
        version_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let kid = key_id.as_bytes();
        let kid_len = match u16::try_from(kid.len()) {
            Ok(0) | Err(_) => {
                return Err(CryptoError::InvalidKeyId(format!(
                    "length {} (must be 1..=65535 bytes)",
                    kid.len()
                )))
            }
            Ok(n) => n,
        };
        let (arn_b, ver_b) = (arn.as_bytes(), version_id.as_bytes());
        // One buffer for both AADs; the second is shorter, so it never reallocates.
        let mut aad = Vec::with_capacity(encoded_len(&[AAD_DATA_KEY, kid, arn_b, ver_b]));
        encode_fields(&mut aad, &[AAD_DATA_KEY, kid, arn_b, ver_b]);

        let mut out = Vec::with_capacity(FIXED_LEN + kid.len() + plaintext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&kid_len.to_be_bytes());
        out.extend_from_slice(kid);

        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        {
            let keks = self.read();
            let kek = keks
                .get(key_id)
                .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
            try_fill_random(&mut dek[..])?;
            seal_into(kek, &try_nonce()?, &aad, &dek[..], &mut out)?;
        }
        let dek_cipher = Cipher::new(&dek);
        drop(dek);

        aad.clear();
        encode_fields(&mut aad, &[AAD_VALUE, arn_b, ver_b]);
        seal_into(&dek_cipher, &try_nonce()?, &aad, plaintext, &mut out)?;
        Ok(out)
    }

    /// Opens an envelope made by [`Keyring::seal`] for the same ARN and version id. A KEK that is
    /// not loaded gives [`CryptoError::UnknownKey`]; another ARN or version, another KEK under
    /// the same id, or any changed byte gives [`CryptoError::Decrypt`] (or `Malformed` if the
    /// framing itself no longer parses).
    pub fn open(
        &self,
        arn: &str,
        version_id: &str,
        envelope: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let env = Parsed::parse(envelope)?;
        let (kid, arn_b, ver_b) = (env.key_id.as_bytes(), arn.as_bytes(), version_id.as_bytes());
        let mut aad = Vec::with_capacity(encoded_len(&[AAD_DATA_KEY, kid, arn_b, ver_b]));
        encode_fields(&mut aad, &[AAD_DATA_KEY, kid, arn_b, ver_b]);

        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        {
            let keks = self.read();
            let kek = keks
                .get(env.key_id)
                .ok_or_else(|| CryptoError::UnknownKey(env.key_id.to_owned()))?;
            open_key_into(kek, &aad, env.wrapped_dek, &mut dek)?;
        }
        let dek_cipher = Cipher::new(&dek);
        drop(dek);

        aad.clear();
        encode_fields(&mut aad, &[AAD_VALUE, arn_b, ver_b]);
        let mut plain = open_to_vec(&dek_cipher, &aad, env.value)?;
        // Moves the buffer out (no copy); the emptied Zeroizing wrapper has nothing left to wipe.
        Ok(SecretBytes::new(std::mem::take(&mut *plain)))
    }

    /// The id of the KEK an envelope was sealed under (for re-encryption jobs and KEK deletion
    /// checks). Reads only the header; authenticity is established by `open`.
    pub fn key_id_of(envelope: &[u8]) -> Result<String, CryptoError> {
        Parsed::parse(envelope).map(|e| e.key_id.to_owned())
    }
}

impl fmt::Debug for Keyring {
    /// Key ids are not secret and help operators; the keys themselves never print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keks = self.read();
        let mut ids: Vec<&str> = keks.keys().map(String::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Keyring")
            .field("key_ids", &ids)
            .field("keys", &"[redacted]")
            .finish()
    }
}

/// Borrowed view of an envelope's fields; parsing never panics on any input.
struct Parsed<'a> {
    key_id: &'a str,
    /// nonce || wrapped data key || tag
    wrapped_dek: &'a [u8],
    /// nonce || ciphertext || tag
    value: &'a [u8],
}

impl<'a> Parsed<'a> {
    fn parse(envelope: &'a [u8]) -> Result<Self, CryptoError> {
        let (&format, rest) = envelope.split_first().ok_or(CryptoError::Malformed)?;
        if format != FORMAT_V1 {
            return Err(CryptoError::Malformed);
        }
        let (len, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(CryptoError::Malformed)?;
        let k = usize::from(u16::from_be_bytes(*len));
        if k == 0 || rest.len() < k + SEALED_KEY_LEN + NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (kid, rest) = rest.split_at(k);
        let key_id = std::str::from_utf8(kid).map_err(|_| CryptoError::Malformed)?;
        let (wrapped_dek, value) = rest.split_at(SEALED_KEY_LEN);
        Ok(Self {
            key_id,
            wrapped_dek,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";
    const VER: &str = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE";

    fn ring() -> Keyring {
        let r = Keyring::new();
        r.insert("aws/secretsmanager", Kek::generate());
        r.insert("customer-1", Kek::generate());
        r
    }

    #[test]
    fn round_trip() {
        let r = ring();
        for pt in [
            &b""[..],
            b"x",
            b"{\"password\":\"hunter2\"}",
            &[0u8; 70_000][..],
        ] {
            let env = r.seal("customer-1", ARN, VER, pt).expect("seal");
            assert_eq!(env.len(), FIXED_LEN + "customer-1".len() + pt.len());
            assert_eq!(r.open(ARN, VER, &env).expect("open").expose(), pt);
        }
    }

    #[test]
    fn envelope_names_its_key() {
        let r = ring();
        let env = r.seal("customer-1", ARN, VER, b"v").expect("seal");
        assert_eq!(Keyring::key_id_of(&env).expect("parse"), "customer-1");
        assert!(r.contains("customer-1"));
        assert!(!r.contains("customer-2"));
    }

    #[test]
    fn two_seals_of_same_plaintext_differ() {
        let r = ring();
        let a = r
            .seal("aws/secretsmanager", ARN, VER, b"same")
            .expect("seal");
        let b = r
            .seal("aws/secretsmanager", ARN, VER, b"same")
            .expect("seal");
        assert_ne!(a, b);
        // Not just the nonces: the wrapped data keys and the value ciphertexts differ too.
        let h = 3 + "aws/secretsmanager".len();
        assert_ne!(
            a[h + NONCE_LEN..h + SEALED_KEY_LEN],
            b[h + NONCE_LEN..h + SEALED_KEY_LEN]
        );
        assert_ne!(a[a.len() - 20..], b[b.len() - 20..]);
    }

    #[test]
    fn other_arn_or_version_fails() {
        let r = ring();
        let env = r.seal("customer-1", ARN, VER, b"v").expect("seal");
        assert_eq!(
            r.open(&format!("{ARN}x"), VER, &env),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            r.open(ARN, "other-version", &env),
            Err(CryptoError::Decrypt)
        );
        // Swapping ARN and version, or moving bytes between them, must not authenticate.
        assert_eq!(r.open(VER, ARN, &env), Err(CryptoError::Decrypt));
        let (a, b) = ("arn:x:ab", "c");
        let env = r.seal("customer-1", a, b, b"v").expect("seal");
        assert_eq!(r.open("arn:x:a", "bc", &env), Err(CryptoError::Decrypt));
        assert!(r.open(a, b, &env).is_ok());
    }

    #[test]
    fn unknown_key_is_reported_by_id() {
        let r = ring();
        assert_eq!(
            r.seal("nope", ARN, VER, b"v"),
            Err(CryptoError::UnknownKey("nope".into()))
        );
        let env = r.seal("customer-1", ARN, VER, b"v").expect("seal");
        let other = Keyring::new();
        assert_eq!(
            other.open(ARN, VER, &env),
            Err(CryptoError::UnknownKey("customer-1".into()))
        );
    }

    #[test]
    fn another_kek_under_the_same_id_fails() {
        let r = ring();
        let env = r.seal("customer-1", ARN, VER, b"v").expect("seal");
        let other = Keyring::new();
        other.insert("customer-1", Kek::generate());
        assert_eq!(other.open(ARN, VER, &env), Err(CryptoError::Decrypt));
    }

    #[test]
    fn changed_key_id_fails_even_if_that_key_exists() {
        // Same-length ids, both loaded: rewriting the header's key id must not open.
        let r = Keyring::new();
        let kek = Kek::generate();
        r.insert("key-a", kek.clone());
        r.insert("key-b", kek);
        let mut env = r.seal("key-a", ARN, VER, b"v").expect("seal");
        env[3 + 4] = b'b';
        assert_eq!(Keyring::key_id_of(&env).expect("parse"), "key-b");
        assert_eq!(r.open(ARN, VER, &env), Err(CryptoError::Decrypt));
    }

    #[test]
    fn every_tampered_byte_fails() {
        // Covers each field: format, key id length, key id, both nonces, wrapped data key,
        // both tags and the ciphertext.
        let r = ring();
        let env = r
            .seal("customer-1", ARN, VER, b"secret value")
            .expect("seal");
        for i in 0..env.len() {
            for flip in [0x01u8, 0x80] {
                let mut t = env.clone();
                t[i] ^= flip;
                assert!(r.open(ARN, VER, &t).is_err(), "byte {i} ^ {flip:#x} opened");
            }
        }
    }

    #[test]
    fn truncated_or_extended_envelopes_fail_without_panicking() {
        let r = ring();
        let env = r
            .seal("customer-1", ARN, VER, b"secret value")
            .expect("seal");
        for n in 0..env.len() {
            assert!(
                r.open(ARN, VER, &env[..n]).is_err(),
                "prefix of {n} bytes opened"
            );
            let _ = Keyring::key_id_of(&env[..n]);
        }
        let mut longer = env.clone();
        longer.push(0);
        assert!(r.open(ARN, VER, &longer).is_err());
        assert_eq!(r.open(ARN, VER, &[]), Err(CryptoError::Malformed));
        assert_eq!(
            Keyring::key_id_of(&[2, 0, 1, b'k']),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn key_id_length_is_checked() {
        let r = ring();
        assert!(matches!(
            r.seal("", ARN, VER, b"v"),
            Err(CryptoError::InvalidKeyId(_))
        ));
        let long = "k".repeat(70_000);
        assert!(matches!(
            r.seal(&long, ARN, VER, b"v"),
            Err(CryptoError::InvalidKeyId(_))
        ));
        let max = "k".repeat(65_535);
        r.insert(&max, Kek::generate());
        let env = r.seal(&max, ARN, VER, b"v").expect("seal");
        assert_eq!(r.open(ARN, VER, &env).expect("open").expose(), b"v");
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let r = Keyring::new();
        let kek = Kek::generate();
        let raw = *kek.bytes();
        r.insert("customer-1", kek);
        let dbg = format!("{r:?}");
        assert!(dbg.contains("customer-1"), "{dbg}");
        assert!(dbg.contains("[redacted]"), "{dbg}");
        assert!(!dbg.contains(&hex::encode(raw)));
        assert!(!dbg.to_lowercase().contains(&hex::encode(&raw[..4])));
    }

    #[test]
    fn keyring_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Keyring>();
        let r = std::sync::Arc::new(ring());
        let env = r.seal("customer-1", ARN, VER, b"v").expect("seal");
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (r, env) = (r.clone(), env.clone());
                std::thread::spawn(move || r.open(ARN, VER, &env).map(|v| v.expose().to_vec()))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("thread").expect("open"), b"v");
        }
    }
}
