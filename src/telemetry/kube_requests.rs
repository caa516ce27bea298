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
        let (verb, scope) = verb(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        let span = super::traces::kube_span(
            verb,
            &self.cluster_id,
            request.method(),
            request.uri().path(),
        );
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
                        scope,
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

/// The Kubernetes verb of a request and its scope, as the API server's request-info resolver
/// decides them: a GET of a collection is `list` (or `watch` with `watch=true`), of one object
/// `get`; a DELETE of a collection is `deletecollection`; POST `create`, PUT `update`, PATCH
/// `patch`. Scope: `resource` (one object), `namespace` or `cluster` (a collection), or
/// `nonresource` for paths that are not resources (/version, discovery), whose verb is the
/// method's name in lower case.
pub fn verb(method: &Method, path: &str, query: Option<&str>) -> (&'static str, &'static str) {
    let watch = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    });
    let Some(target) = resource_target(path) else {
        let verb = match *method {
            Method::GET => "get",
            Method::POST => "post",
            Method::PUT => "put",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            Method::HEAD => "head",
            _ => "other",
        };
        return (verb, "nonresource");
    };
    let has_name = target == "resource";
    let verb = match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if has_name => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if has_name => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, target)
}

/// For a resource path (`/api/v1/...` or `/apis/<group>/<version>/...`): `resource` when it
/// names one object, else `namespace` or `cluster` for a collection. `None` for other paths.
fn resource_target(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    let (namespaced, rest) = match rest {
        [] => return None,
        // A namespace's own subresources (status, finalize) belong to the namespace.
        ["namespaces", _ns, next, tail @ ..] if *next != "status" && *next != "finalize" => {
            let mut v = vec![*next];
            v.extend_from_slice(tail);
            (true, v)
        }
        other => (false, other.to_vec()),
    };
    Some(match (rest.len() >= 2, namespaced) {
        (true, _) => "resource",
        (false, true) => "namespace",
        (false, false) => "cluster",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_named_as_the_api_server_names_them() {
        let v = |m: Method, path: &str, q: Option<&str>| verb(&m, path, q);
        assert_eq!(v(Method::GET, "/version", None), ("get", "nonresource"));
        assert_eq!(
            v(Method::GET, "/apis/apps/v1", None),
            ("get", "nonresource")
        );
        assert_eq!(
            v(Method::GET, "/api/v1/namespaces", None),
            ("list", "cluster")
        );
        assert_eq!(
            v(Method::GET, "/api/v1/namespaces/kube-system", None),
            ("get", "resource")
        );
        assert_eq!(
            v(Method::PUT, "/api/v1/namespaces/x/finalize", None),
            ("update", "resource")
        );
        assert_eq!(
            v(Method::GET, "/api/v1/nodes", Some("limit=500")),
            ("list", "cluster")
        );
        assert_eq!(
            v(
                Method::GET,
                "/api/v1/pods",
                Some("watch=true&resourceVersion=1")
            ),
            ("watch", "cluster")
        );
        assert_eq!(
            v(Method::GET, "/api/v1/namespaces/a/pods", None),
            ("list", "namespace")
        );
        assert_eq!(
            v(Method::GET, "/api/v1/namespaces/a/pods/p", None),
            ("get", "resource")
        );
        assert_eq!(
            v(Method::GET, "/api/v1/namespaces/a/pods/p/log", None),
            ("get", "resource")
        );
        assert_eq!(
            v(Method::POST, "/apis/apps/v1/namespaces/a/deployments", None),
            ("create", "namespace")
        );
        assert_eq!(
            v(
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                None
            ),
            ("patch", "resource")
        );
        assert_eq!(
            v(Method::DELETE, "/api/v1/namespaces/a/pods/p", None),
            ("delete", "resource")
        );
        assert_eq!(
            v(Method::DELETE, "/api/v1/namespaces/a/pods", None),
            ("deletecollection", "namespace")
        );
    }
}
