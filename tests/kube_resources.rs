//! ListResources / GetResource / DeleteResource against the real test control plane
//! (`scripts/kube-env up`), through the gRPC API. Each test has its own namespace; CRDs are
//! cluster-scoped, so they get unique names and are deleted at the end.

use flotilla_test_support as support;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use flotilla::proto as pb;
use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::ConfigMap};
use kube::api::{ListParams, PostParams};
use serde_json::Value;
use tonic::Code;

use support::resources::*;

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
