//! What is deployed where: the pods, across the clusters a caller may see, whose containers
//! report an image id (`containerStatuses[].imageID`, `…@sha256:…`) naming an artifact's digest.
//! Read from the pod watch caches (one per cluster, shared by every caller), never from the
//! registry: a registry knows what was pulled, not what runs.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use crate::kube::{cached_pod::CachedPod, watch_cache::WatchCaches};
use crate::service::{
    Result,
    access::{ClusterAccessor, Scope},
};
use crate::store::Store;

/// A workload running a digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deployment {
    pub cluster_id: String,
    pub namespace: String,
    /// "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", … or "Pod" for a pod
    /// without a controller.
    pub workload_kind: String,
    pub workload_name: String,
    pub pod_count: i32,
}

impl Deployment {
    /// "cluster/namespace/Kind/name", for messages.
    pub fn path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.cluster_id, self.namespace, self.workload_kind, self.workload_name
        )
    }
}

/// A cluster that could not be searched, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsearchedCluster {
    pub cluster_id: String,
    pub reason: String,
}

/// Where digests run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployments {
    /// By digest; digests that run nowhere are absent.
    pub by_digest: HashMap<String, Vec<Deployment>>,
    pub unreachable: Vec<UnsearchedCluster>,
}

pub struct DeploymentFinder {
    store: Store,
    accessor: Arc<ClusterAccessor>,
    caches: Arc<WatchCaches>,
    /// How long a cluster's pod cache may take to sync before the cluster counts as unreachable.
    sync_wait: Duration,
}

impl DeploymentFinder {
    pub fn new(
        store: Store,
        accessor: Arc<ClusterAccessor>,
        caches: Arc<WatchCaches>,
        sync_wait: Duration,
    ) -> Self {
        DeploymentFinder {
            store,
            accessor,
            caches,
            sync_wait,
        }
    }

    /// The workloads in `scope`'s clusters whose pods run any of `digests`.
    pub async fn find(&self, scope: &Scope, digests: &[String]) -> Result<Deployments> {
        let mut found = Deployments::default();
        let wanted: BTreeSet<&str> = digests
            .iter()
            .map(String::as_str)
            .filter(|d| !d.is_empty())
            .collect();
        if wanted.is_empty() {
            return Ok(found);
        }
        let clusters = self.store.all_clusters().await?;
        for row in clusters.iter().filter(|row| scope.can_see(&row.id)) {
            let watch = match self.accessor.own_client_with_version(scope, &row.id).await {
                Ok((own, version)) => self.caches.watch(&row.id, version, &own.client),
                Err(err) => {
                    found.unreachable.push(UnsearchedCluster {
                        cluster_id: row.id.clone(),
                        reason: err.to_string(),
                    });
                    continue;
                }
            };
            let deadline = tokio::time::Instant::now() + self.sync_wait;
            while !watch.pods.is_ready() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !watch.pods.is_ready() {
                found.unreachable.push(UnsearchedCluster {
                    cluster_id: row.id.clone(),
                    reason: format!(
                        "its pods could not be listed within {}s",
                        self.sync_wait.as_secs()
                    ),
                });
                continue;
            }
            let mut counts: BTreeMap<(String, String, String, String), i32> = BTreeMap::new();
            watch.pods.for_each(|pod| {
                if matches!(&*pod.phase, "Succeeded" | "Failed") {
                    return;
                }
                let running: BTreeSet<&str> = pod
                    .image_ids()
                    .filter_map(digest_of)
                    .filter(|d| wanted.contains(d))
                    .collect();
                for digest in running {
                    let (kind, name) = workload_of(pod);
                    *counts
                        .entry((digest.to_string(), pod.namespace.to_string(), kind, name))
                        .or_default() += 1;
                }
            });
            for ((digest, namespace, workload_kind, workload_name), pod_count) in counts {
                found.by_digest.entry(digest).or_default().push(Deployment {
                    cluster_id: row.id.clone(),
                    namespace,
                    workload_kind,
                    workload_name,
                    pod_count,
                });
            }
        }
        Ok(found)
    }
}

/// The digest an image id names: `repo@sha256:…` → `sha256:…`. A bare `sha256:…` (what some
/// runtimes report) is the local image id, not a manifest digest, so it names nothing here.
pub fn digest_of(image_id: &str) -> Option<&str> {
    image_id.rsplit_once('@').map(|(_, digest)| digest)
}

/// The workload a pod belongs to: its controller, with a Deployment's ReplicaSet
/// (`<deployment>-<pod-template-hash>`) followed up to the Deployment.
fn workload_of(pod: &CachedPod) -> (String, String) {
    match pod.owner() {
        None => ("Pod".into(), pod.name.to_string()),
        Some(owner) if owner.kind == "ReplicaSet" => {
            let deployment = pod
                .label("pod-template-hash")
                .and_then(|hash| owner.name.strip_suffix(&format!("-{hash}")));
            match deployment {
                Some(name) => ("Deployment".into(), name.to_string()),
                None => (owner.kind.clone(), owner.name.clone()),
            }
        }
        Some(owner) => (owner.kind.clone(), owner.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::{
        cached_pod::PodInterner,
        summary::{ContainerSummary, ObjectRef, PodSummary},
    };

    fn pod(owner: Option<(&str, &str)>, hash: Option<&str>, image_id: &str) -> CachedPod {
        let containers = vec![ContainerSummary {
            name: "app".into(),
            image: "r.example/app:1".into(),
            image_id: image_id.into(),
            ..ContainerSummary::default()
        }];
        let summary = PodSummary {
            namespace: "shop".into(),
            name: "web-5d8f-abcde".into(),
            phase: "Running".into(),
            total_containers: 1,
            containers,
            labels: hash
                .map(|h| [("pod-template-hash".to_string(), h.to_string())].into())
                .unwrap_or_default(),
            owner: owner.map(|(kind, name)| ObjectRef {
                kind: kind.into(),
                name: name.into(),
                ..ObjectRef::default()
            }),
            ..PodSummary::default()
        };
        CachedPod::new(summary, &mut PodInterner::default(), |_| Vec::new())
    }

    #[test]
    fn image_ids_name_digests() {
        let digest = format!("sha256:{}", "b".repeat(64));
        assert_eq!(
            digest_of(&format!("r.example/app@{digest}")),
            Some(digest.as_str())
        );
        assert_eq!(
            digest_of(&digest),
            None,
            "a bare local image id is no manifest digest"
        );
        assert_eq!(digest_of(""), None);
        let p = pod(
            None,
            None,
            &format!("docker-pullable://r.example/app@{digest}"),
        );
        assert_eq!(
            p.image_ids().filter_map(digest_of).collect::<Vec<_>>(),
            [digest.as_str()]
        );
    }

    #[test]
    fn workloads_follow_replica_sets_to_deployments() {
        let id = "r/app@sha256:00";
        assert_eq!(
            workload_of(&pod(Some(("ReplicaSet", "web-5d8f")), Some("5d8f"), id)),
            ("Deployment".into(), "web".into())
        );
        assert_eq!(
            workload_of(&pod(Some(("ReplicaSet", "web-5d8f")), None, id)),
            ("ReplicaSet".into(), "web-5d8f".into())
        );
        assert_eq!(
            workload_of(&pod(Some(("StatefulSet", "db")), None, id)),
            ("StatefulSet".into(), "db".into())
        );
        assert_eq!(
            workload_of(&pod(None, None, id)),
            ("Pod".into(), "web-5d8f-abcde".into())
        );
    }
}
