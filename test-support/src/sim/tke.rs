//! Tencent Cloud TKE simulator (API 2018-05-25): `POST /` with `X-TC-Action`, TC3-HMAC-SHA256
//! verified from the received headers and body (its own implementation, not the adapter's),
//! errors as HTTP 200 `{"Response":{"Error":{Code,Message},"RequestId"}}`.
//!
//! State changes are computed from timestamps when state is next read: a cluster is `Creating`
//! for `provision_delay`, `Upgrading` and node pool changes take `change_delay`, a delete takes
//! `provision_delay` and then the cluster is gone. A new cluster has no public (extranet)
//! endpoint until CreateClusterEndpoint opened one (`change_delay`).
//!
//! Assumptions where vendor-apis.md is silent (UNCONFIRMED): the "extranet not enabled" code
//! `FailedOperation.ClusterNotEnableExtranet`; `ResourceInUse` for a second CreateClusterEndpoint;
//! a `Retry-After` header on throttling when a hint is configured; the ClusterName filter matches
//! substrings; a failed pool creation removes the pool; a failed scale restores the old size; a
//! failed cluster task leaves the cluster `Abnormal`. Instance ids must start with `ins-` to be
//! added; ids containing `slow` time out.
//!
//! Here: the public API, HTTP and signature checks. `state`: clusters, pools, instances and
//! their timed transitions. `actions`: the TKE actions and their parameters.

mod actions;
mod state;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Injected, SimControl, loopback_listener, serve_on};
use state::World;

const SECRET_ID: &str = "AKIDsimulatedTke00000000000000000000";
const SECRET_KEY: &str = "simulatedTkeSecretKey00000000000";
const VERSION: &str = "2018-05-25";
const MAX_SKEW_SECS: u64 = 300;
pub const EXTRANET_NOT_ENABLED: &str = "FailedOperation.ClusterNotEnableExtranet";

