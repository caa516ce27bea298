//! `flotilla.v1.RegistryService`. Handlers convert, call the service layer, convert back.
//! Mutations note their target for the audit log ("registries/<id>[/…]"; registries belong to
//! no cluster).

use std::{sync::Arc, time::SystemTime};

use tonic::{Request, Response, Status};

use super::{
    convert::timestamp,
    pb::{self, registry_service_server::RegistryService},
};
use crate::auth::{audit, cluster_scope};
use crate::service::{
    Error,
    registries::{
        self as adapter, ArtifactKind, CredentialKind, ListRegistries, NewRegistry, ProviderInfo,
        Registry, RegistryCatalog, RegistryStatus, UpdateRegistry,
        content::{ArtifactView, Page, Paging, RegistryContent},
        deployments::{Deployment, UnsearchedCluster},
        pull_secrets::{PullSecretResult, PullSecretTarget, PullSecrets, SyncPullSecret},
    },
};

pub struct RegistryApi {
    catalog: Arc<RegistryCatalog>,
    content: Arc<RegistryContent>,
    pull_secrets: Arc<PullSecrets>,
}

impl RegistryApi {
    pub fn new(
        catalog: Arc<RegistryCatalog>,
        content: Arc<RegistryContent>,
        pull_secrets: Arc<PullSecrets>,
    ) -> Self {
        RegistryApi {
            catalog,
            content,
            pull_secrets,
        }
    }
}

fn target(registry_id: &str, rest: &[&str]) -> String {
    let mut target = format!("registries/{registry_id}");
    for part in rest.iter().filter(|p| !p.is_empty()) {
        target.push('/');
        target.push_str(part);
    }
    target
}

