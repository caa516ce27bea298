//! TCR errors (vendor-apis.md §2.3, §3). Tencent answers errors with HTTP 200 and
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}`, so every 200 body is read; any
//! other status is an error too. Throttling is `RequestLimitExceeded` and its sub-codes; its
//! hint, when a `Retry-After` header comes with it (not documented for Tencent), is kept.

use serde::Deserialize;

use crate::adapters::{
    error::{ErrorClass, VendorError, retry_after_header},
    transport::RawResponse,
};

pub const VENDOR: &str = "tcr";

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Option<ResponseBody>,
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

/// Finds the error in a TCR response, if there is one. `None` means the call succeeded.
pub fn parse_error(raw: &RawResponse, operation: &'static str) -> Option<VendorError> {
    let retry_after = retry_after_header(&raw.headers);
    if let Ok(Envelope {
        response: Some(response),
    }) = serde_json::from_slice::<Envelope>(&raw.body)
    {
        if let Some(error) = response.error {
            let class = classify(&error.code);
            return Some(
                VendorError::new(class, VENDOR, operation, error.code, error.message)
                    .with_status(raw.status)
                    .with_request_id(response.request_id.unwrap_or_default())
                    .with_retry_after(retry_after.filter(|_| class == ErrorClass::RateLimited)),
            );
        }
        if raw.status == 200 {
            return None;
        }
    }
    let class = match raw.status {
        200 => {
            return Some(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                operation,
                "MalformedResponse",
                "the answer has no `Response` object",
            ));
        }
        429 => ErrorClass::RateLimited,
        401 => ErrorClass::CredentialsInvalid,
        403 => ErrorClass::CredentialsForbidden,
        // The path is always `/`: anything else means the endpoint is not Tencent's API.
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

/// `code` is `prefix` or `prefix.<anything>`.
fn family(code: &str, prefix: &str) -> bool {
    code == prefix
        || code
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The class of a TCR error code. Order matters: `InternalError.ErrorTcrResourceConflict` is
/// a conflict, not an outage.
pub fn classify(code: &str) -> ErrorClass {
    use ErrorClass::*;
    if family(code, "RequestLimitExceeded") {
        RateLimited
    } else if code.ends_with("ResourceConflict")
        || code.ends_with("ErrNamespaceExist")
        || code == "FailedOperation.PreconditionFailed"
        || family(code, "ResourceInUse")
        || code.ends_with("ErrNoUserInitialized")
        || code == "ResourceNotFound.ErrNoUser"
    {
        DependencyBlocked
    } else if matches!(
        code,
        "AuthFailure.UnauthorizedOperation" | "AuthFailure.MFAFailure"
    ) || family(code, "UnauthorizedOperation")
        || family(code, "OperationDenied")
    {
        CredentialsForbidden
    // Before the not-found rule: `AuthFailure.SecretIdNotFound` is a wrong key, not a
    // missing object.
    } else if family(code, "AuthFailure") {
        CredentialsInvalid
    } else if family(code, "ResourceNotFound") || code.ends_with("NotFound") {
        VendorNotFound
    } else if family(code, "LimitExceeded") || family(code, "ResourceInsufficient") {
        QuotaExceeded
    } else if family(code, "InternalError") || family(code, "ServiceUnavailable") {
        VendorUnavailable
    } else if [
        "InvalidParameter",
        "InvalidParameterValue",
        "MissingParameter",
        "UnknownParameter",
        "InvalidAction",
        "NoSuchVersion",
        "UnsupportedRegion",
        "UnsupportedOperation",
    ]
    .iter()
    .any(|prefix| family(code, prefix))
    {
        InvalidConfiguration
    } else {
        Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn success_is_not_an_error() {
        let ok = r#"{"Response":{"NamespaceList":[],"TotalCount":0,"RequestId":"R"}}"#;
        assert!(parse_error(&raw(200, ok), "DescribeNamespaces").is_none());
    }

    #[test]
    fn errors_come_on_http_200() {
        let body = r#"{"Response":{"Error":{"Code":"ResourceNotFound.TcrResourceNotFound","Message":"namespace not found"},"RequestId":"R-1"}}"#;
        let err = parse_error(&raw(200, body), "DeleteNamespace").unwrap();
        assert_eq!(err.class, ErrorClass::VendorNotFound);
        assert_eq!(err.request_id, "R-1");
        assert_eq!(err.vendor, "tcr");
    }

    #[test]
    fn codes_from_the_doc() {
        for (code, class) in [
            ("RequestLimitExceeded", ErrorClass::RateLimited),
            (
                "RequestLimitExceeded.UinLimitExceeded",
                ErrorClass::RateLimited,
            ),
            (
                "AuthFailure.SignatureFailure",
                ErrorClass::CredentialsInvalid,
            ),
            (
                "AuthFailure.SecretIdNotFound",
                ErrorClass::CredentialsInvalid,
            ),
            (
                "AuthFailure.UnauthorizedOperation",
                ErrorClass::CredentialsForbidden,
            ),
            (
                "FailedOperation.ErrorTcrResourceConflict",
                ErrorClass::DependencyBlocked,
            ),
            (
                "InternalError.ErrorTcrResourceConflict",
                ErrorClass::DependencyBlocked,
            ),
            (
                "FailedOperation.PreconditionFailed",
                ErrorClass::DependencyBlocked,
            ),
            (
                "InvalidParameter.ErrNamespaceExist",
                ErrorClass::DependencyBlocked,
            ),
            (
                "ResourceNotFound.ErrNoNamespace",
                ErrorClass::VendorNotFound,
            ),
            ("InternalError", ErrorClass::VendorUnavailable),
            (
                "InvalidParameter.ErrorTcrInvalidParameter",
                ErrorClass::InvalidConfiguration,
            ),
            (
                "LimitExceeded.ErrNamespaceMaxLimit",
                ErrorClass::QuotaExceeded,
            ),
            ("OperationDenied", ErrorClass::CredentialsForbidden),
        ] {
            assert_eq!(classify(code), class, "{code}");
        }
    }

    #[test]
    fn gateway_errors_are_outages() {
        let err = parse_error(&raw(502, "<html>502 Bad Gateway</html>"), "X").unwrap();
        assert_eq!(err.class, ErrorClass::VendorUnavailable);
        assert_eq!(err.http_status, 502);
        let err = parse_error(&raw(200, "not json"), "X").unwrap();
        assert_eq!(err.class, ErrorClass::Unknown);
    }
}
