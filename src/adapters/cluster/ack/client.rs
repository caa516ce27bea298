//! ACK (CS API 2015-12-15, ROA style) requests: pure builders that return signed
//! `http::Request`s, the wire shapes of the responses, and the one `send`.

use std::time::{SystemTime, UNIX_EPOCH};

use http::Method;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{API_VERSION, JSON_CONTENT_TYPE, VENDOR, action, error};
use crate::adapters::signing::alibaba as sign;
use crate::adapters::{
    CallContext, Credentials,
    error::{ErrorClass, Result, VendorError},
    transport::{Idempotency, RawResponse, VendorHttp},
};

/// Where, as whom and when one request is made. The secret never leaves this struct except
/// into the HMAC.
pub struct Stamp<'a> {
    /// Base URL, such as `https://cs.cn-hangzhou.aliyuncs.com` or `http://127.0.0.1:PORT`.
    pub endpoint: &'a str,
    pub access_key_id: &'a str,
    pub access_key_secret: &'a str,
    /// `x-acs-date`, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: &'a str,
    /// `x-acs-signature-nonce`, unique per request (a new one for every attempt).
    pub nonce: &'a str,
}

impl std::fmt::Debug for Stamp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamp")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("date", &self.date)
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// One ACK action, before signing. `path` is already percent-encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub action: &'static str,
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Call {
    fn new(action: &'static str, method: Method, path: String) -> Call {
        Call {
            action,
            method,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    fn query(mut self, name: &str, value: impl Into<String>) -> Call {
        self.query.push((name.to_string(), value.into()));
        self
    }

    fn json(mut self, body: &Value) -> Call {
        // Serialising a Value cannot fail; the bytes are hashed and sent as they are.
        self.body = Some(serde_json::to_vec(body).unwrap_or_default());
        self
    }
}

/// A path segment, percent-encoded the way the SDK encodes path parameters.
fn seg(id: &str) -> String {
    sign::percent_encode(id)
}

fn bad_request(action: &'static str, message: impl Into<String>) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        action,
        "BadRequest",
        message,
    )
}

/// Signs `call` with V3 `ACS3-HMAC-SHA256` and builds the request exactly as signed.
pub fn signed(stamp: &Stamp<'_>, call: &Call) -> Result<http::Request<Vec<u8>>> {
    let base: http::Uri = stamp
        .endpoint
        .parse()
        .map_err(|_| bad_request(call.action, format!("bad endpoint {:?}", stamp.endpoint)))?;
    let (Some(scheme), Some(authority)) = (base.scheme_str(), base.authority()) else {
        return Err(bad_request(
            call.action,
            format!("endpoint {:?} needs a scheme and a host", stamp.endpoint),
        ));
    };
    let path = format!("{}{}", base.path().trim_end_matches('/'), call.path);
    let body = call.body.clone().unwrap_or_default();
    let hashed = sign::sha256_hex(&body);
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), authority.to_string()),
        ("x-acs-action".into(), call.action.into()),
        ("x-acs-version".into(), API_VERSION.into()),
        ("x-acs-date".into(), stamp.date.into()),
        ("x-acs-signature-nonce".into(), stamp.nonce.into()),
        ("x-acs-content-sha256".into(), hashed.clone()),
        ("accept".into(), "application/json".into()),
    ];
    if call.body.is_some() {
        headers.push(("content-type".into(), JSON_CONTENT_TYPE.into()));
    }
    let authorization = sign::acs3_authorization(
        stamp.access_key_id,
        stamp.access_key_secret,
        &sign::Acs3Input {
            method: call.method.as_str(),
            path: &path,
            query: &call.query,
            headers: &headers,
            hashed_payload: &hashed,
        },
    );
    let query = call
        .query
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let url = if query.is_empty() {
        format!("{scheme}://{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}?{query}")
    };
    let mut builder = http::Request::builder()
        .method(call.method.clone())
        .uri(url);
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    builder
        .header(http::header::AUTHORIZATION, authorization)
        .body(body)
        // http's errors name the part, never a header value, so no secret can leak here.
        .map_err(|err| bad_request(call.action, format!("cannot build the request: {err}")))
}

pub fn create_cluster_request(stamp: &Stamp<'_>, body: &Value) -> Result<http::Request<Vec<u8>>> {
    signed(
        stamp,
        &Call::new(action::CREATE_CLUSTER, Method::POST, "/clusters".into()).json(body),
    )
}

