//! Per-cluster Kubernetes access: kube-rs lives only here.

pub mod access;
pub mod cache;
pub mod connect;
pub mod expiry;
pub mod kubeconfig;

pub use access::{ClusterAccess, Credentials};
pub use cache::ClientCache;
pub use connect::{ClusterError, Probe, Timeouts};
pub use kubeconfig::{FileReferences, KubeconfigError};
