//! Pod logs through the API server (`pods/log`), as a stream of timestamped lines. A line is
//! never held beyond a byte cap: a container that never prints a newline costs at most the cap.

use ::kube::{Api, Client, api::LogParams};
use futures::{AsyncBufRead, AsyncBufReadExt, Stream, StreamExt};
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};

use super::{ClusterError, error::classify};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub container: String,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub previous: bool,
    pub limit_bytes: Option<i64>,
    /// Longest line kept (timestamp included); 0 means [`DEFAULT_LINE_CAP`].
    pub max_line_bytes: usize,
}

/// The line cap when a request names none.
pub const DEFAULT_LINE_CAP: usize = 64 * 1024;

/// One line; `time` is the API server's timestamp (seconds, nanos) when it parsed.
/// `truncated`: the line went on past the cap and the rest of it was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: Option<(i64, i32)>,
    pub content: String,
    pub truncated: bool,
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
        since_time: request.since_time.map(start_of_second),
        tail_lines: request.tail_lines,
        // Always: lines carry their own time, and clients choose whether to see it.
        timestamps: true,
        ..LogParams::default()
    };
    let reader = Api::<Pod>::namespaced(client.clone(), namespace)
        .log_stream(pod, &params)
        .await
        .map_err(classify)?;
    let cap = match request.max_line_bytes {
        0 => DEFAULT_LINE_CAP,
        n => n,
    };
    let since = request
        .since_time
        .map(|t| (t.as_second(), t.subsec_nanosecond()));
    Ok(capped_lines(Box::pin(reader), cap)
        .map(|line| {
            line.map(|raw| {
                let mut line = parse(&raw.text);
                line.truncated = raw.truncated;
                line
            })
            .map_err(|err| ClusterError::Unreachable(format!("the log stream broke: {err}")))
        })
        .filter(move |line| {
            let keep = match (since, line) {
                (Some(since), Ok(line)) => line.time.is_none_or(|time| time >= since),
                _ => true,
            };
            futures::future::ready(keep)
        }))
}

/// The API server takes `sinceTime` in whole seconds, and kube-rs rounds it to the nearest
/// one: a time in the second half of a second would skip the rest of that second (a client
/// resuming at its last line's time would lose lines). Ask from the start of the second and
/// drop the earlier lines here instead.
fn start_of_second(time: Timestamp) -> Timestamp {
    Timestamp::from_second(time.as_second()).unwrap_or(time)
}

/// A line as read, before its timestamp is split off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub text: String,
    pub truncated: bool,
}

struct LineReader<R> {
    reader: R,
    cap: usize,
    line: Vec<u8>,
    /// The current line was already passed on cut; its rest is being skipped.
    skipping: bool,
    /// The cap was reached exactly: whether the line goes on decides "truncated".
    full: bool,
    /// In that state, a '\r' was seen (a CRLF ending may follow).
    full_cr: bool,
}

/// Lines of at most `cap` bytes. A longer line is passed on, marked truncated, as soon as `cap`
/// bytes of it have arrived (so a container that never prints a newline is still seen); the
/// rest of it, up to its newline, is read and dropped, never kept. Invalid UTF-8 is replaced.
pub fn capped_lines<R: AsyncBufRead + Unpin>(
    reader: R,
    cap: usize,
) -> impl Stream<Item = std::io::Result<RawLine>> {
    let state = LineReader {
        reader,
        cap: cap.max(1),
        line: Vec::new(),
        skipping: false,
        full: false,
        full_cr: false,
    };
    futures::stream::try_unfold(state, |mut s| async move {
        let line = s.next_line().await?;
        Ok(line.map(|line| (line, s)))
    })
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    async fn next_line(&mut self) -> std::io::Result<Option<RawLine>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                self.skipping = false;
                self.full = false;
                self.full_cr = false;
                if self.line.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.take(false)));
            }
            let newline = available.iter().position(|b| *b == b'\n');
            if self.skipping {
                match newline {
                    Some(at) => {
                        self.reader.consume_unpin(at + 1);
                        self.skipping = false;
                    }
                    None => {
                        let all = available.len();
                        self.reader.consume_unpin(all);
                    }
                }
                continue;
            }
            if self.full {
                let first = available[0];
                if first == b'\r' && !self.full_cr {
                    self.full_cr = true;
                    self.reader.consume_unpin(1);
                    continue;
                }
                self.full = false;
                self.full_cr = false;
                if first == b'\n' {
                    self.reader.consume_unpin(1);
                    return Ok(Some(self.take(false)));
                }
                self.skipping = true;
                return Ok(Some(self.take(true)));
            }
            let room = self.cap - self.line.len();
            match newline {
                Some(at) if at <= room => {
                    self.line.extend_from_slice(&available[..at]);
                    self.reader.consume_unpin(at + 1);
                    return Ok(Some(self.take(false)));
                }
                _ => {
                    let take = available.len().min(room);
                    self.line.extend_from_slice(&available[..take]);
                    self.reader.consume_unpin(take);
                    if self.line.len() == self.cap {
                        self.full = true;
                    }
                }
            }
        }
    }

    fn take(&mut self, truncated: bool) -> RawLine {
        let mut bytes = std::mem::take(&mut self.line);
        if bytes.last() == Some(&b'\r') && !truncated {
            bytes.pop();
        }
        if truncated {
            // A cut may split a character: drop its incomplete start rather than garble it.
            if let Err(err) = std::str::from_utf8(&bytes)
                && err.error_len().is_none()
            {
                bytes.truncate(err.valid_up_to());
            }
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        };
        RawLine { text, truncated }
    }
}

