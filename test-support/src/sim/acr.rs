//! Alibaba Cloud Container Registry Enterprise Edition simulator (`cr` API 2018-12-01, RPC
//! style, vendor-apis.md §4): `POST /` with the action in `x-acs-action` and every parameter in
//! the query, V3 `ACS3-HMAC-SHA256` verified by its own code (`acr/signature.rs`), instances
//! with namespaces, repositories and tags, temporary pull tokens with an expiry, and paging as
//! ACR does it: `PageNo`/`PageSize` with `TotalCount` as a string, or `MaxResults`/`NextToken`
//! (an opaque token, empty on the last page).
//!
//! Assumptions where vendor-apis.md is silent (UNCONFIRMED): business errors come back as
//! HTTP 200 with `IsSuccess: false` and upper-snake codes (`INSTANCE_NOT_EXIST`,
//! `NAMESPACE_NOT_EXIST`, `NAMESPACE_ALREADY_EXIST`, `NAMESPACE_NOT_EMPTY`, `REPO_NOT_EXIST`,
//! `TAG_NOT_EXIST`, `PARAM_INVALID`); deleting a namespace that holds repositories is refused;
//! throttling is HTTP 400 `Throttling.User` with `x-ratelimit-user-api` when a hint is set;
//! namespaces and repositories list in creation order, tags newest push first; ListRepoTag's
//! `Digest` is the bare hex, without `sha256:`.

mod signature;

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::to_bytes,
    extract::{Request, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Injected, SimControl, serve};

const ACCESS_KEY_ID: &str = "LTAI5tSimulatedAcrKey";
const ACCESS_KEY_SECRET: &str = "sim-acr-secret-0123456789abcdef";
const API_VERSION: &str = "2018-12-01";
/// The instance every simulator starts with.
pub const INSTANCE_ID: &str = "cri-simacr0001";
const MAX_PAGE_SIZE: usize = 100;
const DEFAULT_PAGE_SIZE: usize = 30;

/// A temporary pull credential the simulator issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub instance: String,
    pub username: String,
    pub password: String,
    /// Epoch milliseconds, as sent in `ExpireTime`.
    pub expires_ms: u64,
    pub hours: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTag {
    pub tag: String,
    pub digest: String,
    pub size: u64,
    pub pushed_ms: u64,
}

struct Namespace {
    id: String,
    name: String,
    public: bool,
}

struct Repo {
    id: String,
    namespace: String,
    name: String,
    public: bool,
    modified_ms: u64,
    /// Newest push first.
    tags: Vec<SimTag>,
}

#[derive(Default)]
struct Instance {
    namespaces: Vec<Namespace>,
    repos: Vec<Repo>,
}

struct World {
    instances: std::collections::BTreeMap<String, Instance>,
    nonces: HashSet<String>,
    tokens: Vec<IssuedToken>,
    seq: u64,
}

type Shared = Arc<Mutex<World>>;

#[derive(Clone)]
struct Sim {
    control: SimControl,
    world: Shared,
}

