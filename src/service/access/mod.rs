//! Reaching one cluster on a caller's behalf: scope check, stored row, cached client.

pub mod kube;
pub mod policy;
pub mod scope;

pub use scope::Scope;

use std::sync::Arc;

use crate::service::{
    Error, Result,
    access::kube::KubeAccess,
    clusters::connector::ClusterConnector,
    kube_errors::{Stage, from_cluster},
};
use crate::{
    kube::{ClusterClient, ClusterError},
    store::{ClusterRow, Store},
};

pub struct ClusterAccessor {
    store: Store,
    connector: Arc<ClusterConnector>,
}

impl ClusterAccessor {
    pub fn new(store: Store, connector: Arc<ClusterConnector>) -> Self {
        ClusterAccessor { store, connector }
    }

    /// A client for `cluster_id`. Clusters outside `scope` are NOT_FOUND, like missing ones.
    pub async fn client(&self, scope: &Scope, cluster_id: &str) -> Result<ClusterClient> {
        Ok(self.client_with_version(scope, cluster_id).await?.0)
    }

    /// The client and the version of the stored cluster it was built from.
    pub async fn client_with_version(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<(ClusterClient, i64)> {
        let row = self.visible_row(scope, cluster_id).await?;
        Ok((self.connector.client_for(&row, scope).await?, row.version))
    }

    /// The client for `scope` and the cluster's access mode (which says whether Flotilla's
    /// own role rules apply to changes).
    pub async fn client_and_mode(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<(ClusterClient, KubeAccess)> {
        let row = self.visible_row(scope, cluster_id).await?;
        Ok((
            self.connector.client_for(&row, scope).await?,
            KubeAccess::of(&row),
        ))
    }

    /// Flotilla's own client for a cluster `scope` may see, never impersonating: for caches
    /// shared by every caller (watch caches, event hubs), whose results the built-in rules
    /// filter.
    pub async fn own_client_with_version(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<(ClusterClient, i64)> {
        let row = self.visible_row(scope, cluster_id).await?;
        Ok((self.connector.client(&row).await?, row.version))
    }

    /// The client for `scope` and Flotilla's own client with the stored version, from one read
    /// of the cluster's row (a paged list asks for both on every page).
    pub async fn client_and_own_client(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<(ClusterClient, ClusterClient, i64)> {
        let row = self.visible_row(scope, cluster_id).await?;
        Ok((
            self.connector.client_for(&row, scope).await?,
            self.connector.client(&row).await?,
            row.version,
        ))
    }

    async fn visible_row(&self, scope: &Scope, cluster_id: &str) -> Result<ClusterRow> {
        if cluster_id.is_empty() {
            return Err(Error::invalid("cluster_id", "is required"));
        }
        let not_found = || Error::NotFound {
            kind: "cluster",
            id: cluster_id.to_string(),
        };
        if !scope.can_see(cluster_id) {
            return Err(not_found());
        }
        self.store
            .get_cluster(cluster_id)
            .await?
            .ok_or_else(not_found)
    }
}

impl ClusterAccessor {
    /// Ids of the clusters (visible in `scope`) whose labels match `selector`
    /// (`k=v` pairs and bare keys, comma-separated).
    pub async fn ids_by_labels(&self, scope: &Scope, selector: &str) -> Result<Vec<String>> {
        let mut labels = Vec::new();
        for part in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) => labels.push((k.trim().to_string(), Some(v.trim().to_string()))),
                None => labels.push((part.to_string(), None)),
            }
        }
        if labels.is_empty() {
            return Err(Error::invalid("cluster_label_selector", "is empty"));
        }
        let query = crate::store::ClusterQuery {
            labels,
            ids: scope.clusters.clone(),
            ..Default::default()
        };
        let page = self.store.list_clusters(&query, 0, 1000).await?;
        Ok(page.rows.into_iter().map(|r| r.id).collect())
    }
}

/// Shorthand for mapping the failure of a call on `cluster_id` for a caller.
pub fn failed(cluster_id: &str) -> impl Fn(ClusterError) -> Error + '_ {
    move |err| from_cluster(Stage::Call { cluster_id }, err)
}
