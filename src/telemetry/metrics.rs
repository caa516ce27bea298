//! The metrics registry and every metric family Flotilla exports, in one place.
//!
//! Names and labels follow the OpenTelemetry semantic conventions v1.40.0 where one exists (RPC
//! server, process), translated to Prometheus the way the OpenTelemetry Prometheus exporter does:
//! dots become underscores, the unit becomes a suffix (`_seconds`, `_bytes`) and counters end in
//! `_total`. The rest are `flotilla_*`. Labels are bounded: method and status names, cluster ids,
//! vendor and operation names from our code, never caller input or secrets.
//!
//! Event metrics (calls, requests) are recorded where they happen through a [`Metrics`] handle;
//! state metrics (caches, queues, pools, operations) are sampled when /metrics is scraped, by
//! the [`Sampler`] the wiring gives the listener.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

/// Latency buckets in seconds, 5 ms to 60 s: RPCs, Kubernetes requests, probes, vendor calls.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Database statements are faster: 0.5 ms to 10 s.
const QUERY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn query_histogram() -> Histogram {
    Histogram::new(QUERY_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// `rpc.server.call.duration`'s attributes: `rpc.system.name`, `rpc.method` (fully qualified:
/// `flotilla.v1.ClusterService/ListClusters`, or `_OTHER` for a path we do not serve) and
/// `rpc.response.status_code` (the gRPC code's name, `OK`, `NOT_FOUND`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc_system_name: &'static str,
    pub rpc_method: Arc<str>,
    pub rpc_response_status_code: &'static str,
}

/// Server streams open now, by what they carry (`logs`, `workload_logs`, `events`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub kind: &'static str,
}

/// A request to a cluster's Kubernetes API server: the cluster (empty while importing), the
/// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
/// `deletecollection`, as in the API server's own audit log) and the HTTP status code
/// (`0`: no response).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeLabels {
    pub cluster_id: Arc<str>,
    pub verb: &'static str,
    /// `resource` (one object), `namespace` or `cluster` (a collection), or `nonresource`
    /// (/version, discovery), as the API server's own `apiserver_request_total` scopes them.
    pub scope: &'static str,
    pub http_response_status_code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster_id: String,
}

/// A vendor call as the adapter sees it: after retries, did it succeed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorLabels {
    pub vendor: &'static str,
    pub operation: &'static str,
    /// `ok`, or the error class (`rate_limited`, `timeout`, `vendor_unavailable`, ...).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorOperationLabels {
    pub vendor: &'static str,
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cluster_id: String,
    /// `pods` or `nodes`.
    pub resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub kind: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationKindLabels {
    pub kind: String,
}

/// `db.client.connection.count`'s attribute: `idle` or `used`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolStateLabels {
    pub db_client_connection_state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbLabels {
    /// `sqlite` or `postgresql` (semconv `db.system.name`).
    pub db_system_name: &'static str,
}

/// Every metric family. Cheap to clone; clones share the families.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

pub struct Families {
    registry: Registry,
    pub rpc_duration: Histograms<RpcLabels>,
    pub open_streams: Family<StreamLabels, Gauge>,
    pub kube_duration: Histograms<KubeLabels>,
    pub probe_duration: Histograms<ClusterLabels>,
    pub cluster_reachable: Family<ClusterLabels, Gauge>,
    pub vendor_calls: Family<VendorLabels, Counter>,
    pub vendor_attempt_duration: Histograms<VendorOperationLabels>,
    pub vendor_retries: Family<VendorOperationLabels, Counter>,
    pub vendor_throttles: Family<VendorOperationLabels, Counter>,
    pub watch_cache_objects: Family<CacheLabels, Gauge>,
    pub watch_cache_bytes: Family<CacheLabels, Gauge>,
    pub operations: Family<OperationLabels, Gauge>,
    pub operation_oldest_active_age:
        Family<OperationKindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub db_connections: Family<PoolStateLabels, Gauge>,
    pub db_connections_max: Gauge,
    pub db_pending_requests: Gauge,
    pub db_operation_duration: Histograms<DbLabels>,
    pub audit_queue_depth: Gauge,
    pub audit_queue_capacity: Gauge,
    pub runtime_alive_tasks: Gauge,
    pub runtime_workers: Gauge,
    pub runtime_global_queue_depth: Gauge,
}

impl std::ops::Deref for Metrics {
    type Target = Families;

