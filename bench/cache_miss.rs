//! What a request costs on a replica that does not own the cluster. Two replicas (the release
//! binary, `flotilla serve` processes) on one PostgreSQL; the first owns the one cluster (lease
//! row checked), so only it keeps the cluster's watch cache. ListPods of every pod of one
//! namespace (BENCH_PODS pods, default 2000, spread over the KWOK nodes), paged at 500, three
//! ways in alternating rounds:
//!
//! - **owner**: ListPods on the owner, answered from its watch cache;
//! - **non-owner, direct**: ListPods on the other replica, which lists straight from Kubernetes
//!   (what Flotilla does);
//! - **forwarded**: ListPods sent to a forwarding hop that relays it, over one HTTP/2 connection,
//!   to the owner. The hop is a small tonic `WorkloadService` in this benchmark process (only
//!   ListPods; it decodes and re-encodes each message as a forwarding replica would): the
//!   design not chosen, measured so the choice is informed.
//!
//! Also: kube-apiserver's pod LIST counter around each kind of walk (from its metrics), to show
//! which walks reach Kubernetes; and WatchEvents: the upstream event watches that five streams
//! of one namespace open on the owner (one shared) and on the non-owner (one each).
//!
//!     scripts/kube-env up; export FLOTILLA_TEST_POSTGRES_URL=$(scripts/postgres up)
//!     cargo build --release && cargo bench --bench cache_miss
//!
//! Environment: `BENCH_PODS` (default 2000), `BENCH_ROUNDS` (default 7, at least 5),
//! `FLOTILLA_BIN`. The namespace is deleted at the end. Not a timed test: it prints numbers for
//! docs/production/replicas.md.

use flotilla_test_support as support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb,
    cluster_service_client::ClusterServiceClient,
    log_stream_client::LogStreamClient,
    workload_service_client::WorkloadServiceClient,
    workload_service_server::{WorkloadService, WorkloadServiceServer},
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use support::{
    db::TestDb,
    kube::poll_until,
    kubeconfigs::admin_kubeconfig,
    pod_fleet::pod,
    process::release_binary,
    replica::{Replica, master_key},
    server::AuthedChannel,
    watch_oracle::{open_watches, try_metric},
};
use tonic::{Request, Response, Status, transport::Server};

const PAGE: i32 = 500;
const CLUSTER: &str = "bench-cluster";

type Workloads = WorkloadServiceClient<AuthedChannel>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?}")))
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The hop a forwarding design adds: receives ListPods and relays it to the owner with the
/// caller's credentials, over one kept-open HTTP/2 connection.
struct ForwardToOwner {
    owner: WorkloadServiceClient<tonic::transport::Channel>,
}

#[tonic::async_trait]
impl WorkloadService for ForwardToOwner {
    async fn list_pods(
        &self,
        request: Request<pb::ListPodsRequest>,
    ) -> Result<Response<pb::ListPodsResponse>, Status> {
        let authorization = request.metadata().get("authorization").cloned();
        let mut forwarded = Request::new(request.into_inner());
        if let Some(value) = authorization {
            forwarded.metadata_mut().insert("authorization", value);
        }
        self.owner.clone().list_pods(forwarded).await
    }
}

async fn start_forwarder(owner: tonic::transport::Channel) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = WorkloadServiceServer::new(ForwardToOwner {
        owner: WorkloadServiceClient::new(owner),
    })
    .max_decoding_message_size(64 << 20)
    .max_encoding_message_size(64 << 20);
    tokio::spawn(
        Server::builder()
            .add_service(service)
            // TCP_NODELAY as Flotilla's own listener has it: without it, delayed ACKs add tens
            // of milliseconds to each relayed page.
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    addr
}

