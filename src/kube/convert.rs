//! k8s-openapi objects → the summaries in `summary.rs`.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::{CronJob, Job},
        core::v1::{self as core, Event, Node, Pod},
    },
    apimachinery::pkg::apis::meta::v1::{self as meta, LabelSelector, ObjectMeta},
};

use super::{pod_view::PodView, summary::*};

pub fn millis(t: &meta::Time) -> i64 {
    t.0.as_millisecond()
}

fn micro_millis(t: &meta::MicroTime) -> i64 {
    t.0.as_millisecond()
}

/// Text fields that are `String` on some kinds and `Option<String>` on others.
trait Text {
    fn text(&self) -> &str;
}

impl Text for String {
    fn text(&self) -> &str {
        self
    }
}

impl Text for Option<String> {
    fn text(&self) -> &str {
        self.as_deref().unwrap_or_default()
    }
}

fn condition(
    type_: &dyn Text,
    status: &dyn Text,
    reason: Option<&String>,
    message: Option<&String>,
    transition: Option<&meta::Time>,
    update: Option<&meta::Time>,
) -> Condition {
    Condition {
        type_: type_.text().to_string(),
        status: status.text().to_string(),
        reason: reason.cloned().unwrap_or_default(),
        message: message.cloned().unwrap_or_default(),
        last_transition_millis: transition.map(millis),
        last_update_millis: update.map(millis),
    }
}

fn owner(meta: &ObjectMeta) -> Option<ObjectRef> {
    let owners = meta.owner_references.as_ref()?;
    let controller = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())?;
    Some(ObjectRef {
        api_version: controller.api_version.clone(),
        kind: controller.kind.clone(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: controller.name.clone(),
        uid: controller.uid.clone(),
    })
}

/// A label selector in the string form `kubectl` and list calls take.
pub fn selector_string(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            other => format!("{} {other} ({values})", expr.key),
        });
    }
    parts.join(",")
}

fn images(spec: Option<&core::PodSpec>) -> Vec<String> {
    spec.map(|s| {
        s.containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect()
    })
    .unwrap_or_default()
}

fn base(kind: WorkloadKind, meta: &ObjectMeta) -> WorkloadSummary {
    WorkloadSummary {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        desired: 0,
        ready: 0,
        updated: 0,
        available: 0,
        conditions: Vec::new(),
        images: Vec::new(),
        selector: String::new(),
        owner: owner(meta),
        create_millis: meta.creation_timestamp.as_ref().map(millis),
        generation: meta.generation.unwrap_or_default(),
        observed_generation: 0,
        paused: false,
        suspended: false,
        schedule: String::new(),
        last_schedule_millis: None,
        succeeded: 0,
        failed: 0,
        completion_millis: None,
        resource_version: meta.resource_version.clone().unwrap_or_default(),
    }
}

pub fn deployment(d: &Deployment) -> WorkloadSummary {
    let mut w = base(WorkloadKind::Deployment, &d.metadata);
    {
        let spec = &d.spec;
        w.desired = spec.replicas.unwrap_or(1);
        w.images = images(spec.template.spec.as_ref());
        w.selector = selector_string(Some(&spec.selector));
        w.paused = spec.paused.unwrap_or(false);
    }
    if let Some(status) = &d.status {
        w.ready = status.ready_replicas.unwrap_or(0);
        w.updated = status.updated_replicas.unwrap_or(0);
        w.available = status.available_replicas.unwrap_or(0);
        w.observed_generation = status.observed_generation.unwrap_or(0);
        w.conditions = status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_ref(),
                    c.message.as_ref(),
                    c.last_transition_time.as_ref(),
                    c.last_update_time.as_ref(),
                )
            })
            .collect();
    }
    w
}

