//! The Harbor simulator's routes: one function per swagger operation, over the locked world.
//! Paths arrive decoded once (as Harbor's router sees them); repository names are decoded a
//! second time here, which is why clients must encode them twice.

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

use super::state::{
    Principal, RegistryDelete, RobotPermission, SimRobot, World, now_seconds, rfc3339,
    valid_project_name,
};

/// Harbor's `page_size` maximum.
pub const MAX_PAGE_SIZE: u64 = 100;
const DEFAULT_PAGE_SIZE: u64 = 10;

pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

pub fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: Some(body),
        headers: Vec::new(),
    }
}

fn empty(status: u16) -> Reply {
    Reply {
        status,
        body: None,
        headers: Vec::new(),
    }
}

pub fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    let message: String = message.into();
    Reply {
        status,
        body: Some(json!({"errors": [{"code": code, "message": message}]})),
        headers: Vec::new(),
    }
}

fn not_found(what: impl Into<String>) -> Reply {
    error(404, "NOT_FOUND", what)
}

fn forbidden() -> Reply {
    error(403, "FORBIDDEN", "forbidden")
}

/// A request, as the routes see it.
pub struct Call<'a> {
    pub method: &'a str,
    /// Path segments after `/api/v2.0`, decoded once.
    pub segments: Vec<String>,
    /// The decoded path, for `Link`.
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub by_name: bool,
    pub body: &'a [u8],
    pub principal: &'a Principal,
}

impl Call<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn require_admin(&self) -> Result<(), Reply> {
        match self.principal {
            Principal::Anonymous => Err(error(401, "UNAUTHORIZED", "unauthorized")),
            p if p.is_admin() => Ok(()),
            _ => Err(forbidden()),
        }
    }
}

/// The action name logged for a request: its method and the swagger path template.
pub fn action_of(method: &str, segments: &[String]) -> String {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let template = match s.as_slice() {
        ["projects", _] => "/projects/{p}".to_string(),
        ["projects", _, "repositories"] => "/projects/{p}/repositories".into(),
        ["projects", _, "repositories", _] => "/projects/{p}/repositories/{r}".into(),
        ["projects", _, "repositories", _, "artifacts"] => {
            "/projects/{p}/repositories/{r}/artifacts".into()
        }
        ["projects", _, "repositories", _, "artifacts", _] => {
            "/projects/{p}/repositories/{r}/artifacts/{ref}".into()
        }
        ["projects", _, "repositories", _, "artifacts", _, "tags"] => {
            "/projects/{p}/repositories/{r}/artifacts/{ref}/tags".into()
        }
        ["projects", _, "repositories", _, "artifacts", _, "tags", _] => {
            "/projects/{p}/repositories/{r}/artifacts/{ref}/tags/{tag}".into()
        }
        ["robots", _] => "/robots/{id}".into(),
        other => format!("/{}", other.join("/")),
    };
    format!("{method} {template}")
}

/// Page `items` as Harbor does: `page` from 1, `page_size` default 10 and at most 100,
/// `X-Total-Count`, and `Link` with `prev`/`next` built from the request's own URL.
fn paged(call: &Call, items: Vec<Value>) -> Reply {
    let number = |key: &str, default: u64| match call.param(key) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| {
            error(
                400,
                "BAD_REQUEST",
                format!("{key} in query must be of type int64: {v:?}"),
            )
        }),
    };
    let (page, size) = match (number("page", 1), number("page_size", DEFAULT_PAGE_SIZE)) {
        (Ok(p), Ok(s)) => (p, s),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if page == 0 {
        return error(
            400,
            "BAD_REQUEST",
            "page in query should be greater than or equal to 1",
        );
    }
    if size > MAX_PAGE_SIZE {
        return error(
            400,
            "BAD_REQUEST",
            "page_size in query should be less than or equal to 100",
        );
    }
    let total = items.len() as u64;
    // page_size 0 lists everything (Harbor's "no paging").
    let (start, end) = if size == 0 {
        (0, total)
    } else {
        (((page - 1) * size).min(total), (page * size).min(total))
    };
    let body: Vec<Value> = items[start as usize..end as usize].to_vec();
    let link = |p: u64| {
        let mut query: Vec<String> = call
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "page_size")
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect();
        query.insert(0, format!("page_size={size}"));
        query.insert(0, format!("page={p}"));
        format!("<{}?{}>", call.path, query.join("&"))
    };
    let mut links = Vec::new();
    if size > 0 && page > 1 {
        links.push(format!("{}; rel=\"prev\"", link(page - 1)));
    }
    if size > 0 && page * size < total {
        links.push(format!("{}; rel=\"next\"", link(page + 1)));
    }
    let mut reply = ok(Value::Array(body));
    reply.headers.push(("x-total-count", total.to_string()));
    if !links.is_empty() {
        reply.headers.push(("link", links.join(" , ")));
    }
    reply
}