pub struct AcrSim {
    pub control: SimControl,
    world: Shared,
    addr: SocketAddr,
}

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl AcrSim {
    /// Starts on 127.0.0.1:0 with one empty instance, [`INSTANCE_ID`].
    pub async fn start() -> AcrSim {
        let control = SimControl::default();
        let mut instances = std::collections::BTreeMap::new();
        instances.insert(INSTANCE_ID.to_string(), Instance::default());
        let world = Arc::new(Mutex::new(World {
            instances,
            nonces: HashSet::new(),
            tokens: Vec::new(),
            seq: 0,
        }));
        let sim = Sim {
            control: control.clone(),
            world: world.clone(),
        };
        let addr = serve(Router::new().fallback(handle).with_state(sim)).await;
        AcrSim {
            control,
            world,
            addr,
        }
    }

    /// The management API's URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (access key id, secret) it accepts.
    pub fn credentials(&self) -> (String, String) {
        (ACCESS_KEY_ID.into(), ACCESS_KEY_SECRET.into())
    }

    fn with_instance<T>(&self, read: impl FnOnce(&mut Instance, &mut u64) -> T) -> T {
        let mut world = lock(&self.world);
        let World { instances, seq, .. } = &mut *world;
        read(instances.get_mut(INSTANCE_ID).expect("the instance"), seq)
    }

    pub fn seed_namespace(&self, name: &str, public: bool) {
        self.with_instance(|instance, seq| {
            *seq += 1;
            instance.namespaces.push(Namespace {
                id: format!("crn-{seq:08}"),
                name: name.into(),
                public,
            });
        });
    }

    /// A repository in an existing namespace.
    pub fn seed_repository(&self, namespace: &str, name: &str) {
        self.with_instance(|instance, seq| {
            *seq += 1;
            instance.repos.push(Repo {
                id: format!("crr-{seq:08}"),
                namespace: namespace.into(),
                name: name.into(),
                public: false,
                modified_ms: now_ms(),
                tags: Vec::new(),
            });
        });
    }

    /// Pushes `tag` (newest first) to `namespace/name`.
    pub fn seed_tag(&self, repository: &str, tag: &str, digest: &str, size: u64) {
        self.with_instance(|instance, seq| {
            *seq += 1;
            let repo = instance
                .repos
                .iter_mut()
                .find(|r| format!("{}/{}", r.namespace, r.name) == repository)
                .expect("seeded repository");
            repo.tags.retain(|t| t.tag != tag);
            repo.tags.insert(
                0,
                SimTag {
                    tag: tag.into(),
                    digest: digest.into(),
                    size,
                    pushed_ms: 1_700_000_000_000 + *seq,
                },
            );
        });
    }

    /// (name, public) in listing order.
    pub fn namespaces(&self) -> Vec<(String, bool)> {
        self.with_instance(|i, _| {
            i.namespaces
                .iter()
                .map(|n| (n.name.clone(), n.public))
                .collect()
        })
    }

    /// `namespace/name` in listing order.
    pub fn repositories(&self, namespace: Option<&str>) -> Vec<String> {
        self.with_instance(|i, _| {
            i.repos
                .iter()
                .filter(|r| namespace.is_none_or(|ns| r.namespace == ns))
                .map(|r| format!("{}/{}", r.namespace, r.name))
                .collect()
        })
    }

    /// Tags of `namespace/name` in listing order.
    pub fn tags(&self, repository: &str) -> Vec<SimTag> {
        self.with_instance(|i, _| {
            i.repos
                .iter()
                .find(|r| format!("{}/{}", r.namespace, r.name) == repository)
                .map(|r| r.tags.clone())
                .unwrap_or_default()
        })
    }

    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        lock(&self.world).tokens.clone()
    }
}

