//! The Harbor simulator's backed mode: a real CNCF Distribution registry behind it, as behind
//! Harbor's core.
//!
//! - `/v2/…` on the simulator's host is forwarded to the registry as it came (the client's
//!   bearer token included); the registry answers with its own challenges, whose realm is the
//!   simulator's `/service/token`. `Location` headers are rewritten to the simulator's host.
//! - Manifest pushes and pulls that pass through are noted: Harbor's push time, untagged
//!   artifacts (a registry lists tags only), pull counts.
//! - Before a management call the simulator's repositories and artifacts are refreshed from the
//!   registry's own API (catalog, tags, manifests, config blobs) with a token of its own, and
//!   the deletes a call makes are sent to the registry after it.
//!
//! Artifacts are described as Harbor's abstractor does: an index is an `IMAGE` whose
//! `media_type` is the index's, with its children's platforms as references (untagged children
//! are not listed on their own); a manifest whose config is Helm's is a `CHART` with the config
//! (Chart.yaml) as `extra_attrs`; a size is the manifest plus what it references (config and
//! layers, or the children's manifests).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Mutex,
};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Value, json};

use super::realm::core_token;
use super::state::{RegistryDelete, SimArtifact, SimRepository, StoredArtifact, World};
use crate::registry::{
    TestRegistry,
    push::{DOCKER_CONFIG, HELM_CONFIG, OCI_CONFIG, OCI_INDEX, digest_of},
    token::Access,
};

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Every manifest type the simulator reads.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";
/// Request and response headers a proxy does not pass on (hop by hop, or recomputed).
const NOT_FORWARDED: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
];

/// A registry answer.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// What one manifest is, as Harbor describes it. Immutable per digest, so cached.
#[derive(Debug, Clone)]
struct Facts {
    spec: SimArtifact,
    /// An index's children (not listed on their own when untagged).
    children: Vec<String>,
}

/// One repository as the registry holds it: each artifact's digest, tags and description.
struct Content {
    name: String,
    artifacts: Vec<(String, Vec<String>, SimArtifact)>,
}

/// The registry behind a backed simulator.
pub struct Backend {
    pub registry: TestRegistry,
    client: reqwest::Client,
    /// repository@digest → facts.
    facts: Mutex<HashMap<String, Facts>>,
}

