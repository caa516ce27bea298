//! Issue #20 P3, WatchEvents fan-out, on the test control plane against the release binary:
//!
//! 1. 1,000 subscribers (10 HTTP/2 connections) while events are created at 100/s for 10 s,
//!    in alternating rounds (default 5 of each): Flotilla (1,000 WatchEvents streams sharing one
//!    upstream watch) against the same 1,000 subscribers as direct watches on the API server
//!    (HTTP/1.1, as kube-rs opens them). Per round: the latency from just before an event's
//!    create request to its arrival at each subscriber (p50/p99/max), deliveries made of those
//!    expected, the upstream watches the API server logged, and the CPU seconds and RSS of the
//!    Flotilla server and of the kube-apiserver during the 10 s.
//! 2. 10,000 subscribers on 20 connections at 100 events/s: the same measures; the target is
//!    one upstream watch, every delivery made, p99 <= 200 ms and server RSS <= 300 MB.
//!
//! The events are created by a child process (this binary run again with FANOUT_PRODUCE set),
//! so the load generator never shares the subscribers' runtime. The bench makes its own
//! namespace, server (release binary, no rate limit and no per-token stream caps) and API
//! token, and removes the namespace even when a round fails.
//!
//!     cargo build --release && cargo bench --bench event_fanout
//!
//! Environment (defaults): BENCH_SUBSCRIBERS (1000), BENCH_CONNECTIONS (10), BENCH_ROUNDS (5),
//! BENCH_EVENTS_PER_SEC (100), BENCH_EVENT_SECONDS (10), BENCH_BIG_SUBSCRIBERS (10000; 0 skips
//! the big case), BENCH_BIG_CONNECTIONS (20), BENCH_DIRECT (1; 0 skips the direct rounds),
//! FLOTILLA_BIN (the release binary), FLOTILLA_BIN_COMPARE (a second binary, e.g. a build from
//! before a change: its rounds alternate with the first's; unset), BENCH_PAUSE_BEFORE_EVENTS
//! (seconds to wait after the subscribers are ready, for attaching a profiler; 0).

use flotilla_test_support as support;

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use flotilla::proto::{
    self as pb, admin_service_client::AdminServiceClient,
    cluster_service_client::ClusterServiceClient,
};
use futures::{AsyncBufReadExt, FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
};
use support::{
    host::{apiserver_pid, cpu_seconds, env_num, load_average},
    kubeconfigs::admin_kubeconfig,
    process::{connect, free_port, release_binary, rss_kib},
    server::{ADMIN_TOKEN, Bearer},
    watch_oracle::{AuditTail, try_metric},
};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Set in the producer child: the namespace to create events in.
const PRODUCE: &str = "FANOUT_PRODUCE";
/// Subscribe calls in flight at once while a round sets up.
const OPENING_AT_ONCE: usize = 200;
/// Deliveries still arriving are waited for while they make progress (late ones count, with
/// their latency); a round ends once none arrived for [`DRAIN`], or after [`DRAIN_AT_MOST`].
const DRAIN: Duration = Duration::from_secs(5);
const DRAIN_AT_MOST: Duration = Duration::from_secs(120);

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(namespace) = std::env::var(PRODUCE) {
        runtime.block_on(produce(namespace));
        return;
    }
    runtime.block_on(bench());
}

/// The producer child: creates BENCH_EVENTS_PER_SEC events a second for BENCH_EVENT_SECONDS,
/// each named `<tag>-<i>` with the message `<tag> sent-at-nanos <unix nanos>` stamped just
/// before its create request, and prints how many were created.
async fn produce(namespace: String) {
    let rate = env_num("BENCH_EVENTS_PER_SEC", 100);
    let seconds = env_num("BENCH_EVENT_SECONDS", 10);
    let tag = std::env::var("FANOUT_TAG").expect("FANOUT_TAG");
    let kube = support::kube::client().await;
    let events: Api<Event> = Api::namespaced(kube, &namespace);
    let total = rate * seconds;
    let started = Instant::now();
    let mut creates = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{tag}-{i}")},
            "involvedObject": {"kind": "Pod", "name": "talker", "namespace": namespace},
            "reason": "Bench",
            "message": format!("{tag} sent-at-nanos {}", now_nanos()),
            "type": "Normal",
        }))
        .expect("event");
        let events = events.clone();
        creates.push(tokio::spawn(async move {
            events.create(&PostParams::default(), &event).await.is_ok()
        }));
    }
    let mut created = 0;
    for create in creates {
        if create.await.unwrap_or(false) {
            created += 1;
        }
    }
    println!("created {created}");
}

