//! An in-memory fake of the `RegistryProvider` / `RegistryClient` traits, for testing the
//! registry service's own rules (validation, paging token wrapping, no partial writes,
//! not-found, capability refusals, deletion guards) without a registry. It is a fake of the
//! adapter trait, not a simulator of any vendor: real registries are tested through the real
//! adapters (OCI against CNCF Distribution, the vendors against their simulators).
//!
//! Every client call is counted per operation ([`FakeRegistry::calls`]), so a test can assert
//! that a refused request sent nothing. A provider made with [`FakeRegistry::issuing`] issues
//! pull credentials ([`FakePull`]) and remembers each one, revoked or not, so a test can check
//! what a Secret holds against what was issued.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use flotilla::adapters::{
    ErrorClass, Result, VendorError,
    registry::{
        Artifact, ArtifactKind, Chart, ChartVersion, CredentialKind, Listed, LoginInfo, Namespace,
        PageRequest, PullCredential, PullScope, RegistryCapability, RegistryClient,
        RegistryCredentials, RegistryProvider, RegistryProviders, RegistryTarget, Repository,
        TargetViolation,
    },
};
use zeroize::Zeroizing;

/// A pull credential the fake issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    pub vendor_id: String,
    pub username: String,
    pub password: String,
    /// The namespaces it may pull from (empty: all).
    pub namespaces: Vec<String>,
    /// The name Flotilla asked for.
    pub name: String,
    pub expires: SystemTime,
    pub revoked: bool,
    /// Which registry credential's username it was issued under (the admin's).
    pub issued_under: String,
}

/// What the fake registry holds and how it behaves; shared by its provider and clients.
#[derive(Default)]
pub struct FakeState {
    /// The only username/password login accepted; `None`: any (or anonymous).
    pub accept: Option<(String, String)>,
    /// Logins fail as if the host did not answer.
    pub unreachable: bool,
    /// The credential expiry logins report.
    pub credential_expires: Option<SystemTime>,
    /// Namespace → public.
    pub namespaces: BTreeMap<String, bool>,
    /// Repository ("ns/name") → artifacts.
    pub repositories: BTreeMap<String, Vec<Artifact>>,
    /// Calls by operation.
    pub calls: BTreeMap<&'static str, usize>,
    /// Endpoints clients were opened for.
    pub opened: Vec<String>,
    /// Pull credentials issued, in order, revoked ones included.
    pub pulls: Vec<FakePull>,
    /// The longest lifetime the fake gives a pull credential (`None`: what was asked).
    pub max_pull_lifetime: Option<Duration>,
}

impl FakeState {
    /// The issued pull credential `username`/`password` logs in as, if it is live (issued,
    /// not revoked, not expired).
    pub fn live_pull(&self, username: &str, password: &str) -> Option<&FakePull> {
        self.pulls.iter().find(|p| {
            p.username == username
                && p.password == password
                && !p.revoked
                && p.expires > SystemTime::now()
        })
    }
}

/// A fake registry provider; clone it to keep a handle on its state.
#[derive(Clone)]
pub struct FakeRegistry {
    id: &'static str,
    capability: RegistryCapability,
    kinds: &'static [CredentialKind],
    state: Arc<Mutex<FakeState>>,
}

impl FakeRegistry {
    /// A provider `id` that can do everything and takes username/password credentials.
    pub fn new(id: &'static str) -> FakeRegistry {
        FakeRegistry {
            id,
            capability: RegistryCapability {
                manage_namespaces: true,
                namespace_visibility: true,
                delete_repository: true,
                delete_artifact: true,
                delete_tag: true,
                pull_counts: true,
                oci_charts: true,
                issue_pull_credential: false,
                list_all_repositories: true,
            },
            kinds: &[CredentialKind::UsernamePassword],
            state: Arc::default(),
        }
    }

    /// A provider `id` that can only read (like a plain OCI registry without `_catalog`) and
    /// takes anonymous or username/password logins.
    pub fn read_only(id: &'static str) -> FakeRegistry {
        FakeRegistry {
            capability: RegistryCapability::default(),
            kinds: &[CredentialKind::Anonymous, CredentialKind::UsernamePassword],
            ..FakeRegistry::new(id)
        }
    }

    /// A provider `id` like [`FakeRegistry::new`] that also issues pull credentials.
    pub fn issuing(id: &'static str) -> FakeRegistry {
        let mut fake = FakeRegistry::new(id);
        fake.capability.issue_pull_credential = true;
        fake
    }

