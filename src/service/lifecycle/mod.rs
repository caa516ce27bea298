//! Cluster lifecycle at the vendors: validate a request, check the provider can do it, and
//! record a durable operation (the worker does the vendor calls). Node pools are read straight
//! from the vendor.

mod checks;

use std::{sync::Arc, time::Duration};

use prost::Message;

mod node_pools;
mod request_key;

pub use node_pools::PoolStatus;

use crate::service::{
    Error, Result,
    access::Scope,
    clusters::{Cluster, ClusterState, Warning},
    lifecycle::checks::{check_spec, require},
    operations::steps_of,
    operations::{Operation, OperationDetail, OperationInput, OperationState, to_row},
    secrets::credentials::CredentialVault,
    validate,
};
use crate::{
    adapters::{
        CallContext, VendorError,
        cluster::{
            Capability, ClusterProvider, ClusterSpec, NodePoolSpec, ProviderRegistry, Registration,
            VendorCluster,
        },
    },
    auth::Role,
    store::{ClusterRow, Store, now_millis},
};

/// Who asked, for the operation's record.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub principal: String,
    /// The caller's API token id ('' for Flotilla's own work). Request ids are per token: the
    /// same id from another token is another key and never finds this caller's operation.
    pub token_id: String,
    pub request_id: String,
}

pub struct CreateCluster {
    pub cluster_id: String,
    pub provider: String,
    pub spec: Option<ClusterSpec>,
    pub validate_only: bool,
}

/// A node pool change, as received.
pub enum NodePoolChange {
    Create {
        spec: Option<Box<NodePoolSpec>>,
        validate_only: bool,
    },
    Update {
        pool_id: String,
        desired_size: Option<i32>,
        min_size: Option<i32>,
        max_size: Option<i32>,
        autoscaling: Option<bool>,
    },
    Delete {
        pool_id: String,
    },
    AddNodes {
        pool_id: String,
        instance_ids: Vec<String>,
    },
    RemoveNodes {
        pool_id: String,
        node_names: Vec<String>,
        skip_drain: bool,
        release_instances: bool,
    },
}

pub struct Lifecycle {
    store: Store,
    providers: ProviderRegistry,
    vault: Arc<CredentialVault>,
    /// Reads node readiness from Kubernetes for node pools.
    workloads: Arc<crate::service::workloads::WorkloadQueries>,
    retry_window: Duration,
}

impl Lifecycle {
    pub fn new(
        store: Store,
        providers: ProviderRegistry,
        vault: Arc<CredentialVault>,
        workloads: Arc<crate::service::workloads::WorkloadQueries>,
        retry_window: Duration,
    ) -> Self {
        Lifecycle {
            store,
            providers,
            vault,
            workloads,
            retry_window,
        }
    }

    pub fn providers(&self) -> Vec<(&'static str, &'static str, Capability)> {
        self.providers
            .all()
            .map(|p| (p.id(), p.display_name(), p.capability()))
            .collect()
    }

    /// The clusters a vendor account has, each with the Flotilla cluster that tracks it.
    pub async fn vendor_clusters(
        &self,
        provider_id: &str,
        credential_id: &str,
        region: &str,
    ) -> Result<Vec<(VendorCluster, String)>> {
        let provider = self.provider("provider", provider_id)?;
        require(
            &provider,
            provider.capability().list_vendor_clusters,
            "list its clusters",
        )?;
        self.check_credential("credential_id", credential_id, provider_id)
            .await?;
        let ctx = self.context_for(credential_id, region).await?;
        let clusters = provider.list_clusters(&ctx).await.map_err(vendor_error)?;
        let tracked = self
            .store
            .list_clusters(
                &crate::store::ClusterQuery {
                    provider: Some(provider_id.to_string()),
                    ..Default::default()
                },
                0,
                10_000,
            )
            .await?
            .rows;
        Ok(clusters
            .into_iter()
            .map(|c| {
                let ours = tracked
                    .iter()
                    .find(|row| row.vendor_cluster_id == c.id)
                    .map(|row| row.id.clone())
                    .unwrap_or_default();
                (c, ours)
            })
            .collect())
    }

