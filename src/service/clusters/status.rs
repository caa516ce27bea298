//! Live cluster status: what the background prober last saw, kept in memory (it is observed
//! state, not stored state), and the prober itself.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::service::clusters::connector::ClusterConnector;
use crate::{
    kube::Probe,
    store::{ClusterRow, Store, now_millis},
};

/// Warn this long before credentials expire.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// A warning a person should act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

/// What the prober last saw of a cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedStatus {
    pub reachable: bool,
    pub unreachable_reason: String,
    pub kubernetes_version: String,
    pub node_count: i32,
    pub ready_node_count: i32,
    pub last_probe_millis: Option<i64>,
    pub credential_expire_millis: Option<i64>,
    pub last_transition_millis: Option<i64>,
    pub warnings: Vec<Warning>,
}

/// The latest observed status of every cluster.
#[derive(Default)]
pub struct StatusBoard {
    statuses: RwLock<HashMap<String, ObservedStatus>>,
}

impl StatusBoard {
    pub fn get(&self, cluster_id: &str) -> Option<ObservedStatus> {
        let map = self.statuses.read().unwrap_or_else(|p| p.into_inner());
        map.get(cluster_id).cloned()
    }

    pub fn remove(&self, cluster_id: &str) {
        let mut map = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        map.remove(cluster_id);
    }

