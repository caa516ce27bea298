//! Cluster lifecycle at the vendors: validate a request, check the provider can do it, and
//! record a durable operation (the worker does the vendor calls). Node pools are read straight
//! from the vendor.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use prost::Message;

use super::{
    Error, Result,
    clusters::{Cluster, ClusterState},
    credentials::CredentialVault,
    operation_worker::steps_of,
    operations::{
        Operation, OperationDetail, OperationInput, OperationKind, OperationState, to_row,
    },
    paging::Page,
    validate,
};
use crate::{
    api::pb::cluster_spec::ProviderConfig,
    store::{ClusterRow, Store, now_millis},
    vendor::{
        CallContext, Capability, ClusterProvider, ClusterSpec, Credentials, NodePoolSpec,
        ProviderRegistry, VendorError, VendorNodePool,
    },
};

/// Who asked, for the operation's record.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub principal: String,
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
        spec: Option<NodePoolSpec>,
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
    retry_window: Duration,
}

impl Lifecycle {
    pub fn new(
        store: Store,
        providers: ProviderRegistry,
        vault: Arc<CredentialVault>,
        retry_window: Duration,
    ) -> Self {
        Lifecycle {
            store,
            providers,
            vault,
            retry_window,
        }
    }

    pub fn providers(&self) -> Vec<(&'static str, &'static str, Capability)> {
        self.providers
            .all()
            .map(|p| (p.id(), p.display_name(), p.capability()))
            .collect()
    }

    pub fn retry_window(&self) -> Duration {
        self.retry_window
    }

