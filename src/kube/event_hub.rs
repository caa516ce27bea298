//! One upstream watch of Events per (cluster, namespace), shared by every watcher of it. The
//! hub keeps the current events (for newest-first snapshots) and a ring of recent changes (for
//! resuming without duplicates); each watcher reads a broadcast channel with a bounded buffer,
//! so a slow one only loses its own events (and is told how many). The upstream watch stops
//! when the last watcher leaves.
//!
//! Every change also carries the Kubernetes resourceVersion from which a watch resumes right
//! after it, so a stream can continue on a hub that never saw it (another replica, or a hub
//! restarted since): [`EventHub::start_alone`] watches from that point instead of listing.
//!
//! A hub started for one stream ([`EventHub::start_alone`]: on a replica that does not own the
//! cluster, or to resume from a point) keeps no ring once that stream has joined: no other
//! stream can find it to resume from it, and a replica may run hundreds of them.
//!
//! A change goes to every watcher as one `Arc`: its event is never copied per watcher, and
//! the stream token derived from it is made once ([`Change::stream_token`]) and shared.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use ::kube::{
    Api, Client,
    api::{ListParams, WatchEvent, WatchParams},
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{ClusterError, convert, error::classify, summary::EventSummary};

/// Changes kept for resuming.
const RING: usize = 2048;
/// Per-watcher buffer before it lags.
pub const WATCHER_BUFFER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change, numbered within its hub; shared by every watcher (one `Arc`).
#[derive(Debug)]
pub struct Change {
    pub seq: u64,
    pub kind: ChangeKind,
    pub event: Arc<EventSummary>,
    /// A resourceVersion a Kubernetes watch resumes from without missing anything after this
    /// change (it may repeat some); empty when unknown.
    pub resume_version: String,
    /// The resume token streams send with this change, made by the first stream that sends it
    /// (it depends only on the change and the hub), so 1,000 watchers format it once.
    pub stream_token: OnceLock<String>,
}

struct State {
    events: HashMap<String, Arc<EventSummary>>,
    ring: VecDeque<Arc<Change>>,
    /// How many changes the ring keeps: [`RING`], or none once a hub's only stream has joined.
    ring_limit: usize,
    seq: u64,
    /// Where a Kubernetes watch resumes from to miss nothing published so far.
    resume_version: String,
}

/// The shared watch of one (cluster, namespace).
pub struct EventHub {
    /// Random per hub instance, so resume points from an older hub are recognised as stale.
    pub epoch: String,
    state: Mutex<State>,
    sender: broadcast::Sender<Arc<Change>>,
    ready: watch::Sender<Option<Result<(), ClusterError>>>,
    watchers: AtomicUsize,
    stop: CancellationToken,
    /// Started for one stream: its ring is dropped when that stream joins.
    alone: bool,
}

/// What a new watcher gets: the snapshot (or the missed changes), then live changes.
pub struct Subscription {
    pub snapshot: Vec<Arc<EventSummary>>,
    /// Changes after the resume point, when it could be honoured.
    pub replay: Option<Vec<Arc<Change>>>,
    pub live: broadcast::Receiver<Arc<Change>>,
    pub epoch: String,
    /// The last change included in snapshot/replay; live changes at or below it are skipped.
    pub seq: u64,
    /// The resourceVersion to resume from after the snapshot/replay (see [`Change`]).
    pub resume_version: String,
    _guard: WatcherGuard,
}

struct WatcherGuard {
    hub: Arc<EventHub>,
    on_last: Arc<dyn Fn() + Send + Sync>,
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        if self.hub.watchers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.hub.stop.cancel();
            (self.on_last)();
        }
    }
}

impl EventHub {
    /// Starts the upstream watch of a hub that streams share: a list, then a watch from it.
    pub fn start(client: Client, namespace: &str) -> Arc<EventHub> {
        Self::launch(client, namespace, None, false)
    }

