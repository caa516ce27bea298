//! The Harbor simulator's in-memory world: users, projects, repositories, artifacts with tags,
//! robot accounts, and the tokens its realm issued; rendered in the swagger's JSON shapes.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use super::realm::ProjectRole;
use sha2::{Digest, Sha256};

/// Who a request is from, once its basic credentials held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User { name: String, admin: bool },
    Robot { id: u64, name: String },
}

impl Principal {
    pub fn name(&self) -> String {
        match self {
            Principal::Anonymous => String::new(),
            Principal::User { name, .. } | Principal::Robot { name, .. } => name.clone(),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::User { admin: true, .. })
    }
}

pub struct SimUser {
    pub id: u64,
    pub password: String,
    pub admin: bool,
}

pub struct SimProject {
    pub id: u64,
    pub name: String,
    pub public: bool,
    pub created: u64,
}

pub struct SimRepository {
    pub id: u64,
    pub project_id: u64,
    /// `<project>/<path>`.
    pub name: String,
    pub pull_count: u64,
    pub created: u64,
    pub updated: u64,
}

/// An artifact as a test pushes it (the simulator fills in ids, digest and times).
#[derive(Debug, Clone, Default)]
pub struct SimArtifact {
    pub tags: Vec<String>,
    /// `IMAGE`, `CHART`, …
    pub kind: String,
    /// Config media type (Harbor's `media_type`).
    pub media_type: String,
    pub manifest_media_type: String,
    pub artifact_type: String,
    pub size: u64,
    /// (os, architecture, variant) of an index's children.
    pub platforms: Vec<(String, String, String)>,
    /// The children's digests, in the order of `platforms` (real ones in backed mode; made up
    /// from the parent's digest when empty).
    pub child_digests: Vec<String>,
    pub extra_attrs: Option<Value>,
}

impl SimArtifact {
    pub fn image(tags: &[&str], size: u64) -> SimArtifact {
        SimArtifact {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            kind: "IMAGE".into(),
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size,
            ..SimArtifact::default()
        }
    }

