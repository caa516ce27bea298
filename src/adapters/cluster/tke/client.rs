//! Pure request builders for TKE 2018-05-25 (every call is `POST /` with `X-TC-Action` and a JSON
//! body, signed with TC3-HMAC-SHA256; the bodies made from specs come from `spec`), and the one
//! `send` helper that hands a builder to `VendorHttp::send` so every attempt is built and signed
//! afresh.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{CONTENT_TYPE, PAGE_LIMIT, SERVICE, VENDOR, VERSION, action, error::parse_error, spec};
use crate::adapters::signing::tencent::{self as sign, SigningInput};
use crate::adapters::{
    CallContext, Credentials,
    cluster::{ClusterSpec, NodePoolSpec},
    error::{ErrorClass, Result, VendorError},
    transport::{Idempotency, VendorHttp},
};

/// Where a request goes and whom it is signed as. Not `Debug`: it holds the secret.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// Base URL, such as `https://tke.tencentcloudapi.com` or `http://127.0.0.1:8080`.
    pub endpoint: &'a str,
    /// `X-TC-Region`; left out when empty.
    pub region: &'a str,
    pub secret_id: &'a str,
    pub secret_key: &'a str,
}

pub(super) fn invalid(operation: &'static str, message: impl Into<String>) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        "",
        message,
    )
}

/// `(url, host)`: the URL always has the path `/`; the host keeps a port when there is one, as
/// the `Host` header will.
fn url_and_host(endpoint: &str, action: &'static str) -> Result<(String, String)> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| invalid(action, format!("endpoint {endpoint:?} is not a URL")))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(invalid(
            action,
            format!("endpoint {endpoint:?} needs a scheme and a host"),
        ));
    };
    Ok((
        format!("{scheme}://{authority}/"),
        authority.as_str().to_ascii_lowercase(),
    ))
}

/// One signed TKE call: `action` with `body`, at `timestamp` (Unix seconds).
pub fn action_request(
    target: &Target<'_>,
    action: &'static str,
    body: &Value,
    timestamp: u64,
) -> Result<http::Request<Vec<u8>>> {
    let payload = serde_json::to_vec(body).map_err(|err| invalid(action, err.to_string()))?;
    let (url, host) = url_and_host(target.endpoint, action)?;
    let authorization = sign::authorization(
        target.secret_id,
        target.secret_key,
        &SigningInput {
            method: "POST",
            host: &host,
            content_type: CONTENT_TYPE,
            payload: &payload,
            service: SERVICE,
            timestamp,
        },
    );
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(http::header::HOST, host)
        .header("X-TC-Action", action)
        .header("X-TC-Version", VERSION)
        .header("X-TC-Timestamp", timestamp.to_string())
        .header("X-TC-Language", "en-US")
        .header(http::header::AUTHORIZATION, authorization);
    if !target.region.is_empty() {
        builder = builder.header("X-TC-Region", target.region);
    }
    // http's errors never quote header values, so the signature cannot leak through them.
    builder
        .body(payload)
        .map_err(|err| invalid(action, format!("request does not build: {err}")))
}

// ---- read builders ----

pub fn describe_cluster_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterIds": [cluster_id], "Offset": 0, "Limit": 1});
    action_request(target, action::DESCRIBE_CLUSTERS, &body, timestamp)
}

/// One page of clusters whose name matches `name` (the vendor's filter; callers still compare
/// names exactly).
pub fn describe_clusters_by_name_request(
    target: &Target<'_>,
    timestamp: u64,
    name: &str,
    offset: i64,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({
        "Filters": [{"Name": "ClusterName", "Values": [name]}],
        "Offset": offset,
        "Limit": PAGE_LIMIT,
    });
    action_request(target, action::DESCRIBE_CLUSTERS, &body, timestamp)
}

/// The kubeconfig that reaches the API server from outside the VPC (`extranet`), or from inside.
pub fn describe_cluster_kubeconfig_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    extranet: bool,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "IsExtranet": extranet});
    action_request(
        target,
        action::DESCRIBE_CLUSTER_KUBECONFIG,
        &body,
        timestamp,
    )
}

pub fn describe_cluster_endpoint_status_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "IsExtranet": true});
    action_request(
        target,
        action::DESCRIBE_CLUSTER_ENDPOINT_STATUS,
        &body,
        timestamp,
    )
}

pub fn describe_cluster_node_pools_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id});
    action_request(
        target,
        action::DESCRIBE_CLUSTER_NODE_POOLS,
        &body,
        timestamp,
    )
}

/// One page of a pool's worker instances.
pub fn describe_cluster_instances_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    pool_id: &str,
    offset: i64,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({
        "ClusterId": cluster_id,
        "InstanceRole": "WORKER",
        "Filters": [{"Name": "nodepool-id", "Values": [pool_id]}],
        "Offset": offset,
        "Limit": PAGE_LIMIT,
    });
    action_request(target, action::DESCRIBE_CLUSTER_INSTANCES, &body, timestamp)
}

// ---- write builders ----

