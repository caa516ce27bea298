//! Live registry status: what the background prober last saw (reachability, the API version,
//! the credential's expiry), kept in memory like the clusters' (it is observed state, not
//! stored state), and the prober itself.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, UNIX_EPOCH},
};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::adapters::registry::LoginInfo;
use crate::service::{
    clusters::{Warning, status::EXPIRY_WARNING},
    registries::{RegistryStatus, connect::RegistryConnector},
};
use crate::store::{RegistryRow, Store, now_millis};

/// The latest observed status of every registry.
#[derive(Default)]
pub struct RegistryStatusBoard {
    statuses: RwLock<HashMap<String, RegistryStatus>>,
}

impl RegistryStatusBoard {
    pub fn get(&self, registry_id: &str) -> Option<RegistryStatus> {
        let map = self.statuses.read().unwrap_or_else(|p| p.into_inner());
        map.get(registry_id).cloned()
    }

    pub fn remove(&self, registry_id: &str) {
        let mut map = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        map.remove(registry_id);
    }

    /// Records a check's outcome.
    pub fn record(&self, registry_id: &str, outcome: Result<&LoginInfo, String>) -> RegistryStatus {
        let mut map = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        let previous = map.get(registry_id).cloned().unwrap_or_default();
        let status = observed(outcome, &previous);
        map.insert(registry_id.to_string(), status.clone());
        status
    }
}

/// The status a check's outcome gives, keeping what was known before while unreachable.
pub fn observed(outcome: Result<&LoginInfo, String>, previous: &RegistryStatus) -> RegistryStatus {
    let now = now_millis();
    let mut status = match outcome {
        Ok(info) => RegistryStatus {
            reachable: true,
            api_version: info.api_version.clone(),
            credential_expire_millis: info.credential_expires.and_then(|t| {
                t.duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as i64)
            }),
            ..RegistryStatus::default()
        },
        Err(reason) => RegistryStatus {
            reachable: false,
            unreachable_reason: reason,
            api_version: previous.api_version.clone(),
            credential_expire_millis: previous.credential_expire_millis,
            ..RegistryStatus::default()
        },
    };
    status.last_check_millis = Some(now);
    if let Some(expiry) = status.credential_expire_millis {
        if expiry <= now {
            status.warnings.push(Warning {
                code: "CREDENTIAL_EXPIRED".into(),
                message: "the registry credential has expired; rotate it".into(),
            });
        } else if expiry - now <= EXPIRY_WARNING.as_millis() as i64 {
            let days = (expiry - now) / (24 * 3600 * 1000);
            status.warnings.push(Warning {
                code: "CREDENTIAL_EXPIRING".into(),
                message: format!("the registry credential expires in {days} day(s); rotate it"),
            });
        }
    }
    status
}

/// How the registry prober runs.
#[derive(Debug, Clone, Copy)]
pub struct RegistryProberSettings {
    pub interval: Duration,
    /// Registries checked at once.
    pub concurrency: usize,
}

/// Logs in to every registry every interval until shut down.
pub struct RegistryProber {
    pub store: Store,
    pub connector: Arc<RegistryConnector>,
    pub board: Arc<RegistryStatusBoard>,
    pub settings: RegistryProberSettings,
}

impl RegistryProber {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            self.check_all().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.interval) => {}
            }
        }
    }

    async fn check_all(&self) {
        match self.store.all_registries().await {
            Ok(rows) => {
                futures::stream::iter(rows)
                    .for_each_concurrent(self.settings.concurrency.max(1), |row| async move {
                        self.check_one(&row).await;
                    })
                    .await;
            }
            Err(err) => tracing::warn!(error = %err, "listing registries to check failed"),
        }
    }

    /// Logs in to one registry (bounded by the interval) and records what it saw.
    pub async fn check_one(&self, row: &RegistryRow) -> RegistryStatus {
        let limit = self.settings.interval.max(Duration::from_secs(1));
        let outcome = match self.connector.client(row).await {
            Ok((_, client)) => match tokio::time::timeout(limit, client.login()).await {
                Ok(Ok(info)) => Ok(info),
                Ok(Err(err)) => Err(format!("{}: {}", err.class.as_str(), err.message)),
                Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
            },
            Err(err) => Err(err.to_string()),
        };
        if let Err(reason) = &outcome {
            tracing::debug!(registry = %row.id, %reason, "registry check failed");
        }
        self.board
            .record(&row.id, outcome.as_ref().map_err(Clone::clone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_was_known_and_warns_on_expiry() {
        let board = RegistryStatusBoard::default();
        let soon = std::time::SystemTime::now() + Duration::from_secs(2 * 24 * 3600);
        let up = board.record(
            "r",
            Ok(&LoginInfo {
                api_version: "v2.0".into(),
                credential_expires: Some(soon),
            }),
        );
        assert!(up.reachable);
        assert_eq!(up.api_version, "v2.0");
        assert_eq!(up.warnings[0].code, "CREDENTIAL_EXPIRING");
        let down = board.record("r", Err("connection refused".into()));
        assert!(!down.reachable);
        assert_eq!(down.unreachable_reason, "connection refused");
        assert_eq!(down.api_version, "v2.0", "last known version stays");
        assert!(down.last_check_millis.is_some());
        board.remove("r");
        assert!(board.get("r").is_none());
    }
}
