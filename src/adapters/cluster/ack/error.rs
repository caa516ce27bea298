//! ACK error responses → `VendorError`: the exact code table first, then Gardener's Alicloud
//! message patterns (api-patterns.md A.2), the HTTP status last.

use std::time::Duration;

use crate::adapters::{
    error::{ErrorClass, VendorError, retry_after_header},
    transport::RawResponse,
};

use super::VENDOR;

/// The error body. ACK's key casing is not documented (vendor-apis.md §1.9), so both are read.
#[derive(Debug, Default, PartialEq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> ErrorBody {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
            return ErrorBody {
                message: String::from_utf8_lossy(body).chars().take(300).collect(),
                ..ErrorBody::default()
            };
        };
        let field = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| match map.get(*k) {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        ErrorBody {
            code: field(&["code", "Code"]),
            message: field(&["message", "Message", "description", "Description"]),
            request_id: field(&["requestId", "RequestId", "request_id"]),
        }
    }
}

/// Finds the error in an ACK response, if it is one (HTTP status ≥ 400).
pub fn parse_error(raw: &RawResponse, operation: &'static str) -> Option<VendorError> {
    if raw.status < 400 {
        return None;
    }
    let body = ErrorBody::parse(&raw.body);
    let class = classify(&body.code, &body.message, raw.status);
    let retry_after = match class {
        ErrorClass::RateLimited => {
            throttle_time_left(&raw.headers).or_else(|| retry_after_header(&raw.headers))
        }
        _ => None,
    };
    let message = if body.message.is_empty() {
        format!("HTTP {}", raw.status)
    } else {
        body.message
    };
    Some(
        VendorError::new(class, VENDOR, operation, body.code, message)
            .with_status(raw.status)
            .with_request_id(body.request_id)
            .with_retry_after(retry_after),
    )
}

/// Classifies a vendor code and message; `status` 0 means no HTTP status (a failed task).
pub fn classify(code: &str, message: &str, status: u16) -> ErrorClass {
    if let Some(class) = class_of_code(code) {
        return class;
    }
    if let Some(class) = class_of_text(&format!("{code}: {message}")) {
        return class;
    }
    match status {
        401 => ErrorClass::CredentialsInvalid,
        403 => ErrorClass::CredentialsForbidden,
        404 => ErrorClass::VendorNotFound,
        409 => ErrorClass::DependencyBlocked,
        429 => ErrorClass::RateLimited,
        500..=599 => ErrorClass::VendorUnavailable,
        400..=499 => ErrorClass::InvalidConfiguration,
        _ => ErrorClass::Unknown,
    }
}

/// Exact codes. From vendor-apis.md §1.9 unless noted.
fn class_of_code(code: &str) -> Option<ErrorClass> {
    use ErrorClass::*;
    let class = match code {
        "Throttling" | "Throttling.User" | "Throttling.Api" => RateLimited,
        "ErrorClusterNotFound" | "ErrorNodePoolNotFound" => VendorNotFound,
        "SignatureDoesNotMatch" | "InvalidAccessKeyId" => CredentialsInvalid,
        // Alibaba POP's generic signature codes (not in the doc): a missing/garbled
        // Authorization, and a request date outside the 15-minute window.
        "IncompleteSignature" | "InvalidTimeStamp.Expired" => CredentialsInvalid,
        "ClusterNameAlreadyExist" => InvalidConfiguration,
        // Seen in public ACK tooling, not in the doc: RAM denial, state conflicts, billing.
        "ErrorCheckAcl" | "Forbidden" | "NoPermission" => CredentialsForbidden,
        "ErrorClusterState" => DependencyPending,
        "InsufficientBalance" => DependencyBlocked,
        "QuotaExceeded" => QuotaExceeded,
        "InternalError" | "ServiceUnavailable" | "UnknownError" => VendorUnavailable,
        "InvalidParameter" | "MissingParameter" => InvalidConfiguration,
        _ => {
            let family = |prefix: &str| code.starts_with(prefix);
            if family("Throttling.") {
                RateLimited
            } else if family("InvalidAccessKeyId.") || family("InvalidSecurityToken.") {
                CredentialsInvalid
            } else if family("Forbidden.") || family("AccessDenied") {
                CredentialsForbidden
            } else if family("QuotaExceeded.") {
                QuotaExceeded
            } else if family("InvalidParameter.") || family("MissingParameter.") {
                InvalidConfiguration
            } else {
                return None;
            }
        }
    };
    Some(class)
}

