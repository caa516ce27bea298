//! Live pod logs: validated requests, whole lines batched into messages, filters, truncation,
//! and an end marker; the stream ends at once (closing the upstream) when the client leaves,
//! and with UNAVAILABLE when the server shuts down.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{
    Error, Result,
    clusters_access::{ClusterAccessor, Scope, failed},
};
use crate::kube::logs::{self as kl, LogRequest};

/// Longest line passed on whole; longer ones are cut and marked truncated.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most lines in one message.
const BATCH_LINES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Line,
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

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_millis: Option<i64>,
    pub timestamps: bool,
    pub previous: bool,
    pub limit_bytes: Option<i64>,
    pub filter: String,
    pub invert_filter: bool,
    pub match_case: bool,
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
}

impl LogService {
    pub fn new(clusters: Arc<ClusterAccessor>, shutdown: CancellationToken) -> Self {
        LogService { clusters, shutdown }
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
        let o = &r.options;
        if o.tail_lines.is_some_and(|t| t < 0) {
            return Err(Error::invalid("options.tail_lines", "must not be negative"));
        }
        if o.limit_bytes.is_some_and(|l| l <= 0) {
            return Err(Error::invalid("options.limit_bytes", "must be positive"));
        }
        if o.since_seconds.is_some_and(|s| s <= 0) {
            return Err(Error::invalid("options.since_seconds", "must be positive"));
        }
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
        let request = LogRequest {
            container: container.clone(),
            follow: o.follow,
            tail_lines: o.tail_lines,
            since_seconds: o.since_seconds,
            since_millis: o.since_millis,
            previous: o.previous,
            limit_bytes: o.limit_bytes,
        };
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
        let shutdown = self.shutdown.clone();
        Ok(async_stream::stream! {
            let batches = lines.ready_chunks(BATCH_LINES);
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
                for line in batch {
                    match line {
                        Ok(line) if filter.keeps(&line.content) => {
                            entries.push(entry(&template, line, timestamps));
                        }
                        Ok(_) => {}
                        Err(err) => {
                            failure = Some(failed(&cluster_id)(err));
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
            yield Ok(vec![LogEntry { kind: EntryKind::End, ..template.clone() }]);
        })
    }
}

fn entry(template: &LogEntry, line: kl::LogLine, timestamps: bool) -> LogEntry {
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
    let truncated = content.len() > MAX_LINE_BYTES;
    if truncated {
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
struct Filter {
    needle: String,
    invert: bool,
    match_case: bool,
}

impl Filter {
    fn new(o: &LogOptions) -> Filter {
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

    fn keeps(&self, line: &str) -> bool {
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
        let e = entry(
            &template,
            kl::LogLine {
                time: None,
                content: long,
            },
            false,
        );
        assert!(e.truncated && e.content.len() <= MAX_LINE_BYTES);
    }
}
