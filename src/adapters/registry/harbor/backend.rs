//! `RegistryProvider` and `RegistryClient` for Harbor: Harbor projects are the namespaces,
//! charts are OCI artifacts of type `CHART`, a pull credential is a pull-only robot account.
//! Everything goes through the management API (`/api/v2.0`) and the shared transport.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::{
    adapters::{
        ErrorClass, Result, TransportSettings, VendorError, VendorHttp,
        registry::{
            Artifact, Chart, ChartVersion, CredentialKind, Listed, LoginInfo, Namespace,
            PageRequest, PullCredential, PullScope, RegistryCapability, RegistryClient,
            RegistryCredentials, RegistryProvider, RegistryTarget, Repository, TargetViolation,
            outbound::checked_http,
        },
        transport::{Idempotency, LimitKey, RawResponse},
    },
    net::OutboundPolicy,
};

use super::{
    VENDOR,
    client::{self, BasicAuth, Endpoint},
    config::HarborSettings,
    model::{GeneralInfo, HarborArtifact, HarborRepository, Project, Robot, RobotCreated},
    paging::{self, Collected, MAX_PAGE_SIZE, PageInfo, bad_cursor, collect, parse_offset, window},
    spec,
};

/// Repositories looked at per `list_charts` call at most: each costs one artifact listing.
const CHART_REPOSITORIES_PER_CALL: usize = 20;
const SECONDS_PER_DAY: u64 = 86_400;

/// Harbor v2.x registries.
pub struct HarborProvider {
    transport: TransportSettings,
    /// The endpoint is a caller-supplied address: `open` admits it through this policy.
    policy: Arc<OutboundPolicy>,
    settings: HarborSettings,
}

impl HarborProvider {
    pub fn new(
        transport: TransportSettings,
        policy: Arc<OutboundPolicy>,
        settings: HarborSettings,
    ) -> HarborProvider {
        HarborProvider {
            transport,
            policy,
            settings,
        }
    }
}

fn invalid(operation: &'static str, code: &str, message: String) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        code,
        message,
    )
}

fn invalid_name(operation: &'static str, message: String) -> VendorError {
    invalid(operation, "InvalidName", message)
}

impl RegistryProvider for HarborProvider {
    fn id(&self) -> &'static str {
        VENDOR
    }

    fn display_name(&self) -> &'static str {
        "Harbor"
    }

    fn capability(&self) -> RegistryCapability {
        RegistryCapability {
            manage_namespaces: true,
            namespace_visibility: true,
            delete_repository: true,
            delete_artifact: true,
            delete_tag: true,
            pull_counts: true,
            oci_charts: true,
            issue_pull_credential: true,
            list_all_repositories: true,
        }
    }

    /// A robot token reaches `open` as `UsernamePassword` (robot name and token): Harbor robots
    /// log in with basic auth like users.
    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[CredentialKind::UsernamePassword, CredentialKind::RobotToken]
    }

    fn check_target(&self, target: &RegistryTarget) -> Vec<TargetViolation> {
        let mut violations = Vec::new();
        let mut violation = |field: &str, description: String| {
            violations.push(TargetViolation {
                field: field.into(),
                description,
            })
        };
        if let Err(message) = Endpoint::parse(&target.endpoint) {
            violation("endpoint", message);
        }
        if !target.region.is_empty() {
            violation("region", "Harbor has no regions: leave region empty".into());
        }
        if !target.instance_id.is_empty() {
            violation(
                "vendor_instance_id",
                "Harbor has no instance ids: leave vendor_instance_id empty".into(),
            );
        }
        match &target.credentials {
            RegistryCredentials::UsernamePassword { username, password } => {
                if let Err(message) = BasicAuth::new(username, password) {
                    violation("credential_id", message.into());
                }
            }
            _ => violation(
                "credential_id",
                "Harbor needs a username and password (a user or a robot account)".into(),
            ),
        }
        violations
    }

    fn check_namespace_name(&self, name: &str) -> std::result::Result<(), String> {
        spec::check_project_name(name)
    }

    fn open(&self, target: RegistryTarget) -> Result<Arc<dyn RegistryClient>> {
        const OP: &str = "Open";
        let endpoint =
            Endpoint::parse(&target.endpoint).map_err(|m| invalid(OP, "InvalidEndpoint", m))?;
        let auth = match &target.credentials {
            RegistryCredentials::UsernamePassword { username, password } => {
                BasicAuth::new(username, password).map_err(|m| {
                    VendorError::new(ErrorClass::CredentialsInvalid, VENDOR, OP, "", m)
                })?
            }
            _ => {
                return Err(VendorError::new(
                    ErrorClass::CredentialsInvalid,
                    VENDOR,
                    OP,
                    "",
                    "Harbor needs a username and password (a user or a robot account)",
                ));
            }
        };
        // Every request URL is `endpoint.url(path)`: the admitted scheme, host and port.
        let base = reqwest::Url::parse(&endpoint.url(""))
            .map_err(|err| invalid(OP, "InvalidEndpoint", err.to_string()))?;
        let (http, _resolver) = checked_http(
            &self.transport,
            &self.policy,
            target.ca_pem.as_deref(),
            VENDOR,
            &base,
        )?;
        let limit = LimitKey {
            vendor: VENDOR,
            account: auth.username().to_string(),
            region: endpoint.server().to_string(),
        };
        Ok(Arc::new(HarborClient {
            http,
            endpoint,
            auth,
            limit,
            settings: self.settings.clone(),
        }))
    }
}

