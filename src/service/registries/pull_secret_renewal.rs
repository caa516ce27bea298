//! Keeping pull secrets valid: a scheduler finds a registry's pull secrets whose credential
//! expires within the renewal window, or whose registry credential changed (UpdateRegistry
//! with another credential, CredentialService rotating it), and queues one durable
//! `RENEW_PULL_SECRET` operation for the registry. The operation worker runs it like any
//! other — leased, checkpointed, retried — so a renewal survives a restart and runs on one
//! replica: step `renew` issues a new credential and rewrites the Secrets that need it, step
//! `revoke` revokes the credentials no Secret holds any more.
//!
//! Every step can run again: `renew` rewrites only what still needs it; a crash between
//! issuing and recording leaves an unused credential that expires on its own.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::adapters::ErrorClass;
use crate::auth::Principal;
use crate::service::{
    Error, Result,
    access::ClusterAccessor,
    operations::{
        Operation, OperationDetail, OperationInput, OperationKind, OperationState, Step,
        StepFailure, decide::Outcome, steps_of, to_row,
    },
    registries::pull_secrets::{PullSecretSettings, PullSecrets, WriteFailure},
};
use crate::store::{ACTIVE_STATES, OperationQuery, PullSecretRow, RegistryRow, now_millis};

/// The operation's resource name for a registry's pull secrets.
pub fn resource_of(registry_id: &str) -> String {
    format!("registries/{registry_id}/pullSecrets")
}

/// Why a pull secret needs a new credential now, if it does.
pub fn renewal_due(
    row: &PullSecretRow,
    registry_credential: &(Option<String>, i64),
    settings: &PullSecretSettings,
    now: i64,
) -> Option<&'static str> {
    if row.registry_credential_id != registry_credential.0
        || row.registry_credential_version != registry_credential.1
    {
        return Some("the registry's credential changed");
    }
    let expires = row.expire_time?;
    let before = match settings.renew_before {
        Some(before) => before.as_millis() as i64,
        None => (expires - row.issue_time).max(0) / 3,
    };
    (now >= expires - before).then_some("the credential expires soon")
}

/// Runs the steps of `RENEW_PULL_SECRET` operations.
pub struct PullSecretRenewal {
    secrets: Arc<PullSecrets>,
    accessor: Arc<ClusterAccessor>,
}

impl PullSecretRenewal {
    pub fn new(secrets: Arc<PullSecrets>, accessor: Arc<ClusterAccessor>) -> Self {
        PullSecretRenewal { secrets, accessor }
    }

    /// One step of a renewal operation.
    pub async fn run_step(&self, op: &mut Operation, step: Step) -> Result<Outcome> {
        let OperationInput::RenewPullSecret { registry_id, .. } = &op.detail.input else {
            return Err(Error::Internal(format!(
                "operation {} is not a pull secret renewal",
                op.id
            )));
        };
        let registry_id = registry_id.clone();
        let store = self.secrets.store();
        let Some(registry) = store.get_registry(&registry_id).await? else {
            return Ok(Outcome::Done(format!(
                "registry {registry_id:?} was forgotten; nothing to renew"
            )));
        };
        match step {
            Step::Renew => self.renew(op, &registry).await,
            Step::Revoke => self.revoke(op, &registry).await,
            other => Err(Error::Internal(format!(
                "step {other} does not belong to a pull secret renewal"
            ))),
        }
    }

