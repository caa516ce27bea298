//! Live pod logs: validated requests, whole lines batched into messages (bounded by lines and
//! by bytes), filters, truncation, and an end marker; the stream ends at once (closing the
//! upstream) when the client leaves, with UNAVAILABLE when the server shuts down, and with
//! UNAUTHENTICATED when the caller's token is revoked or expires. Each open stream counts
//! against its token's cap ([`crate::service::streams`]).

use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

pub use crate::kube::event_hub::ChangeKind;
use crate::kube::{
    event_hub::{Change, EventHub, EventHubs},
    logs::{self as kl, LogRequest},
    summary::EventSummary,
};
use crate::service::{
    Error, Result,
    access::{ClusterAccessor, Scope, failed},
    streams::{BATCH_BYTES, StreamKind, StreamSessions, ready_batches},
};

/// Longest line passed on whole; longer ones are cut and marked truncated.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// What is read of a line upstream before it is cut: the content cap plus room for the
/// timestamp the API server puts first. Nothing more of a line is ever held.
pub const UPSTREAM_LINE_BYTES: usize = MAX_LINE_BYTES + 64;
/// Most lines in one message.
pub const BATCH_LINES: usize = 256;
/// The longest `since_seconds` taken (100 years; more would overflow the API server's
/// nanosecond durations).
pub const MAX_SINCE_SECONDS: i64 = 100 * 365 * 24 * 3600;
/// The range of a `google.protobuf.Timestamp`: 0001-01-01 to 9999-12-31.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Line,
    PodStarted,
    PodEnded,
    Error,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub kind: EntryKind,
    pub content: String,
    pub time: Option<(i64, i32)>,
    pub cluster_id: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub truncated: bool,
}

