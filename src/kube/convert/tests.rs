//! Small objects made with builders, one rule each: what `kubectl get` would show, taken
//! from the Kubernetes documentation of each field, not from the code under test.

use k8s_openapi::{
    api::{
        apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus},
        batch::v1::{CronJobSpec, CronJobStatus, JobSpec, JobStatus, JobTemplateSpec},
        core::v1::{
            Container, ContainerState as State, ContainerStateRunning, ContainerStateTerminated,
            ContainerStateWaiting, ContainerStatus, EventSeries, NodeAddress, NodeCondition,
            NodeSpec, NodeStatus, NodeSystemInfo, ObjectReference, PodCondition, PodSpec,
            PodStatus, PodTemplateSpec, Taint as K8sTaint,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelectorRequirement, MicroTime, OwnerReference, Time},
    },
    jiff::Timestamp,
};

use super::*;

fn at(millis: i64) -> Time {
    Time(Timestamp::from_millisecond(millis).expect("time"))
}

fn micro_at(millis: i64) -> MicroTime {
    MicroTime(Timestamp::from_millisecond(millis).expect("time"))
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("shop".into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectMeta::default()
    }
}

fn owner_ref(kind: &str, name: &str, controller: Option<bool>) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        controller,
        ..OwnerReference::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn template(images: &[&str]) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: None,
        spec: Some(PodSpec {
            containers: images
                .iter()
                .enumerate()
                .map(|(i, image)| Container {
                    name: format!("c{i}"),
                    image: Some(image.to_string()),
                    ..Container::default()
                })
                .collect(),
            ..PodSpec::default()
        }),
    }
}

/// A pod in namespace `shop` with the containers its spec declares; status parts added one
/// call at a time.
struct PodBuilder(Pod);

impl PodBuilder {
    fn new(name: &str, containers: &[&str]) -> Self {
        PodBuilder(Pod {
            metadata: meta(name),
            spec: Some(PodSpec {
                node_name: Some("kwok-a1".into()),
                containers: containers
                    .iter()
                    .map(|c| Container {
                        name: c.to_string(),
                        ..Container::default()
                    })
                    .collect(),
                ..PodSpec::default()
            }),
            status: Some(PodStatus::default()),
        })
    }

    fn status(&mut self) -> &mut PodStatus {
        self.0.status.get_or_insert_with(PodStatus::default)
    }

    fn phase(mut self, phase: &str) -> Self {
        self.status().phase = Some(phase.into());
        self
    }

    fn reason(mut self, reason: &str) -> Self {
        self.status().reason = Some(reason.into());
        self
    }

    fn condition(mut self, type_: &str, status: &str) -> Self {
        self.status()
            .conditions
            .get_or_insert_with(Vec::new)
            .push(PodCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(format!("{type_}Reason")),
                message: Some(format!("{type_} is {status}")),
                last_transition_time: Some(at(2_000)),
                last_probe_time: None,
                ..PodCondition::default()
            });
        self
    }

    fn container(mut self, name: &str, ready: bool, restarts: i32, state: State) -> Self {
        self.status()
            .container_statuses
            .get_or_insert_with(Vec::new)
            .push(ContainerStatus {
                name: name.into(),
                image: format!("example.com/{name}:1"),
                image_id: format!("sha256:{name}"),
                ready,
                restart_count: restarts,
                started: Some(ready),
                state: Some(state),
                ..ContainerStatus::default()
            });
        self
    }

    /// The last container added ended before, with `reason` and `exit_code`.
    fn last_terminated(mut self, reason: &str, exit_code: i32) -> Self {
        let status = self
            .status()
            .container_statuses
            .as_mut()
            .and_then(|cs| cs.last_mut())
            .expect("a container first");
        status.last_state = Some(terminated(reason, exit_code));
        self
    }

    fn owned_by(mut self, owners: Vec<OwnerReference>) -> Self {
        self.0.metadata.owner_references = Some(owners);
        self
    }

    fn deleting(mut self) -> Self {
        self.0.metadata.deletion_timestamp = Some(at(9_000));
        self
    }

    fn build(self) -> Pod {
        self.0
    }
}

