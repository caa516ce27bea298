//! TKE errors (vendor-apis.md §2.3). Tencent answers errors with HTTP 200 and
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}`, so the body of every 200 response is
//! read; any other status is an error too. Classification: the exact code table first, then
//! message fallbacks, then the HTTP status.

use serde::Deserialize;

use crate::adapters::{
    error::{ErrorClass, VendorError, retry_after_header},
    transport::RawResponse,
};

use super::VENDOR;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Option<ResponseBody>,
    // The deprecated v2 body the SDK still recognises: `{code: int, message, codeDesc}`.
    code: Option<serde_json::Value>,
    message: Option<String>,
    #[serde(rename = "codeDesc")]
    code_desc: Option<String>,
}

#[derive(Deserialize)]
struct ResponseBody {
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    #[serde(rename = "RequestId", default)]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// Finds the error in a TKE response, if there is one. `None` means the call succeeded.
pub fn parse_error(raw: &RawResponse, operation: &'static str) -> Option<VendorError> {
    let retry_after = retry_after_header(&raw.headers);
    let envelope = serde_json::from_slice::<Envelope>(&raw.body).ok();
    if let Some(envelope) = envelope {
        if let Some(response) = envelope.response {
            if let Some(error) = response.error {
                let class = classify(&error.code, &error.message);
                return Some(
                    VendorError::new(class, VENDOR, operation, error.code, error.message)
                        .with_status(raw.status)
                        .with_request_id(response.request_id.unwrap_or_default())
                        .with_retry_after(retry_after),
                );
            }
        } else if let Some(code) = envelope.code.filter(|c| !is_zero(c)) {
            let code = envelope
                .code_desc
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| match code {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                });
            let message = envelope.message.unwrap_or_default();
            let class = classify(&code, &message);
            return Some(
                VendorError::new(class, VENDOR, operation, code, message)
                    .with_status(raw.status)
                    .with_retry_after(retry_after),
            );
        }
    }
    if raw.status == 200 {
        return None;
    }
    let class = match raw.status {
        429 => ErrorClass::RateLimited,
        401 => ErrorClass::CredentialsInvalid,
        403 => ErrorClass::CredentialsForbidden,
        // The path is always `/`: anything else means the endpoint is not TKE's.
        404 | 405 => ErrorClass::InvalidConfiguration,
        500..=599 => ErrorClass::VendorUnavailable,
        _ => ErrorClass::Unknown,
    };
    let snippet: String = String::from_utf8_lossy(&raw.body)
        .chars()
        .take(200)
        .collect();
    Some(
        VendorError::new(
            class,
            VENDOR,
            operation,
            "",
            format!("HTTP {}: {}", raw.status, snippet.trim()),
        )
        .with_status(raw.status)
        .with_retry_after(retry_after),
    )
}

fn is_zero(code: &serde_json::Value) -> bool {
    match code {
        serde_json::Value::Number(n) => n.as_i64() == Some(0),
        serde_json::Value::String(s) => s.is_empty() || s == "0",
        serde_json::Value::Null => true,
        _ => false,
    }
}

/// `code` is `prefix` or `prefix.<anything>`.
fn family(code: &str, prefix: &str) -> bool {
    code == prefix
        || code
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The class of a TKE error code (message used only when the code says nothing).
pub fn classify(code: &str, message: &str) -> ErrorClass {
    use ErrorClass::*;
    let last = code.rsplit('.').next().unwrap_or(code);
    // Order matters: "InternalError.ClusterNotFound" is a not-found, not an outage, and
    // "RequestLimitExceeded" is throttling, not a quota.
    if family(code, "RequestLimitExceeded") {
        return RateLimited;
    }
    if matches!(
        code,
        "AuthFailure.UnauthorizedOperation" | "AuthFailure.MFAFailure"
    ) || family(code, "UnauthorizedOperation")
        || last == "CamNoAuth"
        || matches!(code, "IpInBlacklist" | "IpNotInWhitelist")
    {
        return CredentialsForbidden;
    }
    if family(code, "AuthFailure") {
        return CredentialsInvalid;
    }
    if last == "ClusterNotFound"
        || family(code, "ResourceNotFound")
        || matches!(last, "RecordNotFound" | "DbRecordNotFound")
        || code == "InvalidParameter.ResourceNotFound"
    {
        return VendorNotFound;
    }
    if family(code, "LimitExceeded") || last.starts_with("QuotaMax") {
        return QuotaExceeded;
    }
    if family(code, "ResourceInsufficient") {
        return CapacityUnavailable;
    }
    if last == "ClusterState"
        || family(code, "ResourceInUse")
        || family(code, "ResourceUnavailable")
    {
        // The cluster is busy (creating, upgrading, scaling): the same call works later.
        return DependencyPending;
    }
    if family(code, "OperationDenied")
        || matches!(
            last,
            "ClusterForbiddenToDelete" | "CvmDeletionProtection" | "ClusterInDeletionProtection"
        )
    {
        return DependencyBlocked;
    }
    if last.starts_with("Cidr")
        || matches!(
            code,
            "InternalError.Param"
                | "FailedOperation.Param"
                | "InternalError.PublicClusterOpNotSupport"
        )
        || family(code, "InvalidParameter")
        || family(code, "InvalidParameterValue")
        || family(code, "MissingParameter")
        || family(code, "UnknownParameter")
        || family(code, "UnsupportedOperation")
        || matches!(
            code,
            "InvalidAction"
                | "InvalidRequest"
                | "NoSuchProduct"
                | "NoSuchVersion"
                | "UnsupportedRegion"
                | "UnsupportedProtocol"
                | "RequestSizeLimitExceeded"
                | "ActionOffline"
        )
    {
        return InvalidConfiguration;
    }
    if family(code, "InternalError") || family(code, "ServiceUnavailable") {
        return VendorUnavailable;
    }
    classify_message(message)
}

/// Fallbacks on the message, for codes the table does not know.
fn classify_message(message: &str) -> ErrorClass {
    use ErrorClass::*;
    let text = message.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if any(&["rate limit", "too many requests", "request limit"]) {
        RateLimited
    } else if any(&["signature", "secretid", "secret id"]) {
        CredentialsInvalid
    } else if any(&["unauthorized", "permission", "not authorized", "forbidden"]) {
        CredentialsForbidden
    } else if any(&["quota"]) {
        QuotaExceeded
    } else if any(&["insufficient", "sold out", "out of stock"]) {
        CapacityUnavailable
    } else if any(&["cluster not found", "cluster does not exist", "not exist"]) {
        VendorNotFound
    } else if any(&["invalid parameter", "parameter error", "invalid value"]) {
        InvalidConfiguration
    } else {
        Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn tencent(code: &str) -> RawResponse {
        raw(
            200,
            &format!(
                r#"{{"Response":{{"Error":{{"Code":"{code}","Message":"m"}},"RequestId":"req-1"}}}}"#
            ),
        )
    }

    #[test]
    fn documented_signature_failure_body() {
        let body = r#"{"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "The provided credentials could not be validated. Please check your signature is correct."}, "RequestId": "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"}}"#;
        let err = parse_error(&raw(200, body), "DescribeClusters").expect("an error");
        assert_eq!(err.class, ErrorClass::CredentialsInvalid);
        assert_eq!(err.code, "AuthFailure.SignatureFailure");
        assert_eq!(err.request_id, "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6");
        assert_eq!(err.http_status, 200);
        assert_eq!(err.operation, "DescribeClusters");
        assert!(err.message.contains("could not be validated"));
    }

    #[test]
    fn success_bodies_are_not_errors() {
        let ok = r#"{"Response":{"TotalCount":0,"Clusters":[],"RequestId":"r"}}"#;
        assert!(parse_error(&raw(200, ok), "DescribeClusters").is_none());
        // The v2 body with code 0 is a success too.
        assert!(parse_error(&raw(200, r#"{"code":0,"message":""}"#), "X").is_none());
    }

    #[test]
    fn code_table() {
        use ErrorClass::*;
        let cases = [
            ("RequestLimitExceeded", RateLimited),
            ("RequestLimitExceeded.UinLimitExceeded", RateLimited),
            (
                "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
                RateLimited,
            ),
            ("AuthFailure.SignatureFailure", CredentialsInvalid),
            ("AuthFailure.SignatureExpire", CredentialsInvalid),
            ("AuthFailure.SecretIdNotFound", CredentialsInvalid),
            ("AuthFailure.UnauthorizedOperation", CredentialsForbidden),
            ("UnauthorizedOperation.CamNoAuth", CredentialsForbidden),
            ("InternalError.CamNoAuth", CredentialsForbidden),
            ("ResourceNotFound.ClusterNotFound", VendorNotFound),
            ("InvalidParameter.ClusterNotFound", VendorNotFound),
            ("InternalError.ClusterNotFound", VendorNotFound),
            ("FailedOperation.ClusterNotFound", VendorNotFound),
            ("ResourceNotFound", VendorNotFound),
            ("ResourceNotFound.AsAsgNotExist", VendorNotFound),
            ("FailedOperation.RecordNotFound", VendorNotFound),
            ("InternalError", VendorUnavailable),
            ("InternalError.UnexpectedInternal", VendorUnavailable),
            ("ServiceUnavailable", VendorUnavailable),
            ("LimitExceeded", QuotaExceeded),
            ("FailedOperation.QuotaMaxClsLimit", QuotaExceeded),
            ("FailedOperation.QuotaMaxNodLimit", QuotaExceeded),
            ("InternalError.QuotaMaxNodLimit", QuotaExceeded),
            ("InvalidParameter", InvalidConfiguration),
            ("InvalidParameter.Param", InvalidConfiguration),
            ("InvalidParameterValue.Size", InvalidConfiguration),
            ("MissingParameter", InvalidConfiguration),
            ("UnknownParameter", InvalidConfiguration),
            (
                "InternalError.CidrConflictWithOtherCluster",
                InvalidConfiguration,
            ),
            ("FailedOperation.ClusterState", DependencyPending),
            (
                "ResourceUnavailable.ClusterInAbnormalStat",
                DependencyPending,
            ),
            (
                "OperationDenied.ClusterInDeletionProtection",
                DependencyBlocked,
            ),
            ("ResourceInsufficient", CapacityUnavailable),
            ("FailedOperation", Unknown),
        ];
        for (code, class) in cases {
            let err = parse_error(&tencent(code), "Op").expect(code);
            assert_eq!(err.class, class, "{code}");
            assert_eq!(err.code, code);
            assert_eq!(err.request_id, "req-1");
        }
    }

    #[test]
    fn message_fallbacks_for_unknown_codes() {
        assert_eq!(
            classify("FailedOperation.Whatever", "Request rate limit reached"),
            ErrorClass::RateLimited
        );
        assert_eq!(
            classify("FailedOperation.X", "the cluster does not exist"),
            ErrorClass::VendorNotFound
        );
        assert_eq!(classify("FailedOperation.X", "boom"), ErrorClass::Unknown);
    }

    #[test]
    fn non_200_statuses_are_errors() {
        let err = parse_error(&raw(502, "<html>Bad Gateway</html>"), "DescribeClusters")
            .expect("an error");
        assert_eq!(err.class, ErrorClass::VendorUnavailable);
        assert_eq!(err.http_status, 502);
        assert!(err.message.contains("Bad Gateway"));
        let err = parse_error(&raw(429, ""), "X").expect("an error");
        assert_eq!(err.class, ErrorClass::RateLimited);
        // A Tencent envelope on a non-200 status is still read for its code.
        let body =
            r#"{"Response":{"Error":{"Code":"InternalError","Message":"m"},"RequestId":"r"}}"#;
        let err = parse_error(&raw(500, body), "X").expect("an error");
        assert_eq!(err.code, "InternalError");
        assert_eq!(err.http_status, 500);
    }

    #[test]
    fn throttling_carries_the_retry_hint_when_sent() {
        let mut response = tencent("RequestLimitExceeded");
        response
            .headers
            .insert(http::header::RETRY_AFTER, "2".parse().expect("header"));
        let err = parse_error(&response, "X").expect("an error");
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn deprecated_v2_body() {
        let body = r#"{"code":4100,"message":"Authentication failed","codeDesc":"AuthFailure.SignatureFailure"}"#;
        let err = parse_error(&raw(200, body), "X").expect("an error");
        assert_eq!(err.code, "AuthFailure.SignatureFailure");
        assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    }
}
