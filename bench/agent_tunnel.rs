//! Import by agent: the same Flotilla calls against the same control plane, once for a cluster
//! imported directly (kubeconfig) and once for the same cluster imported by agent (every byte
//! through `flotilla agent` and its tunnel), in alternating rounds:
//!
//! - a 10,000-pod list, cold (no watch cache: `WorkloadService/ListResources` of `v1/Pod` in
//!   the fleet's namespace, paged at 1000, straight from the API server each time);
//! - followed-log throughput: `LogStream/StreamPodLogs` with `follow` of a pod whose log holds
//!   `BENCH_LOG_MB` MB (default 16) of 200-byte lines, read until every line has arrived.
//!
//! Two servers run in this process (one per import, as a cluster is imported once per server); the agent is the bench profile's `flotilla` binary as a
//! child process with the control plane's kubeconfig.
//!
//!     set -a; . target/kube-env/env; set +a
//!     cargo bench --bench agent_tunnel
//!
//! Environment: `BENCH_PODS` (default 10000; the fleet namespace `bench-pods` is created when it
//! is missing and then deleted at the end), `BENCH_ROUNDS` (default 5), `BENCH_LOG_MB`.
//! Not a timed test: it prints medians with min–max for the issue notes.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
    workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{Api, api::PostParams};
use support::{
    agent::AgentProcess,
    kube::{self as kenv, TestNamespace},
    kubeconfigs::admin_kubeconfig,
    pod_fleet::{NAMESPACE, create_pods, delete_namespace},
    server::TestServer,
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn summary(label: &str, values: &mut [f64], unit: &str) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "  {label:<28} median {median:>9.2} {unit}  (min {:.2}, max {:.2}, n={})",
        values[0],
        values[values.len() - 1],
        values.len()
    );
}

