//! Watch caches for the hot lists: the pods and nodes of clusters that are being queried, and
//! their events once events are listed, kept by kube-runtime watchers as summaries, not whole
//! objects. Pods are decoded only as far as a summary needs ([`PodView`]) and kept as the API
//! answers them ([`CachedPod`]). A cache starts on a cluster's first query, serves lists once
//! synced, and stops after it has been idle.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Bound,
    sync::{
        Arc, Mutex, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use ::kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Node};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    cached_pod::{CachedPod, PodInterner, PodWire},
    convert,
    pod_view::PodView,
    summary::{EventSummary, NodeSummary},
};

/// (namespace, name); empty namespace for cluster-scoped kinds.
pub type Key = (Arc<str>, Arc<str>);

/// Objects by key, in order so pages are stable.
type Objects<T> = BTreeMap<Key, Arc<T>>;

/// The objects of a (re)list so far, in the order they came.
type Listed<T> = Vec<(Key, Arc<T>)>;

/// A watch event, as a reflection applies it.
#[derive(Debug)]
pub enum Change<T> {
    /// A (re)list begins.
    Init,
    /// An object of the (re)list.
    InitApply(Key, T),
    /// The (re)list is complete and replaces what was there.
    InitDone,
    Apply(Key, T),
    Delete(Key),
}

