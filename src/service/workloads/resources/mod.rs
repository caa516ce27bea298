//! Any Kubernetes resource by apiVersion + kind (CRDs included), and server-side apply.
//!
//! Kinds are resolved through each cluster's API discovery, cached per cluster (see
//! `kube::resources::KindCache`), so a CRD installed a moment ago works without a restart.

pub mod kinds;
pub mod object;

use std::sync::Arc;

use crate::kube::{
    apply::{self as kube_apply, Applied, ApplyOptions, Entry, Outcome, Parsed, Rejected},
    resources::{
        self as kube_resources, Cascade, KindCache, ListQuery, Object, ObjectKey, ResourceError,
    },
};
use crate::service::{
    Error, Result,
    access::policy,
    access::{ClusterAccessor, Scope},
    kube_errors::{from_resource, from_resource_page},
    paging::KubePage,
};

pub use object::Resource;

/// Most manifest text one apply takes (4 MiB): bounds parse time and memory per request.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Most documents (and objects, List items counted) one apply takes: bounds its duration.
pub const MAX_MANIFEST_DOCUMENTS: usize = 500;

#[derive(Debug, Clone, Default)]
pub struct ListResources {
    pub cluster_id: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    pub page_size: i32,
    pub page_token: String,
}

#[derive(Debug, Clone)]
pub struct ResourceList {
    pub resources: Vec<Resource>,
    pub next_page_token: String,
}

/// Names one object.
#[derive(Debug, Clone, Default)]
pub struct ResourceRef {
    pub cluster_id: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// How dependents of a deleted object are deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    #[default]
    Default,
    Foreground,
    Background,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyManifests {
    pub cluster_id: String,
    /// Default namespace for namespaced objects that name none.
    pub namespace: String,
    pub manifests: String,
    pub dry_run: bool,
    pub force_conflicts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Created,
    Configured,
    Unchanged,
    Failed,
}

/// What happened to one object of an apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyResult {
    pub document_index: i32,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub outcome: ApplyOutcome,
    pub message: String,
    pub resource_version: String,
}

pub struct ResourceService {
    clusters: Arc<ClusterAccessor>,
    kinds: KindCache,
    kind_lists: kinds::KindListCache,
}

impl ResourceService {
    pub fn new(clusters: Arc<ClusterAccessor>) -> Self {
        ResourceService {
            clusters,
            kinds: KindCache::new(),
            kind_lists: kinds::KindListCache::default(),
        }
    }

    /// Forgets what discovery said about `cluster_id` (call when it is detached or re-pointed;
    /// a stale entry would otherwise only be noticed on its first failed request).
    pub fn forget_cluster(&self, cluster_id: &str) {
        self.kinds.forget_cluster(cluster_id);
        self.kind_lists.forget(cluster_id);
    }

    /// One page of objects of a kind, in one namespace or all (`namespace` empty).
    pub async fn list(&self, scope: &Scope, request: ListResources) -> Result<ResourceList> {
        validate_namespace(&request.namespace)?;
        // Every input that changes the result is in the key, so a token is refused for another
        // query instead of resuming it at a meaningless place.
        let query_key = [
            "resources",
            &request.cluster_id,
            &request.api_version,
            &request.kind,
            &request.namespace,
            &request.label_selector,
            &request.field_selector,
        ]
        .join("\u{1f}");
        let page = KubePage::parse(request.page_size, &request.page_token, &query_key)?;
        let cluster = self.clusters.client(scope, &request.cluster_id).await?;
        let query = ListQuery {
            api_version: request.api_version,
            kind: request.kind,
            namespace: request.namespace,
            label_selector: request.label_selector,
            field_selector: request.field_selector,
            limit: page.limit,
            continue_token: page.continue_token.clone(),
        };
        let listed =
            kube_resources::list(&self.kinds, &request.cluster_id, &cluster.client, &query)
                .await
                .map_err(|err| from_resource_page(&request.cluster_id, err))?;
        Ok(ResourceList {
            next_page_token: page.next_token(listed.continue_token.as_deref()),
            resources: listed
                .objects
                .into_iter()
                .map(|object| seen_by(scope, object))
                .collect(),
        })
    }

    pub async fn get(&self, scope: &Scope, target: ResourceRef) -> Result<Resource> {
        let key = object_key(&target)?;
        let cluster = self.clusters.client(scope, &target.cluster_id).await?;
        kube_resources::get(&self.kinds, &target.cluster_id, &cluster.client, &key)
            .await
            .map(|object| seen_by(scope, object))
            .map_err(|err| from_resource(&target.cluster_id, err))
    }

