//! Which kinds a cluster serves, from its API discovery: what `kubectl api-resources` lists, for
//! a picker of "any resource by kind".

use std::collections::BTreeSet;

use ::kube::{
    Client,
    discovery::{ApiGroup, Discovery, Scope},
};

use super::{ClusterError, error::classify};

/// One kind of one API group, in the version the cluster recommends for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedKind {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl ServedKind {
    /// The API group ("" for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map_or("", |(group, _)| group)
    }
}

/// Every kind the cluster serves, one per group and resource, sorted by group then kind.
///
/// Aggregated discovery (two requests) when the API server has it (Kubernetes 1.26+), else the
/// classic walk (one request per group version).
pub async fn served_kinds(client: &Client) -> Result<Vec<ServedKind>, ClusterError> {
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(discovery) => discovery,
        Err(::kube::Error::Api(status)) if matches!(status.code, 404 | 406 | 415) => {
            Discovery::new(client.clone())
                .run()
                .await
                .map_err(classify)?
        }
        Err(err) => return Err(classify(err)),
    };
    let mut kinds: Vec<ServedKind> = discovery.groups().flat_map(group_kinds).collect();
    kinds.sort_by(|a, b| (a.group(), &a.kind, &a.plural).cmp(&(b.group(), &b.kind, &b.plural)));
    Ok(kinds)
}

/// A group's resources in its preferred version, then those served only in other versions (in
/// the group's version order, most stable first), each resource once: how kubectl picks them.
fn group_kinds(group: &ApiGroup) -> Vec<ServedKind> {
    let preferred = group.preferred_version_or_latest().to_string();
    let versions = std::iter::once(preferred.clone()).chain(
        group
            .versions()
            .filter(|v| *v != preferred)
            .map(String::from),
    );
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for version in versions {
        for (resource, caps) in group.versioned_resources(&version) {
            if !seen.insert(resource.plural.clone()) {
                continue;
            }
            out.push(ServedKind {
                api_version: resource.api_version,
                kind: resource.kind,
                plural: resource.plural,
                namespaced: caps.scope == Scope::Namespaced,
                verbs: caps.operations,
            });
        }
    }
    out
}
