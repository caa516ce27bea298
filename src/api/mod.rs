//! The gRPC surface: one file per service, thin handlers, one error mapping.

pub mod admin;
pub mod cluster;
pub mod codec;
pub mod convert;
pub mod credential;
pub mod kube_convert;
pub mod logs;
pub mod node;
pub mod operation;
mod redact;
pub mod status;
pub mod unimplemented;
pub mod workload;

/// Generated protobuf messages, clients and servers of `flotilla.v1`.
#[allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
pub mod pb {
    tonic::include_proto!("flotilla.v1");

    /// Encoded `FileDescriptorSet` of every proto file, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/flotilla_descriptor.bin"));
}

/// Fully qualified names of the Flotilla services, as reflection and health report them.
pub const SERVICE_NAMES: [&str; 8] = [
    "flotilla.v1.ClusterService",
    "flotilla.v1.NodeService",
    "flotilla.v1.WorkloadService",
    "flotilla.v1.RegistryService",
    "flotilla.v1.LogStream",
    "flotilla.v1.OperationService",
    "flotilla.v1.CredentialService",
    "flotilla.v1.AdminService",
];

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
