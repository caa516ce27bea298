//! `RegistryService/SyncPullSecret` against the real test control plane, with test-support's
//! fake registry provider (which issues pull credentials and records each one). What is
//! checked comes from outside the code under test: Secrets, ServiceAccounts and pods read from
//! the API server, and the fake's record of what it issued and revoked.

use flotilla_test_support as support;

use std::time::Duration;

use flotilla::proto as pb;
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use support::{kube as kenv, kubeconfigs, proxy::TcpProxy};
use tonic::Code;

mod fixture;
mod harbor_e2e;
mod renewal;

use fixture::{
    ADMIN_PASSWORD, ADMIN_USER, Fixture, Options, docker_auth, fields, read_secret, reason,
    request, target,
};

/// Runs `check` and then `cleanup`, even when `check` panics (the clusters are shared).
async fn cleaning<F, C>(check: F, cleanup: C)
where
    F: std::future::Future<Output = ()>,
    C: std::future::Future<Output = ()>,
{
    let outcome = std::panic::AssertUnwindSafe(check).catch_unwind().await;
    cleanup.await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// One credential per sync, written to every target (two namespaces of one cluster by id, one
/// of another by labels), attached to a ServiceAccount; the pod the API server admits for that
/// account carries it. The Secret holds a live credential the fake issued, not the admin's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_one_narrow_credential_to_every_target() {
    let kube = kenv::client().await;
    let a = kenv::TestNamespace::create(&kube, "ps-a").await;
    let b = kenv::TestNamespace::create(&kube, "ps-b").await;
    let second = fixture::second_cluster().await;
    let c = format!("t-ps-c-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    fixture::second_namespace(&second, &c).await;
    let (na, nb) = (a.name().to_string(), b.name().to_string());
    let check = async {
        let f = Fixture::start(Options::default()).await;
        f.registries().await;
        f.import_first().await;
        f.import_second().await;
        for ns in [&na, &nb] {
            let account: ServiceAccount =
                serde_json::from_value(serde_json::json!({"metadata": {"name": "puller"}}))
                    .unwrap();
            Api::<ServiceAccount>::namespaced(kube.clone(), ns)
                .create(&PostParams::default(), &account)
                .await
                .expect("service account");
        }
        let synced = f
            .sync(pb::SyncPullSecretRequest {
                service_account: "puller".into(),
                registry_namespaces: vec!["team".into()],
                ..request(
                    "reg",
                    vec![
                        target("first", &[&na, &nb]),
                        pb::PullSecretTarget {
                            cluster_label_selector: "team=b".into(),
                            namespaces: vec![c.clone()],
                            ..Default::default()
                        },
                    ],
                )
            })
            .await;
        assert!(synced.unreachable.is_empty(), "{:?}", synced.unreachable);
        let outcomes: Vec<(String, String, String)> = synced
            .results
            .iter()
            .map(|r| (r.cluster_id.clone(), r.namespace.clone(), r.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("first".to_string(), na.clone(), "created".to_string()),
                ("first".into(), nb.clone(), "created".into()),
                ("second".into(), c.clone(), "created".into()),
            ],
            "{:?}",
            synced.results
        );
        // The ServiceAccount of the second cluster did not exist: said so, Secret written.
        assert!(
            synced.results[2].message.contains("puller"),
            "{:?}",
            synced.results[2]
        );
        assert!(synced.results.iter().all(|r| r.expire_time.is_some()));

        let pulls = f.fake.pulls();
        assert_eq!(pulls.len(), 1, "one credential per sync: {pulls:?}");
        assert_eq!(pulls[0].namespaces, ["team"]);
        let mut held = Vec::new();
        for (client, ns) in [(&kube, &na), (&kube, &nb), (&second, &c)] {
            let secret = read_secret(client, ns, "flotilla-reg")
                .await
                .unwrap_or_else(|| panic!("no Secret in {ns}"));
            let labels = secret.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels["app.kubernetes.io/managed-by"], "flotilla");
            held.push(docker_auth(&secret));
        }
        assert!(held.iter().all(|h| *h == held[0]), "{held:?}");
        let auth = &held[0];
        assert_eq!(auth.server, "reg.registry.test");
        assert_ne!(auth.username, ADMIN_USER, "never the admin credential");
        assert_ne!(auth.password, ADMIN_PASSWORD);
        {
            let state = f.fake.state();
            let live = state
                .live_pull(&auth.username, &auth.password)
                .expect("the Secret holds a live credential the registry issued");
            assert_eq!(live.issued_under, ADMIN_USER);
        }
        // The ServiceAccount references it, and the API server's ServiceAccount admission
        // gives a pod of that account the pull secret.
        let account = Api::<ServiceAccount>::namespaced(kube.clone(), &na)
            .get("puller")
            .await
            .expect("account");
        let names: Vec<String> = account
            .image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["flotilla-reg"]);
        let pods: Api<Pod> = Api::namespaced(kube.clone(), &na);
        let by_account: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "by-account"},
            "spec": {
                "serviceAccountName": "puller",
                "containers": [{"name": "app", "image": "reg.registry.test/team/app:v1"}]
            }
        }))
        .unwrap();
        let created = pods
            .create(&PostParams::default(), &by_account)
            .await
            .expect("pod admitted");
        let given: Vec<String> = created
            .spec
            .and_then(|s| s.image_pull_secrets)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(given, ["flotilla-reg"]);
        let explicit: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "explicit"},
            "spec": {
                "imagePullSecrets": [{"name": "flotilla-reg"}],
                "containers": [{"name": "app", "image": "reg.registry.test/team/app:v1"}]
            }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &explicit)
            .await
            .expect("pod referencing the Secret admitted");

        // Syncing again issues a new credential, updates every Secret, and revokes the one
        // they held (no Secret holds it any more).
        let again = f
            .sync(request(
                "reg",
                vec![target("first", &[&na, &nb]), target("second", &[&c])],
            ))
            .await;
        assert!(
            again.results.iter().all(|r| r.outcome == "updated"),
            "{:?}",
            again.results
        );
        let pulls = f.fake.pulls();
        assert_eq!(pulls.len(), 2);
        assert!(pulls[0].revoked, "the replaced credential is revoked");
        assert!(!pulls[1].revoked);
        let now = docker_auth(&read_secret(&kube, &na, "flotilla-reg").await.unwrap());
        assert_eq!(now.username, pulls[1].username);
        f.server.shutdown().await;
    };
    cleaning(check, async {
        a.cleanup().await;
        b.cleanup().await;
        fixture::delete_second_namespace(&second, &c).await;
    })
    .await;
}

