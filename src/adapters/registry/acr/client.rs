//! ACR EE (`cr` 2018-12-01, RPC style) requests: pure builders that return signed
//! `http::Request`s, the wire shapes of the responses, and the one `send`.
//!
//! Every action is `POST /` with all its parameters in the query string and an empty body,
//! signed with V3 `ACS3-HMAC-SHA256` (vendor-apis.md §1.2 and §4, vector A5): the same signer
//! as ACK, from `signing::alibaba`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer};

use super::error::{self, VENDOR};
use crate::adapters::signing::alibaba as sign;
use crate::adapters::{
    LimitKey,
    error::{ErrorClass, Result, VendorError},
    transport::{Idempotency, RawResponse, VendorHttp},
};

pub const API_VERSION: &str = "2018-12-01";
/// ListNamespace / ListRepository / ListRepoTag page size limit (the SDK's examples use 30;
/// the console pages by 100).
pub const MAX_PAGE_SIZE: u32 = 100;

/// Where, as whom and when one request is made. The secret never leaves this struct except
/// into the HMAC.
pub struct Stamp<'a> {
    /// Base URL, such as `https://cr.cn-hangzhou.aliyuncs.com` or `http://127.0.0.1:PORT`.
    pub endpoint: &'a str,
    pub access_key_id: &'a str,
    pub access_key_secret: &'a str,
    /// `x-acs-date`, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: &'a str,
    /// `x-acs-signature-nonce`, new for every attempt.
    pub nonce: &'a str,
}

impl std::fmt::Debug for Stamp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamp")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("date", &self.date)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// One ACR action and its parameters (raw, unencoded), before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub action: &'static str,
    pub params: Vec<(String, String)>,
}

impl Call {
    pub fn new(action: &'static str, instance_id: &str) -> Call {
        Call {
            action,
            params: vec![("InstanceId".into(), instance_id.into())],
        }
    }

    pub fn param(mut self, name: &str, value: impl Into<String>) -> Call {
        self.params.push((name.into(), value.into()));
        self
    }

    fn param_opt(self, name: &str, value: Option<&str>) -> Call {
        match value {
            Some(value) => self.param(name, value),
            None => self,
        }
    }
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

/// Signs `call` (V3) and builds the request exactly as signed: `POST /?<params>`, empty body.
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
    let hashed = sign::sha256_hex(b"");
    let headers: Vec<(String, String)> = vec![
        ("host".into(), authority.to_string()),
        ("x-acs-action".into(), call.action.into()),
        ("x-acs-version".into(), API_VERSION.into()),
        ("x-acs-date".into(), stamp.date.into()),
        ("x-acs-signature-nonce".into(), stamp.nonce.into()),
        ("x-acs-content-sha256".into(), hashed.clone()),
        ("accept".into(), "application/json".into()),
    ];
    let authorization = sign::acs3_authorization(
        stamp.access_key_id,
        stamp.access_key_secret,
        &sign::Acs3Input {
            method: "POST",
            path: "/",
            query: &call.params,
            headers: &headers,
            hashed_payload: &hashed,
        },
    );
    let query = call
        .params
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{scheme}://{authority}/?{query}"));
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    builder
        .header(http::header::AUTHORIZATION, authorization)
        .body(Vec::new())
        // http's errors name the part, never a header value, so no secret can leak here.
        .map_err(|err| bad_request(call.action, format!("cannot build the request: {err}")))
}

// ---- builders, one per action (vendor-apis.md §4) ----

pub fn get_instance_request(stamp: &Stamp<'_>, instance: &str) -> Result<http::Request<Vec<u8>>> {
    signed(stamp, &Call::new("GetInstance", instance))
}

pub fn list_namespace_request(
    stamp: &Stamp<'_>,
    instance: &str,
    page_no: u32,
    page_size: u32,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("ListNamespace", instance)
        .param("PageNo", page_no.to_string())
        .param("PageSize", page_size.to_string());
    signed(stamp, &call)
}

