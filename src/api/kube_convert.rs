//! Conversions between Kubernetes summaries (service layer) and protobuf messages.

use bytes::{Bytes, BytesMut};
use prost::Message;

use super::{convert::timestamp, pb};
use crate::service::{
    workloads::resources::{ApplyOutcome, ApplyResult, Propagation, Resource},
    workloads::{
        Condition, ContainerState, ContainerSummary, EventSummary, ListedPod, NodeSummary,
        ObjectRef, PodSelection, PodSummary, Taint, WorkloadKind, WorkloadSummary,
    },
};

/// The one conversion of a request's choice of pods (the `pods` oneof of ListPods and
/// StreamWorkloadLogs): a workload's pods, a label selector's, or every pod.
pub fn pod_selection(
    workload: Option<pb::WorkloadReference>,
    label_selector: Option<String>,
) -> PodSelection {
    match (workload, label_selector) {
        (Some(w), _) => PodSelection::Workload {
            kind: kind_from_pb(w.kind),
            name: w.name,
        },
        (None, Some(selector)) => PodSelection::Labels(selector),
        (None, None) => PodSelection::All,
    }
}

pub fn kind_from_pb(kind: i32) -> Option<WorkloadKind> {
    Some(match pb::WorkloadKind::try_from(kind).ok()? {
        pb::WorkloadKind::Unspecified => return None,
        pb::WorkloadKind::Deployment => WorkloadKind::Deployment,
        pb::WorkloadKind::StatefulSet => WorkloadKind::StatefulSet,
        pb::WorkloadKind::DaemonSet => WorkloadKind::DaemonSet,
        pb::WorkloadKind::ReplicaSet => WorkloadKind::ReplicaSet,
        pb::WorkloadKind::Job => WorkloadKind::Job,
        pb::WorkloadKind::CronJob => WorkloadKind::CronJob,
        pb::WorkloadKind::Pod => WorkloadKind::Pod,
    })
}

fn kind_to_pb(kind: WorkloadKind) -> pb::WorkloadKind {
    match kind {
        WorkloadKind::Deployment => pb::WorkloadKind::Deployment,
        WorkloadKind::StatefulSet => pb::WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet => pb::WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet => pb::WorkloadKind::ReplicaSet,
        WorkloadKind::Job => pb::WorkloadKind::Job,
        WorkloadKind::CronJob => pb::WorkloadKind::CronJob,
        WorkloadKind::Pod => pb::WorkloadKind::Pod,
    }
}

pub fn propagation_from_pb(p: i32) -> Propagation {
    match pb::PropagationPolicy::try_from(p) {
        Ok(pb::PropagationPolicy::Foreground) => Propagation::Foreground,
        Ok(pb::PropagationPolicy::Background) => Propagation::Background,
        Ok(pb::PropagationPolicy::Orphan) => Propagation::Orphan,
        _ => Propagation::Default,
    }
}

fn condition(c: Condition) -> pb::Condition {
    pb::Condition {
        r#type: c.type_,
        status: c.status,
        reason: c.reason,
        message: c.message,
        last_transition_time: c.last_transition_millis.map(timestamp),
        last_update_time: c.last_update_millis.map(timestamp),
    }
}

fn object_ref(o: ObjectRef) -> pb::ObjectReference {
    pb::ObjectReference {
        api_version: o.api_version,
        kind: o.kind,
        namespace: o.namespace,
        name: o.name,
        uid: o.uid,
    }
}

fn taint(t: Taint) -> pb::Taint {
    pb::Taint {
        key: t.key,
        value: t.value,
        effect: t.effect,
    }
}

