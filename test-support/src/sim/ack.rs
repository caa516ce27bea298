//! Alibaba Cloud ACK simulator: the CS API 2015-12-15 actions the adapter uses, with the
//! documented paths and snake_case JSON bodies, V3 `ACS3-HMAC-SHA256` signature verification
//! (recomputed here from what arrived, independently of the adapter's signer), tasks, and
//! time-based state (no background work: state advances whenever it is looked at).
//!
//! Error bodies use lowercase keys (`code`, `message`, `requestId`). Codes the doc does not
//! give are the simulator's own choice and say so where they are used.

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::to_bytes,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

mod signature;

use super::{Injected, SimControl, loopback_listener, serve_on};
use signature::{parse_query, verify};

const ACCESS_KEY_ID: &str = "LTAI5tSimulatorKey";
const ACCESS_KEY_SECRET: &str = "sim-ack-secret-0123456789";
const API_VERSION: &str = "2015-12-15";
pub struct AckSim {
    pub control: SimControl,
    world: Arc<Mutex<World>>,
    addr: SocketAddr,
}

struct World {
    control: SimControl,
    kubeconfig: String,
    clusters: BTreeMap<String, Cluster>,
    tasks: BTreeMap<String, Task>,
    created: usize,
    nonces: HashSet<String>,
    seq: u64,
}

struct Cluster {
    seq: u64,
    id: String,
    name: String,
    region: String,
    cluster_type: String,
    cluster_spec: String,
    version: String,
    init_version: String,
    next_version: String,
    state: &'static str,
    created: String,
    tags: Value,
    pools: BTreeMap<String, Pool>,
}

struct Pool {
    id: String,
    name: String,
    state: &'static str,
    desired: i64,
    total: i64,
    autoscaling: bool,
    min: i64,
    max: i64,
    scaling_group: Value,
    kubernetes_config: Value,
}

struct Task {
    id: String,
    cluster_id: String,
    kind: &'static str,
    stages: &'static [&'static str],
    started: Instant,
    until: Instant,
    created: String,
    fail: Option<String>,
    effect: Effect,
    /// `Some(true)` succeeded, `Some(false)` failed, `None` running.
    outcome: Option<bool>,
}

#[derive(Clone)]
enum Effect {
    CreateCluster,
    Upgrade(String),
    DeleteCluster,
    CreatePool(String),
    ChangePool { pool: String, previous: i64 },
    DeletePool(String),
}

type Answer = Result<(StatusCode, Value), Response>;
type Shared = Arc<Mutex<World>>;

impl AckSim {
    /// Starts on 127.0.0.1:0. `kubeconfig`: YAML handed out for every running cluster.
    pub async fn start(kubeconfig: String) -> AckSim {
        AckSim::start_on(loopback_listener().await, kubeconfig)
    }

