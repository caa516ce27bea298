//! A server under test with a cluster imported by agent: the server has no access of its own to
//! the test control plane, `flotilla agent` (a child process with the control plane's
//! kubeconfig) dials it, and GetCluster is polled until the cluster is (un)reachable.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};

use crate::{
    agent::AgentProcess,
    kube as kenv,
    server::{AuthedChannel, TestServer},
};

/// A server, its agent cluster and the agent.
pub struct AgentSetup {
    pub server: TestServer,
    pub agent: AgentProcess,
    pub cluster_id: String,
    /// Where the agent keeps its token, credential and counters files.
    pub dir: tempfile::TempDir,
}

/// A server whose agents are pinged every third of `keepalive`.
pub async fn server(keepalive: Duration) -> TestServer {
    TestServer::start_with(|s| {
        s.agent_keepalive = keepalive;
    })
    .await
}

/// Registers `cluster_id` for an agent that dials `server`.
pub async fn register(
    server: &TestServer,
    cluster_id: &str,
) -> pb::CreateAgentRegistrationResponse {
    register_on(server.channel().await, cluster_id, &server.url()).await
}

/// Registers `cluster_id` through `channel` for an agent that dials `server_url` (a replica).
pub async fn register_on(
    channel: AuthedChannel,
    cluster_id: &str,
    server_url: &str,
) -> pb::CreateAgentRegistrationResponse {
    ClusterServiceClient::new(channel)
        .create_agent_registration(pb::CreateAgentRegistrationRequest {
            cluster_id: cluster_id.into(),
            server_url: server_url.into(),
            ..Default::default()
        })
        .await
        .expect("create registration")
        .into_inner()
}

/// The test control plane's kubeconfig (the agent's access, never the server's).
pub fn kubeconfig() -> PathBuf {
    kenv::env().kubeconfig().to_path_buf()
}

/// A server, a registration and a connected agent (`binary agent`) whose cluster is reachable.
pub async fn connected(binary: &Path, cluster_id: &str, keepalive: Duration) -> AgentSetup {
    let server = server(keepalive).await;
    let registration = register(&server, cluster_id).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = AgentProcess::start(
        binary,
        &server.url(),
        &registration.registration_token,
        dir.path(),
        &kubeconfig(),
    );
    let setup = AgentSetup {
        server,
        agent,
        cluster_id: cluster_id.into(),
        dir,
    };
    setup.wait_reachable(true, Duration::from_secs(30)).await;
    setup
}

/// GetCluster of `id`.
pub async fn get(server: &TestServer, id: &str) -> pb::Cluster {
    ClusterServiceClient::new(server.channel().await)
        .get_cluster(pb::GetClusterRequest {
            cluster_id: id.into(),
        })
        .await
        .expect("get cluster")
        .into_inner()
        .cluster
        .expect("cluster")
}

impl AgentSetup {
    /// Waits until GetCluster says `reachable`; returns how long that took and the status.
    pub async fn wait_reachable(
        &self,
        reachable: bool,
        limit: Duration,
    ) -> (Duration, pb::ClusterStatus) {
        let started = Instant::now();
        loop {
            let status = get(&self.server, &self.cluster_id)
                .await
                .status
                .unwrap_or_default();
            if status.reachable == reachable {
                return (started.elapsed(), status);
            }
            assert!(
                started.elapsed() < limit,
                "cluster not {} after {limit:?}: {status:?}\nagent log:\n{}",
                if reachable {
                    "reachable"
                } else {
                    "unreachable"
                },
                self.agent.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
