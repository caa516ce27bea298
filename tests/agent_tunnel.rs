//! Import by agent, end to end: the server under test is given no access to the test control
//! plane; `flotilla agent` runs as a local child process with the control plane's kubeconfig
//! and dials the server. Every answer about the cluster therefore came through the tunnel, and
//! the agent's own counters file (read from outside the server) says how many requests it
//! forwarded. Expected answers come from the API server directly (nodes, pods, node
//! cordoning), from the KWOK log files the test writes, and from the gRPC codes.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, agent_service_client::AgentServiceClient, log_stream_client::LogStreamClient,
    node_service_client::NodeServiceClient, workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use support::{
    agent::AgentProcess,
    agent_setup::{self, AgentSetup, get, kubeconfig, register},
    kube::{self as kenv, TestNamespace, poll_until},
};
use tonic::Code;

/// Pods listed through the tunnel beside the follows.
const FILLER_PODS: usize = 10_000;

/// Short, so the tests can wait for it.
const KEEPALIVE: Duration = Duration::from_millis(2000);

fn bin() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_flotilla").as_ref()
}

async fn connected(cluster_id: &str) -> AgentSetup {
    agent_setup::connected(bin(), cluster_id, KEEPALIVE).await
}

/// A KWOK node of this test's own, tainted so nothing else lands on it.
async fn own_node(kube: &kube::Client, name: &str) -> Node {
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name,
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"taints": [{"key": "flotilla-test/agent", "value": "drain", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                   "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"}}
    }))
    .expect("node");
    kube::Api::<Node>::all(kube.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create node")
}

fn pod_yaml(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: tunneled\n\
         spec:\n  nodeName: {node}\n  tolerations:\n  - key: flotilla-test/agent\n    operator: Exists\n\
         \x20 containers:\n  - name: main\n    image: example.com/app:1\n"
    )
}

