//! Cluster-scoped tokens: every RPC about one cluster (or one of its operations) answers for
//! another cluster exactly as for a cluster that does not exist, and changes nothing there.

use flotilla_test_support as support;

use flotilla::{
    proto::{self as pb, FILE_DESCRIPTOR_SET, admin_service_client::AdminServiceClient},
    store::ClusterRow,
};
use prost::Message;
use support::{
    raw::RawCodec,
    server::{AuthedChannel, TestServer},
};
use tonic::Code;

/// RPCs whose request names a cluster but which a cluster-scoped token may not call at all
/// (PERMISSION_DENIED, checked in tests/api/auth.rs): they make new clusters or tokens.
const GLOBAL_BUT_NAMING_A_CLUSTER: &[&str] = &[
    "ClusterService/ImportCluster",
    "ClusterService/CreateCluster",
    "ClusterService/CreateAgentRegistration",
    "AdminService/CreateApiToken",
];

fn cluster(id: &str) -> ClusterRow {
    ClusterRow {
        id: id.into(),
        display_name: id.into(),
        labels: "{}".into(),
        provider: "imported".into(),
        region: String::new(),
        vendor_cluster_id: String::new(),
        state: "RUNNING".into(),
        // Loopback, a port nothing listens on: a leak shows as a different answer, never as
        // traffic leaving the machine.
        endpoint: "https://127.0.0.1:9".into(),
        kube_system_uid: Some(format!("uid-{id}")),
        credential_id: None,
        access_secret_id: None,
        spec: None,
        warnings: "[]".into(),
        kube_access: "builtin".into(),
        last_operation_id: None,
        version: 1,
        create_time: 1,
        update_time: 1,
    }
}

/// Calls `path` with an encoded request; the outcome (for a stream: its first message).
async fn call_with(
    channel: AuthedChannel,
    path: &str,
    streaming: bool,
    request: Vec<u8>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = path.parse().expect("path");
    if streaming {
        let response = grpc
            .server_streaming(tonic::Request::new(request), path, RawCodec)
            .await?;
        response.into_inner().message().await.map(|_| ())
    } else {
        grpc.unary(tonic::Request::new(request), path, RawCodec)
            .await
            .map(|_| ())
    }
}

/// A well-formed kubeconfig for a loopback port nothing listens on.
const LOOPBACK_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:9
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
users:
- name: u
  user: {token: not-a-real-token}
";