/// Gardener's Alicloud patterns, most specific class first. Departure: Gardener counts
/// "internal server error" as a dependency problem (not retried); here a vendor 500 stays
/// `VendorUnavailable` by its status.
fn class_of_text(text: &str) -> Option<ErrorClass> {
    use ErrorClass::*;
    let any = |patterns: &[&str]| patterns.iter().any(|p| text.contains(p));
    if any(&["RequestLimitExceeded", "Throttling", "Too many requests"]) {
        Some(RateLimited)
    } else if any(&[
        "Authentication failed",
        "invalid character",
        "invalid_client",
        "cannot fetch token",
        "InvalidSecretAccessKey",
        "InvalidAccessKeyId",
    ]) {
        Some(CredentialsInvalid)
    } else if any(&[
        "Unauthorized",
        "SignatureDoesNotMatch",
        "invalid_grant",
        "Authorization Profile was not found",
        "no active subscriptions",
        "not authorized",
        "AccessDenied",
    ]) {
        Some(CredentialsForbidden)
    } else if text.contains("LimitExceeded")
        || any(&[
            "Quotas",
            "exceeded quota",
            "Quota has been met",
            "QUOTA_EXCEEDED",
        ])
        || text
            .find("Quota")
            .is_some_and(|at| text[at..].contains("exceeded"))
    {
        Some(QuotaExceeded)
    } else if any(&[
        "not available in the current hardware cluster",
        "out of stock",
        "Zone.NotOnSale",
    ]) {
        Some(CapacityUnavailable)
    } else if any(&[
        "is misconfigured and requires zero voluntary evictions",
        "SDK.CanNotResolveEndpoint",
        "The requested configuration is currently not supported",
    ]) {
        Some(TransientConfiguration)
    } else if text.contains("RetryableError") {
        Some(DependencyPending)
    } else if any(&[
        "PendingVerification",
        "Access Not Configured",
        "accessNotConfigured",
        "DependencyViolation",
        "OptInRequired",
        "Conflict",
        "inactive billing state",
        "timeout while waiting for state to become",
        "InvalidCidrBlock",
        "already busy for",
        "A resource with the ID",
    ]) {
        Some(DependencyBlocked)
    } else if any(&[
        "not supported in your requested Availability Zone",
        "notFound",
        "Invalid value",
        "violates constraint",
        "no attached internet gateway found",
        "invalid VPC attributes",
        "duplicate zones",
        "overlapping zones",
    ]) {
        Some(InvalidConfiguration)
    } else {
        None
    }
}

