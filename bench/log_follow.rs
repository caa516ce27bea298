//! Issue 20 P2: followed pod-log throughput, Flotilla's StreamPodLogs against a kube-rs
//! `log_stream` of the same pod, side by side, in alternating rounds (the release binary in a
//! process of its own).
//!
//! 1. Through the test control plane (`scripts/kube-env up`): a KWOK pod whose log is a file of
//!    pre-written CRI lines, served by the API server.
//! 2. From a faster source: a loopback HTTP server in this bench that speaks the API server's
//!    pod-log endpoint (`GET /api/v1/namespaces/NS/pods/NAME/log?follow=true...`), streaming
//!    pre-generated lines as fast as the client reads (then holding the stream open, as a
//!    followed log does). Flotilla imports it as a cluster through a kubeconfig pointing at it;
//!    kube-rs reads the same source. This shows whether the ceiling of (1) is Flotilla or what
//!    is behind it (API server, KWOK).
//!
//!     cargo build --release && cargo bench --bench log_follow
//!
//! Environment: BENCH_LOG_LINES (default 200000), BENCH_ROUNDS (5), BENCH_PERF_DIR (when set,
//! `perf record -g` of the server during each section's rounds, into DIR/<section>.data),
//! FLOTILLA_BIN (the server binary; default target/release/flotilla).
//!
//! Everything it makes (namespace, pod, KWOK Logs object, log file, data directory, server
//! process) is removed at the end, on failure too.

use flotilla_test_support as support;

use std::{
    convert::Infallible,
    io::Write,
    panic::AssertUnwindSafe,
    process::{Child, Command},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, Uri, header},
    response::Response,
};
use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
};
use futures::{AsyncBufReadExt, FutureExt, StreamExt};
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{
    Api, Client,
    api::{LogParams, PostParams},
};
use support::{
    host::{env_num, load_average},
    kube::TestNamespace,
    kubeconfigs::{admin_kubeconfig, kubeconfig},
    process::{ServerProcess, connect, release_binary},
    server::{ADMIN_TOKEN, Bearer},
};
use tonic::transport::Channel;

const POD: &str = "talker";

fn bearer() -> Bearer {
    Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}")))
}

/// The body of one line as the API server sends it with `timestamps=true`.
fn line_text(i: u64) -> String {
    format!("line {i} lorem ipsum dolor sit amet consectetur")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let lines = env_num("BENCH_LOG_LINES", 200_000);
    let rounds = env_num("BENCH_ROUNDS", 5).max(1) as usize;
    println!(
        "machine: {} cores (shared); load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!("server: {}", release_binary());
    let data = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(&release_binary(), &data.path().join("d"));
    let channel = connect(server.url()).await;
    let kube = support::kube::client().await;
    // Cleaned up below on success and on a panic (the namespace guard, the server process and
    // the data directory also clean up when dropped).
    let ns = TestNamespace::create(&kube, "bench-log-follow").await;
    let outcome = AssertUnwindSafe(run(&ns, channel, server.pid(), lines, rounds))
        .catch_unwind()
        .await;
    ns.cleanup().await;
    drop(server);
    println!("load average at end: {}", load_average());
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn run(ns: &TestNamespace, channel: Channel, server_pid: u32, lines: u64, rounds: usize) {
    import(&channel, "bench-real", admin_kubeconfig(), false).await;
    let real = kube_source(ns, lines).await;
    section(
        "through the API server (KWOK file log)",
        "api-server",
        &channel,
        "bench-real",
        ns.name(),
        &real,
        lines,
        rounds,
        server_pid,
    )
    .await;

    let fast = FastSource::start(ns.name(), lines).await;
    let fast_kubeconfig = kubeconfig(&fast.url, "", "    token: bench-fast-source\n");
    import(&channel, "bench-fast", fast_kubeconfig, true).await;
    let config = kube::Config::new(fast.url.parse().expect("url"));
    let fast_kube = Client::try_from(config).expect("fast-source client");
    let fast_pods: Api<Pod> = Api::namespaced(fast_kube, ns.name());
    section(
        "from a faster source (loopback server speaking pods/log)",
        "fast-source",
        &channel,
        "bench-fast",
        ns.name(),
        &fast_pods,
        lines,
        rounds,
        server_pid,
    )
    .await;
    println!(
        "  the fast source served {} log requests",
        fast.served.load(Ordering::Relaxed)
    );
}

async fn import(channel: &Channel, id: &str, kubeconfig: String, allow_insecure_tls: bool) {
    ClusterServiceClient::with_interceptor(channel.clone(), bearer())
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: id.into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfig.into_bytes(),
                    context: String::new(),
                },
            )),
            allow_insecure_tls,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("importing {id}: {e}"));
}

