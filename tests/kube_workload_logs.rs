//! StreamWorkloadLogs: every pod of a workload, merged and tagged, new pods picked up, gone
//! pods marked, and the per-request pod cap.

use flotilla_test_support as support;

use std::{
    collections::HashSet,
    io::Write,
    time::{Duration, Instant},
};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
    workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use support::{
    kube::{self as kenv, TestNamespace},
    kubeconfigs,
    server::TestServer,
};
use tonic::{Code, Streaming};

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "example.com/wl:1"}]}
            }
        }
    }))
    .expect("deployment")
}

/// Pods without a KWOK Logs object of their own read this shared file.
fn append_shared_log(line: &str) {
    let path = kenv::env().pod_logs_dir().join("default.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let now = k8s_openapi::jiff::Timestamp::now();
    writeln!(file, "{}", kenv::cri_line(now, "stdout", line).trim_end()).expect("append");
}

async fn running(ns: &TestNamespace, app: &str) -> usize {
    ns.api::<Pod>()
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("pods")
        .items
        .iter()
        .filter(|p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
        })
        .count()
}

async fn wait_running(ns: &TestNamespace, app: &str, n: usize) {
    let started = Instant::now();
    while running(ns, app).await != n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{n} pods not running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads entries until `done` says so, within a bound.
async fn read_until(
    stream: &mut Streaming<pb::StreamWorkloadLogsResponse>,
    mut done: impl FnMut(&pb::LogEntry) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, stream.message())
            .await
            .expect("entries in time")
            .expect("stream ok")
            .expect("stream open");
        for entry in &message.entries {
            if matches!(
                entry.kind(),
                pb::LogEntryKind::Error | pb::LogEntryKind::End | pb::LogEntryKind::PodEnded
            ) {
                eprintln!(
                    "{:?} {}/{}/{}: {}",
                    entry.kind(),
                    entry.cluster_id,
                    entry.pod,
                    entry.container,
                    entry.content
                );
            }
            if done(entry) {
                return;
            }
        }
    }
}

#[tokio::test]
async fn workload_logs_follow_pods_as_they_come_and_go() {
    let ns = TestNamespace::create(&kenv::client().await, "wlogs").await;
    ns.api::<Deployment>()
        .create(&PostParams::default(), &deployment("wl", 2))
        .await
        .expect("deployment");
    wait_running(&ns, "wl", 2).await;
    let server = TestServer::start_with(|s| s.max_log_pods = 3).await;
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "local".into(),
            labels: [("env".to_string(), "test".to_string())].into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");
    let mut logs = LogStreamClient::new(server.channel().await);
    let request = pb::StreamWorkloadLogsRequest {
        cluster_label_selector: "env=test".into(),
        namespace: ns.name().into(),
        pods: Some(pb::stream_workload_logs_request::Pods::Workload(
            pb::WorkloadReference {
                kind: pb::WorkloadKind::Deployment.into(),
                name: "wl".into(),
            },
        )),
        options: Some(pb::LogOptions {
            follow: true,
            tail_lines: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut stream = logs
        .stream_workload_logs(request.clone())
        .await
        .expect("workload logs")
        .into_inner();
    let mut started = HashSet::new();
    read_until(&mut stream, |e| {
        if e.kind() == pb::LogEntryKind::PodStarted {
            assert_eq!(e.cluster_id, "local");
            started.insert(e.pod.clone());
        }
        started.len() == 2
    })
    .await;

    // A line reaches us once per pod, tagged with pod and container.
    let marker = format!("wl-line-{}", uuid::Uuid::new_v4().simple());
    tokio::time::sleep(Duration::from_millis(300)).await;
    append_shared_log(&marker);
    let mut from = HashSet::new();
    read_until(&mut stream, |e| {
        if e.kind() == pb::LogEntryKind::Line && e.content == marker {
            assert_eq!(e.container, "main");
            from.insert(e.pod.clone());
        }
        from.len() == 2
    })
    .await;
    assert_eq!(from, started);

    // A new pod (scale up) is picked up; a deleted one ends with a marker.
    WorkloadServiceClient::new(server.channel().await)
        .scale_workload(pb::ScaleWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::Deployment.into(),
            name: "wl".into(),
            replicas: 3,
        })
        .await
        .expect("scale");
    let mut third = None;
    read_until(&mut stream, |e| {
        if e.kind() == pb::LogEntryKind::PodStarted && !started.contains(&e.pod) {
            third = Some(e.pod.clone());
        }
        third.is_some()
    })
    .await;
    let gone = started.iter().next().cloned().expect("a pod");
    ns.api::<Pod>()
        .delete(&gone, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    read_until(&mut stream, |e| {
        e.kind() == pb::LogEntryKind::PodEnded && e.pod == gone
    })
    .await;
    drop(stream);

    // Over the cap: refused, naming the count and the cap.
    wait_running(&ns, "wl", 3).await;
    WorkloadServiceClient::new(server.channel().await)
        .scale_workload(pb::ScaleWorkloadRequest {
            cluster_id: "local".into(),
            namespace: ns.name().into(),
            kind: pb::WorkloadKind::Deployment.into(),
            name: "wl".into(),
            replicas: 4,
        })
        .await
        .expect("scale");
    wait_running(&ns, "wl", 4).await;
    let status = logs.stream_workload_logs(request).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("4 pods") && status.message().contains("at most 3"),
        "{}",
        status.message()
    );
    server.shutdown().await;
    ns.cleanup().await;
}

/// Appends a line to the file every pod of the *second* cluster reads (no Logs object there).
fn append_second_cluster_log(line: &str) {
    let path = kenv::env().pod_logs_dir().join("second-default.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let now = k8s_openapi::jiff::Timestamp::now();
    writeln!(file, "{}", kenv::cri_line(now, "stdout", line).trim_end()).expect("append");
}

fn labelled_pod(name: &str, app: &str, node: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "example.com/wl:1"}]}
    }))
    .expect("pod")
}