    fn deref(&self) -> &Families {
        &self.0
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Two handles are equal when they share their families (settings that carry one compare).
impl PartialEq for Metrics {
    fn eq(&self, other: &Metrics) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let rpc_duration = Histograms::<RpcLabels>::new_with_constructor(latency_histogram as _);
        registry.register_with_unit(
            "rpc_server_call_duration",
            "Duration of inbound RPCs (gRPC and grpc-web), to the last message for streams",
            Unit::Seconds,
            rpc_duration.clone(),
        );
        let open_streams = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "flotilla_rpc_server_open_streams",
            "Server streams open now, by kind",
            open_streams.clone(),
        );
        let kube_duration = Histograms::<KubeLabels>::new_with_constructor(latency_histogram as _);
        registry.register_with_unit(
            "flotilla_kube_request_duration",
            "Requests to clusters' Kubernetes API servers, to the response headers",
            Unit::Seconds,
            kube_duration.clone(),
        );
        let probe_duration =
            Histograms::<ClusterLabels>::new_with_constructor(latency_histogram as _);
        registry.register_with_unit(
            "flotilla_cluster_probe_duration",
            "Duration of each cluster probe (version, identity, node counts)",
            Unit::Seconds,
            probe_duration.clone(),
        );
        let cluster_reachable = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "flotilla_cluster_reachable",
            "1 when the cluster's last probe succeeded, 0 when it failed",
            cluster_reachable.clone(),
        );
        let vendor_calls = Family::<VendorLabels, Counter>::default();
        registry.register(
            "flotilla_vendor_calls",
            "Vendor API calls, after retries, by outcome",
            vendor_calls.clone(),
        );
        let vendor_attempt_duration =
            Histograms::<VendorOperationLabels>::new_with_constructor(latency_histogram as _);
        registry.register_with_unit(
            "flotilla_vendor_request_duration",
            "Duration of each HTTP exchange with a vendor (every attempt)",
            Unit::Seconds,
            vendor_attempt_duration.clone(),
        );
        let vendor_retries = Family::<VendorOperationLabels, Counter>::default();
        registry.register(
            "flotilla_vendor_retries",
            "Vendor requests sent again after a throttle or a transient failure",
            vendor_retries.clone(),
        );
        let vendor_throttles = Family::<VendorOperationLabels, Counter>::default();
        registry.register(
            "flotilla_vendor_throttles",
            "Vendor answers that said to slow down (throttling, rate limits)",
            vendor_throttles.clone(),
        );
        let watch_cache_objects = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "flotilla_watch_cache_objects",
            "Objects held in a cluster's watch cache",
            watch_cache_objects.clone(),
        );
        let watch_cache_bytes = Family::<CacheLabels, Gauge>::default();
        registry.register_with_unit(
            "flotilla_watch_cache_memory",
            "Approximate memory of a cluster's watch cache (fixed part of each object)",
            Unit::Bytes,
            watch_cache_bytes.clone(),
        );
        let operations = Family::<OperationLabels, Gauge>::default();
        registry.register(
            "flotilla_operations",
            "Long-running operations in the database, by kind and state",
            operations.clone(),
        );
        let operation_oldest_active_age = Family::default();
        registry.register_with_unit(
            "flotilla_operation_oldest_active_age",
            "Time since the least recently updated active operation of a kind was last updated",
            Unit::Seconds,
            operation_oldest_active_age.clone(),
        );
        let db_connections = Family::<PoolStateLabels, Gauge>::default();
        registry.register(
            "db_client_connection_count",
            "Database connections in the pool, idle or used",
            db_connections.clone(),
        );
        let db_connections_max = Gauge::default();
        registry.register(
            "db_client_connection_max",
            "Most database connections the pool opens",
            db_connections_max.clone(),
        );
        let db_pending_requests = Gauge::default();
        registry.register(
            "db_client_connection_pending_requests",
            "Callers waiting for a database connection",
            db_pending_requests.clone(),
        );
        let db_operation_duration =
            Histograms::<DbLabels>::new_with_constructor(query_histogram as _);
        registry.register_with_unit(
            "db_client_operation_duration",
            "Database work of one store call: waiting for a connection and its statements",
            Unit::Seconds,
            db_operation_duration.clone(),
        );
        let audit_queue_depth = Gauge::default();
        registry.register(
            "flotilla_audit_queue_depth",
            "Audit events waiting to be written",
            audit_queue_depth.clone(),
        );
        let audit_queue_capacity = Gauge::default();
        registry.register(
            "flotilla_audit_queue_capacity",
            "Audit events the queue holds before callers wait",
            audit_queue_capacity.clone(),
        );
        let runtime_alive_tasks = Gauge::default();
        registry.register(
            "flotilla_runtime_alive_tasks",
            "Tasks alive in the tokio runtime",
            runtime_alive_tasks.clone(),
        );
        let runtime_workers = Gauge::default();
        registry.register(
            "flotilla_runtime_workers",
            "Worker threads of the tokio runtime",
            runtime_workers.clone(),
        );
        let runtime_global_queue_depth = Gauge::default();
        registry.register(
            "flotilla_runtime_global_queue_depth",
            "Tasks waiting in the tokio runtime's global queue",
            runtime_global_queue_depth.clone(),
        );
        registry.register_collector(Box::new(super::process::ProcessCollector));
        Metrics(Arc::new(Families {
            registry,
            rpc_duration,
            open_streams,
            kube_duration,
            probe_duration,
            cluster_reachable,
            vendor_calls,
            vendor_attempt_duration,
            vendor_retries,
            vendor_throttles,
            watch_cache_objects,
            watch_cache_bytes,
            operations,
            operation_oldest_active_age,
            db_connections,
            db_connections_max,
            db_pending_requests,
            db_operation_duration,
            audit_queue_depth,
            audit_queue_capacity,
            runtime_alive_tasks,
            runtime_workers,
            runtime_global_queue_depth,
        }))
    }

    /// The Prometheus text exposition (version 0.0.4) of every family.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!(%err, "encoding metrics failed");
        }
        text
    }

    /// Records one probe of a cluster.
    pub fn record_probe(&self, cluster_id: &str, took: Duration, reachable: bool) {
        let labels = ClusterLabels {
            cluster_id: cluster_id.to_string(),
        };
        self.probe_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.cluster_reachable
            .get_or_create(&labels)
            .set(i64::from(reachable));
    }

    /// Forgets a cluster's per-cluster series (it was detached).
    pub fn forget_cluster(&self, cluster_id: &str) {
        let labels = ClusterLabels {
            cluster_id: cluster_id.to_string(),
        };
        self.probe_duration.remove(&labels);
        self.cluster_reachable.remove(&labels);
    }

    /// Samples the tokio runtime this is called on.
    pub fn sample_runtime(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let m = handle.metrics();
            self.runtime_alive_tasks.set(m.num_alive_tasks() as i64);
            self.runtime_workers.set(m.num_workers() as i64);
            self.runtime_global_queue_depth
                .set(m.global_queue_depth() as i64);
        }
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
