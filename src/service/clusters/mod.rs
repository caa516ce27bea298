//! Reading the catalog of clusters: get and list with filter, order and paging.

pub mod agent;
pub mod agent_manifest;
mod agent_switch;
pub mod connector;
pub mod import;
pub mod ownership;
pub mod status;
pub mod tunnels;

pub use status::{ObservedStatus, Warning};

use std::collections::BTreeMap;

use std::sync::Arc;

use crate::service::{
    Error, Result, access::kube::KubeAccess, clusters::connector::ClusterConnector,
    clusters::status::StatusBoard, filter, key_page::KeyPage, validate,
};
use crate::store::{ClusterKey, ClusterOrder, ClusterQuery, ClusterRow, Store};

/// The provider of clusters brought in from anywhere (not created through a vendor).
pub const PROVIDER_IMPORTED: &str = "imported";

/// Lifecycle state of a cluster as Flotilla manages it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    Provisioning,
    Running,
    Updating,
    Deleting,
    Failed,
    /// Imported by agent; the agent has not registered yet.
    WaitingForAgent,
}

impl ClusterState {
    pub const ALL: [ClusterState; 6] = [
        ClusterState::Provisioning,
        ClusterState::Running,
        ClusterState::Updating,
        ClusterState::Deleting,
        ClusterState::Failed,
        ClusterState::WaitingForAgent,
    ];

    /// The name stored in the database and accepted in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Provisioning => "PROVISIONING",
            ClusterState::Running => "RUNNING",
            ClusterState::Updating => "UPDATING",
            ClusterState::Deleting => "DELETING",
            ClusterState::Failed => "FAILED",
            ClusterState::WaitingForAgent => "WAITING_FOR_AGENT",
        }
    }

    /// Accepts `RUNNING` and `CLUSTER_STATE_RUNNING`, any case.
    pub fn parse(text: &str) -> Option<ClusterState> {
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("CLUSTER_STATE_").unwrap_or(&upper);
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A cluster as the service layer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub provider: String,
    pub region: String,
    pub vendor_cluster_id: String,
    pub state: ClusterState,
    pub endpoint: String,
    pub kube_system_uid: String,
    pub credential_id: String,
    pub last_operation_id: String,
    /// The encoded `ClusterSpec` a vendor cluster was created from.
    pub spec: Option<Vec<u8>>,
    pub warnings: Vec<Warning>,
    pub status: ObservedStatus,
    /// How calls for callers reach the cluster.
    pub kube_access: KubeAccess,
    pub version: i64,
    pub create_millis: i64,
    pub update_millis: i64,
}

impl Cluster {
    /// Changes whenever the stored cluster changes.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.version, self.update_millis)
    }
}

impl TryFrom<ClusterRow> for Cluster {
    type Error = Error;

    fn try_from(row: ClusterRow) -> Result<Cluster> {
        let corrupt = |what: &str| Error::Internal(format!("cluster {}: bad {what}", row.id));
        let kube_access = KubeAccess::of(&row);
        Ok(Cluster {
            labels: serde_json::from_str(&row.labels).map_err(|_| corrupt("labels"))?,
            warnings: serde_json::from_str(&row.warnings).map_err(|_| corrupt("warnings"))?,
            state: ClusterState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
            id: row.id,
            display_name: row.display_name,
            provider: row.provider,
            region: row.region,
            vendor_cluster_id: row.vendor_cluster_id,
            endpoint: row.endpoint,
            kube_system_uid: row.kube_system_uid.unwrap_or_default(),
            credential_id: row.credential_id.unwrap_or_default(),
            last_operation_id: row.last_operation_id.unwrap_or_default(),
            spec: row.spec,
            status: ObservedStatus::default(),
            kube_access,
            version: row.version,
            create_millis: row.create_time,
            update_millis: row.update_time,
        })
    }
}

/// A list request, as received.
#[derive(Debug, Clone, Default)]
pub struct ListClusters {
    pub page_size: i32,
    pub page_token: String,
    pub filter: String,
    pub order_by: String,
    /// When set, only these clusters exist for the caller.
    pub scope: Option<Vec<String>>,
}

/// One page of clusters.
#[derive(Debug, Clone)]
pub struct ClusterList {
    pub clusters: Vec<Cluster>,
    pub next_page_token: String,
    pub total_size: i32,
}

/// Changes to a cluster's own fields.
#[derive(Debug, Clone, Default)]
pub struct UpdateCluster {
    pub cluster_id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    /// Field-mask paths: "display_name", "labels", "kube_access_mode".
    pub paths: Vec<String>,
    pub kube_access: KubeAccess,
    /// When not empty, must equal the cluster's current etag.
    pub etag: String,
}

/// Called with a cluster id when what is cached about that cluster must go: it was detached,
/// or its credentials now point elsewhere (a later import may reuse the id for another cluster).
pub type ForgetHook = Arc<dyn Fn(&str) + Send + Sync>;

