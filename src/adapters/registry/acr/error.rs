//! ACR errors → `VendorError`. Alibaba POP answers failures with HTTP ≥ 400 and
//! `{RequestId, HostId, Code, Message, Recommend}`; whether ACR also answers business errors as
//! HTTP 200 with `IsSuccess: false` is UNCONFIRMED (vendor-apis.md §4), so both are read.
//! Throttling (`Throttling`, `Throttling.*`) carries the larger `TimeLeft` of the
//! `x-ratelimit-user-api` / `x-ratelimit-user` headers as its retry hint (§1.9).

use std::time::Duration;

use serde_json::Value;

use crate::adapters::{
    error::{ErrorClass, VendorError, retry_after_header},
    transport::RawResponse,
};

pub const VENDOR: &str = "acr";

/// The fields of an error body, in either casing.
#[derive(Debug, Default, PartialEq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// `IsSuccess`, when the body has it.
    pub is_success: Option<bool>,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> ErrorBody {
        let Ok(Value::Object(map)) = serde_json::from_slice(body) else {
            return ErrorBody {
                message: String::from_utf8_lossy(body).chars().take(200).collect(),
                ..ErrorBody::default()
            };
        };
        let field = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| match map.get(*k) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        ErrorBody {
            code: field(&["Code", "code"]),
            message: field(&["Message", "message"]),
            request_id: field(&["RequestId", "requestId"]),
            is_success: ["IsSuccess", "isSuccess"]
                .iter()
                .find_map(|k| map.get(*k)?.as_bool()),
        }
    }
}

/// Finds the error in an ACR response, if it is one.
pub fn parse_error(raw: &RawResponse, operation: &'static str) -> Option<VendorError> {
    let body = ErrorBody::parse(&raw.body);
    if raw.status < 400 && body.is_success != Some(false) {
        return None;
    }
    let class = classify(&body.code, raw.status);
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

/// The class of an ACR code, the HTTP status deciding when the code says nothing.
pub fn classify(code: &str, status: u16) -> ErrorClass {
    use ErrorClass::*;
    let family = |prefix: &str| code == prefix || code.starts_with(&format!("{prefix}."));
    let upper = code.to_ascii_uppercase();
    if family("Throttling") {
        RateLimited
    } else if matches!(
        code,
        "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "InvalidTimeStamp.Expired"
            | "SignatureNonceUsed"
    ) || family("InvalidAccessKeyId")
        || family("InvalidSecurityToken")
    {
        CredentialsInvalid
    } else if family("Forbidden") || code.starts_with("AccessDenied") || code == "NoPermission" {
        CredentialsForbidden
    // ACR EE's business codes are upper snake case (`NAMESPACE_NOT_EXIST`, …); the exact
    // set is UNCONFIRMED, so they are recognised by their words.
    } else if upper.contains("NOT_EXIST")
        || upper.contains("NOTFOUND")
        || upper.contains("NOT_FOUND")
    {
        VendorNotFound
    } else if upper.contains("ALREADY_EXIST") || upper.contains("NOT_EMPTY") {
        DependencyBlocked
    } else if family("QuotaExceeded") || upper.contains("EXCEED") {
        QuotaExceeded
    } else if matches!(
        code,
        "InternalError" | "ServiceUnavailable" | "UnknownError"
    ) {
        VendorUnavailable
    } else if family("InvalidParameter") || family("MissingParameter") || upper.contains("PARAM") {
        InvalidConfiguration
    } else {
        match status {
            401 => CredentialsInvalid,
            403 => CredentialsForbidden,
            404 => VendorNotFound,
            409 => DependencyBlocked,
            429 => RateLimited,
            500..=599 => VendorUnavailable,
            400..=499 => InvalidConfiguration,
            _ => Unknown,
        }
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

    #[test]
    fn success_bodies_are_not_errors() {
        let ok = r#"{"Code":"success","IsSuccess":true,"RequestId":"R"}"#;
        assert!(parse_error(&raw(200, ok, &[]), "ListNamespace").is_none());
        assert!(parse_error(&raw(200, r#"{"Namespaces":[]}"#, &[]), "ListNamespace").is_none());
    }

    #[test]
    fn a_business_error_on_http_200_is_an_error() {
        let body = r#"{"Code":"NAMESPACE_NOT_EXIST","Message":"namespace not exist","IsSuccess":false,"RequestId":"R-1"}"#;
        let err = parse_error(&raw(200, body, &[]), "DeleteNamespace").unwrap();
        assert_eq!(err.class, ErrorClass::VendorNotFound);
        assert_eq!(err.code, "NAMESPACE_NOT_EXIST");
        assert_eq!(err.request_id, "R-1");
        assert_eq!(err.vendor, "acr");
    }

    /// The POP body from the old SDK's `server_error_test.go` shape.
    #[test]
    fn pop_errors_by_code() {
        let body = r#"{"RequestId":"R-2","HostId":"cr.cn-hangzhou.aliyuncs.com","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation.","Recommend":"https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch"}"#;
        let err = parse_error(&raw(400, body, &[]), "GetInstance").unwrap();
        assert_eq!(err.class, ErrorClass::CredentialsInvalid);
        assert_eq!(err.http_status, 400);
        for (code, class) in [
            (
                "InvalidAccessKeyId.NotFound",
                ErrorClass::CredentialsInvalid,
            ),
            ("Forbidden.RAM", ErrorClass::CredentialsForbidden),
            ("NAMESPACE_ALREADY_EXIST", ErrorClass::DependencyBlocked),
            ("REPO_NOT_EXIST", ErrorClass::VendorNotFound),
            ("InternalError", ErrorClass::VendorUnavailable),
            (
                "InvalidParameter.PageSize",
                ErrorClass::InvalidConfiguration,
            ),
        ] {
            let body = format!(r#"{{"Code":"{code}","Message":"m"}}"#);
            assert_eq!(
                parse_error(&raw(400, &body, &[]), "X").unwrap().class,
                class,
                "{code}"
            );
        }
        assert_eq!(
            parse_error(&raw(503, "<html>busy</html>", &[]), "X")
                .unwrap()
                .class,
            ErrorClass::VendorUnavailable
        );
    }

    #[test]
    fn throttling_carries_the_larger_time_left() {
        let err = parse_error(
            &raw(
                400,
                r#"{"Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#,
                &[
                    ("x-ratelimit-user-api", "Limit:1,Remain:0,TimeLeft:2000,Reset:1234"),
                    ("x-ratelimit-user", "Limit:10,Remain:0,TimeLeft:350,Reset:1234"),
                ],
            ),
            "ListRepoTag",
        )
        .unwrap();
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_millis(2000)));
        let bare = parse_error(&raw(400, r#"{"Code":"Throttling.Api"}"#, &[]), "X").unwrap();
        assert_eq!(bare.class, ErrorClass::RateLimited);
        assert_eq!(bare.retry_after, None);
    }
}