impl From<NodeSummary> for pb::Node {
    fn from(n: NodeSummary) -> Self {
        pb::Node {
            name: n.name,
            uid: n.uid,
            roles: n.roles,
            ready: n.ready,
            conditions: n.conditions.into_iter().map(condition).collect(),
            taints: n.taints.into_iter().map(taint).collect(),
            unschedulable: n.unschedulable,
            addresses: n
                .addresses
                .into_iter()
                .map(|(r#type, address)| pb::NodeAddress { r#type, address })
                .collect(),
            zone: n.zone,
            region: n.region,
            instance_type: n.instance_type,
            kubelet_version: n.kubelet_version,
            container_runtime_version: n.container_runtime_version,
            os_image: n.os_image,
            kernel_version: n.kernel_version,
            architecture: n.architecture,
            capacity: n.capacity.into_iter().collect(),
            allocatable: n.allocatable.into_iter().collect(),
            pod_count: n.pod_count,
            labels: n.labels.into_iter().collect(),
            provider_id: n.provider_id,
            create_time: n.create_millis.map(timestamp),
            node_pool_id: String::new(),
        }
    }
}

impl From<WorkloadSummary> for pb::Workload {
    fn from(w: WorkloadSummary) -> Self {
        pb::Workload {
            kind: kind_to_pb(w.kind).into(),
            namespace: w.namespace,
            name: w.name,
            uid: w.uid,
            labels: w.labels.into_iter().collect(),
            annotations: w.annotations.into_iter().collect(),
            desired_replicas: w.desired,
            ready_replicas: w.ready,
            updated_replicas: w.updated,
            available_replicas: w.available,
            conditions: w.conditions.into_iter().map(condition).collect(),
            images: w.images,
            selector: w.selector,
            owner: w.owner.map(object_ref),
            create_time: w.create_millis.map(timestamp),
            generation: w.generation,
            observed_generation: w.observed_generation,
            paused: w.paused,
            suspended: w.suspended,
            schedule: w.schedule,
            last_schedule_time: w.last_schedule_millis.map(timestamp),
            succeeded: w.succeeded,
            failed: w.failed,
            completion_time: w.completion_millis.map(timestamp),
            resource_version: w.resource_version,
        }
    }
}

fn container(c: ContainerSummary) -> pb::ContainerStatus {
    let state = match c.state {
        ContainerState::Unknown => pb::ContainerState::Unspecified,
        ContainerState::Waiting => pb::ContainerState::Waiting,
        ContainerState::Running => pb::ContainerState::Running,
        ContainerState::Terminated => pb::ContainerState::Terminated,
    };
    pb::ContainerStatus {
        name: c.name,
        image: c.image,
        image_id: c.image_id,
        ready: c.ready,
        started: c.started,
        restart_count: c.restart_count,
        state: state.into(),
        reason: c.reason,
        message: c.message,
        started_time: c.started_millis.map(timestamp),
        finished_time: c.finished_millis.map(timestamp),
        exit_code: c.exit_code,
        last_termination_reason: c.last_termination_reason,
        last_exit_code: c.last_exit_code,
    }
}

impl From<PodSummary> for pb::Pod {
    fn from(p: PodSummary) -> Self {
        pb::Pod {
            namespace: p.namespace,
            name: p.name,
            uid: p.uid,
            phase: p.phase,
            status: p.status,
            ready: p.ready,
            ready_containers: p.ready_containers,
            total_containers: p.total_containers,
            restarts: p.restarts,
            node_name: p.node_name,
            pod_ip: p.pod_ip,
            pod_ips: p.pod_ips,
            host_ip: p.host_ip,
            containers: p.containers.into_iter().map(container).collect(),
            init_containers: p.init_containers.into_iter().map(container).collect(),
            labels: p.labels.into_iter().collect(),
            owner: p.owner.map(object_ref),
            create_time: p.create_millis.map(timestamp),
            start_time: p.start_millis.map(timestamp),
            qos_class: p.qos_class,
            conditions: p.conditions.into_iter().map(condition).collect(),
            deletion_time: p.deletion_millis.map(timestamp),
            resource_version: p.resource_version,
        }
    }
}

/// How the watch caches keep each pod (the wiring hands this to them): as a page of ListPods
/// sends it.
pub fn pod_wire(p: PodSummary) -> Vec<u8> {
    pb::Pod::from(p).encode_to_vec()
}

/// A page of pods as `ListPodsResponse.encoded_pods`, in order: cached pods as they are kept,
/// listed pods encoded now.
pub fn encoded_pods(pods: Vec<ListedPod>) -> Bytes {
    // A pod's tag and length take at most 4 bytes (a pod is under 2 MiB); a listed pod is
    // guessed at 1 KiB.
    let size = pods
        .iter()
        .map(|p| match p {
            ListedPod::Cached(p) => p.wire().len() + 4,
            ListedPod::Listed(_) => 1024,
        })
        .sum();
    let mut page = BytesMut::with_capacity(size);
    for pod in pods {
        match pod {
            ListedPod::Cached(p) => pb::append_entry(&mut page, p.wire()),
            ListedPod::Listed(p) => pb::append_entry(&mut page, &pod_wire(*p)),
        }
    }
    page.freeze()
}

impl From<EventSummary> for pb::Event {
    fn from(e: EventSummary) -> Self {
        pb::Event {
            namespace: e.namespace,
            name: e.name,
            uid: e.uid,
            r#type: e.type_,
            reason: e.reason,
            message: e.message,
            involved_object: Some(object_ref(e.involved_object)),
            source: e.source,
            count: e.count,
            first_time: e.first_millis.map(timestamp),
            last_time: e.last_millis.map(timestamp),
            action: e.action,
            resource_version: e.resource_version,
        }
    }
}

impl From<Resource> for pb::Resource {
    fn from(r: Resource) -> Self {
        pb::Resource {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
            uid: r.uid,
            labels: r.labels.into_iter().collect(),
            annotations: r.annotations.into_iter().collect(),
            resource_version: r.resource_version,
            create_time: r.create_millis.map(timestamp),
            json: r.json,
        }
    }
}

impl From<ApplyResult> for pb::ApplyResult {
    fn from(r: ApplyResult) -> Self {
        let outcome = match r.outcome {
            ApplyOutcome::Created => pb::ApplyOutcome::Created,
            ApplyOutcome::Configured => pb::ApplyOutcome::Configured,
            ApplyOutcome::Unchanged => pb::ApplyOutcome::Unchanged,
            ApplyOutcome::Failed => pb::ApplyOutcome::Failed,
        };
        pb::ApplyResult {
            document_index: r.document_index,
            object: Some(pb::ObjectReference {
                api_version: r.api_version,
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
                uid: String::new(),
            }),
            outcome: outcome.into(),
            message: r.message,
            resource_version: r.resource_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::kube::cached_pod::{CachedPod, PodInterner};

    fn summary(name: &str) -> PodSummary {
        PodSummary {
            namespace: "shop".into(),
            name: name.into(),
            phase: "Running".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            containers: vec![ContainerSummary {
                name: "app".into(),
                restart_count: 3,
                started_millis: Some(1_700_000_000_123),
                ..ContainerSummary::default()
            }],
            create_millis: Some(1_700_000_000_000),
            ..PodSummary::default()
        }
    }

    /// A page mixing pods kept encoded by a cache and pods listed now reads back, in order, as
    /// the pods converted one by one.
    #[test]
    fn cached_and_listed_pods_read_back_in_order() {
        let mut shared = PodInterner::default();
        let mut cached = |name| {
            ListedPod::Cached(Arc::new(CachedPod::new(
                summary(name),
                &mut shared,
                pod_wire,
            )))
        };
        let page = vec![
            cached("a"),
            ListedPod::Listed(Box::new(summary("b"))),
            cached("c"),
        ];
        let response = pb::ListPodsResponse {
            encoded_pods: encoded_pods(page),
            ..Default::default()
        };
        let decoded = pb::ListPodsResponse::decode(response.encode_to_vec().as_slice()).unwrap();
        let expected: Vec<pb::Pod> = ["a", "b", "c"].map(|n| summary(n).into()).into();
        assert_eq!(decoded.pods, expected);
        assert_eq!(decoded.pods[1].containers[0].restart_count, 3);
        assert!(encoded_pods(Vec::new()).is_empty());
    }
}
