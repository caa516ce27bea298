//! The engine's rules once a step has failed or an operation ends, without I/O: whether to try
//! again and when (a capped full-jitter backoff that honours the vendor's hint, within the
//! operation's retry window), what the cluster's state becomes, and the progress shown.

use std::time::Duration;

use crate::service::clusters::ClusterState;

use super::{OperationKind, StepFailure, StepRecord, StepState, steps_of};

/// How long the engine waits between attempts of a failed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry waits up to twice this (full jitter), doubling per attempt.
    pub base: Duration,
    /// No wait is longer, the vendor's hint included.
    pub cap: Duration,
}

/// The longest wait between attempts of a failed step.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

impl Backoff {
    /// The engine's backoff: it starts from the poll interval.
    pub fn from_poll_interval(poll_interval: Duration) -> Self {
        Backoff {
            base: poll_interval,
            cap: BACKOFF_CAP,
        }
    }

    /// The wait before retry number `attempt` (1 = the first retry): a uniformly random share
    /// (`jitter` in [0, 1)) of `base * 2^attempt`, capped; never shorter than the vendor's
    /// `retry_after` (itself capped, so a vendor cannot park an operation for a day).
    pub fn delay(self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.cap);
        let jittered = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
        match retry_after {
            Some(hint) => jittered.max(hint.min(self.cap)),
            None => jittered,
        }
    }
}

/// What follows a failed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Run the step again after this long (the operation is ERROR_RETRYING meanwhile).
    RetryIn(Duration),
    /// The operation fails.
    Final,
}

/// The retry rule: a failure is tried again when it is not final, its class can succeed later,
/// and the operation's retry window (`deadline_millis`) is still open; `attempt` counts the
/// operation's attempts so far (the first is 1).
pub fn on_failure(
    failure: &StepFailure,
    attempt: i32,
    deadline_millis: i64,
    now_millis: i64,
    backoff: Backoff,
    jitter: f64,
) -> AfterFailure {
    if !failure.retryable() || now_millis >= deadline_millis {
        return AfterFailure::Final;
    }
    let attempt = u32::try_from(attempt.max(1)).unwrap_or(1);
    AfterFailure::RetryIn(backoff.delay(attempt, failure.retry_after, jitter))
}

/// The cluster's state once an operation on it has failed for good: a create leaves a failed
/// cluster; a failed delete or upgrade leaves the cluster as it was, running. Node pool
/// operations do not change the cluster's state.
pub fn cluster_state_after_failure(kind: OperationKind) -> Option<ClusterState> {
    match kind {
        OperationKind::CreateCluster => Some(ClusterState::Failed),
        OperationKind::DeleteCluster | OperationKind::UpgradeCluster => Some(ClusterState::Running),
        OperationKind::CreateNodePool
        | OperationKind::UpdateNodePool
        | OperationKind::DeleteNodePool
        | OperationKind::AddNodes
        | OperationKind::RemoveNodes
        | OperationKind::RenewPullSecret => None,
    }
}

/// The cluster's state once an operation on it was cancelled (before anything reached the
/// vendor): a cluster whose create was cancelled will never exist.
pub fn cluster_state_after_cancel(kind: OperationKind) -> Option<ClusterState> {
    (kind == OperationKind::CreateCluster).then_some(ClusterState::Failed)
}

