//! End to end with a real registry: the Harbor simulator in backed mode (a real CNCF
//! Distribution registry behind its `/v2`, tokens from its `/service/token` realm), connected
//! to Flotilla with the Harbor admin. SyncPullSecret writes a Secret into the test control
//! plane; the test reads it back from the API server, decodes it as the kubelet does, and logs
//! in with it as a container runtime would: a robot, not the admin, that pulls from the chosen
//! project only and cannot push.

use flotilla_test_support as support;

use flotilla::proto::{
    self as pb, credential_service_client::CredentialServiceClient,
    registry_service_client::RegistryServiceClient,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};
use support::{
    kube as kenv, kubeconfigs,
    registry::{
        Pusher,
        login::{Stage, pull_like_a_runtime, try_push},
    },
    server::TestServer,
    sim::harbor::HarborSim,
};

use super::cleaning;
use super::fixture::{docker_auth, read_secret, target, username_password};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_holds_a_pull_only_robot_that_works_against_the_real_registry() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-harbor").await;
    let n = ns.name().to_string();
    let check = async {
        let sim = HarborSim::start_backed().await;
        let (admin, admin_password) = sim.admin();
        let server = TestServer::start_with(|s| {
            s.registries.probe_interval = std::time::Duration::from_secs(3600);
        })
        .await;
        CredentialServiceClient::new(server.channel().await)
            .create_credential(pb::CreateCredentialRequest {
                credential_id: "harbor-admin".into(),
                provider: "harbor".into(),
                secret: Some(username_password(&admin, &admin_password)),
                ..Default::default()
            })
            .await
            .expect("credential");
        let mut registries = RegistryServiceClient::new(server.channel().await);
        registries
            .create_registry(pb::CreateRegistryRequest {
                registry: Some(pb::Registry {
                    id: "harbor".into(),
                    provider: "harbor".into(),
                    endpoint: sim.endpoint(),
                    credential_id: "harbor-admin".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create the Harbor registry with its admin");
        for project in ["team-a", "team-b"] {
            registries
                .create_registry_namespace(pb::CreateRegistryNamespaceRequest {
                    registry_id: "harbor".into(),
                    name: project.into(),
                    public: false,
                })
                .await
                .expect("project");
        }
        let pusher = Pusher::new(
            &sim.endpoint(),
            Some((admin.clone(), admin_password.clone())),
        );
        let a = pusher
            .push_image("team-a/app", Some("v1"), "linux/amd64", "a")
            .await;
        pusher
            .push_image("team-b/app", Some("v1"), "linux/amd64", "b")
            .await;
        super::fixture::import_into(&server, "first", &kubeconfigs::server()).await;

        let synced = registries
            .sync_pull_secret(pb::SyncPullSecretRequest {
                registry_id: "harbor".into(),
                targets: vec![target("first", &[&n])],
                registry_namespaces: vec!["team-a".into()],
                ..Default::default()
            })
            .await
            .expect("sync")
            .into_inner();
        assert_eq!(synced.results.len(), 1, "{synced:?}");
        assert_eq!(synced.results[0].outcome, "created", "{synced:?}");
        assert!(
            synced.results[0].expire_time.is_some(),
            "a robot with an expiry"
        );

        // What the kubelet would read.
        let secret = read_secret(&kube, &n, "flotilla-harbor")
            .await
            .expect("Secret in the API server");
        let auth = docker_auth(&secret);
        let host = sim
            .endpoint()
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        assert_eq!(auth.server, host);
        assert!(auth.username.starts_with("robot$"), "{}", auth.username);
        assert_ne!(auth.username, admin);
        assert_ne!(auth.password, admin_password, "never the admin's password");

        // It works: pulls from the project it was issued for, as a runtime does.
        let base = sim.endpoint();
        assert_eq!(
            pull_like_a_runtime(&base, &auth.username, &auth.password, "team-a/app", "v1").await,
            Ok(sha256(&a.manifest))
        );
        // It is narrow: another project is refused, and so is pushing.
        let other = pull_like_a_runtime(&base, &auth.username, &auth.password, "team-b/app", "v1")
            .await
            .unwrap_err();
        assert_eq!(
            (other.stage, other.status),
            (Stage::Registry, 401),
            "{other}"
        );
        let push = try_push(&base, &auth.username, &auth.password, "team-a/app", "evil")
            .await
            .unwrap_err();
        assert_eq!((push.stage, push.status), (Stage::Registry, 401), "{push}");

        // A pod referencing it is admitted by the API server.
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pulls-from-harbor"},
            "spec": {
                "imagePullSecrets": [{"name": "flotilla-harbor"}],
                "containers": [{"name": "app", "image": format!("{host}/team-a/app:v1")}]
            }
        }))
        .unwrap();
        Api::<Pod>::namespaced(kube.clone(), &n)
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod admitted");

        // Syncing again replaces the robot; the replaced one no longer logs in.
        registries
            .sync_pull_secret(pb::SyncPullSecretRequest {
                registry_id: "harbor".into(),
                targets: vec![target("first", &[&n])],
                registry_namespaces: vec!["team-a".into()],
                ..Default::default()
            })
            .await
            .expect("sync again");
        let renewed = docker_auth(&read_secret(&kube, &n, "flotilla-harbor").await.unwrap());
        assert_ne!(renewed.username, auth.username);
        assert_eq!(
            pull_like_a_runtime(
                &base,
                &renewed.username,
                &renewed.password,
                "team-a/app",
                "v1"
            )
            .await,
            Ok(sha256(&a.manifest))
        );
        let old = pull_like_a_runtime(&base, &auth.username, &auth.password, "team-a/app", "v1")
            .await
            .unwrap_err();
        assert_eq!((old.stage, old.status), (Stage::Realm, 401), "{old}");
        server.shutdown().await;
    };
    cleaning(check, ns.cleanup()).await;
}