pub fn stateful_set(s: &StatefulSet) -> WorkloadSummary {
    let mut w = base(WorkloadKind::StatefulSet, &s.metadata);
    {
        let spec = &s.spec;
        w.desired = spec.replicas.unwrap_or(1);
        w.images = images(spec.template.spec.as_ref());
        w.selector = selector_string(Some(&spec.selector));
    }
    if let Some(status) = &s.status {
        w.ready = status.ready_replicas.unwrap_or(0);
        w.updated = status.updated_replicas.unwrap_or(0);
        w.available = status.available_replicas.unwrap_or(0);
        w.observed_generation = status.observed_generation.unwrap_or(0);
        w.conditions = status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_ref(),
                    c.message.as_ref(),
                    c.last_transition_time.as_ref(),
                    None,
                )
            })
            .collect();
    }
    w
}

pub fn daemon_set(d: &DaemonSet) -> WorkloadSummary {
    let mut w = base(WorkloadKind::DaemonSet, &d.metadata);
    {
        let spec = &d.spec;
        w.images = images(spec.template.spec.as_ref());
        w.selector = selector_string(Some(&spec.selector));
    }
    if let Some(status) = &d.status {
        w.desired = status.desired_number_scheduled;
        w.ready = status.number_ready;
        w.updated = status.updated_number_scheduled.unwrap_or(0);
        w.available = status.number_available.unwrap_or(0);
        w.observed_generation = status.observed_generation.unwrap_or(0);
        w.conditions = status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_ref(),
                    c.message.as_ref(),
                    c.last_transition_time.as_ref(),
                    None,
                )
            })
            .collect();
    }
    w
}

pub fn replica_set(r: &ReplicaSet) -> WorkloadSummary {
    let mut w = base(WorkloadKind::ReplicaSet, &r.metadata);
    {
        let spec = &r.spec;
        w.desired = spec.replicas.unwrap_or(1);
        w.images = images(spec.template.as_ref().and_then(|t| t.spec.as_ref()));
        w.selector = selector_string(Some(&spec.selector));
    }
    if let Some(status) = &r.status {
        w.ready = status.ready_replicas.unwrap_or(0);
        w.available = status.available_replicas.unwrap_or(0);
        w.updated = status.fully_labeled_replicas.unwrap_or(0);
        w.observed_generation = status.observed_generation.unwrap_or(0);
        w.conditions = status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_ref(),
                    c.message.as_ref(),
                    c.last_transition_time.as_ref(),
                    None,
                )
            })
            .collect();
    }
    w
}

pub fn job(j: &Job) -> WorkloadSummary {
    let mut w = base(WorkloadKind::Job, &j.metadata);
    if let Some(spec) = &j.spec {
        w.desired = spec.parallelism.unwrap_or(1);
        w.images = images(spec.template.spec.as_ref());
        w.selector = selector_string(spec.selector.as_ref());
        w.suspended = spec.suspend.unwrap_or(false);
    }
    if let Some(status) = &j.status {
        w.ready = status.ready.unwrap_or(0);
        w.available = status.active.unwrap_or(0);
        w.succeeded = status.succeeded.unwrap_or(0);
        w.failed = status.failed.unwrap_or(0);
        w.completion_millis = status.completion_time.as_ref().map(millis);
        w.conditions = status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_ref(),
                    c.message.as_ref(),
                    c.last_transition_time.as_ref(),
                    c.last_probe_time.as_ref(),
                )
            })
            .collect();
    }
    w
}

pub fn cron_job(c: &CronJob) -> WorkloadSummary {
    let mut w = base(WorkloadKind::CronJob, &c.metadata);
    {
        let spec = &c.spec;
        w.schedule = spec.schedule.clone();
        w.suspended = spec.suspend.unwrap_or(false);
        w.images = images(
            spec.job_template
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref()),
        );
    }
    if let Some(status) = &c.status {
        w.available = status.active.as_ref().map_or(0, |a| a.len() as i32);
        w.last_schedule_millis = status.last_schedule_time.as_ref().map(millis);
    }
    w
}

