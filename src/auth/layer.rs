//! The tower layer that authenticates, authorizes, rate-limits and audits every call.
//! Health and reflection stay open. Errors are gRPC statuses, so grpc-web clients get them too.

use std::{
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::{
    Code, Status,
    body::Body,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tonic_types::{ErrorDetails, StatusExt};

use super::{
    Principal,
    audit::{AuditEvent, AuditLog, AuditNote},
    permissions::{self, Permission, Rule},
    rate::RateLimiter,
    tokens::{AuthError, Tokens},
};
use crate::proto::ERROR_DOMAIN;
use crate::telemetry::grpc_status::{call_end, code_name, code_of};

/// Everything the layer needs.
pub struct AuthState {
    pub tokens: Arc<Tokens>,
    pub audit: AuditLog,
    /// Requests per token, after authentication.
    pub limiter: RateLimiter,
    /// Refused calls per client address, checked before authentication: an address that keeps
    /// sending calls without a valid token is refused without a token lookup.
    pub peer_limiter: RateLimiter,
}

/// What the audit log records as the method of a call to a path we do not serve: the path is
/// the caller's choice, so it is not stored.
pub const UNKNOWN_METHOD: &str = "<unknown>";

#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    pub fn new(state: Arc<AuthState>) -> Self {
        AuthLayer { state }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<AuthState>,
}

impl<S> tower::Service<Request<Body>> for AuthService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready clone serves this call; the fresh clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(guard(state, inner, request))
    }
}

async fn guard<S>(
    state: Arc<AuthState>,
    mut inner: S,
    mut request: Request<Body>,
) -> Result<Response<Body>, S::Error>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
{
    let path = request.uri().path();
    if permissions::is_public(path) {
        return inner.call(request).await;
    }
    // Unknown methods still need a valid token; tonic then answers UNIMPLEMENTED.
    let (method, rule) = permissions::lookup(path).unwrap_or((
        UNKNOWN_METHOD,
        Rule {
            permission: Permission::Read,
            mutating: false,
            global: false,
        },
    ));
    let given_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string);
    let peer = peer_socket_address(&request);
    let address = client_address(peer);
    // The audit event, made only when one is written (a denial, a mutating call): a read that
    // succeeds needs no request id and no event. A caller's own id is echoed back; otherwise
    // the id is only in the audit row (and on denials), which keeps a header off every response.
    let event_for = |token_name: String| AuditEvent {
        method: method.to_string(),
        request_id: given_id.clone().unwrap_or_else(new_request_id),
        peer_address: peer.map(|a| a.to_string()).unwrap_or_default(),
        token_name,
        ..AuditEvent::default()
    };

    // Before any token lookup: an address that has used up its budget of refused calls waits.
    if let Err(wait) = state.peer_limiter.peek(&address) {
        let mut details = ErrorDetails::with_error_info("ADDRESS_RATE_LIMITED", ERROR_DOMAIN, []);
        details.set_retry_info(Some(wait));
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            format!(
                "too many calls without a valid API token from this address; retry in {} ms",
                wait.as_millis().max(1)
            ),
            details,
        );
        return Ok(deny_anonymous(
            &state,
            &address,
            event_for(String::new()),
            status,
        ));
    }
    // The agent's calls carry a registration token or an agent credential, which only the agent
    // service can check; an API token is worth nothing there (and an agent credential nothing
    // anywhere else: it is not an API token).
    if rule.permission == Permission::Agent {
        return inner.call(request).await;
    }

    let principal = match bearer(&request) {
        Ok(secret) => state.tokens.authenticate(secret).await,
        Err(err) => Err(err),
    };
    let principal = match principal {
        Ok(principal) => principal,
        Err(err) => {
            let token_name = match &err {
                AuthError::Expired(name) | AuthError::Revoked(name) => name.clone(),
                _ => String::new(),
            };
            let status = match &err {
                AuthError::Unavailable(_) => Status::with_error_details(
                    Code::Unavailable,
                    "API tokens cannot be checked right now; retry",
                    ErrorDetails::with_error_info("AUTH_UNAVAILABLE", ERROR_DOMAIN, []),
                ),
                other => {
                    state.peer_limiter.charge(&address);
                    Status::with_error_details(
                        Code::Unauthenticated,
                        other.to_string(),
                        ErrorDetails::with_error_info(reason(other), ERROR_DOMAIN, []),
                    )
                }
            };
            return Ok(deny_anonymous(
                &state,
                &address,
                event_for(token_name),
                status,
            ));
        }
    };

    if !principal.role.allows(rule.permission) {
        let status = Status::with_error_details(
            Code::PermissionDenied,
            format!(
                "token {:?} has role {} and lacks the {:?} permission that {path} needs",
                principal.name,
                principal.role.as_str(),
                rule.permission.as_str()
            ),
            ErrorDetails::with_error_info(
                "MISSING_PERMISSION",
                ERROR_DOMAIN,
                [(
                    "permission".to_string(),
                    rule.permission.as_str().to_string(),
                )],
            ),
        );
        return Ok(deny(&state, event_for(principal.name.clone()), status).await);
    }
    if rule.global && principal.clusters.is_some() {
        let status = Status::with_error_details(
            Code::PermissionDenied,
            format!(
                "token {:?} is limited to some clusters; {path} needs a token for all clusters",
                principal.name
            ),
            ErrorDetails::with_error_info("CLUSTER_SCOPED_TOKEN", ERROR_DOMAIN, []),
        );
        return Ok(deny(&state, event_for(principal.name.clone()), status).await);
    }
    if let Err(wait) = state.limiter.check(&principal.token_id) {
        let mut details = ErrorDetails::with_error_info("RATE_LIMITED", ERROR_DOMAIN, []);
        details.set_retry_info(Some(wait));
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            format!(
                "token {:?} is over its request budget; retry in {} ms",
                principal.name,
                wait.as_millis().max(1)
            ),
            details,
        );
        return Ok(deny(&state, event_for(principal.name.clone()), status).await);
    }

    // Only a mutating call is audited, so only it carries a note for the handler to fill.
    let audited = rule
        .mutating
        .then(|| (event_for(principal.name.clone()), AuditNote::default()));
    request.extensions_mut().insert::<Principal>(principal);
    if let Some((_, note)) = &audited {
        request.extensions_mut().insert(note.clone());
    }
    let mut response = inner.call(request).await?;
    if let Some(id) = &given_id
        && let Ok(value) = HeaderValue::from_str(id)
    {
        response.headers_mut().insert("x-request-id", value);
    }
    let Some((mut event, note)) = audited else {
        return Ok(response);
    };
    // A trailers-only response carries its status in the headers; otherwise it comes in the
    // trailers at the end of the body.
    if let Some(code) = response.headers().get("grpc-status").map(code_of) {
        (event.cluster_id, event.target) = note.get();
        event.result_code = code_name(code).to_string();
        state.audit.record(event).await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        Body::new(AuditedBody {
            inner: body,
            pending: Some((state.audit.clone(), event, note)),
        }),
    ))
}

