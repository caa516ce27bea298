//! The tower layer that measures and traces every inbound RPC, gRPC and grpc-web alike (it sits
//! inside the grpc-web translation, so both look the same here): a `rpc_server_call_duration`
//! observation with the final status code when the call ends — at the trailers, or CANCELLED
//! when the client goes away — the open-stream gauge for server streams, and a server span per
//! call whose parent is the caller's W3C `traceparent`, when it sends one.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prost::Message;
use tonic::{Code, Status, body::Body};
use tracing::Instrument;

use super::{
    grpc_status::{call_end, code_name, code_of},
    metrics::{Metrics, RpcLabels, StreamLabels},
};

/// `rpc.method` of a path we do not serve (semconv: the path is the caller's choice).
pub const OTHER_METHOD: &str = "_OTHER";

/// What the layer knows of a method.
#[derive(Debug, Clone)]
struct MethodInfo {
    name: Arc<str>,
    /// Set for server-streaming methods: what the open-stream gauge calls them.
    stream_kind: Option<&'static str>,
}

/// Every method this server serves, from the descriptor sets: their fully qualified names and
/// which of them stream.
#[derive(Debug, Default)]
pub struct MethodCatalog {
    methods: HashMap<String, MethodInfo>,
    other: Option<Arc<str>>,
}

/// What a server stream carries, by method name; any other stream is `other`.
fn stream_kind(method: &str) -> &'static str {
    match method {
        "StreamPodLogs" => "logs",
        "StreamWorkloadLogs" => "workload_logs",
        "WatchEvents" => "events",
        "WatchOperation" => "operation",
        "DrainNode" => "drain",
        "Watch" => "health",
        "ServerReflectionInfo" => "reflection",
        _ => "other",
    }
}

impl MethodCatalog {
    /// The methods of the encoded `FileDescriptorSet`s, plus gRPC reflection (whose descriptor
    /// tonic does not export).
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> MethodCatalog {
        let mut methods = HashMap::new();
        let mut add = |service: &str, method: &str, streams: bool| {
            let name: Arc<str> = Arc::from(format!("{service}/{method}"));
            methods.insert(
                format!("/{name}"),
                MethodInfo {
                    name,
                    stream_kind: streams.then(|| stream_kind(method)),
                },
            );
        };
        for bytes in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*bytes) else {
                continue;
            };
            for file in &set.file {
                let package = file.package();
                for service in &file.service {
                    let full = if package.is_empty() {
                        service.name().to_string()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    for method in &service.method {
                        add(&full, method.name(), method.server_streaming());
                    }
                }
            }
        }
        for version in ["v1", "v1alpha"] {
            add(
                &format!("grpc.reflection.{version}.ServerReflection"),
                "ServerReflectionInfo",
                true,
            );
        }
        MethodCatalog {
            methods,
            other: Some(Arc::from(OTHER_METHOD)),
        }
    }

    fn lookup(&self, path: &str) -> MethodInfo {
        self.methods
            .get(path)
            .cloned()
            .unwrap_or_else(|| MethodInfo {
                name: self
                    .other
                    .clone()
                    .unwrap_or_else(|| Arc::from(OTHER_METHOD)),
                stream_kind: None,
            })
    }

    /// Fully qualified names of every method known (for docs and tests).
    pub fn method_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.methods.values().map(|m| m.name.to_string()).collect();
        names.sort();
        names
    }
}

#[derive(Clone)]
pub struct RpcLayer {
    metrics: Metrics,
    catalog: Arc<MethodCatalog>,
}

impl RpcLayer {
    pub fn new(metrics: Metrics, catalog: Arc<MethodCatalog>) -> Self {
        RpcLayer { metrics, catalog }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
            catalog: self.catalog.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Metrics,
    catalog: Arc<MethodCatalog>,
}

impl<S> tower::Service<Request<Body>> for RpcService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready clone serves this call; the fresh clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let info = self.catalog.lookup(request.uri().path());
        let span = super::traces::server_span(&info.name, request.headers());
        let call = CallInProgress::start(self.metrics.clone(), info);
        let future = inner.call(request);
        Box::pin(
            async move {
                let response = future.await?;
                Ok(call.watch(response))
            }
            .instrument(span),
        )
    }
}

/// One call until its status is known.
struct CallInProgress {
    metrics: Metrics,
    method: Arc<str>,
    started: Instant,
    stream_kind: Option<&'static str>,
    span: tracing::Span,
}

impl CallInProgress {
    fn start(metrics: Metrics, info: MethodInfo) -> CallInProgress {
        if let Some(kind) = info.stream_kind {
            metrics
                .open_streams
                .get_or_create(&StreamLabels { kind })
                .inc();
        }
        CallInProgress {
            metrics,
            method: info.name,
            started: Instant::now(),
            stream_kind: info.stream_kind,
            span: tracing::Span::current(),
        }
    }

    /// Finishes now for a trailers-only response; otherwise when the body ends.
    fn watch(mut self, response: Response<Body>) -> Response<Body> {
        self.span = tracing::Span::current();
        if let Some(code) = response.headers().get("grpc-status").map(code_of) {
            self.finish(code);
            return response;
        }
        let (parts, body) = response.into_parts();
        Response::from_parts(
            parts,
            Body::new(ObservedBody {
                inner: body,
                call: Some(self),
            }),
        )
    }

    fn finish(self, code: Code) {
        let name = code_name(code);
        let took = self.started.elapsed();
        tracing::debug!(
            parent: &self.span,
            code = name,
            duration_ms = took.as_secs_f64() * 1000.0,
            "call finished"
        );
        self.metrics
            .rpc_duration
            .get_or_create(&RpcLabels {
                rpc_system_name: "grpc",
                rpc_method: self.method.clone(),
                rpc_response_status_code: name,
            })
            .observe(took.as_secs_f64());
        super::traces::end_server_span(&self.span, code, name);
        // Dropping `self` closes the stream in the gauge.
    }
}

impl Drop for CallInProgress {
    fn drop(&mut self) {
        if let Some(kind) = self.stream_kind {
            self.metrics
                .open_streams
                .get_or_create(&StreamLabels { kind })
                .dec();
        }
    }
}

/// A response body that finishes the call when its status is known: at the trailers, on an
/// error, or when the client goes away (CANCELLED).
struct ObservedBody {
    inner: Body,
    call: Option<CallInProgress>,
}

impl ObservedBody {
    fn finish(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if let Some(code) = call_end(&poll) {
            this.finish(code);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_knows_our_methods_and_which_stream() {
        let catalog = MethodCatalog::from_descriptor_sets(&[crate::proto::FILE_DESCRIPTOR_SET]);
        let list = catalog.lookup("/flotilla.v1.ClusterService/ListClusters");
        assert_eq!(&*list.name, "flotilla.v1.ClusterService/ListClusters");
        assert_eq!(list.stream_kind, None);
        let logs = catalog.lookup("/flotilla.v1.LogStream/StreamPodLogs");
        assert_eq!(logs.stream_kind, Some("logs"));
        let unknown = catalog.lookup("/flotilla.v1.ClusterService/Whatever?x=secret");
        assert_eq!(&*unknown.name, OTHER_METHOD);
    }
}
