//! arca-crypto owns every cryptographic operation on secret material at rest: the root key
//! (from a key file, the environment, or generated for dev mode), the named key-encryption keys
//! (KEKs) it wraps, the per-version envelope encryption of secret values, and keyed value digests.
//!
//! Data flow: the binary loads a [`RootKey`]; arca-core unwraps each persisted KEK with
//! [`RootKey::unwrap_kek`] into a shared [`Keyring`]; every secret version is sealed with
//! [`Keyring::seal`] into a self-describing envelope that the store persists as opaque bytes, and
//! opened with [`Keyring::open`] on read. Nothing here does storage or HTTP: callers persist the
//! blobs this crate returns.

mod aead;
mod digest;
mod error;
mod kek;
mod keyring;
mod root;

pub use digest::DigestKey;
pub use error::CryptoError;
pub use kek::Kek;
pub use keyring::Keyring;
pub use root::RootKey;
