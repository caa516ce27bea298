//! Rancher v3 (norman) simulator: `/v3/clusters` (list with `limit`/`marker`/`name`, create,
//! get, PUT, DELETE, `?action=generateKubeconfig`) and `/v3/clusterregistrationtokens` (create,
//! list with `clusterId`, get), in norman's resource, collection and error shapes
//! (vendor-apis.md §6).
//!
//! - Auth: `Authorization: Bearer <key id>:<secret>`, checked exactly; anything else is 401
//!   `Unauthorized` (Rancher has no request signing).
//! - Clusters get ids `c-` + 5 lowercase letters/digits. A new cluster is `provisioning` (or
//!   `pending` when it has no driver config: an imported one), then `active` with a Ready
//!   condition once `control.provision_delay()` has passed. A PUT that changes the driver
//!   config's `kubernetesVersion` of an active cluster makes it `upgrading` for
//!   `control.change_delay()`. A DELETE makes it `removing` for `provision_delay()`, then it is
//!   gone (404 `NotFound`). A task failure (`Faults::fail_next_task`) taken by a create, upgrade
//!   or delete ends that task in state `error` with the code as its message.
//! - Registration tokens have empty `token`/`manifestUrl`/`command`/`insecureCommand` for the
//!   first 300 ms (Rancher's controller has not run yet), then filled.
//! - Faults: throttling is 429 `TooManyRequests` (with `Retry-After` when a hint is set; the
//!   code is our assumption, Rancher itself documents no 429), server errors are 500
//!   `ServerError` or 503 `ClusterUnavailable`.
//! - Log actions: `GET /v3/clusters`, `POST /v3/clusters`, `GET /v3/clusters/{id}`,
//!   `PUT /v3/clusters/{id}`, `DELETE /v3/clusters/{id}`,
//!   `POST /v3/clusters/{id}?action=generateKubeconfig`, `POST /v3/clusterregistrationtokens`,
//!   `GET /v3/clusterregistrationtokens`, `GET /v3/clusterregistrationtokens/{id}`; anything
//!   else is logged as `<METHOD> <path>`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{Injected, SimControl, loopback_listener, serve_on};

/// How long a new registration token's commands stay empty.
pub const TOKEN_FILL_DELAY: Duration = Duration::from_millis(300);
/// Fields a client may not set: the server computes them.
const COMPUTED: [&str; 12] = [
    "id",
    "type",
    "state",
    "transitioning",
    "transitioningMessage",
    "conditions",
    "links",
    "actions",
    "version",
    "driver",
    "created",
    "uuid",
];

pub struct RancherSim {
    pub control: SimControl,
    inner: Arc<Inner>,
    endpoint: String,
}

struct Inner {
    control: SimControl,
    kubeconfig: String,
    key_id: String,
    secret: String,
    base: OnceLock<String>,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    /// By id: norman lists sorted by id, which is also what `marker` pages over.
    clusters: BTreeMap<String, SimCluster>,
    tokens: Vec<SimToken>,
    created: usize,
}

struct SimCluster {
    name: String,
    /// What the client sent (and later PUT), minus computed fields.
    fields: Map<String, Value>,
    created: Instant,
    provision: Duration,
    create_failure: Option<String>,
    upgrade: Option<Upgrade>,
    removal: Option<Removal>,
}

struct Upgrade {
    started: Instant,
    delay: Duration,
    from_version: String,
    failure: Option<String>,
}

struct Removal {
    started: Instant,
    delay: Duration,
    failure: Option<String>,
}

struct SimToken {
    id: String,
    cluster_id: String,
    token: String,
    created: Instant,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Provisioning,
    Active,
    Upgrading,
    Removing,
    Error(String),
    Gone,
}

impl SimCluster {
    fn driver_config(&self) -> Option<(&'static str, &Map<String, Value>)> {
        ["rke2Config", "k3sConfig"]
            .into_iter()
            .find_map(|kind| Some((kind, self.fields.get(kind)?.as_object()?)))
    }

