//! ListResources / GetResource / DeleteResource / ApplyManifests against the real test control
//! plane (`scripts/kube-env up`), through the gRPC API. Each test has its own namespace; CRDs
//! are cluster-scoped, so they get unique names and are deleted at the end.

mod support;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use flotilla::api::pb::{
    self, cluster_service_client::ClusterServiceClient,
    workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::{
    api::{
        apps::v1::ReplicaSet,
        core::v1::{ConfigMap, Namespace},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use support::{kube as kenv, kubeconfigs, server::TestServer};
use tonic::{Code, Status};
use tonic_types::StatusExt;

type Workloads = WorkloadServiceClient<support::server::AuthedChannel>;

const CLUSTER: &str = "dev";

/// A server with the test control plane imported as cluster "dev", and a fresh namespace.
struct Ctx {
    _server: TestServer,
    api: Workloads,
    kube: kube::Client,
    ns: kenv::TestNamespace,
}

impl Ctx {
    async fn start(prefix: &str) -> Ctx {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        ClusterServiceClient::new(channel.clone())
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: CLUSTER.into(),
                source: Some(pb::import_cluster_request::Source::Kubeconfig(
                    pb::KubeconfigSource {
                        kubeconfig: kubeconfigs::admin_kubeconfig().into(),
                        context: String::new(),
                    },
                )),
                ..Default::default()
            })
            .await
            .expect("import the test cluster");
        let kube = kenv::client().await;
        let ns = kenv::TestNamespace::create(&kube, prefix).await;
        Ctx {
            _server: server,
            api: WorkloadServiceClient::new(channel),
            kube,
            ns,
        }
    }

    fn ns(&self) -> String {
        self.ns.name().to_string()
    }

    async fn apply(&mut self, manifests: &str, dry_run: bool) -> Vec<pb::ApplyResult> {
        self.try_apply(manifests, dry_run, false)
            .await
            .expect("apply")
    }

    async fn try_apply(
        &mut self,
        manifests: &str,
        dry_run: bool,
        force_conflicts: bool,
    ) -> Result<Vec<pb::ApplyResult>, Status> {
        let request = pb::ApplyManifestsRequest {
            cluster_id: CLUSTER.into(),
            namespace: self.ns(),
            manifests: manifests.into(),
            dry_run,
            force_conflicts,
        };
        Ok(self
            .api
            .apply_manifests(request)
            .await?
            .into_inner()
            .results)
    }

    async fn list(
        &mut self,
        request: pb::ListResourcesRequest,
    ) -> Result<pb::ListResourcesResponse, Status> {
        let request = pb::ListResourcesRequest {
            cluster_id: CLUSTER.into(),
            ..request
        };
        Ok(self.api.list_resources(request).await?.into_inner())
    }

    /// GetResource of `[api_version, kind, namespace, name]`.
    async fn get(&mut self, key: [&str; 4]) -> Result<pb::Resource, Status> {
        let [api_version, kind, namespace, name] = key.map(String::from);
        let request = pb::GetResourceRequest {
            cluster_id: CLUSTER.into(),
            api_version,
            kind,
            namespace,
            name,
        };
        let response = self.api.get_resource(request).await?.into_inner();
        Ok(response.resource.expect("resource"))
    }

    /// DeleteResource of `[api_version, kind, namespace, name]`.
    async fn delete(
        &mut self,
        key: [&str; 4],
        propagation: pb::PropagationPolicy,
    ) -> Result<(), Status> {
        let [api_version, kind, namespace, name] = key.map(String::from);
        let request = pb::DeleteResourceRequest {
            cluster_id: CLUSTER.into(),
            api_version,
            kind,
            namespace,
            name,
            propagation_policy: propagation.into(),
        };
        self.api.delete_resource(request).await?;
        Ok(())
    }

    async fn has_config_map(&self, name: &str) -> bool {
        self.config_maps()
            .get_opt(name)
            .await
            .expect("get config map")
            .is_some()
    }

    fn config_maps(&self) -> kube::Api<ConfigMap> {
        self.ns.api()
    }

    async fn cleanup(self) {
        self.ns.cleanup().await;
    }
}

fn config_map(name: &str, extra: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}")
}

