//! `flotilla.v1.WorkloadService`: workloads, pods, events, any resource, apply.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    kube_convert::{encoded_pods, kind_from_pb, pod_selection, propagation_from_pb},
    pb::{self, workload_service_server::WorkloadService},
};
use crate::{
    auth::{audit, cluster_scope},
    service::{
        workloads::resources::{ApplyManifests, ListResources, ResourceRef, ResourceService},
        workloads::{ListEvents, ListPods, ListWorkloads, WorkloadQueries, WorkloadRef},
    },
};

pub struct WorkloadApi {
    queries: Arc<WorkloadQueries>,
    resources: Arc<ResourceService>,
}

impl WorkloadApi {
    pub fn new(queries: Arc<WorkloadQueries>, resources: Arc<ResourceService>) -> Self {
        WorkloadApi { queries, resources }
    }
}

fn workload(cluster_id: &str, namespace: &str, kind: i32, name: &str) -> WorkloadRef {
    WorkloadRef {
        cluster_id: cluster_id.to_string(),
        namespace: namespace.to_string(),
        kind: kind_from_pb(kind),
        name: name.to_string(),
    }
}

fn target(kind: i32, namespace: &str, name: &str) -> String {
    let kind = kind_from_pb(kind).map_or("workload", |k| k.name());
    format!("{kind}/{namespace}/{name}")
}