    async fn renew(&self, op: &mut Operation, registry: &RegistryRow) -> Result<Outcome> {
        let store = self.secrets.store();
        let current = self.secrets.registry_credential(registry).await?;
        let now = now_millis();
        let rows = store.pull_secrets_of_registry(&registry.id).await?;
        // One credential per (scope, Secret name): what one sync would have issued.
        let mut due: BTreeMap<(String, String), Vec<PullSecretRow>> = BTreeMap::new();
        let mut replaced: BTreeSet<String> = BTreeSet::new();
        for row in rows {
            if store.get_cluster(&row.cluster_id).await?.is_none() {
                // The cluster was forgotten: so is what Flotilla wrote there.
                store.delete_pull_secret(&row.id).await?;
                replaced.extend(row.vendor_credential_id);
                continue;
            }
            if renewal_due(&row, &current, self.secrets.settings(), now).is_some() {
                due.entry((row.registry_namespaces.clone(), row.secret_name.clone()))
                    .or_default()
                    .push(row);
            }
        }
        if due.is_empty() {
            remember_replaced(op, replaced);
            return Ok(Outcome::Next(Step::Revoke));
        }
        let (_, client) = self.secrets.connector().client(registry).await?;
        let mut failed: Vec<String> = Vec::new();
        let mut rewritten = 0usize;
        for ((scope_json, secret_name), rows) in due {
            let namespaces: Vec<String> = serde_json::from_str(&scope_json).unwrap_or_default();
            let issued = match self
                .secrets
                .issue(registry, client.as_ref(), &namespaces, &secret_name)
                .await
            {
                Ok(issued) => issued,
                Err(err) => {
                    remember_replaced(op, replaced);
                    return Err(err);
                }
            };
            let mut written_any = false;
            for row in rows {
                let old = row.vendor_credential_id.clone();
                let id = row.id.clone();
                let at = format!("{}/{}", row.cluster_id, row.namespace);
                let kube = match self
                    .accessor
                    .client(&Principal::server(), &row.cluster_id)
                    .await
                {
                    Ok(kube) => kube,
                    Err(err) => {
                        failed.push(format!("{at}: {err}"));
                        store
                            .mark_pull_secret(&id, "failed", &err.to_string(), now)
                            .await?;
                        continue;
                    }
                };
                match self
                    .secrets
                    .write(&kube.client, registry, &issued, row)
                    .await
                {
                    Ok(_) => {
                        written_any = true;
                        rewritten += 1;
                        if let Some(old) =
                            old.filter(|o| Some(o) != issued.credential.vendor_id.as_ref())
                        {
                            replaced.insert(old);
                        }
                    }
                    Err(WriteFailure::Unreachable(reason) | WriteFailure::Failed(reason)) => {
                        store.mark_pull_secret(&id, "failed", &reason, now).await?;
                        failed.push(format!("{at}: {reason}"));
                    }
                }
            }
            if !written_any && let Some(id) = &issued.credential.vendor_id {
                replaced.insert(id.clone());
            }
        }
        remember_replaced(op, replaced);
        tracing::info!(registry = %registry.id, rewritten, failed = failed.len(), "pull secrets renewed");
        if !failed.is_empty() {
            // The engine retries the step later; what was rewritten is not rewritten again.
            return Ok(Outcome::Fail(StepFailure {
                class: ErrorClass::DependencyPending,
                code: "PullSecretsNotWritten".into(),
                message: format!(
                    "{} pull secret(s) could not be rewritten: {}",
                    failed.len(),
                    failed.join("; ")
                ),
                call: None,
                retry_after: None,
                terminal: false,
            }));
        }
        Ok(Outcome::Next(Step::Revoke))
    }

    async fn revoke(&self, op: &mut Operation, registry: &RegistryRow) -> Result<Outcome> {
        let OperationInput::RenewPullSecret { replaced, .. } = &op.detail.input else {
            return Err(Error::Internal("not a pull secret renewal".into()));
        };
        let wanted: BTreeSet<String> = replaced.iter().cloned().collect();
        if wanted.is_empty() {
            return Ok(Outcome::Done("pull secrets renewed".into()));
        }
        let (_, client) = self.secrets.connector().client(registry).await?;
        let left = self
            .secrets
            .revoke_unheld(&registry.id, client.as_ref(), wanted)
            .await;
        let count = left.len();
        if let OperationInput::RenewPullSecret { replaced, .. } = &mut op.detail.input {
            *replaced = left;
        }
        if count > 0 {
            return Ok(Outcome::Fail(StepFailure {
                class: ErrorClass::DependencyPending,
                code: "RevokeFailed".into(),
                message: format!("{count} replaced pull credential(s) could not be revoked yet"),
                call: None,
                retry_after: None,
                terminal: false,
            }));
        }
        Ok(Outcome::Done("pull secrets renewed".into()))
    }
}

/// Adds `ids` to what the operation will revoke.
fn remember_replaced(op: &mut Operation, ids: BTreeSet<String>) {
    if let OperationInput::RenewPullSecret { replaced, .. } = &mut op.detail.input {
        for id in ids {
            if !replaced.contains(&id) {
                replaced.push(id);
            }
        }
    }
}

/// Finds registries with pull secrets to renew and queues one renewal operation each.
pub struct PullSecretScheduler {
    pub secrets: Arc<PullSecrets>,
    /// How long a renewal operation keeps retrying.
    pub retry_window: Duration,
}

