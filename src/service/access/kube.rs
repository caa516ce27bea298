//! How Flotilla acts on a cluster for a caller: with its stored credential, limited by the
//! built-in role rules of [`crate::service::access::policy`], or impersonating the caller so the
//! cluster's own RBAC decides (opt-in per cluster). Checking that a cluster can be impersonated
//! against is connecting work: `ClusterConnector::prepare_impersonation`.

use crate::service::access::scope::Scope;
use crate::{kube::impersonation::Impersonation, store::ClusterRow};

/// A cluster's access mode, stored in `clusters.kube_access`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KubeAccess {
    /// Every call uses the stored credential; Flotilla's role rules decide.
    #[default]
    BuiltIn,
    /// Calls for a caller impersonate `flotilla:<token name>` in group `flotilla:<role>`.
    Impersonation,
}

impl KubeAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            KubeAccess::BuiltIn => "builtin",
            KubeAccess::Impersonation => "impersonation",
        }
    }

    pub fn parse(text: &str) -> Option<KubeAccess> {
        match text {
            "builtin" => Some(KubeAccess::BuiltIn),
            "impersonation" => Some(KubeAccess::Impersonation),
            _ => None,
        }
    }

    /// The mode of a stored cluster (an unknown value is treated as built-in: its rules apply).
    pub fn of(row: &ClusterRow) -> KubeAccess {
        KubeAccess::parse(&row.kube_access).unwrap_or_default()
    }
}

/// Whom a call on `row` for `scope` impersonates: nobody for built-in clusters and for
/// Flotilla's own work. The user is `flotilla:<token name>`; a name an HTTP header cannot carry
/// as is (spaces, non-ASCII) is replaced by `token-<token id>`, which still names one token.
pub fn impersonation_of(row: &ClusterRow, scope: &Scope) -> Option<Impersonation> {
    if KubeAccess::of(row) != KubeAccess::Impersonation || scope.is_server() {
        return None;
    }
    let header_safe = scope.name.bytes().all(|b| (0x21..0x7f).contains(&b));
    let user = if header_safe {
        scope.name.clone()
    } else {
        format!("token-{}", scope.token_id)
    };
    Some(Impersonation::of(&user, scope.role.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Role};

    fn row(mode: &str) -> ClusterRow {
        ClusterRow {
            id: "dev".into(),
            display_name: "dev".into(),
            labels: "{}".into(),
            provider: "imported".into(),
            region: String::new(),
            vendor_cluster_id: String::new(),
            state: "RUNNING".into(),
            endpoint: String::new(),
            kube_system_uid: None,
            credential_id: None,
            access_secret_id: None,
            spec: None,
            warnings: "[]".into(),
            last_operation_id: None,
            version: 1,
            create_time: 0,
            update_time: 0,
            kube_access: mode.into(),
        }
    }

    #[test]
    fn only_callers_on_impersonation_clusters_are_impersonated() {
        let caller = Principal {
            token_id: "tok-1".into(),
            name: "alice".into(),
            role: Role::Operator,
            clusters: None,
        };
        assert_eq!(
            impersonation_of(&row("impersonation"), &caller),
            Some(Impersonation {
                user: "flotilla:alice".into(),
                group: "flotilla:operator".into()
            })
        );
        assert_eq!(impersonation_of(&row("builtin"), &caller), None);
        let spaced = Principal {
            name: "Zoë's bot".into(),
            ..caller.clone()
        };
        assert_eq!(
            impersonation_of(&row("impersonation"), &spaced).map(|who| who.user),
            Some("flotilla:token-tok-1".into())
        );
        assert_eq!(
            impersonation_of(&row("impersonation"), &Principal::server()),
            None
        );
        assert_eq!(KubeAccess::of(&row("garbage")), KubeAccess::BuiltIn);
    }
}