/// A KWOK pod whose followed log is a file holding `lines` lines, all written before reading,
/// so both readers see the same log at full speed.
async fn kube_source(ns: &TestNamespace, lines: u64) -> Api<Pod> {
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": POD},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/t:1"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod");
    let file = ns.pod_logs(POD).await;
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(file.path())
        .expect("open log file");
    let stamp = Timestamp::now();
    let mut buffer = String::new();
    for i in 0..lines {
        buffer.push_str(&format!("{stamp} stdout F {}\n", line_text(i)));
        if buffer.len() > 1 << 20 {
            out.write_all(buffer.as_bytes()).expect("write");
            buffer.clear();
        }
    }
    out.write_all(buffer.as_bytes()).expect("write");
    pods
}

#[allow(clippy::too_many_arguments)]
async fn section(
    title: &str,
    slug: &str,
    channel: &Channel,
    cluster: &str,
    ns: &str,
    pods: &Api<Pod>,
    lines: u64,
    rounds: usize,
    server_pid: u32,
) {
    // Warm-up: one read each (connections, the cluster's client in Flotilla, KWOK's file).
    flotilla_rate(channel, cluster, ns, lines.min(10_000)).await;
    kube_rate(pods, lines.min(10_000)).await;
    let perf = Perf::start(slug, server_pid);
    let load_before = load_average();
    let mut flotilla = Vec::new();
    let mut direct = Vec::new();
    for round in 0..rounds {
        // Alternate who goes first, so neither always reads a warmer source.
        if round % 2 == 0 {
            flotilla.push(flotilla_rate(channel, cluster, ns, lines).await);
            direct.push(kube_rate(pods, lines).await);
        } else {
            direct.push(kube_rate(pods, lines).await);
            flotilla.push(flotilla_rate(channel, cluster, ns, lines).await);
        }
    }
    let load_after = load_average();
    drop(perf);
    let ratios: Vec<f64> = flotilla.iter().zip(&direct).map(|(f, d)| f / d).collect();
    println!(
        "log throughput {title}: {lines} lines, follow, {rounds} alternating rounds \
         (load average {load_before} before, {load_after} after)"
    );
    println!(
        "  Flotilla StreamPodLogs: {}",
        summary(&flotilla, "lines/s")
    );
    println!("  kube-rs log_stream:     {}", summary(&direct, "lines/s"));
    println!("  ratio per round:        {}", summary(&ratios, "x"));
    println!(
        "  rounds (Flotilla / kube-rs lines/s): {}",
        flotilla
            .iter()
            .zip(&direct)
            .map(|(f, d)| format!("{f:.0}/{d:.0}"))
            .collect::<Vec<_>>()
            .join("  ")
    );
}

fn summary(values: &[f64], unit: &str) -> String {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let digits = if unit == "x" { 2 } else { 0 };
    format!(
        "median {:.*} {unit} (min {:.*}, max {:.*})",
        digits,
        v[v.len() / 2],
        digits,
        v[0],
        digits,
        v[v.len() - 1]
    )
}

/// Lines per second of a followed StreamPodLogs, until `lines` have arrived.
async fn flotilla_rate(channel: &Channel, cluster: &str, ns: &str, lines: u64) -> f64 {
    let mut client = LogStreamClient::with_interceptor(channel.clone(), bearer());
    let started = Instant::now();
    let mut stream = client
        .stream_pod_logs(pb::StreamPodLogsRequest {
            cluster_id: cluster.into(),
            namespace: ns.into(),
            pod: POD.into(),
            container: String::new(),
            options: Some(pb::LogOptions {
                follow: true,
                ..Default::default()
            }),
        })
        .await
        .expect("StreamPodLogs")
        .into_inner();
    let mut got = 0u64;
    while got < lines {
        let message = stream
            .message()
            .await
            .expect("a message")
            .expect("the stream stays open");
        got += message.entries.len() as u64;
    }
    lines as f64 / started.elapsed().as_secs_f64()
}

