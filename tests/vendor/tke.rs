//! The TKE adapter against the TKE simulator, directly (no gRPC server, no Kubernetes).

use flotilla_test_support as support;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use flotilla::adapters::{
    CallContext, Credentials, ErrorClass, TransportSettings, VendorError, VendorHttp,
    cluster::{
        ClusterProvider, ClusterSpec, NodePoolResize, NodePoolSpec, VendorClusterState,
        VendorNodePoolState,
        tke::{TkeProvider, client, parse_error},
    },
    transport::RawResponse,
};
use flotilla::proto as pb;
use support::sim::{Faults, tke::TkeSim};
use zeroize::Zeroizing;

const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters: []\n# tke simulator\n";

fn http() -> VendorHttp {
    VendorHttp::new(
        TransportSettings {
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(200),
            ..Default::default()
        },
        None,
    )
    .expect("transport")
}

async fn start() -> (TkeSim, TkeProvider) {
    let sim = TkeSim::start(KUBECONFIG.to_string()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(150));
    let provider = fresh(&sim);
    (sim, provider)
}

/// A provider with its own, empty rate limiter. Polling fills a provider's one-second window,
/// so checks of a short-lived intermediate state use a fresh one that sends at once.
fn fresh(sim: &TkeSim) -> TkeProvider {
    TkeProvider::new(http(), Some(sim.endpoint()))
}

fn ctx_with(id: &str, secret: &str) -> CallContext {
    CallContext {
        credentials: Credentials::AccessKey {
            id: id.to_string(),
            secret: Zeroizing::new(secret.to_string()),
        },
        region: "ap-guangzhou".into(),
    }
}

fn ctx(sim: &TkeSim) -> CallContext {
    let (id, secret) = sim.credentials();
    ctx_with(&id, &secret)
}