/// A TKE error: (code, message).
type Fault = (&'static str, String);
type Answer = Result<Value, Fault>;

pub struct TkeSim {
    pub control: SimControl,
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
}

#[derive(Clone)]
struct Shared {
    control: SimControl,
    world: Arc<Mutex<World>>,
}

impl TkeSim {
    /// Starts on 127.0.0.1:0. `kubeconfig`: YAML handed out for every running cluster.
    pub async fn start(kubeconfig: String) -> TkeSim {
        TkeSim::start_on(loopback_listener().await, kubeconfig)
    }

    /// Starts on `listener` (the `flotilla-sim` binary binds the address it was given).
    pub fn start_on(listener: tokio::net::TcpListener, kubeconfig: String) -> TkeSim {
        let control = SimControl::default();
        let world = Arc::new(Mutex::new(World {
            kubeconfig,
            clusters: BTreeMap::new(),
            created: 0,
            seq: 0,
        }));
        let shared = Shared {
            control: control.clone(),
            world: world.clone(),
        };
        let router = Router::new().route("/", any(handle)).with_state(shared);
        let addr = serve_on(listener, router);
        TkeSim {
            control,
            addr,
            world,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (SecretId, SecretKey) it accepts.
    pub fn credentials(&self) -> (String, String) {
        (SECRET_ID.into(), SECRET_KEY.into())
    }

    fn world(&self) -> MutexGuard<'_, World> {
        let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        world.settle(Instant::now());
        world
    }

    /// Clusters ever created (deleted ones included).
    pub fn clusters_created(&self) -> usize {
        self.world().created
    }

    /// Clusters that exist now (not deleted).
    pub fn cluster_ids(&self) -> Vec<String> {
        self.world().clusters.keys().cloned().collect()
    }

    /// TKE's raw ClusterStatus.
    pub fn cluster_state(&self, id: &str) -> Option<String> {
        self.world()
            .clusters
            .get(id)
            .map(|c| c.status().to_string())
    }

    pub fn cluster_version(&self, id: &str) -> Option<String> {
        self.world().clusters.get(id).map(|c| c.version.clone())
    }

    /// The pool's desired size (its scaling group's DesiredCapacity).
    pub fn node_pool_size(&self, cluster_id: &str, pool_id: &str) -> Option<i32> {
        let world = self.world();
        let pool = world.clusters.get(cluster_id)?.pools.get(pool_id)?;
        Some(pool.desired as i32)
    }

    pub fn node_pool_ids(&self, cluster_id: &str) -> Vec<String> {
        self.world()
            .clusters
            .get(cluster_id)
            .map(|c| c.pools.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The cluster's public (extranet) API endpoint: "closed", "opening" or "open".
    pub fn extranet_endpoint(&self, cluster_id: &str) -> Option<&'static str> {
        self.world()
            .clusters
            .get(cluster_id)
            .map(|c| match c.extranet {
                state::Endpoint::Closed => "closed",
                state::Endpoint::Opening(_) => "opening",
                state::Endpoint::Open => "open",
            })
    }

    /// The source CIDRs the extranet endpoint allows (ModifyClusterEndpointSP), as received.
    pub fn extranet_policies(&self, cluster_id: &str) -> Vec<String> {
        self.world()
            .clusters
            .get(cluster_id)
            .map(|c| c.extranet_policies.clone())
            .unwrap_or_default()
    }

    /// The CreateCluster body the cluster was made from, as received.
    pub fn create_request(&self, cluster_id: &str) -> Option<Value> {
        self.world()
            .clusters
            .get(cluster_id)
            .map(|c| c.request.clone())
    }

    /// (instance id, LAN IP) of every instance in a pool, added and scaled. With the default
    /// NodeNameType `lan-ip`, the LAN IP is the Kubernetes node name.
    pub fn instances(&self, cluster_id: &str, pool_id: &str) -> Vec<(String, String)> {
        let world = self.world();
        world
            .clusters
            .get(cluster_id)
            .and_then(|c| c.pools.get(pool_id))
            .map(|p| {
                p.instances
                    .iter()
                    .map(|i| (i.id.clone(), i.lan_ip.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

// ---- HTTP ----

fn envelope(mut fields: Value) -> Value {
    fields["RequestId"] = json!(uuid::Uuid::new_v4().to_string());
    json!({ "Response": fields })
}

fn error_body(code: &str, message: &str) -> Value {
    envelope(json!({"Error": {"Code": code, "Message": message}}))
}

fn reply(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(sim): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(latency) = sim.control.latency() {
        tokio::time::sleep(latency).await;
    }
    let action = header(&headers, "x-tc-action").to_string();
    let account = match verify(&method, &uri, &headers, &body, unix_now()) {
        Ok(account) => account,
        Err((code, message)) => {
            sim.control.record(&action, "", "signature");
            return reply(error_body(code, &message));
        }
    };
    match sim.control.roll() {
        Injected::Throttle => {
            sim.control.record(&action, &account, "throttled");
            let mut response = reply(error_body(
                "RequestLimitExceeded",
                "Your current request times equals to `21` in a second, which exceeds the frequency limit `20` for a second. Please reduce the frequency of calls.",
            ));
            if let Some(hint) = sim.control.throttle_retry_after() {
                let value = format!("{}", hint.as_secs_f64().ceil() as u64);
                if let Ok(value) = value.parse::<axum::http::HeaderValue>() {
                    response.headers_mut().insert("retry-after", value);
                }
            }
            return response;
        }
        Injected::ServerError => {
            sim.control.record(&action, &account, "server_error");
            if fastrand::bool() {
                return (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>").into_response();
            }
            return reply(error_body(
                "InternalError",
                "An internal error has occurred. Retry your request.",
            ));
        }
        Injected::None => {}
    }
    let answer = if header(&headers, "x-tc-region").is_empty() {
        Err((
            "MissingParameter",
            "The parameter `Region` is required.".into(),
        ))
    } else if header(&headers, "x-tc-version") != VERSION {
        Err((
            "NoSuchVersion",
            format!(
                "version {:?} is not supported",
                header(&headers, "x-tc-version")
            ),
        ))
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(params @ Value::Object(_)) => {
                let mut world = sim.world.lock().unwrap_or_else(|p| p.into_inner());
                world.settle(Instant::now());
                world.dispatch(&action, &params, &sim.control)
            }
            _ => Err((
                "InvalidParameter",
                "the request body is not a JSON object".into(),
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
            reply(error_body(code, &message))
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD` (with `time`: `YYYY-MM-DDTHH:MM:SSZ`) of a Unix timestamp, in UTC.
fn utc(ts: u64, time: bool) -> String {
    let days = (ts / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let secs = ts % 86_400;
    if time {
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Checks a request's TC3 signature as Tencent does, recomputing it from what arrived. Returns
/// the SecretId it was signed with.
fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
) -> Result<String, Fault> {
    let bad = |message: &str| ("AuthFailure.SignatureFailure", message.to_string());
    let invalid = |message: &str| ("AuthFailure.InvalidAuthorization", message.to_string());
    let authorization = header(headers, "authorization");
    let rest = authorization
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or_else(|| invalid("Authorization must start with `TC3-HMAC-SHA256 `"))?;
    let mut parts = BTreeMap::new();
    for part in rest.split(", ") {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| invalid("Authorization is malformed"))?;
        parts.insert(key, value);
    }
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        parts.get("Credential"),
        parts.get("SignedHeaders"),
        parts.get("Signature"),
    ) else {
        return Err(invalid(
            "Authorization needs Credential, SignedHeaders and Signature",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, terminator] = scope[..] else {
        return Err(invalid("the credential scope is malformed"));
    };
    let timestamp: u64 = header(headers, "x-tc-timestamp")
        .parse()
        .map_err(|_| invalid("X-TC-Timestamp is missing or not a number"))?;
    if now.abs_diff(timestamp) > MAX_SKEW_SECS {
        return Err((
            "AuthFailure.SignatureExpire",
            format!("Signature expired. Timestamp is {timestamp}, server time is {now}."),
        ));
    }
    if secret_id != SECRET_ID {
        return Err((
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found.".into(),
        ));
    }
    if service != "tke" || terminator != "tc3_request" || date != utc(timestamp, false) {
        return Err(bad(
            "The credential scope does not match the service or the timestamp's UTC date.",
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"content-type") || !names.contains(&"host") {
        return Err(bad("SignedHeaders must include content-type and host."));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let value = header(headers, name).trim();
        let value = if *name == "x-tc-action" {
            value.to_ascii_lowercase()
        } else {
            value.to_string()
        };
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        uri.path(),
        uri.query().unwrap_or_default(),
        hex::encode(Sha256::digest(body))
    );
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = hmac(
        &hmac(&hmac(format!("TC3{SECRET_KEY}").as_bytes(), date), service),
        "tc3_request",
    );
    if hex::encode(hmac(&key, &string_to_sign)) != *signature {
        return Err(bad(
            "The provided credentials could not be validated. Please check your signature is correct.",
        ));
    }
    Ok(secret_id.to_string())
}
