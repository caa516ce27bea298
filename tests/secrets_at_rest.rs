//! Secrets are encrypted at rest: after importing a kubeconfig whose private key carries a known
//! marker, neither the SQLite files nor a dump of the PostgreSQL database contain the marker or
//! the key material in plain text.

mod support;

use flotilla::api::pb::{self, cluster_service_client::ClusterServiceClient};
use support::{db::TestDb, kubeconfigs, server::TestServer};

/// The admin key with a marker line in front (PEM ignores text outside the armour).
fn marked_key(marker: &str) -> String {
    format!("{marker}\n{}", kubeconfigs::admin_key_pem())
}

/// A line of the key's base64 body: key material that must not appear anywhere either.
fn key_body_line() -> String {
    kubeconfigs::admin_key_pem()
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() > 40)
        .expect("key body")
        .to_string()
}

async fn import_marked(server: &TestServer, marker: &str) {
    let mut client = ClusterServiceClient::new(server.channel().await);
    let kubeconfig =
        kubeconfigs::admin_kubeconfig_with_key(&kubeconfigs::server(), &marked_key(marker));
    let reply = client
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "marked".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfig.into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import with a marked key");
    let shown = format!("{:?}", reply.into_inner());
    assert!(
        !shown.contains(marker),
        "the response must not echo the key"
    );
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn sqlite_files_hold_no_plaintext_secret() {
    let marker = format!("flotilla-marker-{}", uuid::Uuid::new_v4().simple());
    let server = TestServer::start().await;
    import_marked(&server, &marker).await;
    let data_dir = server.settings.data_dir.clone();
    // Read while the server runs: the WAL file holds the newest pages.
    let mut checked = 0;
    for entry in std::fs::read_dir(&data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "master.keys") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !contains(&bytes, &marker),
            "{} holds the marker",
            path.display()
        );
        assert!(
            !contains(&bytes, &key_body_line()),
            "{} holds key material",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 2, "the database and its WAL were checked");
    server.shutdown().await;
}

#[tokio::test]
async fn postgres_tables_hold_no_plaintext_secret() {
    let marker = format!("flotilla-marker-{}", uuid::Uuid::new_v4().simple());
    let db = TestDb::postgres().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let url = db.url.clone();
    let key_file = keys.path().join("master.keys");
    let server = TestServer::start_with(|s| {
        s.database_url = url;
        s.master_key_file = Some(key_file);
    })
    .await;
    import_marked(&server, &marker).await;
    server.shutdown().await;

    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--inserts", &db.url])
        .output()
        .expect("run pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(
        contains(&dump.stdout, "INSERT INTO public.clusters"),
        "the dump has the rows"
    );
    assert!(
        !contains(&dump.stdout, &marker),
        "the dump holds the marker"
    );
    assert!(
        !contains(&dump.stdout, &key_body_line()),
        "the dump holds key material"
    );
}
