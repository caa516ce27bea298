//! Pods decoded for their summaries only. A whole k8s-openapi `Pod` costs tens of KiB of heap
//! (every container's env, ports, probes and resources; managed fields as JSON trees) although a
//! summary reads a handful of fields. Lists and watches of pods decode this instead, so a page
//! of pods in flight is a fraction of the size, and so is what the allocator keeps afterwards.

use std::collections::BTreeMap;

use k8s_openapi::{
    NamespaceResourceScope,
    api::core::v1::{Pod, PodStatus},
    apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, OwnerReference, Time},
};
use serde::{Deserialize, Deserializer, de::IgnoredAny};

use super::{convert, summary::PodSummary};

/// The fields of a pod that its summary is made of; everything else is skipped while decoding.
/// Reads like a `Pod` through kube-rs (`Api<PodView>` lists, gets and watches `pods`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodView {
    #[serde(default, deserialize_with = "summary_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<PodSpecView>,
    #[serde(default)]
    pub status: Option<PodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecView {
    pub node_name: Option<String>,
    /// Only counted: `IgnoredAny` is zero-sized, so this allocates nothing.
    #[serde(default)]
    pub containers: Vec<IgnoredAny>,
}

/// The metadata a summary reads; not managed fields, annotations or finalizers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

fn summary_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = SummaryMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        owner_references: m.owner_references,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        ..ObjectMeta::default()
    })
}

/// The summary of a pod, the same as [`convert::pod`] gives for the whole object.
pub fn summary(p: &PodView) -> PodSummary {
    convert::pod_summary(convert::PodParts {
        meta: &p.metadata,
        node_name: p.spec.as_ref().and_then(|s| s.node_name.as_ref()),
        declared_containers: p.spec.as_ref().map(|s| s.containers.len()),
        status: p.status.as_ref(),
    })
}

/// A page of a pod list, each pod summarized as soon as it is decoded: the page holds one
/// decoded pod at a time, not hundreds.
#[derive(Debug, Default, Deserialize)]
pub struct SummaryPage {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default, deserialize_with = "summarized")]
    pub items: Vec<PodSummary>,
}

fn summarized<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PodSummary>, D::Error> {
    struct Summarized(PodSummary);

    impl<'de> Deserialize<'de> for Summarized {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            PodView::deserialize(d).map(|pod| Summarized(summary(&pod)))
        }
    }

    let items = Option::<Vec<Summarized>>::deserialize(d)?;
    Ok(items.into_iter().flatten().map(|s| s.0).collect())
}

impl k8s_openapi::Resource for PodView {
    const API_VERSION: &'static str = <Pod as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Pod as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Pod as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Pod as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Pod as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = NamespaceResourceScope;
}

impl k8s_openapi::Metadata for PodView {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod as the API server sends it, with what a summary skips (managed fields, annotations,
    /// a full spec) and what it reads (owner, init containers, every container state).
    fn pod_json() -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-5d4f-x2k9q",
                "namespace": "shop",
                "uid": "0f6c1c8e-3c1a-4f57-9d7e-1b2f3a4c5d6e",
                "resourceVersion": "4711",
                "generation": 1,
                "creationTimestamp": "2026-11-26T10:00:00Z",
                "deletionTimestamp": "2026-11-26T11:00:00Z",
                "labels": {"app": "web", "pod-template-hash": "5d4f"},
                "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T09:00:00Z"},
                "finalizers": ["example.com/hold"],
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f",
                    "uid": "9a8b7c6d", "controller": true, "blockOwnerDeletion": true
                }],
                "managedFields": [{
                    "manager": "kube-controller-manager", "operation": "Update",
                    "apiVersion": "v1", "time": "2026-11-26T10:00:00Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
                }]
            },
            "spec": {
                "nodeName": "node-1",
                "initContainers": [{"name": "init", "image": "example.com/init:1"}],
                "containers": [
                    {"name": "app", "image": "example.com/app:2",
                     "env": [{"name": "A", "value": "1"}],
                     "ports": [{"containerPort": 8080}],
                     "resources": {"requests": {"cpu": "10m"}}},
                    {"name": "proxy", "image": "example.com/proxy:1"},
                    {"name": "late", "image": "example.com/late:1"}
                ],
                "tolerations": [{"key": "dedicated", "operator": "Exists"}]
            },
            "status": {
                "phase": "Running",
                "qosClass": "Burstable",
                "hostIP": "192.0.2.1",
                "podIP": "10.0.0.7",
                "podIPs": [{"ip": "10.0.0.7"}, {"ip": "fd00::7"}],
                "startTime": "2026-11-26T10:00:01Z",
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                     "message": "containers with unready status: [proxy]",
                     "lastTransitionTime": "2026-11-26T10:00:05Z", "lastProbeTime": null}
                ],
                "initContainerStatuses": [{
                    "name": "init", "image": "example.com/init:1", "imageID": "sha256:01",
                    "ready": true, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                        "startedAt": "2026-11-26T10:00:02Z", "finishedAt": "2026-11-26T10:00:03Z"}}
                }],
                "containerStatuses": [
                    {"name": "app", "image": "example.com/app:2", "imageID": "sha256:02",
                     "ready": true, "started": true, "restartCount": 2,
                     "state": {"running": {"startedAt": "2026-11-26T10:00:04Z"}},
                     "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}},
                    {"name": "proxy", "image": "example.com/proxy:1", "imageID": "",
                     "ready": false, "restartCount": 5,
                     "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}
                ]
            }
        })
    }

    #[test]
    fn summarizes_like_the_whole_pod() {
        let whole: Pod = serde_json::from_value(pod_json()).expect("pod");
        let view: PodView = serde_json::from_value(pod_json()).expect("pod view");
        let summary = summary(&view);
        assert_eq!(summary, convert::pod(&whole));
        assert_eq!(summary.total_containers, 3);
        assert_eq!(summary.node_name, "node-1");
        assert_eq!(summary.owner.expect("owner").name, "web-5d4f");
        assert_eq!(summary.status, "Terminating");
        assert!(view.metadata.managed_fields.is_none());
        assert!(view.metadata.annotations.is_none());
    }

    #[test]
    fn summarizes_a_list_page_while_decoding_it() {
        let list = serde_json::json!({
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "9", "continue": "next", "remainingItemCount": 4},
            "items": [pod_json(), {"metadata": {"name": "p", "namespace": "n"}}]
        });
        let page: SummaryPage = serde_json::from_value(list).expect("page");
        let whole: Pod = serde_json::from_value(pod_json()).expect("pod");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[0], convert::pod(&whole));
        assert_eq!(page.items[1].name, "p");
        assert_eq!(page.metadata.continue_.as_deref(), Some("next"));
        assert_eq!(page.metadata.remaining_item_count, Some(4));
        let empty: SummaryPage =
            serde_json::from_value(serde_json::json!({"metadata": {}, "items": null}))
                .expect("empty page");
        assert!(empty.items.is_empty());
    }

    #[test]
    fn summarizes_a_bare_pod_like_the_whole_pod() {
        let bare = serde_json::json!({"metadata": {"name": "p", "namespace": "n"}});
        let whole: Pod = serde_json::from_value(bare.clone()).expect("pod");
        let view: PodView = serde_json::from_value(bare).expect("pod view");
        assert_eq!(summary(&view), convert::pod(&whole));
    }
}
