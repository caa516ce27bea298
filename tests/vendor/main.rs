//! The vendor adapters against their simulators (started in process) and the test control plane.
//!
//! One test binary per group (tests/README.md): cargo links it once, not once per file.

mod ack;
mod lifecycle;
mod operations_durability;
mod pools_and_rancher;
mod rancher;
mod request_ids;
mod tke;
