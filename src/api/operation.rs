//! `flotilla.v1.OperationService`, and the conversions of operations, providers and node pools
//! used by the cluster and node handlers.

use std::sync::Arc;

use futures::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::{
    convert::timestamp,
    pb::{self, operation_service_server::OperationService},
};
use crate::{
    adapters::cluster::{Capability, VendorNodePoolState},
    auth::{Principal, audit, cluster_scope},
    service::{
        Error,
        lifecycle::{PoolStatus, Requester},
        operations::{
            ListOperations, Operation, OperationBook, OperationFailure, OperationKind,
            OperationState,
        },
        streams::{StreamKind, StreamSessions},
    },
};

pub struct OperationApi {
    book: Arc<OperationBook>,
    retry_window: std::time::Duration,
    streams: Arc<StreamSessions>,
}

impl OperationApi {
    pub fn new(
        book: Arc<OperationBook>,
        retry_window: std::time::Duration,
        streams: Arc<StreamSessions>,
    ) -> Self {
        OperationApi {
            book,
            retry_window,
            streams,
        }
    }

    /// The operation, if the caller may see its cluster (NOT_FOUND otherwise, like a missing one).
    async fn visible_operation<T>(
        &self,
        request: &Request<T>,
        id: &str,
    ) -> Result<Operation, Status> {
        Ok(self.book.get_visible(&cluster_scope(request), id).await?)
    }
}

