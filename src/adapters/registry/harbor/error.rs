//! Harbor errors: `{"errors":[{"code":"NOT_FOUND","message":"…"}]}` (vendor-apis.md §5, codes
//! from Harbor's `src/lib/errors/const.go`). Classified on the code first, then on the HTTP
//! status; a body that is not Harbor's (a proxy's HTML page) goes by status alone, except that a
//! bare 404 is a wrong endpoint rather than a missing object.

use serde::Deserialize;

use crate::adapters::{ErrorClass, VendorError, error::retry_after_header, transport::RawResponse};

use super::VENDOR;

/// Longest vendor message kept (a proxy's HTML error page can be large).
const MESSAGE_LIMIT: usize = 512;

#[derive(Debug, Default, Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<HarborError>,
}

#[derive(Debug, Default, Deserialize)]
struct HarborError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The error in `raw`, or `None` when it is a success (2xx).
pub fn parse_error(raw: &RawResponse, operation: &'static str) -> Option<VendorError> {
    if (200..300).contains(&raw.status) {
        return None;
    }
    let status = raw.status;
    let first = serde_json::from_slice::<Errors>(&raw.body)
        .ok()
        .and_then(|e| e.errors.into_iter().next());
    let (class, code, message) = match first {
        Some(err) => {
            let class = by_code(&err.code).unwrap_or_else(|| by_status(status, true));
            (class, err.code, err.message)
        }
        None => {
            let text = String::from_utf8_lossy(&raw.body);
            let message = match status {
                404 => format!(
                    "HTTP 404 without a Harbor error body; is the endpoint a Harbor server? {}",
                    text.trim()
                ),
                _ => format!("HTTP {status}: {}", text.trim()),
            };
            (by_status(status, false), String::new(), message)
        }
    };
    let retry_after = match class {
        ErrorClass::RateLimited | ErrorClass::VendorUnavailable => retry_after_header(&raw.headers),
        _ => None,
    };
    let request_id = raw
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Some(
        VendorError::new(class, VENDOR, operation, code, truncate(message))
            .with_status(status)
            .with_request_id(request_id)
            .with_retry_after(retry_after),
    )
}

fn by_code(code: &str) -> Option<ErrorClass> {
    Some(match code {
        "UNAUTHORIZED" => ErrorClass::CredentialsInvalid,
        "FORBIDDEN" => ErrorClass::CredentialsForbidden,
        "NOT_FOUND" => ErrorClass::VendorNotFound,
        // Something is in the way (a project that still holds repositories, an artifact an
        // index refers to): not retryable until someone removes it.
        "PRECONDITION" | "VIOLATE_FOREIGN_KEY_CONSTRAINT" => ErrorClass::DependencyBlocked,
        // Conflicts (it already exists) and bad requests are the request's fault; the service
        // tells them apart by `http_status` (409) and `code` (CONFLICT).
        "CONFLICT" | "BAD_REQUEST" | "METHOD_NOT_ALLOWED" | "REQUEST_ENTITY_TOO_LARGE" => {
            ErrorClass::InvalidConfiguration
        }
        "TOO_MANY_REQUEST" => ErrorClass::RateLimited,
        // UNKNOWN and codes newer than this list go by the HTTP status.
        _ => return None,
    })
}

/// `harbor`: whether the body was a Harbor error.
fn by_status(status: u16, harbor: bool) -> ErrorClass {
    match status {
        401 => ErrorClass::CredentialsInvalid,
        403 => ErrorClass::CredentialsForbidden,
        404 if harbor => ErrorClass::VendorNotFound,
        412 => ErrorClass::DependencyBlocked,
        300..=399 | 400 | 404 | 405 | 409 | 413 | 415 | 422 => ErrorClass::InvalidConfiguration,
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

    fn harbor(status: u16, code: &str, message: &str) -> RawResponse {
        raw(
            status,
            &format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#),
            &[("x-request-id", "req-1")],
        )
    }

    #[test]
    fn success_is_not_an_error() {
        assert!(parse_error(&raw(200, "[]", &[]), "ListProjects").is_none());
        assert!(parse_error(&raw(201, "", &[]), "CreateProject").is_none());
    }

    #[test]
    fn documented_codes() {
        for (status, code, class) in [
            (401, "UNAUTHORIZED", ErrorClass::CredentialsInvalid),
            (403, "FORBIDDEN", ErrorClass::CredentialsForbidden),
            (404, "NOT_FOUND", ErrorClass::VendorNotFound),
            (409, "CONFLICT", ErrorClass::InvalidConfiguration),
            (400, "BAD_REQUEST", ErrorClass::InvalidConfiguration),
            (405, "METHOD_NOT_ALLOWED", ErrorClass::InvalidConfiguration),
            (412, "PRECONDITION", ErrorClass::DependencyBlocked),
            (429, "TOO_MANY_REQUEST", ErrorClass::RateLimited),
            (500, "UNKNOWN", ErrorClass::VendorUnavailable),
            (
                412,
                "VIOLATE_FOREIGN_KEY_CONSTRAINT",
                ErrorClass::DependencyBlocked,
            ),
        ] {
            let err = parse_error(&harbor(status, code, "said so"), "X").unwrap();
            assert_eq!(err.class, class, "{code}");
            assert_eq!(err.code, code);
            assert_eq!(err.message, "said so");
            assert_eq!(err.http_status, status);
            assert_eq!(err.request_id, "req-1");
            assert_eq!(err.vendor, "harbor");
        }
    }

    /// Captured from Harbor: deleting a project that still has repositories.
    #[test]
    fn a_project_with_repositories_is_a_precondition() {
        let body = r#"{"errors":[{"code":"PRECONDITION","message":"the project contains repositories, can not be deleted"}]}"#;
        let err = parse_error(&raw(412, body, &[]), "DeleteProject").unwrap();
        assert_eq!(err.class, ErrorClass::DependencyBlocked);
        assert!(!err.class.retry_in_call());
    }

    #[test]
    fn throttling_and_outages_carry_retry_after() {
        let err = parse_error(
            &raw(
                429,
                r#"{"errors":[{"code":"TOO_MANY_REQUEST","message":"slow down"}]}"#,
                &[("retry-after", "2")],
            ),
            "ListProjects",
        )
        .unwrap();
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(2)));
        let err =
            parse_error(&raw(503, "<html>busy</html>", &[("retry-after", "1")]), "X").unwrap();
        assert_eq!(err.class, ErrorClass::VendorUnavailable);
        assert_eq!(err.retry_after, Some(Duration::from_secs(1)));
        assert!(err.code.is_empty());
    }

    #[test]
    fn foreign_bodies_go_by_status_and_a_bare_404_is_configuration() {
        let err = parse_error(&raw(404, "404 page not found", &[]), "DeleteProject").unwrap();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert!(!err.is_not_found());
        for (status, class) in [
            (401, ErrorClass::CredentialsInvalid),
            (403, ErrorClass::CredentialsForbidden),
            (412, ErrorClass::DependencyBlocked),
            (502, ErrorClass::VendorUnavailable),
            (418, ErrorClass::Unknown),
        ] {
            assert_eq!(
                parse_error(&raw(status, "oops", &[]), "X").unwrap().class,
                class
            );
        }
        // An unknown code on a known status goes by the status.
        let err = parse_error(&harbor(404, "SOMETHING_NEW", "x"), "X").unwrap();
        assert_eq!(err.class, ErrorClass::VendorNotFound);
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(2000);
        let err = parse_error(&raw(500, &long, &[]), "X").unwrap();
        assert!(err.message.len() <= MESSAGE_LIMIT + 3);
    }
}
