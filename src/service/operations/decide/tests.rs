//! Each step's decisions, fed observations one by one. Expected outcomes and their wording are
//! written out here, not derived from the code under test.

use super::*;
use crate::adapters::{ErrorClass, VendorError};
use crate::kube::drain::DrainOutcome;

// ---- builders -------------------------------------------------------------------------------

fn cluster(state: VendorClusterState, raw: &str, version: &str) -> VendorCluster {
    VendorCluster {
        id: "c-abc".into(),
        name: "prod".into(),
        state,
        raw_state: raw.into(),
        kubernetes_version: version.into(),
        region: "cn-hangzhou".into(),
    }
}

fn pool(
    id: &str,
    name: &str,
    state: VendorNodePoolState,
    raw: &str,
    desired: i32,
) -> VendorNodePool {
    VendorNodePool {
        id: id.into(),
        name: name.into(),
        desired_size: desired,
        state,
        raw_state: raw.into(),
        ..VendorNodePool::default()
    }
}

fn vendor_error(class: ErrorClass) -> VendorError {
    VendorError::new(
        class,
        "ack",
        "DescribeClusterDetail",
        "Some.Code",
        "what the vendor said",
    )
    .with_request_id("req-7")
    .with_status(503)
}

fn failed_at_vendor(message: &str) -> Outcome {
    Outcome::Fail(StepFailure {
        class: ErrorClass::Unknown,
        code: "VendorFailed".into(),
        message: message.into(),
        call: None,
        retry_after: None,
        terminal: true,
    })
}

fn vendor_call_failed(class: ErrorClass) -> Outcome {
    Outcome::Fail(StepFailure {
        class,
        code: "Some.Code".into(),
        message: "what the vendor said".into(),
        call: Some(crate::service::operations::VendorCall {
            vendor: "ack",
            operation: "DescribeClusterDetail",
            request_id: "req-7".into(),
            http_status: 503,
        }),
        retry_after: None,
        terminal: false,
    })
}

fn wait(text: &str) -> Outcome {
    Outcome::Wait(text.into())
}

fn done(text: &str) -> Outcome {
    Outcome::Done(text.into())
}

const ALL_CLUSTER_STATES: [VendorClusterState; 7] = [
    VendorClusterState::Creating,
    VendorClusterState::Running,
    VendorClusterState::Updating,
    VendorClusterState::Deleting,
    VendorClusterState::Failed,
    VendorClusterState::Deleted,
    VendorClusterState::Other,
];

const ALL_POOL_STATES: [VendorNodePoolState; 7] = [
    VendorNodePoolState::Creating,
    VendorNodePoolState::Running,
    VendorNodePoolState::Scaling,
    VendorNodePoolState::Updating,
    VendorNodePoolState::Deleting,
    VendorNodePoolState::Failed,
    VendorNodePoolState::Deleted,
];

// ---- vendor tasks ---------------------------------------------------------------------------

#[test]
fn a_succeeded_task_lets_the_step_look_at_the_object() {
    assert_eq!(after_task(&TaskStatus::Succeeded), None);
}

#[test]
fn a_running_task_waits_with_its_stage() {
    let running = TaskStatus::Running {
        stage: "CreateClusterInstances".into(),
        raw_state: "running".into(),
    };
    assert_eq!(
        after_task(&running),
        Some(wait("vendor task running: CreateClusterInstances"))
    );
}

#[test]
fn a_failed_task_fails_the_step_for_good() {
    let error = VendorError::new(
        ErrorClass::Timeout,
        "ack",
        "DescribeTaskInfo",
        "TaskFailed",
        "instances did not start",
    )
    .with_request_id("req-9");
    let Some(Outcome::Fail(failure)) = after_task(&TaskStatus::Failed(error)) else {
        panic!("a failed task must fail the step");
    };
    assert!(
        failure.terminal,
        "a retryable class must not make it retried"
    );
    assert_eq!(failure.class, ErrorClass::Timeout);
    assert_eq!(failure.code, "TaskFailed");
    assert_eq!(failure.message, "instances did not start");
    assert_eq!(failure.request_id(), "req-9");
}

// ---- create: submit, provision ---------------------------------------------------------------

#[test]
fn a_create_reuses_the_cluster_an_earlier_attempt_made_in_any_state() {
    assert_eq!(reuse_cluster(None), None);
    for state in ALL_CLUSTER_STATES {
        assert_eq!(
            reuse_cluster(Some(cluster(state, "x", ""))),
            Some("c-abc".to_string()),
            "{state:?}"
        );
    }
}

