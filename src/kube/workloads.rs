//! Reads and changes of nodes, workloads, pods and events, with kube-rs typed APIs.

use std::collections::HashMap;

use ::kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy},
};
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::{CronJob, Job},
        core::v1::{Event, Node, Pod},
    },
    jiff::Timestamp,
};
use serde_json::json;

use super::{
    ClusterError, convert,
    error::classify,
    pod_view::{PodView, SummaryPage},
    summary::{EventSummary, NodeSummary, PodSummary, WorkloadKind, WorkloadSummary},
};

type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// One page of a Kubernetes list: the items and the API server's continue token.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub continue_token: Option<String>,
    /// The server's estimate of what is left after this page, when it says.
    pub remaining: Option<i64>,
}

fn list_params(label_selector: &str, field_selector: &str, limit: u32, cont: &str) -> ListParams {
    let mut params = ListParams::default().limit(limit);
    if !label_selector.is_empty() {
        params = params.labels(label_selector);
    }
    if !field_selector.is_empty() {
        params = params.fields(field_selector);
    }
    if !cont.is_empty() {
        params = params.continue_token(cont);
    }
    params
}

fn api<K>(client: &Client, namespace: &str) -> Api<K>
where
    K: ::kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as ::kube::Resource>::DynamicType: Default,
{
    if namespace.is_empty() {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), namespace)
    }
}

/// Runs `$body` with `K` bound to the k8s-openapi type of `$kind`.
macro_rules! with_kind {
    ($kind:expr, $k:ident => $body:expr) => {
        match $kind {
            WorkloadKind::Deployment => {
                type $k = Deployment;
                $body
            }
            WorkloadKind::StatefulSet => {
                type $k = StatefulSet;
                $body
            }
            WorkloadKind::DaemonSet => {
                type $k = DaemonSet;
                $body
            }
            WorkloadKind::ReplicaSet => {
                type $k = ReplicaSet;
                $body
            }
            WorkloadKind::Job => {
                type $k = Job;
                $body
            }
            WorkloadKind::CronJob => {
                type $k = CronJob;
                $body
            }
            WorkloadKind::Pod => {
                type $k = Pod;
                $body
            }
        }
    };
}

/// The summary of any workload object.
trait Summarize {
    fn summarize(&self) -> WorkloadSummary;
}
impl Summarize for Deployment {
    fn summarize(&self) -> WorkloadSummary {
        convert::deployment(self)
    }
}
impl Summarize for StatefulSet {
    fn summarize(&self) -> WorkloadSummary {
        convert::stateful_set(self)
    }
}
impl Summarize for DaemonSet {
    fn summarize(&self) -> WorkloadSummary {
        convert::daemon_set(self)
    }
}
impl Summarize for ReplicaSet {
    fn summarize(&self) -> WorkloadSummary {
        convert::replica_set(self)
    }
}
impl Summarize for Job {
    fn summarize(&self) -> WorkloadSummary {
        convert::job(self)
    }
}
impl Summarize for CronJob {
    fn summarize(&self) -> WorkloadSummary {
        convert::cron_job(self)
    }
}
impl Summarize for Pod {
    fn summarize(&self) -> WorkloadSummary {
        let p = convert::pod(self);
        WorkloadSummary {
            kind: WorkloadKind::Pod,
            namespace: p.namespace,
            name: p.name,
            uid: p.uid,
            labels: p.labels,
            annotations: self.metadata.annotations.clone().unwrap_or_default(),
            desired: p.total_containers,
            ready: p.ready_containers,
            updated: 0,
            available: i32::from(p.ready),
            conditions: p.conditions,
            images: p.containers.iter().map(|c| c.image.clone()).collect(),
            selector: String::new(),
            owner: p.owner,
            create_millis: p.create_millis,
            generation: self.metadata.generation.unwrap_or_default(),
            observed_generation: 0,
            paused: false,
            suspended: false,
            schedule: String::new(),
            last_schedule_millis: None,
            succeeded: 0,
            failed: 0,
            completion_millis: None,
            resource_version: p.resource_version,
        }
    }
}

/// Running pods per node name, for node summaries. For one node a metadata list (filtered on
/// the server by node) is enough; for all nodes the pods' specs say where each one runs.
async fn pods_per_node(client: &Client, node: Option<&str>) -> Result<HashMap<String, i32>> {
    let mut fields = "status.phase!=Succeeded,status.phase!=Failed".to_string();
    if let Some(node) = node {
        fields.push_str(&format!(",spec.nodeName={node}"));
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let mut counts = HashMap::new();
    let mut cont = String::new();
    loop {
        let params = list_params("", &fields, 500, &cont);
        let next = match node {
            Some(node) => {
                let page = pods.list_metadata(&params).await.map_err(classify)?;
                *counts.entry(node.to_string()).or_insert(0) += page.items.len() as i32;
                page.metadata.continue_
            }
            None => {
                let page = pods.list(&params).await.map_err(classify)?;
                for pod in &page.items {
                    if let Some(name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
                        *counts.entry(name).or_insert(0) += 1;
                    }
                }
                page.metadata.continue_
            }
        };
        match next.filter(|c| !c.is_empty()) {
            Some(next) => cont = next,
            None => return Ok(counts),
        }
    }
}

pub async fn list_nodes(
    client: &Client,
    label_selector: &str,
    limit: u32,
    cont: &str,
) -> Result<Listed<NodeSummary>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let page = nodes
        .list(&list_params(label_selector, "", limit, cont))
        .await
        .map_err(classify)?;
    let counts = pods_per_node(client, None).await?;
    Ok(Listed {
        items: page
            .items
            .iter()
            .map(|n| {
                let name = n.metadata.name.clone().unwrap_or_default();
                convert::node(n, counts.get(&name).copied().unwrap_or(0))
            })
            .collect(),
        continue_token: page.metadata.continue_,
        remaining: page.metadata.remaining_item_count,
    })
}

