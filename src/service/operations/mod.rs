//! Durable operations as the API sees them: the record, get, list, watch, cancel and retry.
//! The worker that advances them is in `worker`; the steps of each kind are here, what each step
//! decides is in `decide`, and what follows a failure is in `retry`.

pub mod decide;
mod failure;
pub mod pulse;
pub mod retry;
mod step;
pub mod worker;

pub use failure::{OperationFailure, StepFailure, VendorCall};
pub use step::{Step, StepState};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::service::{Error, Result, paging::Page};
use crate::store::{OperationQuery, OperationRow, Store, now_millis};

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
    /// Issue a new pull credential for a registry's pull secrets that expire soon (or whose
    /// registry credential changed), rewrite them, revoke what they held.
    RenewPullSecret,
}

impl OperationKind {
    pub const ALL: [OperationKind; 9] = [
        OperationKind::CreateCluster,
        OperationKind::DeleteCluster,
        OperationKind::UpgradeCluster,
        OperationKind::CreateNodePool,
        OperationKind::UpdateNodePool,
        OperationKind::DeleteNodePool,
        OperationKind::AddNodes,
        OperationKind::RemoveNodes,
        OperationKind::RenewPullSecret,
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
            OperationKind::RenewPullSecret => "RENEW_PULL_SECRET",
        }
    }

    pub fn parse(text: &str) -> Option<OperationKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The steps of each kind, first to last: a new operation starts at the first, and progress is
/// the share of them done.
pub fn steps_of(kind: OperationKind) -> &'static [Step] {
    match kind {
        OperationKind::CreateCluster => &[
            Step::Submit,
            Step::Provision,
            Step::NodePools,
            Step::Connect,
        ],
        OperationKind::DeleteCluster => &[Step::Submit, Step::Wait, Step::Forget],
        OperationKind::UpgradeCluster
        | OperationKind::CreateNodePool
        | OperationKind::UpdateNodePool
        | OperationKind::DeleteNodePool
        | OperationKind::AddNodes
        | OperationKind::RemoveNodes => &[Step::Submit, Step::Wait],
        OperationKind::RenewPullSecret => &[Step::Renew, Step::Revoke],
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
    /// The pull secrets of one registry; `replaced` are vendor ids of credentials that renewal
    /// took out of Secrets, revoked (once no Secret holds them) by the last step.
    RenewPullSecret {
        registry_id: String,
        #[serde(default)]
        replaced: Vec<String>,
    },
}

/// One step's record, for the API's `steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: Step,
    pub state: StepState,
    pub start_millis: i64,
    pub end_millis: Option<i64>,
    pub message: String,
}

/// Everything about an operation that is not a query column. Stored as JSON in `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationDetail {
    pub input: OperationInput,
    /// The next step to run: the checkpoint a restarted worker resumes from.
    pub step: Step,
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
        ) && self.detail.step == Step::Submit
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
    /// Ends watches with UNAVAILABLE when the server shuts down, so that clients watch again
    /// on another replica instead of being cut off at the end of the grace period.
    shutdown: tokio_util::sync::CancellationToken,
}

/// How often a watch looks for changes. Watches read the database, so a change made by any
/// replica is seen.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

