//! Two replicas (`flotilla serve` processes) on one PostgreSQL share ten clusters through
//! per-cluster leases; one is killed with SIGKILL while vendor operations are in flight and a
//! WatchEvents follower is attached to it. Within two lease periods the survivor owns every
//! cluster (lease rows in the database) and shows fresh status for each, finishes every
//! operation without a duplicate vendor call (the ACK simulator's own counters), and the
//! follower resumes on the survivor with its resume_token and receives every event created
//! meanwhile (compared with the events the API server itself lists).

use flotilla_test_support as support;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant, SystemTime},
};

use flotilla::{
    proto::{
        self as pb, cluster_service_client::ClusterServiceClient,
        log_stream_client::LogStreamClient,
    },
    store::Store,
};
use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, PostParams};
use support::{
    db::TestDb,
    kube::{self as kenv, TestNamespace},
    kubeconfigs,
    lifecycle::{cluster_spec, create_credential, get_cluster, poll_operation, state},
    process::connect,
    replica::{Replica, master_key},
    server::{ADMIN_TOKEN, AuthedChannel},
    sim::ack::AckSim,
};
use tonic::Streaming;

/// Seconds; the lease every replica holds a cluster for.
const LEASE: u64 = 2;
/// Clusters made through the vendor (in flight when the replica dies).
const CREATED: usize = 8;
/// The first API server's cluster, followed for events. Its id sorts first, so the replica
/// that owned everything keeps it when it sheds its extra clusters to the newcomer.
const EVENTS_CLUSTER: &str = "a-events";

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Cluster id -> owning replica, from the lease rows.
async fn owners(store: &Store) -> BTreeMap<String, String> {
    store
        .cluster_leases()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.cluster_id, l.owner))
        .collect()
}

/// Polls `check` every 100 ms until it returns `Some`; panics with `what` after `limit`.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn import(channel: AuthedChannel, id: &str, kubeconfig: String) {
    ClusterServiceClient::new(channel)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: id.into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfig.into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("import {id}: {e}"));
}

/// Nodes of the first API server, from the API server itself.
async fn k8s_nodes() -> usize {
    kube::Api::<k8s_openapi::api::core::v1::Node>::all(kenv::client().await)
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items
        .len()
}

async fn create_event(ns: &TestNamespace, name: &str) {
    let event: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": ns.name()},
        "reason": "Failover", "message": format!("{name} happened"), "type": "Normal",
        "firstTimestamp": "2026-01-01T00:00:01Z",
        "lastTimestamp": "2026-01-01T00:00:01Z",
        "source": {"component": "flotilla-test"}
    }))
    .expect("event");
    ns.api::<Event>()
        .create(&PostParams::default(), &event)
        .await
        .expect("create event");
}

async fn next(stream: &mut Streaming<pb::WatchEventsResponse>) -> pb::WatchEventsResponse {
    tokio::time::timeout(Duration::from_secs(15), stream.message())
        .await
        .expect("a message in time")
        .expect("stream ok")
        .expect("stream open")
}