/// A reflection of one kind in one cluster.
pub struct Reflection<T> {
    items: RwLock<Objects<T>>,
    /// Filled during a (re)list; replaces `items` when the list is complete. A list rather than
    /// a map: a map built in one go at the end packs its nodes full.
    staging: Mutex<Option<Listed<T>>>,
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
    pub fn apply(&self, change: Change<T>) {
        match change {
            Change::Init => {
                *self.staging.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
            }
            Change::InitApply(key, item) => {
                if let Some(staging) = self
                    .staging
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    staging.push((key, Arc::new(item)));
                }
            }
            Change::InitDone => {
                if let Some(fresh) = self
                    .staging
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                {
                    // A key listed twice keeps its last object, as inserting would.
                    let fresh: Objects<T> = fresh.into_iter().collect();
                    *self.items.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                }
                self.ready.store(true, Ordering::Release);
            }
            Change::Apply(key, item) => {
                self.items
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, Arc::new(item));
            }
            Change::Delete(key) => {
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

    /// Up to `limit` items matching `keep`, in (namespace, name) order, of `namespace` only
    /// when given, starting after the key `after`; and whether more may follow. A walk that
    /// resumes after the last key it saw neither skips nor repeats an object that stayed in the
    /// cache throughout, however the cache changed between pages; a page costs the entries it
    /// walks past, not the whole cache.
    pub fn page(
        &self,
        namespace: Option<&str>,
        after: Option<&Key>,
        limit: usize,
        mut keep: impl FnMut(&T) -> bool,
    ) -> (Vec<Arc<T>>, bool) {
        let items = self.items.read().unwrap_or_else(|p| p.into_inner());
        let start = match (after, namespace) {
            (Some(after), _) => Bound::Excluded(after.clone()),
            (None, Some(ns)) => Bound::Included((Arc::from(ns), Arc::from(""))),
            (None, None) => Bound::Unbounded,
        };
        let mut page = Vec::with_capacity(limit.min(1024));
        for ((ns, _), item) in items.range((start, Bound::Unbounded)) {
            if namespace.is_some_and(|wanted| **ns != *wanted) {
                if namespace.is_some_and(|wanted| **ns > *wanted) {
                    break;
                }
                continue;
            }
            if !keep(item) {
                continue;
            }
            if page.len() == limit {
                return (page, true);
            }
            page.push(item.clone());
        }
        (page, false)
    }

    /// The first `n` items of `namespace` (all when `None`) that match `keep`, in `order`, and
    /// how many match in all. Costs the matching items once, plus sorting the `n`; only those
    /// `n` are copied (a first page of 20 neither sorts nor copies 50,000 events).
    pub fn first_by(
        &self,
        namespace: Option<&str>,
        mut keep: impl FnMut(&T) -> bool,
        n: usize,
        order: impl Fn(&T, &T) -> std::cmp::Ordering,
    ) -> (Vec<Arc<T>>, usize) {
        let items = self.items.read().unwrap_or_else(|p| p.into_inner());
        let mut matched: Vec<&Arc<T>> = of_namespace(&items, namespace)
            .filter(|item| keep(item))
            .collect();
        let total = matched.len();
        let n = n.min(total);
        if n > 0 && n < total {
            matched.select_nth_unstable_by(n - 1, |a, b| order(a, b));
        }
        matched.truncate(n);
        matched.sort_by(|a, b| order(a, b));
        (matched.into_iter().cloned().collect(), total)
    }

    /// How many items of `namespace` (all when `None`) match `keep`; nothing is copied.
    pub fn count(&self, namespace: Option<&str>, mut keep: impl FnMut(&T) -> bool) -> usize {
        let items = self.items.read().unwrap_or_else(|p| p.into_inner());
        of_namespace(&items, namespace)
            .filter(|item| keep(item))
            .count()
    }

    /// The items matching `keep`, in (namespace, name) order.
    pub fn select(&self, mut keep: impl FnMut(&T) -> bool) -> Vec<Arc<T>> {
        let items = self.items.read().unwrap_or_else(|p| p.into_inner());
        items.values().filter(|i| keep(i)).cloned().collect()
    }

    /// Visits every item under the read lock, copying nothing.
    pub fn for_each(&self, mut visit: impl FnMut(&T)) {
        let items = self.items.read().unwrap_or_else(|p| p.into_inner());
        items.values().for_each(|item| visit(item));
    }

    pub fn len(&self) -> usize {
        self.items.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The objects of `namespace` (all when `None`), in key order, walking only that namespace.
fn of_namespace<'a, T>(
    items: &'a Objects<T>,
    namespace: Option<&'a str>,
) -> impl Iterator<Item = &'a Arc<T>> + 'a {
    let start = match namespace {
        Some(ns) => Bound::Included((Arc::from(ns), Arc::from(""))),
        None => Bound::Unbounded,
    };
    items
        .range((start, Bound::Unbounded))
        .take_while(move |((n, _), _)| namespace.is_none_or(|ns| **n == *ns))
        .map(|(_, item)| item)
}

/// The caches of one cluster.
pub struct ClusterWatch {
    pub pods: Arc<Reflection<CachedPod>>,
    pub nodes: Arc<Reflection<NodeSummary>>,
    /// Started by the first [`ClusterWatch::events`]: a cluster browsed for its pods is not
    /// always asked for its events.
    events: OnceLock<Arc<Reflection<EventSummary>>>,
    client: Client,
    cluster_id: String,
    direct: Arc<DirectLists>,
    version: i64,
    last_used: AtomicI64,
    stop: CancellationToken,
}

/// How long the pod cache's first list waits for direct lists of its cluster to pause.
const QUIET: Duration = Duration::from_millis(250);
/// The longest the pod cache's first list waits for that pause.
const MOST_DEFERRED: Duration = Duration::from_secs(10);

/// The pod lists of a cluster served straight from Kubernetes while its cache syncs. The
/// cache's first list (every pod, decoded and summarized) is the heaviest work it does; run
/// beside a walk that is being served directly, it made that walk 1.6 times slower than a
/// direct list. So it starts once direct lists have paused for [`QUIET`] (or after
/// [`MOST_DEFERRED`], so a steady stream of them cannot keep the cache from syncing).
struct DirectLists {
    in_flight: AtomicUsize,
    /// When the last direct list ended, or the cache was started (its first query is direct).
    last_end: Mutex<Instant>,
}

impl DirectLists {
    fn begin(self: &Arc<Self>) -> DirectList {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        DirectList(self.clone())
    }

    fn new() -> Self {
        DirectLists {
            in_flight: AtomicUsize::new(0),
            last_end: Mutex::new(Instant::now()),
        }
    }

    fn quiet(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self
                .last_end
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                >= QUIET
    }

    /// Waits until direct lists pause, at most [`MOST_DEFERRED`]; false when stopped.
    async fn pause(&self, stop: &CancellationToken) -> bool {
        let started = Instant::now();
        while !self.quiet() && started.elapsed() < MOST_DEFERRED {
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(QUIET / 5) => {}
            }
        }
        !stop.is_cancelled()
    }
}

/// A pod list being served straight from Kubernetes (see [`DirectLists`]); ends when dropped.
pub struct DirectList(Arc<DirectLists>);

impl Drop for DirectList {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ClusterWatch {
    /// The cluster's events, every namespace, starting their watch on the first call; check
    /// `is_ready` before serving from them.
    pub fn events(&self) -> Arc<Reflection<EventSummary>> {
        self.events
            .get_or_init(|| {
                let events = Arc::new(Reflection::default());
                tokio::spawn(reflect(
                    Api::<Event>::all(self.client.clone()),
                    events.clone(),
                    self.stop.clone(),
                    |event: Event| {
                        let event = convert::event(&event);
                        let key = (
                            Arc::from(event.namespace.as_str()),
                            Arc::from(event.name.as_str()),
                        );
                        (key, event)
                    },
                    format!("{}/events", self.cluster_id),
                ));
                events
            })
            .clone()
    }