    /// Every pull credential issued so far, revoked ones included.
    pub fn pulls(&self) -> Vec<FakePull> {
        self.state().pulls.clone()
    }

    /// These providers, for `RegistrySettings::extra_providers`.
    pub fn providers(fakes: &[&FakeRegistry]) -> RegistryProviders {
        fakes.iter().fold(RegistryProviders::default(), |all, f| {
            all.with(Arc::new((*f).clone()))
        })
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake registry state")
    }

    /// Client calls so far, by operation.
    pub fn calls(&self) -> BTreeMap<&'static str, usize> {
        self.state().calls.clone()
    }

    /// Client calls so far, all operations.
    pub fn total_calls(&self) -> usize {
        self.state().calls.values().sum()
    }

    /// Adds an artifact with `tags` to `repository` ("ns/name"), creating both.
    pub fn push(&self, repository: &str, digest: &str, tags: &[&str]) {
        let mut state = self.state();
        let namespace = repository.split('/').next().unwrap_or_default().to_string();
        state.namespaces.entry(namespace).or_insert(false);
        let kind = if repository.contains("chart") {
            ArtifactKind::HelmChart
        } else {
            ArtifactKind::Image
        };
        state
            .repositories
            .entry(repository.to_string())
            .or_default()
            .push(Artifact {
                digest: digest.to_string(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                artifact_type: if kind == ArtifactKind::HelmChart {
                    "application/vnd.cncf.helm.config.v1+json".into()
                } else {
                    "application/vnd.oci.image.config.v1+json".into()
                },
                kind,
                size_bytes: 1234,
                platforms: Vec::new(),
                pushed: Some(
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
                ),
                pulled: None,
            });
    }
}

impl RegistryProvider for FakeRegistry {
    fn id(&self) -> &'static str {
        self.id
    }

    fn display_name(&self) -> &'static str {
        "Fake registry (tests)"
    }

    fn capability(&self) -> RegistryCapability {
        self.capability.clone()
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        self.kinds
    }

    fn check_target(&self, target: &RegistryTarget) -> Vec<TargetViolation> {
        let mut violations = Vec::new();
        if !target.region.is_empty() {
            violations.push(TargetViolation {
                field: "region".into(),
                description: "this registry has no regions; leave it empty".into(),
            });
        }
        if !target.instance_id.is_empty() {
            violations.push(TargetViolation {
                field: "vendor_instance_id".into(),
                description: "this registry has no instances; leave it empty".into(),
            });
        }
        violations
    }

    fn check_namespace_name(&self, name: &str) -> std::result::Result<(), String> {
        let ok = (2..=30).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if ok {
            Ok(())
        } else {
            Err("use 2-30 lowercase letters, digits and '-', not starting with '-'".into())
        }
    }

    fn open(&self, target: RegistryTarget) -> Result<Arc<dyn RegistryClient>> {
        self.state().opened.push(target.endpoint.clone());
        Ok(Arc::new(FakeClient {
            provider: self.clone(),
            target,
        }))
    }
}

struct FakeClient {
    provider: FakeRegistry,
    target: RegistryTarget,
}

/// A page of `items` (sorted) after the cursor, which is the last item of the previous page.
fn page<T: Clone>(items: Vec<(String, T)>, page: &PageRequest) -> Listed<T> {
    let total = items.len() as u64;
    let rest: Vec<(String, T)> = match &page.cursor {
        Some(after) => items.into_iter().filter(|(k, _)| k > after).collect(),
        None => items,
    };
    let size = page.size.max(1) as usize;
    let more = rest.len() > size;
    let items: Vec<(String, T)> = rest.into_iter().take(size).collect();
    Listed {
        next: if more {
            items.last().map(|(k, _)| k.clone())
        } else {
            None
        },
        items: items.into_iter().map(|(_, v)| v).collect(),
        total: Some(total),
    }
}

impl FakeClient {
    fn call(&self, operation: &'static str) -> std::sync::MutexGuard<'_, FakeState> {
        let mut state = self.provider.state();
        *state.calls.entry(operation).or_default() += 1;
        state
    }

    fn not_found(&self, operation: &'static str, what: String) -> VendorError {
        VendorError::new(
            ErrorClass::VendorNotFound,
            self.provider.id,
            operation,
            "NOT_FOUND",
            format!("{what} does not exist"),
        )
    }

    fn artifacts(
        &self,
        state: &FakeState,
        repository: &str,
        op: &'static str,
    ) -> Result<Vec<Artifact>> {
        state
            .repositories
            .get(repository)
            .cloned()
            .ok_or_else(|| self.not_found(op, format!("repository {repository:?}")))
    }
}

#[async_trait]
impl RegistryClient for FakeClient {
    fn provider(&self) -> &'static str {
        self.provider.id
    }