pub fn create_cluster_request(
    target: &Target<'_>,
    timestamp: u64,
    name: &str,
    spec: &ClusterSpec,
) -> Result<http::Request<Vec<u8>>> {
    action_request(
        target,
        action::CREATE_CLUSTER,
        &spec::create_cluster_body(name, spec)?,
        timestamp,
    )
}

/// Opens the public (extranet) API server endpoint.
pub fn create_cluster_endpoint_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "IsExtranet": true});
    action_request(target, action::CREATE_CLUSTER_ENDPOINT, &body, timestamp)
}

/// Sets the source CIDRs allowed to reach the public endpoint (the whole list).
pub fn modify_cluster_endpoint_sp_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    cidrs: &[String],
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "SecurityPolicies": cidrs, "IsExtranet": true});
    action_request(target, action::MODIFY_CLUSTER_ENDPOINT_SP, &body, timestamp)
}

pub fn update_cluster_version_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    version: &str,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "DstVersion": spec::vendor_version(version)});
    action_request(target, action::UPDATE_CLUSTER_VERSION, &body, timestamp)
}

/// Deletes the cluster and terminates its pay-as-you-go instances.
pub fn delete_cluster_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "InstanceDeleteMode": "terminate"});
    action_request(target, action::DELETE_CLUSTER, &body, timestamp)
}

pub fn create_cluster_node_pool_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    vpc_id: &str,
    spec: &NodePoolSpec,
) -> Result<http::Request<Vec<u8>>> {
    let body = spec::create_node_pool_body(cluster_id, vpc_id, spec)?;
    action_request(target, action::CREATE_CLUSTER_NODE_POOL, &body, timestamp)
}

/// The "scale node pool" call: a target size, not a delta.
pub fn modify_node_pool_desired_capacity_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    pool_id: &str,
    desired: i32,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "NodePoolId": pool_id, "DesiredCapacity": desired});
    action_request(
        target,
        action::MODIFY_NODE_POOL_DESIRED_CAPACITY_ABOUT_ASG,
        &body,
        timestamp,
    )
}

/// Autoscaling bounds and switch; `None` fields are left out (unchanged).
pub fn modify_cluster_node_pool_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    pool_id: &str,
    min: Option<i32>,
    max: Option<i32>,
    autoscale: Option<bool>,
) -> Result<http::Request<Vec<u8>>> {
    let mut body = Map::new();
    body.insert("ClusterId".into(), json!(cluster_id));
    body.insert("NodePoolId".into(), json!(pool_id));
    if let Some(min) = min {
        body.insert("MinNodesNum".into(), json!(min));
    }
    if let Some(max) = max {
        body.insert("MaxNodesNum".into(), json!(max));
    }
    if let Some(autoscale) = autoscale {
        body.insert("EnableAutoscale".into(), json!(autoscale));
    }
    action_request(
        target,
        action::MODIFY_CLUSTER_NODE_POOL,
        &Value::Object(body),
        timestamp,
    )
}

pub fn delete_cluster_node_pool_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    pool_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({"ClusterId": cluster_id, "NodePoolIds": [pool_id], "KeepInstance": false});
    action_request(target, action::DELETE_CLUSTER_NODE_POOL, &body, timestamp)
}

/// Adds existing CVM instances to a pool, configured like the pool.
pub fn add_existed_instances_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    pool_id: &str,
    instance_ids: &[String],
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({
        "ClusterId": cluster_id,
        "InstanceIds": instance_ids,
        "NodePool": {
            "AddToNodePool": true,
            "NodePoolId": pool_id,
            "InheritConfigurationFromNodePool": true,
        },
    });
    action_request(target, action::ADD_EXISTED_INSTANCES, &body, timestamp)
}

/// Removes instances from the cluster; `terminate` releases them, otherwise they are kept.
pub fn delete_cluster_instances_request(
    target: &Target<'_>,
    timestamp: u64,
    cluster_id: &str,
    instance_ids: &[String],
    terminate: bool,
) -> Result<http::Request<Vec<u8>>> {
    let body = json!({
        "ClusterId": cluster_id,
        "InstanceIds": instance_ids,
        "InstanceDeleteMode": if terminate { "terminate" } else { "retain" },
    });
    action_request(target, action::DELETE_CLUSTER_INSTANCES, &body, timestamp)
}

// ---- sending ----

