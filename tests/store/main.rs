//! The store against a database only: SQLite, and PostgreSQL (`FLOTILLA_TEST_POSTGRES_URL`).
//!
//! One test binary per group (tests/README.md): cargo links it once, not once per file.

mod cluster_leases;
mod operation_leases;
mod rows;
