//! Issue 7 benchmarks on the test control plane (`scripts/kube-env up`), release binary:
//!
//! 1. Log throughput: lines per second delivered by StreamPodLogs (follow) against a kube-rs
//!    `log_stream` (follow) of the same pod, on the same fast-growing log file, side by side.
//! 2. Fan-out: N concurrent WatchEvents subscribers (default 1000) on one namespace while
//!    events are created at a steady rate (default 100/s): upstream watches opened on the API
//!    server, p50/p99 delivery latency, server RSS.
//!
//!     cargo build --release && cargo bench --bench streams
//!
//! Environment: BENCH_LOG_LINES (default 200000), BENCH_SUBSCRIBERS (1000), BENCH_EVENTS_PER_SEC
//! (100), BENCH_EVENT_SECONDS (10).

use flotilla_test_support as support;

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, LogParams, PostParams},
};
use support::{
    kubeconfigs::admin_kubeconfig,
    process::{ServerProcess, connect, release_binary, rss_kib},
    server::{ADMIN_TOKEN, Bearer},
    watch_oracle::open_watches,
};

fn bearer() -> Bearer {
    Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}")))
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(&release_binary(), &data.path().join("d"));
    let url = server.url().to_string();
    let connect = || connect(&url);
    let channel = connect().await;
    ClusterServiceClient::with_interceptor(channel.clone(), bearer())
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
    let kube = support::kube::client().await;
    let ns_name = format!("bench-streams-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns_name}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    log_throughput(&kube, &ns_name, channel.clone()).await;
    fan_out(&kube, &ns_name, &connect, server.pid()).await;

    let _ = namespaces.delete(&ns_name, &DeleteParams::default()).await;
}