fn running(started: i64) -> State {
    State {
        running: Some(ContainerStateRunning {
            started_at: Some(at(started)),
        }),
        ..State::default()
    }
}

fn waiting(reason: &str) -> State {
    State {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: Some(format!("{reason} message")),
        }),
        ..State::default()
    }
}

fn terminated(reason: &str, exit_code: i32) -> State {
    State {
        terminated: Some(ContainerStateTerminated {
            reason: Some(reason.into()),
            exit_code,
            started_at: Some(at(1_000)),
            finished_at: Some(at(3_000)),
            ..ContainerStateTerminated::default()
        }),
        ..State::default()
    }
}

#[test]
fn a_running_pod_counts_ready_containers_and_sums_restarts() {
    let p = PodBuilder::new("web", &["app", "envoy"])
        .phase("Running")
        .condition("PodScheduled", "True")
        .condition("Ready", "True")
        .container("app", true, 3, running(1_500))
        .container("envoy", false, 2, running(1_600))
        .build();
    let s = pod(&p);
    assert_eq!((s.namespace.as_str(), s.name.as_str()), ("shop", "web"));
    assert_eq!(s.status, "Running");
    assert!(s.ready);
    assert_eq!((s.ready_containers, s.total_containers), (1, 2));
    assert_eq!(s.restarts, 5);
    assert_eq!(s.node_name, "kwok-a1");
    assert_eq!(s.containers[0].state, ContainerState::Running);
    assert_eq!(s.containers[0].started_millis, Some(1_500));
    assert_eq!(s.containers[0].image_id, "sha256:app");
    let ready = &s.conditions[1];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "True")
    );
    assert_eq!(ready.reason, "ReadyReason");
    assert_eq!(ready.message, "Ready is True");
    assert_eq!(ready.last_transition_millis, Some(2_000));
    assert_eq!(ready.last_update_millis, None);
}

#[test]
fn a_pod_is_ready_only_with_a_true_ready_condition() {
    let not_ready = PodBuilder::new("a", &["app"])
        .phase("Running")
        .condition("Ready", "False")
        .container("app", true, 0, running(1))
        .build();
    assert!(!pod(&not_ready).ready, "Ready=False");
    let no_condition = PodBuilder::new("b", &["app"])
        .phase("Running")
        .condition("ContainersReady", "True")
        .build();
    assert!(!pod(&no_condition).ready, "no Ready condition");
    let unknown = PodBuilder::new("c", &["app"])
        .condition("Ready", "Unknown")
        .build();
    assert!(!pod(&unknown).ready, "Ready=Unknown");
}

#[test]
fn status_shows_the_waiting_reason_and_the_last_termination() {
    let p = PodBuilder::new("crashy", &["app"])
        .phase("Running")
        .container("app", false, 7, waiting("CrashLoopBackOff"))
        .last_terminated("Error", 137)
        .build();
    let s = pod(&p);
    assert_eq!(s.status, "CrashLoopBackOff");
    let c = &s.containers[0];
    assert_eq!(c.state, ContainerState::Waiting);
    assert_eq!(c.reason, "CrashLoopBackOff");
    assert_eq!(c.message, "CrashLoopBackOff message");
    assert_eq!(c.last_termination_reason, "Error");
    assert_eq!(c.last_exit_code, 137);
    assert_eq!(s.restarts, 7);
}

