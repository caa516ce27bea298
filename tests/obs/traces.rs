//! OTLP traces from the server binary, received by a tiny OTLP/gRPC collector in the test (the
//! opentelemetry-proto types decode what arrives): an RPC that reaches Kubernetes makes a server
//! span whose parent is the caller's W3C `traceparent`, Kubernetes client spans under it in the
//! same trace, and the server's log line for that call carries the same trace id — in the human
//! format (endpoint from OTEL_EXPORTER_OTLP_ENDPOINT) and in JSON (from --otlp-endpoint).

use flotilla_test_support as support;

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
    trace::v1::{Span, span::SpanKind},
};
use support::{kubeconfigs, server::ADMIN_TOKEN};
use tonic::{Request, Response, Status};

/// Every span the collector received.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (Collector, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .expect("collector");
        });
        (collector, addr)
    }

    fn in_trace(&self, trace_id: &[u8]) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

struct Serving {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `flotilla serve` sending traces to `collector`: through the standard environment variable
/// for the human format, through the flag for JSON.
fn serve(format: &str, collector: SocketAddr) -> (Serving, u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::process::free_port();
    let log = dir.path().join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("FLOTILLA_DATA_DIR", dir.path())
        .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
        .env("FLOTILLA_LOG_FORMAT", format)
        // The per-call line is at DEBUG.
        .env("FLOTILLA_LOG", "info,flotilla::telemetry::rpc=debug")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("FLOTILLA_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME");
    if format == "human" {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"));
    } else {
        command
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .args(["--otlp-endpoint", &format!("http://{collector}")]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("run flotilla serve");
    (
        Serving {
            child,
            log,
            _dir: dir,
        },
        port,
    )
}

/// A trace id and span id as a caller would make them (random, so runs never collide).
fn caller_ids() -> (String, String) {
    let hex = |n: usize| {
        (0..n)
            .map(|_| format!("{:x}", fastrand::u8(0..16)))
            .collect::<String>()
    };
    (hex(32), hex(16))
}

async fn rpc_with_traceparent_is_traced_and_logged(format: &str) {
    let (collector, collector_addr) = Collector::start().await;
    let (server, port) = serve(format, collector_addr);
    let channel = support::process::connect(&format!("http://127.0.0.1:{port}")).await;
    let (trace_id, parent_id) = caller_ids();
    let mut request = tonic::Request::new(pb::ImportClusterRequest {
        cluster_id: "traced".into(),
        source: Some(pb::import_cluster_request::Source::Kubeconfig(
            pb::KubeconfigSource {
                kubeconfig: kubeconfigs::admin_kubeconfig().into(),
                context: String::new(),
            },
        )),
        validate_only: true,
        ..Default::default()
    });
    let metadata = request.metadata_mut();
    metadata.insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().expect("ascii"),
    );
    metadata.insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01")
            .parse()
            .expect("ascii"),
    );
    ClusterServiceClient::new(channel)
        .import_cluster(request)
        .await
        .expect("ImportCluster (validate only) reaches the cluster");

    let trace_bytes = hex::decode(&trace_id).expect("hex");
    let parent_bytes = hex::decode(&parent_id).expect("hex");
    let method = "flotilla.v1.ClusterService/ImportCluster";
    let deadline = Instant::now() + Duration::from_secs(30);
    let (rpc, kube) = loop {
        let spans = collector.in_trace(&trace_bytes);
        let rpc = spans.iter().find(|s| s.name == method).cloned();
        if let Some(rpc) = rpc {
            let kube: Vec<Span> = spans
                .iter()
                .filter(|s| s.parent_span_id == rpc.span_id && s.name.starts_with("kube "))
                .cloned()
                .collect();
            if !kube.is_empty() {
                break (rpc, kube);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no RPC span with Kubernetes children in trace {trace_id}; received: {:#?}",
            collector
                .spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| (&s.name, hex::encode(&s.trace_id)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        rpc.parent_span_id, parent_bytes,
        "the caller's span is the parent"
    );
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(attribute(&rpc, "rpc.system.name").as_deref(), Some("grpc"));
    assert_eq!(attribute(&rpc, "rpc.method").as_deref(), Some(method));
    assert_eq!(
        attribute(&rpc, "rpc.response.status_code").as_deref(),
        Some("OK")
    );
    for span in &kube {
        assert_eq!(span.kind, SpanKind::Client as i32, "{span:?}");
        assert!(attribute(span, "k8s.verb").is_some(), "{span:?}");
        assert_eq!(
            attribute(span, "http.response.status_code").as_deref(),
            Some("200"),
            "{span:?}"
        );
    }
    let verbs: Vec<String> = kube
        .iter()
        .filter_map(|s| attribute(s, "k8s.verb"))
        .collect();
    assert!(verbs.iter().any(|v| v == "get"), "{verbs:?}");

    // The server's own line for the call carries the caller's trace id.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&server.log).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.contains("call finished") && l.contains(method));
        if let Some(line) = line {
            if format == "json" {
                let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert_eq!(event["span"]["trace_id"], trace_id.as_str(), "{line}");
            } else {
                assert!(line.contains(&format!("trace_id={trace_id}")), "{line}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 'call finished' line for {method} in the log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}

#[tokio::test]
async fn human_logs_and_spans_share_the_callers_trace() {
    rpc_with_traceparent_is_traced_and_logged("human").await;
}

#[tokio::test]
async fn json_logs_and_spans_share_the_callers_trace() {
    rpc_with_traceparent_is_traced_and_logged("json").await;
}