fn paging(page_size: i32, page_token: String) -> Paging {
    Paging {
        page_size,
        page_token,
    }
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn create_registry(
        &self,
        request: Request<pb::CreateRegistryRequest>,
    ) -> Result<Response<pb::CreateRegistryResponse>, Status> {
        let id = request.get_ref().registry.as_ref().map(|r| r.id.clone());
        audit::note(&request, "", &target(&id.unwrap_or_default(), &[]));
        let new = NewRegistry::try_from(request.into_inner())?;
        let registry = self.catalog.create(new).await?;
        Ok(Response::new(pb::CreateRegistryResponse {
            registry: Some(registry.into()),
        }))
    }

    async fn get_registry(
        &self,
        request: Request<pb::GetRegistryRequest>,
    ) -> Result<Response<pb::GetRegistryResponse>, Status> {
        let registry = self.catalog.get(&request.get_ref().registry_id).await?;
        Ok(Response::new(pb::GetRegistryResponse {
            registry: Some(registry.into()),
        }))
    }

    async fn list_registries(
        &self,
        request: Request<pb::ListRegistriesRequest>,
    ) -> Result<Response<pb::ListRegistriesResponse>, Status> {
        let r = request.into_inner();
        let list = self
            .catalog
            .list(&ListRegistries {
                page_size: r.page_size,
                page_token: r.page_token,
                filter: r.filter,
            })
            .await?;
        Ok(Response::new(pb::ListRegistriesResponse {
            registries: list.registries.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }

    async fn update_registry(
        &self,
        request: Request<pb::UpdateRegistryRequest>,
    ) -> Result<Response<pb::UpdateRegistryResponse>, Status> {
        let id = request.get_ref().registry.as_ref().map(|r| r.id.clone());
        audit::note(&request, "", &target(&id.unwrap_or_default(), &[]));
        let update = UpdateRegistry::try_from(request.into_inner())?;
        let registry = self.catalog.update(update).await?;
        Ok(Response::new(pb::UpdateRegistryResponse {
            registry: Some(registry.into()),
        }))
    }

    async fn delete_registry(
        &self,
        request: Request<pb::DeleteRegistryRequest>,
    ) -> Result<Response<pb::DeleteRegistryResponse>, Status> {
        audit::note(&request, "", &target(&request.get_ref().registry_id, &[]));
        self.catalog.delete(&request.get_ref().registry_id).await?;
        Ok(Response::new(pb::DeleteRegistryResponse {}))
    }

    async fn list_registry_providers(
        &self,
        _request: Request<pb::ListRegistryProvidersRequest>,
    ) -> Result<Response<pb::ListRegistryProvidersResponse>, Status> {
        Ok(Response::new(pb::ListRegistryProvidersResponse {
            providers: self
                .catalog
                .providers()
                .into_iter()
                .map(Into::into)
                .collect(),
        }))
    }

    async fn list_registry_namespaces(
        &self,
        request: Request<pb::ListRegistryNamespacesRequest>,
    ) -> Result<Response<pb::ListRegistryNamespacesResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .content
            .list_namespaces(&r.registry_id, paging(r.page_size, r.page_token))
            .await?;
        Ok(Response::new(pb::ListRegistryNamespacesResponse {
            namespaces: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn create_registry_namespace(
        &self,
        request: Request<pb::CreateRegistryNamespaceRequest>,
    ) -> Result<Response<pb::CreateRegistryNamespaceResponse>, Status> {
        let r = request.get_ref();
        audit::note(&request, "", &target(&r.registry_id, &[&r.name]));
        let r = request.into_inner();
        let namespace = self
            .content
            .create_namespace(&r.registry_id, &r.name, r.public)
            .await?;
        Ok(Response::new(pb::CreateRegistryNamespaceResponse {
            namespace: Some(namespace.into()),
        }))
    }

    async fn delete_registry_namespace(
        &self,
        request: Request<pb::DeleteRegistryNamespaceRequest>,
    ) -> Result<Response<pb::DeleteRegistryNamespaceResponse>, Status> {
        let r = request.get_ref();
        audit::note(&request, "", &target(&r.registry_id, &[&r.name]));
        let r = request.into_inner();
        self.content
            .delete_namespace(&r.registry_id, &r.name, r.force)
            .await?;
        Ok(Response::new(pb::DeleteRegistryNamespaceResponse {}))
    }

    async fn list_repositories(
        &self,
        request: Request<pb::ListRepositoriesRequest>,
    ) -> Result<Response<pb::ListRepositoriesResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .content
            .list_repositories(
                &r.registry_id,
                &r.namespace,
                paging(r.page_size, r.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListRepositoriesResponse {
            repositories: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn delete_repository(
        &self,
        request: Request<pb::DeleteRepositoryRequest>,
    ) -> Result<Response<pb::DeleteRepositoryResponse>, Status> {
        let r = request.get_ref();
        audit::note(&request, "", &target(&r.registry_id, &[&r.repository]));
        let r = request.into_inner();
        self.content
            .delete_repository(&r.registry_id, &r.repository)
            .await?;
        Ok(Response::new(pb::DeleteRepositoryResponse {}))
    }

    async fn list_artifacts(
        &self,
        request: Request<pb::ListArtifactsRequest>,
    ) -> Result<Response<pb::ListArtifactsResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let found = self
            .content
            .list_artifacts(
                &scope,
                &r.registry_id,
                &r.repository,
                paging(r.page_size, r.page_token),
                r.include_deployments,
            )
            .await?;
        Ok(Response::new(pb::ListArtifactsResponse {
            artifacts: found.page.items.into_iter().map(Into::into).collect(),
            next_page_token: found.page.next_page_token,
            total_size: found.page.total_size,
            unreachable: found.unreachable.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_artifact(
        &self,
        request: Request<pb::GetArtifactRequest>,
    ) -> Result<Response<pb::GetArtifactResponse>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let (artifact, unreachable) = self
            .content
            .get_artifact(
                &scope,
                &r.registry_id,
                &r.repository,
                &r.reference,
                r.include_deployments,
            )
            .await?;
        Ok(Response::new(pb::GetArtifactResponse {
            artifact: Some(artifact.into()),
            unreachable: unreachable.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_tags(
        &self,
        request: Request<pb::ListTagsRequest>,
    ) -> Result<Response<pb::ListTagsResponse>, Status> {
        let r = request.into_inner();
        let page: Page<String> = self
            .content
            .list_tags(
                &r.registry_id,
                &r.repository,
                paging(r.page_size, r.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListTagsResponse {
            tags: page.items,
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn delete_artifact(
        &self,
        request: Request<pb::DeleteArtifactRequest>,
    ) -> Result<Response<pb::DeleteArtifactResponse>, Status> {
        let r = request.get_ref();
        let what = format!("{}:{}", r.repository, r.reference);
        audit::note(&request, "", &target(&r.registry_id, &[&what]));
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        self.content
            .delete_artifact(&scope, &r.registry_id, &r.repository, &r.reference, r.force)
            .await?;
        Ok(Response::new(pb::DeleteArtifactResponse {}))
    }

    async fn list_charts(
        &self,
        request: Request<pb::ListChartsRequest>,
    ) -> Result<Response<pb::ListChartsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .content
            .list_charts(
                &r.registry_id,
                &r.namespace,
                paging(r.page_size, r.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListChartsResponse {
            charts: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn sync_pull_secret(
        &self,
        request: Request<pb::SyncPullSecretRequest>,
    ) -> Result<Response<pb::SyncPullSecretResponse>, Status> {
        let r = request.get_ref();
        let what = format!("pullSecrets/{}", r.secret_name);
        audit::note(&request, "", &target(&r.registry_id, &[&what]));
        let scope = cluster_scope(&request);
        let synced = self
            .pull_secrets
            .sync(&scope, request.into_inner().into())
            .await?;
        Ok(Response::new(pb::SyncPullSecretResponse {
            results: synced.results.into_iter().map(Into::into).collect(),
            unreachable: synced.unreachable.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_chart_versions(
        &self,
        request: Request<pb::ListChartVersionsRequest>,
    ) -> Result<Response<pb::ListChartVersionsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .content
            .list_chart_versions(
                &r.registry_id,
                &r.namespace,
                &r.chart,
                paging(r.page_size, r.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListChartVersionsResponse {
            versions: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }
}

impl TryFrom<pb::CreateRegistryRequest> for NewRegistry {
    type Error = Error;

    fn try_from(r: pb::CreateRegistryRequest) -> Result<Self, Error> {
        let registry = r
            .registry
            .ok_or_else(|| Error::invalid("registry", "is required"))?;
        Ok(NewRegistry {
            id: registry.id,
            display_name: registry.display_name,
            labels: registry.labels.into_iter().collect(),
            provider: registry.provider,
            endpoint: registry.endpoint,
            region: registry.region,
            vendor_instance_id: registry.vendor_instance_id,
            credential_id: registry.credential_id,
            ca_pem: r.ca_pem,
            validate_only: r.validate_only,
        })
    }
}

impl TryFrom<pb::UpdateRegistryRequest> for UpdateRegistry {
    type Error = Error;

    fn try_from(r: pb::UpdateRegistryRequest) -> Result<Self, Error> {
        let registry = r
            .registry
            .ok_or_else(|| Error::invalid("registry", "is required"))?;
        Ok(UpdateRegistry {
            id: registry.id,
            display_name: registry.display_name,
            labels: registry.labels.into_iter().collect(),
            credential_id: registry.credential_id,
            paths: r.update_mask.map(|m| m.paths).unwrap_or_default(),
            validate_only: r.validate_only,
        })
    }
}

fn time(t: Option<SystemTime>) -> Option<prost_types::Timestamp> {
    t.map(prost_types::Timestamp::from)
}

fn count(n: Option<u64>) -> i32 {
    n.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX))
}

impl From<Registry> for pb::Registry {
    fn from(r: Registry) -> Self {
        pb::Registry {
            id: r.id,
            display_name: r.display_name,
            labels: r.labels.into_iter().collect(),
            provider: r.provider,
            endpoint: r.endpoint,
            region: r.region,
            vendor_instance_id: r.vendor_instance_id,
            credential_id: r.credential_id,
            status: Some(r.status.into()),
            create_time: Some(timestamp(r.create_millis)),
            update_time: Some(timestamp(r.update_millis)),
        }
    }
}

impl From<RegistryStatus> for pb::RegistryStatus {
    fn from(s: RegistryStatus) -> Self {
        pb::RegistryStatus {
            reachable: s.reachable,
            unreachable_reason: s.unreachable_reason,
            last_check_time: s.last_check_millis.map(timestamp),
            warnings: s.warnings.into_iter().map(Into::into).collect(),
            api_version: s.api_version,
            credential_expire_time: s.credential_expire_millis.map(timestamp),
        }
    }
}

impl From<ProviderInfo> for pb::RegistryProvider {
    fn from(p: ProviderInfo) -> Self {
        let c = p.capability;
        pb::RegistryProvider {
            id: p.id.into(),
            display_name: p.display_name.into(),
            capability: Some(pb::RegistryProviderCapability {
                manage_namespaces: c.manage_namespaces,
                namespace_visibility: c.namespace_visibility,
                delete_repository: c.delete_repository,
                delete_artifact: c.delete_artifact,
                delete_tag: c.delete_tag,
                pull_counts: c.pull_counts,
                oci_charts: c.oci_charts,
                issue_pull_credential: c.issue_pull_credential,
                list_all_repositories: c.list_all_repositories,
            }),
            credential_kinds: p
                .credential_kinds
                .iter()
                .map(|k| {
                    i32::from(match k {
                        CredentialKind::Anonymous => pb::RegistryCredentialKind::Anonymous,
                        CredentialKind::UsernamePassword => {
                            pb::RegistryCredentialKind::UsernamePassword
                        }
                        CredentialKind::AccessKey => pb::RegistryCredentialKind::AccessKey,
                        CredentialKind::RobotToken => pb::RegistryCredentialKind::RobotToken,
                        CredentialKind::ApiKey => pb::RegistryCredentialKind::ApiKey,
                    })
                })
                .collect(),
        }
    }
}

impl From<adapter::Namespace> for pb::RegistryNamespace {
    fn from(n: adapter::Namespace) -> Self {
        pb::RegistryNamespace {
            name: n.name,
            public: n.public,
            repository_count: count(n.repository_count),
            create_time: time(n.created),
        }
    }
}

impl From<adapter::Repository> for pb::Repository {
    fn from(r: adapter::Repository) -> Self {
        pb::Repository {
            name: r.name,
            namespace: r.namespace,
            artifact_count: count(r.artifact_count),
            pull_count: r
                .pull_count
                .map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            update_time: time(r.updated),
        }
    }
}

impl From<ArtifactView> for pb::Artifact {
    fn from(v: ArtifactView) -> Self {
        let a = v.artifact;
        let kind = match a.kind {
            ArtifactKind::Image => pb::ArtifactKind::Image,
            ArtifactKind::ImageIndex => pb::ArtifactKind::ImageIndex,
            ArtifactKind::HelmChart => pb::ArtifactKind::HelmChart,
            ArtifactKind::Signature => pb::ArtifactKind::Signature,
            ArtifactKind::Sbom => pb::ArtifactKind::Sbom,
            ArtifactKind::Other => pb::ArtifactKind::Other,
        };
        pb::Artifact {
            digest: a.digest,
            tags: a.tags,
            media_type: a.media_type,
            size_bytes: i64::try_from(a.size_bytes).unwrap_or(i64::MAX),
            platforms: a.platforms,
            push_time: time(a.pushed),
            pull_time: time(a.pulled),
            artifact_type: a.artifact_type,
            kind: kind.into(),
            deployments: v.deployments.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Deployment> for pb::ArtifactDeployment {
    fn from(d: Deployment) -> Self {
        pb::ArtifactDeployment {
            cluster_id: d.cluster_id,
            namespace: d.namespace,
            workload_kind: d.workload_kind,
            workload_name: d.workload_name,
            pod_count: d.pod_count,
        }
    }
}

impl From<UnsearchedCluster> for pb::UnreachableCluster {
    fn from(u: UnsearchedCluster) -> Self {
        pb::UnreachableCluster {
            cluster_id: u.cluster_id,
            reason: u.reason,
        }
    }
}

impl From<adapter::Chart> for pb::Chart {
    fn from(c: adapter::Chart) -> Self {
        pb::Chart {
            name: c.name,
            latest_version: c.latest_version,
            description: c.description,
            version_count: count(c.version_count),
            update_time: time(c.updated),
            namespace: c.namespace,
        }
    }
}

impl From<adapter::ChartVersion> for pb::ChartVersion {
    fn from(v: adapter::ChartVersion) -> Self {
        pb::ChartVersion {
            version: v.version,
            app_version: v.app_version,
            digest: v.digest,
            create_time: time(v.created),
            description: v.description,
        }
    }
}

impl From<pb::SyncPullSecretRequest> for SyncPullSecret {
    fn from(r: pb::SyncPullSecretRequest) -> Self {
        SyncPullSecret {
            registry_id: r.registry_id,
            targets: r
                .targets
                .into_iter()
                .map(|t| PullSecretTarget {
                    cluster_id: t.cluster_id,
                    namespaces: t.namespaces,
                    cluster_label_selector: t.cluster_label_selector,
                })
                .collect(),
            secret_name: r.secret_name,
            service_account: r.service_account,
            registry_namespaces: r.registry_namespaces,
        }
    }
}

impl From<PullSecretResult> for pb::PullSecretResult {
    fn from(r: PullSecretResult) -> Self {
        pb::PullSecretResult {
            cluster_id: r.cluster_id,
            namespace: r.namespace,
            outcome: r.outcome,
            message: r.message,
            expire_time: r.expire_millis.map(timestamp),
        }
    }
}
