//! The operation lease protocol on SQLite and on a real PostgreSQL: one claimer per operation,
//! only the lease holder saves, an expired lease is taken over.

use flotilla_test_support as support;

use std::{collections::BTreeMap, sync::Arc};

use flotilla::store::{OperationRow, Store};
use support::db::TestDb;

fn operation(id: &str, next_run_time: i64) -> OperationRow {
    OperationRow {
        id: id.into(),
        resource: "clusters/c1".into(),
        cluster_id: "c1".into(),
        kind: "CREATE_CLUSTER".into(),
        state: "PENDING".into(),
        provider: "ack".into(),
        request_id: Some(format!("req-{id}")),
        requested_by: "admin".into(),
        detail: "{}".into(),
        lease_owner: None,
        lease_expire_time: None,
        next_run_time,
        version: 1,
        create_time: 1,
        update_time: 1,
        request_token: "tok-a".into(),
        request_hash: Some("h".into()),
    }
}

async fn claims_are_exclusive(store: &Store) {
    for n in 0..20 {
        store
            .insert_operation(&operation(&format!("op-{n:02}"), 100))
            .await
            .unwrap();
    }
    store
        .insert_operation(&operation("op-later", 10_000))
        .await
        .unwrap();
    // Two replicas claim concurrently: every due operation goes to exactly one of them.
    let claim = |owner: &'static str| {
        let store = store.clone();
        async move {
            let mut got = Vec::new();
            while let Some(row) = store.claim_operation(owner, 1_000, 60_000).await.unwrap() {
                assert_eq!(row.lease_owner.as_deref(), Some(owner));
                got.push(row.id);
            }
            got
        }
    };
    let (a, b) = tokio::join!(claim("a"), claim("b"));
    let mut all: Vec<_> = a.iter().chain(&b).cloned().collect();
    all.sort();
    let expected: Vec<_> = (0..20).map(|n| format!("op-{n:02}")).collect();
    assert_eq!(
        all, expected,
        "each due operation claimed once; the later one not at all"
    );

    // Only the holder saves.
    let mut row = store
        .get_operation(&a.first().or(b.first()).unwrap().clone())
        .await
        .unwrap()
        .unwrap();
    let holder = row.lease_owner.clone().unwrap();
    let other = if holder == "a" { "b" } else { "a" };
    row.state = "RUNNING".into();
    assert!(!store.save_operation(&row, other).await.unwrap());
    assert!(store.save_operation(&row, &holder).await.unwrap());
    assert_eq!(
        store.get_operation(&row.id).await.unwrap().unwrap().state,
        "RUNNING"
    );

    // A lease that ran out is taken over by another replica; the old holder can no longer save.
    let taken = store
        .claim_operation("c", 70_000, 130_000)
        .await
        .unwrap()
        .expect("expired lease");
    assert_eq!(taken.lease_owner.as_deref(), Some("c"));
    assert!(!store.save_operation(&taken, "a").await.unwrap());
    assert!(!store.save_operation(&taken, "b").await.unwrap());
    // Terminal operations are never claimed.
    let mut done = taken.clone();
    done.state = "SUCCEEDED".into();
    done.lease_owner = None;
    assert!(store.save_operation(&done, "c").await.unwrap());
    assert!(
        store
            .get_operation("op-later")
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .is_none()
    );
}

/// Replicas (each with its own store and connections) claiming on a multi-threaded runtime,
/// released together by a barrier before every claim so their claim statements overlap, for
/// many rounds: every operation is claimed exactly once.
async fn racing_replicas_claim_each_operation_once(url: &str) {
    const REPLICAS: usize = 8;
    const ROUNDS: usize = 12;
    const PER_ROUND: usize = 12;
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(Store::open(url).await.expect("open a replica's store"));
    }
    let setup = replicas[0].clone();
    let mut claimed: Vec<(String, String)> = Vec::new();
    for round in 0..ROUNDS {
        // Due now; earlier rounds' leases run far beyond every later `now`.
        let now = 1_000 + round as i64;
        for n in 0..PER_ROUND {
            setup
                .insert_operation(&operation(&format!("r{round:02}-op{n:02}"), now))
                .await
                .unwrap();
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(REPLICAS));
        // Every replica tries this many times: enough for all if each try claims at most one.
        let tries = PER_ROUND / REPLICAS + 2;
        let tasks: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(r, store)| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    let owner = format!("replica-{r}");
                    let mut got = Vec::new();
                    for _ in 0..tries {
                        barrier.wait().await;
                        if let Some(row) = store
                            .claim_operation(&owner, now, 1_000_000_000)
                            .await
                            .unwrap()
                        {
                            assert_eq!(row.lease_owner.as_deref(), Some(owner.as_str()));
                            got.push((row.id, owner.clone()));
                        }
                    }
                    got
                })
            })
            .collect();
        for task in tasks {
            claimed.extend(task.await.expect("claimer"));
        }
    }
    let mut by_id: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, owner) in &claimed {
        by_id.entry(id).or_default().push(owner);
    }
    let twice: Vec<_> = by_id
        .iter()
        .filter(|(_, owners)| owners.len() > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "{} operations claimed more than once, such as {:?}",
        twice.len(),
        &twice[..twice.len().min(3)]
    );
    assert_eq!(
        by_id.len(),
        ROUNDS * PER_ROUND,
        "every operation was claimed"
    );
    // The store agrees: each row's lease holder is the one replica that claimed it.
    for (id, owners) in &by_id {
        let row = setup.get_operation(id).await.unwrap().unwrap();
        assert_eq!(row.lease_owner.as_deref(), Some(owners[0]), "{id}");
    }
}

async fn request_ids_are_unique(store: &Store) {
    store
        .insert_operation(&operation("first", 1))
        .await
        .unwrap();
    let mut dup = operation("second", 1);
    dup.request_id = Some("req-first".into());
    let err = store.insert_operation(&dup).await.unwrap_err();
    assert!(
        matches!(err, flotilla::store::Error::AlreadyExists(_)),
        "{err:?}"
    );
    assert!(store.get_operation("second").await.unwrap().is_none());
    assert_eq!(
        store
            .operation_by_request_id("tok-a", "req-first")
            .await
            .unwrap()
            .map(|r| r.id),
        Some("first".to_string())
    );
    // Keys are per token: another token's same request_id is its own operation.
    let mut other = operation("third", 1);
    other.request_id = Some("req-first".into());
    other.request_token = "tok-b".into();
    store.insert_operation(&other).await.unwrap();
    assert_eq!(
        store
            .operation_by_request_id("tok-b", "req-first")
            .await
            .unwrap()
            .map(|r| r.id),
        Some("third".to_string())
    );
}

#[tokio::test]
async fn sqlite_claims_are_exclusive() {
    let db = TestDb::sqlite().await;
    claims_are_exclusive(&db.store).await;
}

#[tokio::test]
async fn postgres_claims_are_exclusive() {
    let db = TestDb::postgres().await;
    claims_are_exclusive(&db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sqlite_racing_replicas_claim_each_operation_once() {
    let db = TestDb::sqlite().await;
    racing_replicas_claim_each_operation_once(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn postgres_racing_replicas_claim_each_operation_once() {
    let db = TestDb::postgres().await;
    racing_replicas_claim_each_operation_once(&db.url).await;
}

#[tokio::test]
async fn sqlite_request_ids_are_unique() {
    let db = TestDb::sqlite().await;
    request_ids_are_unique(&db.store).await;
}

#[tokio::test]
async fn postgres_request_ids_are_unique() {
    let db = TestDb::postgres().await;
    request_ids_are_unique(&db.store).await;
}
