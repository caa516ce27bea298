//! Any Kubernetes resource by apiVersion + kind, CRDs included: discovery cached per cluster, and
//! generic list, get and delete of `DynamicObject`s.
//!
//! Discovery answers "which URL serves this kind, is it namespaced, which verbs does it allow".
//! Asking the API server on every call would double the latency of every read, so answers are
//! cached per cluster and per apiVersion. The cache is refreshed (one discovery request for that
//! apiVersion) when a kind is not in it, and when the API server says a cached endpoint is gone
//! (a CRD deleted or a version dropped since), so it never needs a timer.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{Arc, Mutex},
};

use ::kube::{
    Api, Client,
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, PropagationPolicy, TypeMeta},
    core::GroupVersion,
    discovery::{self, Scope},
};
use serde_json::Value;

use super::{ClusterError, error::classify};

/// Why a generic resource call could not be made or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error(
        "apiVersion {0:?} is not valid: expected \"<version>\" for the core group (such as \"v1\") \
         or \"<group>/<version>\" (such as \"apps/v1\")"
    )]
    BadApiVersion(String),
    #[error("kind {0:?} is not valid: expected a Kubernetes kind such as \"ConfigMap\"")]
    BadKind(String),
    #[error(
        "the cluster serves no kind {kind:?} in apiVersion {api_version:?} (checked with its API \
         discovery just now); for a custom resource, is its CustomResourceDefinition installed \
         and serving this version?"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("kind {kind:?} does not support {verb:?} on this cluster")]
    Unsupported { kind: String, verb: &'static str },
    #[error("kind {kind:?} is cluster-scoped; leave namespace empty")]
    ClusterScoped { kind: String },
    #[error("kind {kind:?} is namespaced; name the object's namespace")]
    NamespaceRequired { kind: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What discovery says about one kind: where it is served, its scope and its verbs.
#[derive(Debug, Clone)]
pub struct ResolvedKind {
    resource: ApiResource,
    namespaced: bool,
    verbs: Vec<String>,
}

impl ResolvedKind {
    pub fn api_version(&self) -> &str {
        &self.resource.api_version
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    pub fn group(&self) -> &str {
        &self.resource.group
    }

    pub fn namespaced(&self) -> bool {
        self.namespaced
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The API for this kind in `namespace`, or across all namespaces (and for cluster-scoped
    /// kinds) when it is empty.
    pub(crate) fn api(&self, client: &Client, namespace: &str) -> Api<DynamicObject> {
        if self.namespaced && !namespace.is_empty() {
            Api::namespaced_with(client.clone(), namespace, &self.resource)
        } else {
            Api::all_with(client.clone(), &self.resource)
        }
    }

    fn require(&self, verb: &'static str) -> Result<(), ResourceError> {
        if self.supports(verb) {
            Ok(())
        } else {
            Err(ResourceError::Unsupported {
                kind: self.resource.kind.clone(),
                verb,
            })
        }
    }

    fn check_namespace(&self, namespace: &str) -> Result<(), ResourceError> {
        if !self.namespaced && !namespace.is_empty() {
            return Err(ResourceError::ClusterScoped {
                kind: self.resource.kind.clone(),
            });
        }
        Ok(())
    }
}

/// Kinds of one apiVersion on one cluster, as of its last discovery.
type VersionKinds = HashMap<String, Arc<ResolvedKind>>;

/// Discovery results per cluster and apiVersion. Only kinds a cluster actually serves are stored,
/// so callers cannot grow it with made-up names.
#[derive(Default)]
pub struct KindCache {
    clusters: Mutex<HashMap<String, HashMap<String, VersionKinds>>>,
}

impl KindCache {
    pub fn new() -> Self {
        KindCache::default()
    }

    /// Resolves `kind` of `api_version` on `cluster_id`: from the cache, else by one discovery
    /// request for that apiVersion (which refreshes every kind of it).
    pub async fn resolve(
        &self,
        cluster_id: &str,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Arc<ResolvedKind>, ResourceError> {
        let gv = parse_api_version(api_version)?;
        if !is_valid_kind(kind) {
            return Err(ResourceError::BadKind(kind.to_string()));
        }
        if let Some(found) = self.cached(cluster_id, api_version, kind) {
            return Ok(found);
        }
        self.refresh(cluster_id, client, &gv).await?;
        self.cached(cluster_id, api_version, kind)
            .ok_or_else(|| ResourceError::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })
    }

    /// Drops every cached apiVersion of `group` on `cluster_id` (after a CRD of it changed).
    pub fn forget_group(&self, cluster_id: &str, group: &str) {
        let mut clusters = self.lock();
        if let Some(versions) = clusters.get_mut(cluster_id) {
            versions.retain(|api_version, _| group_of(api_version) != group);
        }
    }

    /// Drops what is known of `cluster_id` (it was detached, or its API changed).
    pub fn forget_cluster(&self, cluster_id: &str) {
        self.lock().remove(cluster_id);
    }

    fn forget_version(&self, cluster_id: &str, api_version: &str) {
        if let Some(versions) = self.lock().get_mut(cluster_id) {
            versions.remove(api_version);
        }
    }

    fn cached(&self, cluster_id: &str, api_version: &str, kind: &str) -> Option<Arc<ResolvedKind>> {
        self.lock()
            .get(cluster_id)
            .and_then(|versions| versions.get(api_version))
            .and_then(|kinds| kinds.get(kind))
            .cloned()
    }

    async fn refresh(
        &self,
        cluster_id: &str,
        client: &Client,
        gv: &GroupVersion,
    ) -> Result<(), ResourceError> {
        let api_version = gv.api_version();
        let group = match discovery::pinned_group(client, gv).await {
            Ok(group) => group,
            // The API server answers 404 for a group or version it does not serve.
            Err(::kube::Error::Api(status)) if status.code == 404 => {
                self.forget_version(cluster_id, &api_version);
                return Ok(());
            }
            Err(err) => return Err(classify(err).into()),
        };
        let kinds: VersionKinds = group
            .versioned_resources(&gv.version)
            .into_iter()
            .map(|(resource, caps)| {
                let resolved = ResolvedKind {
                    namespaced: caps.scope == Scope::Namespaced,
                    verbs: caps.operations,
                    resource,
                };
                (resolved.resource.kind.clone(), Arc::new(resolved))
            })
            .collect();
        self.lock()
            .entry(cluster_id.to_string())
            .or_default()
            .insert(api_version, kinds);
        Ok(())
    }

    /// Runs `op` on the resolved kind. When the API server answers that the kind's endpoint does
    /// not exist (the cached discovery is stale), rediscovers once and runs `op` again.
    async fn with_kind<T, F, Fut>(
        &self,
        cluster_id: &str,
        client: &Client,
        api_version: &str,
        kind: &str,
        op: F,
    ) -> Result<T, ResourceError>
    where
        F: Fn(Arc<ResolvedKind>) -> Fut,
        Fut: Future<Output = Result<T, OpError>>,
    {
        let resolved = self.resolve(cluster_id, client, api_version, kind).await?;
        match op(resolved).await {
            Err(OpError::EndpointGone) => {
                self.forget_version(cluster_id, api_version);
                let resolved = self.resolve(cluster_id, client, api_version, kind).await?;
                op(resolved).await.map_err(OpError::into_resource)
            }
            other => other.map_err(OpError::into_resource),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, VersionKinds>>> {
        // A panic while holding this lock cannot leave the map half-updated (every update is one
        // insert or remove), so a poisoned lock is safe to keep using.
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Failure of one request for a resolved kind.
enum OpError {
    /// 404 without an object name: the URL itself is not served any more.
    EndpointGone,
    Resource(ResourceError),
}

impl OpError {
    fn from_kube(err: ::kube::Error) -> OpError {
        if is_endpoint_gone(&err) {
            OpError::EndpointGone
        } else {
            OpError::Resource(classify(err).into())
        }
    }

    fn into_resource(self) -> ResourceError {
        match self {
            OpError::Resource(err) => err,
            OpError::EndpointGone => ResourceError::Cluster(ClusterError::NotFound(
                "the API server no longer serves this kind".into(),
            )),
        }
    }
}

impl From<ResourceError> for OpError {
    fn from(err: ResourceError) -> Self {
        OpError::Resource(err)
    }
}

/// An object that does not exist is a 404 whose details name it; a path the API server does
/// not serve at all is a 404 with empty details.
pub(crate) fn is_endpoint_gone(err: &::kube::Error) -> bool {
    matches!(err, ::kube::Error::Api(status)
        if status.code == 404 && status.details.as_ref().is_none_or(|d| d.name.is_empty()))
}

/// "v1" (core) or "<group>/<version>", each part a lowercase DNS-style name, so nothing but a
/// real apiVersion reaches a URL path.
pub fn parse_api_version(api_version: &str) -> Result<GroupVersion, ResourceError> {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    let group_ok = if api_version.contains('/') {
        group.len() <= 253 && group.split('.').all(is_dns_label)
    } else {
        true
    };
    if !group_ok || !is_dns_label(version) {
        return Err(ResourceError::BadApiVersion(api_version.to_string()));
    }
    Ok(GroupVersion::gv(group, version))
}

fn is_dns_label(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 63
        && part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !part.starts_with('-')
        && !part.ends_with('-')
}

fn is_valid_kind(kind: &str) -> bool {
    kind.len() <= 253
        && kind.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// One object of any kind, with the fields every caller looks at pulled out.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub resource_version: String,
    pub create_millis: Option<i64>,
    /// The whole object as JSON, managedFields removed (they are large and rarely useful).
    pub json: String,
}

impl Object {
    /// `object` as returned for `kind`. List items often lack apiVersion and kind (the list
    /// carries them), so they are filled in from discovery.
    pub(crate) fn from_dynamic(mut object: DynamicObject, kind: &ResolvedKind) -> Object {
        object.metadata.managed_fields = None;
        let types = object.types.get_or_insert_with(|| TypeMeta {
            api_version: kind.resource.api_version.clone(),
            kind: kind.resource.kind.clone(),
        });
        let api_version = types.api_version.clone();
        let kind_name = types.kind.clone();
        let json = serde_json::to_string(&object).unwrap_or_default();
        let meta = object.metadata;
        Object {
            api_version,
            kind: kind_name,
            namespace: meta.namespace.unwrap_or_default(),
            name: meta.name.unwrap_or_default(),
            uid: meta.uid.unwrap_or_default(),
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
            resource_version: meta.resource_version.unwrap_or_default(),
            create_millis: meta.creation_timestamp.map(|t| t.0.as_millisecond()),
            json,
        }
    }
}

/// Removes `metadata.managedFields` from a JSON object.
pub(crate) fn strip_managed_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// Which objects of a kind to list, and which page.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub api_version: String,
    pub kind: String,
    /// Empty: all namespaces (and the only choice for cluster-scoped kinds).
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    /// Items per request to the API server.
    pub limit: u32,
    /// The API server's continue token; empty for the first page.
    pub continue_token: String,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ObjectPage {
    pub objects: Vec<Object>,
    /// The API server's continue token, when there is more.
    pub continue_token: Option<String>,
}

/// Names one object of any kind.
#[derive(Debug, Clone, Default)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

/// How dependents of a deleted object are deleted; `None` is the kind's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cascade {
    Foreground,
    Background,
    Orphan,
}

/// One page of objects of any kind.
pub async fn list(
    kinds: &KindCache,
    cluster_id: &str,
    client: &Client,
    query: &ListQuery,
) -> Result<ObjectPage, ResourceError> {
    let mut params = ListParams::default().limit(query.limit);
    if !query.label_selector.is_empty() {
        params = params.labels(&query.label_selector);
    }
    if !query.field_selector.is_empty() {
        params = params.fields(&query.field_selector);
    }
    if !query.continue_token.is_empty() {
        params = params.continue_token(&query.continue_token);
    }
    let (params, namespace) = (&params, query.namespace.as_str());
    kinds
        .with_kind(
            cluster_id,
            client,
            &query.api_version,
            &query.kind,
            |kind| async move {
                kind.check_namespace(namespace)?;
                kind.require("list")?;
                let list = kind
                    .api(client, namespace)
                    .list(params)
                    .await
                    .map_err(OpError::from_kube)?;
                Ok(ObjectPage {
                    objects: list
                        .items
                        .into_iter()
                        .map(|o| Object::from_dynamic(o, &kind))
                        .collect(),
                    continue_token: list.metadata.continue_.filter(|c| !c.is_empty()),
                })
            },
        )
        .await
}

/// One object of any kind.
pub async fn get(
    kinds: &KindCache,
    cluster_id: &str,
    client: &Client,
    key: &ObjectKey,
) -> Result<Object, ResourceError> {
    kinds
        .with_kind(cluster_id, client, &key.api_version, &key.kind, |kind| {
            let key = key.clone();
            async move {
                let namespace = namespace_for(&kind, &key.namespace)?;
                kind.require("get")?;
                let object = kind
                    .api(client, &namespace)
                    .get(&key.name)
                    .await
                    .map_err(OpError::from_kube)?;
                Ok(Object::from_dynamic(object, &kind))
            }
        })
        .await
}

/// Deletes one object of any kind (the API server may finish it later: finalizers, foreground).
pub async fn delete(
    kinds: &KindCache,
    cluster_id: &str,
    client: &Client,
    key: &ObjectKey,
    cascade: Option<Cascade>,
) -> Result<(), ResourceError> {
    let params = DeleteParams {
        propagation_policy: cascade.map(|c| match c {
            Cascade::Foreground => PropagationPolicy::Foreground,
            Cascade::Background => PropagationPolicy::Background,
            Cascade::Orphan => PropagationPolicy::Orphan,
        }),
        ..DeleteParams::default()
    };
    let params = &params;
    kinds
        .with_kind(cluster_id, client, &key.api_version, &key.kind, |kind| {
            let key = key.clone();
            async move {
                let namespace = namespace_for(&kind, &key.namespace)?;
                kind.require("delete")?;
                kind.api(client, &namespace)
                    .delete(&key.name, params)
                    .await
                    .map_err(OpError::from_kube)?;
                Ok(())
            }
        })
        .await
}

/// The namespace one object of `kind` lives in: required for namespaced kinds ("default" is
/// not assumed, so a forgotten namespace is not silently another object), refused for
/// cluster-scoped ones.
fn namespace_for(kind: &ResolvedKind, namespace: &str) -> Result<String, ResourceError> {
    kind.check_namespace(namespace)?;
    if kind.namespaced && namespace.is_empty() {
        return Err(ResourceError::NamespaceRequired {
            kind: kind.resource.kind.clone(),
        });
    }
    Ok(namespace.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_validated_before_reaching_a_url() {
        for good in ["v1", "apps/v1", "example.com/v1alpha1", "a-b.c/v2beta3"] {
            assert!(parse_api_version(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/v1", "apps/", "a/b/c", "../v1", "Apps/v1", "apps/V1", "apps/v1 ", "-a/v1",
            "a..b/v1",
        ] {
            assert!(
                matches!(parse_api_version(bad), Err(ResourceError::BadApiVersion(_))),
                "{bad:?}"
            );
        }
        let gv = parse_api_version("v1").unwrap();
        assert_eq!((gv.group.as_str(), gv.version.as_str()), ("", "v1"));
    }

    #[test]
    fn a_missing_object_is_not_a_missing_endpoint() {
        let status = |details: Value| {
            let status: ::kube::core::Status = serde_json::from_value(serde_json::json!({
                "code": 404, "message": "m", "reason": "NotFound", "details": details
            }))
            .unwrap();
            ::kube::Error::Api(Box::new(status))
        };
        let object_missing = status(serde_json::json!({"name": "x", "kind": "configmaps"}));
        assert!(!is_endpoint_gone(&object_missing));
        assert!(is_endpoint_gone(&status(serde_json::json!({}))));
        assert!(is_endpoint_gone(&status(Value::Null)));
    }

    #[test]
    fn kinds_are_alphanumeric() {
        assert!(is_valid_kind("ConfigMap"));
        assert!(!is_valid_kind(""));
        assert!(!is_valid_kind("config-map"));
        assert!(!is_valid_kind("1Map"));
    }

    #[test]
    fn group_of_core_is_empty() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apiextensions.k8s.io/v1"), "apiextensions.k8s.io");
    }

    #[test]
    fn object_from_list_item_gets_type_and_loses_managed_fields() {
        let kind = ResolvedKind {
            resource: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            namespaced: true,
            verbs: vec!["list".into()],
        };
        let item: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "a", "namespace": "n", "resourceVersion": "7",
                "creationTimestamp": "2024-01-02T03:04:05Z",
                "labels": {"x": "y"},
                "managedFields": [{"manager": "kubectl"}]
            },
            "data": {"k": "v"}
        }))
        .unwrap();
        let object = Object::from_dynamic(item, &kind);
        assert_eq!(object.kind, "ConfigMap");
        assert_eq!(object.api_version, "v1");
        assert_eq!(object.resource_version, "7");
        assert_eq!(object.labels.get("x").map(String::as_str), Some("y"));
        assert_eq!(object.create_millis, Some(1_704_164_645_000));
        let json: Value = serde_json::from_str(&object.json).unwrap();
        assert_eq!(json["kind"], "ConfigMap");
        assert_eq!(json["data"]["k"], "v");
        assert!(json["metadata"].get("managedFields").is_none());
    }
}