/// Visibility is the namespace's default repository type; repositories are created on push.
pub fn create_namespace_request(
    stamp: &Stamp<'_>,
    instance: &str,
    name: &str,
    public: bool,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("CreateNamespace", instance)
        .param("NamespaceName", name)
        .param("AutoCreateRepo", "true")
        .param("DefaultRepoType", if public { "PUBLIC" } else { "PRIVATE" });
    signed(stamp, &call)
}

pub fn delete_namespace_request(
    stamp: &Stamp<'_>,
    instance: &str,
    name: &str,
) -> Result<http::Request<Vec<u8>>> {
    signed(
        stamp,
        &Call::new("DeleteNamespace", instance).param("NamespaceName", name),
    )
}

/// One token page of repositories, of one namespace or of the whole instance.
pub fn list_repository_request(
    stamp: &Stamp<'_>,
    instance: &str,
    namespace: Option<&str>,
    max_results: u32,
    next_token: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("ListRepository", instance)
        .param("RepoStatus", "ALL")
        .param_opt("RepoNamespaceName", namespace)
        .param("MaxResults", max_results.to_string())
        .param_opt("NextToken", next_token);
    signed(stamp, &call)
}

pub fn get_repository_request(
    stamp: &Stamp<'_>,
    instance: &str,
    namespace: &str,
    repository: &str,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("GetRepository", instance)
        .param("RepoNamespaceName", namespace)
        .param("RepoName", repository);
    signed(stamp, &call)
}

pub fn delete_repository_request(
    stamp: &Stamp<'_>,
    instance: &str,
    namespace: &str,
    repository: &str,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("DeleteRepository", instance)
        .param("RepoNamespaceName", namespace)
        .param("RepoName", repository);
    signed(stamp, &call)
}

/// One token page of a repository's tags.
pub fn list_repo_tag_request(
    stamp: &Stamp<'_>,
    instance: &str,
    repo_id: &str,
    max_results: u32,
    next_token: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("ListRepoTag", instance)
        .param("RepoId", repo_id)
        .param("MaxResults", max_results.to_string())
        .param_opt("NextToken", next_token);
    signed(stamp, &call)
}

pub fn delete_repo_tag_request(
    stamp: &Stamp<'_>,
    instance: &str,
    repo_id: &str,
    tag: &str,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("DeleteRepoTag", instance)
        .param("RepoId", repo_id)
        .param("Tag", tag);
    signed(stamp, &call)
}

pub fn get_authorization_token_request(
    stamp: &Stamp<'_>,
    instance: &str,
    expires_in_hours: u32,
) -> Result<http::Request<Vec<u8>>> {
    let call = Call::new("GetAuthorizationToken", instance)
        .param("ExpiresInHours", expires_in_hours.to_string());
    signed(stamp, &call)
}

// ---- response shapes (PascalCase; counts and times leniently numbers or strings) ----

/// A number the vendor may send as a JSON number, a string, or not at all.
fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<u64, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        serde_json::Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