/// The throttling hint: the larger `TimeLeft` (milliseconds, by the SDK's test) of
/// `x-ratelimit-user-api` and `x-ratelimit-user` (`Limit:1,Remain:0,TimeLeft:2000,Reset:1234`).
pub fn throttle_time_left(headers: &http::HeaderMap) -> Option<Duration> {
    ["x-ratelimit-user-api", "x-ratelimit-user"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .filter_map(|value| {
            value.split(',').find_map(|part| {
                let (key, number) = part.split_once(':')?;
                (key.trim() == "TimeLeft")
                    .then(|| number.trim().parse::<u64>().ok())
                    .flatten()
            })
        })
        .max()
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str, headers: &[(&str, &str)]) -> RawResponse {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        RawResponse {
            status,
            headers: map,
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn parse(status: u16, body: &str) -> VendorError {
        parse_error(&raw(status, body, &[]), "DescribeClusterDetail").unwrap()
    }

    #[test]
    fn success_is_not_an_error() {
        assert!(parse_error(&raw(200, "{}", &[]), "X").is_none());
        assert!(parse_error(&raw(202, r#"{"task_id":"T-1"}"#, &[]), "X").is_none());
    }

    #[test]
    fn not_found_in_both_casings() {
        let lower = parse(
            404,
            r#"{"code":"ErrorClusterNotFound","message":"The specified cluster c-x is not found","requestId":"R-1","status":404}"#,
        );
        assert_eq!(lower.class, ErrorClass::VendorNotFound);
        assert_eq!(lower.code, "ErrorClusterNotFound");
        assert_eq!(lower.request_id, "R-1");
        assert_eq!(lower.http_status, 404);
        assert_eq!(lower.vendor, "ack");
        let upper = parse(
            400,
            r#"{"Code":"ErrorNodePoolNotFound","Message":"node pool np-x not found","RequestId":"R-2"}"#,
        );
        assert_eq!(upper.class, ErrorClass::VendorNotFound);
        assert_eq!(upper.message, "node pool np-x not found");
        assert_eq!(upper.request_id, "R-2");
    }

    #[test]
    fn throttling_carries_the_larger_time_left() {
        let err = parse_error(
            &raw(
                400,
                r#"{"Code":"Throttling.User","Message":"Request was denied due to user flow control.","RequestId":"R"}"#,
                &[
                    ("x-ratelimit-user-api", "Limit:1,Remain:0,TimeLeft:2000,Reset:1234"),
                    ("x-ratelimit-user", "Limit:10,Remain:0,TimeLeft:350,Reset:1234"),
                ],
            ),
            "CreateCluster",
        )
        .unwrap();
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_millis(2000)));
        for code in ["Throttling", "Throttling.Api", "Throttling.Tenant"] {
            let body = format!(r#"{{"code":"{code}","message":"slow down"}}"#);
            let err = parse(429, &body);
            assert_eq!(err.class, ErrorClass::RateLimited, "{code}");
            assert_eq!(err.retry_after, None);
        }
    }

    #[test]
    fn throttling_falls_back_to_retry_after() {
        let err = parse_error(
            &raw(429, r#"{"code":"Throttling"}"#, &[("retry-after", "3")]),
            "X",
        )
        .unwrap();
        assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn signature_and_key_errors_are_invalid_credentials() {
        for (status, body) in [
            (
                400,
                r#"{"code":"SignatureDoesNotMatch","message":"The request signature does not conform to Aliyun standards.","requestId":"R"}"#,
            ),
            (
                404,
                r#"{"Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found."}"#,
            ),
            (
                400,
                r#"{"Code":"InvalidAccessKeyId.Inactive","Message":"x"}"#,
            ),
            (400, r#"{"code":"InvalidTimeStamp.Expired","message":"x"}"#),
        ] {
            let err = parse(status, body);
            assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{body}");
            assert!(!err.class.retry_in_call());
        }
        assert_eq!(
            parse(403, r#"{"code":"Forbidden.RAM","message":"no"}"#).class,
            ErrorClass::CredentialsForbidden
        );
    }

    #[test]
    fn server_errors_are_retryable_outages() {
        let err = parse(
            500,
            r#"{"code":"InternalError","message":"The request processing has failed due to some unknown error."}"#,
        );
        assert_eq!(err.class, ErrorClass::VendorUnavailable);
        assert!(err.class.retry_in_call());
        let html = parse(502, "<html>Bad Gateway</html>");
        assert_eq!(html.class, ErrorClass::VendorUnavailable);
        assert_eq!(html.message, "<html>Bad Gateway</html>");
        assert_eq!(parse(503, "").message, "HTTP 503");
    }

    #[test]
    fn message_patterns_classify_unknown_codes() {
        let cases = [
            (
                "Unknown",
                "Quota for node count exceeded",
                ErrorClass::QuotaExceeded,
            ),
            (
                "X",
                "The instance type is out of stock",
                ErrorClass::CapacityUnavailable,
            ),
            ("X", "RequestLimitExceeded", ErrorClass::RateLimited),
            (
                "X",
                "user is not authorized to do this",
                ErrorClass::CredentialsForbidden,
            ),
            (
                "X",
                "InvalidCidrBlock: overlaps",
                ErrorClass::DependencyBlocked,
            ),
            (
                "X",
                "Invalid value for vpcid",
                ErrorClass::InvalidConfiguration,
            ),
            (
                "X",
                "SDK.CanNotResolveEndpoint",
                ErrorClass::TransientConfiguration,
            ),
            ("Zone.NotOnSale", "", ErrorClass::CapacityUnavailable),
            (
                "X",
                "cluster limit LimitExceeded",
                ErrorClass::QuotaExceeded,
            ),
        ];
        for (code, message, class) in cases {
            assert_eq!(classify(code, message, 400), class, "{code}: {message}");
        }
        assert_eq!(
            classify("ClusterNameAlreadyExist", "", 400),
            ErrorClass::InvalidConfiguration
        );
        assert_eq!(
            classify("QuotaExceeded.Node", "", 400),
            ErrorClass::QuotaExceeded
        );
    }

    #[test]
    fn status_is_the_last_resort() {
        assert_eq!(classify("Weird", "", 404), ErrorClass::VendorNotFound);
        assert_eq!(classify("Weird", "", 403), ErrorClass::CredentialsForbidden);
        assert_eq!(classify("Weird", "", 429), ErrorClass::RateLimited);
        assert_eq!(classify("Weird", "", 400), ErrorClass::InvalidConfiguration);
        assert_eq!(classify("Weird", "", 0), ErrorClass::Unknown);
    }
}