/// Runs the producer child for one round and returns how many events it created.
async fn run_producer(namespace: &str, tag: &str) -> u64 {
    let exe = std::env::current_exe().expect("current exe");
    let (namespace, tag) = (namespace.to_string(), tag.to_string());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(exe)
            .env(PRODUCE, &namespace)
            .env("FANOUT_TAG", &tag)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("producer");
        assert!(out.status.success(), "the producer failed: {}", out.status);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("created ")
            .and_then(|n| n.parse().ok())
            .expect("the producer's count")
    })
    .await
    .expect("producer thread")
}

/// `flotilla serve` (release) with no rate limit and no per-token stream caps; killed on drop.
struct Server {
    child: Child,
    url: String,
    binary: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(binary: &str) -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        let config = data.path().join("flotilla.toml");
        std::fs::write(
            &config,
            "max_streams_per_token = 0\nmax_event_watches_per_token = 0\nrate_limit_per_second = 0\n",
        )
        .expect("config");
        let port = free_port();
        let child = Command::new(binary)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path().join("d"))
            .arg("--config")
            .arg(&config)
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e} (run `cargo build --release` first)"));
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            binary: binary.to_string(),
            _data: data,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The subscribers' side of WatchEvents: requests encoded with prost, answers kept as raw
/// bytes. Decoding 100,000 messages a second into structs would make the bench's own CPU a
/// large part of what is measured; the raw bytes are searched for the round's tag instead, and
/// only the few other messages (the snapshot) are decoded.
#[derive(Clone, Copy, Default)]
struct RawAnswers;

impl tonic::codec::Codec for RawAnswers {
    type Encode = pb::WatchEventsRequest;
    type Decode = bytes::Bytes;
    type Encoder = RawAnswers;
    type Decoder = RawAnswers;

    fn encoder(&mut self) -> Self::Encoder {
        RawAnswers
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawAnswers
    }
}

impl tonic::codec::Encoder for RawAnswers {
    type Item = pb::WatchEventsRequest;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Self::Item,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Decoder for RawAnswers {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Opens one WatchEvents stream whose answers arrive as raw bytes (see [`RawAnswers`]).
async fn watch_events_raw(
    channel: tonic::transport::Channel,
    secret: &str,
    request: pb::WatchEventsRequest,
) -> tonic::Streaming<bytes::Bytes> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {secret}").parse().expect("header"),
    );
    grpc.server_streaming(
        request,
        http::uri::PathAndQuery::from_static("/flotilla.v1.LogStream/WatchEvents"),
        RawAnswers,
    )
    .await
    .expect("WatchEvents")
    .into_inner()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What one subscriber saw: deliveries of this round's events and their latencies (µs).
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
}