fn can_read(world: &World, principal: &Principal, project: &str) -> bool {
    let public = world.project_by_name(project).is_some_and(|p| p.public);
    match principal {
        _ if public => true,
        Principal::User { admin, name } => {
            *admin
                || world
                    .members
                    .contains_key(&(project.to_string(), name.clone()))
        }
        Principal::Robot { id, .. } => world.robots.get(id).is_some_and(|r| {
            r.permissions
                .iter()
                .any(|p| p.namespace == project || p.namespace == "*")
        }),
        Principal::Anonymous => false,
    }
}

/// The project a `{project_name_or_id}` segment names: an id when numeric, unless the client
/// said `X-Is-Resource-Name: true`.
fn project_of(world: &World, call: &Call, segment: &str) -> Option<u64> {
    match segment.parse::<u64>() {
        Ok(id) if !call.by_name => world.projects.get(&id).map(|p| p.id),
        _ => world.project_by_name(segment).map(|p| p.id),
    }
}

pub fn route(world: &mut World, call: &Call) -> Reply {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match (call.method, segments.as_slice()) {
        ("GET", ["systeminfo"]) => {
            let mut info = json!({"auth_mode": "db_auth", "registry_url": "", "with_notary": false, "self_registration": false, "has_ca_root": false, "read_only": false, "project_creation_restriction": "everyone"});
            if *call.principal != Principal::Anonymous {
                info["harbor_version"] = "v2.13.1-sim".into();
            }
            ok(info)
        }
        ("GET", ["users", "current"]) => match call.principal {
            Principal::User { name, admin } => {
                let id = world.users.get(name).map(|u| u.id).unwrap_or_default();
                ok(
                    json!({"user_id": id, "username": name, "sysadmin_flag": admin, "email": format!("{name}@example.com")}),
                )
            }
            // Robot accounts are not users (the simulator's answer; Harbor documents none).
            Principal::Robot { .. } => forbidden(),
            Principal::Anonymous => error(401, "UNAUTHORIZED", "unauthorized"),
        },
        ("GET", ["users", "current", "permissions"]) => match call.principal {
            Principal::Anonymous => error(401, "UNAUTHORIZED", "User need to log in first."),
            Principal::Robot { id, .. } => {
                let robot = world.robots.get(id);
                let permissions: Vec<Value> = robot
                    .into_iter()
                    .flat_map(|r| &r.permissions)
                    .flat_map(|p| {
                        p.access.iter().map(move |(resource, action)| {
                            json!({"resource": format!("/project/{}/{resource}", p.namespace), "action": action})
                        })
                    })
                    .collect();
                ok(Value::Array(permissions))
            }
            Principal::User { .. } => ok(json!([])),
        },
        ("GET", ["projects"]) => {
            let items = world
                .projects
                .values()
                .filter(|p| can_read(world, call.principal, &p.name))
                .map(|p| world.render_project(p, call.principal))
                .collect();
            paged(call, items)
        }
        ("POST", ["projects"]) => create_project(world, call),
        ("GET" | "DELETE", ["projects", project]) => {
            let Some(id) = project_of(world, call, project) else {
                return not_found(format!("project {project} not found"));
            };
            let name = world.projects[&id].name.clone();
            if call.method == "GET" {
                if !can_read(world, call.principal, &name) {
                    return forbidden();
                }
                return ok(world.render_project(&world.projects[&id], call.principal));
            }
            if let Err(reply) = call.require_admin() {
                return reply;
            }
            if world.repo_count(id) > 0 {
                return error(
                    412,
                    "PRECONDITION",
                    "the project contains repositories, can not be deleted",
                );
            }
            world.projects.remove(&id);
            // Harbor removes the project's robot accounts with it.
            world.robots.retain(|_, r| {
                !(r.level == "project" && r.permissions.iter().any(|p| p.namespace == name))
            });
            empty(200)
        }
        ("GET", ["repositories"]) => {
            let items = world
                .repositories
                .values()
                .filter(|r| {
                    let project = r.name.split('/').next().unwrap_or_default();
                    can_read(world, call.principal, project)
                })
                .map(|r| world.render_repository(r))
                .collect();
            paged(call, items)
        }
        ("GET", ["projects", project, "repositories"]) => {
            let Some(p) = world.project_by_name(project) else {
                return not_found(format!("project {project} not found"));
            };
            if !can_read(world, call.principal, project) {
                return forbidden();
            }
            let items = world
                .repositories
                .values()
                .filter(|r| r.project_id == p.id)
                .map(|r| world.render_repository(r))
                .collect();
            paged(call, items)
        }
        (_, ["projects", project, "repositories", repository, rest @ ..]) => {
            repository_routes(world, call, project, repository, rest)
        }
        ("GET", ["robots"]) => {
            if let Err(reply) = call.require_admin() {
                return reply;
            }
            // `q=name=<full name>`, exact (the only filter simulated).
            let name = call
                .param("q")
                .and_then(|q| q.strip_prefix("name="))
                .map(str::to_string);
            let items = world
                .robots
                .values()
                .filter(|r| name.as_ref().is_none_or(|n| &r.name == n))
                .map(SimRobot::render)
                .collect();
            paged(call, items)
        }
        ("POST", ["robots"]) => create_robot(world, call),
        ("GET" | "DELETE", ["robots", id]) => {
            if let Err(reply) = call.require_admin() {
                return reply;
            }
            let Some(id) = id
                .parse::<u64>()
                .ok()
                .filter(|id| world.robots.contains_key(id))
            else {
                return not_found(format!("robot {id} not found"));
            };
            if call.method == "GET" {
                return ok(world.robots[&id].render());
            }
            world.robots.remove(&id);
            empty(200)
        }
        _ => not_found(format!(
            "{} {} is not an API of this simulator",
            call.method, call.path
        )),
    }
}

