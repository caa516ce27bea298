//! ListPods and ListNodes are served from a watch cache once it has synced: same answers as a
//! direct list, kept current by the watch. Whether a page came from the cache is judged by the
//! API server, not by our own page tokens: its audit log (LISTs of pods in the test's own
//! namespace are only ever ours) and its `/metrics`.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    node_service_client::NodeServiceClient, workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use support::{
    kube::{self as kenv, TestNamespace},
    kubeconfigs,
    server::{AuthedChannel, TestServer},
};

fn pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "cached", "index": name}},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "example.com/c:1"}]}
    }))
    .expect("pod")
}

use support::watch_oracle::{AuditTail, metric};

/// LISTs of pods at namespace scope, as the API server counts them.
const NAMESPACED_POD_LISTS: (&str, &[(&str, &str)]) = (
    "apiserver_request_total",
    &[
        ("verb", "LIST"),
        ("resource", "pods"),
        ("scope", "namespace"),
    ],
);

async fn names(
    client: &mut WorkloadServiceClient<AuthedChannel>,
    ns: &str,
    selector: &str,
) -> (Vec<String>, String) {
    let reply = client
        .list_pods(pb::ListPodsRequest {
            cluster_id: "local".into(),
            namespace: ns.into(),
            pods: Some(pb::list_pods_request::Pods::LabelSelector(selector.into())),
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("list pods")
        .into_inner();
    (
        reply.pods.into_iter().map(|p| p.name).collect(),
        reply.next_page_token,
    )
}

/// Waits until the cached pod `name` (ListPods, served from the synced cache) and a direct read
/// of it (GetPod always reads the API server) are at the same resourceVersion, running (so its
/// container statuses are set), then checks
/// they are the same pod, field for field.
async fn same_as_a_direct_read(
    client: &mut WorkloadServiceClient<AuthedChannel>,
    ns: &str,
    name: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut listed = client
            .list_pods(pb::ListPodsRequest {
                cluster_id: "local".into(),
                namespace: ns.into(),
                pods: Some(pb::list_pods_request::Pods::LabelSelector(format!(
                    "index={name}"
                ))),
                ..Default::default()
            })
            .await
            .expect("list pods")
            .into_inner()
            .pods;
        assert_eq!(listed.len(), 1, "{name}: {listed:?}");
        let cached = listed.remove(0);
        let direct = client
            .get_pod(pb::GetPodRequest {
                cluster_id: "local".into(),
                namespace: ns.into(),
                name: name.into(),
            })
            .await
            .expect("get pod")
            .into_inner()
            .pod
            .expect("pod");
        if cached.resource_version == direct.resource_version && direct.phase == "Running" {
            assert_eq!(cached, direct, "{name}: cached and direct differ");
            assert_eq!(
                (cached.node_name.as_str(), cached.labels.get("app")),
                ("kwok-a1", Some(&"cached".to_string()))
            );
            assert_eq!(cached.containers[0].image, "example.com/c:1");
            assert!(!cached.uid.is_empty() && cached.create_time.is_some());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: cache at {}, API server at {} ({}) after 30 s",
            cached.resource_version,
            direct.resource_version,
            direct.phase
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn lists_come_from_the_watch_cache_and_stay_current() {
    let ns = TestNamespace::create(&kenv::client().await, "cache").await;
    for i in 0..5 {
        ns.api::<Pod>()
            .create(&PostParams::default(), &pod(&format!("p{i}"), "kwok-a1"))
            .await
            .expect("pod");
    }
    let server = TestServer::start().await;
    ClusterServiceClient::new(server.channel().await)
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
    let mut workloads = WorkloadServiceClient::new(server.channel().await);

    // The first query starts the cache, and is answered by the API server: the oracle sees it.
    let audit = AuditTail::new();
    let (direct, direct_token) = names(&mut workloads, ns.name(), "app=cached").await;
    assert_eq!(direct, ["p0", "p1"]);
    assert!(!direct_token.is_empty());
    audit.wait_for_pod_lists(ns.name(), 1).await;
    // Once synced, the cache answers: no LIST reaches the API server any more.
    let cached = audit
        .until_served_without_a_list(ns.name(), || {
            let mut workloads = workloads.clone();
            let ns = ns.name().to_string();
            async move { names(&mut workloads, &ns, "app=cached").await.0 }
        })
        .await;
    assert_eq!(cached, direct, "the cache answers like the API server");
    // The cache keeps each pod encoded as ListPods sends it: field for field what a direct
    // read of the same version gives.
    for name in &cached {
        same_as_a_direct_read(&mut workloads, ns.name(), name).await;
    }
    // Many cached pages: the API server's own LIST counter does not move for them.
    let kube = kenv::client().await;
    let lists_before = metric(&kube, NAMESPACED_POD_LISTS).await;
    let audited_before = audit.pod_lists(ns.name());
    const PAGES: usize = 30;
    for _ in 0..PAGES {
        let (page, _) = names(&mut workloads, ns.name(), "app=cached").await;
        assert_eq!(page, ["p0", "p1"]);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        audit.pod_lists(ns.name()),
        audited_before,
        "a cached page was listed from the API server (audit log)"
    );
    let lists_after = metric(&kube, NAMESPACED_POD_LISTS).await;
    assert!(
        lists_after - lists_before < PAGES as f64,
        "apiserver_request_total LIST pods grew by {} over {PAGES} cached pages",
        lists_after - lists_before
    );

    // A direct token keeps paging directly even once the cache is ready.
    let second = workloads
        .list_pods(pb::ListPodsRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            pods: Some(pb::list_pods_request::Pods::LabelSelector(
                "app=cached".into(),
            )),
            page_size: 2,
            page_token: direct_token,
            ..Default::default()
        })
        .await
        .expect("second direct page")
        .into_inner();
    let second: Vec<_> = second.pods.into_iter().map(|p| p.name).collect();
    assert_eq!(second, ["p2", "p3"]);
    audit
        .wait_for_pod_lists(ns.name(), audited_before + 1)
        .await;

    // Set-based selectors and field selectors on the node are evaluated in the cache.
    let (picked, _) = names(&mut workloads, ns.name(), "index in (p1,p4)").await;
    assert_eq!(picked, ["p1", "p4"]);

    // Changes arrive through the watch.
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod("p5", "kwok-b1"))
        .await
        .expect("new pod");
    ns.api::<Pod>()
        .delete("p0", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    let started = Instant::now();
    loop {
        let reply = workloads
            .list_pods(pb::ListPodsRequest {
                cluster_id: "local".into(),
                namespace: ns.name().into(),
                page_size: 100,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        let all: Vec<_> = reply.pods.iter().map(|p| p.name.as_str()).collect();
        if all == ["p1", "p2", "p3", "p4", "p5"] {
            assert_eq!(reply.total_size, 5);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "cache not current: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nodes from the cache carry pod counts from the pod cache.
    let nodes = NodeServiceClient::new(server.channel().await)
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            ..Default::default()
        })
        .await
        .expect("nodes")
        .into_inner();
    assert_eq!(nodes.nodes.len(), 3);
    let a1 = nodes
        .nodes
        .iter()
        .find(|n| n.name == "kwok-a1")
        .expect("kwok-a1");
    assert!(a1.pod_count >= 4, "{}", a1.pod_count);
    // ...and are paged by key and filtered in the cache.
    let mut node_client = NodeServiceClient::new(server.channel().await);
    let first = node_client
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("nodes page")
        .into_inner();
    let names: Vec<_> = first.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["kwok-a1", "kwok-a2"]);
    assert_eq!(first.total_size, 3);
    let rest = node_client
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("second nodes page")
        .into_inner();
    let names: Vec<_> = rest.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["kwok-b1"]);
    assert_eq!(rest.next_page_token, "");
    let zone_b = node_client
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            zone: "zone-b".into(),
            ..Default::default()
        })
        .await
        .expect("nodes in zone-b")
        .into_inner();
    let names: Vec<_> = zone_b.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["kwok-b1"]);
    server.shutdown().await;
    ns.cleanup().await;
}

