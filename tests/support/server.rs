//! A Flotilla server running in-process on a loopback port, with a fresh data directory.
#![allow(dead_code)]

use flotilla::{app, config::Settings, store::Store};
use tonic::transport::Channel;

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
        adjust(&mut settings);
        let server = app::start(settings.clone()).await.expect("server starts");
        TestServer {
            addr: server.addr,
            settings,
            server: Some(server),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// The server's own database, for seeding rows directly.
    pub async fn store(&self) -> Store {
        Store::open(&self.settings.database_url)
            .await
            .expect("open store")
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }
}