fn query(api_version: &str, kind: &str, namespace: &str) -> pb::ListResourcesRequest {
    pb::ListResourcesRequest {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        ..Default::default()
    }
}

/// INVALID_ARGUMENT naming `field` in its BadRequest details.
fn assert_invalid(status: &Status, field: &str) {
    let named = status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first())
        .map(|v| v.field.clone())
        .unwrap_or_default();
    assert_eq!(
        (status.code(), named.as_str()),
        (Code::InvalidArgument, field),
        "{status:?}"
    );
}

fn outcome(result: &pb::ApplyResult) -> pb::ApplyOutcome {
    result.outcome()
}

fn all(results: &[pb::ApplyResult], expected: pb::ApplyOutcome) -> bool {
    results.iter().all(|r| r.outcome() == expected)
}

fn object(result: &pb::ApplyResult) -> pb::ObjectReference {
    result.object.clone().expect("object reference")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{:x}{:x}",
        std::process::id() & 0xffff,
        nanos & 0xff_ffff
    )
}

/// A CRD named `<plural>.<group>` for namespaced kind `kind`, v1, any fields.
fn crd(group: &str, kind: &str, plural: &str, scope: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: {scope}
  names:
    kind: {kind}
    plural: {plural}
    singular: {singular}
    listKind: {kind}List
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#,
        singular = kind.to_lowercase()
    )
}

/// Deletes a cluster-scoped CRD when dropped (tests that panic must not leave it behind).
struct CrdGuard {
    name: String,
    client: kube::Client,
    deleted: bool,
}

impl CrdGuard {
    async fn delete(mut self) {
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
        self.deleted = true;
    }
}