    fn desired_version(&self) -> String {
        self.driver_config()
            .and_then(|(_, c)| c.get("kubernetesVersion")?.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn phase(&self, now: Instant) -> Phase {
        if let Some(removal) = &self.removal {
            return match (now >= removal.started + removal.delay, &removal.failure) {
                (false, _) => Phase::Removing,
                (true, Some(code)) => Phase::Error(code.clone()),
                (true, None) => Phase::Gone,
            };
        }
        if now < self.created + self.provision {
            return Phase::Provisioning;
        }
        if let Some(code) = &self.create_failure {
            return Phase::Error(code.clone());
        }
        match &self.upgrade {
            Some(u) if now < u.started + u.delay => Phase::Upgrading,
            Some(Upgrade {
                failure: Some(code),
                ..
            }) => Phase::Error(code.clone()),
            _ => Phase::Active,
        }
    }

    /// The version the cluster runs: the old one until an upgrade has finished.
    fn current_version(&self, now: Instant) -> String {
        match &self.upgrade {
            Some(u) if now < u.started + u.delay || u.failure.is_some() => u.from_version.clone(),
            _ => self.desired_version(),
        }
    }

    fn render(&self, id: &str, base: &str, now: Instant) -> Value {
        let phase = self.phase(now);
        let imported = self.driver_config().is_none();
        let (state, transitioning, message) = match &phase {
            Phase::Provisioning if imported => ("pending", "yes", "Waiting for the cluster agent"),
            Phase::Provisioning => ("provisioning", "yes", "Provisioning the cluster"),
            Phase::Active | Phase::Gone => ("active", "no", ""),
            Phase::Upgrading => ("upgrading", "yes", "Upgrading Kubernetes"),
            Phase::Removing => ("removing", "yes", "Removing the cluster"),
            Phase::Error(code) => ("error", "error", code.as_str()),
        };
        let ready = match phase {
            Phase::Active | Phase::Upgrading => "True",
            Phase::Error(_) => "False",
            _ => "Unknown",
        };
        let self_link = format!("{base}/v3/clusters/{id}");
        let mut actions = Map::new();
        if matches!(phase, Phase::Active | Phase::Upgrading) {
            actions.insert(
                "generateKubeconfig".into(),
                format!("{self_link}?action=generateKubeconfig").into(),
            );
        }
        let mut object = self.fields.clone();
        object.extend([
            ("id".to_string(), Value::from(id)),
            ("type".to_string(), "cluster".into()),
            ("name".to_string(), self.name.clone().into()),
            ("state".to_string(), state.into()),
            ("transitioning".to_string(), transitioning.into()),
            ("transitioningMessage".to_string(), message.into()),
            (
                "conditions".to_string(),
                json!([
                    {"type": "Provisioned", "status": if phase == Phase::Provisioning { "Unknown" } else { "True" }},
                    {"type": "Ready", "status": ready, "message": message},
                ]),
            ),
            (
                "driver".to_string(),
                match self.driver_config() {
                    Some(("k3sConfig", _)) => "k3s",
                    Some(_) => "rke2",
                    None => "imported",
                }
                .into(),
            ),
            (
                "links".to_string(),
                json!({"self": self_link, "update": self_link, "remove": self_link}),
            ),
            ("actions".to_string(), Value::Object(actions)),
        ]);
        let version = self.current_version(now);
        if phase != Phase::Provisioning && !version.is_empty() {
            object.insert("version".into(), json!({"gitVersion": version}));
        }
        Value::Object(object)
    }
}

impl SimToken {
    fn render(&self, base: &str, now: Instant) -> Value {
        let filled = now >= self.created + TOKEN_FILL_DELAY;
        let name = self.id.split_once(':').map_or("", |(_, n)| n);
        let mut object = json!({
            "id": self.id,
            "type": "clusterRegistrationToken",
            "name": name,
            "namespaceId": self.cluster_id,
            "clusterId": self.cluster_id,
            "state": "active",
            "links": {"self": format!("{base}/v3/clusterregistrationtokens/{}", self.id)},
        });
        if filled {
            let manifest = format!("{base}/v3/import/{}_{}.yaml", self.token, self.cluster_id);
            let fields = json!({
                "token": self.token,
                "manifestUrl": manifest,
                "command": format!("kubectl apply -f {manifest}"),
                "insecureCommand": format!("curl --insecure -sfL {manifest} | kubectl apply -f -"),
                "nodeCommand": "",
            });
            if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
                object.extend(fields);
            }
        }
        object
    }
}

fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

impl RancherSim {
    /// Starts on 127.0.0.1:0. `kubeconfig`: YAML handed out for every running cluster.
    pub async fn start(kubeconfig: String) -> RancherSim {
        RancherSim::start_on(loopback_listener().await, kubeconfig)
    }

