//! Registry providers: one trait over each registry's management API and the OCI distribution
//! data plane (one folder per product, a `RegistryCapability` per provider, pure request
//! builders, one `parse_error` each). Registries are not Kubernetes objects: everything here is
//! the vendor's own API.
//!
//! A [`RegistryProvider`] is the product (stateless, one per server); [`RegistryProvider::open`]
//! gives a [`RegistryClient`] for one registry (its endpoint, CA, region, instance and
//! credentials). Lists page with an adapter-opaque cursor: each adapter absorbs its vendor's
//! paging (Harbor page numbers and `Link`, OCI `n`/`last`, TCR page-number offsets, ACR
//! `NextToken`) and the service wraps the cursor into Flotilla's own page token.

pub mod acr;
pub mod harbor;
pub mod tcr;

use std::{collections::BTreeMap, sync::Arc, time::SystemTime};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{Credentials, Result, VendorError};

pub mod oci;
pub mod outbound;

/// What a registry provider can do. Calls outside it fail with `ErrorClass::Unsupported`
/// before anything is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryCapability {
    /// Namespaces can be created and deleted (Harbor projects, ACR/TCR namespaces). Plain OCI
    /// registries list namespaces (the first path segment of repository names), read-only.
    pub manage_namespaces: bool,
    /// Namespaces have a public/private visibility.
    pub namespace_visibility: bool,
    pub delete_repository: bool,
    pub delete_artifact: bool,
    pub delete_tag: bool,
    /// Repositories report pull counts.
    pub pull_counts: bool,
    /// Helm charts stored as OCI artifacts can be listed.
    pub oci_charts: bool,
    /// A narrow pull credential can be issued (robot account, temporary token).
    pub issue_pull_credential: bool,
    /// The catalog of all repositories can be listed (OCI `_catalog` may be disabled).
    pub list_all_repositories: bool,
}

/// Where a registry is and what it is logged in with.
#[derive(Clone)]
pub struct RegistryTarget {
    /// Base URL, such as "https://harbor.example.com" (no trailing slash).
    pub endpoint: String,
    /// Vendor region (ACR, TCR); empty otherwise.
    pub region: String,
    /// The vendor's instance id (ACR Enterprise, TCR); empty otherwise.
    pub instance_id: String,
    /// PEM CA bundle for a registry with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    pub credentials: RegistryCredentials,
}

impl std::fmt::Debug for RegistryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryTarget")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("instance_id", &self.instance_id)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The credential a registry is connected with, opened from the credential vault.
#[derive(Clone)]
pub enum RegistryCredentials {
    /// No credential: an anonymous OCI registry.
    Anonymous,
    /// Username and password (Harbor users, OCI basic/token auth, TCR personal).
    UsernamePassword {
        username: String,
        password: Zeroizing<String>,
    },
    /// A cloud account's key (ACR with Alibaba keys, TCR with Tencent keys), shared with the
    /// cluster adapters.
    Cloud(Credentials),
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryCredentials::Anonymous => write!(f, "Anonymous"),
            RegistryCredentials::UsernamePassword { username, .. } => {
                write!(f, "UsernamePassword({username}, <redacted>)")
            }
            RegistryCredentials::Cloud(credentials) => write!(f, "Cloud({credentials:?})"),
        }
    }
}

/// Which credential kinds a provider accepts: one enum for cluster and registry adapters.
pub use super::CredentialKind;

/// One page of a list: an adapter-opaque cursor in, the next cursor out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Most items wanted (the adapter may return fewer; never more).
    pub size: u32,
    /// `None` for the first page; otherwise what the previous page's `next` said.
    pub cursor: Option<String>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<String>,
    /// The total across all pages, when the vendor says.
    pub total: Option<u64>,
}

/// What logging in found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginInfo {
    /// The API version the registry reports, such as "v2.0" (Harbor) or "registry/2.0".
    pub api_version: String,
    /// When the credential the registry is connected with expires, when the vendor says.
    pub credential_expires: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub public: bool,
    /// `None` when the vendor does not count.
    pub repository_count: Option<u64>,
    pub created: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Full name within the registry, such as "team/app".
    pub name: String,
    pub namespace: String,
    pub artifact_count: Option<u64>,
    pub pull_count: Option<u64>,
    pub updated: Option<SystemTime>,
}

