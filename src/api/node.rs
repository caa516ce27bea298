//! `flotilla.v1.NodeService`: nodes, cordon, uncordon and drain through Kubernetes; node pools
//! through the cluster's vendor (changes return operations).

use std::sync::Arc;

use futures::StreamExt;
use tonic::{Request, Response, Status};

use super::{
    operation::{node_pool, requester},
    pb::{self, node_service_server::NodeService},
    visible,
};
use crate::{
    auth::{audit, cluster_scope},
    service::{
        Error,
        lifecycle::{Lifecycle, NodePoolChange},
        workloads::{
            DrainEvent, DrainOptions, DrainOutcome, DrainProgress, ListNodes, WorkloadQueries,
        },
    },
};

fn duration(
    d: Option<prost_types::Duration>,
    field: &str,
) -> Result<Option<std::time::Duration>, Error> {
    d.map(|d| {
        std::time::Duration::try_from(d).map_err(|_| Error::invalid(field, "must not be negative"))
    })
    .transpose()
}

pub struct NodeApi {
    queries: Arc<WorkloadQueries>,
    lifecycle: Arc<Lifecycle>,
    streams: Arc<crate::service::streams::StreamSessions>,
}

impl NodeApi {
    pub fn new(
        queries: Arc<WorkloadQueries>,
        lifecycle: Arc<Lifecycle>,
        streams: Arc<crate::service::streams::StreamSessions>,
    ) -> Self {
        NodeApi {
            queries,
            lifecycle,
            streams,
        }
    }

    async fn change(
        &self,
        request: &Request<impl Sized>,
        cluster_id: &str,
        target: &str,
        request_id: &str,
        change: NodePoolChange,
    ) -> Result<pb::Operation, Status> {
        visible(request, cluster_id)?;
        audit::note(request, cluster_id, target);
        let by = requester(request, request_id);
        Ok(self
            .lifecycle
            .change_node_pool(cluster_id, change, by)
            .await?
            .into())
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn list_node_pools(
        &self,
        request: Request<pb::ListNodePoolsRequest>,
    ) -> Result<Response<pb::ListNodePoolsResponse>, Status> {
        let r = request.get_ref();
        visible(&request, &r.cluster_id)?;
        let (pools, next_page_token, total_size) = self
            .lifecycle
            .node_pools(&r.cluster_id, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListNodePoolsResponse {
            node_pools: pools
                .into_iter()
                .map(|p| node_pool(&r.cluster_id, p))
                .collect(),
            next_page_token,
            total_size,
        }))
    }

    async fn get_node_pool(
        &self,
        request: Request<pb::GetNodePoolRequest>,
    ) -> Result<Response<pb::GetNodePoolResponse>, Status> {
        let r = request.get_ref();
        visible(&request, &r.cluster_id)?;
        let pool = self
            .lifecycle
            .node_pool(&r.cluster_id, &r.node_pool_id)
            .await?;
        Ok(Response::new(pb::GetNodePoolResponse {
            node_pool: Some(node_pool(&r.cluster_id, pool)),
        }))
    }

    async fn create_node_pool(
        &self,
        request: Request<pb::CreateNodePoolRequest>,
    ) -> Result<Response<pb::CreateNodePoolResponse>, Status> {
        let r = request.get_ref();
        let name = r
            .node_pool
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let change = NodePoolChange::Create {
            spec: r.node_pool.clone().map(Box::new),
            validate_only: r.validate_only,
        };
        let operation = self
            .change(&request, &r.cluster_id, &name, &r.request_id, change)
            .await?;
        Ok(Response::new(pb::CreateNodePoolResponse {
            operation: Some(operation),
        }))
    }

