//! Key-encryption keys: 32 random bytes that wrap per-version data keys. A KEK exists in
//! plaintext only in memory; at rest it is always wrapped under the root key.

use std::fmt;

use zeroize::Zeroizing;

use crate::aead::{fill_random, Cipher, KEY_LEN};

/// A key-encryption key. Boxed so moves do not leave copies of the bytes on the stack;
/// zeroized on drop; prints as `[redacted]`.
#[derive(Clone)]
pub struct Kek(Box<Zeroizing<[u8; KEY_LEN]>>);

impl Kek {
    /// A fresh KEK from the OS random number generator.
    pub fn generate() -> Self {
        let mut k = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        fill_random(&mut k[..]);
        Self(k)
    }

    /// Built only by `generate` and by `RootKey::unwrap_kek`.
    pub(crate) fn empty() -> Self {
        Self(Box::new(Zeroizing::new([0u8; KEY_LEN])))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }

    /// The expanded AES-GCM key schedule, computed once per KEK when it enters the keyring.
    pub(crate) fn cipher(&self) -> Cipher {
        Cipher::new(self.bytes())
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
