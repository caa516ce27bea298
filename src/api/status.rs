//! The one place where service errors become gRPC statuses, with `google.rpc` details.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::service::Error;

/// Domain of every `google.rpc.ErrorInfo` this server sends.
pub use crate::proto::ERROR_DOMAIN;

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::NotFound { kind, id } => with_reason(
                Code::NotFound,
                format!("{kind} {id:?} not found"),
                "NOT_FOUND",
                [("kind", kind.to_string()), ("id", id)],
            ),
            Error::NotFoundMessage(message) => {
                with_reason(Code::NotFound, message, "NOT_FOUND", [])
            }
            Error::InvalidFields {
                message,
                violations,
            } => {
                let mut details = ErrorDetails::new();
                for (field, reason) in violations {
                    details.add_bad_request_violation(field, reason);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                format!("invalid {field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            Error::AlreadyExists { reason, message } => {
                with_reason(Code::AlreadyExists, message, reason, [])
            }
            Error::FailedPrecondition { reason, message } => {
                with_reason(Code::FailedPrecondition, message, reason, [])
            }
            Error::ResourceExhausted { reason, message } => {
                with_reason(Code::ResourceExhausted, message, reason, [])
            }
            Error::Aborted(message) => with_reason(Code::Aborted, message, "CONFLICT", []),
            Error::PermissionDenied(message) => {
                with_reason(Code::PermissionDenied, message, "PERMISSION_DENIED", [])
            }
            Error::Unavailable {
                reason,
                message,
                retry_after,
            } => {
                let mut details = ErrorDetails::with_error_info(
                    reason,
                    ERROR_DOMAIN,
                    HashMap::<String, String>::new(),
                );
                if retry_after.is_some() {
                    details.set_retry_info(retry_after);
                }
                Status::with_error_details(Code::Unavailable, message, details)
            }
            Error::Unimplemented(message) => {
                with_reason(Code::Unimplemented, message, "UNIMPLEMENTED", [])
            }
            Error::Unauthenticated(message) => {
                with_reason(Code::Unauthenticated, message, "TOKEN_NOT_VALID", [])
            }
            Error::Internal(detail) => {
                // The detail may name internals; it goes to the log, never to the caller.
                tracing::error!(error = %detail, "internal error");
                with_reason(
                    Code::Internal,
                    "internal error; the server log has the details".to_string(),
                    "INTERNAL",
                    [],
                )
            }
        }
    }
}

/// tonic answers a unary call whose body holds no message with INTERNAL ("Missing request
/// message."). That is the caller's mistake, so it becomes INVALID_ARGUMENT here. tonic sends
/// such early errors as a trailers-only response, so the status is in the headers.
pub fn missing_message_is_invalid(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers();
    let is_missing = headers.get("grpc-status").is_some_and(|v| v == "13")
        && headers
            .get("grpc-message")
            .is_some_and(|v| v.as_bytes().starts_with(b"Missing%20request%20message"));
    if is_missing {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "the request body holds no message; send one length-prefixed protobuf message",
            ErrorDetails::with_bad_request_violation("", "request message is missing"),
        );
        let headers = response.headers_mut();
        headers.remove("grpc-message");
        headers.remove("grpc-status-details-bin");
        if let Err(err) = status.add_header(headers) {
            tracing::warn!(%err, "cannot rewrite a missing-message status");
        }
    }
    response
}

fn with_reason<const N: usize>(
    code: Code,
    message: String,
    reason: &str,
    metadata: [(&str, String); N],
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_the_field() {
        let status = Status::from(Error::invalid("page_token", "bad"));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = details
            .bad_request()
            .expect("bad request")
            .field_violations
            .clone();
        assert_eq!(violations[0].field, "page_token");
    }

    #[test]
    fn internal_detail_is_not_sent() {
        let status = Status::from(Error::Internal("password=hunter2".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }

    #[test]
    fn unavailable_has_retry_info() {
        let status = Status::from(Error::Unavailable {
            reason: "X",
            message: "down".into(),
            retry_after: Some(std::time::Duration::from_secs(3)),
        });
        let details = status.get_error_details();
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            Some(std::time::Duration::from_secs(3))
        );
    }
}