    /// Starts on `listener` (the `flotilla-sim` binary binds the address it was given).
    pub fn start_on(listener: tokio::net::TcpListener, kubeconfig: String) -> RancherSim {
        let control = SimControl::default();
        let inner = Arc::new(Inner {
            control: control.clone(),
            kubeconfig,
            key_id: format!("token-{}", random_alnum(5)),
            secret: random_alnum(54),
            base: OnceLock::new(),
            state: Mutex::default(),
        });
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let addr = serve_on(listener, router);
        let endpoint = format!("http://{addr}");
        let _ = inner.base.set(endpoint.clone());
        RancherSim {
            control,
            inner,
            endpoint,
        }
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// (API key id, secret) it accepts.
    pub fn credentials(&self) -> (String, String) {
        (self.inner.key_id.clone(), self.inner.secret.clone())
    }

    /// Clusters ever created (deleted ones included).
    pub fn clusters_created(&self) -> usize {
        self.inner.lock().created
    }

    /// Clusters that exist now (not deleted).
    pub fn cluster_ids(&self) -> Vec<String> {
        let mut state = self.inner.lock();
        state.sweep(Instant::now());
        state.clusters.keys().cloned().collect()
    }

    /// Rancher's raw state string.
    pub fn cluster_state(&self, id: &str) -> Option<String> {
        let base = self.endpoint.clone();
        let now = Instant::now();
        let mut state = self.inner.lock();
        state.sweep(now);
        let cluster = state.clusters.get(id)?;
        cluster.render(id, &base, now)["state"]
            .as_str()
            .map(str::to_string)
    }

    /// The Kubernetes version the cluster runs (the old one while an upgrade is under way);
    /// `None` for unknown clusters and clusters without a driver config.
    pub fn cluster_version(&self, id: &str) -> Option<String> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        state.sweep(now);
        Some(state.clusters.get(id)?.current_version(now)).filter(|v| !v.is_empty())
    }

    /// Rancher v2.15 has no v3 node pools.
    pub fn node_pool_size(&self, _cluster_id: &str, _pool_id: &str) -> Option<i32> {
        None
    }

    pub fn node_pool_ids(&self, _cluster_id: &str) -> Vec<String> {
        Vec::new()
    }

    /// Names (`name` field) of the clusters that exist now, for duplicate checks.
    pub fn cluster_names(&self) -> Vec<String> {
        let mut state = self.inner.lock();
        state.sweep(Instant::now());
        state.clusters.values().map(|c| c.name.clone()).collect()
    }
}

impl SimState {
    fn sweep(&mut self, now: Instant) {
        self.clusters.retain(|_, c| c.phase(now) != Phase::Gone);
    }
}

type Answer = (StatusCode, Value);

fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
    let message: String = message.into();
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"type": "error", "status": status, "code": code, "message": message}),
    )
}

fn field_error(code: &str, field: &str, message: &str) -> Answer {
    let (status, mut body) = error(422, code, message);
    body["fieldName"] = field.into();
    (status, body)
}