async fn import_local(server: &TestServer, kubeconfig: String) {
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "local".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfig.into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");
}

async fn pods_page(
    client: &mut WorkloadServiceClient<AuthedChannel>,
    ns: &str,
    size: i32,
    token: String,
) -> pb::ListPodsResponse {
    client
        .list_pods(pb::ListPodsRequest {
            cluster_id: "local".into(),
            namespace: ns.into(),
            page_size: size,
            page_token: token,
            ..Default::default()
        })
        .await
        .expect("list pods")
        .into_inner()
}

/// A walk over a changing cache neither skips nor repeats a pod that exists for the whole walk
/// (Kubernetes' own `continue` guarantee): 2,000 pods in pages of 100 while other pods, sorting
/// before and after the cursor, come and go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_over_a_changing_cache_sees_every_stable_pod_once() {
    use futures::{StreamExt, TryStreamExt};
    const STABLE: usize = 2000;
    let ns = TestNamespace::create(&kenv::client().await, "walk").await;
    let nodes = ["kwok-a1", "kwok-a2", "kwok-b1"];
    let stable: Vec<String> = (0..STABLE).map(|i| format!("p-{i:04}")).collect();
    let pods = ns.api::<Pod>();
    futures::stream::iter(stable.iter().enumerate())
        .map(|(i, name)| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(name, nodes[i % nodes.len()]))
                    .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("create 2,000 pods");

    let server = TestServer::start().await;
    import_local(&server, kubeconfigs::admin_kubeconfig()).await;
    let mut workloads = WorkloadServiceClient::new(server.channel().await);
    let audit = AuditTail::new();
    audit
        .until_served_without_a_list(ns.name(), || {
            let mut workloads = workloads.clone();
            let ns = ns.name().to_string();
            async move {
                let page = pods_page(&mut workloads, &ns, 1, String::new()).await;
                assert_eq!(
                    page.total_size as usize, STABLE,
                    "the cache holds every pod"
                );
            }
        })
        .await;

    // Churn: pods whose names sort before, among and after the stable ones, created and deleted
    // while the walk runs.
    let stop = tokio_util::sync::CancellationToken::new();
    let churn = tokio::spawn({
        let pods = pods.clone();
        let stop = stop.clone();
        async move {
            let mut changes = 0usize;
            let mut round = 0usize;
            while !stop.is_cancelled() {
                let names: Vec<String> = ["a", "p-0999-", "p-1999-", "z"]
                    .iter()
                    .map(|prefix| format!("{prefix}churn-{round}"))
                    .collect();
                for name in &names {
                    if pods
                        .create(&PostParams::default(), &pod(name, "kwok-a1"))
                        .await
                        .is_ok()
                    {
                        changes += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                for name in &names {
                    if pods
                        .delete(name, &DeleteParams::default().grace_period(0))
                        .await
                        .is_ok()
                    {
                        changes += 1;
                    }
                }
                round += 1;
            }
            changes
        }
    });

    let lists_before = audit.pod_lists(ns.name());
    let mut seen: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    let mut between_pages = 0usize;
    loop {
        let page = pods_page(&mut workloads, ns.name(), 100, token).await;
        pages += 1;
        assert!(page.pods.len() <= 100);
        seen.extend(page.pods.into_iter().map(|p| p.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages < 100, "the walk does not end");
        // Besides the background churn, a change that must not move the walk: two pods
        // appear before the cursor (and one after it) on one page, and go on the next. An
        // offset into the cache would repeat two pods, then skip two.
        let round = (pages - 1) / 2;
        let names = [
            format!("a-before-{round}"),
            format!("a-before-{round}-b"),
            format!("z-after-{round}"),
        ];
        for name in &names {
            if pages % 2 == 1 {
                pods.create(&PostParams::default(), &pod(name, "kwok-a2"))
                    .await
                    .expect("create a pod between pages");
            } else {
                pods.delete(name, &DeleteParams::default().grace_period(0))
                    .await
                    .expect("delete a pod between pages");
            }
            between_pages += 1;
        }
        // Let the watch bring the change into the cache before the next page.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.cancel();
    let changes = churn.await.expect("churn task");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        audit.pod_lists(ns.name()),
        lists_before,
        "the walk was served from the cache, not listed from the API server"
    );
    assert!(between_pages >= 20, "{between_pages} changes between pages");

    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for name in &seen {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "repeated: {repeated:?}");
    let missing: Vec<_> = stable
        .iter()
        .filter(|name| !counts.contains_key(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "skipped {} stable pods: {missing:?}",
        missing.len()
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in name order");
    eprintln!(
        "walked {} pods in {pages} pages while {changes} creates and deletes happened in the \
         background and {between_pages} between pages",
        seen.len()
    );
    server.shutdown().await;
    ns.cleanup().await;
}

/// A ServiceAccount that may list and watch pods and nodes cluster-wide: its requests are told
/// apart from every other test's in the API server's audit log by its user name.
struct WatcherAccount {
    user: String,
    kubeconfig: String,
    name: String,
}

impl WatcherAccount {
    async fn create(namespace: &str) -> WatcherAccount {
        use k8s_openapi::api::{
            authentication::v1::{TokenRequest, TokenRequestSpec},
            core::v1::ServiceAccount,
            rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject},
        };
        use kube::Api;
        let client = kenv::client().await;
        let name = format!("watcher-{namespace}");
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some(name.clone());
        sas.create(&PostParams::default(), &sa)
            .await
            .expect("service account");
        let rule = |resources: &[&str], verbs: &[&str]| PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        };
        let mut role = ClusterRole::default();
        role.metadata.name = Some(name.clone());
        role.rules = Some(vec![
            rule(&["namespaces"], &["get", "list"]),
            rule(&["nodes", "pods"], &["get", "list", "watch"]),
        ]);
        Api::<ClusterRole>::all(client.clone())
            .create(&PostParams::default(), &role)
            .await
            .expect("cluster role");
        let mut binding = ClusterRoleBinding::default();
        binding.metadata.name = Some(name.clone());
        binding.role_ref = RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: name.clone(),
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
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let issued: TokenRequest = sas
            .create_subresource("token", &name, &PostParams::default(), &request)
            .await
            .expect("token request");
        let token = issued
            .status
            .and_then(|s| s.token)
            .expect("token in TokenRequest status");
        use base64::Engine;
        let kubeconfig = kubeconfigs::kubeconfig(
            &kubeconfigs::server(),
            &format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(kubeconfigs::ca_pem())
            ),
            &format!("    token: {token}\n"),
        );
        WatcherAccount {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            kubeconfig,
            name,
        }
    }

    async fn cleanup(self) {
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
        let client = kenv::client().await;
        let dp = DeleteParams::default();
        let _ = kube::Api::<ClusterRoleBinding>::all(client.clone())
            .delete(&self.name, &dp)
            .await;
        let _ = kube::Api::<ClusterRole>::all(client)
            .delete(&self.name, &dp)
            .await;
    }
}

/// An idle cache stops its upstream watch: once nobody has queried the cluster for the idle
/// setting, the API server sees the pod watch end.
#[tokio::test]
async fn an_idle_cache_stops_its_upstream_watch() {
    let ns = TestNamespace::create(&kenv::client().await, "idle").await;
    let account = WatcherAccount::create(ns.name()).await;
    let audit = AuditTail::new();
    let kube = kenv::client().await;
    let watches = (
        "apiserver_longrunning_requests",
        &[("verb", "WATCH"), ("resource", "pods")][..],
    );
    let server = TestServer::start_with(|s| s.watch_cache_idle = Duration::from_secs(2)).await;
    import_local(&server, account.kubeconfig.clone()).await;
    let mut workloads = WorkloadServiceClient::new(server.channel().await);
    let watch_events = |stage: &str| audit.count("watch", "pods", None, Some(&account.user), stage);

    // The first query starts the cache, whose watcher lists and then watches pods.
    pods_page(&mut workloads, ns.name(), 10, String::new()).await;
    let started = Instant::now();
    while watch_events("ResponseStarted") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the API server never saw the cache's pod watch"
        );
        // Keep the cache in use while it starts.
        pods_page(&mut workloads, ns.name(), 10, String::new()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let open_gauge = metric(&kube, watches).await;
    let (opened, closed) = (
        watch_events("ResponseStarted"),
        watch_events("ResponseComplete"),
    );
    assert!(
        opened > closed,
        "a pod watch is open while in use ({opened} opened, {closed} ended)"
    );

    // Idle: no queries. The janitor stops the cache and its watch within a few idle periods.
    let idle_since = Instant::now();
    loop {
        let opened = watch_events("ResponseStarted");
        let closed = watch_events("ResponseComplete");
        if opened > 0 && closed == opened {
            break;
        }
        assert!(
            idle_since.elapsed() < Duration::from_secs(20),
            "after {:?} idle, {opened} pod watches opened and {closed} ended",
            idle_since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The gauge counts every client's watches (other tests run too); for the record.
    eprintln!(
        "apiserver_longrunning_requests WATCH pods: {open_gauge} while cached, {} after the idle stop",
        metric(&kube, watches).await
    );
    // Nothing restarted it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        watch_events("ResponseStarted"),
        watch_events("ResponseComplete"),
        "a pod watch was reopened without a query"
    );
    server.shutdown().await;
    account.cleanup().await;
    ns.cleanup().await;
}
