//! Types shared by every Arca crate: the AWS error table, wire DTOs, ARNs, times and
//! the zeroizing, redacting containers that carry secret material. Nothing here does I/O.

pub mod arn;
pub mod cloudtrail;
pub mod error;
pub mod eventbridge;
pub mod replication;
pub mod secret;
pub mod time;
pub mod wire;

pub use error::{ApiError, ErrorCode, Shown, Violation};
pub use secret::SecretBytes;
