//! Any Kubernetes resource by apiVersion + kind (CRDs included), and server-side apply.
//! (Being implemented: every method answers UNIMPLEMENTED until then.)

use std::{collections::BTreeMap, sync::Arc};

use super::{
    Error, Result,
    clusters_access::{ClusterAccessor, Scope},
};

/// One object of any kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub resource_version: String,
    pub create_millis: Option<i64>,
    /// The whole object as JSON, managedFields removed.
    pub json: String,
}

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
}

impl ResourceService {
    pub fn new(clusters: Arc<ClusterAccessor>) -> Self {
        ResourceService { clusters }
    }

    pub async fn list(&self, scope: &Scope, request: ListResources) -> Result<ResourceList> {
        self.clusters.client(scope, &request.cluster_id).await?;
        Err(Error::Unimplemented("ListResources is not implemented yet".into()))
    }

    pub async fn get(&self, scope: &Scope, target: ResourceRef) -> Result<Resource> {
        self.clusters.client(scope, &target.cluster_id).await?;
        Err(Error::Unimplemented("GetResource is not implemented yet".into()))
    }

    pub async fn delete(
        &self,
        scope: &Scope,
        target: ResourceRef,
        propagation: Propagation,
    ) -> Result<()> {
        let _ = propagation;
        self.clusters.client(scope, &target.cluster_id).await?;
        Err(Error::Unimplemented("DeleteResource is not implemented yet".into()))
    }

    pub async fn apply(&self, scope: &Scope, request: ApplyManifests) -> Result<Vec<ApplyResult>> {
        self.clusters.client(scope, &request.cluster_id).await?;
        Err(Error::Unimplemented("ApplyManifests is not implemented yet".into()))
    }
}
