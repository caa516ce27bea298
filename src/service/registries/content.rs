//! What is in a registry: namespaces, repositories, artifacts, tags and charts, each call
//! through the provider's adapter. Names are checked before any call (the provider's namespace
//! rules, the OCI grammar for the rest); what the provider cannot do is refused as
//! FAILED_PRECONDITION / UNSUPPORTED_BY_PROVIDER before anything is sent; the adapter's cursor
//! travels inside Flotilla's page token.

use std::sync::Arc;

use crate::adapters::registry::{
    Artifact, Chart, ChartVersion, Listed, Namespace, PageRequest, RegistryCapability,
    RegistryClient, RegistryProvider, Repository,
};
use crate::service::{
    Error, Result,
    access::Scope,
    registries::{
        connect::RegistryConnector,
        cursor::CursorPage,
        deployments::{Deployment, DeploymentFinder, UnsearchedCluster},
        names::{self, Reference},
        vendor_error,
    },
};
use crate::store::RegistryRow;

/// One page of a registry list, in Flotilla's terms.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
    /// 0 when the registry does not say.
    pub total_size: i32,
}

/// A list request's paging, as received.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub page_size: i32,
    pub page_token: String,
}

/// An artifact and, when asked, where it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactView {
    pub artifact: Artifact,
    pub deployments: Vec<Deployment>,
}

/// Artifacts, and the clusters that could not be searched for deployments.
#[derive(Debug, Clone)]
pub struct ArtifactPage {
    pub page: Page<ArtifactView>,
    pub unreachable: Vec<UnsearchedCluster>,
}

pub struct RegistryContent {
    connector: Arc<RegistryConnector>,
    deployments: Arc<DeploymentFinder>,
}

/// A registry opened for one call.
struct Opened {
    row: RegistryRow,
    provider: Arc<dyn RegistryProvider>,
    client: Arc<dyn RegistryClient>,
}

impl Opened {
    fn capability(&self) -> RegistryCapability {
        self.provider.capability()
    }

    /// FAILED_PRECONDITION / UNSUPPORTED_BY_PROVIDER unless `allowed`.
    fn require(&self, allowed: bool, what: &str) -> Result<()> {
        if allowed {
            return Ok(());
        }
        Err(Error::FailedPrecondition {
            reason: "UNSUPPORTED_BY_PROVIDER",
            message: format!(
                "registry {:?} is a {} registry, which cannot {what}",
                self.row.id,
                self.provider.display_name()
            ),
        })
    }

    fn namespace(&self, field: &str, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        self.provider
            .check_namespace_name(name)
            .map_err(|rule| Error::invalid(field, format!("{name:?}: {rule}")))
    }

    /// The page key: the registry, the list and its arguments.
    fn key(&self, list: &str, args: &[&str]) -> String {
        format!("{}|{list}|{}", self.row.id, args.join("|"))
    }
}

fn page_of<T, U>(listed: Listed<T>, page: &CursorPage, map: impl FnMut(T) -> U) -> Page<U> {
    let mut items: Vec<U> = listed.items.into_iter().map(map).collect();
    // An adapter never returns more than asked; if one did, the caller still gets no more.
    items.truncate(page.request.size as usize);
    Page {
        items,
        next_page_token: page.next_token(listed.next.as_deref()),
        total_size: listed
            .total
            .map_or(0, |t| i32::try_from(t).unwrap_or(i32::MAX)),
    }
}

impl RegistryContent {
    pub fn new(connector: Arc<RegistryConnector>, deployments: Arc<DeploymentFinder>) -> Self {
        RegistryContent {
            connector,
            deployments,
        }
    }

    async fn open(&self, registry_id: &str) -> Result<Opened> {
        let row = self.connector.row(registry_id).await?;
        let (provider, client) = self.connector.client(&row).await?;
        Ok(Opened {
            row,
            provider,
            client,
        })
    }

    pub async fn list_namespaces(&self, registry_id: &str, p: Paging) -> Result<Page<Namespace>> {
        let r = self.open(registry_id).await?;
        let page = CursorPage::parse(p.page_size, &p.page_token, &r.key("namespaces", &[]))?;
        let listed = r
            .client
            .list_namespaces(&page.request)
            .await
            .map_err(|e| vendor_error(e, "registry_id"))?;
        Ok(page_of(listed, &page, |n| n))
    }

    pub async fn create_namespace(
        &self,
        registry_id: &str,
        name: &str,
        public: bool,
    ) -> Result<Namespace> {
        let r = self.open(registry_id).await?;
        r.namespace("name", name)?;
        let capability = r.capability();
        r.require(capability.manage_namespaces, "create namespaces")?;
        if public {
            r.require(capability.namespace_visibility, "make a namespace public")?;
        }
        let created = r
            .client
            .create_namespace(name, public)
            .await
            .map_err(|e| vendor_error(e, "name"))?;
        tracing::info!(registry = %r.row.id, namespace = %name, "registry namespace created");
        Ok(created)
    }

