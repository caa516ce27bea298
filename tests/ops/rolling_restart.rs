//! A rolling restart under load: two replicas (processes of the `flotilla` binary) on one
//! PostgreSQL; a log follower and an event follower, given both addresses, follow a real pod
//! and a real namespace while each replica in turn gets SIGTERM and is started again.
//!
//! The followers do what a client must do (the generated clients have no follow-with-resume
//! helper for logs or events yet, so this test does it in Rust): on UNAVAILABLE, move to the
//! other address and open the stream again — events with the last `resume_token` (a token from
//! another replica or an earlier process is answered with a fresh snapshot), logs with
//! `since_time` set to the last line's time — and drop what they already had (events by uid,
//! log lines at or before the last line's time).
//!
//! Checked: every replica drains within its grace period and exits 0; every stream that ended
//! ended with UNAVAILABLE / SHUTTING_DOWN (none was cut); unary calls during the restarts
//! either succeed or fail with UNAVAILABLE; and the followers end with exactly what the API
//! server holds — every log line of the pod and every event of the namespace, once.

use flotilla_test_support as support;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams, PostParams};
use support::{
    db::TestDb,
    kube::{self as kenv, TestNamespace},
    kubeconfigs,
    process::free_port,
    server::{ADMIN_TOKEN, AuthedChannel, Bearer},
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const FLOTILLA: &str = env!("CARGO_BIN_EXE_flotilla");
const LAST_LINE: &str = "line-end";
const LAST_EVENT: &str = "ev-end";

/// One replica: a `flotilla serve` process on a fixed port, started again on the same one.
struct Replica {
    port: u16,
    database_url: String,
    key_file: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn new(name: &str, dir: &Path, database_url: &str, key_file: &Path) -> Replica {
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir).expect("data dir");
        Replica {
            port: free_port(),
            database_url: database_url.to_string(),
            key_file: key_file.to_path_buf(),
            log: dir.join(format!("{name}.log")),
            data_dir,
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("replica log");
        let child = Command::new(FLOTILLA)
            .args([
                "serve",
                "--rate-limit",
                "0",
                "--peer-rate-limit",
                "0",
                "--listen",
            ])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--master-key-file")
            .arg(&self.key_file)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .env_remove("FLOTILLA_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a replica");
        self.child = Some(child);
        let channel = support::process::connect(&self.url()).await;
        let mut health = HealthClient::new(channel);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "replica {} not ready", self.port);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, and the process must end by itself, successfully, within the grace period
    /// (9 s by default) plus a margin.
    async fn terminate(&mut self) -> Duration {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        loop {
            if let Some(exit) = child.try_wait().expect("wait") {
                assert!(exit.success(), "replica {} exited with {exit}", self.port);
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "replica {} did not stop within 15 s of SIGTERM",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn authed(url: &str) -> Option<AuthedChannel> {
    let channel = Channel::from_shared(url.to_string())
        .expect("url")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()?;
    Some(InterceptedService::new(
        channel,
        Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}"))),
    ))
}

/// How streams that ended ended: (code, message).
type Endings = Arc<Mutex<Vec<(Code, String)>>>;

/// Follows the pod's log across replicas; returns the line contents, each once, in order.
async fn follow_logs(addresses: Vec<String>, namespace: String, endings: Endings) -> Vec<String> {
    let mut lines = Vec::new();
    let mut last_time: Option<(i64, i32)> = None;
    let mut at = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            Instant::now() < deadline,
            "log follower: no {LAST_LINE} in time"
        );
        let Some(channel) = authed(&addresses[at]).await else {
            at = (at + 1) % addresses.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let options = pb::LogOptions {
            follow: true,
            since: last_time.map(|(seconds, nanos)| {
                pb::log_options::Since::SinceTime(prost_types::Timestamp { seconds, nanos })
            }),
            ..Default::default()
        };
        let opened = LogStreamClient::new(channel)
            .stream_pod_logs(pb::StreamPodLogsRequest {
                cluster_id: "a".into(),
                namespace: namespace.clone(),
                pod: "talker".into(),
                container: String::new(),
                options: Some(options),
            })
            .await;
        let mut stream = match opened {
            Ok(s) => s.into_inner(),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "opening: {status:?}");
                at = (at + 1) % addresses.len();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(batch)) => {
                    for entry in batch.entries {
                        if entry.kind() != pb::LogEntryKind::Line {
                            continue;
                        }
                        let time = entry.time.map(|t| (t.seconds, t.nanos)).expect("time");
                        // Resuming at since_time repeats lines at or after it: keep only newer.
                        if last_time.is_some_and(|last| time <= last) {
                            continue;
                        }
                        last_time = Some(time);
                        let done = entry.content == LAST_LINE;
                        lines.push(entry.content);
                        if done {
                            return lines;
                        }
                    }
                }
                Ok(None) => {
                    endings
                        .lock()
                        .expect("lock")
                        .push((Code::Ok, "log stream ended without a status".into()));
                    break;
                }
                Err(status) => {
                    endings
                        .lock()
                        .expect("lock")
                        .push((status.code(), status.message().to_string()));
                    break;
                }
            }
        }
        at = (at + 1) % addresses.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Follows the namespace's events across replicas; returns event names, each once.
async fn follow_events(addresses: Vec<String>, namespace: String, endings: Endings) -> Vec<String> {
    let mut names = Vec::new();
    let mut seen = HashSet::new();
    let mut resume_token = String::new();
    let mut at = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            Instant::now() < deadline,
            "event follower: no {LAST_EVENT} in time"
        );
        let Some(channel) = authed(&addresses[at]).await else {
            at = (at + 1) % addresses.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let opened = LogStreamClient::new(channel)
            .watch_events(pb::WatchEventsRequest {
                cluster_id: "a".into(),
                namespace: namespace.clone(),
                snapshot_limit: 1000,
                resume_token: resume_token.clone(),
                ..Default::default()
            })
            .await;
        let mut stream = match opened {
            Ok(s) => s.into_inner(),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "opening: {status:?}");
                at = (at + 1) % addresses.len();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    use pb::WatchEventsResponseType as T;
                    assert_ne!(message.r#type(), T::Lagged, "the follower never lags here");
                    if !message.resume_token.is_empty() {
                        resume_token = message.resume_token.clone();
                    }
                    if !matches!(message.r#type(), T::Snapshot | T::Added | T::Modified) {
                        continue;
                    }
                    let event = message.event.expect("event");
                    if seen.insert(event.uid.clone()) {
                        let done = event.name == LAST_EVENT;
                        names.push(event.name);
                        if done {
                            return names;
                        }
                    }
                }
                Ok(None) => {
                    endings
                        .lock()
                        .expect("lock")
                        .push((Code::Ok, "event stream ended without a status".into()));
                    break;
                }
                Err(status) => {
                    endings
                        .lock()
                        .expect("lock")
                        .push((status.code(), status.message().to_string()));
                    break;
                }
            }
        }
        at = (at + 1) % addresses.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_event(ns: &TestNamespace, name: &str) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let event: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "talker", "namespace": ns.name()},
        "reason": "Rolling", "message": format!("{name} happened"), "type": "Normal",
        "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": "flotilla-test"}
    }))
    .expect("event");
    ns.api::<Event>()
        .create(&PostParams::default(), &event)
        .await
        .expect("create event");
}