    async fn update_node_pool(
        &self,
        request: Request<pb::UpdateNodePoolRequest>,
    ) -> Result<Response<pb::UpdateNodePoolResponse>, Status> {
        let r = request.get_ref();
        let change = node_pool_update(r)?;
        let operation = self
            .change(
                &request,
                &r.cluster_id,
                &r.node_pool_id,
                &r.request_id,
                change,
            )
            .await?;
        Ok(Response::new(pb::UpdateNodePoolResponse {
            operation: Some(operation),
        }))
    }

    async fn delete_node_pool(
        &self,
        request: Request<pb::DeleteNodePoolRequest>,
    ) -> Result<Response<pb::DeleteNodePoolResponse>, Status> {
        let r = request.get_ref();
        let change = NodePoolChange::Delete {
            pool_id: r.node_pool_id.clone(),
        };
        let operation = self
            .change(
                &request,
                &r.cluster_id,
                &r.node_pool_id,
                &r.request_id,
                change,
            )
            .await?;
        Ok(Response::new(pb::DeleteNodePoolResponse {
            operation: Some(operation),
        }))
    }

    async fn add_nodes(
        &self,
        request: Request<pb::AddNodesRequest>,
    ) -> Result<Response<pb::AddNodesResponse>, Status> {
        let r = request.get_ref();
        let change = NodePoolChange::AddNodes {
            pool_id: r.node_pool_id.clone(),
            instance_ids: r.instance_ids.clone(),
        };
        let operation = self
            .change(
                &request,
                &r.cluster_id,
                &r.node_pool_id,
                &r.request_id,
                change,
            )
            .await?;
        Ok(Response::new(pb::AddNodesResponse {
            operation: Some(operation),
        }))
    }

    async fn remove_nodes(
        &self,
        request: Request<pb::RemoveNodesRequest>,
    ) -> Result<Response<pb::RemoveNodesResponse>, Status> {
        let r = request.get_ref();
        let change = NodePoolChange::RemoveNodes {
            pool_id: r.node_pool_id.clone(),
            node_names: r.node_names.clone(),
            skip_drain: r.skip_drain,
            release_instances: r.release_instances,
        };
        let operation = self
            .change(
                &request,
                &r.cluster_id,
                &r.node_pool_id,
                &r.request_id,
                change,
            )
            .await?;
        Ok(Response::new(pb::RemoveNodesResponse {
            operation: Some(operation),
        }))
    }

    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let list = self
            .queries
            .list_nodes(
                &scope,
                ListNodes {
                    cluster_id: r.cluster_id,
                    page_size: r.page_size,
                    page_token: r.page_token,
                    label_selector: r.label_selector,
                    ready: r.ready,
                    zone: r.zone,
                },
            )
            .await?;
        Ok(Response::new(pb::ListNodesResponse {
            nodes: list.items.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }

    async fn get_node(
        &self,
        request: Request<pb::GetNodeRequest>,
    ) -> Result<Response<pb::GetNodeResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        let node = self
            .queries
            .get_node(&scope, &r.cluster_id, &r.node_name)
            .await?;
        Ok(Response::new(pb::GetNodeResponse {
            node: Some(node.into()),
        }))
    }

    async fn cordon_node(
        &self,
        request: Request<pb::CordonNodeRequest>,
    ) -> Result<Response<pb::CordonNodeResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(&request, &r.cluster_id, &format!("nodes/{}", r.node_name));
        let node = self
            .queries
            .set_unschedulable(&scope, &r.cluster_id, &r.node_name, true)
            .await?;
        Ok(Response::new(pb::CordonNodeResponse {
            node: Some(node.into()),
        }))
    }