#[tokio::test]
async fn every_feature_goes_through_the_tunnel() {
    let kube = kenv::client().await;
    let setup = connected("edge-all").await;
    let (server, id) = (&setup.server, setup.cluster_id.as_str());

    // GetCluster: reachable, with the version and node counts the API server has.
    let direct_nodes = kube::Api::<Node>::all(kube.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes");
    let cluster = get(server, id).await;
    assert_eq!(cluster.state(), pb::ClusterState::Running);
    let status = cluster.status.expect("status");
    assert!(status.reachable);
    assert!(status.kubernetes_version.starts_with('v'), "{status:?}");
    assert_eq!(status.node_count as usize, direct_nodes.items.len());
    let before = setup.agent.settled_counters().await;
    assert!(
        before.forwarded_requests >= 3,
        "the probe went through the agent: {before:?}"
    );

    // ListNodes.
    let nodes = NodeServiceClient::new(server.channel().await)
        .list_nodes(pb::ListNodesRequest {
            cluster_id: id.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list nodes")
        .into_inner();
    let mut names: Vec<_> = nodes.nodes.iter().map(|n| n.name.clone()).collect();
    let mut want: Vec<_> = direct_nodes
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    want.sort();
    assert_eq!(names, want);

    // ApplyManifests onto a node of our own, then ListPods from the watch cache.
    let ns = TestNamespace::create(&kube, "agent-tunnel").await;
    let node_name = format!("agent-{}", ns.name());
    own_node(&kube, &node_name).await;
    let applied = WorkloadServiceClient::new(server.channel().await)
        .apply_manifests(pb::ApplyManifestsRequest {
            cluster_id: id.into(),
            namespace: ns.name().into(),
            manifests: pod_yaml("tunneled", &node_name),
            ..Default::default()
        })
        .await
        .expect("apply")
        .into_inner();
    assert_eq!(applied.results.len(), 1, "{applied:?}");
    assert_eq!(applied.results[0].outcome(), pb::ApplyOutcome::Created);
    let direct = ns
        .api::<Pod>()
        .get("tunneled")
        .await
        .expect("the pod exists");
    assert_eq!(
        direct.spec.and_then(|s| s.node_name),
        Some(node_name.clone())
    );

    let workloads = WorkloadServiceClient::new(server.channel().await);
    poll_until(
        "the pod Running in ListPods",
        Duration::from_secs(60),
        || {
            let (mut workloads, ns) = (workloads.clone(), ns.name().to_string());
            async move {
                let pods = workloads
                    .list_pods(pb::ListPodsRequest {
                        cluster_id: "edge-all".into(),
                        namespace: ns,
                        ..Default::default()
                    })
                    .await
                    .expect("list pods")
                    .into_inner();
                pods.pods
                    .iter()
                    .any(|p| p.name == "tunneled" && p.phase == "Running")
            }
        },
    )
    .await;

    // StreamPodLogs follow: a line written during the test arrives.
    let log = ns.pod_logs("tunneled").await;
    // As in kube_logs: KWOK answers a follow once the file has a line.
    log.stdout("written before following");
    let mut follow = LogStreamClient::new(server.channel().await)
        .stream_pod_logs(pb::StreamPodLogsRequest {
            cluster_id: id.into(),
            namespace: ns.name().into(),
            pod: "tunneled".into(),
            container: String::new(),
            options: Some(pb::LogOptions {
                follow: true,
                ..Default::default()
            }),
        })
        .await
        .expect("follow")
        .into_inner();
    assert_eq!(
        first_line(&mut follow, Duration::from_secs(20)).await,
        "written before following"
    );
    log.stdout("written while following through the tunnel");
    let line = first_line(&mut follow, Duration::from_secs(20)).await;
    assert_eq!(line, "written while following through the tunnel");
    drop(follow);

    // WatchEvents: an event created now arrives live.
    let mut events = LogStreamClient::new(server.channel().await)
        .watch_events(pb::WatchEventsRequest {
            cluster_id: id.into(),
            namespace: ns.name().into(),
            ..Default::default()
        })
        .await
        .expect("watch events")
        .into_inner();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), events.message())
            .await
            .expect("snapshot in time")
            .expect("stream")
            .expect("message");
        if message.r#type() == pb::WatchEventsResponseType::SnapshotEnd {
            break;
        }
    }
    let event: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "through-the-tunnel"},
        "involvedObject": {"kind": "Pod", "name": "tunneled", "namespace": ns.name()},
        "reason": "AgentTunnelLive", "message": "live through the tunnel", "type": "Normal",
        "firstTimestamp": "2026-12-04T00:00:00Z", "lastTimestamp": "2026-12-04T00:00:00Z",
    }))
    .expect("event");
    ns.api::<Event>()
        .create(&PostParams::default(), &event)
        .await
        .expect("create event");
    let live = loop {
        let message = tokio::time::timeout(Duration::from_secs(20), events.message())
            .await
            .expect("live event in time")
            .expect("stream")
            .expect("message");
        if let Some(event) = message.event
            && event.reason == "AgentTunnelLive"
        {
            break event;
        }
    };
    assert_eq!(live.message, "live through the tunnel");
    drop(events);

    // DrainNode: the node is cordoned and the pod evicted.
    let mut drain = NodeServiceClient::new(server.channel().await)
        .drain_node(pb::DrainNodeRequest {
            cluster_id: id.into(),
            node_name: node_name.clone(),
            timeout: Some(prost_types::Duration {
                seconds: 20,
                nanos: 0,
            }),
            // The pod is a bare one (no controller recreates it).
            force: true,
            ..Default::default()
        })
        .await
        .expect("drain")
        .into_inner();
    let mut evicted = Vec::new();
    while let Some(message) = drain.message().await.expect("drain stream") {
        if let Some(pb::drain_node_response::Progress::Pod(pod)) = message.progress {
            evicted.push((pod.name.clone(), pod.outcome(), pod.message.clone()));
        }
    }
    assert!(
        evicted.iter().any(
            |(name, outcome, _)| name == "tunneled" && *outcome == pb::DrainPodOutcome::Evicted
        ),
        "{evicted:?}"
    );
    let cordoned = kube::Api::<Node>::all(kube.clone())
        .get(&node_name)
        .await
        .expect("node");
    assert_eq!(cordoned.spec.and_then(|s| s.unschedulable), Some(true));

    let after = setup.agent.settled_counters().await;
    assert!(
        after.forwarded_requests >= before.forwarded_requests + 8,
        "every call went through the agent: {before:?} -> {after:?}"
    );
    assert!(after.response_bytes > before.response_bytes);

    kube::Api::<Node>::all(kube.clone())
        .delete(&node_name, &DeleteParams::default())
        .await
        .expect("delete node");
    ns.cleanup().await;
    drop(workloads);
    setup.server.shutdown().await;
}

