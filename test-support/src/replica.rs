//! Replicas: several `flotilla serve` processes on one PostgreSQL database with one master key,
//! as an operator runs them behind a load balancer. Each gets its own data directory and port,
//! and `HOSTNAME` as its name, so its replica id (the owner in lease rows) starts with it.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::{
    process::{connect, free_port},
    server::{ADMIN_TOKEN, AuthedChannel, Bearer},
};

/// A fresh master key, as `FLOTILLA_MASTER_KEY` takes it (base64 of 32 bytes).
pub fn master_key() -> String {
    let mut key = [0u8; 32];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&fastrand::u64(..).to_le_bytes());
    }
    STANDARD.encode(key)
}

/// One replica; SIGKILLed when dropped, so a failing assertion leaves nothing running.
pub struct Replica {
    child: Child,
    pub port: u16,
    data_dir: PathBuf,
}

impl Replica {
    /// Starts `binary serve` named `name` on `database_url`, with no rate limit, the tests'
    /// admin token, and `env` on top (e.g. `FLOTILLA_CLUSTER_LEASE`).
    pub fn start(
        binary: &str,
        name: &str,
        database_url: &str,
        master_key: &str,
        env: &[(&str, String)],
    ) -> Replica {
        let port = free_port();
        let data_dir = std::env::temp_dir().join(format!(
            "flotilla-replica-{name}-{port}-{}",
            std::process::id()
        ));
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("HOSTNAME", name)
            .env("FLOTILLA_DATA_DIR", &data_dir)
            .env("FLOTILLA_DATABASE_URL", database_url)
            .env("FLOTILLA_MASTER_KEY", master_key)
            .env("FLOTILLA_LISTEN", format!("127.0.0.1:{port}"))
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .env("FLOTILLA_RATE_LIMIT", "0")
            .env("FLOTILLA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("{binary}: {e}"));
        Replica {
            child,
            port,
            data_dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A channel without a token, once the replica answers.
    pub async fn raw_channel(&self) -> Channel {
        connect(&self.url()).await
    }

    /// A channel whose calls carry the admin token, once the replica answers.
    pub async fn channel(&self) -> AuthedChannel {
        let bearer = Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}")));
        InterceptedService::new(self.raw_channel().await, bearer)
    }

    /// SIGKILL: no graceful shutdown, its leases are left to expire.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