/// GetCluster in a loop against one replica; returns every code seen. A call that races the
/// replica's connection closing (sent as the GOAWAY arrives, so no handler ever saw it) is
/// reported by tonic's client as Unknown "transport error", where grpc-go would say UNAVAILABLE:
/// it is counted as Unavailable, the code clients retry; any other Unknown is kept as it is.
async fn unary_calls(url: String, stop: tokio_util::sync::CancellationToken) -> Vec<Code> {
    let mut codes = Vec::new();
    let Some(channel) = authed(&url).await else {
        return codes;
    };
    let mut clusters = ClusterServiceClient::new(channel);
    while !stop.is_cancelled() {
        let code = match clusters
            .get_cluster(pb::GetClusterRequest {
                cluster_id: "a".into(),
            })
            .await
        {
            Ok(_) => Code::Ok,
            Err(status)
                if status.code() == Code::Unknown
                    && status.message().starts_with("transport error") =>
            {
                eprintln!("a call raced the connection closing: {}", status.message());
                Code::Unavailable
            }
            Err(status) => status.code(),
        };
        codes.push(code);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    codes
}

#[tokio::test]
async fn rolling_restart_loses_no_log_line_and_no_event() {
    let kube = kenv::client().await;
    let ns = TestNamespace::create(&kube, "ops-roll").await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "talker"},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/log:1"}]}
    }))
    .expect("pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let log_file = ns.pod_logs("talker").await;

    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("master.keys");
    let mut a = Replica::new("a", dir.path(), &db.url, &key_file);
    let mut b = Replica::new("b", dir.path(), &db.url, &key_file);
    a.start().await;
    b.start().await;
    ClusterServiceClient::new(authed(&a.url()).await.expect("replica a"))
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "a".into(),
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

    let addresses = vec![a.url(), b.url()];
    let endings: Endings = Arc::default();
    let logs = tokio::spawn(follow_logs(
        addresses.clone(),
        ns.name().to_string(),
        endings.clone(),
    ));
    let events = tokio::spawn(follow_events(
        addresses.clone(),
        ns.name().to_string(),
        endings.clone(),
    ));

    // Lines and events keep coming through both restarts.
    let writing = tokio_util::sync::CancellationToken::new();
    let writer = {
        let writing = writing.clone();
        let ns_name = ns.name().to_string();
        let client = kube.clone();
        let log_file = log_file.clone();
        tokio::spawn(async move {
            let events: kube::Api<Event> = kube::Api::namespaced(client, &ns_name);
            let mut i = 0;
            while !writing.is_cancelled() {
                log_file.stdout(&format!("line-{i:04}"));
                if i % 2 == 0 {
                    let now = k8s_openapi::jiff::Timestamp::now().to_string();
                    let event: Event = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": format!("ev-{i:04}")},
                        "involvedObject": {"kind": "Pod", "name": "talker", "namespace": ns_name},
                        "reason": "Rolling", "message": "rolling", "type": "Normal",
                        "firstTimestamp": now, "lastTimestamp": now,
                        "source": {"component": "flotilla-test"}
                    }))
                    .expect("event");
                    events
                        .create(&PostParams::default(), &event)
                        .await
                        .expect("create event");
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let stop_unary = tokio_util::sync::CancellationToken::new();
    let unary_a = tokio::spawn(unary_calls(a.url(), stop_unary.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let drained_a = a.terminate().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.start().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unary_b = tokio::spawn(unary_calls(b.url(), stop_unary.clone()));
    let drained_b = b.terminate().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.start().await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    writing.cancel();
    writer.await.expect("writer");
    log_file.stdout(LAST_LINE);
    create_event(&ns, LAST_EVENT).await;
    let followed_lines = tokio::time::timeout(Duration::from_secs(60), logs)
        .await
        .expect("log follower done in time")
        .expect("log follower");
    let followed_events = tokio::time::timeout(Duration::from_secs(60), events)
        .await
        .expect("event follower done in time")
        .expect("event follower");
    stop_unary.cancel();
    let unary: Vec<Code> = [unary_a, unary_b]
        .into_iter()
        .map(|h| async { h.await.expect("unary task") })
        .collect::<futures::future::JoinAll<_>>()
        .await
        .concat();

    // Every replica drained in its grace period, without closing calls by force.
    for (name, took) in [("a", drained_a), ("b", drained_b)] {
        assert!(
            took < Duration::from_secs(9),
            "replica {name} took {took:?} to drain"
        );
    }
    for replica in [&a, &b] {
        let log = std::fs::read_to_string(&replica.log).unwrap_or_default();
        assert!(
            !log.contains("did not finish in time"),
            "a replica closed calls by force:\n{log}"
        );
    }
    // Every stream the restarts ended, ended cleanly, as clients retry.
    let endings = endings.lock().expect("lock").clone();
    assert!(
        endings.len() >= 4,
        "each follower was moved twice: {endings:?}"
    );
    for (code, message) in &endings {
        assert_eq!(*code, Code::Unavailable, "{message}");
        assert!(message.contains("shutting down"), "{message}");
    }
    assert!(unary.contains(&Code::Ok), "unary calls were answered");
    for code in &unary {
        assert!(
            matches!(code, Code::Ok | Code::Unavailable),
            "a unary call ended with {code:?}"
        );
    }

    // Compared with what the API server holds.
    let served = ns
        .api::<Pod>()
        .logs("talker", &LogParams::default())
        .await
        .expect("pod log");
    let expected_lines: Vec<String> = served.lines().map(str::to_string).collect();
    assert!(
        expected_lines.len() > 50,
        "{} lines written",
        expected_lines.len()
    );
    assert_eq!(followed_lines, expected_lines, "log lines, in order, once");

    let mut expected_events: Vec<String> = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|e| e.metadata.name)
        .collect();
    expected_events.sort();
    let mut got = followed_events.clone();
    got.sort();
    assert_eq!(got, expected_events, "every event of the namespace, once");
    ns.cleanup().await;
}

/// Resuming where a follower stopped: `since_time` set to the last line's own time, in the
/// second half of its second. Every later line comes back (the line itself too: since_time is
/// inclusive), none from before.
#[tokio::test]
async fn since_time_late_in_a_second_loses_nothing_of_that_second() {
    let kube = kenv::client().await;
    let ns = TestNamespace::create(&kube, "ops-since").await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "talker"},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/log:1"}]}
    }))
    .expect("pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let log_file = ns.pod_logs("talker").await;
    // Four lines in one second, then one in the next.
    let times = [
        "2026-03-01T10:00:07.100Z",
        "2026-03-01T10:00:07.600Z",
        "2026-03-01T10:00:07.700Z",
        "2026-03-01T10:00:07.900Z",
        "2026-03-01T10:00:08.200Z",
    ];
    for (i, at) in times.iter().enumerate() {
        log_file.append_at(at.parse().expect("time"), "stdout", &format!("line-{i}"));
    }
    let server = support::server::TestServer::start().await;
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "a".into(),
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
    let since: k8s_openapi::jiff::Timestamp = times[1].parse().expect("time");
    let mut stream = LogStreamClient::new(server.channel().await)
        .stream_pod_logs(pb::StreamPodLogsRequest {
            cluster_id: "a".into(),
            namespace: ns.name().into(),
            pod: "talker".into(),
            container: String::new(),
            options: Some(pb::LogOptions {
                since: Some(pb::log_options::Since::SinceTime(prost_types::Timestamp {
                    seconds: since.as_second(),
                    nanos: since.subsec_nanosecond(),
                })),
                ..Default::default()
            }),
        })
        .await
        .expect("open")
        .into_inner();
    let mut lines = Vec::new();
    while let Some(batch) = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("in time")
        .expect("stream ok")
    {
        lines.extend(
            batch
                .entries
                .into_iter()
                .filter(|e| e.kind() == pb::LogEntryKind::Line)
                .map(|e| e.content),
        );
    }
    assert_eq!(lines, ["line-1", "line-2", "line-3", "line-4"]);
    server.shutdown().await;
    ns.cleanup().await;
}
