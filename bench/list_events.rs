//! ListEvents of a namespace with many events (5,000 in namespace `bench-events`), the newest
//! page of 20 as a console shows it, side by side in one run, in alternating rounds:
//!
//! - Flotilla: `WorkloadService/ListEvents`, page of 20, over one HTTP/2 connection to the
//!   release binary, warm (the server's event cache has synced);
//! - kube-rs straight at kube-apiserver: what a direct client must do for the newest 20 (the API
//!   cannot sort): list every event of the namespace (JSON, decoded, pages of 500), sort by
//!   time, keep 20;
//! - raw HTTP at kube-apiserver through the same client: one `GET` of the namespace's events as
//!   protobuf, read whole and not decoded: a lower bound for the fastest direct client;
//! - Flotilla the way it was before the event cache: the first ListEvents after a fresh import
//!   (cold; the cache is not synced yet, so the call reads every event from the API server).
//!
//! Also the server's CPU per warm call (utime+stime from /proc over the round).
//!
//!     scripts/kube-env up
//!     cargo build --release && cargo bench --bench list_events
//!
//! Environment: `BENCH_EVENTS` (default 5000), `BENCH_ROUNDS` (default 7, at least 5),
//! `FLOTILLA_BIN`. The namespace is deleted at the end, also when the run fails.
//!
//! Not a timed test: it prints numbers for the issue notes.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    workload_service_client::WorkloadServiceClient,
};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use support::{
    host::{cpu_seconds, load_average},
    kubeconfigs::admin_kubeconfig,
    process::{ServerProcess, release_binary},
    server::AuthedChannel,
    watch_oracle::try_metric,
};

const NAMESPACE: &str = "bench-events";
const PAGE: i32 = 20;
/// Warm calls per round: enough that the server's CPU time (counted in 10 ms ticks) over them
/// resolves a few µs per call.
const CALLS: usize = 500;

type Workloads = WorkloadServiceClient<AuthedChannel>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number"))
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `count` events in [`NAMESPACE`], one second apart, about 50 pods, every fifth a Warning.
async fn create_events(kube: &kube::Client, count: usize) {
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {NAMESPACE} (left from a run?): {e}"));
    let events: Api<Event> = Api::namespaced(kube.clone(), NAMESPACE);
    let started = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let events = events.clone();
            async move {
                let at = chrono_like(i);
                let event: Event = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("ev-{i:06}")},
                    "involvedObject": {"kind": "Pod", "name": format!("web-{}", i % 50),
                                       "namespace": NAMESPACE},
                    "reason": "Benched", "message": format!("event {i} of the bench"),
                    "type": if i % 5 == 0 { "Warning" } else { "Normal" },
                    "firstTimestamp": at, "lastTimestamp": at, "count": 1,
                    "source": {"component": "flotilla-bench"}
                }))
                .expect("event");
                events
                    .create(&PostParams::default(), &event)
                    .await
                    .unwrap_or_else(|e| panic!("create event {i}: {e}"));
            }
        })
        .await;
    println!(
        "  {count} events created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The time of event `i`: 2026-01-01 plus `i` seconds, as RFC 3339.
fn chrono_like(i: usize) -> String {
    let (h, m, s) = (i / 3600, (i / 60) % 60, i % 60);
    format!("2026-01-{:02}T{:02}:{m:02}:{s:02}Z", 1 + h / 24, h % 24)
}

async fn delete_namespace(kube: &kube::Client) {
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
    let started = Instant::now();
    while namespaces.get_opt(NAMESPACE).await.ok().flatten().is_some() {
        if started.elapsed() > Duration::from_secs(120) {
            println!("  namespace {NAMESPACE} still terminating after 120 s");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "  namespace {NAMESPACE} deleted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A fresh server with the test control plane imported.
async fn start(binary: &str, data: &std::path::Path) -> (ServerProcess, Workloads) {
    let process = ServerProcess::start(binary, data);
    let channel = process.channel().await;
    ClusterServiceClient::new(channel.clone())
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "bench".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("ImportCluster: {s:?}"));
    (process, WorkloadServiceClient::new(channel))
}

/// The newest page through Flotilla: the names, and the call's time.
async fn flotilla_page(client: &mut Workloads) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let reply = client
        .list_events(pb::ListEventsRequest {
            cluster_id: "bench".into(),
            namespace: NAMESPACE.into(),
            page_size: PAGE,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("ListEvents: {s:?}"))
        .into_inner();
    let took = started.elapsed();
    (reply.events.into_iter().map(|e| e.name).collect(), took)
}

/// The newest page straight from kube-apiserver with kube-rs: every event (pages of 500),
/// sorted by time, newest 20.
async fn kube_page(events: &Api<Event>) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = events.list(&params).await.expect("list events");
        all.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => params = params.continue_token(&next),
            None => break,
        }
    }
    all.sort_by(|a, b| b.last_timestamp.cmp(&a.last_timestamp));
    all.truncate(PAGE as usize);
    let took = started.elapsed();
    (
        all.into_iter()
            .map(|e| e.metadata.name.unwrap_or_default())
            .collect(),
        took,
    )
}

