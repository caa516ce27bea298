//! Which replica looks after which cluster. Several `flotilla serve` processes on one database
//! share the clusters through per-cluster leases (see `store::cluster_leases`): the owner of a
//! cluster probes it and keeps its watch caches and event hubs; every other replica answers
//! from the database (status) or straight from Kubernetes (lists, event streams).
//!
//! Every round (a third of the lease) a replica heartbeats, renews what it holds, and moves
//! towards its fair share, `ceil(clusters / live replicas)`: over it, it releases the extras
//! (highest ids first); under it, it claims free or expired leases. A replica that dies stops
//! renewing; its heartbeat and leases expire after one lease, and the others claim them on
//! their next round, so takeover takes at most a lease and a round. A replica that stops cleanly
//! hands everything back at once. With SQLite the one replica owns every cluster through the
//! same code.
//!
//! A replica an agent's tunnel is attached to owns that cluster: it takes the lease at once
//! (from whoever held it: the newest tunnel wins, as on one replica) and never gives it up to
//! rebalancing while the tunnel is up. A replica that loses the lease of such a cluster (a newer
//! agent reached another replica, which took it) closes its own tunnel through its lost hooks.
//!
//! A replica trusts its own ownership only until its last successful renewal plus the lease
//! (`owns` turns false when the database is unreachable for that long), so two replicas never
//! both believe they own a cluster for longer than a round.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ForgetHook;
use crate::store::{Store, now_millis};

/// Answers whether this replica owns a cluster right now; services that keep per-cluster state
/// (watch caches, event hubs) ask it before starting any.
pub type OwnsCluster = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What one round changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub acquired: Vec<String>,
    pub released: Vec<String>,
    /// Held before this round but no longer renewed: another replica took them over (or they
    /// were detached).
    pub lost: Vec<String>,
    pub owned: usize,
    pub share: usize,
    pub live_replicas: usize,
}

/// This replica's clusters, and the loop that keeps the leases.
pub struct ClusterOwnership {
    store: Store,
    replica_id: String,
    lease: Duration,
    owned: RwLock<BTreeSet<String>>,
    /// Milliseconds since the epoch until which the last renewal holds.
    valid_until: AtomicI64,
    /// Clusters acquired since the prober last looked, so it probes them at once.
    fresh: Mutex<Vec<String>>,
    fresh_ready: Notify,
    /// Run for clusters this replica stops owning (its caches of them go).
    on_lost: Vec<ForgetHook>,
    /// Runs a round at once when notified (a cluster was just imported here).
    nudge: Arc<Notify>,
    /// Clusters whose agent tunnel is attached here: owned, never released to rebalancing.
    pinned: Mutex<BTreeSet<String>>,
    /// Rounds and pins one at a time (a round must not overwrite a lease taken meanwhile).
    serial: tokio::sync::Mutex<()>,
}

