//! Operations stay with their owner, through the gRPC API against the vendor simulators: a
//! request_id is a key per token and names one exact request; RegisterCluster needs a global
//! admin; TKE opens a public API endpoint only when the spec asks. Expected answers come from
//! the simulators' own request counters and state.

use flotilla_test_support as support;

use std::time::Duration;

use flotilla::proto::{
    self as pb, admin_service_client::AdminServiceClient,
    cluster_service_client::ClusterServiceClient, node_service_client::NodeServiceClient,
};
use support::{
    kubeconfigs::{admin_kubeconfig, admin_kubeconfig_at, second_server},
    lifecycle::{
        LIMIT, Vendor, cluster_spec, create_credential, get_cluster, server_for, state,
        wait_operation,
    },
    server::{AuthedChannel, TestServer},
    sim::{rancher::RancherSim, tke::TkeSim},
};
use tonic::Code;

async fn create_token(
    server: &TestServer,
    name: &str,
    role: pb::Role,
    clusters: &[&str],
) -> String {
    AdminServiceClient::new(server.channel().await)
        .create_api_token(pb::CreateApiTokenRequest {
            name: name.into(),
            role: role.into(),
            cluster_ids: clusters.iter().map(|c| c.to_string()).collect(),
            expire_time: None,
        })
        .await
        .expect("create token")
        .into_inner()
        .secret
}

async fn create_cluster(
    channel: AuthedChannel,
    id: &str,
    spec: pb::ClusterSpec,
    request_id: &str,
) -> Result<pb::CreateClusterResponse, tonic::Status> {
    ClusterServiceClient::new(channel)
        .create_cluster(pb::CreateClusterRequest {
            cluster_id: id.into(),
            provider: "tke".into(),
            spec: Some(spec),
            request_id: request_id.into(),
            validate_only: false,
        })
        .await
        .map(|r| r.into_inner())
}

/// INVALID_ARGUMENT on `field`, with a message that names nothing in `hidden`.
fn assert_refused(err: &tonic::Status, field: &str, hidden: &[&str]) {
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let details = tonic_types::StatusExt::get_error_details(err);
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert_eq!(violations[0].field, field, "{err:?}");
    let text = format!("{err:?}");
    for secret in hidden {
        assert!(!text.contains(secret), "{secret:?} leaks in {text}");
    }
}

async fn tke() -> (TkeSim, TestServer, String) {
    let sim = TkeSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(150));
    let vendor = Vendor {
        provider: "tke",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    let server = server_for(&vendor).await;
    let credential = create_credential(
        server.channel().await,
        "tke-key",
        "tke",
        (&vendor.key.0, &vendor.key.1),
    )
    .await;
    (sim, server, credential)
}