    /// Starts on `listener` (the `flotilla-sim` binary binds the address it was given).
    pub fn start_on(listener: tokio::net::TcpListener, kubeconfig: String) -> AckSim {
        let control = SimControl::default();
        let world = Arc::new(Mutex::new(World {
            control: control.clone(),
            kubeconfig,
            clusters: BTreeMap::new(),
            tasks: BTreeMap::new(),
            created: 0,
            nonces: HashSet::new(),
            seq: 0,
        }));
        let router = Router::new().fallback(handle).with_state(world.clone());
        let addr = serve_on(listener, router);
        AckSim {
            control,
            world,
            addr,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (access key id, access key secret) that the simulator accepts.
    pub fn credentials(&self) -> (String, String) {
        (ACCESS_KEY_ID.into(), ACCESS_KEY_SECRET.into())
    }

    pub fn clusters_created(&self) -> usize {
        lock(&self.world).created
    }

    pub fn cluster_ids(&self) -> Vec<String> {
        lock(&self.world).clusters.keys().cloned().collect()
    }

    pub fn cluster_state(&self, id: &str) -> Option<String> {
        lock(&self.world).clusters.get(id).map(|c| c.state.into())
    }

    pub fn cluster_version(&self, id: &str) -> Option<String> {
        lock(&self.world)
            .clusters
            .get(id)
            .map(|c| c.version.clone())
    }

    /// The pool's desired size.
    pub fn node_pool_size(&self, cluster_id: &str, pool_id: &str) -> Option<i32> {
        self.pool(cluster_id, pool_id, |p| p.desired as i32)
    }

    pub fn node_pool_ids(&self, cluster_id: &str) -> Vec<String> {
        let world = lock(&self.world);
        let cluster = world.clusters.get(cluster_id);
        cluster.map_or_else(Vec::new, |c| c.pools.keys().cloned().collect())
    }

    /// Nodes the pool has now (catches up with the desired size when a change completes).
    pub fn node_pool_nodes(&self, cluster_id: &str, pool_id: &str) -> Option<i64> {
        self.pool(cluster_id, pool_id, |p| p.total)
    }

    fn pool<T>(&self, cluster_id: &str, pool_id: &str, read: impl Fn(&Pool) -> T) -> Option<T> {
        let world = lock(&self.world);
        Some(read(world.clusters.get(cluster_id)?.pools.get(pool_id)?))
    }
}

/// The world, advanced to now (state changes when it is looked at; no background work).
fn lock(world: &Shared) -> MutexGuard<'_, World> {
    let mut world = world.lock().unwrap_or_else(|p| p.into_inner());
    world.advance(Instant::now());
    world
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "code": code, "message": message.into(), "requestId": request_id() });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

fn now_string() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    flotilla::adapters::signing::alibaba::acs_date(secs).replace('Z', "+00:00")
}

async fn handle(State(world): State<Shared>, request: Request) -> Response {
    let control = lock(&world).control.clone();
    if let Some(latency) = control.latency() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 8 << 20).await.unwrap_or_default();
    let route = route(&parts.method, parts.uri.path());
    let action = route.as_ref().map_or("Unknown", |r| r.action);
    if let Err(refusal) = verify(&world, &parts, &body) {
        control.record(action, "", "signature");
        return refusal;
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let refusal = match &route {
        // The simulator's own codes for an unknown path or a mislabelled request.
        None => Some(error(404, "InvalidAction.NotFound", "no such ACK action")),
        Some(r) if header("x-acs-action") != Some(r.action) => Some(error(
            400,
            "InvalidAction",
            "x-acs-action does not match the path",
        )),
        Some(_) if header("x-acs-version") != Some(API_VERSION) => Some(error(
            400,
            "InvalidVersion",
            "x-acs-version must be 2015-12-15",
        )),
        Some(_) => None,
    };
    let (Some(route), None) = (route, refusal.as_ref()) else {
        control.record(action, ACCESS_KEY_ID, "error");
        return refusal.unwrap_or_else(|| error(400, "InvalidAction", "unroutable"));
    };
    match control.roll() {
        Injected::Throttle => {
            control.record(action, ACCESS_KEY_ID, "throttled");
            let message = "Request was denied due to user flow control.";
            let mut response = error(429, "Throttling.User", message);
            if let Some(hint) = control.throttle_retry_after() {
                let value = format!("Limit:10,Remain:0,TimeLeft:{},Reset:0", hint.as_millis());
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert("x-ratelimit-user-api", value);
                }
            }
            return response;
        }
        Injected::ServerError => {
            control.record(action, ACCESS_KEY_ID, "server_error");
            let message = "The request processing has failed due to some unknown error.";
            return error(500, "InternalError", message);
        }
        Injected::None => {}
    }
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = lock(&world).dispatch(&route, &query, &body);
    if answer.is_ok() {
        control.wait_if_held(action).await;
    }
    match answer {
        Ok((status, mut value)) => {
            control.record(action, ACCESS_KEY_ID, "ok");
            value["request_id"] = json!(request_id());
            (status, axum::Json(value)).into_response()
        }
        Err(refusal) => {
            control.record(action, ACCESS_KEY_ID, "error");
            refusal
        }
    }
}

