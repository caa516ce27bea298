//! The operation worker: claims due operations under a lease, runs their steps against the
//! vendor, and checkpoints after every step, so any replica can resume an operation after a
//! crash or restart from what is stored.
//!
//! Every step is safe to run again: creates look the object up by name first (ACK has no
//! idempotency token), resizes are target-based, deletes treat "not found" as done.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use prost::Message;
use tokio_util::sync::CancellationToken;

mod steps;

use crate::service::{
    Error,
    clusters::ClusterCatalog,
    clusters::import::ClusterImporter,
    operations::{
        Operation, OperationDetail, OperationFailure, OperationKind, OperationState, Step,
        StepFailure, StepRecord, StepState,
        decide::Outcome,
        pulse::WorkerPulse,
        retry::{self, AfterFailure, Backoff},
        to_row,
    },
    registries::pull_secret_renewal::PullSecretRenewal,
    secrets::credentials::CredentialVault,
    workloads::WorkloadQueries,
};
use crate::{
    adapters::{
        CallContext, VendorError,
        cluster::{ClusterProvider, NodePoolSpec, ProviderRegistry},
    },
    config::OperationSettings,
    store::{OperationRow, Store, now_millis},
};

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
    /// Runs the steps of pull secret renewals (registry work: no cluster provider).
    pull_secrets: OnceLock<Arc<PullSecretRenewal>>,
    /// Beats while the claim loops make progress; read by the health checks.
    pulse: WorkerPulse,
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
            pull_secrets: OnceLock::new(),
            pulse: WorkerPulse::default(),
        }
    }

    /// The heartbeat of this worker's claim loops.
    pub fn pulse(&self) -> WorkerPulse {
        self.pulse.clone()
    }

    /// How long without a beat counts as a stall: three leases (a running operation's lease
    /// is renewed, and the pulse beaten, every third of one), and never under 30 seconds.
    pub fn stall_limit(&self) -> Duration {
        (self.settings.lease * 3).max(Duration::from_secs(30))
    }

    /// Lets this worker run `RENEW_PULL_SECRET` operations (the wiring calls it once).
    pub fn serve_pull_secrets(&self, renewal: Arc<PullSecretRenewal>) {
        let _ = self.pull_secrets.set(renewal);
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
        let _running = self.pulse.enter_loop();
        while !shutdown.is_cancelled() {
            self.pulse.beat();
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
        let pulse = self.pulse.clone();
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
                // A long step is progress, not a stall.
                pulse.beat();
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
        if op.detail.steps.is_empty() {
            let first = op.detail.step;
            open_step(op, first);
        }
        // The provider and the opened credential serve every step of this claim. Registry
        // work (pull secret renewal) has neither.
        let prepared = if op.kind == OperationKind::RenewPullSecret {
            None
        } else {
            match self.prepare(&op.detail, &op.provider).await {
                Ok(ready) => Some(ready),
                Err(err) => {
                    let step = op.detail.step;
                    let failure = failure_of(op, err);
                    return self.fail(op, step, failure).await;
                }
            }
        };
        loop {
            let step = op.detail.step;
            let result = match &prepared {
                Some((provider, ctx)) => self.run_step(provider.as_ref(), ctx, op, step).await,
                None => self.run_registry_step(op, step).await,
            };
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(err) => Outcome::Fail(failure_of(op, err)),
            };
            match outcome {
                Outcome::Next(next) => {
                    close_step(op, step, StepState::Succeeded, "");
                    op.detail.step = next;
                    open_step(op, next);
                    self.save(op, true).await?;
                }
                Outcome::Wait(description) => {
                    op.detail.description = description;
                    op.next_run_millis =
                        now_millis() + jittered(self.settings.poll_interval).as_millis() as i64;
                    return self.save(op, false).await;
                }
                Outcome::Done(description) => {
                    close_step(op, step, StepState::Succeeded, "");
                    op.detail.progress_percent = 100;
                    return self
                        .finish(op, OperationState::Succeeded, &description)
                        .await;
                }
                Outcome::Fail(failure) => {
                    return self.fail(op, step, failure).await;
                }
            }
        }
    }

    async fn run_step(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: Step,
    ) -> Result<Outcome, StepError> {
        match op.kind {
            OperationKind::CreateCluster => self.create_cluster(p, ctx, op, step).await,
            OperationKind::DeleteCluster => self.delete_cluster(p, ctx, op, step).await,
            OperationKind::UpgradeCluster => self.upgrade_cluster(p, ctx, op, step).await,
            OperationKind::CreateNodePool
            | OperationKind::UpdateNodePool
            | OperationKind::DeleteNodePool
            | OperationKind::AddNodes
            | OperationKind::RemoveNodes => self.node_pool_step(p, ctx, op, step).await,
            OperationKind::RenewPullSecret => Err(misplaced(op.kind, "a cluster provider")),
        }
    }

    async fn run_registry_step(
        &self,
        op: &mut Operation,
        step: Step,
    ) -> Result<Outcome, StepError> {
        let renewal = self.pull_secrets.get().ok_or_else(|| {
            StepError::Service(Error::Internal(
                "pull secret renewal is not wired into this worker".into(),
            ))
        })?;
        Ok(renewal.run_step(op, step).await?)
    }

    async fn prepare(
        &self,
        detail: &OperationDetail,
        provider: &str,
    ) -> Result<(Arc<dyn ClusterProvider>, CallContext), StepError> {
        let provider = self.providers.get(provider).ok_or_else(|| {
            StepError::Service(Error::Internal(format!(
                "provider {provider:?} is not configured"
            )))
        })?;
        let ctx = CallContext {
            credentials: self.vault.vendor_credentials(&detail.credential_id).await?,
            region: detail.region.clone(),
        };
        Ok((provider, ctx))
    }

    /// Records a failed step; the retry rules decide whether it runs again later or the
    /// operation fails.
    async fn fail(
        &self,
        op: &mut Operation,
        step: Step,
        failure: StepFailure,
    ) -> Result<(), Error> {
        let now = now_millis();
        let after = retry::on_failure(
            &failure,
            op.detail.attempt,
            op.detail.retry_deadline_millis,
            now,
            Backoff::from_poll_interval(self.settings.poll_interval),
            fastrand::f64(),
        );
        let retrying = matches!(after, AfterFailure::RetryIn(_));
        let record = OperationFailure::record(&failure, step, retrying, now);
        op.detail.errors.push(record.clone());
        op.detail.error = Some(record);
        if let AfterFailure::RetryIn(backoff) = after {
            op.state = OperationState::ErrorRetrying;
            op.next_run_millis = now + backoff.as_millis() as i64;
            op.detail.description =
                format!("{step} failed ({}); will retry", failure.class.as_str());
            tracing::info!(operation = %op.id, step = step.as_str(), class = failure.class.as_str(), code = %failure.code, "operation step failed; retrying later");
            return self.save(op, false).await;
        }
        close_step(op, step, StepState::Failed, &failure.message);
        if let Some(state) = retry::cluster_state_after_failure(op.kind) {
            self.store
                .set_cluster_lifecycle(&op.cluster_id, state.as_str(), None, now)
                .await?;
        }
        let description = format!("{step} failed: {}", failure.message);
        self.finish(op, OperationState::Failed, &description).await
    }

    async fn finish(
        &self,
        op: &mut Operation,
        state: OperationState,
        description: &str,
    ) -> Result<(), Error> {
        op.state = state;
        if state == OperationState::Succeeded {
            // Earlier failed attempts stay in `errors`; the current error is gone (Gardener's
            // ErrorCleaner).
            op.detail.error = None;
        }
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

fn open_step(op: &mut Operation, step: Step) {
    op.detail.steps.push(StepRecord {
        id: step,
        state: StepState::Running,
        start_millis: now_millis(),
        end_millis: None,
        message: String::new(),
    });
}

fn close_step(op: &mut Operation, step: Step, state: StepState, message: &str) {
    if let Some(record) = op.detail.steps.iter_mut().rev().find(|s| s.id == step) {
        record.state = state;
        record.end_millis = Some(now_millis());
        record.message = message.to_string();
    }
    op.detail.progress_percent = retry::progress_percent(op.kind, &op.detail.steps);
}

/// How a step's I/O fails: a failure already in the engine's terms, or an error of ours that
/// `failure_of` classifies.
enum StepError {
    Failure(StepFailure),
    Service(Error),
}

impl From<VendorError> for StepError {
    fn from(err: VendorError) -> Self {
        StepError::Failure(StepFailure::from_vendor(err))
    }
}

impl From<StepFailure> for StepError {
    fn from(failure: StepFailure) -> Self {
        StepError::Failure(failure)
    }
}

impl From<Error> for StepError {
    fn from(err: Error) -> Self {
        StepError::Service(err)
    }
}

/// The engine's failure for a step's error; internal errors are logged here, in full, once.
fn failure_of(op: &Operation, err: StepError) -> StepFailure {
    match err {
        StepError::Failure(failure) => failure,
        StepError::Service(err) => {
            if let Error::Internal(detail) = &err {
                tracing::error!(operation = %op.id, error = %detail, "operation step failed");
            }
            StepFailure::from_service(&err)
        }
    }
}

/// A step the operation's kind does not have, or an input of another kind: stored data this
/// code did not write.
fn misplaced(kind: OperationKind, what: impl std::fmt::Display) -> StepError {
    StepError::Service(Error::Internal(format!(
        "{what} does not belong to a {} operation",
        kind.as_str()
    )))
}

fn remember(detail: &mut OperationDetail, request_id: &str, task_id: &str) {
    if !request_id.is_empty() {
        detail.vendor_request_ids.push(request_id.to_string());
    }
    detail.vendor_task_id = task_id.to_string();
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
