//! The soak's server replicas: `flotilla serve` processes on one PostgreSQL database, each on a
//! fixed loopback port so a restarted replica comes back where its clients look for it, and what
//! /proc (and the metrics endpoint, when the binary has one) says about each.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use flotilla_test_support as support;
use support::{process::free_port, server::ADMIN_TOKEN};

/// The soak's own database on the test PostgreSQL, dropped and created again for every run.
pub async fn fresh_database(admin_url: &str, name: &str) -> String {
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .expect("connect to the test PostgreSQL (FLOTILLA_TEST_POSTGRES_URL)");
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop the previous soak database");
    conn.batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the soak database");
    let base = admin_url.rsplit_once('/').expect("database in URL").0;
    format!("{base}/{name}")
}

/// Whether `binary serve` has `--metrics-listen` (the Prometheus endpoint of issue #18).
pub fn has_metrics_listen(binary: &str) -> bool {
    Command::new(binary)
        .args(["serve", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--metrics-listen"))
        .unwrap_or(false)
}

/// The same settings for every replica.
pub struct ReplicaSetup {
    pub binary: String,
    pub database_url: String,
    /// base64 of 32 random bytes: replicas on one database must share it.
    pub master_key: String,
    pub config_file: PathBuf,
    pub run_dir: PathBuf,
    pub metrics: bool,
}

impl ReplicaSetup {
    /// Writes the config file every replica reads: no per-token caps on streams (the soak's
    /// 1,200 streams run under one token) and no request rate limit.
    pub fn new(binary: String, database_url: String, run_dir: &Path) -> ReplicaSetup {
        let config_file = run_dir.join("flotilla.toml");
        std::fs::write(
            &config_file,
            "max_streams_per_token = 0\nmax_event_watches_per_token = 0\nrate_limit_per_second = 0\n",
        )
        .expect("write config");
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        use base64::Engine;
        let metrics = has_metrics_listen(&binary);
        ReplicaSetup {
            binary,
            database_url,
            master_key: base64::engine::general_purpose::STANDARD.encode(key),
            config_file,
            run_dir: run_dir.to_path_buf(),
            metrics,
        }
    }
}

/// One `flotilla serve` replica that can be stopped and started again on the same port.
pub struct Replica {
    pub name: &'static str,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pid: AtomicU32,
    child: Mutex<Option<Child>>,
}

/// How a replica went down and came back.
#[derive(Debug, Clone)]
pub struct Restart {
    pub at_secs: f64,
    pub replica: &'static str,
    pub old_pid: u32,
    pub new_pid: u32,
    /// SIGTERM until the process exited.
    pub stop_secs: f64,
    /// Exited by itself after SIGTERM (not killed after the timeout).
    pub graceful: bool,
    /// Start until the health service answered SERVING.
    pub ready_secs: f64,
}

/// One reading of a replica's process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub pid: u32,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    /// Tokio's alive tasks from the metrics endpoint; None without one.
    pub tasks: Option<u64>,
}

impl Replica {
    pub fn new(name: &'static str, metrics: bool) -> Replica {
        Replica {
            name,
            port: free_port(),
            metrics_port: metrics.then(free_port),
            pid: AtomicU32::new(0),
            child: Mutex::new(None),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Acquire)
    }

    /// Starts the process (its output appended to `<run_dir>/replica-<name>.log`) and waits
    /// until it serves.
    pub async fn start(&self, setup: &ReplicaSetup) -> Duration {
        let started = Instant::now();
        let data_dir = setup.run_dir.join(format!("data-{}", self.name));
        let log_path = setup.run_dir.join(format!("replica-{}.log", self.name));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("replica log");
        let _ = writeln!(log, "---- soak: starting replica {}", self.name);
        let mut command = Command::new(&setup.binary);
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&setup.config_file)
            .env("FLOTILLA_DATABASE_URL", &setup.database_url)
            .env("FLOTILLA_MASTER_KEY", &setup.master_key)
            .env("FLOTILLA_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some(port) = self.metrics_port {
            command.args(["--metrics-listen", &format!("127.0.0.1:{port}")]);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", setup.binary));
        self.pid.store(child.id(), Ordering::Release);
        *self.child.lock().expect("child") = Some(child);
        self.wait_serving().await;
        started.elapsed()
    }

    async fn wait_serving(&self) {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(self.url())
                .expect("url")
                .connect_timeout(Duration::from_secs(2))
                .connect()
                .await
                && let Ok(answer) = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                && answer.get_ref().status() == ServingStatus::Serving
            {
                return;
            }
            if let Some(child) = self.child.lock().expect("child").as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "replica {} exited while starting ({status}); see replica-{}.log",
                    self.name, self.name
                );
            }
            assert!(
                Instant::now() < deadline,
                "replica {} did not serve within 90 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits up to `grace` for the process to exit (SIGKILL after that).
    /// Returns (seconds it took, whether it exited by itself).
    pub async fn stop(&self, grace: Duration) -> (f64, bool) {
        let started = Instant::now();
        let Some(mut child) = self.child.lock().expect("child").take() else {
            return (0.0, true);
        };
        // No unsafe in this crate: kill(1) sends the signal.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        let graceful = loop {
            match child.try_wait() {
                Ok(Some(_)) => break true,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
            }
        };
        (started.elapsed().as_secs_f64(), graceful)
    }

    /// RSS, open descriptors and threads from /proc; tasks from the metrics endpoint.
    pub async fn sample(&self, http: &reqwest::Client) -> ProcSample {
        let pid = self.pid();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
        let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let tasks = match self.metrics_port {
            Some(port) => alive_tasks(http, port).await,
            None => None,
        };
        ProcSample {
            pid,
            rss_kib: support::process::rss_kib(pid),
            fds,
            threads,
            tasks,
        }
    }
}

/// The tokio alive-tasks gauge from the Prometheus text at `/metrics` (any metric whose name
/// contains `alive_tasks`, summed over its label sets).
async fn alive_tasks(http: &reqwest::Client, port: u16) -> Option<u64> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut total = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        if line[..name_end].contains("alive_tasks")
            && let Some(value) = line
                .split_whitespace()
                .last()
                .and_then(|v| v.parse::<f64>().ok())
        {
            *total.get_or_insert(0) += value as u64;
        }
    }
    total
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
