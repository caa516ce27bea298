//! Where a node or pod list is served from: the cluster's watch cache (fast, no API-server
//! load) or a direct list from the API server. Pure decisions, unit-tested below.
//!
//! The cache serves a list only when it has synced, the page token is not one a direct list
//! issued (a walk never switches source half-way), and it can answer the query itself: label
//! selectors it can parse and, for pods, no field selector beyond `spec.nodeName=<one node>`
//! and no workload (whose selector must be read from the cluster).

use crate::kube::{selector::LabelSelector, summary::WorkloadKind};

/// Which pods: a workload's, a selector's, or a namespace's.
#[derive(Debug, Clone)]
pub enum PodSelection {
    All,
    Workload {
        kind: Option<WorkloadKind>,
        name: String,
    },
    Labels(String),
}

/// Whether a page token came from a direct Kubernetes list (rather than from the cache).
pub fn is_direct_token(token: &str) -> bool {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|raw| raw.starts_with(b"k1."))
}

/// The selector to filter cached nodes with, or `None` to list directly. Node lists carry pod
/// counts, which come from the pod cache, so both caches must have synced.
pub fn nodes_from_cache(
    nodes_ready: bool,
    pods_ready: bool,
    page_token: &str,
    label_selector: &str,
) -> Option<LabelSelector> {
    if !(nodes_ready && pods_ready) || is_direct_token(page_token) {
        return None;
    }
    LabelSelector::parse(label_selector)
}

/// A pod list the cache can answer: pods on `node` (any node for `None`) matching `selector`.
pub struct CachedPods {
    pub node: Option<String>,
    pub selector: LabelSelector,
}

/// How to serve a pod list from the cache, or `None` to list directly.
pub fn pods_from_cache(
    pods_ready: bool,
    page_token: &str,
    field_selector: &str,
    selection: &PodSelection,
) -> Option<CachedPods> {
    if !pods_ready || is_direct_token(page_token) {
        return None;
    }
    let node = match field_selector.split_once('=') {
        _ if field_selector.is_empty() => None,
        Some(("spec.nodeName", node)) if !node.contains(',') => Some(node.to_string()),
        _ => return None,
    };
    let labels = match selection {
        PodSelection::All => "",
        PodSelection::Labels(selector) => selector.as_str(),
        PodSelection::Workload { .. } => return None,
    };
    Some(CachedPods {
        node,
        selector: LabelSelector::parse(labels)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    /// A token as a direct list issues it (`k1.` prefix) and one as the cache issues it.
    fn direct_token() -> String {
        URL_SAFE_NO_PAD.encode("k1.continue.0123")
    }
    fn cache_token() -> String {
        URL_SAFE_NO_PAD.encode("c1.ns/name.0123")
    }

    fn labels(s: &str) -> PodSelection {
        PodSelection::Labels(s.into())
    }

    #[test]
    fn nodes_come_from_the_cache_only_when_both_caches_synced() {
        assert!(nodes_from_cache(true, true, "", "").is_some());
        assert!(nodes_from_cache(true, true, &cache_token(), "role=web").is_some());
        assert!(
            nodes_from_cache(false, true, "", "").is_none(),
            "nodes syncing"
        );
        assert!(
            nodes_from_cache(true, false, "", "").is_none(),
            "pods syncing"
        );
        assert!(
            nodes_from_cache(true, true, &direct_token(), "").is_none(),
            "a direct walk stays direct"
        );
    }

    #[test]
    fn pods_come_from_the_cache_when_it_can_answer_the_query() {
        let all = pods_from_cache(true, "", "", &PodSelection::All).expect("cache");
        assert_eq!(all.node, None);
        let on_node = pods_from_cache(
            true,
            &cache_token(),
            "spec.nodeName=kwok-1",
            &labels("app=web"),
        )
        .expect("cache");
        assert_eq!(on_node.node.as_deref(), Some("kwok-1"));
        assert!(
            on_node
                .selector
                .matches_with(|k| (k == "app").then_some("web"))
        );
        assert!(
            !on_node
                .selector
                .matches_with(|k| (k == "app").then_some("db"))
        );
    }

    #[test]
    fn pods_are_listed_directly_otherwise() {
        let workload = PodSelection::Workload {
            kind: None,
            name: "web".into(),
        };
        let direct = [
            pods_from_cache(false, "", "", &PodSelection::All),
            pods_from_cache(true, &direct_token(), "", &PodSelection::All),
            pods_from_cache(true, "", "status.phase=Running", &PodSelection::All),
            pods_from_cache(
                true,
                "",
                "spec.nodeName=a,status.phase=Running",
                &PodSelection::All,
            ),
            pods_from_cache(true, "", "", &workload),
        ];
        for (i, choice) in direct.iter().enumerate() {
            assert!(choice.is_none(), "case {i} must list directly");
        }
    }
}
