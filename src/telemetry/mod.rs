//! Logging with `tracing` (human-readable by default, JSON on request), Prometheus metrics and
//! OpenTelemetry traces.

pub mod kube_requests;
pub mod metrics;
pub mod process;
pub mod rpc;
pub mod traces;

pub use metrics::Metrics;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Added to the operator's filter unless it names the target itself. kube-rs logs at WARN the
/// whole body of an answer it cannot parse (a web page from a server that is not Kubernetes, or
/// an object such as a Secret): never wanted in our logs. Its connection failures are a
/// caller's mistake and are reported by us (our client stack has no kube-rs trace layer).
const DEFAULT_DIRECTIVES: &[(&str, &str)] = &[("kube_client", "kube_client=error")];

pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let full = with_default_directives(filter);
    let filter =
        EnvFilter::try_new(&full).map_err(|e| anyhow::anyhow!("log filter {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a person at a terminal; in files and pipes they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
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
        assert_eq!(with_default_directives("info"), "info,kube_client=error");
        assert_eq!(with_default_directives(""), "kube_client=error");
        assert_eq!(
            with_default_directives("debug,kube_client=debug"),
            "debug,kube_client=debug"
        );
    }
}
