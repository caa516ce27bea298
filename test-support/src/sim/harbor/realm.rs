//! The Harbor simulator's token realm, `GET /service/token` (Harbor's `src/core/service/token/`):
//! what a caller may do on each scope it asks for, and a JWT carrying only that, signed by
//! [`TokenSigner::test`] so that a real registry configured with this realm accepts it.
//!
//! As in Harbor, a scope on a project that does not exist grants nothing (not even to an
//! admin), and a token never carries more than was asked.

use super::routes::{Reply, ok};
use super::state::{IssuedToken, Principal, World};
use crate::registry::token::{Access, TokenSigner, token_answer};

/// The `service` (token audience) of Harbor's registry.
pub const SERVICE: &str = "harbor-registry";
/// The issuer Harbor's registry trusts.
pub const ISSUER: &str = "harbor-token-issuer";
/// Lifetime of the tokens the realm issues (Harbor's default `token_expiration`, 30 minutes).
const TOKEN_SECONDS: u64 = 1800;

/// A project role of a user (Harbor's role ids 1–5), and what it may do in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectRole {
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
    LimitedGuest,
}

impl ProjectRole {
    /// The repository actions the role holds (Harbor's RBAC: developers push, maintainers and
    /// project admins also delete, guests pull).
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            ProjectRole::ProjectAdmin | ProjectRole::Maintainer => &["pull", "push", "delete"],
            ProjectRole::Developer => &["pull", "push"],
            ProjectRole::Guest | ProjectRole::LimitedGuest => &["pull"],
        }
    }
}

/// The repository actions `principal` holds in `project`: admins all, members per role, robots
/// what their permissions name (`repository:pull` → `pull`, …), anyone `pull` on a public
/// project. Nothing in a project that does not exist.
fn held(world: &World, principal: &Principal, project: &str) -> Vec<&'static str> {
    let Some(found) = world.project_by_name(project) else {
        return Vec::new();
    };
    let mut actions: Vec<&'static str> = match principal {
        p if p.is_admin() => vec!["pull", "push", "delete", "*"],
        Principal::User { name, .. } => world
            .members
            .get(&(project.to_string(), name.clone()))
            .map(|role| role.actions().to_vec())
            .unwrap_or_default(),
        Principal::Robot { id, .. } => world
            .robots
            .get(id)
            .map(|r| {
                ["pull", "push", "delete"]
                    .into_iter()
                    .filter(|a| r.may(project, "repository", a))
                    .collect()
            })
            .unwrap_or_default(),
        Principal::Anonymous => Vec::new(),
    };
    if found.public && !actions.contains(&"pull") {
        actions.push("pull");
    }
    actions
}

/// What the realm grants `principal` of the `wanted` actions on `repository`.
pub fn grants(
    world: &World,
    principal: &Principal,
    repository: &str,
    wanted: &[&str],
) -> Vec<String> {
    let project = repository.split('/').next().unwrap_or_default();
    let held = held(world, principal, project);
    wanted
        .iter()
        .filter(|a| held.contains(a))
        .map(|a| a.to_string())
        .collect()
}

/// `GET /service/token?service=harbor-registry&scope=repository:<name>:<actions>…` (scopes may
/// also come space-separated). The caller has been authenticated already (bad credentials are
/// a 401 before this).
pub fn token(world: &mut World, principal: &Principal, query: &[(String, String)]) -> Reply {
    let mut access = Vec::new();
    let mut recorded = Vec::new();
    let scopes = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter_map(Access::parse);
    for wanted in scopes {
        let actions: Vec<&str> = wanted.actions.iter().map(String::as_str).collect();
        let granted = match wanted.kind.as_str() {
            "repository" => {
                let granted = grants(world, principal, &wanted.name, &actions);
                recorded.push((wanted.name.clone(), granted.clone()));
                granted
            }
            // The catalog is for system admins only.
            "registry" if principal.is_admin() => wanted.actions.clone(),
            _ => Vec::new(),
        };
        access.push(Access {
            actions: granted,
            ..wanted
        });
    }
    let service = query
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str())
        .unwrap_or(SERVICE);
    let token =
        TokenSigner::test().token(ISSUER, &principal.name(), service, &access, TOKEN_SECONDS);
    world.tokens.push(IssuedToken {
        subject: principal.name(),
        access: recorded,
    });
    ok(token_answer(&token, TOKEN_SECONDS))
}

/// A token for the simulator's own calls to its registry (Harbor core's service token).
pub fn core_token(access: &[Access]) -> String {
    TokenSigner::test().token(ISSUER, "harbor-core", SERVICE, access, 300)
}
