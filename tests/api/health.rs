//! grpc.health.v1 follows the database: NOT_SERVING while PostgreSQL cannot be reached, SERVING
//! again once it answers, without a restart.
//!
//! The shared PostgreSQL (scripts/postgres) serves other tests in parallel, so this test runs its
//! own: initdb and pg_ctl from Debian's /usr/lib/postgresql/<version>/bin, in a temporary
//! directory, on a free loopback port, as the `postgres` user when run as root (PostgreSQL
//! refuses to run as root).

use flotilla_test_support as support;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use base64::Engine;
use support::server::TestServer;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The newest installed PostgreSQL's bin directory.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A PostgreSQL of this test's own, stopped (and its files removed) when dropped.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres_user: bool,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn start(bin: PathBuf) -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let as_postgres_user = is_root();
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the temp dir to postgres");
        }
        let pg = PrivatePostgres {
            bin,
            data: dir.path().join("data"),
            port: free_port(),
            as_postgres_user,
            _dir: dir,
        };
        let data = pg.data.display().to_string();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "flotilla", "--no-sync"],
        );
        pg.ctl("start");
        pg
    }

    fn url(&self) -> String {
        format!("postgres://flotilla@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let data = self.data.display().to_string();
        let socket_dir = self
            .data
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .display()
            .to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {socket_dir}",
            self.port
        );
        let log = self.data.with_extension("log").display().to_string();
        let mut args = vec!["-D", &data, "-w", "-t", "30"];
        if action == "start" {
            args.extend(["-o", &options, "-l", &log]);
        } else {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let program = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        // Already stopped is fine.
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

async fn status(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check answers (it needs no database)")
        .into_inner()
        .status()
}

async fn wait_for(
    health: &mut HealthClient<tonic::transport::Channel>,
    wanted: ServingStatus,
    within: Duration,
) {
    let started = Instant::now();
    loop {
        let server = status(health, "").await;
        let service = status(health, "flotilla.v1.ClusterService").await;
        if server == wanted && service == wanted {
            return;
        }
        assert!(
            started.elapsed() < within,
            "still {server:?} / {service:?} after {within:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_follows_the_database() {
    let Some(bin) = postgres_bin() else {
        eprintln!(
            "SKIPPED: no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        );
        return;
    };
    let pg = PrivatePostgres::start(bin);
    let url = pg.url();
    let server = TestServer::start_with(|s| {
        s.database_url = url;
        s.master_key = Some(zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        ));
        s.health_check_interval = Duration::from_millis(200);
    })
    .await;
    // As a load balancer asks: no token.
    let mut health = HealthClient::new(server.raw_channel().await);
    wait_for(&mut health, ServingStatus::Serving, Duration::from_secs(5)).await;

    pg.ctl("stop");
    wait_for(
        &mut health,
        ServingStatus::NotServing,
        Duration::from_secs(15),
    )
    .await;

    pg.ctl("start");
    wait_for(&mut health, ServingStatus::Serving, Duration::from_secs(30)).await;
    server.shutdown().await;
}
