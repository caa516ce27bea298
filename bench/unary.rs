//! Unary throughput against a bare tonic echo built with the same tonic (issue #20, P7): 50
//! concurrent callers on 4 HTTP/2 connections, back to back, for each case in turn, in
//! alternating rounds. A second bare tonic server answers with the bytes of a real page of 50
//! clusters: the fastest any server could answer ListClusters(1,000, page 50) here. The label
//! cases filter on a label half the clusters have and on one only a single cluster has. Prints
//! requests/s, the ratio to the echo's requests/s in the same round, p50/p99 latency, and the
//! server's CPU time per call (utime+stime from /proc/<pid>/stat).
//!
//!     cargo build --release && cargo bench --bench unary
//!
//! With `FLOTILLA_BIN_BASELINE=<another flotilla binary>` every case also runs on that binary,
//! right before the same case on this one, for before/after comparisons in the same rounds.
//! `FLOTILLA_BENCH_ONLY=<text>` runs only the cases whose names contain it (and the two echoes).
//! `FLOTILLA_BENCH_ROUNDS` (default 5) and `FLOTILLA_BENCH_SECONDS` (per case and round,
//! default 3) change the length. The echo is this binary started again as a child (see
//! `flotilla_test_support::unary`); the servers are ended when the bench ends, even by a panic.

use flotilla_test_support as support;

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use flotilla::{
    proto as pb,
    store::{ClusterRow, Store},
};
use prost::Message;
use support::{
    process::{ServerProcess, release_binary},
    rows::imported_cluster,
    unary::{
        ECHO_PATH, EchoKind, EchoProcess, RawCall, call_raw, closed_loop, connections, cpu_time,
        load_average, median_range, run_child_if_asked,
    },
};
use tonic::transport::Channel;

const CLUSTERS: usize = 1000;
const CONCURRENCY: usize = 50;
const CONNECTIONS: usize = 4;
const LIST_CLUSTERS: &str = "/flotilla.v1.ClusterService/ListClusters";
/// The one cluster with the label `canary=yes`.
const CANARY: usize = 777;

