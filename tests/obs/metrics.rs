//! Prometheus metrics on `--metrics-listen`, checked from outside: every expected number comes
//! from what the test itself did (calls made and their codes), from the real API server's own
//! audit log (Kubernetes requests by verb), or from a vendor simulator's request log (calls,
//! throttles); every scrape is read by a strict parser of the text exposition format. And the
//! deploy/ alert rules and dashboard refer only to series the server exports.

use flotilla_test_support as support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
    operation_service_client::OperationServiceClient,
    workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRoleBinding, RoleRef, Subject},
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use support::{
    deploy_queries::{deploy_queries_read_only, promql_metric_names},
    kube as kenv, kubeconfigs,
    lifecycle::{LIMIT, Vendor, create, create_credential, state, wait_operation},
    metrics_text::{Exposition, scrape},
    server::{ADMIN_TOKEN, TestServer},
    sim::{Faults, ack::AckSim},
    watch_oracle::AuditTail,
};
use tonic::Code;

const RPC_COUNT: &str = "rpc_server_call_duration_seconds_count";

fn with_metrics(s: &mut flotilla::config::Settings) {
    s.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
}

/// Calls of `method` (fully qualified) that ended with `code`, from a scrape.
fn calls(scraped: &Exposition, method: &str, code: &str) -> f64 {
    scraped.sum(
        RPC_COUNT,
        &[
            ("rpc_system_name", "grpc"),
            ("rpc_method", method),
            ("rpc_response_status_code", code),
        ],
    )
}

#[test]
fn the_exposition_reader_refuses_what_prometheus_refuses() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{m=\"q\\\"x\"} 3\n";
    let parsed = Exposition::parse(ok).expect("valid text");
    assert_eq!(parsed.sum("a_total", &[("m", "q\"x")]), 3.0);
    for bad in [
        "a 1\n",                           // no TYPE
        "# TYPE a gauge\na{1x=\"v\"} 1\n", // bad label name
        "# TYPE a gauge\na{x=v} 1\n",      // unquoted value
        "# TYPE a gauge\na 1\na 2\n",      // duplicate series
        "# TYPE a gauge\nb 1\n",           // sample of another family
        "# TYPE a gauge\na one\n",         // not a number
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n",
    ] {
        assert!(Exposition::parse(bad).is_err(), "accepted {bad:?}");
    }
}

// ---- the listener, as an operator runs the binary ----

/// TCP sockets `pid` listens on, from /proc (its fds matched against the kernel's socket
/// tables).
fn listening_sockets(pid: u32) -> usize {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|target| {
                    let text = target.display().to_string();
                    Some(
                        text.strip_prefix("socket:[")?
                            .strip_suffix(']')?
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|table| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // st 0A is LISTEN; field 9 is the inode.
            fields.get(3) == Some(&"0A") && fields.get(9).is_some_and(|i| inodes.contains(*i))
        })
        .count()
}

