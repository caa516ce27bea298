//! The soak's clients: followed pod-log streams and event watchers that resume through replica
//! restarts as a real client would (UNAVAILABLE: reconnect, to the other replica first, with the
//! resume token or the last line's time), and the steady unary calls. Every stream end is
//! classified: a retryable status (clean) or anything else (lost), and a stream that goes silent
//! while its source keeps writing counts as lost too.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
    node_service_client::NodeServiceClient, workload_service_client::WorkloadServiceClient,
};
use flotilla_test_support as support;
use support::server::{ADMIN_TOKEN, Bearer};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

pub fn bearer() -> Bearer {
    Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}")))
}

/// Channels to every replica: `streams[r]` spreads streams over several HTTP/2 connections
/// (at most ~100 streams each, even when every stream has moved to one replica).
pub struct Channels {
    pub unary: Vec<Channel>,
    pub streams: Vec<Vec<Channel>>,
}

impl Channels {
    pub fn new(urls: &[String], total_streams: usize) -> Channels {
        let endpoint = |url: &String| {
            tonic::transport::Endpoint::from_shared(url.clone())
                .expect("url")
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .connect_lazy()
        };
        let per_replica = total_streams.div_ceil(100).max(1);
        Channels {
            unary: urls.iter().map(endpoint).collect(),
            streams: urls
                .iter()
                .map(|u| (0..per_replica).map(|_| endpoint(u)).collect())
                .collect(),
        }
    }

    pub fn stream(&self, replica: usize, stream: usize) -> Channel {
        let group = &self.streams[replica];
        group[stream % group.len()].clone()
    }
}

/// Counts of one kind of stream.
#[derive(Default)]
pub struct StreamCounters {
    /// First opens that succeeded.
    pub opened: AtomicU64,
    /// Ended with a status a client retries on (UNAVAILABLE).
    pub interrupted_clean: AtomicU64,
    /// Reopened after an interruption (with the resume token or since the last line).
    pub resumed: AtomicU64,
    /// Ended with another status, without any status, or went silent.
    pub lost: AtomicU64,
    /// Interrupted and not reopened within the resume deadline.
    pub unresumed: AtomicU64,
    /// Open right now.
    pub open_now: AtomicU64,
    /// Log lines or events received.
    pub items: AtomicU64,
    /// Lines or events skipped on a resume (a gap in the sequence the writer wrote).
    pub missed: AtomicU64,
    /// Lines or events received twice across a resume (dropped by the client).
    pub duplicates: AtomicU64,
    /// Closed by the client to go back to the home replica and resumed there.
    pub moved_home: AtomicU64,
    /// Event watchers only: resumes the server answered by replaying what was missed.
    pub replayed: AtomicU64,
    /// Event watchers only: resumes answered with a fresh snapshot (token of another replica
    /// or of a process that has restarted since).
    pub resnapshotted: AtomicU64,
    /// Event watchers only: events that happened while the watcher was away and that a fresh
    /// snapshot (of `snapshot_limit` 1) did not bring back.
    pub missed_at_snapshot: AtomicU64,
    /// Event watchers only: events dropped for slowness (LAGGED).
    pub lagged: AtomicU64,
}

/// Everything the clients count, shared with the sampler and the report.
#[derive(Default)]
pub struct Counters {
    pub logs: StreamCounters,
    pub events: StreamCounters,
    /// How streams ended: "logs UNAVAILABLE SHUTTING_DOWN" → count.
    pub endings: Mutex<BTreeMap<String, u64>>,
    /// The first few lost streams, described.
    pub lost_examples: Mutex<Vec<String>>,
    pub unary: Mutex<Vec<UnarySample>>,
    pub unary_retried: AtomicU64,
    pub unary_errors: Mutex<BTreeMap<String, u64>>,
    pub churn_imported: AtomicU64,
    pub churn_detached: AtomicU64,
    pub churn_errors: Mutex<Vec<String>>,
}

/// One unary call: when it started (seconds since the load began), how long it took, whether
/// it succeeded (after at most one retry on the other replica).
#[derive(Debug, Clone, Copy)]
pub struct UnarySample {
    pub at_secs: f64,
    pub latency: Duration,
    pub ok: bool,
}

/// What the streams need to know.
pub struct StreamPlan {
    /// The one cluster the streams read (the test control plane's first API server).
    pub cluster: String,
    /// Where the log pods are.
    pub namespace: String,
    pub log_pods: Vec<String>,
    /// Where the events are created; watchers are spread over these.
    pub event_namespaces: Vec<String>,
    /// A stream that delivers nothing this long while its source writes is lost.
    pub stall: Duration,
    pub event_stall: Duration,
    /// An interrupted stream not reopened within this is unresumed.
    pub resume_deadline: Duration,
    /// A stream away from its home replica goes back after this (plus up to as much again).
    pub home_after: Duration,
}

