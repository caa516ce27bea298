//! Draining a node the way `kubectl drain` does: cordon, then evict every pod through the
//! Eviction API (so PodDisruptionBudgets are honoured), leaving DaemonSet and mirror pods.

use std::time::{Duration, Instant};

use ::kube::{
    Api, Client,
    api::{DeleteParams, EvictParams, ListParams},
};
use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;

use super::{ClusterError, error::classify, workloads::set_unschedulable};

/// What happened to one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    Evicted,
    Skipped,
    /// A PodDisruptionBudget kept refusing until the timeout.
    Blocked,
    Failed,
    WouldEvict,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DrainEvent {
    Pod {
        namespace: String,
        name: String,
        outcome: DrainOutcome,
        message: String,
    },
    Done {
        evicted: i32,
        skipped: i32,
        blocked: i32,
        failed: i32,
        complete: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct DrainOptions {
    pub timeout: Duration,
    pub grace_period: Option<Duration>,
    pub delete_emptydir_data: bool,
    pub force: bool,
    pub dry_run: bool,
}

/// Why a pod is left alone, or `None` to evict it.
fn keep_reason(pod: &Pod, options: &DrainOptions) -> Option<(DrainOutcome, String)> {
    let meta = &pod.metadata;
    if meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    {
        return Some((
            DrainOutcome::Skipped,
            "mirror pod (managed by the kubelet)".into(),
        ));
    }
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    if owners.iter().any(|o| o.kind == "DaemonSet") {
        return Some((DrainOutcome::Skipped, "DaemonSet pod".into()));
    }
    if owners.iter().all(|o| o.controller != Some(true)) && !options.force {
        return Some((
            DrainOutcome::Failed,
            "not managed by a controller, so it would not come back; set force to delete it".into(),
        ));
    }
    let empty_dir = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vs| vs.iter().any(|v| v.empty_dir.is_some()));
    if empty_dir && !options.delete_emptydir_data {
        return Some((
            DrainOutcome::Failed,
            "uses emptyDir storage that eviction would lose; set delete_emptydir_data".into(),
        ));
    }
    None
}

/// A drain whose node exists, is cordoned (unless dry run), and whose pods are known.
pub struct PendingDrain {
    client: Client,
    pods: Vec<Pod>,
    options: DrainOptions,
}

/// Checks the node, cordons it and lists its pods; errors here fail the call before any
/// progress is streamed.
pub async fn prepare(
    client: &Client,
    node: &str,
    options: DrainOptions,
) -> Result<PendingDrain, ClusterError> {
    Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .get(node)
        .await
        .map_err(classify)?;
    if !options.dry_run {
        set_unschedulable(client, node, true).await?;
    }
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(classify)?
        .items;
    Ok(PendingDrain {
        client: client.clone(),
        pods,
        options,
    })
}

impl PendingDrain {
    /// Evicts the pods (all at once, as kubectl does), sending one event per pod and a final
    /// summary. Stops sending when the receiver goes away.
    pub async fn run(self, events: mpsc::Sender<DrainEvent>) {
        let options = self.options;
        let deadline = Instant::now() + options.timeout;
        let outcomes = join_all(self.pods.iter().map(|pod| {
            let client = self.client.clone();
            let events = events.clone();
            async move {
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let (outcome, message) = match keep_reason(pod, &options) {
                    Some(kept) => kept,
                    None if options.dry_run => (DrainOutcome::WouldEvict, String::new()),
                    None => evict(&client, &namespace, &name, &options, deadline).await,
                };
                let _ = events
                    .send(DrainEvent::Pod {
                        namespace,
                        name,
                        outcome,
                        message,
                    })
                    .await;
                outcome
            }
        }))
        .await;
        let count = |o: DrainOutcome| outcomes.iter().filter(|x| **x == o).count() as i32;
        let (blocked, failed) = (count(DrainOutcome::Blocked), count(DrainOutcome::Failed));
        let _ = events
            .send(DrainEvent::Done {
                evicted: count(DrainOutcome::Evicted),
                skipped: count(DrainOutcome::Skipped),
                blocked,
                failed,
                complete: blocked == 0 && failed == 0 && !options.dry_run,
            })
            .await;
    }
}

/// Evicts one pod, retrying while a PodDisruptionBudget refuses (429), and waits until it is
/// gone.
async fn evict(
    client: &Client,
    namespace: &str,
    name: &str,
    options: &DrainOptions,
    deadline: Instant,
) -> (DrainOutcome, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = EvictParams {
        delete_options: Some(DeleteParams {
            grace_period_seconds: options.grace_period.map(|g| g.as_secs() as u32),
            ..DeleteParams::default()
        }),
        ..EvictParams::default()
    };
    let mut last_refusal: String;
    loop {
        match pods.evict(name, &params).await {
            Ok(_) => break,
            Err(::kube::Error::Api(status)) if status.code == 429 => {
                last_refusal = status.message.clone();
            }
            Err(::kube::Error::Api(status)) if status.code == 404 => {
                return (DrainOutcome::Evicted, "already gone".into());
            }
            Err(err) => return (DrainOutcome::Failed, classify(err).to_string()),
        }
        if Instant::now() >= deadline {
            return (
                DrainOutcome::Blocked,
                format!("eviction refused until the timeout: {last_refusal}"),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    loop {
        match pods.get_opt(name).await {
            Ok(None) => return (DrainOutcome::Evicted, String::new()),
            Ok(Some(_)) if Instant::now() >= deadline => {
                return (
                    DrainOutcome::Failed,
                    "evicted, but still terminating at the timeout".into(),
                );
            }
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(250)).await,
            Err(err) => return (DrainOutcome::Failed, classify(err).to_string()),
        }
    }
}
