//! TCR (`tcr` 2019-09-24) requests: every action is `POST /` with `X-TC-Action` and a JSON body,
//! signed with TC3-HMAC-SHA256 by `signing::tencent` (the TKE signer, service `tcr`). Request
//! bodies are structs so their bytes (field order included) are fixed: what is hashed is what
//! is sent (vector T3).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use super::error::{self, VENDOR};
use crate::adapters::signing::tencent::{self as sign, SigningInput};
use crate::adapters::{
    LimitKey,
    error::{ErrorClass, Result, VendorError},
    transport::{Idempotency, RawResponse, VendorHttp},
};

pub const VERSION: &str = "2019-09-24";
/// The product in the credential scope (not taken from the host: a test endpoint has none).
pub const SERVICE: &str = "tcr";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// TCR's page size limit.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Where a request goes and whom it is signed as. Not `Debug`: it holds the secret.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub endpoint: &'a str,
    /// `X-TC-Region`.
    pub region: &'a str,
    pub secret_id: &'a str,
    pub secret_key: &'a str,
}

fn invalid(operation: &'static str, message: impl Into<String>) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        "BadRequest",
        message,
    )
}

/// One signed TCR call: `action` with `body`, at `timestamp` (Unix seconds).
pub fn action_request<T: Serialize>(
    target: &Target<'_>,
    action: &'static str,
    body: &T,
    timestamp: u64,
) -> Result<http::Request<Vec<u8>>> {
    let payload = serde_json::to_vec(body).map_err(|err| invalid(action, err.to_string()))?;
    let uri: http::Uri = target.endpoint.parse().map_err(|_| {
        invalid(
            action,
            format!("endpoint {:?} is not a URL", target.endpoint),
        )
    })?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(invalid(
            action,
            format!("endpoint {:?} needs a scheme and a host", target.endpoint),
        ));
    };
    let host = authority.as_str().to_ascii_lowercase();
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
    http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{scheme}://{authority}/"))
        .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(http::header::HOST, host)
        .header("X-TC-Action", action)
        .header("X-TC-Version", VERSION)
        .header("X-TC-Timestamp", timestamp.to_string())
        .header("X-TC-Region", target.region)
        .header("X-TC-Language", "en-US")
        .header(http::header::AUTHORIZATION, authorization)
        .body(payload)
        // http's errors never quote header values, so the signature cannot leak through them.
        .map_err(|err| invalid(action, format!("request does not build: {err}")))
}

// ---- request bodies (Enterprise), field order as sent ----

#[derive(Debug, Serialize)]
pub struct DescribeInstances<'a> {
    /// Spelled so by the API.
    #[serde(rename = "Registryids")]
    pub registry_ids: [&'a str; 1],
    #[serde(rename = "Offset")]
    pub offset: u32,
    #[serde(rename = "Limit")]
    pub limit: u32,
}

/// DescribeNamespaces, DescribeRepositories: `Offset` is a page number from 1.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeNamespaces<'a> {
    pub registry_id: &'a str,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateNamespace<'a> {
    pub registry_id: &'a str,
    pub namespace_name: &'a str,
    pub is_public: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteNamespace<'a> {
    pub registry_id: &'a str,
    pub namespace_name: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRepositories<'a> {
    pub registry_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_name: Option<&'a str>,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRepository<'a> {
    pub registry_id: &'a str,
    pub namespace_name: &'a str,
    pub repository_name: &'a str,
    pub force_delete: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeImages<'a> {
    pub registry_id: &'a str,
    pub namespace_name: &'a str,
    pub repository_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_match: Option<bool>,
    pub limit: u32,
    /// A page number from 1.
    pub offset: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteImage<'a> {
    pub registry_id: &'a str,
    pub namespace_name: &'a str,
    pub repository_name: &'a str,
    pub image_version: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInstanceToken<'a> {
    pub registry_id: &'a str,
    /// `temp` (an hour) or `longterm`.
    pub token_type: &'a str,
    pub desc: &'a str,
}

// ---- response shapes (inside `Response`) ----

/// `{"Response": {...}}`.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    #[serde(rename = "Response")]
    pub response: T,
}

pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        serde_json::Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstancesPage {
    #[serde(default)]
    pub registries: Vec<WireInstance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireInstance {
    pub registry_id: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamespacesPage {
    #[serde(default)]
    pub namespace_list: Vec<WireNamespace>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireNamespace {
    pub name: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub creation_time: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepositoriesPage {
    #[serde(default)]
    pub repository_list: Vec<WireRepository>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireRepository {
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub update_time: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagesPage {
    #[serde(default)]
    pub image_info_list: Vec<WireImage>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireImage {
    #[serde(default)]
    pub digest: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub size: u64,
    pub image_version: String,
    #[serde(default)]
    pub update_time: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceToken {
    pub username: String,
    pub token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub exp_time: u64,
}

/// `ExpTime` is "a timestamp" (vendor-apis.md §3.1) with the unit unsaid: milliseconds when
/// it is too large to be seconds (past the year 5138), else seconds.
pub fn expiry(exp_time: u64) -> Option<SystemTime> {
    match exp_time {
        0 => None,
        ms if ms >= 100_000_000_000 => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        secs => Some(UNIX_EPOCH + Duration::from_secs(secs)),
    }
}

/// TCR's times: Go's `2006-01-02 15:04:05.999999999 -0700 MST` (Enterprise), plain
/// `2006-01-02 15:04:05` (taken as UTC+8, Tencent Cloud's console zone: UNCONFIRMED) or RFC 3339.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    let num = |at: usize, len: usize| text.get(at..at + len)?.parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hh, mm, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut rest = text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    rest = rest.trim_start();
    let offset_secs = if rest.starts_with('Z') {
        0
    } else if let Some(sign) = rest.chars().next().filter(|c| matches!(c, '+' | '-')) {
        let digits: String = rest[1..].chars().filter(|c| *c != ':').take(4).collect();
        let hours: i64 = digits.get(0..2)?.parse().ok()?;
        let minutes: i64 = digits.get(2..4)?.parse().ok()?;
        let secs = hours * 3600 + minutes * 60;
        if sign == '-' { -secs } else { secs }
    } else {
        8 * 3600
    };
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let unix = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_secs;
    u64::try_from(unix)
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

/// Sends the request `build` makes, signed afresh (a new timestamp) for every attempt.
pub async fn send<B>(
    http: &VendorHttp,
    key: &LimitKey,
    operation: &'static str,
    idempotency: Idempotency,
    build: B,
) -> Result<RawResponse>
where
    B: Fn(u64) -> Result<http::Request<Vec<u8>>>,
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
            build(now)
        },
        error::parse_error,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Target<'static> = Target {
        endpoint: "https://tcr.tencentcloudapi.com",
        region: "ap-guangzhou",
        secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    };

    /// Vector T3 [DERIVED, vendor-apis.md §2.2]: the DescribeNamespaces body this adapter
    /// builds is byte for byte the vector's, and its Authorization carries the vector's
    /// signature.
    #[test]
    fn describe_namespaces_builder_reproduces_t3() {
        let body = DescribeNamespaces {
            registry_id: "tcr-test",
            limit: 20,
            offset: 1,
        };
        let request = action_request(&TARGET, "DescribeNamespaces", &body, 1_551_113_065).unwrap();
        assert_eq!(
            request.body().as_slice(),
            br#"{"RegistryId":"tcr-test","Limit":20,"Offset":1}"#
        );
        assert_eq!(
            request.headers()["authorization"],
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/tcr/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=7ee76e626759a7c609f53dcbf25a574094ad210fdfcbc1d500f2364d569298c1"
        );
        assert_eq!(request.headers()["x-tc-region"], "ap-guangzhou");
        assert_eq!(request.headers()["x-tc-version"], VERSION);
        assert_eq!(
            request.uri().to_string(),
            "https://tcr.tencentcloudapi.com/"
        );
    }

    #[test]
    fn optional_fields_are_left_out_and_registryids_is_spelled_as_the_api_does() {
        let body = serde_json::to_string(&DescribeRepositories {
            registry_id: "tcr-x",
            namespace_name: None,
            limit: 5,
            offset: 2,
        })
        .unwrap();
        assert_eq!(body, r#"{"RegistryId":"tcr-x","Limit":5,"Offset":2}"#);
        let body = serde_json::to_string(&DescribeInstances {
            registry_ids: ["tcr-x"],
            offset: 0,
            limit: 1,
        })
        .unwrap();
        assert_eq!(body, r#"{"Registryids":["tcr-x"],"Offset":0,"Limit":1}"#);
    }

    #[test]
    fn times_and_expiries() {
        let at = |secs| Some(UNIX_EPOCH + Duration::from_secs(secs));
        // 2023-11-14 22:13:20 UTC = 1_700_000_000.
        assert_eq!(
            parse_time("2023-11-15 06:13:20.123456789 +0800 CST"),
            at(1_700_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14 22:13:20 +0000 UTC"),
            at(1_700_000_000)
        );
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), at(1_700_000_000));
        assert_eq!(parse_time("2023-11-15 06:13:20"), at(1_700_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(expiry(1_700_000_000), at(1_700_000_000));
        assert_eq!(expiry(1_700_000_000_000), at(1_700_000_000));
        assert_eq!(expiry(0), None);
    }
}
