//! Anonymous traffic cannot fill the database or the memory: calls without a valid token are
//! counted per address and minute (checked in the SQLite file with the `sqlite3` tool), the
//! server's resident memory stays flat under a flood (read from /proc), an address that keeps
//! failing is refused before its tokens are looked up, and old audit rows are deleted on SQLite
//! and PostgreSQL. Also: token lifetimes that would overflow, weak bootstrap tokens, private
//! files behind symlinks, and revoking by a name that is another token's id.

use flotilla_test_support as support;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use flotilla::{
    app,
    config::Settings,
    proto::{self as pb, admin_service_client::AdminServiceClient},
    store::ApiTokenRow,
};
use support::{
    db::{TestDb, sqlite},
    raw::RawCodec,
    server::{ADMIN_TOKEN, TestServer},
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

const LIST_CLUSTERS: &str = "/flotilla.v1.ClusterService/ListClusters";
const IMPORT_CLUSTER: &str = "/flotilla.v1.ClusterService/ImportCluster";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn flotilla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
}

async fn connect(port: u16) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls `path` with an empty message and `authorization: Bearer <token>`.
async fn call_with(channel: Channel, path: &str, token: Option<&str>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(Vec::new());
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
    }
    match grpc
        .unary(request, path.parse().expect("path"), RawCodec)
        .await
    {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

/// Resident memory of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn psql(url: &str, sql: &str) -> Vec<String> {
    let out = Command::new("psql")
        .args([url, "-At", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `n` calls with a fresh garbage token each, spread over `channels` (one connection each) with
/// several calls in flight per connection. Paths cycle through a read, a mutating call and an
/// attacker-chosen path carrying `marker`. Returns how many came back UNAUTHENTICATED.
async fn flood(channels: &[Channel], n: usize, marker: &str) -> usize {
    let per_task = n / (channels.len() * 4);
    let mut tasks = Vec::new();
    for (c, channel) in channels.iter().enumerate() {
        for t in 0..4 {
            let channel = channel.clone();
            let marker = marker.to_string();
            tasks.push(tokio::spawn(async move {
                let mut unauthenticated = 0;
                for i in 0..per_task {
                    let token = format!("flt_garbage-{c}-{t}-{i}-{}", uuid::Uuid::new_v4());
                    let path = match i % 3 {
                        0 => LIST_CLUSTERS.to_string(),
                        1 => IMPORT_CLUSTER.to_string(),
                        _ => format!("/flotilla.v1.{marker}/Call{i}"),
                    };
                    let status = call_with(channel.clone(), &path, Some(&token)).await;
                    if status.code() == Code::Unauthenticated {
                        unauthenticated += 1;
                    }
                }
                unauthenticated
            }));
        }
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("flood task");
    }
    assert_eq!(per_task * channels.len() * 4, n, "n divides evenly");
    total
}

struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn spawn(extra_env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = flotilla();
        command
            .arg("serve")
            .env("FLOTILLA_DATA_DIR", dir.path().join("data"))
            .env("FLOTILLA_LISTEN", format!("127.0.0.1:{port}"))
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .env("FLOTILLA_RATE_LIMIT", "0")
            .env("FLOTILLA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start the flotilla binary");
        Server { child, port, dir }
    }

    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("data").join("flotilla.db")
    }

    /// SIGTERM and wait: a clean stop writes every pending audit count.
    fn stop(mut self) -> tempfile::TempDir {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "server exit: {status:?}");
        self.dir
    }
}

