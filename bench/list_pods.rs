//! ListPods of every pod in the test control plane (10,000 pods in namespace `bench-pods`, spread
//! over the KWOK nodes), side by side in one run, in alternating rounds:
//!
//! - Flotilla: `WorkloadService/ListPods`, all namespaces, paging through at page size 500 over one
//!   HTTP/2 connection to the release binary (the time of the whole walk);
//! - kube-rs straight at kube-apiserver: `Api::<Pod>::all(..).list(..)` in one request, and in
//!   pages of 500 (whole pods, decoded from JSON);
//! - raw HTTP at kube-apiserver through the same client (the kubeconfig's client certificate), one
//!   `GET /api/v1/pods` reading the whole body without decoding it, as protobuf
//!   (`application/vnd.kubernetes.protobuf`), as JSON, and as metadata only
//!   (`PartialObjectMetadataList`): a lower bound for the fastest direct client;
//! - `kubectl get pods -A -o json > /dev/null` (a process per round, as an operator runs it), when
//!   the test environment's kubectl is there.
//!
//! Warm: those rounds, against a server whose watch cache has synced. Cold: the first Flotilla
//! walk after an import (which starts the watch cache and is served by direct pages until it has
//! synced), on a fresh server each round, alternating with a direct kube-rs walk in pages of 500.
//! Also the growth of the server's RSS per pod from just after the import to once its watch
//! cache has synced (each cold round), and to after the warm rounds.
//!
//! With `FLOTILLA_BASELINE_BIN` set, servers from that binary (say, a build of the previous
//! commit) are measured the same way in the same run, alternating with the build under test.
//! With `BENCH_PERF=<file>`, `perf record -g` samples each server during ten more warm walks
//! after the rounds (into `<file>.<build>`).
//!
//!     scripts/kube-env up
//!     cargo build --release && cargo bench --bench list_pods
//!
//! Environment: `BENCH_PODS` (default 10000), `BENCH_ROUNDS` (default 9, at least 5),
//! `BENCH_COLD_ROUNDS` (default 5, at least 1), `FLOTILLA_BIN`, `FLOTILLA_BASELINE_BIN` (default
//! none), `BENCH_PERF`, `FLOTILLA_KUBE_DIR` (default target/kube-env), `KUBECTL`.
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
    host::load_average,
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

/// One `GET /api/v1/pods` (no limit) through the kube client (its TLS connection and client
/// certificate), reading the whole body without decoding it; the time and the body's size.
async fn raw_list(kube: &kube::Client, accept: &'static str) -> (Duration, usize) {
    use http_body_util::BodyExt;
    let request = http::Request::get("/api/v1/pods")
        .header(http::header::ACCEPT, accept)
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let started = Instant::now();
    let response = kube
        .send(request)
        .await
        .unwrap_or_else(|e| panic!("GET /api/v1/pods ({accept}): {e}"));
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET /api/v1/pods ({accept}): reading the body: {e}"))
        .to_bytes();
    let took = started.elapsed();
    assert!(status.is_success(), "GET /api/v1/pods ({accept}): {status}");
    // The API server falls back to JSON for what it cannot encode as asked: check it did not.
    let wanted = accept.split(';').next().unwrap_or_default();
    assert!(
        content_type.starts_with(wanted),
        "GET /api/v1/pods: asked for {accept}, got {content_type}"
    );
    (took, body.len())
}

