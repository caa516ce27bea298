//! Nodes, workloads, pods and events, read straight from each cluster's Kubernetes API.

pub mod logs;
pub mod resources;
pub mod source;

pub use source::PodSelection;
pub mod workload_logs;

use std::sync::Arc;

pub use crate::kube::cached_pod::CachedPod;
pub use crate::kube::drain::{DrainEvent, DrainOptions, DrainOutcome};
pub use crate::kube::summary::{
    Condition, ContainerState, ContainerSummary, EventSummary, NodeSummary, ObjectRef, PodSummary,
    Taint, WorkloadKind, WorkloadSummary,
};
use crate::kube::{
    watch_cache::{ClusterWatch, WatchCaches},
    workloads as kw,
};
use crate::service::{
    Error, Result,
    access::policy,
    access::{ClusterAccessor, Scope, failed},
    key_page::KeyPage,
    paging::{KubePage, Page},
    workloads::resources::Propagation,
};

/// One step of a drain as the caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum DrainProgress {
    /// What happened to one pod (always a [`DrainEvent::Pod`]).
    Pod(DrainEvent),
    /// The end: counts, and the node as it is now (`None` if it could not be read).
    Summary {
        node: Option<Box<NodeSummary>>,
        evicted: i32,
        skipped: i32,
        blocked: i32,
        failed: i32,
        complete: bool,
    },
}

/// Most events one ListEvents call sorts (events are sorted newest first, which Kubernetes
/// cannot do, so they are read whole up to this cap).
pub const EVENTS_CAP: usize = 5000;

#[derive(Debug, Clone, Default)]
pub struct ListNodes {
    pub cluster_id: String,
    pub page_size: i32,
    pub page_token: String,
    pub label_selector: String,
    pub ready: Option<bool>,
    pub zone: String,
}

/// A pod of a list: from the watch cache, already encoded as the API answers it
/// ([`CachedPod::wire`]), or listed from Kubernetes just now.
pub enum ListedPod {
    Cached(Arc<CachedPod>),
    Listed(Box<PodSummary>),
}

pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
    /// Known only when the server reports what remains.
    pub total_size: i32,
}

/// Names a workload.
#[derive(Debug, Clone)]
pub struct WorkloadRef {
    pub cluster_id: String,
    pub namespace: String,
    pub kind: Option<WorkloadKind>,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListWorkloads {
    pub cluster_id: String,
    pub namespace: String,
    /// `None`: every controller kind.
    pub kind: Option<WorkloadKind>,
    pub label_selector: String,
    pub page_size: i32,
    pub page_token: String,
}

#[derive(Debug, Clone)]
pub struct ListPods {
    pub cluster_id: String,
    pub namespace: String,
    pub selection: PodSelection,
    pub field_selector: String,
    pub page_size: i32,
    pub page_token: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListEvents {
    pub cluster_id: String,
    pub namespace: String,
    /// Only events about this object (kind, name).
    pub object_kind: String,
    pub object_name: String,
    pub type_: String,
    pub page_size: i32,
    pub page_token: String,
}

pub struct WorkloadQueries {
    clusters: Arc<ClusterAccessor>,
    caches: Arc<WatchCaches>,
    /// When set, a cluster's watch cache runs only on the replica that owns the cluster; the
    /// others list straight from Kubernetes.
    owns: Option<crate::service::clusters::ownership::OwnsCluster>,
}

fn required(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        Err(Error::invalid(field, "is required"))
    } else {
        Ok(())
    }
}

fn kind_required(kind: Option<WorkloadKind>) -> Result<WorkloadKind> {
    kind.ok_or_else(|| Error::invalid("kind", "is required (DEPLOYMENT, STATEFUL_SET, ...)"))
}

fn total(listed_len: usize, offset_known: bool, remaining: Option<i64>) -> i32 {
    match (offset_known, remaining) {
        (true, Some(rest)) => i32::try_from(listed_len as i64 + rest).unwrap_or(i32::MAX),
        (true, None) => i32::try_from(listed_len).unwrap_or(i32::MAX),
        _ => 0,
    }
}

impl WorkloadQueries {
    pub fn new(clusters: Arc<ClusterAccessor>, caches: Arc<WatchCaches>) -> Self {
        WorkloadQueries {
            clusters,
            caches,
            owns: None,
        }
    }

    /// Keeps watch caches to the clusters `owns` says this replica owns.
    pub fn with_owner_check(
        mut self,
        owns: crate::service::clusters::ownership::OwnsCluster,
    ) -> Self {
        self.owns = Some(owns);
        self
    }

