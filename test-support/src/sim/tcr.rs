//! Tencent Container Registry simulator (API `tcr` 2019-09-24, vendor-apis.md §3): `POST /`
//! with `X-TC-Action`, TC3-HMAC-SHA256 verified by its own code (`tcr/signature.rs`), errors as
//! HTTP 200 `{"Response":{"Error":{Code,Message},"RequestId"}}`. Both editions:
//!
//! - Enterprise: instances (`tcr-…`), namespaces, repositories, images, temporary instance
//!   tokens with an expiry. DescribeNamespaces / DescribeRepositories / DescribeImages take
//!   `Offset` as a **page number** from 1 (0 reads as 1), `Limit` ≤ 100; DescribeInstances
//!   takes an item offset.
//! - Personal: `…Personal` actions, results in `Response.Data`, repositories named `ns/repo`,
//!   item offsets, pull counts.
//!
//! Assumptions where vendor-apis.md is silent (UNCONFIRMED): DescribeRepositories' `Name` is
//! the full `ns/repo`; `ExpTime` is epoch milliseconds; times are Go's default format in
//! UTC+8; DeleteNamespace on a namespace with repositories is
//! `FailedOperation.PreconditionFailed`; throttling carries `Retry-After` when a hint is set;
//! DescribeImages lists newest push first; the Personal `RepoName` filter is a substring match.

mod signature;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};
use serde_json::{Value, json};

use super::{Injected, SimControl, serve};

const SECRET_ID: &str = "AKIDsimulatedTcr0000000000000000000";
const SECRET_KEY: &str = "simulatedTcrSecretKey00000000000";
const VERSION: &str = "2019-09-24";
/// The Enterprise instance every simulator starts with.
pub const REGISTRY_ID: &str = "tcr-simtcr01";
const MAX_LIMIT: u64 = 100;