async fn log_throughput(kube: &Client, ns: &str, channel: tonic::transport::Channel) {
    let lines = env_num("BENCH_LOG_LINES", 200_000);
    // A pod whose log is a file of our own (a KWOK Logs object points at it).
    let dir = support::kube::env().pod_logs_dir().join(ns);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("talker.log");
    std::fs::write(&path, "").expect("log file");
    let pods: Api<Pod> = Api::namespaced(kube.clone(), ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "talker"},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/t:1"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod");
    let ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs"),
        "logs",
    );
    let mut logs = kube::api::DynamicObject::new("talker", &ar).within(ns);
    logs.data = serde_json::json!({"spec": {"logs": [{"logsFile": path, "follow": true}]}});
    Api::<kube::api::DynamicObject>::namespaced_with(kube.clone(), ns, &ar)
        .create(&PostParams::default(), &logs)
        .await
        .expect("kwok Logs");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Write every line first, so both readers see the same log at full speed.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    let stamp = k8s_openapi::jiff::Timestamp::now();
    let mut buffer = String::new();
    for i in 0..lines {
        buffer.push_str(&format!(
            "{stamp} stdout F line {i} lorem ipsum dolor sit amet consectetur\n"
        ));
        if buffer.len() > 1 << 20 {
            file.write_all(buffer.as_bytes()).expect("write");
            buffer.clear();
        }
    }
    file.write_all(buffer.as_bytes()).expect("write");
    drop(file);

    let mut flotilla_rates = Vec::new();
    let mut direct_rates = Vec::new();
    for _ in 0..3 {
        // Flotilla: StreamPodLogs (follow) until every line has arrived.
        let mut client = LogStreamClient::with_interceptor(channel.clone(), bearer());
        let started = Instant::now();
        let mut stream = client
            .stream_pod_logs(pb::StreamPodLogsRequest {
                cluster_id: "bench".into(),
                namespace: ns.into(),
                pod: "talker".into(),
                container: String::new(),
                options: Some(pb::LogOptions {
                    follow: true,
                    ..Default::default()
                }),
            })
            .await
            .expect("stream")
            .into_inner();
        let mut got = 0u64;
        while got < lines {
            let message = stream.message().await.expect("ok").expect("open");
            got += message.entries.len() as u64;
        }
        flotilla_rates.push(lines as f64 / started.elapsed().as_secs_f64());
        drop(stream);

        // Direct: kube-rs log_stream (follow) of the same pod.
        let started = Instant::now();
        let reader = pods
            .log_stream(
                "talker",
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
            direct.next().await.expect("line").expect("ok");
            got += 1;
        }
        direct_rates.push(lines as f64 / started.elapsed().as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (f, d) = (median(flotilla_rates), median(direct_rates));
    println!("log throughput, {lines} lines, follow, median of 3 alternating runs:");
    println!("  Flotilla StreamPodLogs: {:>10.0} lines/s", f);
    println!("  kube-rs log_stream:     {:>10.0} lines/s", d);
    println!("  ratio: {:.2}x", f / d);
}

async fn fan_out<F, Fut>(kube: &Client, ns: &str, connect: &F, server_pid: u32)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = tonic::transport::Channel>,
{
    let subscribers = env_num("BENCH_SUBSCRIBERS", 1000) as usize;
    let rate = env_num("BENCH_EVENTS_PER_SEC", 100);
    let seconds = env_num("BENCH_EVENT_SECONDS", 10);
    let watches_before = open_watches(kube, "events").await;
    let rss_before = rss_kib(server_pid);
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    // 100 subscribers per HTTP/2 connection.
    let mut channels = Vec::new();
    for _ in 0..subscribers.div_ceil(100) {
        channels.push(connect().await);
    }
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(subscribers);
    let mut tasks = Vec::new();
    for i in 0..subscribers {
        let channel = channels[i / 100].clone();
        let latencies = latencies.clone();
        let ready = ready_tx.clone();
        let ns = ns.to_string();
        tasks.push(tokio::spawn(async move {
            let mut client = LogStreamClient::with_interceptor(channel, bearer());
            let mut stream = client
                .watch_events(pb::WatchEventsRequest {
                    cluster_id: "bench".into(),
                    namespace: ns,
                    snapshot_limit: 1,
                    ..Default::default()
                })
                .await
                .expect("watch")
                .into_inner();
            let mut announced = false;
            while let Ok(Some(message)) = stream.message().await {
                if message.r#type() == pb::WatchEventsResponseType::SnapshotEnd && !announced {
                    announced = true;
                    let _ = ready.send(()).await;
                }
                if message.r#type() == pb::WatchEventsResponseType::Added
                    && let Some(sent) = message
                        .event
                        .as_ref()
                        .and_then(|e| e.message.strip_prefix("sent-at-nanos "))
                        .and_then(|n| n.parse::<u128>().ok())
                {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("clock")
                        .as_nanos();
                    latencies
                        .lock()
                        .expect("lock")
                        .push(Duration::from_nanos(now.saturating_sub(sent) as u64));
                }
            }
        }));
    }
    drop(ready_tx);
    for _ in 0..subscribers {
        ready_rx.recv().await.expect("subscriber ready");
    }
    let upstream = open_watches(kube, "events").await - watches_before;
    let events: Api<Event> = Api::namespaced(kube.clone(), ns);
    let total = rate * seconds;
    let started = Instant::now();
    for i in 0..total {
        let due = Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("bench-{i}")},
            "involvedObject": {"kind": "Pod", "name": "talker", "namespace": ns},
            "reason": "Bench", "message": format!("sent-at-nanos {now}"), "type": "Normal",
        }))
        .expect("event");
        let events = events.clone();
        tokio::spawn(async move {
            let _ = events.create(&PostParams::default(), &event).await;
        });
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_kib(server_pid);
    for task in &tasks {
        task.abort();
    }
    let mut all = latencies.lock().expect("lock").clone();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))];
    println!(
        "fan-out: {subscribers} WatchEvents subscribers, {rate} events/s for {seconds} s ({total} events):"
    );
    println!("  upstream event watches opened on the API server: {upstream}");
    println!(
        "  deliveries: {} of {} expected; latency p50 {:.1} ms, p99 {:.1} ms",
        all.len(),
        total as usize * subscribers,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
    println!(
        "  server RSS: {:.1} MiB before subscribers, {:.1} MiB at the end",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
}
