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
    fn signature_equality_is_by_content() {
        let a = Signature::from_provided("ab");
        assert!(a.ct_eq(&Signature::from_provided("ab")));
        assert!(!a.ct_eq(&Signature::from_provided("ac")));
        assert!(!a.ct_eq(&Signature::from_provided("abc")));
    }
}