/// Every RPC about one cluster, written out by hand with a request that names `cluster` and is
/// otherwise valid, so the cluster lookup is what answers. (path, server-streaming, request)
fn cluster_bound_requests(cluster: &str) -> Vec<(&'static str, bool, Vec<u8>)> {
    let id = || cluster.to_string();
    let ns = || "default".to_string();
    let name = || "web".to_string();
    let deployment = pb::WorkloadKind::Deployment as i32;
    let pool = || pb::NodePoolSpec {
        name: "workers".into(),
        desired_size: 1,
        ..Default::default()
    };
    let kubeconfig = || {
        Some(pb::update_cluster_credentials_request::Source::Kubeconfig(
            pb::KubeconfigSource {
                kubeconfig: LOOPBACK_KUBECONFIG.as_bytes().to_vec(),
                context: String::new(),
            },
        ))
    };
    let workload = || pb::WorkloadReference {
        kind: deployment,
        name: name(),
    };
    let object = || pb::ObjectReference {
        kind: "Pod".into(),
        name: name(),
        ..Default::default()
    };
    vec![
        (
            "ClusterService/GetCluster",
            false,
            pb::GetClusterRequest { cluster_id: id() }.encode_to_vec(),
        ),
        (
            "ClusterService/UpdateCluster",
            false,
            pb::UpdateClusterRequest {
                cluster: Some(pb::Cluster {
                    id: id(),
                    display_name: "renamed".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
            }
            .encode_to_vec(),
        ),
        (
            "ClusterService/UpdateClusterCredentials",
            false,
            pb::UpdateClusterCredentialsRequest {
                cluster_id: id(),
                source: kubeconfig(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "ClusterService/UpgradeCluster",
            false,
            pb::UpgradeClusterRequest {
                cluster_id: id(),
                kubernetes_version: "1.33.1".into(),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "ClusterService/DeleteCluster",
            false,
            pb::DeleteClusterRequest {
                cluster_id: id(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "ClusterService/RegisterCluster",
            false,
            pb::RegisterClusterRequest {
                cluster_id: id(),
                provider: "rancher".into(),
                credential_id: "rancher-key".into(),
                name: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/ListNodes",
            false,
            pb::ListNodesRequest {
                cluster_id: id(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/GetNode",
            false,
            pb::GetNodeRequest {
                cluster_id: id(),
                node_name: "kwok-b1".into(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/CordonNode",
            false,
            pb::CordonNodeRequest {
                cluster_id: id(),
                node_name: "kwok-b1".into(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/UncordonNode",
            false,
            pb::UncordonNodeRequest {
                cluster_id: id(),
                node_name: "kwok-b1".into(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/DrainNode",
            true,
            pb::DrainNodeRequest {
                cluster_id: id(),
                node_name: "kwok-b1".into(),
                dry_run: true,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/ListNodePools",
            false,
            pb::ListNodePoolsRequest {
                cluster_id: id(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/GetNodePool",
            false,
            pb::GetNodePoolRequest {
                cluster_id: id(),
                node_pool_id: "np-1".into(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/CreateNodePool",
            false,
            pb::CreateNodePoolRequest {
                cluster_id: id(),
                node_pool: Some(pool()),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/UpdateNodePool",
            false,
            pb::UpdateNodePoolRequest {
                cluster_id: id(),
                node_pool_id: "np-1".into(),
                node_pool: Some(pool()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["desired_size".into()],
                }),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/DeleteNodePool",
            false,
            pb::DeleteNodePoolRequest {
                cluster_id: id(),
                node_pool_id: "np-1".into(),
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/AddNodes",
            false,
            pb::AddNodesRequest {
                cluster_id: id(),
                node_pool_id: "np-1".into(),
                instance_ids: vec!["i-1".into()],
                request_id: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "NodeService/RemoveNodes",
            false,
            pb::RemoveNodesRequest {
                cluster_id: id(),
                node_pool_id: "np-1".into(),
                node_names: vec!["kwok-b1".into()],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/ListWorkloads",
            false,
            pb::ListWorkloadsRequest {
                cluster_id: id(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/GetWorkload",
            false,
            pb::GetWorkloadRequest {
                cluster_id: id(),
                namespace: ns(),
                kind: deployment,
                name: name(),
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/ScaleWorkload",
            false,
            pb::ScaleWorkloadRequest {
                cluster_id: id(),
                namespace: ns(),
                kind: deployment,
                name: name(),
                replicas: 1,
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/RestartWorkload",
            false,
            pb::RestartWorkloadRequest {
                cluster_id: id(),
                namespace: ns(),
                kind: deployment,
                name: name(),
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/DeleteWorkload",
            false,
            pb::DeleteWorkloadRequest {
                cluster_id: id(),
                namespace: ns(),
                kind: deployment,
                name: name(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/ListPods",
            false,
            pb::ListPodsRequest {
                cluster_id: id(),
                namespace: ns(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/GetPod",
            false,
            pb::GetPodRequest {
                cluster_id: id(),
                namespace: ns(),
                name: name(),
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/DeletePod",
            false,
            pb::DeletePodRequest {
                cluster_id: id(),
                namespace: ns(),
                name: name(),
                grace_period_seconds: None,
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/ApplyManifests",
            false,
            pb::ApplyManifestsRequest {
                cluster_id: id(),
                namespace: ns(),
                manifests: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/ListResources",
            false,
            pb::ListResourcesRequest {
                cluster_id: id(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: ns(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/GetResource",
            false,
            pb::GetResourceRequest {
                cluster_id: id(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: ns(),
                name: name(),
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/DeleteResource",
            false,
            pb::DeleteResourceRequest {
                cluster_id: id(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: ns(),
                name: name(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "WorkloadService/ListResourceKinds",
            false,
            pb::ListResourceKindsRequest { cluster_id: id() }.encode_to_vec(),
        ),
        (
            "WorkloadService/ListEvents",
            false,
            pb::ListEventsRequest {
                cluster_id: id(),
                namespace: ns(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "RegistryService/SyncPullSecret",
            false,
            pb::SyncPullSecretRequest {
                registry_id: "harbor".into(),
                targets: vec![pb::PullSecretTarget {
                    cluster_id: id(),
                    namespaces: vec![ns()],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "LogStream/StreamPodLogs",
            true,
            pb::StreamPodLogsRequest {
                cluster_id: id(),
                namespace: ns(),
                pod: name(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "LogStream/StreamWorkloadLogs",
            true,
            pb::StreamWorkloadLogsRequest {
                cluster_ids: vec![id()],
                namespace: ns(),
                pods: Some(pb::stream_workload_logs_request::Pods::Workload(workload())),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "LogStream/WatchEvents",
            true,
            pb::WatchEventsRequest {
                cluster_id: id(),
                namespace: ns(),
                involved_object: Some(object()),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ]
}

/// Every RPC about one operation (and so about its cluster), by operation id.
fn operation_bound_requests(operation: &str) -> Vec<(&'static str, bool, Vec<u8>)> {
    let id = || operation.to_string();
    vec![
        (
            "OperationService/GetOperation",
            false,
            pb::GetOperationRequest { operation_id: id() }.encode_to_vec(),
        ),
        (
            "OperationService/WatchOperation",
            true,
            pb::WatchOperationRequest { operation_id: id() }.encode_to_vec(),
        ),
        (
            "OperationService/CancelOperation",
            false,
            pb::CancelOperationRequest { operation_id: id() }.encode_to_vec(),
        ),
        (
            "OperationService/RetryOperation",
            false,
            pb::RetryOperationRequest { operation_id: id() }.encode_to_vec(),
        ),
    ]
}

/// RPCs whose request message names a cluster or an operation (read from the descriptor set, so
/// a new RPC cannot be forgotten by the hand-written lists).
fn requests_naming_a_cluster() -> Vec<String> {
    let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptors");
    let messages: Vec<_> = fds
        .file
        .iter()
        .filter(|f| f.package() == "flotilla.v1")
        .flat_map(|f| &f.message_type)
        .collect();
    let names_cluster = |type_name: &str| {
        let short = type_name.trim_start_matches(".flotilla.v1.");
        messages
            .iter()
            .find(|m| m.name() == short)
            .is_some_and(|m| {
                m.field.iter().any(|f| {
                    matches!(f.name(), "cluster_id" | "cluster_ids" | "operation_id")
                        || f.type_name().ends_with(".Cluster")
                        || f.type_name().ends_with(".PullSecretTarget")
                })
            })
    };
    let mut found = Vec::new();
    for file in fds.file.iter().filter(|f| f.package() == "flotilla.v1") {
        for service in &file.service {
            for method in &service.method {
                if names_cluster(method.input_type()) {
                    found.push(format!("{}/{}", service.name(), method.name()));
                }
            }
        }
    }
    assert!(found.len() > 40, "{found:?}");
    found
}

/// A token limited to one cluster cannot tell another cluster (or its operations) from one that
/// does not exist: every cluster-bound RPC answers the same code and message for both, and
/// nothing about the other cluster changes.
#[tokio::test]
async fn another_clusters_rpcs_look_exactly_like_a_missing_clusters() {
    let server = TestServer::start().await;
    let store = server.store().await;
    for id in ["alpha", "beta"] {
        store.insert_cluster(&cluster(id)).await.unwrap();
    }
    let beta_operation = flotilla::store::OperationRow {
        id: "op-beta".into(),
        resource: "clusters/beta".into(),
        cluster_id: "beta".into(),
        kind: "UPGRADE_CLUSTER".into(),
        state: "FAILED".into(),
        provider: "imported".into(),
        request_id: None,
        request_token: String::new(),
        request_hash: None,
        requested_by: "admin".into(),
        detail: serde_json::json!({
            "input": {"type": "upgrade_cluster", "version": "1.33.1"},
            "step": "submit",
            "credential_id": "",
            "region": "",
            "retry_deadline_millis": 0,
        })
        .to_string(),
        lease_owner: None,
        lease_expire_time: None,
        next_run_time: i64::MAX / 2,
        version: 1,
        create_time: 1,
        update_time: 1,
    };
    store.insert_operation(&beta_operation).await.unwrap();
    // SyncPullSecret checks its clusters only for a registry that exists and can issue a pull
    // credential: a Harbor record, never called (the clusters are checked before anything is
    // issued).
    store
        .insert_registry(&flotilla::store::RegistryRow {
            id: "harbor".into(),
            display_name: "harbor".into(),
            labels: "{}".into(),
            provider: "harbor".into(),
            endpoint: "https://127.0.0.1:9".into(),
            region: String::new(),
            vendor_instance_id: String::new(),
            credential_id: None,
            ca_pem: None,
            version: 1,
            create_time: 1,
            update_time: 1,
        })
        .await
        .unwrap();
    let mut admin = AdminServiceClient::new(server.channel().await);
    let token = admin
        .create_api_token(pb::CreateApiTokenRequest {
            name: "alpha-admin".into(),
            role: pb::Role::Admin.into(),
            cluster_ids: vec!["alpha".into()],
            expire_time: None,
        })
        .await
        .expect("create token")
        .into_inner()
        .secret;
    let scoped = server.channel_as(Some(&token)).await;

    // Hand-written lists cover every RPC whose request names a cluster or an operation.
    let listed: Vec<&str> = cluster_bound_requests("x")
        .into_iter()
        .chain(operation_bound_requests("x"))
        .map(|(path, ..)| path)
        .chain([
            "ClusterService/ListClusters",
            "OperationService/ListOperations",
        ])
        .collect();
    for short in requests_naming_a_cluster() {
        let global = GLOBAL_BUT_NAMING_A_CLUSTER.contains(&short.as_str());
        assert!(
            global || listed.contains(&short.as_str()),
            "{short} names a cluster but is not checked for scope leaks"
        );
    }
    assert!(listed.len() >= 40, "{} cluster-bound RPCs", listed.len());

    let mut checked = 0;
    let cases = [
        (
            cluster_bound_requests("beta"),
            cluster_bound_requests("no-such"),
            "beta",
            "no-such",
        ),
        (
            operation_bound_requests("op-beta"),
            operation_bound_requests("op-no-such"),
            "op-beta",
            "op-no-such",
        ),
    ];
    for (hidden_calls, missing_calls, hidden_id, missing_id) in cases {
        for ((path, streaming, hidden), (_, _, missing)) in
            hidden_calls.into_iter().zip(missing_calls)
        {
            let full = format!("/flotilla.v1.{path}");
            let missing = call_with(scoped.clone(), &full, streaming, missing)
                .await
                .expect_err(path);
            let hidden = call_with(scoped.clone(), &full, streaming, hidden).await;
            let hidden = hidden.expect_err(&format!("{path}: another cluster's call succeeded"));
            assert_eq!(
                missing.code(),
                Code::NotFound,
                "{path}: a missing id: {missing:?}"
            );
            assert_eq!(
                (hidden.code(), hidden.message().replace(hidden_id, "X")),
                (missing.code(), missing.message().replace(missing_id, "X")),
                "{path}: another cluster's answer differs from a missing one's"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, listed.len() - 2);

    // Lists leave the other cluster's things out.
    let mut operations = pb::operation_service_client::OperationServiceClient::new(scoped.clone());
    let listed_ops = operations
        .list_operations(pb::ListOperationsRequest::default())
        .await
        .expect("list operations")
        .into_inner();
    assert!(
        listed_ops.operations.iter().all(|o| o.id != "op-beta"),
        "{listed_ops:?}"
    );
    let all_ops = pb::operation_service_client::OperationServiceClient::new(server.channel().await)
        .list_operations(pb::ListOperationsRequest::default())
        .await
        .expect("list operations")
        .into_inner();
    assert!(
        all_ops.operations.iter().any(|o| o.id == "op-beta"),
        "the unscoped admin sees it"
    );

    // Nothing about the other cluster changed.
    let beta = store
        .get_cluster("beta")
        .await
        .unwrap()
        .expect("beta still exists");
    assert_eq!((beta.version, beta.display_name.as_str()), (1, "beta"));
    let op = store
        .get_operation("op-beta")
        .await
        .unwrap()
        .expect("op-beta");
    assert_eq!((op.state.as_str(), op.version), ("FAILED", 1));
    server.shutdown().await;
}

/// Scope is decided before anything of an operation is read: another cluster's operation whose
/// stored detail does not even decode is NOT_FOUND like a missing one (it once answered INTERNAL,
/// telling a scoped token that it exists).
#[tokio::test]
async fn another_clusters_unreadable_operation_is_not_found() {
    let server = TestServer::start().await;
    let store = server.store().await;
    for id in ["alpha", "beta"] {
        store.insert_cluster(&cluster(id)).await.unwrap();
    }
    store
        .insert_operation(&flotilla::store::OperationRow {
            id: "op-garbled".into(),
            resource: "clusters/beta".into(),
            cluster_id: "beta".into(),
            kind: "UPGRADE_CLUSTER".into(),
            state: "FAILED".into(),
            provider: "imported".into(),
            request_id: None,
            request_token: String::new(),
            request_hash: None,
            requested_by: "admin".into(),
            detail: "not the stored shape".into(),
            lease_owner: None,
            lease_expire_time: None,
            next_run_time: i64::MAX / 2,
            version: 1,
            create_time: 1,
            update_time: 1,
        })
        .await
        .unwrap();
    let token = AdminServiceClient::new(server.channel().await)
        .create_api_token(pb::CreateApiTokenRequest {
            name: "alpha-only".into(),
            role: pb::Role::Admin.into(),
            cluster_ids: vec!["alpha".into()],
            expire_time: None,
        })
        .await
        .expect("create token")
        .into_inner()
        .secret;
    let mut operations = pb::operation_service_client::OperationServiceClient::new(
        server.channel_as(Some(&token)).await,
    );
    let get = |id: &str| pb::GetOperationRequest {
        operation_id: id.into(),
    };
    let hidden = operations
        .get_operation(get("op-garbled"))
        .await
        .unwrap_err();
    let missing = operations
        .get_operation(get("op-missing"))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    assert_eq!(
        hidden.message().replace("op-garbled", "ID"),
        missing.message().replace("op-missing", "ID"),
        "another cluster's operation answers like a missing one"
    );
    server.shutdown().await;
}
