//! What the metrics sample from the database: the connection pool's use and the operations by
//! kind and state.

use diesel::{dsl::count_star, prelude::*};
use diesel_async::RunQueryDsl;

use super::{Backend, Result, Store, schema::operations, with_conn};

/// The pool's connections now (deadpool's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Most connections the pool opens.
    pub max: usize,
    /// Connections open, idle or used.
    pub open: usize,
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// Operations of one kind in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationCount {
    pub kind: String,
    pub state: String,
    pub count: i64,
    /// The oldest `update_time` among them (ms since the epoch).
    pub oldest_update_millis: Option<i64>,
}

impl Store {
    pub fn pool_use(&self) -> PoolUse {
        let status = match &self.backend {
            Backend::Sqlite(pool) => pool.status(),
            Backend::Postgres(pool) => pool.status(),
        };
        PoolUse {
            max: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        }
    }

    /// `db.system.name` of the backend.
    pub fn system_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    /// Operations grouped by kind and state.
    pub async fn operation_counts(&self) -> Result<Vec<OperationCount>> {
        let rows: Vec<(String, String, i64, Option<i64>)> = with_conn!(self, conn => {
            operations::table
                .group_by((operations::kind, operations::state))
                .select((
                    operations::kind,
                    operations::state,
                    count_star(),
                    diesel::dsl::min(operations::update_time),
                ))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, state, count, oldest)| OperationCount {
                kind,
                state,
                count,
                oldest_update_millis: oldest,
            })
            .collect())
    }
}

/// The histogram store calls report their database time to, set once metrics are on.
#[derive(Clone, Default)]
pub(crate) struct QueryMetrics(
    std::sync::Arc<std::sync::OnceLock<crate::telemetry::metrics::Metrics>>,
);

impl QueryMetrics {
    /// Times until dropped (every return path of a store call).
    pub(crate) fn timer(&self, system: &'static str) -> Option<QueryTimer<'_>> {
        self.0.get().map(|metrics| QueryTimer {
            metrics,
            system,
            started: std::time::Instant::now(),
        })
    }
}

pub(crate) struct QueryTimer<'a> {
    metrics: &'a crate::telemetry::metrics::Metrics,
    system: &'static str,
    started: std::time::Instant,
}

impl Drop for QueryTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .db_operation_duration
            .get_or_create(&crate::telemetry::metrics::DbLabels {
                db_system_name: self.system,
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Store {
    /// From now on every store call's database time (waiting for a connection included) is
    /// observed in `metrics`. Only the first call has an effect.
    pub fn observe_queries(&self, metrics: crate::telemetry::metrics::Metrics) {
        let _ = self.metrics.0.set(metrics);
    }
}
