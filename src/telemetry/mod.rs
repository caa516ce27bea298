//! Logging with `tracing` (human-readable by default, JSON on request), Prometheus metrics and
//! OpenTelemetry traces.

pub mod grpc_status;
pub mod kube_requests;
pub mod metrics;
pub mod process;
pub mod rpc;
pub mod traces;

pub use metrics::Metrics;

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, Layer, filter::filter_fn, layer::SubscriberExt};

use crate::config::LogFormat;

/// Added to the operator's filter unless it names the target itself. kube-rs logs at WARN the
/// whole body of an answer it cannot parse (a web page from a server that is not Kubernetes, or
/// an object such as a Secret): never wanted in our logs. Its connection failures are a
/// caller's mistake and are reported by us (our client stack has no kube-rs trace layer).
/// The request spans (at INFO) stay on whatever the level, so every log line of a request
/// names its RPC and trace id.
const DEFAULT_DIRECTIVES: &[(&str, &str)] = &[
    ("kube_client", "kube_client=error"),
    (
        "flotilla::telemetry::traces",
        "flotilla::telemetry::traces=info",
    ),
];

pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    init_with_traces(format, filter, None).map(|_| ())
}

/// Logging, plus OTLP trace export when `otlp_endpoint` (or the standard environment) names a
/// collector. Keep the returned [`traces::Traces`] until the end: dropping it sends the last
/// spans.
pub fn init_with_traces(
    format: LogFormat,
    filter: &str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<Option<traces::Traces>> {
    let full = with_default_directives(filter);
    let filter =
        EnvFilter::try_new(&full).map_err(|e| anyhow::anyhow!("log filter {filter:?}: {e}"))?;
    let exported = match traces::endpoint(otlp_endpoint) {
        Some(endpoint) => Some(traces::exporter(&endpoint)?),
        None => None,
    };
    // Only our own spans become OpenTelemetry spans, whatever the log filter says.
    let otel = exported.as_ref().map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t.tracer())
            .with_filter(filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("flotilla")
            }))
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only help a person at a terminal; in files and pipes they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Human => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).with_filter(filter).boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(fmt).with(otel);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(exported)
}

/// `filter` plus each default directive whose target it does not mention.
pub fn with_default_directives(filter: &str) -> String {
    let mut full = filter.trim().to_string();
    for (target, directive) in DEFAULT_DIRECTIVES {
        if !filter.contains(target) {
            if !full.is_empty() {
                full.push(',');
            }
            full.push_str(directive);
        }
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_client_is_quiet_unless_asked_for() {
        let spans = "flotilla::telemetry::traces=info";
        assert_eq!(
            with_default_directives("info"),
            format!("info,kube_client=error,{spans}")
        );
        assert_eq!(
            with_default_directives(""),
            format!("kube_client=error,{spans}")
        );
        assert_eq!(
            with_default_directives("debug,kube_client=debug"),
            format!("debug,kube_client=debug,{spans}")
        );
    }
}
