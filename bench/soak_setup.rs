//! The Kubernetes side of the soak: namespaces on the test control plane's first API server,
//! pods whose logs KWOK serves from files this process appends to, Events created (and the
//! oldest deleted, so each namespace's event count stays flat) at a steady rate, and the cluster
//! imported into Flotilla.

use std::time::Duration;

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use flotilla_test_support as support;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use support::kube::{PodLogFile, TestNamespace};
use tokio_util::sync::CancellationToken;

use crate::{
    Knobs,
    soak_load::{Channels, bearer},
};

/// Events kept per namespace: each new one deletes the one this many before it.
const EVENTS_KEPT: u64 = 100;

pub struct Kube {
    /// The log pods' namespace (also the first event namespace).
    pub namespace: String,
    pub pods: Vec<String>,
    /// Where events are created and watched.
    pub event_namespaces: Vec<String>,
    namespaces: Vec<TestNamespace>,
    log_files: Vec<PodLogFile>,
}

/// The one cluster the soak keeps imported: the first API server. (A cluster can be imported
/// once, by its kube-system UID; the second API server is the one the churn imports and
/// detaches.)
pub const CLUSTER: &str = "soak";

impl Kube {
    /// The event namespaces on the first API server, and the log pods in the first of them.
    pub async fn prepare(knobs: &Knobs) -> Kube {
        let client = support::kube::client().await;
        let mut namespaces = Vec::new();
        for _ in 0..knobs.event_namespaces {
            namespaces.push(TestNamespace::create(&client, "soak").await);
        }
        let ns = &namespaces[0];
        let pods: Vec<String> = (0..knobs.log_pods).map(|i| format!("log-{i:03}")).collect();
        let api: Api<Pod> = ns.api();
        for (i, name) in pods.iter().enumerate() {
            let node = if i % 2 == 0 { "kwok-a1" } else { "kwok-b1" };
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": {"app": "soak"}},
                "spec": {
                    "nodeName": node,
                    "containers": [{"name": "main", "image": "registry.example.com/soak:1"}],
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 0,
                },
            }))
            .expect("pod");
            api.create(&PostParams::default(), &pod)
                .await
                .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
        }
        let log_files = futures::future::join_all(pods.iter().map(|name| ns.pod_logs(name))).await;
        let event_namespaces: Vec<String> =
            namespaces.iter().map(|n| n.name().to_string()).collect();
        println!(
            "soak: namespaces {}; {} pods with KWOK logs in the first",
            event_namespaces.join(", "),
            pods.len()
        );
        Kube {
            namespace: ns.name().to_string(),
            pods,
            event_namespaces,
            namespaces,
            log_files,
        }
    }

    /// Imports [`CLUSTER`].
    pub async fn import_cluster(&self, channels: &Channels) {
        ClusterServiceClient::with_interceptor(channels.unary[0].clone(), bearer())
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: CLUSTER.into(),
                source: Some(pb::import_cluster_request::Source::Kubeconfig(
                    pb::KubeconfigSource {
                        kubeconfig: support::kubeconfigs::admin_kubeconfig().into_bytes(),
                        context: String::new(),
                    },
                )),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("importing {CLUSTER}: {e}"));
    }

    /// Appends `seq N` to every pod's log file at the configured rate until `stop`.
    pub fn write_logs(
        &self,
        knobs: Knobs,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let files = self.log_files.clone();
        async move {
            let started = tokio::time::Instant::now();
            let mut seq = 0u64;
            loop {
                let due = started + Duration::from_secs_f64(seq as f64 / knobs.log_lines_per_sec);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep_until(due) => {}
                }
                for file in &files {
                    file.stdout(&format!("soak line seq {seq}"));
                }
                seq += 1;
            }
        }
    }

    /// A client of the first API server, for the event creators.
    pub fn client(&self) -> Client {
        self.namespaces[0].client().clone()
    }

    /// Deletes the namespaces and the log files.
    pub async fn cleanup(self) {
        for ns in self.namespaces {
            ns.cleanup().await;
        }
    }
}

/// Creates an Event `soak seq N` in `namespace` every 1/`per_sec` s (one at a time, so they
/// arrive in order) and deletes the one [`EVENTS_KEPT`] before it, until `stop`.
pub async fn create_events(
    client: Client,
    namespace: String,
    per_sec: f64,
    stop: CancellationToken,
) {
    let api: Api<Event> = Api::namespaced(client, &namespace);
    let started = tokio::time::Instant::now();
    let mut seq = 0u64;
    let mut failures = 0u64;
    loop {
        let due = started + Duration::from_secs_f64(seq as f64 / per_sec);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("soak-{seq}")},
            "involvedObject": {"kind": "Pod", "name": "log-000", "namespace": namespace},
            "reason": "Soak", "message": format!("soak seq {seq}"), "type": "Normal",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "source": {"component": "flotilla-soak"},
        }))
        .expect("event");
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            failures += 1;
            if failures <= 5 {
                eprintln!("soak: creating event soak-{seq} in {namespace}: {e}");
            }
        }
        if seq >= EVENTS_KEPT {
            let _ = api
                .delete(
                    &format!("soak-{}", seq - EVENTS_KEPT),
                    &DeleteParams::default(),
                )
                .await;
        }
        seq += 1;
    }
    if failures > 0 {
        eprintln!("soak: {failures} of {seq} events in {namespace} could not be created");
    }
}

/// The 1-minute load average of the machine.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// `$SOAK_BINARY_COMMIT` (the wrapper sets it from the binary's checkout), else unknown.
pub fn binary_commit(_binary: &str) -> String {
    std::env::var("SOAK_BINARY_COMMIT").unwrap_or_else(|_| "commit unknown".into())
}
