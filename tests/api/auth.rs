//! Authentication, authorization, scoping, rate limits, audit and TLS, over real connections.

use flotilla_test_support as support;

use std::time::Duration;

use flotilla::{
    proto::{
        self as pb, FILE_DESCRIPTOR_SET, admin_service_client::AdminServiceClient,
        cluster_service_client::ClusterServiceClient,
        credential_service_client::CredentialServiceClient,
    },
    store::ClusterRow,
};
use prost::Message;
use support::{
    raw::RawCodec,
    server::{AuthedChannel, TestServer},
};
use tonic::Code;
use tonic_types::StatusExt;

/// Every Flotilla RPC: (path, server-streaming).
fn every_rpc() -> Vec<(String, bool)> {
    let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut rpcs = Vec::new();
    for file in fds.file.iter().filter(|f| f.package() == "flotilla.v1") {
        for service in &file.service {
            for method in &service.method {
                rpcs.push((
                    format!("/flotilla.v1.{}/{}", service.name(), method.name()),
                    method.server_streaming(),
                ));
            }
        }
    }
    assert!(rpcs.len() > 60, "found {} RPCs", rpcs.len());
    rpcs
}

/// Calls `path` with an empty message; the status code of the outcome.
async fn call(channel: AuthedChannel, path: &str, streaming: bool) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = path.parse().expect("path");
    if streaming {
        match grpc
            .server_streaming(tonic::Request::new(Vec::new()), path, RawCodec)
            .await
        {
            Ok(response) => {
                let mut stream = response.into_inner();
                match stream.message().await {
                    Ok(_) => Code::Ok,
                    Err(status) => status.code(),
                }
            }
            Err(status) => status.code(),
        }
    } else {
        match grpc
            .unary(tonic::Request::new(Vec::new()), path, RawCodec)
            .await
        {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }
}

async fn create_token(
    admin: &mut AdminServiceClient<AuthedChannel>,
    name: &str,
    role: pb::Role,
    clusters: &[&str],
    expire_in: Option<Duration>,
) -> String {
    let expire_time = expire_in.map(|d| {
        let t = std::time::SystemTime::now() + d;
        prost_types::Timestamp::from(t)
    });
    admin
        .create_api_token(pb::CreateApiTokenRequest {
            name: name.into(),
            role: role.into(),
            cluster_ids: clusters.iter().map(|c| c.to_string()).collect(),
            expire_time,
        })
        .await
        .expect("create token")
        .into_inner()
        .secret
}

async fn audit_count(admin: &mut AdminServiceClient<AuthedChannel>, filter: &str) -> i32 {
    admin
        .list_audit_events(pb::ListAuditEventsRequest {
            filter: filter.into(),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .total_size
}

/// Who may call an RPC: the least role that may.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Needs {
    Viewer,
    Operator,
    Admin,
    /// The in-cluster agent's calls: no API token of any role is accepted (only registration
    /// tokens and agent credentials, tested in tests/agent_registration.rs).
    AgentSecret,
}

/// Whether an RPC is about one cluster (a cluster-scoped token may call it) or not.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reach {
    Cluster,
    Global,
}

/// Whether an RPC changes something (and so is always audited).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Effect {
    Reads,
    Changes,
}

use Effect::{Changes, Reads};
use Needs::{Admin, AgentSecret, Operator, Viewer};
use Reach::{Cluster, Global};

