//! Watch caches for the hot lists: the pods and nodes of clusters that are being queried,
//! kept by kube-runtime watchers as trimmed summaries (not whole objects). A cache starts on a
//! cluster's first query, serves lists once synced, and stops after it has been idle.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use ::kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use tokio_util::sync::CancellationToken;

use super::{
    convert,
    summary::{NodeSummary, PodSummary},
};

/// Objects by (namespace, name), in order so pages are stable.
type Objects<T> = BTreeMap<(String, String), Arc<T>>;

/// A reflection of one kind in one cluster.
pub struct Reflection<T> {
    items: RwLock<Objects<T>>,
    /// Filled during a (re)list; replaces `items` when the list is complete.
    staging: Mutex<Option<Objects<T>>>,
    ready: AtomicBool,
}

impl<T> Default for Reflection<T> {
    fn default() -> Self {
        Reflection {
            items: RwLock::default(),
            staging: Mutex::default(),
            ready: AtomicBool::new(false),
        }
    }
}

impl<T> Reflection<T> {
    /// Applies one watch event. Pure bookkeeping, no I/O.
    pub fn apply(&self, event: watcher::Event<((String, String), T)>) {
        match event {
            watcher::Event::Init => {
                *self.staging.lock().unwrap_or_else(|p| p.into_inner()) = Some(BTreeMap::new());
            }
            watcher::Event::InitApply((key, item)) => {
                if let Some(staging) = self
                    .staging
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    staging.insert(key, Arc::new(item));
                }
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = self
                    .staging
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                {
                    *self.items.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                }
                self.ready.store(true, Ordering::Release);
            }
            watcher::Event::Apply((key, item)) => {
                self.items
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, Arc::new(item));
            }
            watcher::Event::Delete((key, _)) => {
                self.items
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
            }
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The items matching `keep`, in (namespace, name) order.
    pub fn select(&self, mut keep: impl FnMut(&T) -> bool) -> Vec<Arc<T>> {
        let items = self.items.read().unwrap_or_else(|p| p.into_inner());
        items.values().filter(|i| keep(i)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.items.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The caches of one cluster.
pub struct ClusterWatch {
    pub pods: Arc<Reflection<PodSummary>>,
    pub nodes: Arc<Reflection<NodeSummary>>,
    version: i64,
    last_used: AtomicI64,
    stop: CancellationToken,
}

impl ClusterWatch {
    /// Nodes with their running-pod counts taken from the pod cache.
    pub fn nodes_with_pod_counts(
        &self,
        keep: impl FnMut(&NodeSummary) -> bool,
    ) -> Vec<NodeSummary> {
        let mut counts: HashMap<String, i32> = HashMap::new();
        for pod in self
            .pods
            .select(|p| !p.node_name.is_empty() && p.phase != "Succeeded" && p.phase != "Failed")
        {
            *counts.entry(pod.node_name.clone()).or_default() += 1;
        }
        self.nodes
            .select(keep)
            .into_iter()
            .map(|n| {
                let mut node = (*n).clone();
                node.pod_count = counts.get(&node.name).copied().unwrap_or(0);
                node
            })
            .collect()
    }
}

/// Every cluster's watch caches.
pub struct WatchCaches {
    clusters: Mutex<HashMap<String, Arc<ClusterWatch>>>,
    idle: Duration,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl WatchCaches {
    /// Caches unused for `idle` are stopped by [`WatchCaches::run_janitor`].
    pub fn new(idle: Duration) -> Self {
        WatchCaches {
            clusters: Mutex::default(),
            idle,
        }
    }

    /// The cluster's caches, starting them if needed (a new credentials `version` restarts
    /// them). They may not be synced yet: check `is_ready`.
    pub fn watch(&self, cluster_id: &str, version: i64, client: &Client) -> Arc<ClusterWatch> {
        let mut clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = clusters.get(cluster_id)
            && existing.version == version
            && !existing.stop.is_cancelled()
        {
            existing.last_used.store(now_secs(), Ordering::Relaxed);
            return existing.clone();
        }
        if let Some(old) = clusters.remove(cluster_id) {
            old.stop.cancel();
        }
        let watch = Arc::new(ClusterWatch {
            pods: Arc::default(),
            nodes: Arc::default(),
            version,
            last_used: AtomicI64::new(now_secs()),
            stop: CancellationToken::new(),
        });
        tokio::spawn(reflect(
            Api::<Pod>::all(client.clone()),
            watch.pods.clone(),
            watch.stop.clone(),
            |pod: Pod| convert::pod(&pod),
            format!("{cluster_id}/pods"),
        ));
        tokio::spawn(reflect(
            Api::<Node>::all(client.clone()),
            watch.nodes.clone(),
            watch.stop.clone(),
            |node: Node| convert::node(&node, 0),
            format!("{cluster_id}/nodes"),
        ));
        clusters.insert(cluster_id.to_string(), watch.clone());
        watch
    }

    /// Stops the caches of a cluster (detached, or credentials replaced).
    pub fn forget(&self, cluster_id: &str) {
        if let Some(old) = self
            .clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cluster_id)
        {
            old.stop.cancel();
        }
    }

    /// Pods cached over every cluster.
    pub fn cached_pods(&self) -> usize {
        let clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        clusters.values().map(|w| w.pods.len()).sum()
    }

    /// Stops idle caches every minute until `shutdown`.
    pub async fn run_janitor(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(60).min(self.idle)) => {}
            }
            let cutoff = now_secs() - self.idle.as_secs() as i64;
            let mut clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
            clusters.retain(|id, watch| {
                let keep = watch.last_used.load(Ordering::Relaxed) >= cutoff;
                if !keep {
                    tracing::debug!(cluster = %id, "stopping an idle watch cache");
                    watch.stop.cancel();
                }
                keep
            });
        }
        let clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        for watch in clusters.values() {
            watch.stop.cancel();
        }
    }
}

