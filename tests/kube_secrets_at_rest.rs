//! Secrets are encrypted at rest: after importing a kubeconfig whose private key carries a known
//! marker, neither the SQLite files nor a dump of the PostgreSQL database contain the marker or
//! the key material in plain text.

use flotilla_test_support as support;

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
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
    contains_bytes(haystack, needle.as_bytes())
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The ways `secret` can show up in stored or dumped bytes: as is, hex (how `pg_dump` prints
/// BYTEA, either case), and base64 at each of the three alignments (a kubeconfig carries the key
/// as `client-key-data`, so an unsealed kubeconfig holds the marker only in base64).
fn encodings(secret: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        ("plain".to_string(), secret.as_bytes().to_vec()),
        ("hex".to_string(), hex.clone().into_bytes()),
        ("HEX".to_string(), hex.to_uppercase().into_bytes()),
    ];
    for shift in 0..3 {
        let shifted = format!("{}{secret}", "x".repeat(shift));
        let encoded = base64::engine::general_purpose::STANDARD.encode(shifted);
        // Drop the characters the prefix or the unknown next bytes touch.
        let core = &encoded[4..encoded.len() - 4];
        forms.push((format!("base64+{shift}"), core.as_bytes().to_vec()));
    }
    forms
}

/// Fails naming the form when `haystack` holds `secret` in any of its encodings.
fn assert_absent(haystack: &[u8], secret: &str, place: &str) {
    for (form, needle) in encodings(secret) {
        assert!(
            !contains_bytes(haystack, &needle),
            "{place} holds the secret ({form})"
        );
    }
}

/// Runs one query with `psql`; its rows, one per line, unaligned.
fn psql(url: &str, query: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            query,
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("psql prints text")
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
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
        assert_absent(&bytes, &marker, &path.display().to_string());
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
    assert_absent(&dump.stdout, &marker, "the dump");
    assert_absent(&dump.stdout, &key_body_line(), "the dump (key material)");

    // `pg_dump` prints BYTEA as hex, so read every BYTEA column's raw bytes as well (hex on
    // the wire, decoded here) and its escape form (printable bytes as they are).
    let columns = psql(
        &db.url,
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE table_schema = 'public' AND data_type = 'bytea' ORDER BY 1",
    );
    let columns: Vec<&str> = columns.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        columns.contains(&"secrets.ciphertext"),
        "BYTEA columns: {columns:?}"
    );
    let mut sealed_bytes = 0;
    for column in &columns {
        let (table, name) = column.split_once('.').expect("table.column");
        let hex = psql(
            &db.url,
            &format!("SELECT encode({name}, 'hex') FROM {table} WHERE {name} IS NOT NULL"),
        );
        let raw: Vec<u8> = hex.lines().flat_map(unhex).collect();
        assert_absent(&raw, &marker, &format!("{column} (raw bytes)"));
        assert_absent(&raw, &key_body_line(), &format!("{column} (raw bytes)"));
        let escaped = psql(
            &db.url,
            &format!("SELECT encode({name}, 'escape') FROM {table} WHERE {name} IS NOT NULL"),
        );
        assert_absent(
            escaped.as_bytes(),
            &marker,
            &format!("{column} (escape form)"),
        );
        if *column == "secrets.ciphertext" {
            sealed_bytes += raw.len();
        }
    }
    assert!(
        sealed_bytes > kubeconfigs::admin_key_pem().len(),
        "the sealed kubeconfig was read: {sealed_bytes} bytes"
    );
}
