//! The gRPC status of a response as the HTTP layers see it: the code in its trailers, and the
//! code's canonical name. One reading for the metrics/trace layer and the audit layer.

use std::task::Poll;

use http::HeaderValue;
use http_body::Frame;
use tonic::{Code, Status};

/// The code a `grpc-status` header names (`Unknown` when it is not a number).
pub fn code_of(value: &HeaderValue) -> Code {
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
        .unwrap_or(Code::Unknown)
}

/// How a response body's poll ends the call, if it does: its trailers' `grpc-status`, the
/// error's code, or `Unknown` for a body that ended without trailers.
pub fn call_end<B>(poll: &Poll<Option<Result<Frame<B>, Status>>>) -> Option<Code> {
    match poll {
        Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(|trailers| {
            trailers
                .get("grpc-status")
                .map(code_of)
                .unwrap_or(Code::Unknown)
        }),
        Poll::Ready(Some(Err(status))) => Some(status.code()),
        Poll::Ready(None) => Some(Code::Unknown),
        Poll::Pending => None,
    }
}

pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