#[test]
fn provisioning_goes_on_once_the_cluster_runs() {
    let running = cluster(VendorClusterState::Running, "running", "1.33.1");
    assert_eq!(after_provision(&running), Outcome::Next(Step::NodePools));
}

#[test]
fn provisioning_fails_when_the_vendor_reports_the_cluster_failed_or_gone() {
    assert_eq!(
        after_provision(&cluster(VendorClusterState::Failed, "failed", "")),
        failed_at_vendor("the vendor reports the cluster as \"failed\"")
    );
    assert_eq!(
        after_provision(&cluster(VendorClusterState::Deleted, "deleted", "")),
        failed_at_vendor("the vendor reports the cluster as \"deleted\"")
    );
}

#[test]
fn provisioning_waits_through_every_other_state() {
    for (state, raw) in [
        (VendorClusterState::Creating, "initial"),
        (VendorClusterState::Updating, "updating"),
        (VendorClusterState::Deleting, "deleting"),
        (VendorClusterState::Other, "somethingNew"),
    ] {
        assert_eq!(
            after_provision(&cluster(state, raw, "")),
            wait(&format!(
                "the vendor is creating the cluster (state \"{raw}\")"
            )),
            "{state:?}"
        );
    }
}

// ---- create: node_pools ----------------------------------------------------------------------

#[test]
fn spec_pools_are_skipped_when_none_are_wanted_or_the_provider_makes_none() {
    assert_eq!(
        spec_pools_needed(0, true),
        Some(Outcome::Next(Step::Connect))
    );
    assert_eq!(
        spec_pools_needed(2, false),
        Some(Outcome::Next(Step::Connect))
    );
    assert_eq!(
        spec_pools_needed(0, false),
        Some(Outcome::Next(Step::Connect))
    );
    assert_eq!(spec_pools_needed(1, true), None);
}

#[test]
fn each_spec_pool_is_matched_by_name_and_judged_by_its_state() {
    let existing = [
        pool("np-1", "web", VendorNodePoolState::Running, "active", 3),
        pool("np-2", "batch", VendorNodePoolState::Scaling, "scaling", 2),
        pool("np-3", "gpu", VendorNodePoolState::Failed, "failed", 1),
    ];
    assert_eq!(spec_pool("web", &existing), SpecPool::Ready);
    assert_eq!(
        spec_pool("batch", &existing),
        SpecPool::Pending("batch (scaling)".into())
    );
    let SpecPool::Failed(failure) = spec_pool("gpu", &existing) else {
        panic!("a failed pool fails the step");
    };
    assert_eq!(
        Outcome::Fail(failure),
        failed_at_vendor("node pool \"gpu\" failed at the vendor")
    );
    assert_eq!(spec_pool("infra", &existing), SpecPool::Missing);
    // Matched by name, never by id.
    assert_eq!(spec_pool("np-1", &existing), SpecPool::Missing);
}

#[test]
fn a_spec_pool_in_any_state_but_running_or_failed_is_waited_for() {
    for state in ALL_POOL_STATES {
        let judged = spec_pool("web", &[pool("np-1", "web", state, "raw", 1)]);
        let expected = match state {
            VendorNodePoolState::Running => SpecPool::Ready,
            VendorNodePoolState::Failed => SpecPool::Failed(StepFailure::vendor_reports_failed(
                "node pool \"web\" failed at the vendor",
            )),
            _ => SpecPool::Pending("web (raw)".into()),
        };
        assert_eq!(judged, expected, "{state:?}");
    }
}

#[test]
fn node_pools_go_on_when_every_pool_runs_and_wait_otherwise() {
    assert_eq!(after_spec_pools(&[]), Outcome::Next(Step::Connect));
    assert_eq!(
        after_spec_pools(&["batch (scaling)".into(), created_pool("infra")]),
        wait("waiting for node pools: batch (scaling), infra (created)")
    );
}

// ---- create: connect -------------------------------------------------------------------------

#[test]
fn connect_uses_the_kubeconfig_it_got() {
    assert_eq!(
        after_kubeconfig(Ok::<_, VendorError>("apiVersion: v1")),
        Ok("apiVersion: v1")
    );
    assert_eq!(connected(), done("the cluster is running and connected"));
}

#[test]
fn connect_waits_while_the_endpoint_is_opening() {
    let pending = VendorError::new(
        ErrorClass::DependencyPending,
        "tke",
        "DescribeClusterKubeconfig",
        "",
        "the public endpoint is Creating",
    );
    assert_eq!(
        after_kubeconfig::<String>(Err(pending)),
        Err(wait(
            "waiting for the vendor to open the API endpoint: the public endpoint is Creating"
        ))
    );
}