/// The clusters this server knows, with what the prober last saw of each.
pub struct ClusterCatalog {
    store: Store,
    board: Arc<StatusBoard>,
    connector: Arc<ClusterConnector>,
    forget_hooks: Vec<ForgetHook>,
}

impl ClusterCatalog {
    pub fn new(store: Store, board: Arc<StatusBoard>, connector: Arc<ClusterConnector>) -> Self {
        ClusterCatalog {
            store,
            board,
            connector,
            forget_hooks: Vec::new(),
        }
    }

    /// Caches elsewhere (watch caches, discovery) to clear when a cluster is detached.
    pub fn with_forget_hooks(mut self, hooks: Vec<ForgetHook>) -> Self {
        self.forget_hooks = hooks;
        self
    }

    fn with_status(&self, row: ClusterRow) -> Result<Cluster> {
        let mut cluster = Cluster::try_from(row)?;
        if let Some(status) = self.board.get(&cluster.id) {
            cluster.status = status;
        }
        Ok(cluster)
    }

    async fn row(&self, id: &str) -> Result<ClusterRow> {
        if id.is_empty() {
            return Err(Error::invalid("cluster_id", "is required"));
        }
        self.store
            .get_cluster(id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "cluster",
                id: id.to_string(),
            })
    }

    pub async fn get(&self, id: &str) -> Result<Cluster> {
        let row = self.row(id).await?;
        self.with_status(row)
    }

    /// One page of clusters as stored, each with an empty `status`: a caller adds what the
    /// prober saw with [`ClusterCatalog::statuses`] when it answers. Pages are cut by key: the
    /// token holds the last row's sort key and id, so a page costs what it returns however deep
    /// into the list it is, and a walk neither skips nor repeats a cluster that exists
    /// throughout.
    pub async fn list_stored(&self, request: &ListClusters) -> Result<ClusterList> {
        let mut query = parse_filter(&request.filter)?;
        (query.order, query.descending) = parse_order(&request.order_by)?;
        query.ids = request.scope.clone();
        let page = KeyPage::parse(
            request.page_size,
            &request.page_token,
            &format!("clusters|{}|{}", request.filter, request.order_by),
        )?;
        query.after = page.after.clone().map(|(sort, id)| ClusterKey { sort, id });
        let size = page.size;
        // One row more than the page tells whether another page follows.
        let mut found = self.store.list_clusters(&query, 0, size as i64 + 1).await?;
        let more = found.rows.len() > size;
        found.rows.truncate(size);
        let last = found
            .rows
            .last()
            .map(|row| ClusterKey::of(row, query.order));
        let next_page_token = page.next_token(
            last.as_ref()
                .map(|key| (key.sort.as_str(), key.id.as_str())),
            more,
        );
        Ok(ClusterList {
            clusters: found
                .rows
                .into_iter()
                .map(Cluster::try_from)
                .collect::<Result<_>>()?,
            next_page_token,
            total_size: i32::try_from(found.total).unwrap_or(i32::MAX),
        })
    }

    /// What the prober last saw of each of these clusters (the default for one not probed yet).
    pub fn statuses<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Vec<ObservedStatus> {
        self.board.get_many(ids)
    }

    /// A number that changes whenever any stored cluster changes, by any writer: what
    /// [`ClusterCatalog::list_stored`] answers after reading N here stays its answer while this
    /// still reads N.
    pub async fn change_count(&self) -> Result<i64> {
        Ok(self.store.clusters_change_count().await?)
    }

    /// Changes display name and/or labels, as the field mask says.
    pub async fn update(&self, request: UpdateCluster) -> Result<Cluster> {
        if request.paths.is_empty() {
            return Err(Error::invalid(
                "update_mask",
                "is required: name the fields to change (display_name, labels, \
                 kube_access_mode)",
            ));
        }
        let mut row = self.row(&request.cluster_id).await?;
        let current = Cluster::try_from(row.clone())?;
        if !request.etag.is_empty() && request.etag != current.etag() {
            return Err(Error::Aborted(format!(
                "cluster {:?} changed since it was read (etag {} is now {}); read it again",
                row.id,
                request.etag,
                current.etag()
            )));
        }
        for path in &request.paths {
            match path.as_str() {
                "display_name" => {
                    validate::display_name("cluster.display_name", &request.display_name)?;
                    row.display_name = if request.display_name.is_empty() {
                        row.id.clone()
                    } else {
                        request.display_name.clone()
                    };
                }
                "labels" => {
                    validate::labels("cluster.labels", &request.labels)?;
                    row.labels = serde_json::to_string(&request.labels)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                }
                "kube_access_mode" => {
                    if request.kube_access == KubeAccess::Impersonation {
                        // Checked before anything is stored.
                        let access = self.connector.open(&row).await?;
                        self.connector.prepare_impersonation(&access, false).await?;
                    }
                    row.kube_access = request.kube_access.as_str().into();
                }
                other => {
                    return Err(Error::invalid(
                        "update_mask",
                        format!(
                            "{other:?} cannot be changed; use display_name, labels or \
                             kube_access_mode"
                        ),
                    ));
                }
            }
        }
        row.update_time = crate::store::now_millis().max(row.update_time + 1);
        self.store.update_cluster(&row, current.version).await?;
        self.get(&row.id).await
    }

    /// Forgets a cluster and its secrets. Nothing is done to the cluster itself.
    pub async fn detach(&self, id: &str, etag: &str) -> Result<()> {
        let row = self.row(id).await?;
        if !etag.is_empty() && etag != Cluster::try_from(row.clone())?.etag() {
            return Err(Error::Aborted(format!(
                "cluster {id:?} changed since it was read; read it again"
            )));
        }
        if !self.store.delete_cluster_and_secret(id).await? {
            return Err(Error::NotFound {
                kind: "cluster",
                id: id.to_string(),
            });
        }
        self.connector.forget(id);
        self.connector.close_tunnel(id, "the cluster was detached");
        self.board.remove(id);
        for forget in &self.forget_hooks {
            forget(id);
        }
        tracing::info!(cluster = %id, "cluster detached");
        Ok(())
    }

    /// The provider of a stored cluster.
    pub async fn provider_of(&self, id: &str) -> Result<String> {
        Ok(self.row(id).await?.provider)
    }

    /// Refuses to destroy what Flotilla did not create: an imported cluster has no vendor to
    /// destroy it through, so it can only be detached.
    pub async fn check_destroyable(&self, id: &str) -> Result<()> {
        if self.provider_of(id).await? == PROVIDER_IMPORTED {
            return Err(Error::FailedPrecondition {
                reason: "UNSUPPORTED_BY_PROVIDER",
                message: "imported clusters cannot be destroyed through Flotilla; detach it \
                          (destroy = false) and delete it where it was created"
                    .into(),
            });
        }
        Ok(())
    }
}