/// One Harbor, logged in with one user or robot account.
pub struct HarborClient {
    http: VendorHttp,
    endpoint: Endpoint,
    auth: BasicAuth,
    limit: LimitKey,
    settings: HarborSettings,
}

impl HarborClient {
    async fn send<B>(
        &self,
        operation: &'static str,
        idempotency: Idempotency,
        build: B,
    ) -> Result<RawResponse>
    where
        B: Fn(&Endpoint, &BasicAuth) -> Result<http::Request<Vec<u8>>>,
    {
        client::send(
            &self.http,
            &self.limit,
            &self.auth,
            operation,
            idempotency,
            || build(&self.endpoint, &self.auth),
        )
        .await
    }

    /// One Harbor list page, parsed.
    async fn page<T, B>(&self, operation: &'static str, build: B) -> Result<(Vec<T>, PageInfo)>
    where
        T: serde::de::DeserializeOwned,
        B: Fn(&Endpoint, &BasicAuth) -> Result<http::Request<Vec<u8>>>,
    {
        let raw = self.send(operation, Idempotency::Idempotent, build).await?;
        // Harbor answers `null` rather than `[]` for some empty lists.
        let items: Option<Vec<T>> = raw.json(VENDOR, operation)?;
        Ok((items.unwrap_or_default(), PageInfo::of(&raw)))
    }

    fn want(&self, page: &PageRequest) -> usize {
        match page.size {
            0 => self.settings.page_size as usize,
            size => size as usize,
        }
    }

    async fn artifacts_page(
        &self,
        project: &str,
        rest: &str,
        page: u64,
        page_size: u32,
    ) -> Result<(Vec<HarborArtifact>, PageInfo)> {
        self.page("ListArtifacts", |e, a| {
            client::list_artifacts_request(e, a, project, rest, page, page_size)
        })
        .await
    }

    fn split<'n>(
        &self,
        operation: &'static str,
        repository: &'n str,
    ) -> Result<(&'n str, &'n str)> {
        spec::split_repository(repository).map_err(|m| invalid_name(operation, m))
    }

