//! Reaching clusters: sealing and opening their stored access, and a cached client per cluster.

use std::sync::Arc;

use crate::{
    crypto::{Keyring, SecretOwner},
    kube::{
        ClientCache, ClusterAccess, ClusterClient, ClusterError, ImpersonatedClients, Timeouts,
        impersonation::{self, Impersonation},
        tunnel::{self, TunnelRegistry},
    },
    net::OutboundPolicy,
    store::{ClusterRow, SecretRow, Store, now_millis},
    telemetry::{kube_requests::KubeRequestLayer, metrics::Metrics},
};

use crate::service::{
    Error, Result,
    access::{kube::impersonation_of, scope::Scope},
    kube_errors::{Stage, from_cluster},
    secrets::sealed::{open_row, seal_row},
};

/// What a failure to connect with stored access means to a caller.
fn connect_error(err: ClusterError) -> Error {
    from_cluster(Stage::Connect, err)
}

/// Turns stored cluster rows into connected clients.
pub struct ClusterConnector {
    store: Store,
    keyring: Arc<Keyring>,
    cache: ClientCache,
    timeouts: Timeouts,
    /// Where clients may connect (every connection of every cluster client is checked).
    outbound: Arc<OutboundPolicy>,
    /// Clients acting as callers, for clusters in impersonation mode.
    impersonated: ImpersonatedClients,
    /// Counts and times every Kubernetes request, when set.
    metrics: Option<Metrics>,
    /// Live tunnels of clusters imported by agent, when agents are served.
    tunnels: Option<Arc<TunnelRegistry>>,
}

