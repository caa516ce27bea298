//! The store suite, run against SQLite and a real PostgreSQL.

use flotilla_test_support as support;

use flotilla::store::{
    ClusterKey, ClusterOrder, ClusterQuery, ClusterRow, Error, SecretRow, Store,
};
use support::db::TestDb;

fn cluster(id: &str, provider: &str, create_time: i64) -> ClusterRow {
    ClusterRow {
        id: id.to_string(),
        display_name: format!("Cluster {id}"),
        labels: r#"{"env":"test"}"#.to_string(),
        provider: provider.to_string(),
        region: String::new(),
        vendor_cluster_id: String::new(),
        state: "RUNNING".to_string(),
        endpoint: format!("https://{id}.example:6443"),
        kube_system_uid: Some(format!("uid-{id}")),
        credential_id: None,
        access_secret_id: None,
        spec: None,
        warnings: "[]".to_string(),
        last_operation_id: None,
        version: 1,
        create_time,
        update_time: create_time,
        kube_access: "builtin".into(),
    }
}

async fn migrations_are_idempotent(db: TestDb) {
    let again = Store::open(&db.url).await.expect("reopen and re-migrate");
    again.ping().await.expect("ping");
}

async fn cluster_round_trip(db: TestDb) {
    let store = &db.store;
    let row = cluster("alpha", "imported", 1_000);
    store.insert_cluster(&row).await.expect("insert");
    assert_eq!(store.get_cluster("alpha").await.unwrap(), Some(row.clone()));
    assert_eq!(
        store.find_cluster_by_uid("uid-alpha").await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(store.get_cluster("missing").await.unwrap(), None);

    let dup_id = store.insert_cluster(&row).await.unwrap_err();
    assert!(matches!(dup_id, Error::AlreadyExists(_)), "{dup_id:?}");
    let mut same_uid = cluster("beta", "imported", 2_000);
    same_uid.kube_system_uid = row.kube_system_uid.clone();
    let dup_uid = store.insert_cluster(&same_uid).await.unwrap_err();
    assert!(matches!(dup_uid, Error::AlreadyExists(_)), "{dup_uid:?}");
    assert_eq!(
        store.get_cluster("beta").await.unwrap(),
        None,
        "nothing written"
    );

    assert!(store.delete_cluster("alpha").await.unwrap());
    assert!(!store.delete_cluster("alpha").await.unwrap());
    assert_eq!(store.get_cluster("alpha").await.unwrap(), None);
}

async fn optimistic_updates(db: TestDb) {
    let store = &db.store;
    store
        .insert_cluster(&cluster("gamma", "imported", 1))
        .await
        .unwrap();
    let mut row = store.get_cluster("gamma").await.unwrap().unwrap();
    row.display_name = "Renamed".into();
    row.update_time = 5;
    store.update_cluster(&row, 1).await.expect("first update");
    let stale = store.update_cluster(&row, 1).await.unwrap_err();
    assert!(matches!(stale, Error::Conflict), "{stale:?}");
    let stored = store.get_cluster("gamma").await.unwrap().unwrap();
    assert_eq!(stored.display_name, "Renamed");
    assert_eq!(stored.version, 2);
}

/// The clusters change count moves with every write to a cluster: through the store, and behind
/// its back by another program (the `sqlite3` tool, another PostgreSQL session). Reads leave it.
async fn change_count_moves_with_every_cluster_write(db: TestDb) {
    let store = &db.store;
    let count = || async { store.clusters_change_count().await.expect("count") };
    let start = count().await;
    store
        .insert_cluster(&cluster("delta", "imported", 1))
        .await
        .unwrap();
    let inserted = count().await;
    assert!(inserted > start, "insert: {start} -> {inserted}");
    store.get_cluster("delta").await.unwrap();
    store
        .list_clusters(&ClusterQuery::default(), 0, 50)
        .await
        .unwrap();
    assert_eq!(count().await, inserted, "reads leave it");

    let mut row = store.get_cluster("delta").await.unwrap().unwrap();
    row.display_name = "Renamed".into();
    store.update_cluster(&row, 1).await.unwrap();
    let updated = count().await;
    assert!(updated > inserted, "update: {inserted} -> {updated}");

    db.execute_elsewhere("UPDATE clusters SET display_name = 'Outside' WHERE id = 'delta'")
        .await;
    let outside = count().await;
    assert!(outside > updated, "outside update: {updated} -> {outside}");

    assert!(store.delete_cluster("delta").await.unwrap());
    let deleted = count().await;
    assert!(deleted > outside, "delete: {outside} -> {deleted}");
    db.execute_elsewhere(
        "INSERT INTO clusters (id, display_name, labels, provider, region, vendor_cluster_id, \
           state, endpoint, warnings, version, create_time, update_time, kube_access) VALUES \
           ('epsilon', 'E', '{}', 'imported', '', '', 'RUNNING', '', '[]', 1, 1, 1, 'builtin')",
    )
    .await;
    assert!(count().await > deleted, "outside insert");
}

async fn list_pages_filters_and_orders(db: TestDb) {
    let store = &db.store;
    for i in 0..120 {
        let provider = if i % 3 == 0 { "ack" } else { "imported" };
        let mut row = cluster(&format!("c{i:03}"), provider, 10_000 - i);
        if i % 10 == 0 {
            row.labels = r#"{"env":"prod","team":"core"}"#.into();
        }
        store.insert_cluster(&row).await.unwrap();
    }
    let all = ClusterQuery::default();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = store.list_clusters(&all, offset, 50).await.unwrap();
        assert_eq!(page.total, 120);
        if page.rows.is_empty() {
            break;
        }
        offset += page.rows.len() as i64;
        seen.extend(page.rows.into_iter().map(|r| r.id));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "default order is by id");
    assert_eq!(seen.len(), 120);

    let ack = ClusterQuery {
        provider: Some("ack".into()),
        ..Default::default()
    };
    let page = store.list_clusters(&ack, 0, 1000).await.unwrap();
    assert_eq!(page.total, 40);
    assert!(page.rows.iter().all(|r| r.provider == "ack"));

    let newest_first = ClusterQuery {
        order: ClusterOrder::CreateTime,
        descending: true,
        ..Default::default()
    };
    let page = store.list_clusters(&newest_first, 0, 3).await.unwrap();
    let ids: Vec<_> = page.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["c000", "c001", "c002"]);

    let prod_ack = ClusterQuery {
        provider: Some("ack".into()),
        labels: vec![("env".into(), Some("prod".into())), ("team".into(), None)],
        ..Default::default()
    };
    let page = store.list_clusters(&prod_ack, 1, 2).await.unwrap();
    assert_eq!(page.total, 4, "c000, c030, c060, c090");
    let ids: Vec<_> = page.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["c030", "c060"]);

    let scoped = ClusterQuery {
        ids: Some(vec!["c005".into(), "c007".into(), "nope".into()]),
        ..Default::default()
    };
    assert_eq!(store.list_clusters(&scoped, 0, 50).await.unwrap().total, 2);
}

