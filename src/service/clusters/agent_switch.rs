//! `UpdateClusterCredentials` with source `agent`: a cluster imported by agent that was switched
//! to a kubeconfig or token goes back to its agent. Like every credential change it is checked
//! first (the agent's tunnel must be up here and reach the same cluster) and changes nothing when
//! the check fails; then the stored access and its secret are removed in one transaction.

use std::time::Duration;

use super::{
    Cluster,
    import::{ClusterImporter, IMPORT_PROBE_LIMIT},
    status::Warning,
};
use crate::{
    service::{Error, Result, kube_errors},
    store::{ClusterRow, now_millis},
};

/// How long a caller should wait before retrying while the agent reconnects (its backoff starts
/// at half a second and grows to 30 s).
const RECONNECT_RETRY: Duration = Duration::from_secs(5);

impl ClusterImporter {
    /// Moves `row`'s cluster back to its agent's tunnel (or, with `validate_only`, only checks
    /// that it could).
    pub(super) async fn switch_to_agent(
        &self,
        row: ClusterRow,
        validate_only: bool,
    ) -> Result<Cluster> {
        let connector = self.connector();
        if !self.store().has_agent_credential(&row.id).await? {
            return Err(Error::FailedPrecondition {
                reason: "NO_AGENT",
                message: format!(
                    "cluster {:?} has no registered agent; only a cluster imported by agent \
                     (CreateAgentRegistration) can be switched to source agent",
                    row.id
                ),
            });
        }
        let connected = connector
            .tunnels()
            .is_some_and(|tunnels| tunnels.is_connected(&row.id));
        if !connected {
            return Err(Error::Unavailable {
                reason: "AGENT_NOT_CONNECTED",
                message: format!(
                    "the agent of cluster {:?} is not connected to this server; start it (or \
                     wait for it to reconnect) and retry. The cluster keeps its current access \
                     meanwhile",
                    row.id
                ),
                retry_after: Some(RECONNECT_RETRY),
            });
        }
        let mut updated = row.clone();
        updated.access_secret_id = None;
        updated.endpoint = String::new();
        updated.warnings = without_tls_warning(&row.warnings);
        updated.update_time = now_millis();
        let client = connector
            .tunnel_client(&updated, None)
            .await?
            .ok_or_else(|| Error::Internal("no tunnel client for an agent cluster".into()))?;
        let probe = client
            .probe(IMPORT_PROBE_LIMIT)
            .await
            .map_err(|err| kube_errors::from_cluster(kube_errors::Stage::Connect, err))?;
        if row.kube_system_uid.as_deref() != Some(probe.kube_system_uid.as_str()) {
            return Err(Error::FailedPrecondition {
                reason: "DIFFERENT_CLUSTER",
                message: format!(
                    "the agent's tunnel reaches a different cluster (kube-system UID {}), not \
                     cluster {:?}",
                    probe.kube_system_uid, row.id
                ),
            });
        }
        if validate_only {
            let mut cluster = Cluster::try_from(updated)?;
            cluster.status = super::import::preview_status(&probe, None);
            return Ok(cluster);
        }
        self.store()
            .clear_cluster_secret(&updated, row.version)
            .await?;
        // Clients and caches built on the direct access go; the tunnel stays open.
        connector.forget(&row.id);
        self.forget_caches(&row.id);
        tracing::info!(cluster = %row.id, "cluster switched back to its agent");
        let stored = self
            .store()
            .get_cluster(&row.id)
            .await?
            .ok_or_else(|| Error::Aborted("the cluster was deleted meanwhile".into()))?;
        let status = self.board().record(&row.id, Ok(&probe), None);
        let mut cluster = Cluster::try_from(stored)?;
        cluster.status = status;
        Ok(cluster)
    }
}

/// The warnings of a cluster without the direct access's TLS warning (the tunnel's TLS is the
/// agent's own, verified).
fn without_tls_warning(warnings: &str) -> String {
    let mut kept: Vec<Warning> = serde_json::from_str(warnings).unwrap_or_default();
    kept.retain(|w| w.code != "INSECURE_TLS");
    serde_json::to_string(&kept).unwrap_or_else(|_| "[]".into())
}