/// The same namespace on the second cluster, which has no controllers: the test makes the
/// default ServiceAccount and, at the end, finalizes the namespace itself.
struct SecondNamespace {
    client: kube::Client,
    name: String,
}

impl SecondNamespace {
    async fn create(name: &str) -> SecondNamespace {
        use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
        let path = kenv::env().dir().join("kubeconfig-second");
        let client = kenv::client_from_kubeconfig(&path)
            .await
            .expect("second cluster client");
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("ns");
        kube::Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace on the second cluster");
        let sa: ServiceAccount =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}}))
                .expect("sa");
        kube::Api::<ServiceAccount>::namespaced(client.clone(), name)
            .create(&PostParams::default(), &sa)
            .await
            .expect("default ServiceAccount");
        SecondNamespace {
            client,
            name: name.to_string(),
        }
    }

    fn pods(&self) -> kube::Api<Pod> {
        kube::Api::namespaced(self.client.clone(), &self.name)
    }

    async fn cleanup(self) {
        use k8s_openapi::api::core::v1::Namespace;
        let _ = self
            .pods()
            .delete_collection(
                &DeleteParams::default().grace_period(0),
                &ListParams::default(),
            )
            .await;
        let namespaces = kube::Api::<Namespace>::all(self.client.clone());
        let _ = namespaces
            .delete(&self.name, &DeleteParams::default())
            .await;
        // No namespace controller there: empty the finalizers so the namespace goes.
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.name}, "spec": {"finalizers": []}
        });
        let _ = namespaces
            .replace_subresource("finalize", &self.name, &PostParams::default(), &body)
            .await;
    }
}

async fn wait_second_running(second: &SecondNamespace, name: &str) {
    let started = Instant::now();
    loop {
        let pod = second.pods().get(name).await.expect("pod");
        let running = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
            });
        if running {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "pod {name} not running on the second cluster"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn workload_logs_span_two_clusters() {
    let ns = TestNamespace::create(&kenv::client().await, "wl2c").await;
    let second = SecondNamespace::create(ns.name()).await;
    let app = format!("two-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    ns.api::<Pod>()
        .create(
            &PostParams::default(),
            &labelled_pod("in-one", &app, "kwok-a1"),
        )
        .await
        .expect("pod on the first cluster");
    second
        .pods()
        .create(
            &PostParams::default(),
            &labelled_pod("in-two", &app, "kwok-s1"),
        )
        .await
        .expect("pod on the second cluster");
    wait_running(&ns, &app, 1).await;
    wait_second_running(&second, "in-two").await;

    let server = TestServer::start().await;
    let mut clusters = ClusterServiceClient::new(server.channel().await);
    for (id, server_url) in [
        ("one", kubeconfigs::server()),
        ("two", kubeconfigs::second_server()),
    ] {
        clusters
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: id.into(),
                labels: [("fleet".to_string(), app.clone())].into(),
                source: Some(pb::import_cluster_request::Source::Kubeconfig(
                    pb::KubeconfigSource {
                        kubeconfig: kubeconfigs::admin_kubeconfig_at(&server_url).into_bytes(),
                        context: String::new(),
                    },
                )),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("import {id}: {e}"));
    }
    let mut logs = LogStreamClient::new(server.channel().await);
    let by_ids = pb::StreamWorkloadLogsRequest {
        cluster_ids: vec!["one".into(), "two".into()],
        namespace: ns.name().into(),
        pods: Some(pb::stream_workload_logs_request::Pods::LabelSelector(
            format!("app={app}"),
        )),
        options: Some(pb::LogOptions {
            follow: true,
            tail_lines: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    let by_labels = pb::StreamWorkloadLogsRequest {
        cluster_ids: Vec::new(),
        cluster_label_selector: format!("fleet={app}"),
        ..by_ids.clone()
    };
    for request in [by_ids, by_labels] {
        let mut stream = logs
            .stream_workload_logs(request)
            .await
            .expect("workload logs")
            .into_inner();
        let mut started = HashSet::new();
        read_until(&mut stream, |e| {
            if e.kind() == pb::LogEntryKind::PodStarted {
                started.insert((e.cluster_id.clone(), e.pod.clone()));
            }
            started.len() == 2
        })
        .await;
        assert_eq!(
            started,
            HashSet::from([
                ("one".to_string(), "in-one".to_string()),
                ("two".to_string(), "in-two".to_string()),
            ])
        );
        let marker = uuid::Uuid::new_v4().simple().to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        append_shared_log(&format!("first {marker}"));
        append_second_cluster_log(&format!("second {marker}"));
        let mut lines = HashSet::new();
        read_until(&mut stream, |e| {
            if e.kind() == pb::LogEntryKind::Line && e.content.ends_with(&marker) {
                lines.insert((e.cluster_id.clone(), e.pod.clone(), e.content.clone()));
            }
            lines.len() == 2
        })
        .await;
        assert_eq!(
            lines,
            HashSet::from([
                ("one".into(), "in-one".into(), format!("first {marker}")),
                ("two".into(), "in-two".into(), format!("second {marker}")),
            ]),
            "each cluster's line, tagged with its cluster"
        );
    }
    server.shutdown().await;
    second.cleanup().await;
    ns.cleanup().await;
}
