//! What the auth layer costs a unary call (issue #20, P5): the SAME RPC with and without it. A
//! bare tonic echo of `ListProviders`'s path runs in three child processes: alone, behind the
//! auth layer (token check with its cache, permission table, rate limiter, request id), and
//! behind the metrics/trace layer and the auth layer, as the server stacks them. Measured on one
//! connection with calls alternating between the servers, and at 50 concurrent callers on one
//! connection per server, in alternating rounds; medians with min-max, and each server's CPU
//! time per call. Then the layer alone, in process.
//!
//!     cargo bench --bench auth_overhead
//!
//! (No release server needed: the echo servers are this binary, started again as children;
//! they end with it, even when it panics or is killed.)

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use support::unary::{
    ECHO_PATH, EchoKind, EchoProcess, RawCall, call_raw, closed_loop, cpu_time, load_average,
    median_range, percentile, run_child_if_asked,
};

const ROUNDS: usize = 5;
const SEQUENTIAL: usize = 2000;
const CONCURRENCY: usize = 50;
const SECONDS: Duration = Duration::from_secs(2);

fn main() {
    run_child_if_asked();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(bench());
}

async fn bench() {
    let kinds = [
        ("without auth (bare echo)", EchoKind::Bare),
        ("with the auth layer", EchoKind::Auth),
        ("with metrics/trace + auth", EchoKind::Full),
    ];
    let servers: Vec<EchoProcess> = kinds.iter().map(|(_, k)| EchoProcess::start(*k)).collect();
    let mut channels = Vec::new();
    for server in &servers {
        channels.push(support::process::connect(server.url()).await);
    }
    // The bare echo ignores the token; sending it to all three keeps the requests identical.
    let call = RawCall::new(ECHO_PATH, Bytes::new()).authed();
    for channel in &channels {
        closed_loop(
            std::slice::from_ref(channel),
            CONCURRENCY,
            Duration::from_millis(500),
            &call,
        )
        .await;
    }
    println!(
        "the same unary call (echo at {ECHO_PATH}) with and without the auth layer, \
         {ROUNDS} alternating rounds; load average before: {}",
        load_average()
    );
    let n = kinds.len();
    let (mut seq_p50, mut conc_p50, mut conc_rate, mut conc_cpu) = (
        vec![vec![]; n],
        vec![vec![]; n],
        vec![vec![]; n],
        vec![vec![]; n],
    );
    for round in 1..=ROUNDS {
        let mut times = vec![Vec::with_capacity(SEQUENTIAL); n];
        for _ in 0..SEQUENTIAL {
            for (i, channel) in channels.iter().enumerate() {
                let started = Instant::now();
                call_raw(channel, &call, 0).await.expect("echo");
                times[i].push(started.elapsed());
            }
        }
        for (i, t) in times.iter_mut().enumerate() {
            t.sort();
            seq_p50[i].push(percentile(t, 0.5).as_secs_f64() * 1e6);
        }
        for (i, (channel, server)) in channels.iter().zip(&servers).enumerate() {
            let before = cpu_time(server.pid());
            let load =
                closed_loop(std::slice::from_ref(channel), CONCURRENCY, SECONDS, &call).await;
            let cpu = cpu_time(server.pid()).saturating_sub(before);
            conc_p50[i].push(load.percentile(0.5).as_secs_f64() * 1e6);
            conc_rate[i].push(load.per_second());
            conc_cpu[i].push(cpu.as_secs_f64() * 1e6 / load.calls as f64);
        }
        println!(
            "  round {round}: one connection p50 {:.1} / {:.1} / {:.1} µs; 50 concurrent p50 \
             {:.1} / {:.1} / {:.1} µs (bare / auth / metrics+auth); load average {}",
            seq_p50[0][round - 1],
            seq_p50[1][round - 1],
            seq_p50[2][round - 1],
            conc_p50[0][round - 1],
            conc_p50[1][round - 1],
            conc_p50[2][round - 1],
            load_average()
        );
    }
    let show = |v: &[f64]| {
        let (m, lo, hi) = median_range(v);
        format!("{m:>8.1} ({lo:.1}-{hi:.1})")
    };
    let overhead = |v: &[Vec<f64>], i: usize| {
        let per_round: Vec<f64> = v[i]
            .iter()
            .zip(&v[0])
            .map(|(with, without)| (with / without - 1.0) * 100.0)
            .collect();
        let (m, lo, hi) = median_range(&per_round);
        format!("{m:+.1}% ({lo:+.1}..{hi:+.1})")
    };
    println!("medians over {ROUNDS} rounds (min-max):");
    for (i, (name, _)) in kinds.iter().enumerate() {
        println!(
            "  {name:<26} one connection p50 {} µs {}; 50 concurrent p50 {} µs {}, {} calls/s, \
             server CPU {} µs/call",
            show(&seq_p50[i]),
            if i == 0 {
                String::new()
            } else {
                overhead(&seq_p50, i)
            },
            show(&conc_p50[i]),
            if i == 0 {
                String::new()
            } else {
                overhead(&conc_p50, i)
            },
            show(&conc_rate[i]).trim(),
            show(&conc_cpu[i]).trim(),
        );
    }
    drop(servers);
    let dir = tempfile::tempdir().expect("tempdir");
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
