//! Logs of every pod (and chosen containers) of a workload or label selector, in one or several
//! clusters, merged as they arrive; pods that appear later are picked up, pods that go away end
//! their part with a marker. One request follows at most `max_pods` pods. Lines wait for the
//! client in a buffer bounded by bytes ([`BUFFER_BYTES`]), so a slow client slows the upstream
//! reads instead of growing memory.

use std::{collections::HashMap, sync::Arc};

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::kube::{
    ClusterClient,
    logs::{self as kl, PodChange},
    workloads as kw,
};
use crate::service::{
    Error, Result,
    access::{ClusterAccessor, Scope, failed},
    streams::{BATCH_BYTES, ByteSender, StreamKind, StreamSessions, byte_channel, ready_batches},
    workloads::logs::{BATCH_LINES, EntryKind, LogEntry, LogOptions, entry_for},
    workloads::{PodSelection, WorkloadKind},
};

/// Most bytes of lines waiting for the client, across every pod of one request.
pub const BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Lines from the end of each log to start with when the request names none (as documented
/// on `LogOptions.tail_lines`).
const DEFAULT_TAIL_LINES: i64 = 1000;

type Sender = ByteSender<LogEntry>;

#[derive(Debug, Clone)]
pub struct WorkloadLogs {
    pub cluster_ids: Vec<String>,
    /// Used when `cluster_ids` is empty: the clusters whose labels match (`k=v` pairs and bare
    /// keys, comma-separated).
    pub cluster_label_selector: String,
    pub namespace: String,
    pub selection: PodSelection,
    pub containers: Vec<String>,
    pub options: LogOptions,
}

pub struct WorkloadLogService {
    clusters: Arc<ClusterAccessor>,
    shutdown: CancellationToken,
    max_pods: usize,
    sessions: Arc<StreamSessions>,
}

struct Target {
    cluster_id: String,
    client: ClusterClient,
    selector: String,
}

impl WorkloadLogService {
    pub fn new(
        clusters: Arc<ClusterAccessor>,
        shutdown: CancellationToken,
        max_pods: usize,
        sessions: Arc<StreamSessions>,
    ) -> Self {
        WorkloadLogService {
            clusters,
            shutdown,
            max_pods,
            sessions,
        }
    }

    pub async fn stream(
        &self,
        scope: &Scope,
        mut r: WorkloadLogs,
    ) -> Result<impl Stream<Item = Result<Vec<LogEntry>>> + Send + use<>> {
        // Clusters named by id win; otherwise those whose labels match.
        if r.cluster_ids.is_empty() && !r.cluster_label_selector.is_empty() {
            r.cluster_ids = self
                .clusters
                .ids_by_labels(scope, &r.cluster_label_selector)
                .await?;
        }
        if r.namespace.is_empty() {
            return Err(Error::invalid("namespace", "is required"));
        }
        if r.cluster_ids.is_empty() {
            return Err(Error::invalid("cluster_ids", "name at least one cluster"));
        }
        r.options.tail_lines = r.options.tail_lines.or(Some(DEFAULT_TAIL_LINES));
        r.options.previous = false;
        r.options.request("")?;
        let permit = self.sessions.open(scope, StreamKind::Logs)?;
        let mut targets = Vec::new();
        let mut matched = 0usize;
        for cluster_id in &r.cluster_ids {
            let client = self.clusters.client(scope, cluster_id).await?;
            let selector = match &r.selection {
                PodSelection::Labels(s) if !s.is_empty() => s.clone(),
                PodSelection::Workload { kind, name } => {
                    let kind: WorkloadKind =
                        kind.ok_or_else(|| Error::invalid("workload.kind", "is required"))?;
                    kw::workload_selector(&client.client, kind, &r.namespace, name)
                        .await
                        .map_err(failed(cluster_id))?
                }
                _ => {
                    return Err(Error::invalid(
                        "pods",
                        "give a workload or a label selector",
                    ));
                }
            };
            let pods = kw::list_pods(&client.client, &r.namespace, &selector, "", 1000, "")
                .await
                .map_err(failed(cluster_id))?;
            matched += pods.items.len();
            targets.push(Target {
                cluster_id: cluster_id.clone(),
                client,
                selector,
            });
        }
        if matched > self.max_pods {
            return Err(Error::FailedPrecondition {
                reason: "TOO_MANY_PODS",
                message: format!(
                    "{matched} pods match, and one request follows at most {}; narrow the \
                     selector or stream fewer clusters",
                    self.max_pods
                ),
            });
        }
        let stop = self.shutdown.child_token();
        let (sender, receiver) = byte_channel::<LogEntry>(BUFFER_BYTES, LogEntry::wire_size);
        for target in targets {
            tokio::spawn(follow_cluster(
                target,
                r.namespace.clone(),
                r.containers.clone(),
                r.options.clone(),
                self.max_pods,
                sender.clone(),
                stop.clone(),
            ));
        }
        drop(sender);
        let shutdown = self.shutdown.clone();
        let guard = stop.drop_guard();
        let stream = async_stream::stream! {
            // Cancelling the request drops the guard, which stops every upstream log request.
            let _guard = guard;
            let batches =
                ready_batches(receiver.into_stream(), BATCH_LINES, BATCH_BYTES, LogEntry::wire_size);
            futures::pin_mut!(batches);
            loop {
                let batch = tokio::select! {
                    () = shutdown.cancelled() => {
                        yield Err(Error::Unavailable {
                            reason: "SHUTTING_DOWN",
                            message: "the server is shutting down; reconnect to continue".into(),
                            retry_after: Some(std::time::Duration::from_secs(1)),
                        });
                        return;
                    }
                    batch = batches.next() => batch,
                };
                match batch {
                    Some(entries) => yield Ok(entries),
                    None => break,
                }
            }
            yield Ok(vec![LogEntry {
                kind: EntryKind::End,
                content: String::new(),
                time: None,
                cluster_id: String::new(),
                namespace: String::new(),
                pod: String::new(),
                container: String::new(),
                truncated: false,
            }]);
        };
        Ok(permit.guard(stream))
    }
}

fn marker(
    kind: EntryKind,
    cluster: &str,
    ns: &str,
    pod: &str,
    container: &str,
    text: &str,
) -> LogEntry {
    LogEntry {
        kind,
        content: text.to_string(),
        time: None,
        cluster_id: cluster.to_string(),
        namespace: ns.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        truncated: false,
    }
}

/// Follows the pods of one cluster: starts a log task per started container, ends it when the
/// pod goes. Without `follow`, reads the pods present now and finishes.
async fn follow_cluster(
    target: Target,
    namespace: String,
    containers: Vec<String>,
    options: LogOptions,
    max_pods: usize,
    sender: Sender,
    stop: CancellationToken,
) {
    let mut running: HashMap<(String, String), CancellationToken> = HashMap::new();
    let changes = kl::watch_pods(&target.client.client, &namespace, &target.selector);
    futures::pin_mut!(changes);
    let mut seen_pods: Vec<String> = Vec::new();
    loop {
        let change = tokio::select! {
            () = stop.cancelled() => return,
            change = changes.next() => change,
        };
        let Some(change) = change else { return };
        match change {
            Ok(PodChange::Present { name, started }) => {
                if !seen_pods.contains(&name) {
                    if seen_pods.len() >= max_pods {
                        let _ = sender
                            .send(marker(
                                EntryKind::Error,
                                &target.cluster_id,
                                &namespace,
                                &name,
                                "",
                                &format!("not followed: over the cap of {max_pods} pods"),
                            ))
                            .await;
                        continue;
                    }
                    seen_pods.push(name.clone());
                }
                for container in started {
                    if !(containers.is_empty() || containers.contains(&container)) {
                        continue;
                    }
                    let key = (name.clone(), container.clone());
                    if running.contains_key(&key) {
                        continue;
                    }
                    let token = stop.child_token();
                    running.insert(key, token.clone());
                    tokio::spawn(follow_container(
                        ContainerLog {
                            client: target.client.clone(),
                            cluster_id: target.cluster_id.clone(),
                            namespace: namespace.clone(),
                            pod: name.clone(),
                            container,
                        },
                        options.clone(),
                        sender.clone(),
                        token,
                    ));
                }
            }
            Ok(PodChange::Gone { name }) => {
                running.retain(|(pod, container), token| {
                    if *pod != name {
                        return true;
                    }
                    token.cancel();
                    let _ = sender.try_send(marker(
                        EntryKind::PodEnded,
                        &target.cluster_id,
                        &namespace,
                        pod,
                        container,
                        "pod deleted",
                    ));
                    false
                });
            }
            Err(err) => {
                let _ = sender
                    .send(marker(
                        EntryKind::Error,
                        &target.cluster_id,
                        &namespace,
                        "",
                        "",
                        &err.to_string(),
                    ))
                    .await;
                return;
            }
        }
    }
}

/// One container's log, in one cluster.
struct ContainerLog {
    client: ClusterClient,
    cluster_id: String,
    namespace: String,
    pod: String,
    container: String,
}

async fn follow_container(
    log: ContainerLog,
    options: LogOptions,
    sender: Sender,
    stop: CancellationToken,
) {
    let ContainerLog {
        client,
        cluster_id,
        namespace,
        pod,
        container,
    } = log;
    let request = match options.request(&container) {
        Ok(request) => request,
        // Checked before the stream started; kept as a marker rather than a panic.
        Err(err) => {
            let _ = sender
                .send(marker(
                    EntryKind::Error,
                    &cluster_id,
                    &namespace,
                    &pod,
                    &container,
                    &err.to_string(),
                ))
                .await;
            return;
        }
    };
    let template = marker(
        EntryKind::Line,
        &cluster_id,
        &namespace,
        &pod,
        &container,
        "",
    );
    let _ = sender
        .send(marker(
            EntryKind::PodStarted,
            &cluster_id,
            &namespace,
            &pod,
            &container,
            "",
        ))
        .await;
    let lines = match kl::open(&client.client, &namespace, &pod, &request).await {
        Ok(lines) => lines,
        Err(err) => {
            let _ = sender
                .send(marker(
                    EntryKind::Error,
                    &cluster_id,
                    &namespace,
                    &pod,
                    &container,
                    &err.to_string(),
                ))
                .await;
            return;
        }
    };
    futures::pin_mut!(lines);
    let filter = crate::service::workloads::logs::Filter::new(&options);
    loop {
        let line = tokio::select! {
            () = stop.cancelled() => return,
            line = lines.next() => line,
        };
        match line {
            Some(Ok(line)) if filter.keeps(&line.content) => {
                if sender
                    .send(entry_for(&template, line, options.timestamps))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                let _ = sender
                    .send(marker(
                        EntryKind::Error,
                        &cluster_id,
                        &namespace,
                        &pod,
                        &container,
                        &err.to_string(),
                    ))
                    .await;
                return;
            }
            None => {
                let _ = sender
                    .send(marker(
                        EntryKind::PodEnded,
                        &cluster_id,
                        &namespace,
                        &pod,
                        &container,
                        "log ended",
                    ))
                    .await;
                return;
            }
        }
    }
}
