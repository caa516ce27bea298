//! What the tests and the benchmarks share: a server in process, the test control plane, vendor
//! simulators, fixtures. A library crate of the workspace, so each item is compiled once and
//! nothing needs a blanket `dead_code` allow.
pub mod agent;
pub mod agent_setup;
pub mod db;
pub mod deploy_queries;
pub mod host;
pub mod kube;
pub mod kubeconfigs;
pub mod lifecycle;
pub mod metrics_text;
pub mod pod_fleet;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod registry;
pub mod registry_fake;
pub mod replica;
pub mod resources;
pub mod rows;
pub mod server;
pub mod sim;
pub mod unary;
pub mod watch_oracle;

/// The workspace's root directory (where `target/` is), wherever this crate is compiled from.
pub fn workspace_dir() -> &'static std::path::Path {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
