//! ApplyManifests against the real test control plane (`scripts/kube-env up`), through the gRPC
//! API: many documents in one call, outcomes per object, dry run, limits.

use flotilla_test_support as support;

use std::time::Instant;

use flotilla::proto as pb;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use support::kube as kenv;

use support::resources::*;

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

/// Re-running a pipeline must show zero changes: a second apply of the same YAML is UNCHANGED
/// for every object even when the API server rewrites its own bookkeeping (a Namespace carrying
/// only metadata.name gets a new resourceVersion on every server-side apply), and a real edit
/// is CONFIGURED.
#[tokio::test]
async fn reapplying_identical_yaml_reports_no_change() {
    let mut ctx = Ctx::start("res-same").await;
    let fresh = unique("t-res-same-");
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {fresh}\n");
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: web, image: example.com/web:1}\n".to_string();
    let docs = [
        namespace,
        deployment,
        config_map("settings", "data:\n  k: one\n"),
    ];
    let manifests = docs.join("---\n");
    let namespaces = kube::Api::<Namespace>::all(ctx.kube.clone());
    let version_of_namespace = || async {
        namespaces
            .get(&fresh)
            .await
            .expect("namespace")
            .metadata
            .resource_version
            .unwrap_or_default()
    };

    let first = ctx.apply(&manifests, false).await;
    assert!(all(&first, pb::ApplyOutcome::Created), "{first:?}");
    let namespace_version = version_of_namespace().await;
    let second = ctx.apply(&manifests, false).await;
    let outcomes: Vec<_> = second
        .iter()
        .map(|r| (object(r).kind, outcome(r)))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("Namespace".to_string(), pb::ApplyOutcome::Unchanged),
            ("Deployment".to_string(), pb::ApplyOutcome::Unchanged),
            ("ConfigMap".to_string(), pb::ApplyOutcome::Unchanged),
        ],
        "{second:?}"
    );
    // Whether the server rewrote the namespace (the case this test is about) is for the record.
    eprintln!(
        "namespace resourceVersion {namespace_version} -> {} across the second apply",
        version_of_namespace().await
    );

    let edited = manifests.replace("k: one", "k: two");
    let third = ctx.apply(&edited, false).await;
    let outcomes: Vec<_> = third.iter().map(|r| (object(r).kind, outcome(r))).collect();
    assert_eq!(
        outcomes,
        [
            ("Namespace".to_string(), pb::ApplyOutcome::Unchanged),
            ("Deployment".to_string(), pb::ApplyOutcome::Unchanged),
            ("ConfigMap".to_string(), pb::ApplyOutcome::Configured),
        ],
        "{third:?}"
    );
    let data = ctx
        .config_maps()
        .get("settings")
        .await
        .expect("settings")
        .data
        .unwrap_or_default();
    assert_eq!(data.get("k").map(String::as_str), Some("two"));
    namespaces
        .delete(&fresh, &DeleteParams::background())
        .await
        .expect("delete the applied namespace");
    ctx.cleanup().await;
}