/// Pages through the namespace; the walk's time and the pods seen.
async fn walk(client: &mut Workloads, namespace: &str) -> (Duration, usize) {
    let started = Instant::now();
    let (mut token, mut seen) = (String::new(), 0);
    loop {
        let reply = client
            .list_pods(pb::ListPodsRequest {
                cluster_id: CLUSTER.into(),
                namespace: namespace.into(),
                page_size: PAGE,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("ListPods: {s:?}"))
            .into_inner();
        seen += reply.pods.len();
        if reply.next_page_token.is_empty() {
            return (started.elapsed(), seen);
        }
        token = reply.next_page_token;
    }
}

async fn pod_lists(kube: &kube::Client) -> u64 {
    let lists = (
        "apiserver_request_total",
        &[("resource", "pods"), ("subresource", ""), ("verb", "LIST")][..],
    );
    try_metric(kube, lists).await.map_or(0, |t| t as u64)
}

struct Series {
    label: &'static str,
    client: Workloads,
    times: Vec<Duration>,
    lists: u64,
}

impl Series {
    fn sorted(&self) -> Vec<Duration> {
        let mut t = self.times.clone();
        t.sort();
        t
    }
    fn median(&self) -> Duration {
        let t = self.sorted();
        t[t.len() / 2]
    }
}

async fn create_fleet(kube: &kube::Client, namespace: &str, count: usize) {
    let namespaces = Api::<Namespace>::all(kube.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": namespace, "labels": {"flotilla.dev/bench": "cache_miss"}},
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let accounts =
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(kube.clone(), namespace);
    poll_until(
        "the namespace's default ServiceAccount",
        Duration::from_secs(60),
        || async { matches!(accounts.get_opt("default").await, Ok(Some(_))) },
    )
    .await;
    let pods = Api::<Pod>::namespaced(kube.clone(), namespace);
    futures::stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let pods = &pods;
            async move {
                let mut p = pod(i);
                p.metadata.namespace = Some(namespace.to_string());
                for attempt in 0..5u64 {
                    match pods.create(&PostParams::default(), &p).await {
                        Ok(_) => return,
                        Err(kube::Error::Api(e)) if e.code == 409 => return,
                        Err(e) if attempt < 4 => {
                            eprintln!("  pod {i}: {e}; retrying");
                            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                        }
                        Err(e) => panic!("creating pod {i}: {e}"),
                    }
                }
            }
        })
        .await;
    poll_until(
        "every pod Running (is KWOK up?)",
        Duration::from_secs(600),
        || async {
            let list = pods.list(&ListParams::default()).await.expect("list");
            list.items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count()
                >= count
        },
    )
    .await;
}

async fn delete_fleet(kube: &kube::Client, namespace: &str) {
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let _ = Api::<Pod>::namespaced(kube.clone(), namespace)
        .delete_collection(&now, &ListParams::default())
        .await;
    let _ = Api::<Namespace>::all(kube.clone())
        .delete(namespace, &DeleteParams::default())
        .await;
}

/// Upstream event watches that `streams` WatchEvents streams of `namespace` open on `replica`.
async fn event_watches_for(
    kube: &kube::Client,
    channel: AuthedChannel,
    namespace: &str,
    streams: usize,
) -> i64 {
    let before = open_watches(kube, "events").await;
    let mut open = Vec::new();
    for _ in 0..streams {
        let mut stream = LogStreamClient::new(channel.clone())
            .watch_events(pb::WatchEventsRequest {
                cluster_id: CLUSTER.into(),
                namespace: namespace.into(),
                ..Default::default()
            })
            .await
            .expect("WatchEvents")
            .into_inner();
        // Through the snapshot: the upstream watch is open by then.
        while let Some(Ok(message)) = stream.next().await {
            if message.r#type() == pb::WatchEventsResponseType::SnapshotEnd {
                break;
            }
        }
        open.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = open_watches(kube, "events").await;
    drop(open);
    during - before
}

