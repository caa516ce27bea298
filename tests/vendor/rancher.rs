//! The Rancher adapter against the Rancher simulator: no gRPC server, no Kubernetes.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::{
    adapters::{
        CallContext, Credentials, ErrorClass, TransportSettings, VendorHttp,
        cluster::{ClusterProvider, NodePoolResize, VendorClusterState, rancher::RancherProvider},
    },
    proto::{ClusterSpec, NodePoolSpec, RancherClusterConfig, cluster_spec::ProviderConfig},
};
use prost_types::{Struct, Value, value::Kind};
use support::sim::{Faults, rancher::RancherSim};
use zeroize::Zeroizing;

const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters: []\n";

fn transport() -> VendorHttp {
    VendorHttp::new(
        TransportSettings {
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(200),
            ..Default::default()
        },
        None,
    )
    .unwrap()
}

async fn setup() -> (RancherSim, RancherProvider, CallContext) {
    let sim = RancherSim::start(KUBECONFIG.into()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(300));
    let provider = RancherProvider::new(transport(), Some(sim.endpoint()));
    let (key_id, secret) = sim.credentials();
    let ctx = CallContext {
        credentials: Credentials::ApiKey {
            key_id,
            token: Zeroizing::new(secret),
        },
        region: String::new(),
    };
    (sim, provider, ctx)
}

fn rke2_spec(version: &str) -> ClusterSpec {
    let config = Struct {
        fields: [(
            "upgradeStrategy".to_string(),
            Value {
                kind: Some(Kind::StructValue(Struct::default())),
            },
        )]
        .into(),
    };
    let driver_config = Struct {
        fields: [(
            "rke2Config".to_string(),
            Value {
                kind: Some(Kind::StructValue(config)),
            },
        )]
        .into(),
    };
    ClusterSpec {
        display_name: "Production".into(),
        kubernetes_version: version.into(),
        provider_config: Some(ProviderConfig::Rancher(RancherClusterConfig {
            rancher_cluster_id: String::new(),
            driver_config: Some(driver_config),
        })),
        ..ClusterSpec::default()
    }
}