fn row(i: usize) -> ClusterRow {
    ClusterRow {
        display_name: format!("Cluster {i}"),
        // One cluster of the thousand is a canary: the rare label case.
        labels: format!(
            r#"{{"env":"{}","team":"t{}"{}}}"#,
            ["prod", "dev"][i % 2],
            i % 7,
            if i == CANARY {
                r#","canary":"yes""#
            } else {
                ""
            }
        ),
        provider: ["imported", "ack", "tke"][i % 3].into(),
        region: "cn-hangzhou".into(),
        vendor_cluster_id: format!("c{i:08x}"),
        create_time: 1_700_000_000_000 + i as i64,
        update_time: 1_700_000_000_000 + i as i64,
        ..imported_cluster(&format!("cluster-{i:05}"))
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The request bodies of every page of a list, following next_page_token from the first page.
async fn all_pages(channel: &Channel, page_size: i32, filter: &str) -> Vec<Bytes> {
    let mut bodies = Vec::new();
    let mut token = String::new();
    loop {
        let body = Bytes::from(
            pb::ListClustersRequest {
                page_size,
                page_token: token.clone(),
                filter: filter.into(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        let call = RawCall::new(LIST_CLUSTERS, body.clone()).authed();
        let reply = call_raw(channel, &call, 0).await.expect("list clusters");
        bodies.push(body);
        token = pb::ListClustersResponse::decode(reply)
            .expect("response")
            .next_page_token;
        if token.is_empty() {
            return bodies;
        }
    }
}

#[derive(Clone)]
struct Case {
    name: String,
    pid: u32,
    channels: Vec<Channel>,
    call: RawCall,
}

#[derive(Default)]
struct Samples {
    per_second: Vec<f64>,
    ratio: Vec<f64>,
    p50_ms: Vec<f64>,
    p99_ms: Vec<f64>,
    cpu_us: Vec<f64>,
}

/// A server with no clusters and one with [`CLUSTERS`] clusters, from `binary`.
async fn start_servers(binary: &str) -> (ServerProcess, ServerProcess, [tempfile::TempDir; 2]) {
    let empty_dir = tempfile::tempdir().expect("tempdir");
    let empty = ServerProcess::start(binary, &empty_dir.path().join("data"));
    let full_dir = tempfile::tempdir().expect("tempdir");
    let data = full_dir.path().join("data");
    let store = Store::open(&format!("sqlite://{}", data.join("flotilla.db").display()))
        .await
        .expect("store");
    for i in 0..CLUSTERS {
        store.insert_cluster(&row(i)).await.expect("insert");
    }
    drop(store);
    let full = ServerProcess::start(binary, &data);
    (empty, full, [empty_dir, full_dir])
}

async fn flotilla_cases(label: &str, empty: &ServerProcess, full: &ServerProcess) -> Vec<Case> {
    let empty_channels = connections(empty.url(), CONNECTIONS).await;
    let full_channels = connections(full.url(), CONNECTIONS).await;
    let first_page = pb::ListClustersRequest {
        page_size: 50,
        ..Default::default()
    }
    .encode_to_vec();
    let pages = all_pages(&full_channels[0], 50, "").await;
    let filtered_pages = all_pages(&full_channels[0], 50, "labels.env = prod").await;
    let rare_pages = all_pages(&full_channels[0], 50, "labels.canary = yes").await;
    let rare = call_raw(
        &full_channels[0],
        &RawCall::new(LIST_CLUSTERS, rare_pages[0].clone()).authed(),
        0,
    )
    .await
    .expect("list the canary");
    let rare_ids: Vec<String> = pb::ListClustersResponse::decode(rare)
        .expect("response")
        .clusters
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        (rare_pages.len(), rare_ids),
        (1, vec![row(CANARY).id]),
        "one page, with the canary alone"
    );
    assert_eq!(pages.len(), CLUSTERS / 50, "pages of 50");
    assert_eq!(
        filtered_pages.len(),
        CLUSTERS / 100,
        "pages of prod clusters"
    );
    vec![
        Case {
            name: format!("{label}Health/Check"),
            pid: empty.pid(),
            channels: empty_channels.clone(),
            call: RawCall::new("/grpc.health.v1.Health/Check", Bytes::new()),
        },
        Case {
            name: format!("{label}ListProviders"),
            pid: empty.pid(),
            channels: empty_channels.clone(),
            call: RawCall::new("/flotilla.v1.ClusterService/ListProviders", Bytes::new()).authed(),
        },
        Case {
            name: format!("{label}ListClusters, 0 clusters"),
            pid: empty.pid(),
            channels: empty_channels,
            call: RawCall::new(LIST_CLUSTERS, first_page).authed(),
        },
        Case {
            name: format!("{label}ListClusters, 1000, pages of 50"),
            pid: full.pid(),
            channels: full_channels.clone(),
            call: RawCall::cycling(LIST_CLUSTERS, pages).authed(),
        },
        Case {
            name: format!("{label}ListClusters, 1000, label filter"),
            pid: full.pid(),
            channels: full_channels.clone(),
            call: RawCall::cycling(LIST_CLUSTERS, filtered_pages).authed(),
        },
        Case {
            name: format!("{label}ListClusters, 1000, rare label (1 match)"),
            pid: full.pid(),
            channels: full_channels,
            call: RawCall::cycling(LIST_CLUSTERS, rare_pages).authed(),
        },
    ]
}

fn main() {
    run_child_if_asked();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(bench());
}

async fn bench() {
    let rounds = env_number("FLOTILLA_BENCH_ROUNDS", 5) as usize;
    let seconds = Duration::from_secs(env_number("FLOTILLA_BENCH_SECONDS", 3));

    let echo = EchoProcess::start(EchoKind::Bare);
    let echo_channels = connections(echo.url(), CONNECTIONS).await;
    let mut cases = vec![Case {
        name: "bare tonic echo".into(),
        pid: echo.pid(),
        channels: echo_channels,
        call: RawCall::new(ECHO_PATH, Bytes::new()),
    }];
    // With a baseline binary, each case runs on both, one after the other in every round.
    let mut binaries = vec![(String::new(), release_binary())];
    if let Ok(baseline) = std::env::var("FLOTILLA_BIN_BASELINE") {
        binaries.insert(0, ("before: ".to_string(), baseline));
    }
    let mut servers = Vec::new();
    let mut server_cases = Vec::new();
    for (label, binary) in &binaries {
        let (empty, full, dirs) = start_servers(binary).await;
        server_cases.push(flotilla_cases(label, &empty, &full).await);
        servers.push((empty, full, dirs));
    }
    // The fastest peer on the same data: a bare tonic server answering with the bytes of a real
    // first page of 50 clusters (the request is empty), so the ratio to the echo shows what a
    // response of that size costs any server here.
    let (_, full, _) = servers.last().expect("a server");
    let page = call_raw(
        &connections(full.url(), 1).await[0],
        &RawCall::new(
            LIST_CLUSTERS,
            pb::ListClustersRequest {
                page_size: 50,
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .authed(),
        0,
    )
    .await
    .expect("a page of clusters");
    assert_eq!(
        pb::ListClustersResponse::decode(page.clone())
            .expect("response")
            .clusters
            .len(),
        50
    );
    let same_data = EchoProcess::replying(&page);
    cases.push(Case {
        name: format!("bare tonic, {} B page of 50", page.len()),
        pid: same_data.pid(),
        channels: connections(same_data.url(), CONNECTIONS).await,
        call: RawCall::new(ECHO_PATH, Bytes::new()),
    });
    for i in 0..server_cases[0].len() {
        for list in &mut server_cases {
            cases.push(list[i].clone());
        }
    }
    // For profiling one case: `FLOTILLA_BENCH_ONLY=<part of its name>` keeps the two echoes and
    // the cases whose names contain it; each server's pid is printed for `perf record -p`.
    if let Ok(only) = std::env::var("FLOTILLA_BENCH_ONLY") {
        let mut n = 0;
        cases.retain(|case| {
            n += 1;
            n <= 2 || case.name.contains(&only)
        });
    }
    for case in &cases {
        println!("  {:<42} server pid {}", case.name, case.pid);
    }
    // Warm up every path (connections, caches, the token cache, prepared statements).
    for case in &cases {
        closed_loop(
            &case.channels,
            CONCURRENCY,
            Duration::from_millis(500),
            &case.call,
        )
        .await;
    }

    println!(
        "unary calls, {CONCURRENCY} concurrent on {CONNECTIONS} connections, {} s per case, \
         {rounds} alternating rounds; load average before: {}",
        seconds.as_secs(),
        load_average()
    );
    let mut samples: BTreeMap<usize, Samples> = BTreeMap::new();
    for round in 1..=rounds {
        let mut echo_rate = 0.0;
        for (i, case) in cases.iter().enumerate() {
            let cpu_before = cpu_time(case.pid);
            let result = closed_loop(&case.channels, CONCURRENCY, seconds, &case.call).await;
            let cpu = cpu_time(case.pid).saturating_sub(cpu_before);
            if i == 0 {
                echo_rate = result.per_second();
            }
            let s = samples.entry(i).or_default();
            s.per_second.push(result.per_second());
            s.ratio.push(result.per_second() / echo_rate);
            s.p50_ms.push(result.percentile(0.5).as_secs_f64() * 1e3);
            s.p99_ms.push(result.percentile(0.99).as_secs_f64() * 1e3);
            s.cpu_us.push(cpu.as_secs_f64() * 1e6 / result.calls as f64);
            println!(
                "  round {round} {:<42} {:>9.0}/s  {:>5.3}x  p50 {:>7.3} ms  p99 {:>7.3} ms  \
                 server CPU {:>6.1} µs/call",
                case.name,
                result.per_second(),
                result.per_second() / echo_rate,
                result.percentile(0.5).as_secs_f64() * 1e3,
                result.percentile(0.99).as_secs_f64() * 1e3,
                cpu.as_secs_f64() * 1e6 / result.calls as f64,
            );
        }
        println!("  load average after round {round}: {}", load_average());
    }
    println!("medians over {rounds} rounds (min-max):");
    for (i, case) in cases.iter().enumerate() {
        let s = &samples[&i];
        let show = |v: &[f64], digits: usize| {
            let (m, lo, hi) = median_range(v);
            format!("{m:.digits$} ({lo:.digits$}-{hi:.digits$})")
        };
        println!(
            "  {:<42} {}/s  {}x of echo  p50 {} ms  p99 {} ms  server CPU {} µs/call",
            case.name,
            show(&s.per_second, 0),
            show(&s.ratio, 3),
            show(&s.p50_ms, 3),
            show(&s.p99_ms, 3),
            show(&s.cpu_us, 1),
        );
    }
}
