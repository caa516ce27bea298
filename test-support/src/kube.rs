//! Test support for the local Kubernetes control plane started by `scripts/kube-env up`
//! (etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok, on loopback).
//!
//! * [`env()`] finds the running control plane, or panics telling you to run `scripts/kube-env up`.
//! * [`client()`] gives an admin `kube::Client`.
//! * [`TestNamespace::create`] makes a fresh, uniquely named namespace that is deleted again by
//!   [`TestNamespace::cleanup`] or, failing that, when the guard is dropped.
//! * [`TestNamespace::pod_logs`] wires a pod's container logs to a file (via a KWOK `Logs`
//!   object) that the test appends CRI-format lines to; `GET .../pods/<p>/log?follow=true`
//!   through the real API server then streams them.
//! * [`KubeEnv::readonly_kubeconfig`] / [`KubeEnv::wrong_ca_kubeconfig`] for import tests.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, LogParams, ObjectMeta, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Simulated nodes created by `scripts/kube-env up`: (name, zone, taint).
pub const NODES: [(&str, &str, Option<&str>); 3] = [
    ("kwok-a1", "zone-a", None),
    ("kwok-a2", "zone-a", Some("dedicated=infra:NoSchedule")),
    ("kwok-b1", "zone-b", None),
];

/// Namespace holding the `flotilla-readonly` ServiceAccount used by `kubeconfig-readonly`.
pub const READONLY_NAMESPACE: &str = "flotilla-readonly";

/// Label put on every namespace made by [`TestNamespace::create`].
pub const TEST_NAMESPACE_LABEL: &str = "flotilla.dev/test-namespace";

const HOW_TO_START: &str = "no local Kubernetes control plane found; start it with `scripts/kube-env up` \
     (first run builds it, which takes a while), then re-run the tests";

/// Where the running control plane's files are.
#[derive(Debug, Clone)]
pub struct KubeEnv {
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl KubeEnv {
    /// Work dir of `scripts/kube-env` (PKI, kubeconfigs, logs, pod log files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Admin kubeconfig (client cert with `O=system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Kubeconfig with the bearer token of ServiceAccount `flotilla-readonly/flotilla-readonly`,
    /// which may only get/list/watch in namespace [`READONLY_NAMESPACE`].
    pub fn readonly_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig-readonly")
    }

    /// Kubeconfig with admin credentials but a CA that did not sign the server's certificate.
    pub fn wrong_ca_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig-wrong-ca")
    }

    /// Directory for pod log files; KWOK reads them, so they must live on this machine.
    pub fn pod_logs_dir(&self) -> PathBuf {
        self.dir.join("pod-logs")
    }
}

fn is_kube_env_dir(dir: &Path) -> bool {
    dir.join("kubeconfig").is_file() && dir.join("env").is_file()
}

fn find_env() -> KubeEnv {
    // KUBECONFIG is honoured only when it points into a kube-env work dir, so that a developer's
    // own cluster in KUBECONFIG is never used by these tests by accident.
    if let Some(kc) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let kc = PathBuf::from(kc);
        if let Some(dir) = kc.parent().filter(|d| is_kube_env_dir(d)) {
            return KubeEnv {
                dir: dir.to_path_buf(),
                kubeconfig: kc,
            };
        }
        eprintln!(
            "support::kube: ignoring KUBECONFIG={} (not a scripts/kube-env work dir)",
            kc.display()
        );
    }
    let dir = match std::env::var_os("FLOTILLA_KUBE_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => crate::workspace_dir().join("target/kube-env"),
    };
    if !is_kube_env_dir(&dir) {
        panic!("{HOW_TO_START} (looked in {})", dir.display());
    }
    KubeEnv {
        kubeconfig: dir.join("kubeconfig"),
        dir,
    }
}

/// The running control plane; panics with instructions when there is none.
pub fn env() -> &'static KubeEnv {
    static ENV: OnceLock<KubeEnv> = OnceLock::new();
    ENV.get_or_init(find_env)
}

/// A client for an arbitrary kubeconfig file (its current context).
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, Box<dyn std::error::Error>> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// An admin client for the running control plane. Panics (with instructions) if it is not up.
pub async fn client() -> Client {
    let env = env();
    let client = client_from_kubeconfig(env.kubeconfig())
        .await
        .unwrap_or_else(|e| panic!("{HOW_TO_START}: {}: {e}", env.kubeconfig().display()));
    if let Err(e) = client.apiserver_version().await {
        panic!("{HOW_TO_START}: the API server does not answer: {e}");
    }
    client
}

/// Calls `check` every 200 ms until it says yes; panics naming `what` after `timeout`.
pub async fn poll_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}{:x}{n:x}",
        std::process::id() & 0xffff,
        nanos & 0xfffff
    )
}

/// DNS-1123 label from an arbitrary test name.
fn sanitize(prefix: &str) -> String {
    let mut s: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(30);
    s.trim_matches('-').to_string()
}

/// A uniquely named namespace for one test. Deleted by [`TestNamespace::cleanup`], or on drop.
pub struct TestNamespace {
    name: String,
    client: Client,
    deleted: bool,
}