struct Route {
    action: &'static str,
    cluster: String,
    pool: String,
    task: String,
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.as_str();
    let (action, cluster, pool, task) = match (m, s.as_slice()) {
        ("POST", ["clusters"]) => ("CreateCluster", "", "", ""),
        ("GET", ["api", "v1", "clusters"]) => ("DescribeClustersV1", "", "", ""),
        ("GET", ["clusters", c]) => ("DescribeClusterDetail", *c, "", ""),
        ("DELETE", ["clusters", c]) => ("DeleteCluster", *c, "", ""),
        ("GET", ["k8s", c, "user_config"]) => ("DescribeClusterUserKubeconfig", *c, "", ""),
        ("POST", ["api", "v2", "clusters", c, "upgrade"]) => ("UpgradeCluster", *c, "", ""),
        ("POST", ["clusters", c, "nodepools"]) => ("CreateClusterNodePool", *c, "", ""),
        ("GET", ["clusters", c, "nodepools"]) => ("DescribeClusterNodePools", *c, "", ""),
        ("POST", ["clusters", c, "nodepools", p]) => ("ScaleClusterNodePool", *c, *p, ""),
        ("PUT", ["clusters", c, "nodepools", p]) => ("ModifyClusterNodePool", *c, *p, ""),
        ("DELETE", ["clusters", c, "nodepools", p]) => ("DeleteClusterNodepool", *c, *p, ""),
        ("POST", ["clusters", c, "nodepools", p, "attach"]) => {
            ("AttachInstancesToNodePool", *c, *p, "")
        }
        ("DELETE", ["clusters", c, "nodepools", p, "nodes"]) => ("RemoveNodePoolNodes", *c, *p, ""),
        ("GET", ["tasks", t]) => ("DescribeTaskInfo", "", "", *t),
        _ => return None,
    };
    Some(Route {
        action,
        cluster: cluster.into(),
        pool: pool.into(),
        task: task.into(),
    })
}

fn bad(message: impl Into<String>) -> Response {
    error(400, "InvalidParameter", message)
}

/// The simulator's choice (seen in public ACK tooling): an operation the state does not allow.
fn wrong_state(state: &str) -> Response {
    let message = format!("the cluster is {state}; the operation is not allowed");
    error(400, "ErrorClusterState", message)
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(Value::as_i64)
}

impl World {
    fn dispatch(&mut self, route: &Route, query: &[(String, String)], body: &Value) -> Answer {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let ok = |value: Value| Ok((StatusCode::OK, value));
        let id = route.cluster.as_str();
        match route.action {
            "CreateCluster" => self.create_cluster(body),
            "DescribeClustersV1" => ok(self.list_clusters(&param)),
            "DescribeClusterDetail" => ok(cluster_json(self.cluster(id)?)),
            "DescribeClusterUserKubeconfig" => match self.cluster(id)?.state {
                "running" | "upgrading" | "updating" => ok(json!({
                    "config": self.kubeconfig, "expiration": "2099-01-01T00:00:00Z"
                })),
                other => Err(wrong_state(other)),
            },
            "UpgradeCluster" => {
                let version = text(body, "/next_version").to_string();
                if version.is_empty() {
                    return Err(bad("next_version is required"));
                }
                let cluster = self.cluster_mut(id)?;
                if cluster.state != "running" {
                    return Err(wrong_state(cluster.state));
                }
                cluster.state = "upgrading";
                cluster.next_version = version.clone();
                self.task(id, "cluster_upgrade", Effect::Upgrade(version))
            }
            "DeleteCluster" => {
                let cluster = self.cluster_mut(id)?;
                let (_, mut answer) = if cluster.state == "deleting" {
                    // Deleting again answers with the delete already under way.
                    let task = self
                        .tasks
                        .values()
                        .find(|t| t.cluster_id == id && matches!(t.effect, Effect::DeleteCluster));
                    let task_id = task.map(|t| t.id.clone()).unwrap_or_default();
                    (StatusCode::ACCEPTED, json!({ "task_id": task_id }))
                } else {
                    cluster.state = "deleting";
                    self.task(id, "cluster_delete", Effect::DeleteCluster)?
                };
                answer["cluster_id"] = json!(id);
                Ok((StatusCode::ACCEPTED, answer))
            }
            "DescribeTaskInfo" => match self.tasks.get(&route.task) {
                Some(task) => ok(task_json(task)),
                // The simulator's own code: the doc has none for a missing task.
                None => Err(error(404, "ErrorTaskNotFound", "the task is not found")),
            },
            _ => self.node_pool_action(route, &param, body),
        }
    }

