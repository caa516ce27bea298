//! `flotilla.v1.LogStream`: pod logs, workload logs and event streams.

use std::sync::Arc;

use futures::StreamExt;
use tonic::{Request, Response, Status, codegen::BoxStream};

use super::kube_convert::pod_selection;
use super::pb::{self, log_stream_server::LogStream};
use crate::{
    auth::cluster_scope,
    service::{
        workloads::logs::{
            ChangeKind, EntryKind, EventMessage, LogEntry, LogOptions, LogService, PodLogs,
            WatchEvents,
        },
        workloads::workload_logs::{WorkloadLogService, WorkloadLogs},
    },
};

pub struct LogStreamApi {
    logs: Arc<LogService>,
    workload_logs: Arc<WorkloadLogService>,
}

impl LogStreamApi {
    pub fn new(logs: Arc<LogService>, workload_logs: Arc<WorkloadLogService>) -> Self {
        LogStreamApi {
            logs,
            workload_logs,
        }
    }
}

#[tonic::async_trait]
impl LogStream for LogStreamApi {
    async fn stream_pod_logs(
        &self,
        request: Request<pb::StreamPodLogsRequest>,
    ) -> Result<Response<BoxStream<pb::StreamPodLogsResponse>>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let stream = self
            .logs
            .pod_logs(
                &scope,
                PodLogs {
                    cluster_id: r.cluster_id,
                    namespace: r.namespace,
                    pod: r.pod,
                    container: r.container,
                    options: r.options.map(options).unwrap_or_default(),
                },
            )
            .await?;
        let stream = stream.map(|batch| {
            batch
                .map(|entries| pb::StreamPodLogsResponse {
                    entries: entries.into_iter().map(Into::into).collect(),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn stream_workload_logs(
        &self,
        request: Request<pb::StreamWorkloadLogsRequest>,
    ) -> Result<Response<BoxStream<pb::StreamWorkloadLogsResponse>>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let selection = match r.pods {
            Some(pb::stream_workload_logs_request::Pods::Workload(w)) => {
                pod_selection(Some(w), None)
            }
            Some(pb::stream_workload_logs_request::Pods::LabelSelector(s)) => {
                pod_selection(None, Some(s))
            }
            None => pod_selection(None, None),
        };
        let stream = self
            .workload_logs
            .stream(
                &scope,
                WorkloadLogs {
                    cluster_ids: r.cluster_ids,
                    cluster_label_selector: r.cluster_label_selector,
                    namespace: r.namespace,
                    selection,
                    containers: r.containers,
                    options: r.options.map(options).unwrap_or_default(),
                },
            )
            .await?;
        let stream = stream.map(|batch| {
            batch
                .map(|entries| pb::StreamWorkloadLogsResponse {
                    entries: entries.into_iter().map(Into::into).collect(),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<BoxStream<pb::WatchEventsResponse>>, Status> {
        let scope = cluster_scope(&request);
        let r = request.into_inner();
        let object = r.involved_object.unwrap_or_default();
        let stream = self
            .logs
            .watch_events(
                &scope,
                WatchEvents {
                    cluster_id: r.cluster_id,
                    namespace: r.namespace,
                    object_kind: object.kind,
                    object_name: object.name,
                    type_: r.r#type,
                    snapshot_limit: r.snapshot_limit,
                    resume_token: r.resume_token,
                },
            )
            .await?;
        let stream = stream.map(|message| message.map(event_message).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}

fn event_message(message: EventMessage) -> pb::WatchEventsResponse {
    use pb::WatchEventsResponseType as T;
    let (kind, event, dropped_count, resume_token) = match message {
        // The hub and the other streams hold the same event: this copies it for the wire.
        EventMessage::Snapshot(e, token) => (T::Snapshot, Some(unshare(e)), 0, token),
        EventMessage::SnapshotEnd(token) => (T::SnapshotEnd, None, 0, token),
        EventMessage::Change(kind, e, token) => {
            let kind = match kind {
                ChangeKind::Added => T::Added,
                ChangeKind::Modified => T::Modified,
                ChangeKind::Deleted => T::Deleted,
            };
            (kind, Some(unshare(e)), 0, token)
        }
        EventMessage::Lagged(dropped, token) => (T::Lagged, None, dropped as i64, token),
    };
    pb::WatchEventsResponse {
        r#type: kind.into(),
        event,
        dropped_count,
        resume_token,
    }
}

fn unshare(e: Arc<crate::kube::summary::EventSummary>) -> pb::Event {
    Arc::unwrap_or_clone(e).into()
}

fn options(o: pb::LogOptions) -> LogOptions {
    let (since_seconds, since_time) = match o.since {
        Some(pb::log_options::Since::SinceSeconds(s)) => (Some(s), None),
        // Range-checked by the service, which names the field.
        Some(pb::log_options::Since::SinceTime(t)) => (None, Some((t.seconds, t.nanos))),
        None => (None, None),
    };
    LogOptions {
        follow: o.follow,
        tail_lines: o.tail_lines,
        since_seconds,
        since_time,
        timestamps: o.timestamps,
        previous: o.previous,
        limit_bytes: o.limit_bytes,
        filter: o.filter,
        invert_filter: o.invert_filter,
        match_case: o.match_case,
    }
}

impl From<LogEntry> for pb::LogEntry {
    fn from(e: LogEntry) -> Self {
        let kind = match e.kind {
            EntryKind::Line => pb::LogEntryKind::Line,
            EntryKind::PodStarted => pb::LogEntryKind::PodStarted,
            EntryKind::PodEnded => pb::LogEntryKind::PodEnded,
            EntryKind::Error => pb::LogEntryKind::Error,
            EntryKind::End => pb::LogEntryKind::End,
        };
        pb::LogEntry {
            kind: kind.into(),
            content: e.content,
            time: e
                .time
                .map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
            cluster_id: e.cluster_id,
            namespace: e.namespace,
            pod: e.pod,
            container: e.container,
            truncated: e.truncated,
        }
    }
}
