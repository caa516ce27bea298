//! `OciProvider`: any registry that speaks the OCI distribution API (CNCF Distribution, Debian's
//! docker-registry, Zot, GitLab's, …) through the registry traits.
//!
//! Paging is absorbed here. Registries page tags and the catalog with `n`/`last` and `Link`, but
//! not all of them honour it: docker-registry 2.8 ignores `n`/`last` on tag lists and returns
//! every tag, unsorted. Every page is therefore sorted here, filtered to names after the cursor
//! and cut to the page size; the cursor is the last name returned, so it stays correct whether
//! the registry paged or not.
//!
//! Namespaces are the first path component of repository names (read-only: plain registries
//! have no namespace API). Without a catalog (`/v2/_catalog` answering 404, or refused to the
//! account) neither all repositories nor those of a namespace can be discovered: those calls
//! answer `Unsupported` and say so.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;

use super::{
    client::{self, OciClient, delete_scope, pull_scope},
    config::OciSettings,
    error::VENDOR,
    spec::{self, Manifest},
};
use crate::{
    adapters::{
        ErrorClass, Result, TransportSettings, VendorError,
        registry::{
            Artifact, ArtifactKind, Chart, ChartVersion, CredentialKind, Listed, LoginInfo,
            Namespace, PageRequest, RegistryCapability, RegistryClient, RegistryCredentials,
            RegistryProvider, RegistryTarget, Repository, TargetViolation, outbound::checked_http,
        },
        transport::Idempotency,
    },
    net::OutboundPolicy,
};

/// The provider: stateless apart from its settings.
pub struct OciProvider {
    transport: TransportSettings,
    policy: Arc<OutboundPolicy>,
    settings: OciSettings,
}

impl OciProvider {
    pub fn new(
        transport: TransportSettings,
        policy: Arc<OutboundPolicy>,
        settings: OciSettings,
    ) -> OciProvider {
        OciProvider {
            transport,
            policy,
            settings,
        }
    }
}

pub(super) fn invalid(
    operation: &'static str,
    code: &str,
    message: impl Into<String>,
) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        code,
        message,
    )
}

/// The endpoint as a base URL: http(s), a host, nothing after it.
fn parse_endpoint(endpoint: &str) -> std::result::Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(endpoint.trim_end_matches('/')).map_err(|err| {
        format!("{endpoint:?} is not a URL such as https://registry.example.com: {err}")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{endpoint:?}: the scheme must be https (or http)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{endpoint:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the endpoint must not carry credentials: use a credential".into());
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!(
            "{endpoint:?}: the distribution API lives at /v2/ on the host; give the endpoint without a path"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{endpoint:?} must not have a query or fragment"));
    }
    Ok(url)
}

impl RegistryProvider for OciProvider {
    fn id(&self) -> &'static str {
        VENDOR
    }

    fn display_name(&self) -> &'static str {
        "OCI registry (distribution API)"
    }

    fn capability(&self) -> RegistryCapability {
        RegistryCapability {
            manage_namespaces: false,
            namespace_visibility: false,
            delete_repository: false,
            delete_artifact: true,
            delete_tag: true,
            pull_counts: false,
            oci_charts: true,
            issue_pull_credential: false,
            // Only when the registry serves `_catalog`; the call says so when it does not.
            list_all_repositories: true,
        }
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[CredentialKind::Anonymous, CredentialKind::UsernamePassword]
    }

    fn check_target(&self, target: &RegistryTarget) -> Vec<TargetViolation> {
        let mut violations = Vec::new();
        if let Err(description) = parse_endpoint(&target.endpoint) {
            violations.push(TargetViolation {
                field: "endpoint".into(),
                description,
            });
        }
        if !target.region.is_empty() {
            violations.push(TargetViolation {
                field: "region".into(),
                description: "a plain OCI registry has no region; leave it empty".into(),
            });
        }
        if !target.instance_id.is_empty() {
            violations.push(TargetViolation {
                field: "vendor_instance_id".into(),
                description: "a plain OCI registry has no instance id; leave it empty".into(),
            });
        }
        violations
    }

    fn check_namespace_name(&self, name: &str) -> std::result::Result<(), String> {
        spec::check_namespace_name(name)
    }

    fn open(&self, target: RegistryTarget) -> Result<Arc<dyn RegistryClient>> {
        let base =
            parse_endpoint(&target.endpoint).map_err(|m| invalid("Open", "BadEndpoint", m))?;
        let credentials = match target.credentials {
            RegistryCredentials::Anonymous => None,
            RegistryCredentials::UsernamePassword { username, password } => {
                Some((username, password))
            }
            RegistryCredentials::Cloud(_) => {
                return Err(invalid(
                    "Open",
                    "WrongCredentialKind",
                    "an OCI registry takes a username and password (or none), not a cloud access key",
                ));
            }
        };
        let (http, resolver) = checked_http(
            &self.transport,
            &self.policy,
            target.ca_pem.as_deref(),
            VENDOR,
            &base,
        )?;
        Ok(Arc::new(OciRegistry {
            client: OciClient::new(base, http, resolver, credentials, self.settings.clone()),
        }))
    }
}

