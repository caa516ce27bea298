//! The metrics listener: `GET /metrics` on its own address (`--metrics-listen`), Prometheus text
//! exposition. Separate from the API port so that it needs no token and can stay inside the
//! cluster network; nothing else is served there.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::audit::AuditLog,
    kube::watch_cache::WatchCaches,
    store::{ACTIVE_STATES, Store, now_millis},
    telemetry::metrics::{
        CONTENT_TYPE, CacheLabels, Metrics, OperationKindLabels, OperationLabels, PoolStateLabels,
    },
};

/// Reads the state metrics (caches, queues, pool, operations) just before each scrape.
pub struct Sampler {
    pub metrics: Metrics,
    pub store: Store,
    pub caches: Arc<WatchCaches>,
    pub audit: AuditLog,
    /// One scrape at a time: sampling clears and refills families.
    busy: tokio::sync::Mutex<()>,
}

impl Sampler {
    pub fn new(metrics: Metrics, store: Store, caches: Arc<WatchCaches>, audit: AuditLog) -> Self {
        Sampler {
            metrics,
            store,
            caches,
            audit,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Samples, then encodes every family.
    pub async fn scrape(&self) -> String {
        let _one = self.busy.lock().await;
        self.sample().await;
        self.metrics.encode()
    }

    async fn sample(&self) {
        let m = &self.metrics;
        m.sample_runtime();
        let (depth, capacity) = self.audit.queue_depth();
        m.audit_queue_depth.set(depth as i64);
        m.audit_queue_capacity.set(capacity as i64);

        let pool = self.store.pool_use();
        m.db_connections_max.set(pool.max as i64);
        m.db_pending_requests.set(pool.waiting as i64);
        for (state, n) in [
            ("idle", pool.idle),
            ("used", pool.open.saturating_sub(pool.idle)),
        ] {
            m.db_connections
                .get_or_create(&PoolStateLabels {
                    db_client_connection_state: state,
                })
                .set(n as i64);
        }

        m.watch_cache_objects.clear();
        m.watch_cache_bytes.clear();
        for cache in self.caches.census() {
            for (resource, objects, bytes) in [
                ("pods", cache.pods, cache.pod_bytes),
                ("nodes", cache.nodes, cache.node_bytes),
                ("events", cache.events, cache.event_bytes),
            ] {
                let labels = CacheLabels {
                    cluster_id: cache.cluster_id.clone(),
                    resource,
                };
                m.watch_cache_objects
                    .get_or_create(&labels)
                    .set(objects as i64);
                m.watch_cache_bytes.get_or_create(&labels).set(bytes as i64);
            }
        }

        match self.store.operation_counts().await {
            Ok(counts) => {
                m.operations.clear();
                m.operation_oldest_active_age.clear();
                let now = now_millis();
                for count in counts {
                    m.operations
                        .get_or_create(&OperationLabels {
                            kind: count.kind.clone(),
                            state: count.state.clone(),
                        })
                        .set(count.count);
                    if let Some(oldest) = count.oldest_update_millis
                        && ACTIVE_STATES.contains(&count.state.as_str())
                    {
                        let age = (now - oldest).max(0) as f64 / 1000.0;
                        let gauge =
                            m.operation_oldest_active_age
                                .get_or_create(&OperationKindLabels {
                                    kind: count.kind.clone(),
                                });
                        if age > gauge.get() {
                            gauge.set(age);
                        }
                    }
                }
            }
            // The last values stay; the database's own health is reported elsewhere.
            Err(err) => tracing::debug!(%err, "counting operations for metrics failed"),
        }
    }
}

/// Binds the metrics address (so a bad address fails start-up).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics: listening on {addr}"))
}

/// Serves `GET /metrics` until `stop`.
pub async fn serve(listener: TcpListener, sampler: Arc<Sampler>, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(%err, "metrics: accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let sampler = sampler.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let sampler = sampler.clone();
                async move { Ok::<_, Infallible>(answer(&sampler, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

async fn answer<B>(sampler: &Sampler, request: Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "only /metrics is served here\n".into(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET /metrics\n".into(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    reply(StatusCode::OK, CONTENT_TYPE, sampler.scrape().await)
}
