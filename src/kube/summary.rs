//! Plain summaries of the common kinds, as operators look at them. Built from k8s-openapi types
//! in `convert.rs`; the layers above see only these.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_millis: Option<i64>,
    pub last_update_millis: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSummary {
    pub name: String,
    pub uid: String,
    pub roles: Vec<String>,
    pub ready: bool,
    pub conditions: Vec<Condition>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    /// (type, address)
    pub addresses: Vec<(String, String)>,
    pub zone: String,
    pub region: String,
    pub instance_type: String,
    pub kubelet_version: String,
    pub container_runtime_version: String,
    pub os_image: String,
    pub kernel_version: String,
    pub architecture: String,
    pub capacity: BTreeMap<String, String>,
    pub allocatable: BTreeMap<String, String>,
    pub pod_count: i32,
    pub labels: BTreeMap<String, String>,
    pub provider_id: String,
    pub create_millis: Option<i64>,
}

/// The kinds with a typed workload summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
    CronJob,
    Pod,
}

impl WorkloadKind {
    /// The controllers listed when no kind is given (pods have their own RPCs).
    pub const CONTROLLERS: [WorkloadKind; 6] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Pod => "Pod",
        }
    }

    pub fn scalable(self) -> bool {
        matches!(
            self,
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::ReplicaSet
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSummary {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    pub conditions: Vec<Condition>,
    pub images: Vec<String>,
    pub selector: String,
    pub owner: Option<ObjectRef>,
    pub create_millis: Option<i64>,
    pub generation: i64,
    pub observed_generation: i64,
    pub paused: bool,
    pub suspended: bool,
    pub schedule: String,
    pub last_schedule_millis: Option<i64>,
    pub succeeded: i32,
    pub failed: i32,
    pub completion_millis: Option<i64>,
    pub resource_version: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContainerState {
    #[default]
    Unknown,
    Waiting,
    Running,
    Terminated,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSummary {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub ready: bool,
    pub started: bool,
    pub restart_count: i32,
    pub state: ContainerState,
    pub reason: String,
    pub message: String,
    pub started_millis: Option<i64>,
    pub finished_millis: Option<i64>,
    pub exit_code: i32,
    pub last_termination_reason: String,
    pub last_exit_code: i32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSummary {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub phase: String,
    pub status: String,
    pub ready: bool,
    pub ready_containers: i32,
    pub total_containers: i32,
    pub restarts: i32,
    pub node_name: String,
    pub pod_ip: String,
    pub pod_ips: Vec<String>,
    pub host_ip: String,
    pub containers: Vec<ContainerSummary>,
    pub init_containers: Vec<ContainerSummary>,
    pub labels: BTreeMap<String, String>,
    pub owner: Option<ObjectRef>,
    pub create_millis: Option<i64>,
    pub start_millis: Option<i64>,
    pub qos_class: String,
    pub conditions: Vec<Condition>,
    pub deletion_millis: Option<i64>,
    pub resource_version: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventSummary {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub involved_object: ObjectRef,
    pub source: String,
    pub count: i32,
    pub first_millis: Option<i64>,
    /// Latest occurrence: series.lastObservedTime, lastTimestamp, eventTime or creation.
    pub last_millis: Option<i64>,
    pub action: String,
    pub resource_version: String,
}

impl EventSummary {
    /// The order ListEvents answers in: newest occurrence first, then the later write.
    pub fn newest_first(a: &EventSummary, b: &EventSummary) -> std::cmp::Ordering {
        b.last_millis
            .cmp(&a.last_millis)
            .then_with(|| b.resource_version.cmp(&a.resource_version))
    }
}