    /// Marks a pod list served straight from Kubernetes until the guard is dropped, so the pod
    /// cache's first list does not compete with it.
    pub fn direct_list(&self) -> DirectList {
        self.direct.begin()
    }

    /// These nodes with their running-pod counts taken from the pod cache.
    pub fn with_pod_counts(&self, nodes: Vec<Arc<NodeSummary>>) -> Vec<NodeSummary> {
        let mut counts: HashMap<&str, i32> = nodes.iter().map(|n| (n.name.as_str(), 0)).collect();
        // Counting reads every cached pod, but copies none.
        self.pods.for_each(|p| {
            if &*p.phase != "Succeeded"
                && &*p.phase != "Failed"
                && let Some(count) = counts.get_mut(&*p.node_name)
            {
                *count += 1;
            }
        });
        let counts: HashMap<String, i32> = counts
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        nodes
            .iter()
            .map(|n| {
                let mut node = (**n).clone();
                node.pod_count = counts.get(node.name.as_str()).copied().unwrap_or(0);
                node
            })
            .collect()
    }
}

/// `n` cached objects of type `T`: the index entry, the `Arc`'s counts and the object itself.
fn approx_bytes<T>(n: usize) -> usize {
    n * (std::mem::size_of::<(Key, Arc<T>)>()
        + 2 * std::mem::size_of::<usize>()
        + std::mem::size_of::<T>())
}

/// What one cluster's caches hold (for metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheCensus {
    pub cluster_id: String,
    pub pods: usize,
    pub nodes: usize,
    /// Events cached; 0 until events of the cluster are listed.
    pub events: usize,
    pub pod_bytes: usize,
    pub node_bytes: usize,
    pub event_bytes: usize,
}

/// Every cluster's watch caches.
pub struct WatchCaches {
    clusters: Mutex<HashMap<String, Arc<ClusterWatch>>>,
    idle: Duration,
    pod_wire: PodWire,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl WatchCaches {
    /// Caches unused for `idle` are stopped by [`WatchCaches::run_janitor`]. Cached pods are
    /// kept as `pod_wire` encodes them.
    pub fn new(idle: Duration, pod_wire: PodWire) -> Self {
        WatchCaches {
            clusters: Mutex::default(),
            idle,
            pod_wire,
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
            events: OnceLock::new(),
            client: client.clone(),
            cluster_id: cluster_id.to_string(),
            direct: Arc::new(DirectLists::new()),
            version,
            last_used: AtomicI64::new(now_secs()),
            stop: CancellationToken::new(),
        });
        // Only this cache's watcher task makes pods, so it owns their interner.
        let mut shared = PodInterner::default();
        let (pods, direct, stop) = (watch.pods.clone(), watch.direct.clone(), watch.stop.clone());
        let pod_wire = self.pod_wire;
        let api = Api::<PodView>::all(client.clone());
        let what = format!("{cluster_id}/pods");
        tokio::spawn(async move {
            if !direct.pause(&stop).await {
                return;
            }
            let summarized = move |pod: PodView| {
                let summary = super::pod_view::summary(&pod);
                let pod = CachedPod::new(summary, &mut shared, pod_wire);
                ((pod.namespace.clone(), pod.name.clone()), pod)
            };
            reflect(api, pods, stop, summarized, what).await;
        });
        tokio::spawn(reflect(
            Api::<Node>::all(client.clone()),
            watch.nodes.clone(),
            watch.stop.clone(),
            |node: Node| {
                let node = convert::node(&node, 0);
                ((Arc::from(""), Arc::from(node.name.as_str())), node)
            },
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

    /// Per cluster: pods, nodes and events cached, and the approximate bytes they take (each
    /// cached object's fixed size, and for pods their encoding and name; what is shared between
    /// objects, and the strings of nodes and events, are not counted).
    pub fn census(&self) -> Vec<CacheCensus> {
        let clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        clusters
            .iter()
            .map(|(id, w)| CacheCensus {
                cluster_id: id.clone(),
                pods: w.pods.len(),
                nodes: w.nodes.len(),
                pod_bytes: approx_bytes::<CachedPod>(w.pods.len()) + {
                    let mut own = 0;
                    w.pods.for_each(|p| own += p.own_bytes());
                    own
                },
                node_bytes: approx_bytes::<NodeSummary>(w.nodes.len()),
                events: w.events.get().map_or(0, |e| e.len()),
                event_bytes: approx_bytes::<EventSummary>(w.events.get().map_or(0, |e| e.len())),
            })
            .collect()
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
/// watcher; the cache stays as it was meanwhile. The watcher holds at most one list page of
/// objects; each is turned into its cached form (and dropped) as it arrives.
async fn reflect<K, T>(
    api: Api<K>,
    reflection: Arc<Reflection<T>>,
    stop: CancellationToken,
    mut cached: impl FnMut(K) -> (Key, T) + Send + 'static,
    what: String,
) where
    K: ::kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
    T: Send + Sync + 'static,
{
    let key = |k: &K| -> Key {
        let meta = k.meta();
        (
            Arc::from(meta.namespace.as_deref().unwrap_or_default()),
            Arc::from(meta.name.as_deref().unwrap_or_default()),
        )
    };
    // Small list pages keep the transient memory of a (re)list low.
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
                let change = match event {
                    watcher::Event::Init => Change::Init,
                    watcher::Event::InitDone => Change::InitDone,
                    watcher::Event::InitApply(k) => {
                        let (key, item) = cached(k);
                        Change::InitApply(key, item)
                    }
                    watcher::Event::Apply(k) => {
                        let (key, item) = cached(k);
                        Change::Apply(key, item)
                    }
                    watcher::Event::Delete(k) => Change::Delete(key(&k)),
                };
                let synced = matches!(change, Change::InitDone);
                reflection.apply(change);
                if synced {
                    tokio::task::spawn_blocking(return_freed_memory);
                }
            }
            Some(Err(err)) => tracing::debug!(cache = %what, %err, "watch error; retrying"),
            None => return,
        }
    }
}

/// How the process gives freed memory back to the system, set once by the binary (which may
/// call the allocator; this library has no unsafe code). Called after each (re)list: every list
/// page is decoded whole and dropped once summarized, and glibc keeps what was freed in the arena
/// of the thread that freed it, where a cache filled by one task and read by others rarely
/// reuses it (`bench/list_pods`, issue #20). Once per sync, so it costs nothing per event.
static RETURN_FREED_MEMORY: OnceLock<fn()> = OnceLock::new();

/// Sets what [`RETURN_FREED_MEMORY`] calls; the first call wins.
pub fn set_return_freed_memory(release: fn()) {
    let _ = RETURN_FREED_MEMORY.set(release);
}

fn return_freed_memory() {
    if let Some(release) = RETURN_FREED_MEMORY.get() {
        release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> Key {
        (Arc::from("ns"), Arc::from(name))
    }

    fn key(ns: &str, name: &str) -> Key {
        (Arc::from(ns), Arc::from(name))
    }

    #[test]
    fn pages_resume_after_the_last_key_while_the_cache_changes() {
        let r: Reflection<String> = Reflection::default();
        r.apply(Change::Init);
        for (ns, name) in [("a", "1"), ("b", "1"), ("b", "3"), ("b", "5"), ("c", "1")] {
            r.apply(Change::InitApply(key(ns, name), format!("{ns}/{name}")));
        }
        r.apply(Change::InitDone);
        let names = |page: &[Arc<String>]| page.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (first, more) = r.page(Some("b"), None, 2, |_| true);
        assert_eq!(
            (names(&first), more),
            (vec!["b/1".into(), "b/3".into()], true)
        );
        // Between pages: an earlier object goes, one is inserted before and one after the cut.
        r.apply(Change::Delete(key("b", "1")));
        r.apply(Change::Apply(key("b", "2"), "b/2".into()));
        r.apply(Change::Apply(key("b", "4"), "b/4".into()));
        let (second, more) = r.page(Some("b"), Some(&key("b", "3")), 2, |_| true);
        assert_eq!(
            (names(&second), more),
            (vec!["b/4".into(), "b/5".into()], false)
        );
        // Across namespaces, with a filter.
        let (all, more) = r.page(None, Some(&key("a", "1")), 10, |s| s.ends_with('1'));
        assert_eq!((names(&all), more), (vec!["c/1".into()], false));
        assert_eq!(r.count(Some("b"), |_| true), 4);
        assert_eq!(r.count(None, |s| s.ends_with('1')), 2);
        assert_eq!(r.count(Some("zz"), |_| true), 0);
    }

    #[test]
    fn the_first_by_an_order_are_those_of_a_full_sort() {
        let r: Reflection<(u32, u32)> = Reflection::default();
        r.apply(Change::Init);
        for i in 0..50u32 {
            let ns = if i % 5 == 0 { "other" } else { "ns" };
            r.apply(Change::InitApply(
                key(ns, &format!("{i:02}")),
                ((i * 7) % 13, i),
            ));
        }
        r.apply(Change::InitDone);
        // Largest first value first, then largest second value.
        let order = |a: &(u32, u32), b: &(u32, u32)| b.cmp(a);
        let mut all: Vec<(u32, u32)> = r.select(|(_, i)| i % 5 != 0).iter().map(|v| **v).collect();
        all.sort_by(order);
        assert_eq!(all.len(), 40);
        for n in [0, 1, 7, 39, 40, 41, 100] {
            let (first, total) = r.first_by(Some("ns"), |_| true, n, order);
            let first: Vec<(u32, u32)> = first.iter().map(|v| **v).collect();
            assert_eq!(
                (first.as_slice(), total),
                (&all[..n.min(40)], 40),
                "n = {n}"
            );
        }
        let (odd, total) = r.first_by(None, |(_, i)| i % 2 == 1, 3, order);
        assert_eq!(total, 25);
        assert_eq!(
            odd.iter().map(|v| **v).collect::<Vec<_>>(),
            [(12, 37), (12, 11), (11, 35)]
        );
    }

    /// Polls `task` once the clock has moved on by `by`.
    async fn after<T>(by: Duration, task: &tokio::task::JoinHandle<T>) -> bool {
        tokio::time::sleep(by).await;
        tokio::task::yield_now().await;
        task.is_finished()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_list_waits_for_direct_lists_to_pause() {
        let direct = Arc::new(DirectLists::new());
        let stop = CancellationToken::new();
        let walk = direct.begin();
        let waiting = tokio::spawn({
            let (direct, stop) = (direct.clone(), stop.clone());
            async move { direct.pause(&stop).await }
        });
        assert!(
            !after(Duration::from_secs(5), &waiting).await,
            "a walk is in flight"
        );
        drop(walk);
        assert!(
            !after(QUIET / 2, &waiting).await,
            "not yet quiet for long enough"
        );
        // Another page of the walk starts and ends: the quiet period starts again.
        drop(direct.begin());
        assert!(
            !after(QUIET * 3 / 4, &waiting).await,
            "the page ended just now"
        );
        assert!(after(QUIET, &waiting).await, "quiet: the cache may list");
        assert!(waiting.await.expect("join"));

        // Direct lists that never pause hold the cache back for a bounded time only.
        let busy = direct.begin();
        let waiting = tokio::spawn({
            let (direct, stop) = (direct.clone(), stop.clone());
            async move { direct.pause(&stop).await }
        });
        assert!(!after(MOST_DEFERRED / 2, &waiting).await);
        assert!(
            after(MOST_DEFERRED, &waiting).await,
            "waited at most MOST_DEFERRED"
        );
        assert!(waiting.await.expect("join"));

        // A cache stopped while it waits does not list at all.
        let waiting = tokio::spawn({
            let (direct, stop) = (direct.clone(), stop.clone());
            async move { direct.pause(&stop).await }
        });
        stop.cancel();
        assert!(!waiting.await.expect("join"), "stopped: no list");
        drop(busy);
    }

    #[test]
    fn relists_replace_and_events_update() {
        let r: Reflection<u32> = Reflection::default();
        assert!(!r.is_ready());
        r.apply(Change::Init);
        r.apply(Change::InitApply(k("a"), 1));
        r.apply(Change::InitApply(k("b"), 2));
        assert!(r.is_empty(), "nothing visible before InitDone");
        r.apply(Change::InitDone);
        assert!(r.is_ready());
        assert_eq!(r.len(), 2);
        r.apply(Change::Apply(k("c"), 3));
        r.apply(Change::Delete(k("a")));
        let values: Vec<u32> = r.select(|_| true).iter().map(|v| **v).collect();
        assert_eq!(values, [2, 3]);
        // A relist replaces everything at InitDone.
        r.apply(Change::Init);
        r.apply(Change::InitApply(k("z"), 8));
        r.apply(Change::InitApply(k("z"), 9));
        assert_eq!(r.len(), 2, "old contents served until the relist completes");
        r.apply(Change::InitDone);
        let values: Vec<u32> = r.select(|_| true).iter().map(|v| **v).collect();
        assert_eq!(values, [9]);
    }
}
