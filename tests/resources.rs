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
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{ConfigMap, Namespace},
};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
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
        Ok(self.api.apply_manifests(request).await?.into_inner().results)
    }

    async fn list(&mut self, request: pb::ListResourcesRequest) -> Result<pb::ListResourcesResponse, Status> {
        let request = pb::ListResourcesRequest {
            cluster_id: CLUSTER.into(),
            ..request
        };
        Ok(self.api.list_resources(request).await?.into_inner())
    }

    async fn get(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<pb::Resource, Status> {
        let request = pb::GetResourceRequest {
            cluster_id: CLUSTER.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        let response = self.api.get_resource(request).await?.into_inner();
        Ok(response.resource.expect("resource"))
    }

    async fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        propagation: pb::PropagationPolicy,
    ) -> Result<(), Status> {
        let request = pb::DeleteResourceRequest {
            cluster_id: CLUSTER.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            propagation_policy: propagation.into(),
        };
        self.api.delete_resource(request).await?;
        Ok(())
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

fn bad_field(status: &Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first())
        .map(|v| v.field.clone())
        .unwrap_or_default()
}

fn outcome(result: &pb::ApplyResult) -> pb::ApplyOutcome {
    result.outcome()
}

fn object(result: &pb::ApplyResult) -> pb::ObjectReference {
    result.object.clone().expect("object reference")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{:x}{:x}", std::process::id() & 0xffff, nanos & 0xff_ffff)
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
}

impl CrdGuard {
    async fn delete(self) {
        let api: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            kube::Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
        std::mem::forget(self);
    }
}

impl Drop for CrdGuard {
    fn drop(&mut self) {
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
                    let api: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
                        kube::Api::all(client);
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
    for i in 0..7 {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("cm-{i}")),
                labels: Some([("set".to_string(), label.clone())].into()),
                ..ObjectMeta::default()
            },
            data: Some([("i".to_string(), i.to_string())].into()),
            ..ConfigMap::default()
        };
        ctx.config_maps()
            .create(&PostParams::default(), &cm)
            .await
            .expect("create config map");
    }
    // Not selected: no label.
    ctx.config_maps()
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("unlabelled".into()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        )
        .await
        .expect("create");

    let query = pb::ListResourcesRequest {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: ctx.ns(),
        label_selector: format!("set={label}"),
        page_size: 3,
        ..Default::default()
    };
    let mut names = Vec::new();
    let mut page_sizes = Vec::new();
    let mut token = String::new();
    let mut second_token = String::new();
    loop {
        let page = ctx
            .list(pb::ListResourcesRequest {
                page_token: token.clone(),
                ..query.clone()
            })
            .await
            .expect("list page");
        page_sizes.push(page.resources.len());
        for r in &page.resources {
            assert_eq!((r.api_version.as_str(), r.kind.as_str()), ("v1", "ConfigMap"));
            assert_eq!(r.namespace, ctx.ns());
            assert_eq!(r.labels.get("set"), Some(&label));
            assert!(!r.uid.is_empty() && !r.resource_version.is_empty());
            assert!(r.create_time.is_some());
            let json: Value = serde_json::from_str(&r.json).expect("json");
            assert_eq!(json["kind"], "ConfigMap");
            assert_eq!(json["metadata"]["name"], r.name.as_str());
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
    let distinct: BTreeSet<_> = names.iter().cloned().collect();
    assert_eq!(distinct, (0..7).map(|i| format!("cm-{i}")).collect());

    // A token belongs to its query: another selector may not resume it.
    let err = ctx
        .list(pb::ListResourcesRequest {
            page_token: second_token,
            label_selector: "set=other".into(),
            ..query.clone()
        })
        .await
        .expect_err("foreign token");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_field(&err), "page_token");

    // Field selector; and all namespaces (namespace empty) finds the same objects.
    let one = ctx
        .list(pb::ListResourcesRequest {
            field_selector: "metadata.name=cm-4".into(),
            page_size: 0,
            ..query.clone()
        })
        .await
        .expect("field selector");
    assert_eq!(one.resources.len(), 1);
    assert_eq!(one.resources[0].name, "cm-4");
    assert!(one.next_page_token.is_empty());
    let everywhere = ctx
        .list(pb::ListResourcesRequest {
            namespace: String::new(),
            page_size: 100,
            ..query.clone()
        })
        .await
        .expect("all namespaces");
    assert_eq!(everywhere.resources.len(), 7);

    // A bad selector is the caller's mistake.
    let err = ctx
        .list(pb::ListResourcesRequest {
            label_selector: "set in (".into(),
            ..query.clone()
        })
        .await
        .expect_err("bad selector");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    ctx.cleanup().await;
}