    async fn login(&self) -> Result<LoginInfo> {
        let state = self.call("login");
        if state.unreachable {
            return Err(VendorError::new(
                ErrorClass::VendorUnavailable,
                self.provider.id,
                "Login",
                "",
                format!("{} did not answer", self.target.endpoint),
            ));
        }
        if let Some((user, password)) = &state.accept {
            let ok = matches!(
                &self.target.credentials,
                RegistryCredentials::UsernamePassword { username, password: given }
                    if username == user && given.as_str() == password
            );
            if !ok {
                return Err(VendorError::new(
                    ErrorClass::CredentialsInvalid,
                    self.provider.id,
                    "Login",
                    "UNAUTHORIZED",
                    "the username or password is wrong",
                ));
            }
        }
        Ok(LoginInfo {
            api_version: "fake/2.0".into(),
            credential_expires: state.credential_expires,
        })
    }

    async fn list_namespaces(&self, p: &PageRequest) -> Result<Listed<Namespace>> {
        let state = self.call("list_namespaces");
        let items = state
            .namespaces
            .iter()
            .map(|(name, public)| {
                let count = state
                    .repositories
                    .keys()
                    .filter(|r| r.split('/').next() == Some(name.as_str()))
                    .count() as u64;
                (
                    name.clone(),
                    Namespace {
                        name: name.clone(),
                        public: *public,
                        repository_count: Some(count),
                        created: None,
                    },
                )
            })
            .collect();
        Ok(page(items, p))
    }

    async fn create_namespace(&self, name: &str, public: bool) -> Result<Namespace> {
        let mut state = self.call("create_namespace");
        if state.namespaces.contains_key(name) {
            return Err(VendorError::new(
                ErrorClass::InvalidConfiguration,
                self.provider.id,
                "CreateNamespace",
                "CONFLICT",
                format!("namespace {name:?} already exists"),
            ));
        }
        state.namespaces.insert(name.to_string(), public);
        Ok(Namespace {
            name: name.to_string(),
            public,
            repository_count: Some(0),
            created: Some(SystemTime::now()),
        })
    }

    async fn delete_namespace(&self, name: &str) -> Result<()> {
        let mut state = self.call("delete_namespace");
        if state.namespaces.remove(name).is_none() {
            return Err(self.not_found("DeleteNamespace", format!("namespace {name:?}")));
        }
        Ok(())
    }

    async fn list_repositories(
        &self,
        namespace: Option<&str>,
        p: &PageRequest,
    ) -> Result<Listed<Repository>> {
        let state = self.call("list_repositories");
        if let Some(ns) = namespace
            && !state.namespaces.contains_key(ns)
        {
            return Err(self.not_found("ListRepositories", format!("namespace {ns:?}")));
        }
        let items = state
            .repositories
            .iter()
            .filter(|(name, _)| namespace.is_none_or(|ns| name.split('/').next() == Some(ns)))
            .map(|(name, artifacts)| {
                (
                    name.clone(),
                    Repository {
                        name: name.clone(),
                        namespace: name.split('/').next().unwrap_or_default().to_string(),
                        artifact_count: Some(artifacts.len() as u64),
                        pull_count: Some(7),
                        updated: None,
                    },
                )
            })
            .collect();
        Ok(page(items, p))
    }

    async fn delete_repository(&self, repository: &str) -> Result<()> {
        let mut state = self.call("delete_repository");
        if state.repositories.remove(repository).is_none() {
            return Err(self.not_found("DeleteRepository", format!("repository {repository:?}")));
        }
        Ok(())
    }

    async fn list_tags(&self, repository: &str, p: &PageRequest) -> Result<Listed<String>> {
        let state = self.call("list_tags");
        let artifacts = self.artifacts(&state, repository, "ListTags")?;
        let mut tags: Vec<(String, String)> = artifacts
            .iter()
            .flat_map(|a| a.tags.iter().map(|t| (t.clone(), t.clone())))
            .collect();
        tags.sort();
        Ok(page(tags, p))
    }