/// Polls `get_cluster` until `want` (or panics after 10 s).
async fn wait_for(
    provider: &RancherProvider,
    ctx: &CallContext,
    id: &str,
    want: VendorClusterState,
) -> flotilla::adapters::cluster::VendorCluster {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cluster = provider.get_cluster(ctx, id).await.unwrap();
        if cluster.state == want {
            return cluster;
        }
        assert!(
            Instant::now() < deadline,
            "cluster {id} still {:?} ({})",
            cluster.state,
            cluster.raw_state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn full_lifecycle() {
    let (sim, provider, ctx) = setup().await;
    let created = provider
        .create_cluster(&ctx, "fl-prod", &rke2_spec("v1.33.1+rke2r1"))
        .await
        .unwrap();
    let id = created.object_id.clone();
    assert!(id.starts_with("c-") && id.len() == 7, "{id}");
    assert_eq!(sim.clusters_created(), 1);
    assert_eq!(sim.cluster_state(&id).as_deref(), Some("provisioning"));

    let found = provider
        .find_cluster_by_name(&ctx, "fl-prod")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.state, VendorClusterState::Creating);
    assert!(
        provider
            .find_cluster_by_name(&ctx, "fl-other")
            .await
            .unwrap()
            .is_none()
    );

    // No kubeconfig before the cluster is active: Rancher does not offer the action yet.
    let err = provider.fetch_kubeconfig(&ctx, &id).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::DependencyPending, "{err}");
    assert_eq!(err.code, "ActionNotAvailable");

    let running = wait_for(&provider, &ctx, &id, VendorClusterState::Running).await;
    assert_eq!(running.name, "fl-prod");
    assert_eq!(running.raw_state, "active");
    assert_eq!(running.kubernetes_version, "v1.33.1+rke2r1");
    assert_eq!(running.region, "");
    let kubeconfig = provider.fetch_kubeconfig(&ctx, &id).await.unwrap();
    assert_eq!(kubeconfig.as_str(), KUBECONFIG);

    // Node pools: Rancher v2.15 has no v3 NodePool type, so every pool operation is Unsupported.
    let capability = provider.capability();
    assert!(!capability.list_node_pools && !capability.create_node_pool);
    let unsupported = [
        provider.list_node_pools(&ctx, &id).await.map(|_| ()),
        provider
            .create_node_pool(&ctx, &id, &NodePoolSpec::default())
            .await
            .map(|_| ()),
        provider
            .resize_node_pool(&ctx, &id, "np-1", &NodePoolResize::default())
            .await
            .map(|_| ()),
        provider
            .delete_node_pool(&ctx, &id, "np-1")
            .await
            .map(|_| ()),
        provider
            .add_instances(&ctx, &id, "np-1", &["i-1".into()])
            .await
            .map(|_| ()),
        provider
            .remove_nodes(&ctx, &id, "np-1", &["node-1".into()], true)
            .await
            .map(|_| ()),
        provider.get_task(&ctx, "t-1").await.map(|_| ()),
    ];
    for result in unsupported {
        assert_eq!(result.unwrap_err().class, ErrorClass::Unsupported);
    }
    assert!(sim.node_pool_ids(&id).is_empty());

    // Upgrade: the driver config's version changes; the cluster runs the old one until done.
    let upgraded = provider
        .upgrade_cluster(&ctx, &id, "v1.34.0+rke2r1")
        .await
        .unwrap();
    assert_eq!(upgraded.object_id, id);
    assert_eq!(sim.control.count("PUT /v3/clusters/{id}"), 1);
    let updating = provider.get_cluster(&ctx, &id).await.unwrap();
    assert_eq!(updating.state, VendorClusterState::Updating);
    assert_eq!(updating.raw_state, "upgrading");
    assert_eq!(updating.kubernetes_version, "v1.33.1+rke2r1");
    let done = wait_for(&provider, &ctx, &id, VendorClusterState::Running).await;
    assert_eq!(done.kubernetes_version, "v1.34.0+rke2r1");
    assert_eq!(sim.cluster_version(&id).as_deref(), Some("v1.34.0+rke2r1"));

    // Delete: removing, then gone.
    let deleted = provider.delete_cluster(&ctx, &id).await.unwrap();
    assert_eq!(deleted.object_id, id);
    let deleting = provider.get_cluster(&ctx, &id).await.unwrap();
    assert_eq!(deleting.state, VendorClusterState::Deleting);
    // A cluster on its way out is not adopted by a create retried by name.
    let found = provider
        .find_cluster_by_name(&ctx, "fl-prod")
        .await
        .unwrap();
    assert!(found.is_none(), "{found:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match provider.get_cluster(&ctx, &id).await {
            Err(err) => break err,
            Ok(_) => assert!(Instant::now() < deadline, "never deleted"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.code, "NotFound");
    assert!(sim.cluster_ids().is_empty());
    assert_eq!(sim.clusters_created(), 1);
    let again = provider.delete_cluster(&ctx, &id).await.unwrap_err();
    assert!(again.is_not_found());
}

#[tokio::test]
async fn lists_follow_pagination_and_names_may_repeat() {
    let (sim, provider, ctx) = setup().await;
    let provider = provider.with_page_size(2);
    for name in ["a", "b", "c", "d", "e"] {
        provider
            .create_cluster(&ctx, name, &ClusterSpec::default())
            .await
            .unwrap();
    }
    // Rancher does not make names unique, and neither does the simulator.
    let twin = provider
        .create_cluster(&ctx, "c", &ClusterSpec::default())
        .await
        .unwrap();
    assert_eq!(sim.clusters_created(), 6);
    let mut names: Vec<String> = provider
        .list_clusters(&ctx)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c", "c", "d", "e"]);
    assert_eq!(
        sim.control.count("GET /v3/clusters"),
        3,
        "6 clusters in pages of 2"
    );
    let found = provider
        .find_cluster_by_name(&ctx, "c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name, "c");
    assert!(sim.cluster_ids().contains(&twin.object_id));
}

#[tokio::test]
async fn a_wrong_secret_is_credentials_invalid_and_not_retried() {
    let (sim, provider, ctx) = setup().await;
    let (key_id, secret) = sim.credentials();
    let wrong_secret = "x".repeat(54);
    let wrong = CallContext {
        credentials: Credentials::ApiKey {
            key_id,
            token: Zeroizing::new(wrong_secret.clone()),
        },
        region: String::new(),
    };
    let err = provider.get_cluster(&wrong, "c-abcde").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
    assert_eq!(err.code, "Unauthorized");
    assert_eq!(err.http_status, 401);
    assert_eq!(sim.control.count("GET /v3/clusters/{id}"), 1, "not retried");
    assert_eq!(sim.control.seen()[0].outcome, "signature");
    for text in [format!("{err}"), format!("{err:?}"), format!("{wrong:?}")] {
        assert!(
            !text.contains(&wrong_secret) && !text.contains(&secret),
            "{text}"
        );
    }
    // The right key works on the same provider.
    assert!(
        provider
            .get_cluster(&ctx, "c-abcde")
            .await
            .unwrap_err()
            .is_not_found()
    );

    // The wrong kind of credential never reaches Rancher.
    let access_key = CallContext {
        credentials: Credentials::AccessKey {
            id: "LTAI".into(),
            secret: Zeroizing::new(secret.clone()),
        },
        region: String::new(),
    };
    let err = provider.list_clusters(&access_key).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    assert!(!format!("{err:?}").contains(&secret));
    assert_eq!(sim.control.count("GET /v3/clusters"), 0);
}

/// Turns faults off once the simulator has answered `n` requests with `outcome`.
fn clear_faults_after(sim: &RancherSim, outcome: &'static str, n: usize) {
    let control = sim.control.clone();
    tokio::spawn(async move {
        while control
            .seen()
            .iter()
            .filter(|s| s.outcome == outcome)
            .count()
            < n
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        control.set_faults(Faults::default());
    });
}

#[tokio::test]
async fn throttling_is_retried_after_the_hint_and_succeeds() {
    let (sim, provider, ctx) = setup().await;
    let hint = Duration::from_millis(80);
    sim.control.set_faults(Faults {
        throttle_ratio: 1.0,
        throttle_retry_after: Some(hint),
        ..Faults::default()
    });
    clear_faults_after(&sim, "throttled", 2);
    // A create is retried on throttling only (the vendor did nothing), and makes one cluster.
    let created = provider
        .create_cluster(&ctx, "fl-throttled", &ClusterSpec::default())
        .await
        .unwrap();
    let seen = sim.control.seen();
    let outcomes: Vec<&str> = seen.iter().map(|s| s.outcome).collect();
    assert!(
        outcomes.len() >= 3 && outcomes.ends_with(&["ok"]),
        "{outcomes:?}"
    );
    assert!(
        outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| *o == "throttled")
    );
    for pair in seen.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= hint - Duration::from_millis(5),
            "retried after {gap:?}"
        );
    }
    assert_eq!(sim.clusters_created(), 1);
    assert_eq!(sim.cluster_ids(), [created.object_id]);
}