pub fn describe_clusters_v1_request(
    stamp: &Stamp<'_>,
    name: Option<&str>,
    page_number: u32,
    page_size: u32,
) -> Result<http::Request<Vec<u8>>> {
    let mut call = Call::new(
        action::DESCRIBE_CLUSTERS_V1,
        Method::GET,
        "/api/v1/clusters".into(),
    );
    if let Some(name) = name {
        call = call.query("name", name);
    }
    let call = call
        .query("page_number", page_number.to_string())
        .query("page_size", page_size.to_string());
    signed(stamp, &call)
}

pub fn describe_cluster_detail_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/clusters/{}", seg(cluster_id));
    signed(
        stamp,
        &Call::new(action::DESCRIBE_CLUSTER_DETAIL, Method::GET, path),
    )
}

pub fn describe_cluster_user_kubeconfig_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/k8s/{}/user_config", seg(cluster_id));
    signed(
        stamp,
        &Call::new(action::DESCRIBE_CLUSTER_USER_KUBECONFIG, Method::GET, path),
    )
}

pub fn upgrade_cluster_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    next_version: &str,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/api/v2/clusters/{}/upgrade", seg(cluster_id));
    signed(
        stamp,
        &Call::new(action::UPGRADE_CLUSTER, Method::POST, path).json(&json!({
            "next_version": next_version
        })),
    )
}

/// DeleteCluster's optional query parameters; the adapter sends none (ACK's defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteClusterOptions {
    pub keep_slb: Option<bool>,
    pub retain_all_resources: Option<bool>,
    /// Sent as one JSON-array string, as the SDK does.
    pub retain_resources: Vec<String>,
}

pub fn delete_cluster_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    options: &DeleteClusterOptions,
) -> Result<http::Request<Vec<u8>>> {
    let mut call = Call::new(
        action::DELETE_CLUSTER,
        Method::DELETE,
        format!("/clusters/{}", seg(cluster_id)),
    );
    if let Some(keep) = options.keep_slb {
        call = call.query("keep_slb", keep.to_string());
    }
    if let Some(retain) = options.retain_all_resources {
        call = call.query("retain_all_resources", retain.to_string());
    }
    if !options.retain_resources.is_empty() {
        call = call.query(
            "retain_resources",
            json!(options.retain_resources).to_string(),
        );
    }
    signed(stamp, &call)
}

pub fn create_cluster_node_pool_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    body: &Value,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/clusters/{}/nodepools", seg(cluster_id));
    signed(
        stamp,
        &Call::new(action::CREATE_CLUSTER_NODE_POOL, Method::POST, path).json(body),
    )
}

pub fn describe_cluster_node_pools_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/clusters/{}/nodepools", seg(cluster_id));
    signed(
        stamp,
        &Call::new(action::DESCRIBE_CLUSTER_NODE_POOLS, Method::GET, path),
    )
}

/// `count` is the number of nodes to ADD (vendor-apis.md §1.5), not the target size.
pub fn scale_cluster_node_pool_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    pool_id: &str,
    count: i32,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/clusters/{}/nodepools/{}", seg(cluster_id), seg(pool_id));
    signed(
        stamp,
        &Call::new(action::SCALE_CLUSTER_NODE_POOL, Method::POST, path)
            .json(&json!({ "count": count })),
    )
}

pub fn modify_cluster_node_pool_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    pool_id: &str,
    body: &Value,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/clusters/{}/nodepools/{}", seg(cluster_id), seg(pool_id));
    signed(
        stamp,
        &Call::new(action::MODIFY_CLUSTER_NODE_POOL, Method::PUT, path).json(body),
    )
}

pub fn delete_cluster_nodepool_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    pool_id: &str,
    force: bool,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/clusters/{}/nodepools/{}", seg(cluster_id), seg(pool_id));
    signed(
        stamp,
        &Call::new(action::DELETE_CLUSTER_NODEPOOL, Method::DELETE, path)
            .query("force", force.to_string()),
    )
}

pub fn attach_instances_to_node_pool_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    pool_id: &str,
    instance_ids: &[String],
) -> Result<http::Request<Vec<u8>>> {
    let path = format!(
        "/clusters/{}/nodepools/{}/attach",
        seg(cluster_id),
        seg(pool_id)
    );
    signed(
        stamp,
        &Call::new(action::ATTACH_INSTANCES_TO_NODE_POOL, Method::POST, path)
            .json(&json!({ "instances": instance_ids })),
    )
}

