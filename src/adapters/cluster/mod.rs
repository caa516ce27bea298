//! Cluster providers: one trait over each vendor's lifecycle API (OpenDAL-style: one folder per
//! vendor, a `Capability` per provider, pure request builders, one `parse_error` each).
//! Reads of nodes, workloads and logs never come through here: they come from Kubernetes.

pub mod ack;
pub mod rancher;
pub mod spec_rules;
pub mod tke;

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;

use zeroize::Zeroizing;

use super::{CallContext, CredentialKind, Result, VendorError};

/// The spec types are the API's own messages: they are what the user sent and what is stored.
pub use crate::proto::{ClusterSpec, NodePoolSpec};

/// What a provider can do. Calls outside it fail with `ErrorClass::Unsupported` before any
/// operation is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capability {
    pub create_cluster: bool,
    pub delete_cluster: bool,
    pub upgrade_cluster: bool,
    pub fetch_kubeconfig: bool,
    pub list_node_pools: bool,
    pub create_node_pool: bool,
    pub resize_node_pool: bool,
    pub delete_node_pool: bool,
    pub node_pool_autoscaling: bool,
    pub add_existing_instances: bool,
    pub remove_nodes: bool,
    /// Clusters that already exist at the vendor can be listed and imported (Rancher).
    pub list_vendor_clusters: bool,
    /// An existing cluster can be registered into the vendor (Rancher).
    pub register_cluster: bool,
    /// Cluster spec fields that can change after creation (field-mask paths).
    pub mutable_cluster_fields: Vec<&'static str>,
    /// Node pool spec fields that can change after creation (field-mask paths).
    pub mutable_node_pool_fields: Vec<&'static str>,
}

/// A cluster's lifecycle state as the vendor reports it, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorClusterState {
    Creating,
    Running,
    Updating,
    Deleting,
    Failed,
    /// Gone, or reported as deleted.
    Deleted,
    /// A state this adapter does not know; treated as "still in progress".
    Other,
}

/// A cluster as the vendor describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorCluster {
    /// The vendor's id, such as "c-abc" (ACK), "cls-abc" (TKE), "c-m-abc" (Rancher).
    pub id: String,
    pub name: String,
    pub state: VendorClusterState,
    /// The vendor's raw state string, for debugging.
    pub raw_state: String,
    pub kubernetes_version: String,
    pub region: String,
}

/// A node pool as the vendor describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VendorNodePool {
    pub id: String,
    pub name: String,
    /// The size the vendor is asked to keep.
    pub desired_size: i32,
    pub min_size: i32,
    pub max_size: i32,
    pub autoscaling: bool,
    /// Nodes the vendor reports in the pool now.
    pub current_size: i32,
    pub instance_types: Vec<String>,
    pub state: VendorNodePoolState,
    pub raw_state: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VendorNodePoolState {
    Creating,
    #[default]
    Running,
    Scaling,
    Updating,
    Deleting,
    Failed,
    Deleted,
}

/// What a mutating call left behind: ids to remember and, where the vendor has a task model,
/// the task to poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Submitted {
    /// The id of the object created or acted on (cluster id, node pool id).
    pub object_id: String,
    /// The vendor's task id (ACK); empty for vendors without tasks.
    pub task_id: String,
    pub request_id: String,
}

/// A vendor task's progress (ACK DescribeTaskInfo).
#[derive(Debug, Clone, PartialEq)]
pub enum TaskStatus {
    Running {
        /// Current stage, for the operation's description.
        stage: String,
        raw_state: String,
    },
    Succeeded,
    Failed(VendorError),
}

/// A change to a node pool's size or autoscaling bounds. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePoolResize {
    /// The target size (not a delta: adapters whose vendor takes a delta compute it from the
    /// pool's current desired size, so a repeated call does not add twice).
    pub desired_size: Option<i32>,
    pub min_size: Option<i32>,
    pub max_size: Option<i32>,
    pub autoscaling: Option<bool>,
}

/// An existing cluster registered into the vendor (Rancher): what to run in the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub vendor_cluster_id: String,
    pub manifest_url: String,
    pub command: String,
    pub insecure_command: String,
}

/// A spec field a provider refuses, with its path in the request (such as
/// "spec.tke.public_endpoint_cidrs[0]").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecViolation {
    pub field: String,
    pub reason: String,
}

/// A risk a spec chooses (such as a public API endpoint), shown on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecWarning {
    pub code: &'static str,
    pub message: String,
}

/// One vendor's cluster lifecycle API. Every method has a default that says the provider does
/// not support it; adapters override what their `Capability` claims.
#[async_trait]
pub trait ClusterProvider: Send + Sync {
    /// Provider id, as in `Cluster.provider`: "ack", "tke", "rancher".
    fn id(&self) -> &'static str;
    fn display_name(&self) -> &'static str;
    fn capability(&self) -> Capability;
    /// The credential kinds this provider signs its calls with; the credential vault refuses
    /// other kinds for it.
    fn credential_kinds(&self) -> &'static [CredentialKind];