/// Lines per second of a followed kube-rs `log_stream`, until `lines` have arrived.
async fn kube_rate(pods: &Api<Pod>, lines: u64) -> f64 {
    let started = Instant::now();
    let reader = pods
        .log_stream(
            POD,
            &LogParams {
                follow: true,
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("log stream");
    let mut direct = reader.lines();
    let mut got = 0u64;
    while got < lines {
        direct.next().await.expect("a line").expect("ok");
        got += 1;
    }
    lines as f64 / started.elapsed().as_secs_f64()
}

/// `perf record -g` of the server while it lives, when BENCH_PERF_DIR is set.
struct Perf(Option<Child>);

impl Perf {
    fn start(slug: &str, pid: u32) -> Perf {
        let Ok(dir) = std::env::var("BENCH_PERF_DIR") else {
            return Perf(None);
        };
        let out = std::path::Path::new(&dir).join(format!("{slug}.data"));
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-p", &pid.to_string(), "-o"])
            .arg(&out)
            .spawn()
            .ok();
        // perf needs a moment to attach.
        std::thread::sleep(Duration::from_millis(500));
        Perf(child)
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// A loopback HTTP server answering what Flotilla asks of a cluster (version, kube-system,
/// lists, the pod) and serving the pod's log from memory as fast as the client reads.
struct FastSource {
    url: String,
    served: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FastSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FastSource {
    async fn start(ns: &str, lines: u64) -> FastSource {
        // The log, pre-generated in chunks of about 16 KiB cut at line ends (as the API server
        // writes it with `timestamps=true`: RFC 3339 nanoseconds, a space, the line).
        let stamp = Timestamp::now();
        let mut chunks = Vec::new();
        let mut chunk = String::new();
        for i in 0..lines {
            chunk.push_str(&format!("{stamp} {}\n", line_text(i)));
            if chunk.len() >= 16 * 1024 {
                chunks.push(Bytes::from(std::mem::take(&mut chunk)));
            }
        }
        if !chunk.is_empty() {
            chunks.push(Bytes::from(chunk));
        }
        let state = Arc::new(SourceState {
            chunks,
            log_path: format!("/api/v1/namespaces/{ns}/pods/{POD}/log"),
            pod_path: format!("/api/v1/namespaces/{ns}/pods/{POD}"),
            pod: serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": POD, "namespace": ns, "uid": "fast-source-pod",
                              "resourceVersion": "1"},
                "spec": {"containers": [{"name": "main", "image": "example.com/t:1"}]},
            })
            .to_string(),
            kube_system: serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "kube-system",
                             "uid": format!("fast-source-{}", uuid::Uuid::new_v4()),
                             "resourceVersion": "1"},
            })
            .to_string(),
            served: Arc::default(),
        });
        let served = state.served.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let state = state.clone();
            async move { state.answer(&uri) }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FastSource { url, served, task }
    }
}

struct SourceState {
    chunks: Vec<Bytes>,
    log_path: String,
    pod_path: String,
    pod: String,
    kube_system: String,
    served: Arc<AtomicU64>,
}

impl SourceState {
    fn answer(&self, uri: &Uri) -> Response {
        let path = uri.path();
        let query = uri.query().unwrap_or("");
        let json = |body: String| {
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("response")
        };
        let endless = || futures::stream::pending::<Result<Bytes, Infallible>>();
        if path == self.log_path {
            self.served.fetch_add(1, Ordering::Relaxed);
            let log = futures::stream::iter(self.chunks.clone().into_iter().map(Ok));
            // A followed log stays open after the lines written so far.
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from_stream(log.chain(endless())))
                .expect("response");
        }
        if query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1")
        {
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(endless()))
                .expect("response");
        }
        match path {
            "/version" => json(
                serde_json::json!({
                    "major": "1", "minor": "34", "gitVersion": "v1.34.0-fast-source",
                    "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
                    "goVersion": "", "compiler": "", "platform": "linux/amd64",
                })
                .to_string(),
            ),
            "/api/v1/namespaces/kube-system" => json(self.kube_system.clone()),
            p if p == self.pod_path => json(self.pod.clone()),
            // Anything else Flotilla lists (nodes, pods, events): nothing there.
            _ => json(
                serde_json::json!({
                    "apiVersion": "v1", "kind": "List",
                    "metadata": {"resourceVersion": "1"}, "items": [],
                })
                .to_string(),
            ),
        }
    }
}