#[test]
fn a_terminated_container_names_the_status_unless_the_pod_still_runs() {
    let done = PodBuilder::new("job-x", &["app"])
        .phase("Succeeded")
        .container("app", false, 0, terminated("Completed", 0))
        .build();
    let s = pod(&done);
    assert_eq!(s.status, "Completed");
    let c = &s.containers[0];
    assert_eq!(c.state, ContainerState::Terminated);
    assert_eq!(
        (c.exit_code, c.started_millis, c.finished_millis),
        (0, Some(1_000), Some(3_000))
    );
    // One sidecar ended, the pod is still Running: kubectl shows Running.
    let partly = PodBuilder::new("web", &["app", "init-ish"])
        .phase("Running")
        .container("app", true, 0, running(1))
        .container("init-ish", false, 0, terminated("Completed", 0))
        .build();
    assert_eq!(pod(&partly).status, "Running");
}

#[test]
fn deletion_wins_over_the_pod_reason_which_wins_over_the_phase() {
    let evicted = PodBuilder::new("e", &["app"])
        .phase("Failed")
        .reason("Evicted")
        .build();
    assert_eq!(pod(&evicted).status, "Evicted");
    let s = pod(&PodBuilder::new("e", &["app"])
        .phase("Failed")
        .reason("Evicted")
        .deleting()
        .build());
    assert_eq!(s.status, "Terminating");
    assert_eq!(s.deletion_millis, Some(9_000));
    let pending = PodBuilder::new("p", &["app"]).phase("Pending").build();
    assert_eq!(pod(&pending).status, "Pending");
}

#[test]
fn a_pod_with_nothing_filled_in_is_unknown_and_empty() {
    let s = pod(&Pod::default());
    assert_eq!(s.status, "Unknown");
    assert_eq!(s.name, "");
    assert_eq!(s.phase, "");
    assert!(!s.ready);
    assert_eq!(
        (s.ready_containers, s.total_containers, s.restarts),
        (0, 0, 0)
    );
    assert!(s.containers.is_empty() && s.conditions.is_empty());
    assert_eq!(s.owner, None);
    assert_eq!(
        (s.create_millis, s.start_millis, s.deletion_millis),
        (None, None, None)
    );
    // Without a spec the containers are counted from their statuses.
    let mut p = PodBuilder::new("nospec", &[])
        .container("a", true, 0, running(1))
        .container("b", true, 0, State::default())
        .build();
    p.spec = None;
    let s = pod(&p);
    assert_eq!((s.ready_containers, s.total_containers), (2, 2));
    assert_eq!(s.node_name, "");
    assert_eq!(s.containers[1].state, ContainerState::Unknown);
}

#[test]
fn the_owner_is_the_controller_else_the_first_reference() {
    let p = PodBuilder::new("web-abc", &["app"])
        .owned_by(vec![
            owner_ref("ConfigMap", "not-me", None),
            owner_ref("ReplicaSet", "web-5d8f", Some(true)),
        ])
        .build();
    let owner = pod(&p).owner.expect("owner");
    assert_eq!(
        owner,
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            namespace: "shop".into(),
            name: "web-5d8f".into(),
            uid: "uid-web-5d8f".into(),
        }
    );
    let p = PodBuilder::new("x", &["app"])
        .owned_by(vec![
            owner_ref("Job", "first", Some(false)),
            owner_ref("Job", "second", None),
        ])
        .build();
    assert_eq!(pod(&p).owner.expect("owner").name, "first");
    let p = PodBuilder::new("x", &["app"]).owned_by(Vec::new()).build();
    assert_eq!(pod(&p).owner, None, "an empty list names no owner");
    for kind in ["ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Node"] {
        let p = PodBuilder::new("x", &["app"])
            .owned_by(vec![owner_ref(kind, "o", Some(true))])
            .build();
        assert_eq!(pod(&p).owner.expect("owner").kind, kind);
    }
}

