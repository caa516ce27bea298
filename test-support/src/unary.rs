//! Unary-call load for the benchmarks: a bare tonic echo server (the yardstick: the same tonic,
//! nothing of Flotilla), the same echo behind Flotilla's auth layer (so one RPC can be measured
//! with and without it), a raw-bytes gRPC client, a closed-loop load generator, and a process's
//! CPU time from its own accounting in /proc.
//!
//! The echo servers run in a child process: the benchmark binary starts itself again with
//! [`CHILD_ENV`] set, and [`run_child_if_asked`] (the first line of its `main`) turns that child
//! into the server. The child exits when its parent goes away, however the parent ends.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes};
use flotilla::{
    auth::{
        audit::AuditLog,
        layer::{AuthLayer, AuthState},
        rate::RateLimiter,
        tokens::Tokens,
    },
    proto::FILE_DESCRIPTOR_SET,
    store::Store,
    telemetry::{
        Metrics,
        rpc::{MethodCatalog, RpcLayer},
    },
};
use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use tonic::{
    Status,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataValue,
    server::{NamedService, UnaryService},
    transport::{Channel, Server},
};

use crate::{process::free_port, server::ADMIN_TOKEN};

/// Set in the environment of a benchmark's child: which echo server it is (see [`EchoKind`]).
pub const CHILD_ENV: &str = "FLOTILLA_BENCH_ECHO";
const PORT_ENV: &str = "FLOTILLA_BENCH_ECHO_PORT";
const DATA_ENV: &str = "FLOTILLA_BENCH_ECHO_DATA";
/// In the data directory of a bare echo: the bytes to answer with instead of the request's.
const REPLY_FILE: &str = "reply.bin";

/// The method the echo answers calls to. Any method of the service is echoed; this one is what
/// the benches call, so the auth layer applies its real rule (read permission, not audited).
pub const ECHO_PATH: &str = "/flotilla.v1.ClusterService/ListProviders";

/// Request and response messages as their encoded bytes: nothing decoded, nothing built.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Answers every method of `flotilla.v1.ClusterService` with the request's own bytes, or with
/// fixed bytes when it has a reply (a real response of the server, for a peer that answers the
/// same data and does nothing else).
#[derive(Debug, Clone, Default)]
pub struct Echo {
    reply: Option<Bytes>,
}

impl NamedService for Echo {
    const NAME: &'static str = "flotilla.v1.ClusterService";
}

struct EchoMethod(Option<Bytes>);

impl UnaryService<Bytes> for EchoMethod {
    type Response = Bytes;
    type Future = Ready<Result<tonic::Response<Bytes>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let body = self.0.clone().unwrap_or_else(|| request.into_inner());
        ready(Ok(tonic::Response::new(body)))
    }
}

impl tonic::codegen::Service<http::Request<Body>> for Echo {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = EchoMethod(self.reply.clone());
        Box::pin(async move {
            Ok(tonic::server::Grpc::new(BytesCodec)
                .unary(method, request)
                .await)
        })
    }
}

/// Which echo server a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoKind {
    /// tonic and the echo, nothing else.
    Bare,
    /// The echo behind Flotilla's auth layer (token check, permission, rate limiter, request id),
    /// with a SQLite token store and the bootstrap admin token [`ADMIN_TOKEN`].
    Auth,
    /// The echo behind the metrics/trace layer and the auth layer, in the server's order.
    Full,
}