impl ClusterOwnership {
    pub fn new(store: Store, replica_id: String, lease: Duration) -> Self {
        ClusterOwnership {
            store,
            replica_id,
            lease: lease.max(Duration::from_secs(1)),
            owned: RwLock::default(),
            valid_until: AtomicI64::new(0),
            fresh: Mutex::default(),
            fresh_ready: Notify::new(),
            on_lost: Vec::new(),
            nudge: Arc::default(),
            pinned: Mutex::default(),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// An agent's tunnel for `cluster_id` is attached here: takes the cluster's lease now and
    /// keeps it while the tunnel is up (until [`Self::unpin`]).
    pub async fn pin(&self, cluster_id: &str) -> crate::service::Result<()> {
        let _serial = self.serial.lock().await;
        self.pinned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cluster_id.to_string());
        let now = now_millis();
        let until = now + i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 4);
        if !self
            .store
            .take_cluster_lease(&self.replica_id, cluster_id, now, until)
            .await?
        {
            return Ok(()); // detached meanwhile
        }
        let newly = self
            .owned
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cluster_id.to_string());
        if newly {
            tracing::info!(replica = %self.replica_id, cluster = %cluster_id,
                "took the cluster's lease: its agent's tunnel is here");
        }
        Ok(())
    }

    /// The tunnel of `cluster_id` is gone from here: its lease goes back to rebalancing.
    pub fn unpin(&self, cluster_id: &str) {
        self.pinned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cluster_id);
    }

    /// A round runs as soon as `nudge` is notified, besides every [`Self::round_interval`].
    pub fn with_nudge(mut self, nudge: Arc<Notify>) -> Self {
        self.nudge = nudge;
        self
    }

    /// Hooks run with each cluster this replica stops owning.
    pub fn with_on_lost(mut self, hooks: Vec<ForgetHook>) -> Self {
        self.on_lost = hooks;
        self
    }

    /// A name for this process: `$HOSTNAME` (the pod name on Kubernetes) and a random suffix,
    /// so a restarted pod with the same name never inherits leases it did not renew.
    pub fn replica_name() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "flotilla".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}", &suffix[..8])
    }

    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Time between rounds.
    pub fn round_interval(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(200))
    }

    /// Whether this replica owns `cluster_id` now (and its lease has not run out unrenewed).
    pub fn owns(&self, cluster_id: &str) -> bool {
        now_millis() < self.valid_until.load(Ordering::Acquire)
            && self
                .owned
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(cluster_id)
    }

    /// [`Self::owns`] as a closure for services that must not know this type.
    pub fn predicate(self: &Arc<Self>) -> OwnsCluster {
        let me = self.clone();
        Arc::new(move |id: &str| me.owns(id))
    }

    /// The clusters owned now, by id.
    pub fn owned(&self) -> Vec<String> {
        if now_millis() >= self.valid_until.load(Ordering::Acquire) {
            return Vec::new();
        }
        let owned = self.owned.read().unwrap_or_else(|p| p.into_inner());
        owned.iter().cloned().collect()
    }

    /// Waits until clusters were acquired, then hands them over (each once).
    pub async fn newly_acquired(&self) -> Vec<String> {
        loop {
            let notified = self.fresh_ready.notified();
            {
                let mut fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
                if !fresh.is_empty() {
                    return std::mem::take(&mut *fresh);
                }
            }
            notified.await;
        }
    }

    /// One round: heartbeat, renew, then release or claim towards the fair share.
    pub async fn round(&self) -> crate::service::Result<Round> {
        let _serial = self.serial.lock().await;
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 4);
        let started = now_millis();
        let until = started + lease_ms;
        self.store
            .heartbeat_replica(&self.replica_id, started, until)
            .await?;
        // Rows of replicas gone for a while only clutter the table.
        self.store.prune_replicas(started - 4 * lease_ms).await?;
        let live = self.store.live_replicas(started).await?.len().max(1);
        let clusters = usize::try_from(self.store.count_clusters().await?).unwrap_or(0);
        let share = clusters.div_ceil(live);
        let mut held = self
            .store
            .renew_cluster_leases(&self.replica_id, until)
            .await?;
        let mut released = Vec::new();
        if held.len() > share {
            // Clusters whose tunnel is here stay; the extras are taken from the rest.
            let pinned = self
                .pinned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let (kept, mut movable): (Vec<String>, Vec<String>) =
                held.into_iter().partition(|id| pinned.contains(id));
            let room = share.saturating_sub(kept.len());
            if movable.len() > room {
                released = movable.split_off(room);
            }
            held = kept;
            held.extend(movable);
            held.sort();
            if !released.is_empty() {
                self.store
                    .release_cluster_leases(&self.replica_id, &released)
                    .await?;
            }
        }
        let mut acquired = Vec::new();
        if held.len() < share {
            let want = i64::try_from(share - held.len()).unwrap_or(0);
            acquired = self
                .store
                .claim_cluster_leases(&self.replica_id, now_millis(), until, want)
                .await?;
            held.extend(acquired.iter().cloned());
        }
        let now_held: BTreeSet<String> = held.into_iter().collect();
        let lost: Vec<String> = {
            let mut owned = self.owned.write().unwrap_or_else(|p| p.into_inner());
            let lost = owned
                .iter()
                .filter(|id| !now_held.contains(*id))
                .cloned()
                .collect();
            *owned = now_held;
            lost
        };
        // Trust the renewal from when it was asked, not when it was answered.
        self.valid_until.store(until, Ordering::Release);
        for id in &lost {
            for hook in &self.on_lost {
                hook(id);
            }
        }
        if !acquired.is_empty() {
            self.fresh
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(acquired.iter().cloned());
            self.fresh_ready.notify_one();
        }
        // Released ones were given up on purpose; the rest were taken or detached.
        let lost: Vec<String> = lost
            .into_iter()
            .filter(|id| !released.contains(id))
            .collect();
        if !(acquired.is_empty() && released.is_empty() && lost.is_empty()) {
            tracing::info!(
                replica = %self.replica_id,
                acquired = acquired.len(),
                released = released.len(),
                lost = lost.len(),
                owned = self.owned.read().unwrap_or_else(|p| p.into_inner()).len(),
                share,
                live_replicas = live,
                "cluster leases changed"
            );
        }
        Ok(Round {
            owned: self.owned.read().unwrap_or_else(|p| p.into_inner()).len(),
            acquired,
            released,
            lost,
            share,
            live_replicas: live,
        })
    }

    /// Keeps the leases until shut down, then hands every cluster back.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.round_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                () = self.nudge.notified() => {}
            }
            if let Err(err) = self.round().await {
                tracing::warn!(error = %err, "renewing cluster leases failed");
            }
        }
        self.valid_until.store(0, Ordering::Release);
        if let Err(err) = self.store.retire_replica(&self.replica_id).await {
            tracing::warn!(error = %err, "handing back cluster leases failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_names_differ_per_process_start() {
        let (a, b) = (
            ClusterOwnership::replica_name(),
            ClusterOwnership::replica_name(),
        );
        assert_ne!(a, b);
        assert!(a.len() > 9, "{a}");
    }
}
