//! What is deployed where, against the second test cluster (no controllers, so nothing
//! rewrites what the test puts there): a pod whose status reports an image id naming a digest,
//! owned by a Deployment's ReplicaSet. The expected answers are what the test wrote into the
//! API server; the fake provider's counters say whether a delete was sent.

use flotilla_test_support as support;

use futures::FutureExt;

use flotilla::proto::{
    self as pb, admin_service_client::AdminServiceClient,
    cluster_service_client::ClusterServiceClient,
};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use support::{kube as kenv, kubeconfigs};
use tonic::Code;

use super::fixture::{Fixture, PASSWORD, USER, digest, reason};

async fn second_cluster() -> kube::Client {
    let path = kenv::env().dir().join("kubeconfig-second");
    kenv::client_from_kubeconfig(&path)
        .await
        .expect("second cluster client")
}

/// A namespace with a pod of Deployment "web" (ReplicaSet web-7c9d) on a node nobody runs,
/// whose status says its container runs `image_id`.
async fn running_pod(client: &kube::Client, ns: &str, image_id: &str) {
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}})).expect("sa");
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
        .expect("default ServiceAccount");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "web-7c9d-x1",
            "labels": {"app": "web", "pod-template-hash": "7c9d"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c9d",
                "uid": "00000000-0000-0000-0000-000000007c9d", "controller": true
            }]
        },
        "spec": {
            "nodeName": "no-such-node",
            "containers": [{"name": "app", "image": "reg.registry.test/team/app:v1"}]
        }
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod");
    let status = serde_json::json!({"status": {
        "phase": "Running",
        "containerStatuses": [{
            "name": "app", "image": "reg.registry.test/team/app:v1", "imageID": image_id,
            "ready": true, "restartCount": 0, "state": {"running": {}}
        }]
    }});
    pods.patch_status(
        "web-7c9d-x1",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .expect("pod status");
}

async fn cleanup(client: &kube::Client, ns: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let _ = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await;
    let namespaces = Api::<Namespace>::all(client.clone());
    let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    // No namespace controller there: empty the finalizers so the namespace goes.
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns}, "spec": {"finalizers": []}
    });
    let _ = namespaces
        .replace_subresource("finalize", ns, &PostParams::default(), &body)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_runs_where_and_deleting_a_running_artifact() {
    let kube = second_cluster().await;
    let ns = format!(
        "t-regdeploy-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    // Unique per run: the shared cluster may hold pods of earlier runs.
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let running = format!("sha256:{unique}{unique}");
    running_pod(&kube, &ns, &format!("reg.registry.test/team/app@{running}")).await;
    // Clean up even when an assertion fails: the cluster is shared.
    let outcome = std::panic::AssertUnwindSafe(check(&ns, &running))
        .catch_unwind()
        .await;
    cleanup(&kube, &ns).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn check(ns: &str, running: &str) {
    let (ns, running) = (ns.to_string(), running.to_string());
    let f = Fixture::sqlite().await;
    f.credential("good", USER, PASSWORD).await;
    f.registry("reg", "good", &[]).await;
    f.fake.push("team/app", &running, &["v1"]);
    f.fake.push("team/app", &digest(2), &["v2"]);
    ClusterServiceClient::new(f.server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "second".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig_at(&kubeconfigs::second_server())
                        .into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import the second cluster");
    let mut c = f.client().await;
    let listed = c
        .list_artifacts(pb::ListArtifactsRequest {
            registry_id: "reg".into(),
            repository: "team/app".into(),
            include_deployments: true,
            ..Default::default()
        })
        .await
        .expect("artifacts with deployments")
        .into_inner();
    assert!(listed.unreachable.is_empty(), "{:?}", listed.unreachable);
    let by_digest = |d: &str| {
        listed
            .artifacts
            .iter()
            .find(|a| a.digest == d)
            .expect("artifact")
            .deployments
            .clone()
    };
    assert_eq!(
        by_digest(&running),
        [pb::ArtifactDeployment {
            cluster_id: "second".into(),
            namespace: ns.clone(),
            workload_kind: "Deployment".into(),
            workload_name: "web".into(),
            pod_count: 1,
        }]
    );
    assert!(by_digest(&digest(2)).is_empty(), "v2 runs nowhere");

    // A token that may not see the cluster sees no deployments there.
    let mut admin = AdminServiceClient::new(f.server.channel().await);
    let scoped = admin
        .create_api_token(pb::CreateApiTokenRequest {
            name: "elsewhere".into(),
            role: pb::Role::Viewer.into(),
            cluster_ids: vec!["other".into()],
            expire_time: None,
        })
        .await
        .expect("token")
        .into_inner()
        .secret;
    let hidden = f
        .client_as(&scoped)
        .await
        .get_artifact(pb::GetArtifactRequest {
            registry_id: "reg".into(),
            repository: "team/app".into(),
            reference: "v1".into(),
            include_deployments: true,
        })
        .await
        .expect("get as a scoped viewer")
        .into_inner();
    assert!(hidden.artifact.expect("artifact").deployments.is_empty());

    // Deleting what runs is refused, naming the workload, and nothing is sent; force deletes.
    let delete = |reference: &str, force: bool| pb::DeleteArtifactRequest {
        registry_id: "reg".into(),
        repository: "team/app".into(),
        reference: reference.into(),
        force,
    };
    for reference in ["v1", running.as_str()] {
        let status = c
            .delete_artifact(delete(reference, false))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{reference}: {status:?}"
        );
        assert_eq!(reason(&status), "ARTIFACT_IN_USE");
        assert!(
            status
                .message()
                .contains(&format!("second/{ns}/Deployment/web")),
            "{status:?}"
        );
    }
    let calls = f.fake.calls();
    assert!(!calls.contains_key("delete_tag") && !calls.contains_key("delete_artifact"));
    c.delete_artifact(delete("v2", false))
        .await
        .expect("v2 runs nowhere");
    c.delete_artifact(delete("v1", true)).await.expect("forced");
    assert_eq!(f.fake.calls().get("delete_tag"), Some(&2));
    f.server.shutdown().await;
}
