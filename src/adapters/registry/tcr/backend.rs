//! `TcrProvider` (the `tcr` and `tcr-personal` providers) and `TcrClient` (one TCR Enterprise
//! instance): namespaces, repositories and images in Flotilla's shapes, the page-number
//! `Offset` behind the adapter's item-offset cursor, and instance tokens for pulling.

use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{
    api::{Api, decode_offset, invalid, next_cursor, page_size, page_window},
    client::{self, MAX_PAGE_SIZE},
    config::{Edition, TcrConfig},
    error::VENDOR,
    personal::PersonalClient,
    spec,
};
use crate::adapters::{
    Credentials, LimitKey, VendorHttp,
    error::{ErrorClass, Result, VendorError},
    registry::{
        Artifact, ArtifactKind, CredentialKind, Listed, LoginInfo, Namespace, PageRequest,
        PullCredential, PullScope, RegistryCapability, RegistryClient, RegistryCredentials,
        RegistryProvider, RegistryTarget, Repository, TargetViolation,
    },
    transport::Idempotency,
};

/// The `tcr` / `tcr-personal` provider. Cheap to clone; clones share the transport.
#[derive(Clone)]
pub struct TcrProvider {
    http: VendorHttp,
    config: TcrConfig,
    edition: Edition,
}

impl TcrProvider {
    pub fn new(http: VendorHttp, config: TcrConfig, edition: Edition) -> TcrProvider {
        TcrProvider {
            http,
            config,
            edition,
        }
    }
}

impl RegistryProvider for TcrProvider {
    fn id(&self) -> &'static str {
        match self.edition {
            Edition::Enterprise => "tcr",
            Edition::Personal => "tcr-personal",
        }
    }

    fn display_name(&self) -> &'static str {
        match self.edition {
            Edition::Enterprise => "Tencent Container Registry (Enterprise Edition)",
            Edition::Personal => "Tencent Container Registry (Personal Edition)",
        }
    }

    fn capability(&self) -> RegistryCapability {
        let enterprise = self.edition == Edition::Enterprise;
        RegistryCapability {
            manage_namespaces: true,
            namespace_visibility: enterprise,
            delete_repository: true,
            delete_artifact: false,
            delete_tag: true,
            pull_counts: !enterprise,
            oci_charts: false,
            issue_pull_credential: enterprise,
            list_all_repositories: true,
        }
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[CredentialKind::AccessKey]
    }

    fn check_target(&self, target: &RegistryTarget) -> Vec<TargetViolation> {
        let mut violations = spec::check_target(target, self.edition);
        if !matches!(
            target.credentials,
            RegistryCredentials::Cloud(Credentials::AccessKey { .. })
        ) {
            violations.push(TargetViolation {
                field: "credential_id".into(),
                description: "TCR is reached with a Tencent Cloud API key (SecretId and SecretKey)"
                    .into(),
            });
        }
        violations
    }

    fn check_namespace_name(&self, name: &str) -> std::result::Result<(), String> {
        spec::check_namespace_name(name)
    }

    fn open(&self, target: RegistryTarget) -> Result<Arc<dyn RegistryClient>> {
        if let Some(violation) = self.check_target(&target).into_iter().next() {
            return Err(invalid(
                "Open",
                "InvalidTarget",
                format!("{}: {}", violation.field, violation.description),
            ));
        }
        let RegistryCredentials::Cloud(Credentials::AccessKey { id, secret }) = target.credentials
        else {
            return Err(invalid(
                "Open",
                "WrongCredentialKind",
                "TCR needs an API key",
            ));
        };
        let api = Api {
            http: self.http.clone(),
            key: LimitKey {
                vendor: VENDOR,
                account: id.clone(),
                region: target.region.clone(),
            },
            endpoint: self.config.api_endpoint(),
            region: target.region,
            secret_id: id,
            secret_key: secret,
        };
        let registry_host = spec::registry_host(&target.endpoint)
            .map_err(|message| invalid("Open", "InvalidTarget", message))?;
        Ok(match self.edition {
            Edition::Enterprise => Arc::new(TcrClient {
                api,
                registry_id: target.instance_id,
                registry_host,
            }),
            Edition::Personal => Arc::new(PersonalClient::new(api)),
        })
    }
}