type Fault = (&'static str, String);

/// A temporary instance token the simulator issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub registry_id: String,
    pub username: String,
    pub token: String,
    /// Epoch milliseconds, as sent in `ExpTime`.
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimImage {
    pub tag: String,
    pub digest: String,
    pub size: u64,
    pub kind: String,
    pub pushed_secs: u64,
}

struct Namespace {
    name: String,
    public: bool,
    created_secs: u64,
}

struct Repo {
    namespace: String,
    name: String,
    updated_secs: u64,
    pull_count: u64,
    /// Newest push first.
    images: Vec<SimImage>,
}

#[derive(Default)]
struct Registry {
    namespaces: Vec<Namespace>,
    repos: Vec<Repo>,
}

struct World {
    enterprise: std::collections::BTreeMap<String, Registry>,
    personal: Registry,
    tokens: Vec<IssuedToken>,
    seq: u64,
}

type Shared = Arc<Mutex<World>>;

#[derive(Clone)]
struct Sim {
    control: SimControl,
    world: Shared,
}

pub struct TcrSim {
    pub control: SimControl,
    world: Shared,
    addr: SocketAddr,
}

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Go's `time.Time.String()` in UTC+8.
fn go_time(secs: u64) -> String {
    let local = secs + 8 * 3600;
    let days = (local / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = local % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.000000123 +0800 CST",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Which registry a seed or a read is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    Enterprise,
    Personal,
}

impl TcrSim {
    /// Starts on 127.0.0.1:0 with one empty Enterprise instance ([`REGISTRY_ID`]) and an empty
    /// Personal registry.
    pub async fn start() -> TcrSim {
        let control = SimControl::default();
        let mut enterprise = std::collections::BTreeMap::new();
        enterprise.insert(REGISTRY_ID.to_string(), Registry::default());
        let world = Arc::new(Mutex::new(World {
            enterprise,
            personal: Registry::default(),
            tokens: Vec::new(),
            seq: 0,
        }));
        let sim = Sim {
            control: control.clone(),
            world: world.clone(),
        };
        let addr = serve(Router::new().route("/", any(handle)).with_state(sim)).await;
        TcrSim {
            control,
            world,
            addr,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (SecretId, SecretKey) it accepts.
    pub fn credentials(&self) -> (String, String) {
        (SECRET_ID.into(), SECRET_KEY.into())
    }

    fn with<T>(&self, edition: Edition, read: impl FnOnce(&mut Registry, &mut u64) -> T) -> T {
        let mut world = lock(&self.world);
        let World {
            enterprise,
            personal,
            seq,
            ..
        } = &mut *world;
        let registry = match edition {
            Edition::Enterprise => enterprise.get_mut(REGISTRY_ID).expect("the instance"),
            Edition::Personal => personal,
        };
        read(registry, seq)
    }

    pub fn seed_namespace(&self, edition: Edition, name: &str, public: bool) {
        self.with(edition, |r, seq| {
            *seq += 1;
            r.namespaces.push(Namespace {
                name: name.into(),
                public,
                created_secs: 1_700_000_000 + *seq,
            });
        });
    }

    pub fn seed_repository(&self, edition: Edition, namespace: &str, name: &str, pulls: u64) {
        self.with(edition, |r, seq| {
            *seq += 1;
            r.repos.push(Repo {
                namespace: namespace.into(),
                name: name.into(),
                updated_secs: 1_700_000_000 + *seq,
                pull_count: pulls,
                images: Vec::new(),
            });
        });
    }

    /// Pushes `tag` to `ns/repo` (newest first).
    pub fn seed_image(
        &self,
        edition: Edition,
        repository: &str,
        tag: &str,
        digest: &str,
        size: u64,
    ) {
        self.with(edition, |r, seq| {
            *seq += 1;
            let repo = r
                .repos
                .iter_mut()
                .find(|x| format!("{}/{}", x.namespace, x.name) == repository)
                .expect("seeded repository");
            repo.images.retain(|i| i.tag != tag);
            repo.images.insert(
                0,
                SimImage {
                    tag: tag.into(),
                    digest: digest.into(),
                    size,
                    kind: "image".into(),
                    pushed_secs: 1_700_000_000 + *seq,
                },
            );
        });
    }

    /// (name, public) in listing order.
    pub fn namespaces(&self, edition: Edition) -> Vec<(String, bool)> {
        self.with(edition, |r, _| {
            r.namespaces
                .iter()
                .map(|n| (n.name.clone(), n.public))
                .collect()
        })
    }

    /// `ns/repo` in listing order.
    pub fn repositories(&self, edition: Edition, namespace: Option<&str>) -> Vec<String> {
        self.with(edition, |r, _| {
            r.repos
                .iter()
                .filter(|x| namespace.is_none_or(|ns| x.namespace == ns))
                .map(|x| format!("{}/{}", x.namespace, x.name))
                .collect()
        })
    }

    pub fn images(&self, edition: Edition, repository: &str) -> Vec<SimImage> {
        self.with(edition, |r, _| {
            r.repos
                .iter()
                .find(|x| format!("{}/{}", x.namespace, x.name) == repository)
                .map(|x| x.images.clone())
                .unwrap_or_default()
        })
    }

    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        lock(&self.world).tokens.clone()
    }
}

// ---- HTTP ----

fn envelope(mut fields: Value) -> Value {
    fields["RequestId"] = json!(uuid::Uuid::new_v4().to_string());
    json!({ "Response": fields })
}

fn reply(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_reply(code: &str, message: &str) -> Response {
    reply(envelope(
        json!({"Error": {"Code": code, "Message": message}}),
    ))
}

async fn handle(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(latency) = sim.control.latency() {
        tokio::time::sleep(latency).await;
    }
    let action = headers
        .get("x-tc-action")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let account = match signature::verify(
        &method,
        &uri,
        &headers,
        &body,
        (SECRET_ID, SECRET_KEY),
        now().as_secs(),
    ) {
        Ok(account) => account,
        Err((code, message)) => {
            sim.control.record(&action, "", "signature");
            return error_reply(code, &message);
        }
    };
    match sim.control.roll() {
        Injected::Throttle => {
            sim.control.record(&action, &account, "throttled");
            let mut response = error_reply(
                "RequestLimitExceeded",
                "Your current request times equals to `21` in a second, which exceeds the frequency limit `20` for a second. Please reduce the frequency of calls.",
            );
            if let Some(hint) = sim.control.throttle_retry_after() {
                let value = format!("{}", hint.as_secs_f64().ceil() as u64);
                if let Ok(value) = value.parse() {
                    response.headers_mut().insert("retry-after", value);
                }
            }
            return response;
        }
        Injected::ServerError => {
            sim.control.record(&action, &account, "server_error");
            // Alternates a gateway failure and the API's own InternalError.
            if sim.control.count(&action) % 2 == 0 {
                return (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>").into_response();
            }
            return error_reply(
                "InternalError",
                "An internal error has occurred. Retry your request.",
            );
        }
        Injected::None => {}
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let answer = if header("x-tc-region").is_empty() {
        Err((
            "MissingParameter",
            "The parameter `Region` is required.".to_string(),
        ))
    } else if header("x-tc-version") != VERSION {
        Err((
            "NoSuchVersion",
            format!("version {:?} is not supported", header("x-tc-version")),
        ))
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(params @ Value::Object(_)) => lock(&sim.world).dispatch(&action, &params),
            _ => Err((
                "InvalidParameter",
                "the request body is not a JSON object".to_string(),
            )),
        }
    };
    match answer {
        Ok(fields) => {
            sim.control.record(&action, &account, "ok");
            reply(envelope(fields))
        }
        Err((code, message)) => {
            sim.control.record(&action, &account, "error");
            error_reply(code, &message)
        }
    }
}

fn text<'a>(params: &'a Value, name: &str) -> &'a str {
    params.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn need<'a>(params: &'a Value, name: &str) -> Result<&'a str, Fault> {
    Some(text(params, name))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            (
                "MissingParameter",
                format!("The parameter `{name}` is missing."),
            )
        })
}

