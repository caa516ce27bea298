//! `flotilla.v1.ClusterService`. Handlers convert, call the service layer, convert back.
//! RPCs not overridden here answer UNIMPLEMENTED (generated default stubs naming the RPC).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb::{self, cluster_service_server::ClusterService};
use crate::service::clusters::{ClusterCatalog, ListClusters};

pub struct ClusterApi {
    catalog: Arc<ClusterCatalog>,
}

impl ClusterApi {
    pub fn new(catalog: Arc<ClusterCatalog>) -> Self {
        ClusterApi { catalog }
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    async fn get_cluster(
        &self,
        request: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::GetClusterResponse>, Status> {
        let cluster = self.catalog.get(&request.get_ref().cluster_id).await?;
        Ok(Response::new(pb::GetClusterResponse {
            cluster: Some(cluster.into()),
        }))
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        let list = self.catalog.list(&request.into_inner().into()).await?;
        Ok(Response::new(pb::ListClustersResponse {
            clusters: list.clusters.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }
}

impl From<pb::ListClustersRequest> for ListClusters {
    fn from(r: pb::ListClustersRequest) -> Self {
        ListClusters {
            page_size: r.page_size,
            page_token: r.page_token,
            filter: r.filter,
            order_by: r.order_by,
        }
    }
}