    /// The chart in one repository, from its first page of artifacts (newest first).
    async fn chart_of(&self, repository: &HarborRepository) -> Result<Option<Chart>> {
        let Ok((project, rest)) = spec::split_repository(&repository.name) else {
            return Ok(None);
        };
        let (artifacts, info) = self.artifacts_page(project, rest, 1, MAX_PAGE_SIZE).await?;
        let total = info.total;
        let charts: Vec<&HarborArtifact> = artifacts.iter().filter(|a| a.is_chart()).collect();
        let Some(latest) = charts.iter().max_by_key(|a| a.pushed()) else {
            return Ok(None);
        };
        let complete = !info.next && total.is_none_or(|t| t <= artifacts.len() as u64);
        Ok(Some(Chart {
            name: rest.to_string(),
            namespace: project.to_string(),
            latest_version: latest.chart_version(),
            description: latest.chart_description(),
            version_count: complete.then_some(charts.len() as u64),
            updated: latest.pushed(),
        }))
    }
}

impl HarborClient {
    /// Deletes the robot account called `full_name`, if there is one.
    async fn delete_robot_named(&self, full_name: &str) -> Result<()> {
        let raw = self
            .send("ListRobots", Idempotency::Idempotent, |e, a| {
                client::find_robot_request(e, a, full_name)
            })
            .await?;
        let robots: Option<Vec<Robot>> = raw.json(VENDOR, "ListRobots")?;
        for robot in robots.into_iter().flatten().filter(|r| r.name == full_name) {
            self.revoke_pull_credential(&robot.id.to_string()).await?;
        }
        Ok(())
    }
}

fn listed<T>(collected: paging::Collected<T>) -> Listed<T> {
    Listed {
        items: collected.items,
        next: collected.next.map(|n| n.to_string()),
        total: collected.total,
    }
}