/// One TCR Enterprise instance.
pub struct TcrClient {
    api: Api,
    registry_id: String,
    registry_host: String,
}

fn artifact(image: client::WireImage) -> Artifact {
    let kind = match image.kind.to_ascii_lowercase().as_str() {
        "image" | "docker" | "oci" => ArtifactKind::Image,
        "helm" | "chart" | "helm-chart" => ArtifactKind::HelmChart,
        _ => ArtifactKind::Other,
    };
    Artifact {
        digest: image.digest,
        tags: vec![image.image_version],
        // The management API names a kind, not a media type; that takes the /v2 data plane.
        media_type: String::new(),
        artifact_type: String::new(),
        kind,
        size_bytes: image.size,
        platforms: Vec::new(),
        pushed: client::parse_time(&image.update_time),
        pulled: None,
    }
}

impl TcrClient {
    /// One DescribeImages page at item `offset`.
    async fn images(
        &self,
        operation: &'static str,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<client::WireImage>> {
        let (namespace, name) =
            spec::split_repository(repository).map_err(|m| invalid(operation, "InvalidName", m))?;
        let offset = decode_offset(operation, page)?;
        let size = page_size(page);
        let (page_no, skip) = page_window(offset, size);
        let listed: client::ImagesPage = self
            .api
            .call(
                "DescribeImages",
                Idempotency::Idempotent,
                &client::DescribeImages {
                    registry_id: &self.registry_id,
                    namespace_name: namespace,
                    repository_name: name,
                    image_version: None,
                    digest: None,
                    exact_match: None,
                    limit: size,
                    offset: page_no,
                },
            )
            .await?;
        let items: Vec<client::WireImage> = listed
            .image_info_list
            .into_iter()
            .skip(skip)
            .take(size as usize)
            .collect();
        Ok(Listed {
            next: next_cursor(offset, items.len(), listed.total_count),
            total: Some(listed.total_count),
            items,
        })
    }
}