async fn first_line(
    stream: &mut tonic::Streaming<pb::StreamPodLogsResponse>,
    limit: Duration,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, stream.message())
            .await
            .expect("a line in time")
            .expect("stream ok")
            .expect("stream open");
        if let Some(entry) = message
            .entries
            .into_iter()
            .find(|e| e.kind() == pb::LogEntryKind::Line)
        {
            return entry.content;
        }
    }
}

#[tokio::test]
async fn a_gone_agent_turns_the_cluster_unreachable_and_it_recovers() {
    let kube = kenv::client().await;
    let mut setup = connected("edge-gone").await;
    let ns = TestNamespace::create(&kube, "agent-gone").await;
    let url = setup.server.url();
    let list = |_: &AgentSetup| {
        let (url, ns) = (url.clone(), ns.name().to_string());
        async move {
            let channel = tonic::transport::Channel::from_shared(url)
                .expect("url")
                .connect()
                .await
                .expect("connect");
            let token: tonic::metadata::MetadataValue<_> =
                format!("Bearer {}", support::server::ADMIN_TOKEN)
                    .parse()
                    .expect("token");
            let mut request = tonic::Request::new(pb::ListPodsRequest {
                cluster_id: "edge-gone".into(),
                namespace: ns,
                ..Default::default()
            });
            request.metadata_mut().insert("authorization", token);
            WorkloadServiceClient::new(channel)
                .list_pods(request)
                .await
                .map(|r| r.into_inner().pods.len())
        }
    };
    assert_eq!(list(&setup).await.expect("list"), 0, "watch cache started");

    // A hung agent (frozen: its connection stays open) misses its keep-alives.
    setup.agent.signal("STOP");
    let (took, status) = setup.wait_reachable(false, KEEPALIVE * 3).await;
    assert!(
        took <= KEEPALIVE + Duration::from_millis(1500),
        "unreachable after {took:?}, keep-alive {KEEPALIVE:?}"
    );
    assert!(status.unreachable_reason.contains("agent"), "{status:?}");
    setup.agent.signal("CONT");
    setup.wait_reachable(true, Duration::from_secs(30)).await;

    // A killed agent: unreachable at once, requests refused with UNAVAILABLE.
    setup.agent.kill();
    let (took, status) = setup.wait_reachable(false, KEEPALIVE * 3).await;
    assert!(took <= KEEPALIVE + Duration::from_millis(1500), "{took:?}");
    assert!(
        status.unreachable_reason.contains("not connected"),
        "{status:?}"
    );
    let pods = ns.api::<Pod>();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "while-away"},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/app:1"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");

    // Restarted (with the credential it kept): reachable again, the watch cache resumes and
    // sees the pod created while the agent was away.
    let sessions = setup.agent.counters().sessions;
    setup.agent.restart();
    setup.wait_reachable(true, Duration::from_secs(30)).await;
    poll_until(
        "the watch cache to resume",
        Duration::from_secs(30),
        || async { matches!(list(&setup).await, Ok(1)) },
    )
    .await;
    assert!(setup.agent.settled_counters().await.sessions >= 1);
    assert!(sessions >= 1);
    ns.cleanup().await;
    drop(setup.agent);
    setup.server.shutdown().await;
}

