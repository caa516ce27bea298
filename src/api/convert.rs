//! Conversions between service types and protobuf messages.

use prost_types::Timestamp;

use super::pb;
use crate::service::{
    access::kube::KubeAccess,
    clusters::{Cluster, ClusterState, ObservedStatus, Warning},
};

pub fn timestamp(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

impl From<ClusterState> for pb::ClusterState {
    fn from(state: ClusterState) -> Self {
        match state {
            ClusterState::Provisioning => pb::ClusterState::Provisioning,
            ClusterState::Running => pb::ClusterState::Running,
            ClusterState::Updating => pb::ClusterState::Updating,
            ClusterState::Deleting => pb::ClusterState::Deleting,
            ClusterState::Failed => pb::ClusterState::Failed,
            ClusterState::WaitingForAgent => pb::ClusterState::WaitingForAgent,
        }
    }
}

impl From<Warning> for pb::Warning {
    fn from(w: Warning) -> Self {
        pb::Warning {
            code: w.code,
            message: w.message,
        }
    }
}

impl From<ObservedStatus> for pb::ClusterStatus {
    fn from(s: ObservedStatus) -> Self {
        pb::ClusterStatus {
            reachable: s.reachable,
            unreachable_reason: s.unreachable_reason,
            kubernetes_version: s.kubernetes_version,
            node_count: s.node_count,
            ready_node_count: s.ready_node_count,
            last_probe_time: s.last_probe_millis.map(timestamp),
            credential_expire_time: s.credential_expire_millis.map(timestamp),
            warnings: s.warnings.into_iter().map(Into::into).collect(),
            last_transition_time: s.last_transition_millis.map(timestamp),
        }
    }
}

impl From<Cluster> for pb::Cluster {
    fn from(mut c: Cluster) -> Self {
        let observed = std::mem::take(&mut c.status);
        let (mut cluster, permanent) = stored_cluster(c);
        cluster.status = Some(cluster_status(permanent, observed));
        cluster
    }
}

/// A cluster as stored: every field but `status` (`c.status` is not read). Returned beside it
/// are the cluster's permanent warnings (such as insecure TLS), which lead its status's warnings
/// (see [`cluster_status`]).
pub fn stored_cluster(c: Cluster) -> (pb::Cluster, Vec<pb::Warning>) {
    let etag = c.etag();
    let permanent = c.warnings.into_iter().map(Into::into).collect();
    let cluster = pb::Cluster {
        id: c.id,
        display_name: c.display_name,
        labels: c.labels.into_iter().collect(),
        provider: c.provider,
        region: c.region,
        vendor_cluster_id: c.vendor_cluster_id,
        state: pb::ClusterState::from(c.state).into(),
        status: None,
        endpoint: c.endpoint,
        kube_system_uid: c.kube_system_uid,
        credential_id: c.credential_id,
        spec: c
            .spec
            .and_then(|bytes| <pb::ClusterSpec as prost::Message>::decode(bytes.as_slice()).ok()),
        last_operation_id: c.last_operation_id,
        create_time: Some(timestamp(c.create_millis)),
        update_time: Some(timestamp(c.update_millis)),
        etag,
        kube_access_mode: match c.kube_access {
            KubeAccess::BuiltIn => pb::KubeAccessMode::BuiltIn,
            KubeAccess::Impersonation => pb::KubeAccessMode::Impersonation,
        }
        .into(),
    };
    (cluster, permanent)
}

/// A cluster's status: what the prober saw, its warnings after the cluster's permanent ones.
pub fn cluster_status(permanent: Vec<pb::Warning>, observed: ObservedStatus) -> pb::ClusterStatus {
    let mut status = pb::ClusterStatus::from(observed);
    let mut warnings = permanent;
    warnings.append(&mut status.warnings);
    status.warnings = warnings;
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_millis() {
        assert_eq!(
            timestamp(1_500),
            Timestamp {
                seconds: 1,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            timestamp(-1),
            Timestamp {
                seconds: -1,
                nanos: 999_000_000
            }
        );
    }
}
