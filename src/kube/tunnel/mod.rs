//! Tunnels to clusters imported by agent (issue #19): the agent inside the cluster dials out and
//! keeps one `AgentService/OpenTunnel` stream open; every Kubernetes request Flotilla makes of
//! that cluster travels through it as frames of its own stream id (request head, data, end;
//! answered by response head, data, end or reset).
//!
//! - [`TunnelRegistry`]: cluster id → the live tunnel. The newest tunnel of a cluster wins (the
//!   older one is closed), detaching a cluster closes its tunnel, and every change is announced
//!   so the cluster's status follows at once.
//! - [`Tunnel`]: one agent's stream, multiplexed. Each direction of each stream has a credit
//!   window ([`INITIAL_WINDOW`], granted back as the reader consumes), so a log follow nobody
//!   reads stops at its window instead of filling memory or holding up other streams; frames
//!   are never blocked on a slow reader.
//! - [`TunnelService`]: the `tower::Service` handed to `kube::Client::new`, so the rest of the
//!   kube layer (watch caches, apply, drain, events, logs) does not know it is tunneled.
//!
//! Keep-alives: Flotilla pings every third of the keep-alive interval; an agent not heard from
//! for a whole interval is gone and its tunnel closes (its requests fail at once).

pub mod forward;
mod service;
mod window;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::proto as pb;
pub use service::{TunnelBody, TunnelError, TunnelService, client};
pub use window::Window;

/// Bytes each side may send on a stream before the receiver grants more.
pub const INITIAL_WINDOW: u32 = 256 * 1024;
/// Largest data frame either side sends.
pub const MAX_DATA_FRAME: usize = 32 * 1024;
/// A reader grants consumed bytes back once this many have piled up (a quarter window).
pub const GRANT_THRESHOLD: u32 = INITIAL_WINDOW / 4;
/// Default keep-alive interval.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
/// Why requests of a cluster without a tunnel fail.
pub const NOT_CONNECTED: &str = "the cluster's agent is not connected";

/// What a stream's response head said.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: u16,
    pub headers: Vec<pb::TunnelHeader>,
}

/// One in-flight request on a tunnel.
struct Slot {
    head: Option<oneshot::Sender<Result<ResponseHead, String>>>,
    body: Option<mpsc::UnboundedSender<Result<Bytes, String>>>,
    /// Our credit for sending the request body.
    send_window: Arc<Window>,
    /// What the agent may still send us before we grant more.
    receive_budget: Arc<AtomicI64>,
}

/// One connected agent's stream.
pub struct Tunnel {
    cluster_id: String,
    outbound: mpsc::UnboundedSender<pb::TunnelFrame>,
    streams: Mutex<HashMap<u64, Slot>>,
    next_id: AtomicU64,
    closed: CancellationToken,
    close_reason: Mutex<Option<String>>,
    last_heard: Mutex<Instant>,
    keepalive: Duration,
}