    /// Registers a Flotilla cluster into a vendor that manages existing clusters.
    ///
    /// Only a global admin (an admin token with no cluster restriction) may: the call acts with
    /// a vendor account credential that is not tied to this cluster (it makes a cluster in that
    /// account and answers with the account's registration token), so a token limited to some
    /// clusters must not reach it through one of them. Using the cluster's own credential
    /// instead is no option: an imported cluster's credential is a kubeconfig, not a vendor
    /// account.
    pub async fn register_cluster(
        &self,
        scope: &Scope,
        cluster_id: &str,
        provider_id: &str,
        credential_id: &str,
        name: &str,
    ) -> Result<Registration> {
        if scope.role != Role::Admin || scope.clusters.is_some() {
            return Err(Error::PermissionDenied(
                "registering a cluster at a vendor uses a vendor account credential, so it \
                 needs an admin token with no cluster restriction"
                    .into(),
            ));
        }
        self.cluster(cluster_id).await?;
        let provider = self.provider("provider", provider_id)?;
        require(
            &provider,
            provider.capability().register_cluster,
            "register existing clusters",
        )?;
        self.check_credential("credential_id", credential_id, provider_id)
            .await?;
        let name = if name.is_empty() { cluster_id } else { name };
        validate::id("name", name)?;
        let ctx = self.context_for(credential_id, "").await?;
        let registration = provider
            .register_cluster(&ctx, name)
            .await
            .map_err(vendor_error)?;
        tracing::info!(cluster = %cluster_id, provider = %provider_id, vendor_cluster = %registration.vendor_cluster_id, "cluster registered at the vendor");
        Ok(registration)
    }

    pub fn retry_window(&self) -> Duration {
        self.retry_window
    }

