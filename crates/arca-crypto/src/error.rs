//! The one error type of arca-crypto. Messages are safe to log and to show an operator: they
//! never carry key material, plaintext, or decoder details that could echo input bytes.

/// What went wrong in a cryptographic operation.
///
/// `Decrypt` deliberately does not say *which* check failed (wrong ARN, wrong version, tampered
/// byte, wrong KEK): an AEAD cannot tell them apart, and saying more would help an attacker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The root key file could not be created, read, or was unsafe (permissions) or invalid.
    #[error("root key file: {0}")]
    KeyFile(String),
    /// Root key material given directly (e.g. `ARCA_ROOT_KEY`) was not base64/hex of 32 bytes.
    #[error("invalid root key: {0}")]
    InvalidKey(String),
    /// The envelope or call names a KEK that is not in the keyring.
    #[error("unknown key: {0}")]
    UnknownKey(String),
    /// A key id that cannot be stored in an envelope (empty or longer than 65535 bytes).
    #[error("invalid key id: {0}")]
    InvalidKeyId(String),
    /// Authentication failed: wrong key, wrong ARN or version id, or tampered data.
    #[error("decryption failed")]
    Decrypt,
    /// The blob is not a well-formed envelope of a version this build understands.
    #[error("malformed ciphertext")]
    Malformed,
    /// The plaintext is beyond AES-GCM's per-message limit (about 64 GiB).
    #[error("plaintext too large to encrypt")]
    TooLarge,
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Random,
}
