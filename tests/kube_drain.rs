//! DrainNode against the real control plane: PodDisruptionBudgets are honoured, DaemonSet pods
//! skipped, bare pods refused without force, progress streamed per pod.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    node_service_client::NodeServiceClient,
};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment},
    core::v1::Pod,
    policy::v1::PodDisruptionBudget,
};
use kube::api::{ListParams, PostParams};
use support::{
    kube::{self as kenv, TestNamespace},
    kubeconfigs,
    server::TestServer,
};
use tonic::Code;

const NODE: &str = "kwok-b1";

fn pinned_deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"topology.kubernetes.io/zone": "zone-b"},
                    "containers": [{"name": "main", "image": "example.com/app:1"}]
                }
            }
        }
    }))
    .expect("deployment")
}

async fn running_on_node(ns: &TestNamespace, app: &str) -> usize {
    ns.api::<Pod>()
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("pods")
        .items
        .iter()
        .filter(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE)
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
        })
        .count()
}

#[tokio::test]
async fn drain_honours_pdbs_and_reports_each_pod() {
    let _node = NODE_IN_USE.lock().await;
    let kube = kenv::client().await;
    let ns = TestNamespace::create(&kube, "drain").await;
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

    let deployments = ns.api::<Deployment>();
    deployments
        .create(&PostParams::default(), &pinned_deployment("guarded", 2))
        .await
        .expect("guarded");
    deployments
        .create(&PostParams::default(), &pinned_deployment("free", 2))
        .await
        .expect("free");
    let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}}
    }))
    .expect("pdb");
    ns.api::<PodDisruptionBudget>()
        .create(&PostParams::default(), &pdb)
        .await
        .expect("pdb");
    let bare: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bare", "labels": {"app": "bare"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "main", "image": "example.com/app:1"}]}
    }))
    .expect("pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &bare)
        .await
        .expect("bare pod");
    let started = Instant::now();
    while running_on_node(&ns, "guarded").await < 2
        || running_on_node(&ns, "free").await < 2
        || running_on_node(&ns, "bare").await < 1
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "pods did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut nodes = NodeServiceClient::new(server.channel().await);
    // Dry run: reports, changes nothing.
    let mut dry = nodes
        .drain_node(pb::DrainNodeRequest {
            cluster_id: "local".into(),
            node_name: NODE.into(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("dry run")
        .into_inner();
    let mut would_evict = 0;
    while let Some(message) = dry.message().await.expect("stream") {
        if let Some(pb::drain_node_response::Progress::Pod(pod)) = message.progress
            && pod.outcome() == pb::DrainPodOutcome::WouldEvict
        {
            would_evict += 1;
        }
    }
    assert!(
        would_evict >= 4,
        "guarded and free pods would be evicted: {would_evict}"
    );
    assert_eq!(
        running_on_node(&ns, "free").await,
        2,
        "dry run evicted nothing"
    );

    let mut stream = nodes
        .drain_node(pb::DrainNodeRequest {
            cluster_id: "local".into(),
            node_name: NODE.into(),
            timeout: Some(prost_types::Duration {
                seconds: 4,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("drain")
        .into_inner();
    let mut outcomes = Vec::new();
    let mut summary = None;
    while let Some(message) = stream.message().await.expect("stream") {
        match message.progress {
            Some(pb::drain_node_response::Progress::Pod(pod)) if pod.namespace == ns.name() => {
                outcomes.push((pod.name.clone(), pod.outcome(), pod.message.clone()))
            }
            Some(pb::drain_node_response::Progress::Summary(s)) => summary = Some(s),
            _ => {}
        }
    }
    let of = |prefix: &str| -> Vec<pb::DrainPodOutcome> {
        outcomes
            .iter()
            .filter(|(name, _, _)| name.starts_with(prefix))
            .map(|(_, o, _)| *o)
            .collect()
    };
    assert_eq!(
        of("free"),
        [pb::DrainPodOutcome::Evicted; 2],
        "{outcomes:?}"
    );
    assert_eq!(
        of("guarded"),
        [pb::DrainPodOutcome::Blocked; 2],
        "{outcomes:?}"
    );
    assert_eq!(of("bare"), [pb::DrainPodOutcome::Failed], "{outcomes:?}");
    let bare_reason = &outcomes.iter().find(|(n, _, _)| n == "bare").unwrap().2;
    assert!(bare_reason.contains("force"), "{bare_reason}");
    let summary = summary.expect("a summary comes last");
    assert!(!summary.complete);
    assert!(summary.blocked >= 2 && summary.evicted >= 2);
    assert!(
        summary.node.expect("node").unschedulable,
        "the node stays cordoned"
    );
    assert_eq!(
        running_on_node(&ns, "guarded").await,
        2,
        "the PDB kept both"
    );
    assert_eq!(running_on_node(&ns, "free").await, 0);

    let missing = nodes
        .drain_node(pb::DrainNodeRequest {
            cluster_id: "local".into(),
            node_name: "no-such-node".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    nodes
        .uncordon_node(pb::UncordonNodeRequest {
            cluster_id: "local".into(),
            node_name: NODE.into(),
        })
        .await
        .expect("uncordon");
    server.shutdown().await;
    ns.cleanup().await;
}

/// Both drains here use the same node; one at a time, so neither sees the other's pods move.
static NODE_IN_USE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A DaemonSet's pod (made by the controller-manager, run by KWOK) and a mirror pod (annotated
/// `kubernetes.io/config.mirror`, as the kubelet makes them) are left on the node and reported
/// skipped.
#[tokio::test]
async fn drain_leaves_daemon_set_and_mirror_pods_and_says_so() {
    let _node = NODE_IN_USE.lock().await;
    let kube = kenv::client().await;
    let ns = TestNamespace::create(&kube, "drain-skip").await;
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

    let daemon_set: DaemonSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": NODE},
                    "containers": [{"name": "main", "image": "example.com/agent:1"}]
                }
            }
        }
    }))
    .expect("daemon set");
    ns.api::<DaemonSet>()
        .create(&PostParams::default(), &daemon_set)
        .await
        .expect("daemon set");
    let mirror: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "static-web",
            "labels": {"app": "static-web"},
            "annotations": {"kubernetes.io/config.mirror": "mirror-hash", "kubernetes.io/config.source": "file"}
        },
        "spec": {"nodeName": NODE, "containers": [{"name": "main", "image": "example.com/web:1"}]}
    }))
    .expect("mirror pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &mirror)
        .await
        .expect("mirror pod");
    let started = Instant::now();
    while running_on_node(&ns, "agent").await < 1 || running_on_node(&ns, "static-web").await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the DaemonSet's pod and the mirror pod did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let agent_pod = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("app=agent"))
        .await
        .expect("pods")
        .items
        .into_iter()
        .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE))
        .expect("the DaemonSet's pod on the node");
    let agent_uid = agent_pod.metadata.uid.clone().expect("uid");
    let agent_name = agent_pod.metadata.name.clone().expect("name");

    let mut nodes = NodeServiceClient::new(server.channel().await);
    let mut stream = nodes
        .drain_node(pb::DrainNodeRequest {
            cluster_id: "local".into(),
            node_name: NODE.into(),
            timeout: Some(prost_types::Duration {
                seconds: 4,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("drain")
        .into_inner();
    let mut outcomes = Vec::new();
    let mut summary = None;
    while let Some(message) = stream.message().await.expect("stream") {
        match message.progress {
            Some(pb::drain_node_response::Progress::Pod(pod)) if pod.namespace == ns.name() => {
                outcomes.push((pod.name.clone(), pod.outcome(), pod.message.clone()))
            }
            Some(pb::drain_node_response::Progress::Summary(s)) => summary = Some(s),
            _ => {}
        }
    }
    nodes
        .uncordon_node(pb::UncordonNodeRequest {
            cluster_id: "local".into(),
            node_name: NODE.into(),
        })
        .await
        .expect("uncordon");
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let names_and_outcomes: Vec<_> = outcomes.iter().map(|(n, o, _)| (n.as_str(), *o)).collect();
    assert_eq!(
        names_and_outcomes,
        [
            (agent_name.as_str(), pb::DrainPodOutcome::Skipped),
            ("static-web", pb::DrainPodOutcome::Skipped)
        ],
        "{outcomes:?}"
    );
    assert!(outcomes[0].2.contains("DaemonSet"), "{outcomes:?}");
    assert!(outcomes[1].2.contains("mirror"), "{outcomes:?}");
    let summary = summary.expect("a summary comes last");
    assert!(summary.skipped >= 2, "{summary:?}");

    // Still there, the very same pods (not evicted and made again), none being deleted.
    let pods = ns.api::<Pod>();
    let agent_now = pods
        .get(&agent_name)
        .await
        .expect("the DaemonSet's pod is still there");
    assert_eq!(agent_now.metadata.uid.as_deref(), Some(agent_uid.as_str()));
    assert!(agent_now.metadata.deletion_timestamp.is_none());
    let mirror_now = pods
        .get("static-web")
        .await
        .expect("the mirror pod is still there");
    assert!(mirror_now.metadata.deletion_timestamp.is_none());
    server.shutdown().await;
    ns.cleanup().await;
}