impl Drop for CrdGuard {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        let name = self.name.clone();
        let kubeconfig = kenv::env().kubeconfig().to_path_buf();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = kenv::client_from_kubeconfig(&kubeconfig).await {
                    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client);
                    let _ = api.delete(&name, &DeleteParams::default()).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn config_maps_are_listed_and_paged_generically() {
    let mut ctx = Ctx::start("res-paging").await;
    let label = unique("paging-");
    for i in 0..8 {
        // cm-7 has no label, so the selector must leave it out.
        let labels = if i < 7 {
            serde_json::json!({"set": label})
        } else {
            serde_json::json!({})
        };
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("cm-{i}"), "labels": labels}, "data": {"i": i.to_string()}
        }))
        .expect("config map");
        ctx.config_maps()
            .create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }

    let selected = pb::ListResourcesRequest {
        label_selector: format!("set={label}"),
        page_size: 3,
        ..query("v1", "ConfigMap", &ctx.ns())
    };
    let (mut names, mut page_sizes, mut token, mut second_token) =
        (Vec::new(), Vec::new(), String::new(), String::new());
    loop {
        let request = pb::ListResourcesRequest {
            page_token: token.clone(),
            ..selected.clone()
        };
        let page = ctx.list(request).await.expect("list page");
        page_sizes.push(page.resources.len());
        for r in &page.resources {
            assert_eq!(
                (r.api_version.as_str(), r.kind.as_str()),
                ("v1", "ConfigMap")
            );
            assert_eq!(
                (&r.namespace, r.labels.get("set")),
                (&ctx.ns(), Some(&label))
            );
            assert!(!r.uid.is_empty() && !r.resource_version.is_empty() && r.create_time.is_some());
            let json: Value = serde_json::from_str(&r.json).expect("json");
            assert_eq!(
                (&json["kind"], &json["metadata"]["name"]),
                (&"ConfigMap".into(), &r.name.as_str().into())
            );
            assert!(json["metadata"].get("managedFields").is_none(), "{json}");
            assert!(json["data"]["i"].is_string());
            names.push(r.name.clone());
        }
        if page_sizes.len() == 2 {
            second_token = token.clone();
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(page_sizes, vec![3, 3, 1]);
    let distinct: BTreeSet<_> = names.into_iter().collect();
    assert_eq!(distinct, (0..7).map(|i| format!("cm-{i}")).collect());

    // A token belongs to its query: another selector may not resume it.
    let foreign = pb::ListResourcesRequest {
        page_token: second_token,
        label_selector: "set=other".into(),
        ..selected.clone()
    };
    assert_invalid(
        &ctx.list(foreign).await.expect_err("foreign token"),
        "page_token",
    );

    // A field selector; and all namespaces (namespace empty) finds the same objects.
    let by_name = pb::ListResourcesRequest {
        field_selector: "metadata.name=cm-4".into(),
        page_size: 0,
        ..selected.clone()
    };
    let one = ctx.list(by_name).await.expect("field selector");
    assert_eq!(
        one.resources
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["cm-4"]
    );
    assert!(one.next_page_token.is_empty());
    let everywhere = pb::ListResourcesRequest {
        namespace: String::new(),
        page_size: 100,
        ..selected.clone()
    };
    assert_eq!(
        ctx.list(everywhere)
            .await
            .expect("all namespaces")
            .resources
            .len(),
        7
    );

    // A selector the API server cannot parse is the caller's mistake.
    let bad = pb::ListResourcesRequest {
        label_selector: "set in (".into(),
        ..selected
    };
    assert_eq!(
        ctx.list(bad).await.expect_err("bad selector").code(),
        Code::InvalidArgument
    );
    ctx.cleanup().await;
}

#[tokio::test]
async fn custom_resources_of_a_crd_applied_in_the_same_call_are_listed_generically() {
    let mut ctx = Ctx::start("res-crd").await;
    let ns = ctx.ns();
    let group = format!("{}.flotilla.dev", unique("t"));
    let crd_name = format!("widgets.{group}");
    let guard = CrdGuard {
        name: crd_name.clone(),
        client: ctx.kube.clone(),
        deleted: false,
    };
    // The widgets come first in the stream: the CRD must still be applied (and served) first.
    let mut manifests: Vec<String> = (0..3)
        .map(|i| format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w{i}\n  labels: {{color: blue}}\nspec:\n  size: {i}\n"))
        .collect();
    manifests.push(crd(&group, "Widget", "widgets", "Namespaced"));
    let results = ctx.apply(&manifests.join("---\n"), false).await;
    let summary: Vec<_> = results
        .iter()
        .map(|r| {
            (
                r.document_index,
                object(r).kind,
                outcome(r),
                r.message.clone(),
            )
        })
        .collect();
    assert_eq!(results.len(), 4, "{summary:?}");
    assert_eq!(
        (results[0].document_index, object(&results[0]).kind.as_str()),
        (3, "CustomResourceDefinition"),
        "{summary:?}"
    );
    assert!(all(&results, pb::ApplyOutcome::Created), "{summary:?}");
    assert_eq!(object(&results[1]).namespace, ns);

    let api_version = format!("{group}/v1");
    let blue = pb::ListResourcesRequest {
        label_selector: "color=blue".into(),
        ..query(&api_version, "Widget", &ns)
    };
    let listed = ctx.list(blue).await.expect("list widgets");
    let names: Vec<_> = listed.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["w0", "w1", "w2"]);
    let json: Value = serde_json::from_str(&listed.resources[2].json).expect("json");
    assert_eq!(
        (&json["spec"]["size"], &json["apiVersion"]),
        (&2.into(), &api_version.as_str().into())
    );
    let widget = ctx
        .get([&api_version, "Widget", &ns, "w1"])
        .await
        .expect("get widget");
    assert_eq!(widget.kind, "Widget");

    // The CRD itself is cluster-scoped: listed with an empty namespace, refused with one.
    let crds = pb::ListResourcesRequest {
        field_selector: format!("metadata.name={crd_name}"),
        ..query("apiextensions.k8s.io/v1", "CustomResourceDefinition", "")
    };
    let crds = ctx.list(crds).await.expect("list CRDs").resources;
    assert_eq!((crds.len(), crds[0].namespace.as_str()), (1, ""));
    let err = ctx
        .list(query(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            &ns,
        ))
        .await;
    assert_invalid(
        &err.expect_err("namespace for a cluster-scoped kind"),
        "namespace",
    );

    // Deleted through the API; afterwards the cached kind is noticed gone.
    let key = [
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "",
        &crd_name,
    ];
    ctx.delete(key, pb::PropagationPolicy::Unspecified)
        .await
        .expect("delete CRD");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ctx.list(query(&api_version, "Widget", "")).await {
            Err(status) if status.code() == Code::NotFound => {
                assert!(status.message().contains("Widget"), "{status:?}");
                break;
            }
            other => assert!(Instant::now() < deadline, "still served: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    guard.delete().await;
    ctx.cleanup().await;
}

#[tokio::test]
async fn get_and_delete_by_kind_then_not_found() {
    let mut ctx = Ctx::start("res-get").await;
    let ns = ctx.ns();
    let extra = "  labels: {app: demo}\n  annotations: {note: hi}\ndata:\n  k: v\n";
    let results = ctx.apply(&config_map("settings", extra), false).await;
    assert_eq!(
        outcome(&results[0]),
        pb::ApplyOutcome::Created,
        "{results:?}"
    );

    let key = ["v1", "ConfigMap", &ns, "settings"];
    let got = ctx.get(key).await.expect("get");
    assert_eq!(got.name, "settings");
    assert_eq!(got.labels.get("app").map(String::as_str), Some("demo"));
    assert_eq!(got.annotations.get("note").map(String::as_str), Some("hi"));
    assert_eq!(got.resource_version, results[0].resource_version);
    let json: Value = serde_json::from_str(&got.json).expect("json");
    assert_eq!(json["data"]["k"], "v");
    assert!(json["metadata"].get("managedFields").is_none());

    // A namespaced kind needs its namespace; a name may not be a path.
    let err = ctx.get(["v1", "ConfigMap", "", "settings"]).await;
    assert_invalid(&err.expect_err("no namespace"), "namespace");
    let err = ctx.get(["v1", "ConfigMap", &ns, "../secrets/x"]).await;
    assert_invalid(&err.expect_err("path in name"), "name");

    ctx.delete(key, pb::PropagationPolicy::Background)
        .await
        .expect("delete");
    let err = ctx.get(key).await.expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("settings"), "{err:?}");
    let err = ctx.delete(key, pb::PropagationPolicy::Unspecified).await;
    assert_eq!(err.expect_err("already deleted").code(), Code::NotFound);
    ctx.cleanup().await;
}

#[tokio::test]
async fn delete_honours_orphan_propagation() {
    let mut ctx = Ctx::start("res-orphan").await;
    let ns = ctx.ns();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n";
    let results = ctx.apply(deployment, false).await;
    assert_eq!(
        outcome(&results[0]),
        pb::ApplyOutcome::Created,
        "{results:?}"
    );
    let replica_sets: kube::Api<ReplicaSet> = ctx.ns.api();
    let deadline = Instant::now() + Duration::from_secs(30);
    let owned = loop {
        let list = replica_sets
            .list(&ListParams::default())
            .await
            .expect("list");
        if let Some(rs) = list.items.into_iter().next() {
            break rs;
        }
        assert!(
            Instant::now() < deadline,
            "no ReplicaSet for the Deployment"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rs_name = owned.metadata.name.clone().expect("name");
    assert!(owned.metadata.owner_references.is_some());

    let key = ["apps/v1", "Deployment", &ns, "web"];
    ctx.delete(key, pb::PropagationPolicy::Orphan)
        .await
        .expect("delete orphaning");
    // Orphaning: the ReplicaSet stays and loses its owner reference.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gone = matches!(ctx.get(key).await, Err(s) if s.code() == Code::NotFound);
        let rs = replica_sets.get_opt(&rs_name).await.expect("get rs");
        let rs = rs.expect("the ReplicaSet was deleted despite Orphan");
        if gone && rs.metadata.owner_references.unwrap_or_default().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "Deployment not orphan-deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctx.cleanup().await;
}

#[tokio::test]
async fn unknown_kinds_and_bad_names_are_clear_errors() {
    let mut ctx = Ctx::start("res-unknown").await;
    let ns = ctx.ns();
    let err = ctx
        .list(query("v1", "Widget", &ns))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(
        err.message().contains("\"Widget\"") && err.message().contains("\"v1\""),
        "{err:?}"
    );
    let err = ctx
        .list(query("nope.example.com/v1", "Widget", ""))
        .await
        .expect_err("group");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("nope.example.com/v1"), "{err:?}");
    let err = ctx
        .get(["v1", "Widget", &ns, "x"])
        .await
        .expect_err("get of unknown kind");
    assert_eq!(err.code(), Code::NotFound);

    for (request, field) in [
        (query("a/b/c", "ConfigMap", ""), "api_version"),
        (query("v1", "config-map", ""), "kind"),
        (query("v1", "Node", &ns), "namespace"),
        (query("v1", "ConfigMap", "Not_A_Namespace"), "namespace"),
        // A kind that cannot be listed says so.
        (
            query("authorization.k8s.io/v1", "SelfSubjectAccessReview", ""),
            "kind",
        ),
    ] {
        assert_invalid(&ctx.list(request).await.expect_err(field), field);
    }

    // Cluster-scoped kinds list with an empty namespace.
    let nodes = ctx
        .list(query("v1", "Node", ""))
        .await
        .expect("nodes")
        .resources;
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n.namespace.is_empty()));

    let elsewhere = pb::ListResourcesRequest {
        cluster_id: "no-such-cluster".into(),
        ..query("v1", "ConfigMap", "")
    };
    let err = ctx
        .api
        .list_resources(elsewhere)
        .await
        .expect_err("unknown cluster");
    assert_eq!(err.code(), Code::NotFound);
    ctx.cleanup().await;
}

/// 200 documents of several kinds, JSON among them, two of them Lists of two.
fn two_hundred_documents() -> String {
    let mut docs: Vec<String> = (0..170)
        .map(|i| {
            config_map(
                &format!("cm-{i:03}"),
                &format!("data:\n  i: \"{i}\"\n  v: \"1\"\n"),
            )
        })
        .collect();
    docs.extend((0..20).map(|i| {
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i:02}\nstringData:\n  token: t{i}\n")
    }));
    docs.extend((0..8).map(|i| {
        format!("{{\"apiVersion\": \"v1\", \"kind\": \"ServiceAccount\", \"metadata\": {{\"name\": \"sa-{i}\"}}}}\n")
    }));
    docs.extend((0..2).map(|l| {
        format!("apiVersion: v1\nkind: List\nitems:\n- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: listed-{l}-a}}}}\n- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: listed-{l}-b}}}}\n")
    }));
    assert_eq!(docs.len(), 200);
    docs.join("---\n")
}