impl LogEntry {
    /// An upper bound of the entry's encoded size, for byte-bounded batches and buffers.
    pub fn wire_size(&self) -> usize {
        self.content.len()
            + self.cluster_id.len()
            + self.namespace.len()
            + self.pod.len()
            + self.container.len()
            + 48
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    /// `since_time` as (seconds, nanos) since the epoch, unchecked.
    pub since_time: Option<(i64, i32)>,
    pub timestamps: bool,
    pub previous: bool,
    pub limit_bytes: Option<i64>,
    pub filter: String,
    pub invert_filter: bool,
    pub match_case: bool,
}

impl LogOptions {
    /// Checks every number against its range (no value may overflow here or upstream) and
    /// builds the upstream request for `container`.
    pub fn request(&self, container: &str) -> Result<LogRequest> {
        if self.tail_lines.is_some_and(|t| t < 0) {
            return Err(Error::invalid("options.tail_lines", "must not be negative"));
        }
        if self.limit_bytes.is_some_and(|l| l <= 0) {
            return Err(Error::invalid("options.limit_bytes", "must be positive"));
        }
        if let Some(s) = self.since_seconds
            && !(1..=MAX_SINCE_SECONDS).contains(&s)
        {
            return Err(Error::invalid(
                "options.since_seconds",
                format!("must be between 1 and {MAX_SINCE_SECONDS} (100 years)"),
            ));
        }
        let since_time = match self.since_time {
            None => None,
            Some((seconds, nanos)) => {
                let bad = || {
                    Error::invalid(
                        "options.since_time",
                        "must be a time between 0001-01-01 and 9999-12-31 with nanos in                          0..999999999",
                    )
                };
                if !TIMESTAMP_SECONDS.contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
                    return Err(bad());
                }
                Some(k8s_openapi::jiff::Timestamp::new(seconds, nanos).map_err(|_| bad())?)
            }
        };
        Ok(LogRequest {
            container: container.to_string(),
            follow: self.follow,
            tail_lines: self.tail_lines,
            since_seconds: self.since_seconds,
            since_time,
            previous: self.previous,
            limit_bytes: self.limit_bytes,
            max_line_bytes: UPSTREAM_LINE_BYTES,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct PodLogs {
    pub cluster_id: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub options: LogOptions,
}

pub struct LogService {
    clusters: Arc<ClusterAccessor>,
    shutdown: CancellationToken,
    hubs: Arc<EventHubs>,
    sessions: Arc<StreamSessions>,
    /// When set, shared event hubs run only for clusters this replica owns; streams of other
    /// clusters get a Kubernetes watch of their own.
    owns: Option<crate::service::clusters::ownership::OwnsCluster>,
}

impl LogService {
    pub fn new(
        clusters: Arc<ClusterAccessor>,
        shutdown: CancellationToken,
        sessions: Arc<StreamSessions>,
    ) -> Self {
        LogService {
            clusters,
            shutdown,
            hubs: Arc::default(),
            sessions,
            owns: None,
        }
    }

    /// Keeps shared event hubs to the clusters `owns` says this replica owns.
    pub fn with_owner_check(
        mut self,
        owns: crate::service::clusters::ownership::OwnsCluster,
    ) -> Self {
        self.owns = Some(owns);
        self
    }

    /// Batches of entries; the stream's errors are final statuses.
    pub async fn pod_logs(
        &self,
        scope: &Scope,
        r: PodLogs,
    ) -> Result<impl Stream<Item = Result<Vec<LogEntry>>> + Send + use<>> {
        for (field, value) in [("namespace", &r.namespace), ("pod", &r.pod)] {
            if value.is_empty() {
                return Err(Error::invalid(field, "is required"));
            }
        }
        r.options.request("")?;
        let permit = self.sessions.open(scope, StreamKind::Logs)?;
        let client = self.clusters.client(scope, &r.cluster_id).await?;
        let containers = kl::containers(&client.client, &r.namespace, &r.pod)
            .await
            .map_err(failed(&r.cluster_id))?;
        let container = match (r.container.as_str(), containers.as_slice()) {
            ("", [only]) => only.clone(),
            ("", many) => {
                return Err(Error::FailedPrecondition {
                    reason: "CONTAINER_REQUIRED",
                    message: format!(
                        "pod {:?} has {} containers ({}); choose one with `container`",
                        r.pod,
                        many.len(),
                        many.join(", ")
                    ),
                });
            }
            (name, all) if all.iter().any(|c| c == name) => name.to_string(),
            (name, all) => {
                return Err(Error::NotFoundMessage(format!(
                    "pod {:?} has no container {name:?}; it has {}",
                    r.pod,
                    all.join(", ")
                )));
            }
        };
        let request = r.options.request(&container)?;
        let lines = kl::open(&client.client, &r.namespace, &r.pod, &request)
            .await
            .map_err(failed(&r.cluster_id))?;
        let template = LogEntry {
            kind: EntryKind::Line,
            content: String::new(),
            time: None,
            cluster_id: r.cluster_id.clone(),
            namespace: r.namespace.clone(),
            pod: r.pod.clone(),
            container,
            truncated: false,
        };
        let filter = Filter::new(&r.options);
        let timestamps = r.options.timestamps;
        let cluster_id = r.cluster_id.clone();
        let end_template = template.clone();
        let shutdown = self.shutdown.clone();
        let entries = lines.filter_map(move |line| {
            let entry = match line {
                Ok(line) if filter.keeps(&line.content) => {
                    Some(Ok(entry_for(&template, line, timestamps)))
                }
                Ok(_) => None,
                Err(err) => Some(Err(failed(&cluster_id)(err))),
            };
            futures::future::ready(entry)
        });
        let end = LogEntry {
            kind: EntryKind::End,
            ..end_template
        };
        let stream = async_stream::stream! {
            let batches = ready_batches(entries, BATCH_LINES, BATCH_BYTES, entry_result_size);
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
                let Some(batch) = batch else { break };
                let mut entries = Vec::with_capacity(batch.len());
                let mut failure = None;
                for entry in batch {
                    match entry {
                        Ok(entry) => entries.push(entry),
                        Err(err) => {
                            failure = Some(err);
                            break;
                        }
                    }
                }
                if !entries.is_empty() {
                    yield Ok(entries);
                }
                if let Some(err) = failure {
                    yield Err(err);
                    return;
                }
            }
            yield Ok(vec![end]);
        };
        Ok(permit.guard(stream))
    }
}

fn entry_result_size(entry: &Result<LogEntry>) -> usize {
    entry.as_ref().map_or(0, LogEntry::wire_size)
}

/// A line entry, with its timestamp kept in the content when asked and long lines cut.
pub fn entry_for(template: &LogEntry, line: kl::LogLine, timestamps: bool) -> LogEntry {
    let mut content = if timestamps {
        match line.time {
            Some((secs, nanos)) => match k8s_openapi::jiff::Timestamp::new(secs, nanos) {
                Ok(t) => format!("{t} {}", line.content),
                Err(_) => line.content,
            },
            None => line.content,
        }
    } else {
        line.content
    };
    let truncated = line.truncated || content.len() > MAX_LINE_BYTES;
    if content.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !content.is_char_boundary(cut) {
            cut -= 1;
        }
        content.truncate(cut);
    }
    LogEntry {
        content,
        time: line.time,
        truncated,
        ..template.clone()
    }
}

/// The `filter` / `invert_filter` / `match_case` options.
pub struct Filter {
    needle: String,
    invert: bool,
    match_case: bool,
}

impl Filter {
    pub fn new(o: &LogOptions) -> Filter {
        Filter {
            needle: if o.match_case {
                o.filter.clone()
            } else {
                o.filter.to_lowercase()
            },
            invert: o.invert_filter,
            match_case: o.match_case,
        }
    }