enum Ending {
    /// A status a client retries on.
    Clean(String),
    /// Anything else.
    Lost(String),
    /// The client closed it to go back to its home replica.
    GoHome,
    Stopped,
}

fn describe(status: &Status) -> String {
    let reason = status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    format!("{:?} {reason}", status.code())
}

fn classify(status: &Status) -> Ending {
    if status.code() == Code::Unavailable {
        Ending::Clean(describe(status))
    } else {
        Ending::Lost(format!("{} ({})", describe(status), status.message()))
    }
}

impl Counters {
    fn record_end(&self, kind: &str, counters: &StreamCounters, ending: &Ending, who: &str) {
        let label = match ending {
            Ending::Clean(l) => {
                counters.interrupted_clean.fetch_add(1, Ordering::Relaxed);
                l.clone()
            }
            Ending::Lost(l) => {
                counters.lost.fetch_add(1, Ordering::Relaxed);
                let mut examples = self.lost_examples.lock().expect("lock");
                if examples.len() < 20 {
                    examples.push(format!("{kind} {who}: {l}"));
                }
                l.split(" (").next().unwrap_or(l).to_string()
            }
            Ending::Stopped => return,
            Ending::GoHome => {
                counters.moved_home.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        *self
            .endings
            .lock()
            .expect("lock")
            .entry(format!("{kind} {label}"))
            .or_default() += 1;
    }
}

/// Where one stream connects, and its reconnects after an interruption: first to the other
/// replica (as a load balancer would send it while its replica restarts), then alternating with
/// backoff. A stream away from its home replica goes back there after a while (closing and
/// resuming), so each replica carries the same streams again once a restart is over.
struct Reconnect {
    home: usize,
    replica: usize,
    replicas: usize,
    since: Option<Instant>,
    going_home: bool,
    attempt: u32,
    flagged: bool,
}

/// How an open came about.
#[derive(PartialEq, Eq)]
enum Opened {
    First,
    Resumed,
    MovedHome,
}

impl Reconnect {
    fn new(index: usize, replicas: usize) -> Reconnect {
        Reconnect {
            home: index % replicas,
            replica: index % replicas,
            replicas,
            since: None,
            going_home: false,
            attempt: 0,
            flagged: false,
        }
    }

    fn interrupted(&mut self) {
        self.since = Some(Instant::now());
        self.attempt = 0;
        self.flagged = false;
        self.replica = (self.replica + 1) % self.replicas;
    }

    fn go_home(&mut self) {
        self.going_home = true;
        self.replica = self.home;
    }

    /// After a failed open: the backoff, and whether the deadline has just passed.
    fn failed(&mut self, deadline: Duration) -> (Duration, bool) {
        self.attempt += 1;
        self.replica = (self.replica + 1) % self.replicas;
        let newly_late = match self.since {
            Some(since) if !self.flagged && since.elapsed() > deadline => {
                self.flagged = true;
                true
            }
            None if !self.flagged && self.attempt > 30 => {
                self.flagged = true;
                true
            }
            _ => false,
        };
        let backoff = Duration::from_millis((100 * u64::from(self.attempt)).min(2000));
        (
            backoff + Duration::from_millis(fastrand::u64(0..100)),
            newly_late,
        )
    }

    fn opened(&mut self) -> Opened {
        self.attempt = 0;
        if self.since.take().is_some() {
            Opened::Resumed
        } else if std::mem::take(&mut self.going_home) {
            Opened::MovedHome
        } else {
            Opened::First
        }
    }

    /// When a stream now open away from home should go back.
    fn home_at(&self, after: Duration) -> Option<tokio::time::Instant> {
        (self.replica != self.home).then(|| {
            tokio::time::Instant::now()
                + after
                + Duration::from_millis(fastrand::u64(0..after.as_millis() as u64 + 1))
        })
    }
}

/// Sleeps until `at`, or forever.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Follows the log of one pod until `stop`, resuming after every interruption with
/// `since_time` = the last line's time (lines seen twice are dropped by their sequence number).
pub async fn follow_logs(
    index: usize,
    plan: Arc<StreamPlan>,
    channels: Arc<Channels>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let c = &counters.logs;
    let cluster = plan.cluster.clone();
    let pod = plan.log_pods[index % plan.log_pods.len()].clone();
    let who = format!("#{index} {}/{pod}", plan.namespace);
    let mut last_seq: Option<u64> = None;
    let mut last_time: Option<prost_types::Timestamp> = None;
    let mut reconnect = Reconnect::new(index, channels.streams.len());
    loop {
        let options = pb::LogOptions {
            follow: true,
            tail_lines: last_time.is_none().then_some(0),
            since: last_time.map(pb::log_options::Since::SinceTime),
            ..Default::default()
        };
        let request = pb::StreamPodLogsRequest {
            cluster_id: cluster.clone(),
            namespace: plan.namespace.clone(),
            pod: pod.clone(),
            container: String::new(),
            options: Some(options),
        };
        let mut client =
            LogStreamClient::with_interceptor(channels.stream(reconnect.replica, index), bearer());
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(10), client.stream_pod_logs(request)) => r,
        };
        let mut stream = match opened {
            Ok(Ok(response)) => response.into_inner(),
            failed => {
                if let Ok(Err(status)) = &failed
                    && status.code() != Code::Unavailable
                {
                    counters.record_end("logs-open", c, &classify(status), &who);
                }
                let (backoff, late) = reconnect.failed(plan.resume_deadline);
                if late {
                    c.unresumed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        match reconnect.opened() {
            Opened::First => c.opened.fetch_add(1, Ordering::Relaxed),
            Opened::Resumed => c.resumed.fetch_add(1, Ordering::Relaxed),
            Opened::MovedHome => 0,
        };
        c.open_now.fetch_add(1, Ordering::Relaxed);
        let home_at = reconnect.home_at(plan.home_after);
        let ending = loop {
            let next = tokio::select! {
                () = stop.cancelled() => break Ending::Stopped,
                () = until(home_at) => break Ending::GoHome,
                r = tokio::time::timeout(plan.stall, stream.message()) => r,
            };
            let message = match next {
                Err(_) => break Ending::Lost(format!("stalled: no line for {:?}", plan.stall)),
                Ok(Err(status)) => break classify(&status),
                Ok(Ok(None)) => break Ending::Lost("ended without a status".into()),
                Ok(Ok(Some(message))) => message,
            };
            for entry in message.entries {
                if entry.kind() != pb::LogEntryKind::Line {
                    continue;
                }
                let Some(seq) = entry
                    .content
                    .rsplit_once("seq ")
                    .and_then(|(_, n)| n.trim().parse::<u64>().ok())
                else {
                    continue;
                };
                match last_seq {
                    Some(last) if seq <= last => {
                        c.duplicates.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Some(last) if seq > last + 1 => {
                        c.missed.fetch_add(seq - last - 1, Ordering::Relaxed);
                    }
                    _ => {}
                }
                last_seq = Some(seq);
                if entry.time.is_some() {
                    last_time = entry.time;
                }
                c.items.fetch_add(1, Ordering::Relaxed);
            }
        };
        c.open_now.fetch_sub(1, Ordering::Relaxed);
        counters.record_end("logs", c, &ending, &who);
        match ending {
            Ending::Stopped => return,
            Ending::GoHome => reconnect.go_home(),
            _ => reconnect.interrupted(),
        }
    }
}

/// Watches the events of one cluster's soak namespace until `stop`, resuming with the last
/// resume_token after every interruption.
pub async fn watch_events(
    index: usize,
    plan: Arc<StreamPlan>,
    channels: Arc<Channels>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let c = &counters.events;
    let cluster = plan.cluster.clone();
    let namespace = plan.event_namespaces[index % plan.event_namespaces.len()].clone();
    let who = format!("#{index} {namespace}");
    let mut token = String::new();
    let mut last_seq: Option<u64> = None;
    let mut after_snapshot = false;
    let mut reconnect = Reconnect::new(index, channels.streams.len());
    loop {
        let request = pb::WatchEventsRequest {
            cluster_id: cluster.clone(),
            namespace: namespace.clone(),
            snapshot_limit: 1,
            resume_token: token.clone(),
            ..Default::default()
        };
        let mut client =
            LogStreamClient::with_interceptor(channels.stream(reconnect.replica, index), bearer());
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(20), client.watch_events(request)) => r,
        };
        let mut stream = match opened {
            Ok(Ok(response)) => response.into_inner(),
            failed => {
                if let Ok(Err(status)) = &failed
                    && status.code() != Code::Unavailable
                {
                    counters.record_end("events-open", c, &classify(status), &who);
                }
                let (backoff, late) = reconnect.failed(plan.resume_deadline);
                if late {
                    c.unresumed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let opened = reconnect.opened();
        match opened {
            Opened::First => c.opened.fetch_add(1, Ordering::Relaxed),
            Opened::Resumed => c.resumed.fetch_add(1, Ordering::Relaxed),
            Opened::MovedHome => 0,
        };
        c.open_now.fetch_add(1, Ordering::Relaxed);
        let home_at = reconnect.home_at(plan.home_after);
        // Whether the first message says how the server took the resume token.
        let mut first = opened != Opened::First;
        let ending = loop {
            let next = tokio::select! {
                () = stop.cancelled() => break Ending::Stopped,
                () = until(home_at) => break Ending::GoHome,
                r = tokio::time::timeout(plan.event_stall, stream.message()) => r,
            };
            let message = match next {
                Err(_) => {
                    break Ending::Lost(format!("stalled: no event for {:?}", plan.event_stall));
                }
                Ok(Err(status)) => break classify(&status),
                Ok(Ok(None)) => break Ending::Lost("ended without a status".into()),
                Ok(Ok(Some(message))) => message,
            };
            if !message.resume_token.is_empty() {
                token.clone_from(&message.resume_token);
            }
            use pb::WatchEventsResponseType as T;
            if std::mem::take(&mut first) {
                if matches!(message.r#type(), T::Snapshot | T::SnapshotEnd) {
                    // A fresh snapshot (the token's hub is in another process): what happened
                    // in between is not replayed; the next event shows how much was skipped.
                    c.resnapshotted.fetch_add(1, Ordering::Relaxed);
                    after_snapshot = true;
                } else {
                    c.replayed.fetch_add(1, Ordering::Relaxed);
                }
            }
            let seq = message
                .event
                .as_ref()
                .and_then(|e| e.message.strip_prefix("soak seq "))
                .and_then(|n| n.parse::<u64>().ok());
            match (message.r#type(), seq) {
                (T::Lagged, _) => {
                    c.lagged
                        .fetch_add(message.dropped_count.max(0) as u64, Ordering::Relaxed);
                    last_seq = None;
                }
                (T::Added | T::Snapshot, Some(seq)) => {
                    let live = message.r#type() == T::Added;
                    match last_seq {
                        Some(last) if seq <= last => {
                            if live {
                                c.duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                            continue;
                        }
                        Some(last) if seq > last + 1 => {
                            let skipped = if std::mem::take(&mut after_snapshot) {
                                &c.missed_at_snapshot
                            } else {
                                &c.missed
                            };
                            skipped.fetch_add(seq - last - 1, Ordering::Relaxed);
                        }
                        _ => after_snapshot = false,
                    }
                    last_seq = Some(seq);
                    if live {
                        c.items.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
        };
        c.open_now.fetch_sub(1, Ordering::Relaxed);
        counters.record_end("events", c, &ending, &who);
        match ending {
            Ending::Stopped => return,
            Ending::GoHome => reconnect.go_home(),
            _ => reconnect.interrupted(),
        }
    }
}

/// What the unary load calls, in turn.
pub struct UnaryPlan {
    pub cluster: String,
    pub pods_namespace: String,
    pub events_namespace: String,
}

async fn unary_once(kind: u64, plan: &UnaryPlan, channel: Channel) -> Result<(), Status> {
    match kind % 4 {
        0 => {
            ClusterServiceClient::with_interceptor(channel, bearer())
                .get_cluster(pb::GetClusterRequest {
                    cluster_id: plan.cluster.clone(),
                })
                .await?;
        }
        1 => {
            ClusterServiceClient::with_interceptor(channel, bearer())
                .list_clusters(pb::ListClustersRequest {
                    page_size: 50,
                    ..Default::default()
                })
                .await?;
        }
        2 => {
            WorkloadServiceClient::with_interceptor(channel, bearer())
                .list_pods(pb::ListPodsRequest {
                    cluster_id: plan.cluster.clone(),
                    namespace: plan.pods_namespace.clone(),
                    page_size: 100,
                    ..Default::default()
                })
                .await?;
        }
        _ => {
            WorkloadServiceClient::with_interceptor(channel, bearer())
                .list_events(pb::ListEventsRequest {
                    cluster_id: plan.cluster.clone(),
                    namespace: plan.events_namespace.clone(),
                    page_size: 20,
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(())
}

/// One call of the unary load: on UNAVAILABLE (a replica restarting), once more on the other
/// replica, as a client behind a load balancer would see it. The latency covers both.
pub async fn unary_call(
    call: u64,
    plan: Arc<UnaryPlan>,
    channels: Arc<Channels>,
    counters: Arc<Counters>,
    load_started: Instant,
) {
    let started = Instant::now();
    let replicas = channels.unary.len();
    let first = (call as usize) % replicas;
    let attempt = |replica: usize| {
        let channel = channels.unary[replica].clone();
        let plan = plan.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), unary_once(call, &plan, channel))
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("soak: no answer in 10 s")))
        }
    };
    let mut result = attempt(first).await;
    // UNAVAILABLE: the replica is restarting. CANCELLED ("operation was canceled"): the call
    // was handed to a connection the restarting replica was closing (hyper cancels it; these
    // are all reads, so a retry is safe).
    if matches!(&result, Err(s) if matches!(s.code(), Code::Unavailable | Code::Cancelled)) {
        counters.unary_retried.fetch_add(1, Ordering::Relaxed);
        result = attempt((first + 1) % replicas).await;
    }
    if let Err(status) = &result {
        *counters
            .unary_errors
            .lock()
            .expect("lock")
            .entry(format!("call kind {} {}", call % 4, describe(status)))
            .or_default() += 1;
    }
    counters.unary.lock().expect("lock").push(UnarySample {
        at_secs: started.duration_since(load_started).as_secs_f64(),
        latency: started.elapsed(),
        ok: result.is_ok(),
    });
}

/// One import-and-detach cycle: import a cluster on one replica, list its nodes on the other
/// (which builds a node cache there), read it back, detach it. Each step retries across
/// replicas while one is restarting.
pub async fn churn_cycle(
    cycle: u64,
    kubeconfig: Arc<String>,
    channels: Arc<Channels>,
    counters: Arc<Counters>,
) {
    let id = format!("soak-churn-{cycle}");
    let replicas = channels.unary.len();
    let home = cycle as usize % replicas;
    // SOAK_CHURN_ONE_REPLICA=1: every step on the importing replica (to tell apart what a
    // detach on another replica leaves behind).
    let other = usize::from(std::env::var("SOAK_CHURN_ONE_REPLICA").as_deref() != Ok("1"));
    let step = |name: &'static str, offset: usize| {
        let (id, kubeconfig, channels) = (id.clone(), kubeconfig.clone(), channels.clone());
        async move {
            let mut last = None;
            for attempt in 0..6 {
                let channel = channels.unary[(home + offset + attempt) % replicas].clone();
                let result = match name {
                    "import" => ClusterServiceClient::with_interceptor(channel, bearer())
                        .import_cluster(pb::ImportClusterRequest {
                            cluster_id: id.clone(),
                            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                                pb::KubeconfigSource {
                                    kubeconfig: kubeconfig.as_bytes().to_vec(),
                                    context: String::new(),
                                },
                            )),
                            labels: [("soak".to_string(), "churn".to_string())].into(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                    "list-nodes" => NodeServiceClient::with_interceptor(channel, bearer())
                        .list_nodes(pb::ListNodesRequest {
                            cluster_id: id.clone(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                    "get" => ClusterServiceClient::with_interceptor(channel, bearer())
                        .get_cluster(pb::GetClusterRequest {
                            cluster_id: id.clone(),
                        })
                        .await
                        .map(drop),
                    _ => ClusterServiceClient::with_interceptor(channel, bearer())
                        .delete_cluster(pb::DeleteClusterRequest {
                            cluster_id: id.clone(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                };
                match result {
                    Ok(()) => return Ok(()),
                    // A retry of a call whose first answer was lost.
                    Err(s)
                        if attempt > 0 && name == "import" && s.code() == Code::AlreadyExists =>
                    {
                        return Ok(());
                    }
                    Err(s) if attempt > 0 && name == "detach" && s.code() == Code::NotFound => {
                        return Ok(());
                    }
                    // UNAVAILABLE: the replica is restarting; CANCELLED: the call was in
                    // flight on a connection the restarting replica closed.
                    Err(s) if matches!(s.code(), Code::Unavailable | Code::Cancelled) => {
                        last = Some(s);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(s) => return Err(format!("{id} {name}: {} {}", describe(&s), s.message())),
                }
            }
            Err(format!(
                "{id} {name}: still UNAVAILABLE or CANCELLED after 6 attempts ({:?})",
                last.map(|s| s.message().to_string())
            ))
        }
    };
    let outcome = async {
        step("import", 0).await?;
        counters.churn_imported.fetch_add(1, Ordering::Relaxed);
        step("list-nodes", other).await?;
        step("get", 0).await?;
        step("detach", other).await?;
        counters.churn_detached.fetch_add(1, Ordering::Relaxed);
        Ok::<(), String>(())
    }
    .await;
    if let Err(why) = outcome {
        counters.churn_errors.lock().expect("lock").push(why);
    }
}