#[test]
fn the_pod_view_gives_the_same_summary_as_the_whole_pod() {
    let mut p = PodBuilder::new("web", &["app", "envoy"])
        .phase("Running")
        .condition("Ready", "True")
        .container("app", true, 1, running(5_000))
        .container("envoy", false, 4, waiting("ImagePullBackOff"))
        .owned_by(vec![owner_ref("ReplicaSet", "web-1", Some(true))])
        .build();
    p.metadata.labels = Some(labels(&[("app", "web")]));
    // Whole seconds: Kubernetes writes `Time` at second precision.
    p.metadata.creation_timestamp = Some(at(100_000));
    p.metadata.resource_version = Some("42".into());
    let view: crate::kube::pod_view::PodView =
        serde_json::from_value(serde_json::to_value(&p).expect("json")).expect("view");
    assert_eq!(crate::kube::pod_view::summary(&view), pod(&p));
    assert_eq!(pod(&p).status, "ImagePullBackOff");
}

fn node_with(labels_: &[(&str, &str)], conditions: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some("kwok-a1".into()),
            uid: Some("uid-node".into()),
            labels: Some(labels(labels_)),
            creation_timestamp: Some(at(7)),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(vec![K8sTaint {
                key: "dedicated".into(),
                value: Some("infra".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }]),
            unschedulable: Some(true),
            provider_id: Some("kwok://kwok-a1".into()),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(
                conditions
                    .iter()
                    .map(|(t, s)| NodeCondition {
                        type_: t.to_string(),
                        status: s.to_string(),
                        last_heartbeat_time: Some(at(11)),
                        last_transition_time: Some(at(10)),
                        ..NodeCondition::default()
                    })
                    .collect(),
            ),
            addresses: Some(vec![NodeAddress {
                type_: "InternalIP".into(),
                address: "10.0.0.1".into(),
            }]),
            capacity: Some([("cpu".to_string(), Quantity("4".into()))].into()),
            allocatable: Some([("cpu".to_string(), Quantity("3800m".into()))].into()),
            node_info: Some(NodeSystemInfo {
                kubelet_version: "v1.33.1".into(),
                architecture: "amd64".into(),
                ..NodeSystemInfo::default()
            }),
            ..NodeStatus::default()
        }),
    }
}

#[test]
fn a_node_reads_roles_readiness_taints_and_topology() {
    let n = node_with(
        &[
            ("node-role.kubernetes.io/control-plane", ""),
            ("node-role.kubernetes.io/", "ignored"),
            ("topology.kubernetes.io/zone", "zone-a"),
            ("topology.kubernetes.io/region", "region-1"),
            ("node.kubernetes.io/instance-type", "small"),
        ],
        &[("MemoryPressure", "False"), ("Ready", "True")],
    );
    let s = node(&n, 12);
    assert_eq!(s.name, "kwok-a1");
    assert_eq!(s.roles, ["control-plane"]);
    assert!(s.ready);
    assert_eq!(s.conditions[1].last_update_millis, Some(11), "heartbeat");
    assert_eq!(
        s.taints,
        [Taint {
            key: "dedicated".into(),
            value: "infra".into(),
            effect: "NoSchedule".into()
        }]
    );
    assert!(s.unschedulable);
    assert_eq!(
        (s.zone.as_str(), s.region.as_str(), s.instance_type.as_str()),
        ("zone-a", "region-1", "small")
    );
    assert_eq!(
        s.addresses,
        [("InternalIP".to_string(), "10.0.0.1".to_string())]
    );
    assert_eq!(s.capacity.get("cpu").map(String::as_str), Some("4"));
    assert_eq!(s.allocatable.get("cpu").map(String::as_str), Some("3800m"));
    assert_eq!(
        (s.kubelet_version.as_str(), s.architecture.as_str()),
        ("v1.33.1", "amd64")
    );
    assert_eq!(s.provider_id, "kwok://kwok-a1");
    assert_eq!((s.pod_count, s.create_millis), (12, Some(7)));
}