impl Seen {
    /// Records `raw` (an encoded WatchEventsResponse, or a watch line from the API server) if
    /// it carries one of `tag`'s events (`<tag> sent-at-nanos <n>`); false if it does not.
    fn record(&mut self, raw: &[u8], tag: &str, delivered: &AtomicU64) -> bool {
        let marker = format!("{tag} sent-at-nanos ");
        let Some(at) = find(raw, marker.as_bytes()) else {
            return false;
        };
        let digits = &raw[at + marker.len()..];
        // Unix nanoseconds have 19 digits until 2286; whatever follows is another field.
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len())
            .min(19);
        let Some(sent) = std::str::from_utf8(&digits[..end])
            .ok()
            .and_then(|n| n.parse::<u128>().ok())
        else {
            return false;
        };
        let micros = now_nanos().saturating_sub(sent) / 1000;
        self.latencies_us.push(micros.min(u32::MAX as u128) as u32);
        delivered.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// How a round's subscribers connect.
#[derive(Clone, Copy)]
enum Via<'a> {
    Flotilla(&'a Flotilla),
    Direct,
}

struct Round {
    label: String,
    subscribers: usize,
    created: u64,
    delivered: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    setup_secs: f64,
    upstream_watches: usize,
    open_event_watches_delta: Option<f64>,
    server_cpu: Option<f64>,
    server_rss_mib: Option<f64>,
    apiserver_cpu: Option<f64>,
    apiserver_rss_mib: Option<f64>,
    load: String,
    /// Events the server reported as dropped (LAGGED) over all subscribers.
    lagged: u64,
    /// Seconds deliveries kept arriving after the last event was created.
    drain_secs: f64,
}

impl Round {
    fn print(&self) {
        let expected = self.created * self.subscribers as u64;
        println!(
            "{:<11} subs {:>5}  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  deliveries {}/{}{} (lagged {}, drain {:.1} s)  upstream watches {}  setup {:.1} s",
            self.label,
            self.subscribers,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.delivered,
            expected,
            if self.delivered == expected {
                ""
            } else {
                " MISSING"
            },
            self.lagged,
            self.drain_secs,
            self.upstream_watches,
            self.setup_secs,
        );
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.1}{unit}"));
        println!(
            "          flotilla cpu {} rss {}  apiserver cpu {} rss {}  open event watches (metric) {}  load {}",
            opt(self.server_cpu, " s"),
            opt(self.server_rss_mib, " MiB"),
            opt(self.apiserver_cpu, " s"),
            opt(self.apiserver_rss_mib, " MiB"),
            opt(self.open_event_watches_delta, ""),
            self.load,
        );
    }
}

/// One Flotilla server under test, with the bench's own API token (viewer of the bench
/// cluster) and the cluster imported.
struct Flotilla {
    name: String,
    server: Server,
    secret: String,
}

impl Flotilla {
    async fn start(binary: &str, name: &str) -> Flotilla {
        let server = Server::start(binary);
        let admin_channel = connect(&server.url).await;
        let admin = || Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}")));
        ClusterServiceClient::with_interceptor(admin_channel.clone(), admin())
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: "bench".into(),
                source: Some(pb::import_cluster_request::Source::Kubeconfig(
                    pb::KubeconfigSource {
                        kubeconfig: admin_kubeconfig().into_bytes(),
                        context: String::new(),
                    },
                )),
                ..Default::default()
            })
            .await
            .expect("import");
        let secret = AdminServiceClient::with_interceptor(admin_channel, admin())
            .create_api_token(pb::CreateApiTokenRequest {
                name: "bench-event-fanout".into(),
                role: pb::Role::Viewer.into(),
                cluster_ids: vec!["bench".into()],
                expire_time: None,
            })
            .await
            .expect("create token")
            .into_inner()
            .secret;
        Flotilla {
            name: name.to_string(),
            server,
            secret,
        }
    }
}

struct Ctx {
    kube: Client,
    /// The release binary, and FLOTILLA_BIN_COMPARE's when set (rounds alternate).
    servers: Vec<Flotilla>,
    namespace: String,
    apiserver: Option<u32>,
}

