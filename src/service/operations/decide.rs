//! What each step decides, without I/O. A step's I/O half (in `worker/steps.rs`) asks the vendor,
//! the database or Kubernetes, and hands what it saw to a function here, which says what happens
//! next. Tested like an index: feed an observation, assert the outcome.
//!
//! The wording of `Wait`/`Done` descriptions is stored in the operation and shown to people, so
//! it lives here with the decision that produces it.

use crate::adapters::{
    VendorError,
    cluster::{
        NodePoolResize, TaskStatus, VendorCluster, VendorClusterState, VendorNodePool,
        VendorNodePoolState,
    },
};
use crate::kube::drain::DrainEvent;
use crate::service::{Error, operations::OperationInput};

use super::{Step, StepFailure};

/// What one step decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// This step is done; go on with `Step` now.
    Next(Step),
    /// Not done yet; look again after the poll interval. The text is the description.
    Wait(String),
    /// The operation is done. The text is the description.
    Done(String),
    /// The step failed; the retry rules (`retry::on_failure`) decide what follows.
    Fail(StepFailure),
}

// ---- any step that polls a vendor task -----------------------------------------------------

/// After polling the vendor's task: `None` when it succeeded, so the step goes on to look at the
/// object itself.
pub fn after_task(task: &TaskStatus) -> Option<Outcome> {
    match task {
        TaskStatus::Succeeded => None,
        TaskStatus::Running { stage, .. } => {
            Some(Outcome::Wait(format!("vendor task running: {stage}")))
        }
        TaskStatus::Failed(error) => Some(Outcome::Fail(StepFailure::task_failed(error.clone()))),
    }
}

// ---- create cluster -------------------------------------------------------------------------

/// `submit` of a create: the vendor cluster found by the operation's name, if any, is the one an
/// earlier attempt made (ACK and TKE creates have no idempotency token), whatever its state.
pub fn reuse_cluster(found: Option<VendorCluster>) -> Option<String> {
    found.map(|cluster| cluster.id)
}

/// `provision`: after looking at the new cluster.
pub fn after_provision(cluster: &VendorCluster) -> Outcome {
    match cluster.state {
        VendorClusterState::Running => Outcome::Next(Step::NodePools),
        VendorClusterState::Failed | VendorClusterState::Deleted => {
            Outcome::Fail(StepFailure::vendor_reports_failed(format!(
                "the vendor reports the cluster as {:?}",
                cluster.raw_state
            )))
        }
        VendorClusterState::Creating
        | VendorClusterState::Updating
        | VendorClusterState::Deleting
        | VendorClusterState::Other => Outcome::Wait(format!(
            "the vendor is creating the cluster (state {:?})",
            cluster.raw_state
        )),
    }
}

/// `node_pools`: whether there is anything to do. The spec's pools are made only by providers
/// that make pools; the others made them with the cluster (or have none).
pub fn spec_pools_needed(wanted: usize, provider_creates_pools: bool) -> Option<Outcome> {
    (wanted == 0 || !provider_creates_pools).then_some(Outcome::Next(Step::Connect))
}

/// `node_pools`: one pool of the spec, matched by name against what the vendor has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecPool {
    /// Not there: create it.
    Missing,
    Ready,
    /// There, not running yet; the text is "name (raw state)".
    Pending(String),
    /// The vendor says it failed: the operation fails, no further pool is made.
    Failed(StepFailure),
}

pub fn spec_pool(name: &str, existing: &[VendorNodePool]) -> SpecPool {
    match existing.iter().find(|pool| pool.name == name) {
        None => SpecPool::Missing,
        Some(pool) => match pool.state {
            VendorNodePoolState::Running => SpecPool::Ready,
            VendorNodePoolState::Failed => SpecPool::Failed(StepFailure::vendor_reports_failed(
                format!("node pool {name:?} failed at the vendor"),
            )),
            VendorNodePoolState::Creating
            | VendorNodePoolState::Scaling
            | VendorNodePoolState::Updating
            | VendorNodePoolState::Deleting
            | VendorNodePoolState::Deleted => {
                SpecPool::Pending(format!("{} ({})", pool.name, pool.raw_state))
            }
        },
    }
}

/// How a pool this step just created is listed among those waited for.
pub fn created_pool(name: &str) -> String {
    format!("{name} (created)")
}

