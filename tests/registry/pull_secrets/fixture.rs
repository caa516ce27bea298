//! The pull secret tests' fixture: a server with two fake registry providers ("fake-pull"
//! issues pull credentials, "fake" cannot), the first test cluster imported as "first"
//! (labels env=test, team=a) and optionally the second as "second" (env=test, team=b), and
//! ways to look at what was written from outside the server: Secrets and ServiceAccounts read
//! from the API server, issued credentials from the fake's own record.

use flotilla_test_support as support;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    credential_service_client::CredentialServiceClient,
    registry_service_client::RegistryServiceClient,
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use support::{
    db::TestDb,
    kube as kenv, kubeconfigs,
    registry_fake::FakeRegistry,
    server::{AuthedChannel, TestServer},
};
use tonic::Status;
use tonic_types::StatusExt;

pub const ADMIN_USER: &str = "registry-admin";
pub const ADMIN_PASSWORD: &str = "admin-s3cret-Pa55";

/// How a fixture's server is set up.
#[derive(Clone)]
pub struct Options {
    pub lifetime: Duration,
    pub renew_before: Option<Duration>,
    pub check_interval: Duration,
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lifetime: Duration::from_secs(30 * 24 * 3600),
            renew_before: None,
            check_interval: Duration::from_secs(3600),
            workers: 2,
        }
    }
}

pub struct Fixture {
    pub server: TestServer,
    pub fake: FakeRegistry,
    pub plain: FakeRegistry,
}

impl Fixture {
    pub async fn start(options: Options) -> Fixture {
        Self::start_on(options, None, FakeRegistry::issuing("fake-pull")).await
    }

    /// On `db` (PostgreSQL, with the key file in `keys`) when given, sharing `fake`.
    pub async fn start_on(
        options: Options,
        db: Option<(&TestDb, &std::path::Path)>,
        fake: FakeRegistry,
    ) -> Fixture {
        let plain = FakeRegistry::new("fake");
        fake.state().accept = Some((ADMIN_USER.into(), ADMIN_PASSWORD.into()));
        plain.state().accept = Some((ADMIN_USER.into(), ADMIN_PASSWORD.into()));
        let providers = FakeRegistry::providers(&[&fake, &plain]);
        let db = db.map(|(db, keys)| (db.url.clone(), keys.join("master.keys")));
        let server = TestServer::start_with(move |s| {
            s.registries.extra_providers = providers;
            s.registries.probe_interval = Duration::from_secs(3600);
            s.probe_interval = Duration::from_secs(3600);
            s.registries.pull_secrets.lifetime = options.lifetime;
            s.registries.pull_secrets.renew_before = options.renew_before;
            s.registries.pull_secrets.check_interval = options.check_interval;
            s.operations.workers = options.workers;
            s.operations.poll_interval = Duration::from_millis(200);
            s.operations.lease = Duration::from_secs(3);
            if let Some((url, key_file)) = db {
                s.database_url = url;
                s.master_key_file = Some(key_file);
            }
        })
        .await;
        Fixture {
            server,
            fake,
            plain,
        }
    }

    pub async fn client(&self) -> RegistryServiceClient<AuthedChannel> {
        RegistryServiceClient::new(self.server.channel().await)
    }

    pub async fn client_as(&self, token: &str) -> RegistryServiceClient<AuthedChannel> {
        RegistryServiceClient::new(self.server.channel_as(Some(token)).await)
    }

