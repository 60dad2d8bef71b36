//! GetRandomPassword (being written).
