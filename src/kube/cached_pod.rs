//! The watch cache's form of a pod: the fields of a [`PodSummary`], stored compactly. What
//! recurs across pods is shared through interners: strings (namespaces, node names, phases),
//! owners, label sets (the replicas of a workload carry the same labels), container identities
//! (name, image, image ID) and condition texts. What is unique to a pod is boxed, timestamps
//! take 8 bytes, and counts that follow from the containers are not stored.
//! [`CachedPod::summary`] gives back exactly the summary the pod was made from.

use std::{borrow::Borrow, collections::HashSet, hash::Hash, sync::Arc};

use super::summary::{Condition, ContainerState, ContainerSummary, ObjectRef, PodSummary};

/// Hands out one shared copy of each distinct value. Values that nothing else holds any more
/// are dropped when the table has doubled since it was last swept: O(1) amortized.
pub struct Interner<T: ?Sized> {
    values: HashSet<Arc<T>>,
    sweep_at: usize,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: HashSet::new(),
            sweep_at: 1024,
        }
    }
}

impl<T: ?Sized + Eq + Hash> Interner<T> {
    /// The shared copy of `value`, made by `copy` the first time.
    pub fn share<Q>(&mut self, value: &Q, copy: impl FnOnce(&Q) -> Arc<T>) -> Arc<T>
    where
        Q: ?Sized + Eq + Hash,
        Arc<T>: Borrow<Q>,
    {
        match self.values.get(value) {
            Some(shared) => shared.clone(),
            None => self.insert(copy(value)),
        }
    }

    fn insert(&mut self, value: Arc<T>) -> Arc<T> {
        if self.values.len() >= self.sweep_at {
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.sweep_at = (self.values.len() * 2).max(1024);
        }
        self.values.insert(value.clone());
        value
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<T: Eq + Hash> Interner<T> {
    /// The shared copy of `value`, which becomes it the first time.
    pub fn share_owned(&mut self, value: T) -> Arc<T> {
        match self.values.get(&value) {
            Some(shared) => shared.clone(),
            None => self.insert(Arc::new(value)),
        }
    }
}

/// A timestamp in milliseconds since the epoch, or none, in 8 bytes. `i64::MIN` stands for
/// none: it is out of the range of Kubernetes timestamps.
#[derive(Debug, Clone, Copy)]
struct Millis(i64);

impl Millis {
    const NONE: i64 = i64::MIN;

    fn new(millis: Option<i64>) -> Self {
        debug_assert_ne!(millis, Some(Self::NONE));
        Millis(millis.unwrap_or(Self::NONE))
    }

    fn get(self) -> Option<i64> {
        (self.0 != Self::NONE).then_some(self.0)
    }
}

/// A pod's labels, sorted by key.
type Labels = [(Arc<str>, Arc<str>)];

/// What a container is, the same in every replica of a workload.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ContainerImage {
    name: Box<str>,
    image: Box<str>,
    image_id: Box<str>,
}

/// A container's state texts, when any is set.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ContainerText {
    reason: Box<str>,
    message: Box<str>,
    last_termination_reason: Box<str>,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ConditionText {
    type_: Box<str>,
    status: Box<str>,
    reason: Box<str>,
    message: Box<str>,
}

/// The interners of one pod cache.
#[derive(Default)]
pub struct PodInterner {
    strings: Interner<str>,
    labels: Interner<Labels>,
    owners: Interner<ObjectRef>,
    images: Interner<ContainerImage>,
    container_texts: Interner<ContainerText>,
    condition_texts: Interner<ConditionText>,
}

impl PodInterner {
    fn str(&mut self, s: String) -> Arc<str> {
        self.strings.share(s.as_str(), |s: &str| Arc::from(s))
    }
}

#[derive(Debug)]
struct CachedContainer {
    image: Arc<ContainerImage>,
    text: Option<Arc<ContainerText>>,
    started_millis: Millis,
    finished_millis: Millis,
    restart_count: i32,
    exit_code: i32,
    last_exit_code: i32,
    state: ContainerState,
    ready: bool,
    started: bool,
}

impl CachedContainer {
    fn new(c: ContainerSummary, shared: &mut PodInterner) -> Self {
        let text = ContainerText {
            reason: c.reason.into(),
            message: c.message.into(),
            last_termination_reason: c.last_termination_reason.into(),
        };
        let has_text = !(text.reason.is_empty()
            && text.message.is_empty()
            && text.last_termination_reason.is_empty());
        CachedContainer {
            image: shared.images.share_owned(ContainerImage {
                name: c.name.into(),
                image: c.image.into(),
                image_id: c.image_id.into(),
            }),
            text: has_text.then(|| shared.container_texts.share_owned(text)),
            started_millis: Millis::new(c.started_millis),
            finished_millis: Millis::new(c.finished_millis),
            restart_count: c.restart_count,
            exit_code: c.exit_code,
            last_exit_code: c.last_exit_code,
            state: c.state,
            ready: c.ready,
            started: c.started,
        }
    }