    /// The admin credential "admin" and registries "reg" (fake-pull) and "plain" (fake).
    pub async fn registries(&self) {
        self.credential("admin", ADMIN_USER, ADMIN_PASSWORD).await;
        for (id, provider) in [("reg", "fake-pull"), ("plain", "fake")] {
            self.client()
                .await
                .create_registry(pb::CreateRegistryRequest {
                    registry: Some(pb::Registry {
                        id: id.into(),
                        provider: provider.into(),
                        endpoint: format!("https://{id}.registry.test"),
                        credential_id: "admin".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|s| panic!("create registry {id}: {s:?}"));
        }
    }

    pub async fn credential(&self, id: &str, username: &str, password: &str) {
        CredentialServiceClient::new(self.server.channel().await)
            .create_credential(pb::CreateCredentialRequest {
                credential_id: id.into(),
                provider: "harbor".into(),
                secret: Some(username_password(username, password)),
                ..Default::default()
            })
            .await
            .expect("create credential");
    }

    /// Imports the first test cluster as `id` with `labels`, directly or through `server`.
    pub async fn import(&self, id: &str, server: &str, labels: &[(&str, &str)]) {
        import_labelled(&self.server, id, server, labels).await;
    }

    pub async fn import_first(&self) {
        self.import(
            "first",
            &kubeconfigs::server(),
            &[("env", "test"), ("team", "a")],
        )
        .await;
    }

    pub async fn import_second(&self) {
        self.import(
            "second",
            &kubeconfigs::second_server(),
            &[("env", "test"), ("team", "b")],
        )
        .await;
    }

    pub async fn sync(&self, request: pb::SyncPullSecretRequest) -> pb::SyncPullSecretResponse {
        self.client()
            .await
            .sync_pull_secret(request)
            .await
            .unwrap_or_else(|s| panic!("sync: {s:?}"))
            .into_inner()
    }
}

/// Imports the cluster whose API server is `url` into `server` as `id`.
pub async fn import_into(server: &TestServer, id: &str, url: &str) {
    import_labelled(server, id, url, &[]).await;
}

async fn import_labelled(server: &TestServer, id: &str, url: &str, labels: &[(&str, &str)]) {
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: id.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig_at(url).into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("import {id}: {s:?}"));
}

pub fn username_password(username: &str, password: &str) -> pb::CredentialSecret {
    pb::CredentialSecret {
        secret: Some(pb::credential_secret::Secret::UsernamePassword(
            pb::UsernamePasswordSecret {
                username: username.into(),
                password: password.into(),
            },
        )),
    }
}

pub fn target(cluster: &str, namespaces: &[&str]) -> pb::PullSecretTarget {
    pb::PullSecretTarget {
        cluster_id: cluster.into(),
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        cluster_label_selector: String::new(),
    }
}

pub fn request(registry: &str, targets: Vec<pb::PullSecretTarget>) -> pb::SyncPullSecretRequest {
    pb::SyncPullSecretRequest {
        registry_id: registry.into(),
        targets,
        ..Default::default()
    }
}

/// A client of the second test cluster (no controllers: namespaces are made and finalized by
/// hand).
pub async fn second_cluster() -> kube::Client {
    kenv::client_from_kubeconfig(&kenv::env().dir().join("kubeconfig-second"))
        .await
        .expect("second cluster client")
}

/// A namespace on the second cluster.
pub async fn second_namespace(client: &kube::Client, name: &str) {
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace on the second cluster");
}

pub async fn delete_second_namespace(client: &kube::Client, name: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), name);
    let _ = secrets
        .delete_collection(&DeleteParams::default(), &Default::default())
        .await;
    let namespaces = Api::<Namespace>::all(client.clone());
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name}, "spec": {"finalizers": []}
    });
    let _ = namespaces
        .replace_subresource("finalize", name, &PostParams::default(), &body)
        .await;
}

/// What a `.dockerconfigjson` Secret holds for one server, read from the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerAuth {
    pub server: String,
    pub username: String,
    pub password: String,
}

pub async fn read_secret(client: &kube::Client, ns: &str, name: &str) -> Option<Secret> {
    Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .expect("read secret")
}

/// Decodes the Secret's `.dockerconfigjson` the way the kubelet does, `auth` included.
pub fn docker_auth(secret: &Secret) -> DockerAuth {
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let data = secret.data.as_ref().expect("data");
    let doc: serde_json::Value =
        serde_json::from_slice(&data[".dockerconfigjson"].0).expect("docker config json");
    let auths = doc["auths"].as_object().expect("auths");
    assert_eq!(auths.len(), 1, "one registry per Secret: {auths:?}");
    let (server, entry) = auths.iter().next().expect("entry");
    let auth = String::from_utf8(
        STANDARD
            .decode(entry["auth"].as_str().expect("auth"))
            .expect("base64"),
    )
    .expect("utf-8");
    let (user, password) = auth.split_once(':').expect("user:password");
    assert_eq!(entry["username"], user);
    assert_eq!(entry["password"], password);
    DockerAuth {
        server: server.clone(),
        username: user.into(),
        password: password.into(),
    }
}

/// The BadRequest fields of a status.
pub fn fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}
