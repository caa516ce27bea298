//! Keeps bodies from servers that are not Kubernetes API servers away from callers and logs.
//!
//! A caller chooses the server URL, so the "API server" may be anything: a web server, an
//! internal service, a metadata endpoint. kube-rs reads a whole error body and turns any text
//! into the error message, and logs bodies it cannot parse. This layer sits right above the
//! HTTP client:
//! - an error answer (4xx/5xx) is read up to [`ERROR_BODY_LIMIT`] bytes and kept only if it is a
//!   Kubernetes `Status`; otherwise it is replaced by a `Status` with the code and a fixed
//!   message;
//! - a successful answer that is an HTML page (no Kubernetes API answers HTML) becomes a 502
//!   `Status` the same way. Other successful bodies pass untouched (watches and logs stream).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full, Limited};
use tower::{BoxError, Layer, Service};

/// Largest error body read; a Kubernetes `Status` is a few hundred bytes.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A response body: the server's, or one we wrote instead.
pub type GuardedBody<B> = Either<B, Full<Bytes>>;

#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseGuardLayer;

impl<S> Layer<S> for ResponseGuardLayer {
    type Service = ResponseGuard<S>;
    fn layer(&self, inner: S) -> ResponseGuard<S> {
        ResponseGuard { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ResponseGuard<S> {
    inner: S,
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for ResponseGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<GuardedBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await.map_err(Into::into)?;
            Ok(guard(response).await)
        })
    }
}

async fn guard<B>(response: Response<B>) -> Response<GuardedBody<B>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let (parts, body) = response.into_parts();
        let kept = match Limited::new(body, ERROR_BODY_LIMIT).collect().await {
            Ok(collected) => Some(collected.to_bytes()).filter(|b| is_kubernetes_status(b)),
            // Too large, or the read failed: either way not shown.
            Err(_) => None,
        };
        let body = kept.unwrap_or_else(|| {
            replacement_status(
                status,
                &format!(
                    "the server answered {status} with a body that is not a Kubernetes Status \
                     (not shown); is this a Kubernetes API server?"
                ),
            )
        });
        return replaced(Response::from_parts(parts, ()), status, body);
    }
    if status.is_success() && is_html(response.headers()) {
        let body = replacement_status(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the server answered {status} with an HTML page (not shown); a Kubernetes API \
                 server never does, so this is not one"
            ),
        );
        let (parts, _html) = response.into_parts();
        return replaced(
            Response::from_parts(parts, ()),
            StatusCode::BAD_GATEWAY,
            body,
        );
    }
    response.map(Either::Left)
}

fn replaced<B>(head: Response<()>, status: StatusCode, body: Bytes) -> Response<GuardedBody<B>> {
    let (mut parts, ()) = head.into_parts();
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Either::Right(Full::new(body)))
}

/// `{"kind": "Status", "apiVersion": "v1", ...}` as the API server writes its errors.
fn is_kubernetes_status(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|value| {
        value.get("kind").and_then(|k| k.as_str()) == Some("Status")
            && value.get("apiVersion").and_then(|v| v.as_str()) == Some("v1")
    })
}

fn is_html(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim_start().to_ascii_lowercase();
            v.starts_with("text/html") || v.starts_with("application/xhtml")
        })
}

/// A Kubernetes `Status` with a message of ours, never the server's.
fn replacement_status(status: StatusCode, message: &str) -> Bytes {
    let reason = match status.as_u16() {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        429 => "TooManyRequests",
        500..=599 => "InternalError",
        _ => "BadRequest",
    };
    let value = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": status.as_u16(),
    });
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of<B>(response: Response<GuardedBody<B>>) -> (StatusCode, String)
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn answer(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(body.into()))
            .unwrap()
    }

    #[tokio::test]
    async fn a_kubernetes_status_passes() {
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"namespaces \"x\" not found","reason":"NotFound","code":404}"#;
        let (code, body) = body_of(guard(answer(404, "application/json", status)).await).await;
        assert_eq!(code, 404);
        assert_eq!(body, status);
    }

    #[tokio::test]
    async fn other_error_bodies_are_replaced() {
        let page = format!("<html>{}MARKER-SECRET</html>", "x".repeat(2 * 1024 * 1024));
        for (code, content_type, text) in [
            (500, "text/html", page.clone()),
            (404, "text/plain", "MARKER-SECRET".to_string()),
            (
                403,
                "application/json",
                r#"{"error":"MARKER-SECRET"}"#.to_string(),
            ),
            // Status-shaped but too large to be one: not read past the cap.
            (
                500,
                "application/json",
                format!(
                    r#"{{"kind":"Status","apiVersion":"v1","message":"{}MARKER-SECRET"}}"#,
                    "y".repeat(ERROR_BODY_LIMIT)
                ),
            ),
        ] {
            let (status, body) = body_of(guard(answer(code, content_type, text)).await).await;
            assert_eq!(status.as_u16(), code);
            assert!(!body.contains("MARKER"), "{body}");
            assert!(is_kubernetes_status(body.as_bytes()), "{body}");
            assert!(body.contains(&format!("\"code\":{code}")), "{body}");
        }
    }

    #[tokio::test]
    async fn html_success_pages_become_errors_and_other_bodies_pass() {
        let (status, body) =
            body_of(guard(answer(200, "text/html; charset=utf-8", "MARKER")).await).await;
        assert_eq!(status, 502);
        assert!(!body.contains("MARKER") && body.contains("HTML"), "{body}");
        let (status, body) = body_of(guard(answer(200, "text/plain", "a log line")).await).await;
        assert_eq!((status.as_u16(), body.as_str()), (200, "a log line"));
    }
}
