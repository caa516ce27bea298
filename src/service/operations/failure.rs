//! How a step fails, in the engine's own terms (`StepFailure`), and the record of it that is
//! stored in the operation and shown by the API (`OperationFailure`). Failures that are not a
//! vendor's answer (a drain that could not finish, a database error, a vendor reporting its
//! object failed) are not dressed up as vendor errors: they have no vendor call.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Step;
use crate::adapters::{ErrorClass, VendorError};
use crate::service::Error;

/// The vendor call a failure came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorCall {
    /// Provider id.
    pub vendor: &'static str,
    /// The vendor action, such as "CreateCluster".
    pub operation: &'static str,
    /// The vendor's request id; empty when it gave none.
    pub request_id: String,
    /// 0 when no HTTP response was received.
    pub http_status: u16,
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub class: ErrorClass,
    /// A stable code: the vendor's own (such as "Throttling.User") or ours ("VendorFailed",
    /// "DrainIncomplete"); empty when there is none. Stored as `vendor_code`.
    pub code: String,
    /// For a person; never contains credentials.
    pub message: String,
    /// Set when a vendor call failed.
    pub call: Option<VendorCall>,
    /// How long the vendor asked us to wait, when it said.
    pub retry_after: Option<Duration>,
    /// Never retried, even when its class is retryable: the vendor reported the object itself
    /// failed, or our own request is wrong. Trying again cannot help.
    pub terminal: bool,
}

/// The code of a failure the vendor reported about its object (not about our call).
pub const VENDOR_FAILED: &str = "VendorFailed";
/// The code of a drain that could not evict every pod.
pub const DRAIN_INCOMPLETE: &str = "DrainIncomplete";
/// What a person is told about an internal error; the details are in the server log.
pub const INTERNAL_MESSAGE: &str = "an internal error; see the server log";

impl StepFailure {
    /// A vendor call failed. Retried if its class is retryable.
    pub fn from_vendor(err: VendorError) -> Self {
        StepFailure {
            class: err.class,
            code: err.code,
            message: err.message,
            call: Some(VendorCall {
                vendor: err.vendor,
                operation: err.operation,
                request_id: err.request_id,
                http_status: err.http_status,
            }),
            retry_after: err.retry_after,
            terminal: false,
        }
    }

    /// The vendor's task ended in failure: the vendor has given up, so do we.
    pub fn task_failed(err: VendorError) -> Self {
        StepFailure {
            terminal: true,
            ..Self::from_vendor(err)
        }
    }

    /// The vendor reports the object the operation acts on as failed (or gone).
    pub fn vendor_reports_failed(message: impl Into<String>) -> Self {
        StepFailure {
            class: ErrorClass::Unknown,
            code: VENDOR_FAILED.into(),
            message: message.into(),
            call: None,
            retry_after: None,
            terminal: true,
        }
    }

    /// Draining a node before its removal left pods behind (disruption budgets, failures).
    /// Retried: budgets are usually satisfied again once replacement pods run.
    pub fn drain_incomplete(node: &str, blocked: i32, failed: i32) -> Self {
        StepFailure {
            class: ErrorClass::DependencyPending,
            code: DRAIN_INCOMPLETE.into(),
            message: format!(
                "node {node}: {blocked} pods blocked by disruption budgets, {failed} failed"
            ),
            call: None,
            retry_after: None,
            terminal: false,
        }
    }

    /// A failure of ours (database, Kubernetes, stored data). The caller logs internal errors
    /// in full; the message here never repeats them.
    pub fn from_service(err: &Error) -> Self {
        let class = match err {
            Error::Unavailable { .. } => ErrorClass::DependencyPending,
            Error::InvalidArgument { .. } | Error::InvalidFields { .. } => {
                ErrorClass::InvalidConfiguration
            }
            _ => ErrorClass::Unknown,
        };
        let message = match err {
            Error::Internal(_) => INTERNAL_MESSAGE.to_string(),
            other => other.to_string(),
        };
        StepFailure {
            class,
            code: String::new(),
            message,
            call: None,
            retry_after: None,
            // What is missing or refused now will be missing or refused on the next attempt.
            terminal: matches!(
                err,
                Error::InvalidArgument { .. }
                    | Error::NotFound { .. }
                    | Error::FailedPrecondition { .. }
            ),
        }
    }

    /// Whether trying again later can succeed (the retry window aside).
    pub fn retryable(&self) -> bool {
        !self.terminal && self.class.retryable()
    }

    pub fn request_id(&self) -> &str {
        self.call.as_ref().map_or("", |c| c.request_id.as_str())
    }
}

