//! `AcrProvider` (the `RegistryProvider` for `acr`) and `AcrClient` (one ACR EE instance):
//! ACR's namespaces, repositories and tags in Flotilla's shapes, its paging behind the
//! adapter's opaque cursor, and its temporary pull tokens.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    client::{self, MAX_PAGE_SIZE, Stamp},
    config::AcrConfig,
    error::VENDOR,
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
    transport::{Idempotency, RawResponse},
};

/// Default page size when the caller asks for 0.
const DEFAULT_PAGE_SIZE: u32 = 20;
/// Bound on ListRepoTag pages one `get_artifact` walks (10,000 tags).
const MAX_LOOKUP_PAGES: usize = 100;

fn invalid(operation: &'static str, code: &str, message: impl Into<String>) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        code,
        message,
    )
}

/// The `acr` provider. Cheap to clone; clones share the transport.
#[derive(Clone)]
pub struct AcrProvider {
    http: VendorHttp,
    config: AcrConfig,
}

impl AcrProvider {
    pub fn new(http: VendorHttp, config: AcrConfig) -> AcrProvider {
        AcrProvider { http, config }
    }
}

impl RegistryProvider for AcrProvider {
    fn id(&self) -> &'static str {
        VENDOR
    }

    fn display_name(&self) -> &'static str {
        "Alibaba Cloud Container Registry (Enterprise Edition)"
    }

    fn capability(&self) -> RegistryCapability {
        RegistryCapability {
            manage_namespaces: true,
            namespace_visibility: true,
            delete_repository: true,
            delete_artifact: false,
            delete_tag: true,
            pull_counts: false,
            oci_charts: false,
            issue_pull_credential: true,
            list_all_repositories: true,
        }
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[CredentialKind::AccessKey]
    }

    fn check_target(&self, target: &RegistryTarget) -> Vec<TargetViolation> {
        let mut violations = spec::check_target(target);
        if !matches!(
            target.credentials,
            RegistryCredentials::Cloud(Credentials::AccessKey { .. })
        ) {
            violations.push(TargetViolation {
                field: "credential_id".into(),
                description: "ACR is reached with an Alibaba Cloud access key (id and secret)"
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
                "ACR needs an access key",
            ));
        };
        let registry_host = spec::registry_host(&target.endpoint)
            .map_err(|message| invalid("Open", "InvalidTarget", message))?;
        Ok(Arc::new(AcrClient {
            http: self.http.clone(),
            key: LimitKey {
                vendor: VENDOR,
                account: id.clone(),
                region: target.region.clone(),
            },
            api_endpoint: self.config.api_endpoint(&target.region),
            instance: target.instance_id,
            registry_host,
            access_key_id: id,
            access_key_secret: secret,
        }))
    }
}

/// One ACR EE instance, as one access key.
pub struct AcrClient {
    http: VendorHttp,
    key: LimitKey,
    api_endpoint: String,
    instance: String,
    /// The data-plane host pull secrets name.
    registry_host: String,
    access_key_id: String,
    access_key_secret: Zeroizing<String>,
}

/// Where a list continues. Namespaces: the offset of the next item (ListNamespace pages by
/// number). Repositories and tags: ACR's NextToken (tags also carry the RepoId, so later
/// pages need no GetRepository).
#[derive(Debug, PartialEq)]
enum Cursor {
    Offset(u64),
    Token(String),
    Tags { repo_id: String, token: String },
}

impl Cursor {
    fn encode(&self) -> String {
        match self {
            Cursor::Offset(offset) => format!("o/{offset}"),
            Cursor::Token(token) => format!("t/{token}"),
            Cursor::Tags { repo_id, token } => format!("r/{repo_id}/{token}"),
        }
    }