#[tokio::test]
async fn two_hundred_documents_apply_in_one_call_and_again_unchanged() {
    let mut ctx = Ctx::start("res-200").await;
    let manifests = two_hundred_documents();

    let started = Instant::now();
    let first = ctx.apply(&manifests, false).await;
    eprintln!(
        "first apply of 200 documents (202 objects): {:?}",
        started.elapsed()
    );
    assert_eq!(first.len(), 202);
    let failed: Vec<_> = first
        .iter()
        .filter(|r| outcome(r) != pb::ApplyOutcome::Created)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(first.iter().all(|r| !r.resource_version.is_empty()));
    let indexes: Vec<i32> = first.iter().map(|r| r.document_index).collect();
    assert_eq!(
        (&indexes[..3], &indexes[198..]),
        (&[0, 1, 2][..], &[198, 198, 199, 199][..])
    );
    let config_maps = ctx
        .config_maps()
        .list(&ListParams::default())
        .await
        .expect("list");
    assert_eq!(
        config_maps.items.len(),
        170 + 4 + 1,
        "config maps (and kube-root-ca.crt)"
    );

    let started = Instant::now();
    let second = ctx.apply(&manifests, false).await;
    eprintln!(
        "second apply of the same 200 documents: {:?}",
        started.elapsed()
    );
    let changed: Vec<_> = second
        .iter()
        .filter(|r| outcome(r) != pb::ApplyOutcome::Unchanged)
        .collect();
    assert!(changed.is_empty(), "{changed:?}");
    let versions = |rs: &[pb::ApplyResult]| {
        rs.iter()
            .map(|r| r.resource_version.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&first), versions(&second));

    // One document changed: exactly that object is configured.
    let third = ctx
        .apply(&manifests.replacen("v: \"1\"", "v: \"2\"", 1), false)
        .await;
    let configured: Vec<_> = third
        .iter()
        .filter(|r| outcome(r) == pb::ApplyOutcome::Configured)
        .map(|r| object(r).name)
        .collect();
    assert_eq!(configured, vec!["cm-000"]);
    assert_eq!(
        third
            .iter()
            .filter(|r| outcome(r) == pb::ApplyOutcome::Unchanged)
            .count(),
        201
    );
    ctx.cleanup().await;
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let mut ctx = Ctx::start("res-dry").await;
    let manifests = [
        config_map("a", "data: {k: one}\n"),
        config_map("b", "data: {k: one}\n"),
    ]
    .join("---\n");
    let results = ctx.apply(&manifests, true).await;
    assert!(all(&results, pb::ApplyOutcome::Created), "{results:?}");
    assert!(
        !ctx.has_config_map("a").await && !ctx.has_config_map("b").await,
        "dry run created"
    );

    ctx.apply(&manifests, false).await;
    let same = ctx.apply(&manifests, true).await;
    assert!(all(&same, pb::ApplyOutcome::Unchanged), "{same:?}");
    let changed = ctx
        .apply(&manifests.replace("k: one", "k: two"), true)
        .await;
    assert!(all(&changed, pb::ApplyOutcome::Configured), "{changed:?}");
    let a = ctx
        .config_maps()
        .get("a")
        .await
        .expect("a")
        .data
        .unwrap_or_default();
    assert_eq!(a.get("k").map(String::as_str), Some("one"));
    ctx.cleanup().await;
}

