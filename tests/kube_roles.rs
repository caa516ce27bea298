//! Kubernetes access follows each caller's role, against the real test control plane
//! (`scripts/kube-env up`), in both access modes:
//! - built-in: Flotilla's own rules (viewers see no Secret data or last-applied annotation;
//!   operators change only namespaced kinds outside a deny list);
//! - impersonation: every call for a caller impersonates `flotilla:<token name>` in group
//!   `flotilla:<role>`, so the cluster's RBAC decides and its audit log names the caller.
//!
//! Expected answers come from outside Flotilla: the API server's objects (read with the admin
//! kubeconfig) and its own audit log ($FLOTILLA_KUBE_AUDIT_LOG).

use flotilla_test_support as support;

use std::{
    panic::AssertUnwindSafe,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use futures::FutureExt;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace, Secret},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role},
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use serde_json::Value;
use tonic::Code;
use tonic_types::StatusExt;

#[path = "kube_roles/fixture.rs"]
mod fixture;

use fixture::*;
use support::{
    kube as kenv, kubeconfigs,
    server::{AuthedChannel, TestServer},
};

async fn viewer_reads_no_secret_data(mode: Mode) {
    let mut s = Setup::start("roles-view", mode).await;
    let (kube, ns) = (s.kube.clone(), s.ns());
    cleaning_up(&kube, &ns, viewer_checks(&mut s, mode)).await;
    s.cleanup().await;
}

async fn viewer_checks(s: &mut Setup, mode: Mode) {
    let secret_value = seed_objects(s).await;
    let ns = s.ns();

    // An admin still reads the data (so the secret really has some to hide) in built-in mode.
    if mode == Mode::BuiltIn {
        let admin_view = s
            .admin
            .get_resource(get_request("Secret", "v1", &ns, "db"))
            .await
            .expect("admin get")
            .into_inner()
            .resource
            .expect("resource");
        assert!(admin_view.json.contains(&STANDARD.encode(&secret_value)));
    }

    let lists = [
        list_request("Secret", "v1", &ns),
        list_request("Secret", "v1", ""),
        list_request("Secret", "v1", "kube-system"),
    ];
    for request in lists {
        let answer = s.viewer.list_resources(request.clone()).await;
        match (mode, answer) {
            (Mode::BuiltIn, Ok(list)) => {
                let list = list.into_inner();
                if request.namespace == ns {
                    assert!(list.resources.iter().any(|r| r.name == "db"), "listed");
                }
                for r in &list.resources {
                    let json: Value = serde_json::from_str(&r.json).unwrap();
                    assert!(json.get("data").is_none(), "{}: data in {}", r.name, r.json);
                    assert!(json.get("stringData").is_none());
                    assert!(!r.annotations.contains_key(LAST_APPLIED));
                }
                assert_clean("ListResources", &format!("{list:?}"), &secret_value);
            }
            // The cluster's `view` ClusterRole does not read Secrets.
            (Mode::Impersonation, Err(status)) => {
                assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
                assert_clean("ListResources error", status.message(), &secret_value);
            }
            (mode, other) => panic!("{mode:?} {request:?}: {other:?}"),
        }
    }
    let got = s
        .viewer
        .get_resource(get_request("Secret", "v1", &ns, "db"))
        .await;
    match (mode, got) {
        (Mode::BuiltIn, Ok(r)) => {
            let r = r.into_inner().resource.expect("resource");
            assert_eq!(r.name, "db");
            assert_clean("GetResource", &format!("{r:?}"), &secret_value);
        }
        (Mode::Impersonation, Err(status)) => assert_eq!(status.code(), Code::PermissionDenied),
        (mode, other) => panic!("{mode:?} GetResource: {other:?}"),
    }

    // The Deployment is readable in both modes, without the last-applied annotation, through
    // every path that carries annotations: the generic and the typed one.
    let deployment = s
        .viewer
        .get_resource(get_request("Deployment", "apps/v1", &ns, "web"))
        .await
        .expect("viewer reads the deployment")
        .into_inner()
        .resource
        .expect("resource");
    assert_eq!(
        deployment.annotations.get("keep").map(String::as_str),
        Some("me")
    );
    assert_clean(
        "GetResource(Deployment)",
        &format!("{deployment:?}"),
        &secret_value,
    );
    let listed = s
        .viewer
        .list_resources(list_request("Deployment", "apps/v1", &ns))
        .await
        .expect("list deployments")
        .into_inner();
    assert_eq!(listed.resources.len(), 1);
    assert_clean(
        "ListResources(Deployment)",
        &format!("{listed:?}"),
        &secret_value,
    );
    let workload = s
        .viewer
        .get_workload(pb::GetWorkloadRequest {
            cluster_id: CLUSTER.into(),
            namespace: ns.clone(),
            kind: pb::WorkloadKind::Deployment.into(),
            name: "web".into(),
        })
        .await
        .expect("get workload")
        .into_inner();
    assert!(format!("{workload:?}").contains("keep"));
    assert_clean("GetWorkload", &format!("{workload:?}"), &secret_value);
    let workloads = s
        .viewer
        .list_workloads(pb::ListWorkloadsRequest {
            cluster_id: CLUSTER.into(),
            namespace: ns.clone(),
            kind: pb::WorkloadKind::Deployment.into(),
            ..Default::default()
        })
        .await
        .expect("list workloads")
        .into_inner();
    assert_eq!(workloads.workloads.len(), 1);
    assert_clean("ListWorkloads", &format!("{workloads:?}"), &secret_value);
    let events = s
        .viewer
        .list_events(pb::ListEventsRequest {
            cluster_id: CLUSTER.into(),
            namespace: ns.clone(),
            ..Default::default()
        })
        .await
        .expect("list events")
        .into_inner();
    assert_clean("ListEvents", &format!("{events:?}"), &secret_value);
}