/// Splits the RFC 3339 timestamp the API server puts before each line.
pub fn parse(line: &str) -> LogLine {
    if let Some((stamp, rest)) = line.split_once(' ')
        && let Ok(time) = stamp.parse::<Timestamp>()
    {
        return LogLine {
            time: Some((time.as_second(), time.subsec_nanosecond())),
            content: rest.to_string(),
            truncated: false,
        };
    }
    LogLine {
        time: None,
        content: line.to_string(),
        truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[test]
    fn since_time_is_asked_from_the_start_of_its_second() {
        let late: Timestamp = "2026-11-26T22:00:01.9Z".parse().expect("time");
        let start: Timestamp = "2026-11-26T22:00:01Z".parse().expect("time");
        assert_eq!(start_of_second(late), start);
        assert_eq!(start_of_second(start), start);
    }

    #[test]
    fn timestamps_are_split_off() {
        let line = parse("2026-11-26T22:00:01.123456789Z hello world");
        assert_eq!(line.content, "hello world");
        assert_eq!(line.time.map(|t| t.1), Some(123_456_789));
        assert_eq!(parse("no stamp here").content, "no stamp here");
    }

    fn read_all(input: &[u8], cap: usize, chunk: usize) -> Vec<RawLine> {
        // A reader that hands out `chunk` bytes at a time, like a network stream.
        let chunks: Vec<std::io::Result<Vec<u8>>> =
            input.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
        let reader = futures::stream::iter(chunks).into_async_read();
        futures::executor::block_on(
            capped_lines(reader, cap)
                .map(|l| l.expect("line"))
                .collect::<Vec<_>>(),
        )
    }

    fn line(text: &str, truncated: bool) -> RawLine {
        RawLine {
            text: text.into(),
            truncated,
        }
    }

    #[test]
    fn long_lines_are_cut_at_the_cap_and_the_rest_skipped() {
        for chunk in [1, 3, 7, 1000] {
            let got = read_all(b"short\nabcdefghij\nabcd\nabcde\r\nlast", 5, chunk);
            assert_eq!(
                got,
                [
                    line("short", false),
                    line("abcde", true),
                    line("abcd", false),
                    line("abcde", false),
                    line("last", false),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_line_without_end_is_passed_on_at_the_cap() {
        use futures::{SinkExt, channel::mpsc};
        // A follow stream that never sends a newline: the cut line must come out anyway.
        let (mut tx, rx) = mpsc::unbounded::<std::io::Result<Vec<u8>>>();
        let lines = capped_lines(rx.into_async_read(), 4);
        futures::pin_mut!(lines);
        futures::executor::block_on(async {
            tx.send(Ok(b"xxxxxxxx".to_vec())).await.expect("send");
            let first = lines.next().await.expect("a line").expect("ok");
            assert_eq!(first, line("xxxx", true));
            tx.send(Ok(b"yyy\nnext\n".to_vec())).await.expect("send");
            let second = lines.next().await.expect("a line").expect("ok");
            assert_eq!(second, line("next", false));
        });
    }

    #[test]
    fn cut_characters_are_dropped_not_garbled() {
        let got = read_all("éé\n".as_bytes(), 3, 10);
        assert_eq!(got, [line("é", true)]);
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
