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
        let mut chunks = Chunks {
            body: &mut body,
            after: None,
        };
        loop {
            let mut data = match chunks.next().await {
                Chunk::Data(data) => data,
                Chunk::End => break,
                Chunk::Failed(err) => {
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

/// One step of a response body as the agent forwards it.
enum Chunk {
    Data(Bytes),
    End,
    Failed(String),
}

/// A response body read in tunnel-sized chunks: whatever else is already there when a chunk
/// arrives (a busy log follow delivers many small ones) is gathered into it, up to one data
/// frame, so the tunnel carries fewer, fuller frames. Nothing ever waits for more data.
struct Chunks<'a, B> {
    body: &'a mut B,
    /// What ended the gathering of the last chunk, handed out next.
    after: Option<Chunk>,
}

impl<B> Chunks<'_, B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    /// The next frame of data: `Some(Ok)` data, `Some(Err)` a failure, `None` the end.
    async fn frame(&mut self) -> Option<Result<Bytes, String>> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Err(err) => return Some(Err(err.to_string())),
            }
        }
    }

    async fn next(&mut self) -> Chunk {
        use futures::FutureExt;
        if let Some(after) = self.after.take() {
            return after;
        }
        let first = match self.frame().await {
            None => return Chunk::End,
            Some(Err(err)) => return Chunk::Failed(err),
            Some(Ok(data)) => data,
        };
        if first.len() >= MAX_DATA_FRAME {
            return Chunk::Data(first);
        }
        let mut gathered: Option<BytesMut> = None;
        loop {
            let len = gathered.as_ref().map_or(first.len(), BytesMut::len);
            if len >= MAX_DATA_FRAME {
                break;
            }
            match self.frame().now_or_never() {
                None => break,
                Some(None) => {
                    self.after = Some(Chunk::End);
                    break;
                }
                Some(Some(Err(err))) => {
                    self.after = Some(Chunk::Failed(err));
                    break;
                }
                Some(Some(Ok(more))) => gathered
                    .get_or_insert_with(|| BytesMut::from(&first[..]))
                    .extend_from_slice(&more),
            }
        }
        Chunk::Data(gathered.map_or(first, BytesMut::freeze))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(
        items: Vec<Result<&'static [u8], &'static str>>,
    ) -> impl http_body::Body<Data = Bytes, Error = String> + Unpin {
        http_body_util::StreamBody::new(futures::stream::iter(items.into_iter().map(|item| {
            item.map(|b| http_body::Frame::data(Bytes::from_static(b)))
                .map_err(str::to_string)
        })))
    }

    async fn drain<B>(chunks: &mut Chunks<'_, B>) -> (Vec<usize>, Vec<u8>, Option<String>)
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let (mut sizes, mut bytes) = (Vec::new(), Vec::new());
        loop {
            match chunks.next().await {
                Chunk::Data(data) => {
                    sizes.push(data.len());
                    bytes.extend_from_slice(&data);
                }
                Chunk::End => return (sizes, bytes, None),
                Chunk::Failed(err) => return (sizes, bytes, Some(err)),
            }
        }
    }

    #[tokio::test]
    async fn ready_chunks_are_gathered_up_to_a_frame_in_order() {
        static PIECE: [u8; 1000] = [7; 1000];
        let mut items: Vec<Result<&'static [u8], &'static str>> = vec![Ok(b"first")];
        items.extend((0..100).map(|_| Ok(&PIECE[..])));
        let mut source = body(items);
        let mut chunks = Chunks {
            body: &mut source,
            after: None,
        };
        let (sizes, bytes, failed) = drain(&mut chunks).await;
        assert_eq!(failed, None);
        assert_eq!(bytes.len(), 100_005);
        assert!(bytes.starts_with(b"first"));
        // Each gathered chunk stops at the first piece that reaches a frame.
        assert_eq!(sizes, vec![33_005, 33_000, 33_000, 1_000]);
        assert!(sizes.iter().all(|n| *n < MAX_DATA_FRAME + 1000));
    }

    #[tokio::test]
    async fn a_failure_comes_after_the_data_before_it() {
        let mut source = body(vec![Ok(b"abc"), Ok(b"def"), Err("reset by peer")]);
        let mut chunks = Chunks {
            body: &mut source,
            after: None,
        };
        let (sizes, bytes, failed) = drain(&mut chunks).await;
        assert_eq!(bytes, b"abcdef");
        assert_eq!(sizes, vec![6]);
        assert_eq!(failed.as_deref(), Some("reset by peer"));
    }
}
