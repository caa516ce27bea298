//! The wire types of `flotilla.v1`: the generated messages, clients and servers, the descriptor
//! set for reflection, the codec the servers use, and the redacted `Debug` of messages that carry
//! secrets. A leaf: it imports nothing of ours, and every layer may use its types as data.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

tonic::include_proto!("flotilla.v1");

pub mod codec;
mod list_responses;
mod redact;

pub use list_responses::{ListClustersResponse, ListPodsResponse, append_cluster, append_entry};

/// Encoded `FileDescriptorSet` of every proto file, for gRPC reflection, plus
/// `google/rpc/status.proto` and `google/rpc/error_details.proto` so reflection clients decode the
/// error details (filter on package `flotilla.v1` for ours).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/flotilla_descriptor.bin"));

/// The `google.rpc.ErrorInfo` domain of every error Flotilla answers with.
pub const ERROR_DOMAIN: &str = "flotilla.dev";

/// Fully qualified names of the Flotilla services, as reflection and health report them.
pub const SERVICE_NAMES: [&str; 9] = [
    "flotilla.v1.ClusterService",
    "flotilla.v1.NodeService",
    "flotilla.v1.WorkloadService",
    "flotilla.v1.RegistryService",
    "flotilla.v1.LogStream",
    "flotilla.v1.OperationService",
    "flotilla.v1.CredentialService",
    "flotilla.v1.AdminService",
    "flotilla.v1.AgentService",
];