/// A direct list in the rounds.
#[derive(Clone, Copy)]
enum Direct {
    KubeOne,
    KubePages,
    Raw(&'static str),
    Kubectl,
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const JSON: &str = "application/json";
const METADATA: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

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

    /// The row, with `ratio` in the last column.
    fn line(&self, ratio: f64) -> String {
        format!(
            "  {:<62} {:>8.1} {:>8.1} {:>8.1} {:>10.3}",
            self.label,
            ms(self.p50()),
            ms(*self.times.iter().min().expect("times")),
            ms(*self.times.iter().max().expect("times")),
            ratio,
        )
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A Flotilla build under test.
struct Build {
    label: &'static str,
    binary: String,
}

/// A server of a build, with the test control plane imported.
struct Subject {
    process: ServerProcess,
    workloads: Workloads,
    cluster_id: String,
}

struct Setup {
    kube: kube::Client,
    kubeconfig: PathBuf,
    embedded: String,
    kubectl: Option<PathBuf>,
    builds: Vec<Build>,
    data: PathBuf,
    pods: usize,
    rounds: usize,
    cold_rounds: usize,
    perf: Option<PathBuf>,
}

/// Starts a server of `build` with a fresh data directory and imports the test control plane.
async fn start(build: &Build, data: &Path, embedded: &str) -> Subject {
    let process = ServerProcess::start(&build.binary, data);
    let channel = process.channel().await;
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
                build.label
            )
        })
        .into_inner()
        .cluster
        .expect("imported cluster");
    let workloads = WorkloadServiceClient::new(channel).max_decoding_message_size(64 << 20);
    Subject {
        process,
        workloads,
        cluster_id: cluster.id,
    }
}

/// Waits until ListPods is answered from the server's watch cache (its page tokens carry a key,
/// "c1.", rather than a Kubernetes continue token, "k1."), so RSS is sampled once the cache has
/// synced.
async fn wait_until_cached(client: &mut Workloads, cluster_id: &str, label: &str) {
    let cached = |token: &str| {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|raw| raw.starts_with(b"c1."))
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

/// The profile file of `build`: `out` with the build's label appended.
fn perf_file(out: &Path, build: &Build) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(format!(".{}", build.label.replace(' ', "-").to_lowercase()));
    PathBuf::from(name)
}

/// `perf record -g` of a process until dropped (then interrupted, so it writes its file).
struct Perf(std::process::Child);

