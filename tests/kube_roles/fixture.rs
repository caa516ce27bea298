//! The fixture of the role tests: accounts, a server with one token per role, requests, and the
//! objects seeded in the test namespace.

use base64::{Engine, engine::general_purpose::STANDARD};
use flotilla::proto::{
    self as pb, admin_service_client::AdminServiceClient,
    cluster_service_client::ClusterServiceClient, workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Secret, ServiceAccount},
    rbac::v1::{ClusterRoleBinding, RoleRef, Subject},
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};

use super::support::{
    kube as kenv, kubeconfigs,
    server::{AuthedChannel, TestServer},
};

pub type Workloads = WorkloadServiceClient<AuthedChannel>;

pub const CLUSTER: &str = "dev";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    BuiltIn,
    Impersonation,
}

/// A ServiceAccount bound to cluster-admin, made for one test: its own audit-log identity, so
/// the log lines of this test's server are told apart from every other test's.
pub struct AdminAccount {
    pub token: String,
    pub username: String,
    pub binding: String,
}

impl AdminAccount {
    pub async fn create(kube: &kube::Client, namespace: &str) -> AdminAccount {
        let name = "flotilla-credential";
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some(name.into());
        let sas: Api<ServiceAccount> = Api::namespaced(kube.clone(), namespace);
        sas.create(&PostParams::default(), &sa)
            .await
            .expect("service account");
        let binding = format!("{namespace}-credential");
        let mut crb = ClusterRoleBinding::default();
        crb.metadata.name = Some(binding.clone());
        crb.role_ref = RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        };
        crb.subjects = Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Default::default()
        }]);
        Api::<ClusterRoleBinding>::all(kube.clone())
            .create(&PostParams::default(), &crb)
            .await
            .expect("binding");
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let issued: TokenRequest = sas
            .create_subresource("token", name, &PostParams::default(), &request)
            .await
            .expect("token request");
        AdminAccount {
            token: issued.status.and_then(|s| s.token).expect("token"),
            username: format!("system:serviceaccount:{namespace}:{name}"),
            binding,
        }
    }

    pub async fn cleanup(&self, kube: &kube::Client) {
        let _ = Api::<ClusterRoleBinding>::all(kube.clone())
            .delete(&self.binding, &DeleteParams::default())
            .await;
    }
}

/// A server with the test control plane imported in `mode`, a namespace, and a client per role.
pub struct Setup {
    pub server: TestServer,
    pub kube: kube::Client,
    pub ns: kenv::TestNamespace,
    pub viewer: Workloads,
    pub operator: Workloads,
    pub admin: Workloads,
    /// Token names (unique per test, so audit lines are this test's).
    pub operator_name: String,
    pub account: Option<AdminAccount>,
}

