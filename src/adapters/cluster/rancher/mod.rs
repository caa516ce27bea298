//! Rancher v3 (norman) API adapter (vendor-apis.md §6).
//!
//! - Auth: the API key in every request (`Authorization: Bearer token-xxxxx:<secret>`); there
//!   is no request signing (`sign.rs` only builds and hides that header).
//! - Clusters: list (following `pagination.next`), find by name, get, create (imported, or
//!   with an `rke2Config`/`k3sConfig` driver config), upgrade (the driver config's
//!   `kubernetesVersion`), delete, kubeconfig (`generateKubeconfig`), and registration of an
//!   existing cluster (an imported cluster plus a `clusterRegistrationToken`).
//! - No node pools: the v3 NodePool type was removed in Rancher v2.15 (commit 1f22fcaec5), so
//!   `Capability` claims none and the trait's `Unsupported` defaults answer.
//! - Errors: norman's `{"type":"error","status","code","message","fieldName"}`, see `error.rs`.

pub mod auth;
mod backend;
pub mod client;
pub mod error;

pub use backend::RancherProvider;

/// Provider id, as in `Cluster.provider`.
const VENDOR: &str = "rancher";
