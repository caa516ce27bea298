//! Alibaba Cloud ACK (Container Service for Kubernetes, CS API `2015-12-15`, ROA style). Requests
//! are signed with V3 `ACS3-HMAC-SHA256` (`adapters::signing::alibaba`, shared with ACR).
//!
//! - `config`: the adapter's settings (`ack_endpoint`).
//! - `client`: pure, signed request builders, the response shapes, and the one `send`.
//! - `spec`: the spec rules ACK checks before anything is recorded, Flotilla's specs as ACK
//!   request bodies, and resize planning (pure).
//! - `backend`: `AckProvider`, the `ClusterProvider`.
//! - `error`: `parse_error`, ACK's error bodies and throttling hints classified once.
//!
//! The constants below are ACK's in one place: its id, API version, endpoints, action names
//! and limits.
//!
//! ACK's CreateCluster has no idempotency token; the operation engine calls
//! `find_cluster_by_name` (DescribeClustersV1, exact name) before every create instead.
//! Mutations answer with a task id that `get_task` (DescribeTaskInfo) polls.

pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod spec;

pub use backend::AckProvider;
pub use config::Config;

use crate::adapters::CredentialKind;

/// Provider id, as in `Cluster.provider`; also the vendor in errors and rate-limit keys.
pub const VENDOR: &str = "ack";
pub const DISPLAY_NAME: &str = "Alibaba Cloud ACK";
/// ACK signs with an Alibaba Cloud access key.
pub const CREDENTIAL_KINDS: &[CredentialKind] = &[CredentialKind::AccessKey];
/// The CS API version every request names (`x-acs-version`).
pub const API_VERSION: &str = "2015-12-15";
/// Exactly what the SDK sends and signs for JSON bodies.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// The label ACK puts on every node with its node pool id.
pub const NODE_POOL_LABEL: &str = "alibabacloud.com/nodepool-id";
/// DescribeClustersV1 page size.
pub const PAGE_SIZE: u32 = 100;
/// Bound on DescribeClustersV1 pages walked by one name look-up (10,000 clusters).
pub const MAX_PAGES: u32 = 100;
/// ScaleClusterNodePool adds at most this many nodes per call (SDK comment).
pub const MAX_SCALE_OUT: i32 = 500;

/// The regional endpoint used unless `ack_endpoint` overrides it.
pub fn default_endpoint(region: &str) -> String {
    format!("https://cs.{region}.aliyuncs.com")
}

/// ACK's action names (`x-acs-action`), which are also the operation names in errors.
pub mod action {
    pub const CREATE_CLUSTER: &str = "CreateCluster";
    pub const DESCRIBE_CLUSTERS_V1: &str = "DescribeClustersV1";
    pub const DESCRIBE_CLUSTER_DETAIL: &str = "DescribeClusterDetail";
    pub const DESCRIBE_CLUSTER_USER_KUBECONFIG: &str = "DescribeClusterUserKubeconfig";
    pub const UPGRADE_CLUSTER: &str = "UpgradeCluster";
    pub const DELETE_CLUSTER: &str = "DeleteCluster";
    pub const CREATE_CLUSTER_NODE_POOL: &str = "CreateClusterNodePool";
    pub const DESCRIBE_CLUSTER_NODE_POOLS: &str = "DescribeClusterNodePools";
    pub const SCALE_CLUSTER_NODE_POOL: &str = "ScaleClusterNodePool";
    pub const MODIFY_CLUSTER_NODE_POOL: &str = "ModifyClusterNodePool";
    /// Spelled with a lower-case "pool", as ACK does.
    pub const DELETE_CLUSTER_NODEPOOL: &str = "DeleteClusterNodepool";
    pub const ATTACH_INSTANCES_TO_NODE_POOL: &str = "AttachInstancesToNodePool";
    pub const REMOVE_NODE_POOL_NODES: &str = "RemoveNodePoolNodes";
    pub const DESCRIBE_TASK_INFO: &str = "DescribeTaskInfo";
}
