//! Image pull secrets for a registry, written into chosen clusters and namespaces
//! (`SyncPullSecret`). The credential written is the narrowest the registry's provider issues
//! (a pull-only robot account on the chosen projects, a temporary token), never the credential
//! the registry was connected with: a provider that cannot issue one is refused.
//!
//! Everything is checked before anything is issued or written. One credential is issued per
//! sync and written to every target; a cluster that cannot be reached is reported, not fatal.
//! What was written is remembered (`store::PullSecretRow`, no password), so renewal
//! ([`super::pull_secret_renewal`]) can rewrite it before it expires, and a credential the
//! Secrets no longer hold is revoked.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::adapters::registry::{PullCredential, PullScope, RegistryClient, RegistryProvider};
use crate::kube::{
    ClusterError,
    pull_secret::{self, PullSecret, Refused, Written},
};
use crate::service::{
    Error, Result,
    access::{ClusterAccessor, Scope},
    registries::{connect::RegistryConnector, deployments::UnsearchedCluster, vendor_error},
};
use crate::store::{PullSecretRow, RegistryRow, Store, now_millis};

/// How pull credentials are issued and renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSecretSettings {
    /// How long an issued credential should live (the vendor may give less: Harbor counts
    /// whole days).
    pub lifetime: Duration,
    /// Renew this long before the credential expires; `None`: when a third of its lifetime is
    /// left.
    pub renew_before: Option<Duration>,
    /// How often the renewal scheduler looks for pull secrets to renew.
    pub check_interval: Duration,
}

impl Default for PullSecretSettings {
    fn default() -> Self {
        PullSecretSettings {
            lifetime: Duration::from_secs(30 * 24 * 3600),
            renew_before: None,
            check_interval: Duration::from_secs(60),
        }
    }
}

/// Where to write: a cluster by id, or every cluster (the caller may see) whose labels match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullSecretTarget {
    pub cluster_id: String,
    pub namespaces: Vec<String>,
    pub cluster_label_selector: String,
}

/// A `SyncPullSecret` request, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPullSecret {
    pub registry_id: String,
    pub targets: Vec<PullSecretTarget>,
    /// Default "flotilla-<registry id>".
    pub secret_name: String,
    pub service_account: String,
    pub registry_namespaces: Vec<String>,
}

/// The outcome for one cluster and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSecretResult {
    pub cluster_id: String,
    pub namespace: String,
    /// "created", "updated", "unchanged" or "failed".
    pub outcome: String,
    pub message: String,
    pub expire_millis: Option<i64>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub results: Vec<PullSecretResult>,
    pub unreachable: Vec<UnsearchedCluster>,
}

/// A credential issued for pull secrets, and what it was issued under.
pub(crate) struct Issued {
    pub credential: PullCredential,
    pub issue_millis: i64,
    pub registry_credential: (Option<String>, i64),
    /// JSON array of the registry namespaces it may pull from.
    pub scope_json: String,
}

impl Issued {
    pub fn expire_millis(&self) -> Option<i64> {
        self.credential.expires.map(millis_of)
    }
}

/// Why one Secret was not written.
pub(crate) enum WriteFailure {
    /// The cluster did not answer: the rest of it is not tried.
    Unreachable(String),
    /// The cluster answered no (a Secret not ours, a missing namespace, …).
    Failed(String),
}

pub struct PullSecrets {
    store: Store,
    connector: Arc<RegistryConnector>,
    accessor: Arc<ClusterAccessor>,
    settings: PullSecretSettings,
}

impl PullSecrets {
    pub fn new(
        store: Store,
        connector: Arc<RegistryConnector>,
        accessor: Arc<ClusterAccessor>,
        settings: PullSecretSettings,
    ) -> Self {
        PullSecrets {
            store,
            connector,
            accessor,
            settings,
        }
    }