#[async_trait]
impl RegistryClient for HarborClient {
    fn provider(&self) -> &'static str {
        VENDOR
    }

    /// Harbor turns credentials that do not hold into an anonymous caller rather than a 401,
    /// so login asks something only a logged-in caller may: `GET /users/current` for users,
    /// `GET /users/current/permissions` for robot accounts (which are not users). A wrong
    /// password is 401 there. `GET /systeminfo` then gives the version.
    async fn login(&self) -> Result<LoginInfo> {
        let robot = self
            .auth
            .username()
            .starts_with(&self.settings.robot_name_prefix);
        if robot {
            self.send(
                "GetCurrentUserPermissions",
                Idempotency::Idempotent,
                client::current_permissions_request,
            )
            .await?;
        } else {
            self.send(
                "GetCurrentUser",
                Idempotency::Idempotent,
                client::current_user_request,
            )
            .await?;
        }
        let raw = self
            .send(
                "GetSystemInfo",
                Idempotency::Idempotent,
                client::systeminfo_request,
            )
            .await?;
        let info: GeneralInfo = raw.json(VENDOR, "GetSystemInfo")?;
        Ok(LoginInfo {
            api_version: info
                .harbor_version
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "v2.0".into()),
            credential_expires: None,
        })
    }

    async fn list_namespaces(&self, page: &PageRequest) -> Result<Listed<Namespace>> {
        const OP: &str = "ListProjects";
        let offset = parse_offset(page.cursor.as_deref(), OP)?;
        let want = self.want(page);
        let collected = collect(
            offset,
            want,
            self.settings.page_size_for(page.size),
            |p, n| {
                self.page::<Project, _>(OP, move |e, a| client::list_projects_request(e, a, p, n))
            },
        )
        .await?;
        let Collected { items, next, total } = collected;
        Ok(listed(paging::Collected {
            items: items.into_iter().map(Project::into_namespace).collect(),
            next,
            total,
        }))
    }

    async fn create_namespace(&self, name: &str, public: bool) -> Result<Namespace> {
        spec::check_project_name(name).map_err(|m| invalid_name("CreateProject", m))?;
        // Not idempotent: retried only on throttling. A 409 after a lost answer is the
        // caller's to resolve (look up by name).
        self.send("CreateProject", Idempotency::NotIdempotent, |e, a| {
            client::create_project_request(e, a, name, public)
        })
        .await?;
        let raw = self
            .send("GetProject", Idempotency::Idempotent, |e, a| {
                client::get_project_request(e, a, name)
            })
            .await?;
        Ok(raw.json::<Project>(VENDOR, "GetProject")?.into_namespace())
    }

    /// A project that still holds repositories is Harbor's 412: the error says how many.
    async fn delete_namespace(&self, name: &str) -> Result<()> {
        spec::check_project_name(name).map_err(|m| invalid_name("DeleteProject", m))?;
        let err = match self
            .send("DeleteProject", Idempotency::Idempotent, |e, a| {
                client::delete_project_request(e, a, name)
            })
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if err.class != ErrorClass::DependencyBlocked {
            return Err(err);
        }
        let count = match self
            .send("GetProject", Idempotency::Idempotent, |e, a| {
                client::get_project_request(e, a, name)
            })
            .await
        {
            Ok(raw) => raw
                .json::<Project>(VENDOR, "GetProject")
                .ok()
                .and_then(|p| p.repo_count),
            Err(_) => None,
        };
        let message = match count {
            Some(n) => format!(
                "project {name:?} holds {n} repositor{}; delete {} first ({})",
                if n == 1 { "y" } else { "ies" },
                if n == 1 { "it" } else { "them" },
                err.message
            ),
            None => err.message.clone(),
        };
        Err(VendorError { message, ..err })
    }

    async fn list_repositories(
        &self,
        namespace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Listed<Repository>> {
        const OP: &str = "ListRepositories";
        if let Some(project) = namespace {
            spec::check_project_name(project).map_err(|m| invalid_name(OP, m))?;
        }
        let offset = parse_offset(page.cursor.as_deref(), OP)?;
        let collected = collect(
            offset,
            self.want(page),
            self.settings.page_size_for(page.size),
            |p, n| {
                self.page::<HarborRepository, _>(OP, move |e, a| {
                    client::list_repositories_request(e, a, namespace, p, n)
                })
            },
        )
        .await?;
        let Collected { items, next, total } = collected;
        Ok(listed(paging::Collected {
            items: items
                .into_iter()
                .map(HarborRepository::into_repository)
                .collect(),
            next,
            total,
        }))
    }

    async fn delete_repository(&self, repository: &str) -> Result<()> {
        let (project, rest) = self.split("DeleteRepository", repository)?;
        self.send("DeleteRepository", Idempotency::Idempotent, |e, a| {
            client::delete_repository_request(e, a, project, rest)
        })
        .await
        .map(drop)
    }

    /// Harbor's management API lists tags per artifact only, so this walks the artifacts
    /// (100 a page) and flattens their tags. The cursor is `<artifact offset>.<tags of that
    /// artifact already given>`.
    async fn list_tags(&self, repository: &str, page: &PageRequest) -> Result<Listed<String>> {
        const OP: &str = "ListTags";
        let (project, rest) = self.split(OP, repository)?;
        let (mut artifact, mut skip_tags) = match page.cursor.as_deref() {
            None | Some("") => (0u64, 0usize),
            Some(text) => text
                .split_once('.')
                .and_then(|(a, t)| Some((a.parse().ok()?, t.parse().ok()?)))
                .ok_or_else(|| bad_cursor(OP, text))?,
        };
        let want = self.want(page).max(1);
        let mut tags = Vec::new();
        for _ in 0..50 {
            let (harbor_page, skip) = window(artifact, MAX_PAGE_SIZE);
            let (artifacts, info) = self
                .artifacts_page(project, rest, harbor_page, MAX_PAGE_SIZE)
                .await?;
            let on_page = artifacts.len();
            for (index, item) in artifacts.iter().enumerate().skip(skip) {
                let names: Vec<&str> = item.tag_names().collect();
                let remaining = names.get(skip_tags..).unwrap_or_default();
                let room = want - tags.len();
                if remaining.len() > room {
                    tags.extend(remaining[..room].iter().map(|t| t.to_string()));
                    skip_tags += room;
                    return Ok(Listed {
                        items: tags,
                        next: Some(format!("{artifact}.{skip_tags}")),
                        total: None,
                    });
                }
                tags.extend(remaining.iter().map(|t| t.to_string()));
                artifact += 1;
                skip_tags = 0;
                let last_here = index + 1 == on_page;
                let more = !last_here
                    || info.next
                    || info
                        .total
                        .is_some_and(|t| harbor_page * u64::from(MAX_PAGE_SIZE) < t);
                if tags.len() == want {
                    return Ok(Listed {
                        items: tags,
                        next: more.then(|| format!("{artifact}.0")),
                        total: None,
                    });
                }
            }
            let more = info.next
                || info
                    .total
                    .is_some_and(|t| harbor_page * u64::from(MAX_PAGE_SIZE) < t);
            if !more || on_page <= skip {
                return Ok(Listed {
                    items: tags,
                    next: None,
                    total: None,
                });
            }
        }
        Ok(Listed {
            items: tags,
            next: Some(format!("{artifact}.{skip_tags}")),
            total: None,
        })
    }

    async fn list_artifacts(
        &self,
        repository: &str,
        page: &PageRequest,
    ) -> Result<Listed<Artifact>> {
        const OP: &str = "ListArtifacts";
        let (project, rest) = self.split(OP, repository)?;
        let offset = parse_offset(page.cursor.as_deref(), OP)?;
        let collected = collect(
            offset,
            self.want(page),
            self.settings.page_size_for(page.size),
            |p, n| self.artifacts_page(project, rest, p, n),
        )
        .await?;
        let Collected { items, next, total } = collected;
        Ok(listed(paging::Collected {
            items: items
                .into_iter()
                .map(HarborArtifact::into_artifact)
                .collect(),
            next,
            total,
        }))
    }

    async fn get_artifact(&self, repository: &str, reference: &str) -> Result<Artifact> {
        const OP: &str = "GetArtifact";
        let (project, rest) = self.split(OP, repository)?;
        spec::check_reference(reference).map_err(|m| invalid_name(OP, m))?;
        let raw = self
            .send(OP, Idempotency::Idempotent, |e, a| {
                client::get_artifact_request(e, a, project, rest, reference)
            })
            .await?;
        Ok(raw.json::<HarborArtifact>(VENDOR, OP)?.into_artifact())
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> Result<()> {
        const OP: &str = "DeleteTag";
        let (project, rest) = self.split(OP, repository)?;
        spec::check_tag(tag).map_err(|m| invalid_name(OP, m))?;
        self.send(OP, Idempotency::Idempotent, |e, a| {
            client::delete_tag_request(e, a, project, rest, tag)
        })
        .await
        .map(drop)
    }

    async fn delete_artifact(&self, repository: &str, digest: &str) -> Result<()> {
        const OP: &str = "DeleteArtifact";
        let (project, rest) = self.split(OP, repository)?;
        spec::check_digest(digest).map_err(|m| invalid_name(OP, m))?;
        self.send(OP, Idempotency::Idempotent, |e, a| {
            client::delete_artifact_request(e, a, project, rest, digest)
        })
        .await
        .map(drop)
    }

    /// Charts are repositories holding `CHART` artifacts. The cursor is the repository offset;
    /// a page may hold fewer charts than asked (repositories of images are skipped), and each
    /// repository looked at costs one artifact listing.
    async fn list_charts(
        &self,
        namespace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Listed<Chart>> {
        const OP: &str = "ListRepositories";
        if let Some(project) = namespace {
            spec::check_project_name(project).map_err(|m| invalid_name("ListCharts", m))?;
        }
        let offset = parse_offset(page.cursor.as_deref(), "ListCharts")?;
        let want = self.want(page).min(CHART_REPOSITORIES_PER_CALL);
        let repositories = collect(offset, want, want as u32, |p, n| {
            self.page::<HarborRepository, _>(OP, move |e, a| {
                client::list_repositories_request(e, a, namespace, p, n)
            })
        })
        .await?;
        let mut charts = Vec::new();
        for repository in &repositories.items {
            if let Some(chart) = self.chart_of(repository).await? {
                charts.push(chart);
            }
        }
        Ok(Listed {
            items: charts,
            next: repositories.next.map(|n| n.to_string()),
            total: None,
        })
    }

    /// The chart's `CHART` artifacts (Chart.yaml fields from `extra_attrs`). The cursor is the
    /// artifact offset; other artifacts in the repository are skipped.
    async fn list_chart_versions(
        &self,
        namespace: &str,
        chart: &str,
        page: &PageRequest,
    ) -> Result<Listed<ChartVersion>> {
        const OP: &str = "ListChartVersions";
        let repository = format!("{namespace}/{chart}");
        let (project, rest) = self.split(OP, &repository)?;
        let offset = parse_offset(page.cursor.as_deref(), OP)?;
        let collected = collect(
            offset,
            self.want(page),
            self.settings.page_size_for(page.size),
            |p, n| self.artifacts_page(project, rest, p, n),
        )
        .await?;
        Ok(Listed {
            items: collected
                .items
                .into_iter()
                .filter(HarborArtifact::is_chart)
                .map(HarborArtifact::into_chart_version)
                .collect(),
            next: collected.next.map(|n| n.to_string()),
            total: None,
        })
    }

    /// A robot account that may only pull, from the chosen projects, for whole days (Harbor's
    /// unit: the lifetime is rounded down, to one day at least and `max_robot_days` at most).
    async fn issue_pull_credential(&self, scope: &PullScope) -> Result<PullCredential> {
        const OP: &str = "CreateRobot";
        spec::check_robot_name(&scope.name).map_err(|m| invalid_name(OP, m))?;
        for project in &scope.namespaces {
            spec::check_project_name(project).map_err(|m| invalid_name(OP, m))?;
        }
        let days = (scope.lifetime.as_secs() / SECONDS_PER_DAY)
            .clamp(1, u64::from(self.settings.max_robot_days.max(1))) as u32;
        let body = client::pull_robot_body(&scope.name, &scope.namespaces, days);
        let create = || {
            self.send(OP, Idempotency::NotIdempotent, |e, a| {
                client::create_robot_request(e, a, &body)
            })
        };
        let raw = match create().await {
            // The name is Flotilla's own, one per pull secret: a robot already holding it is
            // one this secret made before (an answer lost on the way back) whose secret nobody
            // knows any more. It is replaced.
            Err(err) if err.http_status == 409 => {
                let full_name = client::pull_robot_full_name(
                    &self.settings.robot_name_prefix,
                    &scope.name,
                    &scope.namespaces,
                );
                self.delete_robot_named(&full_name).await?;
                create().await?
            }
            other => other?,
        };
        let created: RobotCreated = raw.json(VENDOR, OP)?;
        if created.secret.is_empty() || created.name.is_empty() {
            return Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                OP,
                "MalformedResponse",
                "Harbor created a robot account but returned no name or secret",
            ));
        }
        let expires = created
            .expires_at
            .filter(|at| *at > 0)
            .map(|at| SystemTime::UNIX_EPOCH + Duration::from_secs(at as u64));
        Ok(PullCredential {
            server: self.endpoint.server().to_string(),
            username: created.name,
            password: Zeroizing::new(created.secret),
            expires,
            vendor_id: Some(created.id.to_string()),
        })
    }

    /// Deletes the robot account; one already gone counts as revoked.
    async fn revoke_pull_credential(&self, vendor_id: &str) -> Result<()> {
        const OP: &str = "DeleteRobot";
        let id: u64 = vendor_id.parse().map_err(|_| {
            invalid(
                OP,
                "InvalidRobotId",
                format!("{vendor_id:?} is not a Harbor robot account id"),
            )
        })?;
        match self
            .send(OP, Idempotency::Idempotent, |e, a| {
                client::delete_robot_request(e, a, id)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.is_not_found() => Ok(()),
            Err(err) => Err(err),
        }
    }
}
