//! The ACK adapter against the ACK simulator (no gRPC server, no Kubernetes): lifecycle,
//! signatures, throttling, outages, failed tasks and unsupported operations.

use flotilla_test_support as support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flotilla::adapters::{
    CallContext, Credentials, ErrorClass, TransportSettings, VendorError, VendorHttp,
    cluster::{
        ClusterProvider, NodePoolResize, TaskStatus, VendorClusterState, VendorNodePoolState,
        ack::{
            AckProvider,
            client::{self, Stamp},
            error::parse_error,
        },
    },
    signing::alibaba as sign,
    transport::RawResponse,
};
use flotilla::proto::{ClusterSpec, NodePoolSpec};
use support::sim::{Faults, ack::AckSim};
use zeroize::Zeroizing;

const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters: []\n# ack simulator\n";

async fn setup() -> (AckSim, AckProvider, CallContext) {
    let sim = AckSim::start(KUBECONFIG.to_string()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(150));
    let http = VendorHttp::new(
        TransportSettings {
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(200),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let provider = AckProvider::new(http, Some(sim.endpoint()));
    let (id, secret) = sim.credentials();
    let ctx = context(&id, &secret);
    (sim, provider, ctx)
}

fn context(id: &str, secret: &str) -> CallContext {
    CallContext {
        credentials: Credentials::AccessKey {
            id: id.to_string(),
            secret: Zeroizing::new(secret.to_string()),
        },
        region: "cn-hangzhou".into(),
    }
}

fn cluster_spec() -> ClusterSpec {
    ClusterSpec {
        kubernetes_version: "1.32.1-aliyun.1".into(),
        region: "cn-hangzhou".into(),
        node_pools: vec![NodePoolSpec {
            name: "default".into(),
            instance_types: vec!["ecs.g7.large".into()],
            desired_size: 2,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn wait_task(provider: &AckProvider, ctx: &CallContext, task_id: &str) -> TaskStatus {
    assert!(!task_id.is_empty(), "no task to wait for");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match provider.get_task(ctx, task_id).await.unwrap() {
            TaskStatus::Running { .. } => {}
            done => return done,
        }
        assert!(Instant::now() < deadline, "task {task_id} still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn succeed(provider: &AckProvider, ctx: &CallContext, task_id: &str) {
    assert_eq!(
        wait_task(provider, ctx, task_id).await,
        TaskStatus::Succeeded
    );
}

fn resize(desired: Option<i32>) -> NodePoolResize {
    NodePoolResize {
        desired_size: desired,
        ..Default::default()
    }
}

#[tokio::test]
async fn full_lifecycle_against_the_simulator() {
    let (sim, ack, ctx) = setup().await;

    let created = ack
        .create_cluster(&ctx, "flo-life", &cluster_spec())
        .await
        .unwrap();
    let id = created.object_id.clone();
    assert!(id.starts_with('c'), "{created:?}");
    assert!(!created.request_id.is_empty());
    let creating = ack.get_cluster(&ctx, &id).await.unwrap();
    assert_eq!(creating.state, VendorClusterState::Creating);
    assert_eq!(creating.raw_state, "initial");
    // No kubeconfig before the cluster runs; that is worth waiting for, not a bad request.
    let early = ack.fetch_kubeconfig(&ctx, &id).await.unwrap_err();
    assert_eq!(early.class, ErrorClass::DependencyPending, "{early}");

    succeed(&ack, &ctx, &created.task_id).await;
    let running = ack.get_cluster(&ctx, &id).await.unwrap();
    assert_eq!(running.state, VendorClusterState::Running);
    assert_eq!(running.name, "flo-life");
    assert_eq!(running.kubernetes_version, "1.32.1-aliyun.1");
    assert_eq!(running.region, "cn-hangzhou");
    let found = ack.find_cluster_by_name(&ctx, "flo-life").await.unwrap();
    assert_eq!(found.map(|c| c.id), Some(id.clone()));
    assert_eq!(*ack.fetch_kubeconfig(&ctx, &id).await.unwrap(), KUBECONFIG);

    // The pool created with the cluster.
    let pools = ack.list_node_pools(&ctx, &id).await.unwrap();
    assert_eq!(pools.len(), 1);
    let pool = &pools[0];
    assert_eq!(
        (pool.name.as_str(), pool.desired_size, pool.current_size),
        ("default", 2, 2)
    );
    assert_eq!(pool.state, VendorNodePoolState::Running);
    assert_eq!(pool.instance_types, ["ecs.g7.large"]);

    // Growth: ScaleClusterNodePool with the difference; the same target again adds nothing.
    let grown = ack
        .resize_node_pool(&ctx, &id, &pool.id, &resize(Some(5)))
        .await
        .unwrap();
    assert_eq!(sim.node_pool_size(&id, &pool.id), Some(5));
    succeed(&ack, &ctx, &grown.task_id).await;
    assert_eq!(sim.node_pool_nodes(&id, &pool.id), Some(5));
    let again = ack
        .resize_node_pool(&ctx, &id, &pool.id, &resize(Some(5)))
        .await
        .unwrap();
    assert_eq!(again.task_id, "");
    assert_eq!(sim.node_pool_size(&id, &pool.id), Some(5));
    assert_eq!(sim.control.count("ScaleClusterNodePool"), 1);
    assert_eq!(sim.control.count("ModifyClusterNodePool"), 0);

    // Shrinking goes through ModifyClusterNodePool.
    let shrunk = ack
        .resize_node_pool(&ctx, &id, &pool.id, &resize(Some(3)))
        .await
        .unwrap();
    succeed(&ack, &ctx, &shrunk.task_id).await;
    assert_eq!(sim.node_pool_size(&id, &pool.id), Some(3));
    assert_eq!(sim.control.count("ModifyClusterNodePool"), 1);

    // Autoscaling bounds.
    let bounds = NodePoolResize {
        autoscaling: Some(true),
        min_size: Some(1),
        max_size: Some(6),
        desired_size: None,
    };
    let modified = ack
        .resize_node_pool(&ctx, &id, &pool.id, &bounds)
        .await
        .unwrap();
    succeed(&ack, &ctx, &modified.task_id).await;
    let pool_now = ack.list_node_pools(&ctx, &id).await.unwrap().remove(0);
    assert!(pool_now.autoscaling);
    assert_eq!((pool_now.min_size, pool_now.max_size), (1, 6));

    // A second pool: create, attach instances, remove nodes, delete.
    let extra_spec = NodePoolSpec {
        name: "extra".into(),
        desired_size: 1,
        ..Default::default()
    };
    let extra = ack.create_node_pool(&ctx, &id, &extra_spec).await.unwrap();
    assert!(extra.object_id.starts_with("np"), "{extra:?}");
    succeed(&ack, &ctx, &extra.task_id).await;
    assert_eq!(ack.list_node_pools(&ctx, &id).await.unwrap().len(), 2);
    let attached = ack
        .add_instances(&ctx, &id, &extra.object_id, &["i-1".into(), "i-2".into()])
        .await
        .unwrap();
    succeed(&ack, &ctx, &attached.task_id).await;
    assert_eq!(sim.node_pool_size(&id, &extra.object_id), Some(3));
    let removed = ack
        .remove_nodes(
            &ctx,
            &id,
            &extra.object_id,
            &["cn-hangzhou.10.0.0.7".into()],
            true,
        )
        .await
        .unwrap();
    succeed(&ack, &ctx, &removed.task_id).await;
    assert_eq!(sim.node_pool_size(&id, &extra.object_id), Some(2));
    let dropped = ack
        .delete_node_pool(&ctx, &id, &extra.object_id)
        .await
        .unwrap();
    succeed(&ack, &ctx, &dropped.task_id).await;
    assert_eq!(sim.node_pool_ids(&id), vec![pool.id.clone()]);

    // Upgrade.
    let upgrade = ack
        .upgrade_cluster(&ctx, &id, "1.33.1-aliyun.1")
        .await
        .unwrap();
    assert_eq!(
        ack.get_cluster(&ctx, &id).await.unwrap().state,
        VendorClusterState::Updating
    );
    succeed(&ack, &ctx, &upgrade.task_id).await;
    assert_eq!(
        ack.get_cluster(&ctx, &id).await.unwrap().kubernetes_version,
        "1.33.1-aliyun.1"
    );
    assert_eq!(sim.cluster_version(&id).as_deref(), Some("1.33.1-aliyun.1"));

    // Delete, then the cluster is gone everywhere.
    let deleting = ack.delete_cluster(&ctx, &id).await.unwrap();
    assert_eq!(deleting.object_id, id);
    assert_eq!(sim.cluster_state(&id).as_deref(), Some("deleting"));
    assert!(
        ack.find_cluster_by_name(&ctx, "flo-life")
            .await
            .unwrap()
            .is_none(),
        "a cluster being deleted is not adopted"
    );
    succeed(&ack, &ctx, &deleting.task_id).await;
    let gone = ack.get_cluster(&ctx, &id).await.unwrap_err();
    assert_eq!(gone.class, ErrorClass::VendorNotFound);
    assert_eq!(gone.code, "ErrorClusterNotFound");
    assert_eq!(gone.http_status, 404);
    assert_eq!(
        ack.delete_cluster(&ctx, &id).await.unwrap_err().class,
        ErrorClass::VendorNotFound
    );
    assert_eq!(
        ack.list_node_pools(&ctx, &id).await.unwrap_err().class,
        ErrorClass::VendorNotFound
    );
    assert!(sim.cluster_ids().is_empty());
    assert_eq!(sim.clusters_created(), 1);
}

#[tokio::test]
async fn find_by_name_is_exact_and_creates_are_not_deduplicated() {
    let (sim, ack, ctx) = setup().await;
    let spec = ClusterSpec::default();
    let longer = ack
        .create_cluster(&ctx, "alpha-2", &spec)
        .await
        .unwrap()
        .object_id;
    assert_eq!(ack.find_cluster_by_name(&ctx, "alpha").await.unwrap(), None);
    let first = ack
        .create_cluster(&ctx, "alpha", &spec)
        .await
        .unwrap()
        .object_id;
    let found = ack
        .find_cluster_by_name(&ctx, "alpha")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, first);
    assert_eq!(found.name, "alpha");
    assert_eq!(
        ack.find_cluster_by_name(&ctx, "alpha-2")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(longer)
    );
    // ACK has no idempotency token: a second create makes a second cluster. This is why the
    // engine looks the name up before every create.
    let second = ack
        .create_cluster(&ctx, "alpha", &spec)
        .await
        .unwrap()
        .object_id;
    assert_ne!(first, second);
    assert_eq!(sim.clusters_created(), 3);
    assert_eq!(sim.cluster_ids().len(), 3);
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_once_and_classified_as_invalid_credentials() {
    let (sim, ack, _) = setup().await;
    let (id, _) = sim.credentials();
    let wrong = context(&id, "not-the-secret");
    let err = ack.get_cluster(&wrong, "c-any").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
    assert_eq!(err.code, "SignatureDoesNotMatch");
    assert_eq!(err.http_status, 400);
    assert!(!err.to_string().contains("not-the-secret"));
    assert_eq!(sim.control.count("DescribeClusterDetail"), 1, "not retried");
    assert_eq!(sim.control.seen()[0].outcome, "signature");

    let err = ack
        .create_cluster(&wrong, "flo", &ClusterSpec::default())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    assert_eq!(sim.control.count("CreateCluster"), 1);
    assert_eq!(sim.clusters_created(), 0);

    let unknown = context("LTAI-unknown", "whatever");
    let err = ack.get_task(&unknown, "T-1").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    assert_eq!(err.code, "InvalidAccessKeyId.NotFound");
    assert_eq!(sim.control.count("DescribeTaskInfo"), 1);
}

#[tokio::test]
async fn a_wrong_credential_kind_fails_before_anything_is_sent() {
    let (sim, ack, mut ctx) = setup().await;
    ctx.credentials = Credentials::ApiKey {
        key_id: "token-x".into(),
        token: Zeroizing::new("secret-token".into()),
    };
    let err = ack.get_cluster(&ctx, "c-1").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    assert!(!err.to_string().contains("secret-token"));
    assert!(sim.control.seen().is_empty());
}

#[tokio::test]
async fn throttling_with_a_retry_hint_is_retried_after_the_hint() {
    let (sim, ack, ctx) = setup().await;
    let hint = Duration::from_millis(150);
    sim.control.set_faults(Faults {
        throttle_ratio: 1.0,
        throttle_retry_after: Some(hint),
        ..Default::default()
    });
    // Lift the throttling once the first request has been refused.
    let control = sim.control.clone();
    let lifter = tokio::spawn(async move {
        while !control.seen().iter().any(|s| s.outcome == "throttled") {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        control.set_faults(Faults::default());
    });
    let started = Instant::now();
    // A create: not idempotent, yet throttling guarantees ACK did nothing, so it is retried.
    let created = ack
        .create_cluster(&ctx, "flo-throttled", &ClusterSpec::default())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    lifter.await.unwrap();
    assert!(!created.object_id.is_empty());
    let outcomes: Vec<&str> = sim.control.seen().iter().map(|s| s.outcome).collect();
    assert_eq!(outcomes, ["throttled", "ok"]);
    assert_eq!(sim.clusters_created(), 1);
    // Without the hint the first backoff would be under 20 ms (base 10 ms, full jitter).
    assert!(elapsed >= hint, "retried after {elapsed:?}, hint {hint:?}");
}

#[tokio::test]
async fn server_errors_retry_reads_but_never_creates() {
    let (sim, ack, ctx) = setup().await;
    sim.control.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Default::default()
    });
    let err = ack
        .create_cluster(&ctx, "flo", &ClusterSpec::default())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable);
    assert_eq!(err.code, "InternalError");
    assert_eq!(sim.control.count("CreateCluster"), 1);
    let err = ack.get_cluster(&ctx, "c-1").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable);
    let attempts = TransportSettings::default().max_attempts as usize;
    assert_eq!(sim.control.count("DescribeClusterDetail"), attempts);
    assert_eq!(sim.clusters_created(), 0);
}

#[tokio::test]
async fn a_failed_task_carries_the_vendor_code() {
    let (sim, ack, ctx) = setup().await;
    sim.control.set_faults(Faults {
        fail_next_task: Some("QuotaExceeded.Cluster".into()),
        ..Default::default()
    });
    let created = ack
        .create_cluster(&ctx, "flo-quota", &cluster_spec())
        .await
        .unwrap();
    let TaskStatus::Failed(err) = wait_task(&ack, &ctx, &created.task_id).await else {
        panic!("the task should fail");
    };
    assert_eq!(err.class, ErrorClass::QuotaExceeded);
    assert_eq!(err.code, "QuotaExceeded.Cluster");
    let cluster = ack.get_cluster(&ctx, &created.object_id).await.unwrap();
    assert_eq!(cluster.state, VendorClusterState::Failed);
    assert_eq!(cluster.raw_state, "failed");
    // Only the next task fails.
    let pool_cluster = ack
        .create_cluster(&ctx, "flo-ok", &cluster_spec())
        .await
        .unwrap();
    succeed(&ack, &ctx, &pool_cluster.task_id).await;
}

#[tokio::test]
async fn missing_objects_are_not_found() {
    let (sim, ack, ctx) = setup().await;
    let created = ack
        .create_cluster(&ctx, "flo-nf", &cluster_spec())
        .await
        .unwrap();
    succeed(&ack, &ctx, &created.task_id).await;
    let err = ack
        .resize_node_pool(&ctx, &created.object_id, "np-missing", &resize(Some(3)))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorNotFound);
    let err = ack
        .delete_node_pool(&ctx, &created.object_id, "np-missing")
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorNotFound);
    assert_eq!(err.code, "ErrorNodePoolNotFound");
    assert_eq!(
        ack.get_task(&ctx, "T-missing").await.unwrap_err().class,
        ErrorClass::VendorNotFound
    );
    assert_eq!(sim.control.count("DeleteClusterNodepool"), 1);
}

#[tokio::test]
async fn unsupported_operations_say_so_without_calling_ack() {
    let (sim, ack, ctx) = setup().await;
    let capability = ack.capability();
    assert!(!capability.list_vendor_clusters && !capability.register_cluster);
    assert!(capability.create_cluster && capability.resize_node_pool && capability.remove_nodes);
    let unsupported = |err: VendorError| {
        assert_eq!(err.class, ErrorClass::Unsupported, "{err}");
        assert_eq!(err.vendor, "ack");
    };
    unsupported(ack.list_clusters(&ctx).await.unwrap_err());
    unsupported(ack.register_cluster(&ctx, "x").await.unwrap_err());
    assert!(sim.control.seen().is_empty());
}

/// Sends a request built by the pure builders, unchanged or tampered with.
async fn exchange(request: http::Request<Vec<u8>>) -> RawResponse {
    let request = reqwest::Request::try_from(request).unwrap();
    let response = reqwest::Client::new().execute(request).await.unwrap();
    RawResponse {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_simulator_checks_dates_nonces_bodies_and_queries() {
    let (sim, _, _) = setup().await;
    let endpoint = sim.endpoint();
    let (id, secret) = sim.credentials();
    let now = sign::acs_date(unix_now());
    let make = |date: &str, nonce: &str| {
        client::describe_cluster_detail_request(
            &Stamp {
                endpoint: &endpoint,
                access_key_id: &id,
                access_key_secret: &secret,
                date,
                nonce,
            },
            "c-none",
        )
        .unwrap()
    };
    let code = |raw: &RawResponse| -> (u16, String, ErrorClass) {
        let err = parse_error(raw, "Test").unwrap();
        (raw.status, err.code, err.class)
    };

    // A good signature reaches the action.
    let first = exchange(make(&now, "nonce-1")).await;
    assert_eq!(
        code(&first),
        (
            404,
            "ErrorClusterNotFound".into(),
            ErrorClass::VendorNotFound
        )
    );
    // The same nonce again is a replay.
    let replay = exchange(make(&now, "nonce-1")).await;
    assert_eq!(code(&replay).1, "SignatureNonceUsed");
    // A date 20 minutes old is outside the 15-minute window.
    let stale = sign::acs_date(unix_now() - 20 * 60);
    let old = exchange(make(&stale, "nonce-2")).await;
    assert_eq!(
        code(&old),
        (
            400,
            "InvalidTimeStamp.Expired".into(),
            ErrorClass::CredentialsInvalid
        )
    );
    // A body changed after signing.
    let mut request = client::create_cluster_request(
        &Stamp {
            endpoint: &endpoint,
            access_key_id: &id,
            access_key_secret: &secret,
            date: &now,
            nonce: "nonce-3",
        },
        &serde_json::json!({ "name": "a" }),
    )
    .unwrap();
    *request.body_mut() = br#"{"name":"b"}"#.to_vec();
    let tampered = exchange(request).await;
    assert_eq!(
        code(&tampered),
        (
            400,
            "SignatureDoesNotMatch".into(),
            ErrorClass::CredentialsInvalid
        )
    );
    // A query parameter added after signing.
    let mut request = make(&now, "nonce-4");
    *request.uri_mut() = format!("{endpoint}/clusters/c-none?extra=1")
        .parse()
        .unwrap();
    assert_eq!(code(&exchange(request).await).1, "SignatureDoesNotMatch");
    assert_eq!(sim.clusters_created(), 0);
    let outcomes: Vec<&str> = sim.control.seen().iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        ["error", "signature", "signature", "signature", "signature"]
    );
}