    fn advance(&mut self, now: Instant) {
        let mut due: Vec<(Instant, String)> = self
            .tasks
            .values()
            .filter(|t| t.outcome.is_none() && t.until <= now)
            .map(|t| (t.until, t.id.clone()))
            .collect();
        due.sort();
        for (_, id) in due {
            self.finish(&id);
        }
    }

    /// Applies a task's effect when it completes (or undoes it when the task fails).
    fn finish(&mut self, task_id: &str) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        let ok = task.fail.is_none();
        task.outcome = Some(ok);
        let (cluster_id, effect) = (task.cluster_id.clone(), task.effect.clone());
        let Some(cluster) = self.clusters.get_mut(&cluster_id) else {
            return;
        };
        let pool_done = |pool: Option<&mut Pool>, ok: bool, failed_state: &'static str| {
            if let Some(pool) = pool {
                pool.state = if ok { "active" } else { failed_state };
                if ok {
                    pool.total = pool.desired;
                }
            }
        };
        match effect {
            Effect::CreateCluster if ok => {
                cluster.state = "running";
                for pool in cluster.pools.values_mut() {
                    pool_done(Some(pool), true, "failed");
                }
            }
            Effect::CreateCluster => cluster.state = "failed",
            Effect::Upgrade(version) => {
                cluster.state = "running";
                cluster.next_version.clear();
                if ok {
                    cluster.version = version;
                }
            }
            Effect::DeleteCluster if ok => {
                self.clusters.remove(&cluster_id);
            }
            Effect::DeleteCluster => cluster.state = "delete_failed",
            Effect::CreatePool(id) => pool_done(cluster.pools.get_mut(&id), ok, "failed"),
            Effect::ChangePool { pool, previous } => {
                // A failed change leaves the pool as it was.
                if let Some(pool) = cluster.pools.get_mut(&pool) {
                    if !ok {
                        pool.desired = previous;
                    }
                    pool_done(Some(pool), true, "active");
                }
            }
            Effect::DeletePool(id) if ok => {
                cluster.pools.remove(&id);
            }
            Effect::DeletePool(id) => pool_done(cluster.pools.get_mut(&id), false, "active"),
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        let hex = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}{}", &hex[..24])
    }

    fn cluster(&self, id: &str) -> Result<&Cluster, Response> {
        self.clusters.get(id).ok_or_else(|| cluster_not_found(id))
    }

    fn cluster_mut(&mut self, id: &str) -> Result<&mut Cluster, Response> {
        self.clusters
            .get_mut(id)
            .ok_or_else(|| cluster_not_found(id))
    }

    /// Starts a task. Cluster creates and deletes take the provision delay, everything else
    /// the change delay; the next task fails when the control says so.
    fn task(&mut self, cluster_id: &str, kind: &'static str, effect: Effect) -> Answer {
        let (delay, stages): (_, &'static [&'static str]) = match kind {
            "cluster_create" => (
                self.control.provision_delay(),
                &[
                    "CreateVPCResources",
                    "CreateMaster",
                    "InitCluster",
                    "CreateNodePools",
                ],
            ),
            "cluster_delete" => (
                self.control.provision_delay(),
                &["DeleteNodes", "DeleteMaster", "DeleteResources"],
            ),
            "cluster_upgrade" => (
                self.control.change_delay(),
                &["PreCheck", "UpgradeMaster", "UpgradeAddons"],
            ),
            _ => (self.control.change_delay(), &["Prepare", "Apply"]),
        };
        let id = self.next_id("T-");
        let now = Instant::now();
        let task = Task {
            id: id.clone(),
            cluster_id: cluster_id.to_string(),
            kind,
            stages,
            started: now,
            until: now + delay,
            created: now_string(),
            fail: self.control.take_task_failure(),
            effect,
            outcome: None,
        };
        self.tasks.insert(id.clone(), task);
        Ok((StatusCode::OK, json!({ "task_id": id })))
    }

    fn create_cluster(&mut self, body: &Value) -> Answer {
        let (name, region) = (text(body, "/name"), text(body, "/region_id"));
        let cluster_type = text(body, "/cluster_type");
        if name.is_empty() || region.is_empty() || cluster_type.is_empty() {
            return Err(bad("name, region_id and cluster_type are required"));
        }
        let id = self.next_id("c");
        let version = match text(body, "/kubernetes_version") {
            "" => "1.33.1-aliyun.1",
            version => version,
        };
        let mut pools = BTreeMap::new();
        let specs = body.get("nodepools").and_then(Value::as_array);
        for spec in specs.into_iter().flatten() {
            let pool = new_pool(self.next_id("np"), spec);
            pools.insert(pool.id.clone(), pool);
        }
        self.created += 1;
        let cluster = Cluster {
            seq: self.seq,
            id: id.clone(),
            name: name.into(),
            region: region.into(),
            cluster_type: cluster_type.into(),
            cluster_spec: text(body, "/cluster_spec").into(),
            version: version.into(),
            init_version: version.into(),
            next_version: String::new(),
            state: "initial",
            created: now_string(),
            tags: body.get("tags").cloned().unwrap_or(json!([])),
            pools,
        };
        self.clusters.insert(id.clone(), cluster);
        let (status, mut answer) = self.task(&id, "cluster_create", Effect::CreateCluster)?;
        answer["cluster_id"] = json!(id);
        Ok((status, answer))
    }

    fn list_clusters<'q>(&self, param: &impl Fn(&str) -> Option<&'q str>) -> Value {
        let number = |name: &str, default: usize| {
            let parsed = param(name).and_then(|v| v.parse::<usize>().ok());
            parsed.filter(|n| *n > 0).unwrap_or(default)
        };
        let (page, size) = (number("page_number", 1), number("page_size", 10).min(100));
        // A substring match (ACK's filter is not documented as exact), so callers must compare.
        let name = param("name").unwrap_or("");
        let mut matching: Vec<&Cluster> = self
            .clusters
            .values()
            .filter(|c| c.name.contains(name))
            .collect();
        matching.sort_by_key(|c| c.seq);
        let page_items = matching.iter().skip((page - 1) * size).take(size);
        json!({
            "clusters": page_items.map(|c| cluster_json(c)).collect::<Vec<_>>(),
            "page_info": { "page_number": page, "page_size": size, "total_count": matching.len() },
        })
    }

    fn node_pool_action<'q>(
        &mut self,
        route: &Route,
        param: &impl Fn(&str) -> Option<&'q str>,
        body: &Value,
    ) -> Answer {
        let (cluster_id, action) = (route.cluster.as_str(), route.action);
        let new_id = self.next_id("np");
        let cluster = self.cluster_mut(cluster_id)?;
        if action == "DescribeClusterNodePools" {
            let pools = cluster
                .pools
                .values()
                .map(|p| pool_json(p, &cluster.region));
            let pools: Vec<Value> = pools.collect();
            return Ok((StatusCode::OK, json!({ "nodepools": pools })));
        }
        if !matches!(cluster.state, "running" | "upgrading" | "updating") {
            return Err(wrong_state(cluster.state));
        }
        let pool_id = if action == "CreateClusterNodePool" {
            if text(body, "/nodepool_info/name").is_empty() {
                return Err(bad("nodepool_info.name is required"));
            }
            cluster
                .pools
                .insert(new_id.clone(), new_pool(new_id.clone(), body));
            new_id
        } else {
            route.pool.clone()
        };
        let Some(pool) = cluster.pools.get_mut(&pool_id) else {
            let message = format!("The specified node pool {pool_id} is not found.");
            return Err(error(404, "ErrorNodePoolNotFound", message));
        };
        let previous = pool.desired;
        let mut resize = |desired: i64, state: &'static str| {
            pool.desired = desired.max(0);
            pool.state = state;
            Effect::ChangePool {
                pool: pool_id.clone(),
                previous,
            }
        };
        let (kind, effect) = match action {
            "CreateClusterNodePool" => ("nodepool_create", Effect::CreatePool(pool_id.clone())),
            "ScaleClusterNodePool" => match int(body, "/count") {
                Some(count @ 1..=500) => ("nodepool_scaleout", resize(previous + count, "scaling")),
                _ => return Err(bad("count must be 1..500")),
            },
            "ModifyClusterNodePool" => {
                if let Some(auto) = body.get("auto_scaling") {
                    let enable = auto.get("enable").and_then(Value::as_bool);
                    let enable = enable.unwrap_or(pool.autoscaling);
                    let min = int(auto, "/min_instances").unwrap_or(pool.min);
                    let max = int(auto, "/max_instances").unwrap_or(pool.max);
                    if enable && (min < 0 || min > max) {
                        return Err(bad("auto_scaling bounds are invalid"));
                    }
                    (pool.autoscaling, pool.min, pool.max) = (enable, min, max);
                }
                let desired = int(body, "/scaling_group/desired_size").unwrap_or(previous);
                if desired < 0 {
                    return Err(bad("desired_size cannot be negative"));
                }
                ("nodepool_update", resize(desired, "updating"))
            }
            "AttachInstancesToNodePool" => {
                let instances = body.get("instances").and_then(Value::as_array);
                match instances.map_or(0, Vec::len) as i64 {
                    0 => return Err(bad("instances is required")),
                    n => ("nodepool_attach", resize(previous + n, "scaling")),
                }
            }
            "RemoveNodePoolNodes" => {
                let nodes =
                    param("nodes").and_then(|n| serde_json::from_str::<Vec<String>>(n).ok());
                match nodes.unwrap_or_default().len() as i64 {
                    0 => return Err(bad("nodes is required (a JSON array string)")),
                    n => ("nodepool_remove_nodes", resize(previous - n, "removing")),
                }
            }
            "DeleteClusterNodepool" => {
                if pool.total > 0 && param("force") != Some("true") {
                    // The simulator's own code: a pool with nodes needs force=true.
                    let message = "the node pool still has nodes";
                    return Err(error(400, "ErrorNodePoolNotEmpty", message));
                }
                pool.state = "deleting";
                ("nodepool_delete", Effect::DeletePool(pool_id.clone()))
            }
            _ => return Err(bad("unknown node pool action")),
        };
        let (status, mut answer) = self.task(cluster_id, kind, effect)?;
        answer["nodepool_id"] = json!(pool_id);
        Ok((status, answer))
    }
}