    /// Deletes one object; the API server may finish later (finalizers, foreground deletion).
    pub async fn delete(
        &self,
        scope: &Scope,
        target: ResourceRef,
        propagation: Propagation,
    ) -> Result<()> {
        let key = object_key(&target)?;
        let cascade = match propagation {
            Propagation::Default => None,
            Propagation::Foreground => Some(Cascade::Foreground),
            Propagation::Background => Some(Cascade::Background),
            Propagation::Orphan => Some(Cascade::Orphan),
        };
        let (cluster, mode) = self
            .clusters
            .client_and_mode(scope, &target.cluster_id)
            .await?;
        if policy::checks_changes(scope, mode) {
            self.check_delete(scope, &target.cluster_id, &cluster.client, &key)
                .await?;
        }
        kube_resources::delete(
            &self.kinds,
            &target.cluster_id,
            &cluster.client,
            &key,
            cascade,
        )
        .await
        .map_err(|err| from_resource(&target.cluster_id, err))
    }

    /// Server-side applies every object of `request.manifests` and reports each. A request over
    /// the limits is refused whole, before anything is applied; a bad document is reported as
    /// a failed result and the others proceed.
    pub async fn apply(&self, scope: &Scope, request: ApplyManifests) -> Result<Vec<ApplyResult>> {
        if request.manifests.len() > MAX_MANIFEST_BYTES {
            return Err(Error::invalid(
                "manifests",
                format!(
                    "is {} bytes; at most {MAX_MANIFEST_BYTES} bytes (4 MiB) are taken per \
                     request, so split it into several requests",
                    request.manifests.len()
                ),
            ));
        }
        validate_namespace(&request.namespace)?;
        let (cluster, mode) = self
            .clusters
            .client_and_mode(scope, &request.cluster_id)
            .await?;
        // Parsing up to 4 MiB of YAML takes long enough to stall other requests on this thread.
        let text = request.manifests;
        let parsed = tokio::task::spawn_blocking(move || kube_apply::parse(&text))
            .await
            .map_err(|err| Error::Internal(format!("parsing manifests: {err}")))?;
        if parsed.documents == 0 {
            return Err(Error::invalid(
                "manifests",
                "holds no documents; pass one or more YAML or JSON objects",
            ));
        }
        if parsed.documents > MAX_MANIFEST_DOCUMENTS
            || parsed.entries.len() > MAX_MANIFEST_DOCUMENTS
        {
            return Err(Error::invalid(
                "manifests",
                format!(
                    "holds {} documents ({} objects with List items); at most \
                     {MAX_MANIFEST_DOCUMENTS} are taken per request, so split it into several \
                     requests",
                    parsed.documents,
                    parsed.entries.len()
                ),
            ));
        }
        // The whole manifest is checked before any object is applied (dry runs too).
        let parsed = if policy::checks_changes(scope, mode) {
            self.check_apply(scope, &request.cluster_id, &cluster.client, parsed)
                .await?
        } else {
            parsed
        };
        let options = ApplyOptions {
            namespace: request.namespace,
            dry_run: request.dry_run,
            force_conflicts: request.force_conflicts,
        };
        let applied = kube_apply::apply(
            &self.kinds,
            &request.cluster_id,
            &cluster.client,
            parsed,
            &options,
        )
        .await;
        Ok(applied.into_iter().map(ApplyResult::from).collect())
    }
}

/// Checks for callers whose changes Flotilla's own role rules limit (built-in mode).
impl ResourceService {
    /// Refuses the whole apply when any object is of a kind the caller may not change. Objects
    /// of kinds the cluster does not serve become failed results here (rather than being
    /// resolved again later, when a kind appearing meanwhile would skip this check).
    async fn check_apply(
        &self,
        scope: &Scope,
        cluster_id: &str,
        client: &::kube::Client,
        parsed: Parsed,
    ) -> Result<Parsed> {
        let mut refusals = Vec::new();
        let mut entries = Vec::with_capacity(parsed.entries.len());
        for entry in parsed.entries {
            let Entry::Object(manifest) = entry else {
                entries.push(entry);
                continue;
            };
            let resolved = match self
                .kinds
                .resolve(cluster_id, client, &manifest.api_version, &manifest.kind)
                .await
            {
                Ok(resolved) => resolved,
                Err(
                    err @ (ResourceError::UnknownKind { .. }
                    | ResourceError::BadApiVersion(_)
                    | ResourceError::BadKind(_)),
                ) => {
                    entries.push(Entry::Rejected(Rejected {
                        document_index: manifest.document_index,
                        api_version: manifest.api_version.clone(),
                        kind: manifest.kind.clone(),
                        name: manifest.name.clone(),
                        namespace: manifest.namespace.clone(),
                        message: err.to_string(),
                    }));
                    continue;
                }
                Err(err) => return Err(from_resource(cluster_id, err)),
            };
            let change = policy::Change {
                group: resolved.group(),
                kind: resolved.kind(),
                namespaced: resolved.namespaced(),
                secret_type: manifest.body().get("type").and_then(|t| t.as_str()),
            };
            if let Some(why) = policy::refusal(scope.role, &change) {
                refusals.push(format!(
                    "document {} ({} {:?}): {why}",
                    manifest.document_index, manifest.kind, manifest.name
                ));
            }
            entries.push(Entry::Object(manifest));
        }
        policy::refuse(refusals)?;
        Ok(Parsed {
            documents: parsed.documents,
            entries,
        })
    }