/// What an artifact is, from its media type and config media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Image,
    ImageIndex,
    HelmChart,
    Signature,
    Sbom,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// "sha256:…".
    pub digest: String,
    pub tags: Vec<String>,
    /// The manifest's media type.
    pub media_type: String,
    /// The OCI `artifactType` or the config media type.
    pub artifact_type: String,
    pub kind: ArtifactKind,
    pub size_bytes: u64,
    /// "linux/amd64", … for an index.
    pub platforms: Vec<String>,
    pub pushed: Option<SystemTime>,
    pub pulled: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    pub name: String,
    pub namespace: String,
    pub latest_version: String,
    pub description: String,
    pub version_count: Option<u64>,
    pub updated: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartVersion {
    pub version: String,
    pub app_version: String,
    pub description: String,
    pub digest: String,
    pub created: Option<SystemTime>,
}

/// What a pull credential may pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullScope {
    /// Namespaces (projects) it may pull from; empty means every namespace it can see.
    pub namespaces: Vec<String>,
    /// A name for what is issued (a robot account name), unique per Flotilla pull secret.
    pub name: String,
    /// How long it should live; the vendor may give less.
    pub lifetime: std::time::Duration,
}

/// A narrow credential for pulling: what goes into a `kubernetes.io/dockerconfigjson` Secret.
#[derive(Clone)]
pub struct PullCredential {
    /// The host the Secret names ("harbor.example.com", "xxx.tencentcloudcr.com").
    pub server: String,
    pub username: String,
    pub password: Zeroizing<String>,
    pub expires: Option<SystemTime>,
    /// The vendor's id of what was issued (a robot account id), to revoke it later.
    pub vendor_id: Option<String>,
}

impl std::fmt::Debug for PullCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCredential")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("expires", &self.expires)
            .field("vendor_id", &self.vendor_id)
            .finish_non_exhaustive()
    }
}

/// A field of a registry's definition that breaks the provider's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetViolation {
    /// Field path in `Registry`, such as "endpoint" or "vendor_instance_id".
    pub field: String,
    pub description: String,
}

/// A registry product: stateless, one per server.
pub trait RegistryProvider: Send + Sync {
    /// "harbor", "acr", "tcr", "tcr-personal", "oci".
    fn id(&self) -> &'static str;
    fn display_name(&self) -> &'static str;
    fn capability(&self) -> RegistryCapability;
    /// Credential kinds this provider accepts.
    fn credential_kinds(&self) -> &'static [CredentialKind];
    /// Checks a registry's definition (endpoint, region, instance id) before any call.
    fn check_target(&self, target: &RegistryTarget) -> Vec<TargetViolation>;
    /// Checks a namespace name against the vendor's rules, before any call.
    fn check_namespace_name(&self, name: &str) -> std::result::Result<(), String>;
    /// A client for one registry.
    fn open(&self, target: RegistryTarget) -> Result<Arc<dyn RegistryClient>>;
}

/// One registry, logged in. Every method not in the provider's capability answers
/// `ErrorClass::Unsupported` by default.
#[async_trait]
pub trait RegistryClient: Send + Sync {
    fn provider(&self) -> &'static str;

    /// Logs in and reads what the registry says about itself. A wrong credential is
    /// `CredentialsInvalid`, an unreachable host `VendorUnavailable`.
    async fn login(&self) -> Result<LoginInfo>;

    async fn list_namespaces(&self, _page: &PageRequest) -> Result<Listed<Namespace>> {
        Err(VendorError::unsupported(self.provider(), "ListNamespaces"))
    }
    async fn create_namespace(&self, _name: &str, _public: bool) -> Result<Namespace> {
        Err(VendorError::unsupported(self.provider(), "CreateNamespace"))
    }
    async fn delete_namespace(&self, _name: &str) -> Result<()> {
        Err(VendorError::unsupported(self.provider(), "DeleteNamespace"))
    }

