//! ListClusters with 1,000 imported clusters (synthetic rows) over a real gRPC connection to the
//! release binary: p50/p99 latency for pages of 50 and 1000 and with a label filter, the server's
//! CPU time per call (from /proc), and its RSS. Runs as committed from a fresh clone: the server
//! gets the tests' bootstrap token and no rate limit, and is killed even if this panics or is
//! killed (see `ServerProcess`). Unary throughput under load: `cargo bench --bench unary`.
//!
//!     cargo build --release && cargo bench --bench list_clusters
//!
//! Not a timed test: it prints numbers for the issue notes.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::{
    proto::{self as pb, cluster_service_client::ClusterServiceClient},
    store::{ClusterRow, Store},
};
use support::{
    process::{ServerProcess, release_binary},
    rows::imported_cluster,
    server::AuthedChannel,
};

const CLUSTERS: usize = 1000;
const REQUESTS: usize = 2000;

type Client = ClusterServiceClient<AuthedChannel>;

fn row(i: usize) -> ClusterRow {
    ClusterRow {
        display_name: format!("Cluster {i}"),
        labels: format!(
            r#"{{"env":"{}","team":"t{}"}}"#,
            ["prod", "dev"][i % 2],
            i % 7
        ),
        provider: ["imported", "ack", "tke"][i % 3].into(),
        region: "cn-hangzhou".into(),
        vendor_cluster_id: format!("c{i:08x}"),
        kube_system_uid: Some(format!("uid-{i}")),
        create_time: 1_700_000_000_000 + i as i64,
        update_time: 1_700_000_000_000 + i as i64,
        ..imported_cluster(&format!("cluster-{i:05}"))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn measure(
    client: &mut Client,
    page_size: i32,
    filter: &str,
    requests: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(requests);
    let mut token = String::new();
    for _ in 0..requests {
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
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let store = Store::open(&format!("sqlite://{}", data.join("flotilla.db").display()))
        .await
        .expect("store");
    for i in 0..CLUSTERS {
        store.insert_cluster(&row(i)).await.expect("insert");
    }
    drop(store);

    let server = ServerProcess::start(&release_binary(), &data);
    let mut client = ClusterServiceClient::new(server.channel().await);
    let rss_idle = server.rss_kib();
    measure(&mut client, 50, "", 200).await; // warm up

    println!(
        "ListClusters, {CLUSTERS} clusters, sequential requests following next_page_token, one \
         HTTP/2 connection; load average {}:",
        support::unary::load_average()
    );
    for (label, size, filter, requests) in [
        ("page of 50", 50, "", REQUESTS),
        ("page of 1000", 1000, "", REQUESTS / 10),
        (
            "page of 50, label filter",
            50,
            "labels.env = prod AND provider = ack",
            REQUESTS,
        ),
    ] {
        let cpu = support::unary::cpu_time(server.pid());
        let times = measure(&mut client, size, filter, requests).await;
        let cpu = support::unary::cpu_time(server.pid()).saturating_sub(cpu);
        println!(
            "  {label:<28} p50 {:>8.2} ms   p99 {:>8.2} ms   server CPU {:>7.1} µs/call \
             ({requests} requests)",
            percentile(&times, 0.50).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1e6 / requests as f64,
        );
    }
    println!(
        "  server RSS: {:.1} MiB idle after start, {:.1} MiB after the runs",
        rss_idle as f64 / 1024.0,
        server.rss_kib() as f64 / 1024.0
    );
}