fn container(status: &core::ContainerStatus) -> ContainerSummary {
    let mut c = ContainerSummary {
        name: status.name.clone(),
        image: status.image.clone(),
        image_id: status.image_id.clone(),
        ready: status.ready,
        started: status.started.unwrap_or(false),
        restart_count: status.restart_count,
        ..ContainerSummary::default()
    };
    if let Some(state) = &status.state {
        if let Some(running) = &state.running {
            c.state = ContainerState::Running;
            c.started_millis = running.started_at.as_ref().map(millis);
        } else if let Some(waiting) = &state.waiting {
            c.state = ContainerState::Waiting;
            c.reason = waiting.reason.clone().unwrap_or_default();
            c.message = waiting.message.clone().unwrap_or_default();
        } else if let Some(done) = &state.terminated {
            c.state = ContainerState::Terminated;
            c.reason = done.reason.clone().unwrap_or_default();
            c.message = done.message.clone().unwrap_or_default();
            c.exit_code = done.exit_code;
            c.started_millis = done.started_at.as_ref().map(millis);
            c.finished_millis = done.finished_at.as_ref().map(millis);
        }
    }
    if let Some(last) = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
    {
        c.last_termination_reason = last.reason.clone().unwrap_or_default();
        c.last_exit_code = last.exit_code;
    }
    c
}

/// What a pod summary is made of, borrowed from a whole `Pod` or from a `PodView`.
struct PodParts<'a> {
    meta: &'a ObjectMeta,
    node_name: Option<&'a String>,
    /// How many containers the spec declares; `None` without a spec.
    declared_containers: Option<usize>,
    status: Option<&'a core::PodStatus>,
}

pub fn pod(p: &Pod) -> PodSummary {
    pod_summary(PodParts {
        meta: &p.metadata,
        node_name: p.spec.as_ref().and_then(|s| s.node_name.as_ref()),
        declared_containers: p.spec.as_ref().map(|s| s.containers.len()),
        status: p.status.as_ref(),
    })
}

/// The same summary as [`pod`] gives for the whole object.
pub fn pod_view(p: &PodView) -> PodSummary {
    pod_summary(PodParts {
        meta: &p.metadata,
        node_name: p.spec.as_ref().and_then(|s| s.node_name.as_ref()),
        declared_containers: p.spec.as_ref().map(|s| s.containers.len()),
        status: p.status.as_ref(),
    })
}

fn pod_summary(p: PodParts<'_>) -> PodSummary {
    let meta = p.meta;
    let status = p.status;
    let containers: Vec<ContainerSummary> = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(container).collect())
        .unwrap_or_default();
    let total = p.declared_containers.unwrap_or(containers.len()) as i32;
    let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    PodSummary {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        status: display_status(&p, &phase, &containers),
        phase,
        ready,
        ready_containers: containers.iter().filter(|c| c.ready).count() as i32,
        total_containers: total,
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        node_name: p.node_name.cloned().unwrap_or_default(),
        pod_ip: status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        pod_ips: status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| ips.iter().map(|ip| ip.ip.clone()).collect())
            .unwrap_or_default(),
        host_ip: status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        init_containers: status
            .and_then(|s| s.init_container_statuses.as_ref())
            .map(|cs| cs.iter().map(container).collect())
            .unwrap_or_default(),
        containers,
        labels: meta.labels.clone().unwrap_or_default(),
        owner: owner(meta),
        create_millis: meta.creation_timestamp.as_ref().map(millis),
        start_millis: status.and_then(|s| s.start_time.as_ref()).map(millis),
        qos_class: status.and_then(|s| s.qos_class.clone()).unwrap_or_default(),
        conditions: status
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        condition(
                            &c.type_,
                            &c.status,
                            c.reason.as_ref(),
                            c.message.as_ref(),
                            c.last_transition_time.as_ref(),
                            c.last_probe_time.as_ref(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        deletion_millis: meta.deletion_timestamp.as_ref().map(millis),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
    }
}

/// What `kubectl get pods` shows in STATUS.
fn display_status(p: &PodParts<'_>, phase: &str, containers: &[ContainerSummary]) -> String {
    if p.meta.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    if let Some(reason) = p.status.and_then(|s| s.reason.clone()) {
        return reason;
    }
    if let Some(waiting) = containers
        .iter()
        .find(|c| c.state == ContainerState::Waiting && !c.reason.is_empty())
    {
        return waiting.reason.clone();
    }
    if let Some(done) = containers
        .iter()
        .find(|c| c.state == ContainerState::Terminated && !c.reason.is_empty())
        && phase != "Running"
    {
        return done.reason.clone();
    }
    if phase.is_empty() {
        "Unknown".into()
    } else {
        phase.to_string()
    }
}