fn create_project(world: &mut World, call: &Call) -> Reply {
    if let Err(reply) = call.require_admin() {
        return reply;
    }
    let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
        return error(400, "BAD_REQUEST", "the body is not a ProjectReq");
    };
    let name = body["project_name"].as_str().unwrap_or_default();
    if !valid_project_name(name) {
        return error(
            400,
            "BAD_REQUEST",
            format!("project name {name:?} is not valid"),
        );
    }
    if world.project_by_name(name).is_some() {
        return error(
            409,
            "CONFLICT",
            format!("The project named {name} already exists"),
        );
    }
    let public = match (&body["metadata"]["public"], &body["public"]) {
        (Value::String(s), _) if s == "true" || s == "false" => s == "true",
        (Value::String(s), _) => {
            return error(
                400,
                "BAD_REQUEST",
                format!("metadata.public should only be 'true' or 'false', but got: '{s}'"),
            );
        }
        (_, Value::Bool(b)) => *b,
        _ => false,
    };
    let id = world.create_project(name, public);
    Reply {
        status: 201,
        body: None,
        headers: vec![("location", format!("/api/v2.0/projects/{id}"))],
    }
}

fn repository_routes(
    world: &mut World,
    call: &Call,
    project: &str,
    encoded: &str,
    rest: &[&str],
) -> Reply {
    // The second decode: `a%2Fb` (sent as `a%252Fb`) becomes `a/b`.
    let repository = format!(
        "{project}/{}",
        percent_decode_str(encoded).decode_utf8_lossy()
    );
    if world.project_by_name(project).is_none() {
        return not_found(format!("project {project} not found"));
    }
    if !can_read(world, call.principal, project) {
        return forbidden();
    }
    let Some(repo_id) = world.repository_by_name(&repository).map(|r| r.id) else {
        return not_found(format!("repository {repository} not found"));
    };
    let writes = call.method != "GET";
    if writes && let Err(reply) = call.require_admin() {
        return reply;
    }
    match (call.method, rest) {
        ("GET", []) => ok(world.render_repository(&world.repositories[&repo_id])),
        ("DELETE", []) => {
            let artifacts: Vec<u64> = world.artifacts_of(repo_id).iter().map(|a| a.id).collect();
            for id in artifacts {
                world.queue_artifact_delete(id);
            }
            world.repositories.remove(&repo_id);
            world.artifacts.retain(|_, a| a.repository_id != repo_id);
            empty(200)
        }
        ("GET", ["artifacts"]) => {
            let items = world
                .artifacts_of(repo_id)
                .into_iter()
                .map(|a| world.render_artifact(a))
                .collect();
            paged(call, items)
        }
        (_, ["artifacts", reference, tail @ ..]) => {
            let Some(artifact_id) = world.find_artifact(repo_id, reference) else {
                return not_found(format!("artifact {repository}:{reference} not found"));
            };
            match (call.method, tail) {
                ("GET", []) => ok(world.render_artifact(&world.artifacts[&artifact_id])),
                ("DELETE", []) => {
                    world.queue_artifact_delete(artifact_id);
                    world.artifacts.remove(&artifact_id);
                    empty(200)
                }
                ("GET", ["tags"]) => {
                    let tags: Vec<Value> = world.artifacts[&artifact_id]
                        .spec
                        .tags
                        .iter()
                        .map(|t| json!({"name": t, "artifact_id": artifact_id}))
                        .collect();
                    paged(call, tags)
                }
                ("DELETE", ["tags", tag]) => {
                    let Some(artifact) = world.artifacts.get_mut(&artifact_id) else {
                        return not_found("artifact gone");
                    };
                    let before = artifact.spec.tags.len();
                    artifact.spec.tags.retain(|t| t != tag);
                    if artifact.spec.tags.len() == before {
                        return not_found(format!("tag {tag} not found"));
                    }
                    if world.backed {
                        world.registry_deletes.push(RegistryDelete::Tag {
                            repository,
                            tag: tag.to_string(),
                        });
                    }
                    empty(200)
                }
                _ => error(405, "METHOD_NOT_ALLOWED", "method not allowed"),
            }
        }
        _ => error(405, "METHOD_NOT_ALLOWED", "method not allowed"),
    }
}

