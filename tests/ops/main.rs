//! Production operation: backups, probes and rolling restarts of real server processes.
//!
//! One test binary per group (tests/README.md): cargo links it once, not once per file.

mod backup;
mod probes;
mod rolling_restart;