async fn list_all(server: &TestServer, cluster: &str) -> (Duration, usize) {
    let mut client = WorkloadServiceClient::new(server.channel().await);
    let started = Instant::now();
    let mut token = String::new();
    let mut count = 0;
    loop {
        let page = client
            .list_resources(pb::ListResourcesRequest {
                cluster_id: cluster.into(),
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: NAMESPACE.into(),
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("list resources")
            .into_inner();
        count += page.resources.len();
        if page.next_page_token.is_empty() {
            return (started.elapsed(), count);
        }
        token = page.next_page_token;
    }
}

async fn follow_all(server: &TestServer, cluster: &str, ns: &str, lines: usize) -> (Duration, u64) {
    let started = Instant::now();
    let mut stream = LogStreamClient::new(server.channel().await)
        .stream_pod_logs(pb::StreamPodLogsRequest {
            cluster_id: cluster.into(),
            namespace: ns.into(),
            pod: "firehose".into(),
            container: String::new(),
            options: Some(pb::LogOptions {
                follow: true,
                ..Default::default()
            }),
        })
        .await
        .expect("follow")
        .into_inner();
    let (mut seen, mut bytes) = (0usize, 0u64);
    while seen < lines {
        let message = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .expect("log lines in time")
            .expect("stream")
            .expect("open");
        for entry in message.entries {
            if entry.kind() == pb::LogEntryKind::Line {
                seen += 1;
                bytes += entry.content.len() as u64;
            }
        }
    }
    (started.elapsed(), bytes)
}

async fn bench() {
    let rounds = env_usize("BENCH_ROUNDS", 5).max(5);
    let pods = env_usize("BENCH_PODS", 10_000);
    let log_mb = env_usize("BENCH_LOG_MB", 16);
    let kube = kenv::client().await;

    let fleet_existed = Api::<Namespace>::all(kube.clone())
        .get_opt(NAMESPACE)
        .await
        .expect("namespace")
        .is_some();
    if !fleet_existed {
        create_pods(&kube, pods).await;
    }

    // Two servers: a cluster can be imported only once per server (same kube-system UID).
    let direct_server =
        TestServer::start_with(|s| s.probe_interval = Duration::from_secs(300)).await;
    let server = TestServer::start_with(|s| s.probe_interval = Duration::from_secs(300)).await;
    let mut clusters = ClusterServiceClient::new(server.channel().await);
    ClusterServiceClient::new(direct_server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "direct".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import direct");
    let registration = clusters
        .create_agent_registration(pb::CreateAgentRegistrationRequest {
            cluster_id: "tunneled".into(),
            server_url: server.url(),
            ..Default::default()
        })
        .await
        .expect("registration")
        .into_inner();
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = AgentProcess::start(
        env!("CARGO_BIN_EXE_flotilla").as_ref(),
        &server.url(),
        &registration.registration_token,
        dir.path(),
        kenv::env().kubeconfig(),
    );
    kenv::poll_until(
        "the agent cluster reachable",
        Duration::from_secs(60),
        || {
            let mut clusters = clusters.clone();
            async move {
                clusters
                    .get_cluster(pb::GetClusterRequest {
                        cluster_id: "tunneled".into(),
                    })
                    .await
                    .ok()
                    .and_then(|c| c.into_inner().cluster?.status)
                    .is_some_and(|s| s.reachable)
            }
        },
    )
    .await;

    // The log: one pod on a KWOK node with a file of 200-byte lines.
    let ns = TestNamespace::create(&kube, "bench-agent").await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "firehose"},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/log:1"}]}
    }))
    .expect("pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod");
    let file = ns.pod_logs("firehose").await;
    let lines = log_mb * 1024 * 1024 / 200;
    let line = "y".repeat(150);
    let mut text = String::with_capacity(lines * 210);
    let at = support::kube::cri_line(k8s_openapi::jiff::Timestamp::now(), "stdout", &line);
    for _ in 0..lines {
        text.push_str(&at);
    }
    std::fs::write(file.path(), text).expect("write the log");

    println!(
        "agent tunnel vs direct: {rounds} rounds, {pods} pods, {log_mb} MB log; load {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let (mut list_direct, mut list_tunnel, mut log_direct, mut log_tunnel) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first.
        let order: [&str; 2] = if round % 2 == 0 {
            ["direct", "tunneled"]
        } else {
            ["tunneled", "direct"]
        };
        for cluster in order {
            let server = if cluster == "direct" {
                &direct_server
            } else {
                &server
            };
            let (took, count) = list_all(server, cluster).await;
            assert!(count >= pods.min(1), "{cluster}: {count} pods");
            let (follow_took, bytes) = follow_all(server, cluster, ns.name(), lines).await;
            let mbps = bytes as f64 / 1e6 / follow_took.as_secs_f64();
            println!(
                "  round {round} {cluster:<8} list {count} pods {:>7.0} ms, follow {:.1} MB/s",
                took.as_secs_f64() * 1000.0,
                mbps
            );
            let (list, log) = if cluster == "direct" {
                (&mut list_direct, &mut log_direct)
            } else {
                (&mut list_tunnel, &mut log_tunnel)
            };
            list.push(took.as_secs_f64() * 1000.0);
            log.push(mbps);
        }
    }
    println!(
        "results (load {}):",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    summary("list, direct", &mut list_direct, "ms");
    summary("list, through the tunnel", &mut list_tunnel, "ms");
    summary("follow, direct", &mut log_direct, "MB/s");
    summary("follow, through the tunnel", &mut log_tunnel, "MB/s");
    let med = |v: &[f64]| v[v.len() / 2];
    println!(
        "  tunnel/direct: list time {:.2}x (target <= 1.5x), follow throughput {:.2}x (target >= 0.8x)",
        med(&list_tunnel) / med(&list_direct),
        med(&log_tunnel) / med(&log_direct)
    );
    println!("  agent: {:?}", agent.counters());
    drop(agent);
    ns.cleanup().await;
    server.shutdown().await;
    direct_server.shutdown().await;
    if !fleet_existed {
        delete_namespace(&kube).await;
    }
}

#[tokio::main]
async fn main() {
    bench().await;
}