async fn bench() {
    let mut servers = vec![Flotilla::start(&release_binary(), "flotilla").await];
    if let Ok(other) = std::env::var("FLOTILLA_BIN_COMPARE") {
        servers.push(Flotilla::start(&other, "compare").await);
    }
    let kube = support::kube::client().await;
    let namespace = format!("bench-fanout-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let ctx = Ctx {
        kube: kube.clone(),
        servers,
        namespace: namespace.clone(),
        apiserver: apiserver_pid(),
    };
    let outcome = tokio::select! {
        outcome = std::panic::AssertUnwindSafe(run_cases(&ctx)).catch_unwind() => outcome,
        _ = tokio::signal::ctrl_c() => {
            println!("interrupted; cleaning up");
            Ok(())
        }
    };
    // Whatever happened, nothing is left behind on the cluster.
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn run_cases(ctx: &Ctx) {
    let subscribers = env_num("BENCH_SUBSCRIBERS", 1000) as usize;
    let connections = env_num("BENCH_CONNECTIONS", 10) as usize;
    let rounds = env_num("BENCH_ROUNDS", 5);
    let rate = env_num("BENCH_EVENTS_PER_SEC", 100);
    let seconds = env_num("BENCH_EVENT_SECONDS", 10);
    let direct = env_num("BENCH_DIRECT", 1) != 0;
    println!(
        "machine: {} cores (shared); load average at start {}; {rate} events/s for {seconds} s per round",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    for f in &ctx.servers {
        println!("{}: {}", f.name, f.server.binary);
    }
    let mut flotilla: Vec<Vec<Round>> = ctx.servers.iter().map(|_| Vec::new()).collect();
    let mut peer = Vec::new();
    for round in 0..rounds {
        for (f, results) in ctx.servers.iter().zip(&mut flotilla) {
            let r = run_round(ctx, Via::Flotilla(f), subscribers, connections, round).await;
            r.print();
            results.push(r);
        }
        if direct {
            let r = run_round(ctx, Via::Direct, subscribers, connections, round).await;
            r.print();
            peer.push(r);
        }
    }
    for (f, results) in ctx.servers.iter().zip(&flotilla) {
        summary(&format!("{}, {subscribers} subscribers", f.name), results);
    }
    summary(&format!("direct API-server watches, {subscribers}"), &peer);

    let big = env_num("BENCH_BIG_SUBSCRIBERS", 10_000) as usize;
    if big > 0 {
        let big_connections = env_num("BENCH_BIG_CONNECTIONS", 20) as usize;
        for f in &ctx.servers {
            let r = run_round(ctx, Via::Flotilla(f), big, big_connections, rounds).await;
            r.print();
            let expected = r.created * big as u64;
            println!(
                "{}: {big} subscribers on {big_connections} connections: upstream watches {} (target 1), deliveries {}/{} (target all), p99 {:.1} ms (target <= 200), server RSS {:.1} MiB (target <= 300 MB = 286.1 MiB)",
                f.name,
                r.upstream_watches,
                r.delivered,
                expected,
                r.p99_ms,
                r.server_rss_mib.unwrap_or(0.0),
            );
        }
    }
}

fn summary(label: &str, rounds: &[Round]) {
    if rounds.is_empty() {
        return;
    }
    let stat = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        format!("{:.1} ({:.1}-{:.1})", v[v.len() / 2], v[0], v[v.len() - 1])
    };
    println!("{label}: median (min-max) of {} rounds", rounds.len());
    println!("  p50 ms {}", stat(&|r| r.p50_ms));
    println!("  p99 ms {}", stat(&|r| r.p99_ms));
    println!(
        "  deliveries missing {}",
        stat(&|r| (r.created * r.subscribers as u64
            - r.delivered.min(r.created * r.subscribers as u64)) as f64)
    );
    println!(
        "  upstream watches {}",
        stat(&|r| r.upstream_watches as f64)
    );
    println!(
        "  flotilla cpu s {}  rss MiB {}",
        stat(&|r| r.server_cpu.unwrap_or(0.0)),
        stat(&|r| r.server_rss_mib.unwrap_or(0.0))
    );
    println!(
        "  apiserver cpu s {}  rss MiB {}",
        stat(&|r| r.apiserver_cpu.unwrap_or(0.0)),
        stat(&|r| r.apiserver_rss_mib.unwrap_or(0.0))
    );
}

async fn run_round(
    ctx: &Ctx,
    via: Via<'_>,
    subscribers: usize,
    connections: usize,
    round: u64,
) -> Round {
    let (name, code) = match via {
        Via::Flotilla(f) => (f.name.as_str(), if f.name == "compare" { "c" } else { "f" }),
        Via::Direct => ("direct", "d"),
    };
    let tag = format!("r{round}{code}");
    let label = format!("{name} {}", round + 1);
    // The Flotilla server of this round, if any: its pid for CPU and RSS.
    let server_pid = match via {
        Via::Flotilla(f) => Some(f.server.pid()),
        Via::Direct => None,
    };
    let audit = AuditTail::new();
    let registered_before = open_event_watches(&ctx.kube).await;
    let delivered = Arc::new(AtomicU64::new(0));
    let lagged = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subscribers.max(1));
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let setup = Instant::now();
    let mut tasks = Vec::with_capacity(subscribers);
    match via {
        Via::Flotilla(f) => {
            let mut channels = Vec::new();
            for _ in 0..connections.max(1) {
                channels.push(connect(&f.server.url).await);
            }
            for i in 0..subscribers {
                let channel = channels[i % channels.len()].clone();
                let secret = f.secret.clone();
                let (ns, tag) = (ctx.namespace.clone(), tag.clone());
                let (stop, ready, delivered, opening, lagged) = (
                    stop.clone(),
                    ready_tx.clone(),
                    delivered.clone(),
                    opening.clone(),
                    lagged.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let permit = opening.acquire_owned().await.expect("semaphore");
                    let request = pb::WatchEventsRequest {
                        cluster_id: "bench".into(),
                        namespace: ns,
                        snapshot_limit: 1,
                        ..Default::default()
                    };
                    let mut stream = watch_events_raw(channel, &secret, request).await;
                    let mut seen = Seen::default();
                    let mut permit = Some(permit);
                    loop {
                        let message = tokio::select! {
                            () = stop.cancelled() => break,
                            m = stream.message() => m,
                        };
                        let Ok(Some(raw)) = message else { break };
                        // Only this round's events carry its tag (the ADDED of each; nothing
                        // modifies or deletes them while subscribers listen).
                        if seen.record(&raw, &tag, &delivered) {
                            continue;
                        }
                        let message = <pb::WatchEventsResponse as prost::Message>::decode(raw)
                            .expect("a WatchEventsResponse");
                        match message.r#type() {
                            // The first SnapshotEnd: this subscriber is ready.
                            pb::WatchEventsResponseType::SnapshotEnd if permit.take().is_some() => {
                                let _ = ready.send(()).await;
                            }
                            // Events the server dropped for this slow reader (never sent).
                            pb::WatchEventsResponseType::Lagged => {
                                lagged.fetch_add(
                                    message.dropped_count.max(0) as u64,
                                    Ordering::Relaxed,
                                );
                            }
                            _ => {}
                        }
                    }
                    seen
                }));
            }
        }
        Via::Direct => {
            // Watch from now: no initial events, ready once the API server answers.
            let version = Api::<Event>::namespaced(ctx.kube.clone(), &ctx.namespace)
                .list_metadata(&ListParams::default().limit(1))
                .await
                .expect("list events")
                .metadata
                .resource_version
                .unwrap_or_default();
            for _ in 0..subscribers {
                let kube = ctx.kube.clone();
                let path = format!(
                    "/api/v1/namespaces/{}/events?watch=true&resourceVersion={version}&timeoutSeconds=290",
                    ctx.namespace
                );
                let tag = tag.clone();
                let (stop, ready, delivered, opening) = (
                    stop.clone(),
                    ready_tx.clone(),
                    delivered.clone(),
                    opening.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let permit = opening.acquire_owned().await.expect("semaphore");
                    let request = http::Request::get(path).body(Vec::new()).expect("request");
                    let body = kube.request_stream(request).await.expect("watch");
                    drop(permit);
                    let _ = ready.send(()).await;
                    let mut lines = body.lines();
                    let mut seen = Seen::default();
                    loop {
                        let line = tokio::select! {
                            () = stop.cancelled() => break,
                            l = lines.next() => l,
                        };
                        let Some(Ok(line)) = line else { break };
                        if line.starts_with("{\"type\":\"ADDED\"") {
                            seen.record(line.as_bytes(), &tag, &delivered);
                        }
                    }
                    seen
                }));
            }
        }
    }
    drop(ready_tx);
    let ready_by = Instant::now() + Duration::from_secs(300);
    for n in 0..subscribers {
        let left = ready_by.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ready_rx.recv()).await {
            Ok(Some(())) => {}
            _ => panic!("{label}: only {n} of {subscribers} subscribers became ready"),
        }
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    let pause = env_num("BENCH_PAUSE_BEFORE_EVENTS", 0);
    if pause > 0 {
        println!(
            "{label}: subscribers ready; server pid {}; pausing {pause} s",
            server_pid.unwrap_or(0)
        );
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
    let registered = open_event_watches(&ctx.kube)
        .await
        .zip(registered_before)
        .map(|(after, before)| after - before);
    let cpu_before = (
        server_pid.and_then(cpu_seconds),
        ctx.apiserver.and_then(cpu_seconds),
    );
    let load = load_average();
    let created = run_producer(&ctx.namespace, &tag).await;
    let expected = created * subscribers as u64;
    let cpu_after = (
        server_pid.and_then(cpu_seconds),
        ctx.apiserver.and_then(cpu_seconds),
    );
    let server_rss = server_pid.map(rss_kib);
    // CPU and memory are taken for the window of the events; late deliveries are still
    // waited for (and counted, with their latency) while they keep coming.
    let drain_started = Instant::now();
    let (mut last_count, mut last_progress) = (0, Instant::now());
    loop {
        let now = delivered.load(Ordering::Relaxed);
        if now >= expected
            || last_progress.elapsed() >= DRAIN
            || drain_started.elapsed() >= DRAIN_AT_MOST
        {
            break;
        }
        if now > last_count {
            (last_count, last_progress) = (now, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let apiserver_rss = ctx.apiserver.map(rss_kib);
    stop.cancel();
    let mut all = Vec::with_capacity(expected as usize);
    for task in tasks {
        all.extend(task.await.expect("subscriber").latencies_us);
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    // Every watch the API server logged in the namespace this round: Flotilla's upstream
    // watches, or the direct subscribers'. Audit events are written as responses start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let upstream_watches = audit.count(
        "watch",
        "events",
        Some(&ctx.namespace),
        None,
        "ResponseStarted",
    );
    // The next round starts from an empty namespace.
    let _ = Api::<Event>::namespaced(ctx.kube.clone(), &ctx.namespace)
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let diff = |(a, b): (Option<f64>, Option<f64>)| a.zip(b).map(|(a, b)| b - a);
    Round {
        label,
        subscribers,
        created,
        delivered: all.len() as u64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: all.last().map_or(f64::NAN, |us| *us as f64 / 1000.0),
        setup_secs,
        upstream_watches,
        open_event_watches_delta: registered,
        server_cpu: diff((cpu_before.0, cpu_after.0)),
        server_rss_mib: server_rss.map(|k| k as f64 / 1024.0),
        apiserver_cpu: diff((cpu_before.1, cpu_after.1)),
        apiserver_rss_mib: apiserver_rss.map(|k| k as f64 / 1024.0),
        load,
        lagged: lagged.load(Ordering::Relaxed),
        drain_secs,
    }
}

/// Watches of events open on the first API server now, from its own metrics
/// (`apiserver_longrunning_requests`; this version has no `apiserver_registered_watchers`);
/// None when /metrics cannot be read.
async fn open_event_watches(kube: &Client) -> Option<f64> {
    try_metric(
        kube,
        (
            "apiserver_longrunning_requests",
            &[("resource", "events"), ("verb", "WATCH")],
        ),
    )
    .await
    .ok()
}
