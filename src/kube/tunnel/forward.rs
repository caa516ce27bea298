//! The agent's end of a tunnel: each stream Flotilla opens becomes one request to the
//! in-cluster API server, made with the agent's own client (its ServiceAccount), and the answer
//! goes back on the same stream within Flotilla's window. A reset from Flotilla drops the
//! request (closing a log follow or watch at the API server).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{INITIAL_WINDOW, MAX_DATA_FRAME, Window};
use crate::proto as pb;

/// Largest request body the agent buffers (apply requests are far smaller).
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// What the agent has forwarded, for its counters file and logs.
#[derive(Debug, Default)]
pub struct ForwardCounters {
    /// Requests sent to the API server.
    pub requests: AtomicU64,
    /// Response body bytes sent back through the tunnel.
    pub response_bytes: AtomicU64,
}

struct AgentSlot {
    head: Option<pb::TunnelRequestHead>,
    body: BytesMut,
    send_window: Arc<Window>,
    cancel: CancellationToken,
}

/// One tunnel session at the agent.
pub struct Forwarder {
    upstream: ::kube::Client,
    outbound: mpsc::UnboundedSender<pb::TunnelFrame>,
    streams: Mutex<HashMap<u64, AgentSlot>>,
    counters: Arc<ForwardCounters>,
    /// Cancelled when the session ends: every request in flight is dropped.
    session: CancellationToken,
}

impl Forwarder {
    pub fn new(
        upstream: ::kube::Client,
        outbound: mpsc::UnboundedSender<pb::TunnelFrame>,
        counters: Arc<ForwardCounters>,
    ) -> Arc<Forwarder> {
        Arc::new(Forwarder {
            upstream,
            outbound,
            streams: Mutex::default(),
            counters,
            session: CancellationToken::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AgentSlot>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, stream_id: u64, kind: pb::tunnel_frame::Kind) {
        let _ = self.outbound.send(pb::TunnelFrame {
            stream_id,
            kind: Some(kind),
        });
    }

    fn reset(&self, stream_id: u64, reason: &str) {
        self.send(
            stream_id,
            pb::tunnel_frame::Kind::Reset(pb::TunnelReset {
                reason: reason.into(),
            }),
        );
    }

    /// Ends the session: every request in flight is dropped.
    pub fn shutdown(&self) {
        self.session.cancel();
    }

    /// Takes in one frame from Flotilla.
    pub fn receive(self: &Arc<Self>, frame: pb::TunnelFrame) {
        use pb::tunnel_frame::Kind;
        let id = frame.stream_id;
        let Some(kind) = frame.kind else { return };
        match kind {
            Kind::Ping(value) => self.send(0, Kind::Pong(value)),
            Kind::Pong(_) | Kind::ResponseHead(_) => {}
            Kind::RequestHead(head) => {
                let slot = AgentSlot {
                    head: Some(head),
                    body: BytesMut::new(),
                    send_window: Arc::new(Window::new(INITIAL_WINDOW)),
                    cancel: self.session.child_token(),
                };
                self.lock().insert(id, slot);
            }
            Kind::Data(bytes) => {
                let too_big = {
                    let mut streams = self.lock();
                    match streams.get_mut(&id) {
                        Some(slot) if slot.body.len() + bytes.len() <= MAX_REQUEST_BODY => {
                            slot.body.extend_from_slice(&bytes);
                            false
                        }
                        Some(_) => true,
                        None => false,
                    }
                };
                if too_big {
                    self.lock().remove(&id);
                    self.reset(id, "the request body is too large for the agent");
                } else if !bytes.is_empty() {
                    // Buffered at once, so the credit goes straight back.
                    self.send(
                        id,
                        Kind::WindowUpdate(u32::try_from(bytes.len()).unwrap_or(u32::MAX)),
                    );
                }
            }
            Kind::End(_) => {
                let started = {
                    let mut streams = self.lock();
                    streams.get_mut(&id).and_then(|slot| {
                        slot.head.take().map(|head| {
                            (
                                head,
                                std::mem::take(&mut slot.body).freeze(),
                                slot.send_window.clone(),
                                slot.cancel.clone(),
                            )
                        })
                    })
                };
                if let Some((head, body, window, cancel)) = started {
                    let this = self.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            () = this.forward(id, head, body, &window) => {}
                        }
                        this.lock().remove(&id);
                    });
                }
            }
            Kind::Reset(_) => {
                if let Some(slot) = self.lock().remove(&id) {
                    slot.cancel.cancel();
                    slot.send_window.close();
                }
            }
            Kind::WindowUpdate(grant) => {
                if let Some(slot) = self.lock().get(&id) {
                    slot.send_window.grant(grant);
                }
            }
        }
    }

    /// Makes one request of the API server and streams the answer back.
    async fn forward(&self, id: u64, head: pb::TunnelRequestHead, body: Bytes, window: &Window) {
        let request = match build_request(head, body) {
            Ok(request) => request,
            Err(reason) => {
                self.reset(id, &reason);
                return;
            }
        };
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = match self.upstream.send(request).await {
            Ok(response) => response,
            Err(err) => {
                tracing::debug!(stream = id, error = %err, "forwarding a request failed");
                self.reset(
                    id,
                    &format!("the agent could not reach its API server: {err}"),
                );
                return;
            }
        };
        let (parts, mut body) = response.into_parts();
        self.send(
            id,
            pb::tunnel_frame::Kind::ResponseHead(pb::TunnelResponseHead {
                status: u32::from(parts.status.as_u16()),
                headers: parts
                    .headers
                    .iter()
                    .map(|(name, value)| pb::TunnelHeader {
                        name: name.as_str().to_string(),
                        value: value.as_bytes().to_vec(),
                    })
                    .collect(),
            }),
        );
        while let Some(frame) = body.frame().await {
            let mut data = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                Err(err) => {
                    self.reset(id, &format!("the API server's answer broke off: {err}"));
                    return;
                }
            };
            while !data.is_empty() {
                let Some(n) = window.take(data.len().min(MAX_DATA_FRAME)).await else {
                    return;
                };
                self.counters
                    .response_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.send(id, pb::tunnel_frame::Kind::Data(data.split_to(n)));
            }
        }
        self.send(id, pb::tunnel_frame::Kind::End(pb::TunnelEnd {}));
    }
}

fn build_request(
    head: pb::TunnelRequestHead,
    body: Bytes,
) -> Result<Request<::kube::client::Body>, String> {
    if !head.path_and_query.starts_with('/') {
        return Err("the request path must start with '/'".into());
    }
    let mut request = Request::builder()
        .method(head.method.as_str())
        .uri(head.path_and_query.as_str());
    for header in head.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| "a request header name is not valid".to_string())?;
        // The agent's own client authenticates; the connection headers are its own too.
        if name == http::header::AUTHORIZATION
            || name == http::header::HOST
            || name == http::header::CONTENT_LENGTH
            || name == http::header::TRANSFER_ENCODING
            || name == http::header::CONNECTION
        {
            continue;
        }
        let value = HeaderValue::from_bytes(&header.value)
            .map_err(|_| "a request header value is not valid".to_string())?;
        request = request.header(name, value);
    }
    request
        .body(::kube::client::Body::from(body))
        .map_err(|e| format!("the request is not valid: {e}"))
}
