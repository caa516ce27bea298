//! `flotilla.v1.NodeService`, the Kubernetes side: nodes, cordon, uncordon, drain. Node pools
//! (vendor side) answer UNIMPLEMENTED until built.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb::{self, node_service_server::NodeService};
use crate::{
    auth::{audit, cluster_scope},
    service::{
        Error,
        workloads::{DrainEvent, DrainOptions, DrainOutcome, ListNodes, WorkloadQueries},
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
}

impl NodeApi {
    pub fn new(queries: Arc<WorkloadQueries>) -> Self {
        NodeApi { queries }
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
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
        let mut events = self
            .queries
            .drain(&scope, &r.cluster_id, &r.node_name, options)
            .await?;
        let queries = self.queries.clone();
        let (cluster_id, node_name) = (r.cluster_id.clone(), r.node_name.clone());
        let stream = async_stream::stream! {
            while let Some(event) = events.recv().await {
                let progress = match event {
                    DrainEvent::Pod { namespace, name, outcome, message } => {
                        pb::drain_node_response::Progress::Pod(pb::DrainPodResult {
                            namespace,
                            name,
                            outcome: outcome_pb(outcome).into(),
                            message,
                        })
                    }
                    DrainEvent::Done { evicted, skipped, blocked, failed, complete } => {
                        let node = queries
                            .get_node(&scope, &cluster_id, &node_name)
                            .await
                            .ok()
                            .map(Into::into);
                        pb::drain_node_response::Progress::Summary(pb::DrainSummary {
                            node,
                            evicted,
                            skipped,
                            blocked,
                            failed,
                            complete,
                        })
                    }
                };
                yield Ok(pb::DrainNodeResponse { progress: Some(progress) });
            }
        };
        Ok(Response::new(Box::pin(stream)))
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
