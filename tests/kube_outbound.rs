//! Outbound connections to caller-supplied addresses (issue #12, no server-side request
//! forgery; issue #13, credential and logging mistakes). Network rule: everything here talks to
//! loopback only; refused addresses are loopback addresses put on the deny list.

use flotilla_test_support as support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use support::{
    kubeconfigs,
    server::{ADMIN_TOKEN, TestServer},
};
use tokio::net::TcpListener;
use tonic::{Code, Status};
use tonic_types::StatusExt;

fn kubeconfig_request(yaml: impl Into<Vec<u8>>) -> pb::ImportClusterRequest {
    pb::ImportClusterRequest {
        source: Some(pb::import_cluster_request::Source::Kubeconfig(
            pb::KubeconfigSource {
                kubeconfig: yaml.into(),
                context: String::new(),
            },
        )),
        ..Default::default()
    }
}

fn token_request(server: &str, token: &str, ca_pem: &str) -> pb::ImportClusterRequest {
    pb::ImportClusterRequest {
        source: Some(pb::import_cluster_request::Source::Token(pb::TokenSource {
            server: server.into(),
            bearer_token: token.into(),
            ca_pem: ca_pem.into(),
        })),
        ..Default::default()
    }
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

fn field(status: &Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations[0].field.clone())
        .unwrap_or_default()
}

