//! `scripts/client-env` as the Go, Python and TypeScript client suites use it: `up` starts
//! `flotilla serve` and the three vendor simulators (`flotilla-sim`) and writes an env file;
//! with nothing but that file a client imports the test control plane, lists its nodes, stores
//! a credential and creates an ACK cluster at the simulator; `down` leaves no process behind.
//!
//! Expected answers come from outside Flotilla: the API server's own node list and the
//! simulator's own state (its control endpoint). Needs the test control plane (kube env
//! sourced); builds `flotilla-sim` through the script when it is missing or stale.

use flotilla_test_support as support;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    credential_service_client::CredentialServiceClient, node_service_client::NodeServiceClient,
};
use k8s_openapi::api::core::v1::Node;
use support::{
    lifecycle::{state, wait_operation},
    server::{AuthedChannel, Bearer},
};
use tonic::service::interceptor::InterceptedService;

/// Every variable the script documents (the three simulators' vendor-specific ones below).
const COMMON_KEYS: [&str; 8] = [
    "FLOTILLA_ADDR",
    "FLOTILLA_URL",
    "FLOTILLA_TOKEN",
    "FLOTILLA_TEST_KUBECONFIG",
    "FLOTILLA_BIN",
    "FLOTILLA_SIM_BIN",
    "FLOTILLA_CLIENT_ENV_LOGS",
    "KUBECONFIG",
];
const SIM_KEYS: [&str; 5] = ["URL", "ADDR", "CONTROL_URL", "PID", "KUBERNETES_VERSION"];
const VENDOR_KEYS: [&str; 12] = [
    "FLOTILLA_SIM_ACK_ACCESS_KEY_ID",
    "FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET",
    "FLOTILLA_SIM_ACK_REGION",
    "FLOTILLA_SIM_ACK_CLUSTER_TYPE",
    "FLOTILLA_SIM_ACK_CLUSTER_SPEC",
    "FLOTILLA_SIM_TKE_ACCESS_KEY_ID",
    "FLOTILLA_SIM_TKE_ACCESS_KEY_SECRET",
    "FLOTILLA_SIM_TKE_REGION",
    "FLOTILLA_SIM_TKE_CLUSTER_TYPE",
    "FLOTILLA_SIM_RANCHER_KEY_ID",
    "FLOTILLA_SIM_RANCHER_TOKEN",
    "KUBECTL",
];

/// One `scripts/client-env` work dir; `down` runs when dropped, so a failing test leaves
/// nothing running.
struct ClientEnv {
    dir: PathBuf,
    down: bool,
}

impl ClientEnv {
    fn script(&self, command: &str) -> std::process::Output {
        Command::new(support::workspace_dir().join("scripts/client-env"))
            .arg(command)
            .env("FLOTILLA_CLIENT_ENV_DIR", &self.dir)
            // The binary cargo built for this test; the script builds flotilla-sim.
            .env("FLOTILLA_BIN", env!("CARGO_BIN_EXE_flotilla"))
            .env_remove("FLOTILLA_SIM_BIN")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("scripts/client-env {command}: {e}"))
    }

    fn up(&self) -> BTreeMap<String, String> {
        let out = self.script("up");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "client-env up failed: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let env_path = self.dir.join("env");
        assert_eq!(
            stdout.lines().last(),
            Some(format!("FLOTILLA_CLIENT_ENV={}", env_path.display()).as_str()),
            "up names its env file last: {stdout}"
        );
        read_env(&env_path)
    }

    fn down(&mut self) -> std::process::Output {
        self.down = true;
        self.script("down")
    }

    /// The processes `up` recorded.
    fn pids(&self) -> Vec<(String, u32)> {
        let entries = std::fs::read_dir(self.dir.join("pids")).expect("pids dir");
        entries
            .map(|e| {
                let e = e.expect("pid file");
                let pid = std::fs::read_to_string(e.path()).expect("pid");
                let name = e.file_name().to_string_lossy().into_owned();
                (name, pid.trim().parse().expect("a pid"))
            })
            .collect()
    }
}

impl Drop for ClientEnv {
    fn drop(&mut self) {
        if !self.down {
            // The logs stay (<dir>.last-logs) for whoever looks into the failure.
            let out = self.script("down");
            eprintln!("cleanup: {}", String::from_utf8_lossy(&out.stderr));
            let _ = std::fs::remove_file(self.dir.with_extension("lock"));
        }
    }
}

