//! Acting as a caller on a cluster: the `Impersonate-User`/`Impersonate-Group` identity Flotilla
//! sends in impersonation mode, the checks that a credential may impersonate and that the
//! groups are bound, and the ClusterRoleBindings that bind them.
//!
//! In impersonation mode the cluster's own RBAC decides what a caller may do, and its audit
//! log names the caller (`flotilla:<token name>`) instead of Flotilla's credential.

use ::kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec},
    rbac::v1::{ClusterRoleBinding, RoleRef, Subject},
};

use super::{ClusterError, error::classify};

/// Prefix of every user and group Flotilla impersonates.
pub const PREFIX: &str = "flotilla:";

/// Each Flotilla role's group and the built-in Kubernetes ClusterRole it is bound to.
pub const ROLE_BINDINGS: [(&str, &str); 3] = [
    ("flotilla:viewer", "view"),
    ("flotilla:operator", "edit"),
    ("flotilla:admin", "admin"),
];

/// Who a request is made as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Impersonation {
    /// `flotilla:<token name>`.
    pub user: String,
    /// `flotilla:<role>`.
    pub group: String,
}

impl Impersonation {
    /// The identity of the token named `token_name` with `role` ("viewer", "operator", "admin").
    pub fn of(token_name: &str, role: &str) -> Impersonation {
        Impersonation {
            user: format!("{PREFIX}{token_name}"),
            group: format!("{PREFIX}{role}"),
        }
    }
}

/// One access question: may the subject `verb` `resource` (of `group`)?
struct Question {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
}

/// What each group must be able to do, a question each: one its ClusterRole grants and the
/// weaker ones do not, so a missing or mis-bound group is noticed.
const GROUP_CHECKS: [(&str, Question); 3] = [
    (
        "flotilla:viewer",
        Question {
            verb: "list",
            group: "",
            resource: "pods",
        },
    ),
    (
        "flotilla:operator",
        Question {
            verb: "create",
            group: "apps",
            resource: "deployments",
        },
    ),
    (
        "flotilla:admin",
        Question {
            verb: "create",
            group: "rbac.authorization.k8s.io",
            resource: "rolebindings",
        },
    ),
];

/// Why impersonation cannot be used on a cluster: every missing permission or binding, named.
pub async fn missing_for_impersonation(
    own: &Client,
    as_group: impl Fn(&Impersonation) -> Result<Client, ClusterError>,
) -> Result<Vec<String>, ClusterError> {
    let mut missing = Vec::new();
    for resource in ["users", "groups"] {
        let question = Question {
            verb: "impersonate",
            group: "",
            resource,
        };
        if !allowed(own, &question).await? {
            missing.push(format!(
                "the stored credential may not impersonate {resource} (RBAC verb \"impersonate\" \
                 on core resource \"{resource}\")"
            ));
        }
    }
    if !missing.is_empty() {
        // Impersonated questions would only be refused for the same reason.
        return Ok(missing);
    }
    for (group, question) in &GROUP_CHECKS {
        let client = as_group(&Impersonation {
            user: format!("{PREFIX}access-check"),
            group: (*group).to_string(),
        })?;
        if !allowed(&client, question).await? {
            let role = ROLE_BINDINGS
                .iter()
                .find(|(g, _)| g == group)
                .map_or("", |(_, r)| *r);
            missing.push(format!(
                "group {group:?} may not {} {} (bind it to the ClusterRole {role:?}: import \
                 with install_rbac, or apply `flotilla rbac-manifest`)",
                question.verb, question.resource
            ));
        }
    }
    Ok(missing)
}

async fn allowed(client: &Client, question: &Question) -> Result<bool, ClusterError> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(question.verb.into()),
                group: Some(question.group.into()),
                resource: Some(question.resource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(classify)?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The ClusterRoleBindings of the Flotilla groups, as objects.
pub fn role_bindings() -> Vec<ClusterRoleBinding> {
    ROLE_BINDINGS
        .iter()
        .map(|(group, role)| {
            let mut binding = ClusterRoleBinding::default();
            binding.metadata.name = Some((*group).to_string());
            binding.metadata.labels = Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "flotilla".to_string(),
                )]
                .into(),
            );
            binding.role_ref = RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: (*role).to_string(),
            };
            binding.subjects = Some(vec![Subject {
                kind: "Group".into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                name: (*group).to_string(),
                namespace: None,
            }]);
            binding
        })
        .collect()
}

/// The bindings as a multi-document YAML stream, for people who apply them themselves.
pub fn role_bindings_yaml() -> String {
    role_bindings()
        .iter()
        .map(|binding| {
            let mut value = serde_json::to_value(binding).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("apiVersion".into(), "rbac.authorization.k8s.io/v1".into());
                object.insert("kind".into(), "ClusterRoleBinding".into());
            }
            serde_saphyr::to_string(&value).unwrap_or_default()
        })
        .map(|doc| format!("---\n{doc}"))
        .collect()
}

/// Server-side applies the bindings with `client` (Flotilla's own credential).
pub async fn install_role_bindings(client: &Client) -> Result<(), ClusterError> {
    let api = Api::<ClusterRoleBinding>::all(client.clone());
    let params = PatchParams::apply(super::user_fields::FIELD_MANAGER).force();
    for mut binding in role_bindings() {
        let name = binding.metadata.name.clone().unwrap_or_default();
        binding.metadata.managed_fields = None;
        let mut value = serde_json::to_value(&binding)
            .map_err(|err| ClusterError::Other(format!("encoding binding {name}: {err}")))?;
        if let Some(object) = value.as_object_mut() {
            object.insert("apiVersion".into(), "rbac.authorization.k8s.io/v1".into());
            object.insert("kind".into(), "ClusterRoleBinding".into());
        }
        api.patch(&name, &params, &Patch::Apply(&value))
            .await
            .map_err(classify)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names_the_token_and_role() {
        let who = Impersonation::of("ci-bot", "viewer");
        assert_eq!(who.user, "flotilla:ci-bot");
        assert_eq!(who.group, "flotilla:viewer");
    }

    #[test]
    fn yaml_binds_each_group_to_its_cluster_role() {
        let yaml = role_bindings_yaml();
        let docs: Vec<serde_json::Value> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        let bound: Vec<(String, String, String)> = docs
            .iter()
            .map(|d| {
                assert_eq!(d["apiVersion"], "rbac.authorization.k8s.io/v1");
                assert_eq!(d["kind"], "ClusterRoleBinding");
                assert_eq!(d["subjects"][0]["kind"], "Group");
                assert_eq!(d["roleRef"]["kind"], "ClusterRole");
                let text = |v: &serde_json::Value| v.as_str().unwrap().to_string();
                (
                    text(&d["metadata"]["name"]),
                    text(&d["subjects"][0]["name"]),
                    text(&d["roleRef"]["name"]),
                )
            })
            .collect();
        let expected = [
            ("flotilla:viewer", "view"),
            ("flotilla:operator", "edit"),
            ("flotilla:admin", "admin"),
        ]
        .map(|(g, r)| (g.to_string(), g.to_string(), r.to_string()));
        assert_eq!(bound, expected);
    }
}
