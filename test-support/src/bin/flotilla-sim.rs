//! `flotilla-sim ack|tke|rancher`: one vendor simulator of `test-support/src/sim` as a process
//! of its own, so test suites in other languages (and `scripts/client-env`) can point a
//! `flotilla serve` at it.
//!
//! ```text
//! flotilla-sim ack|tke|rancher [--listen 127.0.0.1:0] [--kubeconfig PATH]
//!     [--provision-delay-ms N] [--change-delay-ms N] [--detach]
//! ```
//!
//! It prints one JSON line on stdout, then nothing else (logs go to stderr):
//! `vendor`, `url` (the vendor endpoint to give Flotilla), `addr`, `control_url` (the
//! simulator's own state, see below), `pid`, the credential it accepts (`access_key_id` and
//! `access_key_secret` for ACK/TKE; `key_id` and `token` for Rancher: the fields of Flotilla's
//! `AccessKeySecret` / `ApiKeySecret`), and what a valid `ClusterSpec` for it holds
//! (`region`, `kubernetes_version`, `cluster_type`, `cluster_spec`; absent when the vendor has
//! none).
//!
//! `GET <control_url>/clusters` answers `{"created": N, "clusters": [{"id", "state",
//! "version"}]}` from the simulator's own state: what a test compares Flotilla's answers with.
//!
//! It runs until SIGTERM/SIGINT or until stdin closes, so a test harness that dies without
//! stopping it does not leave it behind. `--detach` ignores stdin (for daemons started with
//! `</dev/null`, such as `scripts/client-env`'s). Only loopback addresses are accepted: the
//! simulator is a test fixture, never a service for other machines.
#![forbid(unsafe_code)]

use std::{
    io::{Read, Write},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::get};
use flotilla_test_support as support;
use serde_json::{Value, json};
use support::sim::{SimControl, ack::AckSim, rancher::RancherSim, serve_on, tke::TkeSim};

const USAGE: &str = "usage: flotilla-sim ack|tke|rancher [--listen 127.0.0.1:0] \
    [--kubeconfig PATH] [--provision-delay-ms N] [--change-delay-ms N] [--detach]";

#[derive(Debug, PartialEq)]
struct Args {
    vendor: Vendor,
    listen: SocketAddr,
    kubeconfig: Option<PathBuf>,
    provision_delay: Option<Duration>,
    change_delay: Option<Duration>,
    detach: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Vendor {
    Ack,
    Tke,
    Rancher,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut args = args.iter();
    let vendor = match args.next().map(String::as_str) {
        Some("ack") => Vendor::Ack,
        Some("tke") => Vendor::Tke,
        Some("rancher") => Vendor::Rancher,
        Some(other) => return Err(format!("unknown vendor {other:?}")),
        None => return Err("which simulator? ack, tke or rancher".into()),
    };
    let mut parsed = Args {
        vendor,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        kubeconfig: None,
        provision_delay: None,
        change_delay: None,
        detach: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let millis = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{flag}: {v:?} is not a number of milliseconds"))
        };
        match flag.as_str() {
            "--listen" => parsed.listen = loopback_address(&value()?)?,
            "--kubeconfig" => parsed.kubeconfig = Some(PathBuf::from(value()?)),
            "--provision-delay-ms" => parsed.provision_delay = Some(millis(value()?)?),
            "--change-delay-ms" => parsed.change_delay = Some(millis(value()?)?),
            "--detach" => parsed.detach = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

/// An IP literal and port on loopback (127.0.0.0/8, ::1, or ::ffff:127.x.x.x); anything else
/// is refused.
fn loopback_address(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("--listen {text:?}: give an IP and port such as 127.0.0.1:0"))?;
    let loopback = match addr.ip() {
        std::net::IpAddr::V6(ip) => ip.to_canonical().is_loopback(),
        ip => ip.is_loopback(),
    };
    if !loopback {
        return Err(format!(
            "--listen {text}: only loopback addresses (127.0.0.0/8, ::1) are allowed"
        ));
    }
    Ok(addr)
}

/// What the control endpoint and the JSON line need from a simulator.
enum Sim {
    Ack(AckSim),
    Tke(TkeSim),
    Rancher(RancherSim),
}

impl Sim {
    fn control(&self) -> &SimControl {
        match self {
            Sim::Ack(s) => &s.control,
            Sim::Tke(s) => &s.control,
            Sim::Rancher(s) => &s.control,
        }
    }

    fn endpoint(&self) -> String {
        match self {
            Sim::Ack(s) => s.endpoint(),
            Sim::Tke(s) => s.endpoint(),
            Sim::Rancher(s) => s.endpoint(),
        }
    }

    /// The JSON line's vendor-specific part: the credential it accepts and a valid spec.
    fn identity(&self) -> Value {
        match self {
            Sim::Ack(s) => {
                let (id, secret) = s.credentials();
                json!({
                    "vendor": "ack", "access_key_id": id, "access_key_secret": secret,
                    "region": "cn-hangzhou", "kubernetes_version": "1.33.1-aliyun.1",
                    "cluster_type": "ManagedKubernetes", "cluster_spec": "ack.pro.small",
                })
            }
            Sim::Tke(s) => {
                let (id, secret) = s.credentials();
                json!({
                    "vendor": "tke", "access_key_id": id, "access_key_secret": secret,
                    "region": "ap-guangzhou", "kubernetes_version": "1.30.0",
                    "cluster_type": "MANAGED_CLUSTER",
                })
            }
            Sim::Rancher(s) => {
                let (key_id, token) = s.credentials();
                json!({
                    "vendor": "rancher", "key_id": key_id, "token": token,
                    "kubernetes_version": "v1.32.5+rke2r1",
                })
            }
        }
    }

    fn state(&self) -> Value {
        let (created, ids) = match self {
            Sim::Ack(s) => (s.clusters_created(), s.cluster_ids()),
            Sim::Tke(s) => (s.clusters_created(), s.cluster_ids()),
            Sim::Rancher(s) => (s.clusters_created(), s.cluster_ids()),
        };
        let clusters: Vec<Value> = ids
            .iter()
            .map(|id| {
                let (state, version) = match self {
                    Sim::Ack(s) => (s.cluster_state(id), s.cluster_version(id)),
                    Sim::Tke(s) => (s.cluster_state(id), s.cluster_version(id)),
                    Sim::Rancher(s) => (s.cluster_state(id), s.cluster_version(id)),
                };
                json!({ "id": id, "state": state, "version": version })
            })
            .collect();
        json!({ "created": created, "clusters": clusters })
    }
}

async fn clusters(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(sim.state())
}

/// The kubeconfig every running simulated cluster hands out: `--kubeconfig`, else the test
/// control plane's admin kubeconfig with its certificates inlined (Flotilla stores what it is
/// given; file paths would point into this machine).
fn kubeconfig(path: Option<&PathBuf>) -> Result<String, String> {
    match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--kubeconfig {}: {e}", path.display())),
        None => std::panic::catch_unwind(support::kubeconfigs::admin_kubeconfig).map_err(|_| {
            "no --kubeconfig and no test control plane found (source target/kube-env/env)".into()
        }),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let kubeconfig = kubeconfig(args.kubeconfig.as_ref())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("simulator address: {e}"))?;
    let sim = match args.vendor {
        Vendor::Ack => Sim::Ack(AckSim::start_on(listener, kubeconfig)),
        Vendor::Tke => Sim::Tke(TkeSim::start_on(listener, kubeconfig)),
        Vendor::Rancher => Sim::Rancher(RancherSim::start_on(listener, kubeconfig)),
    };
    let control = sim.control();
    if args.provision_delay.is_some() || args.change_delay.is_some() {
        let provision = args.provision_delay.unwrap_or(control.provision_delay());
        let change = args.change_delay.unwrap_or(control.change_delay());
        control.set_delays(provision, change);
    }
    // The control endpoint shares the simulator's host, on a port of its own.
    let control_listener = tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0))
        .await
        .map_err(|e| format!("control endpoint: {e}"))?;
    let sim = Arc::new(sim);
    let control_router = Router::new()
        .route("/clusters", get(clusters))
        .with_state(sim.clone());
    let control_addr = serve_on(control_listener, control_router);

    let mut line = sim.identity();
    line["url"] = json!(sim.endpoint());
    line["addr"] = json!(addr.to_string());
    line["control_url"] = json!(format!("http://{control_addr}"));
    line["pid"] = json!(std::process::id());
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(stdout);
    eprintln!("flotilla-sim: {} serving on {addr}", args.vendor_name());

    wait_for_stop(args.detach).await;
    eprintln!("flotilla-sim: stopping");
    Ok(())
}

