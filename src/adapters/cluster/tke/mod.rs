//! Tencent Cloud TKE (Tencent Kubernetes Engine, API version 2018-05-25): every call is
//! `POST /` with `X-TC-Action`, a JSON body and a TC3-HMAC-SHA256 signature (vendor-apis.md §2).
//!
//! - `sign`: the signature, pure, checked against the documented vectors.
//! - `client`: pure request builders (already signed), the response shapes and the one `send`.
//! - `spec`: Flotilla's specs as TKE request bodies.
//! - `backend`: [`TkeProvider`], the `ClusterProvider`.
//! - `endpoint`: how the API server is reached (the public endpoint only when the spec asks).
//! - `error`: `parse_error`. TKE reports errors in the body of HTTP 200 responses.
//!
//! TKE has no task ids: mutating calls return at once and the state is polled through
//! DescribeClusters / DescribeClusterNodePools. Node pools are not part of CreateCluster (it
//! takes raw CVM parameters); they are created with CreateClusterNodePool once the cluster runs.

mod backend;
pub mod client;
pub mod endpoint;
pub mod error;

pub mod spec;

pub use backend::{EXTRANET_NOT_ENABLED, TkeProvider};
pub use error::parse_error;