#[tokio::test]
async fn built_in_viewer_reads_no_secret_data_or_last_applied_annotation() {
    viewer_reads_no_secret_data(Mode::BuiltIn).await;
}

#[tokio::test]
async fn impersonated_viewer_reads_no_secret_data_or_last_applied_annotation() {
    viewer_reads_no_secret_data(Mode::Impersonation).await;
}

fn cluster_admin_binding(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: \
         {name}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: \
         cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: default\n  namespace: \
         {namespace}\n"
    )
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 0\n  \
         selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: \
         {{app: {name}}}\n    spec:\n      containers:\n      - {{name: c, image: busybox}}\n"
    )
}

async fn binding_exists(kube: &kube::Client, name: &str) -> bool {
    Api::<ClusterRoleBinding>::all(kube.clone())
        .get_opt(name)
        .await
        .expect("read bindings")
        .is_some()
}

#[tokio::test]
async fn built_in_operator_cannot_grant_itself_cluster_admin_but_can_deploy() {
    let mut s = Setup::start("roles-op", Mode::BuiltIn).await;
    let (kube, ns) = (s.kube.clone(), s.ns());
    cleaning_up(&kube, &ns, built_in_operator_checks(&mut s)).await;
    s.cleanup().await;
}

async fn built_in_operator_checks(s: &mut Setup) {
    let ns = s.ns();
    let binding = format!("{ns}-escalate");
    // A ConfigMap first, then the binding: the whole manifest is refused before anything is
    // applied, dry run or not.
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n---\n{}",
        cluster_admin_binding(&binding, &ns)
    );
    for dry_run in [true, false] {
        let status = s
            .operator
            .apply_manifests(apply_request(&ns, &manifest, dry_run))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().contains("ClusterRoleBinding"),
            "{status:?}"
        );
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason),
            Some("PERMISSION_DENIED".into())
        );
    }
    assert!(!binding_exists(&s.kube, &binding).await, "binding created");
    assert!(
        s.ns.api::<ConfigMap>()
            .get_opt("first")
            .await
            .unwrap()
            .is_none(),
        "part of a refused manifest was applied"
    );

    // The other kinds of the deny list, namespaced ones included.
    let denied = [
        (
            "Role",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\nrules: []\n"
                .to_string(),
        ),
        ("Namespace", format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}-x\n")),
        ("Secret", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tok\n  annotations: {kubernetes.io/service-account.name: default}\ntype: kubernetes.io/service-account-token\n".to_string()),
    ];
    for (kind, manifest) in &denied {
        let status = s
            .operator
            .apply_manifests(apply_request(&ns, manifest, false))
            .await
            .expect_err(kind);
        assert_eq!(status.code(), Code::PermissionDenied, "{kind}: {status:?}");
        assert!(status.message().contains(kind), "{status:?}");
    }
    assert!(s.ns.api::<Secret>().get_opt("tok").await.unwrap().is_none());
    // Deleting a denied kind is refused too (a Role the admin made in the test namespace).
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "existing"}, "rules": []
    }))
    .unwrap();
    s.ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let status = s
        .operator
        .delete_resource(pb::DeleteResourceRequest {
            cluster_id: CLUSTER.into(),
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: "Role".into(),
            namespace: ns.clone(),
            name: "existing".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("Role"), "{status:?}");
    assert!(
        s.ns.api::<Role>()
            .get_opt("existing")
            .await
            .unwrap()
            .is_some()
    );

    // Workloads are the operator's business.
    let results = s
        .operator
        .apply_manifests(apply_request(&ns, &deployment("web"), false))
        .await
        .expect("operator applies a deployment")
        .into_inner()
        .results;
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].outcome(),
        pb::ApplyOutcome::Created,
        "{results:?}"
    );
    assert!(
        s.ns.api::<Deployment>()
            .get_opt("web")
            .await
            .unwrap()
            .is_some()
    );
}

