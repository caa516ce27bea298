//! NodeService (Kubernetes side) and WorkloadService reads and changes against the real test
//! control plane, through the gRPC API.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    node_service_client::NodeServiceClient, workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Event};
use kube::api::PostParams;
use support::{
    kube::{self as kenv, TestNamespace},
    kubeconfigs::{self, ProberAccount},
    proxy::TcpProxy,
    server::{AuthedChannel, TestServer},
};
use tonic::Code;
use tonic_types::StatusExt;

async fn import(server: &TestServer, id: &str, kubeconfig: String) {
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: id.into(),
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

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "example.com/web:1.0"}]}
            }
        }
    }))
    .expect("deployment")
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn nodes_list_get_filter_cordon() {
    let server = TestServer::start().await;
    import(&server, "local", kubeconfigs::admin_kubeconfig()).await;
    let mut nodes = NodeServiceClient::new(server.channel().await);
    let all = nodes
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.nodes.len(), 3);
    assert_eq!(all.total_size, 3);
    assert!(all.nodes.iter().all(|n| n.ready));
    let tainted = all
        .nodes
        .iter()
        .find(|n| n.name == "kwok-a2")
        .expect("kwok-a2");
    assert_eq!(tainted.zone, "zone-a");
    assert_eq!(tainted.taints[0].key, "dedicated");
    assert_eq!(tainted.taints[0].effect, "NoSchedule");
    assert!(
        tainted
            .conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    );
    assert!(tainted.addresses.iter().any(|a| a.r#type == "InternalIP"));
    assert!(tainted.allocatable.contains_key("pods"));

    let zone_b = nodes
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            zone: "zone-b".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = zone_b.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["kwok-b1"]);
    let not_ready = nodes
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            ready: Some(false),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(not_ready.nodes.is_empty());
    let paged = nodes
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paged.nodes.len(), 2);
    let rest = nodes
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "local".into(),
            page_size: 2,
            page_token: paged.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.nodes.len(), 1);
    assert_eq!(rest.next_page_token, "");

    let cordoned = nodes
        .cordon_node(pb::CordonNodeRequest {
            cluster_id: "local".into(),
            node_name: "kwok-b1".into(),
        })
        .await
        .expect("cordon")
        .into_inner()
        .node
        .unwrap();
    assert!(cordoned.unschedulable);
    let uncordoned = nodes
        .uncordon_node(pb::UncordonNodeRequest {
            cluster_id: "local".into(),
            node_name: "kwok-b1".into(),
        })
        .await
        .expect("uncordon")
        .into_inner()
        .node
        .unwrap();
    assert!(!uncordoned.unschedulable);

    let missing = nodes
        .get_node(pb::GetNodeRequest {
            cluster_id: "local".into(),
            node_name: "no-such-node".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let unknown_cluster = nodes
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown_cluster.code(), Code::NotFound);
    server.shutdown().await;
}