    /// The provider's own rules for a cluster spec, checked before anything is recorded: that
    /// its provider settings are this provider's, what this provider requires (such as a
    /// region), and the risks the spec chooses (carried on the cluster as warnings).
    /// Vendor-neutral rules (display name, labels, node pool sizes) are the caller's.
    fn check_spec(
        &self,
        spec: &ClusterSpec,
    ) -> std::result::Result<Vec<SpecWarning>, SpecViolation>;

    /// The Kubernetes label the vendor puts on every node with its node pool id, so pools'
    /// readiness can be read from Kubernetes.
    fn node_pool_label(&self) -> Option<&'static str> {
        None
    }

    /// Finds a cluster by its name at the vendor. Used before every create attempt, so a create
    /// retried after a crash adopts the cluster the first attempt made instead of making another.
    async fn find_cluster_by_name(
        &self,
        _ctx: &CallContext,
        _name: &str,
    ) -> Result<Option<VendorCluster>> {
        Err(VendorError::unsupported(self.id(), "find_cluster_by_name"))
    }

    /// Lists the clusters the vendor has (Rancher import).
    async fn list_clusters(&self, _ctx: &CallContext) -> Result<Vec<VendorCluster>> {
        Err(VendorError::unsupported(self.id(), "list_clusters"))
    }

    /// Starts creating a cluster named `name` from `spec`. `Submitted.object_id` is the vendor's
    /// cluster id.
    async fn create_cluster(
        &self,
        _ctx: &CallContext,
        _name: &str,
        _spec: &ClusterSpec,
    ) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "create_cluster"))
    }

    /// Describes one cluster. A cluster that does not exist is `ErrorClass::VendorNotFound`.
    async fn get_cluster(&self, _ctx: &CallContext, _cluster_id: &str) -> Result<VendorCluster> {
        Err(VendorError::unsupported(self.id(), "get_cluster"))
    }

    /// The kubeconfig Flotilla will use to reach the cluster (YAML).
    async fn fetch_kubeconfig(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
    ) -> Result<Zeroizing<String>> {
        Err(VendorError::unsupported(self.id(), "fetch_kubeconfig"))
    }

    /// The kubeconfig for a cluster made from `spec`, which may ask for how the API server is
    /// reached (TKE opens a public endpoint only when its spec asks). Defaults to
    /// `fetch_kubeconfig`.
    async fn fetch_kubeconfig_for(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        _spec: &ClusterSpec,
    ) -> Result<Zeroizing<String>> {
        self.fetch_kubeconfig(ctx, cluster_id).await
    }

    async fn upgrade_cluster(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
        _kubernetes_version: &str,
    ) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "upgrade_cluster"))
    }

    /// Starts deleting a cluster. A cluster that is already gone is `VendorNotFound`.
    async fn delete_cluster(&self, _ctx: &CallContext, _cluster_id: &str) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "delete_cluster"))
    }

    /// Polls a task returned in `Submitted.task_id`.
    async fn get_task(&self, _ctx: &CallContext, _task_id: &str) -> Result<TaskStatus> {
        Err(VendorError::unsupported(self.id(), "get_task"))
    }

    async fn list_node_pools(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
    ) -> Result<Vec<VendorNodePool>> {
        Err(VendorError::unsupported(self.id(), "list_node_pools"))
    }

    /// Starts creating a node pool. `Submitted.object_id` is the vendor's pool id.
    async fn create_node_pool(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
        _spec: &NodePoolSpec,
    ) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "create_node_pool"))
    }

    async fn resize_node_pool(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
        _pool_id: &str,
        _change: &NodePoolResize,
    ) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "resize_node_pool"))
    }

    async fn delete_node_pool(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
        _pool_id: &str,
    ) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "delete_node_pool"))
    }

    /// Adds existing vendor instances to a pool.
    async fn add_instances(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
        _pool_id: &str,
        _instance_ids: &[String],
    ) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "add_instances"))
    }

    /// Removes nodes (by Kubernetes node name) from a pool. The caller has drained them.
    async fn remove_nodes(
        &self,
        _ctx: &CallContext,
        _cluster_id: &str,
        _pool_id: &str,
        _node_names: &[String],
        _release_instances: bool,
    ) -> Result<Submitted> {
        Err(VendorError::unsupported(self.id(), "remove_nodes"))
    }

    /// Registers an existing cluster into the vendor (Rancher).
    async fn register_cluster(&self, _ctx: &CallContext, _name: &str) -> Result<Registration> {
        Err(VendorError::unsupported(self.id(), "register_cluster"))
    }

    /// The vendor cluster a create adopts instead of making one, when the spec names a cluster
    /// the vendor already has. `None`: the create makes a new cluster.
    fn adopted_cluster(&self, _spec: &ClusterSpec) -> Option<String> {
        None
    }
}

/// The providers this server has, by id.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<&'static str, Arc<dyn ClusterProvider>>,
}

impl ProviderRegistry {
    pub fn with(mut self, provider: Arc<dyn ClusterProvider>) -> Self {
        self.providers.insert(provider.id(), provider);
        self
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn ClusterProvider>> {
        self.providers.get(id).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn ClusterProvider>> {
        self.providers.values()
    }
}
