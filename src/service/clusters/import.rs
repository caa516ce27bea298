//! Bringing existing clusters in: connect and check first, store only what works.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use zeroize::Zeroizing;

use crate::service::{
    Error, Result,
    access::kube::KubeAccess,
    clusters::connector::ClusterConnector,
    clusters::status::{ObservedStatus, StatusBoard, Warning},
    clusters::{Cluster, ClusterState},
    kube_errors::{Stage, from_cluster},
    validate,
};
use crate::{
    kube::{
        ClusterAccess, ClusterError, Credentials, FileReferences, KubeconfigError, Probe,
        kubeconfig,
    },
    store::{ClusterRow, Store, now_millis},
};

/// Largest kubeconfig or credential accepted.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;
/// Upper bound on connecting and probing during an import.
pub const IMPORT_PROBE_LIMIT: Duration = Duration::from_secs(10);

pub use crate::service::clusters::PROVIDER_IMPORTED;

/// How to reach a cluster, as the caller gave it.
pub enum AccessSource {
    Kubeconfig {
        kubeconfig: Zeroizing<Vec<u8>>,
        context: String,
    },
    Token {
        server: String,
        bearer_token: Zeroizing<String>,
        ca_pem: String,
    },
}

impl AccessSource {
    fn field(&self) -> &'static str {
        match self {
            AccessSource::Kubeconfig { .. } => "source.kubeconfig.kubeconfig",
            AccessSource::Token { .. } => "source.token",
        }
    }
}

/// Where UpdateClusterCredentials moves a cluster's access.
pub enum CredentialsSource {
    /// A kubeconfig or token Flotilla uses itself.
    Direct(AccessSource),
    /// The cluster's registered agent, through its tunnel.
    Agent,
}

/// An import request.
pub struct ImportCluster {
    pub cluster_id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub source: Option<AccessSource>,
    pub allow_insecure_tls: bool,
    pub validate_only: bool,
    /// How calls for callers reach the cluster.
    pub kube_access: KubeAccess,
    /// Before turning impersonation on, bind the flotilla groups to Kubernetes' built-in
    /// ClusterRoles (not done for `validate_only`).
    pub install_rbac: bool,
}

/// A credentials update request.
pub struct UpdateCredentials {
    pub cluster_id: String,
    pub source: Option<CredentialsSource>,
    pub allow_insecure_tls: bool,
    pub validate_only: bool,
}

pub struct ClusterImporter {
    store: Store,
    connector: Arc<ClusterConnector>,
    board: Arc<StatusBoard>,
    forget_hooks: Vec<crate::service::clusters::ForgetHook>,
}

impl ClusterImporter {
    pub fn new(store: Store, connector: Arc<ClusterConnector>, board: Arc<StatusBoard>) -> Self {
        ClusterImporter {
            store,
            connector,
            board,
            forget_hooks: Vec::new(),
        }
    }

