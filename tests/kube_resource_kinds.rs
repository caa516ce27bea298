//! ListResourceKinds against the real test control plane: the kinds match what the API server's
//! own discovery says through kubectl (`kubectl api-resources -o wide`), an unknown cluster is
//! NOT_FOUND, and a viewer token may call it.

use flotilla_test_support as support;

use std::{collections::BTreeSet, process::Command};

use flotilla::proto::{self as pb, admin_service_client::AdminServiceClient};
use support::{kube as kenv, pod_fleet, resources::*};
use tonic::Code;

/// (apiVersion, kind, plural, namespaced, sorted verbs), the columns both sides have.
type Row = (String, String, String, bool, Vec<String>);

/// `kubectl api-resources -o wide`, cut by the header's column offsets (SHORTNAMES may be blank,
/// so splitting on whitespace would shift the columns).
fn kubectl_api_resources() -> Vec<Row> {
    let env = kenv::env();
    let kubectl = pod_fleet::kubectl(env.dir()).expect("the test environment's kubectl");
    let out = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(["api-resources", "-o", "wide"])
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let at = |name: &str| header.find(name).unwrap_or_else(|| panic!("column {name}"));
    let cols = [
        at("APIVERSION"),
        at("NAMESPACED"),
        at("KIND"),
        at("VERBS"),
        at("CATEGORIES"),
    ];
    let cell = |line: &str, from: usize, to: usize| -> String {
        line.get(from..to.min(line.len()))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let plural = l.split_whitespace().next().expect("name").to_string();
            let mut verbs: Vec<String> = cell(l, cols[3], cols[4])
                .split(',')
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect();
            verbs.sort();
            (
                cell(l, cols[0], cols[1]),
                cell(l, cols[2], cols[3]),
                plural,
                cell(l, cols[1], cols[2]) == "true",
                verbs,
            )
        })
        .collect()
}

/// Groups that only custom resources serve change while other tests run (they install CRDs of
/// their own); the built-in ones (core, *.k8s.io, dotless) do not.
fn built_in(row: &Row) -> bool {
    match row.0.split_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

fn rows(kinds: &[pb::ResourceKind]) -> Vec<Row> {
    kinds
        .iter()
        .map(|k| {
            let mut verbs = k.verbs.clone();
            verbs.sort();
            (
                k.api_version.clone(),
                k.kind.clone(),
                k.plural.clone(),
                k.namespaced,
                verbs,
            )
        })
        .collect()
}

#[tokio::test]
async fn kinds_match_the_api_servers_discovery_and_viewers_may_list_them() {
    let mut ctx = Ctx::start("res-kinds").await;
    let request = pb::ListResourceKindsRequest {
        cluster_id: CLUSTER.into(),
    };
    let kinds = ctx
        .api
        .list_resource_kinds(request.clone())
        .await
        .expect("list kinds")
        .into_inner()
        .kinds;

    let ours: BTreeSet<Row> = rows(&kinds).into_iter().filter(built_in).collect();
    let theirs: BTreeSet<Row> = kubectl_api_resources()
        .into_iter()
        .filter(built_in)
        .collect();
    assert!(theirs.len() > 40, "kubectl listed {} kinds", theirs.len());
    assert_eq!(
        ours.difference(&theirs).collect::<Vec<_>>(),
        Vec::<&Row>::new(),
        "kinds kubectl does not list"
    );
    assert_eq!(
        theirs.difference(&ours).collect::<Vec<_>>(),
        Vec::<&Row>::new(),
        "kinds kubectl lists that the API left out"
    );
    // Sorted by group, then kind.
    let order: Vec<(String, String)> = kinds
        .iter()
        .map(|k| {
            (
                k.api_version
                    .split_once('/')
                    .map_or("", |(g, _)| g)
                    .to_string(),
                k.kind.clone(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // A viewer (read-only) token may call it.
    let mut admin = AdminServiceClient::new(ctx._server.channel().await);
    let viewer = admin
        .create_api_token(pb::CreateApiTokenRequest {
            name: "kinds-viewer".into(),
            role: pb::Role::Viewer.into(),
            cluster_ids: Vec::new(),
            expire_time: None,
        })
        .await
        .expect("create viewer token")
        .into_inner()
        .secret;
    let mut as_viewer = Workloads::new(ctx._server.channel_as(Some(&viewer)).await);
    let seen = as_viewer
        .list_resource_kinds(request)
        .await
        .expect("a viewer lists kinds")
        .into_inner()
        .kinds;
    assert_eq!(rows(&seen), rows(&kinds));

    // A cluster that does not exist.
    let missing = ctx
        .api
        .list_resource_kinds(pb::ListResourceKindsRequest {
            cluster_id: "no-such-cluster".into(),
        })
        .await
        .expect_err("unknown cluster");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    ctx.cleanup().await;
}
