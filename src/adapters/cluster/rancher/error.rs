//! Rancher (norman) errors: `{"type":"error","status":N,"code":"…","message":"…","fieldName":"…"}`
//! (vendor-apis.md §6). Classified on `code` first, then on the message, then on the HTTP status;
//! never on `type`, whose rendered value is UNCONFIRMED.

use serde::Deserialize;

use crate::adapters::{ErrorClass, VendorError, error::retry_after_header, transport::RawResponse};

use super::VENDOR;

/// norman's `httperror` 422 codes.
const VALIDATION_CODES: [&str; 17] = [
    "InvalidDateFormat",
    "InvalidFormat",
    "InvalidReference",
    "NotNullable",
    "NotUnique",
    "MinLimitExceeded",
    "MaxLimitExceeded",
    "MinLengthExceeded",
    "MaxLengthExceeded",
    "InvalidOption",
    "InvalidCharacters",
    "MissingRequired",
    "InvalidCSRFToken",
    "InvalidAction",
    "InvalidBodyContent",
    "InvalidType",
    "InvalidState",
];

/// Longest vendor message kept (a proxy's HTML error page can be large).
const MESSAGE_LIMIT: usize = 512;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NormanError {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    field_name: String,
}

/// The error in `raw`, or `None` when it is a success (2xx).
pub fn parse_error(raw: &RawResponse, operation: &'static str) -> Option<VendorError> {
    if (200..300).contains(&raw.status) {
        return None;
    }
    let body: Option<NormanError> = serde_json::from_slice(&raw.body)
        .ok()
        .filter(|e: &NormanError| !e.code.is_empty() || e.status.is_some());
    let status = raw.status;
    let (class, code, message) = match body {
        Some(err) => {
            let message = match err.field_name.as_str() {
                "" => err.message.clone(),
                field => format!("{} (field {field})", err.message),
            };
            let class = by_code(&err.code)
                .or_else(|| by_message(&err.message))
                .unwrap_or_else(|| by_status(status, true));
            (class, err.code, message)
        }
        None => {
            let text = String::from_utf8_lossy(&raw.body);
            let class = by_status(status, false);
            let message = match (status, raw.headers.get(http::header::LOCATION)) {
                (300..=399, Some(location)) => format!(
                    "Rancher redirected to {}; set rancher_url to the server's https URL",
                    location.to_str().unwrap_or("?")
                ),
                (404, _) => format!(
                    "HTTP 404 without a Rancher error body; is rancher_url a Rancher server? {}",
                    text.trim()
                ),
                _ => format!("HTTP {status}: {}", text.trim()),
            };
            (class, String::new(), message)
        }
    };
    let retry_after = match class {
        ErrorClass::RateLimited | ErrorClass::VendorUnavailable => retry_after_header(&raw.headers),
        _ => None,
    };
    Some(
        VendorError::new(class, VENDOR, operation, code, truncate(message))
            .with_status(status)
            .with_retry_after(retry_after),
    )
}

fn by_code(code: &str) -> Option<ErrorClass> {
    Some(match code {
        "Unauthorized" => ErrorClass::CredentialsInvalid,
        "PermissionDenied" | "Forbidden" => ErrorClass::CredentialsForbidden,
        "NotFound" => ErrorClass::VendorNotFound,
        // The action exists but the object's state does not offer it yet (a cluster that is
        // not active has no generateKubeconfig): wait and try again.
        "ActionNotAvailable" => ErrorClass::DependencyPending,
        "MethodNotAllow" | "Conflict" => ErrorClass::InvalidConfiguration,
        "TooManyRequests" => ErrorClass::RateLimited,
        "ServerError" | "ClusterUnavailable" => ErrorClass::VendorUnavailable,
        code if VALIDATION_CODES.contains(&code) => ErrorClass::InvalidConfiguration,
        _ => return None,
    })
}

fn by_message(message: &str) -> Option<ErrorClass> {
    let message = message.to_ascii_lowercase();
    if message.contains("must authenticate") || message.contains("unauthorized") {
        Some(ErrorClass::CredentialsInvalid)
    } else if message.contains("too many requests") || message.contains("rate limit") {
        Some(ErrorClass::RateLimited)
    } else if message.contains("forbidden") {
        Some(ErrorClass::CredentialsForbidden)
    } else {
        None
    }
}