#[tokio::test]
async fn bad_documents_are_reported_by_index_while_the_others_apply() {
    let mut ctx = Ctx::start("res-bad").await;
    let docs = [
        config_map("good-0", ""),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, mapping\n".into(), // not YAML
        "apiVersion: v1\nmetadata:\n  name: no-kind\n".into(),
        "apiVersion: v1\nkind: Gadget\nmetadata:\n  name: unknown\n".into(),
        config_map("Bad_Name", ""), // the API server refuses the name
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good-5"}}"#.into(),
        config_map("good-6", "data:\n  nested: {a: b}\n"), // data values must be strings
    ];
    let results = ctx.apply(&docs.join("\n---\n"), false).await;
    assert_eq!(results.len(), 7, "{results:?}");
    let by_index = |i: i32| {
        let found = results.iter().find(|r| r.document_index == i);
        found.unwrap_or_else(|| panic!("no result for document {i}: {results:?}"))
    };
    assert_eq!(outcome(by_index(0)), pb::ApplyOutcome::Created);
    assert_eq!(outcome(by_index(5)), pb::ApplyOutcome::Created);
    for (i, needle) in [
        (1, "YAML"),
        (2, "kind"),
        (3, "Gadget"),
        (4, "Bad_Name"),
        (6, "good-6"),
    ] {
        let r = by_index(i);
        assert_eq!(outcome(r), pb::ApplyOutcome::Failed, "{r:?}");
        assert!(r.message.contains(needle), "document {i}: {r:?}");
    }
    assert_eq!(object(by_index(3)).name, "unknown");
    assert!(ctx.has_config_map("good-0").await && ctx.has_config_map("good-5").await);
    ctx.cleanup().await;
}

