//! Tests that need only the server in process (`support::server::TestServer`), on SQLite.
//!
//! One test binary per group (tests/README.md): cargo links it once, not once per file.

mod auth;
mod auth_scope;
mod console;
mod credentials;
mod grpc;
mod health;
mod reflection;