impl Args {
    fn vendor_name(&self) -> &'static str {
        match self.vendor {
            Vendor::Ack => "ack",
            Vendor::Tke => "tke",
            Vendor::Rancher => "rancher",
        }
    }
}

/// Returns on SIGTERM, SIGINT, or (unless `detach`) when stdin reaches its end.
async fn wait_for_stop(detach: bool) {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    if !detach {
        // A thread, not tokio: reading stdin blocks, and this needs no tokio `io-std`.
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = closed_tx.send(());
        });
    }
    let stdin_closed = async {
        if closed_rx.await.is_err() {
            // Detached: the sender is gone without a word; wait for a signal instead.
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = stdin_closed => {}
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    let args = match parse_args(&argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("flotilla-sim: {message}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flotilla-sim: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => {
            // The stdin thread may still be blocked in read; do not wait for it.
            runtime.shutdown_background();
            std::process::ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("flotilla-sim: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse_args(&argv)
    }

    #[test]
    fn listens_on_loopback_only() {
        for ok in [
            "127.0.0.1:0",
            "127.0.0.9:8080",
            "[::1]:0",
            "[::ffff:127.0.0.1]:0",
        ] {
            assert_eq!(
                args(&format!("ack --listen {ok}")).map(|a| a.listen),
                Ok(ok.parse().unwrap()),
                "{ok}"
            );
        }
        for refused in [
            "0.0.0.0:0",
            "[::]:0",
            "10.0.0.1:0",
            "192.168.1.2:80",
            "169.254.169.254:80",
            "[fe80::1]:0",
            "[::ffff:10.0.0.1]:0",
            "localhost:0",
        ] {
            let err = args(&format!("tke --listen {refused}")).unwrap_err();
            assert!(err.contains("--listen"), "{refused}: {err}");
        }
    }

    #[test]
    fn parses_vendors_and_flags() {
        let parsed =
            args("rancher --provision-delay-ms 300 --change-delay-ms 50 --detach").unwrap();
        assert_eq!(parsed.vendor, Vendor::Rancher);
        assert_eq!(parsed.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(parsed.provision_delay, Some(Duration::from_millis(300)));
        assert_eq!(parsed.change_delay, Some(Duration::from_millis(50)));
        assert!(parsed.detach);
        assert!(args("").is_err());
        assert!(args("gke").unwrap_err().contains("gke"));
        assert!(args("ack --listen").unwrap_err().contains("needs a value"));
        assert!(args("ack --bogus").unwrap_err().contains("--bogus"));
        assert!(args("ack --change-delay-ms soon").is_err());
    }
}
