//! `AckProvider`: the `ClusterProvider` for Alibaba Cloud ACK. Maps Flotilla's specs onto ACK
//! request bodies and ACK's clusters, node pools and tasks back onto ours.

use std::collections::BTreeMap;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{
    CREDENTIAL_KINDS, DISPLAY_NAME, MAX_PAGES, NODE_POOL_LABEL, PAGE_SIZE, VENDOR, action,
    client::{self, Accepted, Stamp},
    default_endpoint, error,
    spec::{self, ResizePlan, cluster_body, node_pool_body, plan_resize},
};
use crate::adapters::{
    CallContext, CredentialKind,
    cluster::{
        Capability, ClusterProvider, ClusterSpec, NodePoolResize, NodePoolSpec, SpecViolation,
        SpecWarning, Submitted, TaskStatus, VendorCluster, VendorClusterState, VendorNodePool,
        VendorNodePoolState,
    },
    error::{ErrorClass, Result, VendorError},
    transport::{Idempotency, RawResponse, VendorHttp},
};

/// The ACK adapter. Cheap to clone; clones share the transport.
#[derive(Clone)]
pub struct AckProvider {
    http: VendorHttp,
    endpoint: Option<String>,
}

impl std::fmt::Debug for AckProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckProvider")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

fn invalid(operation: &'static str, message: impl Into<String>) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        "",
        message,
    )
}

impl AckProvider {
    /// `endpoint` overrides `https://cs.{region}.aliyuncs.com` (tests pass a simulator's URL).
    pub fn new(http: VendorHttp, endpoint: Option<String>) -> AckProvider {
        AckProvider { http, endpoint }
    }

    fn endpoint(&self, ctx: &CallContext, operation: &'static str) -> Result<String> {
        if let Some(endpoint) = &self.endpoint {
            return Ok(endpoint.clone());
        }
        let region = ctx.region.as_str();
        let valid = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(invalid(
                operation,
                format!("{region:?} is not an Alibaba Cloud region id"),
            ));
        }
        Ok(default_endpoint(region))
    }

    async fn call<B>(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        idempotency: Idempotency,
        build: B,
    ) -> Result<RawResponse>
    where
        B: Fn(&Stamp<'_>) -> Result<http::Request<Vec<u8>>> + Send + Sync,
    {
        let endpoint = self.endpoint(ctx, operation)?;
        client::send(&self.http, ctx, &endpoint, operation, idempotency, build).await
    }

    /// Sends a mutation and reads its `{cluster_id|nodepool_id, task_id, request_id}` answer.
    /// `object_id` is the object acted on; empty for creates, whose answer must name it.
    async fn accepted(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        idempotency: Idempotency,
        object_id: &str,
        build: impl Fn(&Stamp<'_>) -> Result<http::Request<Vec<u8>>> + Send + Sync,
    ) -> Result<Submitted> {
        let raw = self.call(ctx, operation, idempotency, build).await?;
        let accepted: Accepted = raw.json(VENDOR, operation)?;
        let done = submitted(accepted, object_id);
        if done.object_id.is_empty() {
            let message = "ACK accepted the request but did not name what it created";
            return Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                operation,
                "MalformedResponse",
                message,
            )
            .with_status(raw.status)
            .with_request_id(done.request_id));
        }
        Ok(done)
    }

    async fn raw_node_pools(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
    ) -> Result<Vec<client::NodePool>> {
        let op = action::DESCRIBE_CLUSTER_NODE_POOLS;
        let raw = self
            .call(ctx, op, Idempotency::Idempotent, |s| {
                client::describe_cluster_node_pools_request(s, cluster_id)
            })
            .await?;
        Ok(raw.json::<client::NodePoolList>(VENDOR, op)?.nodepools)
    }
}

fn submitted(accepted: Accepted, object_id: &str) -> Submitted {
    let object_id = [accepted.nodepool_id, accepted.cluster_id]
        .into_iter()
        .find(|id| !id.is_empty())
        .unwrap_or_else(|| object_id.to_string());
    Submitted {
        object_id,
        task_id: accepted.task_id,
        request_id: accepted.request_id,
    }
}