impl Perf {
    fn start(pid: u32, out: &Path) -> Option<Perf> {
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-p", &pid.to_string(), "-o"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("perf: {e} (no profile)"))
            .ok()?;
        Some(Perf(child))
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

async fn direct(setup: &Setup, all_pods: &Api<Pod>, how: Direct) -> (Duration, usize) {
    match how {
        Direct::KubeOne => kube_list(all_pods, None).await,
        Direct::KubePages => kube_list(all_pods, Some(PAGE as u32)).await,
        Direct::Raw(accept) => raw_list(&setup.kube, accept).await,
        Direct::Kubectl => (
            kubectl_list(
                setup.kubectl.as_deref().expect("kubectl"),
                &setup.kubeconfig,
            )
            .await,
            0,
        ),
    }
}

async fn bench(setup: Setup) {
    println!("load average at the start: {}", load_average());
    println!("setting up namespace {NAMESPACE}:");
    delete_namespace(&setup.kube).await;
    create_pods(&setup.kube, setup.pods).await;

    let all_pods = Api::<Pod>::all(setup.kube.clone());
    // Warm the direct paths (connection, discovery cache).
    kube_list(&all_pods, None).await;
    raw_list(&setup.kube, PROTOBUF).await;
    if let Some(kubectl) = &setup.kubectl {
        kubectl_list(kubectl, &setup.kubeconfig).await;
    }

    // Cold: a fresh server of each build per round, imported; its first walk alternates with a
    // direct walk in pages of 500; RSS after the import and once the watch cache has synced.
    let builds = setup.builds.len();
    let mut cold: Vec<Series> = setup
        .builds
        .iter()
        .map(|b| {
            Series::new(format!(
                "{} ListPods, first walk after import (cold)",
                b.label
            ))
        })
        .collect();
    let mut cold_direct = Series::new("kube-rs Api::list, pages of 500, beside the cold walks");
    let mut rss_per_pod: Vec<Vec<f64>> = vec![Vec::new(); builds];
    let mut rss_walk_per_pod: Vec<Vec<f64>> = vec![Vec::new(); builds];
    let mut rss_synced_kib = vec![0u64; builds];
    let mut kept: Vec<Option<Subject>> = (0..builds).map(|_| None).collect();
    let mut started_servers = 0;
    for round in 0..setup.cold_rounds {
        for k in 0..builds {
            let b = (k + round) % builds;
            let build = &setup.builds[b];
            started_servers += 1;
            let mut s = start(
                build,
                &setup.data.join(format!("data-{started_servers}")),
                &setup.embedded,
            )
            .await;
            let pid = s.process.pid();
            let rss_before = rss_kib(pid);
            let direct_first = (round + k) % 2 == 1;
            if direct_first {
                cold_direct
                    .times
                    .push(kube_list(&all_pods, Some(PAGE as u32)).await.0);
            }
            let (took, seen, _) = flotilla_walk(&mut s.workloads, &s.cluster_id).await;
            assert!(
                seen >= setup.pods,
                "{}: listed {seen} pods, expected at least {}",
                build.label,
                setup.pods
            );
            cold[b].times.push(took);
            if !direct_first {
                cold_direct
                    .times
                    .push(kube_list(&all_pods, Some(PAGE as u32)).await.0);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            wait_until_cached(&mut s.workloads, &s.cluster_id, build.label).await;
            let synced = rss_kib(pid);
            rss_walk_per_pod[b]
                .push((synced as f64 - rss_before as f64) * 1024.0 / setup.pods as f64);
            // The cache alone: another fresh server whose first query asks for one pod, so
            // only the cache's own list brings pods into the process.
            started_servers += 1;
            let mut alone = start(
                build,
                &setup.data.join(format!("data-{started_servers}")),
                &setup.embedded,
            )
            .await;
            let alone_before = rss_kib(alone.process.pid());
            wait_until_cached(&mut alone.workloads, &alone.cluster_id, build.label).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let alone_synced = rss_kib(alone.process.pid());
            drop(alone);
            rss_per_pod[b]
                .push((alone_synced as f64 - alone_before as f64) * 1024.0 / setup.pods as f64);
            rss_synced_kib[b] = synced;
            println!(
                "  cold round {}/{} {}: first walk {:.0} ms; RSS {:.1} -> {:.1} MiB with the walk, \
                 {:.1} -> {:.1} MiB the cache alone",
                round + 1,
                setup.cold_rounds,
                build.label,
                ms(took),
                rss_before as f64 / 1024.0,
                synced as f64 / 1024.0,
                alone_before as f64 / 1024.0,
                alone_synced as f64 / 1024.0
            );
            // The last round's servers stay for the warm rounds; the others stop here.
            if round + 1 == setup.cold_rounds {
                kept[b] = Some(s);
            }
        }
    }
    let mut subjects: Vec<Subject> = kept.into_iter().map(|s| s.expect("kept")).collect();

    // Warm: each server, then the direct lists, rotating the order each round.
    let mut directs = vec![
        (
            Direct::KubeOne,
            "kube-rs Api::list, one request (JSON, decoded)",
        ),
        (
            Direct::KubePages,
            "kube-rs Api::list, pages of 500 (JSON, decoded)",
        ),
        (
            Direct::Raw(PROTOBUF),
            "raw GET, protobuf, one request (not decoded)",
        ),
        (
            Direct::Raw(JSON),
            "raw GET, JSON, one request (not decoded)",
        ),
        (
            Direct::Raw(METADATA),
            "raw GET, metadata only (JSON), one request (not decoded)",
        ),
    ];
    if setup.kubectl.is_some() {
        directs.push((Direct::Kubectl, "kubectl get pods -A -o json"));
    }
    let mut series: Vec<Series> = setup
        .builds
        .iter()
        .map(|b| Series::new(format!("{} ListPods, pages of 500 (gRPC, warm)", b.label)))
        .chain(directs.iter().map(|(_, label)| Series::new(*label)))
        .collect();
    let mut page_times: Vec<Vec<Vec<Duration>>> = vec![Vec::new(); builds];
    let mut seen = vec![0usize; series.len()];
    let mut body_bytes = vec![0usize; series.len()];
    let methods = series.len();
    let load_before = load_average();
    for round in 0..setup.rounds {
        for k in 0..methods {
            let method = (k + round) % methods;
            let took = if method < builds {
                let s = &mut subjects[method];
                let (took, count, pages) = flotilla_walk(&mut s.workloads, &s.cluster_id).await;
                seen[method] = count;
                page_times[method].push(pages);
                took
            } else {
                let (took, count) = direct(&setup, &all_pods, directs[method - builds].0).await;
                if matches!(directs[method - builds].0, Direct::Raw(_)) {
                    body_bytes[method] = count;
                } else {
                    seen[method] = count;
                }
                took
            };
            series[method].times.push(took);
        }
        println!(
            "  warm round {}/{}: {}",
            round + 1,
            setup.rounds,
            series
                .iter()
                .map(|s| format!("{:.0} ms", ms(*s.times.last().expect("time"))))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let load_after = load_average();
    // Profiles: ten walks in a row per server, nothing else, so the samples are the walks'.
    if let Some(out) = &setup.perf {
        for (s, b) in subjects.iter_mut().zip(&setup.builds) {
            let perf = Perf::start(s.process.pid(), &perf_file(out, b));
            tokio::time::sleep(Duration::from_millis(500)).await;
            for _ in 0..10 {
                flotilla_walk(&mut s.workloads, &s.cluster_id).await;
            }
            drop(perf);
        }
    }
    let rss_after: Vec<u64> = subjects.iter().map(|s| rss_kib(s.process.pid())).collect();
    // One more walk per server, untimed, watching kube-apiserver's pod LIST counter.
    let mut lists = Vec::new();
    for s in &mut subjects {
        let before = apiserver_pod_lists(&setup.kube).await;
        flotilla_walk(&mut s.workloads, &s.cluster_id).await;
        let after = apiserver_pod_lists(&setup.kube).await;
        lists.push((before, after));
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "ListPods of every pod: {} pods in {NAMESPACE}, {} in the cluster (Flotilla {}); \
         {} warm rounds, {} cold rounds; {cores} cores, shared with other work; load average {} \
         before the warm rounds, {} after",
        setup.pods,
        seen[builds],
        seen[..builds]
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        setup.rounds,
        setup.cold_rounds,
        load_before,
        load_after,
    );
    for (s, bytes) in series.iter().zip(&body_bytes) {
        if *bytes > 0 {
            println!(
                "  {}: {:.1} MiB body",
                s.label,
                *bytes as f64 / (1 << 20) as f64
            );
        }
    }
    println!(
        "warm (the server's watch cache has synced):\n  {:<62} {:>8} {:>8} {:>8} {:>10}",
        "", "p50 ms", "min ms", "max ms", "Flotilla /"
    );
    let flotilla = series[0].p50();
    for s in &series {
        println!("{}", s.line(flotilla.as_secs_f64() / s.p50().as_secs_f64()));
    }
    if setup.kubectl.is_none() {
        println!("  (kubectl not found: set KUBECTL to include it)");
    }
    let fastest = series[builds..]
        .iter()
        .min_by_key(|s| s.p50())
        .expect("direct series");
    println!(
        "cold (the first walk after an import, a fresh server each round):\n  {:<62} {:>8} {:>8} {:>8} {:>10}",
        "", "p50 ms", "min ms", "max ms", "/ direct"
    );
    for s in cold.iter().chain([&cold_direct]) {
        println!(
            "{}",
            s.line(s.p50().as_secs_f64() / cold_direct.p50().as_secs_f64())
        );
    }
    for (i, build) in setup.builds.iter().enumerate() {
        println!("{}:", build.label);
        let warm = series[i].p50().as_secs_f64();
        println!(
            "  target: warm walk <= 0.2x the fastest direct list ({}): {:.3}",
            fastest.label,
            warm / fastest.p50().as_secs_f64()
        );
        println!(
            "  target: cold walk <= 1x a direct walk (kube-rs, pages of 500, same rounds): {:.3}",
            cold[i].p50().as_secs_f64() / cold_direct.p50().as_secs_f64()
        );
        let mut every_page: Vec<Duration> = page_times[i].iter().flatten().copied().collect();
        every_page.sort();
        let page_p50 = |pick: fn(&Vec<Duration>) -> Option<&Duration>| {
            let mut v: Vec<Duration> = page_times[i]
                .iter()
                .filter_map(|p| pick(p).copied())
                .collect();
            v.sort();
            ms(v[v.len() / 2])
        };
        println!(
            "  warm, per page of {PAGE}: p50 {:.1} ms (first page p50 {:.1} ms, last page p50 {:.1} ms), \
             {} pages a walk",
            ms(every_page[every_page.len() / 2]),
            page_p50(|p| p.first()),
            page_p50(|p| p.last()),
            page_times[i][0].len()
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
        let spread = |values: &[f64]| {
            let mut sorted = values.to_vec();
            format!(
                "{:.0} bytes per pod, median of {} (min {:.0}, max {:.0})",
                median(&mut sorted),
                sorted.len(),
                sorted[0],
                sorted[sorted.len() - 1]
            )
        };
        println!(
            "  RSS growth from the import to the synced cache, the cache alone (first query: one \
             pod): {} (target <= 1024)",
            spread(&rss_per_pod[i])
        );
        println!(
            "  RSS growth from the import to the synced cache, with the cold walk: {}; {:.1} MiB \
             once synced",
            spread(&rss_walk_per_pod[i]),
            rss_synced_kib[i] as f64 / 1024.0
        );
        println!(
            "  RSS after the warm rounds: {:.1} MiB ({:+.0} bytes per pod since synced)",
            rss_after[i] as f64 / 1024.0,
            (rss_after[i] as f64 - rss_synced_kib[i] as f64) * 1024.0 / setup.pods as f64
        );
    }
    if let Some(out) = &setup.perf {
        for b in &setup.builds {
            let file = perf_file(out, b);
            println!(
                "profile of {}, ten warm walks: perf report -i {} --no-children --stdio",
                b.label,
                file.display()
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let pods = env_usize("BENCH_PODS", 10_000);
    let rounds = env_usize("BENCH_ROUNDS", 9).max(5);
    let cold_rounds = env_usize("BENCH_COLD_ROUNDS", 5).max(1);
    assert!(pods > 0, "BENCH_PODS must be at least 1");
    let binary = release_binary();
    let baseline = std::env::var("FLOTILLA_BASELINE_BIN")
        .ok()
        .filter(|b| !b.is_empty());
    let perf = std::env::var_os("BENCH_PERF").map(PathBuf::from);
    let kube = support::kube::client().await;
    let kube_dir = support::kube::env().dir().to_path_buf();
    let kubeconfig = support::kube::env().kubeconfig().to_path_buf();
    let embedded = admin_kubeconfig();
    let kubectl = kubectl(&kube_dir);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut builds = vec![Build {
        label: "Flotilla",
        binary,
    }];
    if let Some(binary) = baseline {
        builds.push(Build {
            label: "Flotilla baseline",
            binary,
        });
    }
    for b in &builds {
        println!("{}: {}", b.label, b.binary);
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
        builds,
        data: dir.path().to_path_buf(),
        pods,
        rounds,
        cold_rounds,
        perf,
    }))
    .await;
    println!("cleaning up:");
    delete_namespace(&kube).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