#[test]
fn connect_fails_with_the_vendors_error_otherwise() {
    for class in [
        ErrorClass::CredentialsForbidden,
        ErrorClass::VendorNotFound,
        ErrorClass::RateLimited,
        ErrorClass::Unsupported,
    ] {
        assert_eq!(
            after_kubeconfig::<String>(Err(vendor_error(class))),
            Err(vendor_call_failed(class)),
            "{class:?}"
        );
    }
}

// ---- delete ----------------------------------------------------------------------------------

#[test]
fn deleting_a_cluster_the_vendor_never_made_only_forgets_it() {
    assert_eq!(before_delete(""), Some(Outcome::Next(Step::Forget)));
    assert_eq!(before_delete("c-abc"), None);
}

#[test]
fn a_delete_request_waits_or_finds_the_cluster_already_gone() {
    assert_eq!(after_delete_request(Ok(())), Outcome::Next(Step::Wait));
    assert_eq!(
        after_delete_request(Err(vendor_error(ErrorClass::VendorNotFound))),
        Outcome::Next(Step::Forget)
    );
    for class in [
        ErrorClass::RateLimited,
        ErrorClass::CleanupBlocked,
        ErrorClass::CredentialsInvalid,
    ] {
        assert_eq!(
            after_delete_request(Err(vendor_error(class))),
            vendor_call_failed(class),
            "{class:?}"
        );
    }
}

#[test]
fn a_delete_is_waited_out_until_the_cluster_is_gone() {
    assert_eq!(
        after_delete_wait(Err(vendor_error(ErrorClass::VendorNotFound))),
        Outcome::Next(Step::Forget)
    );
    assert_eq!(
        after_delete_wait(Err(vendor_error(ErrorClass::VendorUnavailable))),
        vendor_call_failed(ErrorClass::VendorUnavailable)
    );
    for state in ALL_CLUSTER_STATES {
        let observed = cluster(state, "raw", "");
        let expected = match state {
            VendorClusterState::Deleted => Outcome::Next(Step::Forget),
            VendorClusterState::Failed => {
                failed_at_vendor("the vendor reports the cluster as \"raw\"")
            }
            _ => wait("the vendor is deleting the cluster (state \"raw\")"),
        };
        assert_eq!(after_delete_wait(Ok(&observed)), expected, "{state:?}");
    }
}

#[test]
fn forgetting_a_cluster_already_forgotten_is_done() {
    let forgotten = done("deleted at the vendor and forgotten");
    assert_eq!(after_forget(Ok(())).unwrap(), forgotten);
    let gone = Error::NotFound {
        kind: "cluster",
        id: "prod".into(),
    };
    assert_eq!(after_forget(Err(gone)).unwrap(), forgotten);
    let Err(Error::Internal(detail)) = after_forget(Err(Error::Internal("db down".into()))) else {
        panic!("other errors go back to the worker");
    };
    assert_eq!(detail, "db down");
}

// ---- upgrade ---------------------------------------------------------------------------------

#[test]
fn versions_compare_on_their_core() {
    assert!(same_version("1.33.1-aliyun.1", "1.33.1"));
    assert!(same_version("v1.33.1+rke2r1", "1.33.1"));
    assert!(same_version("1.33.1", "v1.33.1+rke2r1"));
    assert!(!same_version("1.32.1-aliyun.1", "1.33.1"));
    assert!(!same_version("1.33.10", "1.33.1"));
    assert!(!same_version("", "1.33.1"));
}

#[test]
fn an_upgrade_is_asked_for_only_when_the_cluster_is_not_there_yet() {
    let at = |version| cluster(VendorClusterState::Running, "running", version);
    assert!(upgrade_needed(&at("1.32.1-aliyun.1"), "1.33.1"));
    assert!(upgrade_needed(&at(""), "1.33.1"));
    assert!(!upgrade_needed(&at("1.33.1-aliyun.1"), "1.33.1"));
}

#[test]
fn an_upgrade_is_done_when_the_cluster_runs_the_version() {
    assert_eq!(
        after_upgrade(
            &cluster(VendorClusterState::Running, "running", "v1.33.1+rke2r1"),
            "1.33.1"
        ),
        done("upgraded to 1.33.1")
    );
}

