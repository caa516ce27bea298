//! Tests that run the real `flotilla` binary as a process.
//!
//! One test binary per group (tests/README.md): cargo links it once, not once per file.

mod auth_abuse;
mod client_env;
mod log_format;