    /// Clusters recorded before `before_millis` that are not in `known`: another replica
    /// detached them (a detach here removes its own entry at once).
    pub fn stale(&self, known: &HashSet<&str>, before_millis: i64) -> Vec<String> {
        let map = self.statuses.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(id, status)| {
                !known.contains(id.as_str())
                    && status.last_probe_millis.is_some_and(|t| t < before_millis)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Records a probe's outcome, keeping the time of the last reachable/unreachable change.
    pub fn record(
        &self,
        cluster_id: &str,
        outcome: Result<&Probe, String>,
        credential_expiry_millis: Option<i64>,
    ) -> ObservedStatus {
        let now = now_millis();
        let mut map = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        let previous = map.get(cluster_id).cloned().unwrap_or_default();
        let mut status = match &outcome {
            Ok(probe) => ObservedStatus {
                reachable: true,
                kubernetes_version: probe.kubernetes_version.clone(),
                node_count: probe.nodes.map(|n| n.total).unwrap_or_default(),
                ready_node_count: probe.nodes.map(|n| n.ready).unwrap_or_default(),
                ..ObservedStatus::default()
            },
            Err(reason) => ObservedStatus {
                reachable: false,
                unreachable_reason: reason.clone(),
                // What we knew before stays useful while the cluster is away.
                kubernetes_version: previous.kubernetes_version.clone(),
                node_count: previous.node_count,
                ready_node_count: previous.ready_node_count,
                ..ObservedStatus::default()
            },
        };
        status.last_probe_millis = Some(now);
        status.credential_expire_millis = credential_expiry_millis;
        status.last_transition_millis =
            if previous.last_probe_millis.is_none() || previous.reachable != status.reachable {
                Some(now)
            } else {
                previous.last_transition_millis
            };
        if let Ok(probe) = outcome
            && probe.nodes.is_none()
        {
            status.warnings.push(Warning {
                code: "NODES_NOT_VISIBLE".into(),
                message: "the credentials may not list nodes, so node counts are unknown".into(),
            });
        }
        if let Some(expiry) = credential_expiry_millis {
            if expiry <= now {
                status.warnings.push(Warning {
                    code: "CREDENTIAL_EXPIRED".into(),
                    message: "the stored credentials have expired; rotate them".into(),
                });
            } else if expiry - now <= EXPIRY_WARNING.as_millis() as i64 {
                let days = (expiry - now) / (24 * 3600 * 1000);
                status.warnings.push(Warning {
                    code: "CREDENTIAL_EXPIRING".into(),
                    message: format!("the stored credentials expire in {days} day(s); rotate them"),
                });
            }
        }
        map.insert(cluster_id.to_string(), status.clone());
        status
    }
}

/// How the prober runs.
#[derive(Debug, Clone, Copy)]
pub struct ProberSettings {
    pub interval: Duration,
    /// Clusters probed at once; the rest wait, so a thousand clusters don't stampede.
    pub concurrency: usize,
}

/// Probes every cluster every interval (with ±10% jitter) until shut down.
pub struct Prober {
    pub store: Store,
    pub connector: Arc<ClusterConnector>,
    pub board: Arc<StatusBoard>,
    pub settings: ProberSettings,
}

impl Prober {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            // Pick up a key added by `rotate-master-key` so new secrets use it.
            if let Err(err) = self.connector.reload_keys() {
                tracing::warn!(error = %err, "re-reading the master key file failed");
            }
            if let Err(err) = self.probe_all().await {
                tracing::warn!(error = %err, "probing clusters failed");
            }
            let pause = jittered(self.settings.interval);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn probe_all(&self) -> crate::service::Result<()> {
        let listed_at = now_millis();
        let rows = self.store.all_clusters().await?;
        // With several replicas, a cluster detached through another one is still in this
        // replica's board and client cache: forget it here too, or every detach elsewhere
        // leaks a client (and its connection pool) for good.
        let known: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        for id in self.board.stale(&known, listed_at) {
            tracing::debug!(cluster = %id, "forgetting a cluster detached elsewhere");
            self.board.remove(&id);
            self.connector.forget(&id);
        }
        futures::stream::iter(rows)
            .for_each_concurrent(self.settings.concurrency.max(1), |row| async move {
                self.probe_one(&row).await;
            })
            .await;
        Ok(())
    }

    /// Probes one cluster and records the result.
    pub async fn probe_one(&self, row: &ClusterRow) -> ObservedStatus {
        probe_and_record(&self.connector, &self.board, row, self.settings.interval).await
    }
}

/// Probes `row`'s cluster (bounded by the request timeout) and records what it saw.
pub async fn probe_and_record(
    connector: &ClusterConnector,
    board: &StatusBoard,
    row: &ClusterRow,
    interval: Duration,
) -> ObservedStatus {
    let limit = connector
        .timeouts()
        .request
        .min(interval.max(Duration::from_secs(1)));
    match connector.client(row).await {
        Ok(client) => {
            let outcome = client.probe(limit).await;
            if let Err(err) = &outcome {
                tracing::debug!(cluster = %row.id, error = %err, "cluster probe failed");
            }
            board.record(
                &row.id,
                outcome.as_ref().map_err(|e| e.to_string()),
                client.credential_expiry_millis,
            )
        }
        Err(err) => board.record(&row.id, Err(err.to_string()), None),
    }
}

fn jittered(interval: Duration) -> Duration {
    use aes_gcm::aead::{OsRng, rand_core::RngCore};
    let spread = interval.as_millis() as u64 / 10;
    if spread == 0 {
        return interval;
    }
    let offset = OsRng.next_u64() % (2 * spread);
    Duration::from_millis(interval.as_millis() as u64 - spread + offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::connect::NodeCounts;

    fn probe(nodes: Option<NodeCounts>) -> Probe {
        Probe {
            kubernetes_version: "v1.37.2".into(),
            kube_system_uid: "u".into(),
            nodes,
        }
    }

    #[test]
    fn transitions_and_warnings() {
        let board = StatusBoard::default();
        let up = board.record(
            "c",
            Ok(&probe(Some(NodeCounts { total: 3, ready: 2 }))),
            None,
        );
        assert!(up.reachable && up.node_count == 3 && up.ready_node_count == 2);
        let first = up.last_transition_millis;
        assert!(first.is_some());
        let down = board.record("c", Err("connection refused".into()), None);
        assert!(!down.reachable);
        assert_eq!(down.unreachable_reason, "connection refused");
        assert_eq!(down.node_count, 3, "last known counts stay");

        let soon = now_millis() + 2 * 24 * 3600 * 1000;
        let status = board.record("c", Ok(&probe(None)), Some(soon));
        let codes: Vec<_> = status.warnings.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["NODES_NOT_VISIBLE", "CREDENTIAL_EXPIRING"]);
        let expired = board.record("c", Ok(&probe(None)), Some(1));
        assert!(
            expired
                .warnings
                .iter()
                .any(|w| w.code == "CREDENTIAL_EXPIRED")
        );
    }

    #[test]
    fn clusters_gone_from_the_store_are_stale_unless_recorded_since_the_listing() {
        let board = StatusBoard::default();
        board.record("kept", Ok(&probe(None)), None);
        board.record("detached-elsewhere", Ok(&probe(None)), None);
        let listed_at = now_millis() + 1;
        let known: HashSet<&str> = ["kept"].into();
        assert_eq!(board.stale(&known, listed_at), ["detached-elsewhere"]);
        // Imported here after the listing: not in it, but not stale either.
        assert!(board.stale(&known, 0).is_empty());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(30));
            assert!(
                d >= Duration::from_secs(27) && d < Duration::from_secs(33),
                "{d:?}"
            );
        }
    }
}
