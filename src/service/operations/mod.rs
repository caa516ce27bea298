//! Durable operations as the API sees them: the record, get, list, watch, cancel and retry.
//! The worker that advances them is in `operation_worker`.

pub mod worker;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::service::{Error, Result, paging::Page};
use crate::{
    adapters::{ErrorClass, VendorError},
    store::{OperationQuery, OperationRow, Store, now_millis},
};

/// What an operation does. Stored as `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    CreateCluster,
    DeleteCluster,
    UpgradeCluster,
    CreateNodePool,
    UpdateNodePool,
    DeleteNodePool,
    AddNodes,
    RemoveNodes,
}

impl OperationKind {
    pub const ALL: [OperationKind; 8] = [
        OperationKind::CreateCluster,
        OperationKind::DeleteCluster,
        OperationKind::UpgradeCluster,
        OperationKind::CreateNodePool,
        OperationKind::UpdateNodePool,
        OperationKind::DeleteNodePool,
        OperationKind::AddNodes,
        OperationKind::RemoveNodes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::CreateCluster => "CREATE_CLUSTER",
            OperationKind::DeleteCluster => "DELETE_CLUSTER",
            OperationKind::UpgradeCluster => "UPGRADE_CLUSTER",
            OperationKind::CreateNodePool => "CREATE_NODE_POOL",
            OperationKind::UpdateNodePool => "UPDATE_NODE_POOL",
            OperationKind::DeleteNodePool => "DELETE_NODE_POOL",
            OperationKind::AddNodes => "ADD_NODES",
            OperationKind::RemoveNodes => "REMOVE_NODES",
        }
    }

    pub fn parse(text: &str) -> Option<OperationKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Lifecycle of an operation. Stored as `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationState {
    Pending,
    Running,
    Succeeded,
    ErrorRetrying,
    Failed,
    Cancelling,
    Cancelled,
}

impl OperationState {
    pub const ALL: [OperationState; 7] = [
        OperationState::Pending,
        OperationState::Running,
        OperationState::Succeeded,
        OperationState::ErrorRetrying,
        OperationState::Failed,
        OperationState::Cancelling,
        OperationState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "PENDING",
            OperationState::Running => "RUNNING",
            OperationState::Succeeded => "SUCCEEDED",
            OperationState::ErrorRetrying => "ERROR_RETRYING",
            OperationState::Failed => "FAILED",
            OperationState::Cancelling => "CANCELLING",
            OperationState::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<OperationState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OperationState::Succeeded | OperationState::Failed | OperationState::Cancelled
        )
    }
}

/// The work itself, as requested. Stored inside `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OperationInput {
    /// The spec is the cluster row's; the vendor-side name is the cluster id.
    CreateCluster,
    DeleteCluster,
    UpgradeCluster {
        version: String,
    },
    /// `spec` is the encoded `NodePoolSpec`, base64.
    CreateNodePool {
        spec: String,
        name: String,
    },
    UpdateNodePool {
        pool_id: String,
        desired_size: Option<i32>,
        min_size: Option<i32>,
        max_size: Option<i32>,
        autoscaling: Option<bool>,
    },
    DeleteNodePool {
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

/// One step's record, for the API's `steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub state: String,
    pub start_millis: i64,
    pub end_millis: Option<i64>,
    pub message: String,
}

/// A classified failure, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationFailure {
    pub class: String,
    pub retryable: bool,
    pub vendor_code: String,
    pub vendor_message: String,
    pub vendor_request_id: String,
    pub vendor_http_status: u16,
    pub step: String,
    pub retry_after_millis: Option<u64>,
    pub time_millis: i64,
}