// ---- HTTP ----

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// A POP error: HTTP status and `{RequestId, HostId, Code, Message, Recommend}`.
fn pop_error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({
        "RequestId": request_id(),
        "HostId": "cr.cn-hangzhou.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}"),
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

/// A business error (assumed): HTTP 200, `IsSuccess: false`.
type Fault = (&'static str, String);

async fn handle(State(sim): State<Sim>, request: Request) -> Response {
    if let Some(latency) = sim.control.latency() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let action = parts
        .headers
        .get("x-acs-action")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unknown")
        .to_string();
    let now = (now_ms() / 1000) as i64;
    let account = match signature::verify(&parts, &body, ACCESS_KEY_ID, ACCESS_KEY_SECRET, now) {
        Ok((account, nonce)) => {
            if nonce.is_empty() || !lock(&sim.world).nonces.insert(nonce) {
                sim.control.record(&action, "", "signature");
                return pop_error(
                    400,
                    "SignatureNonceUsed",
                    "Specified signature nonce was used already.",
                );
            }
            account
        }
        Err((status, code, message)) => {
            sim.control.record(&action, "", "signature");
            return pop_error(status, code, &message);
        }
    };
    if parts.method != axum::http::Method::POST || parts.uri.path() != "/" {
        sim.control.record(&action, &account, "error");
        return pop_error(404, "InvalidAction.NotFound", "RPC actions are POST /");
    }
    let version = parts
        .headers
        .get("x-acs-version")
        .and_then(|v| v.to_str().ok());
    if version != Some(API_VERSION) {
        sim.control.record(&action, &account, "error");
        return pop_error(400, "InvalidVersion", "x-acs-version must be 2018-12-01");
    }
    match sim.control.roll() {
        Injected::Throttle => {
            sim.control.record(&action, &account, "throttled");
            let mut response = pop_error(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            );
            if let Some(hint) = sim.control.throttle_retry_after() {
                let value = format!("Limit:10,Remain:0,TimeLeft:{},Reset:0", hint.as_millis());
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert("x-ratelimit-user-api", value);
                }
            }
            return response;
        }
        Injected::ServerError => {
            sim.control.record(&action, &account, "server_error");
            return pop_error(
                500,
                "InternalError",
                "The request processing has failed due to some unknown error.",
            );
        }
        Injected::None => {}
    }
    let query = signature::parse_query(parts.uri.query().unwrap_or(""));
    let answer = {
        let mut world = lock(&sim.world);
        world.dispatch(&action, &Params(query))
    };
    match answer {
        Ok(mut value) => {
            sim.control.record(&action, &account, "ok");
            value["Code"] = json!("success");
            value["IsSuccess"] = json!(true);
            value["RequestId"] = json!(request_id());
            axum::Json(value).into_response()
        }
        Err((code, message)) => {
            sim.control.record(&action, &account, "error");
            let body = json!({"Code": code, "Message": message, "IsSuccess": false, "RequestId": request_id()});
            axum::Json(body).into_response()
        }
    }
}

struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn need(&self, name: &str) -> Result<&str, Fault> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ("PARAM_INVALID", format!("{name} is required")))
    }

    fn number(&self, name: &str, default: usize) -> Result<usize, Fault> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| ("PARAM_INVALID", format!("{name} must be a number"))),
        }
    }
}

/// A page of `items` as ACR pages: by `NextToken`/`MaxResults` when either is sent, else by
/// `PageNo`/`PageSize`. `listing` names what is listed, so a token from one list is refused by
/// another. Returns the page and the fields to merge into the answer.
fn page<T: Clone>(items: &[T], params: &Params, listing: &str) -> Result<(Vec<T>, Value), Fault> {
    let total = items.len();
    if params.get("NextToken").is_some() || params.get("MaxResults").is_some() {
        let size = params.number("MaxResults", DEFAULT_PAGE_SIZE)?;
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err((
                "PARAM_INVALID",
                format!("MaxResults must be 1-{MAX_PAGE_SIZE}"),
            ));
        }
        let start = match params.get("NextToken").filter(|t| !t.is_empty()) {
            None => 0,
            Some(token) => decode_token(token, listing)
                .ok_or_else(|| ("PARAM_INVALID", "NextToken is invalid".to_string()))?,
        };
        let end = (start + size).min(total);
        let next = if end < total {
            encode_token(end, listing)
        } else {
            String::new()
        };
        let slice = items.get(start..end).unwrap_or_default().to_vec();
        let extra = json!({"TotalCount": total.to_string(), "MaxResults": size, "NextToken": next});
        return Ok((slice, extra));
    }
    let page_no = params.number("PageNo", 1)?;
    let size = params.number("PageSize", DEFAULT_PAGE_SIZE)?;
    if page_no == 0 || size == 0 || size > MAX_PAGE_SIZE {
        return Err((
            "PARAM_INVALID",
            format!("PageNo starts at 1; PageSize is 1-{MAX_PAGE_SIZE}"),
        ));
    }
    let start = ((page_no - 1) * size).min(total);
    let end = (start + size).min(total);
    let extra = json!({"TotalCount": total.to_string(), "PageNo": page_no, "PageSize": size});
    Ok((items[start..end].to_vec(), extra))
}