struct Serving {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `flotilla serve` on a free loopback port with `extra` arguments; returns once it listens.
fn serve(extra: &[&str]) -> (Serving, u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::process::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("FLOTILLA_DATA_DIR", dir.path())
        .env("FLOTILLA_LOG", "warn")
        .env_remove("FLOTILLA_METRICS_LISTEN")
        .env_remove("FLOTILLA_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run flotilla serve");
    let serving = Serving { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "flotilla serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (serving, port)
}

#[tokio::test]
async fn the_metrics_listener_is_off_by_default_and_serves_only_get_metrics() {
    let (plain, _) = serve(&[]);
    assert_eq!(
        listening_sockets(plain.child.id()),
        1,
        "without --metrics-listen only the API port listens"
    );
    drop(plain);

    let metrics_port = support::process::free_port();
    let metrics_addr: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().expect("addr");
    let (with, _) = serve(&["--metrics-listen", &metrics_addr.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while listening_sockets(with.child.id()) < 2 {
        assert!(Instant::now() < deadline, "the metrics port never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(listening_sockets(with.child.id()), 2);
    let scraped = scrape(metrics_addr).await;
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "flotilla_runtime_alive_tasks",
    ] {
        let value = scraped.sum(name, &[]);
        assert!(value > 0.0, "{name} = {value}");
    }
    // The process's own numbers, read from /proc independently.
    let rss = support::process::rss_kib(with.child.id()) as f64 * 1024.0;
    let reported = scraped.sum("process_resident_memory_bytes", &[]);
    assert!(
        (reported - rss).abs() < rss * 0.5,
        "RSS {reported} vs /proc's {rss}"
    );

    let client = reqwest::Client::new();
    let other = client
        .get(format!("http://{metrics_addr}/debug"))
        .send()
        .await
        .expect("GET /debug");
    assert_eq!(other.status(), 404);
    let post = client
        .post(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("POST /metrics");
    assert_eq!(post.status(), 405);
}

// ---- RPCs ----

/// One grpc-web call (HTTP/1.1, as a browser makes it) of ListClusters; its grpc-status.
async fn grpc_web_list_clusters(server: &TestServer) -> String {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/flotilla.v1.ClusterService/ListClusters",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        // One uncompressed frame holding an empty message.
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("grpc-web call");
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("body");
    // The trailers travel in a frame flagged 0x80 at the end of the body.
    let text = String::from_utf8_lossy(&body).to_string();
    let at = text
        .find("grpc-status:")
        .unwrap_or_else(|| panic!("no grpc-status in the grpc-web body {text:?}"));
    text[at + "grpc-status:".len()..]
        .split("\r\n")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test]
async fn rpc_calls_are_counted_by_method_and_code() {
    let server = TestServer::start_with(with_metrics).await;
    let addr = server.metrics_addr().expect("metrics address");
    let list = "flotilla.v1.ClusterService/ListClusters";
    let get = "flotilla.v1.ClusterService/GetCluster";
    let before = scrape(addr).await;
    assert_eq!(calls(&before, list, "OK"), 0.0);

    let mut api = ClusterServiceClient::new(server.channel().await);
    for _ in 0..3 {
        api.list_clusters(pb::ListClustersRequest::default())
            .await
            .expect("ListClusters");
    }
    for _ in 0..2 {
        let err = api
            .get_cluster(pb::GetClusterRequest {
                cluster_id: "no-such-cluster".into(),
            })
            .await
            .expect_err("no such cluster");
        assert_eq!(err.code(), Code::NotFound);
    }
    let err = ClusterServiceClient::new(server.raw_channel().await)
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(grpc_web_list_clusters(&server).await, "0");

    let after = scrape(addr).await;
    assert_eq!(calls(&after, list, "OK"), 4.0, "3 gRPC + 1 grpc-web");
    assert_eq!(calls(&after, list, "UNAUTHENTICATED"), 1.0);
    assert_eq!(calls(&after, get, "NOT_FOUND"), 2.0);
    assert_eq!(calls(&after, get, "OK"), 0.0);
    // Every call is in exactly one bucket series, and nothing else was counted for these.
    let all: f64 = after
        .samples(RPC_COUNT, &[])
        .iter()
        .filter(|s| s.labels["rpc_method"].starts_with("flotilla.v1.ClusterService/"))
        .map(|s| s.value)
        .sum();
    assert_eq!(all, 7.0);
    server.shutdown().await;
}

// ---- Kubernetes requests against the API server's own audit log ----

/// A ServiceAccount bound to cluster-admin, used only by this test's server: every request the
/// API server logs under its name was made by that server.
struct Account {
    name: String,
    namespace: String,
    token: String,
}

impl Account {
    async fn create(namespace: &str) -> Account {
        let client = kenv::client().await;
        let name = "obs-metrics".to_string();
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some(name.clone());
        sas.create(&PostParams::default(), &sa).await.expect("sa");
        let mut binding = ClusterRoleBinding::default();
        binding.metadata.name = Some(format!("{namespace}-{name}"));
        binding.role_ref = RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        };
        binding.subjects = Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.clone(),
            namespace: Some(namespace.into()),
            ..Default::default()
        }]);
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &binding)
            .await
            .expect("binding");
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: None,
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let issued: TokenRequest = sas
            .create_subresource("token", &name, &PostParams::default(), &request)
            .await
            .expect("token");
        Account {
            token: issued.status.and_then(|s| s.token).expect("token"),
            name,
            namespace: namespace.into(),
        }
    }

    fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    async fn cleanup(self) {
        let client = kenv::client().await;
        let _ = Api::<ClusterRoleBinding>::all(client)
            .delete(
                &format!("{}-{}", self.namespace, self.name),
                &DeleteParams::default(),
            )
            .await;
    }
}

/// Requests by verb that the API server logged for `user` (each request once, whatever its
/// stages).
fn audited_verbs(audit: &AuditTail, user: &str) -> BTreeMap<String, usize> {
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in audit.events() {
        if event["user"]["username"] == user {
            ids.entry(event["verb"].as_str().unwrap_or("").to_string())
                .or_default()
                .insert(event["auditID"].as_str().unwrap_or("").to_string());
        }
    }
    ids.into_iter()
        .map(|(verb, set)| (verb, set.len()))
        .collect()
}

/// Kubernetes requests by verb in a scrape, over every cluster and status.
fn measured_verbs(scraped: &Exposition) -> BTreeMap<String, usize> {
    let mut verbs = BTreeMap::new();
    // The API server's audit policy leaves out /version and the like (scripts/kube-env).
    for s in scraped.samples("flotilla_kube_request_duration_seconds_count", &[]) {
        if s.labels["scope"] != "nonresource" {
            *verbs.entry(s.labels["verb"].clone()).or_default() += s.value as usize;
        }
    }
    verbs.retain(|_, n| *n > 0);
    verbs
}

#[tokio::test]
async fn kubernetes_requests_match_the_api_servers_audit_log() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "obs-kube").await;
    let account = Account::create(ns.name()).await;
    let audit = AuditTail::new();
    let server = TestServer::start_with(|s| {
        with_metrics(s);
        s.probe_interval = Duration::from_secs(2);
    })
    .await;
    let addr = server.metrics_addr().expect("metrics address");
    let channel = server.channel().await;
    ClusterServiceClient::new(channel.clone())
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "obs".into(),
            source: Some(pb::import_cluster_request::Source::Token(pb::TokenSource {
                server: kubeconfigs::server(),
                bearer_token: account.token.clone(),
                ca_pem: kubeconfigs::ca_pem(),
            })),
            ..Default::default()
        })
        .await
        .expect("import");
    let mut workloads = WorkloadServiceClient::new(channel.clone());
    for _ in 0..2 {
        workloads
            .list_pods(pb::ListPodsRequest {
                cluster_id: "obs".into(),
                namespace: ns.name().into(),
                ..Default::default()
            })
            .await
            .expect("ListPods");
    }
    workloads
        .list_workloads(pb::ListWorkloadsRequest {
            cluster_id: "obs".into(),
            namespace: ns.name().into(),
            ..Default::default()
        })
        .await
        .expect("ListWorkloads");

    // A server stream is open while the client reads it, and CANCELLED once it goes away.
    let watch = "flotilla.v1.LogStream/WatchEvents";
    let mut stream = LogStreamClient::new(channel.clone())
        .watch_events(pb::WatchEventsRequest {
            cluster_id: "obs".into(),
            namespace: ns.name().into(),
            ..Default::default()
        })
        .await
        .expect("WatchEvents")
        .into_inner();
    let open = scrape(addr).await;
    assert_eq!(
        open.sum("flotilla_rpc_server_open_streams", &[("kind", "events")]),
        1.0
    );
    let _ = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = scrape(addr).await;
        let open = now.sum("flotilla_rpc_server_open_streams", &[("kind", "events")]);
        let cancelled = calls(&now, watch, "CANCELLED");
        if open == 0.0 && cancelled == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the client left: {open} open, {cancelled} CANCELLED"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every request the server made to the cluster, by verb, is in the API server's audit log
    // under this test's ServiceAccount, and nothing more.
    let user = account.username();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let scraped = scrape(addr).await;
        let measured = measured_verbs(&scraped);
        let audited = audited_verbs(&audit, &user);
        // Once the prober has been round too, so its requests are in both.
        let reachable = scraped.sum("flotilla_cluster_reachable", &[("cluster_id", "obs")]);
        if measured == audited && measured.get("list").copied().unwrap_or(0) > 0 && reachable == 1.0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics {measured:?} vs the API server's audit log {audited:?}; reachable {reachable}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.shutdown().await;
    account.cleanup().await;
    ns.cleanup().await;
}