/// One registry, logged in lazily (the first call answers its challenge).
pub struct OciRegistry {
    pub(super) client: OciClient,
}

impl OciRegistry {
    pub(super) fn check_repository(operation: &'static str, repository: &str) -> Result<()> {
        spec::check_repository_name(repository).map_err(|why| {
            invalid(
                operation,
                "NAME_INVALID",
                format!("repository {repository:?}: {why}"),
            )
        })
    }

    pub(super) async fn get_manifest(
        &self,
        operation: &'static str,
        repository: &str,
        reference: &str,
    ) -> Result<(Manifest, String, String, u64)> {
        let raw = self
            .client
            .send(
                operation,
                &pull_scope(repository),
                Idempotency::Idempotent,
                |auth| {
                    client::manifest_request(
                        &self.client,
                        http::Method::GET,
                        repository,
                        reference,
                        auth,
                    )
                },
            )
            .await?;
        let manifest: Manifest = raw.json(VENDOR, operation)?;
        let content_type = raw
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media_type = manifest.effective_media_type(content_type);
        let digest = raw
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| spec::is_digest(d))
            .map(str::to_string)
            .unwrap_or_else(|| digest_of(&raw.body));
        Ok((manifest, media_type, digest, raw.body.len() as u64))
    }

    pub(super) async fn artifact(
        &self,
        operation: &'static str,
        repository: &str,
        reference: &str,
        tag: Option<&str>,
    ) -> Result<(Artifact, Manifest)> {
        let (manifest, media_type, digest, bytes) =
            self.get_manifest(operation, repository, reference).await?;
        let artifact_type = manifest.artifact_type();
        let layer_types: Vec<&str> = manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        let kind = spec::artifact_kind(&media_type, &artifact_type, &layer_types, tag);
        let artifact = Artifact {
            digest,
            tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            artifact_type,
            kind,
            size_bytes: manifest.total_size(bytes),
            platforms: if manifest.is_index(&media_type) {
                manifest.platforms()
            } else {
                Vec::new()
            },
            media_type,
            pushed: None,
            pulled: None,
        };
        Ok((artifact, manifest))
    }

    pub(super) async fn get_blob(
        &self,
        operation: &'static str,
        repository: &str,
        digest: &str,
    ) -> Result<bytes::Bytes> {
        let raw = self
            .client
            .send(
                operation,
                &pull_scope(repository),
                Idempotency::Idempotent,
                |auth| client::blob_request(&self.client, repository, digest, auth),
            )
            .await?;
        if (300..400).contains(&raw.status) {
            return Err(VendorError::new(
                ErrorClass::Unsupported,
                VENDOR,
                operation,
                "Redirect",
                "the registry redirects blob reads to another host (storage redirects), which is not followed",
            )
            .with_status(raw.status));
        }
        Ok(raw.body)
    }
}

fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[async_trait]
impl RegistryClient for OciRegistry {
    fn provider(&self) -> &'static str {
        VENDOR
    }

    async fn login(&self) -> Result<LoginInfo> {
        let raw = self
            .client
            .send("Login", "", Idempotency::Idempotent, |auth| {
                client::ping_request(&self.client, auth)
            })
            .await?;
        let api_version = raw
            .headers
            .get("docker-distribution-api-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("registry/2.0")
            .to_string();
        Ok(LoginInfo {
            api_version,
            credential_expires: None,
        })
    }

    async fn list_namespaces(&self, page: &PageRequest) -> Result<Listed<Namespace>> {
        let all = self.whole_catalog("ListNamespaces").await?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for repository in &all {
            *counts
                .entry(spec::namespace_of(repository).to_string())
                .or_default() += 1;
        }
        let total = counts.len() as u64;
        let size = page.size.max(1) as usize;
        let mut items: Vec<Namespace> = counts
            .into_iter()
            .filter(|(name, _)| page.cursor.as_deref().is_none_or(|c| name.as_str() > c))
            .take(size + 1)
            .map(|(name, count)| Namespace {
                name,
                public: false,
                repository_count: Some(count),
                created: None,
            })
            .collect();
        let more = items.len() > size;
        items.truncate(size);
        Ok(Listed {
            next: more.then(|| items.last().map(|n| n.name.clone())).flatten(),
            items,
            total: Some(total),
        })
    }

    async fn list_repositories(
        &self,
        namespace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Listed<Repository>> {
        let operation = "ListRepositories";
        let (names, more) = match namespace {
            Some(ns) => {
                spec::check_namespace_name(ns)
                    .map_err(|why| invalid(operation, "NAME_INVALID", why))?;
                self.namespace_repositories(operation, ns, page.size.max(1), page.cursor.as_deref())
                    .await?
            }
            None => {
                let page = self
                    .name_page(operation, None, page.size, page.cursor.as_deref())
                    .await?;
                (page.names, page.more)
            }
        };
        let next = if more { names.last().cloned() } else { None };
        Ok(Listed {
            items: names
                .into_iter()
                .map(|name| Repository {
                    namespace: spec::namespace_of(&name).to_string(),
                    name,
                    artifact_count: None,
                    pull_count: None,
                    updated: None,
                })
                .collect(),
            next,
            total: None,
        })
    }

    async fn list_tags(&self, repository: &str, page: &PageRequest) -> Result<Listed<String>> {
        Self::check_repository("ListTags", repository)?;
        let names = self
            .name_page(
                "ListTags",
                Some(repository),
                page.size,
                page.cursor.as_deref(),
            )
            .await?;
        Ok(Listed {
            next: if names.more {
                names.names.last().cloned()
            } else {
                None
            },
            items: names.names,
            total: None,
        })
    }

    /// Artifacts of one page of tags (in tag order), grouped by digest within the page. The
    /// referrers tag-schema fallback (`sha256-<hex>` holding an index of referrers) is shown
    /// as the referrers it lists — signatures, SBOMs — not as an index.
    async fn list_artifacts(
        &self,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<Artifact>> {
        let operation = "ListArtifacts";
        Self::check_repository(operation, repository)?;
        let tags = self
            .name_page(
                operation,
                Some(repository),
                page.size,
                page.cursor.as_deref(),
            )
            .await?;
        let mut artifacts: Vec<Artifact> = Vec::new();
        for tag in &tags.names {
            let (artifact, manifest) =
                match self.artifact(operation, repository, tag, Some(tag)).await {
                    Ok(found) => found,
                    // Deleted between the tag list and the read.
                    Err(err) if err.is_not_found() => continue,
                    Err(err) => return Err(err),
                };
            let referrers_index = spec::referrers_tag_suffix(tag) == Some("")
                && artifact.kind == ArtifactKind::ImageIndex;
            if referrers_index {
                for referrer in &manifest.manifests {
                    if artifacts.iter().any(|a| a.digest == referrer.digest) {
                        continue;
                    }
                    match self
                        .artifact(operation, repository, &referrer.digest, None)
                        .await
                    {
                        Ok((found, _)) => artifacts.push(found),
                        Err(err) if err.is_not_found() => {}
                        Err(err) => return Err(err),
                    }
                }
                continue;
            }
            match artifacts.iter_mut().find(|a| a.digest == artifact.digest) {
                Some(existing) => existing.tags.push(tag.clone()),
                None => artifacts.push(artifact),
            }
        }
        Ok(Listed {
            next: if tags.more {
                tags.names.last().cloned()
            } else {
                None
            },
            items: artifacts,
            total: None,
        })
    }

    async fn get_artifact(&self, repository: &str, reference: &str) -> Result<Artifact> {
        let operation = "GetArtifact";
        Self::check_repository(operation, repository)?;
        let tag = if spec::is_digest(reference) {
            None
        } else if spec::is_tag(reference) {
            Some(reference)
        } else {
            return Err(invalid(
                operation,
                "TAG_INVALID",
                format!("{reference:?} is neither a tag nor a digest (sha256:<64 hex>)"),
            ));
        };
        Ok(self
            .artifact(operation, repository, reference, tag)
            .await?
            .0)
    }

    /// OCI tag deletion (`DELETE /v2/<name>/manifests/<tag>`; Distribution v3 untags). Registries
    /// that delete manifests only by digest (docker-registry 2.8) would lose every tag of the
    /// artifact that way, so that is refused as unsupported rather than done.
    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        let operation = "DeleteTag";
        Self::check_repository(operation, repository)?;
        if !spec::is_tag(tag) {
            return Err(invalid(
                operation,
                "TAG_INVALID",
                format!("{tag:?} is not a tag"),
            ));
        }
        let result = self
            .client
            .send(
                operation,
                &delete_scope(repository),
                Idempotency::Idempotent,
                |auth| {
                    client::manifest_request(
                        &self.client,
                        http::Method::DELETE,
                        repository,
                        tag,
                        auth,
                    )
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(err.code.as_str(), "DIGEST_INVALID" | "UNSUPPORTED")
                    || err.http_status == 405 =>
            {
                // Say "not found" for a tag that is not there, whatever the registry can delete.
                self.get_manifest(operation, repository, tag).await?;
                Err(VendorError::new(
                    ErrorClass::Unsupported,
                    VENDOR,
                    operation,
                    err.code,
                    "this registry deletes manifests only by digest, which would remove every tag of the artifact: delete the artifact by digest instead",
                )
                .with_status(err.http_status))
            }
            Err(err) => Err(err),
        }
    }

    async fn delete_artifact(&self, repository: &str, digest: &str) -> Result<()> {
        let operation = "DeleteArtifact";
        Self::check_repository(operation, repository)?;
        if !spec::is_digest(digest) {
            return Err(invalid(
                operation,
                "DIGEST_INVALID",
                format!("{digest:?} is not a digest (sha256:<64 hex>)"),
            ));
        }
        self.client
            .send(
                operation,
                &delete_scope(repository),
                Idempotency::Idempotent,
                |auth| {
                    client::manifest_request(
                        &self.client,
                        http::Method::DELETE,
                        repository,
                        digest,
                        auth,
                    )
                },
            )
            .await
            .map(|_| ())
    }

    /// Repositories (of `namespace`, or of the catalog) whose newest tag is a Helm chart, after
    /// the cursor (a repository name). A page looks into at most `chart_probes_per_page`
    /// repositories and may hold fewer charts than asked for; its cursor goes on from there.
    async fn list_charts(
        &self,
        namespace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Listed<Chart>> {
        let operation = "ListCharts";
        let size = page.size.max(1) as usize;
        let probes = self.client.settings.chart_probes_per_page.max(1);
        let (repositories, more) = match namespace {
            Some(ns) => {
                spec::check_namespace_name(ns)
                    .map_err(|why| invalid(operation, "NAME_INVALID", why))?;
                self.namespace_repositories(operation, ns, probes, page.cursor.as_deref())
                    .await?
            }
            None => {
                let page = self
                    .name_page(operation, None, probes, page.cursor.as_deref())
                    .await?;
                (page.names, page.more)
            }
        };
        let mut charts = Vec::new();
        let mut last_probed = None;
        for repository in &repositories {
            if charts.len() == size {
                break;
            }
            last_probed = Some(repository.clone());
            if let Some(chart) = self.chart_of(repository).await? {
                charts.push(chart);
            }
        }
        let probed_all = last_probed.as_ref() == repositories.last();
        let next = if more || !probed_all {
            last_probed
        } else {
            None
        };
        Ok(Listed {
            items: charts,
            next,
            total: None,
        })
    }

    /// Versions of a chart, one per tag (in tag order), skipping tags that are not Helm charts.
    async fn list_chart_versions(
        &self,
        namespace: &str,
        chart: &str,
        page: &PageRequest,
    ) -> Result<Listed<ChartVersion>> {
        let operation = "ListChartVersions";
        let mut repository = format!("{namespace}/{chart}");
        if chart == namespace && spec::check_repository_name(&repository).is_ok() {
            // A one-component repository is listed as its own namespace and chart.
            let probe = self.name_page(operation, Some(&repository), 1, None).await;
            if probe.as_ref().is_err_and(VendorError::is_not_found) {
                repository = chart.to_string();
            }
        }
        Self::check_repository(operation, &repository)?;
        let tags = self
            .name_page(
                operation,
                Some(&repository),
                page.size,
                page.cursor.as_deref(),
            )
            .await?;
        let mut versions = Vec::new();
        for tag in tags
            .names
            .iter()
            .filter(|t| spec::referrers_tag_suffix(t).is_none())
        {
            let (manifest, _, digest, _) =
                match self.get_manifest(operation, &repository, tag).await {
                    Ok(found) => found,
                    Err(err) if err.is_not_found() => continue,
                    Err(err) => return Err(err),
                };
            if manifest.artifact_type() != spec::HELM_CONFIG {
                continue;
            }
            let config = self.chart_config(operation, &repository, &manifest).await?;
            versions.push(ChartVersion {
                version: config.version.unwrap_or_else(|| tag.replace('_', "+")),
                app_version: config.app_version.unwrap_or_default(),
                description: config.description.unwrap_or_default(),
                digest,
                created: None,
            });
        }
        Ok(Listed {
            next: if tags.more {
                tags.names.last().cloned()
            } else {
                None
            },
            items: versions,
            total: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::registry::oci::{charts::chart_name, listing::just_before};

    #[test]
    fn endpoints() {
        assert!(parse_endpoint("https://registry.example.com").is_ok());
        assert!(parse_endpoint("http://127.0.0.1:5000/").is_ok());
        assert!(parse_endpoint("ftp://x").unwrap_err().contains("scheme"));
        assert!(
            parse_endpoint("https://u:p@x")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(parse_endpoint("https://x/v2").unwrap_err().contains("path"));
        assert!(parse_endpoint("registry.example.com").is_err());
    }

    #[test]
    fn namespace_walk_starts_before_every_name_of_the_namespace() {
        let start = just_before("team");
        for name in ["team", "team/app", "team/a/b"] {
            assert!(start.as_str() < name, "{start:?} < {name:?}");
        }
        assert!(
            start.as_str() > "teal/zzz",
            "names of other namespaces before it are skipped"
        );
        assert_eq!(chart_name("charts/nginx"), "nginx");
        assert_eq!(chart_name("a/b/c"), "b/c");
        assert_eq!(chart_name("solo"), "solo");
    }
}