#[async_trait]
impl ClusterProvider for AckProvider {
    fn id(&self) -> &'static str {
        VENDOR
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn node_pool_label(&self) -> Option<&'static str> {
        Some(NODE_POOL_LABEL)
    }

    fn capability(&self) -> Capability {
        Capability {
            create_cluster: true,
            delete_cluster: true,
            upgrade_cluster: true,
            fetch_kubeconfig: true,
            list_node_pools: true,
            create_node_pool: true,
            resize_node_pool: true,
            delete_node_pool: true,
            node_pool_autoscaling: true,
            add_existing_instances: true,
            remove_nodes: true,
            list_vendor_clusters: false,
            register_cluster: false,
            mutable_cluster_fields: vec!["kubernetes_version"],
            mutable_node_pool_fields: vec!["desired_size", "min_size", "max_size", "autoscaling"],
        }
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        CREDENTIAL_KINDS
    }

    fn check_spec(
        &self,
        spec: &ClusterSpec,
    ) -> std::result::Result<Vec<SpecWarning>, SpecViolation> {
        spec::check(spec)
    }

    /// DescribeClustersV1 filters by name loosely, so only an exact match counts; clusters
    /// being deleted are not adopted.
    async fn find_cluster_by_name(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<Option<VendorCluster>> {
        let op = action::DESCRIBE_CLUSTERS_V1;
        if name.is_empty() {
            return Err(invalid(op, "a cluster name is needed to look one up"));
        }
        for page in 1..=MAX_PAGES {
            let raw = self
                .call(ctx, op, Idempotency::Idempotent, |s| {
                    client::describe_clusters_v1_request(s, Some(name), page, PAGE_SIZE)
                })
                .await?;
            let listed: client::ClusterPage = raw.json(VENDOR, op)?;
            let found = listed
                .clusters
                .iter()
                .filter(|c| c.name == name)
                .map(vendor_cluster)
                .find(|c| {
                    !matches!(
                        c.state,
                        VendorClusterState::Deleting | VendorClusterState::Deleted
                    )
                });
            if found.is_some() {
                return Ok(found);
            }
            let seen = i64::from(page) * i64::from(PAGE_SIZE);
            if listed.clusters.is_empty() || seen >= listed.page_info.total_count {
                break;
            }
        }
        Ok(None)
    }

    async fn create_cluster(
        &self,
        ctx: &CallContext,
        name: &str,
        spec: &ClusterSpec,
    ) -> Result<Submitted> {
        let body = cluster_body(name, &ctx.region, spec)?;
        self.accepted(
            ctx,
            action::CREATE_CLUSTER,
            Idempotency::NotIdempotent,
            "",
            |s| client::create_cluster_request(s, &body),
        )
        .await
    }

    async fn get_cluster(&self, ctx: &CallContext, cluster_id: &str) -> Result<VendorCluster> {
        let op = action::DESCRIBE_CLUSTER_DETAIL;
        let raw = self
            .call(ctx, op, Idempotency::Idempotent, |s| {
                client::describe_cluster_detail_request(s, cluster_id)
            })
            .await?;
        Ok(vendor_cluster(&raw.json(VENDOR, op)?))
    }

    async fn fetch_kubeconfig(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
    ) -> Result<Zeroizing<String>> {
        let op = action::DESCRIBE_CLUSTER_USER_KUBECONFIG;
        let raw = self
            .call(ctx, op, Idempotency::Idempotent, |s| {
                client::describe_cluster_user_kubeconfig_request(s, cluster_id)
            })
            .await?;
        let answer: client::UserKubeconfig = raw.json(VENDOR, op)?;
        let config = Zeroizing::new(answer.config);
        if config.trim().is_empty() {
            return Err(VendorError::new(
                ErrorClass::DependencyPending,
                VENDOR,
                op,
                "EmptyKubeconfig",
                format!("ACK returned no kubeconfig for cluster {cluster_id} yet"),
            ));
        }
        Ok(config)
    }

    async fn upgrade_cluster(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        kubernetes_version: &str,
    ) -> Result<Submitted> {
        let op = action::UPGRADE_CLUSTER;
        if kubernetes_version.is_empty() {
            return Err(invalid(op, "a target Kubernetes version is needed"));
        }
        self.accepted(ctx, op, Idempotency::NotIdempotent, cluster_id, |s| {
            client::upgrade_cluster_request(s, cluster_id, kubernetes_version)
        })
        .await
    }

    async fn delete_cluster(&self, ctx: &CallContext, cluster_id: &str) -> Result<Submitted> {
        let options = client::DeleteClusterOptions::default();
        self.accepted(
            ctx,
            action::DELETE_CLUSTER,
            Idempotency::Idempotent,
            cluster_id,
            |s| client::delete_cluster_request(s, cluster_id, &options),
        )
        .await
    }

    async fn get_task(&self, ctx: &CallContext, task_id: &str) -> Result<TaskStatus> {
        let op = action::DESCRIBE_TASK_INFO;
        let raw = self
            .call(ctx, op, Idempotency::Idempotent, |s| {
                client::describe_task_info_request(s, task_id)
            })
            .await?;
        Ok(task_status(raw.json(VENDOR, op)?))
    }

    async fn list_node_pools(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
    ) -> Result<Vec<VendorNodePool>> {
        Ok(self
            .raw_node_pools(ctx, cluster_id)
            .await?
            .iter()
            .map(vendor_node_pool)
            .collect())
    }

    async fn create_node_pool(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        spec: &NodePoolSpec,
    ) -> Result<Submitted> {
        let op = action::CREATE_CLUSTER_NODE_POOL;
        if spec.name.is_empty() {
            return Err(invalid(op, "a node pool needs a name"));
        }
        let body = node_pool_body(spec);
        self.accepted(ctx, op, Idempotency::NotIdempotent, "", |s| {
            client::create_cluster_node_pool_request(s, cluster_id, &body)
        })
        .await
    }

    /// Target-based: growth alone is ScaleClusterNodePool with the difference from the pool's
    /// current desired size (so a repeated call adds nothing); shrinking and any autoscaling
    /// change go through one ModifyClusterNodePool.
    async fn resize_node_pool(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
        change: &NodePoolResize,
    ) -> Result<Submitted> {
        let current = self
            .list_node_pools(ctx, cluster_id)
            .await?
            .into_iter()
            .find(|p| p.id == pool_id)
            .ok_or_else(|| {
                VendorError::new(
                    ErrorClass::VendorNotFound,
                    VENDOR,
                    action::DESCRIBE_CLUSTER_NODE_POOLS,
                    "ErrorNodePoolNotFound",
                    format!("node pool {pool_id} is not in cluster {cluster_id}"),
                )
            })?;
        match plan_resize(&current, change)? {
            ResizePlan::Nothing => Ok(Submitted {
                object_id: pool_id.to_string(),
                ..Submitted::default()
            }),
            ResizePlan::ScaleOut(count) => {
                self.accepted(
                    ctx,
                    action::SCALE_CLUSTER_NODE_POOL,
                    Idempotency::NotIdempotent,
                    pool_id,
                    |s| client::scale_cluster_node_pool_request(s, cluster_id, pool_id, count),
                )
                .await
            }
            ResizePlan::Modify(body) => {
                self.accepted(
                    ctx,
                    action::MODIFY_CLUSTER_NODE_POOL,
                    Idempotency::Idempotent,
                    pool_id,
                    |s| client::modify_cluster_node_pool_request(s, cluster_id, pool_id, &body),
                )
                .await
            }
        }
    }

    /// Deletes the pool with its nodes (`force=true`): the pool is what was asked to go.
    async fn delete_node_pool(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
    ) -> Result<Submitted> {
        self.accepted(
            ctx,
            action::DELETE_CLUSTER_NODEPOOL,
            Idempotency::Idempotent,
            pool_id,
            |s| client::delete_cluster_nodepool_request(s, cluster_id, pool_id, true),
        )
        .await
    }

    async fn add_instances(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
        instance_ids: &[String],
    ) -> Result<Submitted> {
        let op = action::ATTACH_INSTANCES_TO_NODE_POOL;
        if instance_ids.is_empty() {
            return Err(invalid(op, "no instances to attach"));
        }
        self.accepted(ctx, op, Idempotency::NotIdempotent, pool_id, |s| {
            client::attach_instances_to_node_pool_request(s, cluster_id, pool_id, instance_ids)
        })
        .await
    }

    /// The caller has drained the nodes, so ACK is not asked to drain them again.
    async fn remove_nodes(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
        node_names: &[String],
        release_instances: bool,
    ) -> Result<Submitted> {
        let op = action::REMOVE_NODE_POOL_NODES;
        if node_names.is_empty() {
            return Err(invalid(op, "no nodes to remove"));
        }
        self.accepted(ctx, op, Idempotency::Idempotent, pool_id, |s| {
            client::remove_node_pool_nodes_request(
                s,
                cluster_id,
                pool_id,
                node_names,
                release_instances,
                false,
            )
        })
        .await
    }
}