impl Backend {
    pub fn new(registry: TestRegistry) -> Backend {
        Backend {
            registry,
            client: reqwest::Client::new(),
            facts: Mutex::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.registry.url
    }

    /// Forwards a `/v2/…` request (path and query as sent) and returns the registry's answer,
    /// its `Location` pointing at `front` (the simulator's base URL) instead.
    pub async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Vec<u8>,
        front: &str,
    ) -> Result<Answer, String> {
        let mut request = self
            .client
            .request(method, format!("{}{path_and_query}", self.url()));
        for (name, value) in headers {
            if !NOT_FORWARDED.contains(&name.as_str()) {
                request = request.header(name, value);
            }
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("registry unreachable: {e}"))?;
        let status = response.status().as_u16();
        let mut headers = HeaderMap::new();
        for (name, value) in response.headers() {
            if NOT_FORWARDED.contains(&name.as_str()) {
                continue;
            }
            let value = match value.to_str() {
                Ok(text) if name == "location" && text.starts_with(self.url()) => {
                    HeaderValue::from_str(&text.replacen(self.url(), front, 1))
                        .unwrap_or_else(|_| value.clone())
                }
                _ => value.clone(),
            };
            headers.append(HeaderName::from(name), value);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("registry answer: {e}"))?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// A request of the simulator's own, with a token for exactly `access`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        access: &[Access],
        accept: Option<&str>,
    ) -> Result<Answer, String> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url()))
            .bearer_auth(core_token(access));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("registry unreachable: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("registry answer: {e}"))?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Every repository in the registry's catalog.
    async fn catalog(&self) -> Result<Vec<String>, String> {
        let access = [Access {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        }];
        let mut names = Vec::new();
        let mut path = "/v2/_catalog?n=1000".to_string();
        loop {
            let answer = self.call(Method::GET, &path, &access, None).await?;
            if answer.status != 200 {
                return Err(format!("catalog: {}", answer.status));
            }
            let body: Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
            names.extend(
                body["repositories"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_string)),
            );
            // `Link: </v2/_catalog?last=…&n=1000>; rel="next"`.
            let next = answer
                .headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.strip_prefix('<'))
                .and_then(|l| l.split_once('>'))
                .map(|(url, _)| url.to_string());
            match next {
                Some(next) => path = next,
                None => return Ok(names),
            }
        }
    }

    fn cached(&self, key: &str) -> Option<Facts> {
        self.facts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// The digest `reference` names in `repository` (`None`: no such manifest).
    async fn resolve(&self, repository: &str, reference: &str) -> Result<Option<String>, String> {
        let access = [Access::repository(repository, &["pull"])];
        let path = format!("/v2/{repository}/manifests/{reference}");
        let answer = self
            .call(Method::HEAD, &path, &access, Some(ACCEPT))
            .await?;
        match answer.status {
            200 => Ok(answer
                .headers
                .get("docker-content-digest")
                .and_then(|d| d.to_str().ok())
                .map(str::to_string)),
            404 => Ok(None),
            other => Err(format!("HEAD {path}: {other}")),
        }
    }

    /// What the manifest `digest` in `repository` is (`None`: gone).
    async fn facts(&self, repository: &str, digest: &str) -> Result<Option<Facts>, String> {
        let key = format!("{repository}@{digest}");
        if let Some(facts) = self.cached(&key) {
            return Ok(Some(facts));
        }
        let access = [Access::repository(repository, &["pull"])];
        let path = format!("/v2/{repository}/manifests/{digest}");
        let answer = self.call(Method::GET, &path, &access, Some(ACCEPT)).await?;
        match answer.status {
            200 => {}
            404 => return Ok(None),
            other => return Err(format!("GET {path}: {other}")),
        }
        let manifest: Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
        let media_type = manifest["mediaType"]
            .as_str()
            .or_else(|| {
                answer
                    .headers
                    .get("content-type")
                    .and_then(|c| c.to_str().ok())
            })
            .unwrap_or_default()
            .to_string();
        let artifact_type = manifest["artifactType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let descriptor_size = |d: &Value| d["size"].as_u64().unwrap_or_default();
        let facts = if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            let children = manifest["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let platforms = children
                .iter()
                .map(|c| {
                    let text = |k: &str| c["platform"][k].as_str().unwrap_or_default().to_string();
                    (text("os"), text("architecture"), text("variant"))
                })
                .collect();
            let digests: Vec<String> = children
                .iter()
                .filter_map(|c| c["digest"].as_str().map(str::to_string))
                .collect();
            Facts {
                spec: SimArtifact {
                    kind: "IMAGE".into(),
                    media_type: media_type.clone(),
                    manifest_media_type: media_type,
                    artifact_type,
                    size: answer.body.len() as u64
                        + children.iter().map(descriptor_size).sum::<u64>(),
                    platforms,
                    child_digests: digests.clone(),
                    ..SimArtifact::default()
                },
                children: digests,
            }
        } else {
            let config = &manifest["config"];
            let config_type = config["mediaType"].as_str().unwrap_or_default().to_string();
            let size = answer.body.len() as u64
                + descriptor_size(config)
                + manifest["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(descriptor_size)
                    .sum::<u64>();
            let (kind, extra_attrs) = match config_type.as_str() {
                HELM_CONFIG => {
                    let chart = self
                        .config_blob(repository, config["digest"].as_str().unwrap_or_default())
                        .await?;
                    ("CHART", Some(chart))
                }
                OCI_CONFIG | DOCKER_CONFIG => {
                    let image = self
                        .config_blob(repository, config["digest"].as_str().unwrap_or_default())
                        .await?;
                    let attrs = json!({
                        "architecture": image["architecture"], "os": image["os"],
                        "created": image["created"], "author": image["author"],
                        "config": image["config"],
                    });
                    ("IMAGE", Some(attrs))
                }
                _ => ("UNKNOWN", None),
            };
            Facts {
                spec: SimArtifact {
                    kind: kind.into(),
                    artifact_type: if artifact_type.is_empty() {
                        config_type.clone()
                    } else {
                        artifact_type
                    },
                    media_type: config_type,
                    manifest_media_type: media_type,
                    size,
                    extra_attrs,
                    ..SimArtifact::default()
                },
                children: Vec::new(),
            }
        };
        self.facts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, facts.clone());
        Ok(Some(facts))
    }

    async fn config_blob(&self, repository: &str, digest: &str) -> Result<Value, String> {
        let access = [Access::repository(repository, &["pull"])];
        let path = format!("/v2/{repository}/blobs/{digest}");
        let answer = self.call(Method::GET, &path, &access, None).await?;
        if answer.status != 200 || digest_of(&answer.body) != digest {
            return Err(format!("GET {path}: {}", answer.status));
        }
        serde_json::from_slice(&answer.body).map_err(|e| e.to_string())
    }

    /// Everything the registry holds: per repository, the tagged manifests and the untagged
    /// ones `pushed` names, without the untagged children of an index.
    async fn contents(&self, pushed: &BTreeSet<(String, String)>) -> Result<Vec<Content>, String> {
        let mut contents = Vec::new();
        for repository in self.catalog().await? {
            let access = [Access::repository(&repository, &["pull"])];
            let answer = self
                .call(
                    Method::GET,
                    &format!("/v2/{repository}/tags/list?n=1000"),
                    &access,
                    None,
                )
                .await?;
            let tags: Vec<String> =
                match answer.status {
                    200 => serde_json::from_slice::<Value>(&answer.body)
                        .map_err(|e| e.to_string())?["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect(),
                    404 => Vec::new(),
                    other => return Err(format!("tags of {repository}: {other}")),
                };
            // digest → tags, tagged first, then what was pushed untagged.
            let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for tag in tags {
                if let Some(digest) = self.resolve(&repository, &tag).await? {
                    found.entry(digest).or_default().push(tag);
                }
            }
            // Facts are cached per digest, so whether an untagged one is still there is asked.
            for (_, digest) in pushed.iter().filter(|(r, _)| *r == repository) {
                if !found.contains_key(digest) && self.resolve(&repository, digest).await?.is_some()
                {
                    found.insert(digest.clone(), Vec::new());
                }
            }
            let mut described = Vec::new();
            for (digest, tags) in found {
                if let Some(facts) = self.facts(&repository, &digest).await? {
                    described.push((digest, tags, facts));
                }
            }
            let children: BTreeSet<String> = described
                .iter()
                .flat_map(|(_, _, f)| f.children.clone())
                .collect();
            let artifacts = described
                .into_iter()
                .filter(|(digest, tags, _)| !tags.is_empty() || !children.contains(digest))
                .map(|(digest, tags, facts)| {
                    let spec = SimArtifact {
                        tags: tags.clone(),
                        ..facts.spec
                    };
                    (digest, tags, spec)
                })
                .collect();
            contents.push(Content {
                name: repository,
                artifacts,
            });
        }
        Ok(contents)
    }

    /// Makes the world's repositories and artifacts what the registry holds.
    pub async fn refresh(&self, world: &Mutex<World>) -> Result<(), String> {
        let pushed: BTreeSet<(String, String)> = lock(world).pushed.keys().cloned().collect();
        let contents = self.contents(&pushed).await?;
        reconcile(&mut lock(world), contents);
        Ok(())
    }

    /// Sends the deletes a management call made.
    pub async fn delete(&self, deletes: Vec<RegistryDelete>) -> Result<(), String> {
        for delete in deletes {
            let (repository, reference) = match &delete {
                RegistryDelete::Manifest { repository, digest } => (repository, digest),
                RegistryDelete::Tag { repository, tag } => (repository, tag),
            };
            let access = [Access::repository(repository, &["pull", "delete"])];
            let path = format!("/v2/{repository}/manifests/{reference}");
            let answer = self.call(Method::DELETE, &path, &access, None).await?;
            // 404: already gone (a child two indexes shared, say).
            if !matches!(answer.status, 202 | 404) {
                return Err(format!(
                    "DELETE {path}: {} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                ));
            }
        }
        Ok(())
    }
}

fn lock(world: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

/// Applies what the registry holds to the world. Repositories of projects the world does not
/// know are left out; a repository the registry no longer lists goes, one it lists with no
/// artifacts stays only if the world had it (Harbor keeps an emptied repository; a deleted one
/// stays deleted though Distribution's catalog keeps listing it).
fn reconcile(world: &mut World, contents: Vec<Content>) {
    let listed: BTreeSet<&str> = contents.iter().map(|c| c.name.as_str()).collect();
    let gone: Vec<u64> = world
        .repositories
        .values()
        .filter(|r| !listed.contains(r.name.as_str()))
        .map(|r| r.id)
        .collect();
    for id in gone {
        world.repositories.remove(&id);
        world.artifacts.retain(|_, a| a.repository_id != id);
    }
    for content in contents {
        let project = content.name.split('/').next().unwrap_or_default();
        let Some(project_id) = world.project_by_name(project).map(|p| p.id) else {
            continue;
        };
        let repository_id = match world.repository_by_name(&content.name) {
            Some(r) => r.id,
            None if content.artifacts.is_empty() => continue,
            None => {
                let id = world.id();
                let created = world.stamp();
                world.repositories.insert(
                    id,
                    SimRepository {
                        id,
                        project_id,
                        name: content.name.clone(),
                        pull_count: 0,
                        created,
                        updated: created,
                    },
                );
                id
            }
        };
        let digests: BTreeSet<&str> = content.artifacts.iter().map(|a| a.0.as_str()).collect();
        world
            .artifacts
            .retain(|_, a| a.repository_id != repository_id || digests.contains(a.digest.as_str()));
        let mut updated = 0;
        for (digest, tags, spec) in content.artifacts {
            let existing = world
                .artifacts
                .values_mut()
                .find(|a| a.repository_id == repository_id && a.digest == digest);
            let pushed = match existing {
                Some(artifact) => {
                    artifact.spec.tags = tags;
                    artifact.pushed
                }
                None => {
                    let key = (content.name.clone(), digest.clone());
                    let pushed = match world.pushed.get(&key) {
                        Some(at) => *at,
                        None => world.stamp(),
                    };
                    let id = world.id();
                    world.artifacts.insert(
                        id,
                        StoredArtifact {
                            id,
                            repository_id,
                            digest,
                            spec,
                            pushed,
                            pulled: None,
                        },
                    );
                    pushed
                }
            };
            updated = updated.max(pushed);
        }
        if let Some(r) = world.repositories.get_mut(&repository_id) {
            r.updated = r.updated.max(updated);
        }
    }
    for (repository, digest) in std::mem::take(&mut world.pulls) {
        let now = world.stamp();
        let Some(repository_id) = world.repository_by_name(&repository).map(|r| r.id) else {
            continue;
        };
        if let Some(r) = world.repositories.get_mut(&repository_id) {
            r.pull_count += 1;
        }
        if let Some(a) = world
            .artifacts
            .values_mut()
            .find(|a| a.repository_id == repository_id && a.digest == digest)
        {
            a.pulled = Some(now);
        }
    }
}

/// `/v2/<name>/manifests/<reference>` → (name, reference).
pub fn manifest_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v2/")?;
    let (name, reference) = rest.rsplit_once("/manifests/")?;
    (!name.is_empty() && !reference.is_empty() && !reference.contains('/'))
        .then_some((name, reference))
}
