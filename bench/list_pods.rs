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

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use flotilla::api::pb::{
    self, cluster_service_client::ClusterServiceClient,
    workload_service_client::WorkloadServiceClient,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
    config::{Config, KubeConfigOptions, Kubeconfig},
};
use serde_json::json;

const TOKEN: &str = "flt_bench-admin-token-0123456789abcdef";
const NAMESPACE: &str = "bench-pods";
const PAGE: i32 = 500;
const NODES: [&str; 3] = ["kwok-a1", "kwok-a2", "kwok-b1"];
const APPS: [(&str, &str); 8] = [
    ("storefront", "frontend"),
    ("gateway", "frontend"),
    ("checkout", "backend"),
    ("catalog", "backend"),
    ("payments", "backend"),
    ("search", "backend"),
    ("orders-db", "data"),
    ("events-kafka", "data"),
];

type Intercept = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
type Channel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Intercept>;
type Workloads = WorkloadServiceClient<Channel>;

fn bearer(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let value = format!("Bearer {TOKEN}").parse().expect("ascii");
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The test environment's kubectl: `$KUBECTL`, the `KUBECTL=` line of the environment's `env`
/// file, or the default cache path.
fn kubectl(kube_dir: &Path) -> Option<PathBuf> {
    let from_env_file = || {
        std::fs::read_to_string(kube_dir.join("env"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("KUBECTL=").map(PathBuf::from))
    };
    let default = || {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/flotilla/kube/v1.37.2/bin/kubectl"))
    };
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .or_else(from_env_file)
        .or_else(default)
        .filter(|p| p.is_file())
}

/// The admin kubeconfig with its file references turned into embedded data, for ImportCluster.
fn embedded_kubeconfig(path: &Path, config: &Kubeconfig) -> String {
    let context = config
        .current_context
        .as_deref()
        .and_then(|name| config.contexts.iter().find(|c| c.name == name))
        .and_then(|c| c.context.as_ref())
        .expect("kubeconfig has a current context");
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .expect("kubeconfig names the current context's cluster");
    let user = config
        .auth_infos
        .iter()
        .find(|u| Some(&u.name) == context.user.as_ref())
        .and_then(|u| u.auth_info.as_ref())
        .expect("kubeconfig names the current context's user");
    let dir = path.parent().unwrap_or(Path::new("."));
    let pem = |file: Option<&String>, what: &str| {
        let file = dir.join(file.unwrap_or_else(|| panic!("kubeconfig has no {what} file")));
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/kube-env up)", file.display()));
        B64.encode(bytes)
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: bench
  context:
    cluster: bench
    user: admin
current-context: bench
",
        server = cluster.server.as_deref().expect("kubeconfig has a server"),
        ca = pem(
            cluster.certificate_authority.as_ref(),
            "certificate-authority"
        ),
        cert = pem(user.client_certificate.as_ref(), "client-certificate"),
        key = pem(user.client_key.as_ref(), "client-key"),
    )
}

/// A small, realistic pod: one app container, a sidecar on every third pod, a few labels, bound
/// to a node directly (no scheduler) and tolerating kwok-a2's taint.
fn pod(i: usize) -> Pod {
    let (app, tier) = APPS[i % APPS.len()];
    let shard = (i / APPS.len()) % 16;
    let mut containers = vec![json!({
        "name": app,
        "image": format!("registry.example.com/shop/{app}:1.{}.{}", i % 7, i % 3),
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "SHARD", "value": shard.to_string()},
            {"name": "LOG_LEVEL", "value": "info"},
        ],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"memory": "64Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
    })];
    if i.is_multiple_of(3) {
        containers.push(json!({
            "name": "envoy",
            "image": "docker.io/envoyproxy/envoy:v1.31.2",
            "args": ["--config-path", "/etc/envoy/envoy.yaml"],
            "ports": [{"name": "admin", "containerPort": 9901, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "5m", "memory": "16Mi"}},
        }));
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{app}-{i:05}"),
            "namespace": NAMESPACE,
            "labels": {
                "app": app,
                "tier": tier,
                "shard": shard.to_string(),
                "app.kubernetes.io/part-of": "shop",
            },
        },
        "spec": {
            "nodeName": NODES[i % NODES.len()],
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}
            ],
            "containers": containers,
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 5,
        },
    }))
    .expect("pod")
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes the namespace (its pods first, without grace, so KWOK need not finish them) and waits
/// until it is gone. Nothing when it is not there.
async fn delete_namespace(kube: &kube::Client) {
    let namespaces = Api::<Namespace>::all(kube.clone());
    if namespaces
        .get_opt(NAMESPACE)
        .await
        .expect("get namespace")
        .is_none()
    {
        return;
    }
    let started = Instant::now();
    let pods = Api::<Pod>::namespaced(kube.clone(), NAMESPACE);
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    if let Err(e) = pods.delete_collection(&now, &ListParams::default()).await {
        eprintln!("deleting the pods of {NAMESPACE}: {e} (the namespace deletion will do it)");
    }
    match namespaces.delete(NAMESPACE, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return,
        Err(e) => panic!("deleting namespace {NAMESPACE}: {e}"),
    }
    wait_for(
        &format!("namespace {NAMESPACE} to be gone (is kube-controller-manager running?)"),
        Duration::from_secs(300),
        || async {
            namespaces
                .get_opt(NAMESPACE)
                .await
                .expect("get namespace")
                .is_none()
        },
    )
    .await;
    println!(
        "  namespace {NAMESPACE} deleted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Creates the namespace and `count` pods in it, then waits until KWOK has them all Running.
async fn create_pods(kube: &kube::Client, count: usize) {
    let namespaces = Api::<Namespace>::all(kube.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"flotilla.dev/bench": "list_pods"}},
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {NAMESPACE}: {e}"));
    // The ServiceAccount admission plugin refuses pods until the namespace's default account
    // exists (kube-controller-manager creates it).
    let accounts = Api::<ServiceAccount>::namespaced(kube.clone(), NAMESPACE);
    wait_for(
        "the default ServiceAccount in the new namespace (is kube-controller-manager running?)",
        Duration::from_secs(60),
        || async { matches!(accounts.get_opt("default").await, Ok(Some(_))) },
    )
    .await;

    let started = Instant::now();
    let pods = Api::<Pod>::namespaced(kube.clone(), NAMESPACE);
    let created = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(0..count)
        .for_each_concurrent(64, |i| {
            let (pods, created) = (&pods, &created);
            async move {
                let pod = pod(i);
                let mut attempt = 0;
                loop {
                    match pods.create(&PostParams::default(), &pod).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(e)) if e.code == 409 => break,
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            eprintln!("  creating pod {i}: {e}; retrying");
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => panic!("creating pod {i}: {e}"),
                    }
                }
                let n = created.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(1000) || n == count {
                    println!(
                        "  created {n}/{count} pods ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .await;
    let created_in = started.elapsed();

    let limit = Duration::from_secs(300 + count as u64 / 50);
    let mut last_report = Instant::now();
    loop {
        let list = pods.list(&ListParams::default()).await.expect("list pods");
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= count {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "only {running}/{count} pods Running after {limit:?}: is kwok running? \
             (scripts/kube-env status; its log is in target/kube-env/logs/)"
        );
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!(
                "  {running}/{count} pods Running ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "  {count} pods created in {:.1} s ({:.0}/s), all Running after {:.1} s",
        created_in.as_secs_f64(),
        count as f64 / created_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
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
    let request = http::Request::get("/metrics").body(Vec::new()).ok()?;
    let text = kube.request_text(request).await.ok()?;
    let total: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains("resource=\"pods\"")
                && l.contains("subresource=\"\"")
                && l.contains("verb=\"LIST\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    Some(total as u64)
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
    pid: u32,
    url: String,
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
    let channel = loop {
        match tonic::transport::Channel::from_shared(server.url.clone())
            .expect("url")
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let mut clusters = ClusterServiceClient::with_interceptor(channel.clone(), bearer as Intercept);
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
    let workloads = WorkloadServiceClient::with_interceptor(channel, bearer as Intercept)
        .max_decoding_message_size(64 << 20);
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
            pid: server.pid,
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

/// Starts `flotilla serve` from `binary` on a free loopback port with its own data dir.
fn start_server(binary: &str, data_dir: &Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let server = Command::new(binary)
        .args([
            "serve",
            "--rate-limit",
            "0",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("FLOTILLA_BOOTSTRAP_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e} (run `cargo build --release` first)"));
    (server, format!("http://127.0.0.1:{port}"))
}

#[tokio::main]
async fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let pods = env_usize("BENCH_PODS", 10_000);
    let rounds = env_usize("BENCH_ROUNDS", 9).max(7);
    assert!(pods > 0, "BENCH_PODS must be at least 1");
    let binary =
        std::env::var("FLOTILLA_BIN").unwrap_or_else(|_| format!("{root}/target/release/flotilla"));
    let baseline = std::env::var("FLOTILLA_BASELINE_BIN")
        .ok()
        .filter(|b| !b.is_empty());
    let kube_dir = std::env::var_os("FLOTILLA_KUBE_DIR")
        .map_or_else(|| Path::new(root).join("target/kube-env"), PathBuf::from);
    let kubeconfig = kube_dir.join("kubeconfig");
    let config = Kubeconfig::read_from(&kubeconfig)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/kube-env up)", kubeconfig.display()));
    let embedded = embedded_kubeconfig(&kubeconfig, &config);
    let kube = kube::Client::try_from(
        Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .expect("kube config"),
    )
    .expect("kube client");
    if let Err(e) = kube.apiserver_version().await {
        panic!("the test control plane does not answer: {e} (run scripts/kube-env up)");
    }
    let kubectl = kubectl(&kube_dir);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut children = Vec::new();
    let mut servers = Vec::new();
    let builds = [
        ("Flotilla", Some(binary.clone())),
        ("Flotilla baseline", baseline),
    ];
    for (i, (label, binary)) in builds.into_iter().enumerate() {
        let Some(binary) = binary else { continue };
        let (child, url) = start_server(&binary, &dir.path().join(format!("data-{i}")));
        println!("{label}: {binary}");
        servers.push(Server {
            label,
            pid: child.id(),
            url,
        });
        children.push(child);
    }
    println!(
        "machine: {} cores; {pods} pods over {} KWOK nodes; kubectl: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        NODES.len(),
        kubectl
            .as_deref()
            .map_or("not found".into(), |p| p.display().to_string())
    );

    // Run in a task so a failure still reaches the cleanup below.
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
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!("cleaning up:");
    delete_namespace(&kube).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
