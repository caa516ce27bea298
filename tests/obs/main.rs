//! Observability: the metrics listener and its alert rules, and OTLP traces.
//!
//! One test binary per group (tests/README.md): cargo links it once, not once per file.

mod metrics;
mod traces;
