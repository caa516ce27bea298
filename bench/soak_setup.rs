//! The Kubernetes side of the soak: a namespace on each API server of the test control plane,
//! pods whose logs KWOK serves from files this process appends to, Events created (and the
//! oldest deleted, so the namespace's event count stays flat) at a steady rate, and the clusters
//! imported into Flotilla.

use std::time::Duration;

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use flotilla_test_support as support;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
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
    pub namespace: String,
    pub pods: Vec<String>,
    first: TestNamespace,
    second: Client,
    log_files: Vec<PodLogFile>,
}

impl Kube {
    /// The namespace on both API servers and the log pods on the first.
    pub async fn prepare(knobs: &Knobs) -> Kube {
        let first = support::kube::client().await;
        let ns = TestNamespace::create(&first, "soak").await;
        let second = support::kube::client_from_kubeconfig(
            &support::kube::env().dir().join("kubeconfig-second"),
        )
        .await
        .expect("second cluster client (kubeconfig-second)");
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns.name()}}))
                .expect("namespace");
        Api::<Namespace>::all(second.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace on the second cluster");

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
        let log_files =
            futures::future::join_all(pods.iter().map(|name| ns.pod_logs(name))).await;
        println!(
            "soak: namespace {} on both API servers; {} pods with KWOK logs",
            ns.name(),
            pods.len()
        );
        Kube {
            namespace: ns.name().to_string(),
            pods,
            first: ns,
            second,
            log_files,
        }
    }

    /// Imports `soak-1..soak-N`, alternating between the first and the second API server.
    /// Returns (clusters on the first API server, every cluster).
    pub async fn import_clusters(
        &self,
        channels: &Channels,
        knobs: &Knobs,
    ) -> (Vec<String>, Vec<String>) {
        let mut client = ClusterServiceClient::with_interceptor(channels.unary[0].clone(), bearer());
        let (mut on_first, mut all) = (Vec::new(), Vec::new());
        for i in 0..knobs.event_clusters.max(1) {
            let id = format!("soak-{}", i + 1);
            let server = if i % 2 == 0 {
                support::kubeconfigs::server()
            } else {
                support::kubeconfigs::second_server()
            };
            client
                .import_cluster(pb::ImportClusterRequest {
                    cluster_id: id.clone(),
                    source: Some(pb::import_cluster_request::Source::Kubeconfig(
                        pb::KubeconfigSource {
                            kubeconfig: support::kubeconfigs::admin_kubeconfig_at(&server)
                                .into_bytes(),
                            context: String::new(),
                        },
                    )),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("importing {id}: {e}"));
            if i % 2 == 0 {
                on_first.push(id.clone());
            }
            all.push(id);
        }
        (on_first, all)
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

    /// A client per API server, for the event creators.
    pub fn event_clients(&self) -> Vec<Client> {
        vec![self.first.client().clone(), self.second.clone()]
    }

    /// Deletes the namespace on both API servers (finalizing it on the second, which has no
    /// namespace controller) and the log files.
    pub async fn cleanup(self) {
        let events: Api<Event> = Api::namespaced(self.second.clone(), &self.namespace);
        let _ = events
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        let namespaces = Api::<Namespace>::all(self.second.clone());
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::default())
            .await;
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.namespace}, "spec": {"finalizers": []}
        });
        let _ = namespaces
            .replace_subresource("finalize", &self.namespace, &PostParams::default(), &body)
            .await;
        self.first.cleanup().await;
    }
}

/// Creates an Event `soak seq N` in `namespace` every 1/`per_sec` s (one at a time, so they
/// arrive in order) and deletes the one [`EVENTS_KEPT`] before it, until `stop`.
pub async fn create_events(client: Client, namespace: String, per_sec: f64, stop: CancellationToken) {
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
                .delete(&format!("soak-{}", seq - EVENTS_KEPT), &DeleteParams::default())
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