fn not_found(id: &str) -> Answer {
    error(
        404,
        "NotFound",
        format!("clusters.management.cattle.io \"{id}\" not found"),
    )
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
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

fn action_name(method: &Method, path: &str, query: &[(String, String)]) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v3", kind @ ("clusters" | "clusterregistrationtokens")] => format!("{method} /v3/{kind}"),
        ["v3", kind @ ("clusters" | "clusterregistrationtokens"), _] => {
            match query.iter().find(|(k, _)| k == "action") {
                Some((_, action)) => format!("{method} /v3/{kind}/{{id}}?action={action}"),
                None => format!("{method} /v3/{kind}/{{id}}"),
            }
        }
        _ => format!("{method} {path}"),
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn base(&self) -> String {
        self.base.get().cloned().unwrap_or_default()
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("must authenticate")?;
        let presented = value.strip_prefix("Bearer ").ok_or("must authenticate")?;
        match presented.split_once(':') {
            Some((id, secret)) if id == self.key_id && secret == self.secret => Ok(()),
            _ => Err("Unauthorized 401: must authenticate"),
        }
    }

    fn route(
        &self,
        method: &Method,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let action = query
            .iter()
            .find(|(k, _)| k == "action")
            .map(|(_, v)| v.as_str());
        match (method.as_str(), segments.as_slice(), action) {
            ("GET", ["v3", "clusters"], None) => self.list_clusters(query),
            ("POST", ["v3", "clusters"], None) => self.create_cluster(body),
            ("GET", ["v3", "clusters", id], None) => self.get_cluster(id),
            ("PUT", ["v3", "clusters", id], None) => self.update_cluster(id, body),
            ("DELETE", ["v3", "clusters", id], None) => self.delete_cluster(id),
            ("POST", ["v3", "clusters", id], Some("generateKubeconfig")) => self.kubeconfig(id),
            ("POST", ["v3", "clusters", _], Some(other)) => field_error(
                "InvalidAction",
                "action",
                &format!("invalid action {other}"),
            ),
            ("GET", ["v3", "clusterregistrationtokens"], None) => self.list_tokens(query),
            ("POST", ["v3", "clusterregistrationtokens"], None) => self.create_token(body),
            ("GET", ["v3", "clusterregistrationtokens", id], None) => self.get_token(id),
            (_, ["v3", "clusters" | "clusterregistrationtokens", ..], _) => error(
                405,
                "MethodNotAllow",
                format!("method {method} not allowed"),
            ),
            _ => error(404, "NotFound", "not found"),
        }
    }

    fn list_clusters(&self, query: &[(String, String)]) -> Answer {
        let get = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let limit = match get("limit").and_then(|l| l.parse::<i64>().ok()) {
            Some(l) if !(0..=10_000).contains(&l) => 10_000,
            Some(l) if l > 0 => l as usize,
            _ => 1000,
        };
        let marker = get("marker").unwrap_or_default();
        let name = get("name");
        let (base, now) = (self.base(), Instant::now());
        let mut state = self.lock();
        state.sweep(now);
        let matching: Vec<(&String, &SimCluster)> = state
            .clusters
            .iter()
            .filter(|(_, c)| name.is_none_or(|n| c.name == n))
            .collect();
        let total = matching.len();
        let rest: Vec<_> = matching
            .into_iter()
            .filter(|(id, _)| id.as_str() >= marker)
            .collect();
        let data: Vec<Value> = rest
            .iter()
            .take(limit)
            .map(|(id, c)| c.render(id, &base, now))
            .collect();
        let mut pagination = json!({"limit": limit, "total": total});
        if !marker.is_empty() {
            pagination["marker"] = marker.into();
        }
        if let Some((next_id, _)) = rest.get(limit) {
            let mut next = format!("{base}/v3/clusters?limit={limit}");
            if let Some(name) = name {
                next.push_str("&name=");
                next.extend(percent_encoding::utf8_percent_encode(
                    name,
                    percent_encoding::NON_ALPHANUMERIC,
                ));
            }
            pagination["next"] = format!("{next}&marker={next_id}").into();
            pagination["partial"] = true.into();
        }
        (
            StatusCode::OK,
            json!({
                "type": "collection",
                "resourceType": "cluster",
                "links": {"self": format!("{base}/v3/clusters")},
                "actions": {},
                "data": data,
                "pagination": pagination,
                "sort": {"order": "asc", "reverse": "", "links": {}},
                "filters": {},
            }),
        )
    }

    fn create_cluster(&self, body: &[u8]) -> Answer {
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
            return error(422, "InvalidBodyContent", "the body is not a JSON object");
        };
        if fields.get("type").is_some_and(|t| t != "cluster") {
            return field_error("InvalidType", "type", "type must be cluster");
        }
        let name = match fields.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => return field_error("MissingRequired", "name", "name is required"),
        };
        for key in COMPUTED.into_iter().chain(["name"]) {
            fields.remove(key);
        }
        let now = Instant::now();
        let cluster = SimCluster {
            name,
            fields,
            created: now,
            provision: self.control.provision_delay(),
            create_failure: self.control.take_task_failure(),
            upgrade: None,
            removal: None,
        };
        let base = self.base();
        let mut state = self.lock();
        let id = loop {
            let id = format!("c-{}", random_alnum(5));
            if !state.clusters.contains_key(&id) {
                break id;
            }
        };
        let rendered = cluster.render(&id, &base, now);
        state.clusters.insert(id, cluster);
        state.created += 1;
        (StatusCode::CREATED, rendered)
    }

    fn get_cluster(&self, id: &str) -> Answer {
        let (base, now) = (self.base(), Instant::now());
        let mut state = self.lock();
        state.sweep(now);
        match state.clusters.get(id) {
            Some(cluster) => (StatusCode::OK, cluster.render(id, &base, now)),
            None => not_found(id),
        }
    }

    fn update_cluster(&self, id: &str, body: &[u8]) -> Answer {
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
            return error(422, "InvalidBodyContent", "the body is not a JSON object");
        };
        for key in COMPUTED {
            fields.remove(key);
        }
        let (base, now) = (self.base(), Instant::now());
        let change_delay = self.control.change_delay();
        let mut state = self.lock();
        state.sweep(now);
        let Some(cluster) = state.clusters.get_mut(id) else {
            return not_found(id);
        };
        if cluster.removal.is_some() {
            return error(409, "Conflict", format!("cluster {id} is being removed"));
        }
        let (before, running) = (cluster.desired_version(), cluster.current_version(now));
        let phase = cluster.phase(now);
        if let Some(Value::String(name)) = fields.remove("name") {
            cluster.name = name;
        }
        cluster.fields.extend(fields);
        let after = cluster.desired_version();
        if after != before && matches!(phase, Phase::Active | Phase::Upgrading | Phase::Error(_)) {
            cluster.upgrade = Some(Upgrade {
                started: now,
                delay: change_delay,
                from_version: running,
                failure: self.control.take_task_failure(),
            });
        }
        (StatusCode::OK, cluster.render(id, &base, now))
    }

    fn delete_cluster(&self, id: &str) -> Answer {
        let (base, now) = (self.base(), Instant::now());
        let delay = self.control.provision_delay();
        let mut state = self.lock();
        state.sweep(now);
        let Some(cluster) = state.clusters.get_mut(id) else {
            return not_found(id);
        };
        if !matches!(cluster.phase(now), Phase::Removing) {
            cluster.removal = Some(Removal {
                started: now,
                delay,
                failure: self.control.take_task_failure(),
            });
        }
        (StatusCode::OK, cluster.render(id, &base, now))
    }

    fn kubeconfig(&self, id: &str) -> Answer {
        let now = Instant::now();
        let mut state = self.lock();
        state.sweep(now);
        let Some(cluster) = state.clusters.get(id) else {
            return not_found(id);
        };
        match cluster.phase(now) {
            Phase::Active | Phase::Upgrading => (
                StatusCode::OK,
                json!({"type": "generateKubeconfigOutput", "config": self.kubeconfig}),
            ),
            _ => error(404, "ActionNotAvailable", "action not available"),
        }
    }

    fn create_token(&self, body: &[u8]) -> Answer {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return error(422, "InvalidBodyContent", "the body is not a JSON object");
        };
        let cluster_id = match fields.get("clusterId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => return field_error("MissingRequired", "clusterId", "clusterId is required"),
        };
        let (base, now) = (self.base(), Instant::now());
        let mut state = self.lock();
        state.sweep(now);
        if !state.clusters.contains_key(&cluster_id) {
            return field_error(
                "InvalidReference",
                "clusterId",
                &format!("cluster {cluster_id} not found"),
            );
        }
        let token = SimToken {
            id: format!("{cluster_id}:crt-{}", random_alnum(5)),
            cluster_id,
            token: random_alnum(54),
            created: now,
        };
        let rendered = token.render(&base, now);
        state.tokens.push(token);
        (StatusCode::CREATED, rendered)
    }

    fn list_tokens(&self, query: &[(String, String)]) -> Answer {
        let cluster_id = query
            .iter()
            .find(|(k, _)| k == "clusterId")
            .map(|(_, v)| v.as_str());
        let (base, now) = (self.base(), Instant::now());
        let state = self.lock();
        let data: Vec<Value> = state
            .tokens
            .iter()
            .filter(|t| cluster_id.is_none_or(|c| t.cluster_id == c))
            .map(|t| t.render(&base, now))
            .collect();
        let total = data.len();
        (
            StatusCode::OK,
            json!({
                "type": "collection",
                "resourceType": "clusterRegistrationToken",
                "links": {"self": format!("{base}/v3/clusterregistrationtokens")},
                "data": data,
                "pagination": {"limit": 1000, "total": total},
            }),
        )
    }

    fn get_token(&self, id: &str) -> Answer {
        let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
        let (base, now) = (self.base(), Instant::now());
        let state = self.lock();
        match state.tokens.iter().find(|t| t.id == id) {
            Some(token) => (StatusCode::OK, token.render(&base, now)),
            None => error(
                404,
                "NotFound",
                format!("clusterregistrationtokens \"{id}\" not found"),
            ),
        }
    }
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
    let query = query_pairs(uri.query());
    let action = action_name(&method, uri.path(), &query);
    if let Err(message) = inner.authenticate(&headers) {
        inner.control.record(action, "", "signature");
        return json_response(error(401, "Unauthorized", message));
    }
    let account = inner.key_id.clone();
    match inner.control.roll() {
        Injected::Throttle => {
            inner.control.record(action, account, "throttled");
            let mut response = json_response(error(
                429,
                "TooManyRequests",
                "rate limit exceeded, slow down",
            ));
            if let Some(hint) = inner.control.throttle_retry_after() {
                let value = if hint.subsec_nanos() == 0 {
                    hint.as_secs().to_string()
                } else {
                    format!("{:.3}", hint.as_secs_f64())
                };
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            return response;
        }
        Injected::ServerError => {
            inner.control.record(action, account, "server_error");
            return json_response(if fastrand::bool() {
                error(500, "ServerError", "internal server error")
            } else {
                error(503, "ClusterUnavailable", "cluster not available")
            });
        }
        Injected::None => {}
    }
    let answer = inner.route(&method, uri.path(), &query, &body);
    let outcome = if answer.0.is_success() { "ok" } else { "error" };
    inner.control.record(action, account, outcome);
    json_response(answer)
}

fn json_response((status, body): Answer) -> Response {
    (status, axum::Json(body)).into_response()
}
