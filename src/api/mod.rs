//! The gRPC surface: one file per service, thin handlers, one error mapping.

pub mod admin;
pub mod agent;
pub mod cluster;
mod cluster_pages;
pub mod convert;
pub mod credential;
pub mod kube_convert;
pub mod logs;
pub mod node;
pub mod operation;
pub mod registry;
pub mod status;
pub mod unimplemented;
pub mod workload;

use crate::proto as pb;

/// Hides clusters a cluster-scoped token may not see: they are NOT_FOUND, exactly like clusters
/// that do not exist, so a scoped token learns nothing about the others.
pub(crate) fn visible<T>(
    request: &tonic::Request<T>,
    cluster_id: &str,
) -> Result<(), tonic::Status> {
    let hidden = request
        .extensions()
        .get::<crate::auth::Principal>()
        .is_some_and(|p| !p.can_see(cluster_id));
    if hidden {
        return Err(crate::service::Error::NotFound {
            kind: "cluster",
            id: cluster_id.to_string(),
        }
        .into());
    }
    Ok(())
}