    /// Caches elsewhere to clear when a cluster's credentials change.
    pub fn with_forget_hooks(mut self, hooks: Vec<crate::service::clusters::ForgetHook>) -> Self {
        self.forget_hooks = hooks;
        self
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn connector(&self) -> &ClusterConnector {
        &self.connector
    }

    pub(super) fn board(&self) -> &StatusBoard {
        &self.board
    }

    /// Clears what the forget hooks hold of a cluster (watch caches, kinds, metrics).
    pub(super) fn forget_caches(&self, cluster_id: &str) {
        for forget in &self.forget_hooks {
            forget(cluster_id);
        }
    }

    pub async fn import(&self, request: ImportCluster) -> Result<Cluster> {
        if !request.cluster_id.is_empty() {
            validate::id("cluster_id", &request.cluster_id)?;
        }
        validate::display_name("display_name", &request.display_name)?;
        validate::labels("labels", &request.labels)?;
        let source = request
            .source
            .ok_or_else(|| Error::invalid("source", "give a kubeconfig or a server and token"))?;
        let (access, suggested) = resolve(&source, request.allow_insecure_tls)?;
        let probe = self.connect(&access, source.field()).await?;
        self.refuse_duplicate(&probe).await?;

        let id = if request.cluster_id.is_empty() {
            self.free_id(&suggested).await?
        } else {
            if self.store.get_cluster(&request.cluster_id).await?.is_some() {
                return Err(Error::AlreadyExists {
                    reason: "CLUSTER_ID_TAKEN",
                    message: format!("a cluster with id {:?} already exists", request.cluster_id),
                });
            }
            request.cluster_id
        };
        if request.kube_access == KubeAccess::Impersonation {
            self.connector
                .prepare_impersonation(&access, request.install_rbac && !request.validate_only)
                .await?;
        }
        let now = now_millis();
        let secret_id = format!("sec-{}", uuid::Uuid::new_v4().simple());
        let row = ClusterRow {
            display_name: if request.display_name.is_empty() {
                id.clone()
            } else {
                request.display_name
            },
            id,
            labels: serde_json::to_string(&request.labels).unwrap_or_else(|_| "{}".into()),
            provider: PROVIDER_IMPORTED.into(),
            region: String::new(),
            vendor_cluster_id: String::new(),
            state: ClusterState::Running.as_str().into(),
            endpoint: access.server.clone(),
            kube_system_uid: Some(probe.kube_system_uid.clone()),
            credential_id: None,
            access_secret_id: Some(secret_id.clone()),
            spec: None,
            warnings: warnings_json(&access),
            last_operation_id: None,
            version: 1,
            create_time: now,
            update_time: now,
            kube_access: request.kube_access.as_str().into(),
        };
        let expiry = crate::kube::expiry::credential_expiry_millis(&access);
        if request.validate_only {
            let mut cluster = Cluster::try_from(row)?;
            cluster.status = preview_status(&probe, expiry);
            return Ok(cluster);
        }
        let secret = self.connector.seal(&row.id, &secret_id, &access)?;
        self.store
            .insert_cluster_with_secret(&secret, &row)
            .await
            .map_err(|err| match err {
                // Lost a race with a concurrent import of the same cluster or id.
                crate::store::Error::AlreadyExists(_) => Error::AlreadyExists {
                    reason: "CLUSTER_ALREADY_IMPORTED",
                    message: "this cluster (or this id) was imported concurrently".into(),
                },
                other => other.into(),
            })?;
        tracing::info!(cluster = %row.id, endpoint = %row.endpoint, "cluster imported");
        let status = self.board.record(&row.id, Ok(&probe), expiry);
        let mut cluster = Cluster::try_from(row)?;
        cluster.status = status;
        Ok(cluster)
    }

    /// Replaces a cluster's credentials with new ones that reach the same cluster.
    pub async fn update_credentials(&self, request: UpdateCredentials) -> Result<Cluster> {
        if request.cluster_id.is_empty() {
            return Err(Error::invalid("cluster_id", "is required"));
        }
        let row = self
            .store
            .get_cluster(&request.cluster_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "cluster",
                id: request.cluster_id.clone(),
            })?;
        let source = match request.source {
            None => {
                return Err(Error::invalid(
                    "source",
                    "give a kubeconfig, a server and token, or agent",
                ));
            }
            Some(CredentialsSource::Agent) => {
                return self.switch_to_agent(row, request.validate_only).await;
            }
            Some(CredentialsSource::Direct(source)) => source,
        };
        let (access, _) = resolve(&source, request.allow_insecure_tls)?;
        let probe = self.connect(&access, source.field()).await?;
        if row.kube_system_uid.as_deref() != Some(probe.kube_system_uid.as_str()) {
            return Err(Error::FailedPrecondition {
                reason: "DIFFERENT_CLUSTER",
                message: format!(
                    "the new credentials reach a different cluster (kube-system UID {}), not \
                     cluster {:?}; import it as a new cluster instead",
                    probe.kube_system_uid, row.id
                ),
            });
        }
        if KubeAccess::of(&row) == KubeAccess::Impersonation {
            // The new credential must be able to act as callers too.
            self.connector.prepare_impersonation(&access, false).await?;
        }
        let mut updated = row.clone();
        updated.endpoint = access.server.clone();
        updated.warnings = rewarn(&row.warnings, &access);
        updated.update_time = now_millis();
        let expiry = crate::kube::expiry::credential_expiry_millis(&access);
        if request.validate_only {
            let mut cluster = Cluster::try_from(updated)?;
            cluster.status = preview_status(&probe, expiry);
            return Ok(cluster);
        }
        let secret_id = format!("sec-{}", uuid::Uuid::new_v4().simple());
        let secret = self.connector.seal(&row.id, &secret_id, &access)?;
        self.store
            .replace_cluster_secret(&updated, row.version, &secret)
            .await?;
        self.connector.forget(&row.id);
        // An agent cluster now has direct access: the stored access wins, its tunnel closes.
        self.connector
            .close_tunnel(&row.id, "the cluster switched to direct access");
        self.forget_caches(&row.id);
        tracing::info!(cluster = %row.id, "cluster credentials rotated");
        let stored = self
            .store
            .get_cluster(&row.id)
            .await?
            .ok_or_else(|| Error::Aborted("the cluster was deleted meanwhile".into()))?;
        let status = self.board.record(&row.id, Ok(&probe), expiry);
        let mut cluster = Cluster::try_from(stored)?;
        cluster.status = status;
        Ok(cluster)
    }