/// Opaque, and holding `/` and `+` on purpose: an adapter must pass it on untouched.
fn encode_token(offset: usize, listing: &str) -> String {
    let body =
        base64::engine::general_purpose::STANDARD.encode(format!("{listing}|{offset}|acr-sim"));
    format!("nt/{body}+")
}

fn decode_token(token: &str, listing: &str) -> Option<usize> {
    let body = token.strip_prefix("nt/")?.strip_suffix('+')?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('|');
    let (Some(l), Some(offset), Some("acr-sim"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (l == listing).then(|| offset.parse().ok()).flatten()
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

fn repo_json(r: &Repo, instance: &str) -> Value {
    json!({
        "RepoId": r.id, "RepoName": r.name, "RepoNamespaceName": r.namespace,
        "RepoType": if r.public { "PUBLIC" } else { "PRIVATE" }, "RepoStatus": "NORMAL",
        "RepoBuildType": "MANUAL", "Summary": "", "TagImmutability": false,
        "InstanceId": instance, "ResourceGroupId": "", "CreateTime": r.modified_ms,
        "ModifiedTime": r.modified_ms,
    })
}

impl World {
    fn dispatch(&mut self, action: &str, params: &Params) -> Result<Value, Fault> {
        let instance_id = params.need("InstanceId")?.to_string();
        let Some(instance) = self.instances.get_mut(&instance_id) else {
            return Err((
                "INSTANCE_NOT_EXIST",
                format!("instance {instance_id} does not exist"),
            ));
        };
        self.seq += 1;
        let seq = self.seq;
        let find_repo = |instance: &Instance, params: &Params| -> Result<usize, Fault> {
            let found = match params.get("RepoId").filter(|v| !v.is_empty()) {
                Some(id) => instance.repos.iter().position(|r| r.id == id),
                None => {
                    let (ns, name) = (params.need("RepoNamespaceName")?, params.need("RepoName")?);
                    instance
                        .repos
                        .iter()
                        .position(|r| r.namespace == ns && r.name == name)
                }
            };
            found.ok_or_else(|| ("REPO_NOT_EXIST", "repository does not exist".to_string()))
        };
        match action {
            "GetInstance" => Ok(json!({
                "InstanceId": instance_id, "InstanceName": "simulated",
                "InstanceStatus": "RUNNING", "InstanceSpecification": "Enterprise_Standard",
            })),
            "ListNamespace" => {
                let (items, extra) = page(
                    &instance.namespaces.iter().collect::<Vec<_>>(),
                    params,
                    "ns",
                )?;
                let namespaces: Vec<Value> = items.iter().map(|n| json!({
                    "NamespaceId": n.id, "NamespaceName": n.name, "NamespaceStatus": "NORMAL",
                    "AutoCreateRepo": true,
                    "DefaultRepoType": if n.public { "PUBLIC" } else { "PRIVATE" },
                    "InstanceId": instance_id, "ResourceGroupId": "",
                })).collect();
                Ok(merge(json!({"Namespaces": namespaces}), extra))
            }
            "CreateNamespace" => {
                let name = params.need("NamespaceName")?.to_string();
                if instance.namespaces.iter().any(|n| n.name == name) {
                    return Err((
                        "NAMESPACE_ALREADY_EXIST",
                        format!("namespace {name} already exists"),
                    ));
                }
                let public = match params.get("DefaultRepoType").unwrap_or("PRIVATE") {
                    "PUBLIC" => true,
                    "PRIVATE" => false,
                    _ => {
                        return Err((
                            "PARAM_INVALID",
                            "DefaultRepoType is PUBLIC or PRIVATE".into(),
                        ));
                    }
                };
                instance.namespaces.push(Namespace {
                    id: format!("crn-{seq:08}"),
                    name,
                    public,
                });
                Ok(json!({}))
            }
            "DeleteNamespace" => {
                let name = params.need("NamespaceName")?;
                let Some(at) = instance.namespaces.iter().position(|n| n.name == name) else {
                    return Err((
                        "NAMESPACE_NOT_EXIST",
                        format!("namespace {name} does not exist"),
                    ));
                };
                let held = instance
                    .repos
                    .iter()
                    .filter(|r| r.namespace == name)
                    .count();
                if held > 0 {
                    return Err((
                        "NAMESPACE_NOT_EMPTY",
                        format!("namespace {name} holds {held} repositories"),
                    ));
                }
                instance.namespaces.remove(at);
                Ok(json!({}))
            }
            "ListRepository" => {
                let namespace = params.get("RepoNamespaceName").filter(|v| !v.is_empty());
                if let Some(ns) = namespace
                    && !instance.namespaces.iter().any(|n| n.name == ns)
                {
                    return Err((
                        "NAMESPACE_NOT_EXIST",
                        format!("namespace {ns} does not exist"),
                    ));
                }
                let all: Vec<&Repo> = instance
                    .repos
                    .iter()
                    .filter(|r| namespace.is_none_or(|ns| r.namespace == ns))
                    .collect();
                let listing = format!("repo:{}", namespace.unwrap_or("*"));
                let (items, extra) = page(&all, params, &listing)?;
                let repos: Vec<Value> = items.iter().map(|r| repo_json(r, &instance_id)).collect();
                Ok(merge(json!({"Repositories": repos}), extra))
            }
            "GetRepository" => {
                let at = find_repo(instance, params)?;
                Ok(repo_json(&instance.repos[at], &instance_id))
            }
            "DeleteRepository" => {
                let at = find_repo(instance, params)?;
                instance.repos.remove(at);
                Ok(json!({}))
            }
            "ListRepoTag" => {
                params.need("RepoId")?;
                let at = find_repo(instance, params)?;
                let repo = &instance.repos[at];
                let (items, extra) = page(&repo.tags, params, &format!("tag:{}", repo.id))?;
                let images: Vec<Value> = items
                    .iter()
                    .map(|t| {
                        json!({
                            "Tag": t.tag, "Digest": t.digest.trim_start_matches("sha256:"),
                            "ImageId": &t.digest[t.digest.len().saturating_sub(12)..],
                            "ImageSize": t.size, "ImageCreate": t.pushed_ms.to_string(),
                            "ImageUpdate": t.pushed_ms.to_string(), "Status": "NORMAL",
                        })
                    })
                    .collect();
                Ok(merge(json!({"Images": images}), extra))
            }
            "DeleteRepoTag" => {
                params.need("RepoId")?;
                let at = find_repo(instance, params)?;
                let tag = params.need("Tag")?;
                let repo = &mut instance.repos[at];
                let before = repo.tags.len();
                repo.tags.retain(|t| t.tag != tag);
                if repo.tags.len() == before {
                    return Err(("TAG_NOT_EXIST", format!("tag {tag} does not exist")));
                }
                Ok(json!({}))
            }
            "GetAuthorizationToken" => {
                let hours = params.number("ExpiresInHours", 1)?.clamp(1, 24) as u64;
                let token = IssuedToken {
                    instance: instance_id,
                    username: "cr_temp_user".into(),
                    password: format!("acr-temp-{}", uuid::Uuid::new_v4().simple()),
                    expires_ms: now_ms() + hours * 3_600_000,
                    hours,
                };
                let answer = json!({
                    "TempUsername": token.username, "AuthorizationToken": token.password,
                    "ExpireTime": token.expires_ms,
                });
                self.tokens.push(token);
                Ok(answer)
            }
            _ => Err(("InvalidAction.NotFound", format!("no such action {action}"))),
        }
    }
}