fn number(params: &Value, name: &str, default: u64) -> Result<u64, Fault> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_u64().ok_or_else(|| {
            (
                "InvalidParameterValue",
                format!("`{name}` must be a non-negative integer"),
            )
        }),
    }
}

fn limit(params: &Value, default: u64) -> Result<u64, Fault> {
    let limit = number(params, "Limit", default)?;
    if limit == 0 || limit > MAX_LIMIT {
        return Err((
            "InvalidParameterValue",
            format!("`Limit` must be 1-{MAX_LIMIT}"),
        ));
    }
    Ok(limit)
}

/// Enterprise paging: `Offset` is a page number from 1 (0 reads as 1).
fn by_page<'a, T>(items: &'a [T], params: &Value, default_limit: u64) -> Result<&'a [T], Fault> {
    let limit = limit(params, default_limit)? as usize;
    let page = number(params, "Offset", 1)?.max(1) as usize;
    let start = ((page - 1) * limit).min(items.len());
    Ok(&items[start..(start + limit).min(items.len())])
}

/// Item-offset paging (DescribeInstances, the Personal Edition).
fn by_offset<'a, T>(items: &'a [T], params: &Value, default_limit: u64) -> Result<&'a [T], Fault> {
    let limit = limit(params, default_limit)? as usize;
    let start = (number(params, "Offset", 0)? as usize).min(items.len());
    Ok(&items[start..(start + limit).min(items.len())])
}

fn not_found(what: String) -> Fault {
    ("ResourceNotFound.TcrResourceNotFound", what)
}

