//! The I/O half of each step: ask the vendor, the database or Kubernetes, remember what must
//! survive a crash, and let `decide` say what follows. Each step is safe to run again after a
//! crash: creates look the object up first, resizes are target-based, deletes treat "not found"
//! as done.

use std::time::Duration;

use prost::Message;

use super::{OperationWorker, StepError, decode_pool_spec, misplaced, remember};
use crate::{
    adapters::{
        CallContext,
        cluster::{ClusterProvider, ClusterSpec},
    },
    kube::drain::DrainOptions,
    service::{
        Error,
        clusters::ClusterState,
        operations::{
            Operation, OperationInput, Step,
            decide::{self, Outcome, SpecPool},
        },
    },
    store::now_millis,
};

impl OperationWorker {
    pub(super) async fn create_cluster(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: Step,
    ) -> Result<Outcome, StepError> {
        match step {
            Step::Submit => {
                let spec = self.cluster_spec(&op.cluster_id).await?;
                let submitted = if let Some(existing) = p.adopted_cluster(&spec) {
                    // Bringing in a cluster the vendor already has: nothing is made.
                    p.get_cluster(ctx, &existing).await?.id
                } else {
                    // Look first: a create that reached the vendor before a crash is adopted,
                    // not repeated.
                    let found = p.find_cluster_by_name(ctx, &op.cluster_id).await?;
                    match decide::reuse_cluster(found) {
                        Some(existing) => existing,
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
                        ClusterState::Provisioning.as_str(),
                        Some(&submitted),
                        now_millis(),
                    )
                    .await
                    .map_err(Error::from)?;
                Ok(Outcome::Next(Step::Provision))
            }
            Step::Provision => {
                if let Some(outcome) = self.poll_task(p, ctx, op).await? {
                    return Ok(outcome);
                }
                let cluster = p.get_cluster(ctx, &op.detail.vendor_cluster_id).await?;
                op.detail.vendor_state = cluster.raw_state.clone();
                Ok(decide::after_provision(&cluster))
            }
            Step::NodePools => self.create_spec_pools(p, ctx, op).await,
            Step::Connect => {
                let spec = self.cluster_spec(&op.cluster_id).await?;
                let fetched = p
                    .fetch_kubeconfig_for(ctx, &op.detail.vendor_cluster_id, &spec)
                    .await;
                let kubeconfig = match decide::after_kubeconfig(fetched) {
                    Ok(kubeconfig) => kubeconfig,
                    Err(outcome) => return Ok(outcome),
                };
                self.importer
                    .attach_vendor_access(&op.cluster_id, kubeconfig)
                    .await?;
                Ok(decide::connected())
            }
            Step::Wait | Step::Forget | Step::Renew | Step::Revoke => Err(misplaced(op.kind, step)),
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
        if let Some(outcome) =
            decide::spec_pools_needed(spec.node_pools.len(), p.capability().create_node_pool)
        {
            return Ok(outcome);
        }
        let cluster = op.detail.vendor_cluster_id.clone();
        let existing = p.list_node_pools(ctx, &cluster).await?;
        let mut waiting = Vec::new();
        // In the spec's order: a failed pool stops the step before any later pool is made.
        for wanted in &spec.node_pools {
            match decide::spec_pool(&wanted.name, &existing) {
                SpecPool::Failed(failure) => return Ok(Outcome::Fail(failure)),
                SpecPool::Ready => {}
                SpecPool::Pending(what) => waiting.push(what),
                SpecPool::Missing => {
                    let done = p.create_node_pool(ctx, &cluster, wanted).await?;
                    remember(&mut op.detail, &done.request_id, &done.task_id);
                    waiting.push(decide::created_pool(&wanted.name));
                }
            }
        }
        Ok(decide::after_spec_pools(&waiting))
    }

    pub(super) async fn delete_cluster(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: Step,
    ) -> Result<Outcome, StepError> {
        match step {
            Step::Submit => {
                if let Some(outcome) = decide::before_delete(&op.detail.vendor_cluster_id) {
                    return Ok(outcome);
                }
                let sent = p
                    .delete_cluster(ctx, &op.detail.vendor_cluster_id)
                    .await
                    .map(|done| remember(&mut op.detail, &done.request_id, &done.task_id));
                Ok(decide::after_delete_request(sent))
            }
            Step::Wait => {
                let observed = p.get_cluster(ctx, &op.detail.vendor_cluster_id).await;
                let outcome = decide::after_delete_wait(observed.as_ref().map_err(Clone::clone));
                if let (Ok(cluster), Outcome::Wait(_)) = (&observed, &outcome) {
                    op.detail.vendor_state = cluster.raw_state.clone();
                }
                Ok(outcome)
            }
            Step::Forget => {
                let detached = self.catalog.detach(&op.cluster_id, "").await;
                Ok(decide::after_forget(detached)?)
            }
            Step::Provision | Step::NodePools | Step::Connect | Step::Renew | Step::Revoke => {
                Err(misplaced(op.kind, step))
            }
        }
    }

    pub(super) async fn upgrade_cluster(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: Step,
    ) -> Result<Outcome, StepError> {
        let OperationInput::UpgradeCluster { version } = op.detail.input.clone() else {
            return Err(misplaced(op.kind, "the stored input"));
        };
        match step {
            Step::Submit => {
                let cluster = p.get_cluster(ctx, &op.detail.vendor_cluster_id).await?;
                if decide::upgrade_needed(&cluster, &version) {
                    let done = p
                        .upgrade_cluster(ctx, &op.detail.vendor_cluster_id, &version)
                        .await?;
                    remember(&mut op.detail, &done.request_id, &done.task_id);
                }
                Ok(Outcome::Next(Step::Wait))
            }
            Step::Wait => {
                if let Some(outcome) = self.poll_task(p, ctx, op).await? {
                    return Ok(outcome);
                }
                let cluster = p.get_cluster(ctx, &op.detail.vendor_cluster_id).await?;
                op.detail.vendor_state = cluster.raw_state.clone();
                let outcome = decide::after_upgrade(&cluster, &version);
                if let Outcome::Done(_) = outcome {
                    self.store
                        .set_cluster_lifecycle(
                            &op.cluster_id,
                            ClusterState::Running.as_str(),
                            None,
                            now_millis(),
                        )
                        .await
                        .map_err(Error::from)?;
                }
                Ok(outcome)
            }
            Step::Provision
            | Step::NodePools
            | Step::Connect
            | Step::Forget
            | Step::Renew
            | Step::Revoke => Err(misplaced(op.kind, step)),
        }
    }

    pub(super) async fn node_pool_step(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: Step,
    ) -> Result<Outcome, StepError> {
        match step {
            Step::Submit => self.submit_pool_change(p, ctx, op).await,
            Step::Wait => self.wait_for_pool(p, ctx, op).await,
            Step::Provision
            | Step::NodePools
            | Step::Connect
            | Step::Forget
            | Step::Renew
            | Step::Revoke => Err(misplaced(op.kind, step)),
        }
    }

    async fn submit_pool_change(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
    ) -> Result<Outcome, StepError> {
        let cluster = op.detail.vendor_cluster_id.clone();
        let input = op.detail.input.clone();
        let done = match &input {
            OperationInput::CreateNodePool { spec, name } => {
                let pools = p.list_node_pools(ctx, &cluster).await?;
                op.detail.vendor_object_id = match decide::reuse_pool(&pools, name) {
                    Some(existing) => existing,
                    None => {
                        let spec = decode_pool_spec(spec)?;
                        let done = p.create_node_pool(ctx, &cluster, &spec).await?;
                        remember(&mut op.detail, &done.request_id, &done.task_id);
                        done.object_id
                    }
                };
                return Ok(Outcome::Next(Step::Wait));
            }
            OperationInput::UpdateNodePool { pool_id, .. } => {
                let change = decide::resize_of(&input)
                    .ok_or_else(|| misplaced(op.kind, "the stored input"))?;
                p.resize_node_pool(ctx, &cluster, pool_id, &change).await?
            }
            OperationInput::DeleteNodePool { pool_id } => {
                let sent = p
                    .delete_node_pool(ctx, &cluster, pool_id)
                    .await
                    .map(|done| remember(&mut op.detail, &done.request_id, &done.task_id));
                return Ok(decide::after_pool_delete_request(sent));
            }
            OperationInput::AddNodes {
                pool_id,
                instance_ids,
            } => {
                p.add_instances(ctx, &cluster, pool_id, instance_ids)
                    .await?
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
                p.remove_nodes(ctx, &cluster, pool_id, node_names, *release_instances)
                    .await?
            }
            OperationInput::CreateCluster
            | OperationInput::DeleteCluster
            | OperationInput::UpgradeCluster { .. }
            | OperationInput::RenewPullSecret { .. } => {
                return Err(misplaced(op.kind, "the stored input"));
            }
        };
        remember(&mut op.detail, &done.request_id, &done.task_id);
        Ok(Outcome::Next(Step::Wait))
    }

    async fn wait_for_pool(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
    ) -> Result<Outcome, StepError> {
        if let Some(outcome) = self.poll_task(p, ctx, op).await? {
            return Ok(outcome);
        }
        let input = op.detail.input.clone();
        let pool_id = decide::target_pool(&input, &op.detail.vendor_object_id)
            .ok_or_else(|| misplaced(op.kind, "the stored input"))?
            .to_string();
        let pools = p.list_node_pools(ctx, &op.detail.vendor_cluster_id).await?;
        let pool = decide::live_pool(&pools, &pool_id);
        if let Some(pool) = pool {
            op.detail.vendor_state = pool.raw_state.clone();
        }
        Ok(decide::after_pool_wait(&input, &pool_id, pool))
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
                if let Some(failure) = decide::after_drain_event(node, &event) {
                    return Err(failure.into());
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
        let task = p.get_task(ctx, &op.detail.vendor_task_id).await?;
        if let crate::adapters::cluster::TaskStatus::Running { raw_state, .. } = &task {
            op.detail.vendor_state = raw_state.clone();
        }
        Ok(decide::after_task(&task))
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