    /// A multi-arch image index; `platforms` like `"linux/arm64/v8"`.
    pub fn index(tags: &[&str], platforms: &[&str]) -> SimArtifact {
        SimArtifact {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            kind: "IMAGE".into(),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            manifest_media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 1024,
            platforms: platforms
                .iter()
                .map(|p| {
                    let mut parts = p.splitn(3, '/');
                    (
                        parts.next().unwrap_or_default().to_string(),
                        parts.next().unwrap_or_default().to_string(),
                        parts.next().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            ..SimArtifact::default()
        }
    }

    /// A Helm chart pushed with `helm push oci://…` (Harbor puts Chart.yaml in `extra_attrs`).
    pub fn chart(name: &str, version: &str, app_version: &str, description: &str) -> SimArtifact {
        SimArtifact {
            tags: vec![version.to_string()],
            kind: "CHART".into(),
            media_type: "application/vnd.cncf.helm.config.v1+json".into(),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 4096,
            extra_attrs: Some(json!({
                "apiVersion": "v2", "name": name, "version": version,
                "appVersion": app_version, "description": description, "type": "application",
            })),
            ..SimArtifact::default()
        }
    }
}

pub struct StoredArtifact {
    pub id: u64,
    pub repository_id: u64,
    pub digest: String,
    pub spec: SimArtifact,
    pub pushed: u64,
    pub pulled: Option<u64>,
}

/// One permission of a robot account: a project (or `*`) and its (resource, action) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotPermission {
    pub namespace: String,
    pub access: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct SimRobot {
    pub id: u64,
    /// Full name: `robot$<name>` (system) or `robot$<project>+<name>` (project).
    pub name: String,
    pub secret: String,
    pub level: String,
    pub duration_days: i64,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
    pub disabled: bool,
    pub permissions: Vec<RobotPermission>,
    pub created: u64,
}

impl SimRobot {
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at >= 0 && now as i64 >= self.expires_at
    }

    /// Whether it holds `action` on `resource` in `project`.
    pub fn may(&self, project: &str, resource: &str, action: &str) -> bool {
        self.permissions.iter().any(|p| {
            (p.namespace == project || p.namespace == "*")
                && p.access
                    .iter()
                    .any(|(r, a)| (r == resource || r == "*") && (a == action || a == "*"))
        })
    }

    pub fn render(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "level": self.level, "duration": self.duration_days,
            "expires_at": self.expires_at, "disable": self.disabled, "editable": true,
            "creation_time": rfc3339(self.created), "update_time": rfc3339(self.created),
            "permissions": self.permissions.iter().map(|p| json!({
                "kind": "project", "namespace": p.namespace,
                "access": p.access.iter().map(|(r, a)| json!({"resource": r, "action": a, "effect": "allow"})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// A token the realm (`/service/token`) issued, with what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub subject: String,
    /// (repository, granted actions) per requested scope.
    pub access: Vec<(String, Vec<String>)>,
}

/// A delete the management API made that the real registry must see too (backed mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryDelete {
    Manifest { repository: String, digest: String },
    Tag { repository: String, tag: String },
}

#[derive(Default)]
pub struct World {
    /// Whether a real registry holds the artifacts (repositories and artifacts here are then
    /// a copy of it, refreshed before each management call).
    pub backed: bool,
    /// (project, user) → role, for users who are not admins.
    pub members: BTreeMap<(String, String), ProjectRole>,
    /// Deletes the routes made, for the registry (drained after each call).
    pub registry_deletes: Vec<RegistryDelete>,
    /// (repository, digest) of every manifest pushed through `/v2` → when: Harbor's push time,
    /// and how untagged artifacts are known (a registry lists tags only).
    pub pushed: BTreeMap<(String, String), u64>,
    /// (repository, digest) of manifests pulled through `/v2` since the last refresh.
    pub pulls: Vec<(String, String)>,
    pub next_id: u64,
    /// Strictly increasing "now" for pushes, so that lists have one order.
    pub tick: u64,
    pub users: BTreeMap<String, SimUser>,
    pub projects: BTreeMap<u64, SimProject>,
    pub repositories: BTreeMap<u64, SimRepository>,
    pub artifacts: BTreeMap<u64, StoredArtifact>,
    pub robots: BTreeMap<u64, SimRobot>,
    pub tokens: Vec<IssuedToken>,
}

pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl World {
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Wall-clock seconds, but never the same twice.
    pub fn stamp(&mut self) -> u64 {
        self.tick = self.tick.max(now_seconds()) + 1;
        self.tick
    }

    pub fn project_by_name(&self, name: &str) -> Option<&SimProject> {
        self.projects.values().find(|p| p.name == name)
    }

    pub fn repository_by_name(&self, name: &str) -> Option<&SimRepository> {
        self.repositories.values().find(|r| r.name == name)
    }

    pub fn repo_count(&self, project_id: u64) -> usize {
        self.repositories
            .values()
            .filter(|r| r.project_id == project_id)
            .count()
    }

    /// A repository's artifacts, newest push first (Harbor's default order).
    pub fn artifacts_of(&self, repository_id: u64) -> Vec<&StoredArtifact> {
        let mut list: Vec<&StoredArtifact> = self
            .artifacts
            .values()
            .filter(|a| a.repository_id == repository_id)
            .collect();
        list.sort_by(|a, b| b.pushed.cmp(&a.pushed).then(b.id.cmp(&a.id)));
        list
    }

    /// The artifact `reference` (a digest or a tag) names in a repository.
    pub fn find_artifact(&self, repository_id: u64, reference: &str) -> Option<u64> {
        self.artifacts
            .values()
            .find(|a| {
                a.repository_id == repository_id
                    && (a.digest == reference || a.spec.tags.iter().any(|t| t == reference))
            })
            .map(|a| a.id)
    }

    /// In backed mode, queues the registry deletes of an artifact the API deletes: its
    /// manifest, and an index's children after it (Harbor deletes them with their parent).
    pub fn queue_artifact_delete(&mut self, artifact_id: u64) {
        if !self.backed {
            return;
        }
        let Some(artifact) = self.artifacts.get(&artifact_id) else {
            return;
        };
        let Some(repository) = self.repositories.get(&artifact.repository_id) else {
            return;
        };
        for digest in std::iter::once(&artifact.digest).chain(&artifact.spec.child_digests) {
            self.registry_deletes.push(RegistryDelete::Manifest {
                repository: repository.name.clone(),
                digest: digest.clone(),
            });
        }
    }

    pub fn create_project(&mut self, name: &str, public: bool) -> u64 {
        let id = self.id();
        let created = self.stamp();
        self.projects.insert(
            id,
            SimProject {
                id,
                name: name.to_string(),
                public,
                created,
            },
        );
        id
    }

    /// Stores an artifact (creating its repository), moving its tags off older artifacts as a
    /// registry push does. Returns the digest.
    pub fn push(&mut self, repository: &str, spec: SimArtifact) -> Result<String, String> {
        let (project, _) = repository
            .split_once('/')
            .ok_or_else(|| format!("repository {repository:?} has no project"))?;
        let project_id = self
            .project_by_name(project)
            .map(|p| p.id)
            .ok_or_else(|| format!("project {project:?} does not exist"))?;
        let pushed = self.stamp();
        let repository_id = match self.repository_by_name(repository) {
            Some(r) => r.id,
            None => {
                let id = self.id();
                self.repositories.insert(
                    id,
                    SimRepository {
                        id,
                        project_id,
                        name: repository.to_string(),
                        pull_count: 0,
                        created: pushed,
                        updated: pushed,
                    },
                );
                id
            }
        };
        for other in self.artifacts.values_mut() {
            if other.repository_id == repository_id {
                other.spec.tags.retain(|t| !spec.tags.contains(t));
            }
        }
        let id = self.id();
        let digest = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{repository}#{id}#{:?}", spec.tags)))
        );
        self.artifacts.insert(
            id,
            StoredArtifact {
                id,
                repository_id,
                digest: digest.clone(),
                spec,
                pushed,
                pulled: None,
            },
        );
        if let Some(r) = self.repositories.get_mut(&repository_id) {
            r.updated = pushed;
        }
        Ok(digest)
    }

    pub fn render_project(&self, project: &SimProject, principal: &Principal) -> Value {
        json!({
            "project_id": project.id, "name": project.name, "owner_id": 1, "owner_name": "admin",
            "creation_time": rfc3339(project.created), "update_time": rfc3339(project.created),
            "deleted": false, "repo_count": self.repo_count(project.id), "chart_count": 0,
            "current_user_role_id": if principal.is_admin() { 1 } else { 0 },
            "metadata": {"public": if project.public { "true" } else { "false" }},
            "cve_allowlist": {"id": 0, "project_id": project.id, "items": []},
        })
    }

    pub fn render_repository(&self, repository: &SimRepository) -> Value {
        let artifact_count = self
            .artifacts
            .values()
            .filter(|a| a.repository_id == repository.id)
            .count();
        json!({
            "id": repository.id, "project_id": repository.project_id, "name": repository.name,
            "description": "", "artifact_count": artifact_count, "pull_count": repository.pull_count,
            "creation_time": rfc3339(repository.created), "update_time": rfc3339(repository.updated),
        })
    }

    pub fn render_artifact(&self, artifact: &StoredArtifact) -> Value {
        let project_id = self
            .repositories
            .get(&artifact.repository_id)
            .map(|r| r.project_id)
            .unwrap_or_default();
        let spec = &artifact.spec;
        let references: Vec<Value> = spec
            .platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut platform = json!({"os": os, "architecture": arch});
                if !variant.is_empty() {
                    platform["variant"] = variant.clone().into();
                }
                let child_digest = spec.child_digests.get(i).cloned().unwrap_or_else(|| {
                    format!(
                        "sha256:{}",
                        hex::encode(Sha256::digest(format!("{}#{i}", artifact.digest)))
                    )
                });
                json!({
                    "parent_id": artifact.id, "child_id": artifact.id * 1000 + i as u64,
                    "child_digest": child_digest,
                    "platform": platform,
                })
            })
            .collect();
        let never = "0001-01-01T00:00:00.000Z".to_string();
        json!({
            "id": artifact.id, "type": spec.kind, "media_type": spec.media_type,
            "manifest_media_type": spec.manifest_media_type, "artifact_type": spec.artifact_type,
            "project_id": project_id, "repository_id": artifact.repository_id,
            "digest": artifact.digest, "size": spec.size,
            "push_time": rfc3339(artifact.pushed),
            "pull_time": artifact.pulled.map(rfc3339).unwrap_or(never.clone()),
            "extra_attrs": spec.extra_attrs.clone().unwrap_or(Value::Null),
            "annotations": null, "labels": null, "accessories": null,
            "references": if references.is_empty() { Value::Null } else { Value::Array(references) },
            "tags": spec.tags.iter().enumerate().map(|(i, t)| json!({
                "id": artifact.id * 1000 + i as u64, "repository_id": artifact.repository_id,
                "artifact_id": artifact.id, "name": t, "push_time": rfc3339(artifact.pushed),
                "pull_time": never, "immutable": false, "signed": false,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Harbor's time format, `2024-05-01T10:00:00.000Z`.
pub fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Harbor's project (and robot) name rule: `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, 1–255.
pub fn valid_project_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut separator = true;
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' => separator = false,
            '.' | '_' | '-' if !separator => separator = true,
            _ => return false,
        }
    }
    !separator
}