pub fn cluster_state(raw: &str) -> VendorClusterState {
    match raw {
        "initial" => VendorClusterState::Creating,
        "running" => VendorClusterState::Running,
        "updating" | "upgrading" | "scaling" | "removing" | "draining" => {
            VendorClusterState::Updating
        }
        "deleting" => VendorClusterState::Deleting,
        "deleted" => VendorClusterState::Deleted,
        "failed" | "delete_failed" => VendorClusterState::Failed,
        _ => VendorClusterState::Other,
    }
}

fn vendor_cluster(cluster: &client::Cluster) -> VendorCluster {
    VendorCluster {
        id: cluster.cluster_id.clone(),
        name: cluster.name.clone(),
        state: cluster_state(&cluster.state),
        raw_state: cluster.state.clone(),
        kubernetes_version: cluster.current_version.clone(),
        region: cluster.region_id.clone(),
    }
}

/// Node pool `status.state`: only `active` is documented; the rest is what ACK tooling shows.
/// An unknown state counts as a change in progress.
pub fn node_pool_state(raw: &str) -> VendorNodePoolState {
    match raw {
        "active" => VendorNodePoolState::Running,
        "initial" => VendorNodePoolState::Creating,
        "scaling" | "scaling_out" | "scaling_in" | "removing" | "removing_nodes" => {
            VendorNodePoolState::Scaling
        }
        "deleting" => VendorNodePoolState::Deleting,
        "deleted" => VendorNodePoolState::Deleted,
        "failed" => VendorNodePoolState::Failed,
        _ => VendorNodePoolState::Updating,
    }
}