#[tokio::test]
async fn used_expired_and_foreign_secrets_are_refused_and_change_nothing() {
    let setup = connected("edge-a").await;
    let server = &setup.server;
    let registration = register(server, "edge-b").await;

    // The token edge-a's agent already used.
    let used = std::fs::read_to_string(setup.dir.path().join("registration-token")).expect("token");
    let refused = AgentServiceClient::new(server.channel_as(Some(&used)).await)
        .register_agent(pb::RegisterAgentRequest {
            kube_system_uid: "another-uid".into(),
            agent_version: "test".into(),
        })
        .await
        .expect_err("a used token is refused");
    assert_eq!(refused.code(), Code::Unauthenticated);

    // An expired token: an agent with it never connects, and edge-b keeps waiting.
    server
        .store()
        .await
        .expire_agent_registrations_for_test("edge-b")
        .await
        .expect("expire");
    let dir = tempfile::tempdir().expect("tempdir");
    let expired_agent = AgentProcess::start(
        bin(),
        &server.url(),
        &registration.registration_token,
        dir.path(),
        &kubeconfig(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        expired_agent.counters().sessions,
        0,
        "{}",
        expired_agent.log()
    );
    assert!(
        expired_agent.log().contains("Unauthenticated")
            || expired_agent.log().contains("not valid"),
        "{}",
        expired_agent.log()
    );
    assert!(!dir.path().join("credential.json").exists());
    let waiting = get(server, "edge-b").await;
    assert_eq!(waiting.state(), pb::ClusterState::WaitingForAgent);
    drop(expired_agent);

    // edge-a's credential presented for edge-b's tunnel.
    let kept: serde_json::Value = serde_json::from_slice(
        &std::fs::read(setup.dir.path().join("credential.json")).expect("credential file"),
    )
    .expect("json");
    let credential = kept["agent_credential"].as_str().expect("credential");
    let hello = pb::OpenTunnelRequest {
        frame: Some(pb::open_tunnel_request::Frame::Hello(pb::AgentHello {
            cluster_id: "edge-b".into(),
            kube_system_uid: "whatever".into(),
            agent_version: "test".into(),
        })),
    };
    let foreign = AgentServiceClient::new(server.channel_as(Some(credential)).await)
        .open_tunnel(futures::stream::iter(vec![hello]))
        .await
        .expect_err("another cluster's tunnel is refused");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    // Nothing changed: edge-a still reachable through its own agent, edge-b still waiting.
    assert!(
        get(server, "edge-a")
            .await
            .status
            .expect("status")
            .reachable
    );
    assert_eq!(
        get(server, "edge-b").await.state(),
        pb::ClusterState::WaitingForAgent
    );
    drop(setup.agent);
    setup.server.shutdown().await;
}

async fn bare_pod(ns: &TestNamespace, name: &str) {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": "kwok-a1", "containers": [{"name": "main", "image": "example.com/log:1"}]}
    }))
    .expect("pod");
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