/// Long enough for the operation worker (polling every 100 ms) to have sent anything it would.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn a_request_id_is_one_request_of_one_token() {
    let (sim, server, credential) = tke().await;
    let spec = cluster_spec("tke", &credential, "1.30.0");
    let first = create_cluster(server.channel().await, "rid-a", spec.clone(), "same-id")
        .await
        .expect("first create")
        .operation
        .expect("operation");
    let done = wait_operation(server.channel().await, &first.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    let creates = sim.control.count("CreateCluster");
    assert_eq!(creates, 1);

    // The same id with another cluster id, or another region: refused, nothing of the first
    // operation echoed, no cluster recorded, no call to the vendor.
    let err = create_cluster(server.channel().await, "rid-b", spec.clone(), "same-id")
        .await
        .unwrap_err();
    assert_refused(&err, "request_id", &[&first.id, "rid-a"]);
    let mut elsewhere = spec.clone();
    elsewhere.region = "ap-shanghai".into();
    let err = create_cluster(server.channel().await, "rid-a", elsewhere, "same-id")
        .await
        .unwrap_err();
    assert_refused(&err, "request_id", &[&first.id]);
    assert_eq!(
        get_cluster(server.channel().await, "rid-b")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    settle().await;
    assert_eq!(
        sim.control.count("CreateCluster"),
        creates,
        "no vendor call"
    );
    assert_eq!(sim.clusters_created(), 1);

    // The identical request is a replay: the same operation, nothing new at the vendor.
    let again = create_cluster(server.channel().await, "rid-a", spec.clone(), "same-id")
        .await
        .expect("replay")
        .operation
        .expect("operation");
    assert_eq!(again.id, first.id);

    // Another kind of call under the same id is another request.
    let err = ClusterServiceClient::new(server.channel().await)
        .upgrade_cluster(pb::UpgradeClusterRequest {
            cluster_id: "rid-a".into(),
            kubernetes_version: "1.32.2".into(),
            request_id: "same-id".into(),
        })
        .await
        .unwrap_err();
    assert_refused(&err, "request_id", &[&first.id]);

    // Another token's same id is its own key: it never sees the first operation. Its identical
    // request is a new create (refused: the cluster id is taken), its own cluster id makes its
    // own operation and cluster.
    let other = create_token(&server, "other-admin", pb::Role::Admin, &[]).await;
    let other_channel = server.channel_as(Some(&other)).await;
    let err = create_cluster(other_channel.clone(), "rid-a", spec.clone(), "same-id")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(!format!("{err:?}").contains(&first.id), "{err:?}");
    let theirs = create_cluster(other_channel.clone(), "rid-b", spec.clone(), "same-id")
        .await
        .expect("another token's create")
        .operation
        .expect("operation");
    assert_ne!(theirs.id, first.id);
    assert_eq!(theirs.resource, "clusters/rid-b");
    let done = wait_operation(server.channel().await, &theirs.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    assert_eq!(sim.clusters_created(), 2);
    // And each token's replay still finds its own.
    let mine = create_cluster(server.channel().await, "rid-a", spec.clone(), "same-id")
        .await
        .unwrap()
        .operation
        .unwrap();
    assert_eq!(mine.id, first.id);
    let replayed = create_cluster(other_channel, "rid-b", spec, "same-id")
        .await
        .unwrap()
        .operation
        .unwrap();
    assert_eq!(replayed.id, theirs.id);

    // Upgrade and node pool calls bind their ids to their bodies too.
    let mut clusters = ClusterServiceClient::new(server.channel().await);
    let upgrade = |version: &str| pb::UpgradeClusterRequest {
        cluster_id: "rid-a".into(),
        kubernetes_version: version.into(),
        request_id: "upgrade-1".into(),
    };
    let up = clusters
        .upgrade_cluster(upgrade("1.32.2"))
        .await
        .expect("upgrade")
        .into_inner()
        .operation
        .unwrap();
    let err = clusters
        .upgrade_cluster(upgrade("1.34.1"))
        .await
        .unwrap_err();
    assert_refused(&err, "request_id", &[&up.id]);
    let same = clusters
        .upgrade_cluster(upgrade("1.32.2"))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(same.id, up.id);
    let done = wait_operation(server.channel().await, &up.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    assert_eq!(sim.control.count("UpdateClusterVersion"), 1);

    let mut nodes = NodeServiceClient::new(server.channel().await);
    let pool = |name: &str| pb::CreateNodePoolRequest {
        cluster_id: "rid-a".into(),
        node_pool: Some(pb::NodePoolSpec {
            name: name.into(),
            instance_types: vec!["small".into()],
            desired_size: 1,
            max_size: 2,
            ..Default::default()
        }),
        request_id: "pool-1".into(),
        validate_only: false,
    };
    let made = nodes
        .create_node_pool(pool("extra"))
        .await
        .expect("create pool")
        .into_inner()
        .operation
        .unwrap();
    let err = nodes.create_node_pool(pool("another")).await.unwrap_err();
    assert_refused(&err, "request_id", &[&made.id]);
    let done = wait_operation(server.channel().await, &made.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    settle().await;
    let vendor_id = get_cluster(server.channel().await, "rid-a")
        .await
        .unwrap()
        .vendor_cluster_id;
    // The spec's "default" pool and "extra"; never "another".
    assert_eq!(sim.node_pool_ids(&vendor_id).len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn tke_opens_a_public_endpoint_only_when_asked() {
    let (sim, server, credential) = tke().await;

    // Not asked for: the create finishes through the intranet kubeconfig and opens nothing.
    let private = create_cluster(
        server.channel().await,
        "tke-private",
        cluster_spec("tke", &credential, "1.30.0"),
        "",
    )
    .await
    .expect("create")
    .operation
    .unwrap();
    let done = wait_operation(server.channel().await, &private.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    let cluster = get_cluster(server.channel().await, "tke-private")
        .await
        .unwrap();
    assert_eq!(cluster.state, pb::ClusterState::Running as i32);
    assert_eq!(
        sim.extranet_endpoint(&cluster.vendor_cluster_id),
        Some("closed")
    );
    assert_eq!(sim.control.count("CreateClusterEndpoint"), 0);
    assert_eq!(sim.control.count("ModifyClusterEndpointSP"), 0);
    let warnings = cluster.status.unwrap_or_default().warnings;
    assert!(
        warnings.iter().all(|w| w.code != "PUBLIC_ENDPOINT"),
        "{warnings:?}"
    );

    // A bad CIDR is refused before anything is recorded or sent.
    let with_cidrs = |cidrs: &[&str]| {
        let mut spec = cluster_spec("tke", &credential, "1.30.0");
        if let Some(pb::cluster_spec::ProviderConfig::Tke(tke)) = &mut spec.provider_config {
            tke.public_endpoint = true;
            tke.public_endpoint_cidrs = cidrs.iter().map(|c| c.to_string()).collect();
        }
        spec
    };
    let creates = sim.control.count("CreateCluster");
    let err = create_cluster(
        server.channel().await,
        "tke-bad",
        with_cidrs(&["203.0.113.0/24", "203.0.113.9/16"]),
        "",
    )
    .await
    .unwrap_err();
    assert_refused(&err, "spec.tke.public_endpoint_cidrs[1]", &[]);
    assert_eq!(
        get_cluster(server.channel().await, "tke-bad")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Asked for: opened, restricted to the CIDRs, and the cluster says so.
    let public = create_cluster(
        server.channel().await,
        "tke-public",
        with_cidrs(&["203.0.113.0/24", "198.51.100.7/32"]),
        "",
    )
    .await
    .expect("create")
    .operation
    .unwrap();
    let done = wait_operation(server.channel().await, &public.id, LIMIT).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    assert_eq!(sim.control.count("CreateCluster"), creates + 1);
    let cluster = get_cluster(server.channel().await, "tke-public")
        .await
        .unwrap();
    assert_eq!(
        sim.extranet_endpoint(&cluster.vendor_cluster_id),
        Some("open")
    );
    assert_eq!(
        sim.extranet_policies(&cluster.vendor_cluster_id),
        vec!["203.0.113.0/24".to_string(), "198.51.100.7/32".to_string()]
    );
    assert_eq!(sim.control.count("CreateClusterEndpoint"), 1);
    let warnings = cluster.status.unwrap_or_default().warnings;
    let warning = warnings
        .iter()
        .find(|w| w.code == "PUBLIC_ENDPOINT")
        .unwrap_or_else(|| panic!("no PUBLIC_ENDPOINT warning in {warnings:?}"));
    assert!(warning.message.contains("203.0.113.0/24"), "{warning:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn register_cluster_needs_a_global_admin() {
    let sim = RancherSim::start(admin_kubeconfig()).await;
    let vendor = Vendor {
        provider: "rancher",
        endpoint: sim.endpoint(),
        key: sim.credentials(),
        control: sim.control.clone(),
    };
    let server = server_for(&vendor).await;
    let credential = create_credential(
        server.channel().await,
        "rancher-key",
        "rancher",
        (&vendor.key.0, &vendor.key.1),
    )
    .await;
    let imported = ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "reg-target".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: admin_kubeconfig_at(&second_server()).into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import")
        .into_inner()
        .cluster
        .unwrap();
    let register = || pb::RegisterClusterRequest {
        cluster_id: imported.id.clone(),
        provider: "rancher".into(),
        credential_id: credential.clone(),
        name: String::new(),
    };
    let before = sim.control.seen().len();

    // An admin limited to this very cluster: refused, nothing sent to Rancher.
    let scoped = create_token(&server, "scoped-admin", pb::Role::Admin, &["reg-target"]).await;
    let err = ClusterServiceClient::new(server.channel_as(Some(&scoped)).await)
        .register_cluster(register())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("no cluster restriction"), "{err:?}");
    assert_eq!(sim.control.seen().len(), before, "no call to Rancher");
    assert!(!sim.cluster_names().contains(&"reg-target".to_string()));

    // A global admin may.
    let global = create_token(&server, "global-admin", pb::Role::Admin, &[]).await;
    let registration = ClusterServiceClient::new(server.channel_as(Some(&global)).await)
        .register_cluster(register())
        .await
        .expect("RegisterCluster")
        .into_inner();
    assert!(registration.vendor_cluster_id.starts_with("c-"));
    assert!(sim.cluster_names().contains(&"reg-target".to_string()));
    server.shutdown().await;
}
