//! Stored secrets are bound to their owner: a cluster pointed at another cluster's (or a
//! credential's) secret, or a secret row given another row's ciphertext, fails to open — the
//! rows are edited straight in the SQLite file with the `sqlite3` tool. Rows sealed before the
//! binding still open and are re-sealed at start. `flotilla rotate-master-key` (the real binary)
//! run beside a live server: the server seals new secrets under the new key within one probe
//! interval, and concurrent rotations lose no key.

use flotilla_test_support as support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use flotilla::{
    app::{self, RunningServer},
    config::Settings,
    crypto::{AAD_ROW_ID, KeySource, Keyring, SecretOwner},
    proto::{
        self as pb, cluster_service_client::ClusterServiceClient,
        node_service_client::NodeServiceClient,
    },
    service::secrets::sealed::open_row,
    store::SecretRow,
};
use support::{
    db::sqlite,
    kubeconfigs,
    lifecycle::create_credential,
    server::{ADMIN_TOKEN, AuthedChannel, Bearer},
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

fn settings_in(dir: &Path) -> Settings {
    let mut settings = Settings::for_data_dir(dir);
    settings.bootstrap_token = Some(zeroize::Zeroizing::new(ADMIN_TOKEN.to_string()));
    settings.rate_limit = None;
    settings.peer_rate_limit = None;
    settings.probe_interval = Duration::from_secs(1);
    settings
}

async fn start(dir: &Path) -> (RunningServer, AuthedChannel) {
    let server = app::start(settings_in(dir)).await.expect("server starts");
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let authed =
        InterceptedService::new(channel, Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}"))));
    (server, authed)
}

fn one(db: &Path, sql: &str) -> String {
    let rows = sqlite(db, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0].clone()
}

async fn import(channel: &AuthedChannel, id: &str, kubeconfig: String) {
    ClusterServiceClient::new(channel.clone())
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
        .unwrap_or_else(|s| panic!("import {id}: {s:?}"));
}

/// Node names of a cluster, through the server (which opens the cluster's secret to connect).
async fn nodes(channel: &AuthedChannel, id: &str) -> Result<Vec<String>, tonic::Status> {
    let reply = NodeServiceClient::new(channel.clone())
        .list_nodes(pb::ListNodesRequest {
            cluster_id: id.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut names: Vec<String> = reply.nodes.into_iter().map(|n| n.name).collect();
    names.sort();
    Ok(names)
}

fn second() -> String {
    kubeconfigs::admin_kubeconfig_at(&kubeconfigs::second_server())
}

fn secret_of(db: &Path, cluster: &str) -> String {
    one(
        db,
        &format!("SELECT access_secret_id FROM clusters WHERE id = '{cluster}'"),
    )
}

// Tests here run multi-threaded: a test blocks a thread on sqlite3 or the CLI while the in-process server
// (on this runtime) may hold the write lock and needs a thread to finish its transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_moved_between_owners_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flotilla.db");
    let (server, channel) = start(dir.path()).await;
    import(&channel, "prod", kubeconfigs::admin_kubeconfig()).await;
    import(&channel, "control", second()).await;
    // A cluster can be imported once, so the victims are copies of `control`'s rows, each with a
    // secret row of its own, and never used before the attack (no cached client).
    for id in ["stage-a", "stage-b", "stage-c"] {
        sqlite(
            &db,
            &format!(
                "INSERT INTO secrets (id, key_id, nonce, ciphertext, create_time, update_time, aad_version) \
                 SELECT 'sec-{id}', key_id, nonce, ciphertext, create_time, update_time, aad_version \
                 FROM secrets WHERE id = (SELECT access_secret_id FROM clusters WHERE id = 'control'); \
                 INSERT INTO clusters (id, display_name, labels, provider, region, vendor_cluster_id, \
                 state, endpoint, kube_system_uid, access_secret_id, warnings, version, create_time, \
                 update_time) SELECT '{id}', '{id}', labels, provider, region, vendor_cluster_id, \
                 state, endpoint, NULL, 'sec-{id}', warnings, version, create_time, update_time \
                 FROM clusters WHERE id = 'control'"
            ),
        );
    }
    create_credential(
        channel.clone(),
        "ali",
        "ack",
        ("LTAIexample", "secret-value"),
    )
    .await;
    let prod_secret = secret_of(&db, "prod");
    let prod_nodes = nodes(&channel, "prod").await.expect("prod");
    let second_nodes = nodes(&channel, "control").await.expect("control");
    assert_ne!(prod_nodes, second_nodes, "two different clusters");

    // 1. stage-a points at prod's secret (the version bump makes the server reconnect).
    sqlite(
        &db,
        &format!(
            "UPDATE clusters SET access_secret_id = '{prod_secret}', version = version + 1 \
             WHERE id = 'stage-a'"
        ),
    );
    // 2. stage-b's own row gets prod's ciphertext.
    let stage_b = secret_of(&db, "stage-b");
    sqlite(
        &db,
        &format!(
            "UPDATE secrets SET (key_id, nonce, ciphertext, aad_version) = \
             (SELECT key_id, nonce, ciphertext, aad_version FROM secrets WHERE id = '{prod_secret}') \
             WHERE id = '{stage_b}'; \
             UPDATE clusters SET version = version + 1 WHERE id = 'stage-b'"
        ),
    );
    // 3. stage-c points at the credential's secret.
    sqlite(
        &db,
        "UPDATE clusters SET access_secret_id = (SELECT secret_id FROM credentials WHERE id = 'ali'), \
         version = version + 1 WHERE id = 'stage-c'",
    );
    for id in ["stage-a", "stage-b", "stage-c"] {
        match nodes(&channel, id).await {
            Ok(names) => panic!("{id} opened another owner's secret and listed {names:?}"),
            Err(status) => {
                assert_eq!(status.code(), Code::Internal, "{id}: {status:?}");
                assert!(
                    !status.message().contains("BEGIN"),
                    "no key material: {status:?}"
                );
            }
        }
    }
    assert_eq!(
        nodes(&channel, "control").await.expect("control"),
        second_nodes
    );
    assert_eq!(nodes(&channel, "prod").await.expect("prod"), prod_nodes);
    server.shutdown().await.unwrap();
}

fn keyring(dir: &Path) -> Keyring {
    Keyring::load(KeySource::File {
        path: dir.join("master.keys"),
        create: false,
    })
    .expect("key file")
}

fn secret_row(db: &Path, id: &str) -> SecretRow {
    let row = one(
        db,
        &format!(
            "SELECT key_id, hex(nonce), hex(ciphertext), aad_version FROM secrets WHERE id = '{id}'"
        ),
    );
    let cols: Vec<&str> = row.split('|').collect();
    SecretRow {
        id: id.into(),
        key_id: cols[0].into(),
        nonce: hex::decode(cols[1]).unwrap(),
        ciphertext: hex::decode(cols[2]).unwrap(),
        create_time: 0,
        update_time: 0,
        aad_version: cols[3].parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sealed_before_the_binding_still_open_and_are_bound_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flotilla.db");
    let (server, channel) = start(dir.path()).await;
    import(&channel, "legacy", second()).await;
    let expected = nodes(&channel, "legacy").await.expect("nodes");
    server.shutdown().await.unwrap();

    // Rewrite the row as a server before the binding would have: associated data = row id.
    let ring = keyring(dir.path());
    let id = secret_of(&db, "legacy");
    let bound = secret_row(&db, &id);
    assert_eq!(bound.aad_version, 2);
    let plain =
        open_row(&ring, SecretOwner::Cluster("legacy"), &bound).expect("opens as its owner");
    let old = ring.seal(&id, plain.expose()).unwrap();
    sqlite(
        &db,
        &format!(
            "UPDATE secrets SET nonce = X'{}', ciphertext = X'{}', aad_version = {AAD_ROW_ID} \
             WHERE id = '{id}'",
            hex::encode(&old.nonce),
            hex::encode(&old.ciphertext)
        ),
    );
    let legacy = secret_row(&db, &id);
    assert_eq!(legacy.aad_version, 1);
    assert_eq!(
        open_row(&ring, SecretOwner::Cluster("legacy"), &legacy)
            .expect("a legacy row still opens")
            .expose(),
        plain.expose()
    );

    // A new start binds it (new nonce, version 2) and the cluster keeps working.
    let (server, channel) = start(dir.path()).await;
    let rebound = secret_row(&db, &id);
    assert_eq!(rebound.aad_version, 2);
    assert_ne!(rebound.nonce, legacy.nonce);
    assert_eq!(nodes(&channel, "legacy").await.expect("nodes"), expected);
    assert_eq!(
        one(&db, "SELECT COUNT(*) FROM secrets WHERE aad_version <> 2"),
        "0"
    );
    server.shutdown().await.unwrap();
}

fn key_ids(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("master.keys"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn rotate(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["rotate-master-key", "--data-dir"])
        .arg(dir)
        .env("FLOTILLA_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rotate-master-key")
}

/// Every secret opens for the owner that points at it, with the keys in the file now.
fn every_secret_opens(dir: &Path, db: &Path) -> usize {
    let ring = keyring(dir);
    let owners = sqlite(
        db,
        "SELECT id, access_secret_id FROM clusters WHERE access_secret_id IS NOT NULL",
    );
    for line in &owners {
        let (cluster, secret) = line.split_once('|').unwrap();
        open_row(
            &ring,
            SecretOwner::Cluster(cluster),
            &secret_row(db, secret),
        )
        .unwrap_or_else(|e| panic!("{cluster}'s secret does not open: {e}"));
    }
    owners.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_uses_a_rotated_key_within_one_probe_interval() {
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("flotilla.db");
    let (server, channel) = start(dir.path()).await;
    import(&channel, "before", second()).await;
    let first_key = key_ids(dir.path());
    assert_eq!(first_key.len(), 1);

    let out = rotate(dir.path()).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = key_ids(dir.path());
    let new_key = keys.last().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        one(
            &db,
            &format!(
                "SELECT key_id FROM secrets WHERE id = '{}'",
                secret_of(&db, "before")
            )
        ),
        new_key,
        "the CLI re-sealed the existing secret"
    );

    // One probe interval (1 s) and a little: the server now seals under the new key.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    import(&channel, "after", kubeconfigs::admin_kubeconfig()).await;
    assert_eq!(
        one(
            &db,
            &format!(
                "SELECT key_id FROM secrets WHERE id = '{}'",
                secret_of(&db, "after")
            )
        ),
        new_key,
        "a secret written after the rotation is under the new key"
    );
    assert!(!nodes(&channel, "after").await.expect("after").is_empty());
    assert!(!nodes(&channel, "before").await.expect("before").is_empty());

    // Two rotations at once: the lock serialises them, so both keys stay in the file and every
    // secret ends up under the last one.
    let (a, b) = (rotate(dir.path()), rotate(dir.path()));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let keys = key_ids(dir.path());
    assert_eq!(keys.len(), 4, "no key was lost: {keys:?}");
    assert_eq!(
        sqlite(&db, "SELECT DISTINCT key_id FROM secrets"),
        [keys.last().unwrap().clone()]
    );
    assert_eq!(every_secret_opens(dir.path(), &db), 2);
    server.shutdown().await.unwrap();
}
