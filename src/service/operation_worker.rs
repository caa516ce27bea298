//! The operation worker: claims due operations under a lease, runs their steps against the
//! vendor, and checkpoints after every step, so any replica can resume an operation after a
//! crash or restart from what is stored.
//!
//! Every step is safe to run again: creates look the object up by name first (ACK has no
//! idempotency token), resizes are target-based, deletes treat "not found" as done.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::{
    Error,
    clusters::ClusterCatalog,
    credentials::{CredentialSecret, CredentialVault},
    import::ClusterImporter,
    operations::{
        Operation, OperationDetail, OperationFailure, OperationInput, OperationKind,
        OperationState, StepRecord, to_row,
    },
    workloads::WorkloadQueries,
};
use crate::{
    config::OperationSettings,
    kube::drain::{DrainEvent, DrainOptions},
    store::{OperationRow, Store, now_millis},
    vendor::{
        CallContext, ClusterProvider, ClusterSpec, Credentials, ErrorClass, NodePoolResize,
        NodePoolSpec, ProviderRegistry, TaskStatus, VendorClusterState, VendorError,
        VendorNodePoolState,
    },
};

/// What one step decided.
enum Outcome {
    /// Go on with this step now.
    Next(&'static str),
    /// Not done yet; look again after the poll interval.
    Wait(String),
    Done(String),
    /// Stop. `terminal` failures are not retried even when their class would be.
    Fail {
        error: VendorError,
        terminal: bool,
    },
}

pub struct OperationWorker {
    store: Store,
    providers: ProviderRegistry,
    vault: Arc<CredentialVault>,
    importer: Arc<ClusterImporter>,
    catalog: Arc<ClusterCatalog>,
    workloads: Arc<WorkloadQueries>,
    settings: OperationSettings,
    /// This replica's lease identity.
    owner: String,
}

impl OperationWorker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        providers: ProviderRegistry,
        vault: Arc<CredentialVault>,
        importer: Arc<ClusterImporter>,
        catalog: Arc<ClusterCatalog>,
        workloads: Arc<WorkloadQueries>,
        settings: OperationSettings,
    ) -> Self {
        OperationWorker {
            store,
            providers,
            vault,
            importer,
            catalog,
            workloads,
            settings,
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Runs `settings.workers` claim loops until `shutdown`.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) {
        for _ in 0..self.settings.workers {
            let worker = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { worker.claim_loop(shutdown).await });
        }
    }

    async fn claim_loop(&self, shutdown: CancellationToken) {
        let idle = self.settings.poll_interval.min(Duration::from_millis(500));
        while !shutdown.is_cancelled() {
            let now = now_millis();
            let lease_until = now + self.settings.lease.as_millis() as i64;
            match self
                .store
                .claim_operation(&self.owner, now, lease_until)
                .await
            {
                Ok(Some(row)) => {
                    let id = row.id.clone();
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        result = self.work_on(row) => if let Err(err) = result {
                            tracing::warn!(operation = %id, error = %err, "operation step failed to save");
                        },
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(jittered(idle)) => {}
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "claiming an operation failed");
                    tokio::time::sleep(jittered(idle * 4)).await;
                }
            }
        }
    }

    /// Runs steps of one claimed operation until it waits, ends or fails, checkpointing after
    /// each; renews the lease meanwhile.
    async fn work_on(&self, row: OperationRow) -> Result<(), Error> {
        let mut op = Operation::try_from(row)?;
        let heartbeat = self.heartbeat(op.id.clone());
        let result = self.advance(&mut op).await;
        heartbeat.cancel();
        result
    }

    fn heartbeat(&self, id: String) -> CancellationToken {
        let stop = CancellationToken::new();
        let (store, owner, lease) = (self.store.clone(), self.owner.clone(), self.settings.lease);
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(lease / 3) => {}
                }
                let until = now_millis() + lease.as_millis() as i64;
                if !matches!(store.renew_lease(&id, &owner, until).await, Ok(true)) {
                    return;
                }
            }
        });
        stop
    }

    async fn advance(&self, op: &mut Operation) -> Result<(), Error> {
        if op.state == OperationState::Cancelling {
            return self
                .finish(op, OperationState::Cancelled, "cancelled")
                .await;
        }
        if op.detail.start_millis.is_none() {
            op.detail.start_millis = Some(now_millis());
        }
        if op.state != OperationState::Running {
            op.detail.attempt += 1;
            op.state = OperationState::Running;
        }
        loop {
            let step = op.detail.step.clone();
            let outcome = match self.run_step(op, &step).await {
                Ok(outcome) => outcome,
                Err(StepError::Vendor(error)) => Outcome::Fail {
                    error,
                    terminal: false,
                },
                Err(StepError::Service(err)) => Outcome::Fail {
                    error: service_failure(op, &err),
                    terminal: matches!(err, Error::InvalidArgument { .. } | Error::NotFound { .. }),
                },
            };
            match outcome {
                Outcome::Next(next) => {
                    self.close_step(op, &step, "SUCCEEDED", "");
                    op.detail.step = next.to_string();
                    self.open_step(op, next);
                    self.save(op, true).await?;
                }
                Outcome::Wait(description) => {
                    op.detail.description = description;
                    op.next_run_millis =
                        now_millis() + jittered(self.settings.poll_interval).as_millis() as i64;
                    return self.save(op, false).await;
                }
                Outcome::Done(description) => {
                    self.close_step(op, &step, "SUCCEEDED", "");
                    op.detail.progress_percent = 100;
                    return self
                        .finish(op, OperationState::Succeeded, &description)
                        .await;
                }
                Outcome::Fail { error, terminal } => {
                    return self.fail(op, &step, error, terminal).await;
                }
            }
        }
    }

    async fn run_step(&self, op: &mut Operation, step: &str) -> Result<Outcome, StepError> {
        let provider = self.providers.get(&op.provider).ok_or_else(|| {
            StepError::Service(Error::Internal(format!(
                "provider {:?} is not configured",
                op.provider
            )))
        })?;
        let ctx = self.context(&op.detail).await?;
        let p = provider.as_ref();
        match op.kind {
            OperationKind::CreateCluster => self.create_cluster(p, &ctx, op, step).await,
            OperationKind::DeleteCluster => self.delete_cluster(p, &ctx, op, step).await,
            OperationKind::UpgradeCluster => self.upgrade_cluster(p, &ctx, op, step).await,
            _ => self.node_pool_step(p, &ctx, op, step).await,
        }
    }

    async fn context(&self, detail: &OperationDetail) -> Result<CallContext, StepError> {
        let credentials = match self.vault.open_secret(&detail.credential_id).await? {
            CredentialSecret::AccessKey {
                access_key_id,
                access_key_secret,
            } => Credentials::AccessKey {
                id: access_key_id,
                secret: access_key_secret,
            },
            CredentialSecret::ApiKey { key_id, token } => Credentials::ApiKey { key_id, token },
            other => {
                return Err(StepError::Service(Error::invalid(
                    "credential_id",
                    format!("a {} credential cannot call a cluster vendor", other.kind()),
                )));
            }
        };
        Ok(CallContext {
            credentials,
            region: detail.region.clone(),
        })
    }

    async fn create_cluster(
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
                let submitted = match p.find_cluster_by_name(ctx, &op.cluster_id).await? {
                    Some(existing) => existing.id,
                    None => {
                        let spec = self.cluster_spec(&op.cluster_id).await?;
                        let done = p.create_cluster(ctx, &op.cluster_id, &spec).await?;
                        remember(&mut op.detail, &done.request_id, &done.task_id);
                        done.object_id
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
                    VendorClusterState::Running => Ok(Outcome::Next("connect")),
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
            "connect" => {
                let kubeconfig = p
                    .fetch_kubeconfig(ctx, &op.detail.vendor_cluster_id)
                    .await?;
                self.importer
                    .attach_vendor_access(&op.cluster_id, kubeconfig)
                    .await?;
                Ok(Outcome::Done("the cluster is running and connected".into()))
            }
            other => Err(unknown_step(other)),
        }
    }

    async fn delete_cluster(
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

    async fn upgrade_cluster(
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

    async fn node_pool_step(
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
                .drain(&None, &op.cluster_id, node, options)
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

    fn open_step(&self, op: &mut Operation, step: &str) {
        op.detail.steps.push(StepRecord {
            id: step.to_string(),
            state: "RUNNING".into(),
            start_millis: now_millis(),
            end_millis: None,
            message: String::new(),
        });
    }

    fn close_step(&self, op: &mut Operation, step: &str, state: &str, message: &str) {
        if let Some(record) = op.detail.steps.iter_mut().rev().find(|s| s.id == step) {
            record.state = state.to_string();
            record.end_millis = Some(now_millis());
            record.message = message.to_string();
        }
        let total = steps_of(op.kind).len().max(1) as i32;
        let done = op
            .detail
            .steps
            .iter()
            .filter(|s| s.state == "SUCCEEDED")
            .count() as i32;
        op.detail.progress_percent = (done * 100 / total).min(99);
    }

    async fn fail(
        &self,
        op: &mut Operation,
        step: &str,
        error: VendorError,
        terminal: bool,
    ) -> Result<(), Error> {
        let now = now_millis();
        let retry = !terminal && error.temporary() && now < op.detail.retry_deadline_millis;
        let failure = OperationFailure::from_vendor(&error, step, retry);
        op.detail.errors.push(failure.clone());
        op.detail.error = Some(failure);
        if retry {
            let backoff = crate::vendor::transport::backoff_delay(
                &crate::vendor::TransportSettings {
                    backoff_base: self.settings.poll_interval,
                    backoff_cap: Duration::from_secs(300),
                    ..Default::default()
                },
                op.detail.attempt.max(1) as u32,
                error.retry_after,
            );
            op.state = OperationState::ErrorRetrying;
            op.next_run_millis = now + backoff.as_millis() as i64;
            op.detail.description = format!("{step} failed ({}); will retry", error.class.as_str());
            tracing::info!(operation = %op.id, step, class = error.class.as_str(), code = %error.code, "operation step failed; retrying later");
            return self.save(op, false).await;
        }
        self.close_step(op, step, "FAILED", &error.message);
        let cluster_state = match op.kind {
            OperationKind::CreateCluster => Some("FAILED"),
            OperationKind::DeleteCluster | OperationKind::UpgradeCluster => Some("RUNNING"),
            _ => None,
        };
        if let Some(state) = cluster_state {
            self.store
                .set_cluster_lifecycle(&op.cluster_id, state, None, now)
                .await?;
        }
        let description = format!("{step} failed: {}", error.message);
        self.finish(op, OperationState::Failed, &description).await
    }

    async fn finish(
        &self,
        op: &mut Operation,
        state: OperationState,
        description: &str,
    ) -> Result<(), Error> {
        op.state = state;
        op.detail.description = description.to_string();
        op.detail.end_millis = Some(now_millis());
        tracing::info!(operation = %op.id, kind = op.kind.as_str(), state = state.as_str(), "operation ended");
        self.save(op, false).await
    }

    /// Checkpoints; `keep_lease` while the worker goes on with the next step.
    async fn save(&self, op: &Operation, keep_lease: bool) -> Result<(), Error> {
        let now = now_millis();
        let mut row = to_row(op, now)?;
        if keep_lease {
            row.lease_owner = Some(self.owner.clone());
            row.lease_expire_time = Some(now + self.settings.lease.as_millis() as i64);
        }
        if !self.store.save_operation(&row, &self.owner).await? {
            return Err(Error::Aborted(format!(
                "lost the lease on operation {}",
                op.id
            )));
        }
        Ok(())
    }
}

/// The steps of each kind, first to last (for progress).
pub fn steps_of(kind: OperationKind) -> &'static [&'static str] {
    match kind {
        OperationKind::CreateCluster => &["submit", "provision", "connect"],
        OperationKind::DeleteCluster => &["submit", "wait", "forget"],
        _ => &["submit", "wait"],
    }
}

enum StepError {
    Vendor(VendorError),
    Service(Error),
}

impl From<VendorError> for StepError {
    fn from(err: VendorError) -> Self {
        StepError::Vendor(err)
    }
}

impl From<Error> for StepError {
    fn from(err: Error) -> Self {
        StepError::Service(err)
    }
}

fn unknown_step(step: &str) -> StepError {
    StepError::Service(Error::Internal(format!("unknown operation step {step:?}")))
}

fn remember(detail: &mut OperationDetail, request_id: &str, task_id: &str) {
    if !request_id.is_empty() {
        detail.vendor_request_ids.push(request_id.to_string());
    }
    detail.vendor_task_id = task_id.to_string();
}

fn failed_at_vendor(vendor: &'static str, operation: &'static str, message: &str) -> Outcome {
    Outcome::Fail {
        error: VendorError::new(
            ErrorClass::Unknown,
            vendor,
            operation,
            "VendorFailed",
            message,
        ),
        terminal: true,
    }
}

/// A failure of ours (database, Kubernetes) in the vendor-neutral shape.
fn service_failure(op: &Operation, err: &Error) -> VendorError {
    let class = match err {
        Error::Unavailable { .. } => ErrorClass::DependencyPending,
        Error::InvalidArgument { .. } | Error::InvalidFields { .. } => {
            ErrorClass::InvalidConfiguration
        }
        _ => ErrorClass::Unknown,
    };
    let message = match err {
        Error::Internal(_) => "an internal error; see the server log".to_string(),
        other => other.to_string(),
    };
    if let Error::Internal(detail) = err {
        tracing::error!(operation = %op.id, error = %detail, "operation step failed");
    }
    VendorError::new(class, "flotilla", "step", "", message)
}

/// Whether a vendor's version string is the requested one ("1.33.1-aliyun.1" is "1.33.1";
/// "v1.33.1+rke2r1" is "1.33.1").
pub fn same_version(vendor: &str, wanted: &str) -> bool {
    let core = |v: &str| {
        v.trim_start_matches('v')
            .split(['-', '+'])
            .next()
            .unwrap_or_default()
            .to_string()
    };
    !vendor.is_empty() && core(vendor) == core(wanted)
}

fn decode_pool_spec(encoded: &str) -> Result<NodePoolSpec, StepError> {
    STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| NodePoolSpec::decode(bytes.as_slice()).ok())
        .ok_or_else(|| StepError::Service(Error::Internal("bad stored node pool spec".into())))
}

fn jittered(base: Duration) -> Duration {
    base.mul_f64(0.8 + 0.4 * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_on_their_core() {
        assert!(same_version("1.33.1-aliyun.1", "1.33.1"));
        assert!(same_version("v1.33.1+rke2r1", "1.33.1"));
        assert!(!same_version("1.32.1-aliyun.1", "1.33.1"));
        assert!(!same_version("", "1.33.1"));
    }
}