#[test]
fn a_node_without_a_true_ready_condition_or_status_is_not_ready() {
    assert!(!node(&node_with(&[], &[("Ready", "False")]), 0).ready);
    assert!(!node(&node_with(&[], &[("Ready", "Unknown")]), 0).ready);
    let bare = node(&Node::default(), 0);
    assert!(!bare.ready);
    assert!(bare.roles.is_empty() && bare.taints.is_empty() && bare.conditions.is_empty());
    assert!(!bare.unschedulable);
    assert_eq!(
        (bare.zone.as_str(), bare.kubelet_version.as_str()),
        ("", "")
    );
    assert!(bare.capacity.is_empty());
}

fn deployment_with(replicas: Option<i32>, status: Option<DeploymentStatus>) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            generation: Some(3),
            ..meta("web")
        },
        spec: DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "web")])),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["frontend".into(), "edge".into()]),
                }]),
            },
            template: template(&["example.com/web:1", "example.com/envoy:2"]),
            paused: Some(true),
            ..DeploymentSpec::default()
        },
        status,
    }
}

#[test]
fn a_deployment_reads_its_counts_conditions_and_selector() {
    let d = deployment_with(
        Some(4),
        Some(DeploymentStatus {
            ready_replicas: Some(2),
            updated_replicas: Some(3),
            available_replicas: Some(1),
            observed_generation: Some(2),
            conditions: Some(vec![DeploymentCondition {
                type_: Some("Progressing".into()),
                status: Some("True".into()),
                reason: Some("NewReplicaSetAvailable".into()),
                last_update_time: Some(at(50)),
                last_transition_time: Some(at(40)),
                ..DeploymentCondition::default()
            }]),
            ..DeploymentStatus::default()
        }),
    );
    let w = deployment(&d);
    assert_eq!(w.kind, WorkloadKind::Deployment);
    assert_eq!((w.desired, w.ready, w.updated, w.available), (4, 2, 3, 1));
    assert_eq!((w.generation, w.observed_generation), (3, 2));
    assert!(w.paused);
    assert_eq!(w.images, ["example.com/web:1", "example.com/envoy:2"]);
    assert_eq!(w.selector, "app=web,tier in (frontend,edge)");
    let c = &w.conditions[0];
    assert_eq!(c.reason, "NewReplicaSetAvailable");
    assert_eq!(
        (c.last_transition_millis, c.last_update_millis),
        (Some(40), Some(50))
    );
}

#[test]
fn a_deployment_without_replicas_wants_one_and_without_status_has_none_ready() {
    let w = deployment(&deployment_with(None, None));
    assert_eq!((w.desired, w.ready, w.updated, w.available), (1, 0, 0, 0));
    assert!(w.conditions.is_empty());
    assert_eq!(w.owner, None);
}

#[test]
fn selectors_render_as_kubectl_takes_them() {
    let expr = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    };
    let selector = LabelSelector {
        match_labels: Some(labels(&[("a", "1"), ("b", "2")])),
        match_expressions: Some(vec![
            expr("env", "NotIn", &["dev", "test"]),
            expr("gpu", "Exists", &[]),
            expr("legacy", "DoesNotExist", &[]),
        ]),
    };
    assert_eq!(
        selector_string(Some(&selector)),
        "a=1,b=2,env notin (dev,test),gpu,!legacy"
    );
    assert_eq!(selector_string(None), "");
    assert_eq!(selector_string(Some(&LabelSelector::default())), "");
}

