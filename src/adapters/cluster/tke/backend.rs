//! `ClusterProvider` for TKE: calls the builders in `client`, maps TKE's shapes onto ours.
//!
//! TKE has no task ids: mutating calls return `Submitted` with an empty `task_id`, and the
//! caller polls `get_cluster` / `list_node_pools` for the outcome.

use std::collections::BTreeMap;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{
    CREDENTIAL_KINDS, DEFAULT_ENDPOINT, DISPLAY_NAME, NODE_POOL_LABEL, PAGE_LIMIT, VENDOR, action,
    client::{
        self, AddInstancesReply, ClustersReply, DeleteInstancesReply, IdReply, InstancesReply,
        NodePoolIdReply, NodePoolsReply, Reply, TkeCluster, TkeInstance, TkeNodePool,
    },
    endpoint, spec,
};
use crate::adapters::{
    CallContext, CredentialKind,
    cluster::{
        Capability, ClusterProvider, ClusterSpec, NodePoolResize, NodePoolSpec, SpecViolation,
        SpecWarning, Submitted, VendorCluster, VendorClusterState, VendorNodePool,
        VendorNodePoolState,
    },
    error::{ErrorClass, Result, VendorError},
    transport::{Idempotency, VendorHttp},
};

/// Tencent Cloud TKE (API 2018-05-25).
pub struct TkeProvider {
    http: VendorHttp,
    endpoint: Option<String>,
}

impl TkeProvider {
    /// `endpoint` overrides `https://tke.tencentcloudapi.com` (the region then goes in
    /// `X-TC-Region` all the same).
    pub fn new(http: VendorHttp, endpoint: Option<String>) -> TkeProvider {
        TkeProvider { http, endpoint }
    }

    /// The base URL. Every TKE call names its region (`X-TC-Region`), overridden endpoint or not.
    fn endpoint(&self, ctx: &CallContext, operation: &'static str) -> Result<String> {
        if ctx.region.is_empty() {
            return Err(VendorError::new(
                ErrorClass::InvalidConfiguration,
                VENDOR,
                operation,
                "",
                "TKE calls need a region (X-TC-Region)",
            ));
        }
        Ok(self
            .endpoint
            .clone()
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()))
    }

    pub(super) async fn call<T, B>(
        &self,
        ctx: &CallContext,
        action: &'static str,
        idempotency: Idempotency,
        build: B,
    ) -> Result<Reply<T>>
    where
        T: serde::de::DeserializeOwned,
        B: Fn(&client::Target<'_>, u64) -> Result<http::Request<Vec<u8>>>,
    {
        let endpoint = self.endpoint(ctx, action)?;
        client::send(&self.http, ctx, &endpoint, action, idempotency, build).await
    }

    async fn describe_cluster(&self, ctx: &CallContext, cluster_id: &str) -> Result<TkeCluster> {
        let reply: Reply<ClustersReply> = self
            .call(
                ctx,
                action::DESCRIBE_CLUSTERS,
                Idempotency::Idempotent,
                |t, ts| client::describe_cluster_request(t, ts, cluster_id),
            )
            .await?;
        reply
            .body
            .clusters
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.cluster_id.as_deref() == Some(cluster_id))
            .ok_or_else(|| {
                VendorError::new(
                    ErrorClass::VendorNotFound,
                    VENDOR,
                    action::DESCRIBE_CLUSTERS,
                    "",
                    format!("cluster {cluster_id} not found"),
                )
                .with_request_id(reply.request_id)
            })
    }

    /// Worker instances of a pool, every page.
    async fn pool_instances(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
    ) -> Result<Vec<TkeInstance>> {
        let mut all = Vec::new();
        loop {
            let offset = all.len() as i64;
            let reply: Reply<InstancesReply> = self
                .call(
                    ctx,
                    action::DESCRIBE_CLUSTER_INSTANCES,
                    Idempotency::Idempotent,
                    |t, ts| {
                        client::describe_cluster_instances_request(
                            t, ts, cluster_id, pool_id, offset,
                        )
                    },
                )
                .await?;
            let page = reply.body.instance_set.unwrap_or_default();
            let total = reply.body.total_count.unwrap_or(0);
            let empty = page.is_empty();
            all.extend(page);
            if empty || all.len() as i64 >= total {
                return Ok(all);
            }
        }
    }
}

