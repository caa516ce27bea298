//! Use cases that combine the store, Kubernetes and the vendor adapters. Knows nothing of gRPC.

pub mod audit_events;
pub mod clusters;
pub mod clusters_access;
pub mod connector;
pub mod credentials;
mod error;
pub mod filter;
#[cfg(test)]
mod filter_docs;
pub mod import;
pub mod key_page;
pub mod kube_access;
pub mod kube_errors;
pub mod kube_policy;
pub mod lifecycle;
mod lifecycle_checks;
pub mod logs;
pub mod operation_worker;
pub mod operations;
pub mod paging;
pub mod resources;
pub mod rotation;
pub mod sealed_secrets;
pub mod status;
pub mod streams;
pub mod validate;
pub mod vendor_errors;
pub mod workload_logs;
pub mod workloads;

pub use error::{Error, Result};