// ---- vendor calls and operations against the simulator ----

fn strip<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

#[tokio::test]
async fn vendor_calls_throttles_and_operations_match_the_simulator() {
    let sim = AckSim::start(kubeconfigs::admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(600), Duration::from_millis(200));
    sim.control.set_faults(Faults {
        throttle_ratio: 0.3,
        ..Faults::default()
    });
    let vendor = Vendor {
        provider: "ack",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    let endpoint = vendor.endpoint.clone();
    let server = TestServer::start_with(move |s| {
        with_metrics(s);
        s.probe_interval = Duration::from_secs(1);
        s.vendors.ack.endpoint = Some(endpoint);
        s.operations.poll_interval = Duration::from_millis(100);
        s.vendors.transport.backoff_base = Duration::from_millis(20);
        s.vendors.transport.backoff_cap = Duration::from_millis(200);
    })
    .await;
    let addr = server.metrics_addr().expect("metrics address");
    let credential = create_credential(
        server.channel().await,
        "ack-key",
        "ack",
        (&vendor.key.0, &vendor.key.1),
    )
    .await;
    // Every series name seen in any scrape: the deploy/ queries must read only these.
    let mut exported = BTreeSet::new();
    let (op, _) = create(&server, "ack", "obs-ack", &credential, "1.32.1-aliyun.1").await;
    let watching = OperationServiceClient::new(server.channel().await)
        .watch_operation(pb::WatchOperationRequest {
            operation_id: op.id.clone(),
        })
        .await
        .expect("WatchOperation");
    // While the operation is active (the simulator provisions for 600 ms at least).
    let during = scrape(addr).await;
    assert_eq!(
        during.sum("flotilla_rpc_server_open_streams", &[("kind", "operation")]),
        1.0
    );
    exported.extend(during.series_names());
    drop(watching);
    let done = wait_operation(server.channel().await, &op.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    // The new cluster (the real test control plane) is probed and its pods cached.
    WorkloadServiceClient::new(server.channel().await)
        .list_pods(pb::ListPodsRequest {
            cluster_id: "obs-ack".into(),
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("ListPods");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scraped = scrape(addr).await;
        exported.extend(scraped.series_names());
        let probed = scraped.sum("flotilla_cluster_reachable", &[("cluster_id", "obs-ack")]);
        let cached = scraped.samples("flotilla_watch_cache_objects", &[("cluster_id", "obs-ack")]);
        if probed == 1.0 && !cached.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "probed {probed}, cache {cached:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The simulator's own log: every request it answered, and which it throttled.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scraped = scrape(addr).await;
        let seen = sim.control.seen();
        let throttled = seen.iter().filter(|s| s.outcome == "throttled").count() as f64;
        let attempts = scraped.sum("flotilla_vendor_request_duration_seconds_count", &[]);
        let throttles = scraped.sum("flotilla_vendor_throttles_total", &[]);
        let retries = scraped.sum("flotilla_vendor_retries_total", &[]);
        let calls_ok = scraped.sum("flotilla_vendor_calls_total", &[("outcome", "OK")]);
        let calls_all = scraped.sum("flotilla_vendor_calls_total", &[]);
        let expected = (
            seen.len() as f64,
            throttled,
            throttled,
            seen.len() as f64 - throttled,
        );
        let got = (attempts, throttles, retries, calls_ok);
        if got == expected && calls_all == calls_ok && throttled > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "(attempts, throttles, retries, calls OK) measured {got:?}, simulator {expected:?}; \
             all calls {calls_all}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Operations by type and state, as the API lists them.
    let listed = OperationServiceClient::new(server.channel().await)
        .list_operations(pb::ListOperationsRequest::default())
        .await
        .expect("ListOperations")
        .into_inner()
        .operations;
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    for op in &listed {
        let kind = pb::OperationType::try_from(op.r#type).expect("type");
        let state = pb::OperationState::try_from(op.state).expect("state");
        *expected
            .entry((
                strip(kind.as_str_name(), "OPERATION_TYPE_").to_string(),
                strip(state.as_str_name(), "OPERATION_STATE_").to_string(),
            ))
            .or_default() += 1.0;
    }
    assert_eq!(
        expected.get(&("CREATE_CLUSTER".to_string(), "SUCCEEDED".to_string())),
        Some(&1.0)
    );
    let scraped = scrape(addr).await;
    let mut measured = BTreeMap::new();
    for s in scraped.samples("flotilla_operations", &[]) {
        if s.value > 0.0 {
            measured.insert(
                (s.labels["kind"].clone(), s.labels["state"].clone()),
                s.value,
            );
        }
    }
    assert_eq!(measured, expected);
    server.shutdown().await;
    deploy_queries_read_only(&exported);
}

// ---- deploy/: alert rules and dashboard (support::deploy_queries) ----

#[test]
fn promql_names_are_found() {
    let names = promql_metric_names(
        "histogram_quantile(0.99, sum by (le, rpc_method) (rate(rpc_server_call_duration_seconds_bucket{rpc_response_status_code!=\"OK\"}[5m]))) > 2.5 and on (x) up == 1",
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "rpc_server_call_duration_seconds_bucket".to_string(),
            "up".to_string()
        ])
    );
}