/// Epoch milliseconds (0 when absent) as a time.
pub fn epoch_ms(ms: u64) -> Option<SystemTime> {
    (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamespacePage {
    #[serde(default)]
    pub namespaces: Vec<WireNamespace>,
    /// A string on the wire.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireNamespace {
    pub namespace_name: String,
    #[serde(default)]
    pub default_repo_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepositoryPage {
    #[serde(default)]
    pub repositories: Vec<WireRepository>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_count: u64,
    /// Empty or absent on the last page.
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireRepository {
    #[serde(default)]
    pub repo_id: String,
    pub repo_name: String,
    pub repo_namespace_name: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub modified_time: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagPage {
    #[serde(default)]
    pub images: Vec<WireImage>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_count: u64,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireImage {
    pub tag: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub image_size: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub image_update: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub image_create: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizationToken {
    pub temp_username: String,
    pub authorization_token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub expire_time: u64,
}

/// A NextToken that says "more": absent or empty means the last page.
pub fn more(token: Option<String>) -> Option<String> {
    token.filter(|t| !t.is_empty())
}

/// Sends the request `build` makes, signed afresh (new date and nonce) for every attempt.
#[allow(clippy::too_many_arguments)]
pub async fn send<B>(
    http: &VendorHttp,
    key: &LimitKey,
    endpoint: &str,
    access_key_id: &str,
    access_key_secret: &str,
    operation: &'static str,
    idempotency: Idempotency,
    build: B,
) -> Result<RawResponse>
where
    B: Fn(&Stamp<'_>) -> Result<http::Request<Vec<u8>>>,
{
    http.send(
        key,
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
                access_key_id,
                access_key_secret,
                date: &date,
                nonce: &nonce,
            })
        },
        error::parse_error,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp<'static> = Stamp {
        endpoint: "https://cr.cn-hangzhou.aliyuncs.com",
        access_key_id: "YourAccessKeyId",
        access_key_secret: "YourAccessKeySecret",
        date: "2023-10-26T10:22:32Z",
        nonce: "3156853299f313e23d1673dc12e1703d",
    };

    fn authorization(request: &http::Request<Vec<u8>>) -> &str {
        request.headers()["authorization"].to_str().unwrap()
    }

    /// Vector A5 [DERIVED, vendor-apis.md §1.2.4]: the ListNamespace builder's bytes sign to
    /// the published value, so what the builder sends is what ACR checks.
    #[test]
    fn list_namespace_builder_reproduces_a5() {
        let request = list_namespace_request(&STAMP, "cri-test", 1, 30).unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(
            request.uri().to_string(),
            "https://cr.cn-hangzhou.aliyuncs.com/?InstanceId=cri-test&PageNo=1&PageSize=30"
        );
        assert!(request.body().is_empty());
        assert!(request.headers().get("content-type").is_none());
        assert_eq!(
            authorization(&request),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;\
             x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=ea10dd2021aab876cafbfdad8c4d9e86c61c0dc9205e6c328d2b70d90c4c7756"
        );
    }

    #[test]
    fn parameters_are_rfc3986_encoded_in_the_query() {
        let request = list_repo_tag_request(&STAMP, "cri-x", "crr-1", 10, Some("a b/c=")).unwrap();
        assert_eq!(
            request.uri().query(),
            Some("InstanceId=cri-x&RepoId=crr-1&MaxResults=10&NextToken=a%20b%2Fc%3D")
        );
    }

    #[test]
    fn host_keeps_the_port_of_an_override() {
        let stamp = Stamp {
            endpoint: "http://127.0.0.1:8123/",
            ..STAMP
        };
        let request = get_instance_request(&stamp, "cri-x").unwrap();
        assert_eq!(request.headers()["host"], "127.0.0.1:8123");
        assert!(!format!("{stamp:?}").contains("YourAccessKeySecret"));
    }

    #[test]
    fn total_count_as_a_string_and_an_empty_next_token() {
        let page: RepositoryPage = serde_json::from_str(
            r#"{"Repositories":[{"RepoId":"crr-1","RepoName":"app","RepoNamespaceName":"team",
                "ModifiedTime":1700000000000}],"TotalCount":"31","NextToken":"","Code":"success",
                "IsSuccess":true}"#,
        )
        .unwrap();
        assert_eq!(page.total_count, 31);
        assert_eq!(more(page.next_token), None);
        assert_eq!(
            epoch_ms(page.repositories[0].modified_time),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let tags: TagPage = serde_json::from_str(
            r#"{"Images":[{"Tag":"v1","Digest":"sha256:x","ImageSize":"12","ImageUpdate":"1700000000000"}],
                "TotalCount":7,"NextToken":"abc"}"#,
        )
        .unwrap();
        assert_eq!(tags.images[0].image_size, 12);
        assert_eq!(tags.total_count, 7);
        assert_eq!(more(tags.next_token).as_deref(), Some("abc"));
    }
}
