//! Shared test support. Each test binary uses part of it.
pub mod db;
pub mod kube;
pub mod kubeconfigs;
pub mod lifecycle;
pub mod proxy;
pub mod raw;
pub mod resources;
pub mod server;
pub mod sim;