// Tests here run multi-threaded: a test blocks a thread on sqlite3 or the CLI while the in-process server
// (on this runtime) may hold the write lock and needs a thread to finish its transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_token_flood_is_counted_not_stored_and_memory_stays_flat() {
    let server = Server::spawn(&[("FLOTILLA_PEER_RATE_LIMIT", "0")]);
    let pid = server.child.id();
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(connect(server.port).await);
    }
    let marker = format!("Evil{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();

    // Warm-up: connections, pools, caches and the allocator reach their working size.
    assert_eq!(flood(&channels, 3_200, &marker).await, 3_200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    assert_eq!(flood(&channels, 10_016, &marker).await, 10_016);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    let minutes_spanned = started.elapsed().as_secs() / 60 + 2;
    eprintln!("VmRSS before {before} KiB, after {after} KiB");
    assert!(
        after < before + 5 * 1024,
        "resident memory grew from {before} KiB to {after} KiB over 10,016 refused calls"
    );

    let db = server.db();
    let dir = server.stop();
    let rows = sqlite(
        &db,
        "SELECT COUNT(*), COALESCE(SUM(call_count), 0) FROM audit_events",
    );
    let (count, sum) = rows[0].split_once('|').expect("two columns");
    let (count, sum): (u64, u64) = (count.parse().unwrap(), sum.parse().unwrap());
    assert!(
        count <= minutes_spanned,
        "{count} audit rows for 13,216 refused calls from one address in at most \
         {minutes_spanned} minutes"
    );
    assert_eq!(sum, 13_216, "every refused call is counted");
    let methods = sqlite(
        &db,
        "SELECT DISTINCT method FROM audit_events ORDER BY method",
    );
    for method in &methods {
        assert!(
            [LIST_CLUSTERS, IMPORT_CLUSTER, "<unknown>"].contains(&method.as_str()),
            "unexpected method {method:?}"
        );
    }
    let peers = sqlite(
        &db,
        "SELECT DISTINCT peer_address, token_name FROM audit_events",
    );
    assert_eq!(peers, ["127.0.0.1|"], "counted per address, without port");
    // The attacker's path is nowhere on disk, not even in the WAL.
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds the attacker-chosen path",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_failing_is_refused_before_authentication() {
    let server = TestServer::start_with(|s| {
        s.peer_rate_limit = Some(flotilla::auth::rate::RateLimit {
            per_second: 2.0,
            burst: 10.0,
        })
    })
    .await;
    let channel = server.raw_channel().await;
    // Valid calls do not spend the address's budget.
    for _ in 0..30 {
        let status = call_with(channel.clone(), LIST_CLUSTERS, Some(ADMIN_TOKEN)).await;
        assert_eq!(status.code(), Code::Ok, "{status:?}");
    }
    for i in 0..10 {
        let status = call_with(channel.clone(), LIST_CLUSTERS, Some("flt_wrong")).await;
        assert_eq!(status.code(), Code::Unauthenticated, "call {i}");
    }
    let refused = call_with(channel.clone(), LIST_CLUSTERS, Some("flt_wrong")).await;
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let details = refused.get_error_details();
    assert_eq!(
        details.error_info().map(|i| i.reason.as_str()),
        Some("ADDRESS_RATE_LIMITED")
    );
    let wait = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    // Refused before the token is looked at: even the admin token waits.
    let admin = call_with(channel.clone(), LIST_CLUSTERS, Some(ADMIN_TOKEN)).await;
    assert_eq!(admin.code(), Code::ResourceExhausted);
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    let admin = call_with(channel.clone(), LIST_CLUSTERS, Some(ADMIN_TOKEN)).await;
    assert_eq!(admin.code(), Code::Ok, "budget refilled: {admin:?}");

    // 12 refusals (10 bad tokens, 2 over the limit): counted, not one row each.
    let mut audit = AdminServiceClient::new(server.channel().await);
    let events = audit
        .list_audit_events(pb::ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .events
        .into_iter()
        .filter(|e| e.token_name.is_empty())
        .collect::<Vec<_>>();
    let counted: i64 = events.iter().map(|e| e.call_count).sum();
    assert_eq!(counted, 12, "{events:?}");
    assert!(
        events.len() <= 2,
        "one row per address and minute: {events:?}"
    );
    assert!(events.iter().all(|e| e.peer_address == "127.0.0.1"));
    server.shutdown().await;
}

/// Settings for a server on an existing data directory (or database).
fn settings_in(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::for_data_dir(dir);
    settings.bootstrap_token = Some(zeroize::Zeroizing::new(ADMIN_TOKEN.to_string()));
    settings.rate_limit = None;
    settings.peer_rate_limit = None;
    settings
}

const DAY_MS: i64 = 86_400_000;

fn audit_insert(id: &str, time: i64) -> String {
    format!(
        "INSERT INTO audit_events (id, time, method, result_code) VALUES ('{id}', {time}, \
         '{IMPORT_CLUSTER}', 'OK');"
    )
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_audit_events_are_deleted_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flotilla.db");
    // Migrate, then plant rows straight into the file.
    app::migrate(&settings_in(dir.path()))
        .await
        .expect("migrate");
    let now = flotilla::store::now_millis();
    let mut sql = String::new();
    for i in 0..3 {
        sql.push_str(&audit_insert(&format!("old-{i}"), now - 3 * DAY_MS - i));
    }
    sql.push_str(&audit_insert("recent", now - DAY_MS));
    sqlite(&db, &sql);
    let mut settings = settings_in(dir.path());
    settings.audit_retention = Some(Duration::from_secs(2 * 86_400));
    let server = app::start(settings).await.expect("start");
    wait_until("old rows are gone", || {
        sqlite(&db, "SELECT id FROM audit_events ORDER BY id") == ["recent"]
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_audit_events_are_deleted_on_postgres() {
    let pg = TestDb::postgres().await;
    let keys = tempfile::tempdir().unwrap();
    let now = flotilla::store::now_millis();
    let mut sql = String::new();
    for i in 0..3 {
        sql.push_str(&audit_insert(&format!("old-{i}"), now - 3 * DAY_MS - i));
    }
    sql.push_str(&audit_insert("recent", now - DAY_MS));
    psql(&pg.url, &sql);
    let mut settings = settings_in(keys.path());
    settings.database_url = pg.url.clone();
    settings.master_key_file = Some(keys.path().join("master.keys"));
    settings.audit_retention = Some(Duration::from_secs(2 * 86_400));
    let server = app::start(settings).await.expect("start");
    wait_until("old rows are gone", || {
        psql(&pg.url, "SELECT id FROM audit_events ORDER BY id") == ["recent"]
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lifetimes_that_would_overflow_are_invalid_arguments() {
    let server = TestServer::start().await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    for (seconds, nanos) in [
        (i64::MAX, 0),
        (i64::MAX / 1000 + 1, 0),
        (i64::MIN, 0),
        (1, -5),
    ] {
        let status = admin
            .create_api_token(pb::CreateApiTokenRequest {
                name: format!("ttl-{seconds}-{nanos}"),
                role: pb::Role::Viewer.into(),
                cluster_ids: vec![],
                expire_time: Some(prost_types::Timestamp { seconds, nanos }),
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{seconds}: {status:?}"
        );
        let fields: Vec<_> = status
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["expire_time"]);
    }
    let listed = admin
        .list_api_tokens(pb::ListApiTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tokens.len(), 1, "nothing was created");
    server.shutdown().await;

    // The command line refuses what it cannot represent, with a message, not a panic.
    let dir = tempfile::tempdir().unwrap();
    for days in ["0", "36501", "4294967295", "99999999999999"] {
        let out = flotilla()
            .args(["token", "create", "--name", "t", "--role", "viewer"])
            .args(["--expires-in-days", days, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{days} days accepted");
        assert!(!stderr.contains("panicked"), "{days}: {stderr}");
        assert!(stderr.contains("expires-in-days"), "{days}: {stderr}");
    }
    let ok = flotilla()
        .args(["token", "create", "--name", "t", "--role", "viewer"])
        .args(["--expires-in-days", "36500", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_bootstrap_tokens_are_refused_at_start_without_echoing_them() {
    for weak in [
        "flt_short-token",
        "flt_test-admin-token-0123456789abcdefghijklmnopqrstu",
        &"x".repeat(64),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = flotilla()
            .arg("serve")
            .env("FLOTILLA_DATA_DIR", dir.path().join("d"))
            .env("FLOTILLA_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("FLOTILLA_BOOTSTRAP_TOKEN", weak)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{weak} accepted");
        assert!(
            stderr.contains("FLOTILLA_BOOTSTRAP_TOKEN is too weak"),
            "{stderr}"
        );
        let chars: Vec<char> = weak.chars().collect();
        for part in chars.windows(10) {
            let part: String = part.iter().collect();
            assert!(
                !stderr.contains(&part),
                "part of the token is echoed: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_files_refuse_symlinks_and_get_owner_only_modes() {
    use std::os::unix::fs::PermissionsExt;
    // An admin token file that is a symlink is not followed.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, "victim").unwrap();
    std::os::unix::fs::symlink(&target, data.join("admin-token")).unwrap();
    let mut settings = Settings::for_data_dir(&data);
    settings.peer_rate_limit = None;
    let refused = app::start(settings.clone()).await;
    assert!(refused.is_err(), "a symlinked admin-token file was written");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "victim");

    // An existing admin token file with a wide mode ends up 0600; so does the key file.
    let fresh = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_data_dir(fresh.path());
    settings.peer_rate_limit = None;
    std::fs::write(fresh.path().join("admin-token"), "old").unwrap();
    std::fs::set_permissions(
        fresh.path().join("admin-token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let server = app::start(settings).await.expect("start");
    for file in ["admin-token", "master.keys"] {
        let mode = std::fs::metadata(fresh.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let token = std::fs::read_to_string(fresh.path().join("admin-token")).unwrap();
    assert!(
        token.starts_with("flt_") && token.trim().len() >= 47,
        "{token}"
    );
    server.shutdown().await.unwrap();

    // A data directory open to others is reported (and left to its owner to fix).
    let out = flotilla()
        .args(["migrate", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let logged = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        logged.contains("the data directory is open to other users"),
        "{logged}"
    );
    std::fs::set_permissions(fresh.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let quiet = flotilla()
        .args(["migrate", "--data-dir"])
        .arg(fresh.path())
        .output()
        .unwrap();
    let logged = format!(
        "{}{}",
        String::from_utf8_lossy(&quiet.stdout),
        String::from_utf8_lossy(&quiet.stderr)
    );
    assert!(!logged.contains("open to other users"), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_by_a_name_that_is_another_tokens_id_is_refused() {
    let server = TestServer::start().await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let alpha = admin
        .create_api_token(pb::CreateApiTokenRequest {
            name: "alpha".into(),
            role: pb::Role::Viewer.into(),
            cluster_ids: vec![],
            expire_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    let alpha_id = alpha.token.unwrap().id;
    // New names shaped like ids are refused...
    let status = admin
        .create_api_token(pb::CreateApiTokenRequest {
            name: alpha_id.clone(),
            role: pb::Role::Viewer.into(),
            cluster_ids: vec![],
            expire_time: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // ...but one may already exist (written before the rule): plant it in the database.
    let store = server.store().await;
    store
        .insert_token(&ApiTokenRow {
            id: "tok-0000000000aa".into(),
            name: alpha_id.clone(),
            role: "viewer".into(),
            cluster_ids: "[]".into(),
            secret_hash: "00".repeat(32),
            expire_time: None,
            create_time: 1,
            created_by: "test".into(),
            last_used_time: None,
            revoke_time: None,
        })
        .await
        .unwrap();
    let status = admin
        .revoke_api_token(pb::RevokeApiTokenRequest {
            token_id: alpha_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("tok-0000000000aa"), "{status:?}");
    let db = server.settings.data_dir.join("flotilla.db");
    let revoked = sqlite(
        &db,
        "SELECT COUNT(*) FROM api_tokens WHERE revoke_time IS NOT NULL",
    );
    assert_eq!(revoked, ["0"], "nothing was revoked");
    // The planted token's own id is unambiguous: only it goes.
    admin
        .revoke_api_token(pb::RevokeApiTokenRequest {
            token_id: "tok-0000000000aa".into(),
        })
        .await
        .expect("revoke by id");
    let revoked = sqlite(
        &db,
        "SELECT id FROM api_tokens WHERE revoke_time IS NOT NULL",
    );
    assert_eq!(revoked, ["tok-0000000000aa"]);
    let alpha_call = call_with(
        server.raw_channel().await,
        LIST_CLUSTERS,
        Some(&alpha.secret),
    )
    .await;
    assert_eq!(alpha_call.code(), Code::Ok, "alpha still works");
    // The command line goes the same way: still ambiguous (a revoked token keeps its name).
    let out = flotilla()
        .args(["token", "revoke", "--data-dir"])
        .arg(&server.settings.data_dir)
        .arg(&alpha_id)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("give the id of the token"), "{stderr}");
    let revoked = sqlite(
        &db,
        "SELECT id FROM api_tokens WHERE revoke_time IS NOT NULL",
    );
    assert_eq!(revoked, ["tok-0000000000aa"]);
    server.shutdown().await;
}