    /// Gives a vendor-created cluster the kubeconfig its vendor handed out: connects and probes
    /// first, then stores it encrypted and marks the cluster RUNNING. Vendor kubeconfigs are held
    /// to the same rules as uploaded ones (no exec plugins, TLS verified).
    ///
    /// A vendor cluster's identity is the vendor's cluster id; its kube-system UID is recorded
    /// only when no other cluster here has it (the UID column is unique for imports).
    pub async fn attach_vendor_access(
        &self,
        cluster_id: &str,
        kubeconfig: Zeroizing<String>,
    ) -> Result<Cluster> {
        let row = self
            .store
            .get_cluster(cluster_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "cluster",
                id: cluster_id.to_string(),
            })?;
        let source = AccessSource::Kubeconfig {
            kubeconfig: Zeroizing::new(kubeconfig.as_bytes().to_vec()),
            context: String::new(),
        };
        let (access, _) = resolve(&source, false)?;
        let probe = self.connect(&access, "vendor kubeconfig").await?;
        let uid_taken = self
            .store
            .find_cluster_by_uid(&probe.kube_system_uid)
            .await?
            .is_some_and(|other| other.id != row.id);
        let mut updated = row.clone();
        updated.endpoint = access.server.clone();
        updated.warnings = rewarn(&row.warnings, &access);
        updated.state = ClusterState::Running.as_str().into();
        updated.kube_system_uid = (!uid_taken).then(|| probe.kube_system_uid.clone());
        updated.update_time = now_millis();
        let secret_id = format!("sec-{}", uuid::Uuid::new_v4().simple());
        let secret = self.connector.seal(&row.id, &secret_id, &access)?;
        self.store
            .replace_cluster_secret(&updated, row.version, &secret)
            .await?;
        self.connector.forget(&row.id);
        for forget in &self.forget_hooks {
            forget(&row.id);
        }
        let expiry = crate::kube::expiry::credential_expiry_millis(&access);
        let status = self.board.record(&row.id, Ok(&probe), expiry);
        let stored = self
            .store
            .get_cluster(&row.id)
            .await?
            .ok_or_else(|| Error::Aborted("the cluster was deleted meanwhile".into()))?;
        let mut cluster = Cluster::try_from(stored)?;
        cluster.status = status;
        tracing::info!(cluster = %row.id, endpoint = %cluster.endpoint, "vendor cluster connected");
        Ok(cluster)
    }

    /// Imports every context of a kubeconfig file given to the server at start-up, skipping
    /// clusters already present. Returns one line per context for the log.
    pub async fn import_file(&self, path: &Path) -> Vec<String> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(err) => return vec![format!("{}: cannot read: {err}", path.display())],
        };
        let config = match kubeconfig::parse(&bytes) {
            Ok(config) => config,
            Err(err) => return vec![format!("{}: {err}", path.display())],
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut report = Vec::new();
        for context in kubeconfig::context_names(&config) {
            let outcome = async {
                let access = kubeconfig::access_for_context(
                    &config,
                    Some(&context),
                    FileReferences::RelativeTo(base),
                )
                .map_err(|e| Error::invalid("kubeconfig", e.to_string()))?;
                if access.insecure_skip_tls_verify {
                    return Err(Error::invalid(
                        "kubeconfig",
                        "insecure-skip-tls-verify is set; import it through the API with \
                         allow_insecure_tls",
                    ));
                }
                let probe = self.connect(&access, "kubeconfig").await?;
                if let Some(existing) = self
                    .store
                    .find_cluster_by_uid(&probe.kube_system_uid)
                    .await?
                {
                    return Ok(format!("already present as {:?}", existing.id));
                }
                let id = self.free_id(&context).await?;
                self.store_access(&id, &context, access, &probe).await?;
                Ok(format!("imported as {id:?}"))
            }
            .await;
            report.push(match outcome {
                Ok(done) => format!("context {context:?}: {done}"),
                Err(err) => format!("context {context:?}: skipped: {err}"),
            });
        }
        report
    }

    async fn store_access(
        &self,
        id: &str,
        display_name: &str,
        access: ClusterAccess,
        probe: &Probe,
    ) -> Result<()> {
        let now = now_millis();
        let secret_id = format!("sec-{}", uuid::Uuid::new_v4().simple());
        let row = ClusterRow {
            id: id.to_string(),
            display_name: display_name.to_string(),
            labels: "{}".into(),
            provider: PROVIDER_IMPORTED.into(),
            region: String::new(),
            vendor_cluster_id: String::new(),
            state: ClusterState::Running.as_str().into(),
            endpoint: access.server.clone(),
            kube_system_uid: Some(probe.kube_system_uid.clone()),
            credential_id: None,
            access_secret_id: Some(secret_id.clone()),
            spec: None,
            warnings: warnings_json(&access),
            last_operation_id: None,
            version: 1,
            create_time: now,
            update_time: now,
            kube_access: "builtin".into(),
        };
        let secret = self.connector.seal(&row.id, &secret_id, &access)?;
        self.store.insert_cluster_with_secret(&secret, &row).await?;
        self.board.record(
            id,
            Ok(probe),
            crate::kube::expiry::credential_expiry_millis(&access),
        );
        Ok(())
    }

    async fn connect(&self, access: &ClusterAccess, field: &str) -> Result<Probe> {
        let client = self
            .connector
            .build_client(access)
            .map_err(|err| source_error(err, field))?;
        client
            .probe(IMPORT_PROBE_LIMIT)
            .await
            .map_err(|err| source_error(err, field))
    }

    async fn refuse_duplicate(&self, probe: &Probe) -> Result<()> {
        match self
            .store
            .find_cluster_by_uid(&probe.kube_system_uid)
            .await?
        {
            Some(existing) => Err(Error::AlreadyExists {
                reason: "CLUSTER_ALREADY_IMPORTED",
                message: format!(
                    "this cluster is already imported as {:?} (same kube-system namespace UID)",
                    existing.id
                ),
            }),
            None => Ok(()),
        }
    }

    /// `base` made into an id, with a numeric suffix if it is taken.
    async fn free_id(&self, base: &str) -> Result<String> {
        let base = validate::id_from(base).unwrap_or_else(|| "cluster".into());
        let taken = self.store.cluster_ids_with_prefix(&base).await?;
        if !taken.contains(&base) {
            return Ok(base);
        }
        (2..10_000)
            .map(|n| format!("{base}-{n}"))
            .find(|candidate| !taken.contains(candidate))
            .ok_or_else(|| Error::Internal(format!("no free id for {base}")))
    }
}

