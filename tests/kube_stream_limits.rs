//! Limits of long streams (issue #12): a line that never ends costs the server at most the line
//! cap (the real binary's RSS, from /proc), per-token stream caps, streams of a revoked or
//! expired token ending with UNAUTHENTICATED, and numbers that would overflow refused with
//! INVALID_ARGUMENT naming the field.

use flotilla_test_support as support;

use std::{
    io::Write,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, admin_service_client::AdminServiceClient,
    cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use support::{
    kube::{self as kenv, PodLogFile, TestNamespace},
    kubeconfigs,
    server::{ADMIN_TOKEN, AuthedChannel, Bearer, TestServer},
};
use tonic::{Code, Status, Streaming, service::interceptor::InterceptedService};
use tonic_types::StatusExt;

const MIB: u64 = 1024 * 1024;
/// The content cap of one line (`service::workloads::logs::MAX_LINE_BYTES`), written out on purpose.
const LINE_CAP: usize = 64 * 1024;

async fn import_local(channel: AuthedChannel) {
    ClusterServiceClient::new(channel)
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
}

async fn create_pod(ns: &TestNamespace, name: &str) {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/log:1"}]}
    }))
    .expect("pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

fn pod_request(ns: &str, pod: &str, options: pb::LogOptions) -> pb::StreamPodLogsRequest {
    pb::StreamPodLogsRequest {
        cluster_id: "local".into(),
        namespace: ns.into(),
        pod: pod.into(),
        container: String::new(),
        options: Some(options),
    }
}

/// Appends `bytes` of 'x' as CRI *partial* entries (16 KiB each, as container runtimes split
/// long output): one line with no end.
fn append_endless_line(file: &PodLogFile, bytes: usize) {
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(file.path())
        .expect("open log file");
    let mut f = std::io::BufWriter::new(f);
    let chunk = "x".repeat(16 * 1024);
    let stamp = k8s_openapi::jiff::Timestamp::now().to_string();
    for _ in 0..bytes / chunk.len() {
        writeln!(f, "{stamp} stdout P {chunk}").expect("write");
    }
    f.flush().expect("flush");
}

/// The real binary, serving on a loopback port with a known admin token.
struct Binary {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Binary {
    async fn start() -> Binary {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args([
                "serve",
                "--listen",
                &addr,
                "--rate-limit",
                "0",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .env("FLOTILLA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start flotilla");
        let binary = Binary {
            child,
            addr,
            _dir: dir,
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(&binary.addr).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "not listening");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        binary
    }

    async fn channel(&self) -> AuthedChannel {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        InterceptedService::new(channel, Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}"))))
    }

    fn status_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {key} in {status}"))
    }

    /// Resident memory now, in bytes.
    fn rss(&self) -> u64 {
        self.status_kib("VmRSS:") * 1024
    }

    /// Starts measuring the peak anew: resets the kernel's high-water mark (VmHWM).
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("reset the peak RSS");
    }

    /// Peak resident memory since the last reset, in bytes.
    fn peak(&self) -> u64 {
        self.status_kib("VmHWM:") * 1024
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every entry until `stop` says so (or END), within a bound.
async fn read_entries(
    stream: &mut Streaming<pb::StreamPodLogsResponse>,
    timeout: Duration,
    mut stop: impl FnMut(&pb::LogEntry) -> bool,
) -> Vec<pb::LogEntry> {
    let mut entries = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, stream.message())
            .await
            .expect("entries in time")
            .expect("stream ok");
        let Some(message) = message else {
            return entries;
        };
        for entry in message.entries {
            let done = entry.kind() == pb::LogEntryKind::End || stop(&entry);
            entries.push(entry);
            if done {
                return entries;
            }
        }
    }
}

fn assert_cut_line(entry: &pb::LogEntry) {
    assert_eq!(entry.kind(), pb::LogEntryKind::Line);
    assert!(entry.truncated, "the cut line is marked truncated");
    assert_eq!(entry.content.len(), LINE_CAP, "cut at the cap");
    assert!(entry.content.bytes().all(|b| b == b'x'), "the line's start");
}

#[tokio::test]
async fn a_line_without_newline_costs_at_most_the_cap() {
    let ns = TestNamespace::create(&kenv::client().await, "giantline").await;
    create_pod(&ns, "giant").await;
    let file = ns.pod_logs("giant").await;
    file.stdout("warm");
    let server = Binary::start().await;
    import_local(server.channel().await).await;
    let mut logs = LogStreamClient::new(server.channel().await);

    // Warm up every connection and pool first, so what follows measures the stream alone.
    let mut warm = logs
        .stream_pod_logs(pod_request(ns.name(), "giant", pb::LogOptions::default()))
        .await
        .expect("warm up")
        .into_inner();
    let entries = read_entries(&mut warm, Duration::from_secs(20), |_| false).await;
    assert_eq!(entries[0].content, "warm");
    drop(warm);
    append_endless_line(&file, 50 * MIB as usize);

    // Without follow: the log ends inside the 50 MiB line.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.reset_peak();
    let before = server.rss();
    let mut stream = logs
        .stream_pod_logs(pod_request(ns.name(), "giant", pb::LogOptions::default()))
        .await
        .expect("read")
        .into_inner();
    let entries = read_entries(&mut stream, Duration::from_secs(120), |_| false).await;
    let kinds: Vec<_> = entries.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            pb::LogEntryKind::Line,
            pb::LogEntryKind::Line,
            pb::LogEntryKind::End
        ],
        "warm, the cut line, END"
    );
    assert_cut_line(&entries[1]);
    let growth = server.peak().saturating_sub(before);
    eprintln!(
        "read: RSS {} KiB before, peak growth {} KiB",
        before / 1024,
        growth / 1024
    );
    assert!(
        growth < 10 * MIB,
        "reading a 50 MiB line raised the server's peak RSS by {} KiB",
        growth / 1024
    );
    drop(stream);

    // Following: the cut line arrives while the line is still going on; once it ends, the
    // next line arrives whole.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.reset_peak();
    let before = server.rss();
    let mut follow = logs
        .stream_pod_logs(pod_request(
            ns.name(),
            "giant",
            pb::LogOptions {
                follow: true,
                ..Default::default()
            },
        ))
        .await
        .expect("follow")
        .into_inner();
    let entries = read_entries(&mut follow, Duration::from_secs(120), |e| e.truncated).await;
    assert_eq!(entries.len(), 2, "warm, then the cut line");
    assert_cut_line(&entries[1]);
    file.stdout("end of the giant line");
    file.stdout("after the giant line");
    let entries = read_entries(&mut follow, Duration::from_secs(120), |_| true).await;
    assert_eq!(entries[0].content, "after the giant line");
    assert!(!entries[0].truncated);
    let growth = server.peak().saturating_sub(before);
    eprintln!(
        "follow: RSS {} KiB before, peak growth {} KiB",
        before / 1024,
        growth / 1024
    );
    assert!(
        growth < 10 * MIB,
        "following a 50 MiB line raised the server's peak RSS by {} KiB",
        growth / 1024
    );
    drop(follow);
    drop(server);
    ns.cleanup().await;
}

