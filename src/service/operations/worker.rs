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

mod steps;

use crate::service::{
    Error,
    clusters::ClusterCatalog,
    clusters::import::ClusterImporter,
    operations::{
        Operation, OperationDetail, OperationFailure, OperationKind, OperationState, StepRecord,
        to_row,
    },
    secrets::credentials::CredentialVault,
    workloads::WorkloadQueries,
};
use crate::{
    adapters::{
        CallContext, ErrorClass, VendorError,
        cluster::{ClusterProvider, ClusterSpec, NodePoolSpec, ProviderRegistry},
    },
    config::OperationSettings,
    store::{OperationRow, Store, now_millis},
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
        if op.detail.steps.is_empty() {
            let first = op.detail.step.clone();
            self.open_step(op, &first);
        }
        // The provider and the opened credential serve every step of this claim.
        let (provider, ctx) = match self.prepare(&op.detail, &op.provider).await {
            Ok(ready) => ready,
            Err(err) => {
                let step = op.detail.step.clone();
                let (error, terminal) = classify(op, err);
                return self.fail(op, &step, error, terminal).await;
            }
        };
        loop {
            let step = op.detail.step.clone();
            let outcome = match self.run_step(provider.as_ref(), &ctx, op, &step).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    let (error, terminal) = classify(op, err);
                    Outcome::Fail { error, terminal }
                }
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

    async fn run_step(
        &self,
        p: &dyn ClusterProvider,
        ctx: &CallContext,
        op: &mut Operation,
        step: &str,
    ) -> Result<Outcome, StepError> {
        match op.kind {
            OperationKind::CreateCluster => self.create_cluster(p, ctx, op, step).await,
            OperationKind::DeleteCluster => self.delete_cluster(p, ctx, op, step).await,
            OperationKind::UpgradeCluster => self.upgrade_cluster(p, ctx, op, step).await,
            _ => self.node_pool_step(p, ctx, op, step).await,
        }
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
            let backoff = crate::adapters::transport::backoff_delay(
                &crate::adapters::TransportSettings {
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

/// The steps of each kind, first to last (for progress).
pub fn steps_of(kind: OperationKind) -> &'static [&'static str] {
    match kind {
        OperationKind::CreateCluster => &["submit", "provision", "node_pools", "connect"],
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

/// A step's failure in the vendor-neutral shape, and whether it is final.
fn classify(op: &Operation, err: StepError) -> (VendorError, bool) {
    match err {
        StepError::Vendor(error) => (error, false),
        StepError::Service(err) => (
            service_failure(op, &err),
            matches!(
                err,
                Error::InvalidArgument { .. }
                    | Error::NotFound { .. }
                    | Error::FailedPrecondition { .. }
            ),
        ),
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

/// The vendor cluster a create adopts instead of making one (Rancher's existing clusters).
fn adopted_cluster(spec: &ClusterSpec) -> Option<String> {
    match &spec.provider_config {
        Some(crate::proto::cluster_spec::ProviderConfig::Rancher(rancher))
            if !rancher.rancher_cluster_id.is_empty() =>
        {
            Some(rancher.rancher_cluster_id.clone())
        }
        _ => None,
    }
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
