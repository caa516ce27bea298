//! Reaching clusters: sealing and opening their stored access, and a cached client per cluster.

use std::sync::Arc;

use crate::{
    crypto::{Keyring, SecretOwner},
    kube::{
        ClientCache, ClusterAccess, ClusterClient, ClusterError, CredentialPart,
        ImpersonatedClients, Timeouts,
    },
    net::OutboundPolicy,
    store::{ClusterRow, SecretRow, Store, now_millis},
};

use crate::service::{
    Error, Result,
    secrets::sealed::{open_row, seal_row},
};

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
        }
    }

    /// A client for `access` that is not cached (imports and credential checks).
    pub fn build_client(&self, access: &ClusterAccess) -> Result<ClusterClient, ClusterError> {
        ClusterClient::new(access, self.timeouts, &self.outbound)
    }

    /// A client for `access` acting as `who`, not cached (impersonation checks).
    pub fn build_impersonating_client(
        &self,
        access: &ClusterAccess,
        who: &crate::kube::impersonation::Impersonation,
    ) -> Result<ClusterClient, ClusterError> {
        ClusterClient::impersonating(access, self.timeouts, &self.outbound, who)
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
        let access = self.open(row).await?;
        let client = self.build_client(&access).map_err(cluster_error)?;
        self.cache.insert(&row.id, row.version, client.clone());
        Ok(client)
    }

    /// The client a call for `scope` uses: in impersonation mode one acting as the caller,
    /// otherwise (and for Flotilla's own work) the stored credential's own.
    pub async fn client_for(
        &self,
        row: &ClusterRow,
        scope: &crate::service::access::Scope,
    ) -> Result<ClusterClient> {
        let Some(who) = crate::service::access::kube::impersonation(row, scope) else {
            return self.client(row).await;
        };
        if let Some(client) = self.impersonated.get(&row.id, row.version, &who) {
            return Ok(client);
        }
        let access = self.open(row).await?;
        let client = self
            .build_impersonating_client(&access, &who)
            .map_err(cluster_error)?;
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

    pub fn cached_clients(&self) -> usize {
        self.cache.len()
    }
}

/// What a cluster failure means to a caller.
pub fn cluster_error(err: ClusterError) -> Error {
    let reason = err.reason();
    match err {
        ClusterError::InvalidServer(_) => Error::invalid("source.token.server", err.to_string()),
        ClusterError::BadCredential { part, .. } => {
            let field = match part {
                CredentialPart::CaCertificate => "source.token.ca_pem",
                CredentialPart::BearerToken => "source.token.bearer_token",
                CredentialPart::ClientCertificate | CredentialPart::ClientKey => {
                    "source.kubeconfig.kubeconfig"
                }
            };
            Error::invalid(field, err.to_string())
        }
        ClusterError::AddressNotAllowed(_) => Error::FailedPrecondition {
            reason,
            message: err.to_string(),
        },
        ClusterError::Unreachable(_) | ClusterError::Timeout(_) => Error::Unavailable {
            reason,
            message: err.to_string(),
            retry_after: None,
        },
        ClusterError::NotFound(_) => Error::FailedPrecondition {
            reason,
            message: err.to_string(),
        },
        ClusterError::Conflict { .. } | ClusterError::Invalid { .. } => Error::FailedPrecondition {
            reason,
            message: err.to_string(),
        },
        ClusterError::Tls(_)
        | ClusterError::Unauthorized(_)
        | ClusterError::Forbidden(_)
        | ClusterError::Api { .. }
        | ClusterError::Other(_) => Error::FailedPrecondition {
            reason,
            message: err.to_string(),
        },
    }
}