/// Bad input is refused on its field before anything is issued or written; a provider with no
/// narrow credential is refused rather than handed the admin credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_issued_or_written() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-bad").await;
    let n = ns.name().to_string();
    let check = async {
        let f = Fixture::start(Options::default()).await;
        f.registries().await;
        f.import_first().await;
        let ok = || request("reg", vec![target("first", &[&n])]);
        let cases: Vec<(&str, pb::SyncPullSecretRequest, Code, &str)> = vec![
            (
                "no registry id",
                pb::SyncPullSecretRequest {
                    registry_id: String::new(),
                    ..ok()
                },
                Code::InvalidArgument,
                "registry_id",
            ),
            (
                "no targets",
                request("reg", vec![]),
                Code::InvalidArgument,
                "targets",
            ),
            (
                "neither cluster nor selector",
                request("reg", vec![target("", &[&n])]),
                Code::InvalidArgument,
                "targets[0].cluster_id",
            ),
            (
                "no namespaces",
                request("reg", vec![target("first", &[])]),
                Code::InvalidArgument,
                "targets[0].namespaces",
            ),
            (
                "bad namespace",
                request("reg", vec![target("first", &[&n, "Not_A_Namespace"])]),
                Code::InvalidArgument,
                "targets[0].namespaces[1]",
            ),
            (
                "bad secret name",
                pb::SyncPullSecretRequest {
                    secret_name: "Bad/Name".into(),
                    ..ok()
                },
                Code::InvalidArgument,
                "secret_name",
            ),
            (
                "bad service account",
                pb::SyncPullSecretRequest {
                    service_account: "no such!".into(),
                    ..ok()
                },
                Code::InvalidArgument,
                "service_account",
            ),
            (
                "bad registry namespace",
                pb::SyncPullSecretRequest {
                    registry_namespaces: vec!["UPPER".into()],
                    ..ok()
                },
                Code::InvalidArgument,
                "registry_namespaces[0]",
            ),
            (
                "a selector matching no cluster",
                request(
                    "reg",
                    vec![pb::PullSecretTarget {
                        cluster_label_selector: "team=nobody".into(),
                        namespaces: vec![n.clone()],
                        ..Default::default()
                    }],
                ),
                Code::InvalidArgument,
                "targets",
            ),
        ];
        let mut client = f.client().await;
        for (case, req, code, field) in cases {
            let status = client.sync_pull_secret(req).await.unwrap_err();
            assert_eq!(status.code(), code, "{case}: {status:?}");
            assert_eq!(fields(&status), [field], "{case}: {status:?}");
        }
        let missing = client
            .sync_pull_secret(request("ghost", vec![target("first", &[&n])]))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
        let no_cluster = client
            .sync_pull_secret(request("reg", vec![target("ghost", &[&n])]))
            .await
            .unwrap_err();
        assert_eq!(no_cluster.code(), Code::NotFound, "{no_cluster:?}");
        // A registry whose provider cannot issue a narrow credential.
        let plain = client
            .sync_pull_secret(request("plain", vec![target("first", &[&n])]))
            .await
            .unwrap_err();
        assert_eq!(plain.code(), Code::FailedPrecondition, "{plain:?}");
        assert_eq!(reason(&plain), "UNSUPPORTED_BY_PROVIDER");
        assert!(!plain.message().contains(ADMIN_PASSWORD));

        // Nothing issued by either registry, nothing written in the namespace.
        assert_eq!(f.fake.calls().get("issue_pull_credential"), None);
        assert!(f.fake.pulls().is_empty());
        assert_eq!(f.plain.calls().get("issue_pull_credential"), None);
        let secrets = Api::<Secret>::namespaced(kube.clone(), &n)
            .list(&Default::default())
            .await
            .expect("list secrets");
        let ours: Vec<_> = secrets
            .items
            .iter()
            .filter(|s| s.type_.as_deref() == Some("kubernetes.io/dockerconfigjson"))
            .collect();
        assert!(ours.is_empty(), "{ours:?}");
        f.server.shutdown().await;
    };
    cleaning(check, ns.cleanup()).await;
}