    /// The cluster's client and its (possibly still syncing) watch cache, started on first use.
    async fn client_and_cache(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<(crate::kube::ClusterClient, Option<Arc<ClusterWatch>>)> {
        if self.owns.as_ref().is_some_and(|owns| !owns(cluster_id)) {
            return Ok((self.clusters.client(scope, cluster_id).await?, None));
        }
        // One cache serves every caller, so it watches as Flotilla itself (never impersonating);
        // what it serves carries nothing the role rules hide (no annotations or Secret data).
        // Both clients come from one read of the cluster's row: this runs for every page.
        let (client, own, version) = self
            .clusters
            .client_and_own_client(scope, cluster_id)
            .await?;
        let watch = self.caches.watch(cluster_id, version, &own.client);
        Ok((client, Some(watch)))
    }

    pub async fn list_nodes(&self, scope: &Scope, r: ListNodes) -> Result<Listing<NodeSummary>> {
        let (client, watch) = self.client_and_cache(scope, &r.cluster_id).await?;
        let key = format!(
            "nodes|{}|{}|{:?}|{}",
            r.cluster_id, r.label_selector, r.ready, r.zone
        );
        // From the watch caches once both have synced (pod counts come from the pod cache).
        if let Some(watch) = &watch
            && let Some(selector) = source::nodes_from_cache(
                watch.nodes.is_ready(),
                watch.pods.is_ready(),
                &r.page_token,
                &r.label_selector,
            )
        {
            let page = KeyPage::parse(r.page_size, &r.page_token, &key)?;
            let keep = |n: &NodeSummary| {
                (r.zone.is_empty() || n.zone == r.zone)
                    && r.ready.is_none_or(|ready| n.ready == ready)
                    && selector.matches_with(|key| n.labels.get(key).map(String::as_str))
            };
            let (nodes, more) = watch
                .nodes
                .page(None, after(&page).as_ref(), page.size, keep);
            let total = page.is_first().then(|| watch.nodes.count(None, keep));
            let next_page_token =
                page.next_token(nodes.last().map(|n| ("", n.name.as_str())), more);
            return Ok(Listing {
                items: watch.with_pod_counts(nodes),
                next_page_token,
                total_size: total.map_or(0, |t| i32::try_from(t).unwrap_or(i32::MAX)),
            });
        }
        let page = KubePage::parse(r.page_size, &r.page_token, &key)?;
        let mut selector = r.label_selector.clone();
        if !r.zone.is_empty() {
            if !selector.is_empty() {
                selector.push(',');
            }
            selector.push_str(&format!("topology.kubernetes.io/zone={}", r.zone));
        }
        let listed = kw::list_nodes(&client.client, &selector, page.limit, &page.continue_token)
            .await
            .map_err(failed(&r.cluster_id))?;
        let first = page.continue_token.is_empty();
        let mut items = listed.items;
        let filtered = r.ready.is_some();
        if let Some(ready) = r.ready {
            items.retain(|n| n.ready == ready);
        }
        Ok(Listing {
            total_size: total(items.len(), first && !filtered, listed.remaining),
            next_page_token: page.next_token(listed.continue_token.as_deref()),
            items,
        })
    }

    pub async fn get_node(
        &self,
        scope: &Scope,
        cluster_id: &str,
        name: &str,
    ) -> Result<NodeSummary> {
        required("node_name", name)?;
        let client = self.clusters.client(scope, cluster_id).await?;
        kw::get_node(&client.client, name)
            .await
            .map_err(failed(cluster_id))
    }

    pub async fn set_unschedulable(
        &self,
        scope: &Scope,
        cluster_id: &str,
        name: &str,
        unschedulable: bool,
    ) -> Result<NodeSummary> {
        required("node_name", name)?;
        let client = self.clusters.client(scope, cluster_id).await?;
        kw::set_unschedulable(&client.client, name, unschedulable)
            .await
            .map_err(failed(cluster_id))?;
        kw::get_node(&client.client, name)
            .await
            .map_err(failed(cluster_id))
    }

    pub async fn list_workloads(
        &self,
        scope: &Scope,
        r: ListWorkloads,
    ) -> Result<Listing<WorkloadSummary>> {
        let client = self.clusters.client(scope, &r.cluster_id).await?;
        let key = format!(
            "workloads|{}|{}|{:?}|{}",
            r.cluster_id, r.namespace, r.kind, r.label_selector
        );
        let kinds: Vec<WorkloadKind> = match r.kind {
            Some(kind) => vec![kind],
            None => WorkloadKind::CONTROLLERS.to_vec(),
        };
        // The token holds which kind the listing is in and that kind's continue token.
        let page = KubePage::parse(r.page_size, &r.page_token, &key)?;
        let (mut index, mut cont) = match page.continue_token.split_once(':') {
            Some((i, c)) if !page.continue_token.is_empty() => (
                i.parse::<usize>()
                    .ok()
                    .filter(|i| *i < kinds.len())
                    .ok_or_else(|| Error::invalid("page_token", "is not valid for this query"))?,
                c.to_string(),
            ),
            _ => (0, String::new()),
        };
        let mut items = Vec::new();
        let mut next = None;
        while index < kinds.len() {
            let want = page.limit as usize - items.len();
            let listed = kw::list_workloads(
                &client.client,
                kinds[index],
                &r.namespace,
                &r.label_selector,
                want as u32,
                &cont,
            )
            .await
            .map_err(failed(&r.cluster_id))?;
            items.extend(listed.items);
            match listed.continue_token.filter(|c| !c.is_empty()) {
                Some(c) => {
                    next = Some(format!("{index}:{c}"));
                    break;
                }
                None => {
                    index += 1;
                    cont.clear();
                    if items.len() >= page.limit as usize {
                        if index < kinds.len() {
                            next = Some(format!("{index}:"));
                        }
                        break;
                    }
                }
            }
        }
        for item in &mut items {
            policy::redact_workload(scope, item);
        }
        Ok(Listing {
            next_page_token: page.next_token(next.as_deref()),
            total_size: 0,
            items,
        })
    }

    pub async fn get_workload(&self, scope: &Scope, w: WorkloadRef) -> Result<WorkloadSummary> {
        let kind = self.check(&w)?;
        let client = self.clusters.client(scope, &w.cluster_id).await?;
        let mut workload = kw::get_workload(&client.client, kind, &w.namespace, &w.name)
            .await
            .map_err(failed(&w.cluster_id))?;
        policy::redact_workload(scope, &mut workload);
        Ok(workload)
    }

    pub async fn scale(
        &self,
        scope: &Scope,
        w: WorkloadRef,
        replicas: i32,
    ) -> Result<WorkloadSummary> {
        let kind = self.check(&w)?;
        if !kind.scalable() {
            return Err(Error::FailedPrecondition {
                reason: "NOT_SCALABLE",
                message: format!(
                    "a {} has no replica count; scale Deployments, StatefulSets or ReplicaSets",
                    kind.name()
                ),
            });
        }
        if replicas < 0 {
            return Err(Error::invalid("replicas", "must not be negative"));
        }
        let client = self.clusters.client(scope, &w.cluster_id).await?;
        kw::scale(&client.client, kind, &w.namespace, &w.name, replicas)
            .await
            .map_err(failed(&w.cluster_id))
    }

    pub async fn restart(&self, scope: &Scope, w: WorkloadRef) -> Result<WorkloadSummary> {
        let kind = self.check(&w)?;
        if !matches!(
            kind,
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
        ) {
            return Err(Error::FailedPrecondition {
                reason: "NOT_RESTARTABLE",
                message: format!(
                    "a {} cannot be rolled out again; restart Deployments, StatefulSets or \
                     DaemonSets",
                    kind.name()
                ),
            });
        }
        let client = self.clusters.client(scope, &w.cluster_id).await?;
        kw::restart(&client.client, kind, &w.namespace, &w.name)
            .await
            .map_err(failed(&w.cluster_id))
    }

    pub async fn delete(
        &self,
        scope: &Scope,
        w: WorkloadRef,
        propagation: Propagation,
    ) -> Result<()> {
        let kind = self.check(&w)?;
        let client = self.clusters.client(scope, &w.cluster_id).await?;
        kw::delete_workload(
            &client.client,
            kind,
            &w.namespace,
            &w.name,
            policy(propagation),
        )
        .await
        .map_err(failed(&w.cluster_id))
    }

    pub async fn list_pods(&self, scope: &Scope, r: ListPods) -> Result<Listing<ListedPod>> {
        let (client, watch) = self.client_and_cache(scope, &r.cluster_id).await?;
        let key = format!(
            "pods|{}|{}|{:?}|{}",
            r.cluster_id, r.namespace, r.selection, r.field_selector
        );
        if let Some(watch) = &watch
            && let Some(source::CachedPods { node, selector }) = source::pods_from_cache(
                watch.pods.is_ready(),
                &r.page_token,
                &r.field_selector,
                &r.selection,
            )
        {
            let page = KeyPage::parse(r.page_size, &r.page_token, &key)?;
            let namespace = Some(r.namespace.as_str()).filter(|ns| !ns.is_empty());
            let keep = |p: &CachedPod| {
                node.as_deref().is_none_or(|n| *p.node_name == *n)
                    && selector.matches_with(|key| p.label(key))
            };
            let (pods, more) = watch
                .pods
                .page(namespace, after(&page).as_ref(), page.size, keep);
            // The total costs a scan (no copies), so only the first page of a walk pays it.
            let total = page.is_first().then(|| watch.pods.count(namespace, keep));
            return Ok(Listing {
                next_page_token: page
                    .next_token(pods.last().map(|p| (&*p.namespace, &*p.name)), more),
                items: pods.into_iter().map(ListedPod::Cached).collect(),
                total_size: total.map_or(0, |t| i32::try_from(t).unwrap_or(i32::MAX)),
            });
        }
        let page = KubePage::parse(r.page_size, &r.page_token, &key)?;
        // While the cache syncs: its first list waits for this one (and the rest of the walk).
        let _direct = watch.as_ref().map(|w| w.direct_list());
        let selector = match &r.selection {
            PodSelection::All => String::new(),
            PodSelection::Labels(selector) => selector.clone(),
            PodSelection::Workload { kind, name } => {
                required("namespace", &r.namespace)?;
                required("workload.name", name)?;
                let kind = kind.ok_or_else(|| Error::invalid("workload.kind", "is required"))?;
                let selector = kw::workload_selector(&client.client, kind, &r.namespace, name)
                    .await
                    .map_err(failed(&r.cluster_id))?;
                if selector.is_empty() {
                    return Err(Error::FailedPrecondition {
                        reason: "NO_SELECTOR",
                        message: format!("{} {name:?} has no pod selector", kind.name()),
                    });
                }
                selector
            }
        };
        let listed = kw::list_pods(
            &client.client,
            &r.namespace,
            &selector,
            &r.field_selector,
            page.limit,
            &page.continue_token,
        )
        .await
        .map_err(failed(&r.cluster_id))?;
        Ok(Listing {
            total_size: total(
                listed.items.len(),
                page.continue_token.is_empty(),
                listed.remaining,
            ),
            next_page_token: page.next_token(listed.continue_token.as_deref()),
            items: listed
                .items
                .into_iter()
                .map(|p| ListedPod::Listed(Box::new(p)))
                .collect(),
        })
    }

    pub async fn get_pod(
        &self,
        scope: &Scope,
        cluster_id: &str,
        namespace: &str,
        name: &str,
    ) -> Result<PodSummary> {
        required("namespace", namespace)?;
        required("name", name)?;
        let client = self.clusters.client(scope, cluster_id).await?;
        kw::get_pod(&client.client, namespace, name)
            .await
            .map_err(failed(cluster_id))
    }

    pub async fn delete_pod(
        &self,
        scope: &Scope,
        cluster_id: &str,
        namespace: &str,
        name: &str,
        grace_period_seconds: Option<i64>,
    ) -> Result<()> {
        required("namespace", namespace)?;
        required("name", name)?;
        let grace = grace_period_seconds
            .map(|g| {
                u32::try_from(g)
                    .map_err(|_| Error::invalid("grace_period_seconds", "must be 0 or more"))
            })
            .transpose()?;
        let client = self.clusters.client(scope, cluster_id).await?;
        kw::delete_pod(&client.client, namespace, name, grace)
            .await
            .map_err(failed(cluster_id))
    }

    /// Events, newest first, paged over the sorted list: from the cluster's event cache once it
    /// has synced (the first list starts it), otherwise read whole from Kubernetes (at most
    /// [`EVENTS_CAP`]).
    pub async fn list_events(&self, scope: &Scope, r: ListEvents) -> Result<Listing<EventSummary>> {
        if !(r.type_.is_empty() || r.type_ == "Normal" || r.type_ == "Warning") {
            return Err(Error::invalid("type", "must be Normal, Warning or empty"));
        }
        let (client, watch) = self.client_and_cache(scope, &r.cluster_id).await?;
        let key = format!(
            "events|{}|{}|{}|{}|{}",
            r.cluster_id, r.namespace, r.object_kind, r.object_name, r.type_
        );
        let page = Page::parse(r.page_size, &r.page_token, &key)?;
        let (offset, size) = (page.offset as usize, page.size as usize);
        let cached = watch.map(|w| w.events()).filter(|e| e.is_ready());
        let (items, total) = if let Some(cached) = cached {
            let namespace = Some(r.namespace.as_str()).filter(|ns| !ns.is_empty());
            let keep = |e: &EventSummary| {
                (r.object_kind.is_empty() || e.involved_object.kind == r.object_kind)
                    && (r.object_name.is_empty() || e.involved_object.name == r.object_name)
                    && (r.type_.is_empty() || e.type_ == r.type_)
            };
            let (newest, total) =
                cached.first_by(namespace, keep, offset + size, EventSummary::newest_first);
            let items = newest.iter().skip(offset).map(|e| (**e).clone()).collect();
            (items, total)
        } else {
            let mut fields = Vec::new();
            if !r.object_kind.is_empty() {
                fields.push(format!("involvedObject.kind={}", r.object_kind));
            }
            if !r.object_name.is_empty() {
                fields.push(format!("involvedObject.name={}", r.object_name));
            }
            if !r.type_.is_empty() {
                fields.push(format!("type={}", r.type_));
            }
            let events =
                kw::list_events(&client.client, &r.namespace, &fields.join(","), EVENTS_CAP)
                    .await
                    .map_err(failed(&r.cluster_id))?;
            let total = events.len();
            let items: Vec<EventSummary> = events.into_iter().skip(offset).take(size).collect();
            (items, total)
        };
        Ok(Listing {
            next_page_token: page.next_token(items.len(), total as i64),
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
            items,
        })
    }

    /// Cordons and starts draining a node; progress arrives on the returned receiver, which
    /// ends after the summary. Dropping the receiver stops further evictions.
    pub async fn drain(
        &self,
        scope: &Scope,
        cluster_id: &str,
        node: &str,
        options: DrainOptions,
    ) -> Result<tokio::sync::mpsc::Receiver<DrainEvent>> {
        required("node_name", node)?;
        let client = self.clusters.client(scope, cluster_id).await?;
        let pending = crate::kube::drain::prepare(&client.client, node, options)
            .await
            .map_err(failed(cluster_id))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        tokio::spawn(pending.run(sender));
        Ok(receiver)
    }

    /// A drain as a caller follows it: as [`Self::drain`], and the summary carries the node as
    /// it is once the drain is over (re-read then, for `scope`; `None` if it cannot be read).
    /// Dropping the stream stops further evictions.
    pub async fn drain_with_summary(
        &self,
        scope: &Scope,
        cluster_id: &str,
        node: &str,
        options: DrainOptions,
    ) -> Result<impl futures::Stream<Item = DrainProgress> + Send + use<>> {
        let mut events = self.drain(scope, cluster_id, node, options).await?;
        let clusters = self.clusters.clone();
        let (scope, cluster_id, node) = (scope.clone(), cluster_id.to_string(), node.to_string());
        Ok(async_stream::stream! {
            while let Some(event) = events.recv().await {
                yield match event {
                    DrainEvent::Done { evicted, skipped, blocked, failed, complete } => {
                        let node = match clusters.client(&scope, &cluster_id).await {
                            Ok(client) => kw::get_node(&client.client, &node).await.ok().map(Box::new),
                            Err(_) => None,
                        };
                        DrainProgress::Summary { node, evicted, skipped, blocked, failed, complete }
                    }
                    pod => DrainProgress::Pod(pod),
                };
            }
        })
    }

    fn check(&self, w: &WorkloadRef) -> Result<WorkloadKind> {
        required("namespace", &w.namespace)?;
        required("name", &w.name)?;
        kind_required(w.kind)
    }
}

/// The Kubernetes propagationPolicy name.
/// One page of a list held in memory.
/// The cache key a key page resumes after.
fn after(page: &KeyPage) -> Option<crate::kube::watch_cache::Key> {
    page.after
        .as_ref()
        .map(|(ns, name)| (Arc::from(ns.as_str()), Arc::from(name.as_str())))
}

fn policy(p: Propagation) -> Option<&'static str> {
    match p {
        Propagation::Default => None,
        Propagation::Foreground => Some("Foreground"),
        Propagation::Background => Some("Background"),
        Propagation::Orphan => Some("Orphan"),
    }
}
