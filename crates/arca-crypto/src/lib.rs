//! arca-crypto (being written).