pub fn node(n: &Node, pod_count: i32) -> NodeSummary {
    let meta = &n.metadata;
    let labels = meta.labels.clone().unwrap_or_default();
    let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
    let roles: Vec<String> = labels
        .keys()
        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    let status = n.status.as_ref();
    let conditions: Vec<Condition> = status
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    condition(
                        &c.type_,
                        &c.status,
                        c.reason.as_ref(),
                        c.message.as_ref(),
                        c.last_transition_time.as_ref(),
                        c.last_heartbeat_time.as_ref(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let info = status.and_then(|s| s.node_info.as_ref());
    let quantities =
        |q: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            q.map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default()
        };
    NodeSummary {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        roles,
        ready: conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        conditions,
        taints: n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .map(|ts| {
                ts.iter()
                    .map(|t| Taint {
                        key: t.key.clone(),
                        value: t.value.clone().unwrap_or_default(),
                        effect: t.effect.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        unschedulable: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        addresses: status
            .and_then(|s| s.addresses.as_ref())
            .map(|a| {
                a.iter()
                    .map(|a| (a.type_.clone(), a.address.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        zone: label("topology.kubernetes.io/zone"),
        region: label("topology.kubernetes.io/region"),
        instance_type: label("node.kubernetes.io/instance-type"),
        kubelet_version: info.map(|i| i.kubelet_version.clone()).unwrap_or_default(),
        container_runtime_version: info
            .map(|i| i.container_runtime_version.clone())
            .unwrap_or_default(),
        os_image: info.map(|i| i.os_image.clone()).unwrap_or_default(),
        kernel_version: info.map(|i| i.kernel_version.clone()).unwrap_or_default(),
        architecture: info.map(|i| i.architecture.clone()).unwrap_or_default(),
        capacity: quantities(status.and_then(|s| s.capacity.as_ref())),
        allocatable: quantities(status.and_then(|s| s.allocatable.as_ref())),
        pod_count,
        provider_id: n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default(),
        labels,
        create_millis: meta.creation_timestamp.as_ref().map(millis),
    }
}

pub fn event(e: &Event) -> EventSummary {
    let meta = &e.metadata;
    let o = &e.involved_object;
    let last = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(micro_millis)
        .or_else(|| e.last_timestamp.as_ref().map(millis))
        .or_else(|| e.event_time.as_ref().map(micro_millis))
        .or_else(|| meta.creation_timestamp.as_ref().map(millis));
    EventSummary {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        type_: e.type_.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        message: e.message.clone().unwrap_or_default(),
        involved_object: ObjectRef {
            api_version: o.api_version.clone().unwrap_or_default(),
            kind: o.kind.clone().unwrap_or_default(),
            namespace: o.namespace.clone().unwrap_or_default(),
            name: o.name.clone().unwrap_or_default(),
            uid: o.uid.clone().unwrap_or_default(),
        },
        source: e
            .reporting_component
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
            .unwrap_or_default(),
        count: e
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(e.count)
            .unwrap_or(1),
        first_millis: e
            .first_timestamp
            .as_ref()
            .map(millis)
            .or_else(|| e.event_time.as_ref().map(micro_millis)),
        last_millis: last,
        action: e.action.clone().unwrap_or_default(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    //! Small objects made with builders, one rule each: what `kubectl get` would show, taken
    //! from the Kubernetes documentation of each field, not from the code under test.

    use k8s_openapi::{
        api::{
            apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus},
            batch::v1::{CronJobSpec, CronJobStatus, JobSpec, JobStatus, JobTemplateSpec},
            core::v1::{
                Container, ContainerState as State, ContainerStateRunning,
                ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, EventSeries,
                NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, ObjectReference,
                PodCondition, PodSpec, PodStatus, PodTemplateSpec, Taint as K8sTaint,
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
        let view: PodView =
            serde_json::from_value(serde_json::to_value(&p).expect("json")).expect("view");
        assert_eq!(pod_view(&view), pod(&p));
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
}