impl EchoKind {
    fn name(self) -> &'static str {
        match self {
            EchoKind::Bare => "bare",
            EchoKind::Auth => "auth",
            EchoKind::Full => "full",
        }
    }

    fn parse(name: &str) -> Option<EchoKind> {
        [EchoKind::Bare, EchoKind::Auth, EchoKind::Full]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// An echo server in a child process; killed when dropped (and exits by itself when this
/// process ends without dropping it).
pub struct EchoProcess {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl EchoProcess {
    /// Starts this executable again as an echo server of `kind`.
    pub fn start(kind: EchoKind) -> EchoProcess {
        Self::start_with(kind, tempfile::tempdir().expect("tempdir"))
    }

    /// A bare echo that answers every call with `reply`, whatever the request.
    pub fn replying(reply: &[u8]) -> EchoProcess {
        let data = tempfile::tempdir().expect("tempdir");
        std::fs::write(data.path().join(REPLY_FILE), reply).expect("write the reply");
        Self::start_with(EchoKind::Bare, data)
    }

    fn start_with(kind: EchoKind, data: tempfile::TempDir) -> EchoProcess {
        let port = free_port();
        let exe = std::env::current_exe().expect("current executable");
        let child = Command::new(exe)
            .env(CHILD_ENV, kind.name())
            .env(PORT_ENV, port.to_string())
            .env(DATA_ENV, data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the echo server");
        EchoProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In a child started by [`EchoProcess::start`], serves until the parent goes away and never
/// returns; otherwise returns at once.
pub fn run_child_if_asked() {
    let Some(kind) = std::env::var(CHILD_ENV)
        .ok()
        .and_then(|k| EchoKind::parse(&k))
    else {
        return;
    };
    let port: u16 = std::env::var(PORT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let data = std::path::PathBuf::from(std::env::var(DATA_ENV).expect("data dir"));
    exit_with_parent();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve_echo(kind, port, &data));
    std::process::exit(0);
}

/// A thread that ends this process once its parent is gone (the parent id changes when the
/// parent dies, whether it panicked, was killed or exited).
fn exit_with_parent() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(0);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

async fn serve_echo(kind: EchoKind, port: u16, data: &Path) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    if kind == EchoKind::Bare {
        let reply = std::fs::read(data.join(REPLY_FILE)).ok().map(Bytes::from);
        Server::builder()
            .add_service(Echo { reply })
            .serve(addr)
            .await
            .expect("serve");
        return;
    }
    let store = Store::open(&format!("sqlite://{}", data.join("flotilla.db").display()))
        .await
        .expect("store");
    let tokens = Arc::new(Tokens::new(store.clone()));
    tokens
        .bootstrap(data, Some(ADMIN_TOKEN))
        .await
        .expect("bootstrap token");
    let auth = AuthLayer::new(Arc::new(AuthState {
        tokens,
        audit: AuditLog::start(store),
        limiter: RateLimiter::new(None),
        peer_limiter: RateLimiter::new(None),
    }));
    if kind == EchoKind::Auth {
        Server::builder()
            .layer(auth)
            .add_service(Echo::default())
            .serve(addr)
            .await
            .expect("serve");
        return;
    }
    let rpc = RpcLayer::new(
        Metrics::new(),
        Arc::new(MethodCatalog::from_descriptor_sets(&[FILE_DESCRIPTOR_SET])),
    );
    Server::builder()
        .layer(rpc)
        .layer(auth)
        .add_service(Echo::default())
        .serve(addr)
        .await
        .expect("serve");
}

/// One unary call as bytes: the method, the encoded request, and the bearer token, if any.
#[derive(Debug, Clone)]
pub struct RawCall {
    pub path: &'static str,
    pub bodies: Vec<Bytes>,
    pub token: Option<String>,
}

impl RawCall {
    pub fn new(path: &'static str, body: impl Into<Bytes>) -> RawCall {
        RawCall {
            path,
            bodies: vec![body.into()],
            token: None,
        }
    }

    /// The same method with several requests (pages, say), sent in turn.
    pub fn cycling(path: &'static str, bodies: Vec<Bytes>) -> RawCall {
        RawCall {
            path,
            bodies,
            token: None,
        }
    }

    /// With the tests' admin token.
    pub fn authed(mut self) -> RawCall {
        self.token = Some(ADMIN_TOKEN.to_string());
        self
    }
}

/// Sends one call's `n`-th request (cycling through its bodies); the response's bytes.
pub async fn call_raw(channel: &Channel, call: &RawCall, n: usize) -> Result<Bytes, Status> {
    let mut request = tonic::Request::new(call.bodies[n % call.bodies.len()].clone());
    if let Some(token) = &call.token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii token");
        request.metadata_mut().insert("authorization", value);
    }
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::from_static(call.path);
    Ok(grpc.unary(request, path, BytesCodec).await?.into_inner())
}

/// `n` connections to `url` (each tonic `Channel` is one HTTP/2 connection).
pub async fn connections(url: &str, n: usize) -> Vec<Channel> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        channels.push(crate::process::connect(url).await);
    }
    channels
}

/// What a load run did.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub calls: u64,
    pub elapsed: Duration,
    /// Latency of each call, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `concurrency` callers, spread over `channels`, each sending `call` back to back for
/// `duration`. Panics on the first failed call: a benchmark that measures refusals (a rate
/// limit, a missing token) must not report them as fast answers.
pub async fn closed_loop(
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
    call: &RawCall,
) -> LoadResult {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let channel = channels[worker % channels.len()].clone();
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while Instant::now() < deadline {
                let sent = Instant::now();
                if let Err(status) = call_raw(&channel, &call, n).await {
                    panic!("{}: {status:?}", call.path);
                }
                latencies.push(sent.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("load worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    LoadResult {
        calls: latencies.len() as u64,
        elapsed,
        latencies,
    }
}

/// CPU time a process has used so far (user + system), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses: state is the 3rd
    // field, utime the 14th and stime the 15th, in clock ticks of 1/100 s (USER_HZ).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

pub use crate::host::load_average;

/// The median and range of some numbers.
pub fn median_range(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}
