//! Pure request builders for the Rancher v3 (norman) API (including the create body mapped from
//! a `ClusterSpec`), and the one `send` that hands them to the transport. Every builder takes the
//! endpoint and the key and returns a finished request.

use percent_encoding::utf8_percent_encode;
use serde_json::{Map, Value};

use crate::{
    adapters::{
        ErrorClass, RFC3986, Result, VendorError, VendorHttp,
        cluster::ClusterSpec,
        transport::{Idempotency, LimitKey, RawResponse},
    },
    proto::cluster_spec::ProviderConfig,
};

use super::{VENDOR, auth::ApiKey, error::parse_error};

/// Where the API lives below the server URL.
pub const API_PREFIX: &str = "/v3";

/// The Rancher server URL, checked once: `scheme://host[:port][/path]`, no trailing `/` and no
/// `/v3` (a pasted API URL is accepted and trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
}

impl Endpoint {
    /// Plain `http` is accepted for loopback hosts only (tests, port-forwards): the API key
    /// travels in every request, and Rancher itself only serves https.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let trimmed = url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix(API_PREFIX).unwrap_or(trimmed);
        let trimmed = trimmed.trim_end_matches('/');
        let uri: http::Uri = trimmed
            .parse()
            .map_err(|_| format!("rancher_url {url:?} is not a URL"))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("rancher_url {url:?} has no host"))?;
        if uri.query().is_some() || trimmed.contains('#') {
            return Err(format!(
                "rancher_url {url:?} must not have a query or fragment"
            ));
        }
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback(host) => {}
            Some("http") => {
                return Err(format!(
                    "rancher_url {url:?} must use https: the API key is sent with every request"
                ));
            }
            _ => return Err(format!("rancher_url {url:?} must start with https://")),
        }
        Ok(Endpoint {
            base: trimmed.to_string(),
        })
    }

    /// `path_and_query` starts with `/v3`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    pub fn base(&self) -> &str {
        &self.base
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "[::1]" || host == "::1" || host.starts_with("127.")
}

/// One path segment, percent-encoded (ids come from callers and must not escape the path).
pub fn segment(id: &str) -> String {
    utf8_percent_encode(id, RFC3986).to_string()
}

fn request(
    method: http::Method,
    url: String,
    key: &ApiKey,
    body: Option<&serde_json::Value>,
    operation: &'static str,
) -> Result<http::Request<Vec<u8>>> {
    let config = |message: String| {
        VendorError::new(
            ErrorClass::InvalidConfiguration,
            VENDOR,
            operation,
            "",
            message,
        )
    };
    let authorization = key
        .authorization()
        .map_err(|m| VendorError::new(ErrorClass::CredentialsInvalid, VENDOR, operation, "", m))?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::AUTHORIZATION, authorization)
        .header(http::header::ACCEPT, "application/json");
    let bytes = match body {
        Some(body) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            serde_json::to_vec(body).map_err(|err| config(err.to_string()))?
        }
        None => Vec::new(),
    };
    builder
        .body(bytes)
        .map_err(|err| config(format!("cannot build a request for {url}: {err}")))
}

/// `GET /v3/clusters?<query>`. `query` is already encoded (ours, or the query of Rancher's
/// `pagination.next`).
pub fn list_clusters_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    query: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url(&with_query("/v3/clusters", query));
    request(http::Method::GET, url, key, None, "ListClusters")
}

/// The first page's query: `limit`, plus a `name` filter when given.
pub fn first_page_query(limit: u32, name: Option<&str>) -> String {
    let mut query = format!("limit={limit}");
    if let Some(name) = name {
        query.push_str("&name=");
        query.extend(utf8_percent_encode(name, RFC3986));
    }
    query
}

pub fn get_cluster_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url(&format!("/v3/clusters/{}", segment(cluster_id)));
    request(http::Method::GET, url, key, None, "GetCluster")
}

/// `POST /v3/clusters` with the whole body (`{"type":"cluster","name":…,…}`).
pub fn create_cluster_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    body: &serde_json::Value,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url("/v3/clusters");
    request(http::Method::POST, url, key, Some(body), "CreateCluster")
}

