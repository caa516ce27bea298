//! Tencent Cloud TKE (Tencent Kubernetes Engine, API version 2018-05-25): every call is
//! `POST /` with `X-TC-Action`, a JSON body and a TC3-HMAC-SHA256 signature
//! (`adapters::signing::tencent`, shared with TCR; vendor-apis.md §2).
//!
//! - `config`: the adapter's settings (`tke_endpoint`).
//! - `client`: pure request builders (already signed), the response shapes and the one `send`.
//! - `spec`: the spec rules TKE checks before anything is recorded, and Flotilla's specs as TKE
//!   request bodies (pure).
//! - `backend`: [`TkeProvider`], the `ClusterProvider`.
//! - `endpoint`: how the API server is reached (the public endpoint only when the spec asks).
//! - `error`: `parse_error`. TKE reports errors in the body of HTTP 200 responses.
//!
//! The constants below are TKE's in one place: its id, API version, endpoint, action names and
//! limits.
//!
//! TKE has no task ids: mutating calls return at once and the state is polled through
//! DescribeClusters / DescribeClusterNodePools. Node pools are not part of CreateCluster (it
//! takes raw CVM parameters); they are created with CreateClusterNodePool once the cluster runs.

mod backend;
pub mod client;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod spec;

pub use backend::TkeProvider;
pub use config::Config;
pub use error::parse_error;

use crate::adapters::CredentialKind;

/// Provider id, as in `Cluster.provider`; also the vendor in errors and rate-limit keys.
pub const VENDOR: &str = "tke";
pub const DISPLAY_NAME: &str = "Tencent Cloud TKE";
/// TKE signs with a Tencent Cloud access key (SecretId and SecretKey).
pub const CREDENTIAL_KINDS: &[CredentialKind] = &[CredentialKind::AccessKey];
/// The API version every request names (`X-TC-Version`).
pub const VERSION: &str = "2018-05-25";
/// The product in the credential scope. Not taken from the host: an endpoint override such as
/// `127.0.0.1:PORT` has no product label.
pub const SERVICE: &str = "tke";
/// The endpoint used unless `tke_endpoint` overrides it (the region goes in `X-TC-Region`).
pub const DEFAULT_ENDPOINT: &str = "https://tke.tencentcloudapi.com";
/// Sent and signed as is.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// TKE's page size limit.
pub const PAGE_LIMIT: i64 = 100;
/// The label TKE puts on every node with its node pool id.
pub const NODE_POOL_LABEL: &str = "tke.cloud.tencent.com/nodepool-id";
/// The warning code a cluster with a public API endpoint carries.
pub const PUBLIC_ENDPOINT_WARNING: &str = "PUBLIC_ENDPOINT";
/// The error code TKE is assumed to answer DescribeClusterKubeconfig(IsExtranet=true) with while
/// the cluster has no public endpoint. UNCONFIRMED: the SDK lists no such code, so the check
/// also accepts other codes and messages that say the same.
pub const EXTRANET_NOT_ENABLED: &str = "FailedOperation.ClusterNotEnableExtranet";

/// TKE's action names (`X-TC-Action`), which are also the operation names in errors.
pub mod action {
    pub const CREATE_CLUSTER: &str = "CreateCluster";
    pub const DESCRIBE_CLUSTERS: &str = "DescribeClusters";
    pub const UPDATE_CLUSTER_VERSION: &str = "UpdateClusterVersion";
    pub const DELETE_CLUSTER: &str = "DeleteCluster";
    pub const DESCRIBE_CLUSTER_KUBECONFIG: &str = "DescribeClusterKubeconfig";
    pub const CREATE_CLUSTER_ENDPOINT: &str = "CreateClusterEndpoint";
    pub const DESCRIBE_CLUSTER_ENDPOINT_STATUS: &str = "DescribeClusterEndpointStatus";
    pub const MODIFY_CLUSTER_ENDPOINT_SP: &str = "ModifyClusterEndpointSP";
    pub const CREATE_CLUSTER_NODE_POOL: &str = "CreateClusterNodePool";
    pub const DESCRIBE_CLUSTER_NODE_POOLS: &str = "DescribeClusterNodePools";
    pub const MODIFY_CLUSTER_NODE_POOL: &str = "ModifyClusterNodePool";
    pub const MODIFY_NODE_POOL_DESIRED_CAPACITY_ABOUT_ASG: &str =
        "ModifyNodePoolDesiredCapacityAboutAsg";
    pub const DELETE_CLUSTER_NODE_POOL: &str = "DeleteClusterNodePool";
    pub const DESCRIBE_CLUSTER_INSTANCES: &str = "DescribeClusterInstances";
    pub const ADD_EXISTED_INSTANCES: &str = "AddExistedInstances";
    pub const DELETE_CLUSTER_INSTANCES: &str = "DeleteClusterInstances";
}