#[tokio::main]
async fn main() {
    let pods = env_usize("BENCH_PODS", 2000);
    let rounds = env_usize("BENCH_ROUNDS", 7).max(5);
    let binary = release_binary();
    let kube = support::kube::client().await;
    let db = TestDb::postgres().await;
    let key = master_key();
    let namespace = format!("bench-cache-miss-{}", std::process::id());
    println!("cache_miss: {pods} pods in {namespace}, {rounds} rounds, binary {binary}");

    let owner = Replica::start(&binary, "owner", &db.url, &key, &[]);
    ClusterServiceClient::new(owner.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: CLUSTER.into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");
    poll_until(
        "the owner to hold the cluster's lease",
        Duration::from_secs(30),
        || async {
            db.store
                .cluster_leases()
                .await
                .expect("leases")
                .iter()
                .any(|l| l.owner.starts_with("owner-"))
        },
    )
    .await;
    let other = Replica::start(&binary, "other", &db.url, &key, &[]);
    let forwarder = start_forwarder(owner.raw_channel().await).await;
    let forwarded_channel = support::process::connect(&format!("http://{forwarder}")).await;
    let bearer =
        support::server::Bearer::new(Some(&format!("Bearer {}", support::server::ADMIN_TOKEN)));
    let forwarded: Workloads = WorkloadServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(forwarded_channel, bearer),
    )
    .max_decoding_message_size(64 << 20);

    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        create_fleet(&kube, &namespace, pods).await;
        let mut series = [
            Series {
                label: "owner (watch cache)",
                client: WorkloadServiceClient::new(owner.channel().await)
                    .max_decoding_message_size(64 << 20),
                times: Vec::new(),
                lists: 0,
            },
            Series {
                label: "non-owner (direct from Kubernetes)",
                client: WorkloadServiceClient::new(other.channel().await)
                    .max_decoding_message_size(64 << 20),
                times: Vec::new(),
                lists: 0,
            },
            Series {
                label: "forwarded (hop to the owner)",
                client: forwarded,
                times: Vec::new(),
                lists: 0,
            },
        ];
        // Warm up: the owner's cache syncs; each path runs once. The owner answers every pod
        // while its cache syncs too (direct pages), so synced means a whole walk that the API
        // server saw no pod LIST for.
        poll_until(
            "the owner's cache to serve every pod without a LIST",
            Duration::from_secs(120),
            || {
                let mut client = series[0].client.clone();
                let (namespace, kube) = (namespace.clone(), kube.clone());
                async move {
                    let before = pod_lists(&kube).await;
                    let served = walk(&mut client, &namespace).await.1 == pods;
                    served && pod_lists(&kube).await == before
                }
            },
        )
        .await;
        for s in series.iter_mut() {
            assert_eq!(walk(&mut s.client, &namespace).await.1, pods, "{}", s.label);
        }
        for round in 0..rounds {
            // Alternate the order, so neither path always runs first after a pause.
            let order: Vec<usize> = if round % 2 == 0 { vec![0, 1, 2] } else { vec![2, 1, 0] };
            for i in order {
                let before = pod_lists(&kube).await;
                let (took, seen) = walk(&mut series[i].client, &namespace).await;
                let after = pod_lists(&kube).await;
                assert_eq!(seen, pods, "{}", series[i].label);
                series[i].times.push(took);
                series[i].lists += after.saturating_sub(before);
            }
        }
        let base = ms(series[0].median());
        println!(
            "\nListPods of {pods} pods (page {PAGE}, {} pages), {rounds} alternating rounds, warm (the owner's cache synced first):",
            pods.div_ceil(PAGE as usize)
        );
        println!(
            "  {:<36} {:>10} {:>20} {:>8} {:>18}",
            "path", "median ms", "min-max ms", "ratio", "API-server LISTs"
        );
        for s in &series {
            let t = s.sorted();
            println!(
                "  {:<36} {:>10.1} {:>9.1} - {:<8.1} {:>7.2}x {:>10.1}/walk",
                s.label,
                ms(s.median()),
                ms(t[0]),
                ms(t[t.len() - 1]),
                ms(s.median()) / base,
                s.lists as f64 / rounds as f64
            );
        }
        let on_owner = event_watches_for(&kube, owner.channel().await, &namespace, 5).await;
        let on_other = event_watches_for(&kube, other.channel().await, &namespace, 5).await;
        println!(
            "\nWatchEvents, 5 streams of one namespace: upstream event watches opened: owner {on_owner}, non-owner {on_other}"
        );
    }))
    .await;
    delete_fleet(&kube, &namespace).await;
    drop((owner, other));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