/// Pods no scheduler or kubelet ever touches (unbound, an unknown scheduler): only objects to
/// list. Created 64 at a time.
async fn filler_pods(ns: &TestNamespace, count: usize) {
    use futures::StreamExt;
    let api = ns.api::<Pod>();
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let pod: Pod = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("filler-{i:05}"),
                                 "labels": {"app": "filler", "shard": format!("{}", i % 16)}},
                    "spec": {"schedulerName": "flotilla-test-nobody",
                             "containers": [{"name": "main", "image": "example.com/filler:1"}]}
                }))
                .expect("pod");
                for attempt in 0..5 {
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => return,
                        Err(kube::Error::Api(e)) if e.code == 409 => return,
                        Err(err) if attempt == 4 => panic!("create filler-{i}: {err}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        })
        .buffer_unordered(64)
        .collect::<()>()
        .await;
}

/// Every pod of `ns` through ListResources, straight from the API server (not a cache): each
/// page is one request through the tunnel. Returns the pods and pages seen.
async fn walk_pods(channel: support::server::AuthedChannel, ns: &str) -> (usize, usize) {
    let mut client = WorkloadServiceClient::new(channel);
    let (mut seen, mut pages, mut token) = (0, 0, String::new());
    loop {
        let page = client
            .list_resources(pb::ListResourcesRequest {
                cluster_id: "edge-many".into(),
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: ns.into(),
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("ListResources")
            .into_inner();
        seen += page.resources.len();
        pages += 1;
        if page.next_page_token.is_empty() {
            return (seen, pages);
        }
        token = page.next_page_token;
    }
}

fn follow_request(ns: &str, pod: &str) -> pb::StreamPodLogsRequest {
    pb::StreamPodLogsRequest {
        cluster_id: "edge-many".into(),
        namespace: ns.into(),
        pod: pod.into(),
        container: String::new(),
        options: Some(pb::LogOptions {
            follow: true,
            ..Default::default()
        }),
    }
}

/// 20 log follows at once through one tunnel, beside a follow of a pod writing megabytes that
/// nobody reads and a cold 10,000-pod list: every follow gets its live line, the list is
/// complete (counted against the API server's own list) and unary calls still answer at once.
#[tokio::test]
async fn twenty_follows_a_stalled_firehose_and_a_10000_pod_list_share_one_tunnel() {
    let kube = kenv::client().await;
    let setup = connected("edge-many").await;
    let ns = TestNamespace::create(&kube, "agent-many").await;
    // Warm: the node list cache starts here, not beside the follows.
    let warm = Instant::now();
    NodeServiceClient::new(setup.server.channel().await)
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "edge-many".into(),
            ..Default::default()
        })
        .await
        .expect("list nodes");
    eprintln!("first ListNodes: {:?}", warm.elapsed());
    let mut files = Vec::new();
    for i in 0..20 {
        let name = format!("quiet-{i}");
        bare_pod(&ns, &name).await;
        let file = ns.pod_logs(&name).await;
        file.stdout("ready");
        files.push(file);
    }
    bare_pod(&ns, "firehose").await;
    let created = Instant::now();
    filler_pods(&ns, FILLER_PODS).await;
    eprintln!("{FILLER_PODS} pods created in {:?}", created.elapsed());
    let expected_pods = ns
        .api::<Pod>()
        .list_metadata(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .len();
    assert_eq!(expected_pods, FILLER_PODS + 21);
    let firehose = ns.pod_logs("firehose").await;
    let big_line = "x".repeat(1000);
    for _ in 0..8000 {
        firehose.stdout(&big_line);
    }

    // The firehose is followed but never read.
    let stalled = LogStreamClient::new(setup.server.channel().await)
        .stream_pod_logs(follow_request(ns.name(), "firehose"))
        .await
        .expect("follow the firehose")
        .into_inner();

    let mut follows = Vec::new();
    for i in 0..20 {
        let channel = setup.server.channel().await;
        let request = follow_request(ns.name(), &format!("quiet-{i}"));
        follows.push(tokio::spawn(async move {
            let mut stream = LogStreamClient::new(channel)
                .stream_pod_logs(request)
                .await
                .expect("follow")
                .into_inner();
            assert_eq!(
                first_line(&mut stream, Duration::from_secs(30)).await,
                "ready"
            );
            stream
        }));
    }
    let mut streams = Vec::new();
    for follow in follows {
        streams.push(follow.await.expect("follow task"));
    }
    // The list starts beside the follows: 10,000 pods and more, page by page through the
    // tunnel while the live lines cross it.
    let forwarded_before = setup.agent.counters().forwarded_requests;
    let list = {
        let (channel, ns_name) = (setup.server.channel().await, ns.name().to_string());
        tokio::spawn(async move {
            let started = Instant::now();
            (walk_pods(channel, &ns_name).await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, file) in files.iter().enumerate() {
        file.stdout(&format!("live {i}"));
    }
    let started = Instant::now();
    let readers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| {
            tokio::spawn(async move {
                let line = first_line(&mut stream, Duration::from_secs(20)).await;
                assert_eq!(line, format!("live {i}"));
            })
        })
        .collect();
    // A unary call beside them all.
    let unary_started = Instant::now();
    NodeServiceClient::new(setup.server.channel().await)
        .list_nodes(pb::ListNodesRequest {
            cluster_id: "edge-many".into(),
            ..Default::default()
        })
        .await
        .expect("list nodes beside the follows");
    let unary = unary_started.elapsed();
    eprintln!("ListNodes beside the follows: {unary:?}");
    for reader in readers {
        reader.await.expect("every follow got its live line");
    }
    let all_live = started.elapsed();
    let ((listed, pages), list_took) = list.await.expect("the list task");
    eprintln!("list of {listed} pods in {pages} pages through the tunnel: {list_took:?}");
    assert_eq!(listed, expected_pods, "every pod listed");
    let forwarded = setup.agent.settled_counters().await.forwarded_requests - forwarded_before;
    assert!(
        forwarded >= pages as u64,
        "every page crossed the tunnel: {forwarded} requests forwarded for {pages} pages"
    );
    assert!(unary < Duration::from_secs(5), "ListNodes took {unary:?}");
    assert!(
        all_live < Duration::from_secs(15),
        "live lines took {all_live:?}"
    );

    // How far the unread follow got is not asserted here: the agent's byte counter also
    // carries the cluster-wide pod watch cache, which other tests on the shared control plane
    // keep busy. The window's bound is asserted in src/kube/tunnel/tests.rs.
    drop(stalled);
    ns.cleanup().await;
    drop(setup.agent);
    setup.server.shutdown().await;
}