fn cluster_not_found(id: &str) -> Response {
    let message = format!("The specified cluster {id} is not found.");
    error(404, "ErrorClusterNotFound", message)
}

/// A pool as CreateClusterNodePool (or CreateCluster's `nodepools[]`) describes it.
fn new_pool(id: String, spec: &Value) -> Pool {
    let auto = spec.get("auto_scaling").cloned().unwrap_or(json!({}));
    let autoscaling = auto.get("enable").and_then(Value::as_bool).unwrap_or(false);
    let min = int(&auto, "/min_instances").unwrap_or(0);
    let desired = int(spec, "/scaling_group/desired_size").or_else(|| int(spec, "/count"));
    Pool {
        id,
        name: text(spec, "/nodepool_info/name").into(),
        state: "initial",
        desired: desired.unwrap_or(if autoscaling { min } else { 0 }),
        total: 0,
        autoscaling,
        min,
        max: int(&auto, "/max_instances").unwrap_or(0),
        scaling_group: spec.get("scaling_group").cloned().unwrap_or(json!({})),
        kubernetes_config: spec.get("kubernetes_config").cloned().unwrap_or(json!({})),
    }
}

fn cluster_json(c: &Cluster) -> Value {
    let size: i64 = c.pools.values().map(|p| p.total).sum();
    let master_url =
        json!({ "api_server_endpoint": format!("https://{}.{}.cs.example:6443", c.id, c.region) });
    let mut value = json!({
        "cluster_id": c.id, "name": c.name, "cluster_type": c.cluster_type,
        "cluster_spec": c.cluster_spec, "profile": "Default", "state": c.state, "size": size,
        "region_id": c.region, "current_version": c.version, "init_version": c.init_version,
        "master_url": master_url.to_string(), "created": c.created, "updated": now_string(),
        "tags": c.tags, "deletion_protection": false,
    });
    if !c.next_version.is_empty() {
        value["next_version"] = json!(c.next_version);
    }
    value
}

