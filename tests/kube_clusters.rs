//! ImportCluster and friends against the real test control plane (`scripts/kube-env up`).

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use k8s_openapi::api::core::v1::Namespace;
use support::{
    kube as kenv,
    kubeconfigs::{self, ProberAccount},
    proxy::TcpProxy,
    server::TestServer,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

type Client = ClusterServiceClient<support::server::AuthedChannel>;

fn kubeconfig_request(yaml: impl Into<Vec<u8>>) -> pb::ImportClusterRequest {
    pb::ImportClusterRequest {
        source: Some(pb::import_cluster_request::Source::Kubeconfig(
            pb::KubeconfigSource {
                kubeconfig: yaml.into(),
                context: String::new(),
            },
        )),
        ..Default::default()
    }
}

fn token_request(server: String, token: String, ca_pem: String) -> pb::ImportClusterRequest {
    pb::ImportClusterRequest {
        source: Some(pb::import_cluster_request::Source::Token(pb::TokenSource {
            server,
            bearer_token: token,
            ca_pem,
        })),
        ..Default::default()
    }
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

fn field(status: &Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations[0].field.clone())
        .unwrap_or_default()
}

async fn kube_system_uid() -> String {
    let client = kenv::client().await;
    kube::Api::<Namespace>::all(client)
        .get("kube-system")
        .await
        .expect("kube-system")
        .metadata
        .uid
        .expect("uid")
}

/// Nothing was stored: no cluster row, no secret.
async fn assert_nothing_stored(server: &TestServer, client: &mut Client) {
    let list = client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total_size, 0, "{:?}", list.clusters);
    assert_eq!(server.store().await.count_secrets().await.unwrap(), 0);
}