/// Runs `body`, then deletes the cluster-wide objects a test of namespace `ns` made (or a
/// regression let a caller make), also when `body` panicked.
async fn cleaning_up(kube: &kube::Client, ns: &str, body: impl Future<Output = ()>) {
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    let dp = DeleteParams::default();
    let bindings = Api::<ClusterRoleBinding>::all(kube.clone());
    for name in [
        format!("{ns}-escalate"),
        format!("{ns}-credential"),
        format!("prober-{ns}"),
    ] {
        let _ = bindings.delete(&name, &dp).await;
    }
    let _ = Api::<ClusterRole>::all(kube.clone())
        .delete(&format!("prober-{ns}"), &dp)
        .await;
    let _ = Api::<Namespace>::all(kube.clone())
        .delete(&format!("{ns}-x"), &dp)
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Audit events (JSON lines) of `username` that satisfy `keep`, waiting up to 10 s for them.
async fn audit_events(username: &str, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    let path = std::env::var("FLOTILLA_KUBE_AUDIT_LOG")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            kenv::env()
                .dir()
                .join("logs/audit.log")
                .display()
                .to_string()
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let found: Vec<Value> = text
            .lines()
            .filter(|line| line.contains(username))
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["user"]["username"] == username && keep(e))
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn impersonated_operator_is_bound_by_cluster_rbac_and_named_in_its_audit_log() {
    let mut s = Setup::start("roles-imp", Mode::Impersonation).await;
    let (kube, ns) = (s.kube.clone(), s.ns());
    cleaning_up(&kube, &ns, impersonated_operator_checks(&mut s)).await;
    s.cleanup().await;
}

async fn impersonated_operator_checks(s: &mut Setup) {
    let ns = s.ns();
    let binding = format!("{ns}-escalate");
    let results = s
        .operator
        .apply_manifests(apply_request(
            &ns,
            &cluster_admin_binding(&binding, &ns),
            false,
        ))
        .await
        .expect("apply answers per object")
        .into_inner()
        .results;
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].outcome(),
        pb::ApplyOutcome::Failed,
        "{results:?}"
    );
    let expected_user = format!("flotilla:{}", s.operator_name);
    assert!(
        results[0].message.contains("forbidden") && results[0].message.contains(&expected_user),
        "the cluster's RBAC refuses, naming the caller: {results:?}"
    );
    assert!(!binding_exists(&s.kube, &binding).await, "binding created");

    let results = s
        .operator
        .apply_manifests(apply_request(&ns, &deployment("web"), false))
        .await
        .expect("operator applies a deployment")
        .into_inner()
        .results;
    assert_eq!(
        results[0].outcome(),
        pb::ApplyOutcome::Created,
        "{results:?}"
    );
    assert!(
        s.ns.api::<Deployment>()
            .get_opt("web")
            .await
            .unwrap()
            .is_some()
    );

    // The API server's own audit log: the write was made by Flotilla's credential acting as
    // the caller, in the caller's role group...
    let account = s.account.as_ref().expect("account").username.clone();
    let writes = audit_events(&account, |e| {
        e["objectRef"]["resource"] == "deployments"
            && e["objectRef"]["namespace"] == ns.as_str()
            && e["objectRef"]["name"] == "web"
            && e["verb"] == "patch"
    })
    .await;
    assert!(!writes.is_empty(), "no audit event of the write");
    for e in &writes {
        assert_eq!(
            e["impersonatedUser"]["username"],
            expected_user.as_str(),
            "{e}"
        );
        let groups = e["impersonatedUser"]["groups"].to_string();
        assert!(groups.contains("flotilla:operator"), "{e}");
    }
    // ...while probes (the kube-system read at import and every probe) are Flotilla's own.
    let probes = audit_events(&account, |e| {
        e["objectRef"]["resource"] == "namespaces" && e["objectRef"]["name"] == "kube-system"
    })
    .await;
    assert!(!probes.is_empty(), "no audit event of a probe");
    for e in &probes {
        assert!(
            e.get("impersonatedUser").is_none(),
            "a probe impersonated: {e}"
        );
    }
}