/// Feeds one watcher into a reflection until stopped. Errors are retried with backoff by the
/// watcher; the cache stays as it was meanwhile.
async fn reflect<K, T>(
    api: Api<K>,
    reflection: Arc<Reflection<T>>,
    stop: CancellationToken,
    summarize: fn(K) -> T,
    what: String,
) where
    K: ::kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
    T: Send + Sync + 'static,
{
    let key = |k: &K| {
        let meta = k.meta();
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    };
    // Small list pages keep the transient memory of a (re)list low; only summaries are kept.
    let events = watcher(
        api,
        watcher::Config::default().page_size(100).any_semantic(),
    )
    .default_backoff();
    futures::pin_mut!(events);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            Some(Ok(event)) => {
                let mapped = match event {
                    watcher::Event::Init => watcher::Event::Init,
                    watcher::Event::InitDone => watcher::Event::InitDone,
                    watcher::Event::InitApply(k) => {
                        watcher::Event::InitApply((key(&k), summarize(k)))
                    }
                    watcher::Event::Apply(k) => watcher::Event::Apply((key(&k), summarize(k))),
                    watcher::Event::Delete(k) => watcher::Event::Delete((key(&k), summarize(k))),
                };
                reflection.apply(mapped);
            }
            Some(Err(err)) => tracing::debug!(cache = %what, %err, "watch error; retrying"),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> (String, String) {
        ("ns".to_string(), name.to_string())
    }

    #[test]
    fn relists_replace_and_events_update() {
        let r: Reflection<u32> = Reflection::default();
        assert!(!r.is_ready());
        r.apply(watcher::Event::Init);
        r.apply(watcher::Event::InitApply((k("a"), 1)));
        r.apply(watcher::Event::InitApply((k("b"), 2)));
        assert!(r.is_empty(), "nothing visible before InitDone");
        r.apply(watcher::Event::InitDone);
        assert!(r.is_ready());
        assert_eq!(r.len(), 2);
        r.apply(watcher::Event::Apply((k("c"), 3)));
        r.apply(watcher::Event::Delete((k("a"), 1)));
        let values: Vec<u32> = r.select(|_| true).iter().map(|v| **v).collect();
        assert_eq!(values, [2, 3]);
        // A relist replaces everything at InitDone.
        r.apply(watcher::Event::Init);
        r.apply(watcher::Event::InitApply((k("z"), 9)));
        assert_eq!(r.len(), 2, "old contents served until the relist completes");
        r.apply(watcher::Event::InitDone);
        let values: Vec<u32> = r.select(|_| true).iter().map(|v| **v).collect();
        assert_eq!(values, [9]);
    }
}