    fn decode(operation: &'static str, text: &str) -> Result<Cursor> {
        let bad = || {
            invalid(
                operation,
                "BadCursor",
                "the page cursor is not one this list gave",
            )
        };
        // A NextToken may hold `/` (base64 does): everything after the prefix is the token.
        let (kind, rest) = text.split_once('/').ok_or_else(bad)?;
        let cursor = match kind {
            "o" => Cursor::Offset(rest.parse().map_err(|_| bad())?),
            "t" if !rest.is_empty() => Cursor::Token(rest.into()),
            "r" => match rest.split_once('/') {
                Some((repo_id, token)) if !repo_id.is_empty() && !token.is_empty() => {
                    Cursor::Tags {
                        repo_id: repo_id.into(),
                        token: token.into(),
                    }
                }
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        Ok(cursor)
    }
}

fn page_size(page: &PageRequest) -> u32 {
    match page.size {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RepoIdOnly {
    #[serde(default)]
    repo_id: String,
}

impl AcrClient {
    async fn call<B>(
        &self,
        operation: &'static str,
        idempotency: Idempotency,
        build: B,
    ) -> Result<RawResponse>
    where
        B: Fn(&Stamp<'_>) -> Result<http::Request<Vec<u8>>> + Send + Sync,
    {
        client::send(
            &self.http,
            &self.key,
            &self.api_endpoint,
            &self.access_key_id,
            &self.access_key_secret,
            operation,
            idempotency,
            build,
        )
        .await
    }

    async fn repo_id(&self, namespace: &str, repository: &str) -> Result<String> {
        let op = "GetRepository";
        let raw = self
            .call(op, Idempotency::Idempotent, |stamp| {
                client::get_repository_request(stamp, &self.instance, namespace, repository)
            })
            .await?;
        let found: RepoIdOnly = raw.json(VENDOR, op)?;
        if found.repo_id.is_empty() {
            return Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                op,
                "MalformedResponse",
                "GetRepository answered without a RepoId",
            ));
        }
        Ok(found.repo_id)
    }

    /// One ListRepoTag page of `repository` (a checked `namespace/name`).
    async fn tag_page(
        &self,
        operation: &'static str,
        repository: &str,
        page: &PageRequest,
    ) -> Result<(Vec<client::WireImage>, Option<String>, u64)> {
        let (namespace, name) =
            spec::split_repository(repository).map_err(|m| invalid(operation, "InvalidName", m))?;
        let (repo_id, token) = match &page.cursor {
            None => (self.repo_id(namespace, name).await?, None),
            Some(text) => match Cursor::decode(operation, text)? {
                Cursor::Tags { repo_id, token } => (repo_id, Some(token)),
                _ => return Err(invalid(operation, "BadCursor", "not a tag list cursor")),
            },
        };
        let size = page_size(page);
        let raw = self
            .call("ListRepoTag", Idempotency::Idempotent, |stamp| {
                client::list_repo_tag_request(
                    stamp,
                    &self.instance,
                    &repo_id,
                    size,
                    token.as_deref(),
                )
            })
            .await?;
        let listed: client::TagPage = raw.json(VENDOR, "ListRepoTag")?;
        let next = client::more(listed.next_token).map(|token| {
            Cursor::Tags {
                repo_id: repo_id.clone(),
                token,
            }
            .encode()
        });
        let mut images = listed.images;
        // Never more than asked, whatever the vendor sends.
        images.truncate(size as usize);
        Ok((images, next, listed.total_count))
    }
}

/// ACR's `Digest` may come without its algorithm (UNCONFIRMED either way); Flotilla's is
/// always `sha256:…`.
fn full_digest(digest: &str) -> String {
    if digest.is_empty() || digest.contains(':') {
        digest.to_string()
    } else {
        format!("sha256:{digest}")
    }
}

fn artifact(image: client::WireImage) -> Artifact {
    Artifact {
        digest: full_digest(&image.digest),
        tags: vec![image.tag],
        // ACR's management API does not say what a manifest is; that takes the /v2 data plane.
        media_type: String::new(),
        artifact_type: String::new(),
        kind: ArtifactKind::Other,
        size_bytes: image.image_size,
        platforms: Vec::new(),
        pushed: client::epoch_ms(image.image_update).or(client::epoch_ms(image.image_create)),
        pulled: None,
    }
}

fn total(count: u64, items: usize) -> Option<u64> {
    (count > 0 || items == 0).then_some(count)
}

#[async_trait]
impl RegistryClient for AcrClient {
    fn provider(&self) -> &'static str {
        VENDOR
    }

    async fn login(&self) -> Result<LoginInfo> {
        self.call("GetInstance", Idempotency::Idempotent, |stamp| {
            client::get_instance_request(stamp, &self.instance)
        })
        .await?;
        Ok(LoginInfo {
            api_version: client::API_VERSION.into(),
            // Access keys do not expire.
            credential_expires: None,
        })
    }

    async fn list_namespaces(&self, page: &PageRequest) -> Result<Listed<Namespace>> {
        let op = "ListNamespace";
        let offset = match &page.cursor {
            None => 0,
            Some(text) => match Cursor::decode(op, text)? {
                Cursor::Offset(offset) => offset,
                _ => return Err(invalid(op, "BadCursor", "not a namespace list cursor")),
            },
        };
        // PageNo counts pages of PageSize: start on the page holding `offset`, skip into it.
        let size = page_size(page);
        let page_no = (offset / u64::from(size) + 1) as u32;
        let skip = (offset % u64::from(size)) as usize;
        let raw = self
            .call(op, Idempotency::Idempotent, |stamp| {
                client::list_namespace_request(stamp, &self.instance, page_no, size)
            })
            .await?;
        let listed: client::NamespacePage = raw.json(VENDOR, op)?;
        let fetched = listed.namespaces.len();
        let items: Vec<Namespace> = listed
            .namespaces
            .into_iter()
            .skip(skip)
            .take(size as usize)
            .map(|ns| Namespace {
                public: ns.default_repo_type.eq_ignore_ascii_case("PUBLIC"),
                name: ns.namespace_name,
                repository_count: None,
                created: None,
            })
            .collect();
        let reached = offset + items.len() as u64;
        let more = if listed.total_count > 0 {
            reached < listed.total_count
        } else {
            fetched >= size as usize
        };
        Ok(Listed {
            next: (more && !items.is_empty()).then(|| Cursor::Offset(reached).encode()),
            total: total(listed.total_count, items.len()),
            items,
        })
    }

    async fn create_namespace(&self, name: &str, public: bool) -> Result<Namespace> {
        let op = "CreateNamespace";
        spec::check_namespace_name(name).map_err(|m| invalid(op, "InvalidName", m))?;
        self.call(op, Idempotency::NotIdempotent, |stamp| {
            client::create_namespace_request(stamp, &self.instance, name, public)
        })
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
        self.call(op, Idempotency::NotIdempotent, |stamp| {
            client::delete_namespace_request(stamp, &self.instance, name)
        })
        .await?;
        Ok(())
    }

    async fn list_repositories(
        &self,
        namespace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Listed<Repository>> {
        let op = "ListRepository";
        if let Some(namespace) = namespace {
            spec::check_namespace_name(namespace).map_err(|m| invalid(op, "InvalidName", m))?;
        }
        let token = match &page.cursor {
            None => None,
            Some(text) => match Cursor::decode(op, text)? {
                Cursor::Token(token) => Some(token),
                _ => return Err(invalid(op, "BadCursor", "not a repository list cursor")),
            },
        };
        let size = page_size(page);
        let raw = self
            .call(op, Idempotency::Idempotent, |stamp| {
                client::list_repository_request(
                    stamp,
                    &self.instance,
                    namespace,
                    size,
                    token.as_deref(),
                )
            })
            .await?;
        let listed: client::RepositoryPage = raw.json(VENDOR, op)?;
        let items: Vec<Repository> = listed
            .repositories
            .into_iter()
            .take(size as usize)
            .map(|repo| Repository {
                name: format!("{}/{}", repo.repo_namespace_name, repo.repo_name),
                namespace: repo.repo_namespace_name,
                artifact_count: None,
                pull_count: None,
                updated: client::epoch_ms(repo.modified_time),
            })
            .collect();
        Ok(Listed {
            next: client::more(listed.next_token).map(|t| Cursor::Token(t).encode()),
            total: total(listed.total_count, items.len()),
            items,
        })
    }

    async fn delete_repository(&self, repository: &str) -> Result<()> {
        let op = "DeleteRepository";
        let (namespace, name) =
            spec::split_repository(repository).map_err(|m| invalid(op, "InvalidName", m))?;
        self.call(op, Idempotency::NotIdempotent, |stamp| {
            client::delete_repository_request(stamp, &self.instance, namespace, name)
        })
        .await?;
        Ok(())
    }

    async fn list_tags(&self, repository: &str, page: &PageRequest) -> Result<Listed<String>> {
        let (images, next, count) = self.tag_page("ListTags", repository, page).await?;
        let items: Vec<String> = images.into_iter().map(|image| image.tag).collect();
        Ok(Listed {
            total: total(count, items.len()),
            items,
            next,
        })
    }

    /// One artifact per tag, as ListRepoTag lists them.
    async fn list_artifacts(
        &self,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<Artifact>> {
        let (images, next, count) = self.tag_page("ListArtifacts", repository, page).await?;
        let items: Vec<Artifact> = images.into_iter().map(artifact).collect();
        Ok(Listed {
            total: total(count, items.len()),
            items,
            next,
        })
    }

    /// ListRepoTag has no filter, so this walks the tags (bounded) and gathers every tag of
    /// the digest `reference` is or points at.
    async fn get_artifact(&self, repository: &str, reference: &str) -> Result<Artifact> {
        let op = "GetArtifact";
        let by_digest = spec::is_digest(reference);
        if !by_digest {
            spec::check_tag(reference).map_err(|m| invalid(op, "InvalidName", m))?;
        }
        let mut images: Vec<client::WireImage> = Vec::new();
        let mut page = PageRequest {
            size: MAX_PAGE_SIZE,
            cursor: None,
        };
        for _ in 0..MAX_LOOKUP_PAGES {
            let (batch, next, _) = self.tag_page(op, repository, &page).await?;
            images.extend(batch.into_iter().map(|mut image| {
                image.digest = full_digest(&image.digest);
                image
            }));
            match next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        let digest = if by_digest {
            Some(reference.to_string())
        } else {
            images
                .iter()
                .find(|image| image.tag == reference)
                .map(|image| image.digest.clone())
        };
        let mut matching = images
            .into_iter()
            .filter(|image| Some(&image.digest) == digest.as_ref() && !image.digest.is_empty());
        let Some(first) = matching.next() else {
            return Err(VendorError::new(
                ErrorClass::VendorNotFound,
                VENDOR,
                op,
                "TAG_NOT_EXIST",
                format!("{repository} has no artifact {reference}"),
            ));
        };
        let mut found = artifact(first);
        found.tags.extend(matching.map(|image| image.tag));
        Ok(found)
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        let op = "DeleteRepoTag";
        let (namespace, name) =
            spec::split_repository(repository).map_err(|m| invalid(op, "InvalidName", m))?;
        spec::check_tag(tag).map_err(|m| invalid(op, "InvalidName", m))?;
        let repo_id = self.repo_id(namespace, name).await?;
        self.call(op, Idempotency::NotIdempotent, |stamp| {
            client::delete_repo_tag_request(stamp, &self.instance, &repo_id, tag)
        })
        .await?;
        Ok(())
    }

    /// GetAuthorizationToken: a temporary username and password for the whole instance (the
    /// narrowest credential ACR issues; `scope.namespaces` cannot narrow it further).
    async fn issue_pull_credential(&self, scope: &PullScope) -> Result<PullCredential> {
        let op = "GetAuthorizationToken";
        let hours = scope
            .lifetime
            .as_secs()
            .div_ceil(3600)
            .clamp(1, u64::from(u32::MAX)) as u32;
        let raw = self
            .call(op, Idempotency::Idempotent, |stamp| {
                client::get_authorization_token_request(stamp, &self.instance, hours)
            })
            .await?;
        let token: client::AuthorizationToken = raw.json(VENDOR, op)?;
        if token.temp_username.is_empty() || token.authorization_token.is_empty() {
            return Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                op,
                "MalformedResponse",
                "GetAuthorizationToken answered without a username or token",
            ));
        }
        Ok(PullCredential {
            server: self.registry_host.clone(),
            username: token.temp_username,
            password: Zeroizing::new(token.authorization_token),
            expires: client::epoch_ms(token.expire_time),
            vendor_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for cursor in [
            Cursor::Offset(40),
            Cursor::Token("abc/def==".into()),
            Cursor::Tags {
                repo_id: "crr-1".into(),
                token: "x/y".into(),
            },
        ] {
            assert_eq!(Cursor::decode("X", &cursor.encode()).unwrap(), cursor);
        }
        for bad in ["", "o/x", "t/", "r/crr-1", "q/1", "o/1/2"] {
            let err = Cursor::decode("X", bad).unwrap_err();
            assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{bad}");
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        let page = |size| PageRequest { size, cursor: None };
        assert_eq!(page_size(&page(0)), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(&page(7)), 7);
        assert_eq!(page_size(&page(5000)), MAX_PAGE_SIZE);
    }
}