fn vendor_node_pool(pool: &client::NodePool) -> VendorNodePool {
    let narrow = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    VendorNodePool {
        id: pool.nodepool_info.nodepool_id.clone(),
        name: pool.nodepool_info.name.clone(),
        desired_size: narrow(pool.scaling_group.desired_size),
        min_size: narrow(pool.auto_scaling.min_instances),
        max_size: narrow(pool.auto_scaling.max_instances),
        autoscaling: pool.auto_scaling.enable,
        current_size: narrow(pool.status.total_nodes),
        instance_types: pool.scaling_group.instance_types.clone(),
        state: node_pool_state(&pool.status.state),
        raw_state: pool.status.state.clone(),
        labels: pool
            .kubernetes_config
            .labels
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn task_status(task: client::TaskInfo) -> TaskStatus {
    match task.state.as_str() {
        "success" => TaskStatus::Succeeded,
        "fail" | "failed" => {
            let error = task.error.unwrap_or_default();
            let code = if error.code.is_empty() {
                "TaskFailed".to_string()
            } else {
                error.code
            };
            let message = if error.message.is_empty() {
                format!("ACK task {} failed", task.task_id)
            } else {
                error.message
            };
            let class = error::classify(&code, &message, 0);
            TaskStatus::Failed(VendorError::new(
                class,
                VENDOR,
                action::DESCRIBE_TASK_INFO,
                code,
                message,
            ))
        }
        _ => TaskStatus::Running {
            stage: task.current_stage,
            raw_state: task.state,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn states_map_onto_ours() {
        assert_eq!(cluster_state("initial"), VendorClusterState::Creating);
        assert_eq!(cluster_state("running"), VendorClusterState::Running);
        assert_eq!(cluster_state("upgrading"), VendorClusterState::Updating);
        assert_eq!(cluster_state("deleting"), VendorClusterState::Deleting);
        assert_eq!(cluster_state("delete_failed"), VendorClusterState::Failed);
        assert_eq!(cluster_state("waiting"), VendorClusterState::Other);
        assert_eq!(node_pool_state("active"), VendorNodePoolState::Running);
        assert_eq!(node_pool_state("scaling"), VendorNodePoolState::Scaling);
        assert_eq!(node_pool_state("mystery"), VendorNodePoolState::Updating);
    }

    #[test]
    fn tasks_map_onto_task_status() {
        let task = |json: Value| task_status(serde_json::from_value(json).unwrap());
        assert_eq!(
            task(json!({ "task_id": "T-1", "state": "running", "current_stage": "CreateMaster" })),
            TaskStatus::Running {
                stage: "CreateMaster".into(),
                raw_state: "running".into()
            }
        );
        assert_eq!(task(json!({ "state": "success" })), TaskStatus::Succeeded);
        let TaskStatus::Failed(err) = task(json!({
            "task_id": "T-1", "state": "fail",
            "error": { "code": "QuotaExceeded.Node", "message": "too many nodes" }
        })) else {
            panic!("not failed")
        };
        assert_eq!(err.class, ErrorClass::QuotaExceeded);
        assert_eq!(err.code, "QuotaExceeded.Node");
        let TaskStatus::Failed(bare) = task(json!({ "task_id": "T-2", "state": "fail" })) else {
            panic!("not failed")
        };
        assert_eq!(bare.class, ErrorClass::Unknown);
        assert_eq!(bare.message, "ACK task T-2 failed");
    }

    #[test]
    fn submitted_names_the_object_from_the_answer_or_the_call() {
        let answer = |json: Value| serde_json::from_value::<Accepted>(json).unwrap();
        let created = submitted(answer(json!({ "cluster_id": "c-1", "task_id": "T-1" })), "");
        assert_eq!(
            (created.object_id.as_str(), created.task_id.as_str()),
            ("c-1", "T-1")
        );
        let pool = submitted(
            answer(json!({ "nodepool_id": "np-1", "request_id": "R" })),
            "",
        );
        assert_eq!(
            (pool.object_id.as_str(), pool.request_id.as_str()),
            ("np-1", "R")
        );
        assert_eq!(
            submitted(answer(json!({ "task_id": "T-2" })), "np-9").object_id,
            "np-9"
        );
        assert_eq!(submitted(answer(json!({})), "").object_id, "");
    }

    #[test]
    fn default_endpoint_is_regional_and_checked() {
        let http = VendorHttp::new(Default::default(), None).unwrap();
        let provider = AckProvider::new(http, None);
        let ctx = |region: &str| CallContext {
            credentials: crate::adapters::Credentials::AccessKey {
                id: "AK".into(),
                secret: Zeroizing::new("SECRET".into()),
            },
            region: region.into(),
        };
        assert_eq!(
            provider.endpoint(&ctx("cn-hangzhou"), "X").unwrap(),
            "https://cs.cn-hangzhou.aliyuncs.com"
        );
        for bad in ["", "evil.com/x", "CN-HANGZHOU"] {
            let err = provider.endpoint(&ctx(bad), "X").unwrap_err();
            assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        }
        assert!(!format!("{provider:?}").contains("SECRET"));
    }
}