/// A failure as stored in the operation and shown as the API's `OperationError`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationFailure {
    #[serde(with = "class_name")]
    pub class: ErrorClass,
    /// Whether the engine will try again (the class, finality and the retry window decided).
    pub retryable: bool,
    pub vendor_code: String,
    pub vendor_message: String,
    pub vendor_request_id: String,
    pub vendor_http_status: u16,
    pub step: Step,
    pub retry_after_millis: Option<u64>,
    pub time_millis: i64,
}

impl OperationFailure {
    /// The record of `failure` at `step`; `retrying` is what the engine decided to do.
    pub fn record(failure: &StepFailure, step: Step, retrying: bool, now_millis: i64) -> Self {
        OperationFailure {
            class: failure.class,
            retryable: retrying,
            vendor_code: failure.code.clone(),
            vendor_message: failure.message.clone(),
            vendor_request_id: failure.request_id().to_string(),
            vendor_http_status: failure.call.as_ref().map_or(0, |c| c.http_status),
            step,
            retry_after_millis: failure.retry_after.map(|d| d.as_millis() as u64),
            time_millis: now_millis,
        }
    }
}

/// The class as stored: its stable name. A name this server does not know (written by a newer
/// one) loads as `Unknown` rather than making the whole operation unreadable.
mod class_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::adapters::ErrorClass;

    pub fn serialize<S: Serializer>(class: &ErrorClass, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(class.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ErrorClass, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(ErrorClass::parse(&text).unwrap_or(ErrorClass::Unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled() -> VendorError {
        VendorError::new(
            ErrorClass::RateLimited,
            "ack",
            "CreateCluster",
            "Throttling.User",
            "Request was denied due to user flow control.",
        )
        .with_status(400)
        .with_request_id("req-2")
        .with_retry_after(Some(Duration::from_millis(1500)))
    }

    #[test]
    fn a_vendor_failure_keeps_what_the_vendor_said() {
        let failure = StepFailure::from_vendor(throttled());
        assert_eq!(failure.class, ErrorClass::RateLimited);
        assert_eq!(failure.code, "Throttling.User");
        assert_eq!(failure.request_id(), "req-2");
        assert_eq!(
            failure.call,
            Some(VendorCall {
                vendor: "ack",
                operation: "CreateCluster",
                request_id: "req-2".into(),
                http_status: 400,
            })
        );
        assert!(!failure.terminal);
        assert!(failure.retryable());

        let record = OperationFailure::record(&failure, Step::Provision, true, 3000);
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"class":"RATE_LIMITED","retryable":true,"vendor_code":"Throttling.User","vendor_message":"Request was denied due to user flow control.","vendor_request_id":"req-2","vendor_http_status":400,"step":"provision","retry_after_millis":1500,"time_millis":3000}"#
        );
    }

    #[test]
    fn a_failed_vendor_task_is_final_whatever_its_class() {
        let failure = StepFailure::task_failed(throttled());
        assert!(failure.terminal);
        assert!(!failure.retryable());
        assert_eq!(failure.request_id(), "req-2");
    }

    #[test]
    fn failures_of_our_own_name_no_vendor_call() {
        let reported =
            StepFailure::vendor_reports_failed("the vendor reports the cluster as \"failed\"");
        assert_eq!(reported.class, ErrorClass::Unknown);
        assert_eq!(reported.code, "VendorFailed");
        assert!(reported.terminal && reported.call.is_none());

        let drain = StepFailure::drain_incomplete("n1", 2, 1);
        assert_eq!(drain.class, ErrorClass::DependencyPending);
        assert_eq!(drain.code, "DrainIncomplete");
        assert_eq!(
            drain.message,
            "node n1: 2 pods blocked by disruption budgets, 1 failed"
        );
        assert!(!drain.terminal && drain.retryable() && drain.call.is_none());
        let record = OperationFailure::record(&drain, Step::Submit, true, 15);
        assert_eq!(
            (record.vendor_request_id.as_str(), record.vendor_http_status),
            ("", 0)
        );
    }

    /// Every service error: its class, whether it is final, and what a person reads. The
    /// expected table is written by hand.
    #[test]
    fn service_errors_map_to_a_class_and_finality() {
        let cases: Vec<(Error, ErrorClass, bool, &str)> = vec![
            (
                Error::NotFound {
                    kind: "cluster",
                    id: "c1".into(),
                },
                ErrorClass::Unknown,
                true,
                "cluster \"c1\" not found",
            ),
            (
                Error::NotFoundMessage("no such node".into()),
                ErrorClass::Unknown,
                false,
                "no such node",
            ),
            (
                Error::InvalidFields {
                    message: "bad object".into(),
                    violations: vec![],
                },
                ErrorClass::InvalidConfiguration,
                false,
                "bad object",
            ),
            (
                Error::invalid("spec.name", "is required"),
                ErrorClass::InvalidConfiguration,
                true,
                "spec.name: is required",
            ),
            (
                Error::AlreadyExists {
                    reason: "EXISTS",
                    message: "exists".into(),
                },
                ErrorClass::Unknown,
                false,
                "exists",
            ),
            (
                Error::FailedPrecondition {
                    reason: "NOT_READY",
                    message: "not ready".into(),
                },
                ErrorClass::Unknown,
                true,
                "not ready",
            ),
            (
                Error::ResourceExhausted {
                    reason: "QUOTA",
                    message: "quota".into(),
                },
                ErrorClass::Unknown,
                false,
                "quota",
            ),
            (
                Error::Aborted("changed".into()),
                ErrorClass::Unknown,
                false,
                "changed",
            ),
            (
                Error::PermissionDenied("denied".into()),
                ErrorClass::Unknown,
                false,
                "denied",
            ),
            (
                Error::Unavailable {
                    reason: "CLUSTER_UNREACHABLE",
                    message: "unreachable".into(),
                    retry_after: None,
                },
                ErrorClass::DependencyPending,
                false,
                "unreachable",
            ),
            (
                Error::Unimplemented("later".into()),
                ErrorClass::Unknown,
                false,
                "later",
            ),
            (
                Error::Unauthenticated("expired".into()),
                ErrorClass::Unknown,
                false,
                "expired",
            ),
            (
                Error::Internal("password=hunter2 in a connection string".into()),
                ErrorClass::Unknown,
                false,
                "an internal error; see the server log",
            ),
        ];
        for (err, class, terminal, message) in cases {
            let failure = StepFailure::from_service(&err);
            assert_eq!(failure.class, class, "{err:?}");
            assert_eq!(failure.terminal, terminal, "{err:?}");
            assert_eq!(failure.message, message, "{err:?}");
            assert_eq!(failure.code, "", "{err:?}");
            assert!(failure.call.is_none());
        }
    }

    /// The stored class names, written out by hand: they are in the database and, through the
    /// API's mapping, in clients.
    #[test]
    fn every_class_is_stored_by_its_stable_name_and_loads_back() {
        let names = [
            (ErrorClass::CredentialsInvalid, "CREDENTIALS_INVALID"),
            (ErrorClass::CredentialsForbidden, "CREDENTIALS_FORBIDDEN"),
            (ErrorClass::QuotaExceeded, "QUOTA_EXCEEDED"),
            (ErrorClass::RateLimited, "RATE_LIMITED"),
            (ErrorClass::DependencyBlocked, "DEPENDENCY_BLOCKED"),
            (ErrorClass::DependencyPending, "DEPENDENCY_PENDING"),
            (ErrorClass::CapacityUnavailable, "CAPACITY_UNAVAILABLE"),
            (ErrorClass::InvalidConfiguration, "INVALID_CONFIGURATION"),
            (
                ErrorClass::TransientConfiguration,
                "TRANSIENT_CONFIGURATION",
            ),
            (ErrorClass::CleanupBlocked, "CLEANUP_BLOCKED"),
            (ErrorClass::WebhookBlocking, "WEBHOOK_BLOCKING"),
            (ErrorClass::VendorNotFound, "VENDOR_NOT_FOUND"),
            (ErrorClass::VendorUnavailable, "VENDOR_UNAVAILABLE"),
            (ErrorClass::Timeout, "TIMEOUT"),
            (ErrorClass::Unknown, "UNKNOWN"),
            (ErrorClass::Unsupported, "UNSUPPORTED_BY_PROVIDER"),
        ];
        for (class, name) in names {
            let failure = StepFailure {
                class,
                ..StepFailure::vendor_reports_failed("x")
            };
            let record = OperationFailure::record(&failure, Step::Wait, false, 1);
            let json = serde_json::to_value(&record).unwrap();
            assert_eq!(json["class"], name);
            let back: OperationFailure = serde_json::from_value(json).unwrap();
            assert_eq!(back.class, class);
        }
    }

    #[test]
    fn a_class_name_this_server_does_not_know_loads_as_unknown() {
        let stored = r#"{"class":"SOMETHING_NEWER","retryable":false,"vendor_code":"","vendor_message":"m","vendor_request_id":"","vendor_http_status":0,"step":"wait","retry_after_millis":null,"time_millis":1}"#;
        let failure: OperationFailure = serde_json::from_str(stored).unwrap();
        assert_eq!(failure.class, ErrorClass::Unknown);
        assert_eq!(failure.step, Step::Wait);
    }
}