    async fn uncordon_node(
        &self,
        request: Request<pb::UncordonNodeRequest>,
    ) -> Result<Response<pb::UncordonNodeResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(&request, &r.cluster_id, &format!("nodes/{}", r.node_name));
        let node = self
            .queries
            .set_unschedulable(&scope, &r.cluster_id, &r.node_name, false)
            .await?;
        Ok(Response::new(pb::UncordonNodeResponse {
            node: Some(node.into()),
        }))
    }

    async fn drain_node(
        &self,
        request: Request<pb::DrainNodeRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::DrainNodeResponse>>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(&request, &r.cluster_id, &format!("nodes/{}", r.node_name));
        let options = DrainOptions {
            timeout: duration(r.timeout, "timeout")?.unwrap_or(std::time::Duration::from_secs(300)),
            grace_period: duration(r.grace_period, "grace_period")?,
            delete_emptydir_data: r.delete_emptydir_data,
            force: r.force,
            dry_run: r.dry_run,
        };
        // Counted against the caller's stream cap; the stream (not the drain, which has
        // started) ends with UNAUTHENTICATED once the token is revoked or expires.
        let permit = self
            .streams
            .open(&scope, crate::service::streams::StreamKind::Operation)?;
        let progress = self
            .queries
            .drain_with_summary(&scope, &r.cluster_id, &r.node_name, options)
            .await?;
        let stream = progress.map(|step| {
            Ok::<_, crate::service::Error>(pb::DrainNodeResponse {
                progress: Some(drain_progress(step)),
            })
        });
        let stream = permit.guard(stream).map(|item| item.map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}

fn drain_progress(step: DrainProgress) -> pb::drain_node_response::Progress {
    use pb::drain_node_response::Progress;
    match step {
        DrainProgress::Pod(DrainEvent::Pod {
            namespace,
            name,
            outcome,
            message,
        }) => Progress::Pod(pb::DrainPodResult {
            namespace,
            name,
            outcome: outcome_pb(outcome).into(),
            message,
        }),
        // The service sends every end as a summary.
        DrainProgress::Pod(DrainEvent::Done {
            evicted,
            skipped,
            blocked,
            failed,
            complete,
        }) => Progress::Summary(pb::DrainSummary {
            node: None,
            evicted,
            skipped,
            blocked,
            failed,
            complete,
        }),
        DrainProgress::Summary {
            node,
            evicted,
            skipped,
            blocked,
            failed,
            complete,
        } => Progress::Summary(pb::DrainSummary {
            node: node.map(|n| (*n).into()),
            evicted,
            skipped,
            blocked,
            failed,
            complete,
        }),
    }
}

fn outcome_pb(outcome: DrainOutcome) -> pb::DrainPodOutcome {
    match outcome {
        DrainOutcome::Evicted => pb::DrainPodOutcome::Evicted,
        DrainOutcome::Skipped => pb::DrainPodOutcome::Skipped,
        DrainOutcome::Blocked => pb::DrainPodOutcome::Blocked,
        DrainOutcome::Failed => pb::DrainPodOutcome::Failed,
        DrainOutcome::WouldEvict => pb::DrainPodOutcome::WouldEvict,
    }
}

/// The fields an UpdateNodePool mask names, with their new values.
fn node_pool_update(r: &pb::UpdateNodePoolRequest) -> Result<NodePoolChange, Status> {
    let mask = r
        .update_mask
        .as_ref()
        .filter(|m| !m.paths.is_empty())
        .ok_or_else(|| Error::invalid("update_mask", "is required; name the fields to change"))?;
    let spec = r.node_pool.clone().unwrap_or_default();
    let (mut desired, mut min, mut max, mut autoscaling) = (None, None, None, None);
    for path in &mask.paths {
        match path.as_str() {
            "desired_size" => desired = Some(spec.desired_size),
            "min_size" => min = Some(spec.min_size),
            "max_size" => max = Some(spec.max_size),
            "autoscaling" => autoscaling = Some(spec.autoscaling),
            other => {
                return Err(Error::invalid(
                    "update_mask",
                    format!(
                        "{other:?} cannot be changed; use desired_size, min_size, max_size or \
                         autoscaling"
                    ),
                )
                .into());
            }
        }
    }
    Ok(NodePoolChange::Update {
        pool_id: r.node_pool_id.clone(),
        desired_size: desired,
        min_size: min,
        max_size: max,
        autoscaling,
    })
}
