//! Harbor v2.0 simulator: the management API (`/api/v2.0`) the Harbor adapter uses, following
//! Harbor's swagger and vendor-apis.md §5, plus the token realm (`/service/token`).
//!
//! - Auth: HTTP basic, checked exactly, for users (an admin is created at start) and robot
//!   accounts (`robot$name`, `robot$project+name`; expired or disabled robots are refused).
//!   As in Harbor's security middleware, credentials that do not hold make the request
//!   anonymous (not a 401 by themselves): anonymous callers see public projects and get 401
//!   `UNAUTHORIZED` from `/users/current`, `/users/current/permissions` and every write; the
//!   token realm answers bad credentials with 401. Admins may do everything; other users and
//!   robots read public projects, robots also the projects their permissions name; writes
//!   need an admin (403 `FORBIDDEN`).
//! - Projects (create with `metadata.public`, 409 on a duplicate, 412 `PRECONDITION` when
//!   deleting one that holds repositories; numeric path segments are ids unless
//!   `X-Is-Resource-Name: true`), repositories (per project and all), artifacts (newest push
//!   first) with tags, references with platforms and `extra_attrs` for charts, robots.
//! - Paging exactly as Harbor: `page` from 1, `page_size` default 10 and at most 100 (more is a
//!   400), `X-Total-Count`, `Link` with `rel="prev"`/`rel="next"` joined by `" , "`.
//! - Paths are decoded once before routing, as Harbor's router does, and repository names a
//!   second time: a repository `a/b` must arrive as `a%252Fb` (single encoding does not route).
//! - Every request is kept raw (method, path and query exactly as sent, user, status) in
//!   [`HarborSim::requests`]; [`SimControl`] counts actions like `GET /projects` and injects
//!   throttling (429 `TOO_MANY_REQUEST` + `Retry-After`) and server errors (500 `UNKNOWN` or a
//!   proxy's bare 503), before authentication, as a front proxy would.
//! - The realm issues opaque tokens and records what each grants ([`HarborSim::tokens`]), so a
//!   test can see that a robot gets `pull` and nothing else. It does not front a registry yet:
//!   artifacts are in-memory records, not bytes.

mod backend;
mod realm;
mod routes;
mod state;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use percent_encoding::percent_decode_str;

use super::{Injected, SimControl, serve};
use crate::registry::{RegistryAuth, RegistryKind, TestRegistry};
use backend::Backend;
pub use realm::{ISSUER as REGISTRY_ISSUER, ProjectRole, SERVICE as REGISTRY_SERVICE};
pub use routes::MAX_PAGE_SIZE;
pub use state::{IssuedToken, RobotPermission, SimArtifact};
use state::{Principal, SimUser, World, now_seconds};

/// The admin account every simulator starts with.
pub const ADMIN: &str = "admin";

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    /// Path and query exactly as sent, still percent-encoded.
    pub raw: String,
    /// What [`SimControl::count`] counts: `GET /projects/{p}/repositories`, …
    pub action: String,
    /// The `page_size` asked for, when there was one.
    pub page_size: Option<u64>,
    /// The basic-auth username sent (empty when none).
    pub user: String,
    pub status: u16,
}

/// A robot account as the simulator holds it (the secret left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotView {
    pub id: u64,
    pub name: String,
    pub level: String,
    pub duration_days: i64,
    pub expires_at: i64,
    pub permissions: Vec<RobotPermission>,
}

pub struct HarborSim {
    pub control: SimControl,
    inner: Arc<Inner>,
    endpoint: String,
}

struct Inner {
    control: SimControl,
    world: Mutex<World>,
    requests: Mutex<Vec<RawRequest>>,
    /// The registry behind `/v2` in backed mode.
    backend: OnceLock<Arc<Backend>>,
}

impl Inner {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn random_secret() -> String {
    (0..24)
        .map(|_| {
            let chars = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
            chars[fastrand::usize(..chars.len())] as char
        })
        .collect()
}

impl HarborSim {
    /// Starts on 127.0.0.1:0 with the admin account ([`HarborSim::admin`]).
    pub async fn start() -> HarborSim {
        let control = SimControl::default();
        let mut world = World::default();
        let id = world.id();
        world.users.insert(
            ADMIN.into(),
            SimUser {
                id,
                password: random_secret(),
                admin: true,
            },
        );
        let inner = Arc::new(Inner {
            control: control.clone(),
            world: Mutex::new(world),
            requests: Mutex::default(),
            backend: OnceLock::new(),
        });
        // Blobs are pushed through `/v2` in one piece.
        let router = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(inner.clone());
        let addr = serve(router).await;
        HarborSim {
            control,
            inner,
            endpoint: format!("http://{addr}"),
        }
    }