impl Tunnel {
    fn new(
        cluster_id: &str,
        keepalive: Duration,
    ) -> (Arc<Tunnel>, mpsc::UnboundedReceiver<pb::TunnelFrame>) {
        let (outbound, frames) = mpsc::unbounded_channel();
        let tunnel = Arc::new(Tunnel {
            cluster_id: cluster_id.to_string(),
            outbound,
            streams: Mutex::default(),
            next_id: AtomicU64::new(1),
            closed: CancellationToken::new(),
            close_reason: Mutex::default(),
            last_heard: Mutex::new(Instant::now()),
            keepalive,
        });
        (tunnel, frames)
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once the tunnel is closed (replaced, detached, agent gone).
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.closed.cancelled()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Why the tunnel closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Closes the tunnel: every request in flight fails with `reason`.
    pub fn close(&self, reason: &str) {
        {
            let mut why = self.close_reason.lock().unwrap_or_else(|p| p.into_inner());
            if why.is_none() {
                *why = Some(reason.to_string());
            }
        }
        self.closed.cancel();
        let slots: Vec<Slot> = self.lock().drain().map(|(_, slot)| slot).collect();
        for mut slot in slots {
            if let Some(head) = slot.head.take() {
                let _ = head.send(Err(reason.to_string()));
            }
            if let Some(body) = slot.body.take() {
                let _ = body.send(Err(reason.to_string()));
            }
            slot.send_window.close();
        }
    }

    fn send(&self, stream_id: u64, kind: pb::tunnel_frame::Kind) {
        // Fails only once the stream to the agent is gone, when the tunnel closes anyway.
        let _ = self.outbound.send(pb::TunnelFrame {
            stream_id,
            kind: Some(kind),
        });
    }

    /// Abandons a stream: tells the agent (so it closes its request to the API server).
    fn reset(&self, stream_id: u64, reason: &str) {
        if self.lock().remove(&stream_id).is_some() {
            self.send(
                stream_id,
                pb::tunnel_frame::Kind::Reset(pb::TunnelReset {
                    reason: reason.into(),
                }),
            );
        }
    }

    /// Takes in one frame from the agent. Never waits: response data goes to the reader's
    /// queue, which the window bounds.
    pub fn receive(&self, frame: pb::TunnelFrame) {
        use pb::tunnel_frame::Kind;
        *self.last_heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let id = frame.stream_id;
        let Some(kind) = frame.kind else { return };
        match kind {
            Kind::Ping(value) => self.send(0, Kind::Pong(value)),
            Kind::Pong(_) => {}
            Kind::ResponseHead(head) => {
                let mut streams = self.lock();
                if let Some(sender) = streams.get_mut(&id).and_then(|s| s.head.take()) {
                    let _ = sender.send(Ok(ResponseHead {
                        status: u16::try_from(head.status).unwrap_or(502),
                        headers: head.headers,
                    }));
                }
            }
            Kind::Data(bytes) => {
                let overrun = {
                    let streams = self.lock();
                    match streams.get(&id) {
                        Some(slot) => {
                            let left = slot
                                .receive_budget
                                .fetch_sub(bytes.len() as i64, Ordering::AcqRel)
                                - bytes.len() as i64;
                            if left < 0 {
                                true
                            } else {
                                if let Some(body) = &slot.body {
                                    let _ = body.send(Ok(bytes));
                                }
                                false
                            }
                        }
                        None => false,
                    }
                };
                if overrun {
                    tracing::warn!(cluster = %self.cluster_id, stream = id,
                        "the agent sent more than its window; resetting the stream");
                    self.fail(id, "the agent sent more than its flow-control window");
                }
            }
            Kind::End(_) => {
                // Dropping the senders ends the body (or fails a request with no head).
                if let Some(mut slot) = self.lock().remove(&id)
                    && let Some(head) = slot.head.take()
                {
                    let _ = head.send(Err("the agent ended the stream without answering".into()));
                }
            }
            Kind::Reset(reset) => {
                let reason = format!("the agent abandoned the request: {}", reset.reason);
                if let Some(mut slot) = self.lock().remove(&id) {
                    if let Some(head) = slot.head.take() {
                        let _ = head.send(Err(reason.clone()));
                    }
                    if let Some(body) = slot.body.take() {
                        let _ = body.send(Err(reason));
                    }
                    slot.send_window.close();
                }
            }
            Kind::WindowUpdate(grant) => {
                if let Some(slot) = self.lock().get(&id) {
                    slot.send_window.grant(grant);
                }
            }
            Kind::RequestHead(_) => {
                tracing::debug!(cluster = %self.cluster_id, "ignoring a request head from an agent");
            }
        }
    }

    /// Fails a stream on our side and tells the agent.
    fn fail(&self, stream_id: u64, reason: &str) {
        let slot = self.lock().remove(&stream_id);
        if let Some(mut slot) = slot {
            if let Some(head) = slot.head.take() {
                let _ = head.send(Err(reason.to_string()));
            }
            if let Some(body) = slot.body.take() {
                let _ = body.send(Err(reason.to_string()));
            }
            slot.send_window.close();
            self.send(
                stream_id,
                pb::tunnel_frame::Kind::Reset(pb::TunnelReset {
                    reason: reason.into(),
                }),
            );
        }
    }

    /// Pings the agent every third of the keep-alive interval and closes the tunnel once it has
    /// not been heard from for a whole interval. Returns when the tunnel closes.
    pub async fn keep_alive(self: Arc<Self>) {
        let mut tick = tokio::time::interval((self.keepalive / 3).max(Duration::from_millis(50)));
        let mut n = 0u64;
        loop {
            tokio::select! {
                () = self.closed.cancelled() => return,
                _ = tick.tick() => {}
            }
            let heard = *self.last_heard.lock().unwrap_or_else(|p| p.into_inner());
            if heard.elapsed() > self.keepalive {
                tracing::info!(cluster = %self.cluster_id, "agent missed its keep-alives");
                self.close("the cluster's agent missed its keep-alives");
                return;
            }
            n += 1;
            self.send(0, pb::tunnel_frame::Kind::Ping(n));
        }
    }

    /// Streams in flight (tests, metrics).
    pub fn open_streams(&self) -> usize {
        self.lock().len()
    }
}

/// A change of a cluster's tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelChange {
    Connected(String),
    Disconnected { cluster_id: String, reason: String },
}

