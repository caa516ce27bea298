//! The steps of each kind of operation. Each one is safe to run again after a crash: creates
//! look the object up first, resizes are target-based, deletes treat "not found" as done.

use std::time::Duration;

use prost::Message;

use super::{
    OperationWorker, Outcome, StepError, adopted_cluster, decode_pool_spec, failed_at_vendor,
    remember, same_version, unknown_step,
};
use crate::{
    adapters::{
        CallContext, ErrorClass, VendorError,
        cluster::{
            ClusterProvider, ClusterSpec, NodePoolResize, TaskStatus, VendorClusterState,
            VendorNodePoolState,
        },
    },
    kube::drain::{DrainEvent, DrainOptions},
    service::{
        Error,
        operations::{Operation, OperationInput},
    },
    store::now_millis,
};

impl OperationWorker {
    pub(super) async fn create_cluster(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: &str,
    ) -> Result<Outcome, StepError> {
        match step {
            "submit" => {
                // Look first: a create that reached the vendor before a crash is adopted, not
                // repeated (ACK and TKE creates have no idempotency token).
                let spec = self.cluster_spec(&op.cluster_id).await?;
                let submitted = if let Some(existing) = adopted_cluster(&spec) {
                    // Bringing in a cluster the vendor already has (Rancher): nothing is made.
                    p.get_cluster(ctx, &existing).await?.id
                } else {
                    match p.find_cluster_by_name(ctx, &op.cluster_id).await? {
                        Some(existing) => existing.id,
                        None => {
                            let done = p.create_cluster(ctx, &op.cluster_id, &spec).await?;
                            remember(&mut op.detail, &done.request_id, &done.task_id);
                            done.object_id
                        }
                    }
                };
                op.detail.vendor_object_id = submitted.clone();
                op.detail.vendor_cluster_id = submitted.clone();
                self.store
                    .set_cluster_lifecycle(
                        &op.cluster_id,
                        "PROVISIONING",
                        Some(&submitted),
                        now_millis(),
                    )
                    .await
                    .map_err(Error::from)?;
                Ok(Outcome::Next("provision"))
            }
            "provision" => {
                if let Some(outcome) = self.poll_task(p, ctx, op).await? {
                    return Ok(outcome);
                }
                let cluster = p.get_cluster(ctx, &op.detail.vendor_cluster_id).await?;
                op.detail.vendor_state = cluster.raw_state.clone();
                match cluster.state {
                    VendorClusterState::Running => Ok(Outcome::Next("node_pools")),
                    VendorClusterState::Failed | VendorClusterState::Deleted => {
                        Ok(failed_at_vendor(
                            p.id(),
                            "CreateCluster",
                            &format!("the vendor reports the cluster as {:?}", cluster.raw_state),
                        ))
                    }
                    _ => Ok(Outcome::Wait(format!(
                        "the vendor is creating the cluster (state {:?})",
                        cluster.raw_state
                    ))),
                }
            }
            "node_pools" => self.create_spec_pools(p, ctx, op).await,
            "connect" => {
                let spec = self.cluster_spec(&op.cluster_id).await?;
                let kubeconfig = match p
                    .fetch_kubeconfig_for(ctx, &op.detail.vendor_cluster_id, &spec)
                    .await
                {
                    Ok(kubeconfig) => kubeconfig,
                    // A public endpoint the spec asked for takes a while to open.
                    Err(err) if err.class == ErrorClass::DependencyPending => {
                        return Ok(Outcome::Wait(format!(
                            "waiting for the vendor to open the API endpoint: {}",
                            err.message
                        )));
                    }
                    Err(err) => return Err(err.into()),
                };
                self.importer
                    .attach_vendor_access(&op.cluster_id, kubeconfig)
                    .await?;
                Ok(Outcome::Done("the cluster is running and connected".into()))
            }
            other => Err(unknown_step(other)),
        }
    }

