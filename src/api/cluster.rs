//! `flotilla.v1.ClusterService`. Handlers convert, call the service layer, convert back.
//! RPCs not overridden here answer UNIMPLEMENTED (generated default stubs naming the RPC).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::{
    cluster_pages::ClusterPages,
    operation::requester,
    pb::{self, cluster_service_server::ClusterService},
    visible,
};
use crate::auth::{audit, cluster_scope};
use crate::service::{
    Error,
    access::kube::KubeAccess,
    clusters::import::{
        AccessSource, ClusterImporter, CredentialsSource, ImportCluster, PROVIDER_IMPORTED,
        UpdateCredentials,
    },
    clusters::{
        ClusterCatalog, ListClusters, UpdateCluster,
        agent::{AgentRegistry, CreateAgentRegistration},
    },
    lifecycle::{CreateCluster, Lifecycle},
};

pub struct ClusterApi {
    catalog: Arc<ClusterCatalog>,
    importer: Arc<ClusterImporter>,
    lifecycle: Arc<Lifecycle>,
    agents: Arc<AgentRegistry>,
    pages: ClusterPages,
}

impl ClusterApi {
    pub fn new(
        catalog: Arc<ClusterCatalog>,
        importer: Arc<ClusterImporter>,
        lifecycle: Arc<Lifecycle>,
        agents: Arc<AgentRegistry>,
    ) -> Self {
        ClusterApi {
            catalog,
            importer,
            lifecycle,
            agents,
            pages: ClusterPages::default(),
        }
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    async fn import_cluster(
        &self,
        request: Request<pb::ImportClusterRequest>,
    ) -> Result<Response<pb::ImportClusterResponse>, Status> {
        let requested = request.get_ref().cluster_id.clone();
        audit::note(&request, &requested, "");
        let cluster = self.importer.import(request.into_inner().into()).await?;
        Ok(Response::new(pb::ImportClusterResponse {
            cluster: Some(cluster.into()),
        }))
    }

    async fn create_agent_registration(
        &self,
        request: Request<pb::CreateAgentRegistrationRequest>,
    ) -> Result<Response<pb::CreateAgentRegistrationResponse>, Status> {
        audit::note(&request, &request.get_ref().cluster_id, "agent");
        let r = request.into_inner();
        let created = self
            .agents
            .create(CreateAgentRegistration {
                cluster_id: r.cluster_id,
                display_name: r.display_name,
                labels: r.labels.into_iter().collect(),
                server_url: r.server_url,
                namespace: r.namespace,
                cluster_role: r.cluster_role,
                image: r.image,
                ttl_seconds: r.ttl_seconds,
            })
            .await?;
        Ok(Response::new(pb::CreateAgentRegistrationResponse {
            cluster: Some(created.cluster.into()),
            registration_token: created.registration_token.to_string(),
            expire_time: Some(super::convert::timestamp(created.expire_millis)),
            manifest: created.manifest.to_string(),
            manifest_url: created.manifest_url.to_string(),
        }))
    }

    async fn get_cluster(
        &self,
        request: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::GetClusterResponse>, Status> {
        visible(&request, &request.get_ref().cluster_id)?;
        let cluster = self.catalog.get(&request.get_ref().cluster_id).await?;
        Ok(Response::new(pb::GetClusterResponse {
            cluster: Some(cluster.into()),
        }))
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        let scope = cluster_scope(&request);
        let mut list_request = ListClusters::from(request.into_inner());
        list_request.scope = scope.clusters;
        let page = self.pages.list(&self.catalog, &list_request).await?;
        Ok(Response::new(page))
    }

    async fn update_cluster(
        &self,
        request: Request<pb::UpdateClusterRequest>,
    ) -> Result<Response<pb::UpdateClusterResponse>, Status> {
        let id = request
            .get_ref()
            .cluster
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default();
        visible(&request, &id)?;
        audit::note(&request, &id, "");
        let update = UpdateCluster::try_from(request.into_inner())?;
        let cluster = self.catalog.update(update).await?;
        Ok(Response::new(pb::UpdateClusterResponse {
            cluster: Some(cluster.into()),
        }))
    }

    async fn update_cluster_credentials(
        &self,
        request: Request<pb::UpdateClusterCredentialsRequest>,
    ) -> Result<Response<pb::UpdateClusterCredentialsResponse>, Status> {
        visible(&request, &request.get_ref().cluster_id)?;
        audit::note(&request, &request.get_ref().cluster_id, "credentials");
        let r = request.into_inner();
        let cluster = self
            .importer
            .update_credentials(UpdateCredentials {
                cluster_id: r.cluster_id,
                source: r.source.map(Into::into),
                allow_insecure_tls: r.allow_insecure_tls,
                validate_only: r.validate_only,
            })
            .await?;
        Ok(Response::new(pb::UpdateClusterCredentialsResponse {
            cluster: Some(cluster.into()),
        }))
    }

    async fn delete_cluster(
        &self,
        request: Request<pb::DeleteClusterRequest>,
    ) -> Result<Response<pb::DeleteClusterResponse>, Status> {
        visible(&request, &request.get_ref().cluster_id)?;
        audit::note(&request, &request.get_ref().cluster_id, "");
        if request.get_ref().destroy {
            let by = requester(&request, &request.get_ref().request_id);
            let r = request.into_inner();
            self.catalog.check_destroyable(&r.cluster_id).await?;
            let operation = self
                .lifecycle
                .destroy_cluster(&r.cluster_id, &r.etag, by)
                .await?;
            return Ok(Response::new(pb::DeleteClusterResponse {
                operation: Some(operation.into()),
            }));
        }
        let r = request.into_inner();
        self.catalog.detach(&r.cluster_id, &r.etag).await?;
        Ok(Response::new(pb::DeleteClusterResponse { operation: None }))
    }

    async fn create_cluster(
        &self,
        request: Request<pb::CreateClusterRequest>,
    ) -> Result<Response<pb::CreateClusterResponse>, Status> {
        audit::note(
            &request,
            &request.get_ref().cluster_id,
            &request.get_ref().provider,
        );
        let by = requester(&request, &request.get_ref().request_id);
        let r = request.into_inner();
        let create = CreateCluster {
            cluster_id: r.cluster_id,
            provider: r.provider,
            spec: r.spec,
            validate_only: r.validate_only,
        };
        let (operation, cluster) = self.lifecycle.create_cluster(create, by).await?;
        Ok(Response::new(pb::CreateClusterResponse {
            operation: Some(operation.into()),
            cluster: Some(cluster.into()),
        }))
    }

    async fn upgrade_cluster(
        &self,
        request: Request<pb::UpgradeClusterRequest>,
    ) -> Result<Response<pb::UpgradeClusterResponse>, Status> {
        visible(&request, &request.get_ref().cluster_id)?;
        audit::note(&request, &request.get_ref().cluster_id, "");
        let by = requester(&request, &request.get_ref().request_id);
        let r = request.into_inner();
        let operation = self
            .lifecycle
            .upgrade_cluster(&r.cluster_id, &r.kubernetes_version, by)
            .await?;
        Ok(Response::new(pb::UpgradeClusterResponse {
            operation: Some(operation.into()),
        }))
    }

    async fn list_vendor_clusters(
        &self,
        request: Request<pb::ListVendorClustersRequest>,
    ) -> Result<Response<pb::ListVendorClustersResponse>, Status> {
        let r = request.into_inner();
        let clusters = self
            .lifecycle
            .vendor_clusters(&r.provider, &r.credential_id, &r.region)
            .await?;
        Ok(Response::new(pb::ListVendorClustersResponse {
            clusters: clusters
                .into_iter()
                .map(|(c, cluster_id)| pb::VendorCluster {
                    vendor_cluster_id: c.id,
                    name: c.name,
                    state: c.raw_state,
                    kubernetes_version: c.kubernetes_version,
                    region: c.region,
                    cluster_id,
                })
                .collect(),
        }))
    }

    async fn register_cluster(
        &self,
        request: Request<pb::RegisterClusterRequest>,
    ) -> Result<Response<pb::RegisterClusterResponse>, Status> {
        visible(&request, &request.get_ref().cluster_id)?;
        audit::note(
            &request,
            &request.get_ref().cluster_id,
            &request.get_ref().provider,
        );
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let registration = self
            .lifecycle
            .register_cluster(
                &scope,
                &r.cluster_id,
                &r.provider,
                &r.credential_id,
                &r.name,
            )
            .await?;
        Ok(Response::new(pb::RegisterClusterResponse {
            vendor_cluster_id: registration.vendor_cluster_id,
            manifest_url: registration.manifest_url,
            command: registration.command,
            insecure_command: registration.insecure_command,
        }))
    }

    async fn list_providers(
        &self,
        _request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let mut providers = vec![pb::Provider {
            id: PROVIDER_IMPORTED.into(),
            display_name: "Imported cluster (any conformant Kubernetes)".into(),
            capability: Some(pb::ProviderCapability::default()),
        }];
        providers.extend(self.lifecycle.providers().into_iter().map(
            |(id, display_name, capability)| pb::Provider {
                id: id.into(),
                display_name: display_name.into(),
                capability: Some(capability.into()),
            },
        ));
        Ok(Response::new(pb::ListProvidersResponse { providers }))
    }
}

impl From<pb::ListClustersRequest> for ListClusters {
    fn from(r: pb::ListClustersRequest) -> Self {
        ListClusters {
            page_size: r.page_size,
            page_token: r.page_token,
            filter: r.filter,
            order_by: r.order_by,
            scope: None,
        }
    }
}

impl From<pb::ImportClusterRequest> for ImportCluster {
    fn from(r: pb::ImportClusterRequest) -> Self {
        ImportCluster {
            cluster_id: r.cluster_id,
            display_name: r.display_name,
            labels: r.labels.into_iter().collect(),
            source: r.source.map(Into::into),
            allow_insecure_tls: r.allow_insecure_tls,
            validate_only: r.validate_only,
            kube_access: kube_access(r.kube_access_mode),
            install_rbac: r.install_rbac,
        }
    }
}

fn kube_access(mode: i32) -> KubeAccess {
    match pb::KubeAccessMode::try_from(mode) {
        Ok(pb::KubeAccessMode::Impersonation) => KubeAccess::Impersonation,
        _ => KubeAccess::BuiltIn,
    }
}

impl From<pb::import_cluster_request::Source> for AccessSource {
    fn from(source: pb::import_cluster_request::Source) -> Self {
        use pb::import_cluster_request::Source;
        match source {
            Source::Kubeconfig(k) => kubeconfig_source(k),
            Source::Token(t) => token_source(t),
        }
    }
}

impl From<pb::update_cluster_credentials_request::Source> for CredentialsSource {
    fn from(source: pb::update_cluster_credentials_request::Source) -> Self {
        use pb::update_cluster_credentials_request::Source;
        match source {
            Source::Kubeconfig(k) => CredentialsSource::Direct(kubeconfig_source(k)),
            Source::Token(t) => CredentialsSource::Direct(token_source(t)),
            Source::Agent(_) => CredentialsSource::Agent,
        }
    }
}

fn kubeconfig_source(k: pb::KubeconfigSource) -> AccessSource {
    AccessSource::Kubeconfig {
        kubeconfig: Zeroizing::new(k.kubeconfig),
        context: k.context,
    }
}

fn token_source(t: pb::TokenSource) -> AccessSource {
    AccessSource::Token {
        server: t.server,
        bearer_token: Zeroizing::new(t.bearer_token),
        ca_pem: t.ca_pem,
    }
}

impl TryFrom<pb::UpdateClusterRequest> for UpdateCluster {
    type Error = Error;

    fn try_from(r: pb::UpdateClusterRequest) -> Result<Self, Error> {
        let cluster = r
            .cluster
            .ok_or_else(|| Error::invalid("cluster", "is required"))?;
        Ok(UpdateCluster {
            cluster_id: cluster.id,
            display_name: cluster.display_name,
            labels: cluster.labels.into_iter().collect(),
            paths: r.update_mask.map(|m| m.paths).unwrap_or_default(),
            etag: cluster.etag,
            kube_access: kube_access(cluster.kube_access_mode),
        })
    }
}
