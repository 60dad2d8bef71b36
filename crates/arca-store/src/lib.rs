//! arca-store (being written).