#[tokio::test]
async fn custom_resources_of_a_crd_applied_in_the_same_call_are_listed_generically() {
    let mut ctx = Ctx::start("res-crd").await;
    let group = format!("{}.flotilla.dev", unique("t"));
    let guard = CrdGuard {
        name: format!("widgets.{group}"),
        client: ctx.kube.clone(),
    };
    // The widgets come first in the stream: the CRD must still be applied before them.
    let mut manifests = Vec::new();
    for i in 0..3 {
        manifests.push(format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w{i}\n  labels: {{color: blue}}\nspec:\n  size: {i}\n"
        ));
    }
    manifests.push(crd(&group, "Widget", "widgets", "Namespaced"));
    let results = ctx.apply(&manifests.join("---\n"), false).await;
    let summary: Vec<_> = results
        .iter()
        .map(|r| (r.document_index, object(r).kind, outcome(r), r.message.clone()))
        .collect();
    assert_eq!(results.len(), 4, "{summary:?}");
    assert_eq!(object(&results[0]).kind, "CustomResourceDefinition", "{summary:?}");
    assert_eq!(results[0].document_index, 3);
    assert!(
        results.iter().all(|r| outcome(r) == pb::ApplyOutcome::Created),
        "{summary:?}"
    );
    assert_eq!(object(&results[1]).namespace, ctx.ns());

    let api_version = format!("{group}/v1");
    let listed = ctx
        .list(pb::ListResourcesRequest {
            api_version: api_version.clone(),
            kind: "Widget".into(),
            namespace: ctx.ns(),
            label_selector: "color=blue".into(),
            ..Default::default()
        })
        .await
        .expect("list widgets");
    let names: Vec<_> = listed.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["w0", "w1", "w2"]);
    let json: Value = serde_json::from_str(&listed.resources[2].json).expect("json");
    assert_eq!(json["spec"]["size"], 2);
    assert_eq!(json["apiVersion"], api_version.as_str());

    let widget = ctx
        .get(&api_version, "Widget", &ctx.ns(), "w1")
        .await
        .expect("get widget");
    assert_eq!(widget.kind, "Widget");

    // The CRD itself is cluster-scoped: listed with an empty namespace, refused with one.
    let crds = ctx
        .list(pb::ListResourcesRequest {
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            field_selector: format!("metadata.name=widgets.{group}"),
            ..Default::default()
        })
        .await
        .expect("list CRDs");
    assert_eq!(crds.resources.len(), 1);
    assert_eq!(crds.resources[0].namespace, "");
    let err = ctx
        .list(pb::ListResourcesRequest {
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            namespace: ctx.ns(),
            ..Default::default()
        })
        .await
        .expect_err("namespace for a cluster-scoped kind");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_field(&err), "namespace");

    // Deleting the CRD through the API; afterwards the cached kind is noticed gone.
    ctx.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "",
        &format!("widgets.{group}"),
        pb::PropagationPolicy::Unspecified,
    )
    .await
    .expect("delete CRD");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ctx
            .list(pb::ListResourcesRequest {
                api_version: api_version.clone(),
                kind: "Widget".into(),
                ..Default::default()
            })
            .await
        {
            Err(status) if status.code() == Code::NotFound => {
                assert!(status.message().contains("Widget"), "{status:?}");
                break;
            }
            other => {
                assert!(Instant::now() < deadline, "still served: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    guard.delete().await;
    ctx.cleanup().await;
}

#[tokio::test]
async fn get_and_delete_by_kind_then_not_found() {
    let mut ctx = Ctx::start("res-get").await;
    let ns = ctx.ns();
    let results = ctx
        .apply(
            &config_map("settings", "  labels: {app: demo}\n  annotations: {note: hi}\ndata:\n  k: v\n"),
            false,
        )
        .await;
    assert_eq!(outcome(&results[0]), pb::ApplyOutcome::Created, "{results:?}");

    let got = ctx.get("v1", "ConfigMap", &ns, "settings").await.expect("get");
    assert_eq!(got.name, "settings");
    assert_eq!(got.labels.get("app").map(String::as_str), Some("demo"));
    assert_eq!(got.annotations.get("note").map(String::as_str), Some("hi"));
    assert_eq!(got.resource_version, results[0].resource_version);
    let json: Value = serde_json::from_str(&got.json).expect("json");
    assert_eq!(json["data"]["k"], "v");
    assert!(json["metadata"].get("managedFields").is_none());

    // A namespaced kind needs its namespace to name one object.
    let err = ctx
        .get("v1", "ConfigMap", "", "settings")
        .await
        .expect_err("no namespace");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_field(&err), "namespace");
    let err = ctx
        .get("v1", "ConfigMap", &ns, "../secrets/x")
        .await
        .expect_err("path in name");
    assert_eq!(bad_field(&err), "name");

    ctx.delete("v1", "ConfigMap", &ns, "settings", pb::PropagationPolicy::Background)
        .await
        .expect("delete");
    let err = ctx
        .get("v1", "ConfigMap", &ns, "settings")
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("settings"), "{err:?}");
    let err = ctx
        .delete("v1", "ConfigMap", &ns, "settings", pb::PropagationPolicy::Unspecified)
        .await
        .expect_err("already deleted");
    assert_eq!(err.code(), Code::NotFound);
    ctx.cleanup().await;
}