impl OperationFailure {
    pub fn from_vendor(err: &VendorError, step: &str, retryable: bool) -> Self {
        OperationFailure {
            class: err.class.as_str().to_string(),
            retryable,
            vendor_code: err.code.clone(),
            vendor_message: err.message.clone(),
            vendor_request_id: err.request_id.clone(),
            vendor_http_status: err.http_status,
            step: step.to_string(),
            retry_after_millis: err.retry_after.map(|d| d.as_millis() as u64),
            time_millis: now_millis(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        ErrorClass::parse(&self.class).unwrap_or(ErrorClass::Unknown)
    }
}

/// Everything about an operation that is not a query column. Stored as JSON in `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationDetail {
    pub input: OperationInput,
    /// The next step to run: the checkpoint a restarted worker resumes from.
    pub step: String,
    /// The vendor's id of what the operation made or acts on (cluster or node pool).
    #[serde(default)]
    pub vendor_object_id: String,
    /// The vendor's cluster id (for node pool operations and deletes).
    #[serde(default)]
    pub vendor_cluster_id: String,
    #[serde(default)]
    pub vendor_task_id: String,
    #[serde(default)]
    pub vendor_state: String,
    #[serde(default)]
    pub vendor_request_ids: Vec<String>,
    pub credential_id: String,
    pub region: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub progress_percent: i32,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub error: Option<OperationFailure>,
    #[serde(default)]
    pub errors: Vec<OperationFailure>,
    #[serde(default)]
    pub attempt: i32,
    #[serde(default)]
    pub start_millis: Option<i64>,
    #[serde(default)]
    pub end_millis: Option<i64>,
    pub retry_deadline_millis: i64,
}

/// An operation as the service layer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub id: String,
    pub resource: String,
    pub cluster_id: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub provider: String,
    pub request_id: String,
    /// The token `request_id` belongs to ('' for Flotilla's own work).
    pub request_token: String,
    /// SHA-256 of the request that made it (see `lifecycle::request_key`); `None` on old rows.
    pub request_hash: Option<String>,
    pub requested_by: String,
    pub detail: OperationDetail,
    pub next_run_millis: i64,
    pub version: i64,
    pub create_millis: i64,
    pub update_millis: i64,
}

impl Operation {
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.version, self.update_millis)
    }

    /// Cancellable while no vendor call has been made for it and no worker holds it.
    pub fn cancellable(&self) -> bool {
        matches!(
            self.state,
            OperationState::Pending | OperationState::ErrorRetrying
        ) && self.detail.step == "submit"
            && self.detail.vendor_request_ids.is_empty()
            && self.detail.vendor_object_id.is_empty()
    }
}

impl TryFrom<OperationRow> for Operation {
    type Error = Error;

    fn try_from(row: OperationRow) -> Result<Operation> {
        let corrupt = |what: &str| Error::Internal(format!("operation {}: bad {what}", row.id));
        Ok(Operation {
            kind: OperationKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            state: OperationState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
            detail: serde_json::from_str(&row.detail).map_err(|_| corrupt("detail"))?,
            id: row.id,
            resource: row.resource,
            cluster_id: row.cluster_id,
            provider: row.provider,
            request_id: row.request_id.unwrap_or_default(),
            request_token: row.request_token,
            request_hash: row.request_hash,
            requested_by: row.requested_by,
            next_run_millis: row.next_run_time,
            version: row.version,
            create_millis: row.create_time,
            update_millis: row.update_time,
        })
    }
}

/// A list request.
#[derive(Debug, Clone, Default)]
pub struct ListOperations {
    pub page_size: i32,
    pub page_token: String,
    pub resource: String,
    pub states: Vec<OperationState>,
    pub kinds: Vec<OperationKind>,
    /// The caller's cluster scope, when limited.
    pub cluster_ids: Option<Vec<String>>,
}

pub struct OperationList {
    pub operations: Vec<Operation>,
    pub next_page_token: String,
    pub total_size: i32,
}

/// Reads and steers operations.
pub struct OperationBook {
    store: Store,
}

/// How often a watch looks for changes. Watches read the database, so a change made by any
/// replica is seen.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

impl OperationBook {
    pub fn new(store: Store) -> Self {
        OperationBook { store }
    }

