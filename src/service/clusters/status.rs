//! Live cluster status: what the background prober last saw, and the prober itself. Each
//! cluster is probed by the replica that owns it (see `ownership`); with a shared board the owner
//! writes what it saw to the database and every replica reads it back every second, so any
//! replica answers GetCluster/ListClusters with the live status. Replicas never talk to each
//! other, only to the database.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::service::clusters::{connector::ClusterConnector, ownership::ClusterOwnership};
use crate::{
    kube::Probe,
    store::{ClusterRow, ClusterStatusRow, Store, now_millis},
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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

/// How often a shared board re-reads the statuses other replicas wrote.
pub const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// The latest observed status of every cluster.
#[derive(Default)]
pub struct StatusBoard {
    statuses: RwLock<HashMap<String, ObservedStatus>>,
    /// Set on a shared board: every recorded status also goes to the database.
    outbox: Option<mpsc::UnboundedSender<(String, ObservedStatus)>>,
    /// Told when a cluster is recorded for the first time (just imported here), so the lease
    /// round that gives it an owner runs at once instead of at its next tick.
    first_seen: Arc<Notify>,
}

impl StatusBoard {
    /// A board shared with the other replicas through the database, and the task that writes
    /// this replica's observations there and reads everyone's back (spawn [`StatusSync::run`]).
    pub fn shared(store: Store, replica_id: String) -> (Arc<StatusBoard>, StatusSync) {
        let (outbox, writes) = mpsc::unbounded_channel();
        let board = Arc::new(StatusBoard {
            statuses: RwLock::default(),
            outbox: Some(outbox),
            first_seen: Arc::default(),
        });
        let sync = StatusSync {
            board: board.clone(),
            store,
            replica_id,
            writes,
            refresh: STATUS_REFRESH,
        };
        (board, sync)
    }

    /// Notified when a cluster is recorded that this board did not know.
    pub fn first_seen(&self) -> Arc<Notify> {
        self.first_seen.clone()
    }

    pub fn get(&self, cluster_id: &str) -> Option<ObservedStatus> {
        let map = self.statuses.read().unwrap_or_else(|p| p.into_inner());
        map.get(cluster_id).cloned()
    }

    /// The status of each cluster in turn, under one lock; the default for one not probed yet.
    pub fn get_many<'a>(&self, cluster_ids: impl Iterator<Item = &'a str>) -> Vec<ObservedStatus> {
        let map = self.statuses.read().unwrap_or_else(|p| p.into_inner());
        cluster_ids
            .map(|id| map.get(id).cloned().unwrap_or_default())
            .collect()
    }

    pub fn remove(&self, cluster_id: &str) {
        let mut map = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        map.remove(cluster_id);
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
        let first = map.insert(cluster_id.to_string(), status.clone()).is_none();
        drop(map);
        if first {
            self.first_seen.notify_one();
        }
        if let Some(outbox) = &self.outbox {
            // Only fails once the sync task has stopped (shutting down).
            let _ = outbox.send((cluster_id.to_string(), status.clone()));
        }
        status
    }

    /// Takes in what the database holds: a newer probe (by anyone) replaces ours; a cluster
    /// without a row is dropped unless we recorded it in the last `grace` (its row may still be
    /// on its way).
    fn merge(&self, stored: HashMap<String, ObservedStatus>, grace_since: i64) {
        let mut map = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|id, mine| {
            stored.contains_key(id) || mine.last_probe_millis.unwrap_or(0) >= grace_since
        });
        for (id, theirs) in stored {
            let newer = map
                .get(&id)
                .is_none_or(|mine| mine.last_probe_millis < theirs.last_probe_millis);
            if newer {
                map.insert(id, theirs);
            }
        }
    }
}

/// Writes a shared board's observations to the database and reads back everyone's.
pub struct StatusSync {
    board: Arc<StatusBoard>,
    store: Store,
    replica_id: String,
    writes: mpsc::UnboundedReceiver<(String, ObservedStatus)>,
    refresh: Duration,
}

