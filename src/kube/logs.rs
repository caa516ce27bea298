//! Pod logs through the API server (`pods/log`), as a stream of timestamped lines.

use ::kube::{Api, Client, api::LogParams};
use futures::{AsyncBufReadExt, Stream, TryStreamExt};
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};

use super::{ClusterError, connect::classify};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub container: String,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_millis: Option<i64>,
    pub previous: bool,
    pub limit_bytes: Option<i64>,
}

/// One line; `time` is the API server's timestamp (seconds, nanos) when it parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: Option<(i64, i32)>,
    pub content: String,
}

/// The pod's container names, in spec order (init containers excluded).
pub async fn containers(
    client: &Client,
    namespace: &str,
    pod: &str,
) -> Result<Vec<String>, ClusterError> {
    let pod = Api::<Pod>::namespaced(client.clone(), namespace)
        .get(pod)
        .await
        .map_err(classify)?;
    Ok(pod
        .spec
        .map(|s| s.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default())
}

/// Opens the log. Dropping the stream closes the upstream request at once.
pub async fn open(
    client: &Client,
    namespace: &str,
    pod: &str,
    request: &LogRequest,
) -> Result<impl Stream<Item = Result<LogLine, ClusterError>> + Send + use<>, ClusterError> {
    let params = LogParams {
        container: (!request.container.is_empty()).then(|| request.container.clone()),
        follow: request.follow,
        limit_bytes: request.limit_bytes,
        previous: request.previous,
        since_seconds: request.since_seconds,
        since_time: request
            .since_millis
            .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
        tail_lines: request.tail_lines,
        // Always: lines carry their own time, and clients choose whether to see it.
        timestamps: true,
        ..LogParams::default()
    };
    let reader = Api::<Pod>::namespaced(client.clone(), namespace)
        .log_stream(pod, &params)
        .await
        .map_err(classify)?;
    Ok(reader
        .lines()
        .map_err(|err| ClusterError::Unreachable(format!("the log stream broke: {err}")))
        .map_ok(|line| parse(&line)))
}

/// Splits the RFC 3339 timestamp the API server puts before each line.
pub fn parse(line: &str) -> LogLine {
    if let Some((stamp, rest)) = line.split_once(' ')
        && let Ok(time) = stamp.parse::<Timestamp>()
    {
        return LogLine {
            time: Some((time.as_second(), time.subsec_nanosecond())),
            content: rest.to_string(),
        };
    }
    LogLine {
        time: None,
        content: line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_split_off() {
        let line = parse("2026-11-26T22:00:01.123456789Z hello world");
        assert_eq!(line.content, "hello world");
        assert_eq!(line.time.map(|t| t.1), Some(123_456_789));
        assert_eq!(parse("no stamp here").content, "no stamp here");
    }
}

/// A pod of a workload appearing, changing or going away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodChange {
    /// The pod exists; `started` lists containers that have started (their logs can be read).
    Present {
        name: String,
        started: Vec<String>,
    },
    Gone {
        name: String,
    },
}

/// Watches the pods matching `selector` in `namespace`.
pub fn watch_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> impl Stream<Item = Result<PodChange, ClusterError>> + Send + use<> {
    use ::kube::runtime::{WatchStreamExt, watcher};
    use futures::StreamExt;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().labels(selector);
    watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            let change = |pod: &Pod| {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    return PodChange::Gone { name };
                }
                let started = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .map(|cs| {
                        cs.iter()
                            .filter(|c| {
                                c.state
                                    .as_ref()
                                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
                            })
                            .map(|c| c.name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                PodChange::Present { name, started }
            };
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    Some(Ok(change(&pod)))
                }
                Ok(watcher::Event::Delete(pod)) => Some(Ok(PodChange::Gone {
                    name: pod.metadata.name.unwrap_or_default(),
                })),
                Ok(_) => None,
                Err(err) => Some(Err(ClusterError::Other(format!("pod watch: {err}")))),
            }
        })
}