    /// Makes the node pools the spec asks for that the vendor did not make with the cluster
    /// (TKE creates clusters from raw instances), and waits until they run. Pools are matched
    /// by name, so running this again creates nothing twice.
    async fn create_spec_pools(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
    ) -> Result<Outcome, StepError> {
        let spec = self.cluster_spec(&op.cluster_id).await?;
        if spec.node_pools.is_empty() || !p.capability().create_node_pool {
            return Ok(Outcome::Next("connect"));
        }
        let cluster = op.detail.vendor_cluster_id.clone();
        let existing = p.list_node_pools(ctx, &cluster).await?;
        let mut waiting = Vec::new();
        for wanted in &spec.node_pools {
            match existing.iter().find(|pool| pool.name == wanted.name) {
                Some(pool) if pool.state == VendorNodePoolState::Failed => {
                    return Ok(failed_at_vendor(
                        p.id(),
                        "CreateNodePool",
                        &format!("node pool {:?} failed at the vendor", wanted.name),
                    ));
                }
                Some(pool) if pool.state == VendorNodePoolState::Running => {}
                Some(pool) => waiting.push(format!("{} ({})", pool.name, pool.raw_state)),
                None => {
                    let done = p.create_node_pool(ctx, &cluster, wanted).await?;
                    remember(&mut op.detail, &done.request_id, &done.task_id);
                    waiting.push(format!("{} (created)", wanted.name));
                }
            }
        }
        if waiting.is_empty() {
            return Ok(Outcome::Next("connect"));
        }
        Ok(Outcome::Wait(format!(
            "waiting for node pools: {}",
            waiting.join(", ")
        )))
    }

