//! A fleet of realistic pods in one namespace of the test control plane, spread over its KWOK
//! nodes, for the ListPods benchmark (thousands of pods) and any test that needs many: created
//! concurrently with retries, waited on until Running, and the namespace deleted again.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;

use crate::kube::{NODES, poll_until};

/// The namespace the fleet lives in.
pub const NAMESPACE: &str = "bench-pods";

/// The fleet's apps and their tiers; pod `i` runs app `i % 8`.
pub const APPS: [(&str, &str); 8] = [
    ("storefront", "frontend"),
    ("gateway", "frontend"),
    ("checkout", "backend"),
    ("catalog", "backend"),
    ("payments", "backend"),
    ("search", "backend"),
    ("orders-db", "data"),
    ("events-kafka", "data"),
];

/// The test environment's kubectl: `$KUBECTL`, the `KUBECTL=` line of the environment's `env`
/// file, or the default cache path.
pub fn kubectl(kube_dir: &Path) -> Option<PathBuf> {
    let from_env_file = || {
        std::fs::read_to_string(kube_dir.join("env"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("KUBECTL=").map(PathBuf::from))
    };
    let default = || {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/flotilla/kube/v1.37.2/bin/kubectl"))
    };
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .or_else(from_env_file)
        .or_else(default)
        .filter(|p| p.is_file())
}

/// A small, realistic pod: one app container, a sidecar on every third pod, a few labels, bound
/// to a node directly (no scheduler) and tolerating kwok-a2's taint.
pub fn pod(i: usize) -> Pod {
    let (app, tier) = APPS[i % APPS.len()];
    let shard = (i / APPS.len()) % 16;
    let mut containers = vec![json!({
        "name": app,
        "image": format!("registry.example.com/shop/{app}:1.{}.{}", i % 7, i % 3),
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "SHARD", "value": shard.to_string()},
            {"name": "LOG_LEVEL", "value": "info"},
        ],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"memory": "64Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
    })];
    if i.is_multiple_of(3) {
        containers.push(json!({
            "name": "envoy",
            "image": "docker.io/envoyproxy/envoy:v1.31.2",
            "args": ["--config-path", "/etc/envoy/envoy.yaml"],
            "ports": [{"name": "admin", "containerPort": 9901, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "5m", "memory": "16Mi"}},
        }));
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{app}-{i:05}"),
            "namespace": NAMESPACE,
            "labels": {
                "app": app,
                "tier": tier,
                "shard": shard.to_string(),
                "app.kubernetes.io/part-of": "shop",
            },
        },
        "spec": {
            "nodeName": NODES[i % NODES.len()].0,
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}
            ],
            "containers": containers,
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 5,
        },
    }))
    .expect("pod")
}

/// Deletes the namespace (its pods first, without grace, so KWOK need not finish them) and waits
/// until it is gone. Nothing when it is not there.
pub async fn delete_namespace(kube: &kube::Client) {
    let namespaces = Api::<Namespace>::all(kube.clone());
    if namespaces
        .get_opt(NAMESPACE)
        .await
        .expect("get namespace")
        .is_none()
    {
        return;
    }
    let started = Instant::now();
    let pods = Api::<Pod>::namespaced(kube.clone(), NAMESPACE);
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    if let Err(e) = pods.delete_collection(&now, &ListParams::default()).await {
        eprintln!("deleting the pods of {NAMESPACE}: {e} (the namespace deletion will do it)");
    }
    match namespaces.delete(NAMESPACE, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return,
        Err(e) => panic!("deleting namespace {NAMESPACE}: {e}"),
    }
    poll_until(
        &format!("namespace {NAMESPACE} to be gone (is kube-controller-manager running?)"),
        Duration::from_secs(300),
        || async {
            namespaces
                .get_opt(NAMESPACE)
                .await
                .expect("get namespace")
                .is_none()
        },
    )
    .await;
    println!(
        "  namespace {NAMESPACE} deleted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Creates the namespace and `count` pods in it, then waits until KWOK has them all Running.
pub async fn create_pods(kube: &kube::Client, count: usize) {
    let namespaces = Api::<Namespace>::all(kube.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"flotilla.dev/bench": "list_pods"}},
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {NAMESPACE}: {e}"));
    // The ServiceAccount admission plugin refuses pods until the namespace's default account
    // exists (kube-controller-manager creates it).
    let accounts = Api::<ServiceAccount>::namespaced(kube.clone(), NAMESPACE);
    poll_until(
        "the default ServiceAccount in the new namespace (is kube-controller-manager running?)",
        Duration::from_secs(60),
        || async { matches!(accounts.get_opt("default").await, Ok(Some(_))) },
    )
    .await;

    let started = Instant::now();
    let pods = Api::<Pod>::namespaced(kube.clone(), NAMESPACE);
    let created = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(0..count)
        .for_each_concurrent(64, |i| {
            let (pods, created) = (&pods, &created);
            async move {
                let pod = pod(i);
                let mut attempt = 0;
                loop {
                    match pods.create(&PostParams::default(), &pod).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(e)) if e.code == 409 => break,
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            eprintln!("  creating pod {i}: {e}; retrying");
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => panic!("creating pod {i}: {e}"),
                    }
                }
                let n = created.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(1000) || n == count {
                    println!(
                        "  created {n}/{count} pods ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .await;
    let created_in = started.elapsed();

    let limit = Duration::from_secs(300 + count as u64 / 50);
    let mut last_report = Instant::now();
    loop {
        let list = pods.list(&ListParams::default()).await.expect("list pods");
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= count {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "only {running}/{count} pods Running after {limit:?}: is kwok running? \
             (scripts/kube-env status; its log is in target/kube-env/logs/)"
        );
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!(
                "  {running}/{count} pods Running ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "  {count} pods created in {:.1} s ({:.0}/s), all Running after {:.1} s",
        created_in.as_secs_f64(),
        count as f64 / created_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