pub(crate) fn parse_filter(text: &str) -> Result<ClusterQuery> {
    let mut query = ClusterQuery::default();
    for term in filter::parse(text)? {
        match term {
            filter::Term::Equals { field, value } => match field.as_str() {
                "provider" => query.provider = Some(value),
                "region" => query.region = Some(value),
                "state" => {
                    let state = ClusterState::parse(&value).ok_or_else(|| {
                        Error::invalid(
                            "filter",
                            format!(
                                "state {value:?} is not one of {}",
                                ClusterState::ALL.map(ClusterState::as_str).join(", ")
                            ),
                        )
                    })?;
                    query.state = Some(state.as_str().to_string());
                }
                other => match other.strip_prefix("labels.") {
                    Some(key) if !key.is_empty() => query.labels.push((key.into(), Some(value))),
                    _ => return Err(unknown_field(other)),
                },
            },
            filter::Term::Present { field } => match field.strip_prefix("labels.") {
                Some(key) if !key.is_empty() => query.labels.push((key.into(), None)),
                _ => return Err(unknown_field(&field)),
            },
        }
    }
    Ok(query)
}

fn unknown_field(field: &str) -> Error {
    Error::invalid(
        "filter",
        format!("cannot filter on {field:?}; use provider, state, region or labels.<key>"),
    )
}

fn parse_order(text: &str) -> Result<(ClusterOrder, bool)> {
    let mut words = text.split_whitespace();
    let field = words.next().unwrap_or("id");
    let descending = match words.next() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(Error::invalid(
                "order_by",
                format!("{other:?} is not a direction; use asc or desc"),
            ));
        }
    };
    if words.next().is_some() {
        return Err(Error::invalid("order_by", "orders by one field only"));
    }
    let order = match field {
        "id" => ClusterOrder::Id,
        "display_name" => ClusterOrder::DisplayName,
        "create_time" => ClusterOrder::CreateTime,
        other => {
            return Err(Error::invalid(
                "order_by",
                format!("cannot order by {other:?}; use id, display_name or create_time"),
            ));
        }
    };
    Ok((order, descending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_maps_to_query() {
        let q = parse_filter(
            r#"provider = acme AND state = cluster_state_running AND labels.env = "prod""#,
        )
        .unwrap();
        assert_eq!(q.provider.as_deref(), Some("acme"));
        assert_eq!(q.state.as_deref(), Some("RUNNING"));
        assert_eq!(
            q.labels,
            vec![("env".to_string(), Some("prod".to_string()))]
        );
        assert!(parse_filter("state = SLEEPING").is_err());
        assert!(parse_filter("colour = red").is_err());
    }

    #[test]
    fn order_by_parses() {
        assert_eq!(parse_order("").unwrap(), (ClusterOrder::Id, false));
        assert_eq!(
            parse_order("create_time desc").unwrap(),
            (ClusterOrder::CreateTime, true)
        );
        assert!(parse_order("name").is_err());
        assert!(parse_order("id sideways").is_err());
    }
}
