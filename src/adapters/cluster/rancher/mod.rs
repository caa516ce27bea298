//! Rancher v3 (norman) API adapter (vendor-apis.md §6).
//!
//! - `config`: the adapter's settings (`rancher_url`, `rancher_ca_file`).
//! - `auth`: the API key in every request (`Authorization: Bearer token-xxxxx:<secret>`); there
//!   is no request signing, so `auth.rs` only builds and hides that header.
//! - `client`: pure request builders and the one `send`.
//! - `spec`: the spec rules Rancher checks before anything is recorded, and the create body a
//!   spec becomes (pure).
//! - `backend`: [`RancherProvider`], the `ClusterProvider`. Clusters: list (following
//!   `pagination.next`), find by name, get, create (imported, or with an
//!   `rke2Config`/`k3sConfig` driver config), upgrade (the driver config's
//!   `kubernetesVersion`), delete, kubeconfig (`generateKubeconfig`), and registration of an
//!   existing cluster (an imported cluster plus a `clusterRegistrationToken`).
//! - `error`: `parse_error` for norman's `{"type":"error","status","code","message","fieldName"}`.
//!
//! The constants below are Rancher's in one place: its id, API prefix, operation names and
//! limits.
//!
//! No node pools: the v3 NodePool type was removed in Rancher v2.15 (commit 1f22fcaec5), so
//! `Capability` claims none and the trait's `Unsupported` defaults answer.

use std::time::Duration;

use crate::adapters::CredentialKind;

pub mod auth;
mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod spec;

pub use backend::RancherProvider;
pub use config::Config;

/// Provider id, as in `Cluster.provider`; also the vendor in errors and rate-limit keys.
pub const VENDOR: &str = "rancher";
pub const DISPLAY_NAME: &str = "Rancher";
/// Rancher takes an API key (`token-xxxxx` and its secret).
pub const CREDENTIAL_KINDS: &[CredentialKind] = &[CredentialKind::ApiKey];
/// Where the API lives below the server URL.
pub const API_PREFIX: &str = "/v3";
/// norman's default page size.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;
/// Pages followed before a list gives up (10 million clusters at the default page size).
pub const MAX_PAGES: usize = 10_000;
/// How long `register_cluster` waits for Rancher's controller to fill in the token's commands.
pub const REGISTRATION_WAIT: Duration = Duration::from_secs(30);
pub const REGISTRATION_POLL_FIRST: Duration = Duration::from_millis(100);
pub const REGISTRATION_POLL_MAX: Duration = Duration::from_secs(2);
/// Driver configs that carry a Kubernetes version, in the order they are looked for.
pub const DRIVER_CONFIGS: [&str; 2] = ["rke2Config", "k3sConfig"];

/// The operation names Rancher calls are made and reported under (norman has no action names
/// for plain CRUD; these are ours, one per request kind).
pub mod action {
    pub const LIST_CLUSTERS: &str = "ListClusters";
    pub const GET_CLUSTER: &str = "GetCluster";
    pub const CREATE_CLUSTER: &str = "CreateCluster";
    pub const UPDATE_CLUSTER: &str = "UpdateCluster";
    pub const DELETE_CLUSTER: &str = "DeleteCluster";
    pub const GENERATE_KUBECONFIG: &str = "GenerateKubeconfig";
    pub const CREATE_CLUSTER_REGISTRATION_TOKEN: &str = "CreateClusterRegistrationToken";
    pub const LIST_CLUSTER_REGISTRATION_TOKENS: &str = "ListClusterRegistrationTokens";
}
