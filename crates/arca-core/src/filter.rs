//! ListSecrets filters (being written).