    /// Refuses deleting an object of a kind the caller may not change; a Secret's type is read
    /// first (it cannot change, so the check holds until the delete).
    async fn check_delete(
        &self,
        scope: &Scope,
        cluster_id: &str,
        client: &::kube::Client,
        key: &ObjectKey,
    ) -> Result<()> {
        let resolved = self
            .kinds
            .resolve(cluster_id, client, &key.api_version, &key.kind)
            .await
            .map_err(|err| from_resource(cluster_id, err))?;
        let is_secret = resolved.group().is_empty() && resolved.kind() == "Secret";
        let secret_type = if is_secret {
            match kube_resources::get(&self.kinds, cluster_id, client, key).await {
                Ok(object) => serde_json::from_str::<serde_json::Value>(&object.json)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string)),
                Err(ResourceError::Cluster(crate::kube::ClusterError::NotFound(_))) => None,
                Err(err) => return Err(from_resource(cluster_id, err)),
            }
        } else {
            None
        };
        let change = policy::Change {
            group: resolved.group(),
            kind: resolved.kind(),
            namespaced: resolved.namespaced(),
            secret_type: secret_type.as_deref(),
        };
        policy::refuse(
            policy::refusal(scope.role, &change)
                .map(|why| format!("{} {:?}: {why}", key.kind, key.name))
                .into_iter()
                .collect(),
        )
    }
}

/// An object as `scope` may see it.
fn seen_by(scope: &Scope, object: Object) -> Resource {
    let mut resource = Resource::from(object);
    policy::redact_resource(scope, &mut resource);
    resource
}

fn object_key(target: &ResourceRef) -> Result<ObjectKey> {
    validate_namespace(&target.namespace)?;
    validate_name(&target.name)?;
    Ok(ObjectKey {
        api_version: target.api_version.clone(),
        kind: target.kind.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    })
}

/// A namespace is a DNS label (or empty). Checked here so a malformed one is an error about the
/// request, not a confusing answer from the API server.
fn validate_namespace(namespace: &str) -> Result<()> {
    let ok = namespace.is_empty()
        || (namespace.len() <= 63
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !namespace.starts_with('-')
            && !namespace.ends_with('-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "namespace",
            "must be a DNS label: lowercase letters, digits and '-', at most 63 characters",
        ))
    }
}

/// Object names differ per kind (RBAC allows ':'), but none may be a path segment that changes
/// the URL it is put into.
fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("name", "is required"));
    }
    let ok = name.len() <= 253
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| matches!(c, '/' | '%' | '?' | '#') || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "is not a Kubernetes object name (no '/', '%', '?', '#' or spaces, not '.' or '..', \
             at most 253 characters)",
        ))
    }
}

impl From<Applied> for ApplyResult {
    fn from(a: Applied) -> ApplyResult {
        ApplyResult {
            document_index: a.document_index,
            api_version: a.api_version,
            kind: a.kind,
            namespace: a.namespace,
            name: a.name,
            outcome: match a.outcome {
                Outcome::Created => ApplyOutcome::Created,
                Outcome::Configured => ApplyOutcome::Configured,
                Outcome::Unchanged => ApplyOutcome::Unchanged,
                Outcome::Failed => ApplyOutcome::Failed,
            },
            message: a.message,
            resource_version: a.resource_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_change_the_url_are_refused() {
        for good in ["a", "system:controller:x", "a.b-c"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a%2f", "a?b", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert!(validate_namespace("").is_ok());
        assert!(validate_namespace("team-a").is_ok());
        for bad in ["Team", "-a", "a-", "a.b", "a/b"] {
            assert!(validate_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
