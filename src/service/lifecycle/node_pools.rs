//! Node pools: read straight from the vendor (readiness from Kubernetes); changes are
//! recorded as operations.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use prost::Message;

use super::{Lifecycle, NodePoolChange, Requester, vendor_error};
use crate::service::{
    Error, Result,
    lifecycle::checks::{check_pool, require, unsupported},
    operations::{Operation, OperationInput, OperationKind},
    paging::Page,
};
use crate::{
    adapters::cluster::{ClusterProvider, VendorNodePool},
    service::workloads::ListNodes,
    store::now_millis,
};

/// A vendor's node pool and how many of its nodes are Ready in Kubernetes.
pub struct PoolStatus {
    pub pool: VendorNodePool,
    /// Ready nodes carrying the vendor's pool label; 0 when the cluster cannot be read now.
    pub ready: i32,
}

impl Lifecycle {
    /// Ready nodes per pool id, from the pool label the vendor puts on its nodes.
    async fn ready_by_pool(
        &self,
        cluster_id: &str,
        provider: &dyn ClusterProvider,
    ) -> HashMap<String, i32> {
        let Some(label) = provider.node_pool_label() else {
            return HashMap::new();
        };
        let listing = self
            .workloads
            .list_nodes(
                &crate::auth::Principal::server(),
                ListNodes {
                    cluster_id: cluster_id.to_string(),
                    page_size: 1000,
                    page_token: String::new(),
                    label_selector: label.to_string(),
                    ready: Some(true),
                    zone: String::new(),
                },
            )
            .await;
        let mut ready = HashMap::new();
        match listing {
            Ok(listing) => {
                for node in listing.items {
                    if let Some(pool) = node.labels.get(label) {
                        *ready.entry(pool.clone()).or_default() += 1;
                    }
                }
            }
            // The vendor's answer is still worth giving when Kubernetes cannot be read.
            Err(err) => {
                tracing::debug!(cluster = %cluster_id, error = %err, "node readiness unknown")
            }
        }
        ready
    }

    pub async fn node_pools(
        &self,
        cluster_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<PoolStatus>, String, i32)> {
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
        let ready = self.ready_by_pool(cluster_id, provider.as_ref()).await;
        let chunk = chunk
            .into_iter()
            .map(|pool| PoolStatus {
                ready: ready.get(&pool.id).copied().unwrap_or(0),
                pool,
            })
            .collect();
        Ok((chunk, next, total as i32))
    }

    pub async fn node_pool(&self, cluster_id: &str, pool_id: &str) -> Result<PoolStatus> {
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
        let pool = provider
            .list_node_pools(&ctx, &row.vendor_cluster_id)
            .await
            .map_err(vendor_error)?
            .into_iter()
            .find(|p| p.id == pool_id)
            .ok_or_else(|| Error::NotFound {
                kind: "node pool",
                id: pool_id.to_string(),
            })?;
        let ready = self.ready_by_pool(cluster_id, provider.as_ref()).await;
        Ok(PoolStatus {
            ready: ready.get(&pool.id).copied().unwrap_or(0),
            pool,
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
        let key = super::request_key::node_pool_change(cluster_id, kind, &change);
        // validate_only records nothing, so there is nothing to replay.
        let validate_only = matches!(
            change,
            NodePoolChange::Create {
                validate_only: true,
                ..
            }
        );
        if !validate_only && let Some(existing) = self.replay(&by, &key).await? {
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
                check_pool("node_pool", &spec, Some(&cap))?;
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
                &key,
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
        self.start(&row, &key, resource, input, None, &by).await
    }
}