/// The access a source describes, and a name to derive an id from.
fn resolve(source: &AccessSource, allow_insecure_tls: bool) -> Result<(ClusterAccess, String)> {
    let (access, suggested) = match source {
        AccessSource::Kubeconfig {
            kubeconfig: bytes,
            context,
        } => {
            let field = "source.kubeconfig.kubeconfig";
            if bytes.is_empty() {
                return Err(Error::invalid(field, "is empty"));
            }
            if bytes.len() > MAX_SOURCE_BYTES {
                return Err(Error::invalid(
                    field,
                    format!(
                        "is {} bytes; at most {MAX_SOURCE_BYTES} are accepted",
                        bytes.len()
                    ),
                ));
            }
            let config =
                kubeconfig::parse(bytes).map_err(|e| Error::invalid(field, e.to_string()))?;
            let access = kubeconfig::access_for_context(
                &config,
                Some(context.as_str()),
                FileReferences::Forbidden,
            )
            .map_err(|e| match e {
                KubeconfigError::NoContext { .. } | KubeconfigError::NoCurrentContext => {
                    Error::invalid("source.kubeconfig.context", e.to_string())
                }
                other => Error::invalid(field, other.to_string()),
            })?;
            let name = if context.is_empty() {
                config.current_context.clone().unwrap_or_default()
            } else {
                context.clone()
            };
            (access, name)
        }
        AccessSource::Token {
            server,
            bearer_token,
            ca_pem,
        } => {
            if server.is_empty() {
                return Err(Error::invalid("source.token.server", "is required"));
            }
            if bearer_token.trim().is_empty() {
                return Err(Error::invalid("source.token.bearer_token", "is required"));
            }
            if server.len() + bearer_token.len() + ca_pem.len() > MAX_SOURCE_BYTES {
                return Err(Error::invalid(
                    "source.token",
                    format!("is larger than {MAX_SOURCE_BYTES} bytes"),
                ));
            }
            let access = ClusterAccess {
                server: server.clone(),
                ca_pem: (!ca_pem.is_empty()).then(|| ca_pem.clone()),
                tls_server_name: None,
                insecure_skip_tls_verify: false,
                credentials: Credentials::Token {
                    token: Zeroizing::new(bearer_token.trim().to_string()),
                },
            };
            let host = server
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_string))
                .unwrap_or_default();
            (access, host)
        }
    };
    let plain_http = access.server.starts_with("http://");
    if (access.insecure_skip_tls_verify || plain_http) && !allow_insecure_tls {
        return Err(Error::invalid(
            "allow_insecure_tls",
            if plain_http {
                "the server URL is plain http, so nothing is verified or encrypted; set \
                 allow_insecure_tls to accept that"
            } else {
                "the kubeconfig sets insecure-skip-tls-verify, so the server's identity is not \
                 checked; set allow_insecure_tls to accept that (the cluster will carry a \
                 permanent warning)"
            },
        ));
    }
    let mut access = access;
    access.insecure_skip_tls_verify |= plain_http;
    Ok((access, suggested))
}