/// `PUT /v3/clusters/{id}` with the fields to change.
pub fn update_cluster_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
    body: &serde_json::Value,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url(&format!("/v3/clusters/{}", segment(cluster_id)));
    request(http::Method::PUT, url, key, Some(body), "UpdateCluster")
}

pub fn delete_cluster_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url(&format!("/v3/clusters/{}", segment(cluster_id)));
    request(http::Method::DELETE, url, key, None, "DeleteCluster")
}

/// `POST /v3/clusters/{id}?action=generateKubeconfig` (no body).
pub fn generate_kubeconfig_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url(&format!(
        "/v3/clusters/{}?action=generateKubeconfig",
        segment(cluster_id)
    ));
    request(http::Method::POST, url, key, None, "GenerateKubeconfig")
}

/// `POST /v3/clusterregistrationtokens` for one cluster (`clusterId` is norman's rename of the
/// spec's `clusterName` reference).
pub fn create_registration_token_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url("/v3/clusterregistrationtokens");
    let body = serde_json::json!({"type": "clusterRegistrationToken", "clusterId": cluster_id});
    request(
        http::Method::POST,
        url,
        key,
        Some(&body),
        "CreateClusterRegistrationToken",
    )
}

/// `GET /v3/clusterregistrationtokens?clusterId=…`.
pub fn list_registration_tokens_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let query = format!("clusterId={}", utf8_percent_encode(cluster_id, RFC3986));
    let url = endpoint.url(&with_query("/v3/clusterregistrationtokens", &query));
    request(
        http::Method::GET,
        url,
        key,
        None,
        "ListClusterRegistrationTokens",
    )
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// The query of a `pagination.next` URL. Only the query is followed, always against our own
/// endpoint, so a `next` naming another host can never receive the API key.
pub fn next_page_query(next: &str) -> Option<String> {
    let query = next.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    (!query.is_empty()).then(|| query.to_string())
}

/// Sends what `build` makes through the transport (rebuilt for every attempt) and scrubs the
/// key's secret from any error.
pub async fn send<B>(
    http: &VendorHttp,
    limit: &LimitKey,
    key: &ApiKey,
    operation: &'static str,
    idempotency: Idempotency,
    build: B,
) -> Result<RawResponse>
where
    B: Fn() -> Result<http::Request<Vec<u8>>>,
{
    http.send(limit, operation, idempotency, build, parse_error)
        .await
        .map_err(|mut err| {
            err.message = key.scrub(&err.message);
            err.code = key.scrub(&err.code);
            err
        })
}

/// Driver configs that carry a Kubernetes version, in the order they are looked for.
const DRIVER_CONFIGS: [&str; 2] = ["rke2Config", "k3sConfig"];

/// The `POST /v3/clusters` body for `spec`:
/// - `type: cluster` and `name` (Flotilla's id, so `find_cluster_by_name` finds it) always win;
/// - `display_name` becomes `description`, `labels` become the cluster's labels;
/// - `rancher.driver_config` and then `vendor_extra` are merged into the top level unchanged;
/// - `kubernetes_version` goes into the driver config's `kubernetesVersion` (rke2Config, else
///   k3sConfig) unchanged, so give Rancher's own form (`v1.33.1+rke2r1`) there or in the driver
///   config. A version in both must agree up to the `v` prefix and `+` suffix (the driver
///   config's stays). A version without either driver config is refused: Rancher has no version
///   to set on an imported cluster.
/// - `region`, `zones` and `network` have no v3 cluster field and are left out (network
///   settings of an RKE2/K3s cluster belong in the driver config);
/// - node pools are refused rather than dropped: they would be machines nobody creates.
pub fn create_body(name: &str, spec: &ClusterSpec) -> std::result::Result<Value, String> {
    let rancher = match &spec.provider_config {
        None => None,
        Some(ProviderConfig::Rancher(rancher)) => Some(rancher),
        Some(ProviderConfig::Ack(_)) => return Err("the spec has ack settings, not rancher".into()),
        Some(ProviderConfig::Tke(_)) => return Err("the spec has tke settings, not rancher".into()),
    };
    if rancher.is_some_and(|r| !r.rancher_cluster_id.is_empty()) {
        return Err(
            "rancher.rancher_cluster_id names an existing cluster to import; a create \
                    makes a new cluster, so leave it empty"
                .into(),
        );
    }
    if !spec.node_pools.is_empty() {
        return Err(
            "Rancher's v3 API has no node pools (NodePool was removed in Rancher \
                    v2.15): leave node_pools empty and describe machines in rancher.driver_config"
                .into(),
        );
    }
    let mut body = Map::new();
    if !spec.display_name.is_empty() {
        body.insert("description".into(), spec.display_name.clone().into());
    }
    if !spec.labels.is_empty() {
        let labels: Map<String, Value> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        body.insert("labels".into(), Value::Object(labels));
    }
    let extras = [
        rancher.and_then(|r| r.driver_config.as_ref()),
        spec.vendor_extra.as_ref(),
    ];
    for extra in extras.into_iter().flatten() {
        for (key, value) in &extra.fields {
            body.insert(key.clone(), struct_value_to_json(value));
        }
    }
    body.insert("type".into(), "cluster".into());
    body.insert("name".into(), name.into());
    apply_version(&mut body, &spec.kubernetes_version)?;
    Ok(Value::Object(body))
}