impl PullSecretScheduler {
    pub async fn run(self, shutdown: CancellationToken) {
        let interval = self.secrets.settings().check_interval;
        loop {
            if let Err(err) = self.schedule().await {
                tracing::warn!(error = %err, "looking for pull secrets to renew failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Queues a renewal for every registry with a pull secret due and no renewal under way.
    /// Returns the registries queued.
    pub async fn schedule(&self) -> Result<Vec<String>> {
        let store = self.secrets.store();
        let now = now_millis();
        let mut by_registry: BTreeMap<String, Vec<PullSecretRow>> = BTreeMap::new();
        for row in store.all_pull_secrets().await? {
            by_registry
                .entry(row.registry_id.clone())
                .or_default()
                .push(row);
        }
        let mut queued = Vec::new();
        for (registry_id, rows) in by_registry {
            let Some(registry) = store.get_registry(&registry_id).await? else {
                continue;
            };
            let current = self.secrets.registry_credential(&registry).await?;
            let Some(reason) = rows
                .iter()
                .find_map(|row| renewal_due(row, &current, self.secrets.settings(), now))
            else {
                continue;
            };
            let resource = resource_of(&registry_id);
            let (_, active) = store
                .list_operations(
                    &OperationQuery {
                        resource: Some(resource.clone()),
                        states: ACTIVE_STATES.iter().map(|s| s.to_string()).collect(),
                        kinds: vec![OperationKind::RenewPullSecret.as_str().into()],
                        cluster_ids: None,
                    },
                    0,
                    1,
                )
                .await?;
            if active > 0 {
                continue;
            }
            let op = renewal_operation(&registry, resource, reason, now, self.retry_window);
            store.insert_operation(&to_row(&op, now)?).await?;
            tracing::info!(registry = %registry_id, operation = %op.id, %reason, "pull secret renewal queued");
            queued.push(registry_id);
        }
        Ok(queued)
    }
}

fn renewal_operation(
    registry: &RegistryRow,
    resource: String,
    reason: &str,
    now: i64,
    retry_window: Duration,
) -> Operation {
    let kind = OperationKind::RenewPullSecret;
    Operation {
        id: format!("op-{}", uuid::Uuid::new_v4().simple()),
        resource,
        // A registry's pull secrets span clusters: the operation belongs to none.
        cluster_id: String::new(),
        kind,
        state: OperationState::Pending,
        provider: registry.provider.clone(),
        request_id: String::new(),
        request_token: String::new(),
        request_hash: None,
        requested_by: Principal::server().name,
        detail: OperationDetail {
            input: OperationInput::RenewPullSecret {
                registry_id: registry.id.clone(),
                replaced: Vec::new(),
            },
            step: steps_of(kind)[0],
            vendor_object_id: String::new(),
            vendor_cluster_id: String::new(),
            vendor_task_id: String::new(),
            vendor_state: String::new(),
            vendor_request_ids: Vec::new(),
            credential_id: registry.credential_id.clone().unwrap_or_default(),
            region: registry.region.clone(),
            description: format!("queued: {reason}"),
            progress_percent: 0,
            steps: Vec::new(),
            error: None,
            errors: Vec::new(),
            attempt: 0,
            start_millis: None,
            end_millis: None,
            retry_deadline_millis: now + retry_window.as_millis() as i64,
        },
        next_run_millis: now,
        version: 1,
        create_millis: now,
        update_millis: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(issue: i64, expire: Option<i64>) -> PullSecretRow {
        PullSecretRow {
            id: "ps-1".into(),
            registry_id: "reg".into(),
            cluster_id: "c".into(),
            namespace: "ns".into(),
            secret_name: "s".into(),
            service_account: String::new(),
            registry_namespaces: "[]".into(),
            vendor_credential_id: Some("7".into()),
            username: "robot$x".into(),
            issue_time: issue,
            expire_time: expire,
            registry_credential_id: Some("cred".into()),
            registry_credential_version: 5,
            outcome: "created".into(),
            message: String::new(),
            create_time: issue,
            update_time: issue,
        }
    }

    #[test]
    fn due_when_a_third_of_the_lifetime_is_left_or_the_credential_changed() {
        let settings = PullSecretSettings::default();
        let current = (Some("cred".to_string()), 5);
        // Issued at 0, expires at 3000: due from 2000 on.
        let r = row(0, Some(3000));
        assert_eq!(renewal_due(&r, &current, &settings, 1999), None);
        assert!(renewal_due(&r, &current, &settings, 2000).is_some());
        // No expiry: only a changed registry credential makes it due.
        let forever = row(0, None);
        assert_eq!(renewal_due(&forever, &current, &settings, i64::MAX), None);
        assert!(renewal_due(&forever, &(Some("cred".into()), 6), &settings, 0).is_some());
        assert!(renewal_due(&forever, &(Some("other".into()), 5), &settings, 0).is_some());
        // A configured window wins over the third.
        let fixed = PullSecretSettings {
            renew_before: Some(Duration::from_millis(500)),
            ..settings
        };
        assert_eq!(renewal_due(&r, &current, &fixed, 2499), None);
        assert!(renewal_due(&r, &current, &fixed, 2500).is_some());
    }
}
