//! The status of clusters imported by agent follows their tunnels: a connect is probed at once
//! (through the tunnel), a disconnect is recorded at once with its reason, so GetCluster turns
//! unreachable within one keep-alive interval of the agent going away rather than at the next
//! probe round. The replica a tunnel is attached to owns its cluster while it is up (see
//! `ownership`).

use std::{sync::Arc, time::Duration};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{
    connector::ClusterConnector,
    ownership::ClusterOwnership,
    status::{StatusBoard, probe_and_record},
};
use crate::{
    kube::tunnel::{NOT_CONNECTED, TunnelChange},
    store::Store,
};

/// The reason an agent cluster without a live tunnel is unreachable.
pub fn not_connected_reason(detail: &str) -> String {
    format!("cannot reach the API server: {NOT_CONNECTED} ({detail})")
}

/// Records every tunnel change of `connector`'s registry on `board` until shut down.
pub async fn follow_tunnels(
    store: Store,
    connector: Arc<ClusterConnector>,
    board: Arc<StatusBoard>,
    ownership: Arc<ClusterOwnership>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let Some(registry) = connector.tunnels().cloned() else {
        return;
    };
    let mut changes = registry.subscribe();
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(TunnelChange::Connected(id)) => {
                // In order with the disconnects (not spawned): a pin never outlives its tunnel.
                if let Err(err) = ownership.pin(&id).await {
                    tracing::warn!(cluster = %id, error = %err,
                        "taking the lease of a cluster whose agent connected failed");
                }
                let (store, connector, board) = (store.clone(), connector.clone(), board.clone());
                tokio::spawn(async move {
                    match store.get_cluster(&id).await {
                        Ok(Some(row)) => {
                            let status = probe_and_record(&connector, &board, &row, interval).await;
                            tracing::info!(cluster = %id, reachable = status.reachable,
                                "agent connected");
                        }
                        Ok(None) => {}
                        Err(err) => tracing::warn!(cluster = %id, error = %err,
                            "reading a cluster whose agent connected failed"),
                    }
                });
            }
            Ok(TunnelChange::Disconnected { cluster_id, reason }) => {
                if !registry.is_connected(&cluster_id) {
                    ownership.unpin(&cluster_id);
                }
                // A newer tunnel may already be up (a replaced agent), or the cluster has
                // switched to direct access: then the tunnel says nothing about it.
                let agent_mode = matches!(
                    store.get_cluster(&cluster_id).await,
                    Ok(Some(row)) if row.access_secret_id.is_none()
                );
                if agent_mode && !registry.is_connected(&cluster_id) {
                    tracing::info!(cluster = %cluster_id, %reason, "agent disconnected");
                    board.record(&cluster_id, Err(not_connected_reason(&reason)), None);
                }
            }
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