/// `nodes` are Kubernetes node names, sent as one JSON-array string.
pub fn remove_node_pool_nodes_request(
    stamp: &Stamp<'_>,
    cluster_id: &str,
    pool_id: &str,
    nodes: &[String],
    release_node: bool,
    drain_node: bool,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!(
        "/clusters/{}/nodepools/{}/nodes",
        seg(cluster_id),
        seg(pool_id)
    );
    let call = Call::new(action::REMOVE_NODE_POOL_NODES, Method::DELETE, path)
        .query("nodes", json!(nodes).to_string())
        .query("release_node", release_node.to_string())
        .query("drain_node", drain_node.to_string());
    signed(stamp, &call)
}

pub fn describe_task_info_request(
    stamp: &Stamp<'_>,
    task_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/tasks/{}", seg(task_id));
    signed(
        stamp,
        &Call::new(action::DESCRIBE_TASK_INFO, Method::GET, path),
    )
}

/// Sends one ACK action through the shared transport. `build` is called for every attempt
/// with a fresh date and nonce, so each attempt is signed anew.
pub async fn send<B>(
    http: &VendorHttp,
    ctx: &CallContext,
    endpoint: &str,
    operation: &'static str,
    idempotency: Idempotency,
    build: B,
) -> Result<RawResponse>
where
    B: Fn(&Stamp<'_>) -> Result<http::Request<Vec<u8>>>,
{
    let Credentials::AccessKey { id, secret } = &ctx.credentials else {
        return Err(VendorError::new(
            ErrorClass::CredentialsInvalid,
            VENDOR,
            operation,
            "WrongCredentialKind",
            "ACK needs an access key (id and secret)",
        ));
    };
    http.send(
        &ctx.limit_key(VENDOR),
        operation,
        idempotency,
        || {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let date = sign::acs_date(now);
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            build(&Stamp {
                endpoint,
                access_key_id: id,
                access_key_secret: secret,
                date: &date,
                nonce: &nonce,
            })
        },
        error::parse_error,
    )
    .await
}

// ---- Response shapes (snake_case; every field optional, because the doc lists more than
// it guarantees).

/// What a mutation answers: ids plus the task to poll.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Accepted {
    pub cluster_id: String,
    pub nodepool_id: String,
    pub task_id: String,
    pub request_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Cluster {
    pub cluster_id: String,
    pub name: String,
    pub state: String,
    pub current_version: String,
    pub region_id: String,
    pub cluster_type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterPage {
    pub clusters: Vec<Cluster>,
    pub page_info: PageInfo,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PageInfo {
    #[serde(deserialize_with = "lenient_int")]
    pub page_number: i64,
    #[serde(deserialize_with = "lenient_int")]
    pub page_size: i64,
    #[serde(deserialize_with = "lenient_int")]
    pub total_count: i64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct UserKubeconfig {
    pub config: String,
    pub expiration: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodePoolList {
    pub nodepools: Vec<NodePool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodePool {
    pub nodepool_info: NodePoolInfo,
    pub status: NodePoolStatus,
    pub scaling_group: ScalingGroup,
    pub auto_scaling: AutoScaling,
    pub kubernetes_config: KubernetesConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodePoolInfo {
    pub nodepool_id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodePoolStatus {
    pub state: String,
    #[serde(deserialize_with = "lenient_int")]
    pub total_nodes: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ScalingGroup {
    #[serde(deserialize_with = "lenient_int")]
    pub desired_size: i64,
    pub instance_types: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AutoScaling {
    pub enable: bool,
    #[serde(deserialize_with = "lenient_int")]
    pub min_instances: i64,
    #[serde(deserialize_with = "lenient_int")]
    pub max_instances: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KubernetesConfig {
    pub labels: Vec<Tag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskInfo {
    pub task_id: String,
    pub state: String,
    pub current_stage: String,
    pub error: Option<TaskError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskError {
    pub code: String,
    pub message: String,
}

/// A count that may arrive as a number, a numeric string or null.
fn lenient_int<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<i64, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or_default(),
        Value::String(s) => s.trim().parse().unwrap_or_default(),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp<'static> = Stamp {
        endpoint: "https://cs.cn-hangzhou.aliyuncs.com",
        access_key_id: "YourAccessKeyId",
        access_key_secret: "YourAccessKeySecret",
        date: "2023-10-26T10:22:32Z",
        nonce: "3156853299f313e23d1673dc12e1703d",
    };

    fn authorization(request: &http::Request<Vec<u8>>) -> &str {
        request.headers()["authorization"].to_str().unwrap()
    }

    #[test]
    fn describe_clusters_v1_builder_reproduces_a3() {
        let request = describe_clusters_v1_request(&STAMP, None, 1, 10).unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().to_string(),
            "https://cs.cn-hangzhou.aliyuncs.com/api/v1/clusters?page_number=1&page_size=10"
        );
        assert!(authorization(&request).ends_with(
            "Signature=0d7a9f6be0c8140babb1cc1a36e57a902bea602123ee42b36c51dbcac50c433e"
        ));
        assert!(request.body().is_empty());
        assert!(request.headers().get("content-type").is_none());
    }

    #[test]
    fn scale_builder_reproduces_a4() {
        let request = scale_cluster_node_pool_request(&STAMP, "c-test", "np-test", 2).unwrap();
        assert_eq!(request.body(), br#"{"count":2}"#);
        assert_eq!(request.headers()["content-type"], JSON_CONTENT_TYPE);
        assert_eq!(
            authorization(&request),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=content-type;host;\
             x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=4df2fa2ec15a8ced294a42aeb0004a716f561b6cb4d477d3ebc2258046b176ca"
        );
    }

    #[test]
    fn delete_builder_reproduces_a6() {
        let options = DeleteClusterOptions {
            keep_slb: Some(false),
            retain_resources: vec!["sg-1".into(), "lb-2".into()],
            ..Default::default()
        };
        let request = delete_cluster_request(&STAMP, "c-test", &options).unwrap();
        assert_eq!(request.method(), Method::DELETE);
        assert_eq!(
            request.uri().query(),
            Some("keep_slb=false&retain_resources=%5B%22sg-1%22%2C%22lb-2%22%5D")
        );
        assert!(authorization(&request).ends_with(
            "Signature=f0221b196bf044ae2301d18f95c567e7a4a757cdfcdd739d7c233116618bb62b"
        ));
    }

    #[test]
    fn host_header_carries_the_port_of_an_override() {
        let stamp = Stamp {
            endpoint: "http://127.0.0.1:8123/",
            ..STAMP
        };
        let request = describe_cluster_detail_request(&stamp, "c-1").unwrap();
        assert_eq!(request.headers()["host"], "127.0.0.1:8123");
        assert_eq!(
            request.uri().to_string(),
            "http://127.0.0.1:8123/clusters/c-1"
        );
        assert!(authorization(&request).contains("SignedHeaders=host;x-acs-action;"));
    }

    #[test]
    fn ids_are_encoded_as_path_segments() {
        let request = describe_task_info_request(&STAMP, "T-1/../x y").unwrap();
        assert_eq!(request.uri().path(), "/tasks/T-1%2F..%2Fx%20y");
    }

    #[test]
    fn remove_nodes_sends_json_array_strings() {
        let request = remove_node_pool_nodes_request(
            &STAMP,
            "c-1",
            "np-1",
            &["cn-hangzhou.10.0.0.1".into()],
            true,
            false,
        )
        .unwrap();
        assert_eq!(
            request.uri().query(),
            Some("nodes=%5B%22cn-hangzhou.10.0.0.1%22%5D&release_node=true&drain_node=false")
        );
    }

    #[test]
    fn a_bad_endpoint_is_a_configuration_error_without_secrets() {
        let stamp = Stamp {
            endpoint: "not a url",
            ..STAMP
        };
        let err = describe_task_info_request(&stamp, "T-1").unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert!(!err.to_string().contains("YourAccessKeySecret"));
        assert!(!format!("{stamp:?}").contains("YourAccessKeySecret"));
    }

    #[test]
    fn counts_parse_leniently() {
        let pool: NodePool = serde_json::from_str(
            r#"{"nodepool_info":{"nodepool_id":"np-1","name":"a"},
                "status":{"state":"active","total_nodes":"3"},
                "scaling_group":{"desired_size":3.0,"instance_types":["ecs.g7.large"]},
                "auto_scaling":{"enable":false,"min_instances":null}}"#,
        )
        .unwrap();
        assert_eq!(pool.status.total_nodes, 3);
        assert_eq!(pool.scaling_group.desired_size, 3);
        assert_eq!(pool.auto_scaling.min_instances, 0);
    }
}
