//! Idempotency keys of create-like calls (the practice of Stripe's idempotency keys and
//! AEP-155): a `request_id` belongs to the token that sent it, and a replay must be the same
//! request. Each operation stores a SHA-256 of its request — kind, target and body, without the
//! request_id — so the same id with another body is refused instead of answered with an
//! operation that does something else.

use std::collections::BTreeMap;

use prost::Message;
use sha2::{Digest, Sha256};

use super::NodePoolChange;
use crate::{
    adapters::cluster::{ClusterSpec, NodePoolSpec},
    service::operations::OperationKind,
};

/// What a replay is compared on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestKey {
    pub kind: OperationKind,
    /// The cluster the call acts on ('' for a create that lets Flotilla choose the id).
    pub target: String,
    /// SHA-256 (hex) of kind, target and body.
    pub hash: String,
}

/// A digest of length-prefixed parts, so that no two different part lists hash alike.
struct Fingerprint(Sha256);

impl Fingerprint {
    fn new(kind: OperationKind, target: &str) -> Fingerprint {
        let mut print = Fingerprint(Sha256::new());
        print.part(kind.as_str().as_bytes());
        print.part(target.as_bytes());
        print
    }

    fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    fn text(&mut self, text: &str) -> &mut Self {
        self.part(text.as_bytes())
    }

    fn finish(self, kind: OperationKind, target: &str) -> RequestKey {
        RequestKey {
            kind,
            target: target.to_string(),
            hash: hex::encode(self.0.finalize()),
        }
    }
}

/// Sorted key/value pairs of a protobuf map (prost maps are `HashMap`s: their encoding order
/// is not stable).
fn sorted_pairs(map: &std::collections::HashMap<String, String>) -> Vec<u8> {
    let sorted: BTreeMap<_, _> = map.iter().collect();
    let mut out = Vec::new();
    for (key, value) in sorted {
        for part in [key, value] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

/// The prost encoding with every map moved out and appended sorted.
fn canonical_pool(spec: &NodePoolSpec) -> Vec<u8> {
    let mut bare = spec.clone();
    let labels = std::mem::take(&mut bare.labels);
    let mut out = bare.encode_to_vec();
    out.extend(sorted_pairs(&labels));
    out
}

fn canonical_cluster(spec: &ClusterSpec) -> Vec<u8> {
    let mut bare = spec.clone();
    let labels = std::mem::take(&mut bare.labels);
    let pools = std::mem::take(&mut bare.node_pools);
    let mut out = bare.encode_to_vec();
    out.extend(sorted_pairs(&labels));
    for pool in &pools {
        let pool = canonical_pool(pool);
        out.extend_from_slice(&(pool.len() as u64).to_be_bytes());
        out.extend(pool);
    }
    out
}

pub(crate) fn create_cluster(
    cluster_id: &str,
    provider: &str,
    spec: Option<&ClusterSpec>,
) -> RequestKey {
    let kind = OperationKind::CreateCluster;
    let mut print = Fingerprint::new(kind, cluster_id);
    print.text(provider);
    match spec {
        Some(spec) => print.part(b"spec").part(&canonical_cluster(spec)),
        None => print.part(b"no spec"),
    };
    print.finish(kind, cluster_id)
}

pub(crate) fn upgrade_cluster(cluster_id: &str, version: &str) -> RequestKey {
    let kind = OperationKind::UpgradeCluster;
    let mut print = Fingerprint::new(kind, cluster_id);
    print.text(version);
    print.finish(kind, cluster_id)
}

pub(crate) fn destroy_cluster(cluster_id: &str, etag: &str) -> RequestKey {
    let kind = OperationKind::DeleteCluster;
    let mut print = Fingerprint::new(kind, cluster_id);
    print.text(etag);
    print.finish(kind, cluster_id)
}

fn optional(print: &mut Fingerprint, value: Option<i64>) {
    match value {
        Some(value) => print.part(&value.to_be_bytes()),
        None => print.part(b"unset"),
    };
}

pub(crate) fn node_pool_change(
    cluster_id: &str,
    kind: OperationKind,
    change: &NodePoolChange,
) -> RequestKey {
    let mut print = Fingerprint::new(kind, cluster_id);
    match change {
        NodePoolChange::Create { spec, .. } => {
            match spec {
                Some(spec) => print.part(&canonical_pool(spec)),
                None => print.part(b"no spec"),
            };
        }
        NodePoolChange::Update {
            pool_id,
            desired_size,
            min_size,
            max_size,
            autoscaling,
        } => {
            print.text(pool_id);
            optional(&mut print, desired_size.map(i64::from));
            optional(&mut print, min_size.map(i64::from));
            optional(&mut print, max_size.map(i64::from));
            optional(&mut print, autoscaling.map(i64::from));
        }
        NodePoolChange::Delete { pool_id } => {
            print.text(pool_id);
        }
        NodePoolChange::AddNodes {
            pool_id,
            instance_ids,
        } => {
            print.text(pool_id);
            for id in instance_ids {
                print.text(id);
            }
        }
        NodePoolChange::RemoveNodes {
            pool_id,
            node_names,
            skip_drain,
            release_instances,
        } => {
            print.text(pool_id);
            for name in node_names {
                print.text(name);
            }
            print.part(&[u8::from(*skip_drain), u8::from(*release_instances)]);
        }
    }
    print.finish(kind, cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ClusterNetwork;

    fn spec(region: &str) -> ClusterSpec {
        ClusterSpec {
            region: region.into(),
            credential_id: "cred".into(),
            labels: [("b", "2"), ("a", "1"), ("c", "3")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            network: Some(ClusterNetwork {
                vpc_id: "vpc-1".into(),
                ..Default::default()
            }),
            vendor_extra: Some(prost_types::Struct {
                fields: [(
                    "tier".to_string(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue("gold".into())),
                    },
                )]
                .into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_request_hashes_alike_whatever_the_map_order() {
        let first = create_cluster("c1", "acme", Some(&spec("ap-guangzhou")));
        for _ in 0..20 {
            // A fresh HashMap each time: another iteration order, the same request.
            let again = create_cluster("c1", "acme", Some(&spec("ap-guangzhou")));
            assert_eq!(first, again);
        }
        assert_eq!(first.hash.len(), 64);
    }

    #[test]
    fn any_difference_changes_the_hash() {
        let base = create_cluster("c1", "acme", Some(&spec("ap-guangzhou")));
        let others = [
            create_cluster("c2", "acme", Some(&spec("ap-guangzhou"))),
            create_cluster("c1", "other", Some(&spec("ap-guangzhou"))),
            create_cluster("c1", "acme", Some(&spec("ap-shanghai"))),
            create_cluster("c1", "acme", None),
        ];
        for other in others {
            assert_ne!(base.hash, other.hash);
        }
        assert_ne!(
            upgrade_cluster("c1", "1.34.1").hash,
            destroy_cluster("c1", "1.34.1").hash
        );
        // Length prefixes: moving bytes between parts is another request.
        let split = |pool: &str, node: &str| {
            node_pool_change(
                "c1",
                OperationKind::RemoveNodes,
                &NodePoolChange::RemoveNodes {
                    pool_id: pool.into(),
                    node_names: vec![node.into()],
                    skip_drain: false,
                    release_instances: false,
                },
            )
            .hash
        };
        assert_ne!(split("ab", "c"), split("a", "bc"));
    }
}
