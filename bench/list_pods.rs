//! ListPods of every pod in the test control plane (10,000 pods in namespace `bench-pods`, spread
//! over the KWOK nodes), side by side in one run, in alternating rounds:
//!
//! - Flotilla: `WorkloadService/ListPods`, all namespaces, paging through at page size 500 over one
//!   HTTP/2 connection to the release binary (the time of the whole walk);
//! - kube-rs straight at kube-apiserver: `Api::<Pod>::all(..).list(..)` in one request, and in
//!   pages of 500;
//! - `kubectl get pods -A -o json > /dev/null` (a process per round, as an operator runs it), when
//!   the test environment's kubectl is there.
//!
//! Also: the first (cold) Flotilla walk, and the growth of the server's RSS per pod from just
//! after the import to once its watch cache has synced (ListPods answered from it) and to after
//! the measured rounds.
//!
//! With `FLOTILLA_BASELINE_BIN` set, a second server from that binary (say, a build of the
//! previous commit) is imported, walked and measured the same way in the same run, one server
//! at a time for the cold walk and RSS, and in the alternating rounds beside the others.
//!
//!     scripts/kube-env up
//!     cargo build --release && cargo bench --bench list_pods
//!
//! Environment: `BENCH_PODS` (default 10000), `BENCH_ROUNDS` (default 9, at least 7),
//! `FLOTILLA_BIN`, `FLOTILLA_BASELINE_BIN` (default none), `FLOTILLA_KUBE_DIR` (default
//! target/kube-env), `KUBECTL`.
//! The namespace is deleted at the end, also when the run fails.
//!
//! Not a timed test: it prints numbers for the issue notes.

use flotilla_test_support as support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::ListParams};

use base64::Engine;
use support::{
    kube::NODES,
    kubeconfigs::admin_kubeconfig,
    pod_fleet::{NAMESPACE, create_pods, delete_namespace, kubectl},
    process::{ServerProcess, release_binary, rss_kib},
    server::AuthedChannel,
    watch_oracle::try_metric,
};

const PAGE: i32 = 500;

type Workloads = WorkloadServiceClient<AuthedChannel>;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Pages through every pod of every namespace; the walk's time, the pods seen and each page's
/// time.
async fn flotilla_walk(
    client: &mut Workloads,
    cluster_id: &str,
) -> (Duration, usize, Vec<Duration>) {
    let started = Instant::now();
    let (mut token, mut seen, mut pages) = (String::new(), 0, Vec::new());
    loop {
        let page_started = Instant::now();
        let reply = client
            .list_pods(pb::ListPodsRequest {
                cluster_id: cluster_id.into(),
                namespace: String::new(),
                page_size: PAGE,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("Flotilla ListPods: {s:?}"))
            .into_inner();
        pages.push(page_started.elapsed());
        seen += reply.pods.len();
        if reply.next_page_token.is_empty() {
            return (started.elapsed(), seen, pages);
        }
        token = reply.next_page_token;
    }
}

/// Pod LIST requests kube-apiserver has answered so far (its `apiserver_request_total`), to tell
/// whether a Flotilla walk reached the API server or was served from a cache. None when the
/// metrics cannot be read.
async fn apiserver_pod_lists(kube: &kube::Client) -> Option<u64> {
    let lists = (
        "apiserver_request_total",
        &[("resource", "pods"), ("subresource", ""), ("verb", "LIST")][..],
    );
    try_metric(kube, lists).await.ok().map(|total| total as u64)
}

async fn kube_list(pods: &Api<Pod>, page: Option<u32>) -> (Duration, usize) {
    let started = Instant::now();
    let (mut token, mut seen) = (None::<String>, 0);
    loop {
        let mut params = ListParams::default();
        if let Some(limit) = page {
            params = params.limit(limit);
        }
        if let Some(token) = token {
            params = params.continue_token(&token);
        }
        let list = pods
            .list(&params)
            .await
            .unwrap_or_else(|e| panic!("kube-rs list: {e}"));
        seen += list.items.len();
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => token = Some(next),
            None => return (started.elapsed(), seen),
        }
    }
}

