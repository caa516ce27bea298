//! One upstream watch of Events per (cluster, namespace), shared by every watcher of it. The
//! hub keeps the current events (for newest-first snapshots) and a ring of recent changes (for
//! resuming without duplicates); each watcher reads a broadcast channel with a bounded buffer,
//! so a slow one only loses its own events (and is told how many). The upstream watch stops
//! when the last watcher leaves.
//!
//! Every change also carries the Kubernetes resourceVersion from which a watch resumes right
//! after it, so a stream can continue on a hub that never saw it (another replica, or a hub
//! restarted since): [`EventHub::start_at`] watches from that point instead of listing.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
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

/// One change, numbered within its hub.
#[derive(Debug, Clone)]
pub struct Change {
    pub seq: u64,
    pub kind: ChangeKind,
    pub event: EventSummary,
    /// A resourceVersion a Kubernetes watch resumes from without missing anything after this
    /// change (it may repeat some); empty when unknown.
    pub resume_version: String,
}

struct State {
    events: HashMap<String, EventSummary>,
    ring: VecDeque<Arc<Change>>,
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
}

/// What a new watcher gets: the snapshot (or the missed changes), then live changes.
pub struct Subscription {
    pub snapshot: Vec<EventSummary>,
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
    /// Starts the upstream watch: a list, then a watch from it.
    pub fn start(client: Client, namespace: &str) -> Arc<EventHub> {
        Self::launch(client, namespace, None)
    }

    /// Starts a hub that watches from `resource_version` without listing: it publishes only
    /// what changed after that point (everything, as a fresh list, if the point has expired).
    /// For one stream resumed on a replica or hub that did not serve it before.
    pub fn start_at(client: Client, namespace: &str, resource_version: &str) -> Arc<EventHub> {
        Self::launch(client, namespace, Some(resource_version.to_string()))
    }

    fn launch(client: Client, namespace: &str, from: Option<String>) -> Arc<EventHub> {
        let (sender, _) = broadcast::channel(WATCHER_BUFFER);
        let (ready, _) = watch::channel(None);
        let hub = Arc::new(EventHub {
            epoch: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            state: Mutex::new(State {
                events: HashMap::new(),
                ring: VecDeque::new(),
                seq: 0,
                resume_version: from.clone().unwrap_or_default(),
            }),
            sender,
            ready,
            watchers: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        });
        let api: Api<Event> = if namespace.is_empty() {
            Api::all(client)
        } else {
            Api::namespaced(client, namespace)
        };
        tokio::spawn(run(hub.clone(), api, from));
        hub
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
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
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
        });
        state.ring.push_back(change.clone());
        if state.ring.len() > RING {
            state.ring.pop_front();
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
            hub.publish(ChangeKind::Deleted, event.clone(), None);
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
