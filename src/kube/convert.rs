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

use super::summary::*;

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
pub struct PodParts<'a> {
    pub meta: &'a ObjectMeta,
    pub node_name: Option<&'a String>,
    /// How many containers the spec declares; `None` without a spec.
    pub declared_containers: Option<usize>,
    pub status: Option<&'a core::PodStatus>,
}

pub fn pod(p: &Pod) -> PodSummary {
    pod_summary(PodParts {
        meta: &p.metadata,
        node_name: p.spec.as_ref().and_then(|s| s.node_name.as_ref()),
        declared_containers: p.spec.as_ref().map(|s| s.containers.len()),
        status: p.status.as_ref(),
    })
}

pub fn pod_summary(p: PodParts<'_>) -> PodSummary {
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
mod tests;