async fn token(
    admin: &mut AdminServiceClient<AuthedChannel>,
    name: &str,
    expire_in: Option<Duration>,
) -> (String, String) {
    let reply = admin
        .create_api_token(pb::CreateApiTokenRequest {
            name: name.into(),
            role: pb::Role::Viewer.into(),
            cluster_ids: Vec::new(),
            expire_time: expire_in
                .map(|d| prost_types::Timestamp::from(std::time::SystemTime::now() + d)),
        })
        .await
        .expect("create token")
        .into_inner();
    (reply.token.expect("token").id, reply.secret)
}

fn events_request(ns: &str) -> pb::WatchEventsRequest {
    pb::WatchEventsRequest {
        cluster_id: "local".into(),
        namespace: ns.into(),
        ..Default::default()
    }
}

async fn watch_events(
    server: &TestServer,
    secret: &str,
    ns: &str,
) -> Result<Streaming<pb::WatchEventsResponse>, Status> {
    let mut client = LogStreamClient::new(server.channel_as(Some(secret)).await);
    let mut stream = client.watch_events(events_request(ns)).await?.into_inner();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("snapshot in time")?
            .expect("open");
        if message.r#type() == pb::WatchEventsResponseType::SnapshotEnd {
            return Ok(stream);
        }
    }
}