    pub async fn create_cluster(
        &self,
        request: CreateCluster,
        by: Requester,
    ) -> Result<(Operation, Cluster)> {
        let key = request_key::create_cluster(
            &request.cluster_id,
            &request.provider,
            request.spec.as_ref(),
        );
        // validate_only records nothing, so there is nothing to replay.
        if !request.validate_only
            && let Some(existing) = self.replay(&by, &key).await?
        {
            let cluster = self.cluster(&existing.cluster_id).await?;
            return Ok((existing, cluster));
        }
        let provider = self.provider("provider", &request.provider)?;
        require(
            &provider,
            provider.capability().create_cluster,
            "create clusters",
        )?;
        let spec = request
            .spec
            .ok_or_else(|| Error::invalid("spec", "is required"))?;
        let warnings: Vec<Warning> = check_spec(&provider, &spec)?
            .into_iter()
            .map(|w| Warning {
                code: w.code.to_string(),
                message: w.message,
            })
            .collect();
        self.check_credential("spec.credential_id", &spec.credential_id, &request.provider)
            .await?;
        let cluster_id = if request.cluster_id.is_empty() {
            let base =
                validate::id_from(&spec.display_name).unwrap_or_else(|| request.provider.clone());
            format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6])
        } else {
            validate::id("cluster_id", &request.cluster_id)?;
            request.cluster_id.clone()
        };
        if self.store.get_cluster(&cluster_id).await?.is_some() {
            return Err(Error::AlreadyExists {
                reason: "CLUSTER_ID_TAKEN",
                message: format!("a cluster with id {cluster_id:?} already exists"),
            });
        }
        let now = now_millis();
        let op = self.new_operation(
            &key,
            &cluster_id,
            format!("clusters/{cluster_id}"),
            &request.provider,
            &spec.credential_id,
            &spec.region,
            OperationInput::CreateCluster,
            "",
            &by,
            now,
        );
        let row = ClusterRow {
            id: cluster_id.clone(),
            display_name: if spec.display_name.is_empty() {
                cluster_id.clone()
            } else {
                spec.display_name.clone()
            },
            labels: serde_json::to_string(
                &spec
                    .labels
                    .iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .unwrap_or_else(|_| "{}".into()),
            provider: request.provider.clone(),
            region: spec.region.clone(),
            vendor_cluster_id: String::new(),
            state: ClusterState::Provisioning.as_str().into(),
            endpoint: String::new(),
            kube_system_uid: None,
            credential_id: Some(spec.credential_id.clone()),
            access_secret_id: None,
            spec: Some(spec.encode_to_vec()),
            warnings: serde_json::to_string(&warnings).unwrap_or_else(|_| "[]".into()),
            last_operation_id: Some(op.id.clone()),
            version: 1,
            create_time: now,
            update_time: now,
            kube_access: "builtin".into(),
        };
        if request.validate_only {
            return Ok((op, Cluster::try_from(row)?));
        }
        match self
            .store
            .insert_cluster_with_operation(&row, &to_row(&op, now)?)
            .await
        {
            Ok(()) => {}
            Err(crate::store::Error::AlreadyExists(_)) => {
                // A concurrent call with the same request_id (or cluster id) won.
                if let Some(existing) = self.replay(&by, &key).await? {
                    let cluster = self.cluster(&existing.cluster_id).await?;
                    return Ok((existing, cluster));
                }
                return Err(Error::AlreadyExists {
                    reason: "CLUSTER_ID_TAKEN",
                    message: format!("a cluster with id {cluster_id:?} already exists"),
                });
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(cluster = %cluster_id, provider = %request.provider, operation = %op.id, "cluster creation queued");
        Ok((op, Cluster::try_from(row)?))
    }

    pub async fn upgrade_cluster(
        &self,
        cluster_id: &str,
        version: &str,
        by: Requester,
    ) -> Result<Operation> {
        let key = request_key::upgrade_cluster(cluster_id, version);
        if let Some(existing) = self.replay(&by, &key).await? {
            return Ok(existing);
        }
        if version.trim().is_empty() {
            return Err(Error::invalid(
                "kubernetes_version",
                "is required, such as \"1.34.1\"",
            ));
        }
        let (row, provider) = self.vendor_cluster(cluster_id).await?;
        require(
            &provider,
            provider.capability().upgrade_cluster,
            "upgrade clusters",
        )?;
        self.start(
            &row,
            &key,
            format!("clusters/{cluster_id}"),
            OperationInput::UpgradeCluster {
                version: version.trim().to_string(),
            },
            Some("UPDATING"),
            &by,
        )
        .await
    }

    /// Deletes a cluster at its vendor, then forgets it.
    pub async fn destroy_cluster(
        &self,
        cluster_id: &str,
        etag: &str,
        by: Requester,
    ) -> Result<Operation> {
        let key = request_key::destroy_cluster(cluster_id, etag);
        if let Some(existing) = self.replay(&by, &key).await? {
            return Ok(existing);
        }
        let (row, provider) = self.vendor_cluster(cluster_id).await?;
        require(
            &provider,
            provider.capability().delete_cluster,
            "delete clusters",
        )?;
        let cluster = Cluster::try_from(row.clone())?;
        if !etag.is_empty() && etag != cluster.etag() {
            return Err(Error::Aborted(format!(
                "cluster {cluster_id:?} changed since it was read; read it again"
            )));
        }
        self.start(
            &row,
            &key,
            format!("clusters/{cluster_id}"),
            OperationInput::DeleteCluster,
            Some("DELETING"),
            &by,
        )
        .await
    }

    async fn start(
        &self,
        row: &ClusterRow,
        key: &request_key::RequestKey,
        resource: String,
        input: OperationInput,
        cluster_state: Option<&str>,
        by: &Requester,
    ) -> Result<Operation> {
        if let Some(active) = self.store.active_operations_on(&row.id).await?.first() {
            return Err(Error::FailedPrecondition {
                reason: "OPERATION_IN_PROGRESS",
                message: format!(
                    "operation {} ({}) is still running on cluster {:?}; wait for it to end",
                    active.id, active.kind, row.id
                ),
            });
        }
        let now = now_millis();
        let op = self.new_operation(
            key,
            &row.id,
            resource,
            &row.provider,
            row.credential_id.as_deref().unwrap_or_default(),
            &row.region,
            input,
            &row.vendor_cluster_id,
            by,
            now,
        );
        match self
            .store
            .insert_operation_for_cluster(&to_row(&op, now)?, cluster_state)
            .await
        {
            Ok(()) => Ok(op),
            Err(crate::store::Error::AlreadyExists(_)) => {
                self.replay(by, key).await?.ok_or_else(|| {
                    Error::Aborted(
                        "a concurrent request made the same operation; read it again".into(),
                    )
                })
            }
            Err(other) => Err(other.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_operation(
        &self,
        key: &request_key::RequestKey,
        cluster_id: &str,
        resource: String,
        provider: &str,
        credential_id: &str,
        region: &str,
        input: OperationInput,
        vendor_cluster_id: &str,
        by: &Requester,
        now: i64,
    ) -> Operation {
        let keyed = !by.request_id.is_empty();
        Operation {
            id: format!("op-{}", uuid::Uuid::new_v4().simple()),
            resource,
            cluster_id: cluster_id.to_string(),
            kind: key.kind,
            state: OperationState::Pending,
            provider: provider.to_string(),
            request_id: by.request_id.clone(),
            request_token: by.token_id.clone(),
            request_hash: keyed.then(|| key.hash.clone()),
            requested_by: by.principal.clone(),
            detail: OperationDetail {
                input,
                step: steps_of(key.kind)[0],
                vendor_object_id: String::new(),
                vendor_cluster_id: vendor_cluster_id.to_string(),
                vendor_task_id: String::new(),
                vendor_state: String::new(),
                vendor_request_ids: Vec::new(),
                credential_id: credential_id.to_string(),
                region: region.to_string(),
                description: "queued".into(),
                progress_percent: 0,
                steps: Vec::new(),
                error: None,
                errors: Vec::new(),
                attempt: 0,
                start_millis: None,
                end_millis: None,
                retry_deadline_millis: now + self.retry_window.as_millis() as i64,
            },
            next_run_millis: now,
            version: 1,
            create_millis: now,
            update_millis: now,
        }
    }

    /// The operation an earlier call of this caller with the same request_id made, if any. The
    /// id must name the same request: another kind, target or body is refused, and the answer
    /// says nothing of the earlier operation.
    async fn replay(
        &self,
        by: &Requester,
        key: &request_key::RequestKey,
    ) -> Result<Option<Operation>> {
        if by.request_id.is_empty() {
            return Ok(None);
        }
        if by.request_id.len() > 128 {
            return Err(Error::invalid(
                "request_id",
                "must be at most 128 characters",
            ));
        }
        let Some(row) = self
            .store
            .operation_by_request_id(&by.token_id, &by.request_id)
            .await?
        else {
            return Ok(None);
        };
        let op = Operation::try_from(row)?;
        let same = match &op.request_hash {
            Some(hash) => *hash == key.hash,
            // Recorded before request hashes were kept: the kind and target are all there is.
            None => op.kind == key.kind && (key.target.is_empty() || op.cluster_id == key.target),
        };
        if !same {
            return Err(Error::invalid(
                "request_id",
                "was already used for a different request; a retry must repeat the request \
                 exactly, and a new request needs a new request_id",
            ));
        }
        Ok(Some(op))
    }

    async fn cluster(&self, id: &str) -> Result<Cluster> {
        Cluster::try_from(
            self.store
                .get_cluster(id)
                .await?
                .ok_or_else(|| Error::NotFound {
                    kind: "cluster",
                    id: id.to_string(),
                })?,
        )
    }

    /// A stored cluster that a vendor made (or manages), with its provider.
    async fn vendor_cluster(
        &self,
        cluster_id: &str,
    ) -> Result<(ClusterRow, Arc<dyn ClusterProvider>)> {
        if cluster_id.is_empty() {
            return Err(Error::invalid("cluster_id", "is required"));
        }
        let row = self
            .store
            .get_cluster(cluster_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "cluster",
                id: cluster_id.to_string(),
            })?;
        let Some(provider) = self.providers.get(&row.provider) else {
            return Err(Error::FailedPrecondition {
                reason: "UNSUPPORTED_BY_PROVIDER",
                message: format!(
                    "cluster {cluster_id:?} is {:?}: Flotilla does not manage its lifecycle at a vendor",
                    row.provider
                ),
            });
        };
        if row.vendor_cluster_id.is_empty() {
            return Err(Error::FailedPrecondition {
                reason: "CLUSTER_NOT_PROVISIONED",
                message: format!(
                    "cluster {cluster_id:?} does not exist at {} yet; wait for its create operation",
                    row.provider
                ),
            });
        }
        Ok((row, provider))
    }

    async fn context(&self, row: &ClusterRow) -> Result<CallContext> {
        self.context_for(
            row.credential_id.as_deref().unwrap_or_default(),
            &row.region,
        )
        .await
    }

    async fn context_for(&self, credential_id: &str, region: &str) -> Result<CallContext> {
        Ok(CallContext {
            credentials: self.vault.vendor_credentials(credential_id).await?,
            region: region.to_string(),
        })
    }

    async fn check_credential(&self, field: &str, id: &str, provider: &str) -> Result<()> {
        if id.is_empty() {
            return Err(Error::invalid(
                field,
                "is required: create a credential with CredentialService and name it here",
            ));
        }
        let credential = match self.vault.get(id).await {
            Ok(c) => c,
            Err(Error::NotFound { .. }) => {
                return Err(Error::invalid(
                    field,
                    format!("credential {id:?} does not exist"),
                ));
            }
            Err(other) => return Err(other),
        };
        if credential.provider != provider {
            return Err(Error::invalid(
                field,
                format!(
                    "credential {id:?} is for {:?}, not {provider:?}",
                    credential.provider
                ),
            ));
        }
        Ok(())
    }

    fn provider(&self, field: &str, id: &str) -> Result<Arc<dyn ClusterProvider>> {
        self.providers.get(id).ok_or_else(|| {
            let known: Vec<_> = self.providers.all().map(|p| p.id()).collect();
            Error::invalid(
                field,
                format!(
                    "unknown provider {id:?}; this server supports {}",
                    known.join(", ")
                ),
            )
        })
    }
}

/// A vendor error from a synchronous call (node pool reads, listing, registration).
fn vendor_error(err: VendorError) -> Error {
    crate::service::vendor_errors::to_service(err)
}