/// A Secret of that name that Flotilla did not write is left as it is (result "failed"); the
/// credential issued for the call is revoked since no Secret holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_flotilla_did_not_write_is_left_alone() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-foreign").await;
    let n = ns.name().to_string();
    let check = async {
        let foreign: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "flotilla-reg"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": "{\"auths\":{\"mine\":{\"auth\":\"bWU6eW91\"}}}"}
        }))
        .unwrap();
        let secrets: Api<Secret> = Api::namespaced(kube.clone(), &n);
        let before = secrets
            .create(&PostParams::default(), &foreign)
            .await
            .expect("foreign secret");
        let f = Fixture::start(Options::default()).await;
        f.registries().await;
        f.import_first().await;
        let synced = f.sync(request("reg", vec![target("first", &[&n])])).await;
        assert_eq!(synced.results.len(), 1);
        assert_eq!(synced.results[0].outcome, "failed");
        assert!(
            synced.results[0].message.contains("did not write"),
            "{:?}",
            synced.results[0]
        );
        let after = secrets.get("flotilla-reg").await.expect("still there");
        assert_eq!(after.data, before.data);
        assert_eq!(
            after.metadata.resource_version,
            before.metadata.resource_version
        );
        let pulls = f.fake.pulls();
        assert_eq!(pulls.len(), 1);
        assert!(
            pulls[0].revoked,
            "an issued credential no Secret holds is revoked"
        );
        f.server.shutdown().await;
    };
    cleaning(check, ns.cleanup()).await;
}