fn pool_json(p: &Pool, region: &str) -> Value {
    let mut scaling_group = p.scaling_group.clone();
    scaling_group["desired_size"] = json!(p.desired);
    json!({
        "nodepool_info": { "nodepool_id": p.id, "name": p.name, "type": "ess", "is_default": false, "region_id": region },
        "status": {
            "state": p.state, "total_nodes": p.total, "healthy_nodes": p.total, "serving_nodes": p.total,
            "initial_nodes": (p.desired - p.total).max(0), "failed_nodes": 0, "offline_nodes": 0,
            "removing_nodes": (p.total - p.desired).max(0),
        },
        "scaling_group": scaling_group,
        "kubernetes_config": p.kubernetes_config,
        "auto_scaling": { "enable": p.autoscaling, "min_instances": p.min, "max_instances": p.max, "type": "cpu" },
    })
}

fn task_json(t: &Task) -> Value {
    let state = match t.outcome {
        None => "running",
        Some(true) => "success",
        Some(false) => "fail",
    };
    let total = t
        .until
        .saturating_duration_since(t.started)
        .as_secs_f64()
        .max(1e-9);
    let progress = (t.started.elapsed().as_secs_f64() / total).min(1.0);
    let current = ((progress * t.stages.len() as f64) as usize).min(t.stages.len() - 1);
    let stages: Vec<Value> = t
        .stages
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let stage_state = if t.outcome == Some(true) || i < current {
                "success"
            } else if i == current {
                state
            } else {
                "pending"
            };
            json!({ "state": stage_state, "message": name })
        })
        .collect();
    let mut value = json!({
        "task_id": t.id, "cluster_id": t.cluster_id, "task_type": t.kind, "state": state,
        "created": t.created, "updated": now_string(), "current_stage": t.stages[current],
        "stages": stages, "target": { "id": t.cluster_id, "type": "cluster" },
    });
    if let (Some(false), Some(code)) = (t.outcome, &t.fail) {
        value["error"] =
            json!({ "code": code, "message": format!("task {} failed: {code}", t.id) });
    }
    value
}
