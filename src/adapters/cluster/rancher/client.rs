//! Pure request builders for the Rancher v3 (norman) API, and the one `send` that hands them to
//! the transport. Every builder takes the endpoint and the key and returns a finished request;
//! the create body made from a `ClusterSpec` comes from `spec`.

use percent_encoding::utf8_percent_encode;

use crate::adapters::{
    ErrorClass, RFC3986, Result, VendorError, VendorHttp,
    transport::{Idempotency, LimitKey, RawResponse},
};

use super::{API_PREFIX, VENDOR, action, auth::ApiKey, error::parse_error};

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
    request(http::Method::GET, url, key, None, action::LIST_CLUSTERS)
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
    request(http::Method::GET, url, key, None, action::GET_CLUSTER)
}

/// `POST /v3/clusters` with the whole body (`{"type":"cluster","name":…,…}`).
pub fn create_cluster_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    body: &serde_json::Value,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url("/v3/clusters");
    request(
        http::Method::POST,
        url,
        key,
        Some(body),
        action::CREATE_CLUSTER,
    )
}

/// `PUT /v3/clusters/{id}` with the fields to change.
pub fn update_cluster_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
    body: &serde_json::Value,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url(&format!("/v3/clusters/{}", segment(cluster_id)));
    request(
        http::Method::PUT,
        url,
        key,
        Some(body),
        action::UPDATE_CLUSTER,
    )
}

pub fn delete_cluster_request(
    endpoint: &Endpoint,
    key: &ApiKey,
    cluster_id: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = endpoint.url(&format!("/v3/clusters/{}", segment(cluster_id)));
    request(http::Method::DELETE, url, key, None, action::DELETE_CLUSTER)
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
    request(
        http::Method::POST,
        url,
        key,
        None,
        action::GENERATE_KUBECONFIG,
    )
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
        action::CREATE_CLUSTER_REGISTRATION_TOKEN,
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
        action::LIST_CLUSTER_REGISTRATION_TOKENS,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