async fn follow_logs(
    server: &TestServer,
    secret: &str,
    ns: &str,
) -> Result<Streaming<pb::StreamPodLogsResponse>, Status> {
    let mut client = LogStreamClient::new(server.channel_as(Some(secret)).await);
    let mut stream = client
        .stream_pod_logs(pod_request(
            ns,
            "talker",
            pb::LogOptions {
                follow: true,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    tokio::time::timeout(Duration::from_secs(15), stream.message())
        .await
        .expect("a line in time")?
        .expect("open");
    Ok(stream)
}

fn assert_exhausted(result: Result<impl Sized, Status>, setting: &str, limit: &str) {
    let status = result.err().expect("over the cap must be refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(setting) && status.message().contains(limit),
        "the message names the setting and its value: {}",
        status.message()
    );
}

#[tokio::test]
async fn each_token_has_its_own_stream_cap() {
    let ns = TestNamespace::create(&kenv::client().await, "streamcap").await;
    create_pod(&ns, "talker").await;
    ns.pod_logs("talker").await.stdout("hello");
    let server = TestServer::start_with(|s| {
        s.stream_limits.streams_per_token = 2;
        s.stream_limits.event_watches_per_token = 1;
    })
    .await;
    import_local(server.channel().await).await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let (_, a) = token(&mut admin, "cap-a", None).await;
    let (_, b) = token(&mut admin, "cap-b", None).await;

    let events_a = watch_events(&server, &a, ns.name())
        .await
        .expect("first watch");
    assert_exhausted(
        watch_events(&server, &a, ns.name()).await,
        "max_event_watches_per_token",
        "(1)",
    );
    let logs_a = follow_logs(&server, &a, ns.name())
        .await
        .expect("second stream");
    assert_exhausted(
        follow_logs(&server, &a, ns.name()).await,
        "max_streams_per_token",
        "(2)",
    );

    // Another token is not affected.
    let _events_b = watch_events(&server, &b, ns.name())
        .await
        .expect("b watches");
    let _logs_b = follow_logs(&server, &b, ns.name())
        .await
        .expect("b follows");

    // Closing a stream makes room again (once the server has seen the client go).
    drop((events_a, logs_a));
    let closed = Instant::now();
    loop {
        match follow_logs(&server, &a, ns.name()).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(
                    closed.elapsed() < Duration::from_secs(5),
                    "no room after closing"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // Only an admin may watch the events of every namespace.
    let status = watch_events(&server, &b, "").await.expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    server.shutdown().await;
    ns.cleanup().await;
}

/// Waits for the stream's end and returns its status and how long it took.
async fn ending<T>(stream: &mut Streaming<T>) -> (Status, Duration) {
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => break status,
            }
        }
    })
    .await
    .expect("the stream ends");
    (status, started.elapsed())
}

#[tokio::test]
async fn streams_end_when_their_token_is_revoked_or_expires() {
    let ns = TestNamespace::create(&kenv::client().await, "revoke").await;
    create_pod(&ns, "talker").await;
    ns.pod_logs("talker").await.stdout("hello");
    let server = TestServer::start().await;
    import_local(server.channel().await).await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let (api_id, by_api) = token(&mut admin, "revoked-by-api", None).await;
    let (db_id, by_db) = token(&mut admin, "revoked-elsewhere", None).await;
    let (_, expiring) = token(&mut admin, "expiring", Some(Duration::from_secs(6))).await;
    let (_, bystander) = token(&mut admin, "bystander", None).await;

    let mut api_events = watch_events(&server, &by_api, ns.name())
        .await
        .expect("watch");
    let mut api_logs = follow_logs(&server, &by_api, ns.name())
        .await
        .expect("follow");
    let mut db_events = watch_events(&server, &by_db, ns.name())
        .await
        .expect("watch");
    let mut expiring_events = watch_events(&server, &expiring, ns.name())
        .await
        .expect("watch");
    let mut other = watch_events(&server, &bystander, ns.name())
        .await
        .expect("watch");

    // Revoked through the API.
    admin
        .revoke_api_token(pb::RevokeApiTokenRequest { token_id: api_id })
        .await
        .expect("revoke");
    let (status, took) = ending(&mut api_events).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{}", status.message());
    assert!(
        took < Duration::from_secs(5),
        "WatchEvents ended after {took:?}"
    );
    let (status, took) = ending(&mut api_logs).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        took < Duration::from_secs(5),
        "the log follow ended after {took:?}"
    );

    // Revoked by another process (the CLI, another replica): straight in the database.
    server
        .store()
        .await
        .revoke_token(&db_id, flotilla::store::now_millis())
        .await
        .expect("revoke in the database");
    let (status, took) = ending(&mut db_events).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(took < Duration::from_secs(5), "ended after {took:?}");

    // Expired while watching.
    let (status, _) = ending(&mut expiring_events).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{}", status.message());

    // Another token's stream goes on.
    let still = tokio::time::timeout(Duration::from_millis(500), other.message()).await;
    assert!(
        still.is_err(),
        "the bystander's stream is still open: {still:?}"
    );
    server.shutdown().await;
    ns.cleanup().await;
}