fn spec() -> ClusterSpec {
    ClusterSpec {
        display_name: "Lifecycle".into(),
        kubernetes_version: "1.32.2".into(),
        network: Some(pb::ClusterNetwork {
            vpc_id: "vpc-sim1".into(),
            pod_cidr: "172.20.0.0/16".into(),
            ..Default::default()
        }),
        provider_config: Some(pb::cluster_spec::ProviderConfig::Tke(
            pb::TkeClusterConfig {
                network_type: "GR".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn pool_spec() -> NodePoolSpec {
    NodePoolSpec {
        name: "workers".into(),
        instance_types: vec!["S5.MEDIUM4".into()],
        min_size: 1,
        max_size: 4,
        desired_size: 2,
        subnet_ids: vec!["subnet-sim1".into()],
        ..Default::default()
    }
}

/// Polls `check` until it gives `Some`, for at most 10 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn full_lifecycle() {
    let (sim, tke) = start().await;
    let ctx = ctx(&sim);
    assert_eq!(tke.find_cluster_by_name(&ctx, "flo-1").await.unwrap(), None);

    // A cluster whose name merely contains ours must not be taken for it.
    tke.create_cluster(&ctx, "flo-1-other", &spec())
        .await
        .unwrap();
    let now = fresh(&sim);
    let submitted = now.create_cluster(&ctx, "flo-1", &spec()).await.unwrap();
    let id = submitted.object_id.clone();
    assert!(id.starts_with("cls-"), "{id}");
    assert!(submitted.task_id.is_empty(), "TKE has no task ids");
    assert!(!submitted.request_id.is_empty());
    let sent = sim.create_request(&id).unwrap();
    assert_eq!(sent["ClusterBasicSettings"]["ClusterName"], "flo-1");
    assert_eq!(sent["ClusterBasicSettings"]["VpcId"], "vpc-sim1");
    assert_eq!(sent["ClusterCIDRSettings"]["ClusterCIDR"], "172.20.0.0/16");
    let cluster = now.get_cluster(&ctx, &id).await.unwrap();
    assert_eq!(cluster.state, VendorClusterState::Creating);
    assert_eq!(cluster.raw_state, "Creating");
    assert_eq!(cluster.region, "ap-guangzhou");
    // Not running yet: the kubeconfig is not there either, and that is worth waiting for.
    let early = now.fetch_kubeconfig(&ctx, &id).await.unwrap_err();
    assert!(early.class.retryable(), "{early:?}");
    let found = tke
        .find_cluster_by_name(&ctx, "flo-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.name, "flo-1");
    eventually("cluster running", || async {
        let c = tke.get_cluster(&ctx, &id).await.unwrap();
        (c.state == VendorClusterState::Running).then_some(())
    })
    .await;

    // No public endpoint asked for: the intranet kubeconfig, and nothing is opened.
    assert_eq!(
        tke.fetch_kubeconfig(&ctx, &id).await.unwrap().as_str(),
        KUBECONFIG
    );
    let intranet = tke.fetch_kubeconfig_for(&ctx, &id, &spec()).await.unwrap();
    assert_eq!(intranet.as_str(), KUBECONFIG);
    assert_eq!(sim.control.count("CreateClusterEndpoint"), 0);
    assert_eq!(sim.extranet_endpoint(&id), Some("closed"));

    // Asked for: the adapter opens one, once, says "not yet", then allows only the CIDRs.
    let mut public = spec();
    if let Some(pb::cluster_spec::ProviderConfig::Tke(tke)) = &mut public.provider_config {
        tke.public_endpoint = true;
        tke.public_endpoint_cidrs = vec!["203.0.113.0/24".into(), "198.51.100.7/32".into()];
    }
    let pending = tke
        .fetch_kubeconfig_for(&ctx, &id, &public)
        .await
        .unwrap_err();
    assert_eq!(pending.class, ErrorClass::DependencyPending, "{pending:?}");
    assert_eq!(sim.control.count("CreateClusterEndpoint"), 1);
    let kubeconfig = eventually("kubeconfig", || async {
        tke.fetch_kubeconfig_for(&ctx, &id, &public).await.ok()
    })
    .await;
    assert_eq!(kubeconfig.as_str(), KUBECONFIG);
    assert_eq!(
        sim.control.count("CreateClusterEndpoint"),
        1,
        "polls while the endpoint opens must not open it again"
    );
    assert_eq!(sim.extranet_endpoint(&id), Some("open"));
    assert_eq!(
        sim.extranet_policies(&id),
        vec!["203.0.113.0/24".to_string(), "198.51.100.7/32".to_string()]
    );

    // Node pools.
    let now = fresh(&sim);
    let pool = now
        .create_node_pool(&ctx, &id, &pool_spec())
        .await
        .unwrap()
        .object_id;
    assert!(pool.starts_with("np-"), "{pool}");
    assert_eq!(sim.node_pool_ids(&id), vec![pool.clone()]);
    let listed = now.list_node_pools(&ctx, &id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, VendorNodePoolState::Creating);
    assert_eq!(listed[0].name, "workers");
    let ready = eventually("pool normal", || async {
        let pools = tke.list_node_pools(&ctx, &id).await.unwrap();
        pools
            .into_iter()
            .find(|p| p.id == pool && p.state == VendorNodePoolState::Running)
    })
    .await;
    assert_eq!((ready.desired_size, ready.current_size), (2, 2));
    assert_eq!((ready.min_size, ready.max_size), (1, 4));
    assert!(!ready.autoscaling);

    let grow = NodePoolResize {
        desired_size: Some(3),
        ..Default::default()
    };
    let now = fresh(&sim);
    now.resize_node_pool(&ctx, &id, &pool, &grow).await.unwrap();
    assert_eq!(sim.node_pool_size(&id, &pool), Some(3));
    let pools = now.list_node_pools(&ctx, &id).await.unwrap();
    assert_eq!(pools[0].state, VendorNodePoolState::Updating);
    eventually("pool grown", || async {
        let p = tke.list_node_pools(&ctx, &id).await.unwrap().remove(0);
        (p.state == VendorNodePoolState::Running && p.current_size == 3).then_some(())
    })
    .await;

    // Bounds and autoscaling, then a size outside the old bounds in the same change.
    let bounds = NodePoolResize {
        desired_size: Some(5),
        min_size: Some(0),
        max_size: Some(6),
        autoscaling: Some(true),
    };
    tke.resize_node_pool(&ctx, &id, &pool, &bounds)
        .await
        .unwrap();
    let p = eventually("pool resized", || async {
        let p = tke.list_node_pools(&ctx, &id).await.unwrap().remove(0);
        (p.state == VendorNodePoolState::Running && p.current_size == 5).then_some(p)
    })
    .await;
    assert_eq!((p.min_size, p.max_size, p.desired_size), (0, 6, 5));
    assert!(p.autoscaling);
    let nothing = tke
        .resize_node_pool(&ctx, &id, &pool, &NodePoolResize::default())
        .await
        .unwrap_err();
    assert_eq!(nothing.class, ErrorClass::InvalidConfiguration);

    // Existing instances: partial success is an error naming what failed and what was added.
    let err = tke
        .add_instances(
            &ctx,
            &id,
            &pool,
            &["ins-extra001".to_string(), "bogus-1".to_string()],
        )
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{err:?}");
    assert!(err.message.contains("bogus-1"), "{}", err.message);
    assert!(
        err.message.contains("added: ins-extra001"),
        "{}",
        err.message
    );
    let err = tke
        .add_instances(&ctx, &id, &pool, &["ins-slow0001".to_string()])
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Timeout, "{err:?}");
    tke.add_instances(&ctx, &id, &pool, &["ins-extra002".to_string()])
        .await
        .unwrap();
    let p = tke.list_node_pools(&ctx, &id).await.unwrap().remove(0);
    assert_eq!((p.current_size, p.desired_size), (7, 5));

    // Remove nodes by Kubernetes node name (the LAN IP) and by instance id.
    let instances = sim.instances(&id, &pool);
    let (scaled_id, scaled_ip) = instances
        .iter()
        .find(|(i, _)| !i.starts_with("ins-extra"))
        .cloned()
        .unwrap();
    tke.remove_nodes(
        &ctx,
        &id,
        &pool,
        &[scaled_ip, "ins-extra001".to_string()],
        true,
    )
    .await
    .unwrap();
    let left: Vec<String> = sim
        .instances(&id, &pool)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert!(!left.contains(&scaled_id) && !left.contains(&"ins-extra001".to_string()));
    assert_eq!(left.len(), 5);
    assert_eq!(sim.node_pool_size(&id, &pool), Some(4));
    let unknown = tke
        .remove_nodes(&ctx, &id, &pool, &["10.99.99.99".to_string()], false)
        .await
        .unwrap_err();
    assert_eq!(unknown.class, ErrorClass::InvalidConfiguration);
    assert!(unknown.message.contains("10.99.99.99"));

    // Upgrade.
    let now = fresh(&sim);
    now.upgrade_cluster(&ctx, &id, "1.33.0").await.unwrap();
    let c = now.get_cluster(&ctx, &id).await.unwrap();
    assert_eq!(c.state, VendorClusterState::Updating);
    assert_eq!(c.raw_state, "Upgrading");
    eventually("upgraded", || async {
        let c = tke.get_cluster(&ctx, &id).await.unwrap();
        (c.state == VendorClusterState::Running).then_some(())
    })
    .await;
    assert_eq!(sim.cluster_version(&id).as_deref(), Some("1.33.0"));
    assert_eq!(
        tke.get_cluster(&ctx, &id).await.unwrap().kubernetes_version,
        "1.33.0"
    );

    // Pool delete.
    let now = fresh(&sim);
    now.delete_node_pool(&ctx, &id, &pool).await.unwrap();
    assert_eq!(
        now.list_node_pools(&ctx, &id).await.unwrap()[0].state,
        VendorNodePoolState::Deleting
    );
    eventually("pool gone", || async {
        tke.list_node_pools(&ctx, &id)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    let gone = tke.delete_node_pool(&ctx, &id, &pool).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone:?}");

    // Cluster delete, then not found everywhere.
    let now = fresh(&sim);
    now.delete_cluster(&ctx, &id).await.unwrap();
    assert_eq!(sim.cluster_state(&id).as_deref(), Some("Deleting"));
    assert_eq!(
        now.get_cluster(&ctx, &id).await.unwrap().state,
        VendorClusterState::Deleting
    );
    let err = eventually("cluster gone", || async {
        tke.get_cluster(&ctx, &id).await.err()
    })
    .await;
    assert_eq!(err.class, ErrorClass::VendorNotFound);
    let err = tke.fetch_kubeconfig(&ctx, &id).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.code, "ResourceNotFound.ClusterNotFound");
    let err = tke.delete_cluster(&ctx, &id).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.code, "InternalError.ClusterNotFound");
    assert_eq!(tke.find_cluster_by_name(&ctx, "flo-1").await.unwrap(), None);
    assert_eq!(sim.clusters_created(), 2);
    assert_eq!(sim.cluster_ids().len(), 1);
    assert!(
        sim.control
            .seen()
            .iter()
            .all(|s| s.outcome == "ok" || s.outcome == "error"),
        "no signature failures, throttling or outages were injected"
    );
}

#[tokio::test]
async fn wrong_secret_is_rejected_without_retry() {
    let (sim, tke) = start().await;
    let (id, _) = sim.credentials();
    let err = tke
        .get_cluster(&ctx_with(&id, "not-the-secret"), "cls-any")
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err:?}");
    assert_eq!(err.code, "AuthFailure.SignatureFailure");
    assert_eq!(err.http_status, 200);
    assert!(!err.request_id.is_empty());
    assert!(!format!("{err:?}").contains("not-the-secret"));
    assert_eq!(sim.control.count("DescribeClusters"), 1, "not retried");
    assert_eq!(sim.control.seen()[0].outcome, "signature");

    let err = tke
        .create_cluster(&ctx_with("AKIDunknown", "x"), "c", &spec())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    assert_eq!(err.code, "AuthFailure.SecretIdNotFound");
    assert_eq!(sim.clusters_created(), 0);

    let api_key = CallContext {
        credentials: Credentials::ApiKey {
            key_id: "token-1".into(),
            token: Zeroizing::new("secret".into()),
        },
        region: "ap-guangzhou".into(),
    };
    let err = tke.get_cluster(&api_key, "cls-any").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    let no_region = CallContext {
        region: String::new(),
        ..ctx(&sim)
    };
    let err = tke.get_cluster(&no_region, "cls-any").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidConfiguration);
    assert_eq!(sim.control.count("DescribeClusters"), 1, "nothing sent");
}

/// Sends a request built by hand, to check the simulator's own signature checks.
async fn send_raw(request: http::Request<Vec<u8>>, operation: &'static str) -> Option<VendorError> {
    let request = reqwest::Request::try_from(request).unwrap();
    let response = reqwest::Client::new().execute(request).await.unwrap();
    let raw = RawResponse {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap(),
    };
    parse_error(&raw, operation)
}

#[tokio::test]
async fn simulator_checks_timestamps_and_body_integrity() {
    let (sim, _) = start().await;
    let (id, secret) = sim.credentials();
    let endpoint = sim.endpoint();
    let target = client::Target {
        endpoint: &endpoint,
        region: "ap-guangzhou",
        secret_id: &id,
        secret_key: &secret,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        send_raw(
            client::describe_cluster_request(&target, now, "cls-1").unwrap(),
            "DescribeClusters"
        )
        .await
        .is_none(),
        "a good request passes"
    );
    let stale = client::describe_cluster_request(&target, now - 301, "cls-1").unwrap();
    let err = send_raw(stale, "DescribeClusters").await.unwrap();
    assert_eq!(err.code, "AuthFailure.SignatureExpire");
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    // Within the five minutes is fine (the scope date follows the timestamp).
    let skewed = client::describe_cluster_request(&target, now - 240, "cls-1").unwrap();
    assert!(send_raw(skewed, "DescribeClusters").await.is_none());

    let mut tampered = client::describe_cluster_request(&target, now, "cls-1").unwrap();
    *tampered.body_mut() = br#"{"ClusterIds":["cls-2"],"Offset":0,"Limit":1}"#.to_vec();
    let err = send_raw(tampered, "DescribeClusters").await.unwrap();
    assert_eq!(err.code, "AuthFailure.SignatureFailure");

    let mut wrong_host = client::describe_cluster_request(&target, now, "cls-1").unwrap();
    wrong_host
        .headers_mut()
        .insert("host", "tke.tencentcloudapi.com".parse().unwrap());
    let err = send_raw(wrong_host, "DescribeClusters").await.unwrap();
    assert_eq!(err.code, "AuthFailure.SignatureFailure");
}

#[tokio::test]
async fn throttling_with_a_retry_hint_is_retried_and_succeeds() {
    let (sim, tke) = start().await;
    let ctx = ctx(&sim);
    sim.control.set_faults(Faults {
        throttle_ratio: 1.0,
        throttle_retry_after: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let call = {
        let ctx = ctx.clone();
        let tke = TkeProvider::new(http(), Some(sim.endpoint()));
        tokio::spawn(async move { tke.create_cluster(&ctx, "throttled", &spec()).await })
    };
    eventually("two throttled attempts", || async {
        (sim.control.count("CreateCluster") >= 2).then_some(())
    })
    .await;
    sim.control.set_faults(Faults::default());
    let submitted = call.await.unwrap().expect("succeeds once throttling stops");
    assert_eq!(sim.clusters_created(), 1, "throttled attempts did nothing");
    let seen = sim.control.seen();
    assert!(seen.len() >= 3);
    assert!(
        seen[..seen.len() - 1]
            .iter()
            .all(|s| s.outcome == "throttled")
    );
    assert_eq!(seen.last().unwrap().outcome, "ok");
    // The hint (1 s, capped by the transport at 200 ms) spaced the attempts out; full jitter on
    // a 10 ms base alone would not have.
    for pair in seen.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(190), "gap {gap:?}");
    }
    assert_eq!(
        tke.get_cluster(&ctx, &submitted.object_id)
            .await
            .unwrap()
            .name,
        "throttled"
    );
}

#[tokio::test]
async fn outages_are_retried_for_reads_but_not_for_creates() {
    let (sim, tke) = start().await;
    let ctx = ctx(&sim);
    sim.control.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Default::default()
    });
    let err = tke.get_cluster(&ctx, "cls-any").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable, "{err:?}");
    assert_eq!(sim.control.count("DescribeClusters"), 6, "max_attempts");
    let err = tke.create_cluster(&ctx, "c", &spec()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable);
    assert_eq!(
        sim.control.count("CreateCluster"),
        1,
        "a create is not repeated"
    );
    assert_eq!(sim.clusters_created(), 0);
}

