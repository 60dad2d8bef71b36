//! Low-level AES-256-GCM framing shared by the root key, KEK wrapping and envelopes: the
//! [`Cipher`] type, the unambiguous AAD encoding, random nonces, and `nonce || ciphertext || tag`
//! sealing that writes straight into the caller's buffer (no intermediate plaintext copies left
//! behind).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
/// A sealed 32-byte key: nonce || ciphertext || tag.
pub(crate) const SEALED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// An AES-256-GCM key, expanded once and reused.
///
/// AWS-LC (through aws-lc-rs) rather than RustCrypto's `aes-gcm`: it opens a 1 KB value with
/// its key setup in about half the time (measured 0.70 vs 1.33 µs here), and GetSecretValue
/// opens a data key and a value on every request. The expanded key schedule lives in memory
/// AWS-LC allocates and wipes when it is freed (`OPENSSL_free` cleanses), so dropping a
/// `Cipher` erases it; the raw key bytes stay with the caller, in its own zeroizing buffer.
pub(crate) struct Cipher(LessSafeKey);

impl Cipher {
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        // AWS-LC accepts every 32-byte AES-256 key; the only other failure is an allocation
        // failure, which aborts the process in Rust anyway. Not input-dependent.
        let key = UnboundKey::new(&AES_256_GCM, key).expect("AES-256-GCM accepts any 32-byte key");
        Self(LessSafeKey::new(key))
    }
}

/// Appends a canonical encoding of `fields` to `out`: each field as an 8-byte big-endian length
/// followed by its bytes. Length prefixes make the encoding injective, so ("ab","c") and
/// ("a","bc") authenticate differently; u64 lengths mean no input can overflow a prefix.
pub(crate) fn encode_fields(out: &mut Vec<u8>, fields: &[&[u8]]) {
    for f in fields {
        out.extend_from_slice(&(f.len() as u64).to_be_bytes());
        out.extend_from_slice(f);
    }
}

/// Size of `encode_fields(fields)`, to allocate once.
pub(crate) fn encoded_len(fields: &[&[u8]]) -> usize {
    fields.iter().map(|f| 8 + f.len()).sum()
}

/// A fresh 96-bit random nonce. Random nonces are safe here: data keys encrypt exactly one
/// message, and the root/KEK keys wrap far fewer than the 2^32 messages at which random 96-bit
/// nonces would start to risk a collision.
pub(crate) fn try_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    let mut n = [0u8; NONCE_LEN];
    try_fill_random(&mut n)?;
    Ok(n)
}

/// Fills `out` with OS randomness, reporting (rather than panicking on) an RNG failure.
pub(crate) fn try_fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    OsRng.try_fill_bytes(out).map_err(|_| CryptoError::Random)
}

/// Fills `out` with OS randomness. Panics only if the OS RNG is unavailable, which the infallible
/// constructors (`Kek::generate`, `RootKey::generate_ephemeral`) cannot report otherwise.
pub(crate) fn fill_random(out: &mut [u8]) {
    OsRng.fill_bytes(out);
}

/// Appends `nonce || AES-256-GCM(plaintext, aad) || tag` to `out`.
///
/// Capacity is reserved before the plaintext is copied in, so the buffer never reallocates while
/// it holds plaintext; on failure the copied plaintext is wiped and `out` restored.
pub(crate) fn seal_into(
    cipher: &Cipher,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let sealed = cipher.0.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key(*nonce),
        Aad::from(aad),
        &mut out[start..],
    );
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(tag.as_ref());
            Ok(())
        }
        Err(_) => {
            out[start..].zeroize();
            out.truncate(start - NONCE_LEN);
            Err(CryptoError::TooLarge)
        }
    }
}

/// `nonce || ciphertext || tag`, split.
type Parts<'a> = (&'a [u8; NONCE_LEN], &'a [u8], &'a [u8; TAG_LEN]);

fn split(sealed: &[u8]) -> Result<Parts<'_>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = <&[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
    let tag = <&[u8; TAG_LEN]>::try_from(tag).map_err(|_| CryptoError::Malformed)?;
    Ok((nonce, ct, tag))
}

/// Opens `nonce || ciphertext || tag` into a zeroizing buffer sized exactly once.
pub(crate) fn open_to_vec(
    cipher: &Cipher,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (nonce, ct, tag) = split(sealed)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(ct.len()));
    buf.extend_from_slice(ct);
    // On failure the buffer may hold unauthenticated plaintext: `Zeroizing` wipes it.
    open_in_place(cipher, nonce, aad, tag, buf.as_mut_slice())?;
    Ok(buf)
}

fn open_in_place(
    cipher: &Cipher,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    tag: &[u8; TAG_LEN],
    in_out: &mut [u8],
) -> Result<(), CryptoError> {
    cipher
        .0
        .open_in_place_separate_tag(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            tag,
            in_out,
        )
        .map(|_| ())
        .map_err(|_| CryptoError::Decrypt)
}

/// Opens a sealed 32-byte key into `out` (which the caller owns and zeroizes).
pub(crate) fn open_key_into(
    cipher: &Cipher,
    aad: &[u8],
    sealed: &[u8],
    out: &mut [u8; KEY_LEN],
) -> Result<(), CryptoError> {
    if sealed.len() != SEALED_KEY_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct, tag) = split(sealed)?;
    out.copy_from_slice(ct);
    open_in_place(cipher, nonce, aad, tag, &mut out[..]).inspect_err(|_| out.zeroize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(fields: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_fields(&mut v, fields);
        assert_eq!(v.len(), encoded_len(fields));
        v
    }

    #[test]
    fn field_encoding_is_unambiguous() {
        assert_ne!(enc(&[b"ab", b"c"]), enc(&[b"a", b"bc"]));
        assert_ne!(enc(&[b"", b"abc"]), enc(&[b"abc", b""]));
        assert_ne!(enc(&[b"abc"]), enc(&[b"abc", b""]));
    }

    #[test]
    fn seal_then_open_round_trips_and_any_change_fails() {
        let c = Cipher::new(&[7u8; KEY_LEN]);
        let nonce = try_nonce().unwrap();
        let mut sealed = Vec::new();
        seal_into(&c, &nonce, b"aad", b"a 1 KB value, or any", &mut sealed).unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 20 + TAG_LEN);
        assert_eq!(
            &*open_to_vec(&c, b"aad", &sealed).unwrap(),
            b"a 1 KB value, or any"
        );
        assert_eq!(
            open_to_vec(&c, b"aaD", &sealed).unwrap_err(),
            CryptoError::Decrypt
        );
        let other = Cipher::new(&[8u8; KEY_LEN]);
        assert_eq!(
            open_to_vec(&other, b"aad", &sealed).unwrap_err(),
            CryptoError::Decrypt
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open_to_vec(&c, b"aad", &bad).is_err(), "byte {i}");
        }
        assert_eq!(
            open_to_vec(&c, b"aad", &sealed[..27]).unwrap_err(),
            CryptoError::Malformed
        );
    }

    #[test]
    fn a_known_answer_from_the_gcm_specification() {
        // NIST GCM test case 14 (AES-256, zero key, zero IV, one zero block): proves the
        // backend is standard AES-256-GCM, so envelopes written by earlier builds still open.
        let c = Cipher::new(&[0u8; KEY_LEN]);
        let mut out = Vec::new();
        seal_into(&c, &[0u8; NONCE_LEN], b"", &[0u8; 16], &mut out).unwrap();
        assert_eq!(
            hex::encode(&out[NONCE_LEN..]),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
    }
}