    fn summary(&self) -> ContainerSummary {
        let text = |f: fn(&ContainerText) -> &str| {
            self.text.as_deref().map(f).unwrap_or_default().to_string()
        };
        ContainerSummary {
            name: self.image.name.to_string(),
            image: self.image.image.to_string(),
            image_id: self.image.image_id.to_string(),
            ready: self.ready,
            started: self.started,
            restart_count: self.restart_count,
            state: self.state,
            reason: text(|t| &t.reason),
            message: text(|t| &t.message),
            started_millis: self.started_millis.get(),
            finished_millis: self.finished_millis.get(),
            exit_code: self.exit_code,
            last_termination_reason: text(|t| &t.last_termination_reason),
            last_exit_code: self.last_exit_code,
        }
    }
}

#[derive(Debug)]
struct CachedCondition {
    text: Arc<ConditionText>,
    last_transition_millis: Millis,
    last_update_millis: Millis,
}

impl CachedCondition {
    fn new(c: Condition, shared: &mut PodInterner) -> Self {
        CachedCondition {
            text: shared.condition_texts.share_owned(ConditionText {
                type_: c.type_.into(),
                status: c.status.into(),
                reason: c.reason.into(),
                message: c.message.into(),
            }),
            last_transition_millis: Millis::new(c.last_transition_millis),
            last_update_millis: Millis::new(c.last_update_millis),
        }
    }

    fn summary(&self) -> Condition {
        Condition {
            type_: self.text.type_.to_string(),
            status: self.text.status.to_string(),
            reason: self.text.reason.to_string(),
            message: self.text.message.to_string(),
            last_transition_millis: self.last_transition_millis.get(),
            last_update_millis: self.last_update_millis.get(),
        }
    }
}

/// `status.podIPs`. The API requires it to start with `status.podIP`, and it is usually that
/// one address, which is then not stored twice.
#[derive(Debug)]
enum PodIps {
    OnlyPodIp,
    Listed(Box<[Box<str>]>),
}

impl PodIps {
    fn new(pod_ip: &str, pod_ips: Vec<String>) -> Self {
        match pod_ips.as_slice() {
            [only] if only == pod_ip => PodIps::OnlyPodIp,
            _ => PodIps::Listed(pod_ips.into_iter().map(String::into_boxed_str).collect()),
        }
    }

