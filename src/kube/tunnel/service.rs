//! The tunnel as an HTTP client: a `tower::Service` for `kube::Client::new`, one tunnel stream
//! per request, the response body fed by the agent's data frames.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use super::{
    GRANT_THRESHOLD, INITIAL_WINDOW, MAX_DATA_FRAME, NOT_CONNECTED, ResponseHead, Slot, Tunnel,
    TunnelRegistry, Window,
};
use crate::proto as pb;

/// A request that could not go through the tunnel. The text never holds request content.
#[derive(Debug, Clone, thiserror::Error)]
#[error("agent tunnel: {0}")]
pub struct TunnelError(pub String);

/// Sends each request of one cluster through that cluster's live tunnel (looked up per request,
/// so a reconnected agent is used at once).
#[derive(Clone)]
pub struct TunnelService {
    registry: Arc<TunnelRegistry>,
    cluster_id: Arc<str>,
    /// How long to wait for the agent's response head.
    head_timeout: Duration,
    /// (user, group) every request acts as, in impersonation mode.
    impersonate: Option<(String, String)>,
}

impl TunnelService {
    pub fn new(
        registry: Arc<TunnelRegistry>,
        cluster_id: &str,
        head_timeout: Duration,
        impersonate: Option<(String, String)>,
    ) -> TunnelService {
        TunnelService {
            registry,
            cluster_id: cluster_id.into(),
            head_timeout,
            impersonate,
        }
    }

    async fn send(
        self,
        request: Request<::kube::client::Body>,
    ) -> Result<Response<TunnelBody>, TunnelError> {
        let tunnel = self
            .registry
            .get(&self.cluster_id)
            .ok_or_else(|| TunnelError(NOT_CONNECTED.into()))?;
        let (parts, body) = request.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut headers: Vec<pb::TunnelHeader> = parts
            .headers
            .iter()
            // The agent authenticates as itself.
            .filter(|(name, _)| *name != http::header::AUTHORIZATION)
            .map(|(name, value)| pb::TunnelHeader {
                name: name.as_str().to_string(),
                value: value.as_bytes().to_vec(),
            })
            .collect();
        if let Some((user, group)) = &self.impersonate {
            headers.push(pb::TunnelHeader {
                name: "impersonate-user".into(),
                value: user.as_bytes().to_vec(),
            });
            headers.push(pb::TunnelHeader {
                name: "impersonate-group".into(),
                value: group.as_bytes().to_vec(),
            });
        }
        let stream = tunnel.open_stream();
        let mut guard = StreamGuard {
            tunnel: tunnel.clone(),
            id: stream.id,
            armed: true,
        };
        tunnel.send(
            stream.id,
            pb::tunnel_frame::Kind::RequestHead(pb::TunnelRequestHead {
                method: parts.method.as_str().to_string(),
                path_and_query,
                headers,
            }),
        );
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| TunnelError(format!("reading the request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                send_data(&tunnel, stream.id, &stream.send_window, data).await?;
            }
        }
        tunnel.send(stream.id, pb::tunnel_frame::Kind::End(pb::TunnelEnd {}));
        let head = tokio::select! {
            head = stream.head => head.unwrap_or_else(|_| Err("the stream ended".into())),
            () = tokio::time::sleep(self.head_timeout) => Err(format!(
                "the agent did not answer within {:?} (timed out)", self.head_timeout
            )),
        }
        .map_err(TunnelError)?;
        let mut response = Response::builder().status(head.status);
        for header in head.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(header.name.as_bytes()),
                HeaderValue::from_bytes(&header.value),
            ) {
                response = response.header(name, value);
            }
        }
        guard.armed = false;
        let body = TunnelBody {
            tunnel,
            id: stream.id,
            frames: stream.body,
            receive_budget: stream.receive_budget,
            consumed: 0,
            done: false,
        };
        response
            .body(body)
            .map_err(|e| TunnelError(format!("the agent's response head is not valid: {e}")))
    }
}

