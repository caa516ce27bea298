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

    /// The clusters that have a cached client.
    pub fn ids(&self) -> Vec<String> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Clients that impersonate one caller on one cluster, keyed by cluster, credentials version and
/// identity. Each holds its own connections, so there are at most `capacity`: the least recently
/// used goes first. Entries of older credentials are never returned and go with
/// [`ImpersonatedClients::remove_cluster`] (rotation, detach).
pub struct ImpersonatedClients {
    capacity: usize,
    state: Mutex<ImpersonatedState>,
}

#[derive(Default)]
struct ImpersonatedState {
    /// (cluster id, user, group) → (credentials version, client, last use tick).
    clients: HashMap<(String, String, String), (i64, ClusterClient, u64)>,
    tick: u64,
}

impl Default for ImpersonatedClients {
    fn default() -> Self {
        ImpersonatedClients::with_capacity(256)
    }
}

impl ImpersonatedClients {
    pub fn with_capacity(capacity: usize) -> Self {
        ImpersonatedClients {
            capacity: capacity.max(1),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ImpersonatedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(
        &self,
        cluster_id: &str,
        version: i64,
        who: &super::impersonation::Impersonation,
    ) -> Option<ClusterClient> {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        let key = (cluster_id.to_string(), who.user.clone(), who.group.clone());
        let entry = state
            .clients
            .get_mut(&key)
            .filter(|(v, _, _)| *v == version)?;
        entry.2 = tick;
        Some(entry.1.clone())
    }

    pub fn insert(
        &self,
        cluster_id: &str,
        version: i64,
        who: &super::impersonation::Impersonation,
        client: ClusterClient,
    ) {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        let key = (cluster_id.to_string(), who.user.clone(), who.group.clone());
        if !state.clients.contains_key(&key) && state.clients.len() >= self.capacity {
            let oldest = state
                .clients
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                state.clients.remove(&oldest);
            }
        }
        state.clients.insert(key, (version, client, tick));
    }

    /// Drops every client of `cluster_id`.
    pub fn remove_cluster(&self, cluster_id: &str) {
        self.lock().clients.retain(|(id, _, _), _| id != cluster_id);
    }

    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::{ClusterAccess, Credentials, Timeouts, impersonation::Impersonation};

    fn client() -> ClusterClient {
        let access = ClusterAccess {
            server: "https://127.0.0.1:1".into(),
            ca_pem: None,
            tls_server_name: None,
            insecure_skip_tls_verify: false,
            credentials: Credentials::Token {
                token: zeroize::Zeroizing::new("t".into()),
            },
        };
        let outbound = std::sync::Arc::new(crate::net::OutboundPolicy::defaults(
            "127.0.0.1:50051".parse().unwrap(),
        ));
        ClusterClient::new(&access, Timeouts::default(), &outbound).unwrap()
    }

    #[tokio::test]
    async fn impersonated_clients_are_bounded_versioned_and_forgotten_per_cluster() {
        let cache = ImpersonatedClients::with_capacity(2);
        let (a, b, c) = (
            Impersonation::of("a", "viewer"),
            Impersonation::of("b", "viewer"),
            Impersonation::of("c", "admin"),
        );
        cache.insert("dev", 1, &a, client());
        cache.insert("dev", 1, &b, client());
        assert!(cache.get("dev", 1, &a).is_some()); // a is now the most recently used
        cache.insert("prod", 1, &c, client());
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get("dev", 1, &b).is_none(),
            "least recently used goes"
        );
        assert!(cache.get("dev", 1, &a).is_some());
        assert!(
            cache.get("dev", 2, &a).is_none(),
            "other credentials version"
        );
        assert!(
            cache
                .get("dev", 1, &Impersonation::of("a", "admin"))
                .is_none()
        );
        cache.remove_cluster("dev");
        assert!(cache.get("dev", 1, &a).is_none());
        assert!(cache.get("prod", 1, &c).is_some());
    }
}