/// `norman`: whether the body was a Rancher error. A bare 404 (no Rancher body) is a wrong URL
/// rather than a missing object: calling it `VendorNotFound` would let a delete against a
/// misconfigured URL count as done.
fn by_status(status: u16, norman: bool) -> ErrorClass {
    match status {
        401 => ErrorClass::CredentialsInvalid,
        403 => ErrorClass::CredentialsForbidden,
        404 if norman => ErrorClass::VendorNotFound,
        300..=399 | 400 | 404 | 405 | 409 | 422 => ErrorClass::InvalidConfiguration,
        408 => ErrorClass::Timeout,
        429 => ErrorClass::RateLimited,
        500..=599 => ErrorClass::VendorUnavailable,
        _ => ErrorClass::Unknown,
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MESSAGE_LIMIT {
        let mut end = MESSAGE_LIMIT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn raw(status: u16, body: &str, headers: &[(&str, &str)]) -> RawResponse {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        RawResponse {
            status,
            headers: map,
            body: Bytes::from(body.to_string()),
        }
    }

    fn norman(status: u16, code: &str) -> RawResponse {
        raw(
            status,
            &format!(
                r#"{{"type":"error","status":{status},"code":"{code}","message":"something about {code}"}}"#
            ),
            &[],
        )
    }

    #[test]
    fn success_is_not_an_error() {
        assert!(parse_error(&raw(200, "{}", &[]), "GetCluster").is_none());
        assert!(parse_error(&raw(201, "", &[]), "CreateCluster").is_none());
    }

    #[test]
    fn documented_codes() {
        for (status, code, class) in [
            (401, "Unauthorized", ErrorClass::CredentialsInvalid),
            (403, "PermissionDenied", ErrorClass::CredentialsForbidden),
            (404, "NotFound", ErrorClass::VendorNotFound),
            (405, "MethodNotAllow", ErrorClass::InvalidConfiguration),
            (409, "Conflict", ErrorClass::InvalidConfiguration),
            (404, "ActionNotAvailable", ErrorClass::DependencyPending),
            (500, "ServerError", ErrorClass::VendorUnavailable),
            (503, "ClusterUnavailable", ErrorClass::VendorUnavailable),
        ] {
            let err = parse_error(&norman(status, code), "GetCluster").unwrap();
            assert_eq!(err.class, class, "{code}");
            assert_eq!(err.code, code);
            assert_eq!(err.http_status, status);
            assert_eq!(err.vendor, "rancher");
            assert_eq!(err.message, format!("something about {code}"));
        }
        for code in VALIDATION_CODES {
            let err = parse_error(&norman(422, code), "CreateCluster").unwrap();
            assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{code}");
        }
    }

    #[test]
    fn the_code_wins_over_the_status_and_type_is_ignored() {
        // A NotFound code on an odd status, and a `type` rendered as the schema path.
        let body = r#"{"type":"/meta/schemas/error","status":404,"code":"NotFound","message":"clusters.management.cattle.io \"c-abcde\" not found"}"#;
        let err = parse_error(&raw(404, body, &[]), "GetCluster").unwrap();
        assert!(err.is_not_found());
        let body = r#"{"type":"error","status":400,"code":"ClusterUnavailable","message":"x"}"#;
        let err = parse_error(&raw(400, body, &[]), "GetCluster").unwrap();
        assert_eq!(err.class, ErrorClass::VendorUnavailable);
    }

    #[test]
    fn validation_errors_name_the_field() {
        let body = r#"{"type":"error","status":422,"code":"MissingRequired","message":"missing required name","fieldName":"name"}"#;
        let err = parse_error(&raw(422, body, &[]), "CreateCluster").unwrap();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert_eq!(err.code, "MissingRequired");
        assert!(err.message.contains("(field name)"), "{}", err.message);
        let body = r#"{"type":"error","status":422,"code":"NotUnique","message":"cluster name is not unique","fieldName":"name"}"#;
        let err = parse_error(&raw(422, body, &[]), "CreateCluster").unwrap();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
    }

    #[test]
    fn throttling_carries_retry_after() {
        let body =
            r#"{"type":"error","status":429,"code":"TooManyRequests","message":"slow down"}"#;
        let err = parse_error(&raw(429, body, &[("retry-after", "2")]), "ListClusters").unwrap();
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(2)));
        // A proxy's 429 without a Rancher body.
        let err = parse_error(&raw(429, "<html>429</html>", &[]), "ListClusters").unwrap();
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(err.retry_after, None);
        // 503 may say when to come back too.
        let err = parse_error(&raw(503, "unavailable", &[("retry-after", "1")]), "X").unwrap();
        assert_eq!(err.class, ErrorClass::VendorUnavailable);
        assert_eq!(err.retry_after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn fallbacks_by_message_then_status() {
        let body = r#"{"type":"error","status":401,"code":"","message":"must authenticate"}"#;
        let err = parse_error(&raw(401, body, &[]), "GetCluster").unwrap();
        assert_eq!(err.class, ErrorClass::CredentialsInvalid);
        let body =
            r#"{"type":"error","status":400,"code":"SomethingNew","message":"rate limit reached"}"#;
        let err = parse_error(&raw(400, body, &[]), "GetCluster").unwrap();
        assert_eq!(err.class, ErrorClass::RateLimited);
        for (status, class) in [
            (401, ErrorClass::CredentialsInvalid),
            (403, ErrorClass::CredentialsForbidden),
            (502, ErrorClass::VendorUnavailable),
            (504, ErrorClass::VendorUnavailable),
            (418, ErrorClass::Unknown),
        ] {
            let err = parse_error(&raw(status, "<html>oops</html>", &[]), "X").unwrap();
            assert_eq!(err.class, class, "{status}");
            assert!(err.code.is_empty());
        }
    }

    #[test]
    fn a_bare_404_or_redirect_is_a_configuration_problem() {
        let err = parse_error(&raw(404, "404 page not found", &[]), "DeleteCluster").unwrap();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert!(!err.is_not_found());
        let err = parse_error(
            &raw(
                301,
                "",
                &[("location", "https://rancher.example.com/v3/clusters")],
            ),
            "ListClusters",
        )
        .unwrap();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert!(err.message.contains("https://rancher.example.com"));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(2000);
        let err = parse_error(&raw(500, &long, &[]), "X").unwrap();
        assert!(err.message.len() <= MESSAGE_LIMIT + 3);
    }
}
