//! Per-cluster leases on SQLite and on a real PostgreSQL: racing claimers never share a cluster,
//! only the holder renews, an expired lease is taken over, replicas rebalance to their fair
//! share when one joins and take everything when one dies, and detaching a cluster leaves no
//! lease or status row behind.

use flotilla_test_support as support;

use std::{collections::BTreeMap, time::Duration};

use flotilla::{
    service::clusters::ownership::ClusterOwnership,
    store::{ClusterStatusRow, Store},
};
use support::{db::TestDb, rows::imported_cluster};

const CLUSTERS: usize = 10;

fn ids() -> Vec<String> {
    (0..CLUSTERS).map(|n| format!("c{n:02}")).collect()
}

async fn seed(store: &Store) {
    for id in ids() {
        store.insert_cluster(&imported_cluster(&id)).await.unwrap();
    }
}

/// Owner of each cluster per the lease rows.
async fn owners(store: &Store) -> BTreeMap<String, String> {
    store
        .cluster_leases()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.cluster_id, l.owner))
        .collect()
}

fn count(owners: &BTreeMap<String, String>, owner: &str) -> usize {
    owners.values().filter(|o| *o == owner).count()
}

async fn claim_renew_takeover(store: &Store) {
    seed(store).await;
    let a = store
        .claim_cluster_leases("a", 1_000, 4_000, 6)
        .await
        .unwrap();
    assert_eq!(a, ids()[..6]);
    let b = store
        .claim_cluster_leases("b", 1_000, 4_000, 10)
        .await
        .unwrap();
    assert_eq!(b, ids()[6..], "only the free ones");
    assert!(
        store
            .claim_cluster_leases("a", 2_000, 5_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "live leases are never claimed"
    );
    // Only the holder renews.
    assert_eq!(
        store.renew_cluster_leases("a", 9_000).await.unwrap(),
        ids()[..6]
    );
    // b's leases expired at 4 000; a's hold until 9 000.
    let retaken = store
        .claim_cluster_leases("c", 5_000, 8_000, 10)
        .await
        .unwrap();
    assert_eq!(retaken, ids()[6..], "expired leases are taken over");
    assert!(
        store
            .renew_cluster_leases("b", 9_000)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store
        .claim_cluster_leases("c", 10_000, 20_000, 10)
        .await
        .unwrap();
    assert_eq!(taken, ids(), "after a's leases ran out, c holds everything");
    assert!(
        store
            .renew_cluster_leases("a", 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    let rows = owners(store).await;
    assert_eq!(count(&rows, "c"), CLUSTERS, "{rows:?}");
    // Rebalancing gives a lease back; only its holder can.
    assert_eq!(
        store
            .release_cluster_leases("a", &ids()[..3])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .release_cluster_leases("c", &ids()[..3])
            .await
            .unwrap(),
        3
    );
    assert_eq!(owners(store).await.len(), CLUSTERS - 3);
}

async fn racing_claimers_never_share(url: &str) {
    let store = Store::open(url).await.unwrap();
    seed(&store).await;
    // Separate pools, as separate processes have.
    let (one, two) = (
        Store::open(url).await.unwrap(),
        Store::open(url).await.unwrap(),
    );
    let claim = |store: Store, owner: &'static str| async move {
        let mut got = Vec::new();
        for _ in 0..10 {
            got.extend(
                store
                    .claim_cluster_leases(owner, 1_000, 60_000, 2)
                    .await
                    .unwrap(),
            );
        }
        got
    };
    let (a, b) = tokio::join!(claim(one, "a"), claim(two, "b"));
    let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
    all.sort();
    assert_eq!(
        all,
        ids(),
        "each cluster claimed exactly once: a={a:?} b={b:?}"
    );
    let rows = owners(&store).await;
    for id in &a {
        assert_eq!(rows[id], "a");
    }
    for id in &b {
        assert_eq!(rows[id], "b");
    }
}

/// Replica rounds with a 1 s lease: a joiner gets its fair share, a dead replica's clusters
/// move to the survivor within two leases, a clean exit hands back at once.
async fn replicas_rebalance_and_take_over(store: &Store) {
    seed(store).await;
    let lease = Duration::from_secs(1);
    let a = ClusterOwnership::new(store.clone(), "replica-a".into(), lease);
    let b = ClusterOwnership::new(store.clone(), "replica-b".into(), lease);
    let first = a.round().await.unwrap();
    assert_eq!((first.acquired.len(), first.share), (CLUSTERS, CLUSTERS));
    assert!(a.owns("c00") && a.owns("c09"));

    // b joins: fair share is 5 each; a gives back 5, b takes them.
    let joined = b.round().await.unwrap();
    assert_eq!((joined.live_replicas, joined.acquired.len()), (2, 0));
    let shed = a.round().await.unwrap();
    assert_eq!(shed.released, ids()[5..]);
    assert!(!a.owns("c09"), "a released c09");
    let took = b.round().await.unwrap();
    assert_eq!(took.acquired, ids()[5..]);
    let rows = owners(store).await;
    assert_eq!(
        (count(&rows, "replica-a"), count(&rows, "replica-b")),
        (5, 5),
        "{rows:?}"
    );

    // a dies (stops renewing): within two leases b owns everything.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    b.round().await.unwrap();
    let rows = owners(store).await;
    assert_eq!(count(&rows, "replica-b"), CLUSTERS, "{rows:?}");
    assert_eq!(b.owned(), ids());
    assert!(
        !a.owns("c00"),
        "a's own view lapses with its unrenewed lease"
    );
    // a comes back: it learns it lost its clusters and takes its share again from b.
    let back = a.round().await.unwrap();
    assert_eq!(back.lost, ids()[..5]);
    b.round().await.unwrap();
    a.round().await.unwrap();
    let rows = owners(store).await;
    assert_eq!(
        (count(&rows, "replica-a"), count(&rows, "replica-b")),
        (5, 5),
        "{rows:?}"
    );

    // A clean exit hands back at once: no lease of b remains, a takes them on its next round.
    store.retire_replica("replica-b").await.unwrap();
    assert_eq!(count(&owners(store).await, "replica-b"), 0);
    a.round().await.unwrap();
    assert_eq!(count(&owners(store).await, "replica-a"), CLUSTERS);
}

async fn detach_leaves_nothing_behind(store: &Store) {
    seed(store).await;
    store
        .claim_cluster_leases("a", 1_000, 60_000, 10)
        .await
        .unwrap();
    let status = |id: &str| ClusterStatusRow {
        cluster_id: id.into(),
        observed_by: "a".into(),
        status: r#"{"reachable":true}"#.into(),
        observed_time: 1_000,
    };
    for id in ids() {
        assert!(store.save_cluster_status(&status(&id)).await.unwrap());
    }
    assert!(store.delete_cluster("c03").await.unwrap());
    let leases = owners(store).await;
    assert!(!leases.contains_key("c03"), "{leases:?}");
    assert_eq!(leases.len(), CLUSTERS - 1);
    let statuses: Vec<String> = store
        .cluster_statuses()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.cluster_id)
        .collect();
    assert!(!statuses.contains(&"c03".to_string()));
    assert_eq!(statuses.len(), CLUSTERS - 1);
    // A probe that finishes after the detach writes nothing.
    assert!(!store.save_cluster_status(&status("c03")).await.unwrap());
    assert_eq!(store.cluster_statuses().await.unwrap().len(), CLUSTERS - 1);
}

#[tokio::test]
async fn sqlite_claim_renew_takeover() {
    claim_renew_takeover(&TestDb::sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_claim_renew_takeover() {
    claim_renew_takeover(&TestDb::postgres().await.store).await;
}

#[tokio::test]
async fn sqlite_racing_claimers_never_share() {
    let db = TestDb::sqlite().await;
    racing_claimers_never_share(&db.url).await;
}

#[tokio::test]
async fn postgres_racing_claimers_never_share() {
    let db = TestDb::postgres().await;
    racing_claimers_never_share(&db.url).await;
}

#[tokio::test]
async fn sqlite_replicas_rebalance_and_take_over() {
    replicas_rebalance_and_take_over(&TestDb::sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_replicas_rebalance_and_take_over() {
    replicas_rebalance_and_take_over(&TestDb::postgres().await.store).await;
}

#[tokio::test]
async fn sqlite_detach_leaves_nothing_behind() {
    detach_leaves_nothing_behind(&TestDb::sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_detach_leaves_nothing_behind() {
    detach_leaves_nothing_behind(&TestDb::postgres().await.store).await;
}