impl TestNamespace {
    /// Creates `t-<prefix>-<unique>` and waits until its `default` ServiceAccount exists
    /// (created by kube-controller-manager; pods can't be created before that).
    pub async fn create(client: &Client, prefix: &str) -> TestNamespace {
        let name = format!("t-{}-{}", sanitize(prefix), unique_suffix());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        poll_until(
            &format!("ServiceAccount {name}/default"),
            Duration::from_secs(30),
            || {
                let sas = sas.clone();
                async move { matches!(sas.get_opt("default").await, Ok(Some(_))) }
            },
        )
        .await;
        TestNamespace {
            name,
            client: client.clone(),
            deleted: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A typed API scoped to this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace (does not wait for it to be gone) and its pod log files.
    pub async fn cleanup(mut self) {
        self.deleted = true;
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await;
        let _ = fs::remove_dir_all(env().pod_logs_dir().join(&self.name));
    }

    /// Wires the logs of `pod` (all containers) to a fresh CRI log file, by creating a KWOK
    /// `Logs` object, and waits until the API server serves it: the pod must exist (or be
    /// created concurrently) and get scheduled within 60 s.
    ///
    /// The pod's *previous* log (`?previous=true`) is a second file holding one line,
    /// `previous log of <ns>/<pod>`; it is used to tell that KWOK has picked the object up.
    pub async fn pod_logs(&self, pod: &str) -> PodLogFile {
        let dir = env().pod_logs_dir().join(&self.name);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let file = PodLogFile {
            path: dir.join(format!("{pod}.log")),
        };
        let previous = PodLogFile {
            path: dir.join(format!("{pod}.previous.log")),
        };
        file.truncate();
        previous.truncate();
        let marker = format!("previous log of {}/{pod}", self.name);
        previous.stdout(&marker);

        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs"),
            "logs",
        );
        let mut logs = DynamicObject::new(pod, &ar).within(&self.name);
        logs.data = serde_json::json!({
            "spec": {"logs": [{
                "logsFile": file.path,
                "previousLogsFile": previous.path,
                "follow": true,
            }]}
        });
        Api::<DynamicObject>::namespaced_with(self.client.clone(), &self.name, &ar)
            .create(&PostParams::default(), &logs)
            .await
            .unwrap_or_else(|e| panic!("creating KWOK Logs {}/{pod}: {e}", self.name));

        let pods: Api<Pod> = self.api();
        poll_until(
            &format!("pod {}/{pod} to be scheduled", self.name),
            Duration::from_secs(60),
            || {
                let pods = pods.clone();
                async move {
                    matches!(pods.get_opt(pod).await,
                        Ok(Some(p)) if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
                }
            },
        )
        .await;
        let lp = LogParams {
            previous: true,
            ..LogParams::default()
        };
        poll_until(
            &format!("KWOK to serve the logs of {}/{pod}", self.name),
            Duration::from_secs(30),
            || {
                let (pods, lp, marker) = (pods.clone(), lp.clone(), marker.clone());
                async move { matches!(pods.logs(pod, &lp).await, Ok(s) if s.contains(&marker)) }
            },
        )
        .await;
        file
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        // Drop can't await, and blocking the test's runtime could deadlock it: delete from a
        // separate thread with its own runtime and client.
        let name = self.name.clone();
        let kubeconfig = env().kubeconfig().to_path_buf();
        let logs_dir = env().pod_logs_dir().join(&name);
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = client_from_kubeconfig(&kubeconfig).await {
                    let _ = Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::background())
                        .await;
                }
            });
            let _ = fs::remove_dir_all(logs_dir);
        });
        let _ = handle.join();
    }
}

/// A CRI-format log file backing a pod's container logs.
#[derive(Debug, Clone)]
pub struct PodLogFile {
    path: PathBuf,
}

impl PodLogFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn truncate(&self) {
        fs::write(&self.path, b"")
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.path.display()));
    }

    /// Appends one complete line on `stream` ("stdout" or "stderr") with the current time.
    pub fn append(&self, stream: &str, line: &str) {
        self.append_at(Timestamp::now(), stream, line);
    }

    /// Appends one complete line with an explicit timestamp (for `sinceTime`/`timestamps` tests).
    pub fn append_at(&self, at: Timestamp, stream: &str, line: &str) {
        let mut f = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.path.display()));
        f.write_all(cri_line(at, stream, line).as_bytes())
            .unwrap_or_else(|e| panic!("appending to {}: {e}", self.path.display()));
    }

    pub fn stdout(&self, line: &str) {
        self.append("stdout", line);
    }

    pub fn stderr(&self, line: &str) {
        self.append("stderr", line);
    }
}

/// One CRI log line: `<RFC3339Nano> <stream> F <content>\n` (embedded newlines split into
/// several full lines).
pub fn cri_line(at: Timestamp, stream: &str, content: &str) -> String {
    let ts = at.to_string(); // RFC 3339, UTC, fractional seconds when non-zero
    content
        .split('\n')
        .map(|l| format!("{ts} {stream} F {l}\n"))
        .collect()
}
