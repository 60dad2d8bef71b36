//! arca-sigv4 (being written).