/// A cluster that does not answer is reported in `unreachable`; the others are written and
/// the call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_reported_not_fatal() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-unreach").await;
    let n = ns.name().to_string();
    let check = async {
        let f = Fixture::start(Options::default()).await;
        f.registries().await;
        f.import_first().await;
        // The second test cluster, behind a proxy that then stops.
        let upstream = kubeconfigs::second_server()
            .trim_start_matches("https://")
            .parse()
            .expect("server address");
        let mut proxy = TcpProxy::start(upstream).await;
        f.import(
            "flaky",
            &format!("https://127.0.0.1:{}", proxy.port),
            &[("env", "test")],
        )
        .await;
        // The record now points at a closed loopback port.
        proxy.stop();
        let synced = f
            .sync(request(
                "reg",
                vec![pb::PullSecretTarget {
                    cluster_label_selector: "env=test".into(),
                    namespaces: vec![n.clone()],
                    ..Default::default()
                }],
            ))
            .await;
        let unreachable: Vec<&str> = synced
            .unreachable
            .iter()
            .map(|u| u.cluster_id.as_str())
            .collect();
        assert_eq!(unreachable, ["flaky"], "{:?}", synced);
        assert!(!synced.unreachable[0].reason.is_empty());
        let written: Vec<(&str, &str)> = synced
            .results
            .iter()
            .map(|r| (r.cluster_id.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(written, [("first", "created")]);
        assert!(read_secret(&kube, &n, "flotilla-reg").await.is_some());
        f.server.shutdown().await;
        drop(proxy);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    cleaning(check, ns.cleanup()).await;
}

/// A cluster-scoped admin token writes only to its own clusters: a label selector leaves the
/// others out, and another cluster by id is NOT_FOUND, with nothing issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_token_writes_only_to_its_clusters() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-scope").await;
    let n = ns.name().to_string();
    let second = fixture::second_cluster().await;
    fixture::second_namespace(&second, &n).await;
    let check = async {
        let f = Fixture::start(Options::default()).await;
        f.registries().await;
        f.import_first().await;
        f.import_second().await;
        let token = flotilla::proto::admin_service_client::AdminServiceClient::new(
            f.server.channel().await,
        )
        .create_api_token(pb::CreateApiTokenRequest {
            name: "first-admin".into(),
            role: pb::Role::Admin.into(),
            cluster_ids: vec!["first".into()],
            expire_time: None,
        })
        .await
        .expect("token")
        .into_inner()
        .secret;
        let mut scoped = f.client_as(&token).await;
        let hidden = scoped
            .sync_pull_secret(request("reg", vec![target("second", &[&n])]))
            .await
            .unwrap_err();
        assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
        assert!(f.fake.pulls().is_empty(), "nothing issued");
        let synced = scoped
            .sync_pull_secret(request(
                "reg",
                vec![pb::PullSecretTarget {
                    cluster_label_selector: "env=test".into(),
                    namespaces: vec![n.clone()],
                    ..Default::default()
                }],
            ))
            .await
            .expect("sync by labels")
            .into_inner();
        let clusters: Vec<&str> = synced
            .results
            .iter()
            .map(|r| r.cluster_id.as_str())
            .collect();
        assert_eq!(clusters, ["first"], "{synced:?}");
        assert!(
            synced.unreachable.is_empty(),
            "a cluster out of scope is not even tried: {synced:?}"
        );
        assert!(read_secret(&kube, &n, "flotilla-reg").await.is_some());
        assert!(
            read_secret(&second, &n, "flotilla-reg").await.is_none(),
            "nothing written where the token may not reach"
        );
        f.server.shutdown().await;
    };
    cleaning(check, async {
        ns.cleanup().await;
        fixture::delete_second_namespace(&second, &n).await;
    })
    .await;
}
