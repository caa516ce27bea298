//! What each role may see and change in a cluster, decided in one place from the caller's role
//! (`scope.role`) and the cluster's access mode. Pure functions; the use cases call them.
//!
//! Flotilla holds admin credentials for every cluster, so in built-in mode these rules are all
//! that stands between a read-only token and the cluster:
//! - viewers never see Secret `data`/`stringData` or the `last-applied-configuration`
//!   annotation (which repeats a whole applied object, Secrets included) — in either mode;
//! - operators may change only namespaced kinds outside [`DENIED_KINDS`] (built-in mode only:
//!   in impersonation mode the cluster's own RBAC decides);
//! - admins may do anything the stored credential may.

use serde_json::Value;

use crate::service::{
    Error, Result, access::kube::KubeAccess, access::scope::Scope,
    workloads::resources::object::Resource,
};
use crate::{auth::Role, kube::summary::WorkloadSummary};

/// The annotation `kubectl apply` writes: the whole applied object again, data included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The Secret type that holds a ServiceAccount's token.
pub const SERVICE_ACCOUNT_TOKEN_SECRET: &str = "kubernetes.io/service-account-token";

/// Kinds operators may not apply or delete in built-in mode, by API group (any version), and
/// why: each grants or reveals more than workload changes need.
pub const DENIED_KINDS: &[(&str, &str, &str)] = &[
    ("rbac.authorization.k8s.io", "Role", "grants permissions"),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "grants permissions",
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "grants permissions",
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "grants permissions",
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "changes the cluster's API",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "intercepts every request",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "intercepts every request",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "changes admission",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "changes admission",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicy",
        "changes admission",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
        "changes admission",
    ),
    ("", "Namespace", "is cluster-wide"),
    ("", "PersistentVolume", "is cluster-wide storage"),
    ("", "Node", "is cluster infrastructure"),
    (
        "authentication.k8s.io",
        "TokenRequest",
        "issues ServiceAccount tokens",
    ),
];

/// One object a caller wants to change, as the cluster's discovery describes its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    pub kind: &'a str,
    pub namespaced: bool,
    /// A Secret's `type`, when the object is a Secret.
    pub secret_type: Option<&'a str>,
}

/// Whether Flotilla must check changes itself: callers below admin on built-in clusters.
pub fn checks_changes(scope: &Scope, mode: KubeAccess) -> bool {
    scope.role < Role::Admin && mode == KubeAccess::BuiltIn
}

/// Why `role` may not make `change` in built-in mode, or `None` when it may.
pub fn refusal(role: Role, change: &Change<'_>) -> Option<String> {
    let kind = change.kind;
    match role {
        Role::Admin => None,
        Role::Viewer => Some(format!("viewers may not change objects (kind {kind})")),
        Role::Operator => {
            if let Some((_, _, why)) = DENIED_KINDS
                .iter()
                .find(|(group, denied, _)| *group == change.group && *denied == kind)
            {
                return Some(format!(
                    "operators may not change kind {kind} ({why}); ask an admin"
                ));
            }
            if group_kind_is_secret(change)
                && change.secret_type == Some(SERVICE_ACCOUNT_TOKEN_SECRET)
            {
                return Some(format!(
                    "operators may not change kind {kind} of type \
                     {SERVICE_ACCOUNT_TOKEN_SECRET} (it holds a ServiceAccount token); ask an admin"
                ));
            }
            if !change.namespaced {
                return Some(format!(
                    "operators may change only namespaced kinds; {kind} is cluster-scoped; ask an \
                     admin"
                ));
            }
            None
        }
    }
}

fn group_kind_is_secret(change: &Change<'_>) -> bool {
    change.group.is_empty() && change.kind == "Secret"
}

/// PERMISSION_DENIED for every refused change, named (`what` says where each one is).
pub fn refuse(refusals: Vec<String>) -> Result<()> {
    if refusals.is_empty() {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "nothing was changed: {}",
        refusals.join("; ")
    )))
}

/// Removes from `resource` what `scope` may not see.
pub fn redact_resource(scope: &Scope, resource: &mut Resource) {
    if scope.role != Role::Viewer {
        return;
    }
    resource.annotations.remove(LAST_APPLIED);
    let is_secret = resource.api_version == "v1" && resource.kind == "Secret";
    let Ok(mut object) = serde_json::from_str::<Value>(&resource.json) else {
        resource.json = "{}".into();
        return;
    };
    redact_object(&mut object, is_secret);
    resource.json = serde_json::to_string(&object).unwrap_or_else(|_| "{}".into());
}

/// Removes the last-applied annotation (and a Secret's data) from one object as JSON.
fn redact_object(object: &mut Value, is_secret: bool) {
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
    }
    if is_secret && let Some(fields) = object.as_object_mut() {
        fields.remove("data");
        fields.remove("stringData");
    }
}