#[tokio::test]
async fn delete_honours_orphan_propagation() {
    let mut ctx = Ctx::start("res-orphan").await;
    let ns = ctx.ns();
    let deployment = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
"#;
    let results = ctx.apply(deployment, false).await;
    assert_eq!(outcome(&results[0]), pb::ApplyOutcome::Created, "{results:?}");
    let replica_sets: kube::Api<ReplicaSet> = ctx.ns.api();
    let deadline = Instant::now() + Duration::from_secs(30);
    let owned = loop {
        let list = replica_sets.list(&ListParams::default()).await.expect("list");
        if let Some(rs) = list.items.into_iter().next() {
            break rs;
        }
        assert!(Instant::now() < deadline, "no ReplicaSet for the Deployment");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rs_name = owned.metadata.name.clone().expect("name");
    assert!(owned.metadata.owner_references.is_some());

    ctx.delete("apps/v1", "Deployment", &ns, "web", pb::PropagationPolicy::Orphan)
        .await
        .expect("delete orphaning");
    // Orphaning: the ReplicaSet stays and loses its owner reference.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gone = matches!(
            ctx.get("apps/v1", "Deployment", &ns, "web").await,
            Err(s) if s.code() == Code::NotFound
        );
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
    let list = |api_version: &str, kind: &str, namespace: &str| pb::ListResourcesRequest {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        ..Default::default()
    };
    let err = ctx.list(list("v1", "Widget", &ns)).await.expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(
        err.message().contains("\"Widget\"") && err.message().contains("\"v1\""),
        "{err:?}"
    );
    let err = ctx
        .list(list("nope.example.com/v1", "Widget", ""))
        .await
        .expect_err("unknown group");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("nope.example.com/v1"), "{err:?}");
    let err = ctx
        .get("v1", "Widget", &ns, "x")
        .await
        .expect_err("get of unknown kind");
    assert_eq!(err.code(), Code::NotFound);

    let err = ctx.list(list("a/b/c", "ConfigMap", "")).await.expect_err("bad");
    assert_eq!((err.code(), bad_field(&err).as_str()), (Code::InvalidArgument, "api_version"));
    let err = ctx.list(list("v1", "config-map", "")).await.expect_err("bad");
    assert_eq!((err.code(), bad_field(&err).as_str()), (Code::InvalidArgument, "kind"));
    let err = ctx.list(list("v1", "Node", &ns)).await.expect_err("scoped");
    assert_eq!((err.code(), bad_field(&err).as_str()), (Code::InvalidArgument, "namespace"));
    let err = ctx.list(list("v1", "ConfigMap", "Not_A_Namespace")).await.expect_err("bad ns");
    assert_eq!(bad_field(&err), "namespace");
    // A kind that cannot be listed says so.
    let err = ctx
        .list(list("authorization.k8s.io/v1", "SelfSubjectAccessReview", ""))
        .await
        .expect_err("not listable");
    assert_eq!((err.code(), bad_field(&err).as_str()), (Code::InvalidArgument, "kind"));

    // Cluster-scoped kinds list with an empty namespace.
    let nodes = ctx.list(list("v1", "Node", "")).await.expect("nodes");
    assert_eq!(nodes.resources.len(), 3);
    assert!(nodes.resources.iter().all(|n| n.namespace.is_empty()));

    let err = ctx
        .api
        .list_resources(pb::ListResourcesRequest {
            cluster_id: "no-such-cluster".into(),
            ..list("v1", "ConfigMap", "")
        })
        .await
        .expect_err("unknown cluster");
    assert_eq!(err.code(), Code::NotFound);
    ctx.cleanup().await;
}