#[test]
fn a_replica_set_counts_fully_labeled_as_updated_and_a_daemon_set_reads_its_schedule() {
    let r = ReplicaSet {
        metadata: ObjectMeta {
            owner_references: Some(vec![owner_ref("Deployment", "web", Some(true))]),
            ..meta("web-5d8f")
        },
        spec: k8s_openapi::api::apps::v1::ReplicaSetSpec {
            replicas: Some(3),
            selector: LabelSelector::default(),
            template: Some(template(&["example.com/web:1"])),
            ..Default::default()
        },
        status: Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
            replicas: 3,
            ready_replicas: Some(2),
            available_replicas: Some(2),
            fully_labeled_replicas: Some(3),
            ..Default::default()
        }),
    };
    let w = replica_set(&r);
    assert_eq!((w.desired, w.ready, w.updated, w.available), (3, 2, 3, 2));
    assert_eq!(w.owner.map(|o| o.kind), Some("Deployment".to_string()));
    let d = DaemonSet {
        metadata: meta("agent"),
        status: Some(k8s_openapi::api::apps::v1::DaemonSetStatus {
            desired_number_scheduled: 3,
            number_ready: 2,
            updated_number_scheduled: Some(1),
            number_available: Some(2),
            ..Default::default()
        }),
        ..DaemonSet::default()
    };
    let w = daemon_set(&d);
    assert_eq!(w.kind, WorkloadKind::DaemonSet);
    assert_eq!((w.desired, w.ready, w.updated, w.available), (3, 2, 1, 2));
}

#[test]
fn jobs_and_cron_jobs_read_completion_suspension_and_activity() {
    let j = Job {
        metadata: meta("migrate"),
        spec: Some(JobSpec {
            suspend: Some(true),
            template: template(&["example.com/migrate:1"]),
            ..JobSpec::default()
        }),
        status: Some(JobStatus {
            active: Some(1),
            succeeded: Some(2),
            failed: Some(1),
            completion_time: Some(at(77)),
            ..JobStatus::default()
        }),
    };
    let w = job(&j);
    assert_eq!(w.desired, 1, "no parallelism set: one pod at a time");
    assert!(w.suspended);
    assert_eq!((w.available, w.succeeded, w.failed), (1, 2, 1));
    assert_eq!(w.completion_millis, Some(77));
    assert_eq!(job(&Job::default()).desired, 0, "no spec: nothing wanted");

    let c = CronJob {
        metadata: meta("nightly"),
        spec: CronJobSpec {
            schedule: "0 3 * * *".into(),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    template: template(&["example.com/backup:1"]),
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        },
        status: Some(CronJobStatus {
            active: Some(vec![ObjectReference::default(), ObjectReference::default()]),
            last_schedule_time: Some(at(88)),
            ..CronJobStatus::default()
        }),
    };
    let w = cron_job(&c);
    assert_eq!(w.schedule, "0 3 * * *");
    assert_eq!(w.images, ["example.com/backup:1"]);
    assert_eq!((w.available, w.last_schedule_millis), (2, Some(88)));
    assert!(!w.suspended);
}

#[test]
fn an_event_prefers_the_series_then_falls_back_in_order() {
    let mut e = Event {
        metadata: ObjectMeta {
            creation_timestamp: Some(at(1)),
            ..meta("web.17a")
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..ObjectReference::default()
        },
        reason: Some("BackOff".into()),
        count: Some(4),
        first_timestamp: Some(at(10)),
        last_timestamp: Some(at(20)),
        event_time: Some(micro_at(30)),
        series: Some(EventSeries {
            count: Some(9),
            last_observed_time: Some(micro_at(40)),
        }),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("kubelet".into()),
            host: None,
        }),
        ..Event::default()
    };
    let s = event(&e);
    assert_eq!(
        (s.count, s.first_millis, s.last_millis),
        (9, Some(10), Some(40))
    );
    assert_eq!(s.source, "kubelet");
    assert_eq!(s.involved_object.kind, "Pod");
    e.series = None;
    e.reporting_component = Some("default-scheduler".into());
    let s = event(&e);
    assert_eq!((s.count, s.last_millis), (4, Some(20)));
    assert_eq!(s.source, "default-scheduler");
    e.last_timestamp = None;
    e.first_timestamp = None;
    assert_eq!(event(&e).last_millis, Some(30));
    assert_eq!(event(&e).first_millis, Some(30));
    e.event_time = None;
    e.count = None;
    let s = event(&e);
    assert_eq!((s.count, s.last_millis), (1, Some(1)));
}