fn create_robot(world: &mut World, call: &Call) -> Reply {
    if let Err(reply) = call.require_admin() {
        return reply;
    }
    let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
        return error(400, "BAD_REQUEST", "the body is not a RobotCreate");
    };
    let name = body["name"].as_str().unwrap_or_default();
    let level = body["level"].as_str().unwrap_or_default();
    let duration = body["duration"].as_i64().unwrap_or(0);
    if !valid_project_name(name) {
        return error(
            400,
            "BAD_REQUEST",
            format!("robot name {name:?} is not valid"),
        );
    }
    if duration == 0 || duration < -1 {
        return error(
            400,
            "BAD_REQUEST",
            "duration must be -1 or a number of days",
        );
    }
    let mut permissions = Vec::new();
    for permission in body["permissions"].as_array().into_iter().flatten() {
        let namespace = permission["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if permission["kind"] != "project" {
            return error(400, "BAD_REQUEST", "only project permissions are simulated");
        }
        if namespace != "*" && world.project_by_name(&namespace).is_none() {
            return error(400, "BAD_REQUEST", format!("project {namespace} not found"));
        }
        let access = permission["access"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["resource"].as_str().unwrap_or_default().to_string(),
                    a["action"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        permissions.push(RobotPermission { namespace, access });
    }
    let full_name = match (level, permissions.as_slice()) {
        ("system", [_, ..]) => format!("robot${name}"),
        ("project", [only]) if only.namespace != "*" => {
            format!("robot${}+{name}", only.namespace)
        }
        ("project", _) => {
            return error(
                400,
                "BAD_REQUEST",
                "a project level robot has exactly one project permission",
            );
        }
        _ => {
            return error(
                400,
                "BAD_REQUEST",
                format!("bad level {level:?} or no permissions"),
            );
        }
    };
    if world.robots.values().any(|r| r.name == full_name) {
        return error(
            409,
            "CONFLICT",
            format!("robot account {full_name} already exists"),
        );
    }
    let id = world.id();
    let created = world.stamp();
    let expires_at = if duration == -1 {
        -1
    } else {
        (now_seconds() + duration as u64 * 86_400) as i64
    };
    let secret: String = (0..32)
        .map(|_| {
            let chars = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
            chars[fastrand::usize(..chars.len())] as char
        })
        .collect();
    world.robots.insert(
        id,
        SimRobot {
            id,
            name: full_name.clone(),
            secret: secret.clone(),
            level: level.to_string(),
            duration_days: duration,
            expires_at,
            disabled: body["disable"].as_bool().unwrap_or(false),
            permissions,
            created,
        },
    );
    Reply {
        status: 201,
        body: Some(json!({
            "id": id, "name": full_name, "secret": secret,
            "creation_time": rfc3339(created), "expires_at": expires_at,
        })),
        headers: vec![("location", format!("/api/v2.0/robots/{id}"))],
    }
}