impl StatusSync {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                write = self.writes.recv() => match write {
                    Some((id, status)) => self.write(&id, &status).await,
                    None => break,
                },
                _ = tick.tick() => self.refresh().await,
            }
        }
        // What was observed last still helps the replica that takes over.
        while let Ok((id, status)) = self.writes.try_recv() {
            self.write(&id, &status).await;
        }
    }

    async fn write(&self, cluster_id: &str, status: &ObservedStatus) {
        let row = match serde_json::to_string(status) {
            Ok(json) => ClusterStatusRow {
                cluster_id: cluster_id.to_string(),
                observed_by: self.replica_id.clone(),
                status: json,
                observed_time: status.last_probe_millis.unwrap_or_else(now_millis),
            },
            Err(err) => {
                tracing::warn!(cluster = %cluster_id, error = %err, "encoding a status failed");
                return;
            }
        };
        if let Err(err) = self.store.save_cluster_status(&row).await {
            tracing::warn!(cluster = %cluster_id, error = %err, "storing a cluster's status failed");
        }
    }

    async fn refresh(&self) {
        let started = now_millis();
        match self.store.cluster_statuses().await {
            Ok(rows) => {
                let stored = rows
                    .into_iter()
                    .filter_map(|row| {
                        serde_json::from_str::<ObservedStatus>(&row.status)
                            .ok()
                            .map(|status| (row.cluster_id, status))
                    })
                    .collect();
                self.board.merge(stored, started - 10_000);
            }
            Err(err) => tracing::warn!(error = %err, "reading cluster statuses failed"),
        }
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
    /// When set, only the clusters this replica owns are probed, and newly acquired ones at
    /// once.
    pub ownership: Option<Arc<ClusterOwnership>>,
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
            let wake = tokio::time::Instant::now() + jittered(self.settings.interval);
            loop {
                let fresh = async {
                    match &self.ownership {
                        Some(ownership) => ownership.newly_acquired().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(wake) => break,
                    ids = fresh => {
                        // Taken over or just imported elsewhere: show its live status now.
                        if let Err(err) = self.probe_some(&ids).await {
                            tracing::warn!(error = %err, "probing acquired clusters failed");
                        }
                    }
                }
            }
        }
    }

    async fn probe_all(&self) -> crate::service::Result<()> {
        let mut rows = self.store.all_clusters().await?;
        // With several replicas, a cluster detached through another one still has a client
        // (and its connection pool) here: forget it, or every detach elsewhere leaks one.
        let known: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        self.connector.forget_all_but(&known);
        if let Some(ownership) = &self.ownership {
            rows.retain(|row| ownership.owns(&row.id));
        }
        self.probe_rows(rows).await;
        Ok(())
    }

    async fn probe_some(&self, ids: &[String]) -> crate::service::Result<()> {
        let mut rows = self.store.all_clusters().await?;
        rows.retain(|row| ids.contains(&row.id));
        self.probe_rows(rows).await;
        Ok(())
    }

    async fn probe_rows(&self, rows: Vec<ClusterRow>) {
        futures::stream::iter(rows)
            .for_each_concurrent(self.settings.concurrency.max(1), |row| async move {
                self.probe_one(&row).await;
            })
            .await;
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
    let started = std::time::Instant::now();
    let observe = |reachable| {
        if let Some(metrics) = connector.metrics() {
            metrics.record_probe(&row.id, started.elapsed(), reachable);
        }
    };
    match connector.client(row).await {
        Ok(client) => {
            let outcome = client.probe(limit).await;
            observe(outcome.is_ok());
            if let Err(err) = &outcome {
                tracing::debug!(cluster = %row.id, error = %err, "cluster probe failed");
            }
            board.record(
                &row.id,
                outcome.as_ref().map_err(|e| e.to_string()),
                client.credential_expiry_millis,
            )
        }
        Err(err) => {
            observe(false);
            board.record(&row.id, Err(err.to_string()), None)
        }
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
    fn merge_takes_newer_probes_and_drops_detached_clusters() {
        let board = StatusBoard::default();
        let mine = board.record("mine", Err("down".into()), None);
        board.record("gone", Err("down".into()), None);
        let newer = ObservedStatus {
            reachable: true,
            last_probe_millis: mine.last_probe_millis.map(|t| t + 1),
            ..ObservedStatus::default()
        };
        let older = ObservedStatus {
            reachable: true,
            last_probe_millis: Some(1),
            ..ObservedStatus::default()
        };
        let stored = HashMap::from([
            ("mine".to_string(), newer.clone()),
            ("theirs".to_string(), older.clone()),
        ]);
        // "gone" has no row and was recorded before the grace period: it was detached.
        board.merge(stored, now_millis() + 1);
        assert_eq!(board.get("mine"), Some(newer));
        assert_eq!(board.get("theirs"), Some(older));
        assert_eq!(board.get("gone"), None);
        // An older stored probe does not replace a newer local one.
        let local = board.record("mine", Ok(&probe(None)), None);
        board.merge(
            HashMap::from([("mine".to_string(), ObservedStatus::default())]),
            0,
        );
        assert_eq!(board.get("mine"), Some(local));
    }

    #[test]
    fn statuses_round_trip_through_json() {
        let board = StatusBoard::default();
        let status = board.record("c", Ok(&probe(None)), Some(now_millis() + 1000));
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            serde_json::from_str::<ObservedStatus>(&json).unwrap(),
            status
        );
        // Rows written by a newer release with fields this one lacks still load.
        let extra: ObservedStatus =
            serde_json::from_str(r#"{"reachable":true,"future_field":1}"#).unwrap();
        assert!(extra.reachable);
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
