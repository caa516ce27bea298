//! Alibaba Cloud ACK (Container Service for Kubernetes, CS API `2015-12-15`, ROA style).
//!
//! - `sign`: V3 `ACS3-HMAC-SHA256` (what the adapter uses), plus the legacy ROA and RPC V2
//!   HMAC-SHA1 signers as far as their published vectors go.
//! - `client`: pure, signed request builders, the response shapes, and the one `send`.
//! - `backend`: `AckProvider`, the `ClusterProvider`.
//! - `spec`: Flotilla's specs as ACK request bodies, and resize planning (pure).
//! - `error`: `parse_error`, ACK's error bodies and throttling hints classified once.
//!
//! ACK's CreateCluster has no idempotency token; the operation engine calls
//! `find_cluster_by_name` (DescribeClustersV1, exact name) before every create instead.
//! Mutations answer with a task id that `get_task` (DescribeTaskInfo) polls.

pub mod backend;
pub mod client;
pub mod error;

pub mod spec;

pub use backend::AckProvider;