fn apply_version(body: &mut Map<String, Value>, version: &str) -> std::result::Result<(), String> {
    if version.is_empty() {
        return Ok(());
    }
    let kind = DRIVER_CONFIGS
        .into_iter()
        .find(|kind| body.get(*kind).is_some_and(Value::is_object));
    let Some(config) = kind.and_then(|kind| body.get_mut(kind)?.as_object_mut()) else {
        return Err(format!(
            "kubernetes_version {version:?} needs rancher.driver_config with rke2Config or \
             k3sConfig: Rancher has no version to set on an imported cluster"
        ));
    };
    match config.get("kubernetesVersion").and_then(Value::as_str) {
        Some(given) if !given.is_empty() => {
            if bare_version(given) != bare_version(version) {
                return Err(format!(
                    "kubernetes_version {version:?} disagrees with the driver config's \
                     kubernetesVersion {given:?}"
                ));
            }
        }
        _ => {
            config.insert("kubernetesVersion".into(), version.into());
        }
    }
    Ok(())
}

/// `v1.33.1+rke2r1` → `1.33.1`.
fn bare_version(version: &str) -> &str {
    let version = version.trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    version.split('+').next().unwrap_or(version)
}

/// A protobuf `Value` as JSON. Integral numbers stay integers (`3`, not `3.0`); NaN and the
/// infinities, which JSON cannot carry, become null.
pub fn struct_value_to_json(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
                Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), struct_value_to_json(v)))
                .collect(),
        ),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(struct_value_to_json).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use prost_types::{ListValue, Struct, value::Kind};
    use serde_json::json;

    use super::*;
    use crate::proto::{AckClusterConfig, ClusterNetwork, NodePoolSpec, RancherClusterConfig};

    const SECRET: &str = "kq9x2vdmq8hvl7zsl9n8c5xw4ct7rz6mfz2b8qj4wx7gqtkcn2p6vh";

    fn key() -> ApiKey {
        ApiKey::new("token-ab12c", SECRET).unwrap()
    }

    fn endpoint() -> Endpoint {
        Endpoint::parse("https://rancher.example.com").unwrap()
    }

    #[test]
    fn endpoints_are_normalised_and_checked() {
        for url in [
            "https://rancher.example.com",
            "https://rancher.example.com/",
            "https://rancher.example.com/v3",
            " https://rancher.example.com/v3/ ",
        ] {
            assert_eq!(
                Endpoint::parse(url).unwrap().base(),
                "https://rancher.example.com"
            );
        }
        assert_eq!(
            Endpoint::parse("https://example.com/rancher/")
                .unwrap()
                .base(),
            "https://example.com/rancher"
        );
        assert!(Endpoint::parse("http://127.0.0.1:8443").is_ok());
        assert!(Endpoint::parse("http://localhost:8080").is_ok());
        assert!(Endpoint::parse("http://rancher.example.com").is_err());
        assert!(Endpoint::parse("ftp://rancher.example.com").is_err());
        assert!(Endpoint::parse("rancher.example.com").is_err());
        assert!(Endpoint::parse("https://rancher.example.com?x=1").is_err());
        assert!(Endpoint::parse("").is_err());
    }

    #[test]
    fn requests_carry_the_bearer_key_and_json() {
        let body = serde_json::json!({"type": "cluster", "name": "prod"});
        let req = create_cluster_request(&endpoint(), &key(), &body).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri(), "https://rancher.example.com/v3/clusters");
        assert_eq!(
            req.headers()[http::header::AUTHORIZATION],
            format!("Bearer token-ab12c:{SECRET}").as_str()
        );
        assert_eq!(
            req.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let sent: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(sent, body);
        // The request's Debug output (what a careless log line would print) hides the key.
        assert!(!format!("{req:?}").contains(SECRET));
    }

    #[test]
    fn paths_and_queries() {
        let (e, k) = (endpoint(), key());
        let req = get_cluster_request(&e, &k, "c-m-ab12cd34").unwrap();
        assert_eq!(
            req.uri(),
            "https://rancher.example.com/v3/clusters/c-m-ab12cd34"
        );
        assert!(req.body().is_empty());
        // An id cannot climb out of the collection.
        let req = delete_cluster_request(&e, &k, "../tokens").unwrap();
        assert_eq!(req.uri().path(), "/v3/clusters/..%2Ftokens");
        assert_eq!(req.method(), http::Method::DELETE);
        let req = generate_kubeconfig_request(&e, &k, "c-abcde").unwrap();
        assert_eq!(
            req.uri(),
            "https://rancher.example.com/v3/clusters/c-abcde?action=generateKubeconfig"
        );
        let req = list_clusters_request(&e, &k, &first_page_query(100, Some("a b&c"))).unwrap();
        assert_eq!(req.uri().query(), Some("limit=100&name=a%20b%26c"));
        let req = list_registration_tokens_request(&e, &k, "c-abcde").unwrap();
        assert_eq!(
            req.uri(),
            "https://rancher.example.com/v3/clusterregistrationtokens?clusterId=c-abcde"
        );
        let req = create_registration_token_request(&e, &k, "c-abcde").unwrap();
        let sent: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"type": "clusterRegistrationToken", "clusterId": "c-abcde"})
        );
        let body = serde_json::json!({"rke2Config": {"kubernetesVersion": "v1.33.2+rke2r1"}});
        let req = update_cluster_request(&e, &k, "c-abcde", &body).unwrap();
        assert_eq!(req.method(), http::Method::PUT);
    }

    #[test]
    fn next_pages_keep_only_the_query() {
        assert_eq!(
            next_page_query("https://elsewhere.example.net/v3/clusters?limit=2&marker=c-x"),
            Some("limit=2&marker=c-x".to_string())
        );
        assert_eq!(
            next_page_query("https://rancher.example.com/v3/clusters"),
            None
        );
        let req = list_clusters_request(&endpoint(), &key(), "limit=2&marker=c-x").unwrap();
        assert_eq!(
            req.uri(),
            "https://rancher.example.com/v3/clusters?limit=2&marker=c-x"
        );
    }

    fn value(kind: Kind) -> prost_types::Value {
        prost_types::Value { kind: Some(kind) }
    }

    fn object(fields: &[(&str, prost_types::Value)]) -> Struct {
        Struct {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn text(s: &str) -> prost_types::Value {
        value(Kind::StringValue(s.into()))
    }

    fn rancher(driver_config: Option<Struct>) -> Option<ProviderConfig> {
        Some(ProviderConfig::Rancher(RancherClusterConfig {
            rancher_cluster_id: String::new(),
            driver_config,
        }))
    }

    fn rke2(version: Option<&str>) -> Struct {
        let config = match version {
            Some(v) => object(&[("kubernetesVersion", text(v))]),
            None => object(&[]),
        };
        object(&[("rke2Config", value(Kind::StructValue(config)))])
    }

    #[test]
    fn a_bare_spec_is_type_and_name() {
        let body = create_body("prod-1", &ClusterSpec::default()).unwrap();
        assert_eq!(body, json!({"type": "cluster", "name": "prod-1"}));
    }

    #[test]
    fn spec_fields_driver_config_and_extras() {
        let spec = ClusterSpec {
            display_name: "Production".into(),
            labels: [("team".to_string(), "infra".to_string())].into(),
            region: "ignored".into(),
            provider_config: rancher(Some(rke2(Some("v1.33.1+rke2r1")))),
            vendor_extra: Some(object(&[
                ("name", text("not-this")),
                ("type", text("not-this")),
                ("fleetWorkspaceName", text("fleet-default")),
                ("replicas", value(Kind::NumberValue(3.0))),
                ("ratio", value(Kind::NumberValue(0.5))),
                (
                    "list",
                    value(Kind::ListValue(ListValue {
                        values: vec![value(Kind::BoolValue(true)), value(Kind::NullValue(0))],
                    })),
                ),
            ])),
            ..ClusterSpec::default()
        };
        let body = create_body("prod-1", &spec).unwrap();
        assert_eq!(
            body,
            json!({
                "type": "cluster",
                "name": "prod-1",
                "description": "Production",
                "labels": {"team": "infra"},
                "rke2Config": {"kubernetesVersion": "v1.33.1+rke2r1"},
                "fleetWorkspaceName": "fleet-default",
                "replicas": 3,
                "ratio": 0.5,
                "list": [true, null],
            })
        );
    }

    #[test]
    fn the_spec_version_goes_into_the_driver_config() {
        let mut spec = ClusterSpec {
            kubernetes_version: "v1.33.1+rke2r1".into(),
            provider_config: rancher(Some(rke2(None))),
            ..ClusterSpec::default()
        };
        let body = create_body("a", &spec).unwrap();
        assert_eq!(
            body["rke2Config"],
            json!({"kubernetesVersion": "v1.33.1+rke2r1"})
        );

        let k3s = object(&[("k3sConfig", value(Kind::StructValue(object(&[]))))]);
        spec.provider_config = rancher(Some(k3s));
        spec.kubernetes_version = "v1.32.5+k3s1".into();
        let body = create_body("a", &spec).unwrap();
        assert_eq!(
            body["k3sConfig"],
            json!({"kubernetesVersion": "v1.32.5+k3s1"})
        );

        // Agreeing versions keep the driver config's precise form; disagreeing ones are refused.
        spec.provider_config = rancher(Some(rke2(Some("v1.33.1+rke2r1"))));
        spec.kubernetes_version = "1.33.1".into();
        let body = create_body("a", &spec).unwrap();
        assert_eq!(body["rke2Config"]["kubernetesVersion"], "v1.33.1+rke2r1");
        spec.kubernetes_version = "1.32.0".into();
        assert!(create_body("a", &spec).unwrap_err().contains("disagrees"));

        // No driver config: nothing to put a version in.
        spec.provider_config = None;
        let err = create_body("a", &spec).unwrap_err();
        assert!(err.contains("rke2Config"), "{err}");
    }

    #[test]
    fn what_rancher_v3_cannot_take_is_refused() {
        let refused = [
            ClusterSpec {
                node_pools: vec![NodePoolSpec::default()],
                ..ClusterSpec::default()
            },
            ClusterSpec {
                provider_config: Some(ProviderConfig::Ack(AckClusterConfig::default())),
                ..ClusterSpec::default()
            },
            ClusterSpec {
                provider_config: Some(ProviderConfig::Rancher(RancherClusterConfig {
                    rancher_cluster_id: "c-abcde".into(),
                    driver_config: None,
                })),
                ..ClusterSpec::default()
            },
        ];
        for spec in refused {
            assert!(create_body("a", &spec).is_err(), "{spec:?}");
        }
        // Fields with no v3 equivalent are left out.
        let spec = ClusterSpec {
            region: "cn-hangzhou".into(),
            zones: vec!["cn-hangzhou-a".into()],
            network: Some(ClusterNetwork {
                pod_cidr: "10.42.0.0/16".into(),
                ..ClusterNetwork::default()
            }),
            ..ClusterSpec::default()
        };
        assert_eq!(
            create_body("a", &spec).unwrap(),
            json!({"type": "cluster", "name": "a"})
        );
    }
}
