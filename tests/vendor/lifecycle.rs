//! End to end through the gRPC API, per vendor: create a cluster at the vendor's simulator, wait
//! for the operation, see the cluster and its nodes (read through the real test control plane),
//! scale a node pool, upgrade, and delete with destroy. Plus the API's refusals.

use flotilla_test_support as support;

use std::time::Duration;

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    node_service_client::NodeServiceClient, operation_service_client::OperationServiceClient,
};
use support::{
    kubeconfigs::admin_kubeconfig,
    lifecycle::{
        LIMIT, Vendor, assert_unsupported, capability, cluster_spec, create, create_credential,
        get_cluster, server_for, state, wait_operation,
    },
    server::TestServer,
    sim::{Faults, ack::AckSim, rancher::RancherSim, tke::TkeSim},
};
use tonic::Code;

/// The lifecycle every vendor goes through; `versions` = (create, upgrade). What runs beyond
/// create, upgrade and delete follows the provider's declared capability: node pools are made
/// and scaled where it claims them, and answer UNSUPPORTED_BY_PROVIDER where it does not.
async fn lifecycle(vendor: Vendor, versions: (&str, &str)) {
    vendor
        .control
        .set_delays(Duration::from_millis(800), Duration::from_millis(300));
    let server = server_for(&vendor).await;
    let p = vendor.provider;
    let can = capability(&server, p).await;
    assert!(
        can.create_cluster && can.upgrade_cluster && can.delete_cluster,
        "every cluster provider creates, upgrades and deletes: {can:?}"
    );
    let credential = create_credential(
        server.channel().await,
        &format!("{p}-key"),
        p,
        (&vendor.key.0, &vendor.key.1),
    )
    .await;
    let id = format!("{p}-e2e");

    // Create: the cluster exists at once, PROVISIONING, and the operation ends SUCCEEDED.
    let (op, cluster) = create(&server, p, &id, &credential, versions.0).await;
    assert_eq!(cluster.state, pb::ClusterState::Provisioning as i32);
    assert_eq!(op.resource, format!("clusters/{id}"));
    assert_eq!(op.provider, p);
    let done = wait_operation(server.channel().await, &op.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    assert_eq!(done.progress_percent, 100);
    let steps: Vec<_> = done.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        steps,
        ["submit", "provision", "node_pools", "connect"],
        "{done:#?}"
    );
    assert!(
        done.steps
            .iter()
            .all(|s| s.state == pb::OperationState::Succeeded as i32 && s.end_time.is_some()),
        "{done:#?}"
    );
    assert!(done.end_time.is_some());
    assert!(done.error.is_none(), "{done:#?}");

    // The same request_id returns the same operation, and nothing new is made at the vendor.
    let (again, _) = create(&server, p, &id, &credential, versions.0).await;
    assert_eq!(again.id, op.id);

    // It is a normal cluster now: listed, RUNNING, nodes read through Kubernetes.
    let cluster = get_cluster(server.channel().await, &id).await.unwrap();
    assert_eq!(cluster.state, pb::ClusterState::Running as i32);
    assert!(!cluster.vendor_cluster_id.is_empty());
    assert_eq!(cluster.last_operation_id, op.id);
    assert!(
        cluster.spec.is_some(),
        "the spec it was created from is kept"
    );
    let listed = ClusterServiceClient::new(server.channel().await)
        .list_clusters(pb::ListClustersRequest {
            filter: format!("provider = \"{p}\""),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .clusters
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    let nodes = NodeServiceClient::new(server.channel().await)
        .list_nodes(pb::ListNodesRequest {
            cluster_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("ListNodes through Kubernetes")
        .into_inner();
    assert!(
        nodes.nodes.iter().any(|n| n.name == "kwok-a1"),
        "the simulated cluster's kubeconfig reaches the test control plane: {:?}",
        nodes.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
    );

    let mut node_client = NodeServiceClient::new(server.channel().await);
    if can.list_node_pools && can.create_node_pool && can.resize_node_pool {
        // A node pool: create, then scale it to 3.
        let created = node_client
            .create_node_pool(pb::CreateNodePoolRequest {
                cluster_id: id.clone(),
                node_pool: Some(pb::NodePoolSpec {
                    name: "workers".into(),
                    instance_types: vec!["ecs.g7.large".into()],
                    desired_size: 1,
                    max_size: 5,
                    ..Default::default()
                }),
                request_id: format!("pool-{id}"),
                validate_only: false,
            })
            .await
            .expect("CreateNodePool")
            .into_inner()
            .operation
            .unwrap();
        let created = wait_operation(server.channel().await, &created.id, LIMIT).await;
        assert_eq!(
            state(&created),
            pb::OperationState::Succeeded,
            "{created:#?}"
        );
        let pools = node_client
            .list_node_pools(pb::ListNodePoolsRequest {
                cluster_id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            pools
                .node_pools
                .iter()
                .any(|np| np.spec.as_ref().is_some_and(|s| s.name == "default")),
            "the spec's pool was made with the cluster: {pools:?}"
        );
        let pool = pools
            .node_pools
            .iter()
            .find(|np| np.spec.as_ref().is_some_and(|s| s.name == "workers"))
            .expect("the new pool is listed")
            .clone();
        let scale = node_client
            .update_node_pool(pb::UpdateNodePoolRequest {
                cluster_id: id.clone(),
                node_pool_id: pool.id.clone(),
                node_pool: Some(pb::NodePoolSpec {
                    desired_size: 3,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["desired_size".into()],
                }),
                request_id: format!("scale-{id}"),
            })
            .await
            .expect("UpdateNodePool")
            .into_inner()
            .operation
            .unwrap();
        assert_eq!(
            scale.resource,
            format!("clusters/{id}/nodePools/{}", pool.id)
        );
        let scaled = wait_operation(server.channel().await, &scale.id, LIMIT).await;
        assert_eq!(state(&scaled), pb::OperationState::Succeeded, "{scaled:#?}");
        let after = node_client
            .get_node_pool(pb::GetNodePoolRequest {
                cluster_id: id.clone(),
                node_pool_id: pool.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .node_pool
            .unwrap();
        assert_eq!(after.spec.unwrap().desired_size, 3);
        ready_nodes_are_counted_from_kubernetes(&server, p, &id, &pool.id).await;
    } else {
        // What the provider does not claim it says so distinctly, and nothing is recorded.
        if !can.list_node_pools {
            let err = node_client
                .list_node_pools(pb::ListNodePoolsRequest {
                    cluster_id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
            assert_unsupported(&err);
        }
        if !can.resize_node_pool {
            let err = node_client
                .update_node_pool(pb::UpdateNodePoolRequest {
                    cluster_id: id.clone(),
                    node_pool_id: "np-1".into(),
                    node_pool: Some(pb::NodePoolSpec {
                        desired_size: 3,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["desired_size".into()],
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
            assert_unsupported(&err);
        }
    }

    // Upgrade.
    let upgrade = ClusterServiceClient::new(server.channel().await)
        .upgrade_cluster(pb::UpgradeClusterRequest {
            cluster_id: id.clone(),
            kubernetes_version: versions.1.into(),
            request_id: format!("upgrade-{id}"),
        })
        .await
        .expect("UpgradeCluster")
        .into_inner()
        .operation
        .unwrap();
    let upgraded = wait_operation(server.channel().await, &upgrade.id, LIMIT).await;
    assert_eq!(
        state(&upgraded),
        pb::OperationState::Succeeded,
        "{upgraded:#?}"
    );
    let cluster = get_cluster(server.channel().await, &id).await.unwrap();
    assert_eq!(cluster.state, pb::ClusterState::Running as i32);

    // Every operation on the cluster is listed, newest first.
    let ops = OperationServiceClient::new(server.channel().await)
        .list_operations(pb::ListOperationsRequest {
            resource: format!("clusters/{id}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ops.operations.first().map(|o| o.id.as_str()),
        Some(upgrade.id.as_str())
    );
    assert_eq!(
        ops.operations.last().map(|o| o.id.as_str()),
        Some(op.id.as_str())
    );

    // Delete with destroy: gone at the vendor, then forgotten here.
    let delete = ClusterServiceClient::new(server.channel().await)
        .delete_cluster(pb::DeleteClusterRequest {
            cluster_id: id.clone(),
            destroy: true,
            request_id: format!("delete-{id}"),
            etag: String::new(),
        })
        .await
        .expect("DeleteCluster destroy")
        .into_inner()
        .operation
        .expect("destroy returns an operation");
    let deleted = wait_operation(server.channel().await, &delete.id, LIMIT).await;
    assert_eq!(
        state(&deleted),
        pb::OperationState::Succeeded,
        "{deleted:#?}"
    );
    let gone = get_cluster(server.channel().await, &id).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn ack_cluster_lifecycle() {
    let sim = AckSim::start(admin_kubeconfig()).await;
    let vendor = Vendor {
        provider: "ack",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    lifecycle(vendor, ("1.32.1-aliyun.1", "1.33.1-aliyun.1")).await;
    assert_eq!(sim.clusters_created(), 1, "exactly one cluster made");
    assert!(sim.cluster_ids().is_empty(), "deleted at the vendor");
}

#[tokio::test]
async fn tke_cluster_lifecycle() {
    let sim = TkeSim::start(admin_kubeconfig()).await;
    let vendor = Vendor {
        provider: "tke",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    lifecycle(vendor, ("1.30.0", "1.32.2")).await;
    assert_eq!(sim.clusters_created(), 1, "exactly one cluster made");
    assert!(sim.cluster_ids().is_empty(), "deleted at the vendor");
}

#[tokio::test]
async fn rancher_cluster_lifecycle() {
    let sim = RancherSim::start(admin_kubeconfig()).await;
    let vendor = Vendor {
        provider: "rancher",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    lifecycle(vendor, ("v1.32.5+rke2r1", "v1.33.1+rke2r1")).await;
    assert_eq!(sim.clusters_created(), 1, "exactly one cluster made");
    assert!(sim.cluster_ids().is_empty(), "deleted at the vendor");
}

/// A credential whose secret is wrong: the simulator rejects the signature, the operation fails
/// at once with CREDENTIALS_INVALID (no retries), and the cluster is marked FAILED.
#[tokio::test]
async fn wrongly_signed_requests_fail_the_operation_without_retries() {
    let sim = AckSim::start(admin_kubeconfig()).await;
    let vendor = Vendor {
        provider: "ack",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    let server = server_for(&vendor).await;
    let credential = create_credential(
        server.channel().await,
        "bad-key",
        "ack",
        (&vendor.key.0, "not-the-secret"),
    )
    .await;
    let (op, _) = create(
        &server,
        "ack",
        "badly-signed",
        &credential,
        "1.32.1-aliyun.1",
    )
    .await;
    let done = wait_operation(server.channel().await, &op.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Failed, "{done:#?}");
    let error = done.error.expect("error");
    assert_eq!(
        error.error_class,
        pb::ErrorClass::CredentialsInvalid as i32,
        "{error:?}"
    );
    assert!(!error.retryable);
    assert_eq!(error.vendor_code, "SignatureDoesNotMatch");
    assert!(!error.vendor_message.contains("not-the-secret"));
    let seen = sim.control.seen();
    assert_eq!(seen.len(), 1, "no retry of an auth failure: {seen:?}");
    assert_eq!(seen[0].outcome, "signature");
    assert_eq!(sim.clusters_created(), 0);
    let cluster = get_cluster(server.channel().await, "badly-signed")
        .await
        .unwrap();
    assert_eq!(cluster.state, pb::ClusterState::Failed as i32);
    server.shutdown().await;
}

/// Bad requests get a clear answer naming the field, and nothing is stored.
#[tokio::test]
async fn bad_create_requests_change_nothing() {
    let sim = AckSim::start(admin_kubeconfig()).await;
    let vendor = Vendor {
        provider: "ack",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    let server = server_for(&vendor).await;
    let credential = create_credential(
        server.channel().await,
        "k",
        "ack",
        (&vendor.key.0, &vendor.key.1),
    )
    .await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    let cases: Vec<(&str, pb::CreateClusterRequest, Code, &str)> = vec![
        (
            "unknown provider",
            pb::CreateClusterRequest {
                provider: "gke".into(),
                spec: Some(cluster_spec("ack", &credential, "1.32.1")),
                ..Default::default()
            },
            Code::InvalidArgument,
            "provider",
        ),
        (
            "no spec",
            pb::CreateClusterRequest {
                provider: "ack".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
            "spec",
        ),
        (
            "config of another vendor",
            pb::CreateClusterRequest {
                provider: "ack".into(),
                spec: Some(cluster_spec("tke", &credential, "1.32.1")),
                ..Default::default()
            },
            Code::InvalidArgument,
            "spec.provider_config",
        ),
        (
            "missing credential",
            pb::CreateClusterRequest {
                provider: "ack".into(),
                spec: Some(cluster_spec("ack", "nope", "1.32.1")),
                ..Default::default()
            },
            Code::InvalidArgument,
            "spec.credential_id",
        ),
        (
            "bad id",
            pb::CreateClusterRequest {
                cluster_id: "Bad_ID".into(),
                provider: "ack".into(),
                spec: Some(cluster_spec("ack", &credential, "1.32.1")),
                ..Default::default()
            },
            Code::InvalidArgument,
            "cluster_id",
        ),
    ];
    for (name, request, code, field) in cases {
        let err = client.create_cluster(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{name}: {err:?}");
        let details = tonic_types::StatusExt::get_error_details(&err);
        let violations = details
            .bad_request()
            .expect("BadRequest")
            .field_violations
            .clone();
        assert_eq!(violations[0].field, field, "{name}");
    }
    // Imported clusters have no vendor lifecycle.
    let err = client
        .upgrade_cluster(pb::UpgradeClusterRequest {
            cluster_id: "does-not-exist".into(),
            kubernetes_version: "1.33.1".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // validate_only checks everything and creates nothing.
    let checked = client
        .create_cluster(pb::CreateClusterRequest {
            cluster_id: "dry".into(),
            provider: "ack".into(),
            spec: Some(cluster_spec("ack", &credential, "1.32.1")),
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.cluster.unwrap().id, "dry");
    let all = client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        all.clusters.is_empty(),
        "nothing stored: {:?}",
        all.clusters
    );
    let ops = OperationServiceClient::new(server.channel().await)
        .list_operations(pb::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.total_size, 0);
    assert!(sim.control.seen().is_empty(), "the vendor was never called");

    // ListProviders tells what each provider can do.
    let providers = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
        .providers;
    let ids: Vec<_> = providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["imported", "ack", "rancher", "tke"]);
    let rancher = providers.iter().find(|p| p.id == "rancher").unwrap();
    let cap = rancher.capability.clone().unwrap();
    assert!(cap.create_cluster && !cap.resize_node_pool);
    let ack = providers.iter().find(|p| p.id == "ack").unwrap();
    assert!(ack.capability.clone().unwrap().resize_node_pool);
    server.shutdown().await;
}

/// An operation that already ended cannot be cancelled; one that failed can be retried, and
/// unknown operations are NOT_FOUND.
#[tokio::test]
async fn cancel_and_retry_rules() {
    let sim = AckSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(100));
    let vendor = Vendor {
        provider: "ack",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    let server = server_for(&vendor).await;
    let credential = create_credential(
        server.channel().await,
        "k",
        "ack",
        (&vendor.key.0, &vendor.key.1),
    )
    .await;
    sim.control.set_faults(Faults {
        fail_next_task: Some("ErrorCreatingCluster".into()),
        ..Default::default()
    });
    let (op, _) = create(&server, "ack", "fails-once", &credential, "1.32.1-aliyun.1").await;
    let failed = wait_operation(server.channel().await, &op.id, LIMIT).await;
    assert_eq!(state(&failed), pb::OperationState::Failed, "{failed:#?}");
    assert!(!failed.cancellable);
    let mut ops = OperationServiceClient::new(server.channel().await);
    let err = ops
        .cancel_operation(pb::CancelOperationRequest {
            operation_id: op.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = ops
        .get_operation(pb::GetOperationRequest {
            operation_id: "op-missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = ops
        .retry_operation(pb::RetryOperationRequest {
            operation_id: "op-missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.shutdown().await;
}

/// A node that carries the vendor's pool label, and is Ready in Kubernetes, counts in the pool's
/// ready_size.
async fn ready_nodes_are_counted_from_kubernetes(
    server: &TestServer,
    provider: &str,
    cluster_id: &str,
    pool_id: &str,
) {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, Patch, PatchParams};
    let label = match provider {
        "ack" => "alibabacloud.com/nodepool-id",
        _ => "tke.cloud.tencent.com/nodepool-id",
    };
    let nodes: Api<Node> = Api::all(support::kube::client().await);
    let patch = |value: serde_json::Value| {
        Patch::Merge(serde_json::json!({"metadata": {"labels": {label: value}}}))
    };
    nodes
        .patch("kwok-b1", &PatchParams::default(), &patch(pool_id.into()))
        .await
        .expect("label the node");
    let mut client = NodeServiceClient::new(server.channel().await);
    let started = std::time::Instant::now();
    loop {
        let pool = client
            .get_node_pool(pb::GetNodePoolRequest {
                cluster_id: cluster_id.into(),
                node_pool_id: pool_id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .node_pool
            .unwrap();
        if pool.ready_size == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "ready_size stayed {}",
            pool.ready_size
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    nodes
        .patch(
            "kwok-b1",
            &PatchParams::default(),
            &patch(serde_json::Value::Null),
        )
        .await
        .expect("remove the label");
}