async fn kubectl_list(kubectl: &Path, kubeconfig: &Path) -> Duration {
    let mut command = Command::new(kubectl);
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "pods", "-A", "-o", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{}: {e}", kubectl.display()));
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "kubectl get pods failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    took
}

struct Series {
    label: String,
    times: Vec<Duration>,
}

impl Series {
    fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            times: Vec::new(),
        }
    }

    fn p50(&self) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }
}

/// A Flotilla server process under test: the build being measured and, when asked for, a
/// baseline build beside it, both measured the same way in the same run.
struct Server {
    label: &'static str,
    process: ServerProcess,
}

/// A server with the cluster imported, and what was measured of it.
struct Subject {
    label: &'static str,
    pid: u32,
    workloads: Workloads,
    cluster_id: String,
    rss_before: u64,
    rss_synced: u64,
    rss_after: u64,
    cold: Duration,
    page_times: Vec<Vec<Duration>>,
}

struct Setup {
    kube: kube::Client,
    kubeconfig: PathBuf,
    embedded: String,
    kubectl: Option<PathBuf>,
    servers: Vec<Server>,
    pods: usize,
    rounds: usize,
}

/// Connects to a server and imports the test control plane into it.
async fn import(server: &Server, embedded: &str) -> (Workloads, String) {
    let channel = server.process.channel().await;
    let mut clusters = ClusterServiceClient::new(channel.clone());
    let cluster = clusters
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "bench-kube-env".into(),
            display_name: "list_pods bench".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: embedded.as_bytes().to_vec(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| {
            panic!(
                "{}: ImportCluster of the test control plane: {s:?}",
                server.label
            )
        })
        .into_inner()
        .cluster
        .expect("imported cluster");
    let workloads = WorkloadServiceClient::new(channel).max_decoding_message_size(64 << 20);
    (workloads, cluster.id)
}

