//! grpc.health.v1, per service, from what each one depends on (docs/production/probes.md):
//!
//! - `""` (the server) is **readiness**: SERVING while the database answers, the operation
//!   worker is alive and the server is not draining. Kubernetes takes the replica out of the
//!   Service while it is NOT_SERVING and puts it back when it recovers, without a restart.
//! - `"liveness"` is **liveness**: SERVING while the process answers at all, also while the
//!   database is down or the server drains (a restart cures neither, and restarting every
//!   replica during a database outage only adds a thundering herd); NOT_SERVING only when the
//!   operation worker's loops have all ended, which nothing but a restart repairs.
//! - each `flotilla.v1.*Service`: NOT_SERVING while the database is down (every call checks its
//!   token there) or the server drains; `OperationService` also while the worker is not alive
//!   (operations would not advance).
//!
//! The vendor transport is no input: it is built at start-up and a server that cannot build it
//! does not start; a vendor's outage is per account and region, reported on the operations
//! and clusters it touches, and must not take calls that never reach that vendor out of
//! service.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    service::operations::pulse::{WorkerHealth, WorkerPulse},
    store::Store,
};

/// The health service name of readiness (the server as a whole).
pub const READINESS: &str = "";
/// The health service name of liveness.
pub const LIVENESS: &str = "liveness";

/// The service that stops when the operation worker stops.
const OPERATIONS: &str = "flotilla.v1.OperationService";

/// What the checks found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub database: bool,
    pub worker: WorkerHealth,
    pub draining: bool,
}

/// The status of every health service name for what was observed.
pub fn statuses(seen: Observed) -> Vec<(&'static str, ServingStatus)> {
    let status = |serving: bool| {
        if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    };
    let worker_alive = seen.worker == WorkerHealth::Alive;
    let usable = seen.database && !seen.draining;
    let mut out = vec![
        (READINESS, status(usable && worker_alive)),
        (
            LIVENESS,
            status(seen.draining || seen.worker != WorkerHealth::Stopped),
        ),
    ];
    for name in crate::proto::SERVICE_NAMES {
        let serving = usable && (name != OPERATIONS || worker_alive);
        out.push((name, status(serving)));
    }
    out
}

async fn publish(
    health: &HealthReporter,
    seen: Observed,
    before: Option<&[(&'static str, ServingStatus)]>,
) -> Vec<(&'static str, ServingStatus)> {
    let now = statuses(seen);
    for (i, (name, status)) in now.iter().enumerate() {
        if before.is_none_or(|b| b.get(i).map(|(_, s)| s) != Some(status)) {
            health.set_service_status(*name, *status).await;
        }
    }
    now
}

/// Sets every name for a server that has just started (its database answered a moment ago).
pub async fn announce_start(health: &HealthReporter) {
    publish(
        health,
        Observed {
            database: true,
            worker: WorkerHealth::Alive,
            draining: false,
        },
        None,
    )
    .await;
}

/// Sets every name for a server that drains: everything NOT_SERVING but liveness.
pub async fn announce_draining(health: &HealthReporter) {
    publish(
        health,
        Observed {
            database: false,
            worker: WorkerHealth::Stopped,
            draining: true,
        },
        None,
    )
    .await;
}

/// What the health checks watch.
pub struct Watched {
    pub store: Store,
    pub worker: WorkerPulse,
    /// Silence after which a worker with running loops counts as stalled.
    pub worker_stall_after: Duration,
    pub interval: Duration,
}

/// Checks the database and the worker every `interval` until `shutdown`, and updates the names
/// whose status changed. A database check that takes longer than the interval counts as
/// unreachable: a hung connection must not keep the server SERVING.
pub async fn watch(watched: Watched, health: HealthReporter, shutdown: CancellationToken) {
    let interval = watched.interval;
    let mut before = statuses(Observed {
        database: true,
        worker: WorkerHealth::Alive,
        draining: false,
    });
    let mut last = (true, WorkerHealth::Alive);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let database = tokio::select! {
            () = shutdown.cancelled() => return,
            result = tokio::time::timeout(interval.max(Duration::from_secs(1)), watched.store.ping()) => {
                match result {
                    Ok(Ok(())) => true,
                    Ok(Err(err)) => {
                        tracing::debug!(%err, "database health check failed");
                        false
                    }
                    Err(_) => false,
                }
            }
        };
        let worker = watched.worker.health(watched.worker_stall_after);
        if (database, worker) != last {
            log_change(last, (database, worker));
            last = (database, worker);
        }
        // The shutdown path sets the draining statuses itself; never undo them.
        if shutdown.is_cancelled() {
            return;
        }
        let seen = Observed {
            database,
            worker,
            draining: false,
        };
        before = publish(&health, seen, Some(&before)).await;
    }
}

fn log_change(before: (bool, WorkerHealth), now: (bool, WorkerHealth)) {
    match (before.0, now.0) {
        (true, false) => {
            tracing::warn!("database unreachable: not ready until it answers");
        }
        (false, true) => tracing::info!("database reachable again"),
        _ => {}
    }
    if before.1 != now.1 {
        match now.1 {
            WorkerHealth::Alive => tracing::info!("operation worker alive again"),
            WorkerHealth::Stalled => tracing::warn!(
                "operation worker stalled: no progress within its stall limit; not ready"
            ),
            WorkerHealth::Stopped => tracing::error!(
                "operation worker stopped: no operation advances here; liveness fails so that \
                 the process is restarted"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(seen: Observed, name: &str) -> ServingStatus {
        statuses(seen)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .expect("name published")
    }

    const S: ServingStatus = ServingStatus::Serving;
    const N: ServingStatus = ServingStatus::NotServing;

    /// Written out by hand: (database, worker, draining) -> readiness, liveness,
    /// ClusterService, OperationService.
    #[test]
    fn the_rules_table() {
        use WorkerHealth::*;
        let table = [
            ((true, Alive, false), [S, S, S, S]),
            ((false, Alive, false), [N, S, N, N]),
            ((true, Stalled, false), [N, S, S, N]),
            ((true, Stopped, false), [N, N, S, N]),
            ((false, Stopped, false), [N, N, N, N]),
            ((true, Alive, true), [N, S, N, N]),
            ((true, Stopped, true), [N, S, N, N]),
        ];
        for ((database, worker, draining), wanted) in table {
            let seen = Observed {
                database,
                worker,
                draining,
            };
            let got = [
                status_of(seen, ""),
                status_of(seen, "liveness"),
                status_of(seen, "flotilla.v1.ClusterService"),
                status_of(seen, "flotilla.v1.OperationService"),
            ];
            assert_eq!(got, wanted, "{seen:?}");
        }
    }

    #[test]
    fn every_service_is_published() {
        let names: Vec<&str> = statuses(Observed {
            database: true,
            worker: WorkerHealth::Alive,
            draining: false,
        })
        .into_iter()
        .map(|(n, _)| n)
        .collect();
        for service in crate::proto::SERVICE_NAMES {
            assert!(names.contains(&service), "{service}");
        }
    }
}