    pub fn settings(&self) -> &PullSecretSettings {
        &self.settings
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn connector(&self) -> &RegistryConnector {
        &self.connector
    }

    /// Writes a pull secret for the registry into every target the caller may reach. Bad
    /// input, a registry that cannot issue a narrow credential, or targets matching no cluster
    /// are refused before anything is issued or written.
    pub async fn sync(&self, scope: &Scope, request: SyncPullSecret) -> Result<SyncOutcome> {
        let registry = self.connector.row(&request.registry_id).await?;
        let secret_name = if request.secret_name.is_empty() {
            format!("flotilla-{}", registry.id)
        } else {
            request.secret_name.clone()
        };
        check_input(&request, &secret_name)?;
        let provider = self
            .connector
            .provider("registry.provider", &registry.provider)?;
        check_provider(provider.as_ref(), &registry, &request.registry_namespaces)?;
        let targets = self.resolve(scope, &request.targets).await?;

        let (_, client) = self.connector.client(&registry).await?;
        let issued = self
            .issue(
                &registry,
                client.as_ref(),
                &request.registry_namespaces,
                &secret_name,
            )
            .await?;
        let before: BTreeMap<(String, String), PullSecretRow> = self
            .store
            .pull_secrets_of_registry(&registry.id)
            .await?
            .into_iter()
            .filter(|row| row.secret_name == secret_name)
            .map(|row| ((row.cluster_id.clone(), row.namespace.clone()), row))
            .collect();
        let mut outcome = SyncOutcome::default();
        let mut replaced = BTreeSet::new();
        let mut written_any = false;
        for (cluster_id, namespaces) in targets {
            let kube = match self.accessor.client(scope, &cluster_id).await {
                Ok(kube) => kube,
                Err(err) => {
                    outcome.unreachable.push(UnsearchedCluster {
                        cluster_id,
                        reason: err.to_string(),
                    });
                    continue;
                }
            };
            for namespace in namespaces {
                let row = PullSecretRow {
                    id: format!("ps-{}", uuid::Uuid::new_v4().simple()),
                    registry_id: registry.id.clone(),
                    cluster_id: cluster_id.clone(),
                    namespace: namespace.clone(),
                    secret_name: secret_name.clone(),
                    service_account: request.service_account.clone(),
                    ..PullSecretRow::blank()
                };
                match self.write(&kube.client, &registry, &issued, row).await {
                    Ok((written, row)) => {
                        written_any = true;
                        if let Some(old) = before
                            .get(&(cluster_id.clone(), namespace.clone()))
                            .and_then(|r| r.vendor_credential_id.clone())
                            .filter(|old| Some(old) != row.vendor_credential_id.as_ref())
                        {
                            replaced.insert(old);
                        }
                        outcome.results.push(PullSecretResult {
                            cluster_id: cluster_id.clone(),
                            namespace,
                            outcome: written.as_str().into(),
                            message: row.message,
                            expire_millis: issued.expire_millis(),
                        });
                    }
                    Err(WriteFailure::Unreachable(reason)) => {
                        outcome.unreachable.push(UnsearchedCluster {
                            cluster_id: cluster_id.clone(),
                            reason,
                        });
                        break;
                    }
                    Err(WriteFailure::Failed(message)) => {
                        outcome.results.push(PullSecretResult {
                            cluster_id: cluster_id.clone(),
                            namespace,
                            outcome: "failed".into(),
                            message,
                            expire_millis: None,
                        });
                    }
                }
            }
        }
        if !written_any && let Some(id) = &issued.credential.vendor_id {
            // Nothing holds it: it would only wait for its expiry.
            replaced.insert(id.clone());
        }
        self.revoke_unheld(&registry.id, client.as_ref(), replaced)
            .await;
        tracing::info!(
            registry = %registry.id,
            secret = %secret_name,
            written = outcome.results.iter().filter(|r| r.outcome != "failed").count(),
            failed = outcome.results.iter().filter(|r| r.outcome == "failed").count(),
            unreachable = outcome.unreachable.len(),
            "pull secret synced"
        );
        Ok(outcome)
    }

    /// (cluster id, namespaces) to write to, each cluster once, in the order asked. A cluster
    /// id the caller may not see is NOT_FOUND; targets that match no cluster at all are
    /// INVALID_ARGUMENT.
    async fn resolve(
        &self,
        scope: &Scope,
        targets: &[PullSecretTarget],
    ) -> Result<Vec<(String, Vec<String>)>> {
        let mut resolved: Vec<(String, Vec<String>)> = Vec::new();
        let mut add = |cluster: String, namespaces: &[String]| {
            let index = match resolved.iter().position(|(c, _)| *c == cluster) {
                Some(i) => i,
                None => {
                    resolved.push((cluster, Vec::new()));
                    resolved.len() - 1
                }
            };
            for ns in namespaces {
                if !resolved[index].1.contains(ns) {
                    resolved[index].1.push(ns.clone());
                }
            }
        };
        for target in targets {
            if target.cluster_id.is_empty() {
                let ids = self
                    .accessor
                    .ids_by_labels(scope, &target.cluster_label_selector)
                    .await?;
                for id in ids {
                    add(id, &target.namespaces);
                }
            } else {
                if !scope.can_see(&target.cluster_id)
                    || self.store.get_cluster(&target.cluster_id).await?.is_none()
                {
                    return Err(Error::NotFound {
                        kind: "cluster",
                        id: target.cluster_id.clone(),
                    });
                }
                add(target.cluster_id.clone(), &target.namespaces);
            }
        }
        if resolved.is_empty() {
            return Err(Error::invalid(
                "targets",
                "match no cluster you may see: check the cluster label selectors",
            ));
        }
        Ok(resolved)
    }

    /// Issues one narrow credential for `namespaces`, named after the Secret and unique per
    /// issue (a vendor that replaces a credential of the same name must not revoke the one
    /// other Secrets still hold).
    pub(crate) async fn issue(
        &self,
        registry: &RegistryRow,
        client: &dyn RegistryClient,
        namespaces: &[String],
        secret_name: &str,
    ) -> Result<Issued> {
        let registry_credential = self.registry_credential(registry).await?;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let scope = PullScope {
            namespaces: namespaces.to_vec(),
            name: robot_name(secret_name, &unique[..10]),
            lifetime: self.settings.lifetime,
        };
        let credential = client
            .issue_pull_credential(&scope)
            .await
            .map_err(|err| vendor_error(err, "registry_namespaces"))?;
        Ok(Issued {
            credential,
            issue_millis: now_millis(),
            registry_credential,
            scope_json: serde_json::to_string(namespaces)
                .map_err(|e| Error::Internal(e.to_string()))?,
        })
    }

    /// The registry's credential and its rotation time: what a pull credential is issued
    /// under.
    pub(crate) async fn registry_credential(
        &self,
        registry: &RegistryRow,
    ) -> Result<(Option<String>, i64)> {
        let Some(id) = &registry.credential_id else {
            return Ok((None, 0));
        };
        let rotated = self
            .store
            .get_credential(id)
            .await?
            .map(|c| c.rotate_time)
            .unwrap_or_default();
        Ok((Some(id.clone()), rotated))
    }

    /// Writes `issued` as the Secret `row` names, attaches it to the row's ServiceAccount, and
    /// records the row. The row comes back as recorded.
    pub(crate) async fn write(
        &self,
        kube: &::kube::Client,
        registry: &RegistryRow,
        issued: &Issued,
        mut row: PullSecretRow,
    ) -> std::result::Result<(Written, PullSecretRow), WriteFailure> {
        let credential = &issued.credential;
        let secret = PullSecret {
            name: &row.secret_name,
            registry_id: &registry.id,
            server: &credential.server,
            username: &credential.username,
            password: credential.password.as_str(),
            expires: credential.expires.and_then(rfc3339),
        };
        let written = match pull_secret::write(kube, &row.namespace, &secret).await {
            Ok(Ok(written)) => written,
            Ok(Err(Refused::NotOurs)) => {
                return Err(WriteFailure::Failed(format!(
                    "a Secret named {:?} exists in namespace {:?} and Flotilla did not write \
                     it: left alone (choose another secret_name)",
                    row.secret_name, row.namespace
                )));
            }
            Ok(Err(Refused::OtherRegistry(other))) => {
                return Err(WriteFailure::Failed(format!(
                    "the Secret {:?} in namespace {:?} holds the pull secret of registry \
                     {other:?}: left alone (choose another secret_name)",
                    row.secret_name, row.namespace
                )));
            }
            Err(err) => return Err(failure(err)),
        };
        let mut message = String::new();
        if !row.service_account.is_empty()
            && let Err(err) =
                pull_secret::attach(kube, &row.namespace, &row.service_account, &row.secret_name)
                    .await
        {
            if matches!(err, ClusterError::Unreachable(_) | ClusterError::Timeout(_)) {
                return Err(WriteFailure::Unreachable(err.to_string()));
            }
            message = format!(
                "the Secret was written, but ServiceAccount {:?} could not reference it: {err}",
                row.service_account
            );
        }
        let now = now_millis();
        row.registry_namespaces = issued.scope_json.clone();
        row.vendor_credential_id = credential.vendor_id.clone();
        row.username = credential.username.clone();
        row.issue_time = issued.issue_millis;
        row.expire_time = issued.expire_millis();
        row.registry_credential_id = issued.registry_credential.0.clone();
        row.registry_credential_version = issued.registry_credential.1;
        row.outcome = written.as_str().into();
        row.message = message;
        row.update_time = now;
        if row.create_time == 0 {
            row.create_time = now;
        }
        if let Err(err) = self.store.upsert_pull_secret(&row).await {
            // The Secret is in the cluster; only our record of it is missing.
            tracing::error!(registry = %registry.id, cluster = %row.cluster_id, namespace = %row.namespace, error = %err, "recording a pull secret failed");
            return Err(WriteFailure::Failed(
                "the Secret was written but could not be recorded; sync again".into(),
            ));
        }
        Ok((written, row))
    }

    /// Revokes each of `vendor_ids` that no Secret of the registry holds any more. A failure
    /// is logged: the credential expires on its own.
    pub(crate) async fn revoke_unheld(
        &self,
        registry_id: &str,
        client: &dyn RegistryClient,
        vendor_ids: BTreeSet<String>,
    ) -> Vec<String> {
        let mut left = Vec::new();
        for id in vendor_ids {
            match self.store.pull_secrets_holding(registry_id, &id).await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(err) => {
                    tracing::warn!(registry = %registry_id, error = %err, "counting pull secrets failed");
                    left.push(id);
                    continue;
                }
            }
            if let Err(err) = client.revoke_pull_credential(&id).await {
                tracing::warn!(registry = %registry_id, credential = %id, error = %err, "revoking a pull credential failed");
                left.push(id);
            }
        }
        left
    }
}

