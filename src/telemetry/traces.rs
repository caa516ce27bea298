//! Spans: one per inbound RPC (a server span whose parent is the caller's W3C `traceparent`),
//! one per Kubernetes request and one per vendor call (client spans, children of whatever span
//! is current), with OpenTelemetry's semantic-convention attributes. Exported over OTLP/gRPC
//! when an endpoint is configured ([`install`]); without one the spans still exist for the
//! log lines but carry no trace id.

use std::{sync::OnceLock, time::Duration};

use anyhow::Context as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tonic::Code;
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once traces are exported: then incoming `traceparent`s are honoured, outgoing requests
/// carry one, and spans record their trace id.
static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

/// The collector's address: the one configured (`--otlp-endpoint`), else the standard
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`. `None`: no traces.
pub fn endpoint(configured: Option<&str>) -> Option<String> {
    let from_env = |name: &str| std::env::var(name).ok();
    configured
        .map(str::to_string)
        .or_else(|| from_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| from_env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
}

/// The exporting pipeline; dropping it sends what is buffered and stops it.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends every finished span now.
    pub fn flush(&self) {
        if let Err(err) = self.provider.force_flush() {
            tracing::debug!(%err, "flushing traces failed");
        }
    }

    pub(super) fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("flotilla")
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("stopping the trace exporter: {err}");
        }
    }
}

/// Builds the OTLP/gRPC exporter for `endpoint` (batching on a thread of its own; must be
/// called inside the tokio runtime, whose tasks carry the gRPC connection). The resource is
/// `service.name` = `OTEL_SERVICE_NAME` or `flotilla`, plus `OTEL_RESOURCE_ATTRIBUTES`.
pub fn exporter(endpoint: &str) -> anyhow::Result<Traces> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(10))
        .build()
        .with_context(|| format!("OTLP exporter for {endpoint}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("flotilla");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let _ = PROPAGATOR.set(TraceContextPropagator::new());
    Ok(Traces { provider })
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The server span of one RPC, a child of the caller's `traceparent` when it sent one.
pub fn server_span(method: &str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        "rpc",
        otel.name = %method,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system.name = "grpc",
        rpc.method = %method,
        rpc.response.status_code = Empty,
        trace_id = Empty,
    );
    if let Some(propagator) = PROPAGATOR.get() {
        let parent = propagator.extract(&HeaderExtractor(headers));
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
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

/// The client span of one request to a Kubernetes API server: only as a child (of an RPC or a
/// vendor call), so the watch caches' and the prober's background traffic makes no traces.
pub fn kube_span(verb: &'static str, cluster_id: &str, method: &http::Method, path: &str) -> Span {
    if Span::current().is_none() {
        return Span::none();
    }
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

/// Adds the span's W3C `traceparent` to an outgoing request's headers (the API server records
/// it in its own traces).
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    if let Some(propagator) = PROPAGATOR.get()
        && !span.is_none()
    {
        propagator.inject_context(&span.context(), &mut HeaderInjector(headers));
    }
}

/// The client span of one vendor call, retries included (a child of the current span, or a
/// root for the operation worker's calls).
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