#[tonic::async_trait]
impl OperationService for OperationApi {
    async fn get_operation(
        &self,
        request: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::GetOperationResponse>, Status> {
        let op = self
            .visible_operation(&request, &request.get_ref().operation_id)
            .await?;
        Ok(Response::new(pb::GetOperationResponse {
            operation: Some(op.into()),
        }))
    }

    async fn list_operations(
        &self,
        request: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let list = self
            .book
            .list(&ListOperations {
                page_size: r.page_size,
                page_token: r.page_token,
                resource: r.resource,
                states: r
                    .states
                    .iter()
                    .map(|s| state_from_pb(*s, "states"))
                    .collect::<Result<_, _>>()?,
                kinds: r
                    .types
                    .iter()
                    .map(|t| kind_from_pb(*t))
                    .collect::<Result<_, _>>()?,
                cluster_ids: scope.clusters,
            })
            .await?;
        Ok(Response::new(pb::ListOperationsResponse {
            operations: list.operations.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }

    async fn watch_operation(
        &self,
        request: Request<pb::WatchOperationRequest>,
    ) -> Result<Response<BoxStream<pb::WatchOperationResponse>>, Status> {
        let op = self
            .visible_operation(&request, &request.get_ref().operation_id)
            .await?;
        // Counted against the caller's stream cap, and ended when its token is revoked.
        let permit = self
            .streams
            .open(&cluster_scope(&request), StreamKind::Operation)?;
        let stream = permit.guard(self.book.watch(op)).map(|item| {
            item.map(|op| pb::WatchOperationResponse {
                operation: Some(op.into()),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_operation(
        &self,
        request: Request<pb::CancelOperationRequest>,
    ) -> Result<Response<pb::CancelOperationResponse>, Status> {
        let op = self
            .visible_operation(&request, &request.get_ref().operation_id)
            .await?;
        audit::note(&request, &op.cluster_id, &op.id);
        let op = self.book.cancel(&op.id).await?;
        Ok(Response::new(pb::CancelOperationResponse {
            operation: Some(op.into()),
        }))
    }

    async fn retry_operation(
        &self,
        request: Request<pb::RetryOperationRequest>,
    ) -> Result<Response<pb::RetryOperationResponse>, Status> {
        let op = self
            .visible_operation(&request, &request.get_ref().operation_id)
            .await?;
        audit::note(&request, &op.cluster_id, &op.id);
        let op = self.book.retry(&op.id, self.retry_window).await?;
        Ok(Response::new(pb::RetryOperationResponse {
            operation: Some(op.into()),
        }))
    }
}

/// Who is calling, and the idempotency key they sent.
pub fn requester<T>(request: &Request<T>, request_id: &str) -> Requester {
    let principal = request.extensions().get::<Principal>();
    Requester {
        principal: principal.map(|p| p.name.clone()).unwrap_or_default(),
        token_id: principal.map(|p| p.token_id.clone()).unwrap_or_default(),
        request_id: request_id.to_string(),
    }
}

fn state_from_pb(value: i32, field: &str) -> Result<OperationState, Status> {
    use pb::OperationState as P;
    let state = match P::try_from(value) {
        Ok(P::Pending) => OperationState::Pending,
        Ok(P::Running) => OperationState::Running,
        Ok(P::Succeeded) => OperationState::Succeeded,
        Ok(P::ErrorRetrying) => OperationState::ErrorRetrying,
        Ok(P::Failed) => OperationState::Failed,
        Ok(P::Cancelling) => OperationState::Cancelling,
        Ok(P::Cancelled) => OperationState::Cancelled,
        _ => {
            return Err(Error::invalid(field, format!("{value} is not an operation state")).into());
        }
    };
    Ok(state)
}

fn kind_from_pb(value: i32) -> Result<OperationKind, Status> {
    use pb::OperationType as P;
    let kind = match P::try_from(value) {
        Ok(P::CreateCluster) => OperationKind::CreateCluster,
        Ok(P::DeleteCluster) => OperationKind::DeleteCluster,
        Ok(P::UpgradeCluster) => OperationKind::UpgradeCluster,
        Ok(P::CreateNodePool) => OperationKind::CreateNodePool,
        Ok(P::UpdateNodePool) => OperationKind::UpdateNodePool,
        Ok(P::DeleteNodePool) => OperationKind::DeleteNodePool,
        Ok(P::AddNodes) => OperationKind::AddNodes,
        Ok(P::RemoveNodes) => OperationKind::RemoveNodes,
        Ok(P::RenewPullSecret) => OperationKind::RenewPullSecret,
        _ => {
            return Err(
                Error::invalid("types", format!("{value} is not an operation type")).into(),
            );
        }
    };
    Ok(kind)
}

fn kind_to_pb(kind: OperationKind) -> pb::OperationType {
    use pb::OperationType as P;
    match kind {
        OperationKind::CreateCluster => P::CreateCluster,
        OperationKind::DeleteCluster => P::DeleteCluster,
        OperationKind::UpgradeCluster => P::UpgradeCluster,
        OperationKind::CreateNodePool => P::CreateNodePool,
        OperationKind::UpdateNodePool => P::UpdateNodePool,
        OperationKind::DeleteNodePool => P::DeleteNodePool,
        OperationKind::AddNodes => P::AddNodes,
        OperationKind::RemoveNodes => P::RemoveNodes,
        OperationKind::RenewPullSecret => P::RenewPullSecret,
    }
}

fn state_to_pb(state: &str) -> pb::OperationState {
    use pb::OperationState as P;
    match OperationState::parse(state) {
        Some(OperationState::Pending) => P::Pending,
        Some(OperationState::Running) => P::Running,
        Some(OperationState::Succeeded) => P::Succeeded,
        Some(OperationState::ErrorRetrying) => P::ErrorRetrying,
        Some(OperationState::Failed) => P::Failed,
        Some(OperationState::Cancelling) => P::Cancelling,
        Some(OperationState::Cancelled) => P::Cancelled,
        None => P::Unspecified,
    }
}

fn class_to_pb(failure: &OperationFailure) -> pb::ErrorClass {
    use crate::adapters::ErrorClass as C;
    use pb::ErrorClass as P;
    match failure.class {
        C::CredentialsInvalid => P::CredentialsInvalid,
        C::CredentialsForbidden => P::CredentialsForbidden,
        C::QuotaExceeded => P::QuotaExceeded,
        C::RateLimited => P::RateLimited,
        C::DependencyBlocked => P::DependencyBlocked,
        C::DependencyPending => P::DependencyPending,
        C::CapacityUnavailable => P::CapacityUnavailable,
        C::InvalidConfiguration | C::Unsupported => P::InvalidConfiguration,
        C::TransientConfiguration => P::TransientConfiguration,
        C::CleanupBlocked => P::CleanupBlocked,
        C::WebhookBlocking => P::WebhookBlocking,
        C::VendorNotFound => P::VendorNotFound,
        C::VendorUnavailable => P::VendorUnavailable,
        C::Timeout => P::Timeout,
        C::Unknown => P::Unknown,
    }
}

impl From<&OperationFailure> for pb::OperationError {
    fn from(f: &OperationFailure) -> Self {
        pb::OperationError {
            error_class: class_to_pb(f) as i32,
            retryable: f.retryable,
            vendor_code: f.vendor_code.clone(),
            vendor_message: f.vendor_message.clone(),
            vendor_request_id: f.vendor_request_id.clone(),
            vendor_http_status: i32::from(f.vendor_http_status),
            step: f.step.as_str().into(),
            retry_after: f.retry_after_millis.map(|ms| prost_types::Duration {
                seconds: (ms / 1000) as i64,
                nanos: ((ms % 1000) * 1_000_000) as i32,
            }),
            time: Some(timestamp(f.time_millis)),
        }
    }
}

impl From<Operation> for pb::Operation {
    fn from(op: Operation) -> Self {
        let d = &op.detail;
        let waiting = matches!(
            op.state,
            OperationState::ErrorRetrying | OperationState::Pending
        );
        pb::Operation {
            id: op.id.clone(),
            resource: op.resource.clone(),
            r#type: kind_to_pb(op.kind) as i32,
            state: state_to_pb(op.state.as_str()) as i32,
            progress_percent: d.progress_percent,
            description: d.description.clone(),
            current_step: d.step.as_str().into(),
            steps: d
                .steps
                .iter()
                .map(|s| pb::OperationStep {
                    id: s.id.as_str().into(),
                    state: state_to_pb(s.state.as_str()) as i32,
                    start_time: Some(timestamp(s.start_millis)),
                    end_time: s.end_millis.map(timestamp),
                    message: s.message.clone(),
                })
                .collect(),
            provider: op.provider.clone(),
            vendor_task_id: d.vendor_task_id.clone(),
            vendor_state: d.vendor_state.clone(),
            error: d.error.as_ref().map(Into::into),
            errors: d.errors.iter().map(Into::into).collect(),
            attempt: d.attempt,
            create_time: Some(timestamp(op.create_millis)),
            start_time: d.start_millis.map(timestamp),
            update_time: Some(timestamp(op.update_millis)),
            end_time: d.end_millis.map(timestamp),
            retry_deadline: Some(timestamp(d.retry_deadline_millis)),
            next_retry_time: (waiting && op.state == OperationState::ErrorRetrying)
                .then(|| timestamp(op.next_run_millis)),
            cancellable: op.cancellable(),
            requested_by: op.requested_by.clone(),
            request_id: op.request_id.clone(),
            vendor_request_ids: d.vendor_request_ids.clone(),
            etag: op.etag(),
        }
    }
}

impl From<Capability> for pb::ProviderCapability {
    fn from(c: Capability) -> Self {
        pb::ProviderCapability {
            create_cluster: c.create_cluster,
            delete_cluster: c.delete_cluster,
            upgrade_cluster: c.upgrade_cluster,
            fetch_kubeconfig: c.fetch_kubeconfig,
            list_node_pools: c.list_node_pools,
            create_node_pool: c.create_node_pool,
            resize_node_pool: c.resize_node_pool,
            delete_node_pool: c.delete_node_pool,
            node_pool_autoscaling: c.node_pool_autoscaling,
            add_existing_instances: c.add_existing_instances,
            remove_nodes: c.remove_nodes,
            mutable_cluster_fields: c
                .mutable_cluster_fields
                .iter()
                .map(|s| s.to_string())
                .collect(),
            mutable_node_pool_fields: c
                .mutable_node_pool_fields
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// A vendor node pool in the API's shape.
pub fn node_pool(cluster_id: &str, status: PoolStatus) -> pb::NodePool {
    let PoolStatus { pool, ready } = status;
    use pb::NodePoolState as P;
    let state = match pool.state {
        VendorNodePoolState::Creating => P::Provisioning,
        VendorNodePoolState::Running => P::Running,
        VendorNodePoolState::Scaling => P::Scaling,
        VendorNodePoolState::Updating => P::Updating,
        VendorNodePoolState::Deleting | VendorNodePoolState::Deleted => P::Deleting,
        VendorNodePoolState::Failed => P::Failed,
    };
    pb::NodePool {
        id: pool.id,
        cluster_id: cluster_id.to_string(),
        spec: Some(pb::NodePoolSpec {
            name: pool.name,
            instance_types: pool.instance_types,
            min_size: pool.min_size,
            max_size: pool.max_size,
            desired_size: pool.desired_size,
            autoscaling: pool.autoscaling,
            labels: pool.labels.into_iter().collect(),
            ..Default::default()
        }),
        state: state as i32,
        current_size: pool.current_size,
        ready_size: ready,
        vendor_state: pool.raw_state,
        create_time: None,
        update_time: None,
    }
}