/// A listener that counts the connections it accepts (and drops them).
struct CountingListener {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingListener {
    async fn bind(addr: &str) -> Option<CountingListener> {
        let listener = TcpListener::bind(addr).await.ok()?;
        let addr = listener.local_addr().ok()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Some(CountingListener {
            addr,
            accepted,
            task,
        })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CountingListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Imports `request`, expecting a refusal by the address policy well under a second.
async fn assert_refused_fast(
    client: &mut ClusterServiceClient<support::server::AuthedChannel>,
    name: &str,
    request: pb::ImportClusterRequest,
    names: &str,
) {
    let started = Instant::now();
    let status = client.import_cluster(request).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{name}: {status:?}"
    );
    assert_eq!(reason(&status), "ADDRESS_NOT_ALLOWED", "{name}: {status:?}");
    assert!(status.message().contains(names), "{name}: {status:?}");
    assert!(elapsed < Duration::from_secs(1), "{name}: took {elapsed:?}");
}

#[tokio::test]
async fn denied_addresses_are_refused_before_any_connection() {
    // 127.0.0.9 is denied by flag; localhost (127.0.0.1 and ::1) too, so this server listens
    // on 127.0.0.2 instead.
    let server = TestServer::start_with(|s| {
        s.listen = "127.0.0.2:0".parse().unwrap();
        s.outbound.deny =
            flotilla::net::outbound::parse_cidrs("127.0.0.9/32,127.0.0.1/32,::1/128").unwrap();
    })
    .await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    let ca = kubeconfigs::ca_pem();

    // An IP literal on --outbound-deny.
    let denied = CountingListener::bind("127.0.0.9:0")
        .await
        .expect("bind 127.0.0.9");
    let url = format!("https://{}", denied.addr);
    assert_refused_fast(
        &mut client,
        "denied literal",
        token_request(&url, "some-token", &ca),
        "127.0.0.9",
    )
    .await;

    // A host name whose every address is denied: localhost resolves to 127.0.0.1 and ::1.
    let v4 = CountingListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let v6 = CountingListener::bind(&format!("[::1]:{}", v4.addr.port())).await;
    let url = format!("https://localhost:{}", v4.addr.port());
    assert_refused_fast(
        &mut client,
        "host name",
        token_request(&url, "some-token", &ca),
        "localhost",
    )
    .await;
    // The same through a kubeconfig.
    let kubeconfig = kubeconfigs::admin_kubeconfig_at(&format!("https://{}", denied.addr));
    assert_refused_fast(
        &mut client,
        "kubeconfig",
        kubeconfig_request(kubeconfig),
        "127.0.0.9",
    )
    .await;

    // Flotilla's own listen address.
    let own = format!("https://{}", server.addr);
    assert_refused_fast(
        &mut client,
        "own address",
        token_request(&own, "some-token", &ca),
        "own listen address",
    )
    .await;

    // Give a connection that slipped through time to be accepted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(denied.accepted(), 0, "127.0.0.9 saw a connection");
    assert_eq!(v4.accepted(), 0, "127.0.0.1 saw a connection");
    if let Some(v6) = &v6 {
        assert_eq!(v6.accepted(), 0, "::1 saw a connection");
    }

    // Credentials in the URL are refused as input, and not echoed.
    let status = client
        .import_cluster(token_request(
            "https://admin:hunter2-SECRET@127.0.0.2:6443",
            "some-token",
            &ca,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(field(&status), "source.token.server");
    assert!(status.message().contains("user:password@"), "{status:?}");
    assert!(!status.message().contains("hunter2"), "{status:?}");

    let list = client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total_size, 0, "nothing stored");
    server.shutdown().await;
}

#[tokio::test]
async fn kubeconfig_impersonation_and_proxy_are_refused_by_name() {
    let server = TestServer::start().await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    let admin = kubeconfigs::admin_kubeconfig();
    for (name, yaml, named) in [
        (
            "as",
            admin.replace(
                "    client-key-data:",
                "    as: system:admin\n    client-key-data:",
            ),
            "as is set",
        ),
        (
            "as-groups",
            admin.replace(
                "    client-key-data:",
                "    as-groups: [system:masters]\n    client-key-data:",
            ),
            "as-groups is set",
        ),
        (
            "proxy-url",
            admin.replace(
                "    certificate-authority-data:",
                "    proxy-url: http://127.0.0.1:3128\n    certificate-authority-data:",
            ),
            "proxy-url is set",
        ),
    ] {
        assert_ne!(yaml, admin, "{name}: fixture changed");
        let status = client
            .import_cluster(kubeconfig_request(yaml))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert_eq!(field(&status), "source.kubeconfig.kubeconfig", "{name}");
        assert!(status.message().contains(named), "{name}: {status:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn bad_client_key_and_token_are_the_callers_input() {
    let server = TestServer::start().await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    // client-key-data holds a PEM block that is not a key (the certificate itself).
    let not_a_key = kubeconfigs::admin_kubeconfig_with_key(
        &kubeconfigs::server(),
        &kubeconfigs::admin_cert_pem(),
    );
    let status = client
        .import_cluster(kubeconfig_request(not_a_key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(&status), "", "{status:?}");
    assert_eq!(field(&status), "source.kubeconfig.kubeconfig");
    assert!(status.message().contains("client-key-data"), "{status:?}");
    assert!(!status.message().contains("BEGIN"), "{status:?}");

    let status = client
        .import_cluster(token_request(
            &kubeconfigs::server(),
            "abc\u{7f}def",
            &kubeconfigs::ca_pem(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(field(&status), "source.token.bearer_token", "{status:?}");

    let status = client
        .import_cluster(token_request(
            &kubeconfigs::server(),
            "some-token",
            &kubeconfigs::admin_key_pem(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(field(&status), "source.token.ca_pem", "{status:?}");
    assert!(!status.message().contains("BEGIN"), "{status:?}");
    server.shutdown().await;
}

/// A TCP forwarder on `bind` to `target`, counting the connections it accepts.
async fn counting_forwarder(bind: &str, target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(bind).await.expect("bind forwarder");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn probes_go_through_the_check() {
    // The real API server, reached through 127.0.0.9 (its certificate names localhost).
    let target: SocketAddr = kubeconfigs::server()
        .trim_start_matches("https://")
        .parse()
        .expect("server address");
    let (front, connections) = counting_forwarder("127.0.0.9:0", target).await;
    let kubeconfig = kubeconfigs::kubeconfig(
        &format!("https://{front}"),
        &format!(
            "    certificate-authority-data: {}\n    tls-server-name: localhost\n",
            STANDARD.encode(kubeconfigs::ca_pem())
        ),
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            STANDARD.encode(kubeconfigs::admin_cert_pem()),
            STANDARD.encode(kubeconfigs::admin_key_pem())
        ),
    );
    let data = tempfile::tempdir().expect("tempdir");
    let use_data = |s: &mut flotilla::config::Settings| {
        s.data_dir = data.path().to_path_buf();
        s.database_url = flotilla::config::default_database_url(data.path());
    };

    // Imported while the address is allowed.
    let first = TestServer::start_with(use_data).await;
    let cluster = ClusterServiceClient::new(first.channel().await)
        .import_cluster(kubeconfig_request(kubeconfig))
        .await
        .expect("import through 127.0.0.9")
        .into_inner()
        .cluster
        .expect("cluster");
    assert!(
        connections.load(Ordering::SeqCst) > 0,
        "the import went through the front"
    );
    first.shutdown().await;

    // The same cluster, probed by a server that denies the address: it becomes unreachable
    // with the reason, and the front sees no new connection.
    connections.store(0, Ordering::SeqCst);
    let second = TestServer::start_with(|s| {
        use_data(s);
        s.probe_interval = Duration::from_secs(1);
        s.outbound.deny = vec!["127.0.0.9/32".parse().unwrap()];
    })
    .await;
    let mut client = ClusterServiceClient::new(second.channel().await);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status = client
            .get_cluster(pb::GetClusterRequest {
                cluster_id: cluster.id.clone(),
            })
            .await
            .expect("get")
            .into_inner()
            .cluster
            .and_then(|c| c.status)
            .unwrap_or_default();
        if !status.unreachable_reason.is_empty() || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.reachable, "{status:?}");
    assert!(
        status.unreachable_reason.contains("may not connect")
            && status.unreachable_reason.contains("127.0.0.9"),
        "{status:?}"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "no connection was made"
    );
    second.shutdown().await;
}

/// A server that plays a tiny Kubernetes API server until told to answer with a 2 MiB web page.
mod impostor {
    use super::*;
    use axum::{Router, extract::State, http::StatusCode, response::IntoResponse};

    pub const MARKER: &str = "IMPOSTOR-MARKER-7f3a";
    pub const HEALTHY: u8 = 0;
    pub const ERROR_PAGE: u8 = 1;
    pub const OK_PAGE: u8 = 2;

    pub async fn start() -> (SocketAddr, Arc<AtomicU8>) {
        let mode = Arc::new(AtomicU8::new(HEALTHY));
        let app = Router::new().fallback(answer).with_state(mode.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (addr, mode)
    }

    async fn answer(State(mode): State<Arc<AtomicU8>>, uri: axum::http::Uri) -> impl IntoResponse {
        let page = format!(
            "<html><body>{}{MARKER}</body></html>",
            "<p>padding</p>".repeat(2 * 1024 * 1024 / 14)
        );
        let html = [(axum::http::header::CONTENT_TYPE, "text/html")];
        let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
        match mode.load(Ordering::SeqCst) {
            ERROR_PAGE => (StatusCode::INTERNAL_SERVER_ERROR, html, page).into_response(),
            OK_PAGE => (StatusCode::OK, html, page).into_response(),
            _ => {
                let body = match uri.path() {
                    "/version" => serde_json::json!({
                        "major": "1", "minor": "37", "gitVersion": "v1.37.0-impostor",
                        "gitCommit": "x", "gitTreeState": "clean",
                        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1", "compiler": "gc",
                        "platform": "linux/amd64",
                    }),
                    "/api/v1/namespaces/kube-system" => serde_json::json!({
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "kube-system", "uid": format!("impostor-{}", std::process::id())},
                    }),
                    "/api/v1/nodes" => serde_json::json!({
                        "apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [],
                    }),
                    _ => serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not here",
                    }),
                };
                (StatusCode::OK, json, body.to_string()).into_response()
            }
        }
    }
}

/// The real binary, logging JSON lines to a file.
struct Binary {
    child: std::process::Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    async fn start() -> Binary {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = dir.path().join("server.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
            // debug: every line that could carry a body (kube-rs, our probe failures) is written.
            .args(["serve", "--log-format", "json", "--log-filter", "debug"])
            .args(["--probe-interval", "1"])
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .env_remove("FLOTILLA_LOG")
            .env_remove("FLOTILLA_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the flotilla binary");
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the binary did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Binary {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    async fn client(&self) -> ClusterServiceClient<support::server::AuthedChannel> {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let bearer = support::server::Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}")));
        ClusterServiceClient::new(tonic::service::interceptor::InterceptedService::new(
            channel, bearer,
        ))
    }

    /// Stops the binary and returns its log lines.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log)
            .expect("read log")
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test]
async fn foreign_bodies_and_user_mistakes_stay_out_of_answers_and_error_logs() {
    let (impostor_addr, mode) = impostor::start().await;
    let binary = Binary::start().await;
    let mut client = binary.client().await;
    let mut answers = Vec::new();

    // While it plays Kubernetes, it imports (plain http, consented).
    let mut request = token_request(&format!("http://{impostor_addr}"), "some-token", "");
    request.allow_insecure_tls = true;
    let cluster = client
        .import_cluster(request.clone())
        .await
        .expect("import the impostor")
        .into_inner()
        .cluster
        .expect("cluster");

    // Then it answers every probe with a 2 MiB error page: unreachable, with our reason.
    mode.store(impostor::ERROR_PAGE, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status = client
            .get_cluster(pb::GetClusterRequest {
                cluster_id: cluster.id.clone(),
            })
            .await
            .expect("get")
            .into_inner()
            .cluster
            .and_then(|c| c.status)
            .unwrap_or_default();
        if !status.reachable || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.reachable, "{status:?}");
    assert!(
        status
            .unreachable_reason
            .contains("not a Kubernetes Status"),
        "{status:?}"
    );
    answers.push(status.unreachable_reason.clone());

    // Fresh imports against the error page and a 200 web page.
    for page in [impostor::ERROR_PAGE, impostor::OK_PAGE] {
        mode.store(page, Ordering::SeqCst);
        let status = client.import_cluster(request.clone()).await.unwrap_err();
        answers.push(format!("{status:?}"));
    }

    // Ordinary mistakes: a closed port and a CA that did not sign the server's certificate.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let status = client
        .import_cluster(token_request(
            &format!("https://{closed}"),
            "some-token",
            &kubeconfigs::ca_pem(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // The embedded form of $FLOTILLA_KUBE_KUBECONFIG_WRONG_CA (uploads may not name files).
    let status = client
        .import_cluster(kubeconfig_request(kubeconfigs::wrong_ca_kubeconfig()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "TLS_VERIFICATION_FAILED", "{status:?}");

    let lines = binary.stop();
    for answer in &answers {
        assert!(
            !answer.contains(impostor::MARKER),
            "body in an answer: {answer:.300}"
        );
        assert!(
            !answer.contains("padding"),
            "body in an answer: {answer:.300}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("flotilla serving")),
        "the log was captured: {lines:?}"
    );
    for line in &lines {
        assert!(
            !line.contains(impostor::MARKER),
            "body in the log: {line:.300}"
        );
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        assert_ne!(
            parsed["level"], "ERROR",
            "a user mistake logged at ERROR: {line:.500}"
        );
    }
}