#[async_trait]
impl RegistryClient for TcrClient {
    fn provider(&self) -> &'static str {
        "tcr"
    }

    /// DescribeInstances for this instance: the key works and the instance exists here.
    async fn login(&self) -> Result<LoginInfo> {
        let op = "DescribeInstances";
        let listed: client::InstancesPage = self
            .api
            .call(
                op,
                Idempotency::Idempotent,
                &client::DescribeInstances {
                    registry_ids: [&self.registry_id],
                    offset: 0,
                    limit: 1,
                },
            )
            .await?;
        if !listed
            .registries
            .iter()
            .any(|r| r.registry_id == self.registry_id)
        {
            return Err(VendorError::new(
                ErrorClass::VendorNotFound,
                VENDOR,
                op,
                "ResourceNotFound.TcrResourceNotFound",
                format!(
                    "no TCR instance {} in region {}",
                    self.registry_id, self.api.region
                ),
            ));
        }
        Ok(LoginInfo {
            api_version: client::VERSION.into(),
            credential_expires: None,
        })
    }

    async fn list_namespaces(&self, page: &PageRequest) -> Result<Listed<Namespace>> {
        let op = "DescribeNamespaces";
        let offset = decode_offset(op, page)?;
        let size = page_size(page);
        let (page_no, skip) = page_window(offset, size);
        let listed: client::NamespacesPage = self
            .api
            .call(
                op,
                Idempotency::Idempotent,
                &client::DescribeNamespaces {
                    registry_id: &self.registry_id,
                    limit: size,
                    offset: page_no,
                },
            )
            .await?;
        let items: Vec<Namespace> = listed
            .namespace_list
            .into_iter()
            .skip(skip)
            .take(size as usize)
            .map(|ns| Namespace {
                created: client::parse_time(&ns.creation_time),
                name: ns.name,
                public: ns.public,
                repository_count: None,
            })
            .collect();
        Ok(Listed {
            next: next_cursor(offset, items.len(), listed.total_count),
            total: Some(listed.total_count),
            items,
        })
    }

    async fn create_namespace(&self, name: &str, public: bool) -> Result<Namespace> {
        let op = "CreateNamespace";
        spec::check_namespace_name(name).map_err(|m| invalid(op, "InvalidName", m))?;
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &client::CreateNamespace {
                    registry_id: &self.registry_id,
                    namespace_name: name,
                    is_public: public,
                },
            )
            .await?;
        Ok(Namespace {
            name: name.into(),
            public,
            repository_count: Some(0),
            created: None,
        })
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        let op = "DeleteNamespace";
        spec::check_namespace_name(name).map_err(|m| invalid(op, "InvalidName", m))?;
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &client::DeleteNamespace {
                    registry_id: &self.registry_id,
                    namespace_name: name,
                },
            )
            .await?;
        Ok(())
    }

    async fn list_repositories(
        &self,
        namespace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Listed<Repository>> {
        let op = "DescribeRepositories";
        if let Some(namespace) = namespace {
            spec::check_namespace_name(namespace).map_err(|m| invalid(op, "InvalidName", m))?;
        }
        let offset = decode_offset(op, page)?;
        let size = page_size(page);
        let (page_no, skip) = page_window(offset, size);
        let listed: client::RepositoriesPage = self
            .api
            .call(
                op,
                Idempotency::Idempotent,
                &client::DescribeRepositories {
                    registry_id: &self.registry_id,
                    namespace_name: namespace,
                    limit: size,
                    offset: page_no,
                },
            )
            .await?;
        let items: Vec<Repository> = listed
            .repository_list
            .into_iter()
            .skip(skip)
            .take(size as usize)
            .map(|repo| {
                // `Name` may or may not carry the namespace (UNCONFIRMED): take either.
                let prefix = format!("{}/", repo.namespace);
                let name = if repo.name.starts_with(&prefix) || repo.namespace.is_empty() {
                    repo.name
                } else {
                    format!("{prefix}{}", repo.name)
                };
                let namespace = match repo.namespace.is_empty() {
                    true => name.split('/').next().unwrap_or_default().to_string(),
                    false => repo.namespace,
                };
                Repository {
                    name,
                    namespace,
                    artifact_count: None,
                    pull_count: None,
                    updated: client::parse_time(&repo.update_time),
                }
            })
            .collect();
        Ok(Listed {
            next: next_cursor(offset, items.len(), listed.total_count),
            total: Some(listed.total_count),
            items,
        })
    }

    async fn delete_repository(&self, repository: &str) -> Result<()> {
        let op = "DeleteRepository";
        let (namespace, name) =
            spec::split_repository(repository).map_err(|m| invalid(op, "InvalidName", m))?;
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &client::DeleteRepository {
                    registry_id: &self.registry_id,
                    namespace_name: namespace,
                    repository_name: name,
                    force_delete: true,
                },
            )
            .await?;
        Ok(())
    }

    async fn list_tags(&self, repository: &str, page: &PageRequest) -> Result<Listed<String>> {
        let listed = self.images("ListTags", repository, page).await?;
        Ok(Listed {
            items: listed.items.into_iter().map(|i| i.image_version).collect(),
            next: listed.next,
            total: listed.total,
        })
    }

    /// One artifact per tag, as DescribeImages lists them.
    async fn list_artifacts(
        &self,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<Artifact>> {
        let listed = self.images("ListArtifacts", repository, page).await?;
        Ok(Listed {
            items: listed.items.into_iter().map(artifact).collect(),
            next: listed.next,
            total: listed.total,
        })
    }

    /// DescribeImages filtered by the exact tag, or by digest (every tag of it, up to 100).
    async fn get_artifact(&self, repository: &str, reference: &str) -> Result<Artifact> {
        let op = "GetArtifact";
        let (namespace, name) =
            spec::split_repository(repository).map_err(|m| invalid(op, "InvalidName", m))?;
        let by_digest = spec::is_digest(reference);
        if !by_digest {
            spec::check_tag(reference).map_err(|m| invalid(op, "InvalidName", m))?;
        }
        let listed: client::ImagesPage = self
            .api
            .call(
                "DescribeImages",
                Idempotency::Idempotent,
                &client::DescribeImages {
                    registry_id: &self.registry_id,
                    namespace_name: namespace,
                    repository_name: name,
                    image_version: (!by_digest).then_some(reference),
                    digest: by_digest.then_some(reference),
                    exact_match: Some(true),
                    limit: MAX_PAGE_SIZE,
                    offset: 1,
                },
            )
            .await?;
        // The vendor's filters are trusted only as far as they are checked here.
        let mut matching = listed.image_info_list.into_iter().filter(|image| {
            if by_digest {
                image.digest == reference
            } else {
                image.image_version == reference
            }
        });
        let Some(first) = matching.next() else {
            return Err(VendorError::new(
                ErrorClass::VendorNotFound,
                VENDOR,
                op,
                "ResourceNotFound.TcrResourceNotFound",
                format!("{repository} has no artifact {reference}"),
            ));
        };
        let mut found = artifact(first);
        found.tags.extend(matching.map(|image| image.image_version));
        Ok(found)
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        let op = "DeleteImage";
        let (namespace, name) =
            spec::split_repository(repository).map_err(|m| invalid(op, "InvalidName", m))?;
        spec::check_tag(tag).map_err(|m| invalid(op, "InvalidName", m))?;
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &client::DeleteImage {
                    registry_id: &self.registry_id,
                    namespace_name: namespace,
                    repository_name: name,
                    image_version: tag,
                },
            )
            .await?;
        Ok(())
    }

    /// CreateInstanceToken `temp`: a username and token for the instance that expire (an hour
    /// by the doc; the lifetime asked for cannot lengthen it).
    async fn issue_pull_credential(&self, scope: &PullScope) -> Result<PullCredential> {
        let op = "CreateInstanceToken";
        let token: client::InstanceToken = self
            .api
            .call(
                op,
                Idempotency::Idempotent,
                &client::CreateInstanceToken {
                    registry_id: &self.registry_id,
                    token_type: "temp",
                    desc: &format!("flotilla pull secret {}", scope.name),
                },
            )
            .await?;
        if token.username.is_empty() || token.token.is_empty() {
            return Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                op,
                "MalformedResponse",
                "CreateInstanceToken answered without a username or token",
            ));
        }
        Ok(PullCredential {
            server: self.registry_host.clone(),
            username: token.username,
            password: Zeroizing::new(token.token),
            expires: client::expiry(token.exp_time),
            vendor_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_offsets_become_page_numbers() {
        assert_eq!(page_window(0, 20), (1, 0));
        assert_eq!(page_window(20, 20), (2, 0));
        assert_eq!(page_window(45, 20), (3, 5));
        assert_eq!(next_cursor(20, 20, 41).as_deref(), Some("o/40"));
        assert_eq!(next_cursor(40, 1, 41), None);
        assert_eq!(next_cursor(0, 0, 5), None);
    }

    #[test]
    fn cursors_refuse_garbage() {
        let page = |cursor: &str| PageRequest {
            size: 5,
            cursor: Some(cursor.into()),
        };
        assert_eq!(decode_offset("X", &page("o/15")).unwrap(), 15);
        for bad in ["", "15", "o/", "o/x", "t/abc"] {
            assert_eq!(
                decode_offset("X", &page(bad)).unwrap_err().class,
                ErrorClass::InvalidConfiguration
            );
        }
    }
}