#[tokio::test]
async fn survivor_takes_over_clusters_operations_and_event_followers() {
    let started = Instant::now();
    let lease = Duration::from_secs(LEASE);
    let sim = AckSim::start(kubeconfigs::admin_kubeconfig()).await;
    // Long enough that every create is still provisioning when the replica dies.
    sim.control
        .set_delays(Duration::from_secs(8), Duration::from_millis(300));
    let db = TestDb::postgres().await;
    let master_key = master_key();
    let ns = TestNamespace::create(&kenv::client().await, "failover").await;

    // The replica to be killed starts alone and takes everything on.
    let settings = [
        ("FLOTILLA_ACK_ENDPOINT", sim.endpoint()),
        ("FLOTILLA_OPERATION_POLL_INTERVAL_MS", "200".to_string()),
        ("FLOTILLA_OPERATION_LEASE_SECONDS", LEASE.to_string()),
        ("FLOTILLA_CLUSTER_LEASE", LEASE.to_string()),
        ("FLOTILLA_PROBE_INTERVAL", "30".to_string()),
    ];
    let binary = env!("CARGO_BIN_EXE_flotilla");
    let mut doomed = Replica::start(binary, "replica-k", &db.url, &master_key, &settings);
    let channel = doomed.channel().await;
    import(
        channel.clone(),
        EVENTS_CLUSTER,
        kubeconfigs::admin_kubeconfig(),
    )
    .await;
    import(
        channel.clone(),
        "b-second",
        kubeconfigs::admin_kubeconfig_at(&kubeconfigs::second_server()),
    )
    .await;
    let key = sim.credentials();
    let credential = create_credential(channel.clone(), "ack-key", "ack", (&key.0, &key.1)).await;
    let mut operations = Vec::new();
    for n in 0..CREATED {
        let id = format!("c-{n:02}");
        let op = ClusterServiceClient::new(channel.clone())
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
            .expect("operation");
        operations.push(op.id);
    }
    until(
        "every create to reach the vendor",
        Duration::from_secs(20),
        || async { (sim.control.count("CreateCluster") >= CREATED).then_some(()) },
    )
    .await;

    // The survivor joins: the clusters are split between the two, from the lease rows.
    let survivor = Replica::start(binary, "replica-s", &db.url, &master_key, &settings);
    let survivor_channel = survivor.channel().await;
    let all: BTreeSet<String> = [EVENTS_CLUSTER.to_string(), "b-second".into()]
        .into_iter()
        .chain((0..CREATED).map(|n| format!("c-{n:02}")))
        .collect();
    let spread = until(
        "the clusters to be spread over both replicas",
        Duration::from_secs(15),
        || async {
            let rows = owners(&db.store).await;
            let on_k = rows
                .values()
                .filter(|o| o.starts_with("replica-k-"))
                .count();
            let on_s = rows
                .values()
                .filter(|o| o.starts_with("replica-s-"))
                .count();
            (rows.len() == all.len() && on_k == 5 && on_s == 5).then_some(rows)
        },
    )
    .await;
    let doomed_id = spread[EVENTS_CLUSTER].clone();
    assert!(doomed_id.starts_with("replica-k-"), "{spread:?}");
    // Every cluster imported or made on the doomed replica was probed by its owner.
    let statuses = db.store.cluster_statuses().await.unwrap();
    let probed: BTreeSet<String> = statuses.iter().map(|s| s.cluster_id.clone()).collect();
    assert_eq!(probed, all, "a status row for every cluster");

    // The survivor never probed the doomed replica's clusters, yet answers with their live
    // status: the owner's observations reach it through the database.
    let seen_from_survivor = until("the owner's status on the other replica", 3 * lease, || {
        let channel = survivor_channel.clone();
        async move {
            let status = get_cluster(channel, EVENTS_CLUSTER).await.ok()?.status?;
            (status.reachable && status.last_probe_time.is_some()).then_some(status)
        }
    })
    .await;
    let nodes = k8s_nodes().await;
    assert_eq!(
        seen_from_survivor.node_count as usize, nodes,
        "{seen_from_survivor:?}"
    );

    // A follower of the events of the doomed replica's cluster.
    let request = pb::WatchEventsRequest {
        cluster_id: EVENTS_CLUSTER.into(),
        namespace: ns.name().into(),
        ..Default::default()
    };
    let mut follower = LogStreamClient::new(channel.clone())
        .watch_events(request.clone())
        .await
        .expect("watch")
        .into_inner();
    while next(&mut follower).await.r#type() != pb::WatchEventsResponseType::SnapshotEnd {}
    let mut delivered_before = BTreeSet::new();
    let mut token = String::new();
    for n in 0..3 {
        create_event(&ns, &format!("before-{n}")).await;
        let message = next(&mut follower).await;
        assert_eq!(message.r#type(), pb::WatchEventsResponseType::Added);
        delivered_before.insert(message.event.expect("event").name);
        token = message.resume_token;
    }

    let mut unfinished = 0;
    for id in &operations {
        let op = poll_operation(survivor.raw_channel().await, ADMIN_TOKEN, id)
            .await
            .expect("operation");
        if state(&op) != pb::OperationState::Succeeded {
            unfinished += 1;
        }
    }
    assert!(
        unfinished > 0,
        "the kill must land while operations are in flight"
    );

    // SIGKILL, then events the follower misses while it has no server.
    let killed_at = now_millis();
    let kill = Instant::now();
    doomed.kill();
    drop(follower);
    for n in 0..5 {
        create_event(&ns, &format!("during-{n}")).await;
    }

    // Within two lease periods the survivor holds every lease.
    let taken = until("the survivor to own every cluster", 3 * lease, || async {
        let rows = owners(&db.store).await;
        (rows.len() == all.len() && rows.values().all(|o| o.starts_with("replica-s-")))
            .then_some(kill.elapsed())
    })
    .await;
    eprintln!(
        "takeover of {} clusters took {taken:?} (lease {lease:?})",
        all.len()
    );
    assert!(
        taken <= 2 * lease,
        "takeover took {taken:?}, more than two leases"
    );
    assert!(
        !owners(&db.store).await.values().any(|o| *o == doomed_id),
        "no lease left with the dead replica"
    );

    // ...and shows a status it probed after the kill for each cluster it took over (its own
    // were probed when it took them on, and again every probe interval).
    let taken_over: Vec<&String> = spread
        .iter()
        .filter(|(_, owner)| **owner == doomed_id)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(taken_over.len(), 5);
    let deadline = Instant::now() + 2 * lease;
    loop {
        let mut stale = Vec::new();
        for id in &taken_over {
            let cluster = get_cluster(survivor_channel.clone(), id)
                .await
                .expect("GetCluster");
            let status = cluster.status.unwrap_or_default();
            let probed = status
                .last_probe_time
                .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
            if probed < killed_at {
                stale.push(((*id).clone(), probed - killed_at, status.reachable));
            }
        }
        if stale.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stale status on the survivor (id, probed minus kill time in ms, reachable): {stale:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The follower resumes on the survivor with its last token: every event the API server has
    // that it had not seen arrives, none it had seen repeats.
    let events_now: BTreeSet<String> = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter_map(|e| e.metadata.name)
        .collect();
    let missed: BTreeSet<String> = events_now.difference(&delivered_before).cloned().collect();
    assert_eq!(missed.len(), 5, "{events_now:?}");
    let mut resumed = LogStreamClient::new(survivor_channel.clone())
        .watch_events(pb::WatchEventsRequest {
            resume_token: token,
            ..request.clone()
        })
        .await
        .expect("resume on the survivor")
        .into_inner();
    let mut received = BTreeSet::new();
    while received != missed {
        let message = next(&mut resumed).await;
        assert_eq!(
            message.r#type(),
            pb::WatchEventsResponseType::Added,
            "only the missed events, no snapshot: {message:?}"
        );
        let name = message.event.expect("event").name;
        assert!(
            !delivered_before.contains(&name),
            "{name} was delivered before the kill"
        );
        received.insert(name);
    }

    // Every operation finishes on the survivor; the vendor saw each create exactly once.
    for id in &operations {
        until(
            &format!("operation {id} to succeed"),
            Duration::from_secs(30),
            || {
                let url = survivor.url();
                async move {
                    let op = poll_operation(connect(&url).await, ADMIN_TOKEN, id).await?;
                    match state(&op) {
                        pb::OperationState::Succeeded => Some(()),
                        pb::OperationState::Failed | pb::OperationState::Cancelled => {
                            panic!("operation ended badly: {op:#?}")
                        }
                        _ => None,
                    }
                }
            },
        )
        .await;
    }
    assert_eq!(
        sim.control.count("CreateCluster"),
        CREATED,
        "one create call per cluster"
    );
    assert_eq!(
        sim.clusters_created(),
        CREATED,
        "no duplicate cluster at the vendor"
    );

    // Detaching on the survivor leaves no lease or status row behind.
    ClusterServiceClient::new(survivor_channel.clone())
        .delete_cluster(pb::DeleteClusterRequest {
            cluster_id: "b-second".into(),
            ..Default::default()
        })
        .await
        .expect("detach");
    assert!(!owners(&db.store).await.contains_key("b-second"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !db.store
            .cluster_statuses()
            .await
            .unwrap()
            .iter()
            .any(|s| s.cluster_id == "b-second")
    );
    drop(survivor);
    ns.cleanup().await;
    eprintln!("failover test took {:?}", started.elapsed());
}
