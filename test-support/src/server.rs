//! A Flotilla server running in-process on a loopback port, with a fresh data directory and a
//! known bootstrap admin token.

use flotilla::{app, config::Settings, store::Store};
use tonic::{
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// The bootstrap admin token of every test server.
pub const ADMIN_TOKEN: &str = "flt_TestAdmin-q7Rk2mWx9LpZc4VbN8sJdY3hGf6TaE1uKo5Xi";

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// `authorization` set to `value` (such as "Bearer flt_..."), or none.
    pub fn new(value: Option<&str>) -> Bearer {
        Bearer(value.map(|v| v.parse().expect("ascii header value")))
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a token.
pub type AuthedChannel = InterceptedService<Channel, Bearer>;

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub settings: Settings,
    server: Option<app::RunningServer>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with settings adjusted by `adjust` (probe interval, database URL, ...).
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::for_data_dir(dir.path());
        settings.bootstrap_token = Some(zeroize::Zeroizing::new(ADMIN_TOKEN.to_string()));
        settings.rate_limit = None;
        settings.peer_rate_limit = None;
        adjust(&mut settings);
        let server = app::start(settings.clone()).await.expect("server starts");
        TestServer {
            addr: server.addr,
            settings,
            server: Some(server),
            _dir: dir,
        }
    }

    /// Where the server serves GET /metrics (set `metrics_listen` to have one).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().and_then(|s| s.metrics_addr)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A plain channel: calls carry no token.
    pub async fn raw_channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// A channel whose calls carry the admin token.
    pub async fn channel(&self) -> AuthedChannel {
        self.channel_as(Some(ADMIN_TOKEN)).await
    }

    /// A channel whose calls carry `token` (or none).
    pub async fn channel_as(&self, token: Option<&str>) -> AuthedChannel {
        let value = token.map(|t| format!("Bearer {t}").parse().expect("ascii token"));
        InterceptedService::new(self.raw_channel().await, Bearer(value))
    }

    /// The server's own database, for seeding rows directly.
    pub async fn store(&self) -> Store {
        Store::open(&self.settings.database_url)
            .await
            .expect("open store")
    }

    /// Stops the server's operation worker only, as a crash of it would.
    pub fn stop_operation_worker(&self) {
        if let Some(server) = &self.server {
            server.stop_operation_worker();
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }
}
