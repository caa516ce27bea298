//! Import by agent, step one: CreateAgentRegistration, the one-time exchange of a registration
//! token for an agent credential (RegisterAgent), and what each secret is refused for. Expected
//! answers come from the gRPC codes, the stored cluster as GetCluster shows it, and the raw
//! database bytes on disk (no secret in them).

use flotilla_test_support as support;

use flotilla::proto::{
    self as pb, agent_service_client::AgentServiceClient,
    cluster_service_client::ClusterServiceClient,
};
use support::server::TestServer;
use tonic::Code;
use tonic_types::StatusExt;

const SERVER_URL: &str = "https://flotilla.example.test:50051";

async fn create(server: &TestServer, cluster_id: &str) -> pb::CreateAgentRegistrationResponse {
    ClusterServiceClient::new(server.channel().await)
        .create_agent_registration(pb::CreateAgentRegistrationRequest {
            cluster_id: cluster_id.into(),
            server_url: SERVER_URL.into(),
            cluster_role: "view".into(),
            ..Default::default()
        })
        .await
        .expect("create registration")
        .into_inner()
}

async fn register(
    server: &TestServer,
    token: &str,
    uid: &str,
) -> Result<pb::RegisterAgentResponse, tonic::Status> {
    AgentServiceClient::new(server.channel_as(Some(token)).await)
        .register_agent(pb::RegisterAgentRequest {
            kube_system_uid: uid.into(),
            agent_version: "test".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Opens the tunnel with `credential`, saying hello as `cluster_id`/`uid`; the refusal code.
async fn open_tunnel(server: &TestServer, credential: &str, cluster_id: &str, uid: &str) -> Code {
    let hello = pb::OpenTunnelRequest {
        frame: Some(pb::open_tunnel_request::Frame::Hello(pb::AgentHello {
            cluster_id: cluster_id.into(),
            kube_system_uid: uid.into(),
            agent_version: "test".into(),
        })),
    };
    match AgentServiceClient::new(server.channel_as(Some(credential)).await)
        .open_tunnel(futures::stream::iter(vec![hello]))
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn get(server: &TestServer, id: &str) -> pb::Cluster {
    ClusterServiceClient::new(server.channel().await)
        .get_cluster(pb::GetClusterRequest {
            cluster_id: id.into(),
        })
        .await
        .expect("get")
        .into_inner()
        .cluster
        .expect("cluster")
}

/// The database file and its write-ahead log, as bytes.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let path = server
        .settings
        .database_url
        .strip_prefix("sqlite://")
        .expect("sqlite url")
        .to_string();
    let mut bytes = std::fs::read(&path).expect("database file");
    bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_registration_waits_for_its_agent_and_carries_a_ready_manifest() {
    let server = TestServer::start().await;
    let created = create(&server, "edge-1").await;
    let cluster = created.cluster.clone().expect("cluster");
    assert_eq!(cluster.id, "edge-1");
    assert_eq!(cluster.state(), pb::ClusterState::WaitingForAgent);
    assert_eq!(
        get(&server, "edge-1").await.state(),
        pb::ClusterState::WaitingForAgent
    );
    let expire = created.expire_time.expect("expire time").seconds;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (expire - now - 3600).abs() <= 5,
        "default one hour: {}",
        expire - now
    );

    let objects: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&created.manifest).expect("manifest is YAML");
    let kind = |k: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == k)
            .unwrap_or_else(|| panic!("no {k} in the manifest"))
    };
    assert_eq!(kind("Namespace")["metadata"]["name"], "flotilla-agent");
    assert_eq!(kind("ClusterRoleBinding")["roleRef"]["name"], "view");
    assert_eq!(
        kind("Secret")["stringData"]["registration-token"],
        created.registration_token.as_str()
    );
    let args = &kind("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(args[0], "agent");
    assert_eq!(args[2], SERVER_URL);
    assert_eq!(kind("ServiceAccount")["metadata"]["name"], "flotilla-agent");

    // Stored only as a hash.
    let token = created.registration_token.clone();
    assert!(token.starts_with("flt_reg_"));
    assert!(!contains(&database_bytes(&server), &token), "token on disk");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_name_the_field_and_create_nothing() {
    let server = TestServer::start().await;
    let mut clusters = ClusterServiceClient::new(server.channel().await);
    for (request, field) in [
        (
            pb::CreateAgentRegistrationRequest {
                cluster_id: "edge-bad".into(),
                ..Default::default()
            },
            "server_url",
        ),
        (
            pb::CreateAgentRegistrationRequest {
                cluster_id: "edge-bad".into(),
                server_url: SERVER_URL.into(),
                namespace: "Not_A_Namespace".into(),
                ..Default::default()
            },
            "namespace",
        ),
        (
            pb::CreateAgentRegistrationRequest {
                cluster_id: "edge-bad".into(),
                server_url: SERVER_URL.into(),
                ttl_seconds: 5,
                ..Default::default()
            },
            "ttl_seconds",
        ),
        (
            pb::CreateAgentRegistrationRequest {
                cluster_id: "Edge_Bad".into(),
                server_url: SERVER_URL.into(),
                ..Default::default()
            },
            "cluster_id",
        ),
    ] {
        let status = clusters
            .create_agent_registration(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let violations = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        assert_eq!(violations[0].field, field);
    }
    let list = clusters
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total_size, 0, "nothing created: {:?}", list.clusters);

    create(&server, "edge-1").await;
    let status = clusters
        .create_agent_registration(pb::CreateAgentRegistrationRequest {
            cluster_id: "edge-1".into(),
            server_url: SERVER_URL.into(),
            ..Default::default()
        })
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);
    server.shutdown().await;
}

#[tokio::test]
async fn a_registration_token_is_exchanged_once_for_a_credential_bound_to_its_cluster() {
    let server = TestServer::start().await;
    let created = create(&server, "edge-1").await;
    let token = created.registration_token;
    let registered = register(&server, &token, "uid-edge-1")
        .await
        .expect("first exchange");
    assert_eq!(registered.cluster_id, "edge-1");
    let credential = registered.agent_credential;
    assert!(credential.starts_with("flt_agent_"));
    let cluster = get(&server, "edge-1").await;
    assert_eq!(cluster.state(), pb::ClusterState::Running);
    assert_eq!(cluster.kube_system_uid, "uid-edge-1");

    // Reuse is refused, and nothing changes (not even with another UID).
    let again = register(&server, &token, "uid-other")
        .await
        .expect_err("reuse");
    assert_eq!(again.code(), Code::Unauthenticated);
    let after = get(&server, "edge-1").await;
    assert_eq!(
        (after.etag, after.kube_system_uid),
        (cluster.etag.clone(), cluster.kube_system_uid.clone())
    );

    // The credential passes authentication and the hello check for its own cluster: the
    // tunnel opens.
    assert_eq!(
        open_tunnel(&server, &credential, "edge-1", "uid-edge-1").await,
        Code::Ok
    );
    assert!(
        !contains(&database_bytes(&server), &credential),
        "credential on disk"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_registration_token_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    let created = create(&server, "edge-old").await;
    // Age the token past its expiry in the database (the shortest TTL is a minute).
    let store = server.store().await;
    store
        .expire_agent_registrations_for_test("edge-old")
        .await
        .expect("age");
    let before = get(&server, "edge-old").await;
    let status = register(&server, &created.registration_token, "uid-old")
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::Unauthenticated);
    let after = get(&server, "edge-old").await;
    assert_eq!(
        (after.etag, after.state),
        (before.etag.clone(), before.state)
    );
    assert_eq!(after.kube_system_uid, "");
    assert_eq!(before.state(), pb::ClusterState::WaitingForAgent);
    server.shutdown().await;
}

#[tokio::test]
async fn an_agent_credential_reaches_only_its_own_clusters_tunnel() {
    let server = TestServer::start().await;
    let a = create(&server, "edge-a").await;
    let b = create(&server, "edge-b").await;
    let cred_a = register(&server, &a.registration_token, "uid-a")
        .await
        .expect("a")
        .agent_credential;
    register(&server, &b.registration_token, "uid-b")
        .await
        .expect("b");
    assert_eq!(
        open_tunnel(&server, &cred_a, "edge-b", "uid-b").await,
        Code::PermissionDenied,
        "a's credential for b's tunnel"
    );
    assert_eq!(
        open_tunnel(&server, &cred_a, "edge-b", "uid-a").await,
        Code::PermissionDenied,
        "a's credential naming b's tunnel, from a's own cluster"
    );
    assert_eq!(
        open_tunnel(&server, &cred_a, "edge-a", "uid-b").await,
        Code::PermissionDenied,
        "a's credential from b's cluster (kube-system UID)"
    );
    assert_eq!(
        open_tunnel(&server, "flt_agent_forged", "edge-a", "uid-a").await,
        Code::Unauthenticated
    );
    assert_eq!(
        open_tunnel(&server, &cred_a, "edge-a", "uid-a").await,
        Code::Ok
    );
    // A second agent registering for a cluster whose kube-system UID is already another
    // cluster's is refused, and its token stays unused.
    let c = create(&server, "edge-c").await;
    let dup = register(&server, &c.registration_token, "uid-a")
        .await
        .expect_err("same cluster as edge-a");
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert_eq!(
        get(&server, "edge-c").await.state(),
        pb::ClusterState::WaitingForAgent
    );
    register(&server, &c.registration_token, "uid-c")
        .await
        .expect("still usable with its own cluster");
    server.shutdown().await;
}

#[tokio::test]
async fn agent_secrets_and_api_tokens_do_not_mix() {
    let server = TestServer::start().await;
    let created = create(&server, "edge-1").await;
    let credential = register(&server, &created.registration_token, "uid-1")
        .await
        .expect("register")
        .agent_credential;
    let fresh = create(&server, "edge-2").await.registration_token;
    for secret in [credential.as_str(), fresh.as_str()] {
        let status = ClusterServiceClient::new(server.channel_as(Some(secret)).await)
            .list_clusters(pb::ListClustersRequest::default())
            .await
            .expect_err("an agent secret is not an API token");
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let status = register(&server, support::server::ADMIN_TOKEN, "uid-2")
        .await
        .expect_err("an API token is not a registration token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        open_tunnel(&server, support::server::ADMIN_TOKEN, "edge-1", "uid-1").await,
        Code::Unauthenticated
    );
    // The unused registration token still works afterwards.
    register(&server, &fresh, "uid-2")
        .await
        .expect("edge-2 registers");
    server.shutdown().await;
}
