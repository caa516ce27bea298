//! StreamPodLogs through KWOK and the real API server: follow, tail, previous, containers,
//! cancellation closing the upstream request, and shutdown ending streams with UNAVAILABLE.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use support::{
    kube::{self as kenv, TestNamespace},
    kubeconfigs,
    server::{AuthedChannel, TestServer},
};
use tonic::{Code, Streaming};

/// The cancellation test counts open log requests on the API server, so no other test of this
/// file may open or close one meanwhile: they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn server_with_cluster() -> TestServer {
    let server = TestServer::start().await;
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "local".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");
    server
}

async fn create_pod(ns: &TestNamespace, name: &str, containers: &[&str]) {
    let containers: Vec<_> = containers
        .iter()
        .map(|c| serde_json::json!({"name": c, "image": "example.com/log:1"}))
        .collect();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": "kwok-a1", "containers": containers}
    }))
    .expect("pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

fn request(ns: &str, pod: &str, options: pb::LogOptions) -> pb::StreamPodLogsRequest {
    pb::StreamPodLogsRequest {
        cluster_id: "local".into(),
        namespace: ns.into(),
        pod: pod.into(),
        container: String::new(),
        options: Some(options),
    }
}

/// Lines until `n` have arrived (or the END entry), with a bound on the wait.
async fn read_lines(
    stream: &mut Streaming<pb::StreamPodLogsResponse>,
    n: usize,
) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut ended = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines.len() < n && !ended {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, stream.message())
            .await
            .expect("lines in time")
            .expect("stream ok");
        let Some(message) = message else { break };
        for entry in message.entries {
            match entry.kind() {
                pb::LogEntryKind::Line => {
                    assert_eq!(entry.container, "main");
                    assert!(entry.time.is_some(), "lines carry their timestamp");
                    lines.push(entry.content);
                }
                pb::LogEntryKind::End => ended = true,
                other => panic!("unexpected {other:?}: {}", entry.content),
            }
        }
    }
    (lines, ended)
}