/// A unique request id without a system call per request: a random per-process prefix and a
/// counter.
fn new_request_id() -> String {
    use std::sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    };
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_string());
    format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn bearer(request: &Request<Body>) -> Result<&str, AuthError> {
    let Some(value) = request.headers().get(http::header::AUTHORIZATION) else {
        return Err(AuthError::Missing);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}

fn reason(err: &AuthError) -> &'static str {
    match err {
        AuthError::Missing => "TOKEN_MISSING",
        AuthError::Malformed => "TOKEN_MALFORMED",
        AuthError::Unknown => "TOKEN_INVALID",
        AuthError::Expired(_) => "TOKEN_EXPIRED",
        AuthError::Revoked(_) => "TOKEN_REVOKED",
        AuthError::Unavailable(_) => "AUTH_UNAVAILABLE",
    }
}

async fn deny(state: &AuthState, mut event: AuditEvent, status: Status) -> Response<Body> {
    event.result_code = code_name(status.code()).to_string();
    event.message = status.message().to_string();
    let request_id = event.request_id.clone();
    state.audit.record(event).await;
    let mut response = status.into_http::<Body>();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Refuses a call made without an accepted token. Such calls are counted per address and minute
/// instead of written one by one (see [`super::audit`]).
fn deny_anonymous(
    state: &AuthState,
    address: &str,
    mut event: AuditEvent,
    status: Status,
) -> Response<Body> {
    event.result_code = code_name(status.code()).to_string();
    event.message = status.message().to_string();
    let request_id = event.request_id.clone();
    state.audit.count_anonymous(address, event);
    let mut response = status.into_http::<Body>();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

fn peer_socket_address(request: &Request<Body>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|tls| tls.get_ref().remote_addr())
        })
}

/// The address budgets and anonymous counts are kept for: the IP address without the port
/// (ports change with every connection), and for IPv6 the /64 network, since one host
/// usually has a whole /64 to pick addresses from.
pub fn client_address(peer: Option<SocketAddr>) -> String {
    match peer.map(|addr| addr.ip()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "<no address>".to_string(),
    }
}

/// A response body that writes the audit row when the call's final status is known: at the
/// trailers, on an error, or when the client goes away (CANCELLED).
struct AuditedBody {
    inner: Body,
    pending: Option<(AuditLog, AuditEvent, AuditNote)>,
}

impl AuditedBody {
    fn finish(&mut self, code: Code) {
        if let Some((audit, mut event, note)) = self.pending.take() {
            (event.cluster_id, event.target) = note.get();
            event.result_code = code_name(code).to_string();
            tokio::spawn(async move { audit.record(event).await });
        }
    }
}

impl HttpBody for AuditedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if let Some(code) = call_end(&poll) {
            this.finish(code);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        if self.pending.is_some() && tokio::runtime::Handle::try_current().is_ok() {
            self.finish(Code::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_drop_ports_and_group_ipv6_by_64() {
        let address = |text: &str| client_address(Some(text.parse().unwrap()));
        assert_eq!(address("127.0.0.1:40000"), "127.0.0.1");
        assert_eq!(address("127.0.0.1:40001"), "127.0.0.1");
        assert_eq!(address("[::ffff:10.1.2.3]:5"), "10.1.2.3");
        assert_eq!(address("[2001:db8:1:2:3:4:5:6]:5"), "2001:db8:1:2::/64");
        assert_eq!(address("[2001:db8:1:2:ffff::1]:5"), "2001:db8:1:2::/64");
        assert_eq!(client_address(None), "<no address>");
    }
}
