//! Vendor simulators for tests: loopback HTTP servers that follow each vendor's documented
//! request and response shapes, verify signatures, keep state, inject faults, and hand out the
//! real test control plane's kubeconfig once a cluster is running.
//!
//! Shared here: fault injection and the request log every simulator keeps.

pub mod ack;
pub mod acr;
pub mod harbor;
pub mod rancher;
pub mod tcr;
pub mod tke;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Faults a simulator injects, decided per request before it touches state (so an injected
/// failure never half-applies a change).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of requests answered with the vendor's throttling error (0.0..=1.0).
    pub throttle_ratio: f64,
    /// Retry hint sent with throttling errors, where the vendor sends one.
    pub throttle_retry_after: Option<Duration>,
    /// Share of requests answered with a server error (HTTP 5xx or the vendor's InternalError).
    pub server_error_ratio: f64,
    /// Delay added before every answer.
    pub latency: Option<Duration>,
    /// The next asynchronous task (create/scale/upgrade/delete) ends failed instead of
    /// succeeding, with this vendor error code.
    pub fail_next_task: Option<String>,
}

/// What a fault roll decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    None,
    Throttle,
    ServerError,
}

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    /// The vendor action ("CreateCluster", or "GET /v3/clusters" for Rancher).
    pub action: String,
    /// The account (access key id / API key name) it was signed with, when the signature held.
    pub account: String,
    /// What the simulator answered: "ok", "throttled", "server_error", "signature", "error".
    pub outcome: &'static str,
}

/// State shared by every simulator: faults, timing and the log.
#[derive(Clone)]
pub struct SimControl {
    inner: Arc<Mutex<ControlState>>,
}

struct ControlState {
    faults: Faults,
    seen: Vec<Seen>,
    /// How long a cluster takes to go from creating to running (and a delete to finish).
    provision_delay: Duration,
    /// How long a node pool change or an upgrade takes.
    change_delay: Duration,
    /// Faults owed so far (ratio × requests, less those injected): injections are spread
    /// evenly, so a ratio holds exactly over any run instead of by chance.
    throttle_debt: f64,
    error_debt: f64,
    /// Answers to this action (already applied to the simulator's state) are held back until
    /// released: the vendor has done the work, the client has not heard of it.
    hold: Option<String>,
    /// Answers being held now.
    held: usize,
}

impl Default for SimControl {
    fn default() -> Self {
        SimControl {
            inner: Arc::new(Mutex::new(ControlState {
                faults: Faults::default(),
                seen: Vec::new(),
                provision_delay: Duration::from_secs(2),
                change_delay: Duration::from_millis(500),
                throttle_debt: 0.0,
                error_debt: 0.0,
                hold: None,
                held: 0,
            })),
        }
    }
}

impl SimControl {
    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.lock();
        state.faults = faults;
        state.throttle_debt = 0.0;
        state.error_debt = 0.0;
    }

    pub fn set_delays(&self, provision: Duration, change: Duration) {
        let mut state = self.lock();
        state.provision_delay = provision;
        state.change_delay = change;
    }

    pub fn provision_delay(&self) -> Duration {
        self.lock().provision_delay
    }

    pub fn change_delay(&self) -> Duration {
        self.lock().change_delay
    }

    pub fn latency(&self) -> Option<Duration> {
        self.lock().faults.latency
    }

    pub fn throttle_retry_after(&self) -> Option<Duration> {
        self.lock().faults.throttle_retry_after
    }

    /// Decides the fault for one request: of every 100 requests, `throttle_ratio` × 100 are
    /// throttled and `server_error_ratio` × 100 fail, interleaved evenly.
    pub fn roll(&self) -> Injected {
        let mut state = self.lock();
        state.throttle_debt += state.faults.throttle_ratio;
        state.error_debt += state.faults.server_error_ratio;
        if state.throttle_debt >= 1.0 {
            state.throttle_debt -= 1.0;
            Injected::Throttle
        } else if state.error_debt >= 1.0 {
            state.error_debt -= 1.0;
            Injected::ServerError
        } else {
            Injected::None
        }
    }

    /// Holds every successful answer to `action` (its effect already applied) until
    /// [`SimControl::release`].
    pub fn hold(&self, action: &str) {
        self.lock().hold = Some(action.to_string());
    }

    /// Lets held answers (and later ones) go.
    pub fn release(&self) {
        self.lock().hold = None;
    }

    /// Answers being held back right now.
    pub fn held(&self) -> usize {
        self.lock().held
    }

    /// Waits while answers to `action` are held. A simulator calls it after applying a request
    /// and before answering. Dropped (the client went away), it stops counting as held.
    pub async fn wait_if_held(&self, action: &str) {
        struct Holding<'a>(&'a SimControl);
        impl Drop for Holding<'_> {
            fn drop(&mut self) {
                self.0.lock().held -= 1;
            }
        }
        if self.lock().hold.as_deref() != Some(action) {
            return;
        }
        self.lock().held += 1;
        let _holding = Holding(self);
        while self.lock().hold.as_deref() == Some(action) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Takes the one-shot task failure, if set.
    pub fn take_task_failure(&self) -> Option<String> {
        self.lock().faults.fail_next_task.take()
    }

    pub fn record(
        &self,
        action: impl Into<String>,
        account: impl Into<String>,
        outcome: &'static str,
    ) {
        self.lock().seen.push(Seen {
            at: Instant::now(),
            action: action.into(),
            account: account.into(),
            outcome,
        });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests the simulator saw for `action`.
    pub fn count(&self, action: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.action == action)
            .count()
    }

    /// The most requests that arrived within any `window` (all actions, all accounts).
    pub fn max_in_window(&self, window: Duration) -> usize {
        let times: Vec<Instant> = self.lock().seen.iter().map(|s| s.at).collect();
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }
}

/// Serves `router` on a loopback port in the background; returns its address.
pub async fn serve(router: axum::Router) -> SocketAddr {
    serve_on(loopback_listener().await, router)
}

/// A listener on a free loopback port.
pub async fn loopback_listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind simulator")
}

/// Serves `router` on `listener` (bound by the caller: the `flotilla-sim` binary chooses the
/// address) in the background; returns its address.
pub fn serve_on(listener: tokio::net::TcpListener, router: axum::Router) -> SocketAddr {
    let addr = listener.local_addr().expect("simulator address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("simulator server");
    });
    addr
}