/// 200 documents of several kinds (two of them Lists) in one stream.
fn two_hundred_documents(version: &str) -> String {
    let mut docs = Vec::new();
    for i in 0..170 {
        docs.push(config_map(&format!("cm-{i:03}"), &format!("data:\n  i: \"{i}\"\n  v: \"{version}\"\n")));
    }
    for i in 0..20 {
        docs.push(format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i:02}\nstringData:\n  token: t{i}\n"
        ));
    }
    for i in 0..8 {
        docs.push(format!(
            r#"{{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {{"name": "sa-{i}"}}}}"#
        ));
    }
    for list in 0..2 {
        docs.push(format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: listed-{list}-a}}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: listed-{list}-b}}\n"
        ));
    }
    assert_eq!(docs.len(), 200);
    docs.join("---\n")
}

#[tokio::test]
async fn two_hundred_documents_apply_in_one_call_and_again_unchanged() {
    let mut ctx = Ctx::start("res-200").await;
    let manifests = two_hundred_documents("1");

    let started = Instant::now();
    let first = ctx.apply(&manifests, false).await;
    let took = started.elapsed();
    eprintln!("first apply of 200 documents (202 objects): {took:?}");
    assert_eq!(first.len(), 202);
    let failed: Vec<_> = first
        .iter()
        .filter(|r| outcome(r) != pb::ApplyOutcome::Created)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(first.iter().all(|r| !r.resource_version.is_empty()));
    let indexes: Vec<i32> = first.iter().map(|r| r.document_index).collect();
    assert_eq!(indexes[..3], [0, 1, 2]);
    assert_eq!(indexes[198..], [198, 198, 199, 199]);
    let count = ctx
        .config_maps()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(count, 170 + 4 + 1, "config maps (and kube-root-ca.crt)");

    let started = Instant::now();
    let second = ctx.apply(&manifests, false).await;
    eprintln!("second apply of the same 200 documents: {:?}", started.elapsed());
    let changed: Vec<_> = second
        .iter()
        .filter(|r| outcome(r) != pb::ApplyOutcome::Unchanged)
        .collect();
    assert!(changed.is_empty(), "{changed:?}");
    let versions = |rs: &[pb::ApplyResult]| rs.iter().map(|r| r.resource_version.clone()).collect::<Vec<_>>();
    assert_eq!(versions(&first), versions(&second));

    // One changed document: exactly that object is configured.
    let changed_one = manifests.replacen("v: \"1\"", "v: \"2\"", 1);
    let third = ctx.apply(&changed_one, false).await;
    let configured: Vec<_> = third
        .iter()
        .filter(|r| outcome(r) == pb::ApplyOutcome::Configured)
        .map(|r| object(r).name)
        .collect();
    assert_eq!(configured, vec!["cm-000"]);
    assert_eq!(
        third.iter().filter(|r| outcome(r) == pb::ApplyOutcome::Unchanged).count(),
        201
    );
    ctx.cleanup().await;
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let mut ctx = Ctx::start("res-dry").await;
    let ns = ctx.ns();
    let manifests = [config_map("a", "data: {k: one}\n"), config_map("b", "data: {k: one}\n")].join("---\n");
    let results = ctx.apply(&manifests, true).await;
    assert!(
        results.iter().all(|r| outcome(r) == pb::ApplyOutcome::Created),
        "{results:?}"
    );
    for name in ["a", "b"] {
        let err = ctx.get("v1", "ConfigMap", &ns, name).await.expect_err("dry run created it");
        assert_eq!(err.code(), Code::NotFound);
    }

    ctx.apply(&manifests, false).await;
    let same = ctx.apply(&manifests, true).await;
    assert!(same.iter().all(|r| outcome(r) == pb::ApplyOutcome::Unchanged), "{same:?}");
    let changed = ctx.apply(&manifests.replace("k: one", "k: two"), true).await;
    assert!(
        changed.iter().all(|r| outcome(r) == pb::ApplyOutcome::Configured),
        "{changed:?}"
    );
    let a = ctx.config_maps().get("a").await.expect("a");
    assert_eq!(a.data.unwrap_or_default().get("k").map(String::as_str), Some("one"));
    ctx.cleanup().await;
}

