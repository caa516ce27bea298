//! Backups as an operator takes them: `flotilla backup` of the embedded SQLite database while
//! the server is writing, `flotilla restore` into a new data directory, and `pg_dump` /
//! `pg_restore` of a PostgreSQL database; then a server on the copy opens every secret (it
//! reaches the real clusters imported before the backup) and `flotilla rotate-master-key`
//! re-seals as many secrets as the raw table holds, none failing.

use flotilla_test_support as support;

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use flotilla::proto::{
    self as pb, admin_service_client::AdminServiceClient,
    cluster_service_client::ClusterServiceClient, node_service_client::NodeServiceClient,
};
use support::{
    db::{TestDb, postgres_admin_url},
    kubeconfigs,
    server::TestServer,
};

const FLOTILLA: &str = env!("CARGO_BIN_EXE_flotilla");

fn flotilla(args: &[&str]) -> std::process::Output {
    Command::new(FLOTILLA)
        .args(args)
        .env_remove("FLOTILLA_MASTER_KEY")
        .env_remove("FLOTILLA_DATABASE_URL")
        .env_remove("FLOTILLA_DATA_DIR")
        .output()
        .expect("run flotilla")
}

fn ok(args: &[&str]) -> String {
    let output = flotilla(args);
    assert!(
        output.status.success(),
        "flotilla {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Imports the two real test clusters as `a` and `b`.
async fn import_real_clusters(server: &TestServer) {
    let mut clusters = ClusterServiceClient::new(server.channel().await);
    for (id, api_server) in [
        ("a", kubeconfigs::server()),
        ("b", kubeconfigs::second_server()),
    ] {
        clusters
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: id.into(),
                source: Some(pb::import_cluster_request::Source::Kubeconfig(
                    pb::KubeconfigSource {
                        kubeconfig: kubeconfigs::admin_kubeconfig_at(&api_server).into_bytes(),
                        context: String::new(),
                    },
                )),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("import {id}: {s:?}"));
    }
}

/// Node names of both clusters as the server reads them (with each cluster's stored
/// credential).
async fn node_names(server: &TestServer) -> Vec<Vec<String>> {
    let mut nodes = NodeServiceClient::new(server.channel().await);
    let mut out = Vec::new();
    for id in ["a", "b"] {
        let mut names: Vec<String> = nodes
            .list_nodes(pb::ListNodesRequest {
                cluster_id: id.into(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("ListNodes on {id}: {s:?}"))
            .into_inner()
            .nodes
            .into_iter()
            .map(|n| n.name)
            .collect();
        names.sort();
        assert!(!names.is_empty(), "cluster {id} has nodes");
        out.push(names);
    }
    out
}

/// `re-encrypted N secret(s)` from `flotilla rotate-master-key` (which fails if any secret
/// did not open).
fn resealed(output: &str) -> usize {
    output
        .split("re-encrypted ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("rotate-master-key said {output:?}"))
}

fn copy_key_file(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy the master key file");
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[tokio::test]
async fn sqlite_backup_while_writing_restores_into_a_server_that_opens_every_secret() {
    let server = TestServer::start().await;
    let data = server.settings.data_dir.clone();
    import_real_clusters(&server).await;
    let nodes_before = node_names(&server).await;

    // Writes keep coming while the backup runs: tokens (and their audit rows).
    let writing = Arc::new(AtomicBool::new(true));
    let created = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (writing, created) = (writing.clone(), created.clone());
        let mut admin = AdminServiceClient::new(server.channel().await);
        tokio::spawn(async move {
            let mut i = 0;
            while writing.load(Ordering::Acquire) {
                admin
                    .create_api_token(pb::CreateApiTokenRequest {
                        name: format!("load-{i}"),
                        role: pb::Role::Viewer as i32,
                        ..Default::default()
                    })
                    .await
                    .expect("create token");
                i += 1;
                created.store(i, Ordering::Release);
            }
        })
    };
    while created.load(Ordering::Acquire) < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let backups = tempfile::tempdir().expect("tempdir");
    let file = backups.path().join("flotilla-backup.db");
    let before = created.load(Ordering::Acquire);
    let said = {
        let (data, file) = (data.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            ok(&[
                "backup",
                "--data-dir",
                &data.display().to_string(),
                &file.display().to_string(),
            ])
        })
        .await
        .expect("backup")
    };
    let after = created.load(Ordering::Acquire);
    // Some more, so that the backup certainly raced with writers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    writing.store(false, Ordering::Release);
    writer.await.expect("writer");
    assert!(said.contains("master key"), "{said}");

    let mode = std::fs::metadata(&file)
        .expect("backup file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "backup file mode");
    assert_eq!(
        support::db::sqlite(&file, "PRAGMA integrity_check"),
        ["ok"],
        "the sqlite3 tool finds the copy sound"
    );
    let in_backup: usize = support::db::sqlite(
        &file,
        "SELECT count(*) FROM api_tokens WHERE name LIKE 'load-%'",
    )[0]
    .parse()
    .expect("count");
    assert!(
        (before..=after).contains(&in_backup),
        "the copy holds {in_backup} load tokens: a snapshot between {before} and {after}"
    );
    let raw_secrets: usize = support::db::sqlite(&file, "SELECT count(*) FROM secrets")[0]
        .parse()
        .expect("count");
    assert_eq!(raw_secrets, 2, "one secret per imported cluster");

    // Not over an existing file without --force.
    let again = flotilla(&[
        "backup",
        "--data-dir",
        &data.display().to_string(),
        &file.display().to_string(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    // Not while the server runs on the database.
    let refused = flotilla(&[
        "restore",
        "--data-dir",
        &data.display().to_string(),
        &file.display().to_string(),
    ]);
    assert!(!refused.status.success(), "restore over a serving database");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("a server is running"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A new data directory: the backup and the master key file.
    let restored_dir = tempfile::tempdir().expect("tempdir");
    let new_data = restored_dir.path().join("data");
    std::fs::create_dir(&new_data).expect("mkdir");
    std::fs::set_permissions(&new_data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let without_key = ok(&[
        "restore",
        "--data-dir",
        &new_data.display().to_string(),
        &file.display().to_string(),
    ]);
    assert!(
        without_key.contains("WARNING: no master keys"),
        "{without_key}"
    );
    copy_key_file(&data.join("master.keys"), &new_data.join("master.keys"));
    server.shutdown().await;

    let restored = TestServer::start_with(|s| {
        s.data_dir = new_data.clone();
        s.database_url = format!("sqlite://{}", new_data.join("flotilla.db").display());
        s.master_key_file = None;
    })
    .await;
    // The admin token of the original authenticates (its hash came along), and every cluster
    // answers through its restored, decrypted credential.
    assert_eq!(node_names(&restored).await, nodes_before);
    restored.shutdown().await;

    let rotated = ok(&[
        "rotate-master-key",
        "--data-dir",
        &new_data.display().to_string(),
    ]);
    assert_eq!(resealed(&rotated), raw_secrets, "{rotated}");
}

/// A database on the test PostgreSQL made by this test, dropped at the end.
struct ScratchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create() -> ScratchDatabase {
        let admin = postgres_admin_url();
        let name = format!("flotilla_restore_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin).await.expect("connect");
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database (the test role needs CREATEDB)");
        let base = admin.rsplit_once('/').expect("database in URL").0;
        ScratchDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }

    async fn drop_it(self) {
        let mut conn = AsyncPgConnection::establish(&self.admin)
            .await
            .expect("connect");
        conn.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await
        .expect("drop database");
    }
}

fn pg_tool(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install postgresql-client)"));
    assert!(
        output.status.success(),
        "{tool} {}: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn postgres_dump_and_restore_keeps_every_secret_openable() {
    let db = TestDb::postgres().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let key_file: PathBuf = keys.path().join("master.keys");
    let server = TestServer::start_with(|s| {
        s.database_url = db.url.clone();
        s.master_key_file = Some(key_file.clone());
    })
    .await;
    import_real_clusters(&server).await;
    let nodes_before = node_names(&server).await;

    let dump_dir = tempfile::tempdir().expect("tempdir");
    let dump = dump_dir.path().join("flotilla.dump");
    let dump_path = dump.display().to_string();
    pg_tool(
        "pg_dump",
        &["--format=custom", "--file", &dump_path, &db.url],
    );
    server.shutdown().await;

    let copy = ScratchDatabase::create().await;
    pg_tool(
        "pg_restore",
        &[
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            &copy.url,
            &dump_path,
        ],
    );
    let raw_secrets: usize = pg_tool(
        "psql",
        &["-tA", "-c", "SELECT count(*) FROM secrets", &copy.url],
    )
    .trim()
    .parse()
    .expect("count");
    assert_eq!(raw_secrets, 2, "one secret per imported cluster");

    let restored = TestServer::start_with(|s| {
        s.database_url = copy.url.clone();
        s.master_key_file = Some(key_file.clone());
    })
    .await;
    assert_eq!(node_names(&restored).await, nodes_before);
    restored.shutdown().await;

    let rotated = ok(&[
        "rotate-master-key",
        "--database-url",
        &copy.url,
        "--master-key-file",
        &key_file.display().to_string(),
    ]);
    assert_eq!(resealed(&rotated), raw_secrets, "{rotated}");
    // The admin token of the original came along in the dump.
    let tokens = pg_tool(
        "psql",
        &["-tA", "-c", "SELECT count(*) FROM api_tokens", &copy.url],
    );
    assert!(tokens.trim().parse::<usize>().expect("count") >= 1);
    copy.drop_it().await;
}

#[tokio::test]
async fn backup_refuses_postgres_urls_and_restore_refuses_what_is_not_flotilla() {
    let out = flotilla(&[
        "backup",
        "--database-url",
        "postgres://someone:hunter2@127.0.0.1:9/flotilla",
        "/nonexistent/backup.db",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let not_db = dir.path().join("notes.db");
    std::fs::write(&not_db, "not a database at all, just some text").expect("write");
    let other_db = dir.path().join("other.db");
    support::db::sqlite(&other_db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
    let data = dir.path().join("data");
    for (file, wanted) in [
        (&not_db, "not a sound SQLite database"),
        (&other_db, "not a Flotilla database"),
    ] {
        let out = flotilla(&[
            "restore",
            "--data-dir",
            &data.display().to_string(),
            &file.display().to_string(),
        ]);
        assert!(!out.status.success(), "{}", file.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(wanted), "{err}");
    }
    assert!(
        !data.join("flotilla.db").exists(),
        "nothing was put in place"
    );
}