impl World {
    fn dispatch(&mut self, action: &str, params: &Value) -> Result<Value, Fault> {
        self.seq += 1;
        if action.ends_with("Personal") {
            return self.personal(action, params);
        }
        if action == "DescribeInstances" {
            let ids: Vec<&str> = params
                .get("Registryids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let all: Vec<&String> = self
                .enterprise
                .keys()
                .filter(|id| ids.is_empty() || ids.contains(&id.as_str()))
                .collect();
            let page = by_offset(&all, params, 20)?;
            let registries: Vec<Value> = page
                .iter()
                .map(|id| {
                    json!({
                        "RegistryId": id, "RegistryName": "simulated", "RegistryType": "standard",
                        "Status": "Running", "PublicDomain": format!("{id}.tencentcloudcr.com"),
                        "RegionName": "ap-guangzhou",
                    })
                })
                .collect();
            return Ok(json!({"Registries": registries, "TotalCount": all.len()}));
        }
        let registry_id = need(params, "RegistryId")?;
        let Some(registry) = self.enterprise.get_mut(registry_id) else {
            return Err(not_found(format!("instance {registry_id} not found")));
        };
        let seq = self.seq;
        let repo_at = |registry: &Registry, params: &Value| -> Result<usize, Fault> {
            let (ns, name) = (
                need(params, "NamespaceName")?,
                need(params, "RepositoryName")?,
            );
            registry
                .repos
                .iter()
                .position(|r| r.namespace == ns && r.name == name)
                .ok_or_else(|| not_found(format!("repository {ns}/{name} not found")))
        };
        match action {
            "DescribeNamespaces" => {
                let page = by_page(&registry.namespaces, params, 20)?;
                let list: Vec<Value> = page
                    .iter()
                    .map(|n| {
                        json!({
                            "Name": n.name, "NamespaceId": n.created_secs, "Public": n.public,
                            "CreationTime": go_time(n.created_secs), "Metadata": [],
                        })
                    })
                    .collect();
                Ok(json!({"NamespaceList": list, "TotalCount": registry.namespaces.len()}))
            }
            "CreateNamespace" => {
                let name = need(params, "NamespaceName")?;
                if registry.namespaces.iter().any(|n| n.name == name) {
                    return Err((
                        "FailedOperation.ErrorTcrResourceConflict",
                        format!("namespace {name} already exists"),
                    ));
                }
                let public = params
                    .get("IsPublic")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                registry.namespaces.push(Namespace {
                    name: name.into(),
                    public,
                    created_secs: 1_700_000_000 + seq,
                });
                Ok(json!({}))
            }
            "DeleteNamespace" => {
                let name = need(params, "NamespaceName")?;
                let Some(at) = registry.namespaces.iter().position(|n| n.name == name) else {
                    return Err(not_found(format!("namespace {name} not found")));
                };
                if registry.repos.iter().any(|r| r.namespace == name) {
                    return Err((
                        "FailedOperation.PreconditionFailed",
                        format!("namespace {name} still has repositories"),
                    ));
                }
                registry.namespaces.remove(at);
                Ok(json!({}))
            }
            "DescribeRepositories" => {
                let ns = text(params, "NamespaceName");
                let all: Vec<&Repo> = registry
                    .repos
                    .iter()
                    .filter(|r| ns.is_empty() || r.namespace == ns)
                    .collect();
                let page = by_page(&all, params, 20)?;
                let list: Vec<Value> = page.iter().map(|r| json!({
                    "Name": format!("{}/{}", r.namespace, r.name), "Namespace": r.namespace,
                    "CreationTime": go_time(r.updated_secs), "UpdateTime": go_time(r.updated_secs),
                    "Public": false, "Description": "", "BriefDescription": "",
                })).collect();
                Ok(json!({"RepositoryList": list, "TotalCount": all.len()}))
            }
            "DeleteRepository" => {
                let at = repo_at(registry, params)?;
                registry.repos.remove(at);
                Ok(json!({}))
            }
            "DescribeImages" => {
                let at = repo_at(registry, params)?;
                let version = text(params, "ImageVersion");
                let digest = text(params, "Digest");
                let exact = params
                    .get("ExactMatch")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let all: Vec<&SimImage> = registry.repos[at]
                    .images
                    .iter()
                    .filter(|i| {
                        (version.is_empty()
                            || if exact {
                                i.tag == version
                            } else {
                                i.tag.contains(version)
                            })
                            && (digest.is_empty() || i.digest == digest)
                    })
                    .collect();
                let page = by_page(&all, params, 20)?;
                let list: Vec<Value> = page.iter().map(|i| json!({
                    "Digest": i.digest, "Size": i.size, "ImageVersion": i.tag,
                    "UpdateTime": go_time(i.pushed_secs), "Kind": i.kind, "KmsSignature": "",
                })).collect();
                Ok(json!({"ImageInfoList": list, "TotalCount": all.len()}))
            }
            "DeleteImage" => {
                let at = repo_at(registry, params)?;
                let tag = need(params, "ImageVersion")?;
                let images = &mut registry.repos[at].images;
                let before = images.len();
                images.retain(|i| i.tag != tag);
                if images.len() == before {
                    return Err(not_found(format!("image version {tag} not found")));
                }
                Ok(json!({}))
            }
            "CreateInstanceToken" => {
                if !matches!(text(params, "TokenType"), "" | "temp") {
                    return Err((
                        "InvalidParameterValue",
                        "the simulator issues temp tokens only".into(),
                    ));
                }
                let token = IssuedToken {
                    registry_id: registry_id.into(),
                    username: "100012345678".into(),
                    token: format!("tcr-temp-{}", uuid::Uuid::new_v4().simple()),
                    expires_ms: now().as_millis() as u64 + 3_600_000,
                };
                let answer = json!({"Username": token.username, "Token": token.token, "ExpTime": token.expires_ms});
                self.tokens.push(token);
                Ok(answer)
            }
            _ => Err((
                "InvalidAction",
                format!("The action `{action}` is not valid."),
            )),
        }
    }

    fn personal(&mut self, action: &str, params: &Value) -> Result<Value, Fault> {
        let registry = &mut self.personal;
        let seq = self.seq;
        let repo_at = |registry: &Registry, params: &Value| -> Result<usize, Fault> {
            let full = need(params, "RepoName")?;
            registry
                .repos
                .iter()
                .position(|r| format!("{}/{}", r.namespace, r.name) == full)
                .ok_or_else(|| {
                    (
                        "ResourceNotFound.ErrNoRepo",
                        format!("repository {full} not found"),
                    )
                })
        };
        match action {
            "DescribeNamespacePersonal" => {
                let filter = text(params, "Namespace");
                let all: Vec<&Namespace> = registry
                    .namespaces
                    .iter()
                    .filter(|n| n.name.contains(filter))
                    .collect();
                let page = by_offset(&all, params, 20)?;
                let info: Vec<Value> = page.iter().map(|n| json!({
                    "Namespace": n.name, "CreationTime": go_time(n.created_secs)[..19].to_string(),
                    "RepoCount": registry.repos.iter().filter(|r| r.namespace == n.name).count(),
                })).collect();
                Ok(json!({"Data": {"NamespaceCount": all.len(), "NamespaceInfo": info}}))
            }
            "CreateNamespacePersonal" => {
                let name = need(params, "Namespace")?;
                if registry.namespaces.iter().any(|n| n.name == name) {
                    return Err((
                        "InvalidParameter.ErrNamespaceExist",
                        format!("namespace {name} already exists"),
                    ));
                }
                registry.namespaces.push(Namespace {
                    name: name.into(),
                    public: false,
                    created_secs: 1_700_000_000 + seq,
                });
                Ok(json!({}))
            }
            "DeleteNamespacePersonal" => {
                let name = need(params, "Namespace")?;
                let Some(at) = registry.namespaces.iter().position(|n| n.name == name) else {
                    return Err((
                        "ResourceNotFound.ErrNoNamespace",
                        format!("namespace {name} not found"),
                    ));
                };
                registry.namespaces.remove(at);
                Ok(json!({}))
            }
            "DescribeRepositoryOwnerPersonal" => {
                let filter = text(params, "RepoName");
                let all: Vec<&Repo> = registry
                    .repos
                    .iter()
                    .filter(|r| format!("{}/{}", r.namespace, r.name).contains(filter))
                    .collect();
                let page = by_offset(&all, params, 20)?;
                let info: Vec<Value> = page.iter().map(|r| json!({
                    "RepoName": format!("{}/{}", r.namespace, r.name), "RepoType": "",
                    "TagCount": r.images.len(), "Public": 0, "IsUserFavor": false,
                    "IsQcloudOfficial": false, "FavorCount": 0, "PullCount": r.pull_count,
                    "Description": "", "CreationTime": go_time(r.updated_secs)[..19].to_string(),
                    "UpdateTime": go_time(r.updated_secs)[..19].to_string(),
                })).collect();
                Ok(
                    json!({"Data": {"TotalCount": all.len(), "Server": "ccr.ccs.tencentyun.com", "RepoInfo": info}}),
                )
            }
            "DeleteRepositoryPersonal" => {
                let at = repo_at(registry, params)?;
                registry.repos.remove(at);
                Ok(json!({}))
            }
            "DescribeImagePersonal" => {
                let at = repo_at(registry, params)?;
                let tag = text(params, "Tag");
                let all: Vec<&SimImage> = registry.repos[at]
                    .images
                    .iter()
                    .filter(|i| tag.is_empty() || i.tag == tag)
                    .collect();
                let page = by_offset(&all, params, 20)?;
                let info: Vec<Value> = page.iter().enumerate().map(|(n, i)| json!({
                    "TagName": i.tag, "TagId": n, "ImageId": i.digest, "Size": format!("{} B", i.size),
                    "SizeByte": i.size, "CreationTime": go_time(i.pushed_secs)[..19].to_string(),
                    "UpdateTime": go_time(i.pushed_secs)[..19].to_string(),
                    "PushTime": go_time(i.pushed_secs)[..19].to_string(), "Architecture": "amd64",
                    "OS": "linux", "Kind": i.kind,
                })).collect();
                Ok(
                    json!({"Data": {"TagCount": all.len(), "Server": "ccr.ccs.tencentyun.com", "RepoName": need(params, "RepoName")?, "TagInfo": info}}),
                )
            }
            "DeleteImagePersonal" => {
                let at = repo_at(registry, params)?;
                let tag = need(params, "Tag")?;
                let images = &mut registry.repos[at].images;
                let before = images.len();
                images.retain(|i| i.tag != tag);
                if images.len() == before {
                    return Err(("ResourceNotFound.ErrNoTag", format!("tag {tag} not found")));
                }
                Ok(json!({}))
            }
            _ => Err((
                "InvalidAction",
                format!("The action `{action}` is not valid."),
            )),
        }
    }
}