fn submitted(object_id: &str, request_id: String) -> Submitted {
    Submitted {
        object_id: object_id.to_string(),
        task_id: String::new(),
        request_id,
    }
}

#[async_trait]
impl ClusterProvider for TkeProvider {
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

    async fn find_cluster_by_name(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<Option<VendorCluster>> {
        let mut matches = Vec::new();
        let mut offset = 0;
        loop {
            let reply: Reply<ClustersReply> = self
                .call(
                    ctx,
                    action::DESCRIBE_CLUSTERS,
                    Idempotency::Idempotent,
                    |t, ts| client::describe_clusters_by_name_request(t, ts, name, offset),
                )
                .await?;
            let page = reply.body.clusters.unwrap_or_default();
            let seen = page.len() as i64;
            // The vendor's filter may match more loosely than we want.
            matches.extend(
                page.into_iter()
                    .filter(|c| c.cluster_name.as_deref() == Some(name)),
            );
            offset += seen;
            if seen == 0 || seen < PAGE_LIMIT || offset >= reply.body.total_count.unwrap_or(0) {
                break;
            }
        }
        // Creates cannot be made idempotent at TKE, so duplicates can exist: prefer one that is
        // not being deleted, then the oldest.
        matches.sort_by(|a, b| {
            let deleting = |c: &TkeCluster| c.cluster_status.as_deref() == Some("Deleting");
            (deleting(a), &a.created_time, &a.cluster_id).cmp(&(
                deleting(b),
                &b.created_time,
                &b.cluster_id,
            ))
        });
        if matches.len() > 1 {
            tracing::warn!(
                vendor = VENDOR,
                name,
                count = matches.len(),
                "several TKE clusters share this name; using the oldest"
            );
        }
        Ok(matches.into_iter().next().map(|c| c.into_vendor(ctx)))
    }

    async fn create_cluster(
        &self,
        ctx: &CallContext,
        name: &str,
        spec: &ClusterSpec,
    ) -> Result<Submitted> {
        // Surface a bad spec before anything is sent.
        spec::create_cluster_body(name, spec)?;
        let reply: Reply<IdReply> = self
            .call(
                ctx,
                action::CREATE_CLUSTER,
                Idempotency::NotIdempotent,
                |t, ts| client::create_cluster_request(t, ts, name, spec),
            )
            .await?;
        let id = reply.body.cluster_id.unwrap_or_default();
        if id.is_empty() {
            return Err(malformed(
                action::CREATE_CLUSTER,
                "no ClusterId in the answer",
            ));
        }
        Ok(submitted(&id, reply.request_id))
    }

    async fn get_cluster(&self, ctx: &CallContext, cluster_id: &str) -> Result<VendorCluster> {
        Ok(self
            .describe_cluster(ctx, cluster_id)
            .await?
            .into_vendor(ctx))
    }

    /// The intranet kubeconfig: opens nothing (see `endpoint`).
    async fn fetch_kubeconfig(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
    ) -> Result<Zeroizing<String>> {
        self.kubeconfig(ctx, cluster_id, false).await
    }

    /// The public kubeconfig when the spec asks for a public endpoint, else the intranet one.
    async fn fetch_kubeconfig_for(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        spec: &ClusterSpec,
    ) -> Result<Zeroizing<String>> {
        match endpoint::public_endpoint(spec) {
            Some(cidrs) => self.public_kubeconfig(ctx, cluster_id, cidrs).await,
            None => self.kubeconfig(ctx, cluster_id, false).await,
        }
    }

    async fn upgrade_cluster(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        kubernetes_version: &str,
    ) -> Result<Submitted> {
        let reply: Reply<serde_json::Value> = self
            .call(
                ctx,
                action::UPDATE_CLUSTER_VERSION,
                // A repeat would find the cluster upgrading and fail; only throttling, which
                // guarantees nothing happened, is retried.
                Idempotency::NotIdempotent,
                |t, ts| {
                    client::update_cluster_version_request(t, ts, cluster_id, kubernetes_version)
                },
            )
            .await?;
        Ok(submitted(cluster_id, reply.request_id))
    }

    async fn delete_cluster(&self, ctx: &CallContext, cluster_id: &str) -> Result<Submitted> {
        let reply: Reply<serde_json::Value> = self
            .call(
                ctx,
                action::DELETE_CLUSTER,
                Idempotency::Idempotent,
                |t, ts| client::delete_cluster_request(t, ts, cluster_id),
            )
            .await?;
        Ok(submitted(cluster_id, reply.request_id))
    }

    async fn list_node_pools(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
    ) -> Result<Vec<VendorNodePool>> {
        let reply: Reply<NodePoolsReply> = self
            .call(
                ctx,
                action::DESCRIBE_CLUSTER_NODE_POOLS,
                Idempotency::Idempotent,
                |t, ts| client::describe_cluster_node_pools_request(t, ts, cluster_id),
            )
            .await?;
        Ok(reply
            .body
            .node_pool_set
            .unwrap_or_default()
            .into_iter()
            .map(TkeNodePool::into_vendor)
            .collect())
    }

    async fn create_node_pool(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        spec: &NodePoolSpec,
    ) -> Result<Submitted> {
        spec::create_node_pool_body(cluster_id, "", spec)?;
        // The scaling group needs the cluster's VPC, which the pool spec does not carry.
        let cluster = self.describe_cluster(ctx, cluster_id).await?;
        let vpc_id = cluster
            .cluster_network_settings
            .and_then(|n| n.vpc_id)
            .unwrap_or_default();
        let reply: Reply<NodePoolIdReply> = self
            .call(
                ctx,
                action::CREATE_CLUSTER_NODE_POOL,
                Idempotency::NotIdempotent,
                |t, ts| client::create_cluster_node_pool_request(t, ts, cluster_id, &vpc_id, spec),
            )
            .await?;
        let id = reply.body.node_pool_id.unwrap_or_default();
        if id.is_empty() {
            return Err(malformed(
                action::CREATE_CLUSTER_NODE_POOL,
                "no NodePoolId in the answer",
            ));
        }
        Ok(submitted(&id, reply.request_id))
    }

    async fn resize_node_pool(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
        change: &NodePoolResize,
    ) -> Result<Submitted> {
        if *change == NodePoolResize::default() {
            return Err(VendorError::new(
                ErrorClass::InvalidConfiguration,
                VENDOR,
                action::MODIFY_CLUSTER_NODE_POOL,
                "",
                "the resize changes nothing",
            ));
        }
        let mut request_id = String::new();
        // Bounds first, so a new desired size outside the old bounds is accepted.
        if change.min_size.is_some() || change.max_size.is_some() || change.autoscaling.is_some() {
            let reply: Reply<serde_json::Value> = self
                .call(
                    ctx,
                    action::MODIFY_CLUSTER_NODE_POOL,
                    Idempotency::Idempotent,
                    |t, ts| {
                        client::modify_cluster_node_pool_request(
                            t,
                            ts,
                            cluster_id,
                            pool_id,
                            change.min_size,
                            change.max_size,
                            change.autoscaling,
                        )
                    },
                )
                .await?;
            request_id = reply.request_id;
        }
        if let Some(desired) = change.desired_size {
            let reply: Reply<serde_json::Value> = self
                .call(
                    ctx,
                    action::MODIFY_NODE_POOL_DESIRED_CAPACITY_ABOUT_ASG,
                    Idempotency::Idempotent,
                    |t, ts| {
                        client::modify_node_pool_desired_capacity_request(
                            t, ts, cluster_id, pool_id, desired,
                        )
                    },
                )
                .await?;
            request_id = reply.request_id;
        }
        Ok(submitted(pool_id, request_id))
    }

    async fn delete_node_pool(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
    ) -> Result<Submitted> {
        let reply: Reply<serde_json::Value> = self
            .call(
                ctx,
                action::DELETE_CLUSTER_NODE_POOL,
                Idempotency::Idempotent,
                |t, ts| client::delete_cluster_node_pool_request(t, ts, cluster_id, pool_id),
            )
            .await?;
        Ok(submitted(pool_id, reply.request_id))
    }

    async fn add_instances(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
        instance_ids: &[String],
    ) -> Result<Submitted> {
        let reply: Reply<AddInstancesReply> = self
            .call(
                ctx,
                action::ADD_EXISTED_INSTANCES,
                Idempotency::NotIdempotent,
                |t, ts| {
                    client::add_existed_instances_request(t, ts, cluster_id, pool_id, instance_ids)
                },
            )
            .await?;
        // Partial success is normal: every list has to be read.
        let body = reply.body;
        let failed = body.failed_instance_ids.unwrap_or_default();
        let timed_out = body.timeout_instance_ids.unwrap_or_default();
        if failed.is_empty() && timed_out.is_empty() {
            return Ok(submitted(pool_id, reply.request_id));
        }
        let reasons = body.failed_reasons.unwrap_or_default();
        let mut parts = Vec::new();
        if !failed.is_empty() {
            let detail: Vec<String> = failed
                .iter()
                .enumerate()
                .map(|(i, id)| match reasons.get(i) {
                    Some(reason) if !reason.is_empty() => format!("{id} ({reason})"),
                    _ => id.clone(),
                })
                .collect();
            parts.push(format!("failed: {}", detail.join(", ")));
        }
        if !timed_out.is_empty() {
            parts.push(format!(
                "timed out (may still join): {}",
                timed_out.join(", ")
            ));
        }
        let added = body.succ_instance_ids.unwrap_or_default();
        parts.push(format!(
            "added: {}",
            if added.is_empty() {
                "none".to_string()
            } else {
                added.join(", ")
            }
        ));
        // Failed instances need a person; instances that only timed out may still join.
        let class = if failed.is_empty() {
            ErrorClass::Timeout
        } else {
            ErrorClass::InvalidConfiguration
        };
        Err(VendorError::new(
            class,
            VENDOR,
            action::ADD_EXISTED_INSTANCES,
            "",
            format!("instances not added to {pool_id}: {}", parts.join("; ")),
        )
        .with_request_id(reply.request_id))
    }

    async fn remove_nodes(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        pool_id: &str,
        node_names: &[String],
        release_instances: bool,
    ) -> Result<Submitted> {
        // Kubernetes node names on TKE are the instance's LAN IP (the default) or its id;
        // DeleteClusterInstances takes instance ids.
        let instances = self.pool_instances(ctx, cluster_id, pool_id).await?;
        let mut ids = Vec::new();
        let mut unknown = Vec::new();
        for name in node_names {
            match instances.iter().find(|i| {
                i.instance_id.as_deref() == Some(name.as_str())
                    || i.lan_ip.as_deref() == Some(name.as_str())
            }) {
                Some(instance) => ids.extend(instance.instance_id.clone()),
                None => unknown.push(name.as_str()),
            }
        }
        if !unknown.is_empty() {
            return Err(VendorError::new(
                ErrorClass::InvalidConfiguration,
                VENDOR,
                action::DELETE_CLUSTER_INSTANCES,
                "",
                format!(
                    "nodes not found in pool {pool_id} by LAN IP or instance id: {}",
                    unknown.join(", ")
                ),
            ));
        }
        let reply: Reply<DeleteInstancesReply> = self
            .call(
                ctx,
                action::DELETE_CLUSTER_INSTANCES,
                Idempotency::Idempotent,
                |t, ts| {
                    client::delete_cluster_instances_request(
                        t,
                        ts,
                        cluster_id,
                        &ids,
                        release_instances,
                    )
                },
            )
            .await?;
        let failed = reply.body.failed_instance_ids.unwrap_or_default();
        if !failed.is_empty() {
            return Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                action::DELETE_CLUSTER_INSTANCES,
                "",
                format!(
                    "instances not removed from {pool_id}: {}",
                    failed.join(", ")
                ),
            )
            .with_request_id(reply.request_id));
        }
        // NotFoundInstanceIds are already gone, which is what was asked for.
        Ok(submitted(pool_id, reply.request_id))
    }
}