/// The progress shown while an operation runs: the share of its steps that succeeded, below
/// 100 until the operation itself succeeds.
pub fn progress_percent(kind: OperationKind, steps: &[StepRecord]) -> i32 {
    let total = steps_of(kind).len().max(1) as i32;
    let done = steps
        .iter()
        .filter(|s| s.state == StepState::Succeeded)
        .count() as i32;
    (done * 100 / total).min(99)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::{ErrorClass, VendorError};
    use crate::service::operations::Step;

    const SECOND: Duration = Duration::from_secs(1);
    const ENGINE: Backoff = Backoff {
        base: SECOND,
        cap: BACKOFF_CAP,
    };
    /// The largest jitter `fastrand::f64` can give.
    const TOP: f64 = 1.0 - f64::EPSILON;

    fn vendor_failure(class: ErrorClass) -> StepFailure {
        StepFailure::from_vendor(VendorError::new(
            class,
            "acme",
            "DescribeClusters",
            "X",
            "m",
        ))
    }

    #[test]
    fn backoff_is_full_jitter_of_a_doubling_ceiling() {
        assert_eq!(ENGINE.delay(1, None, 0.0), Duration::ZERO);
        assert_eq!(ENGINE.delay(1, None, 0.5), SECOND);
        assert!(ENGINE.delay(1, None, TOP) <= 2 * SECOND);
        assert!(ENGINE.delay(1, None, TOP) > 2 * SECOND - Duration::from_millis(1));
        assert_eq!(ENGINE.delay(2, None, 0.5), 2 * SECOND);
        assert_eq!(ENGINE.delay(3, None, 0.5), 4 * SECOND);
        assert_eq!(ENGINE.delay(4, None, 0.25), 4 * SECOND);
    }

    #[test]
    fn backoff_never_exceeds_its_cap_however_many_attempts() {
        for attempt in [9, 20, 21, 64, u32::MAX] {
            assert_eq!(ENGINE.delay(attempt, None, 1.0), Duration::from_secs(300));
            assert!(ENGINE.delay(attempt, None, TOP) <= Duration::from_secs(300));
        }
        // A huge base saturates instead of overflowing.
        let huge = Backoff {
            base: Duration::MAX,
            cap: Duration::from_secs(7),
        };
        assert_eq!(huge.delay(20, None, 0.5), Duration::from_millis(3500));
    }

    #[test]
    fn backoff_waits_at_least_the_vendors_hint_up_to_the_cap() {
        assert_eq!(ENGINE.delay(1, Some(30 * SECOND), 0.0), 30 * SECOND);
        assert_eq!(ENGINE.delay(1, Some(30 * SECOND), TOP), 30 * SECOND);
        // A jittered wait longer than the hint stands.
        assert_eq!(ENGINE.delay(6, Some(SECOND), 0.5), 32 * SECOND);
        // A hint longer than the cap is cut to it.
        assert_eq!(
            ENGINE.delay(1, Some(Duration::from_secs(86_400)), 0.0),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn backoff_starts_from_the_poll_interval() {
        let backoff = Backoff::from_poll_interval(Duration::from_millis(50));
        assert_eq!(backoff.base, Duration::from_millis(50));
        assert_eq!(backoff.cap, Duration::from_secs(300));
        assert_eq!(backoff.delay(1, None, 0.5), Duration::from_millis(50));
    }

    /// Every class, retried or not, written out by hand.
    #[test]
    fn every_failure_class_is_retried_only_when_it_can_succeed_later() {
        let table = [
            (ErrorClass::CredentialsInvalid, false),
            (ErrorClass::CredentialsForbidden, false),
            (ErrorClass::QuotaExceeded, false),
            (ErrorClass::RateLimited, true),
            (ErrorClass::DependencyBlocked, false),
            (ErrorClass::DependencyPending, true),
            (ErrorClass::CapacityUnavailable, true),
            (ErrorClass::InvalidConfiguration, false),
            (ErrorClass::TransientConfiguration, true),
            (ErrorClass::CleanupBlocked, true),
            (ErrorClass::WebhookBlocking, false),
            (ErrorClass::VendorNotFound, false),
            (ErrorClass::VendorUnavailable, true),
            (ErrorClass::Timeout, true),
            (ErrorClass::Unknown, true),
            (ErrorClass::Unsupported, false),
        ];
        for (class, retried) in table {
            let outcome = on_failure(&vendor_failure(class), 1, 10_000, 5_000, ENGINE, 0.5);
            let expected = if retried {
                AfterFailure::RetryIn(SECOND)
            } else {
                AfterFailure::Final
            };
            assert_eq!(outcome, expected, "{class:?}");
        }
    }

    #[test]
    fn a_final_failure_is_not_retried_even_when_its_class_could_be() {
        let task = StepFailure::task_failed(VendorError::new(
            ErrorClass::Timeout,
            "acme",
            "DescribeTaskInfo",
            "",
            "task failed",
        ));
        assert_eq!(
            on_failure(&task, 1, 10_000, 0, ENGINE, 0.5),
            AfterFailure::Final
        );
        let reported = StepFailure::vendor_reports_failed("node pool state \"failed\"");
        assert_eq!(
            on_failure(&reported, 1, 10_000, 0, ENGINE, 0.5),
            AfterFailure::Final
        );
        let drain = StepFailure::drain_incomplete("n1", 1, 0);
        assert_eq!(
            on_failure(&drain, 1, 10_000, 0, ENGINE, 0.5),
            AfterFailure::RetryIn(SECOND)
        );
    }

    #[test]
    fn nothing_is_retried_once_the_window_has_closed() {
        let throttled = vendor_failure(ErrorClass::RateLimited);
        assert_eq!(
            on_failure(&throttled, 1, 10_000, 9_999, ENGINE, 0.5),
            AfterFailure::RetryIn(SECOND)
        );
        assert_eq!(
            on_failure(&throttled, 1, 10_000, 10_000, ENGINE, 0.5),
            AfterFailure::Final
        );
        assert_eq!(
            on_failure(&throttled, 1, 10_000, 10_001, ENGINE, 0.5),
            AfterFailure::Final
        );
    }

    #[test]
    fn later_attempts_wait_longer_and_the_vendors_hint_counts() {
        let throttled = vendor_failure(ErrorClass::RateLimited);
        assert_eq!(
            on_failure(&throttled, 3, 10_000, 0, ENGINE, 0.5),
            AfterFailure::RetryIn(4 * SECOND)
        );
        // An attempt count below 1 (an operation never claimed) counts as the first.
        for attempt in [0, -5] {
            assert_eq!(
                on_failure(&throttled, attempt, 10_000, 0, ENGINE, 0.5),
                AfterFailure::RetryIn(SECOND)
            );
        }
        let hinted = StepFailure {
            retry_after: Some(20 * SECOND),
            ..throttled
        };
        assert_eq!(
            on_failure(&hinted, 1, 10_000, 0, ENGINE, 0.5),
            AfterFailure::RetryIn(20 * SECOND)
        );
    }

    #[test]
    fn a_failed_operation_leaves_its_cluster_in_a_state_of_its_kind() {
        use OperationKind::*;
        let table = [
            (CreateCluster, Some("FAILED")),
            (DeleteCluster, Some("RUNNING")),
            (UpgradeCluster, Some("RUNNING")),
            (CreateNodePool, None),
            (UpdateNodePool, None),
            (DeleteNodePool, None),
            (AddNodes, None),
            (RemoveNodes, None),
            (RenewPullSecret, None),
        ];
        assert_eq!(table.len(), OperationKind::ALL.len());
        for (kind, state) in table {
            assert_eq!(
                cluster_state_after_failure(kind).map(ClusterState::as_str),
                state,
                "{kind:?}"
            );
            let cancelled = if kind == CreateCluster {
                Some("FAILED")
            } else {
                None
            };
            assert_eq!(
                cluster_state_after_cancel(kind).map(ClusterState::as_str),
                cancelled,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn the_cluster_states_the_engine_writes_have_their_stored_names() {
        for (state, name) in [
            (ClusterState::Provisioning, "PROVISIONING"),
            (ClusterState::Running, "RUNNING"),
            (ClusterState::Failed, "FAILED"),
        ] {
            assert_eq!(state.as_str(), name);
            assert_eq!(ClusterState::parse(name), Some(state));
        }
    }

    fn record(id: Step, state: StepState) -> StepRecord {
        StepRecord {
            id,
            state,
            start_millis: 0,
            end_millis: None,
            message: String::new(),
        }
    }

    #[test]
    fn progress_counts_succeeded_steps_and_stays_below_100() {
        use StepState::*;
        let create = OperationKind::CreateCluster;
        assert_eq!(progress_percent(create, &[]), 0);
        assert_eq!(
            progress_percent(create, &[record(Step::Submit, Running)]),
            0
        );
        assert_eq!(
            progress_percent(
                create,
                &[
                    record(Step::Submit, Succeeded),
                    record(Step::Provision, Running)
                ]
            ),
            25
        );
        let all_four = [
            record(Step::Submit, Succeeded),
            record(Step::Provision, Succeeded),
            record(Step::NodePools, Succeeded),
            record(Step::Connect, Succeeded),
        ];
        assert_eq!(progress_percent(create, &all_four), 99);
        // A failed step does not count.
        assert_eq!(
            progress_percent(
                OperationKind::DeleteCluster,
                &[record(Step::Submit, Succeeded), record(Step::Wait, Failed)]
            ),
            33
        );
        assert_eq!(
            progress_percent(
                OperationKind::AddNodes,
                &[record(Step::Submit, Succeeded), record(Step::Wait, Running)]
            ),
            50
        );
    }
}
