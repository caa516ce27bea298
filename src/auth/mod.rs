//! Who may do what: API tokens, roles, cluster scopes, rate limits and the audit log. All of it
//! is enforced in one tower layer ([`layer::AuthLayer`]) from one table of every RPC
//! ([`permissions`]); handlers only read the [`Principal`] for cluster scoping.

pub mod audit;
pub mod layer;
pub mod permissions;
pub mod rate;
pub mod tokens;

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_lowercase().trim_start_matches("role_") {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn allows(self, permission: permissions::Permission) -> bool {
        use permissions::Permission;
        match permission {
            Permission::Read => true,
            Permission::Operate => self >= Role::Operator,
            Permission::Admin => self == Role::Admin,
            Permission::Agent => false,
        }
    }
}

/// The authenticated caller, put into every request's extensions by the auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    /// `None`: every cluster. `Some(ids)`: only these.
    pub clusters: Option<Vec<String>>,
}

impl Principal {
    /// Whether this caller may know that `cluster_id` exists.
    pub fn can_see(&self, cluster_id: &str) -> bool {
        self.clusters
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == cluster_id))
    }

    /// Flotilla itself, for its own background work (vendor steps, probes): every cluster, full
    /// access, with the stored credential's own identity (no token, so never impersonated).
    pub fn server() -> Principal {
        Principal::unrestricted("flotilla")
    }

    /// Whether this is Flotilla's own work rather than a caller's.
    pub fn is_server(&self) -> bool {
        self.token_id.is_empty()
    }

    /// Full access, for the server's own calls and tests.
    pub fn unrestricted(name: &str) -> Principal {
        Principal {
            token_id: String::new(),
            name: name.to_string(),
            role: Role::Admin,
            clusters: None,
        }
    }
}

/// The caller handlers pass to the service layer: who it is, its role and the clusters it may
/// see. Every RPC but health and reflection passes the auth layer, which puts a [`Principal`]
/// into the extensions; a request without one (a service called in-process) acts as the server.
pub fn cluster_scope<T>(request: &tonic::Request<T>) -> Principal {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::server)
}

#[cfg(test)]
mod tests {
    use super::{permissions::Permission, *};

    #[test]
    fn roles_nest() {
        assert!(Role::Viewer.allows(Permission::Read));
        assert!(!Role::Viewer.allows(Permission::Operate));
        assert!(Role::Operator.allows(Permission::Operate));
        assert!(!Role::Operator.allows(Permission::Admin));
        assert!(Role::Admin.allows(Permission::Admin));
        assert_eq!(Role::parse("ROLE_OPERATOR"), Some(Role::Operator));
    }
}