#[tokio::test]
async fn import_by_kubeconfig_with_client_certificate() {
    let server = TestServer::start().await;
    let mut client = Client::new(server.channel().await);

    let mut request = kubeconfig_request(kubeconfigs::admin_kubeconfig());
    request.validate_only = true;
    let preview = client
        .import_cluster(request.clone())
        .await
        .expect("validate")
        .into_inner();
    let preview = preview.cluster.expect("cluster");
    assert_eq!(preview.kube_system_uid, kube_system_uid().await);
    assert_nothing_stored(&server, &mut client).await;

    request.validate_only = false;
    request.cluster_id = "dev".into();
    request.display_name = "Development".into();
    request.labels = [("env".to_string(), "dev".to_string())].into();
    let cluster = client
        .import_cluster(request)
        .await
        .expect("import")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_eq!(cluster.id, "dev");
    assert_eq!(cluster.display_name, "Development");
    assert_eq!(cluster.provider, "imported");
    assert_eq!(cluster.state(), pb::ClusterState::Running);
    assert_eq!(cluster.endpoint, kubeconfigs::server());
    assert_eq!(cluster.kube_system_uid, kube_system_uid().await);
    let status = cluster.status.expect("status");
    assert!(status.reachable, "{status:?}");
    assert!(status.kubernetes_version.starts_with("v1.37"), "{status:?}");
    assert_eq!(status.node_count, 3);
    assert_eq!(status.ready_node_count, 3);
    assert!(
        status.credential_expire_time.is_some(),
        "client cert notAfter"
    );
    assert!(status.last_probe_time.is_some());

    let got = client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "dev".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_eq!(got.labels.get("env").map(String::as_str), Some("dev"));
    assert!(got.status.expect("status").reachable);
    assert_eq!(server.store().await.count_secrets().await.unwrap(), 1);

    // Update display name and labels through a field mask.
    let updated = client
        .update_cluster(pb::UpdateClusterRequest {
            cluster: Some(pb::Cluster {
                id: "dev".into(),
                display_name: "Dev cluster".into(),
                labels: [("env".to_string(), "staging".to_string())].into(),
                etag: got.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_eq!(updated.display_name, "Development", "not in the mask");
    assert_eq!(
        updated.labels.get("env").map(String::as_str),
        Some("staging")
    );
    assert_ne!(updated.etag, got.etag);
    let stale = client
        .update_cluster(pb::UpdateClusterRequest {
            cluster: Some(pb::Cluster {
                id: "dev".into(),
                display_name: "x".into(),
                etag: got.etag,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let bad_path = client
        .update_cluster(pb::UpdateClusterRequest {
            cluster: Some(pb::Cluster {
                id: "dev".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["endpoint".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_path.code(), Code::InvalidArgument);
    assert_eq!(field(&bad_path), "update_mask");

    // Importing the same cluster again, under any id, is refused and names the existing one.
    let again = client
        .import_cluster(kubeconfig_request(kubeconfigs::admin_kubeconfig()))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert_eq!(reason(&again), "CLUSTER_ALREADY_IMPORTED");
    assert!(again.message().contains("\"dev\""), "{}", again.message());

    // Destroy is not something an imported cluster supports; detach forgets it and its secret.
    let destroy = client
        .delete_cluster(pb::DeleteClusterRequest {
            cluster_id: "dev".into(),
            destroy: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(destroy.code(), Code::FailedPrecondition);
    assert_eq!(reason(&destroy), "UNSUPPORTED_BY_PROVIDER");
    client
        .delete_cluster(pb::DeleteClusterRequest {
            cluster_id: "dev".into(),
            ..Default::default()
        })
        .await
        .expect("detach");
    let gone = client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "dev".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_nothing_stored(&server, &mut client).await;
    // The cluster itself is untouched.
    assert_eq!(kube_system_uid().await.len(), 36);
    server.shutdown().await;
}

#[tokio::test]
async fn import_by_server_and_token_then_rotate() {
    let ns = kenv::TestNamespace::create(&kenv::client().await, "import-token").await;
    let account = ProberAccount::create(ns.name()).await;
    let server = TestServer::start().await;
    let mut client = Client::new(server.channel().await);

    let mut request = token_request(
        kubeconfigs::server(),
        account.token.clone(),
        kubeconfigs::ca_pem(),
    );
    request.labels = [("team".to_string(), "core".to_string())].into();
    let cluster = client
        .import_cluster(request)
        .await
        .expect("import by token")
        .into_inner()
        .cluster
        .expect("cluster");
    // No id given and the server is an IP address: the id falls back to "cluster".
    assert_eq!(cluster.id, "cluster");
    assert_eq!(cluster.labels.get("team").map(String::as_str), Some("core"));
    let status = cluster.status.expect("status");
    assert!(status.reachable);
    assert_eq!(status.node_count, 3);
    assert!(status.credential_expire_time.is_some(), "JWT exp");
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.code == "CREDENTIAL_EXPIRING"),
        "a one-hour token is about to expire: {:?}",
        status.warnings
    );

    // Rotate to the admin client certificate: same cluster, accepted.
    let rotated = client
        .update_cluster_credentials(pb::UpdateClusterCredentialsRequest {
            cluster_id: cluster.id.clone(),
            source: Some(pb::update_cluster_credentials_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("rotate")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_ne!(rotated.etag, cluster.etag);
    let rotated_status = rotated.status.expect("status");
    assert!(
        !rotated_status
            .warnings
            .iter()
            .any(|w| w.code == "CREDENTIAL_EXPIRING"),
        "{:?}",
        rotated_status.warnings
    );
    assert_eq!(
        server.store().await.count_secrets().await.unwrap(),
        1,
        "old secret deleted"
    );

    // Credentials for another cluster (the second test API server) are refused.
    let other = client
        .update_cluster_credentials(pb::UpdateClusterCredentialsRequest {
            cluster_id: cluster.id.clone(),
            source: Some(pb::update_cluster_credentials_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig_at(&kubeconfigs::second_server())
                        .into(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert_eq!(reason(&other), "DIFFERENT_CLUSTER");

    // The second cluster imports as a cluster of its own.
    let second = client
        .import_cluster(kubeconfig_request(kubeconfigs::admin_kubeconfig_at(
            &kubeconfigs::second_server(),
        )))
        .await
        .expect("import the second cluster")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_ne!(second.kube_system_uid, cluster.kube_system_uid);
    assert_eq!(second.id, "test", "named after its context");
    // scripts/kube-env gives the second cluster two KWOK nodes of its own (kwok-s1, kwok-s2).
    assert_eq!(second.status.expect("status").node_count, 2);

    // Rotating to credentials that cannot even read kube-system is refused, nothing changes.
    let refused = client
        .update_cluster_credentials(pb::UpdateClusterCredentialsRequest {
            cluster_id: cluster.id.clone(),
            source: Some(pb::update_cluster_credentials_request::Source::Token(
                pb::TokenSource {
                    server: kubeconfigs::server(),
                    bearer_token: kubeconfigs::readonly_token(),
                    ca_pem: kubeconfigs::ca_pem(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "CLUSTER_PERMISSION_DENIED");
    let after = client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: cluster.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(after.etag, rotated.etag, "unchanged");

    server.shutdown().await;
    account.cleanup().await;
    ns.cleanup().await;
}

#[tokio::test]
async fn refusals_store_nothing() {
    let server = TestServer::start().await;
    let mut client = Client::new(server.channel().await);
    let exec_user = kubeconfigs::kubeconfig(
        &kubeconfigs::server(),
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch /tmp/flotilla-pwned\"]\n",
    );
    let auth_provider = kubeconfigs::kubeconfig(
        &kubeconfigs::server(),
        "",
        "    auth-provider:\n      name: gcp\n",
    );
    let file_reference = kubeconfigs::kubeconfig(
        &kubeconfigs::server(),
        "    certificate-authority: /etc/ssl/certs/ca-certificates.crt\n",
        "    token: abc\n",
    );
    let mut huge = kubeconfigs::admin_kubeconfig();
    huge.push_str(&format!("# {}\n", "x".repeat(1024 * 1024)));
    let mut missing_context = kubeconfig_request(kubeconfigs::admin_kubeconfig());
    if let Some(pb::import_cluster_request::Source::Kubeconfig(k)) = &mut missing_context.source {
        k.context = "nope".into();
    }
    let mut bad_id = kubeconfig_request(kubeconfigs::admin_kubeconfig());
    bad_id.cluster_id = "Bad_Id".into();

    let cases: Vec<(&str, pb::ImportClusterRequest, Code, &str, &str)> = vec![
        (
            "yaml",
            kubeconfig_request("clusters: [: nope"),
            Code::InvalidArgument,
            "",
            "source.kubeconfig.kubeconfig",
        ),
        (
            "context",
            missing_context,
            Code::InvalidArgument,
            "",
            "source.kubeconfig.context",
        ),
        (
            "exec",
            kubeconfig_request(exec_user),
            Code::InvalidArgument,
            "",
            "source.kubeconfig.kubeconfig",
        ),
        (
            "auth-provider",
            kubeconfig_request(auth_provider),
            Code::InvalidArgument,
            "",
            "source.kubeconfig.kubeconfig",
        ),
        (
            "file reference",
            kubeconfig_request(file_reference),
            Code::InvalidArgument,
            "",
            "source.kubeconfig.kubeconfig",
        ),
        (
            "too large",
            kubeconfig_request(huge),
            Code::InvalidArgument,
            "",
            "source.kubeconfig.kubeconfig",
        ),
        ("bad id", bad_id, Code::InvalidArgument, "", "cluster_id"),
        (
            "no source",
            pb::ImportClusterRequest::default(),
            Code::InvalidArgument,
            "",
            "source",
        ),
        (
            "wrong CA",
            kubeconfig_request(kubeconfigs::wrong_ca_kubeconfig()),
            Code::FailedPrecondition,
            "TLS_VERIFICATION_FAILED",
            "",
        ),
        (
            "no permission",
            token_request(
                kubeconfigs::server(),
                kubeconfigs::readonly_token(),
                kubeconfigs::ca_pem(),
            ),
            Code::FailedPrecondition,
            "CLUSTER_PERMISSION_DENIED",
            "",
        ),
        (
            "bad token",
            token_request(
                kubeconfigs::server(),
                "not-a-token".into(),
                kubeconfigs::ca_pem(),
            ),
            Code::FailedPrecondition,
            "CLUSTER_CREDENTIALS_REJECTED",
            "",
        ),
        (
            "unreachable",
            kubeconfig_request(kubeconfigs::admin_kubeconfig_at("https://127.0.0.1:1")),
            Code::Unavailable,
            "CLUSTER_UNREACHABLE",
            "",
        ),
        (
            "insecure without consent",
            kubeconfig_request(kubeconfigs::insecure_kubeconfig()),
            Code::InvalidArgument,
            "",
            "allow_insecure_tls",
        ),
    ];
    for (name, request, code, expected_reason, expected_field) in cases {
        let started = Instant::now();
        let status = client.import_cluster(request).await.unwrap_err();
        assert!(
            started.elapsed() <= Duration::from_secs(10),
            "{name}: took {:?}",
            started.elapsed()
        );
        assert_eq!(status.code(), code, "{name}: {status:?}");
        if !expected_reason.is_empty() {
            assert_eq!(reason(&status), expected_reason, "{name}: {status:?}");
        }
        if !expected_field.is_empty() {
            assert_eq!(field(&status), expected_field, "{name}: {status:?}");
        }
        assert!(
            !status.message().contains("BEGIN"),
            "{name}: no key material in errors"
        );
        assert_nothing_stored(&server, &mut client).await;
    }
    assert!(
        !std::path::Path::new("/tmp/flotilla-pwned").exists(),
        "exec never ran"
    );

    // Insecure TLS with explicit consent: imported, with a permanent warning.
    let mut insecure = kubeconfig_request(kubeconfigs::insecure_kubeconfig());
    insecure.allow_insecure_tls = true;
    let cluster = client
        .import_cluster(insecure)
        .await
        .expect("insecure with consent")
        .into_inner()
        .cluster
        .expect("cluster");
    let warnings = cluster.status.expect("status").warnings;
    assert!(
        warnings.iter().any(|w| w.code == "INSECURE_TLS"),
        "{warnings:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unreachable_within_two_probe_intervals_and_back() {
    let target = kubeconfigs::server()
        .trim_start_matches("https://")
        .parse()
        .expect("server address");
    let mut proxy = TcpProxy::start(target).await;
    let server = TestServer::start_with(|s| s.probe_interval = Duration::from_secs(1)).await;
    let mut client = Client::new(server.channel().await);
    let via_proxy = kubeconfigs::admin_kubeconfig_at(&format!("https://127.0.0.1:{}", proxy.port));
    let mut request = kubeconfig_request(via_proxy);
    request.cluster_id = "flaky".into();
    client
        .import_cluster(request)
        .await
        .expect("import through proxy");

    let status_of = |mut client: Client| async move {
        client
            .get_cluster(pb::GetClusterRequest {
                cluster_id: "flaky".into(),
            })
            .await
            .expect("get")
            .into_inner()
            .cluster
            .expect("cluster")
            .status
            .expect("status")
    };

    // ListClusters keeps pages while no stored cluster changes; what the prober saw is not
    // part of what it keeps, so the list follows every probe like GetCluster does.
    let listed_status_of = |mut client: Client| async move {
        let page = client
            .list_clusters(pb::ListClustersRequest::default())
            .await
            .expect("list")
            .into_inner();
        let flaky = page.clusters.into_iter().find(|c| c.id == "flaky");
        flaky.expect("flaky is listed").status.expect("status")
    };
    assert!(listed_status_of(client.clone()).await.reachable);

    proxy.stop();
    let stopped = Instant::now();
    let down = loop {
        let status = status_of(client.clone()).await;
        if !status.reachable {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "still reachable after 3 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        down.unreachable_reason.contains("cannot reach"),
        "{}",
        down.unreachable_reason
    );
    assert_eq!(down.node_count, 3, "last known counts are kept");
    let listed = listed_status_of(client.clone()).await;
    assert!(
        !listed.reachable,
        "the list shows the probe GetCluster showed: {listed:?}"
    );
    assert!(
        listed.unreachable_reason.contains("cannot reach"),
        "{listed:?}"
    );

    proxy.resume().await;
    let resumed = Instant::now();
    loop {
        let status = status_of(client.clone()).await;
        if status.reachable {
            assert!(status.unreachable_reason.is_empty());
            let listed = listed_status_of(client.clone()).await;
            assert!(
                listed.reachable && listed.unreachable_reason.is_empty(),
                "{listed:?}"
            );
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(5),
            "not back after 5 s: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}