/// `node_pools`: after going through the spec's pools; `waiting` are the pools not running yet.
pub fn after_spec_pools(waiting: &[String]) -> Outcome {
    if waiting.is_empty() {
        return Outcome::Next(Step::Connect);
    }
    Outcome::Wait(format!("waiting for node pools: {}", waiting.join(", ")))
}

/// `connect`: the kubeconfig, or what to do without it. A public endpoint the spec asked for
/// takes a while to open, so "pending" waits; any other failure is the vendor call's.
pub fn after_kubeconfig<K>(fetched: Result<K, VendorError>) -> Result<K, Outcome> {
    match fetched {
        Ok(kubeconfig) => Ok(kubeconfig),
        Err(err) if err.class == crate::adapters::ErrorClass::DependencyPending => {
            Err(Outcome::Wait(format!(
                "waiting for the vendor to open the API endpoint: {}",
                err.message
            )))
        }
        Err(err) => Err(Outcome::Fail(StepFailure::from_vendor(err))),
    }
}

/// `connect`: once the cluster is attached.
pub fn connected() -> Outcome {
    Outcome::Done("the cluster is running and connected".into())
}

// ---- delete cluster -------------------------------------------------------------------------

/// `submit` of a delete, before any call: a cluster the vendor never made (its create failed
/// before submitting) only needs forgetting.
pub fn before_delete(vendor_cluster_id: &str) -> Option<Outcome> {
    vendor_cluster_id
        .is_empty()
        .then_some(Outcome::Next(Step::Forget))
}

/// `submit` of a delete, after asking the vendor: a cluster already gone is deleted.
pub fn after_delete_request(sent: Result<(), VendorError>) -> Outcome {
    match sent {
        Ok(()) => Outcome::Next(Step::Wait),
        Err(err) if err.is_not_found() => Outcome::Next(Step::Forget),
        Err(err) => Outcome::Fail(StepFailure::from_vendor(err)),
    }
}

/// `wait` of a delete: after looking the cluster up.
pub fn after_delete_wait(observed: Result<&VendorCluster, VendorError>) -> Outcome {
    match observed {
        Err(err) if err.is_not_found() => Outcome::Next(Step::Forget),
        Err(err) => Outcome::Fail(StepFailure::from_vendor(err)),
        Ok(cluster) => match cluster.state {
            VendorClusterState::Deleted => Outcome::Next(Step::Forget),
            VendorClusterState::Failed => Outcome::Fail(StepFailure::vendor_reports_failed(
                format!("the vendor reports the cluster as {:?}", cluster.raw_state),
            )),
            VendorClusterState::Creating
            | VendorClusterState::Running
            | VendorClusterState::Updating
            | VendorClusterState::Deleting
            | VendorClusterState::Other => Outcome::Wait(format!(
                "the vendor is deleting the cluster (state {:?})",
                cluster.raw_state
            )),
        },
    }
}

/// `forget`: after detaching the cluster here; one already gone is forgotten. Other errors go
/// back to the worker, which classifies (and logs) service errors.
pub fn after_forget(detached: Result<(), Error>) -> Result<Outcome, Error> {
    match detached {
        Ok(()) | Err(Error::NotFound { .. }) => {
            Ok(Outcome::Done("deleted at the vendor and forgotten".into()))
        }
        Err(err) => Err(err),
    }
}

// ---- upgrade cluster ------------------------------------------------------------------------

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

/// `submit` of an upgrade: ask only when the cluster is not at the version yet, so a retried
/// submit after the vendor has upgraded asks nothing.
pub fn upgrade_needed(cluster: &VendorCluster, version: &str) -> bool {
    !same_version(&cluster.kubernetes_version, version)
}

/// `wait` of an upgrade: done when the cluster runs the requested version.
pub fn after_upgrade(cluster: &VendorCluster, version: &str) -> Outcome {
    if cluster.state == VendorClusterState::Running
        && same_version(&cluster.kubernetes_version, version)
    {
        return Outcome::Done(format!("upgraded to {version}"));
    }
    if cluster.state == VendorClusterState::Failed {
        return Outcome::Fail(StepFailure::vendor_reports_failed(
            "the vendor reports the cluster failed",
        ));
    }
    Outcome::Wait(format!(
        "the vendor is upgrading the cluster to {version} (state {:?}, version {:?})",
        cluster.raw_state, cluster.kubernetes_version
    ))
}

// ---- node pool operations -------------------------------------------------------------------