    pub fn keeps(&self, line: &str) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        let found = if self.match_case {
            line.contains(&self.needle)
        } else {
            line.to_lowercase().contains(&self.needle)
        };
        found != self.invert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tokens_carry_the_resource_version() {
        let token = resume_token("ab12cd34", 7, "123456");
        let point = parse_resume_token(&token).unwrap().unwrap();
        assert_eq!(
            point,
            ResumePoint {
                epoch: "ab12cd34".into(),
                seq: 7,
                resource_version: "123456".into(),
            }
        );
        // Tokens issued before replicas shared clusters still parse (without a version).
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let old = URL_SAFE_NO_PAD.encode("w1.ab12cd34.7");
        let point = parse_resume_token(&old).unwrap().unwrap();
        assert_eq!((point.seq, point.resource_version.as_str()), (7, ""));
        for bad in ["w2.e.x.1", "w1.e", "w3.e.1.2", "junk"] {
            let token = URL_SAFE_NO_PAD.encode(bad);
            assert!(parse_resume_token(&token).is_err(), "{bad}");
        }
        assert!(parse_resume_token("").unwrap().is_none());
    }

    #[test]
    fn filters_and_truncation() {
        let keep = |filter: &str, invert: bool, match_case: bool, line: &str| {
            Filter::new(&LogOptions {
                filter: filter.into(),
                invert_filter: invert,
                match_case,
                ..LogOptions::default()
            })
            .keeps(line)
        };
        assert!(keep("", false, false, "anything"));
        assert!(keep("error", false, false, "An ERROR here"));
        assert!(!keep("error", false, true, "An ERROR here"));
        assert!(!keep("error", true, false, "An ERROR here"));
        assert!(keep("error", true, false, "all good"));

        let template = LogEntry {
            kind: EntryKind::Line,
            content: String::new(),
            time: None,
            cluster_id: "c".into(),
            namespace: "n".into(),
            pod: "p".into(),
            container: "c".into(),
            truncated: false,
        };
        let long = "é".repeat(MAX_LINE_BYTES);
        let e = entry_for(
            &template,
            kl::LogLine {
                time: None,
                content: long,
                truncated: false,
            },
            false,
        );
        assert!(e.truncated && e.content.len() <= MAX_LINE_BYTES);
        let cut_upstream = entry_for(
            &template,
            kl::LogLine {
                time: None,
                content: "short".into(),
                truncated: true,
            },
            false,
        );
        assert!(cut_upstream.truncated, "a line cut upstream stays marked");
    }

