//! kube-rs clients per cluster, built lazily and rebuilt when the stored credentials change.

use std::{collections::HashMap, sync::Mutex};

use super::ClusterClient;

/// Clients keyed by cluster id and the version of the credentials they were built from.
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<String, (i64, ClusterClient)>>,
}

impl ClientCache {
    /// The cached client if it was built from credentials `version`.
    pub fn get(&self, cluster_id: &str, version: i64) -> Option<ClusterClient> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .get(cluster_id)
            .filter(|(v, _)| *v == version)
            .map(|(_, client)| client.clone())
    }

    pub fn insert(&self, cluster_id: &str, version: i64, client: ClusterClient) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.insert(cluster_id.to_string(), (version, client));
    }

    pub fn remove(&self, cluster_id: &str) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.remove(cluster_id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
