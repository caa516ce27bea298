//! Import by agent, the edges of a registration's life: the manifest served at its unguessable
//! URL (and gone once the token is used), and an agent cluster switched to a kubeconfig and back
//! to its agent with `UpdateClusterCredentials`. Which way the traffic went is read from the
//! agent's own counters file; the nodes are compared with the API server's own list.

use flotilla_test_support as support;

use std::time::Duration;

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    node_service_client::NodeServiceClient, update_cluster_credentials_request::Source,
};
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use support::{
    agent::AgentProcess,
    agent_setup::{self, AgentSetup, get, kubeconfig, register},
    kube as kenv, kubeconfigs,
    server::TestServer,
};
use tonic::Code;

const KEEPALIVE: Duration = Duration::from_millis(2000);

fn bin() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_flotilla").as_ref()
}

fn reason(status: &tonic::Status) -> String {
    tonic_types::StatusExt::get_error_details(status)
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

async fn switch(
    server: &TestServer,
    cluster_id: &str,
    source: Source,
    validate_only: bool,
) -> Result<pb::Cluster, tonic::Status> {
    ClusterServiceClient::new(server.channel().await)
        .update_cluster_credentials(pb::UpdateClusterCredentialsRequest {
            cluster_id: cluster_id.into(),
            source: Some(source),
            validate_only,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().cluster.expect("cluster"))
}

fn direct() -> Source {
    Source::Kubeconfig(pb::KubeconfigSource {
        kubeconfig: kubeconfigs::admin_kubeconfig().into(),
        context: String::new(),
    })
}

/// ListNodes through the server, as sorted names of the control plane's own nodes.
async fn node_names(setup: &AgentSetup) -> Vec<String> {
    let mut names: Vec<String> = NodeServiceClient::new(setup.server.channel().await)
        .list_nodes(pb::ListNodesRequest {
            cluster_id: setup.cluster_id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("ListNodes")
        .into_inner()
        .nodes
        .into_iter()
        .map(|n| n.name)
        .filter(|name| kenv::NODES.iter().any(|(own, _, _)| own == name))
        .collect();
    names.sort();
    names
}

/// The control plane's own nodes (kube-env's; other tests add and remove nodes of their own
/// meanwhile), checked against the API server itself.
async fn kube_node_names() -> Vec<String> {
    let kube = kenv::client().await;
    let mut names: Vec<String> = kube::Api::<Node>::all(kube)
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|name| kenv::NODES.iter().any(|(own, _, _)| own == name))
        .collect();
    names.sort();
    assert_eq!(names.len(), kenv::NODES.len());
    names
}

/// Waits until the agent has opened `sessions` tunnels in all.
async fn wait_sessions(agent: &AgentProcess, sessions: u64) {
    let what = format!("the agent's tunnel number {sessions}");
    kenv::poll_until(&what, Duration::from_secs(30), || async {
        agent.counters().sessions >= sessions
    })
    .await;
}

#[tokio::test]
async fn the_manifest_is_served_at_its_url_until_the_token_is_used() {
    let server = agent_setup::server(KEEPALIVE).await;
    let registration = register(&server, "edge-url").await;
    let url = registration.manifest_url.clone();
    let token = &registration.registration_token;
    assert_eq!(
        url,
        format!("{}/agent/v1/manifests/{token}.yaml", server.url()),
        "the URL is on this server and holds the token"
    );
    let http = reqwest::Client::new();

    let served = http.get(&url).send().await.expect("GET manifest");
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "application/yaml");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(served.text().await.expect("body"), registration.manifest);
    let head = http.head(&url).send().await.expect("HEAD manifest");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        registration.manifest.len().to_string().as_str()
    );

    // Anything but the token's own URL is a 404 that says nothing about what exists; other
    // methods are refused.
    let base = format!("{}/agent/v1/manifests/", server.url());
    for wrong in [
        format!("{base}flt_reg_{}.yaml", "A".repeat(43)),
        format!("{base}{token}"),
        format!("{base}{}.yaml", &token[..token.len() - 1]),
        format!("{base}{}.yaml", "x".repeat(4096)),
    ] {
        let answer = http.get(&wrong).send().await.expect("GET");
        assert_eq!(answer.status(), 404, "{wrong}");
    }
    let post = http.post(&url).send().await.expect("POST");
    assert_eq!(post.status(), 405);

    // Once the agent has exchanged the token, the manifest is gone.
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = AgentProcess::start(bin(), &server.url(), token, dir.path(), &kubeconfig());
    wait_sessions(&agent, 1).await;
    let after = http.get(&url).send().await.expect("GET after use");
    assert_eq!(after.status(), 404);
    assert_eq!(
        get(&server, "edge-url").await.state(),
        pb::ClusterState::Running
    );
}

#[tokio::test]
async fn an_agent_cluster_switches_to_a_kubeconfig_and_back() {
    let mut setup = agent_setup::connected(bin(), "edge-switch", KEEPALIVE).await;
    let server = &setup.server;
    let id = setup.cluster_id.clone();
    let expected_nodes = kube_node_names().await;
    assert_eq!(node_names(&setup).await, expected_nodes);
    let before = setup.agent.settled_counters().await;
    assert!(before.forwarded_requests > 0);

    // A cluster still waiting for its agent has none to switch to.
    register(server, "edge-waiting").await;
    let refused = switch(
        server,
        "edge-waiting",
        Source::Agent(pb::AgentSource {}),
        false,
    )
    .await
    .expect_err("no agent yet");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "NO_AGENT");

    // Agent -> kubeconfig: the server's own access wins, the tunnel closes (the agent
    // reconnects, and is not used).
    let direct_cluster = switch(server, &id, direct(), false)
        .await
        .expect("switch to the kubeconfig");
    assert!(!direct_cluster.endpoint.is_empty(), "{direct_cluster:?}");
    assert!(direct_cluster.status.expect("status").reachable);
    wait_sessions(&setup.agent, before.sessions + 1).await;
    let settled = setup.agent.settled_counters().await;
    assert_eq!(node_names(&setup).await, expected_nodes);
    let direct_calls = setup.agent.settled_counters().await;
    assert_eq!(
        direct_calls.forwarded_requests, settled.forwarded_requests,
        "ListNodes went around the agent once the cluster has a kubeconfig"
    );

    // Checking the way back changes nothing.
    let preview = switch(server, &id, Source::Agent(pb::AgentSource {}), true)
        .await
        .expect("validate the switch back");
    assert!(preview.endpoint.is_empty());
    assert!(preview.status.expect("status").reachable);
    assert_eq!(get(server, &id).await.endpoint, direct_cluster.endpoint);

    // Kubeconfig -> agent: traffic goes through the tunnel again.
    let back = switch(server, &id, Source::Agent(pb::AgentSource {}), false)
        .await
        .expect("switch back to the agent");
    assert!(back.endpoint.is_empty(), "{back:?}");
    let status = back.status.expect("status");
    assert!(status.reachable, "{status:?}");
    assert_eq!(
        server.store().await.count_secrets().await.unwrap(),
        0,
        "the kubeconfig's secret is deleted"
    );
    let through = setup.agent.settled_counters().await;
    assert_eq!(node_names(&setup).await, expected_nodes);
    let after = setup.agent.settled_counters().await;
    assert!(
        after.forwarded_requests > through.forwarded_requests,
        "ListNodes went through the agent again: {through:?} -> {after:?}"
    );
    assert_eq!(
        after.sessions, through.sessions,
        "switching back kept the tunnel open"
    );

    // With its agent gone, the switch back is refused and the kubeconfig stays in use.
    switch(server, &id, direct(), false)
        .await
        .expect("switch to the kubeconfig again");
    setup.agent.kill();
    let refused = switch(server, &id, Source::Agent(pb::AgentSource {}), false)
        .await
        .expect_err("agent not connected");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "AGENT_NOT_CONNECTED");
    let kept = get(&setup.server, &id).await;
    assert_eq!(kept.endpoint, direct_cluster.endpoint);
    assert_eq!(node_names(&setup).await, expected_nodes);
    assert!(kept.status.expect("status").reachable);
}