fn malformed(operation: &'static str, message: &str) -> VendorError {
    VendorError::new(
        ErrorClass::Unknown,
        VENDOR,
        operation,
        "MalformedResponse",
        message,
    )
}

impl TkeCluster {
    fn into_vendor(self, ctx: &CallContext) -> VendorCluster {
        let raw_state = self.cluster_status.unwrap_or_default();
        VendorCluster {
            id: self.cluster_id.unwrap_or_default(),
            name: self.cluster_name.unwrap_or_default(),
            state: cluster_state(&raw_state),
            raw_state,
            kubernetes_version: self.cluster_version.unwrap_or_default(),
            region: ctx.region.clone(),
        }
    }
}

/// TKE's ClusterStatus (vendor-apis.md §2.4), normalised.
fn cluster_state(raw: &str) -> VendorClusterState {
    use VendorClusterState::*;
    match raw {
        "Creating" | "Trading" | "Recovering" | "WaittingForConnect" | "ClusterLevelTrading" => {
            Creating
        }
        "Running" => Running,
        "Upgrading"
        | "Scaling"
        | "NodeUpgrading"
        | "RuntimeUpgrading"
        | "MasterScaling"
        | "ClusterLevelUpgrading" => Updating,
        "Deleting" | "ResourceDestroy" => Deleting,
        "ResourceDestroyed" => Deleted,
        "Abnormal" => Failed,
        _ => Other,
    }
}

