//! grpc.health.v1 follows the database: a cheap query every interval; NOT_SERVING while it
//! cannot be reached (no call that needs the store can succeed then), SERVING again once it
//! answers. Kubernetes probes and load balancers act on this.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::store::Store;

/// Checks the database every `interval` until `shutdown`, and sets every service's status (and
/// the server's, "") when the answer changes. A check that takes longer than the interval
/// counts as unreachable: a hung connection must not keep the server SERVING.
pub async fn watch_database(
    store: Store,
    health: HealthReporter,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut serving = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let reachable = tokio::select! {
            () = shutdown.cancelled() => return,
            result = tokio::time::timeout(interval.max(Duration::from_secs(1)), store.ping()) => {
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
        if reachable == serving {
            continue;
        }
        serving = reachable;
        let status = if serving {
            tracing::info!("database reachable again: serving");
            ServingStatus::Serving
        } else {
            tracing::warn!("database unreachable: health is NOT_SERVING until it answers");
            ServingStatus::NotServing
        };
        // The shutdown path sets NOT_SERVING itself; never undo it.
        if shutdown.is_cancelled() {
            return;
        }
        for name in crate::proto::SERVICE_NAMES
            .iter()
            .chain(std::iter::once(&""))
        {
            health.set_service_status(*name, status).await;
        }
    }
}
