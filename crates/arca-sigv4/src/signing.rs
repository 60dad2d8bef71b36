//! Tasks 2-4 of SigV4: the string to sign, the derived signing key (kDate -> kRegion ->
//! kService -> kSigning) and the signature. Every intermediate key lives in a zeroizing buffer;
//! the signature is a newtype compared in constant time and redacted in Debug.

use std::fmt;

use arca_types::secret::SecretString;
use arca_types::SecretBytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const TERMINATOR: &str = "aws4_request";

/// `date/region/service/aws4_request`: what a signing key is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD`
    pub date: String,
    pub region: String,
    pub service: String,
}

impl fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// The string to sign: algorithm, request time, scope and the hash of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &CredentialScope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// kSigning, derived from the secret access key for one scope. Secret: zeroized on drop,
/// redacted in Debug.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(SecretBytes);

impl SigningKey {
    /// The one accessor, for the HMAC below and for tests.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// HMAC-SHA256 into a zeroizing buffer. The `GenericArray` the hmac crate returns is wiped
/// once copied, so no derived key outlives its use on the stack we control.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    let mut out = mac.finalize().into_bytes();
    let v = Zeroizing::new(out.to_vec());
    out.as_mut_slice().zeroize();
    v
}

/// Derives kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
pub fn derive_signing_key(
    secret_access_key: &SecretString,
    date: &str,
    region: &str,
    service: &str,
) -> SigningKey {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.expose().len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret_access_key.expose().as_bytes());
    let k_date = hmac_sha256(&k_secret, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, TERMINATOR.as_bytes());
    SigningKey(SecretBytes::from_slice(&k_signing))
}

/// A request signature (64 lowercase hex characters). Not a long-lived secret, but it is a
/// bearer proof for the request within its validity window, so it is treated like one: never
/// printed, compared only in constant time.
#[derive(Clone)]
pub struct Signature(Zeroizing<String>);

impl Signature {
    /// Wraps a signature received from a client.
    pub fn from_provided(hex: &str) -> Self {
        Self(Zeroizing::new(hex.to_string()))
    }
    /// The one accessor: for putting the signature into a request being signed.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison (in the length of the shorter input; lengths are public).
    pub fn ct_eq(&self, other: &Signature) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl PartialEq for Signature {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}
impl Eq for Signature {}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature([redacted])")
    }
}

/// signature = hex(HMAC(kSigning, string_to_sign)).
pub fn compute_signature(signing_key: &SigningKey, string_to_sign: &str) -> Signature {
    let mac = hmac_sha256(signing_key.expose(), string_to_sign.as_bytes());
    Signature(Zeroizing::new(hex::encode(&*mac)))
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of a 32-byte digest into `out`, by table: the verify path's replacement for
/// `hex::encode`, which builds a `String` one char at a time. Writing into the caller's
/// buffer lets a signature be hexed straight into a zeroizing one.
pub(crate) fn hex_into(bytes: &[u8; 32], out: &mut [u8; 64]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0x0f)];
    }
}

/// `hex_into` for digests that are not secret (body and canonical request hashes).
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0; 64];
    hex_into(bytes, &mut out);
    out
}

/// The hex signature of a request, the verify path's `compute_signature(key,
/// &string_to_sign(amz_date, scope, canonical_request))`: the string to sign is fed to the
/// HMAC piece by piece rather than built, and the result stays on the stack, zeroized on
/// drop like every other derived value here.
pub(crate) fn signature_hex(
    signing_key: &[u8],
    amz_date: &str,
    date: &str,
    region: &str,
    service: &str,
    canonical_request_hash_hex: &[u8; 64],
) -> Zeroizing<[u8; 64]> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(signing_key).unwrap_or_else(|_| unreachable!());
    for piece in [
        ALGORITHM.as_bytes(),
        b"\n",
        amz_date.as_bytes(),
        b"\n",
        date.as_bytes(),
        b"/",
        region.as_bytes(),
        b"/",
        service.as_bytes(),
        b"/",
        TERMINATOR.as_bytes(),
        b"\n",
        canonical_request_hash_hex,
    ] {
        mac.update(piece);
    }
    let mut tag = mac.finalize().into_bytes();
    let mut out = Zeroizing::new([0; 64]);
    hex_into(tag.as_ref(), &mut out);
    tag.as_mut_slice().zeroize();
    out
}

/// Constant-time equality of two byte strings, constant in their length (lengths are public:
/// unequal lengths are unequal at once, as `subtle`'s slice comparison does). Compares eight
/// bytes per `subtle` step rather than one: `subtle` puts an optimization barrier on every
/// element, and one per byte of a signature and of a secret showed up in profiles.
pub(crate) fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut eq = wa.remainder().ct_eq(wb.remainder());
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().unwrap_or_default());
    for (x, y) in wa.zip(wb) {
        eq &= word(x).ct_eq(&word(y));
    }
    eq.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example from AWS's documentation ("Examples of how to derive a signing key"):
    /// secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
    #[test]
    fn signing_key_matches_aws_documentation_example() {
        let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
        let key = derive_signing_key(&secret, "20120215", "us-east-1", "iam");
        assert_eq!(
            hex::encode(key.expose()),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn ct_eq_bytes_is_equality() {
        let a: Vec<u8> = (0..70).collect();
        for n in 0..a.len() {
            assert!(ct_eq_bytes(&a[..n], &a[..n]), "{n}");
            assert!(!ct_eq_bytes(&a[..n], &a[..n + 1]), "{n}");
            for i in 0..n {
                let mut b = a[..n].to_vec();
                b[i] ^= 0x01;
                assert!(!ct_eq_bytes(&a[..n], &b), "{n} {i}");
            }
        }
    }

    #[test]
    fn hex_matches_the_hex_crate() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        assert_eq!(&hex32(&bytes)[..], hex::encode(bytes).as_bytes());
        assert_eq!(&hex32(&[0xff; 32])[..], "ff".repeat(32).as_bytes());
    }

    #[test]
    fn signature_hex_is_compute_signature_of_string_to_sign() {
        let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
        let key = derive_signing_key(&secret, "20150830", "us-east-1", "secretsmanager");
        let scope = CredentialScope {
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "secretsmanager".into(),
        };
        let creq = "POST\n/\n\nhost:example.com\n\nhost\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let creq_hash = hex32(&Sha256::digest(creq.as_bytes()).into());
        let sig = signature_hex(
            key.expose(),
            "20150830T123600Z",
            "20150830",
            "us-east-1",
            "secretsmanager",
            &creq_hash,
        );
        let want = compute_signature(&key, &string_to_sign("20150830T123600Z", &scope, creq));
        assert_eq!(&sig[..], want.expose().as_bytes());
    }

    #[test]
    fn signature_equality_is_by_content() {
        let a = Signature::from_provided("ab");
        assert!(a.ct_eq(&Signature::from_provided("ab")));
        assert!(!a.ct_eq(&Signature::from_provided("ac")));
        assert!(!a.ct_eq(&Signature::from_provided("abc")));
    }
}
