//! Registry error responses → `VendorError`. The distribution spec's error body is
//! `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…","detail":…}]}`; codes are classified
//! first, the HTTP status last (a proxy or a registry without a body).

use crate::adapters::{
    error::{ErrorClass, VendorError, retry_after_header},
    transport::RawResponse,
};

pub const VENDOR: &str = "oci";

/// The first error of a distribution error body; the message is the registry's own text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> ErrorBody {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let first = parsed
            .as_ref()
            .and_then(|v| v.get("errors"))
            .and_then(|e| e.as_array())
            .and_then(|e| e.first());
        match first {
            Some(error) => ErrorBody {
                code: error
                    .get("code")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default()
                    .to_string(),
                message: error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_string(),
            },
            None => ErrorBody {
                code: String::new(),
                // A proxy's HTML or plain text: a short prefix only.
                message: String::from_utf8_lossy(body)
                    .chars()
                    .take(200)
                    .collect::<String>()
                    .trim()
                    .to_string(),
            },
        }
    }
}

/// Finds the error in a registry response, if it is one (HTTP status ≥ 400).
pub fn parse_error(raw: &RawResponse, operation: &'static str) -> Option<VendorError> {
    if raw.status < 400 {
        return None;
    }
    let body = ErrorBody::parse(&raw.body);
    let class = classify(&body.code, raw.status);
    let message = if body.message.is_empty() {
        format!("HTTP {}", raw.status)
    } else {
        body.message
    };
    let retry_after = match class {
        ErrorClass::RateLimited | ErrorClass::VendorUnavailable => retry_after_header(&raw.headers),
        _ => None,
    };
    Some(
        VendorError::new(class, VENDOR, operation, body.code, message)
            .with_status(raw.status)
            .with_retry_after(retry_after),
    )
}

/// The distribution spec's error codes (plus `TOOMANYREQUESTS`, which Docker Hub and
/// Distribution's rate limiter send), then the status.
pub fn classify(code: &str, status: u16) -> ErrorClass {
    match code {
        "UNAUTHORIZED" => ErrorClass::CredentialsInvalid,
        "DENIED" => ErrorClass::CredentialsForbidden,
        "TOOMANYREQUESTS" => ErrorClass::RateLimited,
        "NAME_UNKNOWN" | "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN" => {
            ErrorClass::VendorNotFound
        }
        "UNSUPPORTED" => ErrorClass::Unsupported,
        "NAME_INVALID"
        | "TAG_INVALID"
        | "DIGEST_INVALID"
        | "MANIFEST_INVALID"
        | "MANIFEST_BLOB_UNKNOWN"
        | "SIZE_INVALID"
        | "PAGINATION_NUMBER_INVALID" => ErrorClass::InvalidConfiguration,
        _ => match status {
            401 => ErrorClass::CredentialsInvalid,
            403 => ErrorClass::CredentialsForbidden,
            404 => ErrorClass::VendorNotFound,
            405 => ErrorClass::Unsupported,
            408 => ErrorClass::Timeout,
            429 => ErrorClass::RateLimited,
            400 | 409 | 412 | 413 | 415 | 422 => ErrorClass::InvalidConfiguration,
            500..=599 => ErrorClass::VendorUnavailable,
            _ => ErrorClass::Unknown,
        },
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

    /// Bodies as Distribution v3.1.2 and docker-registry 2.8 send them.
    #[test]
    fn distribution_error_bodies() {
        let cases = [
            (
                404,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"sha256:00"}]}"#,
                ErrorClass::VendorNotFound,
                "MANIFEST_UNKNOWN",
            ),
            (
                404,
                r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#,
                ErrorClass::VendorNotFound,
                "NAME_UNKNOWN",
            ),
            (
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
                ErrorClass::CredentialsInvalid,
                "UNAUTHORIZED",
            ),
            (
                403,
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
                ErrorClass::CredentialsForbidden,
                "DENIED",
            ),
            (
                405,
                r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#,
                ErrorClass::Unsupported,
                "UNSUPPORTED",
            ),
            (
                400,
                r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#,
                ErrorClass::InvalidConfiguration,
                "DIGEST_INVALID",
            ),
            (
                429,
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
                ErrorClass::RateLimited,
                "TOOMANYREQUESTS",
            ),
        ];
        for (status, body, class, code) in cases {
            let err = parse_error(&raw(status, body), "GetManifest").expect("an error");
            assert_eq!(err.class, class, "{body}");
            assert_eq!(err.code, code);
            assert_eq!(err.http_status, status);
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn no_body_falls_back_to_the_status() {
        assert_eq!(
            parse_error(&raw(502, "<html>bad gateway</html>"), "Ping")
                .unwrap()
                .class,
            ErrorClass::VendorUnavailable
        );
        assert_eq!(
            parse_error(&raw(404, ""), "Catalog").unwrap().message,
            "HTTP 404"
        );
        assert!(parse_error(&raw(200, "{}"), "Ping").is_none());
        assert!(parse_error(&raw(307, ""), "Ping").is_none());
    }
}