    /// Starts in backed mode: a real Distribution registry (`$FLOTILLA_REGISTRY_BIN`) behind
    /// `/v2` on the simulator's host, trusting tokens from the simulator's `/service/token`
    /// (service [`REGISTRY_SERVICE`], issuer [`REGISTRY_ISSUER`]). Artifacts are then pushed
    /// through [`HarborSim::endpoint`]'s `/v2` (with [`crate::registry::Pusher`]), not with
    /// [`HarborSim::push`], and the management API reads them from the registry.
    pub async fn start_backed() -> HarborSim {
        let sim = HarborSim::start().await;
        let registry = TestRegistry::start(
            RegistryKind::Distribution,
            RegistryAuth::Realm {
                realm: format!("{}/service/token", sim.endpoint),
                service: realm::SERVICE.into(),
                issuer: realm::ISSUER.into(),
            },
        )
        .await;
        sim.inner.world().backed = true;
        if sim
            .inner
            .backend
            .set(Arc::new(Backend::new(registry)))
            .is_err()
        {
            unreachable!("a new simulator has no registry yet");
        }
        sim
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The registry behind a backed simulator, which clients are not meant to reach directly
    /// (tests use it to look at what is really stored).
    pub fn registry(&self) -> Option<&TestRegistry> {
        self.inner.backend.get().map(|b| &b.registry)
    }

    /// In backed mode, reads the registry into the simulator's state now (management calls do
    /// this themselves), so that [`HarborSim::artifacts`] and friends show it.
    pub async fn refresh(&self) {
        if let Some(backend) = self.inner.backend.get() {
            backend
                .refresh(&self.inner.world)
                .await
                .expect("read the registry behind the Harbor simulator");
        }
    }

    /// Makes `user` a member of `project` with `role` (what the realm grants follows it).
    pub fn add_member(&self, project: &str, user: &str, role: ProjectRole) {
        self.inner
            .world()
            .members
            .insert((project.to_string(), user.to_string()), role);
    }

    /// (username, password) of the admin.
    pub fn admin(&self) -> (String, String) {
        let world = self.inner.world();
        (ADMIN.into(), world.users[ADMIN].password.clone())
    }

    pub fn add_user(&self, name: &str, password: &str, admin: bool) {
        let mut world = self.inner.world();
        let id = world.id();
        world.users.insert(
            name.into(),
            SimUser {
                id,
                password: password.into(),
                admin,
            },
        );
    }

    pub fn create_project(&self, name: &str, public: bool) {
        self.inner.world().create_project(name, public);
    }

    /// Pushes an artifact into `repository` (`<project>/<path>`; the project must exist).
    /// Returns its digest.
    pub fn push(&self, repository: &str, artifact: SimArtifact) -> String {
        let mut world = self.inner.world();
        assert!(
            !world.backed,
            "a backed Harbor simulator holds real artifacts: push them through /v2"
        );
        world
            .push(repository, artifact)
            .expect("push into the Harbor simulator")
    }

    /// Sets a repository's pull count and marks its newest artifact pulled now.
    pub fn record_pulls(&self, repository: &str, pulls: u64) {
        let mut world = self.inner.world();
        let now = world.stamp();
        let id = world.repository_by_name(repository).expect("repository").id;
        if let Some(r) = world.repositories.get_mut(&id) {
            r.pull_count = pulls;
        }
        let newest = world.artifacts_of(id).first().map(|a| a.id);
        if let Some(a) = newest.and_then(|a| world.artifacts.get_mut(&a)) {
            a.pulled = Some(now);
        }
    }

    pub fn project_names(&self) -> Vec<String> {
        let world = self.inner.world();
        world.projects.values().map(|p| p.name.clone()).collect()
    }

    /// Whether the project is public (`None`: no such project).
    pub fn project_public(&self, name: &str) -> Option<bool> {
        self.inner.world().project_by_name(name).map(|p| p.public)
    }

    pub fn repository_names(&self) -> Vec<String> {
        let world = self.inner.world();
        world
            .repositories
            .values()
            .map(|r| r.name.clone())
            .collect()
    }

    /// (digest, tags) of a repository's artifacts, newest first.
    pub fn artifacts(&self, repository: &str) -> Vec<(String, Vec<String>)> {
        let world = self.inner.world();
        let Some(repo) = world.repository_by_name(repository) else {
            return Vec::new();
        };
        world
            .artifacts_of(repo.id)
            .into_iter()
            .map(|a| (a.digest.clone(), a.spec.tags.clone()))
            .collect()
    }

    pub fn robots(&self) -> Vec<RobotView> {
        let world = self.inner.world();
        world
            .robots
            .values()
            .map(|r| RobotView {
                id: r.id,
                name: r.name.clone(),
                level: r.level.clone(),
                duration_days: r.duration_days,
                expires_at: r.expires_at,
                permissions: r.permissions.clone(),
            })
            .collect()
    }

    /// Makes a robot's expiry `at` (Unix seconds), to test expiry.
    pub fn set_robot_expiry(&self, id: u64, at: i64) {
        if let Some(r) = self.inner.world().robots.get_mut(&id) {
            r.expires_at = at;
        }
    }

    /// Tokens the realm issued, in order.
    pub fn tokens(&self) -> Vec<IssuedToken> {
        self.inner.world().tokens.clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The largest `page_size` any request asked for.
    pub fn max_page_size(&self) -> Option<u64> {
        self.requests().iter().filter_map(|r| r.page_size).max()
    }
}

/// Who the basic credentials in `headers` are: `Anonymous` when there are none, `Err` (with
/// the username sent) when they do not hold.
fn authenticate(world: &World, headers: &HeaderMap) -> Result<Principal, String> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    let user_of = |value: &HeaderValue| -> Option<(String, String)> {
        let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    };
    let (user, password) = user_of(value).ok_or_else(String::new)?;
    if let Some(found) = world.users.get(&user) {
        return if found.password == password {
            Ok(Principal::User {
                name: user,
                admin: found.admin,
            })
        } else {
            Err(user)
        };
    }
    let now = now_seconds();
    match world.robots.values().find(|r| r.name == user) {
        Some(robot) if robot.secret == password && !robot.disabled && !robot.expired(now) => {
            Ok(Principal::Robot {
                id: robot.id,
                name: user,
            })
        }
        _ => Err(user),
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn basic_user(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|t| t.split_once(':').map(|(u, _)| u.to_string()))
        .unwrap_or_default()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(latency) = inner.control.latency() {
        tokio::time::sleep(latency).await;
    }
    let raw = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let query = query_pairs(uri.query());
    // Decoded once, as Harbor's router sees it.
    let path = percent_decode_str(uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let api = path.strip_prefix("/api/v2.0/");
    let segments: Vec<String> = api
        .unwrap_or_default()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let action = match api {
        Some(_) => routes::action_of(method.as_str(), &segments),
        None => format!("{method} {path}"),
    };
    let page_size = query
        .iter()
        .find(|(k, _)| k == "page_size")
        .and_then(|(_, v)| v.parse().ok());
    let user = basic_user(&headers);
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let log = |status: u16, outcome: &'static str| {
        inner.control.record(action.clone(), user.clone(), outcome);
        inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(RawRequest {
                method: method.to_string(),
                raw: raw.clone(),
                action: action.clone(),
                page_size,
                user: user.clone(),
                status,
            });
    };
    let reply = match inner.control.roll() {
        Injected::Throttle => {
            log(429, "throttled");
            let mut reply = routes::error(429, "TOO_MANY_REQUEST", "too many requests");
            if let Some(hint) = inner.control.throttle_retry_after() {
                // Delay-seconds; fractions keep tests fast (the adapter parses them).
                let value = if hint.subsec_nanos() == 0 {
                    hint.as_secs().to_string()
                } else {
                    format!("{:.3}", hint.as_secs_f64())
                };
                reply.headers.push(("retry-after", value));
            }
            reply
        }
        Injected::ServerError => {
            log(500, "server_error");
            if fastrand::bool() {
                routes::error(500, "UNKNOWN", "internal server error")
            } else {
                return with_request_id(
                    (StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable").into_response(),
                    &request_id,
                );
            }
        }
        Injected::None if path == "/v2" || path.starts_with("/v2/") => {
            let Some(backend) = inner.backend.get().cloned() else {
                log(404, "error");
                let reply = routes::error(404, "NOT_FOUND", "no registry behind this simulator");
                return with_request_id(reply_response(reply), &request_id);
            };
            let front = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| format!("http://{h}"))
                .unwrap_or_default();
            match backend
                .forward(method.clone(), &raw, &headers, body.to_vec(), &front)
                .await
            {
                Ok(answer) => {
                    note_manifest_traffic(&inner, &method, &path, &answer);
                    log(
                        answer.status,
                        if answer.status < 300 { "ok" } else { "error" },
                    );
                    let mut response = (
                        StatusCode::from_u16(answer.status)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        answer.body,
                    )
                        .into_response();
                    *response.headers_mut() = answer.headers;
                    return response;
                }
                Err(message) => {
                    log(502, "error");
                    return (StatusCode::BAD_GATEWAY, message).into_response();
                }
            }
        }
        Injected::None => {
            let backend = inner.backend.get().cloned();
            let reads_registry = matches!(
                segments.first().map(String::as_str),
                Some("projects" | "repositories")
            );
            let refreshed = match &backend {
                Some(backend) if reads_registry => backend.refresh(&inner.world).await,
                _ => Ok(()),
            };
            let (reply, deletes) = match refreshed {
                Err(message) => (routes::error(500, "UNKNOWN", message), Vec::new()),
                Ok(()) => {
                    let mut world = inner.world();
                    let request = Incoming {
                        method: &method,
                        path: &path,
                        uri: &uri,
                        query: &query,
                        segments: &segments,
                        headers: &headers,
                        body: &body,
                    };
                    let reply = route_authenticated(&mut world, &request);
                    (reply, std::mem::take(&mut world.registry_deletes))
                }
            };
            let reply = match (&backend, deletes.is_empty()) {
                (Some(backend), false) => match backend.delete(deletes).await {
                    Ok(()) => reply,
                    Err(message) => routes::error(500, "UNKNOWN", message),
                },
                _ => reply,
            };
            let outcome = match reply.status {
                401 if path == "/service/token" => "signature",
                s if s < 300 => "ok",
                _ => "error",
            };
            log(reply.status, outcome);
            reply
        }
    };
    with_request_id(reply_response(reply), &request_id)
}

/// One request, decoded.
struct Incoming<'a> {
    method: &'a Method,
    /// Decoded once.
    path: &'a str,
    uri: &'a Uri,
    query: &'a [(String, String)],
    /// After `/api/v2.0/`.
    segments: &'a [String],
    headers: &'a HeaderMap,
    body: &'a [u8],
}

/// The management API and the realm, for one request, with the world locked.
fn route_authenticated(world: &mut World, request: &Incoming) -> routes::Reply {
    let Incoming {
        method,
        path,
        uri,
        query,
        segments,
        headers,
        body,
    } = *request;
    let is_token = path == "/service/token";
    let principal = match authenticate(world, headers) {
        // The realm refuses credentials that do not hold (disabled, expired, deleted robots).
        Err(_) if is_token => return routes::error(401, "UNAUTHORIZED", "unauthorized"),
        authenticated => authenticated.unwrap_or(Principal::Anonymous),
    };
    if is_token && *method == Method::GET {
        return realm::token(world, &principal, query);
    }
    if path.starts_with("/api/v2.0/") {
        let by_name = headers
            .get("x-is-resource-name")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let call = routes::Call {
            method: method.as_str(),
            segments: segments.to_vec(),
            path: uri.path(),
            query,
            by_name,
            body,
            principal: &principal,
        };
        return routes::route(world, &call);
    }
    routes::error(404, "NOT_FOUND", format!("{path} not found"))
}

/// Notes manifest pushes (Harbor's push time; how untagged artifacts are known) and pulls
/// (pull counts) that went through to the registry.
fn note_manifest_traffic(inner: &Inner, method: &Method, path: &str, answer: &backend::Answer) {
    let Some((repository, _)) = backend::manifest_path(path) else {
        return;
    };
    let Some(digest) = answer
        .headers
        .get("docker-content-digest")
        .and_then(|d| d.to_str().ok())
    else {
        return;
    };
    let key = (repository.to_string(), digest.to_string());
    let mut world = inner.world();
    match (method.as_str(), answer.status) {
        ("PUT", 201) => {
            let at = world.stamp();
            world.pushed.insert(key, at);
        }
        ("GET", 200) => world.pulls.push(key),
        _ => {}
    }
}

fn reply_response(reply: routes::Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
