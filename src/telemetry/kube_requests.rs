//! The tower layer in every cluster client's stack: each request to a Kubernetes API server is
//! counted and timed by cluster and Kubernetes verb (named as the API server's own audit log
//! names them), inside a client span that is a child of the RPC that made it.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use tracing::Instrument;

use super::metrics::{KubeLabels, Metrics};

/// What the layer needs: where to record, and which cluster the client talks to.
#[derive(Clone)]
pub struct KubeRequestLayer {
    metrics: Metrics,
    cluster_id: Arc<str>,
}

impl KubeRequestLayer {
    /// `cluster_id` empty: a client for a cluster not registered yet (an import's check).
    pub fn new(metrics: Metrics, cluster_id: &str) -> Self {
        KubeRequestLayer {
            metrics,
            cluster_id: Arc::from(cluster_id),
        }
    }
}

impl<S> tower::Layer<S> for KubeRequestLayer {
    type Service = KubeRequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KubeRequestService {
            inner,
            metrics: self.metrics.clone(),
            cluster_id: self.cluster_id.clone(),
        }
    }
}

#[derive(Clone)]
pub struct KubeRequestService<S> {
    inner: S,
    metrics: Metrics,
    cluster_id: Arc<str>,
}

impl<S, B, R> tower::Service<Request<B>> for KubeRequestService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let verb = verb(request.method(), request.uri().path(), request.uri().query());
        let span = super::traces::kube_span(verb, &self.cluster_id, request.method(), request.uri().path());
        super::traces::inject(&span, request.headers_mut());
        let future = self.inner.call(request);
        let metrics = self.metrics.clone();
        let cluster_id = self.cluster_id.clone();
        let started = Instant::now();
        Box::pin(
            async move {
                let result = future.await;
                let status = result.as_ref().map_or(0, |r| r.status().as_u16());
                metrics
                    .kube_duration
                    .get_or_create(&KubeLabels {
                        cluster_id,
                        verb,
                        http_response_status_code: status,
                    })
                    .observe(started.elapsed().as_secs_f64());
                super::traces::end_kube_span(status);
                result
            }
            .instrument(span),
        )
    }
}

/// The Kubernetes verb of a request, as the API server's request-info resolver decides it: a
/// GET of a collection is `list` (or `watch` with `watch=true`), of one object `get`; a DELETE
/// of a collection is `deletecollection`; POST `create`, PUT `update`, PATCH `patch`. Paths that
/// are not resources (/version, discovery) take the method's name in lower case.
pub fn verb(method: &Method, path: &str, query: Option<&str>) -> &'static str {
    let watch = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    });
    let Some(has_name) = resource_has_name(path) else {
        return match *method {
            Method::GET => "get",
            Method::POST => "post",
            Method::PUT => "put",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            Method::HEAD => "head",
            _ => "other",
        };
    };
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if has_name => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if has_name => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    }
}

/// For a resource path (`/api/v1/...` or `/apis/<group>/<version>/...`): whether it names one
/// object. `None` for every other path.
fn resource_has_name(path: &str) -> Option<bool> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    let rest = match rest {
        [] => return None,
        // A namespace's own subresources (status, finalize) belong to the namespace.
        ["namespaces", _ns, next, tail @ ..] if *next != "status" && *next != "finalize" => {
            let mut v = vec![*next];
            v.extend_from_slice(tail);
            v
        }
        other => other.to_vec(),
    };
    Some(rest.len() >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_named_as_the_api_server_names_them() {
        let v = |m: Method, path: &str, q: Option<&str>| verb(&m, path, q);
        assert_eq!(v(Method::GET, "/version", None), "get");
        assert_eq!(v(Method::GET, "/api/v1/namespaces", None), "list");
        assert_eq!(v(Method::GET, "/api/v1/namespaces/kube-system", None), "get");
        assert_eq!(v(Method::PUT, "/api/v1/namespaces/x/finalize", None), "update");
        assert_eq!(v(Method::GET, "/api/v1/nodes", Some("limit=500")), "list");
        assert_eq!(v(Method::GET, "/api/v1/pods", Some("watch=true&resourceVersion=1")), "watch");
        assert_eq!(v(Method::GET, "/api/v1/namespaces/a/pods", None), "list");
        assert_eq!(v(Method::GET, "/api/v1/namespaces/a/pods/p", None), "get");
        assert_eq!(v(Method::GET, "/api/v1/namespaces/a/pods/p/log", None), "get");
        assert_eq!(v(Method::POST, "/apis/apps/v1/namespaces/a/deployments", None), "create");
        assert_eq!(v(Method::PATCH, "/apis/apps/v1/namespaces/a/deployments/d/scale", None), "patch");
        assert_eq!(v(Method::DELETE, "/api/v1/namespaces/a/pods/p", None), "delete");
        assert_eq!(v(Method::DELETE, "/api/v1/namespaces/a/pods", None), "deletecollection");
        assert_eq!(v(Method::GET, "/apis/apps/v1", None), "get");
    }
}
