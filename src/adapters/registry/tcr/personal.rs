//! `PersonalClient`: the TCR Personal Edition (vendor-apis.md §3.2): one registry per account
//! and region, the `…Personal` actions, results wrapped in `Response.Data`, repositories named
//! `namespace/image`, item-offset paging, pull counts. No instance tokens (pull with the
//! registry password), no namespace visibility (repositories are public or not).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    api::{Api, decode_offset, invalid, next_cursor, page_size},
    client::{self, MAX_PAGE_SIZE, lenient_u64},
    error::VENDOR,
    spec,
};
use crate::adapters::{
    error::{ErrorClass, Result, VendorError},
    registry::{
        Artifact, ArtifactKind, Listed, LoginInfo, Namespace, PageRequest, RegistryClient,
        Repository,
    },
    transport::Idempotency,
};

const PROVIDER: &str = "tcr-personal";
/// Bound on DescribeImagePersonal pages one digest look-up walks (10,000 tags).
const MAX_LOOKUP_PAGES: usize = 100;

pub struct PersonalClient {
    api: Api,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NamespaceBody<'a> {
    namespace: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeNamespacePersonal<'a> {
    namespace: &'a str,
    limit: u32,
    offset: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRepositoryOwnerPersonal<'a> {
    offset: u64,
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RepoBody<'a> {
    repo_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeImagePersonal<'a> {
    repo_name: &'a str,
    offset: u64,
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteImagePersonal<'a> {
    repo_name: &'a str,
    tag: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NamespaceData {
    #[serde(default, deserialize_with = "lenient_u64")]
    namespace_count: u64,
    #[serde(default)]
    namespace_info: Vec<WireNamespace>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireNamespace {
    namespace: String,
    #[serde(default)]
    creation_time: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    repo_count: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RepoData {
    #[serde(default, deserialize_with = "lenient_u64")]
    total_count: u64,
    #[serde(default)]
    repo_info: Vec<WireRepo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireRepo {
    repo_name: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    tag_count: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pull_count: u64,
    #[serde(default)]
    update_time: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagData {
    #[serde(default, deserialize_with = "lenient_u64")]
    tag_count: u64,
    #[serde(default)]
    tag_info: Vec<WireTag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireTag {
    tag_name: String,
    /// The only digest-like field the Personal API has (UNCONFIRMED that it is the manifest's).
    #[serde(default)]
    image_id: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    size_byte: u64,
    #[serde(default)]
    push_time: String,
    #[serde(default)]
    kind: String,
}

fn artifact(tag: WireTag) -> Artifact {
    let digest = if tag.image_id.is_empty() || tag.image_id.contains(':') {
        tag.image_id
    } else {
        format!("sha256:{}", tag.image_id)
    };
    Artifact {
        digest,
        tags: vec![tag.tag_name],
        media_type: String::new(),
        artifact_type: String::new(),
        kind: match tag.kind.to_ascii_lowercase().as_str() {
            "image" | "docker" => ArtifactKind::Image,
            "helm" | "chart" => ArtifactKind::HelmChart,
            _ => ArtifactKind::Other,
        },
        size_bytes: tag.size_byte,
        platforms: Vec::new(),
        pushed: client::parse_time(&tag.push_time),
        pulled: None,
    }
}

fn checked_repository(operation: &'static str, repository: &str) -> Result<()> {
    spec::split_repository(repository)
        .map(|_| ())
        .map_err(|m| invalid(operation, "InvalidName", m))
}

impl PersonalClient {
    pub(super) fn new(api: Api) -> PersonalClient {
        PersonalClient { api }
    }

    async fn tags(
        &self,
        operation: &'static str,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<WireTag>> {
        checked_repository(operation, repository)?;
        let offset = decode_offset(operation, page)?;
        let size = page_size(page);
        let listed: Data<TagData> = self
            .api
            .call(
                "DescribeImagePersonal",
                Idempotency::Idempotent,
                &DescribeImagePersonal {
                    repo_name: repository,
                    offset,
                    limit: size,
                    tag: None,
                },
            )
            .await?;
        let mut items = listed.data.tag_info;
        items.truncate(size as usize);
        Ok(Listed {
            next: next_cursor(offset, items.len(), listed.data.tag_count),
            total: Some(listed.data.tag_count),
            items,
        })
    }
}

#[async_trait]
impl RegistryClient for PersonalClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn login(&self) -> Result<LoginInfo> {
        let _: Data<NamespaceData> = self
            .api
            .call(
                "DescribeNamespacePersonal",
                Idempotency::Idempotent,
                &DescribeNamespacePersonal {
                    namespace: "",
                    limit: 1,
                    offset: 0,
                },
            )
            .await?;
        Ok(LoginInfo {
            api_version: client::VERSION.into(),
            credential_expires: None,
        })
    }

    async fn list_namespaces(&self, page: &PageRequest) -> Result<Listed<Namespace>> {
        let op = "DescribeNamespacePersonal";
        let offset = decode_offset(op, page)?;
        let size = page_size(page);
        let listed: Data<NamespaceData> = self
            .api
            .call(
                op,
                Idempotency::Idempotent,
                &DescribeNamespacePersonal {
                    namespace: "",
                    limit: size,
                    offset,
                },
            )
            .await?;
        let items: Vec<Namespace> = listed
            .data
            .namespace_info
            .into_iter()
            .take(size as usize)
            .map(|ns| Namespace {
                created: client::parse_time(&ns.creation_time),
                name: ns.namespace,
                public: false,
                repository_count: Some(ns.repo_count),
            })
            .collect();
        Ok(Listed {
            next: next_cursor(offset, items.len(), listed.data.namespace_count),
            total: Some(listed.data.namespace_count),
            items,
        })
    }

    async fn create_namespace(&self, name: &str, public: bool) -> Result<Namespace> {
        let op = "CreateNamespacePersonal";
        spec::check_namespace_name(name).map_err(|m| invalid(op, "InvalidName", m))?;
        if public {
            return Err(VendorError::new(
                ErrorClass::Unsupported,
                VENDOR,
                op,
                "",
                "TCR Personal namespaces have no visibility (repositories do); create it private",
            ));
        }
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &NamespaceBody { namespace: name },
            )
            .await?;
        Ok(Namespace {
            name: name.into(),
            public: false,
            repository_count: Some(0),
            created: None,
        })
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        let op = "DeleteNamespacePersonal";
        spec::check_namespace_name(name).map_err(|m| invalid(op, "InvalidName", m))?;
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &NamespaceBody { namespace: name },
            )
            .await?;
        Ok(())
    }

    /// DescribeRepositoryOwnerPersonal pages by item offset over the account's repositories;
    /// for one namespace its fuzzy `RepoName` filter narrows the list and the exact prefix is
    /// checked here (a page may then hold fewer items than asked; the cursor still advances
    /// over what the vendor sent, so nothing is skipped).
    async fn list_repositories(
        &self,
        namespace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Listed<Repository>> {
        let op = "DescribeRepositoryOwnerPersonal";
        if let Some(namespace) = namespace {
            spec::check_namespace_name(namespace).map_err(|m| invalid(op, "InvalidName", m))?;
        }
        let offset = decode_offset(op, page)?;
        let size = page_size(page);
        let filter = namespace.map(|ns| format!("{ns}/"));
        let listed: Data<RepoData> = self
            .api
            .call(
                op,
                Idempotency::Idempotent,
                &DescribeRepositoryOwnerPersonal {
                    offset,
                    limit: size,
                    repo_name: filter.as_deref(),
                },
            )
            .await?;
        let mut fetched = listed.data.repo_info;
        fetched.truncate(size as usize);
        let next = next_cursor(offset, fetched.len(), listed.data.total_count);
        let items: Vec<Repository> = fetched
            .into_iter()
            .filter(|repo| {
                filter
                    .as_ref()
                    .is_none_or(|f| repo.repo_name.starts_with(f))
            })
            .map(|repo| Repository {
                namespace: repo.repo_name.split('/').next().unwrap_or_default().into(),
                name: repo.repo_name,
                artifact_count: Some(repo.tag_count),
                pull_count: Some(repo.pull_count),
                updated: client::parse_time(&repo.update_time),
            })
            .collect();
        Ok(Listed {
            next,
            total: namespace.is_none().then_some(listed.data.total_count),
            items,
        })
    }

    async fn delete_repository(&self, repository: &str) -> Result<()> {
        let op = "DeleteRepositoryPersonal";
        checked_repository(op, repository)?;
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &RepoBody {
                    repo_name: repository,
                },
            )
            .await?;
        Ok(())
    }

    async fn list_tags(&self, repository: &str, page: &PageRequest) -> Result<Listed<String>> {
        let listed = self.tags("ListTags", repository, page).await?;
        Ok(Listed {
            items: listed.items.into_iter().map(|t| t.tag_name).collect(),
            next: listed.next,
            total: listed.total,
        })
    }

    async fn list_artifacts(
        &self,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<Artifact>> {
        let listed = self.tags("ListArtifacts", repository, page).await?;
        Ok(Listed {
            items: listed.items.into_iter().map(artifact).collect(),
            next: listed.next,
            total: listed.total,
        })
    }

    /// By tag: DescribeImagePersonal's `Tag` filter. By digest: a bounded walk of the tags.
    async fn get_artifact(&self, repository: &str, reference: &str) -> Result<Artifact> {
        let op = "GetArtifact";
        checked_repository(op, repository)?;
        let by_digest = spec::is_digest(reference);
        if !by_digest {
            spec::check_tag(reference).map_err(|m| invalid(op, "InvalidName", m))?;
        }
        let mut found: Vec<Artifact> = Vec::new();
        let mut offset = 0u64;
        for _ in 0..MAX_LOOKUP_PAGES {
            let listed: Data<TagData> = self
                .api
                .call(
                    "DescribeImagePersonal",
                    Idempotency::Idempotent,
                    &DescribeImagePersonal {
                        repo_name: repository,
                        offset,
                        limit: MAX_PAGE_SIZE,
                        tag: (!by_digest).then_some(reference),
                    },
                )
                .await?;
            let fetched = listed.data.tag_info.len() as u64;
            found.extend(listed.data.tag_info.into_iter().map(artifact).filter(|a| {
                if by_digest {
                    a.digest == reference
                } else {
                    a.tags.iter().any(|t| t == reference)
                }
            }));
            offset += fetched;
            if !by_digest || fetched == 0 || offset >= listed.data.tag_count {
                break;
            }
        }
        let mut found = found.into_iter();
        let Some(mut first) = found.next() else {
            return Err(VendorError::new(
                ErrorClass::VendorNotFound,
                VENDOR,
                op,
                "ResourceNotFound",
                format!("{repository} has no artifact {reference}"),
            ));
        };
        first.tags.extend(found.flat_map(|a| a.tags));
        Ok(first)
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        let op = "DeleteImagePersonal";
        checked_repository(op, repository)?;
        spec::check_tag(tag).map_err(|m| invalid(op, "InvalidName", m))?;
        let _: serde::de::IgnoredAny = self
            .api
            .call(
                op,
                Idempotency::NotIdempotent,
                &DeleteImagePersonal {
                    repo_name: repository,
                    tag,
                },
            )
            .await?;
        Ok(())
    }
}
