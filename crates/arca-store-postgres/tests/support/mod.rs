//! The shared test helpers (the crate's `testing` feature).
#![allow(unused_imports)]

pub use arca_store_postgres::testing::*;