fn as_i32(n: Option<i64>) -> i32 {
    n.unwrap_or(0).clamp(0, i32::MAX as i64) as i32
}

impl TkeNodePool {
    fn into_vendor(self) -> VendorNodePool {
        let raw_state = self.life_state.unwrap_or_default();
        let state = match raw_state.as_str() {
            "creating" => VendorNodePoolState::Creating,
            "normal" => VendorNodePoolState::Running,
            "deleting" => VendorNodePoolState::Deleting,
            "deleted" => VendorNodePoolState::Deleted,
            s if s.contains("fail") || s.contains("abnormal") => VendorNodePoolState::Failed,
            // "updating" and anything unknown: a change is in progress.
            _ => VendorNodePoolState::Updating,
        };
        let (manual, scaled) = match self.node_count_summary {
            Some(s) => (
                s.manually_added.and_then(|c| c.total),
                s.autoscaling_added.and_then(|c| c.total),
            ),
            None => (None, None),
        };
        let current = as_i32(manual).saturating_add(as_i32(scaled));
        let labels: BTreeMap<String, String> = self
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter_map(|l| Some((l.name?, l.value.unwrap_or_default())))
            .collect();
        VendorNodePool {
            id: self.node_pool_id.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            desired_size: as_i32(self.desired_nodes_num),
            min_size: as_i32(self.min_nodes_num),
            max_size: as_i32(self.max_nodes_num),
            autoscaling: self.autoscaling_group_status.as_deref() == Some("enabled"),
            current_size: current,
            instance_types: Vec::new(),
            state,
            raw_state,
            labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::cluster::tke::EXTRANET_NOT_ENABLED;

    #[test]
    fn cluster_states() {
        assert_eq!(cluster_state("Creating"), VendorClusterState::Creating);
        assert_eq!(cluster_state("Running"), VendorClusterState::Running);
        assert_eq!(cluster_state("Upgrading"), VendorClusterState::Updating);
        assert_eq!(cluster_state("Deleting"), VendorClusterState::Deleting);
        assert_eq!(cluster_state("Abnormal"), VendorClusterState::Failed);
        assert_eq!(cluster_state("Isolated"), VendorClusterState::Other);
    }

    #[test]
    fn node_pool_shape() {
        let json = r#"{"NodePoolId":"np-1","Name":"w","LifeState":"updating",
            "Labels":[{"Name":"a","Value":"b"}],"AutoscalingGroupStatus":"enabled",
            "MaxNodesNum":5,"MinNodesNum":1,"DesiredNodesNum":3,
            "NodeCountSummary":{"ManuallyAdded":{"Total":1},"AutoscalingAdded":{"Total":2}},
            "Taints":null}"#;
        let pool: TkeNodePool = serde_json::from_str(json).expect("pool");
        let pool = pool.into_vendor();
        assert_eq!(pool.state, VendorNodePoolState::Updating);
        assert_eq!((pool.desired_size, pool.min_size, pool.max_size), (3, 1, 5));
        assert_eq!(pool.current_size, 3);
        assert!(pool.autoscaling);
        assert_eq!(pool.labels.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn extranet_signals() {
        let err = |code: &str, message: &str| {
            VendorError::new(ErrorClass::Unknown, VENDOR, "X", code, message)
        };
        use super::endpoint::extranet_not_enabled;
        assert!(extranet_not_enabled(&err(EXTRANET_NOT_ENABLED, "")));
        assert!(extranet_not_enabled(&err(
            "FailedOperation",
            "cluster extranet endpoint not enabled"
        )));
        assert!(!extranet_not_enabled(&err(
            "ResourceNotFound.ClusterNotFound",
            "no cluster"
        )));
    }
}
