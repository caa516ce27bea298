//! Hostile input is refused within the limits, fast, with nothing stored or applied: YAML alias
//! bombs ("billion laughs") and deep nesting in uploaded kubeconfigs (ImportCluster) and in
//! manifests (ApplyManifests), and kubeconfig file references (`tokenFile`,
//! `client-certificate`, `client-key`) that would read this server's files.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use k8s_openapi::api::core::v1::ConfigMap;
use support::{kubeconfigs, resources::Ctx, server::TestServer};
use tonic::Code;
use tonic_types::StatusExt;

/// How long a refusal may take. Expanding a billion laughs takes minutes and gigabytes.
const FAST: Duration = Duration::from_secs(1);

/// Nine levels of nine-fold aliases: 9^9 (387 million) strings once expanded, in under 1 KiB.
fn billion_laughs() -> String {
    let mut yaml = String::from(
        "lol0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in 1..=9 {
        let prev = format!("*l{}", level - 1);
        let items = [prev.as_str(); 9].join(",");
        yaml.push_str(&format!("lol{level}: &l{level} [{items}]\n"));
    }
    yaml
}

/// A value nested `depth` levels deep, in flow style (`[[[...]]]`).
fn deep_flow(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// A value nested `depth` levels deep, in block style (one mapping per line, each indented; the
/// size grows with the square of the depth).
fn deep_block(depth: usize) -> String {
    let mut yaml = String::from("\n");
    for level in 0..depth {
        yaml.push_str(&" ".repeat(2 * (level + 1)));
        yaml.push_str("k:\n");
    }
    yaml.push_str(&" ".repeat(2 * (depth + 1)));
    yaml.push_str("v\n");
    yaml
}

/// A working kubeconfig for the test cluster, with `extra` top-level keys in front (ignored
/// fields still have to be parsed).
fn kubeconfig_with(extra: &str) -> String {
    format!("{extra}{}", kubeconfigs::admin_kubeconfig())
}

async fn import(server: &TestServer, id: &str, kubeconfig: String) -> Result<(), tonic::Status> {
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: id.into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfig.into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn cluster_count(server: &TestServer) -> i32 {
    ClusterServiceClient::new(server.channel().await)
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("list")
        .into_inner()
        .total_size
}

/// The field the BadRequest detail names.
fn bad_field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

#[tokio::test]
async fn hostile_kubeconfigs_are_refused_fast_and_nothing_is_stored() {
    let server = TestServer::start().await;
    // The same kubeconfig without the hostile part imports: the refusals below are about it.
    import(&server, "control", kubeconfig_with(""))
        .await
        .expect("a plain kubeconfig imports");
    let cases = [
        ("laughs", kubeconfig_with(&billion_laughs())),
        (
            "flow",
            kubeconfig_with(&format!("deep: {}\n", deep_flow(100_000))),
        ),
        (
            "block",
            kubeconfig_with(&format!("deep:{}", deep_block(200))),
        ),
    ];
    for (name, kubeconfig) in cases {
        let started = Instant::now();
        let status = import(&server, name, kubeconfig)
            .await
            .expect_err(&format!("{name}: a hostile kubeconfig was accepted"));
        let took = started.elapsed();
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(took < FAST, "{name}: refused after {took:?}");
        assert!(
            bad_field(&status).contains("kubeconfig"),
            "{name}: {status:?}"
        );
    }
    assert_eq!(cluster_count(&server).await, 1, "only the control cluster");
    server.shutdown().await;
}

#[tokio::test]
async fn hostile_manifests_are_refused_fast_and_nothing_is_applied() {
    let mut ctx = Ctx::start("limits").await;
    let config_map = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n{extra}"
        )
    };
    let cases = [
        ("laughs", config_map("laughs", &billion_laughs())),
        (
            "flow",
            config_map("flow", &format!("deep: {}\n", deep_flow(100_000))),
        ),
        (
            "block",
            config_map("block", &format!("deep:{}", deep_block(200))),
        ),
    ];
    for (name, manifest) in cases {
        // A good document next to it: the bad one fails alone, the good one is applied.
        let manifests = format!("{manifest}---\n{}", config_map(&format!("{name}-ok"), ""));
        let started = Instant::now();
        let results = ctx.try_apply(&manifests, false, false).await;
        let took = started.elapsed();
        assert!(took < FAST, "{name}: answered after {took:?}");
        let results = results.unwrap_or_else(|s| panic!("{name}: {s:?}"));
        let bad = results
            .iter()
            .find(|r| r.document_index == 0)
            .expect("a result for the hostile document");
        assert_eq!(
            bad.outcome(),
            pb::ApplyOutcome::Failed,
            "{name}: {results:?}"
        );
        let ok = results
            .iter()
            .find(|r| r.document_index == 1)
            .expect("a result for the good document");
        assert_eq!(
            ok.outcome(),
            pb::ApplyOutcome::Created,
            "{name}: {results:?}"
        );
        let stored = ctx.ns.api::<ConfigMap>().get_opt(name).await.expect("get");
        assert!(
            stored.is_none(),
            "{name}: the hostile ConfigMap was applied"
        );
    }
    ctx.ns.cleanup().await;
}

/// A kubeconfig for the test cluster whose user names files instead of embedding data.
fn kubeconfig_with_user(user: &str) -> String {
    kubeconfigs::kubeconfig(
        &kubeconfigs::server(),
        &format!(
            "    certificate-authority-data: {}\n",
            base64_of(&kubeconfigs::ca_pem())
        ),
        user,
    )
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Each file reference is refused naming the field, and nothing is stored. The files hold
/// working credentials, so had the server read one, the import would have worked.
#[tokio::test]
async fn kubeconfig_file_references_are_refused_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let token = write("token", &kubeconfigs::readonly_token());
    let cert = write("admin.crt", &kubeconfigs::admin_cert_pem());
    let key = write("admin.key", &kubeconfigs::admin_key_pem());
    let cert_data = base64_of(&kubeconfigs::admin_cert_pem());
    let key_data = base64_of(&kubeconfigs::admin_key_pem());
    let server = TestServer::start().await;
    // The same credentials embedded import: the refusals below are about the references.
    let embedded = kubeconfig_with_user(&format!(
        "    client-certificate-data: {cert_data}\n    client-key-data: {key_data}\n"
    ));
    import(&server, "embedded", embedded)
        .await
        .expect("embedded credentials import");

    let cases = [
        ("tokenFile", format!("    tokenFile: {token}\n")),
        (
            "client-certificate",
            format!("    client-certificate: {cert}\n    client-key: {key}\n"),
        ),
        (
            "client-key",
            format!("    client-certificate-data: {cert_data}\n    client-key: {key}\n"),
        ),
    ];
    for (field, user) in cases {
        let status = import(&server, "by-reference", kubeconfig_with_user(&user))
            .await
            .expect_err(&format!("{field}: a file reference was followed"));
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status
                .message()
                .contains(&format!("{field} refers to a file")),
            "{field}: {}",
            status.message()
        );
        assert!(bad_field(&status).contains("kubeconfig"), "{status:?}");
        let shown = format!("{status:?}");
        assert!(
            !shown.contains(&kubeconfigs::readonly_token())
                && !shown.contains(kubeconfigs::admin_key_pem().lines().nth(1).unwrap()),
            "{field}: the file's content leaked: {shown}"
        );
    }
    assert_eq!(cluster_count(&server).await, 1, "only the embedded one");
    server.shutdown().await;
}
