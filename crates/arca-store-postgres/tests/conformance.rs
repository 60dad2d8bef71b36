//! Runs the backend-independent conformance suite against `PostgresStore`, each test in
//! a schema of its own (created for it, dropped after) on the PostgreSQL server named by
//! `ARCA_TEST_POSTGRES` (default: the local server the test command starts).

mod support;

arca_store::store_conformance_tests!(support::fresh_store);