#[tokio::test]
async fn server_errors_retry_reads_but_not_creates() {
    let (sim, provider, ctx) = setup().await;
    sim.control.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Faults::default()
    });
    let err = provider
        .create_cluster(&ctx, "fl-x", &ClusterSpec::default())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable, "{err}");
    assert!(err.code == "ServerError" || err.code == "ClusterUnavailable");
    assert_eq!(
        sim.control.count("POST /v3/clusters"),
        1,
        "a create is not repeated"
    );
    assert_eq!(sim.clusters_created(), 0);

    clear_faults_after(&sim, "server_error", 3);
    let clusters = provider.list_clusters(&ctx).await.unwrap();
    assert!(clusters.is_empty());
    assert!(sim.control.count("GET /v3/clusters") >= 3);
}

#[tokio::test]
async fn register_waits_for_the_command_and_is_repeatable() {
    let (sim, provider, ctx) = setup().await;
    let registration = provider.register_cluster(&ctx, "fl-edge").await.unwrap();
    let id = &registration.vendor_cluster_id;
    let prefix = format!("{}/v3/import/", sim.endpoint());
    assert!(
        registration.manifest_url.starts_with(&prefix)
            && registration.manifest_url.ends_with(&format!("_{id}.yaml")),
        "{}",
        registration.manifest_url
    );
    assert_eq!(
        registration.command,
        format!("kubectl apply -f {}", registration.manifest_url)
    );
    assert_eq!(
        registration.insecure_command,
        format!(
            "curl --insecure -sfL {} | kubectl apply -f -",
            registration.manifest_url
        )
    );
    assert!(
        sim.control.count("GET /v3/clusterregistrationtokens") >= 2,
        "the first answers have no command yet"
    );
    assert_eq!(sim.control.count("POST /v3/clusterregistrationtokens"), 1);
    // An imported cluster: "pending" until its agent connects (the simulator: the provision delay).
    let state = sim.cluster_state(id).unwrap();
    assert!(state == "pending" || state == "active", "{state}");

    // A second attempt (after a crash, say) adopts the cluster and its token.
    let again = provider.register_cluster(&ctx, "fl-edge").await.unwrap();
    assert_eq!(again, registration);
    assert_eq!(sim.clusters_created(), 1);
    assert_eq!(sim.control.count("POST /v3/clusterregistrationtokens"), 1);

    // An imported cluster cannot be upgraded through Rancher.
    wait_for(&provider, &ctx, id, VendorClusterState::Running).await;
    let err = provider
        .upgrade_cluster(&ctx, id, "v1.34.0+rke2r1")
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidConfiguration);
    assert!(err.message.contains("imported"), "{err}");
    assert_eq!(sim.control.count("PUT /v3/clusters/{id}"), 0);
}