    #[test]
    fn numbers_out_of_range_name_their_field() {
        let field = |o: LogOptions| match o.request("c") {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let since_time = |t| LogOptions {
            since_time: Some(t),
            ..LogOptions::default()
        };
        assert_eq!(field(since_time((i64::MAX, 0))), "options.since_time");
        assert_eq!(field(since_time((i64::MIN, 0))), "options.since_time");
        assert_eq!(field(since_time((0, -1))), "options.since_time");
        assert_eq!(field(since_time((0, i32::MAX))), "options.since_time");
        let seconds = |s| LogOptions {
            since_seconds: Some(s),
            ..LogOptions::default()
        };
        assert_eq!(field(seconds(i64::MAX)), "options.since_seconds");
        assert_eq!(field(seconds(0)), "options.since_seconds");
        let tail = LogOptions {
            tail_lines: Some(i64::MIN),
            ..LogOptions::default()
        };
        assert_eq!(field(tail), "options.tail_lines");
        let limit = LogOptions {
            limit_bytes: Some(i64::MIN),
            ..LogOptions::default()
        };
        assert_eq!(field(limit), "options.limit_bytes");
        let fine = LogOptions {
            since_time: Some((1_800_000_000, 999_999_999)),
            tail_lines: Some(i64::MAX),
            limit_bytes: Some(i64::MAX),
            ..LogOptions::default()
        };
        let request = fine.request("c").expect("in range");
        assert_eq!(
            request.since_time.map(|t| t.as_second()),
            Some(1_800_000_000)
        );
    }
}

/// A WatchEvents request.
#[derive(Debug, Clone, Default)]
pub struct WatchEvents {
    pub cluster_id: String,
    pub namespace: String,
    pub object_kind: String,
    pub object_name: String,
    pub type_: String,
    pub snapshot_limit: i32,
    pub resume_token: String,
}

/// One message of an event stream; each carries the token to resume after it. Events are
/// the hub's own (`Arc`), shared with every other stream of the hub.
#[derive(Debug, Clone)]
pub enum EventMessage {
    Snapshot(Arc<EventSummary>, String),
    SnapshotEnd(String),
    Change(ChangeKind, Arc<EventSummary>, String),
    Lagged(u64, String),
}

/// Where a stream resumes: its hub's (epoch, seq), and the Kubernetes resourceVersion to watch
/// from when that hub is not here (another replica, or a hub restarted since).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResumePoint {
    epoch: String,
    seq: u64,
    /// Empty in tokens from before replicas shared clusters (`w1`).
    resource_version: String,
}

fn resume_token(epoch: &str, seq: u64, resource_version: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(format!("w2.{epoch}.{seq}.{resource_version}"))
}

fn parse_resume_token(token: &str) -> Result<Option<ResumePoint>> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("resume_token", "is not a token from a WatchEvents stream");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    if let Some(rest) = text.strip_prefix("w2.") {
        let mut parts = rest.splitn(3, '.');
        return match (parts.next(), parts.next(), parts.next()) {
            (Some(epoch), Some(seq), Some(version)) => Ok(Some(ResumePoint {
                epoch: epoch.to_string(),
                seq: seq.parse().map_err(|_| bad())?,
                resource_version: version.to_string(),
            })),
            _ => Err(bad()),
        };
    }
    parse_resume_token_v1(&text)
        .map(|(epoch, seq)| {
            Some(ResumePoint {
                epoch,
                seq,
                resource_version: String::new(),
            })
        })
        .ok_or_else(bad)
}

fn parse_resume_token_v1(text: &str) -> Option<(String, u64)> {
    let mut parts = text.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("w1"), Some(epoch), Some(seq), None) => Some((epoch.to_string(), seq.parse().ok()?)),
        _ => None,
    }
}

