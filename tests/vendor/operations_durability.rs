//! Durable operations under stress: a server killed with SIGKILL mid-way resumes every operation
//! after a restart without duplicating anything at the vendor, and operations complete through
//! injected throttling and server errors while the vendor never sees more than the configured
//! request rate.

use flotilla_test_support as support;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use support::{
    kubeconfigs::admin_kubeconfig,
    lifecycle::{cluster_spec, create_credential, poll_operation, state, wait_operation},
    server::{ADMIN_TOKEN, AuthedChannel, Bearer, TestServer},
    sim::{Faults, ack::AckSim},
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

const CLUSTERS: usize = 20;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real server binary, as an operator runs it.
fn spawn_server(data_dir: &std::path::Path, port: u16, ack: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("serve")
        .env("FLOTILLA_DATA_DIR", data_dir)
        .env("FLOTILLA_LISTEN", format!("127.0.0.1:{port}"))
        .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
        .env("FLOTILLA_RATE_LIMIT", "0")
        .env("FLOTILLA_ACK_ENDPOINT", ack)
        .env("FLOTILLA_OPERATION_POLL_INTERVAL_MS", "200")
        .env("FLOTILLA_OPERATION_LEASE_SECONDS", "2")
        .env("FLOTILLA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the flotilla binary")
}

async fn connect(port: u16) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server process that a failing assertion does not leave running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn authed(channel: Channel) -> AuthedChannel {
    InterceptedService::new(channel, Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}"))))
}

#[tokio::test]
async fn operations_resume_after_sigkill_without_duplicates() {
    let sim = AckSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_secs(3), Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = spawn_server(dir.path(), port, &sim.endpoint());
    let channel = authed(connect(port).await);
    let key = sim.credentials();
    let credential = create_credential(channel.clone(), "ack-key", "ack", (&key.0, &key.1)).await;

    let mut client = ClusterServiceClient::new(channel.clone());
    let mut ids = Vec::new();
    for n in 0..CLUSTERS {
        let id = format!("crash-{n:02}");
        let op = client
            .create_cluster(pb::CreateClusterRequest {
                cluster_id: id.clone(),
                provider: "ack".into(),
                spec: Some(cluster_spec("ack", &credential, "1.32.1-aliyun.1")),
                request_id: format!("req-{id}"),
                validate_only: false,
            })
            .await
            .expect("CreateCluster")
            .into_inner()
            .operation
            .unwrap();
        ids.push(op.id);
    }

    // Kill it while the vendor has made some clusters but not all operations are done.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.clusters_created() < CLUSTERS / 4 {
        assert!(
            Instant::now() < deadline,
            "the worker never reached the vendor"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut unfinished = 0;
    for id in &ids {
        let op = poll_operation(connect(port).await, ADMIN_TOKEN, id)
            .await
            .unwrap();
        if state(&op) != pb::OperationState::Succeeded {
            unfinished += 1;
        }
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    assert!(unfinished > 0, "the kill must land mid-way");
    eprintln!(
        "killed with {unfinished} of {CLUSTERS} operations unfinished and {} clusters made",
        sim.clusters_created()
    );

    // Restart on the same data directory: every operation finishes.
    let port = free_port();
    let mut server = spawn_server(dir.path(), port, &sim.endpoint());
    let channel = connect(port).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &ids {
        loop {
            let op = poll_operation(channel.clone(), ADMIN_TOKEN, id).await;
            match op.as_ref().map(state) {
                Some(pb::OperationState::Succeeded) => break,
                Some(pb::OperationState::Failed | pb::OperationState::Cancelled) => {
                    panic!("operation ended badly: {op:#?}")
                }
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "operation {id} did not finish: {op:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(
        sim.clusters_created(),
        CLUSTERS,
        "no duplicates at the vendor"
    );
    assert_eq!(sim.cluster_ids().len(), CLUSTERS);
    let listed = ClusterServiceClient::new(authed(channel))
        .list_clusters(pb::ListClustersRequest {
            filter: "state = RUNNING".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size as usize, CLUSTERS);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn operations_complete_through_throttling_and_server_errors() {
    const LIMIT_PER_SECOND: u32 = 4;
    let sim = AckSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(600), Duration::from_millis(300));
    sim.control.set_faults(Faults {
        throttle_ratio: 0.30,
        throttle_retry_after: Some(Duration::from_millis(200)),
        server_error_ratio: 0.05,
        ..Default::default()
    });
    let endpoint = sim.endpoint();
    let server = TestServer::start_with(move |s| {
        s.vendors.ack.endpoint = Some(endpoint);
        s.vendors.transport.rate_per_second = LIMIT_PER_SECOND;
        s.vendors.transport.backoff_base = Duration::from_millis(50);
        s.vendors.transport.backoff_cap = Duration::from_secs(1);
        s.operations.poll_interval = Duration::from_millis(300);
    })
    .await;
    let key = sim.credentials();
    let credential = create_credential(server.channel().await, "k", "ack", (&key.0, &key.1)).await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    let mut ops = Vec::new();
    for n in 0..4 {
        let id = format!("faulty-{n}");
        let op = client
            .create_cluster(pb::CreateClusterRequest {
                cluster_id: id.clone(),
                provider: "ack".into(),
                spec: Some(cluster_spec("ack", &credential, "1.32.1-aliyun.1")),
                request_id: format!("req-{id}"),
                validate_only: false,
            })
            .await
            .expect("CreateCluster")
            .into_inner()
            .operation
            .unwrap();
        ops.push(op.id);
    }
    for id in &ops {
        let done = wait_operation(server.channel().await, id, Duration::from_secs(180)).await;
        assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    }
    // Then scale through the same faults.
    let mut nodes =
        flotilla::proto::node_service_client::NodeServiceClient::new(server.channel().await);
    let pool_op = nodes
        .create_node_pool(pb::CreateNodePoolRequest {
            cluster_id: "faulty-0".into(),
            node_pool: Some(pb::NodePoolSpec {
                name: "workers".into(),
                desired_size: 1,
                ..Default::default()
            }),
            request_id: "pool-faulty".into(),
            validate_only: false,
        })
        .await
        .expect("CreateNodePool")
        .into_inner()
        .operation
        .unwrap();
    let done = wait_operation(
        server.channel().await,
        &pool_op.id,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");

    let seen = sim.control.seen();
    let throttled = seen.iter().filter(|s| s.outcome == "throttled").count();
    let errors = seen.iter().filter(|s| s.outcome == "server_error").count();
    assert!(
        throttled > 0 && errors > 0,
        "faults were injected: {throttled} throttled, {errors} errors"
    );
    let busiest = sim.control.max_in_window(Duration::from_secs(1));
    eprintln!(
        "fault run: {} vendor requests, {throttled} throttled, {errors} server errors, busiest \
         second {busiest} (limit {LIMIT_PER_SECOND})",
        seen.len()
    );
    assert!(
        busiest <= LIMIT_PER_SECOND as usize,
        "the vendor saw {busiest} requests within one second; the limit is {LIMIT_PER_SECOND}"
    );
    assert_eq!(sim.clusters_created(), 4, "no duplicates");
    server.shutdown().await;
}

/// The case a crash leaves behind: the vendor made the cluster but the operation never recorded
/// it. Running the create again adopts that cluster (found by name) instead of making another.
#[tokio::test]
async fn a_create_the_vendor_already_did_is_adopted_not_repeated() {
    use flotilla::adapters::{
        CallContext, Credentials, TransportSettings, VendorHttp,
        cluster::{ClusterProvider, ack::AckProvider},
    };
    let sim = AckSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(300), Duration::from_millis(100));
    let key = sim.credentials();
    let provider = AckProvider::new(
        VendorHttp::new(TransportSettings::default(), None).unwrap(),
        Some(sim.endpoint()),
    );
    let ctx = CallContext {
        credentials: Credentials::AccessKey {
            id: key.0.clone(),
            secret: key.1.clone().into(),
        },
        region: "cn-hangzhou".into(),
    };
    let made = provider
        .create_cluster(
            &ctx,
            "half-done",
            &cluster_spec("ack", "", "1.32.1-aliyun.1"),
        )
        .await
        .expect("the first attempt reached the vendor")
        .object_id;

    let endpoint = sim.endpoint();
    let server = TestServer::start_with(move |s| {
        s.vendors.ack.endpoint = Some(endpoint);
        s.operations.poll_interval = Duration::from_millis(100);
    })
    .await;
    let credential = create_credential(server.channel().await, "k", "ack", (&key.0, &key.1)).await;
    let op = ClusterServiceClient::new(server.channel().await)
        .create_cluster(pb::CreateClusterRequest {
            cluster_id: "half-done".into(),
            provider: "ack".into(),
            spec: Some(cluster_spec("ack", &credential, "1.32.1-aliyun.1")),
            request_id: String::new(),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let done = wait_operation(server.channel().await, &op.id, Duration::from_secs(60)).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    assert_eq!(sim.clusters_created(), 1, "adopted, not created again");
    let cluster = support::lifecycle::get_cluster(server.channel().await, "half-done")
        .await
        .unwrap();
    assert_eq!(cluster.vendor_cluster_id, made);
    server.shutdown().await;
}

/// The one crash the random kill above may miss: the vendor has made the cluster, but its answer
/// (with the cluster's id) has not reached the worker, so nothing was checkpointed. The simulator
/// holds that answer; the server is killed while it is held; after a restart the operation
/// finishes with the one cluster the vendor made.
#[tokio::test]
async fn a_kill_after_the_vendor_made_the_cluster_but_before_the_checkpoint_makes_no_second() {
    let sim = AckSim::start(admin_kubeconfig()).await;
    sim.control
        .set_delays(Duration::from_millis(500), Duration::from_millis(100));
    sim.control.hold("CreateCluster");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = KillOnDrop(spawn_server(dir.path(), port, &sim.endpoint()));
    let channel = authed(connect(port).await);
    let key = sim.credentials();
    let credential = create_credential(channel.clone(), "ack-key", "ack", (&key.0, &key.1)).await;
    let op = ClusterServiceClient::new(channel)
        .create_cluster(pb::CreateClusterRequest {
            cluster_id: "held".into(),
            provider: "ack".into(),
            spec: Some(cluster_spec("ack", &credential, "1.32.1-aliyun.1")),
            request_id: "req-held".into(),
            validate_only: false,
        })
        .await
        .expect("CreateCluster")
        .into_inner()
        .operation
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.control.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "the worker never reached the vendor"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.clusters_created(), 1, "the vendor made the cluster");
    let before = poll_operation(connect(port).await, ADMIN_TOKEN, &op.id)
        .await
        .expect("the operation");
    assert!(
        !matches!(
            state(&before),
            pb::OperationState::Succeeded
                | pb::OperationState::Failed
                | pb::OperationState::Cancelled
        ),
        "not finished while the answer is held: {before:#?}"
    );
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    sim.control.release();

    let port = free_port();
    let mut server = KillOnDrop(spawn_server(dir.path(), port, &sim.endpoint()));
    let channel = connect(port).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let op = poll_operation(channel.clone(), ADMIN_TOKEN, &op.id).await;
        match op.as_ref().map(state) {
            Some(pb::OperationState::Succeeded) => break op.unwrap(),
            Some(pb::OperationState::Failed | pb::OperationState::Cancelled) => {
                panic!("operation ended badly: {op:#?}")
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "did not finish: {op:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sim.clusters_created(), 1, "no second cluster at the vendor");
    let vendor_ids = sim.cluster_ids();
    assert_eq!(vendor_ids.len(), 1, "{vendor_ids:?}");
    let cluster = support::lifecycle::get_cluster(authed(channel), "held")
        .await
        .expect("the cluster");
    assert_eq!(cluster.vendor_cluster_id, vendor_ids[0], "{done:#?}");
    server.0.kill().unwrap();
    server.0.wait().unwrap();
}
