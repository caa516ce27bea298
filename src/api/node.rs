//! `flotilla.v1.NodeService`, the Kubernetes side: nodes, cordon, uncordon. Node pools and
//! drain answer UNIMPLEMENTED until built.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb::{self, node_service_server::NodeService};
use crate::{
    auth::{audit, cluster_scope},
    service::workloads::{ListNodes, WorkloadQueries},
};

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
}