    /// Starts a hub for one stream. With `resource_version` it watches from that point without
    /// listing: it publishes only what changed after it (everything, as a fresh list, if the
    /// point has expired); for a stream resumed on a replica or hub that did not serve it
    /// before. It keeps its ring only until the stream joins.
    pub fn start_alone(
        client: Client,
        namespace: &str,
        resource_version: Option<&str>,
    ) -> Arc<EventHub> {
        Self::launch(
            client,
            namespace,
            resource_version.map(str::to_string),
            true,
        )
    }

    fn launch(client: Client, namespace: &str, from: Option<String>, alone: bool) -> Arc<EventHub> {
        let hub = Arc::new(Self::new(from.clone().unwrap_or_default(), alone));
        let api: Api<Event> = if namespace.is_empty() {
            Api::all(client)
        } else {
            Api::namespaced(client, namespace)
        };
        tokio::spawn(run(hub.clone(), api, from));
        hub
    }

    fn new(resume_version: String, alone: bool) -> EventHub {
        let (sender, _) = broadcast::channel(WATCHER_BUFFER);
        let (ready, _) = watch::channel(None);
        EventHub {
            epoch: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            state: Mutex::new(State {
                events: HashMap::new(),
                ring: VecDeque::new(),
                ring_limit: RING,
                seq: 0,
                resume_version,
            }),
            sender,
            ready,
            watchers: AtomicUsize::new(0),
            stop: CancellationToken::new(),
            alone,
        }
    }

    /// A list completed at `version`: everything up to it has been published.
    fn set_resume_version(&self, version: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.resume_version = version.to_string();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Acquire)
    }

    /// Joins the hub once it has listed (bounded wait). `resume` is (epoch, seq) of a previous
    /// stream. `on_last` runs when the last watcher leaves.
    pub async fn subscribe(
        self: &Arc<Self>,
        resume: Option<(String, u64)>,
        on_last: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Subscription, ClusterError> {
        self.watchers.fetch_add(1, Ordering::AcqRel);
        let guard = WatcherGuard {
            hub: self.clone(),
            on_last,
        };
        let mut ready = self.ready.subscribe();
        let outcome = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(result) = ready.borrow_and_update().clone() {
                    return result;
                }
                if ready.changed().await.is_err() {
                    return Err(ClusterError::Other("the event watch stopped".into()));
                }
            }
        })
        .await
        .map_err(|_| ClusterError::Timeout(Duration::from_secs(15)))?;
        outcome?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.sender.subscribe();
        let replay = resume.and_then(|(epoch, after)| {
            if epoch != self.epoch {
                return None;
            }
            let oldest = state.ring.front().map_or(state.seq + 1, |c| c.seq);
            (after + 1 >= oldest && after <= state.seq).then(|| {
                state
                    .ring
                    .iter()
                    .filter(|c| c.seq > after)
                    .cloned()
                    .collect()
            })
        });
        if self.alone {
            state.ring_limit = 0;
            state.ring = VecDeque::new();
        }
        Ok(Subscription {
            snapshot: if replay.is_some() {
                Vec::new()
            } else {
                state.events.values().cloned().collect()
            },
            replay,
            live,
            epoch: self.epoch.clone(),
            seq: state.seq,
            resume_version: state.resume_version.clone(),
            _guard: guard,
        })
    }

    /// Records a change and sends it to every watcher, under one lock so that snapshots and
    /// the live stream never overlap or leave a gap.
    /// `resume_version`: where a watch resumes after this change, when it moves the resume
    /// point (watch events do; the differences a relist publishes keep the previous point).
    fn publish(&self, kind: ChangeKind, event: EventSummary, resume_version: Option<&str>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(version) = resume_version.filter(|v| !v.is_empty()) {
            state.resume_version = version.to_string();
        }
        let key = if event.uid.is_empty() {
            format!("{}/{}", event.namespace, event.name)
        } else {
            event.uid.clone()
        };
        let event = Arc::new(event);
        if kind == ChangeKind::Deleted {
            state.events.remove(&key);
        } else {
            state.events.insert(key, event.clone());
        }
        state.seq += 1;
        let change = Arc::new(Change {
            seq: state.seq,
            kind,
            event,
            resume_version: state.resume_version.clone(),
            stream_token: OnceLock::new(),
        });
        if state.ring_limit > 0 {
            state.ring.push_back(change.clone());
            if state.ring.len() > state.ring_limit {
                state.ring.pop_front();
            }
        }
        let _ = self.sender.send(change);
    }
}