/// Errors from building or probing a client for a source: bad input names its field.
fn source_error(err: ClusterError, field: &str) -> Error {
    from_cluster(Stage::Source { field }, err)
}

/// The access warnings of a new credential, after the warnings that are not about access (such
/// as a public endpoint the spec asked for), which a new credential does not change.
fn rewarn(previous: &str, access: &ClusterAccess) -> String {
    let mut kept: Vec<Warning> = serde_json::from_str(previous).unwrap_or_default();
    kept.retain(|w| w.code != "INSECURE_TLS");
    kept.extend(serde_json::from_str::<Vec<Warning>>(&warnings_json(access)).unwrap_or_default());
    serde_json::to_string(&kept).unwrap_or_else(|_| "[]".into())
}

fn warnings_json(access: &ClusterAccess) -> String {
    let mut warnings = Vec::new();
    if access.insecure_skip_tls_verify {
        warnings.push(Warning {
            code: "INSECURE_TLS".into(),
            message: "the API server's identity is not verified (insecure-skip-tls-verify); \
                      rotate to credentials with a CA"
                .into(),
        });
    }
    serde_json::to_string(&warnings).unwrap_or_else(|_| "[]".into())
}

pub(super) fn preview_status(probe: &Probe, expiry: Option<i64>) -> ObservedStatus {
    let board = StatusBoard::default();
    board.record("preview", Ok(probe), expiry)
}