#[tokio::test]
async fn impersonation_is_refused_when_the_credential_cannot_impersonate() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "roles-noimp").await;
    let name = ns.name().to_string();
    cleaning_up(&kube, &name, refusal_checks(&ns)).await;
    ns.cleanup().await;
}

async fn refusal_checks(ns: &kenv::TestNamespace) {
    // May probe (read namespaces, list nodes), may not impersonate.
    let prober = kubeconfigs::ProberAccount::create(ns.name()).await;
    let server = TestServer::start().await;
    let mut clusters = ClusterServiceClient::new(server.channel().await);
    let source = || {
        Some(pb::import_cluster_request::Source::Token(pb::TokenSource {
            server: kubeconfigs::server(),
            bearer_token: prober.token.clone(),
            ca_pem: kubeconfigs::ca_pem(),
        }))
    };
    for validate_only in [true, false] {
        let status = clusters
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: "weak".into(),
                source: source(),
                kube_access_mode: pb::KubeAccessMode::Impersonation.into(),
                validate_only,
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("impersonate users"), "{status:?}");
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason),
            Some("IMPERSONATION_NOT_POSSIBLE".into())
        );
    }
    let listed = clusters
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.clusters.is_empty(), "stored: {listed:?}");

    // Imported in built-in mode, it cannot be switched either; nothing changes.
    let imported = clusters
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "weak".into(),
            source: source(),
            ..Default::default()
        })
        .await
        .expect("built-in import")
        .into_inner()
        .cluster
        .unwrap();
    let status = clusters
        .update_cluster(pb::UpdateClusterRequest {
            cluster: Some(pb::Cluster {
                id: "weak".into(),
                kube_access_mode: pb::KubeAccessMode::Impersonation.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["kube_access_mode".into()],
            }),
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let after = clusters
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "weak".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(after.kube_access_mode(), pb::KubeAccessMode::BuiltIn);
    assert_eq!(after.etag, imported.etag, "the stored cluster changed");

    server.shutdown().await;
    prober.cleanup().await;
}

#[tokio::test]
async fn update_cluster_turns_impersonation_on_and_off() {
    let mut s = Setup::start("roles-switch", Mode::BuiltIn).await;
    let (kube, ns) = (s.kube.clone(), s.ns());
    cleaning_up(&kube, &ns, switch_checks(&mut s)).await;
    s.cleanup().await;
}

async fn switch_checks(s: &mut Setup) {
    let kube = s.kube.clone();
    let mut clusters = ClusterServiceClient::new(s.server.channel().await);
    let switch = async |clusters: &mut ClusterServiceClient<AuthedChannel>, mode| {
        clusters
            .update_cluster(pb::UpdateClusterRequest {
                cluster: Some(pb::Cluster {
                    id: CLUSTER.into(),
                    kube_access_mode: mode,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["kube_access_mode".into()],
                }),
            })
            .await
            .expect("update")
            .into_inner()
            .cluster
            .unwrap()
            .kube_access_mode()
    };
    let ns = s.ns();
    let binding = format!("{ns}-escalate");
    let manifest = cluster_admin_binding(&binding, &ns);
    // What a person does before turning the mode on with UpdateCluster.
    apply_rbac_manifest(&kube).await;
    assert_eq!(
        switch(&mut clusters, pb::KubeAccessMode::Impersonation.into()).await,
        pb::KubeAccessMode::Impersonation
    );
    // Now the cluster's RBAC answers (a per-object failure), not Flotilla's rules.
    let results = s
        .operator
        .apply_manifests(apply_request(&ns, &manifest, true))
        .await
        .expect("per-object answer")
        .into_inner()
        .results;
    assert_eq!(
        results[0].outcome(),
        pb::ApplyOutcome::Failed,
        "{results:?}"
    );
    assert!(results[0].message.contains("forbidden"), "{results:?}");
    assert_eq!(
        switch(&mut clusters, pb::KubeAccessMode::BuiltIn.into()).await,
        pb::KubeAccessMode::BuiltIn
    );
    let status = s
        .operator
        .apply_manifests(apply_request(&ns, &manifest, true))
        .await
        .expect_err("Flotilla's rules again");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(!binding_exists(&kube, &binding).await);
}

/// `flotilla rbac-manifest`'s documents.
fn rbac_manifest() -> Vec<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("rbac-manifest")
        .output()
        .expect("run flotilla rbac-manifest");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    text.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect()
}

