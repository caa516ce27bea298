//! Container registries: the adapters against real OCI registries and simulators, and the registry RPCs.
//!
//! One test binary per group (tests/README.md): cargo links it once, not once per file.

mod acr;
mod harbor;
mod oci;
mod oci_rpc;
mod pull_secrets;
mod service;
mod tcr;