pub async fn get_node(client: &Client, name: &str) -> Result<NodeSummary> {
    let node = Api::<Node>::all(client.clone())
        .get(name)
        .await
        .map_err(classify)?;
    let counts = pods_per_node(client, Some(name)).await?;
    Ok(convert::node(&node, counts.get(name).copied().unwrap_or(0)))
}

/// Cordon (`true`) or uncordon (`false`) a node.
pub async fn set_unschedulable(client: &Client, name: &str, unschedulable: bool) -> Result<()> {
    let patch = json!({ "spec": { "unschedulable": unschedulable } });
    Api::<Node>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(classify)?;
    Ok(())
}

pub async fn list_workloads(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    label_selector: &str,
    limit: u32,
    cont: &str,
) -> Result<Listed<WorkloadSummary>> {
    with_kind!(kind, K => {
        let page = api::<K>(client, namespace)
            .list(&list_params(label_selector, "", limit, cont))
            .await
            .map_err(classify)?;
        Ok(Listed {
            items: page.items.iter().map(Summarize::summarize).collect(),
            continue_token: page.metadata.continue_,
            remaining: page.metadata.remaining_item_count,
        })
    })
}

pub async fn get_workload(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<WorkloadSummary> {
    with_kind!(kind, K => {
        let object = Api::<K>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .map_err(classify)?;
        Ok(object.summarize())
    })
}

/// Sets the replica count through the scale subresource.
pub async fn scale(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    replicas: i32,
) -> Result<WorkloadSummary> {
    let patch = json!({ "spec": { "replicas": replicas } });
    with_kind!(kind, K => {
        let api = Api::<K>::namespaced(client.clone(), namespace);
        api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(classify)?;
        Ok(api.get(name).await.map_err(classify)?.summarize())
    })
}

/// `kubectl rollout restart`: stamps the pod template so every pod is replaced.
pub async fn restart(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<WorkloadSummary> {
    let now = Timestamp::now().to_string();
    let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
        "kubectl.kubernetes.io/restartedAt": now
    }}}}});
    with_kind!(kind, K => {
        let api = Api::<K>::namespaced(client.clone(), namespace);
        let object = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(classify)?;
        Ok(object.summarize())
    })
}

pub async fn delete_workload(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    propagation: Option<&str>,
) -> Result<()> {
    let params = DeleteParams {
        propagation_policy: propagation.map(|p| match p {
            "Foreground" => PropagationPolicy::Foreground,
            "Orphan" => PropagationPolicy::Orphan,
            _ => PropagationPolicy::Background,
        }),
        ..DeleteParams::default()
    };
    with_kind!(kind, K => {
        Api::<K>::namespaced(client.clone(), namespace)
            .delete(name, &params)
            .await
            .map_err(classify)?;
        Ok(())
    })
}

/// The label selector of a workload, for listing its pods.
pub async fn workload_selector(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<String> {
    let summary = get_workload(client, kind, namespace, name).await?;
    Ok(summary.selector)
}

pub async fn list_pods(
    client: &Client,
    namespace: &str,
    label_selector: &str,
    field_selector: &str,
    limit: u32,
    cont: &str,
) -> Result<Listed<PodSummary>> {
    // What `Api::list` sends, decoded into summaries as the pods arrive.
    let url =
        <PodView as ::kube::Resource>::url_path(&(), Some(namespace).filter(|n| !n.is_empty()));
    let mut request = ::kube::core::Request::new(url)
        .list(&list_params(label_selector, field_selector, limit, cont))
        .map_err(|e| classify(::kube::Error::BuildRequest(e)))?;
    request.extensions_mut().insert("list");
    let page: SummaryPage = client.request(request).await.map_err(classify)?;
    Ok(Listed {
        items: page.items,
        continue_token: page.metadata.continue_,
        remaining: page.metadata.remaining_item_count,
    })
}

pub async fn get_pod(client: &Client, namespace: &str, name: &str) -> Result<PodSummary> {
    let pod = Api::<PodView>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(classify)?;
    Ok(super::pod_view::summary(&pod))
}

pub async fn delete_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    grace_period_seconds: Option<u32>,
) -> Result<()> {
    let params = DeleteParams {
        grace_period_seconds,
        ..DeleteParams::default()
    };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .delete(name, &params)
        .await
        .map_err(classify)?;
    Ok(())
}

/// Events matching the selectors, at most `cap`, newest first.
pub async fn list_events(
    client: &Client,
    namespace: &str,
    field_selector: &str,
    cap: usize,
) -> Result<Vec<EventSummary>> {
    let events = api::<Event>(client, namespace);
    let mut found = Vec::new();
    let mut cont = String::new();
    loop {
        let page = events
            .list(&list_params("", field_selector, 500, &cont))
            .await
            .map_err(classify)?;
        found.extend(page.items.iter().map(convert::event));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) if found.len() < cap => cont = next,
            _ => break,
        }
    }
    found.sort_by(EventSummary::newest_first);
    found.truncate(cap);
    Ok(found)
}