#[test]
fn an_upgrade_waits_while_the_version_or_the_state_is_not_there() {
    assert_eq!(
        after_upgrade(
            &cluster(VendorClusterState::Running, "running", "1.32.1"),
            "1.33.1"
        ),
        wait(
            "the vendor is upgrading the cluster to 1.33.1 (state \"running\", version \"1.32.1\")"
        )
    );
    // The right version on a cluster still updating is not done yet.
    assert_eq!(
        after_upgrade(
            &cluster(VendorClusterState::Updating, "upgrading", "1.33.1"),
            "1.33.1"
        ),
        wait(
            "the vendor is upgrading the cluster to 1.33.1 (state \"upgrading\", version \"1.33.1\")"
        )
    );
}

#[test]
fn an_upgrade_fails_when_the_vendor_reports_the_cluster_failed() {
    assert_eq!(
        after_upgrade(
            &cluster(VendorClusterState::Failed, "failed", "1.32.1"),
            "1.33.1"
        ),
        failed_at_vendor("the vendor reports the cluster failed")
    );
}

// ---- node pool operations: submit ------------------------------------------------------------

#[test]
fn a_pool_create_reuses_the_pool_of_its_name() {
    let pools = [pool(
        "np-1",
        "web",
        VendorNodePoolState::Creating,
        "initial",
        0,
    )];
    assert_eq!(reuse_pool(&pools, "web"), Some("np-1".into()));
    assert_eq!(reuse_pool(&pools, "np-1"), None);
    assert_eq!(reuse_pool(&[], "web"), None);
}

#[test]
fn a_pool_update_asks_for_target_sizes() {
    let input = OperationInput::UpdateNodePool {
        pool_id: "np-1".into(),
        desired_size: Some(5),
        min_size: None,
        max_size: Some(9),
        autoscaling: Some(false),
    };
    assert_eq!(
        resize_of(&input),
        Some(NodePoolResize {
            desired_size: Some(5),
            min_size: None,
            max_size: Some(9),
            autoscaling: Some(false),
        })
    );
    assert_eq!(
        resize_of(&OperationInput::DeleteNodePool {
            pool_id: "np-1".into()
        }),
        None
    );
}

#[test]
fn a_pool_delete_request_finds_the_pool_already_gone() {
    assert_eq!(after_pool_delete_request(Ok(())), Outcome::Next(Step::Wait));
    assert_eq!(
        after_pool_delete_request(Err(vendor_error(ErrorClass::VendorNotFound))),
        Outcome::Next(Step::Wait)
    );
    assert_eq!(
        after_pool_delete_request(Err(vendor_error(ErrorClass::QuotaExceeded))),
        vendor_call_failed(ErrorClass::QuotaExceeded)
    );
}

#[test]
fn a_drain_that_left_pods_behind_fails_the_removal_for_a_retry() {
    let incomplete = DrainEvent::Done {
        evicted: 3,
        skipped: 1,
        blocked: 2,
        failed: 1,
        complete: false,
    };
    let failure = after_drain_event("node-a", &incomplete).expect("an incomplete drain fails");
    assert_eq!(failure.class, ErrorClass::DependencyPending);
    assert_eq!(failure.code, "DrainIncomplete");
    assert_eq!(
        failure.message,
        "node node-a: 2 pods blocked by disruption budgets, 1 failed"
    );
    assert!(failure.retryable());

    let complete = DrainEvent::Done {
        evicted: 3,
        skipped: 1,
        blocked: 0,
        failed: 0,
        complete: true,
    };
    assert_eq!(after_drain_event("node-a", &complete), None);
    let evicted = DrainEvent::Pod {
        namespace: "default".into(),
        name: "web-1".into(),
        outcome: DrainOutcome::Evicted,
        message: String::new(),
    };
    assert_eq!(after_drain_event("node-a", &evicted), None);
}

// ---- node pool operations: wait --------------------------------------------------------------

fn every_pool_input() -> Vec<OperationInput> {
    vec![
        OperationInput::CreateNodePool {
            spec: String::new(),
            name: "web".into(),
        },
        OperationInput::UpdateNodePool {
            pool_id: "np-1".into(),
            desired_size: Some(5),
            min_size: None,
            max_size: None,
            autoscaling: None,
        },
        OperationInput::DeleteNodePool {
            pool_id: "np-1".into(),
        },
        OperationInput::AddNodes {
            pool_id: "np-1".into(),
            instance_ids: vec!["i-1".into()],
        },
        OperationInput::RemoveNodes {
            pool_id: "np-1".into(),
            node_names: vec!["node-a".into()],
            skip_drain: false,
            release_instances: true,
        },
    ]
}