async fn pods_of(
    workloads: &mut WorkloadServiceClient<AuthedChannel>,
    ns: &str,
    name: &str,
) -> Vec<pb::Pod> {
    workloads
        .list_pods(pb::ListPodsRequest {
            cluster_id: "local".into(),
            namespace: ns.into(),
            pods: Some(pb::list_pods_request::Pods::Workload(
                pb::WorkloadReference {
                    kind: pb::WorkloadKind::Deployment.into(),
                    name: name.into(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("list pods")
        .into_inner()
        .pods
}

#[tokio::test]
async fn workloads_pods_and_events() {
    let kube = kenv::client().await;
    let ns = TestNamespace::create(&kube, "workloads").await;
    let server = TestServer::start().await;
    import(&server, "local", kubeconfigs::admin_kubeconfig()).await;
    let mut workloads = WorkloadServiceClient::new(server.channel().await);
    ns.api::<Deployment>()
        .create(&PostParams::default(), &deployment("web", 3))
        .await
        .expect("create deployment");

    wait_for("3 running pods", Duration::from_secs(60), || {
        let mut w = workloads.clone();
        let ns = ns.name().to_string();
        async move {
            let pods = pods_of(&mut w, &ns, "web").await;
            pods.len() == 3 && pods.iter().all(|p| p.phase == "Running")
        }
    })
    .await;

    let got = workloads
        .get_workload(pb::GetWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::Deployment.into(),
            name: "web".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .workload
        .unwrap();
    assert_eq!(got.desired_replicas, 3);
    assert_eq!(got.images, ["example.com/web:1.0"]);
    assert_eq!(got.selector, "app=web");

    let listed = workloads
        .list_workloads(pb::ListWorkloadsRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            ..Default::default()
        })
        .await
        .expect("list all kinds")
        .into_inner();
    let kinds: Vec<_> = listed
        .workloads
        .iter()
        .map(|w| (w.kind(), w.name.as_str()))
        .collect();
    assert!(
        kinds.contains(&(pb::WorkloadKind::Deployment, "web")),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|(k, _)| *k == pb::WorkloadKind::ReplicaSet),
        "the Deployment's ReplicaSet is listed too: {kinds:?}"
    );
    let rs = listed
        .workloads
        .iter()
        .find(|w| w.kind() == pb::WorkloadKind::ReplicaSet)
        .unwrap();
    assert_eq!(rs.owner.as_ref().map(|o| o.name.as_str()), Some("web"));

    let pods = pods_of(&mut workloads, ns.name(), "web").await;
    let pod = &pods[0];
    assert!(pod.ready && pod.ready_containers == 1 && pod.total_containers == 1);
    assert!(
        !pod.node_name.is_empty() && pod.node_name != "kwok-a2",
        "taint respected"
    );
    assert_eq!(pod.containers[0].state(), pb::ContainerState::Running);
    let by_label = workloads
        .list_pods(pb::ListPodsRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            pods: Some(pb::list_pods_request::Pods::LabelSelector("app=web".into())),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_label.pods.len(), 2);
    assert!(!by_label.next_page_token.is_empty());
    let one = workloads
        .get_pod(pb::GetPodRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            name: pod.name.clone(),
        })
        .await
        .expect("get pod")
        .into_inner()
        .pod
        .unwrap();
    assert_eq!(one.uid, pod.uid);

    let scaled = workloads
        .scale_workload(pb::ScaleWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::Deployment.into(),
            name: "web".into(),
            replicas: 1,
        })
        .await
        .expect("scale")
        .into_inner()
        .workload
        .unwrap();
    assert_eq!(scaled.desired_replicas, 1);
    wait_for("1 pod after scaling", Duration::from_secs(60), || {
        let mut w = workloads.clone();
        let ns = ns.name().to_string();
        async move {
            pods_of(&mut w, &ns, "web")
                .await
                .iter()
                .filter(|p| p.deletion_time.is_none())
                .count()
                == 1
        }
    })
    .await;
    let restarted = workloads
        .restart_workload(pb::RestartWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::Deployment.into(),
            name: "web".into(),
        })
        .await
        .expect("restart")
        .into_inner()
        .workload
        .unwrap();
    assert!(restarted.generation > got.generation);
    let not_scalable = workloads
        .scale_workload(pb::ScaleWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::CronJob.into(),
            name: "web".into(),
            replicas: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(not_scalable.code(), Code::FailedPrecondition);

    // Events: three of our own, at known times, newest first; one object; a type filter.
    let events = ns.api::<Event>();
    for (i, (reason, kind)) in [
        ("First", "Normal"),
        ("Second", "Warning"),
        ("Third", "Normal"),
    ]
    .iter()
    .enumerate()
    {
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("ev-{i}")},
            "involvedObject": {"kind": "Deployment", "name": "web", "namespace": ns.name()},
            "reason": reason, "message": format!("event {i}"), "type": kind,
            "firstTimestamp": format!("2026-01-01T00:00:0{i}Z"),
            "lastTimestamp": format!("2026-01-01T00:00:0{i}Z"),
            "source": {"component": "flotilla-test"}
        }))
        .expect("event");
        events
            .create(&PostParams::default(), &event)
            .await
            .expect("create event");
    }
    let listed = workloads
        .list_events(pb::ListEventsRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            involved_object: Some(pb::ObjectReference {
                kind: "Deployment".into(),
                name: "web".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("events")
        .into_inner();
    let reasons: Vec<_> = listed
        .events
        .iter()
        .filter(|e| e.source == "flotilla-test")
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(reasons, ["Third", "Second", "First"], "newest first");
    let warnings = workloads
        .list_events(pb::ListEventsRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            r#type: "Warning".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(warnings.events.iter().all(|e| e.r#type == "Warning"));
    assert!(warnings.events.iter().any(|e| e.reason == "Second"));

    let delete_pod = workloads
        .delete_pod(pb::DeletePodRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            name: "no-such-pod".into(),
            grace_period_seconds: Some(0),
        })
        .await
        .unwrap_err();
    assert_eq!(delete_pod.code(), Code::NotFound);
    workloads
        .delete_workload(pb::DeleteWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::Deployment.into(),
            name: "web".into(),
            propagation_policy: pb::PropagationPolicy::Foreground.into(),
        })
        .await
        .expect("delete");
    wait_for("the deployment to be gone", Duration::from_secs(30), || {
        let mut w = workloads.clone();
        let ns = ns.name().to_string();
        async move {
            w.get_workload(pb::GetWorkloadRequest {
                cluster_id: "local".into(),
                namespace: ns,
                kind: pb::WorkloadKind::Deployment.into(),
                name: "web".into(),
            })
            .await
            .is_err_and(|s| s.code() == Code::NotFound)
        }
    })
    .await;
    server.shutdown().await;
    ns.cleanup().await;
}

#[tokio::test]
async fn kubernetes_errors_map_to_codes() {
    let ns = TestNamespace::create(&kenv::client().await, "errors").await;
    let account = ProberAccount::create(ns.name()).await;
    let server = TestServer::start().await;
    // A token that may read namespaces and list nodes, nothing else.
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "narrow".into(),
            source: Some(pb::import_cluster_request::Source::Token(pb::TokenSource {
                server: kubeconfigs::server(),
                bearer_token: account.token.clone(),
                ca_pem: kubeconfigs::ca_pem(),
            })),
            ..Default::default()
        })
        .await
        .expect("import narrow");
    let mut workloads = WorkloadServiceClient::new(server.channel().await);

    let forbidden = workloads
        .list_pods(pb::ListPodsRequest {
            cluster_id: "narrow".into(),
            namespace: ns.name().into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(forbidden.code(), Code::PermissionDenied);
    assert!(
        forbidden
            .message()
            .contains(&format!("system:serviceaccount:{}", ns.name())),
        "names the identity: {}",
        forbidden.message()
    );
    server.shutdown().await;

    // A cluster can be imported once per server, so the admin view gets a server of its own.
    let server = TestServer::start().await;
    import(&server, "local", kubeconfigs::admin_kubeconfig()).await;
    let mut workloads = WorkloadServiceClient::new(server.channel().await);

    let bad_selector = workloads
        .list_pods(pb::ListPodsRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            field_selector: "spec.noSuchField=1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_selector.code(),
        Code::InvalidArgument,
        "{bad_selector:?}"
    );

    let missing = workloads
        .get_workload(pb::GetWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::StatefulSet.into(),
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("nope"));
    let no_kind = workloads
        .get_workload(pb::GetWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_kind.code(), Code::InvalidArgument);

    server.shutdown().await;

    // Unreachable: a cluster behind a proxy that goes away.
    let server = TestServer::start().await;
    let target = kubeconfigs::server()
        .trim_start_matches("https://")
        .parse()
        .expect("addr");
    let mut proxy = TcpProxy::start(target).await;
    import(
        &server,
        "flaky",
        kubeconfigs::admin_kubeconfig_at(&format!("https://127.0.0.1:{}", proxy.port)),
    )
    .await;
    proxy.stop();
    let unavailable = NodeServiceClient::new(server.channel().await)
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "flaky".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable, "{unavailable:?}");
    assert!(unavailable.get_error_details().retry_info().is_some());

    server.shutdown().await;
    account.cleanup().await;
    ns.cleanup().await;
}