/// The env file as a client library would read it: KEY=VALUE per line, split at the first `=`.
fn read_env(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).expect("env file");
    text.lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("no = in {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A process that is alive and not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) && running(pid) {
            found.push(pid);
        }
    }
    found
}

/// A child process killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn channel(env: &BTreeMap<String, String>) -> AuthedChannel {
    let raw = support::process::connect(&env["FLOTILLA_URL"]).await;
    let bearer = Bearer::new(Some(&format!("Bearer {}", env["FLOTILLA_TOKEN"])));
    InterceptedService::new(raw, bearer)
}

/// Node names through Flotilla, two per page.
async fn flotilla_nodes(channel: AuthedChannel, cluster_id: &str) -> BTreeSet<String> {
    let mut client = NodeServiceClient::new(channel);
    let (mut names, mut page_token) = (BTreeSet::new(), String::new());
    loop {
        let page = client
            .list_nodes(pb::ListNodesRequest {
                cluster_id: cluster_id.into(),
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListNodes")
            .into_inner();
        names.extend(page.nodes.into_iter().map(|n| n.name));
        if page.next_page_token.is_empty() {
            return names;
        }
        page_token = page.next_page_token;
    }
}

/// The simulator's own view: {"created": N, "clusters": [{"id", "state", "version"}]}.
async fn sim_state(control_url: &str) -> serde_json::Value {
    let body = reqwest::get(format!("{control_url}/clusters"))
        .await
        .expect("simulator control endpoint")
        .text()
        .await
        .expect("simulator state");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Starts `flotilla-sim` as a harness in another language would, with stdin a pipe; returns
/// it and its JSON line.
fn start_sim(binary: &str, args: &[&str]) -> (Reaped, serde_json::Value) {
    let mut child = Reaped(
        Command::new(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flotilla-sim"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the JSON line");
    let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, value)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_gets_everything_from_the_env_file_and_down_leaves_nothing() {
    let t0 = Instant::now();
    let target = support::workspace_dir().join("target");
    let target = target.canonicalize().unwrap_or(target);
    let dir = target.join(format!("client-env-test-{}", std::process::id()));
    let mut harness = ClientEnv {
        dir: dir.clone(),
        down: false,
    };
    let env = harness.up();
    eprintln!("up: {:?}", t0.elapsed());
    for key in COMMON_KEYS.iter().chain(&VENDOR_KEYS) {
        assert!(
            env.get(*key).is_some_and(|v| !v.is_empty()),
            "{key} in the env file: {env:#?}"
        );
    }
    for vendor in ["ACK", "TKE", "RANCHER"] {
        for key in SIM_KEYS {
            let name = format!("FLOTILLA_SIM_{vendor}_{key}");
            assert!(env.get(&name).is_some_and(|v| !v.is_empty()), "{name}");
        }
    }
    assert_eq!(
        env["FLOTILLA_URL"],
        format!("http://{}", env["FLOTILLA_ADDR"])
    );

    // A second `up` finds everything running and changes nothing.
    let pids = harness.pids();
    let again = Instant::now();
    assert_eq!(harness.up(), env, "a second up keeps the same environment");
    assert_eq!(harness.pids(), pids, "and the same processes");
    eprintln!("second up: {:?}", again.elapsed());

    let channel = channel(&env).await;

    // Import the test control plane from the kubeconfig in the env file; its nodes through
    // Flotilla are the API server's own.
    let kubeconfig = std::fs::read(&env["FLOTILLA_TEST_KUBECONFIG"]).expect("kubeconfig");
    let imported = ClusterServiceClient::new(channel.clone())
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "client-env-kube".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig,
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("ImportCluster")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_eq!(imported.id, "client-env-kube");
    let kube = support::kube::client_from_kubeconfig(Path::new(&env["KUBECONFIG"]))
        .await
        .expect("kube client from the env file's KUBECONFIG");
    let api: kube::Api<Node> = kube::Api::all(kube);
    let want: BTreeSet<String> = api
        .list(&Default::default())
        .await
        .expect("nodes from the API server")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(
        want.len() >= 3,
        "the test control plane has its kwok nodes: {want:?}"
    );
    assert_eq!(
        flotilla_nodes(channel.clone(), "client-env-kube").await,
        want
    );

    // A credential and an ACK cluster at the simulator, from the env file's values only.
    let before = sim_state(&env["FLOTILLA_SIM_ACK_CONTROL_URL"]).await;
    assert_eq!(before["created"], 0, "{before}");
    use pb::credential_secret::Secret;
    let credential = CredentialServiceClient::new(channel.clone())
        .create_credential(pb::CreateCredentialRequest {
            credential_id: "client-env-ack".into(),
            display_name: "ACK simulator".into(),
            provider: "ack".into(),
            secret: Some(pb::CredentialSecret {
                secret: Some(Secret::AccessKey(pb::AccessKeySecret {
                    access_key_id: env["FLOTILLA_SIM_ACK_ACCESS_KEY_ID"].clone(),
                    access_key_secret: env["FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"].clone(),
                })),
            }),
            ..Default::default()
        })
        .await
        .expect("CreateCredential")
        .into_inner()
        .credential
        .expect("credential");
    let created = ClusterServiceClient::new(channel.clone())
        .create_cluster(pb::CreateClusterRequest {
            cluster_id: "client-env-ack".into(),
            provider: "ack".into(),
            request_id: "client-env-ack-1".into(),
            spec: Some(pb::ClusterSpec {
                region: env["FLOTILLA_SIM_ACK_REGION"].clone(),
                credential_id: credential.id,
                kubernetes_version: env["FLOTILLA_SIM_ACK_KUBERNETES_VERSION"].clone(),
                provider_config: Some(pb::cluster_spec::ProviderConfig::Ack(
                    pb::AckClusterConfig {
                        cluster_type: env["FLOTILLA_SIM_ACK_CLUSTER_TYPE"].clone(),
                        cluster_spec: env["FLOTILLA_SIM_ACK_CLUSTER_SPEC"].clone(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            validate_only: false,
        })
        .await
        .expect("CreateCluster")
        .into_inner();
    let op = created.operation.expect("operation");
    let created_at = Instant::now();
    let done = wait_operation(channel.clone(), &op.id, Duration::from_secs(30)).await;
    assert_eq!(state(&done), pb::OperationState::Succeeded, "{done:#?}");
    eprintln!("create at the ACK simulator: {:?}", created_at.elapsed());
    let cluster = ClusterServiceClient::new(channel.clone())
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "client-env-ack".into(),
        })
        .await
        .expect("GetCluster")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_eq!(cluster.state, pb::ClusterState::Running as i32);
    let after = sim_state(&env["FLOTILLA_SIM_ACK_CONTROL_URL"]).await;
    assert_eq!(after["created"], 1, "exactly one cluster made: {after}");
    assert_eq!(
        after["clusters"],
        serde_json::json!([{
            "id": cluster.vendor_cluster_id,
            "state": "running",
            "version": env["FLOTILLA_SIM_ACK_KUBERNETES_VERSION"],
        }]),
        "the simulator holds the cluster Flotilla reports"
    );

    // flotilla-sim on its own, as a harness in another language starts it: it stops when its
    // stdin closes, and refuses to listen beyond loopback.
    let sim_bin = env["FLOTILLA_SIM_BIN"].clone();
    let (mut sim, line) = start_sim(&sim_bin, &["tke", "--listen", "127.0.0.1:0"]);
    assert_eq!(line["vendor"], "tke");
    assert_eq!(line["pid"], sim.0.id());
    let url = line["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let tke_state = sim_state(line["control_url"].as_str().expect("control_url")).await;
    assert_eq!(tke_state["created"], 0);
    drop(sim.0.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = sim.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "flotilla-sim outlived its stdin");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    let refused = Command::new(&sim_bin)
        .args(["ack", "--listen", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .expect("flotilla-sim");
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty(), "no JSON line when refused");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("only loopback"), "{why}");

    // Down: every recorded process is gone, nothing else mentions the work dir, the dir too.
    let down = harness.down();
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(down.status.success(), "client-env down failed: {stderr}");
    for (name, pid) in &pids {
        assert!(
            !running(*pid),
            "{name} (pid {pid}) is still running after down"
        );
    }
    let needle = format!("{}/", dir.display());
    assert_eq!(
        processes_mentioning(&needle),
        Vec::<u32>::new(),
        "strays after down"
    );
    assert!(!dir.exists(), "the work dir is removed");
    let _ = std::fs::remove_dir_all(dir.with_extension("last-logs"));
    let _ = std::fs::remove_file(dir.with_extension("lock"));
    eprintln!("total: {:?}", t0.elapsed());
}