    pub async fn get(&self, id: &str) -> Result<Operation> {
        if id.is_empty() {
            return Err(Error::invalid("operation_id", "is required"));
        }
        self.store
            .get_operation(id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "operation",
                id: id.to_string(),
            })?
            .try_into()
    }

    /// The operation, if `scope` may see its cluster. Another cluster's operation is NOT_FOUND
    /// exactly like a missing one, decided before anything else of it is read.
    pub async fn get_visible(&self, scope: &crate::auth::Principal, id: &str) -> Result<Operation> {
        if id.is_empty() {
            return Err(Error::invalid("operation_id", "is required"));
        }
        self.store
            .get_operation(id)
            .await?
            .filter(|row| scope.can_see(&row.cluster_id))
            .ok_or_else(|| Error::NotFound {
                kind: "operation",
                id: id.to_string(),
            })?
            .try_into()
    }

    pub async fn list(&self, request: &ListOperations) -> Result<OperationList> {
        let query = OperationQuery {
            resource: (!request.resource.is_empty()).then(|| request.resource.clone()),
            states: request.states.iter().map(|s| s.as_str().into()).collect(),
            kinds: request.kinds.iter().map(|k| k.as_str().into()).collect(),
            cluster_ids: request.cluster_ids.clone(),
        };
        let page = Page::parse(
            request.page_size,
            &request.page_token,
            &format!("{:?}/{:?}/{:?}", query.resource, query.states, query.kinds),
        )?;
        let (rows, total) = self
            .store
            .list_operations(&query, page.offset, page.size)
            .await?;
        let next_page_token = page.next_token(rows.len(), total);
        Ok(OperationList {
            operations: rows
                .into_iter()
                .map(Operation::try_from)
                .collect::<Result<_>>()?,
            next_page_token,
            total_size: total.min(i64::from(i32::MAX)) as i32,
        })
    }

    /// The operation now, then each change, ending after a terminal state (or when the
    /// receiver is dropped).
    pub fn watch(
        &self,
        first: Operation,
    ) -> impl futures::Stream<Item = Result<Operation>> + Send + 'static {
        let store = self.store.clone();
        async_stream::try_stream! {
            let mut last = first;
            yield last.clone();
            while !last.state.is_terminal() {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let row = store.get_operation(&last.id).await?.ok_or_else(|| Error::NotFound {
                    kind: "operation",
                    id: last.id.clone(),
                })?;
                let now = Operation::try_from(row)?;
                if now.version != last.version {
                    last = now;
                    yield last.clone();
                }
            }
        }
    }

    /// Cancels an operation no vendor call has been made for yet.
    pub async fn cancel(&self, id: &str) -> Result<Operation> {
        let current = self.get(id).await?;
        if current.state == OperationState::Cancelled {
            return Ok(current);
        }
        if !current.cancellable() {
            return Err(Error::FailedPrecondition {
                reason: "NOT_CANCELLABLE",
                message: format!(
                    "operation {id:?} is {} and the vendor is already working on it; it cannot \
                     be cancelled now (only operations not yet sent to the vendor can be)",
                    current.state.as_str()
                ),
            });
        }
        let now = now_millis();
        let mut next = current.clone();
        next.state = OperationState::Cancelled;
        next.detail.end_millis = Some(now);
        next.detail.description = "cancelled before anything was sent to the vendor".into();
        if !self
            .store
            .replace_idle_operation(&to_row(&next, now)?, current.version, now)
            .await?
        {
            return Err(Error::Aborted(format!(
                "operation {id:?} changed or is being worked on; read it again and retry"
            )));
        }
        if current.kind == OperationKind::CreateCluster {
            self.store
                .set_cluster_lifecycle(&current.cluster_id, "FAILED", None, now)
                .await?;
        }
        self.get(id).await
    }

    /// Starts a FAILED operation again from the step that failed, with a fresh retry window.
    pub async fn retry(&self, id: &str, retry_window: Duration) -> Result<Operation> {
        let current = self.get(id).await?;
        if current.state != OperationState::Failed {
            return Err(Error::FailedPrecondition {
                reason: "NOT_FAILED",
                message: format!(
                    "operation {id:?} is {}; only FAILED operations can be retried",
                    current.state.as_str()
                ),
            });
        }
        let now = now_millis();
        let mut next = current.clone();
        next.state = OperationState::Pending;
        next.detail.end_millis = None;
        next.detail.retry_deadline_millis = now + retry_window.as_millis() as i64;
        next.detail.description = format!("retrying from step {:?}", next.detail.step);
        next.next_run_millis = now;
        if !self
            .store
            .replace_idle_operation(&to_row(&next, now)?, current.version, now)
            .await?
        {
            return Err(Error::Aborted(format!(
                "operation {id:?} changed meanwhile; read it again and retry"
            )));
        }
        self.get(id).await
    }
}

/// The row for `op`, stamped `now`, with no lease.
pub fn to_row(op: &Operation, now: i64) -> Result<OperationRow> {
    Ok(OperationRow {
        id: op.id.clone(),
        resource: op.resource.clone(),
        cluster_id: op.cluster_id.clone(),
        kind: op.kind.as_str().into(),
        state: op.state.as_str().into(),
        provider: op.provider.clone(),
        request_id: (!op.request_id.is_empty()).then(|| op.request_id.clone()),
        requested_by: op.requested_by.clone(),
        detail: serde_json::to_string(&op.detail)
            .map_err(|err| Error::Internal(format!("encoding operation: {err}")))?,
        lease_owner: None,
        lease_expire_time: None,
        next_run_time: op.next_run_millis,
        version: op.version,
        create_time: op.create_millis,
        update_time: now,
        request_token: op.request_token.clone(),
        request_hash: op.request_hash.clone(),
    })
}