    /// Deletes a namespace. One that still holds repositories is FAILED_PRECONDITION naming how
    /// many, unless `force`: then its repositories are deleted first.
    pub async fn delete_namespace(&self, registry_id: &str, name: &str, force: bool) -> Result<()> {
        let r = self.open(registry_id).await?;
        r.namespace("name", name)?;
        let capability = r.capability();
        r.require(capability.manage_namespaces, "delete namespaces")?;
        let repositories = self.repositories_of(&r, name).await?;
        if !repositories.is_empty() {
            if !force {
                return Err(Error::FailedPrecondition {
                    reason: "NAMESPACE_NOT_EMPTY",
                    message: format!(
                        "namespace {name:?} holds {} repositor{}; delete them first or pass \
                         force",
                        repositories.len(),
                        if repositories.len() == 1 { "y" } else { "ies" }
                    ),
                });
            }
            r.require(
                capability.delete_repository,
                "delete the repositories of a namespace (force)",
            )?;
            for repository in &repositories {
                r.client
                    .delete_repository(repository)
                    .await
                    .map_err(|e| vendor_error(e, "name"))?;
            }
        }
        r.client
            .delete_namespace(name)
            .await
            .map_err(|e| vendor_error(e, "name"))?;
        tracing::info!(registry = %r.row.id, namespace = %name, force, "registry namespace deleted");
        Ok(())
    }

    /// Every repository of a namespace (walked page by page; bounded).
    async fn repositories_of(&self, r: &Opened, namespace: &str) -> Result<Vec<String>> {
        const MOST: usize = 100_000;
        let mut names = Vec::new();
        let mut request = PageRequest {
            size: 1000,
            cursor: None,
        };
        loop {
            let listed = r
                .client
                .list_repositories(Some(namespace), &request)
                .await
                .map_err(|e| vendor_error(e, "name"))?;
            names.extend(listed.items.into_iter().map(|repo| repo.name));
            match listed.next {
                Some(next) if names.len() < MOST => request.cursor = Some(next),
                _ => return Ok(names),
            }
        }
    }

    pub async fn list_repositories(
        &self,
        registry_id: &str,
        namespace: &str,
        p: Paging,
    ) -> Result<Page<Repository>> {
        let r = self.open(registry_id).await?;
        if namespace.is_empty() {
            r.require(
                r.capability().list_all_repositories,
                "list every repository (name a namespace)",
            )?;
        } else {
            r.namespace("namespace", namespace)?;
        }
        let page = CursorPage::parse(
            p.page_size,
            &p.page_token,
            &r.key("repositories", &[namespace]),
        )?;
        let listed = r
            .client
            .list_repositories(Some(namespace).filter(|n| !n.is_empty()), &page.request)
            .await
            .map_err(|e| vendor_error(e, "namespace"))?;
        Ok(page_of(listed, &page, |repo| repo))
    }

    pub async fn delete_repository(&self, registry_id: &str, repository: &str) -> Result<()> {
        let r = self.open(registry_id).await?;
        names::repository("repository", repository)?;
        r.require(r.capability().delete_repository, "delete repositories")?;
        r.client
            .delete_repository(repository)
            .await
            .map_err(|e| vendor_error(e, "repository"))?;
        tracing::info!(registry = %r.row.id, %repository, "registry repository deleted");
        Ok(())
    }

    pub async fn list_tags(
        &self,
        registry_id: &str,
        repository: &str,
        p: Paging,
    ) -> Result<Page<String>> {
        let r = self.open(registry_id).await?;
        names::repository("repository", repository)?;
        let page = CursorPage::parse(p.page_size, &p.page_token, &r.key("tags", &[repository]))?;
        let listed = r
            .client
            .list_tags(repository, &page.request)
            .await
            .map_err(|e| vendor_error(e, "repository"))?;
        Ok(page_of(listed, &page, |t| t))
    }

    pub async fn list_artifacts(
        &self,
        scope: &Scope,
        registry_id: &str,
        repository: &str,
        p: Paging,
        include_deployments: bool,
    ) -> Result<ArtifactPage> {
        let r = self.open(registry_id).await?;
        names::repository("repository", repository)?;
        let page = CursorPage::parse(
            p.page_size,
            &p.page_token,
            &r.key("artifacts", &[repository]),
        )?;
        let listed = r
            .client
            .list_artifacts(repository, &page.request)
            .await
            .map_err(|e| vendor_error(e, "repository"))?;
        let page = page_of(listed, &page, |artifact| ArtifactView {
            artifact,
            deployments: Vec::new(),
        });
        self.with_deployments(scope, page, include_deployments)
            .await
    }