    fn get(&self, pod_ip: &str) -> Vec<String> {
        match self {
            PodIps::OnlyPodIp => vec![pod_ip.to_string()],
            PodIps::Listed(ips) => ips.iter().map(|ip| ip.to_string()).collect(),
        }
    }
}

/// A pod in the watch cache. The namespace and name are shared with the cache's key.
#[derive(Debug)]
pub struct CachedPod {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub node_name: Arc<str>,
    pub phase: Arc<str>,
    status: Arc<str>,
    host_ip: Arc<str>,
    qos_class: Arc<str>,
    uid: Box<str>,
    pod_ip: Box<str>,
    pod_ips: PodIps,
    resource_version: Box<str>,
    labels: Arc<Labels>,
    owner: Option<Arc<ObjectRef>>,
    containers: Box<[CachedContainer]>,
    init_containers: Box<[CachedContainer]>,
    conditions: Box<[CachedCondition]>,
    create_millis: Millis,
    start_millis: Millis,
    deletion_millis: Millis,
    total_containers: i32,
    ready: bool,
}

impl CachedPod {
    pub fn new(p: PodSummary, shared: &mut PodInterner) -> Self {
        // Not stored: they follow from the containers, as `convert::pod` counts them.
        debug_assert_eq!(
            p.ready_containers,
            p.containers.iter().filter(|c| c.ready).count() as i32
        );
        debug_assert_eq!(
            p.restarts,
            p.containers.iter().map(|c| c.restart_count).sum::<i32>()
        );
        let labels: Vec<(Arc<str>, Arc<str>)> = p
            .labels
            .into_iter()
            .map(|(k, v)| (shared.str(k), shared.str(v)))
            .collect();
        CachedPod {
            namespace: shared.str(p.namespace),
            name: Arc::from(p.name),
            node_name: shared.str(p.node_name),
            phase: shared.str(p.phase),
            status: shared.str(p.status),
            host_ip: shared.str(p.host_ip),
            qos_class: shared.str(p.qos_class),
            uid: p.uid.into(),
            pod_ips: PodIps::new(&p.pod_ip, p.pod_ips),
            pod_ip: p.pod_ip.into(),
            resource_version: p.resource_version.into(),
            labels: shared
                .labels
                .share(labels.as_slice(), |l: &Labels| Arc::from(l)),
            owner: p.owner.map(|o| shared.owners.share_owned(o)),
            containers: p
                .containers
                .into_iter()
                .map(|c| CachedContainer::new(c, shared))
                .collect(),
            init_containers: p
                .init_containers
                .into_iter()
                .map(|c| CachedContainer::new(c, shared))
                .collect(),
            conditions: p
                .conditions
                .into_iter()
                .map(|c| CachedCondition::new(c, shared))
                .collect(),
            create_millis: Millis::new(p.create_millis),
            start_millis: Millis::new(p.start_millis),
            deletion_millis: Millis::new(p.deletion_millis),
            total_containers: p.total_containers,
            ready: p.ready,
        }
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }

    /// The image ids its containers and init containers report (`containerStatuses[].imageID`,
    /// such as `registry.example.com/app@sha256:…`), empty before a container started.
    pub fn image_ids(&self) -> impl Iterator<Item = &str> {
        self.containers
            .iter()
            .chain(self.init_containers.iter())
            .map(|c| &*c.image.image_id)
    }

    /// The object that controls this pod, when one does.
    pub fn owner(&self) -> Option<&ObjectRef> {
        self.owner.as_deref()
    }