#[tokio::test]
async fn conflicts_fail_unless_forced() {
    let mut ctx = Ctx::start("res-conflict").await;
    let other = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared"}, "data": {"owner": "other"}
    });
    let params = PatchParams::apply("someone-else");
    ctx.config_maps()
        .patch("shared", &params, &Patch::Apply(&other))
        .await
        .expect("apply as another manager");
    let mine = config_map("shared", "data:\n  owner: flotilla\n");
    let results = ctx.apply(&mine, false).await;
    assert_eq!(
        outcome(&results[0]),
        pb::ApplyOutcome::Failed,
        "{results:?}"
    );
    assert!(results[0].message.contains("conflict"), "{results:?}");
    let results = ctx.try_apply(&mine, false, true).await.expect("forced");
    assert_eq!(
        outcome(&results[0]),
        pb::ApplyOutcome::Configured,
        "{results:?}"
    );
    let cm = ctx
        .config_maps()
        .get("shared")
        .await
        .expect("get")
        .data
        .unwrap_or_default();
    assert_eq!(cm.get("owner").map(String::as_str), Some("flotilla"));
    ctx.cleanup().await;
}

#[tokio::test]
async fn namespace_defaults_to_the_request_and_new_namespaces_come_first() {
    let mut ctx = Ctx::start("res-ns").await;
    let fresh = unique("t-res-fresh-");
    let docs = [
        config_map("defaulted", ""),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: {fresh}\n"
        ),
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {fresh}\n  labels: {{{}: \"true\"}}\n",
            kenv::TEST_NAMESPACE_LABEL
        ),
    ];
    let results = ctx.apply(&docs.join("---\n"), false).await;
    let summary: Vec<_> = results
        .iter()
        .map(|r| (object(r), outcome(r), r.message.clone()))
        .collect();
    assert!(all(&results, pb::ApplyOutcome::Created), "{summary:?}");
    let placed: Vec<_> = results
        .iter()
        .map(|r| (object(r).kind, object(r).namespace))
        .collect();
    let expected = [
        ("Namespace", ""),
        ("ConfigMap", ctx.ns.name()),
        ("ConfigMap", fresh.as_str()),
    ];
    assert_eq!(
        placed,
        expected.map(|(k, n)| (k.to_string(), n.to_string()))
    );
    assert!(ctx.has_config_map("defaulted").await);
    let elsewhere: kube::Api<ConfigMap> = kube::Api::namespaced(ctx.kube.clone(), &fresh);
    assert!(elsewhere.get_opt("elsewhere").await.expect("get").is_some());
    kube::Api::<Namespace>::all(ctx.kube.clone())
        .delete(&fresh, &DeleteParams::background())
        .await
        .expect("delete fresh namespace");
    ctx.cleanup().await;
}