/// Sends `data` on stream `id` within the agent's window, in frames of at most
/// [`MAX_DATA_FRAME`].
async fn send_data(
    tunnel: &Tunnel,
    id: u64,
    window: &Window,
    mut data: Bytes,
) -> Result<(), TunnelError> {
    while !data.is_empty() {
        let n = window
            .take(data.len().min(MAX_DATA_FRAME))
            .await
            .ok_or_else(|| {
                TunnelError(
                    tunnel
                        .close_reason()
                        .unwrap_or_else(|| "the stream was reset".into()),
                )
            })?;
        tunnel.send(id, pb::tunnel_frame::Kind::Data(data.split_to(n)));
    }
    Ok(())
}

impl tower::Service<Request<::kube::client::Body>> for TunnelService {
    type Response = Response<TunnelBody>;
    type Error = TunnelError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<TunnelBody>, TunnelError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TunnelError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<::kube::client::Body>) -> Self::Future {
        Box::pin(self.clone().send(request))
    }
}

/// The receiving ends of a new stream.
pub(super) struct OpenStream {
    pub id: u64,
    pub head: oneshot::Receiver<Result<ResponseHead, String>>,
    pub body: mpsc::UnboundedReceiver<Result<Bytes, String>>,
    pub send_window: Arc<Window>,
    pub receive_budget: Arc<AtomicI64>,
}

impl Tunnel {
    fn open_stream(&self) -> OpenStream {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (head_tx, head) = oneshot::channel();
        let (body_tx, body) = mpsc::unbounded_channel();
        let send_window = Arc::new(Window::new(INITIAL_WINDOW));
        let receive_budget = Arc::new(AtomicI64::new(i64::from(INITIAL_WINDOW)));
        self.lock().insert(
            id,
            Slot {
                head: Some(head_tx),
                body: Some(body_tx),
                send_window: send_window.clone(),
                receive_budget: receive_budget.clone(),
            },
        );
        if self.is_closed() {
            // Closed between the lookup and now: fail at once rather than wait.
            self.close(NOT_CONNECTED);
        }
        OpenStream {
            id,
            head,
            body,
            send_window,
            receive_budget,
        }
    }
}

/// Resets the stream if the request is dropped before its response head arrived.
struct StreamGuard {
    tunnel: Arc<Tunnel>,
    id: u64,
    armed: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.armed {
            self.tunnel.reset(self.id, "the caller went away");
        }
    }
}

/// A response body arriving through the tunnel. Consumed bytes are granted back to the agent
/// in batches; dropping the body before its end resets the stream at the agent.
pub struct TunnelBody {
    tunnel: Arc<Tunnel>,
    id: u64,
    frames: mpsc::UnboundedReceiver<Result<Bytes, String>>,
    receive_budget: Arc<AtomicI64>,
    consumed: u32,
    done: bool,
}

impl http_body::Body for TunnelBody {
    type Data = Bytes;
    type Error = TunnelError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, TunnelError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.frames.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.consumed = self
                    .consumed
                    .saturating_add(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
                if self.consumed >= GRANT_THRESHOLD {
                    let grant = std::mem::take(&mut self.consumed);
                    // Budget first, so data sent right after the grant is never an overrun.
                    self.receive_budget
                        .fetch_add(i64::from(grant), Ordering::AcqRel);
                    self.tunnel
                        .send(self.id, pb::tunnel_frame::Kind::WindowUpdate(grant));
                }
                Poll::Ready(Some(Ok(http_body::Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(reason))) => {
                self.done = true;
                Poll::Ready(Some(Err(TunnelError(reason))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl Drop for TunnelBody {
    fn drop(&mut self) {
        if !self.done {
            self.tunnel.reset(self.id, "the caller went away");
        }
    }
}

/// A kube-rs client whose every request goes through `cluster_id`'s tunnel: the same response
/// guard and observation as a direct client, no connector (the agent connects) and no
/// credentials (the agent's ServiceAccount authenticates).
pub fn client(
    registry: Arc<TunnelRegistry>,
    cluster_id: &str,
    head_timeout: Duration,
    impersonate: Option<&crate::kube::impersonation::Impersonation>,
    observe: Option<crate::telemetry::kube_requests::KubeRequestLayer>,
) -> ::kube::Client {
    let tunnel = TunnelService::new(
        registry,
        cluster_id,
        head_timeout,
        impersonate.map(|who| (who.user.clone(), who.group.clone())),
    );
    let service = tower::ServiceBuilder::new()
        .option_layer(observe)
        .layer(crate::kube::response_guard::ResponseGuardLayer)
        .service(tunnel);
    ::kube::Client::new(service, "default")
}