/// `flotilla rbac-manifest | kubectl apply --server-side -f -`, with the admin kubeconfig.
async fn apply_rbac_manifest(kube: &kube::Client) {
    let api = Api::<ClusterRoleBinding>::all(kube.clone());
    for doc in rbac_manifest() {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        api.patch(
            &name,
            &kube::api::PatchParams::apply("kube-roles-test").force(),
            &kube::api::Patch::Apply(&doc),
        )
        .await
        .expect("apply rbac manifest");
    }
}

#[test]
fn rbac_manifest_prints_the_bindings_that_install_rbac_applies() {
    let bindings: Vec<(String, String, String)> = rbac_manifest()
        .into_iter()
        .map(|v| {
            assert_eq!(v["kind"], "ClusterRoleBinding");
            assert_eq!(v["subjects"][0]["kind"], "Group");
            let s = |v: &Value| v.as_str().unwrap().to_string();
            (
                s(&v["metadata"]["name"]),
                s(&v["subjects"][0]["name"]),
                s(&v["roleRef"]["name"]),
            )
        })
        .collect();
    assert_eq!(
        bindings,
        [
            ("flotilla:viewer", "view"),
            ("flotilla:operator", "edit"),
            ("flotilla:admin", "admin")
        ]
        .map(|(g, r)| (g.to_string(), g.to_string(), r.to_string()))
    );
}