impl PullSecretRow {
    fn blank() -> PullSecretRow {
        PullSecretRow {
            id: String::new(),
            registry_id: String::new(),
            cluster_id: String::new(),
            namespace: String::new(),
            secret_name: String::new(),
            service_account: String::new(),
            registry_namespaces: "[]".into(),
            vendor_credential_id: None,
            username: String::new(),
            issue_time: 0,
            expire_time: None,
            registry_credential_id: None,
            registry_credential_version: 0,
            outcome: String::new(),
            message: String::new(),
            create_time: 0,
            update_time: 0,
        }
    }
}

/// A cluster failure as the outcome of one target.
pub(crate) fn failure(err: ClusterError) -> WriteFailure {
    match err {
        ClusterError::Unreachable(_) | ClusterError::Timeout(_) => {
            WriteFailure::Unreachable(err.to_string())
        }
        other => WriteFailure::Failed(other.to_string()),
    }
}

/// The name of an issued credential: the Secret's, made unique.
fn robot_name(secret_name: &str, unique: &str) -> String {
    let base: String = secret_name
        .chars()
        .map(|c| if c == '.' { '-' } else { c })
        .take(40)
        .collect();
    format!("{}-{unique}", base.trim_end_matches('-'))
}

/// Every field of the request, before anything is issued or written.
fn check_input(request: &SyncPullSecret, secret_name: &str) -> Result<()> {
    if request.targets.is_empty() {
        return Err(Error::invalid(
            "targets",
            "is required: name at least one cluster (by id or cluster_label_selector) and its \
             namespaces",
        ));
    }
    for (i, target) in request.targets.iter().enumerate() {
        let field = |name: &str| format!("targets[{i}].{name}");
        match (
            target.cluster_id.is_empty(),
            target.cluster_label_selector.trim().is_empty(),
        ) {
            (true, true) => {
                return Err(Error::invalid(
                    field("cluster_id"),
                    "is required: a cluster id, or a cluster_label_selector instead",
                ));
            }
            (false, false) => {
                return Err(Error::invalid(
                    field("cluster_label_selector"),
                    "give either cluster_id or cluster_label_selector, not both",
                ));
            }
            (true, false) => check_selector(&field("cluster_label_selector"), target)?,
            (false, true) => {}
        }
        if target.namespaces.is_empty() {
            return Err(Error::invalid(
                field("namespaces"),
                "is required: the namespaces to write the Secret into",
            ));
        }
        for (j, namespace) in target.namespaces.iter().enumerate() {
            if !is_dns_label(namespace) {
                return Err(Error::invalid(
                    format!("targets[{i}].namespaces[{j}]"),
                    format!(
                        "{namespace:?} is not a namespace name: up to 63 lowercase letters, \
                         digits and '-', starting and ending with a letter or digit"
                    ),
                ));
            }
        }
    }
    if !is_dns_subdomain(secret_name) {
        return Err(Error::invalid(
            "secret_name",
            format!(
                "{secret_name:?} is not a Secret name: up to 253 lowercase letters, digits, '-' \
                 and '.', starting and ending with a letter or digit"
            ),
        ));
    }
    if !request.service_account.is_empty() && !is_dns_subdomain(&request.service_account) {
        return Err(Error::invalid(
            "service_account",
            format!(
                "{:?} is not a ServiceAccount name: lowercase letters, digits, '-' and '.'",
                request.service_account
            ),
        ));
    }
    Ok(())
}

