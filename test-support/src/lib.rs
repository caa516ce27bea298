//! What the tests and the benchmarks share: a server in process, the test control plane, vendor
//! simulators, fixtures. A library crate of the workspace, so each item is compiled once and
//! nothing needs a blanket `dead_code` allow.
pub mod db;
pub mod kube;
pub mod kubeconfigs;
pub mod lifecycle;
pub mod proxy;
pub mod raw;
pub mod registry_fake;
pub mod resources;
pub mod server;
pub mod sim;
pub mod watch_oracle;