fn violation(status: &Status) -> String {
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest detail in {status:?}"));
    bad.field_violations[0].field.clone()
}

#[tokio::test]
async fn numbers_that_would_overflow_are_invalid_arguments() {
    let server = TestServer::start().await;
    let mut logs = LogStreamClient::new(server.channel().await);
    let since_time = |seconds, nanos| {
        Some(pb::log_options::Since::SinceTime(prost_types::Timestamp {
            seconds,
            nanos,
        }))
    };
    let cases = [
        (
            "options.since_time",
            pb::LogOptions {
                since: since_time(i64::MAX, 0),
                ..Default::default()
            },
        ),
        (
            "options.since_time",
            pb::LogOptions {
                since: since_time(i64::MIN, 0),
                ..Default::default()
            },
        ),
        (
            "options.since_time",
            pb::LogOptions {
                since: since_time(0, -1),
                ..Default::default()
            },
        ),
        (
            "options.since_time",
            pb::LogOptions {
                since: since_time(0, i32::MAX),
                ..Default::default()
            },
        ),
        (
            "options.since_seconds",
            pb::LogOptions {
                since: Some(pb::log_options::Since::SinceSeconds(i64::MAX)),
                ..Default::default()
            },
        ),
        (
            "options.since_seconds",
            pb::LogOptions {
                since: Some(pb::log_options::Since::SinceSeconds(i64::MIN)),
                ..Default::default()
            },
        ),
        (
            "options.tail_lines",
            pb::LogOptions {
                tail_lines: Some(i64::MIN),
                ..Default::default()
            },
        ),
        (
            "options.limit_bytes",
            pb::LogOptions {
                limit_bytes: Some(i64::MIN),
                ..Default::default()
            },
        ),
    ];
    for (field, options) in cases {
        let status = logs
            .stream_pod_logs(pod_request("default", "any", options.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options:?} must be refused"));
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{options:?}: {status:?}"
        );
        assert_eq!(violation(&status), field, "{options:?}");
        let status = logs
            .stream_workload_logs(pb::StreamWorkloadLogsRequest {
                cluster_ids: vec!["local".into()],
                namespace: "default".into(),
                pods: Some(pb::stream_workload_logs_request::Pods::LabelSelector(
                    "app=x".into(),
                )),
                options: Some(options.clone()),
                ..Default::default()
            })
            .await
            .err()
            .unwrap_or_else(|| panic!("{options:?} must be refused for workloads"));
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{options:?}: {status:?}"
        );
        assert_eq!(violation(&status), field, "{options:?}");
    }
    // The server is still there.
    let status = logs
        .stream_pod_logs(pod_request("default", "any", pb::LogOptions::default()))
        .await
        .expect_err("no such cluster");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    server.shutdown().await;
}
