//! What the auth layer costs a unary call, side by side on one server and one connection:
//! `grpc.health.v1.Health/Check` (public: passes the layer untouched) against
//! `flotilla.v1.ClusterService/ListProviders` (a handler just as trivial, behind token lookup,
//! the permission table, the rate limiter and the request-id header). Calls alternate, so
//! machine noise hits both alike; medians are compared.
//!
//!     cargo build --release && cargo bench --bench auth_overhead

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use support::{
    process::{ServerProcess, release_binary},
    server::ADMIN_TOKEN as TOKEN,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const ROUNDS: usize = 5000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(&release_binary(), &dir.path().join("data"));
    let channel = server.raw_channel().await;
    let mut health = HealthClient::new(channel.clone());
    let mut clusters = ClusterServiceClient::new(channel);
    let authed = || {
        let mut request = tonic::Request::new(pb::ListProvidersRequest {});
        let value = format!("Bearer {TOKEN}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", value);
        request
    };
    for _ in 0..500 {
        health
            .check(HealthCheckRequest::default())
            .await
            .expect("health");
        clusters.list_providers(authed()).await.expect("providers");
    }
    let (mut open, mut guarded) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        health
            .check(HealthCheckRequest::default())
            .await
            .expect("health");
        open.push(started.elapsed());
        let started = Instant::now();
        clusters.list_providers(authed()).await.expect("providers");
        guarded.push(started.elapsed());
    }
    let (open, guarded) = (median(open), median(guarded));
    println!("unary call p50 over {ROUNDS} alternating rounds, one HTTP/2 connection:");
    println!(
        "  without auth (Health/Check):          {:>7.1} µs",
        open.as_secs_f64() * 1e6
    );
    println!(
        "  with auth (ListProviders, admin token): {:>7.1} µs",
        guarded.as_secs_f64() * 1e6
    );
    println!(
        "  overhead: {:+.1}% ({:+.1} µs)",
        (guarded.as_secs_f64() / open.as_secs_f64() - 1.0) * 100.0,
        (guarded.as_secs_f64() - open.as_secs_f64()) * 1e6
    );
    drop(server);
    layer_cost(dir.path()).await;
}

/// The layer alone, in process: a trivial inner service called through the auth layer and
/// directly, in alternating batches.
async fn layer_cost(dir: &std::path::Path) {
    use std::{convert::Infallible, sync::Arc};

    use flotilla::auth::{
        Role,
        audit::AuditLog,
        layer::{AuthLayer, AuthState},
        rate::RateLimiter,
        tokens::Tokens,
    };
    use tower::{Layer, Service, ServiceExt};

    let store =
        flotilla::store::Store::open(&format!("sqlite://{}", dir.join("layer.db").display()))
            .await
            .expect("store");
    let tokens = Arc::new(Tokens::new(store.clone()));
    let issued = tokens
        .issue("bench", Role::Admin, vec![], None, "bench")
        .await
        .expect("token");
    let state = Arc::new(AuthState {
        tokens,
        audit: AuditLog::start(store),
        limiter: RateLimiter::new(None),
        peer_limiter: RateLimiter::new(None),
    });
    let inner = tower::service_fn(|_req: http::Request<tonic::body::Body>| async {
        Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
    });
    let mut guarded = AuthLayer::new(state).layer(inner);
    let mut plain = inner;
    let request = || {
        http::Request::builder()
            .uri("/flotilla.v1.ClusterService/ListProviders")
            .header(
                "authorization",
                format!("Bearer {}", issued.secret.as_str()),
            )
            .body(tonic::body::Body::empty())
            .expect("request")
    };
    const N: u32 = 20_000;
    let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..10 {
        let started = Instant::now();
        for _ in 0..N {
            guarded
                .ready()
                .await
                .expect("ready")
                .call(request())
                .await
                .expect("call");
        }
        with += started.elapsed();
        let started = Instant::now();
        for _ in 0..N {
            plain
                .ready()
                .await
                .expect("ready")
                .call(request())
                .await
                .expect("call");
        }
        without += started.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(N * 10);
    println!(
        "auth layer alone, in process: {:.2} µs per call ({:.2} µs with the layer, {:.2} µs without)",
        per(with) - per(without),
        per(with),
        per(without)
    );
}
