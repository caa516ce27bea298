//! Use cases that combine the store, Kubernetes and the vendor adapters. Knows nothing of gRPC.

pub mod clusters;
mod error;
pub mod filter;
pub mod paging;

pub use error::{Error, Result};