    pub(super) async fn delete_cluster(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: &str,
    ) -> Result<Outcome, StepError> {
        match step {
            "submit" => {
                if op.detail.vendor_cluster_id.is_empty() {
                    return Ok(Outcome::Next("forget"));
                }
                match p.delete_cluster(ctx, &op.detail.vendor_cluster_id).await {
                    Ok(done) => remember(&mut op.detail, &done.request_id, &done.task_id),
                    Err(err) if err.is_not_found() => return Ok(Outcome::Next("forget")),
                    Err(err) => return Err(err.into()),
                }
                Ok(Outcome::Next("wait"))
            }
            "wait" => match p.get_cluster(ctx, &op.detail.vendor_cluster_id).await {
                Err(err) if err.is_not_found() => Ok(Outcome::Next("forget")),
                Err(err) => Err(err.into()),
                Ok(cluster) if cluster.state == VendorClusterState::Deleted => {
                    Ok(Outcome::Next("forget"))
                }
                Ok(cluster) if cluster.state == VendorClusterState::Failed => Ok(failed_at_vendor(
                    p.id(),
                    "DeleteCluster",
                    &format!("the vendor reports the cluster as {:?}", cluster.raw_state),
                )),
                Ok(cluster) => {
                    op.detail.vendor_state = cluster.raw_state.clone();
                    Ok(Outcome::Wait(format!(
                        "the vendor is deleting the cluster (state {:?})",
                        cluster.raw_state
                    )))
                }
            },
            "forget" => {
                match self.catalog.detach(&op.cluster_id, "").await {
                    Ok(()) | Err(Error::NotFound { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
                Ok(Outcome::Done("deleted at the vendor and forgotten".into()))
            }
            other => Err(unknown_step(other)),
        }
    }

    pub(super) async fn upgrade_cluster(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: &str,
    ) -> Result<Outcome, StepError> {
        let OperationInput::UpgradeCluster { version } = op.detail.input.clone() else {
            return Err(unknown_step("upgrade input"));
        };
        match step {
            "submit" => {
                let cluster = p.get_cluster(ctx, &op.detail.vendor_cluster_id).await?;
                if !same_version(&cluster.kubernetes_version, &version) {
                    let done = p
                        .upgrade_cluster(ctx, &op.detail.vendor_cluster_id, &version)
                        .await?;
                    remember(&mut op.detail, &done.request_id, &done.task_id);
                }
                Ok(Outcome::Next("wait"))
            }
            "wait" => {
                if let Some(outcome) = self.poll_task(p, ctx, op).await? {
                    return Ok(outcome);
                }
                let cluster = p.get_cluster(ctx, &op.detail.vendor_cluster_id).await?;
                op.detail.vendor_state = cluster.raw_state.clone();
                if cluster.state == VendorClusterState::Running
                    && same_version(&cluster.kubernetes_version, &version)
                {
                    self.store
                        .set_cluster_lifecycle(&op.cluster_id, "RUNNING", None, now_millis())
                        .await
                        .map_err(Error::from)?;
                    return Ok(Outcome::Done(format!("upgraded to {version}")));
                }
                if cluster.state == VendorClusterState::Failed {
                    return Ok(failed_at_vendor(
                        p.id(),
                        "UpgradeCluster",
                        "the vendor reports the cluster failed",
                    ));
                }
                Ok(Outcome::Wait(format!(
                    "the vendor is upgrading the cluster to {version} (state {:?}, version {:?})",
                    cluster.raw_state, cluster.kubernetes_version
                )))
            }
            other => Err(unknown_step(other)),
        }
    }

    pub(super) async fn node_pool_step(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: &str,
    ) -> Result<Outcome, StepError> {
        let cluster = op.detail.vendor_cluster_id.clone();
        let input = op.detail.input.clone();
        if step == "submit" {
            match &input {
                OperationInput::CreateNodePool { spec, name } => {
                    let pools = p.list_node_pools(ctx, &cluster).await?;
                    op.detail.vendor_object_id = match pools.iter().find(|pool| &pool.name == name)
                    {
                        Some(existing) => existing.id.clone(),
                        None => {
                            let spec = decode_pool_spec(spec)?;
                            let done = p.create_node_pool(ctx, &cluster, &spec).await?;
                            remember(&mut op.detail, &done.request_id, &done.task_id);
                            done.object_id
                        }
                    };
                }
                OperationInput::UpdateNodePool {
                    pool_id,
                    desired_size,
                    min_size,
                    max_size,
                    autoscaling,
                } => {
                    let change = NodePoolResize {
                        desired_size: *desired_size,
                        min_size: *min_size,
                        max_size: *max_size,
                        autoscaling: *autoscaling,
                    };
                    let done = p.resize_node_pool(ctx, &cluster, pool_id, &change).await?;
                    remember(&mut op.detail, &done.request_id, &done.task_id);
                }
                OperationInput::DeleteNodePool { pool_id } => {
                    match p.delete_node_pool(ctx, &cluster, pool_id).await {
                        Ok(done) => remember(&mut op.detail, &done.request_id, &done.task_id),
                        Err(err) if err.is_not_found() => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                OperationInput::AddNodes {
                    pool_id,
                    instance_ids,
                } => {
                    let done = p
                        .add_instances(ctx, &cluster, pool_id, instance_ids)
                        .await?;
                    remember(&mut op.detail, &done.request_id, &done.task_id);
                }
                OperationInput::RemoveNodes {
                    pool_id,
                    node_names,
                    skip_drain,
                    release_instances,
                } => {
                    if !skip_drain {
                        self.drain(op, node_names).await?;
                    }
                    let done = p
                        .remove_nodes(ctx, &cluster, pool_id, node_names, *release_instances)
                        .await?;
                    remember(&mut op.detail, &done.request_id, &done.task_id);
                }
                _ => return Err(unknown_step("node pool input")),
            }
            return Ok(Outcome::Next("wait"));
        }
        if step != "wait" {
            return Err(unknown_step(step));
        }
        if let Some(outcome) = self.poll_task(p, ctx, op).await? {
            return Ok(outcome);
        }
        let pool_id = match &input {
            OperationInput::CreateNodePool { .. } => op.detail.vendor_object_id.clone(),
            OperationInput::UpdateNodePool { pool_id, .. }
            | OperationInput::DeleteNodePool { pool_id }
            | OperationInput::AddNodes { pool_id, .. }
            | OperationInput::RemoveNodes { pool_id, .. } => pool_id.clone(),
            _ => return Err(unknown_step("node pool input")),
        };
        let pools = p.list_node_pools(ctx, &cluster).await?;
        let pool = pools.into_iter().find(|pool| pool.id == pool_id);
        let Some(pool) = pool.filter(|p| p.state != VendorNodePoolState::Deleted) else {
            return Ok(if matches!(input, OperationInput::DeleteNodePool { .. }) {
                Outcome::Done("node pool deleted".into())
            } else {
                failed_at_vendor(
                    p.id(),
                    "DescribeNodePool",
                    &format!("node pool {pool_id:?} is gone"),
                )
            });
        };
        op.detail.vendor_state = pool.raw_state.clone();
        if pool.state == VendorNodePoolState::Failed {
            return Ok(failed_at_vendor(
                p.id(),
                "NodePool",
                &format!("node pool state {:?}", pool.raw_state),
            ));
        }
        let settled = pool.state == VendorNodePoolState::Running
            && match &input {
                OperationInput::UpdateNodePool {
                    desired_size: Some(size),
                    ..
                } => pool.desired_size == *size,
                OperationInput::DeleteNodePool { .. } => false,
                _ => true,
            };
        if settled {
            return Ok(Outcome::Done(format!(
                "node pool {} is {} with {} nodes",
                pool.id, pool.raw_state, pool.desired_size
            )));
        }
        Ok(Outcome::Wait(format!(
            "waiting for node pool {} (state {:?}, desired {})",
            pool.id, pool.raw_state, pool.desired_size
        )))
    }

    /// Drains the nodes through Kubernetes before the vendor removes them.
    async fn drain(&self, op: &Operation, nodes: &[String]) -> Result<(), StepError> {
        for node in nodes {
            let options = DrainOptions {
                timeout: Duration::from_secs(300),
                grace_period: None,
                delete_emptydir_data: true,
                force: false,
                dry_run: false,
            };
            let mut events = self
                .workloads
                .drain(
                    &crate::auth::Principal::server(),
                    &op.cluster_id,
                    node,
                    options,
                )
                .await?;
            while let Some(event) = events.recv().await {
                if let DrainEvent::Done {
                    complete: false,
                    blocked,
                    failed,
                    ..
                } = event
                {
                    return Err(StepError::Vendor(VendorError::new(
                        ErrorClass::DependencyPending,
                        "kubernetes",
                        "DrainNode",
                        "DrainIncomplete",
                        format!(
                            "node {node}: {blocked} pods blocked by disruption budgets, {failed} failed"
                        ),
                    )));
                }
            }
        }
        Ok(())
    }

    /// Polls the vendor task when there is one. `None`: no task, or it succeeded.
    async fn poll_task(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
    ) -> Result<Option<Outcome>, StepError> {
        if op.detail.vendor_task_id.is_empty() {
            return Ok(None);
        }
        match p.get_task(ctx, &op.detail.vendor_task_id).await? {
            TaskStatus::Succeeded => Ok(None),
            TaskStatus::Running { stage, raw_state } => {
                op.detail.vendor_state = raw_state;
                Ok(Some(Outcome::Wait(format!("vendor task running: {stage}"))))
            }
            TaskStatus::Failed(error) => Ok(Some(Outcome::Fail {
                error,
                terminal: true,
            })),
        }
    }

    async fn cluster_spec(&self, cluster_id: &str) -> Result<ClusterSpec, StepError> {
        let row = self
            .store
            .get_cluster(cluster_id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| {
                StepError::Service(Error::NotFound {
                    kind: "cluster",
                    id: cluster_id.to_string(),
                })
            })?;
        ClusterSpec::decode(row.spec.unwrap_or_default().as_slice()).map_err(|_| {
            StepError::Service(Error::Internal(format!("cluster {cluster_id}: bad spec")))
        })
    }
}
