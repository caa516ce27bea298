//! Use cases that combine the store, Kubernetes and the adapters, grouped by aggregate.
//! Knows nothing of gRPC.

pub mod access;
pub mod admin;
pub mod clusters;
mod error;
pub mod filter;
#[cfg(test)]
mod filter_docs;
pub mod key_page;
pub mod kube_errors;
pub mod lifecycle;
pub mod operations;
pub mod paging;
pub mod registries;
pub mod secrets;
pub mod streams;
pub mod validate;
pub mod vendor_errors;
pub mod workloads;

pub use error::{Error, Result};