#[tokio::test]
async fn bad_documents_are_reported_by_index_while_the_others_apply() {
    let mut ctx = Ctx::start("res-bad").await;
    let docs = [
        config_map("good-0", ""),                                           // 0
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, mapping\n".into(), // 1: not YAML
        "apiVersion: v1\nmetadata:\n  name: no-kind\n".into(),               // 2: no kind
        "apiVersion: v1\nkind: Gadget\nmetadata:\n  name: unknown\n".into(),  // 3: unknown kind
        config_map("Bad_Name", ""),                                         // 4: API server refuses
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good-5"}}"#.into(), // 5
        config_map("good-6", "data:\n  unknownField: 1\n  nested: {a: b}\n"), // 6: data must be strings
    ];
    let results = ctx.apply(&docs.join("\n---\n"), false).await;
    let by_index = |i: i32| {
        results
            .iter()
            .find(|r| r.document_index == i)
            .unwrap_or_else(|| panic!("no result for document {i}: {results:?}"))
    };
    assert_eq!(results.len(), 7, "{results:?}");
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
    for name in ["good-0", "good-5"] {
        assert!(ctx.config_maps().get_opt(name).await.expect("get").is_some());
    }
    ctx.cleanup().await;
}

#[tokio::test]
async fn conflicts_fail_unless_forced() {
    let mut ctx = Ctx::start("res-conflict").await;
    let other: serde_json::Value = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared"}, "data": {"owner": "other"}
    });
    ctx.config_maps()
        .patch("shared", &PatchParams::apply("someone-else"), &Patch::Apply(&other))
        .await
        .expect("apply as another manager");
    let mine = config_map("shared", "data:\n  owner: flotilla\n");
    let results = ctx.apply(&mine, false).await;
    assert_eq!(outcome(&results[0]), pb::ApplyOutcome::Failed, "{results:?}");
    assert!(results[0].message.contains("conflict"), "{results:?}");
    let results = ctx.try_apply(&mine, false, true).await.expect("forced");
    assert_eq!(outcome(&results[0]), pb::ApplyOutcome::Configured, "{results:?}");
    let cm = ctx.config_maps().get("shared").await.expect("get");
    assert_eq!(cm.data.unwrap_or_default().get("owner").map(String::as_str), Some("flotilla"));
    ctx.cleanup().await;
}

#[tokio::test]
async fn namespace_defaults_to_the_request_and_new_namespaces_come_first() {
    let mut ctx = Ctx::start("res-ns").await;
    let ns = ctx.ns();
    let fresh = unique("t-res-fresh-");
    let docs = [
        config_map("defaulted", ""),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: {fresh}\n"),
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {fresh}\n  labels: {{{}: \"true\"}}\n", kenv::TEST_NAMESPACE_LABEL),
    ];
    let results = ctx.apply(&docs.join("---\n"), false).await;
    let summary: Vec<_> = results.iter().map(|r| (object(r), outcome(r), r.message.clone())).collect();
    assert!(
        results.iter().all(|r| outcome(r) == pb::ApplyOutcome::Created),
        "{summary:?}"
    );
    assert_eq!(object(&results[0]).kind, "Namespace");
    assert_eq!(object(&results[0]).namespace, "");
    assert_eq!(object(&results[1]).namespace, ns);
    assert_eq!(object(&results[2]).namespace, fresh);
    assert!(ctx.config_maps().get_opt("defaulted").await.expect("get").is_some());
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
    big.push_str(&"x".repeat(4 * 1024 * 1024 + 1 - big.len() - 1));
    big.push('\n');
    assert_eq!(big.len(), 4 * 1024 * 1024 + 1);
    let err = ctx.try_apply(&big, false, false).await.expect_err("too big");
    assert_eq!((err.code(), bad_field(&err).as_str()), (Code::InvalidArgument, "manifests"));
    assert!(err.message().contains("4 MiB"), "{err:?}");

    let many: Vec<String> = (0..501).map(|i| config_map(&format!("m{i}"), "")).collect();
    let err = ctx
        .try_apply(&many.join("---\n"), false, false)
        .await
        .expect_err("too many documents");
    assert_eq!((err.code(), bad_field(&err).as_str()), (Code::InvalidArgument, "manifests"));
    assert!(err.message().contains("501"), "{err:?}");

    let err = ctx.try_apply("# nothing\n", false, false).await.expect_err("empty");
    assert_eq!(bad_field(&err), "manifests");

    let listed = ctx
        .config_maps()
        .list(&ListParams::default())
        .await
        .expect("list");
    let names: Vec<_> = listed.items.iter().filter_map(|c| c.metadata.name.clone()).collect();
    assert_eq!(names, vec!["kube-root-ca.crt"], "something was applied");
    ctx.cleanup().await;
}