    pub async fn get_artifact(
        &self,
        scope: &Scope,
        registry_id: &str,
        repository: &str,
        reference: &str,
        include_deployments: bool,
    ) -> Result<(ArtifactView, Vec<UnsearchedCluster>)> {
        let r = self.open(registry_id).await?;
        names::repository("repository", repository)?;
        names::reference("reference", reference)?;
        let artifact = r
            .client
            .get_artifact(repository, reference)
            .await
            .map_err(|e| vendor_error(e, "reference"))?;
        let page = Page {
            items: vec![ArtifactView {
                artifact,
                deployments: Vec::new(),
            }],
            next_page_token: String::new(),
            total_size: 1,
        };
        let mut found = self
            .with_deployments(scope, page, include_deployments)
            .await?;
        let view = found
            .page
            .items
            .pop()
            .ok_or_else(|| Error::Internal("artifact lost on the way".into()))?;
        Ok((view, found.unreachable))
    }

    async fn with_deployments(
        &self,
        scope: &Scope,
        mut page: Page<ArtifactView>,
        include: bool,
    ) -> Result<ArtifactPage> {
        if !include {
            return Ok(ArtifactPage {
                page,
                unreachable: Vec::new(),
            });
        }
        let digests: Vec<String> = page
            .items
            .iter()
            .map(|v| v.artifact.digest.clone())
            .collect();
        let mut found = self.deployments.find(scope, &digests).await?;
        for view in &mut page.items {
            view.deployments = found
                .by_digest
                .remove(&view.artifact.digest)
                .unwrap_or_default();
        }
        Ok(ArtifactPage {
            page,
            unreachable: found.unreachable,
        })
    }

    /// Deletes a tag, or an artifact by digest. One that runs somewhere `scope` can see (or in
    /// a cluster that could not be searched) is FAILED_PRECONDITION naming the workloads,
    /// unless `force`.
    pub async fn delete_artifact(
        &self,
        scope: &Scope,
        registry_id: &str,
        repository: &str,
        reference: &str,
        force: bool,
    ) -> Result<()> {
        let r = self.open(registry_id).await?;
        names::repository("repository", repository)?;
        let kind = names::reference("reference", reference)?;
        let capability = r.capability();
        match kind {
            Reference::Digest => r.require(capability.delete_artifact, "delete artifacts")?,
            Reference::Tag => r.require(capability.delete_tag, "delete tags")?,
        }
        if !force {
            let digest = match kind {
                Reference::Digest => reference.to_string(),
                Reference::Tag => {
                    r.client
                        .get_artifact(repository, reference)
                        .await
                        .map_err(|e| vendor_error(e, "reference"))?
                        .digest
                }
            };
            let found = self
                .deployments
                .find(scope, std::slice::from_ref(&digest))
                .await?;
            if let Some(running) = found.by_digest.get(&digest).filter(|d| !d.is_empty()) {
                let pods: i32 = running.iter().map(|d| d.pod_count).sum();
                return Err(Error::FailedPrecondition {
                    reason: "ARTIFACT_IN_USE",
                    message: format!(
                        "{repository}:{reference} ({digest}) runs in {pods} pod(s) of {}; \
                         pass force to delete it anyway",
                        running
                            .iter()
                            .map(Deployment::path)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            if !found.unreachable.is_empty() {
                return Err(Error::FailedPrecondition {
                    reason: "DEPLOYMENTS_UNKNOWN",
                    message: format!(
                        "cannot tell whether {repository}:{reference} runs in cluster(s) {} \
                         (not reachable now); pass force to delete it anyway",
                        found
                            .unreachable
                            .iter()
                            .map(|u| u.cluster_id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let deleted = match kind {
            Reference::Digest => r.client.delete_artifact(repository, reference).await,
            Reference::Tag => r.client.delete_tag(repository, reference).await,
        };
        deleted.map_err(|e| vendor_error(e, "reference"))?;
        tracing::info!(registry = %r.row.id, %repository, %reference, force, "registry artifact deleted");
        Ok(())
    }

    pub async fn list_charts(
        &self,
        registry_id: &str,
        namespace: &str,
        p: Paging,
    ) -> Result<Page<Chart>> {
        let r = self.open(registry_id).await?;
        if !namespace.is_empty() {
            r.namespace("namespace", namespace)?;
        }
        r.require(r.capability().oci_charts, "list Helm charts")?;
        let page = CursorPage::parse(p.page_size, &p.page_token, &r.key("charts", &[namespace]))?;
        let listed = r
            .client
            .list_charts(Some(namespace).filter(|n| !n.is_empty()), &page.request)
            .await
            .map_err(|e| vendor_error(e, "namespace"))?;
        Ok(page_of(listed, &page, |c| c))
    }

    pub async fn list_chart_versions(
        &self,
        registry_id: &str,
        namespace: &str,
        chart: &str,
        p: Paging,
    ) -> Result<Page<ChartVersion>> {
        let r = self.open(registry_id).await?;
        r.namespace("namespace", namespace)?;
        names::chart("chart", chart)?;
        r.require(r.capability().oci_charts, "list Helm charts")?;
        let page = CursorPage::parse(
            p.page_size,
            &p.page_token,
            &r.key("chart_versions", &[namespace, chart]),
        )?;
        let listed = r
            .client
            .list_chart_versions(namespace, chart, &page.request)
            .await
            .map_err(|e| vendor_error(e, "chart"))?;
        Ok(page_of(listed, &page, |v| v))
    }
}