impl LogService {
    /// A newest-first snapshot (or, with a resume token, the changes missed since), then live
    /// events. All watchers of one (cluster, namespace) share one upstream watch.
    pub async fn watch_events(
        &self,
        scope: &Scope,
        r: WatchEvents,
    ) -> Result<impl Stream<Item = Result<EventMessage>> + Send + use<>> {
        if !(r.type_.is_empty() || r.type_ == "Normal" || r.type_ == "Warning") {
            return Err(Error::invalid("type", "must be Normal, Warning or empty"));
        }
        if r.snapshot_limit < 0 {
            return Err(Error::invalid("snapshot_limit", "must not be negative"));
        }
        let limit = match r.snapshot_limit {
            0 => 100,
            n => n.min(1000) as usize,
        };
        let resume = parse_resume_token(&r.resume_token)?;
        // One upstream watch serves every watcher of the namespace, so it runs as Flotilla
        // itself (never impersonating); events carry nothing the role rules hide. The cluster
        // comes first: a missing or invisible one is NOT_FOUND whatever else is asked.
        let (client, _) = self
            .clusters
            .own_client_with_version(scope, &r.cluster_id)
            .await?;
        // One hub of every namespace holds every event of the cluster in memory: only admins
        // may start or join one; everyone else names a namespace.
        if r.namespace.is_empty() && scope.role != crate::auth::Role::Admin {
            return Err(Error::PermissionDenied(
                "watching the events of every namespace takes an admin token; name a namespace"
                    .into(),
            ));
        }
        let permit = self.sessions.open(scope, StreamKind::Events)?;
        let owned = self.owns.as_ref().is_none_or(|owns| owns(&r.cluster_id));
        let shared = match &resume {
            _ if !owned => None,
            // A token with a resourceVersion resumes on the hub that issued it when it still
            // runs here; otherwise on a watch of its own (below), never from a fresh snapshot.
            Some(point) if !point.resource_version.is_empty() => self
                .hubs
                .find(&r.cluster_id, &r.namespace)
                .filter(|hub| hub.epoch == point.epoch),
            _ => Some(self.hubs.hub(&r.cluster_id, &r.namespace, &client.client)),
        };
        let subscription = match shared {
            Some(hub) => {
                let on_last: Arc<dyn Fn() + Send + Sync> = {
                    let hubs = self.hubs.clone();
                    let (cluster, namespace) = (r.cluster_id.clone(), r.namespace.clone());
                    Arc::new(move || hubs.remove_stopped(&cluster, &namespace))
                };
                hub.subscribe(resume.map(|p| (p.epoch, p.seq)), on_last)
                    .await
            }
            // Resumed from another replica or an older hub: a watch of its own from where the
            // stream left off, so nothing created meanwhile is missed. On a replica that does
            // not own the cluster every stream gets a watch of its own (no shared hub here).
            None => {
                let (hub, from_start) = match resume.filter(|p| !p.resource_version.is_empty()) {
                    Some(point) => {
                        let hub = EventHub::start_alone(
                            client.client.clone(),
                            &r.namespace,
                            Some(&point.resource_version),
                        );
                        // Everything it publishes is news to this stream: replay from its start.
                        let from_start = Some((hub.epoch.clone(), 0));
                        (hub, from_start)
                    }
                    None => (
                        EventHub::start_alone(client.client.clone(), &r.namespace, None),
                        None,
                    ),
                };
                hub.subscribe(from_start, Arc::new(|| {})).await
            }
        }
        .map_err(failed(&r.cluster_id))?;
        let keep = move |e: &EventSummary| {
            (r.object_kind.is_empty() || e.involved_object.kind == r.object_kind)
                && (r.object_name.is_empty() || e.involved_object.name == r.object_name)
                && (r.type_.is_empty() || e.type_ == r.type_)
        };
        let shutdown = self.shutdown.clone();
        // Every change reaches every stream of the hub: the work per stream and change is a
        // filter, two reference counts and one shared token (made by the first stream).
        let stream = async_stream::stream! {
            let mut subscription = subscription;
            let epoch = subscription.epoch.clone();
            let token = |change: &Change| {
                change
                    .stream_token
                    .get_or_init(|| resume_token(&epoch, change.seq, &change.resume_version))
                    .clone()
            };
            let mut last = subscription.seq;
            // The newest change seen (None: nothing since the snapshot), for Lagged's token.
            let mut newest: Option<Arc<Change>> = None;
            match subscription.replay.take() {
                Some(missed) => {
                    for change in missed {
                        if keep(&change.event) {
                            yield Ok(EventMessage::Change(change.kind, change.event.clone(), token(&change)));
                        }
                        newest = Some(change);
                    }
                }
                None => {
                    let mut snapshot: Vec<Arc<EventSummary>> =
                        std::mem::take(&mut subscription.snapshot).into_iter().filter(|e| keep(e)).collect();
                    snapshot.sort_by(|a, b| b.last_millis.cmp(&a.last_millis).then_with(|| b.name.cmp(&a.name)));
                    snapshot.truncate(limit);
                    let at = resume_token(&epoch, last, &subscription.resume_version);
                    for event in snapshot {
                        yield Ok(EventMessage::Snapshot(event, at.clone()));
                    }
                    yield Ok(EventMessage::SnapshotEnd(at));
                }
            }
            // Made once: a fresh `cancelled()` per change would queue and unqueue a waiter on
            // the one shutdown token every stream shares.
            let shutting_down = shutdown.cancelled();
            futures::pin_mut!(shutting_down);
            loop {
                let received = tokio::select! {
                    () = &mut shutting_down => {
                        yield Err(Error::Unavailable {
                            reason: "SHUTTING_DOWN",
                            message: "the server is shutting down; reconnect with the last resume_token".into(),
                            retry_after: Some(std::time::Duration::from_secs(1)),
                        });
                        return;
                    }
                    received = subscription.live.recv() => received,
                };
                match received {
                    Ok(change) if change.seq <= last => {}
                    Ok(change) => {
                        last = change.seq;
                        if keep(&change.event) {
                            yield Ok(EventMessage::Change(change.kind, change.event.clone(), token(&change)));
                        }
                        newest = Some(change);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(dropped)) => {
                        let version = newest
                            .as_ref()
                            .map_or(subscription.resume_version.as_str(), |c| c.resume_version.as_str());
                        yield Ok(EventMessage::Lagged(dropped, resume_token(&epoch, last, version)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        yield Err(Error::Unavailable {
                            reason: "WATCH_ENDED",
                            message: "the cluster's event watch ended; reconnect with the last resume_token".into(),
                            retry_after: Some(std::time::Duration::from_secs(1)),
                        });
                        return;
                    }
                }
            }
        };
        Ok(permit.guard(stream))
    }

    /// Upstream event watches running now.
    pub fn running_event_watches(&self) -> usize {
        self.hubs.running()
    }
}