#[tokio::test]
async fn over_the_limits_nothing_is_applied() {
    let mut ctx = Ctx::start("res-limits").await;
    // 4 MiB + 1 byte, starting with a valid document that must not be applied.
    let mut big = config_map("first", "data:\n  k: v\n");
    big.push_str("# ");
    big.push_str(&"x".repeat(4 * 1024 * 1024 - big.len()));
    big.push('\n');
    assert_eq!(big.len(), 4 * 1024 * 1024 + 1);
    let err = ctx
        .try_apply(&big, false, false)
        .await
        .expect_err("too big");
    assert_invalid(&err, "manifests");
    assert!(err.message().contains("4194304"), "{err:?}");

    let many: Vec<String> = (0..501).map(|i| config_map(&format!("m{i}"), "")).collect();
    let err = ctx
        .try_apply(&many.join("---\n"), false, false)
        .await
        .expect_err("501 documents");
    assert_invalid(&err, "manifests");
    assert!(err.message().contains("501"), "{err:?}");
    // A List counts its items: one document cannot smuggle in more objects.
    let items: String = (0..501)
        .map(|i| format!("- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: l{i}}}}}\n"))
        .collect();
    let err = ctx
        .try_apply(
            &format!("apiVersion: v1\nkind: List\nitems:\n{items}"),
            false,
            false,
        )
        .await;
    assert_invalid(&err.expect_err("501 List items"), "manifests");
    let err = ctx
        .try_apply("# nothing\n", false, false)
        .await
        .expect_err("empty");
    assert_invalid(&err, "manifests");

    let listed = ctx
        .config_maps()
        .list(&ListParams::default())
        .await
        .expect("list");
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["kube-root-ca.crt"], "something was applied");
    ctx.cleanup().await;
}