#[tokio::test]
async fn failed_task_leaves_the_cluster_abnormal() {
    let (sim, tke) = start().await;
    let ctx = ctx(&sim);
    sim.control.set_faults(Faults {
        fail_next_task: Some("InternalError.CreateMasterFailed".into()),
        ..Default::default()
    });
    let id = tke
        .create_cluster(&ctx, "doomed", &spec())
        .await
        .unwrap()
        .object_id;
    let cluster = eventually("cluster settled", || async {
        let c = tke.get_cluster(&ctx, &id).await.unwrap();
        (c.state != VendorClusterState::Creating).then_some(c)
    })
    .await;
    assert_eq!(cluster.state, VendorClusterState::Failed);
    assert_eq!(cluster.raw_state, "Abnormal");
}

#[tokio::test]
async fn vendor_errors_are_classified() {
    let (sim, tke) = start().await;
    let ctx = ctx(&sim);
    let id = tke
        .create_cluster(&ctx, "busy", &spec())
        .await
        .unwrap()
        .object_id;
    // Still creating: node pools must wait.
    let err = tke
        .create_node_pool(&ctx, &id, &pool_spec())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::DependencyPending, "{err:?}");
    assert_eq!(err.code, "ResourceUnavailable.ClusterState");
    let err = tke.list_node_pools(&ctx, "cls-missing").await.unwrap_err();
    assert!(err.is_not_found());
    // A spec for another vendor never leaves the adapter.
    let mut ack = spec();
    ack.provider_config = Some(pb::cluster_spec::ProviderConfig::Ack(Default::default()));
    let err = tke.create_cluster(&ctx, "x", &ack).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidConfiguration);
    // Unknown top-level fields from vendor_extra reach the vendor, which refuses them.
    let mut extra = spec();
    let mut fields = prost_types::Struct::default();
    fields.fields.insert(
        "NoSuchField".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::BoolValue(true)),
        },
    );
    extra.vendor_extra = Some(fields);
    let err = tke.create_cluster(&ctx, "x", &extra).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidConfiguration);
    assert_eq!(err.code, "UnknownParameter");
    assert_eq!(sim.clusters_created(), 1);
}

#[tokio::test]
async fn unsupported_operations_say_so() {
    let (sim, tke) = start().await;
    let ctx = ctx(&sim);
    let capability = tke.capability();
    assert!(capability.create_cluster && capability.upgrade_cluster && capability.remove_nodes);
    assert!(!capability.list_vendor_clusters && !capability.register_cluster);
    for err in [
        tke.list_clusters(&ctx).await.unwrap_err(),
        tke.get_task(&ctx, "task-1").await.unwrap_err(),
        tke.register_cluster(&ctx, "c").await.unwrap_err(),
    ] {
        assert_eq!(err.class, ErrorClass::Unsupported, "{err:?}");
    }
    assert!(sim.control.seen().is_empty(), "nothing was sent");
}
