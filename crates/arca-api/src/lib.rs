//! arca-api (being written).