impl OperationBook {
    pub fn new(store: Store) -> Self {
        OperationBook {
            store,
            shutdown: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Watches end with UNAVAILABLE (SHUTTING_DOWN) once `shutdown` is cancelled.
    pub fn ending_watches_on(mut self, shutdown: tokio_util::sync::CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
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
        let shutdown = self.shutdown.clone();
        async_stream::try_stream! {
            let mut last = first;
            yield last.clone();
            while !last.state.is_terminal() {
                let stopping = tokio::select! {
                    () = shutdown.cancelled() => true,
                    () = tokio::time::sleep(WATCH_INTERVAL) => false,
                };
                if stopping {
                    Err(Error::Unavailable {
                        reason: "SHUTTING_DOWN",
                        message: "the server is shutting down; watch the operation again".into(),
                        retry_after: Some(Duration::from_secs(1)),
                    })?;
                }
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
        if let Some(state) = retry::cluster_state_after_cancel(current.kind) {
            self.store
                .set_cluster_lifecycle(&current.cluster_id, state.as_str(), None, now)
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
        next.detail.description = format!("retrying from step {:?}", next.detail.step.as_str());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ErrorClass;

    const OLD_DETAILS: [&str; 3] = [
        r#"{"input":{"type":"create_cluster"},"step":"connect","vendor_object_id":"c-abc","vendor_cluster_id":"c-abc","vendor_task_id":"t-1","vendor_state":"running","vendor_request_ids":["req-1","req-3"],"credential_id":"cred-1","region":"cn-hangzhou","description":"provision failed (RATE_LIMITED); will retry","progress_percent":75,"steps":[{"id":"submit","state":"SUCCEEDED","start_millis":1000,"end_millis":2000,"message":""},{"id":"provision","state":"SUCCEEDED","start_millis":2000,"end_millis":4000,"message":""},{"id":"node_pools","state":"SUCCEEDED","start_millis":4000,"end_millis":4500,"message":""},{"id":"connect","state":"RUNNING","start_millis":4500,"end_millis":null,"message":""}],"error":{"class":"RATE_LIMITED","retryable":true,"vendor_code":"Throttling.User","vendor_message":"Request was denied due to user flow control.","vendor_request_id":"req-2","vendor_http_status":400,"step":"provision","retry_after_millis":1500,"time_millis":3000},"errors":[{"class":"RATE_LIMITED","retryable":true,"vendor_code":"Throttling.User","vendor_message":"Request was denied due to user flow control.","vendor_request_id":"req-2","vendor_http_status":400,"step":"provision","retry_after_millis":1500,"time_millis":3000}],"attempt":2,"start_millis":1000,"end_millis":null,"retry_deadline_millis":86401000}"#,
        r#"{"input":{"type":"delete_cluster"},"step":"forget","vendor_object_id":"","vendor_cluster_id":"cls-1","vendor_task_id":"","vendor_state":"Deleting","vendor_request_ids":[],"credential_id":"cred-2","region":"ap-guangzhou","description":"forget failed: an internal error; see the server log","progress_percent":66,"steps":[{"id":"submit","state":"SUCCEEDED","start_millis":10,"end_millis":20,"message":""},{"id":"wait","state":"SUCCEEDED","start_millis":20,"end_millis":30,"message":""},{"id":"forget","state":"FAILED","start_millis":30,"end_millis":40,"message":"an internal error; see the server log"}],"error":{"class":"UNKNOWN","retryable":false,"vendor_code":"","vendor_message":"an internal error; see the server log","vendor_request_id":"","vendor_http_status":0,"step":"forget","retry_after_millis":null,"time_millis":40},"errors":[{"class":"DEPENDENCY_PENDING","retryable":true,"vendor_code":"DrainIncomplete","vendor_message":"node n1: 1 pods blocked by disruption budgets, 0 failed","vendor_request_id":"","vendor_http_status":0,"step":"submit","retry_after_millis":null,"time_millis":15},{"class":"UNKNOWN","retryable":false,"vendor_code":"","vendor_message":"an internal error; see the server log","vendor_request_id":"","vendor_http_status":0,"step":"forget","retry_after_millis":null,"time_millis":40}],"attempt":1,"start_millis":10,"end_millis":40,"retry_deadline_millis":50}"#,
        r#"{"input":{"type":"update_node_pool","pool_id":"np-1","desired_size":3,"min_size":null,"max_size":null,"autoscaling":false},"step":"wait","vendor_object_id":"","vendor_cluster_id":"c-1","vendor_task_id":"","vendor_state":"scaling","vendor_request_ids":["r-9"],"credential_id":"cred-3","region":"cn-beijing","description":"waiting for node pool np-1 (state \"scaling\", desired 2)","progress_percent":50,"steps":[{"id":"submit","state":"SUCCEEDED","start_millis":5,"end_millis":6,"message":""},{"id":"wait","state":"RUNNING","start_millis":6,"end_millis":null,"message":""}],"error":null,"errors":[],"attempt":1,"start_millis":5,"end_millis":null,"retry_deadline_millis":99}"#,
    ];

    #[test]
    fn details_written_by_the_old_code_load_and_encode_byte_for_byte() {
        for old in OLD_DETAILS {
            let detail: OperationDetail = serde_json::from_str(old).expect(old);
            assert_eq!(serde_json::to_string(&detail).unwrap(), old);
        }
    }

    #[test]
    fn stored_names_load_as_typed_steps_states_and_classes() {
        let create: OperationDetail = serde_json::from_str(OLD_DETAILS[0]).unwrap();
        assert_eq!(create.step, Step::Connect);
        let steps: Vec<_> = create.steps.iter().map(|s| (s.id, s.state)).collect();
        assert_eq!(
            steps,
            [
                (Step::Submit, StepState::Succeeded),
                (Step::Provision, StepState::Succeeded),
                (Step::NodePools, StepState::Succeeded),
                (Step::Connect, StepState::Running),
            ]
        );
        let error = create.error.as_ref().unwrap();
        assert_eq!(
            (error.class, error.step),
            (ErrorClass::RateLimited, Step::Provision)
        );

        let delete: OperationDetail = serde_json::from_str(OLD_DETAILS[1]).unwrap();
        assert_eq!(delete.step, Step::Forget);
        assert_eq!(delete.steps[2].state, StepState::Failed);
        let classes: Vec<_> = delete.errors.iter().map(|e| (e.class, e.step)).collect();
        assert_eq!(
            classes,
            [
                (ErrorClass::DependencyPending, Step::Submit),
                (ErrorClass::Unknown, Step::Forget),
            ]
        );

        let update: OperationDetail = serde_json::from_str(OLD_DETAILS[2]).unwrap();
        assert_eq!(update.step, Step::Wait);
        assert!(update.error.is_none());
    }

    /// A detail as first written, before any field with a default existed.
    #[test]
    fn a_minimal_detail_loads_with_defaults() {
        let stored = r#"{"input":{"type":"upgrade_cluster","version":"1.33.1"},"step":"submit","credential_id":"","region":"","retry_deadline_millis":0}"#;
        let detail: OperationDetail = serde_json::from_str(stored).unwrap();
        assert_eq!(detail.step, Step::Submit);
        assert!(detail.steps.is_empty() && detail.error.is_none());
    }

    #[test]
    fn a_detail_with_a_step_this_server_does_not_know_is_refused() {
        let stored = OLD_DETAILS[2].replace(r#""step":"wait""#, r#""step":"drain""#);
        assert!(serde_json::from_str::<OperationDetail>(&stored).is_err());
    }

    fn operation(state: OperationState, detail: OperationDetail) -> Operation {
        Operation {
            id: "op-1".into(),
            resource: "clusters/prod".into(),
            cluster_id: "prod".into(),
            kind: OperationKind::CreateCluster,
            state,
            provider: "acme".into(),
            request_id: String::new(),
            request_token: String::new(),
            request_hash: None,
            requested_by: "admin".into(),
            detail,
            next_run_millis: 0,
            version: 1,
            create_millis: 0,
            update_millis: 0,
        }
    }

    #[test]
    fn only_an_operation_nothing_was_sent_for_can_be_cancelled() {
        let fresh: OperationDetail = serde_json::from_str(
            r#"{"input":{"type":"create_cluster"},"step":"submit","credential_id":"c","region":"r","retry_deadline_millis":0}"#,
        )
        .unwrap();
        for (state, cancellable) in [
            (OperationState::Pending, true),
            (OperationState::ErrorRetrying, true),
            (OperationState::Running, false),
            (OperationState::Succeeded, false),
            (OperationState::Failed, false),
            (OperationState::Cancelling, false),
            (OperationState::Cancelled, false),
        ] {
            assert_eq!(
                operation(state, fresh.clone()).cancellable(),
                cancellable,
                "{state:?}"
            );
        }
        let sent = OperationDetail {
            vendor_request_ids: vec!["req-1".into()],
            ..fresh.clone()
        };
        assert!(!operation(OperationState::ErrorRetrying, sent).cancellable());
        let made = OperationDetail {
            vendor_object_id: "c-abc".into(),
            ..fresh.clone()
        };
        assert!(!operation(OperationState::ErrorRetrying, made).cancellable());
        let further = OperationDetail {
            step: Step::Provision,
            ..fresh
        };
        assert!(!operation(OperationState::ErrorRetrying, further).cancellable());
    }

    #[test]
    fn each_kind_has_its_steps_in_order() {
        use OperationKind::*;
        use Step::*;
        let table: [(OperationKind, &[Step]); 9] = [
            (CreateCluster, &[Submit, Provision, NodePools, Connect]),
            (DeleteCluster, &[Submit, Wait, Forget]),
            (UpgradeCluster, &[Submit, Wait]),
            (CreateNodePool, &[Submit, Wait]),
            (UpdateNodePool, &[Submit, Wait]),
            (DeleteNodePool, &[Submit, Wait]),
            (AddNodes, &[Submit, Wait]),
            (RemoveNodes, &[Submit, Wait]),
            (RenewPullSecret, &[Renew, Revoke]),
        ];
        for (kind, steps) in table {
            assert_eq!(steps_of(kind), steps, "{kind:?}");
        }
    }

    #[test]
    fn kinds_and_states_have_their_stored_names_and_round_trip() {
        use OperationKind::*;
        let kinds = [
            (CreateCluster, "CREATE_CLUSTER"),
            (DeleteCluster, "DELETE_CLUSTER"),
            (UpgradeCluster, "UPGRADE_CLUSTER"),
            (CreateNodePool, "CREATE_NODE_POOL"),
            (UpdateNodePool, "UPDATE_NODE_POOL"),
            (DeleteNodePool, "DELETE_NODE_POOL"),
            (AddNodes, "ADD_NODES"),
            (RemoveNodes, "REMOVE_NODES"),
            (RenewPullSecret, "RENEW_PULL_SECRET"),
        ];
        assert_eq!(kinds.len(), OperationKind::ALL.len());
        for (kind, name) in kinds {
            assert_eq!(kind.as_str(), name);
            assert_eq!(OperationKind::parse(name), Some(kind));
        }
        let states = [
            (OperationState::Pending, "PENDING", false),
            (OperationState::Running, "RUNNING", false),
            (OperationState::Succeeded, "SUCCEEDED", true),
            (OperationState::ErrorRetrying, "ERROR_RETRYING", false),
            (OperationState::Failed, "FAILED", true),
            (OperationState::Cancelling, "CANCELLING", false),
            (OperationState::Cancelled, "CANCELLED", true),
        ];
        assert_eq!(states.len(), OperationState::ALL.len());
        for (state, name, terminal) in states {
            assert_eq!(state.as_str(), name);
            assert_eq!(OperationState::parse(name), Some(state));
            assert_eq!(state.is_terminal(), terminal, "{state:?}");
        }
        assert_eq!(OperationKind::parse("create_cluster"), None);
        assert_eq!(OperationState::parse("running"), None);
    }
}
