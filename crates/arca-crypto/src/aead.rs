//! Low-level AES-256-GCM framing shared by the root key, KEK wrapping and envelopes: the
//! unambiguous AAD encoding, random nonces, and `nonce || ciphertext || tag` sealing that writes
//! straight into the caller's buffer (no intermediate plaintext copies left behind).

use aes_gcm::aead::AeadInPlace;
use aes_gcm::Aes256Gcm;
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
/// A sealed 32-byte key: nonce || ciphertext || tag.
pub(crate) const SEALED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

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
    cipher: &Aes256Gcm,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    match cipher.encrypt_in_place_detached(nonce.into(), aad, &mut out[start..]) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
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
    cipher: &Aes256Gcm,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (nonce, ct, tag) = split(sealed)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(ct.len()));
    buf.extend_from_slice(ct);
    cipher
        .decrypt_in_place_detached(nonce.into(), aad, buf.as_mut_slice(), tag.into())
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(buf)
}

/// Opens a sealed 32-byte key into `out` (which the caller owns and zeroizes).
pub(crate) fn open_key_into(
    cipher: &Aes256Gcm,
    aad: &[u8],
    sealed: &[u8],
    out: &mut [u8; KEY_LEN],
) -> Result<(), CryptoError> {
    if sealed.len() != SEALED_KEY_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct, tag) = split(sealed)?;
    out.copy_from_slice(ct);
    if cipher
        .decrypt_in_place_detached(nonce.into(), aad, &mut out[..], tag.into())
        .is_err()
    {
        out.zeroize();
        return Err(CryptoError::Decrypt);
    }
    Ok(())
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
}
