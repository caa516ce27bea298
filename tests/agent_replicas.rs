//! Import by agent with two replicas on one PostgreSQL: the replica an agent's tunnel is
//! attached to owns that cluster (its lease row names it within a round, rebalancing never moves
//! it away while the tunnel is up), every replica answers GetCluster with the live status, and
//! when the agent comes back through the other replica the lease follows it. Owners are read
//! from the lease rows in the database; reachability from each replica's GetCluster.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::{
    proto::{self as pb, cluster_service_client::ClusterServiceClient},
    store::Store,
};
use support::{
    agent::AgentProcess,
    agent_setup::{kubeconfig, register_on},
    db::TestDb,
    replica::{Replica, master_key},
    server::AuthedChannel,
};

/// Seconds a replica holds a cluster's lease; rounds run every third of it.
const LEASE: u64 = 2;
/// Clusters waiting for agents that never come, so each replica's fair share is real.
const WAITING: usize = 3;

async fn owner(store: &Store, cluster_id: &str) -> Option<String> {
    store
        .cluster_leases()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.cluster_id == cluster_id)
        .map(|l| l.owner)
}

async fn reachable(channel: AuthedChannel, cluster_id: &str) -> bool {
    ClusterServiceClient::new(channel)
        .get_cluster(pb::GetClusterRequest {
            cluster_id: cluster_id.into(),
        })
        .await
        .expect("GetCluster")
        .into_inner()
        .cluster
        .and_then(|c| c.status)
        .is_some_and(|s| s.reachable)
}

/// Polls until the cluster's lease names a replica whose name starts with `name` and both
/// replicas say it is reachable.
async fn wait_owned_by(
    store: &Store,
    replicas: [&Replica; 2],
    name: &str,
    agent: &AgentProcess,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let holder = owner(store, "edge-r").await.unwrap_or_default();
        if holder.starts_with(name)
            && reachable(replicas[0].channel().await, "edge-r").await
            && reachable(replicas[1].channel().await, "edge-r").await
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "edge-r not owned by {name} and reachable after {limit:?} (lease: {holder:?})\n\
             agent log:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_replica_holding_the_tunnel_owns_the_cluster() {
    let db = TestDb::postgres().await;
    let store = db.store.clone();
    let key = master_key();
    let settings = [
        ("FLOTILLA_CLUSTER_LEASE", LEASE.to_string()),
        ("FLOTILLA_AGENT_KEEPALIVE_MS", "2000".to_string()),
        ("FLOTILLA_PROBE_INTERVAL", "30".to_string()),
    ];
    let binary = env!("CARGO_BIN_EXE_flotilla");
    let a = Replica::start(binary, "replica-a", &db.url, &key, &settings);
    let b = Replica::start(binary, "replica-b", &db.url, &key, &settings);
    let token = register_on(a.channel().await, "edge-r", &a.url())
        .await
        .registration_token;
    for n in 0..WAITING {
        register_on(a.channel().await, &format!("waiting-{n}"), &a.url()).await;
    }

    // Wait for the leases to settle, then dial the replica that does NOT own edge-r.
    let lease = Duration::from_secs(LEASE);
    let deadline = Instant::now() + 6 * lease;
    let first_owner = loop {
        let leases = store.cluster_leases().await.unwrap();
        let on_b = leases
            .iter()
            .filter(|l| l.owner.starts_with("replica-b"))
            .count();
        if leases.len() == WAITING + 1 && on_b == (WAITING + 1).div_ceil(2) {
            break owner(&store, "edge-r").await.expect("edge-r has a lease");
        }
        assert!(Instant::now() < deadline, "leases not spread: {leases:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (dialed, dialed_name, other, other_name) = if first_owner.starts_with("replica-a") {
        (&b, "replica-b", &a, "replica-a")
    } else {
        (&a, "replica-a", &b, "replica-b")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agent = AgentProcess::start(
        binary.as_ref(),
        &dialed.url(),
        &token,
        dir.path(),
        &kubeconfig(),
    );
    let took = wait_owned_by(
        &store,
        [&a, &b],
        dialed_name,
        &agent,
        2 * lease + Duration::from_secs(10),
    )
    .await;
    println!("the tunnel's replica owned edge-r {took:?} after the agent started");

    // Over three more leases, rebalancing leaves it there though that replica is over its share.
    tokio::time::sleep(3 * lease).await;
    let holder = owner(&store, "edge-r").await.unwrap_or_default();
    assert!(holder.starts_with(dialed_name), "moved to {holder}");
    assert!(reachable(other.channel().await, "edge-r").await);

    // The agent comes back through the other replica: the lease follows the tunnel.
    agent.restart_towards(&other.url());
    let took = wait_owned_by(
        &store,
        [&a, &b],
        other_name,
        &agent,
        2 * lease + Duration::from_secs(15),
    )
    .await;
    println!("the lease followed the agent to the other replica in {took:?}");
    assert!(
        agent.settled_counters().await.sessions >= 1,
        "{}",
        agent.log()
    );
}
