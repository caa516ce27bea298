//! The agent manifest at its unguessable URL: `GET /agent/v1/manifests/<registration token>.yaml`
//! answers the manifest `CreateAgentRegistration` returned, for `kubectl apply -f <url>`, while
//! the token can still be exchanged; every other token (unknown, used, expired, malformed) gets
//! the same plain 404. The outermost HTTP layer: these requests carry no API token and never
//! reach authentication, the console or a gRPC service, and the path (which holds the token) is
//! never logged.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tonic::body::Body;

use crate::service::clusters::{agent::AgentRegistry, agent_manifest::MANIFEST_PATH_PREFIX};

/// Longest path looked up (a token is about 51 characters).
const MAX_TOKEN_LEN: usize = 128;

/// Serves agent manifests in front of `S`.
#[derive(Clone)]
pub struct AgentManifestLayer {
    agents: Arc<AgentRegistry>,
}

impl AgentManifestLayer {
    pub fn new(agents: Arc<AgentRegistry>) -> AgentManifestLayer {
        AgentManifestLayer { agents }
    }
}

impl<S> tower::Layer<S> for AgentManifestLayer {
    type Service = AgentManifestService<S>;

    fn layer(&self, inner: S) -> AgentManifestService<S> {
        AgentManifestService {
            inner,
            agents: self.agents.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AgentManifestService<S> {
    inner: S,
    agents: Arc<AgentRegistry>,
}

impl<S> tower::Service<Request<Body>> for AgentManifestService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<BoxFuture<'static, Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(token) = request.uri().path().strip_prefix(MANIFEST_PATH_PREFIX) else {
            return Either::Right(self.inner.call(request));
        };
        let method = request.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return Either::Left(Box::pin(std::future::ready(Ok(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD here\n",
            )))));
        }
        let token = token
            .strip_suffix(".yaml")
            .filter(|t| t.len() <= MAX_TOKEN_LEN)
            .map(str::to_string);
        let agents = self.agents.clone();
        Either::Left(Box::pin(async move {
            let Some(token) = token else {
                return Ok(not_found());
            };
            Ok(match agents.manifest(&token).await {
                Ok(Some(manifest)) => yaml(manifest.as_bytes(), method == Method::HEAD),
                Ok(None) => not_found(),
                Err(err) => {
                    tracing::warn!(error = %err, "reading an agent registration failed");
                    plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the server cannot read its database; retry\n",
                    )
                }
            })
        }))
    }
}

fn not_found() -> Response<Body> {
    plain(
        StatusCode::NOT_FOUND,
        "no such agent manifest: the registration token is unknown, used or expired\n",
    )
}

fn yaml(manifest: &[u8], head: bool) -> Response<Body> {
    let length = manifest.len();
    let body = if head {
        Body::empty()
    } else {
        Body::new(Full::new(Bytes::copy_from_slice(manifest)))
    };
    respond(StatusCode::OK, "application/yaml", length, body)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    respond(
        status,
        "text/plain; charset=utf-8",
        text.len(),
        Body::new(Full::new(Bytes::from_static(text.as_bytes()))),
    )
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    length: usize,
    body: Body,
) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // It holds a secret: no cache keeps it, no page it links to learns its URL.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
