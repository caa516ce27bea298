//! The kinds a cluster serves (ListResourceKinds), cached per cluster for a short while: a
//! picker opened by several people, or reopened, should not walk discovery each time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::kube::kinds::{ServedKind, served_kinds};

use super::ResourceService;
use crate::service::{Result, access::Scope, kube_errors::from_resource};

/// How long one discovery answer is reused. A CRD installed meanwhile shows up after this; the
/// generic calls (ListResources, GetResource) resolve kinds on their own and do not wait for it.
pub const KINDS_TTL: Duration = Duration::from_secs(30);

/// One cluster's discovery answer and when it was fetched.
type Fetched = (Instant, Arc<Vec<ServedKind>>);

/// Discovery answers per cluster id.
#[derive(Default)]
pub struct KindListCache {
    clusters: Mutex<HashMap<String, Fetched>>,
}

impl KindListCache {
    fn fresh(&self, cluster_id: &str) -> Option<Arc<Vec<ServedKind>>> {
        self.lock()
            .get(cluster_id)
            .filter(|(at, _)| at.elapsed() < KINDS_TTL)
            .map(|(_, kinds)| kinds.clone())
    }

    fn store(&self, cluster_id: &str, kinds: Arc<Vec<ServedKind>>) {
        let mut clusters = self.lock();
        // Entries of clusters nobody asks about again would otherwise stay forever.
        clusters.retain(|_, (at, _)| at.elapsed() < KINDS_TTL);
        clusters.insert(cluster_id.to_string(), (Instant::now(), kinds));
    }

    pub fn forget(&self, cluster_id: &str) {
        self.lock().remove(cluster_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fetched>> {
        // Every update is one insert, remove or retain: a poisoned lock holds a whole map.
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ResourceService {
    /// The kinds `cluster_id` serves, sorted by group then kind (see [`served_kinds`]).
    /// The scope check runs on every call, cached answer or not.
    pub async fn list_kinds(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<Arc<Vec<ServedKind>>> {
        let cluster = self.clusters.client(scope, cluster_id).await?;
        if let Some(kinds) = self.kind_lists.fresh(cluster_id) {
            return Ok(kinds);
        }
        let kinds = Arc::new(
            served_kinds(&cluster.client)
                .await
                .map_err(|err| from_resource(cluster_id, err.into()))?,
        );
        self.kind_lists.store(cluster_id, kinds.clone());
        Ok(kinds)
    }
}