/// Pages cut by key, in every order and direction: a walk returns exactly the rows of one
/// sorted list (ties broken by id, the expected order computed here from the inserted rows),
/// and rows deleted before the walk's position move nothing, where an offset would skip a row.
async fn keyed_pages_in_every_order(db: TestDb) {
    let store = &db.store;
    let mut rows = Vec::new();
    for i in 0..37 {
        let mut row = cluster(&format!("k{i:02}"), "imported", 1_000 + i / 4);
        // Ties in both the display name and the create time.
        row.display_name = format!("Cluster {}", (i * 7) % 5);
        // env=prod on half; a `tier` of two values on a third (any value is matched by key).
        let env = if i % 2 == 0 { "prod" } else { "test" };
        row.labels = match i % 6 {
            0 => format!(r#"{{"env":"{env}","tier":"gold"}}"#),
            3 => format!(r#"{{"env":"{env}","tier":"silver"}}"#),
            _ => format!(r#"{{"env":"{env}"}}"#),
        };
        store.insert_cluster(&row).await.unwrap();
        rows.push(row);
    }
    let orders = [
        ClusterOrder::Id,
        ClusterOrder::DisplayName,
        ClusterOrder::CreateTime,
    ];
    for order in orders {
        for descending in [false, true] {
            for (labels, needle) in [
                (vec![], ""),
                (
                    vec![("env".to_string(), Some("prod".to_string()))],
                    r#""env":"prod""#,
                ),
                (vec![("tier".to_string(), None)], r#""tier""#),
            ] {
                let mut expected: Vec<&ClusterRow> =
                    rows.iter().filter(|r| r.labels.contains(needle)).collect();
                expected.sort_by(|a, b| {
                    let key = |r: &ClusterRow| match order {
                        ClusterOrder::Id => (String::new(), 0, r.id.clone()),
                        ClusterOrder::DisplayName => (r.display_name.clone(), 0, r.id.clone()),
                        ClusterOrder::CreateTime => (String::new(), r.create_time, r.id.clone()),
                    };
                    let ordering = key(a).cmp(&key(b));
                    if descending {
                        ordering.reverse()
                    } else {
                        ordering
                    }
                });
                let expected: Vec<String> = expected.iter().map(|r| r.id.clone()).collect();
                let mut query = ClusterQuery {
                    order,
                    descending,
                    labels: labels.clone(),
                    ..Default::default()
                };
                let mut seen = Vec::new();
                loop {
                    let page = store.list_clusters(&query, 0, 5).await.unwrap();
                    assert_eq!(page.total, expected.len() as i64, "{order:?} {descending}");
                    let Some(last) = page.rows.last() else { break };
                    query.after = Some(ClusterKey::of(last, order));
                    seen.extend(page.rows.iter().map(|r| r.id.clone()));
                }
                assert_eq!(
                    seen, expected,
                    "{order:?} descending={descending} {labels:?}"
                );
            }
        }
    }

    // Deleting rows already returned moves nothing: the next page starts after the key.
    let mut query = ClusterQuery::default();
    let first = store.list_clusters(&query, 0, 10).await.unwrap();
    for row in &first.rows[..5] {
        store.delete_cluster(&row.id).await.unwrap();
    }
    query.after = Some(ClusterKey::of(first.rows.last().unwrap(), ClusterOrder::Id));
    let second = store.list_clusters(&query, 0, 10).await.unwrap();
    assert_eq!(second.rows[0].id, "k10");
    assert_eq!(second.total, 32, "the total counts what exists now");

    let bad = ClusterQuery {
        order: ClusterOrder::CreateTime,
        after: Some(ClusterKey {
            sort: "not a time".into(),
            id: "k10".into(),
        }),
        ..Default::default()
    };
    assert!(matches!(
        store.list_clusters(&bad, 0, 10).await,
        Err(Error::BadKey)
    ));
}

async fn secrets_and_foreign_keys(db: TestDb) {
    let store = &db.store;
    let secret = SecretRow {
        id: "s1".into(),
        key_id: "k1".into(),
        nonce: vec![0, 1, 2, 255],
        ciphertext: (0..=255).collect(),
        create_time: 1,
        update_time: 1,
        aad_version: 2,
    };
    store.insert_secret(&secret).await.unwrap();
    assert_eq!(store.get_secret("s1").await.unwrap(), Some(secret.clone()));
    assert!(
        !format!("{secret:?}").contains("255"),
        "Debug shows no bytes"
    );

    let mut dangling = cluster("delta", "imported", 1);
    dangling.access_secret_id = Some("no-such-secret".into());
    assert!(
        store.insert_cluster(&dangling).await.is_err(),
        "foreign keys are enforced"
    );
    assert_eq!(store.get_cluster("delta").await.unwrap(), None);

    let mut linked = cluster("epsilon", "imported", 1);
    linked.access_secret_id = Some("s1".into());
    store.insert_cluster(&linked).await.unwrap();
    assert!(
        store.delete_secret("s1").await.is_err(),
        "a secret in use cannot be deleted"
    );
    store.delete_cluster("epsilon").await.unwrap();
    assert!(store.delete_secret("s1").await.unwrap());
}

/// A label key and the value it must have (`None`: only present).
type LabelCondition<'a> = (&'a str, Option<&'a str>);

/// Label conditions match whole keys and values of the stored JSON, keys with any characters
/// included, and treat nothing in a key or value as SQL or as a JSON path; the expected ids are
/// read off the labels below.
async fn label_filters_match_whole_keys_and_values(db: TestDb) {
    let store = &db.store;
    for (id, labels) in [
        ("a", r#"{"env":"prod","app.kubernetes.io/name":"web"}"#),
        ("b", r#"{"env":"production"}"#),
        ("c", r#"{"team":"core"}"#),
        ("d", r#"{"env":""}"#),
        ("e", r#"{}"#),
        ("f", r#"{"Env":"prod"}"#),
        ("g", r#"{"a\"b":"1","%":"_","$.env":"prod"}"#),
    ] {
        let mut row = cluster(id, "imported", 1);
        row.labels = labels.into();
        store.insert_cluster(&row).await.unwrap();
    }
    let ids = |labels: &[(&str, Option<&str>)], offset: i64, limit: i64| {
        let query = ClusterQuery {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
            ..Default::default()
        };
        async move {
            let page = store.list_clusters(&query, offset, limit).await.unwrap();
            let ids: Vec<String> = page.rows.into_iter().map(|r| r.id).collect();
            (ids, page.total)
        }
    };
    let cases: &[(&[LabelCondition], &[&str])] = &[
        (&[("env", Some("prod"))], &["a"]),
        (&[("env", None)], &["a", "b", "d"]),
        (&[("env", Some(""))], &["d"]),
        (&[("app.kubernetes.io/name", Some("web"))], &["a"]),
        (&[("env", Some("prod")), ("team", None)], &[]),
        (&[("team", Some("core"))], &["c"]),
        (&[("Env", Some("prod"))], &["f"]),
        (&[("nope", None)], &[]),
        (&[("a\"b", Some("1"))], &["g"]),
        (&[("%", Some("_"))], &["g"]),
        (&[("%", Some("x"))], &[]),
        (&[("e%", None)], &[]),
        (&[("$.env", Some("prod"))], &["g"]),
        (&[("env' OR '1'='1", None)], &[]),
    ];
    for (labels, expected) in cases {
        let (found, total) = ids(labels, 0, 50).await;
        assert_eq!(found, *expected, "{labels:?}");
        assert_eq!(total, expected.len() as i64, "{labels:?}");
    }
    let (found, total) = ids(&[("env", None)], 1, 1).await;
    assert_eq!((found, total), (vec!["b".to_string()], 3), "a page inside");
    let (found, total) = ids(&[("env", None)], 5, 1).await;
    assert_eq!(
        (found, total),
        (vec![], 3),
        "a page past the end still counts"
    );

    // Label filters follow every change of the labels: an update, a delete, and a new cluster
    // under a deleted one's id; labels that are not a JSON object of strings match nothing.
    let mut b = store.get_cluster("b").await.unwrap().unwrap();
    b.labels = r#"{"env":"prod","tier":"gold"}"#.into();
    store.update_cluster(&b, b.version).await.unwrap();
    assert_eq!(ids(&[("env", Some("prod"))], 0, 50).await.0, ["a", "b"]);
    assert_eq!(
        ids(&[("env", Some("production"))], 0, 50).await.0,
        Vec::<String>::new()
    );
    store.delete_cluster("a").await.unwrap();
    let mut a = cluster("a", "imported", 1);
    a.labels = r#"{"env":"dev"}"#.into();
    store.insert_cluster(&a).await.unwrap();
    assert_eq!(ids(&[("env", Some("prod"))], 0, 50).await.0, ["b"]);
    assert_eq!(ids(&[("env", Some("dev"))], 0, 50).await.0, ["a"]);
    assert_eq!(
        ids(&[("app.kubernetes.io/name", None)], 0, 50).await.0,
        Vec::<String>::new()
    );
    for (id, labels) in [
        ("h", "not json"),
        ("i", r#"["env","prod"]"#),
        ("j", r#"{"env":1,"n":null}"#),
    ] {
        let mut row = cluster(id, "imported", 1);
        row.labels = labels.into();
        store.insert_cluster(&row).await.unwrap();
    }
    assert_eq!(
        ids(&[("env", None)], 0, 50).await,
        (vec!["a".into(), "b".into(), "d".into()], 3)
    );
    let mut h = store.get_cluster("h").await.unwrap().unwrap();
    h.labels = r#"{"env":"prod"}"#.into();
    store.update_cluster(&h, h.version).await.unwrap();
    assert_eq!(ids(&[("env", Some("prod"))], 0, 50).await.0, ["b", "h"]);

    // A full page counts the rest: from the label rows when one label is the whole filter,
    // through the clusters otherwise. Both follow the changes above (j's `env` is a number).
    assert_eq!(
        ids(&[("env", Some("prod"))], 0, 1).await,
        (vec!["b".into()], 2)
    );
    assert_eq!(ids(&[("env", None)], 0, 1).await, (vec!["a".into()], 4));
    assert_eq!(
        ids(&[("env", None), ("tier", Some("gold"))], 0, 1).await,
        (vec!["b".into()], 1)
    );
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::TestDb::sqlite().await).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::TestDb::postgres().await).await })*
        }
    };
}

suite!(
    migrations_are_idempotent,
    cluster_round_trip,
    optimistic_updates,
    change_count_moves_with_every_cluster_write,
    list_pages_filters_and_orders,
    keyed_pages_in_every_order,
    label_filters_match_whole_keys_and_values,
    secrets_and_foreign_keys,
);

/// A database whose clusters were stored before the `cluster_labels` table existed gets their
/// label rows when it is opened and migrated: the old state is made here with the `sqlite3` tool
/// (the migration undone by hand, a cluster written as an older server would), not through the
/// store under test.
#[tokio::test]
async fn sqlite_label_rows_are_filled_in_for_clusters_stored_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flotilla.db");
    let url = format!("sqlite://{}", path.display());
    drop(Store::open(&url).await.unwrap());
    support::db::sqlite(
        &path,
        "DROP TRIGGER cluster_labels_insert; DROP TRIGGER cluster_labels_update; \
         DROP TRIGGER cluster_labels_delete; DROP TABLE cluster_labels; \
         DELETE FROM __diesel_schema_migrations WHERE version = '20261204150001'; \
         INSERT INTO clusters (id, display_name, labels, provider, region, vendor_cluster_id, \
           state, endpoint, warnings, version, create_time, update_time, kube_access) VALUES \
           ('old', 'Old', '{\"env\":\"prod\",\"n\":1}', 'imported', '', '', 'RUNNING', '', \
            '[]', 1, 1, 1, 'builtin'), \
           ('odd', 'Odd', 'not json', 'imported', '', '', 'RUNNING', '', '[]', 1, 1, 1, \
            'builtin');",
    );
    let store = Store::open(&url).await.unwrap();
    let prod = ClusterQuery {
        labels: vec![("env".into(), Some("prod".into()))],
        ..Default::default()
    };
    let page = store.list_clusters(&prod, 0, 50).await.unwrap();
    let ids: Vec<_> = page.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((ids, page.total), (vec!["old"], 1));
    assert_eq!(
        support::db::sqlite(&path, "SELECT key, value, cluster_id FROM cluster_labels"),
        ["env|prod|old"],
        "only string labels of JSON objects get rows"
    );
}
