//! The watch cache's form of a pod: the pod as the API answers it, encoded once when its watch
//! event arrives ([`PodWire`]), and beside it the few fields that lists filter by and registry
//! searches read. A page of cached pods is then a copy of bytes: no summary, no strings, no
//! encoding per call. What recurs across pods is shared through interners: strings
//! (namespaces, node names, phases), label sets (the replicas of a workload carry the same
//! labels), owners and lists of image ids.

use std::{borrow::Borrow, collections::HashSet, hash::Hash, sync::Arc};

use super::summary::{ObjectRef, PodSummary};
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

/// Encodes a pod the way the API answers it (the wiring passes the `flotilla.v1.Pod`
/// encoding): the bytes a cached pod is served as.
pub type PodWire = fn(PodSummary) -> Vec<u8>;

/// A pod's labels, sorted by key.
type Labels = [(Arc<str>, Arc<str>)];

/// The interners of one pod cache.
#[derive(Default)]
pub struct PodInterner {
    strings: Interner<str>,
    labels: Interner<Labels>,
    owners: Interner<ObjectRef>,
    image_ids: Interner<[Arc<str>]>,
}

impl PodInterner {
    fn str(&mut self, s: &str) -> Arc<str> {
        self.strings.share(s, |s: &str| Arc::from(s))
    }
}

/// A pod in the watch cache. The namespace and name are shared with the cache's key.
#[derive(Debug)]
pub struct CachedPod {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub node_name: Arc<str>,
    pub phase: Arc<str>,
    labels: Arc<Labels>,
    owner: Option<Arc<ObjectRef>>,
    /// The image ids of its containers, then of its init containers.
    image_ids: Arc<[Arc<str>]>,
    wire: Box<[u8]>,
}

impl CachedPod {
    pub fn new(p: PodSummary, shared: &mut PodInterner, encode: PodWire) -> Self {
        let labels: Vec<(Arc<str>, Arc<str>)> = p
            .labels
            .iter()
            .map(|(k, v)| (shared.str(k), shared.str(v)))
            .collect();
        let image_ids: Vec<Arc<str>> = p
            .containers
            .iter()
            .chain(&p.init_containers)
            .map(|c| shared.str(&c.image_id))
            .collect();
        let (namespace, node_name, phase) = (
            shared.str(&p.namespace),
            shared.str(&p.node_name),
            shared.str(&p.phase),
        );
        let name = Arc::from(p.name.as_str());
        let owner = p.owner.clone().map(|o| shared.owners.share_owned(o));
        CachedPod {
            namespace,
            name,
            node_name,
            phase,
            labels: shared
                .labels
                .share(labels.as_slice(), |l: &Labels| Arc::from(l)),
            owner,
            image_ids: shared
                .image_ids
                .share(image_ids.as_slice(), |ids: &[Arc<str>]| Arc::from(ids)),
            // `encode_to_vec` sizes its buffer exactly, so this keeps it without a copy.
            wire: encode(p).into_boxed_slice(),
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
        self.image_ids.iter().map(|id| &**id)
    }

    /// The object that controls this pod, when one does.
    pub fn owner(&self) -> Option<&ObjectRef> {
        self.owner.as_deref()
    }

    /// The pod as the API answers it: what [`PodWire`] made of its summary.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The heap bytes this pod holds alone (shared values not counted).
    pub fn own_bytes(&self) -> usize {
        self.wire.len() + self.name.len() + 2 * std::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::summary::ContainerSummary;

    fn container(name: &str) -> ContainerSummary {
        ContainerSummary {
            name: name.into(),
            image: format!("example.com/{name}:1"),
            image_id: format!("example.com/{name}@sha256:0123"),
            ..ContainerSummary::default()
        }
    }

    fn summary(name: &str) -> PodSummary {
        PodSummary {
            namespace: "shop".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            phase: "Running".into(),
            node_name: "node-1".into(),
            containers: vec![container("app"), container("proxy")],
            init_containers: vec![container("init")],
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
            ..PodSummary::default()
        }
    }

    /// Stands in for the wiring's protobuf encoding: any encoding of the whole summary.
    fn debug_wire(p: PodSummary) -> Vec<u8> {
        format!("{p:?}").into_bytes()
    }

    #[test]
    fn keeps_the_pod_as_encoded_and_what_lists_filter_by() {
        let mut shared = PodInterner::default();
        let s = summary("web-1");
        let pod = CachedPod::new(s.clone(), &mut shared, debug_wire);
        assert_eq!(pod.wire(), debug_wire(s).as_slice());
        assert_eq!(
            (&*pod.namespace, &*pod.name, &*pod.node_name, &*pod.phase),
            ("shop", "web-1", "node-1", "Running")
        );
        assert_eq!(pod.label("tier"), Some("front"));
        assert_eq!(pod.label("z"), Some(""));
        assert_eq!(pod.label("missing"), None);
        assert_eq!(
            pod.image_ids().collect::<Vec<_>>(),
            [
                "example.com/app@sha256:0123",
                "example.com/proxy@sha256:0123",
                "example.com/init@sha256:0123"
            ]
        );
        assert_eq!(pod.owner().map(|o| o.name.as_str()), Some("web-5d4f"));
        assert!(pod.own_bytes() >= pod.wire().len());

        let bare = CachedPod::new(PodSummary::default(), &mut shared, debug_wire);
        assert_eq!(bare.wire(), debug_wire(PodSummary::default()).as_slice());
        assert!(bare.owner().is_none());
        assert_eq!(bare.image_ids().count(), 0);
    }

    #[test]
    fn pods_share_what_recurs() {
        let mut shared = PodInterner::default();
        let a = CachedPod::new(summary("web-1"), &mut shared, debug_wire);
        let b = CachedPod::new(summary("web-2"), &mut shared, debug_wire);
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
        assert!(Arc::ptr_eq(&a.node_name, &b.node_name));
        assert!(Arc::ptr_eq(&a.labels, &b.labels));
        assert!(Arc::ptr_eq(&a.image_ids, &b.image_ids));
        assert!(Arc::ptr_eq(
            a.owner.as_ref().expect("owner"),
            b.owner.as_ref().expect("owner")
        ));
        assert!(!Arc::ptr_eq(&a.name, &b.name));
        assert_ne!(a.wire(), b.wire());
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