    /// The summary this pod was made from.
    pub fn summary(&self) -> PodSummary {
        let containers: Vec<ContainerSummary> = self
            .containers
            .iter()
            .map(CachedContainer::summary)
            .collect();
        PodSummary {
            namespace: self.namespace.to_string(),
            name: self.name.to_string(),
            uid: self.uid.to_string(),
            phase: self.phase.to_string(),
            status: self.status.to_string(),
            ready: self.ready,
            ready_containers: containers.iter().filter(|c| c.ready).count() as i32,
            total_containers: self.total_containers,
            restarts: containers.iter().map(|c| c.restart_count).sum(),
            node_name: self.node_name.to_string(),
            pod_ip: self.pod_ip.to_string(),
            pod_ips: self.pod_ips.get(&self.pod_ip),
            host_ip: self.host_ip.to_string(),
            containers,
            init_containers: self
                .init_containers
                .iter()
                .map(CachedContainer::summary)
                .collect(),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            owner: self.owner.as_deref().cloned(),
            create_millis: self.create_millis.get(),
            start_millis: self.start_millis.get(),
            qos_class: self.qos_class.to_string(),
            conditions: self
                .conditions
                .iter()
                .map(CachedCondition::summary)
                .collect(),
            deletion_millis: self.deletion_millis.get(),
            resource_version: self.resource_version.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, ready: bool, restarts: i32) -> ContainerSummary {
        ContainerSummary {
            name: name.into(),
            image: format!("example.com/{name}:1"),
            image_id: format!("example.com/{name}@sha256:0123"),
            ready,
            started: ready,
            restart_count: restarts,
            state: ContainerState::Terminated,
            reason: "Error".into(),
            message: "exit 3".into(),
            started_millis: Some(1_000),
            finished_millis: Some(2_000),
            exit_code: 3,
            last_termination_reason: "OOMKilled".into(),
            last_exit_code: 137,
        }
    }

    /// A summary with every field set, as `convert::pod` makes them.
    fn summary(name: &str) -> PodSummary {
        let containers = vec![container("app", true, 2), container("proxy", false, 5)];
        PodSummary {
            namespace: "shop".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            phase: "Running".into(),
            status: "CrashLoopBackOff".into(),
            ready: false,
            ready_containers: 1,
            total_containers: 3,
            restarts: 7,
            node_name: "node-1".into(),
            pod_ip: "10.0.0.7".into(),
            pod_ips: vec!["10.0.0.7".into(), "fd00::7".into()],
            host_ip: "192.0.2.1".into(),
            containers,
            init_containers: vec![container("init", true, 0)],
            labels: [("app", "web"), ("tier", "front"), ("z", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            owner: Some(ObjectRef {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                namespace: "shop".into(),
                name: "web-5d4f".into(),
                uid: "rs-uid".into(),
            }),
            create_millis: Some(10),
            start_millis: Some(20),
            qos_class: "Burstable".into(),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "ContainersNotReady".into(),
                message: "containers with unready status: [proxy]".into(),
                last_transition_millis: Some(30),
                last_update_millis: None,
            }],
            deletion_millis: Some(40),
            resource_version: "123".into(),
        }
    }

    #[test]
    fn gives_back_the_summary_it_was_made_from() {
        let mut shared = PodInterner::default();
        let one_ip = PodSummary {
            pod_ips: vec!["10.0.0.7".into()],
            ..summary("web-2")
        };
        let other_ip = PodSummary {
            pod_ips: vec!["10.0.0.8".into()],
            ..summary("web-3")
        };
        let no_ips = PodSummary {
            pod_ips: Vec::new(),
            ..summary("web-4")
        };
        let running = PodSummary {
            containers: vec![ContainerSummary {
                state: ContainerState::Running,
                reason: String::new(),
                message: String::new(),
                last_termination_reason: String::new(),
                finished_millis: None,
                restart_count: 0,
                ..container("app", true, 0)
            }],
            ready_containers: 1,
            restarts: 0,
            ..summary("web-5")
        };
        for s in [
            summary("web-1"),
            one_ip,
            other_ip,
            no_ips,
            running,
            PodSummary::default(),
        ] {
            assert_eq!(CachedPod::new(s.clone(), &mut shared).summary(), s);
        }
    }

    #[test]
    fn pods_share_what_recurs() {
        let mut shared = PodInterner::default();
        let a = CachedPod::new(summary("web-1"), &mut shared);
        let b = CachedPod::new(summary("web-2"), &mut shared);
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
        assert!(Arc::ptr_eq(&a.containers[0].image, &b.containers[0].image));
        assert!(Arc::ptr_eq(&a.conditions[0].text, &b.conditions[0].text));
        assert!(Arc::ptr_eq(&a.labels, &b.labels));
        assert!(Arc::ptr_eq(
            a.owner.as_ref().expect("owner"),
            b.owner.as_ref().expect("owner")
        ));
        assert!(!Arc::ptr_eq(&a.name, &b.name));
        assert_eq!(a.label("tier"), Some("front"));
        assert_eq!(a.label("z"), Some(""));
        assert_eq!(a.label("missing"), None);
    }

    #[test]
    fn unused_values_are_swept_once_the_table_doubles() {
        let mut strings: Interner<str> = Interner::default();
        let kept = strings.share("kept", |s: &str| Arc::from(s));
        for i in 0..1023 {
            strings.share(format!("gone-{i}").as_str(), |s: &str| Arc::from(s));
        }
        assert_eq!(strings.len(), 1024);
        // The next new value sweeps first: only `kept` is still used elsewhere.
        strings.share("new", |s: &str| Arc::from(s));
        assert_eq!(strings.len(), 2);
        assert!(Arc::ptr_eq(
            &kept,
            &strings.share("kept", |s: &str| Arc::from(s))
        ));
    }
}