    /// Repositories of one namespace, or of every namespace when `namespace` is `None`.
    async fn list_repositories(
        &self,
        _namespace: Option<&str>,
        _page: &PageRequest,
    ) -> Result<Listed<Repository>> {
        Err(VendorError::unsupported(
            self.provider(),
            "ListRepositories",
        ))
    }
    async fn delete_repository(&self, _repository: &str) -> Result<()> {
        Err(VendorError::unsupported(
            self.provider(),
            "DeleteRepository",
        ))
    }

    /// Tag names only, in the registry's order (the cheap walk).
    async fn list_tags(&self, repository: &str, page: &PageRequest) -> Result<Listed<String>>;
    /// Artifacts with their tags, sizes and kinds.
    async fn list_artifacts(
        &self,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<Artifact>>;
    /// One artifact by tag or digest.
    async fn get_artifact(&self, repository: &str, reference: &str) -> Result<Artifact>;
    async fn delete_tag(&self, _repository: &str, _tag: &str) -> Result<()> {
        Err(VendorError::unsupported(self.provider(), "DeleteTag"))
    }
    async fn delete_artifact(&self, _repository: &str, _digest: &str) -> Result<()> {
        Err(VendorError::unsupported(self.provider(), "DeleteArtifact"))
    }

    async fn list_charts(
        &self,
        _namespace: Option<&str>,
        _page: &PageRequest,
    ) -> Result<Listed<Chart>> {
        Err(VendorError::unsupported(self.provider(), "ListCharts"))
    }
    async fn list_chart_versions(
        &self,
        _namespace: &str,
        _chart: &str,
        _page: &PageRequest,
    ) -> Result<Listed<ChartVersion>> {
        Err(VendorError::unsupported(
            self.provider(),
            "ListChartVersions",
        ))
    }

    /// Issues the narrowest pull credential the vendor offers for `scope`.
    async fn issue_pull_credential(&self, _scope: &PullScope) -> Result<PullCredential> {
        Err(VendorError::unsupported(
            self.provider(),
            "IssuePullCredential",
        ))
    }
    /// Revokes what `issue_pull_credential` issued (a robot account); a no-op where tokens
    /// simply expire.
    async fn revoke_pull_credential(&self, _vendor_id: &str) -> Result<()> {
        Ok(())
    }
}

/// Most requests per second Flotilla sends to one OCI or Harbor registry (at least the vendor
/// limit). ACR's and TCR's management APIs are the clouds' and keep the vendor limit.
pub const REGISTRY_RATE_PER_SECOND: u32 = 100;

/// The registry providers this server offers, by id.
#[derive(Default, Clone)]
pub struct RegistryProviders {
    providers: BTreeMap<&'static str, Arc<dyn RegistryProvider>>,
}

impl RegistryProviders {
    pub fn with(mut self, provider: Arc<dyn RegistryProvider>) -> Self {
        self.providers.insert(provider.id(), provider);
        self
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn RegistryProvider>> {
        self.providers.get(id).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn RegistryProvider>> {
        self.providers.values()
    }
}

/// The registry providers this server offers. The wiring calls this once with the server's
/// transport settings and outbound policy; each provider adds itself here.
pub fn providers(
    transport: super::TransportSettings,
    outbound: Arc<crate::net::OutboundPolicy>,
    oci: oci::OciSettings,
    harbor: harbor::HarborSettings,
) -> RegistryProviders {
    // A registry's own API serves whole clusters' pulls; the clouds' management APIs' limit
    // (10/s by default) would make a walk of 10,000 tags in pages of 500 wait on the limiter.
    let transport = super::TransportSettings {
        rate_per_second: transport.rate_per_second.max(REGISTRY_RATE_PER_SECOND),
        ..transport
    };
    RegistryProviders::default()
        .with(Arc::new(oci::OciProvider::new(
            transport.clone(),
            outbound.clone(),
            oci,
        )))
        .with(harbor::harbor_provider(transport, outbound, harbor))
}
