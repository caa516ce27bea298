//! Readiness and liveness as Kubernetes probes ask them (grpc.health.v1, no token):
//! readiness ("") follows the database and the operation worker, liveness ("liveness") stays
//! SERVING through a database outage and fails only when the worker is gone.
//!
//! The database is taken away without stopping the shared PostgreSQL: the server reaches it
//! through a TCP proxy that the test stops (cutting every connection) and starts again.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use base64::Engine;
use support::{db::TestDb, proxy::TcpProxy, server::TestServer};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

type Health = HealthClient<tonic::transport::Channel>;

const READINESS: &str = "";
const LIVENESS: &str = "liveness";
const CLUSTERS: &str = "flotilla.v1.ClusterService";
const OPERATIONS: &str = "flotilla.v1.OperationService";

async fn status(health: &mut Health, service: &str) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("health check of {service:?} answers: {s:?}"))
        .into_inner()
        .status()
}

/// Waits until every `(name, status)` holds at once; checks `always` on every round.
async fn wait_until(
    health: &mut Health,
    wanted: &[(&str, ServingStatus)],
    always: &[(&str, ServingStatus)],
    within: Duration,
) {
    let started = Instant::now();
    loop {
        let mut now = Vec::new();
        for (name, _) in wanted {
            now.push((*name, status(health, name).await));
        }
        for (name, must) in always {
            assert_eq!(
                status(health, name).await,
                *must,
                "{name:?} must stay {must:?} meanwhile"
            );
        }
        if now
            .iter()
            .zip(wanted)
            .all(|((_, got), (_, want))| got == want)
        {
            return;
        }
        assert!(
            started.elapsed() < within,
            "after {within:?}: {now:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `url` with its host:port replaced by the proxy's.
fn through(url: &str, proxy_port: u16) -> String {
    let (scheme_user, rest) = url.rsplit_once('@').expect("user@host in URL");
    let (_, path) = rest.split_once('/').expect("database in URL");
    format!("{scheme_user}@127.0.0.1:{proxy_port}/{path}")
}

fn target_of(url: &str) -> std::net::SocketAddr {
    let (_, rest) = url.rsplit_once('@').expect("user@host in URL");
    let (host_port, _) = rest.split_once('/').expect("database in URL");
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    use std::net::ToSocketAddrs;
    host_port
        .to_socket_addrs()
        .expect("resolve the test PostgreSQL")
        .next()
        .expect("an address")
}

#[tokio::test]
async fn readiness_follows_the_database_and_liveness_does_not() {
    use ServingStatus::{NotServing, Serving};
    let db = TestDb::postgres().await;
    let mut proxy = TcpProxy::start(target_of(&db.url)).await;
    let url = through(&db.url, proxy.port);
    let server = TestServer::start_with(|s| {
        s.database_url = url;
        s.master_key = Some(zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        ));
        s.health_check_interval = Duration::from_millis(200);
    })
    .await;
    let mut health = HealthClient::new(server.raw_channel().await);
    wait_until(
        &mut health,
        &[
            (READINESS, Serving),
            (LIVENESS, Serving),
            (CLUSTERS, Serving),
            (OPERATIONS, Serving),
        ],
        &[],
        Duration::from_secs(5),
    )
    .await;

    proxy.stop();
    wait_until(
        &mut health,
        &[
            (READINESS, NotServing),
            (CLUSTERS, NotServing),
            (OPERATIONS, NotServing),
        ],
        &[(LIVENESS, Serving)],
        Duration::from_secs(15),
    )
    .await;
    // A while later liveness still holds: Kubernetes must not restart replicas for an outage
    // of the database.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status(&mut health, LIVENESS).await, Serving);
    assert_eq!(status(&mut health, READINESS).await, NotServing);

    proxy.resume().await;
    wait_until(
        &mut health,
        &[
            (READINESS, Serving),
            (CLUSTERS, Serving),
            (OPERATIONS, Serving),
        ],
        &[(LIVENESS, Serving)],
        Duration::from_secs(30),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_dead_operation_worker_fails_readiness_and_liveness() {
    use ServingStatus::{NotServing, Serving};
    let server = TestServer::start_with(|s| {
        s.health_check_interval = Duration::from_millis(200);
    })
    .await;
    let mut health = HealthClient::new(server.raw_channel().await);
    wait_until(
        &mut health,
        &[
            (READINESS, Serving),
            (LIVENESS, Serving),
            (OPERATIONS, Serving),
        ],
        &[],
        Duration::from_secs(5),
    )
    .await;

    server.stop_operation_worker();
    // The rest of the API still works: only what needs the worker says so.
    wait_until(
        &mut health,
        &[
            (READINESS, NotServing),
            (LIVENESS, NotServing),
            (OPERATIONS, NotServing),
        ],
        &[(CLUSTERS, Serving)],
        Duration::from_secs(10),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn draining_fails_readiness_but_not_liveness() {
    use ServingStatus::{NotServing, Serving};
    use tokio_stream::StreamExt;
    let server = TestServer::start_with(|s| {
        s.health_check_interval = Duration::from_millis(200);
    })
    .await;
    let channel = server.raw_channel().await;
    let mut health = HealthClient::new(channel.clone());
    let mut readiness = health
        .watch(HealthCheckRequest {
            service: READINESS.into(),
        })
        .await
        .expect("watch readiness")
        .into_inner();
    let mut liveness = health
        .watch(HealthCheckRequest {
            service: LIVENESS.into(),
        })
        .await
        .expect("watch liveness")
        .into_inner();
    let first = |m: Option<Result<tonic_health::pb::HealthCheckResponse, tonic::Status>>| {
        m.expect("a status")
            .expect("a status, not an error")
            .status()
    };
    assert_eq!(first(readiness.next().await), Serving);
    assert_eq!(first(liveness.next().await), Serving);

    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(
        first(
            tokio::time::timeout(Duration::from_secs(5), readiness.next())
                .await
                .expect("readiness changes at once")
        ),
        NotServing
    );
    // Liveness sends nothing new before its stream ends with the server.
    let mut seen = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(15), liveness.next()).await
    {
        seen.push(message.status());
    }
    assert!(
        !seen.contains(&NotServing),
        "liveness went {seen:?} while draining"
    );
    stopping.await.expect("shutdown task");
}

/// A client watching an operation on a replica that drains is told to go elsewhere at once
/// (UNAVAILABLE, SHUTTING_DOWN, as clients retry), not cut off at the end of the grace period.
#[tokio::test]
async fn an_operation_watch_ends_with_unavailable_when_the_server_drains() {
    use flotilla::proto::{self as pb, operation_service_client::OperationServiceClient};
    let server = TestServer::start().await;
    let store = server.store().await;
    store
        .insert_cluster(&support::rows::imported_cluster("beta"))
        .await
        .expect("cluster");
    store
        .insert_operation(&flotilla::store::OperationRow {
            id: "op-waiting".into(),
            resource: "clusters/beta".into(),
            cluster_id: "beta".into(),
            kind: "UPGRADE_CLUSTER".into(),
            state: "PENDING".into(),
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
            // Not due: the worker leaves it alone, the watch has nothing to end on.
            next_run_time: i64::MAX / 2,
            version: 1,
            create_time: 1,
            update_time: 1,
        })
        .await
        .expect("operation");
    let mut watch = OperationServiceClient::new(server.channel().await)
        .watch_operation(pb::WatchOperationRequest {
            operation_id: "op-waiting".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("first")
        .expect("the operation");
    assert_eq!(
        first.operation.expect("operation").state(),
        pb::OperationState::Pending
    );

    let started = Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the watch ends well within the grace period");
    let status = ended.expect_err("the watch ends with a status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    stopping.await.expect("shutdown task");
}
