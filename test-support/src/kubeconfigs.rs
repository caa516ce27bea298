//! Kubeconfigs and credentials for import tests, built from the test control plane's PKI.
//! Uses `super::kube` (the control plane) — include both modules.

use std::path::PathBuf;

use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject},
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};

use super::kube as kenv;

fn pki(name: &str) -> String {
    let path: PathBuf = kenv::env().dir().join("pki").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The API server URL of the test control plane.
pub fn server() -> String {
    let text = std::fs::read_to_string(kenv::env().kubeconfig()).expect("kubeconfig");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server line")
        .trim()
        .to_string()
}

/// The API server URL of the second, independent test cluster.
pub fn second_server() -> String {
    let path = kenv::env().dir().join("kubeconfig-second");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server line")
        .trim()
        .to_string()
}

pub fn ca_pem() -> String {
    pki("ca.crt")
}

pub fn admin_cert_pem() -> String {
    pki("admin.crt")
}

pub fn admin_key_pem() -> String {
    pki("admin.key")
}

pub fn wrong_ca_pem() -> String {
    pki("wrong-ca.crt")
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// A kubeconfig with everything embedded; `user` is the YAML body of the user entry.
pub fn kubeconfig(server: &str, cluster_extra: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: {server}\n{cluster_extra}users:\n- name: u\n  user:\n{user}contexts:\n- name: test\n  context: {{cluster: test, user: u}}\n"
    )
}

/// Admin client-certificate kubeconfig with the right CA.
pub fn admin_kubeconfig_at(server: &str) -> String {
    admin_kubeconfig_with_key(server, &admin_key_pem())
}

pub fn admin_kubeconfig_with_key(server: &str, key_pem: &str) -> String {
    kubeconfig(
        server,
        &format!("    certificate-authority-data: {}\n", b64(&ca_pem())),
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&admin_cert_pem()),
            b64(key_pem)
        ),
    )
}

pub fn admin_kubeconfig() -> String {
    admin_kubeconfig_at(&server())
}

/// Admin credentials, but the CA did not sign the server certificate.
pub fn wrong_ca_kubeconfig() -> String {
    kubeconfig(
        &server(),
        &format!("    certificate-authority-data: {}\n", b64(&wrong_ca_pem())),
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&admin_cert_pem()),
            b64(&admin_key_pem())
        ),
    )
}

/// Admin credentials with `insecure-skip-tls-verify: true` and no CA.
pub fn insecure_kubeconfig() -> String {
    kubeconfig(
        &server(),
        "    insecure-skip-tls-verify: true\n",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&admin_cert_pem()),
            b64(&admin_key_pem())
        ),
    )
}

/// The read-only ServiceAccount's token (may only read one namespace).
pub fn readonly_token() -> String {
    let text = std::fs::read_to_string(kenv::env().readonly_kubeconfig()).expect("readonly");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("token line")
        .trim()
        .to_string()
}

/// A ServiceAccount that may read namespaces and list nodes (what a probe needs), and its
/// token. Call `cleanup` when done.
pub struct ProberAccount {
    pub token: String,
    name: String,
    namespace: String,
}

impl ProberAccount {
    pub async fn create(namespace: &str) -> ProberAccount {
        let client = kenv::client().await;
        let name = format!("prober-{namespace}");
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some(name.clone());
        sas.create(&PostParams::default(), &sa)
            .await
            .expect("service account");
        let mut role = ClusterRole::default();
        role.metadata.name = Some(name.clone());
        role.rules = Some(vec![
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["namespaces".into()]),
                verbs: vec!["get".into()],
                ..Default::default()
            },
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["nodes".into()]),
                verbs: vec!["list".into()],
                ..Default::default()
            },
        ]);
        Api::<ClusterRole>::all(client.clone())
            .create(&PostParams::default(), &role)
            .await
            .expect("cluster role");
        let mut binding = ClusterRoleBinding::default();
        binding.metadata.name = Some(name.clone());
        binding.role_ref = RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: name.clone(),
        };
        binding.subjects = Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.clone(),
            namespace: Some(namespace.into()),
            ..Default::default()
        }]);
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &binding)
            .await
            .expect("binding");
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: None,
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let issued: TokenRequest = sas
            .create_subresource("token", &name, &PostParams::default(), &request)
            .await
            .expect("token request");
        let token = issued
            .status
            .and_then(|s| s.token)
            .expect("token in TokenRequest status");
        ProberAccount {
            token,
            name,
            namespace: namespace.into(),
        }
    }

    pub async fn cleanup(self) {
        let client = kenv::client().await;
        let dp = DeleteParams::default();
        let _ = Api::<ClusterRoleBinding>::all(client.clone())
            .delete(&self.name, &dp)
            .await;
        let _ = Api::<ClusterRole>::all(client.clone())
            .delete(&self.name, &dp)
            .await;
        let _ = Api::<ServiceAccount>::namespaced(client, &self.namespace)
            .delete(&self.name, &dp)
            .await;
    }
}
