//! `flotilla.v1.LogStream`. StreamPodLogs is built; StreamWorkloadLogs and WatchEvents answer
//! UNIMPLEMENTED until they are.

use std::sync::Arc;

use futures::StreamExt;
use tonic::{Request, Response, Status, codegen::BoxStream};

use super::pb::{self, log_stream_server::LogStream};
use crate::{
    auth::cluster_scope,
    service::logs::{EntryKind, LogEntry, LogOptions, LogService, PodLogs},
};

pub struct LogStreamApi {
    logs: Arc<LogService>,
}

impl LogStreamApi {
    pub fn new(logs: Arc<LogService>) -> Self {
        LogStreamApi { logs }
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
}

fn options(o: pb::LogOptions) -> LogOptions {
    let (since_seconds, since_millis) = match o.since {
        Some(pb::log_options::Since::SinceSeconds(s)) => (Some(s), None),
        Some(pb::log_options::Since::SinceTime(t)) => (
            None,
            Some(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000),
        ),
        None => (None, None),
    };
    LogOptions {
        follow: o.follow,
        tail_lines: o.tail_lines,
        since_seconds,
        since_millis,
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