/// Cluster id → its live tunnel on this replica.
pub struct TunnelRegistry {
    tunnels: Mutex<HashMap<String, Arc<Tunnel>>>,
    changes: broadcast::Sender<TunnelChange>,
    keepalive: Duration,
}

impl TunnelRegistry {
    pub fn new(keepalive: Duration) -> Arc<TunnelRegistry> {
        Arc::new(TunnelRegistry {
            tunnels: Mutex::default(),
            changes: broadcast::channel(1024).0,
            keepalive,
        })
    }

    pub fn keepalive(&self) -> Duration {
        self.keepalive
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Tunnel>>> {
        self.tunnels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Announces connects and disconnects.
    pub fn subscribe(&self) -> broadcast::Receiver<TunnelChange> {
        self.changes.subscribe()
    }

    /// A new tunnel for `cluster_id`, replacing (and closing) the one it had: the newest agent
    /// wins. The receiver yields the frames to send to the agent.
    pub fn attach(
        &self,
        cluster_id: &str,
    ) -> (Arc<Tunnel>, mpsc::UnboundedReceiver<pb::TunnelFrame>) {
        let (tunnel, frames) = Tunnel::new(cluster_id, self.keepalive);
        let old = self.lock().insert(cluster_id.to_string(), tunnel.clone());
        if let Some(old) = old {
            tracing::info!(cluster = %cluster_id, "a newer agent replaced the connected one");
            old.close("replaced by a newer agent of the same cluster");
        }
        let _ = self
            .changes
            .send(TunnelChange::Connected(cluster_id.to_string()));
        (tunnel, frames)
    }

    /// Forgets `tunnel` (its stream ended) unless a newer one already replaced it.
    pub fn detach(&self, tunnel: &Arc<Tunnel>, reason: &str) {
        tunnel.close(reason);
        let removed = {
            let mut tunnels = self.lock();
            match tunnels.get(&tunnel.cluster_id) {
                Some(current) if Arc::ptr_eq(current, tunnel) => {
                    tunnels.remove(&tunnel.cluster_id);
                    true
                }
                _ => false,
            }
        };
        if removed {
            let _ = self.changes.send(TunnelChange::Disconnected {
                cluster_id: tunnel.cluster_id.clone(),
                reason: tunnel.close_reason().unwrap_or_else(|| reason.to_string()),
            });
        }
    }

    /// Closes a cluster's tunnel (the cluster was detached or its agent revoked).
    pub fn close_cluster(&self, cluster_id: &str, reason: &str) {
        let tunnel = self.lock().remove(cluster_id);
        if let Some(tunnel) = tunnel {
            tunnel.close(reason);
            let _ = self.changes.send(TunnelChange::Disconnected {
                cluster_id: cluster_id.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// The live tunnel of a cluster.
    pub fn get(&self, cluster_id: &str) -> Option<Arc<Tunnel>> {
        self.lock()
            .get(cluster_id)
            .filter(|t| !t.is_closed())
            .cloned()
    }

    pub fn is_connected(&self, cluster_id: &str) -> bool {
        self.get(cluster_id).is_some()
    }

    /// Clusters with a live tunnel here.
    pub fn connected(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, t)| !t.is_closed())
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;
