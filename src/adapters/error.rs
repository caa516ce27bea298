//! Vendor errors, classified once by each adapter's `parse_error` so that retry decisions and
//! gRPC codes never have to look at vendor codes again.

use std::time::Duration;

/// Vendor-neutral classes of failure (the proto's `ErrorClass`, plus `Unsupported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    CredentialsInvalid,
    CredentialsForbidden,
    QuotaExceeded,
    RateLimited,
    DependencyBlocked,
    DependencyPending,
    CapacityUnavailable,
    InvalidConfiguration,
    TransientConfiguration,
    CleanupBlocked,
    WebhookBlocking,
    VendorNotFound,
    VendorUnavailable,
    Timeout,
    Unknown,
    /// The provider cannot do this at all. Never retried; checked before an operation starts.
    Unsupported,
}

impl ErrorClass {
    /// Whether trying again later can succeed. Throttling, vendor outages and timeouts can;
    /// credential, quota and validation failures cannot.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited
                | ErrorClass::DependencyPending
                | ErrorClass::CapacityUnavailable
                | ErrorClass::TransientConfiguration
                | ErrorClass::CleanupBlocked
                | ErrorClass::VendorUnavailable
                | ErrorClass::Timeout
                | ErrorClass::Unknown
        )
    }

    /// Whether the transport should retry the same call right away (with backoff): only
    /// throttling and transient vendor failures, never auth or validation errors.
    pub fn retry_in_call(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited | ErrorClass::VendorUnavailable | ErrorClass::Timeout
        )
    }

    /// The stable name, used as `google.rpc.ErrorInfo.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::CredentialsInvalid => "CREDENTIALS_INVALID",
            ErrorClass::CredentialsForbidden => "CREDENTIALS_FORBIDDEN",
            ErrorClass::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorClass::RateLimited => "RATE_LIMITED",
            ErrorClass::DependencyBlocked => "DEPENDENCY_BLOCKED",
            ErrorClass::DependencyPending => "DEPENDENCY_PENDING",
            ErrorClass::CapacityUnavailable => "CAPACITY_UNAVAILABLE",
            ErrorClass::InvalidConfiguration => "INVALID_CONFIGURATION",
            ErrorClass::TransientConfiguration => "TRANSIENT_CONFIGURATION",
            ErrorClass::CleanupBlocked => "CLEANUP_BLOCKED",
            ErrorClass::WebhookBlocking => "WEBHOOK_BLOCKING",
            ErrorClass::VendorNotFound => "VENDOR_NOT_FOUND",
            ErrorClass::VendorUnavailable => "VENDOR_UNAVAILABLE",
            ErrorClass::Timeout => "TIMEOUT",
            ErrorClass::Unknown => "UNKNOWN",
            ErrorClass::Unsupported => "UNSUPPORTED_BY_PROVIDER",
        }
    }

    pub fn parse(text: &str) -> Option<ErrorClass> {
        use ErrorClass::*;
        [
            CredentialsInvalid,
            CredentialsForbidden,
            QuotaExceeded,
            RateLimited,
            DependencyBlocked,
            DependencyPending,
            CapacityUnavailable,
            InvalidConfiguration,
            TransientConfiguration,
            CleanupBlocked,
            WebhookBlocking,
            VendorNotFound,
            VendorUnavailable,
            Timeout,
            Unknown,
            Unsupported,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }
}

/// One failed vendor call (or a call the provider cannot make), with what the vendor said.
/// The message never contains credentials: adapters build it from the vendor's response body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{vendor} {operation}: {class:?} {code}: {message}")]
pub struct VendorError {
    pub class: ErrorClass,
    /// Provider id: "ack", "tke", "rancher".
    pub vendor: &'static str,
    /// The vendor action, such as "CreateCluster".
    pub operation: &'static str,
    /// The vendor's exact code, such as "Throttling.User"; empty when it gave none.
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// 0 when no HTTP response was received.
    pub http_status: u16,
    /// How long the vendor asked us to wait, when it said.
    pub retry_after: Option<Duration>,
}

impl VendorError {
    pub fn new(
        class: ErrorClass,
        vendor: &'static str,
        operation: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        VendorError {
            class,
            vendor,
            operation,
            code: code.into(),
            message: message.into(),
            request_id: String::new(),
            http_status: 0,
            retry_after: None,
        }
    }

    /// The provider does not support `operation`.
    pub fn unsupported(vendor: &'static str, operation: &'static str) -> Self {
        Self::new(
            ErrorClass::Unsupported,
            vendor,
            operation,
            "",
            format!("provider {vendor:?} does not support {operation}"),
        )
    }

    /// Whether this error says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::VendorNotFound
    }

    pub fn temporary(&self) -> bool {
        self.class.retryable()
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = status;
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

pub type Result<T, E = VendorError> = std::result::Result<T, E>;

/// Parses `Retry-After` in its delay-seconds form (the only form our vendors send).
pub fn retry_after_header(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        // A value beyond what a Duration holds (such as "1e300") would make from_secs_f64 panic.
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_outages_retry_in_call() {
        assert!(ErrorClass::RateLimited.retry_in_call());
        assert!(ErrorClass::VendorUnavailable.retry_in_call());
        assert!(!ErrorClass::CredentialsInvalid.retry_in_call());
        assert!(!ErrorClass::InvalidConfiguration.retry_in_call());
        assert!(!ErrorClass::CredentialsInvalid.retryable());
        assert!(ErrorClass::Unknown.retryable());
    }

    #[test]
    fn class_names_round_trip() {
        for name in [
            "RATE_LIMITED",
            "VENDOR_NOT_FOUND",
            "UNSUPPORTED_BY_PROVIDER",
        ] {
            assert_eq!(ErrorClass::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn retry_after_seconds() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after_header(&headers), Some(Duration::from_secs(2)));
        headers.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after_header(&headers), None);
    }

    /// A vendor (or a proxy in front of it) answering with an absurd delay must not panic the
    /// worker that parses it.
    #[test]
    fn retry_after_beyond_a_duration_is_ignored() {
        let mut headers = http::HeaderMap::new();
        for huge in ["1e300", "18446744073709551616", "1.9e19"] {
            headers.insert(http::header::RETRY_AFTER, huge.parse().unwrap());
            assert_eq!(retry_after_header(&headers), None, "{huge}");
        }
    }
}
