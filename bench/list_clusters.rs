//! ListClusters with 1,000 imported clusters (synthetic rows) over a real gRPC connection to the
//! release binary: p50/p99 latency for pages of 50 and 1000, and the server's RSS.
//!
//!     cargo build --release && cargo bench --bench list_clusters
//!
//! Not a timed test: it prints numbers for the issue notes.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use flotilla::{
    proto::{self as pb, cluster_service_client::ClusterServiceClient},
    store::{ClusterRow, Store},
};

const CLUSTERS: usize = 1000;
const REQUESTS: usize = 2000;
const TOKEN: &str = "flt_BenchAdmin-x3Lp8QwZ5mKr2TvNc7JbYd9HsG4fAe6Uq1Wo";

fn bearer(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let value = format!("Bearer {TOKEN}").parse().expect("ascii");
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

type Client = ClusterServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    >,
>;

fn row(i: usize) -> ClusterRow {
    ClusterRow {
        id: format!("cluster-{i:05}"),
        display_name: format!("Cluster {i}"),
        labels: format!(
            r#"{{"env":"{}","team":"t{}"}}"#,
            ["prod", "dev"][i % 2],
            i % 7
        ),
        provider: ["imported", "ack", "tke"][i % 3].into(),
        region: "cn-hangzhou".into(),
        vendor_cluster_id: format!("c{i:08x}"),
        state: "RUNNING".into(),
        endpoint: format!("https://10.{}.{}.1:6443", i / 250, i % 250),
        kube_system_uid: Some(format!("uid-{i}")),
        credential_id: None,
        access_secret_id: None,
        spec: None,
        warnings: "[]".into(),
        last_operation_id: None,
        version: 1,
        create_time: 1_700_000_000_000 + i as i64,
        update_time: 1_700_000_000_000 + i as i64,
        kube_access: "builtin".into(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn measure(client: &mut Client, page_size: i32, filter: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(REQUESTS);
    let mut token = String::new();
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let reply = client
            .list_clusters(pb::ListClustersRequest {
                page_size,
                page_token: token.clone(),
                filter: filter.into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        times.push(started.elapsed());
        token = reply.next_page_token;
    }
    times.sort();
    times
}

#[tokio::main]
async fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let binary =
        std::env::var("FLOTILLA_BIN").unwrap_or_else(|_| format!("{root}/target/release/flotilla"));
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let store = Store::open(&format!("sqlite://{}", data.join("flotilla.db").display()))
        .await
        .expect("store");
    for i in 0..CLUSTERS {
        store.insert_cluster(&row(i)).await.expect("insert");
    }
    drop(store);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut server = Command::new(&binary)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e} (run `cargo build --release` first)"));
    let url = format!("http://127.0.0.1:{port}");
    let channel = loop {
        match tonic::transport::Channel::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let mut client = ClusterServiceClient::with_interceptor(channel, bearer as fn(_) -> _);
    let rss_idle = rss_kib(server.id());
    measure(&mut client, 50, "").await; // warm up

    println!(
        "ListClusters, {CLUSTERS} clusters, {REQUESTS} sequential requests each, one HTTP/2 connection:"
    );
    for (label, size, filter) in [
        ("page of 50", 50, ""),
        ("page of 1000", 1000, ""),
        (
            "page of 50, label filter",
            50,
            "labels.env = prod AND provider = ack",
        ),
    ] {
        let times = measure(&mut client, size, filter).await;
        println!(
            "  {label:<28} p50 {:>8.2} ms   p99 {:>8.2} ms",
            percentile(&times, 0.50).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
        );
    }
    println!(
        "  server RSS: {:.1} MiB idle after start, {:.1} MiB after the runs",
        rss_idle as f64 / 1024.0,
        rss_kib(server.id()) as f64 / 1024.0
    );
    let _ = server.kill();
    let _ = server.wait();
}