impl ClusterConnector {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        timeouts: Timeouts,
        outbound: Arc<OutboundPolicy>,
    ) -> Self {
        ClusterConnector {
            store,
            keyring,
            cache: ClientCache::default(),
            timeouts,
            outbound,
            impersonated: ImpersonatedClients::default(),
            metrics: None,
            tunnels: None,
        }
    }

    /// Clusters imported by agent are reached through their tunnels in `tunnels`.
    pub fn with_tunnels(mut self, tunnels: Arc<TunnelRegistry>) -> Self {
        self.tunnels = Some(tunnels);
        self
    }

    pub fn tunnels(&self) -> Option<&Arc<TunnelRegistry>> {
        self.tunnels.as_ref()
    }

    /// Closes the tunnel of `cluster_id`'s agent, if one is open here (the cluster was detached
    /// or now has direct access).
    pub fn close_tunnel(&self, cluster_id: &str, reason: &str) {
        if let Some(tunnels) = &self.tunnels {
            tunnels.close_cluster(cluster_id, reason);
        }
    }

    /// For a cluster imported by agent (no stored access, an agent credential), a client whose
    /// requests go through its tunnel; `None` for every other cluster.
    pub(super) async fn tunnel_client(
        &self,
        row: &ClusterRow,
        who: Option<&Impersonation>,
    ) -> Result<Option<ClusterClient>> {
        let Some(tunnels) = &self.tunnels else {
            return Ok(None);
        };
        if row.access_secret_id.is_some() || !self.store.has_agent_credential(&row.id).await? {
            return Ok(None);
        }
        let observe = self
            .metrics
            .as_ref()
            .map(|metrics| KubeRequestLayer::new(metrics.clone(), &row.id));
        Ok(Some(ClusterClient {
            client: tunnel::client(
                tunnels.clone(),
                &row.id,
                self.timeouts.request,
                who,
                observe,
            ),
            credential_expiry_millis: None,
        }))
    }

    /// Every client built from now on reports its requests to `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Where cluster metrics go, when they are on.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// A client for `cluster_id` (empty: not registered yet), observed when metrics are on.
    fn build(
        &self,
        cluster_id: &str,
        access: &ClusterAccess,
        who: Option<&Impersonation>,
    ) -> Result<ClusterClient, ClusterError> {
        match (&self.metrics, who) {
            (Some(metrics), who) => ClusterClient::observed(
                access,
                self.timeouts,
                &self.outbound,
                who,
                KubeRequestLayer::new(metrics.clone(), cluster_id),
            ),
            (None, Some(who)) => {
                ClusterClient::impersonating(access, self.timeouts, &self.outbound, who)
            }
            (None, None) => ClusterClient::new(access, self.timeouts, &self.outbound),
        }
    }

    /// A client for `access` that is not cached (imports and credential checks).
    pub fn build_client(&self, access: &ClusterAccess) -> Result<ClusterClient, ClusterError> {
        self.build("", access, None)
    }

    /// A client for `access` acting as `who`, not cached (impersonation checks).
    pub fn build_impersonating_client(
        &self,
        access: &ClusterAccess,
        who: &Impersonation,
    ) -> Result<ClusterClient, ClusterError> {
        self.build("", access, Some(who))
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Encrypts `access` into a new secret row with id `secret_id`, bound to `cluster_id`.
    pub fn seal(
        &self,
        cluster_id: &str,
        secret_id: &str,
        access: &ClusterAccess,
    ) -> Result<SecretRow> {
        seal_row(
            &self.keyring,
            SecretOwner::Cluster(cluster_id),
            secret_id,
            &access.to_json(),
            now_millis(),
        )
    }

    /// Decrypts a cluster's stored access.
    pub async fn open(&self, row: &ClusterRow) -> Result<ClusterAccess> {
        let secret_id =
            row.access_secret_id
                .as_deref()
                .ok_or_else(|| Error::FailedPrecondition {
                    reason: "NO_CLUSTER_CREDENTIALS",
                    message: format!("cluster {:?} has no stored credentials yet", row.id),
                })?;
        let secret =
            self.store.get_secret(secret_id).await?.ok_or_else(|| {
                Error::Internal(format!("secret {secret_id} of {} missing", row.id))
            })?;
        let plain = open_row(&self.keyring, SecretOwner::Cluster(&row.id), &secret)?;
        ClusterAccess::from_json(plain.expose())
            .ok_or_else(|| Error::Internal(format!("secret {secret_id} does not parse")))
    }

    /// A client for the cluster, built on first use and whenever its row changed.
    pub async fn client(&self, row: &ClusterRow) -> Result<ClusterClient> {
        if let Some(client) = self.cache.get(&row.id, row.version) {
            return Ok(client);
        }
        if let Some(client) = self.tunnel_client(row, None).await? {
            self.cache.insert(&row.id, row.version, client.clone());
            return Ok(client);
        }
        let access = self.open(row).await?;
        let client = self.build(&row.id, &access, None).map_err(connect_error)?;
        self.cache.insert(&row.id, row.version, client.clone());
        Ok(client)
    }

    /// The client a call for `scope` uses: in impersonation mode one acting as the caller,
    /// otherwise (and for Flotilla's own work) the stored credential's own.
    pub async fn client_for(&self, row: &ClusterRow, scope: &Scope) -> Result<ClusterClient> {
        let Some(who) = impersonation_of(row, scope) else {
            return self.client(row).await;
        };
        if let Some(client) = self.impersonated.get(&row.id, row.version, &who) {
            return Ok(client);
        }
        if let Some(client) = self.tunnel_client(row, Some(&who)).await? {
            self.impersonated
                .insert(&row.id, row.version, &who, client.clone());
            return Ok(client);
        }
        let access = self.open(row).await?;
        let client = self
            .build(&row.id, &access, Some(&who))
            .map_err(connect_error)?;
        self.impersonated
            .insert(&row.id, row.version, &who, client.clone());
        Ok(client)
    }

    /// Re-reads the master key file (a no-op for a fixed key).
    pub fn reload_keys(&self) -> Result<()> {
        Ok(self.keyring.reload()?)
    }

    pub fn forget(&self, cluster_id: &str) {
        self.cache.remove(cluster_id);
        self.impersonated.remove_cluster(cluster_id);
    }

    /// Forgets every cached client of a cluster not in `known` (detached through another
    /// replica); a client dropped by a race with an import is rebuilt on its next use.
    pub fn forget_all_but(&self, known: &std::collections::HashSet<&str>) {
        for id in self.cache.ids() {
            if !known.contains(id.as_str()) {
                tracing::debug!(cluster = %id, "forgetting a cluster detached elsewhere");
                self.forget(&id);
            }
        }
    }

    pub fn cached_clients(&self) -> usize {
        self.cache.len()
    }

    /// Makes sure impersonation can work with `access` before it is turned on: optionally
    /// applies the group bindings first, then asks the cluster (SelfSubjectAccessReview)
    /// whether the credential may impersonate users and groups and whether each Flotilla group
    /// is bound. FAILED_PRECONDITION names everything missing.
    pub async fn prepare_impersonation(
        &self,
        access: &ClusterAccess,
        install_rbac: bool,
    ) -> Result<()> {
        let own = self.build_client(access).map_err(connect_error)?;
        if install_rbac {
            impersonation::install_role_bindings(&own.client)
                .await
                .map_err(|err| Error::FailedPrecondition {
                    reason: "RBAC_INSTALL_FAILED",
                    message: format!(
                        "could not apply the ClusterRoleBindings of the flotilla groups with \
                         the stored credential: {err}"
                    ),
                })?;
        }
        let missing = impersonation::missing_for_impersonation(&own.client, |who| {
            self.build_impersonating_client(access, who)
                .map(|c| c.client)
        })
        .await
        .map_err(connect_error)?;
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::FailedPrecondition {
            reason: "IMPERSONATION_NOT_POSSIBLE",
            message: format!(
                "impersonation mode needs what this cluster lacks: {}",
                missing.join("; ")
            ),
        })
    }
}
