//! arca-core (being written).