#[tonic::async_trait]
impl WorkloadService for WorkloadApi {
    async fn list_workloads(
        &self,
        request: Request<pb::ListWorkloadsRequest>,
    ) -> Result<Response<pb::ListWorkloadsResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let list = self
            .queries
            .list_workloads(
                &scope,
                ListWorkloads {
                    cluster_id: r.cluster_id,
                    namespace: r.namespace,
                    kind: kind_from_pb(r.kind),
                    label_selector: r.label_selector,
                    page_size: r.page_size,
                    page_token: r.page_token,
                },
            )
            .await?;
        Ok(Response::new(pb::ListWorkloadsResponse {
            workloads: list.items.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
        }))
    }

    async fn get_workload(
        &self,
        request: Request<pb::GetWorkloadRequest>,
    ) -> Result<Response<pb::GetWorkloadResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        let w = self
            .queries
            .get_workload(
                &scope,
                workload(&r.cluster_id, &r.namespace, r.kind, &r.name),
            )
            .await?;
        Ok(Response::new(pb::GetWorkloadResponse {
            workload: Some(w.into()),
        }))
    }

    async fn scale_workload(
        &self,
        request: Request<pb::ScaleWorkloadRequest>,
    ) -> Result<Response<pb::ScaleWorkloadResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(
            &request,
            &r.cluster_id,
            &target(r.kind, &r.namespace, &r.name),
        );
        let w = self
            .queries
            .scale(
                &scope,
                workload(&r.cluster_id, &r.namespace, r.kind, &r.name),
                r.replicas,
            )
            .await?;
        Ok(Response::new(pb::ScaleWorkloadResponse {
            workload: Some(w.into()),
        }))
    }

    async fn restart_workload(
        &self,
        request: Request<pb::RestartWorkloadRequest>,
    ) -> Result<Response<pb::RestartWorkloadResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(
            &request,
            &r.cluster_id,
            &target(r.kind, &r.namespace, &r.name),
        );
        let w = self
            .queries
            .restart(
                &scope,
                workload(&r.cluster_id, &r.namespace, r.kind, &r.name),
            )
            .await?;
        Ok(Response::new(pb::RestartWorkloadResponse {
            workload: Some(w.into()),
        }))
    }

    async fn delete_workload(
        &self,
        request: Request<pb::DeleteWorkloadRequest>,
    ) -> Result<Response<pb::DeleteWorkloadResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(
            &request,
            &r.cluster_id,
            &target(r.kind, &r.namespace, &r.name),
        );
        self.queries
            .delete(
                &scope,
                workload(&r.cluster_id, &r.namespace, r.kind, &r.name),
                propagation_from_pb(r.propagation_policy),
            )
            .await?;
        Ok(Response::new(pb::DeleteWorkloadResponse {}))
    }

    async fn list_pods(
        &self,
        request: Request<pb::ListPodsRequest>,
    ) -> Result<Response<pb::ListPodsResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let selection = match r.pods {
            None => pod_selection(None, None),
            Some(pb::list_pods_request::Pods::LabelSelector(s)) => pod_selection(None, Some(s)),
            Some(pb::list_pods_request::Pods::Workload(w)) => pod_selection(Some(w), None),
        };
        let list = self
            .queries
            .list_pods(
                &scope,
                ListPods {
                    cluster_id: r.cluster_id,
                    namespace: r.namespace,
                    selection,
                    field_selector: r.field_selector,
                    page_size: r.page_size,
                    page_token: r.page_token,
                },
            )
            .await?;
        Ok(Response::new(pb::ListPodsResponse {
            pods: Vec::new(),
            encoded_pods: encoded_pods(list.items),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }

    async fn get_pod(
        &self,
        request: Request<pb::GetPodRequest>,
    ) -> Result<Response<pb::GetPodResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        let pod = self
            .queries
            .get_pod(&scope, &r.cluster_id, &r.namespace, &r.name)
            .await?;
        Ok(Response::new(pb::GetPodResponse {
            pod: Some(pod.into()),
        }))
    }

    async fn delete_pod(
        &self,
        request: Request<pb::DeletePodRequest>,
    ) -> Result<Response<pb::DeletePodResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(
            &request,
            &r.cluster_id,
            &format!("Pod/{}/{}", r.namespace, r.name),
        );
        self.queries
            .delete_pod(
                &scope,
                &r.cluster_id,
                &r.namespace,
                &r.name,
                r.grace_period_seconds,
            )
            .await?;
        Ok(Response::new(pb::DeletePodResponse {}))
    }

    async fn apply_manifests(
        &self,
        request: Request<pb::ApplyManifestsRequest>,
    ) -> Result<Response<pb::ApplyManifestsResponse>, Status> {
        let scope = cluster_scope(&request);
        audit::note(&request, &request.get_ref().cluster_id, "manifests");
        let r = request.into_inner();
        let results = self
            .resources
            .apply(
                &scope,
                ApplyManifests {
                    cluster_id: r.cluster_id,
                    namespace: r.namespace,
                    manifests: r.manifests,
                    dry_run: r.dry_run,
                    force_conflicts: r.force_conflicts,
                },
            )
            .await?;
        Ok(Response::new(pb::ApplyManifestsResponse {
            results: results.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_resources(
        &self,
        request: Request<pb::ListResourcesRequest>,
    ) -> Result<Response<pb::ListResourcesResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let list = self
            .resources
            .list(
                &scope,
                ListResources {
                    cluster_id: r.cluster_id,
                    api_version: r.api_version,
                    kind: r.kind,
                    namespace: r.namespace,
                    label_selector: r.label_selector,
                    field_selector: r.field_selector,
                    page_size: r.page_size,
                    page_token: r.page_token,
                },
            )
            .await?;
        Ok(Response::new(pb::ListResourcesResponse {
            resources: list.resources.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
        }))
    }

    async fn get_resource(
        &self,
        request: Request<pb::GetResourceRequest>,
    ) -> Result<Response<pb::GetResourceResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let resource = self
            .resources
            .get(
                &scope,
                ResourceRef {
                    cluster_id: r.cluster_id,
                    api_version: r.api_version,
                    kind: r.kind,
                    namespace: r.namespace,
                    name: r.name,
                },
            )
            .await?;
        Ok(Response::new(pb::GetResourceResponse {
            resource: Some(resource.into()),
        }))
    }

    async fn delete_resource(
        &self,
        request: Request<pb::DeleteResourceRequest>,
    ) -> Result<Response<pb::DeleteResourceResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.get_ref();
        audit::note(
            &request,
            &r.cluster_id,
            &format!("{}/{}/{}", r.kind, r.namespace, r.name),
        );
        let r = request.into_inner();
        self.resources
            .delete(
                &scope,
                ResourceRef {
                    cluster_id: r.cluster_id,
                    api_version: r.api_version,
                    kind: r.kind,
                    namespace: r.namespace,
                    name: r.name,
                },
                propagation_from_pb(r.propagation_policy),
            )
            .await?;
        Ok(Response::new(pb::DeleteResourceResponse {}))
    }

    async fn list_resource_kinds(
        &self,
        request: Request<pb::ListResourceKindsRequest>,
    ) -> Result<Response<pb::ListResourceKindsResponse>, Status> {
        let scope = cluster_scope(&request);
        let kinds = self
            .resources
            .list_kinds(&scope, &request.get_ref().cluster_id)
            .await?;
        Ok(Response::new(pb::ListResourceKindsResponse {
            kinds: kinds
                .iter()
                .map(|k| pb::ResourceKind {
                    api_version: k.api_version.clone(),
                    kind: k.kind.clone(),
                    plural: k.plural.clone(),
                    namespaced: k.namespaced,
                    verbs: k.verbs.clone(),
                })
                .collect(),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let object = r.involved_object.unwrap_or_default();
        let list = self
            .queries
            .list_events(
                &scope,
                ListEvents {
                    cluster_id: r.cluster_id,
                    namespace: r.namespace,
                    object_kind: object.kind,
                    object_name: object.name,
                    type_: r.r#type,
                    page_size: r.page_size,
                    page_token: r.page_token,
                },
            )
            .await?;
        Ok(Response::new(pb::ListEventsResponse {
            events: list.items.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }
}
