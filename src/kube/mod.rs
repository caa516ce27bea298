//! Per-cluster Kubernetes access: kube-rs lives only here.

pub mod access;
pub mod apply;
pub mod cache;
pub mod cached_pod;
pub mod connect;
pub mod convert;
pub mod credential_check;
pub mod drain;
pub mod error;
pub mod event_hub;
pub mod expiry;
pub mod impersonation;
pub mod kinds;
pub mod kubeconfig;
pub mod logs;
pub mod pod_view;
pub mod pull_secret;
pub mod resources;
pub mod response_guard;
pub mod selector;
pub mod summary;
pub mod tunnel;
pub mod user_fields;
pub mod watch_cache;
pub mod workloads;
pub mod yaml_limits;

pub use access::{ClusterAccess, Credentials};
pub use cache::{ClientCache, ImpersonatedClients};
pub use connect::{Probe, Timeouts};
pub use error::{ClusterError, CredentialPart, classify};
pub use kubeconfig::{FileReferences, KubeconfigError};

/// A connected cluster: the kube-rs client and what is known of its credentials.
#[derive(Clone)]
pub struct ClusterClient {
    pub client: ::kube::Client,
    /// When the credentials expire (ms since the epoch), if they say.
    pub credential_expiry_millis: Option<i64>,
}

impl ClusterClient {
    /// Builds a client for `access` (nothing is sent yet) that connects only where `outbound`
    /// allows.
    pub fn new(
        access: &ClusterAccess,
        timeouts: Timeouts,
        outbound: &std::sync::Arc<crate::net::OutboundPolicy>,
    ) -> Result<ClusterClient, ClusterError> {
        Ok(ClusterClient {
            client: connect::client(access, timeouts, outbound, None, None)?,
            credential_expiry_millis: expiry::credential_expiry_millis(access),
        })
    }

    /// Builds a client for `access` whose every request acts as `who` (nothing is sent yet).
    pub fn impersonating(
        access: &ClusterAccess,
        timeouts: Timeouts,
        outbound: &std::sync::Arc<crate::net::OutboundPolicy>,
        who: &impersonation::Impersonation,
    ) -> Result<ClusterClient, ClusterError> {
        Ok(ClusterClient {
            client: connect::client(access, timeouts, outbound, Some(who), None)?,
            credential_expiry_millis: expiry::credential_expiry_millis(access),
        })
    }

    /// [`ClusterClient::new`] or [`ClusterClient::impersonating`] with every request counted,
    /// timed and traced by `observe`.
    pub fn observed(
        access: &ClusterAccess,
        timeouts: Timeouts,
        outbound: &std::sync::Arc<crate::net::OutboundPolicy>,
        who: Option<&impersonation::Impersonation>,
        observe: crate::telemetry::kube_requests::KubeRequestLayer,
    ) -> Result<ClusterClient, ClusterError> {
        Ok(ClusterClient {
            client: connect::client(access, timeouts, outbound, who, Some(observe))?,
            credential_expiry_millis: expiry::credential_expiry_millis(access),
        })
    }

    /// Version, identity and node counts, bounded by `limit`.
    pub async fn probe(&self, limit: std::time::Duration) -> Result<Probe, ClusterError> {
        connect::probe(&self.client, limit).await
    }
}
