//! Checks that the local control plane from `scripts/kube-env up` is usable from kube-rs:
//! simulated nodes, scheduling + KWOK pod lifecycle, pod logs through the API server, and
//! streaming-list watches (which need etcd >= 3.5.13).
//!
//! Run `scripts/kube-env up` first.

use flotilla_test_support as support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Node, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, LogParams, ObjectMeta, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use support::kube::{NODES, READONLY_NAMESPACE, TestNamespace};
use tokio::time::{Instant, timeout};

fn labels(app: &str) -> BTreeMap<String, String> {
    [("app".to_string(), app.to_string())].into()
}

fn pod_spec() -> PodSpec {
    PodSpec {
        containers: vec![Container {
            name: "main".into(),
            // never pulled: KWOK only simulates the pod
            image: Some("registry.invalid/flotilla/test:1".into()),
            ..Container::default()
        }],
        ..PodSpec::default()
    }
}

#[tokio::test]
async fn nodes_are_ready_with_zones_and_taint() {
    let client = support::kube::client().await;
    let nodes = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        nodes.items.len(),
        NODES.len(),
        "nodes: {:?}",
        nodes.items.iter().map(|n| n.name_any()).collect::<Vec<_>>()
    );
    for (name, zone, taint) in NODES {
        let node = nodes
            .items
            .iter()
            .find(|n| n.name_any() == name)
            .unwrap_or_else(|| panic!("node {name} missing"));
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        assert_eq!(ready, Some("True"), "node {name} not Ready");
        assert_eq!(
            node.labels()
                .get("topology.kubernetes.io/zone")
                .map(String::as_str),
            Some(zone)
        );
        let taints: Vec<String> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(|t| {
                format!(
                    "{}={}:{}",
                    t.key,
                    t.value.as_deref().unwrap_or(""),
                    t.effect
                )
            })
            .collect();
        assert_eq!(
            taints,
            taint.into_iter().map(String::from).collect::<Vec<_>>(),
            "taints of {name}"
        );
    }
}

#[tokio::test]
async fn deployment_gets_three_running_pods() {
    let client = support::kube::client().await;
    let ns = TestNamespace::create(&client, "deployment").await;
    let deployment = Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(3),
            selector: LabelSelector {
                match_labels: Some(labels("web")),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels("web")),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec()),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    };
    ns.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let pods = ns.api::<Pod>();
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        let running: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        if running.len() == 3 {
            break running;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 3 pods Running after 60 s",
            running.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for p in &running {
        let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        assert!(node.is_some(), "pod {} not bound", p.name_any());
        // kwok-a2 carries dedicated=infra:NoSchedule and the pods don't tolerate it
        assert_ne!(
            node,
            Some("kwok-a2"),
            "pod {} scheduled onto the tainted node",
            p.name_any()
        );
        assert!(
            p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some(),
            "pod {} has no IP",
            p.name_any()
        );
    }
    ns.cleanup().await;
}

#[tokio::test]
async fn follow_pod_logs_through_the_api_server() {
    let client = support::kube::client().await;
    let ns = TestNamespace::create(&client, "logs").await;
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("chatty".into()),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec()),
        ..Pod::default()
    };
    ns.api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let log = ns.pod_logs("chatty").await;
    log.stdout("line before the request");

    let lp = LogParams {
        follow: true,
        container: Some("main".into()),
        ..LogParams::default()
    };
    let stream = ns.api::<Pod>().log_stream("chatty", &lp).await.unwrap();
    let mut lines = stream.lines();
    let mut next = async || -> String {
        timeout(Duration::from_secs(20), lines.next())
            .await
            .expect("timed out waiting for a log line")
            .expect("log stream ended")
            .expect("log stream error")
    };
    assert_eq!(next().await, "line before the request");
    // The stream is live now: these are written after the request started.
    log.stdout("appended 1");
    log.stderr("appended 2 on stderr");
    assert_eq!(next().await, "appended 1");
    assert_eq!(next().await, "appended 2 on stderr");
    tokio::time::sleep(Duration::from_millis(300)).await;
    log.stdout("appended 3, later");
    assert_eq!(next().await, "appended 3, later");
    drop(lines);
    ns.cleanup().await;
}

#[tokio::test]
async fn streaming_list_watcher_sees_events() {
    let client = support::kube::client().await;
    let ns = TestNamespace::create(&client, "watch").await;
    let cms = ns.api::<ConfigMap>();
    let cm = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..ConfigMap::default()
    };
    cms.create(&PostParams::default(), &cm("existing"))
        .await
        .unwrap();

    let mut events = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    let result = timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.try_next().await.expect("watcher error") {
            match ev {
                watcher::Event::InitApply(o) => initial.push(o.name_any()),
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(result.is_ok(), "no InitDone within 30 s");
    assert!(
        initial.contains(&"existing".to_string()),
        "initial list: {initial:?}"
    );

    cms.create(&PostParams::default(), &cm("created-later"))
        .await
        .unwrap();
    let seen = timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.try_next().await.expect("watcher error") {
            if let watcher::Event::Apply(o) = ev
                && o.name_any() == "created-later"
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "no Apply event for created-later");
    drop(events);
    ns.cleanup().await;
}

#[tokio::test]
async fn readonly_and_wrong_ca_kubeconfigs() {
    let env = support::kube::env();
    let ro = support::kube::client_from_kubeconfig(&env.readonly_kubeconfig())
        .await
        .unwrap();
    Api::<Pod>::namespaced(ro.clone(), READONLY_NAMESPACE)
        .list(&ListParams::default())
        .await
        .expect("readonly may list pods in its namespace");
    let err = Api::<Pod>::namespaced(ro.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect_err("readonly must not list pods in default");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err:?}"
    );
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("nope".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    let err = Api::<ConfigMap>::namespaced(ro, READONLY_NAMESPACE)
        .create(&PostParams::default(), &cm)
        .await
        .expect_err("readonly must not create");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err:?}"
    );

    let wrong = support::kube::client_from_kubeconfig(&env.wrong_ca_kubeconfig())
        .await
        .unwrap();
    let err = wrong
        .apiserver_version()
        .await
        .expect_err("a client with the wrong CA must fail");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "expected a TLS error, got {err:?}"
    );
}