    async fn list_artifacts(&self, repository: &str, p: &PageRequest) -> Result<Listed<Artifact>> {
        let state = self.call("list_artifacts");
        let artifacts = self.artifacts(&state, repository, "ListArtifacts")?;
        let mut items: Vec<(String, Artifact)> = artifacts
            .into_iter()
            .map(|a| (a.digest.clone(), a))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page(items, p))
    }

    async fn get_artifact(&self, repository: &str, reference: &str) -> Result<Artifact> {
        let state = self.call("get_artifact");
        self.artifacts(&state, repository, "GetArtifact")?
            .into_iter()
            .find(|a| a.digest == reference || a.tags.iter().any(|t| t == reference))
            .ok_or_else(|| self.not_found("GetArtifact", format!("{repository}:{reference}")))
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        let mut state = self.call("delete_tag");
        let found = state
            .repositories
            .get_mut(repository)
            .and_then(|artifacts| {
                artifacts
                    .iter_mut()
                    .find(|a| a.tags.iter().any(|t| t == tag))
            });
        match found {
            Some(artifact) => {
                artifact.tags.retain(|t| t != tag);
                Ok(())
            }
            None => Err(self.not_found("DeleteTag", format!("{repository}:{tag}"))),
        }
    }

    async fn delete_artifact(&self, repository: &str, digest: &str) -> Result<()> {
        let mut state = self.call("delete_artifact");
        let artifacts = state.repositories.get_mut(repository);
        match artifacts {
            Some(artifacts) if artifacts.iter().any(|a| a.digest == digest) => {
                artifacts.retain(|a| a.digest != digest);
                Ok(())
            }
            _ => Err(self.not_found("DeleteArtifact", format!("{repository}@{digest}"))),
        }
    }

    async fn list_charts(&self, namespace: Option<&str>, p: &PageRequest) -> Result<Listed<Chart>> {
        let state = self.call("list_charts");
        let items = state
            .repositories
            .iter()
            .filter(|(name, artifacts)| {
                namespace.is_none_or(|ns| name.split('/').next() == Some(ns))
                    && artifacts.iter().any(|a| a.kind == ArtifactKind::HelmChart)
            })
            .map(|(name, artifacts)| {
                let (ns, chart) = name.split_once('/').unwrap_or(("", name));
                (
                    name.clone(),
                    Chart {
                        name: chart.to_string(),
                        namespace: ns.to_string(),
                        latest_version: artifacts
                            .last()
                            .and_then(|a| a.tags.first().cloned())
                            .unwrap_or_default(),
                        description: format!("the {chart} chart"),
                        version_count: Some(artifacts.len() as u64),
                        updated: None,
                    },
                )
            })
            .collect();
        Ok(page(items, p))
    }

    async fn list_chart_versions(
        &self,
        namespace: &str,
        chart: &str,
        p: &PageRequest,
    ) -> Result<Listed<ChartVersion>> {
        let state = self.call("list_chart_versions");
        let artifacts =
            self.artifacts(&state, &format!("{namespace}/{chart}"), "ListChartVersions")?;
        let items = artifacts
            .into_iter()
            .flat_map(|a| {
                a.tags
                    .iter()
                    .map(|t| {
                        (
                            t.clone(),
                            ChartVersion {
                                version: t.clone(),
                                app_version: format!("app-{t}"),
                                description: format!("the {chart} chart"),
                                digest: a.digest.clone(),
                                created: a.pushed,
                            },
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(page(items, p))
    }
    async fn issue_pull_credential(&self, scope: &PullScope) -> Result<PullCredential> {
        let mut state = self.call("issue_pull_credential");
        let lifetime = match state.max_pull_lifetime {
            Some(max) => scope.lifetime.min(max),
            None => scope.lifetime,
        };
        let vendor_id = (state.pulls.len() + 1).to_string();
        let issued = FakePull {
            username: format!("robot${}", scope.name),
            password: uuid::Uuid::new_v4().simple().to_string(),
            namespaces: scope.namespaces.clone(),
            name: scope.name.clone(),
            expires: SystemTime::now() + lifetime,
            revoked: false,
            issued_under: match &self.target.credentials {
                RegistryCredentials::UsernamePassword { username, .. } => username.clone(),
                _ => String::new(),
            },
            vendor_id,
        };
        state.pulls.push(issued.clone());
        Ok(PullCredential {
            server: self
                .target
                .endpoint
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_string(),
            username: issued.username,
            password: Zeroizing::new(issued.password),
            expires: Some(issued.expires),
            vendor_id: Some(issued.vendor_id),
        })
    }

    async fn revoke_pull_credential(&self, vendor_id: &str) -> Result<()> {
        let mut state = self.call("revoke_pull_credential");
        if let Some(pull) = state.pulls.iter_mut().find(|p| p.vendor_id == vendor_id) {
            pull.revoked = true;
        }
        Ok(())
    }
}