fn check_selector(field: &str, target: &PullSecretTarget) -> Result<()> {
    for part in target
        .cluster_label_selector
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let key = part.split_once('=').map_or(part, |(k, _)| k).trim();
        if key.is_empty() || key.contains(['!', ' ', '(', ')']) {
            return Err(Error::invalid(
                field,
                format!(
                    "{part:?} is not a label condition: write key=value or key, comma-separated"
                ),
            ));
        }
    }
    Ok(())
}

/// The provider's rules: registry namespaces it accepts, and a narrow credential it can issue.
fn check_provider(
    provider: &dyn RegistryProvider,
    registry: &RegistryRow,
    registry_namespaces: &[String],
) -> Result<()> {
    for (i, name) in registry_namespaces.iter().enumerate() {
        if let Err(rule) = provider.check_namespace_name(name) {
            return Err(Error::invalid(format!("registry_namespaces[{i}]"), rule));
        }
    }
    if !provider.capability().issue_pull_credential {
        return Err(Error::FailedPrecondition {
            reason: "UNSUPPORTED_BY_PROVIDER",
            message: format!(
                "registry {:?} (provider {:?}) cannot issue a narrow pull credential, and \
                 Flotilla never writes the credential a registry is connected with into \
                 clusters; create the pull secret by hand with a read-only account",
                registry.id,
                provider.id()
            ),
        });
    }
    Ok(())
}