/// `submit` of a pool create: the pool of that name is the one an earlier attempt made.
pub fn reuse_pool(pools: &[VendorNodePool], name: &str) -> Option<String> {
    pools
        .iter()
        .find(|pool| pool.name == name)
        .map(|pool| pool.id.clone())
}

/// `submit` of a pool update: the target sizes (not deltas, so a repeated call adds nothing).
pub fn resize_of(input: &OperationInput) -> Option<NodePoolResize> {
    match input {
        OperationInput::UpdateNodePool {
            desired_size,
            min_size,
            max_size,
            autoscaling,
            ..
        } => Some(NodePoolResize {
            desired_size: *desired_size,
            min_size: *min_size,
            max_size: *max_size,
            autoscaling: *autoscaling,
        }),
        _ => None,
    }
}

/// `submit` of a pool delete, after asking the vendor: a pool already gone is being deleted.
pub fn after_pool_delete_request(sent: Result<(), VendorError>) -> Outcome {
    match sent {
        Ok(()) => Outcome::Next(Step::Wait),
        Err(err) if err.is_not_found() => Outcome::Next(Step::Wait),
        Err(err) => Outcome::Fail(StepFailure::from_vendor(err)),
    }
}

/// Removing nodes: a drain event that ends the drain incomplete fails the step.
pub fn after_drain_event(node: &str, event: &DrainEvent) -> Option<StepFailure> {
    match event {
        DrainEvent::Done {
            complete: false,
            blocked,
            failed,
            ..
        } => Some(StepFailure::drain_incomplete(node, *blocked, *failed)),
        DrainEvent::Done { complete: true, .. } | DrainEvent::Pod { .. } => None,
    }
}

/// The pool a node pool operation waits on: the one it created, or the one it names. `None` for
/// inputs that are not node pool operations.
pub fn target_pool<'a>(input: &'a OperationInput, created_pool_id: &'a str) -> Option<&'a str> {
    match input {
        OperationInput::CreateNodePool { .. } => Some(created_pool_id),
        OperationInput::UpdateNodePool { pool_id, .. }
        | OperationInput::DeleteNodePool { pool_id }
        | OperationInput::AddNodes { pool_id, .. }
        | OperationInput::RemoveNodes { pool_id, .. } => Some(pool_id),
        OperationInput::CreateCluster
        | OperationInput::DeleteCluster
        | OperationInput::UpgradeCluster { .. }
        | OperationInput::RenewPullSecret { .. } => None,
    }
}

/// The pool with `pool_id` among those listed, unless the vendor reports it deleted.
pub fn live_pool<'a>(pools: &'a [VendorNodePool], pool_id: &str) -> Option<&'a VendorNodePool> {
    pools
        .iter()
        .find(|pool| pool.id == pool_id)
        .filter(|pool| pool.state != VendorNodePoolState::Deleted)
}

/// `wait` of a node pool operation, after looking for its pool (`live_pool`).
pub fn after_pool_wait(
    input: &OperationInput,
    pool_id: &str,
    pool: Option<&VendorNodePool>,
) -> Outcome {
    let deleting = matches!(input, OperationInput::DeleteNodePool { .. });
    let Some(pool) = pool else {
        return if deleting {
            Outcome::Done("node pool deleted".into())
        } else {
            Outcome::Fail(StepFailure::vendor_reports_failed(format!(
                "node pool {pool_id:?} is gone"
            )))
        };
    };
    if pool.state == VendorNodePoolState::Failed {
        return Outcome::Fail(StepFailure::vendor_reports_failed(format!(
            "node pool state {:?}",
            pool.raw_state
        )));
    }
    // A resize is done when the vendor keeps the new size, not merely when the pool runs (it
    // runs before the vendor has started scaling). A delete is done only when the pool is gone.
    let settled = pool.state == VendorNodePoolState::Running
        && match input {
            OperationInput::UpdateNodePool {
                desired_size: Some(size),
                ..
            } => pool.desired_size == *size,
            _ => !deleting,
        };
    if settled {
        return Outcome::Done(format!(
            "node pool {} is {} with {} nodes",
            pool.id, pool.raw_state, pool.desired_size
        ));
    }
    Outcome::Wait(format!(
        "waiting for node pool {} (state {:?}, desired {})",
        pool.id, pool.raw_state, pool.desired_size
    ))
}

/// The tests are many (every step, every observation), so they have a file of their own.
#[cfg(test)]
mod tests;