/// The expected access matrix, written out by hand from the README's role table (viewer: every
/// read, logs and streams; operator: + workload changes, cordon, drain, registry content;
/// admin: everything) —
/// deliberately not taken from `permissions::TABLE`, the table under test.
const EXPECTED: &[(&str, Needs, Reach, Effect)] = &[
    ("ClusterService/ImportCluster", Admin, Global, Changes),
    ("ClusterService/CreateCluster", Admin, Global, Changes),
    ("ClusterService/GetCluster", Viewer, Cluster, Reads),
    ("ClusterService/ListClusters", Viewer, Cluster, Reads),
    ("ClusterService/UpdateCluster", Admin, Cluster, Changes),
    (
        "ClusterService/UpdateClusterCredentials",
        Admin,
        Cluster,
        Changes,
    ),
    ("ClusterService/UpgradeCluster", Admin, Cluster, Changes),
    ("ClusterService/DeleteCluster", Admin, Cluster, Changes),
    ("ClusterService/ListProviders", Viewer, Cluster, Reads),
    ("ClusterService/ListVendorClusters", Admin, Global, Reads),
    ("ClusterService/RegisterCluster", Admin, Cluster, Changes),
    (
        "ClusterService/CreateAgentRegistration",
        Admin,
        Global,
        Changes,
    ),
    ("NodeService/ListNodes", Viewer, Cluster, Reads),
    ("NodeService/GetNode", Viewer, Cluster, Reads),
    ("NodeService/CordonNode", Operator, Cluster, Changes),
    ("NodeService/UncordonNode", Operator, Cluster, Changes),
    ("NodeService/DrainNode", Operator, Cluster, Changes),
    ("NodeService/ListNodePools", Viewer, Cluster, Reads),
    ("NodeService/GetNodePool", Viewer, Cluster, Reads),
    ("NodeService/CreateNodePool", Admin, Cluster, Changes),
    ("NodeService/UpdateNodePool", Admin, Cluster, Changes),
    ("NodeService/DeleteNodePool", Admin, Cluster, Changes),
    ("NodeService/AddNodes", Admin, Cluster, Changes),
    ("NodeService/RemoveNodes", Admin, Cluster, Changes),
    ("WorkloadService/ListWorkloads", Viewer, Cluster, Reads),
    ("WorkloadService/GetWorkload", Viewer, Cluster, Reads),
    ("WorkloadService/ScaleWorkload", Operator, Cluster, Changes),
    (
        "WorkloadService/RestartWorkload",
        Operator,
        Cluster,
        Changes,
    ),
    ("WorkloadService/DeleteWorkload", Operator, Cluster, Changes),
    ("WorkloadService/ListPods", Viewer, Cluster, Reads),
    ("WorkloadService/GetPod", Viewer, Cluster, Reads),
    ("WorkloadService/DeletePod", Operator, Cluster, Changes),
    ("WorkloadService/ApplyManifests", Operator, Cluster, Changes),
    ("WorkloadService/ListResources", Viewer, Cluster, Reads),
    ("WorkloadService/GetResource", Viewer, Cluster, Reads),
    ("WorkloadService/DeleteResource", Operator, Cluster, Changes),
    ("WorkloadService/ListResourceKinds", Viewer, Cluster, Reads),
    ("WorkloadService/ListEvents", Viewer, Cluster, Reads),
    ("RegistryService/CreateRegistry", Admin, Global, Changes),
    ("RegistryService/GetRegistry", Viewer, Cluster, Reads),
    ("RegistryService/ListRegistries", Viewer, Cluster, Reads),
    ("RegistryService/DeleteRegistry", Admin, Global, Changes),
    (
        "RegistryService/ListRegistryNamespaces",
        Viewer,
        Cluster,
        Reads,
    ),
    (
        "RegistryService/CreateRegistryNamespace",
        Operator,
        Global,
        Changes,
    ),
    (
        "RegistryService/DeleteRegistryNamespace",
        Operator,
        Global,
        Changes,
    ),
    ("RegistryService/ListRepositories", Viewer, Cluster, Reads),
    (
        "RegistryService/DeleteRepository",
        Operator,
        Global,
        Changes,
    ),
    ("RegistryService/ListArtifacts", Viewer, Cluster, Reads),
    ("RegistryService/DeleteArtifact", Operator, Global, Changes),
    ("RegistryService/ListCharts", Viewer, Cluster, Reads),
    ("RegistryService/ListChartVersions", Viewer, Cluster, Reads),
    ("RegistryService/SyncPullSecret", Admin, Cluster, Changes),
    ("RegistryService/UpdateRegistry", Admin, Global, Changes),
    (
        "RegistryService/ListRegistryProviders",
        Viewer,
        Cluster,
        Reads,
    ),
    ("RegistryService/GetArtifact", Viewer, Cluster, Reads),
    ("RegistryService/ListTags", Viewer, Cluster, Reads),
    ("LogStream/StreamPodLogs", Viewer, Cluster, Reads),
    ("LogStream/StreamWorkloadLogs", Viewer, Cluster, Reads),
    ("LogStream/WatchEvents", Viewer, Cluster, Reads),
    ("OperationService/GetOperation", Viewer, Cluster, Reads),
    ("OperationService/ListOperations", Viewer, Cluster, Reads),
    ("OperationService/WatchOperation", Viewer, Cluster, Reads),
    ("OperationService/CancelOperation", Admin, Cluster, Changes),
    ("OperationService/RetryOperation", Admin, Cluster, Changes),
    ("CredentialService/CreateCredential", Admin, Global, Changes),
    ("CredentialService/GetCredential", Admin, Global, Reads),
    ("CredentialService/ListCredentials", Admin, Global, Reads),
    ("CredentialService/RotateCredential", Admin, Global, Changes),
    ("CredentialService/DeleteCredential", Admin, Global, Changes),
    ("AdminService/CreateApiToken", Admin, Global, Changes),
    ("AdminService/ListApiTokens", Admin, Global, Reads),
    ("AdminService/RevokeApiToken", Admin, Global, Changes),
    ("AdminService/ListAuditEvents", Admin, Global, Reads),
    ("AgentService/RegisterAgent", AgentSecret, Global, Reads),
    ("AgentService/OpenTunnel", AgentSecret, Global, Reads),
];