/// RFC 1123 label: what a namespace name must be.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// RFC 1123 subdomain: what a Secret or ServiceAccount name must be.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

pub(crate) fn millis_of(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn rfc3339(time: SystemTime) -> Option<String> {
    k8s_openapi::jiff::Timestamp::from_millisecond(millis_of(time))
        .ok()
        .map(|t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SyncPullSecret {
        SyncPullSecret {
            registry_id: "reg".into(),
            targets: vec![PullSecretTarget {
                cluster_id: "c1".into(),
                namespaces: vec!["team-a".into()],
                cluster_label_selector: String::new(),
            }],
            ..Default::default()
        }
    }

    fn field_of(result: Result<()>) -> String {
        match result {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        for good in ["a", "team-a", "a1", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "Team", "-a", "a-", "a.b", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
        assert!(is_dns_subdomain("flotilla-reg.pull"));
        for bad in ["", "a..b", ".a", "A", "a/b"] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn bad_input_names_its_field() {
        let mut r = request();
        r.targets.clear();
        assert_eq!(field_of(check_input(&r, "s")), "targets");
        let mut r = request();
        r.targets[0].cluster_id.clear();
        assert_eq!(field_of(check_input(&r, "s")), "targets[0].cluster_id");
        let mut r = request();
        r.targets[0].cluster_label_selector = "env=prod".into();
        assert_eq!(
            field_of(check_input(&r, "s")),
            "targets[0].cluster_label_selector"
        );
        let mut r = request();
        r.targets[0].namespaces.clear();
        assert_eq!(field_of(check_input(&r, "s")), "targets[0].namespaces");
        let mut r = request();
        r.targets[0].namespaces.push("Bad_NS".into());
        assert_eq!(field_of(check_input(&r, "s")), "targets[0].namespaces[1]");
        assert_eq!(field_of(check_input(&request(), "Bad")), "secret_name");
        let mut r = request();
        r.service_account = "a/b".into();
        assert_eq!(field_of(check_input(&r, "s")), "service_account");
        assert!(check_input(&request(), "flotilla-reg").is_ok());
    }

    #[test]
    fn issued_names_are_unique_and_follow_the_robot_rules() {
        assert_eq!(
            robot_name("flotilla-reg", "0123456789"),
            "flotilla-reg-0123456789"
        );
        assert_eq!(robot_name("pull.secret", "ab"), "pull-secret-ab");
        assert!(robot_name(&"x".repeat(200), "ab").len() <= 43);
    }
}