/// One GET of the namespace's events as protobuf, read whole, not decoded.
async fn raw_protobuf(kube: &kube::Client) -> Duration {
    use http_body_util::BodyExt;
    let request = http::Request::get(format!("/api/v1/namespaces/{NAMESPACE}/events"))
        .header(http::header::ACCEPT, "application/vnd.kubernetes.protobuf")
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let started = Instant::now();
    let response = kube.send(request).await.expect("GET events");
    assert!(response.status().is_success(), "{}", response.status());
    let body = response.into_body().collect().await.expect("body");
    assert!(!body.to_bytes().is_empty());
    started.elapsed()
}

/// LISTs of events in the namespace the API server has answered so far.
async fn apiserver_event_lists(kube: &kube::Client) -> Option<f64> {
    try_metric(
        kube,
        (
            "apiserver_request_total",
            &[
                ("verb", "LIST"),
                ("resource", "events"),
                ("scope", "namespace"),
            ],
        ),
    )
    .await
    .ok()
}

#[tokio::main]
async fn main() {
    let count = env_usize("BENCH_EVENTS", 5000).max(PAGE as usize);
    let rounds = env_usize("BENCH_ROUNDS", 7).max(5);
    let binary = release_binary();
    let kube = support::kube::client().await;
    println!("Flotilla: {binary}");
    println!(
        "machine: {} cores; {count} events in {NAMESPACE}; load average at the start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!("setting up:");
    create_events(&kube, count).await;
    let outcome = tokio::spawn(bench(kube.clone(), binary, rounds, count)).await;
    println!("cleaning up:");
    delete_namespace(&kube).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn bench(kube: kube::Client, binary: String, rounds: usize, count: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let events: Api<Event> = Api::namespaced(kube.clone(), NAMESPACE);
    let (expected, _) = kube_page(&events).await;
    let (mut cold, mut warm, mut direct, mut raw, mut cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Cold: a fresh server; its first ListEvents starts the event cache and reads directly.
        let data = dir.path().join(format!("round-{round}"));
        let (server, mut client) = start(&binary, &data).await;
        let (names, took) = flotilla_page(&mut client).await;
        assert_eq!(names, expected, "the first (direct) page");
        cold.push(ms(took));
        // Warm: once a page is answered without a LIST reaching the API server.
        let synced = Instant::now();
        loop {
            let before = apiserver_event_lists(&kube).await;
            let (names, _) = flotilla_page(&mut client).await;
            if before.is_some() && apiserver_event_lists(&kube).await == before {
                assert_eq!(names, expected, "the cached page");
                break;
            }
            assert!(
                synced.elapsed() < Duration::from_secs(60),
                "the event cache did not sync in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let cpu_before = cpu_seconds(server.pid()).unwrap_or_default();
        let mut times = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            times.push(ms(flotilla_page(&mut client).await.1));
        }
        let cpu_after = cpu_seconds(server.pid()).unwrap_or_default();
        cpu.push((cpu_after - cpu_before) * 1e6 / CALLS as f64);
        warm.push(median(&mut times));
        // The peers, in the same round.
        let (names, took) = kube_page(&events).await;
        assert_eq!(names, expected, "kube-rs");
        direct.push(ms(took));
        let mut times: Vec<f64> = Vec::new();
        for _ in 0..5 {
            times.push(ms(raw_protobuf(&kube).await));
        }
        raw.push(median(&mut times));
        println!(
            "  round {round}/{rounds}: Flotilla warm {:.2} ms ({:.0} µs server CPU), cold {:.1} ms; \
             kube-rs {:.1} ms; raw protobuf {:.1} ms",
            warm[round - 1],
            cpu[round - 1],
            cold[round - 1],
            direct[round - 1],
            raw[round - 1]
        );
        drop(server);
    }
    let row = |label: &str, values: &mut Vec<f64>, fastest: f64| {
        let (min, max) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let p50 = median(values);
        println!(
            "  {label:<58} {p50:>9.2} {min:>9.2} {max:>9.2} {:>9.3}",
            p50 / fastest
        );
    };
    let fastest = median(&mut raw.clone());
    println!(
        "\nListEvents, newest {PAGE} of {count} events in one namespace; {rounds} rounds \
         (each a median of {CALLS} warm calls and 5 raw GETs); load average after: {}",
        load_average()
    );
    println!(
        "  {:<58} {:>9} {:>9} {:>9} {:>9}",
        "", "p50 ms", "min ms", "max ms", "/ raw GET"
    );
    row(
        "Flotilla ListEvents, warm (event cache)",
        &mut warm,
        fastest,
    );
    row(
        "Flotilla ListEvents, cold (first call: read from the API server)",
        &mut cold,
        fastest,
    );
    row(
        "kube-rs: list every event (JSON, pages of 500), sort, newest 20",
        &mut direct,
        fastest,
    );
    row(
        "raw GET of the namespace's events, protobuf, not decoded",
        &mut raw,
        fastest,
    );
    println!(
        "  Flotilla server CPU per warm call: {:.0} µs (median of rounds)",
        median(&mut cpu)
    );
}