/// A successful call's `Response` object, parsed, and its request id.
#[derive(Debug)]
pub struct Reply<T> {
    pub body: T,
    pub request_id: String,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sends the request `build` makes through the shared transport (which rate-limits and retries;
/// `build` runs again for every attempt, with a fresh timestamp) and parses `Response` as `T`.
pub async fn send<T, B>(
    http: &VendorHttp,
    ctx: &CallContext,
    endpoint: &str,
    action: &'static str,
    idempotency: Idempotency,
    build: B,
) -> Result<Reply<T>>
where
    T: DeserializeOwned,
    B: Fn(&Target<'_>, u64) -> Result<http::Request<Vec<u8>>>,
{
    let Credentials::AccessKey { id, secret } = &ctx.credentials else {
        return Err(VendorError::new(
            ErrorClass::CredentialsInvalid,
            VENDOR,
            action,
            "",
            "TKE needs an access key credential (SecretId and SecretKey)",
        ));
    };
    let target = Target {
        endpoint,
        region: &ctx.region,
        secret_id: id,
        secret_key: secret,
    };
    let raw = http
        .send(
            &ctx.limit_key(VENDOR),
            action,
            idempotency,
            || build(&target, now_unix()),
            parse_error,
        )
        .await?;
    let malformed = |message: String| {
        VendorError::new(
            ErrorClass::Unknown,
            VENDOR,
            action,
            "MalformedResponse",
            message,
        )
        .with_status(raw.status)
    };
    let mut envelope: Value = raw.json(VENDOR, action)?;
    let response = envelope
        .get_mut("Response")
        .map(Value::take)
        .ok_or_else(|| malformed("the response has no `Response` object".into()))?;
    let request_id = response
        .get("RequestId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let body = serde_json::from_value(response)
        .map_err(|err| malformed(format!("the response does not parse: {err}")))?;
    Ok(Reply { body, request_id })
}

// ---- response shapes (only the fields we read; TKE may send null for any of them) ----

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClustersReply {
    pub total_count: Option<i64>,
    pub clusters: Option<Vec<TkeCluster>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TkeCluster {
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_version: Option<String>,
    pub cluster_status: Option<String>,
    pub created_time: Option<String>,
    pub cluster_network_settings: Option<NetworkSettings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub vpc_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdReply {
    pub cluster_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodePoolIdReply {
    pub node_pool_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KubeconfigReply {
    pub kubeconfig: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointStatusReply {
    pub status: Option<String>,
    pub error_msg: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodePoolsReply {
    pub node_pool_set: Option<Vec<TkeNodePool>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TkeNodePool {
    pub node_pool_id: Option<String>,
    pub name: Option<String>,
    pub life_state: Option<String>,
    pub labels: Option<Vec<TkeLabel>>,
    pub node_count_summary: Option<NodeCountSummary>,
    pub autoscaling_group_status: Option<String>,
    pub max_nodes_num: Option<i64>,
    pub min_nodes_num: Option<i64>,
    pub desired_nodes_num: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TkeLabel {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeCountSummary {
    pub manually_added: Option<NodeCount>,
    pub autoscaling_added: Option<NodeCount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeCount {
    pub total: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstancesReply {
    pub total_count: Option<i64>,
    pub instance_set: Option<Vec<TkeInstance>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TkeInstance {
    pub instance_id: Option<String>,
    #[serde(rename = "LanIP")]
    pub lan_ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddInstancesReply {
    pub succ_instance_ids: Option<Vec<String>>,
    pub failed_instance_ids: Option<Vec<String>>,
    pub failed_reasons: Option<Vec<String>>,
    pub timeout_instance_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteInstancesReply {
    pub failed_instance_ids: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::cluster::tke::DEFAULT_ENDPOINT;

    const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    fn target(endpoint: &str) -> Target<'_> {
        Target {
            endpoint,
            region: "ap-guangzhou",
            secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            secret_key: SECRET_KEY,
        }
    }

    fn header<'a>(req: &'a http::Request<Vec<u8>>, name: &str) -> &'a str {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The whole request for vector T2: body bytes, headers and Authorization as signed.
    #[test]
    fn vector_t2_as_a_built_request() {
        let body = json!({"Limit": 20, "Offset": 0});
        let req = action_request(
            &target(DEFAULT_ENDPOINT),
            "DescribeClusters",
            &body,
            1_551_113_065,
        )
        .expect("request");
        assert_eq!(req.body().as_slice(), br#"{"Limit":20,"Offset":0}"#);
        assert_eq!(req.uri().to_string(), "https://tke.tencentcloudapi.com/");
        assert_eq!(header(&req, "host"), "tke.tencentcloudapi.com");
        assert_eq!(header(&req, "content-type"), CONTENT_TYPE);
        assert_eq!(header(&req, "x-tc-action"), "DescribeClusters");
        assert_eq!(header(&req, "x-tc-version"), "2018-05-25");
        assert_eq!(header(&req, "x-tc-timestamp"), "1551113065");
        assert_eq!(header(&req, "x-tc-region"), "ap-guangzhou");
        assert_eq!(
            header(&req, "authorization"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/tke/tc3_request, SignedHeaders=content-type;host, Signature=f5ecb5260f9a5b8194acef047f2e2b7cb04b37a783e06c4fa08d60417c59cfd0"
        );
    }

    #[test]
    fn override_host_keeps_the_port() {
        let req = describe_cluster_request(&target("http://127.0.0.1:8123"), 1, "cls-1")
            .expect("request");
        assert_eq!(header(&req, "host"), "127.0.0.1:8123");
        assert_eq!(req.uri().to_string(), "http://127.0.0.1:8123/");
        assert!(header(&req, "authorization").contains("/1970-01-01/tke/tc3_request"));
        assert!(action_request(&target("not a url"), "X", &json!({}), 1).is_err());
    }
}