/// Removes from a workload summary what `scope` may not see.
pub fn redact_workload(scope: &Scope, workload: &mut WorkloadSummary) {
    if scope.role == Role::Viewer {
        workload.annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::auth::Principal;

    fn caller(role: Role) -> Principal {
        Principal {
            token_id: "tok".into(),
            name: "someone".into(),
            role,
            clusters: None,
        }
    }

    fn change<'a>(group: &'a str, kind: &'a str, namespaced: bool) -> Change<'a> {
        Change {
            group,
            kind,
            namespaced,
            secret_type: None,
        }
    }

    /// The expected matrix, written out by hand (not derived from DENIED_KINDS).
    #[test]
    fn operators_change_only_namespaced_kinds_outside_the_deny_list() {
        let allowed = [
            change("apps", "Deployment", true),
            change("", "ConfigMap", true),
            change("", "Service", true),
            change("batch", "CronJob", true),
            change("", "Secret", true),
            change("example.com", "Widget", true),
        ];
        for c in allowed {
            assert_eq!(refusal(Role::Operator, &c), None, "{c:?}");
            assert_eq!(refusal(Role::Admin, &c), None, "{c:?}");
            assert!(refusal(Role::Viewer, &c).is_some(), "{c:?}");
        }
        let denied = [
            change("rbac.authorization.k8s.io", "Role", true),
            change("rbac.authorization.k8s.io", "RoleBinding", true),
            change("rbac.authorization.k8s.io", "ClusterRole", false),
            change("rbac.authorization.k8s.io", "ClusterRoleBinding", false),
            change("apiextensions.k8s.io", "CustomResourceDefinition", false),
            change(
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
                false,
            ),
            change(
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                false,
            ),
            change(
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicy",
                false,
            ),
            change(
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding",
                false,
            ),
            change("", "Namespace", false),
            change("", "PersistentVolume", false),
            change("", "Node", false),
            change("authentication.k8s.io", "TokenRequest", true),
            change("storage.k8s.io", "StorageClass", false),
            change("example.com", "ClusterWidget", false),
        ];
        for c in denied {
            let why = refusal(Role::Operator, &c).unwrap_or_else(|| panic!("{c:?} allowed"));
            assert!(why.contains(c.kind), "{why}");
            assert_eq!(refusal(Role::Admin, &c), None, "{c:?}");
        }
        let token_secret = Change {
            secret_type: Some("kubernetes.io/service-account-token"),
            ..change("", "Secret", true)
        };
        let why = refusal(Role::Operator, &token_secret).expect("token secret refused");
        assert!(why.contains("Secret") && why.contains("service-account-token"));
        let opaque = Change {
            secret_type: Some("Opaque"),
            ..change("", "Secret", true)
        };
        assert_eq!(refusal(Role::Operator, &opaque), None);
    }

    #[test]
    fn only_callers_below_admin_on_built_in_clusters_are_checked() {
        assert!(checks_changes(&caller(Role::Operator), KubeAccess::BuiltIn));
        assert!(checks_changes(&caller(Role::Viewer), KubeAccess::BuiltIn));
        assert!(!checks_changes(&caller(Role::Admin), KubeAccess::BuiltIn));
        assert!(!checks_changes(&Principal::server(), KubeAccess::BuiltIn));
        assert!(!checks_changes(
            &caller(Role::Operator),
            KubeAccess::Impersonation
        ));
        let err = refuse(vec!["a".into(), "b".into()]).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied(m) if m.contains("a; b")));
        assert!(refuse(Vec::new()).is_ok());
    }

    fn secret() -> Resource {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s", "namespace": "n", "annotations": {
                LAST_APPLIED: "{\"data\":{\"password\":\"aHVudGVyMg==\"}}", "keep": "me"}},
            "data": {"password": "aHVudGVyMg=="},
            "stringData": {"password": "hunter2"}
        });
        Resource {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: "n".into(),
            name: "s".into(),
            uid: String::new(),
            labels: BTreeMap::new(),
            annotations: [
                (LAST_APPLIED.to_string(), "{...}".to_string()),
                ("keep".to_string(), "me".to_string()),
            ]
            .into(),
            resource_version: String::new(),
            create_millis: None,
            json: json.to_string(),
        }
    }

    #[test]
    fn viewers_see_no_secret_data_and_no_last_applied_annotation() {
        let mut seen = secret();
        redact_resource(&caller(Role::Viewer), &mut seen);
        assert!(!seen.json.contains("aHVudGVyMg") && !seen.json.contains("hunter2"));
        assert!(!seen.json.contains("last-applied"), "{}", seen.json);
        let json: Value = serde_json::from_str(&seen.json).unwrap();
        assert_eq!(json["metadata"]["annotations"]["keep"], "me");
        assert_eq!(json["type"], "Opaque");
        assert!(!seen.annotations.contains_key(LAST_APPLIED));
        assert_eq!(seen.annotations.get("keep").map(String::as_str), Some("me"));

        for role in [Role::Operator, Role::Admin] {
            let mut seen = secret();
            redact_resource(&caller(role), &mut seen);
            assert_eq!(seen, secret(), "{role:?}");
        }

        let mut config_map = secret();
        config_map.kind = "ConfigMap".into();
        redact_resource(&caller(Role::Viewer), &mut config_map);
        assert!(
            config_map.json.contains("aHVudGVyMg"),
            "a ConfigMap's data stays"
        );
        assert!(!config_map.json.contains("last-applied"));
    }
}
