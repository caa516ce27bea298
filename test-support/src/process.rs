//! The server binary run as its own process, as an operator runs it: on a free loopback port,
//! with a fresh data directory and the tests' admin token. The benchmarks measure the release
//! build this way.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::server::{ADMIN_TOKEN, AuthedChannel, Bearer};

/// `$FLOTILLA_BIN`, else the workspace's release build.
pub fn release_binary() -> String {
    std::env::var("FLOTILLA_BIN").unwrap_or_else(|_| {
        crate::workspace_dir()
            .join("target/release/flotilla")
            .display()
            .to_string()
    })
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Connects to `url`, retrying while the server starts; panics after 60 s.
pub async fn connect(url: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(channel) = Channel::from_shared(url.to_string())
            .expect("url")
            .connect()
            .await
        {
            return channel;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: the server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resident memory of a process in KiB, from /proc; 0 when it cannot be read.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `flotilla serve` in a process of its own; killed when dropped.
pub struct ServerProcess {
    child: Child,
    url: String,
    watchdog: Option<Child>,
}

impl ServerProcess {
    /// Starts `binary` on a free port with `data_dir`, no rate limit and [`ADMIN_TOKEN`] as the
    /// bootstrap token.
    pub fn start(binary: &str, data_dir: &Path) -> ServerProcess {
        let port = free_port();
        let child = Command::new(binary)
            .args([
                "serve",
                "--rate-limit",
                "0",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e} (run `cargo build --release` first)"));
        let watchdog = watchdog(child.id());
        ServerProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            watchdog,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// A channel without a token, once the server answers.
    pub async fn raw_channel(&self) -> Channel {
        connect(&self.url).await
    }

    /// A channel whose calls carry the admin token, once the server answers.
    pub async fn channel(&self) -> AuthedChannel {
        let bearer = Bearer::new(Some(&format!("Bearer {ADMIN_TOKEN}")));
        InterceptedService::new(self.raw_channel().await, bearer)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// A shell that kills `child` once this process is gone: `Drop` does not run when a test or
/// bench is killed or aborts, and a server left behind keeps its port and data directory.
fn watchdog(child: u32) -> Option<Child> {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill {child} 2>/dev/null",
        parent = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}