#[test]
fn the_pool_waited_on_is_the_one_made_or_the_one_named() {
    let inputs = every_pool_input();
    assert_eq!(target_pool(&inputs[0], "np-new"), Some("np-new"));
    for input in &inputs[1..] {
        assert_eq!(target_pool(input, "np-new"), Some("np-1"), "{input:?}");
    }
    for input in [
        OperationInput::CreateCluster,
        OperationInput::DeleteCluster,
        OperationInput::UpgradeCluster {
            version: "1.33.1".into(),
        },
    ] {
        assert_eq!(target_pool(&input, "np-new"), None, "{input:?}");
    }
}

#[test]
fn a_pool_reported_deleted_is_not_live() {
    let pools = [
        pool("np-1", "web", VendorNodePoolState::Deleted, "deleted", 0),
        pool(
            "np-2",
            "batch",
            VendorNodePoolState::Deleting,
            "deleting",
            0,
        ),
    ];
    assert_eq!(live_pool(&pools, "np-1"), None);
    assert_eq!(
        live_pool(&pools, "np-2").map(|p| p.id.as_str()),
        Some("np-2")
    );
    assert_eq!(live_pool(&pools, "np-3"), None);
}

#[test]
fn a_deleted_pool_is_done_for_a_delete_and_a_failure_for_anything_else() {
    for input in every_pool_input() {
        let expected = match input {
            OperationInput::DeleteNodePool { .. } => done("node pool deleted"),
            _ => failed_at_vendor("node pool \"np-1\" is gone"),
        };
        assert_eq!(after_pool_wait(&input, "np-1", None), expected, "{input:?}");
    }
}

#[test]
fn a_failed_pool_fails_every_pool_operation() {
    let failed = pool("np-1", "web", VendorNodePoolState::Failed, "failed", 3);
    for input in every_pool_input() {
        assert_eq!(
            after_pool_wait(&input, "np-1", Some(&failed)),
            failed_at_vendor("node pool state \"failed\""),
            "{input:?}"
        );
    }
}

#[test]
fn a_running_pool_ends_creates_adds_and_removals() {
    let running = pool("np-1", "web", VendorNodePoolState::Running, "active", 3);
    for input in every_pool_input() {
        let expected = match input {
            // Still there: a delete waits until it is gone.
            OperationInput::DeleteNodePool { .. } => {
                wait("waiting for node pool np-1 (state \"active\", desired 3)")
            }
            // Asked for 5, the vendor keeps 3: not yet.
            OperationInput::UpdateNodePool { .. } => {
                wait("waiting for node pool np-1 (state \"active\", desired 3)")
            }
            _ => done("node pool np-1 is active with 3 nodes"),
        };
        assert_eq!(
            after_pool_wait(&input, "np-1", Some(&running)),
            expected,
            "{input:?}"
        );
    }
}

#[test]
fn a_resize_ends_when_the_vendor_keeps_the_new_size() {
    let resize = |desired_size| OperationInput::UpdateNodePool {
        pool_id: "np-1".into(),
        desired_size,
        min_size: Some(1),
        max_size: Some(9),
        autoscaling: None,
    };
    let at_5 = pool("np-1", "web", VendorNodePoolState::Running, "active", 5);
    assert_eq!(
        after_pool_wait(&resize(Some(5)), "np-1", Some(&at_5)),
        done("node pool np-1 is active with 5 nodes")
    );
    let scaling = pool("np-1", "web", VendorNodePoolState::Scaling, "scaling", 5);
    assert_eq!(
        after_pool_wait(&resize(Some(5)), "np-1", Some(&scaling)),
        wait("waiting for node pool np-1 (state \"scaling\", desired 5)")
    );
    // Only bounds changed: a running pool is settled whatever its size.
    let at_3 = pool("np-1", "web", VendorNodePoolState::Running, "active", 3);
    assert_eq!(
        after_pool_wait(&resize(None), "np-1", Some(&at_3)),
        done("node pool np-1 is active with 3 nodes")
    );
}

#[test]
fn a_pool_in_any_other_state_is_waited_for() {
    for state in [
        VendorNodePoolState::Creating,
        VendorNodePoolState::Scaling,
        VendorNodePoolState::Updating,
        VendorNodePoolState::Deleting,
    ] {
        let busy = pool("np-1", "web", state, "busy", 2);
        for input in every_pool_input() {
            assert_eq!(
                after_pool_wait(&input, "np-1", Some(&busy)),
                wait("waiting for node pool np-1 (state \"busy\", desired 2)"),
                "{state:?} {input:?}"
            );
        }
    }
}
