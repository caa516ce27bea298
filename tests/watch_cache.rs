//! ListPods and ListNodes are served from a watch cache once it has synced: same answers as a
//! direct list, kept current by the watch.

mod support;

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use flotilla::api::pb::{
    self, cluster_service_client::ClusterServiceClient, node_service_client::NodeServiceClient,
    workload_service_client::WorkloadServiceClient,
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

/// True when a page token came from the cache (offset tokens start with "v1.").
fn from_cache(token: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|raw| raw.starts_with(b"v1."))
}

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

    // The first query starts the cache; a later one is answered from it.
    let (direct, direct_token) = names(&mut workloads, ns.name(), "app=cached").await;
    assert_eq!(direct, ["p0", "p1"]);
    assert!(!direct_token.is_empty());
    let started = Instant::now();
    let cached = loop {
        let (page, token) = names(&mut workloads, ns.name(), "app=cached").await;
        if from_cache(&token) {
            break page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "cache never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cached, direct, "the cache answers like the API server");

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
    // ...and are paged and filtered in the cache (an offset token, not a Kubernetes one).
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
    assert!(
        from_cache(&first.next_page_token),
        "served from the node cache"
    );
    assert_eq!(first.total_size, 3);
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