/// List (unless resuming `from` a resourceVersion), then watch from the list's
/// resourceVersion; on expiry (410) list again and publish only what differs. Ends when the hub
/// is stopped.
async fn run(hub: Arc<EventHub>, api: Api<Event>, from: Option<String>) {
    let listed = match from {
        Some(version) => Ok(version),
        None => relist(&hub, &api).await,
    };
    let mut resource_version = match listed {
        Ok(rv) => {
            hub.set_resume_version(&rv);
            hub.ready.send_replace(Some(Ok(())));
            rv
        }
        Err(err) => {
            hub.ready.send_replace(Some(Err(err)));
            hub.stop.cancel();
            return;
        }
    };
    while !hub.stop.is_cancelled() {
        let params = WatchParams::default().timeout(290);
        let stream = match api.watch(&params, &resource_version).await {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(error = %classify(err), "event watch failed; retrying");
                tokio::select! {
                    () = hub.stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        futures::pin_mut!(stream);
        loop {
            let next = tokio::select! {
                () = hub.stop.cancelled() => return,
                next = stream.next() => next,
            };
            let Some(item) = next else { break };
            match item {
                Ok(WatchEvent::Added(e)) => {
                    resource_version = rv(&e, &resource_version);
                    hub.publish(
                        ChangeKind::Added,
                        convert::event(&e),
                        Some(&resource_version),
                    );
                }
                Ok(WatchEvent::Modified(e)) => {
                    resource_version = rv(&e, &resource_version);
                    hub.publish(
                        ChangeKind::Modified,
                        convert::event(&e),
                        Some(&resource_version),
                    );
                }
                Ok(WatchEvent::Deleted(e)) => {
                    resource_version = rv(&e, &resource_version);
                    hub.publish(
                        ChangeKind::Deleted,
                        convert::event(&e),
                        Some(&resource_version),
                    );
                }
                Ok(WatchEvent::Bookmark(b)) => resource_version = b.metadata.resource_version,
                Ok(WatchEvent::Error(status)) if status.code == 410 => {
                    match relist(&hub, &api).await {
                        Ok(fresh) => {
                            hub.set_resume_version(&fresh);
                            resource_version = fresh;
                        }
                        Err(err) => tracing::debug!(error = %err, "event relist failed"),
                    }
                    break;
                }
                Ok(WatchEvent::Error(status)) => {
                    tracing::debug!(message = %status.message, "event watch error");
                    break;
                }
                Err(err) => {
                    tracing::debug!(error = %classify(err), "event watch broke");
                    break;
                }
            }
        }
    }
}

fn rv(e: &Event, current: &str) -> String {
    e.metadata
        .resource_version
        .clone()
        .unwrap_or_else(|| current.to_string())
}

/// Lists every event; publishes the differences from what the hub knew. Returns the list's
/// resourceVersion.
async fn relist(hub: &EventHub, api: &Api<Event>) -> Result<String, ClusterError> {
    let mut current: HashMap<String, EventSummary> = HashMap::new();
    let mut params = ListParams::default().limit(500);
    let resource_version = loop {
        let page = api.list(&params).await.map_err(classify)?;
        for e in &page.items {
            let summary = convert::event(e);
            current.insert(summary.uid.clone(), summary);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => params = params.continue_token(&next),
            None => break page.metadata.resource_version.unwrap_or_default(),
        }
    };
    let known = {
        let state = hub.state.lock().unwrap_or_else(|p| p.into_inner());
        state.events.clone()
    };
    for (uid, event) in &known {
        if !current.contains_key(uid) {
            hub.publish(ChangeKind::Deleted, EventSummary::clone(event), None);
        }
    }
    for (uid, event) in current {
        match known.get(&uid) {
            None => hub.publish(ChangeKind::Added, event, None),
            Some(old) if old.resource_version != event.resource_version => {
                hub.publish(ChangeKind::Modified, event, None)
            }
            Some(_) => {}
        }
    }
    Ok(resource_version)
}

/// Every hub, by (cluster, namespace).
#[derive(Default)]
pub struct EventHubs {
    hubs: Mutex<HashMap<(String, String), Arc<EventHub>>>,
}

impl EventHubs {
    /// The running hub for (cluster, namespace), started if needed.
    pub fn hub(&self, cluster_id: &str, namespace: &str, client: &Client) -> Arc<EventHub> {
        let mut hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        let key = (cluster_id.to_string(), namespace.to_string());
        if let Some(hub) = hubs.get(&key).filter(|h| !h.is_stopped()) {
            return hub.clone();
        }
        let hub = EventHub::start(client.clone(), namespace);
        hubs.insert(key, hub.clone());
        hub
    }

    /// The hub for (cluster, namespace) if one is running; none is started.
    pub fn find(&self, cluster_id: &str, namespace: &str) -> Option<Arc<EventHub>> {
        let hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        let key = (cluster_id.to_string(), namespace.to_string());
        hubs.get(&key).filter(|h| !h.is_stopped()).cloned()
    }

    /// Forgets a hub that has stopped (its last watcher left).
    pub fn remove_stopped(&self, cluster_id: &str, namespace: &str) {
        let mut hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        let key = (cluster_id.to_string(), namespace.to_string());
        if hubs.get(&key).is_some_and(|h| h.is_stopped()) {
            hubs.remove(&key);
        }
    }

    /// Running upstream watches.
    pub fn running(&self) -> usize {
        let hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.values().filter(|h| !h.is_stopped()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> EventSummary {
        EventSummary {
            namespace: "ns".into(),
            name: name.into(),
            uid: name.into(),
            ..EventSummary::default()
        }
    }

    /// A hub as its upstream watch leaves it after listing `before`.
    fn listed(alone: bool, before: &[&str]) -> Arc<EventHub> {
        let hub = Arc::new(EventHub::new("1".into(), alone));
        for name in before {
            hub.publish(ChangeKind::Added, event(name), Some("2"));
        }
        hub.ready.send_replace(Some(Ok(())));
        hub
    }

    fn kept(hub: &EventHub) -> usize {
        hub.state.lock().expect("state").ring.len()
    }

    #[tokio::test]
    async fn a_hub_for_one_stream_replays_to_it_then_keeps_no_ring() {
        let hub = listed(true, &["a", "b"]);
        let subscription = hub
            .subscribe(Some((hub.epoch.clone(), 0)), Arc::new(|| {}))
            .await
            .expect("subscribe");
        let replayed: Vec<String> = subscription
            .replay
            .as_ref()
            .expect("a replay from the hub's start")
            .iter()
            .map(|c| c.event.name.clone())
            .collect();
        assert_eq!(replayed, ["a", "b"]);
        assert_eq!(kept(&hub), 0, "the ring is dropped once its stream joined");
        let mut live = subscription.live.resubscribe();
        for name in ["c", "d", "e"] {
            hub.publish(ChangeKind::Added, event(name), Some("3"));
        }
        assert_eq!(kept(&hub), 0, "changes after the join are not kept");
        assert_eq!(live.recv().await.expect("live").event.name, "c");
    }

    #[tokio::test]
    async fn a_shared_hub_keeps_its_ring_for_resumes() {
        let hub = listed(false, &["a", "b"]);
        let first = hub.subscribe(None, Arc::new(|| {})).await.expect("join");
        assert_eq!(first.snapshot.len(), 2);
        hub.publish(ChangeKind::Added, event("c"), Some("3"));
        assert_eq!(kept(&hub), 3);
        let resumed = hub
            .subscribe(Some((hub.epoch.clone(), 2)), Arc::new(|| {}))
            .await
            .expect("resume");
        let replayed: Vec<String> = resumed
            .replay
            .expect("resumed from the ring")
            .iter()
            .map(|c| c.event.name.clone())
            .collect();
        assert_eq!(replayed, ["c"]);
    }
}
