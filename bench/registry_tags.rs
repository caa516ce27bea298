//! Walking every tag of one repository with 10,000 tags on a real CNCF Distribution v3.1.2
//! (anonymous, on loopback), two ways, in alternating rounds (a, b, a, b, …):
//!
//! - (a) Flotilla: `RegistryService/ListTags` at page size 500 against a release `flotilla serve`
//!   process (the binary cargo builds for this bench), the registry created through the API,
//!   over one HTTP/2 connection;
//! - (b) direct: `GET /v2/<name>/tags/list?n=500`, following `Link` to the end, with reqwest
//!   (one keep-alive connection), as a client of the registry would.
//!
//! It prints the p50 of each, the ratio Flotilla/direct per round (median, min–max), and the
//! server's RSS (VmRSS and VmHWM from /proc) after the warm-up walk and at the end.
//! Target: Flotilla ≤ 1.25× the direct walk.
//!
//! From a fresh clone (the registry binary is built once by `scripts/registry-env build`):
//!
//!     while IFS= read -r l; do export "$l"; done < <(scripts/registry-env env)
//!     cargo bench --bench registry_tags
//!
//! Environment: `FLOTILLA_REGISTRY_BIN` (Distribution v3.1.2; default the
//! `scripts/registry-env` cache), `BENCH_TAGS` (default 10000), `BENCH_ROUNDS` (default 7, at
//! least 5), `FLOTILLA_BIN` (default the release binary cargo built alongside this bench).
//! The registry and the server are killed when the run ends, also when it fails.
//!
//! Not a timed test (not part of `cargo test`): it prints numbers for the issue notes.

use flotilla_test_support as support;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use flotilla::proto::{self as pb, registry_service_client::RegistryServiceClient};
use futures::StreamExt;
use support::{
    process::ServerProcess,
    registry::{Pusher, RegistryAuth, RegistryKind, TestRegistry},
    server::AuthedChannel,
};

const PAGE: i32 = 500;
const REPOSITORY: &str = "bench/tags";

type Client = RegistryServiceClient<AuthedChannel>;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM"); 0 when it cannot be read.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn memory(server: &ServerProcess) -> String {
    format!(
        "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        status_kib(server.pid(), "VmRSS") as f64 / 1024.0,
        status_kib(server.pid(), "VmHWM") as f64 / 1024.0
    )
}

/// The tag name for `i`: zero-padded, so the registry's (lexical) order is `i`'s order.
fn tag(i: usize) -> String {
    format!("t{i:05}")
}

/// One image, then its manifest PUT under `count` tags (16 at a time).
async fn push_tags(pusher: &Pusher, count: usize) {
    let image = pusher
        .push_image(REPOSITORY, Some(&tag(0)), "linux/amd64", "benchmark")
        .await;
    futures::stream::iter(1..count)
        .map(|i| {
            let image = &image;
            async move { pusher.tag(REPOSITORY, &tag(i), image).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// (a) Every tag through Flotilla; the walk's time and the tags seen.
async fn flotilla_walk(client: &mut Client) -> (Duration, Vec<String>) {
    let started = Instant::now();
    let mut tags = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_tags(pb::ListTagsRequest {
                registry_id: "bench".into(),
                repository: REPOSITORY.into(),
                page_size: PAGE,
                page_token: token,
            })
            .await
            .expect("ListTags")
            .into_inner();
        tags.extend(page.tags);
        if page.next_page_token.is_empty() {
            return (started.elapsed(), tags);
        }
        token = page.next_page_token;
    }
}

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `rel="next"` target of a Link header, if any.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    let (target, params) = link.split_once(';')?;
    params
        .contains("rel=\"next\"")
        .then(|| target.trim().trim_matches(['<', '>']).to_string())
}

/// (b) Every tag straight from the registry; the walk's time and the tags seen.
async fn direct_walk(http: &reqwest::Client, base: &str) -> (Duration, Vec<String>) {
    let started = Instant::now();
    let mut tags = Vec::new();
    let mut path = format!("/v2/{REPOSITORY}/tags/list?n={PAGE}");
    loop {
        let response = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("tags/list");
        assert!(response.status().is_success(), "{}", response.status());
        let next = next_link(response.headers());
        let body = response.bytes().await.expect("tag list body");
        let page: TagList = serde_json::from_slice(&body).expect("tag list json");
        tags.extend(page.tags.unwrap_or_default());
        match next {
            Some(next) => path = next,
            None => return (started.elapsed(), tags),
        }
    }
}

fn check(label: &str, tags: &[String], count: usize) {
    let unique: BTreeSet<&String> = tags.iter().collect();
    assert_eq!(
        (tags.len(), unique.len()),
        (count, count),
        "{label}: every tag exactly once"
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cpu}, {cores} cores, load average {}", load.join(" "))
}

#[tokio::main]
async fn main() {
    let count = env_usize("BENCH_TAGS", 10_000);
    let rounds = env_usize("BENCH_ROUNDS", 7);
    assert!(rounds >= 5, "BENCH_ROUNDS={rounds}: at least 5");
    let binary =
        std::env::var("FLOTILLA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_flotilla").into());

    // Both are killed on drop, also when a panic unwinds through here.
    let registry = TestRegistry::start(RegistryKind::Distribution, RegistryAuth::Anonymous).await;
    let pusher = Pusher::for_registry(&registry);
    let pushing = Instant::now();
    push_tags(&pusher, count).await;
    println!(
        "pushed one image under {count} tags in {:.1} s",
        pushing.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let server = ServerProcess::start(&binary, &data);
    let mut client = RegistryServiceClient::new(server.channel().await);
    client
        .create_registry(pb::CreateRegistryRequest {
            registry: Some(pb::Registry {
                id: "bench".into(),
                provider: "oci".into(),
                endpoint: registry.url.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("CreateRegistry");
    let http = reqwest::Client::new();

    // Warm-up: one walk each (connections, token caches, the registry's own caches).
    let (cold_flotilla, tags) = flotilla_walk(&mut client).await;
    check("Flotilla", &tags, count);
    let expected: Vec<String> = (0..count).map(tag).collect();
    assert_eq!(tags, expected, "Flotilla: in the registry's order");
    let (cold_direct, tags) = direct_walk(&http, &registry.url).await;
    check("direct", &tags, count);
    let rss_warm = memory(&server);

    let (mut flotilla, mut direct, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, tags) = flotilla_walk(&mut client).await;
        check("Flotilla", &tags, count);
        let (b, tags) = direct_walk(&http, &registry.url).await;
        check("direct", &tags, count);
        println!(
            "  round {}: Flotilla {:>8.1} ms   direct {:>8.1} ms   ratio {:.2}",
            round + 1,
            ms(a),
            ms(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
        flotilla.push(ms(a));
        direct.push(ms(b));
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
    }
    let (lowest, highest) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let ratio = median(&ratios);
    println!(
        "ListTags of {count} tags, pages of {PAGE}, {rounds} alternating rounds ({})",
        machine()
    );
    println!(
        "  warm-up walk: Flotilla {:.1} ms, direct {:.1} ms",
        ms(cold_flotilla),
        ms(cold_direct)
    );
    println!("  Flotilla p50 {:>8.1} ms", median(&flotilla));
    println!("  direct   p50 {:>8.1} ms", median(&direct));
    println!(
        "  Flotilla/direct: median {ratio:.2} (min {lowest:.2}, max {highest:.2}); target ≤ 1.25: {}",
        if ratio <= 1.25 { "met" } else { "MISSED" }
    );
    println!("  server after warm-up: {rss_warm}");
    println!("  server at the end:    {}", memory(&server));
}