/// Waits until ListPods is answered from the server's watch cache (its page tokens are offsets,
/// "v1.", rather than Kubernetes continue tokens), so RSS is sampled once the cache has synced.
async fn wait_until_cached(client: &mut Workloads, cluster_id: &str, label: &str) {
    let cached = |token: &str| {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|raw| raw.starts_with(b"v1."))
    };
    let started = Instant::now();
    loop {
        let reply = client
            .list_pods(pb::ListPodsRequest {
                cluster_id: cluster_id.into(),
                page_size: 1,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{label}: ListPods: {s:?}"))
            .into_inner();
        if cached(&reply.next_page_token) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{label}: the watch cache did not sync within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn bench(setup: Setup) {
    println!("setting up namespace {NAMESPACE}:");
    delete_namespace(&setup.kube).await;
    create_pods(&setup.kube, setup.pods).await;

    let all_pods = Api::<Pod>::all(setup.kube.clone());
    let mut subjects = Vec::new();
    for server in &setup.servers {
        let (workloads, cluster_id) = import(server, &setup.embedded).await;
        subjects.push(Subject {
            label: server.label,
            pid: server.process.pid(),
            workloads,
            cluster_id,
            rss_before: 0,
            rss_synced: 0,
            rss_after: 0,
            cold: Duration::ZERO,
            page_times: Vec::new(),
        });
    }
    // One server at a time: its RSS right after the import, its cold walk (which starts its watch
    // cache), then its RSS once the cache has synced and nothing has been served from it yet.
    let mut warmed = false;
    for s in &mut subjects {
        s.rss_before = rss_kib(s.pid);
        let (cold, cold_seen, _) = flotilla_walk(&mut s.workloads, &s.cluster_id).await;
        assert!(
            cold_seen >= setup.pods,
            "{}: listed {cold_seen} pods, expected at least {}",
            s.label,
            setup.pods
        );
        s.cold = cold;
        if !warmed {
            // Warm the direct paths too (connection, discovery cache).
            kube_list(&all_pods, None).await;
            if let Some(kubectl) = &setup.kubectl {
                kubectl_list(kubectl, &setup.kubeconfig).await;
            }
            warmed = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        wait_until_cached(&mut s.workloads, &s.cluster_id, s.label).await;
        s.rss_synced = rss_kib(s.pid);
    }

    // Methods: each Flotilla server, then kube-rs in one request, kube-rs in pages, kubectl.
    let servers = subjects.len();
    let mut series: Vec<Series> = subjects
        .iter()
        .map(|s| Series::new(format!("{} ListPods, pages of 500 (gRPC)", s.label)))
        .collect();
    series.push(Series::new("kube-rs Api::list, one request"));
    series.push(Series::new("kube-rs Api::list, pages of 500"));
    series.push(Series::new("kubectl get pods -A -o json"));
    let methods = servers + if setup.kubectl.is_some() { 3 } else { 2 };
    let mut counts = vec![0usize; servers + 2];
    for round in 0..setup.rounds {
        // Rotate the order so no method always runs first after another's garbage.
        for k in 0..methods {
            let method = (k + round) % methods;
            let took = if method < servers {
                let s = &mut subjects[method];
                let (took, seen, pages) = flotilla_walk(&mut s.workloads, &s.cluster_id).await;
                counts[method] = seen;
                s.page_times.push(pages);
                took
            } else if method < servers + 2 {
                let page = (method == servers + 1).then_some(PAGE as u32);
                let (took, seen) = kube_list(&all_pods, page).await;
                counts[method] = seen;
                took
            } else {
                kubectl_list(
                    setup.kubectl.as_deref().expect("kubectl"),
                    &setup.kubeconfig,
                )
                .await
            };
            series[method].times.push(took);
        }
        println!(
            "  round {}/{}: {}",
            round + 1,
            setup.rounds,
            series[..methods]
                .iter()
                .map(|s| format!("{:.0} ms", ms(*s.times.last().expect("time"))))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for s in &mut subjects {
        s.rss_after = rss_kib(s.pid);
    }
    // One more walk per server, untimed, watching kube-apiserver's pod LIST counter.
    let mut lists = Vec::new();
    for s in &mut subjects {
        let before = apiserver_pod_lists(&setup.kube).await;
        flotilla_walk(&mut s.workloads, &s.cluster_id).await;
        let after = apiserver_pod_lists(&setup.kube).await;
        lists.push((before, after));
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kube_one = &series[servers];
    let kube_pages = &series[servers + 1];
    println!();
    println!(
        "ListPods of every pod: {} pods in {NAMESPACE}, {} in the cluster (Flotilla {}, kube-rs {}/{}); \
         {} alternating rounds; {cores} cores",
        setup.pods,
        counts[servers],
        counts[..servers]
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        counts[servers],
        counts[servers + 1],
        setup.rounds
    );
    println!(
        "  {:<48} {:>9} {:>9} {:>9} {:>11}",
        "", "p50 ms", "min ms", "max ms", "Flotilla /"
    );
    let flotilla = series[0].p50();
    for s in &series[..methods] {
        println!(
            "  {:<48} {:>9.1} {:>9.1} {:>9.1} {:>11.3}",
            s.label,
            ms(s.p50()),
            ms(*s.times.iter().min().expect("times")),
            ms(*s.times.iter().max().expect("times")),
            flotilla.as_secs_f64() / s.p50().as_secs_f64(),
        );
    }
    if setup.kubectl.is_none() {
        println!("  (kubectl not found: set KUBECTL to include it)");
    }
    for (i, s) in subjects.iter().enumerate() {
        println!("{}:", s.label);
        println!(
            "  cold walk (first ListPods walk after import): {:.1} ms",
            ms(s.cold)
        );
        let page_p50 = |pick: fn(&Vec<Duration>) -> Option<&Duration>| {
            let mut v: Vec<Duration> = s
                .page_times
                .iter()
                .filter_map(|p| pick(p).copied())
                .collect();
            v.sort();
            ms(v[v.len() / 2])
        };
        let mut every_page: Vec<Duration> = s.page_times.iter().flatten().copied().collect();
        every_page.sort();
        println!(
            "  per page of {PAGE}: p50 {:.1} ms (first page p50 {:.1} ms, last page p50 {:.1} ms), \
             {} pages a walk",
            ms(every_page[every_page.len() / 2]),
            page_p50(|p| p.first()),
            page_p50(|p| p.last()),
            s.page_times[0].len()
        );
        match lists[i] {
            (Some(before), Some(after)) => println!(
                "  kube-apiserver pod LISTs during one more walk: {} ({})",
                after - before,
                if after == before {
                    "served from Flotilla's cache"
                } else {
                    "reached kube-apiserver; other clients of the control plane count too"
                }
            ),
            _ => println!(
                "  (kube-apiserver /metrics not readable: cannot tell whether a cache served)"
            ),
        }
        let p50 = series[i].p50().as_secs_f64();
        println!(
            "  target: p50 <= 0.25x the direct list; /kube-rs one request = {:.3}, \
             /kube-rs pages of 500 = {:.3}",
            p50 / kube_one.p50().as_secs_f64(),
            p50 / kube_pages.p50().as_secs_f64(),
        );
        let per_pod = |rss: u64| (rss as f64 - s.rss_before as f64) * 1024.0 / setup.pods as f64;
        println!(
            "  server RSS once the cache synced (before any cached walk): {:.1} MiB, {:.0} bytes per pod",
            s.rss_synced as f64 / 1024.0,
            per_pod(s.rss_synced)
        );
        println!(
            "  server RSS: {:.1} MiB after import, {:.1} MiB after the rounds",
            s.rss_before as f64 / 1024.0,
            s.rss_after as f64 / 1024.0
        );
        println!(
            "  server RSS per cached pod (includes any other growth): {:.0} bytes (target <= 2048)",
            per_pod(s.rss_after)
        );
    }
}

#[tokio::main]
async fn main() {
    let pods = env_usize("BENCH_PODS", 10_000);
    let rounds = env_usize("BENCH_ROUNDS", 9).max(7);
    assert!(pods > 0, "BENCH_PODS must be at least 1");
    let binary = release_binary();
    let baseline = std::env::var("FLOTILLA_BASELINE_BIN")
        .ok()
        .filter(|b| !b.is_empty());
    let kube = support::kube::client().await;
    let kube_dir = support::kube::env().dir().to_path_buf();
    let kubeconfig = support::kube::env().kubeconfig().to_path_buf();
    let embedded = admin_kubeconfig();
    let kubectl = kubectl(&kube_dir);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut servers = Vec::new();
    let builds = [
        ("Flotilla", Some(binary.clone())),
        ("Flotilla baseline", baseline),
    ];
    for (i, (label, binary)) in builds.into_iter().enumerate() {
        let Some(binary) = binary else { continue };
        let process = ServerProcess::start(&binary, &dir.path().join(format!("data-{i}")));
        println!("{label}: {binary}");
        servers.push(Server { label, process });
    }
    println!(
        "machine: {} cores; {pods} pods over {} KWOK nodes; kubectl: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        NODES.len(),
        kubectl
            .as_deref()
            .map_or("not found".into(), |p| p.display().to_string())
    );

    // Run in a task so a failure still reaches the cleanup below; the servers stop when the
    // task ends, either way.
    let outcome = tokio::spawn(bench(Setup {
        kube: kube.clone(),
        kubeconfig,
        embedded,
        kubectl,
        servers,
        pods,
        rounds,
    }))
    .await;
    println!("cleaning up:");
    delete_namespace(&kube).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