    pub async fn create_cluster(
        &self,
        request: CreateCluster,
        by: Requester,
    ) -> Result<(Operation, Cluster)> {
        if let Some(existing) = self.replay(&by, OperationKind::CreateCluster).await? {
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
        check_spec(&request.provider, &spec)?;
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
            OperationKind::CreateCluster,
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
            warnings: "[]".into(),
            last_operation_id: Some(op.id.clone()),
            version: 1,
            create_time: now,
            update_time: now,
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
                if let Some(existing) = self.replay(&by, OperationKind::CreateCluster).await? {
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
        if let Some(existing) = self.replay(&by, OperationKind::UpgradeCluster).await? {
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
            OperationKind::UpgradeCluster,
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
        if let Some(existing) = self.replay(&by, OperationKind::DeleteCluster).await? {
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
            OperationKind::DeleteCluster,
            format!("clusters/{cluster_id}"),
            OperationInput::DeleteCluster,
            Some("DELETING"),
            &by,
        )
        .await
    }

    pub async fn node_pools(
        &self,
        cluster_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<VendorNodePool>, String, i32)> {
        let (row, provider) = self.vendor_cluster(cluster_id).await?;
        require(
            &provider,
            provider.capability().list_node_pools,
            "list node pools",
        )?;
        let page = Page::parse(page_size, page_token, &format!("pools/{cluster_id}"))?;
        let ctx = self.context(&row).await?;
        let mut pools = provider
            .list_node_pools(&ctx, &row.vendor_cluster_id)
            .await
            .map_err(vendor_error)?;
        pools.sort_by(|a, b| a.id.cmp(&b.id));
        let total = pools.len() as i64;
        let chunk: Vec<_> = pools
            .into_iter()
            .skip(page.offset as usize)
            .take(page.size as usize)
            .collect();
        let next = page.next_token(chunk.len(), total);
        Ok((chunk, next, total as i32))
    }

    pub async fn node_pool(&self, cluster_id: &str, pool_id: &str) -> Result<VendorNodePool> {
        if pool_id.is_empty() {
            return Err(Error::invalid("node_pool_id", "is required"));
        }
        let (row, provider) = self.vendor_cluster(cluster_id).await?;
        require(
            &provider,
            provider.capability().list_node_pools,
            "list node pools",
        )?;
        let ctx = self.context(&row).await?;
        provider
            .list_node_pools(&ctx, &row.vendor_cluster_id)
            .await
            .map_err(vendor_error)?
            .into_iter()
            .find(|p| p.id == pool_id)
            .ok_or_else(|| Error::NotFound {
                kind: "node pool",
                id: pool_id.to_string(),
            })
    }

    pub async fn change_node_pool(
        &self,
        cluster_id: &str,
        change: NodePoolChange,
        by: Requester,
    ) -> Result<Operation> {
        let kind = match &change {
            NodePoolChange::Create { .. } => OperationKind::CreateNodePool,
            NodePoolChange::Update { .. } => OperationKind::UpdateNodePool,
            NodePoolChange::Delete { .. } => OperationKind::DeleteNodePool,
            NodePoolChange::AddNodes { .. } => OperationKind::AddNodes,
            NodePoolChange::RemoveNodes { .. } => OperationKind::RemoveNodes,
        };
        if let Some(existing) = self.replay(&by, kind).await? {
            return Ok(existing);
        }
        let (row, provider) = self.vendor_cluster(cluster_id).await?;
        let cap = provider.capability();
        let pool_field = |id: &str| -> Result<()> {
            if id.is_empty() {
                Err(Error::invalid("node_pool_id", "is required"))
            } else {
                Ok(())
            }
        };
        let (input, pool, validate_only) = match change {
            NodePoolChange::Create {
                spec,
                validate_only,
            } => {
                require(&provider, cap.create_node_pool, "create node pools")?;
                let spec = spec.ok_or_else(|| Error::invalid("node_pool", "is required"))?;
                check_pool("node_pool", &spec, &cap)?;
                let name = spec.name.clone();
                (
                    OperationInput::CreateNodePool {
                        spec: STANDARD.encode(spec.encode_to_vec()),
                        name: name.clone(),
                    },
                    name,
                    validate_only,
                )
            }
            NodePoolChange::Update {
                pool_id,
                desired_size,
                min_size,
                max_size,
                autoscaling,
            } => {
                pool_field(&pool_id)?;
                require(&provider, cap.resize_node_pool, "resize node pools")?;
                if (min_size.is_some() || max_size.is_some() || autoscaling.is_some())
                    && !cap.node_pool_autoscaling
                {
                    return Err(unsupported(&provider, "node pool autoscaling"));
                }
                for (field, value) in [
                    ("node_pool.desired_size", desired_size),
                    ("node_pool.min_size", min_size),
                    ("node_pool.max_size", max_size),
                ] {
                    if value.is_some_and(|v| !(0..=1000).contains(&v)) {
                        return Err(Error::invalid(field, "must be between 0 and 1000"));
                    }
                }
                if let (Some(min), Some(max)) = (min_size, max_size)
                    && min > max
                {
                    return Err(Error::invalid(
                        "node_pool.min_size",
                        "must not be above max_size",
                    ));
                }
                if desired_size.is_none()
                    && min_size.is_none()
                    && max_size.is_none()
                    && autoscaling.is_none()
                {
                    return Err(Error::invalid(
                        "update_mask",
                        "names no field to change; use desired_size, min_size, max_size or autoscaling",
                    ));
                }
                (
                    OperationInput::UpdateNodePool {
                        pool_id: pool_id.clone(),
                        desired_size,
                        min_size,
                        max_size,
                        autoscaling,
                    },
                    pool_id,
                    false,
                )
            }
            NodePoolChange::Delete { pool_id } => {
                pool_field(&pool_id)?;
                require(&provider, cap.delete_node_pool, "delete node pools")?;
                (
                    OperationInput::DeleteNodePool {
                        pool_id: pool_id.clone(),
                    },
                    pool_id,
                    false,
                )
            }
            NodePoolChange::AddNodes {
                pool_id,
                instance_ids,
            } => {
                pool_field(&pool_id)?;
                require(
                    &provider,
                    cap.add_existing_instances,
                    "add existing instances",
                )?;
                if instance_ids.is_empty() || instance_ids.iter().any(|i| i.trim().is_empty()) {
                    return Err(Error::invalid(
                        "instance_ids",
                        "give at least one non-empty instance id",
                    ));
                }
                (
                    OperationInput::AddNodes {
                        pool_id: pool_id.clone(),
                        instance_ids,
                    },
                    pool_id,
                    false,
                )
            }
            NodePoolChange::RemoveNodes {
                pool_id,
                node_names,
                skip_drain,
                release_instances,
            } => {
                pool_field(&pool_id)?;
                require(&provider, cap.remove_nodes, "remove nodes")?;
                if node_names.is_empty() || node_names.iter().any(|n| n.trim().is_empty()) {
                    return Err(Error::invalid(
                        "node_names",
                        "give at least one non-empty node name",
                    ));
                }
                (
                    OperationInput::RemoveNodes {
                        pool_id: pool_id.clone(),
                        node_names,
                        skip_drain,
                        release_instances,
                    },
                    pool_id,
                    false,
                )
            }
        };
        let resource = format!("clusters/{cluster_id}/nodePools/{pool}");
        if validate_only {
            return Ok(self.new_operation(
                kind,
                cluster_id,
                resource,
                &row.provider,
                row.credential_id.as_deref().unwrap_or_default(),
                &row.region,
                input,
                &row.vendor_cluster_id,
                &by,
                now_millis(),
            ));
        }
        self.start(&row, kind, resource, input, None, &by).await
    }

    async fn start(
        &self,
        row: &ClusterRow,
        kind: OperationKind,
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
            kind,
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
                self.replay(by, kind).await?.ok_or_else(|| {
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
        kind: OperationKind,
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
        Operation {
            id: format!("op-{}", uuid::Uuid::new_v4().simple()),
            resource,
            cluster_id: cluster_id.to_string(),
            kind,
            state: OperationState::Pending,
            provider: provider.to_string(),
            request_id: by.request_id.clone(),
            requested_by: by.principal.clone(),
            detail: OperationDetail {
                input,
                step: steps_of(kind)[0].to_string(),
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

    /// The operation an earlier call with the same request_id made, if any. A request_id reused
    /// for a different kind of call is refused.
    async fn replay(&self, by: &Requester, kind: OperationKind) -> Result<Option<Operation>> {
        if by.request_id.is_empty() {
            return Ok(None);
        }
        if by.request_id.len() > 128 {
            return Err(Error::invalid(
                "request_id",
                "must be at most 128 characters",
            ));
        }
        let Some(row) = self.store.operation_by_request_id(&by.request_id).await? else {
            return Ok(None);
        };
        let op = Operation::try_from(row)?;
        if op.kind != kind {
            return Err(Error::invalid(
                "request_id",
                format!(
                    "was already used for a {} operation ({}); use a new one",
                    op.kind.as_str(),
                    op.id
                ),
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
        let credential_id = row.credential_id.clone().unwrap_or_default();
        let credentials = match self.vault.open_secret(&credential_id).await? {
            super::credentials::CredentialSecret::AccessKey {
                access_key_id,
                access_key_secret,
            } => Credentials::AccessKey {
                id: access_key_id,
                secret: access_key_secret,
            },
            super::credentials::CredentialSecret::ApiKey { key_id, token } => {
                Credentials::ApiKey { key_id, token }
            }
            other => {
                return Err(Error::FailedPrecondition {
                    reason: "CREDENTIAL_KIND",
                    message: format!(
                        "credential {credential_id:?} is a {} credential; vendors need an access key or API key",
                        other.kind()
                    ),
                });
            }
        };
        Ok(CallContext {
            credentials,
            region: row.region.clone(),
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

fn require(provider: &Arc<dyn ClusterProvider>, supported: bool, what: &str) -> Result<()> {
    if supported {
        Ok(())
    } else {
        Err(unsupported(provider, what))
    }
}

fn unsupported(provider: &Arc<dyn ClusterProvider>, what: &str) -> Error {
    Error::FailedPrecondition {
        reason: "UNSUPPORTED_BY_PROVIDER",
        message: format!(
            "provider {:?} cannot {what} (see ListProviders)",
            provider.id()
        ),
    }
}

/// A vendor error from a synchronous call (node pool reads).
pub fn vendor_error(err: VendorError) -> Error {
    super::vendor_errors::to_service(err)
}

fn check_spec(provider: &str, spec: &ClusterSpec) -> Result<()> {
    let matches = match (&spec.provider_config, provider) {
        (None, _) => true,
        (Some(ProviderConfig::Ack(_)), "ack")
        | (Some(ProviderConfig::Tke(_)), "tke")
        | (Some(ProviderConfig::Rancher(_)), "rancher") => true,
        _ => false,
    };
    if !matches {
        return Err(Error::invalid(
            "spec.provider_config",
            format!("does not match provider {provider:?}; set spec.{provider} or leave it empty"),
        ));
    }
    if provider != "rancher" && spec.region.trim().is_empty() {
        return Err(Error::invalid(
            "spec.region",
            format!("is required for {provider}, such as \"cn-hangzhou\""),
        ));
    }
    if !spec.display_name.is_empty() {
        validate::display_name("spec.display_name", &spec.display_name)?;
    }
    validate::labels("spec.labels", &spec.labels.clone().into_iter().collect())?;
    let mut names = std::collections::BTreeSet::new();
    for (i, pool) in spec.node_pools.iter().enumerate() {
        let field = format!("spec.node_pools[{i}]");
        check_pool(
            &field,
            pool,
            &Capability {
                node_pool_autoscaling: true,
                ..Default::default()
            },
        )?;
        if !names.insert(pool.name.clone()) {
            return Err(Error::invalid(
                format!("{field}.name"),
                format!("{:?} is used twice", pool.name),
            ));
        }
    }
    Ok(())
}

fn check_pool(field: &str, pool: &NodePoolSpec, cap: &Capability) -> Result<()> {
    if pool.name.trim().is_empty() || pool.name.len() > 63 {
        return Err(Error::invalid(
            format!("{field}.name"),
            "is required, at most 63 characters",
        ));
    }
    for (name, value) in [
        ("desired_size", pool.desired_size),
        ("min_size", pool.min_size),
        ("max_size", pool.max_size),
    ] {
        if !(0..=1000).contains(&value) {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                "must be between 0 and 1000",
            ));
        }
    }
    if pool.autoscaling {
        if !cap.node_pool_autoscaling {
            return Err(Error::invalid(
                format!("{field}.autoscaling"),
                "this provider has no node pool autoscaling",
            ));
        }
        if pool.min_size > pool.max_size || pool.max_size == 0 {
            return Err(Error::invalid(
                format!("{field}.max_size"),
                "must be at least min_size and above 0 with autoscaling",
            ));
        }
    }
    Ok(())
}
