//! The manifest that runs `flotilla agent` in a cluster imported by agent: Namespace,
//! ServiceAccount, ClusterRoleBinding, the Secret holding the registration token, and the
//! Deployment. Pure: the same inputs give the same YAML, unit-tested below.

use serde_json::{Value, json};

/// What the manifest is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentManifest<'a> {
    pub cluster_id: &'a str,
    pub server_url: &'a str,
    pub namespace: &'a str,
    pub cluster_role: &'a str,
    pub image: &'a str,
    /// The one-time registration token; the agent replaces it with its credential.
    pub registration_token: &'a str,
}

/// Name of the ServiceAccount, binding, Secret and Deployment.
pub const AGENT_NAME: &str = "flotilla-agent";
/// The path the manifest is also served under, followed by the registration token and `.yaml`
/// (`kubectl apply -f <server>/agent/v1/manifests/<token>.yaml`). The token makes the URL
/// unguessable; once it is used or expired the URL answers 404.
pub const MANIFEST_PATH_PREFIX: &str = "/agent/v1/manifests/";

/// The manifest URL of a registration token on the server at `server_url`.
pub fn manifest_url(server_url: &str, registration_token: &str) -> String {
    format!(
        "{}{MANIFEST_PATH_PREFIX}{registration_token}.yaml",
        server_url.trim_end_matches('/')
    )
}

/// Where the Secret is mounted in the agent's pod.
pub const TOKEN_DIR: &str = "/var/run/flotilla-agent";

impl AgentManifest<'_> {
    /// The objects, in the order they must be applied.
    pub fn objects(&self) -> Vec<Value> {
        let labels =
            json!({"app.kubernetes.io/name": AGENT_NAME, "flotilla.io/cluster": self.cluster_id});
        vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": AGENT_NAME, "namespace": self.namespace, "labels": labels}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": format!("{AGENT_NAME}-{}", self.namespace), "labels": labels},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": self.cluster_role},
                   "subjects": [{"kind": "ServiceAccount", "name": AGENT_NAME,
                                 "namespace": self.namespace}]}),
            // The agent may rewrite only its own Secret (to keep its credential there).
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": AGENT_NAME, "namespace": self.namespace, "labels": labels},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": [AGENT_NAME], "verbs": ["get", "update", "patch"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": AGENT_NAME, "namespace": self.namespace, "labels": labels},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": AGENT_NAME},
                   "subjects": [{"kind": "ServiceAccount", "name": AGENT_NAME,
                                 "namespace": self.namespace}]}),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": AGENT_NAME, "namespace": self.namespace, "labels": labels},
                   "stringData": {"registration-token": self.registration_token}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": AGENT_NAME, "namespace": self.namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                // Never two agents at once: the newest would replace the other's tunnel.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": AGENT_NAME,
                        "containers": [{
                            "name": "agent",
                            "image": self.image,
                            "args": ["agent", "--server", self.server_url,
                                     "--token-file", format!("{TOKEN_DIR}/registration-token"),
                                     "--namespace", self.namespace],
                            "volumeMounts": [{"name": "token", "mountPath": TOKEN_DIR,
                                              "readOnly": true}],
                            "securityContext": {"runAsNonRoot": true,
                                                "allowPrivilegeEscalation": false,
                                                "readOnlyRootFilesystem": true},
                        }],
                        "volumes": [{"name": "token",
                                     "secret": {"secretName": AGENT_NAME}}],
                    },
                },
            }}),
        ]
    }

    /// The objects as one YAML stream (`kubectl apply -f -`).
    pub fn to_yaml(&self) -> String {
        self.objects()
            .iter()
            .map(|object| serde_saphyr::to_string(object).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> AgentManifest<'static> {
        AgentManifest {
            cluster_id: "edge-1",
            server_url: "https://flotilla.example:50051",
            namespace: "flotilla-agent",
            cluster_role: "view",
            image: "example/flotilla:1",
            registration_token: "flt_reg_secret",
        }
    }

    #[test]
    fn the_yaml_parses_back_into_the_objects() {
        let m = manifest();
        let yaml = m.to_yaml();
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("parses");
        assert_eq!(parsed, m.objects());
        let kinds: Vec<&str> = parsed.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Secret",
                "Deployment"
            ]
        );
    }

    #[test]
    fn binds_the_named_role_and_runs_the_agent_against_the_server() {
        let objects = manifest().objects();
        assert_eq!(objects[2]["roleRef"]["name"], "view");
        assert_eq!(
            objects[5]["stringData"]["registration-token"],
            "flt_reg_secret"
        );
        let args = &objects[6]["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[0], "agent");
        assert_eq!(args[2], "https://flotilla.example:50051");
        assert_eq!(args[4], "/var/run/flotilla-agent/registration-token");
    }
}