impl Setup {
    pub async fn start(prefix: &str, mode: Mode) -> Setup {
        let kube = kenv::client().await;
        let ns = kenv::TestNamespace::create(&kube, prefix).await;
        let server = TestServer::start().await;
        let channel = server.channel().await;
        let (source, account) = match mode {
            Mode::BuiltIn => (
                pb::import_cluster_request::Source::Kubeconfig(pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into(),
                    context: String::new(),
                }),
                None,
            ),
            Mode::Impersonation => {
                let account = AdminAccount::create(&kube, ns.name()).await;
                (
                    pb::import_cluster_request::Source::Token(pb::TokenSource {
                        server: kubeconfigs::server(),
                        bearer_token: account.token.clone(),
                        ca_pem: kubeconfigs::ca_pem(),
                    }),
                    Some(account),
                )
            }
        };
        let imported = ClusterServiceClient::new(channel.clone())
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: CLUSTER.into(),
                source: Some(source),
                kube_access_mode: match mode {
                    Mode::BuiltIn => pb::KubeAccessMode::Unspecified,
                    Mode::Impersonation => pb::KubeAccessMode::Impersonation,
                }
                .into(),
                install_rbac: mode == Mode::Impersonation,
                ..Default::default()
            })
            .await
            .expect("import the test cluster")
            .into_inner()
            .cluster
            .expect("cluster");
        assert_eq!(
            imported.kube_access_mode(),
            match mode {
                Mode::BuiltIn => pb::KubeAccessMode::BuiltIn,
                Mode::Impersonation => pb::KubeAccessMode::Impersonation,
            }
        );
        let mut tokens = AdminServiceClient::new(channel.clone());
        let suffix = ns.name().to_string();
        let mut token = async |name: &str, role: pb::Role| {
            tokens
                .create_api_token(pb::CreateApiTokenRequest {
                    name: name.into(),
                    role: role.into(),
                    ..Default::default()
                })
                .await
                .expect("create token")
                .into_inner()
                .secret
        };
        let operator_name = format!("op-{suffix}");
        let viewer_token = token(&format!("view-{suffix}"), pb::Role::Viewer).await;
        let operator_token = token(&operator_name, pb::Role::Operator).await;
        let viewer = WorkloadServiceClient::new(server.channel_as(Some(&viewer_token)).await);
        let operator = WorkloadServiceClient::new(server.channel_as(Some(&operator_token)).await);
        Setup {
            viewer,
            operator,
            admin: WorkloadServiceClient::new(channel),
            operator_name,
            server,
            kube,
            ns,
            account,
        }
    }

    pub fn ns(&self) -> String {
        self.ns.name().to_string()
    }

    pub async fn cleanup(self) {
        if let Some(account) = &self.account {
            account.cleanup(&self.kube).await;
        }
        self.ns.cleanup().await;
        self.server.shutdown().await;
    }
}

pub fn list_request(kind: &str, api_version: &str, namespace: &str) -> pb::ListResourcesRequest {
    pb::ListResourcesRequest {
        cluster_id: CLUSTER.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        ..Default::default()
    }
}

pub fn get_request(
    kind: &str,
    api_version: &str,
    namespace: &str,
    name: &str,
) -> pb::GetResourceRequest {
    pb::GetResourceRequest {
        cluster_id: CLUSTER.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

pub fn apply_request(namespace: &str, manifests: &str, dry_run: bool) -> pb::ApplyManifestsRequest {
    pb::ApplyManifestsRequest {
        cluster_id: CLUSTER.into(),
        namespace: namespace.into(),
        manifests: manifests.into(),
        dry_run,
        force_conflicts: false,
    }
}

/// A Secret and a Deployment carrying a last-applied annotation that repeats the secret, as
/// `kubectl apply` leaves them. Returns the secret's plain value.
pub async fn seed_objects(setup: &Setup) -> String {
    let secret_value = format!("hunter2-{}", setup.ns());
    let encoded = STANDARD.encode(&secret_value);
    let last_applied = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": setup.ns()},
        "data": {"password": encoded}
    })
    .to_string();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db", "annotations": {LAST_APPLIED: last_applied}},
        "data": {"password": encoded}
    }))
    .unwrap();
    setup
        .ns
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {LAST_APPLIED: last_applied, "keep": "me"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap();
    setup
        .ns
        .api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("deployment");
    // The oracle: the API server itself holds the data and the annotation.
    let stored = setup.ns.api::<Secret>().get("db").await.expect("read back");
    assert!(stored.data.unwrap().contains_key("password"));
    assert!(
        stored
            .metadata
            .annotations
            .unwrap()
            .contains_key(LAST_APPLIED)
    );
    secret_value
}

/// Nothing in `text` reveals the secret (plain or base64) or the last-applied annotation.
pub fn assert_clean(what: &str, text: &str, secret_value: &str) {
    assert!(
        !text.contains(secret_value),
        "{what} reveals the secret: {text}"
    );
    assert!(
        !text.contains(&STANDARD.encode(secret_value)),
        "{what} reveals the secret (base64): {text}"
    );
    assert!(
        !text.contains(LAST_APPLIED),
        "{what} has last-applied: {text}"
    );
}
