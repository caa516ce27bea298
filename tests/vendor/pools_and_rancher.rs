//! Beyond the basic lifecycle: Rancher's own clusters (listed, adopted, registered into) and
//! instances joining and leaving a node pool.

use flotilla_test_support as support;

use std::time::Duration;

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    node_service_client::NodeServiceClient,
};
use support::{
    kubeconfigs::admin_kubeconfig,
    lifecycle::{
        LIMIT, Vendor, assert_unsupported, cluster_spec, create, create_credential, get_cluster,
        server_for, state, wait_operation,
    },
    sim::{rancher::RancherSim, tke::TkeSim},
};
use tonic::Code;

/// Rancher's own clusters are listed and brought in by id (no new cluster is made), and a
/// cluster Flotilla knows can be registered into Rancher.
#[tokio::test]
async fn rancher_clusters_are_listed_adopted_and_registered() {
    use flotilla::adapters::{
        CallContext, Credentials, TransportSettings, VendorHttp,
        cluster::{ClusterProvider, rancher::RancherProvider},
    };
    let sim = RancherSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(100));
    let (key_id, token) = sim.credentials();
    // Someone made a cluster in Rancher directly.
    let elsewhere = RancherProvider::new(
        VendorHttp::new(TransportSettings::default(), None).unwrap(),
        Some(sim.endpoint()),
    )
    .create_cluster(
        &CallContext {
            credentials: Credentials::ApiKey {
                key_id: key_id.clone(),
                token: token.clone().into(),
            },
            region: String::new(),
        },
        "made-in-rancher",
        &cluster_spec("rancher", "", "v1.32.5+rke2r1"),
    )
    .await
    .expect("create at the simulator")
    .object_id;

    let vendor = Vendor {
        provider: "rancher",
        endpoint: sim.endpoint(),
        key: (key_id.clone(), token.clone()),
        control: sim.control.clone(),
    };
    let server = server_for(&vendor).await;
    let credential =
        create_credential(server.channel().await, "rk", "rancher", (&key_id, &token)).await;
    let mut clusters = ClusterServiceClient::new(server.channel().await);
    let listed = clusters
        .list_vendor_clusters(pb::ListVendorClustersRequest {
            provider: "rancher".into(),
            credential_id: credential.clone(),
            region: String::new(),
        })
        .await
        .expect("ListVendorClusters")
        .into_inner()
        .clusters;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].vendor_cluster_id, elsewhere);
    assert_eq!(listed[0].name, "made-in-rancher");
    assert_eq!(listed[0].cluster_id, "", "not tracked by Flotilla yet");

    // Bring it in by id: the operation connects through generateKubeconfig.
    let mut spec = cluster_spec("rancher", &credential, "");
    spec.provider_config = Some(pb::cluster_spec::ProviderConfig::Rancher(
        pb::RancherClusterConfig {
            rancher_cluster_id: elsewhere.clone(),
            driver_config: None,
        },
    ));
    let op = clusters
        .create_cluster(pb::CreateClusterRequest {
            cluster_id: "adopted".into(),
            provider: "rancher".into(),
            spec: Some(spec),
            request_id: String::new(),
            validate_only: false,
        })
        .await
        .expect("CreateCluster adopting")
        .into_inner()
        .operation
        .unwrap();
    let done = wait_operation(server.channel().await, &op.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    assert_eq!(sim.clusters_created(), 1, "adopting makes nothing new");
    let adopted = get_cluster(server.channel().await, "adopted")
        .await
        .unwrap();
    assert_eq!(adopted.vendor_cluster_id, elsewhere);
    assert_eq!(adopted.state, pb::ClusterState::Running as i32);
    let listed = clusters
        .list_vendor_clusters(pb::ListVendorClustersRequest {
            provider: "rancher".into(),
            credential_id: credential.clone(),
            region: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .clusters;
    assert_eq!(listed[0].cluster_id, "adopted");

    // Register a cluster imported from elsewhere (the second test API server) into Rancher.
    let imported = clusters
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "second".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: support::kubeconfigs::admin_kubeconfig_at(
                        &support::kubeconfigs::second_server(),
                    )
                    .into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import the second API server")
        .into_inner()
        .cluster
        .unwrap();
    let registration = clusters
        .register_cluster(pb::RegisterClusterRequest {
            cluster_id: imported.id.clone(),
            provider: "rancher".into(),
            credential_id: credential.clone(),
            name: String::new(),
        })
        .await
        .expect("RegisterCluster")
        .into_inner();
    assert!(registration.vendor_cluster_id.starts_with("c-"));
    assert!(
        registration.manifest_url.contains("/v3/import/")
            && registration.manifest_url.ends_with(".yaml"),
        "{registration:?}"
    );
    assert_eq!(
        registration.command,
        format!("kubectl apply -f {}", registration.manifest_url)
    );
    assert!(sim.cluster_names().contains(&"second".to_string()));

    // Providers that cannot list or register say so.
    let err = clusters
        .list_vendor_clusters(pb::ListVendorClustersRequest {
            provider: "ack".into(),
            credential_id: credential.clone(),
            region: "cn-hangzhou".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_unsupported(&err);
    server.shutdown().await;
}

/// Existing instances join a pool, specific nodes leave it (without a drain here: the test
/// control plane's nodes are shared), and the pool is deleted; each through an operation.
#[tokio::test]
async fn tke_nodes_join_and_leave_a_pool() {
    let sim = TkeSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(100));
    let vendor = Vendor {
        provider: "tke",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    let server = server_for(&vendor).await;
    let credential = create_credential(
        server.channel().await,
        "tk",
        "tke",
        (&vendor.key.0, &vendor.key.1),
    )
    .await;
    let (op, _) = create(&server, "tke", "pools", &credential, "1.30.0").await;
    let done = wait_operation(server.channel().await, &op.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    let cluster = get_cluster(server.channel().await, "pools").await.unwrap();
    let vendor_id = cluster.vendor_cluster_id.clone();
    let pool_id = sim
        .node_pool_ids(&vendor_id)
        .first()
        .cloned()
        .expect("the spec's pool");
    let mut nodes = NodeServiceClient::new(server.channel().await);

    let add = nodes
        .add_nodes(pb::AddNodesRequest {
            cluster_id: "pools".into(),
            node_pool_id: pool_id.clone(),
            instance_ids: vec!["ins-existing1".into()],
            request_id: String::new(),
        })
        .await
        .expect("AddNodes")
        .into_inner()
        .operation
        .unwrap();
    let added = wait_operation(server.channel().await, &add.id, LIMIT).await;
    assert_eq!(state(&added), pb::OperationState::Succeeded, "{added:#?}");
    let instances = sim.instances(&vendor_id, &pool_id);
    let joined = instances
        .iter()
        .find(|(id, _)| id == "ins-existing1")
        .cloned()
        .expect("the instance is in the pool");

    let remove = nodes
        .remove_nodes(pb::RemoveNodesRequest {
            cluster_id: "pools".into(),
            node_pool_id: pool_id.clone(),
            node_names: vec![joined.1.clone()],
            skip_drain: true,
            release_instances: false,
            request_id: String::new(),
        })
        .await
        .expect("RemoveNodes")
        .into_inner()
        .operation
        .unwrap();
    let removed = wait_operation(server.channel().await, &remove.id, LIMIT).await;
    assert_eq!(
        state(&removed),
        pb::OperationState::Succeeded,
        "{removed:#?}"
    );
    assert!(
        !sim.instances(&vendor_id, &pool_id)
            .iter()
            .any(|(id, _)| id == "ins-existing1"),
        "the node left the pool"
    );

    // Bad input changes nothing.
    let err = nodes
        .add_nodes(pb::AddNodesRequest {
            cluster_id: "pools".into(),
            node_pool_id: pool_id.clone(),
            instance_ids: vec![],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let delete = nodes
        .delete_node_pool(pb::DeleteNodePoolRequest {
            cluster_id: "pools".into(),
            node_pool_id: pool_id.clone(),
            request_id: String::new(),
        })
        .await
        .expect("DeleteNodePool")
        .into_inner()
        .operation
        .unwrap();
    let deleted = wait_operation(server.channel().await, &delete.id, LIMIT).await;
    assert_eq!(
        state(&deleted),
        pb::OperationState::Succeeded,
        "{deleted:#?}"
    );
    assert!(sim.node_pool_ids(&vendor_id).is_empty());
    server.shutdown().await;
}