/// The hand-written expectation for a full method path.
fn expected(path: &str) -> (Needs, Reach, Effect) {
    let short = path.trim_start_matches("/flotilla.v1.");
    let found = EXPECTED.iter().find(|(p, ..)| *p == short);
    let &(_, needs, reach, effect) =
        found.unwrap_or_else(|| panic!("{path} is not in the hand-written matrix: add it"));
    (needs, reach, effect)
}

#[test]
fn the_hand_written_matrix_names_every_rpc_exactly_once() {
    let declared: Vec<String> = every_rpc().into_iter().map(|(p, _)| p).collect();
    for path in &declared {
        expected(path);
    }
    for (short, ..) in EXPECTED {
        let path = format!("/flotilla.v1.{short}");
        assert!(declared.contains(&path), "{short} is not an RPC");
        let count = EXPECTED.iter().filter(|(p, ..)| p == short).count();
        assert_eq!(count, 1, "{short} is listed {count} times");
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Anonymous,
    Garbage,
    Expired,
    Revoked,
    Viewer,
    Operator,
    Admin,
    ScopedAdmin,
}

#[tokio::test]
async fn every_rpc_under_every_kind_of_caller() {
    let server = TestServer::start().await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let viewer = create_token(&mut admin, "viewer", pb::Role::Viewer, &[], None).await;
    let operator = create_token(&mut admin, "operator", pb::Role::Operator, &[], None).await;
    let scoped = create_token(&mut admin, "scoped", pb::Role::Admin, &["other"], None).await;
    let expired = create_token(
        &mut admin,
        "expired",
        pb::Role::Admin,
        &[],
        Some(Duration::from_millis(300)),
    )
    .await;
    let revoked = create_token(&mut admin, "revoked", pb::Role::Admin, &[], None).await;
    admin
        .revoke_api_token(pb::RevokeApiTokenRequest {
            token_id: "revoked".into(),
        })
        .await
        .expect("revoke by name");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let audited_before = audit_count(&mut admin, "").await;

    let callers = [
        (Caller::Anonymous, None),
        (Caller::Garbage, Some("flt_not-a-real-token")),
        (Caller::Expired, Some(expired.as_str())),
        (Caller::Revoked, Some(revoked.as_str())),
        (Caller::Viewer, Some(viewer.as_str())),
        (Caller::Operator, Some(operator.as_str())),
        (Caller::Admin, Some(support::server::ADMIN_TOKEN)),
        (Caller::ScopedAdmin, Some(scoped.as_str())),
    ];
    let mut expected_audit_rows = 0;
    let mut anonymous_refusals = 0;
    let mut checked = 0;
    for (caller, token) in callers {
        let channel = server.channel_as(token).await;
        for (path, streaming) in every_rpc() {
            let (needs, reach, effect) = expected(&path);
            let code = call(channel.clone(), &path, streaming).await;
            if needs == AgentSecret {
                // Refused by the agent service itself (not audited: no API token is involved).
                assert_eq!(code, Code::Unauthenticated, "{caller:?} {path}");
                checked += 1;
                continue;
            }
            let denied_code = match caller {
                Caller::Anonymous | Caller::Garbage | Caller::Expired | Caller::Revoked => {
                    Some(Code::Unauthenticated)
                }
                Caller::Viewer if needs > Viewer => Some(Code::PermissionDenied),
                Caller::Operator if needs > Operator => Some(Code::PermissionDenied),
                Caller::ScopedAdmin if reach == Global => Some(Code::PermissionDenied),
                _ => None,
            };
            match denied_code {
                Some(Code::Unauthenticated) => {
                    assert_eq!(code, Code::Unauthenticated, "{caller:?} {path}");
                    // Counted per address and minute, not a row each.
                    anonymous_refusals += 1;
                }
                Some(expected) => {
                    assert_eq!(code, expected, "{caller:?} {path}");
                    expected_audit_rows += 1;
                }
                None => {
                    assert!(
                        !matches!(code, Code::Unauthenticated | Code::PermissionDenied),
                        "{caller:?} {path}: allowed, but got {code:?}"
                    );
                    if effect == Changes {
                        expected_audit_rows += 1;
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 8 * 60);
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_audit_events(pb::ListAuditEventsRequest {
                page_size: 1000,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("audit")
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let (counted, single): (Vec<_>, Vec<_>) =
        events.iter().partition(|e| e.id.starts_with("anon-"));
    assert_eq!(
        single.len() as i32 - audited_before,
        expected_audit_rows,
        "one audit row per mutating call and per denied call with a valid token"
    );
    assert_eq!(
        counted.iter().map(|e| e.call_count).sum::<i64>(),
        anonymous_refusals,
        "every call without a valid token is counted"
    );
    assert!(
        counted.len() <= 3,
        "calls without a valid token are one row per address and minute: {}",
        counted.len()
    );
    let denied = audit_count(
        &mut admin,
        "result_code = PERMISSION_DENIED AND token_name = viewer",
    )
    .await;
    assert!(denied > 20, "viewer denials are attributed: {denied}");
    server.shutdown().await;
}

fn cluster(id: &str) -> ClusterRow {
    support::rows::imported_cluster(id)
}

#[tokio::test]
async fn scoped_tokens_see_only_their_clusters() {
    let server = TestServer::start().await;
    let store = server.store().await;
    for id in ["alpha", "beta", "gamma"] {
        store.insert_cluster(&cluster(id)).await.unwrap();
    }
    let mut admin = AdminServiceClient::new(server.channel().await);
    let token = create_token(&mut admin, "alpha-only", pb::Role::Viewer, &["alpha"], None).await;
    // The same request by an unscoped caller first: the page it is answered (and kept) is not
    // the scoped caller's.
    let everyone = ClusterServiceClient::new(server.channel().await)
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("admin list")
        .into_inner();
    assert_eq!(everyone.total_size, 3);
    let mut client = ClusterServiceClient::new(server.channel_as(Some(&token)).await);
    let list = client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<_> = list.clusters.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["alpha"]);
    assert_eq!(list.total_size, 1);
    client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "alpha".into(),
        })
        .await
        .expect("own cluster");
    let hidden = client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "beta".into(),
        })
        .await
        .unwrap_err();
    let missing = client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "no-such".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(
        hidden.message().replace("beta", "X"),
        missing.message().replace("no-such", "X"),
        "a hidden cluster looks exactly like a missing one"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_resource_exhausted_with_retry_info() {
    let server = TestServer::start_with(|s| {
        s.rate_limit = Some(flotilla::auth::rate::RateLimit {
            per_second: 2.0,
            burst: 3.0,
        })
    })
    .await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    for _ in 0..3 {
        client
            .list_providers(pb::ListProvidersRequest {})
            .await
            .expect("within budget");
    }
    let status = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let wait = status
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .expect("budget refilled");
    server.shutdown().await;
}

#[tokio::test]
async fn canary_secret_never_enters_the_audit_log() {
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let server = TestServer::start().await;
    let mut credentials = CredentialServiceClient::new(server.channel().await);
    credentials
        .create_credential(pb::CreateCredentialRequest {
            credential_id: "ali".into(),
            provider: "ack".into(),
            secret: Some(pb::CredentialSecret {
                secret: Some(pb::credential_secret::Secret::AccessKey(
                    pb::AccessKeySecret {
                        access_key_id: "LTAI".into(),
                        access_key_secret: canary.clone(),
                    },
                )),
            }),
            ..Default::default()
        })
        .await
        .expect("create");
    // The canary as a bearer token: denied, and not in the row either.
    let mut denied = ClusterServiceClient::new(server.channel_as(Some(&canary)).await);
    let status = denied
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains(&canary));

    let mut admin = AdminServiceClient::new(server.channel().await);
    let events = admin
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .expect("audit")
        .into_inner()
        .events;
    assert!(events.len() >= 2);
    let create = events
        .iter()
        .find(|e| e.method.ends_with("/CreateCredential"))
        .expect("create audited");
    assert_eq!(create.result_code, "OK");
    assert_eq!(create.target, "credentials/ali");
    assert_eq!(create.token_name, "bootstrap-admin");
    assert!(!create.request_id.is_empty() && create.peer_address.starts_with("127.0.0.1:"));
    for event in &events {
        assert!(!format!("{event:?}").contains(&canary), "{event:?}");
    }
    server.shutdown().await;
}

fn write(dir: &std::path::Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write pem");
    path
}

#[tokio::test]
async fn tls_and_mutual_tls() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let client_key = KeyPair::generate().expect("client key");
    let client_cert = CertificateParams::new(vec!["client".into()])
        .expect("params")
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    let ca_pem = ca.pem();
    let files = flotilla::config::TlsFiles {
        cert: write(dir.path(), "server.crt", &server_cert.pem()),
        key: write(dir.path(), "server.key", &server_key.serialize_pem()),
        client_ca: None,
    };

    // TLS: a client that trusts the CA works; plain text to the TLS port fails.
    let tls_files = files.clone();
    let server = TestServer::start_with(|s| s.tls = Some(tls_files)).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(url.clone())
        .expect("url")
        .tls_config(tls.clone())
        .expect("tls")
        .connect()
        .await
        .expect("TLS connect");
    let bearer = |mut r: tonic::Request<()>| {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", support::server::ADMIN_TOKEN)
                .parse()
                .expect("ascii"),
        );
        Ok(r)
    };
    let mut client = ClusterServiceClient::with_interceptor(channel, bearer);
    client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("call over TLS");
    let mut plain = ClusterServiceClient::new(
        Channel::from_shared(format!("http://127.0.0.1:{}", server.addr.port()))
            .expect("url")
            .connect_lazy(),
    );
    assert!(
        plain
            .list_providers(pb::ListProvidersRequest {})
            .await
            .is_err()
    );
    server.shutdown().await;

    // mTLS: without a client certificate the handshake fails; with one it works.
    let mut mtls_files = files;
    mtls_files.client_ca = Some(write(dir.path(), "ca.crt", &ca_pem));
    let server = TestServer::start_with(|s| s.tls = Some(mtls_files)).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let anonymous = Channel::from_shared(url.clone())
        .expect("url")
        .tls_config(tls.clone())
        .expect("tls")
        .connect()
        .await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(channel) => ClusterServiceClient::with_interceptor(channel, bearer)
            .list_providers(pb::ListProvidersRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "no client certificate, no service");
    let channel = Channel::from_shared(url)
        .expect("url")
        .tls_config(tls.identity(Identity::from_pem(
            client_cert.pem(),
            client_key.serialize_pem(),
        )))
        .expect("tls")
        .connect()
        .await
        .expect("mTLS connect");
    ClusterServiceClient::with_interceptor(channel, bearer)
        .list_providers(pb::ListProvidersRequest {})
        .await
        .expect("call over mTLS");
    server.shutdown().await;
}