/// Open `pods/log` requests on the API server, from its own metrics.
async fn open_log_requests() -> i64 {
    let client = kenv::client().await;
    let text = client
        .request_text(
            http::Request::get("/metrics")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("metrics");
    text.lines()
        .filter(|l| {
            l.starts_with("apiserver_longrunning_requests{") && l.contains("subresource=\"log\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as i64
}

#[tokio::test]
async fn follow_tail_previous_and_containers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let ns = TestNamespace::create(&kenv::client().await, "logs").await;
    create_pod(&ns, "single", &["main"]).await;
    create_pod(&ns, "double", &["main", "sidecar"]).await;
    let file = ns.pod_logs("single").await;
    for i in 0..3 {
        file.stdout(&format!("before {i}"));
    }
    let server = server_with_cluster().await;
    let mut logs = LogStreamClient::new(server.channel().await);

    // Follow: the existing lines, then lines appended after the request started, in order.
    let mut follow = logs
        .stream_pod_logs(request(
            ns.name(),
            "single",
            pb::LogOptions {
                follow: true,
                ..Default::default()
            },
        ))
        .await
        .expect("follow")
        .into_inner();
    let (first, _) = read_lines(&mut follow, 3).await;
    assert_eq!(first, ["before 0", "before 1", "before 2"]);
    for i in 0..50 {
        file.stdout(&format!("after {i}"));
    }
    let (later, _) = read_lines(&mut follow, 50).await;
    let expected: Vec<String> = (0..50).map(|i| format!("after {i}")).collect();
    assert_eq!(later, expected, "each line once, in order");
    drop(follow);

    // Tail, without follow: the last lines, then END.
    let mut tail = logs
        .stream_pod_logs(request(
            ns.name(),
            "single",
            pb::LogOptions {
                tail_lines: Some(2),
                ..Default::default()
            },
        ))
        .await
        .expect("tail")
        .into_inner();
    let (tailed, ended) = read_lines(&mut tail, 100).await;
    assert_eq!(tailed, ["after 48", "after 49"]);
    assert!(ended, "an END entry closes a finished stream");

    // Since: only lines newer than the given time (old lines were written an hour back).
    let old =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(1);
    let ns_since = ns.name().to_string();
    create_pod(&ns, "aged", &["main"]).await;
    let aged = ns.pod_logs("aged").await;
    aged.append_at(old, "stdout", "an hour old");
    aged.stdout("fresh");
    for since in [
        pb::log_options::Since::SinceSeconds(600),
        pb::log_options::Since::SinceTime(prost_types::Timestamp {
            seconds: old.as_second() + 60,
            nanos: 0,
        }),
    ] {
        let mut recent = logs
            .stream_pod_logs(request(
                &ns_since,
                "aged",
                pb::LogOptions {
                    since: Some(since),
                    ..Default::default()
                },
            ))
            .await
            .expect("since")
            .into_inner();
        let (lines, ended) = read_lines(&mut recent, 10).await;
        assert_eq!(lines, ["fresh"]);
        assert!(ended);
    }

    // A filter, inverted.
    let mut filtered = logs
        .stream_pod_logs(request(
            ns.name(),
            "single",
            pb::LogOptions {
                filter: "AFTER".into(),
                invert_filter: true,
                ..Default::default()
            },
        ))
        .await
        .expect("filtered")
        .into_inner();
    let (kept, _) = read_lines(&mut filtered, 100).await;
    assert_eq!(kept, ["before 0", "before 1", "before 2"]);

    // Previous: the log of the terminated instance.
    let mut previous = logs
        .stream_pod_logs(request(
            ns.name(),
            "single",
            pb::LogOptions {
                previous: true,
                ..Default::default()
            },
        ))
        .await
        .expect("previous")
        .into_inner();
    let (old, _) = read_lines(&mut previous, 10).await;
    assert_eq!(old, [format!("previous log of {}/single", ns.name())]);

    // Several containers: one must be chosen, and the message lists them.
    let status = logs
        .stream_pod_logs(request(ns.name(), "double", pb::LogOptions::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("main, sidecar"),
        "{}",
        status.message()
    );
    let missing = logs
        .stream_pod_logs(pb::StreamPodLogsRequest {
            container: "nope".into(),
            ..request(ns.name(), "single", pb::LogOptions::default())
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let no_pod = logs
        .stream_pod_logs(request(ns.name(), "ghost", pb::LogOptions::default()))
        .await
        .unwrap_err();
    assert_eq!(no_pod.code(), Code::NotFound);
    server.shutdown().await;
    ns.cleanup().await;
}

async fn open_follow(
    logs: &mut LogStreamClient<AuthedChannel>,
    ns: &str,
) -> Streaming<pb::StreamPodLogsResponse> {
    let mut stream = logs
        .stream_pod_logs(request(
            ns,
            "single",
            pb::LogOptions {
                follow: true,
                ..Default::default()
            },
        ))
        .await
        .expect("follow")
        .into_inner();
    read_lines(&mut stream, 1).await;
    stream
}

#[tokio::test]
async fn cancelling_closes_upstream_and_shutdown_ends_streams() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let ns = TestNamespace::create(&kenv::client().await, "logcancel").await;
    create_pod(&ns, "single", &["main"]).await;
    let file = ns.pod_logs("single").await;
    file.stdout("hello");
    let server = server_with_cluster().await;
    let mut logs = LogStreamClient::new(server.channel().await);

    let before = open_log_requests().await;
    let stream = open_follow(&mut logs, ns.name()).await;
    assert_eq!(
        open_log_requests().await,
        before + 1,
        "one upstream log request while following"
    );
    drop(stream);
    let dropped = Instant::now();
    loop {
        if open_log_requests().await == before {
            break;
        }
        assert!(
            dropped.elapsed() < Duration::from_secs(1),
            "upstream still open after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Shutdown: an open stream ends with UNAVAILABLE, not silently.
    let mut stream = open_follow(&mut logs, ns.name()).await;
    let shutting_down = tokio::spawn(server.shutdown());
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => break status,
            }
        }
    })
    .await
    .expect("stream ended in time");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    shutting_down.await.expect("shutdown");
    ns.cleanup().await;
}

#[tokio::test]
async fn long_lines_are_cut_and_messages_stay_under_a_mebibyte() {
    use prost::Message;
    let _turn = ONE_AT_A_TIME.lock().await;
    let ns = TestNamespace::create(&kenv::client().await, "longlines").await;
    create_pod(&ns, "single", &["main"]).await;
    let file = ns.pod_logs("single").await;
    file.stdout(&"y".repeat(200 * 1024));
    file.stdout("after the long line");
    let wide: Vec<String> = (0..40)
        .map(|i| format!("{i:02}{}", "w".repeat(60 * 1024)))
        .collect();
    for line in &wide {
        file.stdout(line);
    }
    let server = server_with_cluster().await;
    let mut logs = LogStreamClient::new(server.channel().await);
    let mut stream = logs
        .stream_pod_logs(request(ns.name(), "single", pb::LogOptions::default()))
        .await
        .expect("logs")
        .into_inner();
    let mut entries = Vec::new();
    let mut largest = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(message) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        stream.message(),
    )
    .await
    .expect("in time")
    .expect("stream ok")
    {
        largest = largest.max(message.encoded_len());
        entries.extend(message.entries);
    }
    assert!(
        largest <= 1024 * 1024,
        "a message of {largest} bytes; at most 1 MiB each"
    );
    let lines: Vec<_> = entries
        .iter()
        .filter(|e| e.kind() == pb::LogEntryKind::Line)
        .collect();
    assert_eq!(lines.len(), 42, "every line, the long one once");
    assert!(lines[0].truncated, "the long line is marked truncated");
    assert_eq!(lines[0].content, "y".repeat(64 * 1024), "cut at 64 KiB");
    assert_eq!(lines[1].content, "after the long line");
    assert!(!lines[1].truncated);
    for (entry, line) in lines[2..].iter().zip(&wide) {
        assert!(!entry.truncated);
        assert!(&entry.content == line, "60 KiB lines pass whole");
    }
    assert_eq!(
        entries.last().map(|e| e.kind()),
        Some(pb::LogEntryKind::End)
    );
    server.shutdown().await;
    ns.cleanup().await;
}