#[tokio::test]
async fn register_gives_up_after_its_wait() {
    let (sim, provider, ctx) = setup().await;
    let provider = provider.with_registration_wait(Duration::from_millis(50));
    let err = provider
        .register_cluster(&ctx, "fl-slow")
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Timeout, "{err}");
    assert!(sim.control.count("GET /v3/clusterregistrationtokens") >= 1);
}

#[tokio::test]
async fn a_failed_create_reports_failed() {
    let (sim, provider, ctx) = setup().await;
    sim.control.set_faults(Faults {
        fail_next_task: Some("ProvisioningFailed".into()),
        ..Faults::default()
    });
    let created = provider
        .create_cluster(&ctx, "fl-doomed", &rke2_spec("v1.33.1+rke2r1"))
        .await
        .unwrap();
    let failed = wait_for(
        &provider,
        &ctx,
        &created.object_id,
        VendorClusterState::Failed,
    )
    .await;
    assert_eq!(failed.raw_state, "error");
}

#[tokio::test]
async fn specs_rancher_cannot_take_are_refused_before_any_request() {
    let (sim, provider, ctx) = setup().await;
    let no_driver = ClusterSpec {
        kubernetes_version: "1.33.1".into(),
        ..ClusterSpec::default()
    };
    let with_pools = ClusterSpec {
        node_pools: vec![NodePoolSpec::default()],
        ..ClusterSpec::default()
    };
    for spec in [no_driver, with_pools] {
        let err = provider
            .create_cluster(&ctx, "fl-bad", &spec)
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{err}");
    }
    assert!(sim.control.seen().is_empty());
}
